//! gcp_kms against a FAKE Cloud KMS: no real Google service can run here, so a small in-test
//! HTTP server implements only the documented REST endpoints the provider uses:
//! `POST /v1/{key}:encrypt` and `:decrypt` (bearer token, JSON `plaintext` /
//! `ciphertext` / `additionalAuthenticatedData`), the OAuth token endpoint (service-account JWT
//! grant, verified against the fake account's public key; refresh-token grant), and IAM
//! Credentials `generateAccessToken` (impersonation). Errors use Google's error JSON.
//!
//! The service-account key in `tests/data/fake-gcp-service-account.json` was generated for
//! these tests and is used nowhere else.
#![cfg(feature = "gcp-kms")]

use crate::fake_http;

use std::sync::OnceLock;

use base64::Engine as _;
use fake_http::{FakeServer, Request};
use serde_json::json;
use stateseal_encryption::envelope::Envelope;
use stateseal_encryption::key_provider::gcp_kms::{IAMCREDENTIALS_ENDPOINT_ENV, KMS_ENDPOINT_ENV};
use stateseal_encryption::load::{self, Options};
use stateseal_encryption::{Encryption, Registry, Status};

const STATE: &[u8] =
    br#"{"version":4,"terraform_version":"1.9.0","serial":5,"lineage":"gcp","outputs":{}}"#;
const KEY_PREFIX: &str = "projects/stateseal/locations/global/keyRings/tofu/cryptoKeys";
const SA_EMAIL: &str = "state@stateseal-fake.iam.gserviceaccount.com";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn google_error(code: u16, status: &str, message: &str) -> (u16, String) {
    (
        code,
        json!({"error": {"code": code, "message": message, "status": status}}).to_string(),
    )
}

fn verify_jwt(jwt: &str, token_uri: &str) -> bool {
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return false;
    };
    let public = include_bytes!("data/fake-gcp-service-account.pub.der");
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public,
    );
    let signed = key
        .verify(
            format!("{h}.{c}").as_bytes(),
            &url.decode(s).unwrap_or_default(),
        )
        .is_ok();
    let claims: serde_json::Value =
        serde_json::from_slice(&url.decode(c).unwrap_or_default()).unwrap_or_default();
    signed && claims["iss"] == SA_EMAIL && claims["aud"] == token_uri
}

/// The fake's whole behaviour.
fn fake_google(req: &Request, base: &str) -> (u16, String) {
    let bearer = req
        .header("Authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    if req.path == "/token" {
        return match req.form("grant_type").as_deref() {
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
                if verify_jwt(
                    &req.form("assertion").unwrap_or_default(),
                    &format!("{base}/token"),
                ) =>
            {
                (
                    200,
                    json!({"access_token": "sa-token", "expires_in": 3600, "token_type": "Bearer"})
                        .to_string(),
                )
            }
            Some("refresh_token")
                if req.form("refresh_token").as_deref() == Some("fake-refresh") =>
            {
                (
                    200,
                    json!({"access_token": "user-token", "expires_in": 3600}).to_string(),
                )
            }
            _ => (
                400,
                json!({"error": "invalid_grant", "error_description": "bad assertion"}).to_string(),
            ),
        };
    }
    if let Some(rest) = req.path.strip_prefix("/v1/projects/-/serviceAccounts/") {
        let target = rest.trim_end_matches(":generateAccessToken");
        if bearer != "sa-token" && bearer != "good-token" {
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            );
        }
        let body = req.json();
        if body["scope"] != json!(["https://www.googleapis.com/auth/cloudkms"]) {
            return google_error(400, "INVALID_ARGUMENT", "wrong scope");
        }
        return (200, json!({"accessToken": format!("impersonated:{target}"), "expireTime": "2099-01-01T00:00:00Z"}).to_string());
    }
    let Some(rest) = req.path.strip_prefix("/v1/") else {
        return (404, "{}".into());
    };
    let (name, op) = rest.rsplit_once(':').unwrap_or((rest, ""));
    if !["good-token", "sa-token", "user-token", "encrypt-only-token"].contains(&bearer.as_str())
        && !bearer.starts_with("impersonated:")
    {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    if name.ends_with("/missing") {
        return google_error(404, "NOT_FOUND", &format!("{name} not found."));
    }
    let body = req.json();
    let aad = body["additionalAuthenticatedData"]
        .as_str()
        .unwrap_or("")
        .to_string();
    match op {
        "encrypt" => {
            let wrapped = format!(
                "FAKEKMS|{name}|{aad}|{}",
                body["plaintext"].as_str().unwrap()
            );
            (200, json!({"name": format!("{name}/cryptoKeyVersions/1"), "ciphertext": B64.encode(wrapped)}).to_string())
        }
        "decrypt" => {
            if bearer == "encrypt-only-token" {
                return google_error(403, "PERMISSION_DENIED", &format!("Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied on resource '{name}' (or it may not exist)."));
            }
            let ct = B64
                .decode(body["ciphertext"].as_str().unwrap_or(""))
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&ct).to_string();
            let f: Vec<&str> = text.split('|').collect();
            match f.as_slice() {
                ["FAKEKMS", n, a, p] if *n == name && *a == aad => {
                    (200, json!({"plaintext": p}).to_string())
                }
                _ => google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "Decryption failed: the ciphertext is invalid.",
                ),
            }
        }
        _ => (404, "{}".into()),
    }
}

/// One fake for the whole test binary: the endpoint overrides are process-wide variables.
fn fake() -> &'static FakeServer {
    static FAKE: OnceLock<FakeServer> = OnceLock::new();
    fake_http::shared(
        &FAKE,
        &[KMS_ENDPOINT_ENV, IAMCREDENTIALS_ENDPOINT_ENV],
        |req, base| {
            let (status, body) = fake_google(req, base);
            (status, Vec::new(), body)
        },
    )
}

fn encryption(name: &str, provider_body: &str) -> std::sync::Arc<Encryption> {
    fake();
    let body = format!(
        "key_provider \"gcp_kms\" \"{name}\" {{\n{provider_body}\n}}\nmethod \"aes_gcm\" \"m\" {{\n keys = key_provider.gcp_kms.{name}\n}}\nstate {{\n method = method.aes_gcm.m\n}}\n"
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

fn key(k: &str) -> String {
    format!("{KEY_PREFIX}/{k}")
}

fn assert_contains(msg: &str, want: &[&str]) {
    eprintln!("{msg}\n");
    for w in want {
        assert!(msg.contains(w), "{w:?} not in:\n{msg}");
    }
}

#[test]
fn fake_kms_round_trip_with_access_token_and_opentofu_metadata() {
    let k = key("roundtrip");
    let enc = encryption(
        "main",
        &format!("kms_encryption_key = \"{k}\"\nkey_length = 32\naccess_token = \"good-token\""),
    );
    let ct = enc.state().encrypt_state(STATE).unwrap();
    // A fresh reader: its key cache is empty, so the stored metadata must lead back to the
    // key through the key service (the writer would reuse the key it was just given).
    let enc = encryption(
        "main",
        &format!("kms_encryption_key = \"{k}\"\nkey_length = 32\naccess_token = \"good-token\""),
    );
    let meta =
        String::from_utf8(Envelope::parse(&ct).unwrap().meta["key_provider.gcp_kms.main"].clone())
            .unwrap();
    let v: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(
        meta,
        format!(
            r#"{{"ciphertext":"{}"}}"#,
            v["ciphertext"].as_str().unwrap()
        )
    );
    let wrapped =
        String::from_utf8(B64.decode(v["ciphertext"].as_str().unwrap()).unwrap()).unwrap();
    assert!(wrapped.starts_with(&format!("FAKEKMS|{k}||")), "{wrapped}");
    // The data key was made locally (32 bytes) and sent to :encrypt.
    assert_eq!(
        B64.decode(wrapped.rsplit('|').next().unwrap())
            .unwrap()
            .len(),
        32
    );

    let (plain, status) = enc.state().decrypt_state(&ct).unwrap();
    assert_eq!((plain.as_slice(), status), (STATE, Status::Satisfied));
    let calls: Vec<String> = fake()
        .requests_to(&k)
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            format!("POST /v1/{k}:encrypt"),
            format!("POST /v1/{k}:decrypt")
        ],
        "decrypting must not call :encrypt"
    );
}

#[test]
fn fake_kms_service_account_jwt_and_aad() {
    let k = key("service-account");
    let dir = tempfile::tempdir().unwrap();
    let sa = include_str!("data/fake-gcp-service-account.json")
        .replace("FAKE_TOKEN_URI", &format!("{}/token", fake().url));
    let path = dir.path().join("sa.json");
    std::fs::write(&path, sa).unwrap();
    let provider = format!(
        "kms_encryption_key = \"{k}\"\nkey_length = 16\ncredentials = \"{}\"\nadditional_authenticated_data = \"c3RhdGU=\"",
        path.display()
    );
    let enc = encryption("sa", &provider);
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
    let calls = fake().requests_to(&k);
    assert!(calls
        .iter()
        .all(|r| r.header("Authorization") == Some("Bearer sa-token")));
    assert!(calls
        .iter()
        .all(|r| r.json()["additionalAuthenticatedData"] == "c3RhdGU="));

    // AAD is not stored: changing it breaks reading (as in OpenTofu), with a clear error.
    let other = encryption("sa", &provider.replace("c3RhdGU=", "b3RoZXI="));
    let err = other.state().decrypt_state(&ct).unwrap_err().to_string();
    assert_contains(
        &err,
        &[
            "key_provider.gcp_kms.sa failed with error:",
            &k,
            "INVALID_ARGUMENT",
            "additional_authenticated_data",
        ],
    );
}

#[test]
fn fake_kms_authorized_user_credentials_as_content() {
    let k = key("authorized-user");
    let creds = json!({
        "type": "authorized_user", "client_id": "cid", "client_secret": "csecret",
        "refresh_token": "fake-refresh", "token_uri": format!("{}/token", fake().url)
    })
    .to_string()
    .replace('"', "\\\"");
    let enc = encryption(
        "user",
        &format!("kms_encryption_key = \"{k}\"\nkey_length = 32\ncredentials = \"{creds}\""),
    );
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
    assert!(fake()
        .requests_to(&k)
        .iter()
        .all(|r| r.header("Authorization") == Some("Bearer user-token")));
}

#[test]
fn fake_kms_impersonation_with_delegates() {
    let k = key("impersonation");
    let target = "kms-user@stateseal-fake.iam.gserviceaccount.com";
    let enc = encryption(
        "imp",
        &format!("kms_encryption_key = \"{k}\"\nkey_length = 32\naccess_token = \"good-token\"\nimpersonate_service_account = \"{target}\"\nimpersonate_service_account_delegates = [\"hop@stateseal-fake.iam.gserviceaccount.com\"]"),
    );
    let ct = enc.state().encrypt_state(STATE).unwrap();
    // A fresh reader: its key cache is empty, so the stored metadata must lead back to the
    // key through the key service (the writer would reuse the key it was just given).
    let enc = encryption(
        "imp",
        &format!("kms_encryption_key = \"{k}\"\nkey_length = 32\naccess_token = \"good-token\"\nimpersonate_service_account = \"{target}\"\nimpersonate_service_account_delegates = [\"hop@stateseal-fake.iam.gserviceaccount.com\"]"),
    );
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
    let gen = fake().requests_to(&format!("{target}:generateAccessToken"));
    assert_eq!(gen.len(), 2);
    assert_eq!(gen[0].header("Authorization"), Some("Bearer good-token"));
    assert_eq!(
        gen[0].json()["delegates"],
        json!(["projects/-/serviceAccounts/hop@stateseal-fake.iam.gserviceaccount.com"])
    );
    let auth = format!("Bearer impersonated:{target}");
    assert!(fake()
        .requests_to(&k)
        .iter()
        .all(|r| r.header("Authorization") == Some(auth.as_str())));
}

#[test]
fn fake_kms_errors_name_provider_key_and_api_error() {
    let err = |name: &str, body: String, decrypt_with: Option<&Encryption>| {
        let enc = encryption(name, &body);
        let e = match decrypt_with {
            None => enc.state().encrypt_state(STATE).unwrap_err(),
            Some(writer) => {
                let ct = writer.state().encrypt_state(STATE).unwrap();
                enc.state().decrypt_state(&ct).unwrap_err()
            }
        };
        e.to_string()
    };
    let missing = key("missing");
    assert_contains(
        &err("nf", format!("kms_encryption_key = \"{missing}\"\nkey_length = 32\naccess_token = \"good-token\""), None),
        &["key_provider.gcp_kms.nf failed with error:", &missing, "NOT_FOUND", "check kms_encryption_key"],
    );
    let k = key("errors");
    let e = err(
        "auth",
        format!("kms_encryption_key = \"{k}\"\nkey_length = 32\naccess_token = \"expired-token\""),
        None,
    );
    assert_contains(&e, &["UNAUTHENTICATED", &k, "(HTTP 401)"]);
    assert!(!e.contains("expired-token"), "the token leaked: {e}");

    let writer = encryption(
        "deny",
        format!("kms_encryption_key = \"{k}\"\nkey_length = 32\naccess_token = \"good-token\"")
            .as_str(),
    );
    assert_contains(
        &err("deny", format!("kms_encryption_key = \"{k}\"\nkey_length = 32\naccess_token = \"encrypt-only-token\""), Some(&writer)),
        &["key_provider.gcp_kms.deny failed with error:", "failed to decrypt", &k, "PERMISSION_DENIED", "useToDecrypt"],
    );

    // A stored ciphertext that does not belong to the key.
    let ct = writer.state().encrypt_state(STATE).unwrap();
    let mut env = Envelope::parse(&ct).unwrap();
    env.meta.insert(
        "key_provider.gcp_kms.deny".into(),
        format!(r#"{{"ciphertext":"{}"}}"#, B64.encode("garbage")).into_bytes(),
    );
    assert_contains(
        &writer
            .state()
            .decrypt_state(&env.to_bytes())
            .unwrap_err()
            .to_string(),
        &[
            "key_provider.gcp_kms.deny",
            &k,
            "INVALID_ARGUMENT",
            "the ciphertext is invalid",
        ],
    );

    // Unreachable endpoint (the token endpoint here).
    let bad_sa = include_str!("data/fake-gcp-service-account.json")
        .replace("FAKE_TOKEN_URI", "http://127.0.0.1:9/token");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sa.json"), bad_sa).unwrap();
    assert_contains(
        &err(
            "down",
            format!(
                "kms_encryption_key = \"{k}\"\nkey_length = 32\ncredentials = \"{}\"",
                dir.path().join("sa.json").display()
            ),
            None,
        ),
        &[
            "key_provider.gcp_kms.down",
            &k,
            "cannot get an access token",
            "http://127.0.0.1:9/token",
        ],
    );
}
