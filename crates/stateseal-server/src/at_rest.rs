//! Encryption at rest: what the server stores for a state a client uploads, and what it
//! answers on GET.
//!
//! * An OpenTofu envelope (the client encrypts) is stored byte for byte; its plaintext
//!   `serial` and `lineage` are what the successor rule checks.
//! * A plaintext state is encrypted with the `state` target of the server's `encryption`
//!   block (unless `require_client_encryption` refuses it), and decrypted again on GET, so a
//!   client gets back exactly what it sent. Sealing is verified: the envelope is decrypted back
//!   and compared with the plaintext before anything is stored (one way to seal, always
//!   verified).
//! * Anything else is not a state (400).
//!
//! The primary method is set up once per process by [`TargetEncryption`] (one pbkdf2 salt and
//! key, one KMS data key), and [`AtRest::new`] does that setup at startup, so a broken key
//! provider stops the server instead of failing the first upload.

use bytes::Bytes;
use stateseal_encryption::envelope::{Header, VERSION};
use stateseal_encryption::{Encryption, PayloadKind, TargetEncryption};
use stateseal_store::StateMeta;

use crate::storage::Stored;

/// What an uploaded body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub serial: u64,
    pub lineage: String,
    pub encrypted: bool,
}

/// Why an uploaded body is neither a state nor an OpenTofu state envelope.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAState {
    #[error("the body is empty; a state (JSON) or an OpenTofu envelope was expected")]
    Empty,
    #[error("unsupported encryption_version {0:?} (only \"v0\")")]
    UnsupportedVersion(String),
    #[error("this envelope is not a state (it has no serial and lineage; a plan?)")]
    NotAStateEnvelope,
    #[error("the envelope's serial is missing or negative")]
    BadSerial,
    /// The body is not state JSON; the parser's words.
    #[error("the body is not a state: {0}")]
    Invalid(String),
}

impl Incoming {
    /// Tells an envelope from a plaintext state, without any key.
    pub fn read(body: &[u8]) -> Result<Incoming, NotAState> {
        if body.is_empty() {
            return Err(NotAState::Empty);
        }
        if let Ok(h) = Header::parse(body) {
            if h.version != VERSION {
                return Err(NotAState::UnsupportedVersion(h.version));
            }
            let fields = h.state_fields.ok_or(NotAState::NotAStateEnvelope)?;
            let serial = fields
                .serial
                .and_then(|s| u64::try_from(s).ok())
                .ok_or(NotAState::BadSerial)?;
            return Ok(Incoming {
                serial,
                lineage: fields.lineage,
                encrypted: true,
            });
        }
        let meta = StateMeta::parse(body).map_err(|e| NotAState::Invalid(e.to_string()))?;
        Ok(Incoming {
            serial: meta.serial,
            lineage: meta.lineage,
            encrypted: false,
        })
    }
}

/// Why an upload was not sealed, or stored bytes not opened.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    /// Plaintext arrived, but `require_client_encryption = true` (400).
    #[error("this server requires client-side encryption (require_client_encryption = true): configure an encryption block in OpenTofu; plaintext was refused and nothing was written")]
    ClientEncryptionRequired,
    /// Encrypting failed, or the new envelope did not decrypt back to the plaintext.
    #[error("encrypting the state failed: {0}")]
    Seal(#[source] stateseal_encryption::Error),
    /// Decrypting a stored version failed.
    #[error("decrypting the stored state failed: {0}")]
    Open(#[source] stateseal_encryption::Error),
}

/// The key providers an envelope's metadata names (`key_provider.pbkdf2.main`, …); empty for
/// anything that is not an envelope.
pub fn key_providers(stored: &[u8]) -> Vec<String> {
    Header::parse(stored)
        .map(|h| h.meta.into_keys().collect())
        .unwrap_or_default()
}

impl AtRestError {
    /// The encryption error underneath, if any (for the key-service classification).
    pub fn encryption(&self) -> Option<&stateseal_encryption::Error> {
        match self {
            AtRestError::ClientEncryptionRequired => None,
            AtRestError::Seal(e) | AtRestError::Open(e) => Some(e),
        }
    }
}

/// The server's encryption policy.
pub struct AtRest {
    encryption: Encryption,
    require_client_encryption: bool,
    /// One permit per core: how many uploads are encrypted at once. A seal is CPU work that
    /// holds about five times the state in buffers; running more seals than there are cores
    /// finishes none of them sooner and only multiplies that memory.
    pub sealing: tokio::sync::Semaphore,
}

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtRest")
            .field("encrypts", &self.encrypts())
            .field("require_client_encryption", &self.require_client_encryption)
            .finish()
    }
}

impl AtRest {
    /// Sets up the primary method once (deriving the pbkdf2 key, fetching a KMS data key).
    pub fn new(
        encryption: Encryption,
        require_client_encryption: bool,
    ) -> Result<AtRest, stateseal_encryption::Error> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let at_rest = AtRest {
            encryption,
            require_client_encryption,
            sealing: tokio::sync::Semaphore::new(cores),
        };
        if at_rest.encrypts() {
            let probe = stateseal_store::state::empty_state("startup-check", 0, "0.0.0");
            at_rest
                .target()
                .encrypt_verified(&probe, PayloadKind::State)?;
        }
        Ok(at_rest)
    }

    fn target(&self) -> &TargetEncryption {
        self.encryption.state()
    }

    /// True when plaintext uploads are stored encrypted.
    pub fn encrypts(&self) -> bool {
        self.target().is_enabled() && !self.target().primary_is_unencrypted()
    }

    pub fn requires_client_encryption(&self) -> bool {
        self.require_client_encryption
    }

    /// The methods of the `state` target, primary first (for the banner and `/healthz`).
    pub fn methods(&self) -> Vec<String> {
        self.target().method_chain()
    }

    /// True when storing this upload takes a key (an encryption): only then is
    /// [`AtRest::seal`] more than a check that hands the body back.
    pub fn seals_with_key(&self, what: &Incoming) -> bool {
        !what.encrypted && !self.require_client_encryption && self.encrypts()
    }

    /// The bytes to store for an upload and how they were stored: an envelope comes back
    /// unchanged; plaintext is encrypted and proven to decrypt back before it is returned.
    pub fn seal(&self, body: Bytes, what: &Incoming) -> Result<(Bytes, Stored), AtRestError> {
        if what.encrypted {
            return Ok((body, Stored::ClientEnvelope));
        }
        if self.require_client_encryption {
            return Err(AtRestError::ClientEncryptionRequired);
        }
        if !self.encrypts() {
            return Ok((body, Stored::Plaintext));
        }
        let sealed = self
            .target()
            .encrypt_verified(&body, PayloadKind::State)
            .map_err(AtRestError::Seal)?;
        Ok((Bytes::from(sealed), Stored::ServerEncrypted))
    }

    /// True when answering stored bytes of this kind takes a key (a decryption): only then is
    /// [`AtRest::open`] more than handing the bytes back.
    fn opens_with_key(&self, how: Stored) -> bool {
        match how {
            Stored::ServerEncrypted => true,
            Stored::DirectEnvelope => self.encrypts(),
            _ => false,
        }
    }

    /// What to answer on GET for stored bytes (decrypted without copying them first when the
    /// server encrypted them).
    pub fn open(&self, stored: Bytes, how: Stored) -> Result<Bytes, AtRestError> {
        if !self.opens_with_key(how) {
            return Ok(stored);
        }
        match how {
            Stored::ServerEncrypted => self.decrypt(stored),
            // Written past the server: ours if our configuration opens it, else a client's.
            // A key service that can't be reached is a failure, not "a client's envelope".
            Stored::DirectEnvelope if self.encrypts() => match self.decrypt(stored.clone()) {
                Ok(plain) => Ok(plain),
                Err(AtRestError::Open(e)) if crate::error::key_service_down(&e).is_some() => {
                    Err(AtRestError::Open(e))
                }
                Err(_) => Ok(stored),
            },
            _ => Ok(stored),
        }
    }

    fn decrypt(&self, stored: Bytes) -> Result<Bytes, AtRestError> {
        // The stored bytes are usually the only reference: take them without a copy.
        let owned = Vec::from(stored);
        self.target()
            .decrypt_owned(owned, PayloadKind::State)
            .map(|(plain, _)| Bytes::from(plain))
            .map_err(AtRestError::Open)
    }
}
