//! The audit: per state, without any key, whether it is plaintext or which method wrote it
//! (primary, fallback, unknown), its key providers' public metadata, SSE, size, serial,
//! lineage, versions, lock and digest; and the bucket's own hardening. With `decrypt`, each
//! state is also decrypted to prove it is readable. Serialized, [`Report`] is
//! `stateseal audit --json` (stable names: CI gates depend on them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use stateseal_encryption::describe::{Description, MetadataEntry};
use stateseal_encryption::{Encryption, PayloadKind, Status};
use stateseal_store::s3::{BucketHardening, DigestStatus, Sse};
use stateseal_store::{Store as _, DEFAULT_WORKSPACE};

use crate::error::Result;

use crate::discovery::{self, FoundState};
use crate::locks::{self, HeldLock};
use crate::report::{ObjectSse, Tally};
use crate::{parallel, Event, Fleet};

/// Which method a state is encrypted with, as far as can be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Plaintext,
    Primary,
    Fallback,
    /// Encrypted by no method of the configuration, or by metadata that several methods share
    /// (decrypting tells them apart).
    Unknown,
}

impl Class {
    /// The name used in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            Class::Plaintext => "plaintext",
            Class::Primary => "primary",
            Class::Fallback => "fallback",
            Class::Unknown => "unknown",
        }
    }
}

/// What `--require` can ask of every state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    Encrypted,
    Primary,
    SseKms,
}

impl Requirement {
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Encrypted => "encrypted",
            Requirement::Primary => "primary",
            Requirement::SseKms => "sse-kms",
        }
    }

    /// Why `state` violates this requirement, if it does.
    pub fn violation(self, state: &StateReport) -> Option<String> {
        match self {
            Requirement::Encrypted if state.encryption == Class::Plaintext => {
                Some("is plaintext".into())
            }
            Requirement::Primary if state.encryption != Class::Primary => Some(format!(
                "is {}, not on the primary method",
                state.encryption.name()
            )),
            Requirement::SseKms if !matches!(state.sse.0, Sse::Kms { .. }) => Some(format!(
                "has server-side encryption {}, not aws:kms",
                state.sse.0.name().unwrap_or("none")
            )),
            _ => None,
        }
    }
}

/// The lock of one state.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LockStatus {
    pub held: bool,
    /// Every record that holds it (a DynamoDB item, a lock file, or both).
    pub records: Vec<HeldLock>,
}

/// One state.
#[derive(Clone, Debug, Serialize)]
pub struct StateReport {
    pub key: String,
    pub workspace: String,
    pub encryption: Class,
    /// The method that wrote it, when the metadata tells.
    pub method: Option<String>,
    /// The key providers' stored metadata (address or alias, and public parameters).
    pub key_providers: Vec<MetadataEntry>,
    /// `AES256`, `aws:kms`, `aws:kms:dsse`, `SSE-C`, or null.
    #[serde(flatten)]
    pub sse: ObjectSse,
    /// Null when the state has none a number reads as (or it is not a state).
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub size: usize,
    pub last_modified: Option<String>,
    /// Object versions (null when the listing failed).
    pub versions: Option<usize>,
    pub lock: LockStatus,
    /// `match`, `mismatch`, `absent` (no digest item), `no-table` or `unknown`.
    pub digest: DigestStatus,
    /// With `decrypt`: `ok` or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decrypt: Option<String>,
    /// Problems reading the object's details (HeadObject, versions, digest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// The bucket's hardening, as the store reads it.
pub type BucketChecks = BucketHardening;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub states: usize,
    pub plaintext: usize,
    pub primary: usize,
    pub fallback: usize,
    pub unknown: usize,
    pub locked: usize,
}

impl Tally for Summary {
    type Item = StateReport;

    fn counter(&mut self, s: &StateReport) -> &mut usize {
        match s.encryption {
            Class::Plaintext => &mut self.plaintext,
            Class::Primary => &mut self.primary,
            Class::Fallback => &mut self.fallback,
            Class::Unknown => &mut self.unknown,
        }
    }

    fn total(&mut self) -> Option<&mut usize> {
        Some(&mut self.states)
    }

    fn also(&mut self, s: &StateReport) {
        self.locked += usize::from(s.lock.held);
    }
}

/// An object that is not a state.
#[derive(Clone, Debug, Serialize)]
pub struct OtherObject {
    pub key: String,
    pub reason: String,
}

/// `stateseal audit --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub bucket: String,
    pub prefix: String,
    pub states: Vec<StateReport>,
    pub bucket_checks: BucketChecks,
    pub summary: Summary,
    pub lock_files: Vec<String>,
    pub plans: Vec<String>,
    pub other: Vec<OtherObject>,
}

impl Report {
    /// No state was found under the prefix: a `--require` gate on this report checked nothing
    /// ([`crate::nothing_checked`] says why).
    pub fn checked_nothing(&self) -> bool {
        self.states.is_empty()
    }

    /// How many objects under the prefix are not states (plans, lock files, anything else).
    pub fn other_objects(&self) -> usize {
        self.lock_files.len() + self.plans.len() + self.other.len()
    }

    /// Every state violating one of `requirements`, with the reasons.
    pub fn violations(&self, requirements: &[Requirement]) -> Vec<(&StateReport, Vec<String>)> {
        self.states
            .iter()
            .filter_map(|s| {
                let why: Vec<String> = requirements
                    .iter()
                    .filter_map(|r| r.violation(s).map(|v| format!("{} ({})", v, r.name())))
                    .collect();
                (!why.is_empty()).then_some((s, why))
            })
            .collect()
    }
}

/// Per method of the state target (primary first): its address and metadata keys.
pub type MethodKeys = Vec<(String, BTreeSet<String>)>;

impl Class {
    /// Which method wrote a state, from its metadata keys alone.
    pub fn of(d: &Description, methods: &MethodKeys) -> (Class, Option<String>) {
        if !d.encrypted {
            return (Class::Plaintext, None);
        }
        let stored: BTreeSet<String> = d.metadata.iter().flatten().map(|m| m.key.clone()).collect();
        let matching: Vec<usize> = methods
            .iter()
            .enumerate()
            .filter(|(_, (_, keys))| !keys.is_empty() && *keys == stored)
            .map(|(i, _)| i)
            .collect();
        match matching.as_slice() {
            [0] => (Class::Primary, Some(methods[0].0.clone())),
            [i] => (Class::Fallback, Some(methods[*i].0.clone())),
            _ => (Class::Unknown, None),
        }
    }
}

/// Options of an audit.
#[derive(Clone, Debug)]
pub struct Options {
    pub decrypt: bool,
    pub concurrency: usize,
}

/// Audits every state under the fleet's prefix.
pub async fn audit(
    fleet: &Fleet,
    encryption: Arc<Encryption>,
    opts: &Options,
    on_event: &mut dyn FnMut(Event),
) -> Result<Report> {
    let inv = discovery::discover(fleet, opts.concurrency, on_event).await?;
    let methods = encryption.state().method_metadata_keys();
    let mut by_state: BTreeMap<String, Vec<HeldLock>> = BTreeMap::new();
    for l in locks::list(fleet).await? {
        by_state.entry(l.state.clone()).or_default().push(l);
    }
    on_event(Event::Started {
        states: inv.states.len(),
    });
    let jobs: Vec<(FoundState, Vec<HeldLock>)> = inv
        .states
        .into_iter()
        .map(|s| {
            let l = by_state.remove(&s.key).unwrap_or_default();
            (s, l)
        })
        .collect();
    let states = parallel::run(
        jobs,
        opts.concurrency,
        |(found, locks)| {
            let fleet = fleet.clone();
            let methods = methods.clone();
            let encryption = encryption.clone();
            let decrypt = opts.decrypt;
            async move { audit_state(&fleet, found, locks, &methods, encryption, decrypt).await }
        },
        |s: &StateReport| {
            on_event(Event::Finished {
                key: s.key.clone(),
                outcome: "audited",
            })
        },
    )
    .await;
    let summary = Summary::of(&states);
    Ok(Report {
        bucket: fleet.bucket().to_string(),
        prefix: fleet.prefix.clone(),
        states,
        bucket_checks: fleet.store.hardening().await,
        summary,
        lock_files: inv.lock_files,
        plans: inv.plans,
        other: inv
            .other
            .into_iter()
            .map(|(key, reason)| OtherObject { key, reason })
            .collect(),
    })
}

async fn audit_state(
    fleet: &Fleet,
    found: FoundState,
    locks: Vec<HeldLock>,
    methods: &MethodKeys,
    encryption: Arc<Encryption>,
    decrypt: bool,
) -> StateReport {
    let FoundState {
        key,
        workspace,
        object,
        description,
    } = found;
    let (mut encryption_class, mut method) = Class::of(&description, methods);
    let mut problems = Vec::new();
    let store = fleet.store.for_key(&key);
    let (mut sse, mut last_modified) = (Sse::None, None);
    match fleet.store.head(&key).await {
        Ok(h) => {
            sse = h.sse;
            last_modified = h.last_modified;
        }
        Err(e) => problems.push(format!("HeadObject: {e}")),
    }
    let versions = match store.versions(DEFAULT_WORKSPACE).await {
        Ok(v) => Some(v.iter().filter(|v| !v.is_delete_marker).count()),
        Err(e) => {
            problems.push(format!("ListObjectVersions: {e}"));
            None
        }
    };
    let digest = match store.digest_status(DEFAULT_WORKSPACE, &object.bytes).await {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!("digest: {e}"));
            DigestStatus::Unknown
        }
    };
    let decrypt = if decrypt {
        let bytes = Bytes::clone(&object.bytes);
        let enc = encryption.clone();
        let res = tokio::task::spawn_blocking(move || {
            enc.state()
                .decrypt_owned(Vec::from(bytes), PayloadKind::State)
        })
        .await;
        Some(match res {
            Ok(Ok((_, status))) => {
                if encryption_class != Class::Plaintext {
                    encryption_class = match status {
                        Status::Satisfied => Class::Primary,
                        Status::Migration => Class::Fallback,
                    };
                    if encryption_class == Class::Primary {
                        method = encryption.state().method_chain().into_iter().next();
                    }
                }
                "ok".to_string()
            }
            Ok(Err(e)) => {
                if encryption_class != Class::Plaintext {
                    encryption_class = Class::Unknown;
                }
                e.to_string()
            }
            Err(e) => format!("the decryption task failed: {e}"),
        })
    } else {
        None
    };
    StateReport {
        key,
        workspace,
        encryption: encryption_class,
        method,
        key_providers: description.metadata.clone().unwrap_or_default(),
        sse: ObjectSse(sse),
        serial: description.serial.as_ref().and_then(Value::as_u64),
        lineage: description
            .lineage
            .as_ref()
            .and_then(Value::as_str)
            .map(String::from),
        size: object.bytes.len(),
        last_modified,
        versions,
        lock: LockStatus {
            held: !locks.is_empty(),
            records: locks,
        },
        digest,
        decrypt,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateseal_encryption::describe::describe;

    fn envelope(meta_keys: &[&str]) -> Description {
        let meta: serde_json::Map<String, Value> = meta_keys
            .iter()
            .map(|k| (k.to_string(), Value::from("e30=")))
            .collect();
        let bytes = serde_json::json!({
            "serial": 1, "lineage": "l", "meta": meta,
            "encrypted_data": "AAAA", "encryption_version": "v0"
        });
        describe(bytes.to_string().as_bytes())
    }

    fn methods(list: &[(&str, &[&str])]) -> MethodKeys {
        list.iter()
            .map(|(m, keys)| (m.to_string(), keys.iter().map(|k| k.to_string()).collect()))
            .collect()
    }

    #[test]
    fn the_metadata_keys_tell_primary_fallback_and_unknown() {
        let chain = methods(&[
            ("method.aes_gcm.new", &["key_provider.pbkdf2.new"]),
            ("method.aes_gcm.old", &["key_provider.pbkdf2.old"]),
            ("method.unencrypted.u", &[]),
        ]);
        let primary = envelope(&["key_provider.pbkdf2.new"]);
        assert_eq!(Class::of(&primary, &chain).0, Class::Primary);
        let (class, method) = Class::of(&envelope(&["key_provider.pbkdf2.old"]), &chain);
        assert_eq!(
            (class, method.as_deref()),
            (Class::Fallback, Some("method.aes_gcm.old"))
        );
        assert_eq!(
            Class::of(&envelope(&["key_provider.pbkdf2.x"]), &chain).0,
            Class::Unknown
        );
        let plain =
            describe(br#"{"version":4,"terraform_version":"1.9.0","serial":1,"lineage":"l"}"#);
        assert_eq!(Class::of(&plain, &chain).0, Class::Plaintext);
        // Two methods with the same providers: only decrypting can tell.
        let same = methods(&[
            ("method.aes_gcm.a", &["key_provider.pbkdf2.k"]),
            ("method.aes_gcm.b", &["key_provider.pbkdf2.k"]),
        ]);
        assert_eq!(
            Class::of(&envelope(&["key_provider.pbkdf2.k"]), &same).0,
            Class::Unknown
        );
    }
}
