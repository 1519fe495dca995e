//! The states page: every state the viewer may read, sortable, with its newest version and lock.

#[allow(clippy::wildcard_imports)]
use super::*;

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

/// How many states a page of the console shows unless `max_keys` says otherwise.
const PAGE_SIZE: usize = 500;

/// `GET /ui/states[?prefix=P&sort=COLUMN&dir=asc|desc&max_keys=N&continuation_token=T]`: a page
/// of states (500 unless `max_keys` says otherwise) in path order, sorted by a column within
/// the page.
pub async fn states(State(app): AppState, uri: Uri, headers: HeaderMap) -> Response {
    let v = or_return!(viewer(&app, &headers));
    let q = uri.query();
    let prefix = query_value(q, "prefix").unwrap_or_default();
    let sort = query_value(q, "sort").unwrap_or_else(|| "path".into());
    let desc = query_value(q, "dir").as_deref() == Some("desc");
    let wanted = match page_from_query(q) {
        Ok(p) => Page {
            limit: p.limit.or(Some(PAGE_SIZE)),
            ..p
        },
        Err(e) => return error_page(&v, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let listed = match list_states(
        app.states(),
        app.auth.as_deref(),
        prefix.clone(),
        &wanted,
        v.who.as_ref(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return failure_page(&v, &e),
    };
    let mut rows = Vec::with_capacity(listed.rows.len());
    for s in listed.rows {
        let providers = match (&s.current, s.providers) {
            (Some(_), Some(read)) => read,
            (Some(c), None) => providers(&app, &s.path, c).await,
            (None, _) => Arc::from([]),
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
    let size_param = match wanted.limit {
        Some(n) if n != PAGE_SIZE => format!("&max_keys={n}"),
        _ => String::new(),
    };
    let this_page = match &wanted.after {
        Some(a) => format!("{size_param}&continuation_token={}", continuation_token(a)),
        None => size_param.clone(),
    };
    let header_link = |col: &str| {
        let dir = if col == sort && !desc { "desc" } else { "asc" };
        format!(
            "/ui/states?prefix={}&sort={col}&dir={dir}{this_page}",
            encode(&prefix)
        )
    };
    let dir = if desc { "desc" } else { "asc" };
    let next_link = listed.next.as_ref().map(|last| {
        format!(
            "/ui/states?prefix={}&sort={sort}&dir={dir}{size_param}&continuation_token={}",
            encode(&prefix),
            continuation_token(last)
        )
    });
    let first_link = wanted.after.as_ref().map(|_| {
        format!(
            "/ui/states?prefix={}&sort={sort}&dir={dir}{size_param}",
            encode(&prefix)
        )
    });
    let body = html! {
        form.filter method="get" action="/ui/states" {
            label { "Path prefix " input name="prefix" value=(prefix); }
            input type="hidden" name="sort" value=(sort);
            input type="hidden" name="dir" value=(if desc { "desc" } else { "asc" });
            button type="submit" { "Filter" }
        }
        p.count {
            (rows.len()) (if rows.len() == 1 { " state" } else { " states" })
            @if first_link.is_some() || next_link.is_some() { " on this page (sorted within it)" }
        }
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
                                    td.when { (when(&c.time)) }
                                    td { (encryption(c)) }
                                }
                                None => { td.muted colspan="5" { "deleted" } }
                            }
                            td { (r.providers.join(", ")) }
                            td { @if let Some(l) = &r.lock { (l.who) } }
                            td.age { @if let Some(a) = r.lock_age { (age(a)) } }
                        }
                    }
                }
            }
        }
        @if first_link.is_some() || next_link.is_some() {
            nav.pages {
                @if let Some(l) = &first_link { a href=(l) { "← First page" } }
                @if let Some(l) = &next_link { a rel="next" href=(l) { "Next page →" } }
            }
        }
    };
    page(&app, &v, StatusCode::OK, "States", body)
}
