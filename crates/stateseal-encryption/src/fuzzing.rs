//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay test, so both
//! exercise exactly the same code. Each must never panic, whatever the input. (`byte_size` fuzzes
//! `stateseal_core::size`, the CLI's `--max-input-size`: the fuzz crate reaches the core
//! through this crate.)

use crate::config::eval::StaticEvaluator;
use crate::config::EncryptionConfig;
use crate::envelope::{Envelope, Header};
use crate::registry::Registry;
use crate::targets::Encryption;

const LITERAL: &str = "method \"aes_gcm\" \"m\" {\n keys = { encryption_key = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16], decryption_key = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16] }\n}\nmethod \"unencrypted\" \"u\" {}\nstate {\n method = method.aes_gcm.m\n fallback { method = method.unencrypted.u }\n}\nplan {\n method = method.aes_gcm.m\n fallback { method = method.unencrypted.u }\n}\n";

/// The envelope parser, the header parser, the writer (parse ∘ write = id) and the decrypt
/// decision tree on arbitrary bytes.
pub fn envelope(data: &[u8]) {
    if let Ok(env) = Envelope::parse(data) {
        let again = Envelope::parse(&env.to_bytes()).expect("what we write parses");
        assert_eq!(again, env, "parse(write(x)) == x");
        assert!(
            Header::parse(data).is_ok(),
            "header parse agrees with full parse"
        );
    }
    let _ = Header::parse(data);
    // The in-place parse agrees with the copying one and leaves rejected bytes untouched.
    let mut buf = data.to_vec();
    match (Envelope::parse_in_place(&mut buf), Envelope::parse(data)) {
        (Ok((env, at)), Ok(full)) => {
            assert_eq!(&buf[at], &full.encrypted_data[..], "in-place ciphertext");
            assert_eq!(env.meta, full.meta);
        }
        (Err(_), Err(_)) => assert_eq!(buf, data, "rejected bytes untouched"),
        (a, b) => panic!("in-place and copying parses disagree: {a:?} vs {b:?}"),
    }
    thread_local! {
        static ENC: Encryption = {
            let cfg = EncryptionConfig::parse_body_str("fuzz.hcl", LITERAL).expect("valid");
            Encryption::new(cfg, StaticEvaluator::default(), Registry::default()).expect("valid")
        };
    }
    ENC.with(|e| {
        let _ = e.state().decrypt_state(data);
        let _ = e.plan().decrypt_plan(data);
    });
}

/// The configuration parser (HCL or JSON, picked like `TF_ENCRYPTION`), static validation and
/// building with placeholder keys (which never calls a key service).
pub fn config(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = EncryptionConfig::parse_body_str("fuzz.hcl", src) {
        let merged = cfg.clone().merge(cfg);
        if let Ok(enc) = Encryption::new(merged, StaticEvaluator::default(), Registry::default()) {
            let _ = enc.check_buildable();
        }
    }
}

/// The byte-size parser behind `--max-input-size` and the capped reader it drives
/// (`stateseal_core::size`): sizes are positive, what is formatted parses back to the same size,
/// and reading with a limit (the first byte) keeps at most limit + 1 bytes and fails exactly
/// when the input is longer than the limit.
pub fn byte_size(data: &[u8]) {
    use stateseal_core::size::{format_size, parse_size, read_capped, CappedError};
    if let Ok(Ok(n)) = std::str::from_utf8(data).map(parse_size) {
        assert!(n > 0, "a size is at least one byte");
        assert_eq!(parse_size(&format_size(n)), Ok(n), "parse(format(n)) == n");
    }
    if let Some((&limit, mut rest)) = data.split_first() {
        let (limit, len) = (u64::from(limit), rest.len() as u64);
        let mut buf = Vec::new();
        match read_capped(&mut rest, &mut buf, limit) {
            Ok(()) => assert!(len <= limit && buf.len() as u64 == len),
            Err(CappedError::TooLarge(t)) => {
                assert!(len > limit && buf.len() as u64 == limit + 1 && t.limit == limit)
            }
            Err(CappedError::Io(e)) => panic!("reading a slice failed: {e}"),
        }
    }
}
