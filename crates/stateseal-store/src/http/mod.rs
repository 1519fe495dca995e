//! `backend "http"`: a [`Store`] speaking the HTTP backend protocol as Terraform's and
//! OpenTofu's client does (BACKENDS.md §4): `GET address`, `<update_method> address[?ID=lock]`
//! with `Content-Type: application/json` and `Content-MD5`, `<lock_method> lock_address` and
//! `<unlock_method> unlock_address` with the LockInfo JSON, preemptive Basic auth, extra
//! headers, a private CA and a client certificate, and go-retryablehttp's retries (connection
//! errors, 429, 5xx but 501). `skip_cert_verification = true` is refused.
//!
//! The protocol has one state per address, so only `default` exists. Against a
//! `stateseal serve` (docs/SERVER.md) the server's extensions are used too: `versions` and
//! `get_version` through `/v1/versions/<path>`, the lock holder through `GET …/lock`, and
//! conditional uploads with `If-Match`/`If-None-Match: *`. Against other servers a conditional
//! put compares the stored bytes first (safe under the lock, as OpenTofu writes), and versions
//! are [`Error::Unsupported`]. ureq is blocking, so every request runs on tokio's blocking pool.

mod config;
mod transport;

pub use config::{HttpConfig, ATTRIBUTES};

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use stateseal_core::ServiceErrorKind;

use crate::store::{Object, PutMode, Store, Version, VersionInfo, DEFAULT_WORKSPACE};
use crate::{Error, LockInfo, Result};
use transport::{encode_query, pem_certificates, send_blocking, Reply};

/// The http backend client.
pub struct HttpStore {
    config: HttpConfig,
    agent: ureq::Agent,
    /// The lock ID this store took with LOCK (sent as `?ID=` on uploads, as Terraform does).
    held: Mutex<Option<String>>,
    /// Whether the server is a `stateseal serve` (its `/healthz` answers), asked once.
    stateseal: OnceLock<bool>,
}

impl std::fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStore")
            .field("config", &self.config)
            .finish()
    }
}

/// The version of stored bytes: their quoted SHA-256, which is also `stateseal serve`'s ETag.
fn version_of(bytes: &[u8]) -> Version {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Version(format!("\"{hex}\""))
}

/// Where the `stateseal serve` extensions of a `…/state/<path>` address live:
/// `(base, path)`.
fn stateseal_parts(address: &str) -> Option<(String, String)> {
    let scheme_end = address.find("://")? + 3;
    let path_start = scheme_end + address[scheme_end..].find('/')?;
    let rest = &address[path_start..];
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let at = rest.find("/state/")?;
    let base = format!("{}{}", &address[..path_start], &rest[..at]);
    Some((base, rest[at + "/state/".len()..].to_string()))
}

impl HttpStore {
    /// A store for `config` (no I/O).
    pub fn new(config: HttpConfig) -> Result<HttpStore> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(pem) = &config.client_ca_certificate_pem {
            let certs = pem_certificates(pem, "client_ca_certificate_pem")?;
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        if let (Some(chain), Some(key)) = (
            &config.client_certificate_pem,
            &config.client_private_key_pem,
        ) {
            let certs = pem_certificates(chain, "client_certificate_pem")?;
            // The key's parse error is not shown: it could quote key material.
            let key = ureq::tls::PrivateKey::from_pem(key.expose()).map_err(|_| {
                Error::Config("client_private_key_pem holds no valid PEM private key".into())
            })?;
            tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&certs, key)));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(30)))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(HttpStore {
            config,
            agent,
            held: Mutex::new(None),
            stateseal: OnceLock::new(),
        })
    }

    /// Speaks only the protocol, as to a server other than `stateseal serve`, even when the
    /// server is one (no versions, no lock holder, conditional writes checked client-side).
    pub fn plain_protocol(self) -> HttpStore {
        let _ = self.stateseal.set(false);
        self
    }

    fn check_workspace(&self, workspace: &str) -> Result<()> {
        if workspace != DEFAULT_WORKSPACE {
            crate::store::validate_workspace_name(workspace)?;
            return Err(self.no_workspaces());
        }
        Ok(())
    }

    fn no_workspaces(&self) -> Error {
        Error::Unsupported(
            "the http backend has only the default workspace (one state per address): point address at another URL instead (TF_HTTP_ADDRESS or --backend-config address=…)".into(),
        )
    }

    /// Sends one request with retries, on the blocking pool.
    async fn send(
        &self,
        method: &str,
        url: String,
        body: Option<Vec<u8>>,
        extra: Vec<(&'static str, String)>,
    ) -> Result<Reply> {
        let agent = self.agent.clone();
        let config = self.config.clone();
        let method = method.to_string();
        tokio::task::spawn_blocking(move || {
            send_blocking(&agent, &config, &method, &url, body, &extra)
        })
        .await
        .map_err(|e| Error::Service {
            operation: "HTTP request",
            what: "the http backend".into(),
            kind: ServiceErrorKind::Other,
            message: e.to_string(),
            source: None,
        })?
    }

    fn failed(&self, operation: &'static str, url: &str, r: &Reply) -> Error {
        let message = match r.status {
            401 => "HTTP remote state endpoint requires auth".to_string(),
            403 => "HTTP remote state endpoint invalid auth".to_string(),
            s => format!("HTTP error: {s}: {}", r.excerpt()),
        };
        Error::Service {
            operation,
            what: url.to_string(),
            kind: ServiceErrorKind::from_http_status(r.status),
            message,
            source: None,
        }
    }

    /// True when the server is a `stateseal serve` (asked once, with `GET <base>/healthz`).
    async fn is_stateseal(&self) -> bool {
        if let Some(v) = self.stateseal.get() {
            return *v;
        }
        let answer = match stateseal_parts(&self.config.address) {
            None => false,
            Some((base, _)) => match self
                .send("GET", format!("{base}/healthz"), None, Vec::new())
                .await
            {
                Ok(r) if r.status == 200 => serde_json::from_slice::<serde_json::Value>(&r.body)
                    .map(|v| v.get("encryption_at_rest").is_some())
                    .unwrap_or(false),
                _ => false,
            },
        };
        *self.stateseal.get_or_init(|| answer)
    }

    async fn stateseal_parts(&self, what: &str) -> Result<(String, String)> {
        match stateseal_parts(&self.config.address) {
            Some(p) if self.is_stateseal().await => Ok(p),
            _ => Err(Error::Unsupported(format!(
                "{} is not a stateseal serve state: the http backend protocol has no {what}",
                self.config.address
            ))),
        }
    }

    /// LOCK or UNLOCK (or their configured methods): the lock info as the body.
    async fn send_lock_info(&self, method: &str, url: &str, info: &LockInfo) -> Result<Reply> {
        let body = info.to_json().into_bytes();
        self.send(method, url.to_string(), Some(body), Vec::new())
            .await
    }

    /// The typed refusal in a 409 from a server that enforces the state rules
    /// (`stateseal serve` answers `{"refusal": …}`): read from the answer, never by asking
    /// again.
    fn refusal(&self, r: &Reply) -> Option<Error> {
        #[derive(serde::Deserialize)]
        struct Refused {
            refusal: stateseal_core::Refusal,
        }
        let parsed: Refused = serde_json::from_slice(&r.body).ok()?;
        Some(Error::Refused {
            what: self.config.address.clone(),
            refusal: parsed.refusal,
        })
    }

    fn update_url(&self) -> String {
        let held = self.held.lock().expect("lock id").clone();
        match held {
            None => self.config.address.clone(),
            Some(id) => {
                let sep = if self.config.address.contains('?') {
                    '&'
                } else {
                    '?'
                };
                format!("{}{sep}ID={}", self.config.address, encode_query(&id))
            }
        }
    }
}

/// The holder in a 409/423 body; a body that is not LockInfo gives an empty holder (no ID:
/// not retriable).
fn holder_of(r: &Reply) -> LockInfo {
    LockInfo::parse(&r.body).unwrap_or_else(|_| {
        let mut l = LockInfo::new("");
        l.id = String::new();
        l.info = r.excerpt();
        l
    })
}

#[derive(serde::Deserialize)]
struct VersionsJson {
    versions: Vec<VersionJson>,
}

#[derive(serde::Deserialize)]
struct VersionJson {
    seq: u64,
    size: u64,
    time: String,
    stored: String,
}

#[async_trait]
impl Store for HttpStore {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn location(&self, _workspace: &str) -> String {
        self.config.address.clone()
    }

    fn locking_enabled(&self) -> bool {
        self.config.lock_address.is_some() && self.config.unlock_address.is_some()
    }

    fn workspace_needs_state(&self) -> bool {
        true
    }

    fn supports_workspaces(&self) -> bool {
        false
    }

    async fn workspaces(&self) -> Result<Vec<String>> {
        Ok(vec![DEFAULT_WORKSPACE.to_string()])
    }

    async fn create_workspace(&self, workspace: &str) -> Result<()> {
        crate::store::validate_workspace_name(workspace)?;
        Err(self.no_workspaces())
    }

    async fn delete_workspace(&self, workspace: &str) -> Result<()> {
        crate::store::refuse_default_deletion(workspace)?;
        Err(self.no_workspaces())
    }

    async fn get(&self, workspace: &str) -> Result<Object> {
        self.check_workspace(workspace)?;
        let url = self.config.address.clone();
        let r = self.send("GET", url.clone(), None, Vec::new()).await?;
        match r.status {
            200 if !r.body.is_empty() => {
                // The same as `stateseal serve`'s ETag; other servers' ETags mean other things.
                Ok(Object {
                    version: version_of(&r.body),
                    bytes: Bytes::from(r.body),
                    version_id: None,
                })
            }
            200 | 204 | 404 => Err(Error::NotFound {
                what: format!("the state at {url}"),
            }),
            _ => Err(self.failed("GET", &url, &r)),
        }
    }

    async fn put(&self, workspace: &str, bytes: Bytes, mode: PutMode) -> Result<Version> {
        self.check_workspace(workspace)?;
        let what = || format!("the state at {}", self.config.address);
        let mut extra = Vec::new();
        if mode != PutMode::Overwrite {
            // Compare with what is stored; against a server with ETags, let it check too.
            let current = match self.get(workspace).await {
                Ok(o) => Some(o.version),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            match (&mode, current) {
                (PutMode::Create, Some(_)) => return Err(Error::AlreadyExists { what: what() }),
                (PutMode::Create, None) => extra.push(("If-None-Match", "*".to_string())),
                (PutMode::Update(want), Some(have)) if *want == have => {
                    extra.push(("If-Match", have.0))
                }
                (PutMode::Update(want), have) => {
                    return Err(Error::Precondition {
                        what: what(),
                        message: format!(
                            "expected version {}, found {}",
                            want.0,
                            have.map_or("nothing".to_string(), |v| v.0)
                        ),
                    })
                }
                (PutMode::Overwrite, _) => {}
            }
            if !self.is_stateseal().await {
                // Other servers may have other ETags: the comparison above is the check.
                extra.clear();
            }
        }
        let url = self.update_url();
        let version = version_of(&bytes);
        let method = self.config.update_method.clone();
        let r = self
            .send(&method, url.clone(), Some(bytes.to_vec()), extra)
            .await?;
        // A typed refusal first: a lenient LockInfo parse would take it for a holder.
        if let Some(refused) = (r.status == 409).then(|| self.refusal(&r)).flatten() {
            return Err(refused);
        }
        match r.status {
            200 | 201 | 204 => Ok(version),
            412 if mode == PutMode::Create => Err(Error::AlreadyExists { what: what() }),
            412 => Err(Error::Precondition {
                what: what(),
                message: r.excerpt(),
            }),
            423 | 409 if LockInfo::parse(&r.body).is_ok() => Err(Error::Locked {
                holder: Box::new(holder_of(&r)),
                message: format!("HTTP {} from {url}", r.status),
            }),
            409 => Err(Error::Service {
                operation: "upload",
                what: what(),
                kind: ServiceErrorKind::Other,
                message: format!("the server refused the state (HTTP 409): {}", r.excerpt()),
                source: None,
            }),
            _ => Err(self.failed("upload", &url, &r)),
        }
    }

    async fn lock(&self, workspace: &str, mut info: LockInfo) -> Result<LockInfo> {
        self.check_workspace(workspace)?;
        let Some(url) = self.config.lock_address.clone() else {
            return Err(Error::Unsupported(
                "the http backend has no lock_address: locking is disabled".into(),
            ));
        };
        if info.id.is_empty() {
            info.id = crate::lock_info::new_lock_id();
        }
        if info.path.is_empty() {
            info.path = self.config.address.clone();
        }
        let r = self
            .send_lock_info(&self.config.lock_method, &url, &info)
            .await?;
        match r.status {
            200 => {
                *self.held.lock().expect("lock id") = Some(info.id.clone());
                Ok(info)
            }
            409 | 423 => Err(Error::Locked {
                holder: Box::new(holder_of(&r)),
                message: format!("HTTP remote state already locked: HTTP {}", r.status),
            }),
            _ => Err(self.failed("lock", &url, &r)),
        }
    }

    async fn unlock(&self, workspace: &str, id: &str) -> Result<()> {
        self.check_workspace(workspace)?;
        let Some(url) = self.config.unlock_address.clone() else {
            return Err(Error::Unsupported(
                "the http backend has no unlock_address: locking is disabled".into(),
            ));
        };
        // The protocol answers 200 for a free lock; ask a stateseal server who holds it.
        if self.is_stateseal().await && self.lock_holder(workspace).await?.is_none() {
            return Err(Error::NotLocked {
                what: self.config.address.clone(),
            });
        }
        let mut info = LockInfo::new("");
        info.id = id.to_string();
        let r = self
            .send_lock_info(&self.config.unlock_method, &url, &info)
            .await?;
        match r.status {
            200 => {
                let mut held = self.held.lock().expect("lock id");
                if held.as_deref() == Some(id) {
                    *held = None;
                }
                Ok(())
            }
            409 | 423 => Err(Error::LockMismatch {
                id: id.to_string(),
                where_: "",
                holder: Box::new(holder_of(&r)),
            }),
            _ => Err(self.failed("unlock", &url, &r)),
        }
    }

    async fn lock_holder(&self, workspace: &str) -> Result<Option<LockInfo>> {
        self.check_workspace(workspace)?;
        let (base, path) = self.stateseal_parts("way to read the lock holder").await?;
        let url = format!("{base}/state/{path}/lock");
        let r = self.send("GET", url.clone(), None, Vec::new()).await?;
        match r.status {
            200 => LockInfo::parse(&r.body)
                .map(Some)
                .map_err(|e| Error::LockFailed {
                    message: format!("the lock record at {url} does not parse: {e}"),
                }),
            404 => Ok(None),
            _ => Err(self.failed("read lock", &url, &r)),
        }
    }

    async fn versions(&self, workspace: &str) -> Result<Vec<VersionInfo>> {
        self.check_workspace(workspace)?;
        let (base, path) = self.stateseal_parts("versions").await?;
        let url = format!("{base}/v1/versions/{path}");
        let r = self.send("GET", url.clone(), None, Vec::new()).await?;
        match r.status {
            200 => {
                let parsed: VersionsJson =
                    serde_json::from_slice(&r.body).map_err(|e| Error::Service {
                        operation: "list versions",
                        what: url.clone(),
                        kind: ServiceErrorKind::Other,
                        message: format!("unexpected answer: {e}"),
                        source: None,
                    })?;
                Ok(parsed
                    .versions
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| VersionInfo {
                        id: v.seq.to_string(),
                        last_modified: v.time,
                        size: v.size,
                        is_latest: i == 0,
                        is_delete_marker: v.stored == "deleted",
                    })
                    .collect())
            }
            404 => Ok(Vec::new()),
            _ => Err(self.failed("list versions", &url, &r)),
        }
    }

    async fn get_version(&self, workspace: &str, version_id: &str) -> Result<Object> {
        self.check_workspace(workspace)?;
        let (base, path) = self.stateseal_parts("versions").await?;
        if version_id.is_empty() || !version_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::NotFound {
                what: format!("version {version_id:?} of {}", self.config.address),
            });
        }
        let url = format!("{base}/v1/versions/{path}?seq={version_id}");
        let r = self.send("GET", url.clone(), None, Vec::new()).await?;
        match r.status {
            200 => Ok(Object {
                version: version_of(&r.body),
                bytes: Bytes::from(r.body),
                version_id: Some(version_id.to_string()),
            }),
            404 => Err(Error::NotFound {
                what: format!("version {version_id} of {}", self.config.address),
            }),
            _ => Err(self.failed("get version", &url, &r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn stateseal_extension_urls_come_from_the_address() {
        assert_eq!(
            stateseal_parts("http://127.0.0.1:8080/state/team-a/app"),
            Some(("http://127.0.0.1:8080".into(), "team-a/app".into()))
        );
        assert_eq!(
            stateseal_parts("https://h/prefix/state/x?a=b"),
            Some(("https://h/prefix".into(), "x".into()))
        );
        assert_eq!(
            stateseal_parts("https://gitlab/api/v4/projects/1/terraform/state/x").map(|p| p.1),
            Some("x".into())
        );
        assert_eq!(stateseal_parts("http://h/other"), None);
    }

    #[test]
    fn settings_env_fallbacks_and_refusals() {
        let env = |k: &str| match k {
            "TF_HTTP_ADDRESS" => Some("http://h/state/a".to_string()),
            "TF_HTTP_LOCK_METHOD" => Some("POST".to_string()),
            _ => None,
        };
        let c = HttpConfig::from_settings(&BTreeMap::new(), Vec::new(), &env).unwrap();
        assert_eq!(c.address, "http://h/state/a");
        assert_eq!(c.lock_method, "POST");
        assert_eq!(c.unlock_method, "UNLOCK");
        assert_eq!(c.update_method, "POST");
        assert_eq!(c.retry_max, 2);
        let mut s = BTreeMap::new();
        s.insert("skip_cert_verification".to_string(), "true".to_string());
        s.insert("address".to_string(), "ftp://x".to_string());
        s.insert("password".to_string(), "hunter2".to_string());
        s.insert("username".to_string(), "u".to_string());
        let e = HttpConfig::from_settings(
            &s,
            vec![
                ("Content-MD5".into(), "x".into()),
                ("Authorization".into(), "y".into()),
            ],
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|l| l.contains("skip_cert_verification")));
        assert!(e.iter().any(|l| l.contains("address must be an http")));
        s.remove("skip_cert_verification");
        s.insert("address".to_string(), "http://x/y".to_string());
        let c = HttpConfig::from_settings(&s, Vec::new(), &|_| None).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        s.insert("client_private_key_pem".to_string(), "KEY".to_string());
        let e = HttpConfig::from_settings(&s, Vec::new(), &|_| None).unwrap_err();
        assert!(e[0].contains("go together"), "{e:?}");
        s.insert(
            "client_certificate_pem".to_string(),
            "not a pem".to_string(),
        );
        let c = HttpConfig::from_settings(&s, Vec::new(), &|_| None).unwrap();
        assert!(!format!("{c:?}").contains("KEY"));
        assert!(
            matches!(HttpStore::new(c), Err(Error::Config(m)) if m.contains("client_certificate_pem"))
        );
    }
}
