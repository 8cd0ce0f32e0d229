//! Agent presence: online, away or offline, and when the console was last
//! heard from.
//!
//! One document per user (`presence:<id>`), changed with compare-and-swap.
//! A stored "online" or "away" counts as offline once the console has been
//! silent for the presence timeout, whether or not the expiry job has run
//! yet ([`Presence::effective`]), so nobody is assigned a chat because a job
//! was late. Going online after being offline starts a new *epoch*: the
//! expiry job of an earlier epoch finds it stale and does nothing.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoreResult};

/// What an agent says about themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    /// Taking conversations.
    Online,
    /// At the desk but taking no new conversations.
    Away,
    /// Not working.
    Offline,
}

impl PresenceStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Offline => "offline",
        }
    }
}

/// One user's presence as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The status last set (see [`Presence::effective`]).
    pub status: PresenceStatus,
    /// When the status last changed, Unix ms.
    pub since_ms: i64,
    /// When the console last reported, Unix ms.
    pub seen_ms: i64,
    /// Raised each time the user comes back from offline.
    pub epoch: u64,
}

impl Presence {
    /// Someone never seen.
    pub fn offline() -> Self {
        Presence {
            status: PresenceStatus::Offline,
            since_ms: 0,
            seen_ms: 0,
            epoch: 0,
        }
    }

    /// The status at `now_ms`: offline once the console has been silent for
    /// `timeout_ms`.
    pub fn effective(&self, now_ms: i64, timeout_ms: i64) -> PresenceStatus {
        if self.status != PresenceStatus::Offline && now_ms - self.seen_ms >= timeout_ms {
            PresenceStatus::Offline
        } else {
            self.status
        }
    }

    /// The change a report of `status` at `now_ms` makes (pure).
    pub fn report(&self, status: PresenceStatus, now_ms: i64, timeout_ms: i64) -> Presence {
        let before = self.effective(now_ms, timeout_ms);
        let mut next = self.clone();
        if before == PresenceStatus::Offline && status != PresenceStatus::Offline {
            next.epoch += 1;
        }
        if before != status {
            next.since_ms = now_ms;
        }
        next.status = status;
        next.seen_ms = now_ms;
        next
    }
}

/// What an expiry check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// The console went silent: the user is offline now (as stored).
    Expired(Presence),
    /// Still heard from; check again at this time (Unix ms).
    NotYet(i64),
    /// Already offline, or a newer epoch: nothing to do.
    Stale,
}

fn presence_key(user: &str) -> String {
    format!("presence:{user}")
}

impl Store {
    /// A user's presence as stored (offline when never set).
    pub async fn presence(&self, user: &str) -> StoreResult<Presence> {
        Ok(self
            .get_json(&presence_key(user))
            .await?
            .unwrap_or_else(Presence::offline))
    }

    /// Presences of several users, in the same order.
    pub async fn presences(&self, users: &[String]) -> StoreResult<Vec<Presence>> {
        let keys: Vec<String> = users.iter().map(|u| presence_key(u)).collect();
        let docs = self.backend.doc_get_many(&keys).await?;
        docs.into_iter()
            .zip(&keys)
            .map(|(doc, key)| match doc {
                None => Ok(Presence::offline()),
                Some(d) => serde_json::from_slice(&d.data).map_err(|e| StoreError::Corrupt {
                    key: key.clone(),
                    reason: e.to_string(),
                }),
            })
            .collect()
    }

    /// Records a report of `status` from the user's console; returns the
    /// presence before (effective at now) and after.
    pub async fn report_presence(
        &self,
        user: &str,
        status: PresenceStatus,
        timeout_ms: i64,
    ) -> StoreResult<(PresenceStatus, Presence)> {
        let now = self.now_ms();
        let mut before = PresenceStatus::Offline;
        let after = self
            .update_json::<Presence, StoreError, _>(&presence_key(user), |p| {
                let p = p.unwrap_or_else(Presence::offline);
                before = p.effective(now, timeout_ms);
                Ok(Some(p.report(status, now, timeout_ms)))
            })
            .await?
            .expect("always writes");
        Ok((before, after))
    }

    /// Marks the user offline if the console of `epoch` has been silent for
    /// `timeout_ms`.
    pub async fn expire_presence(
        &self,
        user: &str,
        epoch: u64,
        timeout_ms: i64,
    ) -> StoreResult<Expiry> {
        let now = self.now_ms();
        let mut found = Expiry::Stale;
        self.update_json::<Presence, StoreError, _>(&presence_key(user), |p| {
            let Some(mut p) = p else {
                found = Expiry::Stale;
                return Ok(None);
            };
            if p.epoch != epoch || p.status == PresenceStatus::Offline {
                found = Expiry::Stale;
                return Ok(None);
            }
            if now - p.seen_ms < timeout_ms {
                found = Expiry::NotYet(p.seen_ms + timeout_ms);
                return Ok(None);
            }
            p.status = PresenceStatus::Offline;
            p.since_ms = p.seen_ms + timeout_ms;
            found = Expiry::Expired(p.clone());
            Ok(Some(p))
        })
        .await?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PresenceStatus::*;

    #[test]
    fn silence_means_offline_and_coming_back_starts_an_epoch() {
        let p = Presence::offline().report(Online, 1_000, 90_000);
        assert_eq!((p.status, p.epoch, p.since_ms), (Online, 1, 1_000));
        assert_eq!(p.effective(90_999, 90_000), Online);
        assert_eq!(p.effective(91_000, 90_000), Offline);
        // A heartbeat keeps the epoch and the "since".
        let q = p.report(Online, 60_000, 90_000);
        assert_eq!((q.epoch, q.since_ms, q.seen_ms), (1, 1_000, 60_000));
        // Away is not offline: same epoch.
        let r = q.report(Away, 70_000, 90_000);
        assert_eq!((r.status, r.epoch, r.since_ms), (Away, 1, 70_000));
        // After a silence the next report is a new epoch.
        let s = r.report(Online, 500_000, 90_000);
        assert_eq!((s.status, s.epoch, s.since_ms), (Online, 2, 500_000));
        // Explicitly offline, then online: a new epoch too.
        let t = s
            .report(Offline, 501_000, 90_000)
            .report(Online, 502_000, 90_000);
        assert_eq!(t.epoch, 3);
    }
}
