//! Conversations, their transcripts, and the agent queue.
//!
//! Ownership changes go through [`Store::transition`], which applies the state
//! machine in [`crate::conversation`] with compare-and-swap and then keeps the
//! indexes (per-state lists, waiting queues, agents' active sets) in step.
//! Claiming is [`Store::claim_next`]: one atomic pop from the waiting queues into
//! the agent's active set, so two agents never get the same conversation.

use serde::{Deserialize, Serialize};

use super::contacts::contact_key;
use super::slots::{HANDOFF, tagged};
use super::{Contact, Store, StoreError, StoreResult};
use crate::channels::{Channel, ContactRef};
use crate::conversation::{Conversation, IllegalTransition, State, Transition};

/// Who wrote a transcript entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Speaker {
    /// The customer.
    Customer,
    /// The bot (with the intent that answered).
    Bot {
        /// Intent name, when a rule answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intent: Option<String>,
    },
    /// An agent.
    Agent {
        /// Agent id.
        id: String,
    },
    /// A system event (handoff, claim, survey …), not a message.
    System,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// When, Unix ms.
    pub at_ms: i64,
    /// Who.
    pub speaker: Speaker,
    /// Text (a summary for media and events).
    pub text: String,
    /// For customer messages: the platform id. For our messages: the outbox id,
    /// whose record carries the delivery status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Ids of the files this message carries (attachment records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
    /// For system lines: what happened, so consoles can say it in their
    /// language (`text` is the English form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<SystemEvent>,
}

/// A system line of a transcript: something that happened to the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SystemEvent {
    /// Handed to a queue.
    Handoff {
        /// The queue.
        queue: String,
        /// Why (intent name, `fallback`).
        reason: String,
        /// Queue priority.
        priority: i32,
    },
    /// Given to an agent: `how` is `claim`, `transfer` or `push`.
    Assigned {
        /// How.
        how: String,
        /// The agent.
        agent: String,
    },
    /// Back in a queue: `how` is `release`, `transfer_to_queue`,
    /// `reply_timeout` or `agent_offline`.
    Requeued {
        /// How.
        how: String,
        /// The queue.
        queue: String,
    },
    /// Resolved (`by` an agent id, `bot`, `auto` or `customer`).
    Resolved {
        /// Who.
        by: String,
    },
    /// Snoozed until a time (or the customer's next message).
    Snoozed {
        /// Who.
        by: String,
        /// Until, Unix ms.
        until_ms: Option<i64>,
    },
    /// Woke from a snooze: `why` is `message` or `time`.
    Woke {
        /// Why.
        why: String,
    },
    /// Reopened: the customer wrote again soon after case `of` was resolved.
    Reopened {
        /// The resolved case.
        of: String,
    },
    /// The customer reacted to a message (`emoji` `None`: removed it).
    Reaction {
        /// The emoji.
        emoji: Option<String>,
        /// The message.
        message_id: String,
    },
    /// The customer deleted a message.
    Deleted {
        /// The message.
        message_id: String,
    },
    /// The customer opted out of (or back into) automated messages.
    OptOut {
        /// True for out.
        out: bool,
    },
}

impl SystemEvent {
    /// The English line (logs, the terminal chat, consoles that do not know
    /// the code).
    pub fn text(&self) -> String {
        match self {
            SystemEvent::Handoff {
                queue,
                reason,
                priority,
            } => format!("handoff to {queue} ({reason}), priority {priority}"),
            SystemEvent::Assigned { how, agent } => format!("{how}: assigned to {agent}"),
            SystemEvent::Requeued { how, queue } => format!("{how} → queue {queue}"),
            SystemEvent::Resolved { by } => format!("resolved by {by}"),
            SystemEvent::Snoozed { by, until_ms } => match until_ms {
                Some(t) => format!("snoozed by {by} until {}", iso(*t)),
                None => format!("snoozed by {by} until the customer writes"),
            },
            SystemEvent::Woke { why } => format!("woke up ({why})"),
            SystemEvent::Reopened { of } => format!("reopens case {of}"),
            SystemEvent::Reaction {
                emoji: Some(e),
                message_id,
            } => format!("reacted {e} to {message_id}"),
            SystemEvent::Reaction {
                emoji: None,
                message_id,
            } => format!("removed a reaction from {message_id}"),
            SystemEvent::Deleted { message_id } => {
                format!("the customer deleted message {message_id}")
            }
            SystemEvent::OptOut { out: true } => "customer opted out of automated messages".into(),
            SystemEvent::OptOut { out: false } => "customer opted in again".into(),
        }
    }
}

fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Why a claim or a transfer to an agent did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// It is no longer waiting (or no longer where it was): someone else
    /// took it, or it was resolved.
    #[error("the conversation was taken or changed meanwhile")]
    Taken,
    /// The agent already holds as many conversations as they may.
    #[error("the agent already holds as many conversations as they may")]
    Full,
    /// The guard refused it.
    #[error("not allowed")]
    NotAllowed,
    /// Anything else.
    #[error(transparent)]
    Conversation(#[from] ConversationError),
}

impl From<StoreError> for ClaimError {
    fn from(e: StoreError) -> Self {
        ClaimError::Conversation(e.into())
    }
}

/// Errors of conversation operations.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// No conversation with that id.
    #[error("conversation {0} not found")]
    NotFound(String),
    /// Not allowed from the current state.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn conversation_key(id: &str) -> String {
    format!("conv:{id}")
}

fn transcript_key(id: &str) -> String {
    format!("transcript:{id}")
}

/// Index of conversations in a state, by last change (sharded: every
/// conversation passes through it).
pub(crate) fn state_index(state: State) -> String {
    format!("convs:{}", state.as_str())
}

/// Waiting queue of conversations, by [`Conversation::queue_score`]; in the
/// agent queue's slot with every other queue and the agents' active sets,
/// so one claim can compare them (see [`super::slots`]).
pub(crate) fn waiting_index(queue: &str) -> String {
    tagged(HANDOFF, &format!("waiting:{queue}"))
}

/// Conversations an agent holds, by assignment time (in the agent queue's
/// slot).
pub(crate) fn active_index(agent: &str) -> String {
    tagged(HANDOFF, &format!("active:{agent}"))
}

/// Every queue name ever used.
const QUEUES_INDEX: &str = "queues";

/// Resolved cases by resolution time (reports, segments); sharded.
pub(crate) const RESOLVED_INDEX: &str = "cases:resolved";

/// Cases by opening time (reports: resolution rate); sharded.
const OPENED_INDEX: &str = "cases:opened";

/// A new case id like `20261122-7KQ2PX`: sortable by day and short enough to
/// read out to a customer.
pub fn new_case_id(now_ms: i64) -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let day = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::UTC)
                .strftime("%Y%m%d")
                .to_string()
        })
        .unwrap_or_else(|_| "00000000".into());
    let suffix: String = (0..6)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect();
    format!("{day}-{suffix}")
}

impl Store {
    /// Reads a conversation.
    pub async fn conversation(&self, id: &str) -> StoreResult<Option<Conversation>> {
        self.get_json(&conversation_key(id)).await
    }

    /// Reads several conversations (missing ones are skipped).
    pub async fn conversations(&self, ids: &[String]) -> StoreResult<Vec<Conversation>> {
        let keys: Vec<String> = ids.iter().map(|id| conversation_key(id)).collect();
        self.get_json_many(&keys).await
    }

    /// The contact's open case, or a new bot-owned one when there is none (or the
    /// last one was resolved). Returns the contact, the case and whether it is new.
    /// Callers serialize per contact (the engine holds a contact lock), so two
    /// cases are never opened for one contact at once. `prepare` fills in a new
    /// case before it is first written (one write instead of two).
    pub async fn open_case(
        &self,
        channel: Channel,
        who: &ContactRef,
        prepare: impl FnOnce(&mut Conversation),
    ) -> StoreResult<(Contact, Conversation, bool)> {
        let now = self.now_ms();
        let contact = self
            .contact(channel, &who.external_id)
            .await?
            .unwrap_or_else(|| Contact::new(channel, &who.external_id, now));
        if let Some(id) = &contact.current_case
            && let Some(conv) = self.conversation(id).await?
            && conv.state != State::Resolved
        {
            return Ok((contact, conv, false));
        }
        let mut conv = Conversation::open(new_case_id(now), channel, who.external_id.clone(), now);
        // What the caller would write right after goes into the first write.
        prepare(&mut conv);
        let bytes = serde_json::to_vec(&conv).map_err(|e| StoreError::Corrupt {
            key: conversation_key(&conv.id),
            reason: e.to_string(),
        })?;
        if self
            .backend
            .doc_put(&conversation_key(&conv.id), 0, &bytes)
            .await?
            .is_none()
        {
            return Err(StoreError::Contention(conversation_key(&conv.id)));
        }
        // Once the case exists, its index entries and the contact's pointer
        // to it do not depend on each other: made at once (shared commits on
        // the embedded store, one round trip on Redis).
        let id = conv.id.clone();
        let bot_index = state_index(State::Bot);
        let (contact, (), ()) = tokio::try_join!(
            self.update_contact(channel, &who.external_id, |c| {
                c.current_case = Some(id.clone());
                if !c.cases.contains(&id) {
                    c.cases.push(id.clone());
                }
            }),
            self.sharded_put(&bot_index, &conv.id, now as f64),
            self.sharded_put(OPENED_INDEX, &conv.id, now as f64),
        )?;
        Ok((contact, conv, true))
    }

    /// Changes fields of a conversation that are not about ownership (counters,
    /// timestamps). Ownership changes go through [`Store::transition`].
    pub async fn update_conversation(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Conversation),
    ) -> Result<Conversation, ConversationError> {
        let updated = self
            .update_json::<Conversation, ConversationError, _>(&conversation_key(id), |c| {
                let mut c = c.ok_or_else(|| ConversationError::NotFound(id.to_string()))?;
                let state = c.state;
                change(&mut c);
                debug_assert_eq!(state, c.state, "ownership changes go through transition()");
                c.state = state;
                Ok(Some(c))
            })
            .await?;
        Ok(updated.expect("always writes"))
    }

    /// Applies an ownership transition atomically (guarded by the current state),
    /// optionally only when `guard` accepts the current conversation, then updates
    /// the indexes. Returns the conversation before and after.
    pub async fn transition(
        &self,
        id: &str,
        transition: &Transition,
        guard: impl Fn(&Conversation) -> bool,
    ) -> Result<(Conversation, Conversation), ConversationError> {
        let now = self.now_ms();
        let mut before = None;
        let after = self
            .update_json::<Conversation, ConversationError, _>(&conversation_key(id), |c| {
                let mut c = c.ok_or_else(|| ConversationError::NotFound(id.to_string()))?;
                if !guard(&c) {
                    return Err(IllegalTransition {
                        from: c.state.as_str(),
                        transition: transition.name(),
                    }
                    .into());
                }
                before = Some(c.clone());
                c.apply(transition, now)?;
                Ok(Some(c))
            })
            .await?
            .expect("always writes");
        let before = before.expect("set when written");
        self.reindex(&before, &after).await?;
        Ok((before, after))
    }

    /// Moves index entries from `before`'s position to `after`'s.
    async fn reindex(&self, before: &Conversation, after: &Conversation) -> StoreResult<()> {
        let b = self.backend.as_ref();
        let now = self.now_ms() as f64;
        if before.state != after.state {
            self.sharded_remove(&state_index(before.state), &before.id)
                .await?;
        }
        self.sharded_put(&state_index(after.state), &after.id, now)
            .await?;
        if before.state == State::Queued
            && let Some(q) = &before.queue
            && (after.state != State::Queued || after.queue != before.queue)
        {
            b.index_remove(&waiting_index(q), &before.id).await?;
        }
        if after.state == State::Queued
            && let Some(q) = &after.queue
        {
            b.index_put(&waiting_index(q), &after.id, after.queue_score())
                .await?;
            b.index_put(QUEUES_INDEX, q, 0.0).await?;
        }
        if before.state == State::Assigned
            && let Some(agent) = &before.agent
            && (after.state != State::Assigned || after.agent != before.agent)
        {
            b.index_remove(&active_index(agent), &before.id).await?;
        }
        if after.state == State::Assigned
            && let Some(agent) = &after.agent
        {
            b.index_put(&active_index(agent), &after.id, now).await?;
        }
        if after.state == State::Resolved && before.state != State::Resolved {
            self.sharded_put(
                RESOLVED_INDEX,
                &after.id,
                after.resolved_ms.unwrap_or(0) as f64,
            )
            .await?;
            // The contact's next message opens a new case.
            let id = after.id.clone();
            self.update_contact(after.channel, &after.contact_id, |c| {
                if c.current_case.as_deref() == Some(id.as_str()) {
                    c.current_case = None;
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Atomically assigns the best waiting conversation from `queues` to `agent`
    /// if the agent holds fewer than `capacity`. `None` when nothing waits or the
    /// agent is full.
    pub async fn claim_next(
        &self,
        agent: &str,
        queues: &[String],
        capacity: u64,
    ) -> Result<Option<Conversation>, ConversationError> {
        let indexes: Vec<String> = queues.iter().map(|q| waiting_index(q)).collect();
        let holder = active_index(agent);
        loop {
            let now = self.now_ms();
            let Some((_, id)) = self
                .backend
                .index_pop_min_into(&indexes, &holder, capacity, now as f64)
                .await?
            else {
                return Ok(None);
            };
            // The pop made us the only claimer of `id`; the state guard catches
            // stale queue entries (e.g. resolved by an opt-out meanwhile).
            let claim = Transition::Claim {
                agent: agent.to_string(),
            };
            match self
                .transition(&id, &claim, |c| c.state == State::Queued)
                .await
            {
                Ok((_, after)) => return Ok(Some(after)),
                Err(ConversationError::Illegal(_) | ConversationError::NotFound(_)) => {
                    self.backend.index_remove(&holder, &id).await?;
                    tracing::warn!(conversation = %id, "dropped a stale queue entry");
                }
                Err(e) => {
                    // Put it back so nobody loses the customer.
                    self.backend.index_remove(&holder, &id).await?;
                    if let Ok(Some(c)) = self.conversation(&id).await
                        && c.state == State::Queued
                        && let Some(q) = &c.queue
                    {
                        self.backend
                            .index_put(&waiting_index(q), &id, c.queue_score())
                            .await?;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Assigns the queued conversation `id` to `agent` if the agent holds
    /// fewer than `capacity` and `guard` accepts it: one atomic move from the
    /// waiting queue into the agent's active set, so two agents never both
    /// get it and the agent never holds more than `capacity`.
    pub async fn claim_conversation(
        &self,
        id: &str,
        agent: &str,
        capacity: u64,
        guard: impl Fn(&Conversation) -> bool,
    ) -> Result<Conversation, ClaimError> {
        let conv = self
            .conversation(id)
            .await?
            .ok_or_else(|| ConversationError::NotFound(id.to_string()))?;
        let (State::Queued, Some(queue)) = (conv.state, conv.queue.as_deref()) else {
            return Err(ClaimError::Taken);
        };
        if !guard(&conv) {
            return Err(ClaimError::NotAllowed);
        }
        let from = waiting_index(queue);
        let holder = active_index(agent);
        self.move_to_agent(&from, id, &holder, capacity).await?;
        let claim = Transition::Claim {
            agent: agent.to_string(),
        };
        match self
            .transition(id, &claim, |c| {
                c.state == State::Queued && c.queue.as_deref() == Some(queue)
            })
            .await
        {
            Ok((_, after)) => Ok(after),
            Err(e) => {
                // The move made us its only claimer; give it back.
                self.backend.index_remove(&holder, id).await?;
                self.refile_if_queued(id).await?;
                Err(match e {
                    ConversationError::Illegal(_) => ClaimError::Taken,
                    other => other.into(),
                })
            }
        }
    }

    /// Moves `id` from index `from` into the agent's `holder` index if they
    /// hold fewer than `capacity`, in one atomic step: the claim and transfer
    /// guard against the same conversation being given twice.
    async fn move_to_agent(
        &self,
        from: &str,
        id: &str,
        holder: &str,
        capacity: u64,
    ) -> Result<(), ClaimError> {
        match self
            .backend
            .index_move(from, id, holder, capacity, self.now_ms() as f64)
            .await?
        {
            super::MoveOutcome::Moved => Ok(()),
            super::MoveOutcome::NotInSource => Err(ClaimError::Taken),
            super::MoveOutcome::Full => Err(ClaimError::Full),
        }
    }

    /// Gives conversation `id` (queued, or assigned to someone else) to
    /// `agent` if they hold fewer than `capacity` and `guard` accepts it;
    /// like [`Store::claim_conversation`], the capacity check and the move
    /// are one atomic step.
    pub async fn transfer_to_agent(
        &self,
        id: &str,
        agent: &str,
        capacity: u64,
        guard: impl Fn(&Conversation) -> bool,
    ) -> Result<(Conversation, Conversation), ClaimError> {
        let conv = self
            .conversation(id)
            .await?
            .ok_or_else(|| ConversationError::NotFound(id.to_string()))?;
        if !guard(&conv) {
            return Err(ClaimError::NotAllowed);
        }
        let from = match (conv.state, conv.queue.as_deref(), conv.agent.as_deref()) {
            (State::Queued, Some(q), _) => waiting_index(q),
            (State::Assigned, _, Some(a)) if a != agent => active_index(a),
            _ => return Err(ClaimError::Taken),
        };
        let holder = active_index(agent);
        self.move_to_agent(&from, id, &holder, capacity).await?;
        let (state, previous) = (conv.state, conv.agent.clone());
        let transfer = Transition::TransferToAgent {
            agent: agent.to_string(),
        };
        match self
            .transition(id, &transfer, |c| {
                c.state == state && c.agent == previous && guard(c)
            })
            .await
        {
            Ok(both) => Ok(both),
            Err(e) => {
                // Undo the move: back where it was, if it is still there.
                self.backend.index_remove(&holder, id).await?;
                if let Some(now) = self.conversation(id).await? {
                    match (now.state, now.queue.as_deref(), now.agent.as_deref()) {
                        (State::Queued, Some(q), _) => {
                            self.backend
                                .index_put(&waiting_index(q), id, now.queue_score())
                                .await?;
                        }
                        (State::Assigned, _, Some(a)) => {
                            self.backend
                                .index_put(
                                    &active_index(a),
                                    id,
                                    now.assigned_ms.unwrap_or(0) as f64,
                                )
                                .await?;
                        }
                        _ => {}
                    }
                }
                Err(match e {
                    ConversationError::Illegal(_) => ClaimError::Taken,
                    other => other.into(),
                })
            }
        }
    }

    async fn refile_if_queued(&self, id: &str) -> StoreResult<()> {
        if let Some(c) = self.conversation(id).await?
            && c.state == State::Queued
            && let Some(q) = &c.queue
        {
            self.backend
                .index_put(&waiting_index(q), id, c.queue_score())
                .await?;
        }
        Ok(())
    }

    /// How many conversations an agent holds (O(1)).
    pub async fn agent_load(&self, agent: &str) -> StoreResult<u64> {
        self.backend.index_len(&active_index(agent)).await
    }

    /// The next turn of round-robin assignment in `queue` (shared by every
    /// process).
    pub async fn next_assignment_turn(&self, queue: &str) -> StoreResult<u64> {
        Ok(self
            .backend
            .counter_add(&format!("assign:turn:{queue}"), 1)
            .await?
            .max(0) as u64)
    }

    /// Case ids opened in `[from_ms, to_ms]`.
    pub async fn opened_between(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<String>> {
        Ok(self
            .sharded_range(OPENED_INDEX, from_ms as f64, to_ms as f64, 1_000_000)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Every queue name that has been used.
    pub async fn known_queues(&self) -> StoreResult<Vec<String>> {
        Ok(self
            .backend
            .index_range(QUEUES_INDEX, f64::MIN, f64::MAX, 10_000)
            .await?
            .into_iter()
            .map(|(q, _)| q)
            .collect())
    }

    /// Conversation ids waiting in `queue`, in claim order.
    pub async fn waiting(&self, queue: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .backend
            .index_range(&waiting_index(queue), f64::MIN, f64::MAX, 100_000)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// 1-based position of a waiting conversation in its queue.
    pub async fn queue_position(&self, conv: &Conversation) -> StoreResult<Option<u64>> {
        let Some(q) = &conv.queue else {
            return Ok(None);
        };
        Ok(self
            .backend
            .index_rank(&waiting_index(q), &conv.id)
            .await?
            .map(|r| r + 1))
    }

    /// Conversation ids in `state`, most recently changed last.
    pub async fn conversations_in(&self, state: State, limit: usize) -> StoreResult<Vec<String>> {
        Ok(self
            .sharded_range(&state_index(state), f64::MIN, f64::MAX, limit)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Conversation ids an agent holds.
    pub async fn agent_conversations(&self, agent: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .backend
            .index_range(&active_index(agent), f64::MIN, f64::MAX, 10_000)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Resolved case ids with resolution time in `[from_ms, to_ms]`.
    pub async fn resolved_between(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<String>> {
        Ok(self
            .sharded_range(RESOLVED_INDEX, from_ms as f64, to_ms as f64, 1_000_000)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Resolved cases with resolution time in `[from_ms, to_ms]`, oldest
    /// first, at most `limit`, with their resolution times.
    pub async fn resolved_page(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<(String, i64)>> {
        Ok(self
            .sharded_range(RESOLVED_INDEX, from_ms as f64, to_ms as f64, limit)
            .await?
            .into_iter()
            .map(|(id, at)| (id, at as i64))
            .collect())
    }

    /// Deletes a case's transcript; true when it had one.
    pub async fn delete_transcript(&self, id: &str) -> StoreResult<bool> {
        self.backend.list_delete(&transcript_key(id)).await
    }

    /// Deletes a resolved case (retention): the conversation and its place
    /// in the listings, and its id in its contact's case list. Its
    /// transcript, files and survey are the caller's to delete first. False
    /// when there is no such case; an open case is left alone (error).
    pub async fn delete_case(&self, id: &str) -> Result<bool, ConversationError> {
        let Some(conv) = self.conversation(id).await? else {
            self.sharded_remove(RESOLVED_INDEX, id).await?;
            self.sharded_remove(OPENED_INDEX, id).await?;
            self.sharded_remove(&state_index(State::Resolved), id)
                .await?;
            return Ok(false);
        };
        if conv.state != State::Resolved {
            return Err(IllegalTransition {
                from: conv.state.as_str(),
                transition: "delete",
            }
            .into());
        }
        self.update_existing_contact(conv.channel, &conv.contact_id, |c| {
            c.cases.retain(|x| x != id);
        })
        .await?;
        self.backend.doc_delete(&conversation_key(id)).await?;
        self.sharded_remove(&state_index(State::Resolved), id)
            .await?;
        self.sharded_remove(RESOLVED_INDEX, id).await?;
        self.sharded_remove(OPENED_INDEX, id).await?;
        self.forget_search(id).await?;
        Ok(true)
    }

    /// Appends to a conversation's transcript.
    pub async fn append_transcript(&self, id: &str, entry: &TranscriptEntry) -> StoreResult<()> {
        let bytes = serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt {
            key: transcript_key(id),
            reason: e.to_string(),
        })?;
        self.backend.list_push(&transcript_key(id), &bytes).await?;
        Ok(())
    }

    /// Appends a customer's message to a transcript once, however often the
    /// event is handled again; true when it was appended now. A message with
    /// files is remembered per file (an Instagram message with three photos
    /// arrives as three events with one message id, and all three are shown).
    pub async fn transcribe_customer_message(
        &self,
        id: &str,
        message_id: &str,
        text: String,
        attachments: &[String],
    ) -> StoreResult<bool> {
        let digest = super::id_digest(message_id);
        let seen = match attachments.first() {
            None => format!("transcribed:{digest}"),
            Some(first) => format!("transcribed:{digest}:{first}"),
        };
        if !self.remember(&seen, super::DEDUPE_TTL).await? {
            return Ok(false);
        }
        self.append_transcript(
            id,
            &TranscriptEntry {
                at_ms: self.now_ms(),
                speaker: Speaker::Customer,
                text,
                message_id: Some(message_id.to_string()),
                attachments: attachments.to_vec(),
                event: None,
            },
        )
        .await?;
        Ok(true)
    }

    /// Re-files a waiting conversation in its queue after its priority
    /// changed. A claim may finish at any moment; if the conversation left
    /// the queue meanwhile, the entry just re-added is taken out again so the
    /// queue shows no ghost.
    pub async fn refile_waiting(&self, conv: &Conversation) -> StoreResult<()> {
        let Some(q) = &conv.queue else {
            return Ok(());
        };
        let index = waiting_index(q);
        self.backend
            .index_put(&index, &conv.id, conv.queue_score())
            .await?;
        if let Some(now) = self.conversation(&conv.id).await?
            && (now.state != State::Queued || now.queue != conv.queue)
        {
            self.backend.index_remove(&index, &conv.id).await?;
        }
        Ok(())
    }

    /// How many conversations wait in a queue (O(1)).
    pub async fn waiting_count(&self, queue: &str) -> StoreResult<u64> {
        self.backend.index_len(&waiting_index(queue)).await
    }

    /// Records a system line in a transcript as free text (prefer
    /// [`Store::system_line`], which consoles can translate).
    pub async fn note(&self, id: &str, text: impl Into<String>) -> StoreResult<()> {
        self.append_transcript(
            id,
            &TranscriptEntry {
                at_ms: self.now_ms(),
                speaker: Speaker::System,
                text: text.into(),
                message_id: None,
                attachments: Vec::new(),
                event: None,
            },
        )
        .await
    }

    /// Records something that happened to the case (handoff, claim,
    /// reaction …) in its transcript.
    pub async fn system_line(&self, id: &str, event: SystemEvent) -> StoreResult<()> {
        self.append_transcript(
            id,
            &TranscriptEntry {
                at_ms: self.now_ms(),
                speaker: Speaker::System,
                text: event.text(),
                message_id: None,
                attachments: Vec::new(),
                event: Some(event),
            },
        )
        .await
    }

    /// The whole transcript of a conversation.
    pub async fn transcript(&self, id: &str) -> StoreResult<Vec<TranscriptEntry>> {
        let key = transcript_key(id);
        let items = self.backend.list_range(&key, 0, 100_000).await?;
        items
            .iter()
            .map(|b| {
                serde_json::from_slice(b).map_err(|e| StoreError::Corrupt {
                    key: key.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The last `n` entries of a transcript (previews: a search result or a
    /// list item costs the same however long the conversation is).
    pub async fn transcript_tail(&self, id: &str, n: u64) -> StoreResult<Vec<TranscriptEntry>> {
        let key = transcript_key(id);
        let len = self.backend.list_len(&key).await?;
        let items = self
            .backend
            .list_range(&key, len.saturating_sub(n), n)
            .await?;
        items
            .iter()
            .map(|b| {
                serde_json::from_slice(b).map_err(|e| StoreError::Corrupt {
                    key: key.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Storage key of a contact, exposed for the few callers that need CAS on it.
    pub fn contact_key(channel: Channel, external_id: &str) -> String {
        contact_key(channel, external_id)
    }
}
