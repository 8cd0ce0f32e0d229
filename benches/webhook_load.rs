//! End-to-end load test: signed WhatsApp text webhooks against a whole Balas
//! (HTTP server + all workers) on the embedded store or a throwaway
//! redis-server, with the replies sent to a Graph API mock in the same process.
//!
//! ```text
//! cargo bench --bench webhook_load                                   # embedded, closed loop
//! LOAD_RATE=500 LOAD_SECS=20 cargo bench --bench webhook_load        # embedded, 500 msg/s for 20 s
//! LOAD_STORE=redis LOAD_RATE=500 cargo bench --bench webhook_load    # the same on Redis
//! ```
//!
//! Environment knobs (defaults in brackets):
//! - `LOAD_STORE` [embedded]: `embedded` (redb in a temp dir, the default
//!   deployment) or `redis`.
//! - `LOAD_RATE` [0]: 0 = closed loop (every connection sends its next request
//!   as soon as the previous one is answered: maximum ack throughput); N = open
//!   loop at N requests/s (request i is due at start + i/N and its ack latency
//!   is measured from when it was due, so a server falling behind is not hidden).
//! - `LOAD_SECS` [20]: open loop: how long the load runs (N × secs requests).
//! - `LOAD_REQUESTS` [50000]: closed loop: how many requests.
//! - `LOAD_MAX_SECS` [60]: closed loop: stop sending after this long anyway.
//! - `LOAD_CONNECTIONS` [64]: keep-alive connections.
//! - `LOAD_CUSTOMERS` [0]: 0 = every message from its own sender (what the
//!   reply latency needs); N = senders cycle through N numbers (replies are then
//!   only counted).
//! - `LOAD_DRAIN_SECS` [30]: after the load, how long to wait for the replies
//!   still owed.
//! - `LOAD_SEND_RATE` [1000]: `whatsapp.max_messages_per_second` (Meta's ceiling
//!   per number is 1,000; the shipped default is 80).
//! - `LOAD_INBOUND_CONCURRENCY` [workers.inbound_concurrency default].
//! - `LOAD_FSYNC` [always]: Redis `appendfsync` (`always` as the tests run it,
//!   or `everysec` as docker-compose.yml does).
//!
//! Every request has a distinct message id, so every one is a new event stored
//! as a job. Bodies and signatures are prepared before the clock starts. The
//! bot answers each message (the shipped intent rules) and the outbox sends the
//! answer to the mock, which notes when the first answer to each sender
//! arrived. Reported: ack throughput and latency, and ack → reply-at-the-mock
//! latency (from when the webhook's 200 was received to when the reply reached
//! the mock).

#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use balas::app::App;
use balas::channels::signature::sign;
use balas::clock::SystemClock;
use balas::config::{HumanDuration, Secret};
use balas::media::MediaStore;
use balas::store::Backend;
use balas::store::embedded::EmbeddedBackend;
use serde_json::{Value, json};

const APP_SECRET: &str = "bench-app-secret";
const PHONE_NUMBER_ID: &str = "112233445566778";
const SENDER_PREFIX: &str = "62812";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sender(i: usize) -> String {
    format!("{SENDER_PREFIX}{i:08}")
}

fn body(i: usize, from: &str, ts: i64) -> Vec<u8> {
    format!(
        concat!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"104857600012345","changes":[{{"value":"#,
            r#"{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"6281190001234","phone_number_id":"{pn}"}},"#,
            r#""contacts":[{{"profile":{{"name":"Pelanggan {i}"}},"wa_id":"{wa}"}}],"#,
            r#""messages":[{{"from":"{wa}","id":"wamid.LOAD{i:010}","timestamp":"{ts}","type":"text","#,
            r#""text":{{"body":"halo kak, pesanan saya belum sampai"}}}}]}},"field":"messages"}}]}}]}}"#
        ),
        pn = PHONE_NUMBER_ID,
        i = i,
        wa = from,
        ts = ts,
    )
    .into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times as nanoseconds since `start` plus one (0 = not yet), one slot per sender.
struct Times {
    start: Instant,
    slots: Vec<AtomicU64>,
}

impl Times {
    fn new(start: Instant, n: usize) -> Times {
        Times {
            start,
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Notes now for `i`, unless a time is there already; true when it was first.
    fn note_first(&self, i: usize) -> bool {
        let now = self.start.elapsed().as_nanos() as u64 + 1;
        self.slots.get(i).is_some_and(|s| {
            s.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
    }

    fn get(&self, i: usize) -> Option<Duration> {
        match self.slots.get(i)?.load(Ordering::Relaxed) {
            0 => None,
            t => Some(Duration::from_nanos(t - 1)),
        }
    }
}

/// What the Graph mock saw.
struct Mock {
    /// First reply to each sender.
    replies: Times,
    /// Every request to `/messages`.
    requests: AtomicU64,
    /// First replies (one per sender).
    answered: AtomicU64,
}

async fn messages(State(mock): State<Arc<Mock>>, body: Bytes) -> impl IntoResponse {
    let n = mock.requests.fetch_add(1, Ordering::Relaxed);
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let to = v["to"].as_str().unwrap_or_default();
    if let Some(i) = to
        .strip_prefix(SENDER_PREFIX)
        .and_then(|d| d.parse::<usize>().ok())
        && mock.replies.note_first(i)
    {
        mock.answered.fetch_add(1, Ordering::Relaxed);
    }
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": format!("wamid.BENCH{n:012}")}]
    }))
}

async fn start_mock(mock: Arc<Mock>) -> String {
    let app = Router::new()
        .route("/{id}/messages", post(messages))
        .route("/{version}/{id}/messages", post(messages))
        .with_state(mock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The store under test and what must live as long as it (the temp dir, the
/// server process).
enum Store {
    Embedded(Arc<EmbeddedBackend>, tempfile::TempDir),
    Redis(#[allow(dead_code)] redis_server::RedisServer, String),
}

fn main() {
    let rate = env_usize("LOAD_RATE", 0);
    let secs = env_usize("LOAD_SECS", 20);
    let requests = if rate > 0 {
        rate * secs
    } else {
        env_usize("LOAD_REQUESTS", 50_000)
    };
    let connections = env_usize("LOAD_CONNECTIONS", 64);
    let max_secs = if rate > 0 {
        secs as u64 + 60
    } else {
        env_usize("LOAD_MAX_SECS", 60) as u64
    };
    let customers = env_usize("LOAD_CUSTOMERS", 0);
    let distinct = customers == 0 || customers >= requests;
    let store_name = std::env::var("LOAD_STORE").unwrap_or_else(|_| "embedded".into());
    let fsync = std::env::var("LOAD_FSYNC").unwrap_or_else(|_| "always".into());

    let store = match store_name.as_str() {
        "embedded" => {
            let dir = tempfile::tempdir().expect("temp dir");
            let backend = EmbeddedBackend::open(dir.path()).expect("embedded store opens");
            Store::Embedded(Arc::new(backend), dir)
        }
        "redis" => {
            let redis = redis_server::RedisServer::start();
            let client = redis::Client::open(redis.url()).expect("redis url");
            let mut conn = client.get_connection().expect("redis connection");
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("appendfsync")
                .arg(&fsync)
                .query(&mut conn)
                .expect("CONFIG SET appendfsync");
            let url = redis.url();
            Store::Redis(redis, url)
        }
        other => panic!("LOAD_STORE={other}: use embedded or redis"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(
        store,
        rate,
        requests,
        connections,
        max_secs,
        customers,
        distinct,
        fsync,
    ));
}

#[allow(clippy::too_many_arguments)]
async fn run(
    store: Store,
    rate: usize,
    requests: usize,
    connections: usize,
    max_secs: u64,
    customers: usize,
    distinct: bool,
    fsync: String,
) {
    let warmups = connections * 4;
    let start = Instant::now();
    let mock = Arc::new(Mock {
        replies: Times::new(start, requests + warmups),
        requests: AtomicU64::new(0),
        answered: AtomicU64::new(0),
    });
    let mock_base = start_mock(mock.clone()).await;

    let mut c = balas::config::load_from_str("", "bench", &[]).expect("defaults");
    c.server.listen = "127.0.0.1:0".into();
    c.intents.path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    c.whatsapp.enabled = true;
    c.whatsapp.app_secret = Some(Secret::new(APP_SECRET));
    c.whatsapp.verify_token = Some(Secret::new("bench"));
    c.whatsapp.access_token = Some(Secret::new("bench-token"));
    c.whatsapp.api_base = mock_base;
    c.whatsapp.phone_number_id = PHONE_NUMBER_ID.into();
    c.whatsapp.max_messages_per_second = env_usize("LOAD_SEND_RATE", 1000) as f64;
    c.instagram.enabled = false;
    c.workers.poll_interval = HumanDuration::millis(50);
    if let Ok(n) = std::env::var("LOAD_INBOUND_CONCURRENCY") {
        c.workers.inbound_concurrency = n.parse().expect("LOAD_INBOUND_CONCURRENCY");
    }
    // Files (none in this load) go under data_dir: keep them out of the repository.
    let media_dir = tempfile::tempdir().expect("temp dir");
    let (store_label, app) = match &store {
        Store::Embedded(backend, dir) => {
            c.store.data_dir = dir.path().to_owned();
            let b: Arc<dyn Backend> = backend.clone();
            let media = MediaStore::open(&c.media, &c.store.data_dir)
                .await
                .expect("media store");
            (
                "embedded store (redb, fsync per commit)".to_string(),
                App::with_backend(c, b, media, Arc::new(SystemClock)).expect("app builds"),
            )
        }
        Store::Redis(_, url) => {
            c.store.redis_url = Some(Secret::new(url.clone()));
            c.store.key_prefix = "bench".into();
            c.store.data_dir = media_dir.path().to_owned();
            (
                format!("redis store (appendfsync {fsync})"),
                App::open(c, Arc::new(SystemClock))
                    .await
                    .expect("app opens"),
            )
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = balas::server::start(app.clone(), listener).expect("server starts");
    let url = format!("http://{}/webhooks/whatsapp", running.addr);

    let ts = jiff::Timestamp::now().as_second();
    let from = |i: usize| {
        if distinct {
            sender(i)
        } else {
            sender(i % customers)
        }
    };
    let prepared: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
        (0..requests)
            .map(|i| {
                let b = body(i, &from(i), ts);
                let s = sign(APP_SECRET.as_bytes(), &b);
                (b, s)
            })
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    // Warm up (not measured): open the connections, load scripts, fill caches;
    // then wait until those messages are answered so the run starts idle.
    let warm = futures_util::future::join_all((0..warmups).map(|k| {
        let i = requests + k;
        let b = body(i, &sender(i), ts);
        let s = sign(APP_SECRET.as_bytes(), &b);
        client
            .post(&url)
            .header("x-hub-signature-256", s)
            .body(b)
            .send()
    }))
    .await;
    assert!(
        warm.iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200)),
        "warm-up requests accepted"
    );
    let warm_deadline = Instant::now() + Duration::from_secs(60);
    while mock.answered.load(Ordering::Relaxed) < warmups as u64 && Instant::now() < warm_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warm_answered = mock.answered.load(Ordering::Relaxed);
    let requests_before = mock.requests.load(Ordering::Relaxed);
    let stats_before = match &store {
        Store::Embedded(b, _) => Some(b.write_stats()),
        Store::Redis(..) => None,
    };

    let acks = Arc::new(Times::new(start, requests));
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(max_secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, prepared, next, acks) = (
            client.clone(),
            url.clone(),
            prepared.clone(),
            next.clone(),
            acks.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests / connections + 1);
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= prepared.len() || Instant::now() >= deadline {
                    break;
                }
                let (b, s) = &prepared[i];
                let t = if rate > 0 {
                    let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                    due
                } else {
                    Instant::now()
                };
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", s.as_str())
                    .body(b.clone())
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status() == 200 => {
                        let _ = resp.bytes().await;
                        acks.note_first(i);
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("load task");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let ok = latencies.len();
    let throughput = ok as f64 / elapsed.as_secs_f64();
    let counts = app
        .store()
        .job_counts(balas::store::queues::INBOUND)
        .await
        .expect("counts");
    let answered_at_stop = mock.answered.load(Ordering::Relaxed) - warm_answered;

    // Wait for the replies still owed (bounded).
    let drain = Duration::from_secs(env_usize("LOAD_DRAIN_SECS", 30) as u64);
    let drain_start = Instant::now();
    let owed = if distinct { ok as u64 } else { 0 };
    while mock.answered.load(Ordering::Relaxed) - warm_answered < owed
        && drain_start.elapsed() < drain
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_in = drain_start.elapsed();
    let answered = mock.answered.load(Ordering::Relaxed) - warm_answered;
    let sends = mock.requests.load(Ordering::Relaxed) - requests_before;

    let mut reply_latencies: Vec<Duration> = (0..requests)
        .filter_map(|i| Some(mock.replies.get(i)?.saturating_sub(acks.get(i)?)))
        .collect();
    reply_latencies.sort();

    let mode = if rate > 0 {
        format!("open loop at {rate} requests/s")
    } else {
        "closed loop (as fast as answered)".to_string()
    };
    let senders = if distinct {
        "every message from its own sender".to_string()
    } else {
        format!("{customers} senders")
    };
    println!(
        "webhook_load: {store_label}, {connections} keep-alive connections, {mode}, {senders}, in-process server + workers + Graph mock"
    );
    println!(
        "  requests: {ok} answered 200, {errors} errors, in {:.2} s",
        elapsed.as_secs_f64()
    );
    println!("  ack throughput: {throughput:.0} requests/s");
    println!(
        "  ack latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    println!(
        "  when the load stopped: {answered_at_stop} replied, inbound backlog {} pending + {} leased",
        counts.pending, counts.leased
    );
    if distinct {
        println!(
            "  replies: {answered} of {ok} messages answered ({sends} sends at the mock), the last {:.1} s after the load stopped",
            drained_in.as_secs_f64()
        );
        println!(
            "  ack → reply at the mock: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(percentile(&reply_latencies, 0.50)),
            ms(percentile(&reply_latencies, 0.90)),
            ms(percentile(&reply_latencies, 0.99)),
            ms(reply_latencies.last().copied().unwrap_or_default()),
        );
        let kept_pace = answered == ok as u64
            && errors == 0
            && percentile(&reply_latencies, 0.99) < Duration::from_secs(1);
        println!(
            "  end to end: {} (every message answered, reply p99 under 1 s)",
            if kept_pace {
                "KEPT PACE"
            } else {
                "FELL BEHIND"
            }
        );
    } else {
        println!(
            "  replies: {sends} sends at the mock (per-message latency needs distinct senders)"
        );
    }
    if let (Store::Embedded(b, _), Some(before)) = (&store, stats_before) {
        let after = b.write_stats();
        let (w, c) = (after.writes - before.writes, after.commits - before.commits);
        println!(
            "  embedded writes: {w} in {c} commits ({:.1} writes per fsync, {:.1} writes per message)",
            w as f64 / c.max(1) as f64,
            w as f64 / ok.max(1) as f64
        );
    }
    running.stop().await;
    drop(app);
    drop(store);
}
