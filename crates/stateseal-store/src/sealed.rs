//! States through encryption: a [`Store`] plus the directory's [`Encryption`].
//!
//! Reads decrypt with the `state` target (or a remote-state target for outputs); writes
//! encrypt with the primary method, are decrypted again and compared before anything is
//! uploaded, and happen only while the lock is held. The state rules are OpenTofu's
//! (BACKENDS.md §1, §6): push refuses another lineage or a lower serial unless forced, and a
//! write that changes content stores `serial + 1`.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use stateseal_encryption::{Encryption, Status, TargetEncryption};

use crate::state::{self, StateMeta};
use crate::store::{Object, PutMode, Store, Version};
use crate::{Error, LockInfo, Result, DEFAULT_WORKSPACE};

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

/// A store seen through the directory's encryption.
pub struct Sealed<'a> {
    pub store: &'a dyn Store,
    pub encryption: &'a Encryption,
}

fn crypt_error(what: String) -> impl FnOnce(stateseal_encryption::Error) -> Error {
    move |source| Error::Encryption { what, source }
}

/// Decrypts stored bytes with `target` and reads the state's fields.
fn unseal(
    target: &TargetEncryption,
    bytes: &[u8],
    what: String,
) -> Result<(Vec<u8>, Status, StateMeta)> {
    let (plaintext, status) = target
        .decrypt_state(bytes)
        .map_err(crypt_error(what.clone()))?;
    let meta =
        StateMeta::parse(&plaintext).map_err(|message| Error::InvalidState { what, message })?;
    Ok((plaintext, status, meta))
}

impl<'a> Sealed<'a> {
    pub fn new(store: &'a dyn Store, encryption: &'a Encryption) -> Sealed<'a> {
        Sealed { store, encryption }
    }

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

    async fn read_with(
        &self,
        workspace: &str,
        target: &TargetEncryption,
    ) -> Result<Option<Pulled>> {
        let object = match self.store.get(workspace).await {
            Ok(o) => o,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (plaintext, status, meta) =
            unseal(target, &object.bytes, self.store.location(workspace))?;
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
        self.read_with(workspace, self.encryption.state()).await
    }

    /// Root-module output values. `remote: None` reads the directory's own state as `tofu
    /// output` does (the `state` target); `Some(name)` reads it as a `terraform_remote_state`
    /// data source of that name does (the `remote_state_data_sources` target: the
    /// `remote_state_data_source` block of that name, else `default`).
    pub async fn outputs(
        &self,
        workspace: &str,
        remote: Option<&str>,
    ) -> Result<Map<String, Value>> {
        self.require_workspace(workspace).await?;
        let target = match remote {
            None => self.encryption.state(),
            Some(name) => self.encryption.remote_state(name),
        };
        match self.read_with(workspace, target).await? {
            Some(p) => Ok(p.meta.outputs),
            None => Err(Error::NotFound {
                what: format!("state {}", self.store.location(workspace)),
            }),
        }
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

    /// Runs `body` while holding the lock, and always releases it.
    async fn locked<T>(
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

    /// Encrypts `plaintext` with the primary method, checks that it decrypts back to the same
    /// bytes, and stores it. Call with the lock held.
    async fn write(&self, workspace: &str, plaintext: &[u8], base: Option<&Version>) -> Result<()> {
        let what = self.store.location(workspace);
        let target = self.encryption.state();
        let sealed = target
            .encrypt_state(plaintext)
            .map_err(crypt_error(what.clone()))?;
        let (back, _) = target.decrypt_state(&sealed).map_err(crypt_error(format!(
            "{what} (round-trip check before upload)"
        )))?;
        if back != plaintext {
            return Err(Error::Refused(format!(
                "{what}: the encrypted state does not decrypt to what was encrypted; nothing was written"
            )));
        }
        let mode = match base {
            Some(v) => PutMode::Update(v.clone()),
            None => PutMode::Create,
        };
        self.store.put(workspace, &sealed, mode).await?;
        Ok(())
    }

    /// `state push`: stores a plaintext state, under the lock, encrypted.
    pub async fn push(
        &self,
        workspace: &str,
        plaintext: &[u8],
        opts: &PushOptions,
    ) -> Result<Written> {
        let pushed = StateMeta::parse(plaintext).map_err(|message| Error::InvalidState {
            what: "the state to push".into(),
            message,
        })?;
        self.require_workspace(workspace).await?;
        self.locked(workspace, "state-push", opts.lock_timeout, async {
            let (current, base) = match self.read_with(workspace, self.encryption.state()).await {
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
                if !opts.force {
                    check_valid_import(&pushed, plaintext, cur)?;
                }
                if pushed.serial == cur.meta.serial
                    && pushed.lineage == cur.meta.lineage
                    && state::same_content(plaintext, &cur.plaintext)
                    && cur.status == Status::Satisfied
                {
                    return Ok(Written::Unchanged);
                }
            }
            let mut body = plaintext.to_vec();
            let mut lineage = pushed.lineage.clone();
            if lineage.is_empty() {
                lineage = current
                    .as_ref()
                    .map(|c| c.meta.lineage.clone())
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(state::new_lineage);
                body = state::with_lineage(&body, &lineage).map_err(Error::Refused)?;
            }
            let serial = match &current {
                Some(_) => pushed.serial + 1,
                None => pushed.serial.max(1),
            };
            if serial != pushed.serial {
                body = state::with_serial(&body, serial).map_err(Error::Refused)?;
            }
            self.write(workspace, &body, base.as_ref()).await?;
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
        let (plain, _, old_meta) = unseal(self.encryption.state(), &old.bytes, what.clone())?;
        self.locked(workspace, "state-restore", opts.lock_timeout, async {
            let current = self.read_with(workspace, self.encryption.state()).await?;
            if let Some(cur) = &current {
                if !opts.force && !cur.meta.lineage.is_empty() && cur.meta.lineage != old_meta.lineage {
                    return Err(Error::Refused(format!(
                        "cannot restore {what}: its lineage {:?} differs from the current state's {:?} (use --force to restore anyway)",
                        old_meta.lineage, cur.meta.lineage
                    )));
                }
            }
            let serial = current
                .as_ref()
                .map_or(old_meta.serial, |c| c.meta.serial.max(old_meta.serial))
                + 1;
            let body = state::with_serial(&plain, serial).map_err(Error::Refused)?;
            self.write(workspace, &body, current.as_ref().map(|c| &c.object.version))
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
            let Some(cur) = self.read_with(workspace, self.encryption.state()).await? else {
                return Ok(Written::Unchanged);
            };
            if cur.status != Status::Migration {
                return Ok(Written::Unchanged);
            }
            let serial = cur.meta.serial + 1;
            let body = state::with_serial(&cur.plaintext, serial).map_err(Error::Refused)?;
            self.write(workspace, &body, Some(&cur.object.version))
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
                    self.write(workspace, &body, None).await
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// `workspace delete`: refuses a workspace whose state still has resources unless forced,
    /// and one that is locked.
    pub async fn delete_workspace(&self, workspace: &str, force: bool) -> Result<()> {
        if workspace == DEFAULT_WORKSPACE {
            return Err(Error::InvalidWorkspace {
                name: workspace.into(),
                reason: "the default workspace can't be deleted".into(),
            });
        }
        self.require_workspace(workspace).await?;
        if !force {
            if let Some(cur) = self.read_with(workspace, self.encryption.state()).await? {
                if cur.meta.resources > 0 {
                    return Err(Error::Refused(format!(
                        "workspace {workspace:?} still manages {} resource(s); destroy them first or use --force",
                        cur.meta.resources
                    )));
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

/// OpenTofu's `statemgr.CheckValidImport`.
fn check_valid_import(pushed: &StateMeta, plain: &[u8], cur: &Pulled) -> Result<()> {
    if cur.meta.is_empty() || pushed.lineage.is_empty() || cur.meta.lineage.is_empty() {
        return Ok(());
    }
    if pushed.lineage != cur.meta.lineage {
        return Err(Error::Refused(format!(
            "cannot import state with lineage {:?} over unrelated state with lineage {:?} (use --force to overwrite)",
            pushed.lineage, cur.meta.lineage
        )));
    }
    if pushed.serial < cur.meta.serial {
        return Err(Error::Refused(format!(
            "cannot import state with serial {} over newer state with serial {} (use --force to overwrite)",
            pushed.serial, cur.meta.serial
        )));
    }
    if pushed.serial == cur.meta.serial && !state::same_content(plain, &cur.plaintext) {
        return Err(Error::Refused(format!(
            "cannot overwrite existing state with serial {} with a different state that has the same serial (use --force to overwrite)",
            pushed.serial
        )));
    }
    Ok(())
}
