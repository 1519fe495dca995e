//! The small core every stateseal crate shares, with no heavy dependencies:
//!
//! * [`Secret`]: key material and passphrases, zeroized on drop and redacted in `Debug`;
//! * [`gojson`] and [`json_scan`]: Go-compatible JSON writing and a fast top-level scanner;
//! * [`Diagnostics`]: errors and warnings with `file:line:col` locations;
//! * [`state`]: the few fields of a state that are read (the bytes stay opaque);
//! * [`size`]: byte sizes (`1GiB`) and reading an input up to a limit;
//! * [`check_import`]: OpenTofu's rule for replacing a stored state (its `CheckValidImport`), shared by `state push`,
//!   the HTTP server and the fleet.
#![forbid(unsafe_code)]

pub mod diagnostics;
pub mod gojson;
pub mod hex;
pub mod json_scan;
pub mod secret;
pub mod service;
pub mod size;
pub mod state;
pub mod successor;
pub mod workspace;

pub use diagnostics::{Diagnostic, Diagnostics, Location, Severity};
pub use secret::{Keys, Secret};
pub use service::ServiceErrorKind;
pub use state::{StateError, StateHeader, StateMeta};
pub use successor::{check_import, check_update, Content, Refusal, Snapshot, Successor};
