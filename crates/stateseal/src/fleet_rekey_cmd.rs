//! `stateseal rekey s3://BUCKET[/PREFIX] [--apply] [--concurrency N] [--json]
//! [--sse-kms KEY_ARN | --sse-s3] [--sse-only]`: the fleet rekey (stateseal-fleet), or with
//! `--sse-only` the SSE migration (a locked self-copy per state), a dry run unless --apply,
//! with a progress bar and a summary; exit 1 if any state failed.

use stateseal_fleet::rekey::{self, Outcome, Report};
use stateseal_fleet::sse;

use crate::backend::block_on;
use crate::failure::{exit, Failure};
use crate::fleet_cmd::{connect_with, print_json, table, Progress};
use crate::global::Context;
use crate::rekey_cmd::RekeyArgs;

/// The `--backend-config` settings that make every write use the SSE asked for.
fn sse_settings(args: &RekeyArgs) -> Vec<String> {
    match (&args.sse_kms, args.sse_s3) {
        (Some(k), _) => vec!["encrypt=true".into(), format!("kms_key_id={k}")],
        (None, true) => vec!["encrypt=true".into(), "kms_key_id=".into()],
        (None, false) => Vec::new(),
    }
}

pub fn run(ctx: &Context, url: &str, args: &RekeyArgs) -> Result<(), Failure> {
    if args.sse_only {
        return run_sse_only(ctx, url, args);
    }
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
        let fleet = connect_with(ctx, url, &sse_settings(args)).await?;
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
    failed(report.summary.failed, "rekeyed")
}

fn failed(n: usize, verb: &str) -> Result<(), Failure> {
    if n == 0 {
        return Ok(());
    }
    Err(Failure::plain(
        exit::FAILURE,
        format!("{n} state(s) could not be {verb}; they are unchanged"),
    ))
}

fn run_sse_only(ctx: &Context, url: &str, args: &RekeyArgs) -> Result<(), Failure> {
    let target = match &args.sse_kms {
        Some(k) => sse::Target::Kms(k.clone()),
        None => sse::Target::S3,
    };
    let mut progress = Progress::new("copying", args.apply && !args.json);
    let report = block_on(async {
        let fleet = connect_with(ctx, url, &[]).await?;
        let opts = sse::Options {
            apply: args.apply,
            concurrency: args.concurrency,
        };
        Ok::<_, Failure>(sse::migrate(&fleet, &target, &opts, &mut |e| progress.on_event(e)).await?)
    });
    progress.finish();
    let report = report?;
    if args.json {
        print_json(&report);
    } else {
        print!("{}", render_sse(&report));
    }
    if report.apply && !report.locked {
        eprintln!("warning: the backend configures no locking (dynamodb_table, use_lockfile), so the copies were not locked: make sure no apply was in flight");
    }
    failed(report.summary.failed, "copied")
}

fn render_sse(r: &sse::Report) -> String {
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = r
        .states
        .iter()
        .filter(|s| s.outcome != sse::Outcome::Already)
        .map(|s| {
            let detail = match &s.outcome {
                sse::Outcome::SkippedLocked(d) | sse::Outcome::Failed(d) => d.clone(),
                _ => String::new(),
            };
            vec![
                s.key.clone(),
                s.workspace.clone(),
                s.was_sse.clone().unwrap_or_else(dash),
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
    let target = r.target.describe();
    if r.apply {
        out.push_str(&format!(
            "{} states: {} copied to {target}, {} already there, {} skipped (locked), {} failed\n",
            s.states, s.copied, s.already, s.skipped_locked, s.failed
        ));
    } else {
        out.push_str(&format!(
            "dry run: {} of {} states would be copied to {target} ({} already there); run with --apply\n",
            s.planned, s.states, s.already
        ));
    }
    out
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
