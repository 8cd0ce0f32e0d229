//! `/api/v1/broadcasts`: create, list, inspect, export, pause, resume, cancel.
//! Marketers and admins only. The campaigns themselves are [`crate::broadcast`].

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::auth::Caller;
use crate::app::App;
use crate::broadcast::audience::{AudienceSpec, RowError};
use crate::broadcast::intake::{self, Format, IntakeError};
use crate::broadcast::{self as broadcast, Broadcast, BroadcastMessage, Status};
use crate::channels::Channel;
use crate::config::Role;
use crate::http::{ApiError, JsonBytes, from_json};
use crate::store::StoreResult;

/// Body of `POST /api/v1/broadcasts`, except the recipients themselves: they
/// are read one at a time from the body and stored chunk by chunk
/// ([`intake::take_in`]), never held as a list.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewBroadcast)]
pub struct CreateBody {
    /// Name for people.
    pub name: String,
    /// `whatsapp` or `instagram`.
    #[schema(schema_with = super::schema::channel)]
    pub channel: Channel,
    /// Template or text (+ buttons).
    #[schema(value_type = super::schema::BroadcastMessageDoc)]
    pub message: BroadcastMessage,
    /// Recipients and/or a segment.
    #[serde(default = "empty_audience")]
    #[schema(value_type = super::schema::AudienceDoc)]
    pub audience: AudienceSpec,
    /// RFC 3339; default now.
    #[serde(default)]
    pub send_at: Option<String>,
    /// Messages per second (default `broadcast.rate_per_sec`, at most 1,000).
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// The number (WhatsApp `phone_number_id`) or account (Instagram id) to
    /// send from. Required when the channel has several; with one, that one.
    #[serde(default)]
    pub from: Option<String>,
}

fn empty_audience() -> AudienceSpec {
    AudienceSpec::default()
}

fn row_errors(errors: &[RowError], total: usize) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_recipients",
        format!(
            "{total} recipient row(s) are invalid; fix them and send again: {}",
            errors
                .iter()
                .take(intake::REPORTED_ERRORS)
                .map(|e| format!("line {}: {}", e.line, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    );
    if let Some((cut, _)) = e.message.char_indices().nth(8000) {
        e.message.truncate(cut);
    }
    e
}

fn intake_error(e: IntakeError) -> ApiError {
    match e {
        IntakeError::Rows { errors, total } => row_errors(&errors, total),
        IntakeError::Unreadable(message) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_recipients",
            message,
        ),
        IntakeError::Store(e) => e.into(),
    }
}

/// `POST /api/v1/broadcasts` → 201.
#[utoipa::path(post, path = "/api/v1/broadcasts", operation_id = "create_broadcast", tag = "broadcasts",
    request_body = CreateBody,
    responses(
        (status = 201, description = "The broadcast", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::ErrorBody),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
        (status = 422, description = "Invalid recipients (each named by line), or a template that is unknown, not approved or given the wrong number of parameters", body = crate::http::ErrorBody),
        (status = 502, description = "Meta's Graph API failed the template sync (`graph_error`)", body = crate::http::ErrorBody),
    ))]
pub async fn create(
    State(app): State<App>,
    caller: Caller,
    JsonBytes(raw): JsonBytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Marketer])?;
    let body: CreateBody = from_json(&raw)?;
    if body.name.trim().is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    let enabled = match body.channel {
        Channel::WhatsApp => app.config().whatsapp.enabled,
        Channel::Instagram => app.config().instagram.enabled,
    };
    if !enabled {
        return Err(ApiError::bad_request(format!(
            "{} is not enabled",
            body.channel
        )));
    }
    match (&body.message, body.channel) {
        (BroadcastMessage::Template { .. }, Channel::Instagram) => {
            return Err(ApiError::bad_request(
                "Instagram has no message templates; send text",
            ));
        }
        (BroadcastMessage::Template { template }, _) if template.name.trim().is_empty() => {
            return Err(ApiError::bad_request(
                "message.template.name must not be empty",
            ));
        }
        (BroadcastMessage::Text { text, .. }, _) if text.trim().is_empty() => {
            return Err(ApiError::bad_request("message.text must not be empty"));
        }
        _ => {}
    }
    // Recorded with the broadcast, so it always names its sender.
    let from = app
        .outbox()
        .senders()
        .choose(body.channel, body.from.as_deref())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Refused before it is scheduled, not recipient by recipient at send time.
    crate::broadcast::templates::check_message(
        app.broadcasts(),
        body.channel,
        from.as_deref(),
        &body.message,
    )
    .await?;
    let rate = body
        .rate_per_sec
        .unwrap_or(app.config().broadcast.rate_per_sec);
    if !(rate > 0.0 && rate <= 1000.0) {
        return Err(ApiError::bad_request(
            "rate_per_sec must be between 0 and 1000",
        ));
    }
    let now = app.store().now_ms();
    let send_at_ms = match &body.send_at {
        None => now,
        Some(s) => s
            .parse::<jiff::Timestamp>()
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "send_at {s:?} is not an RFC 3339 time such as 2026-12-01T09:00:00+07:00"
                ))
            })?
            .as_millisecond(),
    };
    // An empty audience is allowed only for a broadcast scheduled in the future,
    // whose recipients are then uploaded to /api/v1/broadcasts/{id}/audience.csv.
    if body.audience.recipients.0 == 0 && body.audience.segment.is_none() && send_at_ms <= now {
        return Err(ApiError::bad_request(
            "audience needs recipients or a segment; to upload a CSV instead, create the broadcast with a future send_at and POST the file to /api/v1/broadcasts/{id}/audience.csv",
        ));
    }
    let required = body.message.placeholders();
    if body.audience.segment.is_some()
        && let Some(other) = required.iter().find(|v| v.as_str() != "name")
    {
        return Err(ApiError::bad_request(format!(
            "a segment only knows {{{{name}}}}; the message also uses {{{{{other}}}}} — send explicit recipients with variables instead"
        )));
    }
    let id = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let taken = intake::take_in(
        app.broadcasts(),
        &id,
        body.channel,
        required,
        Format::Json,
        raw,
    )
    .await
    .map_err(intake_error)?;
    let b = Broadcast {
        id,
        name: body.name.trim().to_string(),
        channel: body.channel,
        message: body.message,
        segment: body.audience.segment,
        send_at_ms,
        rate_per_sec: rate,
        from,
        status: Status::Scheduled,
        total: taken.added,
        duplicates_removed: taken.duplicates,
        chunks: taken.chunks,
        cursor: (0, 0),
        created_by: caller.0.id.clone(),
        created_ms: now,
        started_ms: None,
        finished_ms: None,
        epoch: 0,
    };
    let b = broadcast::create(app.broadcasts(), b).await?;
    tracing::info!(broadcast = %b.id, recipients = b.total, "broadcast created");
    Ok((StatusCode::CREATED, Json(view(&app, &b).await?)).into_response())
}

async fn view(app: &App, b: &Broadcast) -> StoreResult<Value> {
    let status = if b.status == Status::Scheduled && b.send_at_ms <= app.store().now_ms() {
        "running"
    } else {
        match b.status {
            Status::Scheduled => "scheduled",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Cancelled => "cancelled",
            Status::Completed => "completed",
        }
    };
    let iso = |ms: Option<i64>| {
        ms.and_then(|m| jiff::Timestamp::from_millisecond(m).ok())
            .map(|t| t.to_string())
    };
    Ok(json!({
        "id": b.id, "name": b.name, "channel": b.channel, "status": status,
        "message": b.message, "segment": b.segment,
        "send_at": iso(Some(b.send_at_ms)), "rate_per_sec": b.rate_per_sec, "from": b.from,
        "created_by": b.created_by, "created_at": iso(Some(b.created_ms)),
        "started_at": iso(b.started_ms), "finished_at": iso(b.finished_ms),
        "duplicates_removed": b.duplicates_removed,
        "counts": broadcast::counts(app.broadcasts(), b).await?,
        "reasons": broadcast::reasons(app.broadcasts(), &b.id).await?,
    }))
}

async fn load(app: &App, id: &str) -> Result<Broadcast, ApiError> {
    broadcast::get(app.broadcasts(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("broadcast {id} not found")))
}

/// `GET /api/v1/broadcasts`
#[utoipa::path(get, path = "/api/v1/broadcasts", operation_id = "list_broadcasts", tag = "broadcasts",
    responses(
        (status = 200, description = "`{broadcasts: [...]}`", body = Object),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
    ))]
pub async fn list(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let mut out = Vec::new();
    for b in broadcast::list(app.broadcasts()).await? {
        out.push(view(&app, &b).await?);
    }
    Ok(Json(json!({ "broadcasts": out })))
}

/// `GET /api/v1/broadcasts/{id}`
#[utoipa::path(get, path = "/api/v1/broadcasts/{id}", operation_id = "get_broadcast", tag = "broadcasts",
    params(("id" = String, Path, description = "Broadcast id")),
    responses(
        (status = 200, description = "The broadcast with its counts", body = Object),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
        (status = 404, description = "No such broadcast", body = crate::http::ErrorBody),
    ))]
pub async fn get(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let b = load(&app, &id).await?;
    Ok(Json(view(&app, &b).await?))
}

/// `POST /api/v1/broadcasts/{id}/audience.csv`: add recipients from CSV while
/// the broadcast has not started.
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/audience.csv", operation_id = "upload_audience_csv", tag = "broadcasts",
    params(("id" = String, Path, description = "Broadcast id")),
    request_body(content = String, content_type = "text/csv", description = "Header `to` plus one column per template variable"),
    responses(
        (status = 200, description = "`{added, duplicates_removed, total}`", body = Object),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
        (status = 404, description = "No such broadcast", body = crate::http::ErrorBody),
        (status = 409, description = "The broadcast has started, or another upload is in progress", body = crate::http::ErrorBody),
        (status = 422, description = "Invalid rows (each named by line)", body = crate::http::ErrorBody),
    ))]
pub async fn upload_csv(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let b = load(&app, &id).await?;
    if b.status != Status::Scheduled
        || b.send_at_ms <= app.store().now_ms() && b.started_ms.is_some()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "started",
            "the audience is frozen once the broadcast starts",
        ));
    }
    // One upload at a time: its chunks follow the counted ones without another
    // upload's in between, so a refused upload leaves nothing a walk reads.
    let owner = crate::access::secrets::new_token_id();
    let store = app.store();
    if !store
        .lock_broadcast_audience(&id, &owner, UPLOAD_LOCK)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "upload_in_progress",
            "another audience upload to this broadcast is in progress; send the file again when it has finished",
        ));
    }
    let added = add_csv_audience(&app, &id, &b, body).await;
    // The lock expires by itself if this fails; the answer is the upload's.
    let _ = store.unlock_broadcast_audience(&id, &owner).await;
    added.map(Json)
}

/// How long an audience upload may hold the broadcast's audience lock.
const UPLOAD_LOCK: std::time::Duration = std::time::Duration::from_secs(600);

/// Stores a CSV audience and counts it in the broadcast, only if it has still
/// not started when the count is written: a walk that started meanwhile saw
/// the old count, so the new rows would never be sent.
async fn add_csv_audience(
    app: &App,
    id: &str,
    b: &Broadcast,
    body: Bytes,
) -> Result<Value, ApiError> {
    let taken = intake::take_in(
        app.broadcasts(),
        id,
        b.channel,
        b.message.placeholders(),
        Format::Csv,
        body,
    )
    .await
    .map_err(intake_error)?;
    let (added, duplicates) = (taken.added, taken.duplicates);
    let mut exists = false;
    let updated = broadcast::update(app.broadcasts(), id, |x| {
        exists = true;
        if x.status != Status::Scheduled || x.started_ms.is_some() {
            return false;
        }
        x.total += added;
        x.chunks += taken.chunks;
        x.duplicates_removed += duplicates;
        true
    })
    .await?;
    match updated {
        Some(updated) => {
            Ok(json!({"added": added, "duplicates_removed": duplicates, "total": updated.total}))
        }
        None if exists => Err(ApiError::new(
            StatusCode::CONFLICT,
            "started",
            "the broadcast started while the file was uploaded; its rows were not added (the audience is frozen once the broadcast starts)",
        )),
        None => Err(ApiError::not_found(format!("broadcast {id} not found"))),
    }
}

/// `GET /api/v1/broadcasts/{id}/recipients.csv`
#[utoipa::path(get, path = "/api/v1/broadcasts/{id}/recipients.csv", operation_id = "broadcast_recipients_csv", tag = "broadcasts",
    params(("id" = String, Path, description = "Broadcast id")),
    responses(
        (status = 200, description = "One row per recipient with its delivery state", body = String, content_type = "text/csv"),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
        (status = 404, description = "No such broadcast", body = crate::http::ErrorBody),
    ))]
pub async fn recipients_csv(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Marketer])?;
    load(&app, &id).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "to",
        "status",
        "reason",
        "error_code",
        "platform_message_id",
        "updated_at",
    ])
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut rows: Vec<[String; 6]> = Vec::new();
    for index in 0..broadcast::chunk_count(app.broadcasts(), &id).await? {
        let chunk = broadcast::chunk(app.broadcasts(), &id, index).await?;
        let ids: Vec<String> = chunk
            .iter()
            .map(|r| broadcast::record_id(&id, &r.to))
            .collect();
        let records: BTreeMap<String, _> = app
            .store()
            .outbound_many(&ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        for r in chunk
            .iter()
            .filter(|r| !broadcast::erasure::is_forgotten(r))
        {
            let rec = records.get(&broadcast::record_id(&id, &r.to));
            rows.push([
                r.to.clone(),
                rec.map_or("pending", |x| x.state.as_str()).to_string(),
                rec.and_then(|x| x.error_title.clone()).unwrap_or_default(),
                rec.and_then(|x| x.error_code)
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                rec.and_then(|x| x.platform_id.clone()).unwrap_or_default(),
                rec.and_then(|x| jiff::Timestamp::from_millisecond(x.updated_ms).ok())
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            ]);
        }
    }
    for row in rows {
        w.write_record(&row)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(crate::http::csv_attachment("recipients.csv", body))
}

/// `POST /api/v1/broadcasts/{id}/pause`
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/pause", operation_id = "pause_broadcast", tag = "broadcasts",
    params(("id" = String, Path, description = "Broadcast id")),
    responses(
        (status = 200, description = "The broadcast, paused", body = Object),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
        (status = 404, description = "No such broadcast", body = crate::http::ErrorBody),
        (status = 409, description = "Not possible in the broadcast's state", body = crate::http::ErrorBody),
    ))]
pub async fn pause(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let b = broadcast::update(app.broadcasts(), &id, |b| {
        if matches!(b.status, Status::Scheduled | Status::Running) {
            b.status = Status::Paused;
            true
        } else {
            false
        }
    })
    .await?;
    respond(
        &app,
        &id,
        b,
        "only a scheduled or running broadcast can be paused",
    )
    .await
}

/// `POST /api/v1/broadcasts/{id}/resume`
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/resume", operation_id = "resume_broadcast", tag = "broadcasts",
    params(("id" = String, Path, description = "Broadcast id")),
    responses(
        (status = 200, description = "The broadcast, running again", body = Object),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
        (status = 404, description = "No such broadcast", body = crate::http::ErrorBody),
        (status = 409, description = "Not possible in the broadcast's state", body = crate::http::ErrorBody),
    ))]
pub async fn resume(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let b = broadcast::resume(app.broadcasts(), &id).await?;
    respond(&app, &id, b, "only a paused broadcast can be resumed").await
}

/// `POST /api/v1/broadcasts/{id}/cancel`
#[utoipa::path(post, path = "/api/v1/broadcasts/{id}/cancel", operation_id = "cancel_broadcast", tag = "broadcasts",
    params(("id" = String, Path, description = "Broadcast id")),
    responses(
        (status = 200, description = "The broadcast, cancelled", body = Object),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
        (status = 404, description = "No such broadcast", body = crate::http::ErrorBody),
        (status = 409, description = "Not possible in the broadcast's state", body = crate::http::ErrorBody),
    ))]
pub async fn cancel(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let now = app.store().now_ms();
    let b = broadcast::update(app.broadcasts(), &id, |b| {
        if matches!(
            b.status,
            Status::Scheduled | Status::Running | Status::Paused
        ) {
            b.status = Status::Cancelled;
            b.finished_ms = Some(now);
            true
        } else {
            false
        }
    })
    .await?;
    respond(&app, &id, b, "the broadcast has already finished").await
}

async fn respond(
    app: &App,
    id: &str,
    changed: Option<Broadcast>,
    conflict: &str,
) -> Result<Json<Value>, ApiError> {
    match changed {
        Some(b) => Ok(Json(view(app, &b).await?)),
        None => {
            load(app, id).await?;
            Err(ApiError::new(StatusCode::CONFLICT, "conflict", conflict))
        }
    }
}
