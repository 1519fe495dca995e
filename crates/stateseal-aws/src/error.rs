//! What went wrong talking to AWS or reading its settings ([`Error`]), and the kind and words
//! of an SDK error ([`classify`], [`describe_error`]), so callers decide by kind (fix the
//! configuration, retry, report a denial) and never by the message's words.

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use stateseal_core::ServiceErrorKind;

/// Why an SDK configuration or a set of credentials could not be had.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings are wrong or incomplete (an attribute, a file they name, a conflict): fix the
    /// configuration. The one catch-all: OpenTofu's own words.
    #[error("{0}")]
    Settings(String),
    /// Credentials could not be obtained or checked (a profile, STS): `kind` says whether the
    /// service was unreachable, throttled or refused them.
    #[error("{what}: {message}")]
    Credentials {
        what: String,
        kind: ServiceErrorKind,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The credentials belong to an account that `allowed_account_ids` or
    /// `forbidden_account_ids` excludes.
    #[error("AWS account ID not allowed: {account} ({rule})")]
    Account { account: String, rule: AccountRule },
}

/// Which account rule refused an account.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountRule {
    /// Not among `allowed_account_ids` (listed).
    NotAllowed(Vec<String>),
    /// In `forbidden_account_ids`.
    Forbidden,
}

impl std::fmt::Display for AccountRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountRule::NotAllowed(allowed) => {
                write!(f, "allowed_account_ids: {}", allowed.join(", "))
            }
            AccountRule::Forbidden => f.write_str("it is in forbidden_account_ids"),
        }
    }
}

impl Error {
    /// The service failure's kind, when a service failed (not the settings or the account).
    pub fn service_kind(&self) -> Option<ServiceErrorKind> {
        match self {
            Error::Credentials { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// The kind of an SDK error: network trouble, throttling, access denied, not found, or other.
pub fn classify<E>(err: &SdkError<E>) -> stateseal_core::ServiceErrorKind
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    use ServiceErrorKind as K;
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => K::Network,
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            let status = se.raw().status().as_u16();
            if code.starts_with("AccessDenied")
                || matches!(
                    code,
                    "UnrecognizedClientException"
                        | "InvalidClientTokenId"
                        | "ExpiredToken"
                        | "ExpiredTokenException"
                        | "SignatureDoesNotMatch"
                        | "InvalidAccessKeyId"
                )
            {
                K::AccessDenied
            } else if code.contains("Throttl")
                || matches!(code, "SlowDown" | "RequestLimitExceeded")
            {
                K::Throttled
            } else if code.starts_with("NotFound")
                || code.starts_with("NoSuch")
                || code == "ResourceNotFoundException"
            {
                K::NotFound
            } else {
                match K::from_http_status(status) {
                    K::Other if code.is_empty() && status >= 500 => K::Other,
                    k => k,
                }
            }
        }
        _ => K::Other,
    }
}

/// A readable description of an SDK error: the service's error code and message when there is
/// one, the HTTP status, else the whole error chain (connection refused, DNS, timeouts, …).
pub fn describe_error<E>(err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let status = se.raw().status().as_u16();
            match (e.code(), e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m} (HTTP {status})"),
                (Some(c), None) => format!("{c} (HTTP {status})"),
                _ => {
                    let body: String = se
                        .raw()
                        .body()
                        .bytes()
                        .map(|b| String::from_utf8_lossy(b).chars().take(300).collect())
                        .unwrap_or_default();
                    match xml_message(&body) {
                        Some(m) => format!("{m} (HTTP {status})"),
                        None if status == 403 => format!("AccessDenied (HTTP 403): {body}"),
                        None => format!("HTTP {status}: {body}"),
                    }
                }
            }
        }
        other => error_chain(other),
    }
}

/// `outer: inner: innermost`, from `Display` of each error in the source chain (the SDK's own
/// `DisplayErrorContext` adds `Debug` output, which is unreadable).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let msg = e.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// `<Code>…</Code>: <Message>…</Message>` from an XML error body (moto answers JSON-protocol
/// services' auth errors in XML, which the SDK cannot parse).
fn xml_message(body: &str) -> Option<String> {
    let tag = |t: &str| {
        let start = body.find(&format!("<{t}>"))? + t.len() + 2;
        let end = body[start..].find(&format!("</{t}>"))? + start;
        Some(body[start..end].to_string())
    };
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (Some(c), None) => Some(c),
        (None, Some(m)) => Some(m),
        (None, None) => None,
    }
}
