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
//! * [`app`]: [`App`], what the handlers share, and how the server starts;
//! * [`api`]: the JSON API (states, versions, locks), rollback and `/healthz`;
//! * [`auth`]: users (argon2id), tokens (SHA-256), grants, with [`throttle`] (brute-force
//!   back-off) and [`password_checks`] (bounded argon2 runs);
//! * [`connections`]: accepting connections, HTTP/1.1 only, deadlines and the connection cap;
//! * [`metrics`]: `/metrics` (Prometheus), labelled by route template;
//! * [`tls`]: HTTPS through rustls, with optional client certificates;
//! * [`config`]: the server configuration file;
//! * [`ui`]: the web console at `/ui`.
//!
//! The library never prints: it logs through `tracing`, and the binary decides what to show.
//!
//! The public surface is [`App`], [`ServerConfig`], [`serve`] and [`router`] (with [`config`] and
//! [`auth`] for the CLI); the other modules are public only for the tests and fuzz targets and
//! are hidden from the documentation.
#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod api;
mod app;
#[doc(hidden)]
pub mod at_rest;
pub mod auth;
pub mod config;
#[doc(hidden)]
pub mod connections;
#[doc(hidden)]
pub mod data_dir;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod metrics;
pub mod oidc;
#[doc(hidden)]
pub mod password_checks;
#[doc(hidden)]
pub mod protocol;
#[doc(hidden)]
pub mod read_cache;
#[doc(hidden)]
pub mod reply;
#[doc(hidden)]
pub mod s3;
#[doc(hidden)]
pub mod state_path;
#[doc(hidden)]
pub mod states;
#[doc(hidden)]
pub mod storage;
#[doc(hidden)]
pub mod throttle;
#[doc(hidden)]
pub mod tls;
#[doc(hidden)]
pub mod ui;

use std::future::Future;
use std::sync::Arc;

use axum::routing::{any, get, post};
use axum::Router;

pub use app::{App, StartError, Tls};
pub use at_rest::AtRest;
pub use config::ServerConfig;
pub use data_dir::DataDir;
pub use storage::Storage;

/// The routes. Nothing redirects (but the console's pages, after a form): an unknown path is a
/// plain 404.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/state", any(protocol::no_path))
        .route("/state/", any(protocol::no_path))
        .route("/state/{*path}", any(protocol::handle))
        .route("/v1/states", get(api::states))
        .route("/v1/locks", get(api::locks))
        .route("/v1/versions/{*path}", get(api::versions))
        .route("/v1/rollback/{*path}", post(api::rollback))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(ui::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .with_state(app::Shared(app))
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
