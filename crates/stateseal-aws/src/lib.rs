//! AWS settings shared by everything that talks to AWS: the `aws_kms` key provider, the S3
//! backend and the fleet. OpenTofu copies these attributes from its S3 backend into `aws_kms`,
//! so they are written once, with the S3 backend's names.
//!
//! * [`AwsSettings`] (`settings`): the common attributes (serde; embed it or deserialize it on
//!   its own);
//! * [`sdk_config`], [`shared_sdk_config`], [`profile_credentials`] (`config`): an AWS SDK
//!   configuration from them, built once per process when shared, and one profile's credentials;
//! * [`clients`]: the service clients with the settings' endpoint overrides;
//! * [`Error`], [`classify`], [`describe_error`] (`error`): typed failures and the kind of an
//!   SDK error;
//! * [`block_on_thread`] (`runtime`): runs an SDK future on the process-wide AWS runtime from
//!   synchronous code.
//!
//! Nothing here does I/O until [`sdk_config`] is awaited, and even then only an
//! `assume_role*` (STS) or an account check (`allowed_account_ids`) calls AWS before the
//! caller's own request.

pub mod clients;
mod config;
mod credentials;
mod env;
mod error;
mod http_client;
mod runtime;
mod settings;

pub use config::{profile_credentials, sdk_config, settings_id, shared_sdk_config};
pub use error::{classify, describe_error, AccountRule, Error};
pub use runtime::block_on_thread;
pub use settings::{AssumeRole, AssumeRoleWithWebIdentity, AwsSettings, Endpoints};
