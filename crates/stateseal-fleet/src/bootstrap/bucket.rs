//! The bootstrap's bucket: created in its region, then versioning, default SSE-KMS with the
//! bucket key, the four public-access blocks and a TLS-only bucket policy, each checked and made
//! or tightened; another default key is drift, never replaced.

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use serde_json::{json, Value};
use stateseal_store::s3::Versioning;
use stateseal_store::Error as StoreError;

use super::{Action, Clients, Plan};
use crate::error::{Error, Result};
use crate::{same_kms_key, Fleet};

/// The TLS-only statement: deny every request made without TLS.
pub(super) fn tls_statement(partition: &str, bucket: &str) -> Value {
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
pub(super) async fn default_encryption(
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

pub(super) async fn bucket_steps(
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
