//! The background loops that drain the inbound and timer queues.
//!
//! Each loop claims a batch of due jobs with a lease, handles them, and
//! acknowledges each one only when it is done. A job whose handler fails is
//! retried with backoff; one that keeps failing is moved to a dead-letter list
//! (visible to operators) instead of blocking the queue or vanishing.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::timers::Timer;
use super::{Outcome, handle_event};
use crate::app::App;
use crate::channels::{EventKind, InboundEvent};
use crate::outbox::backoff;
use crate::store::{StoreError, TypedJob, queues};

/// Failures after which a job is dead-lettered.
const MAX_FAILURES: u32 = 20;
/// Retries of a status whose message is not known yet.
const MAX_UNKNOWN_STATUS_RETRIES: u32 = 30;

/// Drains the inbound queue until shutdown.
pub async fn run_inbound(app: App, mut shutdown: watch::Receiver<bool>) {
    let poll = app.config().workers.poll_interval.get();
    while !*shutdown.borrow() {
        match inbound_once(&app).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "inbound worker cannot reach the store"),
        }
        tokio::select! {
            _ = app.inbound_woken() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Claims and handles one batch of inbound events; returns how many were claimed.
pub async fn inbound_once(app: &App) -> Result<usize, StoreError> {
    let workers = &app.config().workers;
    let jobs: Vec<TypedJob<InboundEvent>> = app
        .store()
        .claim(
            queues::INBOUND,
            workers.lease.get(),
            workers.inbound_concurrency * 8,
        )
        .await?;
    let n = jobs.len();
    // One contact's events are handled in order by one task.
    let mut by_contact: BTreeMap<String, Vec<TypedJob<InboundEvent>>> = BTreeMap::new();
    for job in jobs {
        by_contact
            .entry(contact_of(&job.payload))
            .or_default()
            .push(job);
    }
    futures_util::stream::iter(by_contact.into_values())
        .for_each_concurrent(workers.inbound_concurrency, |mut group| async move {
            group.sort_by_key(|j| (j.payload.timestamp_ms, j.id.clone()));
            for job in group {
                settle_inbound(app, job).await;
            }
        })
        .await;
    Ok(n)
}

fn contact_of(event: &InboundEvent) -> String {
    let who = match &event.kind {
        EventKind::Message(m) => Some(&m.contact.external_id),
        EventKind::Echo { contact, .. }
        | EventKind::Read { contact, .. }
        | EventKind::Reaction { contact, .. }
        | EventKind::Deleted { contact, .. } => Some(&contact.external_id),
        EventKind::Status(s) => Some(&s.recipient_id),
        _ => None,
    };
    format!("{}:{}", event.channel, who.map_or("", String::as_str))
}

async fn settle_inbound(app: &App, job: TypedJob<InboundEvent>) {
    let store = app.store();
    let result = handle_event(app, &job.payload).await;
    let now = store.now_ms();
    let settled = match result {
        Ok(Outcome::Done) => store.ack(queues::INBOUND, &job.id).await,
        Ok(Outcome::Busy) => store.retry_at(queues::INBOUND, &job.id, now + 100).await,
        Ok(Outcome::RetryLater(_)) if job.attempts >= MAX_UNKNOWN_STATUS_RETRIES => {
            tracing::warn!(job = %job.id, key = %job.payload.dedupe_key, "status for a message we never recorded; dropping it");
            store.ack(queues::INBOUND, &job.id).await
        }
        Ok(Outcome::RetryLater(delay)) => {
            store
                .retry_at(queues::INBOUND, &job.id, now + delay.as_millis() as i64)
                .await
        }
        Err(e) if job.attempts + 1 >= MAX_FAILURES => {
            tracing::error!(job = %job.id, error = %e, "inbound event keeps failing; moved to the dead-letter list");
            dead_letter(app, queues::INBOUND, &job.id, &job.payload, &e.to_string()).await
        }
        Err(e) => {
            let delay = backoff(job.attempts + 1);
            tracing::warn!(job = %job.id, error = %e, retry_in_ms = delay.as_millis() as u64, "inbound event failed; will retry");
            store
                .retry_at(queues::INBOUND, &job.id, now + delay.as_millis() as i64)
                .await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(job = %job.id, error = %e, "could not settle an inbound job; its lease will expire and it runs again");
    }
}

async fn dead_letter<T: serde::Serialize>(
    app: &App,
    queue: &str,
    id: &str,
    payload: &T,
    error: &str,
) -> Result<(), StoreError> {
    let entry = serde_json::json!({
        "queue": queue, "job": id, "error": error,
        "at_ms": app.store().now_ms(), "payload": payload,
    });
    app.store()
        .backend()
        .list_push(&format!("deadletter:{queue}"), entry.to_string().as_bytes())
        .await?;
    metrics::counter!("balas_dead_letters_total", "queue" => queue.to_string()).increment(1);
    app.store().ack(queue, id).await
}

/// Drains the timer queue until shutdown.
pub async fn run_timers(app: App, mut shutdown: watch::Receiver<bool>) {
    let poll = app.config().workers.poll_interval.get();
    while !*shutdown.borrow() {
        match timers_once(&app).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "timer worker cannot reach the store"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Fires the due timers once; returns how many were claimed.
pub async fn timers_once(app: &App) -> Result<usize, StoreError> {
    let lease = app.config().workers.lease.get();
    let jobs: Vec<TypedJob<Timer>> = app.store().claim(queues::TIMERS, lease, 64).await?;
    let n = jobs.len();
    for job in jobs {
        let store = app.store();
        let settled = match job.payload.fire(app).await {
            Ok(()) => store.ack(queues::TIMERS, &job.id).await,
            Err(e) if job.attempts + 1 >= MAX_FAILURES => {
                tracing::error!(job = %job.id, error = %e, "timer keeps failing; moved to the dead-letter list");
                dead_letter(app, queues::TIMERS, &job.id, &job.payload, &e.to_string()).await
            }
            Err(e) => {
                let delay: Duration = backoff(job.attempts + 1);
                tracing::warn!(job = %job.id, error = %e, "timer failed; will retry");
                store
                    .retry_at(
                        queues::TIMERS,
                        &job.id,
                        store.now_ms() + delay.as_millis() as i64,
                    )
                    .await
            }
        };
        if let Err(e) = settled {
            tracing::warn!(job = %job.id, error = %e, "could not settle a timer job");
        }
    }
    Ok(n)
}
