//! `stateseal outputs`: root-module outputs, read as `terraform_remote_state` reads them (the
//! `remote_state_data_sources` encryption target).

use clap::Args;
use stateseal_store::Sealed;

use crate::backend::{block_on, open};
use crate::failure::Failure;
use crate::global::Context;

#[derive(Args)]
pub struct OutputsArgs {
    /// Print JSON like `terraform output -json`: {"NAME": {"value", "type", "sensitive"}}.
    #[arg(long)]
    json: bool,
    /// Decrypt with the remote_state_data_source block of this name (a data source address such
    /// as `net` or `mod.net`); default: remote_state_data_sources' default.
    #[arg(long = "remote-state", value_name = "NAME")]
    remote_state: Option<String>,
}

pub fn run(ctx: &Context, args: &OutputsArgs) -> Result<(), Failure> {
    block_on(async {
        let store = open(ctx).await?;
        let sealed = Sealed::new(store.clone(), ctx.loaded()?.encryption.clone());
        let outputs = sealed
            .outputs(ctx.workspace(), args.remote_state.as_deref())
            .await?;
        if args.json {
            let mut obj = serde_json::Map::new();
            for (name, o) in &outputs {
                let mut v = serde_json::Map::new();
                v.insert(
                    "sensitive".into(),
                    o.get("sensitive").cloned().unwrap_or(false.into()),
                );
                v.insert("type".into(), o.get("type").cloned().unwrap_or_default());
                v.insert("value".into(), o.get("value").cloned().unwrap_or_default());
                obj.insert(name.clone(), v.into());
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::Value::Object(obj)).unwrap_or_default()
            );
            return Ok(());
        }
        for (name, o) in &outputs {
            let shown = if o.get("sensitive").and_then(|s| s.as_bool()) == Some(true) {
                "<sensitive>".to_string()
            } else {
                o.get("value").cloned().unwrap_or_default().to_string()
            };
            println!("{name} = {shown}");
        }
        Ok(())
    })
}
