//! In-process timings for `scripts/bench/encryption.py`, which compares them with baselines
//! measured in the same run. Prints two numbers, one per line:
//! 1. the best time in seconds of one PBKDF2-HMAC-SHA512 derivation (600,000 iterations, 32-byte
//!    key and salt: the pbkdf2 key provider's defaults);
//! 2. the best throughput in bytes/s of the aes_gcm method decrypting SIZE_MIB (default 64) MiB.
use std::num::NonZeroU32;
use std::time::Instant;

use stateseal_encryption::key_provider::pbkdf2::{derive, Hash};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let size_mib: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let iterations = NonZeroU32::new(600_000).unwrap();
    let mut best = f64::MAX;
    for i in 0..runs {
        let salt = [i as u8; 32];
        let t = Instant::now();
        let key = derive(
            Hash::Sha512,
            b"correct-horse-battery-staple",
            &salt,
            iterations,
            32,
        );
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(key.len(), 32);
    }
    println!("{best:.6}");

    let key: Vec<u8> = (1..=32).collect();
    let method = (stateseal_encryption::Registry::default()
        .method("aes_gcm")
        .unwrap())(&serde_json::json!({
        "keys": {"encryption_key": key, "decryption_key": key}
    }))
    .unwrap();
    let plain = vec![0x5au8; size_mib * 1024 * 1024];
    let ct = method.encrypt(&plain).unwrap();
    let mut best = f64::MAX;
    for _ in 0..runs {
        let input = ct.clone();
        let t = Instant::now();
        let out = method.decrypt(input).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(out.len(), plain.len());
    }
    println!("{:.0}", plain.len() as f64 / best);
}
