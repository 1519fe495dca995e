//! Key providers are lazy: building them, checking a configuration and reading a plaintext
//! state contact no key service and run no program. Every service here is a recording fake
//! HTTP server (the fake must see no request), and the external programs would leave a
//! marker file.
#![cfg(all(feature = "aws-kms", feature = "gcp-kms", feature = "openbao"))]

use crate::fake_http;

use fake_http::FakeServer;
use stateseal_encryption::key_provider::gcp_kms::KMS_ENDPOINT_ENV;
use stateseal_encryption::load::{self, Options};
use stateseal_encryption::{Registry, Status};

const PLAIN_STATE: &[u8] =
    br#"{"version":4,"terraform_version":"1.9.0","serial":1,"lineage":"l","outputs":{}}"#;

#[test]
fn validate_build_and_plaintext_reads_contact_no_key_service() {
    let fake = FakeServer::start(|_| (500, "{}".into()));
    std::env::set_var(KMS_ENDPOINT_ENV, &fake.url);
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("program-ran");
    let touch = format!(r#"["/bin/sh", "-c", "touch '{}'"]"#, marker.display());
    let url = &fake.url;
    let body = format!(
        r#"
key_provider "aws_kms" "k" {{
  kms_key_id = "alias/state"
  key_spec   = "AES_256"
  region     = "us-east-1"
  access_key = "a"
  secret_key = "b"
  max_retries = 1
  assume_role = {{ role_arn = "arn:aws:iam::123456789012:role/r" }}
  endpoints {{
    kms = "{url}"
    sts = "{url}"
  }}
}}
key_provider "gcp_kms" "g" {{
  kms_encryption_key = "projects/p/locations/l/keyRings/r/cryptoKeys/k"
  key_length         = 32
  access_token       = "token"
}}
key_provider "openbao" "o" {{
  key_name = "k"
  address  = "{url}"
  token    = "t"
}}
key_provider "external" "e" {{
  command = {touch}
}}
method "aes_gcm" "aws" {{
  keys = key_provider.aws_kms.k
}}
method "aes_gcm" "gcp" {{
  keys = key_provider.gcp_kms.g
}}
method "aes_gcm" "bao" {{
  keys = key_provider.openbao.o
}}
method "external" "ext" {{
  keys            = key_provider.external.e
  encrypt_command = {touch}
  decrypt_command = {touch}
}}
method "unencrypted" "migrate" {{}}
state {{
  method = method.aes_gcm.aws
  fallback {{
    method = method.aes_gcm.gcp
    fallback {{
      method = method.aes_gcm.bao
      fallback {{
        method = method.external.ext
        fallback {{
          method = method.unencrypted.migrate
        }}
      }}
    }}
  }}
}}
plan {{
  method = method.aes_gcm.gcp
}}
"#
    );
    let opts = Options {
        dir: dir.path().to_path_buf(),
        env_encryption: Some(body),
        workspace: "default".into(),
        ..Options::default()
    };
    let enc = load::load(&opts, Registry::default(), &|_| None)
        .unwrap_or_else(|d| panic!("{d}"))
        .encryption;

    // `validate`: every provider and method is built, none is called.
    let diags = enc.check_buildable();
    assert!(!diags.has_errors(), "{diags}");

    // A plaintext state read through the `unencrypted` fallback: no provider runs.
    let (plain, status) = enc.state().decrypt_state(PLAIN_STATE).unwrap();
    assert_eq!((plain.as_slice(), status), (PLAIN_STATE, Status::Migration));
    // A plaintext plan without an `unencrypted` method is refused, also without any call.
    let err = enc.plan().decrypt_plan(b"PK\x03\x04").unwrap_err();
    assert!(err.to_string().contains("unencrypted payload"), "{err}");

    assert!(
        fake.requests.lock().unwrap().is_empty(),
        "a key service was contacted: {:?}",
        fake.requests.lock().unwrap()
    );
    assert!(!marker.exists(), "an external program ran");

    // The fake is really where the providers point: writing contacts it (and fails).
    assert!(enc.state().encrypt_state(PLAIN_STATE).is_err());
    assert!(!fake.requests.lock().unwrap().is_empty());
}
