//! The local backend, laid out and locked exactly as OpenTofu's (docs/BACKENDS.md §5):
//!
//! * `terraform.tfstate` for `default`, `terraform.tfstate.d/<ws>/terraform.tfstate` otherwise;
//! * the lock is a POSIX `fcntl(F_SETLK, F_WRLCK)` on the whole state file itself, plus the
//!   informational `.terraform.tfstate.lock.info` sidecar (0600);
//! * writes go in place (truncate, write, fsync) so OpenTofu's lock, which is on the inode,
//!   stays meaningful; the first write of a process keeps the old bytes in `<state>.backup`.
//!
//! Why classic `F_SETLK` and not open-file-description locks: `rustix` (the safe wrapper this
//! crate uses under `#![forbid(unsafe_code)]`) offers only `F_SETLK`/`F_SETLKW`. That is the
//! very call OpenTofu makes, so the two exclude each other. Its pitfall, that closing *any*
//! descriptor of the file drops the process's lock, is handled by keeping one descriptor per
//! locked path in a process-wide table and doing every read and write through it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use rustix::fs::{fcntl_lock, FlockOperation};

use crate::error::{Error, Result};
use crate::lock_info::LockInfo;
use crate::store::{
    validate_workspace_name, Capabilities, Object, PutMode, Store, Version, VersionInfo,
    DEFAULT_WORKSPACE,
};

/// A lock this process holds: the one descriptor it may use for that file.
struct Held {
    file: Arc<Mutex<File>>,
    info: LockInfo,
    /// The lock created the (then empty) state file: remove it again if it stays empty.
    created_file: bool,
}

/// Locks held by this process, by state path. Process-wide because POSIX record locks are.
static HELD: LazyLock<Mutex<HashMap<PathBuf, Held>>> = LazyLock::new(Default::default);

fn held() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Held>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// A directory's local states.
#[derive(Debug, Clone)]
pub struct LocalStore {
    /// `path` (default `terraform.tfstate`), absolute.
    default_path: PathBuf,
    /// `workspace_dir` (default `terraform.tfstate.d`), absolute.
    workspace_dir: PathBuf,
    backed_up: Arc<Mutex<Vec<PathBuf>>>,
}

impl LocalStore {
    /// The states of working directory `dir` with OpenTofu's default names.
    pub fn new(dir: &Path) -> LocalStore {
        LocalStore::with_paths(dir, None, None)
    }

    /// `path` and `workspace_dir` as in a `backend "local"` block, relative to `dir`.
    pub fn with_paths(dir: &Path, path: Option<&str>, workspace_dir: Option<&str>) -> LocalStore {
        LocalStore {
            default_path: dir.join(path.unwrap_or("terraform.tfstate")),
            workspace_dir: dir.join(workspace_dir.unwrap_or("terraform.tfstate.d")),
            backed_up: Arc::default(),
        }
    }

    /// The state file of a workspace.
    pub fn state_path(&self, workspace: &str) -> PathBuf {
        if workspace == DEFAULT_WORKSPACE {
            self.default_path.clone()
        } else {
            self.workspace_dir.join(workspace).join("terraform.tfstate")
        }
    }

    /// `.terraform.tfstate.lock.info` next to the state (a leading dot of the name is dropped).
    pub fn lock_info_path(&self, workspace: &str) -> PathBuf {
        let p = self.state_path(workspace);
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = name.strip_prefix('.').unwrap_or(&name);
        p.with_file_name(format!(".{name}.lock.info"))
    }

    fn check_workspace(&self, workspace: &str) -> Result<()> {
        validate_workspace_name(workspace)?;
        if workspace != DEFAULT_WORKSPACE && !self.workspace_dir.join(workspace).is_dir() {
            return Err(Error::NotFound {
                what: format!(
                    "workspace {workspace:?} ({})",
                    self.workspace_dir.join(workspace).display()
                ),
            });
        }
        Ok(())
    }

    fn read_sidecar(&self, workspace: &str) -> Option<LockInfo> {
        let bytes = std::fs::read(self.lock_info_path(workspace)).ok()?;
        LockInfo::parse(&bytes).ok()
    }

    /// Runs `f` on the descriptor of a lock this process holds, or else on a fresh descriptor
    /// under a lock taken just for `f`.
    fn with_locked_file<T>(
        &self,
        workspace: &str,
        operation: &str,
        f: impl FnOnce(&mut File) -> Result<T>,
    ) -> Result<T> {
        let path = self.state_path(workspace);
        let existing = held().get(&path).map(|h| h.file.clone());
        if let Some(file) = existing {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            return f(&mut file);
        }
        let info = self.lock_sync(workspace, LockInfo::new(operation))?;
        let result = {
            let file = held()
                .get(&path)
                .map(|h| h.file.clone())
                .expect("just locked");
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut file)
        };
        let unlocked = self.unlock_sync(workspace, &info.id);
        let value = result?;
        unlocked?;
        Ok(value)
    }

    fn lock_sync(&self, workspace: &str, mut info: LockInfo) -> Result<LockInfo> {
        self.check_workspace(workspace)?;
        let path = self.state_path(workspace);
        let mut table = held();
        if let Some(h) = table.get(&path) {
            return Err(Error::Locked {
                holder: Box::new(h.info.clone()),
                message: format!("{} is already locked by this process", path.display()),
            });
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if let Err(e) = fcntl_lock(&file, FlockOperation::NonBlockingLockExclusive) {
            drop(file);
            let message = format!("resource temporarily unavailable ({e})");
            return Err(match self.read_sidecar(workspace) {
                Some(holder) => Error::Locked {
                    holder: Box::new(holder),
                    message,
                },
                None => Error::LockFailed {
                    message: format!(
                        "{} is locked by another process, and its lock info can't be read: {message}",
                        path.display()
                    ),
                },
            });
        }
        if info.id.is_empty() {
            info.id = crate::lock_info::new_lock_id();
        }
        info.path = path.display().to_string();
        info.created = crate::lock_info::GoTime::now();
        let sidecar = self.lock_info_path(workspace);
        let write_sidecar = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&sidecar)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(info.to_json().as_bytes())?;
            f.sync_all()
        };
        if let Err(e) = write_sidecar() {
            let _ = fcntl_lock(&file, FlockOperation::NonBlockingUnlock);
            return Err(Error::io(&sidecar, e));
        }
        table.insert(
            path,
            Held {
                file: Arc::new(Mutex::new(file)),
                info: info.clone(),
                created_file: !existed,
            },
        );
        Ok(info)
    }

    fn unlock_sync(&self, workspace: &str, id: &str) -> Result<()> {
        let path = self.state_path(workspace);
        let mut table = held();
        let Some(h) = table.get(&path) else {
            return Err(match self.read_sidecar(workspace) {
                Some(holder) => Error::UnlockFailed {
                    message: format!(
                        "{} is locked by another process (ID {}): a local lock ends with the process that holds it and can't be released from outside",
                        path.display(),
                        holder.id
                    ),
                },
                None => Error::NotLocked {
                    what: path.display().to_string(),
                },
            });
        };
        if h.info.id != id {
            return Err(Error::LockMismatch {
                id: id.to_string(),
                where_: "",
                holder: Box::new(h.info.clone()),
            });
        }
        let h = table.remove(&path).expect("present");
        let _ = std::fs::remove_file(self.lock_info_path(workspace));
        let file = h.file.lock().unwrap_or_else(|p| p.into_inner());
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(false);
        if h.created_file && empty {
            let _ = std::fs::remove_file(&path);
        }
        fcntl_lock(&*file, FlockOperation::NonBlockingUnlock).map_err(|e| Error::UnlockFailed {
            message: format!("{}: {e}", path.display()),
        })
    }

    fn backup(&self, path: &Path, old: &[u8]) -> Result<()> {
        let mut done = self.backed_up.lock().unwrap_or_else(|p| p.into_inner());
        if done.iter().any(|p| p == path) {
            return Ok(());
        }
        let mut name = path.as_os_str().to_owned();
        name.push(".backup");
        let backup = PathBuf::from(name);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o666)
            .open(&backup)
            .map_err(|e| Error::io(&backup, e))?;
        f.write_all(old)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(&backup, e))?;
        done.push(path.to_path_buf());
        Ok(())
    }
}

fn read_all(file: &mut File) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

fn digest(bytes: &[u8]) -> Version {
    let d = Md5::digest(bytes);
    Version(d.iter().map(|b| format!("{b:02x}")).collect())
}

#[async_trait]
impl Store for LocalStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn location(&self, workspace: &str) -> String {
        self.state_path(workspace).display().to_string()
    }

    fn locking_enabled(&self) -> bool {
        true
    }

    fn workspace_needs_state(&self) -> bool {
        false
    }

    /// The lock is an `fcntl` lock: it ends with the process holding it.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            locking: true,
            lock_outlives_process: false,
            workspaces: true,
        }
    }

    async fn workspaces(&self) -> Result<Vec<String>> {
        let mut out = vec![DEFAULT_WORKSPACE.to_string()];
        let entries = match std::fs::read_dir(&self.workspace_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(&self.workspace_dir, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != DEFAULT_WORKSPACE)
            .collect();
        names.sort();
        out.extend(names);
        Ok(out)
    }

    async fn create_workspace(&self, workspace: &str) -> Result<()> {
        validate_workspace_name(workspace)?;
        let dir = self.workspace_dir.join(workspace);
        if workspace == DEFAULT_WORKSPACE || dir.is_dir() {
            return Err(Error::AlreadyExists {
                what: format!("workspace {workspace:?}"),
            });
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))
    }

    async fn delete_workspace(&self, workspace: &str) -> Result<()> {
        crate::store::refuse_default_deletion(workspace)?;
        self.check_workspace(workspace)?;
        let dir = self.workspace_dir.join(workspace);
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))
    }

    async fn get(&self, workspace: &str) -> Result<Object> {
        self.check_workspace(workspace)?;
        let path = self.state_path(workspace);
        let existing = held().get(&path).map(|h| h.file.clone());
        let bytes = match existing {
            Some(file) => {
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                read_all(&mut file).map_err(|e| Error::io(&path, e))?
            }
            None => match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(Error::io(&path, e)),
            },
        };
        if bytes.is_empty() {
            return Err(Error::NotFound {
                what: format!("state {}", path.display()),
            });
        }
        Ok(Object {
            version: digest(&bytes),
            bytes: bytes.into(),
            version_id: None,
        })
    }

    async fn put(&self, workspace: &str, bytes: Bytes, mode: PutMode) -> Result<Version> {
        let bytes = &bytes[..];
        let path = self.state_path(workspace);
        self.with_locked_file(workspace, "state-push", |file| {
            let old = read_all(file).map_err(|e| Error::io(&path, e))?;
            match &mode {
                PutMode::Create if !old.is_empty() => {
                    return Err(Error::AlreadyExists {
                        what: format!("state {}", path.display()),
                    })
                }
                PutMode::Update(v) if old.is_empty() || digest(&old) != *v => {
                    return Err(Error::Precondition {
                        what: format!("state {}", path.display()),
                        message: "its content is not the version the write was based on".into(),
                    })
                }
                _ => {}
            }
            if !old.is_empty() && old != bytes {
                self.backup(&path, &old)?;
            }
            file.seek(SeekFrom::Start(0))
                .and_then(|_| file.set_len(0))
                .and_then(|_| file.write_all(bytes))
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::io(&path, e))?;
            Ok(digest(bytes))
        })
    }

    async fn lock(&self, workspace: &str, info: LockInfo) -> Result<LockInfo> {
        self.lock_sync(workspace, info)
    }

    async fn unlock(&self, workspace: &str, id: &str) -> Result<()> {
        self.unlock_sync(workspace, id)
    }

    async fn lock_holder(&self, workspace: &str) -> Result<Option<LockInfo>> {
        self.check_workspace(workspace)?;
        let path = self.state_path(workspace);
        if let Some(h) = held().get(&path) {
            return Ok(Some(h.info.clone()));
        }
        // Probe with a descriptor of our own: no lock of this process is on this file, so
        // closing it can't drop one.
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        if fcntl_lock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = fcntl_lock(&file, FlockOperation::NonBlockingUnlock);
            return Ok(None);
        }
        Ok(Some(self.read_sidecar(workspace).unwrap_or_else(|| {
            LockInfo {
                id: String::new(),
                operation: String::new(),
                info: "held, but the lock info file is missing".into(),
                who: String::new(),
                version: String::new(),
                created: crate::lock_info::GoTime::ZERO,
                path: path.display().to_string(),
            }
        })))
    }

    async fn versions(&self, _workspace: &str) -> Result<Vec<VersionInfo>> {
        Err(Error::Unsupported(
            "the local backend keeps no versions (only terraform.tfstate.backup)".into(),
        ))
    }

    async fn get_version(&self, workspace: &str, _version_id: &str) -> Result<Object> {
        self.versions(workspace).await.map(|_| unreachable!())
    }
}
