//! [`OutboundMessage`] → Instagram Send API request body (FACTS.md §7).
//!
//! Text is limited to 1000 UTF-8 **bytes** (cut on a char boundary, ending with
//! `…`). Buttons and list rows become quick replies (at most 13, titles ≤20
//! chars, `content_type: text`); WhatsApp-only headers and footers are dropped.
//! `human_agent_tag` sends with `MESSAGE_TAG` + `HUMAN_AGENT`, otherwise
//! `RESPONSE`. Templates and mark-read have no Instagram equivalent here and are
//! rejected with [`RenderError::NotSupported`].

use serde_json::{Value, json};

use crate::channels::event::Channel;
use crate::channels::outbound::{OutboundContent, OutboundMessage};
use crate::channels::render::{RenderError, dedupe_labels, truncate_bytes, truncate_chars};

/// Message text limit (UTF-8 bytes).
pub const MAX_TEXT_BYTES: usize = 1000;
/// Quick replies per message.
pub const MAX_QUICK_REPLIES: usize = 13;
/// Quick reply title (chars).
pub const MAX_QUICK_REPLY_TITLE: usize = 20;
/// Quick reply payload (chars; Messenger Platform limit).
pub const MAX_QUICK_REPLY_PAYLOAD: usize = 1000;

/// Renders `msg` as an Instagram Send API request body.
pub fn render(msg: &OutboundMessage) -> Result<Value, RenderError> {
    if msg.channel != Channel::Instagram {
        return Err(RenderError::WrongChannel {
            expected: Channel::Instagram,
            got: msg.channel,
        });
    }
    let (body, options): (&str, Vec<(&str, &str)>) = match &msg.content {
        OutboundContent::Text { body } => (body, Vec::new()),
        OutboundContent::Buttons { body, buttons, .. } => (
            body,
            buttons
                .iter()
                .map(|b| (b.id.as_str(), b.title.as_str()))
                .collect(),
        ),
        OutboundContent::List { body, sections, .. } => (
            body,
            sections
                .iter()
                .flat_map(|s| s.rows.iter())
                .map(|r| (r.id.as_str(), r.title.as_str()))
                .collect(),
        ),
        OutboundContent::Template { .. } => {
            return Err(RenderError::NotSupported {
                channel: Channel::Instagram,
                what: "template",
            });
        }
        OutboundContent::MarkRead { .. } => {
            return Err(RenderError::NotSupported {
                channel: Channel::Instagram,
                what: "mark-read",
            });
        }
    };
    if body.trim().is_empty() {
        return Err(RenderError::Empty { what: "text" });
    }
    let mut message = json!({"text": truncate_bytes(body, MAX_TEXT_BYTES)});
    if !options.is_empty() {
        let options = &options[..options.len().min(MAX_QUICK_REPLIES)];
        let mut titles: Vec<String> = options
            .iter()
            .enumerate()
            .map(|(i, (id, title))| {
                let t = title.trim();
                let t = if t.is_empty() { id.trim() } else { t };
                let t = if t.is_empty() {
                    (i + 1).to_string()
                } else {
                    t.to_string()
                };
                truncate_chars(&t, MAX_QUICK_REPLY_TITLE)
            })
            .collect();
        dedupe_labels(&mut titles, MAX_QUICK_REPLY_TITLE);
        let replies: Vec<Value> = options
            .iter()
            .zip(&titles)
            .map(|((id, _), title)| {
                let payload = id.trim();
                let payload = if payload.is_empty() {
                    title.as_str()
                } else {
                    payload
                };
                json!({
                    "content_type": "text",
                    "title": title,
                    "payload": payload.chars().take(MAX_QUICK_REPLY_PAYLOAD).collect::<String>(),
                })
            })
            .collect();
        message["quick_replies"] = Value::Array(replies);
    }
    let mut v = json!({"recipient": {"id": msg.to}});
    if msg.human_agent_tag {
        v["messaging_type"] = json!("MESSAGE_TAG");
        v["tag"] = json!("HUMAN_AGENT");
    } else {
        v["messaging_type"] = json!("RESPONSE");
    }
    v["message"] = message;
    Ok(v)
}
