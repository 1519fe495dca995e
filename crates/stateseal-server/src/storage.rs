//! Where the server keeps states, versions and locks: one [`Storage`] trait, implemented by the
//! embedded data directory ([`crate::data_dir::DataDir`]) and by an S3 bucket
//! ([`crate::s3::S3Storage`], `storage "s3" { … }`). The protocol and the versions API go
//! through it and nothing else.
//!
//! Writes are optimistic: a handler reads the live version (with its [`Live::token`]), decides,
//! and [`Storage::append`]s on the condition that the live version is still that one; when
//! another writer got there first ([`Error::Changed`]) it reads and decides again. So no
//! storage keeps a "current version" that another server instance could make stale: the data
//! directory is owned by one process (it holds the directory's lock), and on S3 every decision
//! starts from what the bucket holds (conditional writes on the ETag; the DynamoDB item and
//! the `.tflock` object are the lock holder).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stateseal_store::LockInfo;

use crate::state_path::StatePath;

/// How a version's bytes relate to what the client sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    /// The client sent plaintext; the server stored it encrypted (and decrypts it on GET).
    ServerEncrypted,
    /// The client sent an envelope; stored byte for byte.
    ClientEnvelope,
    /// Plaintext stored as is (no encryption configured).
    Plaintext,
    /// An envelope written to the bucket directly, not through the server (an OpenTofu with
    /// `backend "s3"` on the same key): served decrypted when the server's own configuration
    /// opens it (that OpenTofu shares the server's encryption), else as it is (a client's).
    DirectEnvelope,
    /// A deletion (no bytes).
    Deleted,
}

impl Stored {
    /// The name in records and S3 metadata (`server_encrypted`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Stored::ServerEncrypted => "server_encrypted",
            Stored::ClientEnvelope => "client_envelope",
            Stored::Plaintext => "plaintext",
            Stored::DirectEnvelope => "direct_envelope",
            Stored::Deleted => "deleted",
        }
    }

    /// True when the stored bytes are an envelope (encrypted by the server or a client).
    pub fn is_envelope(self) -> bool {
        matches!(
            self,
            Stored::ServerEncrypted | Stored::ClientEnvelope | Stored::DirectEnvelope
        )
    }

    pub fn parse(s: &str) -> Option<Stored> {
        [
            Stored::ServerEncrypted,
            Stored::ClientEnvelope,
            Stored::Plaintext,
            Stored::DirectEnvelope,
            Stored::Deleted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The record of one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// 1 for the oldest kept version, counting up.
    pub seq: u64,
    pub serial: u64,
    pub lineage: String,
    /// Size of the bytes the client sent.
    pub size: u64,
    /// RFC 3339, UTC.
    pub time: String,
    /// The lock holder's `Who` (or the authenticated user) that wrote it; may be empty.
    pub who: String,
    pub stored: Stored,
    /// Lowercase hex SHA-256 of the bytes the client sent (for idempotent retries).
    pub sha256: String,
    /// The S3 object version, on S3 storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// The live (newest, not deleted) version of a state and what names it for a conditional
/// [`Storage::append`].
#[derive(Clone, Debug)]
pub struct Live {
    pub record: VersionRecord,
    /// Data directory: the version number; S3: the object's ETag.
    pub token: String,
}

/// The outcome of [`Storage::lock`].
#[derive(Clone, Debug)]
pub enum Taken {
    /// Taken (or already held with the same ID): the record as stored.
    Yes(LockInfo),
    /// Held by someone else.
    HeldBy(LockInfo),
}

/// The outcome of [`Storage::unlock`].
#[derive(Clone, Debug)]
pub enum Released {
    Yes,
    NotLocked,
    /// Held with another ID: nothing was released.
    HeldBy(LockInfo),
}

/// A file operation of the embedded storage ([`crate::data_dir`]) that failed, with the file
/// it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct FileError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Files(#[from] FileError),
    #[error(transparent)]
    S3(#[from] stateseal_store::Error),
    /// A conditional append found another live version (another writer was first).
    #[error("the state changed while it was being written")]
    Changed,
}

pub type Result<T> = std::result::Result<T, Error>;

/// The start of the lock ID under which an unreadable lock record is reported
/// ([`unreadable_lock`]); no client may take a lock with such an ID.
pub const UNREADABLE_LOCK_PREFIX: &str = "unreadable-lock-record-";

/// True for the ID of an unreadable lock record.
pub fn is_unreadable_lock_id(id: &str) -> bool {
    id.starts_with(UNREADABLE_LOCK_PREFIX)
}

/// How an unreadable lock record (not LockInfo JSON) is reported: as a holder whose ID names
/// the record's bytes (so clearing it — UNLOCK with this ID, or the console's force-unlock —
/// removes it only if it is unchanged) and whose `Info` says what happened. The state stays
/// readable and listed; writes get 423 until an admin clears the record.
pub fn unreadable_lock(bytes: &[u8]) -> LockInfo {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex = stateseal_core::hex::encode(&digest.as_ref()[..8]);
    LockInfo {
        id: format!("{UNREADABLE_LOCK_PREFIX}{hex}"),
        operation: "unreadable".into(),
        info: "the lock record stored on the server is not readable lock info; clear it (force-unlock with this ID, or the console's Force unlock) once no run holds the lock".into(),
        who: "(unreadable lock record)".into(),
        version: String::new(),
        created: stateseal_store::lock_info::GoTime::ZERO,
        path: String::new(),
    }
}

/// What the banner, `/healthz` and `/metrics` say about the storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `data_dir` or `s3`.
    pub kind: &'static str,
    /// A directory, or `s3://bucket`.
    pub location: String,
    /// Locking and versioning, in words.
    pub details: String,
}

impl Summary {
    /// What unauthenticated endpoints (`/healthz`, `/metrics`) may show: a data directory's
    /// location is not shown (it is a server file path); a bucket is.
    pub fn public(self) -> Summary {
        match self.kind {
            "data_dir" => Summary {
                location: "(not shown)".into(),
                ..self
            },
            _ => self,
        }
    }
}

/// Which part of a listing to answer: the states after `after` (by path), at most `limit`
/// of them (all when `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub after: Option<StatePath>,
    pub limit: Option<usize>,
}

/// One state as a listing shows it. A record that could not be read is its error (the listing
/// goes on without it).
#[derive(Debug)]
pub struct StateSummary {
    pub path: StatePath,
    /// The live version's record (`None`: deleted).
    pub current: Result<Option<VersionRecord>>,
    pub lock: Result<Option<LockInfo>>,
    /// The key providers the live version's envelope names, when the storage read its bytes
    /// for the listing (`None`: not read; ask [`Storage::version`]).
    pub providers: Option<Arc<[String]>>,
}

/// A page of a listing.
#[derive(Debug, Default)]
pub struct StateSummaries {
    pub states: Vec<StateSummary>,
    /// More states follow the last one.
    pub truncated: bool,
}

/// Decides whether a listing shows a state (the caller's read grants).
pub type Visible<'a> = &'a (dyn Fn(&StatePath) -> bool + Send + Sync);

/// The paths of a page: those after `page.after` that `visible` lets through, at most
/// `page.limit`, and whether more follow. `paths` is sorted.
pub fn page_of(paths: Vec<StatePath>, page: &Page, visible: Visible<'_>) -> (Vec<StatePath>, bool) {
    let mut shown = paths
        .into_iter()
        .filter(|p| page.after.as_ref().is_none_or(|a| p > a))
        .filter(|p| visible(p));
    let Some(limit) = page.limit else {
        return (shown.collect(), false);
    };
    let out: Vec<StatePath> = shown.by_ref().take(limit).collect();
    let more = shown.next().is_some();
    (out, more)
}

/// Where states, versions and locks are kept.
#[async_trait]
pub trait Storage: Send + Sync + Debug {
    fn summary(&self) -> Summary;

    /// The states whose path starts with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<StatePath>>;

    /// A page of the states under `prefix` that `visible` lets through, each with its live
    /// record and lock holder. By default: [`Storage::list`], then [`Storage::live`] and
    /// [`Storage::lock_holder`] of each state of the page; a storage where that costs a request
    /// per state answers it in bulk.
    async fn listing(
        &self,
        prefix: &str,
        page: &Page,
        visible: Visible<'_>,
    ) -> Result<StateSummaries> {
        let (paths, truncated) = page_of(self.list(prefix).await?, page, visible);
        let mut states = Vec::with_capacity(paths.len());
        for path in paths {
            states.push(StateSummary {
                current: self.live(&path).await.map(|l| l.map(|l| l.record)),
                lock: self.lock_holder(&path).await,
                providers: None,
                path,
            });
        }
        Ok(StateSummaries { states, truncated })
    }

    /// The live version's record, `None` when nothing is stored (or it was deleted).
    async fn live(&self, path: &StatePath) -> Result<Option<Live>>;

    /// The live version's record and stored bytes (an envelope when encrypted at rest).
    async fn read_live(&self, path: &StatePath) -> Result<Option<(VersionRecord, Bytes)>>;

    /// Stores a new version (`record.stored == Deleted`: deletes the state), on the condition
    /// that the live version is still `expected` ([`Live::token`]; `None`: nothing live), else
    /// [`Error::Changed`]. Returns once the write is durable.
    async fn append(
        &self,
        path: &StatePath,
        expected: Option<&str>,
        record: VersionRecord,
        bytes: Bytes,
    ) -> Result<()>;

    /// Every kept version, newest first.
    async fn versions(&self, path: &StatePath) -> Result<Vec<VersionRecord>>;

    /// Version `seq`'s record and stored bytes (`None`: no such version).
    async fn version(&self, path: &StatePath, seq: u64) -> Result<Option<(VersionRecord, Bytes)>>;

    /// The lock holder.
    async fn lock_holder(&self, path: &StatePath) -> Result<Option<LockInfo>>;

    /// Takes the lock, unless someone else holds it.
    async fn lock(&self, path: &StatePath, info: LockInfo) -> Result<Taken>;

    /// Releases the lock if its holder's ID is `id`.
    async fn unlock(&self, path: &StatePath, id: &str) -> Result<Released>;

    /// Time spent waiting for other operations on the same state (seconds, waits), for
    /// storages that serialize operations on a state.
    fn waits(&self) -> (f64, u64) {
        (0.0, 0)
    }
}
