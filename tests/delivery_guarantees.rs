//! Delivery promises under slowness and broken connections, without any crash:
//! - two processes on one Redis (or Redis Cluster) and a Graph API slower than the job lease:
//!   heartbeats keep each send with the process that started it, so nobody
//!   gets a reply, a survey question or a broadcast twice;
//! - a Graph API that reads the request and drops the connection: the outcome
//!   is unknown, so broadcast recipients are recorded as "outcome unknown" and
//!   never messaged a second time.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use balas::config::HumanDuration;
use common::harness::{Harness, StoreKind};
use common::reset_server::ResetServer;
use reqwest::Method;
use serde_json::{Value, json};

const QUESTION: &str = "jam operasional toko kapan ya";
const COMPLAINT: &str = "barang saya datang rusak, layarnya retak";

fn number(i: usize) -> String {
    format!("62816{i:08}")
}

/// Messages the mock received, counted per recipient and kind.
fn per_recipient(h: &Harness) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for r in h.mock.requests() {
        let mut kind = r.body["type"].as_str().unwrap_or("?").to_string();
        if let Some(sub) = r.body["interactive"]["type"].as_str() {
            kind = format!("{kind}/{sub}");
        }
        let to = r.body["to"].as_str().unwrap_or("?").to_string();
        *out.entry((to, kind)).or_default() += 1;
    }
    out
}

fn broadcast_body(name: &str, to: &[String]) -> Value {
    json!({
        "name": name,
        "channel": "whatsapp",
        "message": {"template": {"name": name, "language": "id", "body_parameters": ["{{name}}"]}},
        "audience": {"recipients": to.iter().map(|t| json!({"to": t, "variables": {"name": "Kak"}})).collect::<Vec<_>>()},
        "rate_per_sec": 50.0,
    })
}

async fn broadcast_view(h: &Harness, id: &str) -> Value {
    let (status, v) = h
        .api(
            "maya",
            Method::GET,
            &format!("/api/v1/broadcasts/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

on_shared_stores!(a_graph_api_slower_than_the_lease_never_gets_a_message_twice);

async fn a_graph_api_slower_than_the_lease_never_gets_a_message_twice(store: StoreKind) {
    slower_than_the_lease(store, None).await;
}

/// The same with the busy queues split into parts on one Redis server (a
/// Cluster splits them by default): claims, heartbeats and acks find each
/// job in its part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_queues_never_send_a_message_twice() {
    slower_than_the_lease(StoreKind::redis(), Some(4)).await;
}

async fn slower_than_the_lease(store: StoreKind, parts: Option<u32>) {
    let slow = move |c: &mut balas::config::Config| {
        c.store.queue_parts = parts;
        c.workers.lease = HumanDuration::secs(1);
        c.survey.enabled = true;
        c.survey.delay = HumanDuration::secs(60);
        c.broadcast.quiet_hours = String::new();
    };
    let a = Harness::start_with(store, slow).await;
    let b = a.second_process().await;
    if let Some(parts) = parts {
        assert_eq!(a.app.store().queue_parts("outbox"), parts);
        assert_eq!(b.app.store().queue_parts("inbound"), parts);
    }
    // Every answer takes longer than a lease: without heartbeats the other
    // process would take the send over and send it again.
    a.mock.set_delay(Some(Duration::from_millis(1_600)));

    // A survey: an agent resolves a complaint, the survey comes after a minute.
    let who = number(50);
    a.customer_says(&who, "Rina", COMPLAINT).await;
    a.wait_texts_to(&who, 1).await;
    let case = a.current_case(&who).await.expect("a case");
    a.until("the complaint waits in the queue", || async {
        let conv = a.app.store().conversation(&case).await.unwrap().unwrap();
        conv.state == balas::conversation::State::Queued
    })
    .await;
    let (status, v) = b
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = b
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // The clock jumps only while nothing is in flight: leases are judged on
    // the same clock, and a jump would expire them all at once.
    a.idle().await;
    a.clock.advance(Duration::from_secs(61));
    // Replies: customers ask something the bot answers.
    let askers: Vec<String> = (0..6).map(number).collect();
    for (i, who) in askers.iter().enumerate() {
        let h = if i % 2 == 0 { &a } else { &b };
        h.customer_says(who, "Pelanggan", QUESTION).await;
    }
    // A broadcast.
    let audience: Vec<String> = (100..110).map(number).collect();
    let (status, v) = a
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(broadcast_body("promo_slow", &audience)),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    a.until("every message answered by the slow Graph API", || async {
        let sent = per_recipient(&a);
        askers
            .iter()
            .all(|w| sent.contains_key(&(w.clone(), "text".into())))
            && sent.contains_key(&(who.clone(), "interactive/list".into()))
            && audience
                .iter()
                .all(|w| sent.contains_key(&(w.clone(), "template".into())))
    })
    .await;
    a.idle().await;
    b.idle().await;
    let dupes: Vec<_> = per_recipient(&a)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    if !dupes.is_empty() {
        for r in a.mock.requests() {
            eprintln!("{:?} {}", r.at, r.body);
        }
    }
    assert!(dupes.is_empty(), "sent twice: {dupes:?}");
    let v = broadcast_view(&a, &id).await;
    assert_eq!(v["counts"]["sent"], json!(10), "{v}");
    assert!(a.mock.violations().is_empty(), "{:?}", a.mock.violations());
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_after_the_request_never_sends_a_broadcast_twice() {
    let reset = ResetServer::start().await;
    let base = reset.base_url().to_string();
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        c.whatsapp.api_base = base;
        c.broadcast.quiet_hours = String::new();
    })
    .await;
    let audience: Vec<String> = (0..8).map(number).collect();
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(broadcast_body("promo_reset", &audience)),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    h.until("every recipient settled", || async {
        let v = broadcast_view(&h, &id).await;
        v["status"] == json!("completed") && v["counts"]["pending"] == json!(0)
    })
    .await;
    h.idle().await;
    let v = broadcast_view(&h, &id).await;
    assert_eq!(v["counts"]["failed"], json!(8), "{v}");
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for body in reset.bodies() {
        *per.entry(body["to"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    assert_eq!(per.len(), 8, "every recipient was tried: {per:?}");
    assert!(per.values().all(|n| *n == 1), "nobody twice: {per:?}");
    let record = h
        .app
        .store()
        .outbound(&balas::broadcast::record_id(&id, &audience[0]))
        .await
        .unwrap()
        .unwrap();
    assert!(
        record
            .error_title
            .as_deref()
            .is_some_and(|t| t.starts_with("outcome unknown")),
        "{record:?}"
    );
    h.stop().await;
}
