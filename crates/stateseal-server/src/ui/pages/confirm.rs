//! The confirmation pages and forms of force-unlock and rollback.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `GET /ui/unlock/<path>` (`admin`): who holds the lock you are about to break.
pub async fn unlock_confirm(State(app): AppState, uri: Uri, headers: HeaderMap) -> Response {
    let (v, path) = or_return!(state_request(
        &app,
        &headers,
        &uri,
        "/ui/unlock/",
        Permission::Admin
    ));
    let holder = data::lock_holder(&app, &path).await;
    let body = match holder {
        Err(e) => return failure_page(&v, &e),
        Ok(None) => {
            html! { p { "The state is not locked." } p { a href=(state_url("state", &path)) { "Back to the state" } } }
        }
        Ok(Some(h)) => html! {
            p.notice { "Force-unlocking breaks this lock. If its holder is still running, it may then write a state that another run overwrites. Break it only when you are sure the holder is gone." }
            (holder_table(&h))
            form method="post" action=(state_url("unlock", &path)) {
                input type="hidden" name="csrf" value=(v.csrf);
                input type="hidden" name="id" value=(h.id);
                button.danger type="submit" { "Force unlock" }
                " "
                a href=(state_url("state", &path)) { "Cancel" }
            }
        },
    };
    page(
        &app,
        &v,
        StatusCode::OK,
        &format!("Force unlock {path}"),
        body,
    )
}

/// `POST /ui/unlock/<path>` (`admin`, form: `csrf`, `id`): releases the lock only if it is
/// still the one the confirmation page showed.
pub async fn unlock(State(app): AppState, uri: Uri, headers: HeaderMap, form: String) -> Response {
    let (v, path) = or_return!(form_request(
        &app,
        &headers,
        &uri,
        "/ui/unlock/",
        Permission::Admin,
        &form
    ));
    let id = query_value(Some(&form), "id").unwrap_or_default();
    match data::break_lock(&app, &path, id).await {
        Ok(released) => {
            if let Some(h) = released {
                tracing::warn!(user = v.name(), path = %path, lock_id = %h.id, holder = %h.who, "console: force-unlock");
            }
            see_other("/ui/locks")
        }
        // Another lock holds it now: only the lock the page showed is broken.
        Err(ServerError::Locked(h)) => error_page(
            &v,
            StatusCode::CONFLICT,
            &format!(
                "The lock changed since the confirmation page: it is now held by {} (ID {}); nothing was released.",
                h.who, h.id
            ),
        ),
        Err(e) => failure_page(&v, &e),
    }
}

/// `GET /ui/rollback/<path>?seq=N` (`admin`).
pub async fn rollback_confirm(State(app): AppState, uri: Uri, headers: HeaderMap) -> Response {
    let (v, path) = or_return!(state_request(
        &app,
        &headers,
        &uri,
        "/ui/rollback/",
        Permission::Admin
    ));
    let Some(n) = query_value(uri.query(), "seq").and_then(|s| s.parse::<u64>().ok()) else {
        return error_page(
            &v,
            StatusCode::BAD_REQUEST,
            "Which version? ?seq=N is missing.",
        );
    };
    let versions = match data::versions(&app, &path).await {
        Ok(v) => v,
        Err(e) => return failure_page(&v, &e),
    };
    let current = versions.first().filter(|c| c.stored != Stored::Deleted);
    let Some(target) = versions
        .iter()
        .find(|r| r.seq == n && r.stored != Stored::Deleted)
    else {
        return error_page(
            &v,
            StatusCode::NOT_FOUND,
            &format!("There is no version {n}."),
        );
    };
    let body = html! {
        p { "Rolling back writes version " (target.seq) " (serial " (target.serial) ", written " (when(&target.time)) " by " (target.who) ") again as a new version, with the serial above the current one"
            @if let Some(c) = &current { " (" (c.serial) ")" }
            ". Nothing is deleted: every version stays." }
        form method="post" action=(state_url("rollback", &path)) {
            input type="hidden" name="csrf" value=(v.csrf);
            input type="hidden" name="seq" value=(target.seq);
            button.danger type="submit" { "Roll back to version " (target.seq) }
            " "
            a href=(state_url("state", &path)) { "Cancel" }
        }
    };
    page(&app, &v, StatusCode::OK, &format!("Roll back {path}"), body)
}

/// `POST /ui/rollback/<path>` (`admin`, form: `csrf`, `seq`): as `POST /v1/rollback`.
pub async fn rollback(
    State(app): AppState,
    uri: Uri,
    headers: HeaderMap,
    form: String,
) -> Response {
    let (v, path) = or_return!(form_request(
        &app,
        &headers,
        &uri,
        "/ui/rollback/",
        Permission::Admin,
        &form
    ));
    let Some(n) = query_value(Some(&form), "seq").and_then(|s| s.parse::<u64>().ok()) else {
        return error_page(
            &v,
            StatusCode::BAD_REQUEST,
            "Which version? seq is missing.",
        );
    };
    let user = v.who.as_ref().map(|p| p.0.clone());
    match data::roll_back(&app, &path, n, user).await {
        Ok(_) => see_other(&state_url("state", &path)),
        Err(e) => failure_page(&v, &e),
    }
}
