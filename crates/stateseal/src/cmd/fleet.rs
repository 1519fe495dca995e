//! What the fleet commands (`audit`, `rekey s3://…`, `locks`, `verify`, `bootstrap`, `dr drill`)
//! share: the S3 connection (the directory's `backend "s3"` block with its bucket and key
//! ignored, `--backend-config`, AWS_*) and the gates' `--allow-empty`. Their rendering lives in
//! `render/` (tables, JSON, progress).

use clap::Args;
use stateseal_fleet::{BucketUrl, Fleet, UrlError};
use stateseal_store::backend_block::{self, Backend};
use stateseal_store::s3::{S3Builder, S3Store};

use crate::context::Context;
use crate::failure::{exit, Failure};

/// Connects to the bucket of `url` with the directory's S3 settings.
pub async fn connect(ctx: &Context, url: &str) -> Result<Fleet, Failure> {
    connect_with(ctx, url, &[]).await
}

/// [`connect`], with `extra` `--backend-config` settings over everything else (the SSE a
/// rekey writes with, the region of a bootstrap).
pub async fn connect_with(ctx: &Context, url: &str, extra: &[String]) -> Result<Fleet, Failure> {
    let BucketUrl { bucket, prefix } = url.parse().map_err(|e: UrlError| {
        Failure::new(
            exit::USAGE,
            e.to_string(),
            "name the bucket to scan, e.g. s3://my-states or s3://my-states/team-a/",
        )
    })?;
    let loaded = ctx.loaded()?;
    // The URL picks the bucket; the key is unused (every state is addressed by its own key).
    let mut overrides = ctx.backend_config().to_vec();
    overrides.push(format!("bucket={bucket}"));
    overrides.push("key=fleet".to_string());
    overrides.extend_from_slice(extra);
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let is_s3 = loaded
        .module
        .backend
        .as_ref()
        .is_some_and(|b| b.labels.first().map(String::as_str) == Some("s3"));
    let cfg = if is_s3 {
        match backend_block::configure(&loaded.module, &loaded.evaluator, &overrides, &env)? {
            Backend::S3(cfg) => *cfg,
            _ => {
                return Err(Failure::plain(
                    exit::CONFIG,
                    "the backend block is not an s3 backend",
                ))
            }
        }
    } else {
        let mut b = S3Builder::new();
        for o in &overrides {
            b = b.with_backend_config(o);
        }
        b.build_config(&env)?
    };
    let store = S3Store::connect(cfg)
        .await
        .map_err(stateseal_fleet::Error::from)?;
    Ok(Fleet::new(store, prefix))
}

/// `--allow-empty`, shared by the gates (`verify`, `audit --require`).
#[derive(Args, Debug)]
pub struct EmptySelection {
    /// Pass when there is no state under the URL. Without it, a check that finds no state
    /// exits 8 and says so: a mistyped (or mis-cased) prefix must not pass a CI gate for ever.
    #[arg(long)]
    pub allow_empty: bool,
}

impl EmptySelection {
    /// The verdict on a selection that holds no state (`others`: objects that are not states).
    pub fn verdict(&self, bucket: &str, prefix: &str, others: usize) -> Result<(), Failure> {
        if self.allow_empty {
            return Ok(());
        }
        Err(Failure::new(
            exit::CHECK,
            stateseal_fleet::nothing_checked(bucket, prefix, others),
            "check the bucket and the prefix (keys are case-sensitive); if no state is expected there, pass --allow-empty",
        ))
    }
}
