//! Handing our stored files to the platform at send time.
//!
//! The outbox keeps a media message as it was enqueued, naming our
//! attachment; just before sending, [`Files::prepare`] turns that into
//! something the platform can fetch: on WhatsApp a media id from an upload
//! (`POST /{phone-number-id}/media`; the id is kept on the record, so a
//! retried send does not upload again while it is valid), on Instagram a
//! signed public link that expires after `media.link_ttl`. Errors are the
//! outbox's own [`SendError`]s: a failed upload is retried like a failed
//! send, a file that is gone fails the message with the reason.

use std::time::Duration;

use futures_util::StreamExt;

use super::{Files, OpenError};
use crate::channels::media_client::MEDIA_UNUSABLE_CODE;
use crate::channels::{
    Channel, OutboundContent, OutboundMedia, OutboundMediaSource, OutboundMessage, SendError,
};

/// WhatsApp keeps an upload for 30 days; reuse one only well within that.
const UPLOAD_REUSE: Duration = Duration::from_secs(29 * 24 * 3600);

fn unusable(title: impl Into<String>) -> SendError {
    SendError::Permanent {
        code: MEDIA_UNUSABLE_CODE,
        title: title.into(),
    }
}

fn later(title: impl Into<String>) -> SendError {
    SendError::Retryable {
        code: 0,
        title: title.into(),
        scope: None,
        retry_after: None,
    }
}

impl Files {
    /// `msg` as the platform can take it: unchanged unless it sends one of our
    /// attachments, whose source then becomes a WhatsApp media id or an
    /// Instagram link.
    pub async fn prepare(&self, msg: &OutboundMessage) -> Result<OutboundMessage, SendError> {
        let OutboundContent::Media(
            media @ OutboundMedia {
                source: OutboundMediaSource::Attachment { id },
                ..
            },
        ) = &msg.content
        else {
            return Ok(msg.clone());
        };
        let source = match msg.channel {
            Channel::WhatsApp => self.whatsapp_media_id(id, msg.from.as_deref()).await?,
            Channel::Instagram => self.instagram_link(id).await?,
        };
        let mut ready = msg.clone();
        ready.content = OutboundContent::Media(OutboundMedia {
            source,
            ..media.clone()
        });
        Ok(ready)
    }

    async fn stored(&self, id: &str) -> Result<crate::store::Attachment, SendError> {
        let record = self
            .store()
            .attachment(id)
            .await
            .map_err(|e| later(e.to_string()))?
            .ok_or_else(|| unusable(format!("attachment {id} does not exist")))?;
        Ok(record)
    }

    /// A media id of `from` (the default number for `None`) for attachment
    /// `id`: a number's media ids are its own, so an upload for another
    /// number is not reused.
    async fn whatsapp_media_id(
        &self,
        id: &str,
        from: Option<&str>,
    ) -> Result<OutboundMediaSource, SendError> {
        let record = self.stored(id).await?;
        let now = self.store().now_ms();
        let from = from.filter(|f| !f.is_empty());
        if let Some(p) = &record.platform_media
            && now - p.uploaded_ms < UPLOAD_REUSE.as_millis() as i64
            && p.number.as_deref() == from
        {
            return Ok(OutboundMediaSource::PlatformId { id: p.id.clone() });
        }
        let body = self.open(&record).await.map_err(|e| match e {
            OpenError::Unavailable(e) => later(e.to_string()),
            other => unusable(other.to_string()),
        })?;
        let mime = record
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        let filename = record
            .filename
            .clone()
            .unwrap_or_else(|| format!("{}.{}", record.kind, extension(&mime)));
        let stream = body
            .stream
            .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
        let media_id = self
            .0
            .client
            .whatsapp_upload(from, stream, body.size, &mime, &filename)
            .await?;
        if let Err(e) = self
            .store()
            .set_attachment_platform_media(id, &media_id, from)
            .await
        {
            // Only the reuse is lost: a retry uploads again.
            tracing::warn!(attachment = %id, error = %e, "could not keep the WhatsApp media id");
        }
        Ok(OutboundMediaSource::PlatformId { id: media_id })
    }

    async fn instagram_link(&self, id: &str) -> Result<OutboundMediaSource, SendError> {
        let record = self.stored(id).await?;
        if record.status != crate::store::AttachmentStatus::Stored {
            return Err(unusable(format!(
                "attachment {id} is {}, not stored",
                record.status.as_str()
            )));
        }
        match self.public_link(id).await {
            Ok(Some(url)) => Ok(OutboundMediaSource::Link { url }),
            Ok(None) => Err(unusable(
                "server.public_url is not set, so Instagram cannot fetch the file",
            )),
            Err(e) => Err(later(e.to_string())),
        }
    }
}

/// A file extension for a content type (an upload needs a file name).
fn extension(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/3gpp" | "video/3gp" => "3gp",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/mp4" => "m4a",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "bin",
    }
}
