//! The password-reset page on the HTTPS listener (product.md §4): the link mailed to the
//! owner of a mailbox locked for sending spam opens a form that sets a new password and
//! unlocks the mailbox. Plain HTML, no script, no cookies: the token in the form is the only
//! credential, and the page is never cached nor sent as a referrer.

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pec_gestore::{Gestore, GestoreError};
use pec_store::Store;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
struct NewPassword {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// The reset routes: `GET /reset?token=…` shows the form, `POST /reset` applies it.
pub fn router<S: Store>(g: Arc<Gestore<S>>) -> Router {
    Router::new()
        .route("/reset", get(form::<S>).post(apply::<S>))
        .with_state(g)
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"it\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em}}\
         label{{display:block;margin:1em 0 .3em}}input{{width:100%;padding:.5em;box-sizing:border-box}}\
         button{{margin-top:1.5em;padding:.6em 1.2em}}.err{{color:#a00}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>\n"
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    for (k, v) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn the_form(token: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"err\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        "<p>Scegliere una nuova password per sbloccare la casella PEC (almeno 8 caratteri).<br>\
         Choose a new password to unlock the PEC mailbox (at least 8 characters).</p>{error}\
         <form method=\"post\" action=\"/reset\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label for=\"p\">Nuova password / New password</label>\
         <input id=\"p\" type=\"password\" name=\"password\" minlength=\"8\" required autocomplete=\"new-password\">\
         <label for=\"c\">Ripetere / Repeat</label>\
         <input id=\"c\" type=\"password\" name=\"confirm\" minlength=\"8\" required autocomplete=\"new-password\">\
         <button type=\"submit\">Imposta / Set</button></form>"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const INVALID: &str = "Il collegamento non è valido / This link is not valid";

async fn form<S: Store>(State(_g): State<Arc<Gestore<S>>>, Query(l): Query<Link>) -> Response {
    if !well_formed(&l.token) {
        return page(
            StatusCode::BAD_REQUEST,
            INVALID,
            "<p>Usare il collegamento ricevuto per e-mail. / Use the link you received by e-mail.</p>",
        );
    }
    page(
        StatusCode::OK,
        "Sblocco casella PEC / PEC mailbox unlock",
        &the_form(&l.token, None),
    )
}

async fn apply<S: Store>(
    State(g): State<Arc<Gestore<S>>>,
    body: Result<Form<NewPassword>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = body else {
        return page(
            StatusCode::BAD_REQUEST,
            INVALID,
            "<p>Richiesta non valida / Bad request.</p>",
        );
    };
    if !well_formed(&f.token) {
        return page(StatusCode::BAD_REQUEST, INVALID, "");
    }
    let title = "Sblocco casella PEC / PEC mailbox unlock";
    if f.password.chars().count() < 8 {
        return page(
            StatusCode::BAD_REQUEST,
            title,
            &the_form(
                &f.token,
                Some(
                    "La password deve avere almeno 8 caratteri / The password must have at least 8 characters",
                ),
            ),
        );
    }
    if f.password != f.confirm {
        return page(
            StatusCode::BAD_REQUEST,
            title,
            &the_form(
                &f.token,
                Some("Le due password sono diverse / The passwords differ"),
            ),
        );
    }
    match g.reset_password(&f.token, &f.password).await {
        Ok(address) => page(
            StatusCode::OK,
            "Casella sbloccata / Mailbox unlocked",
            &format!(
                "<p>La nuova password di {a} è attiva. / The new password of {a} is in force.</p>",
                a = escape(&address)
            ),
        ),
        Err(GestoreError::Invalid(why)) => page(
            StatusCode::BAD_REQUEST,
            INVALID,
            &format!("<p>{}</p>", escape(&why)),
        ),
        Err(e) => {
            tracing::error!("password reset failed: {e}");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Errore temporaneo / Temporary error",
                "<p>Riprovare tra poco. / Please try again shortly.</p>",
            )
        }
    }
}
