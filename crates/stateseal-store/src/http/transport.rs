//! The wire under [`super::HttpStore`]: one request with the block's headers, Basic auth and
//! `Content-MD5`, retried as go-retryablehttp does; query encoding; and the PEM certificates of
//! the TLS attributes.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use stateseal_core::ServiceErrorKind;

use super::HttpConfig;
use crate::{Error, Result};

/// One answer: status and body.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .trim()
            .chars()
            .take(500)
            .collect()
    }
}

/// The certificates in a PEM attribute (at least one).
pub(super) fn pem_certificates(
    pem: &str,
    name: &str,
) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let certs = ureq::tls::parse_pem(pem.as_bytes())
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("{name} is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("{name} holds no certificate")));
    }
    Ok(certs)
}

/// Percent-encodes a query value (Go's `url.QueryEscape`).
pub(super) fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One request, retried as go-retryablehttp does: after a connection error, a 429 or a 5xx
/// other than 501, waiting `retry_wait_min · 2^attempt` capped at `retry_wait_max`.
pub(super) fn send_blocking(
    agent: &ureq::Agent,
    config: &HttpConfig,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
    extra: &[(&'static str, String)],
) -> Result<Reply> {
    let mut attempt: u32 = 0;
    loop {
        let outcome = send_once(agent, config, method, url, body.as_deref(), extra);
        let retriable = match &outcome {
            Err(_) => true,
            Ok(r) => r.status == 429 || (r.status >= 500 && r.status != 501),
        };
        if !retriable || attempt >= config.retry_max {
            return outcome.map_err(|message| Error::Service {
                operation: "HTTP request",
                what: format!("{method} {url}"),
                kind: ServiceErrorKind::Network,
                message: format!("giving up after {} attempt(s): {message}", attempt + 1),
                source: None,
            });
        }
        let wait = config
            .retry_wait_min
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(config.retry_wait_max);
        std::thread::sleep(wait);
        attempt += 1;
    }
}

fn send_once(
    agent: &ureq::Agent,
    config: &HttpConfig,
    method: &str,
    url: &str,
    body: Option<&[u8]>,
    extra: &[(&'static str, String)],
) -> std::result::Result<Reply, String> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in &config.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(user) = &config.username {
        let mut pair = user.as_bytes().to_vec();
        pair.push(b':');
        if let Some(p) = &config.password {
            pair.extend_from_slice(p.expose());
        }
        let token =
            zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&pair));
        zeroize::Zeroize::zeroize(&mut pair);
        req = req.header("Authorization", format!("Basic {}", token.as_str()));
    }
    for (k, v) in extra {
        req = req.header(*k, v.as_str());
    }
    let sent = match body {
        Some(b) => {
            let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b));
            let req = req
                .header("Content-Type", "application/json")
                .header("Content-MD5", md5)
                .body(b)
                .map_err(|e| format!("invalid request: {e}"))?;
            agent.run(req)
        }
        None => {
            let req = req.body(()).map_err(|e| format!("invalid request: {e}"))?;
            agent.run(req)
        }
    };
    let mut resp = sent.map_err(|e| format!("{e}"))?;
    let status = resp.status().as_u16();
    let mut buf = Vec::new();
    std::io::Read::read_to_end(
        &mut resp.body_mut().with_config().limit(u64::MAX).reader(),
        &mut buf,
    )
    .map_err(|e| format!("reading the response failed: {e}"))?;
    Ok(Reply { status, body: buf })
}
