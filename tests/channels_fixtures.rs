//! Every shared platform fixture, parsed/rendered/validated, plus the HTTP clients
//! against the Graph mock.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use balas::channels::client::{ChannelClient, InstagramClient, WhatsAppClient};
use balas::channels::graph_error::classify_response;
use balas::channels::{
    Button, Channel, DeliveryState, EventKind, InboundEvent, InboundMedia, ListRow, ListSection,
    MediaKind, MediaSource, MessageContent, OutboundContent, OutboundMessage, RateScope, ReplyKind,
    SendError, instagram, sign, verify_signature, whatsapp,
};
use common::graph_mock::{GraphMock, validate_instagram_request, validate_whatsapp_request};
use serde_json::{Value, json};

const WA_BIZ: &str = "112233445566778";
const IG_BIZ: &str = "17841400987654321";

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/platform")
}

fn json_files(dir: &PathBuf) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn fixture(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures_dir().join(rel)).unwrap()).unwrap()
}

fn message(ev: &InboundEvent) -> &balas::channels::InboundMessage {
    match &ev.kind {
        EventKind::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn one(events: &[InboundEvent]) -> &InboundEvent {
    assert_eq!(events.len(), 1, "{events:#?}");
    &events[0]
}

fn check_wa_message(ev: &InboundEvent, wa_id: &str, name: &str, ts: i64) {
    assert_eq!(ev.channel, Channel::WhatsApp);
    assert_eq!(ev.business_id, WA_BIZ);
    assert_eq!(ev.timestamp_ms, ts * 1000);
    let m = message(ev);
    assert_eq!(ev.dedupe_key, format!("wa:msg:{}", m.message_id));
    assert!(m.message_id.starts_with("wamid."));
    assert_eq!(m.contact.external_id, wa_id);
    assert_eq!(m.contact.wa_id.as_deref(), Some(wa_id));
    assert_eq!(m.contact.name.as_deref(), Some(name));
}

fn check_status(
    events: &[InboundEvent],
    state: DeliveryState,
    ts: i64,
) -> balas::channels::DeliveryStatus {
    let ev = one(events);
    assert_eq!(ev.business_id, WA_BIZ);
    assert_eq!(ev.timestamp_ms, ts * 1000);
    let EventKind::Status(s) = &ev.kind else {
        panic!("{ev:?}")
    };
    assert_eq!(s.state, state);
    assert_eq!(
        ev.dedupe_key,
        format!("wa:status:{}:{}", s.message_id, state.as_str())
    );
    s.clone()
}

const WAMID_SURVEY: &str = "wamid.HBgNNjI4Nzc4ODk5MDAxMRUCABEYEkMxNUEyNkJGOTRFRkE2RjkxOQA=";

fn expect_whatsapp(name: &str, events: &[InboundEvent]) {
    match name {
        "wa_text.json" => {
            let ev = one(events);
            check_wa_message(ev, "6281234567890", "Budi Santoso", 1778576400);
            assert_eq!(
                message(ev).content,
                MessageContent::Text {
                    body: "halo, pesanan saya belum sampai".into()
                }
            );
            assert_eq!(message(ev).reply_to, None);
        }
        "wa_batched_two_messages.json" => {
            assert_eq!(events.len(), 2);
            let bodies: Vec<_> = events
                .iter()
                .map(|e| {
                    check_wa_message(e, "6281234567890", "Budi Santoso", e.timestamp_ms / 1000);
                    message(e).content.text().unwrap().to_string()
                })
                .collect();
            assert_eq!(bodies, ["halo", "saya mau bicara dengan CS"]);
            assert_eq!(events[0].timestamp_ms, 1_778_577_000_000);
            assert_eq!(events[1].timestamp_ms, 1_778_577_003_000);
            assert_ne!(events[0].dedupe_key, events[1].dedupe_key);
        }
        "wa_interactive_button_reply.json" => {
            let ev = one(events);
            check_wa_message(ev, "6285712345678", "Siti Rahmawati", 1778576520);
            let m = message(ev);
            assert_eq!(
                m.content,
                MessageContent::Reply {
                    source: ReplyKind::Button,
                    payload: "menu_komplain".into(),
                    title: "Komplain barang".into()
                }
            );
            assert_eq!(
                m.reply_to.as_deref(),
                Some("wamid.HBgNNjI4NTcxMjM0NTY3OBUCABEYEjE4N0UzMjg5MzgzOEZCM0M3RAA=")
            );
        }
        "wa_interactive_list_reply.json" => {
            let ev = one(events);
            check_wa_message(ev, "6281398765432", "Andi Wijaya", 1778576640);
            let m = message(ev);
            assert_eq!(
                m.content,
                MessageContent::Reply {
                    source: ReplyKind::ListRow,
                    payload: "topik_pengiriman".into(),
                    title: "Status pengiriman".into()
                }
            );
            assert!(m.reply_to.is_some());
        }
        "wa_template_button.json" => {
            let ev = one(events);
            check_wa_message(ev, "6287788990011", "Dewi Lestari", 1778580000);
            let m = message(ev);
            assert_eq!(
                m.content,
                MessageContent::Reply {
                    source: ReplyKind::TemplateButton,
                    payload: "survei:TKT-20260512-0042:puas".into(),
                    title: "Puas".into()
                }
            );
            assert_eq!(m.reply_to.as_deref(), Some(WAMID_SURVEY));
        }
        "wa_image.json" => {
            let ev = one(events);
            check_wa_message(ev, "6289612345670", "Rina Kartika", 1778576700);
            let media = InboundMedia {
                kind: MediaKind::Image,
                media_id: Some("6457861741420136".into()),
                url: None,
                mime_type: Some("image/jpeg".into()),
                sha256: Some("w812ZmhmYEw3/xYRLLqQdbL+dGJm/VwSOtBlacMgR0w=".into()),
                caption: Some("mau komplain barang rusak, ini fotonya".into()),
                filename: None,
                voice: false,
                animated: false,
            };
            assert_eq!(message(ev).content, MessageContent::Media(media.clone()));
            assert_eq!(
                media.source(),
                Some(MediaSource::WhatsAppId("6457861741420136"))
            );
            // The engine still reads the caption as the customer's words.
            assert_eq!(
                message(ev).content.text(),
                Some("mau komplain barang rusak, ini fotonya")
            );
            assert_eq!(
                message(ev).content.summary(),
                "[image] mau komplain barang rusak, ini fotonya"
            );
        }
        "wa_location.json" => {
            let ev = one(events);
            check_wa_message(ev, "6281234567890", "Budi Santoso", 1778576820);
            let MessageContent::Location {
                latitude,
                longitude,
                name,
                address,
            } = &message(ev).content
            else {
                panic!()
            };
            assert_eq!((*latitude, *longitude), (-6.2241863, 106.8097552));
            assert_eq!(name.as_deref(), Some("Gedung Kantor Budi"));
            assert!(
                address
                    .as_deref()
                    .unwrap()
                    .starts_with("Jl. Jenderal Sudirman")
            );
        }
        "wa_reaction.json" => {
            let ev = one(events);
            assert_eq!(
                ev.dedupe_key,
                "wa:msg:wamid.HBgNNjI4NTcxMjM0NTY3OBUCABIYFENCRDJBMTE4MUQ0NEQyREQ4QkJFAA=="
            );
            let EventKind::Reaction {
                contact,
                message_id,
                emoji,
            } = &ev.kind
            else {
                panic!("{ev:?}")
            };
            assert_eq!(contact.external_id, "6285712345678");
            assert_eq!(contact.name.as_deref(), Some("Siti Rahmawati"));
            assert_eq!(
                message_id,
                "wamid.HBgNNjI4NTcxMjM0NTY3OBUCABEYEjU2MDQ3QjFENjcxRjc1RDNBNQA="
            );
            assert_eq!(emoji.as_deref(), Some("👍"));
        }
        "wa_status_sent.json" => {
            let s = check_status(events, DeliveryState::Sent, 1778576410);
            assert_eq!(
                (s.message_id.as_str(), s.recipient_id.as_str()),
                (WAMID_SURVEY, "6287788990011")
            );
            assert_eq!(s.error_code, None);
        }
        "wa_status_delivered.json" => {
            let s = check_status(events, DeliveryState::Delivered, 1778576412);
            assert_eq!(s.message_id, WAMID_SURVEY);
        }
        "wa_status_read.json" => {
            let s = check_status(events, DeliveryState::Read, 1778576495);
            assert_eq!(s.message_id, WAMID_SURVEY);
        }
        "wa_status_failed_131047.json" => {
            let s = check_status(events, DeliveryState::Failed, 1778666400);
            assert_eq!(s.recipient_id, "6281398765432");
            assert_eq!(s.error_code, Some(131047));
            assert_eq!(s.error_title.as_deref(), Some("Re-engagement message"));
        }
        "wa_unsupported.json" => {
            let ev = one(events);
            check_wa_message(ev, "6289612345670", "Rina Kartika", 1778577100);
            assert_eq!(
                message(ev).content,
                MessageContent::Unsupported {
                    what: "poll_creation".into()
                }
            );
        }
        other => panic!("no expectation for WhatsApp fixture {other}: add one"),
    }
}

fn ig_contact(ev: &InboundEvent) -> &str {
    match &ev.kind {
        EventKind::Message(m) => &m.contact.external_id,
        EventKind::Echo { contact, .. }
        | EventKind::Read { contact, .. }
        | EventKind::Reaction { contact, .. }
        | EventKind::Deleted { contact, .. } => &contact.external_id,
        other => panic!("{other:?}"),
    }
}

fn expect_instagram(name: &str, events: &[InboundEvent]) {
    let ev = one(events);
    assert_eq!(ev.channel, Channel::Instagram);
    assert_eq!(ev.business_id, IG_BIZ);
    assert!(
        ev.timestamp_ms > 1_778_000_000_000 && ev.timestamp_ms % 1000 == 0,
        "ms: {}",
        ev.timestamp_ms
    );
    match name {
        "ig_text.json" => {
            assert_eq!(ig_contact(ev), "7291836450192837");
            assert_eq!(
                message(ev).content,
                MessageContent::Text {
                    body: "halo kak, pesanan saya belum sampai".into()
                }
            );
            assert_eq!(ev.dedupe_key, format!("ig:msg:{}", message(ev).message_id));
            assert_eq!(ev.timestamp_ms, 1778576401000);
        }
        "ig_quick_reply.json" => {
            assert_eq!(
                message(ev).content,
                MessageContent::Reply {
                    source: ReplyKind::QuickReply,
                    payload: "HANDOFF_CS".into(),
                    title: "Bicara dengan CS".into()
                }
            );
            assert_eq!(ev.dedupe_key, format!("ig:msg:{}", message(ev).message_id));
        }
        "ig_postback.json" => {
            assert_eq!(ig_contact(ev), "8123456789012345");
            let m = message(ev);
            assert_eq!(
                m.content,
                MessageContent::Reply {
                    source: ReplyKind::Postback,
                    payload: "LACAK_PESANAN".into(),
                    title: "Lacak pesanan".into()
                }
            );
            assert_eq!(
                ev.dedupe_key,
                format!("ig:postback:{}:1778576522000", m.message_id)
            );
        }
        "ig_echo.json" => {
            let EventKind::Echo {
                contact,
                message_id,
                text,
            } = &ev.kind
            else {
                panic!("{ev:?}")
            };
            assert_eq!(contact.external_id, "7291836450192837");
            assert_eq!(
                text.as_deref(),
                Some("Terima kasih kak, pesanan Anda sedang kami cek ya 🙏")
            );
            assert_eq!(ev.dedupe_key, format!("ig:msg:{message_id}"));
        }
        "ig_attachment_image.json" => {
            let MessageContent::Media(media) = &message(ev).content else {
                panic!("{ev:?}")
            };
            assert_eq!(media.kind, MediaKind::Image);
            let Some(MediaSource::Url(url)) = media.source() else {
                panic!("{media:?}")
            };
            assert!(url.starts_with("https://lookaside.fbsbx.com/ig_messaging_cdn/"));
            assert_eq!(media.caption, None);
            assert_eq!(media.mime_type, None);
            assert_eq!(ig_contact(ev), "6612345098765432");
        }
        "ig_read.json" => {
            let EventKind::Read {
                contact,
                message_id,
            } = &ev.kind
            else {
                panic!("{ev:?}")
            };
            assert_eq!(contact.external_id, "7291836450192837");
            assert_eq!(ev.dedupe_key, format!("ig:read:{message_id}:1778576470000"));
        }
        "ig_reaction.json" => {
            let EventKind::Reaction {
                message_id, emoji, ..
            } = &ev.kind
            else {
                panic!("{ev:?}")
            };
            assert_eq!(emoji.as_deref(), Some("❤️"));
            assert_eq!(
                ev.dedupe_key,
                format!("ig:reaction:{message_id}:1778576472000:react")
            );
        }
        "ig_deleted.json" => {
            let EventKind::Deleted {
                contact,
                message_id,
            } = &ev.kind
            else {
                panic!("{ev:?}")
            };
            assert_eq!(contact.external_id, "8123456789012345");
            assert_eq!(ev.dedupe_key, format!("ig:deleted:{message_id}"));
        }
        other => panic!("no expectation for Instagram fixture {other}: add one"),
    }
}

#[test]
fn every_inbound_fixture_parses_as_expected() {
    let files = json_files(&fixtures_dir());
    assert!(files.len() >= 21, "fixtures missing: {}", files.len());
    for (name, bytes) in files {
        if name.starts_with("wa_") {
            let events = whatsapp::parse_webhook(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            expect_whatsapp(&name, &events);
            // The other platform's parser does not fail either: it reports the object.
            let other = instagram::parse_webhook(&bytes).unwrap();
            assert!(other.iter().all(|e| matches!(&e.kind, EventKind::Unsupported { what, .. } if what == "object:whatsapp_business_account")));
        } else if name.starts_with("ig_") {
            let events = instagram::parse_webhook(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            expect_instagram(&name, &events);
        } else {
            panic!("fixture {name} has no known platform prefix");
        }
        // Redelivery yields identical events (same dedupe keys).
        let again = if name.starts_with("wa_") {
            whatsapp::parse_webhook(&bytes)
        } else {
            instagram::parse_webhook(&bytes)
        };
        assert_eq!(
            again.unwrap().len(),
            if name == "wa_batched_two_messages.json" {
                2
            } else {
                1
            }
        );
    }
}

#[test]
fn signatures_over_fixture_bytes() {
    let secret = b"fixture-app-secret";
    for (name, bytes) in json_files(&fixtures_dir()) {
        let header = sign(secret, &bytes);
        assert_eq!(
            verify_signature(secret, Some(&header), &bytes),
            Ok(()),
            "{name}"
        );
        // Re-serializing the parsed JSON changes the bytes (emoji, whitespace): must fail.
        let reserialized =
            serde_json::to_vec(&serde_json::from_slice::<Value>(&bytes).unwrap()).unwrap();
        assert!(
            verify_signature(secret, Some(&header), &reserialized).is_err(),
            "{name}"
        );
        assert!(
            verify_signature(b"other", Some(&header), &bytes).is_err(),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------

fn wa(to: &str, content: OutboundContent) -> OutboundMessage {
    OutboundMessage {
        channel: Channel::WhatsApp,
        to: to.into(),
        content,
        human_agent_tag: false,
        from: None,
    }
}

fn ig(to: &str, content: OutboundContent, human: bool) -> OutboundMessage {
    OutboundMessage {
        channel: Channel::Instagram,
        to: to.into(),
        content,
        human_agent_tag: human,
        from: None,
    }
}

fn btn(id: &str, title: &str) -> Button {
    Button {
        id: id.into(),
        title: title.into(),
    }
}

fn row(id: &str, title: &str, d: &str) -> ListRow {
    ListRow {
        id: id.into(),
        title: title.into(),
        description: Some(d.into()),
    }
}

/// The OutboundMessage reproducing each request fixture.
fn request_for(name: &str) -> Option<OutboundMessage> {
    Some(match name {
        "wa_send_text_request.json" => wa("6281234567890", OutboundContent::Text { body: "Halo Kak Budi, mohon maaf atas keterlambatannya. Pesanan #INV-20260510-0815 sedang kami cek ke kurir, kami kabari maksimal 1x24 jam ya.".into() }),
        "wa_send_buttons_request.json" => wa("6285712345678", OutboundContent::Buttons {
            body: "Halo Kak Siti 👋 Ada yang bisa kami bantu? Silakan pilih salah satu menu di bawah.".into(),
            buttons: vec![btn("menu_cek_pesanan", "Cek pesanan"), btn("menu_komplain", "Komplain barang"), btn("menu_cs", "Bicara dengan CS")],
            header: Some("Layanan Pelanggan".into()),
            footer: Some("Balas kapan saja, kami siap membantu".into()),
        }),
        "wa_send_list_request.json" => wa("6281398765432", OutboundContent::List {
            body: "Pilih topik yang paling sesuai dengan kendala Kakak.".into(),
            button_label: "Pilih topik".into(),
            sections: vec![
                ListSection { title: "Pesanan".into(), rows: vec![
                    row("topik_pengiriman", "Status pengiriman", "Cek posisi paket dan estimasi tiba"),
                    row("topik_batal", "Batalkan pesanan", "Pembatalan sebelum pesanan dikirim"),
                ] },
                ListSection { title: "Komplain".into(), rows: vec![
                    row("topik_rusak", "Barang rusak", "Kirim foto barang untuk proses retur"),
                    row("topik_kurang", "Barang kurang", "Jumlah barang tidak sesuai pesanan"),
                    row("topik_cs", "Bicara dengan CS", "Sambungkan ke agen manusia"),
                ] },
            ],
            header: Some("Pusat Bantuan".into()),
            footer: Some("Jam operasional CS 08.00-21.00 WIB".into()),
        }),
        "wa_send_template_request.json" => wa("6287788990011", OutboundContent::Template {
            name: "survei_kepuasan_cs".into(),
            language: "id".into(),
            body_parameters: vec!["Dewi".into(), "TKT-20260512-0042".into()],
            quick_reply_payloads: ["puas", "biasa", "kecewa"].iter().map(|a| format!("survei:TKT-20260512-0042:{a}")).collect(),
        }),
        "wa_mark_read_typing_request.json" => wa("6281234567890", OutboundContent::MarkRead {
            message_id: "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFENGODEyQzk0ODRBQkEzRDQ0OEQ4AA==".into(),
            typing: true,
        }),
        "ig_send_text_request.json" => ig("7291836450192837", OutboundContent::Text { body: "Halo kak, mohon maaf atas kendalanya 🙏 Boleh dibantu nomor pesanannya?".into() }, false),
        "ig_send_quick_replies_request.json" => ig("7291836450192837", OutboundContent::Buttons {
            body: "Ada yang bisa kami bantu, kak?".into(),
            buttons: vec![btn("CEK_PESANAN", "Cek pesanan"), btn("KOMPLAIN", "Komplain barang"), btn("HANDOFF_CS", "Bicara dengan CS")],
            header: None,
            footer: None,
        }, false),
        "ig_send_human_agent_request.json" => ig("8123456789012345", OutboundContent::Text { body: "Halo kak, saya Rani dari tim CS. Retur untuk pesanan kakak sudah kami setujui ya.".into() }, true),
        _ => return None,
    })
}

fn render(msg: &OutboundMessage) -> Value {
    match msg.channel {
        Channel::WhatsApp => whatsapp::render(msg).unwrap(),
        Channel::Instagram => instagram::render(msg).unwrap(),
    }
}

#[test]
fn every_outbound_fixture_is_reproduced_validated_or_classified() {
    let dir = fixtures_dir().join("outbound");
    for (name, bytes) in json_files(&dir) {
        let fixture: Value = serde_json::from_slice(&bytes).unwrap();
        if name.ends_with("_request.json") {
            let msg = request_for(&name)
                .unwrap_or_else(|| panic!("no OutboundMessage for {name}: add one"));
            assert_eq!(render(&msg), fixture, "{name}");
            let valid = if name.starts_with("wa_") {
                validate_whatsapp_request(&fixture)
            } else {
                validate_instagram_request(&fixture)
            };
            assert_eq!(valid, Ok(()), "{name}");
        } else if name.ends_with("_success_response.json") {
            assert!(
                fixture.pointer("/messages/0/id").is_some() || fixture.get("message_id").is_some(),
                "{name}"
            );
        } else if name.ends_with("error_response.json") || name.starts_with("wa_error_") {
            let (status, want) = match name.as_str() {
                "wa_error_130429.json" => (400, "retry:sender"),
                "wa_error_131047.json" => (400, "permanent"),
                "wa_error_190.json" => (401, "permanent"),
                "ig_error_response.json" => (403, "permanent"),
                other => panic!("no expectation for {other}"),
            };
            let got = match classify_response(status, None, &bytes) {
                SendError::Retryable {
                    scope: Some(RateScope::Sender),
                    ..
                } => "retry:sender",
                SendError::Retryable { .. } => "retry",
                SendError::Permanent { .. } => "permanent",
                SendError::Unknown { .. } => "unknown",
            };
            assert_eq!(got, want, "{name}");
            assert_eq!(
                classify_response(status, None, &bytes).code(),
                fixture["error"]["code"].as_i64().unwrap()
            );
        } else {
            panic!("outbound fixture {name} has no expectation: add one");
        }
    }
}

#[test]
fn broken_requests_fail_validation() {
    let buttons = fixture("outbound/wa_send_buttons_request.json");
    let list = fixture("outbound/wa_send_list_request.json");
    let template = fixture("outbound/wa_send_template_request.json");
    let text = fixture("outbound/wa_send_text_request.json");
    let read = fixture("outbound/wa_mark_read_typing_request.json");
    let igqr = fixture("outbound/ig_send_quick_replies_request.json");
    let igh = fixture("outbound/ig_send_human_agent_request.json");
    type Edit = fn(&mut Value);
    let wa_cases: Vec<(&str, &Value, Edit)> = vec![
        ("text too long", &text, |v| {
            v["text"]["body"] = json!("é".repeat(4097))
        }),
        ("empty text", &text, |v| v["text"]["body"] = json!("")),
        ("no product", &text, |v| {
            v.as_object_mut().unwrap().remove("messaging_product");
        }),
        ("bad to", &text, |v| v["to"] = json!("budi")),
        ("unknown key", &text, |v| v["txt"] = json!({})),
        ("4 buttons", &buttons, |v| {
            let b = v["interactive"]["action"]["buttons"][0].clone();
            v["interactive"]["action"]["buttons"]
                .as_array_mut()
                .unwrap()
                .push(b);
        }),
        ("0 buttons", &buttons, |v| {
            v["interactive"]["action"]["buttons"] = json!([])
        }),
        ("title 21", &buttons, |v| {
            v["interactive"]["action"]["buttons"][0]["reply"]["title"] = json!("x".repeat(21))
        }),
        ("dup title", &buttons, |v| {
            v["interactive"]["action"]["buttons"][1]["reply"]["title"] = json!("Cek pesanan")
        }),
        ("id spaces", &buttons, |v| {
            v["interactive"]["action"]["buttons"][0]["reply"]["id"] = json!(" a")
        }),
        ("header 61", &buttons, |v| {
            v["interactive"]["header"]["text"] = json!("h".repeat(61))
        }),
        ("body 1025", &buttons, |v| {
            v["interactive"]["body"]["text"] = json!("b".repeat(1025))
        }),
        ("footer 61", &buttons, |v| {
            v["interactive"]["footer"]["text"] = json!("f".repeat(61))
        }),
        ("11 rows", &list, |v| {
            let r = v["interactive"]["action"]["sections"][1]["rows"].clone();
            for i in 0..6 {
                let mut x = r[0].clone();
                x["id"] = json!(format!("x{i}"));
                v["interactive"]["action"]["sections"][0]["rows"]
                    .as_array_mut()
                    .unwrap()
                    .push(x);
            }
        }),
        ("row title 25", &list, |v| {
            v["interactive"]["action"]["sections"][0]["rows"][0]["title"] = json!("t".repeat(25))
        }),
        ("row desc 73", &list, |v| {
            v["interactive"]["action"]["sections"][0]["rows"][0]["description"] =
                json!("d".repeat(73))
        }),
        ("row id 201", &list, |v| {
            v["interactive"]["action"]["sections"][0]["rows"][0]["id"] = json!("i".repeat(201))
        }),
        ("dup row id", &list, |v| {
            v["interactive"]["action"]["sections"][1]["rows"][0]["id"] = json!("topik_pengiriman")
        }),
        ("no section title", &list, |v| {
            v["interactive"]["action"]["sections"][1]
                .as_object_mut()
                .unwrap()
                .remove("title");
        }),
        ("label 21", &list, |v| {
            v["interactive"]["action"]["button"] = json!("l".repeat(21))
        }),
        ("int index", &template, |v| {
            v["template"]["components"][1]["index"] = json!(0)
        }),
        ("no language", &template, |v| {
            v["template"].as_object_mut().unwrap().remove("language");
        }),
        ("param newline", &template, |v| {
            v["template"]["components"][0]["parameters"][0]["text"] = json!("a\nb")
        }),
        ("bad payload type", &template, |v| {
            v["template"]["components"][1]["parameters"][0]["type"] = json!("text")
        }),
        ("read status", &read, |v| v["status"] = json!("delivered")),
        ("typing type", &read, |v| {
            v["typing_indicator"]["type"] = json!("audio")
        }),
    ];
    for (name, base, edit) in wa_cases {
        let mut v = base.clone();
        edit(&mut v);
        assert!(
            validate_whatsapp_request(&v).is_err(),
            "WA case {name} should fail"
        );
    }
    let ig_cases: Vec<(&str, &Value, Edit)> = vec![
        ("1001 bytes", &igh, |v| {
            v["message"]["text"] = json!("é".repeat(501))
        }),
        ("tag without MESSAGE_TAG", &igh, |v| {
            v["messaging_type"] = json!("RESPONSE")
        }),
        ("MESSAGE_TAG without tag", &igh, |v| {
            v.as_object_mut().unwrap().remove("tag");
        }),
        ("14 quick replies", &igqr, |v| {
            let q = v["message"]["quick_replies"][0].clone();
            for _ in 0..11 {
                v["message"]["quick_replies"]
                    .as_array_mut()
                    .unwrap()
                    .push(q.clone());
            }
        }),
        ("qr title 21", &igqr, |v| {
            v["message"]["quick_replies"][0]["title"] = json!("q".repeat(21))
        }),
        ("qr content type", &igqr, |v| {
            v["message"]["quick_replies"][0]["content_type"] = json!("button")
        }),
        ("no recipient", &igqr, |v| {
            v.as_object_mut().unwrap().remove("recipient");
        }),
        ("empty text", &igqr, |v| v["message"]["text"] = json!(" ")),
    ];
    for (name, base, edit) in ig_cases {
        let mut v = base.clone();
        edit(&mut v);
        assert!(
            validate_instagram_request(&v).is_err(),
            "IG case {name} should fail"
        );
    }
}

#[test]
fn rendered_extremes_always_validate() {
    let long = "Kak 😀 ".repeat(2000);
    let many: Vec<Button> = (0..20)
        .map(|i| btn(&format!(" id {i} "), &format!("Pilihan nomor {i} 😀😀😀")))
        .collect();
    let sections: Vec<ListSection> = (0..12)
        .map(|s| ListSection {
            title: if s % 2 == 0 {
                String::new()
            } else {
                long.clone()
            },
            rows: (0..2)
                .map(|r| row(&format!("{s}-{r}{long}"), &long, &long))
                .collect(),
        })
        .collect();
    let contents = vec![
        OutboundContent::Text { body: long.clone() },
        OutboundContent::Buttons {
            body: long.clone(),
            buttons: many[..3].to_vec(),
            header: Some(long.clone()),
            footer: Some(long.clone()),
        },
        OutboundContent::Buttons {
            body: long.clone(),
            buttons: many[..7].to_vec(),
            header: Some(long.clone()),
            footer: None,
        },
        OutboundContent::Buttons {
            body: long.clone(),
            buttons: many.clone(),
            header: None,
            footer: Some(long.clone()),
        },
        OutboundContent::Buttons {
            body: "x".into(),
            buttons: vec![btn("", ""), btn("", ""), btn("a", "a")],
            header: None,
            footer: None,
        },
        OutboundContent::List {
            body: long.clone(),
            button_label: long.clone(),
            sections: sections.clone(),
            header: Some(long.clone()),
            footer: Some(long.clone()),
        },
        OutboundContent::Template {
            name: "t".into(),
            language: "id".into(),
            body_parameters: vec!["a\n\nb\t\t     c".into()],
            quick_reply_payloads: vec!["p".into()],
        },
        OutboundContent::MarkRead {
            message_id: "wamid.X".into(),
            typing: true,
        },
    ];
    for c in &contents {
        let v = whatsapp::render(&wa("+6281234567890", c.clone())).unwrap();
        assert_eq!(validate_whatsapp_request(&v), Ok(()), "{v}");
        if !matches!(
            c,
            OutboundContent::Template { .. } | OutboundContent::MarkRead { .. }
        ) {
            for human in [false, true] {
                let v = instagram::render(&ig("7291836450192837", c.clone(), human)).unwrap();
                assert_eq!(validate_instagram_request(&v), Ok(()), "{v}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Clients against the mock
// ---------------------------------------------------------------------------

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn text_msg(channel: Channel, to: &str) -> OutboundMessage {
    OutboundMessage {
        channel,
        to: to.into(),
        content: OutboundContent::Text {
            body: "halo kak".into(),
        },
        human_agent_tag: false,
        from: None,
    }
}

#[tokio::test]
async fn whatsapp_client_success_and_request_shape() {
    let mock = GraphMock::start().await;
    let client = WhatsAppClient::new(
        http(),
        &format!("{}/v23.0/", mock.base_url()),
        WA_BIZ,
        "TEST-TOKEN",
    );
    let r = client
        .send(&text_msg(Channel::WhatsApp, "6281234567890"))
        .await
        .unwrap();
    assert!(
        r.platform_message_id
            .as_deref()
            .unwrap()
            .starts_with("wamid.MOCK")
    );
    let r2 = client
        .send(&text_msg(Channel::WhatsApp, "6281234567890"))
        .await
        .unwrap();
    assert_ne!(r.platform_message_id, r2.platform_message_id);
    let read = wa(
        "6281234567890",
        OutboundContent::MarkRead {
            message_id: "wamid.IN".into(),
            typing: true,
        },
    );
    assert_eq!(client.send(&read).await.unwrap().platform_message_id, None);
    assert!(mock.wait_for_requests(2, Duration::from_secs(5)).await);
    let reqs = mock.requests();
    assert_eq!(reqs[0].path, format!("/v23.0/{WA_BIZ}/messages"));
    assert_eq!(reqs[0].auth.as_deref(), Some("Bearer TEST-TOKEN"));
    assert_eq!(reqs[0].body["text"]["body"], "halo kak");
    // The mock keeps read receipts apart from messages.
    let receipts = mock.receipts();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].body["status"], "read");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    // A message for the other platform is never sent.
    let e = client
        .send(&text_msg(Channel::Instagram, "1"))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Permanent { .. }));
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn whatsapp_client_error_classification() {
    let mock = GraphMock::start().await;
    let client = WhatsAppClient::new(http(), mock.base_url(), WA_BIZ, "T");
    let msg = text_msg(Channel::WhatsApp, "6281234567890");

    mock.fail_next(1, 400, fixture("outbound/wa_error_130429.json"));
    let e = client.send(&msg).await.unwrap_err();
    assert!(
        matches!(
            e,
            SendError::Retryable {
                code: 130429,
                scope: Some(RateScope::Sender),
                ..
            }
        ),
        "{e:?}"
    );

    mock.push_response(common::graph_mock::CannedResponse {
        status: 429,
        body: json!({}),
        retry_after: Some("12".into()),
    });
    let e = client.send(&msg).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Retryable {
            code: 429,
            title: "HTTP 429".into(),
            scope: Some(RateScope::Sender),
            retry_after: Some(Duration::from_secs(12))
        }
    );

    mock.fail_next(1, 400, json!({"error": {"message": "(#131056) (Business Account, Consumer Account) pair rate limit hit", "type": "OAuthException", "code": 131056, "fbtrace_id": "x"}}));
    let e = client.send(&msg).await.unwrap_err();
    assert!(
        matches!(
            e,
            SendError::Retryable {
                code: 131056,
                scope: Some(RateScope::Recipient),
                ..
            }
        ),
        "{e:?}"
    );

    mock.fail_next(1, 400, fixture("outbound/wa_error_131047.json"));
    assert!(matches!(
        client.send(&msg).await.unwrap_err(),
        SendError::Permanent { code: 131047, .. }
    ));

    mock.fail_next(1, 401, fixture("outbound/wa_error_190.json"));
    assert!(matches!(
        client.send(&msg).await.unwrap_err(),
        SendError::Permanent { code: 190, .. }
    ));

    mock.fail_next(1, 503, json!("upstream down"));
    assert!(matches!(
        client.send(&msg).await.unwrap_err(),
        SendError::Retryable { code: 503, .. }
    ));

    // Back to success once the script is exhausted.
    assert!(client.send(&msg).await.is_ok());
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

/// A timeout after the request was written may hide a message the platform
/// accepted: its outcome is unknown. Only a refused connection proves that
/// nothing was sent (retryable).
#[tokio::test]
async fn timeouts_are_unknown_and_refused_connections_retryable() {
    let mock = GraphMock::start().await;
    mock.set_delay(Some(Duration::from_millis(500)));
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let client = WhatsAppClient::new(quick, mock.base_url(), WA_BIZ, "T");
    let e = client
        .send(&text_msg(Channel::WhatsApp, "62"))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Unknown { .. }), "{e:?}");
    assert_eq!(mock.requests().len(), 1, "the request reached the platform");
    // Nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = InstagramClient::new(http(), &dead, IG_BIZ, "T");
    let e = client
        .send(&text_msg(Channel::Instagram, "1"))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Retryable { code: 0, .. }), "{e:?}");
}

#[tokio::test]
async fn instagram_client_success_errors_and_shape() {
    let mock = GraphMock::start().await;
    let client = InstagramClient::new(http(), mock.base_url(), IG_BIZ, "IG-TOKEN");
    let msg = request_for("ig_send_quick_replies_request.json").unwrap();
    let r = client.send(&msg).await.unwrap();
    assert!(r.platform_message_id.unwrap().starts_with("mid.MOCK"));
    let reqs = mock.requests();
    assert_eq!(reqs[0].path, format!("/{IG_BIZ}/messages"));
    assert_eq!(reqs[0].auth.as_deref(), Some("Bearer IG-TOKEN"));
    assert_eq!(
        reqs[0].body,
        fixture("outbound/ig_send_quick_replies_request.json")
    );

    mock.fail_next(1, 403, fixture("outbound/ig_error_response.json"));
    assert!(matches!(
        client.send(&msg).await.unwrap_err(),
        SendError::Permanent { code: 10, .. }
    ));
    mock.fail_next(
        1,
        400,
        json!({"error": {"message": "rate", "type": "IGApiException", "code": 4}}),
    );
    assert!(matches!(
        client.send(&msg).await.unwrap_err(),
        SendError::Retryable {
            code: 4,
            scope: Some(RateScope::Sender),
            ..
        }
    ));
    // Templates are not available on Instagram: rejected before any request.
    let t = ig(
        "1",
        OutboundContent::Template {
            name: "t".into(),
            language: "id".into(),
            body_parameters: vec![],
            quick_reply_payloads: vec![],
        },
        false,
    );
    assert!(matches!(
        client.send(&t).await.unwrap_err(),
        SendError::Permanent { code: -1, .. }
    ));
    assert_eq!(mock.requests().len(), 3);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn mock_records_violations_and_answers_400() {
    let mock = GraphMock::start().await;
    let http = http();
    let resp = http
        .post(format!("{}/{WA_BIZ}/messages", mock.base_url()))
        .bearer_auth("T")
        .json(&json!({"messaging_product": "whatsapp", "to": "62", "type": "text", "text": {"body": ""}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    let resp = http
        .post(format!("{}/{IG_BIZ}/messages", mock.base_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(mock.wait_for_requests(2, Duration::from_secs(1)).await);
    assert!(!mock.wait_for_requests(3, Duration::from_millis(50)).await);
    assert_eq!(mock.violations().len(), 2);
}
