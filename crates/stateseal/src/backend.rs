//! Opening the directory's state backend (`backend "s3"`, `backend "local"`, or none = local)
//! for the state, lock, workspace and outputs commands, and how store errors become failures.

use std::sync::Arc;

use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::Refusal;
use stateseal_store::s3::{S3Builder, S3Store};
use stateseal_store::{Error, LocalStore, LockInfo, Store};

use crate::failure::{exit, Failure};
use crate::global::Context;

/// Runs a future on a current-thread runtime (the commands are sequential).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime builds")
        .block_on(f)
}

/// The store the directory's backend configuration points at.
pub async fn open(ctx: &Context) -> Result<Arc<dyn Store>, Failure> {
    let loaded = ctx.loaded()?;
    let module = &loaded.module;
    let Some(block) = &module.backend else {
        if !ctx.backend_config().is_empty() {
            return Err(Failure::new(
                exit::CONFIG,
                "--backend-config was given, but the configuration has no backend block",
                "add a terraform { backend \"s3\" { … } } block, or drop --backend-config",
            ));
        }
        return Ok(Arc::new(LocalStore::new(&module.dir)));
    };
    let kind = block.labels.first().map(String::as_str).unwrap_or("");
    let where_ = format!("{}:{}", block.location.file, block.location.line);
    let evaluator = StaticEvaluator::new(module, Default::default(), ctx.workspace());
    match kind {
        "s3" => {
            let mut b = S3Builder::new().with_block(block, &evaluator);
            for kv in ctx.backend_config() {
                b = b.with_backend_config(kv);
            }
            let cfg = b
                .build_config(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
                .map_err(|e| Failure::from(e).context(&where_))?;
            Ok(Arc::new(S3Store::connect(cfg).await?))
        }
        "local" => {
            let mut path = None;
            let mut workspace_dir = None;
            for a in &block.body.attributes {
                let v = evaluator
                    .eval(&a.expr, &a.location, &hcl::Value::Null)
                    .map_err(|d| Failure::new(exit::CONFIG, d.to_string(), "use a string"))?;
                let s = v.as_str().map(str::to_string).ok_or_else(|| {
                    Failure::new(
                        exit::CONFIG,
                        format!(
                            "{}:{}: {} must be a string",
                            a.location.file, a.location.line, a.name
                        ),
                        "use a string",
                    )
                })?;
                match a.name.as_str() {
                    "path" => path = Some(s),
                    "workspace_dir" => workspace_dir = Some(s),
                    other => {
                        return Err(Failure::new(
                            exit::CONFIG,
                            format!(
                                "{}:{}: unsupported argument {other:?} in the local backend",
                                a.location.file, a.location.line
                            ),
                            "the local backend takes path and workspace_dir",
                        ))
                    }
                }
            }
            Ok(Arc::new(LocalStore::with_paths(
                &module.dir,
                path.as_deref(),
                workspace_dir.as_deref(),
            )))
        }
        other => Err(Failure::new(
            exit::CONFIG,
            format!("{where_}: backend {other:?} is not supported"),
            "stateseal supports the s3 and local backends",
        )),
    }
}

/// Terraform's lock-conflict report, on stderr: the holder's ID, Path, Operation, Who,
/// Version, Created and Info.
pub fn print_lock_conflict(message: &str, holder: &LockInfo) {
    eprintln!(
        "\nError: Error acquiring the state lock\n\nError message: {message}\n{}\n\
stateseal takes the same lock as OpenTofu and Terraform, so it does not write a state that\n\
someone else is working on. Wait for that run to finish. If nothing is running (a crashed run\n\
left the lock behind), release it with: stateseal force-unlock {}\n",
        holder.display_block(),
        holder.id
    );
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Locked {
                ref holder,
                ref message,
            } => {
                print_lock_conflict(message, holder);
                Failure::plain(
                    exit::LOCKED,
                    format!(
                        "the state is locked by {} (ID {}, operation {})",
                        holder.who, holder.id, holder.operation
                    ),
                )
            }
            Error::LockFailed { .. } => Failure::new(
                exit::LOCKED,
                format!("Error acquiring the state lock: {e}"),
                "check the lock table/lock file and your permissions",
            ),
            Error::LockMismatch { ref holder, .. } => Failure::new(
                exit::LOCKED,
                e.to_string(),
                format!("the current holder's ID is {}", holder.id),
            ),
            Error::NotLocked { .. } => Failure::plain(exit::FAILURE, e.to_string()),
            Error::Encryption { what, source } => Failure::from(source).context(what),
            Error::InvalidState { .. } => Failure::new(
                exit::INPUT,
                e.to_string(),
                "pass a Terraform/OpenTofu v4 state file (JSON, as `state pull` prints it)",
            ),
            Error::Config(_) => Failure::new(
                exit::CONFIG,
                e.to_string(),
                "correct the backend configuration (block, --backend-config or AWS_* environment)",
            ),
            Error::InvalidWorkspace { .. } => Failure::new(
                exit::FAILURE,
                e.to_string(),
                "workspace names may use letters, digits and - _ . ~ $ & + : = @",
            ),
            Error::Inconsistent { .. } => Failure::new(
                exit::INPUT,
                e.to_string(),
                "wait and retry; if it persists, fix the Digest item in the DynamoDB table",
            ),
            Error::Refused { ref refusal, .. } => {
                let fix = match refusal {
                    Refusal::ForeignLineage { .. }
                    | Refusal::OlderSerial { .. }
                    | Refusal::SameSerialOtherContent { .. } => {
                        "check that you are pushing the right state; use --force to overwrite anyway"
                    }
                    Refusal::RestoreForeignLineage { .. } => "use --force to restore anyway",
                    Refusal::WorkspaceNotEmpty { .. } => "destroy its resources first, or use --force",
                    _ => "nothing was written; report this if it persists",
                };
                Failure::new(exit::FAILURE, e.to_string(), fix)
            }
            other => Failure::plain(exit::FAILURE, other.to_string()),
        }
    }
}
