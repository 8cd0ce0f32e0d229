//! Typed durable jobs on top of the backend's job queues.
//!
//! Every piece of background work — inbound events, outbound sends, timers,
//! surveys, broadcast batches — is a job in one of the [`queues`]. A job is
//! stored before anyone acts on it, claimed with a lease, and acknowledged only
//! when done, so a crash at any point means it runs again rather than never.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Job, NewJob, Store, StoreError, StoreResult};

/// Names of the job queues.
pub mod queues {
    /// Inbound webhook events waiting for the conversation engine.
    pub const INBOUND: &str = "inbound";
    /// Outbound messages waiting to be sent.
    pub const OUTBOX: &str = "outbox";
    /// Timers: agent reply timeouts, waiting-customer reassurance, surveys.
    pub const TIMERS: &str = "timers";
    /// Broadcast recipients waiting to be sent.
    pub const BROADCAST: &str = "broadcast";
}

/// A claimed job with its decoded payload.
#[derive(Debug, Clone)]
pub struct TypedJob<T> {
    /// Job id.
    pub id: String,
    /// How many times it was claimed before.
    pub attempts: u32,
    /// When it was due.
    pub due_ms: i64,
    /// The payload.
    pub payload: T,
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
            },
            dedupe,
        };
        let pushed = self
            .backend
            .jobs_push(queue, std::slice::from_ref(&job), self.now_ms())
            .await?;
        Ok(pushed.first().copied().unwrap_or(false))
    }

    /// Claims due jobs. A payload that does not decode is logged and dropped
    /// (acknowledged) so it cannot block the queue; nothing valid is ever dropped.
    pub async fn claim<T: DeserializeOwned>(
        &self,
        queue: &str,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<TypedJob<T>>> {
        let jobs = self
            .backend
            .jobs_claim(queue, self.now_ms(), lease, max)
            .await?;
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            match serde_json::from_slice(&job.payload) {
                Ok(payload) => out.push(TypedJob {
                    id: job.id,
                    attempts: job.attempts,
                    due_ms: job.due_ms,
                    payload,
                }),
                Err(e) => {
                    tracing::error!(queue, job = %job.id, error = %e, "dropping undecodable job");
                    self.backend.jobs_ack(queue, &job.id).await?;
                }
            }
        }
        Ok(out)
    }

    /// Marks a job done.
    pub async fn ack(&self, queue: &str, id: &str) -> StoreResult<()> {
        self.backend.jobs_ack(queue, id).await.map(|_| ())
    }

    /// Puts a job back to run again at `due_ms`.
    pub async fn retry_at(&self, queue: &str, id: &str, due_ms: i64) -> StoreResult<()> {
        self.backend
            .jobs_retry(queue, id, due_ms, None)
            .await
            .map(|_| ())
    }

    /// Cancels a scheduled job.
    pub async fn cancel(&self, queue: &str, id: &str) -> StoreResult<bool> {
        self.backend.jobs_cancel(queue, id).await
    }
}
