//! [`OutboundMessage`] → Instagram Send API request body (FACTS.md §7).
//!
//! Text is limited to 1000 UTF-8 **bytes** (cut on a char boundary, ending with
//! `…`). Buttons and list rows become quick replies (at most 13, titles ≤20
//! chars, `content_type: text`); WhatsApp-only headers and footers are dropped.
//! `human_agent_tag` sends with `MESSAGE_TAG` + `HUMAN_AGENT`, otherwise
//! `RESPONSE`. Templates and mark-read have no Instagram equivalent here and are
//! rejected with [`RenderError::NotSupported`].
//!
//! Files are sent as `message.attachment {type: image|video|audio|file,
//! payload: {url}}` (FACTS.md §7; Meta fetches the URL), or with
//! `payload.attachment_id` for a file uploaded with the Attachment Upload API.
//! Type and size are checked first; Instagram shows no caption with a file, so
//! a caption is refused (split it off with [`OutboundContent::split_for`]).

use serde_json::{Value, json};

use crate::channels::event::Channel;
use crate::channels::media::{MediaKind, check_outbound};
use crate::channels::outbound::{
    OutboundContent, OutboundMedia, OutboundMediaSource, OutboundMessage,
};
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
        OutboundContent::Media(media) => {
            return Ok(envelope(msg, json!({"attachment": attachment(media)?})));
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
    Ok(envelope(msg, message))
}

fn envelope(msg: &OutboundMessage, message: Value) -> Value {
    let mut v = json!({"recipient": {"id": msg.to}});
    if msg.human_agent_tag {
        v["messaging_type"] = json!("MESSAGE_TAG");
        v["tag"] = json!("HUMAN_AGENT");
    } else {
        v["messaging_type"] = json!("RESPONSE");
    }
    v["message"] = message;
    v
}

fn attachment(media: &OutboundMedia) -> Result<Value, RenderError> {
    check_outbound(Channel::Instagram, media.kind, &media.mime_type, media.size)?;
    if media
        .caption
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty())
    {
        return Err(RenderError::NotSupported {
            channel: Channel::Instagram,
            what: "a caption on a file",
        });
    }
    let kind = match media.kind {
        MediaKind::Image => "image",
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
        MediaKind::Document => "file",
        // check_outbound has refused these already; kept for exhaustiveness.
        MediaKind::Sticker | MediaKind::Story => {
            return Err(RenderError::NotSupported {
                channel: Channel::Instagram,
                what: "stickers and stories as files",
            });
        }
    };
    let payload = match &media.source {
        OutboundMediaSource::Link { url } if !url.trim().is_empty() => json!({"url": url}),
        OutboundMediaSource::PlatformId { id } if !id.trim().is_empty() => {
            json!({"attachment_id": id})
        }
        OutboundMediaSource::Attachment { id } => {
            return Err(RenderError::NotUploaded(id.clone()));
        }
        _ => return Err(RenderError::Empty { what: "media URL" }),
    };
    Ok(json!({"type": kind, "payload": payload}))
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
            from: None,
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

    fn media(kind: MediaKind, mime: &str, size: u64) -> OutboundMedia {
        OutboundMedia {
            kind,
            source: OutboundMediaSource::Link {
                url: "https://balas.example/media/public/att1?sig=x".into(),
            },
            mime_type: mime.into(),
            size,
            caption: None,
            filename: Some("nota.pdf".into()),
        }
    }

    #[test]
    fn attachments() {
        let mut m = msg(OutboundContent::Media(media(
            MediaKind::Document,
            "application/pdf",
            1000,
        )));
        m.human_agent_tag = true;
        let v = render(&m).unwrap();
        assert_eq!(
            v,
            json!({
                "recipient": {"id": "7291836450192837"},
                "messaging_type": "MESSAGE_TAG",
                "tag": "HUMAN_AGENT",
                "message": {"attachment": {"type": "file", "payload": {"url": "https://balas.example/media/public/att1?sig=x"}}}
            })
        );
        let mut img = media(MediaKind::Image, "image/jpeg", 1000);
        img.source = OutboundMediaSource::PlatformId { id: "AID".into() };
        let v = render(&msg(OutboundContent::Media(img))).unwrap();
        assert_eq!(
            v["message"]["attachment"],
            json!({"type": "image", "payload": {"attachment_id": "AID"}})
        );
        // 8 MB for pictures, 25 MB for video; webp is not taken; captions are split off.
        assert!(
            render(&msg(OutboundContent::Media(media(
                MediaKind::Image,
                "image/png",
                8_000_001
            ))))
            .is_err()
        );
        assert!(
            render(&msg(OutboundContent::Media(media(
                MediaKind::Video,
                "video/mp4",
                25_000_000
            ))))
            .is_ok()
        );
        assert!(
            render(&msg(OutboundContent::Media(media(
                MediaKind::Image,
                "image/webp",
                10
            ))))
            .is_err()
        );
        let mut captioned = media(MediaKind::Image, "image/png", 10);
        captioned.caption = Some("foto produk".into());
        assert!(matches!(
            render(&msg(OutboundContent::Media(captioned.clone()))),
            Err(RenderError::NotSupported { .. })
        ));
        let parts = OutboundContent::Media(captioned).split_for(Channel::Instagram);
        assert_eq!(parts.len(), 2);
        assert!(render(&msg(parts[0].clone())).is_ok());
        assert_eq!(
            render(&msg(parts[1].clone())).unwrap()["message"]["text"],
            "foto produk"
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
