//! Configurations as OpenTofu users write them, with no peers needed (local backend): a backend
//! block that uses variables (OpenTofu 1.8+ early evaluation), `outputs` with only a `state`
//! target and with `--remote-state`, one line per diagnostic, and the 1.11–1.13 changes that the
//! CLI sees (`TF_ENCRYPTION` of only whitespace, plain-string `key_provider` references in JSON).

use std::path::Path;

use serde_json::Value;

const STATE: &str = r#"{"version":4,"terraform_version":"1.12.0","serial":7,"lineage":"parity","outputs":{"name":{"value":"web","type":"string"},"token":{"value":"t0k","type":"string","sensitive":true}},"resources":[]}"#;

/// A pbkdf2 + aes_gcm configuration whose passphrase is a variable, for the state target only.
const STATE_ONLY: &str = r#"variable "passphrase" {
  type      = string
  sensitive = true
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
  }
}
"#;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The binary in `dir` with `env` set and nothing inherited that changes its behaviour (the
/// tofu tests' runner, with stdout as text).
fn stateseal(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    let r = crate::tofu::stateseal(dir, env, args);
    Out {
        code: r.code,
        stdout: r.text(),
        stderr: r.stderr,
    }
}

fn ok(o: Out, what: &str) -> Out {
    assert_eq!(o.code, 0, "{what} failed:\n{}\n{}", o.stdout, o.stderr);
    o
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(d.path().join(name), content).unwrap();
    }
    d
}

const PASS: (&str, &str) = ("TF_VAR_passphrase", "a passphrase of sixteen+ chars");

#[test]
fn outputs_reads_the_state_target_like_tofu_output() {
    let d = dir_with(&[("main.tf", STATE_ONLY), ("plain.json", STATE)]);
    ok(
        stateseal(d.path(), &[PASS], &["state", "push", "plain.json"]),
        "push",
    );
    let stored = std::fs::read_to_string(d.path().join("terraform.tfstate")).unwrap();
    assert!(
        stored.contains("encryption_version"),
        "stored encrypted: {stored}"
    );

    let human = ok(stateseal(d.path(), &[PASS], &["outputs"]), "outputs");
    assert_eq!(human.stdout, "name = \"web\"\ntoken = <sensitive>\n");
    let json: Value = serde_json::from_str(
        &ok(
            stateseal(d.path(), &[PASS], &["outputs", "--json"]),
            "outputs --json",
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(json["name"]["value"], "web");
    assert_eq!(json["token"]["sensitive"], true);

    // --remote-state reads as terraform_remote_state does: this configuration has no
    // remote_state_data_sources, so an encrypted state cannot be read that way.
    let remote = stateseal(d.path(), &[PASS], &["outputs", "--remote-state", "net"]);
    assert_eq!(remote.code, 5, "{}", remote.stderr);
    assert!(
        remote.stderr.contains("add remote_state_data_sources"),
        "{}",
        remote.stderr
    );
}

#[test]
fn outputs_remote_state_follows_remote_state_data_sources() {
    let config = STATE_ONLY.replace(
        "    state {",
        "    key_provider \"pbkdf2\" \"other\" {\n      passphrase = \"a different passphrase entirely\"\n    }\n    method \"aes_gcm\" \"other\" {\n      keys = key_provider.pbkdf2.other\n    }\n    remote_state_data_sources {\n      default {\n        method = method.aes_gcm.other\n      }\n      remote_state_data_source \"net\" {\n        method = method.aes_gcm.main\n      }\n    }\n    state {",
    );
    let d = dir_with(&[("main.tf", &config), ("plain.json", STATE)]);
    ok(
        stateseal(d.path(), &[PASS], &["state", "push", "plain.json"]),
        "push",
    );
    // The named block has the state's method: it reads.
    let named = ok(
        stateseal(d.path(), &[PASS], &["outputs", "--remote-state", "net"]),
        "outputs --remote-state net",
    );
    assert!(named.stdout.contains("name = \"web\""), "{}", named.stdout);
    // Any other name falls back to default, whose key is another one: decryption fails.
    let other = stateseal(
        d.path(),
        &[PASS],
        &["outputs", "--remote-state", "mod.other"],
    );
    assert_eq!(other.code, 4, "{}", other.stderr);
}

#[test]
fn three_errors_print_three_lines_and_one_fix() {
    let d = dir_with(&[(
        "main.tf",
        "variable \"a\" {}\nvariable \"b\" {}\nvariable \"c\" {}\nterraform {\n  backend \"local\" {\n    path          = \"${var.a}.tfstate\"\n    workspace_dir = var.b\n    oops          = var.c\n  }\n}\n",
    )]);
    let o = stateseal(d.path(), &[], &["state", "pull"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", o.stderr);
    for (line, (n, var)) in lines.iter().zip([(6, "a"), (7, "b"), (8, "c")]) {
        assert!(line.starts_with("error: "), "{line}");
        assert!(
            line.contains(&format!(
                "main.tf:{n}:5: No value for required variable: var.{var} "
            )),
            "{line}"
        );
    }
    assert_eq!(o.stderr.matches("(fix: ").count(), 1, "{}", o.stderr);
    assert!(
        lines[2].contains("(fix: "),
        "the fix ends the last line: {}",
        o.stderr
    );

    // The same for the encryption configuration.
    std::fs::write(
        d.path().join("main.tf"),
        "terraform {\n  encryption {\n    a = 1\n    b = 2\n    c = 3\n  }\n}\n",
    )
    .unwrap();
    std::fs::write(d.path().join("plain.json"), STATE).unwrap();
    let o = stateseal(d.path(), &[], &["encrypt", "plain.json"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", o.stderr);
    for (line, n) in lines.iter().zip(3..) {
        assert!(
            line.starts_with("error: ") && line.contains(&format!("main.tf:{n}:5: ")),
            "{line}"
        );
    }
}

#[test]
fn backend_block_variables_come_from_every_source_opentofu_reads() {
    let main = "variable \"env\" {}\nvariable \"project\" {\n  default = \"app\"\n}\nlocals {\n  file = \"${var.project}-${var.env}.tfstate\"\n}\nterraform {\n  backend \"local\" {\n    path = local.file\n  }\n}\n";
    let d = dir_with(&[("main.tf", main), ("plain.json", STATE)]);
    let missing = stateseal(d.path(), &[], &["state", "push", "plain.json"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    for want in [
        "main.tf:6:3: No value for required variable: var.env",
        "--var env=VALUE",
        "TF_VAR_env",
        "terraform.tfvars",
    ] {
        assert!(
            missing.stderr.contains(want),
            "{want:?} not in {}",
            missing.stderr
        );
    }
    let pushed = |file: &str| d.path().join(file).exists();
    ok(
        stateseal(
            d.path(),
            &[],
            &["--var", "env=cli", "state", "push", "plain.json"],
        ),
        "--var",
    );
    assert!(pushed("app-cli.tfstate"));
    ok(
        stateseal(
            d.path(),
            &[("TF_VAR_env", "envvar")],
            &["state", "push", "plain.json"],
        ),
        "TF_VAR_",
    );
    assert!(pushed("app-envvar.tfstate"));
    std::fs::write(d.path().join("x.tfvars"), "env = \"file\"\n").unwrap();
    ok(
        stateseal(
            d.path(),
            &[],
            &["--var-file", "x.tfvars", "state", "push", "plain.json"],
        ),
        "--var-file",
    );
    assert!(pushed("app-file.tfstate"));
    std::fs::write(d.path().join("terraform.tfvars"), "env = \"tfvars\"\n").unwrap();
    ok(
        stateseal(d.path(), &[], &["state", "push", "plain.json"]),
        "terraform.tfvars",
    );
    assert!(pushed("app-tfvars.tfstate"));
    std::fs::write(
        d.path().join("z.auto.tfvars"),
        "env = \"auto\"\nproject = \"svc\"\n",
    )
    .unwrap();
    ok(
        stateseal(d.path(), &[], &["state", "push", "plain.json"]),
        "*.auto.tfvars",
    );
    assert!(pushed("svc-auto.tfstate"));
    // --backend-config still overrides the block.
    ok(
        stateseal(
            d.path(),
            &[],
            &[
                "--backend-config",
                "path=over.tfstate",
                "state",
                "push",
                "plain.json",
            ],
        ),
        "--backend-config",
    );
    assert!(pushed("over.tfstate"));
}

#[test]
fn what_opentofu_refuses_in_a_backend_block_is_refused_with_its_diagnostic() {
    let d = dir_with(&[(
        "main.tf",
        "variable \"secret\" {\n  default   = \"s\"\n  sensitive = true\n}\nterraform {\n  backend \"local\" {\n    path = \"${var.secret}.tfstate\"\n  }\n}\n",
    )]);
    let o = stateseal(d.path(), &[], &["state", "pull"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("main.tf:6:3: Backend config contains sensitive values"),
        "{}",
        o.stderr
    );
    std::fs::write(
        d.path().join("main.tf"),
        "terraform {\n  backend \"local\" {\n    path = data.aws_s3_object.o.body\n    workspace_dir = module.m.dir\n  }\n}\n",
    )
    .unwrap();
    let o = stateseal(d.path(), &[], &["state", "pull"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("main.tf:3:5: Dynamic value in static context"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("main.tf:4:5: Module output not supported in static context"),
        "{}",
        o.stderr
    );
}

/// 1.12.5/1.12.6 (#4265): a `TF_ENCRYPTION` of only whitespace is the same as none.
#[test]
fn whitespace_tf_encryption_is_unset() {
    let d = dir_with(&[("main.tf", STATE_ONLY), ("plain.json", STATE)]);
    for (i, blank) in ["", " ", " \n\t \r\n"].into_iter().enumerate() {
        let out = format!("s{i}.enc");
        let o = stateseal(
            d.path(),
            &[PASS, ("TF_ENCRYPTION", blank)],
            &["encrypt", "plain.json", "-o", &out],
        );
        assert_eq!(o.code, 0, "TF_ENCRYPTION={blank:?}: {}", o.stderr);
        let back = ok(stateseal(d.path(), &[PASS], &["decrypt", &out]), "decrypt");
        assert_eq!(back.stdout, STATE);
    }
}

/// 1.12 (#3794, #3654): in JSON, `keys` and pbkdf2 `chain` take a plain string
/// `"key_provider.T.N"` as well as `"${key_provider.T.N}"`.
#[test]
fn json_key_provider_references_may_be_plain_strings() {
    let json = r#"{
  "terraform": {
    "encryption": {
      "key_provider": {
        "pbkdf2": {
          "base": {"passphrase": "the base passphrase, long enough"},
          "chained": {"chain": "key_provider.pbkdf2.base"},
          "templated": {"chain": "${key_provider.pbkdf2.base}"}
        }
      },
      "method": {
        "aes_gcm": {
          "plain": {"keys": "key_provider.pbkdf2.chained"},
          "templated": {"keys": "${key_provider.pbkdf2.templated}"}
        }
      },
      "state": {"method": "method.aes_gcm.plain", "fallback": {"method": "method.aes_gcm.templated"}}
    }
  }
}"#;
    let d = dir_with(&[("main.tf.json", json), ("plain.json", STATE)]);
    ok(
        stateseal(d.path(), &[], &["encrypt", "plain.json", "-o", "s.enc"]),
        "encrypt",
    );
    let envelope: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("s.enc")).unwrap()).unwrap();
    assert!(
        envelope["meta"]
            .get("key_provider.pbkdf2.chained")
            .is_some(),
        "{envelope}"
    );
    let back = ok(stateseal(d.path(), &[], &["decrypt", "s.enc"]), "decrypt");
    assert_eq!(back.stdout, STATE);
}
