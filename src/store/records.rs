//! Outbound message records: what we sent (or tried to), and how far it got.
//!
//! A record is written before the message is handed to the outbox, and its
//! delivery state only moves forward (pending → sent → delivered → read, or to
//! a terminal failure), whatever order status webhooks arrive in.

use serde::{Deserialize, Serialize};

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
}

impl OutboundState {
    /// Progress rank; a record never moves to a lower rank.
    fn rank(self) -> u8 {
        match self {
            OutboundState::Pending => 0,
            OutboundState::Sent => 1,
            OutboundState::Delivered => 2,
            OutboundState::Read => 3,
            OutboundState::Failed | OutboundState::DryRun | OutboundState::SkippedWindow => 4,
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
    /// `bot`, `agent:<id>`, `survey`, `broadcast:<id>`, `system`.
    pub origin: String,
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
    /// Created, Unix ms.
    pub created_ms: i64,
    /// Last change, Unix ms.
    pub updated_ms: i64,
}

fn record_key(id: &str) -> String {
    format!("out:{id}")
}

fn platform_key(platform_id: &str) -> String {
    format!("outpid:{platform_id}")
}

impl Store {
    /// Stores a new record (before the message is sent).
    pub async fn create_outbound(&self, record: &OutboundRecord) -> StoreResult<()> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            key: record_key(&record.id),
            reason: e.to_string(),
        })?;
        self.backend
            .doc_put(&record_key(&record.id), 0, &bytes)
            .await?;
        Ok(())
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

    /// Moves a record to `state` if that is progress; returns the record when it
    /// changed. `edit` may set more fields at the same time.
    pub async fn advance_outbound(
        &self,
        id: &str,
        state: OutboundState,
        mut edit: impl FnMut(&mut OutboundRecord),
    ) -> StoreResult<Option<OutboundRecord>> {
        let now = self.now_ms();
        let record = self
            .update_json::<OutboundRecord, StoreError, _>(&record_key(id), |r| {
                let Some(mut r) = r else { return Ok(None) };
                if !r.state.can_become(state) {
                    return Ok(None);
                }
                r.state = state;
                r.updated_ms = now;
                edit(&mut r);
                Ok(Some(r))
            })
            .await?;
        if let Some(r) = &record
            && let Some(pid) = &r.platform_id
        {
            self.put_json(&platform_key(pid), &r.id).await?;
        }
        Ok(record)
    }

    /// Changes bookkeeping fields (attempts) without a state change.
    pub async fn note_outbound_attempt(&self, id: &str) -> StoreResult<()> {
        self.update_json::<OutboundRecord, StoreError, _>(&record_key(id), |r| {
            Ok(r.map(|mut r| {
                r.attempts += 1;
                r
            }))
        })
        .await
        .map(|_| ())
    }

    /// Our record id for a platform message id.
    pub async fn outbound_by_platform_id(&self, platform_id: &str) -> StoreResult<Option<String>> {
        self.get_json(&platform_key(platform_id)).await
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
