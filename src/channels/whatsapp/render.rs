//! [`OutboundMessage`] → WhatsApp `/messages` request body (FACTS.md §4).
//!
//! Every platform limit is enforced here so a request is never rejected for its
//! shape. Lengths count Unicode chars; shortened labels and texts end with `…`,
//! shortened ids are cut without it. Degradations:
//! - buttons: 0 → plain text; 1–3 → reply buttons; 4–10 → a one-section list
//!   (row titles ≤24); more than 10 → the first 10 only.
//! - list: rows beyond 10 in total and sections beyond 10 are dropped; sections
//!   left empty are removed; no rows at all → plain text; missing section titles
//!   get `Menu {n}` when there is more than one section.
//! - empty or duplicate titles get a fallback (the id, then the position) or a
//!   ` (2)` suffix; empty or duplicate ids get the position.
//! - template body parameters: newlines/tabs become spaces and runs of more than
//!   4 spaces shrink to 4 (Meta rejects them, error 132018).
//! - media: type and size are checked ([`check_outbound`]); a caption is cut to
//!   1024 chars and refused on audio and stickers (split it off first with
//!   [`OutboundContent::split_for`]); a document's file name is cleaned
//!   ([`clean_filename`]).

use serde_json::{Value, json};

use crate::channels::event::Channel;
use crate::channels::media::{MAX_CAPTION, MediaKind, caption_supported, check_outbound};
use crate::channels::outbound::{
    Button, ListRow, ListSection, OutboundContent, OutboundMedia, OutboundMediaSource,
    OutboundMessage,
};
use crate::channels::render::{
    RenderError, clean_filename, cut_chars, dedupe_labels, truncate_chars,
};

/// Text message body limit (chars).
pub const MAX_TEXT: usize = 4096;
/// Interactive body limit (chars; the list page says 4096, OAS says 1024).
pub const MAX_BODY: usize = 1024;
/// Interactive header/footer text limit (chars).
pub const MAX_HEADER: usize = 60;
/// Interactive footer limit (chars).
pub const MAX_FOOTER: usize = 60;
/// Reply buttons per message.
pub const MAX_BUTTONS: usize = 3;
/// Reply button title (chars).
pub const MAX_BUTTON_TITLE: usize = 20;
/// Reply button id (chars).
pub const MAX_BUTTON_ID: usize = 256;
/// Rows in a list, across all sections.
pub const MAX_ROWS: usize = 10;
/// Sections in a list.
pub const MAX_SECTIONS: usize = 10;
/// List row title (chars).
pub const MAX_ROW_TITLE: usize = 24;
/// List row id (chars).
pub const MAX_ROW_ID: usize = 200;
/// List row description (chars).
pub const MAX_ROW_DESCRIPTION: usize = 72;
/// List section title (chars).
pub const MAX_SECTION_TITLE: usize = 24;
/// List button label (chars).
pub const MAX_LIST_BUTTON: usize = 20;
/// Label of the list button when buttons are rendered as a list or none was given.
pub const DEFAULT_LIST_BUTTON: &str = "Pilih";

/// Renders `msg` as a WhatsApp `/messages` request body.
pub fn render(msg: &OutboundMessage) -> Result<Value, RenderError> {
    if msg.channel != Channel::WhatsApp {
        return Err(RenderError::WrongChannel {
            expected: Channel::WhatsApp,
            got: msg.channel,
        });
    }
    match &msg.content {
        OutboundContent::Text { body } => text(&msg.to, body),
        OutboundContent::Buttons {
            body,
            buttons,
            header,
            footer,
        } => buttons_message(&msg.to, body, buttons, header.as_deref(), footer.as_deref()),
        OutboundContent::List {
            body,
            button_label,
            sections,
            header,
            footer,
        } => list_message(
            &msg.to,
            body,
            button_label,
            sections,
            header.as_deref(),
            footer.as_deref(),
        ),
        OutboundContent::Template {
            name,
            language,
            body_parameters,
            quick_reply_payloads,
        } => template(
            &msg.to,
            name,
            language,
            body_parameters,
            quick_reply_payloads,
        ),
        OutboundContent::Media(media) => media_message(&msg.to, media),
        OutboundContent::MarkRead { message_id, typing } => {
            if message_id.trim().is_empty() {
                return Err(RenderError::Empty { what: "message_id" });
            }
            let mut v = json!({
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": message_id,
            });
            if *typing {
                v["typing_indicator"] = json!({"type": "text"});
            }
            Ok(v)
        }
    }
}

fn envelope(to: &str, kind: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
    })
}

fn text(to: &str, body: &str) -> Result<Value, RenderError> {
    if body.trim().is_empty() {
        return Err(RenderError::Empty { what: "text body" });
    }
    let mut v = envelope(to, "text");
    v["text"] = json!({"preview_url": false, "body": truncate_chars(body, MAX_TEXT)});
    Ok(v)
}

fn interactive_common(
    to: &str,
    kind: &str,
    body: &str,
    header: Option<&str>,
    footer: Option<&str>,
) -> Result<Value, RenderError> {
    if body.trim().is_empty() {
        return Err(RenderError::Empty {
            what: "interactive body",
        });
    }
    let mut inner = json!({"type": kind});
    if let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) {
        inner["header"] = json!({"type": "text", "text": truncate_chars(h, MAX_HEADER)});
    }
    inner["body"] = json!({"text": truncate_chars(body, MAX_BODY)});
    if let Some(f) = footer.map(str::trim).filter(|f| !f.is_empty()) {
        inner["footer"] = json!({"text": truncate_chars(f, MAX_FOOTER)});
    }
    let mut v = envelope(to, "interactive");
    v["interactive"] = inner;
    Ok(v)
}

/// Clean ids: trimmed, cut to `max`, non-empty and unique (else the 1-based position).
fn clean_ids<'a>(ids: impl Iterator<Item = &'a str>, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, id) in ids.enumerate() {
        let mut id = cut_chars(id.trim(), max).trim_end().to_string();
        if id.is_empty() || out.contains(&id) {
            id = format!("{}", i + 1);
            while out.contains(&id) {
                id.push('_');
            }
        }
        out.push(id);
    }
    out
}

/// Clean titles: trimmed, non-empty (fallback: `fallback[i]`, then the position),
/// shortened to `max`, unique.
fn clean_titles<'a>(
    titles: impl Iterator<Item = &'a str>,
    fallback: &[String],
    max: usize,
) -> Vec<String> {
    let mut out: Vec<String> = titles
        .enumerate()
        .map(|(i, t)| {
            let t = t.trim();
            let t = if t.is_empty() {
                fallback[i].as_str()
            } else {
                t
            };
            let t = if t.is_empty() {
                (i + 1).to_string()
            } else {
                t.to_string()
            };
            truncate_chars(&t, max)
        })
        .collect();
    dedupe_labels(&mut out, max);
    out
}

fn buttons_message(
    to: &str,
    body: &str,
    buttons: &[Button],
    header: Option<&str>,
    footer: Option<&str>,
) -> Result<Value, RenderError> {
    if buttons.is_empty() {
        return text(to, body);
    }
    if buttons.len() > MAX_BUTTONS {
        let rows = buttons
            .iter()
            .take(MAX_ROWS)
            .map(|b| ListRow {
                id: b.id.clone(),
                title: b.title.clone(),
                description: None,
            })
            .collect();
        let section = ListSection {
            title: String::new(),
            rows,
        };
        return list_message(to, body, DEFAULT_LIST_BUTTON, &[section], header, footer);
    }
    let ids = clean_ids(buttons.iter().map(|b| b.id.as_str()), MAX_BUTTON_ID);
    let titles = clean_titles(
        buttons.iter().map(|b| b.title.as_str()),
        &ids,
        MAX_BUTTON_TITLE,
    );
    let rendered: Vec<Value> = ids
        .iter()
        .zip(&titles)
        .map(|(id, title)| json!({"type": "reply", "reply": {"id": id, "title": title}}))
        .collect();
    let mut v = interactive_common(to, "button", body, header, footer)?;
    v["interactive"]["action"] = json!({"buttons": rendered});
    Ok(v)
}

fn list_message(
    to: &str,
    body: &str,
    button_label: &str,
    sections: &[ListSection],
    header: Option<&str>,
    footer: Option<&str>,
) -> Result<Value, RenderError> {
    // Keep at most MAX_ROWS rows in total and MAX_SECTIONS non-empty sections.
    let mut kept: Vec<(&str, Vec<&ListRow>)> = Vec::new();
    let mut total = 0;
    for section in sections {
        if kept.len() == MAX_SECTIONS || total == MAX_ROWS {
            break;
        }
        let rows: Vec<&ListRow> = section.rows.iter().take(MAX_ROWS - total).collect();
        if rows.is_empty() {
            continue;
        }
        total += rows.len();
        kept.push((section.title.as_str(), rows));
    }
    if total == 0 {
        return text(to, body);
    }
    let all_rows: Vec<&ListRow> = kept
        .iter()
        .flat_map(|(_, rows)| rows.iter().copied())
        .collect();
    let ids = clean_ids(all_rows.iter().map(|r| r.id.as_str()), MAX_ROW_ID);
    let titles = clean_titles(
        all_rows.iter().map(|r| r.title.as_str()),
        &ids,
        MAX_ROW_TITLE,
    );
    let multi = kept.len() > 1;
    let mut n = 0;
    let rendered: Vec<Value> = kept
        .iter()
        .enumerate()
        .map(|(si, (title, rows))| {
            let rows: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let mut r = json!({"id": ids[n], "title": titles[n]});
                    if let Some(d) = row
                        .description
                        .as_deref()
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                    {
                        r["description"] = json!(truncate_chars(d, MAX_ROW_DESCRIPTION));
                    }
                    n += 1;
                    r
                })
                .collect();
            let title = title.trim();
            let mut s = json!({});
            if !title.is_empty() {
                s["title"] = json!(truncate_chars(title, MAX_SECTION_TITLE));
            } else if multi {
                s["title"] = json!(format!("Menu {}", si + 1));
            }
            s["rows"] = Value::Array(rows);
            s
        })
        .collect();
    let label = button_label.trim();
    let label = if label.is_empty() {
        DEFAULT_LIST_BUTTON
    } else {
        label
    };
    let mut v = interactive_common(to, "list", body, header, footer)?;
    v["interactive"]["action"] = json!({
        "button": truncate_chars(label, MAX_LIST_BUTTON),
        "sections": rendered,
    });
    Ok(v)
}

fn media_message(to: &str, media: &OutboundMedia) -> Result<Value, RenderError> {
    check_outbound(Channel::WhatsApp, media.kind, &media.mime_type, media.size)?;
    let mut inner = match &media.source {
        OutboundMediaSource::PlatformId { id } if !id.trim().is_empty() => json!({"id": id}),
        OutboundMediaSource::Link { url } if !url.trim().is_empty() => json!({"link": url}),
        OutboundMediaSource::Attachment { id } => {
            return Err(RenderError::NotUploaded(id.clone()));
        }
        _ => return Err(RenderError::Empty { what: "media id" }),
    };
    if let Some(caption) = media.caption.as_deref().filter(|c| !c.trim().is_empty()) {
        if !caption_supported(Channel::WhatsApp, media.kind) {
            return Err(RenderError::NotSupported {
                channel: Channel::WhatsApp,
                what: "a caption on audio or stickers",
            });
        }
        inner["caption"] = json!(truncate_chars(caption, MAX_CAPTION));
    }
    if media.kind == MediaKind::Document
        && let Some(name) = media.filename.as_deref().and_then(clean_filename)
    {
        inner["filename"] = json!(name);
    }
    let kind = media.kind.as_str();
    let mut v = envelope(to, kind);
    v[kind] = inner;
    Ok(v)
}

/// Template parameters may not contain newlines or tabs, nor more than 4
/// consecutive spaces (error 132018).
fn clean_param(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut spaces = 0;
    for c in p.chars() {
        let c = if matches!(c, '\n' | '\r' | '\t') {
            ' '
        } else {
            c
        };
        if c == ' ' {
            spaces += 1;
            if spaces > 4 {
                continue;
            }
        } else {
            spaces = 0;
        }
        out.push(c);
    }
    out
}

fn template(
    to: &str,
    name: &str,
    language: &str,
    body_parameters: &[String],
    quick_reply_payloads: &[String],
) -> Result<Value, RenderError> {
    if name.trim().is_empty() {
        return Err(RenderError::Empty {
            what: "template name",
        });
    }
    if language.trim().is_empty() {
        return Err(RenderError::Empty {
            what: "template language",
        });
    }
    let mut components = Vec::new();
    if !body_parameters.is_empty() {
        let params: Vec<Value> = body_parameters
            .iter()
            .map(|p| {
                let p = clean_param(p);
                // An empty parameter is rejected; "-" keeps the position filled.
                let p = if p.trim().is_empty() {
                    "-".to_string()
                } else {
                    p
                };
                json!({"type": "text", "text": p})
            })
            .collect();
        components.push(json!({"type": "body", "parameters": params}));
    }
    for (i, payload) in quick_reply_payloads.iter().enumerate() {
        components.push(json!({
            "type": "button",
            "sub_type": "quick_reply",
            "index": i.to_string(),
            "parameters": [{"type": "payload", "payload": payload}],
        }));
    }
    let mut t = json!({"name": name.trim(), "language": {"code": language.trim()}});
    if !components.is_empty() {
        t["components"] = Value::Array(components);
    }
    let mut v = envelope(to, "template");
    v["template"] = t;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(content: OutboundContent) -> OutboundMessage {
        OutboundMessage {
            channel: Channel::WhatsApp,
            to: "6281234567890".into(),
            content,
            human_agent_tag: false,
            from: None,
        }
    }

    fn b(id: &str, title: &str) -> Button {
        Button {
            id: id.into(),
            title: title.into(),
        }
    }

    fn chars(v: &Value) -> usize {
        v.as_str().unwrap().chars().count()
    }

    #[test]
    fn text_limit_counts_chars() {
        let ok = "😀".repeat(MAX_TEXT);
        let v = render(&msg(OutboundContent::Text { body: ok.clone() })).unwrap();
        assert_eq!(v["text"]["body"], json!(ok));
        let long = "😀".repeat(MAX_TEXT + 1);
        let v = render(&msg(OutboundContent::Text { body: long })).unwrap();
        assert_eq!(chars(&v["text"]["body"]), MAX_TEXT);
        assert!(v["text"]["body"].as_str().unwrap().ends_with('…'));
        assert_eq!(
            render(&msg(OutboundContent::Text { body: "  ".into() })),
            Err(RenderError::Empty { what: "text body" })
        );
    }

    #[test]
    fn buttons_limits() {
        let v = render(&msg(OutboundContent::Buttons {
            body: "x".repeat(2000),
            buttons: vec![
                b(
                    &format!("  {}  ", "i".repeat(300)),
                    "Judul yang sangat panjang sekali",
                ),
                b("dup", "Judul yang sangat panjang sekali"),
                b("", ""),
            ],
            header: Some("h".repeat(61)),
            footer: Some("f".repeat(61)),
        }))
        .unwrap();
        let i = &v["interactive"];
        assert_eq!(i["type"], "button");
        assert_eq!(chars(&i["body"]["text"]), MAX_BODY);
        assert_eq!(chars(&i["header"]["text"]), MAX_HEADER);
        assert_eq!(chars(&i["footer"]["text"]), MAX_FOOTER);
        let buttons = i["action"]["buttons"].as_array().unwrap();
        assert_eq!(buttons.len(), 3);
        assert_eq!(buttons[0]["reply"]["id"], json!("i".repeat(MAX_BUTTON_ID)));
        let titles: Vec<&str> = buttons
            .iter()
            .map(|b| b["reply"]["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles[0], "Judul yang sangat p…");
        assert_eq!(titles[1], "Judul yang sang… (2)");
        assert_eq!(titles[2], "3");
        assert_eq!(buttons[2]["reply"]["id"], "3");
        for t in titles {
            assert!(!t.is_empty() && t.chars().count() <= MAX_BUTTON_TITLE);
        }
        // Empty header/footer are omitted; no buttons → text.
        let v = render(&msg(OutboundContent::Buttons {
            body: "halo".into(),
            buttons: vec![b("a", "A")],
            header: Some(" ".into()),
            footer: None,
        }))
        .unwrap();
        assert!(v["interactive"].get("header").is_none());
        let v = render(&msg(OutboundContent::Buttons {
            body: "halo".into(),
            buttons: vec![],
            header: None,
            footer: None,
        }))
        .unwrap();
        assert_eq!(v["type"], "text");
    }

    #[test]
    fn four_to_ten_buttons_become_a_list_and_more_are_cut() {
        for (n, want) in [(4, 4), (10, 10), (14, 10)] {
            let buttons = (0..n)
                .map(|i| {
                    b(
                        &format!("id{i}"),
                        &format!("Pilihan nomor {i} yang panjang"),
                    )
                })
                .collect();
            let v = render(&msg(OutboundContent::Buttons {
                body: "pilih".into(),
                buttons,
                header: None,
                footer: None,
            }))
            .unwrap();
            assert_eq!(v["interactive"]["type"], "list");
            assert_eq!(v["interactive"]["action"]["button"], DEFAULT_LIST_BUTTON);
            let sections = v["interactive"]["action"]["sections"].as_array().unwrap();
            assert_eq!(sections.len(), 1);
            assert!(sections[0].get("title").is_none());
            let rows = sections[0]["rows"].as_array().unwrap();
            assert_eq!(rows.len(), want);
            assert!(rows.iter().all(|r| chars(&r["title"]) <= MAX_ROW_TITLE));
        }
    }

    #[test]
    fn list_limits() {
        let row = |i: usize| ListRow {
            id: format!("{i}{}", "r".repeat(250)),
            title: format!("Baris {i} dengan judul panjang"),
            description: Some("d".repeat(100)),
        };
        let sections: Vec<ListSection> = (0..12)
            .map(|s| ListSection {
                title: if s == 1 {
                    String::new()
                } else {
                    format!("Bagian {s} dengan nama panjang")
                },
                rows: (0..3).map(|r| row(s * 3 + r)).collect(),
            })
            .collect();
        let v = render(&msg(OutboundContent::List {
            body: "pilih".into(),
            button_label: "Tombol dengan label panjang".into(),
            sections,
            header: None,
            footer: None,
        }))
        .unwrap();
        let action = &v["interactive"]["action"];
        assert_eq!(chars(&action["button"]), MAX_LIST_BUTTON);
        let sections = action["sections"].as_array().unwrap();
        assert_eq!(sections.len(), 4); // 3 + 3 + 3 + 1 = 10 rows
        let rows: Vec<&Value> = sections
            .iter()
            .flat_map(|s| s["rows"].as_array().unwrap())
            .collect();
        assert_eq!(rows.len(), MAX_ROWS);
        assert_eq!(sections[1]["title"], "Menu 2");
        for s in sections {
            assert!(chars(&s["title"]) <= MAX_SECTION_TITLE);
        }
        for r in rows {
            assert!(chars(&r["id"]) <= MAX_ROW_ID);
            assert!(chars(&r["title"]) <= MAX_ROW_TITLE);
            assert_eq!(chars(&r["description"]), MAX_ROW_DESCRIPTION);
        }
        // Duplicate ids are made unique.
        let v = render(&msg(OutboundContent::List {
            body: "x".into(),
            button_label: String::new(),
            sections: vec![ListSection {
                title: String::new(),
                rows: vec![
                    ListRow {
                        id: "a".into(),
                        title: "A".into(),
                        description: None,
                    },
                    ListRow {
                        id: "a".into(),
                        title: "A".into(),
                        description: None,
                    },
                ],
            }],
            header: None,
            footer: None,
        }))
        .unwrap();
        let rows = &v["interactive"]["action"]["sections"][0]["rows"];
        assert_ne!(rows[0]["id"], rows[1]["id"]);
        assert_ne!(rows[0]["title"], rows[1]["title"]);
        assert!(rows[0].get("description").is_none());
    }

    fn media(kind: MediaKind, mime: &str, size: u64, source: OutboundMediaSource) -> OutboundMedia {
        OutboundMedia {
            kind,
            source,
            mime_type: mime.into(),
            size,
            caption: None,
            filename: None,
        }
    }

    fn id(s: &str) -> OutboundMediaSource {
        OutboundMediaSource::PlatformId { id: s.into() }
    }

    #[test]
    fn media_by_id_and_link() {
        let mut doc = media(MediaKind::Document, "application/pdf", 2048, id("MID1"));
        doc.caption = Some("x".repeat(2000));
        doc.filename = Some("../nota/servis 042.pdf".into());
        let v = render(&msg(OutboundContent::Media(doc))).unwrap();
        assert_eq!(v["type"], "document");
        assert_eq!(v["document"]["id"], "MID1");
        assert_eq!(v["document"]["filename"], "servis 042.pdf");
        assert_eq!(chars(&v["document"]["caption"]), MAX_CAPTION);
        assert_eq!(v["recipient_type"], "individual");

        let img = media(
            MediaKind::Image,
            "image/jpeg",
            10,
            OutboundMediaSource::Link {
                url: "https://example.test/a.jpg".into(),
            },
        );
        let v = render(&msg(OutboundContent::Media(img))).unwrap();
        assert_eq!(v["image"], json!({"link": "https://example.test/a.jpg"}));

        // A filename is only sent for documents.
        let mut vid = media(MediaKind::Video, "video/mp4", 10, id("V"));
        vid.filename = Some("clip.mp4".into());
        vid.caption = Some("  ".into());
        let v = render(&msg(OutboundContent::Media(vid))).unwrap();
        assert_eq!(v["video"], json!({"id": "V"}));
    }

    #[test]
    fn media_limits_and_refusals() {
        let too_big = media(MediaKind::Image, "image/png", 5_000_001, id("I"));
        assert!(matches!(
            render(&msg(OutboundContent::Media(too_big))),
            Err(RenderError::Media(
                crate::channels::media::MediaRejection::TooLarge { .. }
            ))
        ));
        let gif = media(MediaKind::Image, "image/gif", 10, id("I"));
        assert!(matches!(
            render(&msg(OutboundContent::Media(gif))),
            Err(RenderError::Media(_))
        ));
        let mut voice = media(MediaKind::Audio, "audio/ogg; codecs=opus", 10, id("A"));
        voice.caption = Some("dengar ya".into());
        assert!(matches!(
            render(&msg(OutboundContent::Media(voice.clone()))),
            Err(RenderError::NotSupported { .. })
        ));
        // split_for moves the caption into a text message that renders.
        let parts = OutboundContent::Media(voice).split_for(Channel::WhatsApp);
        assert_eq!(parts.len(), 2);
        let v = render(&msg(parts[0].clone())).unwrap();
        assert_eq!(v["audio"], json!({"id": "A"}));
        assert_eq!(
            render(&msg(parts[1].clone())).unwrap()["text"]["body"],
            "dengar ya"
        );
        let pending = media(
            MediaKind::Image,
            "image/png",
            10,
            OutboundMediaSource::Attachment { id: "att1".into() },
        );
        assert_eq!(
            render(&msg(OutboundContent::Media(pending))),
            Err(RenderError::NotUploaded("att1".into()))
        );
        let blank = media(MediaKind::Image, "image/png", 10, id(" "));
        assert!(matches!(
            render(&msg(OutboundContent::Media(blank))),
            Err(RenderError::Empty { .. })
        ));
    }

    #[test]
    fn template_and_mark_read() {
        let v = render(&msg(OutboundContent::Template {
            name: "t".into(),
            language: "en_US".into(),
            body_parameters: vec!["a\nb\t c      d".into(), "".into()],
            quick_reply_payloads: vec!["p0".into()],
        }))
        .unwrap();
        let c = &v["template"]["components"];
        assert_eq!(c[0]["parameters"][0]["text"], "a b  c    d");
        assert_eq!(c[0]["parameters"][1]["text"], "-");
        assert_eq!(c[1]["index"], "0");
        assert_eq!(v["template"]["language"]["code"], "en_US");
        let v = render(&msg(OutboundContent::Template {
            name: "hello_world".into(),
            language: "id".into(),
            body_parameters: vec![],
            quick_reply_payloads: vec![],
        }))
        .unwrap();
        assert!(v["template"].get("components").is_none());
        let v = render(&msg(OutboundContent::MarkRead {
            message_id: "wamid.X".into(),
            typing: false,
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"})
        );
        let mut ig = msg(OutboundContent::Text { body: "x".into() });
        ig.channel = Channel::Instagram;
        assert!(matches!(render(&ig), Err(RenderError::WrongChannel { .. })));
    }
}
