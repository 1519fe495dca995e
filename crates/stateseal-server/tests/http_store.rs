//! `HttpStore` (the CLI's `backend "http"` client) against a live server: a 409 carries the
//! typed refusal (`{"refusal": …}`), and the store reads it from that answer alone (no second
//! request to recompute why), counted with the server's own `/metrics`.

use bytes::Bytes;
use stateseal_store::{HttpConfig, HttpStore, PutMode, Store, DEFAULT_WORKSPACE};

use crate::support::{state, Live};

/// The server's request count for `method` on the state route (any status).
fn requests(live: &Live, method: &str) -> u64 {
    let text = live.send("GET", "/metrics", None).text();
    text.lines()
        .filter(|l| {
            l.starts_with("stateseal_http_requests_total{")
                && l.contains("route=\"/state/{*path}\"")
                && l.contains(&format!("method=\"{method}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_refused_push_is_one_request_and_comes_back_typed() {
    let live = Live::start("");
    let mut settings = std::collections::BTreeMap::new();
    settings.insert("address".to_string(), live.url("/state/team/app"));
    settings.insert("retry_max".to_string(), "0".to_string());
    let store =
        HttpStore::new(HttpConfig::from_settings(&settings, Vec::new(), &|_| None).unwrap())
            .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let put = |body: Vec<u8>| {
        rt.block_on(store.put(DEFAULT_WORKSPACE, Bytes::from(body), PutMode::Overwrite))
    };
    put(state(5, "lin-1", "five")).unwrap();

    // The 409's body is the typed refusal.
    let answer = live.send("POST", "/state/team/app", Some(&state(4, "lin-1", "four")));
    assert_eq!(answer.status, 409);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        body["refusal"],
        serde_json::json!({ "older_serial": { "stored": 5, "incoming": 4 } }),
        "{body}"
    );
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("nothing was written")));

    let (gets, posts) = (requests(&live, "GET"), requests(&live, "POST"));
    match put(state(3, "lin-1", "three")) {
        Err(stateseal_store::Error::Refused {
            refusal: stateseal_core::Refusal::OlderSerial { stored, incoming },
            ..
        }) => assert_eq!((stored, incoming), (5, 3)),
        r => panic!("expected an OlderSerial refusal, got {r:?}"),
    }
    match put(state(9, "lin-2", "other")) {
        Err(stateseal_store::Error::Refused {
            refusal: stateseal_core::Refusal::ForeignLineage { stored, incoming },
            ..
        }) => assert_eq!((stored.as_str(), incoming.as_str()), ("lin-1", "lin-2")),
        r => panic!("expected a ForeignLineage refusal, got {r:?}"),
    }
    assert_eq!(
        requests(&live, "GET"),
        gets,
        "no GET to recompute the refusal"
    );
    assert_eq!(requests(&live, "POST"), posts + 2, "one POST per push");
}
