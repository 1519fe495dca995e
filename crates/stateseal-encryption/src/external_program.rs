//! Running an external program with OpenTofu's external protocol, shared by the `external` key
//! provider (§3.6) and the `external` method (§4.3).
//!
//! The program runs directly (no shell), inheriting the environment and working directory. It
//! must write one header line `{"magic":"…","version":1}` to stdout, then reads one JSON input
//! from stdin and writes one JSON value to stdout. A bad header stops it at once; a non-zero exit
//! is an error; a program that is still running when the timeout passes is killed. Every error
//! carries what the program wrote to stderr.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use zeroize::Zeroizing;

/// OpenTofu's timeout for one run of an external program.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Overrides [`DEFAULT_TIMEOUT`] (seconds, fractions allowed). Not part of the configuration
/// language, so configurations stay OpenTofu's.
pub const TIMEOUT_ENV: &str = "STATESEAL_EXTERNAL_TIMEOUT";

/// Keep at most this much of the program's stderr for error messages.
const STDERR_LIMIT: usize = 64 * 1024;

/// Once the program has exited (or was killed), how long to wait at most for the end of its
/// stderr. The end comes at once unless a child of the program still holds the pipe open.
const STDERR_DRAIN: Duration = Duration::from_secs(2);

/// Which protocol: the header's magic and the words used in messages.
pub(crate) struct Protocol {
    pub magic: &'static str,
    /// "external key provider" or "external method".
    pub who: &'static str,
    /// How OpenTofu names the program in a header decoding error.
    pub header_source: &'static str,
}

pub(crate) const KEY_PROVIDER: Protocol = Protocol {
    magic: "OpenTofu-External-Key-Provider",
    who: "external key provider",
    header_source: "external binary",
};

pub(crate) const METHOD: Protocol = Protocol {
    magic: "OpenTofu-External-Encryption-Method",
    who: "external method",
    header_source: "external method",
};

/// The timeout in force: `STATESEAL_EXTERNAL_TIMEOUT` or one minute.
pub(crate) fn timeout() -> Result<Duration, String> {
    match std::env::var(TIMEOUT_ENV) {
        Err(_) => Ok(DEFAULT_TIMEOUT),
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{TIMEOUT_ENV}={v:?} is not a positive number of seconds")),
    }
}

/// Checks a `command` list: present and with a non-empty program name.
pub(crate) fn check_command(cmd: &[String], attribute: &str) -> Result<(), String> {
    match cmd.first() {
        None => Err(format!("the {attribute} option is required")),
        Some(p) if p.is_empty() => Err(format!("the first entry of {attribute} must not be empty")),
        Some(_) => Ok(()),
    }
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    magic: String,
    #[serde(default)]
    version: i64,
}

/// What a run produced: the stdout after the header line (it can hold keys), and stderr.
pub(crate) struct Output {
    pub body: Zeroizing<Vec<u8>>,
    pub stderr: String,
}

/// A failed run. `Display` includes the program's stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub stderr: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n\nStderr:\n-------\n{}", self.message, self.stderr)
    }
}

enum Event {
    BadHeader(String),
    StdoutClosed,
}

/// Runs `command` with `input` on stdin and returns its output after the header line.
pub(crate) fn run(
    command: &[String],
    protocol: &Protocol,
    input: Zeroizing<Vec<u8>>,
    timeout: Duration,
) -> Result<Output, Failure> {
    let program = &command[0];
    let fail = |message: String, stderr: String| Failure { message, stderr };
    let mut child = Command::new(program)
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(
                format!("cannot start the {} program {program:?}: {e}", protocol.who),
                String::new(),
            )
        })?;
    let started = Instant::now();

    let mut stdin = child.stdin.take().expect("piped");
    std::thread::spawn(move || {
        // A program that exits without reading its input is judged by its exit code.
        let _ = stdin.write_all(&input);
    });

    let stderr_buf = Arc::new(Mutex::new(Vec::new()));
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let sink = stderr_buf.clone();
    let (stderr_done, stderr_ended) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stderr_pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            let mut buf = sink.lock().unwrap_or_else(|p| p.into_inner());
            let room = STDERR_LIMIT.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..n.min(room)]);
        }
        drop(stderr_done);
    });
    // Called once the program is gone: waits for the end of its stderr (the reader drops its
    // sender at end of file), so the message carries everything the program wrote.
    let stderr = || {
        let _ = stderr_ended.recv_timeout(STDERR_DRAIN);
        String::from_utf8_lossy(&stderr_buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    };

    let stdout_buf = Arc::new(Mutex::new(Zeroizing::new(Vec::new())));
    let mut stdout_pipe = child.stdout.take().expect("piped");
    let sink = stdout_buf.clone();
    let (tx, rx) = mpsc::channel();
    let magic = protocol.magic;
    let who = protocol.who;
    let header_source = protocol.header_source;
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        let mut header_checked = false;
        loop {
            let n = match stdout_pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut buf = sink.lock().unwrap_or_else(|p| p.into_inner());
            buf.extend_from_slice(&chunk[..n]);
            if !header_checked {
                if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    header_checked = true;
                    if let Err(e) = check_header(&buf[..nl], magic, who, header_source) {
                        let _ = tx.send(Event::BadHeader(e));
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Event::StdoutClosed);
    });

    let deadline = started + timeout;
    let mut stdout_closed = false;
    let mut status: Option<ExitStatus> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(
                format!(
                    "the {who} program {program:?} did not finish within {} and was killed",
                    show_duration(timeout)
                ),
                stderr(),
            ));
        }
        if !stdout_closed {
            match rx.recv_timeout((deadline - now).min(Duration::from_millis(20))) {
                Ok(Event::BadHeader(e)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("{who} protocol failure ({e})"), stderr()));
                }
                Ok(Event::StdoutClosed) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    stdout_closed = true
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        } else {
            std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
        }
        if status.is_none() {
            status = child.try_wait().map_err(|e| {
                fail(
                    format!("waiting for the {who} program failed: {e}"),
                    stderr(),
                )
            })?;
        }
        if stdout_closed && status.is_some() {
            break;
        }
    }
    let status = status.expect("loop ends with a status");
    if !status.success() {
        let why = match status.code() {
            Some(code) => format!("the {who} program exited with a non-zero exit code ({code})"),
            None => format!("the {who} program exited with an error ({status})"),
        };
        return Err(fail(why, stderr()));
    }
    let out = std::mem::take(&mut *stdout_buf.lock().unwrap_or_else(|p| p.into_inner()));
    let out: Zeroizing<Vec<u8>> = out;
    let Some(nl) = out.iter().position(|b| *b == b'\n') else {
        return Err(fail(
            format!(
                "{who} protocol failure (the program did not write the header line {{\"magic\":\"{magic}\",\"version\":1}} followed by a newline)"
            ),
            stderr(),
        ));
    };
    Ok(Output {
        body: Zeroizing::new(out[nl + 1..].to_vec()),
        stderr: stderr(),
    })
}

fn check_header(line: &[u8], magic: &str, who: &str, from: &str) -> Result<(), String> {
    let h: Header = serde_json::from_slice(line)
        .map_err(|e| format!("failed to unmarshal header from {from} ({e})"))?;
    if h.magic != magic {
        return Err(format!("invalid magic received from {who}: {}", h.magic));
    }
    if h.version != 1 {
        return Err(format!(
            "invalid version number received from {who}: {}",
            h.version
        ));
    }
    Ok(())
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Decodes the first JSON value of the body strictly (the types deny unknown fields); bytes
/// after it are ignored, as OpenTofu does.
pub(crate) fn decode<T: DeserializeOwned>(out: &Output, protocol: &Protocol) -> Result<T, Failure> {
    let invalid = |e: String| Failure {
        message: format!(
            "the {} returned an invalid JSON response ({e})",
            protocol.who
        ),
        stderr: out.stderr.clone(),
    };
    match serde_json::Deserializer::from_slice(&out.body)
        .into_iter::<Option<T>>()
        .next()
    {
        None => Err(invalid("no output after the header line".into())),
        Some(Err(e)) => Err(invalid(e.to_string())),
        Some(Ok(None)) => Err(invalid("the output is null".into())),
        Some(Ok(Some(v))) => Ok(v),
    }
}
