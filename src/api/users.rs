//! `/api/v1/users`: admins manage people and their API tokens at runtime;
//! everyone may change their own password.
//!
//! Handlers are thin: check the role, call [`crate::access::accounts`], audit,
//! and map the result. Password hashes and token hashes never leave the store.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use crate::access::accounts::{self, AccountError, NewUser, PasswordChange, UserPatch};
use crate::access::audit::Action;
use crate::app::App;
use crate::config::Role;
use crate::http::{ApiError, JsonBody};
use crate::store::User;

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(m) => ApiError::bad_request(m),
            AccountError::NoUser(_) | AccountError::NoToken { .. } => {
                ApiError::not_found(e.to_string())
            }
            AccountError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "exists", e.to_string()),
            AccountError::LastAdmin(_) => {
                ApiError::new(StatusCode::CONFLICT, "last_admin", e.to_string())
            }
            AccountError::WrongPassword => {
                ApiError::new(StatusCode::FORBIDDEN, "wrong_password", e.to_string())
            }
            AccountError::Store(s) => s.into(),
        }
    }
}

/// A user as the API shows it: never a hash.
pub fn user_view(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "role": u.role,
        "queues": u.queues,
        "max_concurrent": u.max_concurrent,
        "disabled": u.disabled,
        "has_password": u.password_hash.is_some(),
        "tokens": u.tokens.iter().map(|t| json!({
            "id": t.id, "label": t.label, "created_ms": t.created_ms,
        })).collect::<Vec<_>>(),
        "created_ms": u.created_ms,
        "updated_ms": u.updated_ms,
    })
}

/// `GET /api/v1/users` (admin)
#[utoipa::path(get, path = "/api/v1/users", operation_id = "list_users", tag = "users",
    responses(
        (status = 200, description = "`{\"users\": [User]}`", body = Object),
        (status = 403, description = "Not an admin", body = crate::http::ErrorBody),
    ))]
pub async fn list(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let users = app.store().users().await?;
    Ok(Json(
        json!({ "users": users.iter().map(user_view).collect::<Vec<_>>() }),
    ))
}

/// `GET /api/v1/users/{id}` (admin, or oneself)
#[utoipa::path(get, path = "/api/v1/users/{id}", operation_id = "get_user", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user (never a hash)", body = Object),
        (status = 403, description = "Not an admin and not oneself", body = crate::http::ErrorBody),
        (status = 404, description = "No such user", body = crate::http::ErrorBody),
    ))]
pub async fn get(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if caller.0.id != id {
        caller.require_admin()?;
    }
    let user = app
        .store()
        .user(&id)
        .await?
        .ok_or_else(|| ApiError::from(AccountError::NoUser(id)))?;
    Ok(Json(user_view(&user)))
}

fn default_max_concurrent() -> u32 {
    5
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewUser)]
pub struct CreateBody {
    /// Stable id and sign-in name.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: String,
    /// Display name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Role (default `agent`).
    #[serde(default)]
    #[schema(schema_with = super::schema::role)]
    pub role: Role,
    /// Queues (default: all).
    #[serde(default)]
    pub queues: Vec<String>,
    /// Conversations at once (default 5).
    #[serde(default = "default_max_concurrent")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_concurrent: u32,
    /// Initial password (at least 10 characters); without it the user cannot
    /// sign in until one is set.
    #[serde(default)]
    #[schema(min_length = 10)]
    pub password: Option<String>,
}

/// `POST /api/v1/users` (admin): 201 with the user. It can sign in at once,
/// on every process.
#[utoipa::path(post, path = "/api/v1/users", operation_id = "create_user", tag = "users",
    request_body = CreateBody,
    responses(
        (status = 201, description = "The new user", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin", body = crate::http::ErrorBody),
        (status = 409, description = "The id is taken", body = crate::http::ErrorBody),
    ))]
pub async fn create(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let user = accounts::create_user(
        app.store(),
        NewUser {
            id: body.id,
            name: body.name,
            role: body.role,
            queues: body.queues,
            max_concurrent: body.max_concurrent,
            password: body.password,
        },
    )
    .await?;
    caller
        .audit(app.store(), Action::UserCreate, &user.id, None)
        .await;
    Ok((StatusCode::CREATED, Json(user_view(&user))).into_response())
}

/// Body of `PATCH /api/v1/users/{id}`: only the fields given change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserPatch)]
pub struct PatchBody {
    /// Display name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Role.
    #[schema(schema_with = super::schema::optional_role)]
    pub role: Option<Role>,
    /// Queues (`[]` = all).
    pub queues: Option<Vec<String>>,
    /// Conversations at once.
    #[schema(minimum = 1, maximum = 100)]
    pub max_concurrent: Option<u32>,
    /// Disable (their sessions end and their tokens stop working at once) or enable.
    pub disabled: Option<bool>,
}

/// `PATCH /api/v1/users/{id}` (admin)
#[utoipa::path(patch, path = "/api/v1/users/{id}", operation_id = "update_user", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The user as changed", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin", body = crate::http::ErrorBody),
        (status = 404, description = "No such user", body = crate::http::ErrorBody),
        (status = 409, description = "That would leave no enabled admin", body = crate::http::ErrorBody),
    ))]
pub async fn update(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let disabled = body.disabled;
    let user = accounts::update_user(
        app.store(),
        &id,
        UserPatch {
            name: body.name,
            role: body.role,
            queues: body.queues,
            max_concurrent: body.max_concurrent,
            disabled: body.disabled,
        },
    )
    .await?;
    let action = match disabled {
        Some(true) => Action::UserDisable,
        Some(false) => Action::UserEnable,
        None => Action::UserUpdate,
    };
    caller.audit(app.store(), action, &id, None).await;
    Ok(Json(user_view(&user)))
}

/// Body of `POST /api/v1/users/{id}/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewPassword)]
pub struct PasswordBody {
    /// The new password (at least 10 characters).
    #[schema(min_length = 10)]
    pub password: String,
    /// Your current password, when changing your own (and you have one).
    #[serde(default)]
    pub current_password: Option<String>,
}

/// `POST /api/v1/users/{id}/password`: an admin sets anyone else's password
/// (their sessions end); anyone changes their own with the current one (their
/// other sessions end). 204.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", operation_id = "set_password", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = PasswordBody,
    responses(
        (status = 204, description = "Password set"),
        (status = 400, description = "Password too short or invalid", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin, or the current password is wrong", body = crate::http::ErrorBody),
        (status = 404, description = "No such user", body = crate::http::ErrorBody),
    ))]
pub async fn set_password(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<Response, ApiError> {
    let how = if caller.0.id == id {
        PasswordChange::Own {
            current: body.current_password.as_deref(),
            keep_session: caller.session_hash(),
        }
    } else {
        caller.require_admin()?;
        PasswordChange::ByAdmin
    };
    accounts::set_password(app.store(), &id, &body.password, how).await?;
    caller
        .audit(app.store(), Action::UserPassword, &id, None)
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Body of `POST /api/v1/users/{id}/tokens`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewToken)]
pub struct TokenBody {
    /// What the token is for ("CRM integration").
    #[serde(default)]
    pub label: String,
}

/// `POST /api/v1/users/{id}/tokens` (admin): 201 with the token, shown only
/// in this answer.
#[utoipa::path(post, path = "/api/v1/users/{id}/tokens", operation_id = "issue_token", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body(content = Option<TokenBody>, description = "Optional label"),
    responses(
        (status = 201, description = "`{id, label, created_ms, token}`: the token, shown only in this answer", body = Object),
        (status = 400, description = "Invalid body", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin", body = crate::http::ErrorBody),
        (status = 404, description = "No such user", body = crate::http::ErrorBody),
    ))]
pub async fn issue_token(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<JsonBody<TokenBody>>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let label = body.map(|b| b.0.label).unwrap_or_default();
    let (record_, token) = accounts::issue_token(app.store(), &id, &label).await?;
    caller
        .audit(app.store(), Action::TokenIssue, &id, None)
        .await;
    let mut r = (
        StatusCode::CREATED,
        Json(json!({
            "id": record_.id, "label": record_.label, "created_ms": record_.created_ms,
            "token": token,
        })),
    )
        .into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// `DELETE /api/v1/users/{id}/tokens/{token_id}` (admin): 204; the token stops
/// working at once on every process.
#[utoipa::path(delete, path = "/api/v1/users/{id}/tokens/{token_id}", operation_id = "revoke_token", tag = "users",
    params(("id" = String, Path, description = "User id"), ("token_id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked; it stops working at once on every process"),
        (status = 403, description = "Not an admin", body = crate::http::ErrorBody),
        (status = 404, description = "No such user or token", body = crate::http::ErrorBody),
    ))]
pub async fn revoke_token(
    State(app): State<App>,
    caller: Caller,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    accounts::revoke_token(app.store(), &id, &token_id).await?;
    caller
        .audit(app.store(), Action::TokenRevoke, &id, None)
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
