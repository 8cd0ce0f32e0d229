//! Satisfaction surveys after resolution.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::channels::InboundMessage;
use crate::conversation::Conversation;
use crate::store::{Contact, ConversationError};

/// A survey step due at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyTimer {
    /// The case surveyed.
    pub case_id: String,
}

impl SurveyTimer {
    /// Timer job id.
    pub fn id(&self) -> String {
        format!("survey:{}", self.case_id)
    }
}

/// Called when a case is resolved.
pub async fn on_resolved(_app: &App, _conv: &Conversation) -> Result<(), ConversationError> {
    Ok(())
}

/// Offers a customer message to a pending survey; true when it was an answer.
pub async fn on_message(
    _app: &App,
    _contact: &Contact,
    _conv: &Conversation,
    _msg: &InboundMessage,
) -> Result<bool, ConversationError> {
    Ok(false)
}

/// Called when a contact opts out (true) or in (false).
pub async fn on_opt_out(_app: &App, _contact: &Contact, _out: bool) -> Result<(), ConversationError> {
    Ok(())
}

/// Fires a survey timer.
pub async fn fire(_app: &App, _timer: &SurveyTimer) -> Result<(), ConversationError> {
    Ok(())
}

/// The CSAT answer of a case, if surveyed.
pub async fn csat_of(_app: &App, _case_id: &str) -> Result<Option<u8>, crate::store::StoreError> {
    Ok(None)
}
