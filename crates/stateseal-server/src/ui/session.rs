//! The console's sign-in sessions and CSRF tokens, kept in memory (a restart signs everyone
//! out).
//!
//! A session is a random 256-bit id in a cookie (`HttpOnly`, `SameSite=Strict`, `Secure` under
//! TLS, `Path=/ui`); the server keeps only its SHA-256, so a memory dump or a log line never
//! holds a usable cookie. Each session has its own CSRF token, a second random value that every
//! state-changing form carries and that is compared in constant time. Only signing in starts a
//! session (a visitor who has not signed in gets a stateless form token instead, see
//! [`super::form_token`]), and it replaces any session the browser had (a fixed id can't be
//! planted before sign-in).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use ring::rand::SecureRandom as _;

/// The cookie's name.
pub const COOKIE: &str = "stateseal_session";
/// How long a signed-in session lasts.
pub const SIGNED_IN_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions are kept; beyond it the one closest to expiry goes.
pub const MAX_SESSIONS: usize = 10_000;

/// One session.
#[derive(Clone)]
pub struct Session {
    /// The signed-in user.
    pub user: Option<String>,
    pub csrf: String,
    expires: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("user", &self.user).finish()
    }
}

/// The sessions of one server.
#[derive(Default)]
pub struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

fn digest(id: &str) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, id.as_bytes())
        .as_ref()
        .try_into()
        .expect("32 bytes")
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system has randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Equal, in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The values of every cookie named `name` the request carries, in order.
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The session id the request's cookie carries.
pub fn cookie_id(headers: &HeaderMap) -> Option<String> {
    cookie_values(headers, COOKIE)
        .find(|v| !v.is_empty())
        .map(str::to_string)
}

/// The `Set-Cookie` value for a session id (`None`: clear the cookie).
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!("{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

impl Sessions {
    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        let key = digest(id);
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Starts a session; returns its id (for the cookie) and the session.
    pub fn start(&self, user: Option<String>) -> (String, Session) {
        let id = random_token();
        let session = Session {
            user,
            csrf: random_token(),
            expires: Instant::now() + SIGNED_IN_TTL,
        };
        let mut map = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(k) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&k);
            }
        }
        map.insert(digest(&id), session.clone());
        (id, session)
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.by_digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends a session (sign-out, or its replacement at sign-in).
    pub fn end(&self, id: &str) {
        self.by_digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_get_end() {
        let s = Sessions::default();
        let (id, session) = s.start(Some("alice".into()));
        assert_eq!(s.get(&id).unwrap().user.as_deref(), Some("alice"));
        assert_eq!(s.get(&id).unwrap().csrf, session.csrf);
        assert!(s.get("not-a-session").is_none());
        s.end(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=b; stateseal_session=xyz".parse().unwrap(),
        );
        assert_eq!(cookie_id(&h).as_deref(), Some("xyz"));
        assert!(set_cookie(Some("x"), true).ends_with("SameSite=Strict; Secure"));
        assert!(set_cookie(Some("x"), false).contains("HttpOnly"));
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("a", "ab"));
    }
}
