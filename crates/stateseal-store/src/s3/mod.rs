//! S3 backend.
pub mod builder;
pub mod layout;
