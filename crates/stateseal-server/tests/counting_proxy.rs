//! A counting proxy in front of moto: it forwards every request unchanged to the real peer and
//! counts them by operation (S3 by method and query, DynamoDB by `X-Amz-Target`), so a test can
//! show how many requests something costs without sharing moto's log with the tests running
//! beside it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// A proxy on 127.0.0.1 to one upstream (stopped when dropped).
pub struct CountingProxy {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    counts: Counts,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The operation a request to moto is: `Scan`, `ListObjectsV2`, `GetObject`, ….
fn operation<B>(req: &Request<B>) -> String {
    if let Some(target) = req.headers().get("x-amz-target") {
        let t = target.to_str().unwrap_or_default();
        return t.rsplit('.').next().unwrap_or(t).to_string();
    }
    let query = req.uri().query().unwrap_or_default();
    let has = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
    // Path style: /bucket or /bucket/key.
    let on_object = req.uri().path().trim_matches('/').contains('/');
    let method = req.method().as_str();
    match (method, on_object) {
        ("GET", false) if has("list-type") => "ListObjectsV2".into(),
        ("GET", false) if has("versions") => "ListObjectVersions".into(),
        ("GET", false) if has("versioning") => "GetBucketVersioning".into(),
        ("GET", true) => "GetObject".into(),
        ("HEAD", true) => "HeadObject".into(),
        ("PUT", true) => "PutObject".into(),
        ("DELETE", true) => "DeleteObject".into(),
        _ => format!("{method} {}", req.uri()),
    }
}

async fn forward(
    req: Request<Incoming>,
    upstream: String,
    counts: Counts,
) -> Result<Response<Incoming>, hyper::Error> {
    *counts.lock().unwrap().entry(operation(&req)).or_default() += 1;
    let stream = TcpStream::connect(&upstream)
        .await
        .expect("the upstream answers");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    sender.send_request(req).await
}

impl CountingProxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> CountingProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts: Counts = Arc::default();
        let shared = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (upstream, counts) = (upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    let service =
                        service_fn(move |req| forward(req, upstream.clone(), counts.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        CountingProxy { url, counts, task }
    }

    /// The requests counted since the last call, by operation (and starts counting again).
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }
}

/// The total of `counts`.
pub fn total(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().sum()
}

/// One operation's count.
pub fn count(counts: &BTreeMap<String, u64>, op: &str) -> u64 {
    counts.get(op).copied().unwrap_or(0)
}
