//! Listings at fleet scale (issue 24): `GET /v1/states` over 1,000 states on S3 costs a list
//! page and a Scan page when warm, one more read per changed state, and at most one read per
//! state when cold (requests counted by a proxy in front of moto); two server instances on one
//! bucket see each other's writes in their next listing; pages and continuation tokens walk a
//! listing without gaps on both storages; the states page shows key providers and lock holders
//! on both storages.

use std::collections::BTreeMap;

use serde_json::Value;
use stateseal_testkit::Peers;

use crate::at_rest::server_config;
use crate::counting_proxy::{count, total, CountingProxy};
use crate::support::{lock_info, state, Harness, S3Backing};

const ID: &str = "aaaaaaaa-2424-2424-2424-444444444444";
const FLEET: usize = 1000;

on_every_storage!(
    pages_walk_a_listing_without_gaps(""),
    bad_page_parameters_are_refused(""),
    the_states_page_shows_key_providers_and_lock_holders(server_config("")),
);

fn json(a: &crate::support::Answer) -> Value {
    assert_eq!(a.status, 200, "{}", a.text());
    serde_json::from_slice(&a.body).unwrap()
}

/// The states of a `/v1/states` answer.
fn states(v: &Value) -> &Vec<Value> {
    v["states"].as_array().expect("a states array")
}

fn paths(v: &Value) -> Vec<String> {
    states(v)
        .iter()
        .map(|s| s["path"].as_str().unwrap().to_string())
        .collect()
}

/// Writes `n` small states `fleet/sNNNN` straight into the bucket (as Terraform would), 32 at
/// a time.
async fn put_fleet(peers: &Peers, bucket: &str, n: usize) {
    let s3 = peers.s3().await;
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..n {
        let (s3, bucket) = (s3.clone(), bucket.to_string());
        puts.spawn(async move {
            s3.put_object()
                .bucket(bucket)
                .key(format!("fleet/s{i:04}"))
                .body(state(1, &format!("L{i}"), "fleet").into())
                .send()
                .await
                .expect("put a state");
        });
        if puts.len() >= 32 {
            puts.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = puts.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_of_a_thousand_states_on_s3_costs_a_handful_of_requests() {
    let Some(peers) = Peers::aws("a_listing_of_a_thousand_states_on_s3") else {
        return;
    };
    let backing = S3Backing::create(&peers).await;
    put_fleet(&peers, &backing.bucket, FLEET).await;
    let proxy = CountingProxy::start(peers.endpoint()).await;
    let mut counted = peers.clone();
    counted.endpoint = Some(proxy.url.clone());
    let h = Harness::on_s3(
        &S3Backing {
            peers: counted,
            ..backing.clone()
        },
        "",
    )
    .await;
    // A lock held through the server: its DynamoDB item and its lock file.
    let lock = h
        .send(
            "LOCK",
            "/state/fleet/s0007",
            Some(lock_info(ID, "ops@ci").as_bytes()),
        )
        .await;
    assert_eq!(lock.status, 200, "{}", lock.text());
    proxy.take();

    let cold = json(&h.send("GET", "/v1/states", None).await);
    let c = proxy.take();
    assert_eq!(states(&cold).len(), FLEET);
    assert_eq!(states(&cold)[7]["lock"]["Who"], "ops@ci");
    assert!(states(&cold)[8]["lock"].is_null());
    assert!(states(&cold).iter().all(|s| s["current"]["serial"] == 1));
    assert_eq!(states(&cold)[3]["current"]["lineage"], "L3");
    let (pages, scans) = (count(&c, "ListObjectsV2"), count(&c, "Scan"));
    // 1,001 keys (the states and one lock file): two pages of 1,000; a small table: one page.
    assert!((1..=2).contains(&pages), "{c:?}");
    assert_eq!(scans, 1, "{c:?}");
    assert!(count(&c, "GetObject") <= FLEET as u64, "cold: {c:?}");
    assert_eq!(
        total(&c),
        pages + scans + count(&c, "GetObject"),
        "cold: nothing but the listing, the scan and the reads: {c:?}"
    );

    let warm = json(&h.send("GET", "/v1/states", None).await);
    let w = proxy.take();
    assert_eq!(warm, cold, "a warm listing answers the same");
    assert_eq!(count(&w, "GetObject"), 0, "warm: {w:?}");
    assert_eq!(
        total(&w),
        count(&w, "ListObjectsV2") + count(&w, "Scan"),
        "warm: {w:?}"
    );
    assert!(total(&w) <= 20, "warm: {w:?}");

    // One state changed by a writer the server does not know (Terraform, another instance).
    peers
        .put_object(&backing.bucket, "fleet/s0500", &state(2, "L500", "changed"))
        .await;
    let after = json(&h.send("GET", "/v1/states", None).await);
    let a = proxy.take();
    assert_eq!(count(&a, "GetObject"), 1, "after one change: {a:?}");
    assert_eq!(total(&a), total(&w) + 1, "after one change: {a:?}");
    assert_eq!(states(&after)[500]["current"]["serial"], 2);
    assert_eq!(states(&after)[499], states(&cold)[499]);
    // Shown with --nocapture (figures for the notes; the bounds are asserted above).
    eprintln!(
        "GET /v1/states over {FLEET} states on S3: cold {c:?}; warm {w:?}; one changed {a:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_bucket_list_each_others_writes() {
    let Some(peers) = Peers::aws("two_instances_on_one_bucket_list_each_others_writes") else {
        return;
    };
    let backing = S3Backing::create(&peers).await;
    let (a, b) = (
        Harness::on_s3(&backing, "").await,
        Harness::on_s3(&backing, "").await,
    );
    let serial_in = |v: &Value, path: &str| {
        states(v)
            .iter()
            .find(|s| s["path"] == path)
            .map(|s| s["current"]["serial"].clone())
    };
    assert_eq!(
        a.send("POST", "/state/team/app", Some(&state(1, "L", "one")))
            .await
            .status,
        200
    );
    let listed = json(&b.send("GET", "/v1/states", None).await);
    assert_eq!(serial_in(&listed, "team/app"), Some(Value::from(1)));
    // A write through the other instance, of the same size: b's next listing has it.
    assert_eq!(
        a.send("POST", "/state/team/app", Some(&state(2, "L", "two")))
            .await
            .status,
        200
    );
    let listed = json(&b.send("GET", "/v1/states", None).await);
    assert_eq!(serial_in(&listed, "team/app"), Some(Value::from(2)));
    // A lock taken through b shows in a's listing; released, it is gone.
    let info = lock_info(ID, "bob@ci");
    assert_eq!(
        b.send("LOCK", "/state/team/app", Some(info.as_bytes()))
            .await
            .status,
        200
    );
    let listed = json(&a.send("GET", "/v1/states", None).await);
    assert_eq!(states(&listed)[0]["lock"]["Who"], "bob@ci");
    assert_eq!(
        b.send("UNLOCK", "/state/team/app", Some(info.as_bytes()))
            .await
            .status,
        200
    );
    let listed = json(&a.send("GET", "/v1/states", None).await);
    assert!(states(&listed)[0]["lock"].is_null(), "{listed}");
    // A lock file alone (OpenTofu with use_lockfile only) is a holder too.
    peers
        .put_object(
            &backing.bucket,
            "team/app.tflock",
            lock_info(ID, "tofu@laptop").as_bytes(),
        )
        .await;
    let listed = json(&b.send("GET", "/v1/states", None).await);
    assert_eq!(states(&listed)[0]["lock"]["Who"], "tofu@laptop");
    // Deleted through b: a lists it as deleted.
    let deleted = b
        .send("DELETE", &format!("/state/team/app?ID={ID}"), None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let listed = json(&a.send("GET", "/v1/states", None).await);
    assert_eq!(paths(&listed), ["team/app"]);
    assert!(states(&listed)[0]["current"].is_null(), "{listed}");
}

async fn pages_walk_a_listing_without_gaps(h: Harness) {
    for p in ["p/a", "p/a-x", "p/b", "p/b/c", "p/c", "p/e", "q/x"] {
        let a = h
            .send("POST", &format!("/state/{p}"), Some(&state(1, "L", p)))
            .await;
        assert_eq!(a.status, 200);
    }
    let lock = lock_info(ID, "carol@ci");
    assert_eq!(
        h.send("LOCK", "/state/p/a", Some(lock.as_bytes()))
            .await
            .status,
        200
    );
    let all = json(&h.send("GET", "/v1/states?prefix=p/", None).await);
    assert!(all.get("next_continuation_token").is_none(), "{all}");
    assert_eq!(paths(&all), ["p/a", "p/a-x", "p/b", "p/b/c", "p/c", "p/e"]);
    for size in [1, 2, 4, 6, 7] {
        let mut walked: Vec<Value> = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let uri = match &token {
                Some(t) => format!("/v1/states?prefix=p/&max_keys={size}&continuation_token={t}"),
                None => format!("/v1/states?prefix=p/&max_keys={size}"),
            };
            let page = json(&h.send("GET", &uri, None).await);
            pages += 1;
            assert!(states(&page).len() <= size, "{page}");
            walked.extend(states(&page).iter().cloned());
            match page.get("next_continuation_token") {
                Some(t) => token = Some(t.as_str().unwrap().to_string()),
                None => break,
            }
            assert!(pages <= 6, "the pages never end: {page}");
        }
        assert_eq!(&walked, states(&all), "pages of {size}");
        assert_eq!(pages, 6_usize.div_ceil(size).max(1), "pages of {size}");
    }
    // The lock of the first state shows on a page of one.
    let first = json(&h.send("GET", "/v1/states?prefix=p/&max_keys=1", None).await);
    assert_eq!(states(&first)[0]["lock"]["Who"], "carol@ci");
    // The console pages the same way.
    let page = h.send("GET", "/ui/states?prefix=p/&max_keys=4", None).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let body = page.text();
    assert!(body.contains("p/b/c") && !body.contains(">p/e<"), "{body}");
    let next = body
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a next page link")
        .replace("&amp;", "&");
    let second = h.send("GET", &next, None).await;
    assert_eq!(second.status, 200, "{}", second.text());
    let body = second.text();
    assert!(body.contains(">p/e<") && !body.contains(">p/a<"), "{body}");
    assert!(!body.contains("rel=\"next\""), "{body}");
    assert!(body.contains("First page"), "{body}");
}

async fn bad_page_parameters_are_refused(h: Harness) {
    for query in [
        "max_keys=0",
        "max_keys=1001",
        "max_keys=ten",
        "continuation_token=%21%21",
        "continuation_token=Ly8",
    ] {
        let a = h.send("GET", &format!("/v1/states?{query}"), None).await;
        assert_eq!(a.status, 400, "{query}: {}", a.text());
        assert!(
            a.text().contains("max_keys") || a.text().contains("continuation_token"),
            "{query}: {}",
            a.text()
        );
        let ui = h.send("GET", &format!("/ui/states?{query}"), None).await;
        assert_eq!(ui.status, 400, "{query}");
    }
}

async fn the_states_page_shows_key_providers_and_lock_holders(h: Harness) {
    assert_eq!(
        h.send("POST", "/state/enc/app", Some(&state(1, "L", "secret")))
            .await
            .status,
        200
    );
    assert_eq!(
        h.send(
            "LOCK",
            "/state/enc/app",
            Some(lock_info(ID, "dave@ci").as_bytes())
        )
        .await
        .status,
        200
    );
    // Twice: the second view is served from what the first read.
    for _ in 0..2 {
        let page = h.send("GET", "/ui/states", None).await;
        assert_eq!(page.status, 200);
        let body = page.text();
        let row: BTreeMap<&str, bool> = [
            ("key provider", body.contains("key_provider.pbkdf2.main")),
            ("encrypted", body.contains("yes (server)")),
            ("lock holder", body.contains("dave@ci")),
        ]
        .into_iter()
        .collect();
        assert!(row.values().all(|v| *v), "{row:?}\n{body}");
    }
}
