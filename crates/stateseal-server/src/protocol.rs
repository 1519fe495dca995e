//! The HTTP backend protocol (BACKENDS.md §4.3, §4.4): what each verb on `/state/<path>` does
//! and which status and body it answers, for every Terraform and OpenTofu version.
//!
//! | request | success | refusals |
//! |---|---|---|
//! | `GET` | 200 + the bytes the client stored, `ETag` | 404 nothing stored |
//! | `POST`/`PUT` `[?ID=]` | 200 (also for a retry of the stored serial with the same bytes) | 400 not a state, 409 older serial / other lineage / same serial other bytes, 413 too large, 423 + holder when locked by another ID |
//! | `DELETE [?ID=]` | 200 | 404, 423 + holder |
//! | `LOCK`, `POST …/lock` | 200 (also when already held with the same ID) | 400 no lock info, 423 + holder |
//! | `UNLOCK`, `DELETE …/lock` | 200 (also when not locked) | 400 bad lock info, 423 + holder for another ID |
//!
//! UNLOCK bodies (§4.4): full LockInfo or only its `ID` (OpenTofu 1.10+ force-unlock) release
//! the lock when the ID is the holder's; an empty body, with or without `Content-Type` and the
//! MD5 of nothing (Terraform's and OpenTofu 1.7–1.9's force-unlock), releases it whoever holds
//! it. Logical refusals are always 4xx; a 5xx means the server itself failed (disk, keys).
//! Nothing is ever redirected. An upload may carry `If-Match`/`If-None-Match: *` (412 when the
//! stored state is not the expected one), for clients that want optimistic concurrency.

use std::sync::Arc;

use crate::successor::{check_successor, Content, Snapshot, Successor};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest as _, Md5};
use stateseal_store::lock_info::GoTime;
use stateseal_store::LockInfo;

use crate::at_rest::{classify, Incoming, SealError};
use crate::auth::{authorize, Permission};
use crate::connections::{BodyTooSlow, ClientAddr};
use crate::state_path::{query_value, Resource, StatePath};
use crate::storage::{Error as StorageError, Released, Stored, Taken, VersionRecord};
use crate::App;

/// An answer: status, body, and whether the body is JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    pub json: bool,
    /// A 401 that asks for Basic credentials.
    pub www_authenticate: bool,
    /// The `ETag` of a state answered by GET.
    pub etag: Option<String>,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl Reply {
    pub(crate) fn ok() -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Bytes::new(),
            json: false,
            www_authenticate: false,
            etag: None,
            retry_after: None,
        }
    }

    pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            body: body.into(),
            json: true,
            www_authenticate: false,
            etag: None,
            retry_after: None,
        }
    }

    pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Reply {
        let mut message = message.into();
        message.push('\n');
        Reply {
            status,
            body: message.into(),
            json: false,
            www_authenticate: false,
            etag: None,
            retry_after: None,
        }
    }

    /// 423 with the holder's LockInfo, as Go marshals it: what every client version needs to
    /// show the real holder (and to retry under `-lock-timeout`).
    pub(crate) fn locked(holder: &LockInfo) -> Reply {
        Reply::json(StatusCode::LOCKED, holder.to_json())
    }

    /// The server failed (storage, keys): 500. The error is logged; the answer says only
    /// what failed, never the error itself (it names server files and directories).
    pub(crate) fn failed(what: &str, e: impl std::fmt::Display) -> Reply {
        tracing::error!(error = %e, "{what}");
        Reply::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what}: the server could not complete this request; its log has the details"),
        )
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.body).into_response();
        let ct = if self.json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        if let Some(tag) = self.etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
            r.headers_mut().insert(header::ETAG, tag);
        }
        if let Some(v) = self
            .retry_after
            .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.www_authenticate {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"stateseal\""),
            );
        }
        r
    }
}

/// `/state` and `/state/` name no state.
pub async fn no_path() -> Reply {
    Reply::text(
        StatusCode::BAD_REQUEST,
        "invalid state path: it is empty; states live at /state/<name>",
    )
}

/// Every request under `/state/`.
pub async fn handle(
    State(app): State<Arc<App>>,
    client: ClientAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    let raw = uri.path().strip_prefix("/state/").unwrap_or_default();
    let resource = match Resource::parse(raw) {
        Ok(r) => r,
        Err(e) => return Reply::text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let id = query_value(uri.query(), "ID");
    let m = method.as_str();
    let (path, permission) = match (&resource, m) {
        (Resource::State(p), "POST" | "PUT") => (p, Permission::Write),
        (Resource::State(p), "DELETE") => (p, Permission::Admin),
        (Resource::State(p), "LOCK" | "UNLOCK")
        | (Resource::Lock(p), "LOCK" | "POST" | "UNLOCK" | "DELETE") => (p, Permission::Lock),
        (Resource::State(p) | Resource::Lock(p), _) => (p, Permission::Read),
    };
    let who = match authorize(&app, client, &headers, Some(path), permission).await {
        Ok(w) => w.map(|p| p.0),
        Err(r) => {
            tracing::info!(
                method = m,
                path = path.as_str(),
                status = r.status.as_u16(),
                "request"
            );
            return r;
        }
    };
    let reply = match (&resource, m) {
        (Resource::State(p), "GET" | "HEAD") => get(&app, p).await,
        (Resource::State(p), "POST" | "PUT") => {
            match read_body(&headers, body, app.max_body_bytes, "max_body_bytes").await {
                Ok(b) => update(&app, p, id, b, who, Precondition::from_headers(&headers)).await,
                Err(r) => r,
            }
        }
        (Resource::State(p), "DELETE") => delete(&app, p, id, who).await,
        (Resource::State(p), "LOCK") | (Resource::Lock(p), "LOCK" | "POST") => {
            match read_body(&headers, body, MAX_LOCK_BODY_BYTES, "the lock-info limit").await {
                Ok(b) => match parse_lock_info(&b) {
                    Ok(Some(info)) => lock(&app, p, info).await,
                    Ok(None) => Reply::text(
                        StatusCode::BAD_REQUEST,
                        "LOCK needs the lock info (LockInfo JSON with a non-empty ID) as its body",
                    ),
                    Err(r) => r,
                },
                Err(r) => r,
            }
        }
        (Resource::State(p), "UNLOCK") | (Resource::Lock(p), "UNLOCK" | "DELETE") => {
            match read_body(&headers, body, MAX_LOCK_BODY_BYTES, "the lock-info limit").await {
                Ok(b) => match parse_lock_info(&b) {
                    Ok(info) => unlock(&app, p, info).await,
                    Err(r) => r,
                },
                Err(r) => r,
            }
        }
        (Resource::Lock(p), "GET" | "HEAD") => match app.storage.lock_holder(p).await {
            Ok(Some(h)) => Reply::json(StatusCode::OK, h.to_json()),
            Ok(None) => Reply::text(StatusCode::NOT_FOUND, "the state is not locked"),
            Err(e) => Reply::failed("reading the lock failed", e),
        },
        (Resource::State(_), _) => Reply::text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{m} is not a state operation: use GET, POST, PUT, DELETE, LOCK or UNLOCK"),
        ),
        (Resource::Lock(_), _) => Reply::text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{m} is not a lock operation: use POST (lock), DELETE (unlock) or GET"),
        ),
    };
    let counter = match (permission, reply.status) {
        (Permission::Lock, StatusCode::LOCKED) if matches!(m, "LOCK" | "POST") => {
            Some(&app.metrics.lock_conflicts)
        }
        (Permission::Write, StatusCode::LOCKED) => Some(&app.metrics.write_conflicts_locked),
        (Permission::Write, StatusCode::CONFLICT) => Some(&app.metrics.write_conflicts_successor),
        _ => None,
    };
    if let Some(c) = counter {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    tracing::info!(
        method = m,
        path = path.as_str(),
        status = reply.status.as_u16(),
        "request"
    );
    reply
}

/// Largest LOCK/UNLOCK body (lock info): 64 KiB, 413 beyond it. Every 423 answer and every
/// listing repeats the stored lock info, so it stays small.
pub const MAX_LOCK_BODY_BYTES: u64 = 64 * 1024;

/// True when `e` or an error it wraps is a `T`.
fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<T>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Reads the body, up to `limit` bytes (413 beyond it, naming `limit_name`), at the minimum
/// rate (408 when slower, [`crate::connections::MIN_BODY_RATE`]), and checks `Content-MD5` when
/// sent (400 on a mismatch).
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
    limit_name: &str,
) -> Result<Bytes, Reply> {
    let too_large = || {
        Reply::text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than this server's limit of {limit} bytes ({limit_name}); nothing was written"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(e) => {
            let e = e.into_inner();
            return Err(if caused_by::<http_body_util::LengthLimitError>(&*e) {
                too_large()
            } else if caused_by::<BodyTooSlow>(&*e) {
                Reply::text(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("{}; nothing was written", BodyTooSlow),
                )
            } else {
                Reply::text(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                )
            });
        }
    };
    if let Some(sent) = headers.get("content-md5") {
        let sent = sent.to_str().ok().and_then(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .ok()
        });
        let actual = Md5::digest(&bytes);
        if sent.as_deref() != Some(actual.as_slice()) {
            return Err(Reply::text(
                StatusCode::BAD_REQUEST,
                format!(
                    "Content-MD5 does not match the body (the body's MD5 is {}); the body was damaged on the way and nothing was written",
                    base64::engine::general_purpose::STANDARD.encode(actual)
                ),
            ));
        }
    }
    Ok(bytes)
}

/// Parses a LOCK/UNLOCK body. `Ok(None)` for an empty body; a JSON body must carry an ID.
pub(crate) fn parse_lock_info(body: &[u8]) -> Result<Option<LockInfo>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match LockInfo::parse(body) {
        Ok(info) if !info.id.is_empty() => Ok(Some(info)),
        Ok(_) => Err(Reply::text(
            StatusCode::BAD_REQUEST,
            "the lock info has no ID",
        )),
        Err(e) => Err(Reply::text(StatusCode::BAD_REQUEST, e.to_string())),
    }
}

/// Reads the stored bytes, then decrypts them on the blocking pool.
async fn get(app: &Arc<App>, path: &StatePath) -> Reply {
    let (record, stored) = match app.storage.read_live(path).await {
        Ok(Some(r)) => r,
        Ok(None) => return Reply::text(StatusCode::NOT_FOUND, "no state is stored here"),
        Err(e) => return Reply::failed("reading the state failed", e),
    };
    match open(app, stored, record.stored).await {
        Ok(b) => {
            let mut r = Reply::json(StatusCode::OK, b);
            r.etag = Some(format!("\"{}\"", record.sha256));
            r
        }
        Err(r) => r,
    }
}

/// What the client stored, from stored bytes (decrypted on the blocking pool when the server
/// encrypted them).
pub(crate) async fn open(app: &Arc<App>, stored: Bytes, how: Stored) -> Result<Vec<u8>, Reply> {
    let app2 = app.clone();
    let opened = tokio::task::spawn_blocking(move || app2.at_rest.open(stored.to_vec(), how)).await;
    match opened {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            app.metrics
                .encryption_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(Reply::failed("reading the state failed", e))
        }
        Err(e) => Err(Reply::failed("reading the state failed", e)),
    }
}

/// `If-Match` and `If-None-Match: *` on an upload: optimistic concurrency for clients that want
/// it (an extension; Terraform and OpenTofu send neither). The entity tag is the one GET
/// answers: the SHA-256 of the bytes the client stored.
#[derive(Clone, Debug, Default)]
pub(crate) struct Precondition {
    if_match: Option<String>,
    if_none_match_any: bool,
}

impl Precondition {
    fn from_headers(headers: &HeaderMap) -> Precondition {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        Precondition {
            if_match: text(header::IF_MATCH).map(|t| t.trim().to_string()),
            if_none_match_any: text(header::IF_NONE_MATCH).is_some_and(|t| t.trim() == "*"),
        }
    }

    /// 412 when the stored state is not the one the client expects.
    fn check(&self, live: Option<&VersionRecord>) -> Result<(), Reply> {
        let failed = |why: String| {
            Err(Reply::text(
                StatusCode::PRECONDITION_FAILED,
                format!("{why}; nothing was written"),
            ))
        };
        if self.if_none_match_any && live.is_some() {
            return failed("If-None-Match: * but a state is stored".into());
        }
        if let Some(want) = &self.if_match {
            let current = live.map(|l| format!("\"{}\"", l.sha256));
            let matches = match (want.as_str(), &current) {
                (_, None) => false,
                ("*", Some(_)) => true,
                (w, Some(c)) => w.split(',').any(|t| t.trim().trim_start_matches("W/") == c),
            };
            if !matches {
                return failed(format!(
                    "If-Match {want} but the stored state is {}",
                    current.as_deref().unwrap_or("absent")
                ));
            }
        }
        Ok(())
    }
}

/// 423 unless the state is free or `id` is the holder's; else the holder, if any.
pub(crate) async fn check_holder(
    app: &App,
    path: &StatePath,
    id: Option<&str>,
) -> Result<Option<LockInfo>, Reply> {
    match app.storage.lock_holder(path).await {
        Ok(Some(h)) if Some(h.id.as_str()) != id => Err(Reply::locked(&h)),
        Ok(h) => Ok(h),
        Err(e) => Err(Reply::failed("reading the lock failed", e)),
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What to do, decided from the live version.
pub(crate) enum Decision {
    /// Store `body` (what the client sent, or a rollback's rewrite) as the new version.
    Write {
        body: Bytes,
        incoming: Incoming,
        /// The answer once it is stored.
        then: Reply,
    },
    /// Delete the state.
    Delete,
    /// Write nothing; answer this.
    Answer(Reply),
}

/// How often a write is decided again because another writer (another server instance on
/// the same bucket) changed the state in between, before giving up with 409.
const ATTEMPTS: usize = 8;

/// The write path shared by uploads, deletions and rollbacks: checks the lock (423 unless the
/// state is free or `id` holds it), reads the live version, lets `decide` choose, and stores
/// the result on the condition that the live version is still the one decided on, deciding
/// again when it is not.
pub(crate) async fn write_decided(
    app: &Arc<App>,
    path: &StatePath,
    id: Option<&str>,
    user: Option<String>,
    mut decide: impl FnMut(Option<&VersionRecord>) -> Decision + Send,
) -> Reply {
    for _ in 0..ATTEMPTS {
        let holder = match check_holder(app, path, id).await {
            Ok(h) => h,
            Err(r) => return r,
        };
        let live = match app.storage.live(path).await {
            Ok(l) => l,
            Err(e) => return Reply::failed("reading the state failed", e),
        };
        let who = user.clone().or(holder.map(|h| h.who)).unwrap_or_default();
        let expected = live.as_ref().map(|l| l.token.as_str());
        let (record, bytes, then) = match decide(live.as_ref().map(|l| &l.record)) {
            Decision::Answer(r) => return r,
            Decision::Delete => {
                let Some(l) = &live else {
                    return Reply::text(StatusCode::NOT_FOUND, "no state is stored here");
                };
                let record = VersionRecord {
                    seq: 0,
                    size: 0,
                    time: GoTime::now().rfc3339_nano(),
                    who,
                    stored: Stored::Deleted,
                    sha256: sha256_hex(b""),
                    version_id: None,
                    ..l.record.clone()
                };
                (record, Bytes::new(), Reply::ok())
            }
            Decision::Write {
                body,
                incoming,
                then,
            } => match seal(app, body, incoming, who).await {
                Ok((record, bytes)) => (record, bytes, then),
                Err(r) => return r,
            },
        };
        match app.storage.append(path, expected, record, bytes).await {
            Ok(()) => return then,
            Err(StorageError::Changed) => continue,
            Err(e) => return Reply::failed("storing the state failed", e),
        }
    }
    Reply::text(
        StatusCode::CONFLICT,
        format!("refused: the state kept changing while this write was decided ({ATTEMPTS} times); nothing was written"),
    )
}

/// The bytes to store for an accepted body (encrypted on the blocking pool when the server
/// encrypts plaintext) and their record.
async fn seal(
    app: &Arc<App>,
    body: Bytes,
    incoming: Incoming,
    who: String,
) -> Result<(VersionRecord, Bytes), Reply> {
    let app2 = app.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        let sealed = app2.at_rest.seal(&body, &incoming);
        (sealed, body, incoming)
    })
    .await;
    let (sealed, body, incoming) = match sealed {
        Ok(s) => s,
        Err(e) => return Err(Reply::failed("storing the state failed", e)),
    };
    let (sealed, how) = match sealed {
        Ok(s) => s,
        Err(SealError::BadRequest(m)) => return Err(Reply::text(StatusCode::BAD_REQUEST, m)),
        Err(SealError::Failed(m)) => {
            app.metrics
                .encryption_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(Reply::failed("storing the state failed", m));
        }
    };
    let record = VersionRecord {
        seq: 0,
        serial: incoming.serial,
        lineage: incoming.lineage,
        size: body.len() as u64,
        time: GoTime::now().rfc3339_nano(),
        who,
        stored: how,
        sha256: sha256_hex(&body),
        version_id: None,
    };
    Ok((record, sealed.map(Bytes::from).unwrap_or(body)))
}

async fn update(
    app: &Arc<App>,
    path: &StatePath,
    id: Option<String>,
    body: Bytes,
    user: Option<String>,
    pre: Precondition,
) -> Reply {
    let incoming = match classify(&body) {
        Ok(i) => i,
        Err(e) => return Reply::text(StatusCode::BAD_REQUEST, format!("{e}; nothing was written")),
    };
    let digest = sha256_hex(&body);
    write_decided(app, path, id.as_deref(), user, |live| {
        if let Err(r) = pre.check(live) {
            return Decision::Answer(r);
        }
        let stored_snapshot = live.map(|c| Snapshot {
            serial: c.serial,
            lineage: &c.lineage,
            content: Content::Opaque(c.sha256.as_bytes()),
        });
        let offered = Snapshot {
            serial: incoming.serial,
            lineage: &incoming.lineage,
            content: Content::Opaque(digest.as_bytes()),
        };
        match check_successor(stored_snapshot.as_ref(), &offered) {
            Ok(Successor::Identical) => Decision::Answer(Reply::ok()),
            Ok(Successor::Newer) => Decision::Write {
                body: body.clone(),
                incoming: incoming.clone(),
                then: Reply::ok(),
            },
            Err(refusal) => Decision::Answer(Reply::text(
                StatusCode::CONFLICT,
                format!("refused: {refusal}; nothing was written"),
            )),
        }
    })
    .await
}

async fn delete(
    app: &Arc<App>,
    path: &StatePath,
    id: Option<String>,
    user: Option<String>,
) -> Reply {
    write_decided(app, path, id.as_deref(), user, |_| Decision::Delete).await
}

async fn lock(app: &Arc<App>, path: &StatePath, info: LockInfo) -> Reply {
    if crate::storage::is_unreadable_lock_id(&info.id) {
        return Reply::text(
            StatusCode::BAD_REQUEST,
            format!(
                "lock IDs starting with {:?} are reserved for unreadable lock records",
                crate::storage::UNREADABLE_LOCK_PREFIX
            ),
        );
    }
    match app.storage.lock(path, info).await {
        Ok(Taken::Yes(stored)) => Reply::json(StatusCode::OK, stored.to_json()),
        Ok(Taken::HeldBy(h)) => Reply::locked(&h),
        Err(e) => Reply::failed("recording the lock failed", e),
    }
}

async fn unlock(app: &Arc<App>, path: &StatePath, info: Option<LockInfo>) -> Reply {
    let id = match info {
        Some(i) => i.id,
        None => match app.storage.lock_holder(path).await {
            Ok(None) => return Reply::ok(),
            Ok(Some(holder)) => {
                tracing::warn!(
                    lock_id = %holder.id,
                    who = %holder.who,
                    "force-unlock: an UNLOCK without lock info released the lock"
                );
                holder.id
            }
            Err(e) => return Reply::failed("reading the lock failed", e),
        },
    };
    match app.storage.unlock(path, &id).await {
        Ok(Released::Yes | Released::NotLocked) => Reply::ok(),
        Ok(Released::HeldBy(h)) => Reply::locked(&h),
        Err(e) => Reply::failed("releasing the lock failed", e),
    }
}
