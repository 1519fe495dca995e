//! The library's error type.

use stateseal_core::state::StateError;

use crate::envelope::NotEnvelope;
use crate::key_provider::ProviderErrorKind;
use crate::method::MethodError;
use stateseal_core::diagnostics::Diagnostics;

/// Every way encrypting or decrypting can fail. Messages never contain key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid, or a key provider or method could not be set up.
    #[error("{0}")]
    Config(Diagnostics),
    /// A key provider could not produce keys: its key service was unreachable or refused, or the
    /// stored metadata is unreadable. `diagnostics` locates the provider's block.
    #[error("{diagnostics}")]
    KeyProvider {
        /// The provider's storage key (`key_provider.TYPE.NAME` or its alias).
        address: String,
        kind: ProviderErrorKind,
        diagnostics: Diagnostics,
    },
    /// A new envelope did not decrypt back to the bytes that were encrypted (nothing may be
    /// written).
    #[error("the new envelope did not decrypt back to the same bytes")]
    RoundTripMismatch,
    /// An envelope arrived for a target that has no encryption configured.
    #[error("{what} is encrypted and can not be read without an encryption configuration")]
    EncryptedWithoutConfig { what: &'static str },
    /// Plaintext arrived, but no `unencrypted` method is configured for the target.
    #[error("encountered unencrypted payload without unencrypted method configured")]
    UnencryptedPayload { target: String },
    /// Neither an envelope nor a valid plaintext.
    #[error("{cause}")]
    InvalidPayload { target: String, cause: PayloadError },
    /// An envelope with a version other than `v0`.
    #[error("invalid encrypted payload version: {0} != v0")]
    UnsupportedVersion(String),
    /// Every method in the chain failed to decrypt (wrong key, tampered data).
    #[error("decryption failed for all provided methods\n{}", attempts.join("\n"))]
    DecryptionFailed {
        target: String,
        attempts: Vec<String>,
        no_key: bool,
    },
    /// The envelope's plaintext `serial`/`lineage` do not match the decrypted state.
    #[error("invalid state metadata, {0}")]
    PassthroughMismatch(Passthrough),
    /// A state (given to encrypt, or just decrypted) is not a JSON object.
    #[error("the {which} is not valid JSON: {cause}")]
    InvalidPlaintext { which: Plaintext, cause: StateError },
    /// The method failed to encrypt.
    #[error("encryption failed for {target}: {source}")]
    EncryptionFailed { target: String, source: MethodError },
}

/// Why bytes are neither an envelope nor a plaintext the target accepts: both halves, as
/// OpenTofu reports them.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", match not_envelope {
    NotEnvelope::Json(j) => format!("invalid data format for decryption: {j}, {not_plaintext}"),
    NotEnvelope::NoVersion => format!("unable to determine data structure during decryption: {not_plaintext}"),
})]
pub struct PayloadError {
    pub not_envelope: NotEnvelope,
    pub not_plaintext: NotPlaintext,
}

/// Why bytes are not a plaintext of the payload's kind.
#[non_exhaustive]
#[derive(Clone, Debug, thiserror::Error)]
pub enum NotPlaintext {
    /// A JSON object without a `terraform_version`.
    #[error("Given payload is not a state file")]
    NotAStateFile,
    /// Not a JSON object.
    #[error("{0}")]
    State(StateError),
    /// A plan must be a zip; `start` is what its first bytes are instead.
    #[error("Invalid plan file {start:?}")]
    NotAPlan { start: String },
}

/// Which plaintext [`Error::InvalidPlaintext`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plaintext {
    /// The state given to encrypt.
    ToEncrypt,
    /// The state an envelope decrypted to.
    Decrypted,
}

impl std::fmt::Display for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Plaintext::ToEncrypt => "state to encrypt",
            Plaintext::Decrypted => "decrypted state",
        })
    }
}

/// The envelope's plaintext `serial`/`lineage` and the decrypted state's disagree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Passthrough {
    #[error("serial field mismatch {envelope} vs {state}")]
    Serial { envelope: i64, state: i64 },
    /// (OpenTofu's spelling, "linage", kept byte for byte.)
    #[error("linage field mismatch {envelope} vs {state}")]
    Lineage { envelope: String, state: String },
}

/// Why a key provider's or method's configuration body was refused when it was built: an
/// unknown, missing or ill-typed attribute, or a value the type does not accept. Building never
/// contacts a key service, so this is always the configuration's to fix; the setup attaches it
/// to the block's location. The message names the attribute and never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
        }
    }
}

impl From<String> for ConfigError {
    fn from(message: String) -> ConfigError {
        ConfigError { message }
    }
}

impl From<&str> for ConfigError {
    fn from(message: &str) -> ConfigError {
        ConfigError::new(message)
    }
}
