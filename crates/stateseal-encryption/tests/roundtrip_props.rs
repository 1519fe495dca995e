//! Property tests: round trips of the envelope, of states and plans through targets, and of
//! Go-compatible string escaping; decryption never panics on arbitrary input.

use std::collections::BTreeMap;

use proptest::prelude::*;
use stateseal_core::gojson;
use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::EncryptionConfig;
use stateseal_encryption::envelope::{Envelope, StateFields};
use stateseal_encryption::{Encryption, Registry, Status};

fn literal_config(key_len: usize, aad: &[u8]) -> Encryption {
    let key: Vec<String> = (0..key_len).map(|i| (i * 7 % 256).to_string()).collect();
    let key = format!("[{}]", key.join(","));
    let aad: Vec<String> = aad.iter().map(|b| b.to_string()).collect();
    let hcl = format!(
        "method \"aes_gcm\" \"m\" {{\n keys = {{ encryption_key = {key}, decryption_key = {key} }}\n aad = [{}]\n}}\nstate {{ method = method.aes_gcm.m }}\nplan {{ method = method.aes_gcm.m }}\n",
        aad.join(",")
    );
    let cfg = EncryptionConfig::parse_body_str("prop.hcl", &hcl).unwrap();
    Encryption::new(cfg, StaticEvaluator::default(), Registry::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn envelope_parse_inverts_write(
        serial in proptest::option::of(any::<i64>()),
        lineage in any::<String>(),
        state in any::<bool>(),
        meta in proptest::collection::btree_map(any::<String>(), proptest::collection::vec(any::<u8>(), 0..64), 0..4),
        data in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let env = Envelope { state_fields: state.then_some(StateFields { serial, lineage }), meta, encrypted_data: data, version: "v0".into() };
        let bytes = env.to_bytes();
        prop_assert_eq!(Envelope::parse(&bytes).unwrap(), env);
    }

    #[test]
    fn state_round_trips_through_every_key_size(
        key_len in prop::sample::select(vec![16usize, 24, 32]),
        aad in proptest::collection::vec(any::<u8>(), 0..16),
        serial in 0u64..u64::MAX / 2,
        lineage in "[a-z0-9<>&\u{2028}é-]{0,40}",
        body in any::<String>(),
    ) {
        let e = literal_config(key_len, &aad);
        let state = serde_json::json!({"version": 4, "terraform_version": "1.10.0", "serial": serial, "lineage": lineage, "outputs": {"x": {"value": body, "type": "string"}}});
        let plain = serde_json::to_vec_pretty(&state).unwrap();
        let enc = e.state().encrypt_state(&plain).unwrap();
        let env = Envelope::parse(&enc).unwrap();
        prop_assert_eq!(env.state_fields.clone().unwrap().lineage, lineage);
        prop_assert_eq!(e.state().decrypt_state(&enc).unwrap(), (plain, Status::Satisfied));
    }

    #[test]
    fn plan_round_trips(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let e = literal_config(32, &[]);
        let mut plan = b"PK".to_vec();
        plan.extend(body);
        let enc = e.plan().encrypt_plan(&plan).unwrap();
        prop_assert!(Envelope::parse(&enc).unwrap().state_fields.is_none());
        prop_assert_eq!(e.plan().decrypt_plan(&enc).unwrap(), (plan, Status::Satisfied));
    }

    #[test]
    fn decrypt_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        stateseal_encryption::fuzzing::envelope(&data);
    }

    #[test]
    fn tampering_any_ciphertext_byte_is_detected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let e = literal_config(32, b"x");
        let enc = e.state().encrypt_state(br#"{"terraform_version":"1.9.0","serial":1,"lineage":"l"}"#).unwrap();
        let mut env = Envelope::parse(&enc).unwrap();
        let i = pos.index(env.encrypted_data.len());
        env.encrypted_data[i] ^= 1 << bit;
        prop_assert!(e.state().decrypt_state(&env.to_bytes()).is_err());
    }

    #[test]
    fn go_string_escaping_is_valid_json(s in any::<String>()) {
        let enc = gojson::string(&s);
        prop_assert_eq!(serde_json::from_str::<String>(&enc).unwrap(), s);
        prop_assert!(!enc.contains('<') && !enc.contains('>') && !enc.contains('&'));
    }
}

#[test]
fn meta_map_keys_are_written_sorted() {
    let mut meta = BTreeMap::new();
    meta.insert("b".to_string(), vec![1]);
    meta.insert("a".to_string(), vec![2]);
    let env = Envelope {
        state_fields: None,
        meta,
        encrypted_data: vec![],
        version: "v0".into(),
    };
    assert_eq!(
        env.to_bytes(),
        br#"{"meta":{"a":"Ag==","b":"AQ=="},"encrypted_data":"","encryption_version":"v0"}"#
    );
}
