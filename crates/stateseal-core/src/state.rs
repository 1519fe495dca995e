//! The little of a state file that stateseal reads: `version`, `serial`, `lineage`,
//! `terraform_version`, `outputs`. The bytes stay opaque: the only edits are in place (the
//! digits of `serial`, the string of `lineage`), so unknown fields, key order and formatting
//! survive exactly (docs/BACKENDS.md §6).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::json_scan::ScanError;

/// Why bytes are not a state stateseal can read, or not one it can edit in place.
#[non_exhaustive]
#[derive(Clone, Debug, thiserror::Error)]
pub enum StateError {
    /// Not JSON at all.
    #[error("not JSON ({0})")]
    NotJson(Arc<serde_json::Error>),
    /// JSON, but not the shape of a state (not an object, `resources` not a list, …).
    #[error("unexpected content ({0})")]
    UnexpectedContent(Arc<serde_json::Error>),
    /// Not a JSON object, as the top-level scanner found.
    #[error("not a JSON object ({0})")]
    NotAnObject(ScanError),
    /// An OpenTofu envelope, not a plaintext state.
    #[error("it is encrypted and can not be read without an encryption configuration")]
    Encrypted,
    /// A field the state must have is absent.
    #[error("it has no {0:?}")]
    Missing(&'static str),
    /// A field has the wrong JSON type; `expected` says what it must be.
    #[error("{field:?} is not {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    /// A format version other than 4.
    #[error("state format version {0} is not supported (only 4)")]
    UnsupportedVersion(u64),
    /// A top-level field's value does not decode.
    #[error("{field}: {source}")]
    Field {
        field: String,
        source: Arc<serde_json::Error>,
    },
}

/// The fields of a v4 state that stateseal looks at.
#[derive(Clone, Debug, PartialEq)]
pub struct StateMeta {
    pub version: u64,
    pub serial: u64,
    pub lineage: String,
    pub terraform_version: String,
    pub outputs: Map<String, Value>,
    /// Number of entries in `resources`.
    pub resources: usize,
}

#[derive(Deserialize)]
struct Wire {
    version: Option<Value>,
    serial: Option<Value>,
    #[serde(default)]
    lineage: Option<Value>,
    #[serde(default)]
    terraform_version: Option<Value>,
    #[serde(default)]
    outputs: Option<Value>,
    /// Only counted: a large state's resources are never built into a tree.
    #[serde(default)]
    resources: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    encryption_version: Option<Value>,
}

impl StateMeta {
    /// Parses a plaintext state. An encrypted envelope, another format version, or a value that
    /// is not a JSON object is an error that says which.
    pub fn parse(bytes: &[u8]) -> Result<StateMeta, StateError> {
        let w: Wire = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => StateError::UnexpectedContent(Arc::new(e)),
            _ => StateError::NotJson(Arc::new(e)),
        })?;
        if w.version.is_none() && w.encryption_version.is_some() {
            return Err(StateError::Encrypted);
        }
        let whole = |v: Option<Value>, field: &'static str| match v {
            Some(Value::Number(n)) => n.as_u64().ok_or(StateError::WrongType {
                field,
                expected: "a whole number",
            }),
            Some(_) => Err(StateError::WrongType {
                field,
                expected: "a number",
            }),
            None => Err(StateError::Missing(field)),
        };
        let version = whole(w.version, "version")?;
        if version != 4 {
            return Err(StateError::UnsupportedVersion(version));
        }
        let serial = whole(w.serial, "serial")?;
        let string = |v: Option<Value>, field: &'static str| match v {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(StateError::WrongType {
                field,
                expected: "a string",
            }),
        };
        let outputs = match w.outputs {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(StateError::WrongType {
                    field: "outputs",
                    expected: "an object",
                })
            }
        };
        let resources = w.resources.map_or(0, |r| r.len());
        Ok(StateMeta {
            version,
            serial,
            lineage: string(w.lineage, "lineage")?,
            terraform_version: string(w.terraform_version, "terraform_version")?,
            outputs,
            resources,
        })
    }

    /// No resources and no outputs: `state push` may overwrite it whatever its lineage.
    pub fn is_empty(&self) -> bool {
        self.resources == 0 && self.outputs.is_empty()
    }

    /// Output values by name (`terraform_remote_state` ignores `sensitive`).
    pub fn output_values(&self) -> Map<String, Value> {
        self.outputs
            .iter()
            .map(|(k, v)| (k.clone(), v.get("value").cloned().unwrap_or(Value::Null)))
            .collect()
    }
}

/// The few top-level fields of a state that encryption looks at (`serial`, `lineage`,
/// `terraform_version`). Parsed with the top-level scanner, so a 64 MiB state costs a memchr
/// pass, not a full JSON parse; keys match by Go's rules (exact, then case-insensitive).
#[derive(Default)]
pub struct StateHeader {
    pub serial: Option<Value>,
    pub lineage: Option<Value>,
    pub terraform_version: Option<Value>,
}

impl StateHeader {
    /// Reads the three fields of a top-level JSON object (an error when it is not one).
    pub fn parse(bytes: &[u8]) -> Result<StateHeader, StateError> {
        let mut h = StateHeader::default();
        for (key, raw) in
            crate::json_scan::object_members(bytes).map_err(StateError::NotAnObject)?
        {
            let slot =
                match crate::gojson::field_index(&["serial", "lineage", "terraform_version"], &key)
                {
                    Some(0) => &mut h.serial,
                    Some(1) => &mut h.lineage,
                    Some(2) => &mut h.terraform_version,
                    _ => continue,
                };
            *slot = Some(serde_json::from_slice(raw).map_err(|e| StateError::Field {
                field: key.to_string(),
                source: Arc::new(e),
            })?);
        }
        Ok(h)
    }

    pub fn serial(&self) -> Option<i64> {
        self.serial.as_ref().and_then(|v| v.as_i64())
    }

    pub fn lineage(&self) -> String {
        self.lineage
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// A non-empty `terraform_version` string: what OpenTofu takes as "this is a state".
    pub fn has_terraform_version(&self) -> bool {
        self.terraform_version
            .as_ref()
            .and_then(|v| v.as_str())
            .is_some_and(|v| !v.is_empty())
    }
}

/// Compares two states the way OpenTofu decides whether anything changed: everything but
/// `serial`, `lineage` and `terraform_version`, as JSON values (formatting does not count).
pub fn same_content(a: &[u8], b: &[u8]) -> bool {
    let strip = |bytes: &[u8]| -> Option<Value> {
        let mut v: Value = serde_json::from_slice(bytes).ok()?;
        let o = v.as_object_mut()?;
        for k in ["serial", "lineage", "terraform_version"] {
            o.remove(k);
        }
        Some(v)
    };
    match (strip(a), strip(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A brand-new empty state, as OpenTofu writes when a workspace is created on a remote backend.
pub fn empty_state(lineage: &str, serial: u64, terraform_version: &str) -> Vec<u8> {
    let mut s = String::from("{\"version\":4,\"terraform_version\":");
    crate::gojson::write_string(&mut s, terraform_version);
    s.push_str(&format!(",\"serial\":{serial},\"lineage\":"));
    crate::gojson::write_string(&mut s, lineage);
    s.push_str(",\"outputs\":{},\"resources\":[],\"check_results\":null}\n");
    s.into_bytes()
}

/// A new lineage: a random UUID-shaped string, like `statemgr.NewLineage`.
pub fn new_lineage() -> String {
    random_uuid()
}

/// A random UUID-shaped string (`8-4-4-4-12` lowercase hex), as Go's `uuid.GenerateUUID`:
/// lineages and lock IDs.
pub fn random_uuid() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system random generator works");
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Returns `bytes` with the top-level `serial` replaced by `serial`; nothing else changes.
pub fn with_serial(bytes: &[u8], serial: u64) -> Result<Vec<u8>, StateError> {
    replace_top_level(bytes, "serial", serial.to_string().as_bytes())
}

/// Returns `bytes` with the top-level `lineage` replaced; nothing else changes.
pub fn with_lineage(bytes: &[u8], lineage: &str) -> Result<Vec<u8>, StateError> {
    replace_top_level(bytes, "lineage", crate::gojson::string(lineage).as_bytes())
}

fn replace_top_level(bytes: &[u8], key: &'static str, value: &[u8]) -> Result<Vec<u8>, StateError> {
    let span = top_level_value_span(bytes, key)?.ok_or(StateError::Missing(key))?;
    let mut out = Vec::with_capacity(bytes.len() + value.len());
    out.extend_from_slice(&bytes[..span.start]);
    out.extend_from_slice(value);
    out.extend_from_slice(&bytes[span.end..]);
    Ok(out)
}

/// The byte range of the value of `key` in the top-level JSON object (the last one, as Go keeps
/// the last of duplicate keys).
fn top_level_value_span(
    bytes: &[u8],
    key: &str,
) -> Result<Option<std::ops::Range<usize>>, StateError> {
    let members = crate::json_scan::object_members(bytes).map_err(StateError::NotAnObject)?;
    Ok(members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| {
        // `v` is a subslice of `bytes`: its offset is the distance between the two starts.
        let start = v.as_ptr() as usize - bytes.as_ptr() as usize;
        start..start + v.len()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRETTY: &str = "{\n  \"version\": 4,\n  \"terraform_version\": \"1.15.5\",\n  \"serial\": 7,\n  \"lineage\": \"abc\",\n  \"outputs\": {\n    \"greeting\": {\"value\": \"hi\", \"type\": \"string\", \"sensitive\": true}\n  },\n  \"resources\": [{\"serial\": 99, \"x\": \"} ] , \\\"serial\\\": 1\"}],\n  \"check_results\": null,\n  \"future_field\": {\"keep\": [1, 2]}\n}\n";

    #[test]
    fn parses_the_fields_it_needs() {
        let m = StateMeta::parse(PRETTY.as_bytes()).unwrap();
        assert_eq!((m.version, m.serial, m.lineage.as_str()), (4, 7, "abc"));
        assert_eq!(m.terraform_version, "1.15.5");
        assert_eq!(m.resources, 1);
        assert!(!m.is_empty());
        assert_eq!(m.output_values()["greeting"], "hi");
    }

    #[test]
    fn serial_and_lineage_edits_touch_nothing_else() {
        let out = with_serial(PRETTY.as_bytes(), 12345).unwrap();
        let expected = PRETTY.replace("\"serial\": 7", "\"serial\": 12345");
        assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
        let out = with_lineage(&out, "new<&>").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            expected.replace("\"abc\"", r#""new\u003c\u0026\u003e""#)
        );
        let compact = br#"{"version":4,"serial":1,"lineage":"l","outputs":{}}"#;
        assert_eq!(
            with_serial(compact, 2).unwrap(),
            br#"{"version":4,"serial":2,"lineage":"l","outputs":{}}"#
        );
    }

    #[test]
    fn fail_inputs_name_the_problem() {
        for (bad, want) in [
            (&b"not json"[..], "not JSON"),
            (b"[1]", "unexpected content"),
            (b"{\"version\":4,\"serial\":1,\"resources\":{}}", "unexpected content"),
            (b"{\"version\":3,\"serial\":1}", "version 3"),
            (b"{\"serial\":1}", "no \"version\""),
            (b"{\"version\":4}", "no \"serial\""),
            (
                b"{\"serial\":1,\"lineage\":\"l\",\"meta\":{},\"encrypted_data\":\"\",\"encryption_version\":\"v0\"}",
                "encrypted",
            ),
        ] {
            let e = StateMeta::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert!(with_serial(b"{\"version\":4", 1).is_err());
    }

    #[test]
    fn content_comparison_ignores_header_and_format() {
        let a = br#"{"version":4,"terraform_version":"1.8.0","serial":1,"lineage":"a","outputs":{},"resources":[]}"#;
        let b = b"{\n \"version\": 4, \"terraform_version\": \"1.15.5\", \"serial\": 9, \"lineage\": \"b\", \"outputs\": {}, \"resources\": []}\n";
        assert!(same_content(a, b));
        assert!(!same_content(a, PRETTY.as_bytes()));
    }

    #[test]
    fn empty_state_parses_as_empty() {
        let s = empty_state("lin", 1, "1.15.5");
        let m = StateMeta::parse(&s).unwrap();
        assert!(m.is_empty());
        assert_eq!((m.serial, m.lineage.as_str()), (1, "lin"));
    }
}
