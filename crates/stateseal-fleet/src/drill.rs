//! The disaster-recovery drill: proves, before anyone needs it, that every state (and with
//! `versions`, every kept version) can be decrypted with the offline recovery identity
//! **alone** — no KMS call, no passphrase — so a working KMS key cannot hide a broken recovery
//! path.
//!
//! Per state: find the recovery layout that `stateseal keyprovider` stored in the envelope's
//! metadata ([`crate::recovery`]), open the data key with the identity, decrypt the envelope
//! with AES-GCM (OpenTofu's `aes_gcm` method as the keyprovider's runbook configures it: no
//! `aad`), and check the plaintext: a valid state whose serial and lineage equal the
//! envelope's. A state written by any other key provider (such as the built-in `aws_kms`) has
//! no recovery recipient and is reported as such.

use serde::Serialize;
use stateseal_core::secret::scrub_json;
use stateseal_core::state::StateMeta;
use stateseal_encryption::envelope::Envelope;
use stateseal_store::{Store, DEFAULT_WORKSPACE};

use crate::discovery::discover;
use crate::recovery::{self, ExternalData, RecoveryError};
use crate::{parallel, Event, Fleet, Result};

/// What the drill found for one state or version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Decrypted with the recovery identity, and the plaintext checks out.
    Recovered,
    /// Not encrypted at all: nothing to recover.
    Plaintext,
    /// Encrypted without a recovery wrap (another key provider): lost if its key is lost.
    NoRecoveryRecipient,
    /// Has a recovery wrap, but recovery failed (see the detail).
    Failed,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::Plaintext => "plaintext",
            Outcome::NoRecoveryRecipient => "no-recovery-recipient",
            Outcome::Failed => "failed",
        }
    }

    /// Whether the state would survive the loss of every KMS key.
    pub fn recoverable(self) -> bool {
        matches!(self, Outcome::Recovered | Outcome::Plaintext)
    }
}

/// The drill's verdict on one set of bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// The age recipient whose wrap opened the data key.
    pub recipient: Option<String>,
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    /// Why, when the state is not recovered.
    pub detail: Option<String>,
}

impl Verdict {
    fn not(outcome: Outcome, detail: String) -> Verdict {
        Verdict {
            outcome,
            recipient: None,
            serial: None,
            lineage: None,
            detail: Some(detail),
        }
    }
}

/// Checks one state's bytes with the identities alone.
pub fn check(bytes: &[u8], identities: &[age::x25519::Identity]) -> Verdict {
    let envelope = match Envelope::parse(bytes) {
        Ok(e) => e,
        Err(_) => {
            return match StateMeta::parse(bytes) {
                Ok(m) => Verdict {
                    outcome: Outcome::Plaintext,
                    recipient: None,
                    serial: Some(m.serial),
                    lineage: Some(m.lineage),
                    detail: None,
                },
                Err(_) => Verdict::not(
                    Outcome::Failed,
                    "neither an OpenTofu envelope nor a plaintext state".into(),
                ),
            }
        }
    };
    let mut layouts = Vec::new();
    for (name, stored) in &envelope.meta {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(stored) else {
            continue;
        };
        let Some(data) = v.get("external_data").filter(|d| !d.is_null()) else {
            continue;
        };
        if data.get("stateseal_recovery").is_some() {
            layouts.push((name.clone(), ExternalData::from_value(data)));
        }
    }
    if layouts.is_empty() {
        let providers: Vec<&str> = envelope.meta.keys().map(String::as_str).collect();
        return Verdict::not(
            Outcome::NoRecoveryRecipient,
            format!(
                "written by {}: no stateseal keyprovider metadata",
                if providers.is_empty() {
                    "a method without key-provider metadata".to_string()
                } else {
                    providers.join(", ")
                }
            ),
        );
    }
    let mut errors = Vec::new();
    for (name, layout) in layouts {
        let opened = layout.and_then(|data| {
            if !data.has_recovery_recipient() {
                return Err(RecoveryError::NoRecoveryRecipient);
            }
            let (key, recipient) = recovery::open_with_identities(&data, identities)?;
            Ok((Some(recipient), key))
        });
        match opened {
            Ok((recipient, key)) => return decrypted(&envelope, &key, recipient),
            Err(RecoveryError::NoRecoveryRecipient) => {
                return Verdict::not(
                    Outcome::NoRecoveryRecipient,
                    format!("{name}: its wraps are all KMS keys: no age recipient"),
                )
            }
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    Verdict::not(Outcome::Failed, errors.join("; "))
}

/// Decrypts the envelope with the recovered data key and checks the plaintext.
fn decrypted(
    envelope: &Envelope,
    key: &stateseal_core::secret::Secret,
    recipient: Option<String>,
) -> Verdict {
    let mut config = serde_json::json!({
        "keys": {"encryption_key": null, "decryption_key": key.expose()}
    });
    let method = stateseal_encryption::method::aes_gcm::build(&config);
    scrub_json(&mut config);
    let method = match method {
        Ok(m) => m,
        Err(e) => return Verdict::not(Outcome::Failed, format!("AES-GCM: {e}")),
    };
    let plain = match method.decrypt(envelope.encrypted_data.clone()) {
        Ok(p) => zeroize::Zeroizing::new(p),
        Err(e) => {
            return Verdict::not(
                Outcome::Failed,
                format!("the recovered data key does not decrypt the state: {e}"),
            )
        }
    };
    let meta = match StateMeta::parse(&plain) {
        Ok(m) => m,
        Err(e) => {
            return Verdict::not(
                Outcome::Failed,
                format!("decrypted, but the plaintext is not a valid state: {e}"),
            )
        }
    };
    if let Some(fields) = &envelope.state_fields {
        let serial_matches = fields.serial.is_none_or(|s| s == meta.serial as i64);
        if !serial_matches || fields.lineage != meta.lineage {
            return Verdict::not(
                Outcome::Failed,
                format!(
                    "decrypted, but serial/lineage {}/{} differ from the envelope's {}/{}",
                    meta.serial,
                    meta.lineage,
                    fields.serial.map_or("null".into(), |s| s.to_string()),
                    fields.lineage
                ),
            );
        }
    }
    Verdict {
        outcome: Outcome::Recovered,
        recipient,
        serial: Some(meta.serial),
        lineage: Some(meta.lineage),
        detail: None,
    }
}

/// One drilled state or version.
#[derive(Clone, Debug, Serialize)]
pub struct Drilled {
    pub key: String,
    pub workspace: String,
    /// The S3 version ID with `versions`; `None` for the current object.
    pub version_id: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The counts of a drill.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub checked: usize,
    pub recovered: usize,
    pub plaintext: usize,
    pub no_recovery_recipient: usize,
    pub failed: usize,
}

/// A drill over a bucket or files.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub bucket: String,
    pub prefix: String,
    pub versions: bool,
    /// The number of states sampled, when `sample` was given.
    pub sampled_from: Option<usize>,
    pub states: Vec<Drilled>,
    pub summary: Summary,
}

impl Report {
    /// Builds the report and its counts.
    pub fn new(
        bucket: String,
        prefix: String,
        versions: bool,
        sampled_from: Option<usize>,
        states: Vec<Drilled>,
    ) -> Report {
        let mut summary = Summary {
            checked: states.len(),
            ..Summary::default()
        };
        for s in &states {
            match s.verdict.outcome {
                Outcome::Recovered => summary.recovered += 1,
                Outcome::Plaintext => summary.plaintext += 1,
                Outcome::NoRecoveryRecipient => summary.no_recovery_recipient += 1,
                Outcome::Failed => summary.failed += 1,
            }
        }
        Report {
            bucket,
            prefix,
            versions,
            sampled_from,
            states,
            summary,
        }
    }

    /// Whether every checked state survives the loss of every KMS key.
    pub fn all_recoverable(&self) -> bool {
        self.states.iter().all(|s| s.verdict.outcome.recoverable())
    }
}

/// How a bucket drill runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub versions: bool,
    /// Check this many states, picked at random, instead of all.
    pub sample: Option<usize>,
    pub concurrency: usize,
}

/// Drills every state under the fleet's prefix (see the module comment).
pub async fn drill(
    fleet: &Fleet,
    identities: std::sync::Arc<Vec<age::x25519::Identity>>,
    opts: &Options,
    on_event: &mut dyn FnMut(Event),
) -> Result<Report> {
    let inventory = discover(fleet, opts.concurrency, on_event).await?;
    let mut states = inventory.states;
    let total = states.len();
    let sampled_from = match opts.sample {
        Some(n) if n < total => {
            states = sample(states, n);
            Some(total)
        }
        _ => None,
    };
    let mut jobs = Vec::new();
    for s in states {
        if opts.versions {
            let store = fleet.store.for_key(&s.key);
            for v in store.versions(DEFAULT_WORKSPACE).await? {
                jobs.push((s.key.clone(), s.workspace.clone(), Some(v.id), None));
            }
        } else {
            jobs.push((s.key, s.workspace, None, Some(s.object.bytes)));
        }
    }
    on_event(Event::Started { states: jobs.len() });
    let results = parallel::run(
        jobs,
        opts.concurrency,
        |(key, workspace, version_id, bytes)| {
            let identities = identities.clone();
            let store = fleet.store.for_key(&key);
            async move {
                let bytes = match (bytes, &version_id) {
                    (Some(b), _) => Ok(b),
                    (None, Some(id)) => store
                        .get_version(DEFAULT_WORKSPACE, id)
                        .await
                        .map(|o| o.bytes),
                    (None, None) => store.get(DEFAULT_WORKSPACE).await.map(|o| o.bytes),
                };
                let verdict = match bytes {
                    Ok(b) => tokio::task::spawn_blocking(move || check(&b, &identities))
                        .await
                        .unwrap_or_else(|e| Verdict::not(Outcome::Failed, e.to_string())),
                    Err(e) => Verdict::not(Outcome::Failed, format!("reading it: {e}")),
                };
                Drilled {
                    key,
                    workspace,
                    version_id,
                    verdict,
                }
            }
        },
        |d: &Drilled| {
            on_event(Event::Finished {
                key: d.key.clone(),
                outcome: d.verdict.outcome.name(),
            })
        },
    )
    .await;
    Ok(Report::new(
        fleet.bucket().to_string(),
        fleet.prefix.clone(),
        opts.versions,
        sampled_from,
        results,
    ))
}

/// `n` of the states, picked at random (so that scheduled drills cover the whole bucket over
/// time), kept in key order.
pub fn sample<T>(mut items: Vec<T>, n: usize) -> Vec<T> {
    use ring::rand::SecureRandom as _;
    let rng = ring::rand::SystemRandom::new();
    // A partial Fisher-Yates shuffle of the first n positions, then back to key order.
    let mut order: Vec<usize> = (0..items.len()).collect();
    for i in 0..n.min(order.len()) {
        let mut draw = [0u8; 8];
        let _ = rng.fill(&mut draw);
        let j = i + (u64::from_le_bytes(draw) as usize) % (order.len() - i);
        order.swap(i, j);
    }
    let mut keep: Vec<usize> = order.into_iter().take(n).collect();
    keep.sort_unstable();
    let mut out = Vec::with_capacity(n);
    for (i, item) in items.drain(..).enumerate() {
        if keep.binary_search(&i).is_ok() {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_that_many_distinct_items_in_order() {
        let got = sample((0..100).collect::<Vec<_>>(), 10);
        assert_eq!(got.len(), 10);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert_eq!(sample(vec![1, 2, 3], 5), [1, 2, 3]);
    }

    #[test]
    fn plaintext_and_foreign_envelopes_are_told_apart() {
        let id = age::x25519::Identity::generate();
        let plain = br#"{"version":4,"serial":3,"lineage":"L","outputs":{},"resources":[]}"#;
        let v = check(plain, std::slice::from_ref(&id));
        assert_eq!((v.outcome, v.serial), (Outcome::Plaintext, Some(3)));
        let foreign = br#"{"serial":3,"lineage":"L","meta":{"key_provider.aws_kms.main":"eyJjaXBoZXJ0ZXh0X2Jsb2IiOiJBQUFBIn0="},"encrypted_data":"AAAA","encryption_version":"v0"}"#;
        let v = check(foreign, &[id]);
        assert_eq!(v.outcome, Outcome::NoRecoveryRecipient, "{v:?}");
        assert!(v.detail.unwrap().contains("key_provider.aws_kms.main"));
        assert_eq!(check(b"garbage", &[]).outcome, Outcome::Failed);
    }
}
