//! OIDC identities for CI jobs (issue 22): the `oidc "NAME" { … }` blocks of the `auth` block,
//! and the verification of the short-lived JWTs that CI platforms (GitHub Actions, GitLab CI)
//! mint per job, so a pipeline needs no stored password.
//!
//! ```hcl
//! oidc "github" {
//!   issuer     = "https://token.actions.githubusercontent.com"
//!   audiences  = ["stateseal"]
//!   jwks_url   = "…"            # optional: else discovery (/.well-known/openid-configuration)
//!   leeway     = 30             # seconds of clock skew allowed on exp, nbf and iat (≤ 300)
//!   algorithms = ["RS256", "ES256"]   # the default; never none or HS*
//!   lock_grace = 3600           # seconds after exp a lock's holder may still finish its apply
//!   key_refetch_interval = 60   # least seconds between fetches of the keys (≥ 1)
//! }
//! ```
//!
//! A token is checked, in order: size (at most [`MAX_TOKEN_BYTES`], refused unparsed), form,
//! `iss` (exactly a configured issuer), `alg` (one of the issuer's algorithms), `kid` (a key of
//! the issuer's JWKS; on an unknown `kid` the keys are fetched again at most once per
//! `key_refetch_interval`, [`REFETCH_INTERVAL`] by default), the signature (with `ring`), `aud` (one of `audiences`; there is no
//! audience-free mode), then `exp`/`nbf`/`iat` with the leeway. A verified token is remembered
//! by its SHA-256 until it expires (at most [`MAX_CACHED`] of them), so the signature is checked
//! once per token. The token itself is never kept, logged or shown.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::Value;

/// Largest token accepted; longer ones are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// On an unknown `kid`, the issuer's keys are fetched again at most this often (the default of
/// `key_refetch_interval`).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch with no keys at all, the next try waits this long.
const RETRY_WITHOUT_KEYS: Duration = Duration::from_secs(5);
/// Verified tokens remembered at most.
pub const MAX_CACHED: usize = 10_000;
/// Largest discovery document or JWKS read.
const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;
/// The default leeway on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// The default grace after `exp` for finishing an apply under a lock taken before it.
pub const DEFAULT_LOCK_GRACE_SECS: u64 = 3600;
/// Largest leeway allowed in the configuration.
pub const MAX_LEEWAY_SECS: u64 = 300;

/// A signature algorithm a token may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Es256,
    Es384,
}

impl Algorithm {
    /// The JOSE name's algorithm; `None` for `none`, HS* and anything else.
    pub fn parse(name: &str) -> Option<Algorithm> {
        Some(match name {
            "RS256" => Algorithm::Rs256,
            "RS384" => Algorithm::Rs384,
            "RS512" => Algorithm::Rs512,
            "PS256" => Algorithm::Ps256,
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            _ => return None,
        })
    }

    /// Checks `sig` over `message` with `key`.
    fn verify(self, key: &Jwk, message: &[u8], sig: &[u8]) -> bool {
        use ring::signature as s;
        match (self, key) {
            (
                Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512 | Algorithm::Ps256,
                Jwk::Rsa { n, e },
            ) => {
                let params: &s::RsaParameters = match self {
                    Algorithm::Rs256 => &s::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::Rs384 => &s::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::Rs512 => &s::RSA_PKCS1_2048_8192_SHA512,
                    _ => &s::RSA_PSS_2048_8192_SHA256,
                };
                s::RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            (
                Algorithm::Es256,
                Jwk::Ec {
                    curve: Curve::P256,
                    point,
                },
            ) => s::UnparsedPublicKey::new(&s::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok(),
            (
                Algorithm::Es384,
                Jwk::Ec {
                    curve: Curve::P384,
                    point,
                },
            ) => s::UnparsedPublicKey::new(&s::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

/// A public key of an issuer's JWKS.
#[derive(Clone, Debug)]
enum Jwk {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point (0x04 ‖ x ‖ y).
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

impl Jwk {
    fn from_json(v: &Value) -> Option<Jwk> {
        let field = |k: &str| v.get(k).and_then(Value::as_str).and_then(b64url);
        if v.get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            return None;
        }
        match v.get("kty").and_then(Value::as_str)? {
            "RSA" => Some(Jwk::Rsa {
                n: field("n")?,
                e: field("e")?,
            }),
            "EC" => {
                let (curve, len) = match v.get("crv").and_then(Value::as_str)? {
                    "P-256" => (Curve::P256, 32),
                    "P-384" => (Curve::P384, 48),
                    _ => return None,
                };
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != len || y.len() != len {
                    return None;
                }
                let mut point = vec![4u8];
                point.extend(x);
                point.extend(y);
                Some(Jwk::Ec { curve, point })
            }
            _ => None,
        }
    }
}

/// Why a token was refused; each reason is a counter on `/metrics`
/// (`stateseal_oidc_refusals_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// Too large, not a JWT, unreadable header or claims.
    Malformed,
    /// `exp` passed, `nbf` or `iat` in the future (beyond the leeway).
    Expired,
    /// No `aud` of the token is one of the issuer's `audiences`.
    Audience,
    /// `iss` is no configured issuer.
    Issuer,
    /// Unknown key, or the signature does not verify.
    Signature,
    /// Verified, but no grant allows the request.
    NoGrant,
    /// `alg` is not one the issuer allows (`none`, HS*, …).
    Algorithm,
}

impl RefusalReason {
    const ALL: [RefusalReason; 7] = [
        RefusalReason::Malformed,
        RefusalReason::Expired,
        RefusalReason::Audience,
        RefusalReason::Issuer,
        RefusalReason::Signature,
        RefusalReason::NoGrant,
        RefusalReason::Algorithm,
    ];

    fn label(self) -> &'static str {
        match self {
            RefusalReason::Malformed => "malformed",
            RefusalReason::Expired => "expired",
            RefusalReason::Audience => "audience",
            RefusalReason::Issuer => "issuer",
            RefusalReason::Signature => "signature",
            RefusalReason::NoGrant => "no_grant",
            RefusalReason::Algorithm => "algorithm",
        }
    }
}

/// Why a token was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid OIDC token: {message}")]
    Refused {
        reason: RefusalReason,
        message: String,
    },
    /// The issuer's keys could not be fetched: try again later.
    #[error("the signing keys of OIDC issuer {0:?} could not be fetched; try again later")]
    KeysUnavailable(String),
}

fn refused(reason: RefusalReason, message: impl Into<String>) -> TokenError {
    TokenError::Refused {
        reason,
        message: message.into(),
    }
}

/// A verified token's identity: the issuer's name and the token's scalar claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The `oidc "NAME"` block that verified it.
    pub issuer: String,
    pub sub: String,
    /// The string, number and boolean claims, as strings.
    pub claims: BTreeMap<String, String>,
    /// `exp`, seconds since the epoch.
    pub exp: u64,
    /// SHA-256 of the token: what a lock is bound to (the token is not kept).
    pub token_digest: [u8; 32],
}

impl Identity {
    /// How the console and the version records name it:
    /// `github: acme/infra@refs/heads/main (prod)`.
    pub fn display(&self) -> String {
        let c = |k: &str| self.claims.get(k).map(String::as_str);
        let what = c("repository")
            .or(c("project_path"))
            .unwrap_or(self.sub.as_str());
        let mut s = format!("{}: {what}", self.issuer);
        if let Some(r) = c("ref") {
            s.push('@');
            s.push_str(r);
        }
        if let Some(e) = c("environment") {
            s.push_str(&format!(" ({e})"));
        }
        s
    }
}

/// One `oidc "NAME"` block.
pub struct Issuer {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks_url: Option<String>,
    pub leeway: u64,
    pub algorithms: Vec<Algorithm>,
    pub lock_grace: u64,
    /// Least time between two fetches of the keys.
    pub refetch_interval: Duration,
    keys: Mutex<KeySet>,
    /// One fetch at a time per issuer.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Jwk>,
    /// When the keys were last fetched (successfully or not).
    last_try: Option<Instant>,
    fetches: u64,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer; its keys are fetched on first use.
    pub fn new(name: String, issuer: String, audiences: Vec<String>) -> Issuer {
        Issuer {
            name,
            issuer,
            audiences,
            jwks_url: None,
            leeway: DEFAULT_LEEWAY_SECS,
            algorithms: vec![Algorithm::Rs256, Algorithm::Es256],
            lock_grace: DEFAULT_LOCK_GRACE_SECS,
            refetch_interval: REFETCH_INTERVAL,
            keys: Mutex::default(),
            fetching: tokio::sync::Mutex::const_new(()),
        }
    }

    fn key(&self, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
        let set = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        match kid {
            Some(k) => set.keys.get(k).cloned(),
            // No kid: only when exactly one key could verify this algorithm.
            None => {
                let fits: Vec<&Jwk> = set
                    .keys
                    .values()
                    .filter(|k| {
                        matches!(
                            (alg, k),
                            (
                                Algorithm::Rs256
                                    | Algorithm::Rs384
                                    | Algorithm::Rs512
                                    | Algorithm::Ps256,
                                Jwk::Rsa { .. }
                            ) | (Algorithm::Es256 | Algorithm::Es384, Jwk::Ec { .. })
                        )
                    })
                    .collect();
                (fits.len() == 1).then(|| fits[0].clone())
            }
        }
    }

    /// Fetches the keys again when allowed: never fetched, or the last try is older than
    /// `refetch_interval` ([`RETRY_WITHOUT_KEYS`] while there are no keys at all).
    async fn refresh(&self) -> Result<(), TokenError> {
        let _one = self.fetching.lock().await;
        {
            let set = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            let wait = if set.keys.is_empty() {
                RETRY_WITHOUT_KEYS
            } else {
                self.refetch_interval
            };
            if set.last_try.is_some_and(|t| t.elapsed() < wait) {
                return if set.keys.is_empty() {
                    Err(TokenError::KeysUnavailable(self.name.clone()))
                } else {
                    Ok(())
                };
            }
        }
        let issuer = self.issuer.clone();
        let pinned = self.jwks_url.clone();
        let fetched = tokio::task::spawn_blocking(move || fetch_keys(&issuer, pinned.as_deref()))
            .await
            .unwrap_or_else(|e| Err(format!("the fetch task failed: {e}")));
        let mut set = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        set.last_try = Some(Instant::now());
        set.fetches += 1;
        match fetched {
            Ok(keys) => {
                tracing::info!(issuer = %self.name, keys = keys.len(), "fetched the OIDC issuer's signing keys");
                set.keys = keys;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(issuer = %self.name, error = %e, "fetching the OIDC issuer's signing keys failed");
                if set.keys.is_empty() {
                    Err(TokenError::KeysUnavailable(self.name.clone()))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// GETs `url` as JSON (at most [`MAX_DOCUMENT_BYTES`], 5 s).
fn get_json(url: &str) -> Result<Value, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT_BYTES)
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{url}: not JSON: {e}"))
}

/// The issuer's keys by `kid` (keys without a `kid` are named by their position), through the
/// pinned JWKS URL or discovery.
fn fetch_keys(issuer: &str, pinned: Option<&str>) -> Result<HashMap<String, Jwk>, String> {
    let url = match pinned {
        Some(u) => u.to_string(),
        None => {
            let doc = get_json(&format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ))?;
            if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
                return Err("the discovery document names another issuer".into());
            }
            doc.get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or("the discovery document has no jwks_uri")?
                .to_string()
        }
    };
    let jwks = get_json(&url)?;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{url}: no keys"))?;
    Ok(keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let kid = k
                .get("kid")
                .and_then(Value::as_str)
                .map_or_else(|| format!("#{i}"), str::to_string);
            Jwk::from_json(k).map(|j| (kid, j))
        })
        .collect())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn digest(token: &str) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .try_into()
        .expect("32 bytes")
}

/// Where a verified identity stands in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Before `exp` (with the leeway).
    Valid,
    /// After `exp`, within the issuer's `lock_grace`: may only finish an apply under a lock
    /// it took.
    Grace,
}

/// A lock: (state path, lock ID).
type LockKey = (String, String);

/// The configured issuers, the verified-token cache, lock bindings and refusal counters.
#[derive(Default)]
pub struct Oidc {
    issuers: Vec<Issuer>,
    verified: Mutex<HashMap<[u8; 32], Arc<Identity>>>,
    /// (state path, lock ID) → the digest of the token that took the lock.
    bindings: Mutex<HashMap<LockKey, ([u8; 32], u64)>>,
    refusals: [AtomicU64; 7],
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    pub fn add(&mut self, issuer: Issuer) {
        self.issuers.push(issuer);
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    pub fn has(&self, name: &str) -> bool {
        self.issuers.iter().any(|i| i.name == name)
    }

    /// Counts a refusal for `/metrics`.
    pub fn count(&self, reason: RefusalReason) {
        let i = RefusalReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.refusals[i].fetch_add(1, Ordering::Relaxed);
    }

    /// JWKS fetches so far, per issuer name.
    pub fn fetches(&self) -> Vec<(String, u64)> {
        self.issuers
            .iter()
            .map(|i| {
                let set = i.keys.lock().unwrap_or_else(|p| p.into_inner());
                (i.name.clone(), set.fetches)
            })
            .collect()
    }

    /// The counters in Prometheus' text format.
    pub fn render_metrics(&self) -> String {
        let mut out = String::from("# HELP stateseal_oidc_refusals_total OIDC tokens refused, by reason.\n# TYPE stateseal_oidc_refusals_total counter\n");
        for (r, n) in RefusalReason::ALL.iter().zip(&self.refusals) {
            out.push_str(&format!(
                "stateseal_oidc_refusals_total{{reason=\"{}\"}} {}\n",
                r.label(),
                n.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP stateseal_oidc_key_fetches_total Fetches of an OIDC issuer's signing keys.\n# TYPE stateseal_oidc_key_fetches_total counter\n");
        for (name, n) in self.fetches() {
            out.push_str(&format!(
                "stateseal_oidc_key_fetches_total{{issuer=\"{}\"}} {n}\n",
                name.replace('\\', "\\\\").replace('"', "\\\"")
            ));
        }
        out
    }

    /// Verifies `token` (counting a refusal) and says whether it is still valid or in its
    /// lock grace.
    pub async fn verify(&self, token: &str) -> Result<(Arc<Identity>, Freshness), TokenError> {
        let outcome = self.verify_uncounted(token).await;
        if let Err(TokenError::Refused { reason, .. }) = &outcome {
            self.count(*reason);
        }
        outcome
    }

    async fn verify_uncounted(
        &self,
        token: &str,
    ) -> Result<(Arc<Identity>, Freshness), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refused(
                RefusalReason::Malformed,
                format!("the token is longer than {MAX_TOKEN_BYTES} bytes"),
            ));
        }
        let key = digest(token);
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let identity = match cached {
            Some(id) => id,
            None => {
                let id = Arc::new(self.verify_signed(token, key).await?);
                let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= MAX_CACHED {
                    let now = now_secs();
                    let grace = self.max_grace();
                    cache.retain(|_, i| i.exp.saturating_add(grace) > now);
                }
                if cache.len() < MAX_CACHED {
                    cache.insert(key, id.clone());
                }
                id
            }
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.name == identity.issuer)
            .ok_or_else(|| refused(RefusalReason::Issuer, "unknown issuer"))?;
        let now = now_secs();
        if now <= identity.exp.saturating_add(issuer.leeway) {
            Ok((identity, Freshness::Valid))
        } else if now <= identity.exp.saturating_add(issuer.lock_grace) {
            Ok((identity, Freshness::Grace))
        } else {
            Err(refused(RefusalReason::Expired, "the token has expired"))
        }
    }

    fn max_grace(&self) -> u64 {
        self.issuers
            .iter()
            .map(|i| i.lock_grace.max(i.leeway))
            .max()
            .unwrap_or(0)
    }

    /// The full check of a token not seen before (but `exp`, which the caller weighs).
    async fn verify_signed(
        &self,
        token: &str,
        token_digest: [u8; 32],
    ) -> Result<Identity, TokenError> {
        let malformed = |what: &str| refused(RefusalReason::Malformed, what.to_string());
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not a signed JWT (three dot-separated parts)"));
        };
        let header: Value = b64url(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| malformed("unreadable header"))?;
        let claims: Value = b64url(p)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(Value::is_object)
            .ok_or_else(|| malformed("unreadable claims"))?;
        let sig = b64url(s).ok_or_else(|| malformed("unreadable signature"))?;
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or_else(|| {
                refused(
                    RefusalReason::Issuer,
                    "the token's iss is no configured issuer",
                )
            })?;
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = Algorithm::parse(alg_name)
            .filter(|a| issuer.algorithms.contains(a))
            .ok_or_else(|| {
                refused(
                    RefusalReason::Algorithm,
                    format!(
                        "alg {:?} is not allowed for issuer {}",
                        alg_name.chars().take(16).collect::<String>(),
                        issuer.name
                    ),
                )
            })?;
        let kid = header.get("kid").and_then(Value::as_str);
        let jwk = match issuer.key(kid, alg) {
            Some(k) => k,
            None => {
                issuer.refresh().await?;
                issuer.key(kid, alg).ok_or_else(|| {
                    refused(
                        RefusalReason::Signature,
                        "the token's key (kid) is not one of the issuer's keys",
                    )
                })?
            }
        };
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        if !alg.verify(&jwk, signed, &sig) {
            return Err(refused(
                RefusalReason::Signature,
                "the signature does not verify",
            ));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => issuer.audiences.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| issuer.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !audience_ok {
            return Err(refused(
                RefusalReason::Audience,
                "no audience of the token is accepted here",
            ));
        }
        let time = |k: &str| claims.get(k).and_then(Value::as_u64);
        let now = now_secs();
        let exp = time("exp").ok_or_else(|| malformed("the token has no exp"))?;
        if time("nbf").is_some_and(|nbf| nbf > now.saturating_add(issuer.leeway)) {
            return Err(refused(
                RefusalReason::Expired,
                "the token is not valid yet (nbf)",
            ));
        }
        if time("iat").is_some_and(|iat| iat > now.saturating_add(issuer.leeway)) {
            return Err(refused(
                RefusalReason::Expired,
                "the token was issued in the future (iat)",
            ));
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let scalars = claims
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((k.clone(), s))
            })
            .collect();
        Ok(Identity {
            issuer: issuer.name.clone(),
            sub,
            claims: scalars,
            exp,
            token_digest,
        })
    }

    /// Records that `identity`'s token took the lock `id` on `path`.
    pub fn bind_lock(&self, identity: &Identity, path: &str, id: &str) {
        let grace = self.max_grace();
        let now = now_secs();
        let mut b = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        b.retain(|_, (_, exp)| exp.saturating_add(grace) > now);
        b.insert(
            (path.to_string(), id.to_string()),
            (identity.token_digest, identity.exp),
        );
    }

    /// Forgets the lock `id` on `path` (every lock on `path` for a force-unlock, `None`).
    pub fn unbind_lock(&self, path: &str, id: Option<&str>) {
        self.bindings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(p, i), _| p != path || id.is_some_and(|id| id != i));
    }

    /// True when `identity`'s token took the lock `id` on `path` (any lock on `path` when `id`
    /// is `None`).
    pub fn holds_lock(&self, identity: &Identity, path: &str, id: Option<&str>) -> bool {
        let b = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        match id {
            Some(id) => b
                .get(&(path.to_string(), id.to_string()))
                .is_some_and(|(d, _)| *d == identity.token_digest),
            None => b
                .iter()
                .any(|((p, _), (d, _))| p == path && *d == identity.token_digest),
        }
    }
}

/// `${claim}` in a grant path replaced by the identity's claim; `None` when a claim is missing
/// or its value could widen the path (empty, or with `/`, `*` or `..`).
pub fn substitute(pattern: &str, identity: &Identity) -> Option<String> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let value = identity.claims.get(&after[..end])?;
        if value.is_empty() || value.contains('/') || value.contains('*') || value.contains("..") {
            return None;
        }
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// True when a claim `value` matches a grant's `want`: exactly, or by prefix for a trailing `*`.
pub fn claim_matches(want: &str, value: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => want == value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(claims: &[(&str, &str)]) -> Identity {
        Identity {
            issuer: "github".into(),
            sub: "repo:acme/infra:ref:refs/heads/main".into(),
            claims: claims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            exp: 0,
            token_digest: [0; 32],
        }
    }

    #[test]
    fn substitution_cannot_widen_a_path() {
        let i = id(&[
            ("repository_id", "42"),
            ("repository", "acme/infra"),
            ("x", "a*"),
            ("y", ".."),
        ]);
        assert_eq!(
            substitute("${repository_id}/*", &i).as_deref(),
            Some("42/*")
        );
        assert_eq!(substitute("${repository}/*", &i), None);
        assert_eq!(substitute("${x}/*", &i), None);
        assert_eq!(substitute("${y}/*", &i), None);
        assert_eq!(substitute("${missing}/*", &i), None);
        assert_eq!(substitute("${unclosed/*", &i), None);
    }

    #[test]
    fn claim_globs_and_display() {
        assert!(claim_matches("refs/heads/*", "refs/heads/main"));
        assert!(!claim_matches("refs/heads/main", "refs/heads/main2"));
        let i = id(&[
            ("repository", "acme/infra"),
            ("ref", "refs/heads/main"),
            ("environment", "prod"),
        ]);
        assert_eq!(i.display(), "github: acme/infra@refs/heads/main (prod)");
    }

    #[test]
    fn none_and_hmac_are_no_algorithms() {
        for a in ["none", "HS256", "HS384", "HS512", "", "rs256"] {
            assert_eq!(Algorithm::parse(a), None, "{a}");
        }
    }
}
