//! A [`Backend`] wrapper that counts calls by kind, for measuring how many store
//! operations (Redis round trips, embedded transactions) a piece of work costs.
//!
//! Every call is passed through unchanged; [`CountingBackend::take`] returns the
//! counts since the last `take` and starts again from zero.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use balas::store::{Backend, Job, JobCounts, NewJob, StoreResult, Versioned};
use tokio::sync::mpsc;

/// Calls that change state: on the embedded store each is a write transaction
/// (a share of an fsync), on Redis a write the AOF records.
pub const WRITES: &[&str] = &[
    "remember",
    "forget",
    "doc_put",
    "jobs_push",
    "jobs_claim",
    "jobs_ack",
    "jobs_retry",
    "jobs_cancel",
    "index_put",
    "index_remove",
    "index_pop_min_into",
    "list_push",
    "lock",
    "unlock",
    "rate_take",
    "counter_add",
];

/// True for a call that changes state (see [`WRITES`]).
pub fn is_write(call: &str) -> bool {
    WRITES.contains(&call)
}

/// Counts every call to the wrapped backend.
pub struct CountingBackend {
    inner: Arc<dyn Backend>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl CountingBackend {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>) -> CountingBackend {
        CountingBackend {
            inner,
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// The wrapped backend (calls through it are not counted).
    pub fn inner(&self) -> &Arc<dyn Backend> {
        &self.inner
    }

    /// Calls by name since the last `take`; the counts start again from zero.
    pub fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }

    fn count(&self, call: &'static str) {
        *self.counts.lock().unwrap().entry(call).or_default() += 1;
    }
}

#[async_trait]
impl Backend for CountingBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.count("ping");
        self.inner.ping().await
    }

    async fn remember(&self, key: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool> {
        self.count("remember");
        self.inner.remember(key, ttl, now_ms).await
    }

    async fn forget(&self, key: &str) -> StoreResult<()> {
        self.count("forget");
        self.inner.forget(key).await
    }

    async fn doc_get(&self, key: &str) -> StoreResult<Option<Versioned>> {
        self.count("doc_get");
        self.inner.doc_get(key).await
    }

    async fn doc_put(&self, key: &str, expected: u64, data: &[u8]) -> StoreResult<Option<u64>> {
        self.count("doc_put");
        self.inner.doc_put(key, expected, data).await
    }

    async fn doc_get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Versioned>>> {
        self.count("doc_get_many");
        self.inner.doc_get_many(keys).await
    }

    async fn jobs_push(&self, queue: &str, jobs: &[NewJob], now_ms: i64) -> StoreResult<Vec<bool>> {
        self.count("jobs_push");
        self.inner.jobs_push(queue, jobs, now_ms).await
    }

    async fn jobs_claim(
        &self,
        queue: &str,
        now_ms: i64,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Job>> {
        self.count("jobs_claim");
        self.inner.jobs_claim(queue, now_ms, lease, max).await
    }

    async fn jobs_ack(&self, queue: &str, id: &str) -> StoreResult<bool> {
        self.count("jobs_ack");
        self.inner.jobs_ack(queue, id).await
    }

    async fn jobs_retry(
        &self,
        queue: &str,
        id: &str,
        due_ms: i64,
        payload: Option<&[u8]>,
    ) -> StoreResult<bool> {
        self.count("jobs_retry");
        self.inner.jobs_retry(queue, id, due_ms, payload).await
    }

    async fn jobs_cancel(&self, queue: &str, id: &str) -> StoreResult<bool> {
        self.count("jobs_cancel");
        self.inner.jobs_cancel(queue, id).await
    }

    async fn jobs_get(&self, queue: &str, id: &str) -> StoreResult<Option<Job>> {
        self.count("jobs_get");
        self.inner.jobs_get(queue, id).await
    }

    async fn jobs_counts(&self, queue: &str) -> StoreResult<JobCounts> {
        self.count("jobs_counts");
        self.inner.jobs_counts(queue).await
    }

    async fn jobs_next_due(&self, queue: &str) -> StoreResult<Option<i64>> {
        self.count("jobs_next_due");
        self.inner.jobs_next_due(queue).await
    }

    async fn index_put(&self, index: &str, member: &str, score: f64) -> StoreResult<()> {
        self.count("index_put");
        self.inner.index_put(index, member, score).await
    }

    async fn index_remove(&self, index: &str, member: &str) -> StoreResult<bool> {
        self.count("index_remove");
        self.inner.index_remove(index, member).await
    }

    async fn index_range(
        &self,
        index: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>> {
        self.count("index_range");
        self.inner.index_range(index, min, max, limit).await
    }

    async fn index_rank(&self, index: &str, member: &str) -> StoreResult<Option<u64>> {
        self.count("index_rank");
        self.inner.index_rank(index, member).await
    }

    async fn index_score(&self, index: &str, member: &str) -> StoreResult<Option<f64>> {
        self.count("index_score");
        self.inner.index_score(index, member).await
    }

    async fn index_len(&self, index: &str) -> StoreResult<u64> {
        self.count("index_len");
        self.inner.index_len(index).await
    }

    async fn index_pop_min_into(
        &self,
        indexes: &[String],
        holder: &str,
        capacity: u64,
        holder_score: f64,
    ) -> StoreResult<Option<(String, String)>> {
        self.count("index_pop_min_into");
        self.inner
            .index_pop_min_into(indexes, holder, capacity, holder_score)
            .await
    }

    async fn list_push(&self, key: &str, item: &[u8]) -> StoreResult<u64> {
        self.count("list_push");
        self.inner.list_push(key, item).await
    }

    async fn list_range(&self, key: &str, start: u64, limit: u64) -> StoreResult<Vec<Vec<u8>>> {
        self.count("list_range");
        self.inner.list_range(key, start, limit).await
    }

    async fn list_len(&self, key: &str) -> StoreResult<u64> {
        self.count("list_len");
        self.inner.list_len(key).await
    }

    async fn lock(&self, key: &str, owner: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool> {
        self.count("lock");
        self.inner.lock(key, owner, ttl, now_ms).await
    }

    async fn unlock(&self, key: &str, owner: &str) -> StoreResult<bool> {
        self.count("unlock");
        self.inner.unlock(key, owner).await
    }

    async fn rate_take(
        &self,
        key: &str,
        per_second: f64,
        burst: u32,
        now_ms: i64,
    ) -> StoreResult<u64> {
        self.count("rate_take");
        self.inner.rate_take(key, per_second, burst, now_ms).await
    }

    async fn counter_add(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.count("counter_add");
        self.inner.counter_add(key, delta).await
    }

    async fn counter_get(&self, key: &str) -> StoreResult<i64> {
        self.count("counter_get");
        self.inner.counter_get(key).await
    }

    async fn publish(&self, topic: &str, payload: &[u8]) -> StoreResult<()> {
        self.count("publish");
        self.inner.publish(topic, payload).await
    }

    async fn subscribe(&self, topic: &str) -> StoreResult<mpsc::Receiver<Vec<u8>>> {
        self.count("subscribe");
        self.inner.subscribe(topic).await
    }
}
