//! WhatsApp Business Cloud API: webhook parsing ([`inbound`]) and `/messages`
//! request rendering ([`render`](mod@render)). The HTTP client is
//! [`crate::channels::client::WhatsAppClient`].

pub mod inbound;
pub mod render;

pub use inbound::parse_webhook;
pub use render::render;
