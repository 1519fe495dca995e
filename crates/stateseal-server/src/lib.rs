//! `stateseal serve`: an HTTP state backend for Terraform's and OpenTofu's `backend "http"`,
//! with locking, every version kept, and OpenTofu-format encryption at rest.
//!
//! * [`protocol`]: the verbs on `/state/<path>` and their answers, for every client version;
//! * [`state_path`]: validation of `<path>`;
//! * [`states`]: the state operations (read, decide-and-append, lock, unlock, roll back, list)
//!   over the storage and at-rest encryption, failing with a typed [`error::ServerError`];
//! * [`reply`]: the one table from a [`error::ServerError`] to a status and a body;
//! * [`storage`]: the one interface to where states are kept, implemented by
//! * [`data_dir`]: the embedded storage (a directory of files, crash-safe), and
//! * [`s3`]: `storage "s3"`, states in a bucket laid out as `backend "s3"` lays them out;
//! * [`at_rest`]: envelopes stored as sent, plaintext encrypted with the server's key;
//! * [`versions`]: the JSON API (states, versions, locks), rollback and `/healthz`;
//! * [`auth`]: users (argon2id), tokens (SHA-256), grants, with [`throttle`] (brute-force
//!   back-off) and [`password_checks`] (bounded argon2 runs);
//! * [`connections`]: accepting connections, HTTP/1.1 only, deadlines and the connection cap;
//! * [`metrics`]: `/metrics` (Prometheus), labelled by route template;
//! * [`tls`]: HTTPS through rustls, with optional client certificates;
//! * [`config`]: the server configuration file;
//! * [`ui`]: the web console at `/ui`.
//!
//! The library never prints: it logs through `tracing`, and the binary decides what to show.
#![forbid(unsafe_code)]

pub mod at_rest;
pub mod auth;
pub mod config;
pub mod connections;
pub mod data_dir;
pub mod error;
pub mod fuzzing;
pub mod metrics;
pub mod password_checks;
pub mod protocol;
pub mod reply;
pub mod s3;
pub mod state_path;
pub mod states;
pub mod storage;
pub mod throttle;
pub mod tls;
pub mod ui;
pub mod versions;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use axum::routing::{any, get, post};
use axum::Router;

pub use at_rest::AtRest;
pub use config::ServerConfig;
pub use data_dir::DataDir;
pub use storage::Storage;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct App {
    pub storage: Arc<dyn Storage>,
    pub at_rest: Arc<AtRest>,
    pub max_body_bytes: u64,
    pub auth: Option<auth::Auth>,
    pub metrics: metrics::Metrics,
    /// Set when the configuration has a `tls` block.
    pub tls: Option<Tls>,
    /// The web console's sessions and caches.
    pub console: ui::Console,
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
    DataDir(#[from] data_dir::StorageError),
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
            auth: config.auth,
            metrics: metrics::Metrics::default(),
            tls,
            console: ui::Console::default(),
        })
    }
}

/// The routes. Nothing redirects (but the console's pages, after a form): an unknown path is a
/// plain 404.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/state", any(protocol::no_path))
        .route("/state/", any(protocol::no_path))
        .route("/state/{*path}", any(protocol::handle))
        .route("/v1/states", get(versions::states))
        .route("/v1/locks", get(versions::locks))
        .route("/v1/versions/{*path}", get(versions::versions))
        .route("/v1/rollback/{*path}", post(versions::rollback))
        .route("/healthz", get(versions::healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(ui::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .with_state(app)
}

/// Serves (over TLS when configured) until `shutdown` completes, then finishes the requests
/// in flight: [`connections::serve`], with its deadlines and connection cap.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connections::serve(listener, app, shutdown).await
}
