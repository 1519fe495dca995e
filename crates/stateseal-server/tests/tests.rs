//! The server's integration tests, one binary (`cargo test -p stateseal-server --test tests`):
//! a module per area, sharing the harness in `support`.

#[macro_use]
mod support;
mod at_rest;
mod auth;
mod concurrency;
mod console;
mod counting_proxy;
mod crash;
mod hostile;
mod http_store;
mod key_service;
mod metrics;
mod oidc;
mod protocol;
mod s3_config;
mod s3_listing;
mod s3_locks;
mod shutdown;
mod terraform;
mod tls;
mod tofu;
mod versions;
