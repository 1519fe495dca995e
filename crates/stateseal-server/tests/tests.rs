//! The server's integration tests, one binary (`cargo test -p stateseal-server --test tests`):
//! a module per area, sharing the harness in `support`.

mod at_rest;
mod auth;
mod concurrency;
mod console;
mod crash;
mod metrics;
mod protocol;
mod shutdown;
mod support;
mod terraform;
mod tls;
mod versions;
