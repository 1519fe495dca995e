//! The console's only door to what the server stores: every page reads and writes through these
//! functions, which are the server's state operations ([`crate::states`]) with the console's
//! rules added, on a data directory and on `storage "s3"` alike. Failures are typed
//! ([`ServerError`]); the pages choose what to show by variant.

use std::sync::Arc;

use bytes::Bytes;
use stateseal_store::LockInfo;

use crate::error::ServerError;
use crate::state_path::StatePath;
use crate::states::RolledBack;
use crate::storage::VersionRecord;
use crate::App;

/// Every version of a state, newest first (empty when nothing was ever stored).
pub async fn versions(app: &Arc<App>, path: &StatePath) -> Result<Vec<VersionRecord>, ServerError> {
    app.states().versions(path).await
}

/// The lock holder, if the state is locked.
pub async fn lock_holder(
    app: &Arc<App>,
    path: &StatePath,
) -> Result<Option<LockInfo>, ServerError> {
    app.states().lock_holder(path).await
}

/// Version `seq`'s bytes as stored (an envelope when encrypted), for what its envelope says.
pub async fn stored(app: &Arc<App>, path: &StatePath, seq: u64) -> Result<Bytes, ServerError> {
    app.states().stored(path, seq).await.map(|(_, b)| b)
}

/// Version `n`'s record and the bytes its client sent, as `GET /v1/versions/<path>?seq=N`
/// answers.
pub async fn version(
    app: &Arc<App>,
    path: &StatePath,
    n: u64,
) -> Result<(VersionRecord, Bytes), ServerError> {
    app.states().version(path, n).await
}

/// Releases the lock if its ID is still `id` (compare and delete): `Ok(Some(holder))` when it
/// was released, `Ok(None)` when the state was not locked, [`ServerError::Locked`] with the
/// new holder when another lock holds it now.
pub async fn break_lock(
    app: &Arc<App>,
    path: &StatePath,
    id: String,
) -> Result<Option<LockInfo>, ServerError> {
    let Some(holder) = lock_holder(app, path).await? else {
        return Ok(None);
    };
    if holder.id != id {
        return Err(ServerError::Locked(Box::new(holder)));
    }
    let released = app.states().release(path, &id).await?;
    Ok(released.then_some(holder))
}

/// Rolls back to version `n` as `POST /v1/rollback/<path>?seq=N` does (without a lock ID: a
/// locked state refuses it with [`ServerError::Locked`]).
pub async fn roll_back(
    app: &Arc<App>,
    path: &StatePath,
    n: u64,
    user: Option<String>,
) -> Result<RolledBack, ServerError> {
    app.states().roll_back(path, n, None, user).await
}
