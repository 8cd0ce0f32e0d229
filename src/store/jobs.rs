//! Durable job queues: scheduling, and the leased claims the job runner uses.
//!
//! Every piece of background work — inbound events, outbound sends, timers,
//! surveys, broadcast walks — is a job in one of the [`queues`]. A job is
//! stored before anyone acts on it, claimed under a lease with a fencing
//! token, and acknowledged only when done, so a crash at any point means it
//! runs again rather than never. The runner that drives claims, heartbeats,
//! retries and the dead-letter lists is [`crate::jobs`]; this module is its
//! storage, plus [`Store::schedule`] for everyone who only adds work.
//!
//! Scheduling wakes this process's worker of that queue at once (other
//! processes notice on their next poll).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use super::{Job, JobCounts, NewJob, Store, StoreError, StoreResult};
use crate::channels::InboundEvent;

/// Names of the job queues.
pub mod queues {
    /// Inbound webhook events waiting for the conversation engine.
    pub const INBOUND: &str = "inbound";
    /// Outbound messages waiting to be sent.
    pub const OUTBOX: &str = "outbox";
    /// Engine timers: agent reply timeouts, waiting-customer reassurance.
    pub const TIMERS: &str = "timers";
    /// Survey steps: the first question, step timeouts, expiry.
    pub const SURVEYS: &str = "surveys";
    /// Broadcast starts and walks.
    pub const BROADCAST: &str = "broadcast";
    /// Downloads of customers' files.
    pub const MEDIA: &str = "media";
    /// Housekeeping: the retention sweep.
    pub const MAINTENANCE: &str = "maintenance";
    /// Every queue, for operators' counts.
    pub const ALL: [&str; 7] = [
        INBOUND,
        OUTBOX,
        TIMERS,
        SURVEYS,
        BROADCAST,
        MEDIA,
        MAINTENANCE,
    ];
}

/// How long a webhook waits for replicas (`store.min_replicas_ack`) before it
/// is answered 503: Meta wants WhatsApp webhooks answered within about a
/// second.
const REPLICAS_ACK_TIMEOUT: Duration = Duration::from_millis(1_000);

/// In-process wake-ups, one per queue: scheduling a job tells this process's
/// worker of that queue to claim now instead of at its next poll.
#[derive(Default)]
pub(crate) struct Wakers(Mutex<HashMap<String, Arc<Notify>>>);

impl Wakers {
    pub(crate) fn get(&self, queue: &str) -> Arc<Notify> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(queue.to_string()).or_default())
    }
}

impl Store {
    /// Schedules a job; returns false when a job with that id exists or `dedupe`
    /// was seen within its TTL.
    pub async fn schedule<T: Serialize>(
        &self,
        queue: &str,
        id: &str,
        due_ms: i64,
        payload: &T,
        dedupe: Option<(String, Duration)>,
    ) -> StoreResult<bool> {
        let payload = serde_json::to_vec(payload).map_err(|e| StoreError::Corrupt {
            key: format!("job {queue}/{id}"),
            reason: e.to_string(),
        })?;
        let job = NewJob {
            job: Job {
                id: id.to_string(),
                due_ms,
                attempts: 0,
                payload,
                lease: 0,
            },
            dedupe,
        };
        let pushed = self.push_jobs(queue, std::slice::from_ref(&job)).await?;
        Ok(pushed.first().copied().unwrap_or(false))
    }

    /// Pushes several jobs atomically (all or nothing); for each, true when it
    /// was enqueued. Wakes this process's worker of `queue`.
    pub async fn push_jobs(&self, queue: &str, jobs: &[NewJob]) -> StoreResult<Vec<bool>> {
        let pushed = self.backend.jobs_push(queue, jobs, self.now_ms()).await?;
        if pushed.iter().any(|p| *p) {
            self.wakers.get(queue).notify_one();
        }
        Ok(pushed)
    }

    /// Stores webhook events as inbound jobs, atomically, skipping events seen
    /// before (by their platform id, for [`super::DEDUPE_TTL`], across
    /// processes and restarts). Returns, per event, whether it was new. With
    /// [`Store::with_replicas_ack`], returns only once the events (new or
    /// seen before) are on that many replicas, and fails otherwise.
    pub async fn ingest_inbound(&self, events: &[InboundEvent]) -> StoreResult<Vec<bool>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let mut jobs = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_vec(event).map_err(|e| StoreError::Corrupt {
                key: event.dedupe_key.clone(),
                reason: e.to_string(),
            })?;
            jobs.push(NewJob {
                job: Job {
                    id: uuid::Uuid::now_v7().to_string(),
                    due_ms: now,
                    attempts: 0,
                    payload,
                    lease: 0,
                },
                dedupe: Some((
                    format!("seen:{}", super::id_digest(&event.dedupe_key)),
                    super::DEDUPE_TTL,
                )),
            });
        }
        if self.replicas_ack == 0 {
            return self.push_jobs(queues::INBOUND, &jobs).await;
        }
        let (pushed, acked) = self
            .backend
            .jobs_push_replicated(
                queues::INBOUND,
                &jobs,
                now,
                self.replicas_ack,
                REPLICAS_ACK_TIMEOUT,
            )
            .await?;
        if pushed.iter().any(|p| *p) {
            self.wakers.get(queues::INBOUND).notify_one();
        }
        if acked < self.replicas_ack {
            return Err(StoreError::Unavailable(format!(
                "only {acked} of {} replicas acknowledged the events within {} ms",
                self.replicas_ack,
                REPLICAS_ACK_TIMEOUT.as_millis()
            )));
        }
        Ok(pushed)
    }

    /// Cancels a scheduled job wherever it is.
    pub async fn cancel(&self, queue: &str, id: &str) -> StoreResult<bool> {
        self.backend.jobs_cancel(queue, id).await
    }

    /// Pending, leased and dead counts of a queue (O(1) on both backends).
    pub async fn job_counts(&self, queue: &str) -> StoreResult<JobCounts> {
        self.backend.jobs_counts(queue).await
    }

    /// The earliest due time of a pending job of `queue`.
    pub async fn next_due(&self, queue: &str) -> StoreResult<Option<i64>> {
        self.backend.jobs_next_due(queue).await
    }

    /// A job as it is stored now (not claimed).
    pub async fn job(&self, queue: &str, id: &str) -> StoreResult<Option<Job>> {
        self.backend.jobs_get(queue, id).await
    }

    /// Dead-letter entries of a queue, oldest first.
    pub async fn dead_letters(
        &self,
        queue: &str,
        start: u64,
        limit: u64,
    ) -> StoreResult<Vec<Vec<u8>>> {
        self.backend.jobs_dead(queue, start, limit).await
    }

    /// Removes the oldest dead-letter entry of `queue` equal to `entry`
    /// (retention, erasure); false when there is none (any more).
    pub async fn remove_dead_letter(&self, queue: &str, entry: &[u8]) -> StoreResult<bool> {
        self.backend.jobs_dead_remove(queue, entry).await
    }

    /// Completes when a job is scheduled for `queue` in this process.
    pub(crate) fn job_wake(&self, queue: &str) -> Arc<Notify> {
        self.wakers.get(queue)
    }

    // ---- for the job runner -------------------------------------------------

    /// Claims up to `max` due jobs of `queue` under fresh leases.
    pub(crate) async fn claim_jobs(
        &self,
        queue: &str,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Job>> {
        self.backend
            .jobs_claim(queue, self.now_ms(), lease, max)
            .await
    }

    /// Deletes a finished job held under `lease`; false when the lease was lost.
    pub(crate) async fn ack_job(&self, queue: &str, id: &str, lease: u64) -> StoreResult<bool> {
        self.backend.jobs_ack(queue, id, lease).await
    }

    /// Puts a job held under `lease` back at `due_ms`; `failed` counts a failure.
    pub(crate) async fn retry_job(
        &self,
        queue: &str,
        id: &str,
        lease: u64,
        due_ms: i64,
        failed: bool,
    ) -> StoreResult<bool> {
        self.backend
            .jobs_retry(queue, id, lease, due_ms, None, failed)
            .await
    }

    /// Extends the given leases by `lease` from now; for each, whether it is
    /// still held.
    pub(crate) async fn extend_jobs(
        &self,
        queue: &str,
        leases: &[(String, u64)],
        lease: Duration,
    ) -> StoreResult<Vec<bool>> {
        let deadline = self
            .now_ms()
            .saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        self.backend.jobs_extend(queue, leases, deadline).await
    }

    /// Moves a job held under `lease` to the dead-letter list with `entry`.
    pub(crate) async fn bury_job(
        &self,
        queue: &str,
        id: &str,
        lease: u64,
        entry: &[u8],
    ) -> StoreResult<bool> {
        self.backend.jobs_bury(queue, id, lease, entry).await
    }
}
