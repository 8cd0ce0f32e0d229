//! Engine turns, one inbound event at a time, on a real embedded store with a
//! clock the test holds and the repository's intent rules; no HTTP, no
//! workers. What the engine decides shows in the store: outbound records,
//! the conversation's owner, the contact, and the events it published.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Engine, Outcome, handle_event};
use crate::attachments::{Files, Library, Settings as FileSettings};
use crate::channels::MediaClient;
use crate::channels::{
    Channel, ContactRef, EventKind, InboundEvent, InboundMessage, MessageContent,
};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::conversation::State;
use crate::events::{Bus, Event, Reaction, Subscriber};
use crate::intents::{LoadOptions, RuleHandle};
use crate::media::MediaStore;
use crate::outbox::{Outbox, Senders};
use crate::store::embedded::EmbeddedBackend;
use crate::store::{ConversationError, OutboundState, Store};

/// Monday 2026-11-23 10:00 WIB: inside the default business hours.
const MONDAY_10_WIB_MS: i64 = 1_795_402_800_000;

/// Records what the engine publishes.
#[derive(Default)]
struct Published(Mutex<Vec<String>>);

#[async_trait]
impl Subscriber for Published {
    async fn on_event(&self, event: &Event) -> Result<Reaction, ConversationError> {
        let name = match event {
            Event::CustomerMessage { .. } => "customer_message",
            Event::CaseResolved(_) => "case_resolved",
            Event::OptOutChanged {
                opted_out: true, ..
            } => "opted_out",
            Event::OptOutChanged { .. } => "opted_in",
            Event::Delivery(_) => "delivery",
        };
        self.0.lock().unwrap().push(name.to_string());
        Ok(Reaction::Noted)
    }
}

struct Fixture {
    engine: Engine,
    clock: Arc<ManualClock>,
    published: Arc<Published>,
    _subscriber: Arc<dyn Subscriber>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at_ms(MONDAY_10_WIB_MS));
    let store = Store::new(
        Arc::new(EmbeddedBackend::open(dir.path()).unwrap()),
        clock.clone(),
    );
    let mut config: Config = crate::config::load_from_str("", "test", &[]).unwrap();
    config.intents.path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let rules = RuleHandle::load(&config.intents.path, LoadOptions::default()).unwrap();
    let bus = Bus::new();
    // No channel clients: sends are recorded as dry runs by the outbox worker,
    // which these tests do not run; the records stay pending.
    let outbox = Outbox::new(store.clone(), bus.clone(), Senders::default());
    let published = Arc::new(Published::default());
    let subscriber: Arc<dyn Subscriber> = published.clone();
    bus.subscribe(&subscriber);
    // Files in a directory of the fixture's; no platform to download from.
    let media = MediaStore::open(&config.media, dir.path()).await.unwrap();
    let files = Files::new(
        store.clone(),
        media,
        MediaClient::new(),
        FileSettings::from_config(&config),
        Library::default(),
    );
    let engine = Engine::new(Arc::new(config), store, outbox, rules, bus, files);
    Fixture {
        engine,
        clock,
        published,
        _subscriber: subscriber,
        _dir: dir,
    }
}

fn message(who: &str, wamid: &str, text: &str) -> InboundEvent {
    InboundEvent {
        channel: Channel::WhatsApp,
        business_id: "112233445566778".into(),
        dedupe_key: format!("wa:{wamid}"),
        timestamp_ms: MONDAY_10_WIB_MS,
        kind: EventKind::Message(InboundMessage {
            contact: ContactRef {
                external_id: who.into(),
                name: Some("Rina".into()),
                wa_id: Some(who.into()),
                user_id: None,
            },
            message_id: wamid.into(),
            content: MessageContent::Text { body: text.into() },
            reply_to: None,
        }),
    }
}

async fn reply_text(f: &Fixture, wamid: &str) -> Option<String> {
    let record = f
        .engine
        .store()
        .outbound(&format!("re:{wamid}"))
        .await
        .unwrap()?;
    assert_eq!(record.state, OutboundState::Pending);
    Some(record.message.content.summary())
}

async fn case_state(f: &Fixture, who: &str) -> State {
    let contact = f
        .engine
        .store()
        .contact(Channel::WhatsApp, who)
        .await
        .unwrap()
        .expect("the contact");
    let case = contact.current_case.expect("a case");
    f.engine
        .store()
        .conversation(&case)
        .await
        .unwrap()
        .expect("the case")
        .state
}

#[tokio::test]
async fn a_routine_question_is_answered_once_however_often_the_event_runs() {
    let f = fixture().await;
    let event = message("6281", "wamid.q1", "jam operasional toko kapan ya");
    for _ in 0..3 {
        assert_eq!(
            handle_event(&f.engine, &event).await.unwrap(),
            Outcome::Done
        );
    }
    let reply = reply_text(&f, "wamid.q1").await.expect("a reply");
    assert!(reply.contains("08.00"), "{reply}");
    let transcript = f
        .engine
        .store()
        .transcript(
            &f.engine
                .store()
                .contact(Channel::WhatsApp, "6281")
                .await
                .unwrap()
                .unwrap()
                .current_case
                .unwrap(),
        )
        .await
        .unwrap();
    let customer_lines = transcript
        .iter()
        .filter(|e| e.speaker == crate::store::Speaker::Customer)
        .count();
    assert_eq!(customer_lines, 1, "transcribed once");
    assert_eq!(case_state(&f, "6281").await, State::Bot);
}

#[tokio::test]
async fn a_request_for_a_person_queues_the_case_and_tells_the_position() {
    let f = fixture().await;
    let event = message(
        "6282",
        "wamid.h1",
        "saya mau bicara dengan customer service",
    );
    handle_event(&f.engine, &event).await.unwrap();
    assert_eq!(case_state(&f, "6282").await, State::Queued);
    let reply = reply_text(&f, "wamid.h1").await.expect("a reply");
    assert!(
        reply.contains("antrean") && reply.contains('1'),
        "tells the position in the queue: {reply}"
    );
}

#[tokio::test]
async fn an_opt_out_is_recorded_and_published_whoever_owns_the_case() {
    let f = fixture().await;
    handle_event(&f.engine, &message("6283", "wamid.o1", "stop kirim promo"))
        .await
        .unwrap();
    let contact = f
        .engine
        .store()
        .contact(Channel::WhatsApp, "6283")
        .await
        .unwrap()
        .unwrap();
    assert!(contact.opted_out);
    let published = f.published.0.lock().unwrap().clone();
    assert_eq!(published, ["customer_message", "opted_out"]);
}

#[tokio::test]
async fn a_contact_busy_in_another_worker_is_deferred_not_failed() {
    let f = fixture().await;
    let ttl = std::time::Duration::from_secs(30);
    assert!(
        f.engine
            .store()
            .lock_contact(Channel::WhatsApp, "6284", "wa:another-event", ttl)
            .await
            .unwrap()
    );
    let event = message("6284", "wamid.b1", "halo");
    assert_eq!(
        handle_event(&f.engine, &event).await.unwrap(),
        Outcome::Busy
    );
    assert!(
        reply_text(&f, "wamid.b1").await.is_none(),
        "nothing done yet"
    );
}

#[tokio::test]
async fn an_agents_case_gets_no_bot_reply() {
    let f = fixture().await;
    handle_event(
        &f.engine,
        &message(
            "6285",
            "wamid.a1",
            "saya mau bicara dengan customer service",
        ),
    )
    .await
    .unwrap();
    let agent = crate::store::User {
        id: "siti".into(),
        name: "Siti".into(),
        role: crate::config::Role::Agent,
        queues: Vec::new(),
        max_concurrent: 5,
        disabled: false,
        password_hash: None,
        tokens: Vec::new(),
        created_ms: MONDAY_10_WIB_MS,
        updated_ms: MONDAY_10_WIB_MS,
    };
    let claimed = super::ownership::claim_next(&f.engine, &agent, None)
        .await
        .unwrap();
    assert!(claimed.is_some());
    handle_event(
        &f.engine,
        &message("6285", "wamid.a2", "halo, ada yang bisa bantu?"),
    )
    .await
    .unwrap();
    assert_eq!(case_state(&f, "6285").await, State::Assigned);
    assert!(
        reply_text(&f, "wamid.a2").await.is_none(),
        "the agent answers, not the bot"
    );
}

async fn case_of(f: &Fixture, who: &str) -> crate::conversation::Conversation {
    let store = f.engine.store();
    let contact = store
        .contact(Channel::WhatsApp, who)
        .await
        .unwrap()
        .expect("the contact");
    store
        .conversation(&contact.current_case.expect("a case"))
        .await
        .unwrap()
        .expect("the case")
}

/// The intent of the bot's last line in the case's transcript.
async fn last_bot_intent(f: &Fixture, who: &str) -> Option<String> {
    let case = case_of(f, who).await;
    let transcript = f.engine.store().transcript(&case.id).await.unwrap();
    transcript.iter().rev().find_map(|e| match &e.speaker {
        crate::store::Speaker::Bot { intent } => Some(intent.clone().unwrap_or_default()),
        _ => None,
    })
}

async fn say(f: &Fixture, who: &str, wamid: &str, text: &str) {
    let mut event = message(who, wamid, text);
    event.timestamp_ms = f.engine.store().now_ms();
    assert_eq!(
        handle_event(&f.engine, &event).await.unwrap(),
        Outcome::Done
    );
}

#[tokio::test]
async fn a_typed_answer_picks_an_offered_choice_until_the_question_expires() {
    let f = fixture().await;
    say(&f, "6286", "wamid.c1", "ori gk min?").await;
    let record = f
        .engine
        .store()
        .outbound("re:wamid.c1")
        .await
        .unwrap()
        .expect("the question");
    let crate::channels::OutboundContent::Buttons { buttons, .. } = &record.message.content else {
        panic!("a question with buttons: {:?}", record.message.content);
    };
    let offered = case_of(&f, "6286")
        .await
        .question
        .expect("kept on the case");
    assert_eq!(offered.choices.len(), buttons.len());
    let second = offered.choices[1].payload.clone();
    let second = second.strip_prefix("intent:").expect("an intent");

    // "2" is the second button.
    say(&f, "6286", "wamid.c2", "2").await;
    assert_eq!(last_bot_intent(&f, "6286").await.as_deref(), Some(second));
    assert!(case_of(&f, "6286").await.question.is_none(), "answered");

    // Asked again, answered after the question expired: "1" is just a message.
    say(&f, "6286", "wamid.c3", "ori gk min?").await;
    let first = case_of(&f, "6286")
        .await
        .question
        .expect("asked again")
        .choices[0]
        .payload
        .clone();
    f.clock.advance(std::time::Duration::from_millis(
        super::clarify::QUESTION_TTL_MS as u64,
    ));
    say(&f, "6286", "wamid.c4", "1").await;
    assert_ne!(
        last_bot_intent(&f, "6286").await.as_deref(),
        first.strip_prefix("intent:")
    );
    assert!(case_of(&f, "6286").await.question.is_none());
}

#[tokio::test]
async fn an_unclear_opt_out_is_confirmed_and_a_typed_yes_opts_out() {
    let f = fixture().await;
    say(&f, "6287", "wamid.u1", "udah cukup ya kirim2nya").await;
    let question = reply_text(&f, "wamid.u1").await.expect("a question");
    assert!(question.contains("Berhenti menerima promo?"), "{question}");
    let contact = |f: &Fixture| {
        let store = f.engine.store().clone();
        async move {
            store
                .contact(Channel::WhatsApp, "6287")
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert!(!contact(&f).await.opted_out, "never opted out on a guess");
    say(&f, "6287", "wamid.u2", "ya kak").await;
    assert!(contact(&f).await.opted_out);
}

#[tokio::test]
async fn numbers_given_go_onto_the_case_and_into_replies() {
    let f = fixture().await;
    say(
        &f,
        "6288",
        "wamid.n1",
        "paket saya belum sampai, resi JP1234567890",
    )
    .await;
    let case = case_of(&f, "6288").await;
    assert_eq!(
        case.entities.get("tracking_number").map(String::as_str),
        Some("JP1234567890")
    );
    assert_eq!(
        case.entities.get("courier").map(String::as_str),
        Some("J&T")
    );
    let reply = reply_text(&f, "wamid.n1").await.expect("a reply");
    assert!(reply.contains("JP1234567890"), "{reply}");
    // A later message about the same order: the number is not asked again.
    say(
        &f,
        "6288",
        "wamid.n2",
        "min pesanan saya kok belum sampai juga",
    )
    .await;
    let reply = reply_text(&f, "wamid.n2").await.expect("a reply");
    assert!(
        reply.contains("JP1234567890") && !reply.contains("Mohon kirimkan nomor"),
        "{reply}"
    );
}

#[tokio::test]
async fn opening_hours_replies_render_the_configured_schedule() {
    let f = fixture().await;
    say(&f, "6289", "wamid.h1", "jam buka cs nya jam berapa ya").await;
    let reply = reply_text(&f, "wamid.h1").await.expect("a reply");
    assert!(
        reply.contains("Senin-Jumat 08.00-17.00, Sabtu 09.00-13.00 WIB"),
        "{reply}"
    );
    assert!(!reply.contains("di luar jam layanan"), "open now: {reply}");
}

#[tokio::test]
async fn a_request_for_a_person_about_a_topic_waits_in_the_topics_queue() {
    let f = fixture().await;
    say(
        &f,
        "6290",
        "wamid.t1",
        "mau klaim garansi, tolong sambungkan ke CS",
    )
    .await;
    let case = case_of(&f, "6290").await;
    let reply = reply_text(&f, "wamid.t1").await;
    assert_eq!(case.state, State::Queued, "{reply:?}");
    assert_eq!(case.queue.as_deref(), Some("after_sales"));
    let reply = reply_text(&f, "wamid.t1").await.expect("a reply");
    assert!(reply.contains("untuk Garansi"), "{reply}");
}
