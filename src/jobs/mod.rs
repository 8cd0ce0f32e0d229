//! The one job runner: every background task of Balas is a [`Handler`] run
//! by a [`Worker`].
//!
//! A worker owns everything about running durable jobs, so handlers only
//! decide what a job means:
//! - **claim** due jobs of its queue under short leases, as many as it has free
//!   slots, waking at once when this process schedules a job and polling for
//!   jobs scheduled by other processes;
//! - **heartbeat**: while a job runs, its lease is renewed every third of the
//!   lease, so a slow job (a send waiting on a slow Graph API) is never taken
//!   over by another process; a job whose lease was lost anyway is told so
//!   ([`Run::lease_lost`]);
//! - **fencing**: ack, retry and bury carry the lease's token, so a worker whose
//!   lease was taken over cannot touch the job any more;
//! - **retry** with exponential backoff and jitter for failures, rescheduling
//!   without penalty for work that is only deferred (pacing, a busy contact,
//!   quiet hours), and a **dead-letter list** with the payload and the error
//!   after [`Settings::max_failures`] (at once for payloads that do not decode);
//! - **graceful shutdown**: stop claiming, let running jobs finish, hand back
//!   claimed jobs that had not started;
//! - **metrics** per queue.
//!
//! Delivery is at least once: a handler may see a job again after a crash, so
//! handlers are idempotent (deterministic ids, state-guarded transitions).

mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use worker::Worker;

/// Longest backoff between two failed runs.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What became of one run of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Finished: the job is deleted.
    Done,
    /// Not a failure, just not now (paced, busy, deferred): run again at
    /// `due_ms` (Unix ms) without counting a failure.
    Later(i64),
    /// Failed: run again after `retry_in` (or the backoff for the number of
    /// failures so far) and count a failure; dead-lettered after
    /// [`Settings::max_failures`].
    Failed {
        /// Why, for logs and the dead-letter entry.
        error: String,
        /// A delay the handler knows better than the backoff.
        retry_in: Option<Duration>,
    },
    /// Will never succeed: dead-letter it now.
    Fatal(String),
}

impl Verdict {
    /// A failure retried with the standard backoff.
    pub fn failed(error: impl std::fmt::Display) -> Verdict {
        Verdict::Failed {
            error: error.to_string(),
            retry_in: None,
        }
    }
}

/// One claimed job, as a handler sees it.
#[derive(Debug)]
pub struct Run<T> {
    /// The job id (unique within its queue).
    pub id: String,
    /// Failed runs before this one (a crash of the previous holder counts).
    pub attempts: u32,
    /// When it was due, Unix ms.
    pub due_ms: i64,
    /// The decoded payload.
    pub payload: T,
    lost: Arc<AtomicBool>,
}

impl<T> Run<T> {
    /// A run outside a worker (unit tests of handlers).
    pub fn detached(id: impl Into<String>, payload: T) -> Self {
        Self {
            id: id.into(),
            attempts: 0,
            due_ms: 0,
            payload,
            lost: Arc::default(),
        }
    }

    /// True once the heartbeat found this job's lease taken over (this process
    /// could not renew it in time). Check it before a step that must not happen
    /// twice; whatever the handler returns afterwards is ignored.
    pub fn lease_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

/// What a queue's jobs mean. Implemented by the engine (inbound, timers), the
/// outbox, surveys and broadcasts.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The job payload as stored (JSON).
    type Payload: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The queue this handler drains.
    fn queue(&self) -> &'static str;

    /// Jobs with the same key, claimed together, run one after another in due
    /// order (one contact's messages in order); `None` runs the job on its own.
    fn group(&self, _payload: &Self::Payload) -> Option<String> {
        None
    }

    /// True when the queue's jobs may run with deferred durability
    /// ([`crate::store::durability`]): their writes, claims and acks on the
    /// embedded store do not each wait for an fsync. Only for handlers whose
    /// effects stay in the store until they call [`crate::store::Store::sync`]
    /// (the outbox syncs before each send). A crash then takes the job back to
    /// "not done" with everything it wrote, and it runs again.
    fn deferred_durability(&self) -> bool {
        false
    }

    /// Does the work of one job.
    async fn run(&self, job: &Run<Self::Payload>) -> Verdict;
}

/// How a worker runs its queue.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Jobs (or groups) running at once in this process.
    pub concurrency: usize,
    /// Most jobs claimed at once.
    pub batch: usize,
    /// Lease of a claimed job; renewed every third of it while the job runs.
    pub lease: Duration,
    /// How often to look for jobs scheduled by other processes (or coming due).
    pub poll: Duration,
    /// Failed runs after which a job is dead-lettered.
    pub max_failures: u32,
    /// Whether a handler that allows it ([`Handler::deferred_durability`])
    /// runs with deferred durability (`store.deferred_durability`).
    pub deferred_durability: bool,
}

impl Settings {
    /// Settings for `concurrency` jobs at once with the given lease and poll.
    pub fn new(concurrency: usize, lease: Duration, poll: Duration) -> Settings {
        Settings {
            concurrency: concurrency.max(1),
            batch: concurrency.max(1) * 4,
            lease,
            poll,
            max_failures: 20,
            deferred_durability: true,
        }
    }
}

/// Exponential backoff with jitter for the `attempt`-th failure (1-based):
/// between half and all of `2^(attempt-1)` seconds, at most five minutes.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_secs(1)
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(ms / 2 + fastrand::u64(0..=ms / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let ceiling = Duration::from_secs(1 << (attempt - 1).min(16)).min(MAX_BACKOFF);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?}");
        }
    }
}
