//! Where keys live on a sharded backend: the store's key → slot plan.
//!
//! A Redis Cluster places each key in one of 16,384 slots by its hash tag
//! (see [`super::backend::hash_tag`]) and each master serves a range of
//! slots, so the plan decides both what may be combined atomically and how
//! the load divides (`docs/redis-keys.md` has the whole table):
//!
//! - **Co-located on purpose** (one tag, one slot): keys one atomic step
//!   combines. A broadcast's outbound records and its per-state counters
//!   share `{bc:<id>}` ([`broadcast_tag`]); the agent queue — every waiting
//!   index and every agent's active set — shares `{handoff}` ([`HANDOFF`]),
//!   because a claim compares the heads of all of an agent's queues and checks
//!   the agent's capacity in one step, and agents' queue lists overlap
//!   arbitrarily (an empty list means every queue), so no finer grouping is
//!   stable. Handoff traffic is human-paced, a few operations per handoff, far
//!   below what one slot can serve.
//! - **Spread on purpose**: the big listing indexes that grow with traffic
//!   (contacts by last message, conversations by state, resolved cases,
//!   surveys, attachments) are split into [`SHARDS`] shards by a stable hash
//!   of the member ([`sharded`]): a write touches one shard, a read merges
//!   all of them. Hashing spreads writes evenly; sharding by day would put
//!   all of today's writes in one slot.
//! - **Everything else** is one key per thing (a contact, a conversation, a
//!   lock, a rate, a transcript …) without a tag, hashed by its whole name,
//!   so it spreads by itself. Job queues carry their own tag `{P:q:QUEUE}`
//!   (set by the backend; a queue's scripts combine its keys).

use std::future::Future;

use super::{Store, StoreResult};

/// The tag of the agent queue: waiting indexes and active sets.
pub(crate) const HANDOFF: &str = "handoff";

/// Shards of each big listing index.
pub(crate) const SHARDS: u32 = 16;

/// `name` placed by `tag`: `{tag}name`. Braces inside the tag would end it
/// early, so they become parentheses (the full name keeps keys apart).
pub(crate) fn tagged(tag: &str, name: &str) -> String {
    format!("{{{}}}{name}", tag.replace('{', "(").replace('}', ")"))
}

/// The tag of a broadcast's outbound records and counters.
pub(crate) fn broadcast_tag(broadcast: &str) -> String {
    format!("bc:{broadcast}")
}

/// A stable shard of `member` (FNV-1a: the same in every process and version).
fn shard_of(member: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in member.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(SHARDS)) as u32
}

/// Shard `shard` of the sharded index `name`: its own tag, its own slot.
fn shard_key(name: &str, shard: u32) -> String {
    tagged(&format!("{name}:{shard}"), "")
}

/// Sorted indexes split into [`SHARDS`] shards by member.
pub(crate) mod sharded {
    use super::*;

    /// The shard key that holds `member` of index `name`.
    pub(crate) fn key(name: &str, member: &str) -> String {
        shard_key(name, shard_of(member))
    }

    /// Every shard key of index `name`.
    pub(crate) fn keys(name: &str) -> Vec<String> {
        (0..SHARDS).map(|s| shard_key(name, s)).collect()
    }
}

impl Store {
    /// Adds or re-scores `member` of the sharded index `name`.
    pub(crate) async fn sharded_put(
        &self,
        name: &str,
        member: &str,
        score: f64,
    ) -> StoreResult<()> {
        self.backend
            .index_put(&sharded::key(name, member), member, score)
            .await
    }

    /// Removes `member` from the sharded index `name`; false when absent.
    pub(crate) async fn sharded_remove(&self, name: &str, member: &str) -> StoreResult<bool> {
        self.backend
            .index_remove(&sharded::key(name, member), member)
            .await
    }

    /// Members of the sharded index `name` with `min <= score <= max`,
    /// ascending by score then member, at most `limit`: the same answer as one
    /// index would give (each shard's first `limit`, merged).
    pub(crate) async fn sharded_range(
        &self,
        name: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>> {
        let keys = sharded::keys(name);
        let parts = all(keys
            .iter()
            .map(|k| self.backend.index_range(k, min, max, limit)))
        .await?;
        let mut merged: Vec<(String, f64)> = parts.into_iter().flatten().collect();
        merged.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        merged.truncate(limit);
        Ok(merged)
    }
}

/// Runs the reads of every shard at once (on a Cluster they go to several
/// nodes in parallel).
async fn all<T, F>(reads: impl IntoIterator<Item = F>) -> StoreResult<Vec<T>>
where
    F: Future<Output = StoreResult<T>>,
{
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::hash_tag;

    #[test]
    fn tags_are_what_redis_cluster_hashes() {
        assert_eq!(hash_tag(&tagged("handoff", "waiting:vip")), Some("handoff"));
        assert_eq!(hash_tag(&tagged("bc:a}b", "out:x")), Some("bc:a)b"));
        assert_eq!(
            hash_tag(&sharded::key("cases:resolved", "c1"))
                .map(|t| t.starts_with("cases:resolved:")),
            Some(true)
        );
        assert_eq!(hash_tag("contact:whatsapp:62811"), None);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Fixed values: a shard must never move between versions, or members
        // written before an upgrade could not be removed after it.
        assert_eq!(shard_of(""), (0xcbf2_9ce4_8422_2325u64 % 16) as u32);
        assert_eq!(shard_of("whatsapp:62811"), shard_of("whatsapp:62811"));
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1_000 {
            seen.insert(shard_of(&format!("20261122-{i:06}")));
        }
        assert_eq!(seen.len(), SHARDS as usize, "every shard gets members");
        assert_eq!(sharded::keys("x").len(), SHARDS as usize);
    }
}
