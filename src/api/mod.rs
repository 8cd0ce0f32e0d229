//! The HTTP API for people: agents, supervisors, marketers and admins.
//!
//! Every route under `/api/v1` (except signing in) needs an API token
//! (`Authorization: Bearer <token>`) or the console's session cookie (plus its
//! CSRF token for changes), see [`auth`], and answers JSON (files excepted);
//! errors are `{"error": {"code", "message"}}`. Handlers stay thin and call
//! the engine, the outbox, attachments, surveys, broadcasts and
//! [`crate::access`] for the actual work. `/media/public/{id}` is the one route
//! outside it: signed, expiring links Instagram fetches our files from.

pub mod audit;
pub mod auth;
pub mod broadcasts;
pub mod client;
pub mod contacts;
pub mod conversations;
pub mod desk;
pub mod media;
pub mod reports;
pub mod session;
pub mod templates;
pub mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use crate::app::App;

/// Largest broadcast request or CSV upload.
pub const BROADCAST_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The `/api/v1` routes.
pub fn router() -> Router<App> {
    use broadcasts as b;
    use conversations as c;
    use media as m;
    use session as s;
    use users as u;
    // Audiences can be large (100,000 recipients); only these routes accept big bodies.
    let broadcasts = Router::new()
        .route("/api/v1/broadcasts", get(b::list).post(b::create))
        .route("/api/v1/broadcasts/{id}/audience.csv", post(b::upload_csv))
        .layer(DefaultBodyLimit::max(BROADCAST_BODY_LIMIT));
    // Agents' files are streamed into the media store, which enforces each
    // channel's limits as the bytes arrive; the general body limit would stop
    // a video at 1 MiB.
    let uploads = Router::new()
        .route("/api/v1/conversations/{id}/attachments", post(m::upload))
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .merge(broadcasts)
        .merge(uploads)
        .route("/api/v1/media/{id}", get(m::get_file))
        .route("/media/public/{id}", get(m::get_public))
        .route("/api/v1/conversations/{id}/typing", post(m::typing))
        .route("/api/v1/broadcasts/{id}", get(b::get))
        .route(
            "/api/v1/broadcasts/{id}/recipients.csv",
            get(b::recipients_csv),
        )
        .route("/api/v1/broadcasts/{id}/pause", post(b::pause))
        .route("/api/v1/broadcasts/{id}/resume", post(b::resume))
        .route("/api/v1/broadcasts/{id}/cancel", post(b::cancel))
        .route(
            "/api/v1/session",
            get(s::current).post(s::sign_in).delete(s::sign_out),
        )
        .route("/api/v1/users", get(u::list).post(u::create))
        .route("/api/v1/users/{id}", get(u::get).patch(u::update))
        .route("/api/v1/users/{id}/password", post(u::set_password))
        .route("/api/v1/users/{id}/tokens", post(u::issue_token))
        .route(
            "/api/v1/users/{id}/tokens/{token_id}",
            delete(u::revoke_token),
        )
        .route("/api/v1/me", get(c::me))
        .route(
            "/api/v1/me/presence",
            get(desk::get_presence).put(desk::put_presence),
        )
        .route("/api/v1/board", get(desk::board))
        .route("/api/v1/names", get(desk::names))
        .route("/api/v1/conversations/{id}/claim", post(desk::claim))
        .route(
            "/api/v1/conversations/{id}/snooze",
            post(desk::snooze).delete(desk::unsnooze),
        )
        .route("/api/v1/templates", get(templates::list))
        .route("/api/v1/templates/sync", post(templates::sync))
        .route("/api/v1/broadcasts/settings", get(templates::settings))
        .route("/api/v1/agents", get(c::agents))
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
        .route("/api/v1/audit", get(audit::list))
        .route(
            "/api/v1/contacts/{channel}/{id}/export",
            get(contacts::export),
        )
        .route("/api/v1/contacts/{channel}/{id}", delete(contacts::erase))
        .route("/api/v1/reports/summary", get(reports::summary))
        .route("/api/v1/reports/summary.csv", get(reports::summary_csv))
        .route("/api/v1/reports/surveys.csv", get(reports::surveys_csv))
}
