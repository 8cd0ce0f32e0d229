//! Read receipts and the typing indicator on WhatsApp.
//!
//! When the bot answers a customer's message, or an agent types in the
//! console, the customer sees the blue ticks and "typing…": a mark-as-read
//! request with `typing_indicator`, sent by [`Outbox::mark_read`] from memory.
//! An agent's has a deterministic id (one per message and 20 seconds), so a
//! chatty console never sends it twice; the bot's goes out once per answered
//! message.
//!
//! [`Outbox::mark_read`]: crate::outbox::Outbox::mark_read

use super::{Engine, EngineError};

/// Agents' typing indicators are sent at most once per this many ms per
/// message (WhatsApp shows one for up to 25 s).
pub const TYPING_EVERY_MS: i64 = 20_000;

/// Marks the customer's WhatsApp message `message_id` read (with the typing
/// indicator when `typing`) from the number it was written to (`from`; `None`:
/// the default one); at most once for `once` when given. Does not wait for
/// the platform.
pub async fn mark_read(
    engine: &Engine,
    from: Option<&str>,
    to: &str,
    message_id: &str,
    typing: bool,
    once: Option<&str>,
) -> Result<(), EngineError> {
    engine
        .outbox()
        .mark_read(from, to, message_id, typing, once)
        .await?;
    Ok(())
}

/// The record id of an agent's typing indicator for `message_id` at `now_ms`.
pub fn typing_id(message_id: &str, now_ms: i64) -> String {
    format!("typing:{message_id}:{}", now_ms / TYPING_EVERY_MS)
}
