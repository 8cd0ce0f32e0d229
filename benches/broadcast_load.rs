//! Broadcast pacing under load (issue 7).
//!
//! Starts a throwaway `redis-server` (AOF, fsync every second as in
//! `docker-compose.yml`), a minimal Graph API mock and Balas in
//! this process (real clock, Redis store), creates a template broadcast to N
//! recipients (default 100,000) at 1,000 messages/s through the API, and
//! measures at the mock: the achieved rate from the first to the last request,
//! the lowest and highest rate over any 10 s window, duplicates (must be 0);
//! and in this process: resident memory before, during and after, and the peak.
//!
//! ```text
//! cargo bench --bench broadcast_load                       # 100,000 recipients, Redis
//! cargo bench --bench broadcast_load -- --recipients 20000
//! cargo bench --bench broadcast_load -- --store embedded   # the embedded store instead
//! ```
//!
//! The mock keeps only a bit per recipient and a counter per second, and the
//! request body is written as one string (about 60 bytes per recipient), so
//! the memory numbers are Balas's own plus that body.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use balas::api::auth::token_hash;
use balas::app::App;
use balas::config::{AgentConfig, HumanDuration, Role, Secret};
use serde_json::{Value, json};

/// A throwaway `redis-server` with the production persistence settings of
/// `docker-compose.yml` (`appendonly yes`, `appendfsync everysec`).
struct Redis {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "everysec", "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PHONE_NUMBER_ID: &str = "112233445566778";
const TOKEN: &str = "bench-marketer-token";

fn number(i: usize) -> String {
    format!("62815{i:08}")
}

/// What the mock saw: one bit per recipient, requests per second since start.
struct Seen {
    start: Instant,
    bits: Mutex<Vec<u64>>,
    per_sec: Mutex<Vec<u32>>,
    first_last: Mutex<Option<(Instant, Instant)>>,
    requests: AtomicU64,
    duplicates: AtomicU64,
    strangers: AtomicU64,
}

impl Seen {
    fn new(n: usize) -> Seen {
        Seen {
            start: Instant::now(),
            bits: Mutex::new(vec![0; n.div_ceil(64)]),
            per_sec: Mutex::new(vec![0; 24 * 3600]),
            first_last: Mutex::new(None),
            requests: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            strangers: AtomicU64::new(0),
        }
    }

    fn record(&self, to: &str) {
        let now = Instant::now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        {
            let mut fl = self.first_last.lock().unwrap();
            *fl = Some(fl.map_or((now, now), |(f, _)| (f, now)));
        }
        let sec = now.duration_since(self.start).as_secs() as usize;
        if let Some(c) = self.per_sec.lock().unwrap().get_mut(sec) {
            *c += 1;
        }
        let index = to
            .strip_prefix("62815")
            .and_then(|d| d.parse::<usize>().ok());
        let mut bits = self.bits.lock().unwrap();
        match index {
            Some(i) if i / 64 < bits.len() => {
                let (w, b) = (i / 64, 1u64 << (i % 64));
                if bits[w] & b != 0 {
                    self.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                bits[w] |= b;
            }
            _ => {
                self.strangers.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn distinct(&self) -> u64 {
        self.bits
            .lock()
            .unwrap()
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum()
    }
}

async fn messages(State(seen): State<Arc<Seen>>, body: Bytes) -> impl IntoResponse {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let to = v["to"].as_str().unwrap_or_default();
    seen.record(to);
    let n = seen.requests.load(Ordering::Relaxed);
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": format!("wamid.BENCH{n:012}")}]
    }))
}

async fn start_mock(seen: Arc<Seen>) -> String {
    let app = Router::new()
        .route("/{id}/messages", post(messages))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// (VmRSS, VmHWM) in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let n: usize = arg("--recipients").map_or(100_000, |s| s.parse().expect("--recipients N"));
    let rate: f64 = arg("--rate").map_or(1000.0, |s| s.parse().expect("--rate R"));
    let concurrency: Option<usize> = arg("--outbox-concurrency").map(|s| s.parse().unwrap());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(n, rate, concurrency));
}

async fn run(n: usize, rate: f64, concurrency: Option<usize>) {
    let embedded = match arg("--store").as_deref() {
        None | Some("redis") => false,
        Some("embedded") => true,
        Some(other) => panic!("--store {other}: use redis or embedded"),
    };
    let redis = (!embedded).then(Redis::start);
    let data_dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::new(n));
    let mock = start_mock(seen.clone()).await;

    let mut c = balas::config::load_from_str("", "bench", &[]).expect("defaults");
    // Files (none in this load) would go under data_dir: keep it out of the repository.
    c.store.data_dir = data_dir.path().to_owned();
    if let Some(redis) = &redis {
        c.store.redis_url = Some(Secret::new(redis.url()));
        c.store.key_prefix = "bench".into();
    }
    c.intents.path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    c.whatsapp.enabled = true;
    c.whatsapp.access_token = Some(Secret::new("bench-token"));
    c.whatsapp.app_secret = Some(Secret::new("bench-secret"));
    c.whatsapp.verify_token = Some(Secret::new("bench-verify"));
    c.whatsapp.api_base = mock;
    c.whatsapp.phone_number_id = PHONE_NUMBER_ID.into();
    c.whatsapp.max_messages_per_second = 1000.0;
    c.broadcast.quiet_hours = String::new();
    c.workers.poll_interval = HumanDuration::millis(20);
    if let Some(k) = concurrency {
        c.workers.outbox_concurrency = k;
    }
    c.agents = vec![AgentConfig {
        id: "bench".into(),
        name: "Bench".into(),
        role: Role::Marketer,
        queues: Vec::new(),
        max_concurrent: 5,
        token_sha256: token_hash(TOKEN),
    }];
    let outbox_concurrency = c.workers.outbox_concurrency;
    let app = App::open(c, Arc::new(balas::clock::SystemClock))
        .await
        .expect("app opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = balas::server::start(app.clone(), listener).expect("server starts");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();

    let (rss_idle, _) = memory();
    let body = {
        use std::fmt::Write;
        let mut s = String::with_capacity(n * 64 + 256);
        write!(
            s,
            r#"{{"name": "bench", "channel": "whatsapp", "rate_per_sec": {rate},
                "message": {{"template": {{"name": "promo_bench", "language": "id", "body_parameters": ["{{{{name}}}}"]}}}},
                "audience": {{"recipients": ["#
        )
        .unwrap();
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            write!(
                s,
                r#"{{"to": "{}", "variables": {{"name": "Pelanggan {i}"}}}}"#,
                number(i)
            )
            .unwrap();
        }
        s.push_str("]}}");
        s
    };
    let created_at = Instant::now();
    let resp = http
        .post(format!("{base}/api/v1/broadcasts"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("create");
    assert_eq!(
        resp.status(),
        201,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let (rss_created, _) = memory();
    eprintln!(
        "created broadcast {id} to {n} recipients in {:.1} s",
        created_at.elapsed().as_secs_f64()
    );

    let mut samples: Vec<(u64, f64)> = Vec::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs((n as f64 / rate * 3.0) as u64 + 120);
    let mut counts;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = seen.requests.load(Ordering::Relaxed);
        let (rss, _) = memory();
        samples.push((got, rss));
        let v: Value = http
            .get(format!("{base}/api/v1/broadcasts/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        counts = v["counts"].clone();
        eprintln!(
            "{:>6.1} s  mock {got:>7}  sent {:>7}  pending {:>7}  rss {rss:.1} MiB",
            started.elapsed().as_secs_f64(),
            counts["sent"],
            counts["pending"]
        );
        if counts["sent"].as_u64() == Some(n as u64) && got >= n as u64 {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("gave up waiting");
            break;
        }
    }
    // Anything late would be a duplicate: give it a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_end, hwm) = memory();

    let requests = seen.requests.load(Ordering::Relaxed);
    let (first, last) = seen.first_last.lock().unwrap().expect("requests arrived");
    let span = last.duration_since(first).as_secs_f64();
    let achieved = (requests.saturating_sub(1)) as f64 / span;
    // 10 s windows over whole seconds, excluding the first and last partial seconds.
    let per_sec = seen.per_sec.lock().unwrap().clone();
    let first_sec = first.duration_since(seen.start).as_secs() as usize + 1;
    let last_sec = last.duration_since(seen.start).as_secs() as usize;
    let mut window_min = f64::MAX;
    let mut window_max: f64 = 0.0;
    if last_sec >= first_sec + 10 {
        for s in first_sec..=(last_sec - 10) {
            let sum: u32 = per_sec[s..s + 10].iter().sum();
            let r = f64::from(sum) / 10.0;
            window_min = window_min.min(r);
            window_max = window_max.max(r);
        }
    }
    // Memory while sending: from the first sample with 10 % sent to the end.
    let tenth = samples
        .iter()
        .find(|(got, _)| *got as f64 >= n as f64 * 0.1)
        .map_or(rss_created, |(_, r)| *r);
    let duplicates = seen.duplicates.load(Ordering::Relaxed);
    let error = (achieved - rate) / rate * 100.0;

    println!("## broadcast_load");
    println!(
        "store                 {}",
        if embedded { "embedded" } else { "redis" }
    );
    println!("recipients            {n}");
    println!("target rate           {rate:.0} msg/s");
    println!("outbox concurrency    {outbox_concurrency}");
    println!(
        "requests at the mock  {requests} ({} distinct recipients, {} unknown)",
        seen.distinct(),
        seen.strangers.load(Ordering::Relaxed)
    );
    println!("duplicates            {duplicates}");
    println!("first → last request  {span:.2} s");
    println!("achieved rate         {achieved:.1} msg/s ({error:+.2} % of target)");
    if window_max > 0.0 {
        println!("10 s windows          min {window_min:.1} / max {window_max:.1} msg/s");
    }
    println!("counts (API)          {counts}");
    println!(
        "RSS idle / after create / at 10 % sent / end   {rss_idle:.1} / {rss_created:.1} / {tenth:.1} / {rss_end:.1} MiB"
    );
    println!("peak RSS (VmHWM)      {hwm:.1} MiB");
    println!(
        "RSS growth while sending (10 % → end): {:+.1} MiB over {:.0} recipients = {:.1} bytes/recipient",
        rss_end - tenth,
        n as f64 * 0.9,
        (rss_end - tenth) * 1024.0 * 1024.0 / (n as f64 * 0.9)
    );
    let ok = duplicates == 0
        && seen.distinct() == n as u64
        && error.abs() <= 2.0
        && counts["sent"].as_u64() == Some(n as u64);
    println!("result                {}", if ok { "PASS" } else { "FAIL" });
    running.stop().await;
    drop(app);
    drop(redis);
    if !ok {
        std::process::exit(1);
    }
}
