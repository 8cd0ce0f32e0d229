//! The engine's job handlers: inbound events and timers.
//!
//! The [`crate::jobs`] runner claims, renews, retries and dead-letters; these
//! handlers only say what an inbound event or a timer means and whether it is
//! done, deferred (a contact busy in another worker) or failed.

use std::time::Duration;

use async_trait::async_trait;

use super::Engine;
use super::timers::Timer;
use super::{Outcome, handle_event};
use crate::channels::{EventKind, InboundEvent};
use crate::jobs::{Handler, Run, Verdict};
use crate::store::queues;

/// Retries of a status whose message is not known yet (the send's response
/// may be stored a moment after Meta reports its status).
const MAX_UNKNOWN_STATUS_RETRIES: u32 = 15;
/// How soon a contact busy in another worker is tried again.
const BUSY_RETRY: Duration = Duration::from_millis(100);

/// Handles the `inbound` queue: one customer's events in order.
pub struct InboundHandler {
    engine: Engine,
}

impl InboundHandler {
    /// The handler over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl Handler for InboundHandler {
    type Payload = InboundEvent;

    fn queue(&self) -> &'static str {
        queues::INBOUND
    }

    fn group(&self, event: &InboundEvent) -> Option<String> {
        Some(contact_of(event))
    }

    /// An engine turn's effects leave the process only through the outbox,
    /// which syncs the store before it sends.
    fn deferred_durability(&self) -> bool {
        true
    }

    async fn run(&self, job: &Run<InboundEvent>) -> Verdict {
        match handle_event(&self.engine, &job.payload).await {
            Ok(Outcome::Done) => Verdict::Done,
            Ok(Outcome::Busy) => {
                Verdict::Later(self.engine.store().now_ms() + BUSY_RETRY.as_millis() as i64)
            }
            Ok(Outcome::RetryLater(_)) if job.attempts >= MAX_UNKNOWN_STATUS_RETRIES => {
                tracing::warn!(job = %job.id, key = %job.payload.dedupe_key, "status for a message we never recorded; dropping it");
                Verdict::Done
            }
            Ok(Outcome::RetryLater(delay)) => Verdict::Failed {
                error: "status for a message not recorded yet".into(),
                retry_in: Some(delay),
            },
            Err(e) => Verdict::failed(e),
        }
    }
}

/// The contact an event is about, so one contact's events run in order.
fn contact_of(event: &InboundEvent) -> String {
    let who = match &event.kind {
        EventKind::Message(m) => Some(&m.contact.external_id),
        EventKind::Echo { contact, .. }
        | EventKind::Read { contact, .. }
        | EventKind::Reaction { contact, .. }
        | EventKind::Deleted { contact, .. } => Some(&contact.external_id),
        EventKind::Status(s) => Some(&s.recipient_id),
        _ => None,
    };
    format!("{}:{}", event.channel, who.map_or("", String::as_str))
}

/// Handles the `timers` queue: promises kept while nobody writes.
pub struct TimerHandler {
    engine: Engine,
}

impl TimerHandler {
    /// The handler over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl Handler for TimerHandler {
    type Payload = Timer;

    fn queue(&self) -> &'static str {
        queues::TIMERS
    }

    /// Like inbound turns: effects leave only through the outbox.
    fn deferred_durability(&self) -> bool {
        true
    }

    async fn run(&self, job: &Run<Timer>) -> Verdict {
        match job.payload.fire(&self.engine).await {
            Ok(None) => Verdict::Done,
            Ok(Some(due)) => Verdict::Later(due),
            Err(e) => Verdict::failed(e),
        }
    }
}
