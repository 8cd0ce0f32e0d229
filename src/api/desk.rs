//! The desk around conversations: presence, claiming a named conversation,
//! snoozing, search, the supervisors' live board, and the display names the
//! console shows instead of raw ids.
//!
//! Handlers are thin: check the caller, call the engine, answer JSON.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::conversations::{conversation_view, load, owns};
use crate::access::audit::Action;
use crate::app::App;
use crate::config::Role;
use crate::conversation::{Conversation, State as ConvState};
use crate::engine::{lifecycle, ownership, presence};
use crate::http::{ApiError, JsonBody};
use crate::store::{ClaimError, Presence, PresenceStatus, SearchCursor, query_terms};

impl From<ClaimError> for ApiError {
    fn from(e: ClaimError) -> Self {
        match e {
            ClaimError::Taken => ApiError::new(
                StatusCode::CONFLICT,
                "taken",
                "someone else took this conversation, or it is no longer waiting",
            ),
            ClaimError::Full => ApiError::new(
                StatusCode::CONFLICT,
                "agent_full",
                "the agent already holds as many conversations as they may (max_concurrent); resolve or release one first",
            ),
            ClaimError::NotAllowed => ApiError::new(
                StatusCode::CONFLICT,
                "not_your_queue",
                "this conversation waits in a queue you do not work",
            ),
            ClaimError::Conversation(c) => c.into(),
        }
    }
}

/// Body of `PUT /api/v1/me/presence`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PresenceReport)]
pub struct PresenceBody {
    /// `online`, `away` or `offline`.
    #[schema(schema_with = super::schema::presence_status)]
    pub status: PresenceStatus,
}

/// `PUT /api/v1/me/presence {"status"}`: what the caller's console reports
/// (sent again every 30 s while it is open).
#[utoipa::path(put, path = "/api/v1/me/presence", operation_id = "put_presence", tag = "desk",
    request_body = PresenceBody,
    responses(
        (status = 200, description = "`{status, since_ms, seen_ms, timeout_s, idle_offline_after_s, assignment}`", body = Object),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
    ))]
pub async fn put_presence(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<PresenceBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let p = presence::report(app.engine(), &caller.0, body.status).await?;
    Ok(Json(presence_view(&app, p.status, &p)))
}

/// `GET /api/v1/me/presence`
#[utoipa::path(get, path = "/api/v1/me/presence", operation_id = "get_presence", tag = "desk",
    responses(
        (status = 200, description = "`{status, since_ms, seen_ms, timeout_s, idle_offline_after_s, assignment}`", body = Object),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
    ))]
pub async fn get_presence(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let (status, p) = presence::statuses(app.engine(), std::slice::from_ref(&caller.0.id))
        .await?
        .remove(0);
    Ok(Json(presence_view(&app, status, &p)))
}

/// The caller's presence as both presence routes answer it: `status` is the
/// one in effect (a silent console counts as offline), with the settings
/// the console paces its reports by.
fn presence_view(app: &App, status: PresenceStatus, p: &Presence) -> Value {
    let cfg = &app.config().handoff;
    json!({
        "status": status, "since_ms": p.since_ms, "seen_ms": p.seen_ms,
        "timeout_s": cfg.presence_timeout.get().as_secs(),
        "idle_offline_after_s": cfg.idle_offline_after.get().as_secs(),
        "assignment": cfg.assignment,
    })
}

/// `POST /api/v1/conversations/{id}/claim`: takes this queued conversation,
/// with claim-next's guards (the caller's queues, `max_concurrent`).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/claim", operation_id = "claim_conversation", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The claimed conversation", body = Object),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
        (status = 409, description = "Taken by someone else or no longer waiting (`taken`), at the limit of conversations at once (`agent_full`), or in a queue the caller does not work (`not_your_queue`)", body = crate::http::ErrorBody),
    ))]
pub async fn claim(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    load(&app, &caller, &id).await?;
    let conv = ownership::claim(app.engine(), &caller.0, &id).await?;
    caller.audit(app.store(), Action::Claim, &id, None).await;
    Ok(Json(conversation_view(&app, &conv).await?))
}

/// Body of `POST .../snooze`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Snooze)]
pub struct SnoozeBody {
    /// RFC 3339; absent or null: until the customer writes.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub until: Option<String>,
}

/// `POST /api/v1/conversations/{id}/snooze {"until"?}`: set aside until a
/// time or the customer's next message (the assigned agent or a supervisor).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/snooze", operation_id = "snooze", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    request_body(content = Option<SnoozeBody>, description = "Optional time to wake; without it, until the customer writes"),
    responses(
        (status = 200, description = "The snoozed conversation", body = Object),
        (status = 400, description = "`until` is not an RFC 3339 time, or is in the past", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
        (status = 409, description = "Not yours, or not assigned", body = crate::http::ErrorBody),
    ))]
pub async fn snooze(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<JsonBody<SnoozeBody>>,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let until_ms = match body.until.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<jiff::Timestamp>()
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "until {s:?} is not an RFC 3339 time such as 2026-12-01T09:00:00+07:00"
                    ))
                })?
                .as_millisecond(),
        ),
    };
    let conv = load(&app, &caller, &id).await?;
    owns(&caller, &conv)?;
    let conv = lifecycle::snooze(app.engine(), &id, &caller.0.id, until_ms)
        .await
        .map_err(|e| match e {
            lifecycle::SnoozeError::NotAssigned(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            lifecycle::SnoozeError::InThePast => ApiError::bad_request(e.to_string()),
            lifecycle::SnoozeError::Conversation(c) => c.into(),
        })?;
    let until = until_ms.map_or_else(|| "until:message".to_string(), |t| format!("until:{t}"));
    caller
        .audit(app.store(), Action::Snooze, &id, Some(&until))
        .await;
    Ok(Json(conversation_view(&app, &conv).await?))
}

/// `DELETE /api/v1/conversations/{id}/snooze`: wake it now.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/snooze", operation_id = "unsnooze", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The conversation, awake", body = Object),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
        (status = 409, description = "Not yours, or not possible in its state", body = crate::http::ErrorBody),
    ))]
pub async fn unsnooze(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let conv = load(&app, &caller, &id).await?;
    owns(&caller, &conv)?;
    let conv = lifecycle::wake(app.engine(), &id, "agent", None)
        .await?
        .unwrap_or(conv);
    caller
        .audit(app.store(), Action::Snooze, &id, Some("woken"))
        .await;
    Ok(Json(conversation_view(&app, &conv).await?))
}

/// Query of `GET /api/v1/conversations?q=`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    /// What to look for.
    pub q: String,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// At most this many (default 20, at most 50).
    pub limit: Option<usize>,
}

/// Most index entries read for one page: a page costs at most this much,
/// however many conversations there are.
const SEARCH_SCAN: usize = 2_000;

/// `GET /api/v1/conversations?q=…[&cursor=…][&limit=…]`: conversations whose
/// phone number or IGSID, contact name, case id, order or tracking numbers or
/// message text contain every word of `q`, most recent first, only those the
/// caller may see. `next_cursor` continues; `null` at the end.
pub async fn search(app: &App, caller: &Caller, q: SearchQuery) -> Result<Json<Value>, ApiError> {
    let terms = query_terms(&q.q);
    if terms.is_empty() {
        return Err(ApiError::bad_request(
            "q needs a word of at least 2 characters that is not a very common one like 'kak' or 'saya' (a phone number, name, case id, order number or text)",
        ));
    }
    let limit = q.limit.unwrap_or(20).clamp(1, 50);
    let mut cursor = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            SearchCursor::decode(c)
                .ok_or_else(|| ApiError::bad_request("cursor is not one this API gave out"))?,
        ),
    };
    let mut items = Vec::new();
    let mut scanned = 0;
    let next = loop {
        let page = app
            .store()
            .search(&terms, cursor.as_ref(), limit - items.len(), SEARCH_SCAN)
            .await?;
        scanned += SEARCH_SCAN;
        for c in app.store().conversations(&page.ids).await? {
            if caller.may_see(c.queue.as_deref(), c.agent.as_deref()) {
                items.push(list_item(app, &c).await?);
            }
        }
        cursor = page.next;
        if cursor.is_none() || items.len() >= limit || scanned >= SEARCH_SCAN * 2 {
            break cursor;
        }
    };
    Ok(Json(json!({
        "conversations": items,
        "next_cursor": next.map(|c| c.encode()),
    })))
}

async fn list_item(app: &App, c: &Conversation) -> Result<Value, ApiError> {
    let contact = app.store().contact(c.channel, &c.contact_id).await?;
    // The last words said, from the last few entries (system lines and
    // notes are skipped; a long conversation costs no more).
    let transcript = app.store().transcript_tail(&c.id, 8).await?;
    let last = transcript
        .iter()
        .rev()
        .find(|e| e.event.is_none() && e.speaker != crate::store::Speaker::System);
    Ok(json!({
        "id": c.id, "state": c.state, "channel": c.channel, "queue": c.queue,
        "agent": c.agent, "priority": c.priority, "unread": c.unread,
        "contact_name": contact.and_then(|c| c.name), "contact_id": c.contact_id,
        "opened_ms": c.opened_ms, "last_customer_ms": c.last_customer_ms,
        "resolved_ms": c.resolved_ms, "snooze": c.snooze,
        "preview": last.map(|e| e.text.chars().take(160).collect::<String>()),
    }))
}

/// `GET /api/v1/board`: per queue the waiting count, longest wait and SLA
/// breaches; per person of the desk their presence, load and capacity, open
/// chats and the time since their last reply. Supervisors and admins.
#[utoipa::path(get, path = "/api/v1/board", operation_id = "board", tag = "desk",
    responses(
        (status = 200, description = "`{now_ms, first_response_target_s, assignment, queues: [...], agents: [...]}`", body = Object),
        (status = 403, description = "Not a supervisor or admin", body = crate::http::ErrorBody),
    ))]
pub async fn board(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Supervisor])?;
    let store = app.store();
    let now = store.now_ms();
    let target = app.config().handoff.first_response_target.as_millis_i64();
    let breached = |c: &Conversation| {
        c.first_agent_reply_ms.is_none()
            && c.handed_off_ms.is_some_and(|h| now - h > target)
            && c.state != ConvState::Resolved
    };
    let mut names: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    let mut contact_name = async |c: &Conversation| -> Result<Option<String>, ApiError> {
        let key = (c.channel.as_str().to_string(), c.contact_id.clone());
        if let Some(n) = names.get(&key) {
            return Ok(n.clone());
        }
        let n = store
            .contact(c.channel, &c.contact_id)
            .await?
            .and_then(|x| x.name);
        names.insert(key, n.clone());
        Ok(n)
    };
    let mut breaches_by_queue: BTreeMap<String, u64> = BTreeMap::new();
    let mut agents = Vec::new();
    let users: Vec<_> = store
        .users()
        .await?
        .into_iter()
        .filter(|u| !u.disabled && u.role != Role::Marketer)
        .collect();
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let statuses = presence::statuses(app.engine(), &ids).await?;
    for (user, (status, p)) in users.iter().zip(statuses) {
        let convs = store
            .conversations(&store.agent_conversations(&user.id).await?)
            .await?;
        let mut chats = Vec::new();
        let mut last_reply: Option<i64> = None;
        for c in convs.iter().filter(|c| c.state == ConvState::Assigned) {
            last_reply = last_reply.max(c.last_agent_reply_ms);
            if breached(c) {
                *breaches_by_queue
                    .entry(c.queue.clone().unwrap_or_default())
                    .or_default() += 1;
            }
            chats.push(json!({
                "id": c.id, "contact_name": contact_name(c).await?, "channel": c.channel,
                "queue": c.queue, "assigned_ms": c.assigned_ms, "unread": c.unread,
                "last_agent_reply_ms": c.last_agent_reply_ms,
                "last_customer_ms": c.last_customer_ms, "snoozed": c.snooze.is_some(),
                "sla_breached": breached(c),
            }));
        }
        agents.push(json!({
            "id": user.id, "name": user.name, "role": user.role, "queues": user.queues,
            "presence": status, "presence_since_ms": p.since_ms,
            "load": chats.len(), "capacity": user.max_concurrent,
            "last_reply_ms": last_reply,
            "since_last_reply_s": last_reply.map(|r| (now - r).max(0) / 1000),
            "conversations": chats,
        }));
    }
    let mut queue_names = store.known_queues().await?;
    for q in ownership::agent_queues(app.engine(), &caller.0).await? {
        if !queue_names.contains(&q) {
            queue_names.push(q);
        }
    }
    queue_names.sort();
    let mut queues = Vec::new();
    for name in queue_names {
        let waiting = store.conversations(&store.waiting(&name).await?).await?;
        let mut items = Vec::new();
        let mut longest: Option<i64> = None;
        let mut breaches = breaches_by_queue.get(&name).copied().unwrap_or(0);
        for c in &waiting {
            let wait = c.queued_ms.map(|q| (now - q).max(0) / 1000);
            longest = longest.max(wait);
            if breached(c) {
                breaches += 1;
            }
            items.push(json!({
                "id": c.id, "contact_name": contact_name(c).await?, "channel": c.channel,
                "priority": c.priority, "reason": c.handoff_intent, "wait_s": wait,
                "sla_breached": breached(c),
            }));
        }
        queues.push(json!({
            "queue": name, "waiting": waiting.len(), "longest_wait_s": longest,
            "sla_breaches": breaches, "conversations": items,
        }));
    }
    Ok(Json(json!({
        "now_ms": now,
        "first_response_target_s": target / 1000,
        "assignment": app.config().handoff.assignment,
        "queues": queues,
        "agents": agents,
    })))
}

/// `GET /api/v1/names`: display names of queues, labels and handoff reasons
/// in Indonesian and English (`[names]` in the config).
#[utoipa::path(get, path = "/api/v1/names", operation_id = "names", tag = "desk",
    responses(
        (status = 200, description = "Display names of queues, labels and handoff reasons, per language", body = Object),
    ))]
pub async fn names(State(app): State<App>, _caller: Caller) -> Json<Value> {
    Json(json!(app.config().names))
}
