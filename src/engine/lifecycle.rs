//! The life of a case around its owners: snoozing while the agent waits on
//! the customer, resolving bot-owned cases nobody closed, and noticing when
//! a customer reopens a case they had just closed.
//!
//! - **Snooze**: the assigned agent sets a conversation aside until a time
//!   or the customer's next message ([`snooze`]); it wakes on whichever comes
//!   first ([`wake`], from the engine or a [`Timer::Wake`]).
//! - **Auto-resolve**: a bot-owned case without a customer message for
//!   `[cases] auto_resolve_after` is resolved by `auto`, published like every
//!   resolution so surveys follow their settings ([`Timer::AutoResolve`]).
//! - **Reopen**: a case opened within `[cases] reopen_window` of the
//!   contact's previous resolution marks that one reopened (reports).

use serde_json::json;

use super::Engine;
use super::ownership;
use super::timers::Timer;
use crate::conversation::{Conversation, Snooze, State, Transition};
use crate::store::{Contact, ConversationError, SystemEvent};

/// Why a snooze was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnoozeError {
    /// Only an assigned conversation can be snoozed.
    #[error("only an assigned conversation can be snoozed; this one is {0}")]
    NotAssigned(&'static str),
    /// The time is not in the future.
    #[error("the snooze must end in the future")]
    InThePast,
    /// Anything else.
    #[error(transparent)]
    Conversation(#[from] ConversationError),
}

/// Snoozes an assigned conversation until `until_ms` (or, with `None`, the
/// customer's next message).
pub async fn snooze(
    engine: &Engine,
    conv_id: &str,
    by: &str,
    until_ms: Option<i64>,
) -> Result<Conversation, SnoozeError> {
    let store = engine.store();
    let now = store.now_ms();
    if until_ms.is_some_and(|t| t <= now) {
        return Err(SnoozeError::InThePast);
    }
    let mut state = State::Assigned;
    let conv = store
        .update_conversation(conv_id, |c| {
            state = c.state;
            if c.state == State::Assigned {
                c.snooze = Some(Snooze {
                    at_ms: now,
                    until_ms,
                    by: by.to_string(),
                });
            }
        })
        .await?;
    if state != State::Assigned {
        return Err(SnoozeError::NotAssigned(state.as_str()));
    }
    if let Some(until) = until_ms {
        Timer::Wake {
            conversation_id: conv_id.to_string(),
            at_ms: now,
        }
        .schedule(engine, until)
        .await
        .map_err(ConversationError::from)?;
    }
    store
        .system_line(
            conv_id,
            SystemEvent::Snoozed {
                by: by.to_string(),
                until_ms,
            },
        )
        .await
        .map_err(ConversationError::from)?;
    ownership::publish(engine, "snooze", &conv, json!({ "until_ms": until_ms })).await;
    Ok(conv)
}

/// Ends a snooze: `why` is `message` (the customer wrote), `time` (it ran
/// out) or `agent`. `at_ms` names the snooze to end (a timer of an earlier
/// snooze does nothing); `None` ends any. Returns the conversation when a
/// snooze ended.
pub async fn wake(
    engine: &Engine,
    conv_id: &str,
    why: &str,
    at_ms: Option<i64>,
) -> Result<Option<Conversation>, ConversationError> {
    let mut woke = false;
    let conv = engine
        .store()
        .update_conversation(conv_id, |c| {
            woke = c
                .snooze
                .as_ref()
                .is_some_and(|s| at_ms.is_none_or(|a| a == s.at_ms));
            if woke {
                c.snooze = None;
            }
        })
        .await?;
    if !woke {
        return Ok(None);
    }
    engine
        .store()
        .system_line(
            conv_id,
            SystemEvent::Woke {
                why: why.to_string(),
            },
        )
        .await?;
    ownership::publish(engine, "wake", &conv, json!({ "why": why })).await;
    Ok(Some(conv))
}

/// A new case was opened for `contact`: schedule its auto-resolution and
/// mark the previous case reopened when it was resolved within the window.
pub async fn case_opened(
    engine: &Engine,
    contact: &Contact,
    conv: &Conversation,
) -> Result<(), ConversationError> {
    let cfg = &engine.config().cases;
    let after = cfg.auto_resolve_after.as_millis_i64();
    if after > 0 {
        Timer::AutoResolve {
            conversation_id: conv.id.clone(),
        }
        .schedule(engine, conv.opened_ms + after)
        .await?;
    }
    let window = cfg.reopen_window.as_millis_i64();
    let previous = contact
        .cases
        .iter()
        .rev()
        .find(|id| **id != conv.id)
        .cloned();
    let Some(previous) = previous else {
        return Ok(());
    };
    let store = engine.store();
    let Some(prev) = store.conversation(&previous).await? else {
        return Ok(());
    };
    let now = store.now_ms();
    if prev.state != State::Resolved
        || prev.resolved_ms.is_none_or(|r| now - r > window)
        || prev.reopened_ms.is_some()
        // A survey's recovery case is ours, not the customer's reopening.
        || conv.recovery_score.is_some()
    {
        return Ok(());
    }
    store
        .update_conversation(&previous, |c| {
            c.reopened_ms.get_or_insert(now);
        })
        .await?;
    store
        .update_conversation(&conv.id, |c| c.reopen_of = Some(previous.clone()))
        .await?;
    store
        .system_line(
            &conv.id,
            SystemEvent::Reopened {
                of: previous.clone(),
            },
        )
        .await?;
    Ok(())
}

/// The auto-resolution check of a case: resolves it when the bot still owns
/// it and the customer has been silent long enough. `Some(due)`: look again
/// then.
pub async fn auto_resolve(
    engine: &Engine,
    conv_id: &str,
) -> Result<Option<i64>, ConversationError> {
    let after = engine.config().cases.auto_resolve_after.as_millis_i64();
    let Some(conv) = engine.store().conversation(conv_id).await? else {
        return Ok(None);
    };
    if conv.state != State::Bot || after <= 0 {
        return Ok(None);
    }
    let last = conv
        .last_customer_ms
        .unwrap_or(conv.opened_ms)
        .max(conv.opened_ms);
    let due = last + after;
    if engine.store().now_ms() < due {
        return Ok(Some(due));
    }
    match ownership::agent_transition(
        engine,
        conv_id,
        Transition::Resolve { by: "auto".into() },
        |c| c.state == State::Bot && c.last_customer_ms == conv.last_customer_ms,
    )
    .await
    {
        Ok(_) => {
            tracing::info!(case = %conv_id, "bot case idle; resolved automatically");
            metrics::counter!("balas_cases_auto_resolved_total").increment(1);
            Ok(None)
        }
        // The customer wrote meanwhile: look again from their message.
        Err(ConversationError::Illegal(_)) => Ok(Some(engine.store().now_ms())),
        Err(ConversationError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
