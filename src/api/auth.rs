//! Who is calling `/api/v1`, and role checks.
//!
//! Two ways in: `Authorization: Bearer <token>` (the CLI and integrations; an
//! API token issued to a user) or the session cookie set by
//! `POST /api/v1/session` (the console). A cookie-authenticated request that
//! changes anything must also carry the session's CSRF token in
//! `X-CSRF-Token`; bearer requests need none, since a browser never adds an
//! `Authorization` header to a cross-site request. Every request reads the
//! store, so a disabled user or a revoked token is refused at once on every
//! process. Missing or unknown credentials answer 401; a known user without
//! the right role answers 403.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use subtle::ConstantTimeEq;

use super::client;
use crate::access::{audit, policy, sessions};
use crate::app::App;
use crate::config::Role;
use crate::http::ApiError;
use crate::store::User;

/// Header carrying the CSRF token of a cookie session.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    /// An API token (bearer).
    Token {
        /// The token's id.
        token_id: String,
    },
    /// A console session (cookie).
    Session {
        /// Hash of the session id (its store key).
        hash: String,
    },
}

/// The authenticated caller: the user as stored right now, how they signed
/// in, and the client's address (as [`client::client_address`] tells it, for
/// the audit log).
#[derive(Debug, Clone)]
pub struct Caller(pub User, pub Via, pub String);

/// Hex SHA-256 of a token, as stored (and as `token_sha256` in `[[agents]]`).
pub fn token_hash(token: &str) -> String {
    crate::access::secrets::sha256_hex(token)
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// Methods that change nothing and so need no CSRF token.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let store = app.store();
        let address = client::client_address(&parts.extensions, &parts.headers, app.config());
        if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let token = header
                .to_str()
                .ok()
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
            return match sessions::token_user(store, token).await? {
                Some((user, token_id)) => Ok(Caller(user, Via::Token { token_id }, address)),
                None => Err(unauthorized(
                    "unknown, revoked or disabled token; ask an admin for a new one",
                )),
            };
        }
        let Some(session_id) = client::session_cookie(&parts.headers) else {
            return Err(unauthorized(
                "sign in (POST /api/v1/session) or send `Authorization: Bearer <token>`",
            ));
        };
        let Some(active) = sessions::session_user(store, &session_id).await? else {
            return Err(unauthorized(
                "your session has ended (signed out, expired or disabled); sign in again",
            ));
        };
        if !is_safe(&parts.method) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            let expected = active.session.csrf_token.as_bytes();
            if sent.is_empty() || !bool::from(sent.ct_eq(expected)) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "missing or wrong X-CSRF-Token header: send the csrf_token from GET /api/v1/session with every change",
                ));
            }
        }
        Ok(Caller(
            active.user,
            Via::Session { hash: active.hash },
            address,
        ))
    }
}

impl Caller {
    /// 403 unless the caller has one of `roles` (admins always pass).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.0.role == Role::Admin || roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "role `{}` may not do this; needs one of: {}",
                    self.0.role.as_str(),
                    roles
                        .iter()
                        .chain(std::iter::once(&Role::Admin))
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    }

    /// Agent-desk routes: agents, supervisors, admins.
    pub fn require_desk(&self) -> Result<(), ApiError> {
        self.require(&[Role::Agent, Role::Supervisor])
    }

    /// Admin-only routes.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require(&[])
    }

    /// Supervisors and admins may act on any conversation.
    pub fn is_supervisor(&self) -> bool {
        policy::sees_all_conversations(&self.0)
    }

    /// Whether the caller may see a conversation in `queue` assigned to `agent`.
    pub fn may_see(&self, queue: Option<&str>, agent: Option<&str>) -> bool {
        policy::may_see_conversation(&self.0, queue, agent)
    }

    /// The caller as stored now, or `None` when their session ended, their
    /// token was revoked or they were disabled; for long-lived requests (the
    /// event stream) that must not outlive the credentials they started with.
    pub async fn refreshed(
        &self,
        store: &crate::store::Store,
    ) -> Result<Option<Caller>, crate::store::StoreError> {
        match &self.1 {
            Via::Token { token_id } => {
                let Some(user) = store.user(&self.0.id).await? else {
                    return Ok(None);
                };
                let held = user.tokens.iter().any(|t| &t.id == token_id);
                Ok((held && !user.disabled).then(|| Caller(user, self.1.clone(), self.2.clone())))
            }
            Via::Session { hash } => {
                let Some(session) = store.session(hash).await? else {
                    return Ok(None);
                };
                if session.expires_ms <= store.now_ms() {
                    return Ok(None);
                }
                let user = store.user(&session.user_id).await?;
                Ok(user
                    .filter(|u| !u.disabled)
                    .map(|u| Caller(u, self.1.clone(), self.2.clone())))
            }
        }
    }

    /// Records a successful action of the caller in the audit log, with the
    /// client's address.
    pub async fn audit(
        &self,
        store: &crate::store::Store,
        action: audit::Action,
        target: &str,
        detail: Option<&str>,
    ) {
        let entry = audit::Entry {
            address: Some(&self.2),
            detail,
            ..audit::Entry::new(&self.0.id, action, Some(target))
        };
        audit::record(store, entry).await;
    }

    /// The session hash, when the caller came with a cookie.
    pub fn session_hash(&self) -> Option<&str> {
        match &self.1 {
            Via::Session { hash } => Some(hash),
            Via::Token { .. } => None,
        }
    }
}
