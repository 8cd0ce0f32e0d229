//! The normalized inbound event: what every webhook payload becomes.
//!
//! WhatsApp and Instagram describe the same things (a customer wrote, tapped a
//! button, reacted; our message was delivered or read) in different shapes. The
//! parsers in [`crate::channels::whatsapp`] and [`crate::channels::instagram`]
//! turn each payload into a list of [`InboundEvent`]s; nothing after the webhook
//! handler looks at platform JSON again.

use serde::{Deserialize, Serialize};

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
    /// An image, video, audio, document, sticker or file.
    Media {
        /// `image`, `video`, `audio`, `document`, `sticker`, `file`, `share` …
        media_type: String,
        /// WhatsApp media id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_id: Option<String>,
        /// Instagram CDN URL (expires).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// MIME type, when sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        /// Caption, when sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        /// Document file name, when sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
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
            MessageContent::Media { caption, .. } => caption.as_deref(),
            MessageContent::Story { text, .. } => text.as_deref(),
            _ => None,
        }
    }

    /// A one-line summary for transcripts and previews (never the raw payload).
    pub fn summary(&self) -> String {
        match self {
            MessageContent::Text { body } => body.clone(),
            MessageContent::Reply { title, .. } => title.clone(),
            MessageContent::Media {
                media_type,
                caption,
                ..
            } => match caption {
                Some(c) => format!("[{media_type}] {c}"),
                None => format!("[{media_type}]"),
            },
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
            MessageContent::Unsupported { what } => format!("[unsupported: {what}]"),
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
