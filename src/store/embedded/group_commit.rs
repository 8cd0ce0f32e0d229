//! Group commit: one thread owns every redb write transaction of the embedded
//! store and lets concurrent writes share one durable commit (one fsync).
//!
//! Callers hand their write (a closure over the transaction) to the writer
//! thread through a FIFO channel and wait for the answer. The thread takes
//! everything that is queued (at most [`MAX_BATCH`] writes), runs the closures
//! one after another in one write transaction, commits it with redb's default
//! `Durability::Immediate` (data and header fsync'd), and only then answers
//! each caller. So an answered write is on disk, and a crash before the commit
//! loses only writes nobody was told about. There is no timer: while one batch
//! is being fsync'd the next one queues up, so batches grow with the load and
//! a lone write waits for nothing but its own commit.
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
//!
//! Deferred writes (made inside [`crate::store::durability::deferred`]) are
//! answered after a commit *without* an fsync (`Durability::None`): visible to
//! readers at once, durable with the next durable commit. A batch is committed
//! durably when any write in it is not deferred, when the oldest unsynced
//! commit is [`MAX_UNSYNCED`] old, or when the queue falls idle for
//! [`IDLE_SYNC`] with something unsynced (an empty durable commit). redb keeps
//! commits in order and a crash goes back to the last durable one, so what
//! survives is always a prefix of the answered writes; why that is enough is
//! in the `durability` module.

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

/// How long the writer waits, idle with unsynced commits, before it makes them
/// durable on its own. Short: it only spares the fsync when more writes follow
/// at once.
const IDLE_SYNC: Duration = Duration::from_millis(2);

/// Counts of the writer since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Writes committed (answered with success).
    pub writes: u64,
    /// Durable commits (fsyncs) that carried them.
    pub commits: u64,
    /// Commits without an fsync (deferred writes only), made durable by a
    /// later durable commit.
    pub deferred_commits: u64,
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
    deferred_commits: AtomicU64,
}

/// The writer thread and the queue to it. Dropping it lets the thread commit
/// what is queued, then waits for it to end (so the database file is released).
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn PendingWrite>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread over `db`.
    pub(crate) fn start(db: Arc<Database>) -> StoreResult<Writer> {
        let (queue, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread = std::thread::Builder::new()
            .name("balas-store-writer".into())
            .spawn({
                let counters = Arc::clone(&counters);
                move || run(&db, &rx, &counters)
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
            deferred_commits: self.counters.deferred_commits.load(Ordering::Relaxed),
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
/// queue is closed and empty; unsynced commits are made durable when the
/// queue falls idle and before the thread ends.
fn run(db: &Database, queue: &mpsc::Receiver<Box<dyn PendingWrite>>, counters: &Counters) {
    let mut batch: Vec<Box<dyn PendingWrite>> = Vec::with_capacity(MAX_BATCH);
    // When the oldest commit not yet made durable was made.
    let mut unsynced_since: Option<Instant> = None;
    loop {
        let first = match unsynced_since {
            None => match queue.recv() {
                Ok(w) => w,
                Err(_) => return,
            },
            Some(_) => match queue.recv_timeout(IDLE_SYNC) {
                Ok(w) => w,
                Err(idle_or_closed) => {
                    if sync(db, counters) {
                        unsynced_since = None;
                    }
                    match idle_or_closed {
                        RecvTimeoutError::Timeout => continue,
                        RecvTimeoutError::Disconnected => return,
                    }
                }
            },
        };
        batch.push(first);
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        let durable = batch.iter().any(|w| w.durable())
            || unsynced_since.is_some_and(|t| t.elapsed() >= MAX_UNSYNCED);
        match commit_batch(db, &mut batch, counters, durable) {
            Some(true) => unsynced_since = None,
            Some(false) => {
                unsynced_since.get_or_insert_with(Instant::now);
            }
            None => {}
        }
    }
}

/// Makes every commit so far durable with an empty durable commit; false if
/// redb refused (the next durable commit tries again).
fn sync(db: &Database, counters: &Counters) -> bool {
    let done: Result<(), redb::Error> = db
        .begin_write()
        .map_err(redb::Error::from)
        .and_then(|txn| txn.commit().map_err(redb::Error::from));
    match done {
        Ok(()) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "the embedded store could not make its latest writes durable");
            false
        }
    }
}

/// Commits `batch` (emptying it), durably (fsync) or not, and answers every
/// write in it. Returns whether a commit was made and if so whether it was
/// durable (`None`: every write failed, or redb did).
fn commit_batch(
    db: &Database,
    batch: &mut Vec<Box<dyn PendingWrite>>,
    counters: &Counters,
    durable: bool,
) -> Option<bool> {
    let started = Instant::now();
    while !batch.is_empty() {
        let mut txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                fail_all(batch, &format!("embedded store: {e}"));
                return None;
            }
        };
        if !durable && let Err(e) = txn.set_durability(Durability::None) {
            // Only refused in modes this store does not use; commit durably.
            tracing::warn!(error = %e, "embedded store: committing deferred writes durably");
        }
        let failed = batch
            .iter_mut()
            .enumerate()
            .find_map(|(i, w)| w.run(&txn).err().map(|e| (i, e)));
        let Some((i, error)) = failed else {
            let n = batch.len();
            if let Err(e) = txn.commit() {
                fail_all(batch, &format!("embedded store: {e}"));
                return None;
            }
            counters.writes.fetch_add(n as u64, Ordering::Relaxed);
            let (kind, commits) = if durable {
                ("durable", &counters.commits)
            } else {
                ("deferred", &counters.deferred_commits)
            };
            commits.fetch_add(1, Ordering::Relaxed);
            metrics::histogram!("balas_store_commit_writes", "kind" => kind).record(n as f64);
            metrics::histogram!("balas_store_commit_seconds", "kind" => kind)
                .record(started.elapsed().as_secs_f64());
            batch.drain(..).for_each(|w| w.succeed());
            return Some(durable);
        };
        // Nothing of this attempt may stay: not the failing write's partial
        // changes, nor the others' (they run again without it).
        if let Err(e) = txn.abort() {
            batch.remove(i).fail(error);
            fail_all(batch, &format!("embedded store: {e}"));
            return None;
        }
        batch.remove(i).fail(error);
    }
    None
}

fn fail_all(batch: &mut Vec<Box<dyn PendingWrite>>, reason: &str) {
    for w in batch.drain(..) {
        w.fail(StoreError::Unavailable(reason.to_string()));
    }
}
