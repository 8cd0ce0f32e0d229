//! How many store operations one inbound text costs, from the webhook to the
//! reply sent to the status update, on both stores.
//!
//! ```text
//! cargo bench --bench store_ops
//! ```
//!
//! A whole Balas (the test configuration: repository intent rules, Graph API
//! mock, clock inside business hours) over a [`CountingBackend`], with the HTTP
//! routes served but no background workers: the bench steps the work itself
//! (webhook POST, one inbound batch, one outbox batch, status webhook POST, one
//! inbound batch), so idle polling is not counted and every call is attributed
//! to the step that made it. Measured twice per store: a customer writing for
//! the first time, then the same customer's second message (an open case).
//! Prints one Markdown table per store; `*` marks calls that change state
//! (on the embedded store each is a write transaction, i.e. a share of an
//! fsync).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use balas::app::App;
use balas::attachments::Library;
use balas::channels::Channel;
use balas::clock::{Clock, ShiftedClock};
use balas::engine::worker::InboundHandler;
use balas::jobs::{Settings, Worker};
use balas::media::MediaStore;
use balas::store::embedded::EmbeddedBackend;
use balas::store::redis::RedisBackend;
use balas::store::{Backend, Speaker, Store};
use common::counting::{CallCounts, CountingBackend, is_write};
use common::graph_mock::GraphMock;
use common::harness::{APP_SECRET, MONDAY_10_WIB_MS, StoreKind, test_config};
use common::payloads;

const STEPS: [&str; 5] = [
    "webhook",
    "engine",
    "outbox send",
    "status webhook",
    "status handling",
];
const TEXT: &str = "halo kak, pesanan saya belum sampai";

/// One step's calls by (name, key kind) and its rounds (see
/// `CountingBackend::take_rounds`).
struct Counts {
    calls: CallCounts,
    rounds: u64,
}

/// The calls and rounds since the last take; with `STORE_OPS_TRACE` set, also
/// prints every call of the step in order, with its round.
fn take(counting: &CountingBackend, store: &str, label: &str, step: usize) -> Counts {
    let (rounds, trace) = counting.take_rounds();
    if !trace.is_empty() {
        println!("\n{store}, {label}, {}:\n{}", STEPS[step], trace.join("\n"));
    }
    Counts {
        calls: counting.take(),
        rounds,
    }
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            for kind in [StoreKind::Embedded, StoreKind::redis()] {
                measure(kind).await;
            }
        });
}

async fn measure(kind: StoreKind) {
    let mock = GraphMock::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(&kind, dir.path(), mock.base_url());
    let inner: Arc<dyn Backend> = match &kind {
        StoreKind::Embedded => {
            Arc::new(EmbeddedBackend::open(&config.store.data_dir).expect("embedded store"))
        }
        StoreKind::Redis(r) => Arc::new(
            RedisBackend::connect(&r.url(), &config.store.key_prefix)
                .await
                .expect("redis"),
        ),
        StoreKind::Cluster(c, prefix) => Arc::new(
            RedisBackend::connect_cluster(&c.urls(), prefix)
                .await
                .expect("redis cluster"),
        ),
    };
    let clock = Arc::new(ShiftedClock::at_ms(MONDAY_10_WIB_MS));
    let counting = Arc::new(CountingBackend::new(inner.clone()));
    let media = MediaStore::open(&config.media, dir.path())
        .await
        .expect("media store");
    let app = App::with_backend(
        config,
        counting.clone(),
        media,
        Library::default(),
        clock.clone(),
    )
    .expect("app builds");
    // Looks things up without being counted.
    let quiet = Store::new(inner.clone(), clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = balas::server::router(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();

    // The benchmark steps the queues itself: one claimed batch per step.
    let settings = || Settings::new(8, Duration::from_secs(10), Duration::from_millis(50));
    let inbound = Worker::new(
        Arc::new(InboundHandler::new(app.engine().clone())),
        app.store().clone(),
        settings(),
    );
    let outbox = Worker::new(
        Arc::new(app.outbox().clone()),
        app.store().clone(),
        settings(),
    );
    let customer = "6281299990001";
    let mut runs: Vec<(&str, Vec<Counts>)> = Vec::new();
    for (label, replies_before) in [("first message", 0), ("second message", 1)] {
        counting.take();
        counting.take_rounds();
        let mut steps = Vec::new();
        let name = inner.name();
        let step_counts = |step: usize| take(&counting, name, label, step);

        let body = payloads::wa_text(
            customer,
            "Rina",
            &payloads::new_wamid(),
            TEXT,
            clock.now_ms() / 1000,
        );
        post(&http, &base, &body).await;
        steps.push(step_counts(0));

        let n = inbound.run_once().await.expect("engine");
        assert_eq!(n, 1, "one inbound event handled");
        steps.push(step_counts(1));

        let n = outbox.run_once().await.expect("outbox");
        assert!(n >= 1, "the reply was sent");
        steps.push(step_counts(2));
        assert_eq!(
            mock.requests().len(),
            replies_before + 1,
            "one reply at the mock"
        );

        let wamid = last_platform_id(&quiet, customer).await;
        let status =
            payloads::wa_status(&wamid, customer, "delivered", clock.now_ms() / 1000, None);
        post(&http, &base, &status).await;
        steps.push(step_counts(3));

        let n = inbound.run_once().await.expect("status");
        assert_eq!(n, 1, "one status handled");
        steps.push(step_counts(4));
        runs.push((label, steps));
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    print_table(inner.name(), &runs);
}

async fn post(http: &reqwest::Client, base: &str, body: &serde_json::Value) {
    let bytes = body.to_string();
    let resp = http
        .post(format!("{base}/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            balas::channels::signature::sign(APP_SECRET.as_bytes(), bytes.as_bytes()),
        )
        .body(bytes)
        .send()
        .await
        .expect("webhook");
    assert_eq!(resp.status(), 200, "webhook accepted");
}

/// The Graph message id of the newest message Balas sent to `customer`.
async fn last_platform_id(store: &Store, customer: &str) -> String {
    let contact = store
        .contact(Channel::WhatsApp, customer)
        .await
        .expect("store")
        .expect("contact");
    let case = contact.current_case.expect("a case");
    let transcript = store.transcript(&case).await.expect("transcript");
    let id = transcript
        .iter()
        .rev()
        .filter(|e| !matches!(e.speaker, Speaker::Customer))
        .find_map(|e| e.message_id.clone())
        .expect("a reply in the transcript");
    store
        .outbound(&id)
        .await
        .expect("store")
        .and_then(|r| r.platform_id)
        .expect("the reply was sent")
}

fn print_table(store: &str, runs: &[(&str, Vec<Counts>)]) {
    // The embedded store keeps locks and limiters in memory: no commit.
    let in_memory = |call: &str| {
        store.starts_with("embedded") && matches!(call, "lock" | "unlock" | "rate_take")
    };
    let is_write = |call: &str| is_write(call) && !in_memory(call);
    for (label, steps) in runs {
        let mut rows: Vec<&(&'static str, String)> =
            steps.iter().flat_map(|s| s.calls.keys()).collect();
        rows.sort_unstable();
        rows.dedup();
        println!("\n### {store} store, {label}\n");
        println!("| call | key | {} | total |", STEPS.join(" | "));
        println!("|---|---|{}---|", "---|".repeat(STEPS.len()));
        for row in rows {
            let per: Vec<u64> = steps
                .iter()
                .map(|s| s.calls.get(row).copied().unwrap_or(0))
                .collect();
            let mark = if is_write(row.0) { " *" } else { "" };
            println!(
                "| `{}`{mark} | `{}` | {} | {} |",
                row.0,
                row.1,
                per.iter()
                    .map(|n| if *n == 0 {
                        String::new()
                    } else {
                        n.to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(" | "),
                per.iter().sum::<u64>()
            );
        }
        let sum = |f: &dyn Fn(&str) -> bool| -> Vec<u64> {
            steps
                .iter()
                .map(|s| {
                    s.calls
                        .iter()
                        .filter(|((c, _), _)| f(c))
                        .map(|(_, n)| n)
                        .sum()
                })
                .collect()
        };
        for (name, per) in [
            ("**all calls**", sum(&|_| true)),
            ("of which change state *", sum(&is_write)),
            (
                "rounds (calls one after another)",
                steps.iter().map(|s| s.rounds).collect(),
            ),
        ] {
            println!(
                "| {name} | | {} | **{}** |",
                per.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" | "),
                per.iter().sum::<u64>()
            );
        }
    }
}
