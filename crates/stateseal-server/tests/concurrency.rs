//! 16 clients × 50 cycles of lock → read → write(serial + 1) → unlock over real sockets: the
//! final serial equals the number of acknowledged writes, and every write is a kept version.
//! On the data directory (one server), and on S3 with two server instances on one bucket, each
//! client sending its requests to the two instances in turn.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stateseal_store::StateMeta;
use stateseal_testkit::Peers;

use crate::support::{http, http_agent, lock_info, state, version_serials, Live, S3Backing};

const CLIENTS: u64 = 16;
const CYCLES: u64 = 50;

#[test]
fn sixteen_clients_times_fifty_cycles_lose_no_write() {
    let live = Live::start("");
    cycles_lose_no_write(&[&live], Duration::ZERO);
}

#[test]
fn sixteen_clients_times_fifty_cycles_on_two_s3_instances_lose_no_write() {
    let Some(peers) = Peers::aws("sixteen_clients_times_fifty_cycles_on_two_s3_instances") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    // DynamoDB and lock files, as OpenTofu with both. (moto checks a conditional PutObject or
    // PutItem and then writes, without a lock between the two, so under this much contention
    // one mechanism alone can be taken twice on moto; AWS makes each one step. Both together
    // make that vanishingly rare.)
    let backing = rt.block_on(S3Backing::create(&peers));
    let a = Live::start_s3(&backing, "");
    let b = Live::start_s3(&backing, "");
    // A refused LOCK waits a little before trying again, so 16 clients don't flood moto.
    cycles_lose_no_write(&[&a, &b], Duration::from_millis(500));
}

/// The cycles against `servers` (all on the same storage): request `k` of a client goes to
/// server `(client + k) % servers.len()`.
fn cycles_lose_no_write(servers: &[&Live], backoff: Duration) {
    let urls: Arc<Vec<String>> = Arc::new(servers.iter().map(|l| l.url("/state/busy")).collect());
    let url = urls[0].clone();
    let agent = http_agent();
    let started = Instant::now();
    assert_eq!(
        http(&agent, "POST", &url, Some(&state(0, "L", "start")))
            .unwrap()
            .status,
        200
    );
    let acked = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (urls, acked) = (urls.clone(), acked.clone());
            std::thread::spawn(move || {
                let agent = http_agent();
                let mut k = c as usize;
                let mut next_url = || {
                    k += 1;
                    urls[k % urls.len()].clone()
                };
                for n in 0..CYCLES {
                    let id = format!("{c:08x}-{n:04x}-0000-0000-000000000000");
                    let info = lock_info(&id, &format!("client-{c}@test"));
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
                    loop {
                        assert!(
                            std::time::Instant::now() < deadline,
                            "client {c} never got the lock"
                        );
                        let a = http(&agent, "LOCK", &next_url(), Some(info.as_bytes())).unwrap();
                        match a.status {
                            200 => break,
                            423 if backoff.is_zero() => std::thread::yield_now(),
                            423 => std::thread::sleep(backoff),
                            s => panic!("LOCK answered {s}: {}", a.text()),
                        }
                    }
                    let cur = http(&agent, "GET", &next_url(), None).unwrap();
                    assert_eq!(cur.status, 200);
                    let serial = StateMeta::parse(&cur.body).unwrap().serial;
                    let next = state(serial + 1, "L", &format!("client {c} cycle {n}"));
                    let w = http(
                        &agent,
                        "POST",
                        &format!("{}?ID={id}", next_url()),
                        Some(&next),
                    )
                    .unwrap();
                    assert_eq!(w.status, 200, "{}", w.text());
                    acked.fetch_add(1, Ordering::SeqCst);
                    let u = http(&agent, "UNLOCK", &next_url(), Some(info.as_bytes())).unwrap();
                    assert_eq!(u.status, 200, "{}", u.text());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client failed");
    }
    let acked = acked.load(Ordering::SeqCst);
    let took = started.elapsed();
    // Shown with --nocapture (a figure for the notes, not asserted).
    eprintln!(
        "{CLIENTS} clients x {CYCLES} cycles on {} server(s): {:.1} s, {:.0} requests/s",
        servers.len(),
        took.as_secs_f64(),
        (acked * 4) as f64 / took.as_secs_f64()
    );
    assert_eq!(acked, CLIENTS * CYCLES);
    let last = http(&agent, "GET", &url, None).unwrap();
    assert_eq!(
        StateMeta::parse(&last.body).unwrap().serial,
        acked,
        "final serial = acknowledged writes"
    );
    let versions = http(
        &agent,
        "GET",
        &servers[1 % servers.len()].url("/v1/versions/busy"),
        None,
    )
    .unwrap();
    assert_eq!(
        version_serials(&versions),
        (0..=acked).rev().collect::<Vec<_>>(),
        "every write is a kept version"
    );
}
