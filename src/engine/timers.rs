//! Durable engine timers: the promises Balas keeps while nobody is writing.
//!
//! A timer is a job in the `timers` queue with a deterministic id, so it is
//! scheduled once however often the code that schedules it runs, and it fires
//! after restarts and exactly once across processes. When it fires it checks
//! that the situation it was set for still holds (same queue entry, same
//! assignment) and otherwise does nothing.

use super::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::messages::Texts;
use super::ownership;
use crate::channels::{OutboundContent, OutboundMessage};
use crate::conversation::{State, Transition};
use crate::outbox::Outgoing;
use crate::store::{ConversationError, Speaker, StoreResult, queues};

/// Something to do later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
pub enum Timer {
    /// Tell a waiting customer we have not forgotten them.
    Reassure {
        /// The conversation.
        conversation_id: String,
        /// The queue entry this was set for.
        queued_ms: i64,
        /// The last assignment before this queue entry, if any. A case that an
        /// agent let time out re-enters the queue with its original
        /// `queued_ms`; this tells the two queue entries (and their messages)
        /// apart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assigned_ms: Option<i64>,
        /// How many reassurances so far.
        round: u32,
    },
    /// Requeue an assigned conversation whose agent did not reply in time.
    ReplyTimeout {
        /// The conversation.
        conversation_id: String,
        /// The assignment this was set for.
        assigned_ms: i64,
    },
    /// Push assignment: give waiting conversations of these queues to online
    /// agents with room (see [`super::assignment`]).
    Assign {
        /// The queues to look at.
        queues: Vec<String>,
        /// The change that made it worth looking (its id).
        key: String,
    },
    /// An agent's console may have gone silent: offline when it has.
    PresenceExpiry {
        /// The agent.
        agent: String,
        /// The presence epoch this was set for.
        epoch: u64,
    },
    /// A snooze runs out.
    Wake {
        /// The conversation.
        conversation_id: String,
        /// The snooze it was set for (its start).
        at_ms: i64,
    },
    /// Resolve a bot-owned case nobody closed (`[cases] auto_resolve_after`).
    AutoResolve {
        /// The case.
        conversation_id: String,
    },
}

impl Timer {
    fn id(&self) -> String {
        match self {
            Timer::Reassure {
                conversation_id,
                queued_ms,
                assigned_ms,
                round,
            } => format!(
                "reassure:{}:{round}",
                queue_entry(conversation_id, *queued_ms, *assigned_ms)
            ),
            Timer::ReplyTimeout {
                conversation_id,
                assigned_ms,
            } => format!("reply_timeout:{conversation_id}:{assigned_ms}"),
            Timer::Assign { key, .. } => format!("assign:{key}"),
            Timer::PresenceExpiry { agent, epoch } => format!("presence:{agent}:{epoch}"),
            Timer::Wake {
                conversation_id,
                at_ms,
            } => format!("wake:{conversation_id}:{at_ms}"),
            Timer::AutoResolve { conversation_id } => format!("auto_resolve:{conversation_id}"),
        }
    }

    /// Schedules the timer at `due_ms`; false when it was already scheduled.
    pub async fn schedule(&self, engine: &Engine, due_ms: i64) -> StoreResult<bool> {
        engine
            .store()
            .schedule(queues::TIMERS, &self.id(), due_ms, self, None)
            .await
    }

    /// Cancels a scheduled timer.
    pub async fn cancel(&self, engine: &Engine) -> StoreResult<bool> {
        engine.store().cancel(queues::TIMERS, &self.id()).await
    }

    /// Does what the timer was set for, if it still applies. `Some(due)`:
    /// not yet, run this same timer again at `due`.
    pub async fn fire(&self, engine: &Engine) -> Result<Option<i64>, ConversationError> {
        match self {
            Timer::Reassure {
                conversation_id,
                queued_ms,
                assigned_ms,
                round,
            } => reassure(engine, conversation_id, *queued_ms, *assigned_ms, *round)
                .await
                .map(|()| None),
            Timer::ReplyTimeout {
                conversation_id,
                assigned_ms,
            } => reply_timeout(engine, conversation_id, *assigned_ms)
                .await
                .map(|()| None),
            Timer::Assign { queues, .. } => super::assignment::dispatch(engine, queues)
                .await
                .map(|_| None),
            Timer::PresenceExpiry { agent, epoch } => {
                super::presence::expire(engine, agent, *epoch).await
            }
            Timer::Wake {
                conversation_id,
                at_ms,
            } => super::lifecycle::wake(engine, conversation_id, "time", Some(*at_ms))
                .await
                .map(|_| None),
            Timer::AutoResolve { conversation_id } => {
                super::lifecycle::auto_resolve(engine, conversation_id).await
            }
        }
    }
}

/// Names one stay of a conversation in the queue (timer and message ids).
fn queue_entry(conversation_id: &str, queued_ms: i64, assigned_ms: Option<i64>) -> String {
    match assigned_ms {
        None => format!("{conversation_id}:{queued_ms}"),
        Some(a) => format!("{conversation_id}:{queued_ms}:a{a}"),
    }
}

async fn reassure(
    engine: &Engine,
    id: &str,
    queued_ms: i64,
    assigned_ms: Option<i64>,
    round: u32,
) -> Result<(), ConversationError> {
    let Some(conv) = engine.store().conversation(id).await? else {
        return Ok(());
    };
    if conv.state != State::Queued
        || conv.queued_ms != Some(queued_ms)
        || conv.assigned_ms != assigned_ms
    {
        return Ok(());
    }
    let every = engine.config().handoff.reassure_after.as_millis_i64();
    let now = engine.store().clock().now();
    if !engine.hours().is_open(now) {
        // Out of hours the customer was told when agents are back; do not
        // message them through the night. Pick up again once the team is in
        // (as the next round: this job is acknowledged when it returns).
        if let Some(open) = engine.hours().next_open(now) {
            Timer::Reassure {
                conversation_id: id.to_string(),
                queued_ms,
                assigned_ms,
                round: round + 1,
            }
            .schedule(engine, open.timestamp().as_millisecond() + every)
            .await?;
        }
        return Ok(());
    }
    let position = engine.store().queue_position(&conv).await?;
    let lang = super::lang_from_code(&conv.language);
    let text = Texts::new(lang).reassure(position);
    let sent = engine
        .outbox()
        .enqueue(Outgoing {
            id: Some(format!(
                "reassure:{}:{round}",
                queue_entry(id, queued_ms, assigned_ms)
            )),
            message: OutboundMessage {
                channel: conv.channel,
                to: conv.contact_id.clone(),
                content: OutboundContent::Text { body: text },
                human_agent_tag: false,
                from: conv.number.clone(),
            },
            conversation_id: Some(id.to_string()),
            speaker: Some(Speaker::Bot { intent: None }),
            origin: crate::store::Origin::System,
            by_human: false,
        })
        .await;
    if let Err(e) = sent {
        // A closed window is not worth retrying; anything else is.
        match e {
            crate::outbox::OutboxError::Window(w) => {
                tracing::info!(conversation = %id, reason = %w, "no reassurance: window closed");
                return Ok(());
            }
            crate::outbox::OutboxError::Store(s) => return Err(s.into()),
        }
    }
    Timer::Reassure {
        conversation_id: id.to_string(),
        queued_ms,
        assigned_ms,
        round: round + 1,
    }
    .schedule(engine, engine.store().now_ms() + every)
    .await?;
    Ok(())
}

async fn reply_timeout(
    engine: &Engine,
    id: &str,
    assigned_ms: i64,
) -> Result<(), ConversationError> {
    let result = ownership::agent_transition(engine, id, Transition::ReplyTimeout, |c| {
        c.state == State::Assigned
            && c.assigned_ms == Some(assigned_ms)
            && c.last_agent_reply_ms.is_none_or(|r| r < assigned_ms)
            // Waiting on the customer, by the agent's choice.
            && c.snooze.is_none()
    })
    .await;
    match result {
        Ok(conv) => {
            tracing::info!(conversation = %id, "agent did not reply in time; back to the front of the queue");
            ownership::publish(engine, "agent_timeout", &conv, json!({})).await;
            Ok(())
        }
        // The agent replied, released or resolved meanwhile: nothing to do.
        Err(ConversationError::Illegal(_) | ConversationError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
