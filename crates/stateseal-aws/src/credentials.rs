//! Credential providers: the standard chain, `assume_role`, `assume_role_with_web_identity`,
//! and the account check.

use std::time::{Duration, SystemTime};

use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
#[allow(deprecated)]
// the replacement lives in aws-runtime, which we do not depend on directly
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::provider_config::ProviderConfig;
use aws_config::SdkConfig;
use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_sdk_sts::config::SharedCredentialsProvider;

use crate::env::{env, expand_home, non_empty};
use crate::error::{classify, describe_error, AccountRule, Error};
use crate::settings::{parse_duration, AssumeRole, AssumeRoleWithWebIdentity, AwsSettings};
use stateseal_core::Secret;

pub(super) fn secret_string(s: &Secret) -> Result<String, Error> {
    String::from_utf8(s.expose().to_vec())
        .map_err(|_| Error::Settings("a credential is not valid UTF-8".into()))
}

pub(super) fn with_credentials(
    config: SdkConfig,
    p: impl ProvideCredentials + 'static,
) -> SdkConfig {
    config
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(p))
        .build()
}

/// The files from `shared_credentials_files` / `shared_config_files`, else from
/// `AWS_SHARED_CREDENTIALS_FILE` / `AWS_SHARED_CONFIG_FILE` (OpenTofu reads both), else `None`
/// (the SDK's defaults, `~/.aws/credentials` and `~/.aws/config`).
#[allow(deprecated)]
pub(super) fn profile_files(s: &AwsSettings) -> Option<ProfileFiles> {
    let list = |v: &Option<Vec<String>>, var: &str| -> Vec<String> {
        match v.as_ref().filter(|v| !v.is_empty()) {
            Some(v) => v.clone(),
            None => env(var).into_iter().collect(),
        }
    };
    let creds = list(&s.shared_credentials_files, "AWS_SHARED_CREDENTIALS_FILE");
    let configs = list(&s.shared_config_files, "AWS_SHARED_CONFIG_FILE");
    if creds.is_empty() && configs.is_empty() {
        return None;
    }
    let mut b = ProfileFiles::builder()
        .include_default_credentials_file(creds.is_empty())
        .include_default_config_file(configs.is_empty());
    for f in creds {
        b = b.with_file(ProfileFileKind::Credentials, expand_home(&f));
    }
    for f in configs {
        b = b.with_file(ProfileFileKind::Config, expand_home(&f));
    }
    Some(b.build())
}

/// The standard chain: environment, shared profile files, web identity (from the environment
/// or profile), ECS container credentials, then EC2 instance metadata unless
/// `skip_metadata_api_check = true`.
#[allow(deprecated)]
pub(super) fn standard_chain(
    s: &AwsSettings,
    pc: &ProviderConfig,
    files: Option<ProfileFiles>,
) -> SharedCredentialsProvider {
    let mut profile = aws_config::profile::ProfileFileCredentialsProvider::builder().configure(pc);
    if let Some(files) = files {
        profile = profile.profile_files(files);
    }
    if let Some(p) = non_empty(&s.profile) {
        profile = profile.profile_name(p);
    }
    let mut chain = CredentialsProviderChain::first_try(
        "Environment",
        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else("Profile", profile.build())
    .or_else(
        "WebIdentityToken",
        aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
            .configure(pc)
            .build(),
    )
    .or_else(
        "EcsContainer",
        aws_config::ecs::EcsCredentialsProvider::builder()
            .configure(pc)
            .build(),
    );
    if s.skip_metadata_api_check != Some(true) {
        let mut imds = aws_config::imds::Client::builder().configure(pc);
        let endpoint = non_empty(&s.ec2_metadata_service_endpoint)
            .map(str::to_string)
            .or_else(|| env("AWS_EC2_METADATA_SERVICE_ENDPOINT"));
        if let Some(e) = endpoint {
            match imds.endpoint(&e) {
                Ok(b) => imds = b,
                Err(_) => {
                    // An invalid endpoint: leave IMDS out rather than probe the default address.
                    return SharedCredentialsProvider::new(chain);
                }
            }
        } else {
            let mode = non_empty(&s.ec2_metadata_service_endpoint_mode)
                .map(str::to_string)
                .or_else(|| env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"));
            if mode.as_deref() == Some("IPv6") {
                imds = imds.endpoint_mode(aws_config::imds::client::EndpointMode::IpV6);
            }
        }
        chain = chain.or_else(
            "Ec2InstanceMetadata",
            ImdsCredentialsProvider::builder()
                .configure(pc)
                .imds_client(imds.build())
                .build(),
        );
    }
    SharedCredentialsProvider::new(chain)
}

fn credentials_from_sts(
    c: Option<&aws_sdk_sts::types::Credentials>,
    provider: &'static str,
) -> Result<Credentials, CredentialsError> {
    let c = c.ok_or_else(|| CredentialsError::unhandled("STS returned no credentials"))?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        provider,
    ))
}

fn session_name(configured: Option<&str>) -> String {
    configured.filter(|s| !s.is_empty()).map_or_else(
        || {
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            format!("stateseal-{}", t.as_nanos())
        },
        str::to_string,
    )
}

fn policy_arns(arns: Option<&[String]>) -> Option<Vec<aws_sdk_sts::types::PolicyDescriptorType>> {
    arns.filter(|a| !a.is_empty()).map(|a| {
        a.iter()
            .map(|arn| {
                aws_sdk_sts::types::PolicyDescriptorType::builder()
                    .arn(arn)
                    .build()
            })
            .collect()
    })
}

/// `assume_role`: STS AssumeRole with the credentials before it.
#[derive(Debug)]
pub(super) struct AssumedRole {
    role: AssumeRole,
    duration: Option<Duration>,
    sts: aws_sdk_sts::Client,
}

impl AssumedRole {
    pub(super) fn new(role: &AssumeRole, sts: aws_sdk_sts::Client) -> Result<Self, String> {
        Ok(AssumedRole {
            role: role.clone(),
            duration: parse_duration(role.duration.as_deref())?,
            sts,
        })
    }

    async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let r = &self.role;
        let tags = r.tags.as_ref().map(|t| {
            t.iter()
                .filter_map(|(k, v)| {
                    aws_sdk_sts::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>()
        });
        let out = self
            .sts
            .assume_role()
            .role_arn(&r.role_arn)
            .role_session_name(session_name(r.session_name.as_deref()))
            .set_external_id(r.external_id.clone().filter(|s| !s.is_empty()))
            .set_policy(r.policy.clone().filter(|s| !s.is_empty()))
            .set_policy_arns(policy_arns(r.policy_arns.as_deref()))
            .set_duration_seconds(self.duration.map(|d| d.as_secs() as i32))
            .set_tags(tags)
            .set_transitive_tag_keys(r.transitive_tag_keys.clone())
            .send()
            .await
            .map_err(|e| {
                CredentialsError::provider_error(format!(
                    "cannot assume IAM role {}: {}",
                    r.role_arn,
                    describe_error(&e)
                ))
            })?;
        credentials_from_sts(out.credentials(), "stateseal-assume-role")
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}

/// `assume_role_with_web_identity`: STS AssumeRoleWithWebIdentity (an unsigned call).
pub(super) struct WebIdentityRole {
    role_arn: String,
    session_name: Option<String>,
    token: Option<Secret>,
    token_file: Option<String>,
    duration: Option<Duration>,
    policy: Option<String>,
    policy_arns: Option<Vec<String>>,
    sts: aws_sdk_sts::Client,
}

impl std::fmt::Debug for WebIdentityRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebIdentityRole")
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl WebIdentityRole {
    pub(super) fn new(
        w: &AssumeRoleWithWebIdentity,
        sts: aws_sdk_sts::Client,
    ) -> Result<Self, String> {
        let role_arn = non_empty(&w.role_arn)
            .map(str::to_string)
            .or_else(|| env("AWS_ROLE_ARN"))
            .ok_or("assume_role_with_web_identity: role_arn (or AWS_ROLE_ARN) is required")?;
        let token = w
            .web_identity_token
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| env("AWS_WEB_IDENTITY_TOKEN").map(|t| Secret::new(t.into_bytes())));
        let token_file = non_empty(&w.web_identity_token_file)
            .map(str::to_string)
            .or_else(|| env("AWS_WEB_IDENTITY_TOKEN_FILE"));
        if token.is_none() && token_file.is_none() {
            return Err("assume_role_with_web_identity: one of web_identity_token or web_identity_token_file (or AWS_WEB_IDENTITY_TOKEN / AWS_WEB_IDENTITY_TOKEN_FILE) is required".into());
        }
        Ok(WebIdentityRole {
            role_arn,
            session_name: non_empty(&w.session_name)
                .map(str::to_string)
                .or_else(|| env("AWS_ROLE_SESSION_NAME")),
            token,
            token_file,
            duration: parse_duration(w.duration.as_deref())?,
            policy: w.policy.clone().filter(|p| !p.is_empty()),
            policy_arns: w.policy_arns.clone(),
            sts,
        })
    }

    async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => secret_string(t).map_err(CredentialsError::invalid_configuration)?,
            (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| {
                CredentialsError::invalid_configuration(format!(
                    "cannot read web_identity_token_file {f}: {e}"
                ))
            })?,
            (None, None) => unreachable!("checked in new"),
        };
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name(session_name(self.session_name.as_deref()))
            .web_identity_token(token.trim())
            .set_policy(self.policy.clone())
            .set_policy_arns(policy_arns(self.policy_arns.as_deref()))
            .set_duration_seconds(self.duration.map(|d| d.as_secs() as i32))
            .send()
            .await
            .map_err(|e| {
                CredentialsError::provider_error(format!(
                    "cannot assume IAM role {} with a web identity: {}",
                    self.role_arn,
                    describe_error(&e)
                ))
            })?;
        credentials_from_sts(out.credentials(), "stateseal-web-identity")
    }
}

impl ProvideCredentials for WebIdentityRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}

/// `allowed_account_ids` / `forbidden_account_ids`: one STS GetCallerIdentity, only when set.
pub(super) async fn check_account(config: &SdkConfig, s: &AwsSettings) -> Result<(), Error> {
    let allowed = s.allowed_account_ids.as_deref().unwrap_or_default();
    let forbidden = s.forbidden_account_ids.as_deref().unwrap_or_default();
    if allowed.is_empty() && forbidden.is_empty() {
        return Ok(());
    }
    let id = crate::clients::sts(config, s)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Error::Credentials {
            what: "cannot look up the AWS account ID (STS GetCallerIdentity)".into(),
            kind: classify(&e),
            message: describe_error(&e),
            source: Some(Box::new(e)),
        })?;
    let account = id.account().unwrap_or_default();
    if !allowed.is_empty() && !allowed.iter().any(|a| a == account) {
        return Err(Error::Account {
            account: account.to_string(),
            rule: AccountRule::NotAllowed(allowed.to_vec()),
        });
    }
    if forbidden.iter().any(|a| a == account) {
        return Err(Error::Account {
            account: account.to_string(),
            rule: AccountRule::Forbidden,
        });
    }
    Ok(())
}
