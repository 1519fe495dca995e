//! Recovery of `errored.tfstate`: when `tofu apply` cannot save its state, it writes the state
//! to `errored.tfstate`, encrypted like any state, but `tofu state push` reads only plaintext.
//! The recovery the README documents, `stateseal decrypt errored.tfstate | tofu state push -`,
//! against a real errored.tfstate: an HTTP backend (a small server in this test) that refuses
//! every write until it is "repaired".

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use stateseal_testkit::Tofu;

use super::{main_tf, pbkdf2, Work, RESOURCES};

/// An HTTP state backend (`backend "http"` without locking): GET answers the stored state (404
/// when none), POST stores the body, or answers 500 while `broken` is set.
struct Backend {
    address: String,
    broken: Arc<AtomicBool>,
    stored: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Backend {
    fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}/state", listener.local_addr().unwrap());
        let broken = Arc::new(AtomicBool::new(true));
        let stored: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let (b, s) = (broken.clone(), stored.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let method = line.split(' ').next().unwrap_or("").to_string();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let (status, reply) = match method.as_str() {
                    "GET" => match s.lock().unwrap().clone() {
                        Some(state) => ("200 OK", state),
                        None => ("404 Not Found", Vec::new()),
                    },
                    "POST" if b.load(Ordering::SeqCst) => {
                        ("500 Internal Server Error", b"storage is down".to_vec())
                    }
                    "POST" => {
                        *s.lock().unwrap() = Some(body);
                        ("200 OK", Vec::new())
                    }
                    _ => ("405 Method Not Allowed", Vec::new()),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    reply.len()
                );
                let _ = conn.write_all(&reply);
            }
        });
        Backend {
            address,
            broken,
            stored,
        }
    }
}

#[test]
fn errored_tfstate_is_recovered_with_stateseal_decrypt_piped_to_tofu_state_push() {
    let key = pbkdf2("main", "correct-horse-battery-staple", "");
    let encryption = format!("{key}state {{\n  method = method.aes_gcm.main\n}}\n");
    for tofu in Tofu::all("errored_tfstate_is_recovered") {
        let backend = Backend::start();
        let w = Work::new(&tofu, "");
        w.write(
            "main.tf",
            &main_tf(&encryption, RESOURCES).replacen(
                "terraform {\n",
                &format!(
                    "terraform {{\n  backend \"http\" {{\n    address   = \"{}\"\n    retry_max = 0\n  }}\n",
                    backend.address
                ),
                1,
            ),
        );
        w.tofu_ok(&["init"]);
        // The apply creates the resource, then cannot save the state.
        let theirs = w.tofu_fails(&["apply", "-auto-approve"]);
        assert!(theirs.contains("errored.tfstate"), "{theirs}");
        let errored: Value =
            serde_json::from_slice(&std::fs::read(w.file("errored.tfstate")).unwrap()).unwrap();
        assert!(errored.get("encrypted_data").is_some(), "{errored}");
        // tofu cannot push its own errored.tfstate (it reads only plaintext).
        backend.broken.store(false, Ordering::SeqCst);
        let push = w.tofu_fails(&["state", "push", "errored.tfstate"]);
        assert!(
            push.contains("This state file is encrypted and can not be read without an encryption configuration"),
            "{push}"
        );
        assert!(backend.stored.lock().unwrap().is_none());

        // The recovery: stateseal decrypt errored.tfstate | tofu state push -
        let plain = w.stateseal_ok(&["decrypt", "errored.tfstate"]).stdout;
        let mut push = w.tofu.command(w.path(), &["state", "push", "-"]);
        push.envs(w.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = push.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&plain).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "tofu {} state push -: {}",
            tofu.version,
            super::plain_text(&out.stderr)
        );
        // The backend holds it encrypted; tofu reads it: nothing to create again.
        let stored: Value =
            serde_json::from_slice(backend.stored.lock().unwrap().as_ref().unwrap()).unwrap();
        assert!(stored.get("encrypted_data").is_some(), "{stored}");
        w.assert_tofu_reads_state();
    }
}
