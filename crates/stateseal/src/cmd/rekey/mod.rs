//! `stateseal rekey`: its arguments, and the choice between its modes: files (`files.rs`), or
//! every state under one s3://BUCKET[/PREFIX] (the fleet rekey, also SSE-only).

mod files;
mod fleet;

use std::path::PathBuf;

use clap::Args;
use stateseal_encryption::Target;

use crate::context::Context;
use crate::failure::{exit, Failure};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("sse").args(["sse_kms", "sse_s3"])))]
pub struct RekeyArgs {
    /// Which target's configuration to use: state, plan or remote:NAME. Default: inferred per file.
    #[arg(long, value_name = "TARGET")]
    pub target: Option<Target>,
    /// The files to rekey in place, or one s3://BUCKET[/PREFIX]: every state under it.
    #[arg(value_name = "FILE|S3_URL", required = true)]
    pub files: Vec<PathBuf>,
    /// s3:// only: rewrite the states (without it, a dry run prints the plan).
    #[arg(long)]
    pub apply: bool,
    /// s3:// only: how many states to rekey at a time.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    /// s3:// only: print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// s3:// only: every state rekey writes gets SSE-KMS with this key (use the key ARN, not an alias).
    #[arg(long, value_name = "KEY_ARN")]
    pub sse_kms: Option<String>,
    /// s3:// only: every state rekey writes gets SSE-S3 (AES256); with --sse-only, the rollback from SSE-KMS.
    #[arg(long)]
    pub sse_s3: bool,
    /// s3:// only: change only the server-side encryption, to --sse-kms or --sse-s3: each state is
    /// copied onto itself under its lock (MetadataDirective REPLACE), its bytes and client-side
    /// encryption untouched, the previous version kept (versioning must be on), and the result
    /// checked with HeadObject. Needs no encryption configuration. Run it while no apply is in flight.
    #[arg(long, requires = "sse")]
    pub sse_only: bool,
}

pub fn run(ctx: &Context, args: &RekeyArgs) -> Result<(), Failure> {
    let urls: Vec<&str> = args
        .files
        .iter()
        .filter_map(|f| f.to_str().filter(|s| s.starts_with("s3://")))
        .collect();
    match (urls.as_slice(), args.files.len()) {
        ([url], 1) => return fleet::run(ctx, url, args),
        ([], _) if args.apply || args.json || args.sse_only || args.sse_s3 || args.sse_kms.is_some() => {
            return Err(Failure::new(
                exit::USAGE,
                "--apply, --json, --sse-kms, --sse-s3 and --sse-only apply to `rekey s3://BUCKET[/PREFIX]` only",
                "files are always rekeyed in place; drop the option",
            ))
        }
        ([], _) => {}
        _ => {
            return Err(Failure::new(
                exit::USAGE,
                "rekey takes either files or one s3://BUCKET[/PREFIX]",
                "run one rekey per bucket",
            ))
        }
    }
    files::run(ctx, args)
}
