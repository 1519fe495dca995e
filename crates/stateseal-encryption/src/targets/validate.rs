//! Static validation of an encryption configuration: key-provider references and cycles, and
//! each target's method chain (primary, fallback, `enforced`). Contacts nothing.

use std::collections::BTreeSet;

use hcl::Value;

use crate::config::eval::{references, static_address, StaticEvaluator};
use crate::config::syntax::Attribute;
use crate::config::{EncryptionConfig, TargetBlock, ENV_SOURCE};
use crate::registry::UNENCRYPTED;
use stateseal_core::diagnostics::{Diagnostic, Diagnostics, Location};

/// 1.11.4+: a string `"key_provider.T.N"` in `keys` or `chain` (and `"${…}"` in JSON) is a reference.
pub(super) fn normalize_key_references(config: &mut EncryptionConfig) {
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

pub(super) fn provider_refs(
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

pub(super) fn check_cycles(
    config: &EncryptionConfig,
    deps: &[Vec<usize>],
    diags: &mut Diagnostics,
) {
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

pub(super) struct TargetChains {
    pub(super) state: Vec<usize>,
    pub(super) plan: Vec<usize>,
    pub(super) remote_default: Vec<usize>,
    pub(super) remote_named: Vec<(String, Vec<usize>)>,
}

impl TargetChains {
    pub(super) fn resolve(
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

pub(super) fn resolve_chain(
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

pub(super) fn method_index(
    config: &EncryptionConfig,
    t: &TargetBlock,
) -> Result<usize, Diagnostic> {
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
