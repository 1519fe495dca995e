//! Real OpenTofu (`tofu`, built from its Go module by `scripts/peers/tofu.sh`) against stateseal:
//! every compatibility claim checked against `tofu` itself, on each pinned release. One module
//! per area; they share the helpers below.

mod errored;
mod files;
mod fleet;
mod parity;
mod recovery;
mod s3;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use stateseal_testkit::Tofu;

/// What a stateseal run returned.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// The stateseal binary in `dir` with `env` set and nothing inherited that changes what it does.
pub fn stateseal(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = Command::cargo_bin("stateseal").unwrap();
    c.current_dir(dir)
        .env_remove("TF_ENCRYPTION")
        .env_remove("TF_WORKSPACE");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TF_VAR_")) {
        c.env_remove(k);
    }
    c.envs(env.iter().copied()).args(args);
    let o = c.output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// [`stateseal`], panicking with its output unless it exits 0.
pub fn stateseal_ok(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let r = stateseal(dir, env, args);
    assert_eq!(
        r.code,
        0,
        "stateseal {args:?} in {} failed:\n{}\n{}",
        dir.display(),
        r.text(),
        r.stderr
    );
    r
}

/// stdout as JSON, or a panic that shows it.
pub fn json(r: &Run) -> Value {
    serde_json::from_slice(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

/// The resource and outputs every working directory applies: `greeting` comes from the resource
/// (so a lost state shows as a change in `tofu plan`), `secret` is sensitive.
pub const RESOURCES: &str = r#"
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

/// `main.tf`: `terraform { encryption { BODY } }` (none when BODY is empty), then `rest`.
pub fn main_tf(body: &str, rest: &str) -> String {
    let enc = if body.trim().is_empty() {
        String::new()
    } else {
        format!("terraform {{\n  encryption {{\n{body}\n  }}\n}}\n")
    };
    format!("{enc}{rest}")
}

/// A pbkdf2 key provider `NAME` with `passphrase` and extra attributes, and an aes_gcm method
/// of the same name using it.
pub fn pbkdf2(name: &str, passphrase: &str, extra: &str) -> String {
    format!(
        r#"
key_provider "pbkdf2" "{name}" {{
  passphrase = "{passphrase}"
  iterations = 200000
  {extra}
}}
method "aes_gcm" "{name}" {{
  keys = key_provider.pbkdf2.{name}
}}
"#
    )
}

/// One working directory driven by one `tofu` release and by stateseal, with the same
/// environment for both.
pub struct Work<'a> {
    pub tofu: &'a Tofu,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl<'a> Work<'a> {
    /// A directory whose `main.tf` is [`main_tf`]`(body, RESOURCES)`.
    pub fn new(tofu: &'a Tofu, body: &str) -> Work<'a> {
        let w = Work {
            tofu,
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        };
        w.configure(body);
        w
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Rewrites `main.tf` with another encryption block (the same resources).
    pub fn configure(&self, body: &str) {
        self.write("main.tf", &main_tf(body, RESOURCES));
    }

    pub fn write(&self, name: &str, content: &str) {
        std::fs::write(self.file(name), content).unwrap();
    }

    pub fn with_env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// One `tofu` command with this directory's environment.
    pub fn tofu(&self, args: &[&str]) -> Output {
        self.tofu.output(self.path(), args, |c| {
            c.envs(self.env());
        })
    }

    /// [`Work::tofu`], panicking with its output unless it succeeds; returns stdout.
    pub fn tofu_ok(&self, args: &[&str]) -> String {
        let out = self.tofu(args);
        assert!(
            out.status.success(),
            "tofu {} {args:?} failed ({}):\n{}\n{}",
            self.tofu.version,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a `tofu` command that must fail; returns its diagnostics as one line of plain text
    /// (no colours, boxes or wrapping), for matching messages.
    pub fn tofu_fails(&self, args: &[&str]) -> String {
        let out = self.tofu(args);
        assert!(
            !out.status.success(),
            "tofu {} {args:?} succeeded",
            self.tofu.version
        );
        plain_text(&[out.stdout, out.stderr].concat())
    }

    pub fn stateseal(&self, args: &[&str]) -> Run {
        stateseal(self.path(), &self.env(), args)
    }

    pub fn stateseal_ok(&self, args: &[&str]) -> Run {
        stateseal_ok(self.path(), &self.env(), args)
    }

    /// `tofu init` and `tofu apply`.
    pub fn apply(&self) {
        self.tofu_ok(&["init"]);
        self.tofu_ok(&["apply", "-auto-approve"]);
    }

    /// The state file as JSON.
    pub fn state_file(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.file("terraform.tfstate")).unwrap()).unwrap()
    }

    /// The state file is an OpenTofu envelope (or plaintext when `encrypted` is false).
    pub fn assert_state_encrypted(&self, encrypted: bool) {
        let v = self.state_file();
        assert_eq!(
            v.get("encrypted_data").is_some(),
            encrypted,
            "tofu {}: encrypted state expected {encrypted}: {v}",
            self.tofu.version
        );
    }

    /// `stateseal decrypt terraform.tfstate` equals `tofu state pull`; returns it.
    pub fn assert_decrypt_is_state_pull(&self) -> Value {
        let ours = json(&self.stateseal_ok(&["decrypt", "terraform.tfstate"]));
        let theirs: Value = serde_json::from_str(&self.tofu_ok(&["state", "pull"])).unwrap();
        assert_eq!(ours, theirs, "tofu {}", self.tofu.version);
        ours
    }

    /// `tofu plan -detailed-exitcode` exits 0 (no changes, the state was read), and `tofu
    /// output -json` shows both outputs.
    pub fn assert_tofu_reads_state(&self) {
        let plan = self.tofu(&["plan", "-detailed-exitcode"]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "tofu {} plan shows changes or fails:\n{}\n{}",
            self.tofu.version,
            String::from_utf8_lossy(&plan.stdout),
            String::from_utf8_lossy(&plan.stderr)
        );
        let out: Value = serde_json::from_str(&self.tofu_ok(&["output", "-json"])).unwrap();
        assert_eq!(out["greeting"]["value"], "hello", "{out}");
        assert_eq!(out["secret"]["value"], "s3cr3t", "{out}");
        assert_eq!(out["secret"]["sensitive"], true, "{out}");
    }

    /// stateseal writes the state: `stateseal encrypt` of `plain` replaces terraform.tfstate
    /// with a fresh envelope, which `tofu` then reads.
    pub fn stateseal_encrypts(&self, plain: &Value) {
        self.write("plain.json", &plain.to_string());
        let before = std::fs::read(self.file("terraform.tfstate")).ok();
        self.stateseal_ok(&["encrypt", "plain.json", "-o", "terraform.tfstate"]);
        std::fs::remove_file(self.file("plain.json")).unwrap();
        assert_ne!(
            before,
            Some(std::fs::read(self.file("terraform.tfstate")).unwrap())
        );
        self.assert_state_encrypted(true);
        self.assert_tofu_reads_state();
    }

    /// Both ways with this directory's configuration: `tofu` writes and stateseal reads (as
    /// `tofu state pull` does); stateseal writes and `tofu` reads (no changes, the outputs).
    pub fn both_ways(&self) {
        self.apply();
        self.assert_state_encrypted(true);
        let plain = self.assert_decrypt_is_state_pull();
        assert_eq!(plain["outputs"]["greeting"]["value"], "hello");
        self.stateseal_encrypts(&plain);
    }
}

/// `tofu`'s terminal output as one line of words: ANSI escapes and box-drawing removed,
/// whitespace (including its line wrapping) collapsed.
pub fn plain_text(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters final-byte.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            '│' | '╷' | '╵' => clean.push(' '),
            c => clean.push(c),
        }
    }
    clean.split_whitespace().collect::<Vec<_>>().join(" ")
}
