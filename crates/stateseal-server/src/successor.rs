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
//! states the two rules agree except that "same content" here means "same bytes"; both answer
//! with core's [`Successor`] and [`Refusal`].

pub use stateseal_core::successor::{Refusal, Successor};

/// What the rule looks at in a state (stored or offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot<'a> {
    pub serial: u64,
    /// Empty when the state carries none (then lineage is not compared).
    pub lineage: &'a str,
    /// The bytes, or any digest of them: only compared for equality.
    pub content: &'a [u8],
}

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
            incoming: offered.lineage.to_string(),
        });
    }
    if offered.serial < stored.serial {
        return Err(Refusal::OlderSerial {
            stored: stored.serial,
            incoming: offered.serial,
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
                incoming: 4
            })
        );
        let foreign = check_successor(Some(&cur), &s(9, "M", b"x")).unwrap_err();
        assert_eq!(
            foreign,
            Refusal::ForeignLineage {
                stored: "L".into(),
                incoming: "M".into()
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
