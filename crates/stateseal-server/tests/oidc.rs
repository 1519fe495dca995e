//! OIDC tokens of CI jobs (issue 22), against a real OpenID provider: `oidc-provider` (npm,
//! pinned in scripts/peers/oidc/package-lock.json) started by PID on 127.0.0.1 through
//! scripts/peers/oidc/peer.mjs. It mints client-credentials JWTs with GitHub-style claims; the
//! attack tokens are crafted here from its real tokens.

use base64::Engine as _;
use serde_json::Value;
use stateseal_testkit::oidc::OidcPeer;

use crate::support::{lock_info, state, Answer, Harness};

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The header and claims of a token, as JSON.
pub fn parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let dec = |s: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap(),
        )
        .unwrap()
    };
    let h = dec(it.next().unwrap());
    let p = dec(it.next().unwrap());
    (h, p, it.next().unwrap().to_string())
}

/// A token with this header and claims and signature.
pub fn assemble(header: &Value, claims: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// The server configuration: issuer `ci` (no leeway), an apply grant for the protected
/// branch of repository 4242 and a plan grant (read, lock) for any branch of it.
pub fn config(peer: &OidcPeer, extra: &str) -> String {
    format!(
        r#"
auth {{
  oidc "ci" {{
    issuer    = "{issuer}"
    audiences = ["stateseal"]
    leeway    = 0
    {extra}
  }}
  grant {{
    oidc   = "ci"
    claims = {{ repository_id = "4242", ref = "refs/heads/main", environment = "prod" }}
    paths  = ["${{repository_id}}/*"]
    allow  = ["read", "write", "lock"]
  }}
  grant {{
    oidc   = "ci"
    claims = {{ repository_id = "4242", ref = "refs/heads/*" }}
    paths  = ["${{repository_id}}/*"]
    allow  = ["read", "lock"]
  }}
}}
"#,
        issuer = peer.issuer
    )
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn put(h: &Harness, path: &str, token: &str, serial: u64, id: Option<&str>) -> Answer {
    let uri = match id {
        Some(id) => format!("/state/{path}?ID={id}"),
        None => format!("/state/{path}"),
    };
    h.send_with(
        "POST",
        &uri,
        Some(&state(serial, "L", "hello")),
        &[("authorization", &bearer(token))],
    )
    .await
}

async fn lock(h: &Harness, path: &str, token: &str, id: &str) -> Answer {
    h.send_with(
        "LOCK",
        &format!("/state/{path}"),
        Some(lock_info(id, "ci@runner").as_bytes()),
        &[("authorization", &bearer(token))],
    )
    .await
}

async fn unlock(h: &Harness, path: &str, token: &str, id: &str) -> Answer {
    h.send_with(
        "UNLOCK",
        &format!("/state/{path}"),
        Some(lock_info(id, "ci@runner").as_bytes()),
        &[("authorization", &bearer(token))],
    )
    .await
}

async fn metric(h: &Harness, reason: &str) -> u64 {
    let text = h.send("GET", "/metrics", None).await.text();
    let key = format!("stateseal_oidc_refusals_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /metrics"))
}

const ID: &str = "11111111-2222-3333-4444-555555555555";
const ID2: &str = "66666666-2222-3333-4444-555555555555";

#[test]
fn fail_bad_oidc_blocks_name_the_problem() {
    let issuer = "issuer = \"https://issuer.example\"";
    for (src, want) in [
        (format!("oidc \"a\" {{ {issuer} }}"), "audiences"),
        (format!("oidc \"a\" {{\n {issuer}\n audiences = []\n }}"), "audience-free"),
        (format!("oidc \"a\" {{\n {issuer}\n audiences = [\"x\"]\n algorithms = [\"HS256\"]\n }}"), "never none or HS"),
        (format!("oidc \"a\" {{\n {issuer}\n audiences = [\"x\"]\n algorithms = [\"none\"]\n }}"), "never none or HS"),
        (format!("oidc \"a\" {{\n {issuer}\n audiences = [\"x\"]\n leeway = 3600\n }}"), "at most 300"),
        ("grant {\n oidc = \"nope\"\n paths = [\"*\"]\n allow = [\"read\"]\n }".to_string(), "no oidc \"nope\" block"),
        (format!("oidc \"a\" {{\n {issuer}\n audiences = [\"x\"]\n }}\n grant {{\n oidc = \"a\"\n to = [\"u\"]\n paths = [\"*\"]\n allow = [\"read\"]\n }}"), "not both"),
        (format!("oidc \"a\" {{\n {issuer}\n audiences = [\"x\"]\n }}\n grant {{\n oidc = \"a\"\n paths = [\"${{a.b}}/*\"]\n allow = [\"read\"]\n }}"), "claim NAME"),
    ] {
        let src = format!("auth {{\n{src}\n}}");
        let e = stateseal_server::ServerConfig::parse("server.hcl", &src, None).unwrap_err();
        assert!(e.to_string().contains(want), "{src}: {e}");
    }
}

#[tokio::test]
async fn a_job_token_writes_where_its_claims_are_granted() {
    let Some(peer) = OidcPeer::start("a_job_token_writes_where_its_claims_are_granted") else {
        return;
    };
    let h = Harness::with_config(&config(&peer, ""));
    let apply = peer.token("apply-main");
    // Bearer, RS256.
    assert_eq!(put(&h, "4242/app", &apply, 1, None).await.status, 200);
    // Basic with user oidc (TF_HTTP_USERNAME/TF_HTTP_PASSWORD), ES256.
    let ec = peer.token("ec-main");
    assert_eq!(parts(&ec).0["alg"], "ES256");
    let basic = crate::auth::basic("oidc", &ec);
    let a = h
        .send_with(
            "POST",
            "/state/4242/app",
            Some(&state(2, "L", "x")),
            &[("authorization", &basic)],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    // The versions name the writer by identity.
    let v = h
        .send_with(
            "GET",
            "/v1/versions/4242/app",
            None,
            &[("authorization", &bearer(&apply))],
        )
        .await;
    let v: Value = serde_json::from_slice(&v.body).unwrap();
    assert_eq!(
        v["versions"][0]["who"],
        "ci: acme/infra@refs/heads/main (prod)"
    );
    // Another path: no grant (403), nothing written.
    let before = h.snapshot().await;
    assert_eq!(put(&h, "999/app", &apply, 1, None).await.status, 403);
    // A feature branch's (plan) token may read and lock, not write.
    let plan = peer.token("plan-feature");
    assert_eq!(
        h.send_with(
            "GET",
            "/state/4242/app",
            None,
            &[("authorization", &bearer(&plan))]
        )
        .await
        .status,
        200
    );
    assert_eq!(put(&h, "4242/app", &plan, 3, None).await.status, 403);
    // Another repository's token: no grant at all.
    assert_eq!(
        put(&h, "4242/app", &peer.token("other-repo"), 3, None)
            .await
            .status,
        403
    );
    assert_eq!(h.snapshot().await, before);
    assert_eq!(lock(&h, "4242/app", &plan, ID).await.status, 200);
    // The lock holder is named by identity.
    let l = h
        .send_with(
            "GET",
            "/state/4242/app/lock",
            None,
            &[("authorization", &bearer(&plan))],
        )
        .await;
    let l: Value = serde_json::from_slice(&l.body).unwrap();
    assert_eq!(l["Who"], "ci: acme/infra@refs/heads/feature (dev)");
    assert_eq!(unlock(&h, "4242/app", &plan, ID).await.status, 200);
    assert_eq!(metric(&h, "no_grant").await, 3);
}

#[tokio::test]
async fn attack_tokens_are_refused_and_nothing_is_written() {
    let Some(peer) = OidcPeer::start("attack_tokens_are_refused_and_nothing_is_written") else {
        return;
    };
    let Some(second) = OidcPeer::start("attack_tokens_are_refused_and_nothing_is_written") else {
        return;
    };
    let h = Harness::with_config(&config(&peer, "lock_grace = 0"));
    let good = peer.token("apply-main");
    assert_eq!(put(&h, "4242/app", &good, 1, None).await.status, 200);
    let before = h.snapshot().await;

    let (header, claims, sig) = parts(&good);
    let mut attacks: Vec<(&str, String, &str)> = Vec::new();
    attacks.push(("not yet valid (nbf)", peer.token("future-nbf"), "expired"));
    attacks.push((
        "issued in the future (iat)",
        peer.token("future-iat"),
        "expired",
    ));
    attacks.push((
        "wrong audience",
        peer.token_for("apply-main", "other"),
        "audience",
    ));
    // The second provider's token: another issuer, its own key.
    let foreign = second.token("apply-main");
    attacks.push(("second issuer", foreign.clone(), "issuer"));
    let (fh, mut fc, fsig) = parts(&foreign);
    fc["iss"] = Value::from(peer.issuer.clone());
    attacks.push((
        "second issuer's key, our iss",
        assemble(&fh, &fc, &fsig),
        "signature",
    ));
    let mut none = header.clone();
    none["alg"] = Value::from("none");
    attacks.push(("alg none", assemble(&none, &claims, ""), "algorithm"));
    // Algorithm confusion: HS256 keyed with the issuer's public key.
    let public = peer.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap()
        .clone();
    let mut hs = header.clone();
    hs["alg"] = Value::from("HS256");
    let unsigned = format!(
        "{}.{}",
        b64(hs.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    for secret in [
        public.to_string().into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(public["n"].as_str().unwrap())
            .unwrap(),
    ] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let mac = ring::hmac::sign(&key, unsigned.as_bytes());
        attacks.push((
            "HS256 with the public key",
            format!("{unsigned}.{}", b64(mac.as_ref())),
            "algorithm",
        ));
    }
    let mut tampered = claims.clone();
    tampered["repository_id"] = Value::from("4243");
    attacks.push((
        "tampered claims",
        assemble(&header, &tampered, &sig),
        "signature",
    ));
    let mut unknown = header.clone();
    unknown["kid"] = Value::from("no-such-key");
    attacks.push((
        "unknown kid",
        assemble(&unknown, &claims, &sig),
        "signature",
    ));
    let mut huge = claims.clone();
    huge["pad"] = Value::from("x".repeat(64 * 1024));
    attacks.push(("64 KiB token", assemble(&header, &huge, &sig), "malformed"));
    // Expired: a two-second token, past its exp (no leeway, no lock grace here).
    let short = peer.token("short-main");
    let exp = parts(&short).1["exp"].as_u64().unwrap();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= exp
    {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    attacks.push(("expired", short, "expired"));

    for (what, token, reason) in &attacks {
        let was = metric(&h, reason).await;
        let a = put(&h, "4242/app", token, 2, None).await;
        assert_eq!(a.status, 401, "{what}: {}", a.text());
        assert!(
            !a.text().contains(&token[..20]),
            "{what}: the answer repeats the token"
        );
        let a = lock(&h, "4242/app", token, ID).await;
        assert_eq!(a.status, 401, "{what}: {}", a.text());
        let basic = crate::auth::basic("oidc", token);
        let a = h
            .send_with("GET", "/state/4242/app", None, &[("authorization", &basic)])
            .await;
        assert_eq!(a.status, 401, "{what}: {}", a.text());
        assert_eq!(
            metric(&h, reason).await,
            was + 3,
            "{what}: counted as {reason}"
        );
    }
    assert_eq!(h.snapshot().await, before, "an attack wrote something");
    // The genuine token still works.
    assert_eq!(put(&h, "4242/app", &good, 2, None).await.status, 200);
}

#[tokio::test]
async fn random_kids_fetch_the_keys_at_most_once_a_minute() {
    let Some(peer) = OidcPeer::start("random_kids_fetch_the_keys_at_most_once_a_minute") else {
        return;
    };
    let h = Harness::with_config(&config(&peer, ""));
    let good = peer.token("apply-main");
    assert_eq!(
        h.send_with(
            "GET",
            "/state/4242/none",
            None,
            &[("authorization", &bearer(&good))]
        )
        .await
        .status,
        404
    );
    let fetched_first = peer.jwks_requests();
    assert_eq!(fetched_first, 1);
    let (header, claims, sig) = parts(&good);
    let rng = ring::rand::SystemRandom::new();
    for _ in 0..10_000 {
        let mut kid = [0u8; 12];
        ring::rand::SecureRandom::fill(&rng, &mut kid).unwrap();
        let mut h2 = header.clone();
        h2["kid"] = Value::from(b64(&kid));
        let a = h
            .send_with(
                "GET",
                "/state/4242/none",
                None,
                &[("authorization", &bearer(&assemble(&h2, &claims, &sig)))],
            )
            .await;
        assert_eq!(a.status, 401);
    }
    // The first unknown kid came within a minute of the first fetch: no fetch at all.
    assert!(
        peer.jwks_requests() - fetched_first <= 1,
        "{} fetches",
        peer.jwks_requests()
    );
    assert_eq!(metric(&h, "signature").await, 10_000);
}

#[tokio::test]
async fn the_server_follows_a_key_rotation() {
    let Some(peer) = OidcPeer::start("the_server_follows_a_key_rotation") else {
        return;
    };
    let h = Harness::with_config(&config(&peer, "key_refetch_interval = 1"));
    let old = peer.token("apply-main");
    assert_eq!(put(&h, "4242/app", &old, 1, None).await.status, 200);
    peer.rotate();
    let new = peer.token("apply-main");
    assert_ne!(
        parts(&new).0["kid"],
        parts(&old).0["kid"],
        "the provider rotated its key"
    );
    // Past the refetch interval, the new key is fetched on its first unknown kid.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let a = put(&h, "4242/app", &new, 2, None).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(peer.jwks_requests(), 2);
}

#[tokio::test]
async fn a_token_expiring_during_an_apply_finishes_it_but_takes_no_new_lock() {
    let Some(peer) =
        OidcPeer::start("a_token_expiring_during_an_apply_finishes_it_but_takes_no_new_lock")
    else {
        return;
    };
    let h = Harness::with_config(&config(&peer, "lock_grace = 600"));
    let short = peer.token("short-main");
    let other_job = peer.token("short-main");
    let exp = parts(&short).1["exp"].as_u64().unwrap();
    assert_eq!(put(&h, "4242/app", &short, 1, None).await.status, 200);
    assert_eq!(lock(&h, "4242/app", &short, ID).await.status, 200);
    assert_eq!(lock(&h, "4242/forced", &other_job, ID2).await.status, 200);
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= exp
    {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Expired: no new lock anywhere, no write without the lock's ID.
    let was = metric(&h, "expired").await;
    assert_eq!(lock(&h, "4242/other", &short, ID2).await.status, 401);
    assert_eq!(put(&h, "4242/app", &short, 2, None).await.status, 401);
    assert_eq!(put(&h, "4242/app", &short, 2, Some(ID2)).await.status, 401);
    assert_eq!(metric(&h, "expired").await, was + 3);
    // Under its lock: the upload and the unlock complete.
    let a = put(&h, "4242/app", &short, 2, Some(ID)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(unlock(&h, "4242/app", &short, ID).await.status, 200);
    // Released: the token can neither lock again nor write.
    assert_eq!(lock(&h, "4242/app", &short, ID).await.status, 401);
    assert_eq!(put(&h, "4242/app", &short, 3, Some(ID)).await.status, 401);
    let fresh = peer.token("apply-main");
    // A lock force-unlocked by someone else no longer lets its expired holder write under it.
    let forced = h
        .send_with(
            "UNLOCK",
            "/state/4242/forced",
            None,
            &[("authorization", &bearer(&fresh))],
        )
        .await;
    assert_eq!(forced.status, 200, "{}", forced.text());
    assert_eq!(
        put(&h, "4242/forced", &other_job, 1, Some(ID2))
            .await
            .status,
        401
    );
    let v = h
        .send_with(
            "GET",
            "/v1/versions/4242/app",
            None,
            &[("authorization", &bearer(&fresh))],
        )
        .await;
    assert_eq!(crate::support::version_serials(&v), vec![2, 1]);
}

/// Runs Terraform in `dir` with the token as `TF_HTTP_PASSWORD` (user `oidc`).
fn tf_with_token(
    peers: &stateseal_testkit::Peers,
    dir: &std::path::Path,
    token: &str,
    args: &[&str],
) -> (bool, String) {
    let out = peers
        .tf_command(dir, args)
        .env("TF_HTTP_USERNAME", "oidc")
        .env("TF_HTTP_PASSWORD", token)
        .output()
        .expect("run tf.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const TF_MAIN: &str = r#"
resource "terraform_data" "app" {
  input = var.v
}
variable "v" {
  default = "one"
}
output "v" {
  value = terraform_data.app.output
}
"#;

#[test]
fn terraform_applies_with_the_job_token_only_where_granted() {
    let test = "terraform_applies_with_the_job_token_only_where_granted";
    let Some(peers) = stateseal_testkit::Peers::terraform_local(test) else {
        return;
    };
    let Some(peer) = OidcPeer::start(test) else {
        return;
    };
    let live = crate::support::Live::start(&config(&peer, ""));
    let workdir = |name: &str| {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.tf"), TF_MAIN).unwrap();
        std::fs::write(d.path().join("backend.tf"), live.backend_block(name)).unwrap();
        d
    };
    let apply = peer.token("apply-main");
    let plan = peer.token("plan-feature");
    let read_as = |token: &str, name: &str| {
        live.send_with(
            "GET",
            &format!("/v1/versions/{name}"),
            None,
            &[("authorization", &bearer(token))],
        )
    };

    // The protected branch's apply job: init and apply on its granted path.
    let granted = workdir("4242/app");
    let (ok, out) = tf_with_token(&peers, granted.path(), &apply, &["init", "-no-color"]);
    assert!(ok, "{out}");
    let (ok, out) = tf_with_token(
        &peers,
        granted.path(),
        &apply,
        &["apply", "-auto-approve", "-no-color"],
    );
    assert!(ok, "{out}");
    let v: Value = serde_json::from_slice(&read_as(&apply, "4242/app").body).unwrap();
    assert_eq!(
        v["versions"][0]["who"],
        "ci: acme/infra@refs/heads/main (prod)"
    );
    let serials = crate::support::version_serials(&read_as(&apply, "4242/app"));

    // The same token on another path: 403, nothing there.
    let other = workdir("999/app");
    let (ok, out) = tf_with_token(&peers, other.path(), &apply, &["init", "-no-color"]);
    let (ok2, out2) = if ok {
        tf_with_token(
            &peers,
            other.path(),
            &apply,
            &["apply", "-auto-approve", "-no-color"],
        )
    } else {
        (ok, out)
    };
    assert!(!ok2, "{out2}");
    // Terraform's words for a 403 on GET (a 401 is "requires auth").
    assert!(out2.contains("invalid auth"), "{out2}");
    assert_eq!(read_as(&apply, "999/app").status, 403);

    // The feature branch's plan job: plan works (read, lock), apply is refused, nothing written.
    let (ok, out) = tf_with_token(
        &peers,
        granted.path(),
        &plan,
        &["plan", "-no-color", "-var", "v=two"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("terraform_data.app"), "{out}");
    let (ok, out) = tf_with_token(
        &peers,
        granted.path(),
        &plan,
        &["apply", "-auto-approve", "-no-color", "-var", "v=two"],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("403"), "{out}");
    assert_eq!(
        crate::support::version_serials(&read_as(&apply, "4242/app")),
        serials
    );
    // Its lock was released.
    assert_eq!(
        live.send_with(
            "GET",
            "/state/4242/app/lock",
            None,
            &[("authorization", &bearer(&apply))]
        )
        .status,
        404
    );
}

#[tokio::test]
async fn the_console_names_lock_holders_and_writers_by_identity() {
    let Some(peer) = OidcPeer::start("the_console_names_lock_holders_and_writers_by_identity")
    else {
        return;
    };
    let root = format!(
        "auth {{\n user \"root\" {{ password_hash = \"{}\" }}\n grant {{\n to = [\"root\"]\n paths = [\"*\"]\n allow = [\"read\", \"admin\"]\n }}\n",
        stateseal_server::auth::hash_password("root-pw").unwrap()
    );
    let src = config(&peer, "").replacen("auth {\n", &root, 1);
    let h = Harness::with_config(&src);
    assert_eq!(
        put(&h, "4242/app", &peer.token("apply-main"), 1, None)
            .await
            .status,
        200
    );
    assert_eq!(
        lock(&h, "4242/app", &peer.token("plan-feature"), ID)
            .await
            .status,
        200
    );
    let (session, _) = crate::console::sign_in(&h, "root", "root-pw").await;
    let states = crate::console::request(&h, "GET", "/ui/states", &session, "").await;
    assert_eq!(states.status, 200);
    assert!(
        states
            .body
            .contains("ci: acme/infra@refs/heads/feature (dev)"),
        "{}",
        states.body
    );
    let page = crate::console::request(&h, "GET", "/ui/state/4242/app", &session, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("ci: acme/infra@refs/heads/main (prod)"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_pinned_jwks_url_is_used_and_an_unreachable_one_is_503() {
    let Some(peer) = OidcPeer::start("a_pinned_jwks_url_is_used_and_an_unreachable_one_is_503")
    else {
        return;
    };
    let token = peer.token("apply-main");
    // Pinned: the keys come from jwks_url, discovery is never asked.
    let pinned = Harness::with_config(&config(
        &peer,
        &format!("jwks_url = \"{}/jwks\"", peer.issuer),
    ));
    assert_eq!(put(&pinned, "4242/app", &token, 1, None).await.status, 200);
    assert_eq!(peer.discovery_requests(), 0);
    assert_eq!(peer.jwks_requests(), 1);
    // The keys can't be fetched: the issuer is down, not the token bad (503, retry later).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/jwks", closed.local_addr().unwrap());
    drop(closed);
    let down = Harness::with_config(&config(&peer, &format!("jwks_url = \"{dead}\"")));
    let before = down.snapshot().await;
    let a = put(&down, "4242/app", &token, 1, None).await;
    assert_eq!(a.status, 503, "{}", a.text());
    assert!(!a.retry_after.is_empty());
    assert_eq!(down.snapshot().await, before);
}
