//! The retention job: deletes what is older than `[retention]` allows.
//!
//! One job (`retention` in the `maintenance` queue) runs on whichever process
//! claims it and reschedules itself: at once while a kind of data still has
//! more to delete, hourly otherwise. Each run does a bounded batch per kind,
//! and every step is idempotent, so a run cut short (or, after a lost lease,
//! run twice) is harmless. Per run:
//!
//! - **transcripts** of cases resolved longer ago than `transcripts`, with the
//!   records of our messages in them (their bodies); the case stays
//!   countable. A bookmark (the resolution time reached) keeps each case from
//!   being looked at twice;
//! - **files** older than `media`: the record becomes an `expired` tombstone
//!   and the stored bytes go once no live record uses them and no configured
//!   file is made of them ([`Files::expire_before`]);
//! - **cases** resolved longer ago than `resolved_cases`: transcript, messages,
//!   files, survey and the case itself (reports no longer count it);
//! - **dead letters** older than `dead_letters`, oldest first in each queue;
//! - **audit entries** older than `audit`;
//! - **sessions** that ended longer ago than `sessions`;
//! - expired **remembered keys, locks and limiter states** the store keeps
//!   (the embedded store's tables would otherwise grow with every customer).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::PrivacyError;
use crate::attachments::Files;
use crate::config::{HumanDuration, RetentionConfig};
use crate::jobs::{Handler, Run, Verdict};
use crate::media::ContentHash;
use crate::store::{Speaker, Store, StoreResult, queues};

/// The job id of the sweep.
pub const JOB_ID: &str = "retention";
/// Items of one kind handled per run, at most.
pub const BATCH: usize = 200;
/// Time between two runs when nothing is left to delete.
pub const EVERY: Duration = Duration::from_secs(3_600);
/// Bookmark of the transcript sweep.
const TRANSCRIPTS_MARK: &str = "retention:transcripts";

/// The payload of the retention job (it needs nothing but the config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRun {}

/// What one run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Transcripts deleted (their cases stay).
    pub transcripts: usize,
    /// Records of our messages deleted with them.
    pub messages: usize,
    /// File records deleted.
    pub files: usize,
    /// Stored files deleted from the media store.
    pub stored_files: usize,
    /// Cases deleted.
    pub cases: usize,
    /// Dead letters deleted.
    pub dead_letters: usize,
    /// Audit entries deleted.
    pub audit: usize,
    /// Expired entries purged from the store (locks, limiter states, keys).
    pub purged: usize,
    /// Whether some kind had a full batch (run again at once).
    pub more: bool,
}

/// Runs the retention sweep; see the module docs.
pub struct RetentionHandler {
    store: Store,
    files: Files,
    config: RetentionConfig,
}

impl RetentionHandler {
    /// A sweep over these stores with these periods.
    pub fn new(files: Files, config: RetentionConfig) -> Self {
        Self {
            store: files.store().clone(),
            files,
            config,
        }
    }

    /// Schedules the sweep now unless it is scheduled already (every process
    /// calls this at start; one job exists).
    pub async fn schedule(store: &Store) -> StoreResult<bool> {
        store
            .schedule(
                queues::MAINTENANCE,
                JOB_ID,
                store.now_ms(),
                &RetentionRun::default(),
                None,
            )
            .await
    }

    /// One run: a batch of each kind.
    pub async fn sweep(&self) -> Result<Swept, PrivacyError> {
        let mut s = Swept::default();
        let cfg = &self.config;
        if let Some(cutoff) = self.cutoff(cfg.transcripts) {
            self.transcripts(cutoff, &mut s).await?;
        }
        if let Some(cutoff) = self.cutoff(cfg.media) {
            self.files(cutoff, &mut s).await?;
        }
        if let Some(cutoff) = self.cutoff(cfg.resolved_cases) {
            self.cases(cutoff, &mut s).await?;
        }
        if let Some(cutoff) = self.cutoff(cfg.dead_letters) {
            self.dead_letters(cutoff, &mut s).await?;
        }
        if let Some(cutoff) = self.cutoff(cfg.audit) {
            s.audit = self.store.delete_audit_before(cutoff, BATCH).await?;
            s.more |= s.audit == BATCH;
        }
        let ended = self.store.now_ms() - cfg.sessions.as_millis_i64();
        for user in self.store.users().await? {
            self.store.purge_expired_sessions(&user.id, ended).await?;
        }
        s.purged = self.store.purge_expired(BATCH * 5).await?;
        record(&s);
        Ok(s)
    }

    /// The instant before which a kind kept for `keep` goes; `None` when it
    /// is kept forever.
    fn cutoff(&self, keep: HumanDuration) -> Option<i64> {
        (!keep.get().is_zero()).then(|| self.store.now_ms() - keep.as_millis_i64())
    }

    async fn transcripts(&self, cutoff: i64, s: &mut Swept) -> Result<(), PrivacyError> {
        let mark = self.store.sweep_mark(TRANSCRIPTS_MARK).await?;
        let page = self
            .store
            .resolved_page(mark.unwrap_or(i64::MIN), cutoff, BATCH)
            .await?;
        for (id, _) in &page {
            if drop_transcript(&self.store, id, s).await? {
                s.transcripts += 1;
            }
        }
        if let (Some((_, first)), Some((_, last))) = (page.first(), page.last()) {
            // A full page of one millisecond would come back forever: step
            // past it (such cases keep their transcript until their case goes).
            let next = if page.len() == BATCH && first == last && Some(*last) == mark {
                last + 1
            } else {
                *last
            };
            self.store.set_sweep_mark(TRANSCRIPTS_MARK, next).await?;
        }
        s.more |= page.len() == BATCH;
        Ok(())
    }

    async fn files(&self, cutoff: i64, s: &mut Swept) -> Result<(), PrivacyError> {
        let sweep = self.files.expire_before(cutoff, BATCH).await?;
        s.files += sweep.expired;
        s.stored_files += sweep.deleted;
        s.more |= sweep.more;
        Ok(())
    }

    async fn cases(&self, cutoff: i64, s: &mut Swept) -> Result<(), PrivacyError> {
        let page = self.store.resolved_page(i64::MIN, cutoff, BATCH).await?;
        s.more |= page.len() == BATCH;
        for (id, _) in page {
            drop_transcript(&self.store, &id, s).await?;
            for file in self.store.conversation_attachments(&id, 100_000).await? {
                drop_file(&self.files, &file.id, s).await?;
            }
            self.store.delete_survey(&id).await?;
            if self.store.delete_case(&id).await? {
                s.cases += 1;
            }
        }
        Ok(())
    }

    async fn dead_letters(&self, cutoff: i64, s: &mut Swept) -> Result<(), PrivacyError> {
        for queue in queues::ALL {
            let entries = self.store.dead_letters(queue, 0, BATCH as u64).await?;
            let mut removed = 0;
            for entry in &entries {
                // Buried in order, so the first young one ends the old ones.
                if buried_at(entry).is_some_and(|at| at >= cutoff) {
                    break;
                }
                if self.store.remove_dead_letter(queue, entry).await? {
                    removed += 1;
                }
            }
            s.dead_letters += removed;
            s.more |= removed == BATCH;
        }
        Ok(())
    }
}

/// When a dead letter was buried (`at_ms` of the entry the job runner writes);
/// `None` for an entry that does not say, which counts as old.
fn buried_at(entry: &[u8]) -> Option<i64> {
    serde_json::from_slice::<serde_json::Value>(entry)
        .ok()?
        .get("at_ms")?
        .as_i64()
}

/// Deletes a case's transcript and the records of our messages in it; true
/// when there was a transcript.
async fn drop_transcript(store: &Store, case: &str, s: &mut Swept) -> Result<bool, PrivacyError> {
    let transcript = store.transcript(case).await?;
    for entry in &transcript {
        if matches!(entry.speaker, Speaker::Customer | Speaker::System) {
            continue;
        }
        if let Some(id) = &entry.message_id
            && store.delete_outbound(id).await?
        {
            s.messages += 1;
        }
    }
    // The words of the transcript made the case findable; they go with it.
    store.forget_search(case).await?;
    Ok(store.delete_transcript(case).await?)
}

/// Deletes one file: its bytes when no other record uses them, then its
/// record (in this order, so a failure leaves the record to find again).
async fn drop_file(files: &Files, id: &str, s: &mut Swept) -> Result<(), PrivacyError> {
    let (store, media) = (files.store(), files.media());
    let Some(file) = store.attachment(id).await? else {
        // Only its index entries are left.
        store.delete_attachment(id).await?;
        return Ok(());
    };
    if let Some(hash) = file.sha256
        && !files.library().pins(&hash)
        && !used_elsewhere(store, &hash, id).await?
        && media.delete(&hash).await?
    {
        s.stored_files += 1;
    }
    if store.delete_attachment(id).await?.is_some() {
        s.files += 1;
    }
    Ok(())
}

async fn used_elsewhere(store: &Store, hash: &ContentHash, id: &str) -> StoreResult<bool> {
    Ok(store
        .attachments_with_content(hash, 2)
        .await?
        .iter()
        .any(|other| other != id))
}

fn record(s: &Swept) {
    let kinds = [
        ("transcripts", s.transcripts),
        ("messages", s.messages),
        ("files", s.files),
        ("stored_files", s.stored_files),
        ("cases", s.cases),
        ("dead_letters", s.dead_letters),
        ("audit", s.audit),
        ("purged", s.purged),
    ];
    for (kind, n) in kinds {
        if n > 0 {
            metrics::counter!("balas_retention_deleted_total", "kind" => kind).increment(n as u64);
        }
    }
    if kinds.iter().any(|(k, n)| *n > 0 && *k != "purged") {
        tracing::info!(
            transcripts = s.transcripts,
            messages = s.messages,
            files = s.files,
            stored_files = s.stored_files,
            cases = s.cases,
            dead_letters = s.dead_letters,
            audit = s.audit,
            "retention deleted old data"
        );
    }
}

#[async_trait]
impl Handler for RetentionHandler {
    type Payload = RetentionRun;

    fn queue(&self) -> &'static str {
        queues::MAINTENANCE
    }

    async fn run(&self, _job: &Run<RetentionRun>) -> Verdict {
        match self.sweep().await {
            Ok(s) => {
                let now = self.store.now_ms();
                Verdict::Later(if s.more {
                    now
                } else {
                    now + EVERY.as_millis() as i64
                })
            }
            Err(e) => Verdict::failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_tell_when_they_were_buried() {
        assert_eq!(buried_at(br#"{"at_ms": 1700, "job": "x"}"#), Some(1700));
        assert_eq!(buried_at(br#"{"job": "x"}"#), None);
        assert_eq!(buried_at(b"not json"), None);
    }
}
