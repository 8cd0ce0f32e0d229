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

use async_trait::async_trait;

use crate::channels::client::ChannelClient;
use crate::channels::{
    Channel, DeliveryStatus, OutboundContent, OutboundMessage, RateScope, SendError,
};
use crate::events::{Bus, Event};
use crate::jobs::{Handler, Run, Verdict, backoff};
use crate::store::{
    ConversationError, Origin, OutboundRecord, OutboundState, RateKey, SendStart, Speaker, Store,
    StoreError, TranscriptEntry, queues,
};

pub use window::{WindowClosed, WindowDecision};

/// Sends after which a retryable error becomes a failure.
const MAX_ATTEMPTS: u32 = 8;
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
    /// Who sends it (decides its delivery promise).
    pub origin: Origin,
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
}

/// The outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    /// Every change of a record's delivery state is published here
    /// (broadcast counts, survey fallbacks and consoles subscribe).
    bus: Bus,
    clients: Clients,
    pacing: Arc<Pacing>,
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
    /// An outbox over `store` sending with `clients`, reporting on `bus`.
    pub fn new(store: Store, bus: Bus, clients: Clients, pacing: Pacing) -> Self {
        Self {
            store,
            bus,
            clients,
            pacing: Arc::new(pacing),
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
                        event: None,
                    },
                )
                .await?;
        }
        self.schedule(&id, now).await?;
        if let Some(conv) = &record.conversation_id {
            // Consoles showing the conversation refresh on this.
            let event = serde_json::json!({
                "type": "outbound", "conversation_id": conv, "message_id": record.id,
                "origin": record.origin.to_string(), "at_ms": now,
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
        Ok(())
    }

    /// Delivers one message (one job of the `outbox` queue): checks it may
    /// still go out, paces it, sends it and records the outcome.
    async fn deliver(&self, job: &Run<String>) -> Result<Verdict, ConversationError> {
        let store = &self.store;
        let id = job.id.as_str();
        let Some(record) = store.outbound(id).await? else {
            return Ok(Verdict::Done);
        };
        if record.state != OutboundState::Pending {
            return Ok(Verdict::Done);
        }
        let msg = &record.message;
        let client = match msg.channel {
            Channel::WhatsApp => self.clients.whatsapp.clone(),
            Channel::Instagram => self.clients.instagram.clone(),
        };
        let Some(client) = client else {
            tracing::info!(message = %id, channel = %msg.channel, kind = kind_name(msg), "dry run: no access token, message recorded but not sent");
            tracing::debug!(message = %id, body = %msg.content.summary(), "dry-run body");
            self.advance(id, OutboundState::DryRun, |_| {}).await?;
            count(msg.channel, "dry_run");
            return Ok(Verdict::Done);
        };
        // Checked again at the moment of sending: a STOP or the window closing
        // while the message waited (paced, retried) must win.
        if let Some(skip) = self.still_allowed(&record).await? {
            return Ok(skip);
        }
        // Pace: the sender's budget is shared by every process through the store.
        let now = store.now_ms();
        let (sender, rate) = match msg.channel {
            Channel::WhatsApp => &self.pacing.whatsapp,
            Channel::Instagram => &self.pacing.instagram,
        };
        // The platform said the whole number is over its limit: every process
        // holds back until the cool-down it set has passed.
        if let Some(until) = store.sender_cooldown(msg.channel, sender).await?
            && until > now
        {
            return Ok(Verdict::Later(until));
        }
        let burst = rate.max(1.0) as u32;
        let wait = store
            .take_rate(&RateKey::Sender(msg.channel, sender), *rate, burst)
            .await?;
        if wait > 0 {
            return Ok(Verdict::Later(now + wait as i64));
        }
        if msg.channel == Channel::WhatsApp && msg.content.needs_window() {
            let wait = store
                .take_rate(
                    &RateKey::Recipient(msg.channel, &msg.to),
                    PAIR_RATE_PER_SEC,
                    PAIR_BURST,
                )
                .await?;
            if wait > 0 {
                return Ok(Verdict::Later(now + wait as i64));
            }
        }
        if job.lease_lost() {
            // Another process holds this send now; it decides.
            return Ok(Verdict::Done);
        }
        match store.begin_send(id, !record.origin.at_most_once()).await? {
            SendStart::NotPending => return Ok(Verdict::Done),
            SendStart::Interrupted => {
                tracing::warn!(message = %id, origin = %record.origin, "a previous send was cut off mid-send; not sending this campaign message again to avoid a duplicate");
                self.fail(&record, 0, "outcome unknown: the sending process stopped mid-send; not resent to avoid a duplicate").await?;
                return Ok(Verdict::Done);
            }
            SendStart::Resume => {
                tracing::warn!(message = %id, origin = %record.origin, "a previous send was cut off mid-send; sending again so the customer is not left without an answer (they may get it twice)");
            }
            SendStart::Go => {}
        }
        let attempts = record.attempts + 1;
        let started = std::time::Instant::now();
        let result = client.send(msg).await;
        metrics::histogram!("balas_outbox_send_seconds", "channel" => msg.channel.as_str())
            .record(started.elapsed().as_secs_f64());
        let retry = match result {
            Ok(receipt) => {
                self.advance(id, OutboundState::Sent, |r| {
                    r.platform_id.clone_from(&receipt.platform_message_id);
                })
                .await?;
                count(msg.channel, "sent");
                return Ok(Verdict::Done);
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
                    store
                        .set_sender_cooldown(msg.channel, sender, until)
                        .await?;
                }
                tracing::info!(message = %id, code, %title, attempt = attempts, delay_ms = delay.as_millis() as u64, "send will be retried");
                delay
            }
            Err(SendError::Unknown { title })
                if !record.origin.at_most_once() && attempts < MAX_ATTEMPTS =>
            {
                tracing::warn!(message = %id, %title, attempt = attempts, "send outcome unknown; sending this conversation message again so the customer is not left without an answer (they may get it twice)");
                backoff(attempts)
            }
            Err(SendError::Unknown { title }) => {
                tracing::warn!(message = %id, origin = %record.origin, %title, "send outcome unknown; not resending this campaign message to avoid a duplicate");
                self.fail(
                    &record,
                    0,
                    &format!("outcome unknown: {title}; not resent to avoid a duplicate"),
                )
                .await?;
                return Ok(Verdict::Done);
            }
            Err(e) => {
                let (code, title) = (e.code(), e.title().to_string());
                tracing::warn!(message = %id, code, %title, "send failed permanently");
                self.fail(&record, code, &title).await?;
                return Ok(Verdict::Done);
            }
        };
        count(msg.channel, "retry");
        store.end_send_attempt(id).await?;
        Ok(Verdict::Later(store.now_ms() + retry.as_millis() as i64))
    }

    /// `None` when the record may still be sent now; otherwise the verdict
    /// after marking it skipped: the customer opted out of campaigns, or the
    /// platform's window closed while it waited.
    async fn still_allowed(
        &self,
        record: &OutboundRecord,
    ) -> Result<Option<Verdict>, ConversationError> {
        let msg = &record.message;
        let contact = self.store.contact(msg.channel, &msg.to).await?;
        let is_template = matches!(msg.content, OutboundContent::Template { .. });
        let reason = if record.origin.stopped_by_opt_out()
            && contact.as_ref().is_some_and(|c| c.opted_out)
        {
            Some((OutboundState::Skipped, "opted_out"))
        } else if record.origin.stopped_by_opt_out()
            && is_template
            && contact.as_ref().is_some_and(|c| c.marketing_opt_out)
        {
            Some((OutboundState::Skipped, "marketing_opt_out"))
        } else {
            let last = contact.as_ref().and_then(|c| c.last_inbound_ms);
            match window::check(
                msg.channel,
                &msg.content,
                msg.human_agent_tag,
                last,
                self.store.now_ms(),
            ) {
                Ok(_) => None,
                Err(_) if record.origin.broadcast().is_some() => {
                    Some((OutboundState::Skipped, "outside_window"))
                }
                Err(_) => Some((OutboundState::SkippedWindow, "outside_window")),
            }
        };
        let Some((state, reason)) = reason else {
            return Ok(None);
        };
        tracing::info!(message = %record.id, origin = %record.origin, reason, "not sent: no longer allowed at the moment of sending");
        self.advance(&record.id, state, |r| {
            r.error_title = Some(reason.to_string())
        })
        .await?;
        count(msg.channel, "skipped");
        Ok(Some(Verdict::Done))
    }

    /// Moves a record forward (see [`Store::advance_outbound`]) and, when it
    /// moved, applies what that means for the contact and publishes it.
    async fn advance(
        &self,
        id: &str,
        state: OutboundState,
        edit: impl FnMut(&mut OutboundRecord),
    ) -> Result<Option<OutboundRecord>, ConversationError> {
        let Some(record) = self.store.advance_outbound(id, state, edit).await? else {
            return Ok(None);
        };
        if record.state == OutboundState::Failed {
            count(record.message.channel, "failed");
            if record.error_code == Some(131050) {
                // The customer told WhatsApp to stop marketing from us.
                self.store
                    .update_contact(record.message.channel, &record.message.to, |c| {
                        c.marketing_opt_out = true;
                    })
                    .await?;
            }
        }
        self.bus
            .publish(&Event::Delivery(Box::new(record.clone())))
            .await?;
        Ok(Some(record))
    }

    /// Marks a record failed with the platform's (or our) code and title.
    async fn fail(
        &self,
        record: &OutboundRecord,
        code: i64,
        title: &str,
    ) -> Result<(), ConversationError> {
        self.advance(&record.id, OutboundState::Failed, |r| {
            r.error_code = Some(code);
            r.error_title = Some(title.to_string());
        })
        .await?;
        Ok(())
    }

    /// Applies a delivery status webhook to our record; never moves it backwards.
    pub async fn apply_status(
        &self,
        status: &DeliveryStatus,
    ) -> Result<StatusOutcome, ConversationError> {
        let Some(id) = self
            .store
            .outbound_by_platform_id(&status.message_id)
            .await?
        else {
            return Ok(StatusOutcome::Unknown);
        };
        let next = OutboundState::from(status.state);
        let advanced = self
            .advance(&id, next, |r| {
                if next == OutboundState::Failed {
                    r.error_code = status.error_code;
                    r.error_title.clone_from(&status.error_title);
                }
            })
            .await?;
        Ok(match advanced {
            None => StatusOutcome::Stale,
            Some(record) => StatusOutcome::Advanced(Box::new(record)),
        })
    }

    /// Pending and in-flight outbound messages.
    pub async fn backlog(&self) -> Result<crate::store::JobCounts, StoreError> {
        self.store.job_counts(queues::OUTBOX).await
    }
}

/// The outbox is the handler of the `outbox` queue: one job per message,
/// its id the record id.
#[async_trait]
impl Handler for Outbox {
    type Payload = String;

    fn queue(&self) -> &'static str {
        queues::OUTBOX
    }

    async fn run(&self, job: &Run<String>) -> Verdict {
        match self.deliver(job).await {
            Ok(verdict) => verdict,
            // Nothing was lost: the record says how far it got.
            Err(e) => Verdict::failed(e),
        }
    }
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::channels::{ContactRef, SendReceipt};
    use crate::clock::{Clock, ManualClock};
    use crate::jobs::{Settings, Worker};
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
            origin: Origin::Other("test".into()),
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
            Bus::new(),
            Clients {
                whatsapp: Some(client.clone()),
                instagram: None,
            },
            Pacing {
                whatsapp: ("number".into(), 80.0),
                instagram: ("account".into(), 80.0),
            },
        );
        let worker = Worker::new(
            Arc::new(outbox.clone()),
            store.clone(),
            Settings::new(1, Duration::from_secs(10), Duration::from_millis(50)),
        );
        outbox.enqueue(text_to("a")).await.unwrap();
        worker.run_once().await.unwrap();
        outbox.enqueue(text_to("b")).await.unwrap();
        worker.run_once().await.unwrap();
        assert_eq!(
            *client.sent_to.lock().unwrap(),
            ["a"],
            "b waits for the cool-down"
        );
        clock.advance(Duration::from_secs(11));
        while worker.run_once().await.unwrap() > 0 {}
        let mut sent = client.sent_to.lock().unwrap().clone();
        sent.sort();
        assert_eq!(sent, ["a", "a", "b"], "a retried once, b sent once");
        for who in ["a", "b"] {
            let r = store.outbound(&format!("m-{who}")).await.unwrap().unwrap();
            assert_eq!(r.state, OutboundState::Sent);
        }
    }
}
