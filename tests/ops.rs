//! Operations endpoints (issue "Foundation"): liveness, readiness with the
//! store's name (503 when Redis is down), and Prometheus metrics after traffic.

mod common;

use std::time::Duration;

use balas::channels::signature::sign;
use common::graph_mock::GraphMock;
use common::harness::{APP_SECRET, Harness, StoreKind};
use common::payloads;
use common::process::{BalasProcess, ProcStore, free_port, sample, write_config};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_ok() {
    let h = Harness::start(StoreKind::Embedded).await;
    let r = h
        .http
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], json!("ok"));
    h.stop().await;
}

async fn readyz(h: &Harness) -> (u16, Value) {
    let r = h
        .http
        .get(format!("{}/readyz", h.base))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_the_embedded_store() {
    let h = Harness::start(StoreKind::Embedded).await;
    let (status, v) = readyz(&h).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], json!("ready"));
    assert_eq!(v["store"], json!("embedded"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_redis_down_and_up() {
    let store = StoreKind::redis();
    let StoreKind::Redis(redis) = &store else {
        unreachable!()
    };
    let redis = redis.clone();
    let h = Harness::start(store).await;
    let (status, v) = readyz(&h).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["store"], json!("redis"));

    redis.kill();
    let started = std::time::Instant::now();
    let (status, v) = readyz(&h).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], json!("store_unavailable"), "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Liveness does not depend on the store.
    let r = h
        .http
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    redis.start_again();
    h.until("ready again", || async { readyz(&h).await.0 == 200 })
        .await;
    h.stop().await;
}

/// Metrics are checked on the real binary: one process, one recorder, and the
/// first scrape comes after the traffic (as after any restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_traffic_and_show_queues() {
    let dir = tempfile::tempdir().unwrap();
    let mock = GraphMock::start().await;
    let http = reqwest::Client::new();
    let port = free_port();
    let store = ProcStore::Embedded(dir.path().join("data"));
    let config = write_config(dir.path(), "balas.toml", &store, mock.base_url(), port);
    let mut p = BalasProcess::spawn(&config, port);
    p.wait_ready(&http).await;

    let now_s = jiff::Timestamp::now().as_second();
    let url = format!("{}/webhooks/whatsapp", p.base);
    let post = |body: Vec<u8>| {
        http.post(&url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sign(APP_SECRET.as_bytes(), &body))
            .body(body)
            .send()
    };
    // A question the bot answers, the same webhook again, one asking for a
    // person (joins the agent queue), and one with a bad signature.
    let hours = payloads::wa_text(
        "6281200004001",
        "Rina",
        &payloads::new_wamid(),
        "jam operasional toko kapan ya",
        now_s,
    )
    .to_string()
    .into_bytes();
    assert_eq!(post(hours.clone()).await.unwrap().status(), 200);
    assert_eq!(post(hours).await.unwrap().status(), 200);
    let human = payloads::wa_text(
        "6281200004002",
        "Budi",
        &payloads::new_wamid(),
        "saya mau bicara dengan CS",
        now_s,
    )
    .to_string()
    .into_bytes();
    assert_eq!(post(human).await.unwrap().status(), 200);
    let r = http
        .post(&url)
        .header("x-hub-signature-256", sign(b"wrong", b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(mock.wait_for_requests(2, Duration::from_secs(15)).await);

    // The first scrape after the traffic already counts it; the outbox counts
    // a send once the Graph API answered, so wait for that.
    let mut page = p.metrics(&http).await;
    assert!(
        sample(&page, "balas_webhook_events_total", &[]).is_some(),
        "first scrape: {page}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while sample(&page, "balas_outbox_sends_total", &["result=\"sent\""]).unwrap_or(0.0) < 2.0
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
        page = p.metrics(&http).await;
    }
    let has = |metric: &str, labels: &[&str]| sample(&page, metric, labels);
    assert!(
        has(
            "balas_http_requests_total",
            &[
                "route=\"/webhooks/whatsapp\"",
                "method=\"POST\"",
                "status=\"200\""
            ]
        )
        .is_some_and(|v| v >= 3.0),
        "{page}"
    );
    assert!(
        has("balas_http_requests_total", &["status=\"401\""]).is_some_and(|v| v >= 1.0),
        "{page}"
    );
    assert_eq!(
        has(
            "balas_webhook_events_total",
            &[
                "channel=\"whatsapp\"",
                "type=\"message\"",
                "duplicate=\"false\""
            ]
        ),
        Some(2.0),
        "{page}"
    );
    assert_eq!(
        has("balas_webhook_events_total", &["duplicate=\"true\""]),
        Some(1.0),
        "{page}"
    );
    assert!(
        has("balas_webhook_rejected_total", &["reason=\"signature\""]).is_some_and(|v| v >= 1.0),
        "{page}"
    );
    assert!(
        has(
            "balas_outbox_sends_total",
            &["channel=\"whatsapp\"", "result=\"sent\""]
        )
        .is_some_and(|v| v >= 2.0),
        "{page}"
    );
    for q in ["inbound", "outbox", "timers", "broadcast"] {
        let label = format!("queue=\"{q}\"");
        assert!(
            has("balas_jobs_pending", &[&label]).is_some(),
            "pending gauge for {q}: {page}"
        );
        assert!(
            has("balas_jobs_leased", &[&label]).is_some(),
            "leased gauge for {q}: {page}"
        );
    }
    assert_eq!(
        has("balas_agent_queue_length", &["queue=\"general\""]),
        Some(1.0),
        "{page}"
    );
    p.sigterm();
    assert_eq!(p.wait_exit(Duration::from_secs(30)).await.code(), Some(0));
}
