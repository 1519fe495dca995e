//! Building an [`Encryption`] the way OpenTofu does for a working directory: the module's
//! `encryption` block, `TF_ENCRYPTION` merged over it, variables and the workspace.

use std::path::PathBuf;

use crate::config::module::{self, Module};
use crate::config::variables::{self, VarInputs};
use crate::config::{eval::StaticEvaluator, EncryptionConfig};
use crate::registry::Registry;
use crate::targets::Encryption;
use stateseal_core::diagnostics::{Diagnostic, Diagnostics};

/// Where the configuration comes from.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The root module directory (`--chdir`).
    pub dir: PathBuf,
    /// A standalone encryption file (`--config FILE`), used instead of the module's block: the
    /// body of an encryption block, or a file with one `encryption { … }` block (such as
    /// `stateseal serve`'s configuration); see [`EncryptionConfig::parse_config_file_str`].
    pub config_file: Option<PathBuf>,
    /// The value of `TF_ENCRYPTION`, if set.
    pub env_encryption: Option<String>,
    pub vars: VarInputs,
    /// The workspace (`terraform.workspace`).
    pub workspace: String,
}

impl Options {
    /// Options for `dir` that read `TF_ENCRYPTION` from the process environment.
    pub fn from_env(dir: impl Into<PathBuf>) -> Options {
        Options {
            dir: dir.into(),
            env_encryption: std::env::var("TF_ENCRYPTION").ok(),
            workspace: "default".into(),
            ..Options::default()
        }
    }
}

/// The loaded module and the validated encryption.
pub struct Loaded {
    pub module: Module,
    /// The module's static evaluator (variables resolved, locals evaluated): the encryption
    /// configuration and the backend block are evaluated with it.
    pub evaluator: StaticEvaluator,
    /// Shared, so that stores, servers and tasks can hold it (`Arc::clone`).
    pub encryption: std::sync::Arc<Encryption>,
    /// True when any encryption configuration was found (code, file or `TF_ENCRYPTION`).
    pub configured: bool,
}

/// Loads and validates. `env` looks up environment variables (`TF_VAR_*`).
pub fn load(
    opts: &Options,
    registry: Registry,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Diagnostics> {
    let module = module::load(&opts.dir)?;
    let mut code = module.encryption.clone();
    if let Some(path) = &opts.config_file {
        let src = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Cannot read encryption configuration",
                format!("{}: {e}", path.display()),
                None,
            ))
        })?;
        code = Some(EncryptionConfig::parse_config_file_str(
            &path.display().to_string(),
            &src,
        )?);
    }
    let from_env = EncryptionConfig::parse_env(opts.env_encryption.as_deref())?;
    let configured = code.is_some() || from_env.is_some();
    let values = variables::resolve(&module, &opts.vars, env)?;
    let workspace = if opts.workspace.is_empty() {
        "default"
    } else {
        &opts.workspace
    };
    let evaluator = StaticEvaluator::new(&module, values, workspace);
    let encryption = match (code, from_env) {
        (Some(c), Some(e)) => Encryption::new(c.merge(e), evaluator.clone(), registry)?,
        (Some(c), None) | (None, Some(c)) => Encryption::new(c, evaluator.clone(), registry)?,
        (None, None) => Encryption::disabled(),
    };
    Ok(Loaded {
        module,
        evaluator,
        encryption: encryption.into(),
        configured,
    })
}
