//! `stateseal inspect FILE`: what a file is, without any key.

use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;
use serde_json::{json, Value};
use stateseal_encryption::envelope::{Header, NotEnvelope};

use crate::failure::Failure;
use crate::io::read_input;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The file to describe (`-` reads stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Deserialize)]
struct PlainState {
    version: Option<Value>,
    terraform_version: Option<Value>,
    serial: Option<Value>,
    lineage: Option<Value>,
    #[serde(default)]
    outputs: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    resources: Option<Vec<serde::de::IgnoredAny>>,
}

pub fn run(args: &InspectArgs) -> Result<(), Failure> {
    let input = read_input(Some(&args.file))?;
    let report = describe(&input.bytes);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "file": input.name, "size": input.bytes.len(), "report": report })
            )
            .expect("json")
        );
    } else {
        print_text(&input.name, input.bytes.len(), &report);
    }
    Ok(())
}

/// A JSON description of the bytes.
pub fn describe(bytes: &[u8]) -> Value {
    match Header::parse(bytes) {
        Ok(h) => {
            let kind = if h.state_fields.is_some() {
                "state"
            } else {
                "plan"
            };
            let meta: Vec<Value> = h.meta.iter().map(|(k, v)| metadata_entry(k, v)).collect();
            let mut r = json!({
                "encrypted": true,
                "kind": kind,
                "envelope_version": h.version,
                "version_supported": h.version == stateseal_encryption::envelope::VERSION,
                "encrypted_data_bytes": h.encrypted_data_len,
                "metadata": meta,
            });
            if let Some(sf) = &h.state_fields {
                r["serial"] = json!(sf.serial);
                r["lineage"] = json!(sf.lineage);
            }
            r
        }
        Err(not) => {
            if bytes.is_empty() {
                return json!({"encrypted": false, "kind": "empty"});
            }
            if bytes.starts_with(b"PK") {
                return json!({"encrypted": false, "kind": "plan"});
            }
            match serde_json::from_slice::<PlainState>(bytes) {
                Ok(s)
                    if s.terraform_version
                        .as_ref()
                        .and_then(Value::as_str)
                        .is_some_and(|v| !v.is_empty()) =>
                {
                    json!({
                        "encrypted": false,
                        "kind": "state",
                        "state_version": s.version,
                        "terraform_version": s.terraform_version,
                        "serial": s.serial,
                        "lineage": s.lineage,
                        "outputs": s.outputs.map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
                        "resources": s.resources.map(|r| r.len()).unwrap_or(0),
                    })
                }
                _ => json!({
                    "encrypted": false,
                    "kind": "unknown",
                    "problem": match not {
                        NotEnvelope::Json(e) => format!("not JSON and not a zip: {e}"),
                        NotEnvelope::NoVersion => "JSON, but neither an envelope (no encryption_version) nor a state (no terraform_version)".to_string(),
                    },
                }),
            }
        }
    }
}

/// Describes one metadata entry: which provider wrote it and its public parameters.
fn metadata_entry(key: &str, raw: &[u8]) -> Value {
    let parsed: Option<serde_json::Map<String, Value>> = serde_json::from_slice(raw).ok();
    let (provider_type, name, alias) = match key
        .strip_prefix("key_provider.")
        .and_then(|r| r.split_once('.'))
    {
        Some((t, n)) => (Some(t.to_string()), Some(n.to_string()), false),
        None => (None, None, true),
    };
    let Some(fields) = parsed else {
        return json!({"key": key, "provider_type": provider_type, "name": name, "alias": alias, "problem": "metadata is not a JSON object"});
    };
    let guessed = provider_type
        .clone()
        .unwrap_or_else(|| guess_type(&fields).to_string());
    let b64len = |v: Option<&Value>| {
        v.and_then(Value::as_str).map(|s| {
            stateseal_encryption::envelope::Envelope::parse(
                format!(
                    "{{\"encrypted_data\":{},\"encryption_version\":\"v0\"}}",
                    Value::from(s)
                )
                .as_bytes(),
            )
            .map(|e| e.encrypted_data.len())
            .ok()
        })
    };
    let details = match guessed.as_str() {
        "pbkdf2" => json!({
            "iterations": fields.get("iterations"),
            "hash_function": fields.get("hash_function"),
            "key_length": fields.get("key_length"),
            "salt_bytes": b64len(fields.get("salt")).flatten(),
        }),
        "aws_kms" => {
            json!({"ciphertext_blob_bytes": b64len(fields.get("ciphertext_blob")).flatten(), "encryption_context": fields.get("encryption_context")})
        }
        "gcp_kms" | "openbao" => {
            json!({"ciphertext_bytes": b64len(fields.get("ciphertext")).flatten(), "associated_data": fields.get("associated_data")})
        }
        "external" => {
            json!({"external_data": fields.get("external_data").map(|v| if v.is_null() { "null" } else { "present" })})
        }
        _ => json!({"fields": fields.keys().collect::<Vec<_>>()}),
    };
    json!({"key": key, "provider_type": guessed, "type_guessed": provider_type.is_none(), "name": name, "alias": alias, "details": details})
}

fn guess_type(fields: &serde_json::Map<String, Value>) -> &'static str {
    if fields.contains_key("salt") || fields.contains_key("iterations") {
        "pbkdf2"
    } else if fields.contains_key("ciphertext_blob") {
        "aws_kms"
    } else if fields.contains_key("external_data") {
        "external"
    } else if fields.contains_key("key_version") {
        "azure_vault"
    } else if fields.contains_key("ciphertext") {
        "gcp_kms or openbao"
    } else {
        "unknown"
    }
}

fn print_text(name: &str, size: usize, r: &Value) {
    let get = |k: &str| {
        r.get(k).filter(|v| !v.is_null()).map(|v| {
            v.as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string())
        })
    };
    println!("file:       {name}");
    println!("size:       {size} bytes");
    let encrypted = r["encrypted"].as_bool().unwrap_or(false);
    println!("encrypted:  {}", if encrypted { "yes" } else { "no" });
    println!("kind:       {}", get("kind").unwrap_or_default());
    if encrypted {
        let supported = if r["version_supported"].as_bool() == Some(true) {
            ""
        } else {
            " (UNSUPPORTED: only v0 exists)"
        };
        println!(
            "envelope:   {}{supported}",
            get("envelope_version").unwrap_or_default()
        );
        println!(
            "payload:    {} bytes encrypted",
            get("encrypted_data_bytes").unwrap_or_default()
        );
    } else if let Some(v) = get("terraform_version") {
        println!(
            "terraform:  {v} (state format {})",
            get("state_version").unwrap_or_else(|| "?".into())
        );
    }
    if let Some(s) = get("serial") {
        println!("serial:     {s}");
    }
    if let Some(l) = get("lineage") {
        println!("lineage:    {l}");
    }
    if let Some(p) = get("problem") {
        println!("problem:    {p}");
    }
    if let Some(Value::Array(meta)) = r.get("metadata") {
        println!(
            "metadata:   {} entr{}",
            meta.len(),
            if meta.len() == 1 { "y" } else { "ies" }
        );
        for m in meta {
            let key = m["key"].as_str().unwrap_or_default();
            let t = m["provider_type"].as_str().unwrap_or("?");
            let how = if m["alias"].as_bool() == Some(true) {
                format!(
                    "alias, written by {t}{}",
                    if m["type_guessed"].as_bool() == Some(true) {
                        " (guessed from its fields)"
                    } else {
                        ""
                    }
                )
            } else {
                t.to_string()
            };
            let details = m["details"]
                .as_object()
                .map(|d| {
                    d.iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| {
                            format!(
                                "{k}={}",
                                v.as_str()
                                    .map(String::from)
                                    .unwrap_or_else(|| v.to_string())
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            println!("  {key}  [{how}] {details}");
        }
    }
}
