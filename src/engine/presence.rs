//! Agent presence with its side effects: the console reports online, away or
//! offline (and keeps reporting every 30 s while open); a console silent
//! for `[handoff] presence_timeout` makes its agent offline.
//!
//! Coming online lets push assignment give the agent conversations; going
//! offline (by choice or by silence) hands the conversations they have not
//! answered yet back to the front of their queues, in push modes. Every
//! change is a live `presence` event, so supervisors' boards follow.

use serde_json::json;

use super::Engine;
use super::assignment;
use super::timers::Timer;
use crate::config::AssignmentMode;
use crate::store::{ConversationError, Expiry, Presence, PresenceStatus, User};

fn timeout_ms(engine: &Engine) -> i64 {
    engine.config().handoff.presence_timeout.as_millis_i64()
}

/// Records what `user`'s console reports; returns the presence now stored.
pub async fn report(
    engine: &Engine,
    user: &User,
    status: PresenceStatus,
) -> Result<Presence, ConversationError> {
    let store = engine.store();
    let timeout = timeout_ms(engine);
    let (before, after) = store.report_presence(&user.id, status, timeout).await?;
    if status != PresenceStatus::Offline {
        // One expiry job per epoch; scheduling it again while it exists is a no-op.
        Timer::PresenceExpiry {
            agent: user.id.clone(),
            epoch: after.epoch,
        }
        .schedule(engine, after.seen_ms + timeout)
        .await?;
    }
    if before != status {
        publish(engine, &user.id, &after).await;
        if status == PresenceStatus::Online {
            assignment::after_online(engine, user, after.epoch, after.since_ms).await?;
        }
        if status == PresenceStatus::Offline {
            went_offline(engine, &user.id).await?;
        }
    }
    Ok(after)
}

/// The expiry job of `agent`'s presence `epoch`: offline when silent for the
/// timeout. `Some(due)`: not yet, look again then.
pub async fn expire(
    engine: &Engine,
    agent: &str,
    epoch: u64,
) -> Result<Option<i64>, ConversationError> {
    match engine
        .store()
        .expire_presence(agent, epoch, timeout_ms(engine))
        .await?
    {
        Expiry::Stale => Ok(None),
        Expiry::NotYet(due) => Ok(Some(due)),
        Expiry::Expired(p) => {
            tracing::info!(%agent, "console silent: the agent is offline now");
            publish(engine, agent, &p).await;
            went_offline(engine, agent).await?;
            Ok(None)
        }
    }
}

/// In push modes, the agent's unanswered conversations go back to the
/// front of their queues for someone online.
async fn went_offline(engine: &Engine, agent: &str) -> Result<(), ConversationError> {
    if engine.config().handoff.assignment == AssignmentMode::Pull {
        return Ok(());
    }
    for id in engine.store().agent_conversations(agent).await? {
        if super::ownership::requeue_unreplied(engine, &id, agent)
            .await?
            .is_some()
        {
            tracing::info!(conversation = %id, %agent, "agent offline before replying; back to the queue");
        }
    }
    Ok(())
}

async fn publish(engine: &Engine, agent: &str, p: &Presence) {
    let event = json!({
        "type": "presence",
        "agent": agent,
        "status": p.effective(engine.store().now_ms(), timeout_ms(engine)),
        "since_ms": p.since_ms,
        "at_ms": engine.store().now_ms(),
    });
    if let Err(e) = engine.store().publish_event(&event).await {
        tracing::warn!(error = %e, "could not publish a presence event");
    }
}

/// The effective presence of each of `users` now.
pub async fn statuses(
    engine: &Engine,
    users: &[String],
) -> Result<Vec<(PresenceStatus, Presence)>, ConversationError> {
    let now = engine.store().now_ms();
    let timeout = timeout_ms(engine);
    Ok(engine
        .store()
        .presences(users)
        .await?
        .into_iter()
        .map(|p| (p.effective(now, timeout), p))
        .collect())
}
