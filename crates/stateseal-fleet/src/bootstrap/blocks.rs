//! What the bootstrap report hands over: the `backend "s3"` block to paste (the key by ARN),
//! OpenTofu's `encryption` block, and a least-privilege IAM policy for the deploy principal.

use serde_json::{json, Value};

use super::{Spec, DEPLOY_KEY_ACTIONS};

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

/// The `encryption` block for disaster recovery: the same configuration with the replica key
/// in `dr_region`. A replica decrypts what its primary (in `primary_region`) encrypted, so
/// switching to this block when the primary's region is down reads every existing state.
pub fn dr_encryption_block(dr_region: &str, replica: &str, primary_region: &str) -> String {
    format!(
        "# Disaster recovery: when {primary_region} is down, use this block instead (the replica in {dr_region}\n# shares the primary key's material; only real AWS proves the cross-Region decrypt).\n{}",
        encryption_block(dr_region, Some(replica))
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
    use crate::bootstrap::KmsKey;

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
            dr_region: None,
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
