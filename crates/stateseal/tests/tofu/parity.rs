//! Configuration parity: the corpus in `testdata/tofu-parity/` (encryption configurations, valid
//! and invalid, HCL and JSON, `TF_ENCRYPTION` merges, method-reference forms, duplicate metadata
//! keys, blank values) run through every pinned `tofu` (`tofu init -backend=false`, then `tofu
//! plan`, which is where OpenTofu builds the key providers and checks `enforced`) and through
//! `stateseal validate`. Both must do what the manifest says; where they differ, the manifest
//! names a difference that the README's "Compatibility notes" state.
//!
//! One test drives the whole corpus on a few threads (it holds one heavy permit), so the corpus
//! costs one test's permit rather than one per entry.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use stateseal_testkit::tofu::version_key;
use stateseal_testkit::{repo_root, Tofu};

/// The kept differences a manifest row may name, and the README text that states each.
const KEPT: [(&str, &str); 4] = [
    (
        "quoted-method-reference",
        "quoted strings are accepted as target `method` references",
    ),
    (
        "newer-release",
        "configuration language of the newest pinned OpenTofu",
    ),
    ("encryption-context", "aws_kms `encryption_context`"),
    ("endpoints-kms", "`endpoints { kms }` is accepted"),
];

/// One manifest row.
struct Entry {
    name: String,
    /// `(major.minor, accepted)` for each release column.
    tofu: Vec<(String, bool)>,
    ours: bool,
    kept: Option<String>,
}

fn verdict(word: &str, row: &str) -> bool {
    match word {
        "ok" => true,
        "err" => false,
        other => panic!("manifest row {row:?}: {other:?} is neither ok nor err"),
    }
}

fn manifest(corpus: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(corpus.join("MANIFEST")).unwrap();
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        (header[0], &header[header.len() - 2..]),
        ("entry", &["stateseal", "kept"][..])
    );
    let releases = &header[1..header.len() - 2];
    lines
        .map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            assert!(
                cols.len() == releases.len() + 2 || cols.len() == releases.len() + 3,
                "manifest row {row:?}"
            );
            Entry {
                name: cols[0].to_string(),
                tofu: releases
                    .iter()
                    .zip(&cols[1..=releases.len()])
                    .map(|(r, v)| (r.to_string(), verdict(v, row)))
                    .collect(),
                ours: verdict(cols[releases.len() + 1], row),
                kept: cols.get(releases.len() + 2).map(|s| s.to_string()),
            }
        })
        .collect()
}

/// A fresh copy of the entry's files, and its `TF_ENCRYPTION` (from `TF_ENCRYPTION.env`).
fn copy(entry: &Path) -> (tempfile::TempDir, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = None;
    for f in std::fs::read_dir(entry).unwrap() {
        let f = f.unwrap().path();
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        if name == "TF_ENCRYPTION.env" {
            env = Some(std::fs::read_to_string(&f).unwrap());
        } else {
            std::fs::copy(&f, dir.path().join(name)).unwrap();
        }
    }
    (dir, env)
}

/// The environment for both sides: no AWS endpoint that answers (no entry may reach one).
const ENV: [(&str, &str); 2] = [
    ("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:1"),
    ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"),
];

/// Whether `tofu` accepts the entry: `init -backend=false` and `plan` succeed. Returns the
/// diagnostics too, for the failure message.
fn tofu_accepts(tofu: &Tofu, entry: &Path) -> (bool, String) {
    let (dir, env) = copy(entry);
    for args in [&["init", "-backend=false"][..], &["plan"][..]] {
        let mut c = tofu.command(dir.path(), args);
        c.envs(ENV);
        if let Some(e) = &env {
            c.env("TF_ENCRYPTION", e);
        }
        let out = c.output().expect("run tofu");
        if !out.status.success() {
            return (false, super::plain_text(&out.stderr));
        }
    }
    (true, String::new())
}

/// Whether `stateseal validate` accepts the entry, and its diagnostics.
fn stateseal_accepts(entry: &Path) -> (bool, String) {
    let (dir, env) = copy(entry);
    let mut vars: Vec<(&str, &str)> = ENV.to_vec();
    if let Some(e) = &env {
        vars.push(("TF_ENCRYPTION", e));
    }
    let r = super::stateseal(dir.path(), &vars, &["validate"]);
    (r.code == 0, r.stderr)
}

#[test]
fn tofu_and_stateseal_validate_agree_on_the_configuration_corpus() {
    let tofus = Tofu::all("tofu_and_stateseal_validate_agree_on_the_configuration_corpus");
    if tofus.is_empty() {
        return;
    }
    let corpus: PathBuf = repo_root().join("testdata/tofu-parity");
    let entries = manifest(&corpus);
    assert!(
        entries.len() >= 40,
        "the corpus has {} entries",
        entries.len()
    );
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let on_disk = std::fs::read_dir(&corpus)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(
        on_disk,
        entries.len(),
        "every corpus directory has a manifest row"
    );

    // (entry, release) pairs, and one stateseal run per entry, on a few threads.
    let release = |t: &Tofu| {
        let k = version_key(&t.version);
        format!("{}.{}", k[0], k[1])
    };
    let mut jobs: Vec<(usize, Option<&Tofu>)> = Vec::new();
    for i in 0..entries.len() {
        jobs.push((i, None));
        jobs.extend(tofus.iter().map(|t| (i, Some(t))));
    }
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                let Some(&(i, tofu)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let e = &entries[i];
                let dir = corpus.join(&e.name);
                assert!(dir.is_dir(), "{} is missing", dir.display());
                let (who, want, (got, why)) = match tofu {
                    None => ("stateseal".to_string(), e.ours, stateseal_accepts(&dir)),
                    Some(t) => {
                        let r = release(t);
                        let want = e
                            .tofu
                            .iter()
                            .find(|(v, _)| *v == r)
                            .unwrap_or_else(|| {
                                panic!("the manifest has no column for tofu {r}: add one")
                            })
                            .1;
                        (format!("tofu {}", t.version), want, tofu_accepts(t, &dir))
                    }
                };
                if got != want {
                    failures.lock().unwrap().push(format!(
                        "{}: {who} {} (manifest: {}): {why}",
                        e.name,
                        if got { "accepts" } else { "rejects" },
                        if want { "ok" } else { "err" },
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every difference from a tested release is a kept one that the README states.
    for e in &entries {
        let differs = e
            .tofu
            .iter()
            .filter(|(v, _)| tofus.iter().any(|t| release(t) == *v))
            .any(|(_, ok)| *ok != e.ours);
        match (&e.kept, differs) {
            (None, false) => {}
            (None, true) => panic!(
                "{}: stateseal differs from tofu, and no kept difference is named",
                e.name
            ),
            (Some(k), _) => {
                let (_, text) = KEPT
                    .iter()
                    .find(|(name, _)| name == k)
                    .unwrap_or_else(|| panic!("{}: unknown kept difference {k:?}", e.name));
                assert!(readme.contains(text), "README does not state {k}: {text:?}");
                assert!(
                    e.tofu.iter().any(|(_, ok)| *ok != e.ours),
                    "{}: names {k} but agrees with every release",
                    e.name
                );
            }
        }
    }
}
