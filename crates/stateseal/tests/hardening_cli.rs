//! The hardened-backend commands end to end: `bootstrap s3 --apply` twice (the second changes
//! nothing), real Terraform initialising and applying with the printed backend block, the SSE
//! rollback and migration of Terraform's state with `rekey --sse-only` (Terraform still plans a
//! no-op), a client-side `rekey --sse-kms` (SSE-KMS and the key provider verified), and `verify`
//! on an IAM-enforcing moto: each violation listed with exit 8, the gate holding for a denied
//! principal and failing for one that can read.
//!
//! moto does not check `kms:Decrypt` when it serves an SSE-KMS object: the denied principal is
//! denied by its IAM identity policy, and a principal denied only `kms:Decrypt` can read there.
//! Only real AWS checks the key.

use std::process::Command;

use stateseal_testkit::moto::{self, Moto, AUTH_ENDPOINT_ENV};
use stateseal_testkit::{json_snapshot, unique, Peers};

use crate::backend::{json, ok, out, stateseal, Out};

const DEPLOY: &str = "arn:aws:iam::123456789012:role/deploy";

fn state_json(serial: u64) -> String {
    format!("{{\"version\":4,\"terraform_version\":\"1.9.0\",\"serial\":{serial},\"lineage\":\"hardening\",\"outputs\":{{}},\"resources\":[]}}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_then_terraform_then_sse_rollback_and_back() {
    let Some(peers) = Peers::terraform("bootstrap_then_terraform_then_sse_rollback_and_back")
    else {
        return;
    };
    let bucket = unique("boot-tf");
    let table = format!("{bucket}-locks");
    let url = format!("s3://{bucket}");
    let e = peers.endpoint().to_string();
    let endpoints = format!("endpoints={{s3=\"{e}\", dynamodb=\"{e}\", sts=\"{e}\", kms=\"{e}\"}}");
    let lock_table = format!("dynamodb_table={table}");
    let connection = [
        endpoints.as_str(),
        "use_path_style=true",
        "access_key=testing",
        "secret_key=testing",
        "region=us-east-1",
        lock_table.as_str(),
        "use_lockfile=true",
    ];
    let work = tempfile::tempdir().unwrap();
    let ss = |args: &[&str]| -> Out {
        let mut all = Vec::new();
        for c in connection {
            all.extend(["--backend-config", c]);
        }
        all.extend_from_slice(args);
        stateseal(work.path(), &all)
    };
    let bootstrap = |extra: &[&str]| {
        let mut args = vec![
            "bootstrap",
            "s3",
            "--bucket",
            &bucket,
            "--lock",
            "both",
            "--principal",
            DEPLOY,
            "--key",
            "app/terraform.tfstate",
        ];
        args.extend_from_slice(extra);
        ok(ss(&args), "bootstrap")
    };

    let plan = bootstrap(&[]).text();
    assert!(plan.contains("Dry run: 10 change(s) to make"), "{plan}");
    let s3 = peers.s3().await;
    assert!(
        s3.head_bucket().bucket(&bucket).send().await.is_err(),
        "the dry run made the bucket"
    );
    let first = bootstrap(&["--apply", "--json"]);
    json_snapshot!("bootstrap_apply", &first.text(), bucket => "BUCKET", e => "ENDPOINT");
    let first = json(&first.stdout);
    assert_eq!(
        first["summary"]["create"].as_u64().unwrap() + first["summary"]["change"].as_u64().unwrap(),
        10,
        "{first:#}"
    );
    let arn = first["kms_key_arn"].as_str().unwrap().to_string();
    let again = bootstrap(&["--apply"]).text();
    assert!(
        again.contains("No changes: everything is as it should be."),
        "{again}"
    );
    assert!(!again.contains("DRIFT"), "{again}");

    // OpenTofu's encryption block, as printed, is a valid configuration.
    let enc = tempfile::tempdir().unwrap();
    std::fs::write(
        enc.path().join("encryption.tf"),
        first["encryption_block"].as_str().unwrap(),
    )
    .unwrap();
    let valid = ok(
        stateseal(enc.path(), &["validate"]),
        "validate the encryption block",
    )
    .text();
    assert!(valid.contains("key_provider.aws_kms.main"), "{valid}");

    // Real Terraform with the printed backend block (plus what points it at moto). moto serves
    // plain HTTP and enforces the TLS-only bucket policy, so the test removes it first.
    peers.delete_bucket_policy(&bucket).await;
    let block = first["backend_block"].as_str().unwrap();
    assert!(
        block.contains(&format!("kms_key_id     = \"{arn}\"")),
        "{block}"
    );
    let tf = tempfile::tempdir().unwrap();
    std::fs::write(
        tf.path().join("backend.tf"),
        block.replace(
            "  backend \"s3\" {\n",
            &format!("  backend \"s3\" {{\n{}", peers.moto_backend_settings()),
        ),
    )
    .unwrap();
    std::fs::write(
        tf.path().join("main.tf"),
        "resource \"terraform_data\" \"x\" {\n  input = \"hello\"\n}\noutput \"greeting\" {\n  value = terraform_data.x.output\n}\n",
    )
    .unwrap();
    peers.tf_ok(tf.path(), &["init", "-input=false", "-no-color"]);
    peers.tf_ok(
        tf.path(),
        &["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
    );
    // The state's SSE and KMS key, as boto3 reads them (HeadObject).
    let sse = |peers: &Peers| -> (Option<String>, Option<String>) {
        let h: serde_json::Value = serde_json::from_str(&peers.python_out(&[
            "scripts/peers/aws.py",
            "--endpoint",
            &e,
            "head",
            &bucket,
            "app/terraform.tfstate",
        ]))
        .unwrap();
        let text = |k: &str| h[k].as_str().map(String::from);
        (text("ServerSideEncryption"), text("SSEKMSKeyId"))
    };
    let on_the_key = (Some("aws:kms".to_string()), Some(arn.clone()));
    assert_eq!(sse(&peers), on_the_key);
    assert!(peers
        .item_attr(
            &table,
            &format!("{bucket}/app/terraform.tfstate-md5"),
            "Digest"
        )
        .await
        .is_some());
    let verified = ok(ss(&["verify", &url, "--json"]), "verify");
    json_snapshot!("verify_passing", &verified.text(), bucket => "BUCKET");
    let verified = json(&verified.stdout);
    assert_eq!(verified["expected_kms_key"], arn.as_str());
    assert_eq!(verified["summary"]["passing"], 1);

    // The rollback to SSE-S3: a dry run first, then the copy; verify now fails.
    let dry = ok(
        ss(&["rekey", &url, "--sse-only", "--sse-s3"]),
        "rekey dry run",
    )
    .text();
    assert!(
        dry.contains("dry run: 1 of 1 states would be copied to AES256"),
        "{dry}"
    );
    assert_eq!(sse(&peers), on_the_key);
    let back = ok(
        ss(&["rekey", &url, "--sse-only", "--sse-s3", "--apply", "--json"]),
        "rollback",
    );
    json_snapshot!("rekey_sse_only_apply", &back.text(), bucket => "BUCKET");
    let back = json(&back.stdout);
    assert_eq!(back["summary"]["copied"], 1, "{back:#}");
    assert_eq!(back["locked"], true);
    assert_eq!(sse(&peers), (Some("AES256".to_string()), None));
    let failed = ss(&["verify", &url]);
    assert_eq!(failed.code, 8, "{}{}", failed.text(), failed.stderr);
    assert!(
        failed.stderr.contains(&format!(
            "violation: {url}/app/terraform.tfstate: server-side encryption is AES256, not aws:kms"
        )),
        "{}",
        failed.stderr
    );

    // And back to SSE-KMS: verify passes, and Terraform sees no change.
    let migrated = json(
        &ok(
            ss(&[
                "rekey",
                &url,
                "--sse-only",
                "--sse-kms",
                &arn,
                "--apply",
                "--json",
            ]),
            "migration",
        )
        .stdout,
    );
    assert_eq!(migrated["summary"]["copied"], 1, "{migrated:#}");
    assert_eq!(sse(&peers), on_the_key);
    ok(
        ss(&["verify", &url, "--kms-key", &arn]),
        "verify after the migration",
    );
    let plan = peers.tf(
        tf.path(),
        &[
            "plan",
            "-detailed-exitcode",
            "-no-color",
            "-lock-timeout=0s",
        ],
    );
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );

    // A client-side rekey writes with the SSE asked for: back to SSE-S3 first, then a rekey
    // onto a pbkdf2 primary with --sse-kms; verify then checks the key provider too.
    ok(
        ss(&["rekey", &url, "--sse-only", "--sse-s3", "--apply"]),
        "rollback again",
    );
    std::fs::write(
        work.path().join("enc.hcl"),
        "key_provider \"pbkdf2\" \"main\" { passphrase = \"a hardened backend passphrase\" }\nmethod \"aes_gcm\" \"main\" { keys = key_provider.pbkdf2.main }\nmethod \"unencrypted\" \"migrate\" {}\nstate {\n  method = method.aes_gcm.main\n  fallback { method = method.unencrypted.migrate }\n}\n",
    )
    .unwrap();
    let rekeyed = ok(
        ss(&[
            "--config",
            "enc.hcl",
            "rekey",
            &url,
            "--sse-kms",
            &arn,
            "--apply",
            "--json",
        ]),
        "rekey --sse-kms",
    );
    json_snapshot!("rekey_sse_kms_apply", &rekeyed.text(), bucket => "BUCKET");
    let rekeyed = json(&rekeyed.stdout);
    assert_eq!(rekeyed["summary"]["rekeyed"], 1, "{rekeyed:#}");
    assert_eq!(sse(&peers), on_the_key);
    ok(
        ss(&[
            "verify",
            &url,
            "--kms-key",
            &arn,
            "--key-provider",
            "key_provider.pbkdf2.main",
        ]),
        "verify with the key provider",
    );
    let wrong = ss(&[
        "verify",
        &url,
        "--key-provider",
        "key_provider.aws_kms.main",
    ]);
    assert_eq!(wrong.code, 8, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains(
            "client-side encrypted with key_provider.pbkdf2.main, not key_provider.aws_kms.main"
        ),
        "{}",
        wrong.stderr
    );
}

/// `rekey --sse-only` needs a target; the two targets exclude each other; files take none;
/// `verify --help` names moto's limit.
#[test]
fn the_sse_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.tfstate"), state_json(1)).unwrap();
    for args in [
        &["rekey", "s3://b", "--sse-only"][..],
        &[
            "rekey",
            "s3://b",
            "--sse-s3",
            "--sse-kms",
            "arn:aws:kms:us-east-1:1:key/k",
        ][..],
        &["rekey", "a.tfstate", "--sse-s3"][..],
        &["bootstrap", "s3", "--bucket", "b", "--lock", "redis"][..],
    ] {
        let o = stateseal(dir.path(), args);
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
    }
    // The help says what moto cannot show.
    let help = ok(
        stateseal(dir.path(), &["verify", "--help"]),
        "verify --help",
    )
    .text();
    assert!(help.contains("moto does not check kms:Decrypt"), "{help}");
}

#[test]
fn verify_lists_each_violation_and_proves_the_gate() {
    let Some(moto) = Moto::from_env(
        AUTH_ENDPOINT_ENV,
        "verify_lists_each_violation_and_proves_the_gate",
    ) else {
        return;
    };
    let _auth = moto::auth_lock();
    moto.reset_auth("inf");
    let bucket = moto::unique("verify");
    moto.aws_py(&["mkbucket", &bucket, "--versioning"]);
    let good = moto.mkkey(&moto::unique("verify-good"));
    let other = moto.mkkey(&moto::unique("verify-other"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    std::fs::write(&file, state_json(3)).unwrap();
    let file = file.to_str().unwrap();
    for (key, sse) in [
        (
            "good/a/terraform.tfstate",
            &["--kms-key", good.as_str()][..],
        ),
        (
            "good/b/terraform.tfstate",
            &["--kms-key", good.as_str()][..],
        ),
        ("bad/sse-s3/terraform.tfstate", &["--sse-s3"][..]),
        (
            "bad/wrong-key/terraform.tfstate",
            &["--kms-key", other.as_str()][..],
        ),
    ] {
        let mut args = vec!["put", &bucket, key, file];
        args.extend_from_slice(sse);
        moto.aws_py(&args);
    }
    let admin = moto.iam_user(&moto::unique("verify-admin"), &[]);
    let denied = moto.iam_user(
        &moto::unique("verify-denied"),
        &["s3:GetObject", "kms:Decrypt"],
    );
    let reader = moto.iam_user(&moto::unique("verify-reader"), &[]);
    let no_decrypt = moto.iam_user(&moto::unique("verify-nodecrypt"), &["kms:Decrypt"]);
    moto.reset_auth("0");

    // The principals, as profiles of a shared credentials file.
    let mut credentials = String::new();
    let mut config = String::new();
    for (name, (ak, sk)) in [
        ("denied", &denied),
        ("reader", &reader),
        ("nodecrypt", &no_decrypt),
    ] {
        credentials.push_str(&format!(
            "[{name}]\naws_access_key_id = {ak}\naws_secret_access_key = {sk}\n"
        ));
        config.push_str(&format!("[profile {name}]\nregion = us-east-1\n"));
    }
    std::fs::write(dir.path().join("credentials"), credentials).unwrap();
    std::fs::write(dir.path().join("config"), config).unwrap();
    let a = &moto.endpoint;
    let verify = |args: &[&str]| -> Out {
        let endpoints = format!("endpoints={{s3=\"{a}\", dynamodb=\"{a}\", sts=\"{a}\"}}");
        let access = format!("access_key={}", admin.0);
        let secret = format!("secret_key={}", admin.1);
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("stateseal"));
        c.current_dir(dir.path());
        for s in [
            endpoints.as_str(),
            "use_path_style=true",
            &access,
            &secret,
            "region=us-east-1",
        ] {
            c.args(["--backend-config", s]);
        }
        c.arg("verify")
            .args(args)
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.path().join("credentials"),
            )
            .env("AWS_CONFIG_FILE", dir.path().join("config"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            // The environment holds a principal that can read: a denied profile's own
            // credentials must still be the ones its reads are made with.
            .env("AWS_ACCESS_KEY_ID", &reader.0)
            .env("AWS_SECRET_ACCESS_KEY", &reader.1)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("TF_ENCRYPTION");
        out(c.output().unwrap())
    };
    let url = format!("s3://{bucket}");

    // Each violation is listed: the SSE-S3 state and the state on the other key.
    let all = verify(&[&url, "--kms-key", &good, "--json"]);
    assert_eq!(all.code, 8, "{}{}", all.text(), all.stderr);
    json_snapshot!("verify_violations", &all.text(), bucket => "BUCKET", good => "KEY_GOOD", other => "KEY_OTHER");
    let report = json(&all.stdout);
    assert_eq!(
        report["violations"],
        serde_json::json!([
            format!(
                "{url}/bad/sse-s3/terraform.tfstate: server-side encryption is AES256, not aws:kms"
            ),
            format!("{url}/bad/wrong-key/terraform.tfstate: SSE-KMS with key {other}, not {good}"),
        ])
    );
    assert_eq!(
        all.stderr
            .lines()
            .filter(|l| l.starts_with("violation: "))
            .count(),
        2,
        "{}",
        all.stderr
    );

    // The gate holds for the denied principal...
    let good_url = format!("{url}/good/");
    let holds = verify(&[&good_url, "--kms-key", &good, "--denied-profile", "denied"]);
    assert_eq!(holds.code, 0, "{}{}", holds.text(), holds.stderr);
    assert!(
        holds.text().contains("gate: 2 of 2 reads denied"),
        "{}",
        holds.text()
    );
    // ...and not for one that can read: a violation per state.
    let open = verify(&[&good_url, "--denied-profile", "reader", "--json"]);
    assert_eq!(open.code, 8, "{}{}", open.text(), open.stderr);
    json_snapshot!("verify_gate_open", &open.text(), bucket => "BUCKET", good => "KEY_GOOD");
    let r = json(&open.stdout);
    assert_eq!(r["summary"]["gate_denied"], 0);
    assert_eq!(r["violations"].as_array().unwrap().len(), 2);
    assert!(
        open.stderr
            .contains("profile reader read the state: the gate does not hold"),
        "{}",
        open.stderr
    );
    // moto serves an SSE-KMS object to a principal denied only kms:Decrypt (AWS would not):
    // on moto, only an identity policy on s3:GetObject makes the gate hold.
    let moto_gap = verify(&[&good_url, "--denied-profile", "nodecrypt"]);
    assert_eq!(moto_gap.code, 8, "{}{}", moto_gap.text(), moto_gap.stderr);
}

/// `bootstrap s3 --dr-region`: the key is made multi-Region and replicated into the DR region
/// with the same key policy and alias; the report prints an encryption block naming the replica
/// and its region; a second apply changes nothing. moto models the replica, its policy and its
/// alias, not a cross-Region decrypt (only real AWS proves that; `--help` says so).
#[test]
fn bootstrap_dr_region_replicates_the_key_with_its_policy() {
    let Some(peers) = Peers::aws("bootstrap_dr_region_replicates_the_key_with_its_policy") else {
        return;
    };
    let bucket = unique("boot-dr");
    let e = peers.endpoint().to_string();
    let endpoints = format!("endpoints={{s3=\"{e}\", dynamodb=\"{e}\", sts=\"{e}\", kms=\"{e}\"}}");
    let connection = [
        endpoints.as_str(),
        "use_path_style=true",
        "access_key=testing",
        "secret_key=testing",
        "region=us-east-1",
    ];
    let work = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| -> Out {
        let mut all = Vec::new();
        for c in connection {
            all.extend(["--backend-config", c]);
        }
        all.extend([
            "bootstrap",
            "s3",
            "--bucket",
            bucket.as_str(),
            "--lock",
            "lockfile",
        ]);
        all.extend(["--principal", DEPLOY, "--dr-region", "us-west-2"]);
        all.extend_from_slice(extra);
        stateseal(work.path(), &all)
    };

    // The dry run plans the replica and its alias, and its DR block names no key yet.
    let plan = ok(run(&[]), "dry run").text();
    assert!(plan.contains("kms replica"), "{plan}");
    assert!(
        plan.contains("replica of the new multi-Region key in us-west-2"),
        "{plan}"
    );
    assert!(plan.contains("symmetric multi-Region key"), "{plan}");
    assert!(plan.contains("(the replica key)"), "{plan}");

    let first = json(&ok(run(&["--apply", "--json"]), "apply").stdout);
    let primary = first["kms_key_arn"].as_str().unwrap().to_string();
    assert!(primary.contains(":key/mrk-"), "not multi-Region: {primary}");
    let replica = primary.replace(":us-east-1:", ":us-west-2:");
    assert_eq!(first["dr_region"], "us-west-2", "{first:#}");
    assert_eq!(
        first["dr_kms_key_arn"].as_str(),
        Some(replica.as_str()),
        "{first:#}"
    );
    let block = first["dr_encryption_block"].as_str().unwrap();
    assert!(
        block.contains(&format!("kms_key_id = \"{replica}\"")),
        "{block}"
    );
    assert!(block.contains("region     = \"us-west-2\""), "{block}");
    assert!(block.contains("only real AWS proves"), "{block}");

    // The replica as us-west-2 sees it: multi-Region, the runbook's policy, the same alias.
    let seen = peers.kms_describe(&replica, "us-west-2");
    assert_eq!(seen["arn"], replica.as_str(), "{seen:#}");
    assert_eq!(seen["multi_region"], true, "{seen:#}");
    let policy = seen["policy"].to_string();
    assert!(
        stateseal_fleet_policy_is_the_runbooks(&policy),
        "replica policy: {policy}"
    );
    let alias = format!("alias/tfstate-{bucket}");
    assert_eq!(seen["aliases"], serde_json::json!([alias]), "{seen:#}");

    // Idempotent: a second apply finds everything in place.
    let again = ok(run(&["--apply"]), "second apply").text();
    assert!(
        again.contains("No changes: everything is as it should be."),
        "{again}"
    );
    assert!(!again.contains("DRIFT"), "{again}");
    assert!(again.contains(&replica), "{again}");

    // The DR block, as printed, is a valid encryption configuration.
    let enc = tempfile::tempdir().unwrap();
    std::fs::write(enc.path().join("encryption.tf"), block).unwrap();
    ok(
        stateseal(enc.path(), &["validate"]),
        "validate the DR block",
    );

    // A single-Region key cannot be replicated: reported as drift, nothing made.
    let single = peers.mkkey(&unique("single"));
    let drift = ok(
        run(&["--kms-key", &single]),
        "dry run on a single-Region key",
    )
    .text();
    assert!(drift.contains("is a single-Region key"), "{drift}");
    assert!(drift.contains("DRIFT"), "{drift}");

    // Usage: no key to replicate, or the bucket's own region.
    for extra in [&["--kms-key", "none"][..], &["--region", "us-west-2"][..]] {
        let o = run(extra);
        assert_eq!(o.code, 2, "{extra:?}: {}", o.stderr);
    }
    let help = ok(
        stateseal(work.path(), &["bootstrap", "s3", "--help"]),
        "bootstrap s3 --help",
    )
    .text();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("only on real AWS"), "{help}");
}

/// The runbook's key policy: the root administers; the deploy principal has exactly the four
/// key actions.
fn stateseal_fleet_policy_is_the_runbooks(policy: &str) -> bool {
    let doc: serde_json::Value = serde_json::from_str(policy).unwrap();
    let statements = doc["Statement"].as_array().cloned().unwrap_or_default();
    let root = statements.iter().any(|s| {
        s["Principal"]["AWS"] == "arn:aws:iam::123456789012:root" && s["Action"] == "kms:*"
    });
    let deploy = statements.iter().any(|s| {
        s["Principal"]["AWS"] == serde_json::json!([DEPLOY])
            && s["Action"]
                == serde_json::json!([
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey"
                ])
    });
    root && deploy
}
