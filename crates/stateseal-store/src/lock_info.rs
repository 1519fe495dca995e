//! `statemgr.LockInfo`: the lock holder record shared by OpenTofu, Terraform and stateseal
//! (DynamoDB `Info` attribute, `.tflock` body, `.terraform.tfstate.lock.info`).
//!
//! The bytes must be exactly what Go's `encoding/json` writes for the struct: OpenTofu releases a
//! DynamoDB lock with a condition on its *re-marshalled* copy of the holder, so any difference
//! (key order, spacing, `+00:00` instead of `Z`, `.120` instead of `.12`, unescaped `<>&`) leaves
//! a lock that OpenTofu can never remove (docs/BACKENDS.md §2, §7.1).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use stateseal_core::gojson;

/// A lock holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// UUID-shaped, but opaque: compare as a string, never validate as RFC 4122.
    pub id: String,
    /// `OperationTypeApply`, `state-push`, `init`, … or free text.
    pub operation: String,
    pub info: String,
    /// `user@host`.
    pub who: String,
    pub version: String,
    pub created: GoTime,
    /// s3: `bucket/key`; local: the state path; http: empty.
    pub path: String,
}

/// The shape Go accepts when it unmarshals a `LockInfo` (missing keys are zero values).
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Operation", default)]
    operation: String,
    #[serde(rename = "Info", default)]
    info: String,
    #[serde(rename = "Who", default)]
    who: String,
    #[serde(rename = "Version", default)]
    version: String,
    #[serde(rename = "Created", default)]
    created: Option<String>,
    #[serde(rename = "Path", default)]
    path: String,
}

/// Why lock info bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lock info: {0}")]
pub struct ParseError(pub String);

/// The start of the `Version` field of every lock record stateseal writes.
const VERSION_PREFIX: &str = "stateseal-";

impl LockInfo {
    /// A new holder record for `operation`: fresh ID, `user@host`, now (UTC).
    pub fn new(operation: impl Into<String>) -> LockInfo {
        LockInfo {
            id: new_lock_id(),
            operation: operation.into(),
            info: String::new(),
            who: who(),
            version: format!("{VERSION_PREFIX}{}", env!("CARGO_PKG_VERSION")),
            created: GoTime::now(),
            path: String::new(),
        }
    }

    /// Was this record written by stateseal (a `stateseal lock`, a push, a server), rather than
    /// by Terraform or OpenTofu? Told by the `Version` field stateseal fills in.
    pub fn written_by_stateseal(&self) -> bool {
        self.version.starts_with(VERSION_PREFIX)
    }

    /// Parses lock info the way Go's `json.Unmarshal` does (unknown keys ignored).
    pub fn parse(bytes: &[u8]) -> Result<LockInfo, ParseError> {
        if bytes.is_empty() {
            return Err(ParseError("unexpected end of JSON input".into()));
        }
        let w: Wire = serde_json::from_slice(bytes).map_err(|e| ParseError(e.to_string()))?;
        let created = match w.created.as_deref() {
            None => GoTime::ZERO,
            Some(s) => GoTime::parse_rfc3339(s)
                .ok_or_else(|| ParseError(format!("Created {s:?} is not an RFC 3339 time")))?,
        };
        Ok(LockInfo {
            id: w.id,
            operation: w.operation,
            info: w.info,
            who: w.who,
            version: w.version,
            created,
            path: w.path,
        })
    }

    /// Go's `json.Marshal(info)`: compact, fixed key order, HTML-safe escaping.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(192);
        let fields: [(&str, &str); 5] = [
            ("ID", &self.id),
            ("Operation", &self.operation),
            ("Info", &self.info),
            ("Who", &self.who),
            ("Version", &self.version),
        ];
        out.push('{');
        for (name, value) in fields {
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            gojson::write_string(&mut out, value);
            out.push(',');
        }
        out.push_str("\"Created\":\"");
        out.push_str(&self.created.rfc3339_nano());
        out.push_str("\",\"Path\":");
        gojson::write_string(&mut out, &self.path);
        out.push('}');
        out
    }

    /// The `Lock Info:` block Terraform and OpenTofu print under "Error acquiring the state lock".
    pub fn display_block(&self) -> String {
        format!(
            "Lock Info:\n  ID:        {}\n  Path:      {}\n  Operation: {}\n  Who:       {}\n  Version:   {}\n  Created:   {}\n  Info:      {}\n",
            self.id,
            self.path,
            self.operation,
            self.who,
            self.version,
            self.created.go_string(),
            self.info
        )
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_block())
    }
}

/// 16 random bytes as `8-4-4-4-12` lowercase hex, without RFC 4122 version bits (like OpenTofu).
pub fn new_lock_id() -> String {
    stateseal_core::state::random_uuid()
}

/// `user@host`, as Go's `os/user.Current().Username` and `os.Hostname()` give them.
pub fn who() -> String {
    let uid = rustix::process::getuid().as_raw();
    let user = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let _ = f.next();
                (f.next()? == uid.to_string()).then(|| name.to_string())
            })
        })
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{user}@{host}")
}

/// A Go `time.Time` as far as JSON round trips need it: an instant plus the UTC offset it was
/// written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoTime {
    /// Seconds since 0001-01-01T00:00:00Z would overflow nothing, but Unix seconds are simpler;
    /// negative for dates before 1970 (Go's zero time is year 1).
    pub unix: i64,
    pub nanos: u32,
    /// Offset from UTC in seconds (0 marshals as `Z`).
    pub offset: i32,
}

impl GoTime {
    /// Go's zero `time.Time`, `0001-01-01T00:00:00Z`.
    pub const ZERO: GoTime = GoTime {
        unix: -62_135_596_800,
        nanos: 0,
        offset: 0,
    };

    pub fn now() -> GoTime {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        GoTime {
            unix: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
            offset: 0,
        }
    }

    /// Parses RFC 3339 as Go's `time.Time.UnmarshalJSON` does (fraction of any length up to 9
    /// digits, `Z` or `±hh:mm`).
    pub fn parse_rfc3339(s: &str) -> Option<GoTime> {
        let b = s.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = b.get(r)?;
            if part.iter().all(u8::is_ascii_digit) {
                std::str::from_utf8(part).ok()?.parse().ok()
            } else {
                None
            }
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || min > 59 || sec > 59 {
            return None;
        }
        let mut i = 19;
        let mut nanos = 0u32;
        if b[i] == b'.' {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[start..i];
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            nanos = format!("{digits:0<9}").parse().ok()?;
        }
        let offset = match &b[i..] {
            [b'Z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let h = num(i + 1..i + 3)?;
                let m = num(i + 4..i + 6)?;
                let _ = (h1, h2, m1, m2);
                if h > 23 || m > 59 {
                    return None;
                }
                let o = (h * 3600 + m * 60) as i32;
                if *sign == b'-' {
                    -o
                } else {
                    o
                }
            }
            _ => return None,
        };
        let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
        Some(GoTime {
            unix: local - offset as i64,
            nanos,
            offset,
        })
    }

    fn local_parts(&self) -> (i64, i64, i64, i64, i64, i64) {
        let local = self.unix + self.offset as i64;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
    }

    fn fraction(&self) -> String {
        if self.nanos == 0 {
            return String::new();
        }
        let f = format!(".{:09}", self.nanos);
        f.trim_end_matches('0').to_string()
    }

    /// Go's `time.RFC3339Nano` (what `MarshalJSON` writes): trailing zeros trimmed, `Z` for a
    /// zero offset.
    pub fn rfc3339_nano(&self) -> String {
        let (y, mo, d, h, mi, s) = self.local_parts();
        let zone = if self.offset == 0 {
            "Z".to_string()
        } else {
            let o = self.offset.abs();
            let sign = if self.offset < 0 { '-' } else { '+' };
            format!("{sign}{:02}:{:02}", o / 3600, o / 60 % 60)
        };
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}{zone}",
            self.fraction()
        )
    }

    /// Go's `time.Time.String()` layout, as Terraform prints `Created:` in lock errors
    /// (`2025-07-01 12:34:56.12 +0000 UTC`).
    pub fn go_string(&self) -> String {
        let (y, mo, d, h, mi, s) = self.local_parts();
        let o = self.offset.abs();
        let sign = if self.offset < 0 { '-' } else { '+' };
        let numeric = format!("{sign}{:02}{:02}", o / 3600, o / 60 % 60);
        let name = if self.offset == 0 { "UTC" } else { &numeric };
        format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{} {numeric} {name}",
            self.fraction()
        )
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str = include_str!("../testdata/lockinfo/golden.txt");

    /// Each golden case: an input JSON line, then the bytes Go's `json.Marshal` produces after
    /// `json.Unmarshal` of it, then the `Created` line Go's `time.Time.String()` prints.
    #[test]
    fn reproduces_go_marshal_bytes() {
        let lines: Vec<&str> = GOLDEN
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert!(lines.len() >= 9, "golden cases present");
        for case in lines.chunks(3) {
            let info = LockInfo::parse(case[0].strip_prefix("in:  ").unwrap().as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e}", case[0]));
            assert_eq!(
                info.to_json(),
                case[1].strip_prefix("out: ").unwrap(),
                "{}",
                case[0]
            );
            assert_eq!(
                info.created.go_string(),
                case[2].strip_prefix("str: ").unwrap()
            );
        }
    }

    /// Bytes real Terraform 1.15.5 (Go `json.Marshal`) stored while holding an S3 backend lock,
    /// captured by `tests/store.rs` with `STATESEAL_CAPTURE_LOCKINFO=DIR`.
    #[test]
    fn terraform_written_lock_info_round_trips_byte_for_byte() {
        for raw in [
            &include_bytes!("../testdata/lockinfo/terraform-1.15.5-dynamodb-info.json")[..],
            &include_bytes!("../testdata/lockinfo/terraform-1.15.5-tflock.json")[..],
        ] {
            let info = LockInfo::parse(raw).unwrap();
            assert_eq!(info.to_json().as_bytes(), raw);
            assert_eq!(info.operation, "OperationTypeApply");
            assert!(info.path.ends_with("/app/terraform.tfstate"));
        }
    }

    #[test]
    fn fail_cases_are_rejected() {
        for bad in [
            "",
            "not json",
            r#"{"Created":"2025-07-01 12:34:56Z"}"#,
            r#"{"Created":"2025-02-30T00:00:00Z"}"#,
            r#"{"Created":"2025-07-01T12:34:56.1234567891Z"}"#,
            r#"{"ID": 5}"#,
        ] {
            assert!(LockInfo::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_ids_are_uuid_shaped_and_distinct() {
        let a = new_lock_id();
        assert_eq!(a.len(), 36);
        assert_eq!(
            a.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_ne!(a, new_lock_id());
    }

    #[test]
    fn new_info_round_trips() {
        let mut i = LockInfo::new("state-push");
        i.path = "b/env:/dev/<k>&".into();
        let again = LockInfo::parse(i.to_json().as_bytes()).unwrap();
        assert_eq!(again, i);
        assert!(i
            .to_json()
            .contains(r#""Path":"b/env:/dev/\u003ck\u003e\u0026"}"#));
        assert!(i.who.contains('@'));
    }

    #[test]
    fn display_block_matches_terraform_layout() {
        let i = LockInfo::parse(br#"{"ID":"x","Operation":"OperationTypeApply","Info":"","Who":"a@b","Version":"1.15.5","Created":"2025-07-01T12:34:56.12Z","Path":"b/k"}"#).unwrap();
        assert_eq!(
            i.display_block(),
            "Lock Info:\n  ID:        x\n  Path:      b/k\n  Operation: OperationTypeApply\n  Who:       a@b\n  Version:   1.15.5\n  Created:   2025-07-01 12:34:56.12 +0000 UTC\n  Info:      \n"
        );
    }
}
