//! Real peers for integration tests: a moto server (`STATESEAL_TEST_AWS_ENDPOINT`), an
//! IAM-enforcing one (`STATESEAL_TEST_AWS_AUTH_ENDPOINT`) and real Terraform through
//! `scripts/peers/tf.py`, with SDK clients for checking what was stored.
//!
//! Tests call [`Peers::aws`] or [`Peers::terraform`] and return early when the peer is not
//! there: with a printed notice, or a failure when peers are required (see [`crate::skip`]). Names are unique per process and call, so tests can share one moto
//! instance and run in parallel.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{skip, AUTH_ENDPOINT_VAR, ENDPOINT_VAR};

/// A Terraform configuration whose every apply replaces one `terraform_data` and runs a
/// `local-exec` that, when `-var hold_until=FILE` is given, waits until FILE exists (at most
/// five minutes), so a test keeps an apply, and its lock, busy until IT says so, by creating
/// FILE (see [`release`]); no sleeping on a guess (TEST-PEERS gotcha 12). One output, `greeting`.
pub const SLOW_APPLY_TF: &str = r#"
variable "hold_until" {
  type    = string
  default = ""
}
resource "terraform_data" "slow" {
  triggers_replace = [timestamp()]
  provisioner "local-exec" {
    command = "f='${var.hold_until}'; n=0; while [ -n \"$f\" ] && [ ! -e \"$f\" ] && [ $n -lt 3000 ]; do sleep 0.1; n=$((n+1)); done"
  }
}
output "greeting" {
  value = "hello <&> world"
}
"#;

/// Lets an apply of [`SLOW_APPLY_TF`] started with `-var hold_until=FILE` finish.
pub fn release(file: &Path) {
    std::fs::write(file, b"").unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// The repository root (where `.venv` and `scripts/peers` are).
pub fn repo_root() -> PathBuf {
    let mut p = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !p.join("scripts/peers/tf.py").exists() {
        if !p.pop() {
            panic!(
                "scripts/peers/tf.py not found above {}",
                env!("CARGO_MANIFEST_DIR")
            );
        }
    }
    p
}

/// A name unique to this process and call: lowercase, digits and dashes (valid as a bucket).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos & 0xffff
    )
}

/// The peers this machine has.
#[derive(Clone, Debug)]
pub struct Peers {
    pub root: PathBuf,
    pub python: PathBuf,
    /// moto's URL, when set.
    pub endpoint: Option<String>,
    /// The IAM-enforcing moto's URL, when set.
    pub auth_endpoint: Option<String>,
    /// Held by tests that drive real Terraform (see [`crate::heavy::permit`]).
    _terraform: Option<std::sync::Arc<crate::heavy::Permit>>,
}

impl Peers {
    fn find() -> Peers {
        let root = repo_root();
        let var = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        Peers {
            python: var("STATESEAL_TEST_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(".venv/bin/python")),
            endpoint: var(ENDPOINT_VAR),
            auth_endpoint: var(AUTH_ENDPOINT_VAR),
            root,
            _terraform: None,
        }
    }

    /// moto is required: `None` (with a printed notice) when `STATESEAL_TEST_AWS_ENDPOINT` is
    /// unset.
    pub fn aws(test: &str) -> Option<Peers> {
        let p = Peers::find();
        if p.endpoint.is_none() {
            skip(
                test,
                &format!(
                    "{ENDPOINT_VAR} is not set to a moto server (scripts/peers/moto.sh start)"
                ),
            );
            return None;
        }
        Some(p)
    }

    /// moto and Terraform (the venv) are required. The test holds a Terraform permit for as
    /// long as it keeps the returned peers (see [`crate::heavy`]).
    pub fn terraform(test: &str) -> Option<Peers> {
        let p = Peers::aws(test)?;
        p.has_python(test).then(|| p.with_terraform_permit())
    }

    /// Terraform only (local backend tests), with a Terraform permit like [`Peers::terraform`].
    pub fn terraform_local(test: &str) -> Option<Peers> {
        let p = Peers::find();
        p.has_python(test).then(|| p.with_terraform_permit())
    }

    fn with_terraform_permit(mut self) -> Peers {
        self._terraform = Some(crate::heavy::permit());
        self
    }

    fn has_python(&self, test: &str) -> bool {
        let ok = self.python.exists();
        if !ok {
            skip(
                test,
                &format!("no {} (bash scripts/peers/venv.sh)", self.python.display()),
            );
        }
        ok
    }

    /// The IAM-enforcing moto, or `None` with a notice (a failure under `REQUIRE_VAR`).
    pub fn auth_endpoint(&self, test: &str) -> Option<&str> {
        if self.auth_endpoint.is_none() {
            skip(test, &format!("{AUTH_ENDPOINT_VAR} is not set"));
        }
        self.auth_endpoint.as_deref()
    }

    pub fn endpoint(&self) -> &str {
        self.endpoint.as_deref().expect("checked by Peers::aws")
    }

    /// The `tf.py` command for one Terraform command in `dir` (not started).
    pub fn tf_command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.python);
        c.arg(self.root.join("scripts/peers/tf.py"))
            .arg("--chdir")
            .arg(dir)
            .arg("--")
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("TF_WORKSPACE")
            .stdin(Stdio::null());
        c
    }

    /// Runs the venv's Python in the repository root; panics unless it succeeds. Returns stdout.
    pub fn python_bytes(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new(&self.python)
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "python {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// [`Peers::python_bytes`] as trimmed text.
    pub fn python_out(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.python_bytes(args))
            .trim()
            .to_string()
    }

    /// Runs one Terraform command to completion.
    pub fn tf(&self, dir: &Path, args: &[&str]) -> Output {
        self.tf_command(dir, args).output().expect("run tf.py")
    }

    /// Starts one Terraform command in the background (stdout/stderr piped).
    pub fn tf_spawn(&self, dir: &Path, args: &[&str]) -> Child {
        self.tf_command(dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tf.py")
    }

    /// Like [`Peers::tf`], panicking with Terraform's output unless it succeeds.
    pub fn tf_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.tf(dir, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "terraform {args:?} failed:\n{text}");
        text
    }

    async fn sdk(&self) -> aws_config::SdkConfig {
        let settings: stateseal_aws::AwsSettings = serde_json::from_value(serde_json::json!({
            "region": "us-east-1",
            "access_key": "testing",
            "secret_key": "testing",
            "skip_metadata_api_check": true,
        }))
        .expect("settings");
        stateseal_aws::sdk_config(&settings)
            .await
            .expect("sdk config")
            .into_builder()
            .endpoint_url(self.endpoint())
            .build()
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk().await)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk().await)
    }

    /// Creates a bucket (optionally versioned).
    pub async fn mkbucket(&self, name: &str, versioning: bool) {
        let s3 = self.s3().await;
        s3.create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("create bucket");
        if versioning {
            use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
            s3.put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .expect("enable versioning");
        }
    }

    /// A new KMS key on moto with the alias `alias/NAME`; returns its ARN.
    pub fn mkkey(&self, name: &str) -> String {
        let arn = self.python_out(&[
            "scripts/peers/aws.py",
            "--endpoint",
            self.endpoint(),
            "mkkey",
            name,
        ]);
        assert!(arn.starts_with("arn:aws:kms:"), "{arn}");
        arn
    }

    /// Disables a KMS key on moto. moto records the state, but (checked with moto 5) still
    /// encrypts and decrypts with the key: only real AWS answers `DisabledException`.
    pub fn disable_key(&self, key: &str) {
        let out = self.python_out(&[
            "scripts/peers/aws.py",
            "--endpoint",
            self.endpoint(),
            "kms-disable",
            key,
        ]);
        assert_eq!(out, "disabled", "{out}");
    }

    /// A KMS key as `region` sees it (`aws.py kms-describe`): `arn`, `multi_region`, `policy`
    /// (parsed) and `aliases`.
    pub fn kms_describe(&self, key: &str, region: &str) -> serde_json::Value {
        let out = self.python_out(&[
            "scripts/peers/aws.py",
            "--endpoint",
            self.endpoint(),
            "kms-describe",
            key,
            "--region",
            region,
        ]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("kms-describe: {e}: {out}"))
    }

    /// Creates a lock table (`LockID` string hash key).
    pub async fn mktable(&self, name: &str) {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        self.dynamodb()
            .await
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("LockID")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("LockID")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("create table");
    }

    /// Removes a bucket's policy (moto evaluates policies, and its endpoint is plain HTTP: a
    /// TLS-only policy denies every object call to it).
    pub async fn delete_bucket_policy(&self, bucket: &str) {
        self.s3()
            .await
            .delete_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .expect("delete bucket policy");
    }

    /// An object's bytes, or `None`.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.get_object_version(bucket, key, None).await
    }

    /// One version of an object (`None`: the current one), or `None` when there is none.
    pub async fn get_object_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Option<Vec<u8>> {
        let out = self
            .s3()
            .await
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.ok()?.into_bytes().to_vec())
    }

    /// Writes an object as is (no conditions, no headers).
    pub async fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        self.s3()
            .await
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .expect("put object");
    }

    /// Writes a DynamoDB item `{LockID: lock_id, attr: value}` as is (a string attribute).
    pub async fn put_item(&self, table: &str, lock_id: &str, attr: &str, value: &str) {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.dynamodb()
            .await
            .put_item()
            .table_name(table)
            .item("LockID", AttributeValue::S(lock_id.into()))
            .item(attr, AttributeValue::S(value.into()))
            .send()
            .await
            .expect("put item");
    }

    /// Every key in a bucket.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self
            .s3()
            .await
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .expect("list");
        out.contents()
            .iter()
            .filter_map(|o| o.key.clone())
            .collect()
    }

    /// Every object version and delete marker in a bucket as `(key, version id, ETag)`
    /// (delete markers with an empty ETag), in the order S3 lists them (newest first per key).
    pub async fn object_versions(&self, bucket: &str) -> Vec<(String, String, String)> {
        let s3 = self.s3().await;
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = s3
                .list_object_versions()
                .bucket(bucket)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .expect("list object versions");
            for v in page.versions() {
                out.push((
                    v.key().unwrap_or_default().to_string(),
                    v.version_id().unwrap_or_default().to_string(),
                    v.e_tag().unwrap_or_default().to_string(),
                ));
            }
            for m in page.delete_markers() {
                out.push((
                    m.key().unwrap_or_default().to_string(),
                    m.version_id().unwrap_or_default().to_string(),
                    String::new(),
                ));
            }
            if page.is_truncated() != Some(true) {
                return out;
            }
            key_marker = page.next_key_marker;
            version_marker = page.next_version_id_marker;
        }
    }

    /// Every item of a lock table as `LockID → the item's other attributes (Debug text)`.
    pub async fn items(&self, table: &str) -> std::collections::BTreeMap<String, String> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let out = self
            .dynamodb()
            .await
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .expect("scan");
        out.items()
            .iter()
            .map(|i| {
                let id = match i.get("LockID") {
                    Some(AttributeValue::S(s)) => s.clone(),
                    other => format!("{other:?}"),
                };
                let rest: std::collections::BTreeMap<_, _> =
                    i.iter().filter(|(k, _)| *k != "LockID").collect();
                (id, format!("{rest:?}"))
            })
            .collect()
    }

    /// A DynamoDB item's string attribute.
    pub async fn item_attr(&self, table: &str, lock_id: &str, attr: &str) -> Option<String> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let out = self
            .dynamodb()
            .await
            .get_item()
            .table_name(table)
            .key("LockID", AttributeValue::S(lock_id.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item");
        match out.item?.get(attr)? {
            AttributeValue::S(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// `--backend-config` pairs for an S3 store on moto (bucket, key, lock file on or off, and
    /// a DynamoDB table when given), for tests that build a store with `S3Builder`.
    pub fn s3_backend_config(
        &self,
        bucket: &str,
        key: &str,
        table: Option<&str>,
        lockfile: bool,
    ) -> Vec<String> {
        let e = self.endpoint();
        let mut kv = vec![
            format!("bucket={bucket}"),
            format!("key={key}"),
            "region=us-east-1".into(),
            format!("endpoints={{s3=\"{e}\", dynamodb=\"{e}\", sts=\"{e}\"}}"),
            "use_path_style=true".into(),
            "access_key=testing".into(),
            "secret_key=testing".into(),
            format!("use_lockfile={lockfile}"),
        ];
        kv.extend(table.map(|t| format!("dynamodb_table={t}")));
        kv
    }

    /// The settings that point a `backend "s3"` block at moto (endpoints, path style, test
    /// credentials, no AWS account checks), one attribute per line.
    pub fn moto_backend_settings(&self) -> String {
        let e = self.endpoint();
        format!(
            r#"    endpoints = {{
      s3       = "{e}"
      dynamodb = "{e}"
      sts      = "{e}"
      iam      = "{e}"
    }}
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    access_key                  = "testing"
    secret_key                  = "testing"
"#
        )
    }

    /// A `backend "s3"` block pointed at moto.
    pub fn backend_block(&self, bucket: &str, extra: &str) -> String {
        self.backend_block_for_key(bucket, "app/terraform.tfstate", extra)
    }

    /// [`Peers::backend_block`] for the state at `key`.
    pub fn backend_block_for_key(&self, bucket: &str, key: &str, extra: &str) -> String {
        format!(
            "terraform {{\n  backend \"s3\" {{\n    bucket = \"{bucket}\"\n    key    = \"{key}\"\n    region = \"us-east-1\"\n{}{extra}\n  }}\n}}\n",
            self.moto_backend_settings()
        )
    }

    /// A `storage "s3"` block for `stateseal serve`, pointed at moto (the attributes of
    /// [`Peers::backend_block`] but `key`).
    pub fn storage_block(&self, bucket: &str, extra: &str) -> String {
        format!(
            "storage \"s3\" {{\n    bucket = \"{bucket}\"\n    region = \"us-east-1\"\n{}{extra}\n}}\n",
            self.moto_backend_settings()
        )
    }
}
