//! `stateseal dr`: disaster recovery with recovery keys. `dr keygen` creates the offline age
//! identity (the recovery key) and prints its public recipient; `dr drill` proves that every
//! state under an s3:// URL, or every file given, decrypts with that identity alone (no KMS
//! call, no passphrase), and exits 8 when anything is not recoverable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use stateseal_fleet::drill::{self, Drilled, Report};
use stateseal_fleet::recovery;

use crate::backend::block_on;
use crate::cmd::fleet::{connect, EmptySelection};
use crate::context::Context;
use crate::failure::{exit, Failure};
use crate::render::json::show;
use crate::render::progress::Progress;
use crate::render::table::table;

#[derive(Args)]
pub struct DrArgs {
    #[command(subcommand)]
    action: DrAction,
}

#[derive(Subcommand)]
enum DrAction {
    /// Prove that every state decrypts with the recovery identity alone (exit 8 if any does not).
    ///
    /// For each state under s3://BUCKET[/PREFIX] (every workspace), or each FILE: find the
    /// recovery wraps that `stateseal keyprovider` stored in the envelope, open the data key
    /// with the identity, decrypt, and check that the plaintext is a valid state whose serial
    /// and lineage equal the envelope's. No KMS key and no passphrase is used, so a working KMS
    /// key cannot hide a broken recovery path. Each state is reported as recovered, plaintext,
    /// no-recovery-recipient (e.g. written by the built-in aws_kms provider: lost with its key),
    /// or failed with the reason. Exits 8 unless every state is recovered or plaintext.
    Drill(DrillArgs),
    /// Create an age identity (the recovery key) in a new file (mode 0600) and print its public recipient.
    ///
    /// Keep the file offline (a password manager, a safe, an HSM-backed secret store); only the
    /// printed recipient (age1…) goes into configuration, as `stateseal keyprovider --recipient`.
    Keygen(KeygenArgs),
}

#[derive(Args)]
struct DrillArgs {
    /// s3://BUCKET[/PREFIX], or one or more state files.
    #[arg(value_name = "S3_URL|FILE", required = true)]
    targets: Vec<String>,
    /// The age identity file (AGE-SECRET-KEY-1… lines).
    #[arg(long, value_name = "FILE")]
    identity: PathBuf,
    /// s3:// only: drill every kept version of each state, not only the current one.
    #[arg(long)]
    versions: bool,
    /// Drill this many states, picked at random, instead of all.
    #[arg(long, value_name = "N")]
    sample: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// s3:// only: how many states to read and check at a time.
    #[arg(long, default_value_t = 8, value_name = "N")]
    concurrency: usize,
    #[command(flatten)]
    empty: EmptySelection,
}

#[derive(Args)]
struct KeygenArgs {
    /// The new identity file; it must not exist.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
}

pub fn run(ctx: &Context, args: &DrArgs) -> Result<(), Failure> {
    match &args.action {
        DrAction::Drill(a) => run_drill(ctx, a),
        DrAction::Keygen(a) => keygen(&a.output),
    }
}

fn run_drill(ctx: &Context, args: &DrillArgs) -> Result<(), Failure> {
    let identity = args.identity.display().to_string();
    let identities = Arc::new(recovery::read_identities(&identity).map_err(|e| {
        Failure::new(
            exit::CONFIG,
            e.to_string(),
            "pass --identity FILE: the age identity whose recipient the keyprovider was given",
        )
    })?);
    let report = if args.targets[0].starts_with("s3://") {
        if args.targets.len() > 1 {
            return Err(Failure::plain(
                exit::USAGE,
                "dr drill takes one s3:// URL, or files: not both, and not two URLs",
            ));
        }
        let mut progress = Progress::new("drilling", false);
        let opts = drill::Options {
            versions: args.versions,
            sample: args.sample,
            concurrency: args.concurrency,
        };
        let report = block_on(async {
            let fleet = connect(ctx, &args.targets[0]).await?;
            Ok::<_, Failure>(
                drill::drill(&fleet, identities, &opts, &mut |e| progress.on_event(e)).await?,
            )
        });
        progress.finish();
        report?
    } else {
        if args.versions {
            return Err(Failure::plain(
                exit::USAGE,
                "--versions needs an s3:// URL: a file has no kept versions",
            ));
        }
        files_report(ctx, &args.targets, &identities, args.sample)?
    };
    show(&report, args.json, render);
    if report.states.is_empty() {
        return args.empty.verdict(&report.bucket, &report.prefix, 0);
    }
    if report.all_recoverable() {
        return Ok(());
    }
    for s in report
        .states
        .iter()
        .filter(|s| !s.verdict.outcome.recoverable())
    {
        errln!(
            "not recoverable: {}: {}: {}",
            name_of(s),
            s.verdict.outcome.name(),
            s.verdict.detail.as_deref().unwrap_or("")
        );
    }
    let bad = report.summary.failed + report.summary.no_recovery_recipient;
    Err(Failure::new(
        exit::CHECK,
        format!(
            "{bad} of {} state(s) cannot be recovered with {identity}",
            report.summary.checked
        ),
        "rekey them onto stateseal keyprovider with a --recipient for this identity (docs/RECOVERY.md)",
    ))
}

fn files_report(
    ctx: &Context,
    files: &[String],
    identities: &[age::x25519::Identity],
    sample: Option<usize>,
) -> Result<Report, Failure> {
    // Sample the names first: only the chosen files are read.
    let total = files.len();
    let (chosen, sampled_from) = match sample {
        Some(n) if n < total => (drill::sample(files.to_vec(), n), Some(total)),
        _ => (files.to_vec(), None),
    };
    let mut states = Vec::new();
    for f in chosen {
        let input = crate::io::read_input(Some(Path::new(&f)), ctx.max_input_size())?;
        states.push(Drilled {
            key: f,
            workspace: String::new(),
            version_id: None,
            verdict: drill::check(&input.bytes, identities),
        });
    }
    Ok(Report::new(
        String::new(),
        String::new(),
        false,
        sampled_from,
        states,
    ))
}

fn name_of(s: &Drilled) -> String {
    match &s.version_id {
        Some(v) => format!("{} (version {v})", s.key),
        None => s.key.clone(),
    }
}

fn render(r: &Report) -> String {
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = r
        .states
        .iter()
        .map(|s| {
            vec![
                name_of(s),
                s.verdict.outcome.name().to_string(),
                s.verdict.serial.map_or_else(dash, |n| n.to_string()),
                s.verdict
                    .recipient
                    .clone()
                    .or_else(|| s.verdict.detail.clone())
                    .unwrap_or_else(dash),
            ]
        })
        .collect();
    let mut out = table(&["STATE", "RESULT", "SERIAL", "RECIPIENT / DETAIL"], &rows);
    let s = &r.summary;
    out.push_str(&format!(
        "{} of {} checked recovered with the identity alone; {} plaintext, {} without a recovery recipient, {} failed\n",
        s.recovered, s.checked, s.plaintext, s.no_recovery_recipient, s.failed
    ));
    out
}

fn keygen(output: &Path) -> Result<(), Failure> {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let body = zeroize::Zeroizing::new(format!(
        "# stateseal recovery identity (age X25519). Keep this file offline.\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    ));
    crate::io::create_private_file(output, body.as_bytes())?;
    outln!("{recipient}");
    errln!(
        "wrote the recovery identity to {}; keep it offline. Give the recipient above to `stateseal keyprovider --recipient`.",
        output.display()
    );
    Ok(())
}
