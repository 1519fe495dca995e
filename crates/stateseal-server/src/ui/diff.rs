//! The difference between two readable versions of a state, as `terraform plan` shows one:
//! resource instances added, removed and changed (by address, with the leaf paths that changed
//! inside their attributes, such as `input.value.greeting`), and outputs added, removed and
//! changed (leaf paths inside them too). A sensitive value is reported as changed, never with its
//! values, and a value shown whole has its sensitive parts replaced.

use serde_json::Value;

use super::state_view::{instances, outputs, path_text, short, Instance, Step};

/// At most this many leaf changes are listed per resource or output; the rest are counted.
pub const MAX_LEAVES: usize = 100;

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

/// One leaf value that differs, by its path (`input.value.greeting`, or an output's name).
/// `old`/`new` are `None` when absent on that side, and both `None` for a sensitive value.
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
    /// The leaves that changed (for [`Change::Changed`] only), at most [`MAX_LEAVES`].
    pub attributes: Vec<ValueChange>,
    /// Leaves that changed beyond [`MAX_LEAVES`].
    pub more: usize,
}

/// Everything that differs between two states.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub resources: Vec<ResourceChange>,
    pub outputs: Vec<ValueChange>,
    /// Output leaves that changed beyond [`MAX_LEAVES`] per output.
    pub more_outputs: usize,
}

/// Which paths are sensitive: a resource instance's (on either side), or everything.
struct Sensitivity<'a> {
    sides: [Option<&'a Instance<'a>>; 2],
    all: bool,
}

impl Sensitivity<'_> {
    fn is(&self, path: &[Step]) -> bool {
        self.all || self.sides.iter().flatten().any(|i| i.is_sensitive(path))
    }

    fn holds(&self, path: &[Step]) -> bool {
        self.sides.iter().flatten().any(|i| i.holds_sensitive(path))
    }

    /// `v` as one line, with every sensitive value inside it replaced.
    fn shown(&self, path: &mut Vec<Step>, v: &Value) -> String {
        short(&self.redacted(path, v))
    }

    fn redacted(&self, path: &mut Vec<Step>, v: &Value) -> Value {
        if self.is(path) {
            return Value::String("(sensitive)".into());
        }
        if !self.holds(path) {
            return v.clone();
        }
        let wrapper = Step::is_wrapper(v);
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        path.push(key_step(wrapper, k));
                        let r = self.redacted(path, x);
                        path.pop();
                        (k.clone(), r)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| {
                        path.push(Step::Index(i));
                        let r = self.redacted(path, x);
                        path.pop();
                        r
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// The leaves that differ between `old` and `new` under `path`, pushed onto `out`; returns how
/// many did not fit under [`MAX_LEAVES`].
fn leaves(
    sens: &Sensitivity,
    path: &mut Vec<Step>,
    old: Option<&Value>,
    new: Option<&Value>,
    out: &mut Vec<ValueChange>,
) -> usize {
    if old == new {
        return 0;
    }
    let change = match (old, new) {
        (Some(_), Some(_)) => Change::Changed,
        (None, Some(_)) => Change::Added,
        (Some(_), None) => Change::Removed,
        (None, None) => return 0,
    };
    let mut more = 0;
    let mut descend = |path: &mut Vec<Step>, step: Step, a: Option<&Value>, b: Option<&Value>| {
        path.push(step);
        more += leaves(sens, path, a, b, out);
        path.pop();
    };
    match (old, new) {
        _ if sens.is(path) => {
            return push(out, path, change, true, None, None);
        }
        (Some(x @ Value::Object(a)), Some(y @ Value::Object(b))) => {
            // A dynamically typed value: its `value` is what changed; its `type` follows.
            let wrapper = Step::is_wrapper(x) && Step::is_wrapper(y);
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys.into_iter().filter(|k| !(wrapper && *k == "type")) {
                descend(path, key_step(wrapper, k), a.get(k), b.get(k));
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                descend(path, Step::Index(i), a.get(i), b.get(i));
            }
        }
        _ => {
            let old = old.map(|v| sens.shown(path, v));
            let new = new.map(|v| sens.shown(path, v));
            return push(out, path, change, false, old, new);
        }
    }
    more
}

/// The step to key `k` of an object: [`Step::Wrapped`] for the `value` of a dynamically typed
/// value's JSON.
fn key_step(wrapper: bool, k: &str) -> Step {
    if wrapper && k == "value" {
        Step::Wrapped
    } else {
        Step::Key(k.to_string())
    }
}

/// Adds one leaf change unless [`MAX_LEAVES`] are listed already; returns 1 if it did not fit.
fn push(
    out: &mut Vec<ValueChange>,
    path: &[Step],
    change: Change,
    sensitive: bool,
    old: Option<String>,
    new: Option<String>,
) -> usize {
    if out.len() >= MAX_LEAVES {
        return 1;
    }
    out.push(ValueChange {
        name: path_text(path),
        change,
        sensitive,
        old,
        new,
    });
    0
}

/// Compares version `old` with version `new`.
pub fn diff(old: &Value, new: &Value) -> Diff {
    let mut out = Diff::default();
    let (a, b) = (instances(old), instances(new));
    let addresses: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for address in addresses {
        match (a.get(address), b.get(address)) {
            (Some(x), Some(y)) => {
                let sens = Sensitivity {
                    sides: [Some(x), Some(y)],
                    all: false,
                };
                let mut attributes = Vec::new();
                let more = leaves(
                    &sens,
                    &mut Vec::new(),
                    Some(x.attributes),
                    Some(y.attributes),
                    &mut attributes,
                );
                if !attributes.is_empty() {
                    out.resources.push(ResourceChange {
                        address: address.clone(),
                        change: Change::Changed,
                        attributes,
                        more,
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
                more: 0,
            }),
        }
    }
    let (a, b) = (outputs(old), outputs(new));
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for n in names {
        let (x, y) = (a.get(n), b.get(n));
        let sens = Sensitivity {
            sides: [None, None],
            all: x.is_some_and(|o| o.sensitive) || y.is_some_and(|o| o.sensitive),
        };
        let mut changes = Vec::new();
        let more = leaves(
            &sens,
            &mut vec![Step::Key(n.clone())],
            x.map(|o| &o.value),
            y.map(|o| &o.value),
            &mut changes,
        );
        out.outputs.extend(changes);
        out.more_outputs += more;
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
        assert_eq!(attrs[1].name, "v");
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

    /// A change deep inside an attribute is one leaf with its path and both values; added and
    /// removed keys are leaves too; a sensitive leaf is only "changed", and a value shown whole
    /// has its sensitive parts replaced; long values are cut; a huge change is counted, not listed.
    #[test]
    fn nested_changes_are_leaf_paths_and_sensitive_leaves_stay_hidden() {
        let data = |greeting: &str, token: &str, extra: Option<Value>| {
            let mut input = json!({"greeting": greeting, "token": token, "same": [1, 2]});
            if let Some(e) = extra {
                input["extra"] = e;
            }
            json!({"resources": [{"mode": "managed", "type": "terraform_data", "name": "app",
                "instances": [{"attributes": {"input": {"value": input, "type": ["object", {}]}},
                    "sensitive_attributes": [[{"type": "get_attr", "value": "input"},
                        {"type": "get_attr", "value": "token"}]]}]}],
                "outputs": {"o": {"value": {"a": {"b": "x".repeat(500)}}}}})
        };
        let added = json!({"note": "new", "token": "inner"});
        let d = diff(
            &data("hello", "tok-1", None),
            &data("bonjour", "tok-2", Some(added)),
        );
        let attrs = &d.resources[0].attributes;
        let find = |name: &str| {
            attrs
                .iter()
                .find(|a| a.name == name)
                .unwrap_or_else(|| panic!("no {name} in {attrs:?}"))
        };
        let g = find("input.value.greeting");
        assert_eq!(g.change, Change::Changed);
        assert_eq!(
            (g.old.as_deref(), g.new.as_deref()),
            (Some("hello"), Some("bonjour"))
        );
        let t = find("input.value.token");
        assert!(t.sensitive && t.old.is_none() && t.new.is_none());
        let e = find("input.value.extra");
        assert_eq!(e.change, Change::Added);
        assert_eq!(e.new.as_deref(), Some(r#"{"note":"new","token":"inner"}"#));
        assert_eq!(attrs.len(), 3, "unchanged leaves are not listed: {attrs:?}");
        assert!(!format!("{d:?}").contains("tok-"));

        // Outputs: a leaf path under the output's name, its long value cut.
        let mut other = data("hello", "tok-1", None);
        other["outputs"]["o"]["value"]["a"]["b"] = json!("y".repeat(500));
        let d = diff(&data("hello", "tok-1", None), &other);
        assert_eq!(d.outputs.len(), 1);
        assert_eq!(d.outputs[0].name, "o.a.b");
        assert!(d.outputs[0].new.as_deref().unwrap().ends_with('…'));
        assert!(d.outputs[0].new.as_deref().unwrap().chars().count() <= 201);

        // A value whose sensitive part sits inside a shown value is redacted there.
        let mut whole = data("hello", "tok-1", None);
        whole["resources"][0]["instances"][0]["attributes"]["input"]["value"] = json!(5);
        let d = diff(&whole, &data("hello", "tok-9", None));
        let v = &d.resources[0].attributes[0];
        assert_eq!(v.name, "input.value");
        assert!(v.new.as_deref().unwrap().contains("(sensitive)"), "{v:?}");
        assert!(!format!("{d:?}").contains("tok-9"));

        // A huge change: MAX_LEAVES listed, the rest counted.
        let wide = |n: i64| json!({"outputs": {"o": {"value": (0..250).map(|i| (i.to_string(), json!(i * n))).collect::<serde_json::Map<_, _>>()}}});
        let d = diff(&wide(1), &wide(2));
        assert_eq!(d.outputs.len(), MAX_LEAVES);
        assert_eq!(d.more_outputs, 249 - MAX_LEAVES, "key 0 is 0 on both sides");
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
