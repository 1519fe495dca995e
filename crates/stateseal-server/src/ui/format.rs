//! How the console writes times, ages, sizes and how a version is encrypted.

use stateseal_store::lock_info::GoTime;

use crate::storage::{Stored, VersionRecord};

pub(super) fn when(t: &str) -> String {
    match t.get(..19) {
        Some(s) => format!("{} UTC", s.replace('T', " ")),
        None => t.to_string(),
    }
}

/// Seconds since an RFC 3339 time (0 when unreadable).
pub(super) fn seconds_since(t: &str) -> i64 {
    GoTime::parse_rfc3339(t).map_or(0, |g| (GoTime::now().unix - g.unix).max(0))
}

pub(super) fn age(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

pub(super) fn size(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}

pub(super) fn encryption(r: &VersionRecord) -> &'static str {
    match r.stored {
        Stored::ServerEncrypted => "yes (server)",
        Stored::ClientEnvelope => "yes (client)",
        Stored::DirectEnvelope => "yes (written directly)",
        Stored::Plaintext => "no",
        Stored::Deleted => "",
    }
}
