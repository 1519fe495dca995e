//! Documentation only: how the stores relate to OpenTofu's and Terraform's backends.

/// # Compatibility with OpenTofu and Terraform
///
/// Shared byte for byte: object keys (`<key>`, `<prefix>/<ws>/<key>` through Go's `path.Join`),
/// the `.tflock` key, the DynamoDB `LockID`s (`<bucket>/<key>`, `<bucket>/<key>-md5`), the lock
/// info JSON (Go's `json.Marshal`; `testdata/lockinfo` holds bytes written by Terraform 1.15.5),
/// the digest (lowercase hex MD5 of the exact uploaded bytes, written after every state write),
/// workspace listing (prefix `<wkp>/`, no delimiter, `AccessDenied` keeps the partial list), the
/// lock order (lock file, then DynamoDB, rolling the lock file back) and release (both, with
/// OpenTofu's messages), the DynamoDB release condition (`Info = <the raw stored string>`), the
/// consistency check (retry every 2 s for 10 s), the local paths and the local lock (POSIX
/// `fcntl(F_SETLK)` on the state file, `.terraform.tfstate.lock.info` at 0600, in-place writes
/// with fsync, `.backup`).
///
/// Deliberate differences:
/// * A workspace that does not exist is an error. OpenTofu creates a missing S3 workspace (an
///   `init` lock and an empty state) whenever it builds a state manager for it, even to read.
/// * `state push` into a location without a state keeps the pushed lineage and serial; OpenTofu
///   re-reads, finds nothing, and mints a new lineage with serial 1. Into an existing state it
///   stores the pushed serial + 1, as OpenTofu does.
/// * State writes are conditional (`If-Match` on the ETag read under the lock, `If-None-Match: *`
///   for a first write). OpenTofu sends no condition; a server answering 501 gets the write again
///   without it. The lock file is never written without `If-None-Match: *`.
/// * The state is fetched with GetObject directly; HeadObject is used only when GetObject fails
///   oddly. (A HEAD cannot tell a missing bucket from a missing key: it has no body.)
/// * A digest that can't be stored after a successful state write is reported as an error (the
///   next read would stall and fail); OpenTofu only logs it.
/// * Workspace names `.` and `..` are refused (they would alias another workspace's state).
/// * The lock record's `Version` is `stateseal-<version>`; `stateseal unlock` releases only such
///   records, `force-unlock` any record whose ID matches.
/// * Locks retried on conflict (`--lock-timeout`) use OpenTofu's back-off; a lock this client
///   finds already recorded under its own ID (a retried PutItem or PUT whose first attempt went
///   through) counts as acquired.
/// * `skip_region_validation` is accepted but no region list is checked.
pub mod compatibility {}
