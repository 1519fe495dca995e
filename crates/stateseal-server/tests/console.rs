//! The web console (`/ui`, issue 13) through a plain HTTP client: attacks refused (a state's
//! `<script>` rendered inert, a form without its CSRF token, another user's session cookie),
//! grants deciding what a viewer sees, sensitive outputs masked until an admin reveals one, the
//! diff, force-unlock and rollback. The browser flows with real Terraform are in
//! `tests/browser/` (run by `scripts/test.sh`).

use std::collections::HashMap;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt as _;

use crate::auth::config;
use crate::support::{lock_info, Harness};

/// An answer with the headers the console sets.
pub(crate) struct Page {
    pub status: u16,
    headers: HashMap<String, String>,
    pub body: String,
}

pub(crate) async fn request(
    h: &Harness,
    method: &str,
    uri: &str,
    cookie: &str,
    form: &str,
) -> Page {
    let mut req = Request::builder().method(method).uri(uri);
    if cookie.contains('=') {
        req = req.header("cookie", cookie);
    } else if !cookie.is_empty() {
        req = req.header("cookie", format!("stateseal_session={cookie}"));
    }
    if method == "POST" {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let resp = stateseal_server::router(h.app.clone())
        .oneshot(req.body(Body::from(form.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The cookie (`name=value`) the answer's Set-Cookie carries: a signed-in session, or an
    /// anonymous visitor's form cookie; empty when none (or a cleared one).
    fn cookie(&self) -> String {
        let pair = self
            .header("set-cookie")
            .split(';')
            .next()
            .unwrap_or_default();
        match pair.split_once('=') {
            Some((_, v)) if !v.is_empty() => pair.to_string(),
            _ => String::new(),
        }
    }

    /// The value of the first hidden `csrf` input.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..at + 64].to_string()
    }
}

/// Signs in; returns the session id and its CSRF token.
pub(crate) async fn sign_in(h: &Harness, user: &str, password: &str) -> (String, String) {
    let form = request(h, "GET", "/ui/login", "", "").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let anon = form.cookie();
    assert!(
        anon.starts_with("stateseal_form="),
        "the sign-in form sets a form cookie, not a session: {anon}"
    );
    let done = request(
        h,
        "POST",
        "/ui/login",
        &anon,
        &format!("csrf={}&user={user}&password={password}", form.csrf()),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let id = done.cookie();
    assert!(!id.is_empty() && id != anon, "sign-in replaces the session");
    assert!(request(h, "GET", "/ui/states", &anon, "").await.status == 303);
    let states = request(h, "GET", "/ui/states", &id, "").await;
    assert_eq!(states.status, 200);
    (id, states.csrf())
}

/// A Terraform-shaped state with one resource and two outputs (one sensitive).
fn tf_state(serial: u64, name: &str, value: &str, secret: &str) -> Vec<u8> {
    serde_json::json!({
        "version": 4, "terraform_version": "1.15.5", "serial": serial, "lineage": "lin-1",
        "outputs": {
            "greeting": {"value": value, "type": "string"},
            "password": {"value": secret, "type": "string", "sensitive": true}
        },
        "resources": [{"mode": "managed", "type": "terraform_data", "name": name,
            "provider": "provider[\"terraform.io/builtin/terraform\"]",
            "instances": [{"schema_version": 0,
                "attributes": {"id": "x", "input": value, "token": secret},
                "sensitive_attributes": [[{"type": "get_attr", "value": "token"}]]}]}],
        "check_results": null
    })
    .to_string()
    .into_bytes()
}

async fn put(h: &Harness, path: &str, body: &[u8]) {
    let a = h
        .send_with(
            "POST",
            &format!("/state/{path}"),
            Some(body),
            &[("authorization", &crate::auth::basic("root", "root-pw"))],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
}

/// `GET /state/team-a/app/lock` as root: 200 while locked, 404 when free.
/// Submits the force-unlock form of `team-a/app` for lock `id`.
async fn force_unlock(h: &Harness, session: &str, id: &str, csrf: &str) -> Page {
    request(
        h,
        "POST",
        "/ui/unlock/team-a/app",
        session,
        &format!("id={id}&csrf={csrf}"),
    )
    .await
}

async fn lock_status(h: &Harness) -> u16 {
    h.send_with(
        "GET",
        "/state/team-a/app/lock",
        None,
        &[("authorization", &crate::auth::basic("root", "root-pw"))],
    )
    .await
    .status
}

#[tokio::test]
async fn console_renders_script_from_a_state_inert_with_security_headers() {
    let h = Harness::new();
    let evil = "<script>alert(1)</script>";
    let s1 = tf_state(1, "<script>alert(2)</script>", "hello", "pw-one");
    let s2 = tf_state(2, "<script>alert(2)</script>", evil, "pw-two");
    for s in [&s1, &s2] {
        assert_eq!(
            h.send("POST", "/state/xss/%3Cscript%3E", Some(s))
                .await
                .status,
            200
        );
    }
    let states = request(&h, "GET", "/ui/states", "", "").await;
    assert_eq!(states.status, 200, "{}", states.body);
    assert!(
        states.body.contains("xss/&lt;script&gt;"),
        "{}",
        states.body
    );
    let state = request(&h, "GET", "/ui/state/xss/%3Cscript%3E?from=1&to=2", "", "").await;
    assert_eq!(state.status, 200, "{}", state.body);
    for page in [&states, &state] {
        assert!(!page.body.contains("<script"), "{}", page.body);
        let csp = page.header("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("x-frame-options"), "DENY");
        assert!(page.header("content-type").starts_with("text/html"));
    }
    // The output, the resource address and the changed attribute, escaped.
    assert!(
        state.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        state.body
    );
    assert!(
        state
            .body
            .contains("terraform_data.&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{}",
        state.body
    );
    // Sensitive values: masked in the outputs, "changed" in the diff, never shown.
    assert!(!state.body.contains("pw-one") && !state.body.contains("pw-two"));
    assert!(state.body.contains("(sensitive value changed)"));
}

#[tokio::test]
async fn console_refuses_a_form_without_its_csrf_token() {
    let h = Harness::with_config(&config());
    put(&h, "team-a/app", &tf_state(1, "r", "v", "s")).await;
    let id = "cccccccc-1111-2222-3333-444444444444";
    let lock = h
        .send_with(
            "LOCK",
            "/state/team-a/app",
            Some(lock_info(id, "terraform@ci").as_bytes()),
            &[("authorization", &crate::auth::basic("root", "root-pw"))],
        )
        .await;
    assert_eq!(lock.status, 200);

    // Sign-in itself needs the form's token.
    let form = request(&h, "GET", "/ui/login", "", "").await;
    let anon = form.cookie();
    let no_token = request(&h, "POST", "/ui/login", &anon, "user=root&password=root-pw").await;
    assert_eq!(no_token.status, 403);
    assert!(
        !no_token.header("set-cookie").contains("stateseal_session="),
        "no session, signed-in or not"
    );
    assert!(h.app.console.sessions.is_empty());
    assert_eq!(
        request(&h, "GET", "/ui/states", &anon, "").await.status,
        303
    );
    // A token of another visitor's cookie is refused too.
    let other = request(&h, "GET", "/ui/login", "", "").await;
    let crossed = request(
        &h,
        "POST",
        "/ui/login",
        &anon,
        &format!("csrf={}&user=root&password=root-pw", other.csrf()),
    )
    .await;
    assert_eq!(crossed.status, 403);
    assert!(h.app.console.sessions.is_empty());

    let (root, csrf) = sign_in(&h, "root", "root-pw").await;
    let (_, other_csrf) = sign_in(&h, "root", "root-pw").await;
    let confirm = request(&h, "GET", "/ui/unlock/team-a/app", &root, "").await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("terraform@ci"), "the holder is shown");
    for form in [
        format!("id={id}"),
        format!("id={id}&csrf="),
        format!("id={id}&csrf={}", "0".repeat(64)),
        format!("id={id}&csrf={other_csrf}"),
    ] {
        let refused = request(&h, "POST", "/ui/unlock/team-a/app", &root, &form).await;
        assert_eq!(refused.status, 403, "{form}: {}", refused.body);
        assert_eq!(lock_status(&h).await, 200, "still locked after {form}");
    }
    let rollback = request(&h, "POST", "/ui/rollback/team-a/app", &root, "seq=1").await;
    assert_eq!(rollback.status, 403);
    let logout = request(&h, "POST", "/ui/logout", &root, "").await;
    assert_eq!(logout.status, 403, "sign-out needs the token too");

    let done = force_unlock(&h, &root, id, &csrf).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(lock_status(&h).await, 404, "released");
}

#[tokio::test]
async fn a_session_cookie_of_another_user_does_not_grant_its_paths() {
    let h = Harness::with_config(&config());
    put(&h, "team-a/app", &tf_state(1, "r", "a1", "s")).await;
    put(&h, "team-a/app", &tf_state(2, "r", "a2", "s")).await;
    put(&h, "team-b/secret-app", &tf_state(1, "r", "b", "s")).await;
    let lock = h
        .send_with(
            "LOCK",
            "/state/team-a/app",
            Some(lock_info("dddddddd-1111-2222-3333-444444444444", "t@h").as_bytes()),
            &[("authorization", &crate::auth::basic("root", "root-pw"))],
        )
        .await;
    assert_eq!(lock.status, 200);

    let (root, root_csrf) = sign_in(&h, "root", "root-pw").await;
    let (ci, ci_csrf) = sign_in(&h, "ci", "ci-pw").await;

    let root_states = request(&h, "GET", "/ui/states", &root, "").await;
    assert!(root_states.body.contains("team-b/secret-app"));
    // ci (read/write/lock on team-a/*) never sees team-b, whatever it asks.
    let ci_states = request(&h, "GET", "/ui/states?prefix=team-b", &ci, "").await;
    assert!(!ci_states.body.contains("secret-app"), "{}", ci_states.body);
    assert!(!request(&h, "GET", "/ui/locks", &ci, "")
        .await
        .body
        .contains("secret-app"));
    for page in ["state", "unlock", "rollback"] {
        let a = request(
            &h,
            "GET",
            &format!("/ui/{page}/team-b/secret-app?seq=1"),
            &ci,
            "",
        )
        .await;
        assert_eq!(a.status, 404, "{page}: {}", a.body);
        assert!(!a.body.contains("team-b"), "{}", a.body);
    }
    // A forged or unknown cookie is no session at all.
    assert_eq!(
        request(&h, "GET", "/ui/states", &"f".repeat(64), "")
            .await
            .status,
        303
    );

    // ci sees team-a/app without any admin control, and a direct POST is refused (its own
    // token or root's): nothing is written or released.
    let page = request(&h, "GET", "/ui/state/team-a/app", &ci, "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("t@h"), "the lock holder is shown");
    for control in [
        "Force unlock",
        "Roll back",
        "Reveal",
        "/ui/unlock/",
        "/ui/rollback/",
    ] {
        assert!(!page.body.contains(control), "{control} shown to ci");
    }
    assert!(request(&h, "GET", "/ui/state/team-a/app", &root, "")
        .await
        .body
        .contains("/ui/rollback/team-a/app?seq=1"));
    let before = h.snapshot().await;
    for csrf in [&ci_csrf, &root_csrf] {
        for (uri, form) in [
            ("/ui/rollback/team-a/app", format!("seq=1&csrf={csrf}")),
            (
                "/ui/unlock/team-a/app",
                format!("id=dddddddd-1111-2222-3333-444444444444&csrf={csrf}"),
            ),
            (
                "/ui/reveal/team-a/app",
                format!("output=password&csrf={csrf}"),
            ),
        ] {
            let a = request(&h, "POST", uri, &ci, &form).await;
            assert_eq!(a.status, 403, "{uri}: {}", a.body);
            assert!(!a.body.contains("\"s\""));
        }
    }
    assert_eq!(h.snapshot().await, before, "nothing changed");
}

#[tokio::test]
async fn console_masks_sensitive_outputs_until_an_admin_reveals_one() {
    let h = Harness::with_config(&config());
    put(&h, "team-a/app", &tf_state(1, "r", "visible", "hunter2")).await;
    let (root, csrf) = sign_in(&h, "root", "root-pw").await;
    let page = request(&h, "GET", "/ui/state/team-a/app", &root, "").await;
    assert!(page.body.contains("visible") && !page.body.contains("hunter2"));
    assert!(page.body.contains("Reveal"));
    let revealed = request(
        &h,
        "POST",
        "/ui/reveal/team-a/app",
        &root,
        &format!("output=password&csrf={csrf}"),
    )
    .await;
    assert_eq!(revealed.status, 200, "{}", revealed.body);
    assert!(revealed.body.contains("hunter2"));
}

#[tokio::test]
async fn console_rollback_and_force_unlock_without_auth() {
    let h = Harness::new();
    for (serial, v) in [(1, "one"), (2, "two")] {
        let s = tf_state(serial, "r", v, "s");
        assert_eq!(h.send("POST", "/state/app", Some(&s)).await.status, 200);
    }
    // Without an auth block the console is open (like the API): no sign-in form.
    assert_eq!(request(&h, "GET", "/ui/login", "", "").await.status, 303);
    let first = request(&h, "GET", "/ui/state/app", "", "").await;
    assert_eq!(first.status, 200);
    let cookie = first.cookie();
    let csrf = first.csrf();
    assert!(first.body.contains("/ui/rollback/app?seq=1"));
    let confirm = request(&h, "GET", "/ui/rollback/app?seq=1", &cookie, "").await;
    assert_eq!(confirm.status, 200);
    for missing in [
        "/ui/rollback/app?seq=99",
        "/ui/rollback/app?seq=0",
        "/ui/state/nothing",
    ] {
        assert_eq!(
            request(&h, "GET", missing, &cookie, "").await.status,
            404,
            "{missing}"
        );
    }
    let done = request(
        &h,
        "POST",
        "/ui/rollback/app",
        &cookie,
        &format!("seq=1&csrf={csrf}"),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), "/ui/state/app");
    let now = h.send("GET", "/state/app", None).await;
    let meta = stateseal_store::StateMeta::parse(&now.body).unwrap();
    assert_eq!(meta.serial, 3, "a new version above the current serial");
    assert_eq!(meta.output_values()["greeting"], "one");
    let versions = h.send("GET", "/v1/versions/app", None).await.text();
    assert_eq!(versions.matches("\"seq\"").count(), 3);

    // A lock: the rollback is refused while it is held; the force-unlock releases it.
    let id = "eeeeeeee-1111-2222-3333-444444444444";
    let l = lock_info(id, "runner@host");
    assert_eq!(
        h.send("LOCK", "/state/app", Some(l.as_bytes()))
            .await
            .status,
        200
    );
    let locks = request(&h, "GET", "/ui/locks", &cookie, "").await;
    assert!(locks.body.contains("runner@host") && locks.body.contains("/ui/unlock/app"));
    let refused = request(
        &h,
        "POST",
        "/ui/rollback/app",
        &cookie,
        &format!("seq=2&csrf={csrf}"),
    )
    .await;
    assert_eq!(refused.status, 423, "{}", refused.body);
    assert!(refused.body.contains("runner@host"));
    let stale = request(
        &h,
        "POST",
        "/ui/unlock/app",
        &cookie,
        &format!("id=other&csrf={csrf}"),
    )
    .await;
    assert_eq!(stale.status, 409, "only the lock the page showed is broken");
    let done = request(
        &h,
        "POST",
        "/ui/unlock/app",
        &cookie,
        &format!("id={id}&csrf={csrf}"),
    )
    .await;
    assert_eq!(done.status, 303);
    assert_eq!(h.send("GET", "/state/app/lock", None).await.status, 404);
}

#[tokio::test]
async fn a_state_the_server_cannot_decrypt_shows_only_its_envelope() {
    let h = Harness::new();
    let client = crate::at_rest::reader();
    for serial in [1, 2] {
        let e = client
            .state()
            .encrypt_state(&tf_state(serial, "r", "hidden-output", "s"))
            .unwrap();
        assert_eq!(h.send("POST", "/state/enc/app", Some(&e)).await.status, 200);
    }
    let states = request(&h, "GET", "/ui/states", "", "").await;
    assert!(states.body.contains("yes (client)"), "{}", states.body);
    assert!(
        states.body.contains("key_provider.pbkdf2."),
        "{}",
        states.body
    );
    let page = request(&h, "GET", "/ui/state/enc/app?from=1&to=2", "", "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .body
        .contains("encrypted by its client with a key this server does not have"));
    assert!(page.body.contains("lin-1"), "the envelope's lineage");
    assert!(page.body.contains("can't be compared"));
    assert!(!page.body.contains("hidden-output"));
    assert!(
        !page.body.contains("/ui/rollback/"),
        "no rollback of a client envelope"
    );
    // A plaintext state's page has a form (reveal), hence the session's token.
    let plain = tf_state(1, "r", "v", "s");
    assert_eq!(
        h.send("POST", "/state/plain", Some(&plain)).await.status,
        200
    );
    let cookie = page.cookie();
    let csrf = request(&h, "GET", "/ui/state/plain", &cookie, "")
        .await
        .csrf();
    let refused = request(
        &h,
        "POST",
        "/ui/rollback/enc/app",
        &cookie,
        &format!("seq=1&csrf={csrf}"),
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
}

#[tokio::test]
async fn the_session_cookie_is_secure_under_tls_and_never_readable_by_scripts() {
    let certs = tempfile::tempdir().unwrap();
    crate::tls::make_certs(certs.path());
    let tls = Harness::with_config(&crate::tls::tls_config(certs.path(), false));
    let plain = Harness::new();
    for (h, secure) in [(&tls, true), (&plain, false)] {
        let page = request(h, "GET", "/ui/states", "", "").await;
        let cookie = page.header("set-cookie");
        assert!(cookie.starts_with("stateseal_form="), "{cookie}");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert_eq!(cookie.contains("; Secure"), secure, "{cookie}");
    }
}

/// Issue 17, M3: anonymous visitors leave nothing on the server. A sign-in form opened before
/// 10,000 anonymous visits of `/ui/login` still signs in, and until then no session exists.
#[tokio::test]
async fn fail_a_flood_of_anonymous_visits_keeps_no_state_and_expires_no_form() {
    let h = Harness::with_config(&config());
    let form = request(&h, "GET", "/ui/login", "", "").await;
    let router = stateseal_server::router(h.app.clone());
    for _ in 0..10_000 {
        let req = Request::builder()
            .uri("/ui/login")
            .body(Body::empty())
            .unwrap();
        let answer = router.clone().oneshot(req).await.unwrap();
        assert_eq!(answer.status(), 200);
    }
    assert!(
        h.app.console.sessions.is_empty(),
        "anonymous visits started sessions"
    );
    let done = request(
        &h,
        "POST",
        "/ui/login",
        &form.cookie(),
        &format!("csrf={}&user=root&password=root-pw", form.csrf()),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(h.app.console.sessions.len(), 1, "the one signed-in session");
}

/// Issue 17, M1 (console): failed sign-ins back off like Basic credentials; during the
/// back-off the right password is refused with 429 and `Retry-After`.
#[tokio::test]
async fn fail_console_sign_in_backs_off_after_repeated_failures() {
    let h = Harness::with_config(&config());
    let form = request(&h, "GET", "/ui/login", "", "").await;
    let (cookie, csrf) = (form.cookie(), form.csrf());
    let attempt = |password: &'static str| {
        let (h, cookie, csrf) = (&h, cookie.clone(), csrf.clone());
        async move {
            request(
                h,
                "POST",
                "/ui/login",
                &cookie,
                &format!("csrf={csrf}&user=ci&password={password}"),
            )
            .await
        }
    };
    for _ in 0..stateseal_server::throttle::FREE_FAILURES + 1 {
        assert_eq!(attempt("wrong").await.status, 403);
    }
    let refused = attempt("ci-pw").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(refused.body.contains("Too many failed sign-ins"));
    assert!(h.app.console.sessions.is_empty());
}

/// Issue 17, L5 (console): an unreadable lock record shows as a lock an admin can force-unlock;
/// the form clears the record only while it is unchanged.
#[tokio::test]
async fn fail_an_unreadable_lock_record_is_cleared_from_the_console() {
    let first = Harness::with_config(&config());
    put(&first, "team-a/app", &tf_state(1, "r", "v", "s")).await;
    let lock_file = first.data().join("states/team-a/app/@/lock.json");
    std::fs::write(&lock_file, b"\x00 not lock info").unwrap();
    // A restarted server reads the record when the state is first used.
    let dir = first.dir;
    drop(first.app);
    let config = stateseal_server::ServerConfig::parse("s.hcl", &config(), None).unwrap();
    let app = stateseal_server::App::open(&dir.path().join("data"), config).unwrap();
    let h = Harness {
        dir,
        app: std::sync::Arc::new(app),
        s3: None,
    };
    let (root, csrf) = sign_in(&h, "root", "root-pw").await;
    let locks = request(&h, "GET", "/ui/locks", &root, "").await;
    assert_eq!(locks.status, 200);
    assert!(
        locks.body.contains("(unreadable lock record)"),
        "{}",
        locks.body
    );
    // The ID the confirmation page shows (the prefix and 16 hex digits).
    let shown_id = || async {
        let confirm = request(&h, "GET", "/ui/unlock/team-a/app", &root, "").await;
        let at = confirm
            .body
            .find("unreadable-lock-record-")
            .expect("the ID");
        confirm.body[at..at + 39].to_string()
    };
    let id = shown_id().await;
    // The record changed after the confirmation page: nothing is released.
    std::fs::write(&lock_file, b"\x00 other garbage").unwrap();
    let stale = force_unlock(&h, &root, &id, &csrf).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(lock_file.exists());
    let done = force_unlock(&h, &root, &shown_id().await, &csrf).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!lock_file.exists());
    assert_eq!(lock_status(&h).await, 404);
}
