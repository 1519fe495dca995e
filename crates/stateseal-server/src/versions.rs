//! The JSON API over what the server keeps, and rollback:
//!
//! * `GET /v1/states[?prefix=P]`: the states under a prefix, each with its newest version and
//!   its lock holder (`null` when free);
//! * `GET /v1/locks[?prefix=P]`: only the held locks;
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
use serde::Serialize;
use serde_json::{json, Value};
use stateseal_store::LockInfo;

use crate::at_rest::Incoming;
use crate::auth::{authorize, Permission};
use crate::connections::ClientAddr;
use crate::protocol::{open, write_decided, Decision, Reply};
use crate::state_path::{query_value, StatePath};
use crate::storage::{Stored, VersionRecord};
use crate::App;

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

/// One state as listings show it: its newest version (`None` when deleted) and its lock holder.
pub(crate) struct StateRow {
    pub path: StatePath,
    pub current: Option<VersionRecord>,
    pub lock: Option<LockInfo>,
    /// Set when the state's records could not be read (the listing goes on without them).
    pub unreadable: bool,
}

impl StateRow {
    /// True when the lock record is unreadable ([`crate::storage::unreadable_lock`]).
    pub fn lock_unreadable(&self) -> bool {
        self.lock
            .as_ref()
            .is_some_and(|l| crate::storage::is_unreadable_lock_id(&l.id))
    }
}

/// The states under `prefix` that `who` may read (all of them without an `auth` block): what
/// the JSON API and the console list.
pub(crate) async fn list_states(
    app: &Arc<App>,
    prefix: String,
    who: Option<&crate::auth::Principal>,
) -> Result<Vec<StateRow>, Reply> {
    let paths = app
        .storage
        .list(&prefix)
        .await
        .map_err(|e| Reply::failed("listing states failed", e))?;
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        if let (Some(auth), Some(who)) = (&app.auth, who) {
            if !auth.allows(who, &p, Permission::Read) {
                continue;
            }
        }
        // One state whose records can't be read is reported as such; the others are listed.
        let current = app.storage.live(&p).await.map(|l| l.map(|l| l.record));
        let lock = app.storage.lock_holder(&p).await;
        let unreadable = current.is_err() || lock.is_err();
        for e in [current.as_ref().err(), lock.as_ref().err()]
            .into_iter()
            .flatten()
        {
            tracing::error!(path = %p, error = %e, "listing: a state's records could not be read");
        }
        out.push(StateRow {
            path: p,
            current: current.ok().flatten(),
            lock: lock.ok().flatten(),
            unreadable,
        });
    }
    Ok(out)
}

async fn listed(
    app: &Arc<App>,
    client: ClientAddr,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Vec<(StatePath, Value)>, Reply> {
    let who = authorize(app, client, headers, None, Permission::Read).await?;
    let prefix = query_value(uri.query(), "prefix").unwrap_or_default();
    let rows = list_states(app, prefix, who.as_ref()).await?;
    Ok(rows
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
        .collect())
}

/// `GET /v1/states`.
pub async fn states(
    State(app): State<Arc<App>>,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Reply {
    match listed(&app, client, &uri, &headers).await {
        Ok(list) => {
            let states: Vec<Value> = list
                .into_iter()
                .map(|(p, mut v)| {
                    v["path"] = Value::from(p.as_str());
                    v
                })
                .collect();
            Reply::json(StatusCode::OK, json!({ "states": states }).to_string())
        }
        Err(r) => r,
    }
}

/// `GET /v1/locks`.
pub async fn locks(
    State(app): State<Arc<App>>,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Reply {
    match listed(&app, client, &uri, &headers).await {
        Ok(list) => {
            let locks: Vec<Value> = list
                .into_iter()
                .filter(|(_, v)| !v["lock"].is_null())
                .map(|(p, v)| json!({ "path": p.as_str(), "lock": v["lock"] }))
                .collect();
            Reply::json(StatusCode::OK, json!({ "locks": locks }).to_string())
        }
        Err(r) => r,
    }
}

/// `GET /v1/versions/<path>[?seq=N]`.
pub async fn versions(
    State(app): State<Arc<App>>,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Reply {
    let path = match path_after(&uri, "/v1/versions/") {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = authorize(&app, client, &headers, Some(&path), Permission::Read).await {
        return r;
    }
    let seq = match query_value(uri.query(), "seq").map(|s| s.parse::<u64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Reply::text(StatusCode::BAD_REQUEST, "seq must be a number"),
    };
    match seq {
        None => match app.storage.versions(&path).await {
            Ok(v) if v.is_empty() => Reply::text(StatusCode::NOT_FOUND, "no state is stored here"),
            Ok(v) => Reply::json(
                StatusCode::OK,
                json!({ "path": path.as_str(), "versions": v.iter().map(view).collect::<Vec<_>>() })
                    .to_string(),
            ),
            Err(e) => Reply::failed("reading the versions failed", e),
        },
        Some(n) => match version_bytes(&app, &path, n).await {
            Ok((_, bytes)) => Reply::json(StatusCode::OK, bytes),
            Err(r) => r,
        },
    }
}

/// Version `n`'s record and the bytes its client sent (plaintext unless the client encrypted).
pub(crate) async fn version_bytes(
    app: &Arc<App>,
    path: &StatePath,
    n: u64,
) -> Result<(VersionRecord, Vec<u8>), Reply> {
    let (record, stored) = match app.storage.version(path, n).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(Reply::text(
                StatusCode::NOT_FOUND,
                format!("there is no version {n}"),
            ))
        }
        Err(e) => return Err(Reply::failed("reading the version failed", e)),
    };
    if record.stored == Stored::Deleted {
        return Err(Reply::text(
            StatusCode::NOT_FOUND,
            format!("version {n} is a deletion"),
        ));
    }
    let bytes = open(app, stored, record.stored).await?;
    Ok((record, bytes))
}

/// `POST /v1/rollback/<path>?seq=N[&ID=lock]`.
pub async fn rollback(
    State(app): State<Arc<App>>,
    client: ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Reply {
    let path = match path_after(&uri, "/v1/rollback/") {
        Ok(p) => p,
        Err(r) => return r,
    };
    let user = match authorize(&app, client, &headers, Some(&path), Permission::Admin).await {
        Ok(w) => w.map(|p| p.0),
        Err(r) => return r,
    };
    let Some(Ok(n)) = query_value(uri.query(), "seq").map(|s| s.parse::<u64>()) else {
        return Reply::text(
            StatusCode::BAD_REQUEST,
            "rollback needs ?seq=N, a version number from GET /v1/versions/<path>",
        );
    };
    let id = query_value(uri.query(), "ID");
    roll_back(&app, &path, n, id, user).await
}

/// Writes version `n` again as a new version with the serial above the current one, under the
/// lock rules of an upload (`id`: the lock ID the caller holds): the API's and the console's
/// rollback.
pub(crate) async fn roll_back(
    app: &Arc<App>,
    path: &StatePath,
    n: u64,
    id: Option<String>,
    user: Option<String>,
) -> Reply {
    let (old, bytes) = match version_bytes(app, path, n).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // A client's envelope (sent through the server, or written directly with a key the server
    // does not have): still an envelope after opening.
    if crate::at_rest::classify(&bytes).is_ok_and(|i| i.encrypted) {
        return Reply::text(
            StatusCode::CONFLICT,
            format!("version {n} was encrypted by the client: its serial is inside the ciphertext, which this server can't rewrite; restore it with `stateseal state restore` and the client's key; nothing was written"),
        );
    }
    let reply = write_decided(app, path, id.as_deref(), user, |current| {
        if let Some(cur) = current {
            if !cur.lineage.is_empty() && cur.lineage != old.lineage {
                return Decision::Answer(Reply::text(
                    StatusCode::CONFLICT,
                    format!("version {n} has lineage {:?}, the current state {:?}: they are unrelated states; nothing was written", old.lineage, cur.lineage),
                ));
            }
        }
        let Some(serial) = current
            .map_or(old.serial, |c| c.serial.max(old.serial))
            .checked_add(1)
        else {
            return Decision::Answer(Reply::text(
                StatusCode::CONFLICT,
                "refused: the serial is at its maximum (2^64-1), so no later serial exists for a rollback; nothing was written",
            ));
        };
        let body = match stateseal_store::state::with_serial(&bytes, serial) {
            Ok(b) => b,
            Err(e) => return Decision::Answer(Reply::failed("rewriting the serial failed", e)),
        };
        Decision::Write {
            body: body.into(),
            incoming: Incoming {
                serial,
                lineage: old.lineage.clone(),
                encrypted: false,
            },
            then: Reply::json(
                StatusCode::OK,
                json!({ "rolled_back_to": n, "serial": serial, "lineage": old.lineage })
                    .to_string(),
            ),
        }
    })
    .await;
    if reply.status == StatusCode::OK {
        tracing::info!(path = %path, seq = n, "rollback");
    }
    reply
}

/// `GET /healthz`.
pub async fn healthz(State(app): State<Arc<App>>) -> Reply {
    let encrypts = app.at_rest.encrypts();
    let mut body = json!({
        "status": "ok",
        "encryption_at_rest": if encrypts { "on" } else { "off" },
        "require_client_encryption": app.at_rest.requires_client_encryption(),
        "auth": app.auth.is_some(),
        "storage": app.storage.describe().public(),
    });
    if !encrypts {
        body["warning"] = Value::from(
            "encryption at rest is OFF: plaintext states are stored unencrypted; add an encryption block to the server configuration",
        );
    }
    Reply::json(StatusCode::OK, body.to_string())
}
