//! Satisfaction surveys as stored: one document per surveyed case, an index by
//! scheduled time (reports, CSV), and a pointer from a contact to the survey
//! waiting for their answer. What a survey asks and when lives in
//! [`crate::survey`].

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoreResult};
use crate::channels::Channel;

/// Where a survey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyStatus {
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

impl SurveyStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyStatus::Scheduled => "scheduled",
            SurveyStatus::Asked => "asked",
            SurveyStatus::Completed => "completed",
            SurveyStatus::Expired => "expired",
            SurveyStatus::SkippedWindow => "skipped_window",
            SurveyStatus::Cancelled => "cancelled",
            SurveyStatus::OptedOut => "opted_out",
            SurveyStatus::Abandoned => "abandoned",
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
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Csat => "csat",
            Step::Nps => "nps",
            Step::Ces => "ces",
            Step::Comment => "comment",
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
    pub status: SurveyStatus,
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
    /// The business number or account of the case: the survey goes out from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

fn survey_key(case_id: &str) -> String {
    format!("survey:{case_id}")
}

fn active_key(channel: Channel, contact_id: &str) -> String {
    format!("survey_active:{channel}:{contact_id}")
}

/// Surveys by scheduled time (reports, CSV); sharded.
const SURVEYS_INDEX: &str = "surveys:by_scheduled";

impl Store {
    /// The survey of a case.
    pub async fn survey(&self, case_id: &str) -> StoreResult<Option<Survey>> {
        self.get_json(&survey_key(case_id)).await
    }

    /// Stores a new survey, indexes it and points its contact at it, unless
    /// the case already has one; returns the survey stored now (the new one or
    /// the earlier one). A retried call finishes what an interrupted one began.
    pub async fn create_survey(&self, survey: &Survey) -> StoreResult<Survey> {
        let created = self
            .update_json::<Survey, StoreError, _>(&survey_key(&survey.case_id), |existing| {
                Ok(if existing.is_some() {
                    None
                } else {
                    Some(survey.clone())
                })
            })
            .await?
            .is_some();
        let stored = match created {
            true => survey.clone(),
            false => self
                .survey(&survey.case_id)
                .await?
                .unwrap_or_else(|| survey.clone()),
        };
        if stored.status == SurveyStatus::Scheduled {
            self.sharded_put(SURVEYS_INDEX, &stored.case_id, stored.scheduled_ms as f64)
                .await?;
            self.put_json(
                &active_key(stored.channel, &stored.contact_id),
                &stored.case_id,
            )
            .await?;
        }
        Ok(stored)
    }

    /// Changes a survey atomically when `change` returns true; the survey
    /// after the change, or `None` when nothing changed.
    pub async fn update_survey(
        &self,
        case_id: &str,
        mut change: impl FnMut(&mut Survey) -> bool,
    ) -> StoreResult<Option<Survey>> {
        self.update_json::<Survey, StoreError, _>(&survey_key(case_id), |s| {
            let Some(mut s) = s else { return Ok(None) };
            Ok(change(&mut s).then_some(s))
        })
        .await
    }

    /// The case whose survey last addressed this contact, if any.
    pub async fn active_survey(
        &self,
        channel: Channel,
        contact_id: &str,
    ) -> StoreResult<Option<String>> {
        self.get_json(&active_key(channel, contact_id)).await
    }

    /// Forgets which survey last addressed a contact.
    pub async fn forget_active_survey(
        &self,
        channel: Channel,
        contact_id: &str,
    ) -> StoreResult<()> {
        self.backend
            .doc_delete(&active_key(channel, contact_id))
            .await?;
        Ok(())
    }

    /// Deletes the survey of a case (retention); true when there was one.
    pub async fn delete_survey(&self, case_id: &str) -> StoreResult<bool> {
        let existed = self.backend.doc_delete(&survey_key(case_id)).await?;
        self.sharded_remove(SURVEYS_INDEX, case_id).await?;
        Ok(existed)
    }

    /// Surveys scheduled between two instants (Unix ms, inclusive).
    pub async fn surveys_between(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<Survey>> {
        let keys: Vec<String> = self
            .sharded_range(SURVEYS_INDEX, from_ms as f64, to_ms as f64, 1_000_000)
            .await?
            .into_iter()
            .map(|(id, _)| survey_key(&id))
            .collect();
        self.get_json_many(&keys).await
    }
}
