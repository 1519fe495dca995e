//! Stateless CSRF tokens for visitors who have not signed in (the sign-in form; every form on a
//! server without an `auth` block), so the server keeps nothing for them (issue 17, M3: a
//! flood of anonymous visits once filled the session table and expired real sign-in forms).
//!
//! The visitor gets a short-lived cookie ([`COOKIE`]: a random nonce and an expiry, `HttpOnly`,
//! `SameSite=Strict`, `Path=/ui`); the form carries `HMAC-SHA256(key, nonce, expiry)` with a
//! random key made when the process starts. A form is accepted when its token is that HMAC of
//! the cookie the same browser sends and the expiry has not passed: another site can neither
//! read the token nor set the cookie, and nothing is stored per visitor. A restart makes open
//! forms invalid (they are reloaded); a visit with a cookie that has more than
//! [`REUSE_MARGIN`] left keeps it, so several open tabs stay valid.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use ring::hmac;

/// The cookie's name.
pub const COOKIE: &str = "stateseal_form";
/// How long a form stays valid.
pub const TTL: Duration = Duration::from_secs(3600);
/// A cookie with less than this left is replaced by a new one on the next visit.
pub const REUSE_MARGIN: Duration = Duration::from_secs(15 * 60);

/// The per-process key.
pub struct FormKey(hmac::Key);

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey")
    }
}

impl Default for FormKey {
    fn default() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system has randomness");
        FormKey(key)
    }
}

/// What a visitor's forms carry, and the cookie to set when the visit started a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub csrf: String,
    /// The cookie's value, when the visitor has to be sent one.
    pub new_cookie: Option<String>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The nonce and expiry of the visitor's cookie, when it has a well-formed one.
pub fn cookie(headers: &HeaderMap) -> Option<(String, u64)> {
    super::session::cookie_values(headers, COOKIE).find_map(|v| {
        let (nonce, expires) = v.split_once('.')?;
        let well_formed = nonce.len() == 64 && nonce.bytes().all(|b| b.is_ascii_hexdigit());
        let expires = expires.parse::<u64>().ok()?;
        well_formed.then(|| (nonce.to_ascii_lowercase(), expires))
    })
}

impl FormKey {
    fn token(&self, nonce: &str, expires: u64) -> String {
        let message = format!("stateseal form\0{nonce}\0{expires}");
        let tag = hmac::sign(&self.0, message.as_bytes());
        stateseal_core::hex::encode(tag.as_ref())
    }

    /// The token for the visitor's forms: from its cookie when that is still good for
    /// [`REUSE_MARGIN`], else from a new cookie.
    pub fn issue(&self, headers: &HeaderMap) -> Issued {
        let now = now_secs();
        if let Some((nonce, expires)) = cookie(headers) {
            if expires > now.saturating_add(REUSE_MARGIN.as_secs())
                && expires <= now.saturating_add(TTL.as_secs())
            {
                return Issued {
                    csrf: self.token(&nonce, expires),
                    new_cookie: None,
                };
            }
        }
        let nonce = super::session::random_token();
        let expires = now.saturating_add(TTL.as_secs());
        Issued {
            csrf: self.token(&nonce, expires),
            new_cookie: Some(format!("{nonce}.{expires}")),
        }
    }

    /// The token of the visitor's cookie, while it has not expired: what a form must carry.
    pub fn current(&self, headers: &HeaderMap) -> Option<String> {
        let (nonce, expires) = cookie(headers)?;
        (expires > now_secs()).then(|| self.token(&nonce, expires))
    }

    /// True when `sent` is the token of the visitor's cookie and the cookie has not expired.
    pub fn check(&self, headers: &HeaderMap, sent: &str) -> bool {
        self.current(headers)
            .is_some_and(|want| super::session::same_token(sent, &want))
    }
}

/// The `Set-Cookie` value for a form cookie.
pub fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        TTL.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={value}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_token_is_good_with_its_cookie_and_this_key_only() {
        let key = FormKey::default();
        let first = key.issue(&HeaderMap::new());
        let cookie = first
            .new_cookie
            .clone()
            .expect("a new visitor gets a cookie");
        let h = with_cookie(&cookie);
        assert!(key.check(&h, &first.csrf));
        // A later visit keeps the cookie and the token.
        assert_eq!(
            key.issue(&h),
            Issued {
                csrf: first.csrf.clone(),
                new_cookie: None
            }
        );
        assert!(!key.check(&HeaderMap::new(), &first.csrf), "no cookie");
        assert!(!key.check(&h, ""), "no token");
        assert!(
            !FormKey::default().check(&h, &first.csrf),
            "another process's key"
        );
        let other = key.issue(&HeaderMap::new());
        assert!(!key.check(&h, &other.csrf), "another visitor's token");
    }

    #[test]
    fn fail_expired_or_forged_cookies_are_refused() {
        let key = FormKey::default();
        let nonce = "a".repeat(64);
        let past = now_secs() - 1;
        let h = with_cookie(&format!("{nonce}.{past}"));
        assert!(!key.check(&h, &key.token(&nonce, past)), "expired");
        // A cookie whose expiry was moved no longer matches its token.
        let future = now_secs() + 600;
        let h = with_cookie(&format!("{nonce}.{}", future + 1));
        assert!(!key.check(&h, &key.token(&nonce, future)));
        for bad in ["", ".", "x.1", &format!("{nonce}.x"), &nonce] {
            assert_eq!(cookie(&with_cookie(bad)), None, "{bad:?}");
        }
    }
}
