//! `stateseal serve` end to end: the real binary's flags, banner, refusals, hash-password and
//! graceful shutdown on SIGTERM. (The protocol itself is tested in stateseal-server.)

use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stateseal"));
    c.env_remove("TF_ENCRYPTION").stdin(Stdio::null());
    c
}

#[test]
fn refuses_a_non_loopback_address_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = bin()
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0") && err.contains("--insecure-no-auth"),
        "{err}"
    );
    assert!(!data.exists(), "nothing was created");
}

#[test]
fn a_bad_config_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.hcl"), "max_body_bytes = \"big\"\n").unwrap();
    let out = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path().join("server.hcl"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_body_bytes") && err.contains("server.hcl"),
        "{err}"
    );
}

#[test]
fn hash_password_prints_an_argon2id_hash() {
    let mut child = bin()
        .args(["serve", "hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.trim().starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
}

#[test]
fn serves_with_a_banner_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut banner = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("body limit") {
            break;
        }
    }
    assert!(banner.contains("states      http://127.0.0.1:"), "{banner}");
    assert!(banner.contains("encryption  OFF. WARNING"), "{banner}");
    assert!(banner.contains("auth        OFF"), "{banner}");
    assert!(dir.path().join("data/states").is_dir());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}
