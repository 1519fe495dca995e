//! `stateseal state pull|push|versions|restore`: the backend's state through the directory's
//! encryption, with OpenTofu's rules for serials, lineages and locks.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use stateseal_encryption::Status;
use stateseal_store::{PushOptions, Sealed, Written};

use crate::backend::{block_on, open};
use crate::context::Context;
use crate::failure::{exit, Failure};
use crate::io::{read_input_in_place, write_output};

#[derive(Args)]
pub struct StateArgs {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Subcommand)]
enum StateCommand {
    /// Print the workspace's state, decrypted (exactly the JSON that is stored inside the envelope).
    Pull(PullArgs),
    /// Store a plaintext state in the workspace, encrypted, under the lock. Refuses another lineage or a lower serial unless --force.
    Push(PushArgs),
    /// List the stored versions of the workspace's state (S3 object versions), newest first.
    Versions(VersionsArgs),
    /// Write an earlier version back as the current state, with the serial bumped above both.
    Restore(RestoreArgs),
}

#[derive(Args)]
struct PullArgs {
    /// Write to FILE (atomically, mode 0600 when new) instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct PushArgs {
    /// The plaintext state (JSON), or - for stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Skip the lineage and serial checks.
    #[arg(long)]
    force: bool,
    /// Keep retrying a held lock this many seconds (0: one attempt).
    #[arg(long = "lock-timeout", value_name = "SECONDS", default_value_t = 0)]
    lock_timeout: u64,
}

#[derive(Args)]
struct VersionsArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RestoreArgs {
    /// A version ID from `stateseal state versions`.
    #[arg(value_name = "VERSION_ID")]
    version: String,
    /// Restore even if the version's lineage differs from the current state's.
    #[arg(long)]
    force: bool,
    /// Keep retrying a held lock this many seconds (0: one attempt).
    #[arg(long = "lock-timeout", value_name = "SECONDS", default_value_t = 0)]
    lock_timeout: u64,
}

pub fn run(ctx: &Context, args: &StateArgs) -> Result<(), Failure> {
    block_on(async {
        let store = open(ctx).await?;
        let sealed = Sealed::new(store.clone(), ctx.loaded()?.encryption.clone());
        let ws = ctx.workspace();
        match &args.command {
            StateCommand::Pull(a) => pull(&sealed, ws, a).await,
            StateCommand::Push(a) => push(&sealed, ws, a, ctx.max_input_size()).await,
            StateCommand::Versions(a) => versions(&sealed, ws, a).await,
            StateCommand::Restore(a) => restore(&sealed, ws, a).await,
        }
    })
}

async fn pull(sealed: &Sealed, ws: &str, a: &PullArgs) -> Result<(), Failure> {
    let Some(mut pulled) = sealed.read(ws).await? else {
        errln!("No state is stored at {}.", sealed.store().location(ws));
        return Ok(());
    };
    if pulled.status == Status::Migration {
        // Read through a fallback method: rewrite it with the primary one, as OpenTofu's next
        // write would, and print what is stored now.
        match sealed.migrate(ws, Duration::ZERO).await {
            Ok(Written::Stored { serial, .. }) => {
                errln!(
                    "The state was encrypted with a fallback method; rewrote it with the primary method (serial {serial})."
                );
                if let Some(p) = sealed.read(ws).await? {
                    pulled = p;
                }
            }
            Ok(Written::Unchanged) => {}
            Err(e) => errln!(
                "warning: the state was read with a fallback method, and rewriting it with the primary method failed: {e}"
            ),
        }
    }
    write_output(a.out.as_deref(), &pulled.plaintext)
}

async fn push(sealed: &Sealed, ws: &str, a: &PushArgs, max: u64) -> Result<(), Failure> {
    // Read as `decrypt` reads (huge pages for a large file), and handed on without a copy.
    let input = read_input_in_place(Some(&a.file), max)?;
    input.require_content()?;
    let opts = PushOptions {
        force: a.force,
        lock_timeout: Duration::from_secs(a.lock_timeout),
    };
    let location = sealed.store().location(ws);
    match sealed
        .push(ws, &input.bytes, &opts)
        .await
        .map_err(|e| Failure::from(e).context(format!("state push to {location}")))?
    {
        Written::Stored { serial, lineage } => {
            errln!(
                "Pushed {} to {location}: serial {serial}, lineage {lineage}.",
                input.name
            )
        }
        Written::Unchanged => {
            errln!("{location} already holds this state; nothing was written.")
        }
    }
    Ok(())
}

async fn versions(sealed: &Sealed, ws: &str, a: &VersionsArgs) -> Result<(), Failure> {
    sealed.require_workspace(ws).await?;
    let list = sealed.store().versions(ws).await?;
    if a.json {
        let v: Vec<serde_json::Value> = list
            .iter()
            .map(|v| {
                serde_json::json!({
                    "version_id": v.id,
                    "last_modified": v.last_modified,
                    "size": v.size,
                    "is_latest": v.is_latest,
                    "is_delete_marker": v.is_delete_marker,
                })
            })
            .collect();
        outln!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    if list.is_empty() {
        errln!(
            "No versions of {} (is bucket versioning enabled?).",
            sealed.store().location(ws)
        );
    }
    for v in &list {
        let mut note = String::new();
        if v.is_latest {
            note.push_str("  (current)");
        }
        if v.is_delete_marker {
            note.push_str("  (delete marker)");
        }
        outln!("{}  {}  {:>10}{note}", v.id, v.last_modified, v.size);
    }
    Ok(())
}

async fn restore(sealed: &Sealed, ws: &str, a: &RestoreArgs) -> Result<(), Failure> {
    let opts = PushOptions {
        force: a.force,
        lock_timeout: Duration::from_secs(a.lock_timeout),
    };
    match sealed.restore(ws, &a.version, &opts).await? {
        Written::Stored { serial, lineage } => errln!(
            "Restored version {} to {}: serial {serial}, lineage {lineage}.",
            a.version,
            sealed.store().location(ws)
        ),
        Written::Unchanged => {
            return Err(Failure::plain(exit::FAILURE, "nothing was restored"));
        }
    }
    Ok(())
}
