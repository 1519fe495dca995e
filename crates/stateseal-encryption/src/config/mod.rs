//! The encryption configuration language, as OpenTofu reads it: the `terraform { encryption {} }`
//! block of a module's `*.tf` / `*.tf.json` files, a standalone body, and `TF_ENCRYPTION` merged
//! over it. See `docs/ENCRYPTION-FORMAT.md` §5.

pub mod eval;
mod functions;
pub mod module;
pub mod syntax;
pub mod variables;

use std::sync::Arc;

use stateseal_core::diagnostics::{Diagnostic, Diagnostics, Location};
use syntax::{Attribute, Block, Body, JsonSchema};

/// The name used in diagnostics for configuration read from the environment.
pub const ENV_SOURCE: &str = "TF_ENCRYPTION";

/// A parsed (not yet evaluated) `encryption` block.
#[derive(Clone, Debug, PartialEq)]
pub struct EncryptionConfig {
    pub key_providers: Vec<KeyProviderBlock>,
    pub methods: Vec<MethodBlock>,
    pub state: Option<TargetBlock>,
    pub plan: Option<TargetBlock>,
    pub remote_state: Option<RemoteStateBlock>,
    pub location: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KeyProviderBlock {
    pub kind: String,
    pub name: String,
    /// `encrypted_metadata_alias`, kept apart from the body (it is not merged from env).
    pub alias: Option<Attribute>,
    pub body: Body,
    pub location: Location,
}

impl KeyProviderBlock {
    pub fn address(&self) -> String {
        format!("key_provider.{}.{}", self.kind, self.name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MethodBlock {
    pub kind: String,
    pub name: String,
    pub body: Body,
    pub location: Location,
}

impl MethodBlock {
    pub fn address(&self) -> String {
        format!("method.{}.{}", self.kind, self.name)
    }
}

/// `state`, `plan`, `default` or a named `remote_state_data_source`.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetBlock {
    pub method: Option<Attribute>,
    /// Every `enforced` attribute that applies (merging ORs them).
    pub enforced: Vec<Attribute>,
    pub fallback: Option<Box<TargetBlock>>,
    pub location: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RemoteStateBlock {
    pub default: Option<TargetBlock>,
    pub named: Vec<(String, TargetBlock)>,
    pub location: Location,
}

/// The JSON schema of an `encryption` body (`parents` relative to the encryption block).
pub(crate) fn encryption_block_labels(parent: Option<&str>, key: &str) -> Option<usize> {
    match (parent, key) {
        (None, "key_provider" | "method") => Some(2),
        (None, "state" | "plan" | "remote_state_data_sources") => Some(0),
        (
            Some("state" | "plan" | "default" | "remote_state_data_source" | "fallback"),
            "fallback",
        ) => Some(0),
        (Some("remote_state_data_sources"), "default") => Some(0),
        (Some("remote_state_data_sources"), "remote_state_data_source") => Some(1),
        _ => None,
    }
}

struct EnvSchema;

impl JsonSchema for EnvSchema {
    fn block_labels(&self, parents: &[&str], key: &str) -> Option<usize> {
        if parents
            .iter()
            .any(|p| *p == "key_provider" || *p == "method")
        {
            return None;
        }
        encryption_block_labels(parents.last().copied(), key)
    }
}

fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl EncryptionConfig {
    /// An empty configuration (no encryption).
    pub fn empty(location: Location) -> EncryptionConfig {
        EncryptionConfig {
            key_providers: vec![],
            methods: vec![],
            state: None,
            plan: None,
            remote_state: None,
            location,
        }
    }

    /// Parses a standalone encryption body (the content of the `encryption` block, like
    /// `TF_ENCRYPTION`): JSON when the first non-blank character is `{`, native HCL otherwise.
    pub fn parse_body_str(source_name: &str, src: &str) -> Result<EncryptionConfig, Diagnostics> {
        let file: Arc<str> = source_name.into();
        let body = if src.trim_start().starts_with('{') {
            syntax::parse_json(&file, src, &EnvSchema)?
        } else {
            syntax::parse_hcl(&file, src)?
        };
        EncryptionConfig::from_body(&body)
    }

    /// Reads a `--config FILE`: the body of an `encryption` block (HCL or JSON), or an HCL file
    /// that holds one `encryption { … }` block at its top level (such as `stateseal serve`'s
    /// configuration) or inside a `terraform { … }` block. In the last two cases only that block
    /// is read; every other setting of the file is ignored.
    pub fn parse_config_file_str(
        source_name: &str,
        src: &str,
    ) -> Result<EncryptionConfig, Diagnostics> {
        if !src.trim_start().starts_with('{') {
            let file: Arc<str> = source_name.into();
            let body = syntax::parse_hcl(&file, src)?;
            let nested = body
                .blocks
                .iter()
                .filter(|b| b.kind == "terraform")
                .flat_map(|t| t.body.blocks.iter());
            let found: Vec<&Block> = body
                .blocks
                .iter()
                .chain(nested)
                .filter(|b| b.kind == "encryption" && b.labels.is_empty())
                .collect();
            if let [only] = found[..] {
                return EncryptionConfig::from_body(&only.body);
            }
        }
        EncryptionConfig::parse_body_str(source_name, src)
    }

    /// Reads `TF_ENCRYPTION` semantics: `None` when unset or only whitespace.
    pub fn parse_env(value: Option<&str>) -> Result<Option<EncryptionConfig>, Diagnostics> {
        match value {
            Some(v) if !v.trim().is_empty() => {
                Ok(Some(Self::parse_body_str(ENV_SOURCE, v.trim())?))
            }
            _ => Ok(None),
        }
    }

    /// Interprets the body of an `encryption` block.
    pub fn from_body(body: &Body) -> Result<EncryptionConfig, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut cfg = EncryptionConfig::empty(body.location.clone());
        for a in &body.attributes {
            diags.push(unsupported_argument(a, "encryption"));
        }
        for b in &body.blocks {
            match b.kind.as_str() {
                "key_provider" | "method" => {
                    if b.labels.len() != 2 {
                        diags.push(Diagnostic::error(
                            format!("Missing {} labels", b.kind),
                            format!("A {} block needs two labels: the type and the name, as in {} \"TYPE\" \"NAME\" {{ … }}.", b.kind, b.kind),
                            Some(&b.location),
                        ));
                        continue;
                    }
                    for l in &b.labels {
                        if !valid_label(l) {
                            diags.push(Diagnostic::error(
                                "Invalid block label",
                                format!("{:?} is not a valid {} label: use only letters, digits, '_' and '-'.", l, b.kind),
                                Some(&b.location),
                            ));
                        }
                    }
                    let (kind, name) = (b.labels[0].clone(), b.labels[1].clone());
                    if b.kind == "key_provider" {
                        if cfg.key_providers.iter().any(|k| k.kind == kind && k.name == name) {
                            diags.push(Diagnostic::error("Duplicate key_provider", format!("Found multiple instances of key_provider.{kind}.{name}"), Some(&b.location)));
                            continue;
                        }
                        let mut body = b.body.clone();
                        let alias = body.attributes.iter().position(|a| a.name == "encrypted_metadata_alias").map(|i| body.attributes.remove(i));
                        cfg.key_providers.push(KeyProviderBlock { kind, name, alias, body, location: b.location.clone() });
                    } else {
                        if cfg.methods.iter().any(|m| m.kind == kind && m.name == name) {
                            diags.push(Diagnostic::error("Duplicate method", format!("Found multiple instances of method.{kind}.{name}"), Some(&b.location)));
                            continue;
                        }
                        cfg.methods.push(MethodBlock { kind, name, body: b.body.clone(), location: b.location.clone() });
                    }
                }
                "state" | "plan" => {
                    let slot = if b.kind == "state" { &mut cfg.state } else { &mut cfg.plan };
                    if slot.is_some() {
                        diags.push(duplicate_block(b));
                        continue;
                    }
                    no_labels(b, &mut diags);
                    *slot = Some(TargetBlock::from_block(b, true, &mut diags));
                }
                "remote_state_data_sources" => {
                    if cfg.remote_state.is_some() {
                        diags.push(duplicate_block(b));
                        continue;
                    }
                    no_labels(b, &mut diags);
                    cfg.remote_state = Some(RemoteStateBlock::from_block(b, &mut diags));
                }
                other => diags.push(Diagnostic::error(
                    "Unsupported block type",
                    format!("Blocks of type {other:?} are not expected in an encryption block. Expected key_provider, method, state, plan or remote_state_data_sources."),
                    Some(&b.location),
                )),
            }
        }
        if diags.has_errors() {
            Err(diags)
        } else {
            Ok(cfg)
        }
    }

    /// Is this configuration empty (no target enabled)?
    pub fn has_targets(&self) -> bool {
        self.state.is_some() || self.plan.is_some() || self.remote_state.is_some()
    }

    /// Merges `over` (from `TF_ENCRYPTION` or an override file) over `self`, by OpenTofu's rules.
    pub fn merge(mut self, over: EncryptionConfig) -> EncryptionConfig {
        for kp in over.key_providers {
            match self
                .key_providers
                .iter_mut()
                .find(|k| k.kind == kp.kind && k.name == kp.name)
            {
                // The alias is not part of the merged body: the base's alias stays.
                Some(base) => base.body = merge_body(&base.body, &kp.body),
                None => self.key_providers.push(kp),
            }
        }
        for m in over.methods {
            match self
                .methods
                .iter_mut()
                .find(|b| b.kind == m.kind && b.name == m.name)
            {
                Some(base) => base.body = merge_body(&base.body, &m.body),
                None => self.methods.push(m),
            }
        }
        self.state = merge_target(self.state, over.state);
        self.plan = merge_target(self.plan, over.plan);
        self.remote_state = match (self.remote_state, over.remote_state) {
            (None, o) => o,
            (b, None) => b,
            (Some(mut b), Some(o)) => {
                b.default = merge_target(b.default, o.default);
                for (name, t) in o.named {
                    match b.named.iter().position(|(n, _)| *n == name) {
                        Some(i) => {
                            let (n, base) = b.named.remove(i);
                            let merged = merge_target(Some(base), Some(t)).expect("both present");
                            b.named.insert(i, (n, merged));
                        }
                        None => b.named.push((name, t)),
                    }
                }
                Some(b)
            }
        };
        self
    }
}

fn merge_body(base: &Body, over: &Body) -> Body {
    let mut out = base.clone();
    for a in &over.attributes {
        out.attributes.retain(|b| b.name != a.name);
        out.attributes.push(a.clone());
    }
    for kind in over
        .blocks
        .iter()
        .map(|b| b.kind.as_str())
        .collect::<std::collections::BTreeSet<_>>()
    {
        out.blocks.retain(|b| b.kind != kind);
        out.blocks
            .extend(over.blocks.iter().filter(|b| b.kind == kind).cloned());
    }
    out
}

/// OpenTofu's target merge: `enforced` is ORed, `fallback` comes from the override when it has
/// one, and `method` always comes from the override block (even when it sets none: gohcl fills
/// a missing expression with `null`, so an override `state { enforced = true }` wipes the method).
fn merge_target(base: Option<TargetBlock>, over: Option<TargetBlock>) -> Option<TargetBlock> {
    match (base, over) {
        (b, None) => b,
        (None, o) => o,
        (Some(b), Some(o)) => {
            let mut enforced = b.enforced;
            enforced.extend(o.enforced);
            Some(TargetBlock {
                method: o.method,
                enforced,
                fallback: o.fallback.or(b.fallback),
                location: o.location,
            })
        }
    }
}

impl TargetBlock {
    fn from_block(b: &Block, allow_enforced: bool, diags: &mut Diagnostics) -> TargetBlock {
        let mut t = TargetBlock {
            method: None,
            enforced: vec![],
            fallback: None,
            location: b.location.clone(),
        };
        for a in &b.body.attributes {
            match a.name.as_str() {
                "method" => t.method = Some(a.clone()),
                "enforced" if allow_enforced => t.enforced.push(a.clone()),
                _ => diags.push(unsupported_argument(a, &b.kind)),
            }
        }
        for inner in &b.body.blocks {
            if inner.kind != "fallback" {
                diags.push(Diagnostic::error(
                    "Unsupported block type",
                    format!(
                        "Blocks of type {:?} are not expected in a {} block; only fallback is.",
                        inner.kind, b.kind
                    ),
                    Some(&inner.location),
                ));
                continue;
            }
            if t.fallback.is_some() {
                diags.push(duplicate_block(inner));
                continue;
            }
            no_labels(inner, diags);
            t.fallback = Some(Box::new(TargetBlock::from_block(inner, false, diags)));
        }
        t
    }
}

impl RemoteStateBlock {
    fn from_block(b: &Block, diags: &mut Diagnostics) -> RemoteStateBlock {
        let mut r = RemoteStateBlock {
            default: None,
            named: vec![],
            location: b.location.clone(),
        };
        for a in &b.body.attributes {
            diags.push(unsupported_argument(a, &b.kind));
        }
        for inner in &b.body.blocks {
            match inner.kind.as_str() {
                "default" => {
                    if r.default.is_some() {
                        diags.push(duplicate_block(inner));
                        continue;
                    }
                    no_labels(inner, diags);
                    r.default = Some(TargetBlock::from_block(inner, false, diags));
                }
                "remote_state_data_source" => {
                    let [name] = inner.labels.as_slice() else {
                        diags.push(Diagnostic::error("Missing name for remote_state_data_source", "remote_state_data_source needs exactly one label: the data source name without data.terraform_remote_state.", Some(&inner.location)));
                        continue;
                    };
                    if r.named.iter().any(|(n, _)| n == name) {
                        diags.push(Diagnostic::error("Duplicate remote_data_source", format!("Found multiple instances of remote_data_source.{name}"), Some(&inner.location)));
                        continue;
                    }
                    r.named.push((name.clone(), TargetBlock::from_block(inner, false, diags)));
                }
                other => diags.push(Diagnostic::error("Unsupported block type", format!("Blocks of type {other:?} are not expected in remote_state_data_sources; expected default or remote_state_data_source."), Some(&inner.location))),
            }
        }
        r
    }
}

fn unsupported_argument(a: &Attribute, block: &str) -> Diagnostic {
    Diagnostic::error(
        "Unsupported argument",
        format!(
            "An argument named {:?} is not expected in a {block} block.",
            a.name
        ),
        Some(&a.location),
    )
}

fn duplicate_block(b: &Block) -> Diagnostic {
    Diagnostic::error(
        format!("Duplicate {} block", b.kind),
        format!("Only one {} block is allowed here.", b.kind),
        Some(&b.location),
    )
}

fn no_labels(b: &Block, diags: &mut Diagnostics) {
    if !b.labels.is_empty() {
        diags.push(Diagnostic::error(
            "Extraneous label",
            format!("A {} block takes no labels.", b.kind),
            Some(&b.location),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> EncryptionConfig {
        EncryptionConfig::parse_body_str("test.hcl", src).unwrap()
    }

    /// `--config FILE` takes an encryption body, or a file holding one `encryption` block (a
    /// server configuration, or a `terraform` block): the same providers either way, and the
    /// file's other settings are not read as encryption settings.
    #[test]
    fn a_config_file_may_hold_the_encryption_block() {
        let inner = r#"key_provider "pbkdf2" "k" {
  passphrase = "a long enough passphrase"
}
method "aes_gcm" "m" {
  keys = key_provider.pbkdf2.k
}
state {
  method = method.aes_gcm.m
}
"#;
        let bare = EncryptionConfig::parse_config_file_str("f.hcl", inner).unwrap();
        let server = format!("max_body_bytes = 1024\nauth {{\n}}\nencryption {{\n{inner}}}\n");
        let terraform = format!("terraform {{\n  encryption {{\n{inner}}}\n}}\n");
        for src in [server, terraform] {
            let c = EncryptionConfig::parse_config_file_str("f.hcl", &src).unwrap();
            assert_eq!(c.key_providers.len(), 1, "{src}");
            assert_eq!(
                c.key_providers[0].address(),
                bare.key_providers[0].address()
            );
            assert_eq!(c.methods.len(), bare.methods.len());
            assert!(c.state.is_some());
        }
        // Without an encryption block, the file is an encryption body, with its diagnostics.
        let e = EncryptionConfig::parse_config_file_str("f.hcl", "max_body_bytes = 1024\n")
            .unwrap_err();
        assert!(e.to_string().contains("max_body_bytes"), "{e}");
    }

    #[test]
    fn parses_every_block_kind() {
        let c = parse(
            r#"
            key_provider "pbkdf2" "a" {
              passphrase = "x"
              encrypted_metadata_alias = "certs"
            }
            method "aes_gcm" "m" { keys = key_provider.pbkdf2.a }
            method "unencrypted" "u" {}
            state {
              method = method.aes_gcm.m
              enforced = true
              fallback { method = method.unencrypted.u }
            }
            plan { method = method.aes_gcm.m }
            remote_state_data_sources {
              default { method = method.aes_gcm.m }
              remote_state_data_source "mymod.foo" { method = method.aes_gcm.m }
            }"#,
        );
        assert_eq!(c.key_providers[0].address(), "key_provider.pbkdf2.a");
        assert!(c.key_providers[0].alias.is_some());
        assert_eq!(c.key_providers[0].body.attributes.len(), 1);
        assert!(c.state.as_ref().unwrap().fallback.is_some());
        assert_eq!(c.remote_state.as_ref().unwrap().named[0].0, "mymod.foo");
    }

    #[test]
    fn structural_errors_point_at_lines() {
        let err = EncryptionConfig::parse_body_str(
            "e.hcl",
            "method \"aes_gcm\" \"m\" {}\n\nmethod \"aes_gcm\" \"m\" {}\n",
        )
        .unwrap_err();
        let d = err.errors().next().unwrap();
        assert_eq!(
            (d.summary.as_str(), d.location.as_ref().unwrap().line),
            ("Duplicate method", 3)
        );
        let err = EncryptionConfig::parse_body_str(
            "e.hcl",
            "state {\n method = method.a.b\n bogus = 1\n}",
        )
        .unwrap_err();
        assert_eq!(
            err.errors().next().unwrap().location.as_ref().unwrap().line,
            3
        );
        assert!(EncryptionConfig::parse_body_str("e.hcl", "state {}\nstate {}").is_err());
        assert!(
            EncryptionConfig::parse_body_str("e.hcl", "key_provider \"bad label!\" \"x\" {}")
                .is_err()
        );
    }

    #[test]
    fn env_merge_follows_opentofu() {
        let code = parse(
            r#"key_provider "pbkdf2" "a" {
                 passphrase = "code-passphrase!"
                 encrypted_metadata_alias = "code"
               }
               method "aes_gcm" "m" { keys = key_provider.pbkdf2.a }
               state {
                 method = method.aes_gcm.m
                 fallback { method = method.aes_gcm.m }
               }"#,
        );
        let env = EncryptionConfig::parse_env(Some(
            r#"{"key_provider":{"pbkdf2":{"a":{"passphrase":"env-passphrase!!","encrypted_metadata_alias":"env"},"b":{"passphrase":"another-one-here"}}},"state":{"enforced":true}}"#,
        ))
        .unwrap()
        .unwrap();
        let m = code.merge(env);
        assert_eq!(m.key_providers.len(), 2);
        let a = &m.key_providers[0];
        assert_eq!(
            a.body.attributes[0].expr,
            hcl::Expression::String("env-passphrase!!".into())
        );
        // the env alias is dropped for a provider that exists in code
        assert_eq!(
            a.alias.as_ref().unwrap().expr,
            hcl::Expression::String("code".into())
        );
        let st = m.state.unwrap();
        assert_eq!(st.enforced.len(), 1);
        assert!(
            st.method.is_none(),
            "an env state block always replaces the method"
        );
        assert!(
            st.fallback.is_some(),
            "the code fallback stays when env has none"
        );
        assert_eq!(EncryptionConfig::parse_env(Some("  \n")).unwrap(), None);
    }
}
