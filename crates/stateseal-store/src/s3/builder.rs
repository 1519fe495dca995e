//! The S3 backend's configuration: the `backend "s3"` block, `--backend-config` overrides and
//! the AWS environment, checked the way OpenTofu checks them (docs/BACKENDS.md §3.1).

use std::collections::BTreeMap;

use hcl::Value;
use stateseal_aws::AwsSettings;
use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::syntax::{self, Block};
use stateseal_encryption::diagnostics::Location;
use stateseal_encryption::Secret;

use crate::{Error, Result};

/// Everything about where and how the state is stored and locked.
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    pub bucket: String,
    pub key: String,
    pub workspace_key_prefix: String,
    pub encrypt: bool,
    pub kms_key_id: Option<String>,
    /// 32 bytes (given base64, 44 characters).
    pub sse_customer_key: Option<Secret>,
    pub acl: Option<String>,
    pub state_tags: BTreeMap<String, String>,
    pub lock_tags: BTreeMap<String, String>,
    pub dynamodb_table: Option<String>,
    pub use_lockfile: bool,
    pub skip_s3_checksum: bool,
    pub use_path_style: bool,
    /// Region, credentials, roles, endpoints, retries: shared with the `aws_kms` key provider.
    /// `region` and the `s3`/`dynamodb`/`sts`/`iam` endpoints are resolved (environment
    /// included) by the builder.
    pub auth: AwsSettings,
    /// `skip_credentials_validation`: no STS `GetCallerIdentity` before the first call.
    pub skip_credentials_validation: bool,
}

/// An attribute value and where it was set.
#[derive(Clone, Debug)]
struct Setting {
    value: Value,
    origin: String,
}

/// Attributes of the S3 backend besides the shared AWS ones ([`AwsSettings::ATTRIBUTES`]),
/// deprecated flat forms included (they are mapped onto their new names).
const S3_ONLY: &[&str] = &[
    "bucket",
    "key",
    "workspace_key_prefix",
    "encrypt",
    "kms_key_id",
    "sse_customer_key",
    "acl",
    "state_tags",
    "lock_tags",
    "dynamodb_table",
    "use_lockfile",
    "skip_s3_checksum",
    "use_path_style",
    "force_path_style",
    "skip_region_validation",
    "endpoint",
    "dynamodb_endpoint",
    "iam_endpoint",
    "sts_endpoint",
    "shared_credentials_file",
    "role_arn",
    "session_name",
    "external_id",
    "assume_role_duration_seconds",
    "assume_role_policy",
    "assume_role_policy_arns",
    "assume_role_tags",
    "assume_role_transitive_tag_keys",
];

fn is_known(name: &str) -> bool {
    S3_ONLY.contains(&name) || AwsSettings::ATTRIBUTES.contains(&name)
}

/// Attributes whose `--backend-config K=V` value is taken literally (everything else is parsed
/// as an HCL expression, so `encrypt=true` and `endpoints={s3="…"}` work).
fn is_string_attr(name: &str) -> bool {
    !matches!(
        name,
        "encrypt"
            | "use_lockfile"
            | "skip_s3_checksum"
            | "use_path_style"
            | "force_path_style"
            | "endpoints"
            | "state_tags"
            | "lock_tags"
            | "assume_role"
            | "assume_role_with_web_identity"
            | "assume_role_duration_seconds"
            | "assume_role_policy_arns"
            | "assume_role_tags"
            | "assume_role_transitive_tag_keys"
            | "allowed_account_ids"
            | "forbidden_account_ids"
            | "max_retries"
            | "skip_credentials_validation"
            | "skip_requesting_account_id"
            | "skip_metadata_api_check"
            | "skip_region_validation"
            | "insecure"
            | "use_dualstack_endpoint"
            | "use_fips_endpoint"
            | "shared_credentials_files"
            | "shared_config_files"
    )
}

fn at(loc: &Location) -> String {
    format!("{}:{}", loc.file, loc.line)
}

/// Collects the S3 backend settings from a block, overrides and the environment.
#[derive(Clone, Debug, Default)]
pub struct S3Builder {
    settings: BTreeMap<String, Setting>,
    errors: Vec<String>,
}

impl S3Builder {
    pub fn new() -> S3Builder {
        S3Builder::default()
    }

    /// Reads a `backend "s3" { … }` block, evaluating each attribute statically.
    pub fn with_block(mut self, block: &Block, evaluator: &StaticEvaluator) -> S3Builder {
        for a in &block.body.attributes {
            match evaluator.eval(&a.expr, &a.location, &Value::Null) {
                Ok(v) => self.set(&a.name, v, at(&a.location)),
                Err(d) => self.errors.push(d.to_string()),
            }
        }
        for b in &block.body.blocks {
            match evaluator.eval_body(&b.body, &Value::Null) {
                Ok(j) => match serde_json::from_value::<Value>(j) {
                    Ok(v) => self.set(&b.kind, v, at(&b.location)),
                    Err(e) => self.errors.push(format!("{}: {e}", at(&b.location))),
                },
                Err(d) => self.errors.push(d.to_string()),
            }
        }
        self
    }

    /// One `--backend-config KEY=VALUE`, or a file of attributes when there is no `=`.
    pub fn with_backend_config(mut self, arg: &str) -> S3Builder {
        match arg.split_once('=') {
            Some((k, v)) => {
                let k = k.trim();
                let value = if is_string_attr(k) {
                    Value::String(v.to_string())
                } else {
                    hcl::from_str::<Value>(&format!("v = {v}"))
                        .ok()
                        .and_then(|o| o.as_object().and_then(|o| o.get("v").cloned()))
                        .unwrap_or_else(|| Value::String(v.to_string()))
                };
                self.set(k, value, format!("--backend-config {k}"));
            }
            None => match std::fs::read_to_string(arg) {
                Ok(src) => match syntax::parse_hcl(&arg.into(), &src) {
                    Ok(body) => {
                        let ev = StaticEvaluator::default();
                        let block = Block {
                            kind: "backend".into(),
                            labels: vec!["s3".into()],
                            location: body.location.clone(),
                            body,
                        };
                        return self.with_block(&block, &ev);
                    }
                    Err(d) => self.errors.push(d.to_string()),
                },
                Err(e) => self
                    .errors
                    .push(format!("--backend-config {arg}: cannot read the file: {e}")),
            },
        }
        self
    }

    fn set(&mut self, name: &str, value: Value, origin: String) {
        if !is_known(name) {
            self.errors.push(format!(
                "{origin}: unsupported argument {name:?} in the s3 backend configuration"
            ));
            return;
        }
        self.settings
            .insert(name.to_string(), Setting { value, origin });
    }

    /// Like [`S3Builder::build_config`], for a connection that addresses many states, each by
    /// its own key through [`crate::s3::S3Store::for_key`] (`stateseal serve`'s `storage "s3"`):
    /// `key` must not be set, and the returned configuration's `key` is empty.
    pub fn build_config_without_key(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<S3Config> {
        if let Some(k) = self.settings.get("key") {
            return Err(Error::Config(format!(
                "{}: key is not allowed here: each state is stored under its own key",
                k.origin
            )));
        }
        let mut with_key = self.clone();
        with_key.set("key", Value::String("unused".into()), String::new());
        let mut cfg = with_key.build_config(env)?;
        cfg.key.clear();
        Ok(cfg)
    }

    /// Checks everything and resolves defaults from `env` (`AWS_REGION`, endpoints, …).
    pub fn build_config(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<S3Config> {
        let mut errors = self.errors.clone();
        let mut r = Reader {
            settings: &self.settings,
            errors: &mut errors,
        };
        let bucket = r.string("bucket").unwrap_or_default();
        let key = r.string("key").unwrap_or_default();
        let region = r
            .string("region")
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_default();
        let workspace_key_prefix = r
            .string("workspace_key_prefix")
            .unwrap_or_else(|| "env:".into());
        let encrypt = r.bool("encrypt").unwrap_or(false);
        let kms_key_id = r.string("kms_key_id").filter(|s| !s.is_empty());
        let sse_b64 = r
            .string("sse_customer_key")
            .or_else(|| env("AWS_SSE_CUSTOMER_KEY"))
            .filter(|s| !s.is_empty());
        let mut sse_customer_key = None;
        if let Some(k) = &sse_b64 {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD.decode(k) {
                Ok(bytes) if k.len() == 44 && bytes.len() == 32 => {
                    sse_customer_key = Some(Secret::from(bytes))
                }
                _ => r
                    .errors
                    .push("sse_customer_key must be 44 characters of base64 (32 bytes)".into()),
            }
        }
        if kms_key_id.is_some() && sse_customer_key.is_some() {
            r.errors.push(
                "only one of kms_key_id and sse_customer_key (or AWS_SSE_CUSTOMER_KEY) can be set"
                    .into(),
            );
        }
        if let Some(id) = &kms_key_id {
            if !valid_kms_key_id(id) {
                r.errors.push(format!(
                    "{}: kms_key_id {id:?} is not a key ID, key ARN, alias name (alias/…) or alias ARN",
                    r.origin("kms_key_id")
                ));
            }
        }
        let use_path_style = match (r.bool("use_path_style"), r.bool("force_path_style")) {
            (Some(_), Some(_)) => {
                r.errors.push(
                    "use_path_style and force_path_style (deprecated) can't both be set".into(),
                );
                false
            }
            (a, b) => a.or(b).unwrap_or(false),
        };
        let skip_credentials_validation = r.bool("skip_credentials_validation").unwrap_or(false);
        let auth = r.aws_settings(&region, env);
        let cfg = S3Config {
            acl: r.string("acl").filter(|s| !s.is_empty()),
            state_tags: r.map("state_tags"),
            lock_tags: r.map("lock_tags"),
            dynamodb_table: r.string("dynamodb_table").filter(|s| !s.is_empty()),
            use_lockfile: r.bool("use_lockfile").unwrap_or(false),
            skip_s3_checksum: r.bool("skip_s3_checksum").unwrap_or(false),
            bucket,
            key,
            workspace_key_prefix,
            encrypt,
            kms_key_id,
            sse_customer_key,
            use_path_style,
            auth,
            skip_credentials_validation,
        };
        if cfg.bucket.is_empty() {
            errors.push("the s3 backend needs a bucket: set bucket in the backend block or --backend-config bucket=NAME".into());
        }
        if cfg.key.is_empty() {
            errors.push("the s3 backend needs a key: set key in the backend block or --backend-config key=PATH".into());
        } else if cfg.key.starts_with('/') || cfg.key.ends_with('/') {
            errors.push(format!("key {:?} must not start or end with '/'", cfg.key));
        }
        if cfg.workspace_key_prefix.starts_with('/') || cfg.workspace_key_prefix.ends_with('/') {
            errors.push(format!(
                "workspace_key_prefix {:?} must not start or end with '/'",
                cfg.workspace_key_prefix
            ));
        }
        if region.is_empty() {
            errors.push("the s3 backend needs a region: set region in the backend block, --backend-config region=NAME or AWS_REGION".into());
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(Error::Config(format!(
                "invalid s3 backend configuration:\n  - {}",
                errors.join("\n  - ")
            )))
        }
    }
}

/// OpenTofu's kms_key_id check: a key ID (UUID or `mrk-…`), an alias, or a key/alias ARN.
fn valid_kms_key_id(id: &str) -> bool {
    let is_key_id = |s: &str| {
        let uuid = s.len() == 36
            && s.chars().enumerate().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        let mrk = s
            .strip_prefix("mrk-")
            .is_some_and(|h| h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()));
        uuid || mrk
    };
    if let Some(name) = id.strip_prefix("alias/") {
        return !name.is_empty();
    }
    if let Some(rest) = id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        return parts.len() == 5
            && parts[1] == "kms"
            && (parts[4].strip_prefix("key/").is_some_and(|k| !k.is_empty())
                || parts[4]
                    .strip_prefix("alias/")
                    .is_some_and(|a| !a.is_empty()));
    }
    is_key_id(id)
}

struct Reader<'a> {
    settings: &'a BTreeMap<String, Setting>,
    errors: &'a mut Vec<String>,
}

impl Reader<'_> {
    fn origin(&self, name: &str) -> String {
        self.settings
            .get(name)
            .map_or_else(|| name.to_string(), |s| s.origin.clone())
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.settings
            .get(name)
            .map(|s| &s.value)
            .filter(|v| !v.is_null())
    }

    fn wrong(&mut self, name: &str, want: &str) {
        let origin = self.origin(name);
        self.errors.push(format!("{origin}: {name} must be {want}"));
    }

    fn string(&mut self, name: &str) -> Option<String> {
        match self.get(name)?.clone() {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                self.wrong(name, "a string");
                None
            }
        }
    }

    fn bool(&mut self, name: &str) -> Option<bool> {
        match self.get(name)?.clone() {
            Value::Bool(b) => Some(b),
            Value::String(s) if s == "true" || s == "false" => Some(s == "true"),
            _ => {
                self.wrong(name, "true or false");
                None
            }
        }
    }

    fn number(&mut self, name: &str) -> Option<i64> {
        match self.get(name)?.clone() {
            Value::Number(n) if n.as_i64().is_some() => n.as_i64(),
            Value::String(s) if s.parse::<i64>().is_ok() => s.parse().ok(),
            _ => {
                self.wrong(name, "a whole number");
                None
            }
        }
    }

    fn map(&mut self, name: &str) -> BTreeMap<String, String> {
        match self.get(name).cloned() {
            None => BTreeMap::new(),
            Some(Value::Object(o)) => {
                let mut out = BTreeMap::new();
                for (k, v) in o {
                    match v {
                        Value::String(s) => {
                            out.insert(k, s);
                        }
                        _ => {
                            self.wrong(name, "a map of strings");
                            return BTreeMap::new();
                        }
                    }
                }
                out
            }
            Some(_) => {
                self.wrong(name, "a map of strings");
                BTreeMap::new()
            }
        }
    }

    /// The shared AWS attributes, with the deprecated flat forms folded into their new
    /// names. Each attribute is deserialized on its own so a bad value names its origin.
    fn aws_settings(&mut self, region: &str, env: &dyn Fn(&str) -> Option<String>) -> AwsSettings {
        let json = |v: &Value| serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
        let mut obj = serde_json::Map::new();
        for name in AwsSettings::ATTRIBUTES {
            let Some(v) = self.get(name) else { continue };
            let one = serde_json::json!({ *name: json(v) });
            if let Err(e) = serde_json::from_value::<AwsSettings>(one) {
                let origin = self.origin(name);
                self.errors.push(format!("{origin}: {name}: {e}"));
                continue;
            }
            obj.insert(name.to_string(), json(v));
        }
        obj.insert("region".into(), region.into());
        // Endpoints: endpoints.X, else the deprecated flat attribute, else the environment.
        let mut endpoints = match obj.remove("endpoints") {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        for (new, flat, envs) in [
            ("s3", "endpoint", ["AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT"]),
            (
                "dynamodb",
                "dynamodb_endpoint",
                ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_DYNAMODB_ENDPOINT"],
            ),
            (
                "sts",
                "sts_endpoint",
                ["AWS_ENDPOINT_URL_STS", "AWS_STS_ENDPOINT"],
            ),
            (
                "iam",
                "iam_endpoint",
                ["AWS_ENDPOINT_URL_IAM", "AWS_IAM_ENDPOINT"],
            ),
        ] {
            let flat_v = self.string(flat);
            if flat_v.is_some() && endpoints.contains_key(new) {
                self.errors.push(format!(
                    "{flat} (deprecated) and endpoints.{new} can't both be set"
                ));
            }
            if !endpoints.contains_key(new) {
                if let Some(v) = flat_v.or_else(|| envs.iter().find_map(|e| env(e))) {
                    endpoints.insert(new.into(), v.into());
                }
            }
        }
        obj.insert("endpoints".into(), endpoints.into());
        if let Some(f) = self.string("shared_credentials_file") {
            if obj.contains_key("shared_credentials_files") {
                self.errors.push(
                    "shared_credentials_file (deprecated) and shared_credentials_files can't both be set".into(),
                );
            }
            obj.insert("shared_credentials_files".into(), serde_json::json!([f]));
        }
        // The deprecated top-level assume_role attributes.
        let flat_duration = self.number("assume_role_duration_seconds");
        let flat_role: serde_json::Map<String, serde_json::Value> = [
            ("role_arn", "role_arn"),
            ("session_name", "session_name"),
            ("external_id", "external_id"),
            ("assume_role_policy", "policy"),
            ("assume_role_policy_arns", "policy_arns"),
            ("assume_role_tags", "tags"),
            ("assume_role_transitive_tag_keys", "transitive_tag_keys"),
        ]
        .into_iter()
        .filter_map(|(flat, new)| Some((new.to_string(), json(self.get(flat)?))))
        .chain(flat_duration.map(|n| ("duration".to_string(), format!("{n}s").into())))
        .collect();
        if !flat_role.is_empty() {
            if obj.contains_key("assume_role") {
                self.errors.push(
                    "assume_role and the deprecated top-level role_arn/session_name/… can't be mixed".into(),
                );
            }
            obj.insert("assume_role".into(), flat_role.into());
        }
        let settings = match serde_json::from_value::<AwsSettings>(obj.into()) {
            Ok(s) => s,
            Err(e) => {
                self.errors.push(e.to_string());
                return AwsSettings::default();
            }
        };
        if let Err(e) = settings.validate() {
            self.errors.push(e.to_string());
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_none(_: &str) -> Option<String> {
        None
    }

    fn from_hcl(src: &str) -> S3Builder {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.tf"), src).unwrap();
        let m = stateseal_encryption::config::module::load(d.path()).unwrap();
        let ev = StaticEvaluator::new(&m, Default::default(), "default");
        S3Builder::new().with_block(m.backend.as_ref().unwrap(), &ev)
    }

    #[test]
    fn reads_the_documented_block() {
        let b = from_hcl(
            r#"terraform {
  backend "s3" {
    bucket       = "tfstate"
    key          = "env/prod/terraform.tfstate"
    region       = "us-east-1"
    encrypt      = true
    kms_key_id   = "alias/tf-backend"
    use_lockfile = true
    dynamodb_table = "locks"
    endpoints = { s3 = "http://127.0.0.1:5055", dynamodb = "127.0.0.1:5055" }
    use_path_style = true
    skip_credentials_validation = true
    access_key = "testing"
    secret_key = "testing"
    state_tags = { team = "a b" }
    assume_role {
      role_arn = "arn:aws:iam::123456789012:role/x"
      duration = "1h"
    }
  }
}"#,
        );
        let c = b.build_config(&env_none).unwrap();
        assert_eq!(
            (c.bucket.as_str(), c.key.as_str()),
            ("tfstate", "env/prod/terraform.tfstate")
        );
        assert_eq!(c.workspace_key_prefix, "env:");
        assert!(c.encrypt && c.use_lockfile && c.use_path_style);
        assert_eq!(c.kms_key_id.as_deref(), Some("alias/tf-backend"));
        assert_eq!(c.dynamodb_table.as_deref(), Some("locks"));
        assert_eq!(
            c.auth.endpoint("s3").as_deref(),
            Some("http://127.0.0.1:5055")
        );
        assert_eq!(
            c.auth.endpoint("dynamodb").as_deref(),
            Some("https://127.0.0.1:5055")
        );
        assert_eq!(c.state_tags["team"], "a b");
        assert!(c.skip_credentials_validation);
        let ar = c.auth.assume_role.unwrap();
        assert_eq!(ar.duration.as_deref(), Some("1h"));
        assert_eq!(c.auth.access_key.as_deref(), Some("testing"));
    }

    #[test]
    fn backend_config_overrides_and_env_fill_in() {
        let b = from_hcl("terraform {\n backend \"s3\" {\n  bucket = \"a\"\n }\n}\n")
            .with_backend_config("bucket=b")
            .with_backend_config("key=k/terraform.tfstate")
            .with_backend_config("encrypt=true")
            .with_backend_config("endpoints={s3=\"http://x:1\"}");
        let env = |k: &str| (k == "AWS_REGION").then(|| "eu-west-1".to_string());
        let c = b.build_config(&env).unwrap();
        assert_eq!(c.bucket, "b");
        assert!(c.encrypt);
        assert_eq!(c.auth.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.auth.endpoint("s3").as_deref(), Some("http://x:1"));
    }

    #[test]
    fn fail_cases_name_the_problem_and_the_place() {
        let b = from_hcl(
            "terraform {\n  backend \"s3\" {\n    key = \"/lead\"\n    encrypt = \"maybe\"\n    bucket_name = \"x\"\n    kms_key_id = \"nope\"\n  }\n}\n",
        );
        let e = b.build_config(&env_none).unwrap_err().to_string();
        for want in [
            "main.tf:5: unsupported argument \"bucket_name\"",
            "main.tf:4: encrypt must be true or false",
            "needs a bucket",
            "must not start or end with '/'",
            "needs a region",
            "kms_key_id \"nope\"",
        ] {
            assert!(e.contains(want), "{want:?} missing in:\n{e}");
        }
        let e = S3Builder::new()
            .with_backend_config("bucket=b")
            .with_backend_config("key=k")
            .with_backend_config("region=r")
            .with_backend_config("kms_key_id=alias/a")
            .with_backend_config(&format!("sse_customer_key={}=", "A".repeat(43)))
            .build_config(&env_none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("only one of kms_key_id and sse_customer_key"),
            "{e}"
        );
    }

    #[test]
    fn backend_config_files_and_deprecated_forms() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("prod.s3.tfbackend");
        std::fs::write(
            &f,
            "bucket = \"from-file\"\nkey = \"k\"\nregion = \"eu-west-1\"\nrole_arn = \"arn:aws:iam::1:role/r\"\nassume_role_duration_seconds = 900\nendpoint = \"s3.local:9000\"\nshared_credentials_file = \"~/creds\"\n",
        )
        .unwrap();
        let c = S3Builder::new()
            .with_backend_config(f.to_str().unwrap())
            .build_config(&env_none)
            .unwrap();
        assert_eq!(c.bucket, "from-file");
        let ar = c.auth.assume_role.as_ref().unwrap();
        assert_eq!(ar.role_arn, "arn:aws:iam::1:role/r");
        assert_eq!(ar.duration.as_deref(), Some("900s"));
        assert_eq!(
            c.auth.endpoint("s3").as_deref(),
            Some("https://s3.local:9000")
        );
        assert_eq!(
            c.auth.shared_credentials_files.as_deref(),
            Some(&["~/creds".to_string()][..])
        );
        let e = S3Builder::new()
            .with_backend_config(f.to_str().unwrap())
            .with_backend_config("endpoints={s3=\"http://x\"}")
            .with_backend_config("assume_role={role_arn=\"arn:aws:iam::1:role/x\"}")
            .build_config(&env_none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("endpoint (deprecated) and endpoints.s3"), "{e}");
        assert!(e.contains("can't be mixed"), "{e}");
        let e = S3Builder::new()
            .with_backend_config("/nonexistent/file.tfbackend")
            .build_config(&env_none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the file"), "{e}");
    }

    #[test]
    fn kms_key_ids_and_durations() {
        for ok in [
            "alias/x",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "arn:aws:kms:us-east-1:123456789012:key/1234",
            "arn:aws:kms:us-east-1:123456789012:alias/x",
        ] {
            assert!(valid_kms_key_id(ok), "{ok}");
        }
        assert!(!valid_kms_key_id("x"));
    }
}
