//! The embedded backend: one Balas process with a redb file.
//!
//! `data_dir/balas.redb` is locked by the process that opens it (redb takes an
//! OS file lock), so a second open — from another process or from this one —
//! fails with [`StoreError::Locked`]. Every mutating call is a closure over a
//! redb write transaction that one dedicated writer thread runs and commits,
//! and the call returns once an fsync covers that commit, so an acknowledged
//! call survives `kill -9` and power loss. Concurrent calls share commits and
//! fsyncs (group commit, `embedded/group_commit.rs`): one fsync for the writes
//! of up to a few milliseconds instead of one each. Calls made with deferred
//! durability ([`super::durability`], background jobs) return right after
//! their commit and are made durable by the next fsync. Reads run on tokio's
//! blocking pool (redb is synchronous) and see every committed write.
//!
//! Tables (names are `&str` keys or byte keys built with `name_prefix`, which
//! escapes the name so that one name's keys never overlap another's):
//!
//! | table            | key                                   | value                              |
//! |------------------|---------------------------------------|------------------------------------|
//! | `seen`           | `r` + key, or `d` + queue + dedupe key | expiry ms                          |
//! | `seen_expiry`    | expiry (orderable) + `seen` key        | ()                                 |
//! | `docs`           | key                                   | version (8 bytes BE) + data        |
//! | `jobs`           | queue + id                            | state, due, sort ms, attempts, lease token, payload |
//! | `jobs_pending`   | queue + due (orderable) + id          | ()                                 |
//! | `jobs_leased`    | queue + lease deadline (orderable) + id | ()                               |
//! | `jobs_dead`      | queue + position (8 bytes BE; gaps where entries were removed) | dead-letter entry |
//! | `jobs_count`     | queue + `p`/`l`/`d`                   | pending / leased / dead count      |
//! | `jobs_meta`      | `lease_seq`, `counts_kept`            | last lease token; counts kept flag |
//! | `indexes`        | index + `m` + member                  | score (f64 bits, 8 bytes BE)       |
//! |                  | index + `n`                           | member count (8 bytes BE)          |
//! |                  | index + `s` + score (orderable) + member | (empty)                         |
//! | `lists`          | list + position (8 bytes BE)          | item                               |
//! | `list_len`       | list                                  | length                             |
//! | `counters`       | key                                   | value                              |
//!
//! Expiry is judged with the caller's `now_ms`, as in the Redis backend: an
//! expired remembered key or lock counts as absent. Expired remembered keys are
//! purged lazily (a few per `remember`/`jobs_push`, oldest first, through
//! `seen_expiry`), and [`Backend::purge_expired`] (the retention job) deletes
//! them in bounded steps so the table does not grow with every customer ever
//! seen.
//!
//! Locks and rate limiters are not in the file: only this process opens it, so
//! they live in its memory (`ephemeral.rs`) and cost no commit.
//!
//! Leases: opening the file releases every lease the previous run left (only
//! one process opens it, so their holders are gone) and the jobs are claimable
//! at once.
//!
//! A sorted index's three kinds of entries share one table and sit next to
//! each other, so changing an index dirties few pages (stores written with
//! the earlier three tables `index_members`, `index_scores`, `index_len` are
//! moved into `indexes` when opened).
//!
//! Costs: claims read only the due-ordered tables; `jobs_counts` and
//! `index_len` are lookups; `index_rank` walks the index's entries, O(n) in
//! its size.
//!
//! Pub/sub is in-process ([`tokio::sync::broadcast`] per topic): the embedded
//! store serves a single process by design.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, Table, TableDefinition, TableHandle,
    WriteTransaction,
};
use tokio::sync::{broadcast, mpsc};

use super::backend::{
    Backend, Job, JobCounts, MoveOutcome, NewJob, RawEntry, StoreError, StoreResult, Versioned,
    colocated,
};
use super::{check_score, gcra_params};
use ephemeral::Ephemeral;
pub use group_commit::WriteStats;
use group_commit::{SyncPolicy, Writer};

mod ephemeral;
mod group_commit;

const SEEN: TableDefinition<&[u8], i64> = TableDefinition::new("seen");
const SEEN_EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("seen_expiry");
const DOCS: TableDefinition<&str, &[u8]> = TableDefinition::new("docs");
const JOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jobs");
const JOBS_PENDING: TableDefinition<&[u8], ()> = TableDefinition::new("jobs_pending");
const JOBS_LEASED: TableDefinition<&[u8], ()> = TableDefinition::new("jobs_leased");
const JOBS_DEAD: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jobs_dead");
const JOBS_COUNT: TableDefinition<&[u8], u64> = TableDefinition::new("jobs_count");
const JOBS_META: TableDefinition<&str, u64> = TableDefinition::new("jobs_meta");
/// Every sorted index, in one table. Under an index's name prefix:
/// [`INDEX_MEMBER`] + member → its score (f64 bits, big-endian),
/// [`INDEX_LEN`] → how many members (u64, big-endian), and [`INDEX_SCORE`] +
/// score (ordered) + member → nothing. One table and adjacent keys: a change
/// to an index dirties one or two pages where three tables dirtied three, and
/// the search index changes several indexes per message.
const INDEXES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("indexes");
/// The tables of the index layout before [`INDEXES`]; moved into it when a
/// store written by an older version is opened.
const OLD_INDEX_MEMBERS: TableDefinition<&[u8], f64> = TableDefinition::new("index_members");
const OLD_INDEX_SCORES: TableDefinition<&[u8], ()> = TableDefinition::new("index_scores");
const OLD_INDEX_LEN: TableDefinition<&str, u64> = TableDefinition::new("index_len");
const INDEX_MEMBER: u8 = b'm';
const INDEX_LEN: u8 = b'n';
const INDEX_SCORE: u8 = b's';
const LISTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("lists");
const LIST_LEN: TableDefinition<&str, u64> = TableDefinition::new("list_len");
const COUNTERS: TableDefinition<&str, i64> = TableDefinition::new("counters");

/// The file inside the data directory.
pub const DB_FILE: &str = "balas.redb";
/// redb's page cache. Its default (1 GiB) lets the process grow with the
/// database file (a 100,000-recipient broadcast adds about 120 MiB of records);
/// the pages that are hot — queue heads, recent documents, the trees' inner
/// nodes — fit in far less, and the rest is read back from the kernel's page
/// cache, which the process's memory does not count. 16 MiB: against 32 MiB,
/// `webhook_load` at 1,000/s showed no difference in CPU or reply latency
/// beyond run-to-run noise, and a 100,000-recipient broadcast peaked at
/// 75 MiB instead of 102 MiB (BENCHMARKS.md).
const CACHE_BYTES: usize = 16 * 1024 * 1024;
/// How many expired remembered keys one call purges at most.
const PURGE_BATCH: usize = 64;
/// Buffer of a topic's broadcast channel and of each subscription.
const TOPIC_BUFFER: usize = 1_024;

const JOB_PENDING: u8 = 0;
const JOB_LEASED: u8 = 1;
/// Records written since fencing carry this flag on their state byte and the
/// lease token after the attempts; older records (without it) decode with
/// token 0.
const JOB_FENCED: u8 = 0x80;
const JOB_HEADER_V1: usize = 1 + 8 + 8 + 4;
const JOB_HEADER: usize = JOB_HEADER_V1 + 8;
/// `jobs_meta` key of the last lease token handed out.
const LEASE_SEQ: &str = "lease_seq";
/// `jobs_meta` key present once `jobs_count` is maintained.
const COUNTS_KEPT: &str = "counts_kept";
/// `jobs_count` key suffixes.
const COUNT_PENDING: u8 = b'p';
const COUNT_LEASED: u8 = b'l';
const COUNT_DEAD: u8 = b'd';

/// [`Backend`] on a local redb file; see the module docs.
pub struct EmbeddedBackend {
    db: Arc<Database>,
    /// The only place write transactions are opened; dropped (and joined)
    /// before `db`, so the file is released when the backend is.
    writer: Writer,
    path: String,
    topics: Arc<Mutex<HashMap<String, broadcast::Sender<Vec<u8>>>>>,
    /// Locks and pacing state: in memory, as only this process opens the file.
    ephemeral: Arc<Ephemeral>,
}

impl std::fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

// ---- encodings ------------------------------------------------------------

/// The key prefix of a name: its bytes with 0x00 escaped as 0x00 0xFF, then the
/// terminator 0x00 0x01. No name's prefix is a prefix of another's, and all keys
/// of a name sort between the prefix and `name_prefix_end`.
pub(crate) fn name_prefix(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for &b in name.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
    out
}

/// The exclusive upper bound of every key starting with `prefix` (a name prefix).
fn name_prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last = 0x02;
    }
    end
}

/// `v` as 8 bytes whose byte order is the numeric order.
fn ord_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn unord_i64(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// `v` (not NaN) as 8 bytes whose byte order is the numeric order.
fn ord_f64(v: f64) -> [u8; 8] {
    let bits = v.to_bits();
    let bits = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    bits.to_be_bytes()
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

fn corrupt(key: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Splits `prefix + 8-byte number + text` into the number bytes and the text.
fn split_sorted_key(key: &[u8], prefix_len: usize) -> StoreResult<([u8; 8], String)> {
    let num: [u8; 8] = key
        .get(prefix_len..prefix_len + 8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt(String::from_utf8_lossy(key), "sorted key too short"))?;
    let text = std::str::from_utf8(&key[prefix_len + 8..])
        .map_err(|e| corrupt(String::from_utf8_lossy(key), e.to_string()))?;
    Ok((num, text.to_owned()))
}

fn read_i64(b: &[u8], at: usize, key: &str) -> StoreResult<i64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(i64::from_be_bytes)
        .ok_or_else(|| corrupt(key, "value too short"))
}

/// A job record as stored in `jobs`.
#[derive(Clone)]
struct JobRecord {
    state: u8,
    due_ms: i64,
    /// The key in `jobs_pending` (the due time) or `jobs_leased` (the lease deadline).
    sort_ms: i64,
    attempts: u32,
    /// Fencing token of the current lease (0 when pending).
    lease: u64,
    payload: Vec<u8>,
}

impl JobRecord {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(JOB_HEADER + self.payload.len());
        out.push(self.state | JOB_FENCED);
        out.extend_from_slice(&self.due_ms.to_be_bytes());
        out.extend_from_slice(&self.sort_ms.to_be_bytes());
        out.extend_from_slice(&self.attempts.to_be_bytes());
        out.extend_from_slice(&self.lease.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    fn decode(b: &[u8], key: &str) -> StoreResult<Self> {
        if b.len() < JOB_HEADER_V1 {
            return Err(corrupt(key, "job record too short"));
        }
        let fenced = b[0] & JOB_FENCED != 0;
        let state = b[0] & !JOB_FENCED;
        if state != JOB_PENDING && state != JOB_LEASED {
            return Err(corrupt(key, format!("job state {state}")));
        }
        let attempts = b
            .get(17..21)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| corrupt(key, "job record too short"))?;
        let (lease, header) = if fenced {
            (read_i64(b, JOB_HEADER_V1, key)? as u64, JOB_HEADER)
        } else {
            (0, JOB_HEADER_V1)
        };
        Ok(Self {
            state,
            due_ms: read_i64(b, 1, key)?,
            sort_ms: read_i64(b, 9, key)?,
            attempts,
            lease,
            payload: b[header..].to_vec(),
        })
    }

    fn into_job(self, id: String) -> Job {
        Job {
            id,
            due_ms: self.due_ms,
            attempts: self.attempts,
            payload: self.payload,
            lease: self.lease,
        }
    }
}

/// The job tables of one write transaction, keeping the per-queue counts in
/// step with every move so that `jobs_counts` is a lookup.
struct JobTables<'t> {
    jobs: Table<'t, &'static [u8], &'static [u8]>,
    pending: Table<'t, &'static [u8], ()>,
    leased: Table<'t, &'static [u8], ()>,
    counts: Table<'t, &'static [u8], u64>,
}

impl<'t> JobTables<'t> {
    fn open(txn: &'t WriteTransaction) -> StoreResult<Self> {
        Ok(Self {
            jobs: txn.open_table(JOBS).map_err(db_err)?,
            pending: txn.open_table(JOBS_PENDING).map_err(db_err)?,
            leased: txn.open_table(JOBS_LEASED).map_err(db_err)?,
            counts: txn.open_table(JOBS_COUNT).map_err(db_err)?,
        })
    }

    fn get(&self, prefix: &[u8], id: &str) -> StoreResult<Option<JobRecord>> {
        let jkey = concat(&[prefix, id.as_bytes()]);
        match self.jobs.get(&jkey[..]).map_err(db_err)? {
            Some(g) => Ok(Some(JobRecord::decode(g.value(), id)?)),
            None => Ok(None),
        }
    }

    fn add_count(&mut self, prefix: &[u8], kind: u8, delta: i64) -> StoreResult<()> {
        let key = concat(&[prefix, &[kind]]);
        let current = self
            .counts
            .get(&key[..])
            .map_err(db_err)?
            .map_or(0, |g| g.value());
        let next = (current as i64).saturating_add(delta).max(0) as u64;
        if next == 0 {
            self.counts.remove(&key[..]).map_err(db_err)?;
        } else {
            self.counts.insert(&key[..], next).map_err(db_err)?;
        }
        Ok(())
    }

    /// Takes a job out of its sorted table (pending or leased).
    fn unlink(&mut self, prefix: &[u8], id: &str, rec: &JobRecord) -> StoreResult<()> {
        let skey = concat(&[prefix, &ord_i64(rec.sort_ms), id.as_bytes()]);
        if rec.state == JOB_LEASED {
            self.leased.remove(&skey[..]).map_err(db_err)?;
            self.add_count(prefix, COUNT_LEASED, -1)
        } else {
            self.pending.remove(&skey[..]).map_err(db_err)?;
            self.add_count(prefix, COUNT_PENDING, -1)
        }
    }

    /// Stores `rec` and files it in its sorted table (the job must be unlinked
    /// or new).
    fn link(&mut self, prefix: &[u8], id: &str, rec: &JobRecord) -> StoreResult<()> {
        let jkey = concat(&[prefix, id.as_bytes()]);
        self.jobs
            .insert(&jkey[..], &rec.encode()[..])
            .map_err(db_err)?;
        let skey = concat(&[prefix, &ord_i64(rec.sort_ms), id.as_bytes()]);
        if rec.state == JOB_LEASED {
            self.leased.insert(&skey[..], ()).map_err(db_err)?;
            self.add_count(prefix, COUNT_LEASED, 1)
        } else {
            self.pending.insert(&skey[..], ()).map_err(db_err)?;
            self.add_count(prefix, COUNT_PENDING, 1)
        }
    }

    /// Deletes a job entirely.
    fn delete(&mut self, prefix: &[u8], id: &str, rec: &JobRecord) -> StoreResult<()> {
        self.unlink(prefix, id, rec)?;
        let jkey = concat(&[prefix, id.as_bytes()]);
        self.jobs.remove(&jkey[..]).map_err(db_err)?;
        Ok(())
    }

    /// The job when it is held under `lease` now.
    fn held(&self, prefix: &[u8], id: &str, lease: u64) -> StoreResult<Option<JobRecord>> {
        Ok(self
            .get(prefix, id)?
            .filter(|r| r.state == JOB_LEASED && r.lease == lease))
    }

    /// Moves every lease that expired by `now_ms` (every lease, with `i64::MAX`)
    /// back to pending with attempts + 1: its holder died mid-run.
    fn requeue_expired(&mut self, prefix: &[u8], now_ms: i64) -> StoreResult<()> {
        let upper = concat(&[prefix, &ord_i64(now_ms.saturating_add(1))]);
        let upper = if now_ms == i64::MAX {
            name_prefix_end(prefix)
        } else {
            upper
        };
        for lkey in keys_in(&self.leased, prefix, &upper, usize::MAX)? {
            let (_, id) = split_sorted_key(&lkey, prefix.len())?;
            let Some(rec) = self.get(prefix, &id)? else {
                self.leased.remove(&lkey[..]).map_err(db_err)?;
                continue;
            };
            self.unlink(prefix, &id, &rec)?;
            let rec = JobRecord {
                state: JOB_PENDING,
                sort_ms: rec.due_ms,
                attempts: rec.attempts.saturating_add(1),
                lease: 0,
                ..rec
            };
            self.link(prefix, &id, &rec)?;
        }
        Ok(())
    }
}

/// Adds `delta` to a counter in `txn`; returns the new value.
fn add_counter(txn: &WriteTransaction, key: &str, delta: i64) -> StoreResult<i64> {
    let mut counters = txn.open_table(COUNTERS).map_err(db_err)?;
    let cur = counters.get(key).map_err(db_err)?.map_or(0, |g| g.value());
    let new = cur
        .checked_add(delta)
        .ok_or_else(|| StoreError::Unavailable(format!("counter {key} would overflow")))?;
    counters.insert(key, new).map_err(db_err)?;
    Ok(new)
}

/// A fresh lease token (never 0), from a counter kept in the database so that
/// tokens never repeat across restarts.
fn next_lease(txn: &WriteTransaction) -> StoreResult<u64> {
    let mut meta = txn.open_table(JOBS_META).map_err(db_err)?;
    let next = meta
        .get(LEASE_SEQ)
        .map_err(db_err)?
        .map_or(0, |g| g.value())
        + 1;
    meta.insert(LEASE_SEQ, next).map_err(db_err)?;
    Ok(next)
}

/// The name prefix a sorted-table key starts with (up to and including the
/// unescaped 0x00 0x01 terminator of [`name_prefix`]).
fn prefix_of(key: &[u8]) -> &[u8] {
    let mut i = 0;
    while i + 1 < key.len() {
        match (key[i], key[i + 1]) {
            (0, 1) => return &key[..i + 2],
            (0, _) => i += 2,
            _ => i += 1,
        }
    }
    key
}

/// The distinct name prefixes of the keys of a sorted table.
fn prefixes_in(table: &impl ReadableTable<&'static [u8], ()>) -> StoreResult<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for entry in table.range::<&[u8]>(..).map_err(db_err)? {
        let (k, _) = entry.map_err(db_err)?;
        let prefix = prefix_of(k.value());
        if out.last().is_none_or(|p| p != prefix) {
            out.push(prefix.to_vec());
        }
    }
    Ok(out)
}

/// Start-up work on the job tables: counts are rebuilt once for a database
/// written before they were kept, and every lease left by the previous run is
/// released at once. Only one process opens the file, so a lease found at
/// start belongs to a process that is gone; waiting for it to expire would
/// only keep customers waiting.
fn recover_jobs(txn: &WriteTransaction) -> StoreResult<()> {
    let counted = {
        let meta = txn.open_table(JOBS_META).map_err(db_err)?;
        meta.get(COUNTS_KEPT).map_err(db_err)?.is_some()
    };
    let mut t = JobTables::open(txn)?;
    if !counted {
        for (table, kind) in [(&t.pending, COUNT_PENDING), (&t.leased, COUNT_LEASED)] {
            let mut per_queue: Vec<(Vec<u8>, i64)> = Vec::new();
            for entry in table.range::<&[u8]>(..).map_err(db_err)? {
                let (k, _) = entry.map_err(db_err)?;
                let prefix = prefix_of(k.value());
                match per_queue.last_mut() {
                    Some((p, n)) if p == prefix => *n += 1,
                    _ => per_queue.push((prefix.to_vec(), 1)),
                }
            }
            for (prefix, n) in per_queue {
                let key = concat(&[&prefix, &[kind]]);
                t.counts.insert(&key[..], n as u64).map_err(db_err)?;
            }
        }
        txn.open_table(JOBS_META)
            .map_err(db_err)?
            .insert(COUNTS_KEPT, 1)
            .map_err(db_err)?;
    }
    for prefix in prefixes_in(&t.leased)? {
        t.requeue_expired(&prefix, i64::MAX)?;
    }
    Ok(())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {}", e.into()))
}

// ---- transaction helpers --------------------------------------------------

type SeenTables<'t> = (Table<'t, &'static [u8], i64>, Table<'t, &'static [u8], ()>);

fn seen_key_plain(key: &str) -> Vec<u8> {
    concat(&[b"r", key.as_bytes()])
}

fn seen_key_dedupe(queue: &str, key: &str) -> Vec<u8> {
    concat(&[b"d", &name_prefix(queue), key.as_bytes()])
}

fn open_seen(txn: &WriteTransaction) -> StoreResult<SeenTables<'_>> {
    Ok((
        txn.open_table(SEEN).map_err(db_err)?,
        txn.open_table(SEEN_EXPIRY).map_err(db_err)?,
    ))
}

/// Drops up to [`PURGE_BATCH`] remembered keys that expired at `now_ms`.
fn purge_seen(t: &mut SeenTables<'_>, now_ms: i64) -> StoreResult<()> {
    purge_seen_up_to(t, now_ms, PURGE_BATCH).map(|_| ())
}

/// Drops up to `max` remembered keys that expired at `now_ms`, oldest first;
/// returns how many.
fn purge_seen_up_to(t: &mut SeenTables<'_>, now_ms: i64, max: usize) -> StoreResult<usize> {
    let upper = ord_i64(now_ms.saturating_add(1));
    let mut expired = Vec::new();
    for entry in t.1.range::<&[u8]>(..&upper[..]).map_err(db_err)? {
        if expired.len() >= max {
            break;
        }
        let (k, ()) = entry
            .map(|(k, v)| (k.value().to_vec(), v.value()))
            .map_err(db_err)?;
        expired.push(k);
    }
    let purged = expired.len();
    for k in expired {
        t.1.remove(&k[..]).map_err(db_err)?;
        let Some(exp) = k.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
            continue;
        };
        let seen_key = &k[8..];
        let current = t.0.get(seen_key).map_err(db_err)?.map(|g| g.value());
        if current == Some(unord_i64(exp)) {
            t.0.remove(seen_key).map_err(db_err)?;
        }
    }
    Ok(purged)
}

/// One page of [`Backend::scan`]: tables in a fixed order, keys in order;
/// the cursor is `<table number>:<hex of the last key>`.
fn scan_tables(
    txn: &redb::ReadTransaction,
    cursor: &str,
    limit: usize,
) -> StoreResult<(Vec<RawEntry>, Option<String>)> {
    use std::ops::Bound;
    const TABLES: usize = 13;
    let (mut table, mut after) = match cursor.split_once(':') {
        Some((t, k)) => (
            t.parse::<usize>()
                .map_err(|_| corrupt("scan cursor", "bad table number"))?,
            Some(hex::decode(k).map_err(|_| corrupt("scan cursor", "bad key"))?),
        ),
        None => (0, None),
    };
    let mut out: Vec<RawEntry> = Vec::new();
    // Reads one table from `after` into `out`; true when it ended.
    macro_rules! read {
        ($def:expr, $name:literal, $key:expr, $val:expr) => {{
            let t = txn.open_table($def).map_err(db_err)?;
            let lower = match &after {
                Some(k) => Bound::Excluded(k.as_slice()),
                None => Bound::Unbounded,
            };
            let mut ended = true;
            for entry in t
                .range::<&[u8]>((lower, Bound::Unbounded))
                .map_err(db_err)?
            {
                if out.len() >= limit {
                    ended = false;
                    break;
                }
                let (k, v) = entry.map_err(db_err)?;
                let kb: Vec<u8> = $key(k.value());
                let vb: Vec<u8> = $val(v.value());
                after = Some(kb.clone());
                out.push(RawEntry {
                    key: format!("{}/{}", $name, String::from_utf8_lossy(&kb)),
                    values: vec![vb],
                });
            }
            ended
        }};
    }
    // String-keyed tables are read through their bytes.
    macro_rules! read_str {
        ($def:expr, $name:literal, $val:expr) => {{
            let t = txn.open_table($def).map_err(db_err)?;
            let start = after
                .as_ref()
                .map(|k| String::from_utf8_lossy(k).into_owned());
            let lower = match &start {
                Some(k) => Bound::Excluded(k.as_str()),
                None => Bound::Unbounded,
            };
            let mut ended = true;
            for entry in t.range::<&str>((lower, Bound::Unbounded)).map_err(db_err)? {
                if out.len() >= limit {
                    ended = false;
                    break;
                }
                let (k, v) = entry.map_err(db_err)?;
                let key = k.value().to_owned();
                let vb: Vec<u8> = $val(v.value());
                after = Some(key.clone().into_bytes());
                out.push(RawEntry {
                    key: format!("{}/{key}", $name),
                    values: vec![vb],
                });
            }
            ended
        }};
    }
    let bytes = |b: &[u8]| b.to_vec();
    let text = |n: String| n.into_bytes();
    while table < TABLES {
        let ended = match table {
            0 => read!(SEEN, "seen", bytes, |v: i64| text(v.to_string())),
            1 => read!(SEEN_EXPIRY, "seen_expiry", bytes, |(): ()| Vec::new()),
            2 => read_str!(DOCS, "docs", bytes),
            3 => read!(JOBS, "jobs", bytes, bytes),
            4 => read!(JOBS_PENDING, "jobs_pending", bytes, |(): ()| Vec::new()),
            5 => read!(JOBS_LEASED, "jobs_leased", bytes, |(): ()| Vec::new()),
            6 => read!(JOBS_DEAD, "jobs_dead", bytes, bytes),
            7 => read!(JOBS_COUNT, "jobs_count", bytes, |v: u64| text(
                v.to_string()
            )),
            8 => read_str!(JOBS_META, "jobs_meta", |v: u64| text(v.to_string())),
            9 => read!(INDEXES, "indexes", bytes, bytes),
            10 => read!(LISTS, "lists", bytes, bytes),
            11 => read_str!(LIST_LEN, "list_len", |v: u64| text(v.to_string())),
            _ => read_str!(COUNTERS, "counters", |v: i64| text(v.to_string())),
        };
        if !ended {
            let last = after.as_deref().map(hex::encode).unwrap_or_default();
            return Ok((out, Some(format!("{table}:{last}"))));
        }
        table += 1;
        after = None;
    }
    Ok((out, None))
}

/// True when `key` is remembered (not expired) at `now_ms`.
fn seen_active(t: &SeenTables<'_>, key: &[u8], now_ms: i64) -> StoreResult<bool> {
    Ok(t.0
        .get(key)
        .map_err(db_err)?
        .is_some_and(|g| g.value() > now_ms))
}

/// Remembers `key` until `expiry`.
fn seen_set(t: &mut SeenTables<'_>, key: &[u8], expiry: i64) -> StoreResult<()> {
    let old = t.0.insert(key, expiry).map_err(db_err)?.map(|g| g.value());
    if let Some(old) = old {
        t.1.remove(&concat(&[&ord_i64(old), key])[..])
            .map_err(db_err)?;
    }
    t.1.insert(&concat(&[&ord_i64(expiry), key])[..], ())
        .map_err(db_err)?;
    Ok(())
}

fn seen_remove(t: &mut SeenTables<'_>, key: &[u8]) -> StoreResult<()> {
    let old = t.0.remove(key).map_err(db_err)?.map(|g| g.value());
    if let Some(old) = old {
        t.1.remove(&concat(&[&ord_i64(old), key])[..])
            .map_err(db_err)?;
    }
    Ok(())
}

/// Keys of `table` in `[lo, hi)`, at most `limit`.
fn keys_in<V: redb::Value + 'static>(
    table: &impl ReadableTable<&'static [u8], V>,
    lo: &[u8],
    hi: &[u8],
    limit: usize,
) -> StoreResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    for entry in table.range::<&[u8]>(lo..hi).map_err(db_err)? {
        let (k, _) = entry.map_err(db_err)?;
        out.push(k.value().to_vec());
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// The keys of one sorted index in [`INDEXES`].
struct IndexKeys {
    /// The index's name prefix.
    prefix: Vec<u8>,
}

impl IndexKeys {
    fn of(index: &str) -> Self {
        Self {
            prefix: name_prefix(index),
        }
    }

    fn member(&self, member: &str) -> Vec<u8> {
        concat(&[&self.prefix, &[INDEX_MEMBER], member.as_bytes()])
    }

    fn len(&self) -> Vec<u8> {
        concat(&[&self.prefix, &[INDEX_LEN]])
    }

    fn score(&self, score: f64, member: &str) -> Vec<u8> {
        concat(&[
            &self.prefix,
            &[INDEX_SCORE],
            &ord_f64(score),
            member.as_bytes(),
        ])
    }

    /// The bounds of the entries scored from `min` to `max` (both included).
    fn scores_between(&self, min: f64, max: f64) -> (Vec<u8>, Vec<u8>) {
        let hi = u64::from_be_bytes(ord_f64(max)).saturating_add(1);
        (
            concat(&[&self.prefix, &[INDEX_SCORE], &ord_f64(min)]),
            concat(&[&self.prefix, &[INDEX_SCORE], &hi.to_be_bytes()]),
        )
    }

    /// The bounds of all its entries by score.
    fn all_scores(&self) -> (Vec<u8>, Vec<u8>) {
        (
            concat(&[&self.prefix, &[INDEX_SCORE]]),
            concat(&[&self.prefix, &[INDEX_SCORE + 1]]),
        )
    }

    /// `(score, member)` of an entry by score.
    fn split_score(&self, key: &[u8]) -> StoreResult<(f64, String)> {
        let (num, member) = split_sorted_key(key, self.prefix.len() + 1)?;
        Ok((unord_f64(num), member))
    }
}

fn eight_bytes(v: &[u8], key: &[u8]) -> StoreResult<[u8; 8]> {
    v.try_into()
        .map_err(|_| corrupt(String::from_utf8_lossy(key), "index value is not 8 bytes"))
}

/// A member's score in an index.
fn index_score_in(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    keys: &IndexKeys,
    member: &str,
) -> StoreResult<Option<f64>> {
    let key = keys.member(member);
    match table.get(&key[..]).map_err(db_err)? {
        Some(v) => Ok(Some(f64::from_bits(u64::from_be_bytes(eight_bytes(
            v.value(),
            &key,
        )?)))),
        None => Ok(None),
    }
}

/// How many members an index has.
fn index_len_in(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    keys: &IndexKeys,
) -> StoreResult<u64> {
    let key = keys.len();
    match table.get(&key[..]).map_err(db_err)? {
        Some(v) => Ok(u64::from_be_bytes(eight_bytes(v.value(), &key)?)),
        None => Ok(0),
    }
}

/// The lowest `(score, member)` of an index.
fn index_min(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    keys: &IndexKeys,
) -> StoreResult<Option<(f64, String)>> {
    let (lo, hi) = keys.all_scores();
    match keys_in(table, &lo, &hi, 1)?.pop() {
        Some(key) => Ok(Some(keys.split_score(&key)?)),
        None => Ok(None),
    }
}

/// The index table opened in a write transaction.
struct IndexTables<'t> {
    table: Table<'t, &'static [u8], &'static [u8]>,
}

impl<'t> IndexTables<'t> {
    fn open(txn: &'t WriteTransaction) -> StoreResult<Self> {
        Ok(Self {
            table: txn.open_table(INDEXES).map_err(db_err)?,
        })
    }

    fn len(&self, index: &str) -> StoreResult<u64> {
        index_len_in(&self.table, &IndexKeys::of(index))
    }

    fn contains(&self, index: &str, member: &str) -> StoreResult<bool> {
        Ok(index_score_in(&self.table, &IndexKeys::of(index), member)?.is_some())
    }

    fn min(&self, index: &str) -> StoreResult<Option<(f64, String)>> {
        index_min(&self.table, &IndexKeys::of(index))
    }

    fn add_len(&mut self, keys: &IndexKeys, delta: i64) -> StoreResult<()> {
        let new = index_len_in(&self.table, keys)?.saturating_add_signed(delta);
        let key = keys.len();
        if new == 0 {
            self.table.remove(&key[..]).map_err(db_err)?;
        } else {
            self.table
                .insert(&key[..], &new.to_be_bytes()[..])
                .map_err(db_err)?;
        }
        Ok(())
    }

    fn put(&mut self, index: &str, member: &str, score: f64) -> StoreResult<()> {
        let keys = IndexKeys::of(index);
        match index_score_in(&self.table, &keys, member)? {
            Some(old) if old.to_bits() == score.to_bits() => return Ok(()),
            Some(old) => {
                self.table
                    .remove(&keys.score(old, member)[..])
                    .map_err(db_err)?;
            }
            None => self.add_len(&keys, 1)?,
        }
        self.table
            .insert(&keys.member(member)[..], &score.to_bits().to_be_bytes()[..])
            .map_err(db_err)?;
        self.table
            .insert(&keys.score(score, member)[..], &[][..])
            .map_err(db_err)?;
        Ok(())
    }

    fn remove(&mut self, index: &str, member: &str) -> StoreResult<bool> {
        let keys = IndexKeys::of(index);
        let Some(old) = index_score_in(&self.table, &keys, member)? else {
            return Ok(false);
        };
        self.table
            .remove(&keys.member(member)[..])
            .map_err(db_err)?;
        self.table
            .remove(&keys.score(old, member)[..])
            .map_err(db_err)?;
        self.add_len(&keys, -1)?;
        Ok(true)
    }
}

/// Moves the sorted indexes of a store written before [`INDEXES`] existed
/// (three tables: members, scores, sizes) into it, then deletes the old
/// tables. Runs once, in the transaction that opens the store.
fn migrate_indexes(txn: &WriteTransaction) -> StoreResult<()> {
    let old = txn
        .list_tables()
        .map_err(db_err)?
        .any(|t| t.name() == "index_members");
    if !old {
        return Ok(());
    }
    {
        let members = txn.open_table(OLD_INDEX_MEMBERS).map_err(db_err)?;
        let sizes = txn.open_table(OLD_INDEX_LEN).map_err(db_err)?;
        let mut new = txn.open_table(INDEXES).map_err(db_err)?;
        for entry in members.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let key = k.value();
            // The name prefix ends at its terminator 0x00 0x01 (a 0x00 of
            // the name itself is escaped as 0x00 0xFF).
            let end = key
                .windows(2)
                .position(|w| w == [0x00, 0x01])
                .map(|at| at + 2)
                .ok_or_else(|| corrupt(String::from_utf8_lossy(key), "index key without a name"))?;
            let keys = IndexKeys {
                prefix: key[..end].to_vec(),
            };
            let member = std::str::from_utf8(&key[end..])
                .map_err(|e| corrupt(String::from_utf8_lossy(key), e.to_string()))?;
            let score = v.value();
            new.insert(&keys.member(member)[..], &score.to_bits().to_be_bytes()[..])
                .map_err(db_err)?;
            new.insert(&keys.score(score, member)[..], &[][..])
                .map_err(db_err)?;
        }
        for entry in sizes.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            new.insert(
                &IndexKeys::of(k.value()).len()[..],
                &v.value().to_be_bytes()[..],
            )
            .map_err(db_err)?;
        }
    }
    txn.delete_table(OLD_INDEX_MEMBERS).map_err(db_err)?;
    txn.delete_table(OLD_INDEX_SCORES).map_err(db_err)?;
    txn.delete_table(OLD_INDEX_LEN).map_err(db_err)?;
    tracing::info!("embedded store: sorted indexes moved into one table");
    Ok(())
}

fn unord_f64(b: [u8; 8]) -> f64 {
    let bits = u64::from_be_bytes(b);
    let bits = if bits >> 63 == 1 {
        bits & !(1 << 63)
    } else {
        !bits
    };
    f64::from_bits(bits)
}

impl EmbeddedBackend {
    /// Opens (creating if needed) `data_dir/balas.redb`. Fails with
    /// [`StoreError::Locked`] while another handle has the file open.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        Self::open_with(data_dir, SyncPolicy::default())
    }

    /// [`Self::open`], with the writer making commits durable as `policy` says.
    fn open_with(data_dir: &Path, policy: SyncPolicy) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!("creating {}: {e}", data_dir.display()))
        })?;
        let file = data_dir.join(DB_FILE);
        let path = file.display().to_string();
        let opening = std::time::Instant::now();
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&file)
            .map_err(|e| match e {
                DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.clone()),
                e => StoreError::Unavailable(format!("opening {path}: {e}")),
            })?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(SEEN).map_err(db_err)?;
        txn.open_table(SEEN_EXPIRY).map_err(db_err)?;
        txn.open_table(DOCS).map_err(db_err)?;
        txn.open_table(JOBS).map_err(db_err)?;
        txn.open_table(JOBS_PENDING).map_err(db_err)?;
        txn.open_table(JOBS_LEASED).map_err(db_err)?;
        txn.open_table(JOBS_DEAD).map_err(db_err)?;
        txn.open_table(JOBS_COUNT).map_err(db_err)?;
        txn.open_table(JOBS_META).map_err(db_err)?;
        migrate_indexes(&txn)?;
        txn.open_table(INDEXES).map_err(db_err)?;
        txn.open_table(LISTS).map_err(db_err)?;
        txn.open_table(LIST_LEN).map_err(db_err)?;
        txn.open_table(COUNTERS).map_err(db_err)?;
        recover_jobs(&txn)?;
        txn.commit().map_err(db_err)?;
        // Long only after a crash (redb checks and repairs the file).
        tracing::info!(
            file = %path,
            ms = opening.elapsed().as_millis() as u64,
            "embedded store opened"
        );
        let db = Arc::new(db);
        Ok(Self {
            writer: Writer::start(Arc::clone(&db), policy)?,
            db,
            path,
            topics: Arc::new(Mutex::new(HashMap::new())),
            ephemeral: Arc::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Writes, commits and fsyncs since the store was opened; their ratios
    /// are how many writes share a commit and an fsync.
    pub fn write_stats(&self) -> WriteStats {
        self.writer.stats()
    }

    /// Runs `f` in a write transaction on the writer thread and answers once
    /// that transaction is committed and fsync'd (inside
    /// [`super::durability::deferred`]: once committed, visible, and fsync'd
    /// later); when `f` fails, nothing it wrote is kept. `f` shares the
    /// transaction with other callers' writes, so it may run more than once
    /// (only the committed run's result is returned): it must have no effect
    /// outside the transaction, hence `Clone`.
    fn write<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Clone + Send + 'static,
    {
        self.writer.submit(f, !super::durability::is_deferred())
    }

    /// Runs `f` in one read transaction on the blocking pool.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&redb::ReadTransaction) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(db_err)?;
            f(&txn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("embedded store task: {e}")))?
    }

    /// Runs `f` in one read transaction on the calling thread: for point
    /// reads (a key or the first of a range), which take microseconds — the
    /// hot pages are in redb's cache, the rest in the kernel's. Handing them
    /// to the blocking pool, as [`Self::read`] does for reads that walk a
    /// range, cost more than the read: two thread switches and a wake-up
    /// each, for a dozen reads per message (`BENCHMARKS.md`, issue 14 phase F).
    fn read_point<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let txn = self.db.begin_read().map_err(db_err)?;
        f(&txn)
    }
}

#[async_trait]
impl Backend for EmbeddedBackend {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn sync(&self) -> StoreResult<()> {
        // A write that changes nothing, committed durably: redb's commits are
        // in order, so it makes every earlier one durable too.
        self.writer.submit(|_| Ok(()), true).await
    }

    async fn ping(&self) -> StoreResult<()> {
        if !self.writer.is_alive() {
            return Err(StoreError::Unavailable(
                "the embedded store writer has stopped".into(),
            ));
        }
        self.read(|txn| {
            txn.open_table(COUNTERS).map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn remember(&self, key: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool> {
        let skey = seen_key_plain(key);
        let expiry = now_ms.saturating_add(ms(ttl));
        self.write(move |txn| {
            let mut t = open_seen(txn)?;
            purge_seen(&mut t, now_ms)?;
            if seen_active(&t, &skey, now_ms)? {
                return Ok(false);
            }
            seen_set(&mut t, &skey, expiry)?;
            Ok(true)
        })
        .await
    }

    async fn forget(&self, key: &str) -> StoreResult<()> {
        let skey = seen_key_plain(key);
        self.write(move |txn| seen_remove(&mut open_seen(txn)?, &skey))
            .await
    }

    async fn doc_get(&self, key: &str) -> StoreResult<Option<Versioned>> {
        let mut docs = self.doc_get_many(&[key.to_owned()]).await?;
        Ok(docs.pop().flatten())
    }

    async fn doc_put(&self, key: &str, expected: u64, data: &[u8]) -> StoreResult<Option<u64>> {
        self.doc_put_counted(key, expected, data, &[]).await
    }

    async fn doc_put_counted(
        &self,
        key: &str,
        expected: u64,
        data: &[u8],
        counters: &[(String, i64)],
    ) -> StoreResult<Option<u64>> {
        // The same contract as a sharded backend (see `backend.rs`).
        colocated(
            "doc_put_counted",
            counters.iter().map(|(c, _)| c.as_str()).chain([key]),
        )?;
        let key = key.to_owned();
        let data = data.to_vec();
        let counters = counters.to_vec();
        self.write(move |txn| {
            let mut docs = txn.open_table(DOCS).map_err(db_err)?;
            let current = match docs.get(key.as_str()).map_err(db_err)? {
                Some(g) => read_i64(g.value(), 0, &key)? as u64,
                None => 0,
            };
            if current != expected {
                return Ok(None);
            }
            let version = current + 1;
            let value = concat(&[&version.to_be_bytes(), &data]);
            docs.insert(key.as_str(), &value[..]).map_err(db_err)?;
            for (counter, delta) in &counters {
                add_counter(txn, counter, *delta)?;
            }
            Ok(Some(version))
        })
        .await
    }

    async fn doc_delete(&self, key: &str) -> StoreResult<bool> {
        let key = key.to_owned();
        self.write(move |txn| {
            let mut docs = txn.open_table(DOCS).map_err(db_err)?;
            let existed = docs.remove(key.as_str()).map_err(db_err)?.is_some();
            Ok(existed)
        })
        .await
    }

    async fn doc_get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Versioned>>> {
        self.read_point(|txn| {
            let docs = txn.open_table(DOCS).map_err(db_err)?;
            keys.iter()
                .map(|key| {
                    let Some(g) = docs.get(key.as_str()).map_err(db_err)? else {
                        return Ok(None);
                    };
                    let b = g.value();
                    Ok(Some(Versioned {
                        version: read_i64(b, 0, key)? as u64,
                        data: b[8..].to_vec(),
                    }))
                })
                .collect()
        })
    }

    async fn jobs_push(&self, queue: &str, jobs: &[NewJob], now_ms: i64) -> StoreResult<Vec<bool>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let queue = queue.to_owned();
        let new_jobs = jobs.to_vec();
        self.write(move |txn| {
            let prefix = name_prefix(&queue);
            let mut seen = open_seen(txn)?;
            purge_seen(&mut seen, now_ms)?;
            let mut t = JobTables::open(txn)?;
            let mut out = Vec::with_capacity(new_jobs.len());
            for nj in new_jobs {
                let job = nj.job;
                if t.get(&prefix, &job.id)?.is_some() {
                    out.push(false);
                    continue;
                }
                if let Some((dkey, ttl)) = &nj.dedupe {
                    let skey = seen_key_dedupe(&queue, dkey);
                    if seen_active(&seen, &skey, now_ms)? {
                        out.push(false);
                        continue;
                    }
                    seen_set(&mut seen, &skey, now_ms.saturating_add(ms(*ttl)))?;
                }
                let rec = JobRecord {
                    state: JOB_PENDING,
                    due_ms: job.due_ms,
                    sort_ms: job.due_ms,
                    attempts: job.attempts,
                    lease: 0,
                    payload: job.payload,
                };
                t.link(&prefix, &job.id, &rec)?;
                out.push(true);
            }
            Ok(out)
        })
        .await
    }

    async fn jobs_claim(
        &self,
        queue: &str,
        now_ms: i64,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<Job>> {
        let prefix = name_prefix(queue);
        let upper = concat(&[&prefix, &ord_i64(now_ms.saturating_add(1))]);
        // Cheap read first, so idle polling does not write (and fsync).
        let busy = {
            let (prefix, upper) = (prefix.clone(), upper.clone());
            self.read(move |txn| {
                let leased = txn.open_table(JOBS_LEASED).map_err(db_err)?;
                let pending = txn.open_table(JOBS_PENDING).map_err(db_err)?;
                Ok(!keys_in(&leased, &prefix, &upper, 1)?.is_empty()
                    || (max > 0 && !keys_in(&pending, &prefix, &upper, 1)?.is_empty()))
            })
            .await?
        };
        if !busy {
            return Ok(Vec::new());
        }
        let deadline = now_ms.saturating_add(ms(lease));
        self.write(move |txn| {
            let mut t = JobTables::open(txn)?;
            t.requeue_expired(&prefix, now_ms)?;
            let mut out = Vec::new();
            for pkey in keys_in(&t.pending, &prefix, &upper, max)? {
                let (_, id) = split_sorted_key(&pkey, prefix.len())?;
                let Some(rec) = t.get(&prefix, &id)? else {
                    t.pending.remove(&pkey[..]).map_err(db_err)?;
                    continue;
                };
                t.unlink(&prefix, &id, &rec)?;
                let rec = JobRecord {
                    state: JOB_LEASED,
                    sort_ms: deadline,
                    lease: next_lease(txn)?,
                    ..rec
                };
                t.link(&prefix, &id, &rec)?;
                out.push(rec.into_job(id));
            }
            Ok(out)
        })
        .await
    }

    async fn jobs_ack(&self, queue: &str, id: &str, lease: u64) -> StoreResult<bool> {
        let prefix = name_prefix(queue);
        let id = id.to_owned();
        self.write(move |txn| {
            let mut t = JobTables::open(txn)?;
            let Some(rec) = t.held(&prefix, &id, lease)? else {
                return Ok(false);
            };
            t.delete(&prefix, &id, &rec)?;
            Ok(true)
        })
        .await
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
        let prefix = name_prefix(queue);
        let id = id.to_owned();
        let payload = payload.map(<[u8]>::to_vec);
        self.write(move |txn| {
            let mut t = JobTables::open(txn)?;
            let Some(rec) = t.held(&prefix, &id, lease)? else {
                return Ok(false);
            };
            t.unlink(&prefix, &id, &rec)?;
            let rec = JobRecord {
                state: JOB_PENDING,
                due_ms,
                sort_ms: due_ms,
                attempts: rec.attempts.saturating_add(u32::from(failed)),
                lease: 0,
                payload: payload.unwrap_or(rec.payload),
            };
            t.link(&prefix, &id, &rec)?;
            Ok(true)
        })
        .await
    }

    async fn jobs_extend(
        &self,
        queue: &str,
        leases: &[(String, u64)],
        deadline_ms: i64,
    ) -> StoreResult<Vec<bool>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = name_prefix(queue);
        let leases = leases.to_vec();
        self.write(move |txn| {
            let mut t = JobTables::open(txn)?;
            let mut out = Vec::with_capacity(leases.len());
            for (id, lease) in leases {
                let Some(rec) = t.held(&prefix, &id, lease)? else {
                    out.push(false);
                    continue;
                };
                t.unlink(&prefix, &id, &rec)?;
                let rec = JobRecord {
                    sort_ms: deadline_ms,
                    ..rec
                };
                t.link(&prefix, &id, &rec)?;
                out.push(true);
            }
            Ok(out)
        })
        .await
    }

    async fn jobs_bury(
        &self,
        queue: &str,
        id: &str,
        lease: u64,
        entry: &[u8],
    ) -> StoreResult<bool> {
        let prefix = name_prefix(queue);
        let id = id.to_owned();
        let entry = entry.to_vec();
        self.write(move |txn| {
            let mut t = JobTables::open(txn)?;
            let Some(rec) = t.held(&prefix, &id, lease)? else {
                return Ok(false);
            };
            t.delete(&prefix, &id, &rec)?;
            t.add_count(&prefix, COUNT_DEAD, 1)?;
            let mut dead = txn.open_table(JOBS_DEAD).map_err(db_err)?;
            // After the last position: entries may have been removed from
            // anywhere, so the count is no position.
            let position = match dead
                .range::<&[u8]>(&prefix[..]..&name_prefix_end(&prefix)[..])
                .map_err(db_err)?
                .next_back()
            {
                Some(last) => {
                    let (k, _) = last.map_err(db_err)?;
                    let (num, _) = split_sorted_key(k.value(), prefix.len())?;
                    u64::from_be_bytes(num).saturating_add(1)
                }
                None => 0,
            };
            dead.insert(&concat(&[&prefix, &position.to_be_bytes()])[..], &entry[..])
                .map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn jobs_dead(&self, queue: &str, start: u64, limit: u64) -> StoreResult<Vec<Vec<u8>>> {
        let prefix = name_prefix(queue);
        self.read(move |txn| {
            let dead = txn.open_table(JOBS_DEAD).map_err(db_err)?;
            let hi = name_prefix_end(&prefix);
            // `start` counts entries, not positions (removals leave gaps).
            let mut out = Vec::new();
            for entry in dead
                .range::<&[u8]>(&prefix[..]..&hi[..])
                .map_err(db_err)?
                .skip(usize::try_from(start).unwrap_or(usize::MAX))
            {
                if out.len() as u64 >= limit {
                    break;
                }
                out.push(entry.map_err(db_err)?.1.value().to_vec());
            }
            Ok(out)
        })
        .await
    }

    async fn jobs_dead_remove(&self, queue: &str, entry: &[u8]) -> StoreResult<bool> {
        let prefix = name_prefix(queue);
        let entry = entry.to_vec();
        self.write(move |txn| {
            let found = {
                let dead = txn.open_table(JOBS_DEAD).map_err(db_err)?;
                let hi = name_prefix_end(&prefix);
                let mut found = None;
                for item in dead.range::<&[u8]>(&prefix[..]..&hi[..]).map_err(db_err)? {
                    let (k, v) = item.map_err(db_err)?;
                    if v.value() == entry.as_slice() {
                        found = Some(k.value().to_vec());
                        break;
                    }
                }
                found
            };
            let Some(key) = found else {
                return Ok(false);
            };
            txn.open_table(JOBS_DEAD)
                .map_err(db_err)?
                .remove(&key[..])
                .map_err(db_err)?;
            JobTables::open(txn)?.add_count(&prefix, COUNT_DEAD, -1)?;
            Ok(true)
        })
        .await
    }

    async fn jobs_cancel(&self, queue: &str, id: &str) -> StoreResult<bool> {
        let prefix = name_prefix(queue);
        let id = id.to_owned();
        self.write(move |txn| {
            let mut t = JobTables::open(txn)?;
            let Some(rec) = t.get(&prefix, &id)? else {
                return Ok(false);
            };
            t.delete(&prefix, &id, &rec)?;
            Ok(true)
        })
        .await
    }

    async fn jobs_get(&self, queue: &str, id: &str) -> StoreResult<Option<Job>> {
        let jkey = concat(&[&name_prefix(queue), id.as_bytes()]);
        self.read_point(|txn| {
            let jobs = txn.open_table(JOBS).map_err(db_err)?;
            match jobs.get(&jkey[..]).map_err(db_err)? {
                Some(g) => Ok(Some(
                    JobRecord::decode(g.value(), id)?.into_job(id.to_owned()),
                )),
                None => Ok(None),
            }
        })
    }

    async fn jobs_counts(&self, queue: &str) -> StoreResult<JobCounts> {
        let prefix = name_prefix(queue);
        self.read_point(|txn| {
            let counts = txn.open_table(JOBS_COUNT).map_err(db_err)?;
            let get = |kind: u8| -> StoreResult<u64> {
                let key = concat(&[&prefix, &[kind]]);
                Ok(counts
                    .get(&key[..])
                    .map_err(db_err)?
                    .map_or(0, |g| g.value()))
            };
            Ok(JobCounts {
                pending: get(COUNT_PENDING)?,
                leased: get(COUNT_LEASED)?,
                dead: get(COUNT_DEAD)?,
            })
        })
    }

    async fn jobs_next_due(&self, queue: &str) -> StoreResult<Option<i64>> {
        let prefix = name_prefix(queue);
        let end = name_prefix_end(&prefix);
        self.read_point(|txn| {
            let pending = txn.open_table(JOBS_PENDING).map_err(db_err)?;
            match keys_in(&pending, &prefix, &end, 1)?.pop() {
                Some(k) => Ok(Some(unord_i64(split_sorted_key(&k, prefix.len())?.0))),
                None => Ok(None),
            }
        })
    }

    async fn index_put(&self, index: &str, member: &str, score: f64) -> StoreResult<()> {
        let score = check_score("score", score)?;
        let (index, member) = (index.to_owned(), member.to_owned());
        self.write(move |txn| IndexTables::open(txn)?.put(&index, &member, score))
            .await
    }

    async fn index_put_many(&self, entries: &[(String, String, f64)]) -> StoreResult<()> {
        let mut checked = Vec::with_capacity(entries.len());
        for (index, member, score) in entries {
            checked.push((index.clone(), member.clone(), check_score("score", *score)?));
        }
        if checked.is_empty() {
            return Ok(());
        }
        self.write(move |txn| {
            let mut t = IndexTables::open(txn)?;
            for (index, member, score) in &checked {
                t.put(index, member, *score)?;
            }
            Ok(())
        })
        .await
    }

    async fn index_remove(&self, index: &str, member: &str) -> StoreResult<bool> {
        let (index, member) = (index.to_owned(), member.to_owned());
        self.write(move |txn| IndexTables::open(txn)?.remove(&index, &member))
            .await
    }

    async fn index_range(
        &self,
        index: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>> {
        let (min, max) = (check_score("min", min)?, check_score("max", max)?);
        if limit == 0 || min > max {
            return Ok(Vec::new());
        }
        let keys = IndexKeys::of(index);
        self.read(move |txn| {
            let table = txn.open_table(INDEXES).map_err(db_err)?;
            let (lo, hi) = keys.scores_between(min, max);
            keys_in(&table, &lo, &hi, limit)?
                .into_iter()
                .map(|k| {
                    let (score, member) = keys.split_score(&k)?;
                    Ok((member, score))
                })
                .collect()
        })
        .await
    }

    async fn index_range_rev(
        &self,
        index: &str,
        min: f64,
        max: f64,
        limit: usize,
    ) -> StoreResult<Vec<(String, f64)>> {
        let (min, max) = (check_score("min", min)?, check_score("max", max)?);
        if limit == 0 || min > max {
            return Ok(Vec::new());
        }
        let keys = IndexKeys::of(index);
        self.read(move |txn| {
            let table = txn.open_table(INDEXES).map_err(db_err)?;
            let (lo, hi) = keys.scores_between(min, max);
            let mut out = Vec::new();
            for entry in table
                .range::<&[u8]>(&lo[..]..&hi[..])
                .map_err(db_err)?
                .rev()
            {
                let (k, _) = entry.map_err(db_err)?;
                let (score, member) = keys.split_score(k.value())?;
                out.push((member, score));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn index_rank(&self, index: &str, member: &str) -> StoreResult<Option<u64>> {
        let keys = IndexKeys::of(index);
        let member = member.to_owned();
        self.read(move |txn| {
            let table = txn.open_table(INDEXES).map_err(db_err)?;
            let Some(score) = index_score_in(&table, &keys, &member)? else {
                return Ok(None);
            };
            let (first, _) = keys.all_scores();
            let own = keys.score(score, &member);
            let mut rank = 0;
            for entry in table.range::<&[u8]>(&first[..]..&own[..]).map_err(db_err)? {
                entry.map_err(db_err)?;
                rank += 1;
            }
            Ok(Some(rank))
        })
        .await
    }

    async fn index_score(&self, index: &str, member: &str) -> StoreResult<Option<f64>> {
        let keys = IndexKeys::of(index);
        self.read_point(|txn| {
            let table = txn.open_table(INDEXES).map_err(db_err)?;
            index_score_in(&table, &keys, member)
        })
    }

    async fn index_len(&self, index: &str) -> StoreResult<u64> {
        let keys = IndexKeys::of(index);
        self.read_point(|txn| {
            let table = txn.open_table(INDEXES).map_err(db_err)?;
            index_len_in(&table, &keys)
        })
    }

    async fn index_pop_min_into(
        &self,
        indexes: &[String],
        holder: &str,
        capacity: u64,
        holder_score: f64,
    ) -> StoreResult<Option<(String, String)>> {
        let holder_score = check_score("holder_score", holder_score)?;
        if indexes.is_empty() || capacity == 0 {
            return Ok(None);
        }
        colocated(
            "index_pop_min_into",
            indexes.iter().map(String::as_str).chain([holder]),
        )?;
        let indexes = indexes.to_vec();
        let holder = holder.to_owned();
        self.write(move |txn| {
            let mut t = IndexTables::open(txn)?;
            if t.len(&holder)? >= capacity {
                return Ok(None);
            }
            let mut best: Option<(usize, f64, String)> = None;
            for (i, index) in indexes.iter().enumerate() {
                if let Some((score, member)) = t.min(index)?
                    && best.as_ref().is_none_or(|(_, s, _)| score < *s)
                {
                    best = Some((i, score, member));
                }
            }
            let Some((i, _, member)) = best else {
                return Ok(None);
            };
            let index = indexes[i].clone();
            t.remove(&index, &member)?;
            t.put(&holder, &member, holder_score)?;
            Ok(Some((index, member)))
        })
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
        let score = check_score("score", score)?;
        colocated("index_move", [from, to])?;
        let (from, member, to) = (from.to_owned(), member.to_owned(), to.to_owned());
        self.write(move |txn| {
            let mut t = IndexTables::open(txn)?;
            if !t.contains(&from, &member)? {
                return Ok(MoveOutcome::NotInSource);
            }
            if t.len(&to)? >= capacity {
                return Ok(MoveOutcome::Full);
            }
            t.remove(&from, &member)?;
            t.put(&to, &member, score)?;
            Ok(MoveOutcome::Moved)
        })
        .await
    }

    async fn list_push(&self, key: &str, item: &[u8]) -> StoreResult<u64> {
        let key = key.to_owned();
        let item = item.to_vec();
        self.write(move |txn| {
            let mut len = txn.open_table(LIST_LEN).map_err(db_err)?;
            let n = len
                .get(key.as_str())
                .map_err(db_err)?
                .map_or(0, |g| g.value());
            let ikey = concat(&[&name_prefix(&key), &n.to_be_bytes()]);
            txn.open_table(LISTS)
                .map_err(db_err)?
                .insert(&ikey[..], &item[..])
                .map_err(db_err)?;
            len.insert(key.as_str(), n + 1).map_err(db_err)?;
            Ok(n + 1)
        })
        .await
    }

    async fn list_range(&self, key: &str, start: u64, limit: u64) -> StoreResult<Vec<Vec<u8>>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = name_prefix(key);
        let lo = concat(&[&prefix, &start.to_be_bytes()]);
        let hi = name_prefix_end(&prefix);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        self.read(move |txn| {
            let lists = txn.open_table(LISTS).map_err(db_err)?;
            let mut out = Vec::new();
            for entry in lists.range::<&[u8]>(&lo[..]..&hi[..]).map_err(db_err)? {
                let (_, v) = entry.map_err(db_err)?;
                out.push(v.value().to_vec());
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn list_len(&self, key: &str) -> StoreResult<u64> {
        self.read_point(|txn| {
            let len = txn.open_table(LIST_LEN).map_err(db_err)?;
            Ok(len.get(key).map_err(db_err)?.map_or(0, |g| g.value()))
        })
    }

    async fn list_set(&self, key: &str, index: u64, item: &[u8]) -> StoreResult<bool> {
        let ikey = concat(&[&name_prefix(key), &index.to_be_bytes()]);
        let item = item.to_vec();
        self.write(move |txn| {
            let mut lists = txn.open_table(LISTS).map_err(db_err)?;
            if lists.get(&ikey[..]).map_err(db_err)?.is_none() {
                return Ok(false);
            }
            lists.insert(&ikey[..], &item[..]).map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn list_delete(&self, key: &str) -> StoreResult<bool> {
        let key = key.to_owned();
        self.write(move |txn| {
            let existed = txn
                .open_table(LIST_LEN)
                .map_err(db_err)?
                .remove(key.as_str())
                .map_err(db_err)?
                .is_some();
            let prefix = name_prefix(&key);
            let end = name_prefix_end(&prefix);
            let mut lists = txn.open_table(LISTS).map_err(db_err)?;
            for k in keys_in(&lists, &prefix, &end, usize::MAX)? {
                lists.remove(&k[..]).map_err(db_err)?;
            }
            Ok(existed)
        })
        .await
    }

    async fn lock(&self, key: &str, owner: &str, ttl: Duration, now_ms: i64) -> StoreResult<bool> {
        let until = now_ms.saturating_add(ms(ttl));
        Ok(self.ephemeral.lock(key, owner, now_ms, until))
    }

    async fn unlock(&self, key: &str, owner: &str) -> StoreResult<bool> {
        Ok(self.ephemeral.unlock(key, owner))
    }

    async fn rate_take(
        &self,
        key: &str,
        per_second: f64,
        burst: u32,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let (interval, tolerance) = gcra_params(per_second, burst)?;
        Ok(self.ephemeral.rate_take(key, interval, tolerance, now_ms))
    }

    async fn rate_reset(&self, key: &str) -> StoreResult<()> {
        self.ephemeral.rate_reset(key);
        Ok(())
    }

    async fn purge_expired(&self, now_ms: i64, max: usize) -> StoreResult<usize> {
        // Locks and limiter states are in memory: dropping the expired ones
        // also drops the customer ids in their keys.
        let mut purged = self.ephemeral.purge(now_ms);
        purged += self
            .write(move |txn| purge_seen_up_to(&mut open_seen(txn)?, now_ms, max))
            .await?;
        Ok(purged)
    }

    async fn scan(
        &self,
        cursor: &str,
        limit: usize,
    ) -> StoreResult<(Vec<RawEntry>, Option<String>)> {
        let cursor = cursor.to_owned();
        let limit = limit.max(1);
        self.read(move |txn| scan_tables(txn, &cursor, limit)).await
    }

    async fn counter_add(&self, key: &str, delta: i64) -> StoreResult<i64> {
        let key = key.to_owned();
        self.write(move |txn| add_counter(txn, &key, delta)).await
    }

    async fn counter_get(&self, key: &str) -> StoreResult<i64> {
        self.read_point(|txn| {
            let counters = txn.open_table(COUNTERS).map_err(db_err)?;
            Ok(counters.get(key).map_err(db_err)?.map_or(0, |g| g.value()))
        })
    }

    async fn publish(&self, topic: &str, payload: &[u8]) -> StoreResult<()> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        // No subscriber left: forget the topic.
        if let Some(tx) = topics.get(topic)
            && tx.send(payload.to_vec()).is_err()
        {
            topics.remove(topic);
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> StoreResult<mpsc::Receiver<Vec<u8>>> {
        let mut sub = {
            let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
            topics
                .entry(topic.to_owned())
                .or_insert_with(|| broadcast::channel(TOPIC_BUFFER).0)
                .subscribe()
        };
        let (tx, rx) = mpsc::channel(TOPIC_BUFFER);
        let topic = topic.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tx.closed() => break,
                    msg = sub.recv() => match msg {
                        Ok(msg) => {
                            if tx.send(msg).await.is_err() {
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(topic, skipped = n, "slow subscriber lost messages");
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Condvar;

    use crate::store::durability;

    use super::*;

    /// Lets a test hold the writer thread inside one write until it has queued
    /// the writes it wants batched together.
    #[derive(Default)]
    struct Gate {
        /// (the writer is waiting at the gate, the gate is open)
        state: Mutex<(bool, bool)>,
        changed: Condvar,
    }

    impl Gate {
        fn wait_in_writer(&self) {
            let mut s = self.state.lock().unwrap();
            s.0 = true;
            self.changed.notify_all();
            while !s.1 {
                s = self.changed.wait(s).unwrap();
            }
        }

        fn wait_until_writer_waits(&self) {
            let mut s = self.state.lock().unwrap();
            while !s.0 {
                s = self.changed.wait(s).unwrap();
            }
        }

        fn open(&self) {
            self.state.lock().unwrap().1 = true;
            self.changed.notify_all();
        }
    }

    /// A writer that fsyncs only for a durable write, once the queue has
    /// been idle for a millisecond: how many commits and fsyncs a test sees
    /// depends on what it queued, not on timing.
    fn on_demand() -> SyncPolicy {
        let never = Duration::from_secs(3_600);
        SyncPolicy {
            durable_within: never,
            durable_idle: Duration::from_millis(1),
            deferred_within: never,
            deferred_idle: never,
        }
    }

    /// Queues a deferred write that blocks the writer thread until the
    /// returned gate opens (deferred, so that it needs no fsync).
    async fn hold_writer(
        backend: &EmbeddedBackend,
    ) -> (Arc<Gate>, impl Future<Output = StoreResult<()>>) {
        let gate = Arc::new(Gate::default());
        let held = backend.writer.submit(
            {
                let gate = Arc::clone(&gate);
                move |_| {
                    gate.wait_in_writer();
                    Ok(())
                }
            },
            false,
        );
        let waiting = Arc::clone(&gate);
        tokio::task::spawn_blocking(move || waiting.wait_until_writer_waits())
            .await
            .unwrap();
        (gate, held)
    }

    /// A write that adds `delta` to counter `key` and returns the new value;
    /// with `fail` it then errs (`Some(false)`) or panics (`Some(true)`).
    fn add(
        key: &'static str,
        delta: i64,
        fail: Option<bool>,
    ) -> impl FnOnce(&WriteTransaction) -> StoreResult<i64> + Clone + Send + 'static {
        move |txn| {
            let mut counters = txn.open_table(COUNTERS).map_err(db_err)?;
            let new = counters.get(key).map_err(db_err)?.map_or(0, |g| g.value()) + delta;
            counters.insert(key, new).map_err(db_err)?;
            match fail {
                None => Ok(new),
                Some(false) => Err(corrupt(key, "failing on purpose after writing")),
                Some(true) => panic!("panicking on purpose after writing"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writes_share_commits_and_one_fsync_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let backend = EmbeddedBackend::open_with(dir.path(), on_demand()).unwrap();
        let before = backend.write_stats();
        let (gate, held) = hold_writer(&backend).await;
        // More than one batch can carry: the rest goes into a second commit.
        let n = group_commit::MAX_BATCH + 10;
        let keys: Vec<&'static str> = (0..n).map(|i| &*format!("k{i}").leak()).collect();
        let writes: Vec<_> = keys
            .iter()
            .map(|k| backend.write(add(k, 1, None)))
            .collect();
        gate.open();
        held.await.unwrap();
        for w in writes {
            assert_eq!(w.await.unwrap(), 1);
        }
        let after = backend.write_stats();
        assert_eq!(after.writes - before.writes, n as u64 + 1);
        assert_eq!(
            after.commits - before.commits,
            3,
            "held write, full batch, rest"
        );
        assert_eq!(after.syncs - before.syncs, 1, "one fsync answers them all");

        drop(backend);
        let backend = EmbeddedBackend::open(dir.path()).expect("released on drop");
        for k in keys {
            assert_eq!(backend.counter_get(k).await.unwrap(), 1, "{k}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_durable_write_is_visible_at_once_but_answered_after_its_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let never = Duration::from_secs(3_600);
        let patient = SyncPolicy {
            durable_within: never,
            durable_idle: never,
            deferred_within: never,
            deferred_idle: never,
        };
        let backend = EmbeddedBackend::open_with(dir.path(), patient).unwrap();
        let before = backend.write_stats();
        // `write` queues at once and borrows nothing, so it outlives the store.
        let mut write = Box::pin(backend.write(add("n", 1, None)));
        // Its commit is made at once; wait for that signal, not a fixed time.
        while backend.write_stats().commits == before.commits {
            assert!(futures_util::poll!(write.as_mut()).is_pending());
            tokio::task::yield_now().await;
        }
        assert_eq!(backend.counter_get("n").await.unwrap(), 1, "visible");
        assert!(
            futures_util::poll!(write.as_mut()).is_pending(),
            "not answered before an fsync"
        );
        assert_eq!(backend.write_stats().syncs, before.syncs);
        // Closing the store fsyncs what is left, and then answers.
        let answered = tokio::spawn(write);
        drop(backend);
        assert_eq!(answered.await.unwrap().unwrap(), 1);
        let backend = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(backend.counter_get("n").await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_a_stream_of_writes_a_durable_one_waits_at_most_durable_within() {
        let dir = tempfile::tempdir().unwrap();
        let never = Duration::from_secs(3_600);
        let policy = SyncPolicy {
            durable_within: Duration::from_millis(20),
            durable_idle: never,
            deferred_within: never,
            deferred_idle: never,
        };
        let backend = Arc::new(EmbeddedBackend::open_with(dir.path(), policy).unwrap());
        // Deferred writes keep the queue from ever falling idle.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stream = tokio::spawn({
            let (backend, stop) = (Arc::clone(&backend), Arc::clone(&stop));
            async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    durability::deferred(backend.counter_add("d", 1))
                        .await
                        .unwrap();
                }
            }
        });
        let before = backend.write_stats();
        let durable = tokio::time::timeout(Duration::from_secs(10), backend.counter_add("n", 1));
        assert_eq!(durable.await.expect("answered").unwrap(), 1);
        let after = backend.write_stats();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        stream.await.unwrap();
        assert!(after.syncs > before.syncs);
        assert!(
            after.commits - before.commits > 1,
            "other writes were committed while it waited for its fsync"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_leaves_no_trace_and_spares_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let backend = EmbeddedBackend::open(dir.path()).unwrap();
        let before = backend.write_stats();
        let (gate, held) = hold_writer(&backend).await;
        // Each good write reads what the ones before it wrote: reruns of the
        // batch must neither lose nor repeat them.
        let first = backend.write(add("x", 1, None));
        let erring = backend.write(add("x", 100, Some(false)));
        let second = backend.write(add("x", 1, None));
        let panicking = backend.write(add("x", 1_000, Some(true)));
        let third = backend.write(add("x", 1, None));
        gate.open();
        held.await.unwrap();
        assert_eq!(first.await.unwrap(), 1);
        assert!(matches!(erring.await, Err(StoreError::Corrupt { .. })));
        assert_eq!(second.await.unwrap(), 2);
        let panicked = panicking.await.unwrap_err().to_string();
        assert!(panicked.contains("panicking on purpose"), "{panicked}");
        assert_eq!(third.await.unwrap(), 3);
        let after = backend.write_stats();
        assert_eq!(
            after.writes - before.writes,
            4,
            "held write + three good ones"
        );
        assert_eq!(after.commits - before.commits, 2);
        // The writer goes on after a panic.
        assert!(backend.writer.is_alive());
        assert_eq!(backend.counter_add("x", 1).await.unwrap(), 4);

        drop(backend);
        let backend = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(backend.counter_get("x").await.unwrap(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deferred_writes_are_answered_at_once_and_durable_after_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let backend = EmbeddedBackend::open_with(dir.path(), on_demand()).unwrap();
        let (gate, held) = hold_writer(&backend).await;
        let before = backend.write_stats();
        let deferred: Vec<_> = (0..3)
            .map(|_| durability::deferred(backend.counter_add("d", 1)))
            .collect();
        // Queued behind the held write, so all three share one commit.
        // `join!` polls them first (each queues its write), then opens the gate.
        let open = async {
            gate.open();
            held.await.unwrap();
        };
        let (answers, ()) = tokio::join!(futures_util::future::join_all(deferred), open);
        let mut answers: Vec<i64> = answers.into_iter().map(Result::unwrap).collect();
        answers.sort_unstable();
        assert_eq!(answers, vec![1, 2, 3]);
        let after = backend.write_stats();
        assert_eq!(after.commits - before.commits, 2, "held write, the three");
        assert_eq!(after.syncs, before.syncs, "answered without an fsync");
        // Readers see deferred writes before they are durable.
        assert_eq!(backend.counter_get("d").await.unwrap(), 3);
        backend.sync().await.unwrap();
        assert_eq!(backend.write_stats().syncs - after.syncs, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_fsync_answers_a_durable_write_with_the_deferred_ones_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let backend = EmbeddedBackend::open_with(dir.path(), on_demand()).unwrap();
        let (gate, held) = hold_writer(&backend).await;
        let before = backend.write_stats();
        let deferred = durability::deferred(backend.counter_add("d", 1));
        let durable = backend.counter_add("n", 1);
        let open = async {
            gate.open();
            held.await.unwrap();
        };
        let (deferred, durable, ()) = tokio::join!(deferred, durable, open);
        assert_eq!(deferred.unwrap(), 1);
        assert_eq!(durable.unwrap(), 1);
        let after = backend.write_stats();
        assert_eq!(after.writes - before.writes, 3);
        assert_eq!(after.commits - before.commits, 2, "held write, the two");
        assert_eq!(after.syncs - before.syncs, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deferred_writes_are_made_durable_when_the_writer_falls_idle() {
        let dir = tempfile::tempdir().unwrap();
        let backend = EmbeddedBackend::open(dir.path()).unwrap();
        let before = backend.write_stats();
        durability::deferred(backend.counter_add("d", 1))
            .await
            .unwrap();
        let deferred_commit = backend.write_stats();
        assert_eq!(deferred_commit.commits - before.commits, 1);
        // The writer syncs on its own once nothing else comes; wait for that
        // signal (its fsync count), not for a fixed time.
        let synced = async {
            while backend.write_stats().syncs == deferred_commit.syncs {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), synced)
            .await
            .expect("an idle writer makes deferred writes durable");
        drop(backend);
        let backend = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(backend.counter_get("d").await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_are_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(EmbeddedBackend::open(dir.path()).unwrap());
        let callers: i64 = 64;
        let tasks: Vec<_> = (0..callers)
            .map(|i| {
                let b = Arc::clone(&backend);
                tokio::spawn(async move {
                    let n = b.counter_add("n", 1).await.unwrap();
                    let len = b.list_push("l", format!("{i}").as_bytes()).await.unwrap();
                    let v = b.doc_put(&format!("d{i}"), 0, b"doc").await.unwrap();
                    (n, len, v)
                })
            })
            .collect();
        let mut counts = HashSet::new();
        let mut lens = HashSet::new();
        for t in tasks {
            let (n, len, v) = t.await.unwrap();
            assert_eq!(v, Some(1));
            counts.insert(n);
            lens.insert(len);
        }
        // Every caller saw its own increment and append: none lost, none doubled.
        assert_eq!(counts, (1..=callers).collect::<HashSet<i64>>());
        assert_eq!(lens, (1..=callers as u64).collect::<HashSet<u64>>());
        assert!(backend.write_stats().writes >= 3 * callers as u64);

        drop(Arc::into_inner(backend).expect("all tasks done"));
        let backend = EmbeddedBackend::open(dir.path()).expect("released on drop");
        assert_eq!(backend.counter_get("n").await.unwrap(), callers);
        assert_eq!(backend.list_len("l").await.unwrap(), callers as u64);
        let keys: Vec<String> = (0..callers).map(|i| format!("d{i}")).collect();
        let docs = backend.doc_get_many(&keys).await.unwrap();
        assert!(
            docs.iter()
                .all(|d| d.as_ref().is_some_and(|d| d.data == b"doc"))
        );
    }

    /// A store written with the three-table index layout opens with its
    /// indexes intact in the one table, and the old tables gone.
    #[tokio::test]
    async fn indexes_of_the_old_layout_are_moved_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(DB_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut members = txn.open_table(OLD_INDEX_MEMBERS).unwrap();
                let mut scores = txn.open_table(OLD_INDEX_SCORES).unwrap();
                let mut sizes = txn.open_table(OLD_INDEX_LEN).unwrap();
                for (index, member, score) in [
                    ("queue", "case-b", 2.0),
                    ("queue", "case-a", -1.5),
                    ("odd\0name", "x", 7.0),
                ] {
                    let prefix = name_prefix(index);
                    members
                        .insert(&concat(&[&prefix, member.as_bytes()])[..], score)
                        .unwrap();
                    scores
                        .insert(
                            &concat(&[&prefix, &ord_f64(score), member.as_bytes()])[..],
                            (),
                        )
                        .unwrap();
                }
                sizes.insert("queue", 2).unwrap();
                sizes.insert("odd\0name", 1).unwrap();
            }
            txn.commit().unwrap();
        }
        let backend = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(
            backend
                .index_range("queue", f64::MIN, f64::MAX, 10)
                .await
                .unwrap(),
            [("case-a".to_string(), -1.5), ("case-b".to_string(), 2.0)]
        );
        assert_eq!(backend.index_len("queue").await.unwrap(), 2);
        assert_eq!(backend.index_len("odd\0name").await.unwrap(), 1);
        assert_eq!(
            backend.index_score("odd\0name", "x").await.unwrap(),
            Some(7.0)
        );
        assert_eq!(
            backend.index_rank("queue", "case-b").await.unwrap(),
            Some(1)
        );
        // And it goes on working: a move, a removal.
        backend.index_put("queue", "case-a", 3.0).await.unwrap();
        assert_eq!(
            backend
                .index_range_rev("queue", f64::MIN, f64::MAX, 1)
                .await
                .unwrap(),
            [("case-a".to_string(), 3.0)]
        );
        assert!(backend.index_remove("queue", "case-b").await.unwrap());
        assert_eq!(backend.index_len("queue").await.unwrap(), 1);
        let txn = backend.db.begin_read().unwrap();
        let tables: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        assert!(
            !tables.iter().any(|t| t.starts_with("index_")),
            "{tables:?}"
        );
    }

    #[test]
    fn orderable_encodings_sort_numerically() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in ints.windows(2) {
            assert!(ord_i64(w[0]) < ord_i64(w[1]));
            assert_eq!(unord_i64(ord_i64(w[0])), w[0]);
        }
        let floats = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -0.0001,
            0.0,
            1e-9,
            3.0,
            f64::INFINITY,
        ];
        for w in floats.windows(2) {
            assert!(ord_f64(w[0]) < ord_f64(w[1]), "{} < {}", w[0], w[1]);
            assert_eq!(unord_f64(ord_f64(w[0])), w[0]);
        }
    }

    #[test]
    fn name_prefixes_do_not_overlap() {
        let a = name_prefix("a");
        let ab = name_prefix("a\0b");
        let a0 = name_prefix("a\0");
        assert!(!ab.starts_with(&a) && !a0.starts_with(&a));
        let end = name_prefix_end(&a);
        let key = concat(&[&a, &[0xFF; 12]]);
        assert!(key.as_slice() < end.as_slice() && key.as_slice() >= a.as_slice());
        assert!(!(ab.as_slice() >= a.as_slice() && ab.as_slice() < end.as_slice()));
    }
}
