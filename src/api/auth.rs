//! Bearer-token authentication and role checks for `/api/v1`.
//!
//! Agents are declared in config with the SHA-256 of their token; a request's
//! token is hashed and compared in constant time against each. Missing or
//! unknown tokens answer 401; a known agent without the right role answers 403.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::config::{AgentConfig, Role};
use crate::http::ApiError;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub AgentConfig);

/// Hex SHA-256 of a token, as stored in `token_sha256`.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Finds the agent whose token hash matches `token`.
pub fn authenticate<'a>(agents: &'a [AgentConfig], token: &str) -> Option<&'a AgentConfig> {
    let hash = token_hash(token);
    let mut found = None;
    // Compare against every agent so timing does not reveal which one matched.
    for agent in agents {
        let expected = agent.token_sha256.trim().to_ascii_lowercase();
        if bool::from(expected.as_bytes().ct_eq(hash.as_bytes())) {
            found = Some(agent);
        }
    }
    found
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing Authorization: Bearer <token> header",
                )
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the Authorization header must be `Bearer <token>`",
                )
            })?;
        authenticate(&app.config().agents, token)
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown token"))
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

    /// Supervisors and admins may act on any conversation.
    pub fn is_supervisor(&self) -> bool {
        matches!(self.0.role, Role::Supervisor | Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_by_hash() {
        let agents = vec![AgentConfig {
            id: "siti".into(),
            name: "Siti".into(),
            role: Role::Agent,
            queues: vec![],
            max_concurrent: 5,
            token_sha256: token_hash("s3cret").to_uppercase(),
        }];
        assert_eq!(
            authenticate(&agents, "s3cret").map(|a| a.id.as_str()),
            Some("siti")
        );
        assert!(authenticate(&agents, "wrong").is_none());
        assert!(authenticate(&agents, "").is_none());
    }
}
