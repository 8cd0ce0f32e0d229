//! Reports over real cases (issue 6): four cases played through webhooks and
//! the API with the manual clock, then `GET /api/v1/reports/summary` in every
//! grouping and `GET /api/v1/reports/surveys.csv`, checked against numbers
//! worked out by hand below.
//!
//! | case | who  | first reply | resolved after | survey        |
//! |------|------|-------------|----------------|---------------|
//! | A    | siti | 2 min       | 10 min         | CSAT 5        |
//! | B    | budi | 4 min       | 20 min         | CSAT 2        |
//! | C    | bot  | –           | 1 min          | none (bot)    |
//! | D    | siti | 9 min       | 30 min         | sent, no answer |
//!
//! Total: 4 cases, 1 bot-only, 3 handed off; 3 surveys sent, 2 answered →
//! response rate 2/3 = 0.67; CSAT 5 and 2 → 50 % satisfied, average 3.5.
//! First responses 120, 240, 540 s → median 240, p90 (rank ⌈2.7⌉ = 3) 540.
//! Resolutions 60, 600, 1200, 1800 s → median (600 + 1200) / 2 = 900,
//! p90 (rank ⌈3.6⌉ = 4) 1800.
//! siti: 2 cases, 2 sent, 1 answered → 0.5, CSAT 100 % / 5.0, first responses
//! 120, 540 → median 330, p90 540; resolutions 600, 1800 → median 1200, p90 1800.

mod common;

use std::time::Duration;

use balas::survey::Status;
use common::harness::{Harness, StoreKind};
use reqwest::Method;
use serde_json::{Value, json};

const MIN: u64 = 60;

async fn agent_case(
    h: &Harness,
    who: &str,
    agent: &str,
    reply_min: u64,
    resolve_min: u64,
) -> String {
    let before = h.texts_to(who).len();
    h.customer_says(who, "Pelanggan", "barang saya datang rusak, layarnya pecah")
        .await;
    h.wait_texts_to(who, before + 1).await;
    let case = h.current_case(who).await.expect("a case");
    // The conversation is queued first, then listed in its queue.
    h.until("the queue lists it", || async {
        h.app
            .store()
            .waiting("complaints")
            .await
            .unwrap()
            .contains(&case)
    })
    .await;
    let (status, conv) = h
        .api(agent, Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!((status, &conv["id"]), (200, &json!(case)), "{conv}");
    h.clock.advance(Duration::from_secs(reply_min * MIN));
    let (status, _) = h
        .api(
            agent,
            Method::POST,
            &format!("/api/v1/conversations/{case}/messages"),
            Some(json!({"text": "Baik Kak, kami bantu."})),
        )
        .await;
    assert_eq!(status, 202);
    h.wait_texts_to(who, before + 2).await;
    h.clock.advance(Duration::from_secs(resolve_min * MIN));
    let (status, _) = h
        .api(
            agent,
            Method::POST,
            &format!("/api/v1/conversations/{case}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // The survey fires one second later.
    h.clock.advance(Duration::from_secs(1));
    h.until("survey asked", || async {
        h.app
            .store()
            .survey(&case)
            .await
            .unwrap()
            .is_some_and(|s| s.status == Status::Asked && s.via.is_some())
    })
    .await;
    case
}

async fn answer(h: &Harness, who: &str, case: &str, text: &str) {
    h.customer_says(who, "Pelanggan", text).await;
    h.until("answered", || async {
        h.app
            .store()
            .survey(case)
            .await
            .unwrap()
            .is_some_and(|s| s.status == Status::Completed)
    })
    .await;
}

async fn summary(h: &Harness, group_by: &str) -> Value {
    let (status, v) = h
        .api(
            "sari",
            Method::GET,
            &format!("/api/v1/reports/summary?group_by={group_by}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

fn group<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == name)
        .unwrap_or_else(|| panic!("group {name} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_numbers_match_hand_computed_values() {
    let h = Harness::start_with(StoreKind::Embedded, |c| {
        c.survey.delay = balas::config::HumanDuration::secs(1);
        c.survey.recovery_handoff = false;
    })
    .await;
    let (a_who, b_who, c_who, d_who) = (
        "6281400000001",
        "6281400000002",
        "6281400000003",
        "6281400000004",
    );
    let a = agent_case(&h, a_who, "siti", 2, 8).await;
    answer(&h, a_who, &a, "5").await;
    let b = agent_case(&h, b_who, "budi", 4, 16).await;
    answer(&h, b_who, &b, "2").await;
    // C: the bot answers and the customer closes it a minute later.
    h.customer_says(c_who, "Pelanggan", "halo kak").await;
    h.wait_texts_to(c_who, 1).await;
    h.clock.advance(Duration::from_secs(MIN));
    h.customer_says(c_who, "Pelanggan", "terima kasih").await;
    h.until("bot resolved", || async {
        h.current_case(c_who).await.is_none()
    })
    .await;
    let d = agent_case(&h, d_who, "siti", 9, 21).await;

    let v = summary(&h, "agent").await;
    let t = &v["total"];
    assert_eq!(
        (&t["cases"], &t["bot_only"], &t["handed_off"]),
        (&json!(4), &json!(1), &json!(3)),
        "{t}"
    );
    assert_eq!(
        (&t["surveys_sent"], &t["surveys_answered"]),
        (&json!(3), &json!(2))
    );
    assert_eq!(t["response_rate"], 0.67);
    assert_eq!(t["csat_pct"], 50.0);
    assert_eq!(t["csat_avg"], 3.5);
    assert_eq!(t["nps"], Value::Null);
    assert_spread(&t["first_response"], 240.0, 540.0);
    assert_spread(&t["resolution"], 900.0, 1800.0);
    let names: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bot", "budi", "siti"]);
    let siti = group(&v, "siti");
    assert_eq!(siti["cases"], 2);
    assert_eq!(siti["surveys_sent"], 2);
    assert_eq!(siti["response_rate"], 0.5);
    assert_eq!(siti["csat_pct"], 100.0);
    assert_eq!(siti["csat_avg"], 5.0);
    assert_spread(&siti["first_response"], 330.0, 540.0);
    assert_spread(&siti["resolution"], 1200.0, 1800.0);
    let budi = group(&v, "budi");
    assert_eq!(
        (&budi["csat_pct"], &budi["csat_avg"]),
        (&json!(0.0), &json!(2.0))
    );
    let bot = group(&v, "bot");
    assert_eq!(
        (&bot["cases"], &bot["bot_only"], &bot["surveys_sent"]),
        (&json!(1), &json!(1), &json!(0))
    );
    assert_eq!(bot["response_rate"], Value::Null);
    assert_eq!(bot["first_response"], Value::Null);
    assert_spread(&bot["resolution"], 60.0, 60.0);

    let v = summary(&h, "queue").await;
    assert_eq!(group(&v, "complaints")["cases"], 3);
    assert_eq!(group(&v, "none")["cases"], 1);
    let v = summary(&h, "day").await;
    assert_eq!(v["groups"].as_array().unwrap().len(), 1);
    assert_eq!(group(&v, "2026-11-23")["cases"], 4);
    let v = summary(&h, "channel").await;
    assert_eq!(group(&v, "whatsapp")["csat_avg"], 3.5);

    // Agents may not read reports.
    let (status, _) = h
        .api("siti", Method::GET, "/api/v1/reports/summary", None)
        .await;
    assert_eq!(status, 403);

    // The CSV: one row per survey.
    let resp = h
        .http
        .get(format!("{}/api/v1/reports/surveys.csv", h.base))
        .bearer_auth(common::harness::token("sari"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3, "{body}");
    let expect = [
        (&a, "siti", "completed", "5", "120", "600"),
        (&b, "budi", "completed", "2", "240", "1200"),
        (&d, "siti", "asked", "", "540", "1800"),
    ];
    for (row, (case, agent, status, csat, first, resolution)) in rows.iter().zip(expect) {
        assert_eq!(&row[col("case_id")], case.as_str());
        assert_eq!(&row[col("agent")], agent);
        assert_eq!(&row[col("status")], status);
        assert_eq!(&row[col("via")], "list");
        assert_eq!(&row[col("csat")], csat);
        assert_seconds(&row[col("first_response_s")], first);
        assert_seconds(&row[col("resolution_s")], resolution);
        assert_eq!(&row[col("bot_only")], "false");
    }
    h.stop().await;
}

/// The test clock keeps running between steps, so durations may exceed the
/// minutes the test jumped by a fraction of a second; allow 2 s.
fn assert_spread(v: &Value, median: f64, p90: f64) {
    let close = |k: &str, want: f64| v[k].as_f64().is_some_and(|x| (x - want).abs() <= 2.0);
    assert!(
        close("median_s", median) && close("p90_s", p90),
        "{v} vs median {median}, p90 {p90}"
    );
}

fn assert_seconds(got: &str, want: &str) {
    let (g, w): (f64, f64) = (got.parse().unwrap(), want.parse().unwrap());
    assert!((g - w).abs() <= 2.0, "{got} s vs {want} s");
}
