//! Outbound message records: what we sent (or tried to), and how far it got.
//!
//! A record is written before the message is handed to the outbox, and its
//! delivery state only moves forward (pending → sent → delivered → read, or to
//! a terminal failure), whatever order status webhooks arrive in.

use serde::{Deserialize, Serialize};

use super::slots::{broadcast_tag, tagged};
use super::{Store, StoreError, StoreResult};
use crate::channels::{DeliveryState, OutboundMessage};

/// Where an outbound message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundState {
    /// Stored, waiting to be sent.
    Pending,
    /// Accepted by the platform.
    Sent,
    /// Delivered to the device.
    Delivered,
    /// Read.
    Read,
    /// Rejected or undeliverable (terminal).
    Failed,
    /// Not sent: the channel has no access token (local trial).
    DryRun,
    /// Not sent: the 24-hour window was closed.
    SkippedWindow,
    /// Not sent on purpose (broadcasts: opted out, outside the window …); the
    /// reason is in `error_title`.
    Skipped,
}

impl OutboundState {
    /// Progress rank; a record never moves to a lower rank.
    fn rank(self) -> u8 {
        match self {
            OutboundState::Pending => 0,
            OutboundState::Sent => 1,
            OutboundState::Delivered => 2,
            OutboundState::Read => 3,
            OutboundState::Failed
            | OutboundState::DryRun
            | OutboundState::SkippedWindow
            | OutboundState::Skipped => 4,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundState::Pending => "pending",
            OutboundState::Sent => "sent",
            OutboundState::Delivered => "delivered",
            OutboundState::Read => "read",
            OutboundState::Failed => "failed",
            OutboundState::DryRun => "dry_run",
            OutboundState::SkippedWindow => "skipped_window",
            OutboundState::Skipped => "skipped",
        }
    }

    /// Whether `next` is progress from `self`. A failure after `sent` is accepted
    /// (the platform may accept and then fail), but nothing leaves `read` or a
    /// terminal state.
    pub fn can_become(self, next: OutboundState) -> bool {
        if self == next {
            return false;
        }
        match (self, next) {
            (OutboundState::Read, _) => false,
            (s, _) if s.rank() == 4 => false,
            (_, OutboundState::Failed) => true,
            (s, n) => n.rank() > s.rank(),
        }
    }
}

impl From<DeliveryState> for OutboundState {
    fn from(s: DeliveryState) -> Self {
        match s {
            DeliveryState::Sent => OutboundState::Sent,
            DeliveryState::Delivered => OutboundState::Delivered,
            DeliveryState::Read => OutboundState::Read,
            DeliveryState::Failed => OutboundState::Failed,
        }
    }
}

/// Who or what sent an outbound message, and so which delivery promise it
/// gets. Stored and shown as `bot`, `agent:<id>`, `system`, `survey:<case>`,
/// `broadcast:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A bot reply in a conversation.
    Bot,
    /// An agent's message.
    Agent(String),
    /// A notice from Balas itself (reassurance, queue position).
    System,
    /// A satisfaction survey question for a case.
    Survey(String),
    /// A broadcast campaign.
    Broadcast(String),
    /// Anything else (kept as written).
    Other(String),
}

impl Origin {
    /// Parses the stored form; unknown forms are kept as [`Origin::Other`].
    pub fn parse(s: &str) -> Origin {
        match s.split_once(':') {
            None if s == "bot" => Origin::Bot,
            None if s == "system" => Origin::System,
            Some(("agent", id)) => Origin::Agent(id.to_string()),
            Some(("survey", case)) => Origin::Survey(case.to_string()),
            Some(("broadcast", id)) => Origin::Broadcast(id.to_string()),
            _ => Origin::Other(s.to_string()),
        }
    }

    /// The broadcast a message belongs to.
    pub fn broadcast(&self) -> Option<&str> {
        match self {
            Origin::Broadcast(id) => Some(id),
            _ => None,
        }
    }

    /// Whether the message must reach the customer at most once (campaigns:
    /// broadcasts, surveys) rather than at least once (conversation messages).
    ///
    /// The Graph API has no idempotency key, so after a send whose outcome is
    /// unknown (a crash mid-send, a timeout after the request was written)
    /// nobody knows whether the customer got it. For conversation messages
    /// silence is the worse failure: a customer who asked must get an answer,
    /// even if, rarely, twice. For campaigns a duplicate is the worse failure:
    /// they are marked failed "outcome unknown" instead, visible per recipient.
    pub fn at_most_once(&self) -> bool {
        matches!(self, Origin::Survey(_) | Origin::Broadcast(_))
    }

    /// Whether the customer's opt-out stops it (everything not answering them).
    pub fn stopped_by_opt_out(&self) -> bool {
        self.at_most_once()
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Bot => f.write_str("bot"),
            Origin::System => f.write_str("system"),
            Origin::Agent(id) => write!(f, "agent:{id}"),
            Origin::Survey(case) => write!(f, "survey:{case}"),
            Origin::Broadcast(id) => write!(f, "broadcast:{id}"),
            Origin::Other(s) => f.write_str(s),
        }
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Origin::parse(&s))
    }
}

/// One outbound message and its fate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundRecord {
    /// Our id (the outbox job id too).
    pub id: String,
    /// What to send.
    pub message: OutboundMessage,
    /// Conversation it belongs to, if any.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// Who sent it.
    pub origin: Origin,
    /// Delivery state.
    pub state: OutboundState,
    /// The platform's message id once sent.
    #[serde(default)]
    pub platform_id: Option<String>,
    /// Error code of a failure.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Error title of a failure.
    #[serde(default)]
    pub error_title: Option<String>,
    /// Send attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Set just before a send and cleared with its result. Found set when a job is
    /// claimed again, it means a process died mid-send: the message may have gone
    /// out, so it is not sent again (see [`Store::begin_send`]).
    #[serde(default)]
    pub in_flight: bool,
    /// Created, Unix ms.
    pub created_ms: i64,
    /// Last change, Unix ms.
    pub updated_ms: i64,
}

/// What [`Store::begin_send`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStart {
    /// A fresh attempt: send.
    Go,
    /// The last attempt was cut off by a crash; sending again as asked.
    Resume,
    /// The last attempt was cut off by a crash; not sending again.
    Interrupted,
    /// Already sent, failed or gone: nothing to do.
    NotPending,
}

/// Every state, for counting.
pub const ALL_STATES: [OutboundState; 8] = [
    OutboundState::Pending,
    OutboundState::Sent,
    OutboundState::Delivered,
    OutboundState::Read,
    OutboundState::Failed,
    OutboundState::DryRun,
    OutboundState::SkippedWindow,
    OutboundState::Skipped,
];

/// Origins whose records keep per-state counters: broadcasts, whose progress
/// is read live and must not need a scan of every recipient.
fn counted_group(origin: &Origin) -> Option<String> {
    origin.broadcast().map(|_| origin.to_string())
}

/// A counter of a group: a broadcast's counters live in its slot, with its
/// records, so a record and its counts change in one atomic step.
fn state_counter(group: &str, state: OutboundState) -> String {
    let name = format!("outcount:{group}:{}", state.as_str());
    match Origin::parse(group).broadcast() {
        Some(broadcast) => tagged(&broadcast_tag(broadcast), &name),
        None => name,
    }
}

/// The id of the outbound record of one broadcast recipient: deterministic,
/// so a recipient is messaged at most once however often the walk repeats,
/// and placed by the store with the broadcast's counters.
pub fn broadcast_record_id(broadcast: &str, to: &str) -> String {
    format!("bc:{broadcast}:{to}")
}

/// The broadcast a record id from [`broadcast_record_id`] belongs to.
fn broadcast_of_record(id: &str) -> Option<&str> {
    let (broadcast, _to) = id.strip_prefix("bc:")?.rsplit_once(':')?;
    Some(broadcast)
}

impl OutboundRecord {
    /// A record of a message about to be handed to the outbox.
    pub fn pending(
        id: String,
        message: OutboundMessage,
        conversation_id: Option<String>,
        origin: Origin,
        now_ms: i64,
    ) -> Self {
        Self {
            id,
            message,
            conversation_id,
            origin,
            state: OutboundState::Pending,
            platform_id: None,
            error_code: None,
            error_title: None,
            attempts: 0,
            in_flight: false,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }
}

fn record_key(id: &str) -> String {
    let name = format!("out:{id}");
    match broadcast_of_record(id) {
        Some(broadcast) => tagged(&broadcast_tag(broadcast), &name),
        None => name,
    }
}

fn platform_key(platform_id: &str) -> String {
    format!("outpid:{}", super::id_digest(platform_id))
}

/// The key used before platform ids were digested; still read, so statuses
/// of messages sent before an upgrade find their record.
fn legacy_platform_key(platform_id: &str) -> String {
    format!("outpid:{platform_id}")
}

impl Store {
    /// Stores a new record (before the message is sent); false when a record
    /// with that id already exists (nothing changed). A broadcast's counts
    /// move in the same atomic write.
    pub async fn create_outbound(&self, record: &OutboundRecord) -> StoreResult<bool> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            key: record_key(&record.id),
            reason: e.to_string(),
        })?;
        if let Some(broadcast) = record.origin.broadcast()
            && broadcast_of_record(&record.id) != Some(broadcast)
        {
            return Err(StoreError::Unavailable(format!(
                "invalid argument: the record {} of broadcast {broadcast} must have an id from broadcast_record_id",
                record.id
            )));
        }
        let counters: Vec<(String, i64)> = counted_group(&record.origin)
            .map(|group| vec![(state_counter(&group, record.state), 1)])
            .unwrap_or_default();
        Ok(self
            .backend
            .doc_put_counted(&record_key(&record.id), 0, &bytes, &counters)
            .await?
            .is_some())
    }

    /// Reads a record.
    pub async fn outbound(&self, id: &str) -> StoreResult<Option<OutboundRecord>> {
        self.get_json(&record_key(id)).await
    }

    /// Reads several records.
    pub async fn outbound_many(&self, ids: &[String]) -> StoreResult<Vec<OutboundRecord>> {
        let keys: Vec<String> = ids.iter().map(|id| record_key(id)).collect();
        self.get_json_many(&keys).await
    }

    /// The records of our messages in a transcript (their delivery states),
    /// by message id, read in one call.
    pub async fn records_of(
        &self,
        transcript: &[super::TranscriptEntry],
    ) -> StoreResult<std::collections::BTreeMap<String, OutboundRecord>> {
        let ours: Vec<String> = transcript
            .iter()
            .filter(|e| !matches!(e.speaker, super::Speaker::Customer | super::Speaker::System))
            .filter_map(|e| e.message_id.clone())
            .collect();
        Ok(self
            .outbound_many(&ours)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect())
    }

    /// Moves a record to `state` if that is progress; returns the record when it
    /// changed. `edit` may set more fields at the same time. Records of
    /// broadcasts move their per-state counters in the same atomic write.
    pub async fn advance_outbound(
        &self,
        id: &str,
        state: OutboundState,
        mut edit: impl FnMut(&mut OutboundRecord),
    ) -> StoreResult<Option<OutboundRecord>> {
        let now = self.now_ms();
        let record = self
            .update_json_counted::<OutboundRecord, _>(&record_key(id), |r| {
                let mut r = r?;
                if !r.state.can_become(state) {
                    return None;
                }
                let previous = r.state;
                r.state = state;
                r.updated_ms = now;
                r.in_flight = false;
                edit(&mut r);
                let counters = counted_group(&r.origin)
                    .map(|group| {
                        vec![
                            (state_counter(&group, previous), -1),
                            (state_counter(&group, r.state), 1),
                        ]
                    })
                    .unwrap_or_default();
                Some((r, counters))
            })
            .await?;
        if let Some(r) = &record
            && let Some(pid) = &r.platform_id
            && r.state == OutboundState::Sent
        {
            self.put_json(&platform_key(pid), &r.id).await?;
        }
        Ok(record)
    }

    /// Marks a send as started (attempts + 1, in flight) just before the HTTP
    /// call, and says whether a previous attempt was cut off mid-send by a crash
    /// (the in-flight mark was still set). Such a message may or may not have
    /// reached the platform, which offers no idempotency key: with
    /// `resend_interrupted` it is sent again anyway ([`SendStart::Resume`]),
    /// otherwise it is left alone ([`SendStart::Interrupted`]).
    pub async fn begin_send(&self, id: &str, resend_interrupted: bool) -> StoreResult<SendStart> {
        let mut start = SendStart::NotPending;
        self.update_json::<OutboundRecord, StoreError, _>(&record_key(id), |r| {
            start = SendStart::NotPending;
            let Some(mut r) = r else { return Ok(None) };
            if r.state != OutboundState::Pending {
                return Ok(None);
            }
            start = match (r.in_flight, resend_interrupted) {
                (false, _) => SendStart::Go,
                (true, true) => SendStart::Resume,
                (true, false) => {
                    start = SendStart::Interrupted;
                    return Ok(None);
                }
            };
            r.attempts += 1;
            r.in_flight = true;
            Ok(Some(r))
        })
        .await?;
        Ok(start)
    }

    /// Clears the in-flight mark after a send that will be retried.
    pub async fn end_send_attempt(&self, id: &str) -> StoreResult<()> {
        self.update_json::<OutboundRecord, StoreError, _>(&record_key(id), |r| {
            Ok(r.map(|mut r| {
                r.in_flight = false;
                r
            }))
        })
        .await
        .map(|_| ())
    }

    /// Per-state counts of a counted origin group (e.g. `broadcast:<id>`).
    pub async fn outbound_counts(&self, group: &str) -> StoreResult<Vec<(OutboundState, i64)>> {
        let mut out = Vec::new();
        for state in ALL_STATES {
            out.push((
                state,
                self.backend
                    .counter_get(&state_counter(group, state))
                    .await?,
            ));
        }
        Ok(out)
    }

    /// True the first time (within [`super::DEDUPE_TTL`]) a read receipt
    /// `id` is sent (an agent's typing indicator). Receipts keep no record
    /// (see [`crate::outbox::Outbox::mark_read`]), so this remembered digest is
    /// what keeps one from going out twice; it holds no message id, so no
    /// customer's number.
    pub async fn first_receipt(&self, id: &str) -> StoreResult<bool> {
        self.remember(
            &format!("receipt:{}", super::id_digest(id)),
            super::DEDUPE_TTL,
        )
        .await
    }

    /// Deletes a record and its platform-id lookup (erasure, retention);
    /// true when it existed. Counts kept about it (a broadcast's) stay.
    pub async fn delete_outbound(&self, id: &str) -> StoreResult<bool> {
        let Some(record) = self.outbound(id).await? else {
            return self.backend.doc_delete(&record_key(id)).await;
        };
        if let Some(pid) = &record.platform_id {
            self.backend.doc_delete(&platform_key(pid)).await?;
            self.backend.doc_delete(&legacy_platform_key(pid)).await?;
        }
        self.backend.doc_delete(&record_key(id)).await
    }

    /// Our record id for a platform message id.
    pub async fn outbound_by_platform_id(&self, platform_id: &str) -> StoreResult<Option<String>> {
        match self.get_json(&platform_key(platform_id)).await? {
            Some(id) => Ok(Some(id)),
            None => self.get_json(&legacy_platform_key(platform_id)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OutboundState::*;

    #[test]
    fn states_only_move_forward() {
        let cases = [
            (Pending, Sent, true),
            (Sent, Delivered, true),
            (Delivered, Read, true),
            (Sent, Read, true),
            (Read, Delivered, false),
            (Delivered, Sent, false),
            (Sent, Failed, true),
            (Delivered, Failed, true),
            (Read, Failed, false),
            (Failed, Delivered, false),
            (Failed, Read, false),
            (DryRun, Sent, false),
            (Sent, Sent, false),
        ];
        for (from, to, ok) in cases {
            assert_eq!(from.can_become(to), ok, "{from:?} -> {to:?}");
        }
    }
}
