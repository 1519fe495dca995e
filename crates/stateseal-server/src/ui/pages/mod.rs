//! The console's pages, one file each: sign-in ([`login`]), the states ([`states`]), one state
//! with its versions, outputs, diff and lock ([`state`]), the locks ([`locks`]), and the
//! confirmation pages and forms of force-unlock and rollback ([`confirm`]). What they share is
//! here.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;
use stateseal_store::LockInfo;

use super::data;
use super::diff::{diff, Change, Diff, ValueChange};
use super::format::{age, encryption, seconds_since, size, when};
use super::state_view::{is_encrypted, key_providers, open_version, outputs, Opened};
use super::{
    check_csrf, encode, error_page, failure_page, html_response, layout, page, see_other,
    set_cookie, set_form_cookie, signed_in, state_url, viewer, Viewer,
};
use crate::api::{continuation_token, list_states, page_from_query};
use crate::auth::{check_password, Permission, Principal};
use crate::connections::ClientAddr;
use crate::data_dir::{Stored, VersionRecord};
use crate::error::{Missing, ServerError};
use crate::state_path::{query_value, StatePath};
use crate::storage::Page;
use crate::App;

type AppState = State<Arc<App>>;

macro_rules! or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

/// `/ui`: the states.
pub async fn home() -> Response {
    see_other("/ui/states")
}

// ---------------------------------------------------------------- shared bits

/// The key providers of a version, read from its envelope once and then remembered.
async fn providers(app: &Arc<App>, path: &StatePath, r: &VersionRecord) -> Arc<[String]> {
    if !is_encrypted(r) {
        return Arc::from([]);
    }
    if let Some(p) = app.console.cached_providers(path, r.seq) {
        return p;
    }
    let found = data::stored(app, path, r.seq)
        .await
        .map(|b| key_providers(&b))
        .unwrap_or_default();
    app.console.remember_providers(path, r.seq, found)
}

fn path_from(uri: &Uri, prefix: &str) -> Result<StatePath, String> {
    let raw = uri.path().strip_prefix(prefix).unwrap_or_default();
    StatePath::parse(raw).map_err(|e| e.to_string())
}

/// The viewer and the path of a page about one state, refused unless the viewer has `needs`
/// on it. A path the viewer may not read is answered like a path that does not exist.
fn state_request(
    app: &App,
    headers: &HeaderMap,
    uri: &Uri,
    prefix: &str,
    needs: Permission,
) -> Result<(Viewer, StatePath), Response> {
    let v = viewer(app, headers)?;
    let path = match path_from(uri, prefix) {
        Ok(p) => p,
        Err(e) => return Err(error_page(&v, StatusCode::BAD_REQUEST, &e)),
    };
    if !v.can(app, &path, Permission::Read) {
        return Err(not_found(&v));
    }
    if !v.can(app, &path, needs) {
        tracing::info!(user = v.name(), path = %path, ?needs, "console: denied: no grant");
        return Err(error_page(
            &v,
            StatusCode::FORBIDDEN,
            &format!("You have no {needs:?} grant on {path}.").to_lowercase(),
        ));
    }
    Ok((v, path))
}

/// [`state_request`] for a form that changes something: also refused without its CSRF token.
fn form_request(
    app: &App,
    headers: &HeaderMap,
    uri: &Uri,
    prefix: &str,
    needs: Permission,
    form: &str,
) -> Result<(Viewer, StatePath), Response> {
    let (v, path) = state_request(app, headers, uri, prefix, needs)?;
    check_csrf(&v, form)?;
    Ok((v, path))
}

fn not_found(v: &Viewer) -> Response {
    error_page(
        v,
        StatusCode::NOT_FOUND,
        "There is no such state (or you have no grant on it).",
    )
}

fn holder_table(h: &LockInfo) -> Markup {
    let created = h.created.rfc3339_nano();
    html! {
        table.holder {
            tr { th { "Who" } td { (h.who) } }
            tr { th { "Operation" } td { (h.operation) } }
            tr { th { "Created" } td { (when(&created)) " (" (age(seconds_since(&created))) " ago)" } }
            tr { th { "Lock ID" } td.mono { (h.id) } }
            @if !h.info.is_empty() { tr { th { "Info" } td { (h.info) } } }
            tr { th { "Client version" } td { (h.version) } }
        }
    }
}

// The pages (after `or_return!`, which they use).
mod confirm;
mod locks;
mod login;
mod state;
mod states;

pub use confirm::{rollback, rollback_confirm, unlock, unlock_confirm};
pub use locks::locks;
pub use login::{login, login_form, logout};
pub use state::{reveal, state};
pub use states::states;
