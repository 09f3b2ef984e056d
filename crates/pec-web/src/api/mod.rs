//! The REST API for integrators (product.md §3): JSON over the gestore's HTTPS listener,
//! authenticated with bearer tokens made by `pec admin token create ADDRESS`, each acting
//! for one mailbox and seeing nothing else. Described by the OpenAPI document at
//! `/api/openapi.json` ([`openapi`]).
//!
//! | method | path | does |
//! |---|---|---|
//! | POST | `/api/v1/messages` | sends a PEC; returns its identificativo |
//! | GET | `/api/v1/messages/{identificativo}` | per-recipient status and the receipts |
//! | GET | `/api/v1/folders` | the mailbox's folders |
//! | GET | `/api/v1/folders/{folder}/messages` | a page of messages (filters as the webmail's search) |
//! | GET | `/api/v1/folders/{folder}/messages/{uid}` | one message parsed: original, daticert, signature |
//! | GET | `/api/v1/folders/{folder}/messages/{uid}/raw` | its stored bytes |
//! | GET | `/api/v1/folders/{folder}/messages/{uid}/attachments/{n}` | one attachment, decoded |
//! | GET, PUT, DELETE | `/api/v1/webhook` | the mailbox's webhook ([`pec_gestore::webhooks`]) |
//!
//! Errors are `{"error": "<sentence>"}` with 400, 401, 404, 413, 422, 429, 500 or 503.

pub mod openapi;

use crate::timeline;
use crate::view::MessageView;
use crate::webmail::compose::receipt_kind;
use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use pec_gestore::{Account, Client, Gestore, GestoreError};
use pec_message::compose::{Attachment, Draft};
use pec_store::{PageQuery, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest JSON body of a send (attachments in base64 included).
pub const MAX_BODY: usize = 96 << 20;

/// An API error: status and sentence.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pec\""),
            );
        }
        r
    }
}

impl From<GestoreError> for ApiError {
    fn from(e: GestoreError) -> Self {
        match e {
            GestoreError::Invalid(t) => ApiError(StatusCode::BAD_REQUEST, t),
            GestoreError::NotFound(t) => ApiError(StatusCode::NOT_FOUND, t),
            GestoreError::Forbidden(t) => ApiError(StatusCode::FORBIDDEN, t),
            GestoreError::Unavailable(t) => ApiError(StatusCode::SERVICE_UNAVAILABLE, t),
            GestoreError::Store(pec_store::StoreError::Refused(r)) => {
                ApiError(StatusCode::CONFLICT, format!("{r:?}"))
            }
            other => {
                tracing::error!("REST API: {other}");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error, see the server log".into(),
                )
            }
        }
    }
}

/// A path, query or JSON body that does not parse is answered like every other error:
/// 400 with `{"error": ...}` (docs/api.md).
macro_rules! rejection_is_bad_request {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                ApiError(StatusCode::BAD_REQUEST, e.body_text())
            }
        }
    )*};
}
rejection_is_bad_request!(JsonRejection, PathRejection, QueryRejection);

impl From<pec_store::StoreError> for ApiError {
    fn from(e: pec_store::StoreError) -> Self {
        GestoreError::from(e).into()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// State of the API.
pub struct Api<S: Store>(pub Arc<Gestore<S>>);

impl<S: Store> Clone for Api<S> {
    fn clone(&self) -> Self {
        Api(self.0.clone())
    }
}

/// The mailbox a request's token acts for.
pub struct Caller(pub Account);

impl<S: Store> FromRequestParts<Api<S>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api<S>) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        if token.is_empty() {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "an Authorization: Bearer token is required (pec admin token create ADDRESS)"
                    .into(),
            ));
        }
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        let now = std::time::Instant::now();
        // Counted per client address only: a token names no account, and one shared count
        // would let anyone with ten junk tokens shut every integrator out.
        if api.0.throttle.blocked_address(ip, now).is_some() {
            return Err(ApiError(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests with bad tokens from this address; try again later".into(),
            ));
        }
        match api.0.api_account(token).await? {
            Some(a) => Ok(Caller(a)),
            None => {
                api.0.throttle.failed_address(ip, now);
                Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "the token is not valid, or its mailbox is locked or disabled".into(),
                ))
            }
        }
    }
}

/// The API routes.
pub fn router<S: Store>(g: Arc<Gestore<S>>) -> Router {
    Router::new()
        .route("/api/openapi.json", get(openapi::document))
        .route(
            "/api/v1/messages",
            axum::routing::post(send::<S>).layer(axum::extract::DefaultBodyLimit::max(MAX_BODY)),
        )
        .route("/api/v1/messages/{id}", get(status::<S>))
        .route("/api/v1/folders", get(folders::<S>))
        .route("/api/v1/folders/{folder}/messages", get(list::<S>))
        .route("/api/v1/folders/{folder}/messages/{uid}", get(parsed::<S>))
        .route("/api/v1/folders/{folder}/messages/{uid}/raw", get(raw::<S>))
        .route(
            "/api/v1/folders/{folder}/messages/{uid}/attachments/{n}",
            get(attachment::<S>),
        )
        .route(
            "/api/v1/webhook",
            get(webhook::<S>)
                .put(set_webhook::<S>)
                .delete(drop_webhook::<S>),
        )
        .with_state(Api(g))
}

/// One attachment of a send.
#[derive(Deserialize)]
pub struct NewAttachment {
    name: String,
    #[serde(default)]
    content_type: Option<String>,
    content_base64: String,
}

/// The body of `POST /api/v1/messages`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    receipt: Option<String>,
    #[serde(default)]
    attachments: Vec<NewAttachment>,
}

/// Sends read and composed at once: a send of the largest size holds its body several times
/// over (raw, parsed, decoded, composed), so the rest wait their turn before their body is
/// read.
static SENDING: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(4));

async fn send<S: Store>(
    State(api): State<Api<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Caller(account): Caller,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let _turn = SENDING.acquire().await.map_err(|_| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down".into(),
        )
    })?;
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body could not be read whole (at most {MAX_BODY} bytes): {e}"),
        )
    })?;
    let m: NewMessage = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the JSON body is not a message: {e}"),
        )
    })?;
    let receipt = receipt_kind(m.receipt.as_deref().unwrap_or(""))
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let mut attachments = Vec::with_capacity(m.attachments.len());
    for (i, a) in m.attachments.into_iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(a.content_base64.trim())
            .map_err(|e| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "attachment {i} ({}): content_base64 is not base64: {e}",
                        a.name
                    ),
                )
            })?;
        attachments.push(Attachment {
            name: a.name,
            content_type: a
                .content_type
                .unwrap_or_else(|| "application/octet-stream".into()),
            bytes,
        });
    }
    let draft = Draft {
        from: account.address.clone(),
        to: m.to,
        cc: m.cc,
        subject: m.subject,
        body: m.body,
        attachments,
        receipt,
    };
    draft
        .check()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.0))?;
    let client = Client {
        ip: Some(peer.ip()),
        helo: Some("api".into()),
    };
    let sent = api.0.send_draft(&client, &account, draft).await?;
    let status = if sent.refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::CREATED
    };
    let url = format!(
        "/api/v1/messages/{}",
        crate::webmail::list::enc(&sent.identificativo)
    );
    let mut r = (
        status,
        Json(json!({
            "identificativo": sent.identificativo,
            "accepted": sent.refused.is_none(),
            "refusal": sent.refused,
            "status": url,
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

async fn status<S: Store>(
    State(api): State<Api<S>>,
    Caller(account): Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<timeline::Timeline>> {
    let Path(id) = id?;
    timeline::build(&api.0, &account.address, &id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no transaction {id} in this mailbox"),
            )
        })
}

async fn folders<S: Store>(
    State(api): State<Api<S>>,
    Caller(account): Caller,
) -> ApiResult<Json<Value>> {
    let f = api.0.store.folders(&account.address).await?;
    let m = api.0.store.mailbox(&account.address).await?;
    Ok(Json(json!({
        "folders": f.iter().map(|f| json!({"name": f.name, "messages": f.messages, "unseen": f.unseen})).collect::<Vec<_>>(),
        "quota_bytes": m.as_ref().map(|m| m.quota_bytes),
        "used_bytes": m.as_ref().map(|m| m.used_bytes),
    })))
}

/// The list's query string.
#[derive(Deserialize)]
pub struct ListParams {
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    limit: Option<u64>,
    from: Option<String>,
    subject: Option<String>,
    since: Option<i64>,
    before: Option<i64>,
    identificativo: Option<String>,
    after_uid: Option<u32>,
}

async fn list<S: Store>(
    State(api): State<Api<S>>,
    Caller(account): Caller,
    folder: Result<Path<String>, PathRejection>,
    p: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<pec_store::Page>> {
    let (Path(folder), Query(p)) = (folder?, p?);
    let limit = p.limit.unwrap_or(50);
    if limit > 500 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "limit is at most 500".into(),
        ));
    }
    let q = PageQuery {
        sender: p.from,
        subject: p.subject,
        since: p.since,
        before: p.before,
        identificativo: p.identificativo,
        uid: None,
        after_uid: p.after_uid,
        offset: p.offset,
        limit,
    };
    Ok(Json(api.0.store.page(&account.address, &folder, &q).await?))
}

async fn bytes_of<S: Store>(
    api: &Api<S>,
    account: &Account,
    folder: &str,
    uid: u32,
) -> ApiResult<(pec_store::ListedMessage, Vec<u8>)> {
    let q = PageQuery {
        uid: Some(uid),
        limit: 1,
        ..Default::default()
    };
    let missing = || {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no message {uid} in {folder}"),
        )
    };
    let meta = api
        .0
        .store
        .page(&account.address, folder, &q)
        .await?
        .messages
        .pop()
        .ok_or_else(missing)?;
    let bytes = api
        .0
        .store
        .message_bytes(&account.address, folder, uid)
        .await?
        .ok_or_else(missing)?;
    Ok((meta, bytes))
}

async fn parsed<S: Store>(
    State(api): State<Api<S>>,
    Caller(account): Caller,
    at: Result<Path<(String, u32)>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path((folder, uid)) = at?;
    let (meta, bytes) = bytes_of(&api, &account, &folder, uid).await?;
    let report = api.0.verify_stored(&bytes);
    let view = MessageView::new(&bytes, &report);
    Ok(Json(json!({ "message": meta, "view": view })))
}

async fn raw<S: Store>(
    State(api): State<Api<S>>,
    Caller(account): Caller,
    at: Result<Path<(String, u32)>, PathRejection>,
) -> ApiResult<Response> {
    let Path((folder, uid)) = at?;
    let (_, bytes) = bytes_of(&api, &account, &folder, uid).await?;
    let mut r = bytes.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    Ok(r)
}

async fn attachment<S: Store>(
    State(api): State<Api<S>>,
    Caller(account): Caller,
    at: Result<Path<(String, u32, usize)>, PathRejection>,
) -> ApiResult<Response> {
    let Path((folder, uid, n)) = at?;
    let (_, bytes) = bytes_of(&api, &account, &folder, uid).await?;
    let (name, _, data) = crate::view::attachment(&bytes, n)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no attachment {n}")))?;
    let mut r = data.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        crate::webmail::read::disposition(&name),
    );
    Ok(r)
}

async fn webhook<S: Store>(
    State(api): State<Api<S>>,
    Caller(account): Caller,
) -> ApiResult<Json<Value>> {
    let hook = api.0.store.webhook(&account.address).await?;
    Ok(Json(json!({ "url": hook.map(|h| h.0) })))
}

/// The body of `PUT /api/v1/webhook`.
#[derive(Deserialize)]
pub struct HookBody {
    url: String,
}

async fn set_webhook<S: Store>(
    State(api): State<Api<S>>,
    Caller(account): Caller,
    b: Result<Json<HookBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(b) = b?;
    crate::poster::parse_url(&b.url).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let mut key = [0u8; 32];
    rand::fill(&mut key);
    let secret = hex::encode(key);
    api.0
        .store
        .set_webhook(&account.address, Some((&b.url, &secret)))
        .await?;
    Ok(Json(json!({ "url": b.url, "secret": secret })))
}

async fn drop_webhook<S: Store>(
    State(api): State<Api<S>>,
    Caller(account): Caller,
) -> ApiResult<StatusCode> {
    api.0.store.set_webhook(&account.address, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
