//! `stateseal verify s3://BUCKET[/PREFIX] [--kms-key ARN] [--key-provider ADDRESS]
//! [--denied-profile NAME]... [--json]`: the bucket's promises checked per state
//! (stateseal-fleet `verify`); exits 8 on any violation, listing each one, and when there is no
//! state to verify (unless `--allow-empty`).

use clap::Args;
use stateseal_fleet::verify::{self, Expect, Report};

use crate::backend::block_on;
use crate::cmd::fleet::{connect, EmptySelection};
use crate::context::Context;
use crate::failure::{exit, Failure};
use crate::render::json::show;
use crate::render::progress::Progress;
use crate::render::table::table;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// What to verify: s3://BUCKET or s3://BUCKET/PREFIX (the default and every workspace).
    #[arg(value_name = "S3_URL")]
    pub url: String,
    /// The KMS key ARN every state must be on (default: the bucket's default encryption key).
    #[arg(long, value_name = "ARN")]
    pub kms_key: Option<String>,
    /// Every state must be client-side encrypted with this key provider, as its metadata names it (key_provider.aws_kms.main, pbkdf2.main, or an encrypted_metadata_alias).
    #[arg(long, value_name = "ADDRESS")]
    pub key_provider: Option<String>,
    /// An AWS shared-config profile that must be denied GetObject on every state (repeatable).
    #[arg(long = "denied-profile", value_name = "NAME")]
    pub denied_profiles: Vec<String>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// How many objects to read at a time.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    #[command(flatten)]
    pub empty: EmptySelection,
}

pub fn run(ctx: &Context, args: &VerifyArgs) -> Result<(), Failure> {
    let encryption = ctx.loaded()?.encryption.clone();
    let expect = Expect {
        kms_key: args.kms_key.clone(),
        key_provider: args.key_provider.clone(),
        denied_profiles: args.denied_profiles.clone(),
    };
    let mut progress = Progress::new("verifying", false);
    let report = block_on(async {
        let fleet = connect(ctx, &args.url).await?;
        let opts = verify::Options {
            concurrency: args.concurrency,
        };
        Ok::<_, Failure>(
            verify::verify(&fleet, encryption, &expect, &opts, &mut |e| {
                progress.on_event(e)
            })
            .await?,
        )
    });
    progress.finish();
    let report = report?;
    show(&report, args.json, render);
    if report.checked_nothing() {
        return args.empty.verdict(&report.bucket, &report.prefix, 0);
    }
    if report.passed() {
        return Ok(());
    }
    for v in &report.violations {
        errln!("violation: {v}");
    }
    Err(Failure::plain(
        exit::CHECK,
        format!(
            "{} violation(s) in s3://{}/{}",
            report.violations.len(),
            report.bucket,
            report.prefix
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
                s.sse.0.name().map_or_else(dash, String::from),
                s.sse.0.kms_key().map_or_else(dash, String::from),
                if s.key_providers.is_empty() {
                    s.encryption.name().to_string()
                } else {
                    s.key_providers.join(",")
                },
                s.digest.name().to_string(),
                if s.violations.is_empty() {
                    "ok".into()
                } else {
                    format!("FAIL: {}", s.violations.join("; "))
                },
            ]
        })
        .collect();
    let mut out = table(
        &["STATE", "SSE", "KMS KEY", "CLIENT-SIDE", "DIGEST", "RESULT"],
        &rows,
    );
    for g in &r.gate {
        out.push_str(&format!(
            "gate: profile {} on {}: {} ({})\n",
            g.profile,
            g.key,
            g.result.name(),
            g.detail
        ));
    }
    let s = &r.summary;
    out.push_str(&format!(
        "{} of {} states pass (expected key: {}); gate: {} of {} reads denied; {} violation(s)\n",
        s.passing,
        s.states,
        r.expected_kms_key.as_deref().unwrap_or("any SSE-KMS key"),
        s.gate_denied,
        s.gate_checks,
        s.violations
    ));
    out
}
