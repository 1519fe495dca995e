//! What the console can tell about one stored version: the state itself when the server can
//! read it (its own encryption at rest, or plaintext), or only an envelope's plaintext fields
//! when the client encrypted it with a key the server lacks; and the key providers named in an
//! envelope's metadata.

use std::collections::BTreeMap;

use serde_json::Value;
use stateseal_encryption::envelope::Header;

use crate::data_dir::{Stored, VersionRecord};
use crate::error::ServerError;
use crate::state_path::StatePath;
use crate::App;

/// A version as the console shows it.
pub enum Opened {
    /// A state the server can read.
    State(Value),
    /// An envelope the server has no key for: only its plaintext fields.
    Envelope {
        serial: Option<i64>,
        lineage: String,
        providers: Vec<String>,
    },
}

pub use crate::at_rest::key_providers;

/// True when a version's stored bytes are an envelope.
pub fn is_encrypted(r: &VersionRecord) -> bool {
    matches!(
        r.stored,
        Stored::ServerEncrypted | Stored::ClientEnvelope | Stored::DirectEnvelope
    )
}

/// Reads version `n` and opens it as far as the server can.
pub async fn open_version(
    app: &std::sync::Arc<App>,
    path: &StatePath,
    n: u64,
) -> Result<(VersionRecord, Opened), ServerError> {
    let (record, bytes) = super::data::version(app, path, n).await?;
    if let Ok(h) = Header::parse(&bytes) {
        let fields = h.state_fields.unwrap_or_default();
        return Ok((
            record,
            Opened::Envelope {
                serial: fields.serial,
                lineage: fields.lineage,
                providers: h.meta.into_keys().collect(),
            },
        ));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.is_object() => Ok((record, Opened::State(v))),
        _ => Err(ServerError::NotJsonState(n)),
    }
}

/// An output of a state.
pub struct Output {
    pub value: Value,
    pub sensitive: bool,
}

/// The outputs of a state, by name.
pub fn outputs(state: &Value) -> BTreeMap<String, Output> {
    state["outputs"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, o)| {
                    let out = Output {
                        value: o.get("value").cloned().unwrap_or(Value::Null),
                        sensitive: o.get("sensitive").and_then(Value::as_bool) == Some(true),
                    };
                    (k.clone(), out)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One step of a path into a value: an object key, an array index, or (for a step whose shape is
/// not understood) any step at all, so that an odd `sensitive_attributes` entry hides more, never
/// less.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    Any,
    /// The `value` of a dynamically typed attribute's JSON (`{"value": …, "type": …}`, as
    /// `terraform_data.input` is stored). Terraform's sensitive paths do not name it, so matching
    /// tries the path both without it and with it as the key `value`: never show too much.
    Wrapped,
}

impl Step {
    fn matches(&self, other: &Step) -> bool {
        matches!((self, other), (Step::Any, _) | (_, Step::Any)) || self == other
    }

    /// Whether `v` is the JSON of a dynamically typed value: an object of exactly `value` and
    /// `type`.
    pub fn is_wrapper(v: &Value) -> bool {
        v.as_object()
            .is_some_and(|m| m.len() == 2 && m.contains_key("value") && m.contains_key("type"))
    }
}

/// The two readings of a path with [`Step::Wrapped`] steps: without them, and with them as the
/// key `value`.
fn readings(path: &[Step]) -> [Vec<Step>; 2] {
    [
        path.iter()
            .filter(|s| **s != Step::Wrapped)
            .cloned()
            .collect(),
        path.iter()
            .map(|s| match s {
                Step::Wrapped => Step::Key("value".into()),
                other => other.clone(),
            })
            .collect(),
    ]
}

/// A path as Terraform's plan output writes it: `input.value.greeting`, `tags["a b"]`, `list[0]`.
pub fn path_text(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if is_identifier(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => out.push_str(&format!("[{}]", Value::from(k.as_str()))),
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Any => out.push_str("[*]"),
            Step::Wrapped => out.push_str(if out.is_empty() { "value" } else { ".value" }),
        }
    }
    out
}

fn is_identifier(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What an instance whose `attributes` is missing or not an object is read as.
static NO_ATTRIBUTES: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(Default::default()));

/// One resource instance: its attributes (borrowed from the state: always an object) and the
/// paths in them that are sensitive.
pub struct Instance<'a> {
    pub attributes: &'a Value,
    /// From `sensitive_attributes`: each a path from the attributes object.
    pub sensitive: Vec<Vec<Step>>,
}

/// Every resource instance of a state, by address (`module.m.aws_s3_bucket.b["k"]`).
pub fn instances(state: &Value) -> BTreeMap<String, Instance<'_>> {
    let mut out = BTreeMap::new();
    for r in state["resources"].as_array().into_iter().flatten() {
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let mut base = String::new();
        if !text("module").is_empty() {
            base.push_str(text("module"));
            base.push('.');
        }
        if text("mode") == "data" {
            base.push_str("data.");
        }
        base.push_str(text("type"));
        base.push('.');
        base.push_str(text("name"));
        for inst in r["instances"].as_array().into_iter().flatten() {
            let address = match inst.get("index_key") {
                Some(Value::Number(n)) => format!("{base}[{n}]"),
                Some(Value::String(s)) => format!("{base}[{}]", Value::from(s.as_str())),
                _ => base.clone(),
            };
            let attributes = match &inst["attributes"] {
                v @ Value::Object(_) => v,
                _ => &*NO_ATTRIBUTES,
            };
            out.insert(
                address,
                Instance {
                    attributes,
                    sensitive: sensitive_attributes(&inst["sensitive_attributes"]),
                },
            );
        }
    }
    out
}

/// The paths of a `sensitive_attributes` list: each entry is a list of steps,
/// `{"type":"get_attr","value":"password"}` or `{"type":"index","value":{"value":0,"type":"number"}}`.
/// A step of another shape matches any step, and an entry that is not a list of steps marks
/// everything: never show too much.
fn sensitive_attributes(v: &Value) -> Vec<Vec<Step>> {
    let step = |s: &Value| match (s["type"].as_str(), &s["value"]) {
        (Some("get_attr"), Value::String(k)) => Step::Key(k.clone()),
        (Some("index"), i) => match &i["value"] {
            Value::String(k) => Step::Key(k.clone()),
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map_or(Step::Any, Step::Index),
            _ => Step::Any,
        },
        _ => Step::Any,
    };
    v.as_array()
        .into_iter()
        .flatten()
        .map(|path| match path.as_array() {
            Some(steps) if !steps.is_empty() => steps.iter().map(step).collect(),
            _ => vec![Step::Any],
        })
        .collect()
}

impl Instance<'_> {
    /// Whether the value at `path` is sensitive: a sensitive path leads to it or to a value
    /// that holds it.
    pub fn is_sensitive(&self, path: &[Step]) -> bool {
        readings(path).iter().any(|path| {
            self.sensitive
                .iter()
                .any(|p| p.len() <= path.len() && p.iter().zip(path).all(|(a, b)| a.matches(b)))
        })
    }

    /// Whether some sensitive value lies inside the value at `path`.
    pub fn holds_sensitive(&self, path: &[Step]) -> bool {
        readings(path).iter().any(|path| {
            self.sensitive
                .iter()
                .any(|p| p.len() > path.len() && path.iter().zip(p).all(|(a, b)| a.matches(b)))
        })
    }
}

/// A value as one line of text, cut at 200 characters.
pub fn short(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_and_sensitive_attributes() {
        let s = json!({"resources": [
            {"module": "module.m", "mode": "managed", "type": "t", "name": "n",
             "instances": [{"index_key": "k", "attributes": {"a": 1, "p": "x"},
                            "sensitive_attributes": [[{"type": "get_attr", "value": "p"}]]},
                           {"index_key": 2, "attributes": {}}]},
            {"mode": "data", "type": "d", "name": "x", "instances": [{"attributes": {}}]}
        ]});
        let i = instances(&s);
        let keys: Vec<_> = i.keys().cloned().collect();
        assert_eq!(keys, ["data.d.x", "module.m.t.n[\"k\"]", "module.m.t.n[2]"]);
        let key = |k: &str| Step::Key(k.to_string());
        let inst = &i["module.m.t.n[\"k\"]"];
        assert!(inst.is_sensitive(&[key("p")]));
        assert!(inst.is_sensitive(&[key("p"), key("deeper")]));
        assert!(!inst.is_sensitive(&[key("a")]));
        assert!(!inst.holds_sensitive(&[key("a")]));
        let empty = json!({});
        let odd = Instance {
            attributes: &empty,
            sensitive: sensitive_attributes(&json!(["weird"])),
        };
        assert!(
            odd.is_sensitive(&[key("anything")]),
            "an odd entry hides everything"
        );
        let nested = Instance {
            attributes: &empty,
            sensitive: sensitive_attributes(&json!([[{"type": "get_attr", "value": "input"},
                {"type": "index", "value": {"value": "token", "type": "string"}}]])),
        };
        assert!(nested.is_sensitive(&[key("input"), key("token")]));
        assert!(!nested.is_sensitive(&[key("input"), key("greeting")]));
        assert!(nested.holds_sensitive(&[key("input")]));
        assert_eq!(
            path_text(&[key("input"), key("a b"), Step::Index(2), key("x")]),
            "input[\"a b\"][2].x"
        );
    }
}
