//! Setting a method up: evaluate and call the key providers it reaches, in dependency order,
//! through the key cache, then build the method.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use hcl::Value;

use crate::config::eval::StaticEvaluator;
use crate::config::syntax::Attribute;
use crate::config::{EncryptionConfig, KeyProviderBlock, MethodBlock};
use crate::error::Error;
use crate::key_cache::{CacheKey, InFlight, KeyCache};
use crate::key_provider::{KeyProvider, ProviderError, Purpose};
use crate::key_values::KeyValues;
use crate::method::Method;
use crate::registry::{Registry, UNENCRYPTED};
use stateseal_core::diagnostics::{Diagnostic, Location};
use stateseal_core::secret::{scrub_json, Keys};

use super::*;

pub(super) struct Shared {
    pub(super) config: EncryptionConfig,
    pub(super) evaluator: StaticEvaluator,
    pub(super) registry: Registry,
    /// For each key provider: the indices of the providers it references.
    pub(super) provider_deps: Vec<Vec<usize>>,
    /// For each method: the indices of the providers it references directly.
    pub(super) method_deps: Vec<Vec<usize>>,
    /// What providers returned, by provider and stored metadata.
    pub(super) keys: Mutex<KeyCache>,
    /// How often each key-provider type was called (cache misses), for [`Encryption::key_provider_calls`].
    pub(super) calls: Mutex<BTreeMap<String, u64>>,
    /// Decryption keys being derived right now (one derivation per key, however many ask).
    pub(super) in_flight: InFlight,
}

impl Shared {
    /// Builds a key provider from its body, evaluated against the `key_provider` object
    /// `key_providers`. `key` (its storage key) names it in errors.
    pub(super) fn build_provider(
        &self,
        kp: &KeyProviderBlock,
        key: &str,
        key_providers: &Value,
    ) -> Result<Box<dyn KeyProvider>, Diagnostic> {
        let factory = self
            .registry
            .key_provider(&kp.kind)
            .expect("types are validated");
        build_from_body(
            &self.evaluator,
            &kp.body,
            provider_blocks(&kp.kind),
            key_providers,
            |c| factory(c),
            |e| {
                Diagnostic::error(
                    "Unable to build encryption key data",
                    format!("{key} failed with error: {e}"),
                    Some(&kp.location),
                )
            },
        )
    }

    /// Builds the provider and asks it for keys, counting the calls that returned one.
    fn call_provider(
        &self,
        kp: &KeyProviderBlock,
        key: &str,
        values: &KeyValues,
        purpose: Purpose<'_>,
    ) -> Result<crate::key_provider::Provided, Error> {
        let provider = self
            .build_provider(kp, key, values.value())
            .map_err(|d| Error::Config(d.into()))?;
        let provided = provider.provide(purpose);
        if let Ok(p) = &provided {
            // Counted when a key came back (for pbkdf2: a derivation). A provider asked to
            // decrypt data it did not write returns nothing and did no work.
            if p.keys.encryption_key.is_some() || p.keys.decryption_key.is_some() {
                *self
                    .calls
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(kp.kind.clone())
                    .or_default() += 1;
            }
        }
        provided.map_err(|e| {
            let (summary, detail) = match &e {
                ProviderError::Metadata(msg) => (
                    "Unable to decode encrypted metadata (did you change your encryption config?)",
                    format!("metadata decoder for {key} failed with error: {msg}"),
                ),
                other => (
                    "Unable to fetch encryption key data",
                    format!("{key} failed with error: {}", other.message()),
                ),
            };
            Error::KeyProvider {
                address: key.to_string(),
                kind: e.kind(),
                diagnostics: Diagnostic::error(summary, detail, Some(&kp.location)).into(),
            }
        })
    }

    /// Builds a method from its body, evaluated against the `key_provider` object.
    pub(super) fn build_method(
        &self,
        m: &MethodBlock,
        key_providers: &Value,
    ) -> Result<Box<dyn Method>, Diagnostic> {
        let factory = self.registry.method(&m.kind).expect("types are validated");
        build_from_body(
            &self.evaluator,
            &m.body,
            &[],
            key_providers,
            |c| factory(c),
            |e| {
                Diagnostic::error(
                    "Invalid method configuration",
                    format!("{}: {e}", m.address()),
                    Some(&m.location),
                )
            },
        )
    }
}

/// The nested block types a key provider's body may have, as OpenTofu's schemas declare them:
/// only aws_kms's `endpoints`. Everything else, objects included (`assume_role = { … }`), is an
/// attribute, and OpenTofu refuses it written as a block.
fn provider_blocks(kind: &str) -> &'static [&'static str] {
    match kind {
        "aws_kms" => &["endpoints"],
        _ => &[],
    }
}

/// Evaluates a block body and hands it to a factory. The evaluated body can hold passphrases
/// and key bytes: it is wiped whatever the factory says. `blocks`: the nested block types the
/// body may have (a JSON body has none: its objects are attributes).
pub(super) fn build_from_body<T>(
    ev: &StaticEvaluator,
    body: &crate::config::syntax::Body,
    blocks: &[&str],
    key_providers: &Value,
    factory: impl FnOnce(&serde_json::Value) -> Result<T, crate::ConfigError>,
    failed: impl FnOnce(String) -> Diagnostic,
) -> Result<T, Diagnostic> {
    if let Some(b) = body
        .blocks
        .iter()
        .find(|b| !blocks.contains(&b.kind.as_str()))
    {
        return Err(Diagnostic::error(
            "Unsupported block type",
            format!(
                "Blocks of type {:?} are not expected here. Did you mean to define argument {:?}? If so, use the equals sign to assign it a value.",
                b.kind, b.kind
            ),
            Some(&b.location),
        ));
    }
    let mut cfg = ev.eval_body(body, key_providers)?;
    let built = factory(&cfg);
    scrub_json(&mut cfg);
    built.map_err(|e| failed(e.to_string()))
}

pub(super) fn storage_key(
    ev: &StaticEvaluator,
    kp: &KeyProviderBlock,
    alias: &Attribute,
) -> Result<String, Diagnostic> {
    match ev.eval(&alias.expr, &alias.location, &Value::Null)? {
        Value::String(s) if !s.is_empty() => Ok(s),
        Value::String(_) | Value::Null => Ok(kp.address()),
        _ => Err(Diagnostic::error(
            "Invalid encrypted_metadata_alias",
            "encrypted_metadata_alias must be a string.",
            Some(&alias.location),
        )),
    }
}

pub(super) fn config_error(summary: &str, detail: String, loc: &Location) -> Error {
    Error::Config(Diagnostic::error(summary, detail, Some(loc)).into())
}

impl TargetEncryption {
    /// The key providers reachable from the method `method_idx`, dependencies first.
    pub(super) fn reachable_providers(&self, method_idx: usize) -> Vec<usize> {
        let s = &self.shared;
        let mut order = Vec::new();
        fn visit(i: usize, deps: &[Vec<usize>], order: &mut Vec<usize>) {
            if order.contains(&i) {
                return;
            }
            for d in &deps[i] {
                visit(*d, deps, order);
            }
            order.push(i);
        }
        for p in &s.method_deps[method_idx] {
            visit(*p, &s.provider_deps, &mut order);
        }
        order
    }

    /// Per method of the chain (primary first): its address and the metadata keys its key
    /// providers store (`key_provider.TYPE.NAME` or their `encrypted_metadata_alias`). This is
    /// what tells, without a key, which method wrote an envelope. An alias that does not
    /// evaluate falls back to the address.
    pub fn method_metadata_keys(&self) -> Vec<(String, BTreeSet<String>)> {
        let s = &self.shared;
        self.chain
            .iter()
            .map(|&m| {
                let keys = self
                    .reachable_providers(m)
                    .into_iter()
                    .map(|i| {
                        let kp = &s.config.key_providers[i];
                        kp.alias
                            .as_ref()
                            .and_then(|a| storage_key(&s.evaluator, kp, a).ok())
                            .unwrap_or_else(|| kp.address())
                    })
                    .collect();
                (s.config.methods[m].address(), keys)
            })
            .collect()
    }

    /// Sets up the method at `chain[pos]`: evaluates and calls the key providers it reaches,
    /// in dependency order, then builds the method.
    pub(super) fn setup(
        &self,
        method_idx: usize,
        stored: Option<&BTreeMap<String, Vec<u8>>>,
    ) -> Result<Prepared, Error> {
        let s = &self.shared;
        let m = &s.config.methods[method_idx];
        if m.kind == UNENCRYPTED {
            return Ok(Prepared {
                method: None,
                meta: BTreeMap::new(),
            });
        }
        let order = self.reachable_providers(method_idx);
        // The key bytes each provider returned, as bodies see them; scrubbed on drop.
        let mut values = KeyValues::new();
        let mut meta = BTreeMap::new();
        let mut used_keys = BTreeSet::new();
        let mut ids: BTreeMap<usize, CacheKey> = BTreeMap::new();
        for i in order {
            let kp = &s.config.key_providers[i];
            let key = match &kp.alias {
                Some(a) => storage_key(&s.evaluator, kp, a).map_err(|d| Error::Config(d.into()))?,
                None => kp.address(),
            };
            if !used_keys.insert(key.clone()) {
                return Err(config_error(
                    "Duplicate metadata key",
                    format!("The metadata key {key} is duplicated across multiple key providers for the same method; use the encrypted_metadata_alias option to specify unique metadata keys for each key provider in an encryption method"),
                    &kp.location,
                ));
            }
            let upstream: Vec<&CacheKey> = s.provider_deps[i]
                .iter()
                .filter_map(|d| ids.get(d))
                .collect();
            let (keys, id) = match stored {
                Some(m) => {
                    let stored_meta = m.get(&key).map(Vec::as_slice);
                    let id = CacheKey::new(&key, stored_meta, &upstream);
                    let cached = || s.keys.lock().unwrap_or_else(|p| p.into_inner()).get(&id);
                    let gate = match cached() {
                        Some(_) => None,
                        None => Some(s.in_flight.gate(&id)),
                    };
                    let _derive = gate
                        .as_ref()
                        .map(|g| g.lock().unwrap_or_else(|p| p.into_inner()));
                    let keys = match cached() {
                        Some(k) => k,
                        None => {
                            let provided = s.call_provider(
                                kp,
                                &key,
                                &values,
                                Purpose::Decrypt {
                                    stored: stored_meta,
                                },
                            );
                            let provided = provided.inspect_err(|_| s.in_flight.done(&id))?;
                            s.keys
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(id.clone(), provided.keys.clone());
                            s.in_flight.done(&id);
                            provided.keys
                        }
                    };
                    (keys, id)
                }
                None => {
                    let provided = s.call_provider(kp, &key, &values, Purpose::Encrypt)?;
                    let id = CacheKey::new(&key, provided.metadata.as_deref(), &upstream);
                    // A provider's encryption key is, by the joint's contract, the decryption key
                    // for the metadata it returned: reading back what was just written (the
                    // verification after an encrypt) needs no second derivation.
                    let for_reading = Keys {
                        encryption_key: None,
                        decryption_key: provided.keys.encryption_key.clone(),
                    };
                    s.keys
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.clone(), for_reading);
                    if let Some(md) = provided.metadata {
                        meta.insert(key, md);
                    }
                    (provided.keys, id)
                }
            };
            ids.insert(i, id);
            values.insert(kp, &keys);
        }
        let method = s
            .build_method(m, values.value())
            .map_err(|d| Error::Config(d.into()))?;
        Ok(Prepared {
            method: Some(method),
            meta,
        })
    }

    pub(super) fn primary(&self) -> Result<Arc<Prepared>, Error> {
        let mut slot = self.primary.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let p = Arc::new(self.setup(self.chain[0], None)?);
        *slot = Some(p.clone());
        Ok(p)
    }
}
