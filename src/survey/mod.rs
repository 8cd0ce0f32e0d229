//! Satisfaction surveys after resolution.
//!
//! Surveys react to the engine's events ([`SurveyEvents`]): when a case is
//! resolved, they decide whether to survey it (enabled, not opted out, outside
//! the cooldown, reached a human unless `bot_cases`, sampled in) and schedule a
//! durable job in the `surveys` queue. When it runs ([`SurveyHandler`]), the
//! question is asked in the chat — a list or buttons inside the 24-hour window,
//! the approved template outside it, or `skipped_window` is recorded. Customer
//! messages are offered to surveys first: a pending survey reads them as answers
//! ([`answers`]), re-asks once, then lets go. Low scores are handed to the
//! `recovery` queue with an apology. Results feed [`crate::reports`].

pub mod answers;
mod ask;

use crate::engine::Engine;
use crate::events::{Event, Reaction, Subscriber};
use serde::{Deserialize, Serialize};

use crate::channels::{InboundMessage, MessageContent};
use crate::conversation::{Conversation, State};
use crate::engine::messages::Texts;
use crate::engine::{lang_from_code, ownership};
use crate::intents::{Action, MatchContext};
use crate::store::{Contact, ConversationError, StoreResult, queues};
pub use crate::store::{Step, Survey, SurveyStatus as Status};
use answers::Scale;

/// The priority of recovery handoffs: ahead of ordinary complaints.
const RECOVERY_PRIORITY: i32 = 10;

/// The answer scale of a step (none for the free-text comment).
fn scale(step: Step) -> Option<Scale> {
    match step {
        Step::Csat => Some(Scale::Csat),
        Step::Nps => Some(Scale::Nps),
        Step::Ces => Some(Scale::Ces),
        Step::Comment => None,
    }
}

/// A survey timer's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyTimer {
    /// The case surveyed.
    pub case_id: String,
    /// What to do.
    pub action: TimerAction,
}

/// What a survey timer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerAction {
    /// Send the first question.
    Send,
    /// The customer did not answer `step` in time.
    StepTimeout(Step),
    /// Close the survey.
    Expire,
}

impl SurveyTimer {
    /// Schedules this step at `due_ms` in the `surveys` queue; false when it
    /// was already scheduled.
    pub async fn schedule(&self, engine: &Engine, due_ms: i64) -> StoreResult<bool> {
        engine
            .store()
            .schedule(queues::SURVEYS, &self.id(), due_ms, self, None)
            .await
    }

    /// Cancels this step if it is scheduled.
    pub async fn cancel(&self, engine: &Engine) -> StoreResult<bool> {
        engine.store().cancel(queues::SURVEYS, &self.id()).await
    }

    /// Timer job id (one per case and action).
    pub fn id(&self) -> String {
        let action = match self.action {
            TimerAction::Send => "send".to_string(),
            TimerAction::StepTimeout(s) => format!("timeout:{}", s.as_str()),
            TimerAction::Expire => "expire".to_string(),
        };
        format!("survey:{}:{action}", self.case_id)
    }
}

/// Reads a survey.
pub async fn get(engine: &Engine, case_id: &str) -> StoreResult<Option<Survey>> {
    engine.store().survey(case_id).await
}

/// Whether a case is sampled in, deterministically (the same answer on retries
/// and in every process).
fn sampled(case_id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let h = case_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h % 10_000) as f64 / 10_000.0 < rate
}

/// Schedules a survey for a resolved case when it is eligible.
async fn on_resolved(engine: &Engine, conv: &Conversation) -> Result<(), ConversationError> {
    let cfg = &engine.config().survey;
    let store = engine.store();
    let now = store.now_ms();
    let skip = |why: &str| {
        tracing::debug!(case = %conv.id, reason = why, "no survey");
        metrics::counter!("balas_surveys_skipped_total", "reason" => why.to_string()).increment(1);
    };
    if !cfg.enabled {
        skip("disabled");
        return Ok(());
    }
    if conv.recovery_score.is_some() {
        skip("recovery_case");
        return Ok(());
    }
    if !conv.reached_human && !cfg.bot_cases {
        skip("bot_case");
        return Ok(());
    }
    let Some(contact) = store.contact(conv.channel, &conv.contact_id).await? else {
        return Ok(());
    };
    if contact.opted_out {
        skip("opted_out");
        return Ok(());
    }
    if contact
        .last_survey_ms
        .is_some_and(|t| now - t < cfg.cooldown.as_millis_i64())
    {
        skip("cooldown");
        return Ok(());
    }
    if !sampled(&conv.id, cfg.sample_rate) {
        skip("sampled_out");
        return Ok(());
    }
    let survey = Survey {
        case_id: conv.id.clone(),
        channel: conv.channel,
        contact_id: conv.contact_id.clone(),
        agent: conv.agent.clone(),
        queue: conv.queue.clone(),
        bot_only: !conv.reached_human,
        language: conv.language.clone(),
        status: Status::Scheduled,
        step: None,
        reasked: false,
        via: None,
        csat: None,
        nps: None,
        ces: None,
        comment: None,
        opened_ms: conv.opened_ms,
        handed_off_ms: conv.handed_off_ms,
        first_agent_reply_ms: conv.first_agent_reply_ms,
        resolved_ms: conv.resolved_ms.unwrap_or(now),
        scheduled_ms: now,
        sent_ms: None,
        answered_ms: None,
        closed_ms: None,
        number: conv.number.clone(),
    };
    // Created once: a retried resolve finds it; if it was interrupted before
    // its first question was scheduled, that happens now (the timer's id makes
    // it happen once).
    let stored = store.create_survey(&survey).await?;
    if stored.status != Status::Scheduled {
        return Ok(());
    }
    SurveyTimer {
        case_id: conv.id.clone(),
        action: TimerAction::Send,
    }
    .schedule(engine, stored.scheduled_ms + cfg.delay.as_millis_i64())
    .await?;
    Ok(())
}

/// Changes a survey atomically if `change` returns true.
async fn update(
    engine: &Engine,
    case_id: &str,
    change: impl FnMut(&mut Survey) -> bool,
) -> StoreResult<Option<Survey>> {
    engine.store().update_survey(case_id, change).await
}

async fn close(
    engine: &Engine,
    case_id: &str,
    from: &[Status],
    to: Status,
) -> StoreResult<Option<Survey>> {
    let now = engine.store().now_ms();
    let closed = update(engine, case_id, |s| {
        if !from.contains(&s.status) {
            return false;
        }
        s.status = to;
        s.step = None;
        s.closed_ms = Some(now);
        if to == Status::SkippedWindow {
            // Nothing reached the customer: reports must not count it as sent.
            s.sent_ms = None;
        }
        true
    })
    .await?;
    if closed.is_some() {
        metrics::counter!("balas_surveys_total", "status" => to.as_str()).increment(1);
    }
    Ok(closed)
}

/// Surveys' reactions to what the engine and the outbox report: a resolved
/// case schedules a survey, a customer message may be an answer, an opt-out
/// closes the survey, a question the platform refused falls back to the
/// template.
pub struct SurveyEvents {
    engine: Engine,
}

impl SurveyEvents {
    /// The subscriber over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

#[async_trait::async_trait]
impl Subscriber for SurveyEvents {
    async fn on_event(&self, event: &Event) -> Result<Reaction, ConversationError> {
        let engine = &self.engine;
        match event {
            Event::CustomerMessage { contact, message } => {
                if on_message(engine, contact, message).await? {
                    return Ok(Reaction::Consumed);
                }
            }
            Event::CaseResolved(conv) => on_resolved(engine, conv).await?,
            Event::OptOutChanged { contact, opted_out } => {
                on_opt_out(engine, contact, *opted_out).await?;
            }
            Event::Delivery(record) if record.state == crate::store::OutboundState::Failed => {
                on_send_failed(engine, record).await?;
            }
            Event::Delivery(_) => {}
        }
        Ok(Reaction::Noted)
    }
}

/// Handles the `surveys` queue: the first question, step timeouts, expiry.
pub struct SurveyHandler {
    engine: Engine,
}

impl SurveyHandler {
    /// The handler over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

#[async_trait::async_trait]
impl crate::jobs::Handler for SurveyHandler {
    type Payload = SurveyTimer;

    fn queue(&self) -> &'static str {
        queues::SURVEYS
    }

    async fn run(&self, job: &crate::jobs::Run<SurveyTimer>) -> crate::jobs::Verdict {
        match fire(&self.engine, &job.payload).await {
            Ok(()) => crate::jobs::Verdict::Done,
            Err(e) => crate::jobs::Verdict::failed(e),
        }
    }
}

/// Fires a survey timer.
pub async fn fire(engine: &Engine, timer: &SurveyTimer) -> Result<(), ConversationError> {
    let Some(survey) = get(engine, &timer.case_id).await? else {
        return Ok(());
    };
    match timer.action {
        TimerAction::Send => send_first(engine, survey).await,
        TimerAction::StepTimeout(step) => {
            if survey.status == Status::Asked && survey.step == Some(step) && step != Step::Csat {
                // Follow-ups are optional: keep what we have.
                close(engine, &survey.case_id, &[Status::Asked], Status::Completed).await?;
            }
            Ok(())
        }
        TimerAction::Expire => {
            close(engine, &survey.case_id, &[Status::Asked], Status::Expired).await?;
            Ok(())
        }
    }
}

async fn send_first(engine: &Engine, survey: Survey) -> Result<(), ConversationError> {
    if survey.status != Status::Scheduled {
        return Ok(());
    }
    let store = engine.store();
    let contact = store.contact(survey.channel, &survey.contact_id).await?;
    if contact.as_ref().is_none_or(|c| c.opted_out) {
        close(
            engine,
            &survey.case_id,
            &[Status::Scheduled],
            Status::OptedOut,
        )
        .await?;
        return Ok(());
    }
    let contact = contact.expect("checked");
    // Claim the send: only one process moves Scheduled → Asked.
    let now = store.now_ms();
    let Some(survey) = update(engine, &survey.case_id, |s| {
        if s.status != Status::Scheduled {
            return false;
        }
        s.status = Status::Asked;
        s.step = Some(Step::Csat);
        s.sent_ms = Some(now);
        true
    })
    .await?
    else {
        return Ok(());
    };
    match ask::question(engine, &survey, &contact, Step::Csat, false).await? {
        Some(via) => {
            update(engine, &survey.case_id, |s| {
                s.via = Some(via.to_string());
                true
            })
            .await?;
            store
                .update_contact(survey.channel, &survey.contact_id, |c| {
                    c.last_survey_ms = Some(now)
                })
                .await?;
            metrics::counter!("balas_surveys_total", "status" => "asked").increment(1);
            let cfg = &engine.config().survey;
            SurveyTimer {
                case_id: survey.case_id.clone(),
                action: TimerAction::Expire,
            }
            .schedule(engine, now + cfg.expire_after.as_millis_i64())
            .await?;
        }
        None => {
            close(
                engine,
                &survey.case_id,
                &[Status::Asked],
                Status::SkippedWindow,
            )
            .await?;
        }
    }
    Ok(())
}

/// Offers a customer message to the contact's survey. Returns true when the
/// message was consumed as a survey answer (or re-ask); false lets the bot
/// handle it.
async fn on_message(
    engine: &Engine,
    contact: &Contact,
    msg: &InboundMessage,
) -> Result<bool, ConversationError> {
    let store = engine.store();
    let Some(case_id) = store
        .active_survey(contact.channel, &contact.external_id)
        .await?
    else {
        return Ok(false);
    };
    let Some(survey) = get(engine, &case_id).await? else {
        return Ok(false);
    };
    match survey.status {
        // The customer is back before we asked: the problem is not over.
        Status::Scheduled => {
            if close(engine, &case_id, &[Status::Scheduled], Status::Cancelled)
                .await?
                .is_some()
            {
                SurveyTimer {
                    case_id: case_id.clone(),
                    action: TimerAction::Send,
                }
                .cancel(engine)
                .await?;
            }
            Ok(false)
        }
        Status::Asked => {
            let consumed = answer(engine, survey, contact, msg).await?;
            if consumed {
                store
                    .transcribe_customer_message(
                        &case_id,
                        &msg.message_id,
                        msg.content.summary(),
                        &[],
                    )
                    .await?;
            }
            Ok(consumed)
        }
        _ => Ok(false),
    }
}

async fn answer(
    engine: &Engine,
    survey: Survey,
    contact: &Contact,
    msg: &InboundMessage,
) -> Result<bool, ConversationError> {
    let Some(step) = survey.step else {
        return Ok(false);
    };
    let text = msg.content.text().unwrap_or_default().to_string();
    // Opt-out words always win.
    let rules = engine.rules().current();
    let ctx = MatchContext {
        channel: Some(survey.channel),
        business_hours_open: true,
    };
    if !text.is_empty()
        && rules
            .classify(&text, &ctx)
            .and_then(|m| rules.get(&m.intent).map(|i| i.action))
            == Some(Action::OptOut)
    {
        close(engine, &survey.case_id, &[Status::Asked], Status::OptedOut).await?;
        return Ok(false);
    }
    let value = match (&msg.content, scale(step)) {
        (MessageContent::Reply { payload, title, .. }, Some(scale)) => {
            answers::parse_payload(payload, scale).or_else(|| answers::parse_text(title, scale))
        }
        (_, Some(scale)) => answers::parse_text(&text, scale),
        (_, None) => None,
    };
    let now = engine.store().now_ms();
    if step == Step::Comment {
        if text.trim().is_empty() {
            return Ok(false);
        }
        let comment: String = text.chars().take(2000).collect();
        update(engine, &survey.case_id, |s| {
            s.comment = Some(comment.clone());
            true
        })
        .await?;
        close(engine, &survey.case_id, &[Status::Asked], Status::Completed).await?;
        ask::thank(engine, &survey, contact).await?;
        return Ok(true);
    }
    let Some(value) = value else {
        if survey.reasked {
            // Twice not an answer: stop asking, let the bot help.
            close(engine, &survey.case_id, &[Status::Asked], Status::Abandoned).await?;
            return Ok(false);
        }
        update(engine, &survey.case_id, |s| {
            s.reasked = true;
            true
        })
        .await?;
        ask::question(engine, &survey, contact, step, true).await?;
        return Ok(true);
    };
    let next = next_step(engine, step);
    let updated = update(engine, &survey.case_id, |s| {
        if s.status != Status::Asked || s.step != Some(step) {
            return false;
        }
        match step {
            Step::Csat => s.csat = Some(value),
            Step::Nps => s.nps = Some(value),
            Step::Ces => s.ces = Some(value),
            Step::Comment => {}
        }
        s.answered_ms.get_or_insert(now);
        s.reasked = false;
        s.step = next;
        true
    })
    .await?;
    let Some(survey) = updated else {
        return Ok(true);
    };
    let cfg = &engine.config().survey;
    if step == Step::Csat && value <= cfg.recovery_threshold && cfg.recovery_handoff {
        close(engine, &survey.case_id, &[Status::Asked], Status::Completed).await?;
        recover(engine, &survey, msg, value).await?;
        return Ok(true);
    }
    match next {
        Some(next) => {
            ask::question(engine, &survey, contact, next, false).await?;
            SurveyTimer {
                case_id: survey.case_id.clone(),
                action: TimerAction::StepTimeout(next),
            }
            .schedule(engine, now + cfg.step_timeout.as_millis_i64())
            .await?;
        }
        None => {
            close(engine, &survey.case_id, &[Status::Asked], Status::Completed).await?;
            ask::thank(engine, &survey, contact).await?;
        }
    }
    Ok(true)
}

fn next_step(engine: &Engine, after: Step) -> Option<Step> {
    let cfg = &engine.config().survey;
    let order = [
        (Step::Nps, cfg.nps),
        (Step::Ces, cfg.ces),
        (Step::Comment, cfg.comment),
    ];
    let start = match after {
        Step::Csat => 0,
        Step::Nps => 1,
        Step::Ces => 2,
        Step::Comment => 3,
    };
    order[start..].iter().find(|(_, on)| *on).map(|(s, _)| *s)
}

/// Apologises and hands the customer to the `recovery` queue.
async fn recover(
    engine: &Engine,
    survey: &Survey,
    msg: &InboundMessage,
    score: u8,
) -> Result<(), ConversationError> {
    let store = engine.store();
    let (_, conv, _) = store
        .open_case(survey.channel, &msg.contact, |_| {})
        .await?;
    store
        .update_conversation(&conv.id, |c| c.recovery_score = Some(score))
        .await?;
    if conv.state == State::Bot {
        ownership::handoff(
            engine,
            &conv.id,
            "recovery",
            RECOVERY_PRIORITY,
            &format!("survey:{}", survey.case_id),
        )
        .await?;
    }
    let lang = lang_from_code(&survey.language);
    ask::say(
        engine,
        survey,
        &format!("recovery:{}", survey.case_id),
        Texts::new(lang).recovery(),
    )
    .await?;
    metrics::counter!("balas_survey_recoveries_total").increment(1);
    Ok(())
}

/// Called when one of our messages failed after the platform accepted it.
/// WhatsApp often accepts a free-form message and reports the closed 24-hour
/// window (131047) only in a later status; the survey's question then never
/// arrived, so it is asked again with the approved template, or recorded as
/// `skipped_window` when none is configured.
async fn on_send_failed(
    engine: &Engine,
    record: &crate::store::OutboundRecord,
) -> Result<(), ConversationError> {
    let Some(case_id) = record
        .id
        .strip_prefix("survey:")
        .and_then(|rest| rest.strip_suffix(":csat:ask"))
    else {
        return Ok(());
    };
    if record.error_code != Some(131047) {
        return Ok(());
    }
    let Some(survey) = get(engine, case_id).await? else {
        return Ok(());
    };
    if survey.status != Status::Asked
        || survey.step != Some(Step::Csat)
        || survey.answered_ms.is_some()
    {
        return Ok(());
    }
    let contact = engine
        .store()
        .contact(survey.channel, &survey.contact_id)
        .await?;
    let name = contact
        .as_ref()
        .and_then(|c| c.display_name())
        .unwrap_or("Kak")
        .to_string();
    match ask::template(engine, &survey, &name).await? {
        Some(via) => {
            update(engine, case_id, |s| {
                s.via = Some(via.to_string());
                true
            })
            .await?;
        }
        None => {
            update(engine, case_id, |s| {
                s.sent_ms = None;
                true
            })
            .await?;
            close(engine, case_id, &[Status::Asked], Status::SkippedWindow).await?;
        }
    }
    Ok(())
}

/// Called when a contact opts out (true) or in (false): an open survey closes.
async fn on_opt_out(
    engine: &Engine,
    contact: &Contact,
    out: bool,
) -> Result<(), ConversationError> {
    if !out {
        return Ok(());
    }
    if let Some(case_id) = engine
        .store()
        .active_survey(contact.channel, &contact.external_id)
        .await?
    {
        close(
            engine,
            &case_id,
            &[Status::Scheduled, Status::Asked],
            Status::OptedOut,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_deterministic_and_roughly_proportional() {
        let ids: Vec<String> = (0..2000).map(|i| format!("20261122-{i:06}")).collect();
        let picked = ids.iter().filter(|id| sampled(id, 0.25)).count();
        assert!((400..600).contains(&picked), "{picked}");
        assert!(ids.iter().all(|id| sampled(id, 0.25) == sampled(id, 0.25)));
        assert!(ids.iter().all(|id| sampled(id, 1.0)));
        assert!(!ids.iter().any(|id| sampled(id, 0.0)));
    }

    #[test]
    fn timer_ids_are_per_case_and_action() {
        let t = |action| {
            SurveyTimer {
                case_id: "c1".into(),
                action,
            }
            .id()
        };
        assert_eq!(t(TimerAction::Send), "survey:c1:send");
        assert_eq!(
            t(TimerAction::StepTimeout(Step::Nps)),
            "survey:c1:timeout:nps"
        );
        assert_eq!(t(TimerAction::Expire), "survey:c1:expire");
    }
}
