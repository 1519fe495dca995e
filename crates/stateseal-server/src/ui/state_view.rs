//! What the console can tell about one stored version: the state itself when the server can
//! read it (its own encryption at rest, or plaintext), or only an envelope's plaintext fields
//! when the client encrypted it with a key the server lacks; and the key providers named in an
//! envelope's metadata.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use stateseal_encryption::envelope::Header;

use crate::data_dir::{Stored, VersionRecord};
use crate::protocol::Reply;
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

/// The key providers an envelope's metadata names (`key_provider.pbkdf2.main`, …); empty for
/// anything that is not an envelope.
pub fn key_providers(stored: &[u8]) -> Vec<String> {
    Header::parse(stored)
        .map(|h| h.meta.into_keys().collect())
        .unwrap_or_default()
}

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
) -> Result<(VersionRecord, Opened), Reply> {
    let (record, bytes) = super::store::version(app, path, n).await?;
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
        _ => Err(Reply::text(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("version {n} is not a JSON state"),
        )),
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

/// One resource instance: its attributes and which of them are sensitive.
pub struct Instance {
    pub attributes: serde_json::Map<String, Value>,
    pub sensitive: BTreeSet<String>,
}

/// Every resource instance of a state, by address (`module.m.aws_s3_bucket.b["k"]`).
pub fn instances(state: &Value) -> BTreeMap<String, Instance> {
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
            let attributes = inst["attributes"].as_object().cloned().unwrap_or_default();
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

/// The top-level attribute names under a `sensitive_attributes` list: each entry is a path,
/// a list of steps `{"type":"get_attr","value":"password"}`; the first step names the
/// attribute. An entry of another shape marks every attribute (`*`): never show too much.
fn sensitive_attributes(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for path in v.as_array().into_iter().flatten() {
        let first = path.as_array().and_then(|steps| steps.first());
        match first.and_then(|s| s.get("value")).and_then(Value::as_str) {
            Some(name) => out.insert(name.to_string()),
            None => out.insert("*".to_string()),
        };
    }
    out
}

impl Instance {
    pub fn is_sensitive(&self, name: &str) -> bool {
        self.sensitive.contains(name) || self.sensitive.contains("*")
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
        assert!(i["module.m.t.n[\"k\"]"].is_sensitive("p"));
        assert!(!i["module.m.t.n[\"k\"]"].is_sensitive("a"));
        let odd = sensitive_attributes(&json!(["weird"]));
        assert!(odd.contains("*"));
    }
}
