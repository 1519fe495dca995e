//! `stateseal inspect FILE`: what a file is, without any key.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use stateseal_encryption::describe::describe;

use crate::context::Context;
use crate::failure::Failure;
use crate::io::read_input_in_place;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The file to describe (`-` reads stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &InspectArgs) -> Result<(), Failure> {
    // Read as `decrypt` reads (huge pages for a large file); only the header is parsed.
    let input = read_input_in_place(Some(&args.file), ctx.max_input_size())?;
    let report = serde_json::to_value(describe(&input.bytes)).expect("a description serializes");
    if args.json {
        outln!(
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

fn print_text(name: &str, size: usize, r: &Value) {
    let get = |k: &str| {
        r.get(k).filter(|v| !v.is_null()).map(|v| {
            v.as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string())
        })
    };
    outln!("file:       {name}");
    outln!("size:       {size} bytes");
    let encrypted = r["encrypted"].as_bool().unwrap_or(false);
    outln!("encrypted:  {}", if encrypted { "yes" } else { "no" });
    outln!("kind:       {}", get("kind").unwrap_or_default());
    if encrypted {
        let supported = if r["version_supported"].as_bool() == Some(true) {
            ""
        } else {
            " (UNSUPPORTED: only v0 exists)"
        };
        outln!(
            "envelope:   {}{supported}",
            get("envelope_version").unwrap_or_default()
        );
        outln!(
            "payload:    {} bytes encrypted",
            get("encrypted_data_bytes").unwrap_or_default()
        );
    } else if let Some(v) = get("terraform_version") {
        outln!(
            "terraform:  {v} (state format {})",
            get("state_version").unwrap_or_else(|| "?".into())
        );
    }
    if let Some(s) = get("serial") {
        outln!("serial:     {s}");
    }
    if let Some(l) = get("lineage") {
        outln!("lineage:    {l}");
    }
    if let Some(p) = get("problem") {
        outln!("problem:    {p}");
    }
    if let Some(Value::Array(meta)) = r.get("metadata") {
        outln!(
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
            outln!("  {key}  [{how}] {details}");
        }
    }
}
