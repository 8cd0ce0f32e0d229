//! Who may see a conversation's files.
//!
//! One function decides it, [`may_see`], so the rule is written once and
//! every route that serves something of a conversation asks the same
//! question.

use crate::app::App;
use crate::config::Role;
use crate::conversation::{Conversation, State};
use crate::engine::ownership;
use crate::http::ApiError;

use super::auth::Caller;

/// Whether `caller` may see `conversation` and what it carries: supervisors
/// and admins see everything; an agent sees the cases they own or owned
/// (assigned to them, or resolved by them), and those waiting in a queue they
/// take from (they may claim it, so they may look first). Marketers and
/// other agents see nothing of it.
pub async fn may_see(
    app: &App,
    caller: &Caller,
    conversation: &Conversation,
) -> Result<bool, ApiError> {
    let agent = &caller.0;
    match agent.role {
        Role::Supervisor | Role::Admin => return Ok(true),
        Role::Marketer => return Ok(false),
        Role::Agent => {}
    }
    if conversation.agent.as_deref() == Some(agent.id.as_str()) {
        return Ok(true);
    }
    if conversation.state == State::Queued
        && let Some(queue) = &conversation.queue
    {
        let queues = ownership::agent_queues(app.engine(), agent).await?;
        return Ok(queues.iter().any(|q| q == queue));
    }
    Ok(false)
}
