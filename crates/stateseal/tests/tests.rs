//! Integration tests of the stateseal binary: the file commands, the backend commands against moto and real Terraform, key rotation, `serve`, the hardened-backend commands (bootstrap, SSE migration, verify), reliability under hostile input (issue 17).
//!
//! One integration-test binary for the crate (each module below is one area), so the test
//! suite links this crate and its dependencies once, not once per file.

mod architecture;
mod backend;
mod cli;
mod fleet_cli;
mod guide_s3_variables;
mod hardening_cli;
mod http_backend;
mod kms_rotation;
mod opentofu_parity;
mod recovery;
mod reliability;
mod serve;
mod tofu;
