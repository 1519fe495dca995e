//! Issue 17's CLI rows, each reproduced: a closed stdout ends every printing command quietly
//! (no panic, no error line, the exit code it would have had), inputs over `--max-input-size`
//! are refused before they are read, `rekey` through a symbolic link rewrites the target and
//! keeps owner, group and mode, invalid pbkdf2 metadata names the bad parameter (exit 5), and
//! `verify` / `audit --require` fail on a selection with no state (exit 8) unless
//! `--allow-empty`. The S3 cases need moto (`STATESEAL_TEST_AWS_ENDPOINT`) and skip without it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;
use stateseal_testkit::{unique, Peers};

use crate::backend::{command, json, ok, out, stateseal, Mode, Out, Setup};

/// The minimum work factor, so the many runs below stay fast.
const OLD: &str = "key_provider \"pbkdf2\" \"old\" {\n  passphrase = \"the old passphrase of this test\"\n  iterations = 200000\n}\nmethod \"aes_gcm\" \"old\" { keys = key_provider.pbkdf2.old }\n";
const NEW: &str = "key_provider \"pbkdf2\" \"new\" {\n  passphrase = \"the new passphrase of this test\"\n  iterations = 200000\n}\nmethod \"aes_gcm\" \"new\" { keys = key_provider.pbkdf2.new }\n";

fn plain_state(serial: u64) -> String {
    format!("{{\"version\":4,\"terraform_version\":\"1.9.0\",\"serial\":{serial},\"lineage\":\"reliability\",\"outputs\":{{\"greeting\":{{\"value\":\"hello\",\"type\":\"string\"}}}},\"resources\":[]}}\n")
}

fn run_with_stdin(dir: &Path, args: &[&str], stdin: &[u8]) -> Out {
    let mut child = command(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // The command may stop reading early (at the input limit): a broken pipe here is expected.
    let _ = input.write_all(stdin);
    drop(input);
    out(child.wait_with_output().unwrap())
}

/// A pipe whose reader is already gone, so the first write to it fails with EPIPE: a
/// deterministic `| head -c 1` (with head, whether the command writes before or after head
/// exits is a race). A FIFO opened for reading without blocking, then for writing, then the
/// reading end closed.
fn closed_pipe(dir: &Path) -> fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    /// Linux's O_NONBLOCK: opening a FIFO's reading end returns at once.
    const O_NONBLOCK: i32 = 0o4000;
    let fifo = dir.join(unique("closed-stdout"));
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    let reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let writer = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    drop(reader);
    fs::remove_file(&fifo).unwrap();
    writer
}

/// `args` with stdout a closed pipe.
fn run_into_closed_pipe(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut c = command(dir, args);
    c.stdout(closed_pipe(dir)).stderr(Stdio::piped());
    match stdin {
        Some(bytes) => {
            let mut child = c.stdin(Stdio::piped()).spawn().unwrap();
            let _ = child.stdin.take().unwrap().write_all(bytes);
            out(child.wait_with_output().unwrap())
        }
        None => out(c.stdin(Stdio::null()).output().unwrap()),
    }
}

/// Runs `args` with stdout captured (it must print something, or the closed pipe would prove
/// nothing), then with stdout a closed pipe: the same exit code and the same stderr, so no
/// panic and no error line about the pipe.
fn quiet_on_a_closed_pipe(dir: &Path, args: &[&str], stdin: Option<&[u8]>) {
    let normal = match stdin {
        Some(bytes) => run_with_stdin(dir, args, bytes),
        None => stateseal(dir, args),
    };
    assert!(
        !normal.stdout.is_empty(),
        "{args:?} prints nothing on stdout (code {}): {}",
        normal.code,
        normal.stderr
    );
    let closed = run_into_closed_pipe(dir, args, stdin);
    assert!(
        !closed.stderr.contains("panicked"),
        "{args:?}: {}",
        closed.stderr
    );
    assert_eq!(
        (closed.code, closed.stderr.as_str()),
        (normal.code, normal.stderr.as_str()),
        "{args:?} into a closed pipe"
    );
}

/// A refusal: exit `code`, `says` on stderr, nothing on stdout.
fn refused(o: &Out, code: i32, says: impl AsRef<str>) {
    let says = says.as_ref();
    assert_eq!(o.code, code, "{}", o.stderr);
    assert!(o.stderr.contains(says), "{says:?} not in: {}", o.stderr);
    assert!(o.stdout.is_empty(), "{}", o.text());
}

/// A directory with the old and new configurations (`old.hcl`: old only; `new.hcl`: new,
/// falling back to old), a plaintext state, and that state encrypted with the old one.
fn file_setup() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(
        d.path().join("old.hcl"),
        format!("{OLD}state {{ method = method.aes_gcm.old }}\n"),
    )
    .unwrap();
    fs::write(
        d.path().join("new.hcl"),
        format!("{OLD}{NEW}state {{\n  method = method.aes_gcm.new\n  fallback {{ method = method.aes_gcm.old }}\n}}\n"),
    )
    .unwrap();
    fs::write(d.path().join("plain.json"), plain_state(1)).unwrap();
    ok(
        stateseal(
            d.path(),
            &[
                "--config",
                "old.hcl",
                "encrypt",
                "plain.json",
                "-o",
                "old.enc",
            ],
        ),
        "encrypt",
    );
    d
}

#[test]
fn every_file_command_ends_quietly_on_a_closed_stdout() {
    let d = file_setup();
    let p = d.path();
    // The local backend, with the new configuration, holding one state.
    fs::write(
        p.join("main.tf"),
        format!("terraform {{\n  backend \"local\" {{ path = \"app.tfstate\" }}\n  encryption {{\n{OLD}{NEW}state {{ method = method.aes_gcm.new }}\n  }}\n}}\n"),
    )
    .unwrap();
    ok(stateseal(p, &["state", "push", "plain.json"]), "state push");
    fs::copy(p.join("old.enc"), p.join("c.enc")).unwrap();
    for args in [
        &["--help"][..],
        &["--version"],
        &["decrypt", "--help"],
        &["audit", "--help"],
        &["inspect", "old.enc"],
        &["inspect", "--json", "old.enc"],
        &["--config", "old.hcl", "decrypt", "old.enc"],
        &["--config", "old.hcl", "encrypt", "plain.json"],
        &["validate"],
        &["validate", "--json"],
        &["state", "pull"],
        &["workspace", "list"],
        &["outputs"],
        &["outputs", "--json"],
        // A command that prints, then fails: its exit code and error lines stay as they are.
        &["--config", "new.hcl", "rekey", "c.enc", "plain.json"],
    ] {
        quiet_on_a_closed_pipe(p, args, None);
    }
    quiet_on_a_closed_pipe(p, &["inspect", "-"], Some(plain_state(1).as_bytes()));
    quiet_on_a_closed_pipe(p, &["serve", "hash-password"], Some(b"a password\n"));

    // rekey prints its report after rewriting the file: a closed stdout still rekeys every file.
    fs::copy(p.join("old.enc"), p.join("a.enc")).unwrap();
    fs::copy(p.join("old.enc"), p.join("b.enc")).unwrap();
    let closed = run_into_closed_pipe(p, &["--config", "new.hcl", "rekey", "a.enc", "b.enc"], None);
    assert_eq!((closed.code, closed.stderr.as_str()), (0, ""));
    for f in ["a.enc", "b.enc"] {
        let text = ok(stateseal(p, &["inspect", f]), "inspect").text();
        assert!(text.contains("key_provider.pbkdf2.new"), "{f}: {text}");
    }
}

#[test]
fn inputs_over_the_limit_are_refused_naming_them_and_nothing_is_written() {
    let d = file_setup();
    let p = d.path();
    let size = fs::metadata(p.join("old.enc")).unwrap().len();
    let limit = (size - 1).to_string();
    let before = fs::read(p.join("old.enc")).unwrap();
    for args in [
        &["inspect", "old.enc"][..],
        &[
            "--config", "old.hcl", "decrypt", "old.enc", "-o", "out.json",
        ],
        &["--config", "new.hcl", "rekey", "old.enc"],
    ] {
        let mut all = vec!["--max-input-size", limit.as_str()];
        all.extend_from_slice(args);
        let o = stateseal(p, &all);
        refused(&o, 5, format!(
                "old.enc is too large: it is {size} bytes, larger than the input limit of {limit} bytes (--max-input-size)"
            ));
        assert!(o.stdout.is_empty());
    }
    assert_eq!(fs::read(p.join("old.enc")).unwrap(), before, "untouched");
    assert!(!p.join("out.json").exists());
    // At the limit exactly, the file is read.
    let exact = size.to_string();
    ok(
        stateseal(p, &["--max-input-size", &exact, "inspect", "old.enc"]),
        "inspect at the limit",
    );

    // stdin, and a device that never ends, stop at the limit.
    let o = run_with_stdin(
        p,
        &["--max-input-size", "1KiB", "--config", "old.hcl", "encrypt"],
        &vec![b' '; 5000],
    );
    refused(
        &o,
        5,
        "<stdin> is too large: it holds more than the input limit of 1 KiB; reading stopped there",
    );
    let o = stateseal(
        p,
        &[
            "--max-input-size",
            "1MiB",
            "--config",
            "old.hcl",
            "decrypt",
            "/dev/zero",
        ],
    );
    refused(
        &o,
        5,
        "/dev/zero is too large: it holds more than the input limit of 1 MiB",
    );

    // A large file (read into huge-page memory when allowed) is refused before any reading.
    let big = p.join("big.enc");
    fs::File::create(&big).unwrap().set_len(9 << 20).unwrap();
    let o = stateseal(
        p,
        &[
            "--max-input-size",
            "8MiB",
            "--config",
            "old.hcl",
            "decrypt",
            "big.enc",
        ],
    );
    refused(
        &o,
        5,
        "big.enc is too large: it is 9437184 bytes, larger than the input limit of 8 MiB",
    );

    // The flag itself: a bad size is a usage error that says what is accepted.
    for bad in ["0", "1.5GiB", "lots", "1PiB"] {
        let o = stateseal(p, &["--max-input-size", bad, "inspect", "old.enc"]);
        refused(&o, 2, "e.g. 1GiB");
    }
    let help = ok(stateseal(p, &["--help"]), "help").text();
    assert!(help.contains("--max-input-size <SIZE>"), "{help}");
    assert!(help.contains("[default: 1GiB]"), "{help}");
}

#[test]
fn input_limit_applies_to_state_push_and_hash_password() {
    let d = file_setup();
    let p = d.path();
    fs::write(
        p.join("main.tf"),
        "terraform {\n  backend \"local\" { path = \"app.tfstate\" }\n}\n",
    )
    .unwrap();
    let o = stateseal(
        p,
        &["--max-input-size", "10", "state", "push", "plain.json"],
    );
    refused(&o, 5, "plain.json is too large");
    assert!(!p.join("app.tfstate").exists(), "nothing was stored");
    let o = run_with_stdin(
        p,
        &["--max-input-size", "10", "serve", "hash-password"],
        b"a password much longer than ten bytes\n",
    );
    refused(&o, 5, "the password on stdin is too large");
    assert!(o.stdout.is_empty());
}

/// Whose a new file in `dir` is: the test's own uid and gid.
fn own_ids(dir: &Path) -> (u32, u32) {
    let probe = dir.join("probe");
    fs::write(&probe, b"").unwrap();
    let m = fs::metadata(&probe).unwrap();
    fs::remove_file(&probe).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn rekey_through_a_symlink_rewrites_the_target_and_keeps_owner_group_and_mode() {
    let d = file_setup();
    let p = d.path();
    fs::create_dir(p.join("real")).unwrap();
    let real = p.join("real/state.enc");
    fs::copy(p.join("old.enc"), &real).unwrap();
    std::os::unix::fs::symlink("real/state.enc", p.join("link.enc")).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    // As root, another owner and group (nobody:nogroup); else the test's own.
    let (uid, gid) = match own_ids(p) {
        (0, _) => (65534, 65534),
        ids => ids,
    };
    std::os::unix::fs::chown(&real, Some(uid), Some(gid)).unwrap();

    let o = ok(
        stateseal(p, &["--config", "new.hcl", "rekey", "link.enc"]),
        "rekey link",
    );
    let report = o.text();
    assert!(
        report.contains("link.enc (a symbolic link: its target")
            && report.contains("real/state.enc was rewritten, the link kept): rekeyed"),
        "{report}"
    );
    let link = fs::symlink_metadata(p.join("link.enc")).unwrap();
    assert!(link.file_type().is_symlink(), "the link is still a link");
    assert_eq!(
        fs::read_link(p.join("link.enc")).unwrap(),
        PathBuf::from("real/state.enc")
    );
    let m = fs::metadata(&real).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (uid, gid, 0o640),
        "owner, group and mode kept"
    );
    // The target itself is on the new key: the old configuration alone cannot read it.
    let inspected = ok(stateseal(p, &["inspect", "real/state.enc"]), "inspect").text();
    assert!(inspected.contains("key_provider.pbkdf2.new"), "{inspected}");
    let old_only = stateseal(p, &["--config", "old.hcl", "decrypt", "real/state.enc"]);
    assert_eq!(old_only.code, 4, "{}", old_only.stderr);
    let opened = ok(
        stateseal(p, &["--config", "new.hcl", "decrypt", "link.enc"]),
        "decrypt",
    );
    assert_eq!(opened.stdout, plain_state(1).as_bytes());
    // Only the target changed in real/: no temporary file was left behind.
    assert_eq!(fs::read_dir(p.join("real")).unwrap().count(), 1);

    // A dangling link is refused, saying why, and nothing is created.
    std::os::unix::fs::symlink("nowhere.enc", p.join("dangling.enc")).unwrap();
    let o = stateseal(p, &["--config", "new.hcl", "rekey", "dangling.enc"]);
    refused(
        &o,
        1,
        "cannot write dangling.enc: it is a symbolic link whose target cannot be resolved",
    );
    assert!(!p.join("nowhere.enc").exists());

    // `-o` through a link also writes the target; `-o` onto a device is refused, not replaced.
    ok(
        stateseal(
            p,
            &[
                "--config", "new.hcl", "decrypt", "link.enc", "-o", "link.enc",
            ],
        ),
        "decrypt -o link",
    );
    assert!(fs::symlink_metadata(p.join("link.enc"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(&real).unwrap(), plain_state(1).as_bytes());
    let m = fs::metadata(&real).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (uid, gid, 0o640));
    let o = stateseal(
        p,
        &[
            "--config",
            "old.hcl",
            "decrypt",
            "old.enc",
            "-o",
            "/dev/null",
        ],
    );
    refused(&o, 1, "/dev/null is not a regular file");
    assert!(fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

/// `envelope` with one parameter of its `key_provider.pbkdf2.old` metadata replaced.
fn with_pbkdf2_parameter(envelope: &[u8], name: &str, value: Value) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut env: Value = serde_json::from_slice(envelope).unwrap();
    let meta = env["meta"]["key_provider.pbkdf2.old"].as_str().unwrap();
    let mut params: Value = serde_json::from_slice(&b64.decode(meta).unwrap()).unwrap();
    params[name] = value;
    env["meta"]["key_provider.pbkdf2.old"] =
        Value::String(b64.encode(serde_json::to_vec(&params).unwrap()));
    serde_json::to_vec(&env).unwrap()
}

#[test]
fn invalid_pbkdf2_metadata_names_the_parameter() {
    let d = file_setup();
    let p = d.path();
    let envelope = fs::read(p.join("old.enc")).unwrap();
    for (name, value, named) in [
        ("iterations", Value::from(0), "iterations=0"),
        ("key_length", Value::from(0), "key_length=0"),
        ("salt", Value::from(""), "salt is empty"),
    ] {
        fs::write(
            p.join("bad.enc"),
            with_pbkdf2_parameter(&envelope, name, value),
        )
        .unwrap();
        let o = stateseal(p, &["--config", "old.hcl", "decrypt", "bad.enc"]);
        refused(
            &o,
            5,
            format!("invalid pbkdf2 parameters in stored metadata: {named}"),
        );
        assert!(
            !o.stderr
                .contains("names key providers this configuration does not have"),
            "{}",
            o.stderr
        );
        assert!(o.stdout.is_empty());
    }
}

/// A directory whose configuration stores states on moto's `bucket` with the new method.
async fn s3_setup(test: &str) -> Option<Setup> {
    let peers = Peers::aws(test)?;
    let s = Setup::new(peers, Mode::Both, "").await;
    fs::write(
        s.path().join("enc.tf"),
        format!("terraform {{\n  encryption {{\n{OLD}{NEW}state {{ method = method.aes_gcm.new }}\n  }}\n}}\n"),
    )
    .unwrap();
    fs::write(s.path().join("plain.json"), plain_state(1)).unwrap();
    ok(s.ss(&["state", "push", "plain.json"]), "state push");
    Some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_s3_command_ends_quietly_on_a_closed_stdout() {
    let Some(s) = s3_setup("every_s3_command_ends_quietly_on_a_closed_stdout").await else {
        return;
    };
    let url = format!("s3://{}", s.bucket);
    let p = s.path();
    for args in [
        &["state", "pull"][..],
        &["state", "versions"],
        &["state", "versions", "--json"],
        &["workspace", "list"],
        &["outputs"],
        &["audit", &url],
        &["audit", &url, "--json"],
        // exit 8: the state is not stored with SSE-KMS.
        &["verify", &url],
        &["verify", &url, "--json"],
        &["locks", "list", &url],
        &["locks", "list", &url, "--json"],
        &["rekey", &url],
        &["rekey", &url, "--json"],
        &["locks", "break", &url, "--older-than", "0s"],
        &[
            "bootstrap",
            "s3",
            "--bucket",
            &s.bucket,
            "--lock",
            "lockfile",
            "--kms-key",
            "none",
        ],
    ] {
        quiet_on_a_closed_pipe(p, args, None);
    }
    // `lock` prints the ID it holds on stdout, and the way to release it on stderr: with stdout
    // closed the lock is still taken, and stderr still tells how to release it.
    let held = ok(stateseal(p, &["lock"]), "lock");
    let id = held.text().trim().to_string();
    ok(stateseal(p, &["unlock", &id]), "unlock");
    let closed = run_into_closed_pipe(p, &["lock"], None);
    assert_eq!(closed.code, 0, "{}", closed.stderr);
    let release = closed
        .stderr
        .split("Release it with: stateseal unlock ")
        .nth(1)
        .unwrap_or_else(|| panic!("{}", closed.stderr))
        .trim();
    ok(
        stateseal(p, &["unlock", release]),
        "unlock the lock taken with stdout closed",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_on_an_empty_selection_fail_unless_allowed() {
    let Some(s) = s3_setup("gates_on_an_empty_selection_fail_unless_allowed").await else {
        return;
    };
    // A plaintext state under other/: the gate must find it, and not pass on `Other`.
    s.peers
        .put_object(
            &s.bucket,
            "other/terraform.tfstate",
            plain_state(7).as_bytes(),
        )
        .await;
    let b = &s.bucket;
    let found = s.ss(&[
        "audit",
        &format!("s3://{b}/other"),
        "--require",
        "encrypted",
    ]);
    assert_eq!(found.code, 8, "{}", found.stderr);
    assert!(found.stderr.contains("offender: s3://"), "{}", found.stderr);

    for (args, url) in [
        (
            vec!["audit", "--require", "encrypted"],
            format!("s3://{b}/Other"),
        ),
        (
            vec!["audit", "--require", "primary", "--json"],
            format!("s3://{b}/Other"),
        ),
        (vec!["verify"], format!("s3://{b}/nothing-here")),
        (vec!["verify", "--json"], format!("s3://{b}/nothing-here")),
    ] {
        let mut all = args.clone();
        all.push(&url);
        let o = s.ss(&all);
        assert_eq!(o.code, 8, "{all:?}: {}", o.stderr);
        let prefix = url.rsplit('/').next().unwrap();
        assert!(
            o.stderr.contains(&format!(
                "error: no state under s3://{b}/{prefix}: nothing was checked"
            )) && o.stderr.contains("--allow-empty"),
            "{all:?}: {}",
            o.stderr
        );
        if all.contains(&"--json") {
            // The report is printed as for any selection: no state in it.
            let report = json(&o.stdout);
            assert_eq!(report["states"], serde_json::json!([]), "{report}");
        }
        all.push("--allow-empty");
        let allowed = s.ss(&all);
        assert_eq!(allowed.code, 0, "{all:?}: {}", allowed.stderr);
    }
    // Without --require the audit is a report, not a gate: exit 0, and a warning.
    let o = ok(s.ss(&["audit", &format!("s3://{b}/Other")]), "audit");
    assert!(
        o.stderr.contains(&format!(
            "warning: no state under s3://{b}/Other: nothing was checked"
        )),
        "{}",
        o.stderr
    );

    // The JSON shapes of a selection with states are unchanged.
    let audit = json(&ok(s.ss(&["audit", &format!("s3://{b}"), "--json"]), "audit").stdout);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&audit),
        [
            "bucket",
            "prefix",
            "states",
            "bucket_checks",
            "summary",
            "lock_files",
            "plans",
            "other"
        ]
    );
    assert_eq!(audit["states"].as_array().unwrap().len(), 2, "{audit}");
    let verify = s.ss(&["verify", &format!("s3://{b}"), "--json"]);
    assert_eq!(verify.code, 8, "not on SSE-KMS: {}", verify.stderr);
    assert!(
        !verify.stderr.contains("no state under"),
        "{}",
        verify.stderr
    );
    assert_eq!(
        keys(&json(&verify.stdout)),
        [
            "bucket",
            "prefix",
            "expected_kms_key",
            "expected_key_provider",
            "states",
            "gate",
            "violations",
            "summary"
        ]
    );
}
