//! `/metrics`: counted by route template and a closed set of methods, never by raw path.

use crate::support::{lock_info, state, Harness};

#[tokio::test]
async fn metrics_are_labelled_by_route_template_not_by_path() {
    let h = Harness::new();
    assert_eq!(
        h.send(
            "POST",
            "/state/team-a/secret-name",
            Some(&state(1, "L", "x"))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        h.send("POST", "/state/team-b/other", Some(&state(1, "L", "x")))
            .await
            .status,
        200
    );
    assert_eq!(
        h.send("POST", "/state/team-b/other", Some(&state(0, "L", "older")))
            .await
            .status,
        409
    );
    let a = lock_info("aaaaaaaa-1111-2222-3333-444444444444", "a@b");
    let b = lock_info("bbbbbbbb-1111-2222-3333-444444444444", "b@c");
    assert_eq!(
        h.send("LOCK", "/state/team-a/secret-name", Some(a.as_bytes()))
            .await
            .status,
        200
    );
    assert_eq!(
        h.send("LOCK", "/state/team-a/secret-name", Some(b.as_bytes()))
            .await
            .status,
        423
    );
    assert_eq!(
        h.send(
            "POST",
            "/state/team-a/secret-name",
            Some(&state(2, "L", "y"))
        )
        .await
        .status,
        423
    );
    assert_eq!(h.send("FROB", "/state/team-a/x", None).await.status, 405);
    let m = h.send("GET", "/metrics", None).await;
    assert_eq!(m.status, 200);
    let t = m.text();
    for line in [
        "stateseal_http_requests_total{route=\"/state/{*path}\",method=\"POST\",status=\"200\"} 2",
        "stateseal_http_requests_total{route=\"/state/{*path}\",method=\"LOCK\",status=\"423\"} 1",
        "stateseal_http_requests_total{route=\"/state/{*path}\",method=\"other\",status=\"405\"} 1",
        "stateseal_http_request_duration_seconds_count{route=\"/state/{*path}\",method=\"POST\"} 4",
        "stateseal_lock_conflicts_total 1",
        "stateseal_write_conflicts_total{reason=\"locked\"} 1",
        "stateseal_write_conflicts_total{reason=\"successor\"} 1",
        "stateseal_encryption_failures_total 0",
        "stateseal_states 2",
    ] {
        assert!(t.lines().any(|l| l == line), "missing {line:?} in:\n{t}");
    }
    assert!(
        !t.contains("secret-name") && !t.contains("team-"),
        "no raw paths:\n{t}"
    );
}
