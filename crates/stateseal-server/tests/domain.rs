//! The rule "no `StatusCode` outside the server's edge": the domain modules (the state
//! operations, their errors, the storage and at-rest encryption) never name HTTP statuses,
//! answers, axum, or the whole `App`; the edge (protocol, API, console, `reply.rs`) maps them.

/// The server's domain modules, relative to `src/`.
const DOMAIN: [&str; 5] = [
    "states.rs",
    "error.rs",
    "storage.rs",
    "at_rest.rs",
    "data_dir.rs",
];

/// What only the edge may name.
const EDGE_ONLY: [&str; 5] = ["StatusCode", "Reply", "axum", "crate::App", "IntoResponse"];

#[test]
fn the_domain_modules_never_name_http() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for file in DOMAIN {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in EDGE_ONLY {
                assert!(
                    !code.contains(word),
                    "src/{file}:{}: names {word}, which belongs to the edge: {line}",
                    n + 1
                );
            }
        }
    }
}

#[test]
fn one_table_maps_server_errors_to_statuses() {
    // Only reply.rs chooses statuses for ServerError; the console and the protocol ask it.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut choosers = Vec::new();
    for entry in walk(&src) {
        let text = std::fs::read_to_string(&entry).unwrap();
        if text.contains("fn status(&self) -> StatusCode") {
            choosers.push(entry.strip_prefix(&src).unwrap().display().to_string());
        }
    }
    assert_eq!(choosers, ["reply.rs"]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}
