//! Input variable values, gathered the way Terraform and OpenTofu do, lowest precedence first:
//! declared defaults, `TF_VAR_name`, `terraform.tfvars`, `terraform.tfvars.json`,
//! `*.auto.tfvars(.json)` in lexical order, then `--var-file` and `--var` from the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hcl::eval::Evaluate as _;

use super::module::Module;
use super::syntax;
use stateseal_core::diagnostics::{Diagnostic, Diagnostics};

/// Values given on the command line.
#[derive(Clone, Debug, Default)]
pub struct VarInputs {
    /// `--var NAME=VALUE`, in order.
    pub vars: Vec<(String, String)>,
    /// `--var-file FILE`, in order (applied before `--var`).
    pub var_files: Vec<PathBuf>,
}

impl VarInputs {
    /// Parses one `NAME=VALUE` argument.
    pub fn parse_var(arg: &str) -> Result<(String, String), InvalidVar> {
        match arg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(InvalidVar(arg.to_string())),
        }
    }
}

/// A `--var` argument that is not `NAME=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid --var {0:?}: expected NAME=VALUE")]
pub struct InvalidVar(pub String);

/// Resolves every declared variable that has a value. `env` looks up environment variables.
pub fn resolve(
    module: &Module,
    inputs: &VarInputs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, hcl::Value>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut values: BTreeMap<String, hcl::Value> = BTreeMap::new();
    let empty = hcl::eval::Context::new();
    let declared = |name: &str| module.variables.iter().find(|v| v.name == name);

    for v in &module.variables {
        if let Some(d) = &v.default {
            match d.expr.evaluate(&empty) {
                Ok(val) => {
                    values.insert(v.name.clone(), val);
                }
                Err(e) => diags.push(Diagnostic::error(
                    "Invalid default value for variable",
                    format!("var.{}: {e}", v.name),
                    Some(&d.location),
                )),
            }
        }
    }
    for v in &module.variables {
        if let Some(raw) = env(&format!("TF_VAR_{}", v.name)) {
            match literal(&raw, v.string_typed) {
                Ok(val) => {
                    values.insert(v.name.clone(), val);
                }
                Err(e) => diags.push(Diagnostic::error(
                    "Invalid value for variable",
                    format!("TF_VAR_{}: {e}", v.name),
                    None,
                )),
            }
        }
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for auto in ["terraform.tfvars", "terraform.tfvars.json"] {
        let p = module.dir.join(auto);
        if p.is_file() {
            files.push(p);
        }
    }
    if let Ok(rd) = std::fs::read_dir(&module.dir) {
        let mut autos: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.ends_with(".auto.tfvars") || n.ends_with(".auto.tfvars.json")
                })
            })
            .collect();
        autos.sort();
        files.extend(autos);
    }
    let explicit_files: Vec<PathBuf> = inputs.var_files.clone();
    for (explicit, path) in files
        .iter()
        .map(|p| (false, p))
        .chain(explicit_files.iter().map(|p| (true, p)))
    {
        match read_var_file(path) {
            Ok(file_values) => {
                for (k, v) in file_values {
                    if declared(&k).is_some() {
                        values.insert(k, v);
                    }
                }
            }
            Err(d) if explicit || path.exists() => diags.push(d),
            Err(_) => {}
        }
    }
    for (k, raw) in &inputs.vars {
        let Some(decl) = declared(k) else {
            diags.push(Diagnostic::error(
                "Value for undeclared variable",
                format!("A variable named {k:?} was assigned with --var, but the configuration in {} declares no such variable.", module.dir.display()),
                None,
            ));
            continue;
        };
        match literal(raw, decl.string_typed) {
            Ok(val) => {
                values.insert(k.clone(), val);
            }
            Err(e) => diags.push(Diagnostic::error(
                "Invalid value for variable",
                format!("--var {k}: {e}"),
                None,
            )),
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(values)
    }
}

/// A value from the command line or the environment: taken literally for string variables,
/// parsed as an HCL expression otherwise.
fn literal(raw: &str, string_typed: bool) -> Result<hcl::Value, String> {
    if string_typed {
        return Ok(hcl::Value::String(raw.to_string()));
    }
    super::syntax::check_nesting(&"value".into(), raw).map_err(|d| d.to_string())?;
    let expr = hcl_edit::parser::parse_expr(raw).map_err(|e| e.message().to_string())?;
    hcl::Expression::from(expr)
        .evaluate(&hcl::eval::Context::new())
        .map_err(|e| e.to_string())
}

/// Reads a `.tfvars` (HCL) or `.tfvars.json` file.
pub fn read_var_file(path: &Path) -> Result<BTreeMap<String, hcl::Value>, Diagnostic> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(
            "Cannot read variables file",
            format!("{}: {e}", path.display()),
            None,
        )
    })?;
    let file: Arc<str> = path.display().to_string().into();
    let mut out = BTreeMap::new();
    if path.extension().is_some_and(|e| e == "json") {
        syntax::check_nesting(&file, &src)?;
        let v: serde_json::Value = serde_json::from_str(&src).map_err(|e| {
            let loc = stateseal_core::diagnostics::Location {
                file: file.clone(),
                line: e.line(),
                column: e.column(),
            };
            Diagnostic::error("Invalid variables file", e.to_string(), Some(&loc))
        })?;
        let serde_json::Value::Object(map) = v else {
            return Err(Diagnostic::error(
                "Invalid variables file",
                format!("{}: the root must be a JSON object", path.display()),
                None,
            ));
        };
        for (k, v) in map {
            out.insert(
                k,
                hcl::to_value(&v).map_err(|e| {
                    Diagnostic::error("Invalid variables file", e.to_string(), None)
                })?,
            );
        }
        return Ok(out);
    }
    let body = syntax::parse_hcl(&file, &src)?;
    let ctx = hcl::eval::Context::new();
    for a in body.attributes {
        let v = a.expr.evaluate(&ctx).map_err(|e| {
            Diagnostic::error(
                "Invalid value in variables file",
                e.to_string(),
                Some(&a.location),
            )
        })?;
        out.insert(a.name, v);
    }
    if let Some(b) = body.blocks.first() {
        return Err(Diagnostic::error(
            "Unexpected block in variables file",
            "A .tfvars file holds only NAME = VALUE assignments.",
            Some(&b.location),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_default_env_files_cli() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("v.tf"),
            "variable \"a\" { default = \"def\" }\nvariable \"b\" { default = \"def\" }\nvariable \"c\" {}\nvariable \"n\" { type = number }\nvariable \"d\" { default = \"def\" }\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("terraform.tfvars"),
            "b = \"tfvars\"\nc = \"tfvars\"\n",
        )
        .unwrap();
        std::fs::write(d.path().join("x.auto.tfvars.json"), r#"{"c": "auto"}"#).unwrap();
        let module = super::super::module::load(d.path()).unwrap();
        let inputs = VarInputs {
            vars: vec![("n".into(), "42".into()), ("d".into(), "cli".into())],
            var_files: vec![],
        };
        let env = |k: &str| (k == "TF_VAR_a" || k == "TF_VAR_b").then(|| "env".to_string());
        let v = resolve(&module, &inputs, &env).unwrap();
        assert_eq!(v["a"], hcl::Value::from("env"));
        assert_eq!(v["b"], hcl::Value::from("tfvars"));
        assert_eq!(v["c"], hcl::Value::from("auto"));
        assert_eq!(v["n"], hcl::Value::from(42));
        assert_eq!(v["d"], hcl::Value::from("cli"));
        let bad = VarInputs {
            vars: vec![("nope".into(), "1".into())],
            var_files: vec![],
        };
        assert_eq!(
            resolve(&module, &bad, &|_| None).unwrap_err().0[0].summary,
            "Value for undeclared variable"
        );
        let missing = VarInputs {
            vars: vec![],
            var_files: vec![d.path().join("missing.tfvars")],
        };
        assert!(resolve(&module, &missing, &|_| None).is_err());
    }
}
