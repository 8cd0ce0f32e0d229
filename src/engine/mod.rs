//! The conversation engine: what happens to each inbound event.
//!
//! Workers ([`worker`]) feed it events from the inbound job queue. For a customer
//! message it opens or continues the contact's case and, depending on who owns
//! the case (see [`crate::conversation`]), asks the intent rules and acts on the
//! answer, keeps a waiting customer informed, or just records the message for
//! the agent. When the rules are unsure it asks a clarifying question with
//! buttons and reads the next message as its answer ([`clarify`]); numbers
//! the customer gives are kept on the case. Everything it says goes through the outbox with ids derived from
//! the inbound message, so reprocessing an event after a crash never messages
//! the customer twice. It holds a per-contact lock while it works, so one
//! contact's messages are handled one at a time across processes.

pub mod anger;
pub mod assignment;
pub mod business_hours;
pub mod clarify;
pub mod lifecycle;
mod live;
mod media;
pub mod messages;
pub mod ownership;
pub mod presence;
pub mod receipts;
pub mod render;
#[cfg(test)]
mod tests;
pub mod timers;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

pub use business_hours::BusinessHours;
pub use live::LiveDelivery;

use crate::attachments::{Files, LibraryFile};
use crate::channels::{
    Button, Channel, EventKind, InboundEvent, InboundMessage, MessageContent, OutboundContent,
    OutboundMedia, OutboundMediaSource, OutboundMessage,
};
use crate::config::Config;
use crate::conversation::{Conversation, State, Transition};
use crate::events::{Bus, Event, Reaction};
use crate::intents::{
    Action, ClarifyKind, Decision, Entity, Intent, KEEP_SUBSCRIBED_PAYLOAD, Lang, MatchContext,
    Question, RuleHandle, RuleSet, detect_language,
};
use crate::outbox::{Outbox, OutboxError, Outgoing, StatusOutcome};
use crate::store::{
    Contact, ConversationError, Speaker, Store, StoreError, SystemEvent, TranscriptEntry,
};
use messages::Texts;

/// The handles the engine works with; cheap to clone. The surveys on top of
/// it use the same handles.
#[derive(Clone)]
pub struct Engine(Arc<Parts>);

struct Parts {
    config: Arc<Config>,
    store: Store,
    outbox: Outbox,
    rules: RuleHandle,
    hours: BusinessHours,
    bus: Bus,
    files: Files,
}

impl Engine {
    /// The engine over these handles.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        outbox: Outbox,
        rules: RuleHandle,
        bus: Bus,
        files: Files,
    ) -> Engine {
        Engine(Arc::new(Parts {
            hours: BusinessHours::from_config(&config.business_hours),
            config,
            store,
            outbox,
            rules,
            bus,
            files,
        }))
    }

    /// Files in conversations (customers' downloads, ours to send).
    pub fn files(&self) -> &Files {
        &self.0.files
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The outbox: the only way anything is sent.
    pub fn outbox(&self) -> &Outbox {
        &self.0.outbox
    }

    /// The intent rules (hot-reloadable).
    pub fn rules(&self) -> &RuleHandle {
        &self.0.rules
    }

    /// Business hours.
    pub fn hours(&self) -> &BusinessHours {
        &self.0.hours
    }

    /// Where the engine's events go.
    pub fn bus(&self) -> &Bus {
        &self.0.bus
    }
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled; acknowledge the job.
    Done,
    /// Another worker holds this contact; try again shortly.
    Busy,
    /// Not possible yet (a status for a message whose send is still being
    /// recorded); try again after the delay.
    RetryLater(Duration),
}

/// Engine errors; the job is retried.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A conversation operation failed.
    #[error(transparent)]
    Conversation(#[from] ConversationError),
}

/// The language code stored on conversations.
pub fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "en",
        _ => "id",
    }
}

/// The language of a stored code.
pub fn lang_from_code(code: &str) -> Lang {
    if code == "en" { Lang::En } else { Lang::Id }
}

/// Handles one inbound event.
pub async fn handle_event(engine: &Engine, event: &InboundEvent) -> Result<Outcome, EngineError> {
    match &event.kind {
        EventKind::Message(msg) => {
            // The owner is the event, not this process: when the event runs
            // again after a crash (here or in another process) it takes its
            // own lock back at once instead of waiting for it to expire. The
            // lock outlives any normal turn; it only matters while one runs.
            let (who, owner) = (&msg.contact.external_id, &event.dedupe_key);
            let ttl = engine.config().workers.lease.get() * 3;
            if !engine
                .store()
                .lock_contact(event.channel, who, owner, ttl)
                .await?
            {
                return Ok(Outcome::Busy);
            }
            let result = handle_message(engine, event, msg).await;
            if let Err(e) = engine
                .store()
                .unlock_contact(event.channel, who, owner)
                .await
            {
                tracing::warn!(error = %e, "could not release a contact lock; it expires by itself");
            }
            result.map(|()| Outcome::Done)
        }
        // The outbox publishes the change; consoles, broadcasts and surveys
        // subscribe.
        EventKind::Status(status) => match engine.outbox().apply_status(status).await? {
            StatusOutcome::Advanced(_) | StatusOutcome::Stale => Ok(Outcome::Done),
            // The send response may not be stored yet (FACTS.md §9).
            StatusOutcome::Unknown => Ok(Outcome::RetryLater(Duration::from_secs(2))),
        },
        EventKind::Echo {
            contact,
            message_id,
            text,
        } => {
            // Our own sends come back as echoes; one we do not know was typed by a
            // person in Instagram's own inbox. Record it for the agents.
            if engine
                .store()
                .outbound_by_platform_id(message_id)
                .await?
                .is_none()
                && let Some(c) = engine
                    .store()
                    .contact(event.channel, &contact.external_id)
                    .await?
                && let Some(conv_id) = &c.current_case
            {
                engine
                    .store()
                    .append_transcript(
                        conv_id,
                        &TranscriptEntry {
                            at_ms: engine.store().now_ms(),
                            speaker: Speaker::Agent {
                                id: "instagram-inbox".into(),
                            },
                            text: text.clone().unwrap_or_else(|| "[message]".into()),
                            message_id: Some(message_id.clone()),
                            attachments: Vec::new(),
                            event: None,
                        },
                    )
                    .await?;
            }
            Ok(Outcome::Done)
        }
        EventKind::Read { message_id, .. } => {
            if !message_id.is_empty() {
                let status = crate::channels::DeliveryStatus {
                    message_id: message_id.clone(),
                    state: crate::channels::DeliveryState::Read,
                    recipient_id: String::new(),
                    error_code: None,
                    error_title: None,
                };
                engine.outbox().apply_status(&status).await?;
            }
            Ok(Outcome::Done)
        }
        EventKind::Reaction {
            contact,
            message_id,
            emoji,
        } => {
            note_on_current_case(
                engine,
                event.channel,
                &contact.external_id,
                SystemEvent::Reaction {
                    emoji: emoji.clone(),
                    message_id: message_id.clone(),
                },
            )
            .await?;
            Ok(Outcome::Done)
        }
        EventKind::Deleted {
            contact,
            message_id,
        } => {
            note_on_current_case(
                engine,
                event.channel,
                &contact.external_id,
                SystemEvent::Deleted {
                    message_id: message_id.clone(),
                },
            )
            .await?;
            Ok(Outcome::Done)
        }
        EventKind::PlatformError { code, title } => {
            tracing::error!(channel = %event.channel, code, %title, "platform reported an error");
            Ok(Outcome::Done)
        }
        EventKind::Unsupported { what, .. } => {
            tracing::info!(channel = %event.channel, %what, "ignored an unsupported webhook item");
            Ok(Outcome::Done)
        }
    }
}

async fn note_on_current_case(
    engine: &Engine,
    channel: Channel,
    contact_id: &str,
    event: SystemEvent,
) -> Result<(), EngineError> {
    if let Some(c) = engine.store().contact(channel, contact_id).await?
        && let Some(conv_id) = &c.current_case
    {
        engine.store().system_line(conv_id, event).await?;
    }
    Ok(())
}

/// Everything about one turn of a customer message, for building replies.
struct Turn<'a> {
    engine: &'a Engine,
    channel: Channel,
    msg: &'a InboundMessage,
    contact: Contact,
    conv: Conversation,
    lang: Lang,
    /// Replies produced this turn, sent as one message (pair-rate friendly).
    replies: Vec<String>,
    buttons: Vec<Button>,
    intent: Option<String>,
    /// Configured files sent after the replies (`[intents.attachments]`).
    files: Vec<LibraryFile>,
    /// What the customer sent, as a word (`{{media.kind}}`), for a file.
    media_word: Option<&'static str>,
    /// For a request for a person: the topic it is about (`case.topic`, and
    /// the queue when the topic has one).
    topic: Option<Intent>,
}

/// What a customer message leads to.
enum Next {
    /// Act on this intent.
    Intent {
        /// The intent.
        intent: Box<Intent>,
        /// For a request for a person: the topic it is about.
        topic: Option<Box<Intent>>,
    },
    /// Ask which was meant.
    Ask {
        /// The question and its buttons.
        question: Question,
        /// Whether it confirms an opt-out.
        confirms_opt_out: bool,
    },
    /// "No" to an opt-out confirmation: nothing changes.
    StaySubscribed,
    /// A tapped button that names nothing we know (any more).
    Stale,
    /// Not understood: the fallback.
    Fallback,
}

/// Reads a message against the rules and the question the case has open:
/// a tapped button or a typed answer to that question picks its choice; any
/// other text is understood afresh. Also returns the numbers found in it.
fn next_step(
    rules: &RuleSet,
    conv: &Conversation,
    content: &MessageContent,
    lang: Lang,
    ctx: &MatchContext,
    now_ms: i64,
) -> (Next, Vec<Entity>) {
    let pending = clarify::pending(conv, now_ms);
    let text = content.text();
    let picked = match content {
        MessageContent::Reply { payload, .. } => Some(payload.as_str()),
        _ => pending
            .zip(text)
            .and_then(|(q, t)| clarify::by_text(q, t))
            .map(|c| c.payload.as_str()),
    };
    if let Some(payload) = picked {
        if payload.trim() == KEEP_SUBSCRIBED_PAYLOAD {
            let asked = pending.is_some_and(|q| clarify::by_payload(q, payload).is_some());
            return (
                if asked {
                    Next::StaySubscribed
                } else {
                    Next::Stale
                },
                Vec::new(),
            );
        }
        if let Some(intent) = rules.by_payload(payload) {
            return (
                Next::Intent {
                    intent: Box::new(intent.clone()),
                    topic: None,
                },
                Vec::new(),
            );
        }
        if !matches!(content, MessageContent::Reply { .. }) {
            // Typed answer to a choice whose intent was removed by a reload.
            return (Next::Stale, Vec::new());
        }
    }
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return (Next::Fallback, Vec::new());
    };
    // A payload we do not know may still carry a meaningful title (a
    // broadcast's quick reply): understood like typed text.
    let understanding = rules.understand(text, ctx);
    let next = match &understanding.decision {
        Decision::Answer { intent, topic, .. } => match rules.get(intent) {
            Some(i) => Next::Intent {
                intent: Box::new(i.clone()),
                topic: topic
                    .as_deref()
                    .and_then(|t| rules.get(t))
                    .map(|t| Box::new(t.clone())),
            },
            None => Next::Fallback,
        },
        Decision::Clarify { kind, .. } => match understanding.question(rules, lang) {
            Some(question) if !question.buttons.is_empty() => Next::Ask {
                question,
                confirms_opt_out: *kind == ClarifyKind::ConfirmOptOut,
            },
            _ => Next::Fallback,
        },
        Decision::Fallback { .. } => Next::Fallback,
    };
    let next = match (next, content) {
        (Next::Fallback, MessageContent::Reply { .. }) => Next::Stale,
        (next, _) => next,
    };
    (next, understanding.entities)
}

async fn handle_message(
    engine: &Engine,
    event: &InboundEvent,
    msg: &InboundMessage,
) -> Result<(), EngineError> {
    let store = engine.store();
    let channel = event.channel;
    let contact = store
        .touch_contact(
            channel,
            &msg.contact,
            &event.business_id,
            event.timestamp_ms,
        )
        .await?;
    // A survey in progress reads answers before anything else; the answer is
    // recorded on the surveyed case and opens no new one.
    let offered = Event::CustomerMessage {
        contact: Box::new(contact.clone()),
        message: Box::new(msg.clone()),
    };
    if engine.bus().publish(&offered).await? == Reaction::Consumed {
        return Ok(());
    }
    let text = msg.content.text().map(str::to_string);
    let detected = text
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(detect_language);
    let now = store.now_ms();
    let stamp = |c: &mut Conversation| {
        c.last_customer_ms = Some(now);
        if let Some(lang) = detected {
            c.language = lang_code(lang).to_string();
        }
        if !event.business_id.is_empty() {
            c.number = Some(event.business_id.clone());
        }
        if c.state == State::Assigned || c.state == State::Queued {
            c.unread += 1;
        }
    };
    let (contact, conv, new) = store.open_case(channel, &msg.contact, stamp).await?;
    let conv = if new {
        conv
    } else {
        store.update_conversation(&conv.id, stamp).await?
    };
    if conv.snooze.is_some() {
        lifecycle::wake(engine, &conv.id, "message", None).await?;
    }
    let lang = detected.unwrap_or_else(|| lang_from_code(&conv.language));
    // What follows does not depend on each other, so it is made at once: on
    // the embedded store the writes share commits, on Redis round trips.
    let media = msg.content.media();
    let opened_case = async {
        if new {
            lifecycle::case_opened(engine, &contact, &conv).await?;
        }
        Ok::<_, EngineError>(())
    };
    let recorded = record_message(engine, event, msg, &contact, &conv, now);
    tokio::try_join!(opened_case, recorded)?;
    let mut turn = Turn {
        engine,
        channel,
        msg,
        contact,
        conv,
        lang,
        replies: Vec::new(),
        buttons: Vec::new(),
        intent: None,
        files: Vec::new(),
        media_word: media
            .as_ref()
            .map(|m| Texts::new(lang).media_word(m.kind, m.voice)),
        topic: None,
    };

    let rules = engine.rules().current();
    let ctx = MatchContext {
        channel: Some(channel),
        business_hours_open: engine.hours().is_open(store.clock().now()),
    };
    let (next, entities) = next_step(&rules, &turn.conv, &msg.content, lang, &ctx, now);
    // The bot asks while it owns the case; an opt-out is confirmed in the
    // queue too (opt-outs are honoured whoever owns the case).
    let state = turn.conv.state;
    let asks = |confirms: bool| state == State::Bot || (confirms && state == State::Queued);
    let opened = match &next {
        Next::Ask {
            question,
            confirms_opt_out,
        } if asks(*confirms_opt_out) => Some(clarify::open(question, *confirms_opt_out, now)),
        _ => None,
    };
    // One write: the numbers given, and the question asked (any other
    // message closes the open one).
    let values = crate::intents::entities::template_values(&entities);
    if !values.is_empty() || turn.conv.question.is_some() || opened.is_some() {
        turn.conv = store
            .update_conversation(&turn.conv.id, |c| {
                for (var, value) in &values {
                    let key = var.trim_start_matches("case.");
                    if key == "tracking_number" {
                        // A new tracking number's courier replaces the old one.
                        c.entities.remove("courier");
                    }
                    c.entities.insert(key.to_string(), value.clone());
                }
                c.question = opened.clone();
            })
            .await?;
    }
    let chosen: Option<Intent> = match next {
        Next::Intent { intent, topic } => {
            turn.topic = topic.map(|t| *t);
            Some(*intent)
        }
        Next::Ask { question, .. } if opened.is_some() => {
            turn.replies.push(question.body);
            turn.buttons = question.buttons;
            return turn.send().await;
        }
        Next::StaySubscribed if state != State::Assigned => {
            turn.replies.push(Texts::new(lang).stays_subscribed());
            return turn.send().await;
        }
        Next::Stale if state == State::Bot => {
            turn.replies.push(Texts::new(lang).stale_choice());
            return turn.send().await;
        }
        Next::Ask { .. } | Next::StaySubscribed | Next::Stale | Next::Fallback => None,
    };

    // Opt-out and opt-in are honoured whoever owns the conversation.
    if let Some(intent) = &chosen
        && matches!(intent.action, Action::OptOut | Action::OptIn)
    {
        let out = intent.action == Action::OptOut;
        store
            .update_contact(channel, &msg.contact.external_id, |c| c.opted_out = out)
            .await?;
        engine
            .bus()
            .publish(&Event::OptOutChanged {
                contact: Box::new(turn.contact.clone()),
                opted_out: out,
            })
            .await?;
        if turn.conv.state == State::Assigned {
            engine
                .store()
                .system_line(&turn.conv.id, SystemEvent::OptOut { out })
                .await?;
            return Ok(());
        }
        let fallback = if out {
            Texts::new(lang).opted_out()
        } else {
            Texts::new(lang).opted_in()
        };
        turn.say_intent(intent, fallback, None).await;
        return turn.send().await;
    }

    match turn.conv.state {
        State::Bot => bot_turn(&mut turn, chosen, &rules).await?,
        State::Queued => {
            queued_turn(&mut turn, chosen.as_ref()).await?;
            if let Some(m) = &media {
                turn.queued_file_turn(m, &rules).await?;
            }
        }
        // The agent owns it: everything goes to them, the bot stays silent.
        State::Assigned | State::Resolved => {}
    }
    turn.send().await
}

/// Records the customer's message on its case: its file first (and the
/// download scheduled), so it is never missing from the case, then the
/// transcript line and the search terms (together). Publishes the message to
/// consoles when it is new.
async fn record_message(
    engine: &Engine,
    event: &InboundEvent,
    msg: &InboundMessage,
    contact: &crate::store::Contact,
    conv: &Conversation,
    now: i64,
) -> Result<(), EngineError> {
    let store = engine.store();
    let mut attachments = Vec::new();
    if let Some(m) = msg.content.media() {
        let record = engine
            .files()
            .record_inbound(event, &msg.message_id, &m, &conv.id)
            .await?;
        attachments.push(record.id);
    }
    let summary = msg.content.summary();
    // The case id and the contact's id are found by lookup; a number the
    // contact is known by besides its id (a WhatsApp contact known by its
    // business-scoped user id) is indexed like the name.
    let mut names: Vec<&str> = contact.display_name().into_iter().collect();
    if let Some(wa_id) = contact.wa_id.as_deref()
        && wa_id != contact.external_id
    {
        names.push(wa_id);
    }
    let text = [summary.as_str()];
    // Indexing a message again (a redelivery) finds its terms there already.
    let (new, ()) = tokio::try_join!(
        store.transcribe_customer_message(&conv.id, &msg.message_id, summary.clone(), &attachments),
        store.index_for_search(&conv.id, &text, &names, now),
    )?;
    if new {
        ownership::publish(
            engine,
            "message",
            conv,
            json!({ "preview": preview(&msg.content), "unread": conv.unread, "attachments": attachments }),
        )
        .await;
    }
    Ok(())
}

fn preview(content: &MessageContent) -> String {
    content.summary().chars().take(120).collect()
}

async fn bot_turn(
    turn: &mut Turn<'_>,
    chosen: Option<Intent>,
    rules: &crate::intents::RuleSet,
) -> Result<(), EngineError> {
    let engine = turn.engine;
    let store = engine.store();
    let fallback_limit = engine.config().intents.fallback_handoff_after;
    if chosen.is_none()
        && let Some(media) = turn.msg.content.media()
        && turn.bot_file_turn(&media, rules).await?
    {
        return Ok(());
    }
    let Some(intent) = chosen else {
        let fallbacks = turn.conv.consecutive_fallbacks + 1;
        turn.conv = store
            .update_conversation(&turn.conv.id, |c| c.consecutive_fallbacks = fallbacks)
            .await?;
        if fallback_limit > 0 && fallbacks >= fallback_limit {
            let queue = engine.config().handoff.default_queue.clone();
            let conv = ownership::handoff(engine, &turn.conv.id, &queue, 0, "fallback").await?;
            let position = store.queue_position(&conv).await?.unwrap_or(1);
            turn.conv = conv;
            turn.replies
                .push(Texts::new(turn.lang).fallback_handoff(position));
            turn.after_hours_note();
            return Ok(());
        }
        if let Some(fb) = rules.fallback() {
            let fb = fb.clone();
            turn.say_intent(&fb, String::new(), None).await;
        }
        return Ok(());
    };
    turn.conv = store
        .update_conversation(&turn.conv.id, |c| c.consecutive_fallbacks = 0)
        .await?;
    act(turn, intent).await
}

/// Does what a chosen intent says while the bot owns the case: reply, hand
/// off, or resolve.
async fn act(turn: &mut Turn<'_>, intent: Intent) -> Result<(), EngineError> {
    let engine = turn.engine;
    let store = engine.store();
    match intent.action {
        // Opt-out and opt-in are handled before ownership; a media rule that
        // names them only says its reply.
        Action::Reply | Action::OptOut | Action::OptIn => {
            turn.say_intent(&intent, String::new(), None).await
        }
        Action::Handoff => {
            // A request for a person about a topic waits in the topic's queue.
            let queue = turn
                .topic
                .as_ref()
                .and_then(|t| t.queue.clone())
                .or_else(|| intent.queue.clone())
                .unwrap_or_else(|| engine.config().handoff.default_queue.clone());
            let boost = priority_boost(turn, Some(&intent)).await?;
            let conv = ownership::handoff(
                engine,
                &turn.conv.id,
                &queue,
                intent.queue_priority + boost,
                &intent.name,
            )
            .await?;
            let position = store.queue_position(&conv).await?.unwrap_or(1);
            turn.conv = conv;
            let default = Texts::new(turn.lang).handed_off(position);
            turn.say_intent(&intent, default, Some(position)).await;
            // Waiting customers are always told their place in line.
            let mentions_position = intent
                .reply(turn.conv.bot_turns, turn.lang)
                .is_some_and(|t| t.variables().any(|v| v == "queue.position"));
            if intent.reply(turn.conv.bot_turns, turn.lang).is_some() && !mentions_position {
                turn.replies.push(Texts::new(turn.lang).in_line(position));
            }
            turn.after_hours_note();
        }
        Action::Resolve => {
            turn.say_intent(&intent, String::new(), None).await;
            // Send the goodbye before the case closes, so it lands in this case.
            turn.send().await?;
            let id = turn.conv.id.clone();
            match ownership::agent_transition(
                engine,
                &id,
                Transition::Resolve { by: "bot".into() },
                |c| c.state == State::Bot,
            )
            .await
            {
                Ok(_) | Err(ConversationError::Illegal(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Extra priority for an angry message and for repeated complaints (a
/// complaint-type `intent` is recorded on the contact). Each is counted once.
async fn priority_boost(turn: &mut Turn<'_>, intent: Option<&Intent>) -> Result<i32, EngineError> {
    let engine = turn.engine;
    let cfg = &engine.config().handoff;
    let mut boost = 0;
    if turn.msg.content.text().is_some_and(anger::is_angry) {
        boost += cfg.anger_priority_boost;
    }
    if let Some(intent) = intent
        && cfg.complaint_intents.iter().any(|c| c == &intent.name)
    {
        let now = engine.store().now_ms();
        let window = cfg.repeat_window.as_millis_i64();
        let contact = engine
            .store()
            .update_contact(turn.channel, &turn.msg.contact.external_id, |c| {
                c.complaint_times.retain(|t| now - t < window);
                c.complaint_times.push(now);
            })
            .await?;
        if contact.complaint_times.len() as u32 >= cfg.repeat_complaints {
            boost += cfg.repeat_priority_boost;
        }
        turn.contact = contact;
    }
    Ok(boost)
}

async fn queued_turn(turn: &mut Turn<'_>, chosen: Option<&Intent>) -> Result<(), EngineError> {
    let engine = turn.engine;
    let store = engine.store();
    let boost = priority_boost(turn, chosen).await?;
    if boost > 0 {
        turn.conv = ownership::raise_priority(engine, &turn.conv, boost).await?;
    }
    let now = store.now_ms();
    let every = engine
        .config()
        .handoff
        .position_update_every
        .as_millis_i64();
    let due = turn
        .conv
        .last_position_update_ms
        .is_none_or(|last| now - last >= every);
    if due && let Some(position) = store.queue_position(&turn.conv).await? {
        turn.conv = store
            .update_conversation(&turn.conv.id, |c| c.last_position_update_ms = Some(now))
            .await?;
        turn.replies
            .push(Texts::new(turn.lang).position_update(position));
        turn.after_hours_note();
    }
    Ok(())
}

/// The values of reply-template variables for one conversation: the built-in
/// ones ([`crate::intents::BUILTIN_VARIABLES`]: contact name, business hours,
/// queue position, the case id and the numbers the customer gave) and
/// `[intents.variables]` from the config. Used for bot replies and for
/// agents' canned responses alike.
pub fn template_variables<'a>(
    engine: &'a Engine,
    contact: &Contact,
    conv: &Conversation,
    position: Option<u64>,
    lang: Lang,
) -> impl Fn(&str) -> Option<String> + 'a {
    variables_with_topic(engine, contact, conv, position, lang, None)
}

/// [`template_variables`] plus `case.topic`, the label of the topic a request
/// for a person is about.
fn variables_with_topic<'a>(
    engine: &'a Engine,
    contact: &Contact,
    conv: &Conversation,
    position: Option<u64>,
    lang: Lang,
    topic: Option<String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    let now = engine.store().clock().now();
    let english = matches!(lang, Lang::En);
    let name = contact.display_name().map(str::to_string);
    let case_id = conv.id.clone();
    let next_open = engine.hours().next_open_text(now, english);
    let schedule = engine.hours().schedule_text(english);
    let open = engine.hours().is_open(now);
    let entities = conv.entities.clone();
    let config_vars = &engine.config().intents.variables;
    move |var: &str| -> Option<String> {
        match var {
            "contact.name" => name.clone(),
            "business_hours.next_open" => Some(next_open.clone()),
            "business_hours.schedule" => schedule.clone(),
            // A flag for sections: set only while the team is working.
            "business_hours.open" => open.then(|| "open".to_string()),
            "queue.position" => Some(position.map_or_else(|| "-".into(), |p| p.to_string())),
            "case.id" => Some(case_id.clone()),
            "case.topic" => topic.clone(),
            other => match other.strip_prefix("case.") {
                Some(key) if entities.contains_key(key) => entities.get(key).cloned(),
                _ => config_vars.get(other).cloned(),
            },
        }
    }
}

impl Turn<'_> {
    /// Adds the intent's reply (or `default` when it has none) to this turn,
    /// and the file configured for it.
    async fn say_intent(&mut self, intent: &Intent, default: String, position: Option<u64>) {
        let topic = self
            .topic
            .as_ref()
            .map(|t| t.button_label(self.lang).to_string());
        let base = variables_with_topic(
            self.engine,
            &self.contact,
            &self.conv,
            position,
            self.lang,
            topic,
        );
        let word = self.media_word.unwrap_or(if self.lang == Lang::En {
            "file"
        } else {
            "berkas"
        });
        let vars = |var: &str| match var {
            "media.kind" => Some(word.to_string()),
            other => base(other),
        };
        match intent.reply(self.conv.bot_turns, self.lang) {
            Some(template) => self.replies.push(template.render(&vars)),
            None if !default.is_empty() => self.replies.push(default),
            None => {}
        }
        self.buttons.extend(intent.buttons.iter().cloned());
        self.intent = Some(intent.name.clone());
        if let Some(file) = self.engine.files().library().for_intent(&intent.name) {
            self.files.push(file.clone());
        }
    }

    /// Adds the out-of-hours note when the team is not working.
    fn after_hours_note(&mut self) {
        let engine = self.engine;
        let now = engine.store().clock().now();
        if !engine.hours().is_open(now) {
            let english = matches!(self.lang, Lang::En);
            let next = engine.hours().next_open_text(now, english);
            self.replies.push(Texts::new(self.lang).after_hours(&next));
        }
    }

    /// Sends this turn's replies as one message through the outbox, then the
    /// files configured for its intent. On WhatsApp the customer's message is
    /// marked read, with the typing indicator, first.
    async fn send(&mut self) -> Result<(), EngineError> {
        if self.replies.is_empty() && self.files.is_empty() {
            return Ok(());
        }
        if self.channel == Channel::WhatsApp {
            receipts::mark_read(
                self.engine,
                self.conv.number.as_deref(),
                &self.msg.contact.external_id,
                &self.msg.message_id,
                true,
                None,
            )
            .await?;
        }
        self.send_replies().await?;
        self.send_files().await
    }

    async fn send_replies(&mut self) -> Result<(), EngineError> {
        if self.replies.is_empty() {
            return Ok(());
        }
        let body = std::mem::take(&mut self.replies).join("\n\n");
        let buttons = std::mem::take(&mut self.buttons);
        let content = if buttons.is_empty() {
            OutboundContent::Text { body }
        } else {
            OutboundContent::Buttons {
                body,
                buttons,
                header: None,
                footer: None,
            }
        };
        let engine = self.engine;
        let turns = self.conv.bot_turns + 1;
        // The reply and the turn count do not depend on each other, so they
        // are written at once; a retried turn finds both done (the reply by
        // its id, the count by `max`).
        let reply = engine.outbox().enqueue(Outgoing {
            // Derived from the inbound message: reprocessing never sends twice.
            id: Some(format!("re:{}", self.msg.message_id)),
            message: OutboundMessage {
                channel: self.channel,
                to: self.msg.contact.external_id.clone(),
                content,
                human_agent_tag: false,
                // The number the customer wrote to answers.
                from: self.conv.number.clone(),
            },
            conversation_id: Some(self.conv.id.clone()),
            speaker: Some(Speaker::Bot {
                intent: self.intent.clone(),
            }),
            origin: crate::store::Origin::Bot,
            by_human: false,
        });
        let counted = engine
            .store()
            .update_conversation(&self.conv.id, |c| c.bot_turns = c.bot_turns.max(turns));
        let (result, counted) = tokio::join!(reply, counted);
        match result {
            Ok(_) => {}
            // The customer just wrote, so the window is open; this only happens
            // with clock skew. Log rather than retry forever.
            Err(OutboxError::Window(w)) => {
                tracing::warn!(conversation = %self.conv.id, reason = %w, "bot reply not sent");
            }
            Err(OutboxError::Store(e)) => return Err(e.into()),
        }
        self.conv = counted?;
        Ok(())
    }

    /// Sends the configured files of this turn, each once however often the
    /// customer's message is handled.
    async fn send_files(&mut self) -> Result<(), EngineError> {
        let engine = self.engine;
        for (i, file) in std::mem::take(&mut self.files).iter().enumerate() {
            let id = format!("re:{}:file:{i}", self.msg.message_id);
            let Some(attachment) = engine
                .files()
                .attach_library_file(file, &self.conv.id, self.channel, &id, None)
                .await?
            else {
                continue;
            };
            let content = OutboundContent::Media(OutboundMedia {
                kind: attachment.kind,
                source: OutboundMediaSource::Attachment {
                    id: attachment.id.clone(),
                },
                mime_type: file.mime_type.clone(),
                size: file.object.size,
                caption: None,
                filename: Some(file.filename.clone()),
            });
            let result = engine
                .outbox()
                .enqueue(Outgoing {
                    id: Some(id),
                    message: OutboundMessage {
                        channel: self.channel,
                        from: self.conv.number.clone(),
                        to: self.msg.contact.external_id.clone(),
                        content,
                        human_agent_tag: false,
                    },
                    conversation_id: Some(self.conv.id.clone()),
                    speaker: Some(Speaker::Bot {
                        intent: self.intent.clone(),
                    }),
                    origin: crate::store::Origin::Bot,
                    by_human: false,
                })
                .await;
            match result {
                Ok(_) => {}
                Err(OutboxError::Window(w)) => {
                    tracing::warn!(conversation = %self.conv.id, reason = %w, "bot file not sent");
                }
                Err(OutboxError::Store(e)) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
