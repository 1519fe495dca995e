//! `stateseal validate`: check the configuration and list what it defines. Builds every
//! provider and method with placeholder keys; never calls a key service.

use clap::Args;
use serde_json::json;
use stateseal_core::diagnostics::Diagnostics;

use crate::context::Context;
use crate::failure::{exit, Failure};

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &ValidateArgs) -> Result<(), Failure> {
    let loaded = ctx.loaded()?;
    let enc = &loaded.encryption;
    let cfg = enc.config();
    let problems: Diagnostics = enc.check_buildable();
    let providers: Vec<_> = cfg
        .key_providers
        .iter()
        .map(|k| json!({"address": k.address(), "type": k.kind, "name": k.name, "has_alias": k.alias.is_some(), "location": k.location.to_string()}))
        .collect();
    let methods: Vec<_> = cfg.methods.iter().map(|m| json!({"address": m.address(), "type": m.kind, "name": m.name, "location": m.location.to_string()})).collect();
    let targets: Vec<_> = enc
        .targets()
        .filter(|t| t.is_enabled())
        .map(|t| json!({"target": t.name(), "methods": t.method_chain()}))
        .collect();
    let warnings: Vec<String> = enc.warnings().warnings().map(|w| w.to_string()).collect();
    let errors: Vec<String> = problems.errors().map(|e| e.to_string()).collect();
    if args.json {
        let v = json!({"configured": loaded.configured, "valid": errors.is_empty(), "key_providers": providers, "methods": methods, "targets": targets, "warnings": warnings, "errors": errors});
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        if !loaded.configured {
            outln!("No encryption configuration found (no encryption block in the *.tf files, no --config, no TF_ENCRYPTION): nothing is encrypted.");
        }
        outln!("key providers: {}", providers.len());
        for p in &providers {
            outln!(
                "  {}  ({})",
                p["address"].as_str().unwrap_or_default(),
                p["location"].as_str().unwrap_or_default()
            );
        }
        outln!("methods: {}", methods.len());
        for m in &methods {
            outln!(
                "  {}  ({})",
                m["address"].as_str().unwrap_or_default(),
                m["location"].as_str().unwrap_or_default()
            );
        }
        outln!("targets: {}", targets.len());
        for t in &targets {
            let chain: Vec<String> = t["methods"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str().map(String::from))
                .collect();
            outln!(
                "  {}: {}",
                t["target"].as_str().unwrap_or_default(),
                chain.join(" → fallback ")
            );
        }
        for w in &warnings {
            errln!("warning: {w}");
        }
        for e in &errors {
            errln!("error: {e}");
        }
    }
    if let Some(first) = problems.errors().next() {
        return Err(Failure::new(
            exit::CONFIG,
            format!("the configuration is invalid: {first}"),
            "correct the encryption configuration at the location shown",
        ));
    }
    if !args.json {
        outln!("The configuration is valid.");
    }
    Ok(())
}
