//! OpenTofu's successor rule: may a state replace the stored one? (`statemgr.CheckValidImport`,
//! docs/BACKENDS.md §1 and §6). One function, called by `state push`, the HTTP server's updates and
//! the fleet's rewrites, so the three can never disagree.

use crate::state::{same_content, StateMeta};

/// Why a state may not replace the stored one. Callers choose their words (the CLI adds the
/// `--force` fix, the server answers 409) by variant.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
    #[error("its lineage {incoming:?} differs from the current state's {stored:?}")]
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

/// OpenTofu's rule for replacing `stored` (with bytes `stored_bytes`) by `incoming`:
/// an empty stored state (no resources, no outputs) or an unknown lineage on either side accepts
/// anything; otherwise the lineage must match, the serial must not go down, and an equal serial
/// must carry the same content (everything but `serial`, `lineage`, `terraform_version`).
pub fn check_successor(
    stored: &StateMeta,
    stored_bytes: &[u8],
    incoming: &StateMeta,
    incoming_bytes: &[u8],
) -> Result<Successor, Refusal> {
    let identical = || {
        incoming.serial == stored.serial
            && incoming.lineage == stored.lineage
            && same_content(incoming_bytes, stored_bytes)
    };
    if stored.is_empty() || incoming.lineage.is_empty() || stored.lineage.is_empty() {
        return Ok(if identical() {
            Successor::Identical
        } else {
            Successor::Newer
        });
    }
    if incoming.lineage != stored.lineage {
        return Err(Refusal::ForeignLineage {
            stored: stored.lineage.clone(),
            incoming: incoming.lineage.clone(),
        });
    }
    if incoming.serial < stored.serial {
        return Err(Refusal::OlderSerial {
            stored: stored.serial,
            incoming: incoming.serial,
        });
    }
    if incoming.serial == stored.serial {
        return if identical() {
            Ok(Successor::Identical)
        } else {
            Err(Refusal::SameSerialOtherContent {
                serial: incoming.serial,
            })
        };
    }
    Ok(Successor::Newer)
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
        check_successor(&s, stored, &i, incoming)
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
