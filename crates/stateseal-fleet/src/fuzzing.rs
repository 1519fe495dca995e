//! The entry point of the `recovery_metadata` fuzz target (`fuzz/`), shared with the corpus
//! replay test below so both exercise the same code: everything that reads bytes the recovery
//! path did not write itself — a stored `external_data` layout, and a whole state envelope as
//! `dr drill` checks it — must never panic, whatever the input.

use crate::{drill, recovery};

/// A fixed identity, public on purpose: it guards nothing. The corpus seed `tofu_envelope.json`
/// was written by real `tofu` through `stateseal keyprovider --recipient` of this identity, so
/// the fuzzer reaches the decryption path too.
const IDENTITY: &str = "AGE-SECRET-KEY-1LW9F8752RUHFTZYNF89N50MZ40SJQR03H3SM4UEGFMMEG9NC9F3QH4YUJ5";

pub fn recovery_metadata(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(layout) = recovery::ExternalData::from_value(&v) {
            let _ = layout.has_recovery_recipient();
        }
    }
    let id: age::x25519::Identity = IDENTITY.parse().expect("a valid identity");
    let _ = drill::check(data, std::slice::from_ref(&id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_seeds_never_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/recovery_metadata");
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).expect("the recovery_metadata corpus") {
            recovery_metadata(&std::fs::read(entry.unwrap().path()).unwrap());
            seeds += 1;
        }
        assert!(seeds >= 5, "only {seeds} seeds in {}", dir.display());
    }
}
