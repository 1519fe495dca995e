//! The S3 calls, with the headers OpenTofu sends (docs/BACKENDS.md §3.3, §3.4, §3.6): SSE-KMS,
//! SSE-S3 or SSE-C when `encrypt` is on, the SHA-256 checksum unless `skip_s3_checksum`, the
//! canned ACL and object tags.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectCannedAcl, ServerSideEncryption};
use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest as _, Md5};
pub use stateseal_aws::describe_error as describe;

use super::builder::S3Config;
use crate::store::{Object, PutMode, Version, VersionInfo};
use crate::{Error, Result};

/// S3 user metadata (`x-amz-meta-*`), names without the prefix.
pub type Metadata = std::collections::HashMap<String, String>;

/// What HeadObject tells of an object version.
#[derive(Clone, Debug)]
pub struct Head {
    /// The ETag.
    pub version: Version,
    pub size: u64,
    pub metadata: Metadata,
}

/// One object as ListObjectsV2 lists it: its current version's ETag, size and time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    /// As S3 sends it (quoted).
    pub etag: String,
    pub size: u64,
    /// RFC 3339, UTC.
    pub last_modified: String,
}

/// One page of a listing, and the token of the next one (`None`: this was the last).
#[derive(Clone, Debug, Default)]
pub struct ObjectPage {
    pub objects: Vec<ListedObject>,
    pub next: Option<String>,
}

/// An S3 time as RFC 3339 (empty when absent).
fn rfc3339(t: Option<&aws_sdk_s3::primitives::DateTime>) -> String {
    t.and_then(|t| t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok())
        .unwrap_or_default()
}

/// The HTTP status of a failed call.
pub(super) fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

pub(super) fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// Go's `url.Values.Encode` for tags: keys sorted, query escaping, space as `+`.
fn tagging(tags: &std::collections::BTreeMap<String, String>) -> Option<String> {
    if tags.is_empty() {
        return None;
    }
    let esc = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    Some(
        tags.iter()
            .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

/// The three SSE-C values (algorithm, base64 key, base64 MD5 of the key) when in use: a
/// customer key is configured *and* `encrypt` is on, as OpenTofu sends them. Every request that
/// carries them (GET, HEAD, PUT, the fleet's HEAD included) takes them from here.
fn sse_c(cfg: &S3Config) -> Option<(String, String, String)> {
    let key = cfg.sse_customer_key.as_ref().filter(|_| cfg.encrypt)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Some((
        "AES256".into(),
        b64.encode(key.expose()),
        b64.encode(Md5::digest(key.expose())),
    ))
}

/// [`sse_c`] as the three optional headers of a request.
fn sse_c_headers(cfg: &S3Config) -> (Option<String>, Option<String>, Option<String>) {
    match sse_c(cfg) {
        Some((alg, key, md5)) => (Some(alg), Some(key), Some(md5)),
        None => (None, None, None),
    }
}

/// A request builder (GetObject, HeadObject: the SDK gives them no common type) with the SSE-C
/// headers of [`sse_c_headers`].
macro_rules! with_sse_c {
    ($req:expr, $cfg:expr) => {{
        let (alg, key, md5) = sse_c_headers($cfg);
        $req.set_sse_customer_algorithm(alg)
            .set_sse_customer_key(key)
            .set_sse_customer_key_md5(md5)
    }};
}

/// Object operations in the configured bucket.
#[derive(Clone, Debug)]
pub struct ObjectClient {
    pub s3: aws_sdk_s3::Client,
    pub cfg: std::sync::Arc<S3Config>,
}

/// What a put is for: the state (state tags) or the lock file (lock tags, `If-None-Match`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    State,
    LockFile,
}

impl ObjectClient {
    pub(super) fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.cfg.bucket)
    }

    pub(super) fn bucket_missing(&self) -> Error {
        Error::BucketNotFound {
            bucket: self.cfg.bucket.clone(),
        }
    }

    pub(super) fn service<E>(&self, operation: &'static str, key: &str, e: SdkError<E>) -> Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Error::Service {
            operation,
            what: self.url(key),
            kind: stateseal_aws::classify(&e),
            message: describe(&e),
            source: Some(Box::new(e)),
        }
    }

    /// GetObject of `key` (a version, or the current one), with the SSE-C key when in use.
    pub(super) fn get_request(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder {
        let req = self.s3.get_object().bucket(&self.cfg.bucket).key(key);
        with_sse_c!(req.set_version_id(version_id.map(String::from)), &self.cfg)
    }

    /// HeadObject of `key` (a version, or the current one), with the SSE-C key when in use.
    pub(super) fn head_request(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> aws_sdk_s3::operation::head_object::builders::HeadObjectFluentBuilder {
        let req = self.s3.head_object().bucket(&self.cfg.bucket).key(key);
        with_sse_c!(req.set_version_id(version_id.map(String::from)), &self.cfg)
    }

    /// GetObject. `Ok(None)` when the key does not exist or the object is empty.
    pub async fn get(&self, key: &str, version_id: Option<&str>) -> Result<Option<Object>> {
        Ok(self
            .get_with_metadata(key, version_id)
            .await?
            .map(|(o, _)| o))
    }

    /// [`ObjectClient::get`] with the object's user metadata.
    pub async fn get_with_metadata(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<(Object, Metadata)>> {
        let out = match self.get_request(key, version_id).send().await {
            Ok(o) => o,
            Err(e) => {
                if let SdkError::ServiceError(s) = &e {
                    if s.err().is_no_such_key() {
                        return Ok(None);
                    }
                }
                return Err(match code(&e) {
                    Some("NoSuchBucket") => self.bucket_missing(),
                    Some("NoSuchVersion") | Some("InvalidArgument") if version_id.is_some() => {
                        Error::NotFound {
                            what: format!(
                                "version {:?} of {}",
                                version_id.unwrap_or_default(),
                                self.url(key)
                            ),
                        }
                    }
                    _ => self.service("GetObject", key, e),
                });
            }
        };
        let etag = out.e_tag.clone().unwrap_or_default();
        let version_id = out.version_id.clone();
        let metadata = out.metadata.clone().unwrap_or_default();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| Error::Service {
                operation: "GetObject",
                what: self.url(key),
                kind: stateseal_core::ServiceErrorKind::Network,
                message: e.to_string(),
                source: Some(Box::new(e)),
            })?
            .into_bytes();
        if bytes.is_empty() {
            return Ok(None);
        }
        Ok(Some((
            Object {
                bytes,
                version: Version(etag),
                version_id,
            },
            metadata,
        )))
    }

    /// HeadObject of one version (`None`: the current one); `None` when it does not exist.
    pub async fn head(&self, key: &str, version_id: Option<&str>) -> Result<Option<Head>> {
        match self.head_request(key, version_id).send().await {
            Ok(out) => Ok(Some(Head {
                version: Version(out.e_tag.unwrap_or_default()),
                size: out.content_length.unwrap_or(0).max(0) as u64,
                metadata: out.metadata.unwrap_or_default(),
            })),
            Err(e) if matches!(status(&e), Some(404) | Some(405)) => Ok(None),
            Err(e) => Err(self.service("HeadObject", key, e)),
        }
    }

    /// HeadObject: does the key exist (used where GET answered oddly)?
    pub async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.head(key, None).await?.is_some())
    }

    /// PutObject with OpenTofu's headers and `mode`'s condition. Returns the new ETag.
    ///
    /// A state write whose condition the server does not implement (501, some S3-compatibles)
    /// is sent again without it: the state lock, held by the caller, is what protects it, as in
    /// OpenTofu, which never sends conditions. A lock file is never written unconditionally.
    pub async fn put(
        &self,
        key: &str,
        body: Bytes,
        mode: &PutMode,
        purpose: Purpose,
    ) -> Result<Version> {
        self.put_with_metadata(key, body, mode, purpose, &Metadata::new())
            .await
    }

    /// [`ObjectClient::put`] with user metadata.
    pub async fn put_with_metadata(
        &self,
        key: &str,
        body: Bytes,
        mode: &PutMode,
        purpose: Purpose,
        metadata: &Metadata,
    ) -> Result<Version> {
        let mut mode = mode.clone();
        loop {
            let e = match self
                .put_request(key, body.clone(), &mode, purpose)
                .set_metadata((!metadata.is_empty()).then(|| metadata.clone()))
                .send()
                .await
            {
                Ok(out) => return Ok(Version(out.e_tag.unwrap_or_default())),
                Err(e) => e,
            };
            let st = status(&e);
            if st == Some(501) && purpose == Purpose::State && mode != PutMode::Overwrite {
                mode = PutMode::Overwrite;
                continue;
            }
            return Err(match (code(&e), st, &mode) {
                (Some("NoSuchBucket"), _, _) => self.bucket_missing(),
                (_, Some(412), PutMode::Create) => Error::AlreadyExists {
                    what: self.url(key),
                },
                (_, Some(412) | Some(409), _) => Error::Precondition {
                    what: self.url(key),
                    message: describe(&e),
                },
                _ => self.service("PutObject", key, e),
            });
        }
    }

    fn put_request(
        &self,
        key: &str,
        body: Bytes,
        mode: &PutMode,
        purpose: Purpose,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        let cfg = &self.cfg;
        let mut req = self
            .s3
            .put_object()
            .bucket(&cfg.bucket)
            .key(key)
            .content_type("application/json")
            .content_length(body.len() as i64)
            .body(ByteStream::from(body));
        if !cfg.skip_s3_checksum {
            req = req.checksum_algorithm(ChecksumAlgorithm::Sha256);
        }
        if cfg.encrypt {
            if let Some(kms) = &cfg.kms_key_id {
                req = req
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(kms);
            } else if let Some((alg, k, md5)) = sse_c(cfg) {
                req = req
                    .sse_customer_algorithm(alg)
                    .sse_customer_key(k)
                    .sse_customer_key_md5(md5);
            } else {
                req = req.server_side_encryption(ServerSideEncryption::Aes256);
            }
        }
        if let Some(acl) = &cfg.acl {
            req = req.acl(ObjectCannedAcl::from(acl.as_str()));
        }
        let tags = match purpose {
            Purpose::State => &cfg.state_tags,
            Purpose::LockFile => &cfg.lock_tags,
        };
        if let Some(t) = tagging(tags) {
            req = req.tagging(t);
        }
        match mode {
            PutMode::Create => req.if_none_match("*"),
            PutMode::Update(v) => req.if_match(&v.0),
            PutMode::Overwrite => req,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self
            .s3
            .delete_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("NoSuchBucket") => Err(self.bucket_missing()),
            Err(e) => Err(self.service("DeleteObject", key, e)),
        }
    }

    /// DeleteObject on the condition that the object's ETag is still `etag` (`If-Match`).
    pub async fn delete_if_match(&self, key: &str, etag: &str) -> Result<()> {
        match self
            .s3
            .delete_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("NoSuchBucket") => Err(self.bucket_missing()),
            Err(e) if status(&e) == Some(412) || status(&e) == Some(404) => {
                Err(Error::Precondition {
                    what: self.url(key),
                    message: format!("If-Match {etag}: {}", describe(&e)),
                })
            }
            Err(e) => Err(self.service("DeleteObject", key, e)),
        }
    }

    /// Every key under `prefix` (no delimiter, all pages). AccessDenied ends the listing with
    /// what was found so far, as OpenTofu does.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = match self.list_page(prefix, None, token.as_deref()).await {
                Ok(p) => p,
                Err(Error::Service {
                    kind: stateseal_core::ServiceErrorKind::AccessDenied,
                    ..
                }) => return Ok(keys),
                Err(e) => return Err(e),
            };
            keys.extend(page.objects.into_iter().map(|o| o.key));
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(keys),
            }
        }
    }

    /// One page (up to 1,000 keys) of ListObjectsV2 under `prefix`: the first one after
    /// `start_after`, or the one `token` (a previous page's [`ObjectPage::next`]) continues.
    pub async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
    ) -> Result<ObjectPage> {
        let out = self
            .s3
            .list_objects_v2()
            .bucket(&self.cfg.bucket)
            .max_keys(1000)
            .set_prefix((!prefix.is_empty()).then(|| prefix.to_string()))
            .set_start_after(start_after.map(String::from))
            .set_continuation_token(token.map(String::from))
            .send()
            .await
            .map_err(|e| match code(&e) {
                Some("NoSuchBucket") => self.bucket_missing(),
                _ => self.service("ListObjectsV2", prefix, e),
            })?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ListedObject {
                    key: o.key.clone()?,
                    etag: o.e_tag.clone().unwrap_or_default(),
                    size: o.size.unwrap_or(0).max(0) as u64,
                    last_modified: rfc3339(o.last_modified()),
                })
            })
            .collect();
        let next = match out.next_continuation_token {
            Some(t) if out.is_truncated == Some(true) => Some(t),
            _ => None,
        };
        Ok(ObjectPage { objects, next })
    }

    /// Versions and delete markers of exactly `key` (not `key.tflock`), newest first.
    pub async fn versions(&self, key: &str) -> Result<Vec<VersionInfo>> {
        let mut out_list = Vec::new();
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let mut req = self
                .s3
                .list_object_versions()
                .bucket(&self.cfg.bucket)
                .prefix(key);
            if let Some(k) = &key_marker {
                req = req.key_marker(k);
            }
            if let Some(v) = &version_marker {
                req = req.version_id_marker(v);
            }
            let out = match req.send().await {
                Ok(o) => o,
                Err(e) if code(&e) == Some("NoSuchBucket") => return Err(self.bucket_missing()),
                Err(e) => return Err(self.service("ListObjectVersions", key, e)),
            };
            for v in out.versions() {
                if v.key() == Some(key) {
                    out_list.push(VersionInfo {
                        id: v.version_id().unwrap_or("null").to_string(),
                        last_modified: rfc3339(v.last_modified()),
                        size: v.size().unwrap_or(0) as u64,
                        is_latest: v.is_latest() == Some(true),
                        is_delete_marker: false,
                    });
                }
            }
            for m in out.delete_markers() {
                if m.key() == Some(key) {
                    out_list.push(VersionInfo {
                        id: m.version_id().unwrap_or("null").to_string(),
                        last_modified: rfc3339(m.last_modified()),
                        size: 0,
                        is_latest: m.is_latest() == Some(true),
                        is_delete_marker: true,
                    });
                }
            }
            if out.is_truncated == Some(true) {
                key_marker = out.next_key_marker;
                version_marker = out.next_version_id_marker;
            } else {
                break;
            }
        }
        out_list.sort_by(|a, b| {
            b.last_modified
                .cmp(&a.last_modified)
                .then(b.is_latest.cmp(&a.is_latest))
        });
        Ok(out_list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_customer_key_is_sent_only_when_encrypt_is_on() {
        let mut cfg = S3Config::default();
        cfg.sse_customer_key = Some(stateseal_core::Secret::from(&[7u8; 32][..]));
        cfg.encrypt = false;
        assert_eq!(sse_c_headers(&cfg), (None, None, None));
        cfg.encrypt = true;
        let (alg, key, md5) = sse_c_headers(&cfg);
        assert_eq!(alg.as_deref(), Some("AES256"));
        assert_eq!(key.map(|k| k.len()), Some(44));
        assert_eq!(md5.map(|m| m.len()), Some(24));
    }

    #[test]
    fn tags_encode_like_go_url_values() {
        let mut t = std::collections::BTreeMap::new();
        t.insert("team".to_string(), "a b&c".to_string());
        t.insert("env".to_string(), "prod/1".to_string());
        assert_eq!(tagging(&t).unwrap(), "env=prod%2F1&team=a+b%26c");
        assert_eq!(tagging(&Default::default()), None);
    }
}
