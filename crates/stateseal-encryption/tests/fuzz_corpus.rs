//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) through the same entry points the fuzz
//! targets use, so every CI run checks that none of those inputs panics.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Replays `target`'s corpus (at least `min` inputs) through `entry`: none may panic.
fn replays(target: &str, min: usize, entry: fn(&[u8])) {
    let inputs = corpus(target);
    assert!(inputs.len() >= min, "the {target} corpus is not empty");
    for (name, data) in inputs {
        let r = std::panic::catch_unwind(|| entry(&data));
        assert!(r.is_ok(), "{name} panicked");
    }
}

#[test]
fn envelope_corpus_replays_without_panics() {
    replays("envelope", 10, stateseal_encryption::fuzzing::envelope);
}

#[test]
fn config_corpus_replays_without_panics() {
    replays("config", 5, stateseal_encryption::fuzzing::config);
}

#[test]
fn byte_size_corpus_replays_without_panics() {
    replays("byte_size", 10, stateseal_encryption::fuzzing::byte_size);
}
