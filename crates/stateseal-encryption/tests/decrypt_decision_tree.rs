//! OpenTofu's decrypt decision tree (ENCRYPTION-FORMAT.md §5.5, §5.6), one test per branch,
//! through the public API only (`Encryption`, `decrypt_state`): the primary method, a fallback
//! (→ `Status::Migration`), plaintext with and without an `unencrypted` method, `enforced`, and
//! an envelope whose plaintext serial/lineage disagree with the encrypted state.
//!
//! Keys are literal (no pbkdf2) so every branch is cheap; the methods are distinguished by key.

use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::EncryptionConfig;
use stateseal_encryption::envelope::Envelope;
use stateseal_encryption::{Encryption, Error, Passthrough, Registry, Status};

const STATE: &[u8] = br#"{"version":4,"terraform_version":"1.9.0","serial":7,"lineage":"0f3a8d52-1c4e-4b7a-9e2d-6a5b4c3d2e1f","outputs":{},"resources":[]}"#;

/// An `aes_gcm` method named `name` whose 16-byte key is `byte` repeated.
fn aes(name: &str, byte: u8) -> String {
    let k = format!("{:?}", vec![byte; 16]);
    format!("method \"aes_gcm\" \"{name}\" {{\n keys = {{ encryption_key = {k}, decryption_key = {k} }}\n}}\n")
}

fn encryption(hcl: &str) -> Encryption {
    let cfg = EncryptionConfig::parse_body_str("tree.hcl", hcl).unwrap();
    Encryption::new(cfg, StaticEvaluator::default(), Registry::default()).unwrap()
}

/// `state` uses `primary`, then each of `fallbacks` in order.
fn with_chain(methods: &str, primary: &str, fallbacks: &[&str]) -> Encryption {
    let mut target = format!("state {{\n method = {primary}\n");
    for f in fallbacks {
        target.push_str(&format!(" fallback {{\n method = {f}\n"));
    }
    for _ in fallbacks {
        target.push_str(" }\n");
    }
    target.push_str("}\n");
    encryption(&format!("{methods}{target}"))
}

/// An envelope of `STATE` written with the method `aes(_, byte)` alone.
fn written_with(byte: u8) -> Vec<u8> {
    let e = with_chain(&aes("w", byte), "method.aes_gcm.w", &[]);
    e.state().encrypt_state(STATE).unwrap()
}

#[test]
fn primary_reads_its_own_envelope_as_satisfied() {
    let e = with_chain(
        &format!("{}{}", aes("a", 1), aes("b", 2)),
        "method.aes_gcm.a",
        &["method.aes_gcm.b"],
    );
    let env = e.state().encrypt_state(STATE).unwrap();
    assert_ne!(env, STATE);
    assert_eq!(
        e.state().decrypt_state(&env).unwrap(),
        (STATE.to_vec(), Status::Satisfied)
    );
}

#[test]
fn fallback_reads_as_migration() {
    let e = with_chain(
        &format!("{}{}", aes("a", 1), aes("b", 2)),
        "method.aes_gcm.a",
        &["method.aes_gcm.b"],
    );
    assert_eq!(
        e.state().decrypt_state(&written_with(2)).unwrap(),
        (STATE.to_vec(), Status::Migration)
    );
    // neither the primary nor the fallback: every attempt is reported
    match e.state().decrypt_state(&written_with(3)).unwrap_err() {
        Error::DecryptionFailed {
            attempts, no_key, ..
        } => {
            assert_eq!(attempts.len(), 2, "{attempts:?}");
            assert!(!no_key, "keys were there, authentication failed");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn plaintext_through_an_unencrypted_fallback_is_migration() {
    let e = with_chain(
        &format!("{}method \"unencrypted\" \"u\" {{}}\n", aes("a", 1)),
        "method.aes_gcm.a",
        &["method.unencrypted.u"],
    );
    assert_eq!(
        e.state().decrypt_state(STATE).unwrap(),
        (STATE.to_vec(), Status::Migration)
    );
    // and envelopes still go through the encrypted method
    assert_eq!(
        e.state().decrypt_state(&written_with(1)).unwrap().1,
        Status::Satisfied
    );
}

#[test]
fn plaintext_through_an_unencrypted_primary_is_satisfied() {
    let e = with_chain(
        &format!("method \"unencrypted\" \"u\" {{}}\n{}", aes("old", 1)),
        "method.unencrypted.u",
        &["method.aes_gcm.old"],
    );
    assert_eq!(
        e.state().decrypt_state(STATE).unwrap(),
        (STATE.to_vec(), Status::Satisfied)
    );
    // decrypting away: the old envelope is read through the fallback
    assert_eq!(
        e.state().decrypt_state(&written_with(1)).unwrap(),
        (STATE.to_vec(), Status::Migration)
    );
}

#[test]
fn plaintext_without_an_unencrypted_method_is_refused() {
    let e = with_chain(&aes("a", 1), "method.aes_gcm.a", &[]);
    let err = e.state().decrypt_state(STATE).unwrap_err();
    assert!(
        matches!(&err, Error::UnencryptedPayload { target } if target == "state"),
        "{err:?}"
    );
    // something that is neither an envelope nor a state is a different error
    let err = e.state().decrypt_state(br#"{"hello":1}"#).unwrap_err();
    assert!(matches!(err, Error::InvalidPayload { .. }), "{err:?}");
}

#[test]
fn enforced_forbids_the_unencrypted_method_and_plaintext() {
    let cfg = format!(
        "{}method \"unencrypted\" \"u\" {{}}\nstate {{\n enforced = true\n method = method.aes_gcm.a\n fallback {{ method = method.unencrypted.u }}\n}}\n",
        aes("a", 1)
    );
    let err = Encryption::new(
        EncryptionConfig::parse_body_str("tree.hcl", &cfg).unwrap(),
        StaticEvaluator::default(),
        Registry::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("Unencrypted method is forbidden"),
        "{err}"
    );
    let enforced = encryption(&format!(
        "{}state {{\n enforced = true\n method = method.aes_gcm.a\n}}\n",
        aes("a", 1)
    ));
    assert!(matches!(
        enforced.state().decrypt_state(STATE).unwrap_err(),
        Error::UnencryptedPayload { .. }
    ));
    assert_eq!(
        enforced.state().decrypt_state(&written_with(1)).unwrap(),
        (STATE.to_vec(), Status::Satisfied)
    );
}

#[test]
fn envelope_header_must_match_the_encrypted_state() {
    let e = with_chain(&aes("a", 1), "method.aes_gcm.a", &[]);
    let good = Envelope::parse(&written_with(1)).unwrap();
    let fields = good.state_fields.clone().expect("a state envelope");
    assert_eq!(fields.serial, Some(7));

    let mut serial = good.clone();
    serial.state_fields.as_mut().unwrap().serial = Some(8);
    let err = e.state().decrypt_state(&serial.to_bytes()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::PassthroughMismatch(Passthrough::Serial {
                envelope: 8,
                state: 7
            })
        ),
        "{err:?}"
    );
    // OpenTofu's words, byte for byte.
    assert_eq!(
        err.to_string(),
        "invalid state metadata, serial field mismatch 8 vs 7"
    );

    let mut lineage = good.clone();
    lineage.state_fields.as_mut().unwrap().lineage = "another-lineage".into();
    let err = e.state().decrypt_state(&lineage.to_bytes()).unwrap_err();
    assert!(
        matches!(&err, Error::PassthroughMismatch(Passthrough::Lineage { envelope, state }) if envelope == "another-lineage" && state.starts_with("0f3a8d52")),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(
            "invalid state metadata, linage field mismatch another-lineage vs 0f3a8d52"
        ),
        "{err}"
    );

    // the unedited envelope reads fine
    assert_eq!(
        e.state().decrypt_state(&good.to_bytes()).unwrap().1,
        Status::Satisfied
    );
}

#[test]
fn envelope_without_a_state_target_or_with_another_version_is_refused() {
    let none = encryption(&aes("a", 1));
    assert!(matches!(
        none.state().decrypt_state(&written_with(1)).unwrap_err(),
        Error::EncryptedWithoutConfig { .. }
    ));
    let e = with_chain(&aes("a", 1), "method.aes_gcm.a", &[]);
    let mut v1 = Envelope::parse(&written_with(1)).unwrap();
    v1.version = "v1".into();
    assert!(matches!(
        e.state().decrypt_state(&v1.to_bytes()).unwrap_err(),
        Error::UnsupportedVersion(v) if v == "v1"
    ));
}
