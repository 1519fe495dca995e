//! The key-provider joint: configuration and stored metadata in, keys and new metadata out.
//!
//! A provider is built by a [`KeyProviderFactory`] from its evaluated configuration (building
//! never contacts a key service) and then asked for keys with [`KeyProvider::provide`]. Chained
//! providers are resolved by the library: a provider sees its upstream's keys as ordinary
//! configuration values (`{encryption_key = [...], decryption_key = [...]}`).

#[cfg(feature = "aws-kms")]
pub mod aws_kms;
#[cfg(feature = "azure-vault")]
pub mod azure_vault;
pub mod external;
#[cfg(feature = "gcp-kms")]
pub mod gcp_kms;
#[cfg(feature = "openbao")]
pub mod openbao;
pub mod pbkdf2;

use std::sync::Arc;

use stateseal_core::secret::{Keys, Secret};

/// What the caller needs the keys for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// A fresh encryption key (and the metadata to store next to the ciphertext).
    Encrypt,
    /// The decryption key for data written with this provider. `stored` is the metadata the
    /// provider stored in the envelope under its storage key, if any. Without it a provider
    /// returns no decryption key (and the method then reports `no decryption key available`).
    Decrypt { stored: Option<&'a [u8]> },
}

/// What a provider hands back.
#[derive(Clone, Debug, Default)]
pub struct Provided {
    pub keys: Keys,
    /// The metadata JSON to store in the envelope (only meaningful for [`Purpose::Encrypt`]).
    pub metadata: Option<Vec<u8>>,
}

impl Provided {
    /// A fresh encryption key and the metadata to store next to the ciphertext.
    pub fn for_encryption(key: Secret, metadata: Vec<u8>) -> Provided {
        Provided {
            keys: Keys {
                encryption_key: Some(key),
                decryption_key: None,
            },
            metadata: Some(metadata),
        }
    }

    /// A decryption key, if the stored metadata gave one (nothing is stored when decrypting).
    pub fn for_decryption(key: Option<Secret>) -> Provided {
        Provided {
            keys: Keys {
                encryption_key: None,
                decryption_key: key,
            },
            metadata: None,
        }
    }
}

/// Decodes a provider's stored metadata JSON into `T`, or `T::default()` when there is none.
pub fn stored_metadata<T: serde::de::DeserializeOwned + Default>(
    stored: Option<&[u8]>,
) -> Result<T, ProviderError> {
    match stored {
        Some(s) => serde_json::from_slice(s).map_err(|e| ProviderError::Metadata(e.to_string())),
        None => Ok(T::default()),
    }
}

/// The shape of the providers that keep a wrapped data key in their metadata (gcp_kms,
/// openbao, azure_vault): encrypting makes a new key; decrypting decodes the stored metadata
/// into `M` and unwraps only when `has_key` finds a wrapped key in it.
#[cfg(any(feature = "gcp-kms", feature = "openbao", feature = "azure-vault"))]
pub(crate) fn wrapped_data_key<M: serde::de::DeserializeOwned + Default>(
    purpose: Purpose<'_>,
    generate: impl FnOnce() -> Result<Provided, ProviderError>,
    has_key: impl FnOnce(&M) -> bool,
    unwrap: impl FnOnce(M) -> Result<Secret, ProviderError>,
) -> Result<Provided, ProviderError> {
    match purpose {
        Purpose::Encrypt => generate(),
        Purpose::Decrypt { stored } => {
            let meta: M = stored_metadata(stored)?;
            let key = has_key(&meta).then(|| unwrap(meta)).transpose()?;
            Ok(Provided::for_decryption(key))
        }
    }
}

/// A configured key provider. Messages must never contain key material or passphrases.
pub trait KeyProvider: Send + Sync {
    fn provide(&self, purpose: Purpose<'_>) -> Result<Provided, ProviderError>;
}

/// Builds a provider from its evaluated configuration body (a JSON object). Must not contact
/// any key service: `stateseal validate` calls it.
pub type KeyProviderFactory = Arc<
    dyn Fn(&serde_json::Value) -> Result<Box<dyn KeyProvider>, crate::ConfigError> + Send + Sync,
>;

/// A failure while producing keys. The variant is the kind of failure; the message names the
/// provider's key and the service's answer and never holds key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// The stored metadata cannot be decoded into this provider's metadata structure.
    Metadata(String),
    /// The key service could not be reached (network, DNS, TLS, timeout), or it asked to slow
    /// down (throttled): a later try may succeed.
    Unreachable(String),
    /// The key service refused the credentials or the operation.
    Denied(String),
    /// Any other failure (key service errors, invalid upstream keys, ...).
    Failed(String),
}

/// The kind of a key-provider failure, for callers that choose a fix or a retry by it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// See [`ProviderError::Metadata`].
    BadMetadata,
    /// See [`ProviderError::Unreachable`].
    Unreachable,
    /// See [`ProviderError::Denied`].
    Denied,
    /// See [`ProviderError::Failed`].
    Failed,
}

impl ProviderError {
    pub fn kind(&self) -> ProviderErrorKind {
        match self {
            ProviderError::Metadata(_) => ProviderErrorKind::BadMetadata,
            ProviderError::Unreachable(_) => ProviderErrorKind::Unreachable,
            ProviderError::Denied(_) => ProviderErrorKind::Denied,
            ProviderError::Failed(_) => ProviderErrorKind::Failed,
        }
    }

    /// A service failure with `message`, classified by the service error's kind.
    pub fn service(kind: stateseal_core::ServiceErrorKind, message: String) -> ProviderError {
        use stateseal_core::ServiceErrorKind as K;
        match kind {
            K::Network | K::Throttled => ProviderError::Unreachable(message),
            K::AccessDenied => ProviderError::Denied(message),
            _ => ProviderError::Failed(message),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ProviderError::Metadata(m)
            | ProviderError::Unreachable(m)
            | ProviderError::Denied(m)
            | ProviderError::Failed(m) => m,
        }
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ProviderError {}

/// Decodes a provider's configuration into its typed form, rejecting unknown attributes.
pub fn decode_config<T: serde::de::DeserializeOwned>(
    config: &serde_json::Value,
) -> Result<T, crate::ConfigError> {
    T::deserialize(config).map_err(|e| crate::ConfigError::new(e.to_string()))
}
