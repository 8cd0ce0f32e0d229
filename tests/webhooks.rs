//! The webhook edge over HTTP (issue "Channels"): Meta's handshake, signature
//! checks on the raw bytes, malformed and oversized bodies, every platform
//! fixture, redelivery and batching, disabled channels, a store outage and
//! unsigned trials — on both stores where the store matters.

#[macro_use]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use balas::channels::signature::sign;
use balas::clock::Clock;
use common::harness::{APP_SECRET, Harness, StoreKind, VERIFY_TOKEN};
use common::payloads;
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(
    bad_signatures_are_refused_and_store_nothing,
    malformed_json_with_a_valid_signature_is_400,
    oversized_body_is_413,
    every_inbound_fixture_is_accepted,
    redelivered_webhook_is_processed_once,
    concurrent_redeliveries_are_processed_once,
    batched_messages_are_all_handled,
    unknown_fields_and_types_are_acknowledged,
    disabled_channel_is_404,
    unsigned_webhooks_only_with_allow_unsigned_and_no_secret,
);

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/platform")
}

/// Inbound fixture files (`wa_*.json`, `ig_*.json`) with their exact bytes.
fn inbound_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn channel_of(fixture: &str) -> &'static str {
    if fixture.starts_with("wa_") {
        "whatsapp"
    } else if fixture.starts_with("ig_") {
        "instagram"
    } else {
        panic!("fixture {fixture} is neither wa_ nor ig_")
    }
}

/// Jobs in the inbound queue (pending + leased).
async fn inbound_jobs(h: &Harness) -> u64 {
    let c = h.app.store().job_counts("inbound").await.expect("counts");
    c.pending + c.leased
}

/// Waits until the inbound and outbox queues are empty: everything accepted so
/// far has been handled and every reply it caused has been sent.
async fn post_raw(
    h: &Harness,
    channel: &str,
    body: Vec<u8>,
    signature: Option<&str>,
) -> reqwest::Response {
    let mut req = h
        .http
        .post(format!("{}/webhooks/{channel}", h.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    req.send().await.expect("webhook request")
}

/// POSTs `body` signed, with `Transfer-Encoding: chunked` (no Content-Length),
/// over a raw connection; returns the HTTP status.
async fn post_chunked(h: &Harness, path: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = h.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        sign(APP_SECRET.as_bytes(), body)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(1000) {
        // The server may answer and close before the whole body is written.
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
            || s.write_all(chunk).await.is_err()
            || s.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

/// `url?k=v&…` (the values used here need no escaping).
fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{url}?{}", q.join("&"))
}

async fn json_of(resp: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.unwrap();
    let v =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {status} {text:?}"));
    (status, ct, v)
}

// ---------------------------------------------------------------------------
// GET handshake (store-independent: embedded only)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_echoes_the_challenge_or_refuses() {
    let h = Harness::start(StoreKind::Embedded).await;
    for channel in ["whatsapp", "instagram"] {
        let url = format!("{}/webhooks/{channel}", h.base);
        // A challenge with characters that must come back verbatim, not JSON-quoted.
        let challenge = "1158201444-abc_XYZ";
        let resp = h
            .http
            .get(with_query(
                &url,
                &[
                    ("hub.mode", "subscribe"),
                    ("hub.challenge", challenge),
                    ("hub.verify_token", VERIFY_TOKEN),
                ],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{channel}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/plain"), "{channel}: content-type {ct}");
        assert_eq!(resp.text().await.unwrap(), challenge, "{channel}");

        for (mode, token, why) in [
            ("subscribe", "wrong-token", "wrong token"),
            ("subscribe", "", "empty token"),
            ("unsubscribe", VERIFY_TOKEN, "wrong mode"),
            ("", VERIFY_TOKEN, "empty mode"),
        ] {
            let resp = h
                .http
                .get(with_query(
                    &url,
                    &[
                        ("hub.mode", mode),
                        ("hub.challenge", challenge),
                        ("hub.verify_token", token),
                    ],
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 403, "{channel}: {why}");
            assert!(
                !resp.text().await.unwrap().contains(challenge),
                "{channel}: {why} must not echo the challenge"
            );
        }
        // Missing parameters entirely.
        let resp = h.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{channel}: no parameters");
        // Token and mode right but no challenge.
        let resp = h
            .http
            .get(with_query(
                &url,
                &[
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", VERIFY_TOKEN),
                ],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{channel}: no challenge");
    }
    h.stop().await;
}

// ---------------------------------------------------------------------------
// POST
// ---------------------------------------------------------------------------

async fn bad_signatures_are_refused_and_store_nothing(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281200001001";
    let id = payloads::new_wamid();
    let body = payloads::wa_text(who, "Rina", &id, "halo kak", h.clock.now_ms() / 1000)
        .to_string()
        .into_bytes();
    let good = sign(APP_SECRET.as_bytes(), &body);
    let mut tampered = body.clone();
    // Same length, one character changed inside the text.
    let pos = tampered
        .windows(4)
        .position(|w| w == b"halo")
        .expect("text in body");
    tampered[pos] = b'H';
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("missing header", body.clone(), None),
        ("empty header", body.clone(), Some(String::new())),
        (
            "no sha256= prefix",
            body.clone(),
            Some(good[7..].to_string()),
        ),
        (
            "sha1 scheme",
            body.clone(),
            Some(format!("sha1={}", &good[7..47])),
        ),
        (
            "not hex",
            body.clone(),
            Some(format!("sha256={}", "z".repeat(64))),
        ),
        ("too short", body.clone(), Some(good[..40].to_string())),
        (
            "wrong secret",
            body.clone(),
            Some(sign(b"someone-elses-secret", &body)),
        ),
        ("tampered body", tampered, Some(good.clone())),
    ];
    for (why, bytes, sig) in cases {
        let resp = post_raw(&h, "whatsapp", bytes, sig.as_deref()).await;
        let (status, _, v) = json_of(resp).await;
        assert_eq!(status, 401, "{why}: {v}");
        assert_eq!(v["error"]["code"], json!("bad_signature"), "{why}: {v}");
    }
    // Instagram checks the same way.
    let ig = payloads::ig_text("9100000000001", "mid.BADSIG1", "halo", h.clock.now_ms())
        .to_string()
        .into_bytes();
    let resp = post_raw(&h, "instagram", ig.clone(), Some(&sign(b"nope", &ig))).await;
    assert_eq!(resp.status(), 401, "instagram wrong secret");

    assert_eq!(inbound_jobs(&h).await, 0, "nothing was queued");
    assert!(h.mock.requests().is_empty(), "nothing was sent");

    // Nothing was remembered either: the genuine delivery of the same message
    // afterwards is new, not a "duplicate" of a refused one.
    let resp = h.post_signed("whatsapp", &body).await;
    let (status, _, v) = json_of(resp).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["new"], json!(1), "{v}");
    h.wait_texts_to(who, 1).await;
    h.stop().await;
}

async fn malformed_json_with_a_valid_signature_is_400(store: StoreKind) {
    let h = Harness::start(store).await;
    for (channel, body) in [
        (
            "whatsapp",
            &b"{\"object\": \"whatsapp_business_account\", \"entry\": ["[..],
        ),
        ("instagram", &b"not json at all"[..]),
        ("whatsapp", &b""[..]),
        ("whatsapp", &b"[1, 2, 3]"[..]),
    ] {
        let resp = h.post_signed(channel, body).await;
        let (status, ct, v) = json_of(resp).await;
        assert_eq!(status, 400, "{channel} {body:?}: {v}");
        assert!(
            ct.as_deref()
                .is_some_and(|c| c.starts_with("application/json")),
            "{ct:?}"
        );
        assert_eq!(v["error"]["code"], json!("malformed_payload"), "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
    assert_eq!(inbound_jobs(&h).await, 0);
    h.stop().await;
}

async fn oversized_body_is_413(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.server.max_body_bytes = 4096).await;
    let who = "6281200001003";
    let big = "x".repeat(5000);
    let body = payloads::wa_text(who, "Big", &payloads::new_wamid(), &big, 1)
        .to_string()
        .into_bytes();
    assert!(body.len() > 4096);
    let (status, _, v) = json_of(h.post_signed("whatsapp", &body).await).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"]["code"], json!("payload_too_large"), "{v}");
    // Without a Content-Length (chunked), the limit holds while reading.
    let status = post_chunked(&h, "/webhooks/whatsapp", &body).await;
    assert_eq!(status, 413, "chunked body over the limit");
    assert_eq!(inbound_jobs(&h).await, 0);
    // Just under the limit is fine.
    let small = payloads::wa_text(who, "Small", &payloads::new_wamid(), "halo kak", 1)
        .to_string()
        .into_bytes();
    assert!(small.len() < 4096);
    assert_eq!(h.post_signed("whatsapp", &small).await.status(), 200);
    h.stop().await;
}

async fn every_inbound_fixture_is_accepted(store: StoreKind) {
    let h = Harness::start(store).await;
    let fixtures = inbound_fixtures();
    assert!(fixtures.len() >= 21, "fixtures missing: {}", fixtures.len());
    let mut events = 0;
    for (name, bytes) in &fixtures {
        // Signed over the bytes exactly as stored (emoji written literally).
        let resp = h.post_signed(channel_of(name), bytes).await;
        let (status, _, v) = json_of(resp).await;
        assert_eq!(status, 200, "{name}: {v}");
        let received = v["received"].as_u64().expect("received count");
        assert!(received >= 1, "{name} yielded no event: {v}");
        assert_eq!(v["new"].as_u64(), Some(received), "{name}: {v}");
        events += received;
    }
    // Every fixture is a separate event (distinct idempotency keys).
    assert!(events as usize >= fixtures.len());
    // Sending them all again is all duplicates.
    for (name, bytes) in &fixtures {
        let (status, _, v) = json_of(h.post_signed(channel_of(name), bytes).await).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(v["new"], json!(0), "{name} redelivered: {v}");
    }
    h.stop().await;
}

async fn redelivered_webhook_is_processed_once(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281200001005";
    let body = payloads::wa_text(
        who,
        "Rina",
        &payloads::new_wamid(),
        "halo kak",
        h.clock.now_ms() / 1000,
    )
    .to_string()
    .into_bytes();
    let (s1, _, v1) = json_of(h.post_signed("whatsapp", &body).await).await;
    assert_eq!((s1, &v1["new"]), (200, &json!(1)), "{v1}");
    h.wait_texts_to(who, 1).await;
    // Meta redelivers after we already handled it: still 200, not queued again.
    let (s2, _, v2) = json_of(h.post_signed("whatsapp", &body).await).await;
    assert_eq!(s2, 200);
    assert_eq!(v2["new"], json!(0), "{v2}");
    assert_eq!(v2["duplicates"], json!(1), "{v2}");
    h.drained().await;
    assert_eq!(h.texts_to(who).len(), 1, "one reply: {:?}", h.texts_to(who));
    h.stop().await;
}

async fn concurrent_redeliveries_are_processed_once(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281200001006";
    let body = payloads::wa_text(
        who,
        "Rina",
        &payloads::new_wamid(),
        "halo kak",
        h.clock.now_ms() / 1000,
    )
    .to_string()
    .into_bytes();
    let posts = (0..8).map(|_| h.post_signed("whatsapp", &body));
    let responses = futures_util::future::join_all(posts).await;
    let mut fresh = 0;
    for r in responses {
        let (status, _, v) = json_of(r).await;
        assert_eq!(status, 200, "{v}");
        fresh += v["new"].as_u64().unwrap();
    }
    assert_eq!(fresh, 1, "exactly one of the concurrent deliveries is new");
    h.wait_texts_to(who, 1).await;
    h.drained().await;
    assert_eq!(h.texts_to(who).len(), 1);
    h.stop().await;
}

async fn batched_messages_are_all_handled(store: StoreKind) {
    let h = Harness::start(store).await;
    // The fixture's messages were sent at 1778577000/1778577003 (a Tuesday,
    // 16:10 WIB, inside business hours); put the clock just after them so the
    // 24-hour window is open and the bot answers both.
    h.clock
        .set(jiff::Timestamp::from_second(1_778_577_005).unwrap());
    let bytes = std::fs::read(fixtures_dir().join("wa_batched_two_messages.json")).unwrap();
    let (status, _, v) = json_of(h.post_signed("whatsapp", &bytes).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["received"].clone(), v["new"].clone()),
        (json!(2), json!(2))
    );
    let who = "6281234567890";
    // "halo" gets the greeting, "saya mau bicara dengan CS" a handoff notice.
    let texts = h.wait_texts_to(who, 2).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    let case = h.current_case(who).await.expect("a case");
    let (status, conv) = h
        .api(
            "sari",
            Method::GET,
            &format!("/api/v1/conversations/{case}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{conv}");
    let said: Vec<&str> = conv["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["speaker"]["kind"] == json!("customer"))
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(
        said,
        ["halo", "saya mau bicara dengan CS"],
        "in order: {conv}"
    );
    assert_eq!(
        conv["state"],
        json!("queued"),
        "the second asked for a person"
    );
    h.stop().await;
}

async fn unknown_fields_and_types_are_acknowledged(store: StoreKind) {
    let h = Harness::start(store).await;
    let bodies = [
        (
            "whatsapp",
            json!({"object": "whatsapp_business_account", "entry": [{"id": "104857600012345", "changes": [
                {"field": "account_update", "value": {"phone_number": "6281190001234", "event": "VERIFIED_ACCOUNT"}}
            ]}]}),
        ),
        (
            "whatsapp",
            json!({"object": "whatsapp_business_account", "entry": [{"id": "104857600012345", "changes": [
                {"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "6281190001234", "phone_number_id": common::harness::PHONE_NUMBER_ID},
                    "contacts": [{"profile": {"name": "Dewi"}, "wa_id": "6281200001008"}],
                    "messages": [{"from": "6281200001008", "id": payloads::new_wamid(), "timestamp": "1795402800",
                                  "type": "hologram", "hologram": {"depth": 3}}]}}
            ]}]}),
        ),
        (
            "whatsapp",
            json!({"object": "page", "entry": [{"id": "1", "time": 1, "messaging": []}]}),
        ),
        (
            "instagram",
            json!({"object": "instagram", "entry": [{"id": common::harness::IG_ACCOUNT_ID, "time": 1, "changes": [
                {"field": "comments", "value": {"id": "c1", "text": "bagus", "from": {"id": "1", "username": "x"}}}
            ]}]}),
        ),
        (
            "instagram",
            json!({"object": "instagram", "entry": [{"id": common::harness::IG_ACCOUNT_ID, "time": 1, "messaging": [
                {"sender": {"id": "9100000000008"}, "recipient": {"id": common::harness::IG_ACCOUNT_ID},
                 "timestamp": 1, "teleport": {"to": "mars"}}
            ]}]}),
        ),
    ];
    for (channel, body) in bodies {
        let (status, _, v) =
            json_of(h.post_signed(channel, body.to_string().as_bytes()).await).await;
        assert_eq!(status, 200, "{channel} {body}: {v}");
    }
    h.stop().await;
}

async fn disabled_channel_is_404(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.instagram.enabled = false).await;
    let body = payloads::ig_text("9100000000009", "mid.DISABLED1", "halo", h.clock.now_ms())
        .to_string()
        .into_bytes();
    let (status, _, v) = json_of(h.post_signed("instagram", &body).await).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], json!("channel_disabled"), "{v}");
    // The handshake of a disabled channel must not succeed either: Meta would
    // then subscribe a URL whose every POST is refused.
    let resp = h
        .http
        .get(with_query(
            &format!("{}/webhooks/instagram", h.base),
            &[
                ("hub.mode", "subscribe"),
                ("hub.challenge", "12345"),
                ("hub.verify_token", VERIFY_TOKEN),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 200, "handshake on a disabled channel");
    assert_eq!(inbound_jobs(&h).await, 0);
    // The other channel is unaffected.
    let who = "6281200001009";
    h.customer_says(who, "Rina", "halo kak").await;
    h.wait_texts_to(who, 1).await;
    h.stop().await;
}

async fn unsigned_webhooks_only_with_allow_unsigned_and_no_secret(store: StoreKind) {
    // A dry-run trial: unsigned webhooks are only accepted without an access
    // token (with one, startup refuses the config; see tests/cli.rs).
    let h = Harness::start_with(store, |c| {
        c.whatsapp.app_secret = None;
        c.whatsapp.access_token = None;
        c.whatsapp.allow_unsigned = true;
        // Instagram keeps its secret: allow_unsigned does not switch checks off.
        c.instagram.access_token = None;
        c.instagram.allow_unsigned = true;
    })
    .await;
    let who = "6281200001010";
    let body = payloads::wa_text(
        who,
        "Tamu",
        &payloads::new_wamid(),
        "halo kak",
        h.clock.now_ms() / 1000,
    )
    .to_string()
    .into_bytes();
    let (status, _, v) = json_of(post_raw(&h, "whatsapp", body, None).await).await;
    assert_eq!(status, 200, "{v}");
    // The bot answers (recorded as a dry run: there is no access token).
    h.until("the bot answered the unsigned message", || async {
        let Some(case) = h.current_case(who).await else {
            return false;
        };
        let t = h.app.store().transcript(&case).await.expect("store");
        t.iter()
            .any(|e| matches!(e.speaker, balas::store::Speaker::Bot { .. }))
    })
    .await;
    assert!(h.texts_to(who).is_empty(), "nothing was sent for real");

    let ig = payloads::ig_text("9100000000010", "mid.UNSIGNED1", "halo", h.clock.now_ms())
        .to_string()
        .into_bytes();
    let resp = post_raw(&h, "instagram", ig, None).await;
    assert_eq!(resp.status(), 401, "a configured secret is always checked");
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Store outage (Redis only)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_is_503_so_meta_retries() {
    let store = StoreKind::redis();
    let StoreKind::Redis(redis) = &store else {
        unreachable!()
    };
    let redis = redis.clone();
    let h = Harness::start(store).await;
    let who = "6281200001011";
    let body = payloads::wa_text(
        who,
        "Rina",
        &payloads::new_wamid(),
        "halo kak",
        h.clock.now_ms() / 1000,
    )
    .to_string()
    .into_bytes();

    redis.kill();
    let started = Instant::now();
    let (status, _, v) = json_of(h.post_signed("whatsapp", &body).await).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], json!("store_unavailable"), "{v}");
    // Well inside Meta's 20 s webhook timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "503 took {:?}",
        started.elapsed()
    );

    // Meta retries once the store is back: the same delivery is accepted as new
    // (the failed attempt remembered nothing) and answered once.
    redis.start_again();
    // The client reconnects by itself; until it has, Meta would get 503 again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let accepted = loop {
        let resp = h.post_signed("whatsapp", &body).await;
        if resp.status() == 200 {
            break resp.json::<Value>().await.unwrap();
        }
        assert_eq!(resp.status(), 503);
        assert!(Instant::now() < deadline, "store did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(accepted["new"], json!(1), "{accepted}");
    h.wait_texts_to(who, 1).await;
    h.drained().await;
    assert_eq!(h.texts_to(who).len(), 1);
    h.stop().await;
}
