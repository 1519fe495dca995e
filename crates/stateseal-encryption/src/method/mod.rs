//! The method joint: bytes in, bytes out. A method must detect a failed decryption itself.

pub mod aes_gcm;
pub mod external;

use std::sync::Arc;

/// A configured encryption method.
pub trait Method: Send + Sync {
    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, MethodError>;
    /// Takes ownership so that large payloads can be decrypted in place.
    fn decrypt(&self, ciphertext: Vec<u8>) -> Result<Vec<u8>, MethodError>;

    /// Decrypts the ciphertext at `data[offset..]` and returns the plaintext in the same buffer
    /// (at its start). The default moves the ciphertext to the front first; a method that can
    /// decrypt and move in one pass (aes_gcm) overrides it, which saves a pass over large files.
    fn decrypt_at(&self, mut data: Vec<u8>, offset: usize) -> Result<Vec<u8>, MethodError> {
        data.drain(..offset.min(data.len()));
        self.decrypt(data)
    }

    /// Decrypts the ciphertext at `data[offset..]` of a buffer the caller owns (a `Vec` or any
    /// other memory) and returns the plaintext's length: the plaintext is at `data[..len]`.
    /// The default decrypts a copy; aes_gcm decrypts in place.
    fn decrypt_within(&self, data: &mut [u8], offset: usize) -> Result<usize, MethodError> {
        let plain = self.decrypt(data[offset.min(data.len())..].to_vec())?;
        let out = data.get_mut(..plain.len()).ok_or_else(|| {
            MethodError::Failed("the plaintext is longer than its ciphertext".into())
        })?;
        out.copy_from_slice(&plain);
        Ok(plain.len())
    }
}

/// Builds a method from its evaluated configuration body (a JSON object in which `keys`, if
/// present, already holds the key provider's output).
pub type MethodFactory =
    Arc<dyn Fn(&serde_json::Value) -> Result<Box<dyn Method>, crate::ConfigError> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodError {
    /// No decryption key: the data was written with metadata this configuration cannot use.
    NoDecryptionKey,
    /// No encryption key was provided.
    NoEncryptionKey,
    /// Authentication failed or the data is malformed (wrong key, tampered data).
    DecryptionFailed(String),
    /// Anything else (an external program failed, ...).
    Failed(String),
}

impl std::fmt::Display for MethodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MethodError::NoDecryptionKey => f.write_str("no decryption key available"),
            MethodError::NoEncryptionKey => f.write_str("no encryption key available"),
            MethodError::DecryptionFailed(m) => write!(f, "decryption failed: {m}"),
            MethodError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for MethodError {}
