//! The house rule "no `Result<_, String>` in a `pub fn` at a crate boundary", checked over the
//! crates that have met it: `stateseal-aws`, `stateseal-fleet` and the store's S3 backend. A
//! public function whose signature returns a string error fails this test with its file and
//! name.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `pub fn` / `pub async fn` signatures (to their body's `{`) returning `Result<…, String>`.
fn string_results(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("pub ") {
        let tail = &rest[at + 4..];
        let tail = tail.strip_prefix("async ").unwrap_or(tail);
        rest = &rest[at + 4..];
        let Some(sig) = tail.strip_prefix("fn ") else {
            continue;
        };
        let signature = &sig[..sig.find('{').unwrap_or(sig.len())];
        let compact: String = signature.split_whitespace().collect();
        if compact.contains("Result<") && compact.contains(",String>") {
            found.push(compact.split('(').next().unwrap_or_default().to_string());
        }
    }
    found
}

#[test]
fn no_public_function_returns_a_string_error() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in [
        "stateseal-aws/src",
        "stateseal-fleet/src",
        "stateseal-store/src/s3",
    ] {
        rust_files(&crates.join(dir), &mut files);
    }
    assert!(files.len() > 20, "the sources were not found: {files:?}");
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            string_results(&text)
                .into_iter()
                .map(move |name| format!("{}: {name}", f.display()))
        })
        .collect();
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn the_check_sees_string_errors_across_lines() {
    let bad = "pub async fn sdk_config(\n    s: &AwsSettings,\n) -> Result<SdkConfig, String> {\n}";
    assert_eq!(string_results(bad), ["sdk_config"]);
    let ok = "pub fn region(&self) -> Result<String, Error> {}\npub(crate) fn x() -> Result<(), String> {}";
    assert!(string_results(ok).is_empty());
}
