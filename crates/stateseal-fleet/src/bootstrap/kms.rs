//! The bootstrap's KMS key: found by alias or ID, created with the runbook's key policy,
//! rotation and alias, or checked (rotation turned on, a policy that differs reported as drift).

use std::collections::BTreeSet;

use serde_json::{json, Value};
use stateseal_store::Error as StoreError;

use super::{Action, Plan, Spec, DEPLOY_KEY_ACTIONS};
use crate::error::{Error, Result};

/// The ARN of the key `id` names (ARN, ID or alias), or `None` when there is none.
pub(super) async fn describe_key(kms: &aws_sdk_kms::Client, id: &str) -> Result<Option<String>> {
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

pub(super) async fn create_key(
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
            match spec.dr_region {
                Some(_) => format!("symmetric multi-Region key, key policy: {who}"),
                None => format!("symmetric key, key policy: {who}"),
            },
            async {
                let made = kms
                    .create_key()
                    .description(format!("OpenTofu/Terraform state ({alias})"))
                    .multi_region(spec.dr_region.is_some())
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
pub(super) async fn check_key(
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
}
