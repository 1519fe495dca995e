//! SDK configurations from [`AwsSettings`]: [`sdk_config`] (static keys or the standard chain,
//! then `assume_role_with_web_identity` and `assume_role` through STS, then the account check),
//! [`shared_sdk_config`] (the same, built once per process per settings) and
//! [`profile_credentials`] (one profile's credentials, for acting as that principal).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_sts::config::SharedCredentialsProvider;
use stateseal_core::Secret;

use crate::clients;
use crate::credentials::{
    check_account, profile_files, secret_string, standard_chain, with_credentials, AssumedRole,
    WebIdentityRole,
};
use crate::env::non_empty;
use crate::error::{error_chain, Error};
use crate::http_client::http_client;
use crate::settings::AwsSettings;

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
pub async fn shared_sdk_config(id: [u8; 32], settings: &AwsSettings) -> Result<SdkConfig, Error> {
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
pub async fn sdk_config(settings: &AwsSettings) -> Result<SdkConfig, Error> {
    settings.validate()?;
    let region = Region::new(settings.region()?);
    let http = http_client(settings).map_err(Error::Settings)?;
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
            return Err(Error::Settings(
                "access_key is set but secret_key is not".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(Error::Settings(
                "secret_key is set but access_key is not".into(),
            ))
        }
        _ => standard_chain(settings, &provider_config, profile_files),
    };
    let mut config = loader.credentials_provider(base).load().await;

    if let Some(w) = &settings.assume_role_with_web_identity {
        let provider =
            WebIdentityRole::new(w, clients::sts(&config, settings)).map_err(Error::Settings)?;
        config = with_credentials(config, provider);
    }
    if let Some(r) = &settings.assume_role {
        let provider =
            AssumedRole::new(r, clients::sts(&config, settings)).map_err(Error::Settings)?;
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
) -> Result<Credentials, Error> {
    use aws_credential_types::provider::ProvideCredentials as _;
    let provider_config = ProviderConfig::default()
        .with_http_client(http_client(settings).map_err(Error::Settings)?)
        .with_region(Some(Region::new(settings.region()?)));
    let mut p = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&provider_config)
        .profile_name(profile);
    if let Some(files) = profile_files(settings) {
        p = p.profile_files(files);
    }
    p.build().provide_credentials().await.map_err(|e| {
        use aws_credential_types::provider::error::CredentialsError as E;
        use stateseal_core::ServiceErrorKind as K;
        let kind = match &e {
            E::ProviderTimedOut(_) => K::Network,
            E::CredentialsNotLoaded(_) => K::AccessDenied,
            _ => K::Other,
        };
        Error::Credentials {
            what: format!("the credentials of profile {profile}"),
            kind,
            message: error_chain(&e),
            source: Some(Box::new(e)),
        }
    })
}
