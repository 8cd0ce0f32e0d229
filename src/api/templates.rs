//! `/api/v1/templates`: the WhatsApp templates synced from Meta, for
//! marketers to pick from; and the broadcast settings the create form needs
//! (quiet hours). Marketers and admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::access::audit::Action;
use crate::api::auth::Caller;
use crate::app::App;
use crate::broadcast::templates::{self, SyncError, TemplateCheckError};
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

fn view(app: &App, c: Option<TemplateCatalogue>) -> Value {
    let (synced_ms, list) = match c {
        Some(c) => (Some(c.synced_ms), c.templates),
        None => (None, Vec::new()),
    };
    json!({
        "configured": templates::configured(app.broadcasts()),
        "synced_ms": synced_ms,
        "templates": list,
    })
}

/// `GET /api/v1/templates`: the synced templates (synced first when none
/// are stored yet).
pub async fn list(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let c = templates::catalogue(app.broadcasts()).await?;
    Ok(Json(view(&app, c)))
}

/// `POST /api/v1/templates/sync`: reads the templates from Meta now.
pub async fn sync(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let c = templates::sync(app.broadcasts()).await?;
    let detail = format!("templates:{}", c.templates.len());
    caller
        .audit(app.store(), Action::TemplateSync, "whatsapp", Some(&detail))
        .await;
    Ok(Json(view(&app, Some(c))))
}

/// `GET /api/v1/broadcasts/settings`: quiet hours (local range and time
/// zone) and the default rate, for the create form's warnings.
pub async fn settings(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Marketer])?;
    let b = &app.config().broadcast;
    Ok(Json(json!({
        "quiet_hours": b.quiet_hours.trim(),
        "timezone": b.timezone.name(),
        "rate_per_sec": b.rate_per_sec,
    })))
}
