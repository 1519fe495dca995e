//! Byte sizes as people write them (`1GiB`, `512MiB`, `100MB`, `4096`), and reading an input
//! up to such a size: the CLI's `--max-input-size` refuses a file or stdin over the limit
//! before (files) or while (streams) it is read, so no input can exhaust memory. The parser is
//! fuzzed (`fuzz/fuzz_targets/byte_size.rs`): it must never panic, and `parse(format(n)) == n`.

use std::io::{self, Read};

/// The units [`parse_size`] accepts (case-insensitive): binary ones (`K`, `KiB`, … `TiB`) and
/// decimal ones (`KB`, … `TB`). No unit (or `B`, `bytes`) means bytes.
const UNITS: [(&str, u64); 15] = [
    ("", 1),
    ("b", 1),
    ("bytes", 1),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("kb", 1_000),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("mb", 1_000_000),
    ("g", 1 << 30),
    ("gib", 1 << 30),
    ("gb", 1_000_000_000),
    ("t", 1 << 40),
    ("tib", 1 << 40),
    ("tb", 1_000_000_000_000),
];

/// Why a size did not parse (the message also says what is accepted).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: {problem}; write a whole number of bytes with an optional unit (KiB, MiB, GiB, TiB, or KB, MB, GB, TB), e.g. 1GiB")]
pub struct SizeError {
    pub input: String,
    pub problem: SizeProblem,
}

/// What is wrong with a size.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeProblem {
    #[error("it does not start with a number")]
    NoNumber,
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    #[error("it is too large")]
    TooLarge,
    #[error("it must be at least one byte")]
    Zero,
}

/// Parses a positive whole number of bytes with an optional unit: `4096`, `64KiB`, `512M`,
/// `1GiB`, `2 GB`. The error says what is accepted.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let bad = |problem| SizeError {
        input: s.to_string(),
        problem,
    };
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad(SizeProblem::NoNumber));
    }
    let (number, unit) = t.split_at(digits);
    let unit = unit.trim_start().to_ascii_lowercase();
    let Some((_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(bad(SizeProblem::UnknownUnit(unit)));
    };
    let n = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(*scale))
        .ok_or_else(|| bad(SizeProblem::TooLarge))?;
    if n == 0 {
        return Err(bad(SizeProblem::Zero));
    }
    Ok(n)
}

/// A size for messages: `1 GiB` when it is a whole number of a binary unit, else `N bytes`.
/// [`parse_size`] reads it back.
pub fn format_size(n: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// An input was larger than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The limit, in bytes.
    pub limit: u64,
    /// The input's size when it is known before reading (a regular file), else `None` (a
    /// stream: reading stopped one byte past the limit).
    pub size: Option<u64>,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.size {
            Some(size) => write!(
                f,
                "it is {size} bytes, larger than the input limit of {}",
                format_size(self.limit)
            ),
            None => write!(
                f,
                "it holds more than the input limit of {}; reading stopped there",
                format_size(self.limit)
            ),
        }
    }
}

/// Why [`read_capped`] failed.
#[derive(Debug)]
pub enum CappedError {
    TooLarge(TooLarge),
    Io(io::Error),
}

/// Appends `reader` to `buf` until it ends, refusing to hold more than `limit` bytes in all:
/// at most `limit + 1` bytes are ever read, so a stream that does not end (`/dev/zero`) costs
/// at most the limit in memory.
pub fn read_capped(
    reader: &mut impl Read,
    buf: &mut Vec<u8>,
    limit: u64,
) -> Result<(), CappedError> {
    let room = limit.saturating_sub(buf.len() as u64).saturating_add(1);
    reader
        .take(room)
        .read_to_end(buf)
        .map_err(CappedError::Io)?;
    if buf.len() as u64 > limit {
        return Err(CappedError::TooLarge(TooLarge { limit, size: None }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        for (s, n) in [
            ("4096", 4096),
            ("1B", 1),
            ("64k", 64 << 10),
            ("64KiB", 64 << 10),
            ("2KB", 2000),
            ("512M", 512 << 20),
            ("1GiB", 1 << 30),
            (" 1 gib ", 1 << 30),
            ("3GB", 3_000_000_000),
            ("2TiB", 2 << 40),
            ("1TB", 1_000_000_000_000),
        ] {
            assert_eq!(parse_size(s), Ok(n), "{s}");
        }
    }

    #[test]
    fn bad_sizes_say_why() {
        for (s, why) in [
            ("", "does not start with a number"),
            ("GiB", "does not start with a number"),
            ("-1", "does not start with a number"),
            ("1.5GiB", "unknown unit \".5gib\""),
            ("1PiB", "unknown unit \"pib\""),
            ("0", "at least one byte"),
            ("0GiB", "at least one byte"),
            ("99999999999999999999", "too large"),
            ("16777216TiB", "too large"),
        ] {
            let e = parse_size(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.contains("e.g. 1GiB"), "{e}");
        }
    }

    #[test]
    fn formatted_sizes_parse_back() {
        for n in [1, 1000, 1024, 1536, 1 << 20, 1 << 30, 5 << 40, u64::MAX] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{}", format_size(n));
        }
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(1536), "1536 bytes");
    }

    #[test]
    fn reading_stops_one_byte_past_the_limit() {
        let mut buf = Vec::new();
        let mut endless = io::repeat(0);
        match read_capped(&mut endless, &mut buf, 10) {
            Err(CappedError::TooLarge(t)) => assert_eq!(
                t,
                TooLarge {
                    limit: 10,
                    size: None
                }
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(buf.len(), 11);
        let mut exact: &[u8] = &[1; 10];
        let mut buf = Vec::new();
        read_capped(&mut exact, &mut buf, 10).unwrap();
        assert_eq!(buf, [1; 10]);
        // What is already in the buffer counts.
        let mut buf = vec![0; 8];
        let mut more: &[u8] = &[1; 3];
        assert!(matches!(
            read_capped(&mut more, &mut buf, 10),
            Err(CappedError::TooLarge(_))
        ));
    }
}
