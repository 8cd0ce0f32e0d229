//! The storage primitives every backend provides.
//!
//! [`Backend`] is deliberately small: versioned documents with compare-and-swap,
//! set-if-absent keys with a TTL, durable job queues with leases, sorted indexes
//! (including an atomic capacity-checked pop used for claiming conversations),
//! lists (appended to, replaced in place or deleted whole), locks, a GCRA rate
//! limiter, counters, pub/sub, and housekeeping (purging expired entries, a
//! raw scan of everything for audits). The domain operations in
//! [`crate::store::Store`] are written once on top of these, so the Redis and
//! embedded backends cannot drift apart in behaviour; the shared conformance
//! suite (`tests/store_conformance.rs`) runs against both.
//!
//! All time-dependent calls take `now_ms` from the caller's [`crate::clock::Clock`]
//! instead of reading a server clock, so tests can move time without sleeping.
//!
//! **Co-location.** A key name may carry one hash tag, the text between its
//! first `{` and the next `}` (Redis Cluster's rule; see [`hash_tag`]). A
//! sharded backend (Redis Cluster) places every key by its tag, or by the
//! whole name when it has none, so keys that one atomic call combines must
//! share a tag: the document and the counters of
//! [`Backend::doc_put_counted`], the indexes and the holder of
//! [`Backend::index_pop_min_into`], the two indexes of [`Backend::index_move`]. Every backend refuses a call that breaks
//! this ([`colocated`]), so a key plan that would fail on a cluster fails in
//! every test. The store's key functions choose the tags (`src/store/slots.rs`).

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

/// A stored document and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// Starts at 1 when created; every successful write adds one.
    pub version: u64,
    /// The document bytes (JSON in practice).
    pub data: Vec<u8>,
}

/// A unit of durable background work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Unique within its queue. Pushing an id that already exists is a no-op.
    pub id: String,
    /// When the job becomes claimable, Unix ms.
    pub due_ms: i64,
    /// Failed runs so far: grows when a run is retried as a failure
    /// ([`Backend::jobs_retry`] with `failed`) or when a lease expires (its
    /// holder died mid-run). Rescheduling without failure leaves it alone.
    pub attempts: u32,
    /// Opaque payload (JSON in practice).
    pub payload: Vec<u8>,
    /// The fencing token of the lease this job was claimed under (0 when it was
    /// not claimed). Ack, retry, extend and bury succeed only with the token of
    /// the current lease, so a worker whose lease was taken over can no longer
    /// touch the job.
    pub lease: u64,
}

/// A job to push, optionally guarded by an idempotency key.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The job to enqueue.
    pub job: Job,
    /// When set, the job is enqueued only if this key was not remembered within
    /// its TTL; the key is remembered in the same atomic step. Dedupe keys are
    /// scoped to the queue and separate from [`Backend::remember`] keys. A job
    /// rejected because its id exists does not remember its key.
    pub dedupe: Option<(String, Duration)>,
}

/// Job counts of one queue (kept as counters: reading them is O(1)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Waiting to be claimed (due or not yet due).
    pub pending: u64,
    /// Claimed by a worker whose lease has not been acknowledged.
    pub leased: u64,
    /// Moved to the queue's dead-letter list.
    pub dead: u64,
}

/// One stored key with everything stored under it, as [`Backend::scan`]
/// returns it: for checking what a store holds (tests, data audits), not for
/// domain reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The key as the backend names it (with the backend's own prefix or
    /// table name), lossily decoded as UTF-8.
    pub key: String,
    /// The bytes stored under it: a document's data, a list's items, a
    /// number as text, an index's members (which a backend may keep in the
    /// key instead). What a store holds is in the keys and values together.
    pub values: Vec<Vec<u8>>,
}

/// What [`Backend::index_move`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOutcome {
    /// Moved.
    Moved,
    /// The member was not in the source index (someone else moved it).
    NotInSource,
    /// The target already holds `capacity` members.
    Full,
}

/// Errors a backend reports.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or refused the operation; callers answer 503
    /// or retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Another process already holds the embedded store's data directory.
    #[error(
        "the data directory {0} is in use by another balas process; stop it, or point store.data_dir elsewhere, or use store.redis_url to share state between processes"
    )]
    Locked(String),
    /// Stored bytes could not be decoded.
    #[error("stored data is corrupt at {key}: {reason}")]
    Corrupt {
        /// The key whose value is bad.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// A compare-and-swap kept conflicting; the caller may retry the whole operation.
    #[error("too much contention on {0}")]
    Contention(String),
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// The hash tag of a key name: the text between its first `{` and the next
/// `}` when that is not empty (Redis Cluster's rule), otherwise `None` (the
/// whole name decides where the key lives).
pub fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let rest = &key[open + 1..];
    let close = rest.find('}')?;
    (close > 0).then(|| &rest[..close])
}

/// Refuses `what` unless every key in `keys` carries the same hash tag: keys
/// one atomic call combines must be able to live in one cluster slot. One key
/// alone is always fine.
pub fn colocated<'a>(what: &str, keys: impl IntoIterator<Item = &'a str>) -> StoreResult<()> {
    let mut keys = keys.into_iter();
    let Some(first) = keys.next() else {
        return Ok(());
    };
    let tag = hash_tag(first);
    for key in keys {
        if tag.is_none() || hash_tag(key) != tag {
            return Err(StoreError::Unavailable(format!(
                "invalid argument: {what} combines {first:?} and {key:?}, which do not share a hash tag {{…}}; keys of one atomic call must live in one cluster slot"
            )));
        }
    }
    Ok(())
}

/// The storage primitives; see the module docs.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and `/readyz` ("redis", "redis-cluster" or
    /// "embedded").
    fn name(&self) -> &'static str;

    /// Checks that the backend answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Makes every write answered so far durable (see
    /// [`crate::store::durability`]). Backends whose every answered write is
    /// already as durable as it will be (Redis) need not do anything.
    async fn sync(&self) -> StoreResult<()> {
        Ok(())
    }

    // ---- set-if-absent keys -------------------------------------------------

    /// Remembers `key` until `now_ms + ttl`; true when it was not remembered yet.
    async fn remember(&self, key: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool>;

    /// Forgets a remembered key (e.g. to allow a survey again).
    async fn forget(&self, key: &str) -> StoreResult<()>;

    // ---- versioned documents ------------------------------------------------

    /// Reads a document.
    async fn doc_get(&self, key: &str) -> StoreResult<Option<Versioned>>;

    /// Writes `data` if the current version equals `expected` (0 = must not exist).
    /// Returns the new version, or `None` when another writer got there first.
    async fn doc_put(&self, key: &str, expected: u64, data: &[u8]) -> StoreResult<Option<u64>>;

    /// [`Backend::doc_put`] that also adds each `(counter, delta)` in the same
    /// atomic step when (and only when) the document is written: a record and
    /// the counts kept about it never disagree, whatever crashes in between.
    /// With counters, the document and every counter must share a hash tag
    /// (see the module docs).
    async fn doc_put_counted(
        &self,
        key: &str,
        expected: u64,
        data: &[u8],
        counters: &[(String, i64)],
    ) -> StoreResult<Option<u64>>;

    /// Reads several documents at once; missing ones are `None`.
    async fn doc_get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Versioned>>>;

    /// Deletes a document; false when it did not exist. A document written
    /// again afterwards starts over at version 1.
    async fn doc_delete(&self, key: &str) -> StoreResult<bool>;

    // ---- durable job queues -------------------------------------------------

    /// Pushes jobs atomically (all or nothing). For each job, true when it was
    /// enqueued; false when its dedupe key was already remembered or its id exists.
    async fn jobs_push(&self, queue: &str, jobs: &[NewJob], now_ms: i64) -> StoreResult<Vec<bool>>;

    /// [`Backend::jobs_push`], then waits (at most `timeout`) until the push —
    /// and, for jobs refused as duplicates, the push that first stored them —
    /// has reached `replicas` replicas of the backend. Returns the push result
    /// and how many replicas acknowledged it (at most `replicas`). A backend
    /// without replicas pushes and answers 0 (the embedded store is durable
    /// on commit; there is nothing to wait for).
    async fn jobs_push_replicated(
        &self,
        queue: &str,
        jobs: &[NewJob],
        now_ms: i64,
        replicas: u32,
        timeout: Duration,
    ) -> StoreResult<(Vec<bool>, u32)> {
        let _ = (replicas, timeout);
        Ok((self.jobs_push(queue, jobs, now_ms).await?, 0))
    }

    /// Claims up to `max` jobs due at `now_ms`, leasing each until `now_ms + lease`
    /// under a fresh fencing token ([`Job::lease`]). Jobs whose lease expired are
    /// claimable again with `attempts` raised, so work held by a crashed worker is
    /// retried. Earliest due first.
    async fn jobs_claim(
        &self,
        queue: &str,
        now_ms: i64,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Job>>;

    /// Deletes a finished job held under `lease`. False when it no longer exists
    /// or another lease holds it now.
    async fn jobs_ack(&self, queue: &str, id: &str, lease: u64) -> StoreResult<bool>;

    /// Puts a job held under `lease` back as pending at `due_ms`, with a new
    /// payload when given. `failed` raises `attempts` (a failed run); without it
    /// the job is only rescheduled (paced, busy, deferred). False when the job no
    /// longer exists or another lease holds it now.
    async fn jobs_retry(
        &self,
        queue: &str,
        id: &str,
        lease: u64,
        due_ms: i64,
        payload: Option<&[u8]>,
        failed: bool,
    ) -> StoreResult<bool>;

    /// Heartbeat: extends each `(id, lease)` still held under that lease until
    /// `deadline_ms`. For each, true when it is still held (and now extended).
    async fn jobs_extend(
        &self,
        queue: &str,
        leases: &[(String, u64)],
        deadline_ms: i64,
    ) -> StoreResult<Vec<bool>>;

    /// Moves a job held under `lease` to the queue's dead-letter list, storing
    /// `entry` (the payload and the error, as the caller encodes them) there in
    /// the same atomic step. False when it no longer exists or another lease
    /// holds it now.
    async fn jobs_bury(&self, queue: &str, id: &str, lease: u64, entry: &[u8])
    -> StoreResult<bool>;

    /// Dead-letter entries of a queue, oldest first: `start..` (at most `limit`).
    async fn jobs_dead(&self, queue: &str, start: u64, limit: u64) -> StoreResult<Vec<Vec<u8>>>;

    /// Removes a job wherever it is. False when it did not exist.
    async fn jobs_cancel(&self, queue: &str, id: &str) -> StoreResult<bool>;

    /// Removes the oldest dead-letter entry of a queue whose bytes equal
    /// `entry` (retention, erasure). False when there is none, so a removal
    /// that raced with another is harmless.
    async fn jobs_dead_remove(&self, queue: &str, entry: &[u8]) -> StoreResult<bool>;

    /// Reads a job without claiming it.
    async fn jobs_get(&self, queue: &str, id: &str) -> StoreResult<Option<Job>>;

    /// Pending, leased and dead counts; O(1).
    async fn jobs_counts(&self, queue: &str) -> StoreResult<JobCounts>;

    /// The earliest due time of a pending job, if any (workers sleep until then).
    async fn jobs_next_due(&self, queue: &str) -> StoreResult<Option<i64>>;

    // ---- sorted indexes -----------------------------------------------------

    /// Adds or re-scores a member.
    async fn index_put(&self, index: &str, member: &str, score: f64) -> StoreResult<()>;

    /// Adds or re-scores many `(index, member, score)` entries in one call
    /// (one embedded transaction; one pipelined round trip to each Redis
    /// node). Not atomic across indexes: the keys need no common hash tag,
    /// and after a failure some entries may be written. A NaN score is
    /// refused before anything is written.
    async fn index_put_many(&self, entries: &[(String, String, f64)]) -> StoreResult<()>;

    /// Removes a member; false when absent.
    async fn index_remove(&self, index: &str, member: &str) -> StoreResult<bool>;

    /// Members with `min <= score <= max`, ascending by score then member, at most `limit`.
    async fn index_range(
        &self,
        index: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>>;

    /// Members with `min <= score <= max`, descending by score then member
    /// (newest first, for pagination back in time), at most `limit`.
    async fn index_range_rev(
        &self,
        index: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>>;

    /// 0-based rank of a member in ascending order.
    async fn index_rank(&self, index: &str, member: &str) -> StoreResult<Option<u64>>;

    /// Score of a member.
    async fn index_score(&self, index: &str, member: &str) -> StoreResult<Option<f64>>;

    /// Number of members.
    async fn index_len(&self, index: &str) -> StoreResult<u64>;

    /// Atomically: if `holder` has fewer than `capacity` members, removes the
    /// lowest-scored member across `indexes` (ties: the earlier index in the list),
    /// adds it to `holder` with score `holder_score`, and returns `(index, member)`.
    /// `None` when every index is empty or the holder is full. This is the claim of
    /// the agent queue: two callers never get the same member. The indexes and
    /// the holder must share a hash tag (see the module docs).
    async fn index_pop_min_into(
        &self,
        indexes: &[String],
        holder: &str,
        capacity: u64,
        holder_score: f64,
    ) -> StoreResult<Option<(String, String)>>;

    /// Atomically moves `member` from index `from` into index `to` (with score
    /// `score`) if it is in `from` and `to` holds fewer than `capacity` members.
    /// This is claiming (or handing over) one named conversation: two callers
    /// never both move it, and the holder never exceeds its capacity. `from`
    /// and `to` must share a hash tag (see the module docs).
    async fn index_move(
        &self,
        from: &str,
        member: &str,
        to: &str,
        capacity: u64,
        score: f64,
    ) -> StoreResult<MoveOutcome>;

    // ---- lists --------------------------------------------------------------

    /// Appends an item; returns the new length.
    async fn list_push(&self, key: &str, item: &[u8]) -> StoreResult<u64>;

    /// Items `start..` (at most `limit`) in insertion order.
    async fn list_range(&self, key: &str, start: u64, limit: u64) -> StoreResult<Vec<Vec<u8>>>;

    /// Number of items.
    async fn list_len(&self, key: &str) -> StoreResult<u64>;

    /// Replaces item `index` (0-based) in place, keeping every position; false
    /// when the list has no such item.
    async fn list_set(&self, key: &str, index: u64, item: &[u8]) -> StoreResult<bool>;

    /// Deletes a whole list; false when it did not exist. A list pushed to
    /// afterwards starts empty.
    async fn list_delete(&self, key: &str) -> StoreResult<bool>;

    // ---- locks --------------------------------------------------------------

    /// Takes (or, for the same owner, extends) a lock until `now_ms + ttl`.
    async fn lock(&self, key: &str, owner: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool>;

    /// Releases a lock held by `owner`; false when it was not held by `owner`
    /// (or another owner took it after it expired).
    async fn unlock(&self, key: &str, owner: &str) -> StoreResult<bool>;

    // ---- rate limiting ------------------------------------------------------

    /// GCRA limiter shared by every process: reserves one event on `key` at
    /// `per_second` with `burst` allowed at once. Returns 0 when reserved now,
    /// otherwise the milliseconds to wait before asking again (nothing reserved).
    async fn rate_take(
        &self,
        key: &str,
        per_second: f64,
        burst: u32,
        now_ms: i64,
    ) -> StoreResult<u64>;

    /// Forgets the limiter state of `key`, as if no event had ever been taken.
    async fn rate_reset(&self, key: &str) -> StoreResult<()>;

    // ---- housekeeping -------------------------------------------------------

    /// Deletes up to about `max` entries that expired by `now_ms` and only take
    /// space (remembered keys, locks, limiter states that have caught up with
    /// `now_ms`); returns how many went. A backend whose storage expires keys
    /// by itself (Redis) deletes nothing. Answers never change: an expired
    /// entry already counts as absent.
    async fn purge_expired(&self, now_ms: i64, max: usize) -> StoreResult<usize>;

    /// Every key of this store with its stored bytes, about `limit` keys per
    /// page from `cursor` (`""` first); the next cursor, `None` after the last
    /// page. Expensive (it reads everything): for tests and data audits that
    /// must prove what the store holds, never on a request path.
    async fn scan(
        &self,
        cursor: &str,
        limit: usize,
    ) -> StoreResult<(Vec<RawEntry>, Option<String>)>;

    // ---- counters -----------------------------------------------------------

    /// Adds `delta` to a counter and returns the new value.
    async fn counter_add(&self, key: &str, delta: i64) -> StoreResult<i64>;

    /// Reads a counter (0 when never written).
    async fn counter_get(&self, key: &str) -> StoreResult<i64>;

    // ---- pub/sub ------------------------------------------------------------

    /// Publishes to every subscriber of `topic` in every process.
    async fn publish(&self, topic: &str, payload: &[u8]) -> StoreResult<()>;

    /// Subscribes to `topic`; messages published after this returns are delivered
    /// in order until the receiver is dropped (one published just before may
    /// arrive too: a process shares one subscription among its subscribers).
    async fn subscribe(&self, topic: &str) -> StoreResult<mpsc::Receiver<Vec<u8>>>;
}
