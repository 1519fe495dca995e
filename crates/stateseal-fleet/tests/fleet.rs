//! The fleet operations against moto: discovery and audit of 300 states in three groups across
//! two workspaces, rekey onto the primary (locked state skipped, re-runs finish the job, the
//! derivation count), and lock listing and breaking, including a lock re-acquired between the
//! listing and the delete.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stateseal_encryption::load::{self, Options};
use stateseal_encryption::{Encryption, Registry, Status};
use stateseal_fleet::audit::{self, Class, Requirement};
use stateseal_fleet::locks::{self, BreakOutcome, LockSource};
use stateseal_fleet::rekey::{self, Outcome};
use stateseal_fleet::Fleet;
use stateseal_store::lock_info::GoTime;
use stateseal_store::s3::{DigestStatus, S3Builder, S3Store, Versioning};
use stateseal_store::{LockInfo, PutMode, Store, DEFAULT_WORKSPACE};
use stateseal_testkit::{unique, Peers};
use tokio::task::JoinSet;

const OLD: &str = "key_provider \"pbkdf2\" \"old\" { passphrase = \"the old passphrase, 2019\" }\nmethod \"aes_gcm\" \"old\" { keys = key_provider.pbkdf2.old }\n";
const NEW: &str = "key_provider \"pbkdf2\" \"new\" { passphrase = \"the brand new passphrase, 2026\" }\nmethod \"aes_gcm\" \"new\" { keys = key_provider.pbkdf2.new }\nmethod \"unencrypted\" \"migrate\" {}\n";

/// The encryption configured by `body` (an encryption block's content), freshly loaded (its
/// own key cache and primary key).
fn encryption(body: &str) -> Arc<Encryption> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        format!("terraform {{\n  encryption {{\n{body}\n  }}\n}}\n"),
    )
    .unwrap();
    let opts = Options {
        dir: dir.path().to_path_buf(),
        workspace: "default".into(),
        ..Options::default()
    };
    load::load(&opts, Registry::default(), &|_| None)
        .unwrap_or_else(|e| panic!("configuration: {e:?}"))
        .encryption
}

/// Writes with the old passphrase only.
pub(crate) fn old_config() -> Arc<Encryption> {
    encryption(&format!("{OLD}state {{ method = method.aes_gcm.old }}"))
}

/// The primary is the new passphrase; the old one and plaintext are read as fallbacks.
fn new_config() -> Arc<Encryption> {
    encryption(&format!(
        "{OLD}{NEW}state {{\n method = method.aes_gcm.new\n fallback {{\n method = method.aes_gcm.old\n fallback {{ method = method.unencrypted.migrate }}\n }}\n}}"
    ))
}

fn derivations(e: &Encryption) -> u64 {
    e.key_provider_calls().values().sum()
}

async fn s3(peers: &Peers, bucket: &str, table: &str, lockfile: bool) -> S3Store {
    s3_with(peers, bucket, Some(table), lockfile, &[]).await
}

/// A store on moto with `extra` `--backend-config` settings over the test ones.
pub(crate) async fn s3_with(
    peers: &Peers,
    bucket: &str,
    table: Option<&str>,
    lockfile: bool,
    extra: &[String],
) -> S3Store {
    let mut b = S3Builder::new();
    for kv in peers.s3_backend_config(bucket, "unused", table, lockfile) {
        b = b.with_backend_config(&kv);
    }
    b = b.with_backend_config("skip_credentials_validation=true");
    for kv in extra {
        b = b.with_backend_config(kv);
    }
    S3Store::connect(b.build_config(&|_| None).unwrap())
        .await
        .unwrap()
}

pub(crate) fn plain_state(i: usize) -> Vec<u8> {
    format!(
        "{{\"version\":4,\"terraform_version\":\"1.9.0\",\"serial\":{},\"lineage\":\"lineage-{i}\",\"outputs\":{{\"n\":{{\"value\":{i},\"type\":\"number\"}}}},\"resources\":[]}}\n",
        i + 3
    )
    .into_bytes()
}

/// Group of state `i`: 0 plaintext, 1 old passphrase (fallback), 2 primary.
fn key_of(i: usize) -> String {
    let rel = format!("fleet/g{}/s{i}/terraform.tfstate", i % 3);
    if i % 2 == 0 {
        rel
    } else {
        format!("env:/blue/{rel}")
    }
}

/// Writes the 300 states (16 puts at a time) and returns their keys.
async fn seed(store: &S3Store, n: usize) -> Vec<String> {
    let (old_a, old_b, new) = (old_config(), old_config(), new_config());
    let mut set = JoinSet::new();
    let mut keys = Vec::new();
    for i in 0..n {
        let key = key_of(i);
        keys.push(key.clone());
        let plain = plain_state(i);
        let bytes = match i % 3 {
            0 => plain,
            // Two old runs: two distinct salts among the fallback states.
            1 if i < n / 2 => old_a.state().encrypt_state(&plain).unwrap(),
            1 => old_b.state().encrypt_state(&plain).unwrap(),
            _ => new.state().encrypt_state(&plain).unwrap(),
        };
        let s = store.for_key(&key);
        set.spawn(async move {
            s.put(DEFAULT_WORKSPACE, Bytes::from(bytes), PutMode::Overwrite)
                .await
                .unwrap()
        });
        if set.len() >= 16 {
            set.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_then_rekey_300_states_across_two_workspaces() {
    let Some(peers) = Peers::aws("audit_then_rekey_300_states_across_two_workspaces") else {
        return;
    };
    let (bucket, table) = (unique("fleet"), unique("fleet-locks"));
    peers.mkbucket(&bucket, true).await;
    peers.mktable(&table).await;
    let store = s3(&peers, &bucket, &table, false).await;
    let keys = seed(&store, 300).await;
    // Not states: a lock file and a plan file; and something outside the prefix.
    peers
        .put_object(&bucket, "fleet/g0/extra/terraform.tfstate.tflock", b"{}")
        .await;
    peers
        .put_object(&bucket, "fleet/plans/app.tfplan", b"PK\x03\x04 a plan")
        .await;
    peers
        .put_object(&bucket, "elsewhere/terraform.tfstate", &plain_state(999))
        .await;
    let fleet = Fleet::new(store.clone(), "fleet/");
    let opts = audit::Options {
        decrypt: false,
        concurrency: 8,
    };

    let report = audit::audit(&fleet, new_config(), &opts, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        audit::Summary {
            states: 300,
            plaintext: 100,
            primary: 100,
            fallback: 100,
            unknown: 0,
            locked: 0
        }
    );
    assert_eq!(
        report.lock_files,
        ["fleet/g0/extra/terraform.tfstate.tflock"]
    );
    assert_eq!(report.plans, ["fleet/plans/app.tfplan"]);
    assert_eq!(
        report
            .states
            .iter()
            .filter(|s| s.workspace == "blue")
            .count(),
        150
    );
    let mut offenders: Vec<&str> = report
        .violations(&[Requirement::Primary])
        .iter()
        .map(|(s, _)| s.key.as_str())
        .collect();
    offenders.sort();
    let mut expected: Vec<&str> = (0..300)
        .filter(|i| i % 3 != 2)
        .map(|i| keys[i].as_str())
        .collect();
    expected.sort();
    assert_eq!(offenders, expected);
    assert_eq!(report.violations(&[Requirement::Encrypted]).len(), 100);
    // The JSON shape CI gates depend on.
    let json = serde_json::to_value(&report).unwrap();
    for k in ["bucket", "prefix", "states", "bucket_checks", "summary"] {
        assert!(json.get(k).is_some(), "{k} missing");
    }
    let s0 = &json["states"][0];
    for k in [
        "key",
        "workspace",
        "encryption",
        "key_providers",
        "sse",
        "sse_kms_key_id",
        "serial",
        "lineage",
        "size",
        "versions",
        "lock",
        "digest",
    ] {
        assert!(s0.get(k).is_some(), "states[].{k} missing");
    }
    let old_state = report.states.iter().find(|s| s.key == keys[1]).unwrap();
    assert_eq!(old_state.encryption, Class::Fallback);
    assert_eq!(old_state.key_providers[0].key, "key_provider.pbkdf2.old");
    assert_eq!(old_state.digest, DigestStatus::Match);
    assert_eq!(
        report.bucket_checks.versioning,
        Some(Versioning::Enabled),
        "{:?}",
        report.bucket_checks
    );
    assert_eq!(report.bucket_checks.lock_table_exists, Some(true));

    // Someone holds the lock of one fallback state during the run: it is skipped, untouched.
    let held_key = keys[4].clone();
    let held_store = store.for_key(&held_key);
    let holder = held_store
        .lock(DEFAULT_WORKSPACE, LockInfo::new("OperationTypeApply"))
        .await
        .unwrap();
    let held_before = held_store.get(DEFAULT_WORKSPACE).await.unwrap().bytes;

    // A dry run changes nothing.
    let dry = rekey::rekey(
        &fleet,
        new_config(),
        &rekey::Options {
            apply: false,
            concurrency: 8,
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (dry.summary.planned, dry.summary.already_primary),
        (200, 100)
    );

    let enc = new_config();
    let mut finished = 0;
    let run = rekey::rekey(
        &fleet,
        enc.clone(),
        &rekey::Options {
            apply: true,
            concurrency: 8,
        },
        &mut |e| finished += usize::from(matches!(e, stateseal_fleet::Event::Finished { .. })),
    )
    .await
    .unwrap();
    assert_eq!(finished, 300);
    assert_eq!(
        run.summary,
        rekey::Summary {
            states: 300,
            planned: 0,
            rekeyed: 199,
            already_primary: 100,
            skipped_locked: 1,
            failed: 0
        },
        "{:#?}",
        run.states
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed(_)))
            .take(3)
            .collect::<Vec<_>>()
    );
    let skipped = run.states.iter().find(|s| s.key == held_key).unwrap();
    assert!(
        matches!(&skipped.outcome, Outcome::SkippedLocked(h) if h.id == holder.id),
        "{skipped:?}"
    );
    // Derivations: the two old salts read, plus one encryption key for the whole run.
    assert_eq!(derivations(&enc), 2 + 1, "{:?}", enc.key_provider_calls());
    assert_eq!(
        held_store.get(DEFAULT_WORKSPACE).await.unwrap().bytes,
        held_before
    );

    // Every state decrypts with the primary, with its serial and lineage unchanged.
    let check = new_config();
    for (i, key) in keys.iter().enumerate() {
        let obj = store.for_key(key).get(DEFAULT_WORKSPACE).await.unwrap();
        let (plain, status) = check.state().decrypt_state(&obj.bytes).unwrap();
        assert_eq!(plain, plain_state(i), "{key}");
        let expect = if *key == held_key {
            Status::Migration
        } else {
            Status::Satisfied
        };
        assert_eq!(status, expect, "{key}");
    }
    let after = audit::audit(&fleet, new_config(), &opts, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((after.summary.primary, after.summary.fallback), (299, 1));
    assert_eq!(after.summary.locked, 1);
    let offenders = after.violations(&[Requirement::Primary]);
    assert_eq!(offenders.len(), 1);
    assert_eq!(offenders[0].0.key, held_key);

    // Once released, a re-run rekeys only that one; a third run has nothing to do.
    held_store
        .unlock(DEFAULT_WORKSPACE, &holder.id)
        .await
        .unwrap();
    let apply = rekey::Options {
        apply: true,
        concurrency: 8,
    };
    let second = rekey::rekey(&fleet, new_config(), &apply, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (second.summary.rekeyed, second.summary.already_primary),
        (1, 299)
    );
    let third = rekey::rekey(&fleet, new_config(), &apply, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (third.summary.rekeyed, third.summary.already_primary),
        (0, 300)
    );
    let last = audit::audit(&fleet, new_config(), &opts, &mut |_| {})
        .await
        .unwrap();
    assert!(last.violations(&[Requirement::Primary]).is_empty());
}

/// Rekey writes the bytes discovery read only if they are still what is stored: a state
/// rewritten between discovery and the lock is read again under the lock, and its new content
/// is what gets rekeyed (the older read is never written over it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_changed_after_discovery_is_read_again_and_nothing_is_lost() {
    let Some(peers) =
        Peers::aws("a_state_changed_after_discovery_is_read_again_and_nothing_is_lost")
    else {
        return;
    };
    let (bucket, table) = (unique("fleet-race"), unique("fleet-race-locks"));
    peers.mkbucket(&bucket, true).await;
    peers.mktable(&table).await;
    let store = s3(&peers, &bucket, &table, false).await;
    let old = old_config();
    let keys: Vec<String> = (0..3)
        .map(|i| format!("race/s{i}/terraform.tfstate"))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        let bytes = old.state().encrypt_state(&plain_state(i)).unwrap();
        store
            .for_key(key)
            .put(DEFAULT_WORKSPACE, Bytes::from(bytes), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let fleet = Fleet::new(store.clone(), "race/");
    let changed = store.for_key(&keys[1]);
    let newer = plain_state(100);
    let rewrite = old.state().encrypt_state(&newer).unwrap();
    let apply = rekey::Options {
        apply: true,
        concurrency: 2,
    };
    // `Started` comes after discovery has read every state and before any is locked.
    let run = rekey::rekey(&fleet, new_config(), &apply, &mut |e| {
        if matches!(e, stateseal_fleet::Event::Started { .. }) {
            let (changed, bytes) = (changed.clone(), Bytes::from(rewrite.clone()));
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    changed
                        .put(DEFAULT_WORKSPACE, bytes, PutMode::Overwrite)
                        .await
                        .unwrap()
                })
            });
        }
    })
    .await
    .unwrap();
    assert_eq!(
        (run.summary.rekeyed, run.summary.failed),
        (3, 0),
        "{:#?}",
        run.states
    );
    let check = new_config();
    for (i, key) in keys.iter().enumerate() {
        let obj = store.for_key(key).get(DEFAULT_WORKSPACE).await.unwrap();
        let (plain, status) = check.state().decrypt_state(&obj.bytes).unwrap();
        let want = if i == 1 {
            newer.clone()
        } else {
            plain_state(i)
        };
        assert_eq!(plain, want, "{key}");
        assert_eq!(status, Status::Satisfied, "{key}");
    }
}

fn aged(operation: &str, secs_ago: i64) -> LockInfo {
    let mut info = LockInfo::new(operation);
    info.created = GoTime {
        unix: GoTime::now().unix - secs_ago,
        ..GoTime::now()
    };
    info
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_are_listed_and_only_unchanged_stale_ones_broken() {
    let Some(peers) = Peers::aws("locks_are_listed_and_only_unchanged_stale_ones_broken") else {
        return;
    };
    let (bucket, table) = (unique("fleet-locks"), unique("fleet-locks"));
    peers.mkbucket(&bucket, true).await;
    peers.mktable(&table).await;
    let store = s3(&peers, &bucket, &table, true).await;
    let fleet = Fleet::new(store.clone(), "");
    let keys = [
        "a/terraform.tfstate",
        "b/terraform.tfstate",
        "c/terraform.tfstate",
        "env:/dev/d/terraform.tfstate",
    ];
    for (i, k) in keys.iter().enumerate() {
        store
            .for_key(k)
            .put(
                DEFAULT_WORKSPACE,
                Bytes::from(plain_state(i)),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
    }
    // a: stale (both records); b: fresh; c and d: stale, but re-acquired after the listing.
    let mut held = Vec::new();
    for (k, age) in [
        (keys[0], 7200),
        (keys[1], 5),
        (keys[2], 7200),
        (keys[3], 7200),
    ] {
        held.push(
            store
                .for_key(k)
                .lock(DEFAULT_WORKSPACE, aged("OperationTypeApply", age))
                .await
                .unwrap(),
        );
    }
    let listed = locks::list(&fleet).await.unwrap();
    assert_eq!(listed.len(), 8, "{listed:#?}");
    let ddb = listed
        .iter()
        .filter(|l| l.source == LockSource::Dynamodb)
        .count();
    assert_eq!(ddb, 4);
    let d = listed.iter().find(|l| l.state == keys[3]).unwrap();
    assert_eq!(d.workspace, "dev");
    assert_eq!(d.id.as_deref(), Some(held[3].id.as_str()));
    assert!(d.age_seconds.unwrap() >= 7200);

    // The dry run breaks nothing.
    let dry = locks::break_stale(&fleet, listed.clone(), Duration::from_secs(3600), false).await;
    assert_eq!(
        dry.iter()
            .filter(|b| b.outcome == BreakOutcome::WouldBreak)
            .count(),
        6
    );
    assert_eq!(locks::list(&fleet).await.unwrap().len(), 8);

    // Between the listing and the delete, c and d are released and re-acquired by someone
    // else (a new holder with the same old-looking age: only the record differs).
    let mut again = Vec::new();
    for (i, k) in [(2, keys[2]), (3, keys[3])] {
        let s = store.for_key(k);
        s.unlock(DEFAULT_WORKSPACE, &held[i].id).await.unwrap();
        again.push(
            s.lock(DEFAULT_WORKSPACE, aged("OperationTypePlan", 7200))
                .await
                .unwrap(),
        );
    }
    let broken = locks::break_stale(&fleet, listed, Duration::from_secs(3600), true).await;
    for b in &broken {
        let expected = if b.lock.state == keys[0] {
            "broken"
        } else if b.lock.state == keys[1] {
            "fresh"
        } else {
            "changed"
        };
        let got = match &b.outcome {
            BreakOutcome::Broken => "broken",
            BreakOutcome::Fresh => "fresh",
            BreakOutcome::Changed(_) => "changed",
            other => panic!("{other:?}"),
        };
        assert_eq!(got, expected, "{:?} {:?}", b.lock.state, b.lock.source);
    }
    // a is free; b, c and d are still held, c and d by their new holders.
    assert_eq!(
        store
            .for_key(keys[0])
            .lock_holder(DEFAULT_WORKSPACE)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .for_key(keys[1])
            .lock_holder(DEFAULT_WORKSPACE)
            .await
            .unwrap()
            .unwrap()
            .id,
        held[1].id
    );
    for (i, k) in [keys[2], keys[3]].iter().enumerate() {
        assert_eq!(
            store
                .for_key(k)
                .lock_holder(DEFAULT_WORKSPACE)
                .await
                .unwrap()
                .unwrap()
                .id,
            again[i].id
        );
    }
    // The digest items are untouched, so every state still reads.
    for k in keys {
        assert!(peers
            .item_attr(&table, &format!("{bucket}/{k}-md5"), "Digest")
            .await
            .is_some());
        store.for_key(k).get(DEFAULT_WORKSPACE).await.unwrap();
    }
}
