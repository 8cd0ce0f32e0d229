//! [`Worker`]: claims, heartbeats, settles and shuts down; see the module docs
//! of [`crate::jobs`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{Handler, Run, Settings, Verdict, backoff};
use crate::store::{Job, Store, StoreResult, durability};

/// Runs one queue's jobs with a [`Handler`]; cheap to clone.
pub struct Worker<H: Handler> {
    inner: Arc<Inner<H>>,
}

impl<H: Handler> Clone for Worker<H> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<H: Handler> {
    handler: Arc<H>,
    store: Store,
    settings: Settings,
    queue: &'static str,
    /// Jobs running now: id → (lease token, lost flag), renewed by the heartbeat.
    running: Mutex<HashMap<String, (u64, Arc<AtomicBool>)>>,
}

impl<H: Handler> Worker<H> {
    /// A worker for `handler`'s queue on `store`.
    pub fn new(handler: Arc<H>, store: Store, settings: Settings) -> Self {
        let queue = handler.queue();
        Self {
            inner: Arc::new(Inner {
                handler,
                store,
                settings,
                queue,
                running: Mutex::default(),
            }),
        }
    }

    /// The queue this worker drains.
    pub fn queue(&self) -> &'static str {
        self.inner.queue
    }

    /// Claims and runs jobs until `shutdown` turns true; then stops claiming,
    /// lets running jobs finish and hands back the ones that had not started.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let inner = &self.inner;
        let wake = inner.store.job_wake(inner.queue);
        let slots = Arc::new(Semaphore::new(inner.settings.concurrency));
        let mut tasks = JoinSet::new();
        let main = async {
            while !*shutdown.borrow() {
                while tasks.try_join_next().is_some() {}
                let free = slots.available_permits();
                if free > 0 {
                    match inner.claim(free.min(inner.settings.batch)).await {
                        Ok(groups) if !groups.is_empty() => {
                            for group in groups {
                                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                                    break;
                                };
                                let worker = self.clone();
                                let stop = shutdown.clone();
                                let scoped = inner.scoped(async move {
                                    worker.inner.run_group(group, Some(stop)).await;
                                    drop(permit);
                                });
                                tasks.spawn(scoped);
                            }
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(queue = inner.queue, error = %e, "job worker cannot reach the store");
                        }
                    }
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(inner.settings.poll) => {}
                    _ = shutdown.changed() => {}
                    Some(_) = tasks.join_next(), if free == 0 => {}
                }
            }
            while tasks.join_next().await.is_some() {}
        };
        let all = async {
            tokio::select! {
                () = main => {}
                () = inner.heartbeat() => {}
            }
        };
        inner.scoped(all).await;
    }

    /// Claims one batch and runs it to the end; returns how many jobs were
    /// claimed. Tests step a queue with it until it returns 0.
    pub async fn run_once(&self) -> StoreResult<usize> {
        let inner = &self.inner;
        let work = async {
            let groups = inner.claim(inner.settings.batch).await?;
            let n = groups.iter().map(Vec::len).sum();
            futures_util::future::join_all(
                groups.into_iter().map(|group| inner.run_group(group, None)),
            )
            .await;
            Ok(n)
        };
        let all = async {
            tokio::select! {
                out = work => out,
                () = inner.heartbeat() => unreachable!("the heartbeat never ends"),
            }
        };
        inner.scoped(all).await
    }
}

/// A claimed job with its lease token.
struct Claimed<T> {
    run: Run<T>,
    lease: u64,
}

impl<H: Handler> Inner<H> {
    /// Runs `work` with deferred durability when the handler allows it (its
    /// claims, heartbeats and settlements too: a crash takes them back with
    /// the job's writes).
    fn scoped<F: Future>(&self, work: F) -> impl Future<Output = F::Output> + use<F, H> {
        let deferred = self.settings.deferred_durability && self.handler.deferred_durability();
        async move {
            if deferred {
                durability::deferred(work).await
            } else {
                work.await
            }
        }
    }

    /// Claims up to `max` jobs, dead-letters undecodable ones, and groups the
    /// rest by the handler's group key (due order kept within a group).
    async fn claim(&self, max: usize) -> StoreResult<Vec<Vec<Claimed<H::Payload>>>> {
        let jobs = self
            .store
            .claim_jobs(self.queue, self.settings.lease, max)
            .await?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        metrics::counter!("balas_jobs_claimed_total", "queue" => self.queue)
            .increment(jobs.len() as u64);
        let mut groups: Vec<Vec<Claimed<H::Payload>>> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        for job in jobs {
            let payload = match serde_json::from_slice::<H::Payload>(&job.payload) {
                Ok(p) => p,
                Err(e) => {
                    let error = format!("the payload does not decode: {e}");
                    tracing::error!(queue = self.queue, job = %job.id, %error, "dead-lettering an undecodable job");
                    self.bury(&job.id, job.lease, job.attempts, &job.payload, &error)
                        .await;
                    continue;
                }
            };
            let Job {
                id,
                due_ms,
                attempts,
                lease,
                ..
            } = job;
            let claimed = Claimed {
                run: Run {
                    id,
                    attempts,
                    due_ms,
                    payload,
                    lost: Arc::default(),
                },
                lease,
            };
            match self.handler.group(&claimed.run.payload) {
                Some(key) => match by_key.get(&key) {
                    Some(&i) => groups[i].push(claimed),
                    None => {
                        by_key.insert(key, groups.len());
                        groups.push(vec![claimed]);
                    }
                },
                None => groups.push(vec![claimed]),
            }
        }
        Ok(groups)
    }

    /// Runs a group's jobs one after another. After shutdown was asked, the
    /// jobs not started yet are handed back at once.
    async fn run_group(
        &self,
        group: Vec<Claimed<H::Payload>>,
        stop: Option<watch::Receiver<bool>>,
    ) {
        for claimed in group {
            if stop.as_ref().is_some_and(|s| *s.borrow()) {
                let Claimed { run, lease } = claimed;
                if let Err(e) = self
                    .store
                    .retry_job(self.queue, &run.id, lease, run.due_ms, false)
                    .await
                {
                    tracing::warn!(queue = self.queue, job = %run.id, error = %e, "could not hand back a job at shutdown; its lease will expire");
                }
                continue;
            }
            self.run_one(claimed).await;
        }
    }

    async fn run_one(&self, claimed: Claimed<H::Payload>) {
        let Claimed { run, lease } = claimed;
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run.id.clone(), (lease, Arc::clone(&run.lost)));
        let started = std::time::Instant::now();
        let verdict = self.handler.run(&run).await;
        metrics::histogram!("balas_job_seconds", "queue" => self.queue)
            .record(started.elapsed().as_secs_f64());
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run.id);
        self.settle(&run, lease, verdict).await;
    }

    async fn settle(&self, run: &Run<H::Payload>, lease: u64, verdict: Verdict) {
        let (queue, store) = (self.queue, &self.store);
        if run.lease_lost() {
            tracing::warn!(queue, job = %run.id, "the job's lease was taken over while it ran; leaving it to the new holder");
            metrics::counter!("balas_jobs_total", "queue" => queue, "outcome" => "lease_lost")
                .increment(1);
            return;
        }
        let (outcome, result) = match verdict {
            Verdict::Done => ("done", store.ack_job(queue, &run.id, lease).await),
            Verdict::Later(due_ms) => (
                "later",
                store.retry_job(queue, &run.id, lease, due_ms, false).await,
            ),
            Verdict::Failed { error, .. } if run.attempts + 1 >= self.settings.max_failures => {
                tracing::error!(queue, job = %run.id, %error, attempts = run.attempts + 1, "job keeps failing; moved to the dead-letter list");
                let payload = serde_json::to_vec(&run.payload).unwrap_or_default();
                self.bury(&run.id, lease, run.attempts + 1, &payload, &error)
                    .await;
                return;
            }
            Verdict::Failed { error, retry_in } => {
                let delay = retry_in.unwrap_or_else(|| backoff(run.attempts + 1));
                tracing::warn!(queue, job = %run.id, %error, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
                let due = store.now_ms().saturating_add(delay.as_millis() as i64);
                (
                    "failed",
                    store.retry_job(queue, &run.id, lease, due, true).await,
                )
            }
            Verdict::Fatal(error) => {
                tracing::error!(queue, job = %run.id, %error, "job cannot succeed; moved to the dead-letter list");
                let payload = serde_json::to_vec(&run.payload).unwrap_or_default();
                self.bury(&run.id, lease, run.attempts, &payload, &error)
                    .await;
                return;
            }
        };
        metrics::counter!("balas_jobs_total", "queue" => queue, "outcome" => outcome).increment(1);
        match result {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(queue, job = %run.id, "the job's lease was taken over before it was settled");
            }
            Err(e) => {
                tracing::warn!(queue, job = %run.id, error = %e, "could not settle a job; its lease will expire and it runs again");
            }
        }
    }

    /// Moves a job to the dead-letter list with its payload and the error.
    async fn bury(&self, id: &str, lease: u64, attempts: u32, payload: &[u8], error: &str) {
        let payload = serde_json::from_slice::<serde_json::Value>(payload)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(payload).into()));
        let entry = serde_json::json!({
            "queue": self.queue,
            "job": id,
            "error": error,
            "attempts": attempts,
            "at_ms": self.store.now_ms(),
            "payload": payload,
        });
        match self
            .store
            .bury_job(self.queue, id, lease, entry.to_string().as_bytes())
            .await
        {
            Ok(true) => {
                metrics::counter!("balas_dead_letters_total", "queue" => self.queue).increment(1);
            }
            Ok(false) => {
                tracing::warn!(queue = self.queue, job = %id, "the job's lease was taken over before it was dead-lettered");
            }
            Err(e) => {
                tracing::warn!(queue = self.queue, job = %id, error = %e, "could not dead-letter a job; its lease will expire and it runs again");
            }
        }
    }

    /// Renews the leases of running jobs every third of the lease, forever.
    /// A lease that could not be renewed is marked lost on its run.
    async fn heartbeat(&self) {
        let every = (self.settings.lease / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(every).await;
            let held: Vec<(String, u64, Arc<AtomicBool>)> = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(id, (lease, lost))| (id.clone(), *lease, Arc::clone(lost)))
                .collect();
            if held.is_empty() {
                continue;
            }
            let leases: Vec<(String, u64)> =
                held.iter().map(|(id, l, _)| (id.clone(), *l)).collect();
            match self
                .store
                .extend_jobs(self.queue, &leases, self.settings.lease)
                .await
            {
                Ok(still) => {
                    for ((id, _, lost), held) in held.iter().zip(still) {
                        if !held {
                            tracing::warn!(queue = self.queue, job = %id, "lost the lease of a running job");
                            lost.store(true, Ordering::Relaxed);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(queue = self.queue, error = %e, "could not renew job leases; retrying");
                }
            }
        }
    }
}
