//! Outbound delivery end to end (issue "Channels"): request shapes the Graph
//! mock accepts, retries on rate limits, permanent failures surfaced to agents,
//! out-of-order statuses, dry runs, and the platforms' windows — on both stores.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use balas::channels::Channel;
use balas::clock::Clock;
use balas::config::HumanDuration;
use balas::store::OutboundRecord;
use common::graph_mock::CannedResponse;
use common::harness::{Harness, IG_ACCOUNT_ID, PHONE_NUMBER_ID, StoreKind};
use common::payloads;
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(
    text_reply_matches_the_documented_shape,
    rate_limited_send_is_retried_and_delivered_once,
    window_error_131047_fails_visibly_without_retry,
    statuses_out_of_order_never_move_backwards,
    channel_without_token_is_a_dry_run,
    agent_reply_after_24_hours_is_window_closed,
    instagram_agent_reply_within_7_days_uses_human_agent_tag,
    instagram_bot_reply_is_a_response,
);

/// A question the default rules answer with plain text (no buttons).
const HOURS_QUESTION: &str = "jam operasional toko kapan ya";

fn outbound_fixture(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/platform/outbound")
        .join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The shape of a JSON value: keys and value types, recursively (array
/// elements by their first element).
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
        Value::Array(a) => json!([a.first().map(shape)]),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

fn requests_to(h: &Harness, to: &str) -> Vec<Value> {
    h.mock
        .requests()
        .into_iter()
        .map(|r| r.body)
        .filter(|b| b["to"] == json!(to) || b["recipient"]["id"] == json!(to))
        .collect()
}

async fn record(h: &Harness, id: &str) -> OutboundRecord {
    h.app
        .store()
        .outbound(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no outbound record {id}"))
}

async fn wait_state(h: &Harness, id: &str, state: &str) -> OutboundRecord {
    h.until(&format!("record {id} is {state}"), || async {
        h.app
            .store()
            .outbound(id)
            .await
            .unwrap()
            .is_some_and(|r| r.state.as_str() == state)
    })
    .await;
    record(h, id).await
}

/// Waits until the inbound and outbox queues are empty.
/// Settings that keep timers out of window tests: no reply timeout or
/// reassurance firing while the clock jumps by days.
fn quiet_timers(c: &mut balas::config::Config) {
    c.handoff.agent_reply_timeout = HumanDuration::secs(30 * 86_400);
    c.handoff.reassure_after = HumanDuration::secs(30 * 86_400);
    c.handoff.position_update_every = HumanDuration::secs(30 * 86_400);
}

async fn ig_customer_says(h: &Harness, igsid: &str, text: &str) -> String {
    let mid = format!("mid.{}", payloads::new_wamid());
    let body = payloads::ig_text(igsid, &mid, text, h.clock.now_ms());
    let resp = h
        .post_signed("instagram", body.to_string().as_bytes())
        .await;
    assert_eq!(resp.status(), 200);
    mid
}

async fn ig_case(h: &Harness, igsid: &str) -> String {
    h.app
        .store()
        .contact(Channel::Instagram, igsid)
        .await
        .unwrap()
        .and_then(|c| c.current_case)
        .expect("instagram case")
}

async fn conversation(h: &Harness, case: &str) -> Value {
    let (status, conv) = h
        .api(
            "sari",
            Method::GET,
            &format!("/api/v1/conversations/{case}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{conv}");
    conv
}

// ---------------------------------------------------------------------------

async fn text_reply_matches_the_documented_shape(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281200002001";
    h.customer_says(who, "Rina", HOURS_QUESTION).await;
    h.wait_texts_to(who, 1).await;
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    let sent = h.mock.requests();
    let req = sent.iter().find(|r| r.body["to"] == json!(who)).unwrap();
    assert_eq!(req.path, format!("/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(req.auth.as_deref(), Some("Bearer graph-token"));
    assert_eq!(
        shape(&req.body),
        shape(&outbound_fixture("wa_send_text_request.json")),
        "body {}",
        req.body
    );
    assert_eq!(req.body["type"], json!("text"));
    assert_eq!(req.body["text"]["preview_url"], json!(false));
    h.stop().await;
}

async fn rate_limited_send_is_retried_and_delivered_once(store: StoreKind) {
    let h = Harness::start(store).await;
    let throughput = outbound_fixture("wa_error_130429.json");
    let variants: [(&str, u16, Value); 3] = [
        (
            "6281200002011",
            429,
            json!({"error": {"message": "Too many", "type": "OAuthException", "code": 80007}}),
        ),
        ("6281200002012", 400, throughput.clone()),
        // HTTP 429 with no Graph body at all (a proxy): the status decides.
        ("6281200002013", 429, json!({})),
    ];
    for (who, status, body) in variants {
        h.mock.fail_next(1, status, body.clone());
        let id = h.customer_says(who, "Rina", HOURS_QUESTION).await;
        // The first attempt is answered with the rate limit …
        h.until(&format!("first attempt to {who}"), || async {
            !requests_to(&h, who).is_empty()
        })
        .await;
        // … and retried after a backoff (1 s at most on the first retry), which
        // the manual clock makes pass.
        h.until(&format!("retry to {who}"), || async {
            h.clock.advance(Duration::from_millis(500));
            requests_to(&h, who).len() >= 2
        })
        .await;
        let r = wait_state(&h, &format!("re:{id}"), "sent").await;
        assert_eq!(r.attempts, 2, "{status} {body}: {r:?}");
        assert!(r.platform_id.is_some());
        h.drained().await;
        let to_who = requests_to(&h, who);
        assert_eq!(to_who.len(), 2, "one failed attempt, one delivery");
        assert_eq!(to_who[0], to_who[1], "the retry is the same message");
    }
    // Retry-After is honoured: nothing is resent before it passes.
    let who = "6281200002014";
    h.mock.push_response(CannedResponse {
        status: 429,
        body: json!({}),
        retry_after: Some("120".into()),
    });
    let id = h.customer_says(who, "Rina", HOURS_QUESTION).await;
    h.until("first attempt", || async {
        !requests_to(&h, who).is_empty()
    })
    .await;
    h.until("retry scheduled", || async {
        let o = h.app.store().job_counts("outbox").await.unwrap();
        o.leased == 0 && o.pending == 1
    })
    .await;
    let next_due = h
        .app
        .store()
        .next_due("outbox")
        .await
        .unwrap()
        .expect("a retry is scheduled");
    let wait = next_due - h.clock.now_ms();
    assert!(
        (119_000..=120_000).contains(&wait),
        "retry in {wait} ms, not Retry-After's 120 s"
    );
    h.clock.advance(Duration::from_secs(121));
    wait_state(&h, &format!("re:{id}"), "sent").await;
    assert_eq!(requests_to(&h, who).len(), 2);
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

async fn window_error_131047_fails_visibly_without_retry(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281200002021";
    h.mock
        .fail_next(1, 400, outbound_fixture("wa_error_131047.json"));
    let id = h.customer_says(who, "Rina", HOURS_QUESTION).await;
    let r = wait_state(&h, &format!("re:{id}"), "failed").await;
    assert_eq!(r.error_code, Some(131047));
    assert_eq!(r.attempts, 1);
    // Agents see it in the transcript.
    let case = h.current_case(who).await.unwrap();
    let conv = conversation(&h, &case).await;
    let entry = conv["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["message_id"] == json!(format!("re:{id}")))
        .unwrap_or_else(|| panic!("bot reply in transcript: {conv}"))
        .clone();
    assert_eq!(entry["delivery"]["state"], json!("failed"), "{entry}");
    assert_eq!(entry["delivery"]["error_code"], json!(131047), "{entry}");
    let title = entry["delivery"]["error_title"]
        .as_str()
        .unwrap_or_default();
    assert!(
        title.contains("Re-engagement") || title.contains("24 hours"),
        "{title}"
    );
    // Never retried, however much time passes.
    h.clock.advance(Duration::from_secs(600));
    h.drained().await;
    assert_eq!(requests_to(&h, who).len(), 1);
    assert_eq!(
        record(&h, &format!("re:{id}")).await.state.as_str(),
        "failed"
    );
    h.stop().await;
}

async fn statuses_out_of_order_never_move_backwards(store: StoreKind) {
    let h = Harness::start(store).await;
    let now_s = h.clock.now_ms() / 1000;
    let post_status = |wamid: String, who: &'static str, status: &'static str, err| {
        let body = payloads::wa_status(&wamid, who, status, now_s, err).to_string();
        let h = &h;
        async move {
            let resp = h.post_signed("whatsapp", body.as_bytes()).await;
            assert_eq!(resp.status(), 200);
            h.drained().await;
        }
    };

    // read arrives before delivered; then delivered, sent and failed arrive late.
    let who = "6281200002031";
    let id = h.customer_says(who, "Rina", HOURS_QUESTION).await;
    let r = wait_state(&h, &format!("re:{id}"), "sent").await;
    let wamid = r.platform_id.clone().expect("platform id from the mock");
    assert!(wamid.starts_with("wamid.MOCK"), "{wamid}");
    post_status(wamid.clone(), who, "read", None).await;
    assert_eq!(record(&h, &r.id).await.state.as_str(), "read");
    post_status(wamid.clone(), who, "delivered", None).await;
    post_status(wamid.clone(), who, "sent", None).await;
    post_status(
        wamid.clone(),
        who,
        "failed",
        Some((131026, "Message undeliverable")),
    )
    .await;
    let after = record(&h, &r.id).await;
    assert_eq!(after.state.as_str(), "read", "{after:?}");
    assert_eq!(after.error_code, None);

    // delivered, then failed (accepted: a failure after delivery is news), then
    // read and delivered arrive after the terminal failure and change nothing.
    let who2 = "6281200002032";
    let id2 = h.customer_says(who2, "Budi", HOURS_QUESTION).await;
    let r2 = wait_state(&h, &format!("re:{id2}"), "sent").await;
    let wamid2 = r2.platform_id.clone().unwrap();
    post_status(wamid2.clone(), who2, "delivered", None).await;
    assert_eq!(record(&h, &r2.id).await.state.as_str(), "delivered");
    post_status(
        wamid2.clone(),
        who2,
        "failed",
        Some((131026, "Message undeliverable")),
    )
    .await;
    post_status(wamid2.clone(), who2, "read", None).await;
    post_status(wamid2.clone(), who2, "delivered", None).await;
    let after2 = record(&h, &r2.id).await;
    assert_eq!(after2.state.as_str(), "failed", "{after2:?}");
    assert_eq!(after2.error_code, Some(131026));

    // The transcript shows the same.
    let case = h.current_case(who).await.unwrap();
    let conv = conversation(&h, &case).await;
    let states: BTreeMap<String, Value> = conv["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            Some((
                e["message_id"].as_str()?.to_string(),
                e["delivery"]["state"].clone(),
            ))
        })
        .collect();
    assert_eq!(states.get(&r.id), Some(&json!("read")), "{conv}");
    h.stop().await;
}

async fn channel_without_token_is_a_dry_run(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.whatsapp.access_token = None).await;
    let who = "6281200002041";
    let id = h.customer_says(who, "Rina", HOURS_QUESTION).await;
    let r = wait_state(&h, &format!("re:{id}"), "dry_run").await;
    assert_eq!(r.attempts, 0);
    assert!(r.platform_id.is_none());
    h.drained().await;
    assert!(h.mock.requests().is_empty(), "nothing sent in a dry run");
    h.stop().await;
}

async fn agent_reply_after_24_hours_is_window_closed(store: StoreKind) {
    let h = Harness::start_with(store, quiet_timers).await;
    let who = "6281200002051";
    h.customer_says(who, "Budi", "barang saya datang rusak, layarnya pecah")
        .await;
    h.wait_texts_to(who, 1).await;
    let case = h.current_case(who).await.unwrap();
    let (status, conv) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(conv["id"], json!(case));

    // Within the window: accepted.
    let path = format!("/api/v1/conversations/{case}/messages");
    let (status, body) = h
        .api(
            "siti",
            Method::POST,
            &path,
            Some(json!({"text": "Baik Kak, kami cek."})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    h.wait_texts_to(who, 2).await;

    h.clock.advance(Duration::from_secs(25 * 3600));
    let (status, body) = h
        .api(
            "siti",
            Method::POST,
            &path,
            Some(json!({"text": "Kak, masih di sana?"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], json!("window_closed"), "{body}");
    let conv = conversation(&h, &case).await;
    assert!(
        !conv["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == json!("Kak, masih di sana?")),
        "a refused reply is not in the transcript: {conv}"
    );
    h.drained().await;
    assert_eq!(h.texts_to(who).len(), 2, "nothing more was sent");
    h.stop().await;
}

async fn instagram_agent_reply_within_7_days_uses_human_agent_tag(store: StoreKind) {
    let h = Harness::start_with(store, quiet_timers).await;
    let igsid = "9100000002061";
    ig_customer_says(&h, igsid, "barang saya datang rusak, layarnya pecah").await;
    h.wait_texts_to(igsid, 1).await;
    let case = ig_case(&h, igsid).await;
    let (status, conv) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(conv["id"], json!(case));
    let path = format!("/api/v1/conversations/{case}/messages");

    // 3 days later: only a human may answer, with the HUMAN_AGENT tag.
    h.clock.advance(Duration::from_secs(3 * 86_400));
    let text = "Halo kak, retur untuk pesanan kakak sudah kami setujui ya.";
    let (status, body) = h
        .api("siti", Method::POST, &path, Some(json!({"text": text})))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["human_agent_tag"], json!(true), "{body}");
    h.wait_texts_to(igsid, 2).await;
    let sent = requests_to(&h, igsid);
    let req = sent.last().unwrap();
    assert_eq!(req["messaging_type"], json!("MESSAGE_TAG"), "{req}");
    assert_eq!(req["tag"], json!("HUMAN_AGENT"), "{req}");
    assert_eq!(req["message"]["text"], json!(text));
    assert_eq!(
        shape(req),
        shape(&outbound_fixture("ig_send_human_agent_request.json")),
        "{req}"
    );
    let ig_req = h
        .mock
        .requests()
        .into_iter()
        .rfind(|r| r.body["recipient"]["id"] == json!(igsid))
        .unwrap();
    assert_eq!(ig_req.path, format!("/{IG_ACCOUNT_ID}/messages"));

    // After 7 days: refused.
    h.clock.advance(Duration::from_secs(5 * 86_400));
    let (status, body) = h
        .api("siti", Method::POST, &path, Some(json!({"text": "masih?"})))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], json!("window_closed"), "{body}");
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

async fn instagram_bot_reply_is_a_response(store: StoreKind) {
    let h = Harness::start(store).await;
    let igsid = "9100000002071";
    ig_customer_says(&h, igsid, HOURS_QUESTION).await;
    h.wait_texts_to(igsid, 1).await;
    let req = requests_to(&h, igsid).remove(0);
    assert_eq!(req["messaging_type"], json!("RESPONSE"), "{req}");
    assert!(req.get("tag").is_none(), "{req}");
    assert_eq!(
        shape(&req),
        shape(&outbound_fixture("ig_send_text_request.json")),
        "{req}"
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}
