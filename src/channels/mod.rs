//! The two messaging platforms: WhatsApp Business Cloud API and Instagram Messaging.
//!
//! Each channel module owns its platform's formats in both directions: parsing
//! webhook payloads into [`InboundEvent`]s and rendering [`OutboundMessage`]s into
//! Graph API requests, plus the HTTP client that sends them. Nothing outside this
//! module knows a platform's JSON shapes.

pub mod event;
pub mod outbound;

pub use event::{
    Channel, ContactRef, DeliveryState, DeliveryStatus, EventKind, InboundEvent, InboundMessage,
    MessageContent, ReplyKind,
};
pub use outbound::{
    Button, ListRow, ListSection, OutboundContent, OutboundMessage, RateScope, SendError,
    SendReceipt,
};
