//! Human handoff end to end: signed webhooks in, the Graph API mock out, agents
//! through the HTTP API, time moved with the manual clock — on both store
//! backends, plus the multi-process cases on one shared Redis.
//!
//! The basic round trip (complaint → claim → reply → resolve → new case) lives
//! in `tests/conversations.rs`; this file covers everything around it.

#[macro_use]
mod common;

use std::time::Duration;

use balas::config::CannedConfig;
use balas::store::queues;
use common::harness::{Harness, StoreKind, token};
use reqwest::Method;
use serde_json::{Value, json};

on_every_store!(
    fallback_twice_hands_off_to_the_default_queue,
    queued_customer_is_not_answered_by_intents_but_opt_out_is_honoured,
    position_updates_are_rate_limited,
    waiting_customer_is_reassured_every_15_minutes,
    reassurance_continues_after_an_agent_timeout,
    angry_handoff_is_claimed_before_an_earlier_calm_one,
    anger_while_queued_raises_priority_once,
    repeated_complaints_raise_priority,
    after_hours_handoff_tells_when_agents_are_back,
    reassurance_waits_for_opening_hours,
    agent_timeout_requeues_at_the_front_with_an_event,
    queue_lists_claim_order_wait_and_position,
    conversation_list_filters,
    notes_survive_into_the_next_case_and_labels_change,
    transfer_to_another_agent_and_to_a_queue,
    release_puts_it_back_in_the_queue,
    only_the_assigned_agent_or_a_supervisor_may_act,
    reply_after_the_window_closed_is_a_clear_error,
    unauthenticated_is_401_and_wrong_role_is_403,
    bad_request_bodies_get_json_errors,
    canned_responses_render_variables,
);

const MIN: Duration = Duration::from_secs(60);
const CALM_COMPLAINT: &str = "barang saya datang rusak, layarnya pecah";
const WANT_HUMAN: &str = "saya mau bicara dengan customer service";

// ---- helpers ---------------------------------------------------------------

/// Waits until no timer is running and the next one is scheduled, so moving
/// the clock after this cannot race with a timer that schedules its successor.
async fn timers_idle(h: &Harness) {
    h.until("timers idle with the next one scheduled", || async {
        let t = h
            .app
            .store()
            .job_counts(queues::TIMERS)
            .await
            .expect("store");
        t.leased == 0 && t.pending > 0
    })
    .await;
}

/// The customer writes and the message is fully handled.
async fn say(h: &Harness, who: &str, text: &str) {
    h.customer_says(who, "Rina", text).await;
    h.drained().await;
}

/// The customer writes something that hands them off; checks they got exactly
/// one reply and returns the queued case.
async fn hand_off(h: &Harness, who: &str, text: &str) -> String {
    let before = h.texts_to(who).len();
    say(h, who, text).await;
    assert_eq!(
        h.texts_to(who).len(),
        before + 1,
        "one reply to the handoff: {:?}",
        h.texts_to(who)
    );
    let case = h.current_case(who).await.expect("an open case");
    assert_eq!(view(h, &case).await["state"], json!("queued"));
    case
}

/// `GET /api/v1/conversations/{case}` as the supervisor.
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

async fn claim(h: &Harness, agent: &str, queue: Option<&str>) -> (u16, Value) {
    let body = match queue {
        Some(q) => json!({ "queue": q }),
        None => json!({}),
    };
    h.api(agent, Method::POST, "/api/v1/queue/claim", Some(body))
        .await
}

/// Claims and checks the claimed conversation is `case`.
async fn claim_expect(h: &Harness, agent: &str, case: &str) -> Value {
    let (status, v) = claim(h, agent, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], json!(case), "claim order");
    assert_eq!(v["agent"], json!(agent));
    v
}

/// POST to `/api/v1/conversations/{case}/{action}`.
async fn act(
    h: &Harness,
    agent: &str,
    case: &str,
    action: &str,
    body: Option<Value>,
) -> (u16, Value) {
    h.api(
        agent,
        Method::POST,
        &format!("/api/v1/conversations/{case}/{action}"),
        body,
    )
    .await
}

async fn reply(h: &Harness, agent: &str, case: &str, text: &str) -> (u16, Value) {
    act(h, agent, case, "messages", Some(json!({ "text": text }))).await
}

async fn wait_state(h: &Harness, case: &str, state: &str) {
    h.until(&format!("{case} becomes {state}"), || async {
        view(h, case).await["state"] == json!(state)
    })
    .await;
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| {
        panic!("not a JSON error body: {v}");
    })
}

fn queue_ids(q: &Value, name: &str) -> Vec<String> {
    q["queues"][name]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            e["conversation_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

// ---- the bot hands off -----------------------------------------------------

async fn fallback_twice_hands_off_to_the_default_queue(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281300000001";
    say(&h, who, "zxqv wbrt plokm").await;
    assert_eq!(h.texts_to(who).len(), 1, "the first miss gets the fallback");
    let case = h.current_case(who).await.expect("a case");
    assert_eq!(view(&h, &case).await["state"], json!("bot"));

    say(&h, who, "qwxz trvbn lkjhg").await;
    let texts = h.texts_to(who);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("antrean nomor 1"), "{}", texts[1]);
    let v = view(&h, &case).await;
    assert_eq!(v["state"], json!("queued"));
    assert_eq!(v["queue"], json!("general"), "the default queue");
    assert_eq!(v["reason"], json!("fallback"));

    // Just told the position: the next message does not repeat it.
    h.clock.advance(MIN);
    say(&h, who, "halo?").await;
    assert_eq!(
        h.texts_to(who).len(),
        2,
        "no position update within position_update_every: {:?}",
        h.texts_to(who)
    );
    assert!(h.mock.violations().is_empty(), "{:?}", h.mock.violations());
    h.stop().await;
}

async fn queued_customer_is_not_answered_by_intents_but_opt_out_is_honoured(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281300000002";
    let case = hand_off(&h, who, WANT_HUMAN).await;
    assert_eq!(view(&h, &case).await["queue"], json!("general"));

    // A greeting and an order question would get answers from the bot; not now.
    say(&h, who, "halo kak").await;
    say(&h, who, "pesanan saya sudah sampai mana ya?").await;
    assert_eq!(h.texts_to(who).len(), 1, "{:?}", h.texts_to(who));
    let v = view(&h, &case).await;
    let said: Vec<&str> = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["speaker"]["kind"] == json!("customer"))
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(
        said,
        [WANT_HUMAN, "halo kak", "pesanan saya sudah sampai mana ya?"],
        "everything goes to the transcript for the agent"
    );

    // Opting out is honoured whoever owns the conversation.
    say(&h, who, "stop promo").await;
    let texts = h.texts_to(who);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("promo"), "a confirmation: {}", texts[1]);
    let v = view(&h, &case).await;
    assert_eq!(v["contact"]["opted_out"], json!(true));
    assert_eq!(v["state"], json!("queued"), "still waiting for an agent");
    h.stop().await;
}

async fn position_updates_are_rate_limited(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281300000003";
    hand_off(&h, who, CALM_COMPLAINT).await;

    h.clock.advance(MIN);
    say(&h, who, "halo, ada kabar?").await;
    assert_eq!(h.texts_to(who).len(), 1, "too soon for another update");

    h.clock.advance(4 * MIN);
    say(&h, who, "masih menunggu ya kak").await;
    let texts = h.texts_to(who);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("antrean nomor 1"), "{}", texts[1]);

    say(&h, who, "ditunggu").await;
    assert_eq!(h.texts_to(who).len(), 2, "{:?}", h.texts_to(who));
    h.stop().await;
}

async fn waiting_customer_is_reassured_every_15_minutes(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281300000004";
    hand_off(&h, who, CALM_COMPLAINT).await;

    h.clock.advance(14 * MIN);
    h.idle().await;
    assert_eq!(h.texts_to(who).len(), 1, "not before 15 minutes");

    h.clock.advance(MIN);
    let texts = h.wait_texts_to(who, 2).await;
    assert!(texts[1].contains("tidak lupa"), "{}", texts[1]);
    assert!(texts[1].contains("antrean nomor 1"), "{}", texts[1]);
    timers_idle(&h).await;

    h.clock.advance(15 * MIN);
    let texts = h.wait_texts_to(who, 3).await;
    assert!(texts[2].contains("tidak lupa"), "{}", texts[2]);
    h.idle().await;
    assert_eq!(h.texts_to(who).len(), 3, "once per period");
    h.stop().await;
}

/// After an agent timeout the case re-enters the queue with its original queue
/// time; the reassurances must start again (not be swallowed as duplicates of
/// the ones sent before the claim).
async fn reassurance_continues_after_an_agent_timeout(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281300000005";
    let case = hand_off(&h, who, CALM_COMPLAINT).await;
    h.clock.advance(15 * MIN);
    h.wait_texts_to(who, 2).await;
    timers_idle(&h).await;

    h.clock.advance(14 * MIN);
    claim_expect(&h, "siti", &case).await;
    // The agent never answers: back to the queue after 10 minutes.
    h.clock.advance(10 * MIN);
    wait_state(&h, &case, "queued").await;
    timers_idle(&h).await;
    assert_eq!(h.texts_to(who).len(), 2);

    h.clock.advance(15 * MIN);
    let texts = h.wait_texts_to(who, 3).await;
    assert!(texts[2].contains("tidak lupa"), "{}", texts[2]);
    h.stop().await;
}

// ---- priority --------------------------------------------------------------

async fn angry_handoff_is_claimed_before_an_earlier_calm_one(store: StoreKind) {
    let h = Harness::start(store).await;
    let calm = hand_off(&h, "6281300000006", CALM_COMPLAINT).await;
    h.clock.advance(MIN);
    let angry = hand_off(&h, "6281300000007", "BARANG SAYA RUSAK!!! SAYA KECEWA").await;
    assert_eq!(view(&h, &calm).await["priority"], json!(2));
    assert_eq!(
        view(&h, &angry).await["priority"],
        json!(3),
        "complaint priority + anger"
    );
    claim_expect(&h, "siti", &angry).await;
    claim_expect(&h, "budi", &calm).await;
    h.stop().await;
}

async fn anger_while_queued_raises_priority_once(store: StoreKind) {
    let h = Harness::start(store).await;
    let first = hand_off(&h, "6281300000008", CALM_COMPLAINT).await;
    h.clock.advance(MIN);
    let second = hand_off(&h, "6281300000009", "paket saya datang tapi isinya kosong").await;
    assert_eq!(view(&h, &second).await["priority"], json!(2));

    // Angry, and a complaint too: one anger boost, not two.
    say(&h, "6281300000009", "kok lama banget!!").await;
    assert_eq!(view(&h, &second).await["priority"], json!(3));
    // The priority is written first, then the queue is re-scored.
    h.until("the angry customer moves ahead", || async {
        let (_, q) = h.api("siti", Method::GET, "/api/v1/queue", None).await;
        queue_ids(&q, "complaints") == [second.clone(), first.clone()]
    })
    .await;

    claim_expect(&h, "siti", &second).await;
    claim_expect(&h, "budi", &first).await;
    h.stop().await;
}

async fn repeated_complaints_raise_priority(store: StoreKind) {
    let h = Harness::start_with(store, |c| c.survey.enabled = false).await;
    let who = "6281300000010";
    let complaints = [
        ("barang saya datang rusak", 2),
        ("layarnya retak kak", 2),
        ("blendernya tidak berfungsi", 4),
    ];
    for (text, priority) in complaints {
        let case = hand_off(&h, who, text).await;
        assert_eq!(view(&h, &case).await["priority"], json!(priority), "{text}");
        claim_expect(&h, "siti", &case).await;
        let (status, v) = act(&h, "siti", &case, "resolve", None).await;
        assert_eq!(status, 200, "{v}");
        h.clock.advance(Duration::from_secs(86_400));
    }
    // Eight quiet days later the old complaints no longer count.
    h.clock.advance(Duration::from_secs(8 * 86_400));
    let case = hand_off(&h, who, "barangnya cacat").await;
    assert_eq!(view(&h, &case).await["priority"], json!(2));
    h.stop().await;
}

// ---- business hours -----------------------------------------------------------

async fn after_hours_handoff_tells_when_agents_are_back(store: StoreKind) {
    let h = Harness::start_with(store, |c| {
        c.business_hours.holidays = vec!["2026-11-24".parse().expect("date")];
    })
    .await;
    // Monday 20:00 WIB; Tuesday is a holiday.
    h.clock.advance(Duration::from_secs(10 * 3600));
    let who = "6281300000011";
    let case = hand_off(&h, who, CALM_COMPLAINT).await;
    let text = &h.texts_to(who)[0];
    assert!(text.contains("di luar jam operasional"), "{text}");
    assert!(text.contains("Rabu, 08:00 WIB"), "next opening: {text}");
    let v = view(&h, &case).await;
    assert_eq!(v["queue"], json!("complaints"), "queued all the same");
    h.stop().await;
}

async fn reassurance_waits_for_opening_hours(store: StoreKind) {
    let h = Harness::start(store).await;
    // Monday 20:00 WIB, after hours; the team is back Tuesday 08:00.
    h.clock.advance(Duration::from_secs(10 * 3600));
    let who = "6281300000031";
    hand_off(&h, who, CALM_COMPLAINT).await;
    // No "we haven't forgotten you" through the night …
    for _ in 0..3 {
        h.clock.advance(15 * MIN);
        h.idle().await;
    }
    assert_eq!(
        h.texts_to(who).len(),
        1,
        "nothing sent out of hours: {:?}",
        h.texts_to(who)
    );
    // … but once the team is back (Tuesday 08:20), the waiting customer hears from us.
    h.clock.advance(Duration::from_secs(11 * 3600 + 35 * 60));
    let texts = h.wait_texts_to(who, 2).await;
    assert!(texts[1].contains("tidak lupa"), "{}", texts[1]);
    h.stop().await;
}

// ---- service levels --------------------------------------------------------

async fn agent_timeout_requeues_at_the_front_with_an_event(store: StoreKind) {
    let h = Harness::start(store).await;
    let mut events = h.app.store().subscribe_events().await.expect("subscribe");
    let first = hand_off(&h, "6281300000012", CALM_COMPLAINT).await;
    h.clock.advance(MIN);
    let second = hand_off(&h, "6281300000013", CALM_COMPLAINT).await;
    claim_expect(&h, "siti", &first).await;

    h.clock.advance(10 * MIN - Duration::from_secs(1));
    h.idle().await;
    assert_eq!(view(&h, &first).await["state"], json!("assigned"));
    h.clock.advance(Duration::from_secs(2));
    wait_state(&h, &first, "queued").await;
    let v = view(&h, &first).await;
    assert_eq!(v["agent"], Value::Null);

    // The state flips first, then the queue index follows.
    h.until("both wait in the complaints queue", || async {
        let (_, q) = h.api("budi", Method::GET, "/api/v1/queue", None).await;
        queue_ids(&q, "complaints").len() == 2
    })
    .await;
    let (_, q) = h.api("budi", Method::GET, "/api/v1/queue", None).await;
    assert_eq!(
        queue_ids(&q, "complaints"),
        [first.clone(), second.clone()],
        "back at the front, ahead of the one that waited less: {q}"
    );
    assert_eq!(q["queues"]["complaints"][0]["position"], json!(1));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("an agent_timeout event")
            .expect("subscription open");
        let e: Value = serde_json::from_slice(&msg).expect("JSON event");
        if e["type"] == json!("agent_timeout") {
            assert_eq!(e["conversation_id"], json!(first));
            assert_eq!(e["state"], json!("queued"));
            break;
        }
    }

    // An agent who answers in time keeps the conversation.
    claim_expect(&h, "budi", &first).await;
    assert_eq!(
        reply(&h, "budi", &first, "Halo Kak, saya bantu ya.")
            .await
            .0,
        202
    );
    h.clock.advance(11 * MIN);
    h.idle().await;
    let v = view(&h, &first).await;
    assert_eq!(
        (v["state"].clone(), v["agent"].clone()),
        (json!("assigned"), json!("budi"))
    );
    h.stop().await;
}

// ---- the agents' API ---------------------------------------------------------

async fn queue_lists_claim_order_wait_and_position(store: StoreKind) {
    let h = Harness::start(store).await;
    let a = hand_off(&h, "6281300000014", WANT_HUMAN).await;
    h.clock.advance(2 * MIN);
    let b = hand_off(&h, "6281300000015", WANT_HUMAN).await;
    let c = hand_off(&h, "6281300000016", CALM_COMPLAINT).await;

    let (status, q) = h.api("siti", Method::GET, "/api/v1/queue", None).await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(queue_ids(&q, "general"), [a.clone(), b.clone()]);
    assert_eq!(queue_ids(&q, "complaints"), [c.as_str()]);
    let general = &q["queues"]["general"];
    assert_eq!(general[0]["position"], json!(1));
    assert_eq!(general[1]["position"], json!(2));
    assert_eq!(general[0]["wait_seconds"], json!(120));
    assert_eq!(general[1]["wait_seconds"], json!(0));
    assert_eq!(general[0]["preview"], json!(WANT_HUMAN));
    assert_eq!(general[0]["reason"], json!("human_agent"));

    let (status, v) = claim(&h, "siti", Some("general")).await;
    assert_eq!((status, v["id"].clone()), (200, json!(a)));
    // Without a queue: the complaint's higher priority wins.
    claim_expect(&h, "siti", &c).await;
    claim_expect(&h, "budi", &b).await;
    let (status, v) = claim(&h, "budi", None).await;
    assert_eq!((status, v), (204, Value::Null), "nothing left");
    h.stop().await;
}

async fn conversation_list_filters(store: StoreKind) {
    let h = Harness::start(store).await;
    let a = hand_off(&h, "6281300000017", CALM_COMPLAINT).await;
    let b = hand_off(&h, "6281300000018", WANT_HUMAN).await;
    say(&h, "6281300000019", "halo kak").await;
    let c = h.current_case("6281300000019").await.expect("bot case");
    claim_expect(&h, "siti", &a).await;

    let ids = |v: &Value| -> Vec<String> {
        v["conversations"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let list = |path: &'static str, who: &'static str| {
        let h = &h;
        async move {
            let (status, v) = h.api(who, Method::GET, path, None).await;
            assert_eq!(status, 200, "{path}: {v}");
            v
        }
    };
    assert_eq!(
        ids(&list("/api/v1/conversations?state=queued", "siti").await),
        [b.as_str()]
    );
    assert_eq!(
        ids(&list("/api/v1/conversations?state=assigned&agent=me", "siti").await),
        [a.as_str()]
    );
    assert!(ids(&list("/api/v1/conversations?agent=me", "budi").await).is_empty());
    assert_eq!(
        ids(&list("/api/v1/conversations?queue=general", "siti").await),
        [b.as_str()]
    );
    assert_eq!(
        ids(&list("/api/v1/conversations?state=bot", "siti").await),
        [c.as_str()]
    );
    let mut all = ids(&list("/api/v1/conversations", "siti").await);
    all.sort();
    let mut want = vec![a, b, c];
    want.sort();
    assert_eq!(all, want);
    let (status, v) = h
        .api(
            "siti",
            Method::GET,
            "/api/v1/conversations?state=nope",
            None,
        )
        .await;
    assert_eq!((status, error_code(&v)), (400, "bad_request"));
    h.stop().await;
}

async fn notes_survive_into_the_next_case_and_labels_change(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281300000020";
    let first = hand_off(&h, who, CALM_COMPLAINT).await;
    claim_expect(&h, "siti", &first).await;
    let note = "Pelanggan lama, sudah retur sekali bulan ini";
    let (status, v) = act(&h, "siti", &first, "notes", Some(json!({ "text": note }))).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["notes"][0]["author"], json!("siti"));
    let (status, v) = act(
        &h,
        "siti",
        &first,
        "labels",
        Some(json!({ "add": ["vip", "retur"] })),
    )
    .await;
    assert_eq!(
        (status, v["labels"].clone()),
        (200, json!(["retur", "vip"]))
    );
    let (status, v) = act(
        &h,
        "siti",
        &first,
        "labels",
        Some(json!({ "remove": ["retur"] })),
    )
    .await;
    assert_eq!((status, v["labels"].clone()), (200, json!(["vip"])));
    let (status, v) = act(&h, "siti", &first, "labels", Some(json!({ "add": [" "] }))).await;
    assert_eq!((status, error_code(&v)), (400, "bad_request"));
    assert_eq!(act(&h, "siti", &first, "resolve", None).await.0, 200);

    // A new case, another agent: the note and labels are there.
    let second = hand_off(&h, who, WANT_HUMAN).await;
    assert_ne!(second, first);
    let v = claim_expect(&h, "budi", &second).await;
    assert_eq!(v["contact"]["notes"][0]["text"], json!(note));
    assert_eq!(v["contact"]["labels"], json!(["vip"]));
    assert_eq!(v["previous_cases"][0]["id"], json!(first));
    h.stop().await;
}

async fn transfer_to_another_agent_and_to_a_queue(store: StoreKind) {
    let h = Harness::start(store).await;
    let case = hand_off(&h, "6281300000021", CALM_COMPLAINT).await;
    claim_expect(&h, "siti", &case).await;

    for bad in [
        json!({}),
        json!({ "queue": "refunds", "agent": "budi" }),
        json!({ "agent": "nobody" }),
    ] {
        let (status, v) = act(&h, "siti", &case, "transfer", Some(bad.clone())).await;
        assert_eq!((status, error_code(&v)), (400, "bad_request"), "{bad}");
    }
    let (status, v) = act(
        &h,
        "siti",
        &case,
        "transfer",
        Some(json!({ "agent": "maya" })),
    )
    .await;
    assert_eq!(
        (status, error_code(&v)),
        (400, "bad_request"),
        "a marketer cannot take conversations: {v}"
    );

    // Only to someone online.
    let (status, v) = act(
        &h,
        "siti",
        &case,
        "transfer",
        Some(json!({ "agent": "budi" })),
    )
    .await;
    assert_eq!((status, error_code(&v)), (409, "agent_offline"), "{v}");
    h.presence("budi", "online").await;
    let (status, v) = act(
        &h,
        "siti",
        &case,
        "transfer",
        Some(json!({ "agent": "budi" })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["state"].clone(), v["agent"].clone()),
        (json!("assigned"), json!("budi"))
    );
    let (status, v) = reply(&h, "siti", &case, "masih saya?").await;
    assert_eq!((status, error_code(&v)), (409, "not_owner"));
    assert_eq!(
        reply(&h, "budi", &case, "Halo Kak, saya Budi.").await.0,
        202
    );

    let (status, v) = act(
        &h,
        "budi",
        &case,
        "transfer",
        Some(json!({ "queue": "refunds" })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["state"].clone(), v["queue"].clone(), v["agent"].clone()),
        (json!("queued"), json!("refunds"), Value::Null)
    );
    let (_, q) = h.api("siti", Method::GET, "/api/v1/queue", None).await;
    assert_eq!(queue_ids(&q, "refunds"), [case.as_str()]);
    assert!(queue_ids(&q, "complaints").is_empty());
    let (status, v) = claim(&h, "siti", Some("refunds")).await;
    assert_eq!((status, v["id"].clone()), (200, json!(case)));
    h.stop().await;
}

async fn release_puts_it_back_in_the_queue(store: StoreKind) {
    let h = Harness::start(store).await;
    let case = hand_off(&h, "6281300000022", CALM_COMPLAINT).await;
    claim_expect(&h, "siti", &case).await;
    let (status, v) = act(&h, "budi", &case, "release", None).await;
    assert_eq!((status, error_code(&v)), (409, "not_owner"));

    let (status, v) = act(&h, "siti", &case, "release", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["state"].clone(), v["agent"].clone()),
        (json!("queued"), Value::Null)
    );
    let (_, q) = h.api("budi", Method::GET, "/api/v1/queue", None).await;
    assert_eq!(queue_ids(&q, "complaints"), [case.as_str()]);
    claim_expect(&h, "budi", &case).await;
    h.stop().await;
}

async fn only_the_assigned_agent_or_a_supervisor_may_act(store: StoreKind) {
    let h = Harness::start(store).await;
    let who = "6281300000023";
    let case = hand_off(&h, who, CALM_COMPLAINT).await;
    let (status, v) = reply(&h, "siti", &case, "halo").await;
    assert_eq!((status, error_code(&v)), (409, "not_owner"), "claim first");

    claim_expect(&h, "siti", &case).await;
    let (status, v) = reply(&h, "budi", &case, "halo dari budi").await;
    assert_eq!((status, error_code(&v)), (409, "not_owner"));
    assert!(
        v["error"]["message"].as_str().unwrap().contains("siti"),
        "{v}"
    );
    let (status, _) = act(&h, "budi", &case, "resolve", None).await;
    assert_eq!(status, 409);

    assert_eq!(
        reply(&h, "sari", &case, "Halo Kak, saya supervisor.")
            .await
            .0,
        202
    );
    assert_eq!(
        reply(&h, "siti", &case, "Halo Kak, saya Siti.").await.0,
        202
    );
    let texts = h.wait_texts_to(who, 3).await;
    assert_eq!(
        texts[1..],
        ["Halo Kak, saya supervisor.", "Halo Kak, saya Siti."]
    );
    assert!(!texts.iter().any(|t| t.contains("budi")));
    let v = view(&h, &case).await;
    let agents: Vec<&Value> = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["speaker"]["kind"] == json!("agent"))
        .map(|e| &e["speaker"]["id"])
        .collect();
    assert_eq!(agents, [&json!("sari"), &json!("siti")]);

    let (status, v) = act(&h, "siti", &case, "resolve", None).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = reply(&h, "siti", &case, "satu lagi").await;
    assert_eq!(status, 409, "resolved: {v}");
    error_code(&v);
    h.stop().await;
}

async fn reply_after_the_window_closed_is_a_clear_error(store: StoreKind) {
    let h = Harness::start(store).await;
    let case = hand_off(&h, "6281300000024", CALM_COMPLAINT).await;
    claim_expect(&h, "siti", &case).await;
    assert_eq!(
        reply(&h, "siti", &case, "Kami cek dulu ya Kak.").await.0,
        202
    );
    h.clock.advance(Duration::from_secs(25 * 3600));
    let v = view(&h, &case).await;
    assert_eq!(v["window"]["open"], json!(false));
    let (status, v) = reply(&h, "siti", &case, "Kak, ada kabar?").await;
    assert_eq!((status, error_code(&v)), (422, "window_closed"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("24 hours"),
        "{v}"
    );
    h.stop().await;
}

async fn unauthenticated_is_401_and_wrong_role_is_403(store: StoreKind) {
    let h = Harness::start(store).await;
    let case = hand_off(&h, "6281300000025", CALM_COMPLAINT).await;
    let c = |s: &str| format!("/api/v1/conversations/{case}{s}");
    let desk: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/queue".into(), None),
        (Method::POST, "/api/v1/queue/claim".into(), Some(json!({}))),
        (Method::GET, "/api/v1/conversations".into(), None),
        (Method::GET, c(""), None),
        (Method::POST, c("/messages"), Some(json!({ "text": "hi" }))),
        (Method::POST, c("/notes"), Some(json!({ "text": "n" }))),
        (Method::POST, c("/labels"), Some(json!({ "add": ["x"] }))),
        (
            Method::POST,
            c("/transfer"),
            Some(json!({ "queue": "general" })),
        ),
        (Method::POST, c("/release"), None),
        (Method::POST, c("/resolve"), None),
        (Method::GET, "/api/v1/canned".into(), None),
    ];
    let others: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/me".into(), None),
        (Method::GET, "/api/v1/events".into(), None),
        (Method::GET, "/api/v1/reports/summary".into(), None),
        (Method::GET, "/api/v1/broadcasts".into(), None),
    ];
    for (method, path, body) in desk.iter().chain(&others) {
        for auth in [
            None,
            Some("Bearer not-a-token"),
            Some("Basic c2l0aTp4"),
            Some("Bearer "),
        ] {
            let mut req = h.http.request(method.clone(), format!("{}{path}", h.base));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, error_code(&v)),
                (401, "unauthorized"),
                "{method} {path} with {auth:?}"
            );
        }
    }
    // The marketer may not use the agent desk.
    for (method, path, body) in &desk {
        let (status, v) = h.api("maya", method.clone(), path, body.clone()).await;
        assert_eq!(
            (status, error_code(&v)),
            (403, "forbidden"),
            "{method} {path}"
        );
    }
    // Nothing the marketer tried changed the conversation.
    let v = view(&h, &case).await;
    assert_eq!(
        (v["state"].clone(), v["agent"].clone()),
        (json!("queued"), Value::Null)
    );
    // The admin may.
    let (status, _) = h.api("root", Method::GET, "/api/v1/queue", None).await;
    assert_eq!(status, 200);
    assert_eq!(token("maya"), "token-maya");
    h.stop().await;
}

async fn bad_request_bodies_get_json_errors(store: StoreKind) {
    let h = Harness::start(store).await;
    let case = hand_off(&h, "6281300000026", CALM_COMPLAINT).await;
    claim_expect(&h, "siti", &case).await;
    let url = format!("{}/api/v1/conversations/{case}/messages", h.base);
    let bodies: [(&str, &str); 3] = [
        ("application/json", r#"{"txt": "typo"}"#),
        ("application/json", "not json"),
        ("text/plain", r#"{"text": "hi"}"#),
    ];
    for (ctype, body) in bodies {
        let resp = h
            .http
            .post(&url)
            .bearer_auth(token("siti"))
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!((400..500).contains(&status), "{status} for {body:?}");
        assert!(
            v["error"]["code"].is_string(),
            "JSON error for {body:?}: {text}"
        );
        assert!(v["error"]["message"].is_string(), "{text}");
    }
    let (status, v) = reply(&h, "siti", &case, "   ").await;
    assert_eq!((status, error_code(&v)), (400, "bad_request"));
    let (status, v) = act(&h, "siti", "20261123-NOPE22", "resolve", None).await;
    assert_eq!((status, error_code(&v)), (404, "not_found"));
    h.stop().await;
}

async fn canned_responses_render_variables(store: StoreKind) {
    let h = Harness::start_with(store, |c| {
        c.intents
            .variables
            .insert("shop.name".into(), "Toko Nova".into());
        c.canned = vec![
            CannedConfig {
                shortcut: "maaf".into(),
                title: "Permintaan maaf".into(),
                text: "Halo {{contact.name}}, mohon maaf atas kendalanya. Salam, {{shop.name}} (kasus {{case.id}})".into(),
                attachment: None,
            },
            CannedConfig {
                shortcut: "tutup".into(),
                title: "Penutup".into(),
                text: "Terima kasih sudah menghubungi {{shop.name}}.".into(),
                attachment: None,
            },
        ];
    })
    .await;
    let case = hand_off(&h, "6281300000027", CALM_COMPLAINT).await;

    let (status, v) = h.api("siti", Method::GET, "/api/v1/canned", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["canned"][0]["shortcut"], json!("maaf"));
    assert!(
        v["canned"][0]["text"]
            .as_str()
            .unwrap()
            .contains("{{contact.name}}"),
        "the template as written: {v}"
    );

    let (status, v) = h
        .api(
            "siti",
            Method::GET,
            &format!("/api/v1/canned?conversation={case}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["canned"][0]["rendered"],
        json!(format!(
            "Halo Rina, mohon maaf atas kendalanya. Salam, Toko Nova (kasus {case})"
        ))
    );
    assert_eq!(
        v["canned"][1]["rendered"],
        json!("Terima kasih sudah menghubungi Toko Nova.")
    );
    let (status, v) = h
        .api(
            "siti",
            Method::GET,
            "/api/v1/canned?conversation=20261123-NOPE22",
            None,
        )
        .await;
    assert_eq!((status, error_code(&v)), (404, "not_found"));
    h.stop().await;
}

// ---- several processes on one Redis or one Redis Cluster -----------------------

on_shared_stores!(
    concurrent_claims_from_two_processes_never_double_assign,
    handoff_event_reaches_event_streams_on_every_process,
);

async fn concurrent_claims_from_two_processes_never_double_assign(store: StoreKind) {
    let a = Harness::start_with(store, |c| c.survey.enabled = false).await;
    let b = a.second_process().await;

    // One waiting customer, two agents on two processes claiming at once.
    for i in 0..25 {
        let who = format!("62814{i:08}");
        let case = hand_off(&a, &who, CALM_COMPLAINT).await;
        let (ra, rb) = tokio::join!(claim(&a, "siti", None), claim(&b, "budi", None));
        let won: Vec<(&str, &Value)> = [("siti", &ra), ("budi", &rb)]
            .into_iter()
            .filter(|(_, (status, _))| *status == 200)
            .map(|(agent, (_, v))| (agent, v))
            .collect();
        assert_eq!(won.len(), 1, "round {i}: {ra:?} / {rb:?}");
        let (winner, conv) = won[0];
        assert!(ra.0 == 204 || rb.0 == 204, "the loser gets 204");
        assert_eq!(conv["id"], json!(case));
        assert_eq!(view(&a, &case).await["agent"], json!(winner));
        assert_eq!(act(&a, winner, &case, "resolve", None).await.0, 200);
    }

    // Many waiting, four claimers on two processes draining the queue.
    let mut cases = Vec::new();
    for i in 0..12 {
        cases.push(hand_off(&a, &format!("62815{i:08}"), CALM_COMPLAINT).await);
    }
    let drain = |h: &'static str, agent: &'static str| {
        let h = if h == "a" { &a } else { &b };
        async move {
            let mut got = Vec::new();
            loop {
                let (status, v) = claim(h, agent, None).await;
                match status {
                    200 => got.push((agent, v["id"].as_str().unwrap().to_string())),
                    204 => return got,
                    s => panic!("claim answered {s}: {v}"),
                }
            }
        }
    };
    let results = futures_util::future::join_all([
        drain("a", "siti"),
        drain("b", "budi"),
        drain("a", "sari"),
        drain("b", "root"),
    ])
    .await;
    let mut claimed: Vec<(&str, String)> = results.into_iter().flatten().collect();
    claimed.sort_by(|x, y| x.1.cmp(&y.1));
    let mut ids: Vec<String> = claimed.iter().map(|(_, id)| id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), claimed.len(), "claimed twice: {claimed:?}");
    cases.sort();
    assert_eq!(ids, cases, "every waiting case claimed exactly once");
    for (agent, id) in &claimed {
        assert_eq!(view(&a, id).await["agent"], json!(agent));
        for other in ["siti", "budi", "sari", "root"] {
            let held = a.app.store().agent_conversations(other).await.unwrap();
            assert_eq!(
                held.contains(id),
                other == *agent,
                "{id} in {other}'s active set"
            );
        }
    }
    b.stop().await;
    a.stop().await;
}

/// Opens `GET /api/v1/events` and checks it is an event stream.
async fn open_events(h: &Harness, agent: &str) -> reqwest::Response {
    let resp = h
        .http
        .get(format!("{}/api/v1/events", h.base))
        .bearer_auth(token(agent))
        .send()
        .await
        .expect("events request");
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    resp
}

/// Reads the stream until an event of `kind` about `case` arrived.
async fn read_event(resp: &mut reqwest::Response, kind: &str, case: &str) -> Value {
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for block in buf.split("\n\n") {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data = Some(d.trim());
                }
            }
            if event == Some(kind)
                && let Some(d) = data
                && let Ok(v) = serde_json::from_str::<Value>(d)
                && v["conversation_id"] == json!(case)
            {
                return v;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event for {case}; got:\n{buf}"))
            .expect("stream")
            .expect("stream still open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn handoff_event_reaches_event_streams_on_every_process(store: StoreKind) {
    let a = Harness::start(store).await;
    let b = a.second_process().await;
    let mut on_a = open_events(&a, "siti").await;
    let mut on_b = open_events(&b, "budi").await;

    // The webhook arrives at B; whichever process handles it, both streams
    // see the handoff, so at least one of them got it from the other process.
    let who = "6281300000030";
    b.customer_says(who, "Rina", CALM_COMPLAINT).await;
    b.drained().await;
    let case = b.current_case(who).await.expect("a case");
    for resp in [&mut on_a, &mut on_b] {
        let e = read_event(resp, "handoff", &case).await;
        assert_eq!(e["queue"], json!("complaints"));
        assert_eq!(e["state"], json!("queued"));
    }
    // An agent's claim on A shows up on B's stream too.
    claim_expect(&a, "siti", &case).await;
    let e = read_event(&mut on_b, "claim", &case).await;
    assert_eq!(e["agent"], json!("siti"));
    drop((on_a, on_b));
    b.stop().await;
    a.stop().await;
}

/// A typo in a canned response stops the server at startup, like a typo in a
/// rule reply, instead of reaching a customer as `{{contact.nama}}`.
#[tokio::test]
async fn canned_response_with_an_unknown_variable_stops_startup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config =
        common::harness::test_config(&StoreKind::Embedded, dir.path(), "http://127.0.0.1:9");
    config.canned = vec![CannedConfig {
        shortcut: "halo".into(),
        title: "Halo".into(),
        text: "Halo {{contact.nama}}".into(),
        attachment: None,
    }];
    let clock = std::sync::Arc::new(balas::clock::ManualClock::at_ms(
        common::harness::MONDAY_10_WIB_MS,
    ));
    let err = balas::app::App::open(config, clock)
        .await
        .err()
        .expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("canned response `halo`") && msg.contains("contact.nama"),
        "{msg}"
    );
}
