//! `/api/v1/templates`: the WhatsApp templates synced from Meta, for
//! marketers to pick from; and the broadcast settings the create form needs
//! (quiet hours). Marketers and admins.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::audit::Action;
use crate::api::auth::Caller;
use crate::app::App;
use crate::broadcast::templates::{self, SyncError, TemplateCheckError};
use crate::channels::Channel;
use crate::config::Role;
use crate::http::ApiError;
use crate::store::TemplateCatalogue;

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::NotConfigured => {
                ApiError::new(StatusCode::CONFLICT, "not_configured", e.to_string())
            }
            SyncError::Graph(g) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "graph_error", g.to_string())
            }
            SyncError::Store(s) => s.into(),
        }
    }
}

impl From<TemplateCheckError> for ApiError {
    fn from(e: TemplateCheckError) -> Self {
        let code = match &e {
            TemplateCheckError::Unknown { .. } => "unknown_template",
            TemplateCheckError::NotApproved { .. } => "template_not_approved",
            TemplateCheckError::Parameters { .. } => "template_parameters",
            TemplateCheckError::Sync(_) => "graph_error",
            TemplateCheckError::Store(_) => "store_unavailable",
        };
        match e {
            TemplateCheckError::Store(s) => s.into(),
            TemplateCheckError::Sync(SyncError::Store(s)) => s.into(),
            TemplateCheckError::Sync(s @ SyncError::Graph(_)) => {
                ApiError::new(StatusCode::BAD_GATEWAY, code, s.to_string())
            }
            other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, other.to_string()),
        }
    }
}

fn view(app: &App, c: Option<(String, TemplateCatalogue)>) -> Value {
    let (account, synced_ms, list) = match c {
        Some((waba, c)) => (Some(waba), Some(c.synced_ms), c.templates),
        None => (None, None, Vec::new()),
    };
    json!({
        "configured": templates::configured(app.broadcasts()),
        "business_account_id": account,
        "synced_ms": synced_ms,
        "templates": list,
    })
}

/// Query of the template routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplatesQuery {
    /// The WhatsApp number (`phone_number_id`) a broadcast would go out
    /// from: its business account's templates. Default: the default sender.
    pub from: Option<String>,
}

/// The sender whose templates a request means; 400 for a number that is
/// not configured.
fn sender(app: &App, from: Option<&str>) -> Result<Option<String>, ApiError> {
    app.outbox()
        .senders()
        .choose(Channel::WhatsApp, from)
        .or_else(|e| match from {
            // Several numbers and none named: the default account's.
            None => Ok(None),
            Some(_) => Err(ApiError::bad_request(e.to_string())),
        })
}

/// `GET /api/v1/templates[?from=]`: the synced templates of the sender's
/// business account (synced first when none are stored yet).
#[utoipa::path(get, path = "/api/v1/templates", operation_id = "list_templates", tag = "broadcasts",
    params(TemplatesQuery),
    responses(
        (status = 200, description = "`{configured, business_account_id, synced_ms, templates: [...]}`", body = Object),
        (status = 400, description = "`from` is not a configured WhatsApp number", body = crate::http::ErrorBody),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
        (status = 409, description = "The business account has no access token to sync with (`not_configured`)", body = crate::http::ErrorBody),
        (status = 502, description = "Meta's Graph API failed the sync (`graph_error`)", body = crate::http::ErrorBody),
    ))]
pub async fn list(
    State(app): State<App>,
    caller: Caller,
    Query(q): Query<TemplatesQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let from = sender(&app, q.from.as_deref())?;
    let c = templates::catalogue(app.broadcasts(), from.as_deref()).await?;
    Ok(Json(view(&app, c)))
}

/// `POST /api/v1/templates/sync[?from=]`: reads the templates of every
/// configured business account from Meta now; answers like `GET` (for
/// `from`), with `synced`: each account and how many templates it has.
#[utoipa::path(post, path = "/api/v1/templates/sync", operation_id = "sync_templates", tag = "broadcasts",
    params(TemplatesQuery),
    responses(
        (status = 200, description = "Like `GET /api/v1/templates`, plus `synced: [{business_account_id, templates}]`", body = Object),
        (status = 400, description = "`from` is not a configured WhatsApp number", body = crate::http::ErrorBody),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
        (status = 409, description = "No WhatsApp business account is configured (`not_configured`)", body = crate::http::ErrorBody),
        (status = 502, description = "Meta's Graph API failed the sync (`graph_error`)", body = crate::http::ErrorBody),
    ))]
pub async fn sync(
    State(app): State<App>,
    caller: Caller,
    Query(q): Query<TemplatesQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let from = sender(&app, q.from.as_deref())?;
    let all = templates::sync(app.broadcasts()).await?;
    let counts: Vec<Value> = all
        .iter()
        .map(|(waba, c)| json!({"business_account_id": waba, "templates": c.templates.len()}))
        .collect();
    let detail = all
        .iter()
        .map(|(waba, c)| format!("{waba}:{}", c.templates.len()))
        .collect::<Vec<_>>()
        .join(",");
    caller
        .audit(app.store(), Action::TemplateSync, "whatsapp", Some(&detail))
        .await;
    let waba = app
        .config()
        .whatsapp
        .business_account_of(from.as_deref())
        .map(str::to_string);
    let mine = all.into_iter().find(|(w, _)| Some(w) == waba.as_ref());
    let mut v = view(&app, mine);
    v["synced"] = Value::Array(counts);
    Ok(Json(v))
}

/// `GET /api/v1/broadcasts/settings`: quiet hours (local range and time
/// zone) and the default rate, for the create form's warnings.
#[utoipa::path(get, path = "/api/v1/broadcasts/settings", operation_id = "broadcast_settings", tag = "broadcasts",
    responses(
        (status = 200, description = "`{quiet_hours, timezone, rate_per_sec}`", body = Object),
        (status = 403, description = "Not a marketer or admin", body = crate::http::ErrorBody),
    ))]
pub async fn settings(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let b = &app.config().broadcast;
    Ok(Json(json!({
        "quiet_hours": b.quiet_hours.trim(),
        "timezone": b.timezone.name(),
        "rate_per_sec": b.rate_per_sec,
    })))
}
