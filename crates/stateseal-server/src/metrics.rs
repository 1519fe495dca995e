//! `/metrics` in Prometheus' text format. Requests are labelled by route *template*
//! (`/state/{*path}`), never by the raw path, and by a closed set of methods, so the number of
//! series stays bounded whatever clients send (BACKENDS.md §4.4).
//!
//! * `stateseal_http_requests_total{route,method,status}`
//! * `stateseal_http_request_duration_seconds{route,method}` (histogram)
//! * `stateseal_state_wait_seconds_total`, `stateseal_state_waits_total`: time requests spent
//!   waiting for another operation on the same state to finish (on the data directory,
//!   operations on one state are serialized; 0 on S3)
//! * `stateseal_lock_conflicts_total`: LOCKs refused because someone else holds the lock
//! * `stateseal_write_conflicts_total{reason}`: uploads refused with 409 or 423
//! * `stateseal_encryption_failures_total`: encrypting or decrypting at rest failed
//! * `stateseal_states`: states stored
//! * `stateseal_oidc_refusals_total{reason}`, `stateseal_oidc_key_fetches_total{issuer}`: with
//!   `oidc` issuers configured ([`crate::oidc`])
//! * `stateseal_storage_info{kind,location}`: where (`data_dir`, its directory not shown: no auth here; or `s3` and
//!   `s3://bucket`)

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::storage::Summary;
use crate::App;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    pub lock_conflicts: AtomicU64,
    pub write_conflicts_locked: AtomicU64,
    pub write_conflicts_successor: AtomicU64,
    pub encryption_failures: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "LOCK" => "LOCK",
        "UNLOCK" => "UNLOCK",
        _ => "other",
    }
}

fn route_label(route: Option<&str>) -> &'static str {
    match route {
        Some("/state/{*path}") => "/state/{*path}",
        Some("/state") | Some("/state/") => "/state",
        Some("/v1/states") => "/v1/states",
        Some("/v1/locks") => "/v1/locks",
        Some("/v1/versions/{*path}") => "/v1/versions/{*path}",
        Some("/v1/rollback/{*path}") => "/v1/rollback/{*path}",
        Some("/healthz") => "/healthz",
        Some("/metrics") => "/metrics",
        Some(r) if r.starts_with("/ui") => "/ui",
        _ => "unmatched",
    }
}

impl Metrics {
    fn observe(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route, method, status))
            .or_default() += 1;
        let mut lat = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = lat.entry((route, method)).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The text exposition. `states` is the current number of stored states, `waits` the
    /// storage's [`crate::storage::Storage::waits`].
    pub fn render(&self, storage: &Summary, states: usize, waits: (f64, u64)) -> String {
        let mut out = String::new();
        out.push_str("# HELP stateseal_http_requests_total HTTP requests by route template, method and status.\n# TYPE stateseal_http_requests_total counter\n");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "stateseal_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP stateseal_http_request_duration_seconds Request latency by route template and method.\n# TYPE stateseal_http_request_duration_seconds histogram\n");
        for ((route, method), h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            for (le, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "stateseal_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "stateseal_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "stateseal_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "stateseal_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP stateseal_lock_conflicts_total LOCKs refused because another ID holds the lock.\n# TYPE stateseal_lock_conflicts_total counter\nstateseal_lock_conflicts_total {}\n\
# HELP stateseal_write_conflicts_total Uploads refused: locked by another ID, or not a successor of the stored state.\n# TYPE stateseal_write_conflicts_total counter\n\
stateseal_write_conflicts_total{{reason=\"locked\"}} {}\nstateseal_write_conflicts_total{{reason=\"successor\"}} {}\n\
# HELP stateseal_encryption_failures_total Encryption or decryption at rest that failed.\n# TYPE stateseal_encryption_failures_total counter\nstateseal_encryption_failures_total {}\n\
# HELP stateseal_state_wait_seconds_total Time spent waiting for other operations on the same state.\n# TYPE stateseal_state_wait_seconds_total counter\nstateseal_state_wait_seconds_total {}\n\
# HELP stateseal_state_waits_total Operations that waited for the state.\n# TYPE stateseal_state_waits_total counter\nstateseal_state_waits_total {}\n\
# HELP stateseal_states States stored.\n# TYPE stateseal_states gauge\nstateseal_states {states}\n\
# HELP stateseal_storage_info Where states are kept.\n# TYPE stateseal_storage_info gauge\nstateseal_storage_info{{kind=\"{}\",location=\"{}\"}} 1\n",
            load(&self.lock_conflicts),
            load(&self.write_conflicts_locked),
            load(&self.write_conflicts_successor),
            load(&self.encryption_failures),
            waits.0,
            waits.1,
            storage.kind,
            label_value(&storage.location),
        );
        out
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: times every request and counts it under its route template.
pub async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = route_label(
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let method = method_label(req.method().as_str());
    let start = Instant::now();
    let resp = next.run(req).await;
    app.metrics.observe(
        route,
        method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics`.
pub async fn metrics(
    State(storage): State<Arc<dyn crate::storage::Storage>>,
    State(metrics): State<Arc<Metrics>>,
    State(auth): State<Option<Arc<crate::auth::Auth>>>,
) -> String {
    let states = storage.list("").await.map_or(0, |l| l.len());
    let mut out = metrics.render(&storage.summary().public(), states, storage.waits());
    if let Some(oidc) = auth.as_deref().map(crate::auth::Auth::oidc) {
        if !oidc.is_empty() {
            out.push_str(&oidc.render_metrics());
        }
    }
    out
}
