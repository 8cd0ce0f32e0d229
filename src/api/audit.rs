//! `GET /api/v1/audit`: the audit log, for admins.
//!
//! Newest first, one page at a time: `next_cursor` continues where a page
//! stopped. Filters: `actor`, `action`, `target`, `contact` (a contact's
//! channel and id, matched through its pseudonym), `from` and `to` (a date in
//! the business time zone, an RFC 3339 time, or Unix ms).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use crate::access::audit::{self, Action};
use crate::app::App;
use crate::channels::Channel;
use crate::http::ApiError;
use crate::store::{AuditCursor, AuditQuery};

/// Entries per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// The most `limit` may ask for.
const MAX_LIMIT: usize = 1_000;

/// Query of `GET /api/v1/audit` (all text, checked here so every mistake
/// gets a JSON answer that says what to write).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this actor (a user id, `cli`, `config`).
    pub actor: Option<String>,
    /// Only this action (`contact.erase` …).
    pub action: Option<String>,
    /// Only this target (a user id, a case id, a contact pseudonym).
    pub target: Option<String>,
    /// Only this contact: `<channel>:<id>` (`whatsapp:6281234567890`).
    pub contact: Option<String>,
    /// Not before: `YYYY-MM-DD`, RFC 3339 or Unix ms.
    pub from: Option<String>,
    /// Not after (a date means its end).
    pub to: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Entries per page (1–1000, default 100).
    pub limit: Option<String>,
}

/// A time filter: Unix ms, or what [`crate::reports::parse_instant`] reads.
fn instant(app: &App, name: &str, text: &str, end: bool) -> Result<i64, ApiError> {
    if let Ok(ms) = text.trim().parse::<i64>() {
        return Ok(ms);
    }
    let tz = app.config().business_hours.timezone.zone().clone();
    crate::reports::parse_instant(text.trim(), &tz, end)
        .map_err(|e| ApiError::bad_request(format!("`{name}`: {e}, or Unix milliseconds")))
}

/// `GET /api/v1/audit` (admin)
#[utoipa::path(get, path = "/api/v1/audit", operation_id = "list_audit", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "`{entries: [...], next_cursor}`, newest first", body = Object),
        (status = 400, description = "Invalid filter", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin", body = crate::http::ErrorBody),
    ))]
pub async fn list(
    State(app): State<App>,
    caller: Caller,
    Query(p): Query<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let limit = match &p.limit {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("`limit` must be a number from 1 to {MAX_LIMIT}"))
            })?,
    };
    let action = match &p.action {
        None => None,
        Some(a) => Some(Action::parse(a.trim()).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown action {a:?}; use one of: {}",
                Action::ALL.map(Action::as_str).join(", ")
            ))
        })?),
    };
    let contact_target = match &p.contact {
        None => None,
        Some(c) => {
            let (channel, id) = c
                .split_once(':')
                .and_then(|(ch, id)| Some((Channel::parse(ch)?, id)))
                .filter(|(_, id)| !id.is_empty())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "`contact` is <channel>:<id>, e.g. whatsapp:6281234567890 or instagram:17841…",
                    )
                })?;
            Some(audit::contact_ref(app.store(), channel, id).await?)
        }
    };
    if contact_target.is_some() && p.target.is_some() {
        return Err(ApiError::bad_request(
            "give `target` or `contact`, not both",
        ));
    }
    let from_ms = p
        .from
        .as_deref()
        .map(|t| instant(&app, "from", t, false))
        .transpose()?;
    let to_ms =
        p.to.as_deref()
            .map(|t| instant(&app, "to", t, true))
            .transpose()?;
    if let (Some(f), Some(t)) = (from_ms, to_ms)
        && t < f
    {
        return Err(ApiError::bad_request("`to` is before `from`"));
    }
    let cursor = match &p.cursor {
        None => None,
        Some(c) => Some(AuditCursor::parse(c.trim()).ok_or_else(|| {
            ApiError::bad_request("`cursor` must be the next_cursor of a previous page")
        })?),
    };
    let page = app
        .store()
        .audit_page(&AuditQuery {
            actor: p.actor.map(|a| a.trim().to_string()),
            action: action.map(|a| a.as_str().to_string()),
            target: contact_target.or(p.target),
            from_ms,
            to_ms,
            cursor,
            limit,
        })
        .await?;
    Ok(Json(json!({
        "entries": page.entries,
        "next_cursor": page.next.map(|c| c.to_string()),
    })))
}
