//! Key provider `azure_vault` (OpenTofu 1.11+): `key_length` random bytes made here, encrypted
//! by an Azure Key Vault key (`docs/ENCRYPTION-FORMAT.md` §3.5).
//!
//! As OpenTofu does, it uses Key Vault's `encrypt` / `decrypt` key operations (not
//! `wrapKey` / `unwrapKey`): `POST {vault_uri}/keys/{vault_key_name}/{version}/{op}?api-version=7.6`
//! with `{"alg", "value"[, "iv", "tag", "aad"]}` in base64url. Encrypting uses the key's current
//! version (an empty version segment); decrypting uses the version and algorithm stored in the
//! metadata. Bearer tokens come from Microsoft Entra ID for the scope that Key Vault names in
//! its authentication challenge (see the `credentials` module).
//!
//! Building does no I/O. `STATESEAL_AZURE_VAULT_ENDPOINT` replaces the scheme, host and port of
//! `vault_uri` for the HTTP calls (tests point it at a fake).

mod credentials;

use std::sync::Mutex;
use std::time::Instant;

use base64::Engine as _;
use ring::rand::SecureRandom as _;
use serde::Deserialize;
use serde_json::json;

use stateseal_core::ServiceErrorKind;

use super::{KeyProvider, Provided, ProviderError, Purpose};
use crate::http_json;
use credentials::{Auth, Cloud, Token};
use stateseal_core::secret::Secret;

pub use credentials::AUTHORITY_HOST_ENV;

/// The Key Vault REST API version (azkeys v1.4, which OpenTofu uses).
pub const API_VERSION: &str = "7.6";
pub const VAULT_ENDPOINT_ENV: &str = "STATESEAL_AZURE_VAULT_ENDPOINT";
/// The asymmetric default; `symmetric = true` selects AES-GCM of `symmetric_key_size` bits.
pub const DEFAULT_ALGORITHM: &str = "RSA-OAEP-256";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    use_cli: Option<bool>,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_id_file_path: String,
    #[serde(default)]
    client_secret: Option<Secret>,
    #[serde(default)]
    client_secret_file_path: String,
    #[serde(default)]
    client_certificate: Option<Secret>,
    #[serde(default)]
    client_certificate_password: Option<Secret>,
    #[serde(default)]
    client_certificate_path: String,
    #[serde(default)]
    use_oidc: bool,
    #[serde(default)]
    oidc_token: Option<Secret>,
    #[serde(default)]
    oidc_token_file_path: String,
    #[serde(default)]
    oidc_request_url: String,
    #[serde(default)]
    oidc_request_token: Option<Secret>,
    #[serde(default)]
    use_msi: bool,
    #[serde(default)]
    msi_endpoint: String,
    #[serde(default)]
    use_aks_workload_identity: bool,
    #[serde(default)]
    metadata_host: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    subscription_id: String,
    #[serde(default)]
    tenant_id: String,
    vault_uri: Option<String>,
    vault_key_name: Option<String>,
    key_length: Option<i64>,
    #[serde(default)]
    symmetric: bool,
    #[serde(default)]
    symmetric_key_size: i64,
}

/// The stored metadata, in Go's field order; absent byte fields are `null`.
#[derive(Deserialize, Default, Debug, PartialEq, Eq)]
pub struct Metadata {
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize"
    )]
    pub ciphertext: Vec<u8>,
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize_option"
    )]
    pub iv: Option<Vec<u8>>,
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize_option"
    )]
    pub authentication_tag: Option<Vec<u8>>,
    #[serde(
        default,
        deserialize_with = "stateseal_core::gojson::bytes::deserialize_option"
    )]
    pub additional_authenticated_data: Option<Vec<u8>>,
    #[serde(default)]
    pub key_version: String,
    #[serde(default)]
    pub algo: String,
}

impl Metadata {
    /// The JSON OpenTofu writes (`json.Marshal` of its `keyMeta`).
    pub fn to_json(&self) -> Vec<u8> {
        let bytes = |out: &mut String, v: Option<&[u8]>| match v {
            Some(b) => out.push_str(&format!("\"{}\"", B64.encode(b))),
            None => out.push_str("null"),
        };
        let mut out = String::from("{\"ciphertext\":");
        bytes(&mut out, Some(&self.ciphertext));
        out.push_str(",\"iv\":");
        bytes(&mut out, self.iv.as_deref());
        out.push_str(",\"authentication_tag\":");
        bytes(&mut out, self.authentication_tag.as_deref());
        out.push_str(",\"additional_authenticated_data\":");
        bytes(&mut out, self.additional_authenticated_data.as_deref());
        out.push_str(",\"key_version\":");
        stateseal_core::gojson::write_string(&mut out, &self.key_version);
        out.push_str(",\"algo\":");
        stateseal_core::gojson::write_string(&mut out, &self.algo);
        out.push('}');
        out.into_bytes()
    }
}

/// The challenge's scope and tenant, and a token for them.
struct Session {
    scope: String,
    tenant: Option<String>,
    token: Option<Token>,
}

/// A configured azure_vault provider.
pub struct AzureVault {
    vault_uri: String,
    vault_host: String,
    key_name: String,
    key_length: usize,
    algo: &'static str,
    auth: Auth,
    session: Mutex<Option<Session>>,
}

fn required(name: &str) -> String {
    format!("The argument {name:?} is required, but no definition was found.")
}

/// `os.LookupEnv`: set (even empty) counts.
fn lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// OpenTofu's `stringAttrEnvFallback`: the value, else the first environment variable set.
fn or_env(value: String, envs: &[&str]) -> String {
    if !value.is_empty() {
        return value;
    }
    envs.iter().find_map(|e| lookup(e)).unwrap_or_default()
}

fn or_env_secret(value: Option<Secret>, envs: &[&str]) -> Option<Secret> {
    value.filter(|s| !s.is_empty()).or_else(|| {
        envs.iter()
            .find_map(|e| lookup(e))
            .map(|s| Secret::new(s.into_bytes()))
    })
}

/// Builds the provider with OpenTofu's checks, in OpenTofu's order. Contacts nothing: the auth
/// method is chosen, and a `metadata_host` is read, on first use.
pub fn build(config: &serde_json::Value) -> Result<Box<dyn KeyProvider>, crate::ConfigError> {
    let c: Config = super::decode_config(config)?;
    let vault_uri = c.vault_uri.ok_or_else(|| required("vault_uri"))?;
    let key_name = c.vault_key_name.ok_or_else(|| required("vault_key_name"))?;
    let key_length = c.key_length.ok_or_else(|| required("key_length"))?;
    let algo = match (c.symmetric, c.symmetric_key_size) {
        (false, _) => DEFAULT_ALGORITHM,
        (true, 128) => "A128GCM",
        (true, 192) => "A192GCM",
        (true, 256) => "A256GCM",
        (true, _) => {
            return Err("when symmetric is set to true, symmetric_key_size must be given a value of 128, 192, or 256".into())
        }
    };
    if key_name.is_empty() {
        return Err("vault_key_name must be provided".into());
    }
    if vault_uri.is_empty() {
        return Err("vault_uri must be provided".into());
    }
    let vault_host = check_names(&key_name, &vault_uri)
        .map_err(|e| format!("misconfigured key vault name or key name: {e}"))?;
    if key_length < 1 {
        return Err("key_length must be at least 1".into());
    }
    let environment = Some(c.environment)
        .filter(|e| !e.is_empty())
        .or_else(|| lookup("ARM_ENVIRONMENT"))
        .unwrap_or_else(|| "public".into());
    let metadata_host = or_env(c.metadata_host, &["ARM_METADATA_HOST"]);
    let cloud = if metadata_host.is_empty() {
        Cloud::known(&environment).ok_or_else(|| {
            format!("while obtaining Azure cloud configuration: unknown environment identifier: {environment}")
        })?
    } else {
        Cloud::MetadataHost(metadata_host)
    };
    let auth = Auth {
        cloud,
        use_cli: c.use_cli.unwrap_or(true),
        client_id: or_env(c.client_id, &["ARM_CLIENT_ID"]),
        client_id_file_path: or_env(c.client_id_file_path, &["ARM_CLIENT_ID_FILE_PATH"]),
        client_secret: or_env_secret(c.client_secret, &["ARM_CLIENT_SECRET"]),
        client_secret_file_path: or_env(
            c.client_secret_file_path,
            &["ARM_CLIENT_SECRET_FILE_PATH"],
        ),
        client_certificate: or_env_secret(c.client_certificate, &["ARM_CLIENT_CERTIFICATE"]),
        client_certificate_password: or_env_secret(
            c.client_certificate_password,
            &["ARM_CLIENT_CERTIFICATE_PASSWORD"],
        ),
        client_certificate_path: or_env(
            c.client_certificate_path,
            &["ARM_CLIENT_CERTIFICATE_PATH"],
        ),
        use_oidc: c.use_oidc,
        oidc_token: or_env_secret(c.oidc_token, &["ARM_OIDC_TOKEN"]),
        oidc_token_file_path: or_env(c.oidc_token_file_path, &["ARM_OIDC_TOKEN_FILE_PATH"]),
        oidc_request_url: or_env(
            c.oidc_request_url,
            &["ARM_OIDC_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_URL"],
        ),
        oidc_request_token: or_env_secret(
            c.oidc_request_token,
            &["ARM_OIDC_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"],
        ),
        use_msi: c.use_msi,
        msi_endpoint: c.msi_endpoint,
        use_aks_workload_identity: c.use_aks_workload_identity,
        subscription_id: or_env(c.subscription_id, &["ARM_SUBSCRIPTION_ID"]),
        tenant_id: or_env(c.tenant_id, &["ARM_TENANT_ID"]),
    };
    Ok(Box::new(AzureVault {
        vault_uri: vault_uri.trim_end_matches('/').to_string(),
        vault_host,
        key_name,
        key_length: key_length as usize,
        algo,
        auth,
        session: Mutex::new(None),
    }))
}

/// `scheme://[user@]host[:port]/…` → `(host, port)`; empty when there is no scheme (as Go's
/// `url.Parse` sees a bare host as a path).
fn host_and_port(url: &str) -> (String, String) {
    let Some((_, rest)) = url.split_once("://") else {
        return (String::new(), String::new());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h.trim_matches(['[', ']']).to_string(), p.to_string())
        }
        _ => (
            authority.trim_matches(['[', ']']).to_string(),
            String::new(),
        ),
    }
}

/// OpenTofu's name checks; the vault's host name on success.
fn check_names(key_name: &str, vault_uri: &str) -> Result<String, &'static str> {
    let name_ok = !key_name.is_empty()
        && key_name.len() <= 127
        && key_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !name_ok {
        return Err("invalid key name: Azure requires a key name consists of 1-127 letters, numbers, or hyphens. See documentation here: https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/resource-name-rules#microsoftkeyvault");
    }
    let (host, _) = host_and_port(vault_uri);
    let vault = host.split('.').next().unwrap_or("");
    let b = vault.as_bytes();
    let vault_ok = (3..=24).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-');
    if !vault_ok {
        return Err("invalid key vault name: Azure requires a key vault name consists of 3-24 letters, numbers, and hyphens only. It must start with a letter and cannot end with a hyphen. See documentation here: https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/resource-name-rules#microsoftkeyvault");
    }
    if vault.contains("--") {
        return Err("invalid key vault name: Hyphens in a key vault name must be nonconsecutive. See documentation here: https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/resource-name-rules#microsoftkeyvault");
    }
    Ok(host)
}

/// Plain HTTP is refused except to this machine (bearer tokens must not cross a network in clear).
pub(crate) fn check_transport(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let (host, _) = host_and_port(url);
    if url.starts_with("http://") && matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1") {
        return Ok(());
    }
    Err(format!("{url} is not an https:// URL"))
}

/// Key Vault's `WWW-Authenticate: Bearer authorization="…/TENANT", resource="…"` (or `scope`),
/// parsed as the Azure SDK does: `(scope ending in /.default, tenant)`. The resource's host must
/// be a parent domain of the vault's.
fn parse_challenge(header: &str, vault_host: &str) -> Result<(String, Option<String>), String> {
    let mut vals = std::collections::BTreeMap::new();
    for part in header.replace("Bearer ", "").split(' ') {
        if let Some((k, v)) = part.split_once('=') {
            vals.insert(
                k.to_string(),
                v.replace('"', "").trim_end_matches(',').to_string(),
            );
        }
    }
    let scope = vals
        .get("scope")
        .or_else(|| vals.get("resource"))
        .filter(|s| !s.is_empty())
        .ok_or("could not find a valid resource in the WWW-Authenticate header")?
        .clone();
    let (resource_host, _) = host_and_port(&scope);
    if resource_host.is_empty() || !vault_host.ends_with(&format!(".{resource_host}")) {
        return Err(format!(
            "challenge resource {scope:?} doesn't match the requested domain {vault_host:?}"
        ));
    }
    let tenant = vals.get("authorization").and_then(|a| {
        let path = a.split_once("://").map_or(a.as_str(), |(_, r)| r);
        let mut parts = path.split('/').skip(1).filter(|p| !p.is_empty());
        let first = parts.next()?.replace(',', "");
        if first.eq_ignore_ascii_case("dstsv2") {
            return parts.next().map(|p| p.replace(',', ""));
        }
        Some(first)
    });
    let scope = if scope.ends_with("/.default") {
        scope
    } else {
        format!("{scope}/.default")
    };
    Ok((scope, tenant))
}

#[derive(Deserialize)]
struct KeyOperationResult {
    kid: Option<String>,
    value: Option<Secret>,
    iv: Option<String>,
    tag: Option<String>,
    aad: Option<String>,
}

#[derive(Deserialize)]
struct VaultError {
    error: VaultErrorBody,
}

#[derive(Deserialize)]
struct VaultErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// base64url, padded or not (Key Vault writes it unpadded).
fn b64url_decode(s: &[u8]) -> Result<Vec<u8>, String> {
    let trimmed: &[u8] = s.strip_suffix(b"==").or(s.strip_suffix(b"=")).unwrap_or(s);
    B64URL
        .decode(trimmed)
        .map_err(|e| format!("Key Vault returned bad base64url: {e}"))
}

impl AzureVault {
    fn base(&self) -> String {
        std::env::var(VAULT_ENDPOINT_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .map_or_else(
                || self.vault_uri.clone(),
                |e| e.trim_end_matches('/').to_string(),
            )
    }

    /// POSTs `body` to the key operation `op` of `version` ("" = current), answering the
    /// authentication challenge first when there is no session yet.
    fn call(
        &self,
        op: &str,
        version: &str,
        body: serde_json::Value,
    ) -> Result<KeyOperationResult, (ServiceErrorKind, String)> {
        let other = |e: String| (ServiceErrorKind::Other, e);
        let network = |e: String| (ServiceErrorKind::Network, e);
        let mut url = format!("{}/keys/{}/", self.base(), self.key_name);
        http_json::percent_encode(&mut url, version);
        url.push_str(&format!("/{op}?api-version={API_VERSION}"));
        check_transport(&url).map_err(other)?;
        let agent = http_json::agent(None).map_err(other)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if session.is_none() {
            // The challenge: the request without body or authorization.
            let reply = http_json::send(&agent, "POST", &url, &[], "application/json", &[])
                .map_err(network)?;
            let header = match (reply.status, reply.www_authenticate.as_deref()) {
                (401, Some(h)) => h.to_string(),
                (status, _) => {
                    return Err(other(format!(
                        "Key Vault at {url} answered HTTP {status} without an authentication challenge: {}",
                        reply.text_excerpt()
                    )))
                }
            };
            let (scope, tenant) = parse_challenge(&header, &self.vault_host).map_err(other)?;
            *session = Some(Session {
                scope,
                tenant,
                token: None,
            });
        }
        let s = session.as_mut().expect("set above");
        let fresh = s.token.as_ref().is_some_and(|t| t.expires > Instant::now());
        if !fresh {
            s.token = Some(
                self.auth
                    .token(&agent, &s.scope, s.tenant.as_deref())
                    .map_err(other)?,
            );
        }
        let token = s.token.as_ref().expect("set above");
        let bearer = zeroize::Zeroizing::new(format!(
            "Bearer {}",
            String::from_utf8_lossy(token.secret.expose())
        ));
        let mut body = body;
        let reply =
            http_json::send_json(&agent, "POST", &url, &[("Authorization", &bearer)], &body);
        stateseal_core::secret::scrub_json(&mut body);
        let reply = reply.map_err(network)?;
        if reply.is_success() {
            return reply.json::<KeyOperationResult>().map_err(other);
        }
        if reply.status == 401 {
            s.token = None;
        }
        let err = match reply.json::<VaultError>() {
            Ok(e) => format!(
                "{}: {} (HTTP {})",
                e.error.code, e.error.message, reply.status
            ),
            Err(_) => format!("HTTP {}: {}", reply.status, reply.text_excerpt()),
        };
        let hint = match reply.status {
            401 => " (the token was refused: check the credentials and tenant_id)",
            403 => " (the identity needs the keys encrypt/decrypt permissions, e.g. the Key Vault Crypto User role)",
            404 => " (check vault_uri and vault_key_name)",
            400 if op == "decrypt" => {
                " (the stored ciphertext does not belong to this key and version, or was altered)"
            }
            _ => "",
        };
        Err((
            ServiceErrorKind::from_http_status(reply.status),
            format!("{err}{hint}"),
        ))
    }

    /// A provider error for `what`, classified by the service error's kind.
    fn fail_as(&self, what: &str, (kind, cause): (ServiceErrorKind, String)) -> ProviderError {
        ProviderError::service(
            kind,
            format!(
                "failed to {what} key with Azure Key Vault key {:?} in {}: {cause}",
                self.key_name, self.vault_uri
            ),
        )
    }

    fn fail(&self, what: &str, cause: String) -> ProviderError {
        self.fail_as(what, (ServiceErrorKind::Other, cause))
    }

    fn generate(&self) -> Result<Provided, ProviderError> {
        let mut key = vec![0u8; self.key_length];
        ring::rand::SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| ProviderError::Failed("failed to generate key".into()))?;
        let key = Secret::new(key);
        let body = json!({"alg": self.algo, "value": B64URL.encode(key.expose())});
        let r = self
            .call("encrypt", "", body)
            .map_err(|e| self.fail_as("encrypt", e))?;
        let decode = |v: Option<String>| v.map(|s| b64url_decode(s.as_bytes())).transpose();
        let meta = (|| {
            Ok::<_, String>(Metadata {
                ciphertext: b64url_decode(
                    r.value
                        .as_ref()
                        .ok_or("Key Vault returned no value")?
                        .expose(),
                )?,
                iv: decode(r.iv)?,
                authentication_tag: decode(r.tag)?,
                additional_authenticated_data: decode(r.aad)?,
                // The version segment of the key ID `…/keys/NAME/VERSION`.
                key_version: r
                    .kid
                    .as_deref()
                    .and_then(|k| k.split_once("://").map(|(_, p)| p.split('/').nth(3)))
                    .flatten()
                    .unwrap_or_default()
                    .to_string(),
                algo: self.algo.to_string(),
            })
        })()
        .map_err(|e| self.fail("encrypt", e))?;
        Ok(Provided::for_encryption(key, meta.to_json()))
    }

    fn decrypt(&self, meta: &Metadata) -> Result<Secret, ProviderError> {
        let algo = if meta.algo.is_empty() {
            self.algo
        } else {
            &meta.algo
        };
        let mut body = json!({"alg": algo, "value": B64URL.encode(&meta.ciphertext)});
        for (field, v) in [
            ("iv", &meta.iv),
            ("tag", &meta.authentication_tag),
            ("aad", &meta.additional_authenticated_data),
        ] {
            if let Some(b) = v {
                body[field] = json!(B64URL.encode(b));
            }
        }
        let r = self
            .call("decrypt", &meta.key_version, body)
            .map_err(|e| self.fail_as("decrypt", e))?;
        let value = r
            .value
            .ok_or_else(|| self.fail("decrypt", "Key Vault returned no value".into()))?;
        b64url_decode(value.expose())
            .map(Secret::new)
            .map_err(|e| self.fail("decrypt", e))
    }
}

impl KeyProvider for AzureVault {
    fn provide(&self, purpose: Purpose<'_>) -> Result<Provided, ProviderError> {
        super::wrapped_data_key(
            purpose,
            || self.generate(),
            |m: &Metadata| !m.ciphertext.is_empty(),
            |m| self.decrypt(&m),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAULT: &str = "https://stateseal-kv.vault.azure.net/";

    fn err(v: serde_json::Value) -> String {
        build(&v).err().unwrap().to_string()
    }

    #[test]
    fn configuration_messages_in_opentofu_order() {
        assert!(err(json!({"vault_key_name": "k", "key_length": 32}))
            .contains("\"vault_uri\" is required"));
        assert_eq!(
            err(json!({"vault_uri": VAULT, "vault_key_name": "k", "key_length": 32, "symmetric": true, "symmetric_key_size": 512})),
            "when symmetric is set to true, symmetric_key_size must be given a value of 128, 192, or 256"
        );
        assert_eq!(
            err(json!({"vault_uri": "", "vault_key_name": "", "key_length": 32})),
            "vault_key_name must be provided"
        );
        assert_eq!(
            err(json!({"vault_uri": "", "vault_key_name": "k", "key_length": 32})),
            "vault_uri must be provided"
        );
        assert!(
            err(json!({"vault_uri": VAULT, "vault_key_name": "bad_name", "key_length": 32}))
                .starts_with("misconfigured key vault name or key name: invalid key name")
        );
        for bad in [
            "https://ab.vault.azure.net",
            "https://1abc.vault.azure.net",
            "https://abc-.vault.azure.net",
            "stateseal-kv.vault.azure.net",
        ] {
            assert!(
                err(json!({"vault_uri": bad, "vault_key_name": "k", "key_length": 32}))
                    .contains("invalid key vault name: Azure requires"),
                "{bad}"
            );
        }
        assert!(err(json!({"vault_uri": "https://a--b.vault.azure.net", "vault_key_name": "k", "key_length": 32}))
            .contains("must be nonconsecutive"));
        assert_eq!(
            err(json!({"vault_uri": VAULT, "vault_key_name": "k", "key_length": 0})),
            "key_length must be at least 1"
        );
        assert_eq!(
            err(
                json!({"vault_uri": VAULT, "vault_key_name": "k", "key_length": 32, "environment": "mars"})
            ),
            "while obtaining Azure cloud configuration: unknown environment identifier: mars"
        );
        assert!(err(
            json!({"vault_uri": VAULT, "vault_key_name": "k", "key_length": 32, "vault": "x"})
        )
        .contains("unknown field"));
        // Every OpenTofu option is accepted, and building contacts nothing.
        assert!(build(&json!({
            "vault_uri": VAULT, "vault_key_name": "k", "key_length": 32, "symmetric": true,
            "symmetric_key_size": 256, "use_cli": false, "client_id": "c", "client_id_file_path": "",
            "client_secret": "s", "client_secret_file_path": "", "client_certificate": "",
            "client_certificate_password": "", "client_certificate_path": "", "use_oidc": true,
            "oidc_token": "t", "oidc_token_file_path": "", "oidc_request_url": "",
            "oidc_request_token": "", "use_msi": false, "msi_endpoint": "",
            "use_aks_workload_identity": false, "metadata_host": "", "environment": "usgovernment",
            "subscription_id": "sub", "tenant_id": "tenant"
        }))
        .is_ok());
    }

    #[test]
    fn challenges_are_parsed_like_the_azure_sdk() {
        let h = "Bearer authorization=\"https://login.windows.net/72f988bf-86f1\", resource=\"https://vault.azure.net\"";
        assert_eq!(
            parse_challenge(h, "kv.vault.azure.net").unwrap(),
            (
                "https://vault.azure.net/.default".into(),
                Some("72f988bf-86f1".into())
            )
        );
        assert!(parse_challenge(h, "kv.evil.example")
            .unwrap_err()
            .contains("doesn't match"));
        assert!(parse_challenge("Bearer authorization=\"x\"", "kv.vault.azure.net").is_err());
    }

    #[test]
    fn metadata_json_matches_opentofu() {
        let m = Metadata {
            ciphertext: vec![1, 2, 3],
            key_version: "v1".into(),
            algo: "RSA-OAEP-256".into(),
            ..Metadata::default()
        };
        let json = m.to_json();
        assert_eq!(
            json,
            br#"{"ciphertext":"AQID","iv":null,"authentication_tag":null,"additional_authenticated_data":null,"key_version":"v1","algo":"RSA-OAEP-256"}"#
        );
        assert_eq!(serde_json::from_slice::<Metadata>(&json).unwrap(), m);
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        assert!(check_transport("http://127.0.0.1:8080/keys").is_ok());
        assert!(check_transport("https://kv.vault.azure.net/keys").is_ok());
        assert!(check_transport("http://kv.vault.azure.net/keys").is_err());
    }
}
