//! The HTTP API for people: agents, supervisors, marketers and admins.
//!
//! Every route under `/api/v1` (except signing in) needs an API token
//! (`Authorization: Bearer <token>`) or the console's session cookie (plus its
//! CSRF token for changes), see [`auth`], and answers JSON (files excepted);
//! errors are `{"error": {"code", "message"}}`. Handlers stay thin and call
//! the engine, the outbox, attachments, surveys, broadcasts and
//! [`crate::access`] for the actual work. `/media/public/{id}` is the one route
//! outside it: signed, expiring links Instagram fetches our files from.
//!
//! Every route is registered from its handler's `#[utoipa::path]`, which also
//! makes its entry in the OpenAPI document served at `/api/v1/openapi.json`
//! ([`openapi`]).

pub mod audit;
pub mod auth;
pub mod broadcasts;
pub mod client;
pub mod contacts;
pub mod conversations;
pub mod desk;
pub mod media;
pub mod openapi;
pub mod reports;
pub mod schema;
pub mod session;
pub mod templates;
pub mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;

/// Largest broadcast request or CSV upload.
pub const BROADCAST_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The `/api/v1` routes.
pub fn router() -> Router<App> {
    routes_and_document().0
}

/// The `/api/v1` routes and their OpenAPI description, made by the same
/// registrations: every route is added with `routes!` from a handler's
/// `#[utoipa::path]`, which gives both its axum route and its operation, so
/// the two cannot drift apart. Add new routes the same way, never with a
/// plain `.route(…)` (tests/openapi.rs fails if one is).
pub fn routes_and_document() -> (Router<App>, utoipa::openapi::OpenApi) {
    use broadcasts as b;
    use conversations as c;
    use media as m;
    use session as s;
    use users as u;
    // Audiences can be large (100,000 recipients); only these routes accept big bodies.
    let broadcasts = OpenApiRouter::new()
        .routes(routes!(b::list, b::create))
        .routes(routes!(b::upload_csv))
        .layer(DefaultBodyLimit::max(BROADCAST_BODY_LIMIT));
    // Agents' files are streamed into the media store, which enforces each
    // channel's limits as the bytes arrive; the general body limit would stop
    // a video at 1 MiB.
    let uploads = OpenApiRouter::new()
        .routes(routes!(m::upload))
        .layer(DefaultBodyLimit::disable());
    let (router, document) = OpenApiRouter::with_openapi(openapi::base())
        .merge(broadcasts)
        .merge(uploads)
        .routes(routes!(openapi::document))
        .routes(routes!(m::get_file))
        .routes(routes!(m::get_public))
        .routes(routes!(m::typing))
        .routes(routes!(b::get))
        .routes(routes!(b::recipients_csv))
        .routes(routes!(b::pause))
        .routes(routes!(b::resume))
        .routes(routes!(b::cancel))
        .routes(routes!(s::current, s::sign_in, s::sign_out))
        .routes(routes!(u::list, u::create))
        .routes(routes!(u::get, u::update))
        .routes(routes!(u::set_password))
        .routes(routes!(u::issue_token))
        .routes(routes!(u::revoke_token))
        .routes(routes!(c::me))
        .routes(routes!(desk::get_presence, desk::put_presence))
        .routes(routes!(desk::board))
        .routes(routes!(desk::names))
        .routes(routes!(desk::claim))
        .routes(routes!(desk::snooze, desk::unsnooze))
        .routes(routes!(templates::list))
        .routes(routes!(templates::sync))
        .routes(routes!(templates::settings))
        .routes(routes!(c::agents))
        .routes(routes!(c::queue))
        .routes(routes!(c::claim))
        .routes(routes!(c::list))
        .routes(routes!(c::get))
        .routes(routes!(c::send_message))
        .routes(routes!(c::add_note))
        .routes(routes!(c::labels))
        .routes(routes!(c::transfer))
        .routes(routes!(c::release))
        .routes(routes!(c::resolve))
        .routes(routes!(c::canned))
        .routes(routes!(c::events))
        .routes(routes!(audit::list))
        .routes(routes!(contacts::export))
        .routes(routes!(contacts::erase))
        .routes(routes!(reports::summary))
        .routes(routes!(reports::summary_csv))
        .routes(routes!(reports::surveys_csv))
        .split_for_parts();
    // Extractor rejections (a query string or path that does not parse, a
    // body over the limit) answer in the same JSON shape as everything else.
    let router = router.layer(axum::middleware::map_response(crate::http::json_errors));
    (router, openapi::finish(document))
}
