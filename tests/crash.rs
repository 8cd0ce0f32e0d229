//! The real binary (issue "Foundation"): `kill -9` loses nothing that was
//! acknowledged, on the embedded store and on Redis; bad configuration stops it
//! with exit code 2 and the key's file:line; SIGTERM exits cleanly.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use balas::channels::signature::sign;
use common::graph_mock::GraphMock;
use common::harness::APP_SECRET;
use common::harness::unique_prefix;
use common::payloads;
use common::process::{BalasProcess, ProcStore, free_port, run, sample, write_config};
use common::redis_cluster::RedisCluster;
use common::redis_server::RedisServer;
use serde_json::json;

/// Webhooks acknowledged before the kill.
const N: usize = 40;

fn customer(i: usize) -> String {
    format!("62813000{i:05}")
}

/// When the process is killed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum KillAt {
    /// Right after the last webhook was acknowledged.
    AfterAcks,
    /// Once replies are on their way to the Graph API.
    MidSend,
}

async fn kill_9_loses_nothing_acknowledged(store: ProcStore, at: KillAt) {
    let dir = tempfile::tempdir().unwrap();
    let mock = GraphMock::start().await;
    // Slow answers keep sends in flight when the process dies.
    mock.set_delay(Some(Duration::from_millis(250)));
    let http = reqwest::Client::new();
    // Killed right after the acks, the first process must not have delivered
    // anything, or a send cut off by the kill would be sent again (conversation
    // replies are at least once). So it talks to a Graph API of its own that
    // never answers before the kill; only the restarted process talks to
    // `mock`, and each customer must reach it exactly once. (A Graph API that
    // refused with a rate limit would make this test measure the first run's
    // back-off, which the restart rightly keeps, not the restart.)
    let black_hole = GraphMock::start().await;
    black_hole.set_delay(Some(Duration::from_secs(600)));
    let first_graph = match at {
        KillAt::AfterAcks => black_hole.base_url(),
        KillAt::MidSend => mock.base_url(),
    };

    let port = free_port();
    let config = write_config(dir.path(), "first.toml", &store, first_graph, port);
    let mut first = BalasProcess::spawn(&config, port);
    first.wait_ready(&http).await;

    let now_s = jiff::Timestamp::now().as_second();
    let wamids: Vec<String> = (0..N).map(|_| payloads::new_wamid()).collect();
    let bodies: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            payloads::wa_text(
                &customer(i),
                "Pelanggan",
                &wamids[i],
                "jam operasional toko kapan ya",
                now_s,
            )
            .to_string()
            .into_bytes()
        })
        .collect();
    let url = format!("{}/webhooks/whatsapp", first.base);
    let posts = bodies.iter().map(|b| {
        http.post(&url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sign(APP_SECRET.as_bytes(), b))
            .body(b.clone())
            .send()
    });
    for r in futures_util::future::join_all(posts).await {
        let r = r.expect("webhook answered");
        assert_eq!(r.status(), 200, "every webhook is acknowledged");
    }
    if at == KillAt::MidSend {
        assert!(
            mock.wait_for_requests(N / 4, Duration::from_secs(30)).await,
            "replies started\n{}",
            first.logs()
        );
    }
    first.kill9();
    let sent_before_kill = mock.requests().len();
    // Who had a reply on its way (or through) when the process died.
    let reached_before_kill: std::collections::BTreeSet<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r.body["to"].as_str().map(str::to_string))
        .collect();

    // Start again on the same store (another port: the old one may linger).
    let port = free_port();
    let config = write_config(dir.path(), "second.toml", &store, mock.base_url(), port);
    let mut second = BalasProcess::spawn(&config, port);
    second.wait_ready(&http).await;
    // From ready: what a restart must not add is waiting on the dead run's
    // work. Starting itself (loading and training the rules, seconds in a
    // debug build on a busy machine) is not what this bounds.
    let restarted = Instant::now();
    // The embedded store releases the dead run's leases when it opens; on
    // Redis they expire after one lease (10 s by default). Customers must not
    // wait longer than that for a restart.
    let bound = match store {
        ProcStore::Embedded(_) => Duration::from_secs(5),
        ProcStore::Redis(_) | ProcStore::Cluster(..) => Duration::from_secs(15),
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    // When the last customer got an answer; the loop then waits for the
    // queues to settle (the metrics refresh once a second, so they lag).
    let mut all_answered = None;
    loop {
        let b = http
            .get(format!("{}/metrics", second.base))
            .bearer_auth(common::harness::METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let busy: f64 = ["inbound", "outbox"]
            .iter()
            .flat_map(|q| {
                let label = format!("queue=\"{q}\"");
                [
                    sample(&b, "balas_jobs_pending", &[&label]),
                    sample(&b, "balas_jobs_leased", &[&label]),
                ]
            })
            .map(|v| v.unwrap_or(f64::NAN))
            .sum();
        let replied = (0..N)
            .filter(|i| {
                mock.requests()
                    .iter()
                    .any(|r| r.body["to"] == json!(customer(*i)))
            })
            .count();
        if replied == N && all_answered.is_none() {
            all_answered = Some(restarted.elapsed());
        }
        if busy == 0.0 && all_answered.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{replied}/{N} customers got a reply, queues busy ({busy}), {sent_before_kill} sent before the kill\n{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = all_answered.expect("everyone answered");
    assert!(
        recovered <= bound,
        "every acknowledged message answered {recovered:?} after the restart (at most {bound:?})\n{}",
        second.logs()
    );

    let mut per_customer: BTreeMap<String, usize> = BTreeMap::new();
    for r in mock.requests() {
        if let Some(to) = r.body["to"].as_str() {
            *per_customer.entry(to.to_string()).or_default() += 1;
        }
    }
    let dupes: Vec<_> = per_customer.iter().filter(|(_, n)| **n > 1).collect();
    // Replies cut off mid-send by the kill are sent again after the restart (a
    // customer who asked must get an answer); only those can arrive twice:
    // customers whose reply had reached the Graph API before the kill.
    if at == KillAt::AfterAcks {
        assert!(dupes.is_empty(), "nobody gets a reply twice: {dupes:?}");
    } else {
        let unexplained: Vec<_> = dupes
            .iter()
            .filter(|(to, _)| !reached_before_kill.contains(*to))
            .collect();
        assert!(
            unexplained.is_empty(),
            "only sends in flight at the kill may repeat: {unexplained:?}"
        );
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());

    second.sigterm();
    let status = second.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", second.logs());

    // Every acknowledged message was answered: its reply record is sent and
    // the customer got it.
    let st = store.open().await;
    let mut cut_off = Vec::new();
    for (i, wamid) in wamids.iter().enumerate() {
        let who = customer(i);
        let rec = st
            .outbound(&format!("re:{wamid}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged message of {who} has no reply record"));
        assert!(
            per_customer.contains_key(&who),
            "{who} got no reply: {rec:?}"
        );
        assert_eq!(rec.state.as_str(), "sent", "{rec:?}");
        if rec.attempts > 1 {
            cut_off.push(who);
        }
    }
    eprintln!(
        "kill -9 ({at:?}) after {N} acks: {sent_before_kill} replies had reached the mock before the kill; \
         queues drained {recovered:?} after the restart; {} replies sent again after being cut off mid-send: {cut_off:?}",
        cut_off.len()
    );
    if at == KillAt::AfterAcks {
        assert_eq!(
            per_customer.len(),
            N,
            "every customer gets exactly one reply"
        );
    }
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_acks_loses_nothing_embedded() {
    let data = tempfile::tempdir().unwrap();
    let store = ProcStore::Embedded(data.path().join("data"));
    kill_9_loses_nothing_acknowledged(store, KillAt::AfterAcks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_acks_loses_nothing_redis() {
    let redis = RedisServer::start();
    kill_9_loses_nothing_acknowledged(ProcStore::Redis(redis.url()), KillAt::AfterAcks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_acks_loses_nothing_cluster() {
    kill_9_loses_nothing_acknowledged(cluster_store(), KillAt::AfterAcks).await;
}

/// A fresh store on the test binary's Redis Cluster.
fn cluster_store() -> ProcStore {
    ProcStore::Cluster(RedisCluster::shared().urls(), unique_prefix())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_send_loses_nothing_embedded() {
    let data = tempfile::tempdir().unwrap();
    let store = ProcStore::Embedded(data.path().join("data"));
    kill_9_loses_nothing_acknowledged(store, KillAt::MidSend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_send_loses_nothing_redis() {
    let redis = RedisServer::start();
    kill_9_loses_nothing_acknowledged(ProcStore::Redis(redis.url()), KillAt::MidSend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_send_loses_nothing_cluster() {
    kill_9_loses_nothing_acknowledged(cluster_store(), KillAt::MidSend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mock = GraphMock::start().await;
    let http = reqwest::Client::new();
    let port = free_port();
    let store = ProcStore::Embedded(dir.path().join("data"));
    let config = write_config(dir.path(), "balas.toml", &store, mock.base_url(), port);
    let mut p = BalasProcess::spawn(&config, port);
    p.wait_ready(&http).await;
    p.sigterm();
    let status = p.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", p.logs());
    assert!(p.logs().contains("stopped"), "{}", p.logs());
    // The port is free again and the store can be reopened at once.
    let mut again = BalasProcess::spawn(&config, port);
    again.wait_ready(&http).await;
}

#[test]
fn unknown_key_is_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[survey]\nenabled = true\ndelayy = \"15m\"\n",
    )
    .unwrap();
    let out = run(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("delayy"),
        "names the key: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{}:6", path.display())),
        "file:line: {}",
        out.stderr
    );
    // serve stops the same way, before binding anything.
    let out = run(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("delayy"), "{}", out.stderr);
}

#[test]
fn bad_duration_is_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "# a comment\n[survey]\nenabled = true\ndelay = \"15 minutes\"\n",
    )
    .unwrap();
    let out = run(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("survey.delay"),
        "names the key: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{}:4", path.display())),
        "file:line: {}",
        out.stderr
    );
    assert!(out.stderr.contains("15 minutes"), "{}", out.stderr);
}

#[test]
fn bad_environment_override_is_exit_2_naming_the_variable() {
    let out = std::process::Command::new(common::process::BIN)
        .args(["check-config"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("BALAS_SURVEY__DELAY", "soon")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("BALAS_SURVEY__DELAY"), "{stderr}");
}

#[test]
fn shipped_config_checks_out() {
    let out = run(&["check-config", "--config", "config/balas.toml"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("configuration OK"), "{}", out.stdout);
}

/// Issue "Broadcasts": `kill -9` in the middle of a broadcast, then a restart:
/// it continues, nobody gets it twice, and nobody is skipped — except messages
/// caught mid-send by the kill, which are marked "outcome unknown" rather than
/// risk a duplicate.
async fn kill_9_mid_broadcast(store: ProcStore) {
    const RECIPIENTS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let mock = GraphMock::start().await;
    mock.set_delay(Some(Duration::from_millis(30)));
    let http = reqwest::Client::new();
    let port = free_port();
    let config = write_config(dir.path(), "bc.toml", &store, mock.base_url(), port);
    // No quiet hours (this test runs at any hour), and a marketer.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[broadcast]\nquiet_hours = \"\"\n\n[[agents]]\nid = \"maya\"\nname = \"Maya\"\nrole = \"marketer\"\ntoken_sha256 = \"{}\"\n",
        balas::api::auth::token_hash("token-maya")
    ));
    std::fs::write(&config, text).unwrap();

    let mut first = BalasProcess::spawn(&config, port);
    first.wait_ready(&http).await;
    let recipients: Vec<_> = (0..RECIPIENTS)
        .map(|i| json!({"to": format!("62857{i:07}"), "variables": {"name": format!("P{i}")}}))
        .collect();
    let resp = http
        .post(format!("http://127.0.0.1:{port}/api/v1/broadcasts"))
        .bearer_auth("token-maya")
        .json(&json!({
            "name": "crash", "channel": "whatsapp", "rate_per_sec": 100.0,
            "message": {"template": {"name": "promo", "language": "id", "body_parameters": ["{{name}}"]}},
            "audience": {"recipients": recipients},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while mock.requests().len() < RECIPIENTS / 3 {
        assert!(
            Instant::now() < deadline,
            "the broadcast got going\n{}",
            first.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9();
    let _ = first.wait_exit(Duration::from_secs(10)).await;
    let before = mock.requests().len();

    let mut second = BalasProcess::spawn(&config, port);
    second.wait_ready(&http).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let v: serde_json::Value = http
            .get(format!("http://127.0.0.1:{port}/api/v1/broadcasts/{id}"))
            .bearer_auth("token-maya")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["status"] == json!("completed") && v["counts"]["pending"] == json!(0) {
            break v["counts"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the broadcast finished after the restart: {v}\n{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for r in mock.requests() {
        *per.entry(r.body["to"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let dupes: Vec<_> = per.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dupes.is_empty(),
        "nobody gets the broadcast twice: {dupes:?}"
    );
    let (sent, failed) = (
        counts["sent"].as_u64().unwrap(),
        counts["failed"].as_u64().unwrap(),
    );
    assert_eq!(sent + failed, RECIPIENTS as u64, "{counts}");
    // Everyone counted as sent is at the mock; anyone missing at the mock is
    // counted failed (outcome unknown) — nobody is silently skipped.
    assert!(
        sent as usize <= per.len(),
        "counts match the mock's log: {counts}"
    );
    assert!(
        per.len() + failed as usize >= RECIPIENTS,
        "missing recipients are accounted for: {} at the mock, {counts}",
        per.len()
    );
    assert!(
        failed <= 16,
        "only sends in flight at the kill are left unknown: {counts}"
    );
    eprintln!(
        "kill -9 mid-broadcast: {before} requests before the kill; {} recipients reached, {sent} counted sent, {failed} outcome unknown",
        per.len()
    );
    second.sigterm();
    let _ = second.wait_exit(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_broadcast_embedded() {
    let dir = tempfile::tempdir().unwrap();
    kill_9_mid_broadcast(ProcStore::Embedded(dir.path().join("data"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_broadcast_redis() {
    let redis = RedisServer::start();
    kill_9_mid_broadcast(ProcStore::Redis(redis.url())).await;
}

/// `kill -9` while a customer's photo is being downloaded: the attachment
/// record stays pending, the restarted process downloads the photo again, and
/// the identical bytes end up in the media store.
async fn kill_9_mid_download(store: ProcStore) {
    const PNG: &[u8] = include_bytes!("data/media/barang-rusak.png");
    let dir = tempfile::tempdir().unwrap();
    let mock = GraphMock::start().await;
    // The download hangs until the process is killed.
    mock.set_media_delay(Some(Duration::from_secs(120)));
    let http = reqwest::Client::new();
    let port = free_port();
    let config = write_config(dir.path(), "first.toml", &store, mock.base_url(), port);
    let mut first = BalasProcess::spawn(&config, port);
    first.wait_ready(&http).await;

    let customer = "6281399990001";
    let media = mock.add_whatsapp_media(PNG, "image/png");
    let wamid = payloads::new_wamid();
    let body = payloads::wa_media(
        customer,
        "Pelanggan",
        &wamid,
        "image",
        json!({"id": media.id, "mime_type": "image/png", "sha256": media.sha256_base64}),
        jiff::Timestamp::now().as_second(),
    )
    .to_string();
    let resp = http
        .post(format!("{}/webhooks/whatsapp", first.base))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            sign(APP_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let download = format!("/__media/{}", media.id);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mock.media_requests().iter().any(|r| r.path == download) {
        assert!(
            Instant::now() < deadline,
            "the download started\n{}",
            first.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9();
    mock.set_media_delay(None);

    let port = free_port();
    let config = write_config(dir.path(), "second.toml", &store, mock.base_url(), port);
    let mut second = BalasProcess::spawn(&config, port);
    second.wait_ready(&http).await;
    // On Redis the dead process's lease (10 s) runs out first.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let downloads = mock
            .media_requests()
            .iter()
            .filter(|r| r.path == download)
            .count();
        let page = second.metrics(&http).await;
        let label = "queue=\"media\"";
        let busy = sample(&page, "balas_jobs_pending", &[label]).unwrap_or(f64::NAN)
            + sample(&page, "balas_jobs_leased", &[label]).unwrap_or(f64::NAN);
        if downloads >= 2 && busy == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the photo was downloaded again after the restart ({downloads} downloads, media queue busy {busy})\n{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.sigterm();
    let status = second.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", second.logs());

    let (backend, data_dir) = match &store {
        ProcStore::Embedded(d) => (
            balas::store::open_backend(balas::store::Location::Embedded(d), "balas").await,
            d.clone(),
        ),
        ProcStore::Redis(url) => (
            balas::store::open_backend(balas::store::Location::Redis(url), "proc").await,
            dir.path().join("data"),
        ),
        ProcStore::Cluster(nodes, prefix) => (
            balas::store::open_backend(balas::store::Location::RedisCluster(nodes), prefix).await,
            dir.path().join("data"),
        ),
    };
    let st = balas::store::Store::new(
        backend.expect("store reopens"),
        std::sync::Arc::new(balas::clock::SystemClock),
    );
    let case = st
        .contact(balas::channels::Channel::WhatsApp, customer)
        .await
        .unwrap()
        .and_then(|c| c.current_case)
        .expect("the customer has a case");
    let files = st.conversation_attachments(&case, 10).await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0].status,
        balas::store::AttachmentStatus::Stored,
        "{files:?}"
    );
    let media_store =
        balas::media::MediaStore::open(&balas::config::MediaConfig::default(), &data_dir)
            .await
            .unwrap();
    let bytes = media_store
        .get_bytes(files[0].sha256.as_ref().expect("stored with its hash"))
        .await
        .unwrap();
    assert_eq!(bytes, PNG, "the identical bytes");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_download_loses_no_file_embedded() {
    let data = tempfile::tempdir().unwrap();
    kill_9_mid_download(ProcStore::Embedded(data.path().join("data"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_download_loses_no_file_redis() {
    let redis = RedisServer::start();
    kill_9_mid_download(ProcStore::Redis(redis.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_broadcast_cluster() {
    kill_9_mid_broadcast(cluster_store()).await;
}
