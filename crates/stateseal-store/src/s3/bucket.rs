//! The bucket's facts and operations beyond [`Store`](crate::Store), for the fleet and the
//! server's `storage "s3"`: what an object's server-side encryption is ([`ObjectFacts`] with a
//! typed [`Sse`], parsed once here), the bucket's versioning and hardening, the `-md5` digest
//! item (its status against bytes, written, removed), a self-copy onto another SSE, lock
//! records listed and broken by compare-and-delete, each lock mechanism on its own, and the
//! same connection with other credentials.
//!
//! The S3 and DynamoDB clients stay inside the store: every rule that touches them (SSE-C
//! headers, the moto workarounds, the digest format, the lock item layout) is written once, here
//! or in the private modules beside it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::types::{MetadataDirective, ServerSideEncryption};
use serde::Serialize;
use serde_json::Value;

use super::client::{code, describe, status, Head, Metadata, ObjectPage};
use super::lockfile::LockFile;
use super::S3Store;
use crate::error::{Error, Result};
use crate::lock_info::LockInfo;
use crate::store::{Object, Version};

/// An object's server-side encryption, as S3 reports it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3 (`AES256`).
    S3,
    /// SSE-KMS (`aws:kms`) with the key S3 reports (an ARN or a key ID).
    Kms { key: Option<String> },
    /// Dual-layer SSE-KMS (`aws:kms:dsse`).
    KmsDsse { key: Option<String> },
    /// SSE-C: encrypted with a customer key S3 does not keep.
    SseC,
    /// No server-side encryption reported.
    None,
    /// An algorithm this version does not know, as S3 names it.
    Other(String),
}

impl Sse {
    /// The name S3 uses (`AES256`, `aws:kms`, `aws:kms:dsse`), `SSE-C`, or `None`.
    pub fn name(&self) -> Option<&str> {
        match self {
            Sse::S3 => Some("AES256"),
            Sse::Kms { .. } => Some("aws:kms"),
            Sse::KmsDsse { .. } => Some("aws:kms:dsse"),
            Sse::SseC => Some("SSE-C"),
            Sse::None => None,
            Sse::Other(s) => Some(s),
        }
    }

    /// The KMS key, for SSE-KMS.
    pub fn kms_key(&self) -> Option<&str> {
        match self {
            Sse::Kms { key } | Sse::KmsDsse { key } => key.as_deref(),
            _ => None,
        }
    }

    /// From HeadObject's headers: the SSE-C algorithm wins, then the SSE header.
    fn parse(
        customer_algorithm: Option<&str>,
        sse: Option<&ServerSideEncryption>,
        kms_key: Option<&str>,
    ) -> Sse {
        if customer_algorithm.is_some() {
            return Sse::SseC;
        }
        let key = kms_key.map(String::from);
        match sse {
            None => Sse::None,
            Some(ServerSideEncryption::Aes256) => Sse::S3,
            Some(ServerSideEncryption::AwsKms) => Sse::Kms { key },
            Some(ServerSideEncryption::AwsKmsDsse) => Sse::KmsDsse { key },
            Some(other) => Sse::Other(other.as_str().to_string()),
        }
    }
}

/// What HeadObject tells about an object's encryption and age.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectFacts {
    pub sse: Sse,
    pub last_modified: Option<String>,
}

/// A bucket's versioning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Versioning {
    Enabled,
    Suspended,
    /// Never turned on.
    Disabled,
}

impl Versioning {
    fn parse(status: Option<&str>) -> Versioning {
        match status.map(str::trim) {
            Some("Enabled") => Versioning::Enabled,
            Some("Suspended") => Versioning::Suspended,
            _ => Versioning::Disabled,
        }
    }

    /// `Enabled`, `Suspended` or `Disabled`.
    pub fn name(self) -> &'static str {
        match self {
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
            Versioning::Disabled => "Disabled",
        }
    }
}

impl std::fmt::Display for Versioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The bucket's hardening (`stateseal audit --json`'s `bucket_checks`: stable names).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BucketHardening {
    /// Null when it could not be read (see `problems`).
    pub versioning: Option<Versioning>,
    /// The default SSE algorithm (and KMS key), null when none is configured.
    pub default_encryption: Option<String>,
    pub default_kms_key_id: Option<String>,
    /// All four public-access-block settings on.
    pub public_access_blocked: bool,
    /// A bucket policy denies `aws:SecureTransport = false`.
    pub tls_only_policy: bool,
    /// Whether the configured lock table exists; null when no table is configured.
    pub lock_table_exists: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A state's `-md5` digest item against the object's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DigestStatus {
    Match,
    Mismatch,
    /// No digest item.
    Absent,
    /// No lock table is configured, so there is no digest.
    NoTable,
    /// The item could not be read.
    Unknown,
}

impl DigestStatus {
    /// The word used in JSON and tables: `match`, `mismatch`, `absent`, `no-table`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            DigestStatus::Match => "match",
            DigestStatus::Mismatch => "mismatch",
            DigestStatus::Absent => "absent",
            DigestStatus::NoTable => "no-table",
            DigestStatus::Unknown => "unknown",
        }
    }
}

/// Where a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockSource {
    /// The DynamoDB item `LockID = <bucket>/<key>`.
    Dynamodb,
    /// The object `<key>.tflock`.
    Lockfile,
}

/// One lock record as listed: what a compare-and-delete compares against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRecord {
    /// The state key it guards.
    pub state: String,
    pub source: LockSource,
    /// The record as stored (lock info JSON, maybe unreadable).
    pub raw: Vec<u8>,
    /// The item's raw `Info`, or the lock file's ETag.
    token: String,
}

impl LockRecord {
    /// The record of the lock file of `state` whose content is `raw` and ETag `etag`.
    pub fn lock_file(state: &str, raw: Vec<u8>, etag: &str) -> LockRecord {
        LockRecord {
            state: state.to_string(),
            source: LockSource::Lockfile,
            raw,
            token: etag.to_string(),
        }
    }
}

/// A read with other credentials: did S3 refuse it?
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadAttempt {
    /// The object was served.
    Readable,
    /// `AccessDenied`, with the service's words.
    Denied(String),
    /// Any other failure (it proves nothing about access), with the service's words.
    Failed(String),
}

/// RFC 3986 percent-encoding of a key for `x-amz-copy-source` (`/` kept).
fn copy_source_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Does the policy deny requests with `aws:SecureTransport = false`?
fn denies_insecure_transport(policy: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let statements = match &v["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => return false,
    };
    statements.iter().any(|s| {
        let secure = &s["Condition"]["Bool"]["aws:SecureTransport"];
        s["Effect"] == "Deny"
            && (secure.as_str() == Some("false") || secure.as_bool() == Some(false))
    })
}

/// The status in a GetBucketVersioning body: `<Status>…</Status>`.
fn versioning_status(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let (_, rest) = body.split_once("<Status>")?;
    let (status, _) = rest.split_once("</Status>")?;
    Some(status.trim().to_string())
}

impl S3Store {
    /// Every object key under `prefix` (all pages).
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.objects.list(prefix).await
    }

    /// One object by key (a version, or the current one) with its user metadata; `None` when
    /// absent or empty. Not checked against the digest (see [`S3Store::get_with_metadata`]).
    pub async fn object(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<(Object, Metadata)>> {
        self.objects.get_with_metadata(key, version_id).await
    }

    /// HeadObject of one version of `key` (`None`: the current one); `None` when it does not
    /// exist.
    pub async fn head_version(&self, key: &str, version_id: Option<&str>) -> Result<Option<Head>> {
        self.objects.head(key, version_id).await
    }

    /// The server-side encryption and age of `key`. An SSE-C object answers 400 to a HEAD
    /// without its key: it is reported as SSE-C.
    pub async fn head(&self, key: &str) -> Result<ObjectFacts> {
        match self.objects.head_request(key, None).send().await {
            Ok(h) => Ok(ObjectFacts {
                sse: Sse::parse(
                    h.sse_customer_algorithm(),
                    h.server_side_encryption(),
                    h.ssekms_key_id(),
                ),
                last_modified: h.last_modified().map(|t| t.to_string()),
            }),
            Err(e) if status(&e) == Some(400) => Ok(ObjectFacts {
                sse: Sse::SseC,
                last_modified: None,
            }),
            Err(e) if status(&e) == Some(404) => Err(Error::NotFound {
                what: self.objects.url(key),
            }),
            Err(e) => Err(self.objects.service("HeadObject", key, e)),
        }
    }

    /// The bucket's versioning.
    pub async fn versioning(&self) -> Result<Versioning> {
        let bucket = &self.cfg.bucket;
        match self
            .objects
            .s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => Ok(Versioning::parse(out.status.as_ref().map(|s| s.as_str()))),
            Err(e) if code(&e) == Some("NoSuchBucket") => Err(self.objects.bucket_missing()),
            Err(e) => {
                // Some S3-compatibles (moto) answer 200 with another root element than
                // VersioningConfiguration, which the SDK refuses: read the status from the body.
                match e
                    .raw_response()
                    .filter(|r| r.status().is_success())
                    .and_then(|r| r.body().bytes())
                {
                    Some(body) => Ok(Versioning::parse(versioning_status(body).as_deref())),
                    None => Err(self.objects.service("GetBucketVersioning", "", e)),
                }
            }
        }
    }

    /// Versioning, default encryption, public access block, TLS-only policy, lock table. What
    /// could not be read is left at its weakest value; a failed versioning read is a problem.
    pub async fn hardening(&self) -> BucketHardening {
        let s3 = &self.objects.s3;
        let b = &self.cfg.bucket;
        let mut c = BucketHardening::default();
        match self.versioning().await {
            Ok(v) => c.versioning = Some(v),
            Err(e) => c.problems.push(format!("GetBucketVersioning: {e}")),
        }
        if let Ok(enc) = s3.get_bucket_encryption().bucket(b).send().await {
            let rule = enc
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|r| r.apply_server_side_encryption_by_default());
            c.default_encryption = rule.map(|r| r.sse_algorithm().as_str().to_string());
            c.default_kms_key_id = rule.and_then(|r| r.kms_master_key_id().map(String::from));
        }
        if let Ok(p) = s3.get_public_access_block().bucket(b).send().await {
            c.public_access_blocked = p.public_access_block_configuration().is_some_and(|p| {
                p.block_public_acls() == Some(true)
                    && p.ignore_public_acls() == Some(true)
                    && p.block_public_policy() == Some(true)
                    && p.restrict_public_buckets() == Some(true)
            });
        }
        if let Ok(p) = s3.get_bucket_policy().bucket(b).send().await {
            c.tls_only_policy = p.policy().is_some_and(denies_insecure_transport);
        }
        if let Some(t) = &self.table {
            c.lock_table_exists = Some(
                t.ddb
                    .describe_table()
                    .table_name(&t.table)
                    .send()
                    .await
                    .is_ok(),
            );
        }
        c
    }

    /// `workspace`'s `-md5` digest item against `bytes`. `Err` when the item could not be read.
    pub async fn digest_status(&self, workspace: &str, bytes: &[u8]) -> Result<DigestStatus> {
        let Some(t) = &self.table else {
            return Ok(DigestStatus::NoTable);
        };
        Ok(match t.digest(&self.layout.digest_id(workspace)).await? {
            None => DigestStatus::Absent,
            Some(d) if d == super::md5_hex(bytes) => DigestStatus::Match,
            Some(_) => DigestStatus::Mismatch,
        })
    }

    /// Writes `workspace`'s `-md5` digest item for `bytes` (nothing without a lock table).
    pub async fn write_digest(&self, workspace: &str, bytes: &[u8]) -> Result<()> {
        match &self.table {
            Some(t) => {
                t.put_digest(&self.layout.digest_id(workspace), &super::md5_hex(bytes))
                    .await
            }
            None => Ok(()),
        }
    }

    /// Removes `workspace`'s `-md5` digest item (nothing without a lock table).
    pub async fn delete_digest(&self, workspace: &str) -> Result<()> {
        match &self.table {
            Some(t) => t.delete_digest(&self.layout.digest_id(workspace)).await,
            None => Ok(()),
        }
    }

    /// Copies version `version_id` of `key` onto itself with `sse` (SSE-S3 or SSE-KMS with a
    /// key), on the condition that its ETag is still `etag`, replacing the metadata. Returns
    /// the new version's ID. A changed object is [`Error::Precondition`].
    pub async fn copy_in_place(
        &self,
        key: &str,
        version_id: Option<&str>,
        etag: &Version,
        sse: &Sse,
    ) -> Result<Option<String>> {
        let bucket = &self.cfg.bucket;
        let mut source = format!("{bucket}/{}", copy_source_key(key));
        if let Some(v) = version_id {
            source.push_str(&format!("?versionId={v}"));
        }
        let copy = self
            .objects
            .s3
            .copy_object()
            .bucket(bucket)
            .key(key)
            .copy_source(source)
            .copy_source_if_match(&etag.0)
            .metadata_directive(MetadataDirective::Replace)
            .content_type("application/json");
        let copy = match sse {
            Sse::Kms { key: Some(k) } => copy
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(k),
            Sse::S3 => copy.server_side_encryption(ServerSideEncryption::Aes256),
            other => {
                return Err(Error::Unsupported(format!(
                    "a self-copy moves states to AES256 or aws:kms with a key, not {}",
                    other.name().unwrap_or("no encryption")
                )))
            }
        };
        match copy.send().await {
            Ok(out) => Ok(out.version_id),
            Err(e) if status(&e) == Some(412) => Err(Error::Precondition {
                what: self.objects.url(key),
                message: describe(&e),
            }),
            Err(e) => Err(self.objects.service("CopyObject", key, e)),
        }
    }

    /// Every lock record: the lock files among `keys` (a listing the caller has), in its
    /// order, then every DynamoDB lock item of this bucket, sorted by state. Digest items have
    /// no `Info` and are skipped.
    pub async fn scan_locks(&self, keys: &[String]) -> Result<Vec<LockRecord>> {
        let mut out = Vec::new();
        for key in keys {
            let Some(state) = key.strip_suffix(".tflock") else {
                continue;
            };
            if let Some(obj) = self.objects.get(key, None).await? {
                out.push(LockRecord::lock_file(
                    state,
                    obj.bytes.to_vec(),
                    &obj.version.0,
                ));
            }
        }
        out.extend(self.lock_items("").await?);
        Ok(out)
    }

    /// Every DynamoDB lock item of this bucket whose state key starts with `prefix`, sorted by
    /// state: one Scan of the lock table (all its pages), filtered by the table to this
    /// bucket's lock items (digest items have no `Info`). Nothing without a lock table.
    pub async fn lock_items(&self, prefix: &str) -> Result<Vec<LockRecord>> {
        let Some(table) = &self.table else {
            return Ok(Vec::new());
        };
        let bucket_prefix = format!("{}/", self.cfg.bucket);
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = table
                .ddb
                .scan()
                .table_name(&table.table)
                .consistent_read(true)
                .filter_expression("begins_with(#id, :prefix) AND attribute_exists(#info)")
                .expression_attribute_names("#id", "LockID")
                .expression_attribute_names("#info", "Info")
                .expression_attribute_values(
                    ":prefix",
                    AttributeValue::S(format!("{bucket_prefix}{prefix}")),
                )
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::Service {
                    operation: "Scan",
                    what: format!("DynamoDB table {}", table.table),
                    kind: stateseal_aws::classify(&e),
                    message: describe(&e),
                    source: Some(Box::new(e)),
                })?;
            for item in page.items() {
                let (Some(AttributeValue::S(id)), Some(AttributeValue::S(info))) =
                    (item.get("LockID"), item.get("Info"))
                else {
                    continue;
                };
                if let Some(state) = id.strip_prefix(&bucket_prefix) {
                    items.push(LockRecord {
                        state: state.to_string(),
                        source: LockSource::Dynamodb,
                        raw: info.clone().into_bytes(),
                        token: info.clone(),
                    });
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        items.sort_by(|a, b| a.state.cmp(&b.state));
        Ok(items)
    }

    /// The holder `record` names, or why it is unreadable: the same answer as
    /// [`S3Store::lock_holder_in`] gives for that record alone.
    pub fn holder_of(&self, record: &LockRecord) -> Result<LockInfo> {
        match record.source {
            LockSource::Dynamodb => match &self.table {
                Some(t) => t.parse(
                    &format!("{}/{}", self.cfg.bucket, record.state),
                    &String::from_utf8_lossy(&record.raw),
                ),
                None => Err(Error::Unsupported("no lock table is configured".into())),
            },
            LockSource::Lockfile => LockFile {
                objects: self.objects.clone(),
            }
            .parse(&format!("{}.tflock", record.state), &record.raw),
        }
    }

    /// One page of the objects under `prefix`, with their ETags, sizes and times: the first
    /// after `start_after`, or the one `token` continues (see [`ObjectPage`]).
    pub async fn list_objects(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
    ) -> Result<ObjectPage> {
        self.objects.list_page(prefix, start_after, token).await
    }

    /// Deletes the lock record exactly as listed: the DynamoDB item on `Info = <listed>`, the
    /// lock file on `If-Match: <listed ETag>`. A record changed since (released, re-acquired,
    /// rewritten) is [`Error::Precondition`] and stays.
    pub async fn compare_and_delete(&self, lock: &LockRecord) -> Result<()> {
        match lock.source {
            LockSource::Lockfile => {
                self.objects
                    .delete_if_match(&format!("{}.tflock", lock.state), &lock.token)
                    .await
            }
            LockSource::Dynamodb => {
                let Some(table) = &self.table else {
                    return Err(Error::Unsupported("no lock table is configured".into()));
                };
                let lock_id = format!("{}/{}", self.cfg.bucket, lock.state);
                let deleted = table
                    .ddb
                    .delete_item()
                    .table_name(&table.table)
                    .key("LockID", AttributeValue::S(lock_id.clone()))
                    .condition_expression("Info = :info")
                    .expression_attribute_values(":info", AttributeValue::S(lock.token.clone()))
                    .send()
                    .await;
                match deleted {
                    Ok(_) => Ok(()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                    {
                        Err(Error::Precondition {
                            what: table.item_location(&lock_id),
                            message:
                                "the item's Info is no longer the one listed (released or re-acquired)"
                                    .into(),
                        })
                    }
                    Err(e) => Err(Error::Service {
                        operation: "DeleteItem",
                        what: table.item_location(&lock_id),
                        kind: stateseal_aws::classify(&e),
                        message: describe(&e),
                        source: Some(Box::new(e)),
                    }),
                }
            }
        }
    }

    /// Is `source` one of this backend's lock mechanisms?
    pub fn locks_with(&self, source: LockSource) -> bool {
        match source {
            LockSource::Dynamodb => self.table.is_some(),
            LockSource::Lockfile => self.lockfile.is_some(),
        }
    }

    /// The holder `source` records for `workspace` (`None`: not locked there, or not
    /// configured).
    pub async fn lock_holder_in(
        &self,
        workspace: &str,
        source: LockSource,
    ) -> Result<Option<LockInfo>> {
        match source {
            LockSource::Dynamodb => match &self.table {
                Some(t) => Ok(t
                    .holder(&self.layout.lock_id(workspace))
                    .await?
                    .map(|(h, _)| h)),
                None => Ok(None),
            },
            LockSource::Lockfile => match &self.lockfile {
                Some(lf) => lf.holder(&self.layout.lock_file_key(workspace)).await,
                None => Ok(None),
            },
        }
    }

    /// Releases `workspace`'s lock in `source` alone if its holder ID is `id`:
    /// [`Error::NotLocked`] when there is none (or `source` is not configured),
    /// [`Error::LockMismatch`] when someone else holds it.
    pub async fn unlock_in(&self, workspace: &str, id: &str, source: LockSource) -> Result<()> {
        let not_configured = || Error::NotLocked {
            what: format!("{source:?} lock of {}", self.layout.state_key(workspace)),
        };
        match source {
            LockSource::Dynamodb => match &self.table {
                Some(t) => t.unlock(&self.layout.lock_id(workspace), id).await,
                None => Err(not_configured()),
            },
            LockSource::Lockfile => match &self.lockfile {
                Some(lf) => lf.unlock(&self.layout.lock_file_key(workspace), id).await,
                None => Err(not_configured()),
            },
        }
    }

    /// The same connection (region, endpoints, path style, SSE, locks) acting with
    /// `credentials` and nothing else (not the environment's, which the standard chain would
    /// try first). The credentials are not validated with STS.
    pub async fn with_credentials(
        &self,
        credentials: &aws_sdk_s3::config::Credentials,
    ) -> Result<S3Store> {
        let mut cfg = (*self.cfg).clone();
        let secret = |s: &str| stateseal_core::Secret::from(s.as_bytes());
        cfg.auth.access_key = Some(credentials.access_key_id().to_string());
        cfg.auth.secret_key = Some(secret(credentials.secret_access_key()));
        cfg.auth.token = credentials.session_token().map(secret);
        cfg.auth.profile = None;
        cfg.auth.assume_role = None;
        cfg.auth.assume_role_with_web_identity = None;
        cfg.skip_credentials_validation = true;
        Ok(S3Store::connect(cfg).await?.for_key(&self.layout.key))
    }

    /// GetObject of `key`: served, refused with `AccessDenied`, or failed otherwise.
    pub async fn try_read(&self, key: &str) -> ReadAttempt {
        match self.objects.get_request(key, None).send().await {
            Ok(_) => ReadAttempt::Readable,
            Err(e) if code(&e) == Some("AccessDenied") => ReadAttempt::Denied(describe(&e)),
            Err(e) => ReadAttempt::Failed(describe(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_percent_encoded_but_keep_slashes() {
        assert_eq!(
            copy_source_key("env:/blue/a b/terraform.tfstate"),
            "env%3A/blue/a%20b/terraform.tfstate"
        );
    }

    #[test]
    fn a_tls_only_policy_is_recognised() {
        let deny = r#"{"Statement":[{"Effect":"Deny","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
        assert!(denies_insecure_transport(deny));
        let deny_bool =
            r#"{"Statement":{"Effect":"Deny","Condition":{"Bool":{"aws:SecureTransport":false}}}}"#;
        assert!(denies_insecure_transport(deny_bool));
        let allow = r#"{"Statement":{"Effect":"Allow","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}"#;
        assert!(!denies_insecure_transport(allow));
        assert!(!denies_insecure_transport("not json"));
    }

    #[test]
    fn sse_is_parsed_once_with_ssec_first() {
        let kms = Some("arn:aws:kms:us-east-1:1:key/k");
        assert_eq!(
            Sse::parse(None, Some(&ServerSideEncryption::AwsKms), kms),
            Sse::Kms {
                key: kms.map(String::from)
            }
        );
        assert_eq!(
            Sse::parse(Some("AES256"), Some(&ServerSideEncryption::Aes256), None),
            Sse::SseC
        );
        assert_eq!(Sse::parse(None, None, None).name(), None);
        assert_eq!(
            Sse::parse(None, Some(&ServerSideEncryption::Aes256), None).name(),
            Some("AES256")
        );
        assert_eq!(
            Sse::parse(None, Some(&ServerSideEncryption::AwsKmsDsse), kms).kms_key(),
            kms
        );
        assert_eq!(Sse::SseC.name(), Some("SSE-C"));
    }

    #[test]
    fn versioning_reads_the_status_of_odd_bodies() {
        let moto = b"<?xml version=\"1.0\"?><VersioningConfigurationX><Status>Enabled</Status></VersioningConfigurationX>";
        assert_eq!(
            Versioning::parse(versioning_status(moto).as_deref()),
            Versioning::Enabled
        );
        assert_eq!(
            Versioning::parse(versioning_status(b"<X/>").as_deref()),
            Versioning::Disabled
        );
        assert_eq!(Versioning::parse(Some("Suspended")), Versioning::Suspended);
        assert_eq!(
            serde_json::to_string(&Versioning::Enabled).unwrap(),
            "\"Enabled\""
        );
    }

    #[test]
    fn digest_and_lock_words_keep_their_json_names() {
        let words: Vec<String> = [
            DigestStatus::Match,
            DigestStatus::Mismatch,
            DigestStatus::Absent,
            DigestStatus::NoTable,
            DigestStatus::Unknown,
        ]
        .iter()
        .map(|d| {
            let json = serde_json::to_string(d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.name()));
            json
        })
        .collect();
        assert_eq!(
            words,
            [
                "\"match\"",
                "\"mismatch\"",
                "\"absent\"",
                "\"no-table\"",
                "\"unknown\""
            ]
        );
        assert_eq!(
            serde_json::to_string(&LockSource::Dynamodb).unwrap(),
            "\"dynamodb\""
        );
        assert_eq!(
            serde_json::to_string(&LockSource::Lockfile).unwrap(),
            "\"lockfile\""
        );
    }
}
