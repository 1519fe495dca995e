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
//! No credentials: 401 (with `WWW-Authenticate`); wrong credentials, or no grant: 403; too many
//! failures from the address or for the name: 429 with `Retry-After` ([`crate::throttle`]);
//! every password-check permit taken: 503 with `Retry-After` ([`crate::password_checks`]).
//! Terraform sends Basic credentials on every request, and argon2id costs tens of
//! milliseconds by design, so a verified password is remembered for [`CACHE_TTL`], keyed by a
//! SHA-256 of user and password (the password itself is never kept). Tokens are high-entropy,
//! so one SHA-256 and a constant-time comparison check them. Nothing secret is logged; every
//! refusal is logged with the client address and the user name tried.
//!
//! A `read` grant means "may read every secret in the state": the whole state, sensitive
//! outputs and attributes included, through `GET /state/…` and `/v1/versions/…`. The console
//! masks sensitive outputs for viewers without `admin`, but that is a convenience, not access
//! control.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordHasher as _};
use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine as _;
use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::syntax::Block;
use stateseal_encryption::{Diagnostic, Diagnostics};

use crate::connections::ClientAddr;
use crate::password_checks::{Busy, PasswordChecks};
use crate::state_path::StatePath;
use crate::throttle::Throttle;

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
    /// Failed checks per address and name (brute-force back-off).
    throttle: Throttle,
    /// At most one argon2 run per core, on reused memory.
    checks: PasswordChecks,
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
    /// Seconds for `Retry-After` (429 back-off, 503 busy).
    pub retry_after: Option<u64>,
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
            throttle: Throttle::default(),
            checks: PasswordChecks::default(),
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

    /// The name of the token whose SHA-256 is `token`'s, compared in constant time.
    fn token_owner(&self, token: &str) -> Option<Principal> {
        let digest: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .expect("32 bytes");
        let mut found = None;
        for (name, want) in &self.tokens {
            if equal_constant_time(&digest, want) {
                found = Some(name.clone());
            }
        }
        found.map(Principal)
    }

    /// The user, when this user and password were verified less than [`CACHE_TTL`] ago.
    fn recently_verified(&self, key: &[u8; 32]) -> Option<Principal> {
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        cache.retain(|_, (_, until)| *until > now);
        cache.get(key).map(|(name, _)| Principal(name.clone()))
    }

    /// The failure records of password checks (brute-force back-off).
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// The bounded argon2 checks.
    pub fn password_checks(&self) -> &PasswordChecks {
        &self.checks
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

/// A user name as logs show it: at most 64 characters, escaped (it is whatever the client sent).
fn name_for_log(user: &str) -> String {
    format!("{:?}", user.chars().take(64).collect::<String>())
}

/// Checks `user`'s `password` (Basic credentials, the console's sign-in): refused with 429 while
/// the client address or the name is in a back-off ([`Throttle`]), with 503 when every
/// password-check permit is taken ([`PasswordChecks`]), else verified with argon2 on the
/// blocking pool (a recently verified pair is remembered for [`CACHE_TTL`]). Every refusal is
/// logged with the address and the name tried, never the password.
pub(crate) async fn check_password(
    auth: Option<&Auth>,
    client: ClientAddr,
    user: &str,
    password: &str,
) -> Result<Principal, Denied> {
    let auth = auth.ok_or_else(|| Denied::forbidden("invalid credentials"))?;
    let ip = client.ip();
    let shown = client.to_string();
    if let Err(t) = auth.throttle.check(ip, user) {
        tracing::warn!(client = %shown, user = %name_for_log(user), retry_after = t.retry_after_secs, "refused: too many failed sign-ins (back-off)");
        return Err(Denied {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "too many failed sign-ins from this address or for this user: try again in {} s",
                t.retry_after_secs
            ),
            retry_after: Some(t.retry_after_secs),
        });
    }
    let key = sha256(&[user.as_bytes(), password.as_bytes()]);
    if let Some(p) = auth.recently_verified(&key) {
        return Ok(p);
    }
    let permit = match auth.checks.try_permit() {
        Ok(p) => p,
        Err(Busy) => {
            tracing::warn!(client = %shown, user = %name_for_log(user), "refused: every password-check permit is taken (503)");
            return Err(Denied {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the server is busy checking other passwords: retry shortly".into(),
                retry_after: Some(Busy::RETRY_AFTER_SECS),
            });
        }
    };
    // An unknown user costs the same argon2 run as a known one, so answers don't tell
    // which user names exist.
    static UNKNOWN_USER: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password("no such user").unwrap_or_default());
    let known = auth.users.get(user).cloned();
    let phc = known.clone().unwrap_or_else(|| UNKNOWN_USER.clone());
    let candidate = password.as_bytes().to_vec();
    let matched = tokio::task::spawn_blocking(move || permit.verify(&phc, &candidate))
        .await
        .unwrap_or(false);
    if !matched || known.is_none() {
        let (by_addr, by_name) = auth.throttle.failed(ip, user);
        tracing::warn!(client = %shown, user = %name_for_log(user), failures_from_address = by_addr, failures_for_user = by_name, "refused: invalid credentials");
        return Err(Denied::forbidden("invalid credentials"));
    }
    auth.throttle.succeeded(ip, user);
    auth.verified
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, (user.to_string(), Instant::now() + CACHE_TTL));
    Ok(Principal(user.to_string()))
}

/// The credentials a request carries.
#[derive(PartialEq, Eq)]
pub enum Credentials {
    Bearer(String),
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(…)"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user:?}, …)"),
        }
    }
}

/// Reads the `Authorization` header: 401 without one, 403 when it can't be read.
pub fn parse_credentials(headers: &HeaderMap) -> Result<Credentials, Denied> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Denied {
            status: StatusCode::UNAUTHORIZED,
            message: "this server requires credentials: set username and password in the backend \"http\" block, or an Authorization: Bearer header".into(),
            retry_after: None,
        });
    };
    let value = value
        .to_str()
        .map_err(|_| Denied::forbidden("invalid Authorization header"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Bearer(rest.trim().to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Denied::forbidden(
            "unsupported Authorization scheme: use Basic or Bearer",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Denied::forbidden("invalid Basic credentials"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| Denied::forbidden("invalid Basic credentials"))?;
    Ok(Credentials::Basic {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// Who sent the request: a Bearer token, or Basic credentials through [`check_password`].
pub(crate) async fn authenticate(
    auth: Option<&Auth>,
    client: ClientAddr,
    headers: &HeaderMap,
) -> Result<Principal, Denied> {
    let auth = auth.ok_or_else(|| Denied::forbidden("invalid credentials"))?;
    match parse_credentials(headers)? {
        Credentials::Bearer(token) => auth.token_owner(&token).ok_or_else(|| {
            tracing::warn!(client = %client, "refused: invalid bearer token");
            Denied::forbidden("invalid credentials")
        }),
        Credentials::Basic { user, password } => {
            check_password(Some(auth), client, &user, &password).await
        }
    }
}

impl Denied {
    fn forbidden(message: &str) -> Denied {
        Denied {
            status: StatusCode::FORBIDDEN,
            message: message.to_string(),
            retry_after: None,
        }
    }
}

/// Authenticates and checks the grant. `Ok(None)` when the server has no `auth` block.
pub(crate) async fn authorize(
    auth: Option<&Auth>,
    client: ClientAddr,
    headers: &HeaderMap,
    path: Option<&StatePath>,
    permission: Permission,
) -> Result<Option<Principal>, Denied> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    let who = authenticate(Some(auth), client, headers).await?;
    if let Some(path) = path {
        if !auth.allows(&who, path, permission) {
            tracing::info!(user = %who.0, path = %path, ?permission, "denied: no grant");
            return Err(Denied {
                status: StatusCode::FORBIDDEN,
                message: format!("{} has no {permission:?} grant on {path}", who.0).to_lowercase(),
                retry_after: None,
            });
        }
    }
    Ok(Some(who))
}

/// Why a password could not be hashed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("no randomness available for the salt")]
    NoRandomness,
    #[error("argon2id failed: {0}")]
    Argon2(argon2::password_hash::Error),
}

/// A PHC string (`$argon2id$…`) for `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    use ring::rand::SecureRandom as _;
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| HashError::NoRandomness)?;
    let salt = argon2::password_hash::SaltString::encode_b64(&salt).map_err(HashError::Argon2)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(HashError::Argon2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier as _;

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
