//! Must-show 5 of issue 18: the fleet commands on a bucket that real `tofu` wrote. Six working
//! directories (two plaintext, two pbkdf2, two aws_kms on moto), each applied in four
//! workspaces by `tofu` (the pinned releases taking turns): 24 applies. `stateseal audit`
//! classifies every state; `stateseal rekey s3://…/pass/ --apply` moves the pbkdf2 states to
//! aws_kms, after which `tofu plan -detailed-exitcode` with the new configuration shows no
//! changes in every one of them; `stateseal locks list` shows the lock of a running `tofu apply`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use stateseal_testkit::{release, unique, Peers, Tofu, SLOW_APPLY_TF};

use super::{stateseal, stateseal_ok};
use crate::backend::json;

const WORKSPACES: [&str; 4] = ["default", "blue", "green", "red"];

/// One resource and one output, the same in every run (a second plan shows no changes).
const MAIN_TF: &str = r#"
resource "terraform_data" "app" {
  input = "app in ${terraform.workspace}"
}
output "app" {
  value = terraform_data.app.output
}
"#;

const PASS: &str = r#"
  key_provider "pbkdf2" "pass" {
    passphrase = "the fleet's old passphrase"
  }
  method "aes_gcm" "pass" {
    keys = key_provider.pbkdf2.pass
  }
"#;

/// The aws_kms key provider (KMS through `AWS_ENDPOINT_URL_KMS`, as OpenTofu's has no `kms`
/// endpoint attribute).
fn kms(key_arn: &str) -> String {
    format!(
        r#"
  key_provider "aws_kms" "main" {{
    kms_key_id                  = "{key_arn}"
    key_spec                    = "AES_256"
    region                      = "us-east-1"
    skip_credentials_validation = true
    skip_requesting_account_id  = true
  }}
  method "aes_gcm" "kms" {{
    keys = key_provider.aws_kms.main
  }}
"#
    )
}

/// The encryption body of each kind: before the rekey, and the new one (aws_kms primary, the
/// passphrase as fallback) that the rekey and the last plans use.
fn bodies(key_arn: &str) -> (String, String, String) {
    let kms = kms(key_arn);
    (
        format!("{PASS}  state {{\n    method = method.aes_gcm.pass\n  }}\n"),
        format!("{kms}  state {{\n    method = method.aes_gcm.kms\n  }}\n"),
        format!(
            "{kms}{PASS}  state {{\n    method = method.aes_gcm.kms\n    fallback {{\n      method = method.aes_gcm.pass\n    }}\n  }}\n"
        ),
    )
}

fn encryption_tf(body: &str) -> String {
    format!("terraform {{\n  encryption {{\n{body}  }}\n}}\n")
}

/// The environment of every command: moto for KMS, STS and the test credentials.
pub(super) fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_KMS", endpoint.to_string()),
        ("AWS_ENDPOINT_URL_STS", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// One `tofu` command with the AWS environment; panics unless it exits with `want`.
pub(super) fn tofu_expect(
    tofu: &Tofu,
    dir: &Path,
    env: &[(&str, String)],
    args: &[&str],
    want: i32,
) {
    let out = tofu.output(dir, args, |c| {
        c.envs(env.iter().map(|(k, v)| (k, v)));
    });
    assert_eq!(
        out.status.code(),
        Some(want),
        "tofu {} {args:?} in {}:\n{}{}",
        tofu.version,
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A working directory on `key` of the bucket with `files` (name, text).
pub(super) fn workdir(
    peers: &Peers,
    bucket: &str,
    table: &str,
    key: &str,
    files: &[(&str, &str)],
) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let locks = format!("dynamodb_table = \"{table}\"");
    std::fs::write(
        d.path().join("backend.tf"),
        peers.backend_block_for_key(bucket, key, &locks),
    )
    .unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_audit_rekey_and_locks_on_a_bucket_tofu_wrote() {
    let test = "fleet_audit_rekey_and_locks_on_a_bucket_tofu_wrote";
    let Some(peers) = Peers::aws(test) else {
        return;
    };
    let tofus = Tofu::all(test);
    if tofus.is_empty() {
        return;
    }
    let bucket = unique("fleet-tofu");
    peers.mkbucket(&bucket, true).await;
    let table = unique("fleet-tofu-locks");
    peers.mktable(&table).await;
    let key_arn = peers.mkkey(&unique("fleet-tofu-key"));
    let env = aws_env(peers.endpoint());
    let (pass_body, kms_body, new_body) = bodies(&key_arn);

    // Six directories, each applied in four workspaces, the releases taking turns.
    let kinds = [
        ("plain", String::new()),
        ("pass", encryption_tf(&pass_body)),
        ("kms", encryption_tf(&kms_body)),
    ];
    let mut dirs = Vec::new();
    for (kind, enc) in &kinds {
        for n in 0..2 {
            let key = format!("{kind}/{n}/terraform.tfstate");
            let d = workdir(
                &peers,
                &bucket,
                &table,
                &key,
                &[("main.tf", MAIN_TF), ("enc.tf", enc)],
            );
            dirs.push((*kind, key, d, tofus[dirs.len() % tofus.len()].clone()));
        }
    }
    // One command at a time: moto is one process, and under load an AWS SDK retry of tofu's
    // lock PutItem meets the item its first attempt wrote (tofu then reports its own lock).
    for (_, _, d, tofu) in &dirs {
        tofu_expect(tofu, d.path(), &env, &["init", "-no-color"], 0);
        for ws in WORKSPACES {
            if ws != "default" {
                tofu_expect(tofu, d.path(), &env, &["workspace", "new", ws], 0);
            }
            tofu_expect(
                tofu,
                d.path(),
                &env,
                &["apply", "-auto-approve", "-no-color"],
                0,
            );
        }
    }

    // Where each state is, and what it is: what the audit must say.
    let mut expected: BTreeMap<String, &str> = BTreeMap::new();
    for (kind, key, _, _) in &dirs {
        for ws in WORKSPACES {
            let object = match ws {
                "default" => key.clone(),
                _ => format!("env:/{ws}/{key}"),
            };
            let class = match *kind {
                "plain" => "plaintext",
                "pass" => "fallback",
                _ => "primary",
            };
            expected.insert(object, class);
        }
    }
    assert_eq!(expected.len(), 24, "24 applies, 24 states");
    let ctl = tempfile::tempdir().unwrap();
    std::fs::write(
        ctl.path().join("backend.tf"),
        peers.backend_block_for_key(
            &bucket,
            "control/terraform.tfstate",
            &format!("dynamodb_table = \"{table}\""),
        ),
    )
    .unwrap();
    std::fs::write(ctl.path().join("new.hcl"), &new_body).unwrap();
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = format!("s3://{bucket}");
    let audit = |scope: &str| -> BTreeMap<String, String> {
        let r = stateseal_ok(
            ctl.path(),
            &env_ref,
            &["--config", "new.hcl", "audit", scope, "--json"],
        );
        let report = json(&r.stdout);
        report["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["key"].as_str().unwrap().to_string(),
                    s["encryption"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let seen = audit(&url);
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, c)| (k.clone(), c.to_string()))
        .collect();
    assert_eq!(seen, want, "audit before the rekey");

    // Rekey the pbkdf2 states to aws_kms.
    let rekey = json(
        &stateseal_ok(
            ctl.path(),
            &env_ref,
            &[
                "--config",
                "new.hcl",
                "rekey",
                &format!("{url}/pass/"),
                "--apply",
                "--json",
            ],
        )
        .stdout,
    );
    assert_eq!(rekey["summary"]["rekeyed"], 8, "{rekey}");
    assert_eq!(rekey["summary"]["failed"], 0, "{rekey}");
    let seen = audit(&url);
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, c)| {
            (
                k.clone(),
                if *c == "fallback" { "primary" } else { c }.to_string(),
            )
        })
        .collect();
    assert_eq!(seen, want, "audit after the rekey");
    for (key, class) in &expected {
        if *class == "fallback" {
            let bytes = peers.get_object(&bucket, key).await.unwrap();
            let meta = json(&bytes)["meta"].clone();
            let names: Vec<&String> = meta.as_object().unwrap().keys().collect();
            assert_eq!(names, ["key_provider.aws_kms.main"], "{key}");
        }
    }

    // With the new configuration alone (the passphrase only as fallback), every rekeyed state
    // plans without changes.
    for (kind, _, d, tofu) in &dirs {
        if *kind != "pass" {
            continue;
        }
        std::fs::write(d.path().join("enc.tf"), encryption_tf(&new_body)).unwrap();
        for ws in WORKSPACES {
            tofu_expect(tofu, d.path(), &env, &["workspace", "select", ws], 0);
            // No lock (a plan writes nothing): fewer DynamoDB calls that a loaded moto can
            // make tofu retry (see above).
            let plan = ["plan", "-no-color", "-detailed-exitcode", "-lock=false"];
            tofu_expect(tofu, d.path(), &env, &plan, 0);
        }
    }

    // A running tofu apply's lock is listed (the newest release, with both lock records).
    let tofu = &tofus[0];
    let locks = if tofu.is_at_least("1.10") {
        format!("dynamodb_table = \"{table}\"\n    use_lockfile = true")
    } else {
        format!("dynamodb_table = \"{table}\"")
    };
    let slow = tempfile::tempdir().unwrap();
    std::fs::write(slow.path().join("main.tf"), SLOW_APPLY_TF).unwrap();
    std::fs::write(
        slow.path().join("backend.tf"),
        peers.backend_block_for_key(&bucket, "slow/terraform.tfstate", &locks),
    )
    .unwrap();
    tofu_expect(tofu, slow.path(), &env, &["init", "-no-color"], 0);
    let hold = slow.path().join("release-apply");
    let hold_var = format!("hold_until={}", hold.display());
    let busy = tofu.spawn(
        slow.path(),
        &["apply", "-auto-approve", "-no-color", "-var", &hold_var],
    );
    let slow_scope = format!("{url}/slow/");
    let locks_list = || {
        let args = [
            "--config",
            "new.hcl",
            "locks",
            "list",
            &slow_scope,
            "--json",
        ];
        stateseal(ctl.path(), &env_ref, &args)
    };
    let want_sources = if tofu.is_at_least("1.10") { 2 } else { 1 };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let listed = loop {
        let r = locks_list();
        assert_eq!(r.code, 0, "{}", r.stderr);
        let listed: Vec<Value> = json(&r.stdout).as_array().unwrap().clone();
        if listed.len() == want_sources {
            break listed;
        }
        assert!(
            std::time::Instant::now() < end,
            "no lock listed: {listed:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let info = peers
        .item_attr(&table, &format!("{bucket}/slow/terraform.tfstate"), "Info")
        .await
        .expect("tofu's DynamoDB lock item");
    let info = json(info.as_bytes());
    for l in &listed {
        assert_eq!(l["id"], info["ID"], "{l}");
        assert_eq!(l["who"], info["Who"], "{l}");
        assert_eq!(l["state"], "slow/terraform.tfstate");
        assert_eq!(l["operation"], "OperationTypeApply");
    }
    release(&hold);
    let done = busy.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let after = locks_list();
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert_eq!(json(&after.stdout), Value::Array(vec![]), "released");
}
