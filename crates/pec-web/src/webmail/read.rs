//! One message: for a transport envelope the original inside it with its attachments
//! (pec.md §2.3), the certification data of `daticert.xml` in a readable box, the
//! signature verdict with the provider's name, and for a sent message or a receipt the
//! per-recipient timeline of its transaction; downloads of the stored `.eml` and of each
//! attachment.

use super::list::{enc, folders_nav};
use super::{App, CSP_DOWNLOAD, User, WebError, harden, kind_label, local_time, page};
use crate::timeline::{self, Timeline};
use crate::view::MessageView;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use pec_store::{FlagOp, ListedMessage, PageQuery, Store};
use serde::Deserialize;

/// Which message.
#[derive(Deserialize)]
pub struct Which {
    f: String,
    uid: u32,
    #[serde(default)]
    n: Option<usize>,
}

async fn load<S: Store>(
    app: &App<S>,
    user: &User,
    w: &Which,
) -> Result<(ListedMessage, Vec<u8>), WebError> {
    let store = &app.0.g.store;
    let q = PageQuery {
        uid: Some(w.uid),
        limit: 1,
        ..Default::default()
    };
    let meta = store
        .page(&user.address, &w.f, &q)
        .await?
        .messages
        .pop()
        .ok_or_else(|| WebError(StatusCode::NOT_FOUND, "no such message".into()))?;
    let bytes = store
        .message_bytes(&user.address, &w.f, w.uid)
        .await?
        .ok_or_else(|| WebError(StatusCode::NOT_FOUND, "no such message".into()))?;
    Ok((meta, bytes))
}

/// A file name for `Content-Disposition` (RFC 6266): an ASCII fallback and the UTF-8 name.
pub fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        enc(name)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn download(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_DISPOSITION, disposition(name));
    harden(&mut r, CSP_DOWNLOAD);
    r
}

/// `GET /message/eml`: the stored bytes, unchanged.
pub async fn eml<S: Store>(
    State(app): State<App<S>>,
    user: User,
    Query(w): Query<Which>,
) -> Result<Response, WebError> {
    let (meta, bytes) = load(&app, &user, &w).await?;
    let name = format!("{}-{}-{}.eml", meta.meta.kind, w.f.replace('/', "_"), w.uid);
    Ok(download(bytes, "message/rfc822", &name))
}

/// `GET /message/attachment`: one attachment of the shown message, decoded. Always sent as
/// a download (`application/octet-stream`, sandboxed), never rendered in the page's origin.
pub async fn attachment<S: Store>(
    State(app): State<App<S>>,
    user: User,
    Query(w): Query<Which>,
) -> Result<Response, WebError> {
    let (_, bytes) = load(&app, &user, &w).await?;
    let n =
        w.n.ok_or_else(|| WebError(StatusCode::BAD_REQUEST, "which attachment (n)?".into()))?;
    let (name, _, data) = crate::view::attachment(&bytes, n)
        .ok_or_else(|| WebError(StatusCode::NOT_FOUND, "no such attachment".into()))?;
    Ok(download(data, "application/octet-stream", &name))
}

/// The readable box of `daticert.xml`.
fn daticert_box(v: &MessageView) -> Markup {
    let Some(d) = &v.daticert else {
        return html! {};
    };
    html! {
        div.box #daticert {
            h2 { "Dati di certificazione / Certification data (daticert.xml)" }
            dl.facts {
                dt { "Tipo / Type" } dd { (d.tipo) @if d.errore != "nessuno" { " — errore: " (d.errore) } }
                dt { "Mittente / Sender" } dd { (d.mittente) }
                dt { "Destinatari / Recipients" } dd {
                    @for (i, r) in d.destinatari.iter().enumerate() {
                        @if i > 0 { ", " } (r.address) " (" (r.tipo) ")"
                    }
                }
                @if let Some(o) = &d.oggetto { dt { "Oggetto / Subject" } dd { (o) } }
                dt { "Gestore emittente / Issued by" } dd { (d.gestore_emittente) }
                dt { "Data e ora / Date and time" } dd { (d.giorno) " " (d.ora) " (" (d.zona) ")" }
                dt { "Identificativo" } dd { code { (d.identificativo) } }
                @if let Some(m) = &d.msgid { dt { "Message-ID" } dd { code { (m) } } }
                @if let Some(r) = &d.ricevuta { dt { "Ricevuta / Receipt" } dd { (r) } }
                @if let Some(c) = &d.consegna { dt { "Consegna / Delivered to" } dd { (c) } }
                @if let Some(e) = &d.errore_esteso { dt { "Errore / Error" } dd.bad { (e) } }
            }
        }
    }
}

fn signature_box(v: &MessageView) -> Markup {
    let Some(s) = &v.signature else {
        return html! {};
    };
    html! {
        div.box #signature {
            h2 { "Firma del gestore / Provider signature" }
            @if s.valid {
                p.ok { "✔ Firma valida / Valid signature" @if let Some(p) = &s.provider { " — " (p) } }
            } @else if !s.present {
                p.bad { "✘ Messaggio non firmato / Not signed" }
            } @else {
                p.bad { "✘ Firma non valida / Invalid signature" @if let Some(p) = &s.provider { " — " (p) } }
            }
            @if let Some(signer) = &s.signer { p { small { (signer) } } }
            @if !s.valid && !s.problems.is_empty() {
                ul { @for p in &s.problems { li { (p) } } }
            }
        }
    }
}

fn step_label(kind: &str, detail: Option<&str>) -> String {
    match (kind, detail) {
        ("presa-in-carico", _) => {
            "Presa in carico dal gestore del destinatario / Taken in charge".into()
        }
        ("accettazione", _) => "Accettato / Accepted".into(),
        ("non-accettazione", d) => format!("Non accettato / Not accepted: {}", d.unwrap_or("")),
        ("avvenuta-consegna", d) => format!(
            "Consegnato / Delivered (ricevuta {})",
            d.unwrap_or("completa")
        ),
        ("errore-consegna", d) => format!("Non consegnato / Not delivered: {}", d.unwrap_or("")),
        ("preavviso-errore-consegna", d) => format!(
            "Avviso di mancata consegna / Not yet delivered after {}",
            d.unwrap_or("12h")
        ),
        (k, _) => k.to_string(),
    }
}

/// The per-recipient timeline.
pub fn timeline_box(t: &Timeline) -> Markup {
    html! {
        div.box #timeline {
            h2 { "Stato per destinatario / Status per recipient" }
            p {
                "Invio / Submission: "
                span class={ "status " (t.acceptance) } { (t.acceptance) }
                @if let Some(r) = &t.refusal { " — " (r) }
            }
            @for r in &t.recipients {
                div.recipient {
                    strong { (r.address) } " (" (r.tipo) ") — "
                    span class={ "status " (r.status) } { (r.status) }
                    ol.steps {
                        @for s in &r.steps {
                            li {
                                (step_label(&s.kind, s.detail.as_deref()))
                                @if let Some(t) = &s.time { " · " (local_time(t)) }
                                @if let Some(at) = &s.receipt {
                                    " · " a href={ "/message?f=" (enc(&at.folder)) "&uid=" (at.uid) } { "ricevuta / receipt" }
                                }
                            }
                        }
                        @if r.tipo == "esterno" {
                            li { "Indirizzo non PEC: nessuna ricevuta di consegna / Not a PEC address: no delivery receipt" }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /message`.
pub async fn message<S: Store>(
    State(app): State<App<S>>,
    user: User,
    Query(w): Query<Which>,
) -> Result<Response, WebError> {
    let (meta, bytes) = load(&app, &user, &w).await?;
    let g = &app.0.g;
    if !meta.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")) {
        g.store
            .set_flags(
                &user.address,
                &w.f,
                &[w.uid],
                FlagOp::Add,
                &["\\Seen".into()],
                None,
            )
            .await?;
    }
    let report = g.verify_stored(&bytes);
    let v = MessageView::new(&bytes, &report);
    let timeline = match &meta.meta.identificativo {
        Some(id) if meta.meta.folder == "Sent" || pec_store::is_receipt_kind(&meta.meta.kind) => {
            timeline::build(g, &user.address, id).await?
        }
        _ => None,
    };
    let folders = g.store.folders(&user.address).await?;
    let at = format!("f={}&uid={}", enc(&w.f), w.uid);
    let subject = if v.subject.is_empty() {
        meta.meta.subject.clone().unwrap_or_default()
    } else {
        v.subject.clone()
    };
    let body = html! {
        div.layout {
            aside { (folders_nav(&folders, &w.f)) }
            section {
                p { span class={ "kind " (meta.meta.kind) } { (kind_label(&meta.meta.kind)) } }
                h1.subject { (subject) }
                @if v.from_envelope && v.kind == "anomalia" {
                    p.error { "Anomalia: il messaggio qui sotto NON è posta certificata. / Anomaly: the message below is NOT certified mail." }
                } @else if v.from_envelope {
                    p.notice { "Messaggio originale contenuto nella busta di trasporto PEC. / The original message inside the PEC transport envelope." }
                }
                dl.facts {
                    dt { "Da / From" } dd { (v.from) }
                    @if !v.to.is_empty() { dt { "A / To" } dd { (v.to.join(", ")) } }
                    @if !v.cc.is_empty() { dt { "Cc" } dd { (v.cc.join(", ")) } }
                    @if let Some(d) = &v.date { dt { "Data / Date" } dd { (local_time(d)) } }
                }
                div.actions {
                    a.button href={ "/message/eml?" (at) } download { "Scarica .eml / Download .eml" }
                }
                div.box #body {
                    @if let Some(t) = &v.text { pre.text { (t) } }
                    @else if let Some(h) = &v.html { div.html-body { (PreEscaped(h)) } }
                }
                @if !v.attachments.is_empty() {
                    div.box #attachments {
                        h2 { "Allegati / Attachments" }
                        ul {
                            @for a in &v.attachments {
                                li {
                                    a href={ "/message/attachment?" (at) "&n=" (a.index) } download { (a.name) }
                                    " (" (a.content_type) ", " (a.size) " B)"
                                }
                            }
                        }
                    }
                }
                (signature_box(&v))
                (daticert_box(&v))
                @if let Some(t) = &timeline { (timeline_box(t)) }
            }
        }
    };
    Ok(page(StatusCode::OK, &subject, Some(&user), body))
}
