//! The S3-native lock: `<state key>.tflock`, created with `If-None-Match: *` and the same SSE,
//! ACL and checksum headers as the state, tagged with `lock_tags` (docs/BACKENDS.md §3.6).

use super::client::{ObjectClient, Purpose};
use crate::store::{PutMode, UnreadableLock};
use crate::{Error, LockInfo, Result};

/// Lock files in the state bucket.
#[derive(Clone, Debug)]
pub struct LockFile {
    pub objects: ObjectClient,
}

impl LockFile {
    pub(crate) fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.objects.cfg.bucket)
    }

    /// The holder recorded in the lock file, if there is one.
    pub async fn holder(&self, key: &str) -> Result<Option<LockInfo>> {
        let Some(obj) = self.objects.get(key, None).await? else {
            return Ok(None);
        };
        self.parse(key, &obj.bytes).map(Some)
    }

    /// The holder recorded in `bytes`, the content of the lock file `key`, or why it is
    /// unreadable.
    pub fn parse(&self, key: &str, bytes: &[u8]) -> Result<LockInfo> {
        LockInfo::parse(bytes).map_err(|e| Error::LockFailed {
            message: format!(
                "the lock file {} is unreadable: {e}\nShow and remove it with: stateseal force-unlock --unreadable",
                self.url(key)
            ),
        })
    }

    /// The lock file, if there is one and it does not parse.
    pub async fn unreadable(&self, key: &str) -> Result<Option<UnreadableLock>> {
        let Some(obj) = self.objects.get(key, None).await? else {
            return Ok(None);
        };
        Ok(LockInfo::parse(&obj.bytes).err().map(|e| UnreadableLock {
            location: self.url(key),
            raw: Some(obj.bytes.to_vec()),
            problem: e.to_string(),
            token: obj.version.0,
        }))
    }

    /// Deletes the unreadable lock file if its ETag is still the one read.
    pub async fn remove_unreadable(&self, key: &str, lock: &UnreadableLock) -> Result<()> {
        self.objects
            .delete_if_match(key, &lock.token)
            .await
            .map_err(|e| Error::UnlockFailed {
                message: format!("{} was not removed: {e}", lock.location),
            })
    }

    /// Creates the lock file with `info` (whose ID is already set).
    pub async fn lock(&self, key: &str, info: &LockInfo) -> Result<()> {
        let put = self
            .objects
            .put(
                key,
                bytes::Bytes::from(info.to_json()),
                &PutMode::Create,
                Purpose::LockFile,
            )
            .await;
        let message = match put {
            Ok(_) => return Ok(()),
            Err(Error::AlreadyExists { .. }) => format!(
                "PreconditionFailed: the lock file {} already exists",
                self.url(key)
            ),
            Err(Error::Precondition { message, .. }) => {
                format!("{message} (lock file {})", self.url(key))
            }
            // A missing bucket or refused credentials: no lock to report, just the cause.
            Err(e @ (Error::BucketNotFound { .. } | Error::Service { .. })) => return Err(e),
            Err(e) => e.to_string(),
        };
        match self.holder(key).await {
            // A retried PUT whose first attempt went through finds our own lock.
            Ok(Some(holder)) if holder.id == info.id => Ok(()),
            Ok(Some(holder)) => Err(Error::Locked {
                holder: Box::new(holder),
                message,
            }),
            Ok(None) => Err(Error::LockFailed { message }),
            Err(e) => Err(Error::LockFailed {
                message: format!("{message}\nfailed to retrieve s3 lock info: {e}"),
            }),
        }
    }

    /// Deletes the lock file if its holder ID is `id`.
    pub async fn unlock(&self, key: &str, id: &str) -> Result<()> {
        let Some(holder) = self.holder(key).await? else {
            return Err(Error::NotLocked {
                what: self.url(key),
            });
        };
        if holder.id != id {
            return Err(Error::LockMismatch {
                id: id.to_string(),
                where_: " from s3",
                holder: Box::new(holder),
            });
        }
        self.objects.delete(key).await
    }
}
