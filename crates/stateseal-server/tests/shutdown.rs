//! Graceful shutdown finishes a write in flight: an upload whose body is still arriving when
//! the shutdown starts is stored and acknowledged, while new connections are refused.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use stateseal_store::StateMeta;

use crate::support::{content_md5, state, Live};

#[test]
fn a_write_in_flight_completes_during_shutdown() {
    let mut live = Live::start("");
    let body = state(1, "L", &"z".repeat(100_000));
    let mut conn = TcpStream::connect(live.addr).unwrap();
    let head = format!(
        "POST /state/app HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-MD5: {}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        content_md5(&body),
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    // The server answers 100 Continue once the handler reads the body: the write is in flight.
    let mut continued = [0u8; 25];
    conn.read_exact(&mut continued).unwrap();
    assert_eq!(&continued, b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(&body[..1000]).unwrap();
    conn.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    live.begin_shutdown();
    // The shutdown has started once new connections are refused.
    loop {
        if TcpStream::connect(live.addr).is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "the listener never closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    conn.write_all(&body[1000..]).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let files = live.h.version_files("app");
    assert_eq!(files.len(), 1);
    let stored = std::fs::read(&files[0]).unwrap();
    assert_eq!(StateMeta::parse(&stored).unwrap().serial, 1);
    assert_eq!(stored, body);
}
