//! The settings of `backend "http"`: [`HttpConfig`] from a backend block's attributes (and the
//! `TF_HTTP_*` environment fallbacks OpenTofu reads), validated before any request.

use std::collections::BTreeMap;
use std::time::Duration;

use stateseal_encryption::Secret;

/// The settings of a `backend "http"` block (OpenTofu's attribute names).
#[derive(Clone)]
pub struct HttpConfig {
    pub address: String,
    pub update_method: String,
    pub lock_address: Option<String>,
    pub unlock_address: Option<String>,
    pub lock_method: String,
    pub unlock_method: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub headers: Vec<(String, String)>,
    pub retry_max: u32,
    pub retry_wait_min: Duration,
    pub retry_wait_max: Duration,
    /// PEM bundle that replaces the system roots.
    pub client_ca_certificate_pem: Option<String>,
    /// mTLS: the client's certificate chain and its key (PEM).
    pub client_certificate_pem: Option<String>,
    pub client_private_key_pem: Option<Secret>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("address", &self.address)
            .field("update_method", &self.update_method)
            .field("lock_address", &self.lock_address)
            .field("unlock_address", &self.unlock_address)
            .field("lock_method", &self.lock_method)
            .field("unlock_method", &self.unlock_method)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("retry_max", &self.retry_max)
            .finish()
    }
}

/// The attributes the block takes, with the environment variable each falls back to.
pub const ATTRIBUTES: [(&str, Option<&str>); 15] = [
    ("address", Some("TF_HTTP_ADDRESS")),
    ("update_method", Some("TF_HTTP_UPDATE_METHOD")),
    ("lock_address", Some("TF_HTTP_LOCK_ADDRESS")),
    ("unlock_address", Some("TF_HTTP_UNLOCK_ADDRESS")),
    ("lock_method", Some("TF_HTTP_LOCK_METHOD")),
    ("unlock_method", Some("TF_HTTP_UNLOCK_METHOD")),
    ("username", Some("TF_HTTP_USERNAME")),
    ("password", Some("TF_HTTP_PASSWORD")),
    ("skip_cert_verification", None),
    ("retry_max", Some("TF_HTTP_RETRY_MAX")),
    ("retry_wait_min", Some("TF_HTTP_RETRY_WAIT_MIN")),
    ("retry_wait_max", Some("TF_HTTP_RETRY_WAIT_MAX")),
    (
        "client_ca_certificate_pem",
        Some("TF_HTTP_CLIENT_CA_CERTIFICATE_PEM"),
    ),
    (
        "client_certificate_pem",
        Some("TF_HTTP_CLIENT_CERTIFICATE_PEM"),
    ),
    (
        "client_private_key_pem",
        Some("TF_HTTP_CLIENT_PRIVATE_KEY_PEM"),
    ),
];

impl HttpConfig {
    /// Builds the configuration from string attributes (block values with `--backend-config`
    /// applied) and `headers`, falling back to `TF_HTTP_*` from `env`. Every problem is one
    /// line of the returned message.
    pub fn from_settings(
        settings: &BTreeMap<String, String>,
        headers: Vec<(String, String)>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<HttpConfig, Vec<String>> {
        let mut problems = Vec::new();
        let get = |name: &str| -> Option<String> {
            settings.get(name).cloned().or_else(|| {
                ATTRIBUTES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, e)| e.and_then(env))
            })
        };
        let address = get("address").unwrap_or_default();
        if address.is_empty() {
            problems.push("the http backend needs an address (or TF_HTTP_ADDRESS)".to_string());
        }
        for (name, value) in [
            ("address", Some(address.clone())),
            ("lock_address", get("lock_address")),
            ("unlock_address", get("unlock_address")),
        ] {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    problems.push(format!("{name} must be an http or https URL, got {v:?}"));
                }
            }
        }
        if get("skip_cert_verification").is_some_and(|v| v == "true") {
            problems.push("skip_cert_verification = true is refused: stateseal always verifies the server's certificate (give client_ca_certificate_pem for a private CA)".into());
        }
        let client_certificate_pem = get("client_certificate_pem").filter(|v| !v.is_empty());
        let client_private_key_pem = get("client_private_key_pem").filter(|v| !v.is_empty());
        if client_certificate_pem.is_some() != client_private_key_pem.is_some() {
            problems.push("client_certificate_pem and client_private_key_pem go together: give both for a client certificate, or neither".into());
        }
        let mut number = |name: &str, default: u64| -> u64 {
            match get(name) {
                None => default,
                Some(v) => v.trim().parse().unwrap_or_else(|_| {
                    problems.push(format!("{name} must be a whole number, got {v:?}"));
                    default
                }),
            }
        };
        let retry_max = number("retry_max", 2);
        let retry_wait_min = number("retry_wait_min", 1);
        let retry_wait_max = number("retry_wait_max", 30);
        for (name, _) in &headers {
            let lower = name.to_ascii_lowercase();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problems.push(format!("headers: {name:?} is not a valid header name"));
            } else if lower == "content-type" || lower == "content-md5" {
                problems.push(format!(
                    "headers: {name} is set by the client and can't be given"
                ));
            } else if lower == "authorization" && get("username").is_some() {
                problems
                    .push("headers: Authorization can't be given together with username".into());
            }
        }
        let method = |name: &str, default: &str| {
            get(name)
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let config = HttpConfig {
            update_method: method("update_method", "POST"),
            lock_method: method("lock_method", "LOCK"),
            unlock_method: method("unlock_method", "UNLOCK"),
            lock_address: get("lock_address").filter(|v| !v.is_empty()),
            unlock_address: get("unlock_address").filter(|v| !v.is_empty()),
            username: get("username").filter(|v| !v.is_empty()),
            password: get("password").map(|p| Secret::new(p.into_bytes())),
            headers,
            retry_max: retry_max.min(u32::MAX as u64) as u32,
            retry_wait_min: Duration::from_secs(retry_wait_min),
            retry_wait_max: Duration::from_secs(retry_wait_max),
            client_ca_certificate_pem: get("client_ca_certificate_pem").filter(|v| !v.is_empty()),
            client_certificate_pem,
            client_private_key_pem: client_private_key_pem.map(|k| Secret::new(k.into_bytes())),
            address,
        };
        for (name, m) in [
            ("update_method", &config.update_method),
            ("lock_method", &config.lock_method),
            ("unlock_method", &config.unlock_method),
        ] {
            if !m.chars().all(|c| c.is_ascii_alphabetic()) {
                problems.push(format!("{name} must be an HTTP method name, got {m:?}"));
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }
}
