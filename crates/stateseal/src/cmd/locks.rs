//! `stateseal locks list s3://…` and `stateseal locks break s3://… --older-than DURATION
//! [--apply]`: every held lock of a bucket (DynamoDB items and lock files), and a safe break
//! that deletes only what was listed, on the condition that it is unchanged (stateseal-fleet
//! `locks`). The `-md5` digest items are never touched.

use clap::{Args, Subcommand};
use stateseal_fleet::locks::{self, BreakOutcome, HeldLock};

use crate::backend::block_on;
use crate::cmd::fleet::connect;
use crate::context::Context;
use crate::failure::{exit, Failure};
use crate::render::json::print_json;
use crate::render::table::table;

#[derive(Args, Debug)]
pub struct LocksArgs {
    #[command(subcommand)]
    pub command: LocksCommand,
}

#[derive(Subcommand, Debug)]
pub enum LocksCommand {
    /// Every held lock: holder, operation, age and the state it guards.
    List {
        #[arg(value_name = "S3_URL")]
        url: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Break the locks older than DURATION (a dry run unless --apply), each only if it is still exactly as listed.
    Break {
        #[arg(value_name = "S3_URL")]
        url: String,
        /// The minimum age of a lock to break: 30m, 2h, 7d, …
        #[arg(long, value_name = "DURATION")]
        older_than: locks::Age,
        /// Delete them (without it, only prints what would be broken).
        #[arg(long)]
        apply: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, args: &LocksArgs) -> Result<(), Failure> {
    match &args.command {
        LocksCommand::List { url, json } => {
            let listed = block_on(async {
                let fleet = connect(ctx, url).await?;
                Ok::<_, Failure>(locks::list(&fleet).await?)
            })?;
            if *json {
                print_json(&listed);
            } else {
                let rows: Vec<Vec<String>> = listed.iter().map(|l| row(l, None)).collect();
                out!("{}", table(&HEADER[..7], &rows));
                outln!("{} lock(s) held", listed.len());
            }
            Ok(())
        }
        LocksCommand::Break {
            url,
            older_than,
            apply,
            json,
        } => {
            let results = block_on(async {
                let fleet = connect(ctx, url).await?;
                let listed = locks::list(&fleet).await?;
                Ok::<_, Failure>(locks::break_stale(&fleet, listed, older_than.0, *apply).await)
            })?;
            if *json {
                print_json(&results);
            } else {
                let rows: Vec<Vec<String>> = results
                    .iter()
                    .map(|b| row(&b.lock, Some(&b.outcome)))
                    .collect();
                out!("{}", table(&HEADER, &rows));
            }
            let failed = results
                .iter()
                .filter(|b| matches!(b.outcome, BreakOutcome::Failed(_)))
                .count();
            if failed > 0 {
                return Err(Failure::plain(
                    exit::FAILURE,
                    format!("{failed} lock(s) could not be broken"),
                ));
            }
            Ok(())
        }
    }
}

const HEADER: [&str; 8] = [
    "STATE",
    "WORKSPACE",
    "IN",
    "WHO",
    "OPERATION",
    "AGE",
    "ID",
    "RESULT",
];

fn row(l: &HeldLock, outcome: Option<&BreakOutcome>) -> Vec<String> {
    let dash = || "-".to_string();
    let mut r = vec![
        l.state.clone(),
        l.workspace.clone(),
        format!("{:?}", l.source).to_lowercase(),
        l.who.clone().unwrap_or_else(|| "unreadable".into()),
        l.operation.clone().unwrap_or_else(dash),
        l.age_seconds.map_or_else(dash, age),
        l.id.clone().unwrap_or_else(dash),
    ];
    if let Some(o) = outcome {
        r.push(match o {
            BreakOutcome::Broken => "broken".into(),
            BreakOutcome::WouldBreak => "would break (dry run)".into(),
            BreakOutcome::Fresh => "kept (younger)".into(),
            BreakOutcome::Changed(why) => format!("kept (changed since listing: {why})"),
            BreakOutcome::Failed(why) => format!("FAILED: {why}"),
        });
    }
    r
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
