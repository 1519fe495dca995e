//! The `external` key provider and method with real executables (`tests/external/`: a POSIX
//! shell script and Python scripts), including programs that hang, fail and write garbage.
//!
//! The one-minute timeout is lowered for this test binary with `STATESEAL_EXTERNAL_TIMEOUT`, to
//! a value that a working program (Python starting on a loaded machine) stays far below. The
//! hang tests wait on events, not on the clock: the program creates a marker file once it hangs,
//! and the test checks that marker and that the process is gone; time is bounded only generously.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use base64::Engine as _;
use stateseal_encryption::envelope::Envelope;
use stateseal_encryption::load::{self, Options};
use stateseal_encryption::{Encryption, Error, Registry, Status};

const TIMEOUT_SECS: u64 = 10;
/// A kill takes a moment; on a loaded machine, many. Only a hang past this bound is a failure.
const KILL_BOUND: Duration = Duration::from_secs(TIMEOUT_SECS + 60);
const STATE: &[u8] =
    br#"{"version":4,"terraform_version":"1.10.0","serial":1,"lineage":"ext","outputs":{}}"#;

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var(
            stateseal_encryption::external_program::TIMEOUT_ENV,
            TIMEOUT_SECS.to_string(),
        )
    });
}

fn program(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/external")
        .join(name)
        .display()
        .to_string()
}

/// An HCL list of strings.
fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn encryption(body: &str) -> std::sync::Arc<Encryption> {
    setup();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        dir: dir.path().to_path_buf(),
        env_encryption: Some(body.to_string()),
        workspace: "default".into(),
        ..Options::default()
    };
    load::load(&opts, Registry::default(), &|_| None)
        .unwrap_or_else(|d| panic!("{d}"))
        .encryption
}

/// external provider → aes_gcm (the 16-byte key makes AES-128).
fn provider_config(command: &[&str]) -> String {
    format!(
        r#"
key_provider "external" "ext" {{
  command = {}
}}
method "aes_gcm" "m" {{
  keys = key_provider.external.ext
}}
state {{
  method = method.aes_gcm.m
}}
"#,
        list(command)
    )
}

fn meta_json(ct: &[u8], key: &str) -> String {
    String::from_utf8(Envelope::parse(ct).unwrap().meta[key].clone()).unwrap()
}

fn expect_error(err: Error, want: &[&str]) -> String {
    let msg = err.to_string();
    for w in want {
        assert!(msg.contains(w), "{w:?} not in:\n{msg}");
    }
    msg
}

fn pid_is_gone(pid_file: &Path) -> bool {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    // Killed and reaped: no /proc entry (a zombie would still have one).
    !Path::new(&format!("/proc/{}", pid.trim())).exists()
}

#[test]
fn shell_provider_round_trips_and_stores_external_data() {
    let enc = encryption(&provider_config(&[&program("keyprovider.sh")]));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(
        meta_json(&ct, "key_provider.external.ext"),
        r#"{"external_data":{"generation":1}}"#
    );
    let (plain, status) = enc.state().decrypt_state(&ct).unwrap();
    assert_eq!((plain.as_slice(), status), (STATE, Status::Satisfied));
}

#[test]
fn python_provider_gets_null_then_its_metadata_in_go_form() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("stdin.log");
    let record_s = record.display().to_string();
    let enc = encryption(&provider_config(&[
        &program("keyprovider.py"),
        "--record",
        &record_s,
    ]));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    // A fresh reader: its key cache is empty, so the stored metadata must lead back to the
    // key through the key service (the writer would reuse the key it was just given).
    let enc = encryption(&provider_config(&[
        &program("keyprovider.py"),
        "--record",
        &record_s,
    ]));
    // Go's json.Marshal of map[string]any: sorted keys, HTML-safe strings, float numbers.
    assert_eq!(
        meta_json(&ct, "key_provider.external.ext"),
        r#"{"external_data":{"n":2,"salt":"\u003cb\u003e"}}"#
    );
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        "null\n{\"external_data\":{\"n\":2,\"salt\":\"\\u003cb\\u003e\"}}\n"
    );
}

#[test]
fn provider_chained_into_pbkdf2() {
    // OpenTofu's own test shape (V7): external → pbkdf2.chain → aes_gcm.
    let enc = encryption(&format!(
        r#"
key_provider "external" "ext" {{
  command = {}
}}
key_provider "pbkdf2" "derived" {{
  chain      = key_provider.external.ext
  iterations = 200000
}}
method "aes_gcm" "m" {{
  keys = key_provider.pbkdf2.derived
}}
state {{
  method = method.aes_gcm.m
}}
"#,
        list(&[&program("keyprovider.py")])
    ));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    let env = Envelope::parse(&ct).unwrap();
    assert_eq!(
        env.meta.keys().collect::<Vec<_>>(),
        ["key_provider.external.ext", "key_provider.pbkdf2.derived"]
    );
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
}

#[test]
fn external_method_with_keys_xors_with_the_provider_key() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("method.log");
    let record_s = record.display().to_string();
    let enc = encryption(&format!(
        r#"
key_provider "external" "ext" {{
  command = {}
}}
method "external" "xor" {{
  keys            = key_provider.external.ext
  encrypt_command = {}
  decrypt_command = {}
}}
state {{
  method = method.external.xor
}}
"#,
        list(&[&program("keyprovider.sh")]),
        list(&[&program("method.py"), "--record", &record_s]),
        list(&[&program("method.py"), "--record", &record_s]),
    ));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    let env = Envelope::parse(&ct).unwrap();
    let key: Vec<u8> = (1..=16).collect();
    let xored: Vec<u8> = STATE
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 16])
        .collect();
    assert_eq!(
        env.encrypted_data, xored,
        "encrypted_data is the program's output"
    );
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
    let b64 = base64::engine::general_purpose::STANDARD;
    let log = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                r#"{{"key":"AQIDBAUGBwgJCgsMDQ4PEA==","payload":"{}"}}"#,
                b64.encode(STATE)
            ),
            format!(
                r#"{{"key":"AQIDBAUGBwgJCgsMDQ4PEA==","payload":"{}"}}"#,
                b64.encode(&xored)
            ),
        ]
    );
}

#[test]
fn external_method_without_keys_gets_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("method.log");
    let record_s = record.display().to_string();
    let cmd = list(&[&program("method.py"), "--record", &record_s]);
    let enc = encryption(&format!(
        "method \"external\" \"x\" {{\n encrypt_command = {cmd}\n decrypt_command = {cmd}\n}}\nstate {{\n method = method.external.x\n}}\n"
    ));
    let ct = enc.state().encrypt_state(STATE).unwrap();
    assert_eq!(Envelope::parse(&ct).unwrap().meta.len(), 0);
    assert_eq!(enc.state().decrypt_state(&ct).unwrap().0, STATE);
    assert!(std::fs::read_to_string(&record)
        .unwrap()
        .starts_with("{\"payload\":"));
}

#[test]
fn hanging_python_provider_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("pid");
    let pid_s = pid.display().to_string();
    let marker = dir.path().join("hanging");
    let enc = encryption(&provider_config(&[
        &program("keyprovider.py"),
        "--pid",
        &pid_s,
        "hang",
        &marker.display().to_string(),
    ]));
    let started = Instant::now();
    let err = enc.state().encrypt_state(STATE).unwrap_err();
    let took = started.elapsed();
    expect_error(
        err,
        &[
            "key_provider.external.ext failed with error:",
            "keyprovider.py",
            &format!("did not finish within {TIMEOUT_SECS}s and was killed"),
            "keyprovider.py: hanging on purpose",
        ],
    );
    assert!(marker.exists(), "killed only once it hung");
    assert!(took >= Duration::from_secs(TIMEOUT_SECS), "{took:?}");
    assert!(took < KILL_BOUND, "{took:?}");
    assert!(pid_is_gone(&pid), "the hung program is still running");
}

#[test]
fn hanging_shell_provider_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("hanging");
    let enc = encryption(&provider_config(&[
        &program("keyprovider.sh"),
        "hang",
        &marker.display().to_string(),
    ]));
    let started = Instant::now();
    let err = enc.state().encrypt_state(STATE).unwrap_err();
    assert!(started.elapsed() < KILL_BOUND);
    assert!(marker.exists(), "killed only once it hung: {err}");
    expect_error(
        err,
        &[
            "did not finish within",
            "keyprovider.sh: hanging on purpose",
        ],
    );
}

#[test]
fn provider_failures_are_clear_and_carry_stderr() {
    let py = program("keyprovider.py");
    let run = |args: &[&str]| {
        let mut cmd = vec![py.as_str()];
        cmd.extend_from_slice(args);
        encryption(&provider_config(&cmd))
            .state()
            .encrypt_state(STATE)
            .unwrap_err()
    };
    expect_error(
        run(&["garbage"]),
        &[
            "key_provider.external.ext failed with error:",
            "the external key provider returned an invalid JSON response",
            "Stderr:\n-------\nkeyprovider.py: the HSM said no",
        ],
    );
    expect_error(
        run(&["bad-magic"]),
        &["invalid magic received from external key provider: Terraform-External-Key-Provider"],
    );
    expect_error(run(&["no-header"]), &["did not write the header line"]);
    expect_error(
        run(&["unknown"]),
        &["invalid JSON response", "unknown field `extra`"],
    );
    let sh = encryption(&provider_config(&[&program("keyprovider.sh"), "exit3"]))
        .state()
        .encrypt_state(STATE)
        .unwrap_err();
    expect_error(
        sh,
        &[
            "exited with a non-zero exit code (3)",
            "keyprovider.sh: the vault is sealed",
        ],
    );
    let missing = encryption(&provider_config(&["/nonexistent/provider"]))
        .state()
        .encrypt_state(STATE)
        .unwrap_err();
    expect_error(missing, &["cannot start", "/nonexistent/provider"]);
}

#[test]
fn method_failures_and_timeouts() {
    let method = |mode: &[&str]| {
        let mut cmd = vec![program("method.py")];
        cmd.extend(mode.iter().map(|m| m.to_string()));
        let cmd = list(&cmd.iter().map(String::as_str).collect::<Vec<_>>());
        let ok = list(&[&program("method.py")]);
        encryption(&format!(
            "method \"external\" \"x\" {{\n encrypt_command = {cmd}\n decrypt_command = {cmd}\n}}\nmethod \"external\" \"ok\" {{\n encrypt_command = {ok}\n decrypt_command = {ok}\n}}\nstate {{\n method = method.external.x\n}}\n"
        ))
    };
    expect_error(
        method(&["garbage"])
            .state()
            .encrypt_state(STATE)
            .unwrap_err(),
        &[
            "encryption failed for state",
            "the external method returned an invalid JSON response",
            "method.py: about to write garbage",
        ],
    );
    expect_error(
        method(&["exit2"]).state().encrypt_state(STATE).unwrap_err(),
        &["non-zero exit code (2)", "method.py: refusing on purpose"],
    );
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("hanging");
    let started = Instant::now();
    expect_error(
        method(&["hang", &marker.display().to_string()])
            .state()
            .encrypt_state(STATE)
            .unwrap_err(),
        &["did not finish within", "and was killed"],
    );
    assert!(started.elapsed() < KILL_BOUND);
    assert!(marker.exists(), "killed only once it hung");

    // Decrypting: a failing method is a failed attempt (the next fallback would be tried).
    let good = encryption(&format!(
        "method \"external\" \"x\" {{\n encrypt_command = {c}\n decrypt_command = {c}\n}}\nstate {{\n method = method.external.x\n}}\n",
        c = list(&[&program("method.py")])
    ));
    let ct = good.state().encrypt_state(STATE).unwrap();
    expect_error(
        method(&["garbage"]).state().decrypt_state(&ct).unwrap_err(),
        &[
            "decryption failed for all provided methods",
            "attempted decryption failed for state: decryption failed: the external method returned an invalid JSON response",
        ],
    );
}
