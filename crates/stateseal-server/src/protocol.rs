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
use crate::data_dir::{Slot, Stored, VersionRecord};
use crate::state_path::{query_value, Resource, StatePath};
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
}

impl Reply {
    pub(crate) fn ok() -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Bytes::new(),
            json: false,
            www_authenticate: false,
            etag: None,
        }
    }

    pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            body: body.into(),
            json: true,
            www_authenticate: false,
            etag: None,
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
        }
    }

    /// 423 with the holder's LockInfo, as Go marshals it: what every client version needs to
    /// show the real holder (and to retry under `-lock-timeout`).
    pub(crate) fn locked(holder: &LockInfo) -> Reply {
        Reply::json(StatusCode::LOCKED, holder.to_json())
    }

    /// The server failed (storage, keys): 500, logged.
    pub(crate) fn failed(what: &str, e: impl std::fmt::Display) -> Reply {
        tracing::error!(error = %e, "{what}");
        Reply::text(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}"))
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
    let who = match authorize(&app, &headers, Some(path), permission).await {
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
        (Resource::State(p), "POST" | "PUT") => match read_body(&app, &headers, body).await {
            Ok(b) => {
                let pre = Precondition::from_headers(&headers);
                on_slot(&app, p, move |slot, app| update(slot, app, id, b, who, pre)).await
            }
            Err(r) => r,
        },
        (Resource::State(p), "DELETE") => {
            on_slot(&app, p, move |slot, _| delete(slot, id, who)).await
        }
        (Resource::State(p), "LOCK") | (Resource::Lock(p), "LOCK" | "POST") => {
            match read_body(&app, &headers, body).await {
                Ok(b) => match parse_lock_info(&b) {
                    Ok(Some(info)) => on_slot(&app, p, move |slot, _| lock(slot, info)).await,
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
            match read_body(&app, &headers, body).await {
                Ok(b) => match parse_lock_info(&b) {
                    Ok(info) => on_slot(&app, p, move |slot, _| unlock(slot, info)).await,
                    Err(r) => r,
                },
                Err(r) => r,
            }
        }
        (Resource::Lock(p), "GET" | "HEAD") => {
            on_slot(&app, p, |slot, _| match slot.lock_holder() {
                Some(h) => Reply::json(StatusCode::OK, h.to_json()),
                None => Reply::text(StatusCode::NOT_FOUND, "the state is not locked"),
            })
            .await
        }
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

/// Runs `op` on the state's slot: locked (operations on one state are serialized), loaded,
/// and on the blocking pool (files are fsynced, states encrypted).
pub(crate) async fn with_slot<T: Send + 'static>(
    app: &Arc<App>,
    path: &StatePath,
    op: impl FnOnce(&mut Slot, &App) -> T + Send + 'static,
) -> Result<T, Reply> {
    let waiting = std::time::Instant::now();
    let guard = app.data.slot(path).await;
    app.metrics.state_wait(waiting.elapsed());
    let app = app.clone();
    let ran = tokio::task::spawn_blocking(move || {
        let mut slot = guard;
        match slot.load() {
            Ok(()) => Ok(op(&mut slot, &app)),
            Err(e) => Err(Reply::failed("reading the state's files failed", e)),
        }
    })
    .await;
    ran.unwrap_or_else(|e| Err(Reply::failed("the request failed", e)))
}

async fn on_slot(
    app: &Arc<App>,
    path: &StatePath,
    op: impl FnOnce(&mut Slot, &App) -> Reply + Send + 'static,
) -> Reply {
    with_slot(app, path, op).await.unwrap_or_else(|r| r)
}

/// Reads the body, up to the limit (413 beyond it), and checks `Content-MD5` when sent (400 on
/// a mismatch).
async fn read_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, Reply> {
    let too_large = || {
        Reply::text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than this server's limit of {} bytes (max_body_bytes); nothing was written",
                app.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes) {
        return Err(too_large());
    }
    let limit = usize::try_from(app.max_body_bytes).unwrap_or(usize::MAX);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.into_inner()
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
            return Err(if over {
                too_large()
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
fn parse_lock_info(body: &[u8]) -> Result<Option<LockInfo>, Reply> {
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

/// Reads the stored bytes with the state's slot locked, then decrypts them without it, so
/// GETs of one state run in parallel.
async fn get(app: &Arc<App>, path: &StatePath) -> Reply {
    let read = with_slot(app, path, |slot, _| {
        let Some(cur) = slot.live().cloned() else {
            return Err(Reply::text(
                StatusCode::NOT_FOUND,
                "no state is stored here",
            ));
        };
        match slot.data(cur.seq) {
            Ok(b) => Ok((b, cur.stored, cur.sha256)),
            Err(e) => Err(Reply::failed("reading the state failed", e)),
        }
    })
    .await;
    let (stored, how, digest) = match read {
        Ok(Ok(r)) => r,
        Ok(Err(r)) | Err(r) => return r,
    };
    let app2 = app.clone();
    let opened = tokio::task::spawn_blocking(move || app2.at_rest.open(stored, how)).await;
    match opened {
        Ok(Ok(b)) => {
            let mut r = Reply::json(StatusCode::OK, b);
            r.etag = Some(format!("\"{digest}\""));
            r
        }
        Ok(Err(e)) => {
            app.metrics
                .encryption_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Reply::failed("reading the state failed", e)
        }
        Err(e) => Reply::failed("reading the state failed", e),
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

/// 423 unless the state is free or `id` is the holder's.
pub(crate) fn check_holder(slot: &Slot, id: Option<&str>) -> Result<Option<LockInfo>, Reply> {
    match slot.lock_holder() {
        Some(h) if Some(h.id.as_str()) != id => Err(Reply::locked(h)),
        h => Ok(h.cloned()),
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn update(
    slot: &mut Slot,
    app: &App,
    id: Option<String>,
    body: Bytes,
    user: Option<String>,
    pre: Precondition,
) -> Reply {
    let incoming = match classify(&body) {
        Ok(i) => i,
        Err(e) => return Reply::text(StatusCode::BAD_REQUEST, format!("{e}; nothing was written")),
    };
    let holder = match check_holder(slot, id.as_deref()) {
        Ok(h) => h,
        Err(r) => return r,
    };
    if let Err(r) = pre.check(slot.live()) {
        return r;
    }
    let digest = sha256_hex(&body);
    let stored = slot.live().cloned();
    let stored_snapshot = stored.as_ref().map(|c| Snapshot {
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
        Ok(Successor::Identical) => return Reply::ok(),
        Ok(Successor::Newer) => {}
        Err(refusal) => {
            return Reply::text(
                StatusCode::CONFLICT,
                format!("refused: {refusal}; nothing was written"),
            )
        }
    }
    let who = user.or(holder.map(|h| h.who)).unwrap_or_default();
    write_version(slot, app, &body, incoming, digest, who)
}

/// Stores an accepted upload as the state's new version (encrypting plaintext when the server
/// encrypts). `digest` is [`sha256_hex`] of `body`.
pub(crate) fn write_version(
    slot: &mut Slot,
    app: &App,
    body: &[u8],
    incoming: Incoming,
    digest: String,
    who: String,
) -> Reply {
    let (sealed, how) = match app.at_rest.seal(body, &incoming) {
        Ok(s) => s,
        Err(SealError::BadRequest(m)) => return Reply::text(StatusCode::BAD_REQUEST, m),
        Err(SealError::Failed(m)) => {
            app.metrics
                .encryption_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Reply::failed("storing the state failed", m);
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
        sha256: digest,
    };
    match slot.append(record, sealed.as_deref().unwrap_or(body)) {
        Ok(_) => Reply::ok(),
        Err(e) => Reply::failed("storing the state failed", e),
    }
}

fn delete(slot: &mut Slot, id: Option<String>, user: Option<String>) -> Reply {
    let holder = match check_holder(slot, id.as_deref()) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let Some(cur) = slot.live().cloned() else {
        return Reply::text(StatusCode::NOT_FOUND, "no state is stored here");
    };
    let record = VersionRecord {
        seq: 0,
        size: 0,
        time: GoTime::now().rfc3339_nano(),
        who: user.or(holder.map(|h| h.who)).unwrap_or_default(),
        stored: Stored::Deleted,
        sha256: sha256_hex(b""),
        ..cur
    };
    match slot.append(record, b"") {
        Ok(_) => Reply::ok(),
        Err(e) => Reply::failed("deleting the state failed", e),
    }
}

fn lock(slot: &mut Slot, info: LockInfo) -> Reply {
    match slot.lock_holder() {
        // A retried LOCK whose first 200 was lost.
        Some(h) if h.id == info.id => return Reply::json(StatusCode::OK, h.to_json()),
        Some(h) => return Reply::locked(h),
        None => {}
    }
    let json = info.to_json();
    match slot.set_lock(info) {
        Ok(()) => Reply::json(StatusCode::OK, json),
        Err(e) => Reply::failed("recording the lock failed", e),
    }
}

fn unlock(slot: &mut Slot, info: Option<LockInfo>) -> Reply {
    let Some(holder) = slot.lock_holder().cloned() else {
        return Reply::ok();
    };
    match &info {
        Some(i) if i.id != holder.id => return Reply::locked(&holder),
        Some(_) => {}
        None => tracing::warn!(
            lock_id = %holder.id,
            who = %holder.who,
            "force-unlock: an UNLOCK without lock info released the lock"
        ),
    }
    match slot.clear_lock() {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::failed("releasing the lock failed", e),
    }
}
