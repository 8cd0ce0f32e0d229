//! The audit log as stored: who did what, when and from where.
//!
//! Entries are append-only: each gets the next number of a counter shared by
//! every process (`audit:seq`) and is written once under it, then listed in
//! three indexes scored by time — all entries, per actor, per action — whose
//! members are the zero-padded numbers, so equal times keep the order they
//! were written in. Pages run newest first from a cursor (`<at_ms>.<seq>` of
//! the last entry seen), over the index that narrows the search most, reading
//! a bounded number of entries per page. Retention deletes the oldest entries
//! a batch at a time. What an action means and who may read the log is
//! [`crate::access::audit`]'s business.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoreResult};

/// One audited action, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log (1, 2, …), unique across processes.
    pub seq: u64,
    /// When, Unix ms.
    pub at_ms: i64,
    /// Who acted: a user id, `cli`, `config`, or the name typed at a failed
    /// sign-in.
    pub actor: String,
    /// What happened (`session.sign_in`, `contact.erase` …).
    pub action: String,
    /// What it was done to, if anything (a user id, a case id, a contact's
    /// pseudonym — never a phone number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The client address, for actions over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Whether it succeeded (failed sign-ins are kept too).
    pub ok: bool,
    /// A short detail (the queue of a transfer, counts of an erasure); never
    /// a message body or a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Which entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Not before this, Unix ms (inclusive).
    pub from_ms: Option<i64>,
    /// Not after this, Unix ms (inclusive).
    pub to_ms: Option<i64>,
    /// Continue after this cursor (from a previous [`AuditPage::next`]).
    pub cursor: Option<AuditCursor>,
    /// At most this many entries.
    pub limit: usize,
}

/// A position in the log: the time and number of the last entry a page
/// looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor {
    /// Its time, Unix ms.
    pub at_ms: i64,
    /// Its number.
    pub seq: u64,
}

impl AuditCursor {
    /// Parses `<at_ms>.<seq>`.
    pub fn parse(text: &str) -> Option<AuditCursor> {
        let (at, seq) = text.split_once('.')?;
        Some(AuditCursor {
            at_ms: at.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for AuditCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.at_ms, self.seq)
    }
}

/// One page of the log.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    /// Matching entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// Where the next page starts; `None` when there is nothing older. A page
    /// may hold fewer than `limit` entries and still have a next one (the
    /// filters matched little of what was read).
    pub next: Option<AuditCursor>,
}

/// Entries read per step of a page.
const STEP: usize = 200;
/// Entries one page looks at, at most, before it returns what it found.
const PAGE_BUDGET: usize = 5_000;

const SEQ_COUNTER: &str = "audit:seq";
const ALL_INDEX: &str = "audit:all";
const KEY_DOC: &str = "audit:pepper";

fn entry_key(member: &str) -> String {
    format!("audit:{member}")
}

fn member(seq: u64) -> String {
    format!("{seq:016}")
}

fn actor_index(actor: &str) -> String {
    format!("audit:actor:{actor}")
}

fn action_index(action: &str) -> String {
    format!("audit:action:{action}")
}

impl Store {
    /// Appends an entry (its `seq` and `at_ms` are set here) and returns it
    /// as stored.
    pub async fn append_audit(&self, mut entry: AuditEntry) -> StoreResult<AuditEntry> {
        let seq = self.backend.counter_add(SEQ_COUNTER, 1).await?;
        entry.seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt {
            key: SEQ_COUNTER.into(),
            reason: format!("negative sequence {seq}"),
        })?;
        entry.at_ms = self.now_ms();
        let m = member(entry.seq);
        let key = entry_key(&m);
        let bytes = serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        // Written once: the number is fresh, so nothing can be there.
        if self.backend.doc_put(&key, 0, &bytes).await?.is_none() {
            return Err(StoreError::Contention(key));
        }
        // The entry before its index entries: an index never points at
        // nothing (retention removes them in the opposite order).
        let score = entry.at_ms as f64;
        self.backend
            .index_put(&actor_index(&entry.actor), &m, score)
            .await?;
        self.backend
            .index_put(&action_index(&entry.action), &m, score)
            .await?;
        self.backend.index_put(ALL_INDEX, &m, score).await?;
        Ok(entry)
    }

    /// Reads one page of the log, newest first.
    pub async fn audit_page(&self, q: &AuditQuery) -> StoreResult<AuditPage> {
        let limit = q.limit.max(1);
        // The narrowest index; the other filters are checked per entry.
        let index = match (&q.actor, &q.action) {
            (Some(actor), _) => actor_index(actor),
            (None, Some(action)) => action_index(action),
            (None, None) => ALL_INDEX.to_string(),
        };
        let min = q.from_ms.map_or(f64::NEG_INFINITY, |t| t as f64);
        let mut max = q.to_ms.map_or(f64::INFINITY, |t| t as f64);
        let mut after = q.cursor.clone();
        if let Some(c) = &after {
            max = max.min(c.at_ms as f64);
        }
        let mut page = AuditPage::default();
        let mut looked = 0;
        loop {
            // Members at the cursor's own time may have been seen already:
            // fetch past them (more than one step only when many entries
            // share one millisecond).
            let mut fetch = STEP;
            let (fresh, full) = loop {
                let got = self
                    .backend
                    .index_range_rev(&index, min, max, fetch)
                    .await?;
                let full = got.len() == fetch;
                let fresh: Vec<(String, f64)> = got
                    .into_iter()
                    .filter(|(m, s)| {
                        after.as_ref().is_none_or(|c| {
                            *s < c.at_ms as f64 || m.as_str() < member(c.seq).as_str()
                        })
                    })
                    .collect();
                if fresh.is_empty() && full {
                    fetch = fetch.saturating_mul(2);
                    continue;
                }
                break (fresh, full);
            };
            if fresh.is_empty() {
                return Ok(page);
            }
            let keys: Vec<String> = fresh.iter().map(|(m, _)| entry_key(m)).collect();
            let entries: Vec<AuditEntry> = self.get_json_many(&keys).await?;
            let by_seq: std::collections::HashMap<String, AuditEntry> =
                entries.into_iter().map(|e| (member(e.seq), e)).collect();
            let total = fresh.len();
            for (i, (m, score)) in fresh.into_iter().enumerate() {
                looked += 1;
                after = Some(AuditCursor {
                    at_ms: score as i64,
                    seq: m.parse().unwrap_or(0),
                });
                max = score;
                if let Some(e) = by_seq.get(&m)
                    && q.action.as_ref().is_none_or(|a| *a == e.action)
                    && q.target
                        .as_ref()
                        .is_none_or(|t| e.target.as_ref() == Some(t))
                {
                    page.entries.push(e.clone());
                }
                let rest = i + 1 < total || full;
                if page.entries.len() >= limit || looked >= PAGE_BUDGET {
                    page.next = if rest { after } else { None };
                    return Ok(page);
                }
            }
            if !full {
                return Ok(page);
            }
        }
    }

    /// Deletes up to `max` entries older than `before_ms`, oldest first;
    /// returns how many went.
    pub async fn delete_audit_before(&self, before_ms: i64, max: usize) -> StoreResult<usize> {
        let old = self
            .backend
            .index_range(
                ALL_INDEX,
                f64::NEG_INFINITY,
                before_ms.saturating_sub(1) as f64,
                max,
            )
            .await?;
        let n = old.len();
        for (m, _) in old {
            let key = entry_key(&m);
            if let Some(e) = self.get_json::<AuditEntry>(&key).await? {
                self.backend
                    .index_remove(&actor_index(&e.actor), &m)
                    .await?;
                self.backend
                    .index_remove(&action_index(&e.action), &m)
                    .await?;
            }
            self.backend.doc_delete(&key).await?;
            self.backend.index_remove(ALL_INDEX, &m).await?;
        }
        Ok(n)
    }

    /// The secret key of contact pseudonyms in the log: the stored one, or
    /// `fresh` stored now when there is none yet (every process ends up with
    /// the same key).
    pub async fn audit_key(&self, fresh: String) -> StoreResult<String> {
        if let Some(k) = self.get_json::<String>(KEY_DOC).await? {
            return Ok(k);
        }
        let bytes = serde_json::to_vec(&fresh).unwrap_or_default();
        if self.backend.doc_put(KEY_DOC, 0, &bytes).await?.is_some() {
            return Ok(fresh);
        }
        self.get_json::<String>(KEY_DOC)
            .await?
            .ok_or_else(|| StoreError::Contention(KEY_DOC.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = AuditCursor {
            at_ms: 1_795_402_800_000,
            seq: 42,
        };
        assert_eq!(AuditCursor::parse(&c.to_string()), Some(c));
        for bad in ["", "1", "x.1", "1.x", "1.-2"] {
            assert_eq!(AuditCursor::parse(bad), None, "{bad}");
        }
        assert!(member(9) < member(10), "members sort as numbers");
    }
}
