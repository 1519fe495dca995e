//! Moving states between SSE-S3 and SSE-KMS without touching their bytes (docs/FLEET.md §3,
//! the runbook's migration and rollback): per state, under its lock, a self-copy (`CopyObject`
//! onto itself, conditional on the version read, `MetadataDirective: REPLACE`) with the target
//! server-side encryption, checked afterwards with `HeadObject`. The bucket must be versioned,
//! so the previous version stays; the bytes are unchanged, so the state's `-md5` digest item is
//! rewritten with the same value. States already on the target are skipped (re-runs finish the
//! job); a locked state is skipped and reported, never forced; an SSE-C state cannot be copied
//! without its key and is reported.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use stateseal_encryption::Encryption;
use stateseal_store::lock_info::LockInfo;
use stateseal_store::s3::{Sse, Versioning};
use stateseal_store::{Error, Sealed, Store, DEFAULT_WORKSPACE};

use crate::error::Result;

use crate::discovery::{self, FoundState};
use crate::report::{self, Tally, WasSse};
use crate::{each_state, same_kms_key, Event, Fleet};

/// The lock operation recorded while a state is copied.
pub const OPERATION: &str = "stateseal-sse-migration";

/// The server-side encryption to move states to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "sse", content = "kms_key_id")]
pub enum Target {
    /// SSE-KMS with this key (an ARN).
    Kms(String),
    /// SSE-S3 (`AES256`): the rollback.
    S3,
}

impl Target {
    /// Is an object with this SSE (`AES256`, `aws:kms`, …) and KMS key already on the target?
    pub fn satisfied_by(&self, sse: &Sse) -> bool {
        match (self, sse) {
            (Target::Kms(k), Sse::Kms { key: Some(c) }) => same_kms_key(c, k),
            (Target::S3, Sse::S3) => true,
            _ => false,
        }
    }

    /// The server-side encryption a copy writes.
    fn sse(&self) -> Sse {
        match self {
            Target::Kms(k) => Sse::Kms {
                key: Some(k.clone()),
            },
            Target::S3 => Sse::S3,
        }
    }
}

/// How a report names the encryption the copies write.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Kms(k) => write!(f, "aws:kms with {k}"),
            Target::S3 => f.write_str("AES256 (SSE-S3)"),
        }
    }
}

/// What happened to one state.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result", content = "detail")]
pub enum Outcome {
    /// Dry run: would be copied.
    Planned,
    /// Copied onto itself with the target SSE, checked with HeadObject.
    Copied,
    /// Already on the target.
    Already,
    /// Someone holds the lock: skipped, untouched. The detail names the holder.
    SkippedLocked(#[serde(serialize_with = "report::holder_detail")] Box<LockInfo>),
    /// Not copied (or the copy did not check out); the detail says why.
    Failed(#[serde(serialize_with = "report::error_detail")] Arc<stateseal_store::Error>),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::Copied => "copied",
            Outcome::Already => "already",
            Outcome::SkippedLocked(_) => "skipped-locked",
            Outcome::Failed(_) => "failed",
        }
    }

    /// Why a state was skipped or failed (the JSON `detail`), `None` otherwise.
    pub fn detail(&self) -> Option<String> {
        match self {
            Outcome::SkippedLocked(holder) => Some(report::held_by(holder)),
            Outcome::Failed(e) => Some(e.to_string()),
            _ => None,
        }
    }
}

/// One state's line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct StateResult {
    pub key: String,
    pub workspace: String,
    /// Whether the state is client-side encrypted (an OpenTofu envelope); the copy keeps it so.
    pub client_side_encrypted: bool,
    /// The SSE before (`AES256`, `aws:kms`, `SSE-C`, or null) and its KMS key.
    #[serde(flatten)]
    pub was: WasSse,
    /// The version that was copied, and the new one.
    pub version_before: Option<String>,
    pub version_after: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub states: usize,
    pub planned: usize,
    pub copied: usize,
    pub already: usize,
    pub skipped_locked: usize,
    pub failed: usize,
}

impl Tally for Summary {
    type Item = StateResult;

    fn counter(&mut self, s: &StateResult) -> &mut usize {
        match s.outcome {
            Outcome::Planned => &mut self.planned,
            Outcome::Copied => &mut self.copied,
            Outcome::Already => &mut self.already,
            Outcome::SkippedLocked(_) => &mut self.skipped_locked,
            Outcome::Failed(_) => &mut self.failed,
        }
    }

    fn total(&mut self) -> Option<&mut usize> {
        Some(&mut self.states)
    }
}

/// `stateseal rekey s3://… --sse-only --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub bucket: String,
    pub prefix: String,
    pub apply: bool,
    pub target: Target,
    /// Whether the copies ran under the state locks (false when the backend configures none).
    pub locked: bool,
    pub states: Vec<StateResult>,
    pub summary: Summary,
}

/// The same options as rekey: `apply` (a dry run without it) and `concurrency`.
pub use crate::rekey::Options;

/// Moves every state under the fleet's prefix to `target` (a dry run unless `opts.apply`).
/// Refuses to copy in a bucket without versioning: the previous versions are the way back.
pub async fn migrate(
    fleet: &Fleet,
    target: &Target,
    opts: &Options,
    on_event: &mut dyn FnMut(Event),
) -> Result<Report> {
    if opts.apply {
        let versioning = fleet.store.hardening().await.versioning;
        if versioning != Some(Versioning::Enabled) {
            return Err(Error::Unsupported(format!(
                "s3://{}: versioning is {}, so a self-copy would replace the only version of each state; turn versioning on first (`stateseal bootstrap s3 --bucket {} --apply`)",
                fleet.bucket(),
                versioning.map_or("unknown", Versioning::name),
                fleet.bucket()
            ))
            .into());
        }
    }
    let inv = discovery::discover(fleet, opts.concurrency, on_event).await?;
    let apply = opts.apply;
    let states = each_state(
        inv.states,
        opts.concurrency,
        on_event,
        |found| {
            let fleet = fleet.clone();
            let target = target.clone();
            async move { migrate_one(&fleet, found, &target, apply).await }
        },
        |r: &StateResult| (r.key.clone(), r.outcome.word()),
    )
    .await;
    let summary = Summary::of(&states);
    Ok(Report {
        bucket: fleet.bucket().to_string(),
        prefix: fleet.prefix.clone(),
        apply,
        target: target.clone(),
        locked: fleet.store.locking_enabled(),
        states,
        summary,
    })
}

async fn migrate_one(
    fleet: &Fleet,
    found: FoundState,
    target: &Target,
    apply: bool,
) -> StateResult {
    let mut r = StateResult {
        key: found.key.clone(),
        workspace: found.workspace.clone(),
        client_side_encrypted: found.description.encrypted,
        was: WasSse(Sse::None),
        version_before: found.object.version_id.clone(),
        version_after: None,
        outcome: Outcome::Planned,
    };
    match fleet.store.head(&found.key).await {
        Ok(h) => {
            r.was = WasSse(h.sse);
        }
        Err(e) => {
            r.outcome = Outcome::Failed(Arc::new(e));
            return r;
        }
    }
    r.outcome = if target.satisfied_by(&r.was.0) {
        Outcome::Already
    } else if r.was.0 == Sse::SseC {
        Outcome::Failed(Arc::new(Error::Unsupported(
            "SSE-C: the object cannot be copied without its customer key".into(),
        )))
    } else if !apply {
        Outcome::Planned
    } else {
        match copy_locked(fleet, &found, target).await {
            Ok((before, after)) => {
                r.version_before = before;
                r.version_after = after;
                Outcome::Copied
            }
            Err(Error::Locked { holder, .. }) => Outcome::SkippedLocked(holder),
            Err(e) => Outcome::Failed(Arc::new(e)),
        }
    };
    r
}

/// One state's locked self-copy: copy exactly the version discovery read onto itself with the
/// target SSE (conditional on its ETag: a state changed since the listing is left alone and
/// reported), check with HeadObject, rewrite the digest. Returns the version copied and the
/// new one.
async fn copy_locked(
    fleet: &Fleet,
    found: &FoundState,
    target: &Target,
) -> stateseal_store::Result<(Option<String>, Option<String>)> {
    let key = found.key.as_str();
    let read = &found.object;
    let store = fleet.store.for_key(key);
    let sealed = Sealed::new(
        Arc::new(store.clone()) as Arc<dyn Store>,
        Arc::new(Encryption::disabled()),
    );
    let url = format!("s3://{}/{key}", fleet.bucket());
    sealed
        .locked(DEFAULT_WORKSPACE, OPERATION, Duration::ZERO, async {
            let copied = store
                .copy_in_place(
                    key,
                    read.version_id.as_deref(),
                    &read.version,
                    &target.sse(),
                )
                .await
                .map_err(|e| match e {
                    Error::Precondition { what, .. } => Error::Precondition {
                        what,
                        message: "the state changed since it was listed (left alone); run again"
                            .into(),
                    },
                    e => e,
                })?;
            let after = store.head(key).await?;
            if !target.satisfied_by(&after.sse) {
                return Err(Error::Unsupported(format!(
                    "{url}: after the copy HeadObject reports {} {}, not {}",
                    after.sse.name().unwrap_or("no SSE"),
                    after.sse.kms_key().unwrap_or(""),
                    target
                )));
            }
            // The bytes are unchanged: the digest item gets the same value (written in case
            // it was missing or stale).
            store.write_digest(DEFAULT_WORKSPACE, &read.bytes).await?;
            Ok((read.version_id.clone(), copied))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_satisfied_only_by_their_own_sse() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/k1";
        let kms = Target::Kms(arn.into());
        let on = |k: &str| Sse::Kms {
            key: Some(k.into()),
        };
        assert!(kms.satisfied_by(&on(arn)));
        assert!(kms.satisfied_by(&on("k1")));
        assert!(!kms.satisfied_by(&on("k2")));
        assert!(!kms.satisfied_by(&Sse::Kms { key: None }));
        assert!(!kms.satisfied_by(&Sse::S3));
        assert!(Target::S3.satisfied_by(&Sse::S3));
        assert!(!Target::S3.satisfied_by(&on(arn)));
    }
}
