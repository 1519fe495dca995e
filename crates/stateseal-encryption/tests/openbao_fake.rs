//! openbao against a FAKE OpenBao: no real OpenBao or Vault can run here, so a small in-test
//! HTTP server implements only the two documented transit endpoints the provider uses:
//! `PUT /v1/{mount}/datakey/plaintext/{key}` and `PUT /v1/{mount}/decrypt/{key}`, with
//! `X-Vault-Token` checks, `associated_data`, and Vault's `{"errors":[…]}` answers.
#![cfg(feature = "openbao")]

use crate::fake_http;

use base64::Engine as _;
use fake_http::{FakeServer, Request};
use serde_json::json;
use stateseal_encryption::envelope::Envelope;
use stateseal_encryption::load::{self, Options};
use stateseal_encryption::{Encryption, Registry, Status};

const STATE: &[u8] =
    br#"{"version":4,"terraform_version":"1.9.0","serial":2,"lineage":"bao","outputs":{}}"#;
const TOKEN: &str = "s.fake-root-token";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn errors(code: u16, e: &str) -> (u16, String) {
    (code, json!({ "errors": [e] }).to_string())
}

/// Transit mounted at `/v1/{mount}`, with one key, `state-key`.
fn fake_bao(req: &Request, mount: &str) -> (u16, String) {
    if req.method != "PUT" {
        return errors(405, "unsupported operation");
    }
    if req.header("X-Vault-Token") != Some(TOKEN) {
        return errors(403, "permission denied");
    }
    let prefix = format!("/v1/{mount}/");
    let Some(rest) = req.path.strip_prefix(&prefix) else {
        return errors(
            404,
            &format!(
                "no handler for route \"{}\". route entry not found.",
                req.path
            ),
        );
    };
    let (op, key) = rest.rsplit_once('/').unwrap();
    if key != "state-key" {
        return errors(400, "encryption key not found");
    }
    let body = req.json();
    let ad = body["associated_data"].as_str().unwrap_or("").to_string();
    match op {
        "datakey/plaintext" => {
            let bits = body["bits"].as_i64().unwrap();
            let plaintext: Vec<u8> = (0..bits / 8).map(|i| i as u8 ^ 0xa5).collect();
            let ct = format!(
                "vault:v1:{}",
                B64.encode(format!("{ad}|{}", B64.encode(&plaintext)))
            );
            (200, json!({"data": {"plaintext": B64.encode(&plaintext), "ciphertext": ct, "key_version": 1}}).to_string())
        }
        "decrypt" => {
            let ct = body["ciphertext"].as_str().unwrap_or("");
            let inner = ct
                .strip_prefix("vault:v1:")
                .and_then(|c| B64.decode(c).ok())
                .map(|b| String::from_utf8_lossy(&b).to_string());
            match inner.as_deref().and_then(|i| i.split_once('|')) {
                Some((stored_ad, pt)) if stored_ad == ad => {
                    (200, json!({"data": {"plaintext": pt}}).to_string())
                }
                Some(_) => errors(400, "cipher: message authentication failed"),
                None => errors(400, "invalid ciphertext: no prefix"),
            }
        }
        _ => errors(404, "unsupported path"),
    }
}

fn encryption(body: &str) -> std::sync::Arc<Encryption> {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        dir: dir.path().to_path_buf(),
        env_encryption: Some(format!(
            "{body}\nmethod \"aes_gcm\" \"m\" {{\n keys = key_provider.openbao.bao\n}}\nstate {{\n method = method.aes_gcm.m\n}}\n"
        )),
        workspace: "default".into(),
        ..Options::default()
    };
    load::load(&opts, Registry::default(), &|_| None)
        .unwrap_or_else(|d| panic!("{d}"))
        .encryption
}

fn provider(address: &str, extra: &str) -> String {
    format!("key_provider \"openbao\" \"bao\" {{\n address = \"{address}\"\n token = \"{TOKEN}\"\n {extra}\n}}")
}

fn meta(ct: &[u8]) -> String {
    String::from_utf8(Envelope::parse(ct).unwrap().meta["key_provider.openbao.bao"].clone())
        .unwrap()
}

fn assert_contains(msg: &str, want: &[&str]) {
    eprintln!("{msg}\n");
    for w in want {
        assert!(msg.contains(w), "{w:?} not in:\n{msg}");
    }
}

#[test]
fn fake_openbao_round_trip_with_opentofu_metadata() {
    let bao = FakeServer::start(|r| fake_bao(r, "transit"));
    let enc = encryption(&provider(&bao.url, "key_name = \"state-key\""));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    // A fresh reader: its key cache is empty, so the stored metadata must lead back to the
    // key through the key service (the writer would reuse the key it was just given).
    let enc = encryption(&provider(&bao.url, "key_name = \"state-key\""));
    let m = meta(&ct);
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    let stored = String::from_utf8(B64.decode(v["ciphertext"].as_str().unwrap()).unwrap()).unwrap();
    assert!(stored.starts_with("vault:v1:"), "{stored}");
    assert_eq!(m, format!(r#"{{"ciphertext":"{}"}}"#, B64.encode(&stored)));

    let (plain, status) = enc.state().decrypt_state(&ct).unwrap();
    assert_eq!((plain.as_slice(), status), (STATE, Status::Satisfied));

    let reqs = bao.requests.lock().unwrap().clone();
    let calls: Vec<String> = reqs
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            "PUT /v1/transit/datakey/plaintext/state-key",
            "PUT /v1/transit/decrypt/state-key"
        ],
        "decrypting must not ask for a new data key"
    );
    assert_eq!(reqs[0].json(), json!({"bits": 256}));
    assert_eq!(reqs[1].json(), json!({"ciphertext": stored}));
}

#[test]
fn fake_openbao_key_length_mount_and_associated_data() {
    let bao = FakeServer::start(|r| fake_bao(r, "secrets/transit"));
    let body = provider(
        &bao.url,
        "key_name = \"state-key\"\n key_length = 16\n transit_engine_path = \"/secrets/transit/\"\n associated_data = \"c3RhdGU=\"",
    );
    let enc = encryption(&body);
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert!(meta(&ct).ends_with(r#","associated_data":"c3RhdGU="}"#));
    assert_eq!(
        bao.requests_to("datakey")[0].json(),
        json!({"bits": 128, "associated_data": "c3RhdGU="})
    );
    // The stored associated_data is what decrypt sends, whatever the configuration says now.
    let changed = encryption(&body.replace("c3RhdGU=", "b3RoZXI="));
    assert_eq!(changed.state().decrypt_state(&ct).unwrap().0, STATE);
    assert_eq!(
        bao.requests_to("decrypt")[0].json()["associated_data"],
        "c3RhdGU="
    );
}

#[test]
fn fake_openbao_errors_name_provider_key_and_api_error() {
    let bao = FakeServer::start(|r| fake_bao(r, "transit"));
    let enc_err = |body: String| {
        encryption(&body)
            .state()
            .encrypt_state(STATE)
            .unwrap_err()
            .to_string()
    };

    assert_contains(
        &enc_err(provider(&bao.url, "key_name = \"no-such-key\"")),
        &[
            "key_provider.openbao.bao failed with error:",
            "\"no-such-key\"",
            "HTTP 400: encryption key not found",
            "check key_name",
        ],
    );
    let e = enc_err(provider(&bao.url, "key_name = \"state-key\"").replace(TOKEN, "s.wrong-token"));
    assert_contains(
        &e,
        &[
            "\"state-key\"",
            "HTTP 403: permission denied",
            "check the token",
        ],
    );
    assert!(!e.contains("s.wrong-token"), "the token leaked: {e}");
    assert_contains(
        &enc_err(provider(
            &bao.url,
            "key_name = \"state-key\"\n transit_engine_path = \"kv\"",
        )),
        &[
            "/v1/kv/datakey/plaintext/state-key",
            "HTTP 404",
            "transit_engine_path",
        ],
    );
    assert_contains(
        &enc_err(provider("http://127.0.0.1:9", "key_name = \"state-key\"")),
        &[
            "key_provider.openbao.bao",
            "\"state-key\"",
            "cannot reach http://127.0.0.1:9/v1/transit/datakey/plaintext/state-key",
        ],
    );

    // A tampered stored ciphertext.
    let enc = encryption(&provider(&bao.url, "key_name = \"state-key\""));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    let mut env = Envelope::parse(&ct).unwrap();
    env.meta.insert(
        "key_provider.openbao.bao".into(),
        format!(r#"{{"ciphertext":"{}"}}"#, B64.encode("vault:v1:AAAA")).into_bytes(),
    );
    assert_contains(
        &enc.state()
            .decrypt_state(&env.to_bytes())
            .unwrap_err()
            .to_string(),
        &[
            "key_provider.openbao.bao",
            "failed to decrypt the stored data key",
            "\"state-key\"",
            "HTTP 400",
        ],
    );
}

#[test]
fn fake_openbao_address_and_token_from_bao_env() {
    let bao = FakeServer::start(|r| fake_bao(r, "transit"));
    // Only this test sets these; the others configure address and token, which win.
    std::env::set_var("BAO_ADDR", &bao.url);
    std::env::set_var("BAO_TOKEN", TOKEN);
    let enc = encryption("key_provider \"openbao\" \"bao\" {\n key_name = \"state-key\"\n}");
    let ct = enc.state().encrypt_state(STATE).unwrap();
    // A fresh reader: its key cache is empty, so the stored metadata must lead back to the
    // key through the key service (the writer would reuse the key it was just given).
    let enc = encryption("key_provider \"openbao\" \"bao\" {\n key_name = \"state-key\"\n}");
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
    assert_eq!(bao.requests.lock().unwrap().len(), 2);
}
