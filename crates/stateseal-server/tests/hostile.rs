//! Issue 17 ("Reliability under hostile load"), the server's rows, one test per finding: each
//! reproduces the attack and asserts the answer that now holds (no timed assertions: speed and
//! memory figures live in `scripts/bench/hostile.sh`).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use stateseal_server::connections::ClientAddr;
use stateseal_server::{App, DataDir, ServerConfig};
use tower::ServiceExt as _;

use crate::auth::{basic, config};
use crate::support::{lock_info, state, Answer, Harness, Live};

on_every_storage!(
    fail_an_empty_lineage_never_replaces_a_lineage(""),
    fail_rollback_at_the_largest_serial_is_409_not_a_wrap(""),
    fail_lock_info_over_64_kib_is_413(""),
    fail_a_percent_encoded_lock_segment_is_the_lock(""),
);

const ID: &str = "aaaaaaaa-1111-2222-3333-444444444444";

/// L1: a state without a lineage, then one with any lineage, used to get past the lineage check.
async fn fail_an_empty_lineage_never_replaces_a_lineage(h: Harness) {
    assert_eq!(
        h.send("POST", "/state/app", Some(&state(1, "L", "one")))
            .await
            .status,
        200
    );
    let before = h.snapshot().await;
    let empty = h
        .send("POST", "/state/app", Some(&state(2, "", "two")))
        .await;
    assert_eq!(empty.status, 409, "{}", empty.text());
    assert!(empty.text().contains("unrelated"), "{}", empty.text());
    let other = h
        .send("POST", "/state/app", Some(&state(3, "M", "three")))
        .await;
    assert_eq!(other.status, 409, "{}", other.text());
    assert_eq!(h.snapshot().await, before, "nothing was written");
}

/// L2: a rollback of a state at serial 2^64-1 wrapped to serial 0 (a rewind).
async fn fail_rollback_at_the_largest_serial_is_409_not_a_wrap(h: Harness) {
    for serial in [1, u64::MAX] {
        let a = h
            .send("POST", "/state/app", Some(&state(serial, "L", "x")))
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let before = h.snapshot().await;
    let a = h.send("POST", "/v1/rollback/app?seq=1", None).await;
    assert_eq!(a.status, 409, "{}", a.text());
    assert!(a.text().contains("maximum"), "{}", a.text());
    assert_eq!(h.snapshot().await, before);
}

/// L3: lock info had no size limit, and every 423 and listing repeated it.
async fn fail_lock_info_over_64_kib_is_413(h: Harness) {
    let mut big = lock_info(ID, "x@y");
    big.insert_str(1, &format!("\"Info\":\"{}\",", "i".repeat(64 * 1024)));
    let before = h.snapshot().await;
    for (method, uri) in [("LOCK", "/state/app"), ("POST", "/state/app/lock")] {
        let a = h.send(method, uri, Some(big.as_bytes())).await;
        assert_eq!(a.status, 413, "{method} {uri}: {}", a.text());
    }
    assert_eq!(h.snapshot().await, before);
    assert_eq!(h.send("GET", "/state/app/lock", None).await.status, 404);
    let small = h
        .send("LOCK", "/state/app", Some(lock_info(ID, "x@y").as_bytes()))
        .await;
    assert_eq!(small.status, 200, "{}", small.text());
}

/// L6: `%6Cock` got past the reserved last segment, so a state named `…/lock` was stored.
async fn fail_a_percent_encoded_lock_segment_is_the_lock(h: Harness) {
    let before = h.snapshot().await;
    for uri in ["/state/a/%6Cock", "/state/a/%6c%6F%63%6B", "/state/%6Cock"] {
        let a = h.send("POST", uri, Some(&state(1, "L", "x"))).await;
        assert!(
            (400..500).contains(&a.status),
            "{uri}: {} {}",
            a.status,
            a.text()
        );
    }
    assert_eq!(h.snapshot().await, before, "no state named …/lock");
    // The decoded segment addresses the lock, as `lock` does.
    let a = h
        .send(
            "POST",
            "/state/a/%6Cock",
            Some(lock_info(ID, "x@y").as_bytes()),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(h.send("GET", "/state/a/lock", None).await.status, 200);
}

/// A request through the router as if it came from `addr`.
async fn from(h: &Harness, addr: &str, method: &str, uri: &str, auth: &str) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", auth)
        .body(Body::empty())
        .unwrap();
    let addr: SocketAddr = addr.parse().unwrap();
    req.extensions_mut().insert(ClientAddr(Some(addr)));
    h.raw(req).await
}

/// M1: no brute-force throttling; the right password still worked after 442 failures.
#[tokio::test]
async fn fail_guesses_back_off_per_address_and_per_user_name() {
    let h = Harness::with_config(&config());
    let free = stateseal_server::throttle::FREE_FAILURES;
    for i in 0..=free {
        let a = from(
            &h,
            "10.0.0.1:1000",
            "GET",
            "/v1/states",
            &basic("ci", "guess"),
        )
        .await;
        assert_eq!(a.status, 403, "guess {i}: {}", a.text());
    }
    // In the back-off: refused before any check, the right password too.
    let right = from(
        &h,
        "10.0.0.1:1000",
        "GET",
        "/v1/states",
        &basic("ci", "ci-pw"),
    )
    .await;
    assert_eq!(right.status, 429, "{}", right.text());
    // The name is throttled from any address, the address for any name…
    let elsewhere = from(
        &h,
        "10.0.0.2:1000",
        "GET",
        "/v1/states",
        &basic("ci", "ci-pw"),
    )
    .await;
    assert_eq!(elsewhere.status, 429);
    let root_here = from(
        &h,
        "10.0.0.1:2000",
        "GET",
        "/v1/states",
        &basic("root", "root-pw"),
    )
    .await;
    assert_eq!(root_here.status, 429);
    // …and others elsewhere are served; a token is not a password check.
    let root = from(
        &h,
        "10.0.0.2:1000",
        "GET",
        "/v1/states",
        &basic("root", "root-pw"),
    )
    .await;
    assert_eq!(root.status, 200, "{}", root.text());
    // Random names from one address don't escape its back-off.
    let (before_addresses, before_names) = h.app.auth.as_ref().unwrap().throttle().sizes();
    for i in 0..50 {
        let a = from(
            &h,
            "10.0.0.1:3000",
            "GET",
            "/v1/states",
            &basic(&format!("random-{i}"), "x"),
        )
        .await;
        assert_eq!(a.status, 429);
    }
    assert_eq!(
        h.app.auth.as_ref().unwrap().throttle().sizes(),
        (before_addresses, before_names),
        "refusals in a back-off record nothing"
    );
}

/// H1: password checks are bounded: with every permit taken, a Basic request is 503 with
/// Retry-After at once (no argon2 run, no memory), and served again once a permit is free.
#[tokio::test]
async fn fail_password_checks_beyond_the_permits_are_503_not_queued() {
    let h = Harness::with_config(&config());
    let checks = h.app.auth.as_ref().unwrap().password_checks();
    let held: Vec<_> = (0..checks.permits())
        .map(|_| checks.try_permit().unwrap())
        .collect();
    let mut req = Request::builder()
        .uri("/v1/states")
        .header("authorization", basic("nobody", "x"))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ClientAddr(Some("10.9.9.9:1".parse().unwrap())));
    let resp = stateseal_server::router(h.app.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    drop(held);
    let a = h
        .send_with(
            "GET",
            "/v1/states",
            None,
            &[("authorization", &basic("root", "root-pw"))],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(checks.pooled_buffers() <= checks.permits());
}

/// A server on its own data directory, with the data directory's handle kept.
fn on_data_dir(config: &str) -> (tempfile::TempDir, Arc<DataDir>, Arc<App>) {
    let dir = tempfile::tempdir().unwrap();
    let data = Arc::new(DataDir::open(&dir.path().join("data")).unwrap());
    let app = App::with_storage(
        data.clone(),
        ServerConfig::parse("t.hcl", config, None).unwrap(),
    )
    .unwrap();
    (dir, data, Arc::new(app))
}

async fn send(app: &Arc<App>, method: &str, uri: &str, body: &[u8]) -> (u16, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_vec()))
        .unwrap();
    let resp = stateseal_server::router(app.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// L4: the per-path cache grew on GETs of paths that do not exist, and was never freed.
#[tokio::test]
async fn fail_requests_for_missing_states_cache_nothing() {
    let (_dir, data, app) = on_data_dir("");
    for i in 0..2000 {
        for uri in [
            format!("/state/missing-{i}"),
            format!("/state/missing-{i}/lock"),
            format!("/v1/versions/missing-{i}"),
        ] {
            assert_eq!(send(&app, "GET", &uri, b"").await.0, 404, "{uri}");
        }
    }
    assert_eq!(data.cached_slots(), 0);
    assert_eq!(
        send(&app, "POST", "/state/real", &state(1, "L", "x"))
            .await
            .0,
        200
    );
    assert_eq!(data.cached_slots(), 1, "a stored state stays cached");
}

/// L5: one unreadable `lock.json` made that state and `/v1/states` answer 500 for everyone,
/// and nothing but a file edit cleared it; 500s, `/healthz` and `/metrics` named server paths.
#[tokio::test]
async fn fail_an_unreadable_lock_record_is_reported_and_can_be_cleared_if_unchanged() {
    let (dir, _data, app) = on_data_dir("");
    for name in ["app", "other"] {
        assert_eq!(
            send(&app, "POST", &format!("/state/{name}"), &state(1, "L", "x"))
                .await
                .0,
            200
        );
    }
    let lock_file = dir.path().join("data/states/app/@/lock.json");
    std::fs::write(&lock_file, b"{ not lock info").unwrap();
    // A fresh server (the record is read when the state is first used).
    drop(app);
    drop(_data);
    let data = Arc::new(DataDir::open(&dir.path().join("data")).unwrap());
    let app =
        Arc::new(App::with_storage(data, ServerConfig::parse("t.hcl", "", None).unwrap()).unwrap());

    let (status, listing) = send(&app, "GET", "/v1/states", b"").await;
    assert_eq!(status, 200, "{listing}");
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let states = listing["states"].as_array().unwrap();
    assert_eq!(states.len(), 2, "{listing}");
    assert_eq!(states[0]["path"], "app");
    assert_eq!(states[0]["lock_unreadable"], true);
    assert!(states[1].get("lock_unreadable").is_none());
    assert_eq!(
        send(&app, "GET", "/state/app", b"").await.0,
        200,
        "still readable"
    );
    let (status, holder) = send(&app, "POST", "/state/app", &state(2, "L", "y")).await;
    assert_eq!(status, 423, "writes wait for the record to be cleared");
    let holder: serde_json::Value = serde_json::from_str(&holder).unwrap();
    let id = holder["ID"].as_str().unwrap().to_string();
    assert!(id.starts_with("unreadable-lock-record-"), "{id}");
    assert_eq!(
        send(&app, "LOCK", "/state/x", lock_info(&id, "me@x").as_bytes())
            .await
            .0,
        400,
        "the reserved ID can't be taken"
    );

    // Cleared only while unchanged: the record changed since the ID was read.
    std::fs::write(&lock_file, b"{ other garbage").unwrap();
    let stale = send(
        &app,
        "UNLOCK",
        "/state/app",
        lock_info(&id, "admin@x").as_bytes(),
    )
    .await;
    assert_eq!(stale.0, 423, "{}", stale.1);
    assert!(lock_file.exists());
    let current: serde_json::Value = serde_json::from_str(&stale.1).unwrap();
    let current = current["ID"].as_str().unwrap();
    let cleared = send(
        &app,
        "UNLOCK",
        "/state/app",
        lock_info(current, "admin@x").as_bytes(),
    )
    .await;
    assert_eq!(cleared.0, 200, "{}", cleared.1);
    assert!(!lock_file.exists());
    assert_eq!(
        send(&app, "POST", "/state/app", &state(2, "L", "y"))
            .await
            .0,
        200
    );

    // No answer names a server path: a 500, /healthz, /metrics.
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let record = dir.path().join("data/states/other/@/v");
    for f in std::fs::read_dir(&record).unwrap() {
        std::fs::write(f.unwrap().path(), b"\xff not a record").unwrap();
    }
    let (status, _) = send(&app, "GET", "/v1/versions/other", b"").await;
    assert_eq!(
        status, 500,
        "an unreadable version record is the server's failure"
    );
    for uri in ["/v1/versions/other", "/healthz", "/metrics", "/v1/states"] {
        let (_, body) = send(&app, "GET", uri, b"").await;
        assert!(
            !body.contains(root.to_str().unwrap()) && !body.contains(dir.path().to_str().unwrap()),
            "{uri} names a server path: {body}"
        );
    }
}

/// M2 and I2 over real sockets: a client that sends part of its headers and stops is closed by
/// the header deadline (the answer: 408 or a closed connection, never a wait for ever); a body
/// that stalls ends with 408; cleartext HTTP/2 (h2c) is not spoken.
#[test]
fn fail_slow_clients_are_closed_and_h2c_is_not_spoken() {
    let live = Live::start("");
    let read_all = |mut c: TcpStream| {
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        String::from_utf8_lossy(&got).into_owned()
    };
    let slow_headers = std::thread::spawn({
        let addr = live.addr;
        move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            read_all(c)
        }
    });
    let slow_body = std::thread::spawn({
        let addr = live.addr;
        move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"POST /state/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"version\":4,")
                .unwrap();
            read_all(c)
        }
    });
    let mut h2 = TcpStream::connect(live.addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let h2_answer = read_all(h2);
    assert!(
        h2_answer.is_empty()
            || h2_answer.starts_with("HTTP/1.1 4")
            || h2_answer.starts_with("HTTP/1.1 505"),
        "h2c must not be spoken: {h2_answer:?}"
    );
    let headers_answer = slow_headers.join().unwrap();
    assert!(
        headers_answer.is_empty() || headers_answer.starts_with("HTTP/1.1 408"),
        "{headers_answer:?}"
    );
    let body_answer = slow_body.join().unwrap();
    assert!(body_answer.starts_with("HTTP/1.1 408"), "{body_answer:?}");
    assert!(live.stored_versions("slow").is_empty());
    // The server still serves.
    let ok = crate::support::http(
        &crate::support::http_agent(),
        "GET",
        &live.url("/healthz"),
        None,
    )
    .unwrap();
    assert_eq!(ok.status, 200);
}
