//! Blocking JSON over HTTPS for the key services that have plain REST APIs (GCP KMS, OpenBao,
//! Azure Key Vault):
//! one request, one JSON answer. TLS is rustls with ring and Mozilla's roots (or a given PEM
//! bundle). Request and response bodies can hold key material and are wiped after use.

use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};
use zeroize::Zeroizing;

/// The time allowed for one whole request.
const TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client. `ca_pem`: trust only the certificates in this PEM bundle.
pub(crate) fn agent(ca_pem: Option<&[u8]>) -> Result<ureq::Agent, String> {
    let mut tls = TlsConfig::builder();
    if let Some(pem) = ca_pem {
        let certs = ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<Certificate<'static>>, _>>()
            .map_err(|e| format!("invalid PEM certificate bundle: {e}"))?;
        if certs.is_empty() {
            return Err("the PEM certificate bundle holds no certificate".into());
        }
        tls = tls.root_certs(RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .tls_config(tls.build())
        .build()
        .into())
}

/// A response: status, the `WWW-Authenticate` challenge if any, and body (wiped on drop).
pub(crate) struct Reply {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub body: Zeroizing<Vec<u8>>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "unexpected response (HTTP {}): {e}: {}",
                self.status,
                self.text_excerpt()
            )
        })
    }

    /// The start of the body, for error messages (only ever called for error responses, which
    /// carry no key material).
    pub fn text_excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(500)
            .collect()
    }
}

/// Sends `body` with `method` (`POST` or `PUT`; `GET` sends no body) and `content_type` to `url`. Transport errors
/// (refused, DNS, TLS, timeout) name the URL.
pub(crate) fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> Result<Reply, String> {
    let sent = if method == "GET" {
        let mut req = agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.call()
    } else {
        let mut req = match method {
            "PUT" => agent.put(url),
            _ => agent.post(url),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.content_type(content_type).send(body)
    };
    let mut resp = sent.map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = resp.status().as_u16();
    let www_authenticate = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut buf = Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(&mut resp.body_mut().as_reader(), &mut buf)
        .map_err(|e| format!("reading the response from {url} failed: {e}"))?;
    Ok(Reply {
        status,
        www_authenticate,
        body: buf,
    })
}

/// [`send`] with a JSON body.
pub(crate) fn send_json(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> Result<Reply, String> {
    let bytes = Zeroizing::new(serde_json::to_vec(body).expect("JSON serializes"));
    send(agent, method, url, headers, "application/json", &bytes)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// An `application/x-www-form-urlencoded` body (wiped on drop: it can hold secrets).
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(&mut out, k);
        out.push('=');
        percent_encode(&mut out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_encoding() {
        assert_eq!(
            &*super::form_encode(&[("grant_type", "urn:x y"), ("a", "b&c=d")]),
            "grant_type=urn%3Ax%20y&a=b%26c%3Dd"
        );
    }
}
