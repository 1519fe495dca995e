//! Key rotation from a passphrase to AWS KMS with the real binary against moto: `stateseal
//! rekey` with aws_kms as the primary and pbkdf2 as the fallback. Also: an IAM denial leaves
//! files untouched, and `validate` / `inspect` work with no key service reachable.
//!
//! Needs `STATESEAL_TEST_AWS_ENDPOINT` and `STATESEAL_TEST_AWS_AUTH_ENDPOINT` (see
//! `stateseal-testkit`); skips with a notice when they are unset, and fails instead when
//! `STATESEAL_TEST_REQUIRE_PEERS` is set.
#![cfg(feature = "aws-kms")]

use stateseal_testkit::moto;

use std::path::Path;

use assert_cmd::Command;
use moto::{unique, Moto, AUTH_ENDPOINT_ENV, ENDPOINT_ENV};

const PLAIN: &str = "{\n  \"version\": 4,\n  \"terraform_version\": \"1.9.0\",\n  \"serial\": 12,\n  \"lineage\": \"rotation-lineage\",\n  \"outputs\": {},\n  \"resources\": []\n}\n";

const PBKDF2: &str = r#"
key_provider "pbkdf2" "old" {
  passphrase = "the passphrase we are retiring"
  iterations = 200000
}
method "aes_gcm" "old" {
  keys = key_provider.pbkdf2.old
}
"#;

pub(crate) fn kms(endpoint: &str, key_id: &str, access_key: &str, secret_key: &str) -> String {
    format!(
        r#"
key_provider "aws_kms" "new" {{
  kms_key_id  = "{key_id}"
  key_spec    = "AES_256"
  region      = "us-east-1"
  access_key  = "{access_key}"
  secret_key  = "{secret_key}"
  max_retries = 1
  endpoints {{
    kms = "{endpoint}"
    sts = "{endpoint}"
  }}
}}
method "aes_gcm" "new" {{
  keys = key_provider.aws_kms.new
}}
"#
    )
}

/// pbkdf2 only; aws_kms primary with pbkdf2 fallback; aws_kms only.
fn write_configs(dir: &Path, kms_block: &str) {
    let w = |name: &str, s: String| std::fs::write(dir.join(name), s).unwrap();
    w(
        "old.hcl",
        format!("{PBKDF2}state {{\n  method = method.aes_gcm.old\n}}\n"),
    );
    w(
        "rotate.hcl",
        format!("{PBKDF2}{kms_block}state {{\n  method = method.aes_gcm.new\n  fallback {{\n    method = method.aes_gcm.old\n  }}\n}}\n"),
    );
    w(
        "kms.hcl",
        format!("{kms_block}state {{\n  method = method.aes_gcm.new\n}}\n"),
    );
}

/// `stateseal --config CONFIG encrypt plain.json -o OUT`.
fn encrypt(dir: &Path, config: &str, out: &str) -> (i32, String, String) {
    stateseal(
        dir,
        &["--config", config, "encrypt", "plain.json", "-o", out],
    )
}

fn stateseal(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::cargo_bin("stateseal").unwrap();
    c.current_dir(dir)
        .env_remove("TF_ENCRYPTION")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args);
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn rekey_moves_a_pbkdf2_file_to_kms() {
    let Some(moto) = Moto::from_env(ENDPOINT_ENV, "rekey_moves_a_pbkdf2_file_to_kms") else {
        return;
    };
    let alias = unique("rotation");
    moto.mkkey(&alias);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write_configs(
        dir,
        &kms(
            &moto.endpoint,
            &format!("alias/{alias}"),
            "testing",
            "testing",
        ),
    );
    std::fs::write(dir.join("plain.json"), PLAIN).unwrap();

    // Encrypted with the passphrase, as it is today.
    let (code, _, err) = encrypt(dir, "old.hcl", "terraform.tfstate");
    assert_eq!(code, 0, "{err}");

    let (code, report, err) = stateseal(
        dir,
        &["--config", "rotate.hcl", "rekey", "terraform.tfstate"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        report.contains("read with a fallback method")
            && report.contains("key_provider.aws_kms.new"),
        "{report}"
    );

    // The file now carries only the KMS data key, which moto's own Decrypt (boto3) accepts.
    let (code, inspect, err) = stateseal(dir, &["inspect", "terraform.tfstate", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(inspect.contains("key_provider.aws_kms.new"), "{inspect}");
    assert!(!inspect.contains("key_provider.pbkdf2.old"), "{inspect}");
    let bytes = std::fs::read(dir.join("terraform.tfstate")).unwrap();
    let env = stateseal_encryption::envelope::Envelope::parse(&bytes).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(&env.meta["key_provider.aws_kms.new"]).unwrap();
    assert_eq!(
        moto.kms_decrypt(meta["ciphertext_blob"].as_str().unwrap(), None)
            .len(),
        44
    );

    // Reads with KMS alone, with no warning; the passphrase-only configuration cannot.
    let (code, out, err) = stateseal(
        dir,
        &["--config", "kms.hcl", "decrypt", "terraform.tfstate"],
    );
    assert_eq!((code, out.as_str(), err.as_str()), (0, PLAIN, ""));
    let (code, out, err) = stateseal(
        dir,
        &["--config", "old.hcl", "decrypt", "terraform.tfstate"],
    );
    assert_ne!(code, 0, "the pbkdf2-only config still decrypts: {out}");
    assert!(err.contains("no decryption key available"), "{err}");
}

#[test]
fn kms_access_denied_is_clear_and_writes_nothing() {
    let Some(moto) = Moto::from_env(
        AUTH_ENDPOINT_ENV,
        "kms_access_denied_is_clear_and_writes_nothing",
    ) else {
        return;
    };
    let _auth = moto::auth_lock();
    moto.reset_auth("inf");
    let alias = unique("cli-iam");
    moto.mkkey(&alias);
    let (ak, sk) = moto.iam_user(&unique("cli-nodecrypt"), &["kms:Decrypt"]);
    let (writer_ak, writer_sk) = moto.iam_user(&unique("cli-writer"), &[]);
    moto.reset_auth("0");

    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let key_id = format!("alias/{alias}");
    // `encrypt` checks its output by decrypting it, so the writer needs kms:Decrypt too.
    std::fs::write(
        dir.join("writer.hcl"),
        format!(
            "{}state {{\n  method = method.aes_gcm.new\n}}\n",
            kms(&moto.endpoint, &key_id, &writer_ak, &writer_sk)
        ),
    )
    .unwrap();
    write_configs(dir, &kms(&moto.endpoint, &key_id, &ak, &sk));
    std::fs::write(dir.join("plain.json"), PLAIN).unwrap();
    let (code, _, err) = encrypt(dir, "writer.hcl", "s.tfstate");
    assert_eq!(code, 0, "{err}");

    // This user may generate data keys but not decrypt them. `encrypt` still succeeds: its
    // round-trip check reuses the data key it was just given (no KMS Decrypt call), so the
    // denial shows only when the file is read back.
    let (code, _, err) = encrypt(dir, "kms.hcl", "t.tfstate");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = stateseal(dir, &["--config", "kms.hcl", "decrypt", "t.tfstate"]);
    assert_eq!(code, 3, "{err}");
    let before = std::fs::read(dir.join("s.tfstate")).unwrap();

    let (code, out, err) = stateseal(
        dir,
        &[
            "--config",
            "kms.hcl",
            "decrypt",
            "s.tfstate",
            "-o",
            "out.json",
        ],
    );
    assert_eq!(code, 3, "{out}{err}");
    for want in [
        "key_provider.aws_kms.new",
        &format!("alias/{alias}"),
        "AccessDenied",
        "kms:Decrypt",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    assert!(!err.contains(&sk), "the secret key leaked: {err}");
    assert!(
        !dir.join("out.json").exists(),
        "decrypt wrote an output file"
    );

    let (code, _, err) = stateseal(dir, &["--config", "kms.hcl", "rekey", "s.tfstate"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(
        std::fs::read(dir.join("s.tfstate")).unwrap(),
        before,
        "rekey changed the file"
    );
}

#[test]
fn validate_and_inspect_need_no_key_service() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // Nothing listens on port 9: any call would fail.
    write_configs(
        dir,
        &kms("http://127.0.0.1:9", "alias/unreachable", "a", "b"),
    );
    let (code, out, err) = stateseal(dir, &["--config", "rotate.hcl", "validate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("key_provider.aws_kms.new"), "{out}");

    std::fs::write(dir.join("plain.json"), PLAIN).unwrap();
    let (code, _, err) = encrypt(dir, "old.hcl", "s.tfstate");
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = stateseal(dir, &["inspect", "s.tfstate"]);
    assert_eq!(code, 0, "{out}{err}");

    // Writing does need KMS: the error names the provider, the key and the endpoint.
    // It exits 7 (a key service is unavailable; try again), not 3 (fix the configuration).
    let (code, _, err) = stateseal(dir, &["--config", "rotate.hcl", "rekey", "s.tfstate"]);
    assert_eq!(code, 7, "{err}");
    for want in [
        "key_provider.aws_kms.new",
        "alias/unreachable",
        "http://127.0.0.1:9",
        "Connection refused",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
}
