//! `POST/GET/DELETE /api/v1/session`: signing in and out of the console.
//!
//! Sign-in sets the session cookie (see [`super::client::session_set_cookie`])
//! and returns the CSRF token the console sends with every change. The cookie
//! is shared by all tabs of the browser; `GET` tells a freshly opened tab who
//! is signed in and the CSRF token.

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::auth::CSRF_HEADER;
use super::client;
use super::users::user_view;
use crate::access::audit::{self, Action};
use crate::access::sessions::{self, SignInError};
use crate::app::App;
use crate::http::{ApiError, JsonBody};
use crate::store::{Session, User};

/// Body of `POST /api/v1/session`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SignIn)]
pub struct SignInBody {
    /// The user id.
    pub username: String,
    /// The password.
    pub password: String,
}

fn session_json(user: &User, session: &Session, now_ms: i64) -> Value {
    json!({
        "user": user_view(user),
        "csrf_token": session.csrf_token,
        "expires_ms": session.expires_ms,
        "now_ms": now_ms,
    })
}

fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    let h = response.headers_mut();
    h.insert(header::SET_COOKIE, cookie);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /api/v1/session` `{"username", "password"}`: 200 with the user and the
/// CSRF token, and the session cookie; 401 for a wrong name or password (one
/// answer for both); 429 with `Retry-After` when attempts come too fast.
#[utoipa::path(post, path = "/api/v1/session", operation_id = "sign_in", tag = "session",
    security(()),
    request_body = SignInBody,
    responses(
        (status = 200, description = "`{user, csrf_token, expires_ms, now_ms}` and the session cookie", body = Object,
            headers(("set-cookie" = String, description = "The HttpOnly session cookie"))),
        (status = 400, description = "Invalid body", body = crate::http::ErrorBody),
        (status = 401, description = "Wrong user name or password (one answer for both)", body = crate::http::ErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = crate::http::ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The store is unavailable", body = crate::http::ErrorBody),
    ))]
pub async fn sign_in(
    State(app): State<App>,
    parts: Parts,
    JsonBody(body): JsonBody<SignInBody>,
) -> Result<Response, ApiError> {
    let config = app.config();
    let address = client::client_address(&parts.extensions, &parts.headers, config);
    let ttl = config.auth.session_ttl.get();
    let result =
        sessions::sign_in(app.store(), &body.username, &body.password, &address, ttl).await;
    let audit_sign_in = |ok: bool, actor: String| {
        let (store, address) = (app.store().clone(), address.clone());
        async move {
            let entry = audit::Entry {
                address: Some(&address),
                ok,
                ..audit::Entry::new(&actor, Action::SignIn, None)
            };
            audit::record(&store, entry).await;
        }
    };
    // What was typed is bounded before it reaches the log.
    let typed: String = body.username.trim().chars().take(64).collect();
    match result {
        Ok(signed) => {
            audit_sign_in(true, signed.user.id.clone()).await;
            let cookie = client::session_set_cookie(
                Some(&signed.session_id),
                ttl.as_secs(),
                &parts.extensions,
                &parts.headers,
                config,
            );
            let body = session_json(&signed.user, &signed.session, app.store().now_ms());
            Ok(with_cookie(Json(body).into_response(), cookie))
        }
        Err(SignInError::BadCredentials) => {
            audit_sign_in(false, typed).await;
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong user name or password",
            ))
        }
        Err(e @ SignInError::RateLimited { retry_after_ms }) => {
            audit_sign_in(false, typed).await;
            let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
                .into_response();
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_ms.div_ceil(1000).max(1)),
            );
            Ok(r)
        }
        Err(SignInError::Store(e)) => Err(e.into()),
    }
}

/// `GET /api/v1/session`: who is signed in with this browser's cookie, the
/// CSRF token and when the session ends; `{"user": null}` when nobody is (a
/// normal answer for a console that was just opened, not an error).
#[utoipa::path(get, path = "/api/v1/session", operation_id = "current_session", tag = "session",
    security((), ("session" = [])),
    responses(
        (status = 200, description = "`{user, csrf_token, expires_ms, now_ms}`, or `{\"user\": null}` when nobody is signed in", body = Object),
        (status = 503, description = "The store is unavailable", body = crate::http::ErrorBody),
    ))]
pub async fn current(State(app): State<App>, parts: Parts) -> Result<Response, ApiError> {
    let active = match client::session_cookie(&parts.headers) {
        Some(id) => sessions::session_user(app.store(), &id).await?,
        None => None,
    };
    let now = app.store().now_ms();
    let body = match active {
        Some(a) => session_json(&a.user, &a.session, now),
        None => json!({ "user": null, "csrf_token": null, "now_ms": now }),
    };
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `DELETE /api/v1/session`: signs this browser out (204, and the cookie is
/// cleared). A live session needs its CSRF token, like every change.
#[utoipa::path(delete, path = "/api/v1/session", operation_id = "sign_out", tag = "session",
    security((), ("session" = [])),
    params(("x-csrf-token" = Option<String>, Header, description = "The session's CSRF token (needed with a live session)")),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 403, description = "Missing or wrong CSRF token", body = crate::http::ErrorBody),
        (status = 503, description = "The store is unavailable", body = crate::http::ErrorBody),
    ))]
pub async fn sign_out(State(app): State<App>, parts: Parts) -> Result<Response, ApiError> {
    let config = app.config();
    if let Some(id) = client::session_cookie(&parts.headers)
        && let Some(active) = sessions::session_user(app.store(), &id).await?
    {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if sent.is_empty() || !bool::from(sent.ct_eq(active.session.csrf_token.as_bytes())) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong X-CSRF-Token header",
            ));
        }
        sessions::sign_out(app.store(), &id).await?;
        let address = client::client_address(&parts.extensions, &parts.headers, config);
        let entry = audit::Entry {
            address: Some(&address),
            ..audit::Entry::new(&active.user.id, Action::SignOut, None)
        };
        audit::record(app.store(), entry).await;
    }
    let cookie = client::session_set_cookie(None, 0, &parts.extensions, &parts.headers, config);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), cookie))
}
