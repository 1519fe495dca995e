//! The difference between two readable versions of a state: resource instances added, removed
//! and changed (by address, with the attributes that changed), and outputs added, removed and
//! changed. A sensitive attribute or output is reported as changed, never with its values.

use serde_json::Value;

use super::state_view::{instances, outputs, short};

/// How an item differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    Changed,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

/// One attribute or output that differs. `old`/`new` are `None` when absent on that side, and
/// both `None` for a sensitive value.
#[derive(Debug, PartialEq, Eq)]
pub struct ValueChange {
    pub name: String,
    pub change: Change,
    pub sensitive: bool,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// A resource instance that differs.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceChange {
    pub address: String,
    pub change: Change,
    /// The attributes that changed (for [`Change::Changed`] only).
    pub attributes: Vec<ValueChange>,
}

/// Everything that differs between two states.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub resources: Vec<ResourceChange>,
    pub outputs: Vec<ValueChange>,
}

fn value_change(
    name: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    sensitive: bool,
) -> Option<ValueChange> {
    let change = match (old, new) {
        (Some(a), Some(b)) if a == b => return None,
        (Some(_), Some(_)) => Change::Changed,
        (None, Some(_)) => Change::Added,
        (Some(_), None) => Change::Removed,
        (None, None) => return None,
    };
    let shown = |v: Option<&Value>| if sensitive { None } else { v.map(short) };
    Some(ValueChange {
        name: name.to_string(),
        change,
        sensitive,
        old: shown(old),
        new: shown(new),
    })
}

/// Compares version `old` with version `new`.
pub fn diff(old: &Value, new: &Value) -> Diff {
    let mut out = Diff::default();
    let (a, b) = (instances(old), instances(new));
    let addresses: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for address in addresses {
        match (a.get(address), b.get(address)) {
            (Some(x), Some(y)) => {
                let names: std::collections::BTreeSet<&String> =
                    x.attributes.keys().chain(y.attributes.keys()).collect();
                let attributes: Vec<ValueChange> = names
                    .into_iter()
                    .filter_map(|n| {
                        let sensitive = x.is_sensitive(n) || y.is_sensitive(n);
                        value_change(n, x.attributes.get(n), y.attributes.get(n), sensitive)
                    })
                    .collect();
                if !attributes.is_empty() {
                    out.resources.push(ResourceChange {
                        address: address.clone(),
                        change: Change::Changed,
                        attributes,
                    });
                }
            }
            (x, _) => out.resources.push(ResourceChange {
                address: address.clone(),
                change: if x.is_some() {
                    Change::Removed
                } else {
                    Change::Added
                },
                attributes: Vec::new(),
            }),
        }
    }
    let (a, b) = (outputs(old), outputs(new));
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for n in names {
        let (x, y) = (a.get(n), b.get(n));
        let sensitive = x.is_some_and(|o| o.sensitive) || y.is_some_and(|o| o.sensitive);
        if let Some(c) = value_change(n, x.map(|o| &o.value), y.map(|o| &o.value), sensitive) {
            out.outputs.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(v: i64, secret: &str, extra: bool) -> Value {
        let mut resources = vec![json!({"mode": "managed", "type": "t", "name": "a",
            "instances": [{"attributes": {"v": v, "pw": secret, "same": 1},
                           "sensitive_attributes": [[{"type": "get_attr", "value": "pw"}]]}]})];
        if extra {
            resources.push(json!({"mode": "managed", "type": "t", "name": "b",
                "instances": [{"attributes": {}}]}));
        }
        json!({"outputs": {"o": {"value": v, "type": "number"},
                           "s": {"value": secret, "type": "string", "sensitive": true}},
               "resources": resources})
    }

    #[test]
    fn changes_by_address_and_sensitive_values_hidden() {
        let d = diff(
            &state(1, "old-secret", true),
            &state(2, "new-secret", false),
        );
        assert_eq!(d.resources.len(), 2);
        assert_eq!(d.resources[0].address, "t.a");
        let attrs = &d.resources[0].attributes;
        assert_eq!(attrs.len(), 2, "{attrs:?}");
        assert_eq!(attrs[0].name, "pw");
        assert!(attrs[0].sensitive && attrs[0].old.is_none() && attrs[0].new.is_none());
        assert_eq!(
            (attrs[1].old.as_deref(), attrs[1].new.as_deref()),
            (Some("1"), Some("2"))
        );
        assert_eq!(
            (d.resources[1].address.as_str(), d.resources[1].change),
            ("t.b", Change::Removed)
        );
        assert_eq!(d.outputs.len(), 2);
        assert!(d.outputs[1].sensitive && d.outputs[1].new.is_none());
        assert!(!format!("{d:?}").contains("secret"));
        assert_eq!(
            diff(&state(1, "x", false), &state(1, "x", false)),
            Diff::default()
        );
    }

    /// Any JSON, however unlike a state, diffs without a panic (a stored state is whatever a
    /// client uploaded that parsed as one).
    #[test]
    fn odd_shapes_never_panic() {
        let odd = [
            json!(null),
            json!([1, 2]),
            json!("x"),
            json!({"resources": 5, "outputs": []}),
            json!({"resources": [null, 1, {"instances": "no"}, {"instances": [null, {"attributes": 3,
                "sensitive_attributes": "x", "index_key": [1]}]}]}),
            json!({"outputs": {"o": null, "p": {"sensitive": "yes"}, "q": {"value": "é".repeat(300)}}}),
        ];
        for a in &odd {
            for b in &odd {
                let d = diff(a, b);
                if a == b {
                    assert_eq!(d, Diff::default());
                }
            }
        }
    }
}
