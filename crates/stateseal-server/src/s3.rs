//! `storage "s3" { … }`: states in an S3 bucket, laid out exactly as OpenTofu's and Terraform's
//! `backend "s3" { key = "<path>" }` lays them out, so they share states and locks with the
//! server:
//!
//! * the state at `/state/<path>` is the object `<path>`;
//! * its lock is the DynamoDB item `LockID = "<bucket>/<path>"` and/or the object
//!   `<path>.tflock` (whichever of `dynamodb_table` and `use_lockfile` is configured; both,
//!   as OpenTofu takes them, when both are); its digest is the item `"<bucket>/<path>-md5"`;
//! * versions are the bucket's object versions (versioning must be on), numbered from the
//!   oldest (1) up; each version the server writes carries its record (serial, lineage,
//!   size, who, time, how it was stored, SHA-256 of what the client sent) as user metadata
//!   (`x-amz-meta-stateseal-*`). A version written by Terraform or OpenTofu directly has no
//!   such metadata: its serial and lineage are read from the object itself, and an envelope
//!   written so is served decrypted when the server's own encryption opens it (an OpenTofu
//!   sharing the server's configuration), else as it is;
//! * a deletion is an empty version with its record (Terraform and OpenTofu read an empty
//!   object as no state), and the `-md5` digest item is removed.
//!
//! Nothing a decision rests on is cached between requests: several server instances on one
//! bucket are safe. A write is a `PutObject` with `If-Match` on the ETag of the version it was
//! decided on (or `If-None-Match: *` when there was none), and the lock holder is always read
//! from DynamoDB and the lock file. A listing ([`Storage::listing`]) is one ListObjectsV2, one
//! Scan of the lock table, and a read only of the objects whose key, ETag and time are not in
//! a bounded cache of what earlier listings read ([`ReadCache`]): the bucket's listing decides
//! what is stale, whoever wrote it. A state written by Terraform or OpenTofu directly is listed
//! with the object's time as its last write. Every S3 call goes through the store crate's [`S3Store`] (one per state,
//! from [`S3Store::for_key`]), so SSE, ACLs, tags, checksums and the digest item follow the
//! same settings as `stateseal`'s own `backend "s3"`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use stateseal_store::s3::{
    ListedObject, LockRecord, LockSource, Metadata, S3Config, S3Store, Versioning,
};
use stateseal_store::{
    Error as StoreError, LockInfo, Object, PutMode, Store, Version, DEFAULT_WORKSPACE,
};

use crate::at_rest::{key_providers, Incoming};
use crate::read_cache::ReadCache;
use crate::state_path::{percent_decode, percent_encode, StatePath};
use crate::storage::{
    Error, Live, Page, Released, Result, StateSummaries, StateSummary, Storage, Stored, Summary,
    Taken, VersionRecord, Visible,
};

/// How often a LOCK is tried again when it was refused but the holder was gone by the time it
/// was looked up.
const LOCK_ATTEMPTS: usize = 5;

/// The prefix of the server's user-metadata names.
const META: &str = "stateseal-";

/// How many states' reads a listing remembers (see [`ReadCache`]): a fleet of this many
/// states lists warm with no read.
const STATES_REMEMBERED: usize = 50_000;

/// How many lock files' contents a listing remembers.
const LOCK_FILES_REMEMBERED: usize = 10_000;

/// How many objects a listing reads at once when they are not remembered.
const READS_AT_ONCE: usize = 16;

/// A GetObject's outcome: the object and its user metadata, `None` when absent or empty.
type ObjectRead = Result<Option<(Object, Metadata)>>;

/// What a listing read from a state's object.
#[derive(Debug)]
struct ReadState {
    record: VersionRecord,
    /// The key providers its envelope names (empty when it is not one).
    providers: Arc<[String]>,
}

/// States in an S3 bucket.
#[derive(Debug)]
pub struct S3Storage {
    /// Connected with an empty key: [`S3Store::for_key`] addresses each state.
    store: S3Store,
    details: String,
    /// What listings read from state objects, by key and ETag.
    states_read: ReadCache<ReadState>,
    /// What listings read from lock files, by key and ETag.
    lock_files_read: ReadCache<Bytes>,
}

/// Why `storage "s3"` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum S3StartError {
    /// Neither `dynamodb_table` nor `use_lockfile`: writes could not be serialized.
    #[error("storage \"s3\": no lock is configured: set use_lockfile = true and/or dynamodb_table, the same as your Terraform and OpenTofu backend \"s3\" blocks use")]
    NoLock,
    /// The bucket does not keep versions (`versioning`: "off" or "Suspended").
    #[error("storage \"s3\": versioning is {versioning} on bucket {bucket}: the server keeps every version as an object version, so it must be Enabled (aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled)")]
    VersioningOff {
        bucket: String,
        versioning: &'static str,
    },
    /// Connecting or asking the bucket failed (settings, credentials or the service).
    #[error("storage \"s3\": {0}")]
    Store(#[from] stateseal_store::Error),
}

impl S3Storage {
    /// Connects, and checks that the bucket keeps versions and that a lock is configured.
    pub async fn connect(cfg: S3Config) -> std::result::Result<S3Storage, S3StartError> {
        let locks = match (&cfg.dynamodb_table, cfg.use_lockfile) {
            (Some(t), true) => format!("locks in DynamoDB table {t} and <path>.tflock objects"),
            (Some(t), false) => format!("locks in DynamoDB table {t}"),
            (None, true) => "locks in <path>.tflock objects".to_string(),
            (None, false) => return Err(S3StartError::NoLock),
        };
        let bucket = cfg.bucket.clone();
        let mut store = S3Store::connect(cfg).await?;
        // Another instance may be between writing an object and its digest: look again soon.
        store.consistency_delay = Duration::from_millis(100);
        let versioning = store.versioning().await?;
        if versioning != Versioning::Enabled {
            let versioning = match versioning {
                Versioning::Disabled => "off",
                v => v.name(),
            };
            return Err(S3StartError::VersioningOff { bucket, versioning });
        }
        Ok(S3Storage {
            store,
            details: format!(
                "/state/<path> is the object <path>; {locks}; every version kept (bucket versioning Enabled)"
            ),
            states_read: ReadCache::new(STATES_REMEMBERED),
            lock_files_read: ReadCache::new(LOCK_FILES_REMEMBERED),
        })
    }

    /// The objects of a listing's page: the states under `prefix` after `page.after` that
    /// `visible` lets through (at most `page.limit`, and whether more follow), and the lock
    /// files among the listed keys by state. With a limit, the listing goes on until every
    /// lock file of the page's states would have been listed (`<key>.tflock` may sort after
    /// keys that follow `<key>`).
    async fn listed_page(
        &self,
        prefix: &str,
        page: &Page,
        visible: Visible<'_>,
    ) -> Result<(
        Vec<(StatePath, ListedObject)>,
        HashMap<String, ListedObject>,
        bool,
    )> {
        let lock_files_used = self.store.locks_with(LockSource::Lockfile);
        let after = page.after.as_ref().map(|p| p.as_str());
        let mut states: Vec<(StatePath, ListedObject)> = Vec::new();
        let mut lock_files = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let listed = self
                .store
                .list_objects(prefix, after, token.as_deref())
                .await?;
            let last_key = listed.objects.last().map(|o| o.key.clone());
            for o in listed.objects {
                if let Some(state) = o.key.strip_suffix(".tflock") {
                    lock_files.insert(state.to_string(), o);
                    continue;
                }
                // Only keys that are their state's path exactly (the object a state's
                // requests address).
                let Ok(path) = StatePath::parse(&o.key) else {
                    continue;
                };
                if path.as_str() == o.key && path.as_str().starts_with(prefix) && visible(&path) {
                    states.push((path, o));
                }
            }
            token = listed.next;
            let Some(limit) = page.limit.filter(|l| states.len() > *l) else {
                if token.is_none() {
                    break;
                }
                continue;
            };
            let last_lock_file = states[..limit]
                .iter()
                .map(|(p, _)| format!("{}.tflock", p.as_str()))
                .max();
            let past_lock_files = match (lock_files_used, last_lock_file, last_key) {
                (false, _, _) | (_, None, _) => true,
                (true, Some(bound), Some(last)) => last >= bound,
                (true, Some(_), None) => false,
            };
            if past_lock_files || token.is_none() {
                break;
            }
        }
        let truncated = page.limit.is_some_and(|l| states.len() > l);
        if let Some(limit) = page.limit {
            states.truncate(limit);
        }
        Ok((states, lock_files, truncated))
    }

    /// GetObject of each key (the current versions), at most [`READS_AT_ONCE`] at a time, in
    /// the order given.
    async fn read_all(&self, keys: Vec<String>) -> Vec<ObjectRead> {
        let gate = Arc::new(tokio::sync::Semaphore::new(READS_AT_ONCE));
        let mut reads = tokio::task::JoinSet::new();
        let n = keys.len();
        for (i, key) in keys.into_iter().enumerate() {
            let (store, gate) = (self.store.clone(), gate.clone());
            reads.spawn(async move {
                let _turn = gate.acquire_owned().await;
                (i, store.object(&key, None).await.map_err(Error::from))
            });
        }
        let mut out: Vec<Option<ObjectRead>> = std::iter::repeat_with(|| None).take(n).collect();
        while let Some(done) = reads.join_next().await {
            match done {
                Ok((i, r)) => out[i] = Some(r),
                Err(e) => tracing::error!(error = %e, "listing: a read task failed"),
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Error::S3(StoreError::Unsupported(
                        "the read did not finish".into(),
                    )))
                })
            })
            .collect()
    }

    fn at(&self, path: &StatePath) -> S3Store {
        self.store.for_key(path.as_str())
    }

    /// The record of one stored object (`version_id` when known).
    fn record(
        bytes: &[u8],
        metadata: &Metadata,
        version_id: Option<String>,
        last_modified: &str,
    ) -> VersionRecord {
        from_metadata(metadata, version_id.clone()).unwrap_or_else(|| {
            // Written by Terraform or OpenTofu directly: the object is what the client sent.
            let (serial, lineage, stored) = match Incoming::read(bytes) {
                Ok(i) if i.encrypted => (i.serial, i.lineage, Stored::DirectEnvelope),
                Ok(i) => (i.serial, i.lineage, Stored::Plaintext),
                Err(_) => (0, String::new(), Stored::Plaintext),
            };
            VersionRecord {
                seq: 0,
                serial,
                lineage,
                size: bytes.len() as u64,
                time: last_modified.to_string(),
                who: String::new(),
                stored,
                sha256: stateseal_core::hex::sha256_hex(bytes),
                version_id,
            }
        })
    }

    /// The state's object versions, newest first, with their numbers (oldest = 1).
    async fn listed(&self, path: &StatePath) -> Result<Vec<(u64, stateseal_store::VersionInfo)>> {
        let list = self.at(path).versions(DEFAULT_WORKSPACE).await?;
        let n = list.len() as u64;
        Ok(list
            .into_iter()
            .enumerate()
            .map(|(i, v)| (n - i as u64, v))
            .collect())
    }

    /// One version's record (and bytes, unless it is a delete marker).
    async fn one_version(
        &self,
        path: &StatePath,
        seq: u64,
        v: &stateseal_store::VersionInfo,
        with_bytes: bool,
    ) -> Result<Option<(VersionRecord, Bytes)>> {
        let key = path.as_str();
        if v.is_delete_marker {
            let record = VersionRecord {
                seq,
                serial: 0,
                lineage: String::new(),
                size: 0,
                time: v.last_modified.clone(),
                who: String::new(),
                stored: Stored::Deleted,
                sha256: stateseal_core::hex::sha256_hex(b""),
                version_id: Some(v.id.clone()),
            };
            return Ok(Some((record, Bytes::new())));
        }
        let recorded = self
            .store
            .head_version(key, Some(&v.id))
            .await?
            .and_then(|h| from_metadata(&h.metadata, Some(v.id.clone())));
        if let Some(mut r) = recorded.filter(|r| !with_bytes || r.stored == Stored::Deleted) {
            r.seq = seq;
            return Ok(Some((r, Bytes::new())));
        }
        let Some((obj, meta)) = self.store.object(key, Some(&v.id)).await? else {
            return Ok(None);
        };
        let mut r = S3Storage::record(&obj.bytes, &meta, Some(v.id.clone()), &v.last_modified);
        r.seq = seq;
        Ok(Some((r, obj.bytes)))
    }
}

/// The metadata the server writes with a version.
fn to_metadata(r: &VersionRecord) -> Metadata {
    [
        ("serial", r.serial.to_string()),
        ("lineage", percent_encode(&r.lineage)),
        ("size", r.size.to_string()),
        ("time", r.time.clone()),
        ("who", percent_encode(&r.who)),
        ("stored", r.stored.as_str().to_string()),
        ("sha256", r.sha256.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{META}{k}"), v))
    .collect()
}

/// A version's record from its metadata; `None` unless the server wrote it.
fn from_metadata(m: &Metadata, version_id: Option<String>) -> Option<VersionRecord> {
    let get = |k: &str| m.get(&format!("{META}{k}"));
    Some(VersionRecord {
        seq: 0,
        serial: get("serial")?.parse().ok()?,
        lineage: percent_decode(get("lineage")?)?,
        size: get("size")?.parse().ok()?,
        time: get("time")?.clone(),
        who: percent_decode(get("who")?)?,
        stored: Stored::parse(get("stored")?)?,
        sha256: get("sha256")?.clone(),
        version_id,
    })
}

#[async_trait]
impl Storage for S3Storage {
    fn summary(&self) -> Summary {
        Summary {
            kind: "s3",
            location: format!("s3://{}", self.store.config().bucket),
            details: self.details.clone(),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StatePath>> {
        let keys = self.store.list_keys(prefix).await?;
        let mut out: Vec<StatePath> = keys
            .iter()
            .filter(|k| !k.ends_with(".tflock"))
            .filter_map(|k| StatePath::parse(k).ok())
            .filter(|p| p.as_str().starts_with(prefix))
            .collect();
        out.sort();
        Ok(out)
    }

    /// One listing of the bucket (ListObjectsV2, all pages the page needs) and one Scan of
    /// the lock table; an object is read only when its key, ETag and time are not remembered
    /// from an earlier listing (by any instance: the bucket's listing decides), at most
    /// [`READS_AT_ONCE`] at a time. A deletion (an empty object) is not read; digests are not
    /// checked.
    async fn listing(
        &self,
        prefix: &str,
        page: &Page,
        visible: Visible<'_>,
    ) -> Result<StateSummaries> {
        let (states, lock_files, truncated) = self.listed_page(prefix, page, visible).await?;
        let mut items: HashMap<String, LockRecord> = self
            .store
            .lock_items(prefix)
            .await?
            .into_iter()
            .map(|r| (r.state.clone(), r))
            .collect();
        let identity = |o: &ListedObject| format!("{} {}", o.etag, o.last_modified);
        // What is remembered, looked up once: the states' objects, and the lock files of
        // states without a lock item (the item is the holder when there is one, as for a
        // lone state).
        let mut remembered_states: HashMap<String, Arc<ReadState>> = HashMap::new();
        let mut remembered_locks: HashMap<String, Bytes> = HashMap::new();
        let mut to_read = Vec::new();
        for (path, o) in &states {
            if o.size > 0 {
                match self.states_read.get(&o.key, &identity(o)) {
                    Some(r) => drop(remembered_states.insert(o.key.clone(), r)),
                    None => to_read.push(o.clone()),
                }
            }
            if let Some(f) = lock_files.get(path.as_str()) {
                if !items.contains_key(path.as_str()) {
                    match self.lock_files_read.get(&f.key, &identity(f)) {
                        Some(raw) => drop(remembered_locks.insert(f.key.clone(), (*raw).clone())),
                        None => to_read.push(f.clone()),
                    }
                }
            }
        }
        let keys = to_read.iter().map(|o| o.key.clone()).collect();
        let mut failed: HashMap<String, Error> = HashMap::new();
        for (o, read) in to_read.iter().zip(self.read_all(keys).await) {
            let (obj, meta) = match read {
                Ok(Some(r)) => r,
                // Removed (or emptied) since it was listed: a deleted state, a released lock.
                Ok(None) => continue,
                Err(e) => {
                    failed.insert(o.key.clone(), e);
                    continue;
                }
            };
            // Remembered only as listed: an object changed since is read again next time.
            let unchanged = obj.version.0 == o.etag;
            if o.key.ends_with(".tflock") {
                if unchanged {
                    let raw = Arc::new(obj.bytes.clone());
                    self.lock_files_read.put(&o.key, &identity(o), raw);
                }
                remembered_locks.insert(o.key.clone(), obj.bytes);
                continue;
            }
            let record = S3Storage::record(&obj.bytes, &meta, obj.version_id, &o.last_modified);
            let providers: Arc<[String]> = match record.stored.is_envelope() {
                true => key_providers(&obj.bytes).into(),
                false => Arc::from([]),
            };
            let read = Arc::new(ReadState { record, providers });
            if unchanged {
                self.states_read.put(&o.key, &identity(o), read.clone());
            }
            remembered_states.insert(o.key.clone(), read);
        }
        let mut out = Vec::with_capacity(states.len());
        for (path, o) in states {
            let (current, providers) = match failed.remove(&o.key) {
                Some(e) => (Err(e), None),
                None => match remembered_states.remove(&o.key) {
                    Some(r) => (Ok(Some(r.record.clone())), Some(r.providers.clone())),
                    None => (Ok(None), None),
                },
            };
            let lock = match (items.remove(path.as_str()), lock_files.get(path.as_str())) {
                (Some(item), _) => self.store.holder_of(&item).map(Some).map_err(Error::from),
                (None, None) => Ok(None),
                (None, Some(f)) => match (failed.remove(&f.key), remembered_locks.remove(&f.key)) {
                    (Some(e), _) => Err(e),
                    (None, Some(raw)) => {
                        let record = LockRecord::lock_file(path.as_str(), raw.to_vec(), &f.etag);
                        self.store.holder_of(&record).map(Some).map_err(Error::from)
                    }
                    (None, None) => Ok(None),
                },
            };
            out.push(StateSummary {
                path,
                current,
                lock,
                providers,
            });
        }
        Ok(StateSummaries {
            states: out,
            truncated,
        })
    }

    async fn live(&self, path: &StatePath) -> Result<Option<Live>> {
        let Some((obj, meta)) = self.at(path).get_with_metadata(DEFAULT_WORKSPACE).await? else {
            return Ok(None);
        };
        Ok(Some(Live {
            record: S3Storage::record(&obj.bytes, &meta, obj.version_id, ""),
            token: obj.version.0,
        }))
    }

    async fn read_live(&self, path: &StatePath) -> Result<Option<(VersionRecord, Bytes)>> {
        let Some((obj, meta)) = self.at(path).get_with_metadata(DEFAULT_WORKSPACE).await? else {
            return Ok(None);
        };
        let record = S3Storage::record(&obj.bytes, &meta, obj.version_id, "");
        Ok(Some((record, obj.bytes)))
    }

    async fn append(
        &self,
        path: &StatePath,
        expected: Option<&str>,
        record: VersionRecord,
        bytes: Bytes,
    ) -> Result<()> {
        let store = self.at(path);
        let mode = match expected {
            Some(etag) => PutMode::Update(Version(etag.to_string())),
            // Nothing live: no object, a delete marker, or an empty object (a deletion).
            None => match store.head_version(path.as_str(), None).await? {
                None => PutMode::Create,
                Some(h) if h.size == 0 => PutMode::Update(h.version),
                Some(_) => return Err(Error::Changed),
            },
        };
        // A deletion is an empty version carrying its record: Terraform and OpenTofu read an
        // empty object as no state, it is written on the same condition as any version, and
        // unlike a delete marker it keeps its exact place among the versions. Its digest item
        // is removed, as OpenTofu removes it when it deletes a state (a digest of nothing
        // would not match the nothing OpenTofu reads).
        let deleting = record.stored == Stored::Deleted;
        match store
            .put_with_metadata(DEFAULT_WORKSPACE, bytes, mode, &to_metadata(&record))
            .await
        {
            Ok(_) => {}
            Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
                return Err(Error::Changed)
            }
            Err(e) => return Err(e.into()),
        }
        if deleting {
            store.delete_digest(DEFAULT_WORKSPACE).await?;
        }
        Ok(())
    }

    async fn versions(&self, path: &StatePath) -> Result<Vec<VersionRecord>> {
        let mut out = Vec::new();
        for (seq, v) in self.listed(path).await? {
            if let Some((r, _)) = self.one_version(path, seq, &v, false).await? {
                out.push(r);
            }
        }
        // A delete marker (a deletion by Terraform or OpenTofu) shows the serial and lineage of
        // the state it deleted.
        for i in (0..out.len()).rev() {
            if out[i].stored == Stored::Deleted {
                if let Some(older) = out.get(i + 1).cloned() {
                    out[i].serial = older.serial;
                    out[i].lineage = older.lineage;
                }
            }
        }
        Ok(out)
    }

    async fn version(&self, path: &StatePath, seq: u64) -> Result<Option<(VersionRecord, Bytes)>> {
        let listed = self.listed(path).await?;
        match listed.iter().find(|(n, _)| *n == seq) {
            Some((n, v)) => self.one_version(path, *n, v, true).await,
            None => Ok(None),
        }
    }

    /// The DynamoDB item's holder when there is one, else the lock file's. DynamoDB first: a
    /// LOCK refused by the table may leave its lock file for a moment (it is taken first and
    /// removed again), and that passing record must not make the real holder's upload a 423.
    async fn lock_holder(&self, path: &StatePath) -> Result<Option<LockInfo>> {
        let store = self.at(path);
        for source in [LockSource::Dynamodb, LockSource::Lockfile] {
            if let Some(holder) = store.lock_holder_in(DEFAULT_WORKSPACE, source).await? {
                return Ok(Some(holder));
            }
        }
        Ok(None)
    }

    async fn lock(&self, path: &StatePath, info: LockInfo) -> Result<Taken> {
        let store = self.at(path);
        let mut attempts = 0;
        loop {
            // Stored as the client sent it (its Path too), as on the data directory.
            let failed = match store.lock_as_given(DEFAULT_WORKSPACE, info.clone()).await {
                Ok(stored) => return Ok(Taken::Yes(stored)),
                Err(StoreError::Locked { holder, .. }) => return Ok(Taken::HeldBy(*holder)),
                Err(e @ StoreError::LockFailed { .. }) => e,
                Err(e) => return Err(e.into()),
            };
            // Refused, but no holder was found: it released the lock in between. Try again.
            attempts += 1;
            match store.lock_holder(DEFAULT_WORKSPACE).await? {
                Some(h) => return Ok(Taken::HeldBy(h)),
                None if attempts < LOCK_ATTEMPTS => continue,
                None => return Err(failed.into()),
            }
        }
    }

    /// Releases the lock held with `id`. With a table, the table decides (as for
    /// [`Storage::lock_holder`]): its item is released first, and a lock file left by someone
    /// else's refused LOCK is not ours to judge or remove. Without one, the lock file decides.
    async fn unlock(&self, path: &StatePath, id: &str) -> Result<Released> {
        let store = self.at(path);
        let mut released = Released::NotLocked;
        if store.locks_with(LockSource::Dynamodb) {
            let unlocked = store
                .unlock_in(DEFAULT_WORKSPACE, id, LockSource::Dynamodb)
                .await;
            match released_by(unlocked)? {
                Some(held @ Released::HeldBy(_)) => return Ok(held),
                Some(r) => released = r,
                None => {}
            }
        }
        if store.locks_with(LockSource::Lockfile) {
            let unlocked = store
                .unlock_in(DEFAULT_WORKSPACE, id, LockSource::Lockfile)
                .await;
            match released_by(unlocked)? {
                Some(held @ Released::HeldBy(_)) if matches!(released, Released::NotLocked) => {
                    return Ok(held)
                }
                Some(Released::HeldBy(_)) | None => {}
                Some(r) => released = r,
            }
        }
        Ok(released)
    }
}

/// One lock mechanism's release: `None` when it was not locked.
fn released_by(result: stateseal_store::Result<()>) -> Result<Option<Released>> {
    match result {
        Ok(()) => Ok(Some(Released::Yes)),
        Err(StoreError::NotLocked { .. }) => Ok(None),
        Err(StoreError::LockMismatch { holder, .. }) => Ok(Some(Released::HeldBy(*holder))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_metadata() {
        let r = VersionRecord {
            seq: 0,
            serial: 7,
            lineage: "a b/ç%".into(),
            size: 12,
            time: "2026-11-30T05:00:00.123Z".into(),
            who: "ci@host (ü)".into(),
            stored: Stored::ServerEncrypted,
            sha256: "ab".repeat(32),
            version_id: Some("v1".into()),
        };
        let m = to_metadata(&r);
        assert!(m.values().all(|v| v.is_ascii()), "{m:?}");
        assert_eq!(from_metadata(&m, Some("v1".into())), Some(r));
        assert_eq!(from_metadata(&Metadata::new(), None), None);
    }
}
