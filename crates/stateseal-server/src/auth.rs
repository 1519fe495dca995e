//! Authentication and authorization: the `auth` block of the server configuration.
//!
//! ```hcl
//! auth {
//!   user "ci"   { password_hash = "$argon2id$…" }  # `stateseal serve hash-password` prints one
//!   token "bot" { sha256 = "<hex sha256 of the token>" }  # Authorization: Bearer (OpenTofu `headers`)
//!   oidc "github" { issuer = "https://token.actions.githubusercontent.com", audiences = ["stateseal"] }
//!   grant {
//!     to    = ["ci", "bot"]
//!     paths = ["team-a/*"]                 # a trailing * matches any rest, / included
//!     allow = ["read", "write", "lock"]    # "admin": delete and rollback
//!   }
//! }
//! ```
//!
//! OIDC tokens of CI jobs ([`crate::oidc`]) come as the Basic password of the user `oidc` or as a
//! Bearer token, and are granted on their claims:
//! `grant { oidc = "github", claims = { repository_id = "1", ref = "refs/heads/main" },
//! paths = ["${repository_id}/*"], allow = [...] }`; a bad token gets 401, no grant 403.
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordHasher as _};
use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine as _;
use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::syntax::Block;
use stateseal_encryption::{Diagnostic, Diagnostics};

use crate::connections::ClientAddr;
use crate::oidc::{Freshness, Identity, Oidc, RefusalReason, TokenError};
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
    /// `oidc = "NAME"`: the grant is for tokens of that issuer whose claims match `claims`.
    oidc: Option<String>,
    /// Claim name → exact value, or a prefix with a trailing `*`.
    claims: Vec<(String, String)>,
    paths: Vec<String>,
    allow: Vec<Permission>,
}

/// The parsed `auth` block.
pub struct Auth {
    users: HashMap<String, String>,
    /// (name, sha256 of the token)
    tokens: Vec<(String, [u8; 32])>,
    grants: Vec<Grant>,
    /// The `oidc "NAME"` issuers.
    oidc: Oidc,
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
            .field("oidc", &self.oidc)
            .finish()
    }
}

/// Who made a request: a name (a user, a token's name, or an OIDC identity's
/// [`Identity::display`]) and, for an OIDC token, its identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal(pub String, pub Option<OidcSession>);

impl Principal {
    /// A user or token name.
    pub fn named(name: String) -> Principal {
        Principal(name, None)
    }
}

/// A verified OIDC token behind a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSession {
    pub identity: Arc<Identity>,
    pub freshness: Freshness,
}

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
            oidc: Oidc::default(),
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
                    let oidc = match b.body.attribute("oidc") {
                        Some(_) => string(b, "oidc", &mut diags),
                        None => None,
                    };
                    let to = match (&oidc, b.body.attribute("to")) {
                        (Some(_), None) => Vec::new(),
                        (Some(_), Some(a)) => {
                            diags.push(Diagnostic::error(
                                "Invalid grant",
                                "A grant is either for users and tokens (to) or for OIDC tokens (oidc), not both.",
                                Some(&a.location),
                            ));
                            Vec::new()
                        }
                        (None, _) => list(b, "to", &mut diags),
                    };
                    let claims = grant_claims(b, ev, oidc.is_some(), &mut diags);
                    let paths = match oidc {
                        Some(_) => claim_paths(b, &mut diags),
                        None => list(b, "paths", &mut diags),
                    };
                    auth.grants.push(Grant {
                        to,
                        oidc,
                        claims,
                        paths,
                        allow,
                    });
                }
                ("oidc", 1) => {
                    if let Some(issuer) = oidc_block(b, ev, &mut diags) {
                        if auth.oidc.has(&issuer.name) {
                            diags.push(Diagnostic::error(
                                "Duplicate oidc block",
                                format!("oidc {:?} is defined twice.", issuer.name),
                                Some(&b.location),
                            ));
                        }
                        auth.oidc.add(issuer);
                    }
                }
                (kind, _) => diags.push(Diagnostic::error(
                    "Unsupported block",
                    format!("{kind:?} with {} label(s) is not expected in auth; use user \"NAME\", token \"NAME\" and grant.", b.labels.len()),
                    Some(&b.location),
                )),
            }
        }
        for g in &auth.grants {
            if let Some(name) = &g.oidc {
                if !auth.oidc.has(name) {
                    diags.push(Diagnostic::error(
                        "Unknown OIDC issuer",
                        format!(
                            "a grant names oidc {name:?}, but no oidc {name:?} block is defined."
                        ),
                        Some(&block.location),
                    ));
                }
            }
        }
        if diags.has_errors() {
            return Err(diags);
        }
        Ok(auth)
    }

    /// The OIDC issuers, their caches and counters.
    pub fn oidc(&self) -> &Oidc {
        &self.oidc
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
        found.map(Principal::named)
    }

    /// The user, when this user and password were verified less than [`CACHE_TTL`] ago.
    fn recently_verified(&self, key: &[u8; 32]) -> Option<Principal> {
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        cache.retain(|_, (_, until)| *until > now);
        cache
            .get(key)
            .map(|(name, _)| Principal::named(name.clone()))
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
            if !g.allow.contains(&p) {
                return false;
            }
            match (&g.oidc, &who.1) {
                (None, None) => {
                    g.to.contains(&who.0)
                        && g.paths
                            .iter()
                            .any(|pat| pattern_matches(pat, path.as_str()))
                }
                (Some(issuer), Some(session)) => {
                    let id = &session.identity;
                    id.issuer == *issuer
                        && g.claims.iter().all(|(k, want)| {
                            id.claims
                                .get(k)
                                .is_some_and(|v| crate::oidc::claim_matches(want, v))
                        })
                        && g.paths.iter().any(|pat| {
                            crate::oidc::substitute(pat, id)
                                .is_some_and(|pat| pattern_matches(&pat, path.as_str()))
                        })
                }
                _ => false,
            }
        })
    }

    /// The claims the grants of `issuer` look at (what a request's log shows of an identity).
    fn mapped_claims(&self, identity: &Identity) -> Vec<(String, String)> {
        let mut names: Vec<&str> = self
            .grants
            .iter()
            .filter(|g| g.oidc.as_deref() == Some(identity.issuer.as_str()))
            .flat_map(|g| {
                g.claims.iter().map(|(k, _)| k.as_str()).chain(
                    g.paths
                        .iter()
                        .flat_map(|p| p.split("${").skip(1))
                        .filter_map(|rest| rest.split_once('}').map(|(k, _)| k)),
                )
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|k| identity.claims.get(k).map(|v| (k.to_string(), v.clone())))
            .collect()
    }
}

/// Reads the `claims = { NAME = "value" }` of a grant (only with `oidc`).
fn grant_claims(
    b: &Block,
    ev: &StaticEvaluator,
    is_oidc: bool,
    diags: &mut Diagnostics,
) -> Vec<(String, String)> {
    let Some(a) = b.body.attribute("claims") else {
        return Vec::new();
    };
    if !is_oidc {
        diags.push(Diagnostic::error(
            "Invalid grant",
            "claims is only for grants with oidc = \"NAME\".",
            Some(&a.location),
        ));
        return Vec::new();
    }
    match ev.eval(&a.expr, &a.location, &hcl::Value::Null) {
        Ok(hcl::Value::Object(map)) if map.values().all(hcl::Value::is_string) => map
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
            .collect(),
        Ok(_) => {
            diags.push(Diagnostic::error(
                "Invalid value",
                "claims must be an object of strings, such as { repository_id = \"123\", ref = \"refs/heads/main\" }.",
                Some(&a.location),
            ));
            Vec::new()
        }
        Err(d) => {
            diags.push(d);
            Vec::new()
        }
    }
}

/// Reads the `paths` of an OIDC grant as written: `${claim}` is the token's claim, substituted
/// per request ([`crate::oidc::substitute`]), not an HCL interpolation.
fn claim_paths(b: &Block, diags: &mut Diagnostics) -> Vec<String> {
    use hcl::expr::{Expression, TemplateExpr};
    let Some(a) = b.body.attribute("paths") else {
        diags.push(Diagnostic::error(
            "Missing required argument",
            "A grant block needs paths.",
            Some(&b.location),
        ));
        return Vec::new();
    };
    let raw: Option<Vec<String>> = match &a.expr {
        Expression::Array(items) => items
            .iter()
            .map(|i| match i {
                Expression::String(s) => Some(s.clone()),
                Expression::TemplateExpr(t) => match &**t {
                    TemplateExpr::QuotedString(s) => Some(s.clone()),
                    TemplateExpr::Heredoc(_) => None,
                },
                _ => None,
            })
            .collect(),
        _ => None,
    };
    let well_formed = |p: &str| {
        p.split("${").skip(1).all(|rest| {
            rest.split_once('}').is_some_and(|(name, _)| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
        })
    };
    match raw {
        Some(paths) if paths.iter().all(|p| well_formed(p)) => paths,
        _ => {
            diags.push(Diagnostic::error(
                "Invalid value",
                "paths must be a list of quoted strings; ${NAME} is the token's claim NAME, such as \"${repository_id}/*\".",
                Some(&a.location),
            ));
            Vec::new()
        }
    }
}

/// Reads an `oidc "NAME" { … }` block.
fn oidc_block(
    b: &Block,
    ev: &StaticEvaluator,
    diags: &mut Diagnostics,
) -> Option<crate::oidc::Issuer> {
    let name = b.labels.first().cloned().unwrap_or_default();
    let mut issuer = None;
    let mut audiences = Vec::new();
    let mut fields = crate::oidc::Issuer::new(name.clone(), String::new(), Vec::new());
    let before = diags.0.len();
    for a in &b.body.attributes {
        let value = match ev.eval(&a.expr, &a.location, &hcl::Value::Null) {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let mut wrong = |expected: &str| {
            diags.push(Diagnostic::error(
                "Invalid value",
                format!("oidc {name:?}: {} must be {expected}.", a.name),
                Some(&a.location),
            ))
        };
        let strings = |v: &hcl::Value| -> Option<Vec<String>> {
            v.as_array()?
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect()
        };
        match a.name.as_str() {
            "issuer" => match value.as_str() {
                Some(s) if s.starts_with("https://") || s.starts_with("http://") => {
                    issuer = Some(s.to_string())
                }
                _ => wrong("the issuer's URL, exactly as its tokens' iss claim says"),
            },
            "audiences" => match strings(&value) {
                Some(l) if !l.is_empty() && l.iter().all(|x| !x.is_empty()) => audiences = l,
                _ => wrong("a non-empty list of audiences (there is no audience-free mode)"),
            },
            "jwks_url" => match value.as_str() {
                Some(s) if s.starts_with("https://") || s.starts_with("http://") => {
                    fields.jwks_url = Some(s.to_string())
                }
                _ => wrong("a URL"),
            },
            "leeway" => match value.as_u64() {
                Some(n) if n <= crate::oidc::MAX_LEEWAY_SECS => fields.leeway = n,
                _ => wrong("a number of seconds, at most 300"),
            },
            "key_refetch_interval" => match value.as_u64() {
                Some(n) if n >= 1 => fields.refetch_interval = std::time::Duration::from_secs(n),
                _ => wrong("a number of seconds, at least 1"),
            },
            "lock_grace" => match value.as_u64() {
                Some(n) => fields.lock_grace = n,
                None => wrong("a number of seconds"),
            },
            "algorithms" => {
                let parsed: Option<Vec<crate::oidc::Algorithm>> = strings(&value)
                    .and_then(|l| l.iter().map(|a| crate::oidc::Algorithm::parse(a)).collect());
                match parsed {
                    Some(l) if !l.is_empty() => fields.algorithms = l,
                    _ => wrong("a non-empty list of RS256, RS384, RS512, PS256, ES256, ES384 (never none or HS*)"),
                }
            }
            other => diags.push(Diagnostic::error(
                "Unsupported argument",
                format!("{other:?} is not expected in oidc; use issuer, audiences, jwks_url, leeway, algorithms, lock_grace and key_refetch_interval."),
                Some(&a.location),
            )),
        }
    }
    if issuer.is_none() || audiences.is_empty() {
        diags.push(Diagnostic::error(
            "Missing required argument",
            format!("oidc {name:?} needs issuer and audiences."),
            Some(&b.location),
        ));
    }
    if diags.0.len() > before {
        return None;
    }
    fields.issuer = issuer?;
    fields.audiences = audiences;
    Some(fields)
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
    Ok(Principal::named(user.to_string()))
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
        Credentials::Bearer(token) => {
            if let Some(p) = auth.token_owner(&token) {
                return Ok(p);
            }
            if !auth.oidc.is_empty()
                && (token.contains('.') || token.len() > crate::oidc::MAX_TOKEN_BYTES)
            {
                return oidc_principal(auth, client, &token).await;
            }
            tracing::warn!(client = %client, "refused: invalid bearer token");
            Err(Denied::forbidden("invalid credentials"))
        }
        Credentials::Basic { user, password } if user == OIDC_USER && !auth.oidc.is_empty() => {
            oidc_principal(auth, client, &password).await
        }
        Credentials::Basic { user, password } => {
            check_password(Some(auth), client, &user, &password).await
        }
    }
}

/// The Basic user name under which the password is an OIDC token (Terraform's and OpenTofu's
/// `TF_HTTP_USERNAME=oidc`, `TF_HTTP_PASSWORD=<jwt>`).
pub const OIDC_USER: &str = "oidc";

/// The identity of an OIDC token: 401 when it is refused, 503 when the issuer's keys can't be
/// fetched. Logs the issuer, `sub` and the claims the grants use, never the token.
async fn oidc_principal(auth: &Auth, client: ClientAddr, token: &str) -> Result<Principal, Denied> {
    match auth.oidc.verify(token).await {
        Ok((identity, freshness)) => {
            tracing::info!(
                client = %client,
                issuer = %identity.issuer,
                sub = ?identity.sub,
                claims = ?auth.mapped_claims(&identity),
                ?freshness,
                "OIDC identity"
            );
            Ok(Principal(
                identity.display(),
                Some(OidcSession {
                    identity,
                    freshness,
                }),
            ))
        }
        Err(TokenError::Refused { reason, message }) => {
            tracing::warn!(client = %client, reason = ?reason, "refused: {message}");
            Err(Denied::unauthorized(&format!(
                "invalid OIDC token: {message}"
            )))
        }
        Err(e @ TokenError::KeysUnavailable(_)) => {
            tracing::warn!(client = %client, "refused: {e}");
            Err(Denied {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
                retry_after: Some(5),
            })
        }
    }
}

impl Denied {
    fn unauthorized(message: &str) -> Denied {
        Denied {
            status: StatusCode::UNAUTHORIZED,
            message: message.to_string(),
            retry_after: None,
        }
    }

    /// An expired OIDC token used for anything but finishing the apply under its lock: 401,
    /// counted as `expired`.
    pub(crate) fn expired(auth: &Auth, what: &str) -> Denied {
        auth.oidc.count(RefusalReason::Expired);
        Denied::unauthorized(&format!(
            "invalid OIDC token: the token has expired; {what}"
        ))
    }

    fn forbidden(message: &str) -> Denied {
        Denied {
            status: StatusCode::FORBIDDEN,
            message: message.to_string(),
            retry_after: None,
        }
    }
}

/// Authenticates and checks the grant. `Ok(None)` when the server has no `auth` block. An OIDC
/// token past its `exp` is refused (401); only the state protocol lets it finish an apply
/// ([`authorize_in_grace`]).
pub(crate) async fn authorize(
    auth: Option<&Auth>,
    client: ClientAddr,
    headers: &HeaderMap,
    path: Option<&StatePath>,
    permission: Permission,
) -> Result<Option<Principal>, Denied> {
    let who = authorize_in_grace(auth, client, headers, path, permission).await?;
    match (auth, &who) {
        (Some(auth), Some(Principal(_, Some(s)))) if s.freshness == Freshness::Grace => {
            Err(Denied::expired(auth, "refused"))
        }
        _ => Ok(who),
    }
}

/// [`authorize`], but an OIDC token in its lock grace passes: the caller must check that it
/// only finishes the apply under the lock it took.
pub(crate) async fn authorize_in_grace(
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
            if who.1.is_some() {
                auth.oidc.count(RefusalReason::NoGrant);
            }
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
