//! A hardened S3 backend in one command (docs/FLEET.md §3): compare what exists with what
//! should, and (with `apply`) create or fix it, idempotently:
//!
//! * a customer-managed KMS key with the runbook's key policy (the account root administers it,
//!   the deploy principals get exactly Encrypt, Decrypt, GenerateDataKey and DescribeKey),
//!   annual rotation and an alias;
//! * the bucket: versioning, default SSE-KMS with that key and the bucket key, all four
//!   public-access blocks, a TLS-only bucket policy;
//! * the DynamoDB lock table (`LockID` string hash key, pay-per-request, SSE with the key,
//!   point-in-time recovery), unless locking is by lock file only.
//!
//! Nothing that exists is deleted or loosened: a setting that differs in a way that fixing
//! would loosen or break (another key, a wider key policy, provisioned capacity) is reported as
//! drift and left alone. The report carries the `backend "s3"` block to paste (with the key
//! ARN, never the alias), OpenTofu's `encryption` block, and a least-privilege IAM policy for
//! the deploy principal.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ScalarAttributeType, SseSpecification, SseStatus, SseType,
    TableStatus,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use serde::Serialize;
use serde_json::{json, Value};
use stateseal_aws::clients;
use stateseal_store::s3::{S3Store, Versioning};
use stateseal_store::Error as StoreError;

use crate::error::{Error, Result};

use crate::{same_kms_key, Fleet};

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
}

/// The clients a bootstrap needs, from the store's connection settings (region, credentials,
/// endpoints).
struct Clients {
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    ddb: aws_sdk_dynamodb::Client,
    sts: aws_sdk_sts::Client,
}

impl Clients {
    async fn new(store: &S3Store) -> Result<Clients> {
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
    let c = Clients::new(store).await?;
    let bucket = store.config().bucket.clone();
    let region = store.config().auth.region().map_err(Error::Connect)?;
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

    let mut summary = Summary::default();
    for s in &plan.steps {
        *match s.action {
            Action::Ok => &mut summary.ok,
            Action::Create => &mut summary.create,
            Action::Change => &mut summary.change,
            Action::Drift => &mut summary.drift,
        } += 1;
    }
    let shown_key = key_ref.as_deref();
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
    })
}

/// The ARN of the key `id` names (ARN, ID or alias), or `None` when there is none.
async fn describe_key(kms: &aws_sdk_kms::Client, id: &str) -> Result<Option<String>> {
    match kms.describe_key().key_id(id).send().await {
        Ok(d) => Ok(d
            .key_metadata()
            .map(|m| m.arn().unwrap_or(m.key_id()).to_string())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::aws("DescribeKey", format!("KMS key {id}"), e)),
    }
}

/// The runbook's key policy: the account root administers the key; the deploy principals may
/// use it for exactly [`DEPLOY_KEY_ACTIONS`].
pub fn key_policy(root: &str, principals: &[String]) -> Value {
    let mut statements = vec![json!({
        "Sid": "AccountRootAdministersTheKey",
        "Effect": "Allow",
        "Principal": {"AWS": root},
        "Action": "kms:*",
        "Resource": "*"
    })];
    if !principals.is_empty() {
        statements.push(json!({
            "Sid": "DeployPrincipalsUseTheKey",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": DEPLOY_KEY_ACTIONS,
            "Resource": "*"
        }));
    }
    json!({"Version": "2012-10-17", "Id": "stateseal-state-key", "Statement": statements})
}

async fn create_key(
    plan: &mut Plan,
    kms: &aws_sdk_kms::Client,
    alias: &str,
    root: &str,
    spec: &Spec,
) -> Result<Option<String>> {
    let policy = key_policy(root, &spec.principals).to_string();
    let who = if spec.principals.is_empty() {
        "the account root only (no --principal)".to_string()
    } else {
        format!("root + {}", spec.principals.join(", "))
    };
    let arn = plan
        .make(
            "kms key",
            "exists",
            Action::Create,
            format!("symmetric key, key policy: {who}"),
            async {
                let made = kms
                    .create_key()
                    .description(format!("OpenTofu/Terraform state ({alias})"))
                    .policy(policy)
                    .send()
                    .await
                    .map_err(|e| Error::aws("CreateKey", "KMS", e))?;
                let m = made.key_metadata().ok_or_else(|| {
                    StoreError::Unsupported("CreateKey answered without key metadata".into())
                })?;
                Ok(m.arn().unwrap_or(m.key_id()).to_string())
            },
        )
        .await?;
    let target = arn.clone().unwrap_or_default();
    // The alias first: a run that fails after it finds the key again (by the alias) and
    // finishes the job, instead of creating a second key.
    plan.make(
        "kms key",
        "alias",
        Action::Create,
        alias.to_string(),
        async {
            kms.create_alias()
                .alias_name(alias)
                .target_key_id(&target)
                .send()
                .await
                .map_err(|e| Error::aws("CreateAlias", alias.to_string(), e))
        },
    )
    .await?;
    plan.make(
        "kms key",
        "rotation",
        Action::Create,
        "annual rotation on",
        async {
            kms.enable_key_rotation()
                .key_id(&target)
                .send()
                .await
                .map_err(|e| Error::aws("EnableKeyRotation", target.clone(), e))
        },
    )
    .await?;
    Ok(arn)
}

/// Rotation (turned on if off), the key policy (drift only) and the key's region.
async fn check_key(
    plan: &mut Plan,
    kms: &aws_sdk_kms::Client,
    arn: &str,
    root: &str,
    spec: &Spec,
    region: &str,
) -> Result<()> {
    let rotation = kms
        .get_key_rotation_status()
        .key_id(arn)
        .send()
        .await
        .map_err(|e| Error::aws("GetKeyRotationStatus", arn.to_string(), e))?;
    if rotation.key_rotation_enabled() {
        plan.note("kms key", "rotation", Action::Ok, "on");
    } else {
        plan.make("kms key", "rotation", Action::Change, "off → on", async {
            kms.enable_key_rotation()
                .key_id(arn)
                .send()
                .await
                .map_err(|e| Error::aws("EnableKeyRotation", arn.to_string(), e))
        })
        .await?;
    }
    let policy = kms
        .get_key_policy()
        .key_id(arn)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| Error::aws("GetKeyPolicy", arn.to_string(), e))?;
    let drift = key_policy_drift(policy.policy().unwrap_or_default(), root, &spec.principals);
    if drift.is_empty() {
        plan.note(
            "kms key",
            "key policy",
            Action::Ok,
            "root admin + deploy principals",
        );
    } else {
        plan.note("kms key", "key policy", Action::Drift, drift.join("; "));
    }
    let key_region = arn.split(':').nth(3).unwrap_or(region);
    if key_region != region {
        plan.note(
            "kms key",
            "region",
            Action::Drift,
            format!("the key is in {key_region}, the bucket in {region}"),
        );
    }
    Ok(())
}

/// How a key policy differs from [`key_policy`]: missing root administration, and per deploy
/// principal the missing and the extra actions.
pub fn key_policy_drift(policy: &str, root: &str, principals: &[String]) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return vec!["the key policy is not JSON".into()];
    };
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => Vec::new(),
    };
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    };
    let actions_of = |principal: &str| -> BTreeSet<String> {
        statements
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .filter(|s| {
                strings(&s["Principal"]["AWS"])
                    .iter()
                    .any(|p| p == principal)
            })
            .flat_map(|s| strings(&s["Action"]))
            .collect()
    };
    let mut out = Vec::new();
    if !actions_of(root).contains("kms:*") {
        out.push(format!(
            "the account root ({root}) does not administer the key (no kms:*)"
        ));
    }
    let wanted: BTreeSet<String> = DEPLOY_KEY_ACTIONS.iter().map(|a| a.to_string()).collect();
    for p in principals {
        let has = actions_of(p);
        let missing: Vec<&String> = wanted.difference(&has).collect();
        let extra: Vec<&String> = has.difference(&wanted).collect();
        if !missing.is_empty() {
            out.push(format!(
                "{p} lacks {} (not added: that would widen the policy)",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !extra.is_empty() {
            out.push(format!(
                "{p} also has {} (more than the four it needs)",
                extra
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out
}

/// The TLS-only statement: deny every request made without TLS.
fn tls_statement(partition: &str, bucket: &str) -> Value {
    json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [
            format!("arn:{partition}:s3:::{bucket}"),
            format!("arn:{partition}:s3:::{bucket}/*")
        ],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    })
}

/// The bucket's default encryption rule: algorithm, KMS key, bucket key.
async fn default_encryption(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> (Option<String>, Option<String>, bool) {
    let Ok(enc) = s3.get_bucket_encryption().bucket(bucket).send().await else {
        return (None, None, false);
    };
    let rule = enc
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first());
    let by_default = rule.and_then(|r| r.apply_server_side_encryption_by_default());
    (
        by_default.map(|d| d.sse_algorithm().as_str().to_string()),
        by_default.and_then(|d| d.kms_master_key_id().map(String::from)),
        rule.and_then(|r| r.bucket_key_enabled()).unwrap_or(false),
    )
}

async fn bucket_steps(
    plan: &mut Plan,
    c: &Clients,
    fleet: &Fleet,
    region: &str,
    partition: &str,
    key: Option<&str>,
) -> Result<()> {
    let bucket = fleet.bucket().to_string();
    let s3 = &c.s3;
    let exists = match s3.head_bucket().bucket(&bucket).send().await {
        Ok(_) => true,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => false,
        Err(e) => return Err(Error::aws("HeadBucket", format!("s3://{bucket}"), e)),
    };
    let new = !exists;
    if exists {
        plan.note("bucket", "exists", Action::Ok, format!("s3://{bucket}"));
    } else {
        plan.make(
            "bucket",
            "exists",
            Action::Create,
            format!("s3://{bucket} in {region}"),
            async {
                let mut req = s3.create_bucket().bucket(&bucket);
                if region != "us-east-1" {
                    req = req.create_bucket_configuration(
                        CreateBucketConfiguration::builder()
                            .location_constraint(BucketLocationConstraint::from(region))
                            .build(),
                    );
                }
                req.send()
                    .await
                    .map_err(|e| Error::aws("CreateBucket", format!("s3://{bucket}"), e))
            },
        )
        .await?;
    }
    // A bucket a dry run would create has nothing to read: every setting is to be made.
    let readable = exists || plan.apply;
    let checks = if readable {
        fleet.store.hardening().await
    } else {
        Default::default()
    };
    let what = |s: &str| {
        if new {
            format!("{s} (new bucket)")
        } else {
            s.to_string()
        }
    };

    match checks.versioning {
        Some(Versioning::Enabled) => plan.note("bucket", "versioning", Action::Ok, "Enabled"),
        other => {
            let from = other.map_or("off", Versioning::name);
            plan.make(
                "bucket",
                "versioning",
                Action::Change,
                what(&format!("{from} → Enabled")),
                async {
                    s3.put_bucket_versioning()
                        .bucket(&bucket)
                        .versioning_configuration(
                            VersioningConfiguration::builder()
                                .status(BucketVersioningStatus::Enabled)
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(|e| Error::aws("PutBucketVersioning", format!("s3://{bucket}"), e))
                },
            )
            .await?;
        }
    }

    let (alg, current_key, bucket_key) = if readable {
        default_encryption(s3, &bucket).await
    } else {
        (None, None, false)
    };
    let want = match key {
        Some(k) => format!("aws:kms with {k}, bucket key on"),
        None => "AES256 (SSE-S3)".to_string(),
    };
    let set_encryption = |arn: Option<String>| async move {
        let mut by_default = ServerSideEncryptionByDefault::builder();
        by_default = match &arn {
            Some(a) => by_default
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(a),
            None => by_default.sse_algorithm(ServerSideEncryption::Aes256),
        };
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                by_default
                    .build()
                    .map_err(|e| StoreError::Unsupported(e.to_string()))?,
            )
            .bucket_key_enabled(arn.is_some())
            .build();
        let conf = ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| StoreError::Unsupported(e.to_string()))?;
        s3.put_bucket_encryption()
            .bucket(fleet.bucket())
            .server_side_encryption_configuration(conf)
            .send()
            .await
            .map_err(|e| Error::aws("PutBucketEncryption", format!("s3://{}", fleet.bucket()), e))
    };
    match (key, alg.as_deref(), current_key.as_deref()) {
        (None, Some(_), _) => plan.note("bucket", "default encryption", Action::Ok, alg.clone().unwrap_or_default()),
        (Some(k), Some("aws:kms"), Some(cur)) if same_kms_key(cur, k) => {
            if bucket_key {
                plan.note("bucket", "default encryption", Action::Ok, want);
            } else {
                plan.make("bucket", "default encryption", Action::Change, "bucket key off → on", set_encryption(key.map(String::from))).await?;
            }
        }
        (Some(_), Some(a @ ("aws:kms" | "aws:kms:dsse")), cur) => plan.note(
            "bucket",
            "default encryption",
            Action::Drift,
            format!(
                "{a} with {}, not {want}: left alone (switching keys could lock out writers without access to the new key; `stateseal rekey --sse-only` moves the states)",
                cur.unwrap_or("the AWS-managed key aws/s3")
            ),
        ),
        (Some(_), from, _) | (None, from @ None, _) => {
            let from = from.unwrap_or("none");
            plan.make(
                "bucket",
                "default encryption",
                Action::Change,
                what(&format!("{from} → {want}")),
                set_encryption(key.map(String::from)),
            )
            .await?;
        }
    }

    if checks.public_access_blocked {
        plan.note("bucket", "public access block", Action::Ok, "all four on");
    } else {
        plan.make(
            "bucket",
            "public access block",
            Action::Change,
            what("all four on"),
            async {
                s3.put_public_access_block()
                    .bucket(&bucket)
                    .public_access_block_configuration(
                        PublicAccessBlockConfiguration::builder()
                            .block_public_acls(true)
                            .ignore_public_acls(true)
                            .block_public_policy(true)
                            .restrict_public_buckets(true)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| Error::aws("PutPublicAccessBlock", format!("s3://{bucket}"), e))
            },
        )
        .await?;
    }

    if checks.tls_only_policy {
        plan.note(
            "bucket",
            "TLS-only policy",
            Action::Ok,
            "aws:SecureTransport = false is denied",
        );
        return Ok(());
    }
    let current = if readable {
        s3.get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .ok()
            .and_then(|p| p.policy().map(String::from))
    } else {
        None
    };
    let statement = tls_statement(partition, &bucket);
    let (action, detail, doc) = match current.as_deref().map(serde_json::from_str::<Value>) {
        None => (
            Action::Create,
            what("deny aws:SecureTransport = false"),
            json!({"Version": "2012-10-17", "Statement": [statement]}),
        ),
        Some(Ok(mut doc)) => {
            let statements = match doc["Statement"].take() {
                Value::Array(a) => a,
                s @ Value::Object(_) => vec![s],
                _ => Vec::new(),
            };
            doc["Statement"] = Value::Array(statements.into_iter().chain([statement]).collect());
            (
                Action::Change,
                "add the statement denying aws:SecureTransport = false (the existing statements are kept)".to_string(),
                doc,
            )
        }
        Some(Err(e)) => {
            plan.note(
                "bucket",
                "TLS-only policy",
                Action::Drift,
                format!("the bucket policy is not JSON ({e}): left alone"),
            );
            return Ok(());
        }
    };
    plan.make("bucket", "TLS-only policy", action, detail, async {
        s3.put_bucket_policy()
            .bucket(&bucket)
            .policy(doc.to_string())
            .send()
            .await
            .map_err(|e| Error::aws("PutBucketPolicy", format!("s3://{bucket}"), e))
    })
    .await?;
    Ok(())
}

async fn table_steps(
    plan: &mut Plan,
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: Option<&str>,
    key_arn: Option<&str>,
) -> Result<()> {
    let described = match ddb.describe_table().table_name(table).send().await {
        Ok(d) => d.table,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => {
            return Err(Error::aws(
                "DescribeTable",
                format!("DynamoDB table {table}"),
                e,
            ))
        }
    };
    let sse_wanted = match key {
        Some(k) => format!("SSE with {k}"),
        None => "SSE with the AWS-owned key".to_string(),
    };
    let Some(t) = described else {
        plan.make(
            "lock table",
            "exists",
            Action::Create,
            format!("{table}: LockID (S) hash key, pay-per-request, {sse_wanted}"),
            async {
                let mut req = ddb
                    .create_table()
                    .table_name(table)
                    .billing_mode(BillingMode::PayPerRequest)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name("LockID")
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(|e| StoreError::Unsupported(e.to_string()))?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("LockID")
                            .key_type(KeyType::Hash)
                            .build()
                            .map_err(|e| StoreError::Unsupported(e.to_string()))?,
                    );
                if let Some(arn) = key_arn {
                    req = req.sse_specification(
                        SseSpecification::builder()
                            .enabled(true)
                            .sse_type(SseType::Kms)
                            .kms_master_key_id(arn)
                            .build(),
                    );
                }
                req.send()
                    .await
                    .map_err(|e| Error::aws("CreateTable", format!("DynamoDB table {table}"), e))?;
                wait_active(ddb, table).await
            },
        )
        .await?;
        plan.make(
            "lock table",
            "point-in-time recovery",
            Action::Create,
            "on",
            enable_pitr(ddb, table),
        )
        .await?;
        return Ok(());
    };
    let hash_key_ok = t.key_schema().len() == 1
        && t.key_schema()[0].attribute_name() == "LockID"
        && t.key_schema()[0].key_type() == &KeyType::Hash
        && t.attribute_definitions().iter().any(|a| {
            a.attribute_name() == "LockID" && a.attribute_type() == &ScalarAttributeType::S
        });
    if hash_key_ok {
        plan.note(
            "lock table",
            "exists",
            Action::Ok,
            format!("{table}: LockID (S) hash key"),
        );
    } else {
        plan.note("lock table", "exists", Action::Drift, format!("{table} exists but its key is not LockID (S) alone: Terraform and OpenTofu cannot lock with it"));
    }
    match t.billing_mode_summary().and_then(|b| b.billing_mode()) {
        Some(BillingMode::PayPerRequest) => {
            plan.note("lock table", "billing", Action::Ok, "pay-per-request")
        }
        other => plan.note(
            "lock table",
            "billing",
            Action::Drift,
            format!(
                "{} (provisioned capacity is a choice: left alone)",
                other.map_or("PROVISIONED", |b| b.as_str())
            ),
        ),
    }
    let sse = t.sse_description();
    let sse_key = sse.and_then(|s| s.kms_master_key_arn());
    let sse_on = sse.and_then(|s| s.status()) == Some(&SseStatus::Enabled);
    match (key, sse_key) {
        (None, _) => plan.note(
            "lock table",
            "encryption",
            Action::Ok,
            if sse_on {
                "SSE-KMS"
            } else {
                "the AWS-owned key"
            },
        ),
        (Some(k), Some(cur)) if sse_on && same_kms_key(cur, k) => {
            plan.note("lock table", "encryption", Action::Ok, sse_wanted)
        }
        (Some(_), cur) => plan.note(
            "lock table",
            "encryption",
            Action::Drift,
            format!(
                "{}, not {sse_wanted}: left alone",
                cur.map_or("the AWS-owned key".to_string(), |c| format!("SSE with {c}"))
            ),
        ),
    }
    let pitr = ddb
        .describe_continuous_backups()
        .table_name(table)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                "DescribeContinuousBackups",
                format!("DynamoDB table {table}"),
                e,
            )
        })?;
    let on = pitr
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        == Some(&PointInTimeRecoveryStatus::Enabled);
    if on {
        plan.note("lock table", "point-in-time recovery", Action::Ok, "on");
    } else {
        plan.make(
            "lock table",
            "point-in-time recovery",
            Action::Change,
            "off → on",
            enable_pitr(ddb, table),
        )
        .await?;
    }
    Ok(())
}

async fn enable_pitr(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    let spec = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .map_err(|e| StoreError::Unsupported(e.to_string()))?;
    ddb.update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(spec)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                "UpdateContinuousBackups",
                format!("DynamoDB table {table}"),
                e,
            )
        })?;
    Ok(())
}

/// Waits (up to 5 minutes) until a new table is ACTIVE: its continuous backups cannot be
/// configured before.
async fn wait_active(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    for _ in 0..150 {
        let d = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| Error::aws("DescribeTable", format!("DynamoDB table {table}"), e))?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(StoreError::Unsupported(format!(
        "DynamoDB table {table} did not become ACTIVE within 5 minutes"
    ))
    .into())
}

/// `terraform { backend "s3" { … } }` for this bucket: the key by ARN (alias support regressed
/// across Terraform versions), and the chosen locking.
pub fn backend_block(bucket: &str, region: &str, spec: &Spec, key: Option<&str>) -> String {
    let mut lines = vec![
        ("bucket", format!("{bucket:?}")),
        ("key", format!("{:?}", spec.state_key)),
        ("region", format!("{region:?}")),
        ("encrypt", "true".into()),
    ];
    if let Some(k) = key {
        lines.push(("kms_key_id", format!("{k:?}")));
    }
    if spec.lockfile {
        lines.push(("use_lockfile", "true".into()));
    }
    if let Some(t) = &spec.table {
        lines.push(("dynamodb_table", format!("{t:?}")));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let body: String = lines
        .iter()
        .map(|(k, v)| format!("    {k:<width$} = {v}\n"))
        .collect();
    format!("terraform {{\n  backend \"s3\" {{\n{body}  }}\n}}\n")
}

/// OpenTofu's `encryption` block: client-side encryption of state and plan with the same KMS
/// key (aws_kms key provider), or, without one, a pbkdf2 passphrase from a variable.
pub fn encryption_block(region: &str, key: Option<&str>) -> String {
    let provider = match key {
        Some(k) => format!(
            "    key_provider \"aws_kms\" \"main\" {{\n      kms_key_id = {k:?}\n      region     = {region:?}\n      key_spec   = \"AES_256\"\n    }}\n    method \"aes_gcm\" \"main\" {{\n      keys = key_provider.aws_kms.main\n    }}\n"
        ),
        None => "    # var.state_passphrase: at least 16 characters, from a secret store.\n    key_provider \"pbkdf2\" \"main\" {\n      passphrase = var.state_passphrase\n    }\n    method \"aes_gcm\" \"main\" {\n      keys = key_provider.pbkdf2.main\n    }\n".to_string(),
    };
    format!(
        "# OpenTofu only (Terraform rejects an encryption block): keep it in a file of its own.\nterraform {{\n  encryption {{\n{provider}    state {{\n      method   = method.aes_gcm.main\n      enforced = true\n    }}\n    plan {{\n      method   = method.aes_gcm.main\n      enforced = true\n    }}\n  }}\n}}\n"
    )
}

/// A least-privilege identity policy for the deploy principal: list the bucket, read and write
/// state objects (and delete lock files), use the lock table, and use the key.
pub fn deploy_policy(
    bucket: &str,
    region: &str,
    account: &str,
    partition: &str,
    spec: &Spec,
    key: Option<&str>,
) -> Value {
    let bucket_arn = format!("arn:{partition}:s3:::{bucket}");
    let mut statements = vec![
        json!({"Sid": "ListStates", "Effect": "Allow",
               "Action": ["s3:ListBucket", "s3:GetBucketVersioning"], "Resource": bucket_arn}),
        json!({"Sid": "ReadWriteStates", "Effect": "Allow",
               "Action": ["s3:GetObject", "s3:PutObject"], "Resource": format!("{bucket_arn}/*")}),
    ];
    if spec.lockfile {
        statements.push(json!({"Sid": "RemoveLockFiles", "Effect": "Allow",
            "Action": "s3:DeleteObject", "Resource": format!("{bucket_arn}/*.tflock")}));
    }
    if let Some(t) = &spec.table {
        statements.push(json!({"Sid": "LockTable", "Effect": "Allow",
            "Action": ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
            "Resource": format!("arn:{partition}:dynamodb:{region}:{account}:table/{t}")}));
    }
    if let Some(k) = key {
        statements.push(json!({"Sid": "StateKey", "Effect": "Allow",
            "Action": DEPLOY_KEY_ACTIONS, "Resource": k}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "arn:aws:iam::111122223333:root";

    #[test]
    fn the_runbook_policy_has_no_drift_and_wider_or_narrower_ones_do() {
        let deploy = vec!["arn:aws:iam::111122223333:role/deploy".to_string()];
        let ours = key_policy(ROOT, &deploy).to_string();
        assert!(key_policy_drift(&ours, ROOT, &deploy).is_empty());
        let wide = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*"},
            {"Effect": "Allow", "Principal": {"AWS": deploy[0]}, "Action": ["kms:Decrypt", "kms:ScheduleKeyDeletion"]}
        ]});
        let drift = key_policy_drift(&wide.to_string(), ROOT, &deploy);
        assert_eq!(drift.len(), 2, "{drift:?}");
        assert!(drift[0].contains("lacks kms:DescribeKey, kms:Encrypt, kms:GenerateDataKey"));
        assert!(drift[1].contains("also has kms:ScheduleKeyDeletion"));
        let no_root = key_policy_drift(r#"{"Statement": []}"#, ROOT, &[]);
        assert!(no_root[0].contains("does not administer"), "{no_root:?}");
        assert_eq!(key_policy_drift("nope", ROOT, &[]).len(), 1);
    }

    #[test]
    fn the_backend_block_names_the_key_by_arn_and_the_chosen_locks() {
        let spec = Spec {
            kms: KmsKey::New {
                alias: "alias/x".into(),
            },
            table: Some("locks".into()),
            lockfile: true,
            principals: vec![],
            state_key: "app/terraform.tfstate".into(),
        };
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/k";
        let block = backend_block("b", "eu-west-1", &spec, Some(arn));
        for want in [
            "bucket         = \"b\"",
            &format!("kms_key_id     = \"{arn}\""),
            "use_lockfile   = true",
            "dynamodb_table = \"locks\"",
            "encrypt        = true",
        ] {
            assert!(block.contains(want), "{want} in\n{block}");
        }
        assert!(!block.contains("alias/"));
        let policy = deploy_policy("b", "eu-west-1", "111122223333", "aws", &spec, Some(arn));
        let text = policy.to_string();
        for want in [
            "s3:GetObject",
            "table/locks",
            "b/*.tflock",
            "kms:GenerateDataKey",
            arn,
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
}
