//! Real OpenTofu for integration tests: the `tofu` binaries that `scripts/peers/tofu.sh` built
//! from OpenTofu's Go module, one per pinned release, found through `STATESEAL_TEST_TOFU`
//! (`VERSION=PATH[,VERSION=PATH…]`, as `scripts/test.sh` exports it) or, failing that, the
//! script's cache. The one place tests find `tofu`.
//!
//! A missing `tofu` skips the test with a notice, or fails it when peers are required (see
//! [`crate::skip`]). Every command runs offline: an offline CLI configuration (no checkpoint,
//! provider installation only from a mirror that does not exist), no input, and dummy AWS
//! credentials. Tests hold a [`crate::heavy`] permit while they drive `tofu`, as they do for
//! Terraform.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

use crate::{repo_root, skip};

/// `VERSION=PATH[,VERSION=PATH…]`: the `tofu` binaries to test against.
pub const TOFU_VAR: &str = "STATESEAL_TEST_TOFU";

/// One real `tofu` binary.
#[derive(Clone, Debug)]
pub struct Tofu {
    /// The release, such as `1.12.6`.
    pub version: String,
    pub path: PathBuf,
    _permit: Arc<crate::heavy::Permit>,
}

/// `(version, path)` for each `tofu` this machine has, newest first.
fn found() -> &'static [(String, PathBuf)] {
    static FOUND: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    FOUND.get_or_init(|| {
        let listed = match std::env::var(TOFU_VAR) {
            Ok(v) if !v.trim().is_empty() => v,
            _ => {
                // The script's cache, without building (a test never starts a Go build).
                let out = Command::new("bash")
                    .arg(repo_root().join("scripts/peers/tofu.sh"))
                    .arg("--paths")
                    .stderr(Stdio::null())
                    .output();
                match out {
                    Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(|l| l.replacen(' ', "=", 1))
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => String::new(),
                }
            }
        };
        let mut all: Vec<(String, PathBuf)> = listed
            .split(',')
            .filter_map(|e| e.trim().split_once('='))
            .map(|(v, p)| (v.trim().to_string(), PathBuf::from(p.trim())))
            .filter(|(_, p)| p.is_file())
            .collect();
        all.sort_by_key(|(v, _)| std::cmp::Reverse(version_key(v)));
        all
    })
}

/// `1.12.6` → `[1, 12, 6]`, for ordering releases.
pub fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

impl Tofu {
    /// Every pinned `tofu`, newest first; empty (with a notice, or a failure when peers are
    /// required) when there is none.
    pub fn all(test: &str) -> Vec<Tofu> {
        let found = found();
        if found.is_empty() {
            skip(
                test,
                &format!("no tofu: {TOFU_VAR} is unset and scripts/peers/tofu.sh has built none"),
            );
            return Vec::new();
        }
        let permit = crate::heavy::permit();
        found
            .iter()
            .map(|(version, path)| Tofu {
                version: version.clone(),
                path: path.clone(),
                _permit: permit.clone(),
            })
            .collect()
    }

    /// Every pinned `tofu` at or above `min` (such as `"1.10"`), for features newer than the
    /// oldest pin.
    pub fn at_least(test: &str, min: &str) -> Vec<Tofu> {
        let min = version_key(min);
        Tofu::all(test)
            .into_iter()
            .filter(|t| version_key(&t.version) >= min)
            .collect()
    }

    /// The newest pinned `tofu`, or `None` (see [`Tofu::all`]).
    pub fn newest(test: &str) -> Option<Tofu> {
        Tofu::all(test).into_iter().next()
    }

    /// Whether this release is at least `min` (such as `"1.9"`).
    pub fn is_at_least(&self, min: &str) -> bool {
        version_key(&self.version) >= version_key(min)
    }

    /// One `tofu` command in `dir`, offline, not started. Callers add `TF_*`/`AWS_*` variables.
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.path);
        c.args(args)
            .current_dir(dir)
            .env("TF_CLI_CONFIG_FILE", offline_cli_config())
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("TF_WORKSPACE")
            .env_remove("TF_ENCRYPTION")
            .env_remove("TF_DATA_DIR")
            .stdin(Stdio::null());
        c
    }

    /// Runs one `tofu` command in `dir` to completion.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.output(dir, args, |_| {})
    }

    /// Runs one `tofu` command in `dir` to completion, after `configure` adds its environment.
    ///
    /// `tofu`'s AWS SDK (aws-sdk-go-v2) can close its own connection while it reads a fast
    /// local peer's reply ("use of closed network connection", aws/aws-sdk-go-v2#1825 and
    /// #2737). Two such blips are safe to retry, up to three runs in all; any other failure
    /// is returned as it is:
    /// - while a key provider builds or fetches its key ("Unable to build/fetch encryption key
    ///   data", e.g. KMS GenerateDataKey): no key came back, so nothing was encrypted or stored
    ///   with it, and the run is repeated as a user would repeat it;
    /// - while releasing the state lock, after the command's work is done: the lock tofu
    ///   left behind is force-unlocked by its ID, then the command runs again (a repeated
    ///   apply or plan finds nothing new to do, and answers as the first run would have).
    ///   The SDK's own retry of that release can instead meet the item its first attempt
    ///   already deleted ("ConditionalCheckFailedException" on DeleteItem): nothing is left
    ///   to unlock, and the command runs again. Were the lock really someone else's, the
    ///   rerun fails to acquire it and that failure is returned.
    pub fn output(&self, dir: &Path, args: &[&str], configure: impl Fn(&mut Command)) -> Output {
        let mut attempt = 1;
        loop {
            let mut c = self.command(dir, args);
            configure(&mut c);
            let out = c
                .output()
                .unwrap_or_else(|e| panic!("run {}: {e}", self.path.display()));
            let stderr = String::from_utf8_lossy(&out.stderr);
            let blip = match peer_transport_blip(&stderr) {
                Some(blip) if !out.status.success() && attempt < 3 => blip,
                _ => return out,
            };
            if let Blip::ReleasingLock(Some(id)) = &blip {
                let mut unlock = self.command(dir, &["force-unlock", "-force", id]);
                configure(&mut unlock);
                let done = unlock
                    .output()
                    .unwrap_or_else(|e| panic!("run {}: {e}", self.path.display()));
                if !done.status.success() {
                    return out;
                }
            }
            eprintln!(
                "tofu {} {args:?}: the AWS SDK closed its connection {}; attempt {} of 3",
                self.version,
                blip.when(),
                attempt + 1
            );
            attempt += 1;
        }
    }

    /// Runs one `tofu` command and panics, with its output, unless it succeeds. Returns stdout.
    pub fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(
            out.status.success(),
            "tofu {} {args:?} in {} failed ({}):\n{}\n{}",
            self.version,
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts one `tofu` command in the background (stdout/stderr piped).
    pub fn spawn(&self, dir: &Path, args: &[&str]) -> Child {
        self.command(dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.path.display()))
    }
}

/// A connection blip `tofu` can be run again after (see [`Tofu::output`]).
#[derive(Debug, PartialEq)]
enum Blip {
    /// While a key provider built or fetched its key: nothing was encrypted or stored with it.
    GettingKeys,
    /// While releasing the state lock: the work is done, and the lock with this ID is left
    /// (none: the SDK's retry found it already deleted by its first attempt).
    ReleasingLock(Option<String>),
}

impl Blip {
    fn when(&self) -> &'static str {
        match self {
            Blip::GettingKeys => "while getting an encryption key",
            Blip::ReleasingLock(Some(_)) => "while releasing the lock (force-unlocked it)",
            Blip::ReleasingLock(None) => "while releasing the lock (its retry found it gone)",
        }
    }
}

/// The retryable blip `tofu`'s diagnostics show, if any.
fn peer_transport_blip(stderr: &str) -> Option<Blip> {
    let text = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    let transport = [
        "use of closed network connection",
        "connection reset by peer",
    ]
    .iter()
    .any(|t| text.contains(t));
    let keys = [
        "Unable to build encryption key data",
        "Unable to fetch encryption key data",
    ];
    if transport && keys.iter().any(|k| text.contains(k)) {
        return Some(Blip::GettingKeys);
    }
    let (_, after) = text.split_once("Error releasing the state lock")?;
    if after.contains("DeleteItem") && after.contains("ConditionalCheckFailedException") {
        return Some(Blip::ReleasingLock(None));
    }
    if !transport {
        return None;
    }
    let (_, info) = after.split_once("Lock Info: ID: ")?;
    let id = info.split(' ').next()?;
    Some(Blip::ReleasingLock(Some(id.to_string())))
}

/// An offline CLI configuration, written once per process: no checkpoint, and providers only
/// from a filesystem mirror that does not exist (the built-in `terraform` provider needs none).
fn offline_cli_config() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stateseal-tofu-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the tofu CLI config directory");
        let path = dir.join("tofurc");
        let mirror = dir.join("no-provider-mirror");
        std::fs::write(
            &path,
            format!(
                "disable_checkpoint = true\nprovider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"*/*/*\"]\n  }}\n}}\n",
                mirror.display()
            ),
        )
        .expect("write the tofu CLI config");
        path
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_safe_blips_are_retried() {
        let release = "Error: Error releasing the state lock\n\nError message: operation error DynamoDB: DeleteItem, https response error\nStatusCode: 200, decomposing response:\nread tcp 127.0.0.1:1->127.0.0.1:2: use of closed network connection\nLock Info:\n  ID:        f4045d6c-8e96-4f26-b2b4-249b638bf00e\n  Path:      b/k\n";
        assert_eq!(
            peer_transport_blip(release),
            Some(Blip::ReleasingLock(Some(
                "f4045d6c-8e96-4f26-b2b4-249b638bf00e".into()
            )))
        );
        let retried = "Error: Error releasing the state lock\n\nError message: operation error DynamoDB: DeleteItem, https response error\nStatusCode: 400, RequestID:\nc9Go, ConditionalCheckFailedException: The conditional request failed\nLock Info:\n  ID:        b81590f1\n";
        assert_eq!(
            peer_transport_blip(retried),
            Some(Blip::ReleasingLock(None))
        );
        let keys = "Error: Unable to build encryption key data\n read tcp: use of closed\n network connection";
        assert_eq!(peer_transport_blip(keys), Some(Blip::GettingKeys));
        let fetch = "Error: Unable to fetch encryption key data\n\nkey_provider.aws_kms.main failed with error: failed to generate key:\noperation error KMS: GenerateDataKey, https response error StatusCode: 200,\nRequestID: P7VM, decomposing\nresponse: read tcp 127.0.0.1:1->127.0.0.1:2: use of closed network\nconnection\n";
        assert_eq!(peer_transport_blip(fetch), Some(Blip::GettingKeys));
        // A key provider's real refusal is not a blip.
        let refused =
            "Error: Unable to fetch encryption key data\n NotFoundException: Key does not exist";
        assert_eq!(peer_transport_blip(refused), None);
        let acquire = "Error: Error acquiring the state lock\n use of closed network connection\nLock Info:\n  ID: x";
        assert_eq!(peer_transport_blip(acquire), None);
        assert_eq!(
            peer_transport_blip("Error releasing the state lock\nLock Info:\n ID: x"),
            None
        );
    }

    #[test]
    fn releases_order_numerically() {
        assert!(version_key("1.12.6") > version_key("1.8.11"));
        assert!(version_key("1.10.0") >= version_key("1.10"));
        assert!(version_key("1.9.4") < version_key("1.10"));
    }
}
