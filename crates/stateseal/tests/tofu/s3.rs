//! Must-show 3 of issue 18: real `tofu` and stateseal on one `backend "s3"` on moto, on the same
//! key. The Terraform interop flow (`crate::backend::interop`: same state and outputs, locks
//! exclusive both ways, a push `tofu` reads, force-unlock) run with `tofu` as the peer; the
//! workspaces (`env:/`), the DynamoDB digest, and the bytes of lock info, DynamoDB items and
//! object keys compared with what `tofu` itself wrote; and the KMS guide's configuration verbatim
//! for both side by side. `use_lockfile` exists from OpenTofu 1.10: 1.8 is tested with DynamoDB.

use md5::{Digest as _, Md5};
use serde_json::Value;
use stateseal_testkit::{release, Peers, Tofu};

use crate::backend::{interop, json, main_tf, ok, Mode, Setup};

const KEY: &str = "app/terraform.tfstate";

/// The lock mechanisms this `tofu` has: DynamoDB always, the lock file from 1.10.
fn modes(tofu: &Tofu) -> Vec<Mode> {
    if tofu.is_at_least("1.10") {
        vec![Mode::DynamoDb, Mode::LockFile, Mode::Both]
    } else {
        vec![Mode::DynamoDb]
    }
}

#[tokio::test]
async fn tofu_and_stateseal_share_state_and_exclude_each_other_on_s3() {
    let test = "tofu_and_stateseal_share_state_and_exclude_each_other_on_s3";
    let Some(peers) = Peers::aws(test) else {
        return;
    };
    let all = Tofu::all(test);
    for tofu in &all {
        for mode in modes(tofu) {
            interop(
                Setup::new(peers.clone(), mode, "")
                    .await
                    .with_tofu(tofu.clone()),
            )
            .await;
        }
    }
    assert!(all.is_empty() || all.iter().any(|t| t.is_at_least("1.10")));
}

/// Lock info as Go's `json.Marshal` writes `statemgr.LockInfo`: compact, these keys in this
/// order, `Created` RFC 3339 in UTC with trailing zeros of the fraction trimmed. Returns it parsed.
fn assert_canonical_lock_info(bytes: &[u8], path: &str, who_wrote: &str) -> Value {
    let v = json(bytes);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ID",
            "Operation",
            "Info",
            "Who",
            "Version",
            "Created",
            "Path"
        ],
        "{who_wrote}"
    );
    assert_eq!(
        serde_json::to_string(&v).unwrap().as_bytes(),
        bytes,
        "{who_wrote}: compact"
    );
    assert_eq!(v["Path"], path, "{who_wrote}");
    let created = v["Created"].as_str().unwrap();
    assert!(created.ends_with('Z'), "{who_wrote}: {created}");
    if let Some((_, frac)) = created.trim_end_matches('Z').split_once('.') {
        assert!(!frac.ends_with('0'), "{who_wrote}: {created}");
    }
    v
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Both lock records of `key` (the `.tflock` body and the DynamoDB `Info`), which must be the
/// same bytes when both mechanisms are on; `None` when there is no lock.
async fn lock_bytes(s: &Setup, key: &str) -> Option<Vec<u8>> {
    let file = s
        .peers
        .get_object(&s.bucket, &format!("{key}.tflock"))
        .await;
    let item = match &s.table {
        Some(t) => s
            .peers
            .item_attr(t, &format!("{}/{key}", s.bucket), "Info")
            .await
            .map(String::into_bytes),
        None => None,
    };
    match (file, item) {
        (Some(f), Some(i)) => {
            assert_eq!(
                f, i,
                "the lock file and the DynamoDB item hold the same info"
            );
            Some(f)
        }
        (f, i) => f.or(i),
    }
}

/// `tofu` writes two workspaces; stateseal reads both from the same keys, follows `tofu`'s
/// selected workspace, keeps the DynamoDB digest `tofu` checks, creates a workspace `tofu` uses;
/// lock records of either side have OpenTofu's bytes and block the other side.
async fn workspaces_digest_and_lock_bytes(peers: &Peers, tofu: &Tofu, mode: Mode) {
    let s = Setup::new(peers.clone(), mode, "")
        .await
        .with_tofu(tofu.clone());
    let v = &tofu.version;
    let dir = s.path();
    std::fs::write(dir.join("main.tf"), main_tf()).unwrap();
    tofu.ok(dir, &["init", "-no-color"]);
    tofu.ok(dir, &["apply", "-auto-approve", "-no-color"]);
    tofu.ok(dir, &["workspace", "new", "dev"]);
    tofu.ok(dir, &["apply", "-auto-approve", "-no-color"]);
    let dev_key = format!("env:/dev/{KEY}");
    let mut keys = s.peers.keys(&s.bucket).await;
    keys.sort();
    assert_eq!(keys, [KEY.to_string(), dev_key.clone()], "tofu {v}");

    // stateseal follows tofu's selected workspace (.terraform/environment), and --workspace.
    for (ws, key) in [("dev", dev_key.as_str()), ("default", KEY)] {
        let stored = s.peers.get_object(&s.bucket, key).await.unwrap();
        let ours = if ws == "dev" {
            ok(s.ss(&["state", "pull"]), "state pull (selected)").stdout
        } else {
            ok(s.ss(&["--workspace", ws, "state", "pull"]), "state pull").stdout
        };
        assert_eq!(ours, stored, "tofu {v} {ws}: the stored bytes, untouched");
        if let Some(t) = &s.table {
            let digest = s
                .peers
                .item_attr(t, &format!("{}/{key}-md5", s.bucket), "Digest")
                .await;
            assert_eq!(digest, Some(md5_hex(&stored)), "tofu {v} {ws}");
        }
    }
    let theirs = tofu.ok(dir, &["state", "pull"]);
    assert_eq!(
        json(&ok(s.ss(&["state", "pull"]), "pull").stdout),
        json(theirs.as_bytes())
    );
    assert_eq!(
        ok(s.ss(&["workspace", "list"]), "workspace list").text(),
        "  default\n* dev\n"
    );

    // A stateseal push in dev updates the digest: tofu reads it without a digest error.
    let current = ok(s.ss(&["state", "pull"]), "pull").stdout;
    let serial = json(&current)["serial"].as_u64().unwrap();
    let bumped = stateseal_store::state::with_serial(&current, serial + 1).unwrap();
    std::fs::write(dir.join("bumped.json"), &bumped).unwrap();
    ok(s.ss(&["state", "push", "bumped.json"]), "state push");
    let stored = s.peers.get_object(&s.bucket, &dev_key).await.unwrap();
    if let Some(t) = &s.table {
        let digest = s
            .peers
            .item_attr(t, &format!("{}/{dev_key}-md5", s.bucket), "Digest")
            .await;
        assert_eq!(
            digest,
            Some(md5_hex(&stored)),
            "tofu {v}: digest of our push"
        );
    }
    let pulled = json(tofu.ok(dir, &["state", "pull"]).as_bytes());
    assert_eq!(
        pulled["serial"].as_u64(),
        Some(serial + 2),
        "tofu {v}: the pushed serial, + 1 for the write (as `tofu state push` does)"
    );
    assert_eq!(json(&stored)["serial"], pulled["serial"]);

    // A workspace stateseal creates is one tofu lists, selects and applies to.
    ok(s.ss(&["workspace", "new", "qa"]), "workspace new");
    let listed = tofu.ok(dir, &["workspace", "list", "-no-color"]);
    assert!(listed.contains("qa"), "tofu {v}: {listed}");
    tofu.ok(dir, &["workspace", "select", "qa"]);
    tofu.ok(dir, &["apply", "-auto-approve", "-no-color"]);
    assert!(s
        .peers
        .get_object(&s.bucket, &format!("env:/qa/{KEY}"))
        .await
        .is_some());
    tofu.ok(dir, &["workspace", "select", "dev"]);

    // stateseal's lock on dev: OpenTofu's bytes, and tofu is refused naming it.
    let path = format!("{}/{dev_key}", s.bucket);
    let id = ok(s.ss(&["lock", "--operation", "maintenance"]), "lock")
        .text()
        .trim()
        .to_string();
    let ours = assert_canonical_lock_info(
        &lock_bytes(&s, &dev_key).await.expect("our lock records"),
        &path,
        "stateseal",
    );
    assert_eq!(ours["ID"], id.as_str());
    let refused = s.tf(&["plan", "-no-color", "-lock-timeout=0s"]);
    assert_ne!(refused.code, 0, "tofu {v} planned under our lock");
    assert!(
        refused.stderr.contains("Error acquiring the state lock") && refused.stderr.contains(&id),
        "tofu {v}: {}",
        refused.stderr
    );
    ok(s.ss(&["unlock", &id]), "unlock");
    assert!(lock_bytes(&s, &dev_key).await.is_none());

    // tofu's lock on dev: the same shape, and stateseal is refused naming it.
    let hold = dir.join("release-apply");
    let hold_var = format!("hold_until={}", hold.display());
    let mut busy = tofu.spawn(
        dir,
        &["apply", "-auto-approve", "-no-color", "-var", &hold_var],
    );
    let theirs = wait_for(|| lock_bytes(&s, &dev_key)).await;
    let theirs = assert_canonical_lock_info(&theirs, &path, &format!("tofu {v}"));
    assert_eq!(theirs["Version"], v.as_str());
    assert_eq!(theirs["Operation"], "OperationTypeApply");
    let refused = s.ss(&["lock"]);
    assert_eq!(refused.code, 6, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(theirs["ID"].as_str().unwrap()),
        "{}",
        refused.stderr
    );
    release(&hold);
    assert!(busy.wait().unwrap().success());
    assert!(lock_bytes(&s, &dev_key).await.is_none());
}

/// Polls `f` until it returns something (generously bounded: `tofu` starts in a second or two).
async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(f: impl Fn() -> F) -> T {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(std::time::Instant::now() < end, "timed out");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tofu_workspaces_digest_and_lock_bytes_match_stateseal() {
    let test = "tofu_workspaces_digest_and_lock_bytes_match_stateseal";
    let Some(peers) = Peers::aws(test) else {
        return;
    };
    for tofu in Tofu::all(test) {
        let mode = if tofu.is_at_least("1.10") {
            Mode::Both
        } else {
            Mode::DynamoDb
        };
        workspaces_digest_and_lock_bytes(&peers, &tofu, mode).await;
    }
}

/// The KMS guide's configuration verbatim (`crate::guide_s3_variables::MAIN_TF`: variables in the
/// backend block from `TF_VAR_*`, `assume_role` in both blocks), plus one resource: `tofu` applies,
/// stateseal reads the state and outputs, pushes a state `tofu` plans against without changes,
/// and each side's lock blocks the other.
#[cfg(feature = "aws-kms")]
#[tokio::test]
async fn the_kms_guide_configuration_works_for_tofu_and_stateseal_side_by_side() {
    use crate::guide_s3_variables::{Guide, GUIDE_OBJECT_KEY, MAIN_TF};
    let test = "the_kms_guide_configuration_works_for_tofu_and_stateseal_side_by_side";
    let Some(peers) = Peers::aws(test) else {
        return;
    };
    for tofu in Tofu::all(test) {
        let v = &tofu.version;
        let guide = Guide::create(&peers).await;
        let vars = guide.vars();
        let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tf"), MAIN_TF).unwrap();
        std::fs::write(
            dir.path().join("app.tf"),
            "resource \"terraform_data\" \"app\" {\n  input = \"v1\"\n}\noutput \"app\" {\n  value = terraform_data.app.output\n}\n",
        )
        .unwrap();
        let tf = |args: &[&str]| {
            let out = tofu.output(dir.path(), args, |c| {
                c.envs(env.iter().copied());
            });
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        let tf_ok = |args: &[&str]| {
            let (code, text) = tf(args);
            assert_eq!(code, 0, "tofu {v} {args:?}:\n{text}");
            text
        };
        let ss_ok = |args: &[&str]| super::stateseal_ok(dir.path(), &with_aws(&env), args);

        tf_ok(&["init", "-no-color"]);
        tf_ok(&["apply", "-auto-approve", "-no-color"]);
        let stored = peers
            .get_object(&guide.bucket, GUIDE_OBJECT_KEY)
            .await
            .expect("tofu wrote the key built from var.project");
        let meta = &stateseal_encryption::envelope::Envelope::parse(&stored)
            .unwrap_or_else(|e| panic!("tofu {v} wrote an envelope: {e:?}"))
            .meta;
        assert!(meta.contains_key("key_provider.aws_kms.main"), "tofu {v}");

        // stateseal reads what tofu wrote: state = tofu state pull, outputs = tofu output.
        let (_, theirs) = tf(&["state", "pull"]);
        let theirs: Value = serde_json::from_str(&theirs).unwrap();
        let ours = json(&ss_ok(&["state", "pull"]).stdout);
        assert_eq!(ours, theirs, "tofu {v}");
        let outputs = json(&ss_ok(&["outputs", "--json"]).stdout);
        assert_eq!(outputs["app"]["value"], "v1", "tofu {v}");

        // stateseal pushes (serial + 1); tofu reads it through KMS and plans no changes.
        let bumped = stateseal_store::state::with_serial(
            &ss_ok(&["state", "pull"]).stdout,
            theirs["serial"].as_u64().unwrap() + 1,
        )
        .unwrap();
        std::fs::write(dir.path().join("bumped.json"), &bumped).unwrap();
        ss_ok(&["state", "push", "bumped.json"]);
        assert_ne!(
            peers
                .get_object(&guide.bucket, GUIDE_OBJECT_KEY)
                .await
                .unwrap(),
            stored
        );
        let (code, plan) = tf(&["plan", "-no-color", "-detailed-exitcode"]);
        assert_eq!(code, 0, "tofu {v}: no changes after our push:\n{plan}");

        // stateseal's lock (in the table var.lock_table_arn names) blocks tofu.
        let id = ss_ok(&["lock"]).text().trim().to_string();
        let (code, text) = tf(&["plan", "-no-color", "-lock-timeout=0s"]);
        assert!(code != 0 && text.contains(&id), "tofu {v}:\n{text}");
        ss_ok(&["unlock", &id]);
        let lock_id = format!("{}/{GUIDE_OBJECT_KEY}", guide.bucket);
        assert!(peers
            .item_attr(&guide.table, &lock_id, "Info")
            .await
            .is_none());
        tf_ok(&["plan", "-no-color", "-lock-timeout=0s"]);
    }
}

/// `env` plus the test credentials (stateseal resolves AWS credentials as the SDK does).
#[cfg(feature = "aws-kms")]
fn with_aws<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = env.to_vec();
    all.extend([
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    all
}

/// `use_lockfile` exists from OpenTofu 1.10 (BACKENDS.md §0): an older `tofu` refuses the
/// attribute at `init`, so a 1.8 peer can only share DynamoDB locks with stateseal.
#[tokio::test]
async fn use_lockfile_is_refused_before_tofu_1_10() {
    let test = "use_lockfile_is_refused_before_tofu_1_10";
    let Some(peers) = Peers::aws(test) else {
        return;
    };
    for tofu in Tofu::all(test) {
        let s = Setup::new(peers.clone(), Mode::LockFile, "")
            .await
            .with_tofu(tofu.clone());
        let init = s.tf(&["init", "-no-color"]);
        let text = format!("{}{}", init.text(), init.stderr);
        if tofu.is_at_least("1.10") {
            assert_eq!(init.code, 0, "tofu {}: {text}", tofu.version);
        } else {
            assert_ne!(init.code, 0, "tofu {}: {text}", tofu.version);
            assert!(
                text.contains("use_lockfile") && text.contains("Unsupported argument"),
                "tofu {}: {text}",
                tofu.version
            );
        }
    }
}
