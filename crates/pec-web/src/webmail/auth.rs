//! Logging in and out, and the optional TOTP second factor (product.md §3): the password is
//! checked by the gestore (argon2) behind the failed-login throttle shared with IMAP and
//! POP3; a mailbox with a second factor gets a short-lived waiting session that only the
//! code turns into a real one.

use super::{App, COOKIE, User, WebError, check_post, page, same_origin};
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use pec_gestore::{Login, totp};
use pec_store::Store;
use serde::Deserialize;
use std::net::SocketAddr;

/// The login form's fields.
#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    address: String,
    #[serde(default)]
    password: String,
}

/// A form with only its CSRF token and maybe a code.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    action: String,
}

fn cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cleared() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-pec_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

fn login_page(status: StatusCode, error: Option<&str>, address: &str) -> Response {
    page(
        status,
        "Accesso / Log in",
        None,
        html! {
            div.narrow.box {
                h1 { "Posta Elettronica Certificata" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form.form method="post" action="/login" {
                    label for="address" { "Indirizzo PEC / PEC address" }
                    input #address type="email" name="address" value=(address) required autocomplete="username" autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" required autocomplete="current-password";
                    p { button type="submit" { "Accedi / Log in" } }
                }
            }
        },
    )
}

fn otp_page(status: StatusCode, csrf: &str, error: Option<&str>) -> Response {
    page(
        status,
        "Secondo fattore / Second factor",
        None,
        html! {
            div.narrow.box {
                h1 { "Codice di verifica / Verification code" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form.form method="post" action="/login/otp" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="code" { "Codice a 6 cifre dell'app / 6-digit code from your app" }
                    input #code type="text" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required autocomplete="one-time-code" autofocus;
                    p { button type="submit" { "Verifica / Verify" } }
                }
            }
        },
    )
}

/// `GET /login`.
pub async fn login_form(user: Option<User>) -> Response {
    if user.is_some() {
        return Redirect::to("/mail?f=INBOX").into_response();
    }
    login_page(StatusCode::OK, None, "")
}

/// `POST /login`.
pub async fn login<S: Store>(
    State(app): State<App<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> Result<Response, WebError> {
    same_origin(&headers)?;
    let g = &app.0.g;
    let address = c.address.trim().to_ascii_lowercase();
    match g.login(peer.ip(), &address, &c.password).await? {
        Login::Throttled(wait) => Ok(login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Troppi tentativi falliti: riprovare fra {} minuti. / Too many failed attempts: try again in {} minutes.",
                wait.div_ceil(60),
                wait.div_ceil(60)
            )),
            &address,
        )),
        Login::Refused => Ok(login_page(
            StatusCode::UNAUTHORIZED,
            Some("Indirizzo o password errati. / Wrong address or password."),
            &address,
        )),
        Login::Accepted(account) => {
            let pending = g.has_second_factor(&account.address).await?;
            let hash = g
                .store
                .mailbox(&account.address)
                .await?
                .map(|m| m.password_hash)
                .unwrap_or_default();
            let id = app.0.sessions.create(
                &account.address,
                pending,
                &super::sessions::password_mark(&hash),
            );
            let mut r = if pending {
                let csrf = app.0.sessions.get(&id).map(|s| s.csrf).unwrap_or_default();
                otp_page(StatusCode::OK, &csrf, None)
            } else {
                Redirect::to("/mail?f=INBOX").into_response()
            };
            r.headers_mut().append(header::SET_COOKIE, cookie(&id));
            Ok(r)
        }
    }
}

/// `POST /login/otp`.
pub async fn second_factor<S: Store>(
    State(app): State<App<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    let Some(id) = super::cookie_value(&headers) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(s) = app.0.sessions.get(&id).filter(|s| s.pending_second_factor) else {
        return Ok(Redirect::to("/login").into_response());
    };
    check_post(&s.csrf, &f.csrf, &headers)?;
    let g = &app.0.g;
    let now = std::time::Instant::now();
    if g.throttle.blocked(peer.ip(), &s.address, now).is_some() {
        app.0.sessions.remove(&id);
        return Ok(login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Troppi tentativi falliti. / Too many failed attempts."),
            &s.address,
        ));
    }
    if !g.second_factor_ok(&s.address, &f.code).await? {
        g.throttle.failed(peer.ip(), &s.address, now);
        return Ok(otp_page(
            StatusCode::UNAUTHORIZED,
            &s.csrf,
            Some("Codice errato o scaduto. / Wrong or expired code."),
        ));
    }
    let Some(full) = app.0.sessions.promote(&id) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let mut r = Redirect::to("/mail?f=INBOX").into_response();
    r.headers_mut().append(header::SET_COOKIE, cookie(&full));
    Ok(r)
}

/// `POST /logout`.
pub async fn logout<S: Store>(
    State(app): State<App<S>>,
    user: User,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    check_post(&user.csrf, &f.csrf, &headers)?;
    app.0.sessions.remove(&user.session);
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, cleared());
    Ok(r)
}

fn settings_body<S: Store>(
    app: &App<S>,
    user: &User,
    on: bool,
    message: Option<Markup>,
    secret: &str,
) -> Markup {
    let issuer = app.0.g.settings.provider.name.clone();
    html! {
        h1 { "Sicurezza / Security" }
        @if let Some(m) = message { (m) }
        div.box {
            h2 { "Verifica in due passaggi / Two-step verification" }
            @if on {
                p.ok { "Attiva / On" }
                form.form method="post" action="/settings/otp" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    input type="hidden" name="action" value="disable";
                    label for="code" { "Codice attuale per disattivarla / Current code to turn it off" }
                    input #code type="text" name="code" inputmode="numeric" maxlength="6" required autocomplete="one-time-code";
                    p { button type="submit" { "Disattiva / Turn off" } }
                }
            } @else {
                p { "Non attiva. Aggiungere questa chiave a un'app di autenticazione (TOTP), poi inserire il codice che mostra. / Off. Add this key to an authenticator app (TOTP), then type the code it shows." }
                dl.facts {
                    dt { "Chiave / Key" } dd { code #otp-secret { (secret) } }
                    dt { "URI" } dd { code { (totp::uri(&issuer, &user.address, secret)) } }
                }
                form.form method="post" action="/settings/otp" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    input type="hidden" name="action" value="enable";
                    input type="hidden" name="secret" value=(secret);
                    label for="code" { "Codice / Code" }
                    input #code type="text" name="code" inputmode="numeric" maxlength="6" required autocomplete="one-time-code";
                    p { button type="submit" { "Attiva / Turn on" } }
                }
            }
        }
    }
}

/// `GET /settings`.
pub async fn settings<S: Store>(State(app): State<App<S>>, user: User) -> Response {
    let on = user.mailbox.totp_secret.is_some();
    let body = settings_body(&app, &user, on, None, &totp::new_secret());
    page(StatusCode::OK, "Sicurezza / Security", Some(&user), body)
}

/// `POST /settings/otp`.
pub async fn set_otp<S: Store>(
    State(app): State<App<S>>,
    user: User,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    check_post(&user.csrf, &f.csrf, &headers)?;
    let g = &app.0.g;
    let (on, message) = match f.action.as_str() {
        "enable" => {
            // A key in use is replaced only after turning it off with one of its codes: a
            // session left open must not be enough to bind the account to another device.
            if user.mailbox.totp_secret.is_some() {
                return Err(WebError(
                    StatusCode::CONFLICT,
                    "two-step verification is already on: turn it off with a current code first"
                        .into(),
                ));
            }
            if totp::unbase32(&f.secret).is_none_or(|k| k.len() < 10) {
                return Err(WebError(
                    StatusCode::BAD_REQUEST,
                    "the key is not valid".into(),
                ));
            }
            if g.set_second_factor(&user.address, Some(&f.secret), &f.code)
                .await?
            {
                (
                    true,
                    html! { p.notice { "Verifica in due passaggi attivata. / Two-step verification is on." } },
                )
            } else {
                (
                    false,
                    html! { p.error { "Codice errato: riprovare. / Wrong code: try again." } },
                )
            }
        }
        "disable" => {
            if g.second_factor_ok(&user.address, &f.code).await? {
                g.set_second_factor(&user.address, None, "").await?;
                (
                    false,
                    html! { p.notice { "Verifica in due passaggi disattivata. / Two-step verification is off." } },
                )
            } else {
                (true, html! { p.error { "Codice errato. / Wrong code." } })
            }
        }
        other => {
            return Err(WebError(
                StatusCode::BAD_REQUEST,
                format!("unknown action {other:?}"),
            ));
        }
    };
    let secret = if f.secret.is_empty() {
        totp::new_secret()
    } else {
        f.secret.clone()
    };
    let body = settings_body(&app, &user, on, Some(message), &secret);
    Ok(page(
        StatusCode::OK,
        "Sicurezza / Security",
        Some(&user),
        body,
    ))
}
