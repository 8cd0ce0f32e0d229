//! Satisfaction surveys end to end (issue 6): signed webhooks in, the Graph
//! mock out, the manual clock for the delay and the 24-hour window, agents and
//! supervisors through the API.

#[macro_use]
mod common;

use std::time::Duration;

use balas::clock::Clock;
use balas::config::{Config, HumanDuration};
use balas::survey::{Status, Survey};
use common::harness::{Harness, StoreKind};
use common::payloads;
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(
    list_survey_after_the_delay_then_thanks,
    restart_between_resolve_and_due_time_sends_once,
);

const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);

/// Survey after 1 s (the tests move the clock by hand).
fn quick(c: &mut Config) {
    c.survey.delay = HumanDuration::secs(1);
}

/// Outbound bodies the mock received for `to`, in order.
fn bodies_to(h: &Harness, to: &str) -> Vec<Value> {
    h.mock
        .requests()
        .into_iter()
        .map(|r| r.body)
        .filter(|b| b["to"] == json!(to) || b["recipient"]["id"] == json!(to))
        .collect()
}

/// Outbound WhatsApp list messages to `to`.
fn lists_to(h: &Harness, to: &str) -> Vec<Value> {
    bodies_to(h, to)
        .into_iter()
        .filter(|b| b["interactive"]["type"] == "list")
        .collect()
}

/// Waits until the mock has received `n` list messages for `to`; returns them.
async fn wait_lists(h: &Harness, to: &str, n: usize) -> Vec<Value> {
    h.until(&format!("{n} lists to {to}"), || async {
        lists_to(h, to).len() >= n
    })
    .await;
    lists_to(h, to)
}

async fn survey_of(h: &Harness, case: &str) -> Option<Survey> {
    h.app.store().survey(case).await.expect("store")
}

async fn wait_survey(h: &Harness, case: &str, what: &str, check: impl Fn(&Survey) -> bool) {
    h.until(what, || async {
        survey_of(h, case).await.is_some_and(|s| check(&s))
    })
    .await;
}

async fn post_wa(h: &Harness, body: Value) {
    let resp = h.post_signed("whatsapp", body.to_string().as_bytes()).await;
    assert_eq!(resp.status(), 200);
}

/// A customer complains, `agent` claims, replies and resolves after the
/// minutes given. Returns the case id.
async fn agent_case(
    h: &Harness,
    who: &str,
    name: &str,
    complaint: &str,
    agent: &str,
    reply_after: Duration,
    resolve_after: Duration,
) -> String {
    let before = h.texts_to(who).len();
    h.customer_says(who, name, complaint).await;
    // Wait for the handoff itself: a message from the previous case (a survey's
    // thanks) may still be on its way and would satisfy a message count.
    h.until("the complaint waits in a queue", || async {
        match h.current_case(who).await {
            Some(case) => h
                .app
                .store()
                .conversation(&case)
                .await
                .unwrap()
                .is_some_and(|c| c.state == balas::conversation::State::Queued),
            None => false,
        }
    })
    .await;
    h.wait_texts_to(who, before + 1).await;
    let case = h.current_case(who).await.expect("a case");
    h.until("the queue lists it", || async {
        let conv = h.app.store().conversation(&case).await.unwrap().unwrap();
        let queue = conv.queue.expect("handed off to a queue");
        h.app.store().waiting(&queue).await.unwrap().contains(&case)
    })
    .await;
    let (status, conv) = h
        .api(agent, Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(conv["id"], json!(case));
    h.clock.advance(reply_after);
    let (status, _) = h
        .api(
            agent,
            Method::POST,
            &format!("/api/v1/conversations/{case}/messages"),
            Some(json!({"text": "Sudah kami proses ya Kak, mohon ditunggu."})),
        )
        .await;
    assert_eq!(status, 202);
    h.wait_texts_to(who, before + 2).await;
    h.clock.advance(resolve_after);
    let (status, conv) = h
        .api(
            agent,
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{conv}");
    case
}

async fn resolved_case(h: &Harness, who: &str, name: &str) -> String {
    agent_case(
        h,
        who,
        name,
        "barang saya datang rusak, layarnya pecah",
        "siti",
        MIN,
        MIN,
    )
    .await
}

/// Fires the survey timer and waits until it was asked.
async fn fire_survey(h: &Harness, case: &str) -> Survey {
    h.clock.advance(SEC);
    wait_survey(h, case, "the survey is asked", |s| {
        s.status != Status::Scheduled && s.via.is_some()
    })
    .await;
    survey_of(h, case).await.unwrap()
}

async fn list_survey_after_the_delay_then_thanks(store: StoreKind) {
    let h = Harness::start_with(store, quick).await;
    let who = "6281300000001";
    let case = resolved_case(&h, who, "Budi").await;
    let s = survey_of(&h, &case).await.expect("scheduled");
    assert_eq!(s.status, Status::Scheduled);
    h.idle().await;
    assert!(lists_to(&h, who).is_empty(), "nothing before the delay");

    let s = fire_survey(&h, &case).await;
    assert_eq!((s.status, s.via.as_deref()), (Status::Asked, Some("list")));
    let lists = wait_lists(&h, who, 1).await;
    assert_eq!(lists.len(), 1);
    let list = &lists[0]["interactive"];
    assert!(
        list["body"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Halo Budi, seberapa puas")
    );
    let rows = list["action"]["sections"][0]["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let want: Vec<String> = (1..=5)
        .rev()
        .map(|v| format!("survey:{case}:csat:{v}"))
        .collect();
    assert_eq!(ids, want);

    // The customer taps "Sangat puas".
    post_wa(
        &h,
        payloads::wa_list_reply(
            who,
            "Budi",
            &payloads::new_wamid(),
            &format!("survey:{case}:csat:5"),
            "Sangat puas",
            h.clock.now_ms() / 1000,
        ),
    )
    .await;
    wait_survey(&h, &case, "completed", |s| s.status == Status::Completed).await;
    let s = survey_of(&h, &case).await.unwrap();
    assert_eq!(s.csat, Some(5));
    assert_eq!(s.agent.as_deref(), Some("siti"));
    let texts = h.wait_texts_to(who, 4).await;
    assert!(
        texts[3].starts_with("Terima kasih atas penilaiannya"),
        "{texts:?}"
    );
    // The answer opened no new case.
    assert_eq!(h.current_case(who).await, None);
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

async fn restart_between_resolve_and_due_time_sends_once(store: StoreKind) {
    let h = Harness::start_with(store, quick).await;
    let who = "6281300000002";
    let case = resolved_case(&h, who, "Rina").await;
    let h = h.restart().await;
    h.clock.advance(SEC);
    wait_survey(&h, &case, "asked after the restart", |s| {
        s.status == Status::Asked
    })
    .await;
    wait_lists(&h, who, 1).await;
    h.idle().await;
    assert_eq!(lists_to(&h, who).len(), 1, "exactly one survey");
    // A second restart while it waits for the answer asks nothing again.
    let h = h.restart().await;
    h.clock.advance(SEC);
    h.idle().await;
    assert_eq!(lists_to(&h, who).len(), 1);
    h.stop().await;
}

on_shared_stores!(two_processes_on_one_store_send_one_survey);

async fn two_processes_on_one_store_send_one_survey(store: StoreKind) {
    let h = Harness::start_with(store, quick).await;
    let h2 = h.second_process().await;
    let who = "6281300000003";
    let case = resolved_case(&h, who, "Sari").await;
    h.clock.advance(SEC);
    wait_survey(&h, &case, "asked", |s| s.status == Status::Asked).await;
    wait_lists(&h, who, 1).await;
    h.idle().await;
    assert_eq!(lists_to(&h, who).len(), 1, "one survey for two processes");
    h2.stop().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_window_the_template_matches_the_fixture_shape() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        quick(c);
        c.survey.whatsapp_template = Some("survei_kepuasan_cs".into());
    })
    .await;
    let who = "6287788990011";
    let case = resolved_case(&h, who, "Dewi").await;
    // The customer goes quiet for more than a day before the survey fires.
    h.clock.advance(Duration::from_secs(25 * 3600));
    wait_survey(&h, &case, "asked by template", |s| {
        s.via.as_deref() == Some("template")
    })
    .await;
    h.until("the template reaches the mock", || async {
        bodies_to(&h, who).iter().any(|b| b["type"] == "template")
    })
    .await;
    let sent: Vec<Value> = bodies_to(&h, who)
        .into_iter()
        .filter(|b| b["type"] == "template")
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(lists_to(&h, who).is_empty(), "no list outside the window");
    let got = &sent[0];
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/platform/outbound/wa_send_template_request.json"
        ))
        .expect("the shared fixture"),
    )
    .unwrap();
    // Same keys at every level; values where they are fixed.
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(got), keys(&fixture));
    assert_eq!(got["messaging_product"], "whatsapp");
    assert_eq!(got["recipient_type"], fixture["recipient_type"]);
    assert_eq!(got["to"], json!(who));
    assert_eq!(got["type"], "template");
    let (t, ft) = (&got["template"], &fixture["template"]);
    assert_eq!(keys(t), keys(ft));
    assert_eq!(t["name"], ft["name"]);
    assert_eq!(t["language"], ft["language"]);
    let comps = t["components"].as_array().unwrap();
    let fcomps = ft["components"].as_array().unwrap();
    assert_eq!(comps.len(), fcomps.len());
    assert_eq!(comps[0]["type"], "body");
    assert_eq!(keys(&comps[0]), keys(&fcomps[0]));
    assert_eq!(
        comps[0]["parameters"],
        json!([{"type": "text", "text": "Dewi"}, {"type": "text", "text": case}])
    );
    for (i, word) in ["puas", "biasa", "kecewa"].iter().enumerate() {
        let (c, fc) = (&comps[i + 1], &fcomps[i + 1]);
        assert_eq!(keys(c), keys(fc));
        assert_eq!(c["type"], "button");
        assert_eq!(c["sub_type"], "quick_reply");
        assert_eq!(c["index"], json!(i.to_string()));
        assert_eq!(keys(&c["parameters"][0]), keys(&fc["parameters"][0]));
        assert_eq!(c["parameters"][0]["type"], "payload");
        assert_eq!(
            c["parameters"][0]["payload"],
            json!(format!("survey:{case}:csat:{word}"))
        );
    }
    // The customer taps "Puas" on the template (like wa_template_button.json).
    post_wa(
        &h,
        payloads::wa_template_button(
            who,
            "Dewi",
            &payloads::new_wamid(),
            &format!("survey:{case}:csat:puas"),
            "Puas",
            h.clock.now_ms() / 1000,
        ),
    )
    .await;
    wait_survey(&h, &case, "answered", |s| s.status == Status::Completed).await;
    assert_eq!(survey_of(&h, &case).await.unwrap().csat, Some(4));
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_window_without_template_is_skipped_and_not_counted_as_sent() {
    let h = Harness::start_with(StoreKind::Embedded, quick).await;
    let who = "6281300000004";
    let case = resolved_case(&h, who, "Adi").await;
    h.clock.advance(Duration::from_secs(25 * 3600));
    wait_survey(&h, &case, "skipped", |s| s.status == Status::SkippedWindow).await;
    h.idle().await;
    assert!(
        bodies_to(&h, who)
            .iter()
            .all(|b| b["type"] != "template" && b["interactive"]["type"] != "list")
    );
    let (status, r) = h
        .api("sari", Method::GET, "/api/v1/reports/summary", None)
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["total"]["cases"], 1);
    assert_eq!(
        r["total"]["surveys_sent"], 0,
        "a skipped survey was not sent: {r}"
    );
    assert_eq!(r["total"]["response_rate"], Value::Null);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instagram_asks_with_quick_replies() {
    let h = Harness::start_with(StoreKind::Embedded, quick).await;
    let igsid = "7291836450192837";
    let ig = |text: &str| {
        payloads::ig_text(
            igsid,
            &format!("mid.{}", payloads::new_wamid()),
            text,
            h.clock.now_ms(),
        )
    };
    let resp = h
        .post_signed(
            "instagram",
            ig("barang saya datang rusak kak").to_string().as_bytes(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    h.wait_texts_to(igsid, 1).await;
    let (status, conv) = h
        .api("budi", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{conv}");
    let case = conv["id"].as_str().unwrap().to_string();
    let (status, _) = h
        .api(
            "budi",
            Method::POST,
            &format!("/api/v1/conversations/{case}/messages"),
            Some(json!({"text": "Kami kirim pengganti ya Kak."})),
        )
        .await;
    assert_eq!(status, 202);
    h.wait_texts_to(igsid, 2).await;
    let (status, _) = h
        .api(
            "budi",
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let s = fire_survey(&h, &case).await;
    assert_eq!(s.via.as_deref(), Some("quick_replies"));
    h.wait_texts_to(igsid, 3).await;
    let asked = bodies_to(&h, igsid)
        .into_iter()
        .find(|b| b["message"]["quick_replies"].is_array())
        .expect("quick replies sent");
    let qr = asked["message"]["quick_replies"].as_array().unwrap();
    assert_eq!(qr.len(), 5);
    assert_eq!(qr[0]["content_type"], "text");
    assert_eq!(qr[0]["payload"], json!(format!("survey:{case}:csat:5")));
    assert_eq!(qr[4]["payload"], json!(format!("survey:{case}:csat:1")));
    let tap = payloads::ig_quick_reply(
        igsid,
        &format!("mid.{}", payloads::new_wamid()),
        "Puas",
        &format!("survey:{case}:csat:4"),
        h.clock.now_ms(),
    );
    let resp = h.post_signed("instagram", tap.to_string().as_bytes()).await;
    assert_eq!(resp.status(), 200);
    wait_survey(&h, &case, "answered", |s| s.status == Status::Completed).await;
    assert_eq!(survey_of(&h, &case).await.unwrap().csat, Some(4));
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_answer_is_reasked_once_then_the_bot_takes_over() {
    let h = Harness::start_with(StoreKind::Embedded, quick).await;
    let who = "6281300000005";
    let case = resolved_case(&h, who, "Joko").await;
    fire_survey(&h, &case).await;
    let n = h.wait_texts_to(who, 3).await.len();
    h.customer_says(who, "Joko", "kapan ya kak").await;
    let texts = h.wait_texts_to(who, n + 1).await;
    assert!(
        texts[n].starts_with("Maaf, saya belum menangkap jawabannya."),
        "{texts:?}"
    );
    assert_eq!(lists_to(&h, who).len(), 2, "re-asked with the list");
    let s = survey_of(&h, &case).await.unwrap();
    assert!(s.reasked && s.status == Status::Asked);
    assert_eq!(h.current_case(who).await, None, "no new case for a re-ask");

    h.customer_says(who, "Joko", "pesanan saya yang lain belum sampai kak")
        .await;
    wait_survey(&h, &case, "abandoned", |s| s.status == Status::Abandoned).await;
    let texts = h.wait_texts_to(who, n + 2).await;
    assert!(!texts[n + 1].starts_with("Maaf, saya belum"), "{texts:?}");
    assert_eq!(lists_to(&h, who).len(), 2, "not asked a third time");
    let new_case = h.current_case(who).await.expect("the bot opened a case");
    assert_ne!(new_case, case);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_score_goes_to_the_recovery_queue_with_an_apology() {
    let h = Harness::start_with(StoreKind::Embedded, quick).await;
    let who = "6281300000006";
    let case = resolved_case(&h, who, "Wati").await;
    fire_survey(&h, &case).await;
    let n = h.wait_texts_to(who, 3).await.len();
    h.customer_says(who, "Wati", "2").await;
    let texts = h.wait_texts_to(who, n + 1).await;
    assert!(texts[n].starts_with("Kami mohon maaf"), "{texts:?}");
    wait_survey(&h, &case, "completed", |s| s.status == Status::Completed).await;
    assert_eq!(survey_of(&h, &case).await.unwrap().csat, Some(2));
    let new_case = h.current_case(who).await.expect("recovery case");
    assert_ne!(new_case, case);
    let (status, conv) = h
        .api(
            "sari",
            Method::GET,
            &format!("/api/v1/conversations/{new_case}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(conv["state"], "queued");
    assert_eq!(conv["queue"], "recovery");
    assert_eq!(conv["recovery_score"], 2);
    assert!(conv["priority"].as_i64().unwrap() >= 10, "{conv}");
    // The agent sees the previous case with its score.
    assert_eq!(conv["previous_cases"][0]["csat"], 2, "{conv}");
    // Recovery cases come first in the queue.
    let other = "6281300000016";
    h.customer_says(other, "Lain", "barang saya rusak kak")
        .await;
    h.wait_texts_to(other, 1).await;
    let (_, claimed) = h
        .api("budi", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(claimed["id"], json!(new_case));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_up_questions_when_enabled() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        quick(c);
        c.survey.nps = true;
        c.survey.ces = true;
        c.survey.comment = true;
    })
    .await;
    let who = "6281300000007";
    let case = resolved_case(&h, who, "Tono").await;
    fire_survey(&h, &case).await;
    let mut n = h.wait_texts_to(who, 3).await.len();
    for (answer, step_text) in [
        ("5", "Seberapa besar kemungkinan"),
        ("9", "Seberapa mudah"),
        ("gampang banget", "Ada saran"),
        // A comment that a spreadsheet would run as a formula (CSV injection).
        (FORMULA_COMMENT, "Terima kasih atas penilaiannya"),
    ] {
        h.customer_says(who, "Tono", answer).await;
        let texts = h.wait_texts_to(who, n + 1).await;
        assert!(texts[n].starts_with(step_text), "{answer}: {texts:?}");
        n += 1;
    }
    let nps_list = &lists_to(&h, who)[1]["interactive"]["action"]["sections"][0]["rows"];
    assert_eq!(nps_list.as_array().unwrap().len(), 10);
    wait_survey(&h, &case, "completed", |s| s.status == Status::Completed).await;
    let s = survey_of(&h, &case).await.unwrap();
    assert_eq!((s.csat, s.nps, s.ces), (Some(5), Some(9), Some(5)));
    assert_eq!(
        s.comment.as_deref(),
        Some(FORMULA_COMMENT),
        "stored as written"
    );
    // The supervisors' CSV shows it as text: a leading ' keeps spreadsheets
    // from running it.
    let csv = h
        .http
        .get(format!("{}/api/v1/reports/surveys.csv", h.base))
        .bearer_auth(common::harness::token("sari"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let comment = reader
        .headers()
        .unwrap()
        .iter()
        .position(|c| c == "comment")
        .unwrap();
    let row = reader.records().next().expect("one survey").unwrap();
    assert_eq!(&row[comment], format!("'{FORMULA_COMMENT}"), "{csv}");
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

const FORMULA_COMMENT: &str = "=HYPERLINK(\"http://phish.example\",\"Responnya cepat\")";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_follow_up_keeps_the_csat() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        quick(c);
        c.survey.nps = true;
    })
    .await;
    let who = "6281300000017";
    let case = resolved_case(&h, who, "Ani").await;
    fire_survey(&h, &case).await;
    h.customer_says(who, "Ani", "4").await;
    h.wait_texts_to(who, 4).await;
    h.clock.advance(Duration::from_secs(3601));
    wait_survey(&h, &case, "completed by the step timeout", |s| {
        s.status == Status::Completed
    })
    .await;
    let s = survey_of(&h, &case).await.unwrap();
    assert_eq!((s.csat, s.nps), (Some(4), None));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_conversations_get_english_surveys() {
    let h = Harness::start_with(StoreKind::Embedded, quick).await;
    let who = "6281300000008";
    let case = agent_case(
        &h,
        who,
        "John",
        "my order arrived broken and the screen is cracked, I want to complain",
        "siti",
        MIN,
        MIN,
    )
    .await;
    fire_survey(&h, &case).await;
    let list = &wait_lists(&h, who, 1).await[0]["interactive"];
    assert_eq!(
        list["body"]["text"],
        "Hi John, how satisfied are you with the help you got from us?"
    );
    assert_eq!(
        list["action"]["sections"][0]["rows"][0]["title"],
        "Very satisfied"
    );
    h.customer_says(who, "John", "very satisfied").await;
    wait_survey(&h, &case, "completed", |s| s.status == Status::Completed).await;
    let texts = h.wait_texts_to(who, 4).await;
    assert!(
        texts[3].starts_with("Thank you for your feedback"),
        "{texts:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_out_words_win_during_a_survey() {
    let h = Harness::start_with(StoreKind::Embedded, quick).await;
    let who = "6281300000009";
    let case = resolved_case(&h, who, "Dodi").await;
    fire_survey(&h, &case).await;
    let n = h.wait_texts_to(who, 3).await.len();
    h.customer_says(who, "Dodi", "stop").await;
    wait_survey(&h, &case, "opted out", |s| s.status == Status::OptedOut).await;
    let texts = h.wait_texts_to(who, n + 1).await;
    assert!(texts[n].contains("hapus dari daftar"), "{texts:?}");
    let contact = h
        .app
        .store()
        .contact(balas::channels::Channel::WhatsApp, who)
        .await
        .unwrap()
        .unwrap();
    assert!(contact.opted_out);
    h.stop().await;
}

// --- eligibility -----------------------------------------------------------

async fn no_survey_scheduled(h: &Harness, case: &str) {
    h.clock.advance(SEC);
    h.idle().await;
    assert!(survey_of(h, case).await.is_none(), "no survey for {case}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_surveys_are_not_sent() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        quick(c);
        c.survey.enabled = false;
    })
    .await;
    let who = "6281300000010";
    let case = resolved_case(&h, who, "Eko").await;
    no_survey_scheduled(&h, &case).await;
    assert!(lists_to(&h, who).is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_rate_zero_sends_none() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        quick(c);
        c.survey.sample_rate = 0.0;
    })
    .await;
    let who = "6281300000011";
    let case = resolved_case(&h, who, "Fajar").await;
    no_survey_scheduled(&h, &case).await;
    assert!(lists_to(&h, who).is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_out_contacts_are_not_surveyed() {
    let h = Harness::start_with(StoreKind::Embedded, quick).await;
    let who = "6281300000012";
    let before = h.texts_to(who).len();
    h.customer_says(who, "Gita", "barang saya datang rusak")
        .await;
    h.wait_texts_to(who, before + 1).await;
    h.app
        .store()
        .update_contact(balas::channels::Channel::WhatsApp, who, |c| {
            c.opted_out = true
        })
        .await
        .unwrap();
    let case = h.current_case(who).await.unwrap();
    let (status, _) = h
        .api("siti", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(status, 200);
    let (status, _) = h
        .api(
            "siti",
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    no_survey_scheduled(&h, &case).await;
    assert!(lists_to(&h, who).is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooldown_of_seven_days() {
    let h = Harness::start_with(StoreKind::Embedded, quick).await;
    let who = "6281300000013";
    let first = resolved_case(&h, who, "Hana").await;
    fire_survey(&h, &first).await;
    h.customer_says(who, "Hana", "5").await;
    wait_survey(&h, &first, "answered", |s| s.status == Status::Completed).await;

    // Three days later: another case, inside the cooldown.
    h.clock.advance(Duration::from_secs(3 * 86_400));
    let second = resolved_case(&h, who, "Hana").await;
    no_survey_scheduled(&h, &second).await;

    // Eight days after the first survey: surveyed again.
    h.clock.advance(Duration::from_secs(5 * 86_400));
    let third = resolved_case(&h, who, "Hana").await;
    let s = fire_survey(&h, &third).await;
    assert_eq!(s.status, Status::Asked);
    wait_lists(&h, who, 2).await;
    h.idle().await;
    assert_eq!(lists_to(&h, who).len(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_only_cases_only_with_bot_cases() {
    for bot_cases in [false, true] {
        let h = Harness::start_with(StoreKind::Embedded, |c| {
            quick(c);
            c.survey.bot_cases = bot_cases;
        })
        .await;
        let who = "6281300000014";
        h.customer_says(who, "Indah", "halo kak").await;
        h.wait_texts_to(who, 1).await;
        let case = h.current_case(who).await.unwrap();
        h.customer_says(who, "Indah", "terima kasih").await;
        h.wait_texts_to(who, 2).await;
        h.until("resolved by the bot", || async {
            h.current_case(who).await.is_none()
        })
        .await;
        if bot_cases {
            let s = fire_survey(&h, &case).await;
            assert!(s.bot_only);
            wait_lists(&h, who, 1).await;
        } else {
            no_survey_scheduled(&h, &case).await;
            assert!(lists_to(&h, who).is_empty());
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_reopened_before_the_survey_cancels_it() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        c.survey.delay = HumanDuration::secs(900);
    })
    .await;
    let who = "6281300000015";
    let case = resolved_case(&h, who, "Kiki").await;
    h.clock.advance(5 * MIN);
    let n = h.texts_to(who).len();
    h.customer_says(who, "Kiki", "kak barangnya masih rusak juga")
        .await;
    wait_survey(&h, &case, "cancelled", |s| s.status == Status::Cancelled).await;
    h.wait_texts_to(who, n + 1).await;
    h.clock.advance(20 * MIN);
    h.idle().await;
    assert!(lists_to(&h, who).is_empty(), "the survey was not sent");
    h.stop().await;
}

/// WhatsApp may accept the survey list and report the closed window (131047)
/// only in a later status: the survey then asks again with the template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_131047_falls_back_to_the_template() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        quick(c);
        c.survey.whatsapp_template = Some("survei_kepuasan_cs".into());
    })
    .await;
    let who = "6287788990022";
    let case = resolved_case(&h, who, "Wati").await;
    fire_survey(&h, &case).await;
    wait_lists(&h, who, 1).await;
    let id = format!("survey:{case}:csat:ask");
    h.until("the send is recorded", || async {
        h.app
            .store()
            .outbound(&id)
            .await
            .unwrap()
            .is_some_and(|r| r.platform_id.is_some())
    })
    .await;
    let wamid = h
        .app
        .store()
        .outbound(&id)
        .await
        .unwrap()
        .unwrap()
        .platform_id
        .unwrap();
    let now_s = h.clock.now_ms() / 1000;
    post_wa(
        &h,
        payloads::wa_status(
            &wamid,
            who,
            "failed",
            now_s,
            Some((131047, "Re-engagement message")),
        ),
    )
    .await;
    h.until("the template goes out", || async {
        bodies_to(&h, who).iter().any(|b| b["type"] == "template")
    })
    .await;
    let s = survey_of(&h, &case).await.unwrap();
    assert_eq!(
        (s.status, s.via.as_deref()),
        (Status::Asked, Some("template"))
    );
    h.stop().await;
}
