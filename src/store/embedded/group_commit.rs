//! Group commit: one thread owns every redb write transaction of the embedded
//! store and lets concurrent writes share one fsync.
//!
//! Callers hand their write (a closure over the transaction) to the writer
//! thread through a FIFO channel and wait for the answer. The thread takes
//! everything that is queued (at most [`MAX_BATCH`] writes), runs the closures
//! one after another in one write transaction and commits it. A commit makes
//! the writes visible to readers; an fsync (a redb commit with
//! `Durability::Immediate`) makes every commit before it durable. Commits
//! themselves are made without an fsync (`Durability::None`), and the fsyncs
//! are shared:
//!
//! - a **durable** write (the default) is answered only once an fsync covers
//!   it. The writer makes that fsync when the oldest such write has waited
//!   [`SyncPolicy::durable_within`] while other writes kept coming, or as soon
//!   as the queue has been idle for [`SyncPolicy::durable_idle`]; so under
//!   load one fsync answers every durable write of the last few milliseconds,
//!   and a lone write waits for little more than its own fsync;
//! - a **deferred** write (made inside [`crate::store::durability::deferred`])
//!   is answered right after its commit: visible at once, durable with the
//!   next fsync, which comes at the latest [`SyncPolicy::deferred_within`]
//!   after it, or once the queue has been idle for
//!   [`SyncPolicy::deferred_idle`].
//!
//! Why the fsyncs are not made per batch: an fsync writes every page changed
//! since the last one and waits for the disk, which takes the writer one to
//! two milliseconds; a commit without one takes a tenth of that. With an fsync
//! for every batch that held a durable write (every batch, under a steady
//! stream of webhooks), deferred writes spent most of their time queued behind
//! fsyncs they did not need (`BENCHMARKS.md`, issue 14 phase F).
//!
//! redb keeps commits in order and a crash goes back to the last fsync, so
//! what survives is always a prefix of the history: a durable write, once
//! answered, and everything committed before it. A durable write is visible to
//! readers (other tasks of this process) before it is durable, exactly like a
//! deferred one; why that is enough is in the `durability` module.
//!
//! A closure that fails (or panics) must not take the others with it, and must
//! not leave half of its changes behind. redb cannot roll back part of a
//! transaction (savepoints are refused once a transaction has written), so the
//! transaction is aborted, the failing caller gets its error, and the rest of
//! the batch runs again from the start in a fresh transaction. That is why a
//! write closure must be `Clone` and free of effects outside the transaction:
//! it may run more than once, and only the run that is committed counts. Each
//! failure costs one more pass over the writes before it; with at most
//! [`MAX_BATCH`] writes per batch that stays bounded.
//!
//! Fairness: writes are taken and run in arrival order; a batch never lets a
//! later write overtake an earlier one.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

use crate::store::backend::{StoreError, StoreResult};
use crate::store::durability::MAX_UNSYNCED;

/// Most writes one commit carries: bounds the transaction's memory and how long
/// the first caller of a batch waits for the last one's closure.
pub(crate) const MAX_BATCH: usize = 256;

/// When the writer makes its commits durable (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncPolicy {
    /// Longest a durable write waits for its fsync while writes keep coming.
    pub(crate) durable_within: Duration,
    /// How long the queue must be idle before waiting durable writes are
    /// made durable at once.
    pub(crate) durable_idle: Duration,
    /// Longest a deferred write stays unsynced while writes keep coming.
    pub(crate) deferred_within: Duration,
    /// How long the queue must be idle before deferred writes are made
    /// durable.
    pub(crate) deferred_idle: Duration,
}

impl Default for SyncPolicy {
    /// 5 ms: under a steady stream of webhooks (each a durable write) one
    /// fsync serves a few of them instead of one each, for at most 5 ms more
    /// on their answer; measured at 500 messages a second, the bot's answers
    /// went from p99 66–155 ms to 22–26 ms (fsyncs: 1.2 → 0.3 per message).
    /// The idle times only spare an fsync when more writes follow at once.
    fn default() -> Self {
        SyncPolicy {
            durable_within: Duration::from_millis(5),
            durable_idle: Duration::from_micros(200),
            deferred_within: MAX_UNSYNCED,
            deferred_idle: Duration::from_millis(2),
        }
    }
}

/// Counts of the writer since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Writes committed (answered with success).
    pub writes: u64,
    /// Commits that carried them (each made them visible, without an fsync).
    pub commits: u64,
    /// fsyncs: durable commits, each making every commit before it durable.
    pub syncs: u64,
}

/// A queued write with its caller's answer channel, type-erased so that writes
/// of different result types share one queue.
trait PendingWrite: Send {
    /// True when the caller must not be answered before an fsync.
    fn durable(&self) -> bool;
    /// Runs the write in `txn`. On error the transaction must be aborted: the
    /// write may have changed part of what it meant to.
    fn run(&mut self, txn: &WriteTransaction) -> StoreResult<()>;
    /// Answers the caller with the result of the last run (after the commit).
    fn succeed(self: Box<Self>);
    /// Answers the caller with an error.
    fn fail(self: Box<Self>, error: StoreError);
}

struct Request<T, F> {
    write: F,
    durable: bool,
    /// The result of the latest successful run; committed results only are sent.
    output: Option<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> PendingWrite for Request<T, F>
where
    T: Send,
    F: FnOnce(&WriteTransaction) -> StoreResult<T> + Clone + Send,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn run(&mut self, txn: &WriteTransaction) -> StoreResult<()> {
        // A copy runs, so the original is still there if the batch runs again.
        let write = self.write.clone();
        match catch_unwind(AssertUnwindSafe(|| write(txn))) {
            Ok(Ok(out)) => {
                self.output = Some(out);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                let what = panic_message(panic.as_ref());
                tracing::error!(panic = %what, "an embedded store write panicked; it was rolled back");
                Err(StoreError::Unavailable(format!(
                    "embedded store write failed: {what}"
                )))
            }
        }
    }

    fn succeed(self: Box<Self>) {
        let answer = self.output.ok_or_else(|| {
            StoreError::Unavailable("embedded store write committed without a result".into())
        });
        // The caller may have gone away (its future dropped); the write stands.
        let _ = self.reply.send(answer);
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
    syncs: AtomicU64,
}

/// The writer thread and the queue to it. Dropping it lets the thread commit
/// what is queued, then waits for it to end (so the database file is released).
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn PendingWrite>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread over `db`, making its commits durable as
    /// `policy` says.
    pub(crate) fn start(db: Arc<Database>, policy: SyncPolicy) -> StoreResult<Writer> {
        let (queue, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread = std::thread::Builder::new()
            .name("balas-store-writer".into())
            .spawn({
                let counters = Arc::clone(&counters);
                move || run(&db, &rx, &counters, policy)
            })
            .map_err(|e| {
                StoreError::Unavailable(format!("starting the embedded store writer: {e}"))
            })?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
            counters,
        })
    }

    /// Queues `write`; the future answers once it is committed (or failed,
    /// having changed nothing): durably (fsync) when `durable`, else visibly
    /// and durable with a later commit. The write is queued when this is
    /// called, not when the future is first polled, so calls are committed in
    /// the order they were made.
    pub(crate) fn submit<T, F>(
        &self,
        write: F,
        durable: bool,
    ) -> impl Future<Output = StoreResult<T>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Clone + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let request: Box<dyn PendingWrite> = Box::new(Request {
            write,
            durable,
            output: None,
            reply,
        });
        let queued = self.queue.as_ref().is_some_and(|q| q.send(request).is_ok());
        async move {
            if !queued {
                return Err(StoreError::Unavailable(
                    "the embedded store writer has stopped".into(),
                ));
            }
            answer.await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the embedded store writer stopped before committing".into(),
                ))
            })
        }
    }

    /// False once the writer thread has ended (it only ends on a bug in redb
    /// or here); every write fails from then on.
    pub(crate) fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Writes and commits so far.
    pub(crate) fn stats(&self) -> WriteStats {
        WriteStats {
            writes: self.counters.writes.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
            syncs: self.counters.syncs.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread after it has committed the rest.
        self.queue.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the embedded store writer thread panicked");
        }
    }
}

/// The writer thread: batches of queued writes, one commit each, until the
/// queue is closed and empty; fsyncs as `policy` says, and one before the
/// thread ends.
fn run(
    db: &Database,
    queue: &mpsc::Receiver<Box<dyn PendingWrite>>,
    counters: &Counters,
    policy: SyncPolicy,
) {
    let mut batch: Vec<Box<dyn PendingWrite>> = Vec::with_capacity(MAX_BATCH);
    let mut unsynced = Unsynced::default();
    loop {
        let first = match unsynced.idle_timeout(&policy) {
            None => match queue.recv() {
                Ok(w) => w,
                Err(_) => return,
            },
            Some(timeout) => match queue.recv_timeout(timeout) {
                Ok(w) => w,
                Err(idle_or_closed) => {
                    unsynced.sync(db, counters);
                    match idle_or_closed {
                        RecvTimeoutError::Timeout => continue,
                        RecvTimeoutError::Disconnected => return,
                    }
                }
            },
        };
        batch.push(first);
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        commit_batch(db, &mut batch, counters, &mut unsynced);
        if unsynced.sync_due(&policy) {
            unsynced.sync(db, counters);
        }
    }
}

/// What the commits since the last fsync hold back.
#[derive(Default)]
struct Unsynced {
    /// When the oldest commit not yet durable was made.
    since: Option<Instant>,
    /// Committed durable writes, answered at the next fsync.
    durable: Vec<Box<dyn PendingWrite>>,
    /// When the oldest of them was committed.
    durable_since: Option<Instant>,
}

impl Unsynced {
    /// How long to wait for the next write before syncing (the queue is idle
    /// then); `None` with nothing to sync.
    fn idle_timeout(&self, policy: &SyncPolicy) -> Option<Duration> {
        match (self.durable_since, self.since) {
            (Some(oldest), _) => Some(
                policy
                    .durable_idle
                    .min(policy.durable_within.saturating_sub(oldest.elapsed())),
            ),
            (None, Some(oldest)) => Some(
                policy
                    .deferred_idle
                    .min(policy.deferred_within.saturating_sub(oldest.elapsed())),
            ),
            (None, None) => None,
        }
    }

    /// Whether the oldest unsynced write has waited as long as it may.
    fn sync_due(&self, policy: &SyncPolicy) -> bool {
        self.durable_since
            .is_some_and(|t| t.elapsed() >= policy.durable_within)
            || self
                .since
                .is_some_and(|t| t.elapsed() >= policy.deferred_within)
    }

    /// Records a commit, holding its durable writes until the next fsync.
    fn committed(&mut self, durable: impl Iterator<Item = Box<dyn PendingWrite>>) {
        let now = Instant::now();
        self.since.get_or_insert(now);
        let before = self.durable.len();
        self.durable.extend(durable);
        if self.durable.len() > before {
            self.durable_since.get_or_insert(now);
        }
    }

    /// Makes every commit so far durable with an empty durable commit and
    /// answers the durable writes. If redb refuses, they are answered with
    /// the error (their changes stay visible, and become durable with the
    /// next fsync that succeeds); deferred writes wait for that next fsync.
    fn sync(&mut self, db: &Database, counters: &Counters) {
        let started = Instant::now();
        let done: Result<(), redb::Error> = db
            .begin_write()
            .map_err(redb::Error::from)
            .and_then(|txn| txn.commit().map_err(redb::Error::from));
        self.durable_since = None;
        match done {
            Ok(()) => {
                counters.syncs.fetch_add(1, Ordering::Relaxed);
                metrics::histogram!("balas_store_sync_seconds")
                    .record(started.elapsed().as_secs_f64());
                self.since = None;
                self.durable.drain(..).for_each(|w| w.succeed());
            }
            Err(e) => {
                tracing::error!(error = %e, "the embedded store could not make its latest writes durable");
                fail_all(
                    &mut self.durable,
                    &format!("embedded store: making the write durable failed: {e}"),
                );
            }
        }
    }
}

/// Commits `batch` (emptying it) without an fsync: answers its deferred
/// writes, hands its durable ones to `unsynced`, and answers failed writes
/// with their error.
fn commit_batch(
    db: &Database,
    batch: &mut Vec<Box<dyn PendingWrite>>,
    counters: &Counters,
    unsynced: &mut Unsynced,
) {
    let started = Instant::now();
    while !batch.is_empty() {
        let mut txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                fail_all(batch, &format!("embedded store: {e}"));
                return;
            }
        };
        if let Err(e) = txn.set_durability(Durability::None) {
            // Only refused in modes this store does not use; then this
            // commit is an fsync of its own, which is merely slower.
            tracing::warn!(error = %e, "embedded store: committing with an fsync");
        }
        let failed = batch
            .iter_mut()
            .enumerate()
            .find_map(|(i, w)| w.run(&txn).err().map(|e| (i, e)));
        let Some((i, error)) = failed else {
            let n = batch.len();
            if let Err(e) = txn.commit() {
                fail_all(batch, &format!("embedded store: {e}"));
                return;
            }
            counters.writes.fetch_add(n as u64, Ordering::Relaxed);
            counters.commits.fetch_add(1, Ordering::Relaxed);
            metrics::histogram!("balas_store_commit_writes").record(n as f64);
            metrics::histogram!("balas_store_commit_seconds")
                .record(started.elapsed().as_secs_f64());
            let (durable, deferred): (Vec<_>, Vec<_>) = batch.drain(..).partition(|w| w.durable());
            deferred.into_iter().for_each(|w| w.succeed());
            unsynced.committed(durable.into_iter());
            return;
        };
        // Nothing of this attempt may stay: not the failing write's partial
        // changes, nor the others' (they run again without it).
        if let Err(e) = txn.abort() {
            batch.remove(i).fail(error);
            fail_all(batch, &format!("embedded store: {e}"));
            return;
        }
        batch.remove(i).fail(error);
    }
}

fn fail_all(batch: &mut Vec<Box<dyn PendingWrite>>, reason: &str) {
    for w in batch.drain(..) {
        w.fail(StoreError::Unavailable(reason.to_string()));
    }
}
