//! The context every command runs in (ripgrep's "hiargs"): the global options (`--chdir`,
//! variables, workspace) and the lazily loaded configuration.

use std::cell::OnceCell;
use std::path::PathBuf;

use clap::Args;
use stateseal_encryption::config::variables::VarInputs;
use stateseal_encryption::load::{self, Loaded, Options};
use stateseal_encryption::Registry;

use crate::failure::{exit, Failure};

#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Switch to DIR before doing anything (like terraform -chdir); the configuration is read from there.
    #[arg(long, global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Set a variable used by the configuration: encryption and backend blocks (repeatable).
    #[arg(long = "var", global = true, value_name = "NAME=VALUE", value_parser = VarInputs::parse_var)]
    pub vars: Vec<(String, String)>,
    /// Read variables from a .tfvars or .tfvars.json file (repeatable; applied before --var).
    #[arg(long = "var-file", global = true, value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// For `serve`: the server configuration (docs/SERVER.md). For every other command: read the
    /// encryption configuration from FILE instead of the directory's *.tf files: the body of an
    /// encryption block (HCL or JSON), or a file holding one `encryption { … }` block, such as the
    /// server's configuration (to decrypt what the server stored). TF_ENCRYPTION is merged over it.
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The workspace (terraform.workspace). Default: TF_WORKSPACE, else .terraform/environment, else "default".
    #[arg(long, global = true, value_name = "NAME")]
    pub workspace: Option<String>,
    /// Backend configuration: KEY=VALUE, or a file of attributes (repeatable; over the backend block).
    #[arg(long = "backend-config", global = true, value_name = "KEY=VALUE|FILE")]
    pub backend_config: Vec<String>,
    /// Refuse inputs larger than SIZE: a bigger FILE is not read at all, stdin stops at SIZE.
    /// Bytes, or a number with a unit: KiB, MiB, GiB, TiB (or K, M, G, T), KB, MB, GB, TB.
    #[arg(long = "max-input-size", global = true, value_name = "SIZE",
          default_value = crate::io::DEFAULT_MAX_INPUT, value_parser = stateseal_core::size::parse_size)]
    pub max_input_size: u64,
}

pub struct Context {
    options: Options,
    backend_config: Vec<String>,
    max_input_size: u64,
    loaded: OnceCell<Loaded>,
}

impl Context {
    pub fn new(args: &GlobalArgs) -> Result<Context, Failure> {
        if let Some(dir) = &args.chdir {
            std::env::set_current_dir(dir).map_err(|e| {
                Failure::new(
                    exit::FAILURE,
                    format!("cannot change to directory {}: {e}", dir.display()),
                    "pass an existing directory to --chdir",
                )
            })?;
        }
        let options = Options {
            dir: PathBuf::from("."),
            config_file: args.config.clone(),
            env_encryption: std::env::var("TF_ENCRYPTION").ok(),
            vars: VarInputs {
                vars: args.vars.clone(),
                var_files: args.var_files.clone(),
            },
            workspace: workspace(args.workspace.as_deref()),
        };
        Ok(Context {
            options,
            backend_config: args.backend_config.clone(),
            max_input_size: args.max_input_size,
            loaded: OnceCell::new(),
        })
    }

    pub fn workspace(&self) -> &str {
        &self.options.workspace
    }

    /// `--max-input-size`: the most bytes a command reads from a file or stdin.
    pub fn max_input_size(&self) -> u64 {
        self.max_input_size
    }

    /// `--backend-config` arguments, in order.
    pub fn backend_config(&self) -> &[String] {
        &self.backend_config
    }

    /// The module and its validated encryption configuration (loaded once).
    pub fn loaded(&self) -> Result<&Loaded, Failure> {
        if let Some(l) = self.loaded.get() {
            return Ok(l);
        }
        let l = load::load(&self.options, Registry::default(), &|k| {
            std::env::var(k).ok()
        })?;
        Ok(self.loaded.get_or_init(|| l))
    }
}

/// `--workspace`, else `TF_WORKSPACE`, else `.terraform/environment`, else `default`.
pub fn workspace(flag: Option<&str>) -> String {
    if let Some(w) = flag.filter(|w| !w.is_empty()) {
        return w.to_string();
    }
    if let Ok(w) = std::env::var("TF_WORKSPACE") {
        if !w.is_empty() {
            return w;
        }
    }
    if let Ok(w) = std::fs::read_to_string(".terraform/environment") {
        let w = w.trim();
        if !w.is_empty() {
            return w.to_string();
        }
    }
    stateseal_core::workspace::DEFAULT_WORKSPACE.to_string()
}
