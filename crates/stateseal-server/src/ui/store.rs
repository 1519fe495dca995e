//! The console's only door to what the server stores: every page reads and writes through these
//! functions, which use the same internals as the JSON API (a state's slot, the API's
//! `versions::version_bytes` and `versions::roll_back`). When the storage changes, this is the
//! one console file to adapt.

use std::sync::Arc;

use axum::http::StatusCode;
use stateseal_store::LockInfo;

use crate::data_dir::VersionRecord;
use crate::protocol::{with_slot, Reply};
use crate::state_path::StatePath;
use crate::App;

/// Every version of a state, newest first (empty when nothing was ever stored).
pub async fn versions(app: &Arc<App>, path: &StatePath) -> Result<Vec<VersionRecord>, Reply> {
    with_slot(app, path, |slot, _| {
        slot.versions()
            .map_err(|e| Reply::failed("reading the versions failed", e))
    })
    .await?
}

/// The lock holder, if the state is locked.
pub async fn lock_holder(app: &Arc<App>, path: &StatePath) -> Result<Option<LockInfo>, Reply> {
    with_slot(app, path, |slot, _| slot.lock_holder().cloned()).await
}

/// Version `seq`'s bytes as stored (an envelope when encrypted), for what its envelope says.
pub async fn stored(app: &Arc<App>, path: &StatePath, seq: u64) -> Result<Vec<u8>, Reply> {
    with_slot(app, path, move |slot, _| {
        slot.data(seq)
            .map_err(|e| Reply::failed("reading the version failed", e))
    })
    .await?
}

/// Version `n`'s record and the bytes its client sent (404 when there is no such version or it
/// is a deletion), as `GET /v1/versions/<path>?seq=N` answers.
pub async fn version(
    app: &Arc<App>,
    path: &StatePath,
    n: u64,
) -> Result<(VersionRecord, Vec<u8>), Reply> {
    with_slot(app, path, move |slot, app| {
        crate::versions::version_bytes(slot, app, n)
    })
    .await?
}

/// Releases the lock if its ID is still `id` (compare and delete): `Ok(Some(holder))` when it
/// was released, `Ok(None)` when the state was not locked, 409 when another lock holds it now.
pub async fn break_lock(
    app: &Arc<App>,
    path: &StatePath,
    id: String,
) -> Result<Option<LockInfo>, Reply> {
    with_slot(app, path, move |slot, _| match slot.lock_holder().cloned() {
        None => Ok(None),
        Some(h) if h.id == id => slot
            .clear_lock()
            .map(|()| Some(h))
            .map_err(|e| Reply::failed("releasing the lock failed", e)),
        Some(h) => Err(Reply::text(
            StatusCode::CONFLICT,
            format!(
                "The lock changed since the confirmation page: it is now held by {} (ID {}); nothing was released.",
                h.who, h.id
            ),
        )),
    })
    .await?
}

/// Rolls back to version `n` as `POST /v1/rollback/<path>?seq=N` does (without a lock ID: a
/// locked state refuses it with 423).
pub async fn roll_back(app: &Arc<App>, path: &StatePath, n: u64, user: Option<String>) -> Reply {
    crate::versions::roll_back(app, path, n, None, user).await
}
