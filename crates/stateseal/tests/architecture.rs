//! The rules of docs/ARCHITECTURE.md ("Rules the tests keep"), checked over the sources of the
//! whole workspace. One test per rule; each fails naming the file, line and what broke it, and
//! the last test proves that every check sees what it looks for. They read source text only (no
//! peers, no build of anything), so they run in milliseconds.

use std::path::{Path, PathBuf};

/// The library crates: every `pub fn` in them is reachable from another crate.
const LIBRARIES: [&str; 6] = [
    "stateseal-core",
    "stateseal-encryption",
    "stateseal-store",
    "stateseal-aws",
    "stateseal-fleet",
    "stateseal-server",
];

/// The server's domain modules (relative to its `src/`): the state operations, their errors, the
/// storage and at-rest encryption. They speak states; the edge speaks HTTP.
const SERVER_DOMAIN: [&str; 6] = [
    "states.rs",
    "error.rs",
    "storage.rs",
    "at_rest.rs",
    "data_dir.rs",
    "s3.rs",
];

/// What only the server's edge (protocol, API, console, `reply.rs`) may name.
const EDGE_ONLY: [&str; 5] = ["StatusCode", "Reply", "axum", "crate::App", "IntoResponse"];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `.rs` files under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

/// The sources of the libraries and the CLI (`src/` only: tests may use anything).
fn product_sources() -> Vec<PathBuf> {
    LIBRARIES
        .iter()
        .chain(&["stateseal"])
        .flat_map(|c| rust_files(&crates_dir().join(c).join("src")))
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Each line's code, without its `//` comment (doc comments included), numbered from 1, up to
/// the file's unit tests.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .enumerate()
        .map(|(n, l)| (n + 1, l.split("//").next().unwrap_or_default()))
}

/// Where `word` appears in code (not in comments) in `files`, as `file:line: text`.
fn uses(files: &[PathBuf], word: &str) -> Vec<String> {
    let base = crates_dir();
    let mut found = Vec::new();
    for f in files {
        let text = read(f);
        for (n, code) in code_lines(&text) {
            if code.contains(word) {
                let shown = f.strip_prefix(&base).unwrap_or(f).display().to_string();
                found.push(format!("{shown}:{n}: {}", code.trim()));
            }
        }
    }
    found
}

/// The names of `pub fn` / `pub async fn` whose signature (up to the body's `{`) returns
/// `Result<…, String>`, and of `pub type` aliases whose `Result` does.
fn string_errors(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in source.match_indices("pub ") {
        let tail = &source[at + 4..];
        let tail = tail.strip_prefix("async ").unwrap_or(tail);
        let (name_and_sig, end) = if let Some(sig) = tail.strip_prefix("fn ") {
            (sig, '{')
        } else if let Some(sig) = tail.strip_prefix("type ") {
            (sig, ';')
        } else {
            continue;
        };
        let signature = &name_and_sig[..name_and_sig.find(end).unwrap_or(name_and_sig.len())];
        let compact: String = signature.split_whitespace().collect();
        // The return type: after the last arrow (a parameter can be a closure with its own).
        let returns = compact.rsplit("->").next().unwrap_or_default();
        if returns.contains("Result<") && returns.contains(",String>") {
            let name = compact.split(['(', '<', '=']).next().unwrap_or_default();
            found.push(name.to_string());
        }
    }
    found
}

#[test]
fn no_status_code_in_the_server_domain() {
    let src = crates_dir().join("stateseal-server/src");
    let files: Vec<PathBuf> = SERVER_DOMAIN.iter().map(|f| src.join(f)).collect();
    for word in EDGE_ONLY {
        let found = uses(&files, word);
        assert!(
            found.is_empty(),
            "the server's domain names {word}, which belongs to the edge:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn one_table_maps_server_errors_to_statuses() {
    // Only reply.rs chooses statuses for ServerError; the console and the protocol ask it.
    let src = crates_dir().join("stateseal-server/src");
    let choosers: Vec<String> = rust_files(&src)
        .into_iter()
        .filter(|f| read(f).contains("fn status(&self) -> StatusCode"))
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert_eq!(choosers, ["reply.rs"]);
}

#[test]
fn no_s3_submodule_is_used_outside_the_store() {
    let s3 = crates_dir().join("stateseal-store/src/s3");
    let submodules: Vec<String> = rust_files(&s3)
        .iter()
        .filter_map(|f| f.file_stem()?.to_str().map(str::to_string))
        .filter(|m| m != "mod")
        .collect();
    assert!(submodules.len() >= 5, "{submodules:?}");
    // The submodules are private: the store's API is what s3/mod.rs re-exports.
    let declared = uses(&[s3.join("mod.rs")], "pub mod ");
    assert!(
        declared.is_empty(),
        "public S3 submodules:\n{}",
        declared.join("\n")
    );
    // And nothing outside the store reaches into one (by path or by `s3::{…}`).
    let outside: Vec<PathBuf> = product_sources()
        .into_iter()
        .chain(LIBRARIES.iter().chain(&["stateseal"]).flat_map(|c| {
            let tests = crates_dir().join(c).join("tests");
            if tests.is_dir() {
                rust_files(&tests)
            } else {
                Vec::new()
            }
        }))
        .filter(|f| !f.starts_with(crates_dir().join("stateseal-store")))
        .collect();
    for m in &submodules {
        let found = uses(&outside, &format!("s3::{m}"));
        assert!(
            found.is_empty(),
            "the store's S3 submodule {m} is used outside the store:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn no_public_function_returns_a_string_error() {
    let base = crates_dir();
    let offenders: Vec<String> = LIBRARIES
        .iter()
        .flat_map(|c| rust_files(&base.join(c).join("src")))
        .flat_map(|f| {
            let text = read(&f);
            let shown = f.strip_prefix(&base).unwrap_or(&f).display().to_string();
            string_errors(&text)
                .into_iter()
                .map(move |name| format!("{shown}: {name}"))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "public functions returning Result<_, String> (give them an error type):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn one_way_to_seal() {
    // Outside the encryption crate, everything that seals goes through `encrypt_verified`, which
    // proves the envelope decrypts back before anyone stores it.
    let outside: Vec<PathBuf> = product_sources()
        .into_iter()
        .filter(|f| !f.starts_with(crates_dir().join("stateseal-encryption")))
        .collect();
    for unverified in [".encrypt_state(", ".encrypt_plan("] {
        let found = uses(&outside, unverified);
        assert!(
            found.is_empty(),
            "sealing without the round trip ({unverified}…); use encrypt_verified:\n{}",
            found.join("\n")
        );
    }
    assert!(!uses(&outside, ".encrypt_verified(").is_empty());
}

#[test]
fn one_word_one_meaning() {
    // Each of these words names one thing, defined in one file.
    let base = crates_dir();
    let sources = product_sources();
    for (definition, home, meaning) in [
        (
            "fn classify",
            "stateseal-aws/src/error.rs",
            "the kind of an AWS SDK error",
        ),
        (
            "fn describe",
            "stateseal-encryption/src/describe.rs",
            "what a payload says about its own encryption",
        ),
        (
            "fn check_import",
            "stateseal-core/src/successor.rs",
            "OpenTofu's rule for replacing a stored state",
        ),
        (
            "fn check_update",
            "stateseal-core/src/successor.rs",
            "the rule for a backend write",
        ),
    ] {
        let places: Vec<String> = [format!("{definition}("), format!("{definition}<")]
            .iter()
            .flat_map(|d| uses(&sources, d))
            .map(|p| p.split(':').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            places,
            [home],
            "`{definition}` means {meaning}; define that in {home} only, and name anything else \
             otherwise"
        );
    }
    // The words the review retired.
    for retired in ["check_successor", "StorageError"] {
        let found = uses(&sources, retired);
        assert!(
            found.is_empty(),
            "{retired} is retired:\n{}",
            found.join("\n")
        );
    }
    assert!(base.join("stateseal-server/src/ui/data.rs").is_file());
}

#[test]
fn the_checks_see_what_they_look_for() {
    let bad = "pub async fn sdk_config(\n    s: &AwsSettings,\n) -> Result<SdkConfig, String> {\n}";
    assert_eq!(string_errors(bad), ["sdk_config"]);
    let alias =
        "pub type Factory =\n    Arc<dyn Fn(&Value) -> Result<Box<dyn KeyProvider>, String>>;";
    assert_eq!(string_errors(alias), ["Factory"]);
    let ok = "pub fn region(&self) -> Result<String, Error> {}\npub(crate) fn x() -> Result<(), String> {}\npub fn f(m: BTreeMap<String, String>) -> Result<(), Vec<String>> {}";
    assert!(string_errors(ok).is_empty());
    let text =
        "use axum::Json; // StatusCode in a comment\n/// Reply in a doc\n#[cfg(test)]\nStatusCode";
    let lines: Vec<(usize, &str)> = code_lines(text).collect();
    assert_eq!(lines, [(1, "use axum::Json; "), (2, "")]);
}
