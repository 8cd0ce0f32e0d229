//! Several WhatsApp numbers and Instagram accounts in one deployment (issue
//! 17): a customer is answered from the number they wrote to, with that
//! number's token; agents' replies, surveys and broadcasts go out from the
//! case's (or the named) number; queues, conversation lists and reports
//! filter by number; a number that is not configured fails its replies
//! visibly instead of answering from another number; one number over Meta's
//! rate limit cools down alone, the others keep sending.

#[macro_use]
mod common;

use std::time::Duration;

use balas::clock::Clock;
use balas::config::{Config, InstagramAccount, Secret, WhatsAppNumber};
use common::graph_mock::CannedResponse;
use common::harness::{Harness, StoreKind};
use common::payloads;
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(
    each_customer_is_answered_from_the_number_they_wrote_to,
    a_rate_limited_number_does_not_hold_back_another,
);

/// Jakarta (own token), Surabaya (the channel's token); two Instagram accounts.
const JAKARTA: &str = "110000000000001";
const SURABAYA: &str = "110000000000002";
const IG_MAIN: &str = "17841400000000001";
const IG_OUTLET: &str = "17841400000000002";
const COMPLAINT: &str = "barang saya datang rusak, layarnya pecah";

fn numbers(c: &mut Config) {
    c.survey.enabled = false;
    c.whatsapp.phone_number_id = String::new();
    c.whatsapp.access_token = Some(Secret::new("token-channel"));
    c.whatsapp.numbers = vec![
        WhatsAppNumber {
            phone_number_id: JAKARTA.into(),
            name: "Jakarta".into(),
            access_token: Some(Secret::new("token-jakarta")),
            max_messages_per_second: Some(50.0),
            survey_template: None,
            template_language: None,
            business_account_id: None,
        },
        WhatsAppNumber {
            phone_number_id: SURABAYA.into(),
            name: "Surabaya".into(),
            access_token: None,
            max_messages_per_second: None,
            survey_template: Some("survei_surabaya".into()),
            template_language: Some("id".into()),
            business_account_id: None,
        },
    ];
    c.instagram.account_id = String::new();
    c.instagram.accounts = vec![
        InstagramAccount {
            account_id: IG_MAIN.into(),
            name: "Main".into(),
            access_token: None,
            max_messages_per_second: None,
        },
        InstagramAccount {
            account_id: IG_OUTLET.into(),
            name: "Outlet".into(),
            access_token: Some(Secret::new("token-outlet")),
            max_messages_per_second: None,
        },
    ];
}

/// A WhatsApp customer writes to `number`; returns the message id.
async fn wa_says(h: &Harness, number: &str, who: &str, text: &str) -> String {
    let wamid = payloads::new_wamid();
    let body = payloads::wa_text_to(number, who, &wamid, text, h.clock.now_ms() / 1000);
    let resp = h.post_signed("whatsapp", body.to_string().as_bytes()).await;
    assert_eq!(resp.status(), 200);
    wamid
}

/// The Graph requests sent to `to`: (the number or account in the path,
/// the Authorization header).
fn sent_to(h: &Harness, to: &str) -> Vec<(String, String)> {
    h.mock
        .requests()
        .into_iter()
        .filter(|r| r.body["to"] == json!(to) || r.body["recipient"]["id"] == json!(to))
        .map(|r| (r.id, r.auth.unwrap_or_default()))
        .collect()
}

async fn wait_sent(h: &Harness, to: &str, n: usize) -> Vec<(String, String)> {
    h.until(&format!("{n} sends to {to}"), || async {
        sent_to(h, to).len() >= n
    })
    .await;
    sent_to(h, to)
}

async fn get(h: &Harness, who: &str, path: &str) -> Value {
    let (status, v) = h.api(who, Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {v}");
    v
}

async fn each_customer_is_answered_from_the_number_they_wrote_to(store: StoreKind) {
    let h = Harness::start_with(store, numbers).await;
    let jakarta = ("Bearer token-jakarta".to_string(), JAKARTA);
    let surabaya = ("Bearer token-channel".to_string(), SURABAYA);

    // Two customers, two numbers: each answered from the one they wrote to,
    // with that number's token.
    wa_says(&h, JAKARTA, "6281710000001", "halo").await;
    wa_says(&h, SURABAYA, "6281710000002", "halo").await;
    assert_eq!(
        wait_sent(&h, "6281710000001", 1).await,
        [(jakarta.1.to_string(), jakarta.0.clone())]
    );
    assert_eq!(
        wait_sent(&h, "6281710000002", 1).await,
        [(surabaya.1.to_string(), surabaya.0.clone())]
    );

    // A handoff on Surabaya: the queue filters by number, the agent's reply
    // goes out from Surabaya.
    wa_says(&h, SURABAYA, "6281710000002", COMPLAINT).await;
    h.drained().await;
    let case = h.current_case("6281710000002").await.unwrap();
    let waiting = |v: &Value| -> Vec<String> {
        v["queues"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|q| q.as_array().unwrap().iter())
            .map(|c| c["conversation_id"].as_str().unwrap().to_string())
            .collect()
    };
    let on_surabaya = get(&h, "sari", &format!("/api/v1/queue?number={SURABAYA}")).await;
    assert_eq!(waiting(&on_surabaya), std::slice::from_ref(&case));
    let item = on_surabaya["queues"]["complaints"][0].clone();
    assert_eq!(
        (item["number"].clone(), item["number_name"].clone()),
        (json!(SURABAYA), json!("Surabaya"))
    );
    assert!(waiting(&get(&h, "sari", &format!("/api/v1/queue?number={JAKARTA}")).await).is_empty());
    let listed = get(
        &h,
        "sari",
        &format!("/api/v1/conversations?number={SURABAYA}"),
    )
    .await;
    assert!(
        listed["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["number"] == json!(SURABAYA)),
        "{listed}"
    );
    let (status, v) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!((status, v["id"].clone()), (200, json!(case)), "{v}");
    assert_eq!(v["number_name"], json!("Surabaya"));
    let (status, v) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/messages"),
            Some(json!({"text": "Mohon maaf, Kak. Kami ganti barangnya."})),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let sent = wait_sent(&h, "6281710000002", 3).await;
    assert!(
        sent.iter().all(|(number, _)| number == SURABAYA),
        "{sent:?}"
    );
    let (status, v) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // Instagram: the account the customer wrote to answers.
    let mid = format!("mid.{}", payloads::new_wamid());
    let body = payloads::ig_text_to(IG_OUTLET, "7291800000001", &mid, "halo", h.clock.now_ms());
    assert_eq!(
        h.post_signed("instagram", body.to_string().as_bytes())
            .await
            .status(),
        200
    );
    assert_eq!(
        wait_sent(&h, "7291800000001", 1).await,
        [(IG_OUTLET.to_string(), "Bearer token-outlet".to_string())]
    );

    // A number that is not configured never answers from another one: its
    // reply is recorded as failed, with the reason.
    let wamid = wa_says(&h, "119999999999999", "6281710000003", "halo").await;
    h.drained().await;
    let record = h
        .app
        .store()
        .outbound(&format!("re:{wamid}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state.as_str(), "failed", "{record:?}");
    assert!(
        record
            .error_title
            .as_deref()
            .is_some_and(|t| t.contains("not configured")),
        "{record:?}"
    );
    assert!(sent_to(&h, "6281710000003").is_empty());
    // An agent's reply there is refused at once, naming the number.
    wa_says(&h, "119999999999999", "6281710000003", COMPLAINT).await;
    h.drained().await;
    let stray = h.current_case("6281710000003").await.unwrap();
    let (status, v) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!((status, v["id"].clone()), (200, json!(stray)), "{v}");
    let (status, v) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{stray}/messages"),
            Some(json!({"text": "Baik, Kak."})),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], json!("sender_not_configured"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("119999999999999"),
        "{v}"
    );
    assert!(sent_to(&h, "6281710000003").is_empty());

    // Broadcasts choose their number; an unknown one is refused.
    let broadcast = |from: &str| {
        json!({
            "name": "promo", "channel": "whatsapp", "from": from,
            "message": {"template": {"name": "promo", "language": "id"}},
            "audience": {"recipients": [{"to": "6281710000001"}]},
        })
    };
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(broadcast("119999999999999")),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a configured"),
        "{v}"
    );
    // With several numbers a broadcast must name its sender: a guess could
    // message customers from a number they never wrote to.
    let mut unnamed = broadcast(SURABAYA);
    unnamed.as_object_mut().unwrap().remove("from");
    let (status, v) = h
        .api("maya", Method::POST, "/api/v1/broadcasts", Some(unnamed))
        .await;
    assert_eq!(status, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("several senders") && message.contains(JAKARTA),
        "{v}"
    );
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(broadcast(SURABAYA)),
        )
        .await;
    assert_eq!((status, v["from"].clone()), (201, json!(SURABAYA)), "{v}");
    let sent = wait_sent(&h, "6281710000001", 2).await;
    assert_eq!(
        sent[1],
        (SURABAYA.to_string(), surabaya.0.clone()),
        "{sent:?}"
    );
    // An Instagram broadcast goes out from the account it names, with that
    // account's token, in the path of the Send API request.
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(json!({
                "name": "outlet", "channel": "instagram", "from": IG_OUTLET,
                "message": {"text": "Promo outlet minggu ini"},
                "audience": {"recipients": [{"to": "7291800000001"}]},
            })),
        )
        .await;
    assert_eq!((status, v["from"].clone()), (201, json!(IG_OUTLET)), "{v}");
    let sent = wait_sent(&h, "7291800000001", 2).await;
    assert_eq!(
        sent[1],
        (IG_OUTLET.to_string(), "Bearer token-outlet".to_string()),
        "{sent:?}"
    );

    // Reports per number.
    let summary = get(
        &h,
        "sari",
        &format!("/api/v1/reports/summary?number={SURABAYA}"),
    )
    .await;
    assert_eq!(summary["total"]["cases"], json!(1), "{summary}");
    let summary = get(
        &h,
        "sari",
        &format!("/api/v1/reports/summary?number={JAKARTA}"),
    )
    .await;
    assert_eq!(summary["total"]["cases"], json!(0), "{summary}");
    let grouped = get(&h, "sari", "/api/v1/reports/summary?group_by=number").await;
    // Resolved cases by the number they were on; every number a case was
    // opened on has a group (its resolution rate), resolved or not.
    let groups = grouped["groups"].as_array().unwrap();
    let resolved: Vec<&str> = groups
        .iter()
        .filter(|g| g["cases"].as_u64() > Some(0))
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(resolved, [SURABAYA], "{grouped}");
    assert!(
        groups.iter().all(|g| g["opened"].as_u64() >= Some(1)),
        "{grouped}"
    );
    let jakarta = groups.iter().find(|g| g["group"] == JAKARTA).unwrap();
    assert_eq!(
        (
            jakarta["cases"].clone(),
            jakarta["resolution_rate_pct"].clone()
        ),
        (json!(0), json!(0.0))
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// The single-number keys keep working unchanged (what most shops have): the
/// customer writing to the one configured number is answered from it, and
/// cases record that number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_number_keys_still_work() {
    let h = Harness::start(StoreKind::Embedded).await;
    h.customer_says("6281710000009", "Rina", "halo").await;
    let sent = wait_sent(&h, "6281710000009", 1).await;
    assert_eq!(sent[0].0, common::harness::PHONE_NUMBER_ID);
    let case = h.current_case("6281710000009").await.unwrap();
    let view = get(&h, "sari", &format!("/api/v1/conversations/{case}")).await;
    assert_eq!(view["number"], json!(common::harness::PHONE_NUMBER_ID));
    // A broadcast needs no "from" with one number, and names it.
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(json!({
                "name": "promo", "channel": "whatsapp",
                "message": {"template": {"name": "promo", "language": "id"}},
                "audience": {"recipients": [{"to": "6281710000009"}]},
            })),
        )
        .await;
    assert_eq!(
        (status, v["from"].clone()),
        (201, json!(common::harness::PHONE_NUMBER_ID)),
        "{v}"
    );
    let sent = wait_sent(&h, "6281710000009", 2).await;
    assert_eq!(sent[1].0, common::harness::PHONE_NUMBER_ID);
    h.stop().await;
}

/// A survey outside the 24-hour window goes out from the case's number with
/// that number's approved template (templates belong to a WhatsApp Business
/// Account, and numbers may sit in different ones).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survey_uses_the_template_of_the_cases_number() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        numbers(c);
        c.survey.enabled = true;
        c.survey.delay = balas::config::HumanDuration::secs(1);
    })
    .await;
    let who = "6281710000004";
    wa_says(&h, SURABAYA, who, COMPLAINT).await;
    h.drained().await;
    let case = h.current_case(who).await.unwrap();
    let (status, v) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!((status, v["id"].clone()), (200, json!(case)), "{v}");
    let (status, _) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // The customer goes quiet for more than a day before the survey fires.
    h.clock.advance(std::time::Duration::from_secs(25 * 3600));
    h.until("the survey template is sent", || async {
        h.mock
            .requests()
            .iter()
            .any(|r| r.body["to"] == json!(who) && r.body["type"] == "template")
    })
    .await;
    let template: Vec<_> = h
        .mock
        .requests()
        .into_iter()
        .filter(|r| r.body["to"] == json!(who) && r.body["type"] == "template")
        .collect();
    assert_eq!(template.len(), 1);
    assert_eq!(template[0].id, SURABAYA);
    assert_eq!(
        template[0].body["template"]["name"],
        json!("survei_surabaya")
    );
    h.stop().await;
}

/// A segment broadcast from one number reaches only that number's contacts:
/// customers who wrote to it (within the segment's days, counted for that
/// number), not everyone who wrote to the deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_broadcast_reaches_only_the_contacts_of_its_number() {
    let h = Harness::start_with(StoreKind::Embedded, numbers).await;
    let (jakarta_only, surabaya_only, both) = ("6281720000001", "6281720000002", "6281720000003");
    wa_says(&h, JAKARTA, jakarta_only, "halo").await;
    wa_says(&h, SURABAYA, surabaya_only, "halo").await;
    wa_says(&h, JAKARTA, both, "halo").await;
    h.drained().await;
    // `both` wrote to Surabaya too, later: still a contact of Jakarta.
    h.clock.advance(std::time::Duration::from_secs(3 * 86_400));
    wa_says(&h, SURABAYA, both, "halo lagi").await;
    h.drained().await;

    let templates_to = |number: &str| -> Vec<String> {
        let mut to: Vec<String> = h
            .mock
            .requests()
            .into_iter()
            .filter(|r| r.id == number && r.body["type"] == "template")
            .filter_map(|r| r.body["to"].as_str().map(str::to_string))
            .collect();
        to.sort();
        to
    };
    let send = |name: &str, from: &str, segment: Value| {
        json!({
            "name": name, "channel": "whatsapp", "from": from,
            "message": {"template": {"name": name, "language": "id"}},
            "audience": {"segment": segment}, "rate_per_sec": 10,
        })
    };
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(send("promo_jakarta", JAKARTA, json!({}))),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    h.until("the Jakarta broadcast is sent", || async {
        templates_to(JAKARTA).len() >= 2
    })
    .await;
    h.idle().await;
    assert_eq!(templates_to(JAKARTA), [jakarta_only, both]);
    assert!(templates_to(SURABAYA).is_empty());

    // Recent activity is counted per number: within 2 days, `both` wrote
    // to Surabaya only.
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(send(
                "promo_surabaya",
                SURABAYA,
                json!({"last_inbound_within_days": 2}),
            )),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    h.until("the Surabaya broadcast is sent", || async {
        !templates_to(SURABAYA).is_empty()
    })
    .await;
    h.idle().await;
    assert_eq!(templates_to(SURABAYA), [both]);
    assert_eq!(templates_to(JAKARTA).len(), 2, "nothing more from Jakarta");
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// Customers' files are fetched with the token of the number that received
/// them, and agents' files are uploaded for the number the case is on, with
/// its token (a number's media ids are its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_go_through_the_token_of_their_number() {
    const PNG: &[u8] = include_bytes!("data/media/barang-rusak.png");
    const PDF: &[u8] = include_bytes!("data/media/nota-servis.pdf");
    let h = Harness::start_with(StoreKind::Embedded, numbers).await;
    let mut fetched = Vec::new();
    for (number, who) in [(JAKARTA, "6281730000001"), (SURABAYA, "6281730000002")] {
        let media = h.mock.add_whatsapp_media(PNG, "image/png");
        let object =
            json!({ "id": media.id, "mime_type": "image/png", "sha256": media.sha256_base64 });
        let body = payloads::wa_media_to(
            number,
            who,
            &payloads::new_wamid(),
            "image",
            object,
            h.clock.now_ms() / 1000,
        );
        let resp = h.post_signed("whatsapp", body.to_string().as_bytes()).await;
        assert_eq!(resp.status(), 200);
        fetched.push(media.id);
    }
    h.idle().await;
    let auth_of = |id: &str| -> Vec<(String, String)> {
        h.mock
            .media_requests()
            .into_iter()
            .filter(|r| r.id == id)
            .map(|r| (r.path, r.auth.unwrap_or_default()))
            .collect()
    };
    for (id, token) in fetched
        .iter()
        .zip(["Bearer token-jakarta", "Bearer token-channel"])
    {
        let seen = auth_of(id);
        assert_eq!(
            seen,
            [
                (format!("/{id}"), token.to_string()),
                (format!("/__media/{id}"), token.to_string()),
            ],
            "the media lookup and the download of {id}"
        );
    }

    // An agent's file in a Surabaya case is uploaded for Surabaya.
    let who = "6281730000003";
    wa_says(&h, SURABAYA, who, COMPLAINT).await;
    h.drained().await;
    let case = h.current_case(who).await.unwrap();
    let (status, v) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!((status, v["id"].clone()), (200, json!(case)), "{v}");
    let part = reqwest::multipart::Part::bytes(PDF.to_vec())
        .file_name("nota.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let resp = h
        .http
        .post(format!(
            "{}/api/v1/conversations/{case}/attachments",
            h.base
        ))
        .bearer_auth(common::harness::token("siti"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    h.until("the document is sent", || async {
        h.mock
            .requests()
            .iter()
            .any(|r| r.body["type"] == "document")
    })
    .await;
    let uploads = h.mock.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].phone_number_id, SURABAYA);
    let upload = h
        .mock
        .media_requests()
        .into_iter()
        .find(|r| r.path.ends_with("/media"))
        .unwrap();
    assert_eq!(upload.auth.as_deref(), Some("Bearer token-channel"));
    let sent = h
        .mock
        .requests()
        .into_iter()
        .find(|r| r.body["type"] == "document")
        .unwrap();
    assert_eq!(
        (sent.id.as_str(), sent.body["document"]["id"].clone()),
        (SURABAYA, json!(uploads[0].id))
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// Meta's answer to a send over the number's throughput (130429; FACTS:
/// "backoff + pace per number").
fn throughput_limit() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/platform/outbound/wa_error_130429.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Meta's answer to too many messages to one customer (131056, the
/// (business, consumer) pair limit; FACTS: "only for that recipient").
fn pair_limit() -> Value {
    json!({"error": {
        "message": "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        "type": "OAuthException",
        "code": 131056,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time."
        },
        "fbtrace_id": "MOCKTRACE"
    }})
}

/// A rate-limit answer that asks for a minute's pause (HTTP 429 with
/// `Retry-After`, as some BSPs answer): the test clock runs at real speed, so
/// a pause of the default backoff (under a second) could pass by itself
/// while the test looks.
fn limited(body: Value) -> CannedResponse {
    CannedResponse {
        status: 429,
        body,
        retry_after: Some("60".into()),
    }
}

/// Each number has its own pacing: Jakarta over its throughput (130429)
/// holds back Jakarta's replies until its cool-down has passed, while
/// Surabaya's customers are answered at once; a pair limit (131056) on one
/// Surabaya customer holds back only that customer.
async fn a_rate_limited_number_does_not_hold_back_another(store: StoreKind) {
    let h = Harness::start_with(store, numbers).await;
    let (jakarta_1, jakarta_2) = ("6281710000101", "6281710000102");
    let (surabaya_1, surabaya_2) = ("6281710000201", "6281710000202");
    let from = |who: &str, number: &str, token: &str| {
        let sent = sent_to(&h, who);
        assert!(
            sent.iter()
                .all(|(id, auth)| id == number && auth == &format!("Bearer {token}")),
            "{who}: {sent:?}"
        );
        sent.len()
    };

    // Jakarta's first reply is refused: the number is over its throughput.
    h.mock.push_response(limited(throughput_limit()));
    wa_says(&h, JAKARTA, jakarta_1, "halo").await;
    wait_sent(&h, jakarta_1, 1).await;
    h.idle().await;
    assert_eq!(
        from(jakarta_1, JAKARTA, "token-jakarta"),
        1,
        "retried only after the cool-down"
    );

    // Surabaya's customers are answered while Jakarta cools down …
    wa_says(&h, SURABAYA, surabaya_1, "halo").await;
    wa_says(&h, SURABAYA, surabaya_2, "halo").await;
    wait_sent(&h, surabaya_1, 1).await;
    wait_sent(&h, surabaya_2, 1).await;
    // … and Jakarta's other customer waits for the cool-down too.
    wa_says(&h, JAKARTA, jakarta_2, "halo").await;
    h.idle().await;
    assert_eq!(
        from(jakarta_2, JAKARTA, "token-jakarta"),
        0,
        "Jakarta is cooling down"
    );
    assert_eq!(from(jakarta_1, JAKARTA, "token-jakarta"), 1);

    // Once it has passed, both Jakarta replies go out from Jakarta.
    h.clock.advance(Duration::from_secs(61));
    wait_sent(&h, jakarta_1, 2).await;
    wait_sent(&h, jakarta_2, 1).await;
    h.drained().await;
    assert_eq!(
        from(jakarta_1, JAKARTA, "token-jakarta"),
        2,
        "one refused, one sent"
    );
    assert_eq!(from(jakarta_2, JAKARTA, "token-jakarta"), 1);
    assert_eq!(from(surabaya_1, SURABAYA, "token-channel"), 1);
    assert_eq!(from(surabaya_2, SURABAYA, "token-channel"), 1);

    // A pair limit holds back only its customer, not the number.
    h.mock.push_response(limited(pair_limit()));
    wa_says(&h, SURABAYA, surabaya_1, "halo lagi").await;
    wait_sent(&h, surabaya_1, 2).await;
    h.idle().await;
    wa_says(&h, SURABAYA, surabaya_2, "halo lagi").await;
    wait_sent(&h, surabaya_2, 2).await;
    h.idle().await;
    assert_eq!(
        from(surabaya_1, SURABAYA, "token-channel"),
        2,
        "waits for its retry"
    );
    h.clock.advance(Duration::from_secs(61));
    wait_sent(&h, surabaya_1, 3).await;
    h.drained().await;
    assert_eq!(from(surabaya_1, SURABAYA, "token-channel"), 3);
    assert_eq!(from(surabaya_2, SURABAYA, "token-channel"), 2);
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}
