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
//! and an `auth { … }` block (see [`crate::auth`]).
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

/// A loaded configuration.
pub struct ServerConfig {
    pub max_body_bytes: u64,
    pub require_client_encryption: bool,
    pub encryption: Encryption,
    /// True when an `encryption` block or `TF_ENCRYPTION` was given.
    pub encryption_configured: bool,
    /// The `auth` block; `None`: no authentication (loopback only, unless forced).
    pub auth: Option<crate::auth::Auth>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("require_client_encryption", &self.require_client_encryption)
            .field("encryption_configured", &self.encryption_configured)
            .field("auth", &self.auth)
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
            auth: None,
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
                "encryption" | "auth" => diags.push(Diagnostic::error(
                    format!("Duplicate {} block", b.kind),
                    format!("Only one {} block is allowed.", b.kind),
                    Some(&b.location),
                )),
                other => diags.push(Diagnostic::error(
                    "Unsupported block type",
                    format!("Blocks of type {other:?} are not expected here; the server knows encryption and auth."),
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
            cfg.encryption = Encryption::new(merged, evaluator, Registry::default())?;
            let problems = cfg.encryption.check_buildable();
            if problems.has_errors() {
                return Err(problems);
            }
        }
        Ok(cfg)
    }
}
