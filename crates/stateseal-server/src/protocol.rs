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
//! it. Logical refusals are always 4xx; a refusal of the state rules (409) is JSON,
//! `{"refusal": …, "message": …}`. A 5xx means the server failed: 503 with `Retry-After` when a
//! key service or the storage can't be reached, else 500. The operations are [`crate::states`];
//! this module reads requests and maps outcomes through [`crate::reply`].
//! Nothing is ever redirected. An upload may carry `If-Match`/`If-None-Match: *` (412 when the
//! stored state is not the expected one), for clients that want optimistic concurrency.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest as _, Md5};
use stateseal_store::LockInfo;

use crate::app::BodyLimit;
use crate::at_rest::AtRest;
use crate::auth::Auth;
use crate::auth::{authorize_in_grace, Denied, Permission};
use crate::connections::{BodyTooSlow, ClientAddr};
use crate::error::{Missing, ServerError};
use crate::metrics::Metrics;
use crate::oidc::Freshness;
use crate::reply::Reply;
use crate::state_path::{query_value, Resource, StatePath};
use crate::states::{Expected, States};
use crate::storage::Storage;

/// `/state` and `/state/` name no state.
pub async fn no_path() -> Reply {
    Reply::text(
        StatusCode::BAD_REQUEST,
        "invalid state path: it is empty; states live at /state/<name>",
    )
}

/// Every request under `/state/`.
#[allow(clippy::too_many_arguments)] // the parts of the request and of the server it needs
pub async fn handle(
    State(storage): State<Arc<dyn Storage>>,
    State(at_rest): State<Arc<AtRest>>,
    State(auth): State<Option<Arc<Auth>>>,
    State(metrics): State<Arc<Metrics>>,
    State(BodyLimit(max_body_bytes)): State<BodyLimit>,
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
    let states = States {
        storage: &*storage,
        at_rest: &at_rest,
    };
    let principal =
        match authorize_in_grace(auth.as_deref(), client, &headers, Some(path), permission).await {
            Ok(w) => w,
            Err(denied) => {
                let r = Reply::from(denied);
                tracing::info!(
                    method = m,
                    path = path.as_str(),
                    status = r.status.as_u16(),
                    "request"
                );
                return r;
            }
        };
    // The OIDC token behind the request, and whether it is past its `exp` (then it may only
    // finish the apply under the lock it took: upload and UNLOCK with that lock ID).
    let session = principal.as_ref().and_then(|p| p.1.clone());
    let oidc = auth.as_deref().map(Auth::oidc);
    let in_grace = session
        .as_ref()
        .filter(|s| s.freshness == Freshness::Grace)
        .map(|s| s.identity.clone());
    let grace_refusal = |what: &str| -> Reply {
        match auth.as_deref() {
            Some(a) => Denied::expired(a, what).into(),
            None => Reply::text(StatusCode::UNAUTHORIZED, what.to_string()),
        }
    };
    if let (Some(identity), Some(oidc)) = (&in_grace, oidc) {
        let bound = match (&resource, m) {
            // Its binding, and the lock still held under that ID (not force-unlocked since).
            (Resource::State(p), "POST" | "PUT") => {
                oidc.holds_lock(identity, p.as_str(), id.as_deref())
                    && id.is_some()
                    && matches!(states.lock_holder(p).await, Ok(Some(h)) if Some(&h.id) == id.as_ref())
            }
            (Resource::State(p) | Resource::Lock(p), "GET" | "HEAD") => {
                oidc.holds_lock(identity, p.as_str(), None)
            }
            // Checked below, with the lock ID of the body.
            (Resource::State(_), "UNLOCK") | (Resource::Lock(_), "UNLOCK" | "DELETE") => true,
            _ => false,
        };
        if !bound {
            let r = grace_refusal(
                "after exp, it may only finish the apply under the lock it took (no new lock)",
            );
            tracing::info!(
                method = m,
                path = path.as_str(),
                status = r.status.as_u16(),
                "request"
            );
            return r;
        }
    }
    let who = principal.map(|p| p.0);
    let reply = match (&resource, m) {
        (Resource::State(p), "GET" | "HEAD") => get(states, &metrics, p).await,
        (Resource::State(p), "POST" | "PUT") => {
            match read_body(&headers, body, max_body_bytes, "max_body_bytes").await {
                Ok(b) => answer(
                    &metrics,
                    states
                        .upload(p, id.as_deref(), b, who, &expected(&headers))
                        .await
                        .map(|()| Reply::ok()),
                ),
                Err(r) => r,
            }
        }
        (Resource::State(p), "DELETE") => answer(
            &metrics,
            states
                .delete(p, id.as_deref(), who)
                .await
                .map(|()| Reply::ok()),
        ),
        (Resource::State(p), "LOCK") | (Resource::Lock(p), "LOCK" | "POST") => {
            match read_body(&headers, body, MAX_LOCK_BODY_BYTES, "the lock-info limit").await {
                Ok(b) => match parse_lock_info(&b) {
                    Ok(Some(mut info)) => {
                        let lock_id = info.id.clone();
                        if session.is_some() {
                            // The console and every 423 name the holder by its verified identity.
                            info.who = who.clone().unwrap_or_default();
                        }
                        let r = answer(
                            &metrics,
                            states
                                .lock(p, info)
                                .await
                                .map(|stored| Reply::json(StatusCode::OK, stored.to_json())),
                        );
                        if let (Some(s), Some(oidc), true) =
                            (&session, oidc, r.status == StatusCode::OK)
                        {
                            oidc.bind_lock(&s.identity, p.as_str(), &lock_id);
                        }
                        r
                    }
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
                    Ok(info) => {
                        let lock_id = info.as_ref().map(|i| i.id.clone());
                        let bound = match (&in_grace, oidc) {
                            (Some(identity), Some(oidc)) => {
                                oidc.holds_lock(identity, p.as_str(), lock_id.as_deref())
                                    && lock_id.is_some()
                            }
                            _ => true,
                        };
                        if bound {
                            let r = answer(
                                &metrics,
                                states.unlock(p, info).await.map(|()| Reply::ok()),
                            );
                            if let (Some(oidc), true) = (oidc, r.status == StatusCode::OK) {
                                oidc.unbind_lock(p.as_str(), lock_id.as_deref());
                            }
                            r
                        } else {
                            grace_refusal("after exp, it may only release the lock it took")
                        }
                    }
                    Err(r) => r,
                },
                Err(r) => r,
            }
        }
        (Resource::Lock(p), "GET" | "HEAD") => answer(
            &metrics,
            states.lock_holder(p).await.and_then(|h| {
                h.map(|h| Reply::json(StatusCode::OK, h.to_json()))
                    .ok_or(ServerError::NotFound(Missing::Lock))
            }),
        ),
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
            Some(&metrics.lock_conflicts)
        }
        (Permission::Write, StatusCode::LOCKED) => Some(&metrics.write_conflicts_locked),
        (Permission::Write, StatusCode::CONFLICT) => Some(&metrics.write_conflicts_successor),
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

/// The live state, with its `ETag`.
async fn get(states: States<'_>, metrics: &Metrics, path: &StatePath) -> Reply {
    answer(
        metrics,
        states.read(path).await.map(|(record, bytes)| {
            let mut r = Reply::json(StatusCode::OK, bytes);
            r.etag = Some(format!("\"{}\"", record.sha256));
            r
        }),
    )
}

/// A domain outcome as an answer, counting encryption failures for `/metrics`.
pub(crate) fn answer(metrics: &Metrics, outcome: Result<Reply, ServerError>) -> Reply {
    match outcome {
        Ok(r) => r,
        Err(e) => {
            if matches!(
                e,
                ServerError::Encryption { .. }
                    | ServerError::KeyService { .. }
                    | ServerError::SealUnverified { .. }
            ) {
                metrics
                    .encryption_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Reply::from(e)
        }
    }
}

/// `If-Match` and `If-None-Match: *` on an upload: optimistic concurrency for clients that want
/// it (an extension; Terraform and OpenTofu send neither).
fn expected(headers: &HeaderMap) -> Expected {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    Expected {
        if_match: text(header::IF_MATCH).map(|t| t.trim().to_string()),
        if_none_match_any: text(header::IF_NONE_MATCH).is_some_and(|t| t.trim() == "*"),
    }
}
