//! What Balas sends, before it is rendered for a platform.
//!
//! The conversation engine, surveys, broadcasts and agents describe messages with
//! [`OutboundContent`]; the renderers in each channel module turn it into the
//! Graph API request body, enforcing that platform's limits (button counts, title
//! lengths, body sizes) so a request is never rejected for shape.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::event::Channel;
use super::media::{MediaKind, caption_supported};

/// A reply button (WhatsApp reply button, Instagram quick reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// Payload returned when tapped.
    pub id: String,
    /// Label shown to the customer.
    pub title: String,
}

/// A row in a WhatsApp list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    /// Payload returned when picked.
    pub id: String,
    /// Row title.
    pub title: String,
    /// Optional description under the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A section of a WhatsApp list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    /// Section title (required by WhatsApp when there is more than one section).
    pub title: String,
    /// The rows.
    pub rows: Vec<ListRow>,
}

/// The body of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboundContent {
    /// Plain text.
    Text {
        /// The text.
        body: String,
    },
    /// Text with reply buttons. WhatsApp shows up to 3 as buttons and falls back to a
    /// list for 4–10; Instagram shows up to 13 quick replies.
    Buttons {
        /// The text above the buttons.
        body: String,
        /// The buttons.
        buttons: Vec<Button>,
        /// Optional header (WhatsApp only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        /// Optional footer (WhatsApp only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
    },
    /// A WhatsApp list (Instagram gets quick replies of the rows).
    List {
        /// The text above the list button.
        body: String,
        /// The label of the button that opens the list.
        button_label: String,
        /// The sections.
        sections: Vec<ListSection>,
        /// Optional header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        /// Optional footer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
    },
    /// An approved WhatsApp template.
    Template {
        /// Template name.
        name: String,
        /// Language code of the approved translation (`id`, `en`, `en_US` …).
        language: String,
        /// Positional body parameters `{{1}}`, `{{2}}` …
        #[serde(default)]
        body_parameters: Vec<String>,
        /// Payloads of the template's quick-reply buttons, by index.
        #[serde(default)]
        quick_reply_payloads: Vec<String>,
    },
    /// A file: picture, video, audio, document or sticker.
    Media(OutboundMedia),
    /// Mark an inbound WhatsApp message as read, optionally showing "typing…".
    MarkRead {
        /// The inbound message id.
        message_id: String,
        /// Show the typing indicator.
        typing: bool,
    },
}

impl OutboundContent {
    /// Whether this is free-form content that needs an open customer-service window.
    pub fn needs_window(&self) -> bool {
        !matches!(
            self,
            OutboundContent::Template { .. } | OutboundContent::MarkRead { .. }
        )
    }

    /// The text a transcript shows for it.
    pub fn summary(&self) -> String {
        match self {
            OutboundContent::Text { body }
            | OutboundContent::Buttons { body, .. }
            | OutboundContent::List { body, .. } => body.clone(),
            OutboundContent::Template {
                name,
                body_parameters,
                ..
            } => format!("[template {name}] {}", body_parameters.join(" | ")),
            OutboundContent::Media(media) => {
                let label = match (&media.kind, &media.filename) {
                    (MediaKind::Document, Some(name)) => format!("document: {name}"),
                    (kind, _) => kind.as_str().to_string(),
                };
                match &media.caption {
                    Some(c) => format!("[{label}] {c}"),
                    None => format!("[{label}]"),
                }
            }
            OutboundContent::MarkRead { .. } => "[read]".to_string(),
        }
    }

    /// The stored attachments this content sends (a media message whose file
    /// is one of ours), for the transcript.
    pub fn attachment_ids(&self) -> Vec<String> {
        match self {
            OutboundContent::Media(OutboundMedia {
                source: OutboundMediaSource::Attachment { id },
                ..
            }) => vec![id.clone()],
            _ => Vec::new(),
        }
    }

    /// The messages to send for this content on `channel`: itself, except that a
    /// media caption the platform cannot show with that file (Instagram never
    /// shows captions, WhatsApp not on audio and stickers) becomes a separate text
    /// message after the file, so no words are lost. The renderers refuse such a
    /// caption, so callers enqueue what this returns.
    pub fn split_for(self, channel: Channel) -> Vec<OutboundContent> {
        match self {
            OutboundContent::Media(mut media)
                if media.caption.is_some() && !caption_supported(channel, media.kind) =>
            {
                let caption = media.caption.take().unwrap_or_default();
                let mut out = vec![OutboundContent::Media(media)];
                if !caption.trim().is_empty() {
                    out.push(OutboundContent::Text { body: caption });
                }
                out
            }
            other => vec![other],
        }
    }
}

/// A file we send. The renderers check its type and size against the platform's
/// limits ([`crate::channels::media::check_outbound`]) before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMedia {
    /// What kind of file it is sent as (serialized as `media_type`:
    /// [`OutboundContent`] is tagged by `kind` already, and a record in the
    /// outbox must read back).
    #[serde(rename = "media_type")]
    pub kind: MediaKind,
    /// Where the platform gets the bytes.
    pub source: OutboundMediaSource,
    /// MIME type of the file.
    pub mime_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Caption shown with the file (WhatsApp image, video and document only; see
    /// [`OutboundContent::split_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name shown for a document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// Where the platform gets an outbound file from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum OutboundMediaSource {
    /// Our stored attachment, not yet handed to the platform. It cannot be
    /// rendered: before sending, WhatsApp files are uploaded
    /// ([`crate::channels::media_client::MediaClient::whatsapp_upload`]) and
    /// Instagram ones given a URL Meta can fetch, and the source replaced.
    Attachment {
        /// Attachment id in the store.
        id: String,
    },
    /// A platform media id: WhatsApp uploaded media id, Instagram `attachment_id`.
    PlatformId {
        /// The id.
        id: String,
    },
    /// A public URL the platform downloads the file from.
    Link {
        /// The URL (HTTPS in production).
        url: String,
    },
}

/// A message ready to be rendered and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// The platform.
    pub channel: Channel,
    /// Recipient: WhatsApp `wa_id`/phone digits, Instagram IGSID.
    pub to: String,
    /// What to send.
    pub content: OutboundContent,
    /// Instagram only: send with `MESSAGE_TAG` + `HUMAN_AGENT` (a human's reply
    /// between 24 h and 7 days after the customer's last message).
    #[serde(default)]
    pub human_agent_tag: bool,
    /// The business number (WhatsApp `phone_number_id`) or account (Instagram
    /// id) it goes out from: the one the customer wrote to. `None` = the
    /// channel's default sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The platform's answer to a successful send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// The platform's message id (`wamid…` / `mid…`); `None` for mark-as-read.
    pub platform_message_id: Option<String>,
}

/// Which sending budget a rate-limit error applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateScope {
    /// The whole business number / account (130429, 4, 80007, HTTP 429).
    Sender,
    /// Only this recipient (131056 pair rate limit).
    Recipient,
}

/// Why a send did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SendError {
    /// Try again later: rate limits, 5xx, timeouts, temporary platform errors.
    #[error("retryable error {code}: {title}")]
    Retryable {
        /// Graph error code, or the HTTP status when there was no Graph error, or 0
        /// for a network error or timeout.
        code: i64,
        /// Human-readable reason.
        title: String,
        /// Which budget is exhausted, for rate limits.
        scope: Option<RateScope>,
        /// How long the platform asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// Do not retry: window closed (131047), invalid recipient, bad parameter,
    /// expired token (190), opted out of marketing (131050) …
    #[error("permanent error {code}: {title}")]
    Permanent {
        /// Graph error code (or HTTP status).
        code: i64,
        /// Human-readable reason.
        title: String,
    },
    /// The request may have reached the platform (a timeout or a broken
    /// connection after it was written): the message may or may not have been
    /// accepted, and the platform offers no idempotency key to find out.
    #[error("outcome unknown: {title}")]
    Unknown {
        /// What happened.
        title: String,
    },
}

impl SendError {
    /// The error code.
    pub fn code(&self) -> i64 {
        match self {
            SendError::Retryable { code, .. } | SendError::Permanent { code, .. } => *code,
            SendError::Unknown { .. } => 0,
        }
    }

    /// The title.
    pub fn title(&self) -> &str {
        match self {
            SendError::Retryable { title, .. }
            | SendError::Permanent { title, .. }
            | SendError::Unknown { title } => title,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the outbox stores must read back as it was written.
    #[test]
    fn media_content_round_trips_through_json() {
        let content = OutboundContent::Media(OutboundMedia {
            kind: MediaKind::Document,
            source: OutboundMediaSource::Attachment { id: "ab12".into() },
            mime_type: "application/pdf".into(),
            size: 10,
            caption: Some("nota".into()),
            filename: Some("nota.pdf".into()),
        });
        let json = serde_json::to_string(&content).unwrap();
        assert_eq!(
            serde_json::from_str::<OutboundContent>(&json).unwrap(),
            content,
            "{json}"
        );
        assert_eq!(content.attachment_ids(), ["ab12"]);
    }
}
