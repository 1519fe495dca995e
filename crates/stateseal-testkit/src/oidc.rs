//! A real OpenID provider for tests (issue 22): `oidc-provider` (npm, pinned in
//! scripts/peers/oidc/package-lock.json) started by PID on 127.0.0.1 through
//! scripts/peers/oidc/peer.mjs, with one client per simulated CI job whose client-credentials
//! JWTs carry GitHub-style claims (`repository`, `repository_id`, `ref`, `environment`, `sub`).

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::peers::repo_root;

/// A running `oidc-provider`; stopped by PID on drop.
pub struct OidcPeer {
    child: Child,
    pub issuer: String,
    _dir: tempfile::TempDir,
}

impl Drop for OidcPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every client's secret.
pub const SECRET: &str = "client-secret-0123456789abcdef";

fn client(id: &str, extra: Value) -> Value {
    let mut c = json!({
        "client_id": id,
        "client_secret": SECRET,
        "ttl": 300,
        "sub": "repo:acme/infra:ref:refs/heads/main",
        "claims": {
            "repository": "acme/infra",
            "repository_id": "4242",
            "repository_owner": "acme",
            "ref": "refs/heads/main",
            "environment": "prod"
        }
    });
    for (k, v) in extra.as_object().unwrap() {
        if k == "claims" {
            for (ck, cv) in v.as_object().unwrap() {
                c["claims"][ck] = cv.clone();
            }
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// The simulated CI jobs, all of repository `acme/infra` (id 4242) unless said otherwise:
/// `apply-main` (main, prod, RS256), `ec-main` (the same, ES256), `short-main` (a 2 s token),
/// `plan-feature` (refs/heads/feature, dev), `other-repo` (acme/web, id 999), `future-nbf`
/// (nbf an hour ahead), `future-iat` (iat an hour ahead).
pub fn clients() -> Value {
    json!([
        client("apply-main", json!({})),
        client("ec-main", json!({ "alg": "ES256" })),
        client("short-main", json!({ "ttl": 2 })),
        client(
            "plan-feature",
            json!({
                "sub": "repo:acme/infra:ref:refs/heads/feature",
                "claims": { "ref": "refs/heads/feature", "environment": "dev" }
            })
        ),
        client(
            "other-repo",
            json!({
                "sub": "repo:acme/web:ref:refs/heads/main",
                "claims": { "repository": "acme/web", "repository_id": "999" }
            })
        ),
        client("future-nbf", json!({ "nbf_offset": 3600 })),
        client("future-iat", json!({ "iat_offset": 3600 })),
    ])
}

impl OidcPeer {
    /// Starts the provider, or `None` (skipped, or failed under STATESEAL_TEST_REQUIRE_PEERS)
    /// without node or the npm packages (`npm ci` in scripts/peers/oidc; scripts/test.sh runs it).
    pub fn start(test: &str) -> Option<OidcPeer> {
        let dir_of_peer: PathBuf = repo_root().join("scripts/peers/oidc");
        if !dir_of_peer.join("node_modules/oidc-provider").is_dir() {
            crate::skip(
                test,
                "oidc-provider is not installed (npm ci in scripts/peers/oidc)",
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("peer.json");
        std::fs::write(&cfg, json!({ "clients": clients() }).to_string()).unwrap();
        let mut child = match Command::new("node")
            .arg(dir_of_peer.join("peer.mjs"))
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                crate::skip(test, &format!("node cannot start: {e}"));
                return None;
            }
        };
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let issuer = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the OIDC peer did not start: {line:?}"))
            .trim()
            .to_string();
        Some(OidcPeer {
            child,
            issuer,
            _dir: dir,
        })
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(std::time::Duration::from_secs(30)))
                .build(),
        )
    }

    /// A fresh access token of `client` for `audience`.
    pub fn token_for(&self, client: &str, audience: &str) -> String {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client}:{SECRET}"));
        let mut resp = Self::agent()
            .post(format!("{}/token", self.issuer))
            .header("authorization", format!("Basic {basic}"))
            .send_form([
                ("grant_type", "client_credentials"),
                ("resource", &format!("urn:stateseal:{audience}")),
                ("scope", "state"),
            ])
            .unwrap();
        let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token for {client}: {body}"))
            .to_string()
    }

    pub fn token(&self, client: &str) -> String {
        self.token_for(client, "stateseal")
    }

    /// New signing keys, same issuer.
    pub fn rotate(&self) {
        let resp = Self::agent()
            .post(format!("{}/admin/rotate", self.issuer))
            .send_empty()
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// Requests the provider has served for its keys.
    pub fn jwks_requests(&self) -> u64 {
        let mut resp = Self::agent()
            .get(format!("{}/admin/stats", self.issuer))
            .call()
            .unwrap();
        let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        v["jwks"].as_u64().unwrap()
    }

    /// Requests the provider has served for its discovery document.
    pub fn discovery_requests(&self) -> u64 {
        let mut resp = Self::agent()
            .get(format!("{}/admin/stats", self.issuer))
            .call()
            .unwrap();
        let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        v["discovery"].as_u64().unwrap()
    }

    /// The provider's current keys (public).
    pub fn jwks(&self) -> Value {
        let mut resp = Self::agent()
            .get(format!("{}/jwks", self.issuer))
            .call()
            .unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }
}
