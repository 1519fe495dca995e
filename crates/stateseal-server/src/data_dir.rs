//! The embedded storage: a data directory of plain files, one directory per state, every
//! acknowledged version kept.
//!
//! ```text
//! <data-dir>/.lock                                 held (flock) by the serving process
//! <data-dir>/states/<seg>/<seg>/@/lock.json        the lock holder (LockInfo JSON), if held
//! <data-dir>/states/<seg>/<seg>/@/v/<seq>.bin      version <seq>: the stored bytes (an envelope
//!                                                  when encryption is on)
//! <data-dir>/states/<seg>/<seg>/@/v/<seq>.json     its record: serial, lineage, size, time, who…
//! ```
//!
//! Segments are percent-encoded ([`StatePath::encoded_segments`]); `@` is always encoded, so
//! the `@` directory never collides with a state's sub-path. `<seq>` is a zero-padded counter.
//!
//! Why files and not an embedded database: a version is one immutable file that `stateseal`,
//! `cat` or a backup tool reads directly; durability rests on the one well-known recipe
//! (write a temporary file, fsync it, rename it into place, fsync the directory) instead of a
//! database's own journal and compaction; and there is no extra dependency or file format to
//! migrate. The price — a directory scan to find the newest version — is paid once per state
//! per process, after which the newest record is kept in memory.
//!
//! Crash safety: a version's data file and its record are each written to a temporary file and
//! fsynced, both renamed into place, and the directory fsynced; only then is the write
//! acknowledged. A version counts only when both files are there, so after `kill -9` (or a
//! power loss before the directory fsync) a version with one of the two is an unacknowledged
//! write: it is ignored, and its number is never reused. No file is ever modified in place.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use stateseal_store::LockInfo;

use crate::state_path::StatePath;
use crate::storage::FileError;
use crate::storage::{self, Live, Released, Storage, Summary, Taken};

/// Most state slots kept in memory; beyond it, the slots not in use are dropped (they are a
/// cache of what is on disk, read again when needed).
pub const MAX_CACHED_SLOTS: usize = 4096;
pub use crate::storage::{Stored, VersionRecord};

/// One state's files and what is known of them. Every operation on a state runs with its slot
/// locked, so operations on one state are serialized.
#[derive(Debug)]
pub struct Slot {
    dir: PathBuf,
    loaded: bool,
    current: Option<VersionRecord>,
    next_seq: u64,
    lock: Option<LockInfo>,
}

/// A data directory.
pub struct DataDir {
    root: PathBuf,
    slots: Mutex<HashMap<StatePath, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Holds the directory's exclusive flock for the life of the server.
    _owner: File,
    /// Waits for a state's slot: total nanoseconds, count.
    wait_nanos: AtomicU64,
    waits: AtomicU64,
}

impl std::fmt::Debug for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataDir").field("root", &self.root).finish()
    }
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.display().to_string(),
        source,
    }
}

pub type Result<T> = std::result::Result<T, FileError>;

impl DataDir {
    /// Opens (creating) a data directory and takes its exclusive lock, so two servers never
    /// write the same directory.
    pub fn open(root: &Path) -> Result<DataDir> {
        fs::create_dir_all(root.join("states")).map_err(at(root))?;
        let lock_path = root.join(".lock");
        let owner = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(at(&lock_path))?;
        rustix::fs::flock(&owner, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |e| FileError {
                path: lock_path.display().to_string(),
                source: io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("the data directory is in use by another stateseal server ({e})"),
                ),
            },
        )?;
        Ok(DataDir {
            root: root.to_path_buf(),
            slots: Mutex::default(),
            _owner: owner,
            wait_nanos: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The state's slot, locked (waits for other operations on the same state).
    pub async fn slot(&self, path: &StatePath) -> tokio::sync::OwnedMutexGuard<Slot> {
        let waiting = std::time::Instant::now();
        let guard = self.unlocked_slot(path).lock_owned().await;
        self.count_wait(waiting);
        guard
    }

    /// Slots cached now (for tests: the cache is bounded).
    pub fn cached_slots(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn count_wait(&self, waiting: std::time::Instant) {
        self.wait_nanos.fetch_add(
            u64::try_from(waiting.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.waits.fetch_add(1, Ordering::Relaxed);
    }

    fn unlocked_slot(&self, path: &StatePath) -> Arc<tokio::sync::Mutex<Slot>> {
        {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if slots.len() >= MAX_CACHED_SLOTS && !slots.contains_key(path) {
                // Slots nobody is using now are only a cache of what is on disk.
                slots.retain(|_, slot| Arc::strong_count(slot) > 1);
            }
            slots
                .entry(path.clone())
                .or_insert_with(|| {
                    let mut dir = self.root.join("states");
                    for seg in path.encoded_segments() {
                        dir.push(seg);
                    }
                    dir.push("@");
                    Arc::new(tokio::sync::Mutex::new(Slot {
                        dir,
                        loaded: false,
                        current: None,
                        next_seq: 1,
                        lock: None,
                    }))
                })
                .clone()
        }
    }

    /// Runs `op` on the state's slot: locked (operations on one state are serialized), loaded,
    /// and on the blocking pool (files are fsynced).
    pub async fn with_slot<T: Send + 'static>(
        &self,
        path: &StatePath,
        op: impl FnOnce(&mut Slot) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let waiting = std::time::Instant::now();
        let slot = self.unlocked_slot(path);
        let guard = slot.clone().lock_owned().await;
        self.count_wait(waiting);
        let done = tokio::task::spawn_blocking(move || {
            let mut slot = guard;
            let result = slot.load().and_then(|()| op(&mut slot));
            (result, slot)
        })
        .await;
        let (result, guard) = match done {
            Ok(d) => d,
            Err(e) => {
                return Err(FileError {
                    path: "(a storage task)".into(),
                    source: io::Error::other(e.to_string()),
                })
            }
        };
        if guard.is_empty() {
            // Nothing is stored for this path: keep nothing for it either, unless another
            // operation is waiting for the slot (the map, `slot` and the guard hold the others).
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if Arc::strong_count(&slot) == 3 {
                slots.remove(path);
            }
        }
        drop(guard);
        result
    }
}

#[async_trait]
impl Storage for DataDir {
    fn summary(&self) -> Summary {
        let root = fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        Summary {
            kind: "data_dir",
            location: root.display().to_string(),
            details: "embedded data directory; every version kept; locks in lock.json".into(),
        }
    }

    async fn list(&self, prefix: &str) -> storage::Result<Vec<StatePath>> {
        let (root, prefix) = (self.root.clone(), prefix.to_string());
        let listed = tokio::task::spawn_blocking(move || list_states(&root, &prefix)).await;
        listed
            .unwrap_or_else(|e| {
                Err(FileError {
                    path: "(listing states)".into(),
                    source: io::Error::other(e.to_string()),
                })
            })
            .map_err(Into::into)
    }

    async fn live(&self, path: &StatePath) -> storage::Result<Option<Live>> {
        Ok(self
            .with_slot(path, |slot| {
                Ok(slot.live().map(|r| Live {
                    record: r.clone(),
                    token: r.seq.to_string(),
                }))
            })
            .await?)
    }

    async fn read_live(&self, path: &StatePath) -> storage::Result<Option<(VersionRecord, Bytes)>> {
        Ok(self
            .with_slot(path, |slot| match slot.live().cloned() {
                Some(r) => Ok(Some((r.clone(), Bytes::from(slot.data(r.seq)?)))),
                None => Ok(None),
            })
            .await?)
    }

    async fn append(
        &self,
        path: &StatePath,
        expected: Option<&str>,
        record: VersionRecord,
        bytes: Bytes,
    ) -> storage::Result<()> {
        let expected = expected.map(str::to_string);
        self.with_slot(path, move |slot| {
            if slot.live().map(|r| r.seq.to_string()) != expected {
                return Ok(Err(storage::Error::Changed));
            }
            slot.append(record, &bytes).map(|_| Ok(()))
        })
        .await?
    }

    async fn versions(&self, path: &StatePath) -> storage::Result<Vec<VersionRecord>> {
        Ok(self.with_slot(path, |slot| slot.versions()).await?)
    }

    async fn version(
        &self,
        path: &StatePath,
        seq: u64,
    ) -> storage::Result<Option<(VersionRecord, Bytes)>> {
        Ok(self
            .with_slot(path, move |slot| {
                let newest = slot.current().map_or(0, |c| c.seq);
                if seq == 0 || seq > newest {
                    return Ok(None);
                }
                let Ok(record) = slot.record(seq) else {
                    return Ok(None);
                };
                let bytes = if record.stored == Stored::Deleted {
                    Bytes::new()
                } else {
                    Bytes::from(slot.data(seq)?)
                };
                Ok(Some((record, bytes)))
            })
            .await?)
    }

    async fn lock_holder(&self, path: &StatePath) -> storage::Result<Option<LockInfo>> {
        Ok(self
            .with_slot(path, |slot| Ok(slot.lock_holder().cloned()))
            .await?)
    }

    async fn lock(&self, path: &StatePath, info: LockInfo) -> storage::Result<Taken> {
        Ok(self
            .with_slot(path, move |slot| match slot.lock_holder() {
                // A retried LOCK whose first 200 was lost.
                Some(h) if h.id == info.id => Ok(Taken::Yes(h.clone())),
                Some(h) => Ok(Taken::HeldBy(h.clone())),
                None => {
                    slot.set_lock(info.clone())?;
                    Ok(Taken::Yes(info))
                }
            })
            .await?)
    }

    async fn unlock(&self, path: &StatePath, id: &str) -> storage::Result<Released> {
        let id = id.to_string();
        Ok(self
            .with_slot(path, move |slot| {
                if storage::is_unreadable_lock_id(&id) {
                    // Cleared only if the record on disk is still the one this ID names.
                    slot.lock = slot.read_lock_record()?;
                }
                match slot.lock_holder() {
                    None => Ok(Released::NotLocked),
                    Some(h) if h.id != id => Ok(Released::HeldBy(h.clone())),
                    Some(_) => {
                        slot.clear_lock()?;
                        Ok(Released::Yes)
                    }
                }
            })
            .await?)
    }

    fn waits(&self) -> (f64, u64) {
        (
            self.wait_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            self.waits.load(Ordering::Relaxed),
        )
    }
}

impl Slot {
    /// Reads the lock and finds the newest committed version (blocking; once per process).
    pub fn load(&mut self) -> Result<()> {
        if self.loaded {
            return Ok(());
        }
        self.lock = self.read_lock_record()?;
        let vdir = self.dir.join("v");
        let mut newest: Option<u64> = None;
        let mut highest_seen = 0;
        match fs::read_dir(&vdir) {
            Ok(entries) => {
                for e in entries {
                    let e = e.map_err(at(&vdir))?;
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    let Some((stem, ext)) = name.split_once('.') else {
                        continue;
                    };
                    let Ok(seq) = stem.parse::<u64>() else {
                        continue;
                    };
                    highest_seen = highest_seen.max(seq);
                    if ext == "json" && vdir.join(format!("{stem}.bin")).exists() {
                        newest = newest.max(Some(seq));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(&vdir)(e)),
        }
        self.current = match newest {
            Some(seq) => Some(self.record(seq)?),
            None => None,
        };
        // A data file left by a crashed write is never reused as a number.
        self.next_seq = highest_seen.saturating_add(1);
        self.loaded = true;
        Ok(())
    }

    /// True when nothing is stored for this state (no version, no lock record).
    pub fn is_empty(&self) -> bool {
        self.current.is_none() && self.lock.is_none()
    }

    /// The newest version's record (a deletion included).
    pub fn current(&self) -> Option<&VersionRecord> {
        self.current.as_ref()
    }

    /// The newest version unless it is a deletion: what GET answers.
    pub fn live(&self) -> Option<&VersionRecord> {
        self.current
            .as_ref()
            .filter(|c| c.stored != Stored::Deleted)
    }

    /// The lock holder.
    pub fn lock_holder(&self) -> Option<&LockInfo> {
        self.lock.as_ref()
    }

    fn paths(&self, seq: u64) -> (PathBuf, PathBuf) {
        let v = self.dir.join("v");
        (
            v.join(format!("{seq:020}.bin")),
            v.join(format!("{seq:020}.json")),
        )
    }

    /// The record of version `seq`.
    pub fn record(&self, seq: u64) -> Result<VersionRecord> {
        let (_, meta) = self.paths(seq);
        let bytes = fs::read(&meta).map_err(at(&meta))?;
        serde_json::from_slice(&bytes).map_err(|e| FileError {
            path: meta.display().to_string(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    /// The stored bytes of version `seq`.
    pub fn data(&self, seq: u64) -> Result<Vec<u8>> {
        let (data, _) = self.paths(seq);
        fs::read(&data).map_err(at(&data))
    }

    /// Every committed version, newest first.
    pub fn versions(&self) -> Result<Vec<VersionRecord>> {
        let newest = self.current.as_ref().map_or(0, |c| c.seq);
        let mut out = Vec::new();
        for seq in (1..=newest).rev() {
            let (data, meta) = self.paths(seq);
            if meta.exists() && data.exists() {
                out.push(self.record(seq)?);
            }
        }
        Ok(out)
    }

    /// Stores a new version durably; returns once it is committed.
    pub fn append(&mut self, mut record: VersionRecord, bytes: &[u8]) -> Result<VersionRecord> {
        let vdir = self.dir.join("v");
        if self.next_seq == u64::MAX {
            return Err(FileError {
                path: vdir.display().to_string(),
                source: io::Error::other("no version number is left for this state"),
            });
        }
        create_dirs_durably(&vdir)?;
        record.seq = self.next_seq;
        let (data, meta) = self.paths(record.seq);
        let json = serde_json::to_vec(&record).expect("a record serializes");
        let data_tmp = write_temp_durably(&data, bytes)?;
        let meta_tmp = write_temp_durably(&meta, &json)?;
        fs::rename(&data_tmp, &data).map_err(at(&data))?;
        fs::rename(&meta_tmp, &meta).map_err(at(&meta))?;
        sync_dir(&vdir)?;
        self.next_seq += 1;
        self.current = Some(record.clone());
        Ok(record)
    }

    /// The lock record on disk: its holder, or (not LockInfo JSON) the holder that reports it as
    /// unreadable ([`storage::unreadable_lock`]).
    fn read_lock_record(&self) -> Result<Option<LockInfo>> {
        let lock_path = self.dir.join("lock.json");
        match fs::read(&lock_path) {
            Ok(b) => Ok(Some(LockInfo::parse(&b).unwrap_or_else(|e| {
                tracing::warn!(error = %e, state_dir = %self.dir.display(), "a lock record is not readable lock info; it is reported as an unreadable lock until an admin clears it");
                storage::unreadable_lock(&b)
            }))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(at(&lock_path)(e)),
        }
    }

    /// Records the lock holder durably.
    pub fn set_lock(&mut self, info: LockInfo) -> Result<()> {
        create_dirs_durably(&self.dir)?;
        let path = self.dir.join("lock.json");
        write_file_durably(&path, info.to_json().as_bytes())?;
        sync_dir(&self.dir)?;
        self.lock = Some(info);
        Ok(())
    }

    /// Removes the lock record durably.
    pub fn clear_lock(&mut self) -> Result<()> {
        let path = self.dir.join("lock.json");
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(&path)(e)),
        }
        self.lock = None;
        Ok(())
    }
}

/// The states that have files under `root`, whose path starts with `prefix`, sorted (blocking).
fn list_states(root: &Path, prefix: &str) -> Result<Vec<StatePath>> {
    fn walk(dir: &Path, rel: &mut Vec<String>, out: &mut Vec<StatePath>) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(at(dir)(e)),
        };
        for e in entries {
            let e = e.map_err(at(dir))?;
            if !e.file_type().map_err(at(dir))?.is_dir() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "@" {
                if let Ok(p) = StatePath::parse(&rel.join("/")) {
                    out.push(p);
                }
            } else {
                rel.push(name);
                walk(&e.path(), rel, out)?;
                rel.pop();
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(&root.join("states"), &mut Vec::new(), &mut out)?;
    out.retain(|p| p.as_str().starts_with(prefix));
    out.sort();
    Ok(out)
}

/// Writes `bytes` to a temporary file next to `path`, fsyncs it and renames it over `path`.
/// (The caller fsyncs the directory.)
fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temp_durably(path, bytes)?;
    fs::rename(&tmp, path).map_err(at(path))
}

/// Writes `bytes` to a temporary file next to `path` and fsyncs it; returns its name.
fn write_temp_durably(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".tmp-{}", name.unwrap_or_default()));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(at(&tmp))?;
    f.write_all(bytes).map_err(at(&tmp))?;
    f.sync_all().map_err(at(&tmp))?;
    Ok(tmp)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// `mkdir -p`, fsyncing each parent of a directory it created, so the new entries survive a
/// crash.
fn create_dirs_durably(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.is_dir() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    fs::create_dir_all(dir).map_err(at(dir))?;
    for d in missing.iter().rev() {
        if let Some(parent) = d.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}
