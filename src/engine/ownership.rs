//! Ownership changes with everything that goes with them.
//!
//! The bot, the agent API and the timers all change owners through these
//! functions, so the side effects — live events for consoles, SLA timers,
//! surveys after resolution, queue bookkeeping — happen the same way whoever
//! asked.

use super::Engine;
use crate::events::Event;
use serde_json::json;

use super::assignment;
use super::timers::Timer;
use crate::conversation::{Conversation, State, Transition};
use crate::store::{ClaimError, ConversationError, SystemEvent, User, queues};

/// Publishes a live event about a conversation to every process's consoles.
pub async fn publish(engine: &Engine, kind: &str, conv: &Conversation, extra: serde_json::Value) {
    let mut event = json!({
        "type": kind,
        "conversation_id": conv.id,
        "channel": conv.channel,
        "state": conv.state,
        "queue": conv.queue,
        "agent": conv.agent,
        "priority": conv.priority,
        "at_ms": engine.store().now_ms(),
    });
    if let (Some(obj), Some(more)) = (event.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            obj.insert(k.clone(), v.clone());
        }
    }
    if let Err(e) = engine.store().publish_event(&event).await {
        tracing::warn!(error = %e, "could not publish a live event");
    }
}

/// Puts a bot-owned conversation in a queue. Every caller tells the customer
/// about it in the same turn, so this counts as their latest position update.
pub async fn handoff(
    engine: &Engine,
    conv_id: &str,
    queue: &str,
    priority: i32,
    reason: &str,
) -> Result<Conversation, ConversationError> {
    let t = Transition::Handoff {
        queue: queue.to_string(),
        priority,
        reason: reason.to_string(),
    };
    let (_, after) = engine.store().transition(conv_id, &t, |_| true).await?;
    engine
        .store()
        .system_line(
            conv_id,
            SystemEvent::Handoff {
                queue: queue.to_string(),
                reason: reason.to_string(),
                priority,
            },
        )
        .await?;
    schedule_reassure(engine, &after).await?;
    publish(engine, "handoff", &after, json!({ "reason": reason })).await;
    assignment::after_queued(engine, &after).await?;
    metrics::counter!("balas_handoffs_total", "queue" => queue.to_string()).increment(1);
    Ok(after)
}

/// Raises the priority of a waiting conversation (angry or repeated complaints).
pub async fn raise_priority(
    engine: &Engine,
    conv: &Conversation,
    by: i32,
) -> Result<Conversation, ConversationError> {
    if conv.state != State::Queued || by <= 0 {
        return Ok(conv.clone());
    }
    // An agent may claim it at any moment: change nothing once it left the queue.
    let after = engine
        .store()
        .update_conversation(&conv.id, |c| {
            if c.state == State::Queued {
                c.priority += by;
            }
        })
        .await?;
    if after.state != State::Queued {
        return Ok(after);
    }
    engine.store().refile_waiting(&after).await?;
    publish(engine, "priority", &after, json!({})).await;
    Ok(after)
}

/// The queues an agent may take from: theirs, or every known queue.
pub async fn agent_queues(engine: &Engine, agent: &User) -> Result<Vec<String>, ConversationError> {
    if !agent.queues.is_empty() {
        return Ok(agent.queues.clone());
    }
    let mut all = engine.store().known_queues().await?;
    for intent in engine.rules().current().intents() {
        if let Some(q) = &intent.queue
            && !all.contains(q)
        {
            all.push(q.clone());
        }
    }
    for q in [engine.config().handoff.default_queue.as_str(), "recovery"] {
        if !all.iter().any(|x| x == q) {
            all.push(q.to_string());
        }
    }
    Ok(all)
}

/// Assigns the next waiting conversation the agent may take; `queue` narrows it.
pub async fn claim_next(
    engine: &Engine,
    agent: &User,
    queue: Option<&str>,
) -> Result<Option<Conversation>, ConversationError> {
    let mut queues = agent_queues(engine, agent).await?;
    if let Some(q) = queue {
        queues.retain(|x| x == q);
        if queues.is_empty() {
            return Ok(None);
        }
    }
    let Some(conv) = engine
        .store()
        .claim_next(&agent.id, &queues, u64::from(agent.max_concurrent))
        .await?
    else {
        return Ok(None);
    };
    after_assignment(engine, &conv, "claim").await?;
    Ok(Some(conv))
}

/// Claims one named queued conversation for `agent`, with the guards of
/// [`claim_next`]: only from the agent's queues, and only while they hold
/// fewer than `max_concurrent`.
pub async fn claim(
    engine: &Engine,
    agent: &User,
    conv_id: &str,
) -> Result<Conversation, ClaimError> {
    let queues = agent_queues(engine, agent).await?;
    let conv = engine
        .store()
        .claim_conversation(conv_id, &agent.id, u64::from(agent.max_concurrent), |c| {
            c.queue.as_ref().is_some_and(|q| queues.contains(q))
        })
        .await?;
    after_assignment(engine, &conv, "claim").await?;
    Ok(conv)
}

/// Gives a conversation to `target` if they are online and have room;
/// `guard` is the caller's right to move it.
pub async fn transfer_to_agent(
    engine: &Engine,
    conv_id: &str,
    target: &User,
    guard: impl Fn(&Conversation) -> bool,
) -> Result<Conversation, ClaimError> {
    let (before, after) = engine
        .store()
        .transfer_to_agent(conv_id, &target.id, u64::from(target.max_concurrent), guard)
        .await?;
    after_assignment(engine, &after, "transfer").await?;
    if let Some(previous) = before.agent.as_deref() {
        assignment::after_freed(engine, previous, &after.id, after.assigned_ms).await?;
    }
    Ok(after)
}

/// The side effects of a new assignment: the system line, the reply timer,
/// the live event. `kind` is `claim`, `transfer` or `push`.
pub(crate) async fn after_assignment(
    engine: &Engine,
    conv: &Conversation,
    kind: &str,
) -> Result<(), ConversationError> {
    let agent = conv.agent.clone().unwrap_or_default();
    engine
        .store()
        .system_line(
            &conv.id,
            SystemEvent::Assigned {
                how: kind.to_string(),
                agent,
            },
        )
        .await?;
    let timeout = engine.config().handoff.agent_reply_timeout;
    let assigned_ms = conv.assigned_ms.unwrap_or_else(|| engine.store().now_ms());
    Timer::ReplyTimeout {
        conversation_id: conv.id.clone(),
        assigned_ms,
    }
    .schedule(engine, assigned_ms + timeout.as_millis_i64())
    .await?;
    publish(engine, kind, conv, json!({})).await;
    Ok(())
}

/// Applies an agent-side transition (release, transfer, resolve) guarded by
/// `guard`, with its side effects.
pub async fn agent_transition(
    engine: &Engine,
    conv_id: &str,
    transition: Transition,
    guard: impl Fn(&Conversation) -> bool,
) -> Result<Conversation, ConversationError> {
    let (before, after) = engine
        .store()
        .transition(conv_id, &transition, guard)
        .await?;
    requeue_or_resolve_effects(engine, &before, &after, &transition, None).await?;
    Ok(after)
}

/// Puts an assigned conversation whose agent went offline (or was found
/// offline right after a push) back at the front of its queue, unless the
/// agent replied since the assignment or snoozed it.
pub async fn requeue_unreplied(
    engine: &Engine,
    conv_id: &str,
    agent: &str,
) -> Result<Option<Conversation>, ConversationError> {
    let result = engine
        .store()
        .transition(conv_id, &Transition::ReplyTimeout, |c| {
            c.state == State::Assigned
                && c.agent.as_deref() == Some(agent)
                && c.snooze.is_none()
                && c.last_agent_reply_ms
                    .is_none_or(|r| r < c.assigned_ms.unwrap_or(i64::MAX))
        })
        .await;
    match result {
        Ok((before, after)) => {
            requeue_or_resolve_effects(
                engine,
                &before,
                &after,
                &Transition::ReplyTimeout,
                Some("agent_offline"),
            )
            .await?;
            Ok(Some(after))
        }
        Err(ConversationError::Illegal(_) | ConversationError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn requeue_or_resolve_effects(
    engine: &Engine,
    before: &Conversation,
    after: &Conversation,
    transition: &Transition,
    how: Option<&str>,
) -> Result<(), ConversationError> {
    let conv_id = after.id.as_str();
    let after = after.clone();
    match transition {
        Transition::Release | Transition::TransferToQueue { .. } | Transition::ReplyTimeout => {
            engine
                .store()
                .system_line(
                    conv_id,
                    SystemEvent::Requeued {
                        how: how.unwrap_or(transition.name()).to_string(),
                        queue: after.queue.clone().unwrap_or_default(),
                    },
                )
                .await?;
            schedule_reassure(engine, &after).await?;
            publish(
                engine,
                how.unwrap_or(transition.name()),
                &after,
                json!({ "previous_agent": before.agent }),
            )
            .await;
            assignment::after_queued(engine, &after).await?;
        }
        Transition::TransferToAgent { .. } => after_assignment(engine, &after, "transfer").await?,
        Transition::Resolve { by } => {
            engine
                .store()
                .system_line(conv_id, SystemEvent::Resolved { by: by.clone() })
                .await?;
            publish(engine, "resolve", &after, json!({ "by": by })).await;
            metrics::counter!("balas_cases_resolved_total", "by_bot" => if after.reached_human { "false" } else { "true" }).increment(1);
            engine
                .bus()
                .publish(&Event::CaseResolved(Box::new(after.clone())))
                .await?;
        }
        Transition::Handoff { .. } | Transition::Claim { .. } => {}
    }
    // The agent who held it no longer does (resolved, released, moved on).
    if let Some(previous) = before.agent.as_deref()
        && before.state == State::Assigned
        && (after.state != State::Assigned || after.agent.as_deref() != Some(previous))
    {
        assignment::after_freed(engine, previous, conv_id, before.assigned_ms).await?;
    }
    Ok(())
}

/// Records an agent's reply on the conversation (SLA timestamps, unread reset).
pub async fn agent_replied(
    engine: &Engine,
    conv_id: &str,
) -> Result<Conversation, ConversationError> {
    let now = engine.store().now_ms();
    engine
        .store()
        .update_conversation(conv_id, |c| {
            c.first_agent_reply_ms.get_or_insert(now);
            c.last_agent_reply_ms = Some(now);
            c.unread = 0;
        })
        .await
}

async fn schedule_reassure(engine: &Engine, conv: &Conversation) -> Result<(), ConversationError> {
    let every = engine.config().handoff.reassure_after.as_millis_i64();
    let now = engine.store().now_ms();
    Timer::Reassure {
        conversation_id: conv.id.clone(),
        queued_ms: conv.queued_ms.unwrap_or(now),
        assigned_ms: conv.assigned_ms,
        round: 1,
    }
    .schedule(engine, now + every)
    .await?;
    Ok(())
}

/// Job queue of timers, re-exported for the worker.
pub const TIMERS: &str = queues::TIMERS;
