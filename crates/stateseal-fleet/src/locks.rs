//! Lock health across a bucket (docs/FLEET.md §4): every held lock (DynamoDB `LockID` items
//! and `.tflock` objects) with its holder and age, and a safe break: compare-and-delete of
//! exactly what was listed (DynamoDB `Info = <listed>`, lock file `If-Match: <listed ETag>`),
//! so a lock re-acquired since the listing is never broken. The `-md5` digest items are never
//! touched.

use std::time::Duration;

use serde::Serialize;
use stateseal_store::lock_info::GoTime;
use stateseal_store::s3::LockRecord;
use stateseal_store::{Error as StoreError, LockInfo};

use crate::error::Result;

use crate::Fleet;

pub use stateseal_store::s3::LockSource;

/// One held lock, as listed.
#[derive(Clone, Debug, Serialize)]
pub struct HeldLock {
    /// The state key it guards.
    pub state: String,
    pub workspace: String,
    pub source: LockSource,
    pub id: Option<String>,
    pub who: Option<String>,
    pub operation: Option<String>,
    /// RFC 3339, as the holder wrote it.
    pub created: Option<String>,
    /// Seconds since `created` (None when the record does not parse).
    pub age_seconds: Option<i64>,
    /// Why the record does not parse as lock info, if it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The record as listed: what the conditional delete compares.
    #[serde(skip)]
    record: LockRecord,
}

impl HeldLock {
    fn new(fleet: &Fleet, record: LockRecord) -> Self {
        let parsed = LockInfo::parse(&record.raw);
        let (state, source) = (record.state.clone(), record.source);
        let now = GoTime::now().unix;
        let workspace = fleet.workspace_of(&state).0;
        match parsed {
            Ok(h) => HeldLock {
                state,
                workspace,
                source,
                age_seconds: (h.created != GoTime::ZERO).then(|| now - h.created.unix),
                created: Some(h.created.rfc3339_nano()),
                id: Some(h.id),
                who: Some(h.who),
                operation: Some(h.operation),
                problem: None,
                record,
            },
            Err(e) => HeldLock {
                state,
                workspace,
                source,
                id: None,
                who: None,
                operation: None,
                created: None,
                age_seconds: None,
                problem: Some(e.to_string()),
                record,
            },
        }
    }
}

/// Every held lock in scope: lock files first, then DynamoDB items, each sorted by state.
pub async fn list(fleet: &Fleet) -> Result<Vec<HeldLock>> {
    let keys = fleet.keys().await?;
    Ok(fleet
        .store
        .scan_locks(&keys)
        .await?
        .into_iter()
        // Lock files come from the scoped listing; table items are the whole bucket's.
        .filter(|r| r.source == LockSource::Lockfile || fleet.in_scope(&r.state))
        .map(|r| HeldLock::new(fleet, r))
        .collect())
}

/// What a break did (or would do) to one listed lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result", content = "detail")]
pub enum BreakOutcome {
    /// Deleted, as listed.
    Broken,
    /// Dry run: would be deleted.
    WouldBreak,
    /// Younger than the limit (or of unknown age): kept.
    Fresh,
    /// Changed since the listing (released, re-acquired, rewritten): kept.
    Changed(String),
    /// The delete failed for another reason.
    Failed(String),
}

/// One listed lock and what happened to it.
#[derive(Clone, Debug, Serialize)]
pub struct Broken {
    pub lock: HeldLock,
    pub outcome: BreakOutcome,
}

/// Breaks the listed locks older than `older_than` (with `apply`; else reports what it would
/// break). Each delete is conditional on the record being exactly as listed.
pub async fn break_stale(
    fleet: &Fleet,
    listed: Vec<HeldLock>,
    older_than: Duration,
    apply: bool,
) -> Vec<Broken> {
    let mut out = Vec::new();
    for lock in listed {
        let stale = lock
            .age_seconds
            .is_some_and(|a| a >= 0 && a as u64 >= older_than.as_secs());
        let outcome = match (stale, apply) {
            (false, _) => BreakOutcome::Fresh,
            (true, false) => BreakOutcome::WouldBreak,
            (true, true) => compare_and_delete(fleet, &lock).await,
        };
        out.push(Broken { lock, outcome });
    }
    out
}

async fn compare_and_delete(fleet: &Fleet, lock: &HeldLock) -> BreakOutcome {
    match fleet.store.compare_and_delete(&lock.record).await {
        Ok(()) => BreakOutcome::Broken,
        Err(StoreError::Precondition { message, .. }) => BreakOutcome::Changed(message),
        Err(e) => BreakOutcome::Failed(e.to_string()),
    }
}

/// A lock age limit (`--older-than`): a number followed by `s`, `m`, `h` or `d` (`90m`, `2h`,
/// `7d`, `0s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Age(pub Duration);

/// Why a lock age did not parse.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgeError {
    #[error("{0:?} is not a duration: expected e.g. 30m, 2h, 7d")]
    NotANumber(String),
    #[error("{0:?}: the unit must be s, m, h or d (e.g. 30m, 2h, 7d)")]
    Unit(String),
}

impl std::str::FromStr for Age {
    type Err = AgeError;

    fn from_str(s: &str) -> std::result::Result<Age, AgeError> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: u64 = n.parse().map_err(|_| AgeError::NotANumber(s.into()))?;
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(AgeError::Unit(s.into())),
        };
        Ok(Age(Duration::from_secs(n.saturating_mul(secs))))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_parse_with_a_unit() {
        use super::{Age, AgeError};
        use std::time::Duration;
        let age = |s: &str| s.parse::<Age>().map(|a| a.0);
        assert_eq!(age("0s"), Ok(Duration::ZERO));
        assert_eq!(age("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(age("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "h", "-1h"] {
            assert_eq!(age(bad), Err(AgeError::NotANumber(bad.into())), "{bad}");
        }
        for bad in ["2", "2w", "1.5h"] {
            assert_eq!(age(bad), Err(AgeError::Unit(bad.into())), "{bad}");
        }
    }
}
