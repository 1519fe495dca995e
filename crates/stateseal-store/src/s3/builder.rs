//! The S3 backend's configuration: the `backend "s3"` block, `--backend-config` overrides and
//! the AWS environment, checked the way OpenTofu checks them (BACKENDS.md §3.1).

use std::collections::BTreeMap;

use hcl::Value;
use stateseal_encryption::config::eval::StaticEvaluator;
use stateseal_encryption::config::syntax::{self, Block};
use stateseal_encryption::diagnostics::Location;
use stateseal_encryption::Secret;

use crate::{Error, Result};

/// Custom service endpoints (`endpoints { s3, dynamodb, sts, iam }`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub s3: Option<String>,
    pub dynamodb: Option<String>,
    pub sts: Option<String>,
    pub iam: Option<String>,
}

/// `assume_role { … }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub session_name: Option<String>,
    pub external_id: Option<String>,
    pub duration_seconds: Option<i32>,
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub transitive_tag_keys: Vec<String>,
}

/// `assume_role_with_web_identity { … }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebIdentity {
    pub role_arn: String,
    pub web_identity_token: Option<String>,
    pub web_identity_token_file: Option<String>,
    pub session_name: Option<String>,
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
    pub duration_seconds: Option<i32>,
}

/// Who we are and how we talk to AWS: everything the SDK configuration is built from.
#[derive(Clone, Debug, Default)]
pub struct AuthSettings {
    pub region: String,
    pub access_key: Option<String>,
    pub secret_key: Option<Secret>,
    pub token: Option<Secret>,
    pub profile: Option<String>,
    pub shared_credentials_files: Vec<String>,
    pub shared_config_files: Vec<String>,
    pub assume_role: Option<AssumeRole>,
    pub web_identity: Option<WebIdentity>,
    pub sts_region: Option<String>,
    pub endpoints: Endpoints,
    pub max_retries: Option<u32>,
    pub retry_mode: Option<String>,
    pub skip_credentials_validation: bool,
    pub skip_requesting_account_id: bool,
    pub skip_metadata_api_check: bool,
    pub allowed_account_ids: Vec<String>,
    pub forbidden_account_ids: Vec<String>,
    pub custom_ca_bundle: Option<String>,
    pub use_fips_endpoint: bool,
    pub use_dualstack_endpoint: bool,
}

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
    pub auth: AuthSettings,
}

/// An attribute value and where it was set.
#[derive(Clone, Debug)]
struct Setting {
    value: Value,
    origin: String,
}

/// Attributes the S3 backend accepts. Deprecated flat forms are mapped onto their new names.
const KNOWN: &[&str] = &[
    "bucket",
    "key",
    "region",
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
    "endpoints",
    "endpoint",
    "dynamodb_endpoint",
    "iam_endpoint",
    "sts_endpoint",
    "sts_region",
    "access_key",
    "secret_key",
    "token",
    "profile",
    "shared_credentials_file",
    "shared_credentials_files",
    "shared_config_files",
    "assume_role",
    "role_arn",
    "session_name",
    "external_id",
    "assume_role_duration_seconds",
    "assume_role_policy",
    "assume_role_policy_arns",
    "assume_role_tags",
    "assume_role_transitive_tag_keys",
    "assume_role_with_web_identity",
    "allowed_account_ids",
    "forbidden_account_ids",
    "max_retries",
    "retry_mode",
    "skip_credentials_validation",
    "skip_requesting_account_id",
    "skip_metadata_api_check",
    "skip_region_validation",
    "custom_ca_bundle",
    "ec2_metadata_service_endpoint",
    "ec2_metadata_service_endpoint_mode",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "insecure",
    "use_dualstack_endpoint",
    "use_fips_endpoint",
];

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
        if !KNOWN.contains(&name) {
            self.errors.push(format!(
                "{origin}: unsupported argument {name:?} in the s3 backend configuration"
            ));
            return;
        }
        self.settings
            .insert(name.to_string(), Setting { value, origin });
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
        let endpoints = r.endpoints(env);
        let mut auth = AuthSettings {
            region: region.clone(),
            access_key: r.string("access_key").filter(|s| !s.is_empty()),
            secret_key: r
                .string("secret_key")
                .filter(|s| !s.is_empty())
                .map(|s| Secret::from(s.into_bytes())),
            token: r
                .string("token")
                .filter(|s| !s.is_empty())
                .map(|s| Secret::from(s.into_bytes())),
            profile: r.string("profile").filter(|s| !s.is_empty()),
            shared_credentials_files: r.strings("shared_credentials_files"),
            shared_config_files: r.strings("shared_config_files"),
            assume_role: r.assume_role(),
            web_identity: r.web_identity(),
            sts_region: r.string("sts_region"),
            endpoints,
            max_retries: r.number("max_retries").map(|n| n as u32),
            retry_mode: r.string("retry_mode"),
            skip_credentials_validation: r.bool("skip_credentials_validation").unwrap_or(false),
            skip_requesting_account_id: r.bool("skip_requesting_account_id").unwrap_or(false),
            skip_metadata_api_check: r.bool("skip_metadata_api_check").unwrap_or(false),
            allowed_account_ids: r.strings("allowed_account_ids"),
            forbidden_account_ids: r.strings("forbidden_account_ids"),
            custom_ca_bundle: r
                .string("custom_ca_bundle")
                .or_else(|| env("AWS_CA_BUNDLE")),
            use_fips_endpoint: r.bool("use_fips_endpoint").unwrap_or(false),
            use_dualstack_endpoint: r.bool("use_dualstack_endpoint").unwrap_or(false),
        };
        if let Some(f) = r.string("shared_credentials_file") {
            if !auth.shared_credentials_files.is_empty() {
                r.errors.push(
                    "shared_credentials_file (deprecated) and shared_credentials_files can't both be set"
                        .into(),
                );
            }
            auth.shared_credentials_files.push(f);
        }
        if r.bool("insecure") == Some(true) {
            r.errors.push(
                "insecure = true is not supported by stateseal (use custom_ca_bundle)".into(),
            );
        }
        if !auth.allowed_account_ids.is_empty() && !auth.forbidden_account_ids.is_empty() {
            r.errors.push(
                "only one of allowed_account_ids and forbidden_account_ids can be set".into(),
            );
        }
        if let Some(m) = &auth.retry_mode {
            if m != "standard" && m != "adaptive" {
                r.errors.push(format!(
                    "retry_mode must be \"standard\" or \"adaptive\", not {m:?}"
                ));
            }
        }
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

    fn strings(&mut self, name: &str) -> Vec<String> {
        match self.get(name).cloned() {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for v in a {
                    match v {
                        Value::String(s) => out.push(s),
                        _ => {
                            self.wrong(name, "a list of strings");
                            return Vec::new();
                        }
                    }
                }
                out
            }
            Some(_) => {
                self.wrong(name, "a list of strings");
                Vec::new()
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

    fn endpoints(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Endpoints {
        let nested = self.map("endpoints");
        for k in nested.keys() {
            if !["s3", "dynamodb", "sts", "iam"].contains(&k.as_str()) {
                let origin = self.origin("endpoints");
                self.errors.push(format!(
                    "{origin}: unsupported endpoint {k:?} (s3, dynamodb, sts, iam)"
                ));
            }
        }
        let mut pick = |new: &str, flat: &str, envs: [&str; 2]| -> Option<String> {
            let flat_v = self.string(flat);
            let new_v = nested.get(new).cloned();
            if flat_v.is_some() && new_v.is_some() {
                self.errors.push(format!(
                    "{flat} (deprecated) and endpoints.{new} can't both be set"
                ));
            }
            new_v
                .or(flat_v)
                .or_else(|| envs.iter().find_map(|e| env(e)))
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.contains("://") {
                        s
                    } else {
                        format!("https://{s}")
                    }
                })
        };
        Endpoints {
            s3: pick("s3", "endpoint", ["AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT"]),
            dynamodb: pick(
                "dynamodb",
                "dynamodb_endpoint",
                ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_DYNAMODB_ENDPOINT"],
            ),
            sts: pick(
                "sts",
                "sts_endpoint",
                ["AWS_ENDPOINT_URL_STS", "AWS_STS_ENDPOINT"],
            ),
            iam: pick(
                "iam",
                "iam_endpoint",
                ["AWS_ENDPOINT_URL_IAM", "AWS_IAM_ENDPOINT"],
            ),
        }
    }

    fn object(&mut self, name: &str) -> Option<hcl::Map<String, Value>> {
        match self.get(name)?.clone() {
            Value::Object(o) => Some(o),
            _ => {
                self.wrong(name, "a block or object");
                None
            }
        }
    }

    fn assume_role(&mut self) -> Option<AssumeRole> {
        let flat = [
            "role_arn",
            "session_name",
            "external_id",
            "assume_role_duration_seconds",
            "assume_role_policy",
            "assume_role_policy_arns",
            "assume_role_tags",
            "assume_role_transitive_tag_keys",
        ];
        let has_flat = flat.iter().any(|f| self.get(f).is_some());
        let obj = self.object("assume_role");
        if has_flat && obj.is_some() {
            self.errors.push(
                "assume_role and the deprecated top-level role_arn/session_name/… can't be mixed"
                    .into(),
            );
            return None;
        }
        if let Some(o) = obj {
            let sub = nested_settings(&o, &self.origin("assume_role"));
            let mut r = Reader {
                settings: &sub,
                errors: self.errors,
            };
            let duration = r
                .string("duration")
                .and_then(|d| match parse_go_duration(&d) {
                    Some(s) if (900..=43_200).contains(&s) => Some(s as i32),
                    _ => {
                        r.errors.push(format!(
                            "assume_role.duration {d:?} must be a duration between 15m and 12h"
                        ));
                        None
                    }
                });
            let role_arn = r.string("role_arn").unwrap_or_default();
            if role_arn.is_empty() {
                r.errors.push("assume_role needs role_arn".into());
            }
            return Some(AssumeRole {
                role_arn,
                session_name: r.string("session_name"),
                external_id: r.string("external_id"),
                duration_seconds: duration,
                policy: r.string("policy"),
                policy_arns: r.strings("policy_arns"),
                tags: r.map("tags"),
                transitive_tag_keys: r.strings("transitive_tag_keys"),
            });
        }
        let role_arn = self.string("role_arn").filter(|s| !s.is_empty())?;
        Some(AssumeRole {
            role_arn,
            session_name: self.string("session_name"),
            external_id: self.string("external_id"),
            duration_seconds: self
                .number("assume_role_duration_seconds")
                .map(|n| n as i32),
            policy: self.string("assume_role_policy"),
            policy_arns: self.strings("assume_role_policy_arns"),
            tags: self.map("assume_role_tags"),
            transitive_tag_keys: self.strings("assume_role_transitive_tag_keys"),
        })
    }

    fn web_identity(&mut self) -> Option<WebIdentity> {
        let o = self.object("assume_role_with_web_identity")?;
        let sub = nested_settings(&o, &self.origin("assume_role_with_web_identity"));
        let mut r = Reader {
            settings: &sub,
            errors: self.errors,
        };
        let duration = r
            .string("duration")
            .and_then(|d| parse_go_duration(&d).map(|s| s as i32));
        Some(WebIdentity {
            role_arn: r.string("role_arn").unwrap_or_default(),
            web_identity_token: r.string("web_identity_token"),
            web_identity_token_file: r.string("web_identity_token_file"),
            session_name: r.string("session_name"),
            policy: r.string("policy"),
            policy_arns: r.strings("policy_arns"),
            duration_seconds: duration,
        })
    }
}

fn nested_settings(o: &hcl::Map<String, Value>, origin: &str) -> BTreeMap<String, Setting> {
    o.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Setting {
                    value: v.clone(),
                    origin: origin.to_string(),
                },
            )
        })
        .collect()
}

/// Seconds in a Go duration string such as `1h30m`, `900s`, `15m`.
fn parse_go_duration(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next()?);
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        any = true;
    }
    (num.is_empty() && any).then_some(total as i64)
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
            c.auth.endpoints.s3.as_deref(),
            Some("http://127.0.0.1:5055")
        );
        assert_eq!(
            c.auth.endpoints.dynamodb.as_deref(),
            Some("https://127.0.0.1:5055")
        );
        assert_eq!(c.state_tags["team"], "a b");
        let ar = c.auth.assume_role.unwrap();
        assert_eq!(ar.duration_seconds, Some(3600));
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
        assert_eq!(c.auth.region, "eu-west-1");
        assert_eq!(c.auth.endpoints.s3.as_deref(), Some("http://x:1"));
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
        assert_eq!(parse_go_duration("1h30m"), Some(5400));
        assert_eq!(parse_go_duration("900s"), Some(900));
        assert_eq!(parse_go_duration("15"), None);
    }
}
