//! Crash safety: `kill -9` of a server in the middle of a burst of writes, then a restart on
//! the same data directory. Every acknowledged write is readable, and no state or version is
//! torn.
//!
//! The server runs in a child process: this test binary re-executed to run only
//! [`crash_child_server`] (the library's `serve`, as `stateseal serve` runs it).

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use stateseal_store::StateMeta;

use crate::support::{http, http_agent, state};

const CHILD_VAR: &str = "STATESEAL_TEST_CRASH_CHILD_DIR";
const STATES: usize = 4;

/// Not a test: the server process of [`kill_9_during_writes_loses_no_acknowledged_write`].
#[test]
#[ignore = "helper process, started by kill_9_during_writes_loses_no_acknowledged_write"]
fn crash_child_server() {
    let dir = std::env::var(CHILD_VAR).expect("started by the crash test");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = stateseal_server::ServerConfig::parse("child", "", None).unwrap();
        let app = stateseal_server::App::open(Path::new(&dir), config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("LISTENING {}", listener.local_addr().unwrap());
        stateseal_server::serve(listener, Arc::new(app), std::future::pending())
            .await
            .unwrap();
    });
}

/// Starts the server child on `dir`; returns it and its base URL.
fn start(dir: &Path) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash::crash_child_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the child printed its address")
            .unwrap();
        // The test harness prints "test … ... " before it on the same line.
        if let Some((_, a)) = line.split_once("LISTENING ") {
            break a.trim().to_string();
        }
    };
    (child, format!("http://{addr}"))
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, base) = start(&data);
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..STATES).map(|_| AtomicU64::new(0)).collect());
    let total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..STATES)
        .map(|i| {
            let (acked, total, stop, base) =
                (acked.clone(), total.clone(), stop.clone(), base.clone());
            std::thread::spawn(move || {
                let agent = http_agent();
                let url = format!("{base}/state/crash/s{i}");
                for serial in 1.. {
                    // A large-ish body, so a kill can land in the middle of writing a file.
                    let body = state(
                        serial,
                        "L",
                        &format!("{i}-{serial}-{}", "x".repeat(64 * 1024)),
                    );
                    match http(&agent, "POST", &url, Some(&body)) {
                        Ok(a) if a.status == 200 => {
                            acked[i].store(serial, Ordering::SeqCst);
                            total.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(a) => panic!("POST answered {}: {}", a.status, a.text()),
                        Err(_) => return, // the server is gone
                    }
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while total.load(Ordering::SeqCst) < 200 {
        assert!(
            !writers.iter().all(|w| w.is_finished()),
            "the writers stopped early"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "200 writes never completed"
        );
        std::thread::yield_now();
    }
    child.kill().unwrap(); // SIGKILL, writes in flight
    child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }

    let (mut child, base) = start(&data);
    let agent = http_agent();
    for (i, acked) in acked.iter().enumerate() {
        let acked = acked.load(Ordering::SeqCst);
        assert!(acked > 0);
        let got = http(&agent, "GET", &format!("{base}/state/crash/s{i}"), None).unwrap();
        assert_eq!(got.status, 200);
        let meta = StateMeta::parse(&got.body).expect("the current state is whole");
        assert!(
            meta.serial >= acked,
            "state {i}: serial {} < acknowledged {acked}",
            meta.serial
        );
        let v = http(
            &agent,
            "GET",
            &format!("{base}/v1/versions/crash/s{i}"),
            None,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&v.body).unwrap();
        let versions = v["versions"].as_array().unwrap();
        for x in versions {
            let seq = x["seq"].as_u64().unwrap();
            let b = http(
                &agent,
                "GET",
                &format!("{base}/v1/versions/crash/s{i}?seq={seq}"),
                None,
            )
            .unwrap();
            let m = StateMeta::parse(&b.body).expect("every kept version is whole");
            assert_eq!(m.serial, x["serial"].as_u64().unwrap());
        }
        let serials: Vec<u64> = versions
            .iter()
            .map(|x| x["serial"].as_u64().unwrap())
            .collect();
        for s in 1..=acked {
            assert!(
                serials.contains(&s),
                "state {i}: acknowledged serial {s} was lost"
            );
        }
        // The server goes on writing after the crash.
        let next = state(meta.serial + 1, "L", "after");
        assert_eq!(
            http(
                &agent,
                "POST",
                &format!("{base}/state/crash/s{i}"),
                Some(&next)
            )
            .unwrap()
            .status,
            200
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
