//! aws_kms against moto's KMS and STS (real AWS SDK calls, real HTTP).
//!
//! Needs `STATESEAL_TEST_AWS_ENDPOINT` (a moto) and, for the IAM test,
//! `STATESEAL_TEST_AWS_AUTH_ENDPOINT` (a moto of its own with `INITIAL_NO_AUTH_ACTION_COUNT=0`).
//! Each test prints a notice and passes when its variable is unset, and fails instead when
//! `STATESEAL_TEST_REQUIRE_PEERS` is set.
#![cfg(feature = "aws-kms")]

use stateseal_testkit::moto;

use std::path::Path;

use base64::Engine as _;
use moto::{unique, Moto, AUTH_ENDPOINT_ENV, ENDPOINT_ENV};
use stateseal_encryption::envelope::Envelope;
use stateseal_encryption::load::{self, Options};
use stateseal_encryption::{Encryption, Registry, Status};

const STATE: &[u8] = br#"{"version":4,"terraform_version":"1.9.0","serial":3,"lineage":"9f2c-lineage","outputs":{},"resources":[]}"#;

/// The guide's configuration, as written: aws_kms with variables, `key_spec = "AES_256"` and
/// `assume_role`, aes_gcm, and the state target.
const GUIDE: &str = r#"
variable "kms_key_id" {
  type = string
}

variable "role_arn" {
  type = string
}

terraform {
  encryption {
    key_provider "aws_kms" "basic" {
      kms_key_id = var.kms_key_id
      region     = "us-east-1"
      key_spec   = "AES_256"

      assume_role = {
        role_arn     = var.role_arn
        session_name = "stateseal-test"
      }
    }

    method "aes_gcm" "default" {
      keys = key_provider.aws_kms.basic
    }

    state {
      method = method.aes_gcm.default
    }
  }
}
"#;

const ROLE: &str = "arn:aws:iam::123456789012:role/stateseal-state";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// What the guide leaves to the environment, supplied the way OpenTofu users do: a
/// `TF_ENCRYPTION` body merged over the code. Credentials and endpoints point at moto.
fn moto_override(name: &str, endpoint: &str, access_key: &str, secret_key: &str) -> String {
    format!(
        r#"
key_provider "aws_kms" "{name}" {{
  access_key                  = "{access_key}"
  secret_key                  = "{secret_key}"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  max_retries                 = 1
  endpoints {{
    sts = "{endpoint}"
    kms = "{endpoint}"
  }}
}}
"#
    )
}

fn load_dir(dir: &Path, env_body: String, vars: &[(&str, &str)]) -> std::sync::Arc<Encryption> {
    let mut opts = Options {
        dir: dir.to_path_buf(),
        env_encryption: Some(env_body),
        workspace: "default".into(),
        ..Options::default()
    };
    opts.vars.vars = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load::load(&opts, Registry::default(), &|_| None)
        .unwrap_or_else(|d| panic!("{d}"))
        .encryption
}

/// A module whose encryption block has one aws_kms provider `name`, with `over` as
/// `TF_ENCRYPTION`.
fn body_encryption(provider_body: &str, name: &str, over: String) -> std::sync::Arc<Encryption> {
    let dir = tempfile::tempdir().unwrap();
    let code = format!(
        r#"
terraform {{
  encryption {{
    key_provider "aws_kms" "{name}" {{
{provider_body}
    }}
    method "aes_gcm" "m" {{
      keys = key_provider.aws_kms.{name}
    }}
    state {{
      method = method.aes_gcm.m
    }}
  }}
}}
"#
    );
    std::fs::write(dir.path().join("main.tf"), code).unwrap();
    load_dir(dir.path(), over, &[])
}

fn stored_meta(envelope: &[u8], key: &str) -> serde_json::Value {
    let env = Envelope::parse(envelope).expect("an envelope");
    serde_json::from_slice(&env.meta[key]).unwrap()
}

#[test]
fn guide_configuration_round_trips_through_moto_kms_with_assume_role() {
    let Some(moto) = Moto::from_env(ENDPOINT_ENV, "guide_configuration_round_trips") else {
        return;
    };
    let alias = unique("guide");
    let arn = moto.mkkey(&alias);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tf"), GUIDE).unwrap();
    let key_id = format!("alias/{alias}");
    let vars = [("kms_key_id", key_id.as_str()), ("role_arn", ROLE)];
    let over = || moto_override("basic", &moto.endpoint, "testing", "testing");

    let writer = load_dir(dir.path(), over(), &vars);
    let ciphertext = writer.state().encrypt_state(STATE).unwrap();

    // The envelope holds exactly OpenTofu's aws_kms metadata: {"ciphertext_blob":b64}.
    let env = Envelope::parse(&ciphertext).unwrap();
    assert_eq!(
        env.meta.keys().collect::<Vec<_>>(),
        ["key_provider.aws_kms.basic"]
    );
    let raw = String::from_utf8(env.meta["key_provider.aws_kms.basic"].clone()).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let blob = meta["ciphertext_blob"].as_str().unwrap();
    assert_eq!(raw, format!(r#"{{"ciphertext_blob":"{blob}"}}"#));

    // moto's own Decrypt (through boto3) accepts the blob and gives the AES-256 data key that
    // encrypted the payload.
    let data_key = unb64(&moto.kms_decrypt(blob, None));
    assert_eq!(data_key.len(), 32);
    let by_hand = stateseal_encryption::method::aes_gcm::build(&serde_json::json!({
        "keys": {"encryption_key": null, "decryption_key": data_key}
    }))
    .unwrap();
    assert_eq!(by_hand.decrypt(env.encrypted_data.clone()).unwrap(), STATE);

    // A fresh configuration (a new process, in effect) reads it back.
    let reader = load_dir(dir.path(), over(), &vars);
    let (plain, status) = reader.state().decrypt_state(&ciphertext).unwrap();
    assert_eq!((plain.as_slice(), status), (STATE, Status::Satisfied));
    assert!(arn.starts_with("arn:aws:kms:us-east-1:123456789012:key/"));
}

#[test]
fn encryption_context_is_stored_sent_and_enforced() {
    let Some(moto) = Moto::from_env(ENDPOINT_ENV, "encryption_context_is_stored") else {
        return;
    };
    let alias = unique("ctx");
    moto.mkkey(&alias);
    let provider = format!(
        "kms_key_id = \"alias/{alias}\"\nkey_spec = \"AES_128\"\nregion = \"us-east-1\"\nencryption_context = {{ team = \"infra\", \"a<b\" = \"x&y\" }}"
    );
    let over = moto_override("ctx", &moto.endpoint, "testing", "testing");
    let enc = body_encryption(&provider, "ctx", over.clone());
    let ct = enc.state().encrypt_state(STATE).unwrap();
    let raw =
        String::from_utf8(Envelope::parse(&ct).unwrap().meta["key_provider.aws_kms.ctx"].clone())
            .unwrap();
    // Go's map order and HTML-safe escaping.
    assert!(
        raw.ends_with(r#","encryption_context":{"a\u003cb":"x\u0026y","team":"infra"}}"#),
        "{raw}"
    );
    let meta: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let blob = meta["ciphertext_blob"].as_str().unwrap();
    assert_eq!(
        unb64(&moto.kms_decrypt(blob, Some(r#"{"team":"infra","a<b":"x&y"}"#))).len(),
        16
    );

    // The stored context is what Decrypt uses: changing it in the configuration is harmless.
    let changed = body_encryption(&provider.replace("infra", "platform"), "ctx", over.clone());
    assert_eq!(changed.state().decrypt_state(&ct).unwrap().0, STATE);

    // A tampered stored context is refused by KMS: the error names provider, key and cause.
    let mut env = Envelope::parse(&ct).unwrap();
    env.meta.insert(
        "key_provider.aws_kms.ctx".into(),
        raw.replace("infra", "evil").into_bytes(),
    );
    let err = enc
        .state()
        .decrypt_state(&env.to_bytes())
        .unwrap_err()
        .to_string();
    for want in [
        "key_provider.aws_kms.ctx failed with error:",
        &format!("alias/{alias}"),
        "InvalidCiphertextException",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
}

#[test]
fn errors_name_provider_key_and_api_error() {
    let Some(moto) = Moto::from_env(ENDPOINT_ENV, "errors_name_provider_key_and_api_error") else {
        return;
    };
    let alias = unique("errs");
    moto.mkkey(&alias);
    let over = |name: &str| moto_override(name, &moto.endpoint, "testing", "testing");
    let check = |err: String, want: &[&str]| {
        eprintln!("{err}\n");
        for w in want {
            assert!(err.contains(w), "{w:?} not in {err}");
        }
        assert!(!err.contains("testing\""), "a credential leaked: {err}");
    };

    // Unknown key.
    let enc = body_encryption(
        "kms_key_id = \"alias/no-such-key\"\nkey_spec = \"AES_256\"\nregion = \"us-east-1\"",
        "unknown",
        over("unknown"),
    );
    check(
        enc.state().encrypt_state(STATE).unwrap_err().to_string(),
        &[
            "key_provider.aws_kms.unknown failed with error:",
            "\"alias/no-such-key\"",
            "NotFoundException",
        ],
    );

    // Wrong region: the key exists in us-east-1 only.
    let enc = body_encryption(
        &format!("kms_key_id = \"alias/{alias}\"\nkey_spec = \"AES_256\"\nregion = \"eu-west-1\""),
        "region",
        over("region"),
    );
    check(
        enc.state().encrypt_state(STATE).unwrap_err().to_string(),
        &[
            "key_provider.aws_kms.region",
            &alias,
            "eu-west-1",
            "NotFoundException",
            "region",
        ],
    );

    // Invalid ciphertext: a flipped byte in the stored blob.
    let good = body_encryption(
        &format!("kms_key_id = \"alias/{alias}\"\nkey_spec = \"AES_256\"\nregion = \"us-east-1\""),
        "good",
        over("good"),
    );
    let ct = good.state().encrypt_state(STATE).unwrap();
    let mut env = Envelope::parse(&ct).unwrap();
    let meta = stored_meta(&ct, "key_provider.aws_kms.good");
    let mut blob = unb64(meta["ciphertext_blob"].as_str().unwrap());
    blob[40] ^= 0xff;
    env.meta.insert(
        "key_provider.aws_kms.good".into(),
        format!(r#"{{"ciphertext_blob":"{}"}}"#, b64(&blob)).into_bytes(),
    );
    check(
        good.state()
            .decrypt_state(&env.to_bytes())
            .unwrap_err()
            .to_string(),
        &[
            "key_provider.aws_kms.good failed with error:",
            &alias,
            "InvalidCiphertextException",
        ],
    );

    // assume_role through an STS that does not answer: the role and the cause are named.
    let enc = body_encryption(
        &format!("kms_key_id = \"alias/{alias}\"\nkey_spec = \"AES_256\"\nregion = \"us-east-1\"\nassume_role = {{ role_arn = \"{ROLE}\" }}"),
        "sts",
        over("sts").replace(&format!("sts = \"{}\"", moto.endpoint), "sts = \"http://127.0.0.1:9\""),
    );
    check(
        enc.state().encrypt_state(STATE).unwrap_err().to_string(),
        &["key_provider.aws_kms.sts", "cannot assume IAM role", ROLE],
    );
}

/// One moto with IAM enforcement, so one test drives it (the switch is server-wide).
#[test]
fn iam_policies_are_enforced_and_decrypt_never_generates_a_key() {
    let Some(moto) = Moto::from_env(AUTH_ENDPOINT_ENV, "iam_policies_are_enforced") else {
        return;
    };
    moto.reset_auth("inf");
    let alias = unique("iam");
    moto.mkkey(&alias);
    let (no_decrypt_ak, no_decrypt_sk) = moto.iam_user(&unique("nodecrypt"), &["kms:Decrypt"]);
    let (no_gen_ak, no_gen_sk) = moto.iam_user(&unique("nogen"), &["kms:GenerateDataKey"]);
    moto.reset_auth("0");

    let provider =
        format!("kms_key_id = \"alias/{alias}\"\nkey_spec = \"AES_256\"\nregion = \"us-east-1\"");
    let as_user = |ak: &str, sk: &str| {
        body_encryption(
            &provider,
            "iam",
            moto_override("iam", &moto.endpoint, ak, sk),
        )
    };

    // Unknown credentials are refused outright.
    let err = as_user("AKIAUNKNOWN", "nope")
        .state()
        .encrypt_state(STATE)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("InvalidClientTokenId") && err.contains("HTTP 403"),
        "{err}"
    );

    // GenerateDataKey is allowed for this user, Decrypt is denied: a clear AccessDenied naming
    // provider and key, and no plaintext.
    let ct = as_user(&no_decrypt_ak, &no_decrypt_sk)
        .state()
        .encrypt_state(STATE)
        .unwrap();
    let err = as_user(&no_decrypt_ak, &no_decrypt_sk)
        .state()
        .decrypt_state(&ct)
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    for want in [
        "key_provider.aws_kms.iam failed with error:",
        &format!("\"alias/{alias}\""),
        "AccessDenied",
        "kms:Decrypt",
        "HTTP 403",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    assert!(
        !err.contains(&no_decrypt_sk),
        "the secret key leaked: {err}"
    );

    // A user who may not GenerateDataKey still reads the state: decrypting calls only Decrypt.
    let (plain, _) = as_user(&no_gen_ak, &no_gen_sk)
        .state()
        .decrypt_state(&ct)
        .unwrap();
    assert_eq!(plain, STATE);
    let err = as_user(&no_gen_ak, &no_gen_sk)
        .state()
        .encrypt_state(STATE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("kms:GenerateDataKey"), "{err}");
}

/// One STS AssumeRole per process, not one per file: the SDK configuration (and its credentials
/// cache) is built once per settings. STS is reached through a counting relay in front of moto.
#[test]
fn assume_role_happens_once_per_process() {
    let Some(moto) = Moto::from_env(ENDPOINT_ENV, "assume_role_happens_once_per_process") else {
        return;
    };
    let alias = unique("once");
    moto.mkkey(&alias);
    let relay = CountingRelay::start(&moto.endpoint, b"Action=AssumeRole");
    let body = format!(
        "kms_key_id = \"alias/{alias}\"\nkey_spec = \"AES_256\"\nregion = \"us-east-1\"\nassume_role = {{ role_arn = \"{ROLE}\" }}"
    );
    let over = moto_override("p", &moto.endpoint, "testing", "testing").replace(
        &format!("sts = \"{}\"", moto.endpoint),
        &format!("sts = \"{}\"", relay.url()),
    );
    // Three writers (three data keys), then one reader decrypting all three files.
    let files: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            body_encryption(&body, "p", over.clone())
                .state()
                .encrypt_state(STATE)
                .unwrap()
        })
        .collect();
    let reader = body_encryption(&body, "p", over.clone());
    for f in &files {
        assert_eq!(reader.state().decrypt_state(f).unwrap().0, STATE);
    }
    assert_eq!(reader.key_provider_calls().get("aws_kms"), Some(&3));
    let assumed = relay.count();
    assert_eq!(
        assumed, 1,
        "STS AssumeRole calls for 3 encrypts and 3 decrypts"
    );
}

/// A byte-for-byte TCP relay to moto that counts the requests containing a marker.
struct CountingRelay {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingRelay {
    fn start(upstream_url: &str, marker: &'static [u8]) -> CountingRelay {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let upstream = upstream_url.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if buf[..n].windows(marker.len()).any(|w| w == marker) {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        CountingRelay { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn count(&self) -> usize {
        self.seen.load(std::sync::atomic::Ordering::SeqCst)
    }
}
