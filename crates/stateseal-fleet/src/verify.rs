//! `stateseal verify`: proves what a hardened bucket promises, per state (docs/FLEET.md §3, the
//! runbook's verification):
//!
//! * stored with SSE-KMS, on the expected key ARN (given, else the bucket's default key);
//! * when asked, client-side encrypted with the expected key provider (its address, as the
//!   envelope's metadata names it);
//! * its `-md5` digest item, when there is one, matches the object;
//! * "the gate bites": with each denied principal's credentials (an AWS shared-config profile),
//!   GetObject of the state fails with AccessDenied; a success is a violation, and so is any
//!   other failure (it proves nothing).
//!
//! On real AWS a principal with `s3:GetObject` but no `kms:Decrypt` on the key is denied by
//! KMS. moto does not check `kms:Decrypt` when it serves an SSE-KMS object, so there the denial
//! can only come from an IAM identity policy: only real AWS checks the key.

use std::sync::Arc;

use crate::error::{Error, Result};
use serde::Serialize;
use stateseal_encryption::Encryption;
use stateseal_store::s3::{DigestStatus, ReadAttempt, S3Store, Sse};

use crate::audit::{self, Class, StateReport};
use crate::report::ObjectSse;
use crate::{parallel, same_kms_key, Event, Fleet};

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// The KMS key ARN every state must be on (default: the bucket's default encryption key).
    pub kms_key: Option<String>,
    /// The key provider every state must be client-side encrypted with, as the envelope's
    /// metadata names it: `key_provider.pbkdf2.main` (or `pbkdf2.main`), or the provider's
    /// `encrypted_metadata_alias`.
    pub key_provider: Option<String>,
    /// AWS shared-config profiles that must be denied GetObject.
    pub denied_profiles: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub concurrency: usize,
}

/// One state's checks.
#[derive(Clone, Debug, Serialize)]
pub struct StateCheck {
    pub key: String,
    pub workspace: String,
    #[serde(flatten)]
    pub sse: ObjectSse,
    /// `plaintext`, `primary`, `fallback` or `unknown` (see `audit`).
    pub encryption: Class,
    /// The key providers in the envelope's metadata.
    pub key_providers: Vec<String>,
    /// `match`, `mismatch`, `absent`, `no-table` or `unknown`.
    pub digest: DigestStatus,
    /// Why the state fails, one reason each (empty: it passes).
    pub violations: Vec<String>,
}

/// What a GetObject with a denied principal's credentials proved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GateResult {
    /// AccessDenied: the gate holds.
    Denied,
    /// The state was served: a violation.
    Readable,
    /// Another failure: nothing is proven (a violation too).
    Error,
}

impl GateResult {
    /// The word used in JSON and tables: `denied`, `readable`, `error`.
    pub fn name(self) -> &'static str {
        match self {
            GateResult::Denied => "denied",
            GateResult::Readable => "readable",
            GateResult::Error => "error",
        }
    }
}

/// One GetObject with a denied principal's credentials.
#[derive(Clone, Debug, Serialize)]
pub struct GateCheck {
    pub profile: String,
    pub key: String,
    /// `denied` (the gate holds), `readable` (a violation) or `error` (nothing proven).
    pub result: GateResult,
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub states: usize,
    pub passing: usize,
    pub gate_checks: usize,
    pub gate_denied: usize,
    pub violations: usize,
}

/// `stateseal verify --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub bucket: String,
    pub prefix: String,
    /// The key every state must be on (null: any SSE-KMS key).
    pub expected_kms_key: Option<String>,
    pub expected_key_provider: Option<String>,
    pub states: Vec<StateCheck>,
    pub gate: Vec<GateCheck>,
    /// Every violation, one line each: `s3://BUCKET/KEY: why`.
    pub violations: Vec<String>,
    pub summary: Summary,
}

impl Report {
    /// No violation, and at least one state was checked: an empty selection does not pass
    /// ([`crate::nothing_checked`] says why).
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && !self.checked_nothing()
    }

    /// No state was found under the prefix.
    pub fn checked_nothing(&self) -> bool {
        self.states.is_empty()
    }
}

/// Does an envelope metadata key name the expected provider? `pbkdf2.main` is short for
/// `key_provider.pbkdf2.main`.
fn names_provider(meta_key: &str, expected: &str) -> bool {
    meta_key == expected || meta_key.strip_prefix("key_provider.") == Some(expected)
}

fn check_state(s: &StateReport, expect_key: Option<&str>, provider: Option<&str>) -> StateCheck {
    let mut v = Vec::new();
    match &s.sse.0 {
        Sse::Kms { key } => {
            if let Some(want) = expect_key {
                match key.as_deref() {
                    Some(k) if same_kms_key(k, want) => {}
                    other => v.push(format!(
                        "SSE-KMS with key {}, not {want}",
                        other.unwrap_or("(none reported)")
                    )),
                }
            }
        }
        other => v.push(format!(
            "server-side encryption is {}, not aws:kms",
            other.name().unwrap_or("none")
        )),
    }
    let providers: Vec<String> = s.key_providers.iter().map(|k| k.key.clone()).collect();
    if let Some(want) = provider {
        if s.encryption == Class::Plaintext {
            v.push(format!("not client-side encrypted (expected {want})"));
        } else if !providers.iter().any(|p| names_provider(p, want)) {
            v.push(format!(
                "client-side encrypted with {}, not {want}",
                if providers.is_empty() {
                    "no named key provider".to_string()
                } else {
                    providers.join(", ")
                }
            ));
        }
    }
    if s.digest == DigestStatus::Mismatch {
        v.push("the object does not match its -md5 digest item".into());
    }
    v.extend(
        s.problems
            .iter()
            .map(|p| format!("could not be checked: {p}")),
    );
    StateCheck {
        key: s.key.clone(),
        workspace: s.workspace.clone(),
        sse: s.sse.clone(),
        encryption: s.encryption,
        key_providers: providers,
        digest: s.digest,
        violations: v,
    }
}

/// The same connection as `store` (region, endpoints, path style), with the credentials of a
/// profile and nothing else (not the environment's, which the standard chain would try first).
async fn as_profile(store: &S3Store, profile: &str) -> Result<S3Store> {
    let creds = stateseal_aws::profile_credentials(&store.config().auth, profile)
        .await
        .map_err(Error::Connect)?;
    Ok(store.with_credentials(&creds).await?)
}

/// GetObject of `key` as the denied principal.
async fn try_read(store: &S3Store, profile: &str, key: &str) -> GateCheck {
    let (result, detail) = match store.try_read(key).await {
        ReadAttempt::Readable => (
            GateResult::Readable,
            format!("profile {profile} read the state: the gate does not hold"),
        ),
        ReadAttempt::Denied(message) => (GateResult::Denied, message),
        ReadAttempt::Failed(message) => (
            GateResult::Error,
            format!("not AccessDenied, so nothing is proven: {message}"),
        ),
    };
    GateCheck {
        profile: profile.to_string(),
        key: key.to_string(),
        result,
        detail,
    }
}

/// Verifies every state under the fleet's prefix. `encryption` (the directory's configuration,
/// maybe none) only tells primary from fallback in the report.
pub async fn verify(
    fleet: &Fleet,
    encryption: Arc<Encryption>,
    expect: &Expect,
    opts: &Options,
    on_event: &mut dyn FnMut(Event),
) -> Result<Report> {
    let audit_opts = audit::Options {
        decrypt: false,
        concurrency: opts.concurrency,
    };
    let audited = audit::audit(fleet, encryption, &audit_opts, on_event).await?;
    let expected_kms_key = expect.kms_key.clone().or_else(|| {
        let c = &audited.bucket_checks;
        (c.default_encryption.as_deref() == Some("aws:kms"))
            .then(|| c.default_kms_key_id.clone())
            .flatten()
    });
    let states: Vec<StateCheck> = audited
        .states
        .iter()
        .map(|s| {
            check_state(
                s,
                expected_kms_key.as_deref(),
                expect.key_provider.as_deref(),
            )
        })
        .collect();
    let url = |key: &str| format!("s3://{}/{key}", fleet.bucket());
    let mut violations: Vec<String> = states
        .iter()
        .flat_map(|s| s.violations.iter().map(|v| format!("{}: {v}", url(&s.key))))
        .collect();

    let mut gate = Vec::new();
    for profile in &expect.denied_profiles {
        if states.is_empty() {
            violations.push(format!(
                "s3://{}/{}: no state to prove the gate on for profile {profile}",
                fleet.bucket(),
                fleet.prefix
            ));
            continue;
        }
        let denied = match as_profile(&fleet.store, profile).await {
            Ok(s) => s,
            Err(e) => {
                violations.push(format!("profile {profile}: cannot connect: {e}"));
                continue;
            }
        };
        let keys: Vec<String> = states.iter().map(|s| s.key.clone()).collect();
        let checks = parallel::run(
            keys,
            opts.concurrency,
            |key| {
                let denied = denied.clone();
                let profile = profile.clone();
                async move { try_read(&denied, &profile, &key).await }
            },
            |_| {},
        )
        .await;
        violations.extend(
            checks
                .iter()
                .filter(|g| g.result != GateResult::Denied)
                .map(|g| format!("{}: {}", url(&g.key), g.detail)),
        );
        gate.extend(checks);
    }
    let summary = Summary {
        states: states.len(),
        passing: states.iter().filter(|s| s.violations.is_empty()).count(),
        gate_checks: gate.len(),
        gate_denied: gate
            .iter()
            .filter(|g| g.result == GateResult::Denied)
            .count(),
        violations: violations.len(),
    };
    Ok(Report {
        bucket: fleet.bucket().to_string(),
        prefix: fleet.prefix.clone(),
        expected_kms_key,
        expected_key_provider: expect.key_provider.clone(),
        states,
        gate,
        violations,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_results_keep_their_json_names() {
        for g in [GateResult::Denied, GateResult::Readable, GateResult::Error] {
            assert_eq!(
                serde_json::to_string(&g).unwrap(),
                format!("\"{}\"", g.name())
            );
        }
        assert_eq!(GateResult::Readable.name(), "readable");
    }

    #[test]
    fn provider_addresses_match_with_or_without_the_prefix() {
        assert!(names_provider(
            "key_provider.pbkdf2.main",
            "key_provider.pbkdf2.main"
        ));
        assert!(names_provider("key_provider.aws_kms.x", "aws_kms.x"));
        assert!(!names_provider("key_provider.aws_kms.x", "aws_kms.y"));
    }

    #[test]
    fn an_empty_selection_does_not_pass() {
        let mut report = Report {
            bucket: "b".into(),
            prefix: "Other".into(),
            expected_kms_key: None,
            expected_key_provider: None,
            states: vec![],
            gate: vec![],
            violations: vec![],
            summary: Summary::default(),
        };
        assert!(report.checked_nothing());
        assert!(!report.passed(), "no violation, but nothing was checked");
        report.states.push(StateCheck {
            key: "other/terraform.tfstate".into(),
            workspace: "default".into(),
            sse: ObjectSse(Sse::Kms { key: None }),
            encryption: Class::Primary,
            key_providers: vec![],
            digest: DigestStatus::Absent,
            violations: vec![],
        });
        assert!(report.passed());
        assert_eq!(
            crate::nothing_checked("b", "Other", 0),
            "no state under s3://b/Other: nothing was checked"
        );
        assert_eq!(
            crate::nothing_checked("b", "", 2),
            "no state under s3://b/ (2 other object(s) are there, none of them a state): nothing was checked"
        );
    }
}
