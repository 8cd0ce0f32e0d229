//! Instagram Messaging: webhook parsing ([`inbound`]) and Send API request
//! rendering ([`render`](mod@render)). The HTTP client is [`crate::channels::client::InstagramClient`].

pub mod inbound;
pub mod render;

pub use inbound::parse_webhook;
pub use render::render;
