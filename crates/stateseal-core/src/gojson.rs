//! Byte-exact reproduction of Go's `encoding/json` output for the few shapes that OpenTofu and
//! Terraform write and that other tools compare byte for byte (the encryption envelope, lock info).
//!
//! Go escapes strings "HTML-safe": `<`, `>` and `&` become `\u003c`, `\u003e`, `\u0026`, and
//! U+2028/U+2029 are escaped too. Control characters use the short forms `\b \f \n \r \t` (Go 1.22+)
//! and `\u00XX` otherwise. Everything else, including non-ASCII, is written raw as UTF-8.

use std::fmt::Write as _;

/// Appends `s` as a Go-encoded JSON string literal (with the surrounding quotes) to `out`.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Returns `s` as a Go-encoded JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

/// Appends `v` as Go's `json.Marshal` writes a value decoded into `interface{}`: object keys
/// sorted bytewise, strings HTML-safe, every number a float64 (shortest form, exponent form
/// outside 1e-6 ≤ |x| < 1e21).
pub fn write_value(out: &mut String, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_float(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, x);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, &o[k]);
            }
            out.push('}');
        }
    }
}

fn write_float(out: &mut String, f: f64) {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        let _ = write!(out, "{f}");
    } else {
        // Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-7`.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => {
                let _ = write!(out, "{m}e+{e}");
            }
            _ => out.push_str(&s),
        }
    }
}

/// Go's `[]byte` in JSON, for serde: standard padded base64; `null` or absent is empty.
/// Use with `#[serde(with = "crate::gojson::bytes")]`.
pub mod bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(deserialize_option(d)?.unwrap_or_default())
    }

    /// Keeps `null` apart from an empty string.
    pub fn deserialize_option<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::go_base64_decode(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_like_go_interface_values() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"z":[1,2.5,1e21,0.0000001,-3],"a":{"y":null,"b":true},"m":"<x>"}"#,
        )
        .unwrap();
        let mut out = String::new();
        write_value(&mut out, &v);
        assert_eq!(
            out,
            r#"{"a":{"b":true,"y":null},"m":"\u003cx\u003e","z":[1,2.5,1e+21,1e-7,-3]}"#
        );
    }

    #[test]
    fn html_safe_escaping_matches_go() {
        assert_eq!(string("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(string("\u{2028}\u{2029}"), r#""\u2028\u2029""#);
        assert_eq!(string("q\"\\/"), r#""q\"\\/""#);
    }

    #[test]
    fn control_characters_use_go_1_22_forms() {
        assert_eq!(
            string("\u{8}\u{c}\n\r\t\u{1}\u{1f}"),
            r#""\b\f\n\r\t\u0001\u001f""#
        );
    }

    #[test]
    fn non_ascii_is_raw_utf8() {
        assert_eq!(string("žluťoučký 🦀"), "\"žluťoučký 🦀\"");
    }
}

/// Which of `fields` a JSON key fills, by Go's rule: an exact match first, then a
/// case-insensitive one.
pub fn field_index(fields: &[&str], key: &str) -> Option<usize> {
    fields
        .iter()
        .position(|f| *f == key)
        .or_else(|| fields.iter().position(|f| go_equal_fold(f, key)))
}

/// Go's `strings.EqualFold` restricted to what matters for ASCII field names (Go also folds the
/// Kelvin sign and long s onto `k` and `s`).
fn go_equal_fold(field: &str, key: &str) -> bool {
    let mut kc = key.chars();
    for f in field.chars() {
        let Some(c) = kc.next() else { return false };
        let c = match c {
            '\u{212A}' => 'k',
            '\u{17F}' => 's',
            c => c.to_ascii_lowercase(),
        };
        if c != f {
            return false;
        }
    }
    kc.next().is_none()
}

/// Base64 that Go's `encoding/json` would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal base64 data: {0}")]
pub struct Base64Error(#[from] base64::DecodeError);

/// Go's `base64.StdEncoding.DecodeString` as used by `encoding/json` for `[]byte`: padding is
/// required, and `\r` and `\n` are skipped.
pub fn go_base64_decode(s: &str) -> Result<Vec<u8>, Base64Error> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let decoded = if s.bytes().any(|b| b == b'\r' || b == b'\n') {
        let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        engine.decode(cleaned)
    } else {
        engine.decode(s)
    };
    Ok(decoded?)
}
