//! Broadcasts end to end (issue 7): created through the API as a marketer,
//! paced by the manual clock, sent to the Graph mock; counts checked against
//! what the mock actually received.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use balas::channels::Channel;
use balas::clock::Clock;
use common::harness::{Harness, MONDAY_10_WIB_MS, StoreKind};
use common::payloads;
use reqwest::Method;
use serde_json::{Value, json};

fn number(i: usize) -> String {
    format!("62815{i:08}")
}

fn recipients(range: std::ops::Range<usize>) -> Vec<Value> {
    range
        .map(|i| json!({"to": number(i), "variables": {"name": format!("Pelanggan {i}")}}))
        .collect()
}

fn template_body(name: &str, to: Vec<Value>, rate: f64) -> Value {
    json!({
        "name": name,
        "channel": "whatsapp",
        "message": {"template": {"name": name, "language": "id", "body_parameters": ["{{name}}"]}},
        "audience": {"recipients": to},
        "rate_per_sec": rate,
    })
}

async fn create(h: &Harness, body: Value) -> Value {
    let (status, v) = h
        .api("maya", Method::POST, "/api/v1/broadcasts", Some(body))
        .await;
    assert_eq!(status, 201, "{v}");
    v
}

async fn get(h: &Harness, id: &str) -> Value {
    let (status, v) = h
        .api(
            "maya",
            Method::GET,
            &format!("/api/v1/broadcasts/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Requests the mock received per recipient for the template `name`.
fn sent_per_recipient(h: &Harness, name: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in h.mock.requests() {
        let b = &r.body;
        let hit = (b["type"] == "template" && b["template"]["name"] == name)
            || b["text"]["body"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("[{name}]")));
        if hit {
            *out.entry(b["to"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    out
}

/// Moves the clock forward in small steps (the pacing and retries run on it)
/// until `check` holds.
async fn drive<F, Fut>(h: &Harness, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        h.clock.advance(Duration::from_millis(250));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    panic!("timed out driving the clock until: {what}");
}

/// Drives the clock until the broadcast's view satisfies `check`; returns it.
async fn drive_view(h: &Harness, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = get(h, id).await;
        if check(&v) {
            // What the outbox publishes about the last change (reasons of
            // skipped and failed recipients) lands within the same job.
            h.idle().await;
            return get(h, id).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out driving the clock until: {what}; last view {v}"
        );
        h.clock.advance(Duration::from_millis(250));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

async fn drive_until_completed(h: &Harness, id: &str, expected_done: i64) -> Value {
    drive_view(h, id, "completed", |v| {
        let c = &v["counts"];
        let done: i64 = ["sent", "failed", "skipped"]
            .iter()
            .map(|k| c[*k].as_i64().unwrap())
            .sum();
        v["status"] == "completed" && c["pending"] == 0 && done == expected_done
    })
    .await
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_marketers_and_admins_may_use_broadcasts() {
    let h = Harness::start(StoreKind::Embedded).await;
    let body = template_body("promo_roles", recipients(0..1), 10.0);
    for who in ["siti", "sari"] {
        let (status, _) = h
            .api(who, Method::POST, "/api/v1/broadcasts", Some(body.clone()))
            .await;
        assert_eq!(status, 403, "{who} may not create");
        let (status, _) = h.api(who, Method::GET, "/api/v1/broadcasts", None).await;
        assert_eq!(status, 403, "{who} may not list");
    }
    let b = create(&h, body.clone()).await;
    let id = b["id"].as_str().unwrap();
    let (status, _) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/broadcasts/{id}/pause"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, v) = h
        .api(
            "root",
            Method::GET,
            &format!("/api/v1/broadcasts/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = h
        .api("root", Method::POST, "/api/v1/broadcasts", Some(body))
        .await;
    assert_eq!(status, 201);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_broadcast_fires_on_time() {
    let h = Harness::start(StoreKind::Embedded).await;
    let at = jiff::Timestamp::from_millisecond(MONDAY_10_WIB_MS + 3_600_000).unwrap();
    let mut body = template_body("promo_later", recipients(0..3), 10.0);
    body["send_at"] = json!(at.to_string());
    let b = create(&h, body).await;
    let id = b["id"].as_str().unwrap();
    assert_eq!(b["status"], "scheduled");
    h.idle().await;
    h.clock.advance(Duration::from_secs(59 * 60));
    h.idle().await;
    assert!(
        sent_per_recipient(&h, "promo_later").is_empty(),
        "not before send_at"
    );
    assert_eq!(get(&h, id).await["status"], "scheduled");
    h.clock.advance(Duration::from_secs(60));
    let v = drive_until_completed(&h, id, 3).await;
    assert_eq!(v["counts"]["sent"], 3);
    let sent = sent_per_recipient(&h, "promo_later");
    assert_eq!(sent.len(), 3);
    assert!(sent.values().all(|n| *n == 1));
    // Rendered per recipient.
    let one = h
        .mock
        .requests()
        .into_iter()
        .find(|r| r.body["to"] == json!(number(1)))
        .unwrap();
    assert_eq!(
        one.body["template"]["components"][0]["parameters"][0]["text"],
        "Pelanggan 1"
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// Pausing and resuming at once, again and again while recipients are being
/// walked: every resume leaves the broadcast with a walk of its own, so it
/// always completes, and nobody gets it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_pause_resume_never_strands_a_broadcast() {
    let h = Harness::start(StoreKind::Embedded).await;
    let b = create(&h, template_body("promo_flap", recipients(0..60), 20.0)).await;
    let id = b["id"].as_str().unwrap().to_string();
    drive(&h, "some sent", || async {
        !sent_per_recipient(&h, "promo_flap").is_empty()
    })
    .await;
    for _ in 0..8 {
        for action in ["pause", "resume"] {
            let (status, v) = h
                .api(
                    "maya",
                    Method::POST,
                    &format!("/api/v1/broadcasts/{id}/{action}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{action}: {v}");
        }
        h.clock.advance(Duration::from_millis(300));
    }
    let v = drive_until_completed(&h, &id, 60).await;
    assert_eq!(v["status"], "completed", "{v}");
    let sent = sent_per_recipient(&h, "promo_flap");
    assert_eq!(sent.len(), 60, "everyone reached");
    assert!(sent.values().all(|n| *n == 1), "nobody twice: {sent:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_cancel() {
    let h = Harness::start(StoreKind::Embedded).await;
    let b = create(&h, template_body("promo_pause", recipients(0..120), 20.0)).await;
    let id = b["id"].as_str().unwrap().to_string();
    drive(&h, "some sent", || async {
        sent_per_recipient(&h, "promo_pause").len() >= 20
    })
    .await;
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            &format!("/api/v1/broadcasts/{id}/pause"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "paused");
    // What was handed over before the pause drains; then nothing moves.
    for _ in 0..10 {
        h.clock.advance(Duration::from_secs(1));
        h.idle().await;
    }
    let at_pause = sent_per_recipient(&h, "promo_pause").len();
    for _ in 0..20 {
        h.clock.advance(Duration::from_secs(1));
        h.idle().await;
    }
    assert_eq!(
        sent_per_recipient(&h, "promo_pause").len(),
        at_pause,
        "paused"
    );
    assert!(at_pause < 120);
    let v = get(&h, &id).await;
    assert_eq!(v["counts"]["sent"], at_pause as i64);
    assert_eq!(v["counts"]["pending"], 120 - at_pause as i64);

    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            &format!("/api/v1/broadcasts/{id}/resume"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let v = drive_until_completed(&h, &id, 120).await;
    assert_eq!(v["counts"]["sent"], 120);
    let sent = sent_per_recipient(&h, "promo_pause");
    assert_eq!(sent.len(), 120);
    assert!(sent.values().all(|n| *n == 1), "no duplicates after resume");
    let (status, _) = h
        .api(
            "maya",
            Method::POST,
            &format!("/api/v1/broadcasts/{id}/resume"),
            None,
        )
        .await;
    assert_eq!(status, 409, "a finished broadcast cannot be resumed");

    // Cancel another one midway.
    let b = create(
        &h,
        template_body("promo_cancel", recipients(200..300), 20.0),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    drive(&h, "some sent", || async {
        sent_per_recipient(&h, "promo_cancel").len() >= 10
    })
    .await;
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            &format!("/api/v1/broadcasts/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    for _ in 0..20 {
        h.clock.advance(Duration::from_secs(1));
        h.idle().await;
    }
    let sent = sent_per_recipient(&h, "promo_cancel").len() as i64;
    assert!(sent < 100);
    let v = get(&h, &id).await;
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["counts"]["sent"], sent);
    assert_eq!(v["counts"]["pending"], 0);
    assert_eq!(v["counts"]["cancelled"], 100 - sent, "{v}");
    let (status, _) = h
        .api(
            "maya",
            Method::POST,
            &format!("/api/v1/broadcasts/{id}/resume"),
            None,
        )
        .await;
    assert_eq!(status, 409);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_removed_and_opted_out_contacts_skipped_with_a_reason() {
    let h = Harness::start(StoreKind::Embedded).await;
    // One customer opted out by writing "stop".
    let out = "6281234567890";
    h.customer_says(out, "Tidak Mau", "stop").await;
    h.wait_texts_to(out, 1).await;
    let mut to = recipients(0..3);
    for raw in ["+62 812-3456-7890", "081234567890", "6281234567890"] {
        to.push(json!({"to": raw, "variables": {"name": "X"}}));
    }
    to.push(json!({"to": number(1), "variables": {"name": "Dup"}}));
    let b = create(&h, template_body("promo_dedupe", to, 10.0)).await;
    let id = b["id"].as_str().unwrap();
    assert_eq!(b["duplicates_removed"], 3, "{b}");
    assert_eq!(b["counts"]["total"], 4);
    let v = drive_until_completed(&h, id, 4).await;
    assert_eq!(v["counts"]["sent"], 3);
    assert_eq!(v["counts"]["skipped"], 1);
    assert_eq!(v["reasons"]["skipped"]["opted_out"], 1, "{v}");
    let sent = sent_per_recipient(&h, "promo_dedupe");
    assert_eq!(sent.len(), 3);
    assert!(!sent.contains_key(out));
    assert!(sent.values().all(|n| *n == 1));

    // recipients.csv tells each one's fate.
    let resp = h
        .http
        .get(format!("{}/api/v1/broadcasts/{id}/recipients.csv", h.base))
        .bearer_auth(common::harness::token("maya"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        rd.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "to",
            "status",
            "reason",
            "error_code",
            "platform_message_id",
            "updated_at"
        ]
    );
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    let row = |to: &str| rows.iter().find(|r| &r[0] == to).unwrap().clone();
    assert_eq!((&row(out)[1], &row(out)[2]), ("skipped", "opted_out"));
    assert_eq!(&row(&number(0))[1], "sent");
    assert!(row(&number(0))[4].starts_with("wamid.MOCK"));
    h.stop().await;
}

/// A CSV upload racing the broadcast's start is either counted and sent, or
/// refused with 409 and never sent: never accepted and then left unsent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_upload_racing_the_start_is_sent_or_refused() {
    let h = Harness::start(StoreKind::Embedded).await;
    let mut body = template_body("promo_race", Vec::new(), 1000.0);
    body["audience"] = json!({"segment": {"label": "nobody-has-this"}});
    body["send_at"] = json!(
        jiff::Timestamp::from_millisecond(MONDAY_10_WIB_MS + 60_000)
            .unwrap()
            .to_string()
    );
    let b = create(&h, body).await;
    let id = b["id"].as_str().unwrap().to_string();
    let mut csv = String::from("to,name\n");
    for i in 0..3000 {
        csv.push_str(&format!("{},Pelanggan {i}\n", number(1000 + i)));
    }
    let upload = h
        .http
        .post(format!("{}/api/v1/broadcasts/{id}/audience.csv", h.base))
        .bearer_auth(common::harness::token("maya"))
        .header("content-type", "text/csv")
        .body(csv)
        .send();
    // The start becomes due while the file is being taken in.
    let start = async {
        tokio::task::yield_now().await;
        h.clock.advance(Duration::from_secs(61));
    };
    let (resp, ()) = tokio::join!(upload, start);
    let resp = resp.unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    match status {
        200 => {
            assert_eq!(v["added"], 3000, "{v}");
            let v = drive_until_completed(&h, &id, 3000).await;
            assert_eq!(v["counts"]["sent"], 3000);
            let sent = sent_per_recipient(&h, "promo_race");
            assert_eq!(sent.len(), 3000);
            assert!(sent.values().all(|n| *n == 1));
        }
        409 => {
            assert_eq!(v["error"]["code"], "started", "{v}");
            let v = drive_until_completed(&h, &id, 0).await;
            assert_eq!(v["counts"]["total"], 0, "refused rows are not counted");
            h.idle().await;
            assert!(sent_per_recipient(&h, "promo_race").is_empty());
        }
        other => panic!("unexpected {other}: {v}"),
    }
    // Once started, an upload is refused before anything is read.
    let resp = h
        .http
        .post(format!("{}/api/v1/broadcasts/{id}/audience.csv", h.base))
        .bearer_auth(common::harness::token("maya"))
        .header("content-type", "text/csv")
        .body("to,name\n6281111111111,Rina\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_audiences_report_bad_rows_with_line_numbers() {
    let h = Harness::start(StoreKind::Embedded).await;
    let mut body = template_body("promo_csv", Vec::new(), 10.0);
    body["audience"] = json!({"segment": {"label": "nobody-has-this"}});
    body["send_at"] = json!(
        jiff::Timestamp::from_millisecond(MONDAY_10_WIB_MS + 3_600_000)
            .unwrap()
            .to_string()
    );
    let b = create(&h, body).await;
    let id = b["id"].as_str().unwrap();
    let upload = |data: &'static str| {
        h.http
            .post(format!("{}/api/v1/broadcasts/{id}/audience.csv", h.base))
            .bearer_auth(common::harness::token("maya"))
            .header("content-type", "text/csv")
            .body(data)
            .send()
    };
    let resp = upload("to,name\n6281111111111,Rina\nnot-a-number,X\n6283333333333,\n")
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let err: Value = resp.json().await.unwrap();
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("line 3:") && msg.contains("not-a-number"),
        "{msg}"
    );
    assert!(msg.contains("line 4:") && msg.contains("{{name}}"), "{msg}");
    assert!(!msg.contains("line 2:"), "{msg}");
    assert_eq!(get(&h, id).await["counts"]["total"], 0, "nothing added");

    let resp = upload("nomor,name\n6281111111111,Rina\n0812-2222-2222,Budi\n6281111111111,Lagi\n")
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (&v["added"], &v["duplicates_removed"]),
        (&json!(2), &json!(1))
    );
    h.clock.advance(Duration::from_secs(3600));
    let v = drive_until_completed(&h, id, 2).await;
    assert_eq!(v["counts"]["sent"], 2);
    h.stop().await;
}

#[test]
fn the_cli_reports_bad_campaign_csv_rows_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("campaign.toml"),
        "name = \"Promo\"\nchannel = \"whatsapp\"\n[message.template]\nname = \"promo\"\nbody_parameters = [\"{{name}}\"]\n[audience]\ncsv = \"people.csv\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "to,name\n6281111111111,Rina\n12,Budi\n6282222222222,\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_balas"))
        .args([
            "broadcast",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "create",
            "--file",
        ])
        .arg(dir.path().join("campaign.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("people.csv:3:"), "{stderr}");
    assert!(
        stderr.contains("people.csv:4:") && stderr.contains("{{name}}"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("cannot reach"),
        "checked before any request: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_defer_until_eight() {
    let h = Harness::start(StoreKind::Embedded).await;
    // Monday 22:00 WIB.
    h.clock.advance(Duration::from_secs(12 * 3600));
    let b = create(&h, template_body("promo_night", recipients(0..3), 10.0)).await;
    let id = b["id"].as_str().unwrap();
    h.idle().await;
    // Tuesday 07:59 WIB.
    h.clock.advance(Duration::from_secs(9 * 3600 + 59 * 60));
    h.idle().await;
    assert!(sent_per_recipient(&h, "promo_night").is_empty(), "quiet");
    h.clock.advance(Duration::from_secs(61));
    drive_until_completed(&h, id, 3).await;
    let now = h.clock.now_ms();
    assert!(
        now >= MONDAY_10_WIB_MS + 22 * 3_600_000,
        "sent at or after 08:00"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_goes_only_inside_the_window_templates_to_everyone() {
    let h = Harness::start(StoreKind::Embedded).await;
    let (old, recent, never) = ("6281600000001", "6281600000002", "6281600000003");
    h.customer_says(old, "Lama", "halo").await;
    h.wait_texts_to(old, 1).await;
    h.clock.advance(Duration::from_secs(23 * 3600));
    h.customer_says(recent, "Baru", "halo").await;
    h.wait_texts_to(recent, 1).await;
    h.clock.advance(Duration::from_secs(2 * 3600));
    let people = || {
        [old, recent, never]
            .iter()
            .map(|t| json!({"to": t, "variables": {"name": "Kak"}}))
            .collect::<Vec<_>>()
    };
    let b = create(
        &h,
        json!({
            "name": "text", "channel": "whatsapp",
            "message": {"text": "[promo_text] Halo {{name}}, ada diskon hari ini!"},
            "audience": {"recipients": people()}, "rate_per_sec": 10,
        }),
    )
    .await;
    let id = b["id"].as_str().unwrap();
    let v = drive_until_completed(&h, id, 3).await;
    assert_eq!(v["counts"]["sent"], 1);
    assert_eq!(v["counts"]["skipped"], 2);
    assert_eq!(v["reasons"]["skipped"]["outside_window"], 2, "{v}");
    let sent = sent_per_recipient(&h, "promo_text");
    assert_eq!(sent.keys().collect::<Vec<_>>(), [recent]);

    let b = create(&h, template_body("promo_all", people(), 10.0)).await;
    let v = drive_until_completed(&h, b["id"].as_str().unwrap(), 3).await;
    assert_eq!(v["counts"]["sent"], 3);
    assert_eq!(sent_per_recipient(&h, "promo_all").len(), 3);
    h.stop().await;
}

fn graph_error(code: i64, title: &str) -> Value {
    json!({"error": {"message": format!("(#{code}) {title}"), "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": title}, "fbtrace_id": "T"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecosystem_and_marketing_opt_out_errors_fail_the_recipient_with_a_reason() {
    let h = Harness::start(StoreKind::Embedded).await;
    // 131049 answered to the send itself.
    h.mock.fail_next(
        1,
        400,
        graph_error(
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
        ),
    );
    let b = create(&h, template_body("promo_eco", recipients(0..1), 10.0)).await;
    let id = b["id"].as_str().unwrap().to_string();
    drive_until_completed(&h, &id, 1).await;
    // The reason is counted right after the state: wait for it, not for the state.
    let v = drive_view(&h, &id, "the reason counted", |v| {
        v["reasons"]["failed"]["131049"] == 1
    })
    .await;
    assert_eq!(v["counts"]["failed"], 1, "{v}");
    let rec = h
        .app
        .store()
        .outbound(&balas::broadcast::record_id(&id, &number(0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.error_code, Some(131049));

    // 131050 arrives later as a failed status for an accepted message.
    let who = number(1);
    let b = create(
        &h,
        template_body(
            "promo_mkt",
            vec![json!({"to": who, "variables": {"name": "A"}})],
            10.0,
        ),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    drive_until_completed(&h, &id, 1).await;
    let rec = h
        .app
        .store()
        .outbound(&balas::broadcast::record_id(&id, &who))
        .await
        .unwrap()
        .unwrap();
    let wamid = rec.platform_id.clone().unwrap();
    let status = payloads::wa_status(
        &wamid,
        &who,
        "failed",
        h.clock.now_ms() / 1000,
        Some((131050, "User stopped marketing messages")),
    );
    let resp = h
        .post_signed("whatsapp", status.to_string().as_bytes())
        .await;
    assert_eq!(resp.status(), 200);
    // The reason is counted last, after the contact's opt-out is stored.
    let v = drive_view(&h, &id, "failed by status", |v| {
        v["reasons"]["failed"]["131050"] == 1
    })
    .await;
    assert_eq!(v["counts"]["failed"], 1, "{v}");
    assert_eq!(v["counts"]["sent"], 0);
    let contact = h
        .app
        .store()
        .contact(Channel::WhatsApp, &who)
        .await
        .unwrap()
        .unwrap();
    assert!(contact.marketing_opt_out);
    // The next marketing template skips them.
    let b = create(
        &h,
        template_body(
            "promo_after",
            vec![json!({"to": who, "variables": {"name": "A"}})],
            10.0,
        ),
    )
    .await;
    let v = drive_until_completed(&h, b["id"].as_str().unwrap(), 1).await;
    assert_eq!(v["reasons"]["skipped"]["marketing_opt_out"], 1, "{v}");
    assert!(sent_per_recipient(&h, "promo_after").is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_errors_are_retried_without_losing_anyone() {
    let h = Harness::start(StoreKind::Embedded).await;
    let err: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/platform/outbound/wa_error_130429.json"
        ))
        .unwrap(),
    )
    .unwrap();
    h.mock.fail_next(3, 400, err);
    h.mock.push_response(common::graph_mock::CannedResponse {
        status: 429,
        body: json!({}),
        retry_after: Some("2".into()),
    });
    let b = create(&h, template_body("promo_429", recipients(0..30), 50.0)).await;
    let id = b["id"].as_str().unwrap();
    let v = drive_until_completed(&h, id, 30).await;
    assert_eq!(v["counts"]["sent"], 30, "{v}");
    assert_eq!(v["counts"]["failed"], 0);
    let sent = sent_per_recipient(&h, "promo_429");
    assert_eq!(sent.len(), 30);
    assert_eq!(
        sent.values().sum::<usize>(),
        34,
        "4 rejected attempts, each retried once"
    );
    // The 429 asked the whole number to wait 2 s: every process now holds the
    // sender back (this test's clock jumps, so real-time gaps prove nothing).
    let until: Option<i64> = h
        .app
        .store()
        .get_json(&format!(
            "cooldown:whatsapp:{}",
            common::harness::PHONE_NUMBER_ID
        ))
        .await
        .unwrap();
    assert!(until.is_some(), "a sender-wide cool-down was recorded");
    h.stop().await;
}

/// Every recipient got exactly one request at the mock.
fn exactly_once_each(h: &Harness, name: &str, n: usize) {
    let sent = sent_per_recipient(h, name);
    assert_eq!(sent.len(), n, "everyone got it");
    let dups: Vec<_> = sent.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
}

async fn restart_mid_broadcast(store: StoreKind) {
    let h = Harness::start(store).await;
    let b = create(&h, template_body("promo_crash", recipients(0..600), 100.0)).await;
    let id = b["id"].as_str().unwrap().to_string();
    drive(&h, "a third sent", || async {
        sent_per_recipient(&h, "promo_crash").len() >= 200
    })
    .await;
    let h = h.restart().await;
    let v = drive_until_completed(&h, &id, 600).await;
    exactly_once_each(&h, "promo_crash", 600);
    assert_eq!(v["counts"]["sent"], 600, "counts match the mock: {v}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_broadcast_embedded() {
    restart_mid_broadcast(StoreKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_broadcast_redis() {
    restart_mid_broadcast(StoreKind::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_broadcast_cluster() {
    restart_mid_broadcast(StoreKind::cluster()).await;
}

on_shared_stores!(two_processes_share_one_broadcast_without_duplicates);

async fn two_processes_share_one_broadcast_without_duplicates(store: StoreKind) {
    let h = Harness::start(store).await;
    let h2 = h.second_process().await;
    let b = create(&h, template_body("promo_two", recipients(0..1200), 200.0)).await;
    let id = b["id"].as_str().unwrap().to_string();
    let v = drive_until_completed(&h, &id, 1200).await;
    exactly_once_each(&h, "promo_two", 1200);
    assert_eq!(v["counts"]["sent"], 1200);
    let v2 = get(&h2, &id).await;
    assert_eq!(
        v2["counts"], v["counts"],
        "both processes see the same counts"
    );
    h2.stop().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_by_label_recent_activity_and_csat() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        c.survey.delay = balas::config::HumanDuration::secs(1);
        c.survey.recovery_handoff = false;
    })
    .await;
    let (old, vip, unhappy) = ("6281700000001", "6281700000002", "6281700000003");
    h.customer_says(old, "Lama", "halo").await;
    h.wait_texts_to(old, 1).await;
    h.clock.advance(Duration::from_secs(40 * 86_400));
    h.customer_says(vip, "Vera", "halo").await;
    h.wait_texts_to(vip, 1).await;
    let vip_case = h.current_case(vip).await.unwrap();
    let (status, v) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{vip_case}/labels"),
            Some(json!({"add": ["vip"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // An unhappy customer: handled, surveyed, answers 2.
    h.customer_says(unhappy, "Umar", "barang saya datang rusak")
        .await;
    h.wait_texts_to(unhappy, 1).await;
    let case = h.current_case(unhappy).await.unwrap();
    h.api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    h.api(
        "siti",
        Method::POST,
        &format!("/api/v1/conversations/{case}/messages"),
        Some(json!({"text": "Maaf Kak"})),
    )
    .await;
    h.wait_texts_to(unhappy, 2).await;
    let (status, _) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    h.clock.advance(Duration::from_secs(1));
    h.wait_texts_to(unhappy, 3).await;
    h.customer_says(unhappy, "Umar", "2").await;
    h.until("csat recorded", || async {
        h.app
            .store()
            .survey(&case)
            .await
            .unwrap()
            .and_then(|s| s.csat)
            == Some(2)
    })
    .await;

    let segment_to = |name: &str, segment: Value| {
        json!({
            "name": name, "channel": "whatsapp",
            "message": {"template": {"name": name, "body_parameters": ["{{name}}"]}},
            "audience": {"segment": segment}, "rate_per_sec": 10,
        })
    };
    for (name, segment, want) in [
        ("seg_label", json!({"label": "vip"}), vec![vip]),
        (
            "seg_recent",
            json!({"last_inbound_within_days": 30}),
            vec![vip, unhappy],
        ),
        ("seg_csat", json!({"csat_max": 2}), vec![unhappy]),
    ] {
        let b = create(&h, segment_to(name, segment)).await;
        drive_until_completed(&h, b["id"].as_str().unwrap(), want.len() as i64).await;
        let sent = sent_per_recipient(&h, name);
        let mut want: Vec<&str> = want;
        want.sort();
        assert_eq!(
            sent.keys().map(String::as_str).collect::<Vec<_>>(),
            want,
            "{name}"
        );
    }
    // The segment's {{name}} is the contact's name.
    let r = h
        .mock
        .requests()
        .into_iter()
        .find(|r| r.body["template"]["name"] == "seg_label")
        .unwrap();
    assert_eq!(
        r.body["template"]["components"][0]["parameters"][0]["text"],
        "Vera"
    );
    h.stop().await;
}

/// A JSON create body written by hand, so the audience can come before the
/// fields it is checked against.
fn audience_first_body(name: &str, recipients: &[String]) -> String {
    format!(
        r#"{{"audience": {{"recipients": [{}]}}, "rate_per_sec": 10, "name": "{name}", "channel": "whatsapp",
            "message": {{"template": {{"name": "{name}", "language": "id", "body_parameters": ["{{{{name}}}}"]}}}}}}"#,
        recipients.join(",")
    )
}

async fn post_raw(h: &Harness, body: String) -> (u16, Value) {
    let resp = h
        .http
        .post(format!("{}/api/v1/broadcasts", h.base))
        .bearer_auth(common::harness::token("maya"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_json_audiences_are_checked_whole_then_stored_in_chunks() {
    let h = Harness::start(StoreKind::Embedded).await;
    let row = |i: usize| {
        format!(
            r#"{{"to": "{}", "variables": {{"name": "P{i}"}}}}"#,
            number(i)
        )
    };
    // 1,200 recipients plus 3 repeats, across three stored chunks.
    let mut rows: Vec<String> = (0..1200).map(row).collect();
    rows.extend([row(5), row(700), row(1199)]);

    // Two bad rows (positions 7 and 1,100) refuse the whole list; nothing is stored.
    let mut bad = rows.clone();
    bad[6] = r#"{"to": "not-a-number", "variables": {"name": "X"}}"#.into();
    bad[1099] = format!(r#"{{"to": "{}"}}"#, number(1099));
    let (status, v) = post_raw(&h, audience_first_body("promo_big", &bad)).await;
    assert_eq!(status, 422, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("2 recipient row(s) are invalid"), "{msg}");
    assert!(
        msg.contains("line 7:") && msg.contains("not-a-number"),
        "{msg}"
    );
    assert!(
        msg.contains("line 1100:") && msg.contains("{{name}}"),
        "{msg}"
    );
    // A recipient that is not even shaped like one is named by position.
    let mut shapeless = rows.clone();
    shapeless[2] = r#"{"phone": "6281111111111"}"#.into();
    let (status, v) = post_raw(&h, audience_first_body("promo_big", &shapeless)).await;
    assert_eq!(status, 422, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("recipient 3 "), "{msg}");
    let (_, list) = h.api("maya", Method::GET, "/api/v1/broadcasts", None).await;
    assert_eq!(list["broadcasts"], json!([]), "nothing created");

    let (status, b) = post_raw(&h, audience_first_body("promo_big", &rows)).await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_str().unwrap();
    assert_eq!(b["counts"]["total"], 1200, "{b}");
    assert_eq!(b["duplicates_removed"], 3, "{b}");
    assert_eq!(
        balas::broadcast::chunk_count(h.app.broadcasts(), id)
            .await
            .unwrap(),
        3
    );
    let mut stored = Vec::new();
    for index in 0..3 {
        stored.extend(
            balas::broadcast::chunk(h.app.broadcasts(), id, index)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        stored.iter().map(|r| r.to.clone()).collect::<Vec<_>>(),
        (0..1200).map(number).collect::<Vec<_>>(),
        "every recipient once, in upload order"
    );
    assert_eq!(stored[42].variables["name"], "P42");
    h.stop().await;
}
