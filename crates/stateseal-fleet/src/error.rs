//! How a fleet operation fails: a store operation ([`Error::Store`], the bucket, its states and
//! locks), an AWS call the fleet makes itself ([`Error::Aws`]: KMS, STS, S3 bucket settings,
//! DynamoDB tables in bootstrap), or the AWS configuration ([`Error::Connect`]). Callers choose
//! by variant and by [`Error::service_kind`] (an unreachable service is "try again", not "fix
//! the configuration"), never by the message.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use stateseal_core::ServiceErrorKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every way a fleet operation can fail.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A store operation failed (reading, writing, locking a state; listing the bucket).
    #[error(transparent)]
    Store(#[from] stateseal_store::Error),
    /// An AWS call of the fleet's own failed: `operation` on `what`, with the failure's kind.
    #[error("{operation} {what}: {message}")]
    Aws {
        operation: &'static str,
        what: String,
        kind: ServiceErrorKind,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// No AWS configuration or credentials could be had (settings, a profile, the account).
    #[error("AWS: {0}")]
    Connect(#[from] stateseal_aws::Error),
}

impl Error {
    /// An AWS SDK call's failure: the operation, what it was about, its kind and the service's
    /// words.
    pub(crate) fn aws<E>(operation: &'static str, what: impl Into<String>, e: SdkError<E>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Error::Aws {
            operation,
            what: what.into(),
            kind: stateseal_aws::classify(&e),
            message: stateseal_aws::describe_error(&e),
            source: Some(Box::new(e)),
        }
    }

    /// The kind of the service failure behind this error, when a service failed: unreachable,
    /// throttled, denied, not found.
    pub fn service_kind(&self) -> Option<ServiceErrorKind> {
        match self {
            Error::Store(stateseal_store::Error::Service { kind, .. })
            | Error::Aws { kind, .. } => Some(*kind),
            Error::Store(_) => None,
            Error::Connect(e) => e.service_kind(),
        }
    }

    /// Is the failure a service that could not be reached or asked to slow down (nothing was
    /// wrong with the request; trying again later may succeed)?
    pub fn is_unavailable(&self) -> bool {
        self.service_kind()
            .is_some_and(ServiceErrorKind::is_transient)
    }
}
