//! Key provider `gcp_kms`: a random data key of `key_length` bytes made here, wrapped with Cloud
//! KMS `Encrypt` and unwrapped with `Decrypt` (`docs/ENCRYPTION-FORMAT.md` §3.3), over the KMS
//! REST API: `POST {endpoint}/v1/{kms_encryption_key}:encrypt` / `:decrypt`.
//!
//! `STATESEAL_GCP_KMS_ENDPOINT` overrides `https://cloudkms.googleapis.com` (tests point it at
//! a fake). Building reads a credentials file if one is named, and contacts nothing.

mod credentials;

use base64::Engine as _;
use ring::rand::SecureRandom as _;
use serde::Deserialize;
use serde_json::json;

use stateseal_core::ServiceErrorKind;

use super::{KeyProvider, Provided, ProviderError, Purpose};
use crate::http_json;
use credentials::{Credentials, Source};
use stateseal_core::secret::Secret;

pub use credentials::IAMCREDENTIALS_ENDPOINT_ENV;

pub const KMS_ENDPOINT_ENV: &str = "STATESEAL_GCP_KMS_ENDPOINT";
const DEFAULT_ENDPOINT: &str = "https://cloudkms.googleapis.com";
pub const MAX_KEY_LENGTH: i64 = 1024;
const MAX_AAD: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    credentials: String,
    #[serde(default)]
    access_token: Option<Secret>,
    #[serde(default)]
    impersonate_service_account: String,
    #[serde(default)]
    impersonate_service_account_delegates: Vec<String>,
    kms_encryption_key: Option<String>,
    key_length: Option<i64>,
    #[serde(default)]
    additional_authenticated_data: String,
}

/// A configured gcp_kms provider.
pub struct GcpKms {
    credentials: Credentials,
    key_name: String,
    key_length: usize,
    aad: Option<Vec<u8>>,
}

/// The stored metadata: `{"ciphertext":b64}`.
#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize"
    )]
    ciphertext: Vec<u8>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Builds the provider with OpenTofu's checks, in OpenTofu's order.
pub fn build(config: &serde_json::Value) -> Result<Box<dyn KeyProvider>, crate::ConfigError> {
    let c: Config = super::decode_config(config)?;
    let key_name = c
        .kms_encryption_key
        .ok_or(r#"The argument "kms_encryption_key" is required, but no definition was found."#)?;
    let key_length = c
        .key_length
        .ok_or(r#"The argument "key_length" is required, but no definition was found."#)?;
    let access_token = c
        .access_token
        .filter(|t| !t.is_empty())
        .or_else(|| env("GOOGLE_OAUTH_ACCESS_TOKEN").map(|t| Secret::new(t.into_bytes())));
    let creds = if c.credentials.is_empty() {
        env("GOOGLE_CREDENTIALS").unwrap_or_default()
    } else {
        c.credentials
    };
    let source = match (access_token, creds.is_empty()) {
        (Some(t), _) => Source::AccessToken(t),
        (None, false) => {
            let content = credentials::read_path_or_contents(&creds)?;
            if serde_json::from_str::<serde::de::IgnoredAny>(&content).is_err() {
                return Err("the string provided in credentials is neither valid json nor a valid file path".into());
            }
            Source::Json(Secret::new(content.into_bytes()))
        }
        (None, true) => Source::ApplicationDefault,
    };
    let impersonate = Some(c.impersonate_service_account)
        .filter(|s| !s.is_empty())
        .or_else(|| env("GOOGLE_BACKEND_IMPERSONATE_SERVICE_ACCOUNT"))
        .or_else(|| env("GOOGLE_IMPERSONATE_SERVICE_ACCOUNT"));
    if key_name.is_empty() {
        return Err("kms_key_name must be provided".into());
    }
    if key_length < 1 {
        return Err("key_length must be at least 1".into());
    }
    if key_length > MAX_KEY_LENGTH {
        return Err("key_length must be less than the GCP limit of 1024".into());
    }
    let aad = if c.additional_authenticated_data.is_empty() {
        None
    } else {
        let aad = B64.decode(&c.additional_authenticated_data).map_err(|e| {
            format!("additional_authenticated_data must be valid standard base64: {e}")
        })?;
        if aad.len() > MAX_AAD {
            return Err(
                "additional_authenticated_data must be less than the GCP limit of 64 KiB".into(),
            );
        }
        Some(aad)
    };
    Ok(Box::new(GcpKms {
        credentials: Credentials {
            source,
            impersonate,
            delegates: c.impersonate_service_account_delegates,
        },
        key_name,
        key_length: key_length as usize,
        aad,
    }))
}

#[derive(Deserialize)]
struct GoogleError {
    error: GoogleErrorBody,
}

#[derive(Deserialize)]
struct GoogleErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// `STATUS: message (HTTP n)` from a Google API error answer.
fn google_error(reply: &http_json::Reply) -> String {
    match reply.json::<GoogleError>() {
        Ok(e) => format!(
            "{}: {} (HTTP {})",
            e.error.status, e.error.message, reply.status
        ),
        Err(_) => format!("HTTP {}: {}", reply.status, reply.text_excerpt()),
    }
}

#[derive(Deserialize)]
struct EncryptResponse {
    ciphertext: Option<String>,
}

#[derive(Deserialize)]
struct DecryptResponse {
    plaintext: Option<Secret>,
}

impl GcpKms {
    /// POSTs `body` to `{key}:{op}`; the answer, or an error naming the key and the cause.
    fn call(&self, op: &str, body: serde_json::Value) -> Result<http_json::Reply, ProviderError> {
        let endpoint = env(KMS_ENDPOINT_ENV).unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let url = format!(
            "{}/v1/{}:{op}",
            endpoint.trim_end_matches('/'),
            self.key_name
        );
        let fail_as = |kind: ServiceErrorKind| {
            move |cause: String| {
                ProviderError::service(
                    kind,
                    format!(
                        "failed to {op} the data key with GCP KMS key {:?}: {cause}",
                        self.key_name
                    ),
                )
            }
        };
        let fail = fail_as(ServiceErrorKind::Other);
        let agent = http_json::agent(None).map_err(fail)?;
        let token = self.credentials.token(&agent).map_err(fail)?;
        let auth = zeroize::Zeroizing::new(format!(
            "Bearer {}",
            String::from_utf8_lossy(token.expose())
        ));
        let mut body = body;
        let reply = http_json::send_json(&agent, "POST", &url, &[("Authorization", &auth)], &body);
        stateseal_core::secret::scrub_json(&mut body);
        let reply = reply.map_err(fail_as(ServiceErrorKind::Network))?;
        if reply.is_success() {
            return Ok(reply);
        }
        let err = google_error(&reply);
        let hint = match reply.status {
            404 => " (check kms_encryption_key: projects/P/locations/L/keyRings/R/cryptoKeys/K)",
            403 => " (the caller needs roles/cloudkms.cryptoKeyEncrypterDecrypter on the key)",
            401 => " (check credentials or access_token)",
            400 if op == "decrypt" => {
                " (the stored ciphertext does not belong to this key, was altered, or additional_authenticated_data changed)"
            }
            _ => "",
        };
        Err(fail_as(ServiceErrorKind::from_http_status(reply.status))(
            format!("{err}{hint}"),
        ))
    }

    fn body(&self, field: &str, value: &[u8]) -> serde_json::Value {
        let mut body = json!({ field: B64.encode(value) });
        if let Some(aad) = &self.aad {
            body["additionalAuthenticatedData"] = json!(B64.encode(aad));
        }
        body
    }

    fn generate(&self) -> Result<Provided, ProviderError> {
        let mut key = vec![0u8; self.key_length];
        ring::rand::SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| ProviderError::Failed("failed to generate key".into()))?;
        let key = Secret::new(key);
        let reply = self.call("encrypt", self.body("plaintext", key.expose()))?;
        let ciphertext = reply
            .json::<EncryptResponse>()
            .map_err(ProviderError::Failed)?
            .ciphertext
            .ok_or_else(|| ProviderError::Failed("GCP KMS returned no ciphertext".into()))?;
        // Stored as Go writes []byte: the decoded bytes, base64 again.
        let ciphertext = B64
            .decode(&ciphertext)
            .map_err(|e| ProviderError::Failed(format!("GCP KMS returned bad base64: {e}")))?;
        let meta = format!("{{\"ciphertext\":\"{}\"}}", B64.encode(ciphertext));
        Ok(Provided::for_encryption(key, meta.into_bytes()))
    }

    fn decrypt(&self, ciphertext: &[u8]) -> Result<Secret, ProviderError> {
        let reply = self.call("decrypt", self.body("ciphertext", ciphertext))?;
        let plaintext = reply
            .json::<DecryptResponse>()
            .map_err(ProviderError::Failed)?
            .plaintext
            .ok_or_else(|| ProviderError::Failed("GCP KMS returned no plaintext".into()))?;
        B64.decode(plaintext.expose())
            .map(Secret::new)
            .map_err(|e| ProviderError::Failed(format!("GCP KMS returned bad base64: {e}")))
    }
}

impl KeyProvider for GcpKms {
    fn provide(&self, purpose: Purpose<'_>) -> Result<Provided, ProviderError> {
        super::wrapped_data_key(
            purpose,
            || self.generate(),
            |m: &Metadata| !m.ciphertext.is_empty(),
            |m| self.decrypt(&m.ciphertext),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_messages_in_opentofu_order() {
        let err = |v| build(&v).err().unwrap().to_string();
        let key = "projects/p/locations/l/keyRings/r/cryptoKeys/k";
        assert_eq!(
            err(json!({"kms_encryption_key": "", "key_length": 32, "access_token": "t"})),
            "kms_key_name must be provided"
        );
        assert_eq!(
            err(json!({"kms_encryption_key": key, "key_length": 0, "access_token": "t"})),
            "key_length must be at least 1"
        );
        assert_eq!(
            err(json!({"kms_encryption_key": key, "key_length": 1025, "access_token": "t"})),
            "key_length must be less than the GCP limit of 1024"
        );
        assert!(err(json!({"kms_encryption_key": key, "key_length": 32, "access_token": "t", "additional_authenticated_data": "!!"}))
            .starts_with("additional_authenticated_data must be valid standard base64"));
        // Credentials are resolved first, as in OpenTofu.
        assert_eq!(
            err(json!({"kms_encryption_key": "", "key_length": 32, "credentials": "{not json"})),
            "the string provided in credentials is neither valid json nor a valid file path"
        );
        assert!(err(json!({"key_length": 32})).contains("\"kms_encryption_key\" is required"));
        assert!(err(json!({"kms_encryption_key": key})).contains("\"key_length\" is required"));
    }
}
