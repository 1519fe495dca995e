//! [`App`]: what the server's handlers share (storage, at-rest encryption, auth, metrics, the
//! console's state), and how it is built from a configuration ([`App::connect`], [`App::open`],
//! [`App::with_storage`]), failing with a typed [`StartError`].

use std::path::Path;
use std::sync::Arc;

use axum::extract::FromRef;

use crate::config::{self, ServerConfig};
use crate::data_dir::DataDir;
use crate::storage::Storage;
use crate::{at_rest::AtRest, auth, metrics, s3, states, storage, tls, ui};

/// Everything a request handler needs.
#[derive(Debug)]
pub struct App {
    pub storage: Arc<dyn Storage>,
    pub at_rest: Arc<AtRest>,
    pub max_body_bytes: u64,
    pub auth: Option<Arc<auth::Auth>>,
    pub metrics: Arc<metrics::Metrics>,
    /// Set when the configuration has a `tls` block.
    pub tls: Option<Tls>,
    /// The web console's sessions and caches.
    pub console: ui::Console,
}

/// The router's state: the [`App`], from which each handler takes only the parts it needs
/// (`State<Arc<dyn Storage>>`, `State<Arc<AtRest>>`, … through axum's [`FromRef`]).
#[derive(Clone, Debug)]
pub struct Shared(pub Arc<App>);

/// The largest state body the server accepts (`max_body_bytes`), as a handler's part.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub u64);

impl FromRef<Shared> for Arc<App> {
    fn from_ref(s: &Shared) -> Self {
        s.0.clone()
    }
}

impl FromRef<Shared> for Arc<dyn Storage> {
    fn from_ref(s: &Shared) -> Self {
        s.0.storage.clone()
    }
}

impl FromRef<Shared> for Arc<AtRest> {
    fn from_ref(s: &Shared) -> Self {
        s.0.at_rest.clone()
    }
}

impl FromRef<Shared> for Option<Arc<auth::Auth>> {
    fn from_ref(s: &Shared) -> Self {
        s.0.auth.clone()
    }
}

impl FromRef<Shared> for Arc<metrics::Metrics> {
    fn from_ref(s: &Shared) -> Self {
        s.0.metrics.clone()
    }
}

impl FromRef<Shared> for BodyLimit {
    fn from_ref(s: &Shared) -> Self {
        BodyLimit(s.0.max_body_bytes)
    }
}

/// A TLS acceptor (the keys stay inside rustls).
#[derive(Clone)]
pub struct Tls(pub tokio_rustls::TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory: {0}")]
    DataDir(#[from] storage::FileError),
    #[error(transparent)]
    S3(#[from] s3::S3StartError),
    #[error("the configuration has a storage \"s3\" block: start the server with App::connect")]
    NeedsConnect,
    #[error("encryption at rest could not be set up: {0}")]
    Encryption(#[from] stateseal_encryption::Error),
    #[error("TLS could not be set up: {0}")]
    Tls(#[from] tls::TlsError),
}

impl App {
    /// The state operations over this server's storage and at-rest encryption.
    pub(crate) fn states(&self) -> states::States<'_> {
        states::States {
            storage: &*self.storage,
            at_rest: &self.at_rest,
        }
    }

    /// Opens the storage the configuration names (the data directory at `data_dir`, or
    /// connects to S3) and sets up encryption (deriving keys once, now).
    pub async fn connect(data_dir: &Path, mut config: ServerConfig) -> Result<App, StartError> {
        let storage: Arc<dyn Storage> = match std::mem::take(&mut config.storage) {
            config::StorageConfig::DataDir => Arc::new(DataDir::open(data_dir)?),
            config::StorageConfig::S3(cfg) => Arc::new(s3::S3Storage::connect(*cfg).await?),
        };
        App::with_storage(storage, config)
    }

    /// Opens the data directory and sets up encryption (deriving keys once, now): [`App::connect`]
    /// for a configuration without a `storage` block, without a runtime.
    pub fn open(data_dir: &Path, config: ServerConfig) -> Result<App, StartError> {
        if !matches!(config.storage, config::StorageConfig::DataDir) {
            return Err(StartError::NeedsConnect);
        }
        App::with_storage(Arc::new(DataDir::open(data_dir)?), config)
    }

    /// Serves from `storage` with the rest of `config` (its `storage` block is not used).
    pub fn with_storage(
        storage: Arc<dyn Storage>,
        config: ServerConfig,
    ) -> Result<App, StartError> {
        let tls = match &config.tls {
            Some(t) => Some(Tls(t.acceptor()?)),
            None => None,
        };
        let at_rest = AtRest::new(config.encryption, config.require_client_encryption)?;
        if !at_rest.encrypts() {
            tracing::warn!(
                "encryption at rest is OFF: plaintext states are stored as sent; add an encryption block to the server configuration"
            );
        }
        Ok(App {
            storage,
            at_rest: Arc::new(at_rest),
            max_body_bytes: config.max_body_bytes,
            auth: config.auth.map(Arc::new),
            metrics: Arc::default(),
            tls,
            console: ui::Console::default(),
        })
    }
}
