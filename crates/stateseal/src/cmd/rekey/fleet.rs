//! `stateseal rekey s3://BUCKET[/PREFIX] [--apply] [--concurrency N] [--json]
//! [--sse-kms KEY_ARN | --sse-s3] [--sse-only]`: the fleet rekey (stateseal-fleet), or with
//! `--sse-only` the SSE migration (a locked self-copy per state), a dry run unless --apply,
//! with a progress bar and a summary; exit 1 if any state failed.

use stateseal_fleet::rekey::{self, Outcome, Report};
use stateseal_fleet::sse;

use super::RekeyArgs;
use crate::backend::block_on;
use crate::cmd::fleet::connect_with;
use crate::context::Context;
use crate::failure::{exit, Failure};
use crate::render::json::show;
use crate::render::progress::Progress;
use crate::render::table::table;

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
    show(&report, args.json, render);
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
    show(&report, args.json, render_sse);
    if report.apply && !report.locked {
        errln!("warning: the backend configures no locking (dynamodb_table, use_lockfile), so the copies were not locked: make sure no apply was in flight");
    }
    failed(report.summary.failed, "copied")
}

/// The table of the states something happened to (state, workspace, what it was, result,
/// detail), then the summary line.
fn results(rows: Vec<Vec<String>>, summary: String) -> String {
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&table(
            &["STATE", "WORKSPACE", "WAS", "RESULT", "DETAIL"],
            &rows,
        ));
    }
    out + &summary + "\n"
}

fn render_sse(r: &sse::Report) -> String {
    let rows = r
        .states
        .iter()
        .filter(|s| !matches!(s.outcome, sse::Outcome::Already))
        .map(|s| {
            let detail = s.outcome.detail().unwrap_or_default();
            let was = s.was.0.name().unwrap_or("-").to_string();
            vec![
                s.key.clone(),
                s.workspace.clone(),
                was,
                s.outcome.word().into(),
                detail,
            ]
        })
        .collect();
    let s = &r.summary;
    let target = r.target.to_string();
    results(
        rows,
        if r.apply {
            format!(
                "{} states: {} copied to {target}, {} already there, {} skipped (locked), {} failed",
                s.states, s.copied, s.already, s.skipped_locked, s.failed
            )
        } else {
            format!(
                "dry run: {} of {} states would be copied to {target} ({} already there); run with --apply",
                s.planned, s.states, s.already
            )
        },
    )
}

fn render(r: &Report) -> String {
    let rows = r
        .states
        .iter()
        .filter(|s| !matches!(s.outcome, Outcome::AlreadyPrimary))
        .map(|s| {
            let detail = s.outcome.detail().unwrap_or_default();
            let was = s.was.name().to_string();
            vec![
                s.key.clone(),
                s.workspace.clone(),
                was,
                s.outcome.word().into(),
                detail,
            ]
        })
        .collect();
    let s = &r.summary;
    results(
        rows,
        if r.apply {
            format!(
                "{} states: {} rekeyed, {} already on primary, {} skipped (locked), {} failed",
                s.states, s.rekeyed, s.already_primary, s.skipped_locked, s.failed
            )
        } else {
            format!(
                "dry run: {} of {} states would be rekeyed ({} already on primary); run with --apply",
                s.planned, s.states, s.already_primary
            )
        },
    )
}
