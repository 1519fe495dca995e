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
    assert!(
        err.contains("correct the server configuration")
            && !err.contains("encryption configuration"),
        "the fix names the server configuration: {err}"
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

/// A started server: the child, its banner, the rest of its stderr, and its address.
struct Started {
    child: std::process::Child,
    banner: String,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
    addr: String,
}

/// Starts `stateseal [pre…] serve --listen 127.0.0.1:0 --data-dir DATA` and reads its banner.
fn start(pre: &[&str], data: &std::path::Path, env: &[(&str, &str)]) -> Started {
    let mut child = bin()
        .current_dir(stateseal_testkit::repo_root())
        .args(pre)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .envs(env.iter().copied())
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
    let addr = banner
        .split("states      http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in the banner:\n{banner}"))
        .to_string();
    Started {
        child,
        banner,
        lines,
        addr,
    }
}

impl Started {
    /// SIGTERM, then the rest of stderr; asserts a graceful stop.
    fn stop(mut self) -> Vec<String> {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let rest: Vec<String> = self.lines.map(|l| l.unwrap()).collect();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}: {rest:?}");
        rest
    }
}

#[test]
fn serves_with_a_banner_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&[], &dir.path().join("data"), &[]);
    let banner = s.banner.clone();
    assert!(banner.contains("states      http://127.0.0.1:"), "{banner}");
    assert!(
        banner.contains(&format!("console     http://{}/ui", s.addr)),
        "{banner}"
    );
    assert!(banner.contains("encryption  OFF. WARNING"), "{banner}");
    assert!(banner.contains("auth        OFF"), "{banner}");
    assert!(dir.path().join("data/states").is_dir());
    let rest = s.stop();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

/// One HTTP/1.1 request over a plain socket; returns the status code.
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> u16 {
    http_with(addr, method, path, body, "")
}

/// [`http`] with extra header lines (each ending in `\r\n`).
fn http_with(addr: &str, method: &str, path: &str, body: &[u8], headers: &str) -> u16 {
    use std::io::Read as _;
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(body).unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// The README's main command warns about the example's public passphrase, and stops warning
/// when TF_ENCRYPTION supplies another; a version it stored decrypts offline with the documented
/// command, `stateseal --config examples/server/server.hcl decrypt <version file>`.
#[test]
fn the_example_passphrase_is_called_out_and_stored_versions_decrypt_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = ["--config", "examples/server/server.hcl"];
    let s = start(&config, &data, &[]);
    assert!(
        s.banner
            .contains("WARNING     the passphrase is the example's"),
        "{}",
        s.banner
    );
    let state = br#"{"version":4,"terraform_version":"1.9.0","serial":3,"lineage":"offline","outputs":{},"resources":[]}"#;
    assert_eq!(http(&s.addr, "POST", "/state/team-a/app", state), 200);
    s.stop();

    let versions = data.join("states/team-a/app/@/v");
    let stored: Vec<_> = std::fs::read_dir(&versions)
        .unwrap_or_else(|e| panic!("{}: {e}", versions.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let name = stored[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(name.len(), "00000000000000000001.bin".len(), "{name}");
    let raw = std::fs::read(&stored[0]).unwrap();
    assert!(
        String::from_utf8_lossy(&raw).contains("encrypted_data"),
        "stored encrypted at rest"
    );
    let out = bin()
        .current_dir(stateseal_testkit::repo_root())
        .args(config)
        .arg("decrypt")
        .arg(&stored[0])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent: serde_json::Value = serde_json::from_slice(state).unwrap();
    assert_eq!(back["lineage"], sent["lineage"]);
    assert_eq!(back["serial"], sent["serial"]);

    // A real passphrase through TF_ENCRYPTION silences the warning.
    let other = dir.path().join("data2");
    let s = start(
        &config,
        &other,
        &[(
            "TF_ENCRYPTION",
            r#"key_provider "pbkdf2" "server" { passphrase = "a passphrase nobody else has" }"#,
        )],
    );
    assert!(!s.banner.contains("WARNING"), "{}", s.banner);
    s.stop();
}

/// Issue 21: `stateseal serve` encrypts at rest through `stateseal keyprovider` unchanged (the
/// library's `external` provider runs it), and what it stores is recovered by `dr drill` with
/// the identity alone.
#[test]
fn serve_encrypts_at_rest_through_the_recovery_keyprovider() {
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("recovery.txt");
    let keygen = bin()
        .args(["dr", "keygen", "--output"])
        .arg(&id)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let recipient = String::from_utf8(keygen.stdout).unwrap().trim().to_string();
    let config = dir.path().join("server.hcl");
    std::fs::write(
        &config,
        format!(
            "encryption {{\n  key_provider \"external\" \"rk\" {{\n    command = [\"{}\", \"keyprovider\", \"--recipient\", \"{recipient}\"]\n  }}\n  method \"aes_gcm\" \"rk\" {{\n    keys = key_provider.external.rk\n  }}\n  state {{\n    method = method.aes_gcm.rk\n  }}\n}}\n",
            assert_cmd::cargo::cargo_bin("stateseal").display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let s = start(&["--config", config.to_str().unwrap()], &data, &[]);
    let state = br#"{"version":4,"terraform_version":"1.12.6","serial":7,"lineage":"served","outputs":{},"resources":[]}"#;
    assert_eq!(http(&s.addr, "POST", "/state/app", state), 200);
    s.stop();
    let stored: Vec<_> = std::fs::read_dir(data.join("states/app/@/v"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let raw = std::fs::read(&stored[0]).unwrap();
    assert!(String::from_utf8_lossy(&raw).contains("key_provider.external.rk"));
    let drill = bin()
        .args(["dr", "drill", "--json", "--identity"])
        .arg(&id)
        .arg(&stored[0])
        .output()
        .unwrap();
    assert!(
        drill.status.success(),
        "{}",
        String::from_utf8_lossy(&drill.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&drill.stdout).unwrap();
    assert_eq!(report["states"][0]["outcome"], "recovered", "{report:#}");
    assert_eq!(report["states"][0]["serial"], 7);
}

/// Each request with an OIDC token logs its issuer, `sub` and the claims the grants use, and
/// never the token (issue 22); a refused token is logged with its reason, not its text.
#[test]
fn oidc_requests_log_the_identity_and_never_the_token() {
    let test = "oidc_requests_log_the_identity_and_never_the_token";
    let Some(peer) = stateseal_testkit::oidc::OidcPeer::start(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.hcl");
    std::fs::write(
        &config,
        format!(
            r#"auth {{
  oidc "ci" {{
    issuer    = "{}"
    audiences = ["stateseal"]
  }}
  grant {{
    oidc   = "ci"
    claims = {{ repository_id = "4242", ref = "refs/heads/main" }}
    paths  = ["${{repository_id}}/*"]
    allow  = ["read", "write", "lock"]
  }}
}}
"#,
            peer.issuer
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let s = start(&["--config", &config], &dir.path().join("data"), &[]);
    let token = peer.token("apply-main");
    let state = br#"{"version":4,"terraform_version":"1.9.0","serial":1,"lineage":"oidc","outputs":{},"resources":[]}"#;
    let auth = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(
        http_with(&s.addr, "POST", "/state/4242/app", state, &auth),
        200
    );
    // The same token with the first character of its signature changed.
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("Authorization: Bearer {signed}.{flipped}{}\r\n", &sig[1..]);
    assert_eq!(
        http_with(&s.addr, "GET", "/state/4242/app", b"", &tampered),
        401
    );
    let lines = s.stop().join("\n");
    assert!(lines.contains("OIDC identity"), "{lines}");
    assert!(lines.contains("issuer=ci"), "{lines}");
    assert!(
        lines.contains("repo:acme/infra:ref:refs/heads/main"),
        "{lines}"
    );
    assert!(lines.contains("repository_id"), "{lines}");
    assert!(
        lines.contains("reason=Signature"),
        "the refusal's reason: {lines}"
    );
    let signature = token.rsplit('.').next().unwrap();
    let claims = token.split('.').nth(1).unwrap();
    assert!(
        !lines.contains(signature) && !lines.contains(claims),
        "the token is in the log: {lines}"
    );
}
