//! Typed domain events: how lower layers tell upper ones what happened
//! without calling them.
//!
//! The engine and the outbox publish an [`Event`] on the [`Bus`]; surveys,
//! broadcasts and the live console feed subscribe (the application wires them
//! in at start). So the engine knows nothing of surveys, the outbox nothing of
//! broadcasts, and the import graph of the top-level modules stays a DAG.
//!
//! Delivery is synchronous and in order: [`Bus::publish`] awaits every
//! subscriber inside the job that published, so a subscriber's failure fails
//! that job, which the job runner retries. Subscribers are therefore
//! idempotent, like every job handler.

use std::sync::{Arc, RwLock, Weak};

use async_trait::async_trait;

use crate::channels::InboundMessage;
use crate::conversation::Conversation;
use crate::store::{Contact, ConversationError, OutboundRecord};

/// Something that happened, as subscribers see it.
#[derive(Debug, Clone)]
pub enum Event {
    /// A customer message, before the bot looks at it. A subscriber that
    /// answers it (a survey waiting for a score) returns
    /// [`Reaction::Consumed`] and the bot stays silent.
    CustomerMessage {
        /// The contact, as stored after this message.
        contact: Box<Contact>,
        /// The message.
        message: Box<InboundMessage>,
    },
    /// A case was resolved (by an agent, the bot or the customer's thanks).
    CaseResolved(Box<Conversation>),
    /// A contact opted out of (or back into) automated messages.
    OptOutChanged {
        /// The contact.
        contact: Box<Contact>,
        /// True for an opt-out, false for an opt-in.
        opted_out: bool,
    },
    /// An outbound message's delivery state moved forward (sent, delivered,
    /// read, failed, skipped), from a send result or a status webhook.
    Delivery(Box<OutboundRecord>),
}

/// What a subscriber did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// Nothing that concerns the publisher.
    Noted,
    /// The subscriber answered a [`Event::CustomerMessage`]; nobody else should.
    Consumed,
}

/// Someone who reacts to events.
#[async_trait]
pub trait Subscriber: Send + Sync + 'static {
    /// Handles one event; an error fails (and retries) the publishing job.
    async fn on_event(&self, event: &Event) -> Result<Reaction, ConversationError>;
}

/// The subscribers of one process; cheap to clone.
///
/// The bus holds its subscribers weakly: they hold the engine (which holds
/// the bus), so strong references would form a cycle that keeps the store
/// open forever. Whoever wires the application keeps them alive.
#[derive(Clone, Default)]
pub struct Bus {
    subscribers: Arc<RwLock<Vec<Weak<dyn Subscriber>>>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("subscribers", &self.snapshot().len())
            .finish()
    }
}

impl Bus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subscriber (done once, when the application is wired); the
    /// caller keeps it alive for as long as events are published.
    pub fn subscribe(&self, subscriber: &Arc<dyn Subscriber>) {
        self.subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(subscriber));
    }

    fn snapshot(&self) -> Vec<Weak<dyn Subscriber>> {
        self.subscribers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Hands `event` to every subscriber in the order they subscribed. For a
    /// [`Event::CustomerMessage`], stops at the first that consumes it. A
    /// subscriber that is gone (the application is shutting down) fails the
    /// publication, so the job that published runs again rather than skip it.
    pub async fn publish(&self, event: &Event) -> Result<Reaction, ConversationError> {
        for subscriber in self.snapshot() {
            let Some(subscriber) = subscriber.upgrade() else {
                return Err(ConversationError::Store(
                    crate::store::StoreError::Unavailable(
                        "an event subscriber is gone: the application is shutting down".into(),
                    ),
                ));
            };
            if subscriber.on_event(event).await? == Reaction::Consumed
                && matches!(event, Event::CustomerMessage { .. })
            {
                return Ok(Reaction::Consumed);
            }
        }
        Ok(Reaction::Noted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::channels::{Channel, ContactRef, MessageContent};

    struct Recorder {
        name: &'static str,
        consume: bool,
        seen: Arc<Mutex<Vec<&'static str>>>,
    }

    #[async_trait]
    impl Subscriber for Recorder {
        async fn on_event(&self, _event: &Event) -> Result<Reaction, ConversationError> {
            self.seen.lock().unwrap().push(self.name);
            Ok(if self.consume {
                Reaction::Consumed
            } else {
                Reaction::Noted
            })
        }
    }

    fn contact() -> Contact {
        Contact::new(Channel::WhatsApp, "62811", 0)
    }

    #[tokio::test]
    async fn a_consumed_message_stops_at_its_consumer_other_events_reach_everyone() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let bus = Bus::new();
        let subscribers: Vec<Arc<dyn Subscriber>> = [("survey", true), ("other", false)]
            .into_iter()
            .map(|(name, consume)| {
                Arc::new(Recorder {
                    name,
                    consume,
                    seen: Arc::clone(&seen),
                }) as Arc<dyn Subscriber>
            })
            .collect();
        for s in &subscribers {
            bus.subscribe(s);
        }
        let message = InboundMessage {
            contact: ContactRef {
                external_id: "62811".into(),
                name: None,
                wa_id: None,
                user_id: None,
            },
            message_id: "m1".into(),
            content: MessageContent::Text { body: "5".into() },
            reply_to: None,
        };
        let reaction = bus
            .publish(&Event::CustomerMessage {
                contact: Box::new(contact()),
                message: Box::new(message),
            })
            .await
            .unwrap();
        assert_eq!(reaction, Reaction::Consumed);
        assert_eq!(*seen.lock().unwrap(), ["survey"]);
        seen.lock().unwrap().clear();
        let reaction = bus
            .publish(&Event::OptOutChanged {
                contact: Box::new(contact()),
                opted_out: true,
            })
            .await
            .unwrap();
        assert_eq!(reaction, Reaction::Noted);
        assert_eq!(*seen.lock().unwrap(), ["survey", "other"]);
    }
}
