//! "Describe a file without a key": what a state or plan file is (encrypted or plain, state or
//! plan, envelope version, every key provider's public metadata, serial, lineage, sizes), read
//! from the bytes alone. `stateseal inspect` renders it; the fleet audit calls it per object.
//! Nothing here contacts a key service or needs a configuration.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::envelope::{Header, NotEnvelope};

/// What a file is. Serialized, this is `stateseal inspect --json`'s `report` (stable names).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Description {
    pub encrypted: bool,
    /// `state`, `plan`, `empty` or `unknown`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope_version: Option<String>,
    /// Is the envelope version one this library reads (`v0`)?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_supported: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_data_bytes: Option<usize>,
    /// One entry per key provider that stored metadata, in storage-key order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<MetadataEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_version: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terraform_version: Option<Value>,
    /// Present (maybe `null`) for states, plaintext or envelope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Value>,
    /// Root output names (plaintext states only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<String>>,
    /// Number of resources (plaintext states only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<usize>,
    /// Why the bytes are neither an envelope nor a state or plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One key provider's stored metadata, as far as it can be read without a key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetadataEntry {
    /// The storage key (`key_provider.TYPE.NAME`, or an `encrypted_metadata_alias`).
    pub key: String,
    /// The provider type, from the key or (for an alias) guessed from the fields.
    pub provider_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_guessed: Option<bool>,
    pub name: Option<String>,
    /// The storage key is an alias, not `key_provider.TYPE.NAME`.
    pub alias: bool,
    /// Public parameters: pbkdf2 iterations, hash and salt size; KMS blob sizes; …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Deserialize)]
struct PlainState {
    version: Option<Value>,
    terraform_version: Option<Value>,
    serial: Option<Value>,
    lineage: Option<Value>,
    #[serde(default)]
    outputs: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    resources: Option<Vec<serde::de::IgnoredAny>>,
}

/// Describes `bytes` without any key.
pub fn describe(bytes: &[u8]) -> Description {
    match Header::parse(bytes) {
        Ok(h) => Description {
            encrypted: true,
            kind: if h.state_fields.is_some() { "state" } else { "plan" }.into(),
            version_supported: Some(h.version == crate::envelope::VERSION),
            envelope_version: Some(h.version),
            encrypted_data_bytes: Some(h.encrypted_data_len),
            metadata: Some(h.meta.iter().map(|(k, v)| metadata_entry(k, v)).collect()),
            serial: h.state_fields.as_ref().map(|sf| json!(sf.serial)),
            lineage: h.state_fields.as_ref().map(|sf| json!(sf.lineage)),
            ..Description::default()
        },
        Err(_) if bytes.is_empty() => plain("empty"),
        Err(_) if bytes.starts_with(b"PK") => plain("plan"),
        Err(not) => match serde_json::from_slice::<PlainState>(bytes) {
            Ok(s)
                if s.terraform_version
                    .as_ref()
                    .and_then(Value::as_str)
                    .is_some_and(|v| !v.is_empty()) =>
            {
                Description {
                    state_version: Some(s.version.unwrap_or(Value::Null)),
                    terraform_version: s.terraform_version,
                    serial: Some(s.serial.unwrap_or(Value::Null)),
                    lineage: Some(s.lineage.unwrap_or(Value::Null)),
                    outputs: Some(s.outputs.map(|o| o.keys().cloned().collect()).unwrap_or_default()),
                    resources: Some(s.resources.map_or(0, |r| r.len())),
                    ..plain("state")
                }
            }
            _ => Description {
                problem: Some(match not {
                    NotEnvelope::Json(e) => format!("not JSON and not a zip: {e}"),
                    NotEnvelope::NoVersion => "JSON, but neither an envelope (no encryption_version) nor a state (no terraform_version)".to_string(),
                }),
                ..plain("unknown")
            },
        },
    }
}

fn plain(kind: &str) -> Description {
    Description {
        encrypted: false,
        kind: kind.into(),
        ..Description::default()
    }
}

/// Describes one metadata entry: which provider wrote it and its public parameters.
fn metadata_entry(key: &str, raw: &[u8]) -> MetadataEntry {
    let parsed: Option<serde_json::Map<String, Value>> = serde_json::from_slice(raw).ok();
    let (provider_type, name, alias) = match key
        .strip_prefix("key_provider.")
        .and_then(|r| r.split_once('.'))
    {
        Some((t, n)) => (Some(t.to_string()), Some(n.to_string()), false),
        None => (None, None, true),
    };
    let Some(fields) = parsed else {
        return MetadataEntry {
            key: key.to_string(),
            provider_type,
            type_guessed: None,
            name,
            alias,
            details: None,
            problem: Some("metadata is not a JSON object".into()),
        };
    };
    let guessed = provider_type
        .clone()
        .unwrap_or_else(|| guess_type(&fields).to_string());
    let b64len = |v: Option<&Value>| {
        v.and_then(Value::as_str).map(|s| {
            crate::envelope::Envelope::parse(
                format!(
                    "{{\"encrypted_data\":{},\"encryption_version\":\"v0\"}}",
                    Value::from(s)
                )
                .as_bytes(),
            )
            .map(|e| e.encrypted_data.len())
            .ok()
        })
    };
    let details = match guessed.as_str() {
        "pbkdf2" => json!({
            "iterations": fields.get("iterations"),
            "hash_function": fields.get("hash_function"),
            "key_length": fields.get("key_length"),
            "salt_bytes": b64len(fields.get("salt")).flatten(),
        }),
        "aws_kms" => {
            json!({"ciphertext_blob_bytes": b64len(fields.get("ciphertext_blob")).flatten(), "encryption_context": fields.get("encryption_context")})
        }
        "gcp_kms" | "openbao" => {
            json!({"ciphertext_bytes": b64len(fields.get("ciphertext")).flatten(), "associated_data": fields.get("associated_data")})
        }
        "external" => {
            json!({"external_data": fields.get("external_data").map(|v| if v.is_null() { "null" } else { "present" })})
        }
        _ => json!({"fields": fields.keys().collect::<Vec<_>>()}),
    };
    MetadataEntry {
        key: key.to_string(),
        type_guessed: Some(provider_type.is_none()),
        provider_type: Some(guessed),
        name,
        alias,
        details: Some(details),
        problem: None,
    }
}

fn guess_type(fields: &serde_json::Map<String, Value>) -> &'static str {
    if fields.contains_key("salt") || fields.contains_key("iterations") {
        "pbkdf2"
    } else if fields.contains_key("ciphertext_blob") {
        "aws_kms"
    } else if fields.contains_key("external_data") {
        "external"
    } else if fields.contains_key("key_version") {
        "azure_vault"
    } else if fields.contains_key("ciphertext") {
        "gcp_kms or openbao"
    } else {
        "unknown"
    }
}
