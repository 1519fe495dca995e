//! Key-provider failures are typed: an unreachable key service is `Unreachable`, a refusal is
//! `Denied`, unreadable stored metadata is `BadMetadata`, and none of them is a configuration
//! error. Callers (the CLI's fix, the fleet's retry) decide by that kind.
#![cfg(feature = "aws-kms")]

use std::collections::BTreeMap;

use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::EncryptionConfig;
use stateseal_encryption::envelope::{Envelope, StateFields, VERSION};
use stateseal_encryption::key_provider::ProviderErrorKind;
use stateseal_encryption::{Encryption, Error, Registry};

fn encryption(body: &str) -> Encryption {
    let config = EncryptionConfig::parse_body_str("test.hcl", body).unwrap();
    Encryption::new(config, StaticEvaluator::default(), Registry::default()).unwrap()
}

fn envelope(key: &str, meta: &str) -> Vec<u8> {
    let mut m = BTreeMap::new();
    m.insert(key.to_string(), meta.as_bytes().to_vec());
    Envelope {
        state_fields: Some(StateFields {
            serial: Some(1),
            lineage: "l".into(),
        }),
        meta: m,
        encrypted_data: vec![0; 40],
        version: VERSION.into(),
    }
    .to_bytes()
}

fn kind_of(e: Error) -> ProviderErrorKind {
    match e {
        Error::KeyProvider { kind, .. } => kind,
        other => panic!("expected a key-provider error, got {other:?}"),
    }
}

#[test]
fn an_unreachable_kms_is_unreachable_not_a_configuration_error() {
    // Nothing listens on port 9 (discard) of the loopback address.
    let e = encryption(
        r#"
key_provider "aws_kms" "k" {
  kms_key_id = "alias/x"
  key_spec   = "AES_256"
  region     = "us-east-1"
  access_key = "a"
  secret_key = "b"
  max_retries = 1
  skip_metadata_api_check = true
  endpoints { kms = "http://127.0.0.1:9" }
}
method "aes_gcm" "m" { keys = key_provider.aws_kms.k }
state { method = method.aes_gcm.m }
"#,
    );
    let data = envelope("key_provider.aws_kms.k", r#"{"ciphertext_blob":"AAAA"}"#);
    let err = e.state().decrypt_state(&data).unwrap_err();
    assert!(err.to_string().contains("key_provider.aws_kms.k"), "{err}");
    assert_eq!(kind_of(err), ProviderErrorKind::Unreachable);
}

#[test]
fn unreadable_stored_metadata_is_bad_metadata() {
    let e = encryption(
        r#"
key_provider "pbkdf2" "p" { passphrase = "a-long-enough-passphrase" }
method "aes_gcm" "m" { keys = key_provider.pbkdf2.p }
state { method = method.aes_gcm.m }
"#,
    );
    let data = envelope("key_provider.pbkdf2.p", r#"{"salt": 7}"#);
    let err = e.state().decrypt_state(&data).unwrap_err();
    assert_eq!(kind_of(err), ProviderErrorKind::BadMetadata);
}
