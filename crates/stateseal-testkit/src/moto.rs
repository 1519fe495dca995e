//! Test access to moto (the AWS emulator) started by the test script.
//!
//! The endpoints come from the environment: `STATESEAL_TEST_AWS_ENDPOINT` (a plain moto) and
//! `STATESEAL_TEST_AWS_AUTH_ENDPOINT` (a moto of its own started with
//! `INITIAL_NO_AUTH_ACTION_COUNT=0`, for IAM enforcement). When a variable is unset the test
//! skips through [`crate::skip`]: a notice, or a failure when `STATESEAL_TEST_REQUIRE_PEERS` is
//! set (as `scripts/test.sh` does). Setup goes through `scripts/peers/aws.py` (boto3), run by
//! `$STATESEAL_TEST_PYTHON` or the repo's `.venv/bin/python`; boto3 also serves as an
//! independent client to check our output.
use std::path::PathBuf;
use std::process::Command;

pub use crate::{AUTH_ENDPOINT_VAR as AUTH_ENDPOINT_ENV, ENDPOINT_VAR as ENDPOINT_ENV};

pub struct Moto {
    pub endpoint: String,
}

/// A name unique to this run (aliases and IAM users outlive a test in a shared moto).
pub fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{t}", std::process::id())
}

impl Moto {
    /// The moto at `$var`, or `None` after [`crate::skip`] (which fails the test when peers
    /// are required).
    pub fn from_env(var: &str, test: &str) -> Option<Moto> {
        Moto::from_lookup(var, test, |k| std::env::var(k).ok())
    }

    /// [`Moto::from_env`] reading the environment through `env` (the harness's own test).
    pub fn from_lookup(
        var: &str,
        test: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Moto> {
        match env(var) {
            Some(e) if !e.is_empty() => Some(Moto {
                endpoint: e.trim_end_matches('/').to_string(),
            }),
            _ => {
                crate::skip_with(
                    env(crate::REQUIRE_VAR).is_some(),
                    test,
                    &format!("{var} is not set (scripts/test.sh starts moto and sets it)"),
                );
                None
            }
        }
    }

    /// Runs `aws.py ARGS` against this moto and returns its stdout.
    pub fn aws_py(&self, args: &[&str]) -> String {
        let root = crate::peers::repo_root();
        let python = std::env::var_os("STATESEAL_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        assert!(
            python.exists(),
            "{} is missing: run bash scripts/peers/venv.sh",
            python.display()
        );
        let out = Command::new(python)
            .arg(root.join("scripts/peers/aws.py"))
            .arg("--endpoint")
            .arg(&self.endpoint)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .expect("running aws.py");
        assert!(
            out.status.success(),
            "aws.py {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A new KMS key with the alias `alias/NAME`; returns the key ARN.
    pub fn mkkey(&self, name: &str) -> String {
        self.aws_py(&["mkkey", name]).trim().to_string()
    }

    /// KMS Decrypt through boto3; returns the plaintext as base64.
    pub fn kms_decrypt(&self, blob_b64: &str, context: Option<&str>) -> String {
        let mut args = vec!["kms-decrypt", blob_b64];
        if let Some(c) = context {
            args.extend(["--context", c]);
        }
        let v: serde_json::Value = serde_json::from_str(&self.aws_py(&args)).unwrap();
        v["Plaintext"].as_str().unwrap().to_string()
    }

    /// An IAM user allowed everything but `deny`; returns (access key id, secret).
    pub fn iam_user(&self, name: &str, deny: &[&str]) -> (String, String) {
        let mut args = vec!["iam-user", name];
        for d in deny {
            args.extend(["--deny", d]);
        }
        let v: serde_json::Value = serde_json::from_str(&self.aws_py(&args)).unwrap();
        (
            v["AccessKeyId"].as_str().unwrap().to_string(),
            v["SecretAccessKey"].as_str().unwrap().to_string(),
        )
    }

    /// IAM enforcement: off (`"inf"`) or on after N more requests (`"0"`).
    pub fn reset_auth(&self, n: &str) {
        self.aws_py(&["reset-auth", n]);
    }
}

/// Held by every test of a binary that switches IAM enforcement of the shared IAM-enforcing
/// moto off and on ([`Moto::reset_auth`]) or depends on it being on: the switch covers the whole
/// server, so one test's setup window (enforcement off) must not overlap another's checks.
pub fn auth_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}
