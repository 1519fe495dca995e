//! Method `external`: encryption by a program speaking OpenTofu's external method protocol
//! (`docs/ENCRYPTION-FORMAT.md` §4.3).
//!
//! stdin: `{"key":b64,"payload":b64}` (`key` omitted when there is none); stdout after the
//! header line: `{"payload":b64}`, decoded strictly. The returned bytes are `encrypted_data`.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use stateseal_core::secret::keys_from_value;

use super::{Method, MethodError};
use crate::external_program::{self, METHOD};
use stateseal_core::secret::{Keys, Secret};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    keys: Option<serde_json::Value>,
    encrypt_command: Option<Vec<String>>,
    decrypt_command: Option<Vec<String>>,
}

/// A configured external method.
pub struct External {
    /// `None` when the configuration has no `keys`.
    keys: Option<Keys>,
    encrypt_command: Vec<String>,
    decrypt_command: Vec<String>,
    timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramOutput {
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize_option"
    )]
    payload: Option<Vec<u8>>,
}

pub fn build(config: &serde_json::Value) -> Result<Box<dyn Method>, crate::ConfigError> {
    let c: Config = crate::key_provider::decode_config(config)?;
    let required = |v: Option<Vec<String>>, name: &str| {
        let v = v.ok_or_else(|| {
            format!("The argument {name:?} is required, but no definition was found.")
        })?;
        external_program::check_command(&v, name)
            .map_err(|e| format!("invalid method configuration: {e}"))?;
        Ok::<_, String>(v)
    };
    let encrypt_command = required(c.encrypt_command, "encrypt_command")?;
    let decrypt_command = required(c.decrypt_command, "decrypt_command")?;
    Ok(Box::new(External {
        keys: c
            .keys
            .as_ref()
            .map(keys_from_value)
            .transpose()
            .map_err(|e| e.to_string())?,
        encrypt_command,
        decrypt_command,
        timeout: external_program::timeout()?,
    }))
}

impl External {
    fn run(
        &self,
        command: &[String],
        key: Option<&Secret>,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        // Go's field order: key (omitted when empty), then payload.
        let mut input = zeroize::Zeroizing::new(String::with_capacity(payload.len() / 3 * 4 + 128));
        input.push('{');
        if let Some(k) = key.filter(|k| !k.is_empty()) {
            input.push_str("\"key\":\"");
            B64.encode_string(k.expose(), &mut input);
            input.push_str("\",");
        }
        input.push_str("\"payload\":\"");
        B64.encode_string(payload, &mut input);
        input.push_str("\"}");
        let input = zeroize::Zeroizing::new(std::mem::take(&mut *input).into_bytes());
        let out = external_program::run(command, &METHOD, input, self.timeout)
            .map_err(|f| f.to_string())?;
        let result: ProgramOutput =
            external_program::decode(&out, &METHOD).map_err(|f| f.to_string())?;
        Ok(result.payload.unwrap_or_default())
    }
}

impl Method for External {
    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, MethodError> {
        let key = self.keys.as_ref().and_then(|k| k.encryption_key.as_ref());
        self.run(&self.encrypt_command, key, plaintext)
            .map_err(|e| MethodError::Failed(format!("encryption failed: {e}")))
    }

    fn decrypt(&self, ciphertext: Vec<u8>) -> Result<Vec<u8>, MethodError> {
        // With `keys` configured, a missing decryption key means the stored metadata gave none
        // (OpenTofu: an encryption key but no decryption key): do not run the program.
        let key = match &self.keys {
            Some(k) => Some(
                k.decryption_key
                    .as_ref()
                    .ok_or(MethodError::NoDecryptionKey)?,
            ),
            None => None,
        };
        if ciphertext.is_empty() {
            return Err(MethodError::DecryptionFailed(
                "Cannot decrypt empty data.".into(),
            ));
        }
        self.run(&self.decrypt_command, key, &ciphertext)
            .map_err(MethodError::DecryptionFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configuration_messages() {
        let err = |v| build(&v).err().unwrap().to_string();
        assert_eq!(
            err(json!({"encrypt_command": [], "decrypt_command": ["x"]})),
            "invalid method configuration: the encrypt_command option is required"
        );
        assert_eq!(
            err(json!({"encrypt_command": ["x"], "decrypt_command": [""]})),
            "invalid method configuration: the first entry of decrypt_command must not be empty"
        );
        assert!(err(json!({"encrypt_command": ["x"]})).contains("\"decrypt_command\" is required"));
        assert!(
            err(json!({"encrypt_command": ["x"], "decrypt_command": ["x"], "aad": []}))
                .contains("unknown field")
        );
    }

    #[test]
    fn decrypt_refuses_without_key_or_data_before_running_anything() {
        let m = build(&json!({
            "keys": {"encryption_key": null, "decryption_key": null},
            "encrypt_command": ["/nonexistent"], "decrypt_command": ["/nonexistent"]
        }))
        .unwrap();
        assert_eq!(
            m.decrypt(vec![1]).unwrap_err(),
            MethodError::NoDecryptionKey
        );
        let m = build(
            &json!({"encrypt_command": ["/nonexistent"], "decrypt_command": ["/nonexistent"]}),
        )
        .unwrap();
        assert_eq!(
            m.decrypt(vec![]).unwrap_err().to_string(),
            "decryption failed: Cannot decrypt empty data."
        );
    }
}
