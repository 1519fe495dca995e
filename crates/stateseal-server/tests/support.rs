//! Test harness: an in-process server (the axum router driven with `tower::ServiceExt::oneshot`,
//! no sockets) over a fresh data directory or, with `storage "s3"`, a fresh versioned bucket and
//! lock table on moto, plus a snapshot of everything stored (files; or object versions and lock
//! table items), so a test can show that a refused request changed nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use stateseal_server::{App, ServerConfig};
use stateseal_testkit::Peers;
use tower::ServiceExt as _;

/// Runs each rule — an `async fn(Harness)` of the calling module — as two tests: on a data
/// directory (`on_data_dir::rule`) and on S3 storage on moto (`on_s3::rule`: a fresh versioned
/// bucket and lock table, DynamoDB and lock files; skipped without moto), each server started
/// with the given configuration text.
macro_rules! on_every_storage {
    ($($rule:ident($config:expr)),* $(,)?) => {
        mod on_data_dir {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $rule() {
                    super::$rule(crate::support::Harness::with_config(&$config)).await
                }
            )*
        }
        mod on_s3 {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $rule() {
                    let Some(h) = crate::support::Harness::s3(stringify!($rule), &$config).await
                    else {
                        return;
                    };
                    super::$rule(h).await
                }
            )*
        }
    };
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub app: Arc<App>,
    /// Set when the server stores in S3.
    pub s3: Option<S3Backing>,
}

/// The bucket (versioned) and lock table a `storage "s3"` server uses on moto.
#[derive(Clone, Debug)]
pub struct S3Backing {
    pub peers: Peers,
    pub bucket: String,
    pub table: String,
    /// The lock settings of the `storage "s3"` block.
    pub locks: String,
}

impl S3Backing {
    /// A fresh versioned bucket and lock table; the server locks with DynamoDB and lock files,
    /// as OpenTofu does with both configured.
    pub async fn create(peers: &Peers) -> S3Backing {
        let bucket = stateseal_testkit::unique("srv");
        let table = stateseal_testkit::unique("srv-locks");
        peers.mkbucket(&bucket, true).await;
        peers.mktable(&table).await;
        S3Backing {
            peers: peers.clone(),
            locks: format!("    dynamodb_table = \"{table}\"\n    use_lockfile = true\n"),
            bucket,
            table,
        }
    }

    /// The `storage "s3"` block.
    pub fn storage_block(&self) -> String {
        self.peers.storage_block(&self.bucket, &self.locks)
    }

    /// A `backend "s3"` block on the same bucket for the state `key`, with `locks` (e.g.
    /// `dynamodb_table = "…"`, `use_lockfile = true`).
    pub fn backend_block(&self, key: &str, locks: &str) -> String {
        self.peers.backend_block_for_key(&self.bucket, key, locks)
    }
}

/// A response: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    /// The `WWW-Authenticate` header, empty when absent.
    pub www_authenticate: String,
    /// The `ETag` header, empty when absent.
    pub etag: String,
    /// The `Retry-After` header, empty when absent.
    pub retry_after: String,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config("")
    }

    /// A server with this configuration file content (no `TF_ENCRYPTION`).
    pub fn with_config(src: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::parse("server.hcl", src, None).expect("valid config");
        let app = App::open(&dir.path().join("data"), config).expect("server starts");
        Harness {
            dir,
            app: Arc::new(app),
            s3: None,
        }
    }

    /// A server on `backing` (its `storage "s3"` block added to `src`).
    pub async fn on_s3(backing: &S3Backing, src: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let src = format!("{src}\n{}", backing.storage_block());
        let config = ServerConfig::parse("server.hcl", &src, None).expect("valid config");
        let app = App::connect(&dir.path().join("data"), config)
            .await
            .expect("server starts");
        Harness {
            dir,
            app: Arc::new(app),
            s3: Some(backing.clone()),
        }
    }

    /// A server on a fresh bucket and table, or `None` (skipped) without moto.
    pub async fn s3(test: &str, src: &str) -> Option<Harness> {
        let peers = Peers::aws(test)?;
        Some(Harness::on_s3(&S3Backing::create(&peers).await, src).await)
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Sends a request with `Content-Type: application/json` and `Content-MD5` when a body is
    /// given (as Terraform does).
    pub async fn send(&self, method: &str, uri: &str, body: Option<&[u8]>) -> Answer {
        self.send_with(method, uri, body, &[]).await
    }

    /// [`Harness::send`] with extra headers.
    pub async fn send_with(
        &self,
        method: &str,
        uri: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .header("content-md5", content_md5(b))
                .header("content-length", b.len());
        }
        let req = req
            .body(Body::from(body.map(<[u8]>::to_vec).unwrap_or_default()))
            .unwrap();
        self.raw(req).await
    }

    pub async fn raw(&self, req: Request<Body>) -> Answer {
        let resp = stateseal_server::router(self.app.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let (content_type, www_authenticate, etag, retry_after) = answer_headers(resp.headers());
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Answer {
            status,
            body,
            content_type,
            www_authenticate,
            etag,
            retry_after,
        }
    }

    /// Everything stored: every file under the data directory (but the directory's own lock
    /// file), with contents; on S3, every object version (with its ETag) and lock table item.
    pub async fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        match &self.s3 {
            None => walk(&self.data(), &self.data(), &mut out),
            Some(b) => {
                for (key, version, etag) in b.peers.object_versions(&b.bucket).await {
                    out.insert(PathBuf::from(format!("s3/{key}@{version}")), etag.into());
                }
                for (id, item) in b.peers.items(&b.table).await {
                    out.insert(PathBuf::from(format!("dynamodb/{id}")), item.into());
                }
            }
        }
        out
    }

    /// The stored bytes of every version of the state `name` (not deletions), oldest first.
    pub async fn stored_versions(&self, name: &str) -> Vec<Vec<u8>> {
        match &self.s3 {
            None => self
                .version_files(name)
                .iter()
                .map(|f| std::fs::read(f).unwrap())
                .filter(|b| !b.is_empty())
                .collect(),
            Some(b) => {
                let mut out = Vec::new();
                for (key, version, etag) in b.peers.object_versions(&b.bucket).await {
                    if key == name && !etag.is_empty() {
                        out.push(
                            b.peers
                                .get_object_version(&b.bucket, &key, Some(&version))
                                .await
                                .expect("a listed version"),
                        );
                    }
                }
                out.reverse();
                out
            }
        }
    }

    /// The committed version files (`*.bin`) of a state, oldest first.
    pub fn version_files(&self, rel_state_dir: &str) -> Vec<PathBuf> {
        let v = self.data().join("states").join(rel_state_dir).join("@/v");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&v)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "bin"));
        files.sort();
        files
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if p != root.join(".lock") {
            out.insert(
                p.strip_prefix(root).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            );
        }
    }
}

/// The headers an [`Answer`] keeps: Content-Type, WWW-Authenticate and ETag (empty when absent
/// or not text), for both the in-process and the network client.
fn answer_headers(h: &axum::http::HeaderMap) -> (String, String, String, String) {
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    (
        get("content-type"),
        get("www-authenticate"),
        get("etag"),
        get("retry-after"),
    )
}

pub fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

/// The `ETag` the server answers for stored bytes: their hex SHA-256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    let hex: String = ring::digest::digest(&ring::digest::SHA256, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
}

/// The serials of `GET /v1/versions/<path>`'s answer, newest first.
pub fn version_serials(a: &Answer) -> Vec<u64> {
    assert_eq!(a.status, 200, "{}", a.text());
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["serial"].as_u64().unwrap())
        .collect()
}

/// A plaintext state as Terraform writes it.
pub fn state(serial: u64, lineage: &str, greeting: &str) -> Vec<u8> {
    format!(
        "{{\n  \"version\": 4,\n  \"terraform_version\": \"1.15.5\",\n  \"serial\": {serial},\n  \"lineage\": \"{lineage}\",\n  \"outputs\": {{\n    \"greeting\": {{\n      \"value\": \"{greeting}\",\n      \"type\": \"string\"\n    }}\n  }},\n  \"resources\": [],\n  \"check_results\": null\n}}\n"
    )
    .into_bytes()
}

/// Lock info as Terraform sends it (`Path` empty for http).
pub fn lock_info(id: &str, who: &str) -> String {
    format!(
        r#"{{"ID":"{id}","Operation":"OperationTypeApply","Info":"","Who":"{who}","Version":"1.15.5","Created":"2026-11-30T03:04:05.123456789Z","Path":""}}"#
    )
}

/// A server on a real socket (127.0.0.1, a free port) with its own runtime, for clients in
/// other processes (Terraform). Stops on drop, finishing requests in flight.
pub struct Live {
    pub h: Harness,
    pub addr: std::net::SocketAddr,
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Live {
    pub fn start(config: &str) -> Live {
        Live::serve(|_| Harness::with_config(config))
    }

    /// A server on `backing` (S3 storage) with this configuration.
    pub fn start_s3(backing: &S3Backing, config: &str) -> Live {
        Live::serve(|rt| rt.block_on(Harness::on_s3(backing, config)))
    }

    fn serve(harness: impl FnOnce(&tokio::runtime::Runtime) -> Harness) -> Live {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let h = harness(&rt);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(stateseal_server::serve(listener, h.app.clone(), async {
            let _ = stopped.await;
        }));
        Live {
            h,
            addr,
            rt: Some(rt),
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts the graceful shutdown (no new connections; requests in flight finish).
    pub fn begin_shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// A request through the router, on the server's runtime.
    pub fn send(&self, method: &str, uri: &str, body: Option<&[u8]>) -> Answer {
        self.send_with(method, uri, body, &[])
    }

    /// [`Live::send`] with extra headers.
    pub fn send_with(
        &self,
        method: &str,
        uri: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.rt
            .as_ref()
            .unwrap()
            .block_on(self.h.send_with(method, uri, body, headers))
    }

    /// [`Harness::stored_versions`].
    pub fn stored_versions(&self, name: &str) -> Vec<Vec<u8>> {
        self.rt
            .as_ref()
            .unwrap()
            .block_on(self.h.stored_versions(name))
    }

    /// The `backend "http"` block for state `name`, locking on.
    pub fn backend_block(&self, name: &str) -> String {
        let url = self.url(&format!("/state/{name}"));
        format!(
            "terraform {{\n  backend \"http\" {{\n    address        = \"{url}\"\n    lock_address   = \"{url}\"\n    unlock_address = \"{url}\"\n  }}\n}}\n"
        )
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(10));
        }
    }
}

/// A blocking HTTP client over real sockets that also sends LOCK and UNLOCK and never turns a
/// status into an error.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .timeout_global(Some(std::time::Duration::from_secs(120)))
            .build(),
    )
}

/// One request over a socket (`Content-Type` and `Content-MD5` with a body, as Terraform).
pub fn http(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&[u8]>,
) -> Result<Answer, ureq::Error> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .header("content-md5", content_md5(b));
    }
    let req = req
        .body(body.map(<[u8]>::to_vec).unwrap_or_default())
        .unwrap();
    let mut resp = agent.run(req)?;
    let (content_type, www_authenticate, etag, retry_after) = answer_headers(resp.headers());
    Ok(Answer {
        status: resp.status().as_u16(),
        body: resp.body_mut().read_to_vec()?,
        content_type,
        www_authenticate,
        etag,
        retry_after,
    })
}
