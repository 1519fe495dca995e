//! `stateseal outputs`: root-module outputs of the backend's state. Read like `tofu output`
//! (the `state` encryption target), or with `--remote-state NAME` like a
//! `terraform_remote_state` data source (the `remote_state_data_sources` target).

use clap::Args;
use stateseal_store::{Error, Sealed};

use crate::backend::{block_on, open};
use crate::context::Context;
use crate::failure::Failure;

#[derive(Args)]
pub struct OutputsArgs {
    /// Print JSON like `terraform output -json`: {"NAME": {"value", "type", "sensitive"}}.
    #[arg(long)]
    json: bool,
    /// Read like the terraform_remote_state data source NAME (an address such as `net` or
    /// `mod.net`): decrypt with remote_state_data_sources' block of that name, else its default.
    /// Without this flag the state target is used, as `tofu output` does.
    #[arg(long = "remote-state", value_name = "NAME")]
    remote_state: Option<String>,
}

pub fn run(ctx: &Context, args: &OutputsArgs) -> Result<(), Failure> {
    block_on(async {
        let store = open(ctx).await?;
        let sealed = Sealed::new(store.clone(), ctx.loaded()?.encryption.clone());
        let outputs = match sealed
            .outputs(ctx.workspace(), args.remote_state.as_deref())
            .await
        {
            Err(Error::Encryption {
                source: source @ stateseal_encryption::Error::EncryptedWithoutConfig { .. },
                what,
            }) if args.remote_state.is_some() => {
                return Err(Failure::from(source).context(what).with_fix(
                    "--remote-state reads like terraform_remote_state: add remote_state_data_sources { default { method = … } } (or a remote_state_data_source \"NAME\" block) to the encryption block, or drop --remote-state to read with the state target",
                ))
            }
            other => other?,
        };
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
            outln!(
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
            outln!("{name} = {shown}");
        }
        Ok(())
    })
}
