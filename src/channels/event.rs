//! The normalized inbound event: what every webhook payload becomes.
//!
//! WhatsApp and Instagram describe the same things (a customer wrote, tapped a
//! button, reacted; our message was delivered or read) in different shapes. The
//! parsers in [`crate::channels::whatsapp`] and [`crate::channels::instagram`]
//! turn each payload into a list of [`InboundEvent`]s; nothing after the webhook
//! handler looks at platform JSON again.

use serde::{Deserialize, Serialize};

use super::media::MediaKind;

/// A messaging platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// WhatsApp Business Cloud API.
    WhatsApp,
    /// Instagram Messaging API.
    Instagram,
}

impl Channel {
    /// The lowercase name used in config, keys, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::WhatsApp => "whatsapp",
            Channel::Instagram => "instagram",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "whatsapp" => Some(Channel::WhatsApp),
            "instagram" => Some(Channel::Instagram),
            _ => None,
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who the customer is on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRef {
    /// The id we address the customer by: WhatsApp `wa_id` (or the business-scoped
    /// `user_id` when the phone is withheld), Instagram IGSID.
    pub external_id: String,
    /// Display name from the platform profile, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// WhatsApp phone id (`wa_id`), when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// WhatsApp business-scoped user id (`user_id`, 2026+), when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// One thing that happened, as reported by a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    /// Which platform sent it.
    pub channel: Channel,
    /// Our account on that platform: WhatsApp `phone_number_id`, Instagram account id.
    pub business_id: String,
    /// Idempotency key (FACTS.md §8): a redelivered webhook yields the same key.
    pub dedupe_key: String,
    /// Platform timestamp, Unix ms (0 when the payload had none).
    pub timestamp_ms: i64,
    /// What happened.
    pub kind: EventKind,
}

impl InboundEvent {
    /// The customer this event is about, as `<channel>:<id>` (`<channel>:`
    /// for events about no customer): one customer's events run in order,
    /// and their job lives where this key says (`store::queues`).
    pub fn contact_key(&self) -> String {
        let who = match &self.kind {
            EventKind::Message(m) => Some(&m.contact.external_id),
            EventKind::Echo { contact, .. }
            | EventKind::Read { contact, .. }
            | EventKind::Reaction { contact, .. }
            | EventKind::Deleted { contact, .. } => Some(&contact.external_id),
            EventKind::Status(s) => Some(&s.recipient_id),
            _ => None,
        };
        format!("{}:{}", self.channel, who.map_or("", String::as_str))
    }
}

/// The kinds of inbound events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A customer sent something.
    Message(InboundMessage),
    /// A delivery receipt for a message we sent.
    Status(DeliveryStatus),
    /// Instagram echo of a message sent from our account (by us or from the native
    /// inbox). Recorded, never answered.
    Echo {
        /// The customer the message went to.
        contact: ContactRef,
        /// Platform message id.
        message_id: String,
        /// Text, when any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// The customer read our messages up to `message_id`.
    Read {
        /// The reader.
        contact: ContactRef,
        /// Our message id (Instagram sends it; may be empty).
        message_id: String,
    },
    /// The customer reacted to (or un-reacted from) a message.
    Reaction {
        /// Who reacted.
        contact: ContactRef,
        /// The message reacted to.
        message_id: String,
        /// The emoji; `None` when the reaction was removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emoji: Option<String>,
    },
    /// The customer unsent a message.
    Deleted {
        /// Who deleted it.
        contact: ContactRef,
        /// The deleted message id.
        message_id: String,
    },
    /// A platform-level error report (WhatsApp `value.errors`).
    PlatformError {
        /// Graph error code.
        code: i64,
        /// Error title.
        title: String,
    },
    /// A shape we do not handle (unknown field, object or message type). Acknowledged
    /// so Meta stops retrying, and counted in metrics.
    Unsupported {
        /// Which customer, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact: Option<ContactRef>,
        /// What it was, e.g. `field:account_update` or `message:poll_creation`.
        what: String,
    },
}

/// A customer's message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The sender.
    pub contact: ContactRef,
    /// Platform message id (wamid / mid).
    pub message_id: String,
    /// The content.
    pub content: MessageContent,
    /// Id of our message this one replies to or was tapped on, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Where a tapped reply came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// WhatsApp interactive reply button.
    Button,
    /// WhatsApp interactive list row.
    ListRow,
    /// WhatsApp template quick-reply button.
    TemplateButton,
    /// Instagram quick reply.
    QuickReply,
    /// Instagram postback (icebreaker / template button).
    Postback,
}

/// What a customer's message contains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageContent {
    /// Plain text.
    Text {
        /// The text.
        body: String,
    },
    /// A tap on a button, list row, quick reply or postback we offered.
    Reply {
        /// Where it came from.
        source: ReplyKind,
        /// Our payload / id.
        payload: String,
        /// The label the customer saw and tapped.
        title: String,
    },
    /// A file: image, video, audio (voice notes too), document or sticker.
    Media(InboundMedia),
    /// A shared location.
    Location {
        /// Latitude.
        latitude: f64,
        /// Longitude.
        longitude: f64,
        /// Place name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// Shared contact cards (names only).
    Contacts {
        /// Formatted names of the shared contacts.
        names: Vec<String>,
    },
    /// An Instagram story mention or a reply to our story.
    Story {
        /// `mention` or `reply`.
        story_kind: String,
        /// Story URL, when sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// Text of a story reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// An Instagram share of a post or reel (`share`, `ig_post`, `ig_reel` …): a
    /// link to content on Instagram, not a file we keep.
    Shared {
        /// The attachment type as sent.
        what: String,
        /// The link, when sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    /// A message type we cannot read (polls, unknown future types).
    Unsupported {
        /// The platform's type name.
        what: String,
    },
}

impl MessageContent {
    /// The words the customer wrote or tapped, for intent matching and transcripts.
    pub fn text(&self) -> Option<&str> {
        match self {
            MessageContent::Text { body } => Some(body),
            MessageContent::Reply { title, .. } => Some(title),
            MessageContent::Media(media) => media.caption.as_deref(),
            MessageContent::Story { text, .. } => text.as_deref(),
            _ => None,
        }
    }

    /// A one-line summary for transcripts and previews (never the raw payload).
    pub fn summary(&self) -> String {
        match self {
            MessageContent::Text { body } => body.clone(),
            MessageContent::Reply { title, .. } => title.clone(),
            MessageContent::Media(media) => {
                let label = media.label();
                match &media.caption {
                    Some(c) => format!("[{label}] {c}"),
                    None => format!("[{label}]"),
                }
            }
            MessageContent::Location { name, .. } => {
                format!("[location] {}", name.as_deref().unwrap_or(""))
                    .trim_end()
                    .to_string()
            }
            MessageContent::Contacts { names } => format!("[contacts] {}", names.join(", ")),
            MessageContent::Story {
                story_kind, text, ..
            } => match text {
                Some(t) => format!("[story {story_kind}] {t}"),
                None => format!("[story {story_kind}]"),
            },
            MessageContent::Shared { what, .. } => format!("[{what}]"),
            MessageContent::Unsupported { what } => format!("[unsupported: {what}]"),
        }
    }

    /// The file this message carries, for download: the media of a media message,
    /// or the picture/video of an Instagram story (kind [`MediaKind::Story`]).
    pub fn media(&self) -> Option<InboundMedia> {
        match self {
            MessageContent::Media(media) => Some(media.clone()),
            MessageContent::Story { url: Some(url), .. } => Some(InboundMedia {
                kind: MediaKind::Story,
                media_id: None,
                url: Some(url.clone()),
                mime_type: None,
                sha256: None,
                caption: None,
                filename: None,
                voice: false,
                animated: false,
            }),
            _ => None,
        }
    }
}

/// A file a customer sent, as the webhook describes it. The bytes are not in the
/// webhook: WhatsApp gives a media id to resolve with the Graph API, Instagram an
/// expiring CDN URL (see [`crate::channels::media_client`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMedia {
    /// What kind of file (serialized as `media_type`, the name earlier versions
    /// wrote, so queued events stay readable).
    #[serde(rename = "media_type")]
    pub kind: MediaKind,
    /// WhatsApp media id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// Instagram CDN URL (expires within days; download promptly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// MIME type, when sent (WhatsApp always, Instagram never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// SHA-256 of the file as WhatsApp sent it: base64 in current payloads, hex in
    /// older ones (see [`crate::channels::media_client::parse_digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Caption (WhatsApp image/video/document; the text of an Instagram message
    /// with attachments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name of a WhatsApp document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// WhatsApp audio recorded as a voice note (`audio.voice`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub voice: bool,
    /// WhatsApp animated sticker (`sticker.animated`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub animated: bool,
}

/// Where the bytes of an [`InboundMedia`] are fetched from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaSource<'a> {
    /// A WhatsApp media id: `GET {api_base}/{id}` gives a short-lived URL.
    WhatsAppId(&'a str),
    /// A URL to download directly (Instagram CDN).
    Url(&'a str),
}

impl InboundMedia {
    /// Where to download it from; `None` when the webhook carried neither an id nor
    /// a URL (the attachment is then recorded as failed, never dropped).
    pub fn source(&self) -> Option<MediaSource<'_>> {
        match (&self.media_id, &self.url) {
            (Some(id), _) => Some(MediaSource::WhatsAppId(id)),
            (None, Some(url)) => Some(MediaSource::Url(url)),
            (None, None) => None,
        }
    }

    /// A short label for transcripts: the kind, `voice` for voice notes, and the
    /// file name of a document.
    pub fn label(&self) -> String {
        match (&self.kind, &self.filename) {
            (MediaKind::Audio, _) if self.voice => "voice".to_string(),
            (MediaKind::Document, Some(name)) => format!("document: {name}"),
            (kind, _) => kind.as_str().to_string(),
        }
    }
}

/// Delivery state of a message we sent; ordered so a status can only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Accepted by the platform.
    Sent,
    /// Reached the customer's device.
    Delivered,
    /// Read by the customer.
    Read,
    /// Could not be delivered (terminal).
    Failed,
}

impl DeliveryState {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
            DeliveryState::Failed => "failed",
        }
    }
}

/// A delivery receipt (WhatsApp `statuses[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    /// The platform id of our message.
    pub message_id: String,
    /// The new state.
    pub state: DeliveryState,
    /// The recipient's id.
    pub recipient_id: String,
    /// For `failed`: the error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// For `failed`: the error title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_title: Option<String>,
}
