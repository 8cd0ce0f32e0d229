//! Customers' personal data (UU PDP 27/2022), end to end on both stores: an
//! admin exports everything stored about a contact, then erases it; a scan
//! of every key and value of the store finds no trace of the contact's
//! number, name, messages, notes, labels, files, survey comment or broadcast
//! variables, and no message id that embeds the number; the media store no
//! longer has the contact's own files (a file another contact sent too
//! stays); reports still count the case; the erasure is in the audit log
//! under the contact's pseudonym. With Redis the export and the erasure run
//! on different processes.
//!
//! Retention, on the injectable clock: the background job deletes transcripts,
//! files, dead letters, audit entries and resolved cases once they are older
//! than `[retention]` allows, and nothing younger.

#[macro_use]
mod common;

use std::time::Duration;

use balas::channels::{Channel, InboundMedia, MediaKind};
use balas::clock::Clock;
use balas::media::ContentHash;
use balas::store::{Attachment, Store};
use base64::Engine as _;
use common::harness::{Harness, StoreKind};
use common::payloads;
use reqwest::Method;
use serde_json::json;

on_both_stores!(
    export_then_erase_leaves_no_trace_and_reports_still_count,
    erasure_and_export_are_for_admins_and_say_what_is_wrong,
    retention_deletes_what_is_old_and_keeps_the_rest,
    erasure_cancels_a_broadcast_message_waiting_to_be_sent,
);

/// On a Redis Cluster too: erasure proves its work by scanning every key,
/// which there means every master.
mod cluster {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn export_then_erase_leaves_no_trace_and_reports_still_count() {
        super::export_then_erase_leaves_no_trace_and_reports_still_count(
            super::StoreKind::cluster(),
        )
        .await
    }
}

/// The contact who asks to be erased.
const DEWI: &str = "6281298765432";
/// Another contact, who must keep everything.
const ANDI: &str = "6281311112222";

/// Words that only Dewi's data contains: none may be left after the erasure.
const DEWI_WORDS: &[&str] = &[
    DEWI,
    "Dewi Kartika",
    "Jalan Melati Tujuh",
    "Kak Dewi, pesanan",
    "minta ditelepon sore",
    "pelanggan-setia",
    "ramah sekali",
    "ktp-dewi.jpg",
    "KTP Dewi",
    "Ibu Dewi",
];

/// A WhatsApp message id shaped like the real ones, which embed the sender's
/// number (base64 of a protobuf holding it).
fn real_wamid(wa_id: &str, n: u32) -> String {
    let inner = format!("\u{1c}\u{18}\r{wa_id}\u{15}\u{2}\u{0}\u{12}\u{18}\u{14}3EB0{n:016X}");
    format!(
        "wamid.{}",
        base64::engine::general_purpose::STANDARD.encode(inner.as_bytes())
    )
}

/// The customer writes; returns the message id.
async fn say(h: &Harness, wa_id: &str, name: &str, n: u32, text: &str) -> String {
    let id = real_wamid(wa_id, n);
    let body = payloads::wa_text(wa_id, name, &id, text, h.clock.now_ms() / 1000);
    let resp = h.post_signed("whatsapp", body.to_string().as_bytes()).await;
    assert_eq!(resp.status(), 200);
    id
}

/// Every key and value of the store, as text (lossy), one line per key.
async fn dump(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (page, next) = store.scan_raw(&cursor, 500).await.expect("scan");
        for e in page {
            let mut line = e.key.clone();
            for v in &e.values {
                line.push(' ');
                line.push_str(&String::from_utf8_lossy(v));
            }
            out.push(line);
        }
        match next {
            Some(n) => cursor = n,
            None => return out,
        }
    }
}

/// The conversations a search for `q` finds (an admin searching).
async fn found(h: &Harness, q: &str) -> Vec<String> {
    let q: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let path = format!("/api/v1/conversations?q={q}");
    let (status, v) = h.api("root", Method::GET, &path, None).await;
    assert_eq!(status, 200, "{v}");
    v["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn traces<'a>(dump: &'a [String], needle: &str) -> Vec<&'a String> {
    dump.iter().filter(|l| l.contains(needle)).collect()
}

/// Stores a file of a case: the bytes in the media store, the record in the
/// store (as the media download does).
async fn file(
    h: &Harness,
    case: &str,
    n: u32,
    bytes: &[u8],
    caption: &str,
    name: &str,
) -> ContentHash {
    let media = InboundMedia {
        kind: MediaKind::Document,
        media_id: Some(format!("media-{n}")),
        url: None,
        mime_type: Some("image/jpeg".into()),
        sha256: None,
        caption: Some(caption.into()),
        filename: Some(name.into()),
        voice: false,
        animated: false,
    };
    let store = h.app.store();
    let record = Attachment::inbound(
        &format!("wa:msg:file-{n}"),
        case,
        Channel::WhatsApp,
        &format!("msg-file-{n}"),
        &media,
        h.clock.now_ms(),
    );
    store.create_attachment(&record).await.expect("record");
    let object = h
        .app
        .media()
        .put_bytes(bytes::Bytes::copy_from_slice(bytes), 1 << 20)
        .await
        .expect("bytes");
    store
        .mark_attachment_stored(&record.id, object, "image/jpeg")
        .await
        .expect("stored");
    object.hash
}

async fn summary_cases(h: &Harness) -> i64 {
    let (status, v) = h
        .api(
            "sari",
            Method::GET,
            "/api/v1/reports/summary?from=2026-11-01&to=2026-11-30",
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["total"]["cases"].as_i64().unwrap()
}

async fn export_then_erase_leaves_no_trace_and_reports_still_count(store: StoreKind) {
    let h = Harness::start_with(store, |c| {
        c.survey.delay = balas::config::HumanDuration::secs(1);
        c.survey.comment = true;
    })
    .await;
    let other = if h.store_kind.shared() {
        Some(h.second_process().await)
    } else {
        None
    };
    let second = other.as_ref().unwrap_or(&h);

    // Andi writes too, and keeps everything.
    say(&h, ANDI, "Andi Wijaya", 1, "halo kak").await;
    h.drained().await;
    let andi_case = h.current_case(ANDI).await.expect("Andi's case");

    // Dewi reaches an agent, who answers, notes and labels; she sends more.
    let mut dewi_ids = vec![
        say(
            &h,
            DEWI,
            "Dewi Kartika",
            1,
            "saya mau bicara dengan customer service",
        )
        .await,
    ];
    h.drained().await;
    let (status, conv) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", None)
        .await;
    assert_eq!(status, 200, "{conv}");
    let case = conv["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/conversations/{case}");
    for (what, body) in [
        (
            "messages",
            json!({"text": "Halo Kak Dewi, pesanan sedang kami cek."}),
        ),
        ("notes", json!({"text": "Ibu Dewi minta ditelepon sore"})),
        ("labels", json!({"add": ["pelanggan-setia"]})),
    ] {
        let (status, v) = h
            .api("siti", Method::POST, &format!("{path}/{what}"), Some(body))
            .await;
        assert!(status < 300, "{what}: {v}");
    }
    dewi_ids.push(
        say(
            &h,
            DEWI,
            "Dewi Kartika",
            2,
            "Alamat saya Jalan Melati Tujuh",
        )
        .await,
    );
    h.drained().await;
    // Files: one only Dewi sent, one both sent (the same bytes).
    let own = file(
        &h,
        &case,
        1,
        b"jpeg bytes of KTP Dewi",
        "KTP Dewi",
        "ktp-dewi.jpg",
    )
    .await;
    let shared = file(
        &h,
        &case,
        2,
        b"the shop's price list",
        "daftar harga",
        "harga.jpg",
    )
    .await;
    assert_eq!(
        file(
            &h,
            &andi_case,
            3,
            b"the shop's price list",
            "harga",
            "harga.jpg"
        )
        .await,
        shared
    );
    // Resolved; the survey asks, she answers with a comment.
    let (status, v) = h
        .api("siti", Method::POST, &format!("{path}/resolve"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    h.drained().await;
    h.clock.advance(Duration::from_secs(2));
    h.until("the survey is asked", || async {
        h.app
            .store()
            .survey(&case)
            .await
            .unwrap()
            .is_some_and(|s| s.via.is_some())
    })
    .await;
    h.drained().await;
    dewi_ids.push(say(&h, DEWI, "Dewi Kartika", 3, "5").await);
    h.drained().await;
    dewi_ids.push(say(&h, DEWI, "Dewi Kartika", 4, "Mbak Siti ramah sekali").await);
    h.until("the survey is completed", || async {
        h.app
            .store()
            .survey(&case)
            .await
            .unwrap()
            .is_some_and(|s| s.comment.is_some())
    })
    .await;
    h.drained().await;
    // Broadcasts: one sent to both, one scheduled for tomorrow.
    let audience = json!([
        {"to": DEWI, "variables": {"name": "Dewi Kartika"}},
        {"to": ANDI, "variables": {"name": "Andi Wijaya"}},
    ]);
    let mut broadcasts = Vec::new();
    for send_at in [None, Some(h.clock.now_ms() + 86_400_000)] {
        let mut body = json!({
            "name": "promo",
            "channel": "whatsapp",
            "message": {"template": {"name": "promo", "language": "id", "body_parameters": ["{{name}}"]}},
            "audience": {"recipients": audience},
            "rate_per_sec": 50.0,
        });
        if let Some(at) = send_at {
            body["send_at"] = json!(jiff::Timestamp::from_millisecond(at).unwrap().to_string());
        }
        let (status, v) = h
            .api("maya", Method::POST, "/api/v1/broadcasts", Some(body))
            .await;
        assert_eq!(status, 201, "{v}");
        broadcasts.push(v["id"].as_str().unwrap().to_string());
    }
    h.until("the first broadcast reached both", || async {
        h.mock
            .requests()
            .iter()
            .filter(|r| r.body["type"] == "template" && r.body["template"]["name"] == "promo")
            .count()
            == 2
    })
    .await;
    h.idle().await;
    // A dead letter that carries her number.
    h.app
        .store()
        .schedule(
            balas::store::queues::TIMERS,
            "garbled",
            h.clock.now_ms(),
            &json!({"bogus": {"contact": DEWI}}),
            None,
        )
        .await
        .unwrap();
    h.until("the garbled job is dead", || async {
        h.app
            .store()
            .job_counts(balas::store::queues::TIMERS)
            .await
            .unwrap()
            .dead
            == 1
    })
    .await;

    let before = dump(h.app.store()).await;
    for word in DEWI_WORDS {
        assert!(
            !traces(&before, word).is_empty(),
            "the scan finds {word:?} before"
        );
    }
    let cases_before = summary_cases(&h).await;
    assert!(cases_before >= 1);

    // The export, on the other process: everything about her.
    let (status, export) = second
        .api(
            "root",
            Method::GET,
            &format!("/api/v1/contacts/whatsapp/{DEWI}/export"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["format"], "balas.contact-export/1");
    assert_eq!(export["contact"]["name"], "Dewi Kartika");
    assert_eq!(export["contact"]["labels"], json!(["pelanggan-setia"]));
    assert_eq!(
        export["contact"]["notes"][0]["text"],
        "Ibu Dewi minta ditelepon sore"
    );
    let case_export = &export["cases"][0];
    assert_eq!(case_export["id"], json!(case));
    let texts: Vec<&str> = case_export["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    for t in [
        "Alamat saya Jalan Melati Tujuh",
        "Halo Kak Dewi, pesanan sedang kami cek.",
        "Mbak Siti ramah sekali",
    ] {
        assert!(texts.contains(&t), "{t:?} in {texts:?}");
    }
    assert!(
        case_export["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["speaker"]["kind"] == "agent" && e["delivery"]["state"].is_string()),
        "our messages come with their delivery"
    );
    assert_eq!(case_export["survey"]["comment"], "Mbak Siti ramah sekali");
    assert_eq!(case_export["survey"]["csat"], 5);
    let captions: Vec<&str> = case_export["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["caption"].as_str())
        .collect();
    assert_eq!(captions, ["KTP Dewi", "daftar harga"]);
    let in_broadcasts = export["broadcasts"].as_array().unwrap();
    assert_eq!(in_broadcasts.len(), 2, "{in_broadcasts:?}");
    let sent = in_broadcasts
        .iter()
        .find(|b| b["broadcast_id"] == json!(broadcasts[0]))
        .unwrap();
    assert_eq!(sent["variables"][0]["name"], "Dewi Kartika");
    assert_eq!(sent["delivery"]["state"], "sent");
    let dead = export["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["queue"], "timers");
    assert_eq!(dead[0]["entry"]["payload"]["bogus"]["contact"], DEWI);

    // Findable by her number, her name and her words, until the erasure.
    for q in [DEWI, "Dewi Kartika", "customer service"] {
        assert_eq!(found(&h, q).await, std::slice::from_ref(&case), "{q}");
    }

    // The erasure, on this process.
    let (status, v) = h
        .api(
            "root",
            Method::DELETE,
            &format!("/api/v1/contacts/whatsapp/{DEWI}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let erased = &v["erased"];
    assert_eq!(erased["contact"], true);
    assert_eq!(erased["cases"], 1);
    assert_eq!(erased["files"], 2);
    assert_eq!(erased["stored_files_deleted"], 1, "the shared file stays");
    assert_eq!(erased["surveys"], 1);
    assert_eq!(erased["broadcasts"], 2);
    assert_eq!(erased["dead_letters"], 1);
    assert!(erased["messages"].as_u64().unwrap() >= 3, "{erased}");
    assert!(erased["search_terms"].as_u64().unwrap() >= 5, "{erased}");
    // Nothing finds her case any more (by number, name, case id or words);
    // Andi's is still found.
    for q in [DEWI, "081298765432", "Dewi", "customer service", &case] {
        assert!(found(second, q).await.is_empty(), "{q} still finds her");
    }
    assert_eq!(
        found(second, "Andi").await,
        std::slice::from_ref(&andi_case)
    );

    // No trace of her anywhere in the store.
    let after = dump(h.app.store()).await;
    for word in DEWI_WORDS {
        let left = traces(&after, word);
        assert!(left.is_empty(), "{word:?} is still stored: {left:#?}");
    }
    for id in &dewi_ids {
        let left = traces(&after, id);
        assert!(
            left.is_empty(),
            "the message id {id} is still stored: {left:#?}"
        );
    }
    // The base64 of her number inside message ids is gone too.
    let inner = base64::engine::general_purpose::STANDARD.encode(format!("\u{1c}\u{18}\r{DEWI}"));
    assert!(traces(&after, &inner[..12]).is_empty());
    // Andi keeps everything.
    assert!(!traces(&after, ANDI).is_empty());
    assert!(!traces(&after, "Andi Wijaya").is_empty());
    // Her own file's bytes are gone; the shared one stays for Andi.
    let media = h.app.media();
    assert_eq!(media.size(&own).await.unwrap(), None);
    assert!(media.size(&shared).await.unwrap().is_some());
    assert_eq!(
        h.app
            .store()
            .conversation_attachments(&andi_case, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Reports still count the case, with its score; the comment is gone.
    assert_eq!(summary_cases(second).await, cases_before);
    let survey = h
        .app
        .store()
        .survey(&case)
        .await
        .unwrap()
        .expect("survey kept");
    assert_eq!((survey.csat, survey.comment), (Some(5), None));
    let conv = h
        .app
        .store()
        .conversation(&case)
        .await
        .unwrap()
        .expect("case kept");
    assert_eq!(conv.contact_id, balas::conversation::ERASED_CONTACT);
    assert_eq!(conv.agent.as_deref(), Some("siti"));

    // The scheduled broadcast no longer holds her: it sends to Andi only.
    h.clock.advance(Duration::from_secs(86_400 + 60));
    h.until("the second broadcast went out", || async {
        h.mock
            .requests()
            .iter()
            .filter(|r| r.body["type"] == "template" && r.body["template"]["name"] == "promo")
            .count()
            >= 3
    })
    .await;
    h.idle().await;
    let to: Vec<String> = h
        .mock
        .requests()
        .iter()
        .filter(|r| r.body["type"] == "template")
        .map(|r| r.body["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        to.iter().filter(|t| *t == DEWI).count(),
        1,
        "only the first: {to:?}"
    );
    let (status, csv) = h
        .api(
            "maya",
            Method::GET,
            &format!("/api/v1/broadcasts/{}", broadcasts[1]),
            None,
        )
        .await;
    assert_eq!(status, 200, "{csv}");

    // Nothing left to export or erase, on either process.
    for p in [&h, second] {
        let (status, _) = p
            .api(
                "root",
                Method::GET,
                &format!("/api/v1/contacts/whatsapp/{DEWI}/export"),
                None,
            )
            .await;
        assert_eq!(status, 404);
    }
    let (status, _) = second
        .api(
            "root",
            Method::DELETE,
            &format!("/api/v1/contacts/whatsapp/{DEWI}"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // The audit log has both, under her pseudonym.
    let (status, log) = second
        .api(
            "root",
            Method::GET,
            &format!("/api/v1/audit?contact=whatsapp:{DEWI}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let entries = log["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["contact.erase", "contact.export"]);
    assert_eq!(entries[0]["target"], v["audit_target"]);
    assert!(entries[0]["detail"].as_str().unwrap().contains("cases=1"));

    // She writes again: a new contact, with nothing of the old one.
    say(&h, DEWI, "Dewi K", 5, "halo lagi").await;
    h.drained().await;
    let fresh = h
        .app
        .store()
        .contact(Channel::WhatsApp, DEWI)
        .await
        .unwrap()
        .expect("a new contact");
    assert!(fresh.notes.is_empty() && fresh.labels.is_empty());
    assert_eq!(fresh.cases.len(), 1);
    assert_ne!(fresh.cases[0], case);
}

async fn erasure_and_export_are_for_admins_and_say_what_is_wrong(store: StoreKind) {
    let h = Harness::start(store).await;
    say(&h, DEWI, "Dewi Kartika", 1, "halo").await;
    h.drained().await;
    for who in ["siti", "sari", "maya"] {
        for method in [Method::GET, Method::DELETE] {
            let path = match method {
                Method::GET => format!("/api/v1/contacts/whatsapp/{DEWI}/export"),
                _ => format!("/api/v1/contacts/whatsapp/{DEWI}"),
            };
            let (status, v) = h.api(who, method.clone(), &path, None).await;
            assert_eq!(status, 403, "{who} {method}: {v}");
        }
    }
    for (path, hint) in [
        (
            format!("/api/v1/contacts/telegram/{DEWI}/export"),
            "whatsapp or instagram",
        ),
        (
            "/api/v1/contacts/whatsapp/%20/export".to_string(),
            "contact id",
        ),
        (
            "/api/v1/contacts/instagram/404404/export".to_string(),
            "nothing is stored",
        ),
    ] {
        let (status, v) = h.api("root", Method::GET, &path, None).await;
        assert!(status == 400 || status == 404, "{path}: {status} {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(hint),
            "{path}: {v}"
        );
    }
    assert!(
        h.app
            .store()
            .contact(Channel::WhatsApp, DEWI)
            .await
            .unwrap()
            .is_some(),
        "refusals erased nothing"
    );
}

const DAY: Duration = Duration::from_secs(86_400);

/// Moves the clock and waits until the retention job has run at the new time
/// (it reschedules itself an hour after each run).
async fn sweep_after(h: &Harness, advance: Duration) {
    h.clock.advance(advance);
    let now = h.clock.now_ms();
    h.until("the retention job ran", || async {
        let store = h.app.store();
        let counts = store
            .job_counts(balas::store::queues::MAINTENANCE)
            .await
            .unwrap();
        let next = store
            .next_due(balas::store::queues::MAINTENANCE)
            .await
            .unwrap();
        counts.leased == 0 && next.is_some_and(|due| due > now)
    })
    .await;
}

/// The agent's messages in a case's transcript (their record ids).
async fn agent_messages(h: &Harness, case: &str) -> Vec<String> {
    h.app
        .store()
        .transcript(case)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.speaker, balas::store::Speaker::Agent { .. }))
        .filter_map(|e| e.message_id)
        .collect()
}

/// A customer reaches Siti, who answers and resolves; returns the case.
async fn handled_case(h: &Harness, wa_id: &str, name: &str, answer: &str) -> String {
    say(h, wa_id, name, 1, "saya mau bicara dengan customer service").await;
    h.drained().await;
    let (status, conv) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", None)
        .await;
    assert_eq!(status, 200, "{conv}");
    let case = conv["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/conversations/{case}");
    let (status, v) = h
        .api(
            "siti",
            Method::POST,
            &format!("{path}/messages"),
            Some(json!({ "text": answer })),
        )
        .await;
    assert!(status < 300, "{v}");
    h.drained().await;
    let (status, v) = h
        .api("siti", Method::POST, &format!("{path}/resolve"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    h.drained().await;
    case
}

/// Siti's audit entries at or before `to_ms`.
async fn siti_audited(h: &Harness, to_ms: i64) -> usize {
    let q = balas::store::AuditQuery {
        actor: Some("siti".into()),
        to_ms: Some(to_ms),
        limit: 100,
        ..Default::default()
    };
    h.app.store().audit_page(&q).await.unwrap().entries.len()
}

async fn summary_all(h: &Harness) -> i64 {
    let (status, v) = h
        .api(
            "sari",
            Method::GET,
            "/api/v1/reports/summary?from=2026-11-01&to=2026-12-31",
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["total"]["cases"].as_i64().unwrap()
}

async fn retention_deletes_what_is_old_and_keeps_the_rest(store: StoreKind) {
    let h = Harness::start_with(store, |c| {
        c.survey.enabled = false;
        c.retention.transcripts = balas::config::HumanDuration::secs(2 * 86_400);
        c.retention.media = balas::config::HumanDuration::secs(2 * 86_400);
        c.retention.dead_letters = balas::config::HumanDuration::secs(2 * 86_400);
        c.retention.audit = balas::config::HumanDuration::secs(5 * 86_400);
        c.retention.resolved_cases = balas::config::HumanDuration::secs(8 * 86_400);
    })
    .await;
    let t0 = h.clock.now_ms();
    let store = h.app.store();

    // Day 0: Dewi's case, with an answer and a file; a dead letter.
    let old = handled_case(
        &h,
        DEWI,
        "Dewi Kartika",
        "Halo Kak Dewi, pesanan sedang kami cek.",
    )
    .await;
    let old_replies = agent_messages(&h, &old).await;
    assert_eq!(old_replies.len(), 1);
    let own = file(
        &h,
        &old,
        1,
        b"jpeg bytes of KTP Dewi",
        "KTP Dewi",
        "ktp-dewi.jpg",
    )
    .await;
    h.app
        .store()
        .schedule(
            balas::store::queues::TIMERS,
            "garbled",
            t0,
            &json!({"bogus": true}),
            None,
        )
        .await
        .unwrap();
    h.until("the garbled job is dead", || async {
        store
            .job_counts(balas::store::queues::TIMERS)
            .await
            .unwrap()
            .dead
            == 1
    })
    .await;
    assert!(
        siti_audited(&h, t0 + 60_000).await >= 2,
        "claim and resolve"
    );
    let before = dump(store).await;
    for word in ["Halo Kak Dewi", "KTP Dewi", "ktp-dewi.jpg"] {
        assert!(!traces(&before, word).is_empty(), "{word:?} stored before");
    }
    assert_eq!(summary_all(&h).await, 1);

    // Day 3: the transcript, the answer's record, the file and the dead
    // letter are older than two days; the case and the audit entries stay.
    sweep_after(&h, 3 * DAY).await;
    assert!(store.transcript(&old).await.unwrap().is_empty());
    for id in &old_replies {
        assert!(store.outbound(id).await.unwrap().is_none(), "{id}");
    }
    // The file is a tombstone (the case shows a file was there) without its
    // bytes, caption or name.
    let files = store.conversation_attachments(&old, 10).await.unwrap();
    assert!(
        files
            .iter()
            .all(|f| f.status == balas::store::AttachmentStatus::Expired
                && f.caption.is_none()
                && f.filename.is_none()),
        "{files:?}"
    );
    assert_eq!(h.app.media().size(&own).await.unwrap(), None);
    let timers = store
        .job_counts(balas::store::queues::TIMERS)
        .await
        .unwrap();
    assert_eq!(timers.dead, 0);
    let after = dump(store).await;
    for word in ["Halo Kak Dewi", "KTP Dewi", "ktp-dewi.jpg"] {
        let left = traces(&after, word);
        assert!(left.is_empty(), "{word:?} is still stored: {left:#?}");
    }
    assert!(store.conversation(&old).await.unwrap().is_some());
    assert_eq!(summary_all(&h).await, 1, "the case still counts");
    assert!(siti_audited(&h, t0 + 60_000).await >= 2);

    // Day 3: Andi's case; a sweep an hour later keeps all of it (young).
    let young = handled_case(&h, ANDI, "Andi Wijaya", "Halo Kak Andi, sudah kami kirim.").await;
    let young_replies = agent_messages(&h, &young).await;
    sweep_after(&h, Duration::from_secs(3_700)).await;
    assert!(!store.transcript(&young).await.unwrap().is_empty());
    for id in &young_replies {
        assert!(store.outbound(id).await.unwrap().is_some(), "{id}");
    }

    // Day 6: the audit entries of day 0 are older than five days; those of
    // day 3 stay.
    sweep_after(&h, 3 * DAY - Duration::from_secs(3_700)).await;
    assert_eq!(siti_audited(&h, t0 + DAY.as_millis() as i64).await, 0);
    assert!(siti_audited(&h, h.clock.now_ms()).await >= 2);
    assert!(store.conversation(&old).await.unwrap().is_some());

    // Day 9: Dewi's case is older than eight days: gone from reports too;
    // Andi's stays.
    sweep_after(&h, 3 * DAY).await;
    assert!(store.conversation(&old).await.unwrap().is_none());
    let dewi = store
        .contact(Channel::WhatsApp, DEWI)
        .await
        .unwrap()
        .expect("the contact stays");
    assert!(!dewi.cases.contains(&old), "{:?}", dewi.cases);
    assert!(store.conversation(&young).await.unwrap().is_some());
    assert_eq!(summary_all(&h).await, 1, "only Andi's case counts");
}

async fn erasure_cancels_a_broadcast_message_waiting_to_be_sent(store: StoreKind) {
    let h = Harness::start(store).await;
    // The first send fails for a while: the message waits in the outbox,
    // under a job named after the record, which holds her number.
    h.mock.fail_next(
        1,
        500,
        json!({"error": {"message": "(#2) Service temporarily unavailable", "type": "OAuthException",
            "code": 2, "fbtrace_id": "T"}}),
    );
    let body = json!({
        "name": "promo",
        "channel": "whatsapp",
        "message": {"template": {"name": "promo", "language": "id", "body_parameters": ["{{name}}"]}},
        "audience": {"recipients": [{"to": DEWI, "variables": {"name": "Dewi Kartika"}}]},
        "rate_per_sec": 50.0,
    });
    let (status, v) = h
        .api("maya", Method::POST, "/api/v1/broadcasts", Some(body))
        .await;
    assert_eq!(status, 201, "{v}");
    let rid = balas::broadcast::record_id(v["id"].as_str().unwrap(), DEWI);
    let store = h.app.store();
    h.until("the failed send waits for its retry", || async {
        let counts = store
            .job_counts(balas::store::queues::OUTBOX)
            .await
            .unwrap();
        h.mock.requests().len() == 1
            && counts.leased == 0
            && store
                .job(balas::store::queues::OUTBOX, &rid)
                .await
                .unwrap()
                .is_some()
    })
    .await;

    let (status, v) = h
        .api(
            "root",
            Method::DELETE,
            &format!("/api/v1/contacts/whatsapp/{DEWI}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["erased"]["broadcasts"], 1, "{v}");
    assert!(
        store
            .job(balas::store::queues::OUTBOX, &rid)
            .await
            .unwrap()
            .is_none()
    );
    let left = traces(&dump(store).await, DEWI)
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert!(left.is_empty(), "her number is still stored: {left:#?}");
    // The retry time passes: nothing more is sent to her.
    h.clock.advance(Duration::from_secs(3_600));
    h.idle().await;
    assert_eq!(h.mock.requests().len(), 1);
}
