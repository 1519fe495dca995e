//! Backends against real peers: the conformance suite on local files and on moto (DynamoDB,
//! lock file, both, none), lock interop with real Terraform, the digest consistency check.
//! S3 tests need `STATESEAL_TEST_AWS_ENDPOINT` (a moto URL) and skip with a notice without it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use stateseal_store::s3::{S3Builder, S3Store};
use stateseal_store::{conformance, Error, LocalStore, LockInfo, PutMode, Store};
use stateseal_testkit::{release, unique, Peers, SLOW_APPLY_TF};

#[tokio::test]
async fn local_conformance() {
    let d = tempfile::tempdir().unwrap();
    conformance::run(&LocalStore::new(d.path()), "conf-ws", true, true).await;
    // The sidecar is gone after unlock, and OpenTofu's file names were used.
    assert!(d.path().join("terraform.tfstate").exists());
    assert!(!d.path().join(".terraform.tfstate.lock.info").exists());
    assert!(d.path().join("terraform.tfstate.backup").exists());
}

#[tokio::test]
async fn local_lock_is_a_posix_record_lock_shared_with_other_processes() {
    let d = tempfile::tempdir().unwrap();
    let store = LocalStore::new(d.path());
    store
        .put(
            "default",
            bytes::Bytes::from_static(b"{\"version\":4,\"serial\":1}"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let path = store.state_path("default");

    // Another process holds fcntl(F_SETLK) (Python's lockf is that call, like OpenTofu's).
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys,time\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nprint('locked',flush=True)\nsys.stdin.read()",
        ])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let err = store
        .lock("default", LockInfo::new("test"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::LockFailed { .. } | Error::Locked { .. }),
        "{err}"
    );
    assert!(
        store
            .put(
                "default",
                bytes::Bytes::from_static(b"{}"),
                PutMode::Overwrite
            )
            .await
            .is_err(),
        "no write while another process holds the lock"
    );
    drop(child.stdin.take());
    child.wait().unwrap();

    // And the other way round: while we hold it, the other process can't take it.
    let held = store.lock("default", LockInfo::new("test")).await.unwrap();
    let sidecar = std::fs::read(store.lock_info_path("default")).unwrap();
    assert_eq!(LockInfo::parse(&sidecar).unwrap(), held);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(store.lock_info_path("default"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let status = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys\nf=open(sys.argv[1],'r+')\ntry:\n fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError:\n sys.exit(3)\n",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "our lock excludes the other process"
    );
    // Reads and writes through the held descriptor keep the lock (POSIX drops it on close).
    store.get("default").await.unwrap();
    store
        .put(
            "default",
            bytes::Bytes::from_static(b"{\"version\":4,\"serial\":2}"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let status = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys\nf=open(sys.argv[1],'r+')\ntry:\n fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError:\n sys.exit(3)\n",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "still locked after our own read and write"
    );
    store.unlock("default", &held.id).await.unwrap();
}

/// Waits until `check` is true (polling), for at most `secs`.
async fn wait_for<F: std::future::Future<Output = bool>>(
    secs: u64,
    mut check: impl FnMut() -> F,
) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn local_lock_interoperates_with_terraform() {
    let Some(peers) = Peers::terraform_local("local_lock_interoperates_with_terraform") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("main.tf"), SLOW_APPLY_TF).unwrap();
    peers.tf_ok(d.path(), &["init", "-input=false", "-no-color"]);
    let store = LocalStore::new(d.path());

    // stateseal holds the lock: Terraform can't apply.
    let held = store
        .lock("default", LockInfo::new("test-hold"))
        .await
        .unwrap();
    let out = peers.tf(
        d.path(),
        &["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("Error acquiring the state lock"), "{text}");
    assert!(
        text.contains(&held.id),
        "Terraform shows our lock ID:\n{text}"
    );
    store.unlock("default", &held.id).await.unwrap();

    // Terraform holds the lock: stateseal is refused and sees Terraform's holder.
    let hold = d.path().join("release-apply");
    let mut child = peers.tf_spawn(
        d.path(),
        &[
            "apply",
            "-auto-approve",
            "-no-color",
            "-var",
            &format!("hold_until={}", hold.display()),
        ],
    );
    let sidecar = store.lock_info_path("default");
    assert!(
        wait_for(180, || async { sidecar.exists() }).await,
        "Terraform locked"
    );
    let err = store
        .lock("default", LockInfo::new("test"))
        .await
        .unwrap_err();
    let Error::Locked { holder, .. } = err else {
        panic!("expected Locked, got {err}");
    };
    assert_eq!(holder.operation, "OperationTypeApply");
    let raw = std::fs::read(&sidecar).unwrap();
    assert_eq!(
        holder.to_json().as_bytes(),
        raw,
        "Terraform's bytes re-marshal identically"
    );
    release(&hold);
    assert!(child.wait().unwrap().success());
    assert!(!sidecar.exists());
    let state = store.get("default").await.unwrap();
    assert!(String::from_utf8_lossy(&state.bytes).contains("\"greeting\""));
}

async fn s3_store(peers: &Peers, bucket: &str, table: Option<&str>, lockfile: bool) -> S3Store {
    let mut b = S3Builder::new();
    for kv in peers.s3_backend_config(bucket, "app/terraform.tfstate", table, lockfile) {
        b = b.with_backend_config(&kv);
    }
    let cfg = b.build_config(&|_| None).unwrap();
    S3Store::connect(cfg).await.unwrap()
}

async fn s3_conformance(test: &str, table: bool, lockfile: bool) {
    let Some(peers) = Peers::aws(test) else {
        return;
    };
    let bucket = unique("conf");
    peers.mkbucket(&bucket, true).await;
    let t = unique("locks");
    if table {
        peers.mktable(&t).await;
    }
    let store = s3_store(&peers, &bucket, table.then_some(t.as_str()), lockfile).await;
    conformance::run(&store, "conf:ws@1", table || lockfile, true).await;
    let keys = peers.keys(&bucket).await;
    assert!(
        keys.iter().all(|k| !k.ends_with(".tflock")),
        "no lock file left: {keys:?}"
    );
    if table {
        // The digest item matches the exact bytes of the state object.
        let digest = peers
            .item_attr(&t, &format!("{bucket}/app/terraform.tfstate-md5"), "Digest")
            .await
            .expect("digest item");
        let body = peers
            .get_object(&bucket, "app/terraform.tfstate")
            .await
            .unwrap();
        use md5::Digest as _;
        let want: String = md5::Md5::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, want);
        assert!(
            peers
                .item_attr(
                    &t,
                    &format!("{bucket}/env:/conf:ws@1/app/terraform.tfstate-md5"),
                    "Digest"
                )
                .await
                .is_none(),
            "the deleted workspace's digest is gone"
        );
    }
}

#[tokio::test]
async fn s3_conformance_dynamodb() {
    s3_conformance("s3_conformance_dynamodb", true, false).await;
}

#[tokio::test]
async fn s3_conformance_lockfile() {
    s3_conformance("s3_conformance_lockfile", false, true).await;
}

#[tokio::test]
async fn s3_conformance_both() {
    s3_conformance("s3_conformance_both", true, true).await;
}

#[tokio::test]
async fn s3_conformance_without_locking() {
    s3_conformance("s3_conformance_without_locking", false, false).await;
}

#[tokio::test]
async fn s3_digest_mismatch_is_retried_then_reported() {
    let Some(peers) = Peers::aws("s3_digest_mismatch_is_retried_then_reported") else {
        return;
    };
    let bucket = unique("digest");
    let t = unique("locks");
    peers.mkbucket(&bucket, false).await;
    peers.mktable(&t).await;
    let mut store = s3_store(&peers, &bucket, Some(&t), false).await;
    store.consistency_timeout = Duration::from_millis(600);
    store.consistency_delay = Duration::from_millis(200);
    store
        .put(
            "default",
            bytes::Bytes::from_static(b"{\"version\":4,\"serial\":1}"),
            PutMode::Create,
        )
        .await
        .unwrap();
    // Someone else (an old tool) overwrites the object without updating the digest.
    peers
        .s3()
        .await
        .put_object()
        .bucket(&bucket)
        .key("app/terraform.tfstate")
        .body(b"{\"version\":4,\"serial\":9}".to_vec().into())
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = store.get("default").await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(400), "retried");
    let Error::Inconsistent {
        calculated, stored, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_ne!(calculated, stored);
    assert!(err
        .to_string()
        .starts_with("state data in S3 does not have the expected content."));
}

#[tokio::test]
async fn s3_missing_bucket_and_lock_conflicts_are_semantic() {
    let Some(peers) = Peers::aws("s3_missing_bucket_and_lock_conflicts_are_semantic") else {
        return;
    };
    let store = s3_store(&peers, &unique("absent"), None, true).await;
    let err = store.workspaces().await.unwrap_err();
    assert!(matches!(err, Error::BucketNotFound { .. }), "{err}");
    assert!(err.to_string().contains("S3 bucket"), "{err}");
    let err = store.get("default").await.unwrap_err();
    assert!(matches!(err, Error::BucketNotFound { .. }), "{err}");
    let err = store.lock("default", LockInfo::new("x")).await.unwrap_err();
    assert!(matches!(err, Error::BucketNotFound { .. }), "{err}");

    // Two stores on one bucket: the second sees the first's holder in both mechanisms.
    let bucket = unique("conflict");
    let t = unique("locks");
    peers.mkbucket(&bucket, false).await;
    peers.mktable(&t).await;
    let a = s3_store(&peers, &bucket, Some(&t), true).await;
    let b = s3_store(&peers, &bucket, Some(&t), true).await;
    let held = a.lock("default", LockInfo::new("a")).await.unwrap();
    let Err(Error::Locked { holder, .. }) = b.lock("default", LockInfo::new("b")).await else {
        panic!("expected Locked");
    };
    assert_eq!(holder.id, held.id);
    assert_eq!(holder.path, format!("{bucket}/app/terraform.tfstate"));
    // Lock-file-only and DynamoDB-only clients: the DynamoDB item alone also refuses a
    // both-mechanisms client, and its lock file is rolled back.
    a.unlock("default", &held.id).await.unwrap();
    let ddb_only = s3_store(&peers, &bucket, Some(&t), false).await;
    let d = ddb_only
        .lock("default", LockInfo::new("ddb"))
        .await
        .unwrap();
    assert!(matches!(
        b.lock("default", LockInfo::new("b")).await,
        Err(Error::Locked { .. })
    ));
    assert!(
        !peers
            .keys(&bucket)
            .await
            .iter()
            .any(|k| k.ends_with(".tflock")),
        "the lock file was rolled back when DynamoDB refused"
    );
    ddb_only.unlock("default", &d.id).await.unwrap();
}

#[tokio::test]
async fn s3_lock_interoperates_with_terraform() {
    let Some(peers) = Peers::terraform("s3_lock_interoperates_with_terraform") else {
        return;
    };
    let bucket = unique("tflock");
    let t = unique("locks");
    peers.mkbucket(&bucket, true).await;
    peers.mktable(&t).await;
    let d = tempfile::tempdir().unwrap();
    let block = peers.backend_block(
        &bucket,
        &format!("    use_lockfile = true\n    dynamodb_table = \"{t}\""),
    );
    std::fs::write(d.path().join("backend.tf"), block).unwrap();
    std::fs::write(d.path().join("main.tf"), SLOW_APPLY_TF).unwrap();
    peers.tf_ok(d.path(), &["init", "-input=false", "-no-color"]);
    let store = s3_store(&peers, &bucket, Some(&t), true).await;

    let hold = d.path().join("release-apply");
    let mut child = peers.tf_spawn(
        d.path(),
        &[
            "apply",
            "-auto-approve",
            "-no-color",
            "-var",
            &format!("hold_until={}", hold.display()),
        ],
    );
    let lock_id = format!("{bucket}/app/terraform.tfstate");
    // Both records: the lock file and the DynamoDB item (Terraform writes one, then the other).
    assert!(
        wait_for(180, || async {
            peers.item_attr(&t, &lock_id, "Info").await.is_some()
                && peers
                    .get_object(&bucket, "app/terraform.tfstate.tflock")
                    .await
                    .is_some()
        })
        .await,
        "Terraform locked"
    );
    let Err(Error::Locked { holder, .. }) = store.lock("default", LockInfo::new("x")).await else {
        panic!("expected Locked");
    };
    // Terraform's own bytes (Go's json.Marshal) re-marshal identically: in DynamoDB and in
    // the lock file.
    let info = peers.item_attr(&t, &lock_id, "Info").await.unwrap();
    assert_eq!(LockInfo::parse(info.as_bytes()).unwrap().to_json(), info);
    let file = peers
        .get_object(&bucket, "app/terraform.tfstate.tflock")
        .await
        .unwrap();
    assert_eq!(LockInfo::parse(&file).unwrap().to_json().as_bytes(), file);
    assert_eq!(holder.to_json(), info);
    if let Ok(dir) = std::env::var("STATESEAL_CAPTURE_LOCKINFO") {
        std::fs::write(format!("{dir}/terraform-dynamodb-info.json"), &info).unwrap();
        std::fs::write(format!("{dir}/terraform-tflock.json"), &file).unwrap();
    }
    release(&hold);
    assert!(child.wait().unwrap().success());

    // Terraform's state and digest are read back consistently.
    let obj = store.get("default").await.unwrap();
    assert!(String::from_utf8_lossy(&obj.bytes).contains("\"greeting\""));
}

#[tokio::test]
async fn s3_conformance_with_every_storage_option() {
    let Some(peers) = Peers::aws("s3_conformance_with_every_storage_option") else {
        return;
    };
    let bucket = unique("knobs");
    peers.mkbucket(&bucket, false).await;
    let e = peers.endpoint();
    let mut b = S3Builder::new();
    for kv in [
        format!("bucket={bucket}"),
        "key=app/terraform.tfstate".into(),
        "region=us-east-1".into(),
        format!("endpoint={e}"),
        "force_path_style=true".into(),
        "access_key=testing".into(),
        "secret_key=testing".into(),
        "skip_credentials_validation=true".into(),
        "use_lockfile=true".into(),
        "workspace_key_prefix=".into(),
        "encrypt=true".into(),
        "sse_customer_key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        "acl=private".into(),
        "state_tags={team = \"a b\", env = \"prod/1\"}".into(),
        "lock_tags={kind = \"lock\"}".into(),
        "skip_s3_checksum=true".into(),
    ] {
        b = b.with_backend_config(&kv);
    }
    let store = S3Store::connect(b.build_config(&|_| None).unwrap())
        .await
        .unwrap();
    conformance::run(&store, "ws", true, true).await; // use_lockfile=true

    // workspace_key_prefix = "": workspaces live at <ws>/<key>.
    store
        .put(
            "dev",
            bytes::Bytes::from_static(b"{\"version\":4,\"serial\":1}"),
            PutMode::Create,
        )
        .await
        .unwrap();
    assert!(peers
        .keys(&bucket)
        .await
        .contains(&"dev/app/terraform.tfstate".to_string()));
    assert_eq!(store.workspaces().await.unwrap(), ["default", "dev"]);

    let s3 = peers.s3().await;
    let tags = |key: &'static str| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            let out = s3
                .get_object_tagging()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            let mut t: Vec<(String, String)> = out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            t.sort();
            t
        }
    };
    assert_eq!(
        tags("app/terraform.tfstate").await,
        [
            ("env".into(), "prod/1".into()),
            ("team".into(), "a b".into())
        ]
    );
    let held = store.lock("default", LockInfo::new("tags")).await.unwrap();
    assert_eq!(
        tags("app/terraform.tfstate.tflock").await,
        [("kind".to_string(), "lock".to_string())]
    );
    store.unlock("default", &held.id).await.unwrap();
}

/// A lock item whose Info is not a lock and a `.tflock` that does not parse block every lock;
/// they are listed as stored, and removed only while still exactly as read: a record that
/// changed in between stays. The `-md5` digest item is never touched.
#[tokio::test]
async fn s3_unreadable_lock_records_are_removed_only_as_read() {
    let Some(peers) = Peers::aws("s3_unreadable_lock_records_are_removed_only_as_read") else {
        return;
    };
    let bucket = unique("unreadable");
    peers.mkbucket(&bucket, true).await;
    let t = unique("locks");
    peers.mktable(&t).await;
    let store = s3_store(&peers, &bucket, Some(&t), true).await;
    store
        .put(
            "default",
            bytes::Bytes::from_static(b"{\"version\":4,\"serial\":1}"),
            PutMode::Create,
        )
        .await
        .unwrap();
    let lock_id = format!("{bucket}/app/terraform.tfstate");
    let digest_id = format!("{lock_id}-md5");
    let digest = peers.item_attr(&t, &digest_id, "Digest").await;
    assert!(digest.is_some(), "the put stored a digest");
    let file_key = "app/terraform.tfstate.tflock";
    peers.put_item(&t, &lock_id, "Info", "{not json").await;
    peers.put_object(&bucket, file_key, b"\x00garbage").await;

    let err = store.lock("default", LockInfo::new("x")).await.unwrap_err();
    assert!(
        matches!(&err, Error::LockFailed { message } if message.contains("force-unlock --unreadable")),
        "{err}"
    );
    let found = store.unreadable_locks("default").await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|u| (u.location.as_str(), u.raw.as_deref()))
            .collect::<Vec<_>>(),
        [
            (
                format!("s3://{bucket}/{file_key}").as_str(),
                Some(b"\x00garbage".as_slice())
            ),
            (
                format!("DynamoDB table {t} item {lock_id:?}").as_str(),
                Some(b"{not json".as_slice())
            ),
        ]
    );

    // Both change after they were read: neither is removed.
    peers
        .put_item(&t, &lock_id, "Info", "{still not json")
        .await;
    peers.put_object(&bucket, file_key, b"other garbage").await;
    for u in &found {
        let err = store
            .remove_unreadable_lock("default", u)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnlockFailed { .. }), "{err}");
    }
    assert_eq!(
        peers.item_attr(&t, &lock_id, "Info").await.as_deref(),
        Some("{still not json")
    );
    assert_eq!(
        peers.get_object(&bucket, file_key).await.as_deref(),
        Some(b"other garbage".as_slice())
    );

    // Read again, removed as read; the digest item and the state stay.
    for u in store.unreadable_locks("default").await.unwrap() {
        store.remove_unreadable_lock("default", &u).await.unwrap();
    }
    assert_eq!(peers.item_attr(&t, &lock_id, "Info").await, None);
    assert_eq!(peers.get_object(&bucket, file_key).await, None);
    assert_eq!(peers.item_attr(&t, &digest_id, "Digest").await, digest);
    assert!(store.get("default").await.is_ok());
    assert!(store.unreadable_locks("default").await.unwrap().is_empty());
    let held = store.lock("default", LockInfo::new("x")).await.unwrap();
    store.unlock("default", &held.id).await.unwrap();
}

/// STS unreachable when the credentials are checked at connect is a service failure of kind
/// `Network` (callers say "try again"), not `Config` ("correct the backend configuration").
#[tokio::test]
async fn an_unreachable_sts_at_connect_is_a_network_failure_not_a_configuration_error() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut b = S3Builder::new();
    for kv in [
        "bucket=b".to_string(),
        "key=app/terraform.tfstate".into(),
        "region=us-east-1".into(),
        "access_key=AKIDEXAMPLE".into(),
        "secret_key=unused".into(),
        "max_retries=1".into(),
        format!("endpoints={{s3=\"{closed}\", sts=\"{closed}\"}}"),
    ] {
        b = b.with_backend_config(&kv);
    }
    let cfg = b.build_config(&|_| None).unwrap();
    match S3Store::connect(cfg).await {
        Err(Error::Service {
            operation, kind, ..
        }) => {
            assert_eq!(operation, "GetCallerIdentity");
            assert_eq!(kind, stateseal_core::ServiceErrorKind::Network);
        }
        Err(e) => panic!("not a service failure: {e:?}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}
