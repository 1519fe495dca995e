//! Encryption at rest: what the server stores for a state a client uploads, and what it
//! answers on GET.
//!
//! * An OpenTofu envelope (the client encrypts) is stored byte for byte; its plaintext
//!   `serial` and `lineage` are what the successor rule checks.
//! * A plaintext state is encrypted with the `state` target of the server's `encryption`
//!   block (unless `require_client_encryption` refuses it), and decrypted again on GET, so a
//!   client gets back exactly what it sent.
//! * Anything else is not a state (400).
//!
//! The primary method is set up once per process by [`TargetEncryption`] (one pbkdf2 salt and
//! key, one KMS data key), and [`AtRest::new`] does that setup at startup, so a broken key
//! provider stops the server instead of failing the first upload.

use stateseal_encryption::envelope::{Header, VERSION};
use stateseal_encryption::{Encryption, TargetEncryption};
use stateseal_store::StateMeta;

use crate::storage::Stored;

/// What an uploaded body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub serial: u64,
    pub lineage: String,
    pub encrypted: bool,
}

/// Why an upload was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// The client's fault (400): not a state, or plaintext where encryption is required.
    BadRequest(String),
    /// The server's: encryption failed (a key provider is unreachable, …).
    Failed(String),
}

/// Tells an envelope from a plaintext state, without any key. `Err` explains why the body is
/// neither.
pub fn classify(body: &[u8]) -> Result<Incoming, String> {
    if body.is_empty() {
        return Err(
            "the body is empty; a state (JSON) or an OpenTofu envelope was expected".into(),
        );
    }
    if let Ok(h) = Header::parse(body) {
        if h.version != VERSION {
            return Err(format!(
                "unsupported encryption_version {:?} (only {VERSION:?})",
                h.version
            ));
        }
        let Some(fields) = h.state_fields else {
            return Err(
                "this envelope is not a state (it has no serial and lineage; a plan?)".into(),
            );
        };
        let serial = fields
            .serial
            .and_then(|s| u64::try_from(s).ok())
            .ok_or("the envelope's serial is missing or negative")?;
        return Ok(Incoming {
            serial,
            lineage: fields.lineage,
            encrypted: true,
        });
    }
    let meta = StateMeta::parse(body).map_err(|e| format!("the body is not a state: {e}"))?;
    Ok(Incoming {
        serial: meta.serial,
        lineage: meta.lineage,
        encrypted: false,
    })
}

/// The server's encryption policy.
pub struct AtRest {
    encryption: Encryption,
    require_client_encryption: bool,
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
        let at_rest = AtRest {
            encryption,
            require_client_encryption,
        };
        if at_rest.encrypts() {
            let probe = stateseal_store::state::empty_state("startup-check", 0, "0.0.0");
            let sealed = at_rest.target().encrypt_state(&probe)?;
            at_rest.target().decrypt_state(&sealed)?;
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

    /// The bytes to store for an upload and how they were stored. An envelope comes back
    /// unchanged (`None`: store the body itself).
    pub fn seal(
        &self,
        body: &[u8],
        what: &Incoming,
    ) -> Result<(Option<Vec<u8>>, Stored), SealError> {
        if what.encrypted {
            return Ok((None, Stored::ClientEnvelope));
        }
        if self.require_client_encryption {
            return Err(SealError::BadRequest(
                "this server requires client-side encryption (require_client_encryption = true): configure an encryption block in OpenTofu; plaintext was refused and nothing was written".into(),
            ));
        }
        if !self.encrypts() {
            return Ok((None, Stored::Plaintext));
        }
        let sealed = self
            .target()
            .encrypt_state(body)
            .map_err(|e| SealError::Failed(format!("encrypting the state failed: {e}")))?;
        Ok((Some(sealed), Stored::ServerEncrypted))
    }

    /// What to answer on GET for stored bytes.
    pub fn open(&self, stored: Vec<u8>, how: Stored) -> Result<Vec<u8>, String> {
        match how {
            Stored::ServerEncrypted => self
                .target()
                .decrypt_state(&stored)
                .map(|(plain, _)| plain)
                .map_err(|e| format!("decrypting the stored state failed: {e}")),
            // Written past the server: ours if our configuration opens it, else a client's.
            Stored::DirectEnvelope if self.encrypts() => {
                match self.target().decrypt_state(&stored) {
                    Ok((plain, _)) => Ok(plain),
                    Err(_) => Ok(stored),
                }
            }
            _ => Ok(stored),
        }
    }
}
