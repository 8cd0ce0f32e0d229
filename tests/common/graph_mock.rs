//! A fake Graph API `/messages` endpoint for WhatsApp and Instagram.
//!
//! `GraphMock::start().await` serves `POST /{id}/messages` (and
//! `/{version}/{id}/messages`) on 127.0.0.1. Every body is validated against the
//! documented request shapes and limits (FACTS.md §4, §7); a body the real API
//! would reject is recorded in [`GraphMock::violations`] and answered 400 with a
//! Graph error (code 100). Valid requests get fixture-like success bodies with
//! unique ids (`wamid.MOCK…` / `mid.MOCK…`), unless a canned response is queued.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
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

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<RecordedRequest>>,
    violations: Mutex<Vec<String>>,
    canned: Mutex<VecDeque<CannedResponse>>,
    delay: Mutex<Option<Duration>>,
    notify: Notify,
    counter: AtomicU64,
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
            .route("/__requests", get(list_requests))
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

    /// Everything received so far, in order.
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
    inner.requests.lock().unwrap().push(RecordedRequest {
        path: path.clone(),
        id,
        auth: auth.clone(),
        body: body.clone(),
        at: Instant::now(),
    });
    inner.notify.notify_waiters();

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
    if let Err(why) = verdict {
        inner
            .violations
            .lock()
            .unwrap()
            .push(format!("{path}: {why}"));
        return graph_error(StatusCode::BAD_REQUEST, 100, &format!("(#100) {why}"));
    }
    let canned = inner.canned.lock().unwrap().pop_front();
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
    if let Some(rt) = v.get("recipient_type") {
        if rt != "individual" {
            return Err("recipient_type must be \"individual\"".into());
        }
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
            if let Some(p) = inner.get("preview_url") {
                if !p.is_boolean() {
                    return Err("text.preview_url must be a boolean".into());
                }
            }
            Ok(())
        }
        "interactive" => validate_interactive(inner),
        "template" => validate_template(inner),
        other => Err(format!("type `{other}` is not used by Balas")),
    }
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
        (None, Some(_)) => {}
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
