//! The edge's answers: [`Reply`] (status, body, headers) and the **one** table from a domain
//! [`ServerError`] to a status and a body. 409 refusals of the state rules leave as JSON
//! (`{"refusal": …, "message": …}`, the core [`stateseal_core::Refusal`] serialized) so that
//! clients read them without asking again; a key service or a storage that can't be reached is
//! 503 with `Retry-After`; any other failure of the server is 500 with a logged cause and a
//! body that names only what failed.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use stateseal_store::LockInfo;

use crate::error::ServerError;

/// Seconds a client is told to wait (`Retry-After`) when a key service or the storage is
/// unavailable.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 5;

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
        Reply::text(StatusCode::INTERNAL_SERVER_ERROR, failed_text(what, e))
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

impl ServerError {
    /// The status this error answers with (the table's first column).
    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::Refused(_)
            | ServerError::ClientEnvelopeRollback(_)
            | ServerError::SerialExhausted
            | ServerError::Contended(_) => StatusCode::CONFLICT,
            ServerError::Locked(_) => StatusCode::LOCKED,
            ServerError::Precondition(_) => StatusCode::PRECONDITION_FAILED,
            ServerError::NotAState(_)
            | ServerError::ClientEncryptionRequired
            | ServerError::ReservedLockId => StatusCode::BAD_REQUEST,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::NotJsonState(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServerError::KeyService { .. } => StatusCode::SERVICE_UNAVAILABLE,
            e @ ServerError::Storage { .. } if e.storage_unavailable() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServerError::Storage { .. }
            | ServerError::SealUnverified { .. }
            | ServerError::Encryption { .. }
            | ServerError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The 409 body of a refusal by the state rules.
#[derive(serde::Serialize)]
struct RefusalBody<'a> {
    refusal: &'a stateseal_core::Refusal,
    message: String,
}

impl ServerError {
    /// Seconds for `Retry-After`: set when a dependency (key service, storage) is unavailable.
    pub fn retry_after(&self) -> Option<u64> {
        (self.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(UNAVAILABLE_RETRY_AFTER)
    }

    /// What an answer (or a console page) says. A failure of the server is logged here with
    /// its cause and named only by what failed (causes name server files and keys' places).
    pub(crate) fn public_message(&self) -> String {
        match self {
            ServerError::KeyService { what, source, .. } => {
                tracing::error!(error = %source, "{what}: the key service is unavailable");
                format!("{self}; try again later")
            }
            ServerError::Storage { what, source } if self.storage_unavailable() => {
                tracing::error!(error = %source, "{what}: the storage is unavailable");
                format!("{what}: the storage service is unavailable; try again later")
            }
            ServerError::SealUnverified { .. } => {
                tracing::error!("{self}");
                self.to_string()
            }
            ServerError::Storage { what, source } => failed_text(what, source),
            ServerError::Encryption { what, source } => failed_text(what, source),
            ServerError::Internal { what, message } => failed_text(what, message),
            _ => self.to_string(),
        }
    }
}

/// Logs a failure of the server and says only what failed.
fn failed_text(what: &str, e: impl std::fmt::Display) -> String {
    tracing::error!(error = %e, "{what}");
    format!("{what}: the server could not complete this request; its log has the details")
}

impl From<ServerError> for Reply {
    fn from(e: ServerError) -> Reply {
        let status = e.status();
        match &e {
            ServerError::Refused(refusal) => {
                let body = RefusalBody {
                    refusal,
                    message: e.to_string(),
                };
                match serde_json::to_vec(&body) {
                    Ok(json) => Reply::json(status, json),
                    Err(err) => Reply::failed("answering a refusal failed", err),
                }
            }
            ServerError::Locked(holder) => Reply::locked(holder),
            _ => {
                let mut r = Reply::text(status, e.public_message());
                r.retry_after = e.retry_after();
                r
            }
        }
    }
}

impl From<crate::auth::Denied> for Reply {
    /// As an answer of the API (401 asks for Basic credentials; 429 and 503 say when to retry).
    fn from(d: crate::auth::Denied) -> Reply {
        let mut r = Reply::text(d.status, d.message);
        r.www_authenticate = d.status == StatusCode::UNAUTHORIZED;
        r.retry_after = d.retry_after;
        r
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        Reply::from(self).into_response()
    }
}
