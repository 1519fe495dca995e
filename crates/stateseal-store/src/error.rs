//! Semantic errors: what went wrong, not which HTTP status said so.

use stateseal_core::state::StateError;

use crate::lock_info::LockInfo;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every way a store operation can fail. Messages name the bucket, key, file or workspace and
/// never contain credentials or state contents.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object, state, workspace or version does not exist.
    #[error("{what} does not exist")]
    NotFound { what: String },
    /// The bucket the backend is configured with does not exist (nothing can be read or written).
    #[error("S3 bucket {bucket:?} does not exist: create it first, or fix bucket in the backend configuration")]
    BucketNotFound { bucket: String },
    /// A create found something already there.
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    /// A conditional write found another version than the one it was based on.
    #[error("{what} changed since it was read ({message}); nothing was written")]
    Precondition { what: String, message: String },
    /// The lock is held by someone else. `holder` is what the lock record says.
    #[error("{message}\n\n{holder}")]
    Locked {
        holder: Box<LockInfo>,
        /// The backend's own words (e.g. "ConditionalCheckFailedException").
        message: String,
    },
    /// The lock could not be taken and its holder could not be read: not retriable.
    #[error("{message}")]
    LockFailed { message: String },
    /// An unlock named an ID that is not the holder's.
    #[error("lock id {id:?} does not match existing lock{where_}\n\n{holder}")]
    LockMismatch {
        id: String,
        where_: &'static str,
        holder: Box<LockInfo>,
    },
    /// Nothing to unlock (no lock record).
    #[error("failed to retrieve lock info for {what}: no lock is held")]
    NotLocked { what: String },
    /// Releasing failed (in part).
    #[error("{message}")]
    UnlockFailed { message: String },
    /// A workspace name OpenTofu would refuse, or `default` where it is not allowed.
    #[error("invalid workspace name {name:?}: {reason}")]
    InvalidWorkspace { name: String, reason: String },
    /// The backend configuration is wrong (missing bucket, bad attribute, …).
    #[error("{0}")]
    Config(String),
    /// The backend block cannot be used: an expression OpenTofu refuses there, a variable
    /// without a value, a wrong attribute. One diagnostic per problem, with its location.
    #[error("{0}")]
    Backend(stateseal_core::diagnostics::Diagnostics),
    /// Not something this backend can do.
    #[error("{0}")]
    Unsupported(String),
    /// The bytes are not a state (not JSON, wrong version, serial missing).
    #[error("{what} is not a valid state: {cause}")]
    InvalidState { what: String, cause: StateError },
    /// The S3 object does not match the DynamoDB digest (after OpenTofu's 10 s of retries).
    #[error("state data in S3 does not have the expected content.\n\nThe checksum calculated for the state stored in S3 does not match the checksum\nstored in DynamoDB.\n\nBucket: {bucket}\nKey:    {key}\nCalculated checksum: {calculated}\nStored checksum:     {stored}\n\nThis may be caused by unusually long delays in S3 processing a previous state\nupdate. Please wait for a minute or two and try again.\n\nIf this problem persists, and neither S3 nor DynamoDB are experiencing an\noutage, you may need to manually verify the remote state and update the Digest\nvalue stored in the DynamoDB table to the following value: {calculated}")]
    Inconsistent {
        bucket: String,
        key: String,
        calculated: String,
        stored: String,
    },
    /// Local file system trouble.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A service call failed for a reason not covered above. `kind` says which class of
    /// failure (network, throttled, access denied, …) for callers that retry or skip; `source`
    /// keeps the SDK's error chain.
    #[error("{operation} {what}: {message}")]
    Service {
        operation: &'static str,
        what: String,
        kind: stateseal_core::ServiceErrorKind,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Encrypting or decrypting the state failed.
    #[error("{what}: {source}")]
    Encryption {
        what: String,
        #[source]
        source: stateseal_encryption::Error,
    },
    /// A write was refused by the state rules (lineage, serial) or the round-trip check, on
    /// `what` (a location). Callers choose their fix (`--force`, HTTP 409) by the refusal.
    #[error("{what}: {refusal}")]
    Refused {
        what: String,
        refusal: stateseal_core::Refusal,
    },
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// True for a lock held by someone whose ID is known (OpenTofu retries only those).
    pub fn is_retriable_lock(&self) -> bool {
        matches!(self, Error::Locked { holder, .. } if !holder.id.is_empty())
    }
}
