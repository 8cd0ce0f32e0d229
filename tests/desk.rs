//! The agent desk around conversations (issue 16), end to end on every store
//! (embedded, one Redis, a Redis Cluster): presence and push assignment, claiming a named conversation,
//! transfers that respect presence and capacity, snooze, auto-resolution of
//! idle bot cases, search, agent messages with `{{variables}}`, the
//! supervisors' board, the service measures of the reports, and templates
//! synced from the Graph mock. The several-process race of push assignment
//! is at the end (one Redis and a Cluster).

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use balas::clock::Clock;
use balas::config::{AssignmentMode, HumanDuration};
use balas::store::{SystemEvent, queues};
use common::graph_mock;
use common::harness::{Auth, Harness, StoreKind};
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(
    claim_a_named_conversation_with_claim_next_guards,
    transfer_to_an_agent_needs_them_online_with_room,
    push_assignment_in_turn_to_online_agents_with_room,
    least_busy_goes_to_the_agent_holding_fewest,
    a_silent_console_goes_offline_and_its_unanswered_chats_move_on,
    search_by_order_number_phone_name_case_id_and_text,
    snooze_until_the_customer_writes_or_a_time,
    idle_bot_cases_are_resolved_and_surveyed,
    agent_messages_render_variables_and_refuse_unknown_ones,
    the_board_shows_queues_agents_and_sla_breaches,
    reports_give_resolution_reopen_fcr_and_sla,
    templates_are_synced_and_broadcasts_checked_before_scheduling,
    each_number_is_checked_against_its_business_accounts_templates,
    semicolon_csv_with_a_byte_order_mark_is_read,
    desk_routes_check_role_and_queue,
);

on_shared_stores!(push_assignment_across_two_processes);

const COMPLAINT: &str = "barang saya datang rusak, layarnya pecah";
const MIN: Duration = Duration::from_secs(60);

// ---- helpers ---------------------------------------------------------------

fn code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error body: {v}"))
}

/// The customer writes; waits until every worker is idle (inbound handled,
/// push assignment done).
async fn say(h: &Harness, who: &str, text: &str) {
    h.customer_says(who, "Rina", text).await;
    h.drained().await;
    h.idle().await;
}

/// A complaint from `who`; returns the case.
async fn complain(h: &Harness, who: &str) -> String {
    say(h, who, COMPLAINT).await;
    h.current_case(who).await.expect("an open case")
}

async fn view(h: &Harness, case: &str) -> Value {
    let (status, v) = h
        .api(
            "sari",
            Method::GET,
            &format!("/api/v1/conversations/{case}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn act(h: &Harness, who: &str, case: &str, what: &str, body: Option<Value>) -> (u16, Value) {
    h.api(
        who,
        Method::POST,
        &format!("/api/v1/conversations/{case}/{what}"),
        body,
    )
    .await
}

async fn set_capacity(h: &Harness, user: &str, n: u32) {
    let (status, v) = h
        .api(
            "root",
            Method::PATCH,
            &format!("/api/v1/users/{user}"),
            Some(json!({ "max_concurrent": n })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

/// The system events of a case's transcript.
async fn events(h: &Harness, case: &str) -> Vec<SystemEvent> {
    h.app
        .store()
        .transcript(case)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.event)
        .collect()
}

fn push(c: &mut balas::config::Config) {
    c.handoff.assignment = AssignmentMode::RoundRobin;
    c.survey.enabled = false;
}

// ---- claim and transfer ----------------------------------------------------

async fn claim_a_named_conversation_with_claim_next_guards(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.survey.enabled = false).await;
    let first = complain(&h, "6281600000001").await;
    let second = complain(&h, "6281600000002").await;

    // The second one, although the first waits longer.
    let (status, v) = act(&h, "budi", &second, "claim", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["state"].clone(), v["agent"].clone()),
        (json!("assigned"), json!("budi"))
    );
    let lines = events(&h, &second).await;
    assert!(
        lines.contains(&SystemEvent::Assigned {
            how: "claim".into(),
            agent: "budi".into()
        }),
        "{lines:?}"
    );
    // Taken: nobody else gets it, and claiming it again says so.
    let (status, v) = act(&h, "siti", &second, "claim", None).await;
    assert_eq!((status, code(&v)), (409, "taken"));
    // Full: budi may hold one.
    set_capacity(&h, "budi", 1).await;
    let (status, v) = act(&h, "budi", &first, "claim", None).await;
    assert_eq!((status, code(&v)), (409, "agent_full"), "{v}");
    assert_eq!(
        view(&h, &first).await["state"],
        json!("queued"),
        "still waiting"
    );
    // Claim-next agrees: nothing for a full agent.
    let (status, _) = h
        .api("budi", Method::POST, "/api/v1/queue/claim", Some(json!({})))
        .await;
    assert_eq!(status, 204);
    // Not a queue's conversation: 404 for the unknown, 409 for a bot case.
    let (status, _) = act(&h, "siti", "20260101-NOPE22", "claim", None).await;
    assert_eq!(status, 404);
    say(&h, "6281600000003", "halo").await;
    let bot_case = h.current_case("6281600000003").await.unwrap();
    let (status, v) = act(&h, "siti", &bot_case, "claim", None).await;
    assert_eq!((status, code(&v)), (409, "taken"), "{v}");
    // Two agents claiming one conversation at once: exactly one gets it.
    let (a, b) = tokio::join!(
        act(&h, "siti", &first, "claim", None),
        act(&h, "sari", &first, "claim", None)
    );
    assert_eq!(
        [a.0, b.0].iter().filter(|s| **s == 200).count(),
        1,
        "{a:?} {b:?}"
    );
    h.stop().await;
}

async fn transfer_to_an_agent_needs_them_online_with_room(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.survey.enabled = false).await;
    let case = complain(&h, "6281600000011").await;
    assert_eq!(act(&h, "siti", &case, "claim", None).await.0, 200);

    // The list to choose from says who can take it.
    let (_, list) = h.api("siti", Method::GET, "/api/v1/agents", None).await;
    let budi = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "budi")
        .unwrap()
        .clone();
    assert_eq!(
        (budi["presence"].clone(), budi["available"].clone()),
        (json!("offline"), json!(false))
    );
    let to_budi = Some(json!({ "agent": "budi" }));
    let (status, v) = act(&h, "siti", &case, "transfer", to_budi.clone()).await;
    assert_eq!((status, code(&v)), (409, "agent_offline"));
    h.presence("budi", "away").await;
    let (status, v) = act(&h, "siti", &case, "transfer", to_budi.clone()).await;
    assert_eq!(
        (status, code(&v)),
        (409, "agent_offline"),
        "away takes none: {v}"
    );
    h.presence("budi", "online").await;
    set_capacity(&h, "budi", 1).await;
    let other = complain(&h, "6281600000012").await;
    assert_eq!(act(&h, "budi", &other, "claim", None).await.0, 200);
    let (status, v) = act(&h, "siti", &case, "transfer", to_budi.clone()).await;
    assert_eq!((status, code(&v)), (409, "agent_full"), "{v}");
    assert_eq!(view(&h, &case).await["agent"], json!("siti"), "unchanged");
    set_capacity(&h, "budi", 2).await;
    let (status, v) = act(&h, "siti", &case, "transfer", to_budi).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["agent"].clone(), v["transfers"].clone()),
        (json!("budi"), json!(1))
    );
    let (_, list) = h.api("siti", Method::GET, "/api/v1/agents", None).await;
    let budi = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "budi")
        .unwrap()
        .clone();
    assert_eq!(
        (budi["load"].clone(), budi["available"].clone()),
        (json!(2), json!(false))
    );
    h.stop().await;
}

// ---- push assignment -------------------------------------------------------

async fn push_assignment_in_turn_to_online_agents_with_room(store: StoreKind) {
    let h = Harness::start_with(store, push).await;
    set_capacity(&h, "siti", 3).await;
    set_capacity(&h, "budi", 1).await;
    h.presence("siti", "online").await;
    h.presence("budi", "online").await;
    h.presence("sari", "away").await;
    // root never opened a console: offline.
    let mut cases = Vec::new();
    for i in 0..5 {
        cases.push(complain(&h, &format!("62816000001{i:02}")).await);
    }
    let mut by_agent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut waiting = Vec::new();
    for c in &cases {
        let v = view(&h, c).await;
        match v["agent"].as_str() {
            Some(a) => by_agent.entry(a.to_string()).or_default().push(c.clone()),
            None => waiting.push(c.clone()),
        }
    }
    assert_eq!(by_agent["siti"].len(), 3, "{by_agent:?}");
    assert_eq!(by_agent["budi"].len(), 1, "{by_agent:?}");
    assert_eq!(
        by_agent.len(),
        2,
        "nobody away or offline gets one: {by_agent:?}"
    );
    assert_eq!(waiting, [cases[4].clone()], "the last one waits");
    let first = events(&h, &cases[0]).await;
    assert!(
        first
            .iter()
            .any(|e| matches!(e, SystemEvent::Assigned { how, .. } if how == "push")),
        "{first:?}"
    );
    // Budi goes offline without replying: his chat goes back to the front,
    // and waits (siti is full).
    let budis = by_agent["budi"][0].clone();
    h.presence("budi", "offline").await;
    h.idle().await;
    let v = view(&h, &budis).await;
    assert_eq!(
        (v["state"].clone(), v["agent"].clone()),
        (json!("queued"), Value::Null)
    );
    let (_, q) = h.api("siti", Method::GET, "/api/v1/queue", None).await;
    let order: Vec<&str> = q["queues"]["complaints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [budis.as_str(), cases[4].as_str()],
        "back at the front"
    );
    // Siti replies to one and resolves it: the front one is hers at once.
    let done = by_agent["siti"][0].clone();
    assert_eq!(act(&h, "siti", &done, "resolve", None).await.0, 200);
    h.idle().await;
    assert_eq!(view(&h, &budis).await["agent"], json!("siti"));
    assert_eq!(view(&h, &cases[4]).await["state"], json!("queued"));
    // A chat siti answered stays hers when she goes offline.
    let answered = by_agent["siti"][1].clone();
    assert_eq!(
        act(
            &h,
            "siti",
            &answered,
            "messages",
            Some(json!({ "text": "Baik Kak, saya cek." }))
        )
        .await
        .0,
        202
    );
    h.presence("siti", "offline").await;
    h.idle().await;
    assert_eq!(view(&h, &answered).await["agent"], json!("siti"));
    assert_eq!(
        view(&h, &budis).await["state"],
        json!("queued"),
        "unanswered ones move on"
    );
    // Back online: the queue drains into her free capacity again.
    h.presence("siti", "online").await;
    h.idle().await;
    assert_eq!(view(&h, &budis).await["agent"], json!("siti"));
    h.stop().await;
}

async fn least_busy_goes_to_the_agent_holding_fewest(store: StoreKind) {
    let h = Harness::start_with(store, |c| {
        push(c);
        c.handoff.assignment = AssignmentMode::LeastBusy;
    })
    .await;
    h.presence("siti", "online").await;
    let a = complain(&h, "6281600000201").await;
    let b = complain(&h, "6281600000202").await;
    assert_eq!(view(&h, &a).await["agent"], json!("siti"));
    assert_eq!(view(&h, &b).await["agent"], json!("siti"));
    h.presence("budi", "online").await;
    let c = complain(&h, "6281600000203").await;
    let d = complain(&h, "6281600000204").await;
    assert_eq!(
        view(&h, &c).await["agent"],
        json!("budi"),
        "budi holds none"
    );
    assert_eq!(view(&h, &d).await["agent"], json!("budi"), "still fewer");
    let e = complain(&h, "6281600000205").await;
    let agent = view(&h, &e).await["agent"].clone();
    assert!(agent == json!("siti") || agent == json!("budi"), "{agent}");
    h.stop().await;
}

async fn a_silent_console_goes_offline_and_its_unanswered_chats_move_on(store: StoreKind) {
    let h = Harness::start_with(store, push).await;
    h.presence("siti", "online").await;
    let case = complain(&h, "6281600000301").await;
    assert_eq!(view(&h, &case).await["agent"], json!("siti"));
    // Heartbeats keep her online.
    h.clock.advance(MIN);
    h.presence("siti", "online").await;
    h.clock.advance(MIN);
    h.idle().await;
    assert_eq!(view(&h, &case).await["agent"], json!("siti"));
    h.presence("budi", "online").await;
    // Then her console falls silent: 90 s later she is offline, and the chat
    // she never answered goes to budi.
    h.clock.advance(Duration::from_secs(100));
    h.presence("budi", "online").await;
    h.idle().await;
    let (_, me) = h
        .api("siti", Method::GET, "/api/v1/me/presence", None)
        .await;
    assert_eq!(me["status"], json!("offline"));
    let v = view(&h, &case).await;
    assert_eq!(v["agent"], json!("budi"), "{v}");
    let lines = events(&h, &case).await;
    assert!(
        lines.contains(&SystemEvent::Requeued {
            how: "agent_offline".into(),
            queue: "complaints".into()
        }),
        "{lines:?}"
    );
    h.stop().await;
}

// ---- search ----------------------------------------------------------------

async fn search(h: &Harness, who: &str, q: &str) -> (u16, Value) {
    let q: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    h.api(
        who,
        Method::GET,
        &format!("/api/v1/conversations?q={q}"),
        None,
    )
    .await
}

fn ids(v: &Value) -> Vec<String> {
    v["conversations"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

async fn search_by_order_number_phone_name_case_id_and_text(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.survey.enabled = false).await;
    let who = "6281600000401";
    h.customer_says(
        who,
        "Dewi Lestari",
        "pesanan INV-20931 belum sampai, resi JNE88812345",
    )
    .await;
    h.drained().await;
    let case = h.current_case(who).await.unwrap();
    let other = complain(&h, "6281600000402").await;
    for q in [
        "INV-20931",
        "inv-20931",
        "JNE88812345",
        "Dewi",
        "dewi lestari",
        "081600000401",
        "+62 816-0000-0401",
        &case,
        "belum sampai",
    ] {
        let (status, v) = search(&h, "siti", q).await;
        assert_eq!(status, 200, "{q}: {v}");
        assert_eq!(ids(&v), std::slice::from_ref(&case), "{q}");
    }
    let (_, v) = search(&h, "siti", "INV-99999").await;
    assert!(ids(&v).is_empty());
    let (status, v) = search(&h, "siti", "?").await;
    assert_eq!((status, code(&v)), (400, "bad_request"));
    // Agent messages make it findable too.
    assert_eq!(act(&h, "siti", &other, "claim", None).await.0, 200);
    let (status, _) = act(
        &h,
        "siti",
        &other,
        "messages",
        Some(json!({ "text": "Retur RMA-7781 sudah dibuat" })),
    )
    .await;
    assert_eq!(status, 202);
    let (_, v) = search(&h, "siti", "RMA-7781").await;
    assert_eq!(ids(&v), std::slice::from_ref(&other));

    // Pages, most recent first, with a cursor.
    let mut kardus = Vec::new();
    for i in 0..3 {
        let w = format!("62816000005{i:02}");
        h.clock.advance(Duration::from_secs(1));
        say(&h, &w, &format!("kardus penyok nomor {i}")).await;
        kardus.push(h.current_case(&w).await.unwrap());
    }
    let (_, p1) = h
        .api(
            "siti",
            Method::GET,
            "/api/v1/conversations?q=kardus&limit=2",
            None,
        )
        .await;
    assert_eq!(ids(&p1), [kardus[2].clone(), kardus[1].clone()]);
    let cursor = p1["next_cursor"].as_str().expect("a next page").to_string();
    let (_, p2) = h
        .api(
            "siti",
            Method::GET,
            &format!("/api/v1/conversations?q=kardus&limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(ids(&p2), [kardus[0].clone()]);
    assert_eq!(p2["next_cursor"], Value::Null);
    let (status, v) = h
        .api(
            "siti",
            Method::GET,
            "/api/v1/conversations?q=kardus&cursor=bogus",
            None,
        )
        .await;
    assert_eq!((status, code(&v)), (400, "bad_request"));

    // An agent of another queue finds nothing of the complaints queue.
    let (status, v) = h
        .api(
            "root",
            Method::POST,
            "/api/v1/users",
            Some(json!({ "id": "ratna", "name": "Ratna", "role": "agent", "queues": ["refunds"] })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (_, t) = h
        .api(
            "root",
            Method::POST,
            "/api/v1/users/ratna/tokens",
            Some(json!({})),
        )
        .await;
    let token = t["token"].as_str().unwrap().to_string();
    let (status, v, _) = h
        .call(
            common::harness::Auth::Bearer(&token),
            Method::GET,
            "/api/v1/conversations?q=RMA-7781",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(ids(&v).is_empty(), "{v}");
    h.stop().await;
}

// ---- snooze ----------------------------------------------------------------

async fn snooze_until_the_customer_writes_or_a_time(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.survey.enabled = false).await;
    let who = "6281600000601";
    let case = complain(&h, who).await;
    let (status, v) = act(&h, "siti", &case, "snooze", None).await;
    assert_eq!(
        (status, code(&v)),
        (409, "not_owner"),
        "only the owner: {v}"
    );
    assert_eq!(act(&h, "siti", &case, "claim", None).await.0, 200);
    let (status, v) = act(
        &h,
        "siti",
        &case,
        "snooze",
        Some(json!({ "until": "2020-01-01T00:00:00Z" })),
    )
    .await;
    assert_eq!((status, code(&v)), (400, "bad_request"), "{v}");
    let (status, v) = act(&h, "siti", &case, "snooze", Some(json!({}))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["snooze"]["until_ms"], Value::Null);
    // Waiting on the customer is not a missed reply.
    h.clock.advance(11 * MIN);
    h.idle().await;
    assert_eq!(view(&h, &case).await["agent"], json!("siti"));
    let (_, mine) = h
        .api(
            "siti",
            Method::GET,
            "/api/v1/conversations?agent=me&state=assigned",
            None,
        )
        .await;
    assert_eq!(mine["conversations"][0]["snooze"]["by"], json!("siti"));
    // The customer writes: awake.
    say(&h, who, "sudah saya kirim fotonya").await;
    let v = view(&h, &case).await;
    assert_eq!(v["snooze"], Value::Null, "{v}");
    assert!(events(&h, &case).await.contains(&SystemEvent::Woke {
        why: "message".into()
    }));

    // Until a time: wakes then, by itself.
    let until = jiff::Timestamp::from_millisecond(h.clock.now_ms() + 3_600_000).unwrap();
    let (status, v) = act(
        &h,
        "siti",
        &case,
        "snooze",
        Some(json!({ "until": until.to_string() })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    h.clock.advance(59 * MIN);
    h.idle().await;
    assert!(view(&h, &case).await["snooze"].is_object(), "not yet");
    h.clock.advance(2 * MIN);
    h.idle().await;
    assert_eq!(view(&h, &case).await["snooze"], Value::Null);
    assert!(
        events(&h, &case)
            .await
            .contains(&SystemEvent::Woke { why: "time".into() })
    );
    // Woken by hand.
    assert_eq!(act(&h, "siti", &case, "snooze", None).await.0, 200);
    let (status, v) = h
        .api(
            "siti",
            Method::DELETE,
            &format!("/api/v1/conversations/{case}/snooze"),
            None,
        )
        .await;
    assert_eq!((status, v["snooze"].clone()), (200, Value::Null));
    h.stop().await;
}

// ---- auto-resolve ----------------------------------------------------------

async fn idle_bot_cases_are_resolved_and_surveyed(store: StoreKind) {
    let h = Harness::start_with(store, |c| {
        c.cases.auto_resolve_after = HumanDuration::secs(3600);
        c.survey.bot_cases = true;
        c.survey.delay = HumanDuration::secs(0);
    })
    .await;
    let who = "6281600000701";
    say(&h, who, "jam buka toko kapan?").await;
    let case = h.current_case(who).await.unwrap();
    assert_eq!(view(&h, &case).await["state"], json!("bot"));
    h.clock.advance(30 * MIN);
    say(&h, who, "hari minggu buka jam berapa?").await;
    // An hour after the first message, but not after the last: still open.
    h.clock.advance(31 * MIN);
    h.idle().await;
    assert_eq!(view(&h, &case).await["state"], json!("bot"));
    let before = h.texts_to(who).len();
    h.clock.advance(30 * MIN);
    h.idle().await;
    let v = view(&h, &case).await;
    assert_eq!(
        (v["state"].clone(), v["resolved_ms"].is_i64()),
        (json!("resolved"), true),
        "{v}"
    );
    assert!(
        events(&h, &case)
            .await
            .contains(&SystemEvent::Resolved { by: "auto".into() })
    );
    // Surveyed like any resolution (bot_cases = true): the question goes out.
    h.drained().await;
    h.idle().await;
    let texts = h.texts_to(who);
    assert_eq!(texts.len(), before + 1, "{texts:?}");
    let survey = h
        .app
        .store()
        .survey(&case)
        .await
        .unwrap()
        .expect("a survey");
    assert!(survey.sent_ms.is_some());
    // A handed-off case is never auto-resolved.
    let queued = complain(&h, "6281600000702").await;
    h.clock.advance(Duration::from_secs(2 * 3600));
    h.idle().await;
    assert_eq!(view(&h, &queued).await["state"], json!("queued"));
    h.stop().await;
}

// ---- variables in agent messages --------------------------------------------

async fn agent_messages_render_variables_and_refuse_unknown_ones(store: StoreKind) {
    let h = Harness::start_with(store, |c| {
        c.survey.enabled = false;
        c.intents
            .variables
            .insert("shop_name".into(), "Toko Balas".into());
    })
    .await;
    let who = "6281600000801";
    let case = complain(&h, who).await;
    assert_eq!(act(&h, "siti", &case, "claim", None).await.0, 200);
    let before = h.texts_to(who).len();
    let (status, v) = act(
        &h,
        "siti",
        &case,
        "messages",
        Some(json!({ "text": "Halo {{contact.nama}}" })),
    )
    .await;
    assert_eq!((status, code(&v)), (422, "unknown_variable"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contact.nama")
    );
    let (status, v) = act(
        &h,
        "siti",
        &case,
        "messages",
        Some(json!({ "text": "Halo {{contact.name}}, kasus {{ case.id }} di {{shop_name}} kami cek." })),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    h.drained().await;
    let texts = h.texts_to(who);
    assert_eq!(texts.len(), before + 1, "only the good one went out");
    assert_eq!(
        texts.last().unwrap(),
        &format!("Halo Rina, kasus {case} di Toko Balas kami cek.")
    );
    // The canned list renders the same way for previews.
    let (_, canned) = h
        .api(
            "siti",
            Method::GET,
            &format!("/api/v1/canned?conversation={case}"),
            None,
        )
        .await;
    assert_eq!(canned["conversation_id"], json!(case));
    h.stop().await;
}

// ---- who may do what ----------------------------------------------------------

/// Every desk route checks the role, and the conversation routes the queue:
/// an agent sees and takes only their queues' conversations (404 for the
/// others, as for conversations that do not exist), marketers see no
/// customer messages, only supervisors read the board, only marketers (and
/// admins) the templates.
async fn desk_routes_check_role_and_queue(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.survey.enabled = false).await;
    let (status, v) = h
        .api(
            "root",
            Method::PATCH,
            "/api/v1/users/budi",
            Some(json!({ "queues": ["billing"] })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    say(&h, "6281600000801", "pesanan INV-8080 belum sampai").await;
    let case = complain(&h, "6281600000802").await;
    // Budi works billing: the complaint is unknown to him.
    let (status, v) = search(&h, "budi", "6281600000802").await;
    assert_eq!(status, 200, "{v}");
    assert!(ids(&v).is_empty(), "{v}");
    assert_eq!(
        ids(&search(&h, "siti", "6281600000802").await.1),
        std::slice::from_ref(&case)
    );
    for what in ["claim", "snooze"] {
        let (status, v) = act(&h, "budi", &case, what, None).await;
        assert_eq!(status, 404, "{what}: {v}");
    }
    let (status, _) = h
        .api(
            "budi",
            Method::DELETE,
            &format!("/api/v1/conversations/{case}/snooze"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // Marketers: no conversations, no presence, no board.
    let (status, v) = search(&h, "maya", "INV-8080").await;
    assert_eq!((status, code(&v)), (403, "forbidden"));
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/v1/conversations/{case}/claim"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{case}/snooze"),
            None,
        ),
        (
            Method::PUT,
            "/api/v1/me/presence".to_string(),
            Some(json!({"status": "online"})),
        ),
        (Method::GET, "/api/v1/me/presence".to_string(), None),
        (Method::GET, "/api/v1/board".to_string(), None),
        (
            Method::GET,
            format!("/api/v1/canned?conversation={case}"),
            None,
        ),
    ] {
        let (status, v) = h.api("maya", method.clone(), &path, body).await;
        assert_eq!(status, 403, "maya {method} {path}: {v}");
    }
    // Agents: no board, no templates, no broadcast settings.
    for path in [
        "/api/v1/board",
        "/api/v1/templates",
        "/api/v1/broadcasts/settings",
    ] {
        let (status, _) = h.api("siti", Method::GET, path, None).await;
        assert_eq!(status, 403, "siti GET {path}");
    }
    let (status, _) = h
        .api("siti", Method::POST, "/api/v1/templates/sync", None)
        .await;
    assert_eq!(status, 403);
    // Names are for everyone signed in; nobody else.
    assert_eq!(
        h.api("maya", Method::GET, "/api/v1/names", None).await.0,
        200
    );
    let (status, _, _) = h
        .call(Auth::Anonymous, Method::GET, "/api/v1/names", None)
        .await;
    assert_eq!(status, 401);
    // What the desk did is in the audit log.
    assert_eq!(act(&h, "siti", &case, "claim", None).await.0, 200);
    assert_eq!(act(&h, "siti", &case, "snooze", None).await.0, 200);
    let (status, v) = h
        .api("root", Method::GET, "/api/v1/audit?actor=siti", None)
        .await;
    assert_eq!(status, 200, "{v}");
    let actions: Vec<&str> = v["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"conversation.claim") && actions.contains(&"conversation.snooze"),
        "{actions:?}"
    );
    h.stop().await;
}

// ---- board -------------------------------------------------------------------

async fn the_board_shows_queues_agents_and_sla_breaches(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.survey.enabled = false).await;
    let (status, _) = h.api("siti", Method::GET, "/api/v1/board", None).await;
    assert_eq!(status, 403, "supervisors only");
    h.presence("siti", "online").await;
    let a = complain(&h, "6281600000901").await;
    h.clock.advance(2 * MIN);
    let b = complain(&h, "6281600000902").await;
    assert_eq!(act(&h, "siti", &a, "claim", None).await.0, 200);
    h.clock.advance(4 * MIN);
    h.presence("siti", "online").await;
    let (status, board) = h.api("sari", Method::GET, "/api/v1/board", None).await;
    assert_eq!(status, 200, "{board}");
    let q = board["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "complaints")
        .unwrap();
    assert_eq!(q["waiting"], json!(1));
    assert_eq!(q["conversations"][0]["id"], json!(b));
    assert!(q["longest_wait_s"].as_i64().unwrap() >= 240);
    // a: handed off 6 min ago, claimed, not answered: a breach (5 min target).
    assert_eq!(q["sla_breaches"], json!(1), "{q}");
    let siti = board["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "siti")
        .unwrap();
    assert_eq!(
        (
            siti["presence"].clone(),
            siti["load"].clone(),
            siti["capacity"].clone()
        ),
        (json!("online"), json!(1), json!(5))
    );
    assert_eq!(siti["conversations"][0]["id"], json!(a));
    assert_eq!(siti["conversations"][0]["sla_breached"], json!(true));
    assert_eq!(siti["since_last_reply_s"], Value::Null);
    assert!(
        board["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != "maya"),
        "no marketers"
    );
    h.stop().await;
}

// ---- reports -----------------------------------------------------------------

async fn reports_give_resolution_reopen_fcr_and_sla(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.survey.enabled = false).await;
    h.presence("budi", "online").await;
    // A: answered in 1 minute, resolved; the customer comes back an hour later.
    let a = complain(&h, "6281600001001").await;
    assert_eq!(act(&h, "siti", &a, "claim", None).await.0, 200);
    h.clock.advance(MIN);
    assert_eq!(
        act(
            &h,
            "siti",
            &a,
            "messages",
            Some(json!({ "text": "Kami bantu, Kak." }))
        )
        .await
        .0,
        202
    );
    assert_eq!(act(&h, "siti", &a, "resolve", None).await.0, 200);
    // B: transferred, answered after 6 minutes, resolved.
    let b = complain(&h, "6281600001002").await;
    assert_eq!(act(&h, "siti", &b, "claim", None).await.0, 200);
    assert_eq!(
        act(&h, "siti", &b, "transfer", Some(json!({ "agent": "budi" })))
            .await
            .0,
        200
    );
    h.clock.advance(6 * MIN);
    assert_eq!(
        act(
            &h,
            "budi",
            &b,
            "messages",
            Some(json!({ "text": "Saya Budi." }))
        )
        .await
        .0,
        202
    );
    assert_eq!(act(&h, "budi", &b, "resolve", None).await.0, 200);
    h.clock.advance(60 * MIN);
    say(&h, "6281600001001", "barangnya masih rusak juga").await;
    let reopened = h.current_case("6281600001001").await.unwrap();
    assert_ne!(reopened, a);
    assert_eq!(view(&h, &reopened).await["reopen_of"], json!(a));
    assert!(
        events(&h, &reopened)
            .await
            .contains(&SystemEvent::Reopened { of: a.clone() })
    );

    let (status, r) = h
        .api(
            "sari",
            Method::GET,
            "/api/v1/reports/summary?group_by=agent",
            None,
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let t = &r["total"];
    // Opened 3 (A, B, A again), resolved 2; A reopened; B transferred; SLA:
    // A within 5 minutes, B not.
    assert_eq!(
        (t["opened"].clone(), t["cases"].clone()),
        (json!(3), json!(2)),
        "{t}"
    );
    assert_eq!(t["resolution_rate_pct"], json!(66.67));
    assert_eq!(
        (t["reopened"].clone(), t["reopen_rate_pct"].clone()),
        (json!(1), json!(50.0))
    );
    assert_eq!(t["first_contact_resolution_pct"], json!(0.0));
    assert_eq!(
        (
            t["sla_met"].clone(),
            t["sla_cases"].clone(),
            t["sla_attainment_pct"].clone()
        ),
        (json!(1), json!(2), json!(50.0))
    );
    let budi = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "budi")
        .unwrap();
    assert_eq!(
        (budi["cases"].clone(), budi["sla_attainment_pct"].clone()),
        (json!(1), json!(0.0))
    );
    // The CSV says the same.
    let resp = h
        .http
        .get(format!(
            "{}/api/v1/reports/summary.csv?group_by=agent",
            h.base
        ))
        .bearer_auth(common::harness::token("sari"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("group,opened,resolved,resolution_rate_pct,reopened,reopen_rate_pct,first_contact_resolution_pct,sla_met,sla_cases,sla_attainment_pct"));
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("all,3,2,66.67,1,50,0,1,2,50,"),
        "{csv}"
    );
    h.stop().await;
}

// ---- templates and CSV ---------------------------------------------------------

const WABA: &str = "102290129340398";

fn with_templates(c: &mut balas::config::Config) {
    c.whatsapp.business_account_id = WABA.into();
}

async fn templates_are_synced_and_broadcasts_checked_before_scheduling(store: StoreKind) {
    let h = Harness::start_with(store, with_templates).await;
    let mut list = vec![
        graph_mock::template(
            "promo_akhir_tahun",
            "id",
            "APPROVED",
            "MARKETING",
            "Halo {{1}}, diskon {{2}} untuk Kakak!",
            &["Mau", "Tidak"],
        ),
        graph_mock::template(
            "promo_akhir_tahun",
            "en_US",
            "APPROVED",
            "MARKETING",
            "Hi {{1}}, {{2}} off!",
            &[],
        ),
        graph_mock::template("info_baru", "id", "PENDING", "UTILITY", "Info baru", &[]),
    ];
    // More than one page (the client asks for 100 at a time).
    for i in 0..120 {
        list.push(graph_mock::template(
            &format!("lama_{i:03}"),
            "id",
            "REJECTED",
            "MARKETING",
            "x",
            &[],
        ));
    }
    h.mock.set_templates(list);
    let (status, v) = h.api("siti", Method::GET, "/api/v1/templates", None).await;
    assert_eq!(status, 403, "marketers and admins");
    let (status, v2) = h.api("maya", Method::GET, "/api/v1/templates", None).await;
    assert_eq!(status, 200, "{v} {v2}");
    assert_eq!(v2["configured"], json!(true));
    let templates = v2["templates"].as_array().unwrap();
    assert_eq!(templates.len(), 123);
    let promo = templates
        .iter()
        .find(|t| t["name"] == "promo_akhir_tahun" && t["language"] == "id")
        .unwrap();
    assert_eq!(
        (promo["parameters"].clone(), promo["status"].clone()),
        (json!(2), json!("APPROVED"))
    );
    assert_eq!(promo["buttons"][0]["text"], json!("Mau"));
    let reqs = h.mock.template_requests();
    assert_eq!(reqs.len(), 2, "two pages");
    assert!(
        reqs.iter()
            .all(|r| r.path == format!("/{WABA}/message_templates")
                && r.auth.as_deref() == Some("Bearer graph-token"))
    );
    assert!(reqs[1].body["after"].as_str().is_some());
    // Synced again on request.
    let (status, _) = h
        .api("maya", Method::POST, "/api/v1/templates/sync", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(h.mock.template_requests().len(), 4);

    let body = |name: &str, language: &str, params: Vec<&str>| {
        json!({
            "name": "Promo", "channel": "whatsapp",
            "message": {"template": {"name": name, "language": language, "body_parameters": params}},
            "audience": {"recipients": [{"to": "6281600001101", "variables": {"name": "Rina"}}]},
            "send_at": "2030-01-01T02:00:00Z",
        })
    };
    for (b, want) in [
        (body("tidak_ada", "id", vec![]), "unknown_template"),
        (
            body("promo_akhir_tahun", "ms", vec!["a", "b"]),
            "unknown_template",
        ),
        (body("info_baru", "id", vec![]), "template_not_approved"),
        (
            body("promo_akhir_tahun", "id", vec!["{{name}}"]),
            "template_parameters",
        ),
    ] {
        let (status, v) = h
            .api("maya", Method::POST, "/api/v1/broadcasts", Some(b))
            .await;
        assert_eq!((status, code(&v)), (422, want), "{v}");
    }
    let (_, listed) = h.api("maya", Method::GET, "/api/v1/broadcasts", None).await;
    assert!(
        listed["broadcasts"].as_array().unwrap().is_empty(),
        "nothing scheduled"
    );
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(body("promo_akhir_tahun", "id", vec!["{{name}}", "20%"])),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, s) = h
        .api("maya", Method::GET, "/api/v1/broadcasts/settings", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (s["quiet_hours"].clone(), s["timezone"].clone()),
        (json!("21:00-08:00"), json!("Asia/Jakarta"))
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

/// Two numbers in two WhatsApp Business Accounts: each account's templates
/// are synced, listed per sender, and a broadcast is checked against the
/// account of the number it goes out from.
async fn each_number_is_checked_against_its_business_accounts_templates(store: StoreKind) {
    const JAKARTA: &str = "106540352242922";
    const SURABAYA: &str = "106540352242933";
    const WABA_SBY: &str = "102290129340399";
    let h = Harness::start_with(store, |c| {
        c.whatsapp.business_account_id = WABA.into();
        c.whatsapp.phone_number_id = String::new();
        let number = |id: &str, waba: Option<&str>| balas::config::WhatsAppNumber {
            phone_number_id: id.into(),
            name: id.into(),
            access_token: None,
            max_messages_per_second: None,
            survey_template: None,
            template_language: None,
            business_account_id: waba.map(str::to_string),
        };
        c.whatsapp.numbers = vec![number(JAKARTA, None), number(SURABAYA, Some(WABA_SBY))];
    })
    .await;
    let promo =
        |name: &str| graph_mock::template(name, "id", "APPROVED", "MARKETING", "Halo {{1}}!", &[]);
    h.mock.set_templates_of(WABA, vec![promo("promo_jakarta")]);
    h.mock
        .set_templates_of(WABA_SBY, vec![promo("promo_surabaya")]);
    let names = |v: &Value| -> Vec<String> {
        v["templates"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, v) = h
        .api(
            "maya",
            Method::GET,
            &format!("/api/v1/templates?from={SURABAYA}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (names(&v), v["business_account_id"].clone()),
        (vec!["promo_surabaya".to_string()], json!(WABA_SBY))
    );
    let (status, v) = h.api("maya", Method::GET, "/api/v1/templates", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(names(&v), ["promo_jakarta"], "the default account's");
    let (status, v) = h
        .api("maya", Method::GET, "/api/v1/templates?from=999", None)
        .await;
    assert_eq!((status, code(&v)), (400, "bad_request"), "{v}");
    let (status, v) = h
        .api(
            "maya",
            Method::POST,
            &format!("/api/v1/templates/sync?from={SURABAYA}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(names(&v), ["promo_surabaya"]);
    assert_eq!(v["synced"].as_array().unwrap().len(), 2, "{v}");
    let paths: BTreeSet<String> = h
        .mock
        .template_requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        BTreeSet::from([
            format!("/{WABA}/message_templates"),
            format!("/{WABA_SBY}/message_templates")
        ])
    );
    let broadcast = |from: &str, name: &str| {
        json!({
            "name": "Promo", "channel": "whatsapp", "from": from,
            "message": {"template": {"name": name, "language": "id", "body_parameters": ["{{name}}"]}},
            "audience": {"recipients": [{"to": "6281600001201", "variables": {"name": "Rina"}}]},
            "send_at": "2030-01-01T02:00:00Z",
        })
    };
    for (from, name, want) in [
        (SURABAYA, "promo_jakarta", 422),
        (JAKARTA, "promo_surabaya", 422),
        (JAKARTA, "promo_jakarta", 201),
        (SURABAYA, "promo_surabaya", 201),
    ] {
        let (status, v) = h
            .api(
                "maya",
                Method::POST,
                "/api/v1/broadcasts",
                Some(broadcast(from, name)),
            )
            .await;
        assert_eq!(status, want, "{from} {name}: {v}");
        if want == 422 {
            assert_eq!(code(&v), "unknown_template");
        }
    }
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

async fn semicolon_csv_with_a_byte_order_mark_is_read(store: StoreKind) {
    let h = Harness::start(store).await;
    let (status, b) = h
        .api(
            "maya",
            Method::POST,
            "/api/v1/broadcasts",
            Some(json!({
                "name": "CSV", "channel": "whatsapp",
                "message": {"template": {"name": "promo", "language": "id", "body_parameters": ["{{nama}}"]}},
                "send_at": "2030-01-01T02:00:00Z",
            })),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_str().unwrap();
    let upload = |csv: &'static [u8]| {
        h.http
            .post(format!("{}/api/v1/broadcasts/{id}/audience.csv", h.base))
            .bearer_auth(common::harness::token("maya"))
            .body(csv)
            .send()
    };
    let resp = upload(b"\xEF\xBB\xBFnomor;nama\r\n0816-0000-1201;Budi\r\n6281600001202;Rina\r\n")
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["added"], json!(2), "{v}");
    let resp = upload(b"nomor;nama\n6281600001203;Ani\n6281600001205;Joko\n6281600001204\n")
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let v: Value = resp.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    // A row of the wrong shape is named by its line (and nothing is added).
    assert!(
        message.contains("line 4: has 1 field(s) where the header has 2"),
        "{message}"
    );
    h.stop().await;
}

// ---- several processes on one shared store --------------------------------------------

/// Two processes assign at once from one Redis: no conversation is assigned
/// twice, nobody holds more than their capacity, nothing goes to an offline
/// (or away) agent; an agent who goes offline on one process has their
/// unanswered chats given to someone online by either.
async fn push_assignment_across_two_processes(store: StoreKind) {
    let a = Harness::start_with(store, push).await;
    let b = a.second_process().await;
    set_capacity(&a, "siti", 3).await;
    set_capacity(&a, "budi", 2).await;
    a.presence("siti", "online").await;
    b.presence("budi", "online").await;
    b.presence("sari", "away").await;
    // root: offline.
    let customers: Vec<String> = (0..12).map(|i| format!("62817000{i:05}")).collect();
    let sends = customers.iter().enumerate().map(|(i, who)| {
        let h = if i % 2 == 0 { &a } else { &b };
        h.customer_says(who, "Rina", COMPLAINT)
    });
    futures_util::future::join_all(sends).await;
    for h in [&a, &b] {
        h.drained().await;
        h.idle().await;
    }
    let store = a.app.store();
    let mut cases = Vec::new();
    for who in &customers {
        cases.push(a.current_case(who).await.expect("a case"));
    }
    let check = |phase: &'static str, expect: [(&'static str, usize); 2]| {
        let cases = cases.clone();
        async move {
            let convs = store.conversations(&cases).await.unwrap();
            let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for c in &convs {
                if let Some(agent) = &c.agent {
                    assert!(held.entry(agent.clone()).or_default().insert(c.id.clone()));
                }
            }
            for (agent, n) in expect {
                let active: BTreeSet<String> = store
                    .agent_conversations(agent)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
                assert_eq!(active.len(), n, "{phase}: {agent} holds {active:?}");
                assert_eq!(
                    held.get(agent).cloned().unwrap_or_default(),
                    active,
                    "{phase}: {agent}'s index"
                );
            }
            assert!(
                held.keys().all(|k| k == "siti" || k == "budi"),
                "{phase}: only online agents: {held:?}"
            );
            let waiting: BTreeSet<String> = store
                .waiting("complaints")
                .await
                .unwrap()
                .into_iter()
                .collect();
            let assigned: usize = held.values().map(BTreeSet::len).sum();
            assert_eq!(
                waiting.len() + assigned,
                cases.len(),
                "{phase}: everyone is somewhere"
            );
            assert!(held.values().all(|s| s.is_disjoint(&waiting)), "{phase}");
            held
        }
    };
    let held = check("first wave", [("siti", 3), ("budi", 2)]).await;
    // Each was assigned once.
    for id in held.values().flatten() {
        let n = events(&a, id)
            .await
            .iter()
            .filter(|e| matches!(e, SystemEvent::Assigned { .. }))
            .count();
        assert_eq!(n, 1, "{id} assigned {n} times");
    }
    // Budi goes offline on b without replying: his two go back; siti is full.
    b.presence("budi", "offline").await;
    for h in [&a, &b] {
        h.idle().await;
    }
    check("budi offline", [("siti", 3), ("budi", 0)]).await;
    // Siti resolves her three on both processes at once: her capacity fills
    // from the queue again, never budi's.
    let resolves = held["siti"].iter().enumerate().map(|(i, id)| {
        let h = if i % 2 == 0 { &a } else { &b };
        async move { act(h, "siti", id, "resolve", None).await.0 }
    });
    assert!(
        futures_util::future::join_all(resolves)
            .await
            .iter()
            .all(|s| *s == 200)
    );
    for h in [&a, &b] {
        h.idle().await;
    }
    let after = cases
        .iter()
        .filter(|c| !held["siti"].contains(*c))
        .cloned()
        .collect::<Vec<_>>();
    let convs = store.conversations(&after).await.unwrap();
    let siti_now = convs
        .iter()
        .filter(|c| c.agent.as_deref() == Some("siti"))
        .count();
    assert_eq!(siti_now, 3, "refilled to capacity");
    assert!(convs.iter().all(|c| c.agent.as_deref() != Some("budi")));
    assert_eq!(store.job_counts(queues::TIMERS).await.unwrap().leased, 0);
    // Every conversation was assigned once per stay in the queue: assigned
    // ones once more than they were requeued, the others as often.
    for c in store.conversations(&cases).await.unwrap() {
        let lines = events(&a, &c.id).await;
        let assigned = lines
            .iter()
            .filter(|e| matches!(e, SystemEvent::Assigned { .. }))
            .count();
        let requeued = lines
            .iter()
            .filter(|e| matches!(e, SystemEvent::Requeued { .. }))
            .count();
        let holds = usize::from(c.agent.is_some() || c.resolved_ms.is_some());
        assert_eq!(assigned, requeued + holds, "{}: {lines:?}", c.id);
    }
    assert!(a.mock.violations().is_empty());
    b.stop().await;
    a.stop().await;
}
