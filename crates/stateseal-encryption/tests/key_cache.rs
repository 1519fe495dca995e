//! Key derivations per operation, counted through the library's API
//! ([`Encryption::key_provider_calls`]), not by timing: the key cache makes a pbkdf2 key cost one
//! derivation per salt read plus one to encrypt, and the check after an encrypt reuses the key it
//! was just given.

use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::EncryptionConfig;
use stateseal_encryption::{Encryption, PayloadKind, Registry, Status};

const STATE: &[u8] = br#"{"version":4,"terraform_version":"1.9.0","serial":3,"lineage":"L","outputs":{},"resources":[]}"#;
const NEXT: &[u8] = br#"{"version":4,"terraform_version":"1.9.0","serial":4,"lineage":"L","outputs":{"a":{"value":1,"type":"number"}},"resources":[]}"#;

/// A state target on pbkdf2 `new` (passphrase `new`), with `old` as a fallback when asked.
fn encryption(primary: &str, fallback: Option<&str>) -> Encryption {
    let provider = |n: &str| {
        format!(
            "key_provider \"pbkdf2\" \"{n}\" {{\n  passphrase = \"passphrase-{n}-long-enough\"\n  iterations = 200000\n}}\nmethod \"aes_gcm\" \"{n}\" {{\n  keys = key_provider.pbkdf2.{n}\n}}\n"
        )
    };
    let mut body = provider(primary);
    if let Some(f) = fallback {
        body.push_str(&provider(f));
    }
    body.push_str(&format!("state {{\n  method = method.aes_gcm.{primary}\n"));
    if let Some(f) = fallback {
        body.push_str(&format!(
            "  fallback {{\n    method = method.aes_gcm.{f}\n  }}\n"
        ));
    }
    body.push_str("}\n");
    let config = EncryptionConfig::parse_body_str("test.hcl", &body).unwrap();
    Encryption::new(config, StaticEvaluator::default(), Registry::default()).unwrap()
}

fn derivations(e: &Encryption) -> u64 {
    e.key_provider_calls().get("pbkdf2").copied().unwrap_or(0)
}

#[test]
fn encrypt_derives_once_including_its_verification() {
    let e = encryption("new", None);
    let out = e
        .state()
        .encrypt_verified(STATE, PayloadKind::State)
        .unwrap();
    assert!(out.starts_with(b"{\"serial\":3"));
    assert_eq!(derivations(&e), 1);
}

#[test]
fn decrypt_derives_once_and_a_second_read_of_the_same_salt_none() {
    let written = encryption("new", None)
        .state()
        .encrypt_state(STATE)
        .unwrap();
    let e = encryption("new", None);
    assert_eq!(e.state().decrypt_state(&written).unwrap().0, STATE);
    assert_eq!(derivations(&e), 1);
    assert_eq!(e.state().decrypt_state(&written).unwrap().0, STATE);
    assert_eq!(
        derivations(&e),
        1,
        "the second read is served by the key cache"
    );
}

#[test]
fn rekey_derives_twice() {
    let old = encryption("old", None)
        .state()
        .encrypt_state(STATE)
        .unwrap();
    let e = encryption("new", Some("old"));
    // rekey: read with the fallback, then a verified encrypt with the primary
    let (plain, status) = e.state().decrypt_state(&old).unwrap();
    assert_eq!(status, Status::Migration);
    let out = e
        .state()
        .encrypt_verified(&plain, PayloadKind::State)
        .unwrap();
    assert_eq!(derivations(&e), 2);
    assert_eq!(
        e.state().decrypt_state(&out).unwrap(),
        (STATE.to_vec(), Status::Satisfied)
    );
    assert_eq!(derivations(&e), 2);
}

#[test]
fn push_over_an_encrypted_state_derives_twice() {
    let stored = encryption("new", None)
        .state()
        .encrypt_state(STATE)
        .unwrap();
    let e = encryption("new", None);
    // state push: read the stored state, then a verified encrypt of the next one
    e.state().decrypt_state(&stored).unwrap();
    e.state()
        .encrypt_verified(NEXT, PayloadKind::State)
        .unwrap();
    assert_eq!(derivations(&e), 2);
}

#[test]
fn distinct_salts_each_derive_once() {
    let files: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            encryption("old", None)
                .state()
                .encrypt_state(STATE)
                .unwrap()
        })
        .collect();
    let e = encryption("new", Some("old"));
    for f in files.iter().chain(files.iter()) {
        e.state().decrypt_state(f).unwrap();
    }
    assert_eq!(derivations(&e), 3, "three salts read twice each");
}
