//! Opening the directory's state backend (`backend "s3"`, `backend "local"`, or none = local)
//! for the state, lock, workspace and outputs commands. How store errors become failures is in
//! `failure.rs`.

use std::sync::Arc;

use stateseal_store::{backend_block, Store};

use crate::context::Context;
use crate::failure::Failure;

/// Runs a future on a current-thread runtime (the commands are sequential).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime builds")
        .block_on(f)
}

/// The store the directory's backend configuration points at (evaluated by
/// [`stateseal_store::backend_block`]; this only renders its errors).
pub async fn open(ctx: &Context) -> Result<Arc<dyn Store>, Failure> {
    let loaded = ctx.loaded()?;
    let backend = backend_block::configure(
        &loaded.module,
        &loaded.evaluator,
        ctx.backend_config(),
        &|k| std::env::var(k).ok().filter(|v| !v.is_empty()),
    )?;
    Ok(Arc::from(backend.open().await?))
}
