//! A key service that can't be reached: with the `aws_kms` provider on moto behind a relay
//! that this test closes, reading a state whose data key is not cached answers 503 with
//! `Retry-After` and a body that names the key service (never a secret), not a bare 500; a
//! direct envelope is not served as ciphertext.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use stateseal_testkit::moto::{unique, Moto, ENDPOINT_ENV};

use crate::support::{state, Harness};

/// A TCP relay to moto that can be cut: while cut, connections are closed at once (as a
/// service that is down).
struct Relay {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
}

impl Relay {
    async fn start(target: &str) -> Relay {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { addr, up }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
    }
}

fn kms_config(alias: &str, endpoint: &str) -> String {
    format!(
        r#"
encryption {{
  key_provider "aws_kms" "main" {{
    kms_key_id                  = "alias/{alias}"
    key_spec                    = "AES_256"
    region                      = "us-east-1"
    access_key                  = "testing"
    secret_key                  = "testing"
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    max_retries                 = 0
    endpoints {{
      kms = "{endpoint}"
      sts = "{endpoint}"
    }}
  }}
  method "aes_gcm" "main" {{ keys = key_provider.aws_kms.main }}
  state {{ method = method.aes_gcm.main }}
}}
"#
    )
}

/// A server on `dir`'s data directory with this configuration.
fn server(dir: &tempfile::TempDir, config: &str) -> stateseal_server::App {
    let config = stateseal_server::ServerConfig::parse("server.hcl", config, None).unwrap();
    stateseal_server::App::open(&dir.path().join("data"), config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_kms_unreachable_is_503_with_retry_after() {
    let Some(moto) = Moto::from_env(ENDPOINT_ENV, "kms_unreachable_is_503") else {
        return;
    };
    let alias = unique("server-at-rest");
    moto.mkkey(&alias);
    let relay = Relay::start(&moto.endpoint).await;
    let config = kms_config(&alias, &format!("http://{}", relay.addr));
    let dir = tempfile::tempdir().unwrap();
    let path = "/state/kms/app";

    // One server writes (its data key), then stops.
    let first = state(1, "lin-k", "through-kms");
    {
        let h = Harness {
            app: Arc::new(server(&dir, &config)),
            dir: tempfile::tempdir().unwrap(),
            s3: None,
        };
        assert_eq!(h.send("POST", path, Some(&first)).await.status, 200);
    }
    // The next server starts (a new data key), then KMS goes away: the stored version's data
    // key must come from KMS, which can't be reached.
    let h = Harness {
        app: Arc::new(server(&dir, &config)),
        dir: tempfile::tempdir().unwrap(),
        s3: None,
    };
    relay.cut();
    for uri in [path, "/v1/versions/kms/app?seq=1"] {
        let a = h.send("GET", uri, None).await;
        assert_eq!(a.status, 503, "{uri}: {}", a.text());
        assert!(a.retry_after.parse::<u64>().unwrap() >= 1, "{uri}");
        let text = a.text();
        assert!(
            text.contains("key_provider.aws_kms.main") && text.contains("unavailable"),
            "{text}"
        );
        assert!(
            !text.contains("testing"),
            "no credentials in the body: {text}"
        );
    }
    // Writing needs no KMS call (the data key was fetched at startup) and is verified.
    let second = state(2, "lin-k", "while-kms-is-down");
    assert_eq!(h.send("POST", path, Some(&second)).await.status, 200);
    assert_eq!(h.send("GET", path, None).await.body, second);
}
