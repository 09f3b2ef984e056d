//! The webmail (product.md §3): server-rendered HTML on the gestore's HTTPS listener, usable
//! without JavaScript, at any width from 360 px. Every page is sent with a strict CSP (no
//! script, no remote content), `no-store`, `nosniff` and `frame-ancestors 'none'`.
//!
//! Sessions live in memory ([`sessions`]): an opaque id in a `__Host-` cookie that is
//! `Secure`, `HttpOnly` and `SameSite=Strict`; every form carries the session's CSRF token
//! and every POST must also come from this origin. Logins go through the gestore's
//! failed-login throttle, and a mailbox with a second factor asks for its TOTP code next.
//! A locked or disabled mailbox loses its web sessions at its next request.
//!
//! | path | what |
//! |---|---|
//! | `GET /` | to the inbox, or the login page |
//! | `GET/POST /login`, `POST /login/otp`, `POST /logout` | [`auth`] |
//! | `GET /mail?f=&page=&from=&subject=&since=&until=` | folders and a page of messages ([`list`]) |
//! | `POST /mail/action` | move or delete the ticked messages |
//! | `GET /message?f=&uid=` | one message ([`read`]): the original of an envelope, daticert, signature, timeline |
//! | `GET /message/eml?f=&uid=` | the stored bytes as `.eml` |
//! | `GET /message/attachment?f=&uid=&n=` | one attachment of the shown message |
//! | `GET/POST /compose` | write and send a PEC ([`compose`]) |
//! | `GET /settings`, `POST /settings/otp` | the second factor |
//! | `GET /static/webmail.css` | the style sheet |

pub mod auth;
pub mod compose;
mod layout;
pub mod list;
pub mod read;
pub mod sessions;

use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use pec_gestore::{Gestore, GestoreError};
use pec_store::{Mailbox, Store};
use std::sync::Arc;

pub use layout::page;

/// The webmail's state.
pub struct Webmail<S: Store> {
    /// The gestore.
    pub g: Arc<Gestore<S>>,
    /// Open web sessions.
    pub sessions: sessions::WebSessions,
}

/// Shared state handle.
pub struct App<S: Store>(pub Arc<Webmail<S>>);

impl<S: Store> Clone for App<S> {
    fn clone(&self) -> Self {
        App(self.0.clone())
    }
}

/// The webmail routes.
pub fn router<S: Store>(g: Arc<Gestore<S>>) -> Router {
    let app = App(Arc::new(Webmail {
        g,
        sessions: sessions::WebSessions::default(),
    }));
    Router::new()
        .route("/", get(home))
        .route("/login", get(auth::login_form).post(auth::login::<S>))
        .route("/login/otp", post(auth::second_factor::<S>))
        .route("/logout", post(auth::logout::<S>))
        .route("/settings", get(auth::settings::<S>))
        .route("/settings/otp", post(auth::set_otp::<S>))
        .route("/mail", get(list::folder::<S>))
        .route("/mail/action", post(list::action::<S>))
        .route("/message", get(read::message::<S>))
        .route("/message/eml", get(read::eml::<S>))
        .route("/message/attachment", get(read::attachment::<S>))
        .route(
            "/compose",
            get(compose::form)
                .post(compose::send::<S>)
                .layer(axum::extract::DefaultBodyLimit::max(compose::MAX_UPLOAD)),
        )
        .route("/static/webmail.css", get(layout::stylesheet))
        .with_state(app)
}

async fn home(user: Option<User>) -> Redirect {
    match user {
        Some(_) => Redirect::to("/mail?f=INBOX"),
        None => Redirect::to("/login"),
    }
}

/// A logged-in user, with the session's CSRF token and the mailbox as stored now.
pub struct User {
    /// The session id.
    pub session: String,
    /// The mailbox address.
    pub address: String,
    /// The session's CSRF token, written into every form.
    pub csrf: String,
    /// The mailbox.
    pub mailbox: Mailbox,
}

/// What an unauthenticated request to a page gets: the login page.
pub struct LoginFirst;

impl IntoResponse for LoginFirst {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

/// The session cookie's name (`__Host-`: Secure, path `/`, no Domain; RFC 6265bis §4.1.3.2).
pub const COOKIE: &str = "__Host-pec_session";

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

impl<S: Store> FromRequestParts<App<S>> for User {
    type Rejection = LoginFirst;

    async fn from_request_parts(parts: &mut Parts, app: &App<S>) -> Result<Self, Self::Rejection> {
        let id = cookie_value(&parts.headers).ok_or(LoginFirst)?;
        let s = app.0.sessions.get(&id).ok_or(LoginFirst)?;
        if s.pending_second_factor {
            return Err(LoginFirst);
        }
        // product.md §4: a locked mailbox does nothing until its password is reset, and the
        // reset (or any change of password) ends the sessions opened with the old one.
        let mailbox = match app.0.g.store.mailbox(&s.address).await {
            Ok(Some(m))
                if !m.locked
                    && !m.disabled
                    && sessions::password_mark(&m.password_hash) == s.password =>
            {
                m
            }
            _ => {
                app.0.sessions.remove(&id);
                return Err(LoginFirst);
            }
        };
        Ok(User {
            session: id,
            address: s.address,
            csrf: s.csrf,
            mailbox,
        })
    }
}

impl<S: Store> FromRequestParts<App<S>> for Option<User> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App<S>) -> Result<Self, Self::Rejection> {
        Ok(User::from_request_parts(parts, app).await.ok())
    }
}

impl<S: Store> FromRef<App<S>> for Arc<Webmail<S>> {
    fn from_ref(app: &App<S>) -> Self {
        app.0.clone()
    }
}

/// A webmail error: a status and a sentence, shown as a page.
#[derive(Debug)]
pub struct WebError(pub StatusCode, pub String);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = if self.0.is_client_error() {
            "Richiesta non valida / Bad request"
        } else {
            "Errore / Error"
        };
        page(
            self.0,
            title,
            None,
            maud::html! {
                p.error { (self.1) }
                p { a href="/mail?f=INBOX" { "Torna alla posta / Back to mail" } }
            },
        )
    }
}

impl From<GestoreError> for WebError {
    fn from(e: GestoreError) -> Self {
        match e {
            GestoreError::Invalid(t) => WebError(StatusCode::BAD_REQUEST, t),
            GestoreError::NotFound(t) => WebError(StatusCode::NOT_FOUND, t),
            GestoreError::Forbidden(t) => WebError(StatusCode::FORBIDDEN, t),
            GestoreError::Unavailable(t) => WebError(StatusCode::SERVICE_UNAVAILABLE, t),
            GestoreError::Store(pec_store::StoreError::Refused(r)) => {
                WebError(StatusCode::CONFLICT, format!("{r:?}"))
            }
            other => {
                tracing::error!("webmail: {other}");
                WebError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error, see the server log".into(),
                )
            }
        }
    }
}

impl From<pec_store::StoreError> for WebError {
    fn from(e: pec_store::StoreError) -> Self {
        GestoreError::from(e).into()
    }
}

/// Refuses a POST whose CSRF token is not the session's, or that comes from another
/// origin (the `Origin` header, when the browser sends one, must name this host).
pub fn check_post(user_csrf: &str, given: &str, headers: &HeaderMap) -> Result<(), WebError> {
    same_origin(headers)?;
    let ok =
        aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), user_csrf.as_bytes())
            .is_ok();
    if !ok {
        return Err(WebError(
            StatusCode::FORBIDDEN,
            "the form has expired or did not come from this site: reload the page and try again"
                .into(),
        ));
    }
    Ok(())
}

/// Refuses a request whose `Origin` names another site.
pub fn same_origin(headers: &HeaderMap) -> Result<(), WebError> {
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return Ok(());
    };
    if origin.strip_prefix("https://") != Some(host) {
        return Err(WebError(
            StatusCode::FORBIDDEN,
            "cross-site request refused".into(),
        ));
    }
    Ok(())
}

/// Adds the security headers every webmail response carries.
pub fn harden(r: &mut Response, csp: &'static str) {
    let h = r.headers_mut();
    for (k, v) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        // Not `no-referrer`: with it browsers send `Origin: null` on the page's own forms.
        // Links out of a message still carry no referrer (`same-origin`).
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
}

/// The CSP of pages: the style sheet of this site and inline `data:` images, nothing else.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The CSP of downloads: nothing runs, even if a browser renders one.
pub const CSP_DOWNLOAD: &str = "default-src 'none'; sandbox";

/// The pairs of an `application/x-www-form-urlencoded` body, in order, repeated names kept
/// (a list of ticked checkboxes).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    match u8::from_str_radix(&String::from_utf8_lossy(&s[i + 1..i + 3]), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// A stored time (RFC 3339) in Italian legal time, `dd/mm/yyyy hh:mm`.
pub fn local_time(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => {
            let t = pec_message::TimeRef::new(t.to_utc());
            format!("{} {}", t.giorno(), &t.ora()[..5])
        }
        Err(_) => rfc3339.to_string(),
    }
}

/// A readable label of a stored kind (pec.md §2.1), Italian / English.
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "posta-certificata" => "PEC",
        "accettazione" => "Accettazione / Accepted",
        "non-accettazione" => "Non accettazione / Not accepted",
        "presa-in-carico" => "Presa in carico / Taken in charge",
        "avvenuta-consegna" => "Consegna / Delivered",
        "errore-consegna" => "Mancata consegna / Not delivered",
        "preavviso-errore-consegna" => "Avviso / Delay notice",
        "rilevazione-virus" => "Virus",
        "anomalia" => "Anomalia / Anomaly",
        "ordinaria" => "Ordinaria / Ordinary",
        _ => "Altro / Other",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn form_bodies_keep_repeated_names() {
        assert_eq!(
            form_pairs(b"uid=3&uid=5&to=Cartella+%C3%A8&bad=%zz&x"),
            vec![
                ("uid".into(), "3".into()),
                ("uid".into(), "5".into()),
                ("to".into(), "Cartella è".into()),
                ("bad".into(), "%zz".into()),
                ("x".into(), String::new()),
            ]
        );
        assert_eq!(form_pairs(b"a=%4"), vec![("a".into(), "%4".into())]);
    }

    #[test]
    fn posts_from_another_site_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8443"));
        assert!(
            check_post("abc", "abc", &h).is_ok(),
            "no Origin: the token decides"
        );
        assert!(check_post("abc", "abd", &h).is_err());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://127.0.0.1:8443"),
        );
        assert!(check_post("abc", "abc", &h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(check_post("abc", "abc", &h).is_err());
    }
}
