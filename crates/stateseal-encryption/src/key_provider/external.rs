//! Key provider `external`: keys from a program speaking OpenTofu's external key provider
//! protocol (`docs/ENCRYPTION-FORMAT.md` §3.6).
//!
//! stdin: `null` (no stored metadata) or `{"external_data":{…}}`; stdout after the header line:
//! `{"keys":{"encryption_key":b64,"decryption_key":b64},"meta":{"external_data":{…}}}`, decoded
//! strictly. The stored metadata is `{"external_data":…}`.

use std::time::Duration;

use serde::Deserialize;

use super::{KeyProvider, Provided, ProviderError, Purpose};
use crate::external_program::{self, KEY_PROVIDER};
use stateseal_core::secret::{Keys, Secret};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    command: Option<Vec<String>>,
}

/// A configured external key provider.
pub struct External {
    command: Vec<String>,
    timeout: Duration,
}

/// The stored metadata (and the `meta` of the program's output).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Metadata {
    #[serde(default)]
    external_data: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Metadata {
    /// Go `json.Marshal` of the metadata struct: `{"external_data":…}`.
    fn to_json(&self) -> String {
        let mut out = String::from("{\"external_data\":");
        match &self.external_data {
            None => out.push_str("null"),
            Some(m) => {
                stateseal_core::gojson::write_value(&mut out, &serde_json::Value::Object(m.clone()))
            }
        }
        out.push('}');
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramOutput {
    #[serde(default)]
    keys: ProgramKeys,
    #[serde(default)]
    meta: Metadata,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProgramKeys {
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize_option"
    )]
    encryption_key: Option<Vec<u8>>,
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize_option"
    )]
    decryption_key: Option<Vec<u8>>,
}

/// Builds the provider from its configuration. Runs nothing.
pub fn build(config: &serde_json::Value) -> Result<Box<dyn KeyProvider>, crate::ConfigError> {
    let c: Config = super::decode_config(config)?;
    let command = c
        .command
        .ok_or(r#"The argument "command" is required, but no definition was found."#)?;
    if command.is_empty() {
        return Err("the command option is required".into());
    }
    Ok(Box::new(External {
        command,
        timeout: external_program::timeout()?,
    }))
}

/// The stored `external_data`. Read as Go does: unknown fields ignored, but the value must be
/// an object or null.
fn stored_data(
    stored: &[u8],
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ProviderError> {
    #[derive(Deserialize)]
    struct Stored {
        #[serde(default)]
        external_data: Option<serde_json::Map<String, serde_json::Value>>,
    }
    serde_json::from_slice::<Stored>(stored)
        .map(|s| s.external_data)
        .map_err(|e| ProviderError::Metadata(e.to_string()))
}

impl KeyProvider for External {
    fn provide(&self, purpose: Purpose<'_>) -> Result<Provided, ProviderError> {
        // 1.12+: `null` when there is no metadata, or when the stored external_data is null.
        let input = match purpose {
            Purpose::Encrypt | Purpose::Decrypt { stored: None } => "null".to_string(),
            Purpose::Decrypt { stored: Some(s) } => match stored_data(s)? {
                None => "null".to_string(),
                Some(data) => Metadata {
                    external_data: Some(data),
                }
                .to_json(),
            },
        };
        let out = external_program::run(
            &self.command,
            &KEY_PROVIDER,
            zeroize::Zeroizing::new(input.into_bytes()),
            self.timeout,
        )
        .map_err(|f| ProviderError::Failed(f.to_string()))?;
        let result: ProgramOutput = external_program::decode(&out, &KEY_PROVIDER)
            .map_err(|f| ProviderError::Failed(f.to_string()))?;
        Ok(match purpose {
            Purpose::Encrypt => Provided {
                keys: Keys {
                    encryption_key: result.keys.encryption_key.map(Secret::new),
                    decryption_key: None,
                },
                metadata: Some(result.meta.to_json().into_bytes()),
            },
            Purpose::Decrypt { .. } => {
                Provided::for_decryption(result.keys.decryption_key.map(Secret::new))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configuration_messages() {
        assert_eq!(
            build(&json!({"command": []})).err().unwrap().to_string(),
            "the command option is required"
        );
        assert!(build(&json!({}))
            .err()
            .unwrap()
            .to_string()
            .contains("\"command\" is required"));
        assert!(build(&json!({"command": ["x"], "args": []}))
            .err()
            .unwrap()
            .to_string()
            .contains("unknown field"));
    }

    #[test]
    fn metadata_is_go_json() {
        let m: Metadata = serde_json::from_str(r#"{"external_data":{"z":1,"a":"<"}}"#).unwrap();
        assert_eq!(m.to_json(), r#"{"external_data":{"a":"\u003c","z":1}}"#);
        assert_eq!(Metadata::default().to_json(), r#"{"external_data":null}"#);
        assert!(serde_json::from_str::<Metadata>(r#"{"external_data":"x"}"#).is_err());
        assert!(serde_json::from_str::<Metadata>(r#"{"external_data":{},"x":1}"#).is_err());
        assert!(stored_data(br#"{"external_data":{},"x":1}"#)
            .unwrap()
            .is_some());
        assert!(stored_data(br#"{"external_data":null}"#).unwrap().is_none());
        assert!(matches!(
            stored_data(br#"{"external_data":[]}"#),
            Err(ProviderError::Metadata(_))
        ));
    }
}
