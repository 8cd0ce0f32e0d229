//! A fake Graph API for WhatsApp and Instagram: `/messages`, and media.
//!
//! `GraphMock::start().await` serves `POST /{id}/messages` (and
//! `/{version}/{id}/messages`) on 127.0.0.1. Every body is validated against the
//! documented request shapes and limits (FACTS.md §4, §7); a body the real API
//! would reject is recorded in [`GraphMock::violations`] and answered 400 with a
//! Graph error (code 100). Valid requests get fixture-like success bodies with
//! unique ids (`wamid.MOCK…` / `mid.MOCK…`), unless a canned response is queued.
//!
//! Media, as Meta documents it (FACTS.md §9, OAS `/{Media-ID}` and
//! `/{Phone-Number-ID}/media`):
//! - [`GraphMock::add_whatsapp_media`] registers a file a customer "sent";
//!   `GET /{media-id}` (Bearer) answers `{url, mime_type, sha256, file_size, id,
//!   messaging_product}` and the URL serves the bytes only with the same Bearer.
//! - [`GraphMock::add_cdn_file`] serves a file at an Instagram-CDN-like URL
//!   without a token (and [`GraphMock::expire_cdn_file`] makes it answer 404).
//! - `POST /{phone-number-id}/media` takes a multipart upload (`messaging_product`,
//!   `type`, `file`), checks type and size against WhatsApp's table and answers
//!   `{id}`; [`GraphMock::uploads`] lists them.
//! - Media messages must name an uploaded id (of a type the message type takes)
//!   or a link the mock can fetch (as Meta would); Instagram attachments are
//!   fetched from their URL too ([`GraphMock::fetched`]).
//!
//! Media traffic is recorded apart from `/messages` ([`GraphMock::media_requests`]),
//! and so are read receipts ([`GraphMock::receipts`]), so counts of sent
//! messages stay what they were.
//!
//! Message templates (WhatsApp Business Management API, `GET
//! /{waba-id}/message_templates`, as Meta's template-management guide shows
//! it): [`GraphMock::set_templates`] sets what the account has; the list needs
//! a Bearer token, takes only `fields` (known template fields), `limit`,
//! `after`/`before` (cursors it gave out), `status`, `category`, `name` and
//! `language`, answers `{data, paging: {cursors: {before, after}, next?}}`
//! with only the fields asked for, and pages by `limit` (default 25). The
//! requests are in [`GraphMock::template_requests`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Request path, e.g. `/112233445566778/messages`.
    pub path: String,
    /// The `{id}` path segment.
    pub id: String,
    /// The `Authorization` header, when sent.
    pub auth: Option<String>,
    /// The parsed JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct CannedResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
    /// `Retry-After` header value, when any.
    pub retry_after: Option<String>,
}

/// A WhatsApp media object the mock serves.
#[derive(Debug, Clone)]
pub struct MockMedia {
    /// The media id (as in a webhook's `image.id`).
    pub id: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// MIME type.
    pub mime_type: String,
    /// SHA-256 as a webhook carries it (base64).
    pub sha256_base64: String,
    /// The `GET /{media-id}` answer (tests may tamper with it).
    pub answer: Value,
}

/// A file uploaded with `POST /{phone-number-id}/media`.
#[derive(Debug, Clone)]
pub struct MockUpload {
    /// The media id the mock answered.
    pub id: String,
    /// The phone number id in the path.
    pub phone_number_id: String,
    /// The `type` field.
    pub mime_type: String,
    /// The file part's name.
    pub filename: Option<String>,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A file the mock fetched from a link, as Meta would before delivering it.
#[derive(Debug, Clone)]
pub struct FetchedFile {
    /// The link.
    pub url: String,
    /// The `Content-Type` it was served with.
    pub content_type: Option<String>,
    /// The bytes.
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<RecordedRequest>>,
    media_requests: Mutex<Vec<RecordedRequest>>,
    receipts: Mutex<Vec<RecordedRequest>>,
    violations: Mutex<Vec<String>>,
    canned: Mutex<VecDeque<CannedResponse>>,
    delay: Mutex<Option<Duration>>,
    media_delay: Mutex<Option<Duration>>,
    notify: Notify,
    counter: AtomicU64,
    media: Mutex<HashMap<String, MockMedia>>,
    cdn: Mutex<HashMap<String, (Vec<u8>, String)>>,
    uploads: Mutex<Vec<MockUpload>>,
    fetched: Mutex<Vec<FetchedFile>>,
    templates: Mutex<Vec<Value>>,
    templates_of: Mutex<HashMap<String, Vec<Value>>>,
    template_requests: Mutex<Vec<RecordedRequest>>,
}

impl Inner {
    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }

    fn record_media(&self, path: String, id: String, auth: Option<String>, body: Value) {
        self.media_requests.lock().unwrap().push(RecordedRequest {
            path,
            id,
            auth,
            body,
            at: Instant::now(),
        });
    }
}

/// The running mock. Dropping it stops the server.
pub struct GraphMock {
    inner: Arc<Inner>,
    base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GraphMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GraphMock {
    /// Starts the server on an ephemeral port.
    pub async fn start() -> GraphMock {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/{id}/messages", post(handle))
            .route("/{version}/{id}/messages", post(handle_versioned))
            .route("/{id}/media", post(upload))
            .route("/{version}/{id}/media", post(upload_versioned))
            .route("/{id}/message_templates", get(templates))
            .route(
                "/{version}/{id}/message_templates",
                get(templates_versioned),
            )
            .route("/{id}", get(media_info))
            .route("/{version}/{id}", get(media_info_versioned))
            .route("/__media/{id}", get(media_download))
            .route("/__cdn/{name}", get(cdn_download))
            .route("/__requests", get(list_requests))
            .layer(axum::extract::DefaultBodyLimit::max(200 * 1024 * 1024))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        GraphMock {
            inner,
            base_url: format!("http://{addr}"),
            task,
        }
    }

    /// `http://127.0.0.1:{port}` — use as the clients' `api_base`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The templates the WhatsApp Business Account has, as Meta lists them
    /// (see [`template`]).
    pub fn set_templates(&self, templates: Vec<Value>) {
        *self.inner.templates.lock().unwrap() = templates;
    }

    /// The templates of one WhatsApp Business Account `waba` (others have
    /// those of [`GraphMock::set_templates`]).
    pub fn set_templates_of(&self, waba: &str, templates: Vec<Value>) {
        self.inner
            .templates_of
            .lock()
            .unwrap()
            .insert(waba.to_string(), templates);
    }

    /// `GET …/message_templates` requests so far.
    pub fn template_requests(&self) -> Vec<RecordedRequest> {
        self.inner.template_requests.lock().unwrap().clone()
    }

    /// Answers the next `n` valid requests with `status` and `error_json`.
    pub fn fail_next(&self, n: usize, status: u16, error_json: Value) {
        let mut q = self.inner.canned.lock().unwrap();
        for _ in 0..n {
            q.push_back(CannedResponse {
                status,
                body: error_json.clone(),
                retry_after: None,
            });
        }
    }

    /// Queues one canned response for the next valid request.
    pub fn push_response(&self, response: CannedResponse) {
        self.inner.canned.lock().unwrap().push_back(response);
    }

    /// Delays every answer by `delay` (`None` for no delay).
    pub fn set_delay(&self, delay: Option<Duration>) {
        *self.inner.delay.lock().unwrap() = delay;
    }

    /// Delays every file download (WhatsApp media URL, CDN) by `delay`, so a
    /// download is in flight for that long (`None` for no delay).
    pub fn set_media_delay(&self, delay: Option<Duration>) {
        *self.inner.media_delay.lock().unwrap() = delay;
    }

    /// Registers a file a WhatsApp customer sent; returns it with its media id
    /// and the base64 SHA-256 a webhook would carry.
    pub fn add_whatsapp_media(&self, bytes: &[u8], mime_type: &str) -> MockMedia {
        self.add_whatsapp_media_with(bytes, mime_type, |_| {})
    }

    /// Like [`GraphMock::add_whatsapp_media`], with `tamper` applied to the
    /// `GET /{media-id}` answer (to test the client's checks).
    pub fn add_whatsapp_media_with(
        &self,
        bytes: &[u8],
        mime_type: &str,
        tamper: impl FnOnce(&mut Value),
    ) -> MockMedia {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{}", 9_100_000_000_000_000u64 + n);
        let digest = Sha256::digest(bytes);
        let mut answer = json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/__media/{id}", self.base_url),
            "mime_type": mime_type,
            // Meta's media answer: hex here, while webhooks carry base64.
            "sha256": hex::encode(digest),
            // A string, as in Meta's OpenAPI example.
            "file_size": bytes.len().to_string(),
            "id": id,
        });
        tamper(&mut answer);
        let media = MockMedia {
            id: id.clone(),
            bytes: bytes.to_vec(),
            mime_type: mime_type.to_string(),
            sha256_base64: base64::engine::general_purpose::STANDARD.encode(digest),
            answer,
        };
        self.inner.media.lock().unwrap().insert(id, media.clone());
        media
    }

    /// Serves `bytes` without a token at a CDN-like URL (an Instagram
    /// attachment's `payload.url`), with `content_type`; returns the URL.
    pub fn add_cdn_file(&self, bytes: &[u8], content_type: &str) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("asset{n}");
        self.inner
            .cdn
            .lock()
            .unwrap()
            .insert(name.clone(), (bytes.to_vec(), content_type.to_string()));
        format!("{}/__cdn/{name}?signature=MOCKSIG{n}", self.base_url)
    }

    /// Makes a CDN URL answer 404 from now on, as an expired one does.
    pub fn expire_cdn_file(&self, url: &str) {
        let name = url
            .rsplit("/__cdn/")
            .next()
            .and_then(|rest| rest.split('?').next())
            .unwrap_or_default();
        self.inner.cdn.lock().unwrap().remove(name);
    }

    /// Files uploaded with `POST /{phone-number-id}/media`, in order.
    pub fn uploads(&self) -> Vec<MockUpload> {
        self.inner.uploads.lock().unwrap().clone()
    }

    /// Files fetched from links named in media messages, in order.
    pub fn fetched(&self) -> Vec<FetchedFile> {
        self.inner.fetched.lock().unwrap().clone()
    }

    /// Media traffic (`GET /{media-id}`, downloads, uploads), in order; the body
    /// is `Value::Null` except for uploads (`{"type", "filename", "size"}`).
    pub fn media_requests(&self) -> Vec<RecordedRequest> {
        self.inner.media_requests.lock().unwrap().clone()
    }

    /// WhatsApp read receipts (`status: read`, with or without the typing
    /// indicator), in order; kept apart from [`GraphMock::requests`].
    pub fn receipts(&self) -> Vec<RecordedRequest> {
        self.inner.receipts.lock().unwrap().clone()
    }

    /// Messages received so far (read receipts are in
    /// [`GraphMock::receipts`]), in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Shape violations seen so far (tests assert this is empty).
    pub fn violations(&self) -> Vec<String> {
        self.inner.violations.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; `false` on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.requests.lock().unwrap().len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inner.requests.lock().unwrap().len() >= n;
            }
        }
    }
}

/// `GET /__requests`: what arrived so far, for test processes outside Rust
/// (the console's browser test): `[{"path", "id", "body"}]`.
async fn list_requests(State(inner): State<Arc<Inner>>) -> Response {
    let all: Vec<Value> = inner
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| json!({"path": r.path, "id": r.id, "body": r.body}))
        .collect();
    axum::Json(all).into_response()
}

async fn handle_versioned(
    State(inner): State<Arc<Inner>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        inner,
        format!("/{version}/{id}/messages"),
        id,
        headers,
        body,
    )
    .await
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(inner, format!("/{id}/messages"), id, headers, body).await
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "MOCKTRACE"}});
    (status, axum::Json(body)).into_response()
}

async fn respond(
    inner: Arc<Inner>,
    path: String,
    id: String,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    // Read receipts (WhatsApp mark-as-read, typing) are kept apart from sent
    // messages, and canned answers are for messages only.
    let is_receipt = body.get("status").is_some();
    let recorded = RecordedRequest {
        path: path.clone(),
        id,
        auth: auth.clone(),
        body: body.clone(),
        at: Instant::now(),
    };
    if is_receipt {
        inner.receipts.lock().unwrap().push(recorded);
    } else {
        inner.requests.lock().unwrap().push(recorded);
        inner.notify.notify_waiters();
    }

    let delay = *inner.delay.lock().unwrap();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if !auth
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer ") && a.len() > 7)
    {
        inner
            .violations
            .lock()
            .unwrap()
            .push(format!("{path}: missing Bearer token"));
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    }
    let is_whatsapp = body.get("messaging_product").is_some();
    let verdict = if is_whatsapp {
        validate_whatsapp_request(&body)
    } else {
        validate_instagram_request(&body)
    };
    let verdict = match verdict {
        Ok(()) => check_media_sources(&inner, &body, is_whatsapp).await,
        Err(e) => Err(e),
    };
    if let Err(why) = verdict {
        inner
            .violations
            .lock()
            .unwrap()
            .push(format!("{path}: {why}"));
        return graph_error(StatusCode::BAD_REQUEST, 100, &format!("(#100) {why}"));
    }
    let canned = if is_receipt {
        None
    } else {
        inner.canned.lock().unwrap().pop_front()
    };
    if let Some(c) = canned {
        let mut resp =
            (StatusCode::from_u16(c.status).unwrap(), axum::Json(c.body)).into_response();
        if let Some(ra) = c.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from_str(&ra).unwrap());
        }
        return resp;
    }
    let n = inner.counter.fetch_add(1, Ordering::Relaxed) + 1;
    let ok = if is_whatsapp {
        if body.get("status").is_some() {
            json!({"success": true})
        } else {
            let to = body["to"].as_str().unwrap_or_default();
            json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.trim_start_matches('+')}],
                "messages": [{"id": format!("wamid.MOCK{n:012}"), "message_status": "accepted"}]
            })
        }
    } else {
        json!({"recipient_id": body["recipient"]["id"], "message_id": format!("mid.MOCK{n:012}")})
    };
    (StatusCode::OK, axum::Json(ok)).into_response()
}

// ---------------------------------------------------------------------------
// Message templates
// ---------------------------------------------------------------------------

/// A template object as `GET /{waba-id}/message_templates` lists it: a BODY
/// component with `body` (and an `example` with one value per parameter),
/// and quick-reply `buttons` when given.
pub fn template(
    name: &str,
    language: &str,
    status: &str,
    category: &str,
    body: &str,
    buttons: &[&str],
) -> Value {
    let params = body.matches("{{").count();
    let mut components = vec![json!({
        "type": "BODY",
        "text": body,
        "example": { "body_text": [ (1..=params).map(|i| format!("contoh{i}")).collect::<Vec<_>>() ] },
    })];
    if !buttons.is_empty() {
        components.push(json!({
            "type": "BUTTONS",
            "buttons": buttons.iter().map(|b| json!({"type": "QUICK_REPLY", "text": b})).collect::<Vec<_>>(),
        }));
    }
    json!({
        "id": format!("{}", 1_000_000 + name.len() * 7 + language.len()),
        "name": name, "language": language, "status": status, "category": category,
        "parameter_format": "POSITIONAL", "components": components,
    })
}

/// Fields a template has (the `fields` parameter may name only these).
const TEMPLATE_FIELDS: &[&str] = &[
    "id",
    "name",
    "language",
    "status",
    "category",
    "components",
    "parameter_format",
    "previous_category",
    "quality_score",
    "rejected_reason",
    "sub_category",
];

fn template_cursor(index: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("MOCKTPL:{index}"))
}

fn template_cursor_index(cursor: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("MOCKTPL:")?
        .parse()
        .ok()
}

async fn templates_versioned(
    State(inner): State<Arc<Inner>>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    templates_at(
        inner,
        format!("/{version}/{id}/message_templates"),
        id,
        query,
        headers,
    )
}

async fn templates(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    templates_at(
        inner,
        format!("/{id}/message_templates"),
        id,
        query,
        headers,
    )
}

fn templates_at(
    inner: Arc<Inner>,
    path: String,
    id: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    let auth = auth_of(&headers);
    inner
        .template_requests
        .lock()
        .unwrap()
        .push(RecordedRequest {
            path: path.clone(),
            id: id.clone(),
            auth: auth.clone(),
            body: json!(query),
            at: Instant::now(),
        });
    let refuse = |what: String| {
        inner.violation(format!("{path}: {what}"));
        graph_error(StatusCode::BAD_REQUEST, 100, &what)
    };
    if !bearer_ok(&auth) {
        inner.violation(format!("{path}: template list without a Bearer token"));
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    }
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return refuse(format!("{id:?} is not a WhatsApp Business Account id"));
    }
    for k in query.keys() {
        if ![
            "fields", "limit", "after", "before", "status", "category", "name", "language",
        ]
        .contains(&k.as_str())
        {
            return refuse(format!("unknown query parameter {k:?}"));
        }
    }
    let fields: Vec<String> = match query.get("fields") {
        None => vec![
            "id".into(),
            "name".into(),
            "language".into(),
            "status".into(),
            "category".into(),
            "components".into(),
        ],
        Some(f) => f.split(',').map(|x| x.trim().to_string()).collect(),
    };
    if let Some(bad) = fields
        .iter()
        .find(|f| !TEMPLATE_FIELDS.contains(&f.as_str()))
    {
        return refuse(format!(
            "(#100) Tried accessing nonexisting field ({bad}) on node type (WhatsAppBusinessHSM)"
        ));
    }
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return refuse("limit must be a positive integer".into()),
    };
    let start = match query.get("after") {
        None => 0,
        Some(c) => match template_cursor_index(c) {
            Some(i) => i + 1,
            None => return refuse(format!("after={c:?} is not a cursor this API gave out")),
        },
    };
    if let Some(c) = query.get("before")
        && template_cursor_index(c).is_none()
    {
        return refuse(format!("before={c:?} is not a cursor this API gave out"));
    }
    let own = inner.templates_of.lock().unwrap().get(&id).cloned();
    let all: Vec<Value> = own
        .unwrap_or_else(|| inner.templates.lock().unwrap().clone())
        .iter()
        .filter(|t| {
            ["status", "category", "name", "language"].iter().all(|k| {
                query
                    .get(*k)
                    .is_none_or(|want| t[*k].as_str() == Some(want.as_str()))
            })
        })
        .cloned()
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|t| {
            let mut out = serde_json::Map::new();
            for f in &fields {
                if let Some(v) = t.get(f) {
                    out.insert(f.clone(), v.clone());
                }
            }
            Value::Object(out)
        })
        .collect();
    let end = start + page.len();
    let mut paging = json!({
        "cursors": {
            "before": template_cursor(start),
            "after": template_cursor(end.saturating_sub(1)),
        }
    });
    if end < all.len() {
        paging["next"] = json!(format!(
            "https://graph.facebook.com/v23.0/{id}/message_templates?limit={limit}&after={}",
            template_cursor(end - 1)
        ));
    }
    (
        StatusCode::OK,
        axum::Json(json!({ "data": page, "paging": paging })),
    )
        .into_response()
}

// Media
// ---------------------------------------------------------------------------

fn bearer_ok(auth: &Option<String>) -> bool {
    auth.as_deref()
        .is_some_and(|a| a.starts_with("Bearer ") && a.len() > 7)
}

fn auth_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn media_info_versioned(
    State(inner): State<Arc<Inner>>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    media_info_at(inner, format!("/{version}/{id}"), id, query, headers)
}

async fn media_info(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    media_info_at(inner, format!("/{id}"), id, query, headers)
}

/// `GET /{media-id}`: Meta's media answer.
fn media_info_at(
    inner: Arc<Inner>,
    path: String,
    id: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    let auth = auth_of(&headers);
    inner.record_media(path.clone(), id.clone(), auth.clone(), Value::Null);
    if !bearer_ok(&auth) {
        inner.violation(format!("{path}: media lookup without a Bearer token"));
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.");
    }
    for (k, v) in &query {
        if k != "phone_number_id" || v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) {
            inner.violation(format!("{path}: unexpected query parameter {k}={v}"));
        }
    }
    let media = inner.media.lock().unwrap().get(&id).cloned();
    match media {
        Some(m) => (StatusCode::OK, axum::Json(m.answer)).into_response(),
        None => graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "Unsupported get request. Object with ID does not exist",
        ),
    }
}

/// The short-lived media URL: only with the Bearer token (FACTS.md §9).
async fn media_download(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let auth = auth_of(&headers);
    inner.record_media(
        format!("/__media/{id}"),
        id.clone(),
        auth.clone(),
        Value::Null,
    );
    if !bearer_ok(&auth) {
        inner.violation(format!("/__media/{id}: download without the Bearer token"));
        return (StatusCode::UNAUTHORIZED, "token required").into_response();
    }
    let delay = *inner.media_delay.lock().unwrap();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let media = inner.media.lock().unwrap().get(&id).cloned();
    match media {
        Some(m) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, m.mime_type)],
            m.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "gone").into_response(),
    }
}

/// An Instagram-CDN-like URL: no token, 404 once expired.
async fn cdn_download(
    State(inner): State<Arc<Inner>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    inner.record_media(
        format!("/__cdn/{name}"),
        name.clone(),
        auth_of(&headers),
        Value::Null,
    );
    let delay = *inner.media_delay.lock().unwrap();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let file = inner.cdn.lock().unwrap().get(&name).cloned();
    match file {
        Some((bytes, content_type)) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, content_type)],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "URL signature expired").into_response(),
    }
}

/// WhatsApp's accepted upload types and their limits (AWS End User Messaging's
/// copy of Meta's "Supported media types"; decimal MB): `(mime, max bytes, the
/// message types that may send it)`.
const WA_UPLOAD_TYPES: &[(&str, u64, &[&str])] = &[
    ("audio/aac", 16_000_000, &["audio"]),
    ("audio/amr", 16_000_000, &["audio"]),
    ("audio/mpeg", 16_000_000, &["audio"]),
    ("audio/mp4", 16_000_000, &["audio"]),
    ("audio/ogg", 16_000_000, &["audio"]),
    ("text/plain", 100_000_000, &["document"]),
    ("application/pdf", 100_000_000, &["document"]),
    ("application/msword", 100_000_000, &["document"]),
    ("application/vnd.ms-excel", 100_000_000, &["document"]),
    ("application/vnd.ms-powerpoint", 100_000_000, &["document"]),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        100_000_000,
        &["document"],
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        100_000_000,
        &["document"],
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        100_000_000,
        &["document"],
    ),
    ("image/jpeg", 5_000_000, &["image"]),
    ("image/png", 5_000_000, &["image"]),
    ("image/webp", 500_000, &["sticker"]),
    ("video/mp4", 16_000_000, &["video"]),
    ("video/3gpp", 16_000_000, &["video"]),
    ("video/3gp", 16_000_000, &["video"]),
];

fn wa_type(mime: &str) -> Option<(u64, &'static [&'static str])> {
    let base = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    WA_UPLOAD_TYPES
        .iter()
        .find(|(m, _, _)| *m == base)
        .map(|(_, max, types)| (*max, *types))
}

/// One part of a multipart body.
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A small `multipart/form-data` reader (RFC 7578), enough to check what a
/// client sends; `Err` describes what is malformed.
fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .ok_or("multipart body without a boundary")?;
    if !content_type.trim_start().starts_with("multipart/form-data") {
        return Err(format!(
            "content type {content_type} is not multipart/form-data"
        ));
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut pos = find(body, &delimiter, 0).ok_or("no first boundary")? + delimiter.len();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Ok(parts);
        }
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return Err("boundary not followed by CRLF".into());
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("part without a blank line")?;
        let head =
            std::str::from_utf8(&body[pos..head_end]).map_err(|_| "non-UTF-8 part headers")?;
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            data: Vec::new(),
        };
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').ok_or("malformed part header")?;
            match k.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for attr in v.split(';').map(str::trim).skip(1) {
                        if let Some(n) = attr.strip_prefix("name=") {
                            part.name = n.trim_matches('"').to_string();
                        } else if let Some(f) = attr.strip_prefix("filename=") {
                            part.filename = Some(f.trim_matches('"').to_string());
                        }
                    }
                }
                "content-type" => part.content_type = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut end_marker = b"\r\n".to_vec();
        end_marker.extend_from_slice(&delimiter);
        let data_end = find(body, &end_marker, head_end + 4).ok_or("part without an end")?;
        part.data = body[head_end + 4..data_end].to_vec();
        parts.push(part);
        pos = data_end + end_marker.len();
    }
}

async fn upload_versioned(
    State(inner): State<Arc<Inner>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    upload_at(inner, format!("/{version}/{id}/media"), id, headers, body)
}

async fn upload(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    upload_at(inner, format!("/{id}/media"), id, headers, body)
}

/// `POST /{phone-number-id}/media`: multipart `messaging_product`, `type`, `file`.
fn upload_at(
    inner: Arc<Inner>,
    path: String,
    phone_number_id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = auth_of(&headers);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let verdict = (|| -> Result<MockUpload, String> {
        if !bearer_ok(&auth) {
            return Err("upload without a Bearer token".into());
        }
        if !phone_number_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("`{phone_number_id}` is not a phone number id"));
        }
        let parts = parse_multipart(&content_type, &body)?;
        let mut names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if names != ["file", "messaging_product", "type"] {
            return Err(format!(
                "parts {names:?}; expected file, messaging_product, type"
            ));
        }
        let field = |n: &str| parts.iter().find(|p| p.name == n).unwrap();
        if field("messaging_product").data != b"whatsapp" {
            return Err("messaging_product must be \"whatsapp\"".into());
        }
        let mime = String::from_utf8(field("type").data.clone()).map_err(|_| "type is not text")?;
        let file = field("file");
        let file_type = file
            .content_type
            .clone()
            .ok_or("the file part has no Content-Type")?;
        if file_type.split(';').next() != mime.split(';').next() {
            return Err(format!("type {mime} but the file part says {file_type}"));
        }
        let (max, _) = wa_type(&mime).ok_or(format!("WhatsApp does not take {mime} files"))?;
        let size = file.data.len() as u64;
        if size == 0 || size > max {
            return Err(format!("{mime} file of {size} bytes (1..={max})"));
        }
        Ok(MockUpload {
            id: String::new(),
            phone_number_id: phone_number_id.clone(),
            mime_type: mime,
            filename: file.filename.clone(),
            bytes: file.data.clone(),
        })
    })();
    let summary = match &verdict {
        Ok(u) => json!({"type": u.mime_type, "filename": u.filename, "size": u.bytes.len()}),
        Err(_) => Value::Null,
    };
    inner.record_media(path.clone(), phone_number_id, auth, summary);
    match verdict {
        Ok(mut upload) => {
            let n = inner.counter.fetch_add(1, Ordering::Relaxed) + 1;
            upload.id = format!("{}", 8_200_000_000_000_000u64 + n);
            let id = upload.id.clone();
            inner.uploads.lock().unwrap().push(upload);
            (StatusCode::OK, axum::Json(json!({"id": id}))).into_response()
        }
        Err(why) => {
            inner.violation(format!("{path}: {why}"));
            graph_error(StatusCode::BAD_REQUEST, 100, &format!("(#100) {why}"))
        }
    }
}

/// Fetches a link as Meta does before delivering a media message; records it.
async fn fetch_link(inner: &Inner, url: &str) -> Result<FetchedFile, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("fetching {url} answered {}", resp.status()));
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading {url}: {e}"))?;
    let file = FetchedFile {
        url: url.to_string(),
        content_type,
        bytes: bytes.to_vec(),
    };
    inner.fetched.lock().unwrap().push(file.clone());
    Ok(file)
}

/// The checks of a media message that need the mock's state: an id must be one
/// uploaded here, of a type the message type takes; a link must be fetchable.
async fn check_media_sources(inner: &Inner, body: &Value, is_whatsapp: bool) -> Check {
    if is_whatsapp {
        let kind = body["type"].as_str().unwrap_or_default();
        if !WA_MEDIA_TYPES.contains(&kind) {
            return Ok(());
        }
        let media = &body[kind];
        if let Some(id) = media.get("id").and_then(Value::as_str) {
            let upload = inner
                .uploads
                .lock()
                .unwrap()
                .iter()
                .find(|u| u.id == id)
                .cloned();
            let upload = upload.ok_or(format!("{kind}.id `{id}` was not uploaded"))?;
            let (_, types) = wa_type(&upload.mime_type).unwrap_or((0, &[]));
            if !types.contains(&kind) {
                return Err(format!("a {} upload sent as {kind}", upload.mime_type));
            }
        }
        if let Some(link) = media.get("link").and_then(Value::as_str) {
            fetch_link(inner, link).await?;
        }
        return Ok(());
    }
    let Some(payload) = body.pointer("/message/attachment/payload") else {
        return Ok(());
    };
    if let Some(url) = payload.get("url").and_then(Value::as_str) {
        let file = fetch_link(inner, url).await?;
        let kind = body
            .pointer("/message/attachment/type")
            .and_then(Value::as_str);
        let ct = file.content_type.unwrap_or_default();
        let ok = match kind {
            Some("image") => ct.starts_with("image/png") || ct.starts_with("image/jpeg"),
            Some("video") => ct.starts_with("video/"),
            Some("audio") => ct.starts_with("audio/"),
            Some("file") => ct.starts_with("application/pdf"),
            _ => false,
        };
        if !ok {
            return Err(format!("{url} served {ct:?} for a {kind:?} attachment"));
        }
        let max: usize = if kind == Some("image") {
            8_000_000
        } else {
            25_000_000
        };
        if file.bytes.is_empty() || file.bytes.len() > max {
            return Err(format!("{url}: {} bytes (1..={max})", file.bytes.len()));
        }
    }
    Ok(())
}

/// WhatsApp message types that carry a media object.
const WA_MEDIA_TYPES: &[&str] = &["image", "video", "audio", "document", "sticker"];

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

type Check = Result<(), String>;

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a serde_json::Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be an object"))
}

fn only_keys(v: &Value, what: &str, allowed: &[&str]) -> Check {
    for k in obj(v, what)?.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("{what}: unexpected key `{k}`"));
        }
    }
    Ok(())
}

fn string<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what}.{key} must be a string"))
}

/// A required, non-empty string of at most `max` chars.
fn text_field<'a>(v: &'a Value, key: &str, what: &str, max: usize) -> Result<&'a str, String> {
    let s = string(v, key, what)?;
    if s.trim().is_empty() {
        return Err(format!("{what}.{key} is empty"));
    }
    let n = s.chars().count();
    if n > max {
        return Err(format!("{what}.{key} has {n} chars (max {max})"));
    }
    Ok(s)
}

fn array<'a>(
    v: &'a Value,
    key: &str,
    what: &str,
    min: usize,
    max: usize,
) -> Result<&'a Vec<Value>, String> {
    let a = v
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{what}.{key} must be an array"))?;
    if a.len() < min || a.len() > max {
        return Err(format!(
            "{what}.{key} has {} items ({min}..={max})",
            a.len()
        ));
    }
    Ok(a)
}

/// Validates a WhatsApp `/messages` request body against FACTS.md §4.
pub fn validate_whatsapp_request(v: &Value) -> Check {
    obj(v, "body")?;
    if v.get("messaging_product") != Some(&json!("whatsapp")) {
        return Err("messaging_product must be \"whatsapp\"".into());
    }
    if v.get("status").is_some() {
        only_keys(
            v,
            "body",
            &[
                "messaging_product",
                "status",
                "message_id",
                "typing_indicator",
            ],
        )?;
        if v["status"] != "read" {
            return Err("status must be \"read\"".into());
        }
        text_field(v, "message_id", "body", 1024)?;
        if let Some(t) = v.get("typing_indicator") {
            only_keys(t, "typing_indicator", &["type"])?;
            if t["type"] != "text" {
                return Err("typing_indicator.type must be \"text\"".into());
            }
        }
        return Ok(());
    }
    let kind = string(v, "type", "body")?;
    only_keys(
        v,
        "body",
        &[
            "messaging_product",
            "recipient_type",
            "to",
            "type",
            "context",
            "biz_opaque_callback_data",
            kind,
        ],
    )?;
    let to = text_field(v, "to", "body", 64)?;
    if !to
        .trim_start_matches('+')
        .chars()
        .all(|c| c.is_ascii_digit())
    {
        return Err(format!("body.to `{to}` is not a phone number"));
    }
    if let Some(rt) = v.get("recipient_type")
        && rt != "individual"
    {
        return Err("recipient_type must be \"individual\"".into());
    }
    if let Some(c) = v.get("context") {
        only_keys(c, "context", &["message_id"])?;
        text_field(c, "message_id", "context", 1024)?;
    }
    let inner = v.get(kind).ok_or_else(|| format!("body.{kind} missing"))?;
    match kind {
        "text" => {
            only_keys(inner, "text", &["body", "preview_url"])?;
            text_field(inner, "body", "text", 4096)?;
            if let Some(p) = inner.get("preview_url")
                && !p.is_boolean()
            {
                return Err("text.preview_url must be a boolean".into());
            }
            Ok(())
        }
        "interactive" => validate_interactive(inner),
        "template" => validate_template(inner),
        media if WA_MEDIA_TYPES.contains(&media) => validate_media_object(media, inner),
        other => Err(format!("type `{other}` is not used by Balas")),
    }
}

/// A WhatsApp media object (OAS `MediaObject` / `MediaObject_1`): exactly one of
/// `id` and `link`; `caption` (≤ 1024 chars) only on image, video and document;
/// `filename` only on document.
fn validate_media_object(kind: &str, m: &Value) -> Check {
    let mut allowed = vec!["id", "link"];
    if matches!(kind, "image" | "video" | "document") {
        allowed.push("caption");
    }
    if kind == "document" {
        allowed.push("filename");
    }
    only_keys(m, kind, &allowed)?;
    match (m.get("id"), m.get("link")) {
        (Some(_), None) => {
            text_field(m, "id", kind, 256)?;
        }
        (None, Some(_)) => {
            let link = text_field(m, "link", kind, 2048)?;
            if !(link.starts_with("https://") || link.starts_with("http://")) {
                return Err(format!("{kind}.link `{link}` is not an HTTP(S) URL"));
            }
        }
        _ => return Err(format!("{kind} needs exactly one of id / link")),
    }
    if m.get("caption").is_some() {
        text_field(m, "caption", kind, 1024)?;
    }
    if m.get("filename").is_some() {
        let name = text_field(m, "filename", kind, 255)?;
        if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
            return Err(format!("{kind}.filename `{name}` is not a plain file name"));
        }
    }
    Ok(())
}

fn validate_interactive(i: &Value) -> Check {
    only_keys(
        i,
        "interactive",
        &["type", "header", "body", "footer", "action"],
    )?;
    let kind = string(i, "type", "interactive")?;
    if let Some(h) = i.get("header") {
        only_keys(h, "header", &["type", "text"])?;
        if h["type"] != "text" {
            return Err("header.type must be \"text\"".into());
        }
        text_field(h, "text", "header", 60)?;
    }
    let body = i.get("body").ok_or("interactive.body missing")?;
    only_keys(body, "body", &["text"])?;
    text_field(body, "text", "body", 1024)?;
    if let Some(f) = i.get("footer") {
        only_keys(f, "footer", &["text"])?;
        text_field(f, "text", "footer", 60)?;
    }
    let action = i.get("action").ok_or("interactive.action missing")?;
    match kind {
        "button" => {
            only_keys(action, "action", &["buttons"])?;
            let buttons = array(action, "buttons", "action", 1, 3)?;
            let (mut ids, mut titles) = (HashSet::new(), HashSet::new());
            for b in buttons {
                only_keys(b, "button", &["type", "reply"])?;
                if b["type"] != "reply" {
                    return Err("button.type must be \"reply\"".into());
                }
                let r = b.get("reply").ok_or("button.reply missing")?;
                only_keys(r, "reply", &["id", "title"])?;
                let id = text_field(r, "id", "reply", 256)?;
                if id.trim() != id {
                    return Err(format!("reply.id `{id}` has leading/trailing spaces"));
                }
                let title = text_field(r, "title", "reply", 20)?;
                if !ids.insert(id) || !titles.insert(title) {
                    return Err("button ids and titles must be unique".into());
                }
            }
            Ok(())
        }
        "list" => {
            only_keys(action, "action", &["button", "sections"])?;
            text_field(action, "button", "action", 20)?;
            let sections = array(action, "sections", "action", 1, 10)?;
            let mut ids = HashSet::new();
            let mut total = 0;
            for s in sections {
                only_keys(s, "section", &["title", "rows"])?;
                if sections.len() > 1 || s.get("title").is_some() {
                    text_field(s, "title", "section", 24)?;
                }
                let rows = array(s, "rows", "section", 1, 10)?;
                total += rows.len();
                for r in rows {
                    only_keys(r, "row", &["id", "title", "description"])?;
                    let id = text_field(r, "id", "row", 200)?;
                    if !ids.insert(id) {
                        return Err(format!("row id `{id}` is not unique"));
                    }
                    text_field(r, "title", "row", 24)?;
                    if r.get("description").is_some() {
                        text_field(r, "description", "row", 72)?;
                    }
                }
            }
            if total > 10 {
                return Err(format!("list has {total} rows (max 10)"));
            }
            Ok(())
        }
        other => Err(format!("interactive.type `{other}` is not used by Balas")),
    }
}

fn validate_template(t: &Value) -> Check {
    only_keys(t, "template", &["name", "language", "components"])?;
    text_field(t, "name", "template", 512)?;
    let lang = t.get("language").ok_or("template.language missing")?;
    only_keys(lang, "language", &["code", "policy"])?;
    text_field(lang, "code", "language", 16)?;
    let Some(components) = t.get("components") else {
        return Ok(());
    };
    let components = components
        .as_array()
        .ok_or("template.components must be an array")?;
    for c in components {
        let kind = string(c, "type", "component")?;
        match kind {
            "body" | "header" => {
                only_keys(c, "component", &["type", "parameters"])?;
                for p in array(c, "parameters", "component", 1, 100)? {
                    let ptype = string(p, "type", "parameter")?;
                    if ptype == "text" {
                        only_keys(p, "parameter", &["type", "text"])?;
                        let s = text_field(p, "text", "parameter", 32768)?;
                        if s.contains(['\n', '\t']) || s.contains("     ") {
                            return Err("template parameter has newline/tab or >4 spaces".into());
                        }
                    } else if !["currency", "date_time", "image", "video", "document"]
                        .contains(&ptype)
                    {
                        return Err(format!("parameter type `{ptype}` not allowed"));
                    }
                }
            }
            "button" => {
                only_keys(c, "component", &["type", "sub_type", "index", "parameters"])?;
                let sub = string(c, "sub_type", "component")?;
                let index = string(c, "index", "component")?;
                if index.is_empty() || !index.chars().all(|ch| ch.is_ascii_digit()) {
                    return Err(format!("button index `{index}` must be a digit string"));
                }
                let params = array(c, "parameters", "component", 1, 1)?;
                match sub {
                    "quick_reply" => {
                        only_keys(&params[0], "parameter", &["type", "payload"])?;
                        if params[0]["type"] != "payload" {
                            return Err("quick_reply parameter type must be \"payload\"".into());
                        }
                        text_field(&params[0], "payload", "parameter", 1000)?;
                    }
                    "url" => {
                        text_field(&params[0], "text", "parameter", 2000)?;
                    }
                    other => return Err(format!("button sub_type `{other}` not allowed")),
                }
            }
            other => return Err(format!("component type `{other}` not allowed")),
        }
    }
    Ok(())
}

/// An Instagram attachment (FACTS.md §7): `type` image/video/audio/file and a
/// `payload` with a `url` or an `attachment_id` (Attachment Upload API).
fn validate_ig_attachment(a: &Value) -> Check {
    only_keys(a, "attachment", &["type", "payload"])?;
    let kind = string(a, "type", "attachment")?;
    if !["image", "video", "audio", "file"].contains(&kind) {
        return Err(format!("attachment.type `{kind}` is not used by Balas"));
    }
    let p = a.get("payload").ok_or("attachment.payload missing")?;
    only_keys(p, "payload", &["url", "attachment_id", "is_reusable"])?;
    match (p.get("url"), p.get("attachment_id")) {
        (Some(_), None) => {
            let url = text_field(p, "url", "payload", 2048)?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("payload.url `{url}` is not an HTTP(S) URL"));
            }
        }
        (None, Some(_)) => {
            text_field(p, "attachment_id", "payload", 256)?;
        }
        _ => return Err("attachment payload needs exactly one of url / attachment_id".into()),
    }
    Ok(())
}

/// Validates an Instagram Send API request body against FACTS.md §7.
pub fn validate_instagram_request(v: &Value) -> Check {
    only_keys(
        v,
        "body",
        &[
            "recipient",
            "messaging_type",
            "tag",
            "message",
            "sender_action",
            "payload",
        ],
    )?;
    let r = v.get("recipient").ok_or("recipient missing")?;
    only_keys(r, "recipient", &["id"])?;
    text_field(r, "id", "recipient", 64)?;
    let mt = v
        .get("messaging_type")
        .and_then(Value::as_str)
        .unwrap_or("RESPONSE");
    match (mt, v.get("tag")) {
        ("RESPONSE" | "UPDATE", None) => {}
        ("MESSAGE_TAG", Some(t)) if t == "HUMAN_AGENT" => {}
        ("MESSAGE_TAG", _) => return Err("MESSAGE_TAG requires tag HUMAN_AGENT".into()),
        (_, Some(_)) => return Err("tag is only allowed with MESSAGE_TAG".into()),
        (other, None) => return Err(format!("messaging_type `{other}` not allowed")),
    }
    let m = v.get("message").ok_or("message missing")?;
    only_keys(m, "message", &["text", "quick_replies", "attachment"])?;
    match (m.get("text"), m.get("attachment")) {
        (Some(_), None) => {
            let t = string(m, "text", "message")?;
            if t.trim().is_empty() {
                return Err("message.text is empty".into());
            }
            if t.len() > 1000 {
                return Err(format!("message.text has {} bytes (max 1000)", t.len()));
            }
        }
        (None, Some(a)) => validate_ig_attachment(a)?,
        _ => return Err("message needs exactly one of text / attachment".into()),
    }
    if m.get("quick_replies").is_some() {
        for q in array(m, "quick_replies", "message", 1, 13)? {
            only_keys(
                q,
                "quick_reply",
                &["content_type", "title", "payload", "image_url"],
            )?;
            match string(q, "content_type", "quick_reply")? {
                "text" => {
                    text_field(q, "title", "quick_reply", 20)?;
                    text_field(q, "payload", "quick_reply", 1000)?;
                }
                "user_phone_number" | "user_email" => {}
                other => return Err(format!("quick_reply content_type `{other}` not allowed")),
            }
        }
    }
    Ok(())
}
