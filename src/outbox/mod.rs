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
//!
//! Read receipts (with the typing indicator) are the exception:
//! [`Outbox::mark_read`] sends them from memory, with no record and no job. One
//! lost in a crash, or sent twice when a turn is redone, is invisible to the
//! customer, and storing them cost each answered message a fifth of its store
//! writes.

pub mod senders;
pub mod window;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::attachments::Files;
use crate::channels::{
    Channel, DeliveryStatus, OutboundContent, OutboundMessage, RateScope, SendError,
};
use crate::events::{Bus, Event};
use crate::jobs::{Handler, Run, Verdict, backoff};
use crate::store::{
    ConversationError, Origin, OutboundRecord, OutboundState, RateKey, SendStart, Speaker, Store,
    StoreError, TranscriptEntry, queues,
};

pub use senders::{Sender, SenderChoiceError, Senders};
pub use window::{WindowClosed, WindowDecision};

/// Sends after which a retryable error becomes a failure.
const MAX_ATTEMPTS: u32 = 8;
/// Read receipts being sent at once, at most: past this (the Graph API is
/// slow or unreachable) new ones are dropped rather than piled up.
const RECEIPTS_IN_FLIGHT: usize = 64;
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

/// The outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    /// Every change of a record's delivery state is published here
    /// (broadcast counts, survey fallbacks and consoles subscribe).
    bus: Bus,
    senders: Arc<Senders>,
    /// Hands our stored files to the platform at send time; without it a
    /// media message naming an attachment fails.
    files: Option<Files>,
    /// Slots for read receipts in flight (see [`RECEIPTS_IN_FLIGHT`]).
    receipts: Arc<Semaphore>,
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
    /// An outbox over `store` sending from `senders`, reporting on `bus`.
    pub fn new(store: Store, bus: Bus, senders: Senders) -> Self {
        Self {
            store,
            bus,
            senders: Arc::new(senders),
            files: None,
            receipts: Arc::new(Semaphore::new(RECEIPTS_IN_FLIGHT)),
        }
    }

    /// The outbox that sends our stored files through `files`.
    pub fn with_files(mut self, files: Files) -> Self {
        self.files = Some(files);
        self
    }

    /// The numbers and accounts messages go out from.
    pub fn senders(&self) -> &Senders {
        &self.senders
    }

    /// Stores a message for delivery. Idempotent for a given `id`: a record that
    /// exists is returned as it is and not sent again. Read receipts are not
    /// stored: [`Outbox::mark_read`] sends them (one enqueued here is dropped
    /// when its turn comes, as those an older version stored are).
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
        // Recorded with the number it goes out from, the default one included.
        if message.from.is_none()
            && let Some(default) = self.senders.resolve(message.channel, None)
            && !default.id.is_empty()
        {
            message.from = Some(default.id.clone());
        }
        let contact = self.store.contact(message.channel, &message.to).await?;
        let decision = window::check(
            message.channel,
            &message.content,
            out.by_human,
            contact
                .as_ref()
                .and_then(|c| c.last_inbound_to(message.from.as_deref())),
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
        // The transcript line and the job do not depend on each other (the
        // record exists): written at once.
        let transcribed = async {
            if let (Some(conv), Some(speaker)) = (&out.conversation_id, out.speaker) {
                let entry = TranscriptEntry {
                    at_ms: now,
                    speaker,
                    text: record.message.content.summary(),
                    message_id: Some(id.clone()),
                    attachments: record.message.content.attachment_ids(),
                    event: None,
                };
                self.store.append_transcript(conv, &entry).await?;
            }
            Ok::<_, StoreError>(())
        };
        tokio::try_join!(transcribed, self.schedule(&id, now))?;
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

    /// Marks the customer's WhatsApp message `message_id` read, with the
    /// typing indicator when `typing`, from the number `from` (`None`: the
    /// default one) to `to`.
    ///
    /// Sent from memory, at once: no record, no job, no retry. A read receipt
    /// is a courtesy nobody can see go missing or arrive twice, so it is not
    /// worth the store writes a message costs. It never holds a reply back:
    /// it takes a sending slot of the number only when at least half of the
    /// number's burst is free right now (see [`receipt_burst`]) and is dropped
    /// otherwise (also while the number cools down after a rate limit). The
    /// typing indicator is left out once the bot's answer to the message has
    /// gone out. `once`: an id under which it is sent at most once across
    /// processes (an agent typing, one per message and 20 s); the bot's
    /// receipt needs none (one per inbound message, and one repeated by a
    /// redone turn is invisible).
    ///
    /// Returns the send under way, if one was started (a caller may await it;
    /// dropping the handle lets it run on). Errors are the store's only.
    pub async fn mark_read(
        &self,
        from: Option<&str>,
        to: &str,
        message_id: &str,
        typing: bool,
        once: Option<&str>,
    ) -> Result<Option<JoinHandle<()>>, StoreError> {
        let channel = Channel::WhatsApp;
        if let Some(id) = once
            && !self.store.first_receipt(id).await?
        {
            return Ok(None);
        }
        let Some(sender) = self.senders.resolve(channel, from) else {
            tracing::debug!(from, "read receipt dropped: the number is not configured");
            return Ok(None);
        };
        let Some(client) = sender.client.clone() else {
            count(channel, "dry_run");
            return Ok(None);
        };
        let Ok(slot) = Arc::clone(&self.receipts).try_acquire_owned() else {
            tracing::debug!(reason = "busy", "read receipt dropped");
            return Ok(None);
        };
        let now = self.store.now_ms();
        let skip = if self
            .store
            .sender_cooldown(channel, &sender.id)
            .await?
            .is_some_and(|until| until > now)
        {
            Some("sender_cooling_down")
        } else if self
            .store
            .take_rate(
                &RateKey::Sender(channel, &sender.id),
                sender.rate,
                receipt_burst(sender.rate),
            )
            .await?
            > 0
        {
            Some("paced")
        } else {
            None
        };
        if let Some(reason) = skip {
            tracing::debug!(reason, "read receipt dropped");
            return Ok(None);
        }
        let typing = typing
            && self
                .store
                .outbound(&format!("re:{message_id}"))
                .await?
                .is_none_or(|reply| reply.state == OutboundState::Pending);
        let receipt = OutboundMessage {
            channel,
            from: Some(sender.id.clone()),
            to: to.to_string(),
            content: OutboundContent::MarkRead {
                message_id: message_id.to_string(),
                typing,
            },
            human_agent_tag: false,
        };
        Ok(Some(tokio::spawn(async move {
            let _slot = slot;
            match client.send(&receipt).await {
                Ok(_) => count(channel, "sent"),
                Err(e) => tracing::debug!(error = %e, "read receipt not sent"),
            }
        })))
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
        let Some(sender) = self.senders.resolve(msg.channel, msg.from.as_deref()) else {
            let from = msg.from.as_deref().unwrap_or_default();
            tracing::warn!(message = %id, channel = %msg.channel, from, "not sent: the number or account it must go out from is not configured");
            self.fail(
                &record,
                0,
                &format!(
                    "not sent: {} sender {from} is not configured (add it to [[{}]])",
                    msg.channel,
                    match msg.channel {
                        Channel::WhatsApp => "whatsapp.numbers",
                        Channel::Instagram => "instagram.accounts",
                    }
                ),
            )
            .await?;
            return Ok(Verdict::Done);
        };
        let Some(client) = sender.client.clone() else {
            tracing::info!(message = %id, channel = %msg.channel, kind = kind_name(msg), "dry run: no access token, message recorded but not sent");
            tracing::debug!(message = %id, body = %msg.content.summary(), "dry-run body");
            self.advance(id, OutboundState::DryRun, |_| {}).await?;
            count(msg.channel, "dry_run");
            return Ok(Verdict::Done);
        };
        // Checked again at the moment of sending: a STOP or the window closing
        // while the message waited (paced, retried) must win.
        if let OutboundContent::MarkRead { .. } = msg.content {
            // Left in the queue by a version that stored read receipts
            // ([`Outbox::mark_read`] sends them from memory now). Long stale:
            // dropped, and its record (its id holds the customer's message
            // id, so their number) with it.
            self.store.delete_outbound(&record.id).await?;
            return Ok(Verdict::Done);
        }
        if let Some(skip) = self.still_allowed(&record).await? {
            return Ok(skip);
        }
        // Pace: the sender's budget is shared by every process through the store.
        let now = store.now_ms();
        let (sender, rate) = (&sender.id, &sender.rate);
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
        // A campaign message (at most once) leaves the process only once its
        // send-in-progress mark is on disk, so a crash mid-send is known and
        // it is not sent again. A conversation message is sent again after
        // such a crash anyway (silence is worse than a rare duplicate), and a
        // crash that rolled back the turn that queued it redoes the turn,
        // which queues the same message under the same id: a sync here would
        // buy nothing but a commit cycle of latency on every bot answer. See
        // `store::durability`.
        if record.origin.at_most_once() {
            store.sync().await?;
        }
        let attempts = record.attempts + 1;
        let started = std::time::Instant::now();
        // Our stored files become an upload or a link only now, so a retried
        // send uses a fresh link and an upload that failed is retried too.
        let result = match (&self.files, msg.content.attachment_ids().is_empty()) {
            (_, true) => client.send(msg).await,
            (Some(files), false) => match files.prepare(msg).await {
                Ok(ready) => client.send(&ready).await,
                Err(e) => Err(e),
            },
            (None, false) => Err(SendError::Permanent {
                code: crate::channels::media_client::MEDIA_UNUSABLE_CODE,
                title: "this process has no media store to send the file from".into(),
            }),
        };
        metrics::histogram!("balas_outbox_send_seconds", "channel" => msg.channel.as_str())
            .record(started.elapsed().as_secs_f64());
        let retry = match result {
            Ok(receipt) => {
                self.advance(id, OutboundState::Sent, |r| {
                    r.platform_id.clone_from(&receipt.platform_message_id);
                })
                .await?;
                // Durable now, not with a later commit: a crash that rolled
                // the mark back would send a conversation message again.
                store.sync().await?;
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
            let last = contact
                .as_ref()
                .and_then(|c| c.last_inbound_to(msg.from.as_deref()));
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

    /// Each send syncs the store first and once it is recorded.
    fn deferred_durability(&self) -> bool {
        true
    }

    async fn run(&self, job: &Run<String>) -> Verdict {
        match self.deliver(job).await {
            Ok(verdict) => verdict,
            // Nothing was lost: the record says how far it got.
            Err(e) => Verdict::failed(e),
        }
    }
}

/// The burst a read receipt may use of its number's budget: half of what
/// messages may. Meta counts receipts against the number's messages per
/// second, so under load they must not take the slots replies need: a receipt
/// goes out only while at least half the number's burst is unused.
fn receipt_burst(rate: f64) -> u32 {
    (rate.max(1.0) as u32 / 2).max(1)
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
    use crate::channels::client::ChannelClient;
    use crate::channels::{ContactRef, SendReceipt};
    use crate::clock::ManualClock;
    use crate::jobs::{Settings, Worker};
    use crate::store::embedded::EmbeddedBackend;

    /// A channel client that answers from a script and records who it sent to.
    #[derive(Default)]
    struct Scripted {
        sent_to: Mutex<Vec<String>>,
        sent: Mutex<Vec<OutboundContent>>,
        script: Mutex<VecDeque<Result<SendReceipt, SendError>>>,
    }

    #[async_trait::async_trait]
    impl ChannelClient for Scripted {
        async fn send(&self, msg: &OutboundMessage) -> Result<SendReceipt, SendError> {
            self.sent_to.lock().unwrap().push(msg.to.clone());
            self.sent.lock().unwrap().push(msg.content.clone());
            self.script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Ok(SendReceipt {
                    platform_message_id: Some(format!("wamid.{}", msg.to)),
                }))
        }
    }

    /// The WhatsApp customer `who` wrote to the number `number` just now
    /// (their 24-hour window is open).
    async fn customer_wrote(store: &Store, who: &str) {
        let contact = ContactRef {
            external_id: who.into(),
            name: None,
            wa_id: None,
            user_id: None,
        };
        store
            .touch_contact(Channel::WhatsApp, &contact, "number", store.now_ms())
            .await
            .unwrap();
    }

    /// A worker of `outbox` that runs one job at a time.
    fn one_at_a_time(outbox: &Outbox, store: &Store) -> Worker<Outbox> {
        Worker::new(
            Arc::new(outbox.clone()),
            store.clone(),
            Settings::new(1, Duration::from_secs(10), Duration::from_millis(50)),
        )
    }

    fn text_to(to: &str) -> Outgoing {
        Outgoing {
            id: Some(format!("m-{to}")),
            message: OutboundMessage {
                channel: Channel::WhatsApp,
                to: to.into(),
                content: OutboundContent::Text { body: "hi".into() },
                human_agent_tag: false,
                from: None,
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
            customer_wrote(&store, who).await;
        }
        let client = Arc::new(Scripted {
            script: Mutex::new(VecDeque::from([Err(SendError::Retryable {
                code: 130429,
                title: "Rate limit hit".into(),
                scope: Some(RateScope::Sender),
                retry_after: Some(Duration::from_secs(10)),
            })])),
            ..Scripted::default()
        });
        let outbox = Outbox::new(
            store.clone(),
            Bus::new(),
            Senders::new(
                vec![Sender {
                    id: "number".into(),
                    client: Some(client.clone()),
                    rate: 80.0,
                }],
                Vec::new(),
            ),
        );
        let worker = one_at_a_time(&outbox, &store);
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

    /// An outbox over a fresh embedded store at a manual clock, sending from
    /// the number `number` at `rate` messages a second through a scripted
    /// client.
    struct OneNumber {
        _dir: tempfile::TempDir,
        clock: Arc<ManualClock>,
        store: Store,
        client: Arc<Scripted>,
        outbox: Outbox,
    }

    fn one_number(rate: f64) -> OneNumber {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_ms(1_000_000_000));
        let store = Store::new(
            Arc::new(EmbeddedBackend::open(dir.path()).unwrap()),
            clock.clone(),
        );
        let client = Arc::new(Scripted::default());
        let outbox = Outbox::new(
            store.clone(),
            Bus::new(),
            Senders::new(
                vec![Sender {
                    id: "number".into(),
                    client: Some(client.clone()),
                    rate,
                }],
                Vec::new(),
            ),
        );
        OneNumber {
            _dir: dir,
            clock,
            store,
            client,
            outbox,
        }
    }

    /// Read receipts take a sending slot only when one is free (they never
    /// wait, so they never hold a reply back), leave nothing in the store, are
    /// sent once per `once` id, and drop the typing indicator once the answer
    /// left.
    #[tokio::test]
    async fn read_receipts_never_wait_leave_nothing_and_repeat_only_when_asked() {
        // One message per second, no burst: a slot taken is a slot gone.
        let OneNumber {
            _dir,
            clock,
            store,
            client,
            outbox,
        } = one_number(1.0);
        customer_wrote(&store, "a").await;
        let worker = one_at_a_time(&outbox, &store);
        let sent = || client.sent.lock().unwrap().clone();
        let read = |id: &str, typing| OutboundContent::MarkRead {
            message_id: id.into(),
            typing,
        };
        let mark = |message_id: &'static str, once: Option<&'static str>| {
            let outbox = outbox.clone();
            async move {
                let send = outbox
                    .mark_read(None, "a", message_id, true, once)
                    .await
                    .unwrap();
                match send {
                    Some(send) => {
                        send.await.unwrap();
                        true
                    }
                    None => false,
                }
            }
        };

        // A reply took the only slot: the receipt behind it is dropped, not
        // queued behind it.
        outbox.enqueue(text_to("a")).await.unwrap();
        worker.run_once().await.unwrap();
        assert!(!mark("m1", None).await);
        assert_eq!(sent().len(), 1, "only the reply");

        // With a free slot it goes out at once, without a record or a job.
        clock.advance(Duration::from_secs(2));
        assert!(mark("m2", None).await);
        assert_eq!(sent()[1..], [read("m2", true)]);
        let (entries, _) = store.scan_raw("", 1_000).await.unwrap();
        assert!(
            entries.iter().all(|e| !e.key.contains("m2")),
            "nothing stored about it: {:?}",
            entries.iter().map(|e| &e.key).collect::<Vec<_>>()
        );
        assert_eq!(worker.run_once().await.unwrap(), 0, "no job");

        // Under a `once` id, at most once.
        clock.advance(Duration::from_secs(2));
        assert!(mark("m3", Some("typing:m3:1")).await);
        clock.advance(Duration::from_secs(2));
        assert!(!mark("m3", Some("typing:m3:1")).await);
        assert_eq!(sent().len(), 3);

        // The answer already left: read, but no "typing…".
        let mut answer = text_to("a");
        answer.id = Some("re:m4".into());
        outbox.enqueue(answer).await.unwrap();
        worker.run_once().await.unwrap();
        clock.advance(Duration::from_secs(2));
        assert!(mark("m4", None).await);
        assert_eq!(sent().last(), Some(&read("m4", false)));
        assert_eq!(sent().len(), 5);
    }

    /// Meta counts read receipts against the number's messages per second:
    /// a receipt gives way while half the number's burst is in use, so replies
    /// keep the slots they need under load.
    #[tokio::test]
    async fn read_receipts_leave_half_the_burst_to_replies() {
        let OneNumber {
            _dir,
            store,
            client,
            outbox,
            ..
        } = one_number(4.0);
        let key = RateKey::Sender(Channel::WhatsApp, "number");
        let receipt = || outbox.mark_read(None, "a", "m", false, None);
        // One of four slots in use: the receipt takes the second.
        assert_eq!(store.take_rate(&key, 4.0, 4).await.unwrap(), 0);
        receipt().await.unwrap().expect("sent").await.unwrap();
        // Two in use: it gives way, and the replies still have two.
        assert!(receipt().await.unwrap().is_none());
        assert_eq!(store.take_rate(&key, 4.0, 4).await.unwrap(), 0);
        assert_eq!(store.take_rate(&key, 4.0, 4).await.unwrap(), 0);
        assert!(
            store.take_rate(&key, 4.0, 4).await.unwrap() > 0,
            "all four used"
        );
        assert_eq!(client.sent.lock().unwrap().len(), 1);
    }

    /// A read receipt stored as a record and a job (as older versions did)
    /// is dropped when its turn comes, record and all: long stale by then.
    #[tokio::test]
    async fn a_stored_read_receipt_is_dropped_not_sent() {
        let OneNumber {
            _dir,
            store,
            client,
            outbox,
            ..
        } = one_number(1.0);
        customer_wrote(&store, "a").await;
        let mut receipt = text_to("a");
        receipt.id = Some("read:m1".into());
        receipt.message.content = OutboundContent::MarkRead {
            message_id: "m1".into(),
            typing: true,
        };
        outbox.enqueue(receipt).await.unwrap();
        assert!(store.outbound("read:m1").await.unwrap().is_some());
        let worker = one_at_a_time(&outbox, &store);
        while worker.run_once().await.unwrap() > 0 {}
        assert!(client.sent.lock().unwrap().is_empty());
        assert!(store.outbound("read:m1").await.unwrap().is_none());
    }
}
