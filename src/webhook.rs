//! The HTTP edge for Meta: `GET|POST /webhooks/{whatsapp,instagram}`.
//!
//! The POST handler does as little as possible before answering: check the
//! `X-Hub-Signature-256` over the raw bytes, parse into [`crate::channels::InboundEvent`]s, and
//! store them — deduplicated by their idempotency keys — as jobs in the inbound
//! queue in one atomic step. Only then does Meta get its 200; the conversation
//! engine works on the jobs in the background. A store outage answers 503 so
//! Meta retries; a bad signature answers 401 and stores nothing.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::channels::{Channel, EventKind, signature};
use crate::http::json_error;

/// `GET /webhooks/whatsapp`
pub async fn verify_whatsapp(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    handshake(&app, Channel::WhatsApp, &q)
}

/// `GET /webhooks/instagram`
pub async fn verify_instagram(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    handshake(&app, Channel::Instagram, &q)
}

/// `POST /webhooks/whatsapp`
pub async fn receive_whatsapp(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body {
        Ok(body) => receive(&app, Channel::WhatsApp, &headers, &body).await,
        Err(e) => body_rejected(Channel::WhatsApp, &e),
    }
}

/// `POST /webhooks/instagram`
pub async fn receive_instagram(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body {
        Ok(body) => receive(&app, Channel::Instagram, &headers, &body).await,
        Err(e) => body_rejected(Channel::Instagram, &e),
    }
}

/// The body could not be read: over `server.max_body_bytes` (413) or cut off.
/// Answered with the same JSON error body as every other refusal.
fn body_rejected(channel: Channel, e: &BytesRejection) -> Response {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        tracing::warn!(%channel, "rejected a webhook larger than server.max_body_bytes");
        metrics::counter!("balas_webhook_rejected_total", "channel" => channel.as_str(), "reason" => "too_large").increment(1);
        return json_error(
            status,
            "payload_too_large",
            "the body is larger than server.max_body_bytes",
        );
    }
    json_error(status, "bad_body", &e.body_text())
}

/// Meta's verification handshake: echo `hub.challenge` when the token matches.
fn handshake(app: &App, channel: Channel, q: &HashMap<String, String>) -> Response {
    // A disabled channel refuses every POST; verifying it would subscribe Meta
    // to a URL that then fails every delivery (and gets the app unsubscribed).
    if !app.channel_settings(channel).enabled {
        return disabled(channel);
    }
    let expected = app.channel_settings(channel).verify_token.clone();
    let mode_ok = q.get("hub.mode").map(String::as_str) == Some("subscribe");
    let token_ok = match (expected, q.get("hub.verify_token")) {
        (Some(expected), Some(given)) => {
            subtle::ConstantTimeEq::ct_eq(expected.expose().as_bytes(), given.as_bytes()).into()
        }
        _ => false,
    };
    match q.get("hub.challenge") {
        Some(challenge) if mode_ok && token_ok => {
            tracing::info!(%channel, "webhook verification handshake accepted");
            (
                StatusCode::OK,
                [("content-type", "text/plain")],
                challenge.clone(),
            )
                .into_response()
        }
        _ => {
            tracing::warn!(%channel, "webhook verification handshake refused");
            (StatusCode::FORBIDDEN, "verification failed").into_response()
        }
    }
}

async fn receive(app: &App, channel: Channel, headers: &HeaderMap, body: &[u8]) -> Response {
    let settings = app.channel_settings(channel);
    if !settings.enabled {
        return disabled(channel);
    }
    if let Some(secret) = &settings.app_secret {
        let header = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        if let Err(e) = signature::verify_signature(secret.expose().as_bytes(), header, body) {
            tracing::warn!(%channel, reason = %e, bytes = body.len(), "rejected webhook with a bad signature");
            metrics::counter!("balas_webhook_rejected_total", "channel" => channel.as_str(), "reason" => "signature").increment(1);
            return json_error(StatusCode::UNAUTHORIZED, "bad_signature", &e.to_string());
        }
    }
    let parsed = match channel {
        Channel::WhatsApp => crate::channels::whatsapp::parse_webhook(body),
        Channel::Instagram => crate::channels::instagram::parse_webhook(body),
    };
    let events = match parsed {
        Ok(events) => events,
        Err(e) => {
            metrics::counter!("balas_webhook_rejected_total", "channel" => channel.as_str(), "reason" => "malformed").increment(1);
            return json_error(StatusCode::BAD_REQUEST, "malformed_payload", &e.to_string());
        }
    };
    // Replies go out from the number the customer wrote to; one that is not
    // configured cannot answer (its replies fail visibly). Stored anyway.
    let senders = app.outbox().senders();
    for event in &events {
        if !event.business_id.is_empty()
            && senders.resolve(channel, Some(&event.business_id)).is_none()
        {
            tracing::warn!(%channel, number = %event.business_id, "webhook for a number or account that is not configured; its replies cannot be sent (add it to [[whatsapp.numbers]] / [[instagram.accounts]])");
            metrics::counter!("balas_webhook_unknown_sender_total", "channel" => channel.as_str())
                .increment(1);
        }
    }
    match app.store().ingest_inbound(&events).await {
        Ok(accepted) => {
            for (event, fresh) in events.iter().zip(&accepted) {
                metrics::counter!(
                    "balas_webhook_events_total",
                    "channel" => channel.as_str(),
                    "type" => event_type(&event.kind),
                    "duplicate" => if *fresh { "false" } else { "true" }
                )
                .increment(1);
            }
            let fresh = accepted.iter().filter(|a| **a).count();
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({
                    "received": events.len(),
                    "new": fresh,
                    "duplicates": events.len() - fresh,
                })),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(%channel, error = %e, "cannot store webhook events; answering 503 so Meta retries");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "events could not be stored; retry later",
            )
        }
    }
}

fn disabled(channel: Channel) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "channel_disabled",
        &format!("{channel} is not enabled in this deployment ({channel}.enabled = false)"),
    )
}

/// Metric label for an event.
pub fn event_type(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Message(_) => "message",
        EventKind::Status(_) => "status",
        EventKind::Echo { .. } => "echo",
        EventKind::Read { .. } => "read",
        EventKind::Reaction { .. } => "reaction",
        EventKind::Deleted { .. } => "deleted",
        EventKind::PlatformError { .. } => "platform_error",
        EventKind::Unsupported { .. } => "unsupported",
    }
}
