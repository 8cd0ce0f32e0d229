//! The conversation engine: what happens to each inbound event.
//!
//! Workers ([`worker`]) feed it events from the inbound job queue. For a customer
//! message it opens or continues the contact's case and, depending on who owns
//! the case (see [`crate::conversation`]), asks the intent rules and acts on the
//! answer, keeps a waiting customer informed, or just records the message for
//! the agent. Everything it says goes through the outbox with ids derived from
//! the inbound message, so reprocessing an event after a crash never messages
//! the customer twice. It holds a per-contact lock while it works, so one
//! contact's messages are handled one at a time across processes.

pub mod anger;
pub mod assignment;
pub mod business_hours;
pub mod lifecycle;
mod live;
pub mod messages;
pub mod ownership;
pub mod presence;
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

use crate::channels::{
    Button, Channel, EventKind, InboundEvent, InboundMessage, MessageContent, OutboundContent,
    OutboundMessage,
};
use crate::config::Config;
use crate::conversation::{Conversation, State, Transition};
use crate::events::{Bus, Event, Reaction};
use crate::intents::{Action, Intent, Lang, MatchContext, RuleHandle, detect_language};
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
}

impl Engine {
    /// The engine over these handles.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        outbox: Outbox,
        rules: RuleHandle,
        bus: Bus,
    ) -> Engine {
        Engine(Arc::new(Parts {
            hours: BusinessHours::from_config(&config.business_hours),
            config,
            store,
            outbox,
            rules,
            bus,
        }))
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
}

async fn handle_message(
    engine: &Engine,
    event: &InboundEvent,
    msg: &InboundMessage,
) -> Result<(), EngineError> {
    let store = engine.store();
    let channel = event.channel;
    let contact = store
        .touch_contact(channel, &msg.contact, event.timestamp_ms)
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
    let (contact, conv, new) = store.open_case(channel, &msg.contact).await?;
    if new {
        lifecycle::case_opened(engine, &contact, &conv).await?;
    }
    let text = msg.content.text().map(str::to_string);
    let lang = match &text {
        Some(t) if !t.trim().is_empty() => detect_language(t),
        _ => lang_from_code(&conv.language),
    };
    let now = store.now_ms();
    let conv = store
        .update_conversation(&conv.id, |c| {
            c.last_customer_ms = Some(now);
            c.language = lang_code(lang).to_string();
            if c.state == State::Assigned || c.state == State::Queued {
                c.unread += 1;
            }
        })
        .await?;
    if conv.snooze.is_some() {
        lifecycle::wake(engine, &conv.id, "message", None).await?;
    }
    if store
        .transcribe_customer_message(&conv.id, &msg.message_id, msg.content.summary())
        .await?
    {
        let summary = msg.content.summary();
        let mut findable = vec![
            summary.as_str(),
            conv.id.as_str(),
            contact.external_id.as_str(),
        ];
        if let Some(name) = contact.display_name() {
            findable.push(name);
        }
        if let Some(wa_id) = contact.wa_id.as_deref() {
            findable.push(wa_id);
        }
        store.index_for_search(&conv.id, &findable, now).await?;
        ownership::publish(
            engine,
            "message",
            &conv,
            json!({ "preview": preview(&msg.content), "unread": conv.unread }),
        )
        .await;
    }

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
    };

    let rules = engine.rules().current();
    let ctx = MatchContext {
        channel: Some(channel),
        business_hours_open: engine.hours().is_open(store.clock().now()),
    };
    let chosen: Option<Intent> = match &msg.content {
        MessageContent::Reply { payload, .. } if rules.by_payload(payload).is_some() => {
            rules.by_payload(payload).cloned()
        }
        _ => text
            .as_deref()
            .and_then(|t| rules.classify(t, &ctx))
            .and_then(|m| rules.get(&m.intent).cloned()),
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
        State::Queued => queued_turn(&mut turn, chosen.as_ref()).await?,
        // The agent owns it: everything goes to them, the bot stays silent.
        State::Assigned | State::Resolved => {}
    }
    turn.send().await
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
    match intent.action {
        Action::Reply => turn.say_intent(&intent, String::new(), None).await,
        Action::Handoff => {
            let queue = intent
                .queue
                .clone()
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
        Action::OptOut | Action::OptIn => unreachable!("handled before ownership"),
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
/// ones (`contact.name`, `business_hours.next_open`, `queue.position`,
/// `case.id`) and `[intents.variables]` from the config. Used for bot replies
/// and for agents' canned responses alike.
pub fn template_variables<'a>(
    engine: &'a Engine,
    contact: &Contact,
    conv: &Conversation,
    position: Option<u64>,
    lang: Lang,
) -> impl Fn(&str) -> Option<String> + 'a {
    let now = engine.store().clock().now();
    let english = matches!(lang, Lang::En);
    let name = contact.display_name().map(str::to_string);
    let case_id = conv.id.clone();
    let next_open = engine.hours().next_open_text(now, english);
    let config_vars = &engine.config().intents.variables;
    move |var: &str| -> Option<String> {
        match var {
            "contact.name" => name.clone(),
            "business_hours.next_open" => Some(next_open.clone()),
            "queue.position" => Some(position.map_or_else(|| "-".into(), |p| p.to_string())),
            "case.id" => Some(case_id.clone()),
            other => config_vars.get(other).cloned(),
        }
    }
}

impl Turn<'_> {
    /// Adds the intent's reply (or `default` when it has none) to this turn.
    async fn say_intent(&mut self, intent: &Intent, default: String, position: Option<u64>) {
        let vars = template_variables(self.engine, &self.contact, &self.conv, position, self.lang);
        match intent.reply(self.conv.bot_turns, self.lang) {
            Some(template) => self.replies.push(template.render(&vars)),
            None if !default.is_empty() => self.replies.push(default),
            None => {}
        }
        self.buttons.extend(intent.buttons.iter().cloned());
        self.intent = Some(intent.name.clone());
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

    /// Sends this turn's replies as one message through the outbox.
    async fn send(&mut self) -> Result<(), EngineError> {
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
        let result = engine
            .outbox()
            .enqueue(Outgoing {
                // Derived from the inbound message: reprocessing never sends twice.
                id: Some(format!("re:{}", self.msg.message_id)),
                message: OutboundMessage {
                    channel: self.channel,
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
            // The customer just wrote, so the window is open; this only happens
            // with clock skew. Log rather than retry forever.
            Err(OutboxError::Window(w)) => {
                tracing::warn!(conversation = %self.conv.id, reason = %w, "bot reply not sent");
            }
            Err(OutboxError::Store(e)) => return Err(e.into()),
        }
        let turns = self.conv.bot_turns + 1;
        self.conv = engine
            .store()
            .update_conversation(&self.conv.id, |c| c.bot_turns = c.bot_turns.max(turns))
            .await?;
        Ok(())
    }
}
