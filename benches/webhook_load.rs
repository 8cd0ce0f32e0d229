//! Webhook ingestion load test: signed WhatsApp text webhooks against a whole
//! Balas (HTTP server + all workers) on a throwaway redis-server, from the same
//! process.
//!
//! ```text
//! cargo bench --bench webhook_load
//! ```
//!
//! Environment knobs (defaults in brackets): `LOAD_REQUESTS` [50000],
//! `LOAD_CONNECTIONS` [64], `LOAD_MAX_SECS` [60], `LOAD_CUSTOMERS` [500],
//! `LOAD_RATE` [0]: 0 = closed loop (every connection sends its next request as
//! soon as the previous one is answered: maximum throughput); N = open loop at
//! N requests/s (request i is due at start + i/N and its latency is measured
//! from when it was due, so a server falling behind is not hidden),
//! `LOAD_DRAIN_SECS` [10]: how long to watch the engine work off the backlog,
//! `LOAD_INBOUND_CONCURRENCY` [workers.inbound_concurrency default],
//! `LOAD_FSYNC` [always]: Redis `appendfsync` (`always` as the tests run it, or
//! `everysec` as docker-compose.yml does).
//! Every request has a distinct message id, so every one is a new event stored
//! as a job (nothing is a duplicate). Bodies and signatures are prepared before
//! the clock starts. Outbound replies are dry runs (no access token), so the
//! workers do their full job against Redis but nothing leaves the machine.
//! Prints requests/s and ack latency percentiles, then stops by itself.

#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use balas::app::App;
use balas::channels::signature::sign;
use balas::clock::SystemClock;
use balas::config::{HumanDuration, Secret};

const APP_SECRET: &str = "bench-app-secret";
const PHONE_NUMBER_ID: &str = "112233445566778";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn body(i: usize, customers: usize, ts: i64) -> Vec<u8> {
    let wa_id = format!("62812{:08}", i % customers);
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
        wa = wa_id,
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

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let requests = env_usize("LOAD_REQUESTS", 50_000);
    let connections = env_usize("LOAD_CONNECTIONS", 64);
    let max_secs = env_usize("LOAD_MAX_SECS", 60) as u64;
    let customers = env_usize("LOAD_CUSTOMERS", 500);
    let rate = env_usize("LOAD_RATE", 0);

    let redis = redis_server::RedisServer::start();
    let fsync = std::env::var("LOAD_FSYNC").unwrap_or_else(|_| "always".into());
    {
        let client = redis::Client::open(redis.url()).expect("redis url");
        let mut conn = client.get_connection().expect("redis connection");
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendfsync")
            .arg(&fsync)
            .query(&mut conn)
            .expect("CONFIG SET appendfsync");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut c = balas::config::load_from_str("", "bench", &[]).expect("defaults");
        c.server.listen = "127.0.0.1:0".into();
        c.store.redis_url = Some(Secret::new(redis.url()));
        c.store.key_prefix = "bench".into();
        c.intents.path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
        c.whatsapp.enabled = true;
        c.whatsapp.app_secret = Some(Secret::new(APP_SECRET));
        c.whatsapp.verify_token = Some(Secret::new("bench"));
        c.whatsapp.access_token = None; // dry run: replies recorded, not sent
        c.whatsapp.phone_number_id = PHONE_NUMBER_ID.into();
        c.instagram.enabled = false;
        c.workers.poll_interval = HumanDuration::millis(50);
        if let Ok(n) = std::env::var("LOAD_INBOUND_CONCURRENCY") {
            c.workers.inbound_concurrency = n.parse().expect("LOAD_INBOUND_CONCURRENCY");
        }
        let app = App::open(c, Arc::new(SystemClock)).await.expect("app opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = balas::server::start(app.clone(), listener).expect("server starts");
        let url = format!("http://{}/webhooks/whatsapp", running.addr);

        let ts = jiff::Timestamp::now().as_second();
        let prepared: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
            (0..requests)
                .map(|i| {
                    let b = body(i, customers, ts);
                    let s = sign(APP_SECRET.as_bytes(), &b);
                    (b, s)
                })
                .collect(),
        );
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");

        // Warm up (not measured): open the connections, load the Lua scripts.
        let warm = futures_util::future::join_all((0..connections * 4).map(|k| {
            let b = body(requests + k, customers, ts);
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
        let next = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(max_secs);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (client, url, prepared, next) =
                (client.clone(), url.clone(), prepared.clone(), next.clone());
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

        // How far behind the workers are when the load stops.
        let counts = app
            .store()
            .job_counts("inbound")
            .await
            .expect("counts");
        let mode = if rate > 0 {
            format!("open loop at {rate} requests/s")
        } else {
            "closed loop (as fast as answered)".to_string()
        };
        println!(
            "webhook_load: redis backend (appendfsync {fsync}), {connections} keep-alive connections, {mode}, in-process server + workers"
        );
        println!(
            "  requests: {ok} answered 200, {errors} errors, in {:.2} s",
            elapsed.as_secs_f64()
        );
        println!("  throughput: {throughput:.0} requests/s");
        println!(
            "  ack latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.90).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
        println!(
            "  inbound backlog when the load stopped: {} pending, {} leased",
            counts.pending, counts.leased
        );
        // Not the target, but worth knowing: how fast the engine works the
        // backlog off once the load stops (bounded observation window).
        let window = Duration::from_secs(env_usize("LOAD_DRAIN_SECS", 10) as u64);
        let before = counts.pending + counts.leased;
        let t = Instant::now();
        let mut left = before;
        while t.elapsed() < window && left > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let c = app.store().job_counts("inbound").await.expect("counts");
            left = c.pending + c.leased;
        }
        println!(
            "  engine after the load: {} events handled in {:.1} s ({:.0} events/s), {left} left",
            before - left,
            t.elapsed().as_secs_f64(),
            (before - left) as f64 / t.elapsed().as_secs_f64()
        );
        running.stop().await;
    });
}
