//! The hardened backend against moto: `bootstrap` applied twice (the second run changes
//! nothing; what it made is read back with boto3), an existing bucket without versioning fixed
//! without losing an object or a policy statement (and drift reported, not "fixed"); the SSE
//! migration by self-copy (SSE-S3 → SSE-KMS, bytes and digests unchanged, previous versions
//! kept, a locked state skipped) and its rollback; `verify` of key, key provider and digest;
//! drift (another default key, a table without our key) reported and left alone; no KMS key.

use bytes::Bytes;
use serde_json::Value;
use stateseal_encryption::Encryption;
use stateseal_fleet::bootstrap::{self, Action, KmsKey, Spec};
use stateseal_fleet::sse::{self, Outcome, Target};
use stateseal_fleet::verify::{self, Expect};
use stateseal_fleet::Fleet;
use stateseal_store::s3::S3Store;
use stateseal_store::{LockInfo, PutMode, Store, DEFAULT_WORKSPACE};
use stateseal_testkit::{unique, Peers};

use crate::fleet::{old_config, plain_state, s3_with};

const DEPLOY: &str = "arn:aws:iam::123456789012:role/deploy";

/// boto3 (scripts/peers/aws.py) against the test's moto: an independent client.
fn aws(peers: &Peers, args: &[&str]) -> String {
    let mut all = vec!["scripts/peers/aws.py", "--endpoint", peers.endpoint()];
    all.extend_from_slice(args);
    peers.python_out(&all)
}

fn aws_json(peers: &Peers, args: &[&str]) -> Value {
    serde_json::from_str(&aws(peers, args)).unwrap()
}

/// A store on moto that also reaches moto's KMS (bootstrap creates keys).
async fn with_kms(peers: &Peers, bucket: &str, table: Option<&str>, extra: &[&str]) -> S3Store {
    let e = peers.endpoint();
    let mut settings = vec![format!(
        "endpoints={{s3=\"{e}\", dynamodb=\"{e}\", sts=\"{e}\", kms=\"{e}\"}}"
    )];
    settings.extend(extra.iter().map(|s| s.to_string()));
    s3_with(peers, bucket, table, false, &settings).await
}

fn actions(r: &bootstrap::Report) -> Vec<(String, Action)> {
    r.steps
        .iter()
        .map(|s| (format!("{} {}", s.resource, s.setting), s.action))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_applied_twice_creates_everything_once() {
    let Some(peers) = Peers::aws("bootstrap_applied_twice_creates_everything_once") else {
        return;
    };
    let bucket = unique("boot");
    let table = format!("{bucket}-locks");
    let alias = bootstrap::default_alias(&bucket);
    let store = with_kms(&peers, &bucket, None, &[]).await;
    let spec = Spec {
        kms: KmsKey::New {
            alias: alias.clone(),
        },
        table: Some(table.clone()),
        lockfile: true,
        principals: vec![DEPLOY.into()],
        state_key: "app/terraform.tfstate".into(),
        dr_region: None,
    };

    // The dry run plans everything and makes nothing.
    let dry = bootstrap::bootstrap(&store, &spec, false).await.unwrap();
    assert_eq!(dry.summary.drift, 0, "{:#?}", dry.steps);
    assert_eq!(dry.summary.ok, 0, "{:#?}", dry.steps);
    assert_eq!(dry.summary.changes(), 10, "{:#?}", dry.steps);
    let s3 = peers.s3().await;
    assert!(s3.head_bucket().bucket(&bucket).send().await.is_err());

    let first = bootstrap::bootstrap(&store, &spec, true).await.unwrap();
    assert_eq!(
        (first.summary.changes(), first.summary.drift),
        (10, 0),
        "{:#?}",
        first.steps
    );
    let arn = first.kms_key_arn.clone().expect("a key ARN");
    let second = bootstrap::bootstrap(&store, &spec, true).await.unwrap();
    assert_eq!(
        (second.summary.changes(), second.summary.drift),
        (0, 0),
        "{:#?}",
        second.steps
    );
    assert_eq!(second.kms_key_arn.as_deref(), Some(arn.as_str()));
    assert!(actions(&second).iter().all(|(_, a)| *a == Action::Ok));

    // What exists, read back with boto3.
    let got = aws_json(
        &peers,
        &["readback", &bucket, "--alias", &alias, "--table", &table],
    );
    assert_eq!(got["versioning"], "Enabled");
    let enc = &got["encryption"];
    assert_eq!(
        enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "aws:kms"
    );
    assert_eq!(
        enc["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"],
        arn.as_str()
    );
    assert_eq!(enc["BucketKeyEnabled"], true);
    for k in [
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(got["public_access_block"][k], true, "{k}");
    }
    let tls = &got["policy"]["Statement"][0];
    assert_eq!(tls["Effect"], "Deny");
    assert_eq!(tls["Condition"]["Bool"]["aws:SecureTransport"], "false");
    let key = &got["key"];
    assert_eq!(key["arn"], arn.as_str());
    assert_eq!(key["rotation"], true);
    assert_eq!(key["aliases"], serde_json::json!([alias]));
    let statements = key["policy"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(
        statements[0]["Principal"]["AWS"],
        "arn:aws:iam::123456789012:root"
    );
    assert_eq!(statements[0]["Action"], "kms:*");
    assert_eq!(
        statements[1]["Principal"]["AWS"],
        serde_json::json!([DEPLOY])
    );
    assert_eq!(
        statements[1]["Action"],
        serde_json::json!(bootstrap::DEPLOY_KEY_ACTIONS)
    );
    let t = &got["table"];
    assert_eq!(
        t["key_schema"],
        serde_json::json!([{"AttributeName": "LockID", "KeyType": "HASH"}])
    );
    assert_eq!(
        t["attribute_definitions"],
        serde_json::json!([{"AttributeName": "LockID", "AttributeType": "S"}])
    );
    assert_eq!(t["billing_mode"], "PAY_PER_REQUEST");
    assert_eq!(t["sse"]["SSEType"], "KMS");
    assert_eq!(t["sse"]["KMSMasterKeyArn"], arn.as_str());
    assert_eq!(t["pitr"], "ENABLED");

    // The blocks to paste: the key by ARN, both lock mechanisms.
    let block = &first.backend_block;
    for want in [
        format!("kms_key_id     = \"{arn}\""),
        format!("dynamodb_table = \"{table}\""),
        "use_lockfile   = true".to_string(),
        "key            = \"app/terraform.tfstate\"".to_string(),
    ] {
        assert!(block.contains(&want), "{want} in\n{block}");
    }
    assert!(!block.contains("alias/"), "{block}");
    assert!(first.encryption_block.contains(&arn));
    let policy = first.iam_policy.to_string();
    for want in [
        format!("arn:aws:s3:::{bucket}/*"),
        format!("table/{table}"),
        arn.clone(),
    ] {
        assert!(policy.contains(&want), "{want} in {policy}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_bucket_is_fixed_without_losing_anything() {
    let Some(peers) = Peers::aws("an_existing_bucket_is_fixed_without_losing_anything") else {
        return;
    };
    let bucket = unique("boot-old");
    peers.mkbucket(&bucket, false).await;
    let objects: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("team{i}/terraform.tfstate"), plain_state(i)))
        .collect();
    for (k, b) in &objects {
        peers.put_object(&bucket, k, b).await;
    }
    let theirs = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "TheirsKeepBucket", "Effect": "Deny", "Principal": "*",
        "Action": "s3:DeleteBucket", "Resource": format!("arn:aws:s3:::{bucket}")}]});
    peers
        .s3()
        .await
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(theirs.to_string())
        .send()
        .await
        .unwrap();
    // An existing key with moto's default policy (root only): no rotation, no deploy principal.
    let arn = aws(&peers, &["mkkey", &unique("boot-existing")]);
    let store = with_kms(&peers, &bucket, None, &[]).await;
    let spec = Spec {
        kms: KmsKey::Existing(arn.clone()),
        table: None,
        lockfile: true,
        principals: vec![DEPLOY.into()],
        state_key: "terraform.tfstate".into(),
        dr_region: None,
    };

    let dry = bootstrap::bootstrap(&store, &spec, false).await.unwrap();
    let plan = actions(&dry);
    for (what, action) in [
        ("bucket versioning", Action::Change),
        ("kms key rotation", Action::Change),
        ("kms key key policy", Action::Drift),
        ("bucket default encryption", Action::Change),
        ("bucket TLS-only policy", Action::Change),
    ] {
        assert!(
            plan.contains(&(what.to_string(), action)),
            "{what}: {plan:#?}"
        );
    }
    let drift = dry
        .steps
        .iter()
        .find(|s| s.action == Action::Drift)
        .unwrap();
    assert!(
        drift.detail.contains(&format!("{DEPLOY} lacks")),
        "{drift:?}"
    );
    // Nothing was written by the dry run.
    let before = aws_json(&peers, &["readback", &bucket]);
    assert_eq!(before["versioning"], Value::Null);
    assert_eq!(before["encryption"], Value::Null);

    let applied = bootstrap::bootstrap(&store, &spec, true).await.unwrap();
    assert_eq!(applied.summary.drift, 1, "{:#?}", applied.steps);
    let after = aws_json(&peers, &["readback", &bucket]);
    assert_eq!(after["versioning"], "Enabled");
    let statements = after["policy"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{statements:?}");
    assert_eq!(
        statements[0], theirs["Statement"][0],
        "their statement is kept"
    );
    assert_eq!(statements[1]["Sid"], "DenyInsecureTransport");
    // The key policy is never widened: the drift stays, and is all that is reported.
    let again = bootstrap::bootstrap(&store, &spec, true).await.unwrap();
    assert_eq!(
        (again.summary.changes(), again.summary.drift),
        (0, 1),
        "{:#?}",
        again.steps
    );
    // moto serves plain HTTP and evaluates the TLS-only policy, so it now denies reading the
    // objects, as AWS would; without the policy, every object is there, unchanged.
    assert_eq!(peers.get_object(&bucket, &objects[0].0).await, None);
    peers.delete_bucket_policy(&bucket).await;
    for (k, b) in &objects {
        assert_eq!(peers.get_object(&bucket, k).await.as_ref(), Some(b), "{k}");
    }
    let key = aws_json(&peers, &["readback", &bucket, "--alias", &arn]);
    assert_eq!(key["key"]["rotation"], true);
    assert!(!key["key"]["policy"].to_string().contains(DEPLOY));
}

/// HeadObject's SSE and KMS key, through the SDK directly (not stateseal's code).
async fn head(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> (Option<String>, Option<String>) {
    let h = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    (
        h.server_side_encryption().map(|s| s.as_str().to_string()),
        h.ssekms_key_id().map(String::from),
    )
}

/// The versions of exactly `key`.
async fn versions(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> usize {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_migration_to_kms_and_back_keeps_bytes_versions_and_digests() {
    let Some(peers) = Peers::aws("sse_migration_to_kms_and_back_keeps_bytes_versions_and_digests")
    else {
        return;
    };
    let (bucket, table) = (unique("sse"), unique("sse-locks"));
    peers.mkbucket(&bucket, true).await;
    peers.mktable(&table).await;
    // Written like a backend with `encrypt = true` and no key: SSE-S3.
    let store = with_kms(&peers, &bucket, Some(&table), &["encrypt=true"]).await;
    let s3 = peers.s3().await;
    let old = old_config();
    const N: usize = 24;
    let keys: Vec<String> = (0..N)
        .map(|i| match i % 2 {
            0 => format!("svc{i}/terraform.tfstate"),
            _ => format!("env:/blue/svc{i}/terraform.tfstate"),
        })
        .collect();
    let mut stored = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let bytes = match i % 3 {
            0 => old.state().encrypt_state(&plain_state(i)).unwrap(),
            _ => plain_state(i),
        };
        store
            .for_key(k)
            .put(
                DEFAULT_WORKSPACE,
                Bytes::from(bytes.clone()),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        stored.push(bytes);
    }
    assert_eq!(
        head(&s3, &bucket, &keys[0]).await.0.as_deref(),
        Some("AES256")
    );
    let arn = aws(&peers, &["mkkey", &unique("sse")]);
    let fleet = Fleet::new(store.clone(), "");
    let to_kms = Target::Kms(arn.clone());
    let opts = |apply| sse::Options {
        apply,
        concurrency: 4,
    };
    // One state is in use.
    let held = store.for_key(&keys[5]);
    let holder = held
        .lock(DEFAULT_WORKSPACE, LockInfo::new("OperationTypeApply"))
        .await
        .unwrap();

    let dry = sse::migrate(&fleet, &to_kms, &opts(false), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(dry.summary.planned, N);
    assert_eq!(
        head(&s3, &bucket, &keys[1]).await.0.as_deref(),
        Some("AES256")
    );

    let run = sse::migrate(&fleet, &to_kms, &opts(true), &mut |_| {})
        .await
        .unwrap();
    assert!(run.locked);
    assert_eq!(
        (
            run.summary.copied,
            run.summary.skipped_locked,
            run.summary.failed
        ),
        (N - 1, 1, 0),
        "{:#?}",
        run.states
    );
    let skipped = run.states.iter().find(|s| s.key == keys[5]).unwrap();
    assert!(
        matches!(&skipped.outcome, Outcome::SkippedLocked(h) if h.id == holder.id),
        "{skipped:?}"
    );
    for (i, k) in keys.iter().enumerate() {
        let (sse, kms) = head(&s3, &bucket, k).await;
        let bytes = peers.get_object(&bucket, k).await.unwrap();
        assert_eq!(bytes, stored[i], "{k}: the bytes are unchanged");
        if i == 5 {
            assert_eq!(sse.as_deref(), Some("AES256"), "{k}");
            assert_eq!(versions(&s3, &bucket, k).await, 1);
            continue;
        }
        assert_eq!(sse.as_deref(), Some("aws:kms"), "{k}");
        assert_eq!(kms.as_deref(), Some(arn.as_str()), "{k}");
        assert_eq!(
            versions(&s3, &bucket, k).await,
            2,
            "{k}: the previous version is kept"
        );
        // The digest still matches: the backend reads it without a consistency error.
        assert_eq!(
            store.for_key(k).get(DEFAULT_WORKSPACE).await.unwrap().bytes,
            stored[i]
        );
    }
    let r = run.states.iter().find(|s| s.key == keys[0]).unwrap();
    assert!(r.client_side_encrypted);
    assert_eq!(r.was.0.name(), Some("AES256"));
    assert_ne!(r.version_before, r.version_after);

    // Verify: all on the key except the locked one; the key provider check finds the
    // plaintext ones; a state rewritten behind the digest's back is caught.
    held.unlock(DEFAULT_WORKSPACE, &holder.id).await.unwrap();
    let expect = Expect {
        kms_key: Some(arn.clone()),
        key_provider: Some("pbkdf2.old".into()),
        denied_profiles: vec![],
    };
    let vopts = verify::Options { concurrency: 4 };
    let none = std::sync::Arc::new(Encryption::disabled());
    let v = verify::verify(&fleet, none.clone(), &expect, &vopts, &mut |_| {})
        .await
        .unwrap();
    let failing: Vec<&str> = v
        .states
        .iter()
        .filter(|s| !s.violations.is_empty())
        .map(|s| s.key.as_str())
        .collect();
    let mut expected: Vec<&str> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, k)| k.as_str())
        .collect();
    expected.sort();
    let mut failing_sorted = failing.clone();
    failing_sorted.sort();
    assert_eq!(failing_sorted, expected);
    let s5 = v.states.iter().find(|s| s.key == keys[5]).unwrap();
    assert_eq!(
        s5.violations,
        [
            "server-side encryption is AES256, not aws:kms",
            "not client-side encrypted (expected pbkdf2.old)"
        ]
    );
    assert_eq!(v.violations.len(), expected.len() + 1);

    // A re-run finishes the job; then nothing is left to do.
    let rerun = sse::migrate(&fleet, &to_kms, &opts(true), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((rerun.summary.copied, rerun.summary.already), (1, N - 1));
    // Rewritten (with the right SSE) behind the digest's back.
    let tmp = tempfile::tempdir().unwrap();
    let put = |bytes: &[u8]| {
        let f = tmp.path().join("body");
        std::fs::write(&f, bytes).unwrap();
        aws(
            &peers,
            &[
                "put",
                &bucket,
                &keys[0],
                f.to_str().unwrap(),
                "--kms-key",
                &arn,
            ],
        );
    };
    put(&plain_state(99));
    let tampered = verify::verify(
        &fleet,
        none,
        &Expect {
            kms_key: Some(arn.clone()),
            ..Expect::default()
        },
        &vopts,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(tampered.violations.len(), 1, "{:#?}", tampered.violations);
    assert!(
        tampered.violations[0].contains("does not match its -md5 digest"),
        "{:?}",
        tampered.violations
    );
    put(&stored[0]);

    // The rollback: back to SSE-S3, still the same bytes, one more version each.
    let back = sse::migrate(&fleet, &Target::S3, &opts(true), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(back.summary.copied, N, "{:#?}", back.states);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            head(&s3, &bucket, k).await,
            (Some("AES256".into()), None),
            "{k}"
        );
        assert_eq!(peers.get_object(&bucket, k).await.unwrap(), stored[i]);
        store.for_key(k).get(DEFAULT_WORKSPACE).await.unwrap();
    }
    assert_eq!(versions(&s3, &bucket, &keys[1]).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_migration_refuses_an_unversioned_bucket() {
    let Some(peers) = Peers::aws("sse_migration_refuses_an_unversioned_bucket") else {
        return;
    };
    let bucket = unique("sse-nover");
    peers.mkbucket(&bucket, false).await;
    peers
        .put_object(&bucket, "a/terraform.tfstate", &plain_state(1))
        .await;
    let store = with_kms(&peers, &bucket, None, &[]).await;
    let fleet = Fleet::new(store, "");
    let err = sse::migrate(
        &fleet,
        &Target::Kms("arn:aws:kms:us-east-1:123456789012:key/x".into()),
        &sse::Options {
            apply: true,
            concurrency: 1,
        },
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("versioning"), "{err}");
    assert_eq!(
        head(&peers.s3().await, &bucket, "a/terraform.tfstate").await,
        (None, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reported_and_left_alone() {
    let Some(peers) = Peers::aws("drift_is_reported_and_left_alone") else {
        return;
    };
    // A bucket on someone else's key, and a lock table without our key or PITR.
    let (bucket, table) = (unique("boot-drift"), unique("boot-drift-locks"));
    let theirs = aws(&peers, &["mkkey", &unique("boot-theirs")]);
    aws(
        &peers,
        &["mkbucket", &bucket, "--versioning", "--kms-key", &theirs],
    );
    peers.mktable(&table).await;
    let store = with_kms(&peers, &bucket, None, &[]).await;
    let spec = Spec {
        kms: KmsKey::New {
            alias: bootstrap::default_alias(&bucket),
        },
        table: Some(table.clone()),
        lockfile: false,
        principals: vec![],
        state_key: "terraform.tfstate".into(),
        dr_region: None,
    };
    let run = bootstrap::bootstrap(&store, &spec, true).await.unwrap();
    let plan = actions(&run);
    for (what, action) in [
        ("bucket default encryption", Action::Drift),
        ("lock table encryption", Action::Drift),
        ("lock table point-in-time recovery", Action::Change),
        ("lock table exists", Action::Ok),
        ("bucket versioning", Action::Ok),
    ] {
        assert!(
            plan.contains(&(what.to_string(), action)),
            "{what}: {plan:#?}"
        );
    }
    let got = aws_json(&peers, &["readback", &bucket, "--table", &table]);
    assert_eq!(
        got["encryption"]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"],
        theirs.as_str(),
        "their key is left alone"
    );
    assert_eq!(got["table"]["pitr"], "ENABLED");
    let again = bootstrap::bootstrap(&store, &spec, true).await.unwrap();
    assert_eq!(
        (again.summary.changes(), again.summary.drift),
        (0, 2),
        "{:#?}",
        again.steps
    );

    // Without a KMS key: SSE-S3 by default, a pbkdf2 encryption block, no key in the policy.
    let plain = unique("boot-nokms");
    let store = with_kms(&peers, &plain, None, &[]).await;
    let spec = Spec {
        kms: KmsKey::None,
        table: None,
        lockfile: true,
        principals: vec![],
        state_key: "terraform.tfstate".into(),
        dr_region: None,
    };
    let made = bootstrap::bootstrap(&store, &spec, true).await.unwrap();
    assert_eq!(made.kms_key_arn, None);
    assert!(
        !made.backend_block.contains("kms_key_id"),
        "{}",
        made.backend_block
    );
    assert!(made.encryption_block.contains("key_provider \"pbkdf2\""));
    assert!(!made.iam_policy.to_string().contains("kms:"));
    let got = aws_json(&peers, &["readback", &plain]);
    assert_eq!(
        got["encryption"]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "AES256"
    );
    let again = bootstrap::bootstrap(&store, &spec, true).await.unwrap();
    assert_eq!(again.summary.changes(), 0, "{:#?}", again.steps);
}
