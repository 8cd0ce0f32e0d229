//! Media retention: files older than `media.retention` are deleted.
//!
//! One job of the `media` queue ([`MediaTask::Retention`], id `retention`)
//! sweeps in batches and reschedules itself: at once while there is more to
//! do, hourly otherwise. A swept record becomes an `expired` tombstone (the
//! transcript still shows a file was there, the API answers 410 for it), and
//! its object is deleted once no live record points at it any more (the same
//! photo sent twice is stored once) and it is not a configured file.
//!
//! A file sent again at the very moment its old copy is deleted could lose
//! its bytes (the new record is written just after the check); the window is
//! the time between two store calls, and such a record then answers 404
//! rather than the wrong file.

use std::time::Duration;

use super::{Files, MediaTask};
use crate::jobs::Verdict;
use crate::store::{StoreResult, queues};

/// Records looked at per run.
const BATCH: usize = 200;
/// Time between two sweeps when nothing is left.
const EVERY: Duration = Duration::from_secs(3600);
/// The job id of the sweep.
pub const RETENTION_JOB: &str = "retention";

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Records turned into tombstones.
    pub expired: usize,
    /// Objects deleted from the media store.
    pub deleted: usize,
    /// Whether more records are due (a full batch was swept).
    pub more: bool,
}

impl Files {
    /// Schedules the sweep when `media.retention` is set (a no-op when it is
    /// scheduled already); cancels it when retention is off.
    pub async fn schedule_retention(&self) -> StoreResult<()> {
        let store = self.store();
        if self.settings().retention.is_none() {
            store.cancel(queues::MEDIA, RETENTION_JOB).await?;
            return Ok(());
        }
        store
            .schedule(
                queues::MEDIA,
                RETENTION_JOB,
                store.now_ms(),
                &MediaTask::Retention,
                None,
            )
            .await?;
        Ok(())
    }

    /// Expires one batch of records older than the retention period and
    /// deletes the objects nobody uses any more.
    pub async fn sweep(&self) -> StoreResult<Sweep> {
        let mut sweep = Sweep::default();
        let Some(retention) = self.settings().retention else {
            return Ok(sweep);
        };
        let store = self.store();
        let cutoff = store.now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let ids = store.attachments_created_before(cutoff, BATCH).await?;
        sweep.more = ids.len() == BATCH;
        for id in ids {
            let Some((_, object)) = store.expire_attachment(&id).await? else {
                continue;
            };
            sweep.expired += 1;
            let Some(hash) = object else { continue };
            if self.library().pins(&hash)
                || !store.attachments_with_content(&hash, 1).await?.is_empty()
            {
                continue;
            }
            match self.media().delete(&hash).await {
                Ok(true) => sweep.deleted += 1,
                Ok(false) => {}
                Err(e) => {
                    // The record is a tombstone already; the object is only
                    // space now. Logged, not retried.
                    tracing::warn!(error = %e, "could not delete an expired file from the media store");
                }
            }
        }
        if sweep.expired > 0 {
            tracing::info!(
                expired = sweep.expired,
                deleted = sweep.deleted,
                "media retention swept old files"
            );
            metrics::counter!("balas_media_expired_total").increment(sweep.expired as u64);
        }
        Ok(sweep)
    }

    /// One run of the retention job: a sweep, then the next run.
    pub(super) async fn run_retention(&self) -> Verdict {
        if self.settings().retention.is_none() {
            return Verdict::Done;
        }
        match self.sweep().await {
            Ok(s) => {
                let now = self.store().now_ms();
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
