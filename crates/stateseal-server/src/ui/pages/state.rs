//! One state's page: versions, outputs (revealed on request), a diff of two versions, the lock.

#[allow(clippy::wildcard_imports)]
use super::*;

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
            @if outs.iter().any(|(_, o)| o.sensitive) { p.notice { (crate::ui::READ_GRANT_MEANS) } }
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
