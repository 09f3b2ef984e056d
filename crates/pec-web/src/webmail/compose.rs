//! Writing and sending a PEC from the browser: To, Cc, subject, text, attachments and the
//! receipt kind wanted (pec.md §2.12: completa, breve, sintetica). The message goes through
//! the same access point as an SMTP submission; the user lands on the sent message, whose
//! timeline then fills with the receipts.

use super::{App, User, WebError, check_post, page};
use axum::extract::{ConnectInfo, Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use pec_gestore::Client;
use pec_message::compose::{Attachment, Draft};
use pec_message::daticert::ReceiptType;
use pec_store::{PageQuery, Store};
use std::net::SocketAddr;

/// The largest upload the compose form takes, all attachments together.
pub const MAX_UPLOAD: usize = 64 << 20;

/// Splits a recipient field on commas, semicolons and white space.
pub fn addresses(field: &str) -> Vec<String> {
    field
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a receipt kind, with a sentence when it is not one.
pub fn receipt_kind(s: &str) -> Result<ReceiptType, String> {
    match s.trim() {
        "" | "completa" => Ok(ReceiptType::Completa),
        "breve" => Ok(ReceiptType::Breve),
        "sintetica" => Ok(ReceiptType::Sintetica),
        other => Err(format!(
            "receipt kind {other:?} is not completa, breve or sintetica"
        )),
    }
}

fn form_page(user: &User, error: Option<&str>, d: Option<&Draft>) -> Response {
    let (to, cc, subject, body) = d
        .map(|d| {
            (
                d.to.join(", "),
                d.cc.join(", "),
                d.subject.as_str(),
                d.body.as_str(),
            )
        })
        .unwrap_or_default();
    let receipt = d.map(|d| d.receipt).unwrap_or(ReceiptType::Completa);
    page(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "Scrivi / Compose",
        Some(user),
        html! {
            h1 { "Nuovo messaggio PEC / New PEC message" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.form method="post" action="/compose" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(user.csrf);
                label for="to" { "A / To" }
                input #to type="text" name="to" value=(to) required placeholder="nome@dominio.pec.it" autocomplete="off";
                label for="cc" { "Cc" }
                input #cc type="text" name="cc" value=(cc) autocomplete="off";
                label for="subject" { "Oggetto / Subject" }
                input #subject type="text" name="subject" value=(subject);
                label for="body" { "Testo / Text" }
                textarea #body name="body" { (body) }
                label for="attachments" { "Allegati / Attachments" }
                input #attachments type="file" name="attachments" multiple;
                label for="receipt" { "Ricevuta di consegna / Delivery receipt" }
                select #receipt name="receipt" {
                    @for (v, label) in [(ReceiptType::Completa, "completa / full"), (ReceiptType::Breve, "breve / short"), (ReceiptType::Sintetica, "sintetica / summary")] {
                        option value=(v.to_string()) selected[v == receipt] { (label) }
                    }
                }
                p { button type="submit" { "Invia / Send" } }
            }
        },
    )
}

/// `GET /compose`.
pub async fn form(user: User) -> Response {
    form_page(&user, None, None)
}

/// `POST /compose` (multipart).
pub async fn send<S: Store>(
    State(app): State<App<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    user: User,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        WebError(
            StatusCode::BAD_REQUEST,
            format!("the form could not be read: {e}"),
        )
    };
    let mut draft = Draft {
        from: user.address.clone(),
        to: Vec::new(),
        cc: Vec::new(),
        subject: String::new(),
        body: String::new(),
        attachments: Vec::new(),
        receipt: ReceiptType::Completa,
    };
    let (mut csrf, mut receipt) = (String::new(), String::new());
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "attachments" {
            let file = field.file_name().unwrap_or("").to_string();
            let ct = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let bytes = field.bytes().await.map_err(bad)?;
            if file.is_empty() && bytes.is_empty() {
                continue; // no file chosen
            }
            draft.attachments.push(Attachment {
                name: file,
                content_type: ct,
                bytes: bytes.to_vec(),
            });
            continue;
        }
        let text = field.text().await.map_err(bad)?;
        match name.as_str() {
            "csrf" => csrf = text,
            "to" => draft.to = addresses(&text),
            "cc" => draft.cc = addresses(&text),
            "subject" => draft.subject = text,
            "body" => draft.body = text,
            "receipt" => receipt = text,
            _ => {}
        }
    }
    check_post(&user.csrf, &csrf, &headers)?;
    draft.receipt = match receipt_kind(&receipt) {
        Ok(r) => r,
        Err(e) => return Ok(form_page(&user, Some(&e), Some(&draft))),
    };
    if let Err(e) = draft.check() {
        return Ok(form_page(&user, Some(&e.0), Some(&draft)));
    }
    let client = Client {
        ip: Some(peer.ip()),
        helo: Some("webmail".into()),
    };
    let account = pec_gestore::Account {
        address: user.address.clone(),
    };
    let g = &app.0.g;
    let sent = match g.send_draft(&client, &account, draft.clone()).await {
        Ok(s) => s,
        Err(pec_gestore::GestoreError::Invalid(e)) => {
            return Ok(form_page(&user, Some(&e), Some(&draft)));
        }
        Err(e) => return Err(e.into()),
    };
    // The sent original is in Sent (or, refused, only the non-accettazione is in INBOX).
    for folder in ["Sent", "INBOX"] {
        let q = PageQuery {
            identificativo: Some(sent.identificativo.clone()),
            limit: 1,
            ..Default::default()
        };
        if let Some(m) = g
            .store
            .page(&user.address, folder, &q)
            .await?
            .messages
            .pop()
        {
            return Ok(
                Redirect::to(&format!("/message?f={folder}&uid={}", m.meta.uid)).into_response(),
            );
        }
    }
    Ok(Redirect::to("/mail?f=Sent").into_response())
}
