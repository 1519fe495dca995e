//! The successor rule as the server applies it to every upload: may a state with this serial
//! and lineage replace the stored one? A retried upload is idempotent, and an older or
//! unrelated state is refused (BACKENDS.md §4.4, §6).
//!
//! Why not `stateseal_core::check_successor`: that one compares plaintext states (their
//! content and whether they are empty). The server must also judge OpenTofu envelopes it has
//! no key for, where only the plaintext `serial` and `lineage` and the bytes are known, so its
//! rule works on those alone: another lineage is refused; a lower serial is refused; the same
//! serial is accepted only with the same bytes (a retry of a write that was already stored),
//! and then nothing needs writing; a higher serial is a successor. For non-empty plaintext
//! states the two rules agree except that "same content" here means "same bytes".

use std::fmt;

/// What the rule looks at in a state (stored or offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot<'a> {
    pub serial: u64,
    /// Empty when the state carries none (then lineage is not compared).
    pub lineage: &'a str,
    /// The bytes, or any digest of them: only compared for equality.
    pub content: &'a [u8],
}

/// An accepted offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Successor {
    /// Nothing is stored, or the offer has a higher serial: store it.
    Newer,
    /// The stored serial with the same bytes (a retried upload): answer success, write nothing.
    Identical,
}

/// A refused offer, with what was refused and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    ForeignLineage { stored: String, offered: String },
    OlderSerial { stored: u64, offered: u64 },
    SameSerialOtherContent { serial: u64 },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::ForeignLineage { stored, offered } => write!(
                f,
                "refused a state with lineage {offered:?} over the stored state with lineage {stored:?}: they are unrelated states; nothing was written"
            ),
            Refusal::OlderSerial { stored, offered } => write!(
                f,
                "refused a state with serial {offered} over the stored state with serial {stored}: it is older than what is stored; nothing was written"
            ),
            Refusal::SameSerialOtherContent { serial } => write!(
                f,
                "refused a state with serial {serial}: the stored state has the same serial and other content; nothing was written"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Decides whether `offered` may replace `stored` (`None`: nothing stored).
pub fn check_successor(
    stored: Option<&Snapshot<'_>>,
    offered: &Snapshot<'_>,
) -> Result<Successor, Refusal> {
    let Some(stored) = stored else {
        return Ok(Successor::Newer);
    };
    if !stored.lineage.is_empty()
        && !offered.lineage.is_empty()
        && stored.lineage != offered.lineage
    {
        return Err(Refusal::ForeignLineage {
            stored: stored.lineage.to_string(),
            offered: offered.lineage.to_string(),
        });
    }
    if offered.serial < stored.serial {
        return Err(Refusal::OlderSerial {
            stored: stored.serial,
            offered: offered.serial,
        });
    }
    if offered.serial == stored.serial {
        return if offered.content == stored.content {
            Ok(Successor::Identical)
        } else {
            Err(Refusal::SameSerialOtherContent {
                serial: offered.serial,
            })
        };
    }
    Ok(Successor::Newer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s<'a>(serial: u64, lineage: &'a str, content: &'a [u8]) -> Snapshot<'a> {
        Snapshot {
            serial,
            lineage,
            content,
        }
    }

    #[test]
    fn the_rule() {
        let cur = s(5, "L", b"five");
        assert_eq!(check_successor(None, &cur), Ok(Successor::Newer));
        assert_eq!(
            check_successor(Some(&cur), &s(6, "L", b"six")),
            Ok(Successor::Newer)
        );
        assert_eq!(
            check_successor(Some(&cur), &s(5, "L", b"five")),
            Ok(Successor::Identical)
        );
        assert_eq!(
            check_successor(Some(&cur), &s(5, "L", b"other")),
            Err(Refusal::SameSerialOtherContent { serial: 5 })
        );
        assert_eq!(
            check_successor(Some(&cur), &s(4, "L", b"four")),
            Err(Refusal::OlderSerial {
                stored: 5,
                offered: 4
            })
        );
        let foreign = check_successor(Some(&cur), &s(9, "M", b"x")).unwrap_err();
        assert_eq!(
            foreign,
            Refusal::ForeignLineage {
                stored: "L".into(),
                offered: "M".into()
            }
        );
        assert!(foreign.to_string().contains("unrelated"));
        // A lineage missing on either side is not compared.
        assert_eq!(
            check_successor(Some(&s(5, "", b"a")), &s(6, "M", b"b")),
            Ok(Successor::Newer)
        );
        assert_eq!(
            check_successor(Some(&cur), &s(6, "", b"b")),
            Ok(Successor::Newer)
        );
    }
}
