//! End to end through HTTP: signed webhooks in, the Graph API mock out, agents
//! through the API — on both store backends.

#[macro_use]
mod common;

use std::time::Duration;

use balas::clock::Clock;
use common::harness::{Harness, StoreKind};
use common::payloads;
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(
    greeting_gets_a_reply,
    complaint_goes_to_an_agent_and_back,
    a_clarifying_button_answer_continues_the_conversation,
    an_instagram_quick_reply_answers_a_clarifying_question,
);

async fn greeting_gets_a_reply(store: StoreKind) {
    let h = Harness::start(store).await;
    h.customer_says("6281200000001", "Rina", "halo kak").await;
    let texts = h.wait_texts_to("6281200000001", 1).await;
    assert!(!texts[0].is_empty());
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// An unsure bot asks with reply buttons (checked against the documented
/// shape by the mock) and keeps what it offered on the case; the tapped button
/// continues the conversation with that topic as if it had been understood;
/// a button that names nothing known is answered politely.
async fn a_clarifying_button_answer_continues_the_conversation(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281200000077";
    // A short question the default rules are unsure about.
    h.customer_says(who, "Dewi", "ori gk min?").await;
    h.wait_texts_to(who, 1).await;
    let asked = h
        .mock
        .requests()
        .into_iter()
        .find(|r| r.body["to"] == json!(who))
        .expect("the question");
    assert_eq!(
        asked.body["interactive"]["type"],
        json!("button"),
        "a question with reply buttons: {}",
        asked.body
    );
    let buttons: Vec<(String, String)> = asked.body["interactive"]["action"]["buttons"]
        .as_array()
        .expect("buttons")
        .iter()
        .map(|b| {
            (
                b["reply"]["id"].as_str().unwrap().to_string(),
                b["reply"]["title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(buttons.len() >= 2, "{buttons:?}");
    assert_eq!(
        buttons.last().unwrap(),
        &(
            "intent:human_agent".to_string(),
            "Bicara dengan CS".to_string()
        ),
        "a person is always offered"
    );
    let case = h.current_case(who).await.expect("a case");
    let conv = h.app.store().conversation(&case).await.unwrap().unwrap();
    let offered: Vec<(String, String)> = conv
        .question
        .as_ref()
        .expect("the question is kept on the case")
        .choices
        .iter()
        .map(|c| (c.payload.clone(), c.title.clone()))
        .collect();
    assert_eq!(offered, buttons);

    // The customer taps the first topic.
    let (payload, title) = &buttons[0];
    let topic = payload.strip_prefix("intent:").expect("an intent button");
    let tap = payloads::wa_button_reply(
        who,
        "Dewi",
        &payloads::new_wamid(),
        payload,
        title,
        h.clock.now_ms() / 1000,
    );
    let resp = h.post_signed("whatsapp", tap.to_string().as_bytes()).await;
    assert_eq!(resp.status(), 200);
    let texts = h.wait_texts_to(who, 2).await;
    assert_ne!(texts[1], texts[0], "an answer, not the question again");
    let store = h.app.store();
    h.until("the bot answers the chosen topic", || async {
        store.transcript(&case).await.unwrap().iter().any(
            |e| matches!(&e.speaker, balas::store::Speaker::Bot { intent: Some(i) } if i == topic),
        )
    })
    .await;
    let conv = store.conversation(&case).await.unwrap().unwrap();
    assert!(conv.question.is_none(), "answered: the question is closed");
    assert_eq!(conv.consecutive_fallbacks, 0);

    // A button from long ago that names nothing known any more.
    let stale = payloads::wa_button_reply(
        who,
        "Dewi",
        &payloads::new_wamid(),
        "intent:promo_lebaran_2019",
        "Opsi B",
        h.clock.now_ms() / 1000,
    );
    let resp = h
        .post_signed("whatsapp", stale.to_string().as_bytes())
        .await;
    assert_eq!(resp.status(), 200);
    let texts = h.wait_texts_to(who, 3).await;
    assert!(texts[2].contains("sudah tidak berlaku"), "{}", texts[2]);

    // A number given goes onto the case, where agents see it.
    h.customer_says(who, "Dewi", "paket saya belum sampai, resi JP1234567890")
        .await;
    let texts = h.wait_texts_to(who, 4).await;
    assert!(texts[3].contains("JP1234567890"), "{}", texts[3]);
    let (status, conv) = h
        .api(
            "root",
            Method::GET,
            &format!("/api/v1/conversations/{case}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(
        conv["entities"],
        json!({"tracking_number": "JP1234567890", "courier": "J&T"})
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// The same question on Instagram arrives as quick replies; the tapped quick
/// reply's payload continues the conversation with that topic.
async fn an_instagram_quick_reply_answers_a_clarifying_question(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "17841499900000077";
    let said = payloads::ig_text(who, "mid.ask", "ori gk min?", h.clock.now_ms());
    let resp = h
        .post_signed("instagram", said.to_string().as_bytes())
        .await;
    assert_eq!(resp.status(), 200);
    h.wait_texts_to(who, 1).await;
    let asked = h
        .mock
        .requests()
        .into_iter()
        .find(|r| r.body["recipient"]["id"] == json!(who))
        .expect("the question");
    let replies = asked.body["message"]["quick_replies"]
        .as_array()
        .unwrap_or_else(|| panic!("quick replies: {}", asked.body))
        .clone();
    assert!(replies.len() >= 2, "{replies:?}");
    let payload = replies[0]["payload"].as_str().unwrap().to_string();
    let title = replies[0]["title"].as_str().unwrap().to_string();
    let topic = payload
        .strip_prefix("intent:")
        .expect("an intent")
        .to_string();
    let tap = payloads::ig_quick_reply(who, "mid.tap", &title, &payload, h.clock.now_ms());
    let resp = h.post_signed("instagram", tap.to_string().as_bytes()).await;
    assert_eq!(resp.status(), 200);
    h.wait_texts_to(who, 2).await;
    let store = h.app.store();
    let case = store
        .contact(balas::channels::Channel::Instagram, who)
        .await
        .unwrap()
        .and_then(|c| c.current_case)
        .expect("a case");
    h.until("the bot answers the chosen topic", || async {
        store.transcript(&case).await.unwrap().iter().any(
            |e| matches!(&e.speaker, balas::store::Speaker::Bot { intent: Some(i) } if *i == topic),
        )
    })
    .await;
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

async fn complaint_goes_to_an_agent_and_back(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281200000002";
    h.customer_says(who, "Budi", "barang saya datang rusak, layarnya pecah")
        .await;
    let texts = h.wait_texts_to(who, 1).await;
    assert!(
        texts[0].contains('1'),
        "tells the position in line: {}",
        texts[0]
    );
    let case = h.current_case(who).await.expect("a case");

    let (status, conv) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(conv["id"], json!(case));
    assert_eq!(conv["state"], json!("assigned"));
    assert_eq!(conv["first_agent_reply_ms"], Value::Null);

    // The agent answers 90 seconds after the claim.
    h.clock.advance(Duration::from_secs(90));
    let replied_ms = h.clock.now_ms();
    let (status, _) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/messages"),
            Some(json!({"text": "Mohon maaf Kak, kami kirim pengganti hari ini."})),
        )
        .await;
    assert_eq!(status, 202);
    let texts = h.wait_texts_to(who, 2).await;
    assert_eq!(texts[1], "Mohon maaf Kak, kami kirim pengganti hari ini.");

    // The platform reports delivery; the transcript shows it.
    let conv = get_conv(&h, &case).await;
    let first_reply = conv["first_agent_reply_ms"]
        .as_i64()
        .expect("first reply time stored");
    assert!(
        (replied_ms..=h.clock.now_ms()).contains(&first_reply),
        "first reply at {first_reply}, sent at {replied_ms}"
    );
    let ours = conv["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["speaker"]["kind"] == json!("agent"))
        .and_then(|e| e["message_id"].as_str())
        .expect("the agent's message in the transcript")
        .to_string();
    h.until("the send is recorded", || async {
        let r = h.app.store().outbound(&ours).await.unwrap();
        r.is_some_and(|r| r.platform_id.is_some())
    })
    .await;
    let wamid = h
        .app
        .store()
        .outbound(&ours)
        .await
        .unwrap()
        .and_then(|r| r.platform_id)
        .unwrap();
    let status_body = payloads::wa_status(&wamid, who, "delivered", h.clock.now_ms() / 1000, None);
    h.post_signed("whatsapp", status_body.to_string().as_bytes())
        .await;
    h.until("delivery shows in the transcript", || async {
        get_conv(&h, &case).await["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message_id"] == json!(ours) && e["delivery"]["state"] == json!("delivered"))
    })
    .await;

    // The customer's next message goes to the agent, not the bot — even when
    // Meta delivers the webhook twice.
    let retried = payloads::wa_text(
        who,
        "Budi",
        &payloads::new_wamid(),
        "halo kak, terima kasih",
        h.clock.now_ms() / 1000,
    );
    for _ in 0..2 {
        let resp = h
            .post_signed("whatsapp", retried.to_string().as_bytes())
            .await;
        assert_eq!(resp.status(), 200);
    }
    h.until("the message reaches the transcript", || async {
        let (_, c) = h
            .api(
                "siti",
                Method::GET,
                &format!("/api/v1/conversations/{case}"),
                None,
            )
            .await;
        c["transcript"].as_array().is_some_and(|t| {
            t.iter()
                .any(|e| e["text"] == json!("halo kak, terima kasih"))
        })
    })
    .await;
    assert_eq!(h.texts_to(who).len(), 2, "the bot stayed silent");
    let conv = get_conv(&h, &case).await;
    let copies = conv["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["text"] == json!("halo kak, terima kasih"))
        .count();
    assert_eq!(copies, 1, "a retried webhook is recorded once");
    let first_reply = conv["first_agent_reply_ms"]
        .as_i64()
        .expect("first reply time stored");
    assert!(
        (replied_ms..=h.clock.now_ms()).contains(&first_reply),
        "first reply at {first_reply}, sent at {replied_ms}"
    );

    h.clock.advance(Duration::from_secs(300));

    let (status, conv) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(conv["state"], json!("resolved"));
    let resolved = conv["resolved_ms"]
        .as_i64()
        .expect("resolution time stored");
    assert!(resolved >= first_reply && resolved <= h.clock.now_ms());
    assert_eq!(
        conv["first_agent_reply_ms"],
        json!(first_reply),
        "time to first reply and to resolution are both kept"
    );

    h.customer_says(who, "Budi", "halo").await;
    h.wait_texts_to(who, 3).await;
    let new_case = h.current_case(who).await.expect("a new case");
    assert_ne!(new_case, case);
    h.stop().await;
}

async fn get_conv(h: &Harness, case: &str) -> Value {
    let (status, v) = h
        .api(
            "siti",
            Method::GET,
            &format!("/api/v1/conversations/{case}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Wrong routes, methods and bodies answer with the JSON error shape too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json() {
    let h = Harness::start(StoreKind::Embedded).await;
    let cases = [
        (Method::GET, "/nope", 404, "not_found"),
        (Method::DELETE, "/healthz", 405, "method_not_allowed"),
        (
            Method::PUT,
            "/api/v1/queue/claim",
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, status, code) in cases {
        let (got, body) = h.api("root", method.clone(), path, None).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {body}"
        );
    }
    let resp = h
        .http
        .post(format!("{}/api/v1/broadcasts", h.base))
        .bearer_auth(common::harness::token("maya"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!("bad_request"), "{body}");
    h.stop().await;
}
