//! The console's only door to what the server stores: every page reads and writes through these
//! functions, which go through the server's [`crate::storage::Storage`] and the JSON API's
//! internals (`versions::version_bytes` and `versions::roll_back`), on a data directory and on
//! `storage "s3"` alike.

use std::sync::Arc;

use axum::http::StatusCode;
use stateseal_store::LockInfo;

use crate::protocol::Reply;
use crate::state_path::StatePath;
use crate::storage::{Released, VersionRecord};
use crate::App;

/// Every version of a state, newest first (empty when nothing was ever stored).
pub async fn versions(app: &Arc<App>, path: &StatePath) -> Result<Vec<VersionRecord>, Reply> {
    app.storage
        .versions(path)
        .await
        .map_err(|e| Reply::failed("reading the versions failed", e))
}

/// The lock holder, if the state is locked.
pub async fn lock_holder(app: &Arc<App>, path: &StatePath) -> Result<Option<LockInfo>, Reply> {
    app.storage
        .lock_holder(path)
        .await
        .map_err(|e| Reply::failed("reading the lock failed", e))
}

/// Version `seq`'s bytes as stored (an envelope when encrypted), for what its envelope says.
pub async fn stored(app: &Arc<App>, path: &StatePath, seq: u64) -> Result<Vec<u8>, Reply> {
    match app.storage.version(path, seq).await {
        Ok(Some((_, bytes))) => Ok(bytes.to_vec()),
        Ok(None) => Err(Reply::text(
            StatusCode::NOT_FOUND,
            format!("there is no version {seq}"),
        )),
        Err(e) => Err(Reply::failed("reading the version failed", e)),
    }
}

/// Version `n`'s record and the bytes its client sent (404 when there is no such version or it
/// is a deletion), as `GET /v1/versions/<path>?seq=N` answers.
pub async fn version(
    app: &Arc<App>,
    path: &StatePath,
    n: u64,
) -> Result<(VersionRecord, Vec<u8>), Reply> {
    crate::versions::version_bytes(app, path, n).await
}

/// Releases the lock if its ID is still `id` (compare and delete): `Ok(Some(holder))` when it
/// was released, `Ok(None)` when the state was not locked, 409 when another lock holds it now.
pub async fn break_lock(
    app: &Arc<App>,
    path: &StatePath,
    id: String,
) -> Result<Option<LockInfo>, Reply> {
    let changed = |h: &LockInfo| {
        Reply::text(
            StatusCode::CONFLICT,
            format!(
                "The lock changed since the confirmation page: it is now held by {} (ID {}); nothing was released.",
                h.who, h.id
            ),
        )
    };
    let Some(holder) = lock_holder(app, path).await? else {
        return Ok(None);
    };
    if holder.id != id {
        return Err(changed(&holder));
    }
    match app.storage.unlock(path, &id).await {
        Ok(Released::Yes) => Ok(Some(holder)),
        Ok(Released::NotLocked) => Ok(None),
        Ok(Released::HeldBy(h)) => Err(changed(&h)),
        Err(e) => Err(Reply::failed("releasing the lock failed", e)),
    }
}

/// Rolls back to version `n` as `POST /v1/rollback/<path>?seq=N` does (without a lock ID: a
/// locked state refuses it with 423).
pub async fn roll_back(app: &Arc<App>, path: &StatePath, n: u64, user: Option<String>) -> Reply {
    crate::versions::roll_back(app, path, n, None, user).await
}
