//! OpenTofu-compatible state and plan encryption.
//!
//! * [`config`]: the configuration language (HCL, JSON, `TF_ENCRYPTION`, variables);
//! * [`Registry`]: key-provider and method types (not global);
//! * [`Encryption`]: a validated configuration with its `state`, `plan` and remote-state
//!   targets, which encrypt to and decrypt from the `v0` [`envelope`].
#![forbid(unsafe_code)]

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;
pub mod diagnostics;
pub mod envelope;
mod error;
pub mod external_program;
#[doc(hidden)]
pub mod fuzzing;
pub mod gojson;
#[cfg(any(feature = "gcp-kms", feature = "openbao", feature = "azure-vault"))]
mod http_json;
pub mod json_scan;
pub mod key_provider;
pub mod load;
pub mod manual;
pub mod method;
mod registry;
pub mod secret;
mod target;

pub use diagnostics::{Diagnostic, Diagnostics, Location, Severity};
pub use error::Error;
pub use registry::{Registry, UNENCRYPTED};
pub use secret::{Keys, Secret};
pub use target::{Encryption, Status, Target, TargetEncryption};
