//! What can go wrong in a state operation, in the domain's words: [`ServerError`], returned by
//! [`crate::states`] and the console's reads. It knows nothing of HTTP; [`crate::reply`] is the
//! one table from a variant to a status and a body, and the console picks its page by variant.

use stateseal_core::Refusal;
use stateseal_encryption::key_provider::ProviderErrorKind;
use stateseal_store::LockInfo;

use crate::at_rest::{AtRestError, NotAState};

/// Why a state operation did not happen.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The state rules refused the write (serial, lineage): nothing was written.
    #[error("refused: {0}; nothing was written")]
    Refused(Refusal),
    /// Another lock ID holds the state's lock.
    #[error("the state is locked by {} (ID {})", .0.who, .0.id)]
    Locked(Box<LockInfo>),
    /// `If-Match`/`If-None-Match` did not hold.
    #[error("{0}; nothing was written")]
    Precondition(Precondition),
    /// The body is neither a state nor an OpenTofu state envelope.
    #[error("{0}; nothing was written")]
    NotAState(NotAState),
    /// Plaintext where `require_client_encryption = true`.
    #[error("{}", AtRestError::ClientEncryptionRequired)]
    ClientEncryptionRequired,
    /// A rollback to a version the client encrypted: its serial is inside the ciphertext.
    #[error("version {0} was encrypted by the client: its serial is inside the ciphertext, which this server can't rewrite; restore it with `stateseal state restore` and the client's key; nothing was written")]
    ClientEnvelopeRollback(u64),
    /// A rollback of a state at serial 2^64-1: no later serial exists.
    #[error("refused: the serial is at its maximum (2^64-1), so no later serial exists for a rollback; nothing was written")]
    SerialExhausted,
    /// Other writers kept changing the state while this write was decided.
    #[error("refused: the state kept changing while this write was decided ({0} times); nothing was written")]
    Contended(usize),
    /// A stored version that opened to something other than a JSON state.
    #[error("version {0} is not a JSON state")]
    NotJsonState(u64),
    /// A lock ID in the range reserved for unreadable lock records.
    #[error(
        "lock IDs starting with {:?} are reserved for unreadable lock records",
        crate::storage::UNREADABLE_LOCK_PREFIX
    )]
    ReservedLockId,
    /// Nothing of that name.
    #[error("{0}")]
    NotFound(Missing),
    /// A key service (KMS, …) could not be reached: the request may succeed later.
    #[error("{what}: the key service {address} is unavailable")]
    KeyService {
        what: &'static str,
        /// The key provider's address (`key_provider.aws_kms.NAME`): names the service, holds
        /// no secret.
        address: String,
        kind: ProviderErrorKind,
        #[source]
        source: stateseal_encryption::Error,
    },
    /// The server's encryption produced an envelope that does not decrypt back to the state
    /// (a broken method): the write was refused.
    #[error("{what}: the server's encryption produced an envelope that does not decrypt back to the state; nothing was written")]
    SealUnverified { what: &'static str },
    /// Encrypting or decrypting failed for another reason (a key that does not open the
    /// state, an envelope that did not decrypt back).
    #[error("{what}: {source}")]
    Encryption {
        what: &'static str,
        #[source]
        source: AtRestError,
    },
    /// The storage failed (disk, bucket); `unavailable` when the service could not be reached.
    #[error("{what}: {source}")]
    Storage {
        what: &'static str,
        #[source]
        source: crate::storage::Error,
    },
    /// The server itself failed (a task panicked, a rewrite failed).
    #[error("{what}: {message}")]
    Internal { what: &'static str, message: String },
}

/// What is not there.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("no state is stored here")]
    State,
    #[error("there is no version {0}")]
    Version(u64),
    #[error("version {0} is a deletion")]
    Deletion(u64),
    #[error("the state is not locked")]
    Lock,
}

/// Why an upload's precondition failed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Precondition {
    #[error("If-None-Match: * but a state is stored")]
    StateExists,
    #[error("If-Match {wanted} but the stored state is {}", .current.as_deref().unwrap_or("absent"))]
    Mismatch {
        wanted: String,
        current: Option<String>,
    },
}

/// The key provider's address and failure when `e` is a key service that could not be reached
/// (retrying later may work).
pub(crate) fn key_service_down(
    e: &stateseal_encryption::Error,
) -> Option<(String, ProviderErrorKind)> {
    match e {
        stateseal_encryption::Error::KeyProvider {
            address,
            kind: kind @ ProviderErrorKind::Unreachable,
            ..
        } => Some((address.clone(), *kind)),
        _ => None,
    }
}

impl ServerError {
    /// An at-rest failure while `what`: a key service that is down is told apart from the
    /// rest.
    pub(crate) fn at_rest(what: &'static str, e: AtRestError) -> ServerError {
        let down = e.encryption().and_then(key_service_down);
        match (e, down) {
            // The new envelope did not decrypt back to the same state. (The body was read as a
            // state before sealing, so a plaintext that is not JSON is the decrypted one.)
            (
                AtRestError::Seal(
                    stateseal_encryption::Error::RoundTripMismatch
                    | stateseal_encryption::Error::DecryptionFailed { .. }
                    | stateseal_encryption::Error::PassthroughMismatch(_)
                    | stateseal_encryption::Error::InvalidPlaintext { .. },
                ),
                _,
            ) => ServerError::SealUnverified { what },
            (AtRestError::ClientEncryptionRequired, _) => ServerError::ClientEncryptionRequired,
            (AtRestError::Seal(source) | AtRestError::Open(source), Some((address, kind))) => {
                ServerError::KeyService {
                    what,
                    address,
                    kind,
                    source,
                }
            }
            (other, None) => ServerError::Encryption {
                what,
                source: other,
            },
        }
    }

    /// A storage failure while `what`.
    pub(crate) fn storage(what: &'static str) -> impl FnOnce(crate::storage::Error) -> ServerError {
        move |source| ServerError::Storage { what, source }
    }

    /// A task of the blocking pool that did not finish.
    pub(crate) fn join(what: &'static str) -> impl FnOnce(tokio::task::JoinError) -> ServerError {
        move |e| ServerError::Internal {
            what,
            message: e.to_string(),
        }
    }

    /// True when the storage behind this error could not be reached (a service error of kind
    /// network or throttled).
    pub(crate) fn storage_unavailable(&self) -> bool {
        use stateseal_core::ServiceErrorKind as K;
        matches!(
            self,
            ServerError::Storage {
                source: crate::storage::Error::S3(stateseal_store::Error::Service {
                    kind: K::Network | K::Throttled,
                    ..
                }),
                ..
            }
        )
    }
}
