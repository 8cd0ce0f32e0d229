//! The live console feed for delivery changes: a [`Subscriber`] that tells
//! consoles showing a conversation that one of its messages was sent,
//! delivered, read or failed.

use async_trait::async_trait;
use serde_json::json;

use super::{Engine, ownership};
use crate::events::{Event, Reaction, Subscriber};
use crate::store::ConversationError;

/// Publishes `delivery` live events for conversation messages.
pub struct LiveDelivery {
    engine: Engine,
}

impl LiveDelivery {
    /// The subscriber over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl Subscriber for LiveDelivery {
    async fn on_event(&self, event: &Event) -> Result<Reaction, ConversationError> {
        if let Event::Delivery(record) = event
            && let Some(conv_id) = &record.conversation_id
            && let Some(conv) = self.engine.store().conversation(conv_id).await?
        {
            ownership::publish(
                &self.engine,
                "delivery",
                &conv,
                json!({
                    "message_id": record.id, "delivery": record.state,
                    "error_code": record.error_code, "error_title": record.error_title,
                }),
            )
            .await;
        }
        Ok(Reaction::Noted)
    }
}
