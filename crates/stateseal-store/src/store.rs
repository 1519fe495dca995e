//! The `Store` trait: named states (workspaces) with get, conditional put, delete, locking and
//! versions. Bytes are opaque here; encryption and state rules live in [`crate::sealed`].

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::lock_info::LockInfo;

/// The workspace every backend has (defined in core; kept here for the store's own paths).
pub use stateseal_core::workspace::DEFAULT_WORKSPACE;

/// An opaque token naming one stored version of a state, for [`PutMode::Update`]
/// (an S3 ETag, a digest of a local file's bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version(pub String);

/// A stored state.
#[derive(Clone, Debug)]
pub struct Object {
    /// The stored bytes, shared without copying (from S3 as the SDK received them).
    pub bytes: Bytes,
    pub version: Version,
    /// The backend's version id (S3 object versioning), when it keeps versions.
    pub version_id: Option<String>,
}

/// How a put treats what is already stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Only if nothing is stored: else [`Error::AlreadyExists`].
    Create,
    /// Only if the stored version is still this one: else [`Error::Precondition`].
    Update(Version),
    /// Unconditionally, as OpenTofu does under its lock.
    Overwrite,
}

/// One entry of a state's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    pub id: String,
    /// RFC 3339, UTC.
    pub last_modified: String,
    pub size: u64,
    pub is_latest: bool,
    pub is_delete_marker: bool,
}

/// A lock record that does not parse as a lock (a DynamoDB item whose `Info` is not a lock
/// JSON, a `.tflock` object that is not one): it blocks everyone, and no ID can name it. It is
/// shown as stored and can be removed only while it is still exactly as read
/// ([`Store::remove_unreadable_lock`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableLock {
    /// Where it is: `DynamoDB table T item "bucket/key"`, `s3://bucket/key.tflock`.
    pub location: String,
    /// The record as stored: the item's `Info` string, or the object's bytes. `None`: the item
    /// has no string `Info` attribute at all.
    pub raw: Option<Vec<u8>>,
    /// Why it does not parse.
    pub problem: String,
    /// What the conditional delete checks (the object's ETag; unused for DynamoDB, whose
    /// condition is `raw` itself).
    pub(crate) token: String,
}

/// What a backend can do, for callers that choose by ability rather than by backend name.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `lock` actually excludes others ([`Store::locking_enabled`]).
    pub locking: bool,
    /// A lock taken stays held after the process that took it exits (a lock file or item);
    /// false for an `fcntl` lock (local) or a lock in memory.
    pub lock_outlives_process: bool,
    /// More workspaces than `default` ([`Store::supports_workspaces`]).
    pub workspaces: bool,
}

/// A state backend. Every method takes the workspace by name; `default` always exists.
#[async_trait]
pub trait Store: Send + Sync {
    /// `local`, `s3`, …
    fn kind(&self) -> &'static str;

    /// Where the workspace's state lives, for messages (`s3://bucket/key`, a path).
    fn location(&self, workspace: &str) -> String;

    /// True when `lock` actually excludes others (S3 without a table or lock file does not lock).
    fn locking_enabled(&self) -> bool;

    /// True when a new workspace exists only once a state is written to it (S3), false when it
    /// is a directory of its own (local).
    fn workspace_needs_state(&self) -> bool;

    /// False when the backend has only `default` (http: one state per address); then
    /// `workspaces()` is `["default"]` and creating or deleting one is [`Error::Unsupported`].
    fn supports_workspaces(&self) -> bool {
        true
    }

    /// What this backend can do. The default: locks (when enabled) are records that outlive
    /// the process; a backend whose lock ends with its process overrides it.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            locking: self.locking_enabled(),
            lock_outlives_process: true,
            workspaces: self.supports_workspaces(),
        }
    }

    /// `default` first, then the others sorted.
    async fn workspaces(&self) -> Result<Vec<String>>;

    /// Makes an empty workspace (local: its directory; S3: nothing, see
    /// [`Store::workspace_needs_state`]).
    async fn create_workspace(&self, workspace: &str) -> Result<()>;

    /// Deletes a workspace and its state. `default` cannot be deleted.
    async fn delete_workspace(&self, workspace: &str) -> Result<()>;

    /// The current state. An absent or empty (0-byte) state is [`Error::NotFound`].
    async fn get(&self, workspace: &str) -> Result<Object>;

    /// Stores `bytes` as the workspace's state.
    async fn put(&self, workspace: &str, bytes: Bytes, mode: PutMode) -> Result<Version>;

    /// Takes the lock. Fills in `ID` (when empty), `Path` and, for local states, `Created`,
    /// and returns the record as stored. A held lock is [`Error::Locked`] with the holder.
    async fn lock(&self, workspace: &str, info: LockInfo) -> Result<LockInfo>;

    /// Releases the lock whose holder ID is `id` (else [`Error::LockMismatch`]).
    async fn unlock(&self, workspace: &str, id: &str) -> Result<()>;

    /// The current holder, if the lock is held.
    async fn lock_holder(&self, workspace: &str) -> Result<Option<LockInfo>>;

    /// The workspace's lock records that do not parse. Stores whose lock records are always
    /// readable (local: an fcntl lock) have none.
    async fn unreadable_locks(&self, _workspace: &str) -> Result<Vec<UnreadableLock>> {
        Ok(Vec::new())
    }

    /// Deletes an unreadable lock record, on the condition that it is still exactly as
    /// [`Store::unreadable_locks`] read it (else [`Error::UnlockFailed`]). Never touches
    /// anything else (the DynamoDB `-md5` digest item, the state).
    async fn remove_unreadable_lock(&self, _workspace: &str, lock: &UnreadableLock) -> Result<()> {
        Err(Error::Unsupported(format!(
            "{} has no unreadable lock records to remove",
            lock.location
        )))
    }

    /// The state's history, newest first.
    async fn versions(&self, workspace: &str) -> Result<Vec<VersionInfo>>;

    /// One version from [`Store::versions`].
    async fn get_version(&self, workspace: &str, version_id: &str) -> Result<Object>;
}

/// Refuses `default` where a workspace is being deleted (it always exists).
pub fn refuse_default_deletion(workspace: &str) -> Result<()> {
    if workspace == DEFAULT_WORKSPACE {
        return Err(Error::InvalidWorkspace {
            name: workspace.into(),
            reason: "the default workspace can't be deleted".into(),
        });
    }
    Ok(())
}

/// Checks a workspace name the way `tofu workspace new` does: it must equal Go's
/// `url.PathEscape(name)`, so only `A-Z a-z 0-9 - _ . ~ $ & + : = @`.
pub fn validate_workspace_name(name: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidWorkspace {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name == "." || name == ".." {
        // PathEscape keeps them, but they would name the parent's (or the default) state.
        return Err(bad("it would resolve to another path"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.~$&+:=@".contains(*c)))
    {
        return Err(bad(&format!(
            "{c:?} is not allowed; use only letters, digits and - _ . ~ $ & + : = @"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_names_follow_path_escape() {
        for ok in ["default", "dev", "a.b-c_d~e$f&g+h:i=j@k", "ENV1"] {
            validate_workspace_name(ok).unwrap();
        }
        for bad in [
            "", "a/b", "a b", "a%20", "a,b", "a;b", "a?b", "é", ".", "..",
        ] {
            assert!(validate_workspace_name(bad).is_err(), "{bad}");
        }
    }
}
