//! Locks and pacing state of the embedded store, kept in memory.
//!
//! Only one process can open the embedded store's file, so a lock or a rate
//! limiter's state held in that process is exactly as shared as one written
//! to disk, and costs no commit: a customer's message takes and releases its
//! contact lock, and a send takes two pacing tokens, without waiting for an
//! fsync. Nothing here needs to outlive the process: after a crash no lock
//! can be held by a process that no longer exists (the work it guarded is
//! retried under a new lease), and pacing starts from a fresh bucket, which
//! [GCRA](https://en.wikipedia.org/wiki/Generic_cell_rate_algorithm) allows
//! anyway after an idle period.
//!
//! Both maps forget expired entries once they grow past [`TIDY_AT`], so they
//! stay as small as the work in flight.

use std::collections::HashMap;
use std::sync::Mutex;

/// Entries above which a map drops its expired ones on the next write.
const TIDY_AT: usize = 4096;

/// In-memory locks and GCRA states.
#[derive(Debug, Default)]
pub(super) struct Ephemeral {
    /// Lock key → (held until, owner).
    locks: Mutex<HashMap<String, (i64, String)>>,
    /// Limiter key → theoretical arrival time (ms).
    rates: Mutex<HashMap<String, f64>>,
}

impl Ephemeral {
    /// Takes (or, for the same owner, extends) `key` until `until_ms`; false
    /// while another owner holds it at `now_ms`.
    pub(super) fn lock(&self, key: &str, owner: &str, now_ms: i64, until_ms: i64) -> bool {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((held_until, holder)) = locks.get(key)
            && holder != owner
            && *held_until > now_ms
        {
            return false;
        }
        if locks.len() >= TIDY_AT {
            locks.retain(|_, (held_until, _)| *held_until > now_ms);
        }
        locks.insert(key.to_owned(), (until_ms, owner.to_owned()));
        true
    }

    /// Releases `key` if `owner` holds it; true when it did.
    pub(super) fn unlock(&self, key: &str, owner: &str) -> bool {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.get(key).is_some_and(|(_, holder)| holder == owner) {
            locks.remove(key);
            true
        } else {
            false
        }
    }

    /// One GCRA step (see `Backend::rate_take`): 0 when a token was taken,
    /// otherwise the milliseconds until one is available.
    pub(super) fn rate_take(&self, key: &str, interval: f64, tolerance: f64, now_ms: i64) -> u64 {
        let now = now_ms as f64;
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let tat = rates.get(key).copied().unwrap_or(now).max(now);
        let new = tat + interval;
        let allow_at = new - tolerance;
        if allow_at > now {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return (allow_at - now).ceil() as u64;
        }
        if rates.len() >= TIDY_AT {
            // A state at or before now is the same as no state.
            rates.retain(|_, tat| *tat > now);
        }
        rates.insert(key.to_owned(), new);
        0
    }

    /// Forgets a limiter's state (its next take starts from a full bucket).
    pub(super) fn rate_reset(&self, key: &str) {
        self.rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Drops every expired lock and limiter state; returns how many.
    pub(super) fn purge(&self, now_ms: i64) -> usize {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        let before = locks.len();
        locks.retain(|_, (held_until, _)| *held_until > now_ms);
        let mut purged = before - locks.len();
        drop(locks);
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let before = rates.len();
        let now = now_ms as f64;
        rates.retain(|_, tat| *tat > now);
        purged += before - rates.len();
        purged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_are_forgotten_once_the_map_is_large() {
        let e = Ephemeral::default();
        for i in 0..TIDY_AT {
            assert!(e.lock(&format!("k{i}"), "a", 0, 10));
            assert_eq!(e.rate_take(&format!("r{i}"), 10.0, 10.0, 0), 0);
        }
        assert!(e.lock("late", "a", 100, 200));
        assert_eq!(e.rate_take("late", 10.0, 10.0, 100), 0);
        assert_eq!(e.locks.lock().unwrap().len(), 1);
        assert_eq!(e.rates.lock().unwrap().len(), 1);
        assert!(!e.lock("late", "b", 150, 300), "a live lock is kept");
    }
}
