//! Encryption at rest (Build 3 of issue 10): plaintext uploads are stored as OpenTofu v0
//! envelopes of the server's `state` target, client envelopes byte for byte, and GET returns
//! what the client sent.

use stateseal_encryption::envelope::Envelope;
use stateseal_encryption::{Encryption, Registry};

use crate::support::{state, Harness};

/// The encryption body (OpenTofu syntax) the server uses in these tests.
pub const PBKDF2_BODY: &str = r#"
  key_provider "pbkdf2" "main" {
    passphrase = "a passphrase of some length"
    iterations = 200000
  }
  method "aes_gcm" "main" { keys = key_provider.pbkdf2.main }
  state { method = method.aes_gcm.main }
"#;

pub fn server_config(extra: &str) -> String {
    format!("{extra}\nencryption {{{PBKDF2_BODY}}}\n")
}

/// The same configuration as a reader would load it (`stateseal --config`).
pub fn reader() -> Encryption {
    let cfg = stateseal_encryption::config::EncryptionConfig::parse_body_str("test", PBKDF2_BODY)
        .unwrap();
    Encryption::new(cfg, Default::default(), Registry::default()).unwrap()
}

const P: &str = "/state/enc/app";

#[tokio::test]
async fn plaintext_is_stored_as_an_envelope_and_returned_as_sent() {
    let h = Harness::with_config(&server_config(""));
    assert!(h.app.at_rest.encrypts());
    let s1 = state(1, "lin-e", "secret-output");
    assert_eq!(h.send("POST", P, Some(&s1)).await.status, 200);
    let s2 = state(2, "lin-e", "secret-output-2");
    assert_eq!(h.send("POST", P, Some(&s2)).await.status, 200);
    let files = h.version_files("enc/app");
    assert_eq!(files.len(), 2);
    let enc = reader();
    for (file, plain) in files.iter().zip([&s1, &s2]) {
        let stored = std::fs::read(file).unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains("secret-output"));
        let env = Envelope::parse(&stored).expect("every stored object is an envelope");
        assert_eq!(env.version, "v0");
        let (back, _) = enc
            .state()
            .decrypt_state(&stored)
            .expect("the config decrypts it");
        assert_eq!(&back, plain);
    }
    let a = h.send("GET", P, None).await;
    assert_eq!(
        (a.status, &a.body),
        (200, &s2),
        "GET returns the plaintext the client sent"
    );
    // A retry of the plaintext upload is recognised although the stored bytes differ.
    assert_eq!(h.send("POST", P, Some(&s2)).await.status, 200);
    assert_eq!(h.version_files("enc/app").len(), 2);
}

#[tokio::test]
async fn a_client_envelope_is_stored_byte_for_byte_and_its_serial_enforced() {
    let h = Harness::with_config(&server_config(""));
    let client = reader();
    let e3 = client
        .state()
        .encrypt_state(&state(3, "lin-c", "x"))
        .unwrap();
    assert_eq!(h.send("POST", P, Some(&e3)).await.status, 200);
    let files = h.version_files("enc/app");
    assert_eq!(std::fs::read(&files[0]).unwrap(), e3, "stored as sent");
    assert_eq!(h.send("GET", P, None).await.body, e3, "returned as sent");
    // The envelope's plaintext serial and lineage are enforced.
    let before = h.snapshot().await;
    let e2 = client
        .state()
        .encrypt_state(&state(2, "lin-c", "y"))
        .unwrap();
    let a = h.send("POST", P, Some(&e2)).await;
    assert_eq!(a.status, 409, "{}", a.text());
    let other = client
        .state()
        .encrypt_state(&state(4, "lin-other", "y"))
        .unwrap();
    assert_eq!(h.send("POST", P, Some(&other)).await.status, 409);
    assert_eq!(h.snapshot().await, before);
}

#[tokio::test]
async fn require_client_encryption_refuses_plaintext() {
    let h = Harness::with_config(&server_config("require_client_encryption = true"));
    let before = h.snapshot().await;
    let a = h.send("POST", P, Some(&state(1, "l", "x"))).await;
    assert_eq!(a.status, 400);
    assert!(
        a.text().contains("requires client-side encryption"),
        "{}",
        a.text()
    );
    assert_eq!(h.snapshot().await, before);
    let e = reader().state().encrypt_state(&state(1, "l", "x")).unwrap();
    assert_eq!(h.send("POST", P, Some(&e)).await.status, 200);
}

#[tokio::test]
async fn without_encryption_plaintext_is_stored_as_sent() {
    let h = Harness::new();
    assert!(!h.app.at_rest.encrypts());
    let s = state(1, "l", "x");
    assert_eq!(h.send("POST", P, Some(&s)).await.status, 200);
    assert_eq!(std::fs::read(&h.version_files("enc/app")[0]).unwrap(), s);
}

#[test]
fn tf_encryption_is_merged_over_the_config() {
    // TF_ENCRYPTION replaces the passphrase: the state target still applies.
    let env = r#"key_provider "pbkdf2" "main" { passphrase = "another passphrase, from env" }"#;
    let cfg =
        stateseal_server::ServerConfig::parse("server.hcl", &server_config(""), Some(env)).unwrap();
    assert!(cfg.encryption_configured);
    let only_env =
        stateseal_server::ServerConfig::parse("server.hcl", "", Some(PBKDF2_BODY)).unwrap();
    assert!(only_env.encryption_configured && only_env.encryption.state().is_enabled());
}

#[test]
fn fail_bad_server_configs_name_the_problem() {
    for (src, want) in [
        ("max_body_bytes = -1", "max_body_bytes"),
        ("require_client_encryption = 3", "require_client_encryption"),
        ("listen = \"0.0.0.0:1\"", "listen"),
        ("storage \"x\" {}", "storage"),
        ("encryption {\n method \"nope\" \"m\" {}\n}", "nope"),
    ] {
        let e = stateseal_server::ServerConfig::parse("server.hcl", src, None).unwrap_err();
        assert!(e.to_string().contains(want), "{src}: {e}");
    }
}

#[test]
fn the_example_configuration_encrypts() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/server/server.hcl");
    let cfg = stateseal_server::ServerConfig::load(Some(&path), None).unwrap();
    assert!(cfg.encryption.state().is_enabled());
    assert_eq!(cfg.max_body_bytes, 128 * 1024 * 1024);
}

/// On `storage "s3"`, an envelope written to the bucket directly (an OpenTofu with
/// `backend "s3"` on the same key and the server's encryption configuration) is served
/// decrypted, as the server's own are; one that the server's key does not open, as it is.
#[tokio::test]
async fn a_direct_envelope_is_served_decrypted_when_the_servers_key_opens_it() {
    let test = "a_direct_envelope_is_served_decrypted_when_the_servers_key_opens_it";
    let Some(h) = Harness::s3(test, &server_config("")).await else {
        return;
    };
    let b = h.s3.as_ref().unwrap();
    let plain = state(3, "lin-d", "direct");
    let ours = reader().state().encrypt_state(&plain).unwrap();
    b.peers.put_object(&b.bucket, "enc/app", &ours).await;
    let a = h.send("GET", P, None).await;
    assert_eq!(
        (a.status, a.text()),
        (200, String::from_utf8(plain).unwrap())
    );

    let body = PBKDF2_BODY.replace("a passphrase of some length", "somebody else's passphrase");
    let cfg = stateseal_encryption::config::EncryptionConfig::parse_body_str("x", &body).unwrap();
    let theirs = Encryption::new(cfg, Default::default(), Registry::default())
        .unwrap()
        .state()
        .encrypt_state(&state(4, "lin-d", "theirs"))
        .unwrap();
    b.peers.put_object(&b.bucket, "enc/app", &theirs).await;
    let a = h.send("GET", P, None).await;
    assert_eq!((a.status, &a.body), (200, &theirs), "a client's, as it is");
}

/// A method that encrypts by XOR, except that it damages what it writes for a state whose
/// outputs say `poison` (so the startup probe passes and one upload later fails).
struct Corrupting;

impl stateseal_encryption::method::Method for Corrupting {
    fn encrypt(
        &self,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, stateseal_encryption::method::MethodError> {
        let mut out: Vec<u8> = plaintext.iter().map(|b| b ^ 0x5a).collect();
        if plaintext.windows(6).any(|w| w == b"poison") {
            if let Some(last) = out.last_mut() {
                *last ^= 0xff;
            }
        }
        Ok(out)
    }

    fn decrypt(
        &self,
        ciphertext: Vec<u8>,
    ) -> Result<Vec<u8>, stateseal_encryption::method::MethodError> {
        Ok(ciphertext.into_iter().map(|b| b ^ 0x5a).collect())
    }
}

/// Sealing is verified: an envelope that does not decrypt back to the upload is refused with
/// a clear error, and nothing is stored (the previous version stays the live one).
#[tokio::test]
async fn fail_a_method_that_writes_a_bad_envelope_stores_nothing() {
    let mut registry = Registry::default();
    registry.register_method("corrupting", |_| Ok(Box::new(Corrupting)));
    let body = "method \"corrupting\" \"main\" {}\nstate { method = method.corrupting.main }\n";
    let cfg = stateseal_encryption::config::EncryptionConfig::parse_body_str("test", body).unwrap();
    let mut config = stateseal_server::ServerConfig::parse("server.hcl", "", None).unwrap();
    config.encryption = Encryption::new(cfg, Default::default(), registry).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = stateseal_server::App::open(&dir.path().join("data"), config).unwrap();
    let h = Harness {
        dir,
        app: std::sync::Arc::new(app),
        s3: None,
    };
    assert!(h.app.at_rest.encrypts());
    let good = state(1, "lin-v", "fine");
    assert_eq!(h.send("POST", P, Some(&good)).await.status, 200);
    let before = h.snapshot().await;

    let a = h.send("POST", P, Some(&state(2, "lin-v", "poison"))).await;
    assert_eq!(a.status, 500, "{}", a.text());
    assert!(
        a.text().contains("does not decrypt back") && a.text().contains("nothing was written"),
        "{}",
        a.text()
    );
    assert_eq!(h.snapshot().await, before, "nothing was stored");
    assert_eq!(
        h.send("GET", P, None).await.body,
        good,
        "the last good state"
    );
}
