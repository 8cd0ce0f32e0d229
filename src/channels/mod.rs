//! The two messaging platforms: WhatsApp Business Cloud API and Instagram Messaging.
//!
//! Each channel module owns its platform's formats in both directions: parsing
//! webhook payloads into [`InboundEvent`]s and rendering [`OutboundMessage`]s into
//! Graph API requests, plus the HTTP client that sends them. Nothing outside this
//! module knows a platform's JSON shapes.
//!
//! - [`signature`]: `X-Hub-Signature-256` verification and signing.
//! - [`whatsapp`], [`instagram`]: `parse_webhook` and `render` per platform.
//! - [`graph_error`]: Graph error bodies → retryable/permanent [`SendError`].
//! - [`client`]: [`ChannelClient`] and the two HTTP clients.
//! - [`media`]: kinds of files, the MIME types and sizes each platform takes;
//!   [`media_client`]: downloading customers' files, uploading ours.
//! - [`templates`]: WhatsApp message templates as Meta lists them.
//! - [`parse`], [`render`](mod@render): helpers shared by the parsers and renderers.

pub mod client;
pub mod event;
pub mod graph_error;
pub mod instagram;
pub mod media;
pub mod media_client;
pub mod outbound;
pub mod parse;
pub mod render;
pub mod signature;
pub mod templates;
pub mod whatsapp;

pub use client::{ChannelClient, InstagramClient, WhatsAppClient};
pub use event::{
    Channel, ContactRef, DeliveryState, DeliveryStatus, EventKind, InboundEvent, InboundMedia,
    InboundMessage, MediaSource, MessageContent, ReplyKind,
};
pub use graph_error::{GraphError, classify_response};
pub use media::{MediaKind, MediaRejection};
pub use media_client::{MediaClient, MediaDownload};
pub use outbound::{
    Button, ListRow, ListSection, OutboundContent, OutboundMedia, OutboundMediaSource,
    OutboundMessage, RateScope, SendError, SendReceipt,
};
pub use parse::ParseError;
pub use render::RenderError;
pub use signature::{SignatureError, sign, verify_signature};
