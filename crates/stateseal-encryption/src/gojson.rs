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

#[cfg(test)]
mod tests {
    use super::*;

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
