//! The JSON API over what the server keeps, and rollback:
//!
//! * `GET /v1/states[?prefix=P][&max_keys=N][&continuation_token=T]`: the states under a
//!   prefix, each with its newest version and its lock holder (`null` when free); with
//!   `max_keys`, a page of at most N states and, when more follow, `next_continuation_token`
//!   (pass it as `continuation_token` for the next page), in the style of S3's ListObjectsV2;
//! * `GET /v1/locks[?prefix=P]` (paged the same way): only the held locks;
//! * `GET /v1/versions/<path>`: every version of a state, newest first (seq, serial, lineage,
//!   size, time, who, encrypted, stored);
//! * `GET /v1/versions/<path>?seq=N`: the bytes of version N, as the client sent them;
//! * `POST /v1/rollback/<path>?seq=N[&ID=lock]`: writes version N again as a *new* version
//!   whose serial is one above the current one (never a rewind), under the same lock rules as
//!   an upload. A client-encrypted version can't be rolled back here: its serial is inside the
//!   ciphertext, which the server can't rewrite (use `stateseal state restore` with the key).
//!
//! Plus `GET /healthz`, which also says whether encryption at rest is on.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};
use stateseal_store::LockInfo;

use crate::at_rest::AtRest;
use crate::auth::Auth;
use crate::auth::{authorize, Permission};
use crate::connections::ClientAddr;
use crate::error::{Missing, ServerError};
use crate::metrics::Metrics;
use crate::protocol::answer;
use crate::reply::Reply;
use crate::state_path::{query_value, StatePath};
use crate::states::{Listing, States};
use crate::storage::{Page, Storage, Stored, VersionRecord};

#[derive(Serialize)]
struct VersionView<'a> {
    seq: u64,
    serial: u64,
    lineage: &'a str,
    size: u64,
    time: &'a str,
    who: &'a str,
    encrypted: bool,
    stored: Stored,
    /// The S3 object version (S3 storage only).
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<&'a str>,
}

fn view(r: &VersionRecord) -> Value {
    serde_json::to_value(VersionView {
        seq: r.seq,
        serial: r.serial,
        lineage: &r.lineage,
        size: r.size,
        time: &r.time,
        who: &r.who,
        encrypted: matches!(
            r.stored,
            Stored::ServerEncrypted | Stored::ClientEnvelope | Stored::DirectEnvelope
        ),
        stored: r.stored,
        version_id: r.version_id.as_deref(),
    })
    .expect("serializes")
}

fn lock_value(h: Option<&LockInfo>) -> Value {
    h.map_or(Value::Null, |h| {
        serde_json::from_str(&h.to_json()).expect("lock info is JSON")
    })
}

fn path_after(uri: &Uri, prefix: &str) -> Result<StatePath, Reply> {
    let raw = uri.path().strip_prefix(prefix).unwrap_or_default();
    StatePath::parse(raw).map_err(|e| Reply::text(StatusCode::BAD_REQUEST, e.to_string()))
}

/// The most states one page may ask for (`max_keys`), as S3's ListObjectsV2.
pub const MAX_PAGE: usize = 1000;

/// Why a page's query parameters were refused.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("max_keys must be a number from 1 to {MAX_PAGE}")]
    Size,
    #[error("continuation_token is not one this server gave out (use next_continuation_token from the previous page)")]
    Token,
}

/// The continuation token of the page after `last`, the last state of a page: opaque to
/// clients (base64url of the path).
pub fn continuation_token(last: &StatePath) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_str())
}

/// The page a query asks for: `max_keys` and `continuation_token`, in the style of S3's
/// ListObjectsV2 (none of them: every state).
pub fn page_from_query(query: Option<&str>) -> Result<Page, PageError> {
    let limit = match query_value(query, "max_keys") {
        None => None,
        Some(n) => match n.parse::<usize>() {
            Ok(n @ 1..=MAX_PAGE) => Some(n),
            _ => return Err(PageError::Size),
        },
    };
    let after = match query_value(query, "continuation_token").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t.trim())
                .map_err(|_| PageError::Token)?;
            let path = String::from_utf8(bytes).map_err(|_| PageError::Token)?;
            Some(StatePath::parse(&path).map_err(|_| PageError::Token)?)
        }
    };
    Ok(Page { after, limit })
}

/// A page of the states under `prefix` that `who` may read (all of them without an `auth`
/// block): what the JSON API and the console list.
pub(crate) async fn list_states(
    states: States<'_>,
    auth: Option<&Auth>,
    prefix: String,
    page: &Page,
    who: Option<&crate::auth::Principal>,
) -> Result<Listing, ServerError> {
    let visible = |p: &StatePath| match (auth, who) {
        (Some(auth), Some(who)) => auth.allows(who, p, Permission::Read),
        _ => true,
    };
    states.list(&prefix, page, &visible).await
}

/// A listing's rows as JSON, and the next page's token.
type Listed = (Vec<(StatePath, Value)>, Option<String>);

async fn listed(
    states: States<'_>,
    auth: Option<&Auth>,
    metrics: &Metrics,
    client: ClientAddr,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Listed, Reply> {
    let who = authorize(auth, client, headers, None, Permission::Read).await?;
    let prefix = query_value(uri.query(), "prefix").unwrap_or_default();
    let page = page_from_query(uri.query())
        .map_err(|e| Reply::text(StatusCode::BAD_REQUEST, e.to_string()))?;
    let listing = list_states(states, auth, prefix, &page, who.as_ref())
        .await
        .map_err(|e| answer(metrics, Err(e)))?;
    let next = listing.next.as_ref().map(continuation_token);
    let rows = listing
        .rows
        .into_iter()
        .map(|r| {
            let mut entry = json!({
                "current": r.current.as_ref().map(view),
                "lock": lock_value(r.lock.as_ref()),
            });
            if r.lock_unreadable() {
                entry["lock_unreadable"] = Value::Bool(true);
            }
            if r.unreadable {
                entry["unreadable"] = Value::Bool(true);
            }
            (r.path, entry)
        })
        .collect();
    Ok((rows, next))
}

/// `GET /v1/states`.
pub async fn states(
    State(storage): State<Arc<dyn Storage>>,
    State(at_rest): State<Arc<AtRest>>,
    State(auth): State<Option<Arc<Auth>>>,
    State(metrics): State<Arc<Metrics>>,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Reply {
    let states = States {
        storage: &*storage,
        at_rest: &at_rest,
    };
    match listed(states, auth.as_deref(), &metrics, client, &uri, &headers).await {
        Ok((list, next)) => {
            let states: Vec<Value> = list
                .into_iter()
                .map(|(p, mut v)| {
                    v["path"] = Value::from(p.as_str());
                    v
                })
                .collect();
            let mut body = json!({ "states": states });
            if let Some(token) = next {
                body["next_continuation_token"] = Value::from(token);
            }
            Reply::json(StatusCode::OK, body.to_string())
        }
        Err(r) => r,
    }
}

/// `GET /v1/locks`.
pub async fn locks(
    State(storage): State<Arc<dyn Storage>>,
    State(at_rest): State<Arc<AtRest>>,
    State(auth): State<Option<Arc<Auth>>>,
    State(metrics): State<Arc<Metrics>>,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Reply {
    let states = States {
        storage: &*storage,
        at_rest: &at_rest,
    };
    match listed(states, auth.as_deref(), &metrics, client, &uri, &headers).await {
        Ok((list, next)) => {
            let locks: Vec<Value> = list
                .into_iter()
                .filter(|(_, v)| !v["lock"].is_null())
                .map(|(p, v)| json!({ "path": p.as_str(), "lock": v["lock"] }))
                .collect();
            let mut body = json!({ "locks": locks });
            if let Some(token) = next {
                body["next_continuation_token"] = Value::from(token);
            }
            Reply::json(StatusCode::OK, body.to_string())
        }
        Err(r) => r,
    }
}

/// `GET /v1/versions/<path>[?seq=N]`.
pub async fn versions(
    State(storage): State<Arc<dyn Storage>>,
    State(at_rest): State<Arc<AtRest>>,
    State(auth): State<Option<Arc<Auth>>>,
    State(metrics): State<Arc<Metrics>>,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Reply {
    let path = match path_after(&uri, "/v1/versions/") {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(denied) = authorize(
        auth.as_deref(),
        client,
        &headers,
        Some(&path),
        Permission::Read,
    )
    .await
    {
        return denied.into();
    }
    let seq = match query_value(uri.query(), "seq").map(|s| s.parse::<u64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Reply::text(StatusCode::BAD_REQUEST, "seq must be a number"),
    };
    let states = States {
        storage: &*storage,
        at_rest: &at_rest,
    };
    let outcome = match seq {
        None => states.versions(&path).await.and_then(|v| {
            if v.is_empty() {
                return Err(ServerError::NotFound(Missing::State));
            }
            Ok(Reply::json(
                StatusCode::OK,
                json!({ "path": path.as_str(), "versions": v.iter().map(view).collect::<Vec<_>>() })
                    .to_string(),
            ))
        }),
        Some(n) => states
            .version(&path, n)
            .await
            .map(|(_, bytes)| Reply::json(StatusCode::OK, bytes)),
    };
    answer(&metrics, outcome)
}

/// `POST /v1/rollback/<path>?seq=N[&ID=lock]`.
pub async fn rollback(
    State(storage): State<Arc<dyn Storage>>,
    State(at_rest): State<Arc<AtRest>>,
    State(auth): State<Option<Arc<Auth>>>,
    State(metrics): State<Arc<Metrics>>,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Reply {
    let path = match path_after(&uri, "/v1/rollback/") {
        Ok(p) => p,
        Err(r) => return r,
    };
    let user = match authorize(
        auth.as_deref(),
        client,
        &headers,
        Some(&path),
        Permission::Admin,
    )
    .await
    {
        Ok(w) => w.map(|p| p.0),
        Err(denied) => return denied.into(),
    };
    let Some(Ok(n)) = query_value(uri.query(), "seq").map(|s| s.parse::<u64>()) else {
        return Reply::text(
            StatusCode::BAD_REQUEST,
            "rollback needs ?seq=N, a version number from GET /v1/versions/<path>",
        );
    };
    let id = query_value(uri.query(), "ID");
    let states = States {
        storage: &*storage,
        at_rest: &at_rest,
    };
    let outcome = states.roll_back(&path, n, id.as_deref(), user).await;
    answer(
        &metrics,
        outcome.map(|done| {
            Reply::json(
                StatusCode::OK,
                json!({ "rolled_back_to": done.seq, "serial": done.serial, "lineage": done.lineage })
                    .to_string(),
            )
        }),
    )
}

/// `GET /healthz`.
pub async fn healthz(
    State(storage): State<Arc<dyn Storage>>,
    State(at_rest): State<Arc<AtRest>>,
    State(auth): State<Option<Arc<Auth>>>,
) -> Reply {
    let encrypts = at_rest.encrypts();
    let mut body = json!({
        "status": "ok",
        "encryption_at_rest": if encrypts { "on" } else { "off" },
        "require_client_encryption": at_rest.requires_client_encryption(),
        "auth": auth.is_some(),
        "storage": storage.summary().public(),
    });
    if !encrypts {
        body["warning"] = Value::from(
            "encryption at rest is OFF: plaintext states are stored unencrypted; add an encryption block to the server configuration",
        );
    }
    Reply::json(StatusCode::OK, body.to_string())
}
