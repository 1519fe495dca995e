//! Static evaluation of configuration expressions: `var.*`, `local.*`, `path.*`,
//! `terraform.workspace`, `key_provider.T.N` and built-in functions. Resources, data sources and
//! module outputs are not available, as in OpenTofu's static context.

use std::collections::BTreeMap;

use hcl::eval::{Context, Evaluate as _};
use hcl::expr::{Expression, TemplateExpr, TraversalOperator};
use hcl::template::{Directive, Element, Template};
use hcl::Value;

use super::module::Module;
use super::syntax::{Attribute, Body};
use stateseal_core::diagnostics::{Diagnostic, Location};

/// A reference found in an expression: the root name and the attribute names that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub root: String,
    pub attrs: Vec<String>,
}

/// Every traversal in `expr`, excluding names bound by `for` expressions.
pub fn references(expr: &Expression) -> Vec<Reference> {
    let mut out = Vec::new();
    walk(expr, &mut Vec::new(), &mut out);
    out
}

fn walk(expr: &Expression, bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    match expr {
        Expression::Variable(v) if !bound.iter().any(|b| b == v.as_str()) => {
            out.push(Reference {
                root: v.to_string(),
                attrs: vec![],
            });
        }
        Expression::Traversal(t) => {
            if let Expression::Variable(v) = &t.expr {
                if !bound.iter().any(|b| b == v.as_str()) {
                    let attrs = t
                        .operators
                        .iter()
                        .map_while(|op| match op {
                            TraversalOperator::GetAttr(id) => Some(id.to_string()),
                            _ => None,
                        })
                        .collect();
                    out.push(Reference {
                        root: v.to_string(),
                        attrs,
                    });
                }
            } else {
                walk(&t.expr, bound, out);
            }
            for op in &t.operators {
                if let TraversalOperator::Index(e) = op {
                    walk(e, bound, out);
                }
            }
        }
        Expression::Array(a) => a.iter().for_each(|e| walk(e, bound, out)),
        Expression::Object(o) => o.iter().for_each(|(k, v)| {
            if let hcl::ObjectKey::Expression(e) = k {
                walk(e, bound, out);
            }
            walk(v, bound, out)
        }),
        Expression::TemplateExpr(t) => {
            if let Ok(tpl) = Template::from_expr(t) {
                walk_template(&tpl, bound, out);
            }
        }
        Expression::FuncCall(f) => f.args.iter().for_each(|e| walk(e, bound, out)),
        Expression::Parenthesis(e) => walk(e, bound, out),
        Expression::Conditional(c) => {
            walk(&c.cond_expr, bound, out);
            walk(&c.true_expr, bound, out);
            walk(&c.false_expr, bound, out);
        }
        Expression::Operation(op) => match op.as_ref() {
            hcl::expr::Operation::Unary(u) => walk(&u.expr, bound, out),
            hcl::expr::Operation::Binary(b) => {
                walk(&b.lhs_expr, bound, out);
                walk(&b.rhs_expr, bound, out);
            }
        },
        Expression::ForExpr(f) => {
            walk(&f.collection_expr, bound, out);
            let n = bound.len();
            bound.extend(f.key_var.iter().map(|k| k.to_string()));
            bound.push(f.value_var.to_string());
            if let Some(k) = &f.key_expr {
                walk(k, bound, out);
            }
            walk(&f.value_expr, bound, out);
            if let Some(c) = &f.cond_expr {
                walk(c, bound, out);
            }
            bound.truncate(n);
        }
        _ => {}
    }
}

fn walk_template(tpl: &Template, bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    for el in tpl.elements() {
        match el {
            Element::Literal(_) => {}
            Element::Interpolation(i) => walk(&i.expr, bound, out),
            Element::Directive(Directive::If(d)) => {
                walk(&d.cond_expr, bound, out);
                walk_template(&d.true_template, bound, out);
                if let Some(f) = &d.false_template {
                    walk_template(f, bound, out);
                }
            }
            Element::Directive(Directive::For(d)) => {
                walk(&d.collection_expr, bound, out);
                let n = bound.len();
                bound.extend(d.key_var.iter().map(|k| k.to_string()));
                bound.push(d.value_var.to_string());
                walk_template(&d.template, bound, out);
                bound.truncate(n);
            }
        }
    }
}

/// If `expr` is exactly `ROOT.a.b` (a static traversal of two attributes), returns `(a, b)`.
/// A plain string `"ROOT.a.b"` is accepted too when `allow_string` (JSON and 1.11.4+ `keys`).
pub fn static_address(
    expr: &Expression,
    root: &str,
    allow_string: bool,
) -> Option<Result<(String, String), ()>> {
    match expr {
        Expression::Traversal(t) => {
            let Expression::Variable(v) = &t.expr else {
                return None;
            };
            if v.as_str() != root {
                return None;
            }
            let attrs: Vec<String> = t
                .operators
                .iter()
                .map(|op| match op {
                    TraversalOperator::GetAttr(id) => Ok(id.to_string()),
                    _ => Err(()),
                })
                .collect::<Result<_, _>>()
                .ok()?;
            Some(match attrs.as_slice() {
                [a, b] => Ok((a.clone(), b.clone())),
                _ => Err(()),
            })
        }
        Expression::Variable(v) if v.as_str() == root => Some(Err(())),
        Expression::String(s) if allow_string => {
            let mut parts = s.split('.');
            if parts.next() != Some(root) {
                return None;
            }
            let rest: Vec<&str> = parts.collect();
            Some(match rest.as_slice() {
                [a, b] if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
                _ => Err(()),
            })
        }
        Expression::TemplateExpr(t) if allow_string => {
            // "${key_provider.a.b}" in JSON
            let TemplateExpr::QuotedString(s) = t.as_ref() else {
                return None;
            };
            let inner = s.strip_prefix("${")?.strip_suffix('}')?;
            let e = hcl_edit::parser::parse_expr(inner.trim()).ok()?;
            static_address(&Expression::from(e), root, false)
        }
        _ => None,
    }
}

/// Evaluates expressions in the static context of a root module.
#[derive(Clone, Default)]
pub struct StaticEvaluator {
    vars: BTreeMap<String, Value>,
    /// Declared variables and where.
    declared: BTreeMap<String, Location>,
    /// Variables declared `sensitive` or `ephemeral`, and the locals derived from them, with
    /// the mark (OpenTofu refuses such values in a backend block).
    marks: BTreeMap<String, &'static str>,
    /// The module directory (named in the missing-variable message).
    dir: String,
    locals: BTreeMap<String, Result<Value, Diagnostic>>,
    path: hcl::Map<String, Value>,
    workspace: String,
}

impl std::fmt::Debug for StaticEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Variable values can be passphrases: show only names.
        f.debug_struct("StaticEvaluator")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("locals", &self.locals.keys().collect::<Vec<_>>())
            .field("workspace", &self.workspace)
            .finish()
    }
}

impl StaticEvaluator {
    /// An evaluator with variable values already resolved (see [`super::variables::resolve`]).
    pub fn new(module: &Module, vars: BTreeMap<String, Value>, workspace: &str) -> StaticEvaluator {
        let dir = module.dir.display().to_string();
        let cwd = std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| ".".into());
        let mut path = hcl::Map::new();
        path.insert("module".into(), Value::from(dir.clone()));
        path.insert("root".into(), Value::from(dir.clone()));
        path.insert("cwd".into(), Value::from(cwd));
        let marks = module
            .variables
            .iter()
            .filter_map(|v| {
                let set = |attr: &str| {
                    v.block
                        .body
                        .attribute(attr)
                        .is_some_and(|a| a.expr == Expression::Bool(true))
                };
                let mark = if set("sensitive") {
                    "sensitive"
                } else if set("ephemeral") {
                    "ephemeral"
                } else {
                    return None;
                };
                Some((format!("var.{}", v.name), mark))
            })
            .collect();
        let mut ev = StaticEvaluator {
            vars,
            declared: module
                .variables
                .iter()
                .map(|v| (v.name.clone(), v.block.location.clone()))
                .collect(),
            marks,
            dir,
            locals: BTreeMap::new(),
            path,
            workspace: workspace.to_string(),
        };
        ev.evaluate_locals(&module.locals);
        ev
    }

    /// Locals are evaluated in dependency order; a local that cannot be evaluated statically
    /// (it uses a resource, say) is an error only where it is used.
    fn evaluate_locals(&mut self, locals: &[Attribute]) {
        let mut pending: Vec<&Attribute> = locals.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|a| {
                let deps: Vec<String> = references(&a.expr)
                    .into_iter()
                    .filter(|r| r.root == "local")
                    .filter_map(|r| r.attrs.first().cloned())
                    .collect();
                if deps
                    .iter()
                    .any(|d| !self.locals.contains_key(d) && locals.iter().any(|l| &l.name == d))
                {
                    return true;
                }
                let v = self.eval_for(
                    &format!("local.{}", a.name),
                    &a.expr,
                    &a.location,
                    &Value::Null,
                );
                self.locals.insert(a.name.clone(), v);
                if let Some(mark) = self.mark(&a.expr) {
                    self.marks.insert(format!("local.{}", a.name), mark);
                }
                false
            });
            if pending.len() == before {
                for a in pending.drain(..) {
                    self.locals.insert(
                        a.name.clone(),
                        Err(Diagnostic::error(
                            "Cycle in local values",
                            format!("local.{} depends on itself.", a.name),
                            Some(&a.location),
                        )),
                    );
                }
            }
        }
    }

    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// `Some("sensitive")` or `Some("ephemeral")` when `expr` uses a variable declared so
    /// (directly or through locals). OpenTofu strips these marks for key providers and
    /// refuses them in a backend block.
    pub fn mark(&self, expr: &Expression) -> Option<&'static str> {
        references(expr).iter().find_map(|r| {
            let name = format!("{}.{}", r.root, r.attrs.first()?);
            self.marks.get(&name).copied()
        })
    }

    /// Checks that every reference in `expr` is available statically.
    /// `subject` is what needs the value (OpenTofu's "which is required by …").
    fn check_references(
        &self,
        subject: &str,
        expr: &Expression,
        loc: &Location,
        key_providers: &Value,
    ) -> Result<(), Diagnostic> {
        let unable = |r: &Reference, why: &str| {
            format!(
                "Unable to use {} in static context, which is required by {subject}{why}",
                display_ref(r)
            )
        };
        for r in references(expr) {
            let first = r.attrs.first().map(String::as_str).unwrap_or("");
            match r.root.as_str() {
                "var" => {
                    let Some(declared_at) = self.declared.get(first) else {
                        return Err(Diagnostic::error(
                            "Reference to undeclared input variable",
                            format!("An input variable with the name {first:?} has not been declared. Declare it with a variable \"{first}\" {{}} block."),
                            Some(loc),
                        ));
                    };
                    if !self.vars.contains_key(first) {
                        return Err(Diagnostic::error(
                            "No value for required variable",
                            format!(
                                "var.{first} has no value (declared at {declared_at}). Set it with --var {first}=VALUE, --var-file FILE, the TF_VAR_{first} environment variable, {first} = VALUE in terraform.tfvars or a *.auto.tfvars file in {}, or a default in its declaration (stateseal does not prompt).",
                                if self.dir == "." { "the working directory" } else { &self.dir }
                            ),
                            Some(loc),
                        ));
                    }
                }
                "local" => match self.locals.get(first) {
                    None => {
                        return Err(Diagnostic::error("Reference to undeclared local value", format!("A local value with the name {first:?} has not been declared."), Some(loc)))
                    }
                    Some(Err(d)) => return Err(d.clone()),
                    Some(Ok(_)) => {}
                },
                "path" if matches!(first, "cwd" | "module" | "root") => {}
                "path" => {
                    return Err(Diagnostic::error(
                        "Invalid \"path\" attribute",
                        format!("The \"path\" object does not have an attribute named {first:?}. The attributes are cwd, module and root."),
                        Some(loc),
                    ))
                }
                "terraform" => match first {
                    "workspace" => {}
                    "applying" => {
                        return Err(Diagnostic::error(
                            "Invalid attribute in static context",
                            "The applying attribute can not be used during static evaluation and is only valid in the plan and apply phases of execution",
                            Some(loc),
                        ))
                    }
                    "env" => {
                        return Err(Diagnostic::error(
                            "Invalid \"terraform\" attribute",
                            "The terraform.env attribute was deprecated in v0.10 and removed in v0.12. The \"state environment\" concept was renamed to \"workspace\" in v0.12, and so the workspace name can now be accessed using the terraform.workspace attribute.",
                            Some(loc),
                        ))
                    }
                    _ => {
                        return Err(Diagnostic::error(
                            "Invalid \"terraform\" attribute",
                            format!("The \"terraform\" object does not have an attribute named {first:?}. The only supported attribute is terraform.workspace, the name of the currently-selected workspace."),
                            Some(loc),
                        ))
                    }
                },
                "key_provider" => {
                    if key_providers.is_null() {
                        return Err(Diagnostic::error("Invalid reference", "key_provider references are allowed only in key_provider and method blocks.", Some(loc)));
                    }
                }
                "module" => {
                    return Err(Diagnostic::error(
                        "Module output not supported in static context",
                        unable(&r, "."),
                        Some(loc),
                    ))
                }
                "count" | "each" | "self" => {
                    return Err(Diagnostic::error(
                        "Dynamic value in static context",
                        unable(&r, "."),
                        Some(loc),
                    ))
                }
                _ => {
                    return Err(Diagnostic::error(
                        "Dynamic value in static context",
                        unable(&r, ": resources and data sources are not available before the configuration is applied."),
                        Some(loc),
                    ))
                }
            }
        }
        Ok(())
    }

    fn context(&self, key_providers: &Value) -> Context<'static> {
        let mut ctx = Context::new();
        ctx.declare_var(
            "var",
            Value::Object(
                self.vars
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        );
        ctx.declare_var(
            "local",
            Value::Object(
                self.locals
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().ok().map(|v| (k.clone(), v.clone())))
                    .collect(),
            ),
        );
        ctx.declare_var("path", Value::Object(self.path.clone()));
        let mut tf = hcl::Map::new();
        tf.insert("workspace".to_string(), Value::from(self.workspace.clone()));
        ctx.declare_var("terraform", Value::Object(tf));
        if !key_providers.is_null() {
            ctx.declare_var("key_provider", key_providers.clone());
        }
        super::functions::declare(&mut ctx);
        ctx
    }

    /// Evaluates one expression. `key_providers` is the `key_provider` object (`Null` where
    /// key-provider references are not allowed).
    pub fn eval(
        &self,
        expr: &Expression,
        loc: &Location,
        key_providers: &Value,
    ) -> Result<Value, Diagnostic> {
        self.eval_for("the encryption configuration", expr, loc, key_providers)
    }

    /// [`StaticEvaluator::eval`] for `subject` (`backend.s3`, `local.x`, …), named in the
    /// diagnostics of references that are not available statically.
    pub fn eval_for(
        &self,
        subject: &str,
        expr: &Expression,
        loc: &Location,
        key_providers: &Value,
    ) -> Result<Value, Diagnostic> {
        self.check_references(subject, expr, loc, key_providers)?;
        expr.evaluate(&self.context(key_providers))
            .map_err(|e| Diagnostic::error("Invalid expression", e.to_string(), Some(loc)))
    }

    /// Evaluates a provider or method body to a JSON object. Nested blocks become objects
    /// (at most one block of each type).
    pub fn eval_body(
        &self,
        body: &Body,
        key_providers: &Value,
    ) -> Result<serde_json::Value, Diagnostic> {
        let mut out = serde_json::Map::new();
        for a in &body.attributes {
            // The evaluated value can hold key bytes (`keys = key_provider.x.y`) or a
            // passphrase: wiped once converted (the JSON body is wiped by its caller).
            let mut v = self.eval(&a.expr, &a.location, key_providers)?;
            let json = serde_json::to_value(&v);
            crate::key_values::scrub_hcl(&mut v);
            out.insert(
                a.name.clone(),
                json.map_err(|e| {
                    Diagnostic::error("Invalid value", e.to_string(), Some(&a.location))
                })?,
            );
        }
        for b in &body.blocks {
            if out.contains_key(&b.kind) {
                return Err(Diagnostic::error(
                    format!("Duplicate {} block", b.kind),
                    format!("At most one {} block is allowed here.", b.kind),
                    Some(&b.location),
                ));
            }
            out.insert(b.kind.clone(), self.eval_body(&b.body, key_providers)?);
        }
        Ok(serde_json::Value::Object(out))
    }
}

fn display_ref(r: &Reference) -> String {
    std::iter::once(r.root.as_str())
        .chain(r.attrs.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::syntax::parse_hcl;

    fn module(src: &str) -> Module {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("m.tf"), src).unwrap();
        super::super::module::load(d.path()).unwrap()
    }

    fn eval_attr(ev: &StaticEvaluator, src: &str) -> Result<Value, Diagnostic> {
        let body = parse_hcl(&"t.hcl".into(), src).unwrap();
        let a = &body.attributes[0];
        let mut kp = hcl::Map::new();
        kp.insert(
            "pbkdf2".to_string(),
            Value::from_iter([("a".to_string(), Value::from("KEYS"))]),
        );
        ev.eval(&a.expr, &a.location, &Value::Object(kp))
    }

    #[test]
    fn vars_locals_functions_and_key_providers() {
        let m = module("variable \"p\" {}\nvariable \"q\" {}\nlocals {\n a = \"${var.p}-x\"\n b = upper(local.a)\n c = aws_instance.x.id\n}\n");
        let ev = StaticEvaluator::new(&m, [("p".to_string(), Value::from("pass"))].into(), "dev");
        assert_eq!(
            eval_attr(&ev, "x = local.b").unwrap(),
            Value::from("PASS-X")
        );
        assert_eq!(
            eval_attr(&ev, "x = sha256(\"a\")").unwrap(),
            Value::from("ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb")
        );
        assert_eq!(
            eval_attr(&ev, "x = key_provider.pbkdf2.a").unwrap(),
            Value::from("KEYS")
        );
        assert_eq!(
            eval_attr(&ev, "x = terraform.workspace").unwrap(),
            Value::from("dev")
        );
        assert_eq!(
            eval_attr(&ev, "x = [for s in [\"a\"] : upper(s)]").unwrap(),
            Value::from_iter([Value::from("A")])
        );
        assert_eq!(
            eval_attr(&ev, "x = var.q").unwrap_err().summary,
            "No value for required variable"
        );
        assert_eq!(
            eval_attr(&ev, "x = var.nope").unwrap_err().summary,
            "Reference to undeclared input variable"
        );
        assert_eq!(
            eval_attr(&ev, "x = local.c").unwrap_err().summary,
            "Dynamic value in static context"
        );
        assert_eq!(
            eval_attr(&ev, "x = module.m.out").unwrap_err().summary,
            "Module output not supported in static context"
        );
        let d = eval_attr(&ev, "\n\nx = local.nope").unwrap_err();
        assert_eq!(d.location.unwrap().line, 3);
    }

    #[test]
    fn terraform_and_path_attributes_and_marks() {
        let m = module("variable \"s\" {\n sensitive = true\n default = \"x\"\n}\nvariable \"e\" {\n ephemeral = true\n default = \"y\"\n}\nlocals {\n a = \"${var.s}-1\"\n b = upper(local.a)\n c = \"plain\"\n}\n");
        let ev = StaticEvaluator::new(
            &m,
            [
                ("s".into(), Value::from("x")),
                ("e".into(), Value::from("y")),
            ]
            .into(),
            "default",
        );
        for (src, summary) in [
            (
                "x = terraform.applying",
                "Invalid attribute in static context",
            ),
            ("x = terraform.env", "Invalid \"terraform\" attribute"),
            ("x = terraform.nope", "Invalid \"terraform\" attribute"),
            ("x = path.nope", "Invalid \"path\" attribute"),
        ] {
            assert_eq!(eval_attr(&ev, src).unwrap_err().summary, summary, "{src}");
        }
        let expr = |s: &str| Expression::from(hcl_edit::parser::parse_expr(s).unwrap());
        assert_eq!(ev.mark(&expr("local.b")), Some("sensitive"));
        assert_eq!(ev.mark(&expr("\"${var.e}\"")), Some("ephemeral"));
        assert_eq!(ev.mark(&expr("local.c")), None);
    }

    #[test]
    fn static_addresses() {
        let e = |s: &str| Expression::from(hcl_edit::parser::parse_expr(s).unwrap());
        assert_eq!(
            static_address(&e("method.aes_gcm.x"), "method", false),
            Some(Ok(("aes_gcm".into(), "x".into())))
        );
        assert_eq!(
            static_address(&e("method.aes_gcm"), "method", false),
            Some(Err(()))
        );
        assert_eq!(
            static_address(&e("\"method.aes_gcm.x\""), "method", false),
            None
        );
        assert_eq!(
            static_address(&e("\"key_provider.a.b\""), "key_provider", true),
            Some(Ok(("a".into(), "b".into())))
        );
        let tpl = crate::config::syntax::json_expr(&serde_json::json!("${key_provider.a.b}"));
        assert_eq!(
            static_address(&tpl, "key_provider", true),
            Some(Ok(("a".into(), "b".into())))
        );
    }
}
