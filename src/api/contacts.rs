//! `/api/v1/contacts/{channel}/{id}`: a customer's personal data, for admins
//! answering a data request (UU PDP 27/2022).
//!
//! - `GET …/export`: everything stored about the contact, as one JSON
//!   document ([`crate::privacy::export`]).
//! - `DELETE …`: erases it ([`crate::privacy::erasure`]); cases stay
//!   countable in reports without the contact.
//!
//! Both are in the audit log under the contact's pseudonym (never the number).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Caller;
use crate::access::audit::{self, Action};
use crate::app::App;
use crate::channels::Channel;
use crate::http::ApiError;
use crate::privacy::{PrivacyError, erasure, export};

impl From<PrivacyError> for ApiError {
    fn from(e: PrivacyError) -> Self {
        match e {
            PrivacyError::Busy => ApiError::new(StatusCode::CONFLICT, "busy", e.to_string()),
            PrivacyError::Store(s) => s.into(),
            PrivacyError::Media(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "media_unavailable",
                format!("{e}; nothing erased comes back: run the erasure again to finish it"),
            ),
        }
    }
}

/// The channel and contact id of a path, checked.
fn contact(channel: &str, id: &str) -> Result<(Channel, String), ApiError> {
    let channel = Channel::parse(channel).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown channel {channel:?}; use whatsapp or instagram"
        ))
    })?;
    let id = id.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "the contact id is the WhatsApp number (e.g. 6281234567890) or the Instagram id",
        ));
    }
    Ok((channel, id.to_string()))
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /api/v1/contacts/{channel}/{id}/export` (admin): 200 with the
/// document, 404 when nothing is stored about the contact.
#[utoipa::path(get, path = "/api/v1/contacts/{channel}/{id}/export", operation_id = "export_contact", tag = "contacts",
    params(("channel" = String, Path, description = "`whatsapp` or `instagram`"), ("id" = String, Path, description = "WhatsApp number or Instagram id")),
    responses(
        (status = 200, description = "Everything stored about the contact", body = Object),
        (status = 400, description = "Unknown channel or invalid id", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin", body = crate::http::ErrorBody),
        (status = 404, description = "Nothing is stored about the contact", body = crate::http::ErrorBody),
    ))]
pub async fn export(
    State(app): State<App>,
    caller: Caller,
    Path((channel, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let (channel, id) = contact(&channel, &id)?;
    let document = export::export(app.store(), channel, &id).await?;
    let target = audit::contact_ref(app.store(), channel, &id).await?;
    let Some(document) = document else {
        return Err(ApiError::not_found(format!(
            "nothing is stored about {channel} contact {id}"
        )));
    };
    caller
        .audit(app.store(), Action::ContactExport, &target, None)
        .await;
    Ok(no_store(Json(document).into_response()))
}

/// `DELETE /api/v1/contacts/{channel}/{id}` (admin): 200 with what was
/// erased; 404 when nothing was stored; 409 while a message of the contact is
/// being handled; 503 when a store failed midway (run it again to finish).
#[utoipa::path(delete, path = "/api/v1/contacts/{channel}/{id}", operation_id = "erase_contact", tag = "contacts",
    params(("channel" = String, Path, description = "`whatsapp` or `instagram`"), ("id" = String, Path, description = "WhatsApp number or Instagram id")),
    responses(
        (status = 200, description = "`{erased, audit_target}`: what was erased", body = Object),
        (status = 400, description = "Unknown channel or invalid id", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin", body = crate::http::ErrorBody),
        (status = 404, description = "Nothing was stored about the contact", body = crate::http::ErrorBody),
        (status = 409, description = "A message of the contact is being handled; retry", body = crate::http::ErrorBody),
        (status = 503, description = "A store failed midway; run it again to finish", body = crate::http::ErrorBody),
    ))]
pub async fn erase(
    State(app): State<App>,
    caller: Caller,
    Path((channel, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let (channel, id) = contact(&channel, &id)?;
    let target = audit::contact_ref(app.store(), channel, &id).await?;
    let erased = match erasure::erase(app.store(), app.media(), channel, &id).await {
        Ok(e) => e,
        Err(e) => {
            // An erasure cut short is audited too: someone has to finish it.
            // The kind only: a store error may quote a key with the number.
            let kind = match &e {
                PrivacyError::Busy => "busy",
                PrivacyError::Store(_) => "store failed",
                PrivacyError::Media(_) => "media store failed",
            };
            let entry = audit::Entry {
                address: Some(&caller.2),
                ok: false,
                detail: Some(kind),
                ..audit::Entry::new(&caller.0.id, Action::ContactErase, Some(&target))
            };
            audit::record(app.store(), entry).await;
            return Err(e.into());
        }
    };
    if !erased.found_anything() {
        return Err(ApiError::not_found(format!(
            "nothing is stored about {channel} contact {id}"
        )));
    }
    caller
        .audit(
            app.store(),
            Action::ContactErase,
            &target,
            Some(&erased.summary()),
        )
        .await;
    Ok(no_store(
        Json(json!({ "erased": erased, "audit_target": target })).into_response(),
    ))
}
