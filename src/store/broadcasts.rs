//! Broadcast campaigns as stored: one document per broadcast (its content
//! type is [`crate::broadcast::Broadcast`]; the store only keeps it), an index
//! by creation time, the audience as a list of recipient chunks, and counts of
//! why recipients were skipped or failed.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreError, StoreResult};

fn doc_key(id: &str) -> String {
    format!("broadcast:{id}")
}

fn chunks_key(id: &str) -> String {
    format!("broadcast:{id}:recipients")
}

fn audience_lock_key(id: &str) -> String {
    format!("lock:broadcast:{id}:audience")
}

fn reasons_index(id: &str, kind: &str) -> String {
    format!("bcreasons:{id}:{kind}")
}

fn reason_counter(id: &str, kind: &str, reason: &str) -> String {
    format!("bcreason:{id}:{kind}:{reason}")
}

/// Index of broadcasts by creation time.
const INDEX: &str = "broadcasts";

impl Store {
    /// Reads a broadcast.
    pub async fn broadcast<T: DeserializeOwned>(&self, id: &str) -> StoreResult<Option<T>> {
        self.get_json(&doc_key(id)).await
    }

    /// Every broadcast, newest first (at most 10,000).
    pub async fn broadcasts<T: DeserializeOwned>(&self) -> StoreResult<Vec<T>> {
        let keys: Vec<String> = self
            .backend
            .index_range(INDEX, f64::MIN, f64::MAX, 10_000)
            .await?
            .into_iter()
            .rev()
            .map(|(id, _)| doc_key(&id))
            .collect();
        self.get_json_many(&keys).await
    }

    /// Stores a new broadcast and indexes it by `created_ms`.
    pub async fn create_broadcast<T: Serialize>(
        &self,
        id: &str,
        created_ms: i64,
        broadcast: &T,
    ) -> StoreResult<()> {
        self.put_json(&doc_key(id), broadcast).await?;
        self.backend.index_put(INDEX, id, created_ms as f64).await
    }

    /// Changes a broadcast atomically when `change` returns true; the
    /// broadcast after the change, or `None` when nothing changed.
    pub async fn update_broadcast<T, F>(&self, id: &str, mut change: F) -> StoreResult<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T) -> bool,
    {
        self.update_json::<T, StoreError, _>(&doc_key(id), |b| {
            let Some(mut b) = b else { return Ok(None) };
            Ok(change(&mut b).then_some(b))
        })
        .await
    }

    /// Takes the lock on a broadcast's audience for `owner` until `ttl` from
    /// now: one upload at a time appends chunks, so an upload's chunks are
    /// contiguous and one that is refused leaves only chunks past the counted
    /// ones (which no walk reads). False when another upload holds it.
    pub async fn lock_broadcast_audience(
        &self,
        id: &str,
        owner: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<bool> {
        self.backend
            .lock(&audience_lock_key(id), owner, ttl, self.now_ms())
            .await
    }

    /// Releases the lock on a broadcast's audience held by `owner`.
    pub async fn unlock_broadcast_audience(&self, id: &str, owner: &str) -> StoreResult<bool> {
        self.backend.unlock(&audience_lock_key(id), owner).await
    }

    /// Appends one chunk of recipients (already encoded) to a broadcast's
    /// audience; returns how many chunks it has now.
    pub async fn append_broadcast_chunk(&self, id: &str, chunk: &[u8]) -> StoreResult<u64> {
        self.backend.list_push(&chunks_key(id), chunk).await
    }

    /// Chunk `index` of a broadcast's audience, if there is one.
    pub async fn broadcast_chunk(&self, id: &str, index: u64) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .backend
            .list_range(&chunks_key(id), index, 1)
            .await?
            .into_iter()
            .next())
    }

    /// Replaces chunk `index` of a broadcast's audience in place (erasure
    /// of one recipient keeps every position); false when there is no such
    /// chunk.
    pub async fn replace_broadcast_chunk(
        &self,
        id: &str,
        index: u64,
        chunk: &[u8],
    ) -> StoreResult<bool> {
        self.backend.list_set(&chunks_key(id), index, chunk).await
    }

    /// How many audience chunks a broadcast has.
    pub async fn broadcast_chunk_count(&self, id: &str) -> StoreResult<u64> {
        self.backend.list_len(&chunks_key(id)).await
    }

    /// Counts one recipient `kind` (`skipped`, `failed`) for `reason`.
    pub async fn count_broadcast_reason(
        &self,
        id: &str,
        kind: &str,
        reason: &str,
    ) -> StoreResult<()> {
        self.backend
            .index_put(&reasons_index(id, kind), reason, 0.0)
            .await?;
        self.backend
            .counter_add(&reason_counter(id, kind, reason), 1)
            .await?;
        Ok(())
    }

    /// The reasons counted for `kind`, with their counts.
    pub async fn broadcast_reasons(&self, id: &str, kind: &str) -> StoreResult<Vec<(String, i64)>> {
        let reasons = self
            .backend
            .index_range(&reasons_index(id, kind), f64::MIN, f64::MAX, 1000)
            .await?;
        let mut out = Vec::with_capacity(reasons.len());
        for (reason, _) in reasons {
            let n = self
                .backend
                .counter_get(&reason_counter(id, kind, &reason))
                .await?;
            out.push((reason, n));
        }
        Ok(out)
    }
}
