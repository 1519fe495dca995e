//! The S3 backend, compatible with OpenTofu's and Terraform's `backend "s3"`:
//!
//! * `builder`: configuration from the `backend "s3"` block, `--backend-config` and the
//!   environment ([`S3Builder`], [`S3Config`]);
//! * the AWS SDK configuration (credentials, roles, retries, TLS) and the service clients come
//!   from the `stateseal-aws` crate ([`stateseal_aws::sdk_config`], [`stateseal_aws::clients`]);
//! * `client`: object calls with OpenTofu's headers;
//! * `layout`: object keys, lock IDs, workspace listing;
//! * `dynamodb_lock`: lock items and the `-md5` digest item;
//! * `lockfile`: the `<key>.tflock` lock object;
//! * `bucket`: the facts and operations the fleet and the server use beyond [`Store`] (typed
//!   SSE, versioning, hardening, digest, self-copy, lock records, other credentials).
//!
//! Only [`S3Store`], its configuration and the `bucket` types are public: the clients stay
//! inside, so each S3 rule is written once.
//!
//! Locks are taken lock file first, then DynamoDB, and the lock file is removed again when
//! DynamoDB refuses, so stateseal, OpenTofu and Terraform exclude each other when they agree on
//! the mechanisms (docs/BACKENDS.md §3.7).

mod bucket;
mod builder;
mod client;
mod dynamodb_lock;
mod layout;
mod lockfile;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest as _, Md5};
use stateseal_aws::describe_error;
use stateseal_core::ServiceErrorKind;

pub use bucket::{
    BucketHardening, DigestStatus, LockRecord, LockSource, ObjectFacts, ReadAttempt, Sse,
    Versioning,
};
pub use builder::{S3Builder, S3Config};
pub use client::{Head, ListedObject, Metadata, ObjectPage};
use client::{ObjectClient, Purpose};
use dynamodb_lock::LockTable;
use layout::Layout;
use lockfile::LockFile;

use crate::store::{
    validate_workspace_name, Object, PutMode, Store, UnreadableLock, Version, VersionInfo,
};
use crate::{Error, LockInfo, Result};

/// States in an S3 bucket.
#[derive(Clone, Debug)]
pub struct S3Store {
    cfg: Arc<S3Config>,
    layout: Layout,
    objects: ObjectClient,
    table: Option<LockTable>,
    lockfile: Option<LockFile>,
    /// How long a read keeps retrying while the object does not match the DynamoDB digest
    /// (OpenTofu: 10 s).
    pub consistency_timeout: Duration,
    /// The pause between those retries (OpenTofu: 2 s).
    pub consistency_delay: Duration,
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why no SDK configuration could be had: the settings or the account are the configuration's
/// to fix; a credentials service that failed (unreachable, throttled) is a service failure.
fn connect_error(e: stateseal_aws::Error) -> Error {
    match e.service_kind() {
        Some(kind) if kind != ServiceErrorKind::AccessDenied => Error::Service {
            operation: "credentials",
            what: "AWS".into(),
            kind,
            message: e.to_string(),
            source: Some(Box::new(e)),
        },
        _ => Error::Config(format!("s3 backend: {e}")),
    }
}

impl S3Store {
    /// Builds the clients and, unless `skip_credentials_validation`, checks the credentials
    /// with STS `GetCallerIdentity` (and the account allow/deny lists).
    pub async fn connect(cfg: S3Config) -> Result<S3Store> {
        let auth = &cfg.auth;
        let sdk = stateseal_aws::sdk_config(auth)
            .await
            .map_err(connect_error)?;
        if !cfg.skip_credentials_validation {
            stateseal_aws::clients::sts(&sdk, auth)
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| match stateseal_aws::classify(&e) {
                    ServiceErrorKind::AccessDenied => Error::Config(format!(
                        "the AWS credentials are not valid (STS GetCallerIdentity: {}); check access_key/secret_key, the profile or the AWS_* environment variables",
                        describe_error(&e)
                    )),
                    // Unreachable, throttled, failing: nothing is wrong with the configuration.
                    kind => Error::Service {
                        operation: "GetCallerIdentity",
                        what: "STS (checking the AWS credentials)".into(),
                        kind,
                        message: describe_error(&e),
                        source: Some(Box::new(e)),
                    },
                })?;
        }
        let mut s3 =
            stateseal_aws::clients::s3_config(&sdk, auth).force_path_style(cfg.use_path_style);
        if cfg.skip_s3_checksum {
            use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
            s3 = s3
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        let cfg = Arc::new(cfg);
        let objects = ObjectClient {
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            cfg: cfg.clone(),
        };
        let table = cfg.dynamodb_table.as_ref().map(|t| LockTable {
            ddb: stateseal_aws::clients::dynamodb(&sdk, &cfg.auth),
            table: t.clone(),
        });
        let lockfile = cfg.use_lockfile.then(|| LockFile {
            objects: objects.clone(),
        });
        Ok(S3Store {
            layout: Layout {
                bucket: cfg.bucket.clone(),
                key: cfg.key.clone(),
                workspace_key_prefix: cfg.workspace_key_prefix.clone(),
            },
            cfg,
            objects,
            table,
            lockfile,
            consistency_timeout: Duration::from_secs(10),
            consistency_delay: Duration::from_secs(2),
        })
    }

    pub fn config(&self) -> &S3Config {
        &self.cfg
    }

    /// The same connection (clients, credentials, SSE, lock settings) for the state stored at
    /// `key`, as its `default` workspace: fleet operations address every state of a bucket this
    /// way (`lock_id`, `-md5` digest and `.tflock` all follow from `key`).
    pub fn for_key(&self, key: &str) -> S3Store {
        S3Store {
            layout: Layout {
                bucket: self.cfg.bucket.clone(),
                key: key.to_string(),
                workspace_key_prefix: self.layout.workspace_key_prefix.clone(),
            },
            ..self.clone()
        }
    }

    fn key(&self, workspace: &str) -> Result<String> {
        validate_workspace_name(workspace)?;
        Ok(self.layout.state_key(workspace))
    }

    /// The state with its user metadata (checked against the DynamoDB digest like
    /// [`Store::get`]); `None` when absent or empty.
    pub async fn get_with_metadata(&self, workspace: &str) -> Result<Option<(Object, Metadata)>> {
        let key = self.key(workspace)?;
        self.read_consistent(workspace, &key).await
    }

    /// [`Store::put`] with user metadata on the object (the `-md5` digest item is updated the
    /// same way).
    pub async fn put_with_metadata(
        &self,
        workspace: &str,
        bytes: Bytes,
        mode: PutMode,
        metadata: &Metadata,
    ) -> Result<Version> {
        let key = self.key(workspace)?;
        let digest = md5_hex(&bytes);
        let version = self
            .objects
            .put_with_metadata(&key, bytes, &mode, Purpose::State, metadata)
            .await?;
        if let Some(t) = &self.table {
            t.put_digest(&self.layout.digest_id(workspace), &digest)
                .await
                .map_err(|e| Error::Service {
                    operation: "PutItem",
                    what: format!("digest of s3://{}/{key}", self.cfg.bucket),
                    kind: match &e {
                        Error::Service { kind, .. } => *kind,
                        _ => stateseal_core::ServiceErrorKind::Other,
                    },
                    message: format!(
                        "the state was written, but its digest could not be stored, so the next read will report a checksum mismatch: {e}"
                    ),
                    source: Some(Box::new(e)),
                })?;
        }
        Ok(version)
    }

    /// Deletes the state object (a delete marker in a versioned bucket) and its `-md5` digest
    /// item, as OpenTofu deletes a workspace; unlike [`Store::delete_workspace`], also for
    /// `default`.
    pub async fn delete_state(&self, workspace: &str) -> Result<()> {
        let key = self.key(workspace)?;
        self.objects.delete(&key).await?;
        if let Some(t) = &self.table {
            t.delete_digest(&self.layout.digest_id(workspace)).await?;
        }
        Ok(())
    }

    /// Takes the lock with `info` exactly as given (its ID set, its `Path` left as the caller
    /// has it): lock file first, then DynamoDB, releasing the lock file again when DynamoDB
    /// refuses. A held lock is [`Error::Locked`] with the holder.
    pub async fn lock_as_given(&self, workspace: &str, info: LockInfo) -> Result<LockInfo> {
        let key = self.key(workspace)?;
        let file_key = format!("{key}.tflock");
        if let Some(lf) = &self.lockfile {
            lf.lock(&file_key, &info).await?;
        }
        if let Some(t) = &self.table {
            if let Err(e) = t.lock(&self.layout.lock_id(workspace), &info).await {
                if let Some(lf) = &self.lockfile {
                    let _ = lf.unlock(&file_key, &info.id).await;
                }
                return Err(e);
            }
        }
        Ok(info)
    }

    /// The object, checked against the DynamoDB digest when a table is configured: a mismatch
    /// is retried every `consistency_delay` until `consistency_timeout`, then an error.
    async fn read_consistent(
        &self,
        workspace: &str,
        key: &str,
    ) -> Result<Option<(Object, Metadata)>> {
        let deadline = Instant::now() + self.consistency_timeout;
        loop {
            let obj = match self.objects.get_with_metadata(key, None).await {
                Ok(o) => o,
                // Some S3-compatibles answer GET oddly: ask HEAD whether it is really there.
                Err(e @ Error::Service { .. }) => match self.objects.exists(key).await {
                    Ok(false) => None,
                    _ => return Err(e),
                },
                Err(e) => return Err(e),
            };
            let Some(table) = &self.table else {
                return Ok(obj);
            };
            // An unreadable or missing digest means no check, as in OpenTofu.
            let Ok(Some(expected)) = table.digest(&self.layout.digest_id(workspace)).await else {
                return Ok(obj);
            };
            let actual = obj
                .as_ref()
                .map(|(o, _)| md5_hex(&o.bytes))
                .unwrap_or_default();
            if actual == expected {
                return Ok(obj);
            }
            if Instant::now() + self.consistency_delay > deadline {
                return Err(Error::Inconsistent {
                    bucket: self.cfg.bucket.clone(),
                    key: key.to_string(),
                    calculated: actual,
                    stored: expected,
                });
            }
            tokio::time::sleep(self.consistency_delay).await;
        }
    }
}

#[async_trait]
impl Store for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn location(&self, workspace: &str) -> String {
        format!(
            "s3://{}/{}",
            self.cfg.bucket,
            self.layout.state_key(workspace)
        )
    }

    fn locking_enabled(&self) -> bool {
        self.table.is_some() || self.lockfile.is_some()
    }

    fn workspace_needs_state(&self) -> bool {
        true
    }

    async fn workspaces(&self) -> Result<Vec<String>> {
        let keys = self.objects.list(&self.layout.list_prefix()).await?;
        Ok(self.layout.workspaces(keys.iter().map(String::as_str)))
    }

    async fn create_workspace(&self, workspace: &str) -> Result<()> {
        validate_workspace_name(workspace)?;
        Ok(())
    }

    async fn delete_workspace(&self, workspace: &str) -> Result<()> {
        crate::store::refuse_default_deletion(workspace)?;
        self.delete_state(workspace).await
    }

    async fn get(&self, workspace: &str) -> Result<Object> {
        let key = self.key(workspace)?;
        self.read_consistent(workspace, &key)
            .await?
            .map(|(o, _)| o)
            .ok_or_else(|| Error::NotFound {
                what: format!("state s3://{}/{key}", self.cfg.bucket),
            })
    }

    async fn put(&self, workspace: &str, bytes: Bytes, mode: PutMode) -> Result<Version> {
        self.put_with_metadata(workspace, bytes, mode, &Metadata::new())
            .await
    }

    async fn lock(&self, workspace: &str, mut info: LockInfo) -> Result<LockInfo> {
        self.key(workspace)?;
        if !self.locking_enabled() {
            return Err(Error::Unsupported(
                "locking is not configured for this s3 backend: set use_lockfile = true and/or dynamodb_table".into(),
            ));
        }
        if info.id.is_empty() {
            info.id = crate::lock_info::new_lock_id();
        }
        info.path = self.layout.lock_id(workspace);
        self.lock_as_given(workspace, info).await
    }

    async fn unlock(&self, workspace: &str, id: &str) -> Result<()> {
        let key = self.key(workspace)?;
        let file = match &self.lockfile {
            Some(lf) => Some(lf.unlock(&format!("{key}.tflock"), id).await),
            None => None,
        };
        let ddb = match &self.table {
            Some(t) => Some(t.unlock(&self.layout.lock_id(workspace), id).await),
            None => None,
        };
        match (file, ddb) {
            (None, None) => Err(Error::Unsupported(
                "locking is not configured for this s3 backend".into(),
            )),
            (Some(r), None) | (None, Some(r)) => r,
            (Some(Ok(())), Some(Ok(()))) => Ok(()),
            (Some(Err(Error::NotLocked { what })), Some(Err(Error::NotLocked { .. }))) => {
                Err(Error::NotLocked { what })
            }
            (Some(Err(e @ Error::LockMismatch { .. })), Some(Err(_)))
            | (Some(Err(_)), Some(Err(e @ Error::LockMismatch { .. }))) => Err(e),
            (Some(Err(f)), Some(Err(d))) => Err(Error::UnlockFailed {
                message: format!("failed to unlock both S3 and DynamoDB: {f}; {d}"),
            }),
            (Some(Err(f)), Some(Ok(()))) => Err(Error::UnlockFailed {
                message: format!("dynamoDB lock released but s3 failed: {f}"),
            }),
            (Some(Ok(())), Some(Err(d))) => Err(Error::UnlockFailed {
                message: format!("s3 lock released but dynamoDB failed: {d}"),
            }),
        }
    }

    async fn lock_holder(&self, workspace: &str) -> Result<Option<LockInfo>> {
        let key = self.key(workspace)?;
        if let Some(lf) = &self.lockfile {
            if let Some(h) = lf.holder(&format!("{key}.tflock")).await? {
                return Ok(Some(h));
            }
        }
        if let Some(t) = &self.table {
            if let Some((h, _)) = t.holder(&self.layout.lock_id(workspace)).await? {
                return Ok(Some(h));
            }
        }
        Ok(None)
    }

    async fn unreadable_locks(&self, workspace: &str) -> Result<Vec<UnreadableLock>> {
        let key = self.key(workspace)?;
        let mut found = Vec::new();
        if let Some(lf) = &self.lockfile {
            found.extend(lf.unreadable(&format!("{key}.tflock")).await?);
        }
        if let Some(t) = &self.table {
            found.extend(t.unreadable(&self.layout.lock_id(workspace)).await?);
        }
        Ok(found)
    }

    async fn remove_unreadable_lock(&self, workspace: &str, lock: &UnreadableLock) -> Result<()> {
        let key = self.key(workspace)?;
        let file_key = format!("{key}.tflock");
        if let Some(lf) = self
            .lockfile
            .as_ref()
            .filter(|lf| lf.url(&file_key) == lock.location)
        {
            return lf.remove_unreadable(&file_key, lock).await;
        }
        let lock_id = self.layout.lock_id(workspace);
        if let Some(t) = self
            .table
            .as_ref()
            .filter(|t| t.item_location(&lock_id) == lock.location)
        {
            return t.remove_unreadable(&lock_id, lock).await;
        }
        Err(Error::Unsupported(format!(
            "{} is not a lock record of workspace {workspace:?}",
            lock.location
        )))
    }

    async fn versions(&self, workspace: &str) -> Result<Vec<VersionInfo>> {
        let key = self.key(workspace)?;
        self.objects.versions(&key).await
    }

    async fn get_version(&self, workspace: &str, version_id: &str) -> Result<Object> {
        let key = self.key(workspace)?;
        self.objects
            .get(&key, Some(version_id))
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!(
                    "version {version_id:?} of s3://{}/{key} (or it is empty)",
                    self.cfg.bucket
                ),
            })
    }
}
