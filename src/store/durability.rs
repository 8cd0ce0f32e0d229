//! Deferred durability ("external synchrony"): background work may let its
//! writes reach the disk later, as long as nothing leaves the process before
//! they do.
//!
//! On the embedded store every write is normally answered only once an fsync
//! covers it (fsyncs are shared, see `embedded/group_commit.rs`). One inbound
//! message costs the engine a dozen writes made one after another, so at the
//! default that is a dozen fsync waits before the reply is even queued. Inside
//! [`deferred`] those writes are answered as soon as they are committed: they
//! are visible to every reader at once, and they become durable with the next
//! fsync, which the writer makes within a few milliseconds of any durable
//! write ([`crate::store::Store::sync`], any write outside a deferred scope),
//! when it falls idle, and at the latest [`MAX_UNSYNCED`] after the first
//! deferred commit.
//!
//! Why nothing is lost. redb commits in order, and a crash rolls the file back
//! to its last fsync, so what survives is always a *prefix* of the history:
//! never a later write without the earlier ones. A job's writes and its
//! acknowledgement are in that history after the job was claimed, so a crash
//! either keeps them all or takes the job back to "not done", and the job
//! runs again (jobs are at-least-once and idempotent anyway). What must not be
//! rolled back is what the outside world has already seen: the 200 to a
//! webhook, the answer of an API call, and a message sent to Meta. The first
//! two are not deferred (they run outside this scope, so their writes are
//! answered only after an fsync, which also makes every earlier deferred
//! write durable); the outbox calls [`crate::store::Store::sync`] after
//! recording a message as sent, and before sending a campaign message
//! (survey, broadcast: at most once, so its send-in-progress mark must
//! survive a crash). A conversation message goes out without a sync before
//! it: a crash mid-send sends it again anyway (an answer twice is better than
//! none), and a crash that rolls back the turn that queued it makes the turn
//! run again and queue the same message under the same id, so the customer
//! may get it twice, as after any crash mid-send, and never loses it. Likewise
//! invisible or harmless: a read receipt (with its typing indicator) is sent
//! from memory, so a redone turn may mark a message read twice; and a console
//! may show a live update of a bot turn that a crash then rolls back and
//! redoes.
//!
//! A durable write, too, is visible to the rest of the process between its
//! commit and its fsync (at most a few milliseconds), so work started from it
//! can run ahead of its caller's answer: a webhook's message may be answered
//! by the bot, or an agent's reply sent, while the 200 for it still waits for
//! the fsync. A crash in those milliseconds rolls the write back and its
//! caller gets no answer (Meta delivers the webhook again; the agent sees the
//! request fail), so the message may be answered or sent twice: the same rare
//! duplicate as a crash mid-send above, never a loss.
//!
//! The scope is a task-local flag: it applies to the future it wraps, not to
//! tasks that future spawns. The Redis stores ignore it (their durability is
//! Redis's `appendfsync`; there is nothing to defer).

use std::future::Future;
use std::time::Duration;

/// Longest a deferred write stays unsynced while writes keep coming: the
/// writer makes an fsync then, whatever its writes asked for.
pub const MAX_UNSYNCED: Duration = Duration::from_millis(50);

tokio::task_local! {
    static DEFERRED: ();
}

/// Runs `work` with deferred durability: its writes on the embedded store are
/// committed without waiting for an fsync. Only for work whose effects stay
/// inside the process until it calls [`crate::store::Store::sync`] (see the
/// module docs).
pub async fn deferred<F: Future>(work: F) -> F::Output {
    DEFERRED.scope((), work).await
}

/// True inside [`deferred`].
pub(crate) fn is_deferred() -> bool {
    DEFERRED.try_with(|_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_scope_covers_its_future_only() {
        assert!(!is_deferred());
        assert!(deferred(async { is_deferred() }).await);
        let spawned =
            deferred(async { tokio::spawn(async { is_deferred() }).await.unwrap() }).await;
        assert!(!spawned, "spawned tasks do not inherit the scope");
        assert!(!is_deferred());
    }
}
