//! OpenTofu-compatible state and plan encryption.
//!
//! * [`config`]: the configuration language (HCL, JSON, `TF_ENCRYPTION`, variables);
//! * [`Registry`]: key-provider and method types (not global);
//! * [`Encryption`]: a validated configuration with its `state`, `plan` and remote-state
//!   targets, which encrypt to and decrypt from the `v0` [`envelope`].
#![forbid(unsafe_code)]

pub mod config;
pub mod describe;
pub mod envelope;
mod error;
pub mod external_program;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(any(feature = "gcp-kms", feature = "openbao", feature = "azure-vault"))]
mod http_json;
pub mod key_cache;
pub mod key_provider;
mod key_values;
pub mod load;
pub mod manual;
pub mod method;
#[doc(hidden)]
pub mod randomness;
mod registry;
mod targets;

// The shared core, re-exported under the paths this crate has always had.
pub use error::{ConfigError, Error, NotPlaintext, Passthrough, PayloadError, Plaintext};
pub use registry::{Registry, UNENCRYPTED};
pub use stateseal_core::{diagnostics, gojson, json_scan, secret};
pub use stateseal_core::{Diagnostic, Diagnostics, Location, Severity};
pub use stateseal_core::{Keys, Refusal, Secret};
pub use targets::{Encryption, PayloadKind, Status, Target, TargetEncryption, UnknownTarget};
