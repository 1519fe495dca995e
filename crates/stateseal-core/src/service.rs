//! What kind of failure a remote service call had (AWS, a key service, an HTTP state backend),
//! so callers decide by kind (retry, skip, report the fix) and never by the message's words.

/// The class of a failed service call. The message and the source error travel next to it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceErrorKind {
    /// Could not reach the service: DNS, connection refused, TLS, timeout.
    Network,
    /// The service asked to slow down (throttling, 429, `SlowDown`).
    Throttled,
    /// The credentials are missing, invalid, or not allowed to do this (401, 403).
    AccessDenied,
    /// The thing named (key, bucket, table) does not exist.
    NotFound,
    /// Anything else the service refused or failed at.
    Other,
}

impl ServiceErrorKind {
    /// The kind an HTTP status code implies (for services that answer with nothing more precise).
    pub fn from_http_status(status: u16) -> ServiceErrorKind {
        match status {
            401 | 403 => ServiceErrorKind::AccessDenied,
            404 => ServiceErrorKind::NotFound,
            429 | 503 => ServiceErrorKind::Throttled,
            _ => ServiceErrorKind::Other,
        }
    }

    /// Is a retry after a pause likely to succeed?
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ServiceErrorKind::Network | ServiceErrorKind::Throttled
        )
    }
}
