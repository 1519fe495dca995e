//! Real OpenTofu (`tofu`, built from its Go module by `scripts/peers/tofu.sh`) against stateseal:
//! every compatibility claim checked against `tofu` itself, on each pinned release. One module
//! per area; they share the helpers below.

mod files;
mod fleet;
mod s3;

use std::path::Path;

use assert_cmd::Command;

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
