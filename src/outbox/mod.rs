//! Durable outbound delivery: the only way anything is sent to a customer.
//!
//! [`Outbox::enqueue`] checks the platform window, stores an
//! [`OutboundRecord`] and a job in the same place every process can see, and
//! returns; a worker later claims the job, paces it (per sender number across
//! processes, and per recipient on WhatsApp so a chat never trips the pair rate
//! limit), sends it through the channel client, and retries with exponential
//! backoff and jitter on rate limits, 5xx and timeouts. Permanent errors are
//! recorded on the message with their code and title and never retried. A record
//! with a deterministic id is sent at most once however often it is enqueued, so
//! a reprocessed webhook never messages a customer twice.

pub mod window;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;

use crate::channels::client::ChannelClient;
use crate::channels::{Channel, DeliveryStatus, OutboundMessage, RateScope, SendError};
use crate::store::{
    OutboundRecord, OutboundState, SendStart, Speaker, Store, StoreError, TranscriptEntry, queues,
};

pub use window::{WindowClosed, WindowDecision};

/// Sends after which a retryable error becomes a failure.
const MAX_ATTEMPTS: u32 = 8;
/// Longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// WhatsApp pair rate: about one message every 6 s sustained to one customer …
const PAIR_RATE_PER_SEC: f64 = 1.0 / 6.0;
/// … with short bursts allowed (FACTS.md §5); bot replies stay instant.
const PAIR_BURST: u32 = 10;

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Record id; deterministic ids make enqueueing idempotent. `None` = new id.
    pub id: Option<String>,
    /// What and to whom.
    pub message: OutboundMessage,
    /// The conversation whose transcript shows it.
    pub conversation_id: Option<String>,
    /// Who speaks in the transcript.
    pub speaker: Option<Speaker>,
    /// `bot`, `agent:<id>`, `survey:<case>`, `broadcast:<id>`, `system`.
    pub origin: String,
    /// An agent wrote it (Instagram's human-agent window applies).
    pub by_human: bool,
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The platform's window forbids it; see [`WindowClosed`].
    #[error(transparent)]
    Window(#[from] WindowClosed),
    /// Storage failed; nothing was accepted.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The channel clients; a missing one means dry run.
#[derive(Clone, Default)]
pub struct Clients {
    /// WhatsApp client, when an access token is configured.
    pub whatsapp: Option<Arc<dyn ChannelClient>>,
    /// Instagram client, when an access token is configured.
    pub instagram: Option<Arc<dyn ChannelClient>>,
}

/// Pacing settings.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// WhatsApp sender (phone number id) and its messages per second.
    pub whatsapp: (String, f64),
    /// Instagram sender (account id) and its messages per second.
    pub instagram: (String, f64),
    /// Lease of a claimed job.
    pub lease: Duration,
    /// Sends in flight at once per process.
    pub concurrency: usize,
}

/// The outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    clients: Clients,
    pacing: Arc<Pacing>,
    wake: Arc<Notify>,
}

/// What a status webhook did.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusOutcome {
    /// The record moved forward.
    Advanced(Box<OutboundRecord>),
    /// Known message, but the status was not progress (late or duplicate).
    Stale,
    /// No record with that platform id (yet).
    Unknown,
}

impl Outbox {
    /// An outbox over `store` sending with `clients`.
    pub fn new(store: Store, clients: Clients, pacing: Pacing) -> Self {
        Self {
            store,
            clients,
            pacing: Arc::new(pacing),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Stores a message for delivery. Idempotent for a given `id`: a record that
    /// exists is returned as it is and not sent again.
    pub async fn enqueue(&self, out: Outgoing) -> Result<OutboundRecord, OutboxError> {
        let now = self.store.now_ms();
        let id = out
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        if let Some(existing) = self.store.outbound(&id).await? {
            if existing.state == OutboundState::Pending {
                self.schedule(&id, now).await?;
            }
            return Ok(existing);
        }
        let mut message = out.message;
        let contact = self.store.contact(message.channel, &message.to).await?;
        let decision = window::check(
            message.channel,
            &message.content,
            out.by_human,
            contact.as_ref().and_then(|c| c.last_inbound_ms),
            now,
        )?;
        message.human_agent_tag = decision == WindowDecision::SendWithHumanAgentTag;
        let record = OutboundRecord::pending(
            id.clone(),
            message,
            out.conversation_id.clone(),
            out.origin,
            now,
        );
        if !self.store.create_outbound(&record).await? {
            // Another worker created it a moment ago; treat as already enqueued.
            return Ok(self.store.outbound(&id).await?.unwrap_or(record));
        }
        if let (Some(conv), Some(speaker)) = (&out.conversation_id, out.speaker) {
            self.store
                .append_transcript(
                    conv,
                    &TranscriptEntry {
                        at_ms: now,
                        speaker,
                        text: record.message.content.summary(),
                        message_id: Some(id.clone()),
                    },
                )
                .await?;
        }
        self.schedule(&id, now).await?;
        if let Some(conv) = &record.conversation_id {
            // Consoles showing the conversation refresh on this.
            let event = serde_json::json!({
                "type": "outbound", "conversation_id": conv, "message_id": record.id,
                "origin": record.origin, "at_ms": now,
            });
            if let Err(e) = self.store.publish_event(&event).await {
                tracing::debug!(error = %e, "could not publish an outbound event");
            }
        }
        Ok(record)
    }

    async fn schedule(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.store
            .schedule(queues::OUTBOX, id, now, &id, None)
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Claims and delivers one batch of due messages; returns how many were claimed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let jobs = self
            .store
            .claim::<String>(
                queues::OUTBOX,
                self.pacing.lease,
                self.pacing.concurrency * 4,
            )
            .await?;
        let n = jobs.len();
        futures_util::stream::iter(jobs)
            .for_each_concurrent(self.pacing.concurrency, |job| async move {
                if let Err(e) = self.deliver(&job.id).await {
                    // The lease runs out and the job is claimed again: nothing lost.
                    tracing::warn!(message = %job.id, error = %e, "outbox delivery interrupted; will retry");
                }
            })
            .await;
        Ok(n)
    }

    /// Runs [`Outbox::run_once`] until `shutdown` turns true.
    pub async fn run(&self, poll: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            match self.run_once().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox worker cannot reach the store"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn deliver(&self, id: &str) -> Result<(), StoreError> {
        let store = &self.store;
        let Some(record) = store.outbound(id).await? else {
            return store.ack(queues::OUTBOX, id).await;
        };
        if record.state != OutboundState::Pending {
            return store.ack(queues::OUTBOX, id).await;
        }
        let msg = &record.message;
        let client = match msg.channel {
            Channel::WhatsApp => self.clients.whatsapp.clone(),
            Channel::Instagram => self.clients.instagram.clone(),
        };
        let Some(client) = client else {
            tracing::info!(message = %id, channel = %msg.channel, kind = kind_name(msg), "dry run: no access token, message recorded but not sent");
            tracing::debug!(message = %id, body = %msg.content.summary(), "dry-run body");
            store
                .advance_outbound(id, OutboundState::DryRun, |_| {})
                .await?;
            metrics::counter!("balas_outbox_sends_total", "channel" => msg.channel.as_str(), "result" => "dry_run").increment(1);
            return store.ack(queues::OUTBOX, id).await;
        };
        // Pace: the sender's budget is shared by every process through the store.
        let now = store.now_ms();
        let (sender, rate) = match msg.channel {
            Channel::WhatsApp => &self.pacing.whatsapp,
            Channel::Instagram => &self.pacing.instagram,
        };
        // The platform said the whole number is over its limit: every process
        // holds back until the cool-down it set has passed.
        let cooldown = format!("cooldown:{}:{sender}", msg.channel.as_str());
        if let Some(until) = store.get_json::<i64>(&cooldown).await?
            && until > now
        {
            return store.retry_at(queues::OUTBOX, id, until).await;
        }
        let burst = rate.max(1.0) as u32;
        let wait = store
            .backend()
            .rate_take(
                &format!("rate:{}:{sender}", msg.channel.as_str()),
                *rate,
                burst,
                now,
            )
            .await?;
        if wait > 0 {
            return store.retry_at(queues::OUTBOX, id, now + wait as i64).await;
        }
        if msg.channel == Channel::WhatsApp && msg.content.needs_window() {
            let wait = store
                .backend()
                .rate_take(
                    &format!("pair:whatsapp:{}", msg.to),
                    PAIR_RATE_PER_SEC,
                    PAIR_BURST,
                    now,
                )
                .await?;
            if wait > 0 {
                return store.retry_at(queues::OUTBOX, id, now + wait as i64).await;
            }
        }
        match store
            .begin_send(id, resends_after_crash(&record.origin))
            .await?
        {
            SendStart::NotPending => return store.ack(queues::OUTBOX, id).await,
            SendStart::Interrupted => {
                tracing::warn!(message = %id, origin = %record.origin, "a previous send was cut off by a crash; not sending this campaign message again to avoid a duplicate");
                self.fail(&record, 0, "outcome unknown: the sending process stopped mid-send; not resent to avoid a duplicate").await?;
                return store.ack(queues::OUTBOX, id).await;
            }
            SendStart::Resume => {
                tracing::warn!(message = %id, origin = %record.origin, "a previous send was cut off by a crash; sending again so the customer is not left without an answer (they may get it twice)");
            }
            SendStart::Go => {}
        }
        let attempts = record.attempts + 1;
        let started = std::time::Instant::now();
        let result = client.send(msg).await;
        metrics::histogram!("balas_outbox_send_seconds", "channel" => msg.channel.as_str())
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(receipt) => {
                store
                    .advance_outbound(id, OutboundState::Sent, |r| {
                        r.platform_id.clone_from(&receipt.platform_message_id);
                    })
                    .await?;
                count(msg.channel, "sent");
                store.ack(queues::OUTBOX, id).await
            }
            Err(SendError::Retryable {
                code,
                title,
                retry_after,
                scope,
            }) if attempts < MAX_ATTEMPTS => {
                let delay = retry_after.unwrap_or_else(|| backoff(attempts));
                if scope == Some(RateScope::Sender) {
                    let until = store.now_ms() + delay.as_millis() as i64;
                    store.put_json(&cooldown, &until).await?;
                }
                tracing::info!(message = %id, code, %title, attempt = attempts, delay_ms = delay.as_millis() as u64, "send will be retried");
                count(msg.channel, "retry");
                store.end_send_attempt(id).await?;
                store
                    .retry_at(
                        queues::OUTBOX,
                        id,
                        store.now_ms() + delay.as_millis() as i64,
                    )
                    .await
            }
            Err(e) => {
                let (code, title) = (e.code(), e.title().to_string());
                tracing::warn!(message = %id, code, %title, "send failed permanently");
                self.fail(&record, code, &title).await?;
                store.ack(queues::OUTBOX, id).await
            }
        }
    }

    /// Marks a record failed and applies what the error means for the contact.
    async fn fail(
        &self,
        record: &OutboundRecord,
        code: i64,
        title: &str,
    ) -> Result<(), StoreError> {
        let failed = self
            .store
            .advance_outbound(&record.id, OutboundState::Failed, |r| {
                r.error_code = Some(code);
                r.error_title = Some(title.to_string());
            })
            .await?;
        count(record.message.channel, "failed");
        if let Some(failed) = &failed {
            // Broadcasts show why recipients failed, whichever way the error came.
            crate::broadcast::on_status(&self.store, failed).await?;
        }
        if code == 131050 {
            self.store
                .update_contact(record.message.channel, &record.message.to, |c| {
                    c.marketing_opt_out = true;
                })
                .await?;
        }
        Ok(())
    }

    /// Applies a delivery status webhook to our record; never moves it backwards.
    pub async fn apply_status(&self, status: &DeliveryStatus) -> Result<StatusOutcome, StoreError> {
        let Some(id) = self
            .store
            .outbound_by_platform_id(&status.message_id)
            .await?
        else {
            return Ok(StatusOutcome::Unknown);
        };
        let next = OutboundState::from(status.state);
        let advanced = self
            .store
            .advance_outbound(&id, next, |r| {
                if next == OutboundState::Failed {
                    r.error_code = status.error_code;
                    r.error_title.clone_from(&status.error_title);
                }
            })
            .await?;
        match advanced {
            None => Ok(StatusOutcome::Stale),
            Some(record) => {
                if record.state == OutboundState::Failed {
                    count(record.message.channel, "failed");
                    if record.error_code == Some(131050) {
                        self.store
                            .update_contact(record.message.channel, &record.message.to, |c| {
                                c.marketing_opt_out = true;
                            })
                            .await?;
                    }
                }
                Ok(StatusOutcome::Advanced(Box::new(record)))
            }
        }
    }

    /// Pending and in-flight outbound messages.
    pub async fn backlog(&self) -> Result<crate::store::JobCounts, StoreError> {
        self.store.backend().jobs_counts(queues::OUTBOX).await
    }
}

/// Whether a message whose send was cut off by a crash is sent again.
///
/// The Graph API has no idempotency key, so after a crash mid-send nobody knows
/// whether the customer got the message. For conversation messages (bot and
/// agent replies, notices) silence is the worse failure: a customer who asked
/// must get an answer, even if, rarely, twice. For campaign messages
/// (broadcasts, surveys) a duplicate is the worse failure: they are marked
/// failed "outcome unknown" instead, visible per recipient.
fn resends_after_crash(origin: &str) -> bool {
    !(origin.starts_with("broadcast:") || origin.starts_with("survey:"))
}

fn count(channel: Channel, result: &'static str) {
    metrics::counter!("balas_outbox_sends_total", "channel" => channel.as_str(), "result" => result).increment(1);
}

fn kind_name(msg: &OutboundMessage) -> &'static str {
    use crate::channels::OutboundContent::*;
    match msg.content {
        Text { .. } => "text",
        Buttons { .. } => "buttons",
        List { .. } => "list",
        Template { .. } => "template",
        MarkRead { .. } => "mark_read",
        Media(_) => "media",
    }
}

/// Exponential backoff with full jitter: up to 1 s · 2^(attempt-1), capped.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_secs(1)
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(ms / 2 + fastrand::u64(0..=ms / 2))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::channels::{ContactRef, OutboundContent, SendReceipt};
    use crate::clock::{Clock, ManualClock};
    use crate::store::embedded::EmbeddedBackend;

    /// A channel client that answers from a script and records who it sent to.
    struct Scripted {
        sent_to: Mutex<Vec<String>>,
        script: Mutex<VecDeque<Result<SendReceipt, SendError>>>,
    }

    #[async_trait::async_trait]
    impl ChannelClient for Scripted {
        async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
            self.sent_to.lock().unwrap().push(msg.to.clone());
            self.script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Ok(SendReceipt {
                    platform_message_id: Some(format!("wamid.{}", msg.to)),
                }))
        }
    }

    fn text_to(to: &str) -> Outgoing {
        Outgoing {
            id: Some(format!("m-{to}")),
            message: OutboundMessage {
                channel: Channel::WhatsApp,
                to: to.into(),
                content: OutboundContent::Text { body: "hi".into() },
                human_agent_tag: false,
            },
            conversation_id: None,
            speaker: None,
            origin: "test".into(),
            by_human: false,
        }
    }

    #[tokio::test]
    async fn a_sender_rate_limit_holds_back_every_message_until_the_cool_down() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_ms(1_000_000_000));
        let store = Store::new(
            Arc::new(EmbeddedBackend::open(dir.path()).unwrap()),
            clock.clone(),
        );
        for who in ["a", "b"] {
            let contact = ContactRef {
                external_id: who.into(),
                name: None,
                wa_id: None,
                user_id: None,
            };
            store
                .touch_contact(Channel::WhatsApp, &contact, clock.now_ms())
                .await
                .unwrap();
        }
        let client = Arc::new(Scripted {
            sent_to: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::from([Err(SendError::Retryable {
                code: 130429,
                title: "Rate limit hit".into(),
                scope: Some(RateScope::Sender),
                retry_after: Some(Duration::from_secs(10)),
            })])),
        });
        let outbox = Outbox::new(
            store.clone(),
            Clients {
                whatsapp: Some(client.clone()),
                instagram: None,
            },
            Pacing {
                whatsapp: ("number".into(), 80.0),
                instagram: ("account".into(), 80.0),
                lease: Duration::from_secs(60),
                concurrency: 1,
            },
        );
        outbox.enqueue(text_to("a")).await.unwrap();
        outbox.run_once().await.unwrap();
        outbox.enqueue(text_to("b")).await.unwrap();
        outbox.run_once().await.unwrap();
        assert_eq!(
            *client.sent_to.lock().unwrap(),
            ["a"],
            "b waits for the cool-down"
        );
        clock.advance(Duration::from_secs(11));
        while outbox.run_once().await.unwrap() > 0 {}
        let mut sent = client.sent_to.lock().unwrap().clone();
        sent.sort();
        assert_eq!(sent, ["a", "a", "b"], "a retried once, b sent once");
        for who in ["a", "b"] {
            let r = store.outbound(&format!("m-{who}")).await.unwrap().unwrap();
            assert_eq!(r.state, OutboundState::Sent);
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let ceiling = Duration::from_secs(1 << (attempt - 1).min(16)).min(MAX_BACKOFF);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?}");
        }
    }
}
