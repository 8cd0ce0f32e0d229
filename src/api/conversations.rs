//! The agent desk: queue, claim, conversations, replies, notes, labels,
//! transfer, release, resolve, canned responses and live events.
//!
//! Handlers are thin: authenticate, check the role and ownership, call the
//! engine's ownership functions or the outbox, and map the result to JSON.

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use crate::access::audit::{self, Action};
use crate::app::App;
use crate::channels::{Channel, OutboundContent, OutboundMessage};
use crate::conversation::{Conversation, State as ConvState, Transition};
use crate::engine::ownership;
use crate::http::{ApiError, JsonBody};
use crate::outbox::{OutboxError, Outgoing, window};
use crate::store::{ConversationError, Note, Speaker};

impl From<ConversationError> for ApiError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::NotFound(id) => {
                ApiError::not_found(format!("conversation {id} not found"))
            }
            ConversationError::Illegal(i) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", i.to_string())
            }
            ConversationError::Store(s) => s.into(),
        }
    }
}

/// Filter of `GET /api/v1/queue`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Only conversations with this business number or account (WhatsApp
    /// `phone_number_id`, Instagram account id).
    pub number: Option<String>,
}

/// `GET /api/v1/queue?number=`: waiting conversations per queue, in claim
/// order (positions are in the whole queue, whatever the filter).
#[utoipa::path(get, path = "/api/v1/queue", operation_id = "queue", tag = "desk",
    params(QueueQuery),
    responses(
        (status = 200, description = "`{queues: {name: [...]}}` in claim order", body = Object),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
    ))]
pub async fn queue(
    State(app): State<App>,
    caller: Caller,
    Query(q): Query<QueueQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let now = app.store().now_ms();
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for name in ownership::agent_queues(app.engine(), &caller.0).await? {
        let ids = app.store().waiting(&name).await?;
        let convs = app.store().conversations(&ids).await?;
        let mut items = Vec::new();
        for (i, c) in convs.iter().enumerate() {
            if q.number
                .as_ref()
                .is_some_and(|n| c.number.as_ref() != Some(n))
            {
                continue;
            }
            let contact = app.store().contact(c.channel, &c.contact_id).await?;
            let last = last_customer_text(&app, &c.id).await?;
            items.push(json!({
                "position": i + 1,
                "conversation_id": c.id,
                "channel": c.channel,
                "number": c.number,
                "number_name": app.sender_name(c.channel, c.number.as_deref()),
                "contact_name": contact.as_ref().and_then(|c| c.name.clone()),
                "priority": c.priority,
                "reason": c.handoff_intent,
                "queued_ms": c.queued_ms,
                "wait_seconds": c.queued_ms.map(|q| (now - q).max(0) / 1000),
                "preview": last,
                "recovery_score": c.recovery_score,
            }));
        }
        out.insert(name, items);
    }
    Ok(Json(json!({ "queues": out })))
}

async fn last_customer_text(app: &App, conv_id: &str) -> Result<Option<String>, ApiError> {
    let t = app.store().transcript(conv_id).await?;
    Ok(t.iter()
        .rev()
        .find(|e| e.speaker == Speaker::Customer)
        .map(|e| e.text.chars().take(120).collect()))
}

/// Body of `POST /api/v1/queue/claim`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Claim)]
pub struct ClaimBody {
    /// Only from this queue.
    #[serde(default)]
    pub queue: Option<String>,
}

/// `POST /api/v1/queue/claim`: 200 with the conversation, 204 when nothing waits.
#[utoipa::path(post, path = "/api/v1/queue/claim", operation_id = "claim", tag = "desk",
    request_body(content = Option<ClaimBody>, description = "Optional queue"),
    responses(
        (status = 200, description = "The claimed conversation", body = Object),
        (status = 204, description = "Nothing waits"),
        (status = 400, description = "Invalid body", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 409, description = "At the limit of conversations at once", body = crate::http::ErrorBody),
    ))]
pub async fn claim(
    State(app): State<App>,
    caller: Caller,
    body: Option<JsonBody<ClaimBody>>,
) -> Result<Response, ApiError> {
    caller.require_desk()?;
    let body = body.map(|b| b.0).unwrap_or_default();
    match ownership::claim_next(app.engine(), &caller.0, body.queue.as_deref()).await? {
        Some(conv) => {
            caller
                .audit(app.store(), Action::Claim, &conv.id, None)
                .await;
            Ok(Json(conversation_view(&app, &conv).await?).into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Filters of `GET /api/v1/conversations`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `bot`, `queued`, `assigned`, `resolved`.
    #[param(schema_with = super::schema::state)]
    pub state: Option<String>,
    /// Assigned agent id (`me` for the caller).
    pub agent: Option<String>,
    /// Queue name.
    pub queue: Option<String>,
    /// Business number or account the customer wrote to.
    pub number: Option<String>,
    /// At most this many (default 200, at most 2000; a search: default 20,
    /// at most 50).
    pub limit: Option<usize>,
    /// Search: words that must all appear in the phone number or IGSID,
    /// contact name, case id, order or tracking numbers or message text
    /// (each at least 2 characters; very common words such as `kak`, `saya`
    /// are ignored). With `q`, the other filters are not
    /// used and the answer has `next_cursor`.
    pub q: Option<String>,
    /// Search: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/conversations?state=&agent=&queue=&number=`, or with `q=` a search.
#[utoipa::path(get, path = "/api/v1/conversations", operation_id = "list_conversations", tag = "desk",
    params(ListQuery),
    responses(
        (status = 200, description = "`{conversations: [...]}`; a search also has `next_cursor` (`null` at the end)", body = Object),
        (status = 400, description = "Invalid filter, a search without a word of 2 characters that is not a very common one, or a cursor this API did not give out", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
    ))]
pub async fn list(
    State(app): State<App>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    if let Some(words) = q.q {
        let query = super::desk::SearchQuery {
            q: words,
            cursor: q.cursor,
            limit: q.limit,
        };
        return super::desk::search(&app, &caller, query).await;
    }
    let limit = q.limit.unwrap_or(200).min(2000);
    let agent = q.agent.as_deref().map(|a| {
        if a == "me" {
            caller.0.id.clone()
        } else {
            a.to_string()
        }
    });
    let states: Vec<ConvState> = match q.state.as_deref() {
        Some(s) => vec![ConvState::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown state {s:?}; use bot, queued, assigned or resolved"
            ))
        })?],
        None => vec![ConvState::Bot, ConvState::Queued, ConvState::Assigned],
    };
    let mut ids = Vec::new();
    match &agent {
        Some(a) if q.state.is_none() || q.state.as_deref() == Some("assigned") => {
            ids = app.store().agent_conversations(a).await?;
        }
        _ => {
            for s in &states {
                // Newest first within a state.
                let mut in_state = app.store().conversations_in(*s, 100_000).await?;
                in_state.reverse();
                ids.extend(in_state);
            }
        }
    }
    let convs = app.store().conversations(&ids).await?;
    let mut items = Vec::new();
    for c in convs {
        if !states.contains(&c.state)
            || !caller.may_see(c.queue.as_deref(), c.agent.as_deref())
            || agent.as_ref().is_some_and(|a| c.agent.as_ref() != Some(a))
            || q.queue
                .as_ref()
                .is_some_and(|qq| c.queue.as_ref() != Some(qq))
            || q.number
                .as_ref()
                .is_some_and(|n| c.number.as_ref() != Some(n))
        {
            continue;
        }
        let contact = app.store().contact(c.channel, &c.contact_id).await?;
        items.push(json!({
            "id": c.id, "state": c.state, "channel": c.channel, "number": c.number, "queue": c.queue,
            "agent": c.agent, "priority": c.priority, "unread": c.unread,
            "contact_name": contact.and_then(|c| c.name), "contact_id": c.contact_id,
            "opened_ms": c.opened_ms, "last_customer_ms": c.last_customer_ms,
            "snooze": c.snooze,
        }));
        if items.len() >= limit {
            break;
        }
    }
    Ok(Json(json!({ "conversations": items })))
}

/// `GET /api/v1/conversations/{id}`
#[utoipa::path(get, path = "/api/v1/conversations/{id}", operation_id = "get_conversation", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The conversation with its transcript", body = Object),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
    ))]
pub async fn get(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let conv = load(&app, &caller, &id).await?;
    Ok(Json(conversation_view(&app, &conv).await?))
}

/// The conversation, or 404 when it does not exist or the caller may not see
/// it (the same answer, so other queues' conversations stay unknown).
pub(super) async fn load(app: &App, caller: &Caller, id: &str) -> Result<Conversation, ApiError> {
    app.store()
        .conversation(id)
        .await?
        .filter(|c| caller.may_see(c.queue.as_deref(), c.agent.as_deref()))
        .ok_or_else(|| ApiError::not_found(format!("conversation {id} not found")))
}

/// The full view of a conversation: contact, state, transcript with delivery.
pub async fn conversation_view(app: &App, conv: &Conversation) -> Result<Value, ApiError> {
    let store = app.store();
    let now = store.now_ms();
    let contact = store.contact(conv.channel, &conv.contact_id).await?;
    let transcript = store.transcript(&conv.id).await?;
    let records = store.records_of(&transcript).await?;
    let file_ids: Vec<String> = transcript
        .iter()
        .flat_map(|e| e.attachments.iter().cloned())
        .collect();
    let files: BTreeMap<String, Value> = store
        .attachments(&file_ids)
        .await?
        .iter()
        .map(|a| (a.id.clone(), super::media::attachment_json(a)))
        .collect();
    let entries: Vec<Value> = transcript
        .iter()
        .map(|e| {
            let delivery = e.message_id.as_ref().and_then(|id| records.get(id)).map(|r| {
                json!({"state": r.state, "error_code": r.error_code, "error_title": r.error_title})
            });
            let attachments: Vec<&Value> = e
                .attachments
                .iter()
                .filter_map(|id| files.get(id))
                .collect();
            json!({"at_ms": e.at_ms, "speaker": e.speaker, "text": e.text,
                   "message_id": e.message_id, "delivery": delivery,
                   "attachments": attachments, "event": e.event})
        })
        .collect();
    let last_inbound = contact
        .as_ref()
        .and_then(|c| c.last_inbound_to(conv.number.as_deref()));
    let window_closes = last_inbound.map(|t| t + window::WINDOW_MS);
    let previous: Vec<String> = contact
        .as_ref()
        .map(|c| {
            c.cases
                .iter()
                .filter(|id| **id != conv.id)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut previous_cases = Vec::new();
    for c in store.conversations(&previous).await? {
        previous_cases.push(json!({
            "id": c.id, "state": c.state, "opened_ms": c.opened_ms, "resolved_ms": c.resolved_ms,
            "csat": app.store().survey(&c.id).await?.and_then(|s| s.csat),
        }));
    }
    Ok(json!({
        "now_ms": now,
        "id": conv.id,
        "state": conv.state,
        "channel": conv.channel,
        "number": conv.number,
        "number_name": app.sender_name(conv.channel, conv.number.as_deref()),
        "queue": conv.queue,
        "agent": conv.agent,
        "priority": conv.priority,
        "language": conv.language,
        "unread": conv.unread,
        "reason": conv.handoff_intent,
        // Numbers the customer gave (order, tracking, ticket, phone).
        "entities": conv.entities,
        "recovery_score": conv.recovery_score,
        "opened_ms": conv.opened_ms,
        "handed_off_ms": conv.handed_off_ms,
        "assigned_ms": conv.assigned_ms,
        "first_agent_reply_ms": conv.first_agent_reply_ms,
        "resolved_ms": conv.resolved_ms,
        "snooze": conv.snooze,
        "transfers": conv.transfers,
        "reopen_of": conv.reopen_of,
        "window": {
            "open": last_inbound.is_some_and(|t| now - t < window::WINDOW_MS),
            "closes_ms": window_closes,
        },
        "contact": contact.as_ref().map(|c| json!({
            "name": c.name, "channel": c.channel, "external_id": c.external_id,
            "notes": c.notes, "labels": c.labels, "opted_out": c.opted_out,
            "marketing_opt_out": c.marketing_opt_out, "last_inbound_ms": c.last_inbound_ms,
        })),
        "transcript": entries,
        "previous_cases": previous_cases,
    }))
}

/// A body with one text field.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Text)]
pub struct TextBody {
    /// The text.
    #[schema(min_length = 1)]
    pub text: String,
}

/// 409 unless the caller is the assigned agent or a supervisor.
pub(super) fn owns(caller: &Caller, conv: &Conversation) -> Result<(), ApiError> {
    if caller.is_supervisor()
        || (conv.state == ConvState::Assigned
            && conv.agent.as_deref() == Some(caller.0.id.as_str()))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_owner",
            format!(
                "conversation {} is {} {}; claim it first",
                conv.id,
                conv.state.as_str(),
                conv.agent
                    .as_deref()
                    .map(|a| format!("(assigned to {a})"))
                    .unwrap_or_default()
            ),
        ))
    }
}

/// Body of `POST .../messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Message)]
pub struct MessageBody {
    /// The text.
    #[schema(min_length = 1)]
    pub text: String,
    /// A canned response's shortcut: its configured file is sent after the
    /// text.
    #[serde(default)]
    pub canned: Option<String>,
}

/// The conversation `id` when `caller` may send into it now: theirs (or a
/// supervisor's), not resolved, and written to from a number or account this
/// deployment sends from. Text replies and files share these checks.
pub async fn replyable(app: &App, caller: &Caller, id: &str) -> Result<Conversation, ApiError> {
    let conv = load(app, caller, id).await?;
    owns(caller, &conv)?;
    if conv.state == ConvState::Resolved {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "resolved",
            "the conversation is resolved",
        ));
    }
    // The customer wrote to a number this deployment no longer (or never)
    // sends from: say so now rather than accept a reply that cannot go out.
    if app
        .outbox()
        .senders()
        .resolve(conv.channel, conv.number.as_deref())
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "sender_not_configured",
            format!(
                "the customer wrote to {} {}, which is not configured, so no reply can go out from it; add it to {} in the config",
                conv.channel,
                conv.number.as_deref().unwrap_or("(no number)"),
                match conv.channel {
                    Channel::WhatsApp => "[[whatsapp.numbers]]",
                    Channel::Instagram => "[[instagram.accounts]]",
                }
            ),
        ));
    }
    Ok(conv)
}

/// `POST /api/v1/conversations/{id}/messages`: the agent's reply (with a
/// canned response's file when `canned` names one that has a file).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", operation_id = "send_message", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = MessageBody,
    responses(
        (status = 202, description = "`{id, state, human_agent_tag}`: queued for sending", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::ErrorBody),
        (status = 409, description = "Not yours, or not possible in its state", body = crate::http::ErrorBody),
        (status = 422, description = "The 24-hour window is closed, or the text has a `{{variable}}` nobody knows (`unknown_variable`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
    ))]
pub async fn send_message(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MessageBody>,
) -> Result<Response, ApiError> {
    caller.require_desk()?;
    let text = body.text.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request("text must not be empty"));
    }
    let conv = replyable(&app, &caller, &id).await?;
    // The customer never sees a placeholder: variables are filled in here.
    let text = render_for(&app, &conv, text).await?;
    let text = text.as_str();
    let canned_file = match body.canned.as_deref() {
        None => None,
        Some(shortcut) => {
            if !app.config().canned.iter().any(|c| c.shortcut == shortcut) {
                return Err(ApiError::bad_request(format!(
                    "no canned response with shortcut {shortcut:?}"
                )));
            }
            app.files().library().for_canned(shortcut).cloned()
        }
    };
    let result = app
        .outbox()
        .enqueue(Outgoing {
            id: None,
            message: OutboundMessage {
                channel: conv.channel,
                to: conv.contact_id.clone(),
                content: OutboundContent::Text {
                    body: text.to_string(),
                },
                human_agent_tag: false,
                from: conv.number.clone(),
            },
            conversation_id: Some(conv.id.clone()),
            speaker: Some(Speaker::Agent {
                id: caller.0.id.clone(),
            }),
            origin: crate::store::Origin::Agent(caller.0.id.clone()),
            by_human: true,
        })
        .await;
    let record = match result {
        Ok(r) => r,
        Err(OutboxError::Window(w)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "window_closed",
                w.to_string(),
            ));
        }
        Err(OutboxError::Store(e)) => return Err(e.into()),
    };
    if let Some(file) = canned_file {
        let key = format!("{}:file", record.id);
        if let Some(attachment) = app
            .files()
            .attach_library_file(
                &file,
                &conv.id,
                conv.channel,
                &key,
                Some(caller.0.id.clone()),
            )
            .await?
        {
            let content = OutboundContent::Media(crate::channels::OutboundMedia {
                kind: attachment.kind,
                source: crate::channels::OutboundMediaSource::Attachment {
                    id: attachment.id.clone(),
                },
                mime_type: file.mime_type.clone(),
                size: file.object.size,
                caption: None,
                filename: Some(file.filename.clone()),
            });
            super::media::send_parts(&app, &caller, &conv, &key, content).await?;
        }
    }
    let conv = ownership::agent_replied(app.engine(), &id).await?;
    caller.audit(app.store(), Action::Reply, &id, None).await;
    // Order numbers the agent typed make the conversation findable too.
    app.store()
        .index_for_search(&conv.id, &[text], &[], app.store().now_ms())
        .await?;
    ownership::publish(
        app.engine(),
        "agent_message",
        &conv,
        json!({ "message_id": record.id }),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": record.id, "state": record.state, "human_agent_tag": record.message.human_agent_tag})),
    )
        .into_response())
}

/// `text` with its `{{variables}}` filled in for `conv`; 422
/// `unknown_variable` for a variable nobody knows.
async fn render_for(app: &App, conv: &Conversation, text: &str) -> Result<String, ApiError> {
    use crate::engine::render::{RenderTextError, for_conversation};
    for_conversation(app.engine(), conv, text)
        .await
        .map_err(|e| match e {
            RenderTextError::Template(t) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_variable",
                format!("{t}; nothing was sent"),
            ),
            RenderTextError::Store(s) => s.into(),
        })
}

/// `POST /api/v1/conversations/{id}/notes`: a contact note, kept across cases.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/notes", operation_id = "add_note", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = TextBody,
    responses(
        (status = 201, description = "`{notes: [...]}`", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
    ))]
pub async fn add_note(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TextBody>,
) -> Result<Response, ApiError> {
    caller.require_desk()?;
    let text = body.text.trim().to_string();
    if text.is_empty() {
        return Err(ApiError::bad_request("text must not be empty"));
    }
    let conv = load(&app, &caller, &id).await?;
    let now = app.store().now_ms();
    let contact = app
        .store()
        .update_contact(conv.channel, &conv.contact_id, |c| {
            c.notes.push(Note {
                at_ms: now,
                author: caller.0.id.clone(),
                text: text.clone(),
            });
        })
        .await?;
    caller.audit(app.store(), Action::Note, &id, None).await;
    Ok((StatusCode::CREATED, Json(json!({"notes": contact.notes}))).into_response())
}

/// Body of `POST .../labels`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Labels)]
pub struct LabelsBody {
    /// Labels to add.
    #[serde(default)]
    pub add: Vec<String>,
    /// Labels to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `POST /api/v1/conversations/{id}/labels` `{"add": [...], "remove": [...]}`
#[utoipa::path(post, path = "/api/v1/conversations/{id}/labels", operation_id = "labels", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = LabelsBody,
    responses(
        (status = 200, description = "`{labels: [...]}`", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
    ))]
pub async fn labels(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<LabelsBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    if body
        .add
        .iter()
        .chain(&body.remove)
        .any(|l| l.trim().is_empty() || l.len() > 64)
    {
        return Err(ApiError::bad_request("labels must be 1–64 characters"));
    }
    let conv = load(&app, &caller, &id).await?;
    let contact = app
        .store()
        .update_contact(conv.channel, &conv.contact_id, |c| {
            for l in &body.add {
                c.labels.insert(l.trim().to_string());
            }
            for l in &body.remove {
                c.labels.remove(l.trim());
            }
        })
        .await?;
    caller.audit(app.store(), Action::Label, &id, None).await;
    Ok(Json(json!({"labels": contact.labels})))
}

/// Body of `POST .../transfer`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Transfer)]
pub struct TransferBody {
    /// Target queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// Target agent id.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `POST /api/v1/conversations/{id}/transfer` `{"queue"}` or `{"agent"}`
#[utoipa::path(post, path = "/api/v1/conversations/{id}/transfer", operation_id = "transfer", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = TransferBody,
    responses(
        (status = 200, description = "The conversation after the transfer", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::ErrorBody),
        (status = 409, description = "Not yours, not possible in its state, the agent is not online (`agent_offline`) or at their limit (`agent_full`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
    ))]
pub async fn transfer(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TransferBody>,
) -> Result<Json<Value>, ApiError> {
    let transition = match (body.queue, body.agent) {
        (Some(q), None) if !q.trim().is_empty() => Transition::TransferToQueue {
            queue: q.trim().to_string(),
        },
        (None, Some(a)) => {
            let target = match app.store().user(&a).await? {
                None => return Err(ApiError::bad_request(format!("no agent with id {a:?}"))),
                Some(x) if x.disabled => {
                    return Err(ApiError::bad_request(format!(
                        "{a:?} is disabled and cannot take conversations"
                    )));
                }
                // Only people who work the desk can own a conversation.
                Some(x) if x.role == crate::config::Role::Marketer => {
                    return Err(ApiError::bad_request(format!(
                        "{a:?} is a marketer and cannot take conversations; transfer to an agent or supervisor"
                    )));
                }
                Some(x) => x,
            };
            return transfer_to_agent(app, caller, id, target).await;
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of \"queue\" or \"agent\"",
            ));
        }
    };
    owner_transition(app, caller, id, transition).await
}

/// A transfer to a named person: they must be online and have room (both
/// checked, the room atomically with the move).
async fn transfer_to_agent(
    app: App,
    caller: Caller,
    id: String,
    target: crate::store::User,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let conv = load(&app, &caller, &id).await?;
    owns(&caller, &conv)?;
    let (status, _) =
        crate::engine::presence::statuses(app.engine(), std::slice::from_ref(&target.id))
            .await?
            .remove(0);
    if status != crate::store::PresenceStatus::Online {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "agent_offline",
            format!(
                "{} is {} and takes no conversations now; choose someone online",
                target.id,
                status.as_str()
            ),
        ));
    }
    let agent = caller.0.id.clone();
    let supervisor = caller.is_supervisor();
    let after = ownership::transfer_to_agent(app.engine(), &id, &target, move |c| {
        supervisor || c.agent.as_deref() == Some(agent.as_str())
    })
    .await
    .map_err(|e| match e {
        crate::store::ClaimError::NotAllowed | crate::store::ClaimError::Taken => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the conversation changed meanwhile; reload it",
        ),
        other => other.into(),
    })?;
    let detail = format!("agent:{}", target.id);
    caller
        .audit(app.store(), Action::Transfer, &id, Some(&detail))
        .await;
    Ok(Json(conversation_view(&app, &after).await?))
}

/// `POST /api/v1/conversations/{id}/release`: back to its queue.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/release", operation_id = "release", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The conversation, back in its queue", body = Object),
        (status = 409, description = "Not yours, or not possible in its state", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
    ))]
pub async fn release(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    owner_transition(app, caller, id, Transition::Release).await
}

/// `POST /api/v1/conversations/{id}/resolve`
#[utoipa::path(post, path = "/api/v1/conversations/{id}/resolve", operation_id = "resolve", tag = "desk",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The resolved conversation", body = Object),
        (status = 409, description = "Not yours, or not possible in its state", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
    ))]
pub async fn resolve(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let by = caller.0.id.clone();
    owner_transition(app, caller, id, Transition::Resolve { by }).await
}

/// Applies an agent's transition: the assigned agent may release, transfer or
/// resolve; a supervisor may do so on any conversation.
async fn owner_transition(
    app: App,
    caller: Caller,
    id: String,
    transition: Transition,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let conv = load(&app, &caller, &id).await?;
    owns(&caller, &conv)?;
    let agent = caller.0.id.clone();
    let supervisor = caller.is_supervisor();
    let audited = audit::transition(&transition);
    let after = ownership::agent_transition(app.engine(), &id, transition, move |c| {
        supervisor || c.agent.as_deref() == Some(agent.as_str())
    })
    .await?;
    if let Some((action, detail)) = audited {
        caller
            .audit(app.store(), action, &id, detail.as_deref())
            .await;
    }
    Ok(Json(conversation_view(&app, &after).await?))
}

/// Query of `GET /api/v1/canned`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CannedQuery {
    /// Render the texts for this conversation.
    pub conversation: Option<String>,
}

/// `GET /api/v1/canned[?conversation=ID]`: canned responses as written (with
/// the name, type and size of their file, if they have one); with a
/// conversation, each also `rendered` with that conversation's variables
/// (`{{contact.name}}`, `{{case.id}}`, `{{queue.position}}`,
/// `{{business_hours.next_open}}` and the config's `[intents.variables]`).
#[utoipa::path(get, path = "/api/v1/canned", operation_id = "canned", tag = "desk",
    params(CannedQuery),
    responses(
        (status = 200, description = "`{canned: [...]}`, rendered for the conversation when one is given", body = Object),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
    ))]
pub async fn canned(
    State(app): State<App>,
    caller: Caller,
    Query(q): Query<CannedQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let canned = &app.config().canned;
    // A canned response's file is described, never its path on the server.
    let file_of = |shortcut: &str| {
        app.files().library().for_canned(shortcut).map(
            |f| json!({"filename": f.filename, "mime_type": f.mime_type, "size": f.object.size}),
        )
    };
    let Some(id) = q.conversation else {
        let items: Vec<Value> = canned
            .iter()
            .map(|c| json!({ "shortcut": c.shortcut, "title": c.title, "text": c.text, "file": file_of(&c.shortcut) }))
            .collect();
        return Ok(Json(json!({ "canned": items })));
    };
    let conv = load(&app, &caller, &id).await?;
    let store = app.store();
    let contact = store
        .contact(conv.channel, &conv.contact_id)
        .await?
        .unwrap_or_else(|| {
            crate::store::Contact::new(conv.channel, &conv.contact_id, conv.opened_ms)
        });
    let position = if conv.state == ConvState::Queued {
        store.queue_position(&conv).await?
    } else {
        None
    };
    let lang = crate::engine::lang_from_code(&conv.language);
    let vars = crate::engine::template_variables(app.engine(), &contact, &conv, position, lang);
    let known = app.config().intents.variables.keys().cloned().collect();
    let items: Vec<Value> = canned
        .iter()
        .map(|c| {
            // Checked when the app starts, so this only fails after a bad reload.
            let rendered = crate::intents::ReplyTemplate::parse(&c.text, &known)
                .map(|t| t.render(&vars))
                .unwrap_or_else(|_| c.text.clone());
            json!({ "shortcut": c.shortcut, "title": c.title, "text": c.text, "rendered": rendered, "file": file_of(&c.shortcut) })
        })
        .collect();
    Ok(Json(json!({ "conversation_id": conv.id, "canned": items })))
}

/// `GET /api/v1/me`: who the token belongs to, and the server's time (consoles
/// count windows and waits against it, not the browser's clock).
#[utoipa::path(get, path = "/api/v1/me", operation_id = "me", tag = "desk",
    responses(
        (status = 200, description = "`{id, name, role, queues, max_concurrent, now_ms}`", body = Object),
    ))]
pub async fn me(State(app): State<App>, caller: Caller) -> Json<Value> {
    let a = &caller.0;
    Json(json!({
        "id": a.id, "name": a.name, "role": a.role, "queues": a.queues,
        "max_concurrent": a.max_concurrent, "now_ms": app.store().now_ms(),
    }))
}

/// `GET /api/v1/agents`: people a conversation can be transferred to, and the
/// queues in use.
#[utoipa::path(get, path = "/api/v1/agents", operation_id = "agents", tag = "desk",
    responses(
        (status = 200, description = "`{agents: [...], queues: [...]}`", body = Object),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
    ))]
pub async fn agents(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_desk()?;
    let people: Vec<crate::store::User> = app
        .store()
        .users()
        .await?
        .into_iter()
        .filter(|a| a.role != crate::config::Role::Marketer && !a.disabled)
        .collect();
    let ids: Vec<String> = people.iter().map(|u| u.id.clone()).collect();
    let statuses = crate::engine::presence::statuses(app.engine(), &ids).await?;
    let mut agents = Vec::with_capacity(people.len());
    for (a, (status, _)) in people.iter().zip(statuses) {
        let load = app.store().agent_load(&a.id).await?;
        agents.push(json!({
            "id": a.id, "name": a.name, "role": a.role, "queues": a.queues,
            "presence": status, "load": load, "capacity": a.max_concurrent,
            // Who a transfer can go to now.
            "available": status == crate::store::PresenceStatus::Online
                && load < u64::from(a.max_concurrent),
        }));
    }
    let queues = ownership::agent_queues(app.engine(), &caller.0).await?;
    Ok(Json(json!({"agents": agents, "queues": queues})))
}

/// `GET /api/v1/events`: Server-Sent Events of queue and conversation changes,
/// from every process sharing the store. Desk roles only (marketers get 403:
/// the events carry customer messages); an agent with queues receives only
/// the events of conversations they may see.
#[utoipa::path(get, path = "/api/v1/events", operation_id = "events", tag = "desk",
    responses(
        (status = 200, description = "Server-Sent Events of queue and conversation changes (an endless stream)", body = String, content_type = "text/event-stream"),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
    ))]
pub async fn events(
    State(app): State<App>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require_desk()?;
    let rx = app.store().subscribe_events().await?;
    let state = (rx, app, caller, tokio::time::Instant::now());
    let stream =
        futures_util::stream::unfold(state, |(mut rx, app, mut caller, mut checked)| async move {
            loop {
                let msg = rx.recv().await?;
                // The stream lives long: at most a second after its user is
                // disabled, signs out, loses the token (or a queue), it ends (or
                // narrows).
                if checked.elapsed() >= CREDENTIALS_RECHECK {
                    caller = caller.refreshed(app.store()).await.ok().flatten()?;
                    caller.require_desk().ok()?;
                    checked = tokio::time::Instant::now();
                }
                let data = String::from_utf8_lossy(&msg).into_owned();
                let parsed = serde_json::from_str::<Value>(&data).ok();
                if !event_visible(&app, &caller, parsed.as_ref()).await {
                    continue;
                }
                let kind = parsed
                    .as_ref()
                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| "message".into());
                let event = Event::default().event(kind).data(data);
                return Some((Ok(event), (rx, app, caller, checked)));
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// How often an open event stream checks that its caller may still listen.
const CREDENTIALS_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a live event may go to `caller`. Events that name a queue or an
/// agent are judged by them; events naming only a conversation (outbound
/// messages) by the conversation as stored now.
async fn event_visible(app: &App, caller: &Caller, event: Option<&Value>) -> bool {
    // Supervisors, admins and agents of every queue see every conversation.
    if caller.may_see(None, None) {
        return true;
    }
    let Some(event) = event else {
        return false;
    };
    let field = |k: &str| event.get(k).and_then(Value::as_str);
    if event.get("queue").is_some() || event.get("agent").is_some() {
        return caller.may_see(field("queue"), field("agent"))
            || field("previous_agent") == Some(caller.0.id.as_str());
    }
    match field("conversation_id") {
        Some(id) => matches!(
            app.store().conversation(id).await,
            Ok(Some(c)) if caller.may_see(c.queue.as_deref(), c.agent.as_deref())
        ),
        None => false,
    }
}
