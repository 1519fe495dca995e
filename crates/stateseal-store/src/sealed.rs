//! States through encryption: a [`Store`] plus an [`Encryption`], shared (`Arc`s) so that a
//! server or a fleet job can clone one [`Sealed`] into every task.
//!
//! Two layers:
//! * primitives: [`Sealed::unseal`] (decrypt and read the state's fields),
//!   [`Sealed::seal_verified`] (encrypt with the primary method and prove it decrypts back),
//!   [`Sealed::locked`] (run a body under the lock, always releasing it) and [`Sealed::write`]
//!   (a conditional put). Crypto runs on tokio's blocking pool, never on an async worker.
//! * policies built from them, with OpenTofu's state rules (docs/BACKENDS.md §1, §6):
//!   [`Sealed::push`] refuses another lineage or a lower serial unless forced, and a write that
//!   changes content stores `serial + 1`; [`Sealed::restore`], [`Sealed::migrate`], workspaces.
//!
//! A server's update is not a push: it stores what the client sent (`seal_verified` when it is
//! plaintext, then `write`), after its own [`stateseal_core::successor::check_import`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};
use stateseal_core::state::{self, StateError, StateMeta};
use stateseal_core::successor::{check_import, Refusal, Successor};
use stateseal_encryption::{Encryption, PayloadKind, Status, Target};

use crate::error::{Error, Result};
use crate::lock_info::LockInfo;
use crate::store::{Object, PutMode, Store, Version, DEFAULT_WORKSPACE};

/// A decrypted state.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub plaintext: Vec<u8>,
    pub meta: StateMeta,
    /// `Migration` when read through a fallback method: the state should be rewritten.
    pub status: Status,
    /// What is stored (still encrypted).
    pub object: Object,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Stored with this serial and lineage.
    Stored { serial: u64, lineage: String },
    /// The stored state already had this content, serial and lineage: nothing was written.
    Unchanged,
}

/// Options for [`Sealed::push`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Skip the lineage and serial checks (`state push -force`).
    pub force: bool,
    /// How long to keep retrying a held lock (0: one attempt).
    pub lock_timeout: Duration,
}

/// A store seen through an encryption configuration. Cheap to clone; `Send + Sync + 'static`.
#[derive(Clone)]
pub struct Sealed {
    store: Arc<dyn Store>,
    encryption: Arc<Encryption>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("store", &self.store.location(DEFAULT_WORKSPACE))
            .field("encryption", &self.encryption)
            .finish()
    }
}

fn crypt_error(what: String) -> impl FnOnce(stateseal_encryption::Error) -> Error {
    move |source| Error::Encryption { what, source }
}

/// A state's bytes could not be edited (no top-level serial or lineage to replace).
fn uneditable(what: &str, cause: StateError) -> Error {
    Error::Refused {
        what: what.to_string(),
        refusal: Refusal::Uneditable(cause.to_string()),
    }
}

/// Runs synchronous crypto on tokio's blocking pool (a panic there is re-raised here).
async fn off_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Sealed {
    pub fn new(store: Arc<dyn Store>, encryption: Arc<Encryption>) -> Sealed {
        Sealed { store, encryption }
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub fn encryption(&self) -> &Encryption {
        &self.encryption
    }

    // ---- primitives ----

    /// Decrypts stored bytes with `target` (off the async workers) and reads the state's
    /// fields. `what` names the object in errors.
    pub async fn unseal(
        &self,
        target: Target,
        bytes: Bytes,
        what: String,
    ) -> Result<(Vec<u8>, Status, StateMeta)> {
        let enc = self.encryption.clone();
        let decrypted = off_worker(move || {
            enc.target(&target)
                .decrypt_owned(Vec::from(bytes), PayloadKind::State)
        })
        .await;
        let (plaintext, status) = decrypted.map_err(crypt_error(what.clone()))?;
        let meta =
            StateMeta::parse(&plaintext).map_err(|cause| Error::InvalidState { what, cause })?;
        Ok((plaintext, status, meta))
    }

    /// Encrypts a plaintext state with the primary method of the `state` target and proves that
    /// it decrypts back to the same bytes (off the async workers). Nothing is stored.
    pub async fn seal_verified(&self, plaintext: Bytes, what: String) -> Result<Bytes> {
        let enc = self.encryption.clone();
        let sealed =
            off_worker(move || enc.state().encrypt_verified(&plaintext, PayloadKind::State)).await;
        match sealed {
            Ok(s) => Ok(Bytes::from(s)),
            Err(stateseal_encryption::Error::RoundTripMismatch) => Err(Error::Refused {
                what,
                refusal: Refusal::RoundTripMismatch,
            }),
            Err(e) => Err(crypt_error(what)(e)),
        }
    }

    /// Runs `body` while holding the lock (taken with OpenTofu's retries until `timeout`), and
    /// always releases it.
    pub async fn locked<T>(
        &self,
        workspace: &str,
        operation: &str,
        timeout: Duration,
        body: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let held = self
            .lock(workspace, LockInfo::new(operation), timeout)
            .await?;
        let result = body.await;
        if let Some(h) = held {
            let released = self.store.unlock(workspace, &h.id).await;
            if let Err(e) = released {
                return Err(match result {
                    Ok(_) => Error::UnlockFailed {
                        message: format!(
                            "the write succeeded, but releasing the lock failed: {e}\nRelease it with `stateseal force-unlock {}`.",
                            h.id
                        ),
                    },
                    Err(first) => first,
                });
            }
        }
        result
    }

    /// Stores `bytes` as the workspace's state, conditionally: only over `base` (the version
    /// that was read), or only where nothing is stored when `base` is `None`.
    pub async fn write(
        &self,
        workspace: &str,
        bytes: Bytes,
        base: Option<&Version>,
    ) -> Result<Version> {
        let mode = match base {
            Some(v) => PutMode::Update(v.clone()),
            None => PutMode::Create,
        };
        self.store.put(workspace, bytes, mode).await
    }

    /// Takes the lock, retrying a held lock with OpenTofu's back-off (1 s, 2 s, 4 s, 8 s, 16 s,
    /// 16 s …) until `timeout`. `None` when the backend has no locking configured.
    pub async fn lock(
        &self,
        workspace: &str,
        info: LockInfo,
        timeout: Duration,
    ) -> Result<Option<LockInfo>> {
        if !self.store.locking_enabled() {
            return Ok(None);
        }
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_secs(1);
        loop {
            match self.store.lock(workspace, info.clone()).await {
                Ok(held) => return Ok(Some(held)),
                Err(e) if e.is_retriable_lock() && Instant::now() + delay <= deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(16));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts `plaintext`, proves the round trip and stores it conditionally on `base`.
    /// Call with the lock held.
    async fn seal_and_write(
        &self,
        workspace: &str,
        plaintext: Vec<u8>,
        base: Option<&Version>,
    ) -> Result<()> {
        let what = self.store.location(workspace);
        let sealed = self.seal_verified(Bytes::from(plaintext), what).await?;
        self.write(workspace, sealed, base).await?;
        Ok(())
    }

    // ---- reads ----

    /// Fails with [`Error::NotFound`] unless `workspace` is listed by the backend.
    pub async fn require_workspace(&self, workspace: &str) -> Result<()> {
        crate::store::validate_workspace_name(workspace)?;
        if workspace == DEFAULT_WORKSPACE {
            return Ok(());
        }
        let all = self.store.workspaces().await?;
        if all.iter().any(|w| w == workspace) {
            return Ok(());
        }
        Err(Error::NotFound {
            what: format!(
                "workspace {workspace:?} (the workspaces at {} are: {}; create it with `stateseal workspace new {workspace}`)",
                self.store.location(DEFAULT_WORKSPACE),
                all.join(", ")
            ),
        })
    }

    async fn read_with(&self, workspace: &str, target: Target) -> Result<Option<Pulled>> {
        let object = match self.store.get(workspace).await {
            Ok(o) => o,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (plaintext, status, meta) = self
            .unseal(target, object.bytes.clone(), self.store.location(workspace))
            .await?;
        Ok(Some(Pulled {
            plaintext,
            meta,
            status,
            object,
        }))
    }

    /// The workspace's state, decrypted with the `state` target. `None` when the workspace
    /// exists but holds no state yet.
    pub async fn read(&self, workspace: &str) -> Result<Option<Pulled>> {
        self.require_workspace(workspace).await?;
        self.read_with(workspace, Target::State).await
    }

    /// Root-module output values. `remote: None` reads the workspace's own state as `tofu
    /// output` does (the `state` target); `Some(name)` reads it as a `terraform_remote_state`
    /// data source of that name does (the `remote_state_data_sources` target: the
    /// `remote_state_data_source` block of that name, else `default`). Sensitivity is ignored.
    pub async fn outputs(
        &self,
        workspace: &str,
        remote: Option<&str>,
    ) -> Result<Map<String, Value>> {
        self.require_workspace(workspace).await?;
        let target = match remote {
            None => Target::State,
            Some(name) => Target::RemoteState(name.to_string()),
        };
        match self.read_with(workspace, target).await? {
            Some(p) => Ok(p.meta.outputs),
            None => Err(Error::NotFound {
                what: format!("state {}", self.store.location(workspace)),
            }),
        }
    }

    // ---- policies ----

    /// `state push`: stores a plaintext state, under the lock, encrypted.
    pub async fn push(
        &self,
        workspace: &str,
        plaintext: &[u8],
        opts: &PushOptions,
    ) -> Result<Written> {
        let pushed = StateMeta::parse(plaintext).map_err(|cause| Error::InvalidState {
            what: "the state to push".into(),
            cause,
        })?;
        self.require_workspace(workspace).await?;
        self.locked(workspace, "state-push", opts.lock_timeout, async {
            let (current, base) = match self.read_with(workspace, Target::State).await {
                Ok(c) => {
                    let v = c.as_ref().map(|c| c.object.version.clone());
                    (c, v)
                }
                // Forced over a state that can't be decrypted or parsed: overwrite it.
                Err(Error::Encryption { .. } | Error::InvalidState { .. }) if opts.force => {
                    (None, Some(self.store.get(workspace).await?.version))
                }
                Err(e) => return Err(e),
            };
            if let Some(cur) = &current {
                let verdict = check_import(&cur.meta, &cur.plaintext, &pushed, plaintext);
                match verdict {
                    Err(refusal) if !opts.force => {
                        return Err(Error::Refused {
                            what: self.store.location(workspace),
                            refusal,
                        })
                    }
                    Ok(Successor::Identical) if cur.status == Status::Satisfied => {
                        return Ok(Written::Unchanged)
                    }
                    _ => {}
                }
            }
            let location = self.store.location(workspace);
            let mut body = plaintext.to_vec();
            let mut lineage = pushed.lineage.clone();
            if lineage.is_empty() {
                lineage = current
                    .as_ref()
                    .map(|c| c.meta.lineage.clone())
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(state::new_lineage);
                body =
                    state::with_lineage(&body, &lineage).map_err(|e| uneditable(&location, e))?;
            }
            let serial = match &current {
                Some(_) => pushed.serial + 1,
                None => pushed.serial.max(1),
            };
            if serial != pushed.serial {
                body = state::with_serial(&body, serial).map_err(|e| uneditable(&location, e))?;
            }
            self.seal_and_write(workspace, body, base.as_ref()).await?;
            Ok(Written::Stored { serial, lineage })
        })
        .await
    }

    /// `state restore`: writes an older version back as a new state whose serial is above both.
    pub async fn restore(
        &self,
        workspace: &str,
        version_id: &str,
        opts: &PushOptions,
    ) -> Result<Written> {
        self.require_workspace(workspace).await?;
        let old = self.store.get_version(workspace, version_id).await?;
        let what = format!("{} version {version_id}", self.store.location(workspace));
        let (plain, _, old_meta) = self.unseal(Target::State, old.bytes, what.clone()).await?;
        self.locked(workspace, "state-restore", opts.lock_timeout, async {
            let current = self.read_with(workspace, Target::State).await?;
            if let Some(cur) = &current {
                if !opts.force
                    && !cur.meta.lineage.is_empty()
                    && cur.meta.lineage != old_meta.lineage
                {
                    return Err(Error::Refused {
                        what: what.clone(),
                        refusal: Refusal::RestoreForeignLineage {
                            stored: cur.meta.lineage.clone(),
                            incoming: old_meta.lineage.clone(),
                        },
                    });
                }
            }
            let serial = current
                .as_ref()
                .map_or(old_meta.serial, |c| c.meta.serial.max(old_meta.serial))
                + 1;
            let body = state::with_serial(&plain, serial).map_err(|e| uneditable(&what, e))?;
            self.seal_and_write(workspace, body, current.as_ref().map(|c| &c.object.version))
                .await?;
            Ok(Written::Stored {
                serial,
                lineage: old_meta.lineage.clone(),
            })
        })
        .await
    }

    /// Rewrites a state that was read through a fallback method with the primary method
    /// (serial + 1, as OpenTofu's next persist would). `Unchanged` when no migration is due.
    pub async fn migrate(&self, workspace: &str, timeout: Duration) -> Result<Written> {
        self.locked(workspace, "encryption-migration", timeout, async {
            let Some(cur) = self.read_with(workspace, Target::State).await? else {
                return Ok(Written::Unchanged);
            };
            if cur.status != Status::Migration {
                return Ok(Written::Unchanged);
            }
            let serial = cur.meta.serial + 1;
            let body = state::with_serial(&cur.plaintext, serial)
                .map_err(|e| uneditable(&self.store.location(workspace), e))?;
            self.seal_and_write(workspace, body, Some(&cur.object.version))
                .await?;
            Ok(Written::Stored {
                serial,
                lineage: cur.meta.lineage,
            })
        })
        .await
    }

    /// `workspace new`: local makes the directory; S3 writes an empty state (new lineage,
    /// serial 1) under an `init` lock, as OpenTofu does.
    pub async fn create_workspace(&self, workspace: &str) -> Result<()> {
        crate::store::validate_workspace_name(workspace)?;
        let exists = self
            .store
            .workspaces()
            .await?
            .iter()
            .any(|w| w == workspace);
        if exists {
            return Err(Error::AlreadyExists {
                what: format!("workspace {workspace:?}"),
            });
        }
        self.store.create_workspace(workspace).await?;
        if !self.store.workspace_needs_state() {
            return Ok(());
        }
        self.locked(workspace, "init", Duration::ZERO, async {
            match self.store.get(workspace).await {
                Ok(_) => Ok(()),
                Err(Error::NotFound { .. }) => {
                    let body = state::empty_state(&state::new_lineage(), 1, TERRAFORM_VERSION);
                    self.seal_and_write(workspace, body, None).await
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// `workspace delete`: refuses a workspace whose state still has resources unless forced,
    /// and one that is locked.
    pub async fn delete_workspace(&self, workspace: &str, force: bool) -> Result<()> {
        crate::store::refuse_default_deletion(workspace)?;
        self.require_workspace(workspace).await?;
        if !force {
            if let Some(cur) = self.read_with(workspace, Target::State).await? {
                if cur.meta.resources > 0 {
                    return Err(Error::Refused {
                        what: self.store.location(workspace),
                        refusal: Refusal::WorkspaceNotEmpty {
                            workspace: workspace.to_string(),
                            resources: cur.meta.resources,
                        },
                    });
                }
            }
        }
        self.locked(workspace, "workspace-delete", Duration::ZERO, async {
            self.store.delete_workspace(workspace).await
        })
        .await
    }
}

/// The `terraform_version` stateseal writes into states it creates from nothing. States it
/// pushes keep the version they carry.
pub const TERRAFORM_VERSION: &str = "1.15.5";

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}

    #[test]
    fn sealed_can_be_cloned_into_tasks() {
        assert_shareable::<Sealed>();
    }
}
