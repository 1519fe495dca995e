//! The load generator for `stateseal serve`'s lock + write + unlock cycles
//! (`scripts/bench/serve.sh`): each connection owns one state and runs LOCK, POST `?ID=` with
//! `Content-MD5` (as OpenTofu's HTTP backend sends it), UNLOCK, over and over.
//!
//! It is built to cost the machine as little as possible, because on a benchmark machine it
//! shares the server's cores: one thread for every connection; the body's large part is one
//! shared buffer written straight to the socket (no copy per request); and since `"serial"` is
//! the body's last member, the MD5 of everything before it is computed once and each request
//! hashes only its last few bytes.
//!
//! ```text
//! cargo run --release -p stateseal-server --example lock_write_unlock -- \
//!     URL BODY_FILE PATH_PREFIX CONNECTIONS SECONDS
//! ```
//!
//! BODY_FILE is a compact state or an OpenTofu envelope whose last member is `"serial":1`.
//! Connection `i` uses state `PATH_PREFIX<i>`; it stores the body once (serial 1), then each
//! cycle writes the next serial. A cycle's latency runs from sending LOCK to UNLOCK's answer.
//! It prints one line, as `serve_wrk.lua` does:
//! `RESULT <cycles per second> <p50 ms> <p99 ms> <failures>` (failures: answers other than
//! 200, and connection errors).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};

/// A request body made of a few shared buffers, sent in order without being joined.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

/// The body split at its serial: `prefix` ends with `"serial":`, `suffix` is what follows the
/// number (`}` and perhaps a newline); `prefix_md5` is the MD5 state after `prefix`.
struct Template {
    prefix: Bytes,
    suffix: Vec<u8>,
    prefix_md5: Md5,
}

impl Template {
    fn read(path: &str) -> Result<Template, String> {
        let body = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let marker = b"\"serial\":1";
        let at = body
            .windows(marker.len())
            .rposition(|w| w == marker)
            .ok_or_else(|| format!("{path}: no \"serial\":1 in the body"))?;
        let suffix = &body[at + marker.len()..];
        if suffix.len() > 8 || suffix.iter().any(|b| !matches!(b, b'}' | b'\n' | b' ')) {
            return Err(format!(
                "{path}: \"serial\":1 must be the body's last member"
            ));
        }
        let suffix = suffix.to_vec();
        let prefix = Bytes::from(body[..at + marker.len() - 1].to_vec());
        let mut prefix_md5 = Md5::new();
        prefix_md5.update(&prefix);
        Ok(Template {
            prefix,
            suffix,
            prefix_md5,
        })
    }

    /// The body with `serial`, and its Content-MD5.
    fn body(&self, serial: u64) -> (Chunks, String) {
        let mut tail = serial.to_string().into_bytes();
        tail.extend_from_slice(&self.suffix);
        let mut md5 = self.prefix_md5.clone();
        md5.update(&tail);
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5.finalize());
        (
            Chunks(VecDeque::from([self.prefix.clone(), Bytes::from(tail)])),
            md5,
        )
    }
}

/// The lock ID of connection `conn`'s cycle for `serial`.
fn lock_id(conn: usize, serial: u64) -> String {
    format!("{conn:08x}-{:04x}-0000-0000-000000000000", serial % 65536)
}

/// The lock info sent with LOCK and UNLOCK, as OpenTofu's HTTP backend sends it.
fn lock_info(lock_id: &str) -> String {
    format!(
        r#"{{"ID":"{lock_id}","Operation":"OperationTypeApply","Info":"","Who":"bench@local","Version":"1.15.5","Created":"2026-11-30T00:00:00Z","Path":""}}"#
    )
}

/// Sends one request and reads its whole answer; true when it is 200.
async fn send(
    sender: &mut SendRequest<Chunks>,
    req: Request<Chunks>,
) -> Result<bool, hyper::Error> {
    let resp = sender.send_request(req).await?;
    let ok = resp.status() == hyper::StatusCode::OK;
    resp.into_body().collect().await?;
    Ok(ok)
}

fn request(method: Method, uri: String, body: Chunks, headers: &[(&str, &str)]) -> Request<Chunks> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "bench")
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body).expect("a valid request")
}

fn small(s: String) -> Chunks {
    Chunks(VecDeque::from([Bytes::from(s)]))
}

/// One connection's cycles until `until`: their latencies in ms, and the failures.
async fn connection(
    addr: String,
    path: String,
    id: usize,
    template: std::rc::Rc<Template>,
    until: Instant,
) -> (Vec<f64>, u64) {
    let mut lat = Vec::new();
    let mut failed = 0;
    let stream = match tokio::net::TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(_) => return (lat, 1),
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return (lat, 1);
    };
    tokio::task::spawn_local(conn);
    let mut serial = 1;
    let (body, md5) = template.body(serial);
    match send(
        &mut sender,
        request(Method::POST, path.clone(), body, &[("content-md5", &md5)]),
    )
    .await
    {
        Ok(true) => {}
        _ => return (lat, 1),
    }
    let lock = Method::from_bytes(b"LOCK").expect("a method");
    let unlock = Method::from_bytes(b"UNLOCK").expect("a method");
    while Instant::now() < until {
        serial += 1;
        let lock_id = lock_id(id, serial);
        let info = lock_info(&lock_id);
        let (body, md5) = template.body(serial);
        let start = Instant::now();
        let steps = [
            request(lock.clone(), path.clone(), small(info.clone()), &[]),
            request(
                Method::POST,
                format!("{path}?ID={lock_id}"),
                body,
                &[("content-md5", &md5)],
            ),
            request(unlock.clone(), path.clone(), small(info), &[]),
        ];
        for req in steps {
            match send(&mut sender, req).await {
                Ok(true) => {}
                Ok(false) => failed += 1,
                Err(_) => return (lat, failed + 1),
            }
        }
        lat.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    (lat, failed)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[i - 1]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, body_file, prefix, connections, seconds] = args.as_slice() else {
        eprintln!(
            "usage: lock_write_unlock URL BODY_FILE PATH_PREFIX CONNECTIONS SECONDS\n  e.g. lock_write_unlock http://127.0.0.1:8080 state.json /state/bench/cycle- 8 5"
        );
        std::process::exit(2);
    };
    let addr = url
        .strip_prefix("http://")
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_string();
    let template = match Template::read(body_file) {
        Ok(t) => std::rc::Rc::new(t),
        Err(e) => {
            eprintln!("lock_write_unlock: {e}");
            std::process::exit(2);
        }
    };
    let (Ok(connections), Ok(seconds)) = (connections.parse::<usize>(), seconds.parse::<f64>())
    else {
        eprintln!("lock_write_unlock: CONNECTIONS is a whole number and SECONDS a number");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let results = local.block_on(&rt, async {
        let tasks: Vec<_> = (1..=connections)
            .map(|i| {
                tokio::task::spawn_local(connection(
                    addr.clone(),
                    format!("{prefix}{i}"),
                    i,
                    template.clone(),
                    until,
                ))
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or((Vec::new(), 1)));
        }
        out
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut all: Vec<f64> = results
        .iter()
        .flat_map(|(l, _)| l.iter().copied())
        .collect();
    let failures: u64 = results.iter().map(|(_, f)| f).sum();
    all.sort_by(f64::total_cmp);
    eprintln!(
        "cycles {}, p90 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        all.len(),
        percentile(&all, 0.9),
        percentile(&all, 0.999),
        all.last().copied().unwrap_or(0.0)
    );
    println!(
        "RESULT {:.1} {:.3} {:.3} {}",
        all.len() as f64 / elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        failures
    );
}
