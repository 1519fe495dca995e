//! AWS settings shared by everything that talks to AWS: the `aws_kms` key provider and the S3
//! backend. OpenTofu copies these attributes from its S3 backend into `aws_kms`, so
//! they are written once, with the S3 backend's names.
//!
//! * [`AwsSettings`]: the common attributes (serde; embed it or deserialize it on its own);
//! * [`sdk_config`]: an AWS SDK configuration from them: explicit static keys, or the standard
//!   credential chain (environment, profile and shared files, web identity, ECS, instance
//!   metadata), then `assume_role_with_web_identity` and `assume_role` through STS;
//! * [`shared_sdk_config`]: the same, built once per process per settings and shared, for
//!   synchronous callers (the credentials cache inside it means one STS AssumeRole per process);
//! * [`profile_credentials`]: one profile's credentials, for acting as that principal;
//! * [`block_on_thread`]: runs an SDK future to completion on the process-wide AWS runtime from
//!   a thread of its own, so synchronous code can call the async SDK from anywhere, inside
//!   another tokio runtime included, and SDK clients live in one runtime for the whole process.
//!
//! Nothing here does I/O until [`sdk_config`] is awaited, and even then only an
//! `assume_role*` (STS) or an account check (`allowed_account_ids`) calls AWS before the
//! caller's own request.

mod credentials;
mod http_client;
mod settings;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};

use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_sts::config::SharedCredentialsProvider;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use stateseal_core::Secret;

pub use settings::{AssumeRole, AssumeRoleWithWebIdentity, AwsSettings, Endpoints};

use credentials::{
    check_account, profile_files, secret_string, standard_chain, sts_client, with_credentials,
    AssumedRole, WebIdentityRole,
};
use http_client::http_client;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|v| !v.is_empty())
}

fn expand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), env("HOME")) {
        (Some(rest), Some(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

/// The process-wide runtime every synchronous SDK call runs on. It lives as long as the process,
/// so connection pools and credential caches built on it stay valid between calls.
fn aws_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("stateseal-aws")
            .enable_all()
            .build()
            .expect("the AWS tokio runtime builds")
    })
}

/// Runs `fut` to completion on the process-wide AWS runtime and returns its output. A scoped
/// thread of its own calls into the runtime, so this is safe from synchronous code running inside
/// another runtime (where `Runtime::block_on` would panic); the calling thread blocks until the
/// future is done.
pub fn block_on_thread<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("stateseal-aws-call".into())
            .spawn_scoped(scope, || aws_runtime().block_on(fut))
            .expect("spawning a thread")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// A digest that identifies AWS settings as configured (a JSON value), for [`shared_sdk_config`].
/// The JSON text, which can hold secret keys, is wiped after hashing.
pub fn settings_id(config: &serde_json::Value) -> [u8; 32] {
    let text = Secret::new(config.to_string().into_bytes());
    let d = ring::digest::digest(&ring::digest::SHA256, text.expose());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// [`sdk_config`], built once per process for each `id` (see [`settings_id`]) and shared. Await
/// it only inside [`block_on_thread`]: the configuration's HTTP connections and credentials cache
/// belong to the process-wide AWS runtime.
pub async fn shared_sdk_config(id: [u8; 32], settings: &AwsSettings) -> Result<SdkConfig, String> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], SdkConfig>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
        return Ok(c.clone());
    }
    let built = sdk_config(settings).await?;
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    Ok(map.entry(id).or_insert(built).clone())
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
        let provider = AssumedRole::new(r, sts_client(&config, settings))?;
        config = with_credentials(config, provider);
    }
    check_account(&config, settings).await?;
    Ok(config)
}

/// The credentials of one shared-config profile, and only of it: unlike the standard chain,
/// the environment's `AWS_ACCESS_KEY_ID` never stands in for them. For acting as a given
/// principal (proving what it may not do). The profile files are the settings' (or the
/// environment's); a role profile calls STS through the settings' HTTP client.
pub async fn profile_credentials(
    settings: &AwsSettings,
    profile: &str,
) -> Result<Credentials, String> {
    use aws_credential_types::provider::ProvideCredentials as _;
    let provider_config = ProviderConfig::default()
        .with_http_client(http_client(settings)?)
        .with_region(Some(Region::new(settings.region()?)));
    let mut p = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&provider_config)
        .profile_name(profile);
    if let Some(files) = profile_files(settings) {
        p = p.profile_files(files);
    }
    p.build()
        .provide_credentials()
        .await
        .map_err(|e| format!("the credentials of profile {profile}: {}", error_chain(&e)))
}

/// The kind of an SDK error: network trouble, throttling, access denied, not found, or other.
pub fn classify<E>(err: &SdkError<E>) -> stateseal_core::ServiceErrorKind
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    use stateseal_core::ServiceErrorKind as K;
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => K::Network,
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            let status = se.raw().status().as_u16();
            if code.starts_with("AccessDenied")
                || matches!(
                    code,
                    "UnrecognizedClientException"
                        | "InvalidClientTokenId"
                        | "ExpiredToken"
                        | "ExpiredTokenException"
                        | "SignatureDoesNotMatch"
                        | "InvalidAccessKeyId"
                )
            {
                K::AccessDenied
            } else if code.contains("Throttl")
                || matches!(code, "SlowDown" | "RequestLimitExceeded")
            {
                K::Throttled
            } else if code.starts_with("NotFound")
                || code.starts_with("NoSuch")
                || code == "ResourceNotFoundException"
            {
                K::NotFound
            } else {
                match K::from_http_status(status) {
                    K::Other if code.is_empty() && status >= 500 => K::Other,
                    k => k,
                }
            }
        }
        _ => K::Other,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_thread_works_inside_a_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(async { block_on_thread(async { 7 }) });
        assert_eq!(got, 7);
    }
}
