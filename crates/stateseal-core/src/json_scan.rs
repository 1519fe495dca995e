//! A fast scanner for the top level of a JSON object: it returns each member's key and the raw
//! bytes of its value, skipping over strings with `memchr` instead of decoding them. Envelopes and
//! states carry one huge string (the ciphertext, or a big output); a full JSON parser spends most
//! of its time walking it byte by byte.
//!
//! Small values are validated with `serde_json`; values larger than [`VALIDATE_LIMIT`] are only
//! checked structurally (strings terminate, brackets balance, no raw control characters in strings).

use std::borrow::Cow;

/// Values up to this size are fully validated with serde_json.
pub const VALIDATE_LIMIT: usize = 64 * 1024;

/// Why the input is not a JSON object, and where.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The structure is broken: `what` was expected or found at byte `at`.
    #[error("{what} at byte {at}")]
    Syntax { what: &'static str, at: usize },
    /// A string or a small value that `serde_json` refuses; `message` is its words.
    #[error("invalid JSON value at byte {at}: {message}")]
    Invalid { at: usize, message: String },
}

/// A top-level member: its (unescaped) key and the raw bytes of its value.
pub type Member<'a> = (Cow<'a, str>, &'a [u8]);

/// The members of a top-level JSON object, in input order.
pub fn object_members(input: &[u8]) -> Result<Vec<Member<'_>>, ScanError> {
    let mut s = Scanner { b: input, i: 0 };
    s.ws();
    if s.peek() != Some(b'{') {
        return Err(s.err("expected a JSON object"));
    }
    s.i += 1;
    let mut out = Vec::new();
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.ws();
            let key_raw = s.string()?;
            let key = decode_string(key_raw)
                .map_err(|message| ScanError::Invalid { at: s.i, message })?;
            s.ws();
            if s.peek() != Some(b':') {
                return Err(s.err("expected ':'"));
            }
            s.i += 1;
            s.ws();
            let value = s.value()?;
            out.push((key, value));
            s.ws();
            match s.peek() {
                Some(b',') => s.i += 1,
                Some(b'}') => {
                    s.i += 1;
                    break;
                }
                _ => return Err(s.err("expected ',' or '}'")),
            }
        }
    }
    s.ws();
    if s.i != input.len() {
        return Err(s.err("trailing characters after the JSON object"));
    }
    Ok(out)
}

/// Decodes a raw JSON string token (with its quotes). Strings without escapes are borrowed.
fn decode_string(raw: &[u8]) -> Result<Cow<'_, str>, String> {
    let inner = &raw[1..raw.len() - 1];
    if memchr::memchr(b'\\', inner).is_none() {
        return std::str::from_utf8(inner)
            .map(Cow::Borrowed)
            .map_err(|e| e.to_string());
    }
    serde_json::from_slice::<String>(raw)
        .map(Cow::Owned)
        .map_err(|e| e.to_string())
}

/// Does `b` contain a byte below 0x20 (not allowed raw in a JSON string)? Eight bytes at a time.
fn has_control_byte(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        // a byte < 0x20 has a borrow out of bit 7 when 0x20 is subtracted, unless it is >= 0x80
        if (x.wrapping_sub(ONES * 0x20) & !x & HIGH) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|c| *c < 0x20)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn err(&self, what: &'static str) -> ScanError {
        ScanError::Syntax { what, at: self.i }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string token, quotes included. Checks that no raw control character appears in it.
    fn string(&mut self) -> Result<&'a [u8], ScanError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string"));
        }
        let start = self.i;
        let mut j = self.i + 1;
        loop {
            let Some(k) = memchr::memchr2(b'"', b'\\', &self.b[j..]) else {
                self.i = self.b.len();
                return Err(self.err("unterminated string"));
            };
            if has_control_byte(&self.b[j..j + k]) {
                self.i = j;
                return Err(self.err("control character in a string"));
            }
            j += k;
            if self.b[j] == b'\\' {
                j += 2;
                if j > self.b.len() {
                    self.i = self.b.len();
                    return Err(self.err("unterminated string"));
                }
                continue;
            }
            self.i = j + 1;
            return Ok(&self.b[start..self.i]);
        }
    }

    /// Any value; returns its raw bytes.
    fn value(&mut self) -> Result<&'a [u8], ScanError> {
        let start = self.i;
        match self.peek() {
            Some(b'"') => {
                self.string()?;
            }
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        None => return Err(self.err("unterminated object or array")),
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            Some(_) => {
                while matches!(self.peek(), Some(c) if !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.err("expected a value"));
                }
            }
            None => return Err(self.err("expected a value")),
        }
        let raw = &self.b[start..self.i];
        if raw.len() <= VALIDATE_LIMIT && raw[0] != b'"' {
            serde_json::from_slice::<serde::de::IgnoredAny>(raw).map_err(|e| {
                ScanError::Invalid {
                    at: start,
                    message: e.to_string(),
                }
            })?;
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_in_order_with_raw_values() {
        let m = object_members(
            br#" {"a": 1, "b\u0021": {"x": ["}", "\""]}, "c": "s\"t" , "d": null} "#,
        )
        .unwrap();
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["a", "b!", "c", "d"]);
        assert_eq!(m[1].1, br#"{"x": ["}", "\""]}"#);
        assert_eq!(decode_string(m[2].1).unwrap(), "s\"t");
        assert_eq!(object_members(b"{}").unwrap().len(), 0);
    }

    #[test]
    fn control_bytes_are_found_anywhere() {
        for len in 0..40 {
            for pos in 0..len {
                for bad in [0u8, 0x0a, 0x1f] {
                    let mut v = vec![b'a'; len];
                    v[pos] = bad;
                    assert!(has_control_byte(&v), "{len} {pos} {bad}");
                }
            }
            let ok: Vec<u8> = (0..len)
                .map(|i| [0x20u8, 0x7f, 0x80, 0xff, b'z'][i % 5])
                .collect();
            assert!(!has_control_byte(&ok), "{len}");
        }
    }

    #[test]
    fn rejects_what_json_rejects() {
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"{\"a\"}",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{\"a\":tru}",
            b"{\"a\":\"x\ny\"}",
            b"{\"a\":1} x",
            b"{\"a\":\"\\",
            b"{\"a\":[1,}",
        ] {
            assert!(
                object_members(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
