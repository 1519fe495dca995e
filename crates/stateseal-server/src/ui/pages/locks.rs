//! The locks page: every held lock the viewer may see, with its holder and age.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `GET /ui/locks`: every held lock the viewer may read.
pub async fn locks(State(app): AppState, uri: Uri, headers: HeaderMap) -> Response {
    let v = or_return!(viewer(&app, &headers));
    let prefix = query_value(uri.query(), "prefix").unwrap_or_default();
    let every = Page::default();
    let listed = match list_states(
        app.states(),
        app.auth.as_deref(),
        prefix,
        &every,
        v.who.as_ref(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return failure_page(&v, &e),
    };
    let held: Vec<_> = listed
        .rows
        .into_iter()
        .filter_map(|s| s.lock.map(|l| (s.path, l)))
        .collect();
    let body = html! {
        @if held.is_empty() { p { "No state is locked." } }
        @else {
            div.scroll { table.locks {
                thead { tr { th { "Path" } th { "Holder" } th { "Operation" } th { "Age" } th { "Lock ID" } th {} } }
                tbody {
                    @for (path, l) in &held {
                        tr {
                            td { a href=(state_url("state", path)) { (path.as_str()) } }
                            td { (l.who) }
                            td { (l.operation) }
                            td { (age(seconds_since(&l.created.rfc3339_nano()))) }
                            td.mono { (l.id) }
                            td { @if v.can(&app, path, Permission::Admin) {
                                a.button.danger href=(state_url("unlock", path)) { "Force unlock…" }
                            } }
                        }
                    }
                }
            } }
        }
    };
    page(&app, &v, StatusCode::OK, "Locks", body)
}
