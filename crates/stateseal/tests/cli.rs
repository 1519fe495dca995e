//! End-to-end tests of the file commands, and of `state push`/`pull` on the local backend: the
//! real binary, real files.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

fn sha256_hex(b: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command as P, Stdio};
    let mut c = P::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b).unwrap();
    String::from_utf8(c.wait_with_output().unwrap().stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The binary, with a clean environment for the variables that change its behaviour.
fn stateseal(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("stateseal").unwrap();
    c.current_dir(dir)
        .env_remove("TF_ENCRYPTION")
        .env_remove("TF_WORKSPACE");
    for (k, _) in std::env::vars() {
        if k.starts_with("TF_VAR_") {
            c.env_remove(k);
        }
    }
    c
}

struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

fn run(c: &mut Command) -> Out {
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

const PBKDF2_MAIN: &str = "key_provider \"pbkdf2\" \"main\" { passphrase = \"correct-horse-battery-staple\" }\nmethod \"aes_gcm\" \"main\" { keys = key_provider.pbkdf2.main }\n";

fn vectors() -> Vec<Value> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(testdata("vectors/vectors.json")).unwrap()).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

#[test]
fn every_vector_decrypts_through_the_cli() {
    let d = tempfile::tempdir().unwrap();
    for v in vectors() {
        let id = v["id"].as_str().unwrap();
        let full: Vec<String> = (1..=32).map(|i| i.to_string()).collect();
        let mut hcl = v["hcl"]
            .as_str()
            .unwrap()
            .replace("[1,2,...,32]", &format!("[{}]", full.join(",")));
        if id == "state-static-testkey" {
            // Release builds (OpenTofu's and ours) have no `static` provider: the same key, given literally.
            hcl = format!("method \"aes_gcm\" \"example\" {{\n keys = {{ encryption_key = {k}, decryption_key = {k} }}\n}}\nstate {{ method = method.aes_gcm.example }}", k = format!("{:?}", b"ooph0eoghoh4ahruo7Quaeheeyoore1i".to_vec()));
        }
        std::fs::write(d.path().join("enc.hcl"), hcl).unwrap();
        let file = testdata(&format!("vectors/{}", v["encrypted"].as_str().unwrap()));
        // the target is inferred (the plan vector has no serial/lineage)
        let o = run(stateseal(d.path())
            .args(["--config", "enc.hcl", "decrypt"])
            .arg(&file));
        assert_eq!(o.code, 0, "{id}: {}", o.stderr);
        assert_eq!(
            sha256_hex(&o.stdout),
            v["plaintext_sha256"].as_str().unwrap(),
            "{id}"
        );
    }
}

/// Option combinations: each config encrypts and decrypts state and plan back to the same bytes.
#[test]
fn round_trips_for_every_option_combination() {
    let state = std::fs::read(testdata("vectors/state_plain.json")).unwrap();
    let plan = std::fs::read(testdata("vectors/plan_plain.zip")).unwrap();
    let providers = [
        "key_provider \"pbkdf2\" \"k\" { passphrase = \"correct-horse-battery-staple\" }",
        "key_provider \"pbkdf2\" \"k\" {\n passphrase = \"correct-horse-battery-staple\"\n hash_function = \"sha256\"\n iterations = 200000\n salt_length = 12\n key_length = 16\n}",
        "key_provider \"pbkdf2\" \"k\" {\n passphrase = \"correct-horse-battery-staple\"\n key_length = 24\n iterations = 200000\n encrypted_metadata_alias = \"shared-<&>\"\n}",
        "key_provider \"pbkdf2\" \"up\" {\n passphrase = \"upstream passphrase!\"\n iterations = 200000\n}\nkey_provider \"pbkdf2\" \"k\" {\n chain = key_provider.pbkdf2.up\n iterations = 200000\n}",
    ];
    let methods = [
        "method \"aes_gcm\" \"m\" { keys = key_provider.pbkdf2.k }",
        "method \"aes_gcm\" \"m\" {\n keys = key_provider.pbkdf2.k\n aad = [1, 2, 3]\n}",
    ];
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("state.json"), &state).unwrap();
    std::fs::write(d.path().join("plan.zip"), &plan).unwrap();
    for p in providers {
        for m in methods {
            let cfg = format!("{p}\n{m}\nstate {{ method = method.aes_gcm.m }}\nplan {{ method = method.aes_gcm.m }}\n");
            std::fs::write(d.path().join("enc.hcl"), &cfg).unwrap();
            for (input, plain) in [("state.json", &state), ("plan.zip", &plan)] {
                let o = run(stateseal(d.path())
                    .args(["--config", "enc.hcl", "encrypt", input, "-o", "out.enc"]));
                assert_eq!(o.code, 0, "{cfg}: {}", o.stderr);
                let o =
                    run(stateseal(d.path()).args(["--config", "enc.hcl", "decrypt", "out.enc"]));
                assert_eq!(o.code, 0, "{cfg}: {}", o.stderr);
                assert_eq!(&o.stdout, plain, "{cfg} {input}");
            }
        }
    }
}

#[test]
fn must_fail_cases_give_their_exit_code_one_line_and_no_output() {
    let cases: Value =
        serde_json::from_slice(&std::fs::read(testdata("fail/cases.json")).unwrap()).unwrap();
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("enc.hcl"), cases["config"].as_str().unwrap()).unwrap();
    for c in cases["cases"].as_array().unwrap() {
        let file = c["file"].as_str().unwrap();
        let src = testdata(&format!("fail/{file}"));
        let o = run(stateseal(d.path())
            .args(["--config", "enc.hcl", "decrypt", "--target", "state"])
            .arg(&src)
            .args(["-o", "out.json"]));
        assert_eq!(
            o.code,
            c["exit"].as_i64().unwrap() as i32,
            "{file}: {}",
            o.stderr
        );
        assert_eq!(
            o.stderr.lines().count(),
            1,
            "{file}: one line: {}",
            o.stderr
        );
        assert!(
            o.stderr.starts_with("error: ") && o.stderr.contains("(fix: "),
            "{file}: {}",
            o.stderr
        );
        assert!(
            o.stderr.contains(c["message"].as_str().unwrap()),
            "{file}: {}",
            o.stderr
        );
        assert!(
            !d.path().join("out.json").exists(),
            "{file}: no output file"
        );
        // rekey leaves the file untouched
        let copy = d.path().join(file);
        std::fs::copy(&src, &copy).unwrap();
        let o =
            run(stateseal(d.path())
                .args(["--config", "enc.hcl", "rekey", "--target", "state", file]));
        assert_eq!(
            o.code,
            c["exit"].as_i64().unwrap() as i32,
            "{file}: {}",
            o.stderr
        );
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            std::fs::read(&src).unwrap(),
            "{file}: unchanged by rekey"
        );
    }
    // an existing output file is not touched either
    std::fs::write(d.path().join("out.json"), "keep me").unwrap();
    let o = run(stateseal(d.path())
        .args(["--config", "enc.hcl", "decrypt"])
        .arg(testdata("fail/fail_flipped_tag.enc.json"))
        .args(["-o", "out.json"]));
    assert_eq!(o.code, 4);
    assert_eq!(
        std::fs::read_to_string(d.path().join("out.json")).unwrap(),
        "keep me"
    );
}

#[test]
fn plaintext_without_unencrypted_method_and_double_encryption_are_refused() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("enc.hcl"),
        format!("{PBKDF2_MAIN}state {{ method = method.aes_gcm.main }}\n"),
    )
    .unwrap();
    let o = run(stateseal(d.path())
        .args(["--config", "enc.hcl", "decrypt"])
        .arg(testdata("vectors/state_plain.json")));
    assert_eq!(o.code, 5);
    assert!(
        o.stderr
            .contains("encountered unencrypted payload without unencrypted method configured"),
        "{}",
        o.stderr
    );
    let o = run(stateseal(d.path())
        .args(["--config", "enc.hcl", "encrypt"])
        .arg(testdata("vectors/state_pbkdf2_aesgcm.enc.json")));
    assert_eq!(o.code, 5);
    assert!(
        o.stderr.contains("already encrypted") && o.stderr.contains("stateseal rekey"),
        "{}",
        o.stderr
    );
    // with no configuration at all, an envelope is refused with OpenTofu's message
    let o = run(stateseal(d.path())
        .arg("decrypt")
        .arg(testdata("vectors/state_pbkdf2_aesgcm.enc.json")));
    assert_eq!(o.code, 5);
    assert!(
        o.stderr
            .contains("can not be read without an encryption configuration"),
        "{}",
        o.stderr
    );
}

/// Writes old.hcl (pbkdf2 `main`), new.hcl (only `next`) and rot.hcl (`next`, falling back to
/// `main`) into `dir`: a key rotation for the rekey tests.
fn write_rotation_configs(dir: &std::path::Path) {
    let old = format!("{PBKDF2_MAIN}state {{ method = method.aes_gcm.main }}\n");
    let new_only = "key_provider \"pbkdf2\" \"next\" { passphrase = \"the next passphrase, rotated\" }\nmethod \"aes_gcm\" \"next\" { keys = key_provider.pbkdf2.next }\nstate { method = method.aes_gcm.next }\n";
    let rotation = format!("{PBKDF2_MAIN}key_provider \"pbkdf2\" \"next\" {{ passphrase = \"the next passphrase, rotated\" }}\nmethod \"aes_gcm\" \"next\" {{ keys = key_provider.pbkdf2.next }}\nstate {{\n  method = method.aes_gcm.next\n  fallback {{ method = method.aes_gcm.main }}\n}}\n");
    std::fs::write(dir.join("old.hcl"), old).unwrap();
    std::fs::write(dir.join("new.hcl"), new_only).unwrap();
    std::fs::write(dir.join("rot.hcl"), rotation).unwrap();
}

/// A file of 8 MiB or more is read into huge-page memory and rekeyed there, decrypted in place:
/// the report still names what the file was (its size and metadata, taken before decrypting
/// over them), and the new key opens exactly the old plaintext.
#[test]
fn rekey_of_a_large_file_decrypts_in_place_and_reports_what_it_was() {
    let d = tempfile::tempdir().unwrap();
    write_rotation_configs(d.path());
    let plain = format!(
        "{{\"version\":4,\"terraform_version\":\"1.9.0\",\"serial\":3,\"lineage\":\"big\",\"outputs\":{{\"blob\":{{\"value\":\"{}\",\"type\":\"string\"}}}},\"resources\":[]}}\n",
        "x".repeat(9 << 20)
    );
    std::fs::write(d.path().join("plain.json"), &plain).unwrap();
    let o = run(stateseal(d.path()).args([
        "--config",
        "old.hcl",
        "encrypt",
        "plain.json",
        "-o",
        "big.tfstate",
    ]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let size = std::fs::metadata(d.path().join("big.tfstate"))
        .unwrap()
        .len();
    assert!(size >= 8 << 20, "{size}");

    let o = run(stateseal(d.path()).args(["--config", "rot.hcl", "rekey", "big.tfstate"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report = String::from_utf8(o.stdout).unwrap();
    assert!(
        report.contains(&format!("({size} bytes → "))
            && report.contains("was encrypted with metadata key_provider.pbkdf2.main")
            && report.contains("read with a fallback method"),
        "{report}"
    );
    let o = run(stateseal(d.path()).args(["--config", "new.hcl", "decrypt", "big.tfstate"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout == plain.as_bytes(),
        "the rekeyed file decrypts to the original"
    );
}

#[test]
fn rekey_moves_a_file_from_the_fallback_to_the_primary() {
    let d = tempfile::tempdir().unwrap();
    write_rotation_configs(d.path());
    std::fs::copy(
        testdata("vectors/state_pbkdf2_aesgcm.enc.json"),
        d.path().join("a.tfstate"),
    )
    .unwrap();
    std::fs::copy(
        testdata("vectors/state_pbkdf2_aesgcm.enc.json"),
        d.path().join("b.tfstate"),
    )
    .unwrap();

    // reading through the fallback works but warns, naming `stateseal rekey`
    let o = run(stateseal(d.path()).args(["--config", "rot.hcl", "decrypt", "a.tfstate"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains("warning:") && o.stderr.contains("stateseal rekey a.tfstate"),
        "{}",
        o.stderr
    );

    let o =
        run(stateseal(d.path()).args(["--config", "rot.hcl", "rekey", "a.tfstate", "b.tfstate"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report = String::from_utf8(o.stdout).unwrap();
    assert_eq!(report.lines().count(), 2, "{report}");
    assert!(
        report.contains("a.tfstate: rekeyed state")
            && report.contains("read with a fallback method")
            && report.contains("key_provider.pbkdf2.next"),
        "{report}"
    );

    let plain = std::fs::read(testdata("vectors/state_plain.json")).unwrap();
    let o = run(stateseal(d.path()).args(["--config", "new.hcl", "decrypt", "a.tfstate"]));
    assert_eq!((o.code, o.stdout == plain), (0, true), "{}", o.stderr);
    assert!(o.stderr.is_empty(), "no warning after rekey: {}", o.stderr);
    let o = run(stateseal(d.path()).args(["--config", "old.hcl", "decrypt", "b.tfstate"]));
    assert_eq!(
        o.code, 4,
        "the old passphrase no longer opens it: {}",
        o.stderr
    );
}

#[test]
fn configuration_comes_from_the_directory_variables_and_tf_encryption() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("main.tf"),
        "variable \"passphrase\" {\n  type      = string\n  sensitive = true\n}\nvariable \"iters\" { default = 200000 }\nlocals { provider_name = \"main\" }\nterraform {\n  encryption {\n    key_provider \"pbkdf2\" \"main\" {\n      passphrase = var.passphrase\n      iterations = var.iters\n    }\n    method \"aes_gcm\" \"main\" { keys = key_provider.pbkdf2.main }\n    state {\n      enforced = true\n      method   = method.aes_gcm.main\n    }\n  }\n}\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("state.json"),
        std::fs::read(testdata("vectors/state_plain.json")).unwrap(),
    )
    .unwrap();
    let sub = d.path().join("elsewhere");
    std::fs::create_dir(&sub).unwrap();
    // --chdir, --var
    let o = run(stateseal(&sub).args(["--chdir", ".."]).args([
        "--var",
        "passphrase=correct-horse-battery-staple",
        "encrypt",
        "state.json",
        "-o",
        "s.enc",
    ]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    // TF_VAR_
    let o = run(stateseal(d.path())
        .env("TF_VAR_passphrase", "correct-horse-battery-staple")
        .args(["decrypt", "s.enc"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    // --var-file
    std::fs::write(
        d.path().join("secrets.tfvars"),
        "passphrase = \"correct-horse-battery-staple\"\n",
    )
    .unwrap();
    let o = run(stateseal(d.path()).args(["--var-file", "secrets.tfvars", "decrypt", "s.enc"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    // a missing variable is a configuration error that names it and points at the line
    let o = run(stateseal(d.path()).args(["decrypt", "s.enc"]));
    assert_eq!(o.code, 3);
    assert!(
        o.stderr.contains("main.tf:10:") && o.stderr.contains("var.passphrase has no value"),
        "{}",
        o.stderr
    );
    // TF_ENCRYPTION (JSON) merges over the code: the env passphrase wins
    let env =
        r#"{"key_provider":{"pbkdf2":{"main":{"passphrase":"correct-horse-battery-staple"}}}}"#;
    let o = run(stateseal(d.path())
        .env("TF_ENCRYPTION", env)
        .args(["decrypt", "s.enc"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    // enforced refuses plaintext even with an unencrypted fallback (config-time error)
    let env = "method \"unencrypted\" \"u\" {}\nstate {\n  method = method.aes_gcm.main\n  fallback { method = method.unencrypted.u }\n}\n";
    let o = run(stateseal(d.path()).env("TF_ENCRYPTION", env).args([
        "--var",
        "passphrase=correct-horse-battery-staple",
        "decrypt",
        "state.json",
    ]));
    assert_eq!(o.code, 3);
    assert!(
        o.stderr.contains("Unencrypted method is forbidden"),
        "{}",
        o.stderr
    );
}

#[test]
fn validate_reports_problems_with_file_and_line() {
    let cases = [
        ("method \"aes_gcm\" \"m\" { keys = key_provider.pbkdf2.nope }\nstate { method = method.aes_gcm.m }\n", "Reference to undeclared key provider", 1),
        ("key_provider \"pbkdf2\" \"a\" { chain = key_provider.pbkdf2.b }\nkey_provider \"pbkdf2\" \"b\" { chain = key_provider.pbkdf2.a }\nmethod \"aes_gcm\" \"m\" { keys = key_provider.pbkdf2.a }\nstate { method = method.aes_gcm.m }\n", "Circular reference detected", 1),
        ("method \"unencrypted\" \"u\" {}\n\nstate { method = method.aes_gcm.missing }\n", "Reference to undeclared encryption method", 3),
        ("method \"unencrypted\" \"u\" {}\nstate {\n  method   = method.unencrypted.u\n  enforced = true\n}\n", "Unencrypted method is forbidden", 2),
        ("key_provider \"pbkdf2\" \"a\" { passphrase = \"short\" }\nmethod \"aes_gcm\" \"m\" { keys = key_provider.pbkdf2.a }\nstate { method = method.aes_gcm.m }\n", "passphrase is too short (minimum 16 characters)", 1),
        ("state {}\n", "Invalid expression", 1),
        // OpenTofu's aws_kms takes assume_role as an attribute (an object), never as a block.
        ("key_provider \"aws_kms\" \"k\" {\n  kms_key_id = \"alias/x\"\n  key_spec = \"AES_256\"\n  region = \"us-east-1\"\n  assume_role {\n    role_arn = \"arn:aws:iam::123456789012:role/x\"\n  }\n}\nmethod \"aes_gcm\" \"m\" { keys = key_provider.aws_kms.k }\nstate { method = method.aes_gcm.m }\n", "Blocks of type \"assume_role\" are not expected here", 5),
    ];
    for (body, message, line) in cases {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("main.tf"),
            format!("terraform {{\n  encryption {{\n{body}  }}\n}}\n"),
        )
        .unwrap();
        let o = run(stateseal(d.path()).arg("validate"));
        assert_eq!(o.code, 3, "{body}: {}", o.stderr);
        let want = format!("main.tf:{}:", line + 2);
        assert!(
            o.stderr.contains(message) && o.stderr.contains(&want),
            "{body}: want {message} at {want}: {}",
            o.stderr
        );
    }
    // an empty encryption block is valid in OpenTofu: a warning, exit 0
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("main.tf"),
        "terraform {\n  encryption {}\n}\n",
    )
    .unwrap();
    let o = run(stateseal(d.path()).arg("validate"));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains("warning: ")
            && o.stderr.contains("main.tf:2:")
            && o.stderr.contains("Empty encryption configuration"),
        "{}",
        o.stderr
    );
    // a valid configuration lists providers, methods and targets
    std::fs::write(d.path().join("main.tf"), format!("terraform {{\n  encryption {{\n{PBKDF2_MAIN}state {{ method = method.aes_gcm.main }}\n  }}\n}}\n")).unwrap();
    let o = run(stateseal(d.path()).args(["validate", "--json"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["key_providers"][0]["address"], "key_provider.pbkdf2.main");
    assert_eq!(v["targets"][0]["methods"][0], "method.aes_gcm.main");
}

#[test]
fn inspect_needs_no_key() {
    let d = tempfile::tempdir().unwrap();
    let o = run(stateseal(d.path())
        .args(["inspect", "--json"])
        .arg(testdata("vectors/state_pbkdf2_alias_aad.enc.json")));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["report"];
    assert_eq!(
        (
            r["encrypted"].as_bool(),
            r["kind"].as_str(),
            r["serial"].as_i64()
        ),
        (Some(true), Some("state"), Some(3))
    );
    let m = &r["metadata"][0];
    assert_eq!(
        (
            m["key"].as_str(),
            m["alias"].as_bool(),
            m["provider_type"].as_str()
        ),
        (Some("certificates"), Some(true), Some("pbkdf2"))
    );
    assert_eq!(m["details"]["iterations"], 600000);
    let o = run(stateseal(d.path())
        .arg("inspect")
        .arg(testdata("vectors/plan_pbkdf2_aesgcm.enc.json")));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("kind:       plan") && text.contains("key_provider.pbkdf2.main  [pbkdf2] iterations=600000 hash_function=sha512 key_length=32 salt_bytes=32"), "{text}");
    let o = run(stateseal(d.path())
        .arg("inspect")
        .arg(testdata("fail/fail_version_v9.enc.json")));
    assert!(String::from_utf8(o.stdout).unwrap().contains("UNSUPPORTED"));
}

#[test]
fn remote_state_targets_use_their_named_block_else_default() {
    let key = |b: u8| format!("[{}]", vec![b.to_string(); 32].join(","));
    let d = tempfile::tempdir().unwrap();
    let cfg = format!(
        "method \"aes_gcm\" \"a\" {{\n keys = {{ encryption_key = {a}, decryption_key = {a} }}\n}}\n\
         method \"aes_gcm\" \"b\" {{\n keys = {{ encryption_key = {b}, decryption_key = {b} }}\n}}\n\
         remote_state_data_sources {{\n  default {{ method = method.aes_gcm.a }}\n  remote_state_data_source \"mymod.network\" {{ method = method.aes_gcm.b }}\n}}\n",
        a = key(1),
        b = key(2)
    );
    std::fs::write(d.path().join("enc.hcl"), cfg).unwrap();
    std::fs::write(
        d.path().join("state.json"),
        std::fs::read(testdata("vectors/state_plain.json")).unwrap(),
    )
    .unwrap();
    let enc = |target: &str, out: &str| {
        run(stateseal(d.path()).args([
            "--config",
            "enc.hcl",
            "encrypt",
            "--target",
            target,
            "state.json",
            "-o",
            out,
        ]))
    };
    let dec = |target: &str, file: &str| {
        run(stateseal(d.path()).args(["--config", "enc.hcl", "decrypt", "--target", target, file]))
    };
    assert_eq!(enc("remote:mymod.network", "named.enc").code, 0);
    assert_eq!(enc("remote:other", "default.enc").code, 0);
    // each file opens only with its own block's key
    assert_eq!(dec("remote:mymod.network", "named.enc").code, 0);
    assert_eq!(dec("remote:anything", "default.enc").code, 0);
    assert_eq!(dec("remote:mymod.network", "default.enc").code, 4);
    assert_eq!(dec("remote:anything", "named.enc").code, 4);
    // the state target has no block here: encrypting for it is refused, with a fix
    let o = enc("state", "s.enc");
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("no encryption is configured for the state target"),
        "{}",
        o.stderr
    );
    let o = run(stateseal(d.path()).args(["decrypt", "--target", "remote:", "named.enc"]));
    assert_eq!(
        o.code, 2,
        "a malformed --target is a usage error: {}",
        o.stderr
    );
}

/// `state_plain.json` with its serial and lineage replaced (and an output, so content differs).
fn state_with(serial: u64, lineage: &str, output: &str) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(testdata("vectors/state_plain.json")).unwrap())
            .unwrap();
    v["serial"] = serial.into();
    v["lineage"] = lineage.into();
    v["outputs"] = serde_json::json!({ "marker": { "value": output, "type": "string" } });
    serde_json::to_vec_pretty(&v).unwrap()
}

fn stored_header(path: &Path) -> (u64, String, String) {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    (
        v["serial"].as_u64().unwrap(),
        v["lineage"].as_str().unwrap().to_string(),
        v["outputs"]["marker"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// BACKENDS.md §1: `state push` refuses another lineage, a lower serial, and the same serial
/// with other content, leaving the stored state untouched; `--force` overrides each.
#[test]
fn state_push_on_the_local_backend_refuses_other_lineages_and_lower_serials_unless_forced() {
    let d = tempfile::tempdir().unwrap();
    let stored = d.path().join("terraform.tfstate");
    let push = |name: &str, body: Vec<u8>, force: bool| {
        std::fs::write(d.path().join(name), body).unwrap();
        let mut c = stateseal(d.path());
        c.args(["state", "push", name]);
        if force {
            c.arg("--force");
        }
        run(&mut c)
    };
    const L1: &str = "11111111-1111-4111-8111-111111111111";
    const L2: &str = "22222222-2222-4222-8222-222222222222";
    let o = push("first.json", state_with(5, L1, "first"), false);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(stored_header(&stored), (5, L1.into(), "first".into()));
    let before = std::fs::read(&stored).unwrap();

    let refusals = [
        (
            state_with(9, L2, "other lineage"),
            format!("cannot import state with lineage \"{L2}\" over unrelated state with lineage \"{L1}\""),
        ),
        (
            state_with(4, L1, "older"),
            "cannot import state with serial 4 over newer state with serial 5".to_string(),
        ),
        (
            state_with(5, L1, "same serial, other content"),
            "cannot overwrite existing state with serial 5 with a different state that has the same serial".to_string(),
        ),
    ];
    for (body, message) in &refusals {
        let o = push("refused.json", body.clone(), false);
        assert_eq!(o.code, 1, "{message}: {}", o.stderr);
        assert!(
            o.stderr.contains(message.as_str()),
            "{message}: {}",
            o.stderr
        );
        assert!(o.stderr.contains("--force"), "{}", o.stderr);
        assert_eq!(
            std::fs::read(&stored).unwrap(),
            before,
            "{message}: the stored state is untouched"
        );
    }

    // --force overrides each; the stored serial is the pushed one + 1 (OpenTofu's rule)
    let o = push("forced.json", state_with(9, L2, "other lineage"), true);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        stored_header(&stored),
        (10, L2.into(), "other lineage".into())
    );
    let o = push("forced.json", state_with(2, L2, "older"), true);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(stored_header(&stored), (3, L2.into(), "older".into()));
    let o = push("forced.json", state_with(3, L2, "same serial"), true);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(stored_header(&stored), (4, L2.into(), "same serial".into()));
}

/// Opens a pbkdf2 + aes_gcm envelope with ring directly, following ENCRYPTION-FORMAT.md (the
/// rules the vectors were written by), not with stateseal's own key provider and method code.
fn open_envelope_independently(envelope: &[u8], passphrase: &str, meta_key: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let env: Value = serde_json::from_slice(envelope).unwrap();
    assert_eq!(env["encryption_version"], "v0");
    let meta: Value =
        serde_json::from_slice(&b64.decode(env["meta"][meta_key].as_str().unwrap()).unwrap())
            .unwrap();
    let salt = b64.decode(meta["salt"].as_str().unwrap()).unwrap();
    let iterations = meta["iterations"].as_u64().unwrap() as u32;
    let alg = match meta["hash_function"].as_str().unwrap() {
        "sha256" => ring::pbkdf2::PBKDF2_HMAC_SHA256,
        "sha512" => ring::pbkdf2::PBKDF2_HMAC_SHA512,
        other => panic!("hash {other}"),
    };
    let mut key = vec![0u8; meta["key_length"].as_u64().unwrap() as usize];
    ring::pbkdf2::derive(
        alg,
        std::num::NonZeroU32::new(iterations).unwrap(),
        &salt,
        passphrase.as_bytes(),
        &mut key,
    );
    let aead_alg = match key.len() {
        16 => &ring::aead::AES_128_GCM,
        32 => &ring::aead::AES_256_GCM,
        n => panic!("key length {n}"),
    };
    let key = ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(aead_alg, &key).unwrap());
    let mut data = b64.decode(env["encrypted_data"].as_str().unwrap()).unwrap();
    let nonce = ring::aead::Nonce::try_assume_unique_for_key(&data[..12]).unwrap();
    let plain = key
        .open_within(nonce, ring::aead::Aad::empty(), &mut data, 12..)
        .unwrap();
    plain.to_vec()
}

/// Encryption through the local backend (not only S3): what `state push` leaves on disk is a
/// state envelope that opens under the format's rules with the configured passphrase, and
/// `state pull` gives the state back.
#[test]
fn state_push_through_the_local_backend_writes_an_envelope() {
    let d = tempfile::tempdir().unwrap();
    // vector state-pbkdf2-aesgcm's configuration (sha512, 600000 iterations, 32-byte key)
    std::fs::write(
        d.path().join("main.tf"),
        format!("terraform {{\n  backend \"local\" {{ path = \"states/app.tfstate\" }}\n  encryption {{\n{PBKDF2_MAIN}state {{ method = method.aes_gcm.main }}\n  }}\n}}\n"),
    )
    .unwrap();
    std::fs::create_dir(d.path().join("states")).unwrap();
    let plain = std::fs::read(testdata("vectors/state_plain.json")).unwrap();
    std::fs::write(d.path().join("plain.json"), &plain).unwrap();
    let o = run(stateseal(d.path()).args(["state", "push", "plain.json"]));
    assert_eq!(o.code, 0, "{}", o.stderr);

    let on_disk = std::fs::read(d.path().join("states/app.tfstate")).unwrap();
    let header: Value = serde_json::from_slice(&on_disk).unwrap();
    assert_eq!(
        header["lineage"], "5b3c0f4e-2d7a-4c1e-9a8b-0f1e2d3c4b5a",
        "{header}"
    );
    assert_eq!(header["serial"], 3, "a new state keeps its serial");
    assert!(header.get("resources").is_none(), "no plaintext: {header}");
    let opened = open_envelope_independently(
        &on_disk,
        "correct-horse-battery-staple",
        "key_provider.pbkdf2.main",
    );
    assert_eq!(opened, plain);

    let o = run(stateseal(d.path()).args(["state", "pull"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, plain);
}
