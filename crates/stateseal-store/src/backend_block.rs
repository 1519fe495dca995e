//! The store a root module's `terraform { backend "…" {} }` block points at, with
//! `--backend-config` overrides: evaluated early, as OpenTofu 1.8+ does (variables, locals,
//! `path.*`, `terraform.workspace` and functions; no resources, data sources, module outputs,
//! sensitive or ephemeral values), then checked and opened. No block means the local backend.
//!
//! [`configure`] does no I/O, so a wrong configuration fails before anything is contacted;
//! every problem comes back as one [`Diagnostic`] in [`Error::Backend`].

use std::collections::BTreeMap;

use hcl::Value;
use stateseal_core::diagnostics::{Diagnostic, Diagnostics, Location};
use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::module::Module;
use stateseal_encryption::config::syntax::{Block, Body};

use crate::error::{Error, Result};
use crate::http::{HttpConfig, HttpStore};
use crate::local::LocalStore;
#[cfg(feature = "s3")]
use crate::s3::{S3Builder, S3Config, S3Store};
use crate::store::Store;

/// A checked backend configuration, ready to open.
#[derive(Debug)]
pub enum Backend {
    Local(LocalStore),
    #[cfg(feature = "s3")]
    S3(Box<S3Config>),
    Http(Box<HttpConfig>),
}

impl Backend {
    /// Connects (S3) and returns the store.
    pub async fn open(self) -> Result<Box<dyn Store>> {
        match self {
            Backend::Local(s) => Ok(Box::new(s)),
            #[cfg(feature = "s3")]
            Backend::S3(cfg) => Ok(Box::new(S3Store::connect(*cfg).await?)),
            Backend::Http(cfg) => Ok(Box::new(HttpStore::new(*cfg)?)),
        }
    }
}

/// Evaluates `module`'s backend block with `evaluator` (the module's variables and locals),
/// applies `backend_config` (`KEY=VALUE` or a file of attributes, in order) over it and
/// resolves defaults from `env` (`AWS_REGION`, …).
pub fn configure(
    module: &Module,
    evaluator: &StaticEvaluator,
    backend_config: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Backend> {
    let Some(block) = &module.backend else {
        if let Some(first) = backend_config.first() {
            return Err(refused(Diagnostic::error(
                "Backend configuration without a backend block",
                format!(
                    "--backend-config {first} was given, but the configuration in {} has no terraform {{ backend \"…\" {{ … }} }} block: add one, or drop --backend-config.",
                    module.dir.display()
                ),
                None,
            )));
        }
        return Ok(Backend::Local(LocalStore::new(&module.dir)));
    };
    let mut diags = Diagnostics::default();
    let subject = format!(
        "backend.{}",
        block.labels.first().map(String::as_str).unwrap_or("")
    );
    evaluate_early(&subject, &block.body, evaluator, &mut diags);
    if let Some(mark) = block_mark(&block.body, evaluator) {
        // OpenTofu stores the backend configuration in .terraform and in plan files.
        diags.push(Diagnostic::error(
            format!("Backend config contains {mark} values"),
            format!("The backend configuration is stored in .terraform/terraform.tfstate as well as plan files. It is recommended to instead supply {mark} credentials via backend specific environment variables"),
            Some(&block.location),
        ));
    }
    if diags.has_errors() {
        return Err(Error::Backend(diags));
    }
    match block.labels.first().map(String::as_str).unwrap_or("") {
        #[cfg(feature = "s3")]
        "s3" => {
            let mut b = S3Builder::new().with_block(block, evaluator);
            for arg in backend_config {
                b = b.with_backend_config(arg);
            }
            match b.build_config(env) {
                Ok(cfg) => Ok(Backend::S3(Box::new(cfg))),
                Err(Error::Config(message)) => Err(Error::Backend(s3_diagnostics(&message, block))),
                Err(other) => Err(other),
            }
        }
        "local" => local(module, block, evaluator, backend_config),
        "http" => http(block, evaluator, backend_config, env),
        other => Err(refused(Diagnostic::error(
            "Unsupported backend type",
            format!("There is no backend type named {other:?} in stateseal: it supports \"s3\", \"http\" and \"local\"."),
            Some(&block.location),
        ))),
    }
}

fn refused(d: Diagnostic) -> Error {
    Error::Backend(d.into())
}

/// Evaluates every attribute (nested blocks included), in order.
fn evaluate_early(
    subject: &str,
    body: &Body,
    evaluator: &StaticEvaluator,
    diags: &mut Diagnostics,
) {
    for a in &body.attributes {
        if let Err(d) = evaluator.eval_for(subject, &a.expr, &a.location, &Value::Null) {
            diags.push(d);
        }
    }
    for b in &body.blocks {
        evaluate_early(subject, &b.body, evaluator, diags);
    }
}

/// `sensitive` or `ephemeral` when any attribute uses such a variable.
fn block_mark(body: &Body, evaluator: &StaticEvaluator) -> Option<&'static str> {
    body.attributes
        .iter()
        .find_map(|a| evaluator.mark(&a.expr))
        .or_else(|| {
            body.blocks
                .iter()
                .find_map(|b| block_mark(&b.body, evaluator))
        })
}

/// The S3 builder's problems (`- ORIGIN: text` lines), one diagnostic each, pointing at the
/// attribute named in the origin, else at the block (or nowhere for `--backend-config`).
#[cfg(feature = "s3")]
fn s3_diagnostics(message: &str, block: &Block) -> Diagnostics {
    let mut items: Vec<&str> = message
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    if items.is_empty() {
        items.push(message.trim());
    }
    let mut locations: Vec<&Location> = Vec::new();
    collect_locations(&block.body, &mut locations);
    let diagnostics = items.into_iter().map(|item| {
        let at = locations.iter().find_map(|l| {
            let rest = item.strip_prefix(&format!("{}:{}: ", l.file, l.line))?;
            Some((*l, rest))
        });
        match at {
            Some((loc, rest)) => {
                Diagnostic::error("Invalid s3 backend configuration", rest, Some(loc))
            }
            None if item.starts_with("--backend-config") => {
                Diagnostic::error("Invalid s3 backend configuration", item, None)
            }
            None => Diagnostic::error(
                "Invalid s3 backend configuration",
                item,
                Some(&block.location),
            ),
        }
    });
    Diagnostics(diagnostics.collect())
}

#[cfg(feature = "s3")]
fn collect_locations<'a>(body: &'a Body, out: &mut Vec<&'a Location>) {
    out.extend(body.attributes.iter().map(|a| &a.location));
    for b in &body.blocks {
        out.push(&b.location);
        collect_locations(&b.body, out);
    }
}

/// `backend "local" { path, workspace_dir }`, each overridable with `--backend-config K=V`.
fn local(
    module: &Module,
    block: &Block,
    evaluator: &StaticEvaluator,
    backend_config: &[String],
) -> Result<Backend> {
    const ATTRIBUTES: [&str; 2] = ["path", "workspace_dir"];
    let mut diags = Diagnostics::default();
    let mut settings: BTreeMap<String, String> = BTreeMap::new();
    for a in &block.body.attributes {
        if !ATTRIBUTES.contains(&a.name.as_str()) {
            diags.push(Diagnostic::error(
                "Unsupported argument",
                format!("An argument named {:?} is not expected here: the local backend takes path and workspace_dir.", a.name),
                Some(&a.location),
            ));
            continue;
        }
        match evaluator.eval(&a.expr, &a.location, &Value::Null) {
            Ok(Value::String(s)) => {
                settings.insert(a.name.clone(), s);
            }
            Ok(_) => diags.push(Diagnostic::error(
                "Incorrect attribute value type",
                format!(
                    "Inappropriate value for attribute {:?}: string required.",
                    a.name
                ),
                Some(&a.location),
            )),
            Err(d) => diags.push(d),
        }
    }
    for b in &block.body.blocks {
        diags.push(Diagnostic::error(
            "Unsupported block type",
            format!(
                "Blocks of type {:?} are not expected in the local backend.",
                b.kind
            ),
            Some(&b.location),
        ));
    }
    for arg in backend_config {
        match arg.split_once('=') {
            Some((k, v)) if ATTRIBUTES.contains(&k.trim()) => {
                settings.insert(k.trim().to_string(), v.to_string());
            }
            _ => diags.push(Diagnostic::error(
                "Invalid backend configuration",
                format!("--backend-config {arg}: the local backend takes path=FILE and workspace_dir=DIR."),
                None,
            )),
        }
    }
    if diags.has_errors() {
        return Err(Error::Backend(diags));
    }
    Ok(Backend::Local(LocalStore::with_paths(
        &module.dir,
        settings.get("path").map(String::as_str),
        settings.get("workspace_dir").map(String::as_str),
    )))
}

/// `backend "http" { address, lock_address, …, headers = {…} }` (OpenTofu's attributes, see
/// [`crate::http::ATTRIBUTES`]), each but `headers` overridable with `--backend-config K=V`,
/// then `TF_HTTP_*` from `env`.
fn http(
    block: &Block,
    evaluator: &StaticEvaluator,
    backend_config: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Backend> {
    let known = |k: &str| crate::http::ATTRIBUTES.iter().any(|(n, _)| *n == k);
    let mut diags = Diagnostics::default();
    let mut settings: BTreeMap<String, String> = BTreeMap::new();
    let mut headers = Vec::new();
    for a in &block.body.attributes {
        let value = match evaluator.eval(&a.expr, &a.location, &Value::Null) {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let wrong_type = |want: &str| {
            Diagnostic::error(
                "Incorrect attribute value type",
                format!(
                    "Inappropriate value for attribute {:?}: {want} required.",
                    a.name
                ),
                Some(&a.location),
            )
        };
        match (a.name.as_str(), value) {
            ("headers", Value::Object(map)) => {
                for (k, v) in map {
                    match v {
                        Value::String(s) => headers.push((k, s)),
                        _ => diags.push(wrong_type("map of string")),
                    }
                }
            }
            ("headers", _) => diags.push(wrong_type("map of string")),
            (name, Value::String(s)) if known(name) => {
                settings.insert(a.name.clone(), s);
            }
            (name, Value::Number(n)) if known(name) => {
                settings.insert(a.name.clone(), n.to_string());
            }
            (name, Value::Bool(b)) if known(name) => {
                settings.insert(a.name.clone(), b.to_string());
            }
            (name, _) if known(name) => diags.push(wrong_type("string")),
            _ => diags.push(Diagnostic::error(
                "Unsupported argument",
                format!(
                    "An argument named {:?} is not expected here: the http backend takes address, lock_address, unlock_address, update_method, lock_method, unlock_method, username, password, headers, retry_max, retry_wait_min, retry_wait_max, client_ca_certificate_pem, client_certificate_pem and client_private_key_pem.",
                    a.name
                ),
                Some(&a.location),
            )),
        }
    }
    for b in &block.body.blocks {
        diags.push(Diagnostic::error(
            "Unsupported block type",
            format!(
                "Blocks of type {:?} are not expected in the http backend.",
                b.kind
            ),
            Some(&b.location),
        ));
    }
    for arg in backend_config {
        match arg.split_once('=') {
            Some((k, v)) if known(k.trim()) => {
                settings.insert(k.trim().to_string(), v.to_string());
            }
            _ => diags.push(Diagnostic::error(
                "Invalid http backend configuration",
                format!("--backend-config {arg}: the http backend takes KEY=VALUE for one of its attributes (address, lock_address, unlock_address, username, password, …)."),
                None,
            )),
        }
    }
    if diags.has_errors() {
        return Err(Error::Backend(diags));
    }
    match HttpConfig::from_settings(&settings, headers, env) {
        Ok(config) => Ok(Backend::Http(Box::new(config))),
        Err(problems) => Err(Error::Backend(Diagnostics(
            problems
                .into_iter()
                .map(|p| {
                    Diagnostic::error(
                        "Invalid http backend configuration",
                        p,
                        Some(&block.location),
                    )
                })
                .collect(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(src: &str) -> (tempfile::TempDir, Module) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.tf"), src).unwrap();
        let m = stateseal_encryption::config::module::load(d.path()).unwrap();
        (d, m)
    }

    fn evaluator(m: &Module, env: &[(&str, &str)]) -> StaticEvaluator {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let vars = stateseal_encryption::config::variables::resolve(m, &Default::default(), &|k| {
            env.get(k).cloned()
        })
        .unwrap();
        StaticEvaluator::new(m, vars, "staging")
    }

    fn errors(r: Result<Backend>) -> Vec<String> {
        match r {
            Err(Error::Backend(d)) => d.errors().map(|d| d.to_string()).collect(),
            other => panic!("expected backend diagnostics, got {other:?}"),
        }
    }

    const S3: &str = r#"variable "bucket" {}
variable "project" {
  default = "web"
}
locals {
  key = "states/${var.project}/${terraform.workspace}/terraform.tfstate"
}
terraform {
  backend "s3" {
    bucket = var.bucket
    key    = local.key
    region = upper("us-east-1") == "US-EAST-1" ? "us-east-1" : "x"
  }
}
"#;

    #[cfg(feature = "s3")]
    #[test]
    fn variables_locals_workspace_and_functions_are_evaluated_early() {
        let (_d, m) = module(S3);
        let ev = evaluator(&m, &[("TF_VAR_bucket", "from-env")]);
        let Backend::S3(cfg) = configure(&m, &ev, &[], &|_| None).unwrap() else {
            panic!("s3 expected")
        };
        assert_eq!(cfg.bucket, "from-env");
        assert_eq!(cfg.key, "states/web/staging/terraform.tfstate");
        assert_eq!(cfg.auth.region.as_deref(), Some("us-east-1"));
        // --backend-config still wins over the block.
        let Backend::S3(cfg) = configure(&m, &ev, &["bucket=override".into()], &|_| None).unwrap()
        else {
            panic!("s3 expected")
        };
        assert_eq!(cfg.bucket, "override");
    }

    #[test]
    fn a_missing_variable_names_itself_where_it_is_used_and_how_to_set_it() {
        let (_d, m) = module(S3);
        let ev = evaluator(&m, &[]);
        let e = errors(configure(&m, &ev, &[], &|_| None));
        assert_eq!(e.len(), 1, "{e:?}");
        for want in [
            "main.tf:10:5: No value for required variable: var.bucket has no value (declared at ",
            "main.tf:1:1)",
            "--var bucket=VALUE",
            "--var-file FILE",
            "TF_VAR_bucket",
            "terraform.tfvars",
            "*.auto.tfvars",
        ] {
            assert!(e[0].contains(want), "{want:?} missing in {e:?}");
        }
    }

    #[test]
    fn what_opentofu_refuses_in_a_backend_block_is_refused() {
        let (_d, m) = module(
            r#"variable "secret" {
  sensitive = true
  default   = "x"
}
locals {
  derived = "k-${var.secret}"
}
terraform {
  backend "local" {
    path          = aws_s3_bucket.b.id
    workspace_dir = terraform.applying
  }
}
"#,
        );
        let ev = evaluator(&m, &[]);
        let e = errors(configure(&m, &ev, &[], &|_| None));
        assert!(
            e[0].starts_with(&format!(
                "{}:10:5: Dynamic value in static context: Unable to use aws_s3_bucket.b.id in static context, which is required by backend.local",
                m.dir.join("main.tf").display()
            )),
            "{e:?}"
        );
        assert!(
            e[1].contains(":11:5: Invalid attribute in static context"),
            "{e:?}"
        );
        let (_d, m) = module(
            "variable \"secret\" {\n  sensitive = true\n  default = \"x\"\n}\nlocals {\n  derived = \"k-${var.secret}\"\n}\nterraform {\n  backend \"local\" {\n    path = local.derived\n  }\n}\n",
        );
        let ev = evaluator(&m, &[]);
        let e = errors(configure(&m, &ev, &[], &|_| None));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(":9:3: Backend config contains sensitive values"),
            "{e:?}"
        );
    }

    #[test]
    fn local_backend_paths_and_overrides() {
        let (d, m) = module(
            "terraform {\n  backend \"local\" {\n    path = \"${path.module}/x.tfstate\"\n  }\n}\n",
        );
        let ev = evaluator(&m, &[]);
        let Backend::Local(s) = configure(&m, &ev, &[], &|_| None).unwrap() else {
            panic!("local expected")
        };
        assert!(format!("{s:?}").contains("x.tfstate"), "{s:?}");
        let e = errors(configure(&m, &ev, &["bucket=b".into()], &|_| None));
        assert!(e[0].contains("the local backend takes path=FILE"), "{e:?}");
        let (_d2, none) = module("");
        let e = errors(configure(&none, &ev, &["key=k".into()], &|_| None));
        assert!(e[0].contains("has no terraform { backend"), "{e:?}");
        drop(d);
    }

    #[test]
    fn http_blocks_take_opentofus_attributes_and_overrides() {
        let (_d, m) = module(
            "terraform {\n  backend \"http\" {\n    address = \"http://127.0.0.1:1/state/a\"\n    lock_address = \"http://127.0.0.1:1/state/a\"\n    retry_max = 0\n    headers = { X-Team = \"a\" }\n  }\n}\n",
        );
        let ev = evaluator(&m, &[]);
        let Backend::Http(c) = configure(
            &m,
            &ev,
            &["unlock_address=http://127.0.0.1:1/state/a".into()],
            &|k| (k == "TF_HTTP_USERNAME").then(|| "ci".to_string()),
        )
        .unwrap() else {
            panic!("http expected")
        };
        assert_eq!(c.address, "http://127.0.0.1:1/state/a");
        assert_eq!(
            c.unlock_address.as_deref(),
            Some("http://127.0.0.1:1/state/a")
        );
        assert_eq!(c.retry_max, 0);
        assert_eq!(c.username.as_deref(), Some("ci"));
        assert_eq!(c.headers, [("X-Team".to_string(), "a".to_string())]);
        let (_d, m) = module(
            "terraform {\n  backend \"http\" {\n    address = \"http://h/state/a\"\n    skip_cert_verification = true\n    bucket = \"b\"\n  }\n}\n",
        );
        let e = errors(configure(&m, &evaluator(&m, &[]), &[], &|_| None));
        assert!(e[0].contains(":5:5: Unsupported argument"), "{e:?}");
        let e = errors(configure(
            &m,
            &evaluator(&m, &[]),
            &["bucket=x".into()],
            &|_| None,
        ));
        assert!(
            e.iter().any(|l| l.contains("--backend-config bucket=x")),
            "{e:?}"
        );
    }

    #[cfg(feature = "s3")]
    #[test]
    fn s3_problems_become_one_diagnostic_each_at_their_attribute() {
        let (_d, m) = module(
            "terraform {\n  backend \"s3\" {\n    key = \"/lead\"\n    encrypt = \"maybe\"\n  }\n}\n",
        );
        let ev = evaluator(&m, &[]);
        let e = errors(configure(&m, &ev, &["bucket_name=x".into()], &|_| None));
        assert!(
            e.iter().any(|l| l
                .contains(":4:5: Invalid s3 backend configuration: encrypt must be true or false")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|l| l
                    .starts_with("Invalid s3 backend configuration: --backend-config bucket_name")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|l| l
                .contains(":2:3: Invalid s3 backend configuration: the s3 backend needs a bucket")),
            "{e:?}"
        );
    }
}
