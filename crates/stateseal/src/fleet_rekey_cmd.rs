//! `stateseal rekey s3://BUCKET[/PREFIX] [--apply] [--concurrency N] [--json]`: the fleet
//! rekey (stateseal-fleet), a dry run unless --apply, with a progress bar and a summary; exit 1
//! if any state failed.

use stateseal_fleet::rekey::{self, Outcome, Report};

use crate::backend::block_on;
use crate::failure::{exit, Failure};
use crate::fleet_cmd::{connect, print_json, table, Progress};
use crate::global::Context;
use crate::rekey_cmd::RekeyArgs;

pub fn run(ctx: &Context, url: &str, args: &RekeyArgs) -> Result<(), Failure> {
    let encryption = ctx.loaded()?.encryption.clone();
    if !encryption.state().is_enabled() {
        return Err(Failure::new(
            exit::CONFIG,
            "no encryption is configured for the state target",
            "add the state block with the new method as primary and the old one as fallback",
        ));
    }
    let mut progress = Progress::new("rekeying", args.apply && !args.json);
    let report = block_on(async {
        let fleet = connect(ctx, url).await?;
        let opts = rekey::Options {
            apply: args.apply,
            concurrency: args.concurrency,
        };
        Ok::<_, Failure>(
            rekey::rekey(&fleet, encryption.clone(), &opts, &mut |e| {
                progress.on_event(e)
            })
            .await?,
        )
    });
    progress.finish();
    let report = report?;
    if args.json {
        print_json(&report);
    } else {
        print!("{}", render(&report));
    }
    if report.summary.failed > 0 {
        return Err(Failure::plain(
            exit::FAILURE,
            format!(
                "{} state(s) could not be rekeyed; they are unchanged",
                report.summary.failed
            ),
        ));
    }
    Ok(())
}

fn render(r: &Report) -> String {
    let rows: Vec<Vec<String>> = r
        .states
        .iter()
        .filter(|s| s.outcome != Outcome::AlreadyPrimary)
        .map(|s| {
            let detail = match &s.outcome {
                Outcome::SkippedLocked(d) | Outcome::Failed(d) => d.clone(),
                _ => String::new(),
            };
            vec![
                s.key.clone(),
                s.workspace.clone(),
                s.was.name().to_string(),
                s.outcome.word().to_string(),
                detail,
            ]
        })
        .collect();
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&table(
            &["STATE", "WORKSPACE", "WAS", "RESULT", "DETAIL"],
            &rows,
        ));
    }
    let s = &r.summary;
    if r.apply {
        out.push_str(&format!(
            "{} states: {} rekeyed, {} already on primary, {} skipped (locked), {} failed\n",
            s.states, s.rekeyed, s.already_primary, s.skipped_locked, s.failed
        ));
    } else {
        out.push_str(&format!(
            "dry run: {} of {} states would be rekeyed ({} already on primary); run with --apply\n",
            s.planned, s.states, s.already_primary
        ));
    }
    out
}
