//! End-to-end load test: signed WhatsApp text webhooks against a whole Balas
//! (HTTP server + all workers) on the embedded store, a throwaway
//! redis-server or a throwaway Redis Cluster, with the replies sent to a Graph
//! API mock in the same process.
//!
//! ```text
//! cargo bench --bench webhook_load                                   # embedded, closed loop
//! LOAD_RATE=500 LOAD_SECS=20 cargo bench --bench webhook_load        # embedded, 500 msg/s for 20 s
//! LOAD_STORE=redis LOAD_RATE=500 cargo bench --bench webhook_load    # the same on Redis
//! LOAD_STORE=cluster LOAD_APPS=2 LOAD_RATE=300 cargo bench --bench webhook_load  # two Balas on a Cluster
//! ```
//!
//! Environment knobs (defaults in brackets):
//! - `LOAD_STORE` [embedded]: `embedded` (redb in a temp dir, the default
//!   deployment), `redis` (one redis-server) or `cluster` (a Redis Cluster of 3
//!   masters and 3 replicas on loopback, the tests' helper).
//! - `LOAD_APPS` [1]: how many Balas (each its own HTTP server and workers, in
//!   this process) share the store; request i goes to Balas i mod N. More than
//!   one needs `redis` or `cluster`.
//! - `LOAD_QUEUE_PARTS` [the store's default: 16 on `cluster`, else 1]:
//!   `store.queue_parts`, the parts of the `inbound` and `outbox` queues (1 =
//!   unsplit, each queue one slot).
//! - `LOAD_MIN_REPLICAS_ACK` [0]: `store.min_replicas_ack` (`cluster` only:
//!   one redis-server has no replica to wait for).
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
//! - `LOAD_NUMBERS` [1]: business numbers the messages are written to, in turn
//!   (`[[whatsapp.numbers]]`, each with `LOAD_SEND_RATE`): more than one lets
//!   replies go out faster than one number's ceiling, to find Balas's own.
//! - `LOAD_INBOUND_CONCURRENCY` [workers.inbound_concurrency default].
//! - `LOAD_OUTBOX_CONCURRENCY` [workers.outbox_concurrency default].
//! - `LOAD_DEFERRED` [1]: `store.deferred_durability` (0 = every write of the
//!   embedded store waits for an fsync, as before deferred durability).
//! - `LOAD_FSYNC` [always]: Redis `appendfsync` (`always` as the tests run it,
//!   or `everysec` as docker-compose.yml does). On `cluster` every node gets
//!   the append-only file with this setting (the tests' cluster has none), so
//!   both Redis stores persist alike.
//!
//! Every request has a distinct message id, so every one is a new event stored
//! as a job. Bodies and signatures are prepared before the clock starts. The
//! bot answers each message (the shipped intent rules) and the outbox sends the
//! answer to the mock, which notes when the first answer to each sender
//! arrived. Reported: ack throughput and latency, and ack → reply-at-the-mock
//! latency (from when the webhook's 200 was received to when the reply reached
//! the mock). On Redis, also the work each master did while the load ran and
//! the replies drained (`INFO commandstats`, `INFO stats`, `INFO cpu`), to see
//! how a Cluster spreads it.

#[path = "../tests/common/redis_cluster.rs"]
mod redis_cluster;
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
use balas::attachments::Library;
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

/// The business number message `i` is written to (one of `numbers`).
fn number_id(i: usize, numbers: usize) -> String {
    match i % numbers.max(1) {
        0 => PHONE_NUMBER_ID.to_string(),
        k => format!("{}{k:03}", &PHONE_NUMBER_ID[..12]),
    }
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
        pn = number_id(i, env_usize("LOAD_NUMBERS", 1)),
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
/// server processes).
enum Store {
    Embedded(Arc<EmbeddedBackend>, tempfile::TempDir),
    Redis(redis_server::RedisServer),
    Cluster(redis_cluster::RedisCluster),
}

impl Store {
    /// Ports of the Redis nodes taking writes now (none on the embedded store).
    fn masters(&self) -> Vec<u16> {
        match self {
            Store::Embedded(..) => Vec::new(),
            Store::Redis(r) => vec![r.port()],
            Store::Cluster(c) => c.masters(),
        }
    }
}

/// The value of `name:` in an `INFO` answer.
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// One Redis node's counters at a moment.
#[derive(Clone, Default)]
struct NodeOps {
    /// `calls=` per command of `INFO commandstats`.
    per_command: Vec<(String, u64)>,
    /// `calls=` summed over `INFO commandstats` (commands run inside Lua
    /// scripts included).
    calls: u64,
    /// `total_commands_processed` of `INFO stats`.
    commands: u64,
    /// `used_cpu_user` + `used_cpu_sys` of `INFO cpu`, seconds.
    cpu: f64,
    /// `DBSIZE`.
    keys: u64,
}

/// Reads the counters of the node on `port` (through `redis-cli`).
fn node_ops(port: u16) -> NodeOps {
    let num = |info: &str, name: &str| -> f64 {
        info_field(info, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let stats = redis_cluster::cli(port, &["INFO", "stats"]);
    let cpu = redis_cluster::cli(port, &["INFO", "cpu"]);
    let commandstats = redis_cluster::cli(port, &["INFO", "commandstats"]);
    let per_command = commandstats
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect();
    NodeOps {
        per_command,
        calls: redis_cluster::total_calls(&commandstats),
        commands: num(&stats, "total_commands_processed") as u64,
        cpu: num(&cpu, "used_cpu_user") + num(&cpu, "used_cpu_sys"),
        keys: redis_cluster::cli(port, &["DBSIZE"])
            .trim()
            .parse()
            .unwrap_or(0),
    }
}

/// The four commands called most between `before` and `after`, with their
/// call counts.
fn top_commands(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, u64)> {
    let mut delta: Vec<(String, u64)> = after
        .iter()
        .map(|(name, n)| {
            let was = before
                .iter()
                .find(|(b, _)| b == name)
                .map_or(0, |(_, n)| *n);
            (name.clone(), n.saturating_sub(was))
        })
        .collect();
    delta.sort_by_key(|d| std::cmp::Reverse(d.1));
    delta.truncate(4);
    delta
}

/// Turns on the append-only file with `appendfsync` = `fsync` on every node
/// of the cluster and waits until each has written its first one.
fn persist_cluster(cluster: &redis_cluster::RedisCluster, fsync: &str) {
    for port in cluster.ports() {
        for (key, value) in [("appendonly", "yes"), ("appendfsync", fsync)] {
            let out = redis_cluster::cli(port, &["CONFIG", "SET", key, value]);
            assert_eq!(out.trim(), "OK", "CONFIG SET {key} {value} on node {port}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for port in cluster.ports() {
        loop {
            let info = redis_cluster::cli(port, &["INFO", "persistence"]);
            let done = info_field(&info, "aof_enabled") == Some("1")
                && info_field(&info, "aof_rewrite_in_progress") == Some("0")
                && info_field(&info, "aof_rewrite_scheduled") == Some("0");
            if done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {port}: append-only file not written within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
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
    let apps = env_usize("LOAD_APPS", 1).max(1);
    let min_replicas_ack = env_usize("LOAD_MIN_REPLICAS_ACK", 0) as u32;
    assert!(
        apps == 1 || store_name != "embedded",
        "LOAD_APPS={apps} needs LOAD_STORE=redis or cluster: the embedded store belongs to one process"
    );
    assert!(
        min_replicas_ack == 0 || store_name == "cluster",
        "LOAD_MIN_REPLICAS_ACK needs LOAD_STORE=cluster: one redis-server has no replica"
    );

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
            Store::Redis(redis)
        }
        "cluster" => {
            let cluster = redis_cluster::RedisCluster::start();
            persist_cluster(&cluster, &fsync);
            Store::Cluster(cluster)
        }
        other => panic!("LOAD_STORE={other}: use embedded, redis or cluster"),
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
        apps,
        min_replicas_ack,
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
    apps: usize,
    min_replicas_ack: u32,
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
    let numbers = env_usize("LOAD_NUMBERS", 1);
    if numbers > 1 {
        c.whatsapp.phone_number_id = String::new();
        c.whatsapp.numbers = (0..numbers)
            .map(|k| balas::config::WhatsAppNumber {
                phone_number_id: number_id(k, numbers),
                name: format!("bench {k}"),
                access_token: None,
                max_messages_per_second: None,
                survey_template: None,
                template_language: None,
                business_account_id: None,
            })
            .collect();
    }
    c.instagram.enabled = false;
    c.workers.poll_interval = HumanDuration::millis(50);
    if let Ok(n) = std::env::var("LOAD_QUEUE_PARTS") {
        c.store.queue_parts = Some(n.parse().expect("LOAD_QUEUE_PARTS"));
    }
    if let Ok(n) = std::env::var("LOAD_INBOUND_CONCURRENCY") {
        c.workers.inbound_concurrency = n.parse().expect("LOAD_INBOUND_CONCURRENCY");
    }
    if let Ok(n) = std::env::var("LOAD_OUTBOX_CONCURRENCY") {
        c.workers.outbox_concurrency = n.parse().expect("LOAD_OUTBOX_CONCURRENCY");
    }
    c.store.deferred_durability = env_usize("LOAD_DEFERRED", 1) != 0;
    let media_dir = tempfile::tempdir().expect("temp dir");
    let (store_label, app_list) = match &store {
        Store::Embedded(backend, dir) => {
            c.store.data_dir = dir.path().to_owned();
            let b: Arc<dyn Backend> = backend.clone();
            let media = MediaStore::open(&c.media, dir.path())
                .await
                .expect("media store");
            (
                "embedded store (redb, fsync per commit)".to_string(),
                vec![
                    App::with_backend(c, b, media, Library::default(), Arc::new(SystemClock))
                        .expect("app builds"),
                ],
            )
        }
        Store::Redis(_) | Store::Cluster(_) => {
            let label = match &store {
                Store::Redis(redis) => {
                    c.store.redis_url = Some(Secret::new(redis.url()));
                    format!("redis store, one node (appendfsync {fsync})")
                }
                Store::Cluster(cluster) => {
                    c.store.redis_cluster_nodes =
                        cluster.urls().into_iter().map(Secret::new).collect();
                    c.store.min_replicas_ack = min_replicas_ack;
                    format!(
                        "redis cluster, 3 masters + 3 replicas (appendfsync {fsync}, min_replicas_ack {min_replicas_ack})"
                    )
                }
                Store::Embedded(..) => unreachable!("handled above"),
            };
            c.store.key_prefix = "bench".into();
            // Files (none in this load) would go under data_dir: keep it out of the repository.
            c.store.data_dir = media_dir.path().to_owned();
            // Every Balas opens its own connections, as separate processes would.
            let mut list = Vec::new();
            for _ in 0..apps {
                list.push(
                    App::open(c.clone(), Arc::new(SystemClock))
                        .await
                        .expect("app opens"),
                );
            }
            (label, list)
        }
    };
    let app = app_list[0].clone();
    let mut servers = Vec::new();
    let mut urls = Vec::new();
    for a in &app_list {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = balas::server::start(a.clone(), listener).expect("server starts");
        urls.push(format!("http://{}/webhooks/whatsapp", running.addr));
        servers.push(running);
    }
    let urls = Arc::new(urls);

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
            .post(&urls[k % urls.len()])
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
        Store::Redis(..) | Store::Cluster(..) => None,
    };
    let masters = store.masters();
    let ops_before: Vec<NodeOps> = masters.iter().map(|&p| node_ops(p)).collect();

    let acks = Arc::new(Times::new(start, requests));
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(max_secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, urls, prepared, next, acks) = (
            client.clone(),
            urls.clone(),
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
                    .post(&urls[i % urls.len()])
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
    let ops_after: Vec<NodeOps> = masters.iter().map(|&p| node_ops(p)).collect();

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
    let balases = if apps == 1 {
        "1 Balas".to_string()
    } else {
        format!("{apps} Balas sharing the store")
    };
    println!(
        "webhook_load: {store_label}, {balases}, {connections} keep-alive connections, {mode}, {senders}, in-process servers + workers + Graph mock"
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
        let f = after.syncs - before.syncs;
        println!(
            "  embedded writes: {w} in {c} commits and {f} fsyncs ({:.1} writes per fsync, {:.1} writes per message, {:.1} fsyncs per message)",
            w as f64 / f.max(1) as f64,
            w as f64 / ok.max(1) as f64,
            f as f64 / ok.max(1) as f64
        );
    }
    if !masters.is_empty() {
        let deltas: Vec<NodeOps> = ops_before
            .iter()
            .zip(&ops_after)
            .map(|(b, a)| NodeOps {
                per_command: top_commands(&b.per_command, &a.per_command),
                calls: a.calls.saturating_sub(b.calls),
                commands: a.commands.saturating_sub(b.commands),
                cpu: a.cpu - b.cpu,
                keys: a.keys,
            })
            .collect();
        let total_calls: u64 = deltas.iter().map(|d| d.calls).sum();
        let total_commands: u64 = deltas.iter().map(|d| d.commands).sum();
        let total_cpu: f64 = deltas.iter().map(|d| d.cpu).sum();
        println!(
            "  redis masters, load + drain (commandstats calls incl. inside scripts / commands processed / CPU s / keys at the end):"
        );
        for (port, d) in masters.iter().zip(&deltas) {
            println!(
                "    node {port}: {} calls ({:.1} %), {} commands, {:.2} CPU s, {} keys",
                d.calls,
                100.0 * d.calls as f64 / total_calls.max(1) as f64,
                d.commands,
                d.cpu,
                d.keys
            );
            let top: Vec<String> = d
                .per_command
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            println!("      most called: {}", top.join(", "));
        }
        println!(
            "    all masters: {total_calls} calls ({:.1} per message), {total_commands} commands ({:.1} per message), {total_cpu:.2} CPU s",
            total_calls as f64 / ok.max(1) as f64,
            total_commands as f64 / ok.max(1) as f64,
        );
    }
    for running in servers {
        running.stop().await;
    }
    drop(app);
    drop(app_list);
    drop(store);
}
