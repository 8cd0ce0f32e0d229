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
//!
//! The busy queues are split into parts on a Redis Cluster
//! ([`super::job_parts`]): a queue's calls here take the queue's name and
//! route to its parts; what the runner claims carries its part.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::Notify;

use super::job_parts::{SPLIT, part_name, part_of};
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

/// The document recording how many parts the split queues have.
const PARTS_KEY: &str = "jobs:parts";

/// In-process wake-ups, one per queue: scheduling a job tells this process's
/// worker of that queue to claim now instead of at its next poll, and which
/// parts of the queue to claim from.
#[derive(Default)]
pub(crate) struct Wakers(Mutex<HashMap<String, Arc<Wake>>>);

/// The wake-up of one queue.
#[derive(Default)]
pub(crate) struct Wake {
    /// Notified after every push that enqueued something.
    pub(crate) notify: Notify,
    /// The parts pushed to since the worker last looked (bit per part).
    pushed: AtomicU64,
}

impl Wakers {
    pub(crate) fn get(&self, queue: &str) -> Arc<Wake> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(queue.to_string()).or_default())
    }

    fn pushed(&self, queue: &str, parts: u64) {
        let wake = self.get(queue);
        wake.pushed.fetch_or(parts, Ordering::AcqRel);
        wake.notify.notify_one();
    }
}

/// Jobs to push with their parts, in the caller's order.
type Routed = Vec<(u32, NewJob)>;

/// Items grouped by part: (part, their positions in the caller's list, them).
type ByPart<T> = Vec<(u32, Vec<usize>, Vec<T>)>;

/// `items` grouped by part, keeping their positions.
fn by_part<T>(items: Vec<(u32, T)>) -> ByPart<T> {
    let mut groups: ByPart<T> = Vec::new();
    for (i, (part, job)) in items.into_iter().enumerate() {
        match groups.iter_mut().find(|g| g.0 == part) {
            Some(g) => {
                g.1.push(i);
                g.2.push(job);
            }
            None => groups.push((part, vec![i], vec![job])),
        }
    }
    groups
}

/// The bits of the parts that got a new job.
fn pushed_bits(groups: &ByPart<NewJob>, pushed: &[Vec<bool>]) -> u64 {
    groups
        .iter()
        .zip(pushed)
        .filter(|(_, p)| p.iter().any(|x| *x))
        .fold(0, |bits, (g, _)| bits | (1u64 << g.0))
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

    /// Pushes several jobs, each into the part of `queue` its id routes to;
    /// for each, true when it was enqueued. The jobs of one part are pushed
    /// atomically (all or nothing); on an error some parts may hold theirs,
    /// and pushing the same jobs again enqueues only the missing ones. Wakes
    /// this process's worker of `queue`.
    pub async fn push_jobs(&self, queue: &str, jobs: &[NewJob]) -> StoreResult<Vec<bool>> {
        let parts = self.queue_parts(queue);
        let routed = jobs
            .iter()
            .map(|j| (part_of(&j.job.id, parts), j.clone()))
            .collect();
        self.push_routed(queue, routed).await
    }

    /// Pushes jobs into the given parts of `queue` (one backend call per
    /// part, all at once); see [`Store::push_jobs`].
    async fn push_routed(&self, queue: &str, routed: Routed) -> StoreResult<Vec<bool>> {
        let n = routed.len();
        let groups = by_part(routed);
        let now = self.now_ms();
        let pushed = join_all(groups.iter().map(|(part, _, jobs)| async move {
            self.backend
                .jobs_push(&part_name(queue, *part), jobs, now)
                .await
        }))
        .await
        .into_iter()
        .collect::<StoreResult<Vec<Vec<bool>>>>()?;
        let bits = pushed_bits(&groups, &pushed);
        if bits != 0 {
            self.wakers.pushed(queue, bits);
        }
        let mut out = vec![false; n];
        for ((_, positions, _), pushed) in groups.iter().zip(pushed) {
            for (i, p) in positions.iter().zip(pushed) {
                out[*i] = p;
            }
        }
        Ok(out)
    }

    /// Stores webhook events as inbound jobs, skipping events seen before
    /// (by their platform id, for [`super::DEDUPE_TTL`], across processes and
    /// restarts). Returns, per event, whether it was new. Each event goes to
    /// the part of `inbound` its customer routes to, so one customer's
    /// events share a part and a redelivered event meets its dedupe key
    /// there; the events of one part are stored atomically, and on an error
    /// storing the same events again stores only the missing ones. With
    /// [`Store::with_replicas_ack`], returns only once the events (new or
    /// seen before) are on that many replicas, and fails otherwise.
    pub async fn ingest_inbound(&self, events: &[InboundEvent]) -> StoreResult<Vec<bool>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let parts = self.queue_parts(queues::INBOUND);
        let mut jobs = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_vec(event).map_err(|e| StoreError::Corrupt {
                key: event.dedupe_key.clone(),
                reason: e.to_string(),
            })?;
            let part = part_of(&event.contact_key(), parts);
            jobs.push((
                part,
                NewJob {
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
                },
            ));
        }
        if self.replicas_ack == 0 {
            return self.push_routed(queues::INBOUND, jobs).await;
        }
        let groups = by_part(jobs);
        let answers = join_all(groups.iter().map(|(part, _, jobs)| async move {
            self.backend
                .jobs_push_replicated(
                    &part_name(queues::INBOUND, *part),
                    jobs,
                    now,
                    self.replicas_ack,
                    REPLICAS_ACK_TIMEOUT,
                )
                .await
        }))
        .await
        .into_iter()
        .collect::<StoreResult<Vec<(Vec<bool>, u32)>>>()?;
        // Each part's push waited for its own master's replicas: the events
        // are safe when every part's were.
        let acked = answers.iter().map(|(_, a)| *a).min().unwrap_or(0);
        let pushed: Vec<Vec<bool>> = answers.into_iter().map(|(p, _)| p).collect();
        let bits = pushed_bits(&groups, &pushed);
        if bits != 0 {
            self.wakers.pushed(queues::INBOUND, bits);
        }
        let mut out = vec![false; events.len()];
        for ((_, positions, _), pushed) in groups.iter().zip(pushed) {
            for (i, p) in positions.iter().zip(pushed) {
                out[*i] = p;
            }
        }
        if acked < self.replicas_ack {
            return Err(StoreError::Unavailable(format!(
                "only {acked} of {} replicas acknowledged the events within {} ms",
                self.replicas_ack,
                REPLICAS_ACK_TIMEOUT.as_millis()
            )));
        }
        Ok(out)
    }

    /// Makes sure every process splits the job queues alike: records this
    /// store's number of parts on first use; on a different number, accepts
    /// it (and records it) only when the parts it would no longer read hold
    /// no job. `Ok(Err(why))` when they do: starting would strand those jobs.
    pub async fn check_queue_parts(&self) -> StoreResult<Result<(), String>> {
        let mine = self.queue_parts;
        let Some(stored) = self.get_json::<u32>(PARTS_KEY).await? else {
            self.put_json(PARTS_KEY, &mine).await?;
            return Ok(Ok(()));
        };
        if stored == mine {
            return Ok(Ok(()));
        }
        let mut busy = Vec::new();
        for queue in SPLIT {
            for part in mine..stored {
                let name = part_name(queue, part);
                let c = self.backend.jobs_counts(&name).await?;
                if c.pending + c.leased + c.dead > 0 {
                    busy.push(name.into_owned());
                }
            }
        }
        if !busy.is_empty() {
            return Ok(Err(format!(
                "the job queues of this store are split into {stored} parts, but this process would use {mine} (store.queue_parts) and never read {}; set store.queue_parts = {stored} (every process of one store must agree)",
                busy.join(", ")
            )));
        }
        self.put_json(PARTS_KEY, &mine).await?;
        Ok(Ok(()))
    }

    /// How many parts `queue` has: [`Store::with_queue_parts`] for the split
    /// queues ([`SPLIT`]), 1 for the others.
    pub fn queue_parts(&self, queue: &str) -> u32 {
        if SPLIT.contains(&queue) {
            self.queue_parts
        } else {
            1
        }
    }

    /// The backend queues of every part of `queue`.
    fn part_names(&self, queue: &str) -> Vec<String> {
        (0..self.queue_parts(queue))
            .map(|p| part_name(queue, p).into_owned())
            .collect()
    }

    /// Cancels a job scheduled by id ([`Store::schedule`]) wherever it is in
    /// its part. (Inbound events are routed by customer, not by id: they are
    /// never cancelled.)
    pub async fn cancel(&self, queue: &str, id: &str) -> StoreResult<bool> {
        let part = part_of(id, self.queue_parts(queue));
        self.backend.jobs_cancel(&part_name(queue, part), id).await
    }

    /// Pending, leased and dead counts of a queue, all parts summed (O(1)
    /// per part on both backends; the parts are asked at once).
    pub async fn job_counts(&self, queue: &str) -> StoreResult<JobCounts> {
        let names = self.part_names(queue);
        let counts = join_all(names.iter().map(|q| self.backend.jobs_counts(q))).await;
        let mut sum = JobCounts::default();
        for c in counts {
            let c = c?;
            sum.pending += c.pending;
            sum.leased += c.leased;
            sum.dead += c.dead;
        }
        Ok(sum)
    }

    /// The earliest due time of a pending job of `queue` (any part).
    pub async fn next_due(&self, queue: &str) -> StoreResult<Option<i64>> {
        let names = self.part_names(queue);
        let dues = join_all(names.iter().map(|q| self.backend.jobs_next_due(q))).await;
        let mut first = None;
        for due in dues {
            first = match (first, due?) {
                (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                (a, b) => a.or(b),
            };
        }
        Ok(first)
    }

    /// A job scheduled by id as it is stored now (not claimed).
    pub async fn job(&self, queue: &str, id: &str) -> StoreResult<Option<Job>> {
        let part = part_of(id, self.queue_parts(queue));
        self.backend.jobs_get(&part_name(queue, part), id).await
    }

    /// Dead-letter entries of a queue, oldest first within each part, the
    /// parts one after another.
    pub async fn dead_letters(
        &self,
        queue: &str,
        start: u64,
        limit: u64,
    ) -> StoreResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut skip = start;
        for name in self.part_names(queue) {
            if out.len() as u64 >= limit {
                break;
            }
            let len = if self.queue_parts(queue) == 1 {
                u64::MAX
            } else {
                self.backend.jobs_counts(&name).await?.dead
            };
            if skip >= len {
                skip -= len;
                continue;
            }
            let want = limit - out.len() as u64;
            out.extend(self.backend.jobs_dead(&name, skip, want).await?);
            skip = 0;
        }
        Ok(out)
    }

    /// Removes the oldest dead-letter entry of `queue` equal to `entry`
    /// (retention, erasure); false when there is none (any more).
    pub async fn remove_dead_letter(&self, queue: &str, entry: &[u8]) -> StoreResult<bool> {
        for name in self.part_names(queue) {
            if self.backend.jobs_dead_remove(&name, entry).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The wake-up of `queue` in this process: notified when a job is
    /// scheduled here.
    pub(crate) fn job_wake(&self, queue: &str) -> Arc<Wake> {
        self.wakers.get(queue)
    }

    /// The parts of `queue` this process pushed to since the last call (bit
    /// per part), for the queue's worker.
    pub(crate) fn take_pushed(&self, queue: &str) -> u64 {
        self.wakers.get(queue).pushed.swap(0, Ordering::AcqRel)
    }

    // ---- for the job runner -------------------------------------------------

    /// Claims due jobs of `queue` under fresh leases: from each `(part, max)`
    /// asked, up to `max`. The parts are asked at once; each answers on its
    /// own (one part failing does not lose what another claimed).
    pub(crate) async fn claim_jobs(
        &self,
        queue: &str,
        asks: &[(u32, usize)],
        lease: Duration,
    ) -> Vec<(u32, StoreResult<Vec<Job>>)> {
        let now = self.now_ms();
        join_all(asks.iter().map(|&(part, max)| async move {
            let claimed = self
                .backend
                .jobs_claim(&part_name(queue, part), now, lease, max)
                .await;
            (part, claimed)
        }))
        .await
    }

    /// Deletes a finished job held under `lease`; false when the lease was lost.
    pub(crate) async fn ack_job(
        &self,
        queue: &str,
        part: u32,
        id: &str,
        lease: u64,
    ) -> StoreResult<bool> {
        self.backend
            .jobs_ack(&part_name(queue, part), id, lease)
            .await
    }

    /// Puts a job held under `lease` back at `due_ms`; `failed` counts a failure.
    pub(crate) async fn retry_job(
        &self,
        queue: &str,
        part: u32,
        id: &str,
        lease: u64,
        due_ms: i64,
        failed: bool,
    ) -> StoreResult<bool> {
        self.backend
            .jobs_retry(&part_name(queue, part), id, lease, due_ms, None, failed)
            .await
    }

    /// Extends the given leases `(part, id, token)` by `lease` from now; for
    /// each, whether it is still held.
    pub(crate) async fn extend_jobs(
        &self,
        queue: &str,
        leases: &[(u32, String, u64)],
        lease: Duration,
    ) -> StoreResult<Vec<bool>> {
        let deadline = self
            .now_ms()
            .saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let groups = by_part(
            leases
                .iter()
                .map(|(part, id, token)| (*part, (id.clone(), *token)))
                .collect(),
        );
        let held = join_all(groups.iter().map(|(part, _, leases)| async move {
            self.backend
                .jobs_extend(&part_name(queue, *part), leases, deadline)
                .await
        }))
        .await;
        let mut out = vec![false; leases.len()];
        for ((_, positions, _), held) in groups.iter().zip(held) {
            for (i, h) in positions.iter().zip(held?) {
                out[*i] = h;
            }
        }
        Ok(out)
    }

    /// Moves a job held under `lease` to the dead-letter list of its part
    /// with `entry`.
    pub(crate) async fn bury_job(
        &self,
        queue: &str,
        part: u32,
        id: &str,
        lease: u64,
        entry: &[u8],
    ) -> StoreResult<bool> {
        self.backend
            .jobs_bury(&part_name(queue, part), id, lease, entry)
            .await
    }
}
