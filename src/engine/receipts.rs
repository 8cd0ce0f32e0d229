//! Read receipts and the typing indicator on WhatsApp.
//!
//! When the bot answers a customer's message, or an agent types in the
//! console, the customer sees the blue ticks and "typing…": a mark-as-read
//! request with `typing_indicator`, sent through the outbox like everything
//! else. Each has a deterministic id (one per inbound message for the bot, one
//! per message and 20 seconds for an agent typing), so a reprocessed event or
//! a chatty console never sends it twice; the outbox sends it at most once,
//! never paced behind replies, and drops it when it went stale.

use super::{Engine, EngineError};
use crate::channels::{Channel, OutboundContent, OutboundMessage};
use crate::outbox::{OutboxError, Outgoing};
use crate::store::Origin;

/// Agents' typing indicators are sent at most once per this many ms per
/// message (WhatsApp shows one for up to 25 s).
pub const TYPING_EVERY_MS: i64 = 20_000;

/// Enqueues a mark-as-read of the customer's WhatsApp message `message_id`
/// (with the typing indicator when `typing`), as outbox record `id`, from the
/// number it was written to (`from`; `None`: the default one).
pub async fn mark_read(
    engine: &Engine,
    from: Option<&str>,
    to: &str,
    message_id: &str,
    typing: bool,
    id: &str,
) -> Result<(), EngineError> {
    let result = engine
        .outbox()
        .enqueue(Outgoing {
            id: Some(id.to_string()),
            message: OutboundMessage {
                channel: Channel::WhatsApp,
                from: from.map(str::to_string),
                to: to.to_string(),
                content: OutboundContent::MarkRead {
                    message_id: message_id.to_string(),
                    typing,
                },
                human_agent_tag: false,
            },
            conversation_id: None,
            speaker: None,
            origin: Origin::System,
            by_human: false,
        })
        .await;
    match result {
        Ok(_) | Err(OutboxError::Window(_)) => Ok(()),
        Err(OutboxError::Store(e)) => Err(e.into()),
    }
}

/// The record id of an agent's typing indicator for `message_id` at `now_ms`.
pub fn typing_id(message_id: &str, now_ms: i64) -> String {
    format!("typing:{message_id}:{}", now_ms / TYPING_EVERY_MS)
}
