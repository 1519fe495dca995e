//! `stateseal audit s3://BUCKET[/PREFIX] [--json] [--require encrypted|primary|sse-kms]...
//! [--decrypt]`: the fleet audit (stateseal-fleet) rendered as tables or one JSON object; a
//! failed `--require` exits 8 and lists each offender, and so does a `--require` with no state
//! to check (unless `--allow-empty`).

use clap::{Args, ValueEnum};
use stateseal_fleet::audit::{self, Report, Requirement};

use crate::backend::block_on;
use crate::cmd::fleet::{connect, EmptySelection};
use crate::context::Context;
use crate::failure::{exit, Failure};
use crate::render::json::show;
use crate::render::progress::Progress;
use crate::render::table::table;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Require {
    Encrypted,
    Primary,
    SseKms,
}

impl From<Require> for Requirement {
    fn from(r: Require) -> Requirement {
        match r {
            Require::Encrypted => Requirement::Encrypted,
            Require::Primary => Requirement::Primary,
            Require::SseKms => Requirement::SseKms,
        }
    }
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// What to scan: s3://BUCKET or s3://BUCKET/PREFIX (the default and every workspace).
    #[arg(value_name = "S3_URL")]
    pub url: String,
    /// Print one JSON object (stable names) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Exit 8 unless every state is encrypted, on the primary method, or stored with SSE-KMS
    /// (repeatable); also exit 8 when there is no state at all, unless --allow-empty.
    #[arg(long, value_enum, value_name = "CHECK")]
    pub require: Vec<Require>,
    /// Also decrypt every state to prove it is readable (slower: one key derivation per pbkdf2 state).
    #[arg(long)]
    pub decrypt: bool,
    /// How many objects to read at a time.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    #[command(flatten)]
    pub empty: EmptySelection,
}

pub fn run(ctx: &Context, args: &AuditArgs) -> Result<(), Failure> {
    let encryption = ctx.loaded()?.encryption.clone();
    let mut progress = Progress::new("auditing", false);
    let report = block_on(async {
        let fleet = connect(ctx, &args.url).await?;
        let opts = audit::Options {
            decrypt: args.decrypt,
            concurrency: args.concurrency,
        };
        Ok::<_, Failure>(
            audit::audit(&fleet, encryption, &opts, &mut |e| progress.on_event(e)).await?,
        )
    });
    progress.finish();
    let report = report?;
    show(&report, args.json, render);
    let requirements: Vec<Requirement> = args.require.iter().map(|r| (*r).into()).collect();
    if report.checked_nothing() {
        let verdict = args
            .empty
            .verdict(&report.bucket, &report.prefix, report.other_objects());
        if requirements.is_empty() {
            // No gate: the empty audit is a result, and the reason goes to stderr.
            if let Err(f) = verdict {
                errln!("warning: {}", f.cause);
            }
            return Ok(());
        }
        return verdict;
    }
    let offenders = report.violations(&requirements);
    if offenders.is_empty() {
        return Ok(());
    }
    for (s, why) in &offenders {
        errln!(
            "offender: s3://{}/{}: {}",
            report.bucket,
            s.key,
            why.join("; ")
        );
    }
    Err(Failure::plain(
        exit::CHECK,
        format!(
            "{} of {} state(s) fail --require {}",
            offenders.len(),
            report.states.len(),
            requirements
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

fn render(r: &Report) -> String {
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = r
        .states
        .iter()
        .map(|s| {
            vec![
                s.key.clone(),
                s.workspace.clone(),
                s.encryption.name().to_string(),
                s.key_providers
                    .iter()
                    .map(|k| k.key.clone())
                    .collect::<Vec<_>>()
                    .join(","),
                s.sse.0.name().map_or_else(dash, String::from),
                s.serial.map_or_else(|| "null".into(), |n| n.to_string()),
                s.size.to_string(),
                s.versions.map_or_else(dash, |v| v.to_string()),
                match s.lock.records.first() {
                    Some(l) => l.who.clone().unwrap_or_else(|| "unreadable".into()),
                    None => dash(),
                },
                s.digest.name().to_string(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "STATE",
            "WORKSPACE",
            "ENCRYPTION",
            "KEY PROVIDERS",
            "SSE",
            "SERIAL",
            "SIZE",
            "VERSIONS",
            "LOCKED BY",
            "DIGEST",
        ],
        &rows,
    );
    for (what, keys) in [("lock files", &r.lock_files), ("plan files", &r.plans)] {
        if !keys.is_empty() {
            out.push_str(&format!("\n{what} (not states): {}\n", keys.join(", ")));
        }
    }
    for o in &r.other {
        out.push_str(&format!("\nnot a state: {}: {}\n", o.key, o.reason));
    }
    let c = &r.bucket_checks;
    out.push_str(&format!(
        "\nbucket s3://{}: versioning {}, default encryption {}, public access blocked {}, TLS-only policy {}, lock table {}\n",
        r.bucket,
        c.versioning.map_or("unknown", |v| v.name()),
        c.default_encryption.as_deref().unwrap_or("none"),
        c.public_access_blocked,
        c.tls_only_policy,
        match c.lock_table_exists {
            None => "not configured",
            Some(true) => "exists",
            Some(false) => "MISSING",
        }
    ));
    let s = &r.summary;
    out.push_str(&format!(
        "{} states: {} plaintext, {} primary, {} fallback, {} unknown; {} locked\n",
        s.states, s.plaintext, s.primary, s.fallback, s.unknown, s.locked
    ));
    out
}
