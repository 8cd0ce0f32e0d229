//! File retention: files older than `[retention] media` become tombstones.
//!
//! A step of the one retention job ([`crate::privacy::retention`]): a swept
//! record becomes an `expired` tombstone (the transcript still shows a file
//! was there, the API answers 410 for it), and its object is deleted once no
//! live record points at it any more (the same photo sent twice is stored
//! once) and it is not a configured file.
//!
//! A file sent again at the very moment its old copy is deleted could lose
//! its bytes (the new record is written just after the check); the window is
//! the time between two store calls, and such a record then answers 404
//! rather than the wrong file.

use super::Files;
use crate::store::StoreResult;

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
    /// Expires up to `max` records created before `cutoff_ms` and deletes the
    /// objects nobody uses any more.
    pub async fn expire_before(&self, cutoff_ms: i64, max: usize) -> StoreResult<Sweep> {
        let mut sweep = Sweep::default();
        let store = self.store();
        let ids = store.attachments_created_before(cutoff_ms, max).await?;
        sweep.more = ids.len() == max;
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
}
