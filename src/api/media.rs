//! Files over HTTP: serving a conversation's files to the desk, the public
//! links Instagram fetches our files from, agents' uploads, and the typing
//! indicator.
//!
//! Every file is served with the content type it was stored with, a
//! `Content-Disposition` (inline only for pictures, video, audio and PDF;
//! anything else, HTML and SVG included, as a download), `nosniff`, and a
//! Content-Security-Policy with `sandbox` and no script source, so a file a
//! customer sent can never run script in the console's origin.

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Field, Multipart, MultipartError, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::conversations::{load, owns, replyable};
use crate::app::App;
use crate::attachments::{OpenError, UploadError};
use crate::channels::media::{MAX_CAPTION, MediaRejection};
use crate::channels::{
    Channel, OutboundContent, OutboundMedia, OutboundMediaSource, OutboundMessage,
};
use crate::conversation::State as ConvState;
use crate::engine::{ownership, receipts};
use crate::http::ApiError;
use crate::media::sniff::inline_safe;
use crate::outbox::{OutboxError, Outgoing, window};
use crate::store::{Attachment, AttachmentStatus, Origin, Speaker};

/// The policy of every served file: nothing runs, nothing loads.
pub const FILE_CSP: &str = "default-src 'none'; img-src 'self'; media-src 'self'; \
style-src 'unsafe-inline'; sandbox";

/// Largest caption field read (bytes); longer captions are refused anyway.
const CAPTION_FIELD_MAX: usize = 8 * 1024;

/// Bytes of a refused file read (and dropped) before answering.
const DRAIN_MAX: usize = 8 * 1024 * 1024;

/// An attachment as the API shows it.
pub fn attachment_json(a: &Attachment) -> Value {
    let error = match &a.status {
        AttachmentStatus::Failed { reason } => Some(reason.clone()),
        _ => None,
    };
    json!({
        "id": a.id,
        "kind": a.kind,
        "direction": a.direction,
        "mime_type": a.mime_type,
        "size": a.size,
        "sha256": a.sha256,
        "caption": a.caption,
        "filename": a.filename,
        "voice": a.voice,
        "url": format!("/api/v1/media/{}", a.id),
        "status": a.status.as_str(),
        "error": error,
        "attempts": a.attempts,
    })
}

/// Query of `GET /api/v1/media/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// `1` (or `true`): always as a download.
    #[serde(default)]
    pub download: Option<String>,
}

/// `GET /api/v1/media/{id}`: a conversation's file, for desk users who may see
/// that conversation (404 for everyone else: the file's existence is not
/// revealed). 409 while it downloads, 410 when it failed or expired.
#[utoipa::path(get, path = "/api/v1/media/{id}", operation_id = "get_file", tag = "media",
    params(("id" = String, Path, description = "Attachment id"), FileQuery),
    responses(
        (status = 200, description = "The file, with the type it was stored with", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such file, or not visible to the caller", body = crate::http::ErrorBody),
        (status = 409, description = "Still downloading", body = crate::http::ErrorBody),
        (status = 410, description = "The download failed or the file expired", body = crate::http::ErrorBody),
    ))]
pub async fn get_file(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> Result<Response, ApiError> {
    caller.require_desk()?;
    let not_found = || ApiError::not_found(format!("file {id} not found"));
    if !Attachment::valid_id(&id) {
        return Err(not_found());
    }
    let attachment = app.store().attachment(&id).await?.ok_or_else(not_found)?;
    let conv = app
        .store()
        .conversation(&attachment.conversation_id)
        .await?
        .ok_or_else(not_found)?;
    if !caller.may_see(conv.queue.as_deref(), conv.agent.as_deref()) {
        return Err(not_found());
    }
    let download = q
        .download
        .as_deref()
        .is_some_and(|d| d == "1" || d == "true");
    serve(&app, &attachment, download).await
}

/// Query of the public link route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Signature.
    pub sig: String,
}

/// `GET /media/public/{id}?exp=&sig=`: one of our outbound files, for the
/// platform to fetch (Instagram). No login: the signed link is the
/// permission. Customers' files are never served here.
#[utoipa::path(get, path = "/media/public/{id}", operation_id = "get_public_file", tag = "media",
    security(()),
    params(("id" = String, Path, description = "Attachment id"), LinkQuery),
    responses(
        (status = 200, description = "One of our outbound files, for the platform to fetch", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 404, description = "No such file, or a bad signature", body = crate::http::ErrorBody),
        (status = 410, description = "The link has expired", body = crate::http::ErrorBody),
        (status = 503, description = "The store is unavailable", body = crate::http::ErrorBody),
    ))]
pub async fn get_public(
    State(app): State<App>,
    Path(id): Path<String>,
    q: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("no such file");
    let Ok(Query(q)) = q else {
        return Err(not_found());
    };
    if !Attachment::valid_id(&id) {
        return Err(not_found());
    }
    if app.store().now_ms() / 1000 > q.exp {
        return Err(ApiError::new(
            StatusCode::GONE,
            "link_expired",
            "this link has expired",
        ));
    }
    if !app.files().check_link(&id, q.exp, &q.sig).await? {
        return Err(not_found());
    }
    let attachment = app.store().attachment(&id).await?.ok_or_else(not_found)?;
    if attachment.direction != crate::store::AttachmentDirection::Outbound {
        return Err(not_found());
    }
    serve(&app, &attachment, false).await
}

/// The response carrying a stored file, with its safety headers.
async fn serve(app: &App, attachment: &Attachment, download: bool) -> Result<Response, ApiError> {
    let body = app.files().open(attachment).await.map_err(|e| match e {
        OpenError::Pending => ApiError::new(StatusCode::CONFLICT, "pending", e.to_string()),
        OpenError::Failed(_) => ApiError::new(StatusCode::GONE, "download_failed", e.to_string()),
        OpenError::Expired => ApiError::new(StatusCode::GONE, "expired", e.to_string()),
        OpenError::Missing => ApiError::not_found(e.to_string()),
        OpenError::Unavailable(e) => {
            tracing::error!(error = %e, "media store error while serving a file");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "media_unavailable",
                "the media store is unavailable; retry later",
            )
        }
    })?;
    let mime = attachment
        .mime_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let content_type = HeaderValue::from_str(&mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let inline = !download && inline_safe(&mime);
    let filename = attachment
        .filename
        .clone()
        .unwrap_or_else(|| format!("{}-{}", attachment.kind, attachment.id));
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.size));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(inline, &filename))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FILE_CSP),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(hash) = &attachment.sha256
        && let Ok(v) = HeaderValue::from_str(&format!("\"{hash}\""))
    {
        headers.insert(header::ETAG, v);
    }
    let stream = body
        .stream
        .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
    Ok((StatusCode::OK, headers, Body::from_stream(stream)).into_response())
}

/// `inline` or `attachment`, with the file name as plain ASCII and, when it
/// has other characters, RFC 5987-encoded too.
pub fn content_disposition(inline: bool, filename: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut out = format!("{kind}; filename=\"{ascii}\"");
    if ascii != filename {
        let encoded: String = filename
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        out.push_str(&format!("; filename*=UTF-8''{encoded}"));
    }
    out
}

fn multipart_error(e: MultipartError) -> ApiError {
    ApiError::new(e.status(), "bad_request", e.body_text())
}

fn rejection(r: MultipartRejection) -> ApiError {
    let status = r.status();
    let code = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        "unsupported_media_type"
    } else {
        "bad_request"
    };
    ApiError::new(
        status,
        code,
        format!(
            "{}; send multipart/form-data with a `file` part and an optional `caption`",
            r.body_text()
        ),
    )
}

fn upload_error(e: UploadError<MultipartError>) -> ApiError {
    let message = e.to_string();
    match e {
        UploadError::Rejected(MediaRejection::UnsupportedType { .. })
        | UploadError::Mismatch(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        ),
        UploadError::Rejected(MediaRejection::TooLarge { .. }) | UploadError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
        }
        UploadError::Rejected(MediaRejection::Empty) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "empty_file", message)
        }
        UploadError::NoPublicUrl => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_public_url", message)
        }
        UploadError::Source(e) => multipart_error(e),
        UploadError::Unavailable(e) => {
            tracing::error!(error = %e, "media store error while receiving an upload");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "media_unavailable",
                "the media store is unavailable; retry later",
            )
        }
    }
}

/// Reads a short text field, refusing more than [`CAPTION_FIELD_MAX`] bytes.
async fn small_text(field: &mut Field<'_>) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > CAPTION_FIELD_MAX {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "caption_too_long",
                format!("the caption may have at most {MAX_CAPTION} characters"),
            ));
        }
    }
    String::from_utf8(bytes).map_err(|_| ApiError::bad_request("the caption is not UTF-8 text"))
}

/// `POST /api/v1/conversations/{id}/attachments` (multipart: `file`, optional
/// `caption`): the agent's file, checked, stored and sent through the outbox.
/// 202 with the outbox id and the attachment; 413 too large, 415 a type the
/// channel does not take (or bytes that are not what the type says), 422 an
/// empty file, a closed window or a caption too long.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/attachments", operation_id = "upload_attachment", tag = "media",
    params(("id" = String, Path, description = "Conversation id")),
    request_body(content = super::schema::AttachmentFormDoc, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "`{id, attachment}`: queued for sending", body = Object),
        (status = 400, description = "Bad form", body = crate::http::ErrorBody),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
        (status = 409, description = "Not yours, resolved, or its number is not configured", body = crate::http::ErrorBody),
        (status = 413, description = "Too large for the channel", body = crate::http::ErrorBody),
        (status = 415, description = "A type the channel does not take", body = crate::http::ErrorBody),
        (status = 422, description = "Empty file, closed window or caption too long", body = crate::http::ErrorBody),
    ))]
pub async fn upload(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    caller.require_desk()?;
    let conv = replyable(&app, &caller, &id).await?;
    // The window is checked before any byte is stored.
    let contact = app.store().contact(conv.channel, &conv.contact_id).await?;
    let probe = OutboundContent::Text {
        body: String::new(),
    };
    if let Err(w) = window::check(
        conv.channel,
        &probe,
        true,
        contact.as_ref().and_then(|c| c.last_inbound_ms),
        app.store().now_ms(),
    ) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "window_closed",
            w.to_string(),
        ));
    }
    let mut multipart = multipart.map_err(rejection)?;
    let files = app.files();
    let mut upload = None;
    let mut caption = None;
    let result: Result<(), ApiError> = async {
        while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
            match field.name() {
                Some("file") if upload.is_none() => {
                    let declared = field.content_type().map(str::to_string);
                    let filename = field.file_name().map(str::to_string);
                    let received = files
                        .receive_upload(
                            conv.channel,
                            declared.as_deref(),
                            filename.as_deref(),
                            &mut field,
                        )
                        .await;
                    match received {
                        Ok(u) => upload = Some(u),
                        Err(e) => {
                            // Read a little of what is left, so a client that
                            // sent slightly too much hears the answer instead
                            // of a reset connection; never much more.
                            let mut drained = 0usize;
                            while drained < DRAIN_MAX
                                && let Ok(Some(chunk)) = field.chunk().await
                            {
                                drained += chunk.len();
                            }
                            return Err(upload_error(e));
                        }
                    }
                }
                Some("file") => return Err(ApiError::bad_request("send one `file` per request")),
                Some("caption") => caption = Some(small_text(&mut field).await?),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unexpected form field {:?}; send `file` and optionally `caption`",
                        other.unwrap_or("")
                    )));
                }
            }
        }
        Ok(())
    }
    .await;
    let discard = |u: &Option<crate::attachments::Upload>| {
        let u = u.clone();
        let files = files.clone();
        async move {
            if let Some(u) = u {
                files.discard(&u.object).await;
            }
        }
    };
    if let Err(e) = result {
        discard(&upload).await;
        return Err(e);
    }
    let Some(upload) = upload else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_file",
            "the form has no `file` part",
        ));
    };
    let caption = caption
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if caption
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CAPTION)
    {
        discard(&Some(upload)).await;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "caption_too_long",
            format!("the caption may have at most {MAX_CAPTION} characters"),
        ));
    }
    let attachment = files
        .attach_upload(
            &upload,
            &conv.id,
            conv.channel,
            caption.clone(),
            &caller.0.id,
        )
        .await?;
    let content = OutboundContent::Media(OutboundMedia {
        kind: upload.kind,
        source: OutboundMediaSource::Attachment {
            id: attachment.id.clone(),
        },
        mime_type: upload.mime_type.clone(),
        size: upload.object.size,
        caption,
        filename: upload.filename.clone(),
    });
    let first = send_parts(
        &app,
        &caller,
        &conv,
        &format!("att:{}", attachment.id),
        content,
    )
    .await?;
    let after = ownership::agent_replied(app.engine(), &id).await?;
    ownership::publish(
        app.engine(),
        "agent_message",
        &after,
        json!({ "message_id": first }),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": first, "attachment": attachment_json(&attachment)})),
    )
        .into_response())
}

/// Enqueues an agent's media message (and, where the platform cannot show
/// its caption with the file, the caption as a text after it); returns the
/// first outbox id.
pub(super) async fn send_parts(
    app: &App,
    caller: &Caller,
    conv: &crate::conversation::Conversation,
    id: &str,
    content: OutboundContent,
) -> Result<String, ApiError> {
    for (i, part) in content.split_for(conv.channel).into_iter().enumerate() {
        let part_id = if i == 0 {
            id.to_string()
        } else {
            format!("{id}:{i}")
        };
        let result = app
            .outbox()
            .enqueue(Outgoing {
                id: Some(part_id),
                message: OutboundMessage {
                    channel: conv.channel,
                    from: conv.number.clone(),
                    to: conv.contact_id.clone(),
                    content: part,
                    human_agent_tag: false,
                },
                conversation_id: Some(conv.id.clone()),
                speaker: Some(Speaker::Agent {
                    id: caller.0.id.clone(),
                }),
                origin: Origin::Agent(caller.0.id.clone()),
                by_human: true,
            })
            .await;
        match result {
            Ok(_) => {}
            Err(OutboxError::Window(w)) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "window_closed",
                    w.to_string(),
                ));
            }
            Err(OutboxError::Store(e)) => return Err(e.into()),
        }
    }
    Ok(id.to_string())
}

/// `POST /api/v1/conversations/{id}/typing`: the agent is typing. On WhatsApp
/// the customer's latest message is marked read with the typing indicator
/// (202); at most once per 20 seconds and message, however often the console
/// asks. 204 when there is nothing to show (Instagram, no customer message).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/typing", operation_id = "typing", tag = "media",
    params(("id" = String, Path, description = "Conversation id")),
    responses(
        (status = 202, description = "`{\"typing\": true}`", body = Object),
        (status = 204, description = "Nothing to show (Instagram, no customer message)"),
        (status = 403, description = "Not a desk role", body = crate::http::ErrorBody),
        (status = 404, description = "No such conversation, or not visible", body = crate::http::ErrorBody),
        (status = 409, description = "Not yours", body = crate::http::ErrorBody),
    ))]
pub async fn typing(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_desk()?;
    let conv = load(&app, &caller, &id).await?;
    owns(&caller, &conv)?;
    if conv.channel != Channel::WhatsApp || conv.state != ConvState::Assigned {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let transcript = app.store().transcript(&conv.id).await?;
    let Some(message_id) = transcript
        .iter()
        .rev()
        .find(|e| e.speaker == Speaker::Customer)
        .and_then(|e| e.message_id.clone())
    else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let now = app.store().now_ms();
    receipts::mark_read(
        app.engine(),
        conv.number.as_deref(),
        &conv.contact_id,
        &message_id,
        true,
        Some(&receipts::typing_id(&message_id, now)),
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "could not send a typing indicator");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store is unavailable; retry later",
        )
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({"typing": true}))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions() {
        assert_eq!(
            content_disposition(true, "foto.jpg"),
            "inline; filename=\"foto.jpg\""
        );
        assert_eq!(
            content_disposition(false, "nota servis \"final\".pdf"),
            "attachment; filename=\"nota servis _final_.pdf\"; filename*=UTF-8''nota%20servis%20%22final%22.pdf"
        );
        assert_eq!(
            content_disposition(false, "kwitansi–é.pdf"),
            "attachment; filename=\"kwitansi__.pdf\"; filename*=UTF-8''kwitansi%E2%80%93%C3%A9.pdf"
        );
        // Header injection is impossible: control characters are replaced.
        let d = content_disposition(false, "a\r\nSet-Cookie: x");
        assert!(!d.contains('\r') && !d.contains('\n'), "{d}");
    }
}
