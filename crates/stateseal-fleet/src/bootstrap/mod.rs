//! A hardened S3 backend in one command (docs/FLEET.md §3): compare what exists with what
//! should, and (with `apply`) create or fix it, idempotently:
//!
//! * a customer-managed KMS key with the runbook's key policy (the account root administers it,
//!   the deploy principals get exactly Encrypt, Decrypt, GenerateDataKey and DescribeKey),
//!   annual rotation and an alias;
//! * the bucket: versioning, default SSE-KMS with that key and the bucket key, all four
//!   public-access blocks, a TLS-only bucket policy;
//! * the DynamoDB lock table (`LockID` string hash key, pay-per-request, SSE with the key,
//!   point-in-time recovery), unless locking is by lock file only;
//! * with a DR region, the key as a multi-Region key and its replica there (`replica`).
//!
//! Nothing that exists is deleted or loosened: a setting that differs in a way that fixing
//! would loosen or break (another key, a wider key policy, provisioned capacity) is reported as
//! drift and left alone. The report carries the `backend "s3"` block to paste (with the key
//! ARN, never the alias), OpenTofu's `encryption` block, and a least-privilege IAM policy for
//! the deploy principal.
//!
//! One file per resource: `kms` (the key and its policy), `bucket`, `table` (the lock table),
//! `blocks` (the blocks and the IAM policy of the report), `replica` (the DR region's replica
//! key); this file holds the plan, the report
//! and the order of the steps.

mod blocks;
mod bucket;
mod kms;
mod replica;
mod table;

pub use blocks::{backend_block, deploy_policy, encryption_block};
pub use kms::{key_policy, key_policy_drift};
pub use replica::replica_arn;

use serde::Serialize;
use serde_json::Value;
use stateseal_aws::clients;
use stateseal_store::s3::S3Store;
use stateseal_store::Error as StoreError;

use crate::error::{Error, Result};
use crate::report::Tally;
use crate::Fleet;
use bucket::bucket_steps;
use kms::{check_key, create_key, describe_key};
use table::table_steps;

/// The four actions the runbook grants deploy principals on the key, and nothing more.
pub const DEPLOY_KEY_ACTIONS: [&str; 4] = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
];

/// Which KMS key the backend uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KmsKey {
    /// The key behind `alias`, created (with the policy, rotation and the alias) if missing.
    New { alias: String },
    /// An existing key (ARN, ID or alias); checked, never modified except to turn rotation on.
    Existing(String),
    /// No customer-managed key: SSE-S3 by default, DynamoDB's own encryption.
    None,
}

/// What should exist.
#[derive(Clone, Debug)]
pub struct Spec {
    pub kms: KmsKey,
    /// The DynamoDB lock table, if locking uses one.
    pub table: Option<String>,
    /// Whether the backend locks with `<key>.tflock` objects.
    pub lockfile: bool,
    /// Deploy principals (IAM ARNs) granted the four key actions in the key policy.
    pub principals: Vec<String>,
    /// The state key written into the backend block.
    pub state_key: String,
    /// A second region for disaster recovery: the key is made multi-Region and replicated there.
    pub dr_region: Option<String>,
}

/// The default alias of the key for `bucket` (alias names cannot hold dots).
pub fn default_alias(bucket: &str) -> String {
    format!("alias/tfstate-{}", bucket.replace('.', "-"))
}

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Already as it should be.
    Ok,
    /// Missing: created (with apply) or to be created.
    Create,
    /// Exists but weaker than it should be: tightened (with apply) or to be tightened.
    Change,
    /// Differs in a way that fixing would loosen or break something: reported, left alone.
    Drift,
}

/// One line of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// `kms key`, `bucket`, `lock table`.
    pub resource: String,
    /// What about it: `exists`, `rotation`, `versioning`, …
    pub setting: String,
    pub action: Action,
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub create: usize,
    pub change: usize,
    pub drift: usize,
}

impl Tally for Summary {
    type Item = Step;

    fn counter(&mut self, s: &Step) -> &mut usize {
        match s.action {
            Action::Ok => &mut self.ok,
            Action::Create => &mut self.create,
            Action::Change => &mut self.change,
            Action::Drift => &mut self.drift,
        }
    }
}

impl Summary {
    /// Creations and changes (made, or planned in a dry run).
    pub fn changes(&self) -> usize {
        self.create + self.change
    }
}

/// `stateseal bootstrap s3 --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub bucket: String,
    pub region: String,
    pub account: String,
    pub apply: bool,
    /// The key's ARN (null with `--kms-key none`, or for a key a dry run would create).
    pub kms_key_arn: Option<String>,
    pub kms_alias: Option<String>,
    pub lock_table: Option<String>,
    pub use_lockfile: bool,
    pub steps: Vec<Step>,
    pub summary: Summary,
    /// `terraform { backend "s3" { … } }` (Terraform and OpenTofu).
    pub backend_block: String,
    /// `terraform { encryption { … } }` (OpenTofu only: Terraform rejects the block).
    pub encryption_block: String,
    /// A least-privilege identity policy for the deploy principal.
    pub iam_policy: Value,
    /// `--dr-region`: the region of the replica key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dr_region: Option<String>,
    /// The replica's ARN (null for a replica a dry run would create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dr_kms_key_arn: Option<String>,
    /// The `encryption` block for the DR region: the replica by ARN and its region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dr_encryption_block: Option<String>,
}

/// The clients a bootstrap needs, from the store's connection settings (region, credentials,
/// endpoints).
struct Clients {
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    ddb: aws_sdk_dynamodb::Client,
    sts: aws_sdk_sts::Client,
    /// KMS in the DR region, when there is one.
    kms_dr: Option<aws_sdk_kms::Client>,
}

impl Clients {
    async fn new(store: &S3Store, dr_region: Option<&str>) -> Result<Clients> {
        let cfg = store.config();
        let auth = &cfg.auth;
        let sdk = stateseal_aws::sdk_config(auth)
            .await
            .map_err(Error::Connect)?;
        let s3 = clients::s3_config(&sdk, auth).force_path_style(cfg.use_path_style);
        Ok(Clients {
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            kms: clients::kms(&sdk, auth),
            ddb: clients::dynamodb(&sdk, auth),
            sts: clients::sts(&sdk, auth),
            kms_dr: dr_region.map(|r| clients::kms_in(&sdk, auth, r)),
        })
    }
}

/// The steps so far; with `apply`, each creation or change is made as it is planned.
struct Plan {
    apply: bool,
    steps: Vec<Step>,
}

impl Plan {
    fn note(&mut self, resource: &str, setting: &str, action: Action, detail: impl Into<String>) {
        self.steps.push(Step {
            resource: resource.into(),
            setting: setting.into(),
            action,
            detail: detail.into(),
        });
    }

    /// A creation or change: made now (before the next step) when applying.
    async fn make<T>(
        &mut self,
        resource: &str,
        setting: &str,
        action: Action,
        detail: impl Into<String>,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<Option<T>> {
        self.note(resource, setting, action, detail);
        if self.apply {
            Ok(Some(work.await?))
        } else {
            Ok(None)
        }
    }
}

/// Compares the bucket of `store` (its name, region and connection) and its key and lock table
/// with `spec`, and with `apply` creates or tightens what is missing or weaker.
pub async fn bootstrap(store: &S3Store, spec: &Spec, apply: bool) -> Result<Report> {
    let c = Clients::new(store, spec.dr_region.as_deref()).await?;
    let bucket = store.config().bucket.clone();
    let region = store.config().auth.region().map_err(Error::Connect)?;
    match (&spec.dr_region, &spec.kms) {
        (Some(dr), _) if *dr == region => {
            return Err(StoreError::Unsupported(format!(
                "the DR region {dr} is the bucket's own region: a replica must be in another region"
            ))
            .into())
        }
        (Some(_), KmsKey::None) => {
            return Err(StoreError::Unsupported(
                "a DR region replicates the KMS key, and --kms-key none has none".into(),
            )
            .into())
        }
        _ => {}
    }
    let me = c
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Error::aws("GetCallerIdentity", "STS", e))?;
    let account = me.account().unwrap_or_default().to_string();
    let partition = me
        .arn()
        .and_then(|a| a.split(':').nth(1))
        .unwrap_or("aws")
        .to_string();
    let root = format!("arn:{partition}:iam::{account}:root");
    let mut plan = Plan {
        apply,
        steps: Vec::new(),
    };

    let key_arn = match &spec.kms {
        KmsKey::None => None,
        KmsKey::New { alias } => match describe_key(&c.kms, alias).await? {
            Some(arn) => {
                plan.note("kms key", "exists", Action::Ok, format!("{alias} → {arn}"));
                check_key(&mut plan, &c.kms, &arn, &root, spec, &region).await?;
                Some(arn)
            }
            None => create_key(&mut plan, &c.kms, alias, &root, spec).await?,
        },
        KmsKey::Existing(id) => {
            let arn = describe_key(&c.kms, id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("KMS key {id}"),
                })?;
            plan.note("kms key", "exists", Action::Ok, arn.clone());
            check_key(&mut plan, &c.kms, &arn, &root, spec, &region).await?;
            Some(arn)
        }
    };
    // What the settings name when a dry run would create the key.
    let key_ref = match (&spec.kms, &key_arn) {
        (_, Some(arn)) => Some(arn.clone()),
        (KmsKey::None, None) => None,
        (_, None) => Some("(the new key)".to_string()),
    };

    let fleet = Fleet::new(store.clone(), "");
    bucket_steps(
        &mut plan,
        &c,
        &fleet,
        &region,
        &partition,
        key_ref.as_deref(),
    )
    .await?;
    if let Some(table) = &spec.table {
        table_steps(
            &mut plan,
            &c.ddb,
            table,
            key_ref.as_deref(),
            key_arn.as_deref(),
        )
        .await?;
    }

    let dr_key = match (&spec.dr_region, &c.kms_dr) {
        (Some(dr_region), Some(dr_kms)) => {
            let replica = replica::Replica {
                primary_kms: &c.kms,
                dr_kms,
                dr_region,
                alias: match &spec.kms {
                    KmsKey::New { alias } => Some(alias),
                    _ => None,
                },
                root: &root,
            };
            replica.steps(&mut plan, key_arn.as_deref(), spec).await?
        }
        _ => None,
    };

    let summary = Summary::of(&plan.steps);
    let shown_key = key_ref.as_deref();
    let dr_encryption_block = spec.dr_region.as_ref().map(|dr| {
        let replica = dr_key.as_deref().unwrap_or("(the replica key)");
        blocks::dr_encryption_block(dr, replica, &region)
    });
    Ok(Report {
        backend_block: backend_block(&bucket, &region, spec, shown_key),
        encryption_block: encryption_block(&region, shown_key),
        iam_policy: deploy_policy(&bucket, &region, &account, &partition, spec, shown_key),
        bucket,
        region,
        account,
        apply,
        kms_alias: match &spec.kms {
            KmsKey::New { alias } => Some(alias.clone()),
            _ => None,
        },
        kms_key_arn: key_arn,
        lock_table: spec.table.clone(),
        use_lockfile: spec.lockfile,
        steps: plan.steps,
        summary,
        dr_region: spec.dr_region.clone(),
        dr_kms_key_arn: dr_key,
        dr_encryption_block,
    })
}
