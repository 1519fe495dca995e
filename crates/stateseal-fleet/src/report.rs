//! What the fleet's reports share: how a state skipped because of a lock, or one that failed,
//! is written in `--json` (the `detail` text CI logs read, byte for byte as before the outcomes
//! were typed), and one word per outcome for progress lines.

use std::fmt::Display;

use serde::Serializer;
use stateseal_store::lock_info::LockInfo;

/// Who holds a lock that made a state be skipped: `locked by WHO (ID …, operation …, since …)`.
pub fn held_by(holder: &LockInfo) -> String {
    format!(
        "locked by {} (ID {}, operation {}, since {})",
        holder.who,
        holder.id,
        holder.operation,
        holder.created.rfc3339_nano()
    )
}

/// Serializes a holder as [`held_by`]'s sentence.
pub(crate) fn holder_detail<S: Serializer>(holder: &LockInfo, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&held_by(holder))
}

/// Serializes an error as its message.
pub(crate) fn error_detail<E: Display, S: Serializer>(e: &E, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}
