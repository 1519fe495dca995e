//! State and plan files both ways between `tofu` and stateseal (local backend, no peers but
//! `tofu`): what `tofu` writes, stateseal reads; what stateseal writes or rekeys, `tofu` reads.

use serde_json::Value;
use stateseal_testkit::Tofu;

use super::{stateseal_ok, Run};

/// One `terraform_data` and two outputs; the state is encrypted with a pbkdf2 passphrase.
const PBKDF2: &str = r#"
terraform {
  encryption {
    key_provider "pbkdf2" "main" {
      passphrase = "correct-horse-battery-staple"
    }
    method "aes_gcm" "main" {
      keys = key_provider.pbkdf2.main
    }
    state {
      method   = method.aes_gcm.main
      enforced = true
    }
  }
}
resource "terraform_data" "app" {
  input = { greeting = "hello" }
}
output "greeting" {
  value = terraform_data.app.output.greeting
}
output "secret" {
  value     = "s3cr3t"
  sensitive = true
}
"#;

fn json(r: &Run) -> Value {
    serde_json::from_slice(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

/// `tofu apply` writes an encrypted state; `stateseal decrypt` of it equals `tofu state pull`.
#[test]
fn tofu_writes_a_pbkdf2_state_and_stateseal_decrypts_it_as_tofu_state_pull_does() {
    for tofu in Tofu::all("tofu_writes_a_pbkdf2_state") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tf"), PBKDF2).unwrap();
        tofu.ok(dir.path(), &["init"]);
        tofu.ok(dir.path(), &["apply", "-auto-approve"]);
        let raw = std::fs::read(dir.path().join("terraform.tfstate")).unwrap();
        let envelope: Value = serde_json::from_slice(&raw).unwrap();
        assert!(
            envelope.get("encrypted_data").is_some(),
            "tofu {} did not encrypt its state",
            tofu.version
        );

        let ours = stateseal_ok(dir.path(), &[], &["decrypt", "terraform.tfstate"]);
        let theirs = tofu.ok(dir.path(), &["state", "pull"]);
        let theirs: Value = serde_json::from_str(&theirs).unwrap();
        assert_eq!(json(&ours), theirs, "tofu {}", tofu.version);
        assert_eq!(theirs["outputs"]["greeting"]["value"], "hello");
    }
}
