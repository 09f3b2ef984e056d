//! The folder list and a page of messages, newest first, each with a clear mark of its PEC
//! kind (envelope, each receipt, anomaly, ordinary); search by sender, subject and date;
//! moving and deleting the ticked messages (delete moves to Trash, and empties from Trash).

use super::{App, User, WebError, check_post, form_pairs, kind_label, local_time, page};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use pec_store::{PageQuery, Store};
use serde::Deserialize;

/// Messages per page.
pub const PER_PAGE: u64 = 50;

/// The list's query string.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    f: Option<String>,
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

fn day(s: &Option<String>, name: &str, next: bool) -> Result<Option<i64>, WebError> {
    let Some(s) = s.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        WebError(
            StatusCode::BAD_REQUEST,
            format!("{name}: {s:?} is not a date (YYYY-MM-DD)"),
        )
    })?;
    let d = if next { d.succ_opt().unwrap_or(d) } else { d };
    Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()))
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `From:` field decoded for display.
pub fn display_from(raw: &str) -> String {
    let block = format!("From: {raw}\r\n\r\n");
    mail_parser::MessageParser::new()
        .parse_headers(block.as_bytes())
        .and_then(|m| {
            m.from()
                .and_then(|a| a.first())
                .map(|a| match (a.name(), a.address()) {
                    (Some(n), _) => n.to_string(),
                    (None, Some(a)) => a.to_string(),
                    _ => raw.to_string(),
                })
        })
        .unwrap_or_else(|| raw.to_string())
}

/// The folder list, the current one marked.
pub fn folders_nav(folders: &[pec_store::Folder], current: &str) -> Markup {
    html! {
        ul.folders {
            @for f in folders {
                li {
                    a class=@if f.name == current { "current" } @else { "" } href={ "/mail?f=" (enc(&f.name)) } {
                        span { (f.name) }
                        @if f.unseen > 0 { span.count { (f.unseen) } }
                    }
                }
            }
        }
    }
}

/// `GET /mail`.
pub async fn folder<S: Store>(
    State(app): State<App<S>>,
    user: User,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let f = q.f.clone().unwrap_or_else(|| "INBOX".into());
    let page_no = q.page.unwrap_or(1).max(1);
    let query = PageQuery {
        sender: nonempty(&q.from),
        subject: nonempty(&q.subject),
        since: day(&q.since, "since", false)?,
        before: day(&q.until, "until", true)?,
        identificativo: None,
        uid: None,
        after_uid: None,
        offset: (page_no - 1) * PER_PAGE,
        limit: PER_PAGE,
    };
    let found = app.0.g.store.page(&user.address, &f, &query).await?;
    let pages = found.total.div_ceil(PER_PAGE).max(1);
    let folders = app.0.g.store.folders(&user.address).await?;
    let filter = format!(
        "&from={}&subject={}&since={}&until={}",
        enc(q.from.as_deref().unwrap_or("")),
        enc(q.subject.as_deref().unwrap_or("")),
        enc(q.since.as_deref().unwrap_or("")),
        enc(q.until.as_deref().unwrap_or(""))
    );
    let nav = folders_nav(&folders, &f);
    let body = html! {
        div.layout {
            aside { (nav) }
            section {
                h1 { (f) " " small { "(" (found.total) ")" } }
                form.search method="get" action="/mail" role="search" {
                    input type="hidden" name="f" value=(f);
                    input type="search" name="from" placeholder="Mittente / Sender" value=(q.from.as_deref().unwrap_or("")) aria-label="Mittente / Sender";
                    input type="search" name="subject" placeholder="Oggetto / Subject" value=(q.subject.as_deref().unwrap_or("")) aria-label="Oggetto / Subject";
                    input type="date" name="since" value=(q.since.as_deref().unwrap_or("")) aria-label="Dal / Since";
                    input type="date" name="until" value=(q.until.as_deref().unwrap_or("")) aria-label="Al / Until";
                    button type="submit" { "Cerca / Search" }
                }
                form method="post" action="/mail/action" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    input type="hidden" name="f" value=(f);
                    div.actions {
                        select name="to" aria-label="Cartella / Folder" {
                            @for other in folders.iter().filter(|o| o.name != f) {
                                option value=(other.name) { (other.name) }
                            }
                        }
                        button type="submit" name="action" value="move" { "Sposta / Move" }
                        button type="submit" name="action" value="delete" { "Elimina / Delete" }
                    }
                    table.list {
                        thead { tr { th {} th { "Tipo / Kind" } th { "Da / From" } th { "Oggetto / Subject" } th.date-col { "Data / Date" } th.size { "Dim. / Size" } } }
                        tbody {
                            @for m in &found.messages {
                                @let seen = m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"));
                                tr class=@if seen { "seen" } @else { "unseen" } {
                                    td { input type="checkbox" name="uid" value=(m.meta.uid) aria-label="seleziona / select"; }
                                    td { span class={ "kind " (m.meta.kind) } { (kind_label(&m.meta.kind)) } }
                                    td.from { (display_from(&m.from)) }
                                    td.subject { a href={ "/message?f=" (enc(&f)) "&uid=" (m.meta.uid) } { (m.meta.subject.as_deref().filter(|s| !s.is_empty()).unwrap_or("(senza oggetto / no subject)")) } }
                                    td.date-col { (local_time(&m.meta.date)) }
                                    td.size { (format!("{:.0} KB", (m.meta.size as f64 / 1024.0).ceil())) }
                                }
                            }
                        }
                    }
                    @if found.messages.is_empty() { p { "Nessun messaggio. / No messages." } }
                }
                div.pager {
                    @if page_no > 1 { a href={ "/mail?f=" (enc(&f)) "&page=" (page_no - 1) (filter) } { "‹ Precedenti / Newer" } }
                    span { "Pagina / Page " (page_no) " / " (pages) }
                    @if page_no < pages { a href={ "/mail?f=" (enc(&f)) "&page=" (page_no + 1) (filter) } { "Successivi / Older ›" } }
                }
            }
        }
    };
    Ok(page(StatusCode::OK, &f, Some(&user), body))
}

/// `POST /mail/action`: `action=move` (to `to`) or `delete` the ticked `uid`s of `f`.
pub async fn action<S: Store>(
    State(app): State<App<S>>,
    user: User,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let pairs = form_pairs(&body);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    check_post(&user.csrf, &get("csrf"), &headers)?;
    let folder = get("f");
    let uids: Vec<u32> = pairs
        .iter()
        .filter(|(n, _)| n == "uid")
        .map(|(_, v)| {
            v.parse()
                .map_err(|_| WebError(StatusCode::BAD_REQUEST, format!("bad message number {v:?}")))
        })
        .collect::<Result<_, _>>()?;
    if uids.is_empty() {
        return Err(WebError(
            StatusCode::BAD_REQUEST,
            "no message was selected".into(),
        ));
    }
    let store = &app.0.g.store;
    match get("action").as_str() {
        "move" => {
            let to = get("to");
            if to.is_empty() || to == folder {
                return Err(WebError(
                    StatusCode::BAD_REQUEST,
                    "choose another folder".into(),
                ));
            }
            store
                .copy_messages(&user.address, &folder, &uids, &to, true)
                .await?;
        }
        "delete" if folder == "Trash" => {
            store.delete_messages(&user.address, &folder, &uids).await?;
        }
        "delete" => {
            store
                .copy_messages(&user.address, &folder, &uids, "Trash", true)
                .await?;
        }
        other => {
            return Err(WebError(
                StatusCode::BAD_REQUEST,
                format!("unknown action {other:?}"),
            ));
        }
    }
    Ok(Redirect::to(&format!("/mail?f={}", enc(&folder))).into_response())
}
