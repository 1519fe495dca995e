//! A tiny HTTP/1.1 server on 127.0.0.1 for fakes of key-service REST APIs. One request per
//! connection, answered by a handler; every request is recorded. Stops when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// `application/x-www-form-urlencoded` fields.
    pub fn form(&self, name: &str) -> Option<String> {
        String::from_utf8_lossy(&self.body)
            .split('&')
            .find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == name).then(|| percent_decode(v))
            })
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Status, extra response headers, body.
pub type Answer = (u16, Vec<(String, String)>, String);

type Handler = dyn Fn(&Request) -> Answer + Send + Sync;

pub struct FakeServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl FakeServer {
    pub fn start(
        handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeServer {
        FakeServer::start_with_headers(move |r| {
            let (status, body) = handler(r);
            (status, Vec::new(), body)
        })
    }

    /// Like [`FakeServer::start`], for handlers that also set response headers.
    pub fn start_with_headers(
        handler: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (rec, stopping) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (rec, handler) = (rec.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &rec, &*handler));
            }
        });
        FakeServer {
            url: format!("http://{addr}"),
            requests,
            stop,
            addr,
        }
    }

    /// The recorded requests whose path contains `part`.
    pub fn requests_to(&self, part: &str) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.contains(part))
            .cloned()
            .collect()
    }
}

/// One server per test binary, for code that reads the fake's address from process-wide
/// environment variables: started on first use with `handler` (which is given the server's
/// URL), and each of `envs` set to that URL.
pub fn shared(
    cell: &'static OnceLock<FakeServer>,
    envs: &[&str],
    handler: impl Fn(&Request, &str) -> Answer + Send + Sync + 'static,
) -> &'static FakeServer {
    cell.get_or_init(|| {
        let base = Arc::new(OnceLock::<String>::new());
        let url = base.clone();
        let server =
            FakeServer::start_with_headers(move |req| handler(req, url.get().expect("set below")));
        base.set(server.url.clone()).unwrap();
        for e in envs {
            std::env::set_var(e, &server.url);
        }
        server
    })
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

fn serve(conn: TcpStream, rec: &Mutex<Vec<Request>>, handler: &Handler) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let req = Request {
        method,
        path,
        headers,
        body,
    };
    let (status, extra, answer) = handler(&req);
    rec.lock().unwrap().push(req);
    let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{answer}",
        answer.len()
    );
}
