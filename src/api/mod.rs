//! The HTTP API for people: agents, supervisors, marketers and admins.
//!
//! Every route under `/api/v1` needs `Authorization: Bearer <token>` and answers
//! JSON; errors are `{"error": {"code", "message"}}`. Handlers stay thin and call
//! the engine, the outbox, surveys and broadcasts for the actual work.

pub mod auth;
pub mod conversations;

use axum::Router;
use axum::routing::{get, post};

use crate::app::App;

/// The `/api/v1` routes.
pub fn router() -> Router<App> {
    use conversations as c;
    Router::new()
        .route("/api/v1/me", get(c::me))
        .route("/api/v1/queue", get(c::queue))
        .route("/api/v1/queue/claim", post(c::claim))
        .route("/api/v1/conversations", get(c::list))
        .route("/api/v1/conversations/{id}", get(c::get))
        .route("/api/v1/conversations/{id}/messages", post(c::send_message))
        .route("/api/v1/conversations/{id}/notes", post(c::add_note))
        .route("/api/v1/conversations/{id}/labels", post(c::labels))
        .route("/api/v1/conversations/{id}/transfer", post(c::transfer))
        .route("/api/v1/conversations/{id}/release", post(c::release))
        .route("/api/v1/conversations/{id}/resolve", post(c::resolve))
        .route("/api/v1/canned", get(c::canned))
        .route("/api/v1/events", get(c::events))
        .route("/api/v1/reports/summary", get(crate::reports::summary))
        .route("/api/v1/reports/surveys.csv", get(crate::reports::surveys_csv))
}
