//! A [`Backend`] wrapper that counts calls by kind, for measuring how many store
//! operations (Redis round trips, embedded transactions) a piece of work costs.
//!
//! Every call is passed through unchanged; [`CountingBackend::take`] returns the
//! counts since the last `take` and starts again from zero. Calls are counted
//! by name and by the kind of key they touch: the key up to its first `:`
//! (`contact`, `conv`, `out`, `lock`, …), so the counts say where they go.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use balas::store::{
    Backend, Job, JobCounts, MoveOutcome, NewJob, RawEntry, StoreResult, Versioned,
};
use tokio::sync::mpsc;

/// Calls that change state: on the embedded store each is a write transaction
/// (a share of an fsync), on Redis a write the AOF records.
pub const WRITES: &[&str] = &[
    "remember",
    "forget",
    "doc_put",
    "doc_put_counted",
    "doc_delete",
    "jobs_push",
    "jobs_claim",
    "jobs_ack",
    "jobs_retry",
    "jobs_extend",
    "jobs_bury",
    "jobs_cancel",
    "jobs_dead_remove",
    "index_put",
    "index_put_many",
    "index_remove",
    "index_pop_min_into",
    "index_move",
    "list_push",
    "list_set",
    "list_delete",
    "lock",
    "unlock",
    "rate_take",
    "rate_reset",
    "purge_expired",
    "counter_add",
];

/// True for a call that changes state (see [`WRITES`]).
pub fn is_write(call: &str) -> bool {
    WRITES.contains(&call)
}

/// Counts every call to the wrapped backend.
pub struct CountingBackend {
    inner: Arc<dyn Backend>,
    counts: Mutex<BTreeMap<(&'static str, String), u64>>,
    rounds: Mutex<Rounds>,
}

/// Calls in flight, to count rounds: a round starts when a call begins while
/// no other is in flight. Work that awaits each call before the next costs
/// one round per call; calls made together (joined) share one. On the
/// embedded store each round of writes is at least one commit cycle, on Redis
/// one network round trip: the latency of a piece of work.
#[derive(Default)]
struct Rounds {
    in_flight: usize,
    started: u64,
    /// With `STORE_OPS_TRACE` set: every call, with its round.
    trace: Option<Vec<String>>,
}

/// Ends a counted call when dropped.
pub struct InFlight<'a>(&'a Mutex<Rounds>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

/// Calls by (name, key kind).
pub type CallCounts = BTreeMap<(&'static str, String), u64>;

/// The kind of a key: its part before the first `:`.
pub fn key_kind(key: &str) -> String {
    key.split(':').next().unwrap_or(key).to_string()
}

impl CountingBackend {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>) -> CountingBackend {
        CountingBackend {
            inner,
            counts: Mutex::new(BTreeMap::new()),
            rounds: Mutex::new(Rounds {
                trace: std::env::var_os("STORE_OPS_TRACE").map(|_| Vec::new()),
                ..Rounds::default()
            }),
        }
    }

    /// The wrapped backend (calls through it are not counted).
    pub fn inner(&self) -> &Arc<dyn Backend> {
        &self.inner
    }

    /// Calls by (name, key kind) since the last `take`; the counts start again
    /// from zero.
    pub fn take(&self) -> CallCounts {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }

    /// Rounds since the last call of this (see [`Rounds`]), and the trace of
    /// the calls when `STORE_OPS_TRACE` is set.
    pub fn take_rounds(&self) -> (u64, Vec<String>) {
        let mut rounds = self.rounds.lock().unwrap();
        let trace = rounds
            .trace
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        (std::mem::take(&mut rounds.started), trace)
    }

    fn count(&self, call: &'static str, key: &str) -> InFlight<'_> {
        *self
            .counts
            .lock()
            .unwrap()
            .entry((call, key_kind(key)))
            .or_default() += 1;
        let mut rounds = self.rounds.lock().unwrap();
        if rounds.in_flight == 0 {
            rounds.started += 1;
        }
        rounds.in_flight += 1;
        let round = rounds.started;
        if let Some(trace) = rounds.trace.as_mut() {
            let mark = if is_write(call) { " *" } else { "" };
            trace.push(format!("{round:>3} {call}{mark} {}", key_kind(key)));
        }
        InFlight(&self.rounds)
    }
}

#[async_trait]
impl Backend for CountingBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn ping(&self) -> StoreResult<()> {
        let _call = self.count("ping", "");
        self.inner.ping().await
    }

    async fn remember(&self, key: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool> {
        let _call = self.count("remember", key);
        self.inner.remember(key, ttl, now_ms).await
    }

    async fn forget(&self, key: &str) -> StoreResult<()> {
        let _call = self.count("forget", key);
        self.inner.forget(key).await
    }

    async fn doc_get(&self, key: &str) -> StoreResult<Option<Versioned>> {
        let _call = self.count("doc_get", key);
        self.inner.doc_get(key).await
    }

    async fn doc_put(&self, key: &str, expected: u64, data: &[u8]) -> StoreResult<Option<u64>> {
        let _call = self.count("doc_put", key);
        self.inner.doc_put(key, expected, data).await
    }

    async fn doc_put_counted(
        &self,
        key: &str,
        expected: u64,
        data: &[u8],
        counters: &[(String, i64)],
    ) -> StoreResult<Option<u64>> {
        let _call = self.count("doc_put_counted", key);
        self.inner
            .doc_put_counted(key, expected, data, counters)
            .await
    }

    async fn doc_delete(&self, key: &str) -> StoreResult<bool> {
        let _call = self.count("doc_delete", key);
        self.inner.doc_delete(key).await
    }

    async fn doc_get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Versioned>>> {
        let _call = self.count("doc_get_many", keys.first().map_or("", String::as_str));
        self.inner.doc_get_many(keys).await
    }

    async fn jobs_push(&self, queue: &str, jobs: &[NewJob], now_ms: i64) -> StoreResult<Vec<bool>> {
        let _call = self.count("jobs_push", queue);
        self.inner.jobs_push(queue, jobs, now_ms).await
    }

    async fn jobs_push_replicated(
        &self,
        queue: &str,
        jobs: &[NewJob],
        now_ms: i64,
        replicas: u32,
        timeout: Duration,
    ) -> StoreResult<(Vec<bool>, u32)> {
        let _call = self.count("jobs_push_replicated", queue);
        self.inner
            .jobs_push_replicated(queue, jobs, now_ms, replicas, timeout)
            .await
    }

    async fn jobs_claim(
        &self,
        queue: &str,
        now_ms: i64,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Job>> {
        let _call = self.count("jobs_claim", queue);
        self.inner.jobs_claim(queue, now_ms, lease, max).await
    }

    async fn jobs_ack(&self, queue: &str, id: &str, lease: u64) -> StoreResult<bool> {
        let _call = self.count("jobs_ack", queue);
        self.inner.jobs_ack(queue, id, lease).await
    }

    async fn jobs_retry(
        &self,
        queue: &str,
        id: &str,
        lease: u64,
        due_ms: i64,
        payload: Option<&[u8]>,
        failed: bool,
    ) -> StoreResult<bool> {
        let _call = self.count("jobs_retry", queue);
        self.inner
            .jobs_retry(queue, id, lease, due_ms, payload, failed)
            .await
    }

    async fn jobs_extend(
        &self,
        queue: &str,
        leases: &[(String, u64)],
        deadline_ms: i64,
    ) -> StoreResult<Vec<bool>> {
        let _call = self.count("jobs_extend", queue);
        self.inner.jobs_extend(queue, leases, deadline_ms).await
    }

    async fn jobs_bury(
        &self,
        queue: &str,
        id: &str,
        lease: u64,
        entry: &[u8],
    ) -> StoreResult<bool> {
        let _call = self.count("jobs_bury", queue);
        self.inner.jobs_bury(queue, id, lease, entry).await
    }

    async fn jobs_dead(&self, queue: &str, start: u64, limit: u64) -> StoreResult<Vec<Vec<u8>>> {
        let _call = self.count("jobs_dead", queue);
        self.inner.jobs_dead(queue, start, limit).await
    }

    async fn jobs_cancel(&self, queue: &str, id: &str) -> StoreResult<bool> {
        let _call = self.count("jobs_cancel", queue);
        self.inner.jobs_cancel(queue, id).await
    }

    async fn jobs_get(&self, queue: &str, id: &str) -> StoreResult<Option<Job>> {
        let _call = self.count("jobs_get", queue);
        self.inner.jobs_get(queue, id).await
    }

    async fn jobs_counts(&self, queue: &str) -> StoreResult<JobCounts> {
        let _call = self.count("jobs_counts", queue);
        self.inner.jobs_counts(queue).await
    }

    async fn jobs_next_due(&self, queue: &str) -> StoreResult<Option<i64>> {
        let _call = self.count("jobs_next_due", queue);
        self.inner.jobs_next_due(queue).await
    }

    async fn index_put(&self, index: &str, member: &str, score: f64) -> StoreResult<()> {
        let _call = self.count("index_put", index);
        self.inner.index_put(index, member, score).await
    }

    async fn index_put_many(&self, entries: &[(String, String, f64)]) -> StoreResult<()> {
        let first = entries.first().map_or("", |e| e.0.as_str());
        let _call = self.count("index_put_many", first);
        self.inner.index_put_many(entries).await
    }

    async fn index_remove(&self, index: &str, member: &str) -> StoreResult<bool> {
        let _call = self.count("index_remove", index);
        self.inner.index_remove(index, member).await
    }

    async fn index_range(
        &self,
        index: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>> {
        let _call = self.count("index_range", index);
        self.inner.index_range(index, min, max, limit).await
    }

    async fn index_rank(&self, index: &str, member: &str) -> StoreResult<Option<u64>> {
        let _call = self.count("index_rank", index);
        self.inner.index_rank(index, member).await
    }

    async fn index_score(&self, index: &str, member: &str) -> StoreResult<Option<f64>> {
        let _call = self.count("index_score", index);
        self.inner.index_score(index, member).await
    }

    async fn index_len(&self, index: &str) -> StoreResult<u64> {
        let _call = self.count("index_len", index);
        self.inner.index_len(index).await
    }

    async fn index_pop_min_into(
        &self,
        indexes: &[String],
        holder: &str,
        capacity: u64,
        holder_score: f64,
    ) -> StoreResult<Option<(String, String)>> {
        let _call = self.count("index_pop_min_into", holder);
        self.inner
            .index_pop_min_into(indexes, holder, capacity, holder_score)
            .await
    }

    async fn index_move(
        &self,
        from: &str,
        member: &str,
        to: &str,
        capacity: u64,
        score: f64,
    ) -> StoreResult<MoveOutcome> {
        let _call = self.count("index_move", to);
        self.inner
            .index_move(from, member, to, capacity, score)
            .await
    }

    async fn list_push(&self, key: &str, item: &[u8]) -> StoreResult<u64> {
        let _call = self.count("list_push", key);
        self.inner.list_push(key, item).await
    }

    async fn list_range(&self, key: &str, start: u64, limit: u64) -> StoreResult<Vec<Vec<u8>>> {
        let _call = self.count("list_range", key);
        self.inner.list_range(key, start, limit).await
    }

    async fn list_len(&self, key: &str) -> StoreResult<u64> {
        let _call = self.count("list_len", key);
        self.inner.list_len(key).await
    }

    async fn lock(&self, key: &str, owner: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool> {
        let _call = self.count("lock", key);
        self.inner.lock(key, owner, ttl, now_ms).await
    }

    async fn unlock(&self, key: &str, owner: &str) -> StoreResult<bool> {
        let _call = self.count("unlock", key);
        self.inner.unlock(key, owner).await
    }

    async fn rate_take(
        &self,
        key: &str,
        per_second: f64,
        burst: u32,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let _call = self.count("rate_take", key);
        self.inner.rate_take(key, per_second, burst, now_ms).await
    }

    async fn counter_add(&self, key: &str, delta: i64) -> StoreResult<i64> {
        let _call = self.count("counter_add", key);
        self.inner.counter_add(key, delta).await
    }

    async fn counter_get(&self, key: &str) -> StoreResult<i64> {
        let _call = self.count("counter_get", key);
        self.inner.counter_get(key).await
    }

    async fn publish(&self, topic: &str, payload: &[u8]) -> StoreResult<()> {
        let _call = self.count("publish", topic);
        self.inner.publish(topic, payload).await
    }

    async fn subscribe(&self, topic: &str) -> StoreResult<mpsc::Receiver<Vec<u8>>> {
        let _call = self.count("subscribe", topic);
        self.inner.subscribe(topic).await
    }

    async fn jobs_dead_remove(&self, queue: &str, entry: &[u8]) -> StoreResult<bool> {
        let _call = self.count("jobs_dead_remove", queue);
        self.inner.jobs_dead_remove(queue, entry).await
    }

    async fn index_range_rev(
        &self,
        index: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>> {
        let _call = self.count("index_range_rev", index);
        self.inner.index_range_rev(index, min, max, limit).await
    }

    async fn list_set(&self, key: &str, index: u64, item: &[u8]) -> StoreResult<bool> {
        let _call = self.count("list_set", key);
        self.inner.list_set(key, index, item).await
    }

    async fn list_delete(&self, key: &str) -> StoreResult<bool> {
        let _call = self.count("list_delete", key);
        self.inner.list_delete(key).await
    }

    async fn rate_reset(&self, key: &str) -> StoreResult<()> {
        let _call = self.count("rate_reset", key);
        self.inner.rate_reset(key).await
    }

    async fn purge_expired(&self, now_ms: i64, max: usize) -> StoreResult<usize> {
        let _call = self.count("purge_expired", "");
        self.inner.purge_expired(now_ms, max).await
    }

    async fn scan(
        &self,
        cursor: &str,
        limit: usize,
    ) -> StoreResult<(Vec<RawEntry>, Option<String>)> {
        let _call = self.count("scan", "");
        self.inner.scan(cursor, limit).await
    }
}
