//! Sign-in and sign-out: the form, the password check (throttled, bounded) and the session.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `GET /ui/login`: the sign-in form, with a stateless CSRF token (nothing is kept on the
/// server for a visitor who has not signed in).
pub async fn login_form(State(app): AppState, headers: HeaderMap) -> Response {
    if app.auth.is_none() || signed_in(&app, &headers).is_some() {
        return see_other("/ui/states");
    }
    let issued = app.console.forms.issue(&headers);
    let mut r = login_page(&issued.csrf, StatusCode::OK, None);
    if let Some(c) = &issued.new_cookie {
        set_form_cookie(&app, &mut r, c);
    }
    r
}

fn login_page(csrf: &str, status: StatusCode, error: Option<&str>) -> Response {
    html_response(
        status,
        layout(
            "Sign in",
            None,
            html! {
                @if let Some(e) = error { p.error { (e) } }
                form.login method="post" action="/ui/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "User" input name="user" autocomplete="username" required; }
                    label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                    button type="submit" { "Sign in" }
                }
                p.notice { (crate::ui::READ_GRANT_MEANS) }
            },
        ),
    )
}

/// `POST /ui/login`: checks the user's password as the API checks Basic credentials (same
/// back-off per address and user name, same bound on concurrent checks), then starts a
/// signed-in session (replacing any session the browser had).
pub async fn login(
    State(app): AppState,
    client: ClientAddr,
    headers: HeaderMap,
    form: String,
) -> Response {
    if app.auth.is_none() {
        return see_other("/ui/states");
    }
    let sent = query_value(Some(&form), "csrf").unwrap_or_default();
    let issued = app.console.forms.issue(&headers);
    let refused = |status: StatusCode, message: &str, retry_after: Option<u64>| {
        let mut r = login_page(&issued.csrf, status, Some(message));
        if let Some(c) = &issued.new_cookie {
            set_form_cookie(&app, &mut r, c);
        }
        if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    };
    if !app.console.forms.check(&headers, &sent) {
        tracing::info!(client = %client, "console: a sign-in form without its CSRF token was refused");
        return refused(
            StatusCode::FORBIDDEN,
            "The sign-in form expired or was not sent from this page; sign in again.",
            None,
        );
    }
    let user = query_value(Some(&form), "user").unwrap_or_default();
    let password = query_value(Some(&form), "password").unwrap_or_default();
    match check_password(app.auth.as_deref(), client, &user, &password).await {
        Ok(Principal(name, _)) => {
            tracing::info!(user = %name, client = %client, "console: signed in");
            if let Some(old) = crate::ui::session::cookie_id(&headers) {
                app.console.sessions.end(&old);
            }
            let (id, _) = app.console.sessions.start(Some(name));
            let mut r = see_other("/ui/states");
            set_cookie(&app, &mut r, Some(&id));
            r
        }
        Err(d) => {
            let message = match d.status {
                StatusCode::TOO_MANY_REQUESTS => format!(
                    "Too many failed sign-ins from this address or for this user: try again in {} s.",
                    d.retry_after.unwrap_or(1)
                ),
                StatusCode::SERVICE_UNAVAILABLE => {
                    "The server is busy checking other sign-ins: try again in a moment.".into()
                }
                _ => "Invalid user name or password.".into(),
            };
            refused(d.status, &message, d.retry_after)
        }
    }
}

/// `POST /ui/logout`.
pub async fn logout(State(app): AppState, headers: HeaderMap, form: String) -> Response {
    let v = or_return!(viewer(&app, &headers));
    or_return!(check_csrf(&v, &form));
    if let Some(id) = &v.session_id {
        app.console.sessions.end(id);
    }
    let mut r = see_other(if app.auth.is_some() {
        "/ui/login"
    } else {
        "/ui/states"
    });
    set_cookie(&app, &mut r, None);
    r
}
