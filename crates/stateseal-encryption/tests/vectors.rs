//! The shared test vectors (`testdata/vectors/`) and must-fail cases (`testdata/fail/`).

use std::path::PathBuf;

use ring::digest::{digest, SHA256};
use serde_json::Value;
use stateseal_core::secret::Keys;
use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::EncryptionConfig;
use stateseal_encryption::envelope::Envelope;
use stateseal_encryption::key_provider::{KeyProvider, Provided, ProviderError, Purpose};
use stateseal_encryption::{Encryption, Error, Registry, Status};

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn sha256_hex(b: &[u8]) -> String {
    digest(&SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn encryption(hcl: &str, registry: Registry) -> Encryption {
    let cfg = EncryptionConfig::parse_body_str("vector.hcl", hcl).unwrap();
    Encryption::new(cfg, StaticEvaluator::default(), registry).unwrap()
}

/// OpenTofu's test-only `static` provider, registered from outside the library: the registry
/// is extensible without touching the crate.
struct Static(Vec<u8>);

impl KeyProvider for Static {
    fn provide(&self, purpose: Purpose<'_>) -> Result<Provided, ProviderError> {
        let magic = br#"{"magic":"Hello world!"}"#.to_vec();
        Ok(match purpose {
            Purpose::Encrypt => Provided {
                keys: Keys {
                    encryption_key: Some(self.0.clone().into()),
                    decryption_key: None,
                },
                metadata: Some(magic),
            },
            Purpose::Decrypt { stored } => {
                let ok = stored.is_some_and(|s| {
                    serde_json::from_slice::<Value>(s).ok()
                        == serde_json::from_slice::<Value>(&magic).ok()
                });
                Provided {
                    keys: Keys {
                        encryption_key: None,
                        decryption_key: ok.then(|| self.0.clone().into()),
                    },
                    metadata: None,
                }
            }
        })
    }
}

fn registry_with_static() -> Registry {
    let mut r = Registry::default();
    r.register_key_provider("static", |cfg| {
        let hex = cfg
            .get("key")
            .and_then(Value::as_str)
            .ok_or("key is required")?;
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string()))
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(Box::new(Static(bytes)) as Box<dyn KeyProvider>)
    });
    r
}

fn vectors() -> Vec<Value> {
    let v: Value = serde_json::from_slice(&read("vectors/vectors.json")).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

#[test]
fn every_vector_decrypts_to_its_plaintext_sha256() {
    let vs = vectors();
    assert_eq!(vs.len(), 8, "all eight vectors are covered");
    for v in vs {
        let id = v["id"].as_str().unwrap();
        let enc_bytes = read(&format!("vectors/{}", v["encrypted"].as_str().unwrap()));
        assert_eq!(
            sha256_hex(&enc_bytes),
            v["encrypted_sha256"].as_str().unwrap(),
            "{id}: ciphertext file"
        );
        let e = encryption(&vector_hcl(&v), registry_with_static());
        let (plain, status) = if v["kind"] == "plan" {
            e.plan().decrypt_plan(&enc_bytes)
        } else {
            e.state().decrypt_state(&enc_bytes)
        }
        .unwrap_or_else(|err| panic!("{id}: {err}"));
        assert_eq!(status, Status::Satisfied, "{id}");
        assert_eq!(
            sha256_hex(&plain),
            v["plaintext_sha256"].as_str().unwrap(),
            "{id}: plaintext"
        );
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The vector's HCL with the literal key written out (vectors.json abbreviates the key 1..32
/// as `[1,2,...,32]`, which is not HCL).
fn vector_hcl(v: &Value) -> String {
    let full: Vec<String> = (1..=32).map(|i| i.to_string()).collect();
    v["hcl"]
        .as_str()
        .unwrap()
        .replace("[1,2,...,32]", &format!("[{}]", full.join(",")))
}

/// Encrypts each vector's plaintext with its HCL through the real configuration, key provider
/// and method code, with the vector's salt and nonce as the only random draws: the output is the
/// reference's file, byte for byte. So every option a vector sets (hash, key and salt length,
/// iterations, alias, aad, plan vs state) is honoured exactly as the reference does.
#[test]
fn every_vector_is_reproduced_byte_for_byte() {
    for v in vectors() {
        let id = v["id"].as_str().unwrap();
        let expected = read(&format!("vectors/{}", v["encrypted"].as_str().unwrap()));
        let plain = read(&format!("vectors/{}", v["plaintext"].as_str().unwrap()));
        let salt = v["salt_hex"].as_str().map(hex);
        let nonce = hex(v["nonce_hex"].as_str().unwrap());
        let draws: Vec<&[u8]> = salt.iter().map(Vec::as_slice).chain([&nonce[..]]).collect();
        let e = encryption(&vector_hcl(&v), registry_with_static());
        let ours = stateseal_encryption::randomness::with_fixed(&draws, || {
            if v["kind"] == "plan" {
                e.plan().encrypt_plan(&plain)
            } else {
                e.state().encrypt_state(&plain)
            }
        })
        .unwrap_or_else(|err| panic!("{id}: {err}"))
        .unwrap_or_else(|err| panic!("{id}: {err}"));
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&expected),
            "{id}"
        );
        assert_eq!(ours, expected, "{id}");
    }
}

#[test]
fn envelope_writer_reproduces_every_vector_byte_for_byte() {
    for v in vectors() {
        let bytes = read(&format!("vectors/{}", v["encrypted"].as_str().unwrap()));
        let env = Envelope::parse(&bytes).unwrap();
        assert_eq!(env.to_bytes(), bytes, "{}", v["id"]);
    }
}

#[test]
fn our_envelopes_have_the_vectors_layout() {
    let e = encryption(vectors()[0]["hcl"].as_str().unwrap(), Registry::default());
    let plain = read("vectors/state_plain.json");
    let ours = e.state().encrypt_state(&plain).unwrap();
    let text = String::from_utf8(ours.clone()).unwrap();
    assert!(text.starts_with(r#"{"serial":3,"lineage":"5b3c0f4e-2d7a-4c1e-9a8b-0f1e2d3c4b5a","meta":{"key_provider.pbkdf2.main":""#), "{text}");
    assert!(text.ends_with(r#"","encryption_version":"v0"}"#));
    assert!(!text.contains('\n') && !text.contains(' '));
    // same metadata JSON shape (field order) as the vector's
    let theirs = Envelope::parse(&read("vectors/state_pbkdf2_aesgcm.enc.json")).unwrap();
    let ours_env = Envelope::parse(&ours).unwrap();
    let shape = |m: &[u8]| {
        serde_json::from_slice::<serde_json::Map<String, Value>>(m)
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shape(&ours_env.meta["key_provider.pbkdf2.main"]),
        shape(&theirs.meta["key_provider.pbkdf2.main"])
    );
    assert_eq!(
        ours_env.encrypted_data.len(),
        theirs.encrypted_data.len(),
        "nonce(12) ‖ ciphertext ‖ tag(16)"
    );
    // and the plan envelope drops serial and lineage
    let p = e
        .state()
        .encrypt_plan(&read("vectors/plan_plain.zip"))
        .unwrap();
    assert!(p.starts_with(br#"{"meta":{"key_provider.pbkdf2.main":""#));
}

#[test]
fn must_fail_cases_fail_with_their_specific_error() {
    let cases: Value = serde_json::from_slice(&read("fail/cases.json")).unwrap();
    let e = encryption(cases["config"].as_str().unwrap(), Registry::default());
    for c in cases["cases"].as_array().unwrap() {
        let file = c["file"].as_str().unwrap();
        let err = e
            .state()
            .decrypt_state(&read(&format!("fail/{file}")))
            .expect_err(file);
        let variant = match &err {
            Error::DecryptionFailed { no_key: false, .. } => "DecryptionFailed",
            Error::PassthroughMismatch(_) => "PassthroughMismatch",
            Error::UnsupportedVersion(_) => "UnsupportedVersion",
            Error::InvalidPayload { .. } => "InvalidPayload",
            other => panic!("{file}: unexpected {other:?}"),
        };
        assert_eq!(variant, c["error"].as_str().unwrap(), "{file}: {err}");
        if variant != "InvalidPayload" || file != "fail_empty.enc.json" {
            assert!(
                err.to_string().contains(c["message"].as_str().unwrap()),
                "{file}: {err}"
            );
        }
    }
}

#[test]
fn fallback_reads_report_migration_and_plaintext_needs_unencrypted() {
    let vector_hcl = vectors()[0]["hcl"].as_str().unwrap().to_string();
    let rotated = vector_hcl.replace("key_provider \"pbkdf2\" \"main\"", "key_provider \"pbkdf2\" \"new\" { passphrase = \"a brand new passphrase\" }\nkey_provider \"pbkdf2\" \"main\"")
        .replace("method \"aes_gcm\" \"main\" { keys = key_provider.pbkdf2.main }", "method \"aes_gcm\" \"main\" { keys = key_provider.pbkdf2.main }\nmethod \"aes_gcm\" \"new\" { keys = key_provider.pbkdf2.new }")
        .replace("state { method = method.aes_gcm.main }", "state {\n method = method.aes_gcm.new\n fallback { method = method.aes_gcm.main }\n}");
    let e = encryption(&rotated, Registry::default());
    let (plain, status) = e
        .state()
        .decrypt_state(&read("vectors/state_pbkdf2_aesgcm.enc.json"))
        .unwrap();
    assert_eq!(status, Status::Migration);
    let rewritten = e.state().encrypt_state(&plain).unwrap();
    let meta = Envelope::parse(&rewritten).unwrap().meta;
    assert_eq!(
        meta.keys().collect::<Vec<_>>(),
        ["key_provider.pbkdf2.new"],
        "1.10+: only the primary's providers"
    );
    assert_eq!(
        e.state().decrypt_state(&rewritten).unwrap().1,
        Status::Satisfied
    );

    let plain_state = read("vectors/state_plain.json");
    let err = e.state().decrypt_state(&plain_state).unwrap_err();
    assert_eq!(
        err.to_string(),
        "encountered unencrypted payload without unencrypted method configured"
    );
    let migrate = encryption(&format!("{vector_hcl}\nmethod \"unencrypted\" \"u\" {{}}").replace("state { method = method.aes_gcm.main }", "state {\n method = method.aes_gcm.main\n fallback { method = method.unencrypted.u }\n}"), Registry::default());
    assert_eq!(
        migrate.state().decrypt_state(&plain_state).unwrap(),
        (plain_state.clone(), Status::Migration)
    );
    // no target block: envelopes are refused with OpenTofu's message
    let none = encryption("method \"unencrypted\" \"u\" {}", Registry::default());
    assert_eq!(
        none.state()
            .decrypt_state(&read("vectors/state_pbkdf2_aesgcm.enc.json"))
            .unwrap_err()
            .to_string(),
        "This state file is encrypted and can not be read without an encryption configuration"
    );
}
