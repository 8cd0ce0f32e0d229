//! Several WhatsApp numbers and Instagram accounts in one deployment (issue
//! 17): a customer is answered from the number they wrote to, with that
//! number's token; agents' replies, surveys and broadcasts go out from the
//! case's (or the named) number; queues, conversation lists and reports
//! filter by number; a number that is not configured fails its replies
//! visibly instead of answering from another number.

#[macro_use]
mod common;

use balas::clock::Clock;
use balas::config::{Config, InstagramAccount, Secret, WhatsAppNumber};
use common::harness::{Harness, StoreKind};
use common::payloads;
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(each_customer_is_answered_from_the_number_they_wrote_to);

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
