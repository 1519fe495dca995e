//! The versions JSON API, rollback and `/healthz` (Build 4 and 6 of issue 10).

use serde_json::Value;
use stateseal_store::StateMeta;
use stateseal_testkit::json_snapshot;

use crate::at_rest::server_config;
use crate::support::{etag_of, lock_info, state, version_serials, Harness};

const ID: &str = "aaaaaaaa-1111-2222-3333-444444444444";

on_every_storage!(
    versions_are_listed_newest_first_with_who_and_encryption(server_config("")),
    states_and_locks_are_listed_under_a_prefix(""),
    rollback_is_a_new_write_above_the_current_serial(server_config("")),
    fail_rollback_refusals_change_nothing(""),
);

/// A snapshot's name on this storage (the data directory's bodies have no S3 version IDs).
fn on(h: &Harness, name: &str) -> String {
    let storage = if h.s3.is_some() { "s3" } else { "data_dir" };
    format!("{name}.{storage}")
}

fn json(a: &crate::support::Answer) -> Value {
    assert_eq!(a.status, 200, "{}", a.text());
    serde_json::from_slice(&a.body).unwrap()
}

async fn versions_are_listed_newest_first_with_who_and_encryption(h: Harness) {
    let p = "/state/team-a/app";
    assert_eq!(
        h.send("POST", p, Some(&state(1, "L", "one"))).await.status,
        200
    );
    assert_eq!(
        h.send("LOCK", p, Some(lock_info(ID, "alice@ci").as_bytes()))
            .await
            .status,
        200
    );
    let s2 = state(2, "L", "two");
    assert_eq!(
        h.send("POST", &format!("{p}?ID={ID}"), Some(&s2))
            .await
            .status,
        200
    );
    let listed = h.send("GET", "/v1/versions/team-a/app", None).await;
    json_snapshot!(&on(&h, "v1_versions"), &listed.text());
    let v = json(&listed);
    let list = v["versions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0]["seq"].as_u64(), list[0]["serial"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(list[0]["who"], "alice@ci");
    assert_eq!(list[1]["who"], "");
    assert_eq!(list[0]["size"].as_u64(), Some(s2.len() as u64));
    assert_eq!(list[0]["encrypted"], true);
    assert_eq!(list[0]["lineage"], "L");
    assert!(list[0]["time"].as_str().unwrap().ends_with('Z'));
    // One version's bytes, as the client sent them.
    let a = h.send("GET", "/v1/versions/team-a/app?seq=1", None).await;
    assert_eq!((a.status, a.body), (200, state(1, "L", "one")));
    assert_eq!(
        h.send("GET", "/v1/versions/team-a/app?seq=9", None)
            .await
            .status,
        404
    );
    assert_eq!(
        h.send("GET", "/v1/versions/nothing", None).await.status,
        404
    );
    assert_eq!(h.send("GET", "/v1/versions/a//b", None).await.status, 400);
}

async fn states_and_locks_are_listed_under_a_prefix(h: Harness) {
    for p in ["team-a/x", "team-a/y/z", "team-b/x", "team-a/y"] {
        let a = h
            .send("POST", &format!("/state/{p}"), Some(&state(1, "L", p)))
            .await;
        assert_eq!(a.status, 200);
    }
    assert_eq!(
        h.send(
            "LOCK",
            "/state/team-a/y",
            Some(lock_info(ID, "bob@ci").as_bytes())
        )
        .await
        .status,
        200
    );
    let listed = h.send("GET", "/v1/states?prefix=team-a/", None).await;
    json_snapshot!(&on(&h, "v1_states_prefix"), &listed.text());
    let v = json(&listed);
    let paths: Vec<&str> = v["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["team-a/x", "team-a/y", "team-a/y/z"]);
    assert_eq!(v["states"][1]["lock"]["Who"], "bob@ci");
    assert!(v["states"][0]["lock"].is_null());
    assert_eq!(v["states"][0]["current"]["serial"].as_u64(), Some(1));
    let all = json(&h.send("GET", "/v1/states", None).await);
    assert_eq!(all["states"].as_array().unwrap().len(), 4);
    let locks = h.send("GET", "/v1/locks", None).await;
    json_snapshot!(&on(&h, "v1_locks"), &locks.text());
    let locks = json(&locks);
    assert_eq!(locks["locks"].as_array().unwrap().len(), 1);
    assert_eq!(locks["locks"][0]["path"], "team-a/y");
    assert_eq!(locks["locks"][0]["lock"]["ID"], ID);
}

async fn rollback_is_a_new_write_above_the_current_serial(h: Harness) {
    let p = "/state/app";
    for (serial, text) in [(1, "one"), (2, "two"), (5, "five")] {
        assert_eq!(
            h.send("POST", p, Some(&state(serial, "L", text)))
                .await
                .status,
            200
        );
    }
    let a = h.send("POST", "/v1/rollback/app?seq=1", None).await;
    json_snapshot!(&on(&h, "v1_rollback"), &a.text());
    let v = json(&a);
    assert_eq!(
        (v["serial"].as_u64(), v["rolled_back_to"].as_u64()),
        (Some(6), Some(1))
    );
    let now = h.send("GET", p, None).await;
    let meta = StateMeta::parse(&now.body).unwrap();
    assert_eq!((meta.serial, meta.lineage.as_str()), (6, "L"));
    assert_eq!(meta.output_values()["greeting"], "one");
    assert_eq!(
        now.body,
        stateseal_store::state::with_serial(&state(1, "L", "one"), 6).unwrap()
    );
    // The rewrite's own digest is recorded (not the old version's, nor the request's).
    assert_eq!(now.etag, etag_of(&now.body));
    assert_eq!(
        version_serials(&h.send("GET", "/v1/versions/app", None).await),
        [6, 5, 2, 1],
        "history is kept, nothing rewound"
    );
    // Terraform can go on from there.
    assert_eq!(
        h.send("POST", p, Some(&state(7, "L", "seven")))
            .await
            .status,
        200
    );
}

async fn fail_rollback_refusals_change_nothing(h: Harness) {
    let p = "/state/app";
    assert_eq!(
        h.send("POST", p, Some(&state(1, "L", "one"))).await.status,
        200
    );
    assert_eq!(h.send("DELETE", p, None).await.status, 200);
    assert_eq!(
        h.send("POST", p, Some(&state(1, "M", "other")))
            .await
            .status,
        200
    );
    let envelope = br#"{"serial":2,"lineage":"M","meta":{},"encrypted_data":"AAAA","encryption_version":"v0"}"#;
    assert_eq!(h.send("POST", p, Some(envelope)).await.status, 200);
    assert_eq!(
        h.send("LOCK", p, Some(lock_info(ID, "a@b").as_bytes()))
            .await
            .status,
        200
    );
    for (uri, status, words) in [
        ("/v1/rollback/app?seq=3", 423, ID),
        (
            &format!("/v1/rollback/app?seq=9&ID={ID}") as &str,
            404,
            "no version 9",
        ),
        (&format!("/v1/rollback/app?seq=2&ID={ID}"), 404, "deletion"),
        (&format!("/v1/rollback/app?seq=1&ID={ID}"), 409, "unrelated"),
        (
            &format!("/v1/rollback/app?seq=4&ID={ID}"),
            409,
            "encrypted by the client",
        ),
        ("/v1/rollback/app", 400, "seq"),
    ] {
        let before = h.snapshot().await;
        let a = h.send("POST", uri, None).await;
        assert_eq!(a.status, status, "{uri}: {}", a.text());
        assert!(a.text().contains(words), "{uri}: {}", a.text());
        assert_eq!(h.snapshot().await, before, "{uri}");
    }
    let a = h
        .send("POST", &format!("/v1/rollback/app?seq=3&ID={ID}"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
}

#[tokio::test]
async fn healthz_says_whether_encryption_is_on() {
    let off = Harness::new().send("GET", "/healthz", None).await;
    json_snapshot!("healthz_off", &off.text());
    let off = json(&off);
    assert_eq!(off["encryption_at_rest"], "off");
    assert!(off["warning"].as_str().unwrap().contains("OFF"));
    let on = json(
        &Harness::with_config(&server_config(""))
            .send("GET", "/healthz", None)
            .await,
    );
    assert_eq!(on["encryption_at_rest"], "on");
    assert!(on.get("warning").is_none());
}
