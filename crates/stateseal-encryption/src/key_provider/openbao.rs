//! Key provider `openbao`: a data key from the OpenBao (or Vault ≤ 1.14) transit engine
//! (`docs/ENCRYPTION-FORMAT.md` §3.4).
//!
//! Encrypt: `PUT {address}/v1/{transit_engine_path}/datakey/plaintext/{key_name}`; the returned
//! `plaintext` is the key and the `vault:v1:…` ciphertext is stored. Decrypt:
//! `PUT …/decrypt/{key_name}` with the stored ciphertext. Building does no I/O.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use stateseal_core::ServiceErrorKind;

use super::{KeyProvider, Provided, ProviderError, Purpose};
use crate::http_json;
use stateseal_core::secret::Secret;

pub const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";
pub const DEFAULT_TRANSIT_ENGINE_PATH: &str = "/transit";
pub const DEFAULT_KEY_LENGTH: i64 = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    address: String,
    #[serde(default)]
    token: Option<Secret>,
    key_name: Option<String>,
    #[serde(default)]
    key_length: i64,
    #[serde(default)]
    transit_engine_path: String,
    #[serde(default)]
    associated_data: String,
}

/// A configured openbao provider.
pub struct OpenBao {
    address: String,
    token: Option<Secret>,
    namespace: Option<String>,
    ca_pem: Option<Vec<u8>>,
    key_name: String,
    key_length: i64,
    transit_path: String,
    associated_data: String,
}

/// The stored metadata: `{"ciphertext":b64("vault:v1:…")}` plus `"associated_data"` when set.
#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize"
    )]
    ciphertext: Vec<u8>,
    #[serde(default)]
    associated_data: String,
}

impl Metadata {
    fn to_json(&self) -> Vec<u8> {
        let mut out = String::from("{\"ciphertext\":\"");
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(&self.ciphertext));
        out.push('"');
        if !self.associated_data.is_empty() {
            out.push_str(",\"associated_data\":");
            stateseal_core::gojson::write_string(&mut out, &self.associated_data);
        }
        out.push('}');
        out.into_bytes()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Builds the provider. Reads `BAO_ADDR`, `BAO_TOKEN`, `BAO_NAMESPACE` and the `BAO_CACERT`
/// file; contacts nothing.
pub fn build(config: &serde_json::Value) -> Result<Box<dyn KeyProvider>, crate::ConfigError> {
    let c: Config = super::decode_config(config)?;
    let key_name = c
        .key_name
        .ok_or(r#"The argument "key_name" is required, but no definition was found."#)?;
    if key_name.is_empty() {
        return Err("no key name found".into());
    }
    let key_length = if c.key_length == 0 {
        DEFAULT_KEY_LENGTH
    } else {
        c.key_length
    };
    if ![16, 32, 64].contains(&key_length) {
        return Err(crate::ConfigError::from(format!(
            "invalid key provider configuration: data key length should one of 16, 32 or 64 bytes: got {key_length}"
        )));
    }
    if !c.associated_data.is_empty()
        && base64::engine::general_purpose::STANDARD
            .decode(&c.associated_data)
            .is_err()
    {
        return Err("associated data is not valid base64".into());
    }
    let ca_pem = match env("BAO_CACERT") {
        Some(path) => {
            Some(std::fs::read(&path).map_err(|e| format!("cannot read BAO_CACERT {path}: {e}"))?)
        }
        None => None,
    };
    let address = if c.address.is_empty() {
        env("BAO_ADDR").unwrap_or_else(|| DEFAULT_ADDRESS.to_string())
    } else {
        c.address
    };
    Ok(Box::new(OpenBao {
        address: address.trim_end_matches('/').to_string(),
        token: c
            .token
            .filter(|t| !t.is_empty())
            .or_else(|| env("BAO_TOKEN").map(|t| Secret::new(t.into_bytes()))),
        namespace: env("BAO_NAMESPACE"),
        ca_pem,
        key_name,
        key_length,
        transit_path: if c.transit_engine_path.is_empty() {
            DEFAULT_TRANSIT_ENGINE_PATH.to_string()
        } else {
            c.transit_engine_path
        },
        associated_data: c.associated_data,
    }))
}

/// Percent-encodes a path segment as Go's `url.PathEscape` does.
fn path_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'$' | b'&' | b'+' | b',' | b':' | b';' | b'=' | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[derive(Deserialize)]
struct Response {
    data: Option<ResponseData>,
}

#[derive(Deserialize)]
struct ResponseData {
    plaintext: Option<String>,
    ciphertext: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    errors: Vec<String>,
}

impl OpenBao {
    /// `{address}/v1/` + the cleaned `transit_engine_path/op/key` (Go `path.Join`).
    fn url(&self, op: &str) -> String {
        let joined = format!(
            "{}/{op}/{}",
            self.transit_path.trim_matches('/'),
            path_escape(&self.key_name)
        );
        let clean: Vec<&str> = joined
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        format!("{}/v1/{}", self.address, clean.join("/"))
    }

    /// PUT `body` to `op`; the `data` of the answer, or an error naming key, URL and cause.
    fn call(
        &self,
        op: &str,
        what: &str,
        body: serde_json::Value,
    ) -> Result<ResponseData, ProviderError> {
        let url = self.url(op);
        let fail = |cause: String| {
            ProviderError::Failed(format!(
                "failed to {what} with OpenBao transit key {:?} at {url}: {cause}",
                self.key_name
            ))
        };
        let agent = http_json::agent(self.ca_pem.as_deref()).map_err(fail)?;
        let token = zeroize::Zeroizing::new(
            self.token
                .as_ref()
                .map(|t| String::from_utf8_lossy(t.expose()).into_owned()),
        );
        let mut headers = vec![("X-Vault-Request", "true")];
        if let Some(t) = token.as_deref() {
            headers.push(("X-Vault-Token", t));
        }
        if let Some(ns) = &self.namespace {
            headers.push(("X-Vault-Namespace", ns.as_str()));
        }
        let mut body = body;
        let reply = http_json::send_json(&agent, "PUT", &url, &headers, &body);
        stateseal_core::secret::scrub_json(&mut body);
        // Transport errors already name the URL.
        let reply = reply.map_err(|e| {
            ProviderError::Unreachable(format!(
                "failed to {what} with OpenBao transit key {:?}: {e}",
                self.key_name
            ))
        })?;
        if !reply.is_success() {
            let errors = reply
                .json::<ErrorResponse>()
                .map(|e| e.errors.join("; "))
                .unwrap_or_else(|_| reply.text_excerpt());
            let hint = match reply.status {
                403 => " (check the token and its policy)",
                400 if errors.contains("not found") => " (check key_name and transit_engine_path)",
                404 => " (check transit_engine_path: is the transit engine mounted there?)",
                _ => "",
            };
            return Err(ProviderError::service(
                ServiceErrorKind::from_http_status(reply.status),
                fail(format!("HTTP {}: {errors}{hint}", reply.status))
                    .message()
                    .to_string(),
            ));
        }
        reply
            .json::<Response>()
            .map_err(fail)?
            .data
            .ok_or_else(|| fail("the response has no data".into()))
    }

    fn generate(&self) -> Result<Provided, ProviderError> {
        let mut body = json!({ "bits": self.key_length * 8 });
        if !self.associated_data.is_empty() {
            body["associated_data"] = json!(self.associated_data);
        }
        let data = self.call("datakey/plaintext", "generate a data key", body)?;
        let key = plaintext(data.plaintext)?;
        let ciphertext = data.ciphertext.ok_or_else(|| {
            ProviderError::Failed("failed to deserialize 'ciphertext' from OpenBao's answer".into())
        })?;
        let meta = Metadata {
            ciphertext: ciphertext.into_bytes(),
            associated_data: self.associated_data.clone(),
        };
        Ok(Provided::for_encryption(key, meta.to_json()))
    }

    fn decrypt(&self, meta: Metadata) -> Result<Secret, ProviderError> {
        let mut body = json!({ "ciphertext": String::from_utf8_lossy(&meta.ciphertext) });
        if !meta.associated_data.is_empty() {
            body["associated_data"] = json!(meta.associated_data);
        }
        plaintext(
            self.call("decrypt", "decrypt the stored data key", body)?
                .plaintext,
        )
    }
}

fn plaintext(p: Option<String>) -> Result<Secret, ProviderError> {
    let p = zeroize::Zeroizing::new(p.ok_or_else(|| {
        ProviderError::Failed("failed to deserialize 'plaintext' from OpenBao's answer".into())
    })?);
    base64::engine::general_purpose::STANDARD
        .decode(p.as_bytes())
        .map(Secret::new)
        .map_err(|e| ProviderError::Failed(format!("base64 decoding 'plaintext' failed: {e}")))
}

impl KeyProvider for OpenBao {
    fn provide(&self, purpose: Purpose<'_>) -> Result<Provided, ProviderError> {
        super::wrapped_data_key(
            purpose,
            || self.generate(),
            |m: &Metadata| !m.ciphertext.is_empty(),
            |m| self.decrypt(m),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_messages() {
        let err = |v| build(&v).err().unwrap().to_string();
        assert_eq!(err(json!({"key_name": ""})), "no key name found");
        assert!(err(json!({})).contains("\"key_name\" is required"));
        assert_eq!(
            err(json!({"key_name": "k", "key_length": 24})),
            "invalid key provider configuration: data key length should one of 16, 32 or 64 bytes: got 24"
        );
        assert_eq!(
            err(json!({"key_name": "k", "associated_data": "not base64!"})),
            "associated data is not valid base64"
        );
        assert!(err(json!({"key_name": "k", "mount": "x"})).contains("unknown field"));
    }

    #[test]
    fn urls_follow_go_path_join_and_path_escape() {
        let p = OpenBao {
            address: "http://127.0.0.1:8200".into(),
            token: None,
            namespace: None,
            ca_pem: None,
            key_name: "my key/1".into(),
            key_length: 32,
            transit_path: "/secrets//transit/".into(),
            associated_data: String::new(),
        };
        assert_eq!(
            p.url("datakey/plaintext"),
            "http://127.0.0.1:8200/v1/secrets/transit/datakey/plaintext/my%20key%2F1"
        );
    }

    #[test]
    fn metadata_json_matches_opentofu() {
        let m = Metadata {
            ciphertext: b"vault:v1:abc".to_vec(),
            associated_data: String::new(),
        };
        assert_eq!(m.to_json(), br#"{"ciphertext":"dmF1bHQ6djE6YWJj"}"#);
        let m = Metadata {
            ciphertext: b"vault:v1:abc".to_vec(),
            associated_data: "c3RhdGU=".into(),
        };
        assert_eq!(
            m.to_json(),
            br#"{"ciphertext":"dmF1bHQ6djE6YWJj","associated_data":"c3RhdGU="}"#
        );
    }
}
