//! Bulk rekey (docs/FLEET.md §2): every state not on the primary method is rewritten with it,
//! each in one locked transaction: take the lock as OpenTofu and Terraform do, decrypt
//! (primary or fallback) the bytes discovery read, encrypt with the primary and prove the round
//! trip, write on the condition that the object is still the version discovery read (with the
//! configured SSE and the DynamoDB digest), release. Only a state that changed between
//! discovery and the lock is read again, under the lock, and that read is the one rewritten. States already on the primary are skipped, so a re-run after a
//! crash finishes the job; a locked state is skipped and reported, never forced. The bytes
//! written are the exact plaintext read, so serial and lineage are unchanged, and the envelope
//! carries only what the primary method's providers write (no new metadata fields).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use stateseal_encryption::{Encryption, Status, Target};
use stateseal_store::lock_info::LockInfo;
use stateseal_store::{Error, Object, Sealed, Store, DEFAULT_WORKSPACE};

use crate::error::Result;

use crate::audit::Class;
use crate::discovery::{self, FoundState};
use crate::report::{self, Tally};
use crate::{each_state, Event, Fleet};

/// The lock operation recorded while a state is rekeyed.
pub const OPERATION: &str = "stateseal-rekey";

/// What happened to one state.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result", content = "detail")]
pub enum Outcome {
    /// Dry run: would be rekeyed.
    Planned,
    /// Rewritten with the primary method.
    Rekeyed,
    /// Already on the primary method: nothing to do.
    AlreadyPrimary,
    /// Someone holds the lock: skipped, untouched. The detail names the holder.
    SkippedLocked(#[serde(serialize_with = "report::holder_detail")] Box<LockInfo>),
    /// Not rewritten (it is unchanged); the detail says why.
    Failed(#[serde(serialize_with = "report::error_detail")] Arc<stateseal_store::Error>),
}

impl Outcome {
    /// The short word for progress lines.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::Rekeyed => "rekeyed",
            Outcome::AlreadyPrimary => "already-primary",
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
    /// What the audit saw before the run.
    pub was: Class,
    /// Null when the state has none a number reads as (or it is not a state).
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub states: usize,
    pub planned: usize,
    pub rekeyed: usize,
    pub already_primary: usize,
    pub skipped_locked: usize,
    pub failed: usize,
}

impl Tally for Summary {
    type Item = StateResult;

    fn counter(&mut self, s: &StateResult) -> &mut usize {
        match s.outcome {
            Outcome::Planned => &mut self.planned,
            Outcome::Rekeyed => &mut self.rekeyed,
            Outcome::AlreadyPrimary => &mut self.already_primary,
            Outcome::SkippedLocked(_) => &mut self.skipped_locked,
            Outcome::Failed(_) => &mut self.failed,
        }
    }

    fn total(&mut self) -> Option<&mut usize> {
        Some(&mut self.states)
    }
}

/// `stateseal rekey s3://… --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub bucket: String,
    pub prefix: String,
    pub apply: bool,
    pub states: Vec<StateResult>,
    pub summary: Summary,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub apply: bool,
    pub concurrency: usize,
}

/// Rekeys every state under the fleet's prefix onto the primary method of the `state` target.
pub async fn rekey(
    fleet: &Fleet,
    encryption: Arc<Encryption>,
    opts: &Options,
    on_event: &mut dyn FnMut(Event),
) -> Result<Report> {
    let inv = discovery::discover(fleet, opts.concurrency, on_event).await?;
    let methods = encryption.state().method_metadata_keys();
    let apply = opts.apply;
    let states = each_state(
        inv.states,
        opts.concurrency,
        on_event,
        |found| {
            let fleet = fleet.clone();
            let encryption = encryption.clone();
            let (was, _) = Class::of(&found.description, &methods);
            async move {
                let outcome = match (was, apply) {
                    (Class::Primary, _) => Outcome::AlreadyPrimary,
                    (_, false) => Outcome::Planned,
                    (_, true) => match rekey_one(&fleet, encryption, &found).await {
                        Ok(o) => o,
                        Err(Error::Locked { holder, .. }) => Outcome::SkippedLocked(holder),
                        Err(e) => Outcome::Failed(Arc::new(e)),
                    },
                };
                result(found, was, outcome)
            }
        },
        |r: &StateResult| (r.key.clone(), r.outcome.word()),
    )
    .await;
    let summary = Summary::of(&states);
    Ok(Report {
        bucket: fleet.bucket().to_string(),
        prefix: fleet.prefix.clone(),
        apply,
        states,
        summary,
    })
}

fn result(found: FoundState, was: Class, outcome: Outcome) -> StateResult {
    StateResult {
        key: found.key,
        workspace: found.workspace,
        was,
        serial: found.description.serial.as_ref().and_then(Value::as_u64),
        lineage: found
            .description
            .lineage
            .as_ref()
            .and_then(Value::as_str)
            .map(String::from),
        outcome,
    }
}

/// One state's locked transaction. A held lock is not waited for ([`Error::Locked`]).
async fn rekey_one(
    fleet: &Fleet,
    encryption: Arc<Encryption>,
    found: &FoundState,
) -> stateseal_store::Result<Outcome> {
    let store: Arc<dyn Store> = Arc::new(fleet.store.for_key(&found.key));
    let sealed = Sealed::new(store.clone(), encryption);
    let what = store.location(DEFAULT_WORKSPACE);
    sealed
        .locked(DEFAULT_WORKSPACE, OPERATION, Duration::ZERO, async {
            match rewrite(&sealed, found.object.clone(), what.clone()).await {
                Err(Error::Precondition { .. }) => {
                    let read = store.get(DEFAULT_WORKSPACE).await?;
                    rewrite(&sealed, read, what).await
                }
                done => done,
            }
        })
        .await
}

/// Rewrites `read` with the primary method, on the condition that it is still what is stored
/// ([`Error::Precondition`] if not, and nothing is written).
async fn rewrite(sealed: &Sealed, read: Object, what: String) -> stateseal_store::Result<Outcome> {
    let (plaintext, status, _) = sealed
        .unseal(Target::State, read.bytes.clone(), what.clone())
        .await?;
    if status == Status::Satisfied {
        return Ok(Outcome::AlreadyPrimary);
    }
    let sealed_bytes = sealed.seal_verified(Bytes::from(plaintext), what).await?;
    sealed
        .write(DEFAULT_WORKSPACE, sealed_bytes, Some(&read.version))
        .await?;
    Ok(Outcome::Rekeyed)
}
