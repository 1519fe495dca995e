//! `stateseal lock`, `unlock ID` and `force-unlock ID|--unreadable`: the backend's own lock
//! (DynamoDB item and/or `.tflock` object), the very one OpenTofu and Terraform take.

use clap::Args;
use stateseal_store::{Error, LockInfo, Sealed, Store, UnreadableLock};

use crate::backend::{block_on, open};
use crate::context::Context;
use crate::failure::{exit, Failure};

#[derive(Args)]
pub struct LockArgs {
    /// The Operation recorded in the lock (shown to whoever is refused).
    #[arg(long, value_name = "TEXT", default_value = "stateseal-lock")]
    operation: String,
    /// The Info recorded in the lock.
    #[arg(long, value_name = "TEXT", default_value = "")]
    info: String,
}

#[derive(Args)]
pub struct UnlockArgs {
    /// The lock ID that `stateseal lock` printed (or the holder's ID shown in a lock error).
    #[arg(value_name = "ID")]
    id: String,
}

#[derive(Args)]
pub struct ForceUnlockArgs {
    /// The holder's ID, as a lock error shows it.
    #[arg(
        value_name = "ID",
        required_unless_present = "unreadable",
        conflicts_with = "unreadable"
    )]
    id: Option<String>,
    /// Remove the lock records that do not parse (no ID can name them), each only if it is
    /// still exactly as shown.
    #[arg(long)]
    unreadable: bool,
}

fn require_locking(store: &dyn Store, ws: &str) -> Result<(), Failure> {
    if store.locking_enabled() {
        return Ok(());
    }
    Err(Failure::new(
        exit::CONFIG,
        format!(
            "the backend of {} has no locking configured",
            store.location(ws)
        ),
        "set use_lockfile = true and/or dynamodb_table in the s3 backend",
    ))
}

/// Takes the lock, prints its ID on stdout, and leaves it held.
pub fn lock(ctx: &Context, args: &LockArgs) -> Result<(), Failure> {
    block_on(async {
        let store = open(ctx).await?;
        let ws = ctx.workspace();
        Sealed::new(store.clone(), ctx.loaded()?.encryption.clone())
            .require_workspace(ws)
            .await?;
        if !store.capabilities().lock_outlives_process {
            return Err(Failure::new(
                exit::FAILURE,
                "a local state's lock is an fcntl lock that ends with the process holding it, so it can't be left held",
                "use a remote backend (s3 with use_lockfile or dynamodb_table) to hold a lock across commands",
            ));
        }
        require_locking(&*store, ws)?;
        let mut info = LockInfo::new(args.operation.clone());
        info.info = args.info.clone();
        let held = store.lock(ws, info).await?;
        outln!("{}", held.id);
        errln!(
            "Locked {} (workspace {ws}). Release it with: stateseal unlock {}",
            store.location(ws),
            held.id
        );
        Ok(())
    })
}

/// Releases a lock taken by `stateseal lock`.
pub fn unlock(ctx: &Context, args: &UnlockArgs) -> Result<(), Failure> {
    release(ctx, &args.id, false)
}

/// Releases any holder's lock, given its exact ID (like `tofu force-unlock -force ID`), or
/// removes the unreadable lock records.
pub fn force_unlock(ctx: &Context, args: &ForceUnlockArgs) -> Result<(), Failure> {
    match &args.id {
        Some(id) if !args.unreadable => release(ctx, id, true),
        _ => remove_unreadable(ctx),
    }
}

/// How an unreadable record is shown: where, why, and the record as stored.
fn show(lock: &UnreadableLock) -> String {
    let raw = match &lock.raw {
        Some(r) => String::from_utf8_lossy(r).into_owned(),
        None => "(no Info attribute)".into(),
    };
    format!(
        "{} ({}):
{raw}",
        lock.location, lock.problem
    )
}

fn remove_unreadable(ctx: &Context) -> Result<(), Failure> {
    block_on(async {
        let store = open(ctx).await?;
        let ws = ctx.workspace();
        require_locking(&*store, ws)?;
        let found = store.unreadable_locks(ws).await?;
        if found.is_empty() {
            return Err(Failure::plain(
                exit::FAILURE,
                format!(
                    "{} has no unreadable lock record; nothing was removed",
                    store.location(ws)
                ),
            ));
        }
        for lock in &found {
            store.remove_unreadable_lock(ws, lock).await?;
            errln!("Removed the unreadable lock record {}", show(lock));
        }
        Ok(())
    })
}

fn release(ctx: &Context, id: &str, force: bool) -> Result<(), Failure> {
    block_on(async {
        let store = open(ctx).await?;
        let ws = ctx.workspace();
        require_locking(&*store, ws)?;
        let holder = match store.lock_holder(ws).await {
            Ok(h) => h,
            Err(Error::Unsupported(why)) => {
                // An http backend server other than stateseal serve can't say who holds the
                // lock: release by ID, as Terraform does, and let the server check it.
                store.unlock(ws, id).await?;
                errln!(
                    "Released lock {id} on {} (the holder is not known: {why}).",
                    store.location(ws)
                );
                return Ok(());
            }
            Err(e @ Error::LockFailed { .. }) => {
                let unreadable = store.unreadable_locks(ws).await.unwrap_or_default();
                if unreadable.is_empty() {
                    return Err(e.into());
                }
                let shown: Vec<String> = unreadable.iter().map(show).collect();
                return Err(Failure::new(
                    exit::LOCKED,
                    format!(
                        "the lock cannot be released by ID: a lock record does not parse\n{}",
                        shown.join("\n")
                    ),
                    "if no run holds this lock, remove it with: stateseal force-unlock --unreadable",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        match &holder {
            None => {
                return Err(Failure::from(Error::NotLocked {
                    what: store.location(ws),
                }))
            }
            Some(h) if !force && h.id == id && !h.written_by_stateseal() => {
                return Err(Failure::new(
                    exit::LOCKED,
                    format!(
                        "lock {id} was taken by {} ({} {}), not by stateseal lock",
                        h.who, h.operation, h.version
                    ),
                    format!("if that run is really gone, use: stateseal force-unlock {id}"),
                ));
            }
            Some(_) => {}
        }
        store.unlock(ws, id).await?;
        let h = holder.expect("checked");
        errln!(
            "Released lock {id} on {} (held by {}, operation {}, since {}).",
            store.location(ws),
            h.who,
            h.operation,
            h.created.go_string()
        );
        Ok(())
    })
}
