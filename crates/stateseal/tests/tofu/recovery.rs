//! Recovery keys (issue 21) against real `tofu` and moto: states written through `stateseal
//! keyprovider` (KMS key K plus an age recipient R) by `tofu apply` and by `stateseal state
//! push`; then K is disabled and KMS cut off (moto keeps using a disabled key, so the outage is
//! modelled as a KMS endpoint that does not answer, as in a region outage). `tofu plan` and a
//! normal `stateseal state pull` fail; `stateseal dr
//! drill --identity` recovers every state and every version without KMS (its KMS endpoint is a
//! closed port); a state written by the built-in `aws_kms` provider is reported as having no
//! recovery recipient (exit 8); `rekey --apply`, reading through the identity and writing with a
//! new key K2 plus R, restores normal operation: `tofu plan` on K2 shows no changes.

use stateseal_testkit::{unique, Peers, Tofu};

use super::fleet::{aws_env, tofu_expect, workdir};
use super::{json, stateseal, stateseal_ok};

const MAIN_TF: &str = r#"
variable "v" {
  type    = string
  default = "one"
}
resource "terraform_data" "app" {
  input = var.v
}
"#;

/// The keyprovider's `external` block named `name` with a method of the same name.
fn keyprovider(name: &str, kms: &str, recipient: &str) -> String {
    let bin = assert_cmd::cargo::cargo_bin("stateseal");
    format!(
        r#"
  key_provider "external" "{name}" {{
    command = ["{}", "keyprovider", "--kms", "{kms}", "--recipient", "{recipient}"]
  }}
  method "aes_gcm" "{name}" {{
    keys = key_provider.external.{name}
  }}
"#,
        bin.display()
    )
}

fn encryption(body: &str, primary: &str, fallback: Option<&str>) -> String {
    let fallback = fallback
        .map(|f| format!("    fallback {{\n      method = method.aes_gcm.{f}\n    }}\n"))
        .unwrap_or_default();
    format!(
        "terraform {{\n  encryption {{\n{body}  state {{\n    method = method.aes_gcm.{primary}\n{fallback}  }}\n  }}\n}}\n"
    )
}

fn plain_state(serial: u64, lineage: &str) -> String {
    format!("{{\"version\":4,\"terraform_version\":\"1.12.6\",\"serial\":{serial},\"lineage\":\"{lineage}\",\"outputs\":{{}},\"resources\":[],\"check_results\":null}}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_keys_survive_a_disabled_kms_key() {
    let test = "recovery_keys_survive_a_disabled_kms_key";
    let Some(peers) = Peers::aws(test) else {
        return;
    };
    let Some(tofu) = Tofu::at_least(test, "1.10").into_iter().next() else {
        return;
    };
    let bucket = unique("recovery");
    peers.mkbucket(&bucket, true).await;
    let table = unique("recovery-locks");
    peers.mktable(&table).await;
    let k = peers.mkkey(&unique("recovery-k"));
    let k2 = peers.mkkey(&unique("recovery-k2"));
    let env = aws_env(peers.endpoint());
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(a, b)| (*a, b.as_str())).collect();

    // The recovery identity, kept "offline" in its own directory.
    let vault = tempfile::tempdir().unwrap();
    let id_file = vault.path().join("recovery.txt");
    let id_arg = id_file.to_str().unwrap();
    let r = stateseal_ok(vault.path(), &[], &["dr", "keygen", "--output", id_arg]);
    let recipient = r.text().trim().to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let secret = std::fs::read_to_string(&id_file).unwrap();
    let secret_line = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string();
    assert!(!r.stderr.contains(&secret_line) && !r.text().contains(&secret_line));

    let on_k = encryption(&keyprovider("rk", &k, &recipient), "rk", None);

    // Written by tofu apply (two versions)...
    let app = workdir(
        &peers,
        &bucket,
        &table,
        "app/terraform.tfstate",
        &[("main.tf", MAIN_TF), ("enc.tf", &on_k)],
    );
    tofu_expect(&tofu, app.path(), &env, &["init", "-no-color"], 0);
    for v in ["one", "two"] {
        let var = format!("v={v}");
        let args = ["apply", "-auto-approve", "-no-color", "-var", &var];
        tofu_expect(&tofu, app.path(), &env, &args, 0);
    }
    // ...by stateseal state push...
    let pushed = workdir(
        &peers,
        &bucket,
        &table,
        "pushed/terraform.tfstate",
        &[("enc.tf", &on_k)],
    );
    std::fs::write(
        pushed.path().join("state.json"),
        plain_state(3, "pushed-lineage"),
    )
    .unwrap();
    stateseal_ok(pushed.path(), &env_ref, &["state", "push", "state.json"]);
    // ...and one by the built-in aws_kms provider, which has no recovery recipient.
    let builtin = workdir(
        &peers,
        &bucket,
        &table,
        "builtin/terraform.tfstate",
        &[(
            "enc.tf",
            &format!(
                "terraform {{\n  encryption {{\n    key_provider \"aws_kms\" \"main\" {{\n      kms_key_id = \"{k2}\"\n      key_spec = \"AES_256\"\n      region = \"us-east-1\"\n    }}\n    method \"aes_gcm\" \"main\" {{\n      keys = key_provider.aws_kms.main\n    }}\n    state {{\n      method = method.aes_gcm.main\n    }}\n  }}\n}}\n"
            ),
        )],
    );
    std::fs::write(
        builtin.path().join("state.json"),
        plain_state(1, "builtin-lineage"),
    )
    .unwrap();
    stateseal_ok(builtin.path(), &env_ref, &["state", "push", "state.json"]);

    // The envelope stays a plain OpenTofu v0 envelope with the wraps in external_data.
    let stored = peers
        .get_object(&bucket, "app/terraform.tfstate")
        .await
        .unwrap();
    let envelope = stateseal_encryption::envelope::Envelope::parse(&stored).unwrap();
    assert_eq!(envelope.version, "v0");
    let meta: serde_json::Value =
        serde_json::from_slice(&envelope.meta["key_provider.external.rk"]).unwrap();
    let wraps = meta["external_data"]["wraps"].as_array().unwrap();
    let kinds: Vec<&str> = wraps.iter().map(|w| w["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["aws_kms", "age"], "{meta}");

    // The outage: K is disabled, and KMS does not answer (a closed port).
    peers.disable_key(&k);
    let mut no_kms = env_ref.clone();
    no_kms.retain(|(k, _)| *k != "AWS_ENDPOINT_URL_KMS");
    no_kms.push(("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:1"));
    let outage: Vec<(&str, String)> = no_kms.iter().map(|(a, b)| (*a, b.to_string())).collect();
    let plan = ["plan", "-no-color", "-lock=false"];
    tofu_expect(&tofu, app.path(), &outage, &plan, 1);
    let pull = stateseal(app.path(), &no_kms, &["state", "pull"]);
    assert_ne!(pull.code, 0, "{}", pull.text());
    assert!(pull.stderr.contains("unreachable"), "{}", pull.stderr);
    std::fs::write(app.path().join("stored.tfstate"), &stored).unwrap();
    let decrypt = stateseal(app.path(), &no_kms, &["decrypt", "stored.tfstate"]);
    assert_ne!(decrypt.code, 0, "{}", decrypt.text());
    assert!(
        decrypt.stdout.is_empty() && decrypt.stderr.contains(k.as_str()),
        "{}",
        decrypt.stderr
    );

    // The drill recovers every state and every version with the identity alone: KMS is a
    // closed port for it.
    let ctl = workdir(&peers, &bucket, &table, "control/terraform.tfstate", &[]);
    let url = format!("s3://{bucket}");
    let drill = |scope: &str, extra: &[&str]| {
        let mut args = vec!["dr", "drill", scope, "--identity", id_arg, "--json"];
        args.extend_from_slice(extra);
        stateseal(ctl.path(), &no_kms, &args)
    };
    let ours = drill(&format!("{url}/app/"), &["--versions"]);
    assert_eq!(ours.code, 0, "{}{}", ours.text(), ours.stderr);
    let report = json(&ours);
    assert_eq!(
        report["summary"]["recovered"], 2,
        "two versions: {report:#}"
    );
    let pushed_drill = drill(&format!("{url}/pushed/"), &[]);
    assert_eq!(pushed_drill.code, 0, "{}", pushed_drill.stderr);
    assert_eq!(json(&pushed_drill)["states"][0]["serial"], 3);
    // Every state of the bucket: the built-in aws_kms one is not recoverable (exit 8).
    let all = drill(&url, &[]);
    assert_eq!(all.code, 8, "{}{}", all.text(), all.stderr);
    let report = json(&all);
    assert_eq!(report["summary"]["recovered"], 2, "{report:#}");
    assert_eq!(report["summary"]["no_recovery_recipient"], 1, "{report:#}");
    assert!(
        all.stderr
            .contains("builtin/terraform.tfstate: no-recovery-recipient"),
        "{}",
        all.stderr
    );
    for out in [&ours, &pushed_drill, &all] {
        assert!(!out.text().contains(&secret_line) && !out.stderr.contains(&secret_line));
    }

    // A wrong identity and a damaged external_data fail, each with its own message.
    let wrong = vault.path().join("wrong.txt");
    stateseal_ok(
        vault.path(),
        &[],
        &["dr", "keygen", "--output", wrong.to_str().unwrap()],
    );
    let r = stateseal(
        ctl.path(),
        &no_kms,
        &[
            "dr",
            "drill",
            &format!("{url}/pushed/"),
            "--identity",
            wrong.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(
        r.stderr.contains("matches none of the state's recipients"),
        "{}",
        r.stderr
    );
    let damaged_dir = tempfile::tempdir().unwrap();
    let mut damaged: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    let bad_meta = serde_json::json!({"external_data": {"stateseal_recovery": 1, "wraps": [{"type": "age", "recipient": recipient, "ciphertext": "AAAA"}]}});
    damaged["meta"]["key_provider.external.rk"] = base64_of(&bad_meta.to_string()).into();
    let damaged_file = damaged_dir.path().join("damaged.tfstate");
    std::fs::write(&damaged_file, damaged.to_string()).unwrap();
    let r = stateseal(
        ctl.path(),
        &no_kms,
        &[
            "dr",
            "drill",
            damaged_file.to_str().unwrap(),
            "--identity",
            id_arg,
        ],
    );
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(r.stderr.contains("failed"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_dir(damaged_dir.path()).unwrap().count(),
        1,
        "the drill writes nothing"
    );

    // Back to normal: rekey through the identity onto K2 + R (KMS answers again, for K2; the
    // identity is tried first, so K is not used to read).
    let on_k2 = keyprovider("rk2", &k2, &recipient);
    let both = encryption(
        &format!("{on_k2}{}", keyprovider("rk", &k, &recipient)),
        "rk2",
        Some("rk"),
    );
    std::fs::write(ctl.path().join("enc.tf"), &both).unwrap();
    let mut recovery_env = env_ref.clone();
    recovery_env.push(("STATESEAL_RECOVERY_IDENTITY", id_arg));
    for scope in ["app/", "pushed/"] {
        let r = stateseal_ok(
            ctl.path(),
            &recovery_env,
            &["rekey", &format!("{url}/{scope}"), "--apply", "--json"],
        );
        assert_eq!(
            json(&r)["summary"]["rekeyed"],
            1,
            "{}{}",
            r.text(),
            r.stderr
        );
    }
    for key in ["app/terraform.tfstate", "pushed/terraform.tfstate"] {
        let bytes = peers.get_object(&bucket, key).await.unwrap();
        let e = stateseal_encryption::envelope::Envelope::parse(&bytes).unwrap();
        let meta: serde_json::Value =
            serde_json::from_slice(&e.meta["key_provider.external.rk2"]).unwrap();
        let targets: Vec<&str> = meta["external_data"]["wraps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                w.get("key_id")
                    .or(w.get("recipient"))
                    .unwrap()
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(targets, [k2.as_str(), recipient.as_str()], "{key}: {meta}");
    }
    std::fs::write(app.path().join("enc.tf"), encryption(&on_k2, "rk2", None)).unwrap();
    let plan = [
        "plan",
        "-no-color",
        "-lock=false",
        "-detailed-exitcode",
        "-var",
        "v=two",
    ];
    tofu_expect(&tofu, app.path(), &env, &plan, 0);
    let drilled = drill(&format!("{url}/app/"), &[]);
    assert_eq!(drilled.code, 0, "{}", drilled.stderr);
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
