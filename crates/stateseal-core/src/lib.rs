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

#[cfg(test)]
mod rules {
    /// docs/ARCHITECTURE.md: no `pub fn` at a crate boundary returns `Result<_, String>`; the
    /// callers of the ground floor choose by variant. Every public function of core is checked.
    #[test]
    fn no_public_function_returns_a_string_error() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // A signature can span lines: join each `pub fn` up to its body's `{`.
            for (i, _) in text.match_indices("pub fn ") {
                let signature: String = text[i..]
                    .split('{')
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                if signature.contains(", String>") {
                    offenders.push(format!("{}: {signature}", path.display()));
                }
            }
        }
        assert!(offenders.is_empty(), "{offenders:#?}");
    }
}
