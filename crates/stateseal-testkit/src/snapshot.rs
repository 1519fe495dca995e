//! Byte-for-byte snapshots of the JSON that scripts and CI gates read (`audit --json`,
//! `verify --json`, `rekey --json`, `locks list --json`, the server's `/v1/…` bodies), so that a
//! refactor cannot change a name, an order or the layout without a test failing.
//!
//! A snapshot is the output as printed, with only what differs between runs masked: the names
//! a test made unique (buckets, key ARNs, a lock holder's user@host: the caller passes them),
//! timestamps, UUIDs, durations, ETags and S3 version IDs. The rest — key order, spacing, numbers, words — must match the file in
//! the crate's `tests/snapshots/` exactly. Masking goes through `serde_json` with its
//! `preserve_order` feature, and first checks that re-printing the unmasked output reproduces
//! it byte for byte, so the layout itself is part of what is compared.
//!
//! `STATESEAL_UPDATE_SNAPSHOTS=1` rewrites the files (review the diff before committing them).
//! A missing file is written and the test fails, so a new snapshot is always looked at once.

use std::path::Path;

use serde_json::Value;

/// Rewrite the snapshot files instead of comparing.
pub const UPDATE_VAR: &str = "STATESEAL_UPDATE_SNAPSHOTS";

/// Keys whose numbers change from run to run (durations, ages), masked to 0.
const VOLATILE_NUMBERS: &[&str] = &[
    "age_seconds",
    "elapsed_ms",
    "duration_ms",
    "uptime_seconds",
    "seconds",
];

/// Keys whose strings change from run to run though they are neither a time nor a UUID.
const VOLATILE_STRINGS: &[&str] = &["version_id", "etag"];

/// Compares `output` with `dir/NAME.json` after masking (see the module comment). `replace`
/// lists `(unique value, stable placeholder)` pairs, applied to every string first.
pub fn assert_json_snapshot(dir: &Path, name: &str, output: &str, replace: &[(&str, &str)]) {
    let masked = masked(output, replace)
        .unwrap_or_else(|e| panic!("snapshot {name}: {e}\noutput:\n{output}"));
    let file = dir.join(format!("{name}.json"));
    let update = std::env::var_os(UPDATE_VAR).is_some();
    match std::fs::read_to_string(&file) {
        Ok(want) if !update => assert!(
            want == masked,
            "snapshot {name} differs from {}: a JSON shape changed (set {UPDATE_VAR}=1 to \
             rewrite it, if the change is intended)\n--- want\n{want}\n--- got\n{masked}",
            file.display()
        ),
        found => {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&file, &masked).unwrap();
            if found.is_err() && !update {
                panic!(
                    "snapshot {name}: no {} yet; written now, review and commit it",
                    file.display()
                );
            }
        }
    }
}

/// The output with its volatile parts masked, printed the way it was printed.
fn masked(output: &str, replace: &[(&str, &str)]) -> Result<String, String> {
    let body = output.trim_end_matches('\n');
    let trailing = &output[body.len()..];
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let pretty = body.contains('\n');
    let print = |v: &Value| {
        if pretty {
            serde_json::to_string_pretty(v).unwrap()
        } else {
            serde_json::to_string(v).unwrap()
        }
    };
    if print(&value) != body {
        return Err(format!(
            "re-printing the output does not reproduce it (pretty: {pretty}), so it cannot be \
             compared byte for byte"
        ));
    }
    let mut value = value;
    mask(&mut value, None, replace);
    Ok(format!("{}{trailing}", print(&value)))
}

fn mask(v: &mut Value, key: Option<&str>, replace: &[(&str, &str)]) {
    match v {
        Value::String(s) => {
            for (from, to) in replace {
                if !from.is_empty() {
                    *s = s.replace(from, to);
                }
            }
            if key.is_some_and(|k| VOLATILE_STRINGS.contains(&k)) && !s.is_empty() {
                *s = "<varies>".into();
            } else {
                *s = mask_words(s);
            }
        }
        Value::Number(_) if key.is_some_and(|k| VOLATILE_NUMBERS.contains(&k)) => {
            *v = Value::from(0);
        }
        Value::Array(items) => items.iter_mut().for_each(|i| mask(i, key, replace)),
        Value::Object(map) => map
            .iter_mut()
            .for_each(|(k, i)| mask(i, Some(k.as_str()), replace)),
        _ => {}
    }
}

/// Replaces every UUID and RFC 3339 timestamp inside a string (they also appear inside
/// sentences, such as a lock holder's description).
fn mask_words(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(n) = uuid_at(&b[i..]) {
            out.push_str("<uuid>");
            i += n;
        } else if let Some(n) = time_at(&b[i..]) {
            out.push_str("<time>");
            i += n;
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a UUID (8-4-4-4-12 hex) at the start of `b`.
fn uuid_at(b: &[u8]) -> Option<usize> {
    let groups = [8, 4, 4, 4, 12];
    let mut i = 0;
    for (n, len) in groups.iter().enumerate() {
        if b.len() < i + len || !b[i..i + len].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        i += len;
        if n < 4 {
            if b.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

/// The length of an RFC 3339 timestamp (`2026-12-04T18:04:40[.fraction](Z|±hh:mm)`) at the
/// start of `b`.
fn time_at(b: &[u8]) -> Option<usize> {
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() {
        return None;
    }
    for (c, s) in b.iter().zip(shape) {
        let fits = match s {
            b'd' => c.is_ascii_digit(),
            b'T' => *c == b'T' || *c == b' ',
            other => c == other,
        };
        if !fits {
            return None;
        }
    }
    let mut i = shape.len();
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    match b.get(i) {
        Some(b'Z') => i += 1,
        Some(b'+' | b'-') if b.len() >= i + 6 => i += 6,
        _ => {}
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_what_varies_and_keeps_order_and_layout() {
        let out = "{\"z\":\"lock 0b0e7c1a-58a4-4a8e-9f0e-1f2d3c4b5a69 at 2026-12-04T18:04:40.123Z\",\"a\":{\"age_seconds\":12,\"bucket\":\"s3://b-91\"}}\n";
        let got = masked(out, &[("b-91", "BUCKET")]).unwrap();
        assert_eq!(
            got,
            "{\"z\":\"lock <uuid> at <time>\",\"a\":{\"age_seconds\":0,\"bucket\":\"s3://BUCKET\"}}\n"
        );
    }

    #[test]
    fn a_layout_serde_would_not_print_is_refused() {
        assert!(masked("{ \"a\": 1 }", &[]).is_err());
        assert!(masked("{\n  \"a\": 1\n}", &[]).is_ok());
    }
}
