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

#[test]
fn envelope_corpus_replays_without_panics() {
    let inputs = corpus("envelope");
    assert!(inputs.len() >= 10, "the corpus is not empty");
    for (name, data) in inputs {
        let r = std::panic::catch_unwind(|| stateseal_encryption::fuzzing::envelope(&data));
        assert!(r.is_ok(), "{name} panicked");
    }
}

#[test]
fn config_corpus_replays_without_panics() {
    let inputs = corpus("config");
    assert!(inputs.len() >= 5, "the corpus is not empty");
    for (name, data) in inputs {
        let r = std::panic::catch_unwind(|| stateseal_encryption::fuzzing::config(&data));
        assert!(r.is_ok(), "{name} panicked");
    }
}

#[test]
fn byte_size_corpus_replays_without_panics() {
    let inputs = corpus("byte_size");
    assert!(inputs.len() >= 10, "the corpus is not empty");
    for (name, data) in inputs {
        let r = std::panic::catch_unwind(|| stateseal_encryption::fuzzing::byte_size(&data));
        assert!(r.is_ok(), "{name} panicked");
    }
}
