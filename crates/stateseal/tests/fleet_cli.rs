//! The fleet commands end to end against moto and real Terraform: `audit` (JSON shape,
//! `--require primary` exiting 8 with the offenders), `locks list` while Terraform holds a lock
//! (DynamoDB item and lock file), and `rekey s3://… --apply` skipping the state Terraform holds,
//! killed with SIGKILL halfway and re-run until the job is done with nothing lost.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use stateseal_encryption::load::{self, Options};
use stateseal_encryption::{Registry, Status};
use stateseal_testkit::{json_snapshot, release, Peers};

use crate::backend::{json, main_tf, ok, Mode, Setup};

const OLD: &str = "key_provider \"pbkdf2\" \"old\" { passphrase = \"the old fleet passphrase\" }\nmethod \"aes_gcm\" \"old\" { keys = key_provider.pbkdf2.old }\n";
const NEW: &str = "key_provider \"pbkdf2\" \"new\" { passphrase = \"the new fleet passphrase\" }\nmethod \"aes_gcm\" \"new\" { keys = key_provider.pbkdf2.new }\nmethod \"unencrypted\" \"migrate\" {}\nstate {\n  method = method.aes_gcm.new\n  fallback {\n    method = method.aes_gcm.old\n    fallback { method = method.unencrypted.migrate }\n  }\n}\n";

fn plain_state(i: usize) -> Vec<u8> {
    format!("{{\"version\":4,\"terraform_version\":\"1.9.0\",\"serial\":{i},\"lineage\":\"fleet-{i}\",\"outputs\":{{}},\"resources\":[]}}\n").into_bytes()
}

fn encryption(body: &str) -> std::sync::Arc<stateseal_encryption::Encryption> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("enc.hcl"), body).unwrap();
    let opts = Options {
        dir: dir.path().to_path_buf(),
        config_file: Some(dir.path().join("enc.hcl")),
        workspace: "default".into(),
        ..Options::default()
    };
    load::load(&opts, Registry::default(), &|_| None)
        .unwrap()
        .encryption
}

/// `svc<i>` states, half in workspace `blue`: even plaintext, odd on the old passphrase.
fn seeded(i: usize) -> String {
    if i % 2 == 0 {
        format!("svc{i}/terraform.tfstate")
    } else {
        format!("env:/blue/svc{i}/terraform.tfstate")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_audit_locks_and_rekey_with_terraform_and_sigkill() {
    let Some(peers) = Peers::terraform("fleet_audit_locks_and_rekey_with_terraform_and_sigkill")
    else {
        return;
    };
    let s = Setup::new(peers, Mode::Both, "").await;
    std::fs::write(s.path().join("main.tf"), main_tf()).unwrap();
    std::fs::write(s.path().join("enc.hcl"), format!("{OLD}{NEW}")).unwrap();
    ok(
        s.tf(&["init", "-input=false", "-no-color"]),
        "terraform init",
    );
    ok(
        s.tf(&["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"]),
        "terraform apply",
    );
    let old = encryption(&format!("{OLD}state {{ method = method.aes_gcm.old }}\n"));
    const N: usize = 40;
    for i in 0..N {
        let bytes = match i % 2 {
            0 => plain_state(i),
            _ => old.state().encrypt_state(&plain_state(i)).unwrap(),
        };
        s.peers.put_object(&s.bucket, &seeded(i), &bytes).await;
    }
    let url = format!("s3://{}", s.bucket);
    let ss = |args: &[&str]| {
        let mut all = vec!["--config", "enc.hcl"];
        all.extend_from_slice(args);
        s.ss(&all)
    };

    // Audit: JSON shape and --require primary.
    let audit = ss(&["audit", &url, "--json", "--require", "primary"]);
    assert_eq!(audit.code, 8, "{}", audit.stderr);
    json_snapshot!("audit_require_primary", &audit.text(), s.bucket => "BUCKET");
    let report = json(&audit.stdout);
    let dry = ok(ss(&["rekey", &url, "--json"]), "rekey dry run");
    json_snapshot!("rekey_dry_run", &dry.text(), s.bucket => "BUCKET");
    assert_eq!(report["summary"]["states"], N + 1);
    assert_eq!(report["summary"]["plaintext"], N / 2 + 1);
    assert_eq!(report["summary"]["fallback"], N / 2);
    let offenders = audit
        .stderr
        .lines()
        .filter(|l| l.starts_with("offender: "))
        .count();
    assert_eq!(offenders, N + 1, "{}", audit.stderr);
    assert!(audit.stderr.contains(&format!(
        "offender: {url}/env:/blue/svc1/terraform.tfstate: is fallback"
    )));

    // Terraform holds the lock of its state: `locks list` shows both records.
    let (child, hold, holder) = s.terraform_holding_the_lock().await;
    let before = s.peers.get_object(&s.bucket, "app/terraform.tfstate").await;
    let listed = ok(ss(&["locks", "list", &url, "--json"]), "locks list");
    json_snapshot!("locks_list", &listed.text(), s.bucket => "BUCKET", holder.who => "USER@HOST");
    let listed = json(&listed.stdout);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    for l in listed {
        assert_eq!(l["id"], holder.id.as_str());
        assert_eq!(l["state"], "app/terraform.tfstate");
        assert_eq!(l["operation"], "OperationTypeApply");
    }
    let sources: Vec<&str> = listed
        .iter()
        .map(|l| l["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["lockfile", "dynamodb"]);

    // A rekey killed with SIGKILL after 10 states.
    let mut run = Command::new(assert_cmd::cargo::cargo_bin("stateseal"))
        .current_dir(s.path())
        .args([
            "--config",
            "enc.hcl",
            "rekey",
            &url,
            "--apply",
            "--concurrency",
            "1",
        ])
        .env_remove("TF_ENCRYPTION")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(run.stderr.take().unwrap()).lines();
    let mut rekeyed = 0;
    while rekeyed < 10 {
        let line = lines.next().expect("rekey ended early").unwrap();
        rekeyed += usize::from(line.ends_with(": rekeyed"));
    }
    run.kill().unwrap();
    run.wait().unwrap();

    // The re-run skips Terraform's state (reported, unchanged) and finishes the rest.
    let rerun = json(&ok(ss(&["rekey", &url, "--apply", "--json"]), "rekey re-run").stdout);
    let tf_state = rerun["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "app/terraform.tfstate")
        .unwrap();
    assert_eq!(tf_state["result"], "skipped-locked");
    json_snapshot!("rekey_skipped_locked_entry", &serde_json::to_string(tf_state).unwrap(), s.bucket => "BUCKET", holder.who => "USER@HOST");
    assert!(tf_state["detail"].as_str().unwrap().contains(&holder.id));
    assert_eq!(
        s.peers.get_object(&s.bucket, "app/terraform.tfstate").await,
        before
    );
    assert_eq!(rerun["summary"]["failed"], 0);
    // The state being rekeyed when the process died may keep its lock (as a killed Terraform's
    // does): it is reported as locked by stateseal-rekey, never broken by the re-run.
    let killed_locks = rerun["summary"]["skipped_locked"].as_u64().unwrap() - 1;
    assert!(killed_locks <= 1, "{rerun}");
    release(&hold);
    let tf = child.wait_with_output().unwrap();
    assert!(
        tf.status.success(),
        "terraform apply failed:\n{}\n{}",
        String::from_utf8_lossy(&tf.stdout),
        String::from_utf8_lossy(&tf.stderr)
    );

    // Break the killed run's stale lock (only what is listed), then finish the job.
    ok(
        ss(&["locks", "break", &url, "--older-than", "0s", "--apply"]),
        "locks break",
    );
    let last = json(&ok(ss(&["rekey", &url, "--apply", "--json"]), "final rekey").stdout);
    assert_eq!(last["summary"]["failed"], 0);
    assert_eq!(last["summary"]["skipped_locked"], 0);
    ok(
        ss(&["audit", &url, "--require", "primary"]),
        "audit --require primary",
    );
    let again = ok(ss(&["rekey", &url, "--apply", "--json"]), "no-op rekey");
    json_snapshot!("rekey_noop_apply", &again.text(), s.bucket => "BUCKET");
    let again = json(&again.stdout);
    assert_eq!(again["summary"]["rekeyed"], 0);
    assert_eq!(again["summary"]["already_primary"], N + 1);

    // Nothing lost or torn: every state decrypts with the primary to exactly what was stored.
    let new = encryption(&format!("{OLD}{NEW}"));
    for i in 0..N {
        let bytes = s.peers.get_object(&s.bucket, &seeded(i)).await.unwrap();
        let (plain, status) = new.state().decrypt_state(&bytes).unwrap();
        assert_eq!(status, Status::Satisfied, "{}", seeded(i));
        assert_eq!(plain, plain_state(i), "{}", seeded(i));
    }
    let tf = s
        .peers
        .get_object(&s.bucket, "app/terraform.tfstate")
        .await
        .unwrap();
    assert_eq!(new.state().decrypt_state(&tf).unwrap().1, Status::Satisfied);
}

/// `rekey FILE` keeps its behaviour: the s3-only flags are refused with files, and files and a
/// URL are not mixed.
#[test]
fn rekey_of_files_refuses_the_fleet_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.tfstate"), plain_state(1)).unwrap();
    let run = |args: &[&str]| {
        Command::new(assert_cmd::cargo::cargo_bin("stateseal"))
            .current_dir(dir.path())
            .args(args)
            .env_remove("TF_ENCRYPTION")
            .output()
            .unwrap()
    };
    for args in [
        &["rekey", "a.tfstate", "--apply"][..],
        &["rekey", "a.tfstate", "s3://bucket/x"][..],
        &["audit", "s3:///x"][..],
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("a.tfstate")).unwrap(),
        plain_state(1)
    );
}
