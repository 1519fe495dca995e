//! The console's pages: sign-in, the states, one state (versions, outputs, diff, lock), the
//! locks, and the confirmation pages and forms of force-unlock and rollback.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;
use stateseal_store::lock_info::GoTime;
use stateseal_store::LockInfo;

use super::data;
use super::diff::{diff, Change, Diff, ValueChange};
use super::state_view::{is_encrypted, key_providers, open_version, outputs, Opened};
use super::{
    check_csrf, encode, error_page, failure_page, html_response, layout, page, see_other,
    set_cookie, set_form_cookie, signed_in, state_url, viewer, Viewer,
};
use crate::auth::{check_password, Permission, Principal};
use crate::connections::ClientAddr;
use crate::data_dir::{Stored, VersionRecord};
use crate::error::{Missing, ServerError};
use crate::state_path::{query_value, StatePath};
use crate::api::list_states;
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

// ---------------------------------------------------------------- sign-in

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
                p.notice { (super::READ_GRANT_MEANS) }
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
    match check_password(app.auth.as_ref(), client, &user, &password).await {
        Ok(Principal(name)) => {
            tracing::info!(user = %name, client = %client, "console: signed in");
            if let Some(old) = super::session::cookie_id(&headers) {
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

fn when(t: &str) -> String {
    match t.get(..19) {
        Some(s) => format!("{} UTC", s.replace('T', " ")),
        None => t.to_string(),
    }
}

/// Seconds since an RFC 3339 time (0 when unreadable).
fn seconds_since(t: &str) -> i64 {
    GoTime::parse_rfc3339(t).map_or(0, |g| (GoTime::now().unix - g.unix).max(0))
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

fn size(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}

fn encryption(r: &VersionRecord) -> &'static str {
    match r.stored {
        Stored::ServerEncrypted => "yes (server)",
        Stored::ClientEnvelope => "yes (client)",
        Stored::DirectEnvelope => "yes (written directly)",
        Stored::Plaintext => "no",
        Stored::Deleted => "",
    }
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

// ---------------------------------------------------------------- states

struct Row {
    path: StatePath,
    current: Option<VersionRecord>,
    providers: Arc<[String]>,
    lock: Option<LockInfo>,
    lock_age: Option<i64>,
}

const COLUMNS: [(&str, &str); 9] = [
    ("path", "Path"),
    ("serial", "Serial"),
    ("size", "Size"),
    ("who", "Last write by"),
    ("when", "Last write"),
    ("encrypted", "Encrypted"),
    ("keys", "Key providers"),
    ("lock", "Lock holder"),
    ("age", "Lock age"),
];

fn sort_rows(rows: &mut [Row], by: &str, desc: bool) {
    match by {
        "serial" => rows.sort_by_key(|r| r.current.as_ref().map(|c| c.serial)),
        "size" => rows.sort_by_key(|r| r.current.as_ref().map(|c| c.size)),
        "who" => rows.sort_by(|a, b| {
            let who = |r: &Row| r.current.as_ref().map(|c| c.who.clone());
            who(a).cmp(&who(b))
        }),
        "when" => rows.sort_by(|a, b| {
            let t = |r: &Row| r.current.as_ref().map(|c| c.time.clone());
            t(a).cmp(&t(b))
        }),
        "encrypted" => rows.sort_by_key(|r| r.current.as_ref().map(encryption)),
        "keys" => rows.sort_by(|a, b| a.providers.cmp(&b.providers)),
        "lock" => rows.sort_by(|a, b| {
            let who = |r: &Row| r.lock.as_ref().map(|l| l.who.clone());
            who(a).cmp(&who(b))
        }),
        "age" => rows.sort_by_key(|r| r.lock_age),
        _ => {} // by path: already sorted
    }
    if desc {
        rows.reverse();
    }
}

/// `GET /ui/states[?prefix=P&sort=COLUMN&dir=asc|desc]`.
pub async fn states(State(app): AppState, uri: Uri, headers: HeaderMap) -> Response {
    let v = or_return!(viewer(&app, &headers));
    let q = uri.query();
    let prefix = query_value(q, "prefix").unwrap_or_default();
    let sort = query_value(q, "sort").unwrap_or_else(|| "path".into());
    let desc = query_value(q, "dir").as_deref() == Some("desc");
    let listed = match list_states(&app, prefix.clone(), v.who.as_ref()).await {
        Ok(r) => r,
        Err(e) => return failure_page(&v, &e),
    };
    let mut rows = Vec::with_capacity(listed.len());
    for s in listed {
        let providers = match &s.current {
            Some(c) => providers(&app, &s.path, c).await,
            None => Arc::from([]),
        };
        let lock_age = s
            .lock
            .as_ref()
            .map(|l| seconds_since(&l.created.rfc3339_nano()));
        rows.push(Row {
            path: s.path,
            current: s.current,
            providers,
            lock: s.lock,
            lock_age,
        });
    }
    sort_rows(&mut rows, &sort, desc);
    let header_link = |col: &str| {
        let dir = if col == sort && !desc { "desc" } else { "asc" };
        format!("/ui/states?prefix={}&sort={col}&dir={dir}", encode(&prefix))
    };
    let body = html! {
        form.filter method="get" action="/ui/states" {
            label { "Path prefix " input name="prefix" value=(prefix); }
            input type="hidden" name="sort" value=(sort);
            input type="hidden" name="dir" value=(if desc { "desc" } else { "asc" });
            button type="submit" { "Filter" }
        }
        p.count { (rows.len()) (if rows.len() == 1 { " state" } else { " states" }) }
        div.scroll {
            table.states {
                thead { tr {
                    @for (col, label) in COLUMNS {
                        th { a href=(header_link(col)) { (label)
                            @if col == sort { (if desc { " ▼" } else { " ▲" }) }
                        } }
                    }
                } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { a href=(state_url("state", &r.path)) { (r.path.as_str()) } }
                            @match &r.current {
                                Some(c) => {
                                    td.num { (c.serial) }
                                    td.num { (size(c.size)) }
                                    td { (c.who) }
                                    td { (when(&c.time)) }
                                    td { (encryption(c)) }
                                }
                                None => { td.muted colspan="5" { "deleted" } }
                            }
                            td { (r.providers.join(", ")) }
                            td { @if let Some(l) = &r.lock { (l.who) } }
                            td { @if let Some(a) = r.lock_age { (age(a)) } }
                        }
                    }
                }
            }
        }
    };
    page(&app, &v, StatusCode::OK, "States", body)
}

// ---------------------------------------------------------------- one state

/// What one state page shows, read with the state's slot held.
struct StatePage {
    versions: Vec<(VersionRecord, Arc<[String]>)>,
    lock: Option<LockInfo>,
    current: Option<Result<Opened, ServerError>>,
    compared: Option<(u64, u64, Result<Diff, String>)>,
}

async fn read_state_page(
    app: &Arc<App>,
    path: &StatePath,
    compare: Option<(u64, u64)>,
) -> Result<StatePage, ServerError> {
    let records = data::versions(app, path).await?;
    if records.is_empty() {
        return Err(ServerError::NotFound(Missing::State));
    }
    let mut versions = Vec::with_capacity(records.len());
    for r in records {
        let p = providers(app, path, &r).await;
        versions.push((r, p));
    }
    let current = match versions.first() {
        Some((c, _)) if c.stored != Stored::Deleted => {
            Some(open_version(app, path, c.seq).await.map(|(_, o)| o))
        }
        _ => None,
    };
    let compared = match compare {
        None => None,
        Some((a, b)) => {
            let d = match (side(app, path, a).await, side(app, path, b).await) {
                (Ok(x), Ok(y)) => Ok(diff(&x, &y)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            Some((a, b, d))
        }
    };
    Ok(StatePage {
        versions,
        lock: data::lock_holder(app, path).await?,
        current,
        compared,
    })
}

/// One side of a diff: the state of version `n`, or why it can't be compared.
async fn side(app: &Arc<App>, path: &StatePath, n: u64) -> Result<Value, String> {
    match open_version(app, path, n).await {
        Ok((_, Opened::State(s))) => Ok(s),
        Ok((_, Opened::Envelope { .. })) => Err(format!(
            "Version {n} was encrypted by its client with a key this server does not have, so it can't be compared."
        )),
        Err(e) => Err(e.public_message()),
    }
}

/// `GET /ui/state/<path>[?from=N&to=M]`.
pub async fn state(State(app): AppState, uri: Uri, headers: HeaderMap) -> Response {
    let (v, path) = or_return!(state_request(
        &app,
        &headers,
        &uri,
        "/ui/state/",
        Permission::Read
    ));
    let num = |k| query_value(uri.query(), k).and_then(|s| s.parse::<u64>().ok());
    let compare = num("from").zip(num("to"));
    render_state(&app, v, path, compare, None).await
}

/// `POST /ui/reveal/<path>` (`admin`): the state page with one sensitive output shown. Each
/// reveal is logged, without the value.
pub async fn reveal(State(app): AppState, uri: Uri, headers: HeaderMap, form: String) -> Response {
    let (v, path) = or_return!(form_request(
        &app,
        &headers,
        &uri,
        "/ui/reveal/",
        Permission::Admin,
        &form
    ));
    let output = query_value(Some(&form), "output").unwrap_or_default();
    tracing::warn!(user = v.name(), path = %path, output = %output, "console: a sensitive output was revealed");
    render_state(&app, v, path, None, Some(output)).await
}

async fn render_state(
    app: &Arc<App>,
    v: Viewer,
    path: StatePath,
    compare: Option<(u64, u64)>,
    revealed: Option<String>,
) -> Response {
    let data = match read_state_page(app, &path, compare).await {
        Ok(d) => d,
        Err(ServerError::NotFound(_)) => return not_found(&v),
        Err(e) => return failure_page(&v, &e),
    };
    let admin = v.can(app, &path, Permission::Admin);
    let live: Vec<&VersionRecord> = data
        .versions
        .iter()
        .map(|(r, _)| r)
        .filter(|r| r.stored != Stored::Deleted)
        .collect();
    let newest = data.versions.first().map(|(r, _)| r.seq).unwrap_or(0);
    let (from, to) = data.compared.as_ref().map(|(a, b, _)| (*a, *b)).unwrap_or((
        live.get(1).map_or(0, |r| r.seq),
        live.first().map_or(0, |r| r.seq),
    ));
    let body = html! {
        section {
            h2 { "Lock" }
            @match &data.lock {
                None => p { "Not locked." }
                Some(h) => {
                    (holder_table(h))
                    @if admin { p { a.button.danger href=(state_url("unlock", &path)) { "Force unlock…" } } }
                }
            }
        }
        section {
            h2 { "Outputs" }
            @match &data.current {
                None => p.muted { "The newest version is a deletion." }
                Some(Err(e)) => p.error { (e.public_message()) }
                Some(Ok(Opened::Envelope { serial, lineage, providers })) => {
                    p.notice { "This state was encrypted by its client with a key this server does not have: the server can't read its outputs or resources. What its envelope says in plaintext:" }
                    table.holder {
                        tr { th { "Serial" } td { @if let Some(s) = serial { (s) } } }
                        tr { th { "Lineage" } td.mono { (lineage) } }
                        tr { th { "Key providers" } td { (providers.join(", ")) } }
                    }
                }
                Some(Ok(Opened::State(s))) => (outputs_table(&v, &path, s, admin, revealed.as_deref()))
            }
        }
        section {
            h2 { "Versions" }
            div.scroll { table.versions {
                thead { tr { th { "Seq" } th { "Serial" } th { "Lineage" } th { "Size" } th { "Who" } th { "When" } th { "Encrypted" } th { "Key providers" } @if admin { th {} } } }
                tbody {
                    @for (r, p) in &data.versions {
                        tr {
                            td.num { (r.seq) }
                            @if r.stored == Stored::Deleted {
                                td.muted colspan="3" { "deleted" }
                            } @else {
                                td.num { (r.serial) }
                                td.mono { (r.lineage) }
                                td.num { (size(r.size)) }
                            }
                            td { (r.who) }
                            td { (when(&r.time)) }
                            td { (encryption(r)) }
                            td { (p.join(", ")) }
                            @if admin {
                                td { @if r.seq != newest && matches!(r.stored, Stored::ServerEncrypted | Stored::Plaintext) {
                                    a href=(format!("{}?seq={}", state_url("rollback", &path), r.seq)) { "Roll back to this…" }
                                } }
                            }
                        }
                    }
                }
            } }
        }
        section {
            h2 { "Compare versions" }
            @if live.len() < 2 {
                p.muted { "There is only one version." }
            } @else {
                form.compare method="get" action=(format!("{}#diff", state_url("state", &path))) {
                    label { "From " select name="from" { @for r in &live { option value=(r.seq) selected[r.seq == from] { (r.seq) " (serial " (r.serial) ")" } } } }
                    label { " to " select name="to" { @for r in &live { option value=(r.seq) selected[r.seq == to] { (r.seq) " (serial " (r.serial) ")" } } } }
                    button type="submit" { "Compare" }
                }
            }
            @if let Some((a, b, d)) = &data.compared {
                @match d {
                    Err(e) => p.notice { (e) }
                    Ok(d) => (diff_view(*a, *b, d))
                }
            }
        }
    };
    page(app, &v, StatusCode::OK, path.as_str(), body)
}

fn outputs_table(
    v: &Viewer,
    path: &StatePath,
    state: &Value,
    admin: bool,
    revealed: Option<&str>,
) -> Markup {
    let outs = outputs(state);
    html! {
        @if outs.is_empty() { p.muted { "No outputs." } }
        @else {
            div.scroll { table.outputs {
                thead { tr { th { "Name" } th { "Value" } } }
                tbody {
                    @for (name, o) in &outs {
                        tr {
                            td.mono { (name) }
                            td {
                                @if !o.sensitive || (admin && revealed == Some(name.as_str())) {
                                    pre.value { (pretty(&o.value)) }
                                } @else {
                                    span.sensitive { "(sensitive)" }
                                    @if admin {
                                        form.inline method="post" action=(state_url("reveal", path)) {
                                            input type="hidden" name="csrf" value=(v.csrf);
                                            input type="hidden" name="output" value=(name);
                                            button type="submit" { "Reveal" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            @if outs.iter().any(|(_, o)| o.sensitive) { p.notice { (super::READ_GRANT_MEANS) } }
        }
    }
}

/// A value as indented JSON (a string as itself), cut at 4,000 characters.
fn pretty(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    match text.char_indices().nth(4000) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// The diff as `terraform plan` shows one: per resource and output, the changed leaf paths with
/// their old and new values (`~ path: old → new`), added (`+ path = new`) and removed
/// (`- path = old`) ones, and "(sensitive value changed)" for a sensitive leaf. `id="diff"`: the
/// Compare form's action ends in `#diff`, so the browser lands on it.
fn diff_view(a: u64, b: u64, d: &Diff) -> Markup {
    html! {
        div.diff id="diff" {
            h3 { "Version " (a) " → version " (b) }
            @if d.resources.is_empty() && d.outputs.is_empty() { p.muted { "No differences in resources or outputs." } }
            @if !d.resources.is_empty() {
                h4 { "Resources" }
                ul.changes {
                    @for r in &d.resources {
                        li class=(r.change.word()) {
                            span.tag { (r.change.word()) } " " code { (r.address) }
                            @if !r.attributes.is_empty() {
                                ul.leaves { @for c in &r.attributes { (leaf(c)) } }
                            }
                            @if r.more > 0 { p.muted { "… and " (r.more) " more changed values" } }
                        }
                    }
                }
            }
            @if !d.outputs.is_empty() {
                h4 { "Outputs" }
                ul.changes.leaves {
                    @for o in &d.outputs { (leaf(o)) }
                }
                @if d.more_outputs > 0 { p.muted { "… and " (d.more_outputs) " more changed values" } }
            }
        }
    }
}

/// One changed leaf: its path, then its values as the change allows.
fn leaf(c: &ValueChange) -> Markup {
    let absent = String::from("(absent)");
    html! {
        li class=(c.change.word()) {
            span.tag { (c.change.word()) } " " code { (c.name) }
            @if c.sensitive { ": " span.sensitive { "(sensitive value " (c.change.word()) ")" } }
            @else {
                @match c.change {
                    Change::Added => { " = " ins { (c.new.as_ref().unwrap_or(&absent)) } }
                    Change::Removed => { " = " del { (c.old.as_ref().unwrap_or(&absent)) } }
                    Change::Changed => {
                        ": " del { (c.old.as_ref().unwrap_or(&absent)) } " → " ins { (c.new.as_ref().unwrap_or(&absent)) }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- locks

/// `GET /ui/locks`: every held lock the viewer may read.
pub async fn locks(State(app): AppState, uri: Uri, headers: HeaderMap) -> Response {
    let v = or_return!(viewer(&app, &headers));
    let prefix = query_value(uri.query(), "prefix").unwrap_or_default();
    let listed = match list_states(&app, prefix, v.who.as_ref()).await {
        Ok(r) => r,
        Err(e) => return failure_page(&v, &e),
    };
    let held: Vec<_> = listed
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

// ---------------------------------------------------------------- rollback

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
