//! Authentication and authorization: the `auth` block of the server configuration.
//!
//! ```hcl
//! auth {
//!   user "ci"   { password_hash = "$argon2id$…" }  # `stateseal serve hash-password` prints one
//!   token "bot" { sha256 = "<hex sha256 of the token>" }  # Authorization: Bearer (OpenTofu `headers`)
//!   grant {
//!     to    = ["ci", "bot"]
//!     paths = ["team-a/*"]                 # a trailing * matches any rest, / included
//!     allow = ["read", "write", "lock"]    # "admin": delete and rollback
//!   }
//! }
//! ```
//!
//! No credentials: 401 (with `WWW-Authenticate`); wrong credentials, or no grant: 403.
//! Terraform sends Basic credentials on every request, and argon2id costs tens of
//! milliseconds by design, so a verified password is remembered for [`CACHE_TTL`], keyed by a
//! SHA-256 of user and password (the password itself is never kept). Tokens are high-entropy,
//! so one SHA-256 and a constant-time comparison check them. Nothing secret is logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine as _;
use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::syntax::Block;
use stateseal_encryption::{Diagnostic, Diagnostics};

use crate::state_path::StatePath;

/// How long a verified password is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// What an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// GET a state, its versions, its lock.
    Read,
    /// Upload a state.
    Write,
    /// LOCK and UNLOCK (force-unlock included).
    Lock,
    /// Delete a state, roll it back.
    Admin,
}

impl Permission {
    fn parse(s: &str) -> Option<Permission> {
        Some(match s {
            "read" => Permission::Read,
            "write" => Permission::Write,
            "lock" => Permission::Lock,
            "admin" => Permission::Admin,
            _ => return None,
        })
    }
}

struct Grant {
    to: Vec<String>,
    paths: Vec<String>,
    allow: Vec<Permission>,
}

/// The parsed `auth` block.
pub struct Auth {
    users: HashMap<String, String>,
    /// (name, sha256 of the token)
    tokens: Vec<(String, [u8; 32])>,
    grants: Vec<Grant>,
    /// SHA-256(user, password) of recently verified passwords, with their expiry.
    verified: Mutex<HashMap<[u8; 32], (String, Instant)>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field(
                "tokens",
                &self.tokens.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("grants", &self.grants.len())
            .finish()
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal(pub String);

/// A refused request: 401 or 403 with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub status: StatusCode,
    pub message: String,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    ctx.finish().as_ref().try_into().expect("32 bytes")
}

fn equal_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn pattern_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

impl Auth {
    /// Reads an `auth` block.
    pub fn from_block(block: &Block, ev: &StaticEvaluator) -> Result<Auth, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut auth = Auth {
            users: HashMap::new(),
            tokens: Vec::new(),
            grants: Vec::new(),
            verified: Mutex::default(),
        };
        let string = |b: &Block, name: &str, diags: &mut Diagnostics| -> Option<String> {
            let Some(a) = b.body.attribute(name) else {
                diags.push(Diagnostic::error(
                    "Missing required argument",
                    format!("A {} block needs {name}.", b.kind),
                    Some(&b.location),
                ));
                return None;
            };
            match ev.eval(&a.expr, &a.location, &hcl::Value::Null) {
                Ok(hcl::Value::String(s)) => Some(s),
                Ok(_) => {
                    diags.push(Diagnostic::error(
                        "Invalid value",
                        format!("{name} must be a string."),
                        Some(&a.location),
                    ));
                    None
                }
                Err(d) => {
                    diags.push(d);
                    None
                }
            }
        };
        let list = |b: &Block, name: &str, diags: &mut Diagnostics| -> Vec<String> {
            let Some(a) = b.body.attribute(name) else {
                diags.push(Diagnostic::error(
                    "Missing required argument",
                    format!("A grant block needs {name}."),
                    Some(&b.location),
                ));
                return Vec::new();
            };
            match ev.eval(&a.expr, &a.location, &hcl::Value::Null) {
                Ok(hcl::Value::Array(items)) if items.iter().all(|i| i.is_string()) => items
                    .into_iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
                Ok(_) => {
                    diags.push(Diagnostic::error(
                        "Invalid value",
                        format!("{name} must be a list of strings."),
                        Some(&a.location),
                    ));
                    Vec::new()
                }
                Err(d) => {
                    diags.push(d);
                    Vec::new()
                }
            }
        };
        for a in &block.body.attributes {
            diags.push(Diagnostic::error(
                "Unsupported argument",
                format!(
                    "{:?} is not expected in auth; use user, token and grant blocks.",
                    a.name
                ),
                Some(&a.location),
            ));
        }
        for b in &block.body.blocks {
            let label = || b.labels.first().cloned().unwrap_or_default();
            match (b.kind.as_str(), b.labels.len()) {
                ("user", 1) => {
                    if let Some(h) = string(b, "password_hash", &mut diags) {
                        if PasswordHash::new(&h).is_err() {
                            diags.push(Diagnostic::error(
                                "Invalid password_hash",
                                format!("user {:?}: password_hash must be a PHC string such as `stateseal serve hash-password` prints ($argon2id$…).", label()),
                                Some(&b.location),
                            ));
                        }
                        auth.users.insert(label(), h);
                    }
                }
                ("token", 1) => {
                    if let Some(h) = string(b, "sha256", &mut diags) {
                        let bytes: Option<Vec<u8>> = (0..h.len())
                            .step_by(2)
                            .map(|i| h.get(i..i + 2).and_then(|x| u8::from_str_radix(x, 16).ok()))
                            .collect();
                        match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                            Some(d) => auth.tokens.push((label(), d)),
                            None => diags.push(Diagnostic::error(
                                "Invalid sha256",
                                format!("token {:?}: sha256 must be 64 hex digits (sha256sum of the token).", label()),
                                Some(&b.location),
                            )),
                        }
                    }
                }
                ("grant", 0) => {
                    let allow_words = list(b, "allow", &mut diags);
                    let mut allow = Vec::new();
                    for w in &allow_words {
                        match Permission::parse(w) {
                            Some(p) => allow.push(p),
                            None => diags.push(Diagnostic::error(
                                "Invalid permission",
                                format!("{w:?} is not a permission; use read, write, lock or admin."),
                                Some(&b.location),
                            )),
                        }
                    }
                    auth.grants.push(Grant {
                        to: list(b, "to", &mut diags),
                        paths: list(b, "paths", &mut diags),
                        allow,
                    });
                }
                (kind, _) => diags.push(Diagnostic::error(
                    "Unsupported block",
                    format!("{kind:?} with {} label(s) is not expected in auth; use user \"NAME\", token \"NAME\" and grant.", b.labels.len()),
                    Some(&b.location),
                )),
            }
        }
        if diags.has_errors() {
            return Err(diags);
        }
        Ok(auth)
    }

    /// Who sent the request (blocking: may run argon2).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Denied> {
        let denied = |m: &str| Denied {
            status: StatusCode::FORBIDDEN,
            message: m.to_string(),
        };
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(Denied {
                status: StatusCode::UNAUTHORIZED,
                message: "this server requires credentials: set username and password in the backend \"http\" block, or an Authorization: Bearer header".into(),
            });
        };
        let value = value
            .to_str()
            .map_err(|_| denied("invalid Authorization header"))?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let digest: [u8; 32] =
                ring::digest::digest(&ring::digest::SHA256, rest.trim().as_bytes())
                    .as_ref()
                    .try_into()
                    .expect("32 bytes");
            let mut found = None;
            for (name, want) in &self.tokens {
                if equal_constant_time(&digest, want) {
                    found = Some(name.clone());
                }
            }
            return found
                .map(Principal)
                .ok_or_else(|| denied("invalid credentials"));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(denied(
                "unsupported Authorization scheme: use Basic or Bearer",
            ));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| denied("invalid Basic credentials"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| denied("invalid Basic credentials"))?;
        let key = sha256(&[user.as_bytes(), password.as_bytes()]);
        {
            let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if let Some((name, _)) = cache.get(&key) {
                return Ok(Principal(name.clone()));
            }
        }
        // An unknown user costs the same argon2 run as a known one, so answers don't tell
        // which user names exist.
        static UNKNOWN_USER: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| hash_password("no such user").unwrap_or_default());
        let known = self.users.get(user);
        let ok = PasswordHash::new(known.unwrap_or(&UNKNOWN_USER))
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        if !ok || known.is_none() {
            return Err(denied("invalid credentials"));
        }
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (user.to_string(), Instant::now() + CACHE_TTL));
        Ok(Principal(user.to_string()))
    }

    /// True when a grant gives `who` the permission on `path`.
    pub fn allows(&self, who: &Principal, path: &StatePath, p: Permission) -> bool {
        self.grants.iter().any(|g| {
            g.allow.contains(&p)
                && g.to.contains(&who.0)
                && g.paths
                    .iter()
                    .any(|pat| pattern_matches(pat, path.as_str()))
        })
    }
}

/// Authenticates (on the blocking pool: argon2 may run) and checks the grant. `Ok(None)` when
/// the server has no `auth` block.
pub(crate) async fn authorize(
    app: &std::sync::Arc<crate::App>,
    headers: &HeaderMap,
    path: Option<&StatePath>,
    permission: Permission,
) -> Result<Option<Principal>, crate::protocol::Reply> {
    if app.auth.is_none() {
        return Ok(None);
    }
    let (app2, headers) = (app.clone(), headers.clone());
    let who = tokio::task::spawn_blocking(move || {
        app2.auth.as_ref().expect("checked").authenticate(&headers)
    })
    .await
    .map_err(|e| crate::protocol::Reply::failed("authentication failed", e))?;
    let denied = |d: Denied| {
        let mut r = crate::protocol::Reply::text(d.status, d.message);
        r.www_authenticate = d.status == StatusCode::UNAUTHORIZED;
        r
    };
    let who = who.map_err(denied)?;
    if let Some(path) = path {
        if !app
            .auth
            .as_ref()
            .expect("checked")
            .allows(&who, path, permission)
        {
            tracing::info!(user = %who.0, path = %path, ?permission, "denied: no grant");
            return Err(denied(Denied {
                status: StatusCode::FORBIDDEN,
                message: format!("{} has no {permission:?} grant on {path}", who.0).to_lowercase(),
            }));
        }
    }
    Ok(Some(who))
}

/// A PHC string (`$argon2id$…`) for `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    use ring::rand::SecureRandom as _;
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "no randomness available".to_string())?;
    let salt = argon2::password_hash::SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("team-a/*", "team-a/x/y"));
        assert!(!pattern_matches("team-a/*", "team-ab"));
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("exact", "exact"));
        assert!(!pattern_matches("exact", "exact/more"));
    }

    #[test]
    fn hashes_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"s3cret", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"other", &parsed)
            .is_err());
    }
}
