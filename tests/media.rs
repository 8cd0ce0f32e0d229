//! Files end to end (issue 12), on both state stores and on the S3 media
//! backend: customers' photos reach the media store through the download job
//! and agents download the identical bytes, only when they may see the case;
//! agents' files reach the Graph mock (WhatsApp by upload, Instagram by a
//! signed link the mock fetches); refused files get 413/415/422; a failed
//! download stays visible with its reason; the bot acknowledges expected
//! files and answers voice notes; read receipts and typing indicators go out
//! once; retention deletes old files.

#[macro_use]
mod common;

use std::future::Future;
use std::time::Duration;

use balas::channels::Channel;
use balas::config::HumanDuration;
use common::harness::{Harness, StoreKind, token};
use common::payloads;
use common::s3_server::S3Server;
use reqwest::Method;
use serde_json::{Value, json};

const PNG: &[u8] = include_bytes!("data/media/barang-rusak.png");
const PDF: &[u8] = include_bytes!("data/media/nota-servis.pdf");
const COMPLAINT: &str = "barang saya rusak, layarnya retak";

fn now_s(h: &Harness) -> i64 {
    use balas::clock::Clock;
    h.clock.now_ms() / 1000
}

/// A WhatsApp customer sends a file the mock serves; returns the message id.
async fn wa_sends_file(
    h: &Harness,
    wa_id: &str,
    kind: &str,
    bytes: &[u8],
    mime: &str,
    extra: Value,
) -> String {
    let media = h.mock.add_whatsapp_media(bytes, mime);
    let mut object = json!({ "id": media.id, "mime_type": mime, "sha256": media.sha256_base64 });
    if let (Some(o), Some(more)) = (object.as_object_mut(), extra.as_object()) {
        o.extend(more.clone());
    }
    let id = payloads::new_wamid();
    let body = payloads::wa_media(wa_id, "Budi", &id, kind, object, now_s(h));
    let resp = h.post_signed("whatsapp", body.to_string().as_bytes()).await;
    assert_eq!(resp.status(), 200);
    id
}

async fn ig_says(h: &Harness, igsid: &str, text: &str) {
    use balas::clock::Clock;
    let mid = format!("mid.{}", uuid::Uuid::now_v7().simple());
    let body = payloads::ig_text(igsid, &mid, text, h.clock.now_ms());
    assert_eq!(
        h.post_signed("instagram", body.to_string().as_bytes())
            .await
            .status(),
        200
    );
}

async fn ig_sends_files(h: &Harness, igsid: &str, files: &[(&str, &str)]) {
    use balas::clock::Clock;
    let mid = format!("mid.{}", uuid::Uuid::now_v7().simple());
    let body = payloads::ig_attachments(igsid, &mid, files, None, h.clock.now_ms());
    assert_eq!(
        h.post_signed("instagram", body.to_string().as_bytes())
            .await
            .status(),
        200
    );
}

/// Polls `check` (bounded) until it returns a value.
async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn case_of(h: &Harness, channel: Channel, id: &str) -> String {
    poll("the contact has a case", || async {
        h.app
            .store()
            .contact(channel, id)
            .await
            .unwrap()
            .and_then(|c| c.current_case)
    })
    .await
}

/// The files on a conversation's transcript, as `agent` sees them.
async fn files_of(h: &Harness, agent: &str, case: &str) -> Vec<Value> {
    let (status, view) = h
        .api(
            agent,
            Method::GET,
            &format!("/api/v1/conversations/{case}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    view["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["attachments"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Waits until the case has `n` files whose status is not `pending`.
async fn settled_files(h: &Harness, case: &str, n: usize) -> Vec<Value> {
    poll(&format!("{n} files downloaded or failed"), || async {
        let files = files_of(h, "sari", case).await;
        (files.len() >= n && files.iter().all(|f| f["status"] != "pending")).then_some(files)
    })
    .await
}

async fn get(h: &Harness, agent: &str, path: &str) -> reqwest::Response {
    h.http
        .get(format!("{}{path}", h.base))
        .bearer_auth(token(agent))
        .send()
        .await
        .unwrap()
}

async fn upload(
    h: &Harness,
    agent: &str,
    case: &str,
    bytes: Vec<u8>,
    mime: &str,
    filename: &str,
    caption: Option<&str>,
) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(filename.to_string())
        .mime_str(mime)
        .unwrap();
    let mut form = reqwest::multipart::Form::new().part("file", part);
    if let Some(c) = caption {
        form = form.text("caption", c.to_string());
    }
    let resp = h
        .http
        .post(format!(
            "{}/api/v1/conversations/{case}/attachments",
            h.base
        ))
        .bearer_auth(token(agent))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Claims `case` once it waits in the queue (the handoff may still be on its
/// way when the test asks).
async fn claim(h: &Harness, agent: &str, case: &str) {
    let body = poll("the case can be claimed", || async {
        let (status, body) = h
            .api(agent, Method::POST, "/api/v1/queue/claim", Some(json!({})))
            .await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(body["id"], json!(case), "claimed the expected case");
}

/// Budi works only the `refunds` queue, so complaints are not his to see.
fn budi_on_refunds(c: &mut balas::config::Config) {
    for a in &mut c.agents {
        if a.id == "budi" {
            a.queues = vec!["refunds".into()];
        }
    }
}

/// A WhatsApp and an Instagram photo reach the media store; the agent who owns
/// each case downloads the identical bytes with the safety headers; an agent
/// of another queue gets 404, a marketer 403 (the harness must be started
/// with [`budi_on_refunds`]).
async fn customers_files_reach_the_store_and_permitted_agents(h: &Harness) {
    let wa = "6281300001001";
    h.customer_says(wa, "Budi", COMPLAINT).await;
    let case = case_of(h, Channel::WhatsApp, wa).await;
    wa_sends_file(
        h,
        wa,
        "image",
        PNG,
        "image/png",
        json!({"caption": "ini fotonya"}),
    )
    .await;
    let files = settled_files(h, &case, 1).await;
    let file = &files[0];
    assert_eq!(file["status"], "stored", "{file}");
    assert_eq!(file["kind"], "image");
    assert_eq!(file["mime_type"], "image/png");
    assert_eq!(file["size"], json!(PNG.len()));
    assert_eq!(file["caption"], "ini fotonya");
    let url = file["url"].as_str().unwrap().to_string();
    assert_eq!(
        url,
        format!("/api/v1/media/{}", file["id"].as_str().unwrap())
    );
    // While it waits in the queue, the bot says the photo arrived.
    let texts = h.wait_texts_to(wa, 2).await;
    assert!(
        texts.iter().any(|t| t.contains("foto sudah kami terima")),
        "{texts:?}"
    );

    claim(h, "siti", &case).await;
    let resp = get(h, "siti", &url).await;
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), PNG, "identical bytes");
    assert_eq!(get(h, "budi", &url).await.status(), 404, "not budi's queue");
    assert_eq!(
        get(h, "maya", &url).await.status(),
        403,
        "marketers see no files"
    );
    assert_eq!(
        get(h, "sari", &url).await.status(),
        200,
        "supervisors see all"
    );
    let download = get(h, "siti", &format!("{url}?download=1")).await;
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(
        h.http
            .get(format!("{}{url}", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "no token, no file"
    );
    assert_eq!(get(h, "siti", "/api/v1/media/..%2Fetc").await.status(), 404);

    // Instagram: the CDN does not say what the file is; the bytes do.
    let ig = "17841400000001001";
    ig_says(h, ig, COMPLAINT).await;
    let ig_case = case_of(h, Channel::Instagram, ig).await;
    let cdn = h.mock.add_cdn_file(PNG, "application/octet-stream");
    ig_sends_files(h, ig, &[("image", &cdn)]).await;
    let files = settled_files(h, &ig_case, 1).await;
    assert_eq!(files[0]["status"], "stored", "{}", files[0]);
    assert_eq!(files[0]["mime_type"], "image/png");
    claim(h, "siti", &ig_case).await;
    let resp = get(h, "siti", files[0]["url"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), PNG);
    assert_eq!(
        get(h, "budi", files[0]["url"].as_str().unwrap())
            .await
            .status(),
        404
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
}

async fn customers_files(store: StoreKind) {
    let h = Harness::start_with(store, budi_on_refunds).await;
    customers_files_reach_the_store_and_permitted_agents(&h).await;
    h.stop().await;
}

/// An agent's PDF reaches WhatsApp as a document message naming an upload of
/// the same bytes, and Instagram as a link the platform fetches; refused
/// files answer 413, 415 and 422 and send nothing.
async fn agents_files(store: StoreKind) {
    let label =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/media/label-retur.png");
    let h = Harness::start_with(store, |c| {
        c.canned = vec![balas::config::CannedConfig {
            shortcut: "retur".into(),
            title: "Label retur".into(),
            text: "Ini label returnya, Kak.".into(),
            attachment: Some(label),
        }];
    })
    .await;
    let wa = "6281300001002";
    h.customer_says(wa, "Budi", COMPLAINT).await;
    let case = case_of(&h, Channel::WhatsApp, wa).await;
    claim(&h, "siti", &case).await;
    let (status, body) = upload(
        &h,
        "siti",
        &case,
        PDF.to_vec(),
        "application/pdf",
        "nota servis.pdf",
        Some("Nota servis Anda"),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["attachment"]["kind"], "document");
    h.until("the document reaches the Graph mock", || async {
        h.mock
            .requests()
            .iter()
            .any(|r| r.body["type"] == "document")
    })
    .await;
    let doc = h
        .mock
        .requests()
        .into_iter()
        .find(|r| r.body["type"] == "document")
        .unwrap();
    assert_eq!(doc.body["to"], json!(wa));
    assert_eq!(doc.body["document"]["caption"], "Nota servis Anda");
    assert_eq!(doc.body["document"]["filename"], "nota servis.pdf");
    let uploads = h.mock.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(doc.body["document"]["id"], json!(uploads[0].id));
    assert_eq!(uploads[0].bytes, PDF, "the upload carries the file's bytes");
    assert_eq!(uploads[0].mime_type, "application/pdf");
    // The transcript shows the agent's file, which the agent can open.
    let files = files_of(&h, "siti", &case).await;
    let ours = files.iter().find(|f| f["direction"] == "outbound").unwrap();
    let resp = get(&h, "siti", ours["url"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), PDF);

    // Refused before anything is sent.
    let cases: [(Vec<u8>, &str, &str, u16, &str); 5] = [
        (
            b"<html><script>alert(1)</script></html>".to_vec(),
            "text/html",
            "x.html",
            415,
            "unsupported_media_type",
        ),
        (
            b"<svg onload=alert(1)></svg>".to_vec(),
            "image/png",
            "x.png",
            415,
            "unsupported_media_type",
        ),
        (
            Vec::new(),
            "application/pdf",
            "kosong.pdf",
            422,
            "empty_file",
        ),
        (
            [PNG, &vec![0u8; 5_000_001]].concat(),
            "image/png",
            "besar.png",
            413,
            "payload_too_large",
        ),
        (
            PDF.to_vec(),
            "application/zip",
            "arsip.zip",
            415,
            "unsupported_media_type",
        ),
    ];
    for (bytes, mime, name, want, code) in cases {
        let (status, body) = upload(&h, "siti", &case, bytes, mime, name, None).await;
        assert_eq!(status, want, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
    }
    let (status, _) = upload(
        &h,
        "budi",
        &case,
        PDF.to_vec(),
        "application/pdf",
        "x.pdf",
        None,
    )
    .await;
    assert_eq!(status, 409, "only the owner sends");
    assert_eq!(h.mock.uploads().len(), 1, "nothing refused was uploaded");
    let files_sent: Vec<Value> = h
        .mock
        .requests()
        .into_iter()
        .filter(|r| {
            ["image", "video", "audio", "document"]
                .iter()
                .any(|k| r.body["type"] == *k)
        })
        .map(|r| r.body)
        .collect();
    assert_eq!(
        files_sent.len(),
        1,
        "only the document was sent: {files_sent:?}"
    );

    // A canned response's file follows its text; its path is never shown.
    let (status, canned) = h.api("siti", Method::GET, "/api/v1/canned", None).await;
    assert_eq!(status, 200);
    assert_eq!(canned["canned"][0]["file"]["filename"], "label-retur.png");
    assert!(!canned.to_string().contains("tests/data"), "{canned}");
    let (status, body) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/messages"),
            Some(json!({"text": "Ini label returnya, Kak.", "canned": "retur"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    h.until("the canned response's picture is sent", || async {
        h.mock
            .requests()
            .iter()
            .any(|r| r.body["to"] == json!(wa) && r.body["type"] == "image")
    })
    .await;
    assert_eq!(
        h.mock.uploads().last().unwrap().bytes,
        include_bytes!("data/media/label-retur.png")
    );
    let (status, _) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/messages"),
            Some(json!({"text": "x", "canned": "nope"})),
        )
        .await;
    assert_eq!(status, 400, "an unknown canned response");

    // Instagram: the platform fetches the file from our signed link.
    let ig = "17841400000001002";
    ig_says(&h, ig, COMPLAINT).await;
    let ig_case = case_of(&h, Channel::Instagram, ig).await;
    claim(&h, "budi", &ig_case).await;
    let (status, body) = upload(
        &h,
        "budi",
        &ig_case,
        PDF.to_vec(),
        "application/pdf",
        "nota.pdf",
        Some("Nota Anda"),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    h.until("Instagram fetched the file", || async {
        !h.mock.fetched().is_empty()
    })
    .await;
    let fetched = h.mock.fetched().remove(0);
    assert_eq!(fetched.bytes, PDF);
    assert_eq!(fetched.content_type.as_deref(), Some("application/pdf"));
    assert!(
        fetched
            .url
            .starts_with(&format!("{}/media/public/", h.base)),
        "{}",
        fetched.url
    );
    // Instagram shows no caption with a file: it follows as a text.
    h.until("the caption follows as a text", || async {
        h.texts_to(ig).iter().any(|t| t == "Nota Anda")
    })
    .await;
    // The link works for nobody else and not after its expiry.
    let tampered = fetched.url.replace("sig=", "sig=00");
    assert_eq!(h.http.get(&tampered).send().await.unwrap().status(), 404);
    h.clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(h.http.get(&fetched.url).send().await.unwrap().status(), 410);
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// A file whose link expired before it could be downloaded is shown as failed
/// with the reason, not silently missing.
async fn failed_downloads_are_visible(store: StoreKind) {
    let h = Harness::start(store).await;
    let ig = "17841400000001003";
    ig_says(&h, ig, COMPLAINT).await;
    let case = case_of(&h, Channel::Instagram, ig).await;
    let cdn = h.mock.add_cdn_file(PNG, "image/png");
    h.mock.expire_cdn_file(&cdn);
    ig_sends_files(&h, ig, &[("image", &cdn)]).await;
    let files = settled_files(&h, &case, 1).await;
    assert_eq!(files[0]["status"], "failed", "{}", files[0]);
    assert!(
        files[0]["error"].as_str().unwrap().contains("404"),
        "{}",
        files[0]
    );
    let resp = get(&h, "sari", files[0]["url"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 410);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "download_failed");
    h.stop().await;
}

/// The bot acknowledges a photo it asked for (and sends a rule's configured
/// file), answers an unexpected photo with the fallback, and hands a voice
/// note to a person during business hours but asks to type after hours.
async fn the_bot_understands_files(store: StoreKind) {
    let pdf =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/media/nota-servis.pdf");
    let h = Harness::start_with(store, |c| {
        c.intents.attachments.insert("warranty".into(), pdf);
    })
    .await;
    let wa = "6281300001004";
    h.customer_says(wa, "Budi", "mau klaim garansi").await;
    h.until("the warranty reply and its file", || async {
        h.mock
            .requests()
            .iter()
            .any(|r| r.body["to"] == json!(wa) && r.body["type"] == "document")
    })
    .await;
    let before = h.texts_to(wa).len();
    wa_sends_file(&h, wa, "image", PNG, "image/png", json!({})).await;
    let texts = h.wait_texts_to(wa, before + 1).await;
    let ack = texts.last().unwrap();
    assert!(ack.contains("foto sudah kami terima"), "{ack}");
    // A second photo right after gets no second thank-you.
    wa_sends_file(&h, wa, "image", PNG, "image/png", json!({})).await;
    let case = case_of(&h, Channel::WhatsApp, wa).await;
    settled_files(&h, &case, 2).await;
    // Its turn is over (and its reply, if any, sent) only once the workers
    // are idle: the file settling says nothing about the turn.
    h.idle().await;
    assert_eq!(h.texts_to(wa).len(), before + 1, "{:?}", h.texts_to(wa));

    // Out of the blue, a photo gets the fallback's question.
    let other = "6281300001005";
    wa_sends_file(&h, other, "image", PNG, "image/png", json!({})).await;
    let texts = h.wait_texts_to(other, 1).await;
    assert!(
        texts[0].contains("belum memahami") || texts[0].contains("belum menangkap"),
        "{texts:?}"
    );

    // A voice note at 10:00 on a Monday goes to a person.
    let voice = "6281300001006";
    wa_sends_file(
        &h,
        voice,
        "audio",
        b"OggS\0\x02voice",
        "audio/ogg",
        json!({"voice": true}),
    )
    .await;
    let texts = h.wait_texts_to(voice, 1).await;
    assert!(
        texts[0].contains("pesan suara Anda sudah kami terima"),
        "{texts:?}"
    );
    let case = case_of(&h, Channel::WhatsApp, voice).await;
    let conv = h.app.store().conversation(&case).await.unwrap().unwrap();
    assert_eq!(conv.state, balas::conversation::State::Queued);

    // At 20:00 nobody can listen: please type.
    h.clock.advance(Duration::from_secs(10 * 3600));
    let late = "6281300001007";
    wa_sends_file(
        &h,
        late,
        "audio",
        b"OggS\0\x02voice",
        "audio/ogg",
        json!({"voice": true}),
    )
    .await;
    let texts = h.wait_texts_to(late, 1).await;
    assert!(
        texts[0].contains("belum dapat memutar pesan suara"),
        "{texts:?}"
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// Mark-as-read with the typing indicator: once per answered message (a
/// redelivered webhook sends nothing more), and once per 20 s while an agent
/// types.
async fn read_receipts_go_out_once(store: StoreKind) {
    let h = Harness::start(store).await;
    let wa = "6281300001008";
    let id = payloads::new_wamid();
    let body = payloads::wa_text(wa, "Budi", &id, COMPLAINT, now_s(&h)).to_string();
    assert_eq!(
        h.post_signed("whatsapp", body.as_bytes()).await.status(),
        200
    );
    h.wait_texts_to(wa, 1).await;
    let reads = |h: &Harness| h.mock.receipts();
    h.until("the message is marked read", || async {
        !reads(&h).is_empty()
    })
    .await;
    let read = &reads(&h)[0];
    assert_eq!(read.body["message_id"], json!(id));
    assert_eq!(
        h.post_signed("whatsapp", body.as_bytes()).await.status(),
        200
    );
    let case = case_of(&h, Channel::WhatsApp, wa).await;
    claim(&h, "siti", &case).await;
    use balas::clock::Clock;
    let bucket = h.clock.now_ms() / balas::engine::receipts::TYPING_EVERY_MS;
    for _ in 0..3 {
        let (status, _) = h
            .api(
                "siti",
                Method::POST,
                &format!("/api/v1/conversations/{case}/typing"),
                None,
            )
            .await;
        assert_eq!(status, 202);
    }
    let same_bucket = bucket == h.clock.now_ms() / balas::engine::receipts::TYPING_EVERY_MS;
    h.until("the agent's typing indicator", || async {
        reads(&h).len() >= 2
    })
    .await;
    let reads = reads(&h);
    if same_bucket {
        assert_eq!(
            reads.len(),
            2,
            "one for the bot, one for the agent: {reads:?}"
        );
    }
    assert!(
        reads
            .iter()
            .all(|r| r.body["typing_indicator"]["type"] == "text"
                || r.body.get("typing_indicator").is_none())
    );
    assert_eq!(
        h.api(
            "budi",
            Method::POST,
            &format!("/api/v1/conversations/{case}/typing"),
            None
        )
        .await
        .0,
        409,
        "only the owner types"
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// Files older than `[retention] media` become tombstones and their bytes leave
/// the media store.
async fn retention_deletes_old_files(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.retention.media = HumanDuration::secs(86_400)).await;
    let wa = "6281300001009";
    h.customer_says(wa, "Budi", COMPLAINT).await;
    let case = case_of(&h, Channel::WhatsApp, wa).await;
    wa_sends_file(&h, wa, "image", PNG, "image/png", json!({})).await;
    let files = settled_files(&h, &case, 1).await;
    let hash = balas::media::ContentHash::parse(files[0]["sha256"].as_str().unwrap()).unwrap();
    assert!(h.app.files().media().size(&hash).await.unwrap().is_some());
    h.clock.advance(Duration::from_secs(2 * 86_400));
    // The sweep writes the tombstone first and deletes the bytes after it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status = files_of(&h, "sari", &case).await[0]["status"].clone();
        let size = h.app.files().media().size(&hash).await.unwrap();
        if status == "expired" && size.is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the file expired and its bytes are gone: status {status}, stored size {size:?}"
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    assert_eq!(
        get(&h, "sari", files[0]["url"].as_str().unwrap())
            .await
            .status(),
        410
    );
    h.stop().await;
}

on_both_stores!(
    customers_files,
    agents_files,
    failed_downloads_are_visible,
    the_bot_understands_files,
    read_receipts_go_out_once,
    retention_deletes_old_files,
);

/// The same journey with the files in an S3-compatible bucket (moto).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_files_on_the_s3_media_backend() {
    let s3 = S3Server::start();
    let media = s3.media_config("balas-media-e2e");
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        c.media = media;
        budi_on_refunds(c);
    })
    .await;
    customers_files_reach_the_store_and_permitted_agents(&h).await;
    assert_eq!(h.app.files().media().backend_name(), "s3");
    h.stop().await;
}
