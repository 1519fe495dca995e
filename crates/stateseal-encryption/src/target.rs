//! Targets (`state`, `plan`, remote state data sources): the method chain, `enforced`, the
//! encrypt path and OpenTofu's decrypt decision tree (`docs/ENCRYPTION-FORMAT.md` §5.5, §5.6).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use hcl::Value;

use crate::config::eval::{references, static_address, StaticEvaluator};
use crate::config::syntax::Attribute;
use crate::config::{EncryptionConfig, KeyProviderBlock, MethodBlock, TargetBlock, ENV_SOURCE};
use crate::diagnostics::{Diagnostic, Diagnostics, Location};
use crate::envelope::{Envelope, NotEnvelope, StateFields, VERSION};
use crate::key_provider::{KeyProvider, ProviderError, Purpose};
use crate::method::{Method, MethodError};
use crate::registry::{Registry, UNENCRYPTED};
use crate::secret::{scrub_json, Keys};
use crate::Error;
use stateseal_core::state::StateHeader;

/// Which target to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    State,
    Plan,
    /// A `terraform_remote_state` data source, by its name (`foo`, `mymod.foo`, …).
    RemoteState(String),
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

struct Shared {
    config: EncryptionConfig,
    evaluator: StaticEvaluator,
    registry: Registry,
    /// For each key provider: the indices of the providers it references.
    provider_deps: Vec<Vec<usize>>,
    /// For each method: the indices of the providers it references directly.
    method_deps: Vec<Vec<usize>>,
}

impl Shared {
    /// Builds a key provider from its body, evaluated against the `key_provider` object
    /// `key_providers`. `key` (its storage key) names it in errors.
    fn build_provider(
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

    /// Builds a method from its body, evaluated against the `key_provider` object.
    fn build_method(
        &self,
        m: &MethodBlock,
        key_providers: &Value,
    ) -> Result<Box<dyn Method>, Diagnostic> {
        let factory = self.registry.method(&m.kind).expect("types are validated");
        build_from_body(
            &self.evaluator,
            &m.body,
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

/// Evaluates a block body and hands it to a factory. The evaluated body can hold passphrases
/// and key bytes: it is wiped whatever the factory says.
fn build_from_body<T>(
    ev: &StaticEvaluator,
    body: &crate::config::syntax::Body,
    key_providers: &Value,
    factory: impl FnOnce(&serde_json::Value) -> Result<T, String>,
    failed: impl FnOnce(String) -> Diagnostic,
) -> Result<T, Diagnostic> {
    let mut cfg = ev.eval_body(body, key_providers)?;
    let built = factory(&cfg);
    scrub_json(&mut cfg);
    built.map_err(failed)
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

    /// Decrypts a state or a plan, telling which from the bytes (parsed once): a zip, or an
    /// envelope without `serial`/`lineage`, is a plan; anything else is a state.
    pub fn decrypt_inferred(&self, data: &[u8]) -> Result<(Target, Vec<u8>, Status), Error> {
        let parsed = Envelope::parse(data);
        let is_plan = match &parsed {
            Ok(env) => env.state_fields.is_none(),
            Err(_) => data.starts_with(b"PK"),
        };
        let (target, te, kind) = if is_plan {
            (Target::Plan, &self.plan, Kind::Plan)
        } else {
            (Target::State, &self.state, Kind::State)
        };
        let (plain, status) = te.decrypt_parsed(data, parsed, kind)?;
        Ok((target, plain, status))
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
        let placeholder = keys_value(&Keys {
            encryption_key: Some(vec![0u8; 32].into()),
            decryption_key: Some(vec![0u8; 32].into()),
        });
        let mut kp_values = hcl::Map::new();
        for kp in &s.config.key_providers {
            insert_provider_value(&mut kp_values, kp, placeholder.clone());
        }
        let kp_values = Value::Object(kp_values);
        for kp in &s.config.key_providers {
            if let Err(d) = s.build_provider(kp, &kp.address(), &kp_values) {
                diags.push(d);
            }
            if let Some(alias) = &kp.alias {
                if let Err(d) = storage_key(&s.evaluator, kp, alias) {
                    diags.push(d);
                }
            }
        }
        for m in s.config.methods.iter().filter(|m| m.kind != UNENCRYPTED) {
            if let Err(d) = s.build_method(m, &kp_values) {
                diags.push(d);
            }
        }
        diags
    }
}

/// 1.11.4+: a string `"key_provider.T.N"` in `keys` or `chain` (and `"${…}"` in JSON) is a reference.
fn normalize_key_references(config: &mut EncryptionConfig) {
    let bodies = config
        .key_providers
        .iter_mut()
        .map(|k| &mut k.body)
        .chain(config.methods.iter_mut().map(|m| &mut m.body));
    for body in bodies {
        for a in body
            .attributes
            .iter_mut()
            .filter(|a| a.name == "keys" || a.name == "chain")
        {
            if matches!(a.expr, hcl::Expression::Traversal(_)) {
                continue;
            }
            if let Some(Ok((t, n))) = static_address(&a.expr, "key_provider", true) {
                if let Ok(e) = hcl_edit::parser::parse_expr(&format!("key_provider.{t}.{n}")) {
                    a.expr = hcl::Expression::from(e);
                }
            }
        }
    }
}

fn provider_refs(
    config: &EncryptionConfig,
    attrs: &[Attribute],
    blocks: &[crate::config::syntax::Block],
    diags: &mut Diagnostics,
) -> Vec<usize> {
    let mut out = Vec::new();
    let mut all: Vec<&Attribute> = attrs.iter().collect();
    let mut stack: Vec<&crate::config::syntax::Block> = blocks.iter().collect();
    while let Some(b) = stack.pop() {
        all.extend(b.body.attributes.iter());
        stack.extend(b.body.blocks.iter());
    }
    for a in all {
        for r in references(&a.expr)
            .into_iter()
            .filter(|r| r.root == "key_provider")
        {
            let [t, n, ..] = r.attrs.as_slice() else {
                diags.push(Diagnostic::error(
                    "Invalid Key Provider expression format",
                    "The key_provider symbol must be followed by two more attribute names specifying the type and name of the selected key provider.",
                    Some(&a.location),
                ));
                continue;
            };
            match config.key_providers.iter().position(|k| &k.kind == t && &k.name == n) {
                Some(i) if !out.contains(&i) => out.push(i),
                Some(_) => {}
                None => diags.push(Diagnostic::error(
                    "Reference to undeclared key provider",
                    format!("There is no key_provider {t:?} {n:?} block declared in the encryption block."),
                    Some(&a.location),
                )),
            }
        }
    }
    out
}

fn check_cycles(config: &EncryptionConfig, deps: &[Vec<usize>], diags: &mut Diagnostics) {
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        stack: &mut Vec<usize>,
        done: &mut BTreeSet<usize>,
    ) -> Option<Vec<usize>> {
        if let Some(pos) = stack.iter().position(|s| *s == i) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(i);
            return Some(cycle);
        }
        if done.contains(&i) {
            return None;
        }
        stack.push(i);
        for d in &deps[i] {
            if let Some(c) = visit(*d, deps, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(i);
        None
    }
    let mut done = BTreeSet::new();
    for i in 0..deps.len() {
        if let Some(cycle) = visit(i, deps, &mut Vec::new(), &mut done) {
            let addr = |i: usize| config.key_providers[i].address();
            diags.push(Diagnostic::error(
                "Circular reference detected",
                format!(
                    "Cannot load {} due to circular reference between key providers. Stack trace {}",
                    addr(cycle[0]),
                    cycle.iter().map(|i| addr(*i)).collect::<Vec<_>>().join(" -> ")
                ),
                Some(&config.key_providers[cycle[0]].location),
            ));
            return;
        }
    }
}

struct TargetChains {
    state: Vec<usize>,
    plan: Vec<usize>,
    remote_default: Vec<usize>,
    remote_named: Vec<(String, Vec<usize>)>,
}

impl TargetChains {
    fn resolve(
        config: &EncryptionConfig,
        ev: &StaticEvaluator,
        diags: &mut Diagnostics,
    ) -> TargetChains {
        let mut chain = |t: Option<&TargetBlock>, name: &str| {
            t.map(|t| resolve_chain(config, ev, t, name, diags))
                .unwrap_or_default()
        };
        let rs = config.remote_state.as_ref();
        TargetChains {
            state: chain(config.state.as_ref(), "state"),
            plan: chain(config.plan.as_ref(), "plan"),
            remote_default: chain(
                rs.and_then(|r| r.default.as_ref()),
                "remote_state_data_sources.default",
            ),
            remote_named: rs
                .map(|r| {
                    r.named
                        .iter()
                        .map(|(n, t)| {
                            (
                                n.clone(),
                                chain(Some(t), &format!("remote_state_data_source.{n}")),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

fn resolve_chain(
    config: &EncryptionConfig,
    ev: &StaticEvaluator,
    target: &TargetBlock,
    name: &str,
    diags: &mut Diagnostics,
) -> Vec<usize> {
    let mut chain = Vec::new();
    let mut cur = Some(target);
    while let Some(t) = cur {
        match method_index(config, t) {
            Ok(i) => {
                if chain.contains(&i) {
                    diags.push(Diagnostic::error(
                        "Duplicate method in fallback chain",
                        format!(
                            "{} appears twice in the {name} chain.",
                            config.methods[i].address()
                        ),
                        Some(&t.location),
                    ));
                }
                chain.push(i)
            }
            Err(d) => diags.push(d),
        }
        cur = t.fallback.as_deref();
    }
    let mut enforced = false;
    for a in &target.enforced {
        match ev.eval(&a.expr, &a.location, &Value::Null) {
            Ok(Value::Bool(b)) => enforced |= b,
            Ok(_) => diags.push(Diagnostic::error(
                "Invalid enforced value",
                "enforced must be true or false.",
                Some(&a.location),
            )),
            Err(d) => diags.push(d),
        }
    }
    if enforced && chain.iter().any(|i| config.methods[*i].kind == UNENCRYPTED) {
        diags.push(Diagnostic::error(
            "Unencrypted method is forbidden",
            format!(
                "Unable to use unencrypted method since the enforced flag is set (target {name})."
            ),
            Some(&target.location),
        ));
    }
    chain
}

fn method_index(config: &EncryptionConfig, t: &TargetBlock) -> Result<usize, Diagnostic> {
    let invalid = |loc: &Location| {
        let mut detail = "A single static variable reference is required: only attribute access and indexing with constant keys. No calculations, function calls, template expressions, etc are allowed here.".to_string();
        if &*loc.file == ENV_SOURCE {
            detail.push_str(" Note: a target block in TF_ENCRYPTION replaces the method of the same block in the code, so it must set method too.");
        }
        Diagnostic::error("Invalid expression", detail, Some(loc))
    };
    let Some(attr) = &t.method else {
        return Err(invalid(&t.location));
    };
    let identifier = || {
        Diagnostic::error(
            "Invalid encryption method identifier",
            "Expected method of form method.<type>.<name>",
            Some(&attr.location),
        )
    };
    match static_address(&attr.expr, "method", true) {
        Some(Ok((kind, name))) => config.methods.iter().position(|m| m.kind == kind && m.name == name).ok_or_else(|| {
            Diagnostic::error(
                "Reference to undeclared encryption method",
                format!("There is no method {kind:?} {name:?} block declared in the encryption block."),
                Some(&attr.location),
            )
        }),
        Some(Err(())) => Err(identifier()),
        None => match &attr.expr {
            hcl::Expression::Traversal(_) | hcl::Expression::Variable(_) => Err(identifier()),
            _ => Err(invalid(&attr.location)),
        },
    }
}

fn keys_value(k: &Keys) -> Value {
    let list = |s: &Option<crate::Secret>| {
        s.as_ref().map_or(Value::Null, |s| {
            Value::Array(s.expose().iter().map(|b| Value::from(*b)).collect())
        })
    };
    let mut m = hcl::Map::new();
    m.insert("encryption_key".to_string(), list(&k.encryption_key));
    m.insert("decryption_key".to_string(), list(&k.decryption_key));
    Value::Object(m)
}

fn insert_provider_value(map: &mut hcl::Map<String, Value>, kp: &KeyProviderBlock, v: Value) {
    let inner = map
        .entry(kp.kind.clone())
        .or_insert_with(|| Value::Object(hcl::Map::new()));
    if let Value::Object(o) = inner {
        o.insert(kp.name.clone(), v);
    }
}

fn storage_key(
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

fn config_error(summary: &str, detail: String, loc: &Location) -> Error {
    Error::Config(Diagnostic::error(summary, detail, Some(loc)).into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    State,
    Plan,
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

    /// Sets up the method at `chain[pos]`: evaluates and calls the key providers it reaches,
    /// in dependency order, then builds the method.
    fn setup(
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
        // Providers reachable from the method, dependencies first.
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
        let mut values = hcl::Map::new();
        let mut meta = BTreeMap::new();
        let mut used_keys = BTreeSet::new();
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
            let provider = s
                .build_provider(kp, &key, &Value::Object(values.clone()))
                .map_err(|d| Error::Config(d.into()))?;
            let purpose = match stored {
                None => Purpose::Encrypt,
                Some(m) => Purpose::Decrypt {
                    stored: m.get(&key).map(Vec::as_slice),
                },
            };
            let provided = provider.provide(purpose).map_err(|e| match e {
                ProviderError::Metadata(msg) => config_error(
                    "Unable to decode encrypted metadata (did you change your encryption config?)",
                    format!("metadata decoder for {key} failed with error: {msg}"),
                    &kp.location,
                ),
                ProviderError::Failed(msg) => config_error(
                    "Unable to fetch encryption key data",
                    format!("{key} failed with error: {msg}"),
                    &kp.location,
                ),
            })?;
            if let Some(md) = provided.metadata {
                meta.insert(key, md);
            }
            insert_provider_value(&mut values, kp, keys_value(&provided.keys));
        }
        let method = s
            .build_method(m, &Value::Object(values))
            .map_err(|d| Error::Config(d.into()))?;
        Ok(Prepared {
            method: Some(method),
            meta,
        })
    }

    fn primary(&self) -> Result<Arc<Prepared>, Error> {
        let mut slot = self.primary.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let p = Arc::new(self.setup(self.chain[0], None)?);
        *slot = Some(p.clone());
        Ok(p)
    }

    /// Encrypts a plaintext state (JSON). With no encryption or an `unencrypted` primary the
    /// plaintext comes back unchanged.
    pub fn encrypt_state(&self, plain: &[u8]) -> Result<Vec<u8>, Error> {
        let header = StateHeader::parse(plain).map_err(|e| {
            Error::InvalidPlaintext(format!("the state to encrypt is not valid JSON: {e}"))
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
        let encrypted_data = method.encrypt(plain).map_err(|e| Error::EncryptionFailed {
            target: self.name.clone(),
            message: e.to_string(),
        })?;
        Ok(Envelope {
            state_fields,
            meta: p.meta.clone(),
            encrypted_data,
            version: VERSION.into(),
        }
        .to_bytes())
    }

    /// Decrypts a state: an envelope through the method chain, or an accepted plaintext.
    pub fn decrypt_state(&self, data: &[u8]) -> Result<(Vec<u8>, Status), Error> {
        self.decrypt(data, Kind::State)
    }

    /// Decrypts a plan file.
    pub fn decrypt_plan(&self, data: &[u8]) -> Result<(Vec<u8>, Status), Error> {
        self.decrypt(data, Kind::Plan)
    }

    fn decrypt(&self, data: &[u8], kind: Kind) -> Result<(Vec<u8>, Status), Error> {
        self.decrypt_parsed(data, Envelope::parse(data), kind)
    }

    fn decrypt_parsed(
        &self,
        data: &[u8],
        parsed: Result<Envelope, NotEnvelope>,
        kind: Kind,
    ) -> Result<(Vec<u8>, Status), Error> {
        let env = match parsed {
            Ok(env) => env,
            Err(not) => return self.accept_plaintext(data, kind, not),
        };
        if self.chain.is_empty() {
            return Err(Error::EncryptedWithoutConfig {
                what: if kind == Kind::State {
                    "This state file"
                } else {
                    "The given plan file"
                },
            });
        }
        if env.version != VERSION {
            return Err(Error::UnsupportedVersion(env.version));
        }
        let state_fields = env.state_fields.clone();
        let meta = env.meta;
        let mut ciphertext = Some(env.encrypted_data);
        let mut attempts = Vec::new();
        let mut no_key = true;
        let encrypted: Vec<usize> = self
            .chain
            .iter()
            .copied()
            .filter(|i| self.shared.config.methods[*i].kind != UNENCRYPTED)
            .collect();
        for (n, idx) in encrypted.iter().enumerate() {
            let prepared = self.setup(*idx, Some(&meta))?;
            let method = prepared.method.as_ref().expect("not unencrypted");
            let input = if n + 1 == encrypted.len() {
                ciphertext.take().unwrap_or_default()
            } else {
                ciphertext.clone().unwrap_or_default()
            };
            match method.decrypt(input) {
                Ok(plain) => {
                    if kind == Kind::State {
                        check_passthrough(state_fields.as_ref(), &plain)?;
                    }
                    let status = if Some(idx) == self.chain.first() {
                        Status::Satisfied
                    } else {
                        Status::Migration
                    };
                    return Ok((plain, status));
                }
                Err(e) => {
                    no_key &= e == MethodError::NoDecryptionKey;
                    attempts.push(format!(
                        "attempted decryption failed for {}: {e}",
                        self.name
                    ));
                }
            }
        }
        Err(Error::DecryptionFailed {
            target: self.name.clone(),
            attempts,
            no_key: no_key && !encrypted.is_empty(),
        })
    }

    fn accept_plaintext(
        &self,
        data: &[u8],
        kind: Kind,
        not: NotEnvelope,
    ) -> Result<(Vec<u8>, Status), Error> {
        if self.chain.is_empty() {
            return Ok((data.to_vec(), Status::Satisfied));
        }
        let verr = match kind {
            Kind::State => match StateHeader::parse(data) {
                Ok(h)
                    if h.terraform_version
                        .as_ref()
                        .and_then(|v| v.as_str())
                        .is_some_and(|v| !v.is_empty()) =>
                {
                    None
                }
                Ok(_) => Some("Given payload is not a state file".to_string()),
                Err(e) => Some(e),
            },
            Kind::Plan => {
                if data.len() >= 2 && &data[..2] == b"PK" {
                    None
                } else {
                    Some(format!(
                        "Invalid plan file {:?}",
                        String::from_utf8_lossy(&data[..data.len().min(2)])
                    ))
                }
            }
        };
        if let Some(verr) = verr {
            let message = match not {
                NotEnvelope::Json(j) => format!("invalid data format for decryption: {j}, {verr}"),
                NotEnvelope::NoVersion => {
                    format!("unable to determine data structure during decryption: {verr}")
                }
            };
            return Err(Error::InvalidPayload {
                target: self.name.clone(),
                message,
            });
        }
        if !self
            .chain
            .iter()
            .any(|i| self.shared.config.methods[*i].kind == UNENCRYPTED)
        {
            return Err(Error::UnencryptedPayload {
                target: self.name.clone(),
            });
        }
        let status = if self.primary_is_unencrypted() {
            Status::Satisfied
        } else {
            Status::Migration
        };
        Ok((data.to_vec(), status))
    }
}

fn check_passthrough(fields: Option<&StateFields>, plain: &[u8]) -> Result<(), Error> {
    let Some(f) = fields else { return Ok(()) };
    let h = StateHeader::parse(plain).map_err(|e| {
        Error::InvalidPlaintext(format!("the decrypted state is not valid JSON: {e}"))
    })?;
    if let (Some(env), Some(st)) = (f.serial, h.serial()) {
        if env != st {
            return Err(Error::PassthroughMismatch(format!(
                "serial field mismatch {env} vs {st}"
            )));
        }
    }
    if !f.lineage.is_empty() && f.lineage != h.lineage() {
        return Err(Error::PassthroughMismatch(format!(
            "linage field mismatch {} vs {}",
            f.lineage,
            h.lineage()
        )));
    }
    Ok(())
}
