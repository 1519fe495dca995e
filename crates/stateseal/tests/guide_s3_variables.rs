//! A configuration in the style of the OpenTofu guides, on moto: an `aws_kms` key provider with
//! `assume_role`, and a `backend "s3"` whose bucket, key, region, KMS key ARN, DynamoDB table ARN
//! and role ARN all come from variables set through `TF_VAR_*` (OpenTofu 1.8+ evaluates them
//! early). `state push`, `state pull`, `outputs`, `lock` and `unlock` must work, and the object
//! must be an envelope stored with SSE-KMS.
//!
//! Needs `STATESEAL_TEST_AWS_ENDPOINT` (a moto URL) and the peers venv; skips with a notice
//! without them (fails under `STATESEAL_TEST_REQUIRE_PEERS`).
#![cfg(feature = "aws-kms")]

use std::process::Command;

use serde_json::Value;
use stateseal_testkit::{unique, Peers};

pub(crate) const MAIN_TF: &str = r#"variable "aws_s3_bucket" {
  type = string
}
variable "project" {
  type = string
}
variable "aws_region" {
  type = string
}
variable "kms_key_arn" {
  type = string
}
variable "lock_table_arn" {
  type = string
}
variable "role_arn" {
  type = string
}
variable "aws_endpoint" {
  type = string
}

locals {
  state_key = "states/${var.project}/terraform.tfstate"
  endpoints = {
    s3       = var.aws_endpoint
    dynamodb = var.aws_endpoint
    sts      = var.aws_endpoint
    iam      = var.aws_endpoint
  }
}

terraform {
  backend "s3" {
    bucket         = var.aws_s3_bucket
    key            = local.state_key
    region         = var.aws_region
    encrypt        = true
    kms_key_id     = var.kms_key_arn
    dynamodb_table = var.lock_table_arn
    assume_role = {
      role_arn     = var.role_arn
      session_name = "stateseal-guide"
    }
    endpoints                   = local.endpoints
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
  }

  encryption {
    key_provider "aws_kms" "main" {
      kms_key_id = var.kms_key_arn
      key_spec   = "AES_256"
      region     = var.aws_region
      assume_role = {
        role_arn = var.role_arn
      }
      endpoints {
        sts = var.aws_endpoint
      }
      skip_metadata_api_check = true
    }
    method "aes_gcm" "main" {
      keys = key_provider.aws_kms.main
    }
    state {
      method = method.aes_gcm.main
    }
  }
}
"#;

struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// The AWS resources the guide's configuration names (a versioned bucket, a lock table, a KMS
/// key, a role) on moto, and the `TF_VAR_*` values that point the configuration at them.
pub(crate) struct Guide {
    pub(crate) bucket: String,
    pub(crate) table: String,
    pub(crate) key_arn: String,
    pub(crate) role_arn: String,
    endpoint: String,
}

/// The object key the configuration builds from `var.project` (`guide`).
pub(crate) const GUIDE_OBJECT_KEY: &str = "states/guide/terraform.tfstate";

impl Guide {
    pub(crate) async fn create(peers: &Peers) -> Guide {
        let bucket = unique("guide");
        peers.mkbucket(&bucket, true).await;
        let table = unique("guide-locks");
        peers.mktable(&table).await;
        let key_arn = peers.mkkey(&unique("guide-key"));
        Guide {
            bucket,
            table,
            key_arn,
            role_arn: format!("arn:aws:iam::123456789012:role/{}", unique("guide-role")),
            endpoint: peers.endpoint().to_string(),
        }
    }

    /// The `TF_VAR_*` variables, as the guide sets them, and `AWS_ENDPOINT_URL_KMS` (OpenTofu's
    /// aws_kms `endpoints` is a block with only `iam` and `sts`: KMS goes where the SDK says).
    pub(crate) fn vars(&self) -> Vec<(String, String)> {
        [
            ("aws_s3_bucket", self.bucket.clone()),
            ("project", "guide".into()),
            ("aws_region", "us-east-1".into()),
            ("kms_key_arn", self.key_arn.clone()),
            (
                "lock_table_arn",
                format!(
                    "arn:aws:dynamodb:us-east-1:123456789012:table/{}",
                    self.table
                ),
            ),
            ("role_arn", self.role_arn.clone()),
            ("aws_endpoint", self.endpoint.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("TF_VAR_{k}"), v))
        .chain([("AWS_ENDPOINT_URL_KMS".into(), self.endpoint.clone())])
        .collect()
    }
}

#[tokio::test]
async fn guide_configuration_with_variables_in_the_backend_block() {
    let Some(peers) = Peers::terraform("guide_configuration_with_variables_in_the_backend_block")
    else {
        return;
    };
    let guide = Guide::create(&peers).await;
    let (bucket, table, key_arn) = (&guide.bucket, &guide.table, &guide.key_arn);
    let role_arn = guide.role_arn.as_str();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tf"), MAIN_TF).unwrap();
    let plain = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/vectors/state_plain.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("plain.json"), &plain).unwrap();

    let vars = guide.vars();
    let ss = |args: &[&str]| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("stateseal"));
        c.current_dir(dir.path())
            .args(args)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .env_remove("TF_ENCRYPTION")
            .env_remove("TF_WORKSPACE")
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        let o = c.output().unwrap();
        let out = Out {
            code: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        };
        assert_eq!(out.code, 0, "stateseal {args:?} failed:\n{}", out.stderr);
        out
    };
    let object_key = GUIDE_OBJECT_KEY;

    ss(&["state", "push", "plain.json"]);
    let stored = peers
        .get_object(&bucket, object_key)
        .await
        .expect("the state is at the key built from var.project");
    let envelope = json(&stored);
    assert!(envelope.get("encryption_version").is_some(), "an envelope");
    let meta: Value = json(
        &stateseal_encryption::envelope::Envelope::parse(&stored)
            .unwrap()
            .meta["key_provider.aws_kms.main"],
    );
    assert!(meta["ciphertext_blob"].is_string(), "{meta}");
    assert!(
        meta.get("encryption_context").is_none(),
        "1.13's encryption_context is never added unless configured: {meta}"
    );
    let head = json(
        peers
            .python_out(&[
                "scripts/peers/aws.py",
                "--endpoint",
                peers.endpoint(),
                "head",
                &bucket,
                object_key,
            ])
            .as_bytes(),
    );
    assert_eq!(head["ServerSideEncryption"], "aws:kms", "{head}");
    assert_eq!(head["SSEKMSKeyId"], key_arn.as_str(), "{head}");

    assert_eq!(ss(&["state", "pull"]).stdout, plain);
    let outputs = json(&ss(&["outputs", "--json"]).stdout);
    assert_eq!(
        outputs["pet"]["value"],
        json(&plain)["outputs"]["pet"]["value"]
    );

    // Both the backend and the key provider assumed var.role_arn (moto records the sessions).
    let sessions = peers.python_out(&[
        "-c",
        "import json, sys, urllib.request\n\
d = json.load(urllib.request.urlopen(sys.argv[1] + '/moto-api/data.json'))\n\
print(json.dumps([[r['role_arn'], r['session_name']] for r in d['sts'].get('AssumedRole', [])]))",
        peers.endpoint(),
    ]);
    let sessions: Vec<(String, String)> = serde_json::from_str(&sessions).unwrap();
    let ours: Vec<&str> = sessions
        .iter()
        .filter(|(arn, _)| arn == role_arn)
        .map(|(_, s)| s.as_str())
        .collect();
    assert!(
        ours.contains(&"stateseal-guide"),
        "backend session: {sessions:?}"
    );
    assert!(
        ours.iter().any(|s| *s != "stateseal-guide"),
        "key provider session: {sessions:?}"
    );

    let id = String::from_utf8(ss(&["lock"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let lock_id = format!("{bucket}/{object_key}");
    let info = peers
        .item_attr(&table, &lock_id, "Info")
        .await
        .expect("the lock is in the table named by var.lock_table_arn");
    assert!(info.contains(&id), "{info}");
    ss(&["unlock", &id]);
    assert!(peers.item_attr(&table, &lock_id, "Info").await.is_none());
}
