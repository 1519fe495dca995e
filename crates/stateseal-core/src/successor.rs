//! OpenTofu's successor rule: may a state replace the stored one? (`statemgr.CheckValidImport`,
//! docs/BACKENDS.md §1 and §6). One function, called by `state push`, the HTTP server's updates and
//! the fleet's rewrites, so the three can never disagree.

use crate::state::{same_content, StateMeta};

/// Why a state may not replace the stored one. Callers choose their words (the CLI adds the
/// `--force` fix, the server answers 409) by variant.
///
/// It serializes as `{"<kind>": {…fields}}` (`older_serial`, `foreign_lineage`, …): the body of
/// `stateseal serve`'s 409 carries it, and `HttpStore` reads it back.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Another state's history: the lineages differ.
    #[error("cannot import state with lineage {incoming:?} over unrelated state with lineage {stored:?}")]
    ForeignLineage { stored: String, incoming: String },
    /// The incoming serial is below the stored one: it would undo newer writes.
    #[error("cannot import state with serial {incoming} over newer state with serial {stored}")]
    OlderSerial { stored: u64, incoming: u64 },
    /// Same serial, other content: two different writes claim the same serial.
    #[error("cannot overwrite existing state with serial {serial} with a different state that has the same serial")]
    SameSerialOtherContent { serial: u64 },
    /// The encrypted bytes did not decrypt back to what was encrypted (nothing was written).
    #[error("the encrypted state does not decrypt to what was encrypted")]
    RoundTripMismatch,
    /// A restore of a version from another lineage.
    #[error("its lineage {incoming:?} differs from the current state's {stored:?}: they are unrelated states")]
    RestoreForeignLineage { stored: String, incoming: String },
    /// A workspace that still manages resources.
    #[error("workspace {workspace:?} still manages {resources} resource(s)")]
    WorkspaceNotEmpty { workspace: String, resources: usize },
    /// The state's bytes could not be edited (no top-level serial or lineage to replace).
    #[error("{0}")]
    Uneditable(String),
}

/// What replacing the stored state with the incoming one means, when it is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Successor {
    /// Same lineage, same serial, same content: nothing to write.
    Identical,
    /// A valid successor (or the stored state is empty, or a lineage is unknown).
    Newer,
}

/// What the successor rule looks at in a state, stored or offered: its serial and lineage
/// (empty when it carries none), and its content for equality (plaintext JSON, or the bytes of
/// an envelope nobody here can read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot<'a> {
    pub serial: u64,
    pub lineage: &'a str,
    pub content: Content<'a>,
}

impl<'a> Snapshot<'a> {
    /// A plaintext state's snapshot.
    pub fn of_state(meta: &'a StateMeta, bytes: &'a [u8]) -> Snapshot<'a> {
        Snapshot {
            serial: meta.serial,
            lineage: &meta.lineage,
            content: Content::State(bytes),
        }
    }
}

/// How two snapshots' contents are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content<'a> {
    /// A plaintext state: compared as JSON without `serial`, `lineage`, `terraform_version`.
    State(&'a [u8]),
    /// Bytes (or a digest of them) compared exactly: an envelope without its key.
    Opaque(&'a [u8]),
}

impl Content<'_> {
    fn same(&self, other: &Content<'_>) -> bool {
        match (self, other) {
            (Content::State(a), Content::State(b)) => same_content(a, b),
            (Content::Opaque(a), Content::Opaque(b)) => a == b,
            _ => false,
        }
    }
}

/// The strict successor rule, for an update of a stored state: another lineage is refused
/// (when both carry one), a lower serial is refused, the same serial is accepted only with the
/// same content (`Identical`: a retry, nothing to write), a higher serial is `Newer`.
pub fn check_update(stored: &Snapshot<'_>, offered: &Snapshot<'_>) -> Result<Successor, Refusal> {
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
        return if offered.content.same(&stored.content) {
            Ok(Successor::Identical)
        } else {
            Err(Refusal::SameSerialOtherContent {
                serial: offered.serial,
            })
        };
    }
    Ok(Successor::Newer)
}

/// OpenTofu's rule for `state push` (`statemgr.CheckValidImport`): an empty stored state (no
/// resources, no outputs) or an unknown lineage on either side accepts anything; otherwise
/// [`check_update`]'s strict rule, with contents compared as JSON.
pub fn check_import(
    stored: &StateMeta,
    stored_bytes: &[u8],
    incoming: &StateMeta,
    incoming_bytes: &[u8],
) -> Result<Successor, Refusal> {
    let verdict = check_update(
        &Snapshot::of_state(stored, stored_bytes),
        &Snapshot::of_state(incoming, incoming_bytes),
    );
    if stored.is_empty() || incoming.lineage.is_empty() || stored.lineage.is_empty() {
        return Ok(match verdict {
            Ok(Successor::Identical) => Successor::Identical,
            _ => Successor::Newer,
        });
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(serial: u64, lineage: &str, outputs: &str) -> Vec<u8> {
        format!(r#"{{"version":4,"terraform_version":"1.9.0","serial":{serial},"lineage":"{lineage}","outputs":{outputs},"resources":[]}}"#).into_bytes()
    }

    fn check(stored: &[u8], incoming: &[u8]) -> Result<Successor, Refusal> {
        let s = StateMeta::parse(stored).unwrap();
        let i = StateMeta::parse(incoming).unwrap();
        check_import(&s, stored, &i, incoming)
    }

    const OUT: &str = r#"{"a":{"value":1,"type":"number"}}"#;
    const OUT2: &str = r#"{"a":{"value":2,"type":"number"}}"#;

    #[test]
    fn each_rule() {
        let cur = state(5, "L", OUT);
        assert_eq!(check(&cur, &state(6, "L", OUT2)), Ok(Successor::Newer));
        assert_eq!(check(&cur, &state(5, "L", OUT)), Ok(Successor::Identical));
        assert_eq!(
            check(&cur, &state(5, "L", OUT2)),
            Err(Refusal::SameSerialOtherContent { serial: 5 })
        );
        assert_eq!(
            check(&cur, &state(4, "L", OUT)),
            Err(Refusal::OlderSerial {
                stored: 5,
                incoming: 4
            })
        );
        assert_eq!(
            check(&cur, &state(9, "M", OUT)),
            Err(Refusal::ForeignLineage {
                stored: "L".into(),
                incoming: "M".into()
            })
        );
    }

    #[test]
    fn the_strict_update_rule_compares_opaque_bytes() {
        let snap = |serial, lineage, content: &'static [u8]| Snapshot {
            serial,
            lineage,
            content: Content::Opaque(content),
        };
        let cur = snap(5, "L", b"five");
        assert_eq!(
            check_update(&cur, &snap(6, "L", b"six")),
            Ok(Successor::Newer)
        );
        assert_eq!(
            check_update(&cur, &snap(5, "L", b"five")),
            Ok(Successor::Identical)
        );
        assert_eq!(
            check_update(&cur, &snap(5, "L", b"other")),
            Err(Refusal::SameSerialOtherContent { serial: 5 })
        );
        assert_eq!(
            check_update(&cur, &snap(4, "L", b"four")),
            Err(Refusal::OlderSerial {
                stored: 5,
                incoming: 4
            })
        );
        assert!(matches!(
            check_update(&cur, &snap(9, "M", b"x")),
            Err(Refusal::ForeignLineage { .. })
        ));
        // a missing lineage is not compared, but the serial still is
        assert_eq!(check_update(&cur, &snap(6, "", b"b")), Ok(Successor::Newer));
        assert!(check_update(&cur, &snap(4, "", b"b")).is_err());
    }

    #[test]
    fn an_empty_stored_state_or_unknown_lineage_accepts_anything() {
        let empty = state(9, "L", "{}");
        assert_eq!(check(&empty, &state(1, "M", OUT)), Ok(Successor::Newer));
        let cur = state(5, "L", OUT);
        assert_eq!(check(&cur, &state(1, "", OUT2)), Ok(Successor::Newer));
        // formatting is not content
        let spaced = format!(
            r#"{{ "version": 4, "terraform_version": "1.10.0", "serial": 5, "lineage": "L", "outputs": {OUT}, "resources": [] }}"#
        );
        assert_eq!(check(&cur, spaced.as_bytes()), Ok(Successor::Identical));
    }
}
