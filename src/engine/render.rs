//! What an agent's message says once its `{{variables}}` are filled in for
//! the conversation: the same variables as bot replies and canned responses
//! (`{{contact.name}}`, `{{case.id}}`, `{{queue.position}}`,
//! `{{business_hours.next_open}}` and `[intents.variables]`). A variable
//! nobody knows is refused, never sent as written.

use super::{Engine, lang_from_code, template_variables};
use crate::conversation::{Conversation, State};
use crate::intents::{ReplyTemplate, TemplateError};
use crate::store::{Contact, StoreError};

/// Why a text could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderTextError {
    /// `{{name}}` is not a variable, or `{{` is not closed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Reading the contact or the queue failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Renders `text` for `conv`.
pub async fn for_conversation(
    engine: &Engine,
    conv: &Conversation,
    text: &str,
) -> Result<String, RenderTextError> {
    let known = engine.config().intents.variables.keys().cloned().collect();
    let template = ReplyTemplate::parse(text, &known)?;
    if template.variables().next().is_none() {
        return Ok(text.to_string());
    }
    let store = engine.store();
    let contact = store
        .contact(conv.channel, &conv.contact_id)
        .await?
        .unwrap_or_else(|| Contact::new(conv.channel, &conv.contact_id, conv.opened_ms));
    let position = if conv.state == State::Queued {
        store.queue_position(conv).await?
    } else {
        None
    };
    let lang = lang_from_code(&conv.language);
    let vars = template_variables(engine, &contact, conv, position, lang);
    Ok(template.render(&vars))
}
