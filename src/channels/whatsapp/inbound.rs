//! WhatsApp Cloud API webhook payloads → [`InboundEvent`]s (FACTS.md §3).
//!
//! The payload is walked as raw JSON so that nothing short of a broken envelope
//! can fail a batch: every entry, change, message, status and value-level error
//! becomes an event, and anything unknown becomes `Unsupported`.
//!
//! Dedupe keys (FACTS.md §8): messages `wa:msg:{wamid}`, statuses
//! `wa:status:{wamid}:{status}`; items without an id (value errors, unknown
//! fields, malformed items) get `wa:{what}:{hash of the item JSON}`.

use serde_json::Value;

use crate::channels::event::{
    Channel, ContactRef, DeliveryState, DeliveryStatus, EventKind, InboundEvent, InboundMedia,
    InboundMessage, MessageContent, ReplyKind,
};
use crate::channels::media::MediaKind;
use crate::channels::parse::{
    ParseError, arr, envelope, f64_of, hashed_key, nonempty, str_of, timestamp_ms,
};

/// The `object` value of WhatsApp webhooks.
pub const OBJECT: &str = "whatsapp_business_account";

/// Parses a WhatsApp webhook body. Fails only when the body is not JSON or not an
/// `{"object", "entry": [...]}` envelope.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<InboundEvent>, ParseError> {
    let (object, entries) = envelope(body)?;
    let mut events = Vec::new();
    for entry in &entries {
        let waba_id = nonempty(entry, "id").unwrap_or_default();
        if object != OBJECT {
            events.push(unsupported(
                waba_id,
                0,
                format!("object:{object}"),
                None,
                hashed_key("wa:object", entry),
            ));
            continue;
        }
        for change in arr(entry, "changes") {
            parse_change(&waba_id, change, &mut events);
        }
    }
    Ok(events)
}

fn unsupported(
    business_id: String,
    timestamp_ms: i64,
    what: String,
    contact: Option<ContactRef>,
    dedupe_key: String,
) -> InboundEvent {
    InboundEvent {
        channel: Channel::WhatsApp,
        business_id,
        dedupe_key,
        timestamp_ms,
        kind: EventKind::Unsupported { contact, what },
    }
}

fn parse_change(waba_id: &str, change: &Value, events: &mut Vec<InboundEvent>) {
    let field = str_of(change, "field").unwrap_or_default();
    let value = change.get("value").unwrap_or(&Value::Null);
    let business_id = value
        .get("metadata")
        .and_then(|m| nonempty(m, "phone_number_id"))
        .unwrap_or_else(|| waba_id.to_string());
    if field != "messages" {
        events.push(unsupported(
            business_id,
            0,
            format!("field:{field}"),
            None,
            hashed_key(&format!("wa:field:{field}"), change),
        ));
        return;
    }
    let contacts = arr(value, "contacts");
    let messages = arr(value, "messages");
    let statuses = arr(value, "statuses");
    let errors = arr(value, "errors");
    for message in messages {
        events.push(parse_message(&business_id, contacts, message));
    }
    for status in statuses {
        events.push(parse_status(&business_id, status));
    }
    for error in errors {
        events.push(InboundEvent {
            channel: Channel::WhatsApp,
            business_id: business_id.clone(),
            dedupe_key: hashed_key("wa:error", error),
            timestamp_ms: 0,
            kind: EventKind::PlatformError {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                title: nonempty(error, "title")
                    .or_else(|| nonempty(error, "message"))
                    .unwrap_or_default(),
            },
        });
    }
    if messages.is_empty() && statuses.is_empty() && errors.is_empty() {
        events.push(unsupported(
            business_id,
            0,
            "value:empty".to_string(),
            None,
            hashed_key("wa:value", change),
        ));
    }
}

/// Finds the sender among `contacts` (by `wa_id`, then `user_id`, then the only
/// contact) and builds the [`ContactRef`]. `None` when no id is known at all.
fn contact_for(
    contacts: &[Value],
    from: Option<String>,
    from_user_id: Option<String>,
) -> Option<ContactRef> {
    let matched = contacts
        .iter()
        .find(|c| from.is_some() && nonempty(c, "wa_id") == from)
        .or_else(|| {
            contacts
                .iter()
                .find(|c| from_user_id.is_some() && nonempty(c, "user_id") == from_user_id)
        })
        .or_else(|| match contacts {
            // A single contact whose ids do not contradict the message is the sender.
            [only] => {
                let clash = |key: &str, ours: &Option<String>| {
                    matches!((nonempty(only, key), ours), (Some(a), Some(b)) if &a != b)
                };
                (!clash("wa_id", &from) && !clash("user_id", &from_user_id)).then_some(only)
            }
            _ => None,
        });
    let wa_id = from.or_else(|| matched.and_then(|c| nonempty(c, "wa_id")));
    let user_id = from_user_id.or_else(|| matched.and_then(|c| nonempty(c, "user_id")));
    let name = matched.and_then(|c| c.get("profile").and_then(|p| nonempty(p, "name")));
    let external_id = wa_id.clone().or_else(|| user_id.clone())?;
    Some(ContactRef {
        external_id,
        name,
        wa_id,
        user_id,
    })
}

fn parse_message(business_id: &str, contacts: &[Value], m: &Value) -> InboundEvent {
    let timestamp_ms = timestamp_ms(m, "timestamp");
    let msg_type = str_of(m, "type").unwrap_or_default();
    let contact = contact_for(contacts, nonempty(m, "from"), nonempty(m, "from_user_id"));
    let Some(id) = nonempty(m, "id") else {
        return unsupported(
            business_id.to_string(),
            timestamp_ms,
            format!("message:{msg_type}:no_id"),
            contact,
            hashed_key("wa:msg", m),
        );
    };
    let dedupe_key = format!("wa:msg:{id}");
    let event = |kind| InboundEvent {
        channel: Channel::WhatsApp,
        business_id: business_id.to_string(),
        dedupe_key: dedupe_key.clone(),
        timestamp_ms,
        kind,
    };
    let Some(contact) = contact else {
        return event(EventKind::Unsupported {
            contact: None,
            what: format!("message:{msg_type}:no_sender"),
        });
    };
    let obj = m.get(msg_type.as_str()).unwrap_or(&Value::Null);
    if msg_type == "reaction" {
        let emoji = nonempty(obj, "emoji");
        return event(EventKind::Reaction {
            contact,
            message_id: str_of(obj, "message_id").unwrap_or_default(),
            emoji,
        });
    }
    if msg_type == "system" {
        let sub = str_of(obj, "type").unwrap_or_default();
        return event(EventKind::Unsupported {
            contact: Some(contact),
            what: format!("system:{sub}"),
        });
    }
    let content = message_content(&msg_type, obj);
    let reply_to = m.get("context").and_then(|c| nonempty(c, "id"));
    event(EventKind::Message(InboundMessage {
        contact,
        message_id: id,
        content,
        reply_to,
    }))
}

fn unsupported_content(what: impl Into<String>) -> MessageContent {
    MessageContent::Unsupported { what: what.into() }
}

fn message_content(msg_type: &str, obj: &Value) -> MessageContent {
    match msg_type {
        "text" => match str_of(obj, "body") {
            Some(body) => MessageContent::Text { body },
            None => unsupported_content("text:no_body"),
        },
        "interactive" => {
            let sub = str_of(obj, "type").unwrap_or_default();
            let source = match sub.as_str() {
                "button_reply" => ReplyKind::Button,
                "list_reply" => ReplyKind::ListRow,
                _ => return unsupported_content(format!("interactive:{sub}")),
            };
            let reply = obj.get(sub.as_str()).unwrap_or(&Value::Null);
            match str_of(reply, "id") {
                Some(payload) => MessageContent::Reply {
                    source,
                    payload,
                    title: str_of(reply, "title").unwrap_or_default(),
                },
                None => unsupported_content(format!("interactive:{sub}:no_id")),
            }
        }
        "button" => match str_of(obj, "payload") {
            Some(payload) => MessageContent::Reply {
                source: ReplyKind::TemplateButton,
                title: str_of(obj, "text").unwrap_or_else(|| payload.clone()),
                payload,
            },
            None => unsupported_content("button:no_payload"),
        },
        "image" | "video" | "audio" | "document" | "sticker" => {
            let kind = MediaKind::from_platform(msg_type).unwrap_or(MediaKind::Document);
            let flag = |key: &str| obj.get(key).and_then(Value::as_bool).unwrap_or(false);
            MessageContent::Media(InboundMedia {
                kind,
                media_id: nonempty(obj, "id"),
                url: None,
                mime_type: nonempty(obj, "mime_type"),
                sha256: nonempty(obj, "sha256"),
                caption: nonempty(obj, "caption"),
                filename: nonempty(obj, "filename"),
                voice: kind == MediaKind::Audio && flag("voice"),
                animated: kind == MediaKind::Sticker && flag("animated"),
            })
        }
        "location" => match (f64_of(obj, "latitude"), f64_of(obj, "longitude")) {
            (Some(latitude), Some(longitude)) => MessageContent::Location {
                latitude,
                longitude,
                name: nonempty(obj, "name"),
                address: nonempty(obj, "address"),
            },
            _ => unsupported_content("location:no_coordinates"),
        },
        "contacts" => {
            let names = obj
                .as_array()
                .map(|cards| {
                    cards
                        .iter()
                        .filter_map(|c| c.get("name").and_then(|n| nonempty(n, "formatted_name")))
                        .collect()
                })
                .unwrap_or_default();
            MessageContent::Contacts { names }
        }
        "unsupported" | "unknown" => {
            unsupported_content(str_of(obj, "type").unwrap_or_else(|| msg_type.to_string()))
        }
        other => unsupported_content(other),
    }
}

fn parse_status(business_id: &str, s: &Value) -> InboundEvent {
    let timestamp_ms = timestamp_ms(s, "timestamp");
    let status = str_of(s, "status").unwrap_or_default();
    let state = match status.as_str() {
        "sent" => Some(DeliveryState::Sent),
        "delivered" => Some(DeliveryState::Delivered),
        "read" => Some(DeliveryState::Read),
        "failed" => Some(DeliveryState::Failed),
        _ => None,
    };
    let (Some(id), Some(state)) = (nonempty(s, "id"), state) else {
        return unsupported(
            business_id.to_string(),
            timestamp_ms,
            format!("status:{status}"),
            None,
            hashed_key("wa:status", s),
        );
    };
    let first_error = arr(s, "errors").first();
    let recipient_id = nonempty(s, "recipient_id")
        .or_else(|| nonempty(s, "recipient_user_id"))
        .unwrap_or_default();
    InboundEvent {
        channel: Channel::WhatsApp,
        business_id: business_id.to_string(),
        dedupe_key: format!("wa:status:{id}:{status}"),
        timestamp_ms,
        kind: EventKind::Status(DeliveryStatus {
            message_id: id,
            state,
            recipient_id,
            error_code: first_error
                .and_then(|e| e.get("code"))
                .and_then(Value::as_i64),
            error_title: first_error
                .and_then(|e| nonempty(e, "title").or_else(|| nonempty(e, "message"))),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wrap(value: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]
        }))
        .unwrap()
    }

    fn meta() -> Value {
        json!({"display_phone_number": "6281190001234", "phone_number_id": "PNID"})
    }

    #[test]
    fn bsuid_without_phone() {
        let body = wrap(json!({
            "messaging_product": "whatsapp",
            "metadata": meta(),
            "contacts": [{"profile": {"name": "Ani", "username": "ani"}, "user_id": "ID.1410018717833190"}],
            "messages": [{"from_user_id": "ID.1410018717833190", "id": "wamid.X", "timestamp": "1778576400",
                          "type": "text", "text": {"body": "halo"}}]
        }));
        let ev = parse_webhook(&body).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].business_id, "PNID");
        let EventKind::Message(m) = &ev[0].kind else {
            panic!("{ev:?}")
        };
        assert_eq!(m.contact.external_id, "ID.1410018717833190");
        assert_eq!(m.contact.wa_id, None);
        assert_eq!(m.contact.user_id.as_deref(), Some("ID.1410018717833190"));
        assert_eq!(m.contact.name.as_deref(), Some("Ani"));
    }

    #[test]
    fn phone_and_bsuid_prefers_wa_id_and_matches_name_by_wa_id() {
        let body = wrap(json!({
            "metadata": meta(),
            "contacts": [
                {"profile": {"name": "Other"}, "wa_id": "6200000000001"},
                {"profile": {"name": "Budi"}, "wa_id": "6281234567890", "user_id": "ID.1"}
            ],
            "messages": [{"from": "6281234567890", "id": "wamid.Y", "timestamp": "1", "type": "text", "text": {"body": "x"}}]
        }));
        let ev = parse_webhook(&body).unwrap();
        let EventKind::Message(m) = &ev[0].kind else {
            panic!()
        };
        assert_eq!(m.contact.external_id, "6281234567890");
        assert_eq!(m.contact.name.as_deref(), Some("Budi"));
        assert_eq!(m.contact.user_id.as_deref(), Some("ID.1"));
        assert_eq!(ev[0].timestamp_ms, 1000);
    }

    #[test]
    fn leniency() {
        let body = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "WABA", "changes": [
                    {"field": "account_update", "value": {"event": "X"}},
                    {"field": "messages", "value": {"metadata": meta(), "messages": [
                        {"from": "62", "id": "wamid.A", "timestamp": "1", "type": "poll_vote_2030", "poll_vote_2030": {}},
                        {"from": "62", "id": "wamid.B", "timestamp": "1", "type": "reaction", "reaction": {"message_id": "wamid.OURS"}},
                        {"from": "62", "id": "wamid.C", "timestamp": "1", "type": "system", "system": {"type": "user_changed_number"}},
                        {"from": "62", "timestamp": "1", "type": "text", "text": {"body": "no id"}},
                        {"id": "wamid.D", "timestamp": "1", "type": "text", "text": {"body": "no sender"}},
                        {"from": "62", "id": "wamid.E", "timestamp": 1, "type": "text", "text": 42},
                        "garbage"
                    ], "statuses": [
                        {"id": "wamid.S", "status": "deleted", "timestamp": "1"}
                    ], "errors": [
                        {"code": 130429, "title": "Rate limit hit"}
                    ]}}
                ]},
                {"id": "WABA2"}
            ]
        }))
        .unwrap();
        let ev = parse_webhook(&body).unwrap();
        let kinds: Vec<String> = ev
            .iter()
            .map(|e| match &e.kind {
                EventKind::Unsupported { what, .. } => format!("U:{what}"),
                EventKind::Message(m) => format!("M:{}", m.content.summary()),
                EventKind::Reaction {
                    emoji, message_id, ..
                } => format!("R:{message_id}:{emoji:?}"),
                EventKind::PlatformError { code, .. } => format!("E:{code}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "U:field:account_update",
                "M:[unsupported: poll_vote_2030]",
                "R:wamid.OURS:None",
                "U:system:user_changed_number",
                "U:message:text:no_id",
                "U:message:text:no_sender",
                "M:[unsupported: text:no_body]",
                "U:message::no_id",
                "U:status:deleted",
                "E:130429",
            ]
        );
        // Keys are stable across redelivery.
        let again = parse_webhook(&body).unwrap();
        assert_eq!(
            ev.iter().map(|e| &e.dedupe_key).collect::<Vec<_>>(),
            again.iter().map(|e| &e.dedupe_key).collect::<Vec<_>>()
        );
    }

    #[test]
    fn media_messages_keep_what_a_download_needs() {
        let m = |id: &str, kind: &str, obj: Value| {
            let mut v = json!({"from": "62", "id": id, "timestamp": "1", "type": kind});
            v[kind] = obj;
            v
        };
        let body = wrap(json!({"metadata": meta(), "messages": [
            m("a", "audio", json!({"mime_type": "audio/ogg; codecs=opus", "sha256": "S1", "id": "M1", "voice": true})),
            m("b", "document", json!({"caption": "nota", "filename": "nota.pdf", "mime_type": "application/pdf", "sha256": "S2", "id": "M2"})),
            m("c", "sticker", json!({"mime_type": "image/webp", "sha256": "S3", "id": "M3", "animated": true})),
            m("d", "video", json!({"mime_type": "video/mp4"})),
            m("e", "audio", json!({"id": "M5", "voice": false})),
        ]}));
        let ev = parse_webhook(&body).unwrap();
        let media: Vec<InboundMedia> = ev
            .iter()
            .map(|e| match &e.kind {
                EventKind::Message(msg) => match &msg.content {
                    MessageContent::Media(media) => media.clone(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            media[0],
            InboundMedia {
                kind: MediaKind::Audio,
                media_id: Some("M1".into()),
                url: None,
                mime_type: Some("audio/ogg; codecs=opus".into()),
                sha256: Some("S1".into()),
                caption: None,
                filename: None,
                voice: true,
                animated: false,
            }
        );
        assert_eq!(media[1].filename.as_deref(), Some("nota.pdf"));
        assert_eq!(media[1].caption.as_deref(), Some("nota"));
        assert!(media[2].animated && media[2].kind == MediaKind::Sticker);
        // No id: kept (so it can be shown as "could not be downloaded"), no source.
        assert_eq!(media[3].source(), None);
        assert_eq!(
            media[4].source(),
            Some(crate::channels::MediaSource::WhatsAppId("M5"))
        );
        let summaries: Vec<String> = ev
            .iter()
            .map(|e| match &e.kind {
                EventKind::Message(msg) => msg.content.summary(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            summaries,
            [
                "[voice]",
                "[document: nota.pdf] nota",
                "[sticker]",
                "[video]",
                "[audio]"
            ]
        );
        // The text the engine reads is the caption.
        let EventKind::Message(doc) = &ev[1].kind else {
            unreachable!()
        };
        assert_eq!(doc.content.text(), Some("nota"));
        // Events survive the job queue's JSON round trip.
        for e in &ev {
            let back: InboundEvent =
                serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap();
            assert_eq!(&back, e);
        }
    }

    #[test]
    fn media_events_written_before_this_version_still_read() {
        let old = json!({"channel": "whatsapp", "business_id": "P", "dedupe_key": "wa:msg:x", "timestamp_ms": 1,
            "kind": {"type": "message", "contact": {"external_id": "62"}, "message_id": "x",
                     "content": {"kind": "media", "media_type": "image", "media_id": "M", "mime_type": "image/jpeg", "caption": "c"}}});
        let ev: InboundEvent = serde_json::from_value(old).unwrap();
        let EventKind::Message(m) = ev.kind else {
            panic!()
        };
        let MessageContent::Media(media) = m.content else {
            panic!()
        };
        assert_eq!(
            (media.kind, media.media_id.as_deref()),
            (MediaKind::Image, Some("M"))
        );
    }

    #[test]
    fn other_object_is_unsupported() {
        let ev = parse_webhook(br#"{"object":"page","entry":[{"id":"1"}]}"#).unwrap();
        assert!(
            matches!(&ev[0].kind, EventKind::Unsupported { what, .. } if what == "object:page")
        );
        assert!(parse_webhook(b"{}").is_err());
        assert!(parse_webhook(b"nope").is_err());
    }

    #[test]
    fn every_level_is_iterated() {
        let msg = |id: &str| json!({"from": "62", "id": id, "timestamp": "1", "type": "text", "text": {"body": id}});
        let status = |st: &str| json!({"id": "wamid.OUT", "status": st, "timestamp": "2", "recipient_id": "62"});
        let body = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "W1", "changes": [
                    {"field": "messages", "value": {"metadata": {"phone_number_id": "P1"}, "messages": [msg("a"), msg("b")]}},
                    {"field": "messages", "value": {"metadata": {"phone_number_id": "P1"}, "statuses": [status("sent"), status("delivered")]}}
                ]},
                {"id": "W2", "changes": [
                    {"field": "messages", "value": {"metadata": {"phone_number_id": "P2"}, "messages": [msg("c")]}}
                ]}
            ]
        }))
        .unwrap();
        let ev = parse_webhook(&body).unwrap();
        let keys: Vec<(&str, &str)> = ev
            .iter()
            .map(|e| (e.business_id.as_str(), e.dedupe_key.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("P1", "wa:msg:a"),
                ("P1", "wa:msg:b"),
                ("P1", "wa:status:wamid.OUT:sent"),
                ("P1", "wa:status:wamid.OUT:delivered"),
                ("P2", "wa:msg:c"),
            ]
        );
    }
}
