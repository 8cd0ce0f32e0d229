//! Customers' files under load: signed WhatsApp image webhooks against a whole
//! Balas (HTTP server + all workers, embedded store, `fs` media store) in one
//! process, with a minimal Graph API that serves the media answers and the
//! files.
//!
//! ```text
//! cargo bench --bench media_load
//! MEDIA_FILES=100 MEDIA_SIZE_KB=4096 cargo bench --bench media_load
//! ```
//!
//! Knobs (defaults in brackets): `MEDIA_FILES` [200] distinct files,
//! `MEDIA_SIZE_KB` [1024] bytes per file / 1024, `MEDIA_CONNECTIONS` [16]
//! concurrent webhook senders, `MEDIA_CONCURRENCY` [workers.media_concurrency
//! default] downloads at once.
//!
//! Measures what the design promises: the webhook is acknowledged without
//! waiting for any download (ack latency percentiles while downloads run),
//! how fast files reach the media store (files/s, MB/s, from the first
//! webhook to the last file stored, every byte checked against Meta's SHA-256
//! on the way), and that memory does not grow with the files (they are
//! streamed, never held whole): RSS before and after, peak RSS. The mock
//! generates each file's bytes as it sends them, so it holds no file either.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use balas::app::App;
use balas::channels::signature::sign;
use balas::clock::SystemClock;
use balas::config::{HumanDuration, Secret};
use bytes::Bytes;
use sha2::{Digest, Sha256};

const APP_SECRET: &str = "bench-app-secret";
const PHONE_NUMBER_ID: &str = "112233445566778";
const CHUNK: usize = 64 * 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Chunk `k` of file `i`: a JPEG start, then bytes that differ per file (so
/// nothing is deduplicated by content).
fn chunk(i: usize, k: usize, size: usize) -> Bytes {
    let start = k * CHUNK;
    let len = CHUNK.min(size - start);
    let mut out = Vec::with_capacity(len);
    for off in start..start + len {
        out.push(match off {
            0 => 0xFF,
            1 => 0xD8,
            2 => 0xFF,
            3 => 0xE0,
            _ => (off as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(i as u32)
                .to_le_bytes()[1],
        });
    }
    Bytes::from(out)
}

#[derive(Clone)]
struct Mock {
    base: String,
    size: usize,
    hashes: Arc<Vec<String>>,
}

async fn media_info(State(m): State<Mock>, Path(id): Path<String>) -> impl IntoResponse {
    let i: usize = id.trim_start_matches("m").parse().unwrap_or(0);
    axum::Json(serde_json::json!({
        "messaging_product": "whatsapp", "id": id, "mime_type": "image/jpeg",
        "url": format!("{}/__media/{i}", m.base), "sha256": m.hashes[i], "file_size": m.size,
    }))
}

async fn media_file(State(m): State<Mock>, Path(i): Path<usize>) -> impl IntoResponse {
    let size = m.size;
    let chunks = size.div_ceil(CHUNK);
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |k| Ok::<_, Infallible>(chunk(i, k, size))),
    );
    ([("content-type", "image/jpeg")], Body::from_stream(stream))
}

async fn messages(body: Bytes) -> impl IntoResponse {
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if v.get("status").is_some() {
        return axum::Json(serde_json::json!({"success": true}));
    }
    axum::Json(serde_json::json!({
        "messaging_product": "whatsapp", "contacts": [],
        "messages": [{"id": format!("wamid.BENCH{}", fastrand::u64(..))}]
    }))
}

fn webhook(i: usize, ts: i64, hash_b64: &str) -> Vec<u8> {
    let wa = format!("62814{i:08}");
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "104857600012345", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "6281190001234", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Pelanggan"}, "wa_id": wa}],
            "messages": [{"from": wa, "id": format!("wamid.MEDIA{i:08}"), "timestamp": ts.to_string(),
                "type": "image", "image": {"id": format!("m{i}"), "mime_type": "image/jpeg", "sha256": hash_b64}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

fn main() {
    let files = env_usize("MEDIA_FILES", 200);
    let size = env_usize("MEDIA_SIZE_KB", 1024) * 1024;
    let connections = env_usize("MEDIA_CONNECTIONS", 16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        // Meta's hashes of every file (computed by streaming; nothing is kept).
        let digests: Vec<[u8; 32]> = (0..files)
            .map(|i| {
                let mut h = Sha256::new();
                for k in 0..size.div_ceil(CHUNK) {
                    h.update(chunk(i, k, size));
                }
                h.finalize().into()
            })
            .collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mock = Mock {
            base: format!("http://{}", listener.local_addr().expect("addr")),
            size,
            hashes: Arc::new(digests.iter().map(hex::encode).collect()),
        };
        let base = mock.base.clone();
        let router = Router::new()
            .route("/{id}/messages", post(messages))
            .route("/{id}", get(media_info))
            .route("/__media/{i}", get(media_file))
            .with_state(mock);
        tokio::spawn(async move { axum::serve(listener, router).await.expect("mock") });

        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = balas::config::load_from_str("", "bench", &[]).expect("defaults");
        c.server.listen = "127.0.0.1:0".into();
        c.store.data_dir = dir.path().join("data");
        c.intents.path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
        c.whatsapp.enabled = true;
        c.whatsapp.app_secret = Some(Secret::new(APP_SECRET));
        c.whatsapp.verify_token = Some(Secret::new("bench"));
        c.whatsapp.access_token = Some(Secret::new("bench-token"));
        c.whatsapp.phone_number_id = PHONE_NUMBER_ID.into();
        c.whatsapp.api_base = base;
        c.whatsapp.max_messages_per_second = 1000.0;
        c.instagram.enabled = false;
        c.workers.poll_interval = HumanDuration::millis(50);
        if let Ok(n) = std::env::var("MEDIA_CONCURRENCY") {
            c.workers.media_concurrency = n.parse().expect("MEDIA_CONCURRENCY");
        }
        let concurrency = c.workers.media_concurrency;
        let app = App::open(c, Arc::new(SystemClock)).await.expect("app opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let running = balas::server::start(app.clone(), listener).expect("server starts");
        let url = format!("http://{}/webhooks/whatsapp", running.addr);

        let ts = jiff::Timestamp::now().as_second();
        use base64::Engine;
        let prepared: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
            (0..files)
                .map(|i| {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(digests[i]);
                    let b = webhook(i, ts, &b64);
                    let s = sign(APP_SECRET.as_bytes(), &b);
                    (b, s)
                })
                .collect(),
        );
        let client = reqwest::Client::new();
        let (rss_before, _) = memory();
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (client, url, prepared, next) = (client.clone(), url.clone(), prepared.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((b, s)) = prepared.get(i) else { break };
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-hub-signature-256", s.as_str())
                        .body(b.clone())
                        .send()
                        .await
                        .expect("webhook answered");
                    assert_eq!(r.status(), 200);
                    latencies.push(t.elapsed());
                }
                latencies
            }));
        }
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await.expect("sender"));
        }
        let acked = started.elapsed();
        latencies.sort();

        // Every file stored (the last job done) — polled on the queue counts.
        let store = app.store().clone();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let inbound = store.job_counts("inbound").await.expect("counts");
            let media = store.job_counts("media").await.expect("counts");
            if inbound.pending + inbound.leased + media.pending + media.leased == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "files stored within 10 minutes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stored_in = started.elapsed();
        let (rss_after, peak) = memory();
        let dead = store.job_counts("media").await.expect("counts").dead;
        // Check every record: stored, the right size and hash.
        let mut stored = 0;
        for (i, digest) in digests.iter().enumerate() {
            let contact = store
                .contact(balas::channels::Channel::WhatsApp, &format!("62814{i:08}"))
                .await
                .expect("store")
                .expect("contact");
            let case = contact.current_case.expect("case");
            for a in store.conversation_attachments(&case, 10).await.expect("files") {
                if a.status == balas::store::AttachmentStatus::Stored
                    && a.size == Some(size as u64)
                    && a.sha256.map(|h| *h.as_bytes()) == Some(*digest)
                {
                    stored += 1;
                }
            }
        }
        let mb = (files * size) as f64 / 1e6;
        println!(
            "media_load: {files} WhatsApp images of {} KiB, {connections} webhook senders, {concurrency} downloads at once; embedded store, fs media store, in-process server + workers + mock",
            size / 1024
        );
        println!(
            "  webhooks: all {files} acknowledged in {:.2} s; ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            acked.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
        println!(
            "  files: {stored}/{files} stored and verified in {:.2} s after the first webhook: {:.1} files/s, {:.1} MB/s; {dead} dead letters",
            stored_in.as_secs_f64(),
            files as f64 / stored_in.as_secs_f64(),
            mb / stored_in.as_secs_f64(),
        );
        println!(
            "  memory: RSS {rss_before:.1} MiB before, {rss_after:.1} MiB after {mb:.0} MB of files; peak {peak:.1} MiB"
        );
        running.stop().await;
    });
}
