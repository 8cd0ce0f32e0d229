//! Instagram Messaging webhook payloads → [`InboundEvent`]s (FACTS.md §6).
//!
//! Walks `entry[].messaging[]`, `entry[].standby[]` (handover: same item shape)
//! and the App Dashboard test form `entry[].changes[{field:"messages", value}]`.
//! Other `changes` fields (comments, mentions …) and unknown item kinds become
//! `Unsupported`.
//!
//! Dedupe keys (FACTS.md §8): messages and echoes `ig:msg:{mid}` (the 2nd, 3rd …
//! attachment of one message `ig:msg:{mid}:{n}`), unsend `ig:deleted:{mid}` (so it
//! does not collide with the message it deletes), `ig:read:{mid}:{ts}`,
//! `ig:reaction:{mid}:{ts}:{action}`, `ig:postback:{mid}:{ts}`; anything else
//! `ig:{what}:{hash of the item JSON}`.

use serde_json::Value;

use crate::channels::event::{
    Channel, ContactRef, EventKind, InboundEvent, InboundMedia, InboundMessage, MessageContent,
    ReplyKind,
};
use crate::channels::media::MediaKind;
use crate::channels::parse::{
    ParseError, arr, envelope, hashed_key, nonempty, str_of, timestamp_ms,
};

/// The `object` value of Instagram webhooks.
pub const OBJECT: &str = "instagram";

/// Parses an Instagram webhook body. Fails only when the body is not JSON or not an
/// `{"object", "entry": [...]}` envelope.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<InboundEvent>, ParseError> {
    let (object, entries) = envelope(body)?;
    let mut events = Vec::new();
    for entry in &entries {
        let account_id = nonempty(entry, "id").unwrap_or_default();
        let entry_time = timestamp_ms(entry, "time");
        if object != OBJECT {
            events.push(unsupported(
                &account_id,
                entry_time,
                format!("object:{object}"),
                hashed_key("ig:object", entry),
            ));
            continue;
        }
        for item in arr(entry, "messaging").iter().chain(arr(entry, "standby")) {
            parse_item(&account_id, item, &mut events);
        }
        for change in arr(entry, "changes") {
            let field = str_of(change, "field").unwrap_or_default();
            match change.get("value") {
                Some(value) if field == "messages" => parse_item(&account_id, value, &mut events),
                _ => events.push(unsupported(
                    &account_id,
                    entry_time,
                    format!("field:{field}"),
                    hashed_key(&format!("ig:field:{field}"), change),
                )),
            }
        }
    }
    Ok(events)
}

fn unsupported(business_id: &str, timestamp_ms: i64, what: String, key: String) -> InboundEvent {
    InboundEvent {
        channel: Channel::Instagram,
        business_id: business_id.to_string(),
        dedupe_key: key,
        timestamp_ms,
        kind: EventKind::Unsupported {
            contact: None,
            what,
        },
    }
}

fn contact(id: String) -> ContactRef {
    ContactRef {
        external_id: id,
        name: None,
        wa_id: None,
        user_id: None,
    }
}

/// Common names of Instagram reactions, for payloads that omit `emoji`.
fn reaction_emoji(name: &str) -> String {
    match name {
        "love" => "❤️",
        "like" => "👍",
        "laugh" => "😆",
        "wow" => "😮",
        "sad" => "😢",
        "angry" => "😠",
        other => other,
    }
    .to_string()
}

fn parse_item(account_id: &str, item: &Value, events: &mut Vec<InboundEvent>) {
    let ts = timestamp_ms(item, "timestamp");
    let sender = item.get("sender").and_then(|s| nonempty(s, "id"));
    let recipient = item.get("recipient").and_then(|s| nonempty(s, "id"));
    let event = |dedupe_key: String, kind: EventKind| InboundEvent {
        channel: Channel::Instagram,
        business_id: account_id.to_string(),
        dedupe_key,
        timestamp_ms: ts,
        kind,
    };
    let unknown = |what: &str| {
        let mut ev = unsupported(
            account_id,
            ts,
            what.to_string(),
            hashed_key(&format!("ig:{what}"), item),
        );
        if let (EventKind::Unsupported { contact: c, .. }, Some(s)) = (&mut ev.kind, &sender) {
            *c = Some(contact(s.clone()));
        }
        ev
    };

    if let Some(message) = item.get("message") {
        let Some(mid) = nonempty(message, "mid") else {
            events.push(unknown("message:no_mid"));
            return;
        };
        let is = |key: &str| message.get(key).and_then(Value::as_bool).unwrap_or(false);
        if is("is_echo") {
            let Some(customer) = recipient else {
                events.push(unknown("echo:no_recipient"));
                return;
            };
            events.push(event(
                format!("ig:msg:{mid}"),
                EventKind::Echo {
                    contact: contact(customer),
                    message_id: mid,
                    text: nonempty(message, "text"),
                },
            ));
            return;
        }
        let Some(sender) = sender.clone() else {
            events.push(unknown("message:no_sender"));
            return;
        };
        if is("is_deleted") {
            events.push(event(
                format!("ig:deleted:{mid}"),
                EventKind::Deleted {
                    contact: contact(sender),
                    message_id: mid,
                },
            ));
            return;
        }
        let text = nonempty(message, "text");
        let reply_to_obj = message.get("reply_to");
        let reply_to = reply_to_obj.and_then(|r| nonempty(r, "mid"));
        let story = reply_to_obj.and_then(|r| r.get("story"));
        let mut contents: Vec<MessageContent> = Vec::new();
        if is("is_unsupported") {
            contents.push(MessageContent::Unsupported {
                what: "unsupported".to_string(),
            });
        } else if let Some(payload) = message
            .get("quick_reply")
            .and_then(|q| str_of(q, "payload"))
        {
            contents.push(MessageContent::Reply {
                source: ReplyKind::QuickReply,
                title: text.clone().unwrap_or_else(|| payload.clone()),
                payload,
            });
        } else if let Some(story) = story {
            contents.push(MessageContent::Story {
                story_kind: "reply".to_string(),
                url: nonempty(story, "url"),
                text: text.clone(),
            });
        } else if !arr(message, "attachments").is_empty() {
            for att in arr(message, "attachments") {
                let kind = str_of(att, "type").unwrap_or_else(|| "unknown".to_string());
                let url = att.get("payload").and_then(|p| nonempty(p, "url"));
                contents.push(match MediaKind::from_platform(&kind) {
                    _ if kind == "story_mention" => MessageContent::Story {
                        story_kind: "mention".to_string(),
                        url,
                        text: None,
                    },
                    Some(media_kind) => MessageContent::Media(InboundMedia {
                        kind: media_kind,
                        media_id: None,
                        url,
                        mime_type: None,
                        sha256: None,
                        caption: text.clone(),
                        filename: None,
                        voice: false,
                        animated: false,
                    }),
                    None => MessageContent::Shared { what: kind, url },
                });
            }
        } else if let Some(body) = text {
            contents.push(MessageContent::Text { body });
        } else {
            contents.push(MessageContent::Unsupported {
                what: "empty".to_string(),
            });
        }
        for (i, content) in contents.into_iter().enumerate() {
            let key = if i == 0 {
                format!("ig:msg:{mid}")
            } else {
                format!("ig:msg:{mid}:{i}")
            };
            events.push(event(
                key,
                EventKind::Message(InboundMessage {
                    contact: contact(sender.clone()),
                    message_id: mid.clone(),
                    content,
                    reply_to: reply_to.clone(),
                }),
            ));
        }
        return;
    }

    let Some(sender) = sender.clone() else {
        events.push(unknown("item:no_sender"));
        return;
    };
    if let Some(pb) = item.get("postback") {
        let mid = str_of(pb, "mid").unwrap_or_default();
        let payload = str_of(pb, "payload").unwrap_or_default();
        events.push(event(
            format!("ig:postback:{mid}:{ts}"),
            EventKind::Message(InboundMessage {
                contact: contact(sender),
                message_id: mid,
                content: MessageContent::Reply {
                    source: ReplyKind::Postback,
                    title: str_of(pb, "title").unwrap_or_else(|| payload.clone()),
                    payload,
                },
                reply_to: None,
            }),
        ));
    } else if let Some(read) = item.get("read") {
        let mid = str_of(read, "mid").unwrap_or_default();
        events.push(event(
            format!("ig:read:{mid}:{ts}"),
            EventKind::Read {
                contact: contact(sender),
                message_id: mid,
            },
        ));
    } else if let Some(r) = item.get("reaction") {
        let mid = str_of(r, "mid").unwrap_or_default();
        let action = str_of(r, "action").unwrap_or_else(|| "react".to_string());
        let emoji = if action == "unreact" {
            None
        } else {
            nonempty(r, "emoji").or_else(|| nonempty(r, "reaction").map(|n| reaction_emoji(&n)))
        };
        events.push(event(
            format!("ig:reaction:{mid}:{ts}:{action}"),
            EventKind::Reaction {
                contact: contact(sender),
                message_id: mid,
                emoji,
            },
        ));
    } else {
        let what = [
            "referral",
            "optin",
            "pass_thread_control",
            "take_thread_control",
        ]
        .iter()
        .find(|k| item.get(**k).is_some())
        .copied()
        .unwrap_or("item");
        events.push(unknown(what));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(items: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"object": "instagram", "entry": [
            {"id": "IGACC", "time": 1778576401512_i64, "messaging": items}
        ]}))
        .unwrap()
    }

    fn item(extra: Value) -> Value {
        let mut v = json!({"sender": {"id": "U1"}, "recipient": {"id": "IGACC"}, "timestamp": 1778576401000_i64});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }

    #[test]
    fn kinds() {
        let ev = parse_webhook(&body(json!([
            item(json!({"message": {"mid": "m1", "text": "wow", "reply_to": {"story": {"url": "https://s", "id": "9"}}}})),
            item(json!({"message": {"mid": "m2", "attachments": [{"type": "story_mention", "payload": {"url": "https://m"}}]}})),
            item(json!({"message": {"mid": "m3", "is_unsupported": true}})),
            item(json!({"message": {"mid": "m4", "attachments": [{"type": "image", "payload": {"url": "a"}}, {"type": "video", "payload": {"url": "b"}}]}})),
            item(json!({"reaction": {"mid": "m5", "action": "unreact"}})),
            item(json!({"reaction": {"mid": "m6", "action": "react", "reaction": "like"}})),
            item(json!({"referral": {"ref": "x"}})),
            item(json!({"message": {"mid": "m7", "text": "re", "reply_to": {"mid": "m0"}}})),
            item(json!({"message": {"mid": "m8", "text": "ini kak", "attachments": [
                {"type": "file", "payload": {"url": "https://cdn/f.pdf"}},
                {"type": "audio", "payload": {"url": "https://cdn/a.mp4"}},
                {"type": "share", "payload": {"url": "https://cdn/post"}},
                {"type": "ig_reel", "payload": {"reel_video_id": "1"}}
            ]}})),
        ])))
        .unwrap();
        let keys: Vec<&str> = ev.iter().map(|e| e.dedupe_key.as_str()).collect();
        assert_eq!(
            &keys[..5],
            [
                "ig:msg:m1",
                "ig:msg:m2",
                "ig:msg:m3",
                "ig:msg:m4",
                "ig:msg:m4:1"
            ]
        );
        assert_eq!(keys[5], "ig:reaction:m5:1778576401000:unreact");
        assert!(keys[7].starts_with("ig:referral:"));
        let summaries: Vec<String> = ev
            .iter()
            .map(|e| match &e.kind {
                EventKind::Message(m) => m.content.summary(),
                EventKind::Reaction { emoji, .. } => format!("reaction {emoji:?}"),
                EventKind::Unsupported { what, contact } => {
                    format!("U:{what}:{}", contact.is_some())
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            summaries,
            [
                "[story reply] wow",
                "[story mention]",
                "[unsupported: unsupported]",
                "[image]",
                "[video]",
                "reaction None",
                "reaction Some(\"👍\")",
                "U:referral:true",
                "re",
                "[document] ini kak",
                "[audio] ini kak",
                "[share]",
                "[ig_reel]",
            ]
        );
        let EventKind::Message(m) = &ev[8].kind else {
            panic!()
        };
        assert_eq!(m.reply_to.as_deref(), Some("m0"));
        // Files and stories keep their URL for download; shares are links only.
        let media: Vec<Option<(MediaKind, Option<String>)>> = ev
            .iter()
            .map(|e| match &e.kind {
                EventKind::Message(m) => m.content.media().map(|x| (x.kind, x.url)),
                _ => None,
            })
            .collect();
        let url = |u: &str| Some(u.to_string());
        assert_eq!(media[0], Some((MediaKind::Story, url("https://s"))));
        assert_eq!(media[1], Some((MediaKind::Story, url("https://m"))));
        assert_eq!(media[3], Some((MediaKind::Image, url("a"))));
        assert_eq!(
            media[9],
            Some((MediaKind::Document, url("https://cdn/f.pdf")))
        );
        assert_eq!(
            media[10],
            Some((MediaKind::Audio, url("https://cdn/a.mp4")))
        );
        assert_eq!(media[11], None);
        assert_eq!(ev[11].dedupe_key, "ig:msg:m8:2");
    }

    #[test]
    fn standby_changes_and_seconds() {
        let body = serde_json::to_vec(&json!({"object": "instagram", "entry": [
            {"id": "IGACC", "time": 1778576401, "standby": [
                {"sender": {"id": "U1"}, "recipient": {"id": "IGACC"}, "timestamp": 1778576401, "message": {"mid": "s1", "text": "halo"}}
            ], "changes": [
                {"field": "messages", "value": {"sender": {"id": "12334"}, "recipient": {"id": "23245"}, "timestamp": "1527459824", "message": {"mid": "test_mid", "text": "test"}}},
                {"field": "comments", "value": {"id": "c1", "text": "nice"}}
            ]}
        ]}))
        .unwrap();
        let ev = parse_webhook(&body).unwrap();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].timestamp_ms, 1_778_576_401_000);
        assert_eq!(ev[1].timestamp_ms, 1_527_459_824_000);
        assert_eq!(ev[1].dedupe_key, "ig:msg:test_mid");
        assert!(
            matches!(&ev[2].kind, EventKind::Unsupported { what, .. } if what == "field:comments")
        );
    }
}
