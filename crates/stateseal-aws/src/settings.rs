//! [`AwsSettings`] and its nested blocks: the attributes, their checks, and nothing that does I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::env::{env, non_empty};
use crate::error::Error;
use stateseal_core::Secret;

/// The AWS attributes OpenTofu's S3 backend and `aws_kms` key provider share, with their names.
/// Every field is optional; environment fallbacks are applied by [`sdk_config`](super::sdk_config), not here.
///
/// Unknown attributes are not rejected by this type (so it can be embedded with
/// `#[serde(flatten)]`): check them against [`AwsSettings::ATTRIBUTES`].
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<Secret>,
    pub token: Option<Secret>,
    pub profile: Option<String>,
    pub shared_credentials_files: Option<Vec<String>>,
    pub shared_config_files: Option<Vec<String>>,
    pub assume_role: Option<AssumeRole>,
    pub assume_role_with_web_identity: Option<AssumeRoleWithWebIdentity>,
    pub endpoints: Option<Endpoints>,
    pub sts_region: Option<String>,
    pub max_retries: Option<u32>,
    /// `standard` or `adaptive`.
    pub retry_mode: Option<String>,
    pub custom_ca_bundle: Option<String>,
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
    /// Skipping TLS verification is not supported; `true` is an error.
    pub insecure: Option<bool>,
    pub use_dualstack_endpoint: Option<bool>,
    pub use_fips_endpoint: Option<bool>,
    pub ec2_metadata_service_endpoint: Option<String>,
    /// `IPv4` or `IPv6`.
    pub ec2_metadata_service_endpoint_mode: Option<String>,
    /// `true` leaves the EC2 instance metadata service out of the credential chain.
    pub skip_metadata_api_check: Option<bool>,
    /// Accepted for compatibility. Credentials are never validated ahead of use.
    pub skip_credentials_validation: Option<bool>,
    /// Accepted for compatibility. The account ID is looked up only for the account lists below.
    pub skip_requesting_account_id: Option<bool>,
    pub allowed_account_ids: Option<Vec<String>>,
    pub forbidden_account_ids: Option<Vec<String>>,
}

/// `assume_role { … }`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssumeRole {
    pub role_arn: String,
    /// A Go duration between 15m and 12h (`"1h"`, `"90m"`).
    pub duration: Option<String>,
    pub external_id: Option<String>,
    pub policy: Option<String>,
    pub policy_arns: Option<Vec<String>>,
    pub session_name: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub transitive_tag_keys: Option<Vec<String>>,
}

/// `assume_role_with_web_identity { … }`, with the `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`,
/// `AWS_WEB_IDENTITY_TOKEN` and `AWS_WEB_IDENTITY_TOKEN_FILE` environment fallbacks.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssumeRoleWithWebIdentity {
    pub role_arn: Option<String>,
    pub duration: Option<String>,
    pub policy: Option<String>,
    pub policy_arns: Option<Vec<String>>,
    pub session_name: Option<String>,
    pub web_identity_token: Option<Secret>,
    pub web_identity_token_file: Option<String>,
}

/// `endpoints { … }`: custom service endpoints. A value without a scheme gets `https://`.
/// Without one, the SDK's own `AWS_ENDPOINT_URL_<SERVICE>` / `AWS_ENDPOINT_URL` apply.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Endpoints {
    pub iam: Option<String>,
    pub sts: Option<String>,
    pub s3: Option<String>,
    pub dynamodb: Option<String>,
    pub sso: Option<String>,
    /// Not in OpenTofu's `aws_kms` endpoints block (which has only `iam` and `sts`): there the
    /// KMS endpoint comes from `AWS_ENDPOINT_URL_KMS`, which works here too.
    pub kms: Option<String>,
}

impl Endpoints {
    /// The endpoint configured for `service` (`"sts"`, `"kms"`, `"s3"`, …), with `https://`
    /// prepended when it has no scheme.
    pub fn get(&self, service: &str) -> Option<String> {
        let v = match service {
            "iam" => &self.iam,
            "sts" => &self.sts,
            "s3" => &self.s3,
            "dynamodb" => &self.dynamodb,
            "sso" => &self.sso,
            "kms" => &self.kms,
            _ => &None,
        };
        v.as_deref().filter(|v| !v.is_empty()).map(with_scheme)
    }
}

fn with_scheme(endpoint: &str) -> String {
    let has_scheme = endpoint
        .split_once("://")
        .is_some_and(|(s, _)| s.chars().all(|c| c.is_ascii_lowercase()));
    if has_scheme {
        endpoint.to_string()
    } else {
        format!("https://{endpoint}")
    }
}

impl std::fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key)
            .field("token", &self.token)
            .field("profile", &self.profile)
            .field("assume_role", &self.assume_role)
            .field(
                "assume_role_with_web_identity",
                &self.assume_role_with_web_identity,
            )
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AssumeRoleWithWebIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssumeRoleWithWebIdentity")
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .field("web_identity_token", &self.web_identity_token)
            .field("web_identity_token_file", &self.web_identity_token_file)
            .finish_non_exhaustive()
    }
}

impl AwsSettings {
    /// Every attribute name this type reads.
    pub const ATTRIBUTES: &'static [&'static str] = &[
        "region",
        "access_key",
        "secret_key",
        "token",
        "profile",
        "shared_credentials_files",
        "shared_config_files",
        "assume_role",
        "assume_role_with_web_identity",
        "endpoints",
        "sts_region",
        "max_retries",
        "retry_mode",
        "custom_ca_bundle",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "insecure",
        "use_dualstack_endpoint",
        "use_fips_endpoint",
        "ec2_metadata_service_endpoint",
        "ec2_metadata_service_endpoint_mode",
        "skip_metadata_api_check",
        "skip_credentials_validation",
        "skip_requesting_account_id",
        "allowed_account_ids",
        "forbidden_account_ids",
    ];

    /// Checks what can be checked without I/O or the environment: durations, policy ARNs, the
    /// retry mode and conflicting attributes. Messages follow OpenTofu's.
    pub fn validate(&self) -> Result<(), Error> {
        self.check().map_err(Error::Settings)
    }

    fn check(&self) -> Result<(), String> {
        if let Some(r) = &self.assume_role {
            if r.role_arn.is_empty() {
                return Err("assume_role: role_arn is required".into());
            }
            parse_duration(r.duration.as_deref())?;
            validate_policy_arns(r.policy_arns.as_deref())?;
        }
        if let Some(w) = &self.assume_role_with_web_identity {
            if w.web_identity_token.is_some() && non_empty(&w.web_identity_token_file).is_some() {
                return Err("conflicting config attributes: only web_identity_token or web_identity_token_file can be specified, not both".into());
            }
            parse_duration(w.duration.as_deref())?;
            validate_policy_arns(w.policy_arns.as_deref())?;
        }
        if let Some(m) = non_empty(&self.retry_mode) {
            if m != "standard" && m != "adaptive" {
                return Err(format!(
                    "retry mode {m} is not supported: expected \"standard\" or \"adaptive\""
                ));
            }
        }
        let nonempty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
        if nonempty(&self.allowed_account_ids) && nonempty(&self.forbidden_account_ids) {
            return Err("conflicting config attributes: only allowed_account_ids or forbidden_account_ids can be specified, not both".into());
        }
        if self.insecure == Some(true) {
            return Err("insecure = true (skipping TLS verification) is not supported: use custom_ca_bundle to trust a private certificate authority".into());
        }
        if let Some(m) = non_empty(&self.ec2_metadata_service_endpoint_mode) {
            if m != "IPv4" && m != "IPv6" {
                return Err(format!(
                    "ec2_metadata_service_endpoint_mode must be \"IPv4\" or \"IPv6\", got {m:?}"
                ));
            }
        }
        Ok(())
    }

    /// The region: the attribute, else `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub fn region(&self) -> Result<String, Error> {
        self.region_with(env).map_err(Error::Settings)
    }

    /// [`region`](Self::region) with the environment read through `env` (tests give their own).
    fn region_with(&self, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        non_empty(&self.region)
            .map(str::to_string)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .ok_or_else(|| r#"the "region" attribute or the "AWS_REGION" or "AWS_DEFAULT_REGION" environment variables must be set."#.to_string())
    }

    /// The endpoint configured in `endpoints` for `service` (`"kms"`, `"s3"`, …), if any.
    pub fn endpoint(&self, service: &str) -> Option<String> {
        self.endpoints.as_ref().and_then(|e| e.get(service))
    }
}

/// Parses a Go duration (`"1h30m"`, `"900s"`) and checks OpenTofu's 15m..12h range.
pub(super) fn parse_duration(v: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let invalid = || format!("invalid assume_role duration {v:?}: time: invalid duration {v:?}");
    let mut rest = v;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    let d = Duration::from_secs_f64(total);
    if d < Duration::from_secs(15 * 60) || d > Duration::from_secs(12 * 3600) {
        return Err(format!(
            "assume_role duration must be between 15m0s and 12h0m0s, had {v}"
        ));
    }
    Ok(Some(d))
}

fn validate_policy_arns(arns: Option<&[String]>) -> Result<(), String> {
    for a in arns.unwrap_or_default() {
        let parts: Vec<&str> = a.splitn(6, ':').collect();
        if parts[0] != "arn" {
            return Err("arn: invalid prefix".into());
        }
        if parts.len() < 6 {
            return Err("arn: not enough sections".into());
        }
        if !parts[5].starts_with("policy/") {
            return Err(format!("arn must be a valid IAM Policy ARN, got {a:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations_and_the_assume_role_range() {
        assert_eq!(
            parse_duration(Some("1h30m")).unwrap(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_duration(Some("900s")).unwrap(),
            Some(Duration::from_secs(900))
        );
        assert_eq!(parse_duration(Some("")).unwrap(), None);
        assert!(parse_duration(Some("5m")).unwrap_err().contains("between"));
        assert!(parse_duration(Some("13h")).unwrap_err().contains("between"));
        assert!(parse_duration(Some("1 hour"))
            .unwrap_err()
            .contains("invalid assume_role duration"));
    }

    #[test]
    fn validation_messages() {
        let v = |j| {
            serde_json::from_value::<AwsSettings>(j)
                .unwrap()
                .validate()
                .err()
                .unwrap()
                .to_string()
        };
        assert!(
            v(json!({"allowed_account_ids": ["1"], "forbidden_account_ids": ["2"]}))
                .starts_with("conflicting config attributes")
        );
        assert!(v(json!({"retry_mode": "legacy"})).contains("standard"));
        assert!(v(
            json!({"assume_role": {"role_arn": "r", "policy_arns": ["arn:aws:iam::1:role/x"]}})
        )
        .contains("valid IAM Policy ARN"));
        assert!(v(json!({"assume_role_with_web_identity": {"web_identity_token": "t", "web_identity_token_file": "f"}}))
            .contains("web_identity_token_file"));
        assert!(v(json!({"insecure": true})).contains("not supported"));
        assert!(serde_json::from_value::<AwsSettings>(
            json!({"assume_role": {"role_arn": "r", "bogus": 1}})
        )
        .is_err());
    }

    #[test]
    fn endpoints_get_a_scheme() {
        let s: AwsSettings = serde_json::from_value(
            json!({"endpoints": {"sts": "sts.example.com", "kms": "http://127.0.0.1:1"}}),
        )
        .unwrap();
        assert_eq!(s.endpoint("sts").unwrap(), "https://sts.example.com");
        assert_eq!(s.endpoint("kms").unwrap(), "http://127.0.0.1:1");
        assert_eq!(s.endpoint("s3"), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let s: AwsSettings = serde_json::from_value(json!({
            "access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI", "token": "FwoGZXIvYXdz",
            "assume_role_with_web_identity": {"web_identity_token": "eyJhbGciOi"}
        }))
        .unwrap();
        let shown = format!("{s:?}");
        for secret in ["wJalrXUtnFEMI", "FwoGZXIvYXdz", "eyJhbGciOi"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn region_is_required() {
        // The environment is given, not read: the test means the same wherever it runs.
        let env_of = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, v)| *k == name && !v.is_empty())
                    .map(|(_, v)| v.to_string())
            }
        };
        let none = AwsSettings::default();
        assert_eq!(
            none.region_with(env_of(&[])).unwrap_err(),
            r#"the "region" attribute or the "AWS_REGION" or "AWS_DEFAULT_REGION" environment variables must be set."#
        );
        assert!(none
            .region_with(env_of(&[("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "")]))
            .is_err());
        let both = env_of(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-2"),
        ]);
        assert_eq!(none.region_with(both).unwrap(), "eu-west-1");
        assert_eq!(
            none.region_with(env_of(&[("AWS_DEFAULT_REGION", "us-east-2")]))
                .unwrap(),
            "us-east-2"
        );
        let set: AwsSettings = serde_json::from_value(json!({"region": "ap-south-1"})).unwrap();
        assert_eq!(set.region_with(both).unwrap(), "ap-south-1");
    }
}
