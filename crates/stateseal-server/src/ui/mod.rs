//! The web console at `/ui`: server-rendered HTML (maud, escaped by construction) over the same
//! internals as the JSON API ([`crate::api`]), readable without JavaScript (there is none).
//!
//! * sign-in with the server's users: a form, then a session cookie ([`session`]); every
//!   state-changing form carries the session's CSRF token. Visitors who have not signed in
//!   (and everyone on a server without `auth`) get no session: their forms carry a stateless
//!   token ([`form_token`]), so the server keeps nothing for them;
//! * the sign-in is a password check like Basic credentials: throttled per address and user
//!   name, bounded in concurrency ([`crate::auth::check_password`]);
//! * a `read` grant means "may read every secret in the state": masking sensitive outputs for
//!   viewers without `admin` is a convenience, not access control (the same viewer can fetch
//!   the whole state from the API);
//! * the grants decide what a viewer sees: a path without a `read` grant is never listed and
//!   its pages answer 404; force-unlock, rollback and revealing a sensitive output need `admin`;
//! * without an `auth` block, the console is open with every permission, exactly like the API
//!   (the server then listens on loopback only, unless `--insecure-no-auth`);
//! * every answer carries a Content-Security-Policy without `unsafe-inline`, `nosniff`, frame
//!   denial, `no-referrer` and `no-store`, plus `Server-Timing` with the time it took.
//!
//! Pages live in [`pages`], the diff in [`diff`], what a version holds in [`state_view`]; every
//! read and write of storage goes through [`data`].

// A refusal here is a whole page (`Response`) returned early; boxing it buys nothing on a path that
// renders HTML anyway.
#![allow(clippy::result_large_err)]

mod data;
pub mod diff;
pub mod form_token;
mod format;
mod pages;
pub mod session;
pub mod state_view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};

use crate::auth::{Permission, Principal};
use crate::error::ServerError;
use crate::state_path::{percent_encode as encode, StatePath};
use crate::App;

/// The key providers of each (state, version) already read.
type ProviderCache = HashMap<(StatePath, u64), Arc<[String]>>;

/// Most (state, version) entries in the key-provider cache; it is emptied when full.
pub const MAX_CACHED_PROVIDERS: usize = 10_000;

/// The console's own state: signed-in sessions, the key of anonymous forms' tokens, and the key
/// providers of versions already read (versions never change, so what their envelope says is
/// read once).
#[derive(Debug, Default)]
pub struct Console {
    pub sessions: session::Sessions,
    pub forms: form_token::FormKey,
    providers: Mutex<ProviderCache>,
}

impl Console {
    fn cached_providers(&self, path: &StatePath, seq: u64) -> Option<Arc<[String]>> {
        self.providers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(path.clone(), seq))
            .cloned()
    }

    fn remember_providers(&self, path: &StatePath, seq: u64, p: Vec<String>) -> Arc<[String]> {
        let p: Arc<[String]> = p.into();
        let mut cache = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_PROVIDERS {
            cache.clear();
        }
        cache.insert((path.clone(), seq), p.clone());
        p
    }
}

const STYLE: &str = include_str!("console.css");

/// What the console says wherever it masks something (issue 17, I1).
pub const READ_GRANT_MEANS: &str = "A read grant on a state means: may read every secret in that state. The API answers the whole state, sensitive values included, to anyone with read; the console masks sensitive outputs for viewers without admin as a convenience, not as access control.";

/// The `/ui` routes.
pub fn routes() -> Router<crate::app::Shared> {
    Router::new()
        .route("/ui", get(pages::home))
        .route("/ui/", get(pages::home))
        .route("/ui/console.css", get(style))
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/states", get(pages::states))
        .route("/ui/locks", get(pages::locks))
        .route("/ui/state/{*path}", get(pages::state))
        .route("/ui/reveal/{*path}", post(pages::reveal))
        .route(
            "/ui/unlock/{*path}",
            get(pages::unlock_confirm).post(pages::unlock),
        )
        .route(
            "/ui/rollback/{*path}",
            get(pages::rollback_confirm).post(pages::rollback),
        )
        .layer(axum::middleware::from_fn(headers))
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// The security headers on every console answer, and how long it took.
async fn headers(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (k, v) in fixed {
        h.insert(k, HeaderValue::from_static(v));
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        h.insert("server-timing", v);
    }
    r
}

/// Who is looking, through which session.
#[derive(Debug)]
pub struct Viewer {
    /// `None` on a server without an `auth` block.
    pub who: Option<Principal>,
    /// The CSRF token this page's forms carry.
    pub csrf: String,
    /// The token a form of this request must carry (`None`: no form is accepted).
    accepted_csrf: Option<String>,
    /// A form cookie to set (a visitor without a session whose cookie is new).
    new_form_cookie: Option<String>,
    /// The signed-in session.
    session_id: Option<String>,
}

impl Viewer {
    /// True when the viewer has `p` on `path` (always, without an `auth` block).
    pub fn can(&self, app: &App, path: &StatePath, p: Permission) -> bool {
        match (&app.auth, &self.who) {
            (None, _) => true,
            (Some(auth), Some(who)) => auth.allows(who, path, p),
            (Some(_), None) => false,
        }
    }

    /// The user, for log lines: "anonymous" on a server without `auth`.
    fn name(&self) -> &str {
        self.who.as_ref().map_or("anonymous", |p| p.0.as_str())
    }
}

/// The signed-in session of a request, with its id.
fn signed_in(app: &App, headers: &HeaderMap) -> Option<(String, session::Session)> {
    session::cookie_id(headers)
        .and_then(|id| app.console.sessions.get(&id).map(|s| (id, s)))
        .filter(|(_, s)| s.user.is_some())
}

/// The viewer of a request: its signed-in session, or (on a server without `auth`) an
/// anonymous visitor with a stateless form token. With `auth` and no signed-in session: a
/// redirect to the sign-in form.
fn viewer(app: &App, headers: &HeaderMap) -> Result<Viewer, Response> {
    if let Some((id, s)) = signed_in(app, headers) {
        return Ok(Viewer {
            who: s.user.map(Principal::named),
            accepted_csrf: Some(s.csrf.clone()),
            csrf: s.csrf,
            new_form_cookie: None,
            session_id: Some(id),
        });
    }
    if app.auth.is_some() {
        return Err(see_other("/ui/login"));
    }
    let issued = app.console.forms.issue(headers);
    Ok(Viewer {
        who: None,
        csrf: issued.csrf,
        accepted_csrf: app.console.forms.current(headers),
        new_form_cookie: issued.new_cookie,
        session_id: None,
    })
}

/// Refuses a state-changing request whose form lacks the session's (or, without a session, the
/// form cookie's) CSRF token.
fn check_csrf(viewer: &Viewer, form: &str) -> Result<(), Response> {
    let sent = crate::state_path::query_value(Some(form), "csrf").unwrap_or_default();
    if viewer
        .accepted_csrf
        .as_deref()
        .is_some_and(|want| session::same_token(&sent, want))
    {
        Ok(())
    } else {
        tracing::info!(
            user = viewer.name(),
            "console: a form without its CSRF token was refused"
        );
        Err(error_page(
            viewer,
            StatusCode::FORBIDDEN,
            "This form is missing its security token (or it expired). Reload the page and try again; nothing was changed.",
        ))
    }
}

/// 303 to `to`.
fn see_other(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .body(Body::empty())
        .expect("a valid response")
}

/// An HTML page, setting the form cookie when this request started one.
fn page(app: &App, viewer: &Viewer, status: StatusCode, title: &str, body: Markup) -> Response {
    let mut r = html_response(status, layout(title, Some(viewer), body));
    if let Some(c) = &viewer.new_form_cookie {
        set_form_cookie(app, &mut r, c);
    }
    r
}

fn html_response(status: StatusCode, m: Markup) -> Response {
    let mut r = (status, m.into_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn set_cookie(app: &App, r: &mut Response, id: Option<&str>) {
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(id, app.tls.is_some())) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn set_form_cookie(app: &App, r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(&form_token::set_cookie(value, app.tls.is_some())) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn error_page(viewer: &Viewer, status: StatusCode, message: &str) -> Response {
    html_response(
        status,
        layout(
            status.canonical_reason().unwrap_or("Error"),
            Some(viewer),
            html! { p.error { (message) } },
        ),
    )
}

/// A refusal or failure of a state operation, as a page chosen by variant.
fn failure_page(viewer: &Viewer, e: &ServerError) -> Response {
    match e {
        ServerError::Locked(h) => error_page(
            viewer,
            StatusCode::LOCKED,
            &format!(
                "The state is locked by {} ({}): nothing was written. Try again when the lock is free.",
                h.who, h.operation
            ),
        ),
        _ => {
            let mut r = error_page(viewer, e.status(), &e.public_message());
            if let Some(v) = e
                .retry_after()
                .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

/// The frame of every page.
fn layout(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · stateseal" }
                link rel="stylesheet" href="/ui/console.css";
            }
            body {
                header {
                    a.brand href="/ui/states" { "stateseal" }
                    @if let Some(v) = viewer {
                        nav {
                            a href="/ui/states" { "States" }
                            a href="/ui/locks" { "Locks" }
                        }
                        @if let Some(who) = &v.who {
                            form.signout method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                span.who { (who.0) }
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The console URL of a state page (`kind`: `state`, `unlock`, `rollback`, `reveal`).
fn state_url(kind: &str, path: &StatePath) -> String {
    format!(
        "/ui/{kind}/{}",
        path.encoded_segments().collect::<Vec<_>>().join("/")
    )
}
