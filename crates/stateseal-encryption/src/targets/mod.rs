//! Targets (`state`, `plan`, remote state data sources): what a caller encrypts and decrypts
//! with. The concerns live in submodules:
//!
//! * `validate`: static checks of a configuration and each target's method chain;
//! * `setup`: evaluating and calling key providers (through the key cache) and building methods;
//! * `decrypt`: OpenTofu's decrypt decision tree (`docs/ENCRYPTION-FORMAT.md` §5.5, §5.6).

mod decrypt;
mod setup;
mod validate;

use setup::{storage_key, Shared};
use validate::{check_cycles, normalize_key_references, provider_refs, TargetChains};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::config::eval::StaticEvaluator;
use crate::config::EncryptionConfig;
use crate::envelope::{Envelope, StateFields, VERSION};
use crate::error::Error;
use crate::key_values::KeyValues;
use crate::method::Method;
use crate::registry::{Registry, UNENCRYPTED};
use stateseal_core::diagnostics::{Diagnostic, Diagnostics, Location};
use stateseal_core::secret::Keys;
use stateseal_core::state::StateHeader;

/// Which target to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    State,
    Plan,
    /// A `terraform_remote_state` data source, by its name (`foo`, `mymod.foo`, …).
    RemoteState(String),
}

impl Target {
    /// The payload kind this target reads and writes: a plan for the plan target, else a state
    /// (the inverse of [`PayloadKind::target`]).
    pub fn payload_kind(&self) -> PayloadKind {
        match self {
            Target::Plan => PayloadKind::Plan,
            Target::State | Target::RemoteState(_) => PayloadKind::State,
        }
    }
}

/// Why a target name did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown target {0:?}: expected state, plan or remote:NAME")]
pub struct UnknownTarget(pub String);

/// Parses `state`, `plan` or `remote:NAME` (the command line's spelling).
impl std::str::FromStr for Target {
    type Err = UnknownTarget;

    fn from_str(s: &str) -> Result<Target, UnknownTarget> {
        match s {
            "state" => Ok(Target::State),
            "plan" => Ok(Target::Plan),
            _ => match s.strip_prefix("remote:") {
                Some(n) if !n.is_empty() => Ok(Target::RemoteState(n.to_string())),
                _ => Err(UnknownTarget(s.to_string())),
            },
        }
    }
}

/// How a successful read went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Read with the primary method (or plaintext with an `unencrypted` primary).
    Satisfied,
    /// Read through a fallback, or as plaintext through an `unencrypted` fallback: the data
    /// should be rewritten with the primary method (`stateseal rekey`).
    Migration,
}

/// A validated encryption configuration. Key providers are called only when a payload is
/// encrypted or decrypted; the primary method of a target is set up once and reused (one salt
/// or data key per process and target, as OpenTofu does).
pub struct Encryption {
    shared: Arc<Shared>,
    warnings: Diagnostics,
    state: TargetEncryption,
    plan: TargetEncryption,
    remote_default: TargetEncryption,
    remote_named: Vec<(String, TargetEncryption)>,
}

/// One target's encryption.
pub struct TargetEncryption {
    shared: Arc<Shared>,
    name: String,
    /// Indices into `config.methods`: the primary first, then the fallbacks. Empty: disabled.
    chain: Vec<usize>,
    primary: Mutex<Option<Arc<Prepared>>>,
}

struct Prepared {
    /// `None` for the unencrypted method.
    method: Option<Box<dyn Method>>,
    meta: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field(
                "targets",
                &self.targets().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Encryption {
    /// Validates `config` statically (references, cycles, types, `enforced`). Contacts nothing.
    pub fn new(
        config: EncryptionConfig,
        evaluator: StaticEvaluator,
        registry: Registry,
    ) -> Result<Encryption, Diagnostics> {
        let mut config = config;
        normalize_key_references(&mut config);
        let mut diags = Diagnostics::default();
        let provider_deps: Vec<Vec<usize>> = config
            .key_providers
            .iter()
            .map(|kp| provider_refs(&config, &kp.body.attributes, &kp.body.blocks, &mut diags))
            .collect();
        let method_deps: Vec<Vec<usize>> = config
            .methods
            .iter()
            .map(|m| provider_refs(&config, &m.body.attributes, &m.body.blocks, &mut diags))
            .collect();
        for kp in &config.key_providers {
            if registry.key_provider(&kp.kind).is_none() {
                diags.push(Diagnostic::error(
                    "Unknown key_provider type",
                    format!(
                        "Can not find {:?}. Known types: {}.",
                        kp.kind,
                        registry.key_provider_types().collect::<Vec<_>>().join(", ")
                    ),
                    Some(&kp.location),
                ));
            }
        }
        for m in &config.methods {
            if !registry.has_method(&m.kind) {
                diags.push(Diagnostic::error(
                    "Unknown encryption method type",
                    format!(
                        "Can not find {:?}. Known types: {}.",
                        m.kind,
                        registry.method_types().collect::<Vec<_>>().join(", ")
                    ),
                    Some(&m.location),
                ));
            }
            if m.kind == UNENCRYPTED {
                diags.push(Diagnostic::warning(
                    "Unencrypted method configured",
                    "Method unencrypted is present in configuration. This is a security risk and should only be enabled during migrations.",
                    Some(&m.location),
                ));
            }
        }
        check_cycles(&config, &provider_deps, &mut diags);
        if !config.has_targets() {
            diags.push(Diagnostic::warning(
                "Empty encryption configuration",
                "The encryption block enables no target (state, plan or remote_state_data_sources), so nothing is encrypted. OpenTofu accepts this.",
                Some(&config.location),
            ));
        }
        let chains = TargetChains::resolve(&config, &evaluator, &mut diags);
        if diags.has_errors() {
            return Err(diags);
        }
        let shared = Arc::new(Shared {
            config,
            evaluator,
            registry,
            provider_deps,
            method_deps,
            keys: Default::default(),
            calls: Default::default(),
            in_flight: Default::default(),
        });
        let mk = |name: String, chain: Vec<usize>| TargetEncryption {
            shared: shared.clone(),
            name,
            chain,
            primary: Mutex::new(None),
        };
        Ok(Encryption {
            state: mk("state".into(), chains.state),
            plan: mk("plan".into(), chains.plan),
            remote_default: mk("remote.default".into(), chains.remote_default),
            remote_named: chains
                .remote_named
                .into_iter()
                .map(|(n, c)| {
                    (
                        n.clone(),
                        mk(format!("remote.remote_state_datasource.{n}"), c),
                    )
                })
                .collect(),
            warnings: diags,
            shared,
        })
    }

    /// No encryption at all: every target passes data through.
    pub fn disabled() -> Encryption {
        let loc = Location {
            file: "(none)".into(),
            line: 1,
            column: 1,
        };
        Encryption::new(
            EncryptionConfig::empty(loc),
            StaticEvaluator::default(),
            Registry::empty(),
        )
        .map(|mut e| {
            e.warnings = Diagnostics::default();
            e
        })
        .expect("an empty configuration is valid")
    }

    /// Warnings found while validating (unencrypted methods, an empty configuration).
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }

    pub fn config(&self) -> &EncryptionConfig {
        &self.shared.config
    }

    pub fn state(&self) -> &TargetEncryption {
        &self.state
    }

    pub fn plan(&self) -> &TargetEncryption {
        &self.plan
    }

    /// The target for a `terraform_remote_state` data source: its named block, else `default`.
    pub fn remote_state(&self, name: &str) -> &TargetEncryption {
        self.remote_named
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&self.remote_default, |(_, t)| t)
    }

    pub fn target(&self, t: &Target) -> &TargetEncryption {
        match t {
            Target::State => &self.state,
            Target::Plan => &self.plan,
            Target::RemoteState(n) => self.remote_state(n),
        }
    }

    /// Decrypts a state or a plan, telling which from the bytes ([`PayloadKind::sniff`]; anything
    /// but a plan is read as a state). Takes the buffer so a large file is decrypted in place.
    pub fn decrypt_inferred(&self, mut data: Vec<u8>) -> Result<(Target, Vec<u8>, Status), Error> {
        let (target, len, status) = self.decrypt_inferred_in_place(&mut data)?;
        data.truncate(len);
        Ok((target, data, status))
    }

    /// [`Encryption::decrypt_inferred`] of a buffer the caller owns (a `Vec` or any other
    /// memory): the plaintext ends up at `buf[..len]`. On an error the buffer's contents are
    /// unspecified.
    pub fn decrypt_inferred_in_place(
        &self,
        buf: &mut [u8],
    ) -> Result<(Target, usize, Status), Error> {
        // Parsed once: the envelope (or its absence) tells the kind and is then decrypted.
        let parsed = Envelope::parse_in_place(buf);
        let kind = match &parsed {
            Ok((env, _)) => PayloadKind::of_envelope(env),
            Err(_) => PayloadKind::of_plaintext(buf),
        };
        let (target, te, kind) = match kind {
            PayloadKind::Plan => (Target::Plan, &self.plan, PayloadKind::Plan),
            _ => (Target::State, &self.state, PayloadKind::State),
        };
        let (len, status) = te.decrypt_parsed(buf, parsed, kind)?;
        Ok((target, len, status))
    }

    /// How many times each key-provider type returned a key so far (the key cache's misses):
    /// for pbkdf2 the number of key derivations, for a KMS the number of key-service calls.
    pub fn key_provider_calls(&self) -> BTreeMap<String, u64> {
        self.shared
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every target, enabled or not.
    pub fn targets(&self) -> impl Iterator<Item = &TargetEncryption> {
        [&self.state, &self.plan, &self.remote_default]
            .into_iter()
            .chain(self.remote_named.iter().map(|(_, t)| t))
    }

    /// Builds every key provider and method with placeholder keys, to catch configuration
    /// errors (a short passphrase, a bad key length) without contacting any key service.
    pub fn check_buildable(&self) -> Diagnostics {
        let s = &self.shared;
        let mut diags = Diagnostics::default();
        let placeholder = Keys {
            encryption_key: Some(vec![0u8; 32].into()),
            decryption_key: Some(vec![0u8; 32].into()),
        };
        let mut kp_values = KeyValues::new();
        for kp in &s.config.key_providers {
            kp_values.insert(kp, &placeholder);
        }
        let kp_values = kp_values.value();
        for kp in &s.config.key_providers {
            if let Err(d) = s.build_provider(kp, &kp.address(), kp_values) {
                diags.push(d);
            }
            if let Some(alias) = &kp.alias {
                if let Err(d) = storage_key(&s.evaluator, kp, alias) {
                    diags.push(d);
                }
            }
        }
        for m in s.config.methods.iter().filter(|m| m.kind != UNENCRYPTED) {
            if let Err(d) = s.build_method(m, kp_values) {
                diags.push(d);
            }
        }
        diags
    }
}

/// What a payload is, told from its bytes without any key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    State,
    Plan,
    /// Neither a zip, nor an envelope, nor a JSON object.
    Unknown,
}

impl PayloadKind {
    /// A zip (`PK`) or an envelope without `serial`/`lineage` is a plan; an envelope with them or
    /// a JSON object is a state; anything else (empty, garbage) is unknown.
    pub fn sniff(bytes: &[u8]) -> PayloadKind {
        if bytes.starts_with(b"PK") {
            return PayloadKind::Plan;
        }
        match crate::envelope::Header::parse(bytes) {
            Ok(h) if h.state_fields.is_none() => PayloadKind::Plan,
            Ok(_) => PayloadKind::State,
            Err(_) => PayloadKind::of_plaintext(bytes),
        }
    }

    /// The kind of a parsed envelope: a plan carries no `serial`/`lineage`.
    pub fn of_envelope(env: &Envelope) -> PayloadKind {
        if env.state_fields.is_none() {
            PayloadKind::Plan
        } else {
            PayloadKind::State
        }
    }

    /// The kind of bytes that are not an envelope: a zip is a plan, a JSON object a state.
    pub fn of_plaintext(bytes: &[u8]) -> PayloadKind {
        if bytes.starts_with(b"PK") {
            PayloadKind::Plan
        } else if bytes.trim_ascii_start().starts_with(b"{") {
            PayloadKind::State
        } else {
            PayloadKind::Unknown
        }
    }

    /// The target that reads and writes this kind (unknown bytes are tried as a state).
    pub fn target(self) -> Target {
        match self {
            PayloadKind::Plan => Target::Plan,
            _ => Target::State,
        }
    }
}

impl TargetEncryption {
    /// `state`, `plan`, `remote.default` or `remote.remote_state_datasource.NAME`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Is encryption configured for this target?
    pub fn is_enabled(&self) -> bool {
        !self.chain.is_empty()
    }

    /// The method addresses, primary first.
    pub fn method_chain(&self) -> Vec<String> {
        self.chain
            .iter()
            .map(|i| self.shared.config.methods[*i].address())
            .collect()
    }

    /// Does the primary method write plaintext?
    pub fn primary_is_unencrypted(&self) -> bool {
        self.chain
            .first()
            .is_some_and(|i| self.shared.config.methods[*i].kind == UNENCRYPTED)
    }

    /// Encrypts a plaintext state (JSON). With no encryption or an `unencrypted` primary the
    /// plaintext comes back unchanged.
    pub fn encrypt_state(&self, plain: &[u8]) -> Result<Vec<u8>, Error> {
        let header = StateHeader::parse(plain).map_err(|cause| Error::InvalidPlaintext {
            which: crate::error::Plaintext::ToEncrypt,
            cause,
        })?;
        let fields = StateFields {
            serial: header.serial(),
            lineage: header.lineage(),
        };
        self.encrypt(plain, Some(fields))
    }

    /// Encrypts a plan file (a zip).
    pub fn encrypt_plan(&self, plain: &[u8]) -> Result<Vec<u8>, Error> {
        self.encrypt(plain, None)
    }

    fn encrypt(&self, plain: &[u8], state_fields: Option<StateFields>) -> Result<Vec<u8>, Error> {
        if self.chain.is_empty() || self.primary_is_unencrypted() {
            return Ok(plain.to_vec());
        }
        let p = self.primary()?;
        let method = p.method.as_ref().expect("not unencrypted");
        let encrypted_data = method
            .encrypt(plain)
            .map_err(|source| Error::EncryptionFailed {
                target: self.name.clone(),
                source,
            })?;
        Ok(Envelope {
            state_fields,
            meta: p.meta.clone(),
            encrypted_data,
            version: VERSION.into(),
        }
        .to_bytes())
    }

    /// Encrypts `plain` (a state or a plan, as `kind` says) with the primary method and proves
    /// that the result decrypts back to the same bytes with the primary method before returning
    /// it. The proof reuses the key just derived (no second derivation or key-service call).
    pub fn encrypt_verified(&self, plain: &[u8], kind: PayloadKind) -> Result<Vec<u8>, Error> {
        let out = match kind {
            PayloadKind::Plan => self.encrypt_plan(plain)?,
            _ => self.encrypt_state(plain)?,
        };
        let (back, status) = self.decrypt_owned(out.clone(), kind)?;
        if back != plain || status != Status::Satisfied {
            return Err(Error::RoundTripMismatch);
        }
        Ok(out)
    }

    /// Decrypts a state: an envelope through the method chain, or an accepted plaintext.
    pub fn decrypt_state(&self, data: &[u8]) -> Result<(Vec<u8>, Status), Error> {
        self.decrypt_owned(data.to_vec(), PayloadKind::State)
    }

    /// Decrypts a plan file.
    pub fn decrypt_plan(&self, data: &[u8]) -> Result<(Vec<u8>, Status), Error> {
        self.decrypt_owned(data.to_vec(), PayloadKind::Plan)
    }

    /// Decrypts `data` as `kind` (unknown is read as a state), in place: the plaintext is
    /// returned in the buffer that was passed in.
    pub fn decrypt_owned(
        &self,
        data: Vec<u8>,
        kind: PayloadKind,
    ) -> Result<(Vec<u8>, Status), Error> {
        let mut data = data;
        let (len, status) = self.decrypt_in_place(&mut data, kind)?;
        data.truncate(len);
        Ok((data, status))
    }

    /// [`TargetEncryption::decrypt_owned`] of a buffer the caller owns (a `Vec` or any other
    /// memory): the plaintext ends up at `buf[..len]`. On an error the buffer's contents are
    /// unspecified.
    pub fn decrypt_in_place(
        &self,
        buf: &mut [u8],
        kind: PayloadKind,
    ) -> Result<(usize, Status), Error> {
        let kind = match kind {
            PayloadKind::Plan => PayloadKind::Plan,
            _ => PayloadKind::State,
        };
        let parsed = Envelope::parse_in_place(buf);
        self.decrypt_parsed(buf, parsed, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_the_command_line_spelling_and_name_their_payload_kind() {
        for (s, t, kind) in [
            ("state", Target::State, PayloadKind::State),
            ("plan", Target::Plan, PayloadKind::Plan),
            (
                "remote:mymod.foo",
                Target::RemoteState("mymod.foo".into()),
                PayloadKind::State,
            ),
        ] {
            let parsed: Target = s.parse().unwrap();
            assert_eq!(parsed, t);
            assert_eq!(parsed.payload_kind(), kind);
            // payload_kind and PayloadKind::target are inverses for state and plan.
            if !matches!(t, Target::RemoteState(_)) {
                assert_eq!(kind.target(), t);
            }
        }
        for bad in ["", "remote:", "State", "remote", "plans"] {
            let e = bad.parse::<Target>().unwrap_err();
            assert!(
                e.to_string()
                    .contains("expected state, plan or remote:NAME"),
                "{e}"
            );
        }
    }
}
