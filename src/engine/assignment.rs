//! Push assignment: with `[handoff] assignment = "round_robin"` or
//! `"least_busy"`, a waiting conversation goes at once to an online agent of
//! its queue with free capacity.
//!
//! Every change that may allow an assignment — a conversation entering a
//! queue, an agent coming online, an agent's capacity freeing up — schedules
//! an *assign* job (a [`Timer::Assign`] with an id derived from that change,
//! so it runs once and survives crashes). The job takes the queue's best
//! waiting conversation for the first eligible agent in the strategy's order
//! with the store's atomic capacity-checked pop, the same one claim-next
//! uses: across any number of processes a conversation is assigned once and
//! no agent holds more than `max_concurrent`. An agent found offline right
//! after the pop (they went offline meanwhile) gets nothing: the
//! conversation goes straight back to the front of the queue.
//!
//! [`order`] is the pure choice of who is asked first.

use super::Engine;
use super::ownership;
use super::timers::Timer;
use crate::config::{AssignmentMode, Role};
use crate::conversation::Conversation;
use crate::store::{ConversationError, PresenceStatus, User};

/// An agent who could take a conversation of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// User id.
    pub id: String,
    /// Conversations held now.
    pub load: u64,
    /// `max_concurrent`.
    pub capacity: u64,
}

/// The order in which candidates are offered a conversation. Round robin
/// starts at position `turn` (a counter shared by every process) of the
/// candidates sorted by id; least busy sorts by load, ties in round-robin
/// order. Candidates without free capacity are left out.
pub fn order(mode: AssignmentMode, mut candidates: Vec<Candidate>, turn: u64) -> Vec<Candidate> {
    candidates.retain(|c| c.load < c.capacity);
    candidates.sort_by(|a, b| a.id.cmp(&b.id));
    if candidates.is_empty() {
        return candidates;
    }
    let start = (turn % candidates.len() as u64) as usize;
    candidates.rotate_left(start);
    if mode == AssignmentMode::LeastBusy {
        // Stable: equal loads keep the round-robin order.
        candidates.sort_by_key(|c| c.load);
    }
    candidates
}

fn push_mode(engine: &Engine) -> Option<AssignmentMode> {
    let mode = engine.config().handoff.assignment;
    (mode != AssignmentMode::Pull).then_some(mode)
}

async fn schedule(
    engine: &Engine,
    queues: Vec<String>,
    key: String,
) -> Result<(), ConversationError> {
    if queues.is_empty() {
        return Ok(());
    }
    let now = engine.store().now_ms();
    Timer::Assign { queues, key }.schedule(engine, now).await?;
    Ok(())
}

/// A conversation entered its queue (handoff, release, transfer, timeout).
pub async fn after_queued(engine: &Engine, conv: &Conversation) -> Result<(), ConversationError> {
    if push_mode(engine).is_none() {
        return Ok(());
    }
    let Some(queue) = conv.queue.clone() else {
        return Ok(());
    };
    let key = format!("{}:{}", conv.id, conv.queued_ms.unwrap_or(0));
    schedule(engine, vec![queue], key).await
}

/// `agent` no longer holds conversation `conv_id` (assigned at
/// `assigned_ms`): their capacity may take another.
pub async fn after_freed(
    engine: &Engine,
    agent: &str,
    conv_id: &str,
    assigned_ms: Option<i64>,
) -> Result<(), ConversationError> {
    if push_mode(engine).is_none() {
        return Ok(());
    }
    let Some(user) = engine.store().user(agent).await? else {
        return Ok(());
    };
    let queues = ownership::agent_queues(engine, &user).await?;
    let key = format!("freed:{agent}:{conv_id}:{}", assigned_ms.unwrap_or(0));
    schedule(engine, queues, key).await
}

/// `agent` came online (presence epoch `epoch`).
pub async fn after_online(
    engine: &Engine,
    agent: &User,
    epoch: u64,
    since_ms: i64,
) -> Result<(), ConversationError> {
    if push_mode(engine).is_none() {
        return Ok(());
    }
    let queues = ownership::agent_queues(engine, agent).await?;
    schedule(
        engine,
        queues,
        format!("online:{}:{epoch}:{since_ms}", agent.id),
    )
    .await
}

/// Whether `user` works the desk and takes conversations of `queue`.
fn serves(user: &User, queue: &str) -> bool {
    !user.disabled
        && matches!(user.role, Role::Agent | Role::Supervisor | Role::Admin)
        && (user.queues.is_empty() || user.queues.iter().any(|q| q == queue))
}

/// The online agents of `queue` with their load, in the strategy's order.
async fn candidates(
    engine: &Engine,
    mode: AssignmentMode,
    queue: &str,
) -> Result<Vec<(User, Candidate)>, ConversationError> {
    let store = engine.store();
    let users: Vec<User> = store
        .users()
        .await?
        .into_iter()
        .filter(|u| serves(u, queue))
        .collect();
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let presences = store.presences(&ids).await?;
    let now = store.now_ms();
    let timeout = engine.config().handoff.presence_timeout.as_millis_i64();
    let mut out = Vec::new();
    for (user, presence) in users.into_iter().zip(presences) {
        if presence.effective(now, timeout) != PresenceStatus::Online {
            continue;
        }
        let load = store.agent_load(&user.id).await?;
        let candidate = Candidate {
            id: user.id.clone(),
            load,
            capacity: u64::from(user.max_concurrent),
        };
        out.push((user, candidate));
    }
    let turn = store.next_assignment_turn(queue).await?;
    let ordered = order(mode, out.iter().map(|(_, c)| c.clone()).collect(), turn);
    Ok(ordered
        .into_iter()
        .filter_map(|c| {
            out.iter()
                .find(|(u, _)| u.id == c.id)
                .map(|(u, _)| (u.clone(), c))
        })
        .collect())
}

/// Assigns waiting conversations of `queues` to online agents until the
/// queues are empty or nobody has room; returns how many were assigned.
pub async fn dispatch(engine: &Engine, queues: &[String]) -> Result<u32, ConversationError> {
    let Some(mode) = push_mode(engine) else {
        return Ok(0);
    };
    let store = engine.store();
    let mut assigned = 0;
    for queue in queues {
        // Bounded: each round assigns one conversation or stops.
        for _ in 0..1_000 {
            if store.waiting_count(queue).await? == 0 {
                break;
            }
            let mut progressed = false;
            for (user, _) in candidates(engine, mode, queue).await? {
                let Some(conv) = store
                    .claim_next(
                        &user.id,
                        std::slice::from_ref(queue),
                        u64::from(user.max_concurrent),
                    )
                    .await?
                else {
                    // Full meanwhile (a claim by hand), or the queue emptied.
                    continue;
                };
                progressed = true;
                ownership::after_assignment(engine, &conv, "push").await?;
                // Offline since we looked: not theirs after all.
                let timeout = engine.config().handoff.presence_timeout.as_millis_i64();
                if store
                    .presence(&user.id)
                    .await?
                    .effective(store.now_ms(), timeout)
                    != PresenceStatus::Online
                {
                    ownership::requeue_unreplied(engine, &conv.id, &user.id).await?;
                } else {
                    assigned += 1;
                    metrics::counter!("balas_push_assignments_total", "queue" => queue.clone())
                        .increment(1);
                }
                break;
            }
            if !progressed {
                break;
            }
        }
    }
    Ok(assigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, load: u64, capacity: u64) -> Candidate {
        Candidate {
            id: id.into(),
            load,
            capacity,
        }
    }

    fn ids(v: &[Candidate]) -> Vec<&str> {
        v.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn round_robin_takes_turns_and_skips_the_full() {
        let all = || {
            vec![
                c("siti", 1, 5),
                c("budi", 0, 5),
                c("rina", 5, 5),
                c("ani", 2, 5),
            ]
        };
        let rr = AssignmentMode::RoundRobin;
        assert_eq!(ids(&order(rr, all(), 0)), ["ani", "budi", "siti"]);
        assert_eq!(ids(&order(rr, all(), 1)), ["budi", "siti", "ani"]);
        assert_eq!(ids(&order(rr, all(), 2)), ["siti", "ani", "budi"]);
        assert_eq!(ids(&order(rr, all(), 3)), ["ani", "budi", "siti"]);
        assert!(order(rr, vec![c("rina", 5, 5)], 7).is_empty());
    }

    #[test]
    fn least_busy_prefers_the_lowest_load_then_takes_turns() {
        let lb = AssignmentMode::LeastBusy;
        let all = || {
            vec![
                c("siti", 1, 5),
                c("budi", 0, 5),
                c("ani", 0, 2),
                c("rina", 3, 3),
            ]
        };
        assert_eq!(ids(&order(lb, all(), 0)), ["ani", "budi", "siti"]);
        assert_eq!(ids(&order(lb, all(), 1)), ["budi", "ani", "siti"]);
    }
}
