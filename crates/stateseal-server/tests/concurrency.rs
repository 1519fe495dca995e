//! 16 clients × 50 cycles of lock → read → write(serial + 1) → unlock over real sockets: the
//! final serial equals the number of acknowledged writes, and every write is a kept version.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use stateseal_store::StateMeta;

use crate::support::{http, http_agent, lock_info, state, Live};

const CLIENTS: u64 = 16;
const CYCLES: u64 = 50;

#[test]
fn sixteen_clients_times_fifty_cycles_lose_no_write() {
    let live = Arc::new(Live::start(""));
    let url = live.url("/state/busy");
    let agent = http_agent();
    assert_eq!(
        http(&agent, "POST", &url, Some(&state(0, "L", "start")))
            .unwrap()
            .status,
        200
    );
    let acked = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, acked) = (url.clone(), acked.clone());
            std::thread::spawn(move || {
                let agent = http_agent();
                for n in 0..CYCLES {
                    let id = format!("{c:08x}-{n:04x}-0000-0000-000000000000");
                    let info = lock_info(&id, &format!("client-{c}@test"));
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
                    loop {
                        assert!(
                            std::time::Instant::now() < deadline,
                            "client {c} never got the lock"
                        );
                        let a = http(&agent, "LOCK", &url, Some(info.as_bytes())).unwrap();
                        match a.status {
                            200 => break,
                            423 => std::thread::yield_now(),
                            s => panic!("LOCK answered {s}: {}", a.text()),
                        }
                    }
                    let cur = http(&agent, "GET", &url, None).unwrap();
                    assert_eq!(cur.status, 200);
                    let serial = StateMeta::parse(&cur.body).unwrap().serial;
                    let next = state(serial + 1, "L", &format!("client {c} cycle {n}"));
                    let w = http(&agent, "POST", &format!("{url}?ID={id}"), Some(&next)).unwrap();
                    assert_eq!(w.status, 200, "{}", w.text());
                    acked.fetch_add(1, Ordering::SeqCst);
                    let u = http(&agent, "UNLOCK", &url, Some(info.as_bytes())).unwrap();
                    assert_eq!(u.status, 200, "{}", u.text());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client failed");
    }
    let acked = acked.load(Ordering::SeqCst);
    assert_eq!(acked, CLIENTS * CYCLES);
    let last = http(&agent, "GET", &url, None).unwrap();
    assert_eq!(
        StateMeta::parse(&last.body).unwrap().serial,
        acked,
        "final serial = acknowledged writes"
    );
    let versions = http(&agent, "GET", &live.url("/v1/versions/busy"), None).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&versions.body).unwrap();
    let serials: Vec<u64> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(
        serials,
        (0..=acked).rev().collect::<Vec<_>>(),
        "every write is a kept version"
    );
}
