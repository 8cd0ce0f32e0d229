//! Broadcast campaigns: scheduled, segmented, paced, never sent twice.
//!
//! A broadcast is created with its audience validated (bad rows are refused
//! with line numbers) and stored in chunks. At `send_at` a start job freezes the
//! audience (segments are resolved then) and chunk jobs walk it: each recipient
//! is checked (opted out, window, marketing opt-out) and handed to the outbox
//! with the id `bc:<broadcast>:<recipient>`, so re-running a chunk after a crash
//! cannot send anything twice. Chunk jobs pace themselves at the broadcast's
//! rate through the store's shared limiter, defer quiet hours, and save a cursor
//! so pause/resume and restarts continue where they stopped. Per-state counts
//! come from counters the store keeps as records move (sent → delivered → read).

pub mod audience;
pub mod erasure;
pub mod intake;
mod segment;
pub mod templates;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::channels::{Button, Channel, OutboundContent, OutboundMessage};
use crate::config::{ClockRange, Config};
use crate::events::{Event, Reaction, Subscriber};
use crate::jobs::{Handler, Run, Verdict};
use crate::outbox::{Outbox, OutboxError, Outgoing, window};
use crate::store::{
    ConversationError, Origin, OutboundRecord, OutboundState, RateKey, Store, StoreError,
    StoreResult, queues,
};
use audience::{Recipient, Segment};

/// The handles broadcasts work with; cheap to clone.
#[derive(Clone)]
pub struct Broadcasts {
    config: Arc<Config>,
    store: Store,
    outbox: Outbox,
}

impl Broadcasts {
    /// Broadcasts over these handles.
    pub fn new(config: Arc<Config>, store: Store, outbox: Outbox) -> Self {
        Self {
            config,
            store,
            outbox,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}

/// Recipients per stored chunk (and per chunk job).
pub const CHUNK: usize = 500;

/// A walking broadcast notices a pause or cancel within this long.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long one walk job runs before it reschedules itself.
const WALK_SLICE: Duration = Duration::from_secs(2);

/// The message of a broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BroadcastMessage {
    /// An approved WhatsApp template (required outside the 24-hour window).
    Template {
        /// The template.
        template: TemplateSpec,
    },
    /// Free text with optional buttons (only to recipients inside the window).
    Text {
        /// The text, with `{{variable}}` placeholders.
        text: String,
        /// Reply buttons.
        #[serde(default)]
        buttons: Vec<Button>,
    },
}

/// A template reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Template name.
    pub name: String,
    /// Language code of the approved translation.
    #[serde(default = "default_language")]
    pub language: String,
    /// Body parameters, each may contain `{{variable}}` placeholders.
    #[serde(default)]
    pub body_parameters: Vec<String>,
}

fn default_language() -> String {
    "id".into()
}

impl BroadcastMessage {
    /// Placeholder names recipients must provide.
    pub fn placeholders(&self) -> Vec<String> {
        match self {
            BroadcastMessage::Template { template } => {
                let mut all = Vec::new();
                for p in &template.body_parameters {
                    for name in audience::placeholders(p) {
                        if !all.contains(&name) {
                            all.push(name);
                        }
                    }
                }
                all
            }
            BroadcastMessage::Text { text, .. } => audience::placeholders(text),
        }
    }

    /// The content for one recipient.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> OutboundContent {
        match self {
            BroadcastMessage::Template { template } => OutboundContent::Template {
                name: template.name.clone(),
                language: template.language.clone(),
                body_parameters: template
                    .body_parameters
                    .iter()
                    .map(|p| audience::fill(p, vars))
                    .collect(),
                quick_reply_payloads: Vec::new(),
            },
            BroadcastMessage::Text { text, buttons } if buttons.is_empty() => {
                OutboundContent::Text {
                    body: audience::fill(text, vars),
                }
            }
            BroadcastMessage::Text { text, buttons } => OutboundContent::Buttons {
                body: audience::fill(text, vars),
                buttons: buttons.clone(),
                header: None,
                footer: None,
            },
        }
    }
}

/// Lifecycle of a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for `send_at`.
    Scheduled,
    /// Handing recipients to the outbox.
    Running,
    /// Stopped by a marketer; resume continues where it stopped.
    Paused,
    /// Stopped for good.
    Cancelled,
    /// Every recipient was handed to the outbox (deliveries may still be arriving).
    Completed,
}

/// A broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Channel.
    pub channel: Channel,
    /// What to send.
    pub message: BroadcastMessage,
    /// A segment to resolve when it starts (explicit recipients are stored already).
    #[serde(default)]
    pub segment: Option<Segment>,
    /// When to start, Unix ms.
    pub send_at_ms: i64,
    /// Messages per second.
    pub rate_per_sec: f64,
    /// The number (WhatsApp `phone_number_id`) or account it goes out from;
    /// `None` = the channel's default sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Lifecycle.
    pub status: Status,
    /// Recipients frozen so far.
    pub total: u64,
    /// Duplicates removed when the audience was built.
    pub duplicates_removed: u64,
    /// Stored chunks of recipients.
    pub chunks: u64,
    /// Next chunk to walk, and the position inside it.
    pub cursor: (u64, u64),
    /// Who created it.
    pub created_by: String,
    /// Created at.
    pub created_ms: i64,
    /// Started at.
    #[serde(default)]
    pub started_ms: Option<i64>,
    /// Finished handing over (or cancelled) at.
    #[serde(default)]
    pub finished_ms: Option<i64>,
    /// Raised by every resume. Jobs carry the epoch they were scheduled in
    /// and stop when it is no longer current, so a resume always schedules a
    /// job of its own instead of relying on one that a pause is ending.
    #[serde(default)]
    pub epoch: u64,
}

/// A broadcast job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum BroadcastJob {
    /// Freeze the audience and begin.
    Start {
        /// Broadcast id.
        id: String,
        /// The broadcast's epoch when scheduled.
        #[serde(default)]
        epoch: u64,
    },
    /// Walk from the saved cursor.
    Walk {
        /// Broadcast id.
        id: String,
        /// The broadcast's epoch when scheduled.
        #[serde(default)]
        epoch: u64,
    },
}

/// The outbox record id of a recipient.
pub fn record_id(broadcast: &str, to: &str) -> String {
    crate::store::broadcast_record_id(broadcast, to)
}

/// The origin (and counter group) of a broadcast's records.
pub fn origin(broadcast: &str) -> Origin {
    Origin::Broadcast(broadcast.to_string())
}

/// Reads a broadcast.
pub async fn get(broadcasts: &Broadcasts, id: &str) -> StoreResult<Option<Broadcast>> {
    broadcasts.store().broadcast(id).await
}

/// Every broadcast, newest first.
pub async fn list(broadcasts: &Broadcasts) -> StoreResult<Vec<Broadcast>> {
    broadcasts.store().broadcasts().await
}

/// Changes a broadcast atomically when `change` returns true.
pub async fn update(
    broadcasts: &Broadcasts,
    id: &str,
    change: impl FnMut(&mut Broadcast) -> bool,
) -> StoreResult<Option<Broadcast>> {
    broadcasts.store().update_broadcast(id, change).await
}

/// Stores recipients in chunks after the ones already stored; returns how
/// many chunks were added.
pub async fn append_recipients(
    broadcasts: &Broadcasts,
    id: &str,
    recipients: &[Recipient],
) -> StoreResult<u64> {
    let mut chunks = 0;
    for chunk in recipients.chunks(CHUNK) {
        append_chunk(broadcasts, id, chunk).await?;
        chunks += 1;
    }
    Ok(chunks)
}

/// Stores one chunk (at most [`CHUNK`] recipients) after the ones already stored.
pub async fn append_chunk(
    broadcasts: &Broadcasts,
    id: &str,
    chunk: &[Recipient],
) -> StoreResult<()> {
    let bytes = serde_json::to_vec(chunk).map_err(|e| StoreError::Corrupt {
        key: format!("broadcast {id} recipients"),
        reason: e.to_string(),
    })?;
    broadcasts
        .store()
        .append_broadcast_chunk(id, &bytes)
        .await?;
    Ok(())
}

/// The recipients of stored chunk `index` (empty past the end).
pub async fn chunk(broadcasts: &Broadcasts, id: &str, index: u64) -> StoreResult<Vec<Recipient>> {
    match broadcasts.store().broadcast_chunk(id, index).await? {
        None => Ok(Vec::new()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            key: format!("broadcast {id} recipients chunk {index}"),
            reason: e.to_string(),
        }),
    }
}

/// How many recipient chunks are stored.
pub async fn chunk_count(broadcasts: &Broadcasts, id: &str) -> StoreResult<u64> {
    broadcasts.store().broadcast_chunk_count(id).await
}

/// Saves a new broadcast whose explicit recipients are stored already
/// ([`intake::take_in`] or [`append_recipients`], counted in `total` and
/// `chunks`) and schedules its start.
pub async fn create(broadcasts: &Broadcasts, b: Broadcast) -> StoreResult<Broadcast> {
    broadcasts
        .store()
        .create_broadcast(&b.id, b.created_ms, &b)
        .await?;
    schedule(
        broadcasts,
        &BroadcastJob::Start {
            id: b.id.clone(),
            epoch: b.epoch,
        },
        b.send_at_ms,
    )
    .await?;
    Ok(b)
}

async fn schedule(broadcasts: &Broadcasts, job: &BroadcastJob, due_ms: i64) -> StoreResult<bool> {
    let id = match job {
        BroadcastJob::Start { id, epoch } => format!("{id}:start:{epoch}"),
        BroadcastJob::Walk { id, epoch } => format!("{id}:walk:{epoch}"),
    };
    broadcasts
        .store()
        .schedule(queues::BROADCAST, &id, due_ms, job, None)
        .await
}

/// Resumes a paused broadcast.
pub async fn resume(broadcasts: &Broadcasts, id: &str) -> StoreResult<Option<Broadcast>> {
    let resumed = update(broadcasts, id, |b| {
        if b.status != Status::Paused {
            return false;
        }
        b.status = if b.started_ms.is_some() {
            Status::Running
        } else {
            Status::Scheduled
        };
        b.epoch += 1;
        true
    })
    .await?;
    if let Some(b) = &resumed {
        let (id, epoch) = (id.to_string(), b.epoch);
        let job = if b.started_ms.is_some() {
            BroadcastJob::Walk { id, epoch }
        } else {
            BroadcastJob::Start { id, epoch }
        };
        schedule(
            broadcasts,
            &job,
            broadcasts.store().now_ms().max(if b.started_ms.is_some() {
                0
            } else {
                b.send_at_ms
            }),
        )
        .await?;
    }
    Ok(resumed)
}

/// Counts for the API: total, pending, sent, delivered, read, failed, skipped.
pub async fn counts(broadcasts: &Broadcasts, b: &Broadcast) -> StoreResult<serde_json::Value> {
    let by_state: BTreeMap<&str, i64> = broadcasts
        .store()
        .outbound_counts(&origin(&b.id).to_string())
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str(), n.max(0)))
        .collect();
    let get = |s: &str| by_state.get(s).copied().unwrap_or(0);
    let done = get("sent")
        + get("delivered")
        + get("read")
        + get("failed")
        + get("skipped")
        + get("dry_run");
    let not_sent = (b.total as i64 - done).max(0);
    let (pending, cancelled) = if b.status == Status::Cancelled {
        (
            get("pending").min(not_sent),
            not_sent - get("pending").min(not_sent),
        )
    } else {
        (not_sent, 0)
    };
    Ok(serde_json::json!({
        "total": b.total,
        "pending": pending,
        "sent": get("sent"),
        "delivered": get("delivered"),
        "read": get("read"),
        "failed": get("failed"),
        "skipped": get("skipped"),
        "dry_run": get("dry_run"),
        "cancelled": cancelled,
    }))
}

/// Reasons of skipped and failed recipients with their counts.
pub async fn reasons(broadcasts: &Broadcasts, id: &str) -> StoreResult<serde_json::Value> {
    let store = broadcasts.store();
    let as_map = |v: Vec<(String, i64)>| v.into_iter().collect::<BTreeMap<String, i64>>();
    Ok(serde_json::json!({
        "skipped": as_map(store.broadcast_reasons(id, "skipped").await?),
        "failed": as_map(store.broadcast_reasons(id, "failed").await?),
    }))
}

/// Counts why broadcast recipients failed or were skipped at the moment of
/// sending, whichever way the outbox learned it (a refused send, a failed
/// status webhook, an opt-out that arrived while the message waited).
pub struct BroadcastEvents {
    store: Store,
}

impl BroadcastEvents {
    /// The subscriber over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait::async_trait]
impl Subscriber for BroadcastEvents {
    async fn on_event(&self, event: &Event) -> Result<Reaction, ConversationError> {
        if let Event::Delivery(record) = event
            && let Some(id) = record.origin.broadcast()
        {
            match record.state {
                OutboundState::Failed => {
                    let reason = record
                        .error_code
                        .map_or_else(|| "unknown".to_string(), |c| c.to_string());
                    self.store
                        .count_broadcast_reason(id, "failed", &reason)
                        .await?;
                }
                OutboundState::Skipped => {
                    let reason = record.error_title.as_deref().unwrap_or("unknown");
                    self.store
                        .count_broadcast_reason(id, "skipped", reason)
                        .await?;
                }
                _ => {}
            }
        }
        Ok(Reaction::Noted)
    }
}

/// Handles the `broadcast` queue: starting broadcasts and walking their
/// recipients.
pub struct BroadcastHandler {
    broadcasts: Broadcasts,
}

impl BroadcastHandler {
    /// The handler over `broadcasts`.
    pub fn new(broadcasts: Broadcasts) -> Self {
        Self { broadcasts }
    }
}

#[async_trait::async_trait]
impl Handler for BroadcastHandler {
    type Payload = BroadcastJob;

    fn queue(&self) -> &'static str {
        queues::BROADCAST
    }

    /// A walk hands recipients to the outbox one after another; what it
    /// writes leaves the process only through the outbox, which syncs before
    /// it sends a campaign message, so a crash takes the walk back to its
    /// last durable cursor and it hands the same recipients over again under
    /// the same ids. Without it each hand-over waited for a shared fsync
    /// (up to 5 ms under load), halving the sending rate.
    fn deferred_durability(&self) -> bool {
        true
    }

    async fn run(&self, job: &Run<BroadcastJob>) -> Verdict {
        let result = match &job.payload {
            BroadcastJob::Start { id, epoch } => start(&self.broadcasts, id, *epoch).await,
            BroadcastJob::Walk { id, epoch } => walk(&self.broadcasts, id, *epoch, job).await,
        };
        match result {
            Ok(None) => Verdict::Done,
            Ok(Some(due)) => Verdict::Later(due),
            Err(e) => Verdict::failed(e),
        }
    }
}

/// Freezes the audience and begins walking. `Some(due)` reschedules the job.
async fn start(broadcasts: &Broadcasts, id: &str, epoch: u64) -> StoreResult<Option<i64>> {
    let Some(b) = get(broadcasts, id).await? else {
        return Ok(None);
    };
    if b.status != Status::Scheduled || b.epoch != epoch {
        return Ok(None);
    }
    if let Some(segment) = &b.segment
        && b.started_ms.is_none()
    {
        let recipients = segment::resolve(
            broadcasts,
            b.channel,
            b.from.as_deref().filter(|f| !f.is_empty()),
            segment,
            &b.message,
        )
        .await?;
        let already = b.total;
        let chunks = append_recipients(broadcasts, id, &recipients).await?;
        update(broadcasts, id, |x| {
            x.total = already + recipients.len() as u64;
            x.chunks += chunks;
            true
        })
        .await?;
    }
    let now = broadcasts.store().now_ms();
    let started = update(broadcasts, id, |x| {
        if x.status != Status::Scheduled || x.epoch != epoch {
            return false;
        }
        x.status = Status::Running;
        x.started_ms = Some(now);
        true
    })
    .await?;
    if started.is_some() {
        tracing::info!(broadcast = %id, "broadcast started");
        let walk = BroadcastJob::Walk {
            id: id.to_string(),
            epoch,
        };
        schedule(broadcasts, &walk, now).await?;
    }
    Ok(None)
}

/// When `now` is inside quiet hours, the end of them.
pub fn quiet_until(quiet: Option<ClockRange>, tz: &jiff::tz::TimeZone, now_ms: i64) -> Option<i64> {
    let range = quiet?;
    let local = jiff::Timestamp::from_millisecond(now_ms)
        .ok()?
        .to_zoned(tz.clone());
    let minute = local.hour() as u16 * 60 + local.minute() as u16;
    let inside = if range.crosses_midnight() {
        minute >= range.start_min || minute < range.end_min
    } else {
        minute >= range.start_min && minute < range.end_min
    };
    if !inside {
        return None;
    }
    let end_day = if range.crosses_midnight() && minute >= range.start_min {
        local.date().tomorrow().ok()?
    } else {
        local.date()
    };
    let end = end_day
        .at(
            (range.end_min / 60) as i8 % 24,
            (range.end_min % 60) as i8,
            0,
            0,
        )
        .to_zoned(tz.clone())
        .ok()?;
    Some(end.timestamp().as_millisecond())
}

/// Walks recipients from the cursor at the broadcast's pace. `Some(due)`
/// reschedules the walk (paced, quiet hours); `None` means finished or stopped.
async fn walk(
    broadcasts: &Broadcasts,
    id: &str,
    epoch: u64,
    job: &Run<BroadcastJob>,
) -> StoreResult<Option<i64>> {
    let store = broadcasts.store();
    let Some(b) = get(broadcasts, id).await? else {
        return Ok(None);
    };
    if b.status != Status::Running || b.epoch != epoch {
        return Ok(None);
    }
    let cfg = &broadcasts.config().broadcast;
    let quiet = (!cfg.quiet_hours.trim().is_empty())
        .then(|| ClockRange::parse(&cfg.quiet_hours).ok())
        .flatten();
    // A walk runs for a slice and then reschedules itself, so several
    // broadcasts take turns and a shutdown never waits long.
    let deadline = std::time::Instant::now() + WALK_SLICE;
    let (mut index, mut offset) = b.cursor;
    let mut since_save = 0;
    let mut last_check = std::time::Instant::now();
    // A tenth of a second of burst: a new broadcast does not open with a spike.
    let burst = (b.rate_per_sec / 10.0).clamp(1.0, 100.0) as u32;
    let outcome = 'walk: loop {
        if index >= b.chunks {
            break 'walk None;
        }
        let recipients = chunk(broadcasts, id, index).await?;
        while (offset as usize) < recipients.len() {
            let now = store.now_ms();
            if let Some(until) = quiet_until(quiet, cfg.timezone.zone(), now) {
                break 'walk Some(until);
            }
            let wait = store
                .take_rate(&RateKey::Broadcast(id), b.rate_per_sec, burst)
                .await?;
            if wait > 0 {
                if wait < 50 && std::time::Instant::now() + Duration::from_millis(wait) < deadline {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    continue;
                }
                break 'walk Some(now + wait as i64);
            }
            if job.lease_lost() {
                // Another process walks this broadcast now.
                return Ok(None);
            }
            hand_over(broadcasts, &b, &recipients[offset as usize]).await?;
            offset += 1;
            since_save += 1;
            // Save the cursor and look for a pause or cancel every 200
            // recipients, and at least every 250 ms so a slow broadcast stops
            // promptly when asked.
            if since_save >= 200 || last_check.elapsed() >= CHECK_EVERY {
                since_save = 0;
                last_check = std::time::Instant::now();
                let fresh = save_cursor(broadcasts, id, (index, offset)).await?;
                if fresh.is_none_or(|x| x.status != Status::Running || x.epoch != epoch) {
                    break 'walk None;
                }
                if std::time::Instant::now() > deadline {
                    break 'walk Some(store.now_ms());
                }
            }
        }
        index += 1;
        offset = 0;
    };
    save_cursor(broadcasts, id, (index, offset)).await?;
    if outcome.is_none() && index >= b.chunks {
        let now = store.now_ms();
        update(broadcasts, id, |x| {
            if x.status != Status::Running {
                return false;
            }
            x.status = Status::Completed;
            x.finished_ms = Some(now);
            true
        })
        .await?;
        tracing::info!(broadcast = %id, "broadcast handed every recipient to the outbox");
    }
    Ok(outcome)
}

async fn save_cursor(
    broadcasts: &Broadcasts,
    id: &str,
    cursor: (u64, u64),
) -> StoreResult<Option<Broadcast>> {
    update(broadcasts, id, |x| {
        // Never move backwards (a slow, superseded walker must not undo progress).
        if cursor <= x.cursor {
            return false;
        }
        x.cursor = cursor;
        true
    })
    .await?;
    get(broadcasts, id).await
}

/// Checks one recipient and hands the message to the outbox (idempotently).
async fn hand_over(broadcasts: &Broadcasts, b: &Broadcast, r: &Recipient) -> StoreResult<()> {
    if erasure::is_forgotten(r) {
        return Ok(());
    }
    let store = broadcasts.store();
    let rid = record_id(&b.id, &r.to);
    // Handed over before. A record still pending may have been stored by a
    // process that died before scheduling its send: go on, the steps below are
    // idempotent and schedule it.
    if store
        .outbound(&rid)
        .await?
        .is_some_and(|x| x.state != OutboundState::Pending)
    {
        return Ok(());
    }
    let contact = store.contact(b.channel, &r.to).await?;
    let content = b.message.render(&r.variables);
    let is_template = matches!(content, OutboundContent::Template { .. });
    let skip_reason = if contact.as_ref().is_some_and(|c| c.opted_out) {
        Some("opted_out")
    } else if is_template && contact.as_ref().is_some_and(|c| c.marketing_opt_out) {
        Some("marketing_opt_out")
    } else {
        let last = contact
            .as_ref()
            .and_then(|c| c.last_inbound_to(b.from.as_deref()));
        match window::check(b.channel, &content, false, last, store.now_ms()) {
            Ok(_) => None,
            Err(_) => Some("outside_window"),
        }
    };
    let message = OutboundMessage {
        channel: b.channel,
        to: r.to.clone(),
        content,
        human_agent_tag: false,
        from: b.from.clone(),
    };
    if let Some(reason) = skip_reason {
        let now = store.now_ms();
        let record = OutboundRecord::pending(rid.clone(), message, None, origin(&b.id), now);
        store.create_outbound(&record).await?;
        let skipped = store
            .advance_outbound(&rid, OutboundState::Skipped, |x| {
                x.error_title = Some(reason.to_string())
            })
            .await?;
        if skipped.is_some() {
            store
                .count_broadcast_reason(&b.id, "skipped", reason)
                .await?;
        }
        return Ok(());
    }
    match broadcasts
        .outbox()
        .enqueue(Outgoing {
            id: Some(rid),
            message,
            conversation_id: None,
            speaker: None,
            origin: origin(&b.id),
            by_human: false,
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(OutboxError::Store(e)) => Err(e),
        // Checked above; a race with the window closing lands here.
        Err(OutboxError::Window(_)) => {
            broadcasts
                .store()
                .count_broadcast_reason(&b.id, "skipped", "outside_window")
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jkt_ms(s: &str) -> i64 {
        format!("{s}[Asia/Jakarta]")
            .parse::<jiff::Zoned>()
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn quiet_hours_defer_to_their_end() {
        let tz = jiff::tz::TimeZone::get("Asia/Jakarta").unwrap();
        let q = Some(ClockRange::parse("21:00-08:00").unwrap());
        assert_eq!(quiet_until(q, &tz, jkt_ms("2026-11-23T20:59")), None);
        assert_eq!(
            quiet_until(q, &tz, jkt_ms("2026-11-23T21:00")),
            Some(jkt_ms("2026-11-24T08:00"))
        );
        assert_eq!(
            quiet_until(q, &tz, jkt_ms("2026-11-24T03:00")),
            Some(jkt_ms("2026-11-24T08:00"))
        );
        assert_eq!(quiet_until(q, &tz, jkt_ms("2026-11-24T08:00")), None);
        assert_eq!(quiet_until(None, &tz, jkt_ms("2026-11-24T03:00")), None);
        let day = Some(ClockRange::parse("12:00-13:00").unwrap());
        assert_eq!(
            quiet_until(day, &tz, jkt_ms("2026-11-24T12:30")),
            Some(jkt_ms("2026-11-24T13:00"))
        );
    }

    #[test]
    fn messages_render_per_recipient() {
        let vars = BTreeMap::from([("name".to_string(), "Rina".to_string())]);
        let t = BroadcastMessage::Template {
            template: TemplateSpec {
                name: "promo".into(),
                language: "id".into(),
                body_parameters: vec!["{{name}}".into(), "DISKON10".into()],
            },
        };
        assert_eq!(t.placeholders(), ["name"]);
        match t.render(&vars) {
            OutboundContent::Template {
                body_parameters, ..
            } => assert_eq!(body_parameters, ["Rina", "DISKON10"]),
            other => panic!("{other:?}"),
        }
        let m: BroadcastMessage =
            serde_json::from_value(serde_json::json!({"text": "Hai {{name}}"})).unwrap();
        assert_eq!(
            m.render(&vars),
            OutboundContent::Text {
                body: "Hai Rina".into()
            }
        );
    }
}
