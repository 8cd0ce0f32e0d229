//! Webhook payloads shaped like the shared fixtures, with fresh ids.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

static SEQ: AtomicU64 = AtomicU64::new(1);

/// A fresh WhatsApp message id.
pub fn new_wamid() -> String {
    format!(
        "wamid.TEST{}{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn wa_envelope(value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "104857600012345",
            "changes": [{ "field": "messages", "value": value }]
        }]
    })
}

fn wa_value(wa_id: &str, name: &str, message: Value) -> Value {
    wa_value_to(super::harness::PHONE_NUMBER_ID, wa_id, name, message)
}

fn wa_value_to(number: &str, wa_id: &str, name: &str, message: Value) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "6281190001234", "phone_number_id": number },
        "contacts": [{ "profile": { "name": name }, "wa_id": wa_id }],
        "messages": [message]
    })
}

/// A WhatsApp text message (like `wa_text.json`).
pub fn wa_text(wa_id: &str, name: &str, id: &str, text: &str, ts_secs: i64) -> Value {
    wa_envelope(wa_value(
        wa_id,
        name,
        json!({ "from": wa_id, "id": id, "timestamp": ts_secs.to_string(), "type": "text", "text": { "body": text } }),
    ))
}

/// A WhatsApp media message (like `wa_image.json`): `kind` is `image`,
/// `video`, `audio`, `document` or `sticker`; `object` the media object
/// (`id`, `mime_type`, `sha256`, and `caption`, `filename`, `voice` …).
pub fn wa_media(
    wa_id: &str,
    name: &str,
    id: &str,
    kind: &str,
    object: Value,
    ts_secs: i64,
) -> Value {
    let mut message =
        json!({ "from": wa_id, "id": id, "timestamp": ts_secs.to_string(), "type": kind });
    message[kind] = object;
    wa_envelope(wa_value(wa_id, name, message))
}

/// A WhatsApp media message (see [`wa_media`]) to the business number
/// `number` (its `phone_number_id`).
pub fn wa_media_to(
    number: &str,
    wa_id: &str,
    id: &str,
    kind: &str,
    object: Value,
    ts_secs: i64,
) -> Value {
    let mut message =
        json!({ "from": wa_id, "id": id, "timestamp": ts_secs.to_string(), "type": kind });
    message[kind] = object;
    wa_envelope(wa_value_to(number, wa_id, "Pelanggan", message))
}

/// A WhatsApp text message to the business number `number` (its
/// `phone_number_id`).
pub fn wa_text_to(number: &str, wa_id: &str, id: &str, text: &str, ts_secs: i64) -> Value {
    wa_envelope(wa_value_to(
        number,
        wa_id,
        "Pelanggan",
        json!({ "from": wa_id, "id": id, "timestamp": ts_secs.to_string(), "type": "text", "text": { "body": text } }),
    ))
}

/// A tap on an interactive list row (like `wa_interactive_list_reply.json`).
pub fn wa_list_reply(
    wa_id: &str,
    name: &str,
    id: &str,
    row_id: &str,
    title: &str,
    ts_secs: i64,
) -> Value {
    wa_envelope(wa_value(
        wa_id,
        name,
        json!({
            "context": { "from": "6281190001234", "id": "wamid.OURS" },
            "from": wa_id, "id": id, "timestamp": ts_secs.to_string(), "type": "interactive",
            "interactive": { "type": "list_reply", "list_reply": { "id": row_id, "title": title } }
        }),
    ))
}

/// A tap on an interactive reply button (like `wa_interactive_button_reply.json`).
pub fn wa_button_reply(
    wa_id: &str,
    name: &str,
    id: &str,
    button_id: &str,
    title: &str,
    ts_secs: i64,
) -> Value {
    wa_envelope(wa_value(
        wa_id,
        name,
        json!({
            "context": { "from": "6281190001234", "id": "wamid.OURS" },
            "from": wa_id, "id": id, "timestamp": ts_secs.to_string(), "type": "interactive",
            "interactive": { "type": "button_reply", "button_reply": { "id": button_id, "title": title } }
        }),
    ))
}

/// A tap on a template quick-reply button (like `wa_template_button.json`).
pub fn wa_template_button(
    wa_id: &str,
    name: &str,
    id: &str,
    payload: &str,
    text: &str,
    ts_secs: i64,
) -> Value {
    wa_envelope(wa_value(
        wa_id,
        name,
        json!({
            "context": { "from": "6281190001234", "id": "wamid.OURS" },
            "from": wa_id, "id": id, "timestamp": ts_secs.to_string(), "type": "button",
            "button": { "payload": payload, "text": text }
        }),
    ))
}

/// A delivery status for one of our messages (like `wa_status_*.json`).
pub fn wa_status(
    wamid: &str,
    recipient: &str,
    status: &str,
    ts_secs: i64,
    error: Option<(i64, &str)>,
) -> Value {
    let mut s = json!({ "id": wamid, "status": status, "timestamp": ts_secs.to_string(), "recipient_id": recipient });
    if let Some((code, title)) = error {
        s["errors"] = json!([{ "code": code, "title": title, "message": title, "error_data": { "details": title } }]);
    }
    wa_envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "6281190001234", "phone_number_id": super::harness::PHONE_NUMBER_ID },
        "statuses": [s]
    }))
}

/// An Instagram DM text (like `ig_text.json`).
pub fn ig_text(igsid: &str, mid: &str, text: &str, ts_ms: i64) -> Value {
    json!({
        "object": "instagram",
        "entry": [{
            "id": super::harness::IG_ACCOUNT_ID, "time": ts_ms,
            "messaging": [{
                "sender": { "id": igsid }, "recipient": { "id": super::harness::IG_ACCOUNT_ID },
                "timestamp": ts_ms, "message": { "mid": mid, "text": text }
            }]
        }]
    })
}

/// An Instagram DM with files (like `ig_attachment_image.json`): `(type, url)`
/// per attachment, and the text sent with them, if any.
pub fn ig_attachments(
    igsid: &str,
    mid: &str,
    files: &[(&str, &str)],
    text: Option<&str>,
    ts_ms: i64,
) -> Value {
    let attachments: Vec<Value> = files
        .iter()
        .map(|(kind, url)| json!({ "type": kind, "payload": { "url": url } }))
        .collect();
    let mut message = json!({ "mid": mid, "attachments": attachments });
    if let Some(t) = text {
        message["text"] = json!(t);
    }
    json!({
        "object": "instagram",
        "entry": [{
            "id": super::harness::IG_ACCOUNT_ID, "time": ts_ms,
            "messaging": [{
                "sender": { "id": igsid }, "recipient": { "id": super::harness::IG_ACCOUNT_ID },
                "timestamp": ts_ms, "message": message
            }]
        }]
    })
}

/// An Instagram text message to the professional account `account`.
pub fn ig_text_to(account: &str, igsid: &str, mid: &str, text: &str, ts_ms: i64) -> Value {
    json!({
        "object": "instagram",
        "entry": [{
            "id": account, "time": ts_ms,
            "messaging": [{
                "sender": { "id": igsid }, "recipient": { "id": account },
                "timestamp": ts_ms, "message": { "mid": mid, "text": text }
            }]
        }]
    })
}

/// An Instagram quick-reply tap (like `ig_quick_reply.json`).
pub fn ig_quick_reply(igsid: &str, mid: &str, title: &str, payload: &str, ts_ms: i64) -> Value {
    json!({
        "object": "instagram",
        "entry": [{
            "id": super::harness::IG_ACCOUNT_ID, "time": ts_ms,
            "messaging": [{
                "sender": { "id": igsid }, "recipient": { "id": super::harness::IG_ACCOUNT_ID },
                "timestamp": ts_ms, "message": { "mid": mid, "text": title, "quick_reply": { "payload": payload } }
            }]
        }]
    })
}

/// The human-readable text of an outbound Graph request body (text body,
/// interactive body, Instagram text, or `[template NAME] params`).
pub fn body_text(body: &Value) -> Option<String> {
    if let Some(t) = body["text"]["body"].as_str() {
        return Some(t.to_string());
    }
    if let Some(t) = body["interactive"]["body"]["text"].as_str() {
        return Some(t.to_string());
    }
    if let Some(t) = body["message"]["text"].as_str() {
        return Some(t.to_string());
    }
    if body["type"] == "template" {
        let params: Vec<String> = body["template"]["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["type"] == "body")
            .flat_map(|c| c["parameters"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["text"].as_str().map(str::to_string))
            .collect();
        return Some(format!(
            "[template {}] {}",
            body["template"]["name"].as_str().unwrap_or(""),
            params.join(" | ")
        ));
    }
    None
}
