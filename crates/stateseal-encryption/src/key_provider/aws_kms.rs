//! Key provider `aws_kms`: a data key from AWS KMS `GenerateDataKey`, stored encrypted
//! (`ciphertext_blob`) and read back with KMS `Decrypt` (`docs/ENCRYPTION-FORMAT.md` §3.2).
//!
//! Unlike OpenTofu, which calls `GenerateDataKey` on every setup, this provider calls only what
//! the purpose needs: `GenerateDataKey` to encrypt, `Decrypt` to decrypt. Building it does no
//! I/O. The SDK runs on stateseal-aws's process-wide runtime ([`stateseal_aws::block_on_thread`]),
//! so the provider can be called from inside a tokio runtime, and the SDK configuration (with its
//! credentials cache: one STS AssumeRole per process) is built once per settings and shared.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use super::{KeyProvider, Provided, ProviderError, Purpose};
use stateseal_aws::{block_on_thread, classify, describe_error, shared_sdk_config, AwsSettings};
use stateseal_core::Secret;

/// The `key_spec` values KMS `GenerateDataKey` accepts, in OpenTofu's order.
pub const KEY_SPECS: [&str; 2] = ["AES_256", "AES_128"];

const OWN_ATTRIBUTES: [&str; 3] = ["kms_key_id", "key_spec", "encryption_context"];

#[derive(Deserialize)]
struct Config {
    kms_key_id: Option<String>,
    key_spec: Option<String>,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
    #[serde(flatten)]
    aws: AwsSettings,
}

/// A configured aws_kms provider.
pub struct AwsKms {
    key_id: String,
    key_spec: aws_sdk_kms::types::DataKeySpec,
    encryption_context: BTreeMap<String, String>,
    aws: AwsSettings,
    /// Identifies `aws` for the process-wide SDK configuration cache (a digest of the settings
    /// as configured; the settings themselves are never kept there).
    settings_id: [u8; 32],
}

/// The stored metadata: `{"ciphertext_blob":b64}` plus `"encryption_context"` when non-empty.
#[derive(Deserialize, Default, Debug, PartialEq, Eq)]
pub struct Metadata {
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize"
    )]
    pub ciphertext_blob: Vec<u8>,
    #[serde(default)]
    pub encryption_context: Option<BTreeMap<String, String>>,
}

impl Metadata {
    /// The JSON OpenTofu writes (Go `encoding/json`: fields in struct order, map keys sorted,
    /// HTML-safe strings).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::from("{\"ciphertext_blob\":\"");
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(&self.ciphertext_blob));
        out.push('"');
        if let Some(ctx) = self.encryption_context.as_ref().filter(|c| !c.is_empty()) {
            out.push_str(",\"encryption_context\":{");
            for (i, (k, v)) in ctx.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                stateseal_core::gojson::write_string(&mut out, k);
                out.push(':');
                stateseal_core::gojson::write_string(&mut out, v);
            }
            out.push('}');
        }
        out.push('}');
        out.into_bytes()
    }
}

/// Builds the provider from its configuration. Does no I/O.
pub fn build(config: &serde_json::Value) -> Result<Box<dyn KeyProvider>, crate::ConfigError> {
    if let Some(obj) = config.as_object() {
        if let Some(unknown) = obj.keys().find(|k| {
            !OWN_ATTRIBUTES.contains(&k.as_str()) && !AwsSettings::ATTRIBUTES.contains(&k.as_str())
        }) {
            return Err(crate::ConfigError::from(format!(
                "unknown field `{unknown}`: An argument named {unknown:?} is not expected here"
            )));
        }
    }
    let c: Config = super::decode_config(config)?;
    let key_id = c
        .kms_key_id
        .ok_or(r#"The argument "kms_key_id" is required, but no definition was found."#)?;
    if key_id.is_empty() {
        return Err("no kms_key_id provided".into());
    }
    let key_spec = c
        .key_spec
        .ok_or(r#"The argument "key_spec" is required, but no definition was found."#)?;
    if key_spec.is_empty() {
        return Err("no key_spec provided".into());
    }
    if !KEY_SPECS.contains(&key_spec.as_str()) {
        return Err(crate::ConfigError::from(format!(
            "invalid key_spec {key_spec}, expected one of [{}]",
            KEY_SPECS.join(" ")
        )));
    }
    c.aws.validate().map_err(|e| e.to_string())?;
    // As OpenTofu does while building: the region must be known (attribute or environment).
    c.aws.region().map_err(|e| e.to_string())?;
    let mut settings_only = config.clone();
    if let Some(obj) = settings_only.as_object_mut() {
        obj.retain(|k, _| !OWN_ATTRIBUTES.contains(&k.as_str()));
    }
    let settings_id = stateseal_aws::settings_id(&settings_only);
    stateseal_core::secret::scrub_json(&mut settings_only);
    Ok(Box::new(AwsKms {
        settings_id,
        key_id,
        key_spec: aws_sdk_kms::types::DataKeySpec::from(key_spec.as_str()),
        encryption_context: c.encryption_context,
        aws: c.aws,
    }))
}

impl AwsKms {
    fn describe_target(&self, region: &str) -> String {
        let mut s = format!("KMS key {:?} in region {region}", self.key_id);
        if let Some(e) = self.aws.endpoint("kms") {
            s.push_str(&format!(" at {e}"));
        }
        s
    }

    async fn client(&self) -> Result<(aws_sdk_kms::Client, String), ProviderError> {
        let config = shared_sdk_config(self.settings_id, &self.aws)
            .await
            .map_err(|e| ProviderError::Failed(format!("AWS configuration: {e}")))?;
        let region = config.region().map(|r| r.to_string()).unwrap_or_default();
        let mut b = aws_sdk_kms::config::Builder::from(&config);
        if let Some(e) = self.aws.endpoint("kms") {
            b = b.endpoint_url(e);
        }
        Ok((aws_sdk_kms::Client::from_conf(b.build()), region))
    }

    async fn generate(&self) -> Result<Provided, ProviderError> {
        let (kms, region) = self.client().await?;
        let mut out = kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(self.key_spec.clone())
            .set_encryption_context(
                (!self.encryption_context.is_empty())
                    .then(|| self.encryption_context.clone().into_iter().collect()),
            )
            .send()
            .await
            .map_err(|e| {
                ProviderError::service(
                    classify(&e),
                    format!(
                        "failed to generate a data key with {}: {}{}",
                        self.describe_target(&region),
                        describe_error(&e),
                        hint(&e),
                    ),
                )
            })?;
        let key = out
            .plaintext
            .take()
            .map(|b| Secret::new(b.into_inner()))
            .ok_or_else(|| ProviderError::Failed("KMS returned no plaintext data key".into()))?;
        let blob = out
            .ciphertext_blob
            .take()
            .map(|b| b.into_inner())
            .ok_or_else(|| ProviderError::Failed("KMS returned no ciphertext blob".into()))?;
        let meta = Metadata {
            ciphertext_blob: blob,
            encryption_context: Some(self.encryption_context.clone()),
        };
        Ok(Provided::for_encryption(key, meta.to_json()))
    }

    async fn decrypt(&self, meta: Metadata) -> Result<Secret, ProviderError> {
        let (kms, region) = self.client().await?;
        let mut out = kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(meta.ciphertext_blob))
            .set_encryption_context(
                meta.encryption_context
                    .filter(|c| !c.is_empty())
                    .map(|c| c.into_iter().collect()),
            )
            .send()
            .await
            .map_err(|e| {
                ProviderError::service(
                    classify(&e),
                    format!(
                        "failed to decrypt the stored data key with {}: {}{}",
                        self.describe_target(&region),
                        describe_error(&e),
                        hint(&e),
                    ),
                )
            })?;
        out.plaintext
            .take()
            .map(|b| Secret::new(b.into_inner()))
            .ok_or_else(|| ProviderError::Failed("KMS Decrypt returned no plaintext".into()))
    }
}

/// A next step for the errors users most often meet.
fn hint<E: aws_sdk_kms::error::ProvideErrorMetadata>(
    e: &aws_sdk_kms::error::SdkError<E>,
) -> &'static str {
    let code = e
        .as_service_error()
        .and_then(|s| s.code())
        .unwrap_or_default();
    let status = e.raw_response().map(|r| r.status().as_u16());
    match code {
        "NotFoundException" => " (check kms_key_id and region: a key or alias exists in one region only)",
        "InvalidCiphertextException" => {
            " (the stored ciphertext_blob or encryption_context does not belong to this key, or was altered)"
        }
        "IncorrectKeyException" => " (the data key was encrypted under another KMS key)",
        "AccessDeniedException" => " (the caller's IAM or key policy does not allow this KMS call)",
        _ if status == Some(403) => " (the caller's IAM or key policy does not allow this KMS call)",
        _ => "",
    }
}

impl KeyProvider for AwsKms {
    fn provide(&self, purpose: Purpose<'_>) -> Result<Provided, ProviderError> {
        match purpose {
            Purpose::Encrypt => block_on_thread(self.generate()),
            Purpose::Decrypt { stored } => {
                let meta: Metadata = super::stored_metadata(stored)?;
                let key = (!meta.ciphertext_blob.is_empty())
                    .then(|| block_on_thread(self.decrypt(meta)))
                    .transpose()?;
                Ok(Provided::for_decryption(key))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: serde_json::Value) -> String {
        build(&v).err().unwrap().to_string()
    }

    #[test]
    fn configuration_errors_have_opentofu_messages() {
        assert_eq!(
            err(json!({"kms_key_id": "", "key_spec": "AES_256"})),
            "no kms_key_id provided"
        );
        assert_eq!(
            err(json!({"kms_key_id": "alias/x", "key_spec": ""})),
            "no key_spec provided"
        );
        assert_eq!(
            err(json!({"kms_key_id": "alias/x", "key_spec": "AES_512"})),
            "invalid key_spec AES_512, expected one of [AES_256 AES_128]"
        );
        assert!(err(json!({"key_spec": "AES_256"})).contains("\"kms_key_id\" is required"));
        assert!(
            err(json!({"kms_key_id": "k", "key_spec": "AES_256", "kms_endpoint": "x"}))
                .contains("unknown field `kms_endpoint`")
        );
        assert!(err(json!({"kms_key_id": "k", "key_spec": "AES_256", "assume_role": {"role_arn": "r", "duration": "1m"}}))
            .contains("between 15m0s and 12h0m0s"));
    }

    #[test]
    fn building_accepts_every_shared_attribute_without_io() {
        let p = build(&json!({
            "kms_key_id": "alias/tofu", "key_spec": "AES_128", "region": "eu-west-1",
            "profile": "p", "max_retries": 3, "retry_mode": "adaptive", "sts_region": "us-east-1",
            "endpoints": {"sts": "127.0.0.1:9", "iam": "http://127.0.0.1:9"},
            "assume_role": {"role_arn": "arn:aws:iam::123456789012:role/x", "duration": "1h",
                "tags": {"a": "b"}, "transitive_tag_keys": ["a"], "session_name": "s",
                "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]},
            "skip_credentials_validation": true, "skip_requesting_account_id": true,
            "skip_metadata_api_check": true, "shared_credentials_files": ["~/c"],
            "encryption_context": {"team": "infra"}
        }));
        assert!(p.is_ok(), "{:?}", p.err());
    }

    #[test]
    fn metadata_json_matches_opentofu() {
        let m = Metadata {
            ciphertext_blob: vec![1, 2, 3],
            encryption_context: Some(BTreeMap::new()),
        };
        assert_eq!(m.to_json(), br#"{"ciphertext_blob":"AQID"}"#);
        let m = Metadata {
            ciphertext_blob: vec![1, 2, 3],
            encryption_context: Some(BTreeMap::from([
                ("z".to_string(), "<&>".to_string()),
                ("a".to_string(), "1".to_string()),
            ])),
        };
        let json = m.to_json();
        assert_eq!(
            json,
            br#"{"ciphertext_blob":"AQID","encryption_context":{"a":"1","z":"\u003c\u0026\u003e"}}"#
        );
        let back: Metadata = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn decrypt_without_stored_blob_calls_nothing() {
        // The endpoint is unreachable: any call would fail.
        let p = build(
            &json!({"kms_key_id": "k", "key_spec": "AES_256", "region": "us-east-1",
            "endpoints": {"kms": "http://127.0.0.1:9"}, "access_key": "a", "secret_key": "b"}),
        )
        .unwrap();
        for stored in [None, Some(&b"{}"[..]), Some(br#"{"ciphertext_blob":null}"#)] {
            let got = p.provide(Purpose::Decrypt { stored }).unwrap();
            assert!(got.keys.decryption_key.is_none() && got.metadata.is_none());
        }
        assert!(matches!(
            p.provide(Purpose::Decrypt {
                stored: Some(b"[1]")
            }),
            Err(ProviderError::Metadata(_))
        ));
    }

    #[test]
    fn unreachable_endpoint_names_key_region_and_cause() {
        let p = build(&json!({"kms_key_id": "alias/state", "key_spec": "AES_256",
            "region": "eu-central-1", "max_retries": 1,
            "endpoints": {"kms": "http://127.0.0.1:9"}, "access_key": "a", "secret_key": "b"}))
        .unwrap();
        let e = p
            .provide(Purpose::Encrypt)
            .err()
            .unwrap()
            .to_string()
            .to_string();
        assert!(e.contains("\"alias/state\""), "{e}");
        assert!(e.contains("eu-central-1"), "{e}");
        assert!(e.contains("http://127.0.0.1:9"), "{e}");
        assert!(
            e.to_lowercase().contains("connect") || e.contains("refused"),
            "{e}"
        );
    }
}
