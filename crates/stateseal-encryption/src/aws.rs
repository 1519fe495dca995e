//! AWS settings shared by everything that talks to AWS: the `aws_kms` key provider here, and the
//! S3 backend elsewhere. OpenTofu copies these attributes from its S3 backend into `aws_kms`, so
//! they are written once, with the S3 backend's names.
//!
//! * [`AwsSettings`]: the common attributes (serde; embed it or deserialize it on its own);
//! * [`sdk_config`]: an AWS SDK configuration from them: explicit static keys, or the standard
//!   credential chain (environment, profile and shared files, web identity, ECS, instance
//!   metadata), then `assume_role_with_web_identity` and `assume_role` through STS;
//! * [`block_on_thread`]: runs an SDK future to completion on a thread of its own with its own
//!   current-thread runtime, so synchronous code can call the async SDK from anywhere, inside
//!   another tokio runtime included.
//!
//! Nothing here does I/O until [`sdk_config`] is awaited, and even then only an
//! `assume_role*` (STS) or an account check (`allowed_account_ids`) calls AWS before the
//! caller's own request.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
#[allow(deprecated)]
// the replacement lives in aws-runtime, which we do not depend on directly
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_sdk_sts::config::{SharedCredentialsProvider, SharedHttpClient};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls;
use serde::Deserialize;

use crate::secret::Secret;

/// The AWS attributes OpenTofu's S3 backend and `aws_kms` key provider share, with their names.
/// Every field is optional; environment fallbacks are applied by [`sdk_config`], not here.
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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|v| !v.is_empty())
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
    pub fn validate(&self) -> Result<(), String> {
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
    pub fn region(&self) -> Result<String, String> {
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
fn parse_duration(v: Option<&str>) -> Result<Option<Duration>, String> {
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

/// Runs `fut` to completion on a new thread with its own current-thread tokio runtime and
/// returns its output. Safe to call from synchronous code running inside another runtime (where
/// `Runtime::block_on` would panic); the calling thread blocks until the future is done.
pub fn block_on_thread<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("stateseal-aws".into())
            .spawn_scoped(scope, || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread tokio runtime builds")
                    .block_on(fut)
            })
            .expect("spawning a thread")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Builds an SDK configuration from `settings` (see the module documentation). Service clients
/// built from it still need their own endpoint override: `settings.endpoint("kms")`.
pub async fn sdk_config(settings: &AwsSettings) -> Result<SdkConfig, String> {
    settings.validate()?;
    let region = Region::new(settings.region()?);
    let http = http_client(settings)?;
    let mut retry = match non_empty(&settings.retry_mode) {
        Some("adaptive") => RetryConfig::adaptive(),
        _ => RetryConfig::standard(),
    };
    // OpenTofu: 0 (unset) means 5.
    retry = retry.with_max_attempts(settings.max_retries.filter(|n| *n > 0).unwrap_or(5));
    let profile_files = profile_files(settings);

    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http.clone())
        .region(region.clone())
        .retry_config(retry.clone());
    if let Some(v) = settings.use_fips_endpoint {
        loader = loader.use_fips(v);
    }
    if let Some(v) = settings.use_dualstack_endpoint {
        loader = loader.use_dual_stack(v);
    }
    if let Some(files) = &profile_files {
        loader = loader.profile_files(files.clone());
    }
    if let Some(p) = non_empty(&settings.profile) {
        loader = loader.profile_name(p);
    }
    let provider_config = ProviderConfig::default()
        .with_http_client(http)
        .with_region(Some(region.clone()))
        .with_retry_config(retry);
    let base = match (&settings.access_key, &settings.secret_key) {
        (Some(ak), Some(sk)) if !ak.is_empty() => SharedCredentialsProvider::new(Credentials::new(
            ak,
            secret_string(sk)?,
            settings.token.as_ref().map(secret_string).transpose()?,
            None,
            "stateseal-static",
        )),
        (Some(ak), None) if !ak.is_empty() => {
            return Err("access_key is set but secret_key is not".into())
        }
        (None, Some(_)) => return Err("secret_key is set but access_key is not".into()),
        _ => standard_chain(settings, &provider_config, profile_files),
    };
    let mut config = loader.credentials_provider(base).load().await;

    if let Some(w) = &settings.assume_role_with_web_identity {
        let provider = WebIdentityRole::new(w, sts_client(&config, settings))?;
        config = with_credentials(config, provider);
    }
    if let Some(r) = &settings.assume_role {
        let provider = AssumedRole {
            role: r.clone(),
            duration: parse_duration(r.duration.as_deref())?,
            sts: sts_client(&config, settings),
        };
        config = with_credentials(config, provider);
    }
    check_account(&config, settings).await?;
    Ok(config)
}

fn secret_string(s: &Secret) -> Result<String, String> {
    String::from_utf8(s.expose().to_vec()).map_err(|_| "a credential is not valid UTF-8".into())
}

fn with_credentials(config: SdkConfig, p: impl ProvideCredentials + 'static) -> SdkConfig {
    config
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(p))
        .build()
}

/// The files from `shared_credentials_files` / `shared_config_files`, else from
/// `AWS_SHARED_CREDENTIALS_FILE` / `AWS_SHARED_CONFIG_FILE` (OpenTofu reads both), else `None`
/// (the SDK's defaults, `~/.aws/credentials` and `~/.aws/config`).
#[allow(deprecated)]
fn profile_files(s: &AwsSettings) -> Option<ProfileFiles> {
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

fn expand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), env("HOME")) {
        (Some(rest), Some(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

/// The standard chain: environment, shared profile files, web identity (from the environment
/// or profile), ECS container credentials, then EC2 instance metadata unless
/// `skip_metadata_api_check = true`.
#[allow(deprecated)]
fn standard_chain(
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

fn http_client(s: &AwsSettings) -> Result<SharedHttpClient, String> {
    use aws_smithy_http_client::proxy::ProxyConfig;
    let ca = non_empty(&s.custom_ca_bundle)
        .map(str::to_string)
        .or_else(|| env("AWS_CA_BUNDLE"));
    let mut tls_context = tls::TlsContext::builder();
    if let Some(path) = ca {
        let pem = std::fs::read(expand_home(&path))
            .map_err(|e| format!("cannot read custom_ca_bundle {path}: {e}"))?;
        tls_context = tls_context.with_trust_store(
            tls::TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(pem),
        );
    }
    let tls_context = tls_context
        .build()
        .map_err(|e| format!("invalid TLS configuration: {e}"))?;
    let provider = tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring);

    // Proxies: the attributes, else HTTP_PROXY / HTTPS_PROXY / NO_PROXY (as OpenTofu does).
    let http_proxy = non_empty(&s.http_proxy).map(str::to_string);
    let https_proxy = non_empty(&s.https_proxy).map(str::to_string);
    let proxy = if http_proxy.is_none() && https_proxy.is_none() {
        ProxyConfig::from_env()
    } else {
        let bad = |e: aws_smithy_http_client::proxy::ProxyError| format!("invalid proxy: {e}");
        let mut p = match (&http_proxy, &https_proxy) {
            (Some(h), Some(hs)) if h == hs => ProxyConfig::all(h.as_str()).map_err(bad)?,
            (_, Some(hs)) => ProxyConfig::https(hs.as_str()).map_err(bad)?,
            (Some(h), None) => ProxyConfig::http(h.as_str()).map_err(bad)?,
            (None, None) => unreachable!(),
        };
        if let Some(np) = non_empty(&s.no_proxy) {
            p = p.no_proxy(np);
        }
        p
    };
    if proxy.is_disabled() {
        return Ok(aws_smithy_http_client::Builder::new()
            .tls_provider(provider)
            .tls_context(tls_context)
            .build_https());
    }
    Ok(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, rc| {
            let mut b = aws_smithy_http_client::Connector::builder();
            b.set_connector_settings(settings.cloned());
            b.set_sleep_impl(rc.and_then(|rc| rc.sleep_impl()));
            b.proxy_config(proxy.clone())
                .tls_provider(provider.clone())
                .tls_context(tls_context.clone())
                .build()
        }),
    )
}

fn sts_client(config: &SdkConfig, s: &AwsSettings) -> aws_sdk_sts::Client {
    let mut b = aws_sdk_sts::config::Builder::from(config);
    if let Some(r) = non_empty(&s.sts_region) {
        b = b.region(Region::new(r.to_string()));
    }
    if let Some(e) = s.endpoint("sts") {
        b = b.endpoint_url(e);
    }
    aws_sdk_sts::Client::from_conf(b.build())
}

/// A readable description of an SDK error: the service's error code and message when there is
/// one, the HTTP status, else the whole error chain (connection refused, DNS, timeouts, …).
pub fn describe_error<E>(err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let status = se.raw().status().as_u16();
            match (e.code(), e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m} (HTTP {status})"),
                (Some(c), None) => format!("{c} (HTTP {status})"),
                _ => {
                    let body: String = se
                        .raw()
                        .body()
                        .bytes()
                        .map(|b| String::from_utf8_lossy(b).chars().take(300).collect())
                        .unwrap_or_default();
                    match xml_message(&body) {
                        Some(m) => format!("{m} (HTTP {status})"),
                        None if status == 403 => format!("AccessDenied (HTTP 403): {body}"),
                        None => format!("HTTP {status}: {body}"),
                    }
                }
            }
        }
        other => error_chain(other),
    }
}

/// `outer: inner: innermost`, from `Display` of each error in the source chain (the SDK's own
/// `DisplayErrorContext` adds `Debug` output, which is unreadable).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let msg = e.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// `<Code>…</Code>: <Message>…</Message>` from an XML error body (moto answers JSON-protocol
/// services' auth errors in XML, which the SDK cannot parse).
fn xml_message(body: &str) -> Option<String> {
    let tag = |t: &str| {
        let start = body.find(&format!("<{t}>"))? + t.len() + 2;
        let end = body[start..].find(&format!("</{t}>"))? + start;
        Some(body[start..end].to_string())
    };
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (Some(c), None) => Some(c),
        (None, Some(m)) => Some(m),
        (None, None) => None,
    }
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
struct AssumedRole {
    role: AssumeRole,
    duration: Option<Duration>,
    sts: aws_sdk_sts::Client,
}

impl AssumedRole {
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
struct WebIdentityRole {
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
    fn new(w: &AssumeRoleWithWebIdentity, sts: aws_sdk_sts::Client) -> Result<Self, String> {
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
async fn check_account(config: &SdkConfig, s: &AwsSettings) -> Result<(), String> {
    let allowed = s.allowed_account_ids.as_deref().unwrap_or_default();
    let forbidden = s.forbidden_account_ids.as_deref().unwrap_or_default();
    if allowed.is_empty() && forbidden.is_empty() {
        return Ok(());
    }
    let id = sts_client(config, s)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| format!("cannot look up the AWS account ID: {}", describe_error(&e)))?;
    let account = id.account().unwrap_or_default();
    if !allowed.is_empty() && !allowed.iter().any(|a| a == account) {
        return Err(format!(
            "AWS account ID not allowed: {account} (allowed_account_ids: {})",
            allowed.join(", ")
        ));
    }
    if forbidden.iter().any(|a| a == account) {
        return Err(format!(
            "AWS account ID not allowed: {account} (it is in forbidden_account_ids)"
        ));
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
    fn block_on_thread_works_inside_a_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(async { block_on_thread(async { 7 }) });
        assert_eq!(got, 7);
    }

    #[test]
    fn region_is_required() {
        if env("AWS_REGION").is_some() || env("AWS_DEFAULT_REGION").is_some() {
            return;
        }
        assert!(AwsSettings::default()
            .region()
            .unwrap_err()
            .contains("AWS_REGION"));
    }
}
