//! The server configuration file (`stateseal serve --config FILE`), HCL:
//!
//! ```hcl
//! max_body_bytes            = 134217728  # 128 MiB, the default
//! require_client_encryption = false      # refuse plaintext uploads with 400
//!
//! encryption {                           # OpenTofu's encryption block; its `state` target
//!   key_provider "pbkdf2" "main" {       # encrypts plaintext uploads at rest
//!     passphrase = "correct-horse-battery-staple"
//!   }
//!   method "aes_gcm" "main" { keys = key_provider.pbkdf2.main }
//!   state { method = method.aes_gcm.main }
//! }
//! ```
//!
//! an `auth { … }` block (see [`crate::auth`]), a `tls { … }` block (see [`crate::tls`]; file
//! names relative to the working directory) and, to keep states in S3 instead of the data
//! directory, a `storage "s3" { … }` block (see [`crate::s3`]) with the attributes of
//! OpenTofu's `backend "s3"` block but `key` (each state is stored under its own path):
//!
//! ```hcl
//! storage "s3" {
//!   bucket         = "team-states"
//!   region         = "eu-west-1"
//!   dynamodb_table = "tf-locks"   # and/or use_lockfile = true
//! }
//! ```
//!
//! `TF_ENCRYPTION` is merged over the `encryption` block by OpenTofu's rules, as the CLI does.

use std::path::Path;
use std::sync::Arc;

use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::syntax;
use stateseal_encryption::config::EncryptionConfig;
use stateseal_encryption::{Diagnostic, Diagnostics, Encryption, Registry};

/// Default body limit: 128 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 128 * 1024 * 1024;

/// The placeholder passphrase of `examples/server/server.hcl`: public, so a server that encrypts
/// with it protects nothing, and the banner says so.
pub const EXAMPLE_PASSPHRASE: &str = "example passphrase: replace it before storing real states";

/// A loaded configuration.
pub struct ServerConfig {
    pub max_body_bytes: u64,
    pub require_client_encryption: bool,
    pub encryption: Encryption,
    /// True when an `encryption` block or `TF_ENCRYPTION` was given.
    pub encryption_configured: bool,
    /// True when a pbkdf2 key provider of the (merged) encryption uses [`EXAMPLE_PASSPHRASE`].
    pub example_passphrase: bool,
    /// The `auth` block; `None`: no authentication (loopback only, unless forced).
    pub auth: Option<crate::auth::Auth>,
    /// The `tls` block; `None`: plain HTTP.
    pub tls: Option<crate::tls::TlsSettings>,
    /// Where states are kept.
    pub storage: StorageConfig,
}

/// Where states are kept.
#[derive(Debug, Default)]
pub enum StorageConfig {
    /// The data directory (`--data-dir`).
    #[default]
    DataDir,
    /// `storage "s3" { … }`.
    S3(Box<stateseal_store::s3::S3Config>),
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("require_client_encryption", &self.require_client_encryption)
            .field("encryption_configured", &self.encryption_configured)
            .field("example_passphrase", &self.example_passphrase)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("storage", &self.storage)
            .finish()
    }
}

impl ServerConfig {
    /// Reads `file` (or nothing: all defaults) with `env_encryption` (`TF_ENCRYPTION`) merged
    /// over its encryption block.
    pub fn load(
        file: Option<&Path>,
        env_encryption: Option<&str>,
    ) -> Result<ServerConfig, Diagnostics> {
        match file {
            None => ServerConfig::parse("(no configuration file)", "", env_encryption),
            Some(path) => {
                let src = std::fs::read_to_string(path).map_err(|e| {
                    Diagnostics::from(Diagnostic::error(
                        "Cannot read the server configuration",
                        format!("{}: {e}", path.display()),
                        None,
                    ))
                })?;
                ServerConfig::parse(&path.display().to_string(), &src, env_encryption)
            }
        }
    }

    /// Parses configuration source text.
    pub fn parse(
        name: &str,
        src: &str,
        env_encryption: Option<&str>,
    ) -> Result<ServerConfig, Diagnostics> {
        let file: Arc<str> = name.into();
        let body = syntax::parse_hcl(&file, src)?;
        let evaluator = StaticEvaluator::default();
        let mut diags = Diagnostics::default();
        let mut cfg = ServerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            require_client_encryption: false,
            encryption: Encryption::disabled(),
            encryption_configured: false,
            example_passphrase: false,
            auth: None,
            tls: None,
            storage: StorageConfig::DataDir,
        };
        for a in &body.attributes {
            let value = match evaluator.eval(&a.expr, &a.location, &hcl::Value::Null) {
                Ok(v) => v,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            let wrong = |expected: &str| {
                Diagnostic::error(
                    "Invalid server setting",
                    format!("{} must be {expected}.", a.name),
                    Some(&a.location),
                )
            };
            match a.name.as_str() {
                "max_body_bytes" => match value.as_u64() {
                    Some(n) if n > 0 => cfg.max_body_bytes = n,
                    _ => diags.push(wrong("a positive whole number of bytes")),
                },
                "require_client_encryption" => match value.as_bool() {
                    Some(b) => cfg.require_client_encryption = b,
                    None => diags.push(wrong("true or false")),
                },
                other => diags.push(Diagnostic::error(
                    "Unsupported argument",
                    format!("An argument named {other:?} is not expected here; the server settings are max_body_bytes and require_client_encryption."),
                    Some(&a.location),
                )),
            }
        }
        let mut code = None;
        for b in &body.blocks {
            match b.kind.as_str() {
                "encryption" if code.is_none() => match EncryptionConfig::from_body(&b.body) {
                    Ok(c) => code = Some(c),
                    Err(d) => diags.0.extend(d.0),
                },
                "auth" if cfg.auth.is_none() => match crate::auth::Auth::from_block(b, &evaluator) {
                    Ok(a) => cfg.auth = Some(a),
                    Err(d) => diags.0.extend(d.0),
                },
                "tls" if cfg.tls.is_none() => match tls_block(b, &evaluator) {
                    Ok(t) => cfg.tls = Some(t),
                    Err(d) => diags.0.extend(d.0),
                },
                "storage" if matches!(cfg.storage, StorageConfig::DataDir) => {
                    match storage_block(b, &evaluator) {
                        Ok(s) => cfg.storage = s,
                        Err(d) => diags.push(d),
                    }
                }
                "encryption" | "auth" | "tls" | "storage" => diags.push(Diagnostic::error(
                    format!("Duplicate {} block", b.kind),
                    format!("Only one {} block is allowed.", b.kind),
                    Some(&b.location),
                )),
                other => diags.push(Diagnostic::error(
                    "Unsupported block type",
                    format!("Blocks of type {other:?} are not expected here; the server knows encryption, auth, tls and storage."),
                    Some(&b.location),
                )),
            }
        }
        let from_env = match EncryptionConfig::parse_env(env_encryption) {
            Ok(e) => e,
            Err(d) => {
                diags.0.extend(d.0);
                None
            }
        };
        if diags.has_errors() {
            return Err(diags);
        }
        let merged = match (code, from_env) {
            (Some(c), Some(e)) => Some(c.merge(e)),
            (c, e) => c.or(e),
        };
        if let Some(merged) = merged {
            cfg.encryption_configured = true;
            cfg.example_passphrase = uses_example_passphrase(&merged, &evaluator);
            cfg.encryption = Encryption::new(merged, evaluator, Registry::default())?;
            let problems = cfg.encryption.check_buildable();
            if problems.has_errors() {
                return Err(problems);
            }
        }
        Ok(cfg)
    }
}

/// Whether a pbkdf2 key provider's passphrase is the example's (checked after `TF_ENCRYPTION`
/// was merged, so a real passphrase passed that way clears it).
fn uses_example_passphrase(config: &EncryptionConfig, ev: &StaticEvaluator) -> bool {
    config
        .key_providers
        .iter()
        .filter(|p| p.kind == "pbkdf2")
        .flat_map(|p| p.body.attributes.iter())
        .filter(|a| a.name == "passphrase")
        .any(|a| {
            ev.eval(&a.expr, &a.location, &hcl::Value::Null)
                .is_ok_and(|v| v.as_str() == Some(EXAMPLE_PASSPHRASE))
        })
}

/// Reads a `storage "s3"` block with the store crate's S3 settings (the `backend "s3"`
/// attributes but `key`; region and credentials may come from the AWS environment).
fn storage_block(
    b: &stateseal_encryption::config::syntax::Block,
    ev: &StaticEvaluator,
) -> Result<StorageConfig, Diagnostic> {
    if b.labels.first().map(String::as_str) != Some("s3") || b.labels.len() != 1 {
        return Err(Diagnostic::error(
            "Unsupported storage",
            format!(
                "storage {:?} is not known: write storage \"s3\" {{ … }} to keep states in S3, or leave the block out to keep them in the data directory (--data-dir).",
                b.labels.join(" ")
            ),
            Some(&b.location),
        ));
    }
    stateseal_store::s3::S3Builder::new()
        .with_block(b, ev)
        .build_config_without_key(&|k| std::env::var(k).ok())
        .map(|c| StorageConfig::S3(Box::new(c)))
        .map_err(|e| {
            let message = match e {
                stateseal_store::Error::Config(m) => m,
                other => other.to_string(),
            };
            Diagnostic::error("Invalid storage \"s3\" block", message, Some(&b.location))
        })
}

/// Reads a `tls` block.
fn tls_block(
    b: &stateseal_encryption::config::syntax::Block,
    ev: &StaticEvaluator,
) -> Result<crate::tls::TlsSettings, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut files: [Option<std::path::PathBuf>; 3] = [None, None, None];
    for a in &b.body.attributes {
        let slot = match a.name.as_str() {
            "cert_file" => 0,
            "key_file" => 1,
            "client_ca_file" => 2,
            other => {
                diags.push(Diagnostic::error(
                    "Unsupported argument",
                    format!("{other:?} is not expected in tls; use cert_file, key_file and client_ca_file."),
                    Some(&a.location),
                ));
                continue;
            }
        };
        match ev.eval(&a.expr, &a.location, &hcl::Value::Null) {
            Ok(hcl::Value::String(s)) if !s.is_empty() => files[slot] = Some(s.into()),
            Ok(_) => diags.push(Diagnostic::error(
                "Invalid value",
                format!("{} must be a file name.", a.name),
                Some(&a.location),
            )),
            Err(d) => diags.push(d),
        }
    }
    let [cert, key, ca] = files;
    match (cert, key) {
        (Some(cert_file), Some(key_file)) if !diags.has_errors() => Ok(crate::tls::TlsSettings {
            cert_file,
            key_file,
            client_ca_file: ca,
        }),
        (cert, key) => {
            if cert.is_none() || key.is_none() {
                diags.push(Diagnostic::error(
                    "Missing required argument",
                    "A tls block needs cert_file and key_file.",
                    Some(&b.location),
                ));
            }
            Err(diags)
        }
    }
}
