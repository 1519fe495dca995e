//! The `<path>` of `/state/<path>`: validated once, from the raw request path, so that every
//! later step (storage, logs, metrics) sees one canonical, safe name.
//!
//! A path is one or more `/`-separated segments. Each segment is percent-decoded on its own
//! (so `%2F` can't smuggle a separator); `.`, `..`, empty segments (`a//b`, a trailing `/`),
//! control characters and oversized names are refused. A final segment `lock` addresses the
//! state's lock (`POST`/`DELETE /state/<path>/lock`), so no state may end in `lock`.

use std::fmt;

/// Longest accepted path, decoded, in bytes.
pub const MAX_PATH_BYTES: usize = 512;
/// Longest accepted segment, decoded, in bytes (percent-encoded on disk it stays under the
/// file-name limit of 255 bytes).
pub const MAX_SEGMENT_BYTES: usize = 80;
/// The reserved last segment that addresses a state's lock.
pub const LOCK_SEGMENT: &str = "lock";

/// A validated state path (`team-a/prod/network`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatePath(String);

/// What a request URL addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    State(StatePath),
    Lock(StatePath),
}

/// Why a path was refused (answered with 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid state path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: String,
}

impl StatePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Parses a path given without the `/state/` prefix, as a state name (the lock suffix is
    /// not special here: use [`Resource::parse`] for request paths).
    pub fn parse(raw: &str) -> Result<StatePath, PathError> {
        let bad = |reason: &str| PathError {
            path: raw.chars().take(100).collect(),
            reason: reason.to_string(),
        };
        if raw.is_empty() {
            return Err(bad("it is empty; states live at /state/<name>"));
        }
        if raw.len() > MAX_PATH_BYTES * 3 {
            return Err(bad("it is too long"));
        }
        let mut out = String::with_capacity(raw.len());
        for (i, seg) in raw.split('/').enumerate() {
            let seg = percent_decode(seg).ok_or_else(|| {
                bad("it has an invalid percent-escape or is not UTF-8 once decoded")
            })?;
            match seg.as_str() {
                "" => return Err(bad("it has an empty segment (// or a trailing /)")),
                "." | ".." => return Err(bad("\".\" and \"..\" segments are not allowed")),
                _ => {}
            }
            if seg.contains('/') {
                return Err(bad("a segment contains an encoded /"));
            }
            if seg.chars().any(char::is_control) {
                return Err(bad("it contains control characters"));
            }
            if seg.len() > MAX_SEGMENT_BYTES {
                return Err(bad(&format!(
                    "a segment is longer than {MAX_SEGMENT_BYTES} bytes"
                )));
            }
            if i > 0 {
                out.push('/');
            }
            out.push_str(&seg);
        }
        if out.len() > MAX_PATH_BYTES {
            return Err(bad(&format!("it is longer than {MAX_PATH_BYTES} bytes")));
        }
        Ok(StatePath(out))
    }

    /// Each segment percent-encoded with only `A-Za-z0-9-_.~` left as is: a file-system-safe
    /// relative path with one directory per segment.
    pub fn encoded_segments(&self) -> impl Iterator<Item = String> + '_ {
        self.segments().map(percent_encode)
    }
}

/// `s` percent-encoded with only `A-Za-z0-9-_.~` left as is (safe in a file name, a URL path
/// segment, a query value and an HTTP header).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for StatePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Resource {
    /// Parses the part of a request path after `/state/`.
    /// The last segment is compared once percent-decoded, so `%6Cock` is `lock` too.
    pub fn parse(raw: &str) -> Result<Resource, PathError> {
        let (state, last) = match raw.rsplit_once('/') {
            Some((state, last)) => (Some(state), last),
            None => (None, raw),
        };
        let is_lock = percent_decode(last).as_deref() == Some(LOCK_SEGMENT);
        match state {
            Some(state) if is_lock => Ok(Resource::Lock(StatePath::parse(state)?)),
            None if is_lock => Err(PathError {
                path: raw.chars().take(100).collect(),
                reason: "\"lock\" names a state's lock (/state/<path>/lock), not a state".into(),
            }),
            _ => Ok(Resource::State(StatePath::parse(raw)?)),
        }
    }
}

/// Decodes `%XX` escapes (no `+` rule: this is a path). `None` for a bad escape or non-UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `name` in a URL query (`a=1&ID=x`), form-decoded (`+` is a space, as Go's
/// `url.Values.Encode` writes it).
pub fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(&v.replace('+', " ")).unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_names() {
        let p = StatePath::parse("team-a/prod/net%20work").unwrap();
        assert_eq!(p.as_str(), "team-a/prod/net work");
        assert_eq!(
            p.encoded_segments().collect::<Vec<_>>(),
            ["team-a", "prod", "net%20work"]
        );
        assert_eq!(
            Resource::parse("a/b/lock").unwrap(),
            Resource::Lock(StatePath::parse("a/b").unwrap())
        );
        // The reserved segment is recognized once decoded: never a state named …/lock.
        assert_eq!(
            Resource::parse("a/b/%6Cock").unwrap(),
            Resource::Lock(StatePath::parse("a/b").unwrap())
        );
        assert_eq!(
            StatePath::parse("@x").unwrap().encoded_segments().next(),
            Some("%40x".into())
        );
    }

    #[test]
    fn fail_refuses_unsafe_names() {
        let long_segment = "x".repeat(MAX_SEGMENT_BYTES + 1);
        let long_path = vec!["abcdefgh"; 60].join("/");
        for bad in [
            "",
            "a//b",
            "a/",
            "/a",
            "..",
            "a/../b",
            "a/./b",
            "a%2Fb",
            "a%00",
            "a\tb",
            "%zz",
            "%ff",
            "lock",
            "%6Cock",
            "%6c%6F%63%6b",
            long_segment.as_str(),
            long_path.as_str(),
        ] {
            assert!(Resource::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn query_id() {
        assert_eq!(
            query_value(Some("a=1&ID=x%2By+z"), "ID").as_deref(),
            Some("x+y z")
        );
        assert_eq!(query_value(Some("id=1"), "ID"), None);
        assert_eq!(query_value(None, "ID"), None);
    }
}
