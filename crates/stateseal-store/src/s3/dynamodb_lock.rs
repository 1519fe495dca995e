//! DynamoDB lock items and the `-md5` digest item (docs/BACKENDS.md §3.3 step 4, §3.4, §3.5).
//!
//! Lock item: `{LockID: "<bucket>/<key>", Info: <LockInfo JSON>}` put with
//! `attribute_not_exists(LockID)`. Release checks the holder's ID and deletes on the condition
//! `Info = <the raw stored string>`. Digest item: `{LockID: "<bucket>/<key>-md5", Digest: hex}`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::client::describe;
use crate::store::UnreadableLock;
use crate::{Error, LockInfo, Result};

/// The lock table.
#[derive(Clone, Debug)]
pub struct LockTable {
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl LockTable {
    /// The item, for messages.
    pub(crate) fn item_location(&self, lock_id: &str) -> String {
        format!("DynamoDB table {} item {lock_id:?}", self.table)
    }

    fn service<E>(&self, operation: &'static str, lock_id: &str, e: SdkError<E>) -> Error
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        Error::Service {
            operation,
            what: format!("DynamoDB table {} item {lock_id:?}", self.table),
            kind: stateseal_aws::classify(&e),
            message: describe(&e),
            source: Some(Box::new(e)),
        }
    }

    async fn get_item(
        &self,
        lock_id: &str,
        projection: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("LockID", s(lock_id))
            .projection_expression(projection)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.service("GetItem", lock_id, e))?;
        Ok(out.item)
    }

    /// The stored holder: parsed, and the raw `Info` string for a conditional delete.
    pub async fn holder(&self, lock_id: &str) -> Result<Option<(LockInfo, String)>> {
        let Some(item) = self.get_item(lock_id, "LockID, Info").await? else {
            return Ok(None);
        };
        let raw = match item.get("Info") {
            Some(AttributeValue::S(raw)) => raw.clone(),
            _ => String::new(),
        };
        let info = self.parse(lock_id, &raw)?;
        Ok(Some((info, raw)))
    }

    /// The holder in the `Info` of item `lock_id`, or why it is unreadable.
    pub fn parse(&self, lock_id: &str, raw: &str) -> Result<LockInfo> {
        LockInfo::parse(raw.as_bytes()).map_err(|e| Error::LockFailed {
            message: format!(
                "the lock item {lock_id:?} in DynamoDB table {} has unreadable Info: {e}\nShow and remove it with: stateseal force-unlock --unreadable",
                self.table
            ),
        })
    }

    /// The lock item, if there is one and its `Info` does not parse.
    pub async fn unreadable(&self, lock_id: &str) -> Result<Option<UnreadableLock>> {
        let Some(item) = self.get_item(lock_id, "LockID, Info").await? else {
            return Ok(None);
        };
        let raw = match item.get("Info") {
            Some(AttributeValue::S(raw)) => Some(raw.clone()),
            _ => None,
        };
        let problem = match &raw {
            Some(r) => match LockInfo::parse(r.as_bytes()) {
                Ok(_) => return Ok(None),
                Err(e) => e.to_string(),
            },
            None => "the item has no string Info attribute".to_string(),
        };
        Ok(Some(UnreadableLock {
            location: self.item_location(lock_id),
            raw: raw.map(String::into_bytes),
            problem,
            token: String::new(),
        }))
    }

    /// Deletes the unreadable lock item `lock_id` on the condition that its `Info` is still
    /// exactly as read. Only that item: the `-md5` digest item has another LockID.
    pub async fn remove_unreadable(&self, lock_id: &str, lock: &UnreadableLock) -> Result<()> {
        let req = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("LockID", s(lock_id));
        let req = match &lock.raw {
            Some(raw) => req
                .condition_expression("Info = :info")
                .expression_attribute_values(":info", s(String::from_utf8_lossy(raw))),
            None => {
                req.condition_expression("attribute_exists(LockID) AND attribute_not_exists(Info)")
            }
        };
        req.send().await.map_err(|e| {
            let why = match &e {
                SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception() => {
                    "it changed or disappeared since it was read".to_string()
                }
                _ => describe(&e),
            };
            Error::UnlockFailed {
                message: format!("{} was not removed: {why}", lock.location),
            }
        })?;
        Ok(())
    }

    /// Takes the lock with `info` (whose ID is already set).
    pub async fn lock(&self, lock_id: &str, info: &LockInfo) -> Result<()> {
        let put = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("LockID", s(lock_id))
            .item("Info", s(info.to_json()))
            .condition_expression("attribute_not_exists(LockID)")
            .send()
            .await;
        let err = match put {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let message = match &err {
            SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception() => {
                format!(
                    "ConditionalCheckFailedException: The conditional request failed (DynamoDB table {}, LockID {lock_id:?})",
                    self.table
                )
            }
            _ => format!(
                "DynamoDB table {}, LockID {lock_id:?}: {}",
                self.table,
                describe(&err)
            ),
        };
        match self.holder(lock_id).await {
            // A retried PutItem whose first attempt went through finds our own item.
            Ok(Some((holder, _))) if holder.id == info.id => Ok(()),
            Ok(Some((holder, _))) => Err(Error::Locked {
                holder: Box::new(holder),
                message,
            }),
            Ok(None) => Err(Error::LockFailed {
                message: format!(
                    "{message}\nno lock info found for: {lock_id:?} within the DynamoDB table: {}",
                    self.table
                ),
            }),
            Err(e) => Err(Error::LockFailed {
                message: format!("{message}\n{e}"),
            }),
        }
    }

    /// Releases the lock if its holder ID is `id`.
    pub async fn unlock(&self, lock_id: &str, id: &str) -> Result<()> {
        let Some((holder, raw)) = self.holder(lock_id).await? else {
            return Err(Error::NotLocked {
                what: format!("DynamoDB table {} item {lock_id:?}", self.table),
            });
        };
        if holder.id != id {
            return Err(Error::LockMismatch {
                id: id.to_string(),
                where_: " in DynamoDB",
                holder: Box::new(holder),
            });
        }
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key("LockID", s(lock_id))
            .condition_expression("Info = :info")
            .expression_attribute_values(":info", s(raw))
            .send()
            .await
            .map_err(|e| Error::UnlockFailed {
                message: format!(
                    "DynamoDB table {} item {lock_id:?}: {}",
                    self.table,
                    describe(&e)
                ),
            })?;
        Ok(())
    }

    /// The stored digest (16 bytes as 32 hex digits), if any valid one is there.
    pub async fn digest(&self, digest_id: &str) -> Result<Option<String>> {
        let item = self.get_item(digest_id, "LockID, Digest").await?;
        Ok(item.and_then(|i| match i.get("Digest") {
            Some(AttributeValue::S(d))
                if d.len() == 32 && d.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                Some(d.to_ascii_lowercase())
            }
            _ => None,
        }))
    }

    pub async fn put_digest(&self, digest_id: &str, hex: &str) -> Result<()> {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("LockID", s(digest_id))
            .item("Digest", s(hex))
            .send()
            .await
            .map_err(|e| self.service("PutItem", digest_id, e))?;
        Ok(())
    }

    pub async fn delete_digest(&self, digest_id: &str) -> Result<()> {
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key("LockID", s(digest_id))
            .send()
            .await
            .map_err(|e| self.service("DeleteItem", digest_id, e))?;
        Ok(())
    }
}
