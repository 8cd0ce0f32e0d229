//! Satisfaction surveys after resolution.
//!
//! When a case is resolved, [`on_resolved`] decides whether to survey it
//! (enabled, not opted out, outside the cooldown, reached a human unless
//! `bot_cases`, sampled in) and schedules a durable timer. When it fires,
//! [`fire`] asks in the chat — a list or buttons inside the 24-hour window, the
//! approved template outside it, or records `skipped_window`. Customer messages
//! pass [`on_message`] first: a pending survey reads them as answers
//! ([`answers`]), re-asks once, then lets go. Low scores are handed to the
//! `recovery` queue with an apology. Results feed [`crate::reports`].

pub mod answers;
mod ask;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::channels::{Channel, InboundMessage, MessageContent};
use crate::conversation::{Conversation, State};
use crate::engine::messages::Texts;
use crate::engine::{lang_from_code, ownership};
use crate::intents::{Action, MatchContext};
use crate::store::{Contact, ConversationError, StoreError, StoreResult, queues};
use answers::Scale;

/// The priority of recovery handoffs: ahead of ordinary complaints.
const RECOVERY_PRIORITY: i32 = 10;

/// Where a survey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its delay.
    Scheduled,
    /// Asked; waiting for answers.
    Asked,
    /// All questions answered (or the follow-ups timed out after CSAT).
    Completed,
    /// No answer within `expire_after`.
    Expired,
    /// WhatsApp window closed and no template configured, or Instagram window closed.
    SkippedWindow,
    /// The customer wrote again before it was sent (case reopened).
    Cancelled,
    /// The customer opted out.
    OptedOut,
    /// The customer wrote something else twice; we let go.
    Abandoned,
}

impl Status {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Asked => "asked",
            Status::Completed => "completed",
            Status::Expired => "expired",
            Status::SkippedWindow => "skipped_window",
            Status::Cancelled => "cancelled",
            Status::OptedOut => "opted_out",
            Status::Abandoned => "abandoned",
        }
    }
}

/// A survey question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// 1–5 satisfaction.
    Csat,
    /// 0–10 recommendation.
    Nps,
    /// 1–5 effort.
    Ces,
    /// Free text.
    Comment,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Csat => "csat",
            Step::Nps => "nps",
            Step::Ces => "ces",
            Step::Comment => "comment",
        }
    }

    fn scale(self) -> Option<Scale> {
        match self {
            Step::Csat => Some(Scale::Csat),
            Step::Nps => Some(Scale::Nps),
            Step::Ces => Some(Scale::Ces),
            Step::Comment => None,
        }
    }
}

/// One survey of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Survey {
    /// The case surveyed.
    pub case_id: String,
    /// Channel.
    pub channel: Channel,
    /// Contact id on the channel.
    pub contact_id: String,
    /// The agent who handled the case, if any.
    pub agent: Option<String>,
    /// The queue it went through, if any.
    pub queue: Option<String>,
    /// Resolved by the bot alone.
    pub bot_only: bool,
    /// Language of the conversation (`id`/`en`).
    pub language: String,
    /// Status.
    pub status: Status,
    /// The question waiting for an answer.
    pub step: Option<Step>,
    /// Re-asked once already at this step.
    #[serde(default)]
    pub reasked: bool,
    /// How it was asked: `list`, `buttons`, `quick_replies`, `template`.
    #[serde(default)]
    pub via: Option<String>,
    /// 1–5.
    pub csat: Option<u8>,
    /// 0–10.
    pub nps: Option<u8>,
    /// 1–5.
    pub ces: Option<u8>,
    /// Free-text comment.
    pub comment: Option<String>,
    /// Case opened, handed off, first agent reply and resolved (Unix ms), for reports.
    pub opened_ms: i64,
    /// Handed off.
    pub handed_off_ms: Option<i64>,
    /// First agent reply.
    pub first_agent_reply_ms: Option<i64>,
    /// Resolved.
    pub resolved_ms: i64,
    /// Scheduled at.
    pub scheduled_ms: i64,
    /// Sent at.
    pub sent_ms: Option<i64>,
    /// First answer at.
    pub answered_ms: Option<i64>,
    /// Closed at.
    pub closed_ms: Option<i64>,
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
    pub async fn schedule(&self, app: &App, due_ms: i64) -> StoreResult<bool> {
        app.store()
            .schedule(queues::SURVEYS, &self.id(), due_ms, self, None)
            .await
    }

    /// Cancels this step if it is scheduled.
    pub async fn cancel(&self, app: &App) -> StoreResult<bool> {
        app.store().cancel(queues::SURVEYS, &self.id()).await
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

fn survey_key(case_id: &str) -> String {
    format!("survey:{case_id}")
}

fn active_key(channel: Channel, contact_id: &str) -> String {
    format!("survey_active:{channel}:{contact_id}")
}

/// Surveys by scheduled time (reports, CSV).
pub const SURVEYS_INDEX: &str = "surveys:by_scheduled";

/// Reads a survey.
pub async fn get(app: &App, case_id: &str) -> StoreResult<Option<Survey>> {
    app.store().get_json(&survey_key(case_id)).await
}

/// The CSAT answer of a case, if surveyed and answered.
pub async fn csat_of(app: &App, case_id: &str) -> StoreResult<Option<u8>> {
    Ok(get(app, case_id).await?.and_then(|s| s.csat))
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
pub async fn on_resolved(app: &App, conv: &Conversation) -> Result<(), ConversationError> {
    let cfg = &app.config().survey;
    let store = app.store();
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
    };
    // Created once: a retried resolve finds it and does nothing.
    let created = store
        .update_json::<Survey, StoreError, _>(&survey_key(&conv.id), |existing| {
            Ok(if existing.is_some() {
                None
            } else {
                Some(survey.clone())
            })
        })
        .await?;
    if created.is_none() {
        return Ok(());
    }
    store
        .backend()
        .index_put(SURVEYS_INDEX, &conv.id, now as f64)
        .await?;
    store
        .put_json(&active_key(conv.channel, &conv.contact_id), &conv.id)
        .await?;
    SurveyTimer {
        case_id: conv.id.clone(),
        action: TimerAction::Send,
    }
    .schedule(app, now + cfg.delay.as_millis_i64())
    .await?;
    Ok(())
}

/// Changes a survey atomically if `change` returns true.
async fn update(
    app: &App,
    case_id: &str,
    mut change: impl FnMut(&mut Survey) -> bool,
) -> StoreResult<Option<Survey>> {
    app.store()
        .update_json::<Survey, StoreError, _>(&survey_key(case_id), |s| {
            let Some(mut s) = s else { return Ok(None) };
            Ok(change(&mut s).then_some(s))
        })
        .await
}

async fn close(
    app: &App,
    case_id: &str,
    from: &[Status],
    to: Status,
) -> StoreResult<Option<Survey>> {
    let now = app.store().now_ms();
    let closed = update(app, case_id, |s| {
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

/// Handles the `surveys` queue: the first question, step timeouts, expiry.
pub struct SurveyHandler {
    app: App,
}

impl SurveyHandler {
    /// The handler over `app`.
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[async_trait::async_trait]
impl crate::jobs::Handler for SurveyHandler {
    type Payload = SurveyTimer;

    fn queue(&self) -> &'static str {
        queues::SURVEYS
    }

    async fn run(&self, job: &crate::jobs::Run<SurveyTimer>) -> crate::jobs::Verdict {
        match fire(&self.app, &job.payload).await {
            Ok(()) => crate::jobs::Verdict::Done,
            Err(e) => crate::jobs::Verdict::failed(e),
        }
    }
}

/// Fires a survey timer.
pub async fn fire(app: &App, timer: &SurveyTimer) -> Result<(), ConversationError> {
    let Some(survey) = get(app, &timer.case_id).await? else {
        return Ok(());
    };
    match timer.action {
        TimerAction::Send => send_first(app, survey).await,
        TimerAction::StepTimeout(step) => {
            if survey.status == Status::Asked && survey.step == Some(step) && step != Step::Csat {
                // Follow-ups are optional: keep what we have.
                close(app, &survey.case_id, &[Status::Asked], Status::Completed).await?;
            }
            Ok(())
        }
        TimerAction::Expire => {
            close(app, &survey.case_id, &[Status::Asked], Status::Expired).await?;
            Ok(())
        }
    }
}

async fn send_first(app: &App, survey: Survey) -> Result<(), ConversationError> {
    if survey.status != Status::Scheduled {
        return Ok(());
    }
    let store = app.store();
    let contact = store.contact(survey.channel, &survey.contact_id).await?;
    if contact.as_ref().is_none_or(|c| c.opted_out) {
        close(app, &survey.case_id, &[Status::Scheduled], Status::OptedOut).await?;
        return Ok(());
    }
    let contact = contact.expect("checked");
    // Claim the send: only one process moves Scheduled → Asked.
    let now = store.now_ms();
    let Some(survey) = update(app, &survey.case_id, |s| {
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
    match ask::question(app, &survey, &contact, Step::Csat, false).await? {
        Some(via) => {
            update(app, &survey.case_id, |s| {
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
            let cfg = &app.config().survey;
            SurveyTimer {
                case_id: survey.case_id.clone(),
                action: TimerAction::Expire,
            }
            .schedule(app, now + cfg.expire_after.as_millis_i64())
            .await?;
        }
        None => {
            close(
                app,
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
pub async fn on_message(
    app: &App,
    contact: &Contact,
    msg: &InboundMessage,
) -> Result<bool, ConversationError> {
    let store = app.store();
    let Some(case_id) = store
        .get_json::<String>(&active_key(contact.channel, &contact.external_id))
        .await?
    else {
        return Ok(false);
    };
    let Some(survey) = get(app, &case_id).await? else {
        return Ok(false);
    };
    match survey.status {
        // The customer is back before we asked: the problem is not over.
        Status::Scheduled => {
            if close(app, &case_id, &[Status::Scheduled], Status::Cancelled)
                .await?
                .is_some()
            {
                SurveyTimer {
                    case_id: case_id.clone(),
                    action: TimerAction::Send,
                }
                .cancel(app)
                .await?;
            }
            Ok(false)
        }
        Status::Asked => {
            let consumed = answer(app, survey, contact, msg).await?;
            if consumed
                && store
                    .remember(
                        &format!("transcribed:{}", msg.message_id),
                        crate::webhook::DEDUPE_TTL,
                    )
                    .await?
            {
                store
                    .append_transcript(
                        &case_id,
                        &crate::store::TranscriptEntry {
                            at_ms: store.now_ms(),
                            speaker: crate::store::Speaker::Customer,
                            text: msg.content.summary(),
                            message_id: Some(msg.message_id.clone()),
                        },
                    )
                    .await?;
            }
            Ok(consumed)
        }
        _ => Ok(false),
    }
}

async fn answer(
    app: &App,
    survey: Survey,
    contact: &Contact,
    msg: &InboundMessage,
) -> Result<bool, ConversationError> {
    let Some(step) = survey.step else {
        return Ok(false);
    };
    let text = msg.content.text().unwrap_or_default().to_string();
    // Opt-out words always win.
    let rules = app.rules().current();
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
        close(app, &survey.case_id, &[Status::Asked], Status::OptedOut).await?;
        return Ok(false);
    }
    let value = match (&msg.content, step.scale()) {
        (MessageContent::Reply { payload, title, .. }, Some(scale)) => {
            answers::parse_payload(payload, scale).or_else(|| answers::parse_text(title, scale))
        }
        (_, Some(scale)) => answers::parse_text(&text, scale),
        (_, None) => None,
    };
    let now = app.store().now_ms();
    if step == Step::Comment {
        if text.trim().is_empty() {
            return Ok(false);
        }
        let comment: String = text.chars().take(2000).collect();
        update(app, &survey.case_id, |s| {
            s.comment = Some(comment.clone());
            true
        })
        .await?;
        close(app, &survey.case_id, &[Status::Asked], Status::Completed).await?;
        ask::thank(app, &survey, contact).await?;
        return Ok(true);
    }
    let Some(value) = value else {
        if survey.reasked {
            // Twice not an answer: stop asking, let the bot help.
            close(app, &survey.case_id, &[Status::Asked], Status::Abandoned).await?;
            return Ok(false);
        }
        update(app, &survey.case_id, |s| {
            s.reasked = true;
            true
        })
        .await?;
        ask::question(app, &survey, contact, step, true).await?;
        return Ok(true);
    };
    let next = next_step(app, step);
    let updated = update(app, &survey.case_id, |s| {
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
    let cfg = &app.config().survey;
    if step == Step::Csat && value <= cfg.recovery_threshold && cfg.recovery_handoff {
        close(app, &survey.case_id, &[Status::Asked], Status::Completed).await?;
        recover(app, &survey, msg, value).await?;
        return Ok(true);
    }
    match next {
        Some(next) => {
            ask::question(app, &survey, contact, next, false).await?;
            SurveyTimer {
                case_id: survey.case_id.clone(),
                action: TimerAction::StepTimeout(next),
            }
            .schedule(app, now + cfg.step_timeout.as_millis_i64())
            .await?;
        }
        None => {
            close(app, &survey.case_id, &[Status::Asked], Status::Completed).await?;
            ask::thank(app, &survey, contact).await?;
        }
    }
    Ok(true)
}

fn next_step(app: &App, after: Step) -> Option<Step> {
    let cfg = &app.config().survey;
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
    app: &App,
    survey: &Survey,
    msg: &InboundMessage,
    score: u8,
) -> Result<(), ConversationError> {
    let store = app.store();
    let (_, conv, _) = store.open_case(survey.channel, &msg.contact).await?;
    store
        .update_conversation(&conv.id, |c| c.recovery_score = Some(score))
        .await?;
    if conv.state == State::Bot {
        ownership::handoff(
            app,
            &conv.id,
            "recovery",
            RECOVERY_PRIORITY,
            &format!("survey:{}", survey.case_id),
        )
        .await?;
    }
    let lang = lang_from_code(&survey.language);
    ask::say(
        app,
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
pub async fn on_send_failed(
    app: &App,
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
    let Some(survey) = get(app, case_id).await? else {
        return Ok(());
    };
    if survey.status != Status::Asked
        || survey.step != Some(Step::Csat)
        || survey.answered_ms.is_some()
    {
        return Ok(());
    }
    let contact = app
        .store()
        .contact(survey.channel, &survey.contact_id)
        .await?;
    let name = contact
        .as_ref()
        .and_then(|c| c.display_name())
        .unwrap_or("Kak")
        .to_string();
    match ask::template(app, &survey, &name).await? {
        Some(via) => {
            update(app, case_id, |s| {
                s.via = Some(via.to_string());
                true
            })
            .await?;
        }
        None => {
            update(app, case_id, |s| {
                s.sent_ms = None;
                true
            })
            .await?;
            close(app, case_id, &[Status::Asked], Status::SkippedWindow).await?;
        }
    }
    Ok(())
}

/// Called when a contact opts out (true) or in (false): an open survey closes.
pub async fn on_opt_out(app: &App, contact: &Contact, out: bool) -> Result<(), ConversationError> {
    if !out {
        return Ok(());
    }
    if let Some(case_id) = app
        .store()
        .get_json::<String>(&active_key(contact.channel, &contact.external_id))
        .await?
    {
        close(
            app,
            &case_id,
            &[Status::Scheduled, Status::Asked],
            Status::OptedOut,
        )
        .await?;
    }
    Ok(())
}

/// Surveys scheduled between two instants (reports, CSV).
pub async fn between(app: &App, from_ms: i64, to_ms: i64) -> StoreResult<Vec<Survey>> {
    let ids: Vec<String> = app
        .store()
        .backend()
        .index_range(SURVEYS_INDEX, from_ms as f64, to_ms as f64, 1_000_000)
        .await?
        .into_iter()
        .map(|(id, _)| survey_key(&id))
        .collect();
    app.store().get_json_many(&ids).await
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
