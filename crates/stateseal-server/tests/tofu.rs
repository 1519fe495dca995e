//! Must-show 4 of issue 18: `stateseal serve` with real `tofu` (each pinned release) as the
//! client through `backend "http"`: init, apply, plan, a lock conflict that names the real
//! holder, `force-unlock` as each release really sends it; client-side encryption (the server
//! stores tofu's envelope as sent and still refuses a lower serial or another lineage);
//! `require_client_encryption` against a tofu without encryption; and on `storage "s3"`, a tofu
//! with `backend "s3"` on the same key reading what the server stored, its lock blocking the
//! server's clients. Skipped (with a notice) without `tofu` (and moto, for S3), unless
//! STATESEAL_TEST_REQUIRE_PEERS is set.

use std::path::Path;

use stateseal_encryption::envelope::Envelope;
use stateseal_store::StateMeta;
use stateseal_testkit::{Peers, Tofu, SLOW_APPLY_TF};

use crate::at_rest::{server_config, PBKDF2_BODY};
use crate::support::{lock_info, Live, S3Backing};
use crate::terraform::{release_and_finish, stored_meta, wait_for_lock, write};

/// A pbkdf2 encryption block for `tofu`, with another passphrase than the server's.
const CLIENT_ENCRYPTION: &str = r#"
terraform {
  encryption {
    key_provider "pbkdf2" "client" {
      passphrase = "the client's own passphrase, not the server's"
    }
    method "aes_gcm" "client" {
      keys = key_provider.pbkdf2.client
    }
    state {
      method   = method.aes_gcm.client
      enforced = true
    }
  }
}
"#;

/// A working directory with the slow-apply configuration on the server's state `name`, plus
/// `extra` (more configuration) in `extra.tf`.
fn workdir(live: &Live, name: &str, extra: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "main.tf", SLOW_APPLY_TF);
    write(d.path(), "backend.tf", &live.backend_block(name));
    write(d.path(), "extra.tf", extra);
    d
}

/// `tofu`'s exit status and its stdout and stderr together.
fn run(tofu: &Tofu, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = tofu.run(dir, args);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// An apply that must fail to take the lock; returns `tofu`'s output.
fn refused_apply(tofu: &Tofu, dir: &Path) -> String {
    let (ok, text) = run(
        tofu,
        dir,
        &["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
    );
    assert!(!ok, "tofu {}: {text}", tofu.version);
    assert!(text.contains("Error acquiring the state lock"), "{text}");
    text
}

/// Asserts that `tofu`'s lock error names the holder: OpenTofu 1.9+ prints the holder's lock
/// info from the server's 423 body; 1.7–1.8 print their own lock info, and name the holder only
/// by the ID in the error message.
fn assert_names_holder(tofu: &Tofu, text: &str, id: &str, who: &str) {
    let v = &tofu.version;
    if tofu.is_at_least("1.9") {
        assert!(
            text.contains(&format!("ID:        {id}"))
                && text.contains(&format!("Who:       {who}")),
            "tofu {v} shows the holder {id} {who}: {text}"
        );
    } else {
        assert!(
            text.contains(&format!("HTTP remote state already locked:\nID={id}")),
            "tofu {v} names the holder's ID {id}: {text}"
        );
        assert!(
            text.contains(&format!("Version:   {v}")),
            "tofu {v} shows its own lock info: {text}"
        );
    }
}

/// Starts an apply of `dir` that holds its lock until `release_and_finish`.
fn held_apply(tofu: &Tofu, dir: &Path) -> (std::process::Child, std::path::PathBuf) {
    let hold = dir.join("release-apply");
    let _ = std::fs::remove_file(&hold);
    let hold_var = format!("hold_until={}", hold.display());
    let child = tofu.spawn(
        dir,
        &["apply", "-auto-approve", "-no-color", "-var", &hold_var],
    );
    (child, hold)
}

#[test]
fn tofu_init_apply_plan_lock_conflict_and_force_unlock() {
    for tofu in Tofu::all("tofu_init_apply_plan_lock_conflict_and_force_unlock") {
        let live = Live::start("");
        let v = &tofu.version;
        let a = workdir(&live, "team/app", "");
        tofu.ok(a.path(), &["init", "-no-color"]);
        tofu.ok(a.path(), &["apply", "-auto-approve", "-no-color"]);
        let first = stored_meta(&live, "team/app");
        assert_eq!(first.output_values()["greeting"], "hello <&> world");
        assert_eq!(live.send("GET", "/state/team/app/lock", None).status, 404);
        let plan = tofu.ok(a.path(), &["plan", "-no-color"]);
        assert!(plan.contains("terraform_data.slow"), "{plan}");
        assert_eq!(stored_meta(&live, "team/app").serial, first.serial);
        tofu.ok(a.path(), &["apply", "-auto-approve", "-no-color"]);
        let second = stored_meta(&live, "team/app");
        assert_eq!(second.lineage, first.lineage);
        assert!(second.serial > first.serial);

        // B is refused while A applies, and names A's lock (what tofu sent in its LOCK).
        let b = workdir(&live, "team/app", "");
        tofu.ok(b.path(), &["init", "-no-color"]);
        let (busy, hold) = held_apply(&tofu, a.path());
        let holder = wait_for_lock(&live, "team/app");
        assert_eq!(holder.version, *v);
        assert_eq!(holder.operation, "OperationTypeApply");
        let text = refused_apply(&tofu, b.path());
        assert_names_holder(&tofu, &text, &holder.id, &holder.who);
        release_and_finish(&hold, busy);
        assert_eq!(live.send("GET", "/state/team/app/lock", None).status, 404);

        // A crashed run's lock; force-unlock with another ID. 1.10+ sends that ID (the server
        // refuses: the lock stays); 1.8 sends an empty body (a force-unlock whoever holds it).
        let crashed_id = "11111111-2222-3333-4444-555555555555";
        let crashed = lock_info(crashed_id, "crashed@ci");
        let lock = |l: &Live| l.send("LOCK", "/state/team/app", Some(crashed.as_bytes()));
        assert_eq!(lock(&live).status, 200);
        let text = refused_apply(&tofu, b.path());
        assert_names_holder(&tofu, &text, crashed_id, "crashed@ci");
        let (ok, text) = run(
            &tofu,
            b.path(),
            &[
                "force-unlock",
                "-force",
                "-no-color",
                "99999999-0000-0000-0000-000000000000",
            ],
        );
        let still = live.send("GET", "/state/team/app/lock", None).status;
        if tofu.is_at_least("1.10") {
            assert!(!ok, "tofu {v}: {text}");
            assert!(text.contains("Unexpected HTTP response code 423"), "{text}");
            assert_eq!(still, 200, "tofu {v}: the wrong ID left the lock");
        } else {
            assert!(ok, "tofu {v}: {text}");
            assert_eq!(still, 404, "tofu {v}: an empty UNLOCK releases the lock");
            assert_eq!(lock(&live).status, 200);
        }
        let unlocked = tofu.ok(
            b.path(),
            &["force-unlock", "-force", "-no-color", crashed_id],
        );
        assert!(unlocked.contains("successfully unlocked"), "{unlocked}");
        assert_eq!(live.send("GET", "/state/team/app/lock", None).status, 404);
        tofu.ok(
            b.path(),
            &["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
        );
    }
}

/// The plaintext of an envelope, decrypted with the client's configuration.
fn client_plaintext(bytes: &[u8]) -> StateMeta {
    let body = CLIENT_ENCRYPTION
        .split_once("encryption {")
        .unwrap()
        .1
        .rsplit_once("}\n}")
        .unwrap()
        .0;
    let cfg =
        stateseal_encryption::config::EncryptionConfig::parse_body_str("client", body).unwrap();
    let enc =
        stateseal_encryption::Encryption::new(cfg, Default::default(), Default::default()).unwrap();
    let (plain, _) = enc.state().decrypt_state(bytes).expect("the client's key");
    StateMeta::parse(&plain).unwrap()
}

#[test]
fn tofu_with_client_encryption_is_stored_as_sent_and_its_serial_enforced() {
    for tofu in Tofu::all("tofu_with_client_encryption_is_stored_as_sent") {
        let v = &tofu.version;
        // The server encrypts plaintext at rest with its own passphrase: tofu's envelopes must
        // be stored as they are, not encrypted again.
        let live = Live::start(&server_config(""));
        let a = workdir(&live, "enc", CLIENT_ENCRYPTION);
        tofu.ok(a.path(), &["init", "-no-color"]);
        tofu.ok(a.path(), &["apply", "-auto-approve", "-no-color"]);
        tofu.ok(a.path(), &["apply", "-auto-approve", "-no-color"]);
        let stored = live.stored_versions("enc");
        assert_eq!(stored.len(), 2, "tofu {v}");
        let pulled: serde_json::Value =
            serde_json::from_str(&tofu.ok(a.path(), &["state", "pull"])).unwrap();
        for bytes in &stored {
            let env = Envelope::parse(bytes).expect("an envelope");
            assert!(
                env.meta.contains_key("key_provider.pbkdf2.client"),
                "tofu {v}: the client's envelope, not the server's"
            );
            let keys: Vec<String> = serde_json::from_slice::<serde_json::Value>(bytes)
                .unwrap()
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            assert_eq!(
                keys,
                [
                    "serial",
                    "lineage",
                    "meta",
                    "encrypted_data",
                    "encryption_version"
                ],
                "tofu {v}: OpenTofu's field order, as sent"
            );
            let plain = client_plaintext(bytes);
            let fields = env.state_fields.expect("serial and lineage in plaintext");
            assert_eq!(
                (Some(plain.serial as i64), &plain.lineage),
                (fields.serial, &fields.lineage)
            );
        }
        let last = client_plaintext(stored.last().unwrap());
        assert_eq!(pulled["serial"].as_u64(), Some(last.serial), "tofu {v}");
        assert_eq!(
            live.send("GET", "/state/enc", None).body,
            *stored.last().unwrap(),
            "GET returns the stored envelope"
        );

        // tofu state push -force of a lower serial, then of another lineage: tofu encrypts and
        // sends them; the server reads serial and lineage from the envelope and refuses (409).
        for (name, serial, lineage) in [
            ("lower", last.serial - 1, last.lineage.clone()),
            ("other", last.serial + 10, "another-lineage".to_string()),
        ] {
            let file = format!("{name}.json");
            let plain = format!(
                "{{\"version\":4,\"terraform_version\":\"{v}\",\"serial\":{serial},\"lineage\":\"{lineage}\",\"outputs\":{{}},\"resources\":[],\"check_results\":null}}\n"
            );
            write(a.path(), &file, &plain);
            let (ok, text) = run(&tofu, a.path(), &["state", "push", "-force", &file]);
            assert!(!ok, "tofu {v} pushed {name}: {text}");
            assert!(text.contains("HTTP error: 409"), "tofu {v} {name}: {text}");
            assert_eq!(
                live.stored_versions("enc"),
                stored,
                "{name}: nothing stored"
            );
        }
    }
}

#[test]
fn require_client_encryption_refuses_a_tofu_without_encryption() {
    for tofu in Tofu::all("require_client_encryption_refuses_a_tofu_without_encryption") {
        let v = &tofu.version;
        let live = Live::start(&server_config("require_client_encryption = true"));
        let a = workdir(&live, "guarded", "");
        tofu.ok(a.path(), &["init", "-no-color"]);
        let out = tofu
            .command(a.path(), &["apply", "-auto-approve", "-no-color"])
            .env("TF_LOG", "DEBUG")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(!out.status.success(), "tofu {v}: {stdout}");
        // tofu shows only the status of a refused upload; the server's reason is in its log.
        assert!(
            stderr.contains("HTTP error: 400") || stdout.contains("HTTP error: 400"),
            "tofu {v}: {stdout}{stderr}"
        );
        assert!(
            stderr.contains("UPLOAD STATE, 400: this server requires client-side encryption"),
            "tofu {v} logs the server's message: {stderr}"
        );
        assert!(
            live.stored_versions("guarded").is_empty(),
            "nothing was written"
        );
        assert!(
            a.path().join("errored.tfstate").exists(),
            "tofu {v} kept its state"
        );
        assert_eq!(
            live.send("GET", "/state/guarded/lock", None).status,
            404,
            "tofu {v} released its lock"
        );

        let b = workdir(&live, "guarded", CLIENT_ENCRYPTION);
        tofu.ok(b.path(), &["init", "-no-color"]);
        tofu.ok(b.path(), &["apply", "-auto-approve", "-no-color"]);
        assert_eq!(live.stored_versions("guarded").len(), 1, "tofu {v}");
    }
}

/// The server's `storage "s3"` with pbkdf2 at rest: a `tofu` with `backend "s3"` on the same key
/// and the server's encryption configuration reads what the server stored, and its lock (both
/// records on 1.10+, DynamoDB on 1.8) blocks the server's clients.
#[test]
fn tofu_with_backend_s3_shares_the_servers_s3_storage() {
    let test = "tofu_with_backend_s3_shares_the_servers_s3_storage";
    let Some(peers) = Peers::aws(test) else {
        return;
    };
    for tofu in Tofu::all(test) {
        let v = &tofu.version;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let backing = rt.block_on(S3Backing::create(&peers));
        let live = Live::start_s3(&backing, &server_config(""));

        // A client of the server writes the state `team/app`.
        let http = workdir(&live, "team/app", "");
        tofu.ok(http.path(), &["init", "-no-color"]);
        tofu.ok(http.path(), &["apply", "-auto-approve", "-no-color"]);
        let served = stored_meta(&live, "team/app");

        // tofu on the bucket itself, key = the state's path, the server's encryption.
        let locks = if tofu.is_at_least("1.10") {
            format!(
                "    dynamodb_table = \"{}\"\n    use_lockfile = true\n",
                backing.table
            )
        } else {
            format!("    dynamodb_table = \"{}\"\n", backing.table)
        };
        let s3 = tempfile::tempdir().unwrap();
        write(s3.path(), "main.tf", SLOW_APPLY_TF);
        write(
            s3.path(),
            "backend.tf",
            &backing.backend_block("team/app", &locks),
        );
        write(
            s3.path(),
            "encryption.tf",
            &format!("terraform {{\n  encryption {{{PBKDF2_BODY}}}\n}}\n"),
        );
        tofu.ok(s3.path(), &["init", "-no-color"]);
        let pulled: serde_json::Value =
            serde_json::from_str(&tofu.ok(s3.path(), &["state", "pull"])).unwrap();
        assert_eq!(pulled["serial"].as_u64(), Some(served.serial), "tofu {v}");
        assert_eq!(pulled["lineage"], served.lineage.as_str());
        let greeting = tofu.ok(s3.path(), &["output", "-raw", "greeting"]);
        assert_eq!(greeting, "hello <&> world", "tofu {v}");

        // tofu's lock on the key blocks the server's client, which names tofu's lock.
        let (busy, hold) = held_apply(&tofu, s3.path());
        let holder = wait_for_lock(&live, "team/app");
        assert_eq!(holder.version, *v);
        assert_eq!(holder.path, format!("{}/team/app", backing.bucket));
        let text = refused_apply(&tofu, http.path());
        assert_names_holder(&tofu, &text, &holder.id, &holder.who);
        release_and_finish(&hold, busy);

        assert_eq!(live.send("GET", "/state/team/app/lock", None).status, 404);

        // What tofu wrote past the server (an envelope under the server's key) is served
        // decrypted to the server's clients, who go on applying; tofu reads their writes.
        let after = stored_meta(&live, "team/app");
        assert_eq!(after.lineage, served.lineage);
        assert!(after.serial > served.serial, "tofu {v}");
        tofu.ok(
            http.path(),
            &["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
        );
        assert!(stored_meta(&live, "team/app").serial > after.serial);
        // Without a lock: under load, tofu's DynamoDB PutItem can be retried after it succeeded,
        // and tofu then reports (and leaves) its own lock; the read is what is tested here.
        tofu.ok(s3.path(), &["plan", "-no-color", "-lock=false"]);
    }
}
