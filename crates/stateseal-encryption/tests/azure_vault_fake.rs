//! azure_vault against a FAKE Azure Key Vault and a FAKE Microsoft Entra ID: no Azure service
//! can run here, so a small in-test HTTP server implements only the documented wire protocol the
//! provider uses:
//!
//! * Key Vault's authentication challenge: a request without a bearer token is answered `401`
//!   with `WWW-Authenticate: Bearer authorization="…/TENANT", resource="https://vault.azure.net"`;
//! * `POST /keys/{name}/{version}/encrypt|decrypt?api-version=7.6` with `{"alg","value"[,"iv",
//!   "tag","aad"]}` in base64url, answering `{"kid","value"[,"iv","tag"]}` (the "ciphertext" is a
//!   readable, reversible tag, enough to check what was sent back), errors as Key Vault's
//!   `{"error":{"code","message"}}`;
//! * the v2.0 token endpoint `/{tenant}/oauth2/v2.0/token`: the client-credentials grant with a
//!   client secret or a client assertion (OIDC, AKS workload identity);
//! * the instance metadata service's managed-identity token endpoint
//!   (`GET /metadata/identity/oauth2/token`, `Metadata: true`);
//! * and, for the Azure CLI method, a fake `az` script on `PATH`.
#![cfg(feature = "azure-vault")]

use crate::fake_http;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use fake_http::{Answer, FakeServer, Request};
use serde_json::json;
use stateseal_encryption::envelope::Envelope;
use stateseal_encryption::key_provider::azure_vault::{AUTHORITY_HOST_ENV, VAULT_ENDPOINT_ENV};
use stateseal_encryption::load::{self, Options};
use stateseal_encryption::{Encryption, Registry, Status};

const STATE: &[u8] =
    br#"{"version":4,"terraform_version":"1.11.0","serial":3,"lineage":"azure","outputs":{}}"#;
const VAULT: &str = "https://stateseal-kv.vault.azure.net";
const TENANT: &str = "fake-tenant";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The current version of each key (default `v1`); tests rotate keys by changing it.
fn versions() -> &'static Mutex<BTreeMap<String, String>> {
    static V: OnceLock<Mutex<BTreeMap<String, String>>> = OnceLock::new();
    V.get_or_init(Default::default)
}

fn vault_error(status: u16, code: &str, message: &str) -> Answer {
    (
        status,
        vec![],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
}

fn ok(body: serde_json::Value) -> Answer {
    (200, vec![], body.to_string())
}

fn unpadded_b64url(v: &serde_json::Value) -> Option<Vec<u8>> {
    let s = v.as_str()?;
    (!s.contains('=')).then(|| B64URL.decode(s).ok())?
}

fn token_endpoint(req: &Request) -> Answer {
    let scope_ok = req.form("scope").as_deref() == Some("https://vault.azure.net/.default");
    let grant_ok = req.form("grant_type").as_deref() == Some("client_credentials");
    let secret_ok = req.form("client_id").as_deref() == Some("app-id")
        && req.form("client_secret").as_deref() == Some("app-secret");
    let assertion_ok = req.form("client_assertion_type").as_deref()
        == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        && req.form("client_assertion").as_deref() == Some("federated-jwt");
    if scope_ok && grant_ok && (secret_ok || assertion_ok) {
        return ok(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "kv-token"}));
    }
    (
        401,
        vec![],
        json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}).to_string(),
    )
}

/// The fake's whole behaviour.
fn fake_azure(req: &Request, base: &str) -> Answer {
    if req.path == format!("/{TENANT}/oauth2/v2.0/token") {
        return token_endpoint(req);
    }
    if req.path == "/oidc?audience=api%3A%2F%2FAzureADTokenExchange" {
        return match req.header("Authorization") {
            Some("Bearer gh-request-token") => ok(json!({"count": 1, "value": "federated-jwt"})),
            _ => (401, vec![], "{}".into()),
        };
    }
    if req.path
        == "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
    {
        return match req.header("Metadata") {
            Some("true") => ok(json!({"access_token": "kv-token", "expires_in": "3599", "token_type": "Bearer"})),
            _ => (400, vec![], json!({"error": "invalid_request"}).to_string()),
        };
    }
    let Some((path, query)) = req.path.split_once('?') else {
        return vault_error(400, "BadParameter", "api-version is required");
    };
    if query != "api-version=7.6" {
        return vault_error(400, "BadParameter", "unsupported api-version");
    }
    let parts: Vec<&str> = path.split('/').collect();
    let ["", "keys", name, version, op] = parts.as_slice() else {
        return vault_error(404, "NotFound", "no such operation");
    };
    if req.header("Authorization").is_none() {
        let challenge = format!(
            "Bearer authorization=\"{base}/{TENANT}\", resource=\"https://vault.azure.net\""
        );
        return (
            401,
            vec![("WWW-Authenticate".into(), challenge)],
            json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}).to_string(),
        );
    }
    if req.header("Authorization") != Some("Bearer kv-token") {
        return vault_error(401, "Unauthorized", "AKV10022: Invalid audience.");
    }
    if *name == "missing" {
        return vault_error(
            404,
            "KeyNotFound",
            "A key with (name/id) missing was not found in this key vault.",
        );
    }
    let body = req.json();
    let alg = body["alg"].as_str().unwrap_or_default().to_string();
    let Some(value) = unpadded_b64url(&body["value"]) else {
        return vault_error(400, "BadParameter", "value must be base64url");
    };
    let gcm = alg.ends_with("GCM");
    match *op {
        "encrypt" => {
            let current = versions()
                .lock()
                .unwrap()
                .get(*name)
                .cloned()
                .unwrap_or_else(|| "v1".into());
            let version = if version.is_empty() {
                current
            } else {
                version.to_string()
            };
            let mut ct = format!("KV|{name}|{version}|{alg}|").into_bytes();
            ct.extend(&value);
            let mut answer = json!({
                "kid": format!("{VAULT}/keys/{name}/{version}"),
                "value": B64URL.encode(&ct),
            });
            if gcm {
                answer["iv"] = json!(B64URL.encode(format!("iv-{version}")));
                answer["tag"] = json!(B64URL.encode("tag"));
            }
            ok(answer)
        }
        "decrypt" => {
            let prefix = format!("KV|{name}|{version}|{alg}|").into_bytes();
            let iv_ok = !gcm
                || (unpadded_b64url(&body["iv"]) == Some(format!("iv-{version}").into_bytes())
                    && unpadded_b64url(&body["tag"]) == Some(b"tag".to_vec()));
            match value.strip_prefix(prefix.as_slice()) {
                Some(key) if !version.is_empty() && iv_ok => ok(json!({
                    "kid": format!("{VAULT}/keys/{name}/{version}"),
                    "value": B64URL.encode(key),
                })),
                _ => vault_error(400, "BadParameter", "The parameter is incorrect."),
            }
        }
        _ => vault_error(404, "NotFound", "no such operation"),
    }
}

/// One fake for the whole test binary: the endpoint overrides are process-wide variables.
fn fake() -> &'static FakeServer {
    static FAKE: OnceLock<FakeServer> = OnceLock::new();
    fake_http::shared(&FAKE, &[VAULT_ENDPOINT_ENV, AUTHORITY_HOST_ENV], fake_azure)
}

fn encryption(provider_body: &str) -> std::sync::Arc<Encryption> {
    fake();
    let body = format!(
        "key_provider \"azure_vault\" \"kv\" {{\n vault_uri = \"{VAULT}\"\n tenant_id = \"{TENANT}\"\n{provider_body}\n}}\nmethod \"aes_gcm\" \"m\" {{\n keys = key_provider.azure_vault.kv\n}}\nstate {{\n method = method.aes_gcm.m\n}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        dir: dir.path().to_path_buf(),
        env_encryption: Some(body),
        workspace: "default".into(),
        ..Options::default()
    };
    load::load(&opts, Registry::default(), &|_| None)
        .unwrap_or_else(|d| panic!("{d}"))
        .encryption
}

fn secret_auth(key: &str) -> String {
    format!("vault_key_name = \"{key}\"\nkey_length = 32\nclient_id = \"app-id\"\nclient_secret = \"app-secret\"")
}

fn metadata(ct: &[u8]) -> serde_json::Value {
    let raw = &Envelope::parse(ct).unwrap().meta["key_provider.azure_vault.kv"];
    serde_json::from_slice(raw).unwrap()
}

/// `METHOD PATH [auth] [body?]` for each request about `key`.
fn calls(key: &str) -> Vec<String> {
    fake()
        .requests_to(&format!("/keys/{key}/"))
        .iter()
        .map(|r| {
            format!(
                "{} {}{}{}",
                r.method,
                r.path,
                if r.header("Authorization").is_some() {
                    " auth"
                } else {
                    ""
                },
                if r.body.is_empty() { "" } else { " body" }
            )
        })
        .collect()
}

#[test]
fn round_trip_with_client_secret_challenge_and_opentofu_metadata() {
    let enc = encryption(&secret_auth("state-key"));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    let meta = metadata(&ct);
    let raw = String::from_utf8(
        Envelope::parse(&ct).unwrap().meta["key_provider.azure_vault.kv"].clone(),
    )
    .unwrap();
    // OpenTofu's field names and order; RSA gives no iv, tag or aad.
    assert_eq!(
        raw,
        format!(
            r#"{{"ciphertext":"{}","iv":null,"authentication_tag":null,"additional_authenticated_data":null,"key_version":"v1","algo":"RSA-OAEP-256"}}"#,
            meta["ciphertext"].as_str().unwrap()
        )
    );
    let wrapped = B64.decode(meta["ciphertext"].as_str().unwrap()).unwrap();
    let key = wrapped
        .strip_prefix(b"KV|state-key|v1|RSA-OAEP-256|".as_slice())
        .expect("the stored ciphertext is Key Vault's answer");
    assert_eq!(
        key.len(),
        32,
        "key_length random bytes were sent to encrypt"
    );

    let (plain, status) = encryption(&secret_auth("state-key"))
        .state()
        .decrypt_state(&ct)
        .unwrap();
    assert_eq!((plain.as_slice(), status), (STATE, Status::Satisfied));
    let q = "?api-version=7.6";
    assert_eq!(
        calls("state-key"),
        [
            // encrypt: the challenge (no token, no body), then the call; current version ("").
            format!("POST /keys/state-key//encrypt{q}"),
            format!("POST /keys/state-key//encrypt{q} auth body"),
            // decrypt (a new provider): challenge, then the stored version.
            format!("POST /keys/state-key/v1/decrypt{q}"),
            format!("POST /keys/state-key/v1/decrypt{q} auth body"),
        ]
    );
    let tokens = fake().requests_to("/oauth2/v2.0/token");
    assert!(tokens
        .iter()
        .any(|t| t.form("client_secret").as_deref() == Some("app-secret")));
}

#[test]
fn decryption_uses_the_stored_key_version_after_a_rotation() {
    let enc = encryption(&secret_auth("rotated"));
    let old = enc.state().encrypt_state(STATE).unwrap();
    versions()
        .lock()
        .unwrap()
        .insert("rotated".into(), "v2".into());
    // A new run (the encryption key is made once per configuration load, as in OpenTofu).
    let enc = encryption(&secret_auth("rotated"));
    let new = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(metadata(&old)["key_version"], "v1");
    assert_eq!(metadata(&new)["key_version"], "v2");
    // A fresh reader: the writer's key cache would answer for the key it just made.
    let reader = encryption(&secret_auth("rotated"));
    assert_eq!(reader.state().decrypt_state(&old).unwrap().0, STATE);
    assert_eq!(reader.state().decrypt_state(&new).unwrap().0, STATE);
    let decrypts: Vec<String> = calls("rotated")
        .into_iter()
        .filter(|c| c.ends_with("auth body") && c.contains("/decrypt"))
        .collect();
    assert_eq!(decrypts.len(), 2, "{decrypts:?}");
    assert!(decrypts[0].contains("/rotated/v1/decrypt"), "{decrypts:?}");
    assert!(decrypts[1].contains("/rotated/v2/decrypt"), "{decrypts:?}");
}

#[test]
fn symmetric_keys_store_and_send_back_iv_and_tag() {
    let enc = encryption(&format!(
        "{}\nsymmetric = true\nsymmetric_key_size = 256",
        secret_auth("hsm-key")
    ));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    let meta = metadata(&ct);
    assert_eq!(meta["algo"], "A256GCM");
    assert_eq!(meta["iv"], B64.encode("iv-v1"));
    assert_eq!(meta["authentication_tag"], B64.encode("tag"));
    assert_eq!(
        meta["additional_authenticated_data"],
        serde_json::Value::Null
    );
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
}

#[test]
fn oidc_token_file_is_a_client_assertion() {
    let dir = tempfile::tempdir().unwrap();
    let jwt = dir.path().join("token");
    std::fs::write(&jwt, "federated-jwt\n").unwrap();
    let enc = encryption(&format!(
        "vault_key_name = \"oidc-key\"\nkey_length = 16\nclient_id = \"app-id\"\nuse_oidc = true\noidc_token_file_path = \"{}\"",
        jwt.display()
    ));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
}

/// GitHub Actions style: the federated token is fetched from the request URL with the request
/// token, for the token-exchange audience.
#[test]
fn oidc_request_url_is_asked_for_the_federated_token() {
    let enc = encryption(&format!(
        "vault_key_name = \"gh-key\"\nkey_length = 32\nclient_id = \"app-id\"\nuse_oidc = true\noidc_request_url = \"{}/oidc\"\noidc_request_token = \"gh-request-token\"",
        fake().url
    ));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
    assert!(!fake().requests_to("/oidc?").is_empty());
}

#[test]
fn failures_name_the_key_and_cause_and_never_the_secret() {
    let enc = encryption(
        "vault_key_name = \"denied-key\"\nkey_length = 32\nclient_id = \"app-id\"\nclient_secret = \"wrong-secret-value\"",
    );
    let err = enc.state().encrypt_state(STATE).unwrap_err().to_string();
    for want in ["\"denied-key\"", VAULT, "invalid_client", "AADSTS7000215"] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    assert!(!err.contains("wrong-secret-value"), "{err}");

    let err = encryption(&secret_auth("missing"))
        .state()
        .encrypt_state(STATE)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("KeyNotFound") && err.contains("check vault_uri and vault_key_name"),
        "{err}"
    );

    // No auth method configured at all: OpenTofu's summary, with each method's reason.
    let err = encryption("vault_key_name = \"no-auth-key\"\nkey_length = 32\nuse_cli = false")
        .state()
        .encrypt_state(STATE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("No valid azure auth methods found"), "{err}");
    assert!(err.contains("use_cli is false"), "{err}");
}

/// Managed identity: the metadata service (`AZURE_POD_IDENTITY_AUTHORITY_HOST` moves it, as
/// for the Azure SDK), with the `Metadata: true` header and the vault as resource.
#[test]
fn managed_identity_uses_the_metadata_service() {
    std::env::set_var("AZURE_POD_IDENTITY_AUTHORITY_HOST", &fake().url);
    let enc = encryption("vault_key_name = \"msi-key\"\nkey_length = 32\nuse_msi = true");
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
    assert!(!fake().requests_to("/metadata/identity/").is_empty());
}

/// AKS workload identity: the federated token file is the client assertion.
#[test]
fn workload_identity_uses_the_federated_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(&file, "federated-jwt").unwrap();
    std::env::set_var("AZURE_CLIENT_ID", "app-id");
    std::env::set_var("AZURE_TENANT_ID", TENANT);
    std::env::set_var("AZURE_FEDERATED_TOKEN_FILE", &file);
    let enc = encryption(
        "vault_key_name = \"aks-key\"\nkey_length = 32\nuse_aks_workload_identity = true",
    );
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
}

/// The Azure CLI (the default when nothing else is configured): `az account get-access-token`
/// for the vault resource and the configured tenant.
#[cfg(unix)]
#[test]
fn azure_cli_is_asked_for_a_token() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let az = dir.path().join("az");
    std::fs::write(
        &az,
        format!("#!/bin/sh\nif [ \"$*\" = \"account get-access-token --output json --resource https://vault.azure.net --tenant {TENANT}\" ]; then\n  echo '{{\"accessToken\": \"kv-token\", \"expiresOn\": \"2099-01-01 00:00:00.000000\"}}'\nelse\n  echo \"unexpected: $*\" >&2; exit 1\nfi\n"),
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);
    let enc = encryption("vault_key_name = \"cli-key\"\nkey_length = 32\nuse_cli = true");
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
}
