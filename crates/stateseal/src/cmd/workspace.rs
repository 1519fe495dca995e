//! `stateseal workspace list|new|delete NAME`: the backend's workspaces, laid out as OpenTofu
//! lays them out.

use clap::{Args, Subcommand};
use stateseal_store::Sealed;

use crate::backend::{block_on, open};
use crate::context::Context;
use crate::failure::Failure;

#[derive(Args)]
pub struct WorkspaceArgs {
    #[command(subcommand)]
    command: WorkspaceCommand,
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// List the workspaces; the current one (--workspace, TF_WORKSPACE, .terraform/environment) is marked with *.
    List,
    /// Create a workspace (local: its directory; s3: an empty state, new lineage, serial 1).
    New(NameArg),
    /// Delete a workspace and its state. Refuses one whose state still has resources unless --force.
    Delete(DeleteArgs),
}

#[derive(Args)]
struct NameArg {
    #[arg(value_name = "NAME")]
    name: String,
}

#[derive(Args)]
struct DeleteArgs {
    #[arg(value_name = "NAME")]
    name: String,
    /// Delete even if the state still has resources.
    #[arg(long)]
    force: bool,
}

pub fn run(ctx: &Context, args: &WorkspaceArgs) -> Result<(), Failure> {
    block_on(async {
        let store = open(ctx).await?;
        let sealed = Sealed::new(store.clone(), ctx.loaded()?.encryption.clone());
        match &args.command {
            WorkspaceCommand::List => {
                for w in store.workspaces().await? {
                    let mark = if w == ctx.workspace() { "*" } else { " " };
                    outln!("{mark} {w}");
                }
            }
            WorkspaceCommand::New(a) => {
                sealed.create_workspace(&a.name).await?;
                errln!(
                    "Created workspace {:?} at {}.",
                    a.name,
                    store.location(&a.name)
                );
            }
            WorkspaceCommand::Delete(a) => {
                sealed.delete_workspace(&a.name, a.force).await?;
                errln!("Deleted workspace {:?}.", a.name);
            }
        }
        Ok(())
    })
}
