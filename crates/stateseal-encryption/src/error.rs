//! The library's error type.

use crate::diagnostics::Diagnostics;
use crate::key_provider::ProviderErrorKind;

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
    #[error("{message}")]
    InvalidPayload { target: String, message: String },
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
    PassthroughMismatch(String),
    /// The plaintext given to encrypt is not what the target needs (a state must be JSON).
    #[error("{0}")]
    InvalidPlaintext(String),
    /// Encrypting failed.
    #[error("encryption failed for {target}: {message}")]
    EncryptionFailed { target: String, message: String },
}
