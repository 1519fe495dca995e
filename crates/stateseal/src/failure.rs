//! How the CLI fails: on stderr one line per problem (`error: file:line:col: summary: detail`),
//! the fix once at the end of the last, and a documented exit code.

use std::fmt;

use stateseal_encryption::key_provider::ProviderErrorKind;
use stateseal_encryption::{Diagnostics, Error};

/// Exit codes (stable; scripts depend on them).
pub mod exit {
    /// Anything not covered below (I/O errors, …).
    pub const FAILURE: i32 = 1;
    /// Bad command-line usage (clap's own code).
    pub const USAGE: i32 = 2;
    /// The encryption configuration is invalid, or a key provider could not be set up.
    pub const CONFIG: i32 = 3;
    /// Decryption failed: wrong passphrase or key, or the data was modified.
    pub const DECRYPT: i32 = 4;
    /// The input is not what was expected (not an envelope nor a valid plaintext, an unknown
    /// envelope version, plaintext while no `unencrypted` method is configured, an empty file,
    /// invalid key-provider metadata in an envelope, an input over `--max-input-size`).
    pub const INPUT: i32 = 5;
    /// A state lock is held by someone else.
    pub const LOCKED: i32 = 6;
    /// A `--require` or verification check failed (the offenders are listed).
    pub const CHECK: i32 = 8;
}

/// A CLI error: what happened, what to do about it, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub cause: String,
    /// Further problems of the same kind (the other diagnostics), one line each.
    pub more: Vec<String>,
    pub fix: Option<String>,
    pub code: i32,
}

impl Failure {
    pub fn new(code: i32, cause: impl Into<String>, fix: impl Into<String>) -> Failure {
        Failure {
            cause: cause.into(),
            more: Vec::new(),
            fix: Some(fix.into()),
            code,
        }
    }

    pub fn plain(code: i32, cause: impl Into<String>) -> Failure {
        Failure {
            cause: cause.into(),
            more: Vec::new(),
            fix: None,
            code,
        }
    }

    /// Prefixes the cause with what was being worked on (a file name, say).
    pub fn context(mut self, what: impl fmt::Display) -> Failure {
        self.cause = format!("{what}: {}", self.cause);
        self
    }

    /// Replaces the fix.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Failure {
        self.fix = Some(fix.into());
        self
    }

    /// What is printed on stderr: `error: PROBLEM` per problem, the fix after the last.
    pub fn render(&self) -> String {
        let mut lines: Vec<String> = std::iter::once(&self.cause)
            .chain(&self.more)
            .map(|c| format!("error: {}", one_line(c)))
            .collect();
        if let (Some(fix), Some(last)) = (&self.fix, lines.last_mut()) {
            last.push_str(&format!(" (fix: {})", one_line(fix)));
        }
        lines.join("\n")
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<Diagnostics> for Failure {
    /// Every error, one per line (warnings only when there is no error).
    fn from(d: Diagnostics) -> Failure {
        let mut shown: Vec<String> = d.errors().map(|e| e.to_string()).collect();
        if shown.is_empty() {
            shown = d.0.iter().map(|e| e.to_string()).collect();
        }
        let cause = if shown.is_empty() {
            String::new()
        } else {
            shown.remove(0)
        };
        Failure {
            more: shown,
            ..Failure::new(
                exit::CONFIG,
                cause,
                "correct the encryption configuration at the location shown",
            )
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Config(d) => Failure::from(d),
            Error::KeyProvider {
                kind: ProviderErrorKind::BadMetadata,
                diagnostics,
                ..
            } => {
                // The input's stored metadata is invalid, not the configuration: exit 5.
                let mut f = Failure::from(diagnostics);
                f.code = exit::INPUT;
                f.fix = Some("the file's stored key-provider metadata is invalid: it was modified (restore it from a backup or a previous version), or written by another key provider under the same name or encrypted_metadata_alias (configure that provider as primary or fallback)".into());
                f
            }
            Error::KeyProvider { kind, diagnostics, .. } => {
                let mut f = Failure::from(diagnostics);
                f.fix = Some(
                    match kind {
                        ProviderErrorKind::Unreachable => "check that the key service is reachable from here (endpoint, network, proxy) and try again",
                        ProviderErrorKind::Denied => "check the key provider's credentials, and that its key policy or grants allow this operation",
                        _ => "check the key provider's settings and credentials, and that the key service is reachable",
                    }
                    .into(),
                );
                f
            }
            Error::RoundTripMismatch => Failure::plain(
                exit::FAILURE,
                "the new envelope did not decrypt back to the same bytes; nothing was written",
            ),
            Error::EncryptedWithoutConfig { .. } => Failure::new(
                exit::INPUT,
                e.to_string(),
                "configure encryption for this target: a terraform { encryption { … } } block in the --chdir directory, --config FILE, or TF_ENCRYPTION",
            ),
            Error::UnencryptedPayload { ref target } => Failure::new(
                exit::INPUT,
                format!("the input is not encrypted, and the {target} target has no unencrypted method configured ({e})"),
                format!("to accept plaintext, add method \"unencrypted\" \"migrate\" {{}} as the {target} fallback; to encrypt it, run `stateseal encrypt`"),
            ),
            Error::InvalidPayload { ref target, .. } => Failure::new(
                exit::INPUT,
                format!("the input is neither an OpenTofu encrypted envelope nor a valid {target} plaintext ({e})"),
                "check that this is the right file and that it is not truncated",
            ),
            Error::UnsupportedVersion(ref v) => Failure::new(
                exit::INPUT,
                format!("unknown envelope version {v:?} ({e})"),
                "only v0 exists; the file was written by a newer or foreign tool, or modified",
            ),
            Error::DecryptionFailed { no_key: true, .. } => Failure::new(
                exit::DECRYPT,
                format!("no key could be derived for this file ({e})"),
                "the file's metadata names key providers this configuration does not have: configure the provider that wrote it (same type and name, or the same encrypted_metadata_alias) as primary or fallback",
            ),
            Error::DecryptionFailed { .. } => Failure::new(
                exit::DECRYPT,
                format!("wrong passphrase or key, or the file was modified: authentication failed ({e})"),
                "check the passphrase/key (var values, TF_ENCRYPTION); if you rotated keys, add the old method as a fallback",
            ),
            Error::PassthroughMismatch(_) => Failure::new(
                exit::INPUT,
                format!("the envelope's plaintext serial/lineage do not match the encrypted state ({e})"),
                "the envelope header was edited: restore it from a backup or a previous version",
            ),
            Error::InvalidPlaintext { .. } => Failure::new(exit::INPUT, e.to_string(), "pass a Terraform/OpenTofu state (JSON) or use --target plan for plan files"),
            other => Failure::plain(exit::FAILURE, other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::plain(exit::FAILURE, e.to_string())
    }
}
