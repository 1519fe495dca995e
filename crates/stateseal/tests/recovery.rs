//! `stateseal keyprovider` speaking OpenTofu's external key provider protocol, and `dr keygen`,
//! without any peer: age recipients only, and a KMS endpoint that does not answer. (The KMS
//! wraps, real `tofu` and the drill over a bucket are in `tofu::recovery`.)

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;

struct Answer {
    code: i32,
    header: String,
    body: Option<Value>,
    stderr: String,
    raw: String,
}

fn keyprovider(args: &[&str], input: &str, env: &[(&str, &str)]) -> Answer {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("stateseal"));
    c.arg("keyprovider")
        .args(args)
        .env_remove("STATESEAL_RECOVERY_IDENTITY")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let raw = String::from_utf8(out.stdout).unwrap();
    let mut lines = raw.splitn(2, '\n');
    let header = lines.next().unwrap_or_default().to_string();
    let body = lines
        .next()
        .filter(|b| !b.trim().is_empty())
        .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}")));
    Answer {
        code: out.status.code().unwrap_or(-1),
        header,
        body,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw,
    }
}

fn keygen(dir: &std::path::Path, name: &str) -> (String, String, String) {
    let path = dir.join(name);
    let out = Command::new(assert_cmd::cargo::cargo_bin("stateseal"))
        .args(["dr", "keygen", "--output"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = std::fs::read_to_string(&path).unwrap();
    let secret = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string();
    (
        path.to_str().unwrap().to_string(),
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
        secret,
    )
}

fn key_of(v: &Value, which: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v["keys"][which].as_str().unwrap())
        .unwrap()
}

#[test]
fn the_protocol_round_trips_through_the_recovery_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (id, recipient, secret) = keygen(dir.path(), "id.txt");
    let first = keyprovider(&["--recipient", &recipient], "null", &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        serde_json::from_str::<Value>(&first.header).unwrap(),
        serde_json::json!({"magic": "OpenTofu-External-Key-Provider", "version": 1})
    );
    let body = first.body.clone().unwrap();
    assert_eq!(key_of(&body, "encryption_key").len(), 32);
    assert!(body["keys"].get("decryption_key").is_none(), "{body}");
    let data = &body["meta"]["external_data"];
    assert_eq!(data["stateseal_recovery"], 1);
    assert_eq!(data["wraps"][0]["recipient"], recipient.as_str());

    // The next run gets the stored metadata back: the identity opens the same key.
    let stored = serde_json::json!({ "external_data": data }).to_string();
    let second = keyprovider(
        &["--recipient", &recipient],
        &stored,
        &[("STATESEAL_RECOVERY_IDENTITY", &id)],
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    let again = second.body.clone().unwrap();
    assert_eq!(
        key_of(&again, "decryption_key"),
        key_of(&body, "encryption_key")
    );
    assert_ne!(
        key_of(&again, "encryption_key"),
        key_of(&body, "encryption_key"),
        "a fresh data key per encryption"
    );
    assert!(
        second
            .stderr
            .contains("decrypted with the recovery identity"),
        "{}",
        second.stderr
    );
    // OpenTofu 1.10 and 1.11 send {"external_data":null} when there is no metadata.
    let old = keyprovider(
        &["--recipient", &recipient],
        r#"{"external_data":null}"#,
        &[],
    );
    assert_eq!(old.code, 0, "{}", old.stderr);
    assert!(old.body.clone().unwrap()["keys"]
        .get("decryption_key")
        .is_none());
    for a in [&first, &second, &old] {
        assert!(!a.raw.contains(&secret) && !a.stderr.contains(&secret));
    }
}

#[test]
fn failures_name_the_recipient_and_the_reason_and_hand_out_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient, _) = keygen(dir.path(), "id.txt");
    let (wrong, _, wrong_secret) = keygen(dir.path(), "wrong.txt");
    let first = keyprovider(&["--recipient", &recipient], "null", &[])
        .body
        .unwrap();
    let stored = serde_json::json!({ "external_data": first["meta"]["external_data"] }).to_string();

    // The wrong identity: exit 4, the recipients named.
    let r = keyprovider(
        &["--recipient", &recipient],
        &stored,
        &[("STATESEAL_RECOVERY_IDENTITY", &wrong)],
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("matches none of the state's recipients")
            && r.stderr.contains(&recipient),
        "{}",
        r.stderr
    );
    assert!(r.body.is_none() && !r.stderr.contains(&wrong_secret));

    // Damaged external_data: exit 5.
    let damaged = r#"{"external_data":{"stateseal_recovery":1,"wraps":[{"type":"age","recipient":"age1x","ciphertext":"!!"}],"extra":1}}"#;
    let r = keyprovider(&["--recipient", &recipient], damaged, &[]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("external_data is damaged"),
        "{}",
        r.stderr
    );

    // A KMS key that cannot be reached: named, with the reason; no key handed out.
    let key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let unreachable = [("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:1")];
    let r = keyprovider(
        &["--kms", key, "--recipient", &recipient],
        "null",
        &unreachable,
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(key) && r.stderr.contains("unreachable"),
        "{}",
        r.stderr
    );
    assert!(r.body.is_none(), "{}", r.raw);
    // In recovery mode the unreachable key is skipped with a warning: the age wrap remains.
    let recovery = dir.path().join("id.txt");
    let r = keyprovider(
        &["--kms", key, "--recipient", &recipient],
        &stored,
        &[
            unreachable[0],
            ("STATESEAL_RECOVERY_IDENTITY", recovery.to_str().unwrap()),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning: recovery mode") && r.stderr.contains(key),
        "{}",
        r.stderr
    );
    let wraps = r.body.unwrap()["meta"]["external_data"]["wraps"].clone();
    assert_eq!(wraps.as_array().unwrap().len(), 1, "{wraps}");

    // Usage: a key provider with nothing to wrap for; a bad recipient.
    assert_eq!(keyprovider(&[], "null", &[]).code, 2);
    let r = keyprovider(&["--recipient", "age1nope"], "null", &[]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("age1nope") && r.header.is_empty(),
        "{}",
        r.stderr
    );
}

#[test]
fn keygen_never_overwrites_and_keeps_the_identity_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (path, recipient, _) = keygen(dir.path(), "id.txt");
    assert!(recipient.starts_with("age1"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&path).unwrap();
    let again = Command::new(assert_cmd::cargo::cargo_bin("stateseal"))
        .args(["dr", "keygen", "--output", &path])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_drill_of_files_checks_a_sample_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let (id, _, _) = keygen(dir.path(), "id.txt");
    let mut args = vec![
        "dr".to_string(),
        "drill".into(),
        "--json".into(),
        "--identity".into(),
        id,
    ];
    args.extend(["--sample".into(), "2".into()]);
    for i in 0..5 {
        let f = dir.path().join(format!("s{i}.tfstate"));
        std::fs::write(&f, format!("{{\"version\":4,\"serial\":{i},\"lineage\":\"L\",\"outputs\":{{}},\"resources\":[]}}")).unwrap();
        args.push(f.to_str().unwrap().to_string());
    }
    let out = Command::new(assert_cmd::cargo::cargo_bin("stateseal"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sampled_from"], 5, "{report:#}");
    assert_eq!(report["summary"]["checked"], 2);
    assert_eq!(report["summary"]["plaintext"], 2);
}
