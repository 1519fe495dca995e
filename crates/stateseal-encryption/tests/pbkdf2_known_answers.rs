//! Known-answer tests of the `pbkdf2` key provider, one per hash function, against values
//! computed independently with Python's hashlib (not with our code), so a provider that ignored
//! `hash_function`, `key_length` or `iterations`, on either the encrypt or the decrypt side,
//! would fail here.

use serde_json::json;
use stateseal_encryption::key_provider::pbkdf2::{self, Metadata};
use stateseal_encryption::key_provider::Purpose;
use stateseal_encryption::randomness::with_fixed;

const PASSPHRASE: &str = "known answer passphrase";
const SALT: &[u8] = b"stateseal known-answer salt";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Derives with the provider built from `config`, both ways: encrypting (salt drawn = `SALT`)
/// and decrypting from the metadata the encrypt side wrote. Both must give `expected`.
fn check(config: serde_json::Value, hash: &str, key_length: i64, expected: &str) {
    let p = pbkdf2::build(&config).unwrap();
    let enc = with_fixed(&[SALT], || p.provide(Purpose::Encrypt).unwrap()).unwrap();
    let key = enc.keys.encryption_key.expect("an encryption key");
    assert_eq!(
        key.expose(),
        hex(expected).as_slice(),
        "{hash}: encrypt side"
    );
    let meta = enc.metadata.expect("metadata");
    let parsed: Metadata = serde_json::from_slice(&meta).unwrap();
    assert_eq!(
        parsed,
        Metadata {
            salt: SALT.to_vec(),
            iterations: 200_000,
            hash_function: hash.into(),
            key_length,
        }
    );
    // The decrypt side reads its parameters from the metadata alone: a provider configured
    // with the defaults (sha512, 32 bytes, 600000) must still derive the same key.
    let defaults = pbkdf2::build(&json!({ "passphrase": PASSPHRASE })).unwrap();
    let dec = defaults
        .provide(Purpose::Decrypt {
            stored: Some(&meta),
        })
        .unwrap();
    assert_eq!(
        dec.keys.decryption_key.expect("a decryption key").expose(),
        hex(expected).as_slice(),
        "{hash}: decrypt side"
    );
}

// Expected values: python3 -c "import hashlib; print(hashlib.pbkdf2_hmac('sha256',
//   b'known answer passphrase', b'stateseal known-answer salt', 200000, 48).hex())"
#[test]
fn sha256_known_answer_two_blocks() {
    check(
        json!({"passphrase": PASSPHRASE, "hash_function": "sha256", "iterations": 200000, "key_length": 48, "salt_length": SALT.len()}),
        "sha256",
        48,
        "0000c72c343ee383e6c99f2f772c59f9f20d842aadc8d98107196e641500bc38\
         0fc5426ba87e91e277b08cf85989c204",
    );
}

// Expected: python3 -c "import hashlib; print(hashlib.pbkdf2_hmac('sha512',
//   b'known answer passphrase', b'stateseal known-answer salt', 200000, 16).hex())"
// (sha512 is the default hash: the configuration leaves it out.)
#[test]
fn sha512_known_answer_default_hash() {
    check(
        json!({"passphrase": PASSPHRASE, "iterations": "200000", "key_length": 16, "salt_length": SALT.len()}),
        "sha512",
        16,
        "4ab5fa134412957a375a8d8b798b151f",
    );
}

#[test]
fn fixed_draws_must_match_what_the_code_draws() {
    let p = pbkdf2::build(&json!({"passphrase": PASSPHRASE, "salt_length": 8})).unwrap();
    let err = with_fixed(&[SALT], || p.provide(Purpose::Encrypt).err().unwrap()).unwrap();
    assert!(err.to_string().contains("drew 8 bytes"), "{err}");
    assert!(with_fixed(&[SALT, SALT], || ()).is_err(), "unused draws");
}
