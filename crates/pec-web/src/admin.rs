//! The admin API (JSON over HTTP on loopback, `Authorization: Bearer <token>`).
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/v1/status` | queue length, clock offset, domains |
//! | GET | `/v1/mailboxes` | every mailbox |
//! | POST | `/v1/mailboxes` | `{address, password, quota_bytes?, ordinary_mail?, spam?, contact?}` creates one |
//! | PATCH | `/v1/mailboxes/{address}` | `{ordinary_mail?, spam?, contact?}` changes its settings |
//! | PUT | `/v1/mailboxes/{address}/password` | `{password}` sets a password and unlocks the mailbox |
//! | GET | `/v1/mailboxes/{address}/messages[?after_uid=N]` | the messages of a mailbox (INBOX UIDs above N only, when given) |
//! | GET | `/v1/mailboxes/{address}/messages/{uid}` | the raw bytes of one message |
//! | GET | `/v1/log?id=IDENTIFICATIVO` | log events (all, or one transaction's) |
//! | POST | `/v1/tokens` | `{address, label?}` creates a REST API token for a mailbox (shown once) |
//! | GET | `/v1/quarantine?since=UNIX` | the virus store's entries (pec.md §8.4) |
//! | POST | `/v1/scanners/reload` | every clamd reloads its signatures (`RELOAD`) |
//! | GET | `/metrics` | filter health and verdict counts, sessions, queue (Prometheus text) |
//! | POST | `/v1/clock/advance` | `{seconds}` moves the clock (only with `dev.clock_control`) |
//!
//! Errors are `{"error": "<sentence>"}` with 400, 401, 404, 500 or 503.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use pec_gestore::{Gestore, GestoreError};
use pec_message::classify::classify;
use pec_store::{PageQuery, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

struct AppState<S: Store> {
    g: Arc<Gestore<S>>,
    token: String,
    clock_control: bool,
}

/// An API error: status and sentence.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<GestoreError> for ApiError {
    fn from(e: GestoreError) -> Self {
        match e {
            GestoreError::Invalid(t) => ApiError(StatusCode::BAD_REQUEST, t),
            GestoreError::NotFound(t) => ApiError(StatusCode::NOT_FOUND, t),
            GestoreError::Forbidden(t) => ApiError(StatusCode::FORBIDDEN, t),
            GestoreError::Unavailable(t) => ApiError(StatusCode::SERVICE_UNAVAILABLE, t),
            other => {
                tracing::error!("admin API: {other}");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error, see the server log".into(),
                )
            }
        }
    }
}

impl From<pec_store::StoreError> for ApiError {
    fn from(e: pec_store::StoreError) -> Self {
        GestoreError::from(e).into()
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn authorize<S: Store>(st: &AppState<S>, headers: &HeaderMap) -> ApiResult<()> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time comparison of the token.
    let ok =
        aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), st.token.as_bytes())
            .is_ok();
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token".into(),
        ))
    }
}

/// The admin router.
pub fn router<S: Store>(g: Arc<Gestore<S>>, token: String, clock_control: bool) -> Router {
    let st = Arc::new(AppState {
        g,
        token,
        clock_control,
    });
    Router::new()
        .route("/v1/status", get(status::<S>))
        .route(
            "/v1/mailboxes",
            get(list_mailboxes::<S>).post(add_mailbox::<S>),
        )
        .route("/v1/mailboxes/{address}", patch(update_mailbox::<S>))
        .route("/v1/mailboxes/{address}/password", put(set_password::<S>))
        .route("/v1/tokens", post(create_token::<S>))
        .route("/v1/quarantine", get(quarantine::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/v1/scanners/reload", post(reload::<S>))
        .route("/v1/mailboxes/{address}/messages", get(messages::<S>))
        .route("/v1/mailboxes/{address}/messages/{uid}", get(message::<S>))
        .route("/v1/log", get(log::<S>))
        .route("/v1/crl", get(crl::<S>))
        .route("/v1/crl/refresh", post(crl_refresh::<S>))
        .route("/v1/clock/advance", post(advance::<S>))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such admin endpoint".into()) })
        .with_state(st)
}

async fn status<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    Ok(Json(json!({
        "provider": st.g.settings.provider.name,
        "domains": st.g.settings.domains,
        "queue": st.g.store.queue_len().await?,
        "clock_offset_seconds": st.g.clock.offset(),
        "now": st.g.clock.now().utc().to_rfc3339(),
    })))
}

async fn list_mailboxes<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    Ok(Json(json!(st.g.store.mailboxes().await?)))
}

#[derive(Deserialize)]
struct NewMailbox {
    address: String,
    password: String,
    #[serde(default)]
    quota_bytes: u64,
    #[serde(default)]
    ordinary_mail: Option<String>,
    #[serde(default)]
    spam: Option<String>,
    #[serde(default)]
    contact: Option<String>,
}

async fn add_mailbox<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
    body: Result<Json<NewMailbox>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    authorize(&st, &h)?;
    let Json(m) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    st.g.add_mailbox(
        &m.address,
        &m.password,
        m.quota_bytes,
        pec_store::MailboxSettings {
            spam_policy: m.spam,
            contact: m.contact,
            ordinary_policy: m.ordinary_mail,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "address": m.address.to_ascii_lowercase() })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    ordinary_mail: Option<String>,
    #[serde(default)]
    spam: Option<String>,
    #[serde(default)]
    contact: Option<String>,
}

async fn update_mailbox<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
    Path(address): Path<String>,
    body: Result<Json<Settings>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    let Json(m) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    st.g.update_mailbox(
        &address,
        pec_store::MailboxSettings {
            spam_policy: m.spam,
            contact: m.contact,
            ordinary_policy: m.ordinary_mail,
        },
    )
    .await?;
    let m =
        st.g.store
            .mailbox(&address.trim().to_ascii_lowercase())
            .await?;
    Ok(Json(json!(m)))
}

#[derive(Deserialize)]
struct Password {
    password: String,
}

async fn set_password<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
    Path(address): Path<String>,
    body: Result<Json<Password>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    let Json(p) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    st.g.set_password(&address, &p.password).await?;
    Ok(Json(
        json!({ "address": address.trim().to_ascii_lowercase(), "locked": false }),
    ))
}

#[derive(Deserialize)]
struct SinceQuery {
    #[serde(default)]
    since: i64,
}

async fn quarantine<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
    Query(q): Query<SinceQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    Ok(Json(json!(st.g.store.quarantined(q.since).await?)))
}

async fn reload<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    let done = st.g.filters.reload().await;
    if done.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "no clamd is configured ([scan] clamd in pec.toml)".into(),
        ));
    }
    let mut failed = Vec::new();
    for (engine, r) in &done {
        if let Err(e) = r {
            failed.push(format!("{engine}: {e}"));
        }
    }
    if !failed.is_empty() {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, failed.join("; ")));
    }
    Ok(Json(
        json!({ "reloaded": done.iter().map(|(e, _)| e).collect::<Vec<_>>() }),
    ))
}

async fn metrics<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
) -> ApiResult<Response> {
    authorize(&st, &h)?;
    let text = st.g.metrics().await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn mailbox_exists<S: Store>(st: &AppState<S>, address: &str) -> ApiResult<()> {
    match st.g.store.mailbox(address).await? {
        Some(_) => Ok(()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no mailbox {address}"),
        )),
    }
}

#[derive(Deserialize)]
struct MessagesQuery {
    after_uid: Option<u32>,
}

async fn messages<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
    Path(address): Path<String>,
    Query(q): Query<MessagesQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    mailbox_exists(&st, &address).await?;
    let list = match q.after_uid {
        // New arrivals only: read from the index, not the whole mailbox.
        Some(after) => {
            let q = PageQuery {
                after_uid: Some(after),
                limit: u64::from(u32::MAX),
                ..Default::default()
            };
            let mut page = st.g.store.page(&address, "INBOX", &q).await?.messages;
            page.reverse();
            page.into_iter().map(|m| m.meta).collect()
        }
        None => st.g.store.messages(&address).await?,
    };
    Ok(Json(json!(list)))
}

#[derive(Deserialize)]
struct MessageQuery {
    folder: Option<String>,
}

async fn message<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
    Path((address, uid)): Path<(String, String)>,
    Query(q): Query<MessageQuery>,
) -> ApiResult<Response> {
    authorize(&st, &h)?;
    let uid: u32 = uid.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{uid} is not a message uid"),
        )
    })?;
    mailbox_exists(&st, &address).await?;
    let folder = q.folder.as_deref().unwrap_or("INBOX");
    match st.g.store.message_bytes(&address, folder, uid).await? {
        Some(bytes) => {
            // The kind is derived again from the bytes so a reader can cross-check the listing.
            let kind = classify(&bytes).kind.as_str();
            Ok((
                [
                    (header::CONTENT_TYPE, "message/rfc822".to_string()),
                    (
                        header::HeaderName::from_static("x-pec-kind"),
                        kind.to_string(),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no message {uid} in {folder} of {address}"),
        )),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    id: Option<String>,
}

async fn log<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = st.g.store.events(after, q.id.as_deref(), 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in page {
            let mut v: Value = serde_json::from_str(&e.json).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("seq".into(), json!(e.seq));
            }
            out.push(v);
        }
    }
    Ok(Json(Value::Array(out)))
}

/// The CRL distribution points of the Indice copy, the CRL held for each and the last
/// attempt to fetch it (pec.md §4.4 step 3).
async fn crl<S: Store>(State(st): State<Arc<AppState<S>>>, h: HeaderMap) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    Ok(Json(json!(st.g.crl_status())))
}

/// Fetches every CRL distribution point again now and answers with the result, once the
/// refresher has been through them all (at most 90 s: each fetch has 60 s).
async fn crl_refresh<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    let status =
        st.g.refresh_crls_now(std::time::Duration::from_secs(90))
            .await;
    Ok(Json(json!(status)))
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    h: HeaderMap,
    body: Result<Json<Advance>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &h)?;
    if !st.clock_control {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "clock control is off (set dev.clock_control = true in pec.toml)".into(),
        ));
    }
    let Json(a) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    // Past a century the clock leaves the range chrono represents (the offset is added to
    // every `now`), and no deadline needs more.
    const MAX_OFFSET: i64 = 100 * 366 * 86_400;
    if a.seconds <= 0 || a.seconds.saturating_add(st.g.clock.offset()) > MAX_OFFSET {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "seconds must be positive, and the clock offset at most {MAX_OFFSET} s \
                 (100 years); it is {} s now",
                st.g.clock.offset()
            ),
        ));
    }
    st.g.clock.advance(a.seconds);
    Ok(Json(json!({ "clock_offset_seconds": st.g.clock.offset() })))
}

#[derive(Deserialize)]
struct NewToken {
    address: String,
    #[serde(default)]
    label: String,
}

async fn create_token<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &headers)?;
    let Json(b) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let token = st.g.create_api_token(&b.address, &b.label).await?;
    Ok(Json(json!({ "address": b.address, "token": token })))
}
