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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::outbound::{Button, ListRow, ListSection};

    fn msg(content: OutboundContent) -> OutboundMessage {
        OutboundMessage {
            channel: Channel::Instagram,
            to: "7291836450192837".into(),
            content,
            human_agent_tag: false,
        }
    }

    #[test]
    fn text_limit_is_bytes() {
        for (body, max_ok) in [
            ("a".repeat(1000), true),
            ("a".repeat(1001), false),
            ("😀".repeat(250), true),
            ("😀".repeat(251), false),
            ("é".repeat(600), false),
        ] {
            let v = render(&msg(OutboundContent::Text { body: body.clone() })).unwrap();
            let t = v["message"]["text"].as_str().unwrap();
            assert!(t.len() <= MAX_TEXT_BYTES, "{}", t.len());
            assert_eq!(t == body, max_ok);
            if !max_ok {
                assert!(t.ends_with('…'));
            }
        }
        assert_eq!(
            render(&msg(OutboundContent::Text { body: "".into() })),
            Err(RenderError::Empty { what: "text" })
        );
    }

    #[test]
    fn quick_replies() {
        let buttons: Vec<Button> = (0..15)
            .map(|i| Button {
                id: format!("P{i}"),
                title: if i == 1 {
                    "Pilihan yang sangat panjang".into()
                } else {
                    format!("Opsi {i}")
                },
            })
            .collect();
        let mut m = msg(OutboundContent::Buttons {
            body: "pilih".into(),
            buttons,
            header: Some("h".into()),
            footer: Some("f".into()),
        });
        m.human_agent_tag = true;
        let v = render(&m).unwrap();
        assert_eq!(v["messaging_type"], "MESSAGE_TAG");
        assert_eq!(v["tag"], "HUMAN_AGENT");
        let qr = v["message"]["quick_replies"].as_array().unwrap();
        assert_eq!(qr.len(), MAX_QUICK_REPLIES);
        assert_eq!(qr[1]["title"], "Pilihan yang sangat…");
        assert!(
            qr.iter().all(|q| q["content_type"] == "text"
                && q["title"].as_str().unwrap().chars().count() <= 20)
        );
        assert_eq!(v["message"]["text"], "pilih");

        let v = render(&msg(OutboundContent::List {
            body: "topik".into(),
            button_label: "Pilih".into(),
            sections: vec![
                ListSection {
                    title: "A".into(),
                    rows: vec![ListRow {
                        id: "r1".into(),
                        title: "Satu".into(),
                        description: Some("d".into()),
                    }],
                },
                ListSection {
                    title: "B".into(),
                    rows: vec![ListRow {
                        id: "r2".into(),
                        title: "Dua".into(),
                        description: None,
                    }],
                },
            ],
            header: None,
            footer: None,
        }))
        .unwrap();
        assert_eq!(v["messaging_type"], "RESPONSE");
        assert!(v.get("tag").is_none());
        let qr = v["message"]["quick_replies"].as_array().unwrap();
        assert_eq!(
            (qr[0]["payload"].as_str(), qr[1]["title"].as_str()),
            (Some("r1"), Some("Dua"))
        );
    }

    #[test]
    fn not_available() {
        let t = msg(OutboundContent::Template {
            name: "t".into(),
            language: "id".into(),
            body_parameters: vec![],
            quick_reply_payloads: vec![],
        });
        assert!(matches!(
            render(&t),
            Err(RenderError::NotSupported {
                what: "template",
                ..
            })
        ));
        let r = msg(OutboundContent::MarkRead {
            message_id: "m".into(),
            typing: true,
        });
        assert!(matches!(
            render(&r),
            Err(RenderError::NotSupported {
                what: "mark-read",
                ..
            })
        ));
    }
}
