//! OpenTofu-compatible state stores.
//!
//! * [`Store`]: workspaces, get, conditional put, delete, lock, unlock, versions, with
//!   semantic [`Error`]s; every backend passes `conformance::run` (feature `testing`);
//! * [`LocalStore`] (OpenTofu's paths and `fcntl` lock) and, with feature `s3`,
//!   [`s3::S3Store`] (DynamoDB locks and digests, `.tflock` lock files, SSE), and
//!   [`HttpStore`] (`backend "http"`, e.g. against `stateseal serve`);
//! * [`backend_block`]: the store a module's backend block points at (evaluated early, with
//!   `--backend-config` overrides);
//! * [`LockInfo`] with Go-identical JSON bytes;
//! * [`StateMeta`]: the few fields of a state that are read, the bytes staying opaque;
//! * [`Sealed`]: reads and writes through the directory's encryption, with OpenTofu's state
//!   rules.
#![forbid(unsafe_code)]

pub mod backend_block;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod error;
pub mod http;
pub mod local;
pub mod lock_info;
pub mod manual;
pub mod memory;
#[cfg(feature = "s3")]
pub mod s3;
pub mod sealed;
pub mod store;

pub use error::{Error, Result};
pub use http::{HttpConfig, HttpStore};
pub use local::LocalStore;
pub use lock_info::LockInfo;
pub use memory::MemoryStore;
pub use sealed::{Pulled, PushOptions, Sealed, Written};
pub use stateseal_core::state::{self, StateMeta};
pub use store::{
    Capabilities, Object, PutMode, Store, UnreadableLock, Version, VersionInfo, DEFAULT_WORKSPACE,
};
