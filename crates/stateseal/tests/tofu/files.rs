//! State and plan files both ways between `tofu` and stateseal (local backend, no peers but
//! `tofu`, and moto for aws_kms): what `tofu` writes, stateseal reads (and `stateseal decrypt`
//! equals `tofu state pull`); what stateseal writes or rekeys, `tofu` reads (`tofu plan
//! -detailed-exitcode` shows no changes, `tofu output -json` shows the values).

use std::path::Path;

use serde_json::Value;
use stateseal_testkit::{repo_root, Tofu};

use super::{json, main_tf, pbkdf2, Work};

/// `state { method = method.aes_gcm.NAME … }` with extra attributes or blocks.
fn state(name: &str, extra: &str) -> String {
    format!("state {{\n  method = method.aes_gcm.{name}\n  {extra}\n}}\n")
}

#[test]
fn pbkdf2_hash_functions_key_lengths_and_chain_both_ways() {
    let configs = [
        pbkdf2(
            "main",
            "correct-horse-battery-staple",
            "hash_function = \"sha256\"\n  key_length = 16",
        ) + &state("main", "enforced = true"),
        pbkdf2(
            "main",
            "correct-horse-battery-staple",
            "hash_function = \"sha512\"\n  key_length = 24",
        ) + &state("main", ""),
        pbkdf2(
            "main",
            "correct-horse-battery-staple",
            "hash_function = \"sha512\"\n  key_length = 32\n  salt_length = 16",
        ) + &state("main", ""),
        // chain: the base provider's key is the passphrase of the derived one.
        r#"
key_provider "pbkdf2" "base" {
  passphrase = "correct-horse-battery-staple"
  iterations = 200000
}
key_provider "pbkdf2" "main" {
  chain      = key_provider.pbkdf2.base
  iterations = 200000
}
method "aes_gcm" "main" {
  keys = key_provider.pbkdf2.main
}
"#
        .to_string()
            + &state("main", ""),
    ];
    for tofu in Tofu::all("pbkdf2_hash_functions_key_lengths_and_chain_both_ways") {
        for config in &configs {
            let w = Work::new(&tofu, config);
            if config.contains("chain") && !tofu.is_at_least("1.9") {
                // pbkdf2 `chain` arrived in 1.9.
                let theirs = w.tofu_fails(&["init"]);
                assert!(
                    theirs.contains("An argument named \"chain\" is not expected here"),
                    "{theirs}"
                );
                continue;
            }
            w.both_ways();
        }
    }
}

#[test]
fn fallback_reads_the_old_key_and_stateseal_rekeys_to_the_new_one() {
    let old = pbkdf2("old", "the passphrase we are retiring", "");
    let new = pbkdf2("new", "the passphrase we rotate to", "");
    for tofu in Tofu::all("fallback_reads_the_old_key_and_stateseal_rekeys") {
        let w = Work::new(&tofu, &(old.clone() + &state("old", "")));
        w.apply();
        // Only the new key: neither reads the old file.
        w.configure(&(new.clone() + &state("new", "")));
        w.tofu_fails(&["plan"]);
        assert_eq!(w.stateseal(&["decrypt", "terraform.tfstate"]).code, 4);
        // New primary, old fallback: both read it, alike.
        w.configure(&format!(
            "{old}{new}{}",
            state("new", "fallback {\n    method = method.aes_gcm.old\n  }")
        ));
        w.assert_decrypt_is_state_pull();
        w.stateseal_ok(&["rekey", "terraform.tfstate"]);
        // Rekeyed: the new key alone is enough for tofu.
        w.configure(&(new.clone() + &state("new", "enforced = true")));
        w.assert_state_encrypted(true);
        w.assert_tofu_reads_state();
        w.assert_decrypt_is_state_pull();
    }
}

#[test]
fn unencrypted_migration_both_directions_and_enforced() {
    let key = pbkdf2("main", "correct-horse-battery-staple", "");
    let migrate_in = format!(
        "{key}method \"unencrypted\" \"migrate\" {{}}\n{}",
        state(
            "main",
            "fallback {\n    method = method.unencrypted.migrate\n  }"
        )
    );
    let migrate_out = format!(
        "{key}method \"unencrypted\" \"migrate\" {{}}\nstate {{\n  method = method.unencrypted.migrate\n  fallback {{\n    method = method.aes_gcm.main\n  }}\n}}\n"
    );
    for tofu in Tofu::all("unencrypted_migration_both_directions_and_enforced") {
        let w = Work::new(&tofu, "");
        w.apply();
        w.assert_state_encrypted(false);
        // Without an unencrypted method neither accepts the plaintext, enforced or not.
        w.configure(&(key.clone() + &state("main", "")));
        let theirs = w.tofu_fails(&["plan"]);
        assert!(
            theirs.contains("encountered unencrypted payload without unencrypted method"),
            "{theirs}"
        );
        let ours = w.stateseal(&["decrypt", "terraform.tfstate"]);
        assert_eq!(ours.code, 5, "{}", ours.stderr);
        // enforced forbids the unencrypted method in both.
        w.configure(&migrate_in.replace("fallback {", "enforced = true\n  fallback {"));
        let theirs = w.tofu_fails(&["plan"]);
        assert!(
            theirs.contains("Unencrypted method is forbidden"),
            "{theirs}"
        );
        assert_ne!(w.stateseal(&["decrypt", "terraform.tfstate"]).code, 0);

        // In: the plaintext reads through the unencrypted fallback; stateseal rekeys it.
        w.configure(&migrate_in);
        w.assert_decrypt_is_state_pull();
        w.stateseal_ok(&["rekey", "terraform.tfstate"]);
        w.configure(&(key.clone() + &state("main", "enforced = true")));
        w.assert_state_encrypted(true);
        w.assert_tofu_reads_state();

        // Out: unencrypted primary, the key as fallback; stateseal rekeys to plaintext.
        w.configure(&migrate_out);
        w.assert_decrypt_is_state_pull();
        w.stateseal_ok(&["rekey", "terraform.tfstate"]);
        w.assert_state_encrypted(false);
        w.configure("");
        w.assert_tofu_reads_state();

        // And tofu migrates in by itself; stateseal reads what it wrote.
        w.configure(&migrate_in);
        w.tofu_ok(&["apply", "-auto-approve"]);
        w.assert_state_encrypted(true);
        w.configure(&(key.clone() + &state("main", "enforced = true")));
        w.assert_decrypt_is_state_pull();
    }
}

/// An external program of `stateseal-encryption`'s tests, as an HCL list item.
fn program(name: &str) -> String {
    format!(
        "{:?}",
        repo_root()
            .join("crates/stateseal-encryption/tests/external")
            .join(name)
            .display()
            .to_string()
    )
}

#[test]
fn external_key_provider_and_method_both_ways_where_tofu_has_them() {
    let provider = format!(
        "key_provider \"external\" \"ext\" {{\n  command = [{}]\n}}\n",
        program("keyprovider.sh")
    );
    let with_provider = format!(
        "{provider}method \"aes_gcm\" \"main\" {{\n  keys = key_provider.external.ext\n}}\n{}",
        state("main", "")
    );
    let with_method = format!(
        "{provider}method \"external\" \"xor\" {{\n  keys = key_provider.external.ext\n  encrypt_command = [{m}]\n  decrypt_command = [{m}]\n}}\nstate {{\n  method = method.external.xor\n}}\n",
        m = program("method.py")
    );
    let python = repo_root().join(".venv/bin");
    for tofu in Tofu::all("external_key_provider_and_method_both_ways") {
        for config in [&with_provider, &with_method] {
            // method.py runs with `python3` from PATH; the venv's is as good as the system's.
            let path = format!("{}:{}", python.display(), std::env::var("PATH").unwrap());
            let w = Work::new(&tofu, config).with_env("PATH", &path);
            if tofu.is_at_least("1.10") {
                w.both_ways();
            } else {
                // 1.8/1.9 have neither: tofu refuses the configuration.
                let theirs = w.tofu_fails(&["init"]);
                assert!(
                    theirs.contains("key provider with ID external not found"),
                    "{theirs}"
                );
            }
        }
    }
}

#[cfg(feature = "aws-kms")]
#[test]
fn aws_kms_with_assume_role_on_moto_both_ways() {
    use stateseal_testkit::moto::{Moto, ENDPOINT_ENV};
    let test = "aws_kms_with_assume_role_on_moto_both_ways";
    let Some(moto) = Moto::from_env(ENDPOINT_ENV, test) else {
        return;
    };
    let key = moto.mkkey(&stateseal_testkit::moto::unique("tofu-kms"));
    // OpenTofu's aws_kms has no `endpoints { kms }`: both reach moto's KMS through
    // AWS_ENDPOINT_URL_KMS; STS (for assume_role) through the block.
    let config = format!(
        r#"
key_provider "aws_kms" "main" {{
  kms_key_id = "{key}"
  key_spec   = "AES_256"
  region     = "us-east-1"
  assume_role = {{
    role_arn     = "arn:aws:iam::123456789012:role/stateseal-tofu"
    session_name = "tofu-parity"
  }}
  endpoints {{
    sts = "{e}"
  }}
}}
method "aes_gcm" "main" {{
  keys = key_provider.aws_kms.main
}}
{state}"#,
        e = moto.endpoint,
        state = state("main", "enforced = true"),
    );
    for tofu in Tofu::all(test) {
        let w = Work::new(&tofu, &config)
            .with_env("AWS_ENDPOINT_URL_KMS", &moto.endpoint)
            .with_env("AWS_ACCESS_KEY_ID", "testing")
            .with_env("AWS_SECRET_ACCESS_KEY", "testing");
        w.both_ways();
        let meta = w.state_file()["meta"]["key_provider.aws_kms.main"].clone();
        assert!(meta.is_string(), "{meta}");
    }
}

/// A consumer of two producers' states through `terraform_remote_state`.
const CONSUMER: &str = r#"
data "terraform_remote_state" "net" {
  backend = "local"
  config  = { path = "../net/terraform.tfstate" }
}
data "terraform_remote_state" "vpc" {
  backend = "local"
  config  = { path = "../vpc/terraform.tfstate" }
}
output "net" {
  value = data.terraform_remote_state.net.outputs.greeting
}
output "vpc" {
  value = data.terraform_remote_state.vpc.outputs.greeting
}
"#;

#[test]
fn remote_state_data_sources_default_and_named_read_by_terraform_remote_state() {
    let net = pbkdf2("net", "the network team's passphrase", "");
    let vpc_tofu = pbkdf2("vpct", "what tofu wrote vpc with", "");
    let vpc = pbkdf2("vpc", "what stateseal rekeyed vpc to", "");
    for tofu in Tofu::all("remote_state_data_sources_default_and_named") {
        let root = tempfile::tempdir().unwrap();
        let sub = |name: &str| {
            let p = root.path().join(name);
            std::fs::create_dir(&p).unwrap();
            p
        };
        let (net_dir, vpc_dir, app_dir) = (sub("net"), sub("vpc"), sub("app"));
        // net: written by tofu with its key.
        let producer = |dir: &Path, body: &str| {
            std::fs::write(dir.join("main.tf"), main_tf(body, super::RESOURCES)).unwrap();
            tofu.ok(dir, &["init"]);
            tofu.ok(dir, &["apply", "-auto-approve"]);
        };
        producer(&net_dir, &(net.clone() + &state("net", "")));
        // vpc: written by tofu, then rekeyed by stateseal to another key.
        producer(&vpc_dir, &(vpc_tofu.clone() + &state("vpct", "")));
        std::fs::write(
            vpc_dir.join("main.tf"),
            main_tf(
                &format!(
                    "{vpc_tofu}{vpc}{}",
                    state("vpc", "fallback {\n    method = method.aes_gcm.vpct\n  }")
                ),
                super::RESOURCES,
            ),
        )
        .unwrap();
        super::stateseal_ok(&vpc_dir, &[], &["rekey", "terraform.tfstate"]);

        // app: the default block reads net; the named block (the data source's name) vpc.
        let app_config = |named: &str| {
            format!(
                "{net}{vpc}remote_state_data_sources {{\n  default {{\n    method = method.aes_gcm.net\n  }}\n  {named}\n}}\n"
            )
        };
        let named = "remote_state_data_source \"vpc\" {\n    method = method.aes_gcm.vpc\n  }";
        std::fs::write(
            app_dir.join("main.tf"),
            main_tf(&app_config(named), CONSUMER),
        )
        .unwrap();
        tofu.ok(&app_dir, &["init"]);
        tofu.ok(&app_dir, &["apply", "-auto-approve"]);
        let out: Value = serde_json::from_str(&tofu.ok(&app_dir, &["output", "-json"])).unwrap();
        assert_eq!(out["net"]["value"], "hello", "tofu {}: {out}", tofu.version);
        assert_eq!(out["vpc"]["value"], "hello", "tofu {}: {out}", tofu.version);

        // stateseal reads each producer as that data source does.
        for (name, dir) in [("net", &net_dir), ("vpc", &vpc_dir)] {
            let file = dir.join("terraform.tfstate").display().to_string();
            let target = format!("remote:{name}");
            let ours = json(&super::stateseal_ok(
                &app_dir,
                &[],
                &["decrypt", "--target", &target, &file],
            ));
            let theirs: Value = serde_json::from_str(&tofu.ok(dir, &["state", "pull"])).unwrap();
            assert_eq!(ours, theirs, "tofu {} {name}", tofu.version);
        }
        // Without the named block, vpc falls back to default (net's key) and fails in both.
        std::fs::write(app_dir.join("main.tf"), main_tf(&app_config(""), CONSUMER)).unwrap();
        let out = tofu.run(&app_dir, &["plan"]);
        assert!(
            !out.status.success(),
            "tofu {} read vpc with net's key",
            tofu.version
        );
        let file = vpc_dir.join("terraform.tfstate").display().to_string();
        let ours = super::stateseal(&app_dir, &[], &["decrypt", "--target", "remote:vpc", &file]);
        assert_eq!(ours.code, 4, "{}", ours.stderr);
    }
}

#[test]
fn plans_tofu_encrypts_stateseal_decrypts_for_tofu_show_and_the_reverse_for_tofu_apply() {
    let key = pbkdf2("main", "correct-horse-battery-staple", "");
    let config = format!(
        "{key}{}plan {{\n  method = method.aes_gcm.main\n  enforced = true\n}}\n",
        state("main", "")
    );
    for tofu in Tofu::all("plans_tofu_encrypts_stateseal_decrypts") {
        let w = Work::new(&tofu, &config);
        w.tofu_ok(&["init"]);
        w.tofu_ok(&["plan", "-out=tofu.tfplan"]);
        let theirs = std::fs::read(w.file("tofu.tfplan")).unwrap();
        assert!(!theirs.starts_with(b"PK"), "tofu did not encrypt its plan");
        w.stateseal_ok(&[
            "decrypt",
            "--target",
            "plan",
            "tofu.tfplan",
            "-o",
            "plain.tfplan",
        ]);
        assert!(std::fs::read(w.file("plain.tfplan"))
            .unwrap()
            .starts_with(b"PK"));

        // `tofu show` of the decrypted plan, in a directory without plan encryption, shows
        // what `tofu show` of the encrypted one shows.
        let plain = Work::new(&tofu, "");
        std::fs::copy(w.file("plain.tfplan"), plain.file("plain.tfplan")).unwrap();
        plain.tofu_ok(&["init"]);
        let shown: Value =
            serde_json::from_str(&plain.tofu_ok(&["show", "-json", "plain.tfplan"])).unwrap();
        let expected: Value =
            serde_json::from_str(&w.tofu_ok(&["show", "-json", "tofu.tfplan"])).unwrap();
        assert_eq!(shown["resource_changes"], expected["resource_changes"]);
        assert_eq!(
            shown["resource_changes"][0]["address"], "terraform_data.app",
            "{shown}"
        );

        // stateseal encrypts the plaintext plan; tofu applies it.
        w.stateseal_ok(&[
            "encrypt",
            "--target",
            "plan",
            "plain.tfplan",
            "-o",
            "ours.tfplan",
        ]);
        let ours = std::fs::read(w.file("ours.tfplan")).unwrap();
        assert!(!ours.starts_with(b"PK") && ours != theirs);
        w.tofu_ok(&["apply", "ours.tfplan"]);
        w.assert_state_encrypted(true);
        w.assert_tofu_reads_state();
        w.assert_decrypt_is_state_pull();
    }
}

/// Kept difference (README "Compatibility notes"): a fallback that shares its key provider with
/// the primary. 1.10+ fails with "Duplicate metadata key" before it reads; 1.8 reads through the
/// fallback; stateseal reads as 1.8 does, and its rekey leaves a file every release reads.
#[test]
fn a_fallback_sharing_the_primary_key_provider_reads_in_stateseal_and_1_8_not_in_1_10() {
    let key = pbkdf2("k", "correct-horse-battery-staple", "");
    let shared = format!(
        "{key}method \"aes_gcm\" \"n\" {{\n  keys = key_provider.pbkdf2.k\n  aad  = [1, 2, 3]\n}}\nstate {{\n  method = method.aes_gcm.n\n  fallback {{\n    method = method.aes_gcm.k\n  }}\n}}\n"
    );
    for tofu in Tofu::all("a_fallback_sharing_the_primary_key_provider") {
        let w = Work::new(&tofu, &(key.clone() + &state("k", "")));
        w.apply();
        w.configure(&shared);
        if tofu.is_at_least("1.10") {
            let theirs = w.tofu_fails(&["plan"]);
            assert!(theirs.contains("Duplicate metadata key"), "{theirs}");
            let ours = w.stateseal_ok(&["decrypt", "terraform.tfstate"]);
            assert_eq!(json(&ours)["outputs"]["greeting"]["value"], "hello");
        } else {
            w.assert_decrypt_is_state_pull();
        }
        // Rekeyed to the primary alone, tofu reads it with the primary alone.
        w.stateseal_ok(&["rekey", "terraform.tfstate"]);
        w.configure(&format!(
            "{key}method \"aes_gcm\" \"n\" {{\n  keys = key_provider.pbkdf2.k\n  aad  = [1, 2, 3]\n}}\nstate {{\n  method = method.aes_gcm.n\n}}\n"
        ));
        w.assert_tofu_reads_state();
    }
}
