//! `stateseal bootstrap s3 --bucket NAME [--region R] [--kms-key new|ARN|none]
//! [--lock dynamodb[:TABLE]|lockfile|both[:TABLE]] [--principal ARN]... [--apply] [--json]`:
//! the hardened-backend bootstrap (stateseal-fleet `bootstrap`), a plan unless --apply,
//! rendered as a table followed by the blocks to paste and the deploy principal's IAM policy.

use clap::{Args, Subcommand};
use stateseal_fleet::bootstrap::{self, Action, KmsKey, Report, Spec};

use crate::backend::block_on;
use crate::cmd::fleet::connect_with;
use crate::context::Context;
use crate::failure::{exit, Failure};
use crate::render::json::show;
use crate::render::table::table;

#[derive(Args, Debug)]
pub struct BootstrapArgs {
    #[command(subcommand)]
    pub command: BootstrapCommand,
}

#[derive(Subcommand, Debug)]
pub enum BootstrapCommand {
    /// Create or fix a hardened S3 backend: KMS key, bucket, lock table (a plan unless --apply).
    ///
    /// Compares what exists with what should, and with --apply creates what is missing and
    /// tightens what is weaker: a customer-managed KMS key (key policy: the account root
    /// administers it; each --principal may only Encrypt, Decrypt, GenerateDataKey and
    /// DescribeKey), with annual rotation and an alias; the bucket, with versioning, default
    /// SSE-KMS with that key and the bucket key, all four public-access blocks and a TLS-only
    /// bucket policy; the DynamoDB lock table (LockID string hash key, pay-per-request, SSE with
    /// the key, point-in-time recovery). Nothing is deleted or loosened: a difference that
    /// fixing would loosen or break is reported as drift and left alone. A second --apply
    /// reports no changes.
    ///
    /// Prints the terraform { backend "s3" { … } } block to paste (with the key ARN, not the
    /// alias), OpenTofu's encryption block, and a least-privilege IAM policy for the deploy
    /// principal; with --dr-region, the encryption block for the replica key in that region.
    /// Credentials, endpoints and other connection settings come from the
    /// directory's backend "s3" block, --backend-config and the AWS_* environment, as for audit.
    S3(S3Args),
}

#[derive(Args, Debug)]
pub struct S3Args {
    /// The state bucket.
    #[arg(long, value_name = "NAME")]
    pub bucket: String,
    /// Its region (default: the backend block's, AWS_REGION or AWS_DEFAULT_REGION).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The KMS key: `new` (found by --kms-alias, created if missing), an existing key's ARN, or `none` (SSE-S3).
    #[arg(long, value_name = "new|ARN|none", default_value = "new")]
    pub kms_key: String,
    /// The alias of a `new` key (default: alias/tfstate-BUCKET).
    #[arg(long, value_name = "ALIAS")]
    pub kms_alias: Option<String>,
    /// Locking: `dynamodb[:TABLE]` (a lock table, default name BUCKET-locks), `lockfile` (S3 lock files, no table), or `both[:TABLE]`.
    #[arg(
        long,
        value_name = "dynamodb[:TABLE]|lockfile|both[:TABLE]",
        default_value = "dynamodb"
    )]
    pub lock: String,
    /// A deploy principal (IAM role or user ARN) allowed to use the key (repeatable).
    #[arg(long = "principal", value_name = "ARN")]
    pub principals: Vec<String>,
    /// The state key written into the printed backend block.
    #[arg(long, value_name = "PATH", default_value = "terraform.tfstate")]
    pub key: String,
    /// Disaster recovery: make the new key multi-Region and replicate it into REGION with the
    /// same key policy and alias, and print a second encryption block naming the replica's ARN
    /// and REGION, for when the bucket's region is down. A replica decrypts what its primary
    /// encrypted only on real AWS (moto models the replica and its policy, not that): prove it
    /// there. An existing single-Region key cannot become multi-Region (reported as drift).
    #[arg(long, value_name = "REGION")]
    pub dr_region: Option<String>,
    /// Make the changes (without it, only the plan is printed).
    #[arg(long)]
    pub apply: bool,
    /// Print one JSON object instead of the plan and blocks.
    #[arg(long)]
    pub json: bool,
}

/// `--lock`: the table (if any) and whether lock files are used.
fn parse_lock(s: &str, bucket: &str) -> Result<(Option<String>, bool), Failure> {
    let (kind, table) = s.split_once(':').unwrap_or((s, ""));
    let table = if table.is_empty() {
        format!("{bucket}-locks")
    } else {
        table.to_string()
    };
    match kind {
        "dynamodb" => Ok((Some(table), false)),
        "both" => Ok((Some(table), true)),
        "lockfile" if s == "lockfile" => Ok((None, true)),
        _ => Err(Failure::new(
            exit::USAGE,
            format!("--lock {s:?}: unknown locking"),
            "use dynamodb, dynamodb:TABLE, lockfile, both or both:TABLE",
        )),
    }
}

fn spec(a: &S3Args) -> Result<Spec, Failure> {
    let (table, lockfile) = parse_lock(&a.lock, &a.bucket)?;
    let kms = match a.kms_key.as_str() {
        "new" => KmsKey::New {
            alias: match &a.kms_alias {
                Some(x) if x.starts_with("alias/") => x.clone(),
                Some(x) => format!("alias/{x}"),
                None => bootstrap::default_alias(&a.bucket),
            },
        },
        "none" => KmsKey::None,
        arn => KmsKey::Existing(arn.to_string()),
    };
    if let Some(bad) = a.principals.iter().find(|p| !p.starts_with("arn:")) {
        return Err(Failure::new(
            exit::USAGE,
            format!("--principal {bad:?} is not an ARN"),
            "give the deploy role or user by ARN, e.g. arn:aws:iam::111122223333:role/deploy",
        ));
    }
    if a.kms_alias.is_some() && !matches!(kms, KmsKey::New { .. }) {
        return Err(Failure::new(
            exit::USAGE,
            "--kms-alias names the key --kms-key new creates",
            "drop --kms-alias, or use --kms-key new",
        ));
    }
    if a.dr_region.is_some() && kms == KmsKey::None {
        return Err(Failure::new(
            exit::USAGE,
            "--dr-region replicates the KMS key, and --kms-key none has none",
            "drop --dr-region, or use --kms-key new",
        ));
    }
    if a.dr_region.is_some() && a.dr_region == a.region {
        return Err(Failure::new(
            exit::USAGE,
            "--dr-region is the bucket's own --region",
            "name a second region for the replica, e.g. --dr-region us-west-2",
        ));
    }
    Ok(Spec {
        kms,
        table,
        lockfile,
        principals: a.principals.clone(),
        state_key: a.key.clone(),
        dr_region: a.dr_region.clone(),
    })
}

pub fn run(ctx: &Context, args: &BootstrapArgs) -> Result<(), Failure> {
    let BootstrapCommand::S3(a) = &args.command;
    let spec = spec(a)?;
    let extra: Vec<String> = a.region.iter().map(|r| format!("region={r}")).collect();
    let report = block_on(async {
        let fleet = connect_with(ctx, &format!("s3://{}", a.bucket), &extra).await?;
        bootstrap::bootstrap(&fleet.store, &spec, a.apply)
            .await
            .map_err(|e| {
                let f = Failure::from(e);
                if a.apply {
                    f.with_fix("what was made before the failure is kept, and bootstrap picks up where it stopped: fix the cause and run it again")
                } else {
                    f
                }
            })
    })?;
    show(&report, a.json, render);
    Ok(())
}

fn render(r: &Report) -> String {
    let word = |a: Action| match (a, r.apply) {
        (Action::Ok, _) => "ok",
        (Action::Create, true) => "created",
        (Action::Create, false) => "create",
        (Action::Change, true) => "changed",
        (Action::Change, false) => "change",
        (Action::Drift, _) => "DRIFT (left alone)",
    };
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .map(|s| {
            vec![
                s.resource.clone(),
                s.setting.clone(),
                word(s.action).to_string(),
                s.detail.clone(),
            ]
        })
        .collect();
    let mut out = table(&["RESOURCE", "SETTING", "ACTION", "DETAIL"], &rows);
    let s = &r.summary;
    out.push('\n');
    out.push_str(&match (s.changes(), r.apply) {
        (0, _) => "No changes: everything is as it should be.".to_string(),
        (n, true) => format!("{n} change(s) made."),
        (n, false) => format!("Dry run: {n} change(s) to make; run with --apply."),
    });
    if s.drift > 0 {
        out.push_str(&format!(
            " {} drift(s) reported and left alone (fix them by hand if intended).",
            s.drift
        ));
    }
    out.push_str(&format!(
        "\n\n# The backend (Terraform and OpenTofu):\n{}\n{}\n# A least-privilege IAM policy for the deploy principal:\n{}\n",
        r.backend_block,
        r.encryption_block,
        serde_json::to_string_pretty(&r.iam_policy).expect("a policy serializes")
    ));
    if let Some(block) = &r.dr_encryption_block {
        out.push_str(&format!("\n{block}"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_choices_parse() {
        let p = |s| super::parse_lock(s, "b").map_err(|f| f.cause);
        assert_eq!(p("dynamodb").unwrap(), (Some("b-locks".into()), false));
        assert_eq!(p("dynamodb:t").unwrap(), (Some("t".into()), false));
        assert_eq!(p("both:t").unwrap(), (Some("t".into()), true));
        assert_eq!(p("lockfile").unwrap(), (None, true));
        assert!(p("lockfile:x").is_err());
        assert!(p("redis").is_err());
    }
}
