//! The successor rule as the server applies it to every upload: may a state with this serial
//! and lineage replace the stored one? A retried upload is idempotent, and an older or
//! unrelated state is refused (BACKENDS.md §4.4, §6).
//!
//! The rule is core's strict update rule ([`stateseal_core::check_update`]), not `state push`'s
//! import rule: the server must also judge OpenTofu envelopes it has no key for, where only the
//! plaintext `serial` and `lineage` and the bytes are known, so contents are compared as bytes
//! ([`Content::Opaque`]) and an empty stored state is not a free-for-all.

pub use stateseal_core::successor::{Content, Refusal, Snapshot, Successor};

/// Decides whether `offered` may replace `stored` (`None`: nothing stored, anything goes):
/// core's strict update rule, plus one server rule: a state without a lineage never replaces
/// one with a lineage (else two uploads — an empty lineage, then any lineage — would get an
/// unrelated state past the lineage check).
pub fn check_successor(
    stored: Option<&Snapshot<'_>>,
    offered: &Snapshot<'_>,
) -> Result<Successor, Refusal> {
    match stored {
        None => Ok(Successor::Newer),
        Some(stored) if !stored.lineage.is_empty() && offered.lineage.is_empty() => {
            Err(Refusal::ForeignLineage {
                stored: stored.lineage.to_string(),
                incoming: String::new(),
            })
        }
        Some(stored) => stateseal_core::check_update(stored, offered),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s<'a>(serial: u64, lineage: &'a str, content: &'a [u8]) -> Snapshot<'a> {
        Snapshot {
            serial,
            lineage,
            content: Content::Opaque(content),
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
        // A stored state without a lineage may get one; a lineage is never dropped.
        assert_eq!(
            check_successor(Some(&s(5, "", b"a")), &s(6, "M", b"b")),
            Ok(Successor::Newer)
        );
        assert!(matches!(
            check_successor(Some(&cur), &s(6, "", b"b")),
            Err(Refusal::ForeignLineage { .. })
        ));
    }
}
