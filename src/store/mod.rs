//! All state, through one API.
//!
//! [`Backend`] is the small set of atomic primitives a backend provides
//! ([`redis`] for several processes sharing one Redis, [`embedded`] for a single
//! process with a redb file). [`Store`] adds the domain operations the rest of
//! Balas calls — contacts, conversations and transcripts, the agent queue, typed
//! jobs, outbound records, attachment records, users and sessions, the audit
//! log, live events — written once on top of the primitives,
//! so both backends behave the same by construction.

mod audit;
pub mod backend;
mod broadcasts;
mod contacts;
mod conversations;
pub mod durability;
pub mod embedded;
mod jobs;
mod limits;
mod media;
mod presence;
mod records;
pub mod redis;
mod search;
mod slots;
mod surveys;
mod templates;
mod users;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use audit::{AuditCursor, AuditEntry, AuditPage, AuditQuery};
pub use backend::{
    Backend, Job, JobCounts, MoveOutcome, NewJob, RawEntry, StoreError, StoreResult, Versioned,
};
pub use contacts::{Contact, Note};
pub use conversations::{
    ClaimError, ConversationError, Speaker, SystemEvent, TranscriptEntry, new_case_id,
};
pub use jobs::queues;
pub use limits::RateKey;
pub use media::{Attachment, AttachmentDirection, AttachmentStatus, PlatformMedia};
pub use presence::{Expiry, Presence, PresenceStatus};
pub use records::{Origin, OutboundRecord, OutboundState, SendStart, broadcast_record_id};
pub use search::{SearchCursor, SearchPage, query_terms};
pub use surveys::{Step, Survey, SurveyStatus};
pub use templates::TemplateCatalogue;
pub use users::{ApiToken, Session, TokenRef, User};

use crate::clock::SharedClock;

/// The domain API over a backend; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    clock: SharedClock,
    /// This process's job workers, woken when a job is scheduled here.
    wakers: Arc<jobs::Wakers>,
    /// Replicas that must hold inbound events before they count as stored.
    replicas_ack: u32,
}

/// How many times a compare-and-swap update is retried before giving up.
const CAS_ATTEMPTS: usize = 64;

/// How long a platform event or message id is remembered (webhook dedupe,
/// transcript entries): longer than Meta's retry horizon (up to 7 days for
/// WhatsApp).
pub const DEDUPE_TTL: Duration = Duration::from_secs(8 * 24 * 3600);

/// Topic of live events (SSE for agent consoles).
const EVENTS_TOPIC: &str = "events";

impl Store {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn Backend>, clock: SharedClock) -> Self {
        Self {
            backend,
            clock,
            wakers: Arc::default(),
            replicas_ack: 0,
        }
    }

    /// This store, answering [`Store::ingest_inbound`] only once the events
    /// are held by `replicas` replicas of the backend (Redis `WAIT`), so a
    /// failover cannot lose what was acknowledged. 0 = the master alone.
    pub fn with_replicas_ack(mut self, replicas: u32) -> Self {
        self.replicas_ack = replicas;
        self
    }

    /// A short name of the backend for logs and `/readyz` ("redis",
    /// "redis-cluster" or "embedded").
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Makes every write answered so far durable, including those made with
    /// deferred durability ([`durability::deferred`]). Call it before an effect
    /// that leaves the process and depends on such writes (a send to Meta).
    pub async fn sync(&self) -> StoreResult<()> {
        self.backend.sync().await
    }

    /// Checks that the backend answers.
    pub async fn ping(&self) -> StoreResult<()> {
        self.backend.ping().await
    }

    /// The clock every time-based decision uses.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Now, Unix ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Reads a JSON document.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>> {
        match self.backend.doc_get(key).await? {
            None => Ok(None),
            Some(v) => decode(key, &v.data).map(Some),
        }
    }

    /// Reads many JSON documents at once; missing or undecodable ones are skipped
    /// (undecodable ones are logged).
    pub async fn get_json_many<T: DeserializeOwned>(&self, keys: &[String]) -> StoreResult<Vec<T>> {
        let docs = self.backend.doc_get_many(keys).await?;
        let mut out = Vec::with_capacity(docs.len());
        for (key, doc) in keys.iter().zip(docs) {
            if let Some(doc) = doc {
                match decode(key, &doc.data) {
                    Ok(v) => out.push(v),
                    Err(e) => tracing::error!(%key, error = %e, "skipping corrupt document"),
                }
            }
        }
        Ok(out)
    }

    /// Atomically updates a JSON document with compare-and-swap: `change` gets the
    /// current value (or `None`) and returns the new one, or `Ok(None)` to leave it
    /// unchanged. It may run several times under contention, so it must be pure.
    /// Returns the value now stored (after the change) and whether it was written.
    pub async fn update_json<T, E, F>(&self, key: &str, mut change: F) -> Result<Option<T>, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<StoreError>,
        F: FnMut(Option<T>) -> Result<Option<T>, E>,
    {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.backend.doc_get(key).await?;
            let (version, value) = match &current {
                None => (0, None),
                Some(v) => (v.version, Some(decode::<T>(key, &v.data)?)),
            };
            let Some(new_value) = change(value)? else {
                return Ok(None);
            };
            let bytes = serde_json::to_vec(&new_value).map_err(|e| StoreError::Corrupt {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
            // A change that changed nothing is not written: the document read
            // is the answer, and the write (a commit, a round trip) is saved.
            if current.as_ref().is_some_and(|v| v.data == bytes) {
                return Ok(Some(new_value));
            }
            if self.backend.doc_put(key, version, &bytes).await?.is_some() {
                return Ok(Some(new_value));
            }
        }
        Err(StoreError::Contention(key.to_string()).into())
    }

    /// [`Store::update_json`] for documents with counts kept about them:
    /// `change` also returns the counter deltas its change implies, and the
    /// document and the counters are written in one atomic step.
    pub(crate) async fn update_json_counted<T, F>(
        &self,
        key: &str,
        mut change: F,
    ) -> StoreResult<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<(T, Vec<(String, i64)>)>,
    {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.backend.doc_get(key).await?;
            let (version, value) = match current {
                None => (0, None),
                Some(v) => (v.version, Some(decode::<T>(key, &v.data)?)),
            };
            let Some((new_value, counters)) = change(value) else {
                return Ok(None);
            };
            let bytes = serde_json::to_vec(&new_value).map_err(|e| StoreError::Corrupt {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
            if self
                .backend
                .doc_put_counted(key, version, &bytes, &counters)
                .await?
                .is_some()
            {
                return Ok(Some(new_value));
            }
        }
        Err(StoreError::Contention(key.to_string()))
    }

    /// Writes a JSON document unconditionally (last writer wins); for documents
    /// that have one writer.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> StoreResult<()> {
        self.update_json::<serde_json::Value, StoreError, _>(key, |_| {
            Ok(Some(serde_json::to_value(value).map_err(|e| {
                StoreError::Corrupt {
                    key: key.to_string(),
                    reason: e.to_string(),
                }
            })?))
        })
        .await
        .map(|_| ())
    }

    /// Remembers an idempotency key; true when it is new.
    pub async fn remember(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        self.backend.remember(key, ttl, self.now_ms()).await
    }

    /// Where a background sweep got to (its bookmark), if it has one.
    pub async fn sweep_mark(&self, sweep: &str) -> StoreResult<Option<i64>> {
        self.get_json(&format!("sweep:{sweep}")).await
    }

    /// Moves a background sweep's bookmark.
    pub async fn set_sweep_mark(&self, sweep: &str, at: i64) -> StoreResult<()> {
        self.put_json(&format!("sweep:{sweep}"), &at).await
    }

    /// Deletes up to about `max` expired entries that only take space
    /// (remembered keys, locks, limiter states; see
    /// [`Backend::purge_expired`]); returns how many.
    pub async fn purge_expired(&self, max: usize) -> StoreResult<usize> {
        self.backend.purge_expired(self.now_ms(), max).await
    }

    /// One page of every key and value this store holds (see
    /// [`Backend::scan`]): for tests and data audits that must prove what is
    /// (not) stored, never for domain reads.
    pub async fn scan_raw(
        &self,
        cursor: &str,
        limit: usize,
    ) -> StoreResult<(Vec<RawEntry>, Option<String>)> {
        self.backend.scan(cursor, limit).await
    }

    /// Publishes a live event to every process's subscribers.
    pub async fn publish_event(&self, event: &serde_json::Value) -> StoreResult<()> {
        let bytes = serde_json::to_vec(event).unwrap_or_default();
        self.backend.publish(EVENTS_TOPIC, &bytes).await
    }

    /// Subscribes to the live events of every process (published after this
    /// returns), until the receiver is dropped.
    pub async fn subscribe_events(&self) -> StoreResult<tokio::sync::mpsc::Receiver<Vec<u8>>> {
        self.backend.subscribe(EVENTS_TOPIC).await
    }

    /// Takes (or, for the same owner, extends) the lock of one contact's
    /// conversation until `ttl` from now: one contact's messages are handled
    /// one at a time across processes.
    pub async fn lock_contact(
        &self,
        channel: crate::channels::Channel,
        contact_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.backend
            .lock(
                &contact_lock_key(channel, contact_id),
                owner,
                ttl,
                self.now_ms(),
            )
            .await
    }

    /// Releases a contact's lock held by `owner`.
    pub async fn unlock_contact(
        &self,
        channel: crate::channels::Channel,
        contact_id: &str,
        owner: &str,
    ) -> StoreResult<bool> {
        self.backend
            .unlock(&contact_lock_key(channel, contact_id), owner)
            .await
    }
}

fn contact_lock_key(channel: crate::channels::Channel, contact_id: &str) -> String {
    format!("lock:contact:{channel}:{contact_id}")
}

/// A platform id as it appears in keys: the hex of the first 16 bytes of its
/// SHA-256. WhatsApp message ids embed the customer's phone number, so keys
/// made of them would keep it after the contact is erased; a digest keeps
/// only the ability to recognise the same id again.
pub(crate) fn id_digest(id: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(id.as_bytes())[..16])
}

fn decode<T: DeserializeOwned>(key: &str, data: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(data).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Where the state lives.
#[derive(Debug, Clone, Copy)]
pub enum Location<'a> {
    /// The embedded store in this directory (one process).
    Embedded(&'a Path),
    /// One Redis server at this URL.
    Redis(&'a str),
    /// A Redis Cluster, reached through these seed node URLs.
    RedisCluster(&'a [String]),
}

/// Opens the backend at `location` (Redis keys under `key_prefix`).
pub async fn open_backend(
    location: Location<'_>,
    key_prefix: &str,
) -> StoreResult<Arc<dyn Backend>> {
    match location {
        Location::Redis(url) => Ok(Arc::new(
            redis::RedisBackend::connect(url, key_prefix).await?,
        )),
        Location::RedisCluster(nodes) => Ok(Arc::new(
            redis::RedisBackend::connect_cluster(nodes, key_prefix).await?,
        )),
        Location::Embedded(data_dir) => {
            let dir = data_dir.to_owned();
            let backend =
                tokio::task::spawn_blocking(move || embedded::EmbeddedBackend::open(&dir))
                    .await
                    .map_err(|e| {
                        StoreError::Unavailable(format!("opening the embedded store: {e}"))
                    })??;
            Ok(Arc::new(backend))
        }
    }
}

/// Rejects a NaN score (Redis refuses it too) and folds -0.0 into 0.0.
pub(crate) fn check_score(what: &str, score: f64) -> StoreResult<f64> {
    if score.is_nan() {
        return Err(StoreError::Unavailable(format!(
            "invalid argument: {what} is NaN"
        )));
    }
    Ok(if score == 0.0 { 0.0 } else { score })
}

/// GCRA emission interval and burst tolerance, both in ms, for `per_second`
/// events with `burst` at once (0 counts as 1). Both backends compute with
/// these same f64 values, so they answer alike.
pub(crate) fn gcra_params(per_second: f64, burst: u32) -> StoreResult<(f64, f64)> {
    if !(per_second.is_finite() && per_second > 0.0) {
        return Err(StoreError::Unavailable(format!(
            "invalid argument: rate per_second must be > 0, got {per_second}"
        )));
    }
    let interval = 1000.0 / per_second;
    Ok((interval, f64::from(burst.max(1)) * interval))
}
