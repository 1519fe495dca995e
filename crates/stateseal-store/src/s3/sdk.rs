//! Turns [`AuthSettings`] into an AWS `SdkConfig`: region, credentials (static keys, profile,
//! shared files, the default chain), role assumption, retries, TLS roots.
//!
//! Kept behind this one function so it can be swapped for the encryption crate's shared
//! `AwsSettings::sdk_config` (the `aws_kms` key provider needs the same) once that lands.

use std::time::Duration;

use aws_config::meta::credentials::CredentialsProviderChain;
#[allow(deprecated)]
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};

use super::builder::AuthSettings;
use crate::{Error, Result};

/// The HTTPS client (rustls with ring; the process-wide roots unless `custom_ca_bundle`).
pub fn http_client(auth: &AuthSettings) -> Result<aws_sdk_s3::config::SharedHttpClient> {
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    let builder = match &auth.custom_ca_bundle {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| Error::Config(format!("custom_ca_bundle {path}: {e}")))?;
            let ctx = TlsContext::builder()
                .with_trust_store(TrustStore::default().with_pem_certificate(pem))
                .build()
                .map_err(|e| Error::Config(format!("custom_ca_bundle {path}: {e}")))?;
            builder.tls_context(ctx)
        }
        None => builder,
    };
    Ok(builder.build_https())
}

/// Builds the SDK configuration. Contacts STS only for role assumption.
#[allow(deprecated)]
pub async fn sdk_config(auth: &AuthSettings) -> Result<SdkConfig> {
    let http = http_client(auth)?;
    let mut retry = match auth.retry_mode.as_deref() {
        Some("adaptive") => RetryConfig::adaptive(),
        _ => RetryConfig::standard(),
    };
    retry = retry.with_max_attempts(auth.max_retries.unwrap_or(5).max(1));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(auth.region.clone()))
        .retry_config(retry)
        .use_fips(auth.use_fips_endpoint)
        .use_dual_stack(auth.use_dualstack_endpoint);
    let files = (!auth.shared_credentials_files.is_empty() || !auth.shared_config_files.is_empty())
        .then(|| {
            let mut b = ProfileFiles::builder();
            for f in &auth.shared_credentials_files {
                b = b.with_file(ProfileFileKind::Credentials, expand_home(f));
            }
            for f in &auth.shared_config_files {
                b = b.with_file(ProfileFileKind::Config, expand_home(f));
            }
            if auth.shared_config_files.is_empty() {
                b = b.include_default_config_file(true);
            }
            if auth.shared_credentials_files.is_empty() {
                b = b.include_default_credentials_file(true);
            }
            b.build()
        });
    if let Some(f) = &files {
        loader = loader.profile_files(f.clone());
    }
    if let Some(p) = &auth.profile {
        loader = loader.profile_name(p);
    }
    match (&auth.access_key, &auth.secret_key) {
        (Some(ak), Some(sk)) => {
            let creds = Credentials::new(
                ak,
                String::from_utf8_lossy(sk.expose()),
                auth.token
                    .as_ref()
                    .map(|t| String::from_utf8_lossy(t.expose()).into_owned()),
                None,
                "backend-config",
            );
            loader = loader.credentials_provider(creds);
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Config(
                "access_key and secret_key must be set together".into(),
            ))
        }
        (None, None) if auth.skip_metadata_api_check => {
            // The default chain without the instance metadata service.
            let mut profile = aws_config::profile::ProfileFileCredentialsProvider::builder();
            if let Some(p) = &auth.profile {
                profile = profile.profile_name(p);
            }
            if let Some(f) = &files {
                profile = profile.profile_files(f.clone());
            }
            let chain = CredentialsProviderChain::first_try(
                "Environment",
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            )
            .or_else("Profile", profile.build())
            .or_else(
                "WebIdentityToken",
                aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                    .build(),
            );
            loader = loader.credentials_provider(chain);
        }
        (None, None) => {}
    }
    let base = loader.load().await;
    let Some(role) = assumed(auth, &base).await? else {
        return Ok(base);
    };
    Ok(base
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(role))
        .build())
}

/// Role assumption: `assume_role` or `assume_role_with_web_identity`, with one STS call each
/// (a CLI run is shorter than any session).
async fn assumed(auth: &AuthSettings, base: &SdkConfig) -> Result<Option<Credentials>> {
    if auth.assume_role.is_none() && auth.web_identity.is_none() {
        return Ok(None);
    }
    let mut sts = aws_sdk_sts::config::Builder::from(base);
    if let Some(r) = &auth.sts_region {
        sts = sts.region(Region::new(r.clone()));
    }
    if let Some(e) = &auth.endpoints.sts {
        sts = sts.endpoint_url(e);
    }
    let sts = aws_sdk_sts::Client::from_conf(sts.build());
    let fail =
        |what: &str, arn: &str, e: String| Error::Config(format!("cannot {what} {arn}: {e}"));
    let (creds, arn) = if let Some(ar) = &auth.assume_role {
        let mut req = sts
            .assume_role()
            .role_arn(&ar.role_arn)
            .role_session_name(ar.session_name.clone().unwrap_or_else(session_name));
        if let Some(x) = &ar.external_id {
            req = req.external_id(x);
        }
        if let Some(d) = ar.duration_seconds {
            req = req.duration_seconds(d);
        }
        if let Some(p) = &ar.policy {
            req = req.policy(p);
        }
        for a in &ar.policy_arns {
            req = req.policy_arns(
                aws_sdk_sts::types::PolicyDescriptorType::builder()
                    .arn(a)
                    .build(),
            );
        }
        for (k, v) in &ar.tags {
            let tag = aws_sdk_sts::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| Error::Config(e.to_string()))?;
            req = req.tags(tag);
        }
        for k in &ar.transitive_tag_keys {
            req = req.transitive_tag_keys(k);
        }
        let out = req
            .send()
            .await
            .map_err(|e| fail("assume role", &ar.role_arn, super::client::describe(&e)))?;
        (out.credentials, ar.role_arn.clone())
    } else {
        let wi = auth.web_identity.as_ref().expect("checked");
        let token = match (&wi.web_identity_token, &wi.web_identity_token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| Error::Config(format!("web_identity_token_file {f}: {e}")))?
                .trim()
                .to_string(),
            (None, None) => return Err(Error::Config(
                "assume_role_with_web_identity needs web_identity_token or web_identity_token_file"
                    .into(),
            )),
        };
        let mut req = sts
            .assume_role_with_web_identity()
            .role_arn(&wi.role_arn)
            .web_identity_token(token)
            .role_session_name(wi.session_name.clone().unwrap_or_else(session_name));
        if let Some(d) = wi.duration_seconds {
            req = req.duration_seconds(d);
        }
        if let Some(p) = &wi.policy {
            req = req.policy(p);
        }
        for a in &wi.policy_arns {
            req = req.policy_arns(
                aws_sdk_sts::types::PolicyDescriptorType::builder()
                    .arn(a)
                    .build(),
            );
        }
        let out = req.send().await.map_err(|e| {
            fail(
                "assume role with web identity",
                &wi.role_arn,
                super::client::describe(&e),
            )
        })?;
        (out.credentials, wi.role_arn.clone())
    };
    let c = creds.ok_or_else(|| fail("assume role", &arn, "STS returned no credentials".into()))?;
    let expiry = std::time::SystemTime::try_from(c.expiration).ok();
    Ok(Some(Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        expiry,
        "assume-role",
    )))
}

fn session_name() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    format!("stateseal-{}", now.as_secs())
}

fn expand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}
