//! Opening the directory's state backend (`backend "s3"`, `backend "local"`, or none = local)
//! for the state, lock, workspace and outputs commands, and how store errors become failures.

use std::sync::Arc;

use stateseal_core::successor::Refusal;
use stateseal_store::{backend_block, Error, LockInfo, Store};

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

/// The store the directory's backend configuration points at (evaluated by
/// [`stateseal_store::backend_block`]; this only renders its errors).
pub async fn open(ctx: &Context) -> Result<Arc<dyn Store>, Failure> {
    let loaded = ctx.loaded()?;
    let backend = backend_block::configure(
        &loaded.module,
        &loaded.evaluator,
        ctx.backend_config(),
        &|k| std::env::var(k).ok().filter(|v| !v.is_empty()),
    )?;
    Ok(Arc::from(backend.open().await?))
}

/// Terraform's lock-conflict report, on stderr: the holder's ID, Path, Operation, Who,
/// Version, Created and Info.
pub fn print_lock_conflict(message: &str, holder: &LockInfo) {
    errln!(
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
            Error::Backend(d) => Failure {
                fix: Some("correct the backend block at the locations shown, or override it with --backend-config".into()),
                ..Failure::from(d)
            },
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
            Error::Service { kind, .. } if kind.is_transient() => Failure::new(
                exit::UNAVAILABLE,
                e.to_string(),
                "the state storage is unavailable (unreachable or throttled); nothing was changed: try again",
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
