//! Build 1 of issue 10, one test per rule: each asserts the status, the body, and (for every
//! refusal) that the stored files did not change.

use axum::body::Body;
use axum::http::Request;

use crate::support::{content_md5, etag_of, lock_info, state, Harness};

// The rules that run on every storage (see `on_every_storage!`).
on_every_storage!(
    get_of_a_missing_state_is_404(""),
    update_then_get_returns_the_exact_bytes_with_post_or_put(""),
    lock_and_unlock_answer_200(""),
    a_conflict_is_423_with_the_holders_full_lock_info(""),
    a_repeated_lock_with_the_holders_id_is_200(""),
    unlock_accepts_the_four_body_shapes(""),
    unlock_with_another_id_is_423_and_keeps_the_lock(""),
    force_unlock_then_the_old_holder_can_not_write(""),
    an_update_while_locked_needs_the_holders_id(""),
    the_same_serial_with_other_bytes_is_409(""),
    a_lower_serial_or_a_foreign_lineage_is_409_with_a_message(""),
    a_body_that_is_not_a_state_is_400(""),
    delete_keeps_versions_and_then_get_is_404(""),
    etag_and_conditional_uploads(""),
);

const P: &str = "/state/team-a/prod";
const ID_A: &str = "aaaaaaaa-1111-2222-3333-444444444444";
const ID_B: &str = "bbbbbbbb-1111-2222-3333-444444444444";

/// The server `h` with serial 1 stored at `P`.
async fn with_state(h: Harness) -> (Harness, Vec<u8>) {
    let s1 = state(1, "lin-1", "hello");
    let a = h.send("POST", P, Some(&s1)).await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b""[..]));
    (h, s1)
}

/// Sends, and asserts that nothing stored changed and the answer is a 4xx.
async fn refused(
    h: &Harness,
    method: &str,
    uri: &str,
    body: Option<&[u8]>,
) -> crate::support::Answer {
    let before = h.snapshot().await;
    let a = h.send(method, uri, body).await;
    assert!(
        (400..500).contains(&a.status),
        "{method} {uri}: a refusal must be 4xx, got {} {}",
        a.status,
        a.text()
    );
    assert_eq!(
        h.snapshot().await,
        before,
        "{method} {uri} changed the stored files"
    );
    a
}

#[tokio::test]
async fn invalid_paths_are_400_and_never_redirected() {
    let (h, _) = with_state(Harness::new()).await;
    for uri in [
        "/state",
        "/state/",
        "/state/a//b",
        "/state/a/",
        "/state/a/../b",
        "/state/a/./b",
        "/state/..",
        "/state/a%2Fb",
        "/state/a%00b",
        "/state/a%0Ab",
        "/state/%zz",
        "/state/lock",
    ] {
        for method in ["GET", "POST", "LOCK", "UNLOCK", "DELETE"] {
            let a = refused(&h, method, uri, Some(&state(9, "lin-1", "x"))).await;
            assert_eq!(a.status, 400, "{method} {uri}: {}", a.text());
            assert!(a.text().contains("invalid state path"), "{}", a.text());
        }
    }
    let long = format!("/state/{}", vec!["abcdefgh"; 70].join("/"));
    let a = refused(&h, "GET", &long, None).await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("longer than"), "{}", a.text());
}

async fn get_of_a_missing_state_is_404(h: Harness) {
    let a = refused(&h, "GET", "/state/nothing/here", None).await;
    assert_eq!(a.status, 404);
    assert!(a.text().contains("no state"), "{}", a.text());
}

async fn update_then_get_returns_the_exact_bytes_with_post_or_put(h: Harness) {
    let (h, s1) = with_state(h).await;
    let a = h.send("GET", P, None).await;
    assert_eq!((a.status, &a.body), (200, &s1));
    assert_eq!(a.content_type, "application/json");
    let s2 = state(2, "lin-1", "again");
    let a = h.send("PUT", P, Some(&s2)).await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b""[..]));
    assert_eq!(h.send("GET", P, None).await.body, s2);
    // Nested paths and siblings are separate states.
    assert_eq!(h.send("GET", "/state/team-a", None).await.status, 404);
    assert_eq!(
        h.send("GET", "/state/team-a/prod/x", None).await.status,
        404
    );
}

async fn lock_and_unlock_answer_200(h: Harness) {
    let (h, _) = with_state(h).await;
    let info = lock_info(ID_A, "alice@ci");
    let a = h.send("LOCK", P, Some(info.as_bytes())).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.text(), info, "LOCK answers the stored lock info");
    let a = h.send("UNLOCK", P, Some(info.as_bytes())).await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b""[..]));
    // The lock is gone: anyone can lock now.
    let other = lock_info(ID_B, "bob@ci");
    assert_eq!(h.send("LOCK", P, Some(other.as_bytes())).await.status, 200);
}

async fn a_conflict_is_423_with_the_holders_full_lock_info(h: Harness) {
    let (h, _) = with_state(h).await;
    let holder = lock_info(ID_A, "alice@ci");
    assert_eq!(h.send("LOCK", P, Some(holder.as_bytes())).await.status, 200);
    let a = refused(&h, "LOCK", P, Some(lock_info(ID_B, "bob@ci").as_bytes())).await;
    assert_eq!(a.status, 423);
    assert_eq!(a.content_type, "application/json");
    assert_eq!(a.text(), holder, "the holder's LockInfo, as Go marshals it");
}

async fn a_repeated_lock_with_the_holders_id_is_200(h: Harness) {
    let (h, _) = with_state(h).await;
    let holder = lock_info(ID_A, "alice@ci");
    assert_eq!(h.send("LOCK", P, Some(holder.as_bytes())).await.status, 200);
    let before = h.snapshot().await;
    let a = h.send("LOCK", P, Some(holder.as_bytes())).await;
    assert_eq!((a.status, a.text()), (200, holder.clone()));
    assert_eq!(
        h.snapshot().await,
        before,
        "a repeated LOCK changes nothing"
    );
}

#[tokio::test]
async fn post_and_delete_on_the_lock_url_lock_and_unlock() {
    let (h, _) = with_state(Harness::new()).await;
    let lock_url = format!("{P}/lock");
    let holder = lock_info(ID_A, "alice@ci");
    assert_eq!(
        h.send("POST", &lock_url, Some(holder.as_bytes()))
            .await
            .status,
        200
    );
    let a = h.send("GET", &lock_url, None).await;
    assert_eq!((a.status, a.text()), (200, holder.clone()));
    let a = refused(
        &h,
        "POST",
        &lock_url,
        Some(lock_info(ID_B, "bob@ci").as_bytes()),
    )
    .await;
    assert_eq!((a.status, a.text()), (423, holder.clone()));
    // The same lock is seen through the state URL.
    let a = refused(&h, "LOCK", P, Some(lock_info(ID_B, "bob@ci").as_bytes())).await;
    assert_eq!((a.status, a.text()), (423, holder.clone()));
    assert_eq!(
        h.send("DELETE", &lock_url, Some(holder.as_bytes()))
            .await
            .status,
        200
    );
    assert_eq!(h.send("GET", &lock_url, None).await.status, 404);
}

#[tokio::test]
async fn lock_needs_lock_info() {
    let (h, _) = with_state(Harness::new()).await;
    for body in [&b""[..], b"not json", b"{\"Who\":\"x\"}", b"[1]"] {
        let a = refused(&h, "LOCK", P, Some(body)).await;
        assert_eq!(a.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert!(!a.text().is_empty());
    }
}

/// The four UNLOCK body shapes of BACKENDS.md §4.4, each releasing a held lock.
async fn unlock_accepts_the_four_body_shapes(h: Harness) {
    let (h, _) = with_state(h).await;
    let holder = lock_info(ID_A, "alice@ci");
    let id_only = format!(
        r#"{{"ID":"{ID_A}","Operation":"","Info":"","Who":"","Version":"","Created":"0001-01-01T00:00:00Z","Path":""}}"#
    );
    let empty_with_headers = || {
        Request::builder()
            .method("UNLOCK")
            .uri(P)
            .header("content-type", "application/json")
            .header("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")
            .body(Body::empty())
            .unwrap()
    };
    let empty_bare = || {
        Request::builder()
            .method("UNLOCK")
            .uri(P)
            .body(Body::empty())
            .unwrap()
    };
    for shape in ["full", "id-only", "empty-with-headers", "empty-bare"] {
        assert_eq!(h.send("LOCK", P, Some(holder.as_bytes())).await.status, 200);
        let a = match shape {
            "full" => h.send("UNLOCK", P, Some(holder.as_bytes())).await,
            "id-only" => h.send("UNLOCK", P, Some(id_only.as_bytes())).await,
            "empty-with-headers" => h.raw(empty_with_headers()).await,
            _ => h.raw(empty_bare()).await,
        };
        assert_eq!((a.status, a.body.as_slice()), (200, &b""[..]), "{shape}");
        assert_eq!(
            h.send("GET", &format!("{P}/lock"), None).await.status,
            404,
            "{shape} released the lock"
        );
    }
}

async fn unlock_with_another_id_is_423_and_keeps_the_lock(h: Harness) {
    let (h, _) = with_state(h).await;
    let holder = lock_info(ID_A, "alice@ci");
    assert_eq!(h.send("LOCK", P, Some(holder.as_bytes())).await.status, 200);
    let id_only_other = format!(r#"{{"ID":"{ID_B}"}}"#);
    for body in [lock_info(ID_B, "bob@ci"), id_only_other] {
        let a = refused(&h, "UNLOCK", P, Some(body.as_bytes())).await;
        assert_eq!((a.status, a.text()), (423, holder.clone()));
    }
    let a = refused(&h, "UNLOCK", P, Some(b"{\"Who\":\"nobody\"}")).await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("no ID"), "{}", a.text());
}

#[tokio::test]
async fn unlock_of_a_free_state_is_200() {
    let (h, _) = with_state(Harness::new()).await;
    let before = h.snapshot().await;
    let a = h
        .send("UNLOCK", P, Some(lock_info(ID_A, "a@b").as_bytes()))
        .await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b""[..]));
    assert_eq!(h.snapshot().await, before);
}

async fn force_unlock_then_the_old_holder_can_not_write(h: Harness) {
    let (h, _) = with_state(h).await;
    let holder = lock_info(ID_A, "crashed@ci");
    assert_eq!(h.send("LOCK", P, Some(holder.as_bytes())).await.status, 200);
    // Terraform's force-unlock: an empty body with the MD5 of nothing.
    let a = h
        .raw(
            Request::builder()
                .method("UNLOCK")
                .uri(P)
                .header("content-type", "application/json")
                .header("content-md5", content_md5(b""))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, 200);
    let next = lock_info(ID_B, "bob@ci");
    assert_eq!(h.send("LOCK", P, Some(next.as_bytes())).await.status, 200);
    let a = refused(
        &h,
        "POST",
        &format!("{P}?ID={ID_A}"),
        Some(&state(2, "lin-1", "late")),
    )
    .await;
    assert_eq!((a.status, a.text()), (423, next));
}

async fn an_update_while_locked_needs_the_holders_id(h: Harness) {
    let (h, s1) = with_state(h).await;
    let holder = lock_info(ID_A, "alice@ci");
    assert_eq!(h.send("LOCK", P, Some(holder.as_bytes())).await.status, 200);
    let s2 = state(2, "lin-1", "changed");
    for uri in [
        P.to_string(),
        format!("{P}?ID={ID_B}"),
        format!("{P}?id={ID_A}"),
    ] {
        let a = refused(&h, "POST", &uri, Some(&s2)).await;
        assert_eq!((a.status, a.text()), (423, holder.clone()), "{uri}");
        let a = refused(&h, "DELETE", &uri, None).await;
        assert_eq!((a.status, a.text()), (423, holder.clone()), "DELETE {uri}");
    }
    assert_eq!(h.send("GET", P, None).await.body, s1);
    // Go's Query().Encode() puts ID among the other parameters.
    let a = h
        .send("POST", &format!("{P}?a=1&ID={ID_A}"), Some(&s2))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(h.send("GET", P, None).await.body, s2);
}

#[tokio::test]
async fn a_retried_upload_of_the_stored_serial_with_the_same_bytes_is_200() {
    let (h, s1) = with_state(Harness::new()).await;
    let before = h.snapshot().await;
    let a = h.send("POST", P, Some(&s1)).await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b""[..]));
    assert_eq!(h.snapshot().await, before, "nothing new is stored");
    assert_eq!(h.version_files("team-a/prod").len(), 1);
}

async fn the_same_serial_with_other_bytes_is_409(h: Harness) {
    let (h, _) = with_state(h).await;
    let a = refused(&h, "POST", P, Some(&state(1, "lin-1", "different"))).await;
    assert_eq!(a.status, 409);
    assert!(
        a.text().contains("same serial") && a.text().contains("nothing was written"),
        "{}",
        a.text()
    );
}

/// A lower serial and a foreign lineage: 409 with a message naming both sides and why.
async fn a_lower_serial_or_a_foreign_lineage_is_409_with_a_message(h: Harness) {
    let (h, _) = with_state(h).await;
    assert_eq!(
        h.send("POST", P, Some(&state(5, "lin-1", "five")))
            .await
            .status,
        200
    );
    for (body, words) in [
        (state(4, "lin-1", "four"), ["serial 4", "serial 5", "newer"]),
        (
            state(7, "other-lineage", "x"),
            ["other-lineage", "lin-1", "unrelated"],
        ),
    ] {
        let a = refused(&h, "POST", P, Some(&body)).await;
        assert_eq!(a.status, 409);
        let t = a.text();
        assert!(words.iter().all(|w| t.contains(w)), "{t}");
    }
}

async fn a_body_that_is_not_a_state_is_400(h: Harness) {
    let (h, _) = with_state(h).await;
    let plan_envelope = br#"{"meta":{},"encrypted_data":"AAAA","encryption_version":"v0"}"#;
    let future_envelope = br#"{"serial":3,"lineage":"lin-1","meta":{},"encrypted_data":"AAAA","encryption_version":"v9"}"#;
    for body in [
        &b""[..],
        b"hello",
        b"[1,2]",
        b"{\"serial\":2}",
        b"{\"version\":3,\"serial\":2}",
        b"{\"version\":4,\"serial\":-1}",
        plan_envelope,
        future_envelope,
    ] {
        let a = refused(&h, "POST", P, Some(body)).await;
        assert_eq!(
            a.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            a.text()
        );
        assert!(a.text().contains("nothing was written"), "{}", a.text());
    }
}

#[tokio::test]
async fn content_md5_is_verified() {
    let (h, s1) = with_state(Harness::new()).await;
    let s2 = state(2, "lin-1", "two");
    for md5 in [content_md5(b"something else"), "not base64!".to_string()] {
        let before = h.snapshot().await;
        let a = h
            .raw(
                Request::builder()
                    .method("POST")
                    .uri(P)
                    .header("content-md5", md5)
                    .body(Body::from(s2.clone()))
                    .unwrap(),
            )
            .await;
        assert_eq!(a.status, 400);
        assert!(a.text().contains("Content-MD5"), "{}", a.text());
        assert_eq!(h.snapshot().await, before);
    }
    assert_eq!(h.send("GET", P, None).await.body, s1);
    // Without the header, nothing is checked.
    let a = h
        .raw(
            Request::builder()
                .method("POST")
                .uri(P)
                .body(Body::from(s2.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_streamed_or_declared() {
    let h = Harness::with_config("max_body_bytes = 1000\n");
    let s = state(1, "lin-1", "ok");
    assert_eq!(h.send("POST", P, Some(&s)).await.status, 200);
    let big = state(2, "lin-1", &"x".repeat(1000));
    // Declared by Content-Length.
    let a = refused(&h, "POST", P, Some(&big)).await;
    assert_eq!(a.status, 413);
    assert!(a.text().contains("1000 bytes"), "{}", a.text());
    // Streamed in chunks without a length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(100).map(|c| Ok(c.to_vec())).collect();
    let before = h.snapshot().await;
    let a = h
        .raw(
            Request::builder()
                .method("POST")
                .uri(P)
                .body(Body::from_stream(futures_stream(chunks)))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, 413, "{}", a.text());
    assert_eq!(h.snapshot().await, before);
    assert_eq!(h.send("GET", P, None).await.body, s);
}

/// A stream over ready items (no extra dependency).
fn futures_stream(
    items: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    struct Iter(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);
    impl futures_core::Stream for Iter {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

async fn delete_keeps_versions_and_then_get_is_404(h: Harness) {
    let (h, _) = with_state(h).await;
    let a = h.send("DELETE", P, None).await;
    assert_eq!((a.status, a.body.as_slice()), (200, &b""[..]));
    assert_eq!(h.send("GET", P, None).await.status, 404);
    assert_eq!(refused(&h, "DELETE", P, None).await.status, 404);
    let v = h.send("GET", "/v1/versions/team-a/prod", None).await;
    let v: serde_json::Value = serde_json::from_slice(&v.body).unwrap();
    let kinds: Vec<&str> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["stored"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["deleted", "plaintext"], "the old version is kept");
    // A new state may start over with any lineage.
    assert_eq!(
        h.send("POST", P, Some(&state(1, "fresh", "new")))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn other_methods_are_405() {
    let (h, _) = with_state(Harness::new()).await;
    assert_eq!(refused(&h, "PATCH", P, Some(b"{}")).await.status, 405);
    assert_eq!(
        refused(&h, "PUT", &format!("{P}/lock"), Some(b"{}"))
            .await
            .status,
        405
    );
}

/// Hostile bodies on every verb: each is a 4xx (or a success where the body is irrelevant),
/// never a 5xx or a panic, and nothing a refusal touched changed.
#[tokio::test]
async fn fail_hostile_bodies_are_refused_without_a_5xx() {
    let (h, _) = with_state(Harness::new()).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!(
        "{{\"version\":4,\"serial\":2,\"lineage\":\"lin-1\",\"outputs\":{}1{}}}",
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    let bodies: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        deep_object.into_bytes(),
        b"\xef\xbb\xbf{\"version\":4,\"serial\":2}".to_vec(),
        b"{\"version\":4,\"serial\":18446744073709551616,\"lineage\":\"lin-1\"}".to_vec(),
        b"{\"version\":4,\"serial\":2.5,\"lineage\":\"lin-1\"}".to_vec(),
        b"{\"version\":4,\"serial\":2,\"lineage\":7}".to_vec(),
        b"\xff\xfe\x00\x01".to_vec(),
        b"\0".to_vec(),
        br#"{"serial":2,"lineage":"lin-1","meta":{"k":"%%%"},"encrypted_data":"@@","encryption_version":"v0"}"#.to_vec(),
        br#"{"ID":"x","Created":"not a time"}"#.to_vec(),
        br#"{"ID":"x","Created":"9999-99-99T99:99:99Z"}"#.to_vec(),
        vec![b'{'; 1000],
    ];
    for body in &bodies {
        for (method, uri) in [
            ("POST", P.to_string()),
            ("PUT", format!("{P}?ID=%ff%00")),
            ("LOCK", P.to_string()),
            ("UNLOCK", P.to_string()),
            ("POST", format!("{P}/lock")),
            ("DELETE", format!("{P}/lock")),
        ] {
            let before = h.snapshot().await;
            let a = h.send(method, &uri, Some(body)).await;
            assert!(
                a.status < 500,
                "{method} {uri} {:?}: {} {}",
                String::from_utf8_lossy(&body[..body.len().min(40)]),
                a.status,
                a.text()
            );
            if a.status >= 400 {
                assert_eq!(
                    h.snapshot().await,
                    before,
                    "{method} {uri}: a refusal changed files"
                );
            }
        }
    }
}

/// An extension for clients that want optimistic concurrency: GET answers an ETag (SHA-256 of
/// the stored bytes); an upload with a stale `If-Match`, or `If-None-Match: *` over a stored
/// state, is 412 and changes nothing.
async fn etag_and_conditional_uploads(h: Harness) {
    let (h, s1) = with_state(h).await;
    let got = h.send("GET", P, None).await;
    assert_eq!(got.etag, etag_of(&s1));
    let s2 = state(2, "lin-1", "two");
    for (name, value) in [("if-match", "\"stale\""), ("if-none-match", "*")] {
        let before = h.snapshot().await;
        let a = h.send_with("POST", P, Some(&s2), &[(name, value)]).await;
        assert_eq!(a.status, 412, "{name}: {}", a.text());
        assert!(a.text().contains("nothing was written"), "{}", a.text());
        assert_eq!(h.snapshot().await, before);
    }
    let a = h
        .send_with("POST", P, Some(&s2), &[("if-match", &got.etag)])
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_ne!(h.send("GET", P, None).await.etag, got.etag);
    let fresh = h
        .send_with("POST", "/state/new", Some(&s1), &[("if-none-match", "*")])
        .await;
    assert_eq!(fresh.status, 200);
}
