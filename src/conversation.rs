//! Conversations (cases) and the one state machine that decides who owns them.
//!
//! A conversation is one case of one contact on one channel. It is owned by
//! exactly one of the bot, the queue or an agent. Ownership changes only through
//! [`Conversation::apply`], which checks the transition against [`TRANSITIONS`];
//! the store applies it with compare-and-swap, so with several processes and
//! retried webhooks a transition happens once or fails loudly — never silently.
//! This module is pure: no I/O, no clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::channels::Channel;

/// Who owns a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The bot answers.
    Bot,
    /// Waiting in an agent queue; the bot stays quiet except for opt-outs.
    Queued,
    /// An agent owns it; the bot is silent.
    Assigned,
    /// Closed; the next customer message opens a new case.
    Resolved,
}

impl State {
    /// Lowercase name (API, indexes).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Bot => "bot",
            State::Queued => "queued",
            State::Assigned => "assigned",
            State::Resolved => "resolved",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<State> {
        [State::Bot, State::Queued, State::Assigned, State::Resolved]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// A requested change of owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transition {
    /// The bot hands the customer to a queue.
    Handoff {
        /// Target queue.
        queue: String,
        /// Queue priority (higher is served first).
        priority: i32,
        /// Why: the intent, `fallback`, or `survey:<case>`.
        reason: String,
    },
    /// An agent takes the conversation from the queue.
    Claim {
        /// The agent.
        agent: String,
    },
    /// The agent gives it back to its queue.
    Release,
    /// The agent did not reply in time; back to the front of its queue.
    ReplyTimeout,
    /// Move to another queue.
    TransferToQueue {
        /// Target queue.
        queue: String,
    },
    /// Give it to a named agent.
    TransferToAgent {
        /// Target agent.
        agent: String,
    },
    /// Close the case.
    Resolve {
        /// `bot`, an agent id, or `customer`.
        by: String,
    },
}

impl Transition {
    /// Short name for errors and events.
    pub fn name(&self) -> &'static str {
        match self {
            Transition::Handoff { .. } => "handoff",
            Transition::Claim { .. } => "claim",
            Transition::Release => "release",
            Transition::ReplyTimeout => "reply_timeout",
            Transition::TransferToQueue { .. } => "transfer_to_queue",
            Transition::TransferToAgent { .. } => "transfer_to_agent",
            Transition::Resolve { .. } => "resolve",
        }
    }
}

/// What an erased contact's id is replaced with where a record must stay
/// countable (cases, surveys): such a case belongs to nobody.
pub const ERASED_CONTACT: &str = "(erased)";

/// Every legal `(from, transition) → to`; anything else is an [`IllegalTransition`].
pub const TRANSITIONS: &[(State, &str, State)] = &[
    (State::Bot, "handoff", State::Queued),
    (State::Bot, "resolve", State::Resolved),
    (State::Queued, "claim", State::Assigned),
    (State::Queued, "transfer_to_queue", State::Queued),
    (State::Queued, "transfer_to_agent", State::Assigned),
    (State::Queued, "resolve", State::Resolved),
    (State::Assigned, "release", State::Queued),
    (State::Assigned, "reply_timeout", State::Queued),
    (State::Assigned, "transfer_to_queue", State::Queued),
    (State::Assigned, "transfer_to_agent", State::Assigned),
    (State::Assigned, "resolve", State::Resolved),
];

/// A transition that is not allowed from the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {transition} a conversation that is {from}")]
pub struct IllegalTransition {
    /// The state it was in.
    pub from: &'static str,
    /// The transition asked for.
    pub transition: &'static str,
}

/// One case of one contact on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Case id, readable enough to tell a customer (`20261122-7KQ2PX`).
    pub id: String,
    /// The channel.
    pub channel: Channel,
    /// The contact's id on that channel.
    pub contact_id: String,
    /// Current owner.
    pub state: State,
    /// Queue it waits in or came from.
    #[serde(default)]
    pub queue: Option<String>,
    /// Queue priority (higher first).
    #[serde(default)]
    pub priority: i32,
    /// Assigned agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Opened, Unix ms.
    pub opened_ms: i64,
    /// First handed off to a queue.
    #[serde(default)]
    pub handed_off_ms: Option<i64>,
    /// Entered the queue the last time (claim order within a priority).
    #[serde(default)]
    pub queued_ms: Option<i64>,
    /// Assigned the last time.
    #[serde(default)]
    pub assigned_ms: Option<i64>,
    /// First agent reply after the handoff.
    #[serde(default)]
    pub first_agent_reply_ms: Option<i64>,
    /// Last agent reply.
    #[serde(default)]
    pub last_agent_reply_ms: Option<i64>,
    /// Last customer message.
    #[serde(default)]
    pub last_customer_ms: Option<i64>,
    /// Resolved.
    #[serde(default)]
    pub resolved_ms: Option<i64>,
    /// Who resolved it.
    #[serde(default)]
    pub resolved_by: Option<String>,
    /// Whether a human ever owned it.
    #[serde(default)]
    pub reached_human: bool,
    /// Bot fallbacks in a row (reset by any matched intent).
    #[serde(default)]
    pub consecutive_fallbacks: u32,
    /// Bot replies so far (rotates reply variants).
    #[serde(default)]
    pub bot_turns: u64,
    /// Customer messages the assigned agent has not answered yet.
    #[serde(default)]
    pub unread: u32,
    /// Language of the customer (`id` or `en`).
    #[serde(default = "default_language")]
    pub language: String,
    /// The intent that caused the handoff, if any.
    #[serde(default)]
    pub handoff_intent: Option<String>,
    /// Last time the waiting customer was told their position.
    #[serde(default)]
    pub last_position_update_ms: Option<i64>,
    /// The business number (WhatsApp `phone_number_id`) or account (Instagram
    /// id) the customer last wrote to: replies go out from it. `None` for
    /// cases older than multi-number support (the channel's default sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Set when a survey's low score reopened this as a recovery case.
    #[serde(default)]
    pub recovery_score: Option<u8>,
    /// Numbers the customer gave in this case, by name without the `case.`
    /// prefix of the reply variables (`order_id`, `tracking_number`,
    /// `courier`, `ticket_id`, `phone`): agents see them, replies use them,
    /// and nobody asks for them again. The latest given wins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entities: BTreeMap<String, String>,
    /// The clarifying question the bot asked last and the customer has not
    /// answered yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<OpenQuestion>,
    /// Times it was transferred (to a queue or an agent).
    #[serde(default)]
    pub transfers: u32,
    /// Set while the agent waits on the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snooze: Option<Snooze>,
    /// When the customer came back within `[cases] reopen_window` after this
    /// case was resolved (reports count it as reopened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopened_ms: Option<i64>,
    /// The resolved case this one reopens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopen_of: Option<String>,
}

/// A clarifying question waiting for its answer: what was offered, so that a
/// tapped button or a typed answer ("1", "ya", a button's title) continues
/// the conversation with that choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenQuestion {
    /// Asked, Unix ms.
    pub asked_ms: i64,
    /// Whether it asks to confirm an opt-out (typed "ya"/"tidak" answer it).
    #[serde(default)]
    pub confirms_opt_out: bool,
    /// The buttons offered, in order.
    pub choices: Vec<Choice>,
}

/// One offered answer of an [`OpenQuestion`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// The button's payload (`intent:NAME`, or `optout:no`).
    pub payload: String,
    /// The label the customer saw.
    pub title: String,
}

/// A snoozed conversation: set aside until a time or the customer's next
/// message, whichever comes first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snooze {
    /// Snoozed at, Unix ms.
    pub at_ms: i64,
    /// Wakes at this time; `None` only on the customer's next message.
    #[serde(default)]
    pub until_ms: Option<i64>,
    /// Who snoozed it.
    pub by: String,
}

fn default_language() -> String {
    "id".into()
}

impl Conversation {
    /// Whether its contact was erased (the case is kept, anonymous, for
    /// reports).
    pub fn is_erased(&self) -> bool {
        self.contact_id == ERASED_CONTACT
    }

    /// A new bot-owned case.
    pub fn open(id: String, channel: Channel, contact_id: String, now_ms: i64) -> Self {
        Self {
            id,
            channel,
            contact_id,
            state: State::Bot,
            queue: None,
            priority: 0,
            agent: None,
            opened_ms: now_ms,
            handed_off_ms: None,
            queued_ms: None,
            assigned_ms: None,
            first_agent_reply_ms: None,
            last_agent_reply_ms: None,
            last_customer_ms: None,
            resolved_ms: None,
            resolved_by: None,
            reached_human: false,
            consecutive_fallbacks: 0,
            bot_turns: 0,
            unread: 0,
            language: default_language(),
            handoff_intent: None,
            last_position_update_ms: None,
            recovery_score: None,
            entities: BTreeMap::new(),
            question: None,
            number: None,
            transfers: 0,
            snooze: None,
            reopened_ms: None,
            reopen_of: None,
        }
    }

    /// The state `transition` leads to from the current state, per [`TRANSITIONS`].
    pub fn next_state(&self, transition: &Transition) -> Result<State, IllegalTransition> {
        TRANSITIONS
            .iter()
            .find(|(from, name, _)| *from == self.state && *name == transition.name())
            .map(|(_, _, to)| *to)
            .ok_or(IllegalTransition {
                from: self.state.as_str(),
                transition: transition.name(),
            })
    }

    /// Applies a transition, updating owner fields and timestamps.
    pub fn apply(&mut self, transition: &Transition, now_ms: i64) -> Result<(), IllegalTransition> {
        let to = self.next_state(transition)?;
        match transition {
            Transition::Handoff {
                queue,
                priority,
                reason,
            } => {
                self.queue = Some(queue.clone());
                self.priority = *priority;
                self.handoff_intent = Some(reason.clone());
                // The handoff message itself tells the customer their position.
                self.last_position_update_ms = Some(now_ms);
                self.handed_off_ms.get_or_insert(now_ms);
                self.queued_ms = Some(now_ms);
            }
            Transition::Claim { agent } | Transition::TransferToAgent { agent } => {
                self.agent = Some(agent.clone());
                self.assigned_ms = Some(now_ms);
                self.reached_human = true;
            }
            Transition::Release => {
                self.agent = None;
                self.queued_ms = Some(now_ms);
            }
            Transition::ReplyTimeout => {
                self.agent = None;
                // Keep the original queue time so it goes back to the front.
                self.queued_ms = Some(self.handed_off_ms.unwrap_or(now_ms));
            }
            Transition::TransferToQueue { queue } => {
                self.agent = None;
                self.queue = Some(queue.clone());
                self.queued_ms = Some(now_ms);
            }
            Transition::Resolve { by } => {
                self.resolved_ms = Some(now_ms);
                self.resolved_by = Some(by.clone());
            }
        }
        if matches!(
            transition,
            Transition::TransferToQueue { .. } | Transition::TransferToAgent { .. }
        ) {
            self.transfers += 1;
        }
        // A snooze belongs to the holder: any change of owner ends it.
        self.snooze = None;
        self.state = to;
        Ok(())
    }

    /// Score in a waiting queue: higher priority first, then earlier queue time.
    pub fn queue_score(&self) -> f64 {
        let queued = self.queued_ms.unwrap_or(self.opened_ms) as f64;
        -(self.priority as f64) * 1e13 + queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(state: State) -> Conversation {
        let mut c = Conversation::open("c1".into(), Channel::WhatsApp, "628".into(), 0);
        c.state = state;
        c
    }

    fn all_transitions() -> Vec<Transition> {
        vec![
            Transition::Handoff {
                queue: "general".into(),
                priority: 0,
                reason: "human_agent".into(),
            },
            Transition::Claim { agent: "a".into() },
            Transition::Release,
            Transition::ReplyTimeout,
            Transition::TransferToQueue { queue: "q2".into() },
            Transition::TransferToAgent { agent: "b".into() },
            Transition::Resolve { by: "a".into() },
        ]
    }

    /// Every (state, transition) pair: legal ones land where the table says,
    /// illegal ones are errors and leave the conversation untouched.
    #[test]
    fn every_transition_follows_the_table() {
        use State::*;
        let expected: &[(State, &str, Option<State>)] = &[
            (Bot, "handoff", Some(Queued)),
            (Bot, "claim", None),
            (Bot, "release", None),
            (Bot, "reply_timeout", None),
            (Bot, "transfer_to_queue", None),
            (Bot, "transfer_to_agent", None),
            (Bot, "resolve", Some(Resolved)),
            (Queued, "handoff", None),
            (Queued, "claim", Some(Assigned)),
            (Queued, "release", None),
            (Queued, "reply_timeout", None),
            (Queued, "transfer_to_queue", Some(Queued)),
            (Queued, "transfer_to_agent", Some(Assigned)),
            (Queued, "resolve", Some(Resolved)),
            (Assigned, "handoff", None),
            (Assigned, "claim", None),
            (Assigned, "release", Some(Queued)),
            (Assigned, "reply_timeout", Some(Queued)),
            (Assigned, "transfer_to_queue", Some(Queued)),
            (Assigned, "transfer_to_agent", Some(Assigned)),
            (Assigned, "resolve", Some(Resolved)),
            (Resolved, "handoff", None),
            (Resolved, "claim", None),
            (Resolved, "release", None),
            (Resolved, "reply_timeout", None),
            (Resolved, "transfer_to_queue", None),
            (Resolved, "transfer_to_agent", None),
            (Resolved, "resolve", None),
        ];
        assert_eq!(expected.len(), 4 * all_transitions().len());
        for (from, name, to) in expected {
            let t = all_transitions()
                .into_iter()
                .find(|t| t.name() == *name)
                .unwrap();
            let mut c = conv(*from);
            let before = c.clone();
            match (c.apply(&t, 100), to) {
                (Ok(()), Some(to)) => assert_eq!(c.state, *to, "{from:?} {name}"),
                (Err(e), None) => {
                    assert_eq!(c, before, "{from:?} {name} must not change anything");
                    assert_eq!(e.transition, *name);
                }
                (r, to) => panic!("{from:?} {name}: got {r:?}, expected {to:?}"),
            }
        }
    }

    #[test]
    fn owner_fields_follow_transitions() {
        let mut c = conv(State::Bot);
        c.apply(
            &Transition::Handoff {
                queue: "complaints".into(),
                priority: 2,
                reason: "complaint".into(),
            },
            10,
        )
        .unwrap();
        assert_eq!(
            (c.handoff_intent.as_deref(), c.last_position_update_ms),
            (Some("complaint"), Some(10)),
            "the reason and the position told are part of the handoff"
        );
        assert_eq!(
            (c.queue.as_deref(), c.priority, c.queued_ms),
            (Some("complaints"), 2, Some(10))
        );
        c.apply(
            &Transition::Claim {
                agent: "siti".into(),
            },
            20,
        )
        .unwrap();
        assert_eq!((c.agent.as_deref(), c.reached_human), (Some("siti"), true));
        c.apply(&Transition::ReplyTimeout, 30).unwrap();
        assert_eq!(c.agent, None);
        assert_eq!(
            c.queued_ms,
            Some(10),
            "a timed-out case keeps its place at the front"
        );
        c.apply(
            &Transition::Claim {
                agent: "budi".into(),
            },
            40,
        )
        .unwrap();
        c.apply(&Transition::Resolve { by: "budi".into() }, 50)
            .unwrap();
        assert_eq!((c.state, c.resolved_ms), (State::Resolved, Some(50)));
        assert_eq!(c.transfers, 0, "claims and timeouts are not transfers");
    }

    #[test]
    fn transfers_are_counted_and_every_change_of_owner_ends_a_snooze() {
        let mut c = conv(State::Assigned);
        c.agent = Some("siti".into());
        let snooze = Snooze {
            at_ms: 1,
            until_ms: None,
            by: "siti".into(),
        };
        c.snooze = Some(snooze.clone());
        c.apply(&Transition::TransferToAgent { agent: "b".into() }, 10)
            .unwrap();
        assert_eq!((c.transfers, c.snooze.as_ref()), (1, None));
        c.apply(&Transition::TransferToQueue { queue: "q".into() }, 20)
            .unwrap();
        assert_eq!(c.transfers, 2);
        c.apply(&Transition::Claim { agent: "a".into() }, 30)
            .unwrap();
        c.snooze = Some(snooze);
        c.apply(&Transition::Release, 40).unwrap();
        assert_eq!((c.transfers, c.snooze.as_ref()), (2, None));
    }

    #[test]
    fn higher_priority_scores_lower() {
        let mut a = conv(State::Queued);
        a.queued_ms = Some(1_000);
        let mut b = a.clone();
        b.priority = 1;
        b.queued_ms = Some(9_000_000);
        assert!(b.queue_score() < a.queue_score());
    }
}
