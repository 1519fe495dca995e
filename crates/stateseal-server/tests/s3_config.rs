//! `storage "s3" { … }`: the block takes the `backend "s3"` attributes but `key`; a bucket
//! without versioning or a block without a lock is refused at startup with what to change; and
//! `/healthz` and `/metrics` name the bucket.

use stateseal_server::config::StorageConfig;
use stateseal_server::{App, ServerConfig};
use stateseal_testkit::Peers;

use crate::support::{Harness, S3Backing};

#[test]
fn the_example_s3_configuration_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/server/server-s3.hcl");
    let cfg = ServerConfig::load(Some(&path), None).unwrap();
    let StorageConfig::S3(s3) = &cfg.storage else {
        panic!("{:?}", cfg.storage)
    };
    assert_eq!(s3.bucket, "team-terraform-states");
    assert_eq!(s3.dynamodb_table.as_deref(), Some("terraform-locks"));
    assert!(s3.use_lockfile && s3.encrypt);
    assert_eq!(s3.key, "");
    assert!(cfg.encryption.state().is_enabled());
}

#[test]
fn bad_storage_blocks_name_the_problem() {
    for (src, want) in [
        (
            "storage \"s3\" {\n  bucket = \"b\"\n  region = \"r\"\n  key = \"k\"\n}\n",
            "server.hcl:4: key is not allowed here",
        ),
        (
            "storage \"s3\" {\n  region = \"r\"\n}\n",
            "needs a bucket",
        ),
        (
            "storage \"s3\" {\n  bucket = \"b\"\n  region = \"r\"\n  colour = 1\n}\n",
            "unsupported argument \"colour\"",
        ),
        ("storage \"gcs\" {}\n", "storage \"gcs\" is not known"),
        (
            "storage \"s3\" {\n  bucket = \"a\"\n  region = \"r\"\n}\nstorage \"s3\" {\n  bucket = \"b\"\n  region = \"r\"\n}\n",
            "Duplicate storage block",
        ),
    ] {
        let e = ServerConfig::parse("server.hcl", src, None).unwrap_err();
        assert!(e.to_string().contains(want), "{src}: {e}");
    }
}

#[test]
fn secrets_of_the_storage_block_stay_out_of_debug_output() {
    let src = "storage \"s3\" {\n  bucket = \"b\"\n  region = \"r\"\n  access_key = \"AKIAEXAMPLE\"\n  secret_key = \"very-secret-key\"\n  sse_customer_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n  encrypt = true\n  dynamodb_table = \"t\"\n}\n";
    let cfg = ServerConfig::parse("server.hcl", src, None).unwrap();
    let shown = format!("{cfg:?}");
    assert!(shown.contains("bucket: \"b\""), "{shown}");
    for secret in [
        "very-secret-key",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[tokio::test]
async fn startup_refuses_an_unversioned_bucket_and_a_block_without_a_lock() {
    let Some(peers) = Peers::aws("startup_refuses_an_unversioned_bucket") else {
        return;
    };
    let versioned = S3Backing::create(&peers).await;
    let unversioned = stateseal_testkit::unique("srv-plain");
    peers.mkbucket(&unversioned, false).await;
    let dir = tempfile::tempdir().unwrap();
    for (src, want) in [
        (
            peers.storage_block(&unversioned, &versioned.locks),
            "versioning is off on bucket",
        ),
        (
            peers.storage_block(&versioned.bucket, ""),
            "no lock is configured",
        ),
    ] {
        let cfg = ServerConfig::parse("server.hcl", &src, None).unwrap();
        let e = App::connect(&dir.path().join("data"), cfg)
            .await
            .unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
    assert!(!dir.path().join("data").exists(), "no data directory");
}

#[tokio::test]
async fn healthz_and_metrics_name_the_bucket() {
    let Some(h) = Harness::s3("healthz_and_metrics_name_the_bucket", "").await else {
        return;
    };
    let bucket = h.s3.as_ref().unwrap().bucket.clone();
    let health = h.send("GET", "/healthz", None).await;
    let health: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(health["storage"]["kind"], "s3");
    assert_eq!(health["storage"]["location"], format!("s3://{bucket}"));
    let details = health["storage"]["details"].as_str().unwrap();
    assert!(
        details.contains("DynamoDB table") && details.contains(".tflock"),
        "{details}"
    );
    let metrics = h.send("GET", "/metrics", None).await.text();
    assert!(
        metrics.contains(&format!(
            "stateseal_storage_info{{kind=\"s3\",location=\"s3://{bucket}\"}} 1"
        )),
        "{metrics}"
    );
}
