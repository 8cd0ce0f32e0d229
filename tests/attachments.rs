//! Attachment records on every state store: created once per file, listed per
//! case, and a status that only moves forward (pending → stored | failed,
//! failed → stored), never back from stored.

mod common;

use std::sync::Arc;
use std::time::Duration;

use balas::channels::{Channel, InboundMedia, MediaKind};
use balas::clock::{ManualClock, SharedClock};
use balas::media::{ContentHash, StoredObject};
use balas::store::embedded::EmbeddedBackend;
use balas::store::redis::RedisBackend;
use balas::store::{Attachment, AttachmentDirection, AttachmentStatus, Backend, Store};
use common::harness::unique_prefix;
use common::redis_cluster::RedisCluster;
use common::redis_server::RedisServer;

const T0: i64 = 1_795_402_800_000;

struct Fixture {
    store: Store,
    clock: Arc<ManualClock>,
    _guard: Box<dyn std::any::Any + Send>,
}

fn fixture_with(backend: Arc<dyn Backend>, guard: Box<dyn std::any::Any + Send>) -> Fixture {
    let clock = Arc::new(ManualClock::at_ms(T0));
    let shared: SharedClock = clock.clone();
    Fixture {
        store: Store::new(backend, shared),
        clock,
        _guard: guard,
    }
}

fn embedded() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let backend = EmbeddedBackend::open(dir.path()).unwrap();
    fixture_with(Arc::new(backend), Box::new(dir))
}

async fn redis() -> Fixture {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url(), "att").await.unwrap();
    fixture_with(Arc::new(backend), Box::new(server))
}

async fn cluster() -> Fixture {
    let backend = RedisBackend::connect_cluster(&RedisCluster::shared().urls(), &unique_prefix())
        .await
        .unwrap();
    fixture_with(Arc::new(backend), Box::new(()))
}

macro_rules! on_every_state_store {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::embedded()).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::redis().await).await })*
        }
        mod cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::cluster().await).await })*
        }
    };
}

on_every_state_store!(
    created_once_and_listed_per_case,
    status_moves_forward_only,
    outbound_records_and_content_index,
);

fn photo_ref(id: &str) -> InboundMedia {
    InboundMedia {
        kind: MediaKind::Image,
        media_id: Some(id.into()),
        url: None,
        mime_type: Some("image/jpeg".into()),
        sha256: Some("w812ZmhmYEw3/xYRLLqQdbL+dGJm/VwSOtBlacMgR0w=".into()),
        caption: Some("barang rusak".into()),
        filename: None,
        voice: false,
        animated: false,
    }
}

async fn created_once_and_listed_per_case(f: Fixture) {
    let s = &f.store;
    let first = Attachment::inbound(
        "wa:msg:wamid.A",
        "CASE-1",
        Channel::WhatsApp,
        "wamid.A",
        &photo_ref("M1"),
        s.now_ms(),
    );
    let (stored, created) = s.create_attachment(&first).await.unwrap();
    assert!(created);
    assert_eq!(stored, first);
    assert_eq!(stored.status, AttachmentStatus::Pending);
    assert_eq!(stored.direction, AttachmentDirection::Inbound);
    assert_eq!(stored.caption.as_deref(), Some("barang rusak"));
    assert_eq!(stored.remote, Some(photo_ref("M1")));

    // The same event handled again: the same record, unchanged.
    f.clock.advance(Duration::from_secs(5));
    let again = Attachment::inbound(
        "wa:msg:wamid.A",
        "CASE-1",
        Channel::WhatsApp,
        "wamid.A",
        &photo_ref("M1"),
        s.now_ms(),
    );
    assert_eq!(again.id, first.id);
    let (current, created) = s.create_attachment(&again).await.unwrap();
    assert!(!created);
    assert_eq!(current.created_ms, T0);

    // Two files of one Instagram message, and one in another case.
    let ig = |key: &str, case: &str| {
        let mut media = photo_ref("x");
        media.media_id = None;
        media.url = Some(format!("https://cdn.example/{key}"));
        Attachment::inbound(key, case, Channel::Instagram, "mid.1", &media, T0 + 10)
    };
    s.create_attachment(&ig("ig:msg:mid.1", "CASE-1"))
        .await
        .unwrap();
    s.create_attachment(&ig("ig:msg:mid.1:1", "CASE-1"))
        .await
        .unwrap();
    s.create_attachment(&ig("ig:msg:mid.2", "CASE-2"))
        .await
        .unwrap();
    let listed = s.conversation_attachments("CASE-1", 100).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].id, first.id, "oldest first");
    assert_ne!(listed[1].id, listed[2].id);
    assert_eq!(
        s.conversation_attachments("CASE-2", 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.conversation_attachments("CASE-9", 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.conversation_attachments("CASE-1", 2).await.unwrap().len(),
        2
    );
    assert_eq!(s.attachment(&first.id).await.unwrap(), Some(current));
    assert_eq!(
        s.attachment("0123456789abcdef01234567").await.unwrap(),
        None
    );
    // By age, for retention.
    assert_eq!(
        s.attachments_created_before(T0, 10).await.unwrap(),
        vec![first.id.clone()]
    );
    assert_eq!(
        s.attachments_created_before(T0 + 10, 10)
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn status_moves_forward_only(f: Fixture) {
    let s = &f.store;
    let a = Attachment::inbound(
        "wa:msg:wamid.B",
        "CASE-1",
        Channel::WhatsApp,
        "wamid.B",
        &photo_ref("M2"),
        s.now_ms(),
    );
    s.create_attachment(&a).await.unwrap();

    // Retries count and keep the last error, still pending.
    f.clock.advance(Duration::from_secs(30));
    let r = s
        .note_attachment_retry(&a.id, "timeout")
        .await
        .unwrap()
        .unwrap();
    let r = s
        .note_attachment_retry(&r.id, "HTTP 503")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.attempts, 2);
    assert_eq!(r.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(r.status, AttachmentStatus::Pending);
    assert_eq!(r.updated_ms, T0 + 30_000);

    // Stored: hash, size and the served type recorded; indexed by content.
    let object = StoredObject {
        hash: ContentHash::of(b"jpeg bytes"),
        size: 10,
    };
    let stored = s
        .mark_attachment_stored(&a.id, object, "image/jpeg")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AttachmentStatus::Stored);
    assert_eq!(stored.sha256, Some(object.hash));
    assert_eq!(stored.size, Some(10));
    assert_eq!(stored.last_error, None);
    assert_eq!(
        s.attachments_with_content(&object.hash, 10).await.unwrap(),
        vec![a.id.clone()]
    );

    // Nothing moves a stored record back or changes its object.
    let after_fail = s
        .mark_attachment_failed(&a.id, "too late")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after_fail, stored);
    let other = StoredObject {
        hash: ContentHash::of(b"other"),
        size: 5,
    };
    let same = s
        .mark_attachment_stored(&a.id, other, "image/png")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same, stored);
    assert_eq!(
        s.note_attachment_retry(&a.id, "x").await.unwrap().unwrap(),
        stored
    );

    // Pending → failed with a reason; a later success still counts.
    let b = Attachment::inbound(
        "wa:msg:wamid.C",
        "CASE-1",
        Channel::WhatsApp,
        "wamid.C",
        &photo_ref("M3"),
        s.now_ms(),
    );
    s.create_attachment(&b).await.unwrap();
    let failed = s
        .mark_attachment_failed(&b.id, "Meta no longer has this file")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        failed.status,
        AttachmentStatus::Failed {
            reason: "Meta no longer has this file".into()
        }
    );
    assert_eq!(
        s.note_attachment_retry(&b.id, "x").await.unwrap().unwrap(),
        failed
    );
    let recovered = s
        .mark_attachment_stored(&b.id, object, "image/jpeg")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recovered.status, AttachmentStatus::Stored);
    let mut sharing = s.attachments_with_content(&object.hash, 10).await.unwrap();
    sharing.sort();
    let mut want = vec![a.id.clone(), b.id.clone()];
    want.sort();
    assert_eq!(sharing, want);

    // Unknown ids answer None everywhere.
    let unknown = "ffffffffffffffffffffffff";
    assert_eq!(s.mark_attachment_failed(unknown, "r").await.unwrap(), None);
    assert_eq!(s.note_attachment_retry(unknown, "r").await.unwrap(), None);
    assert_eq!(
        s.mark_attachment_stored(unknown, object, "image/jpeg")
            .await
            .unwrap(),
        None
    );
}

async fn outbound_records_and_content_index(f: Fixture) {
    let s = &f.store;
    let object = StoredObject {
        hash: ContentHash::of(b"%PDF-1.4 nota"),
        size: 13,
    };
    let a = Attachment::outbound(
        "CASE-7",
        Channel::WhatsApp,
        MediaKind::Document,
        object,
        "application/pdf",
        Some("nota.pdf".into()),
        Some("Nota servis".into()),
        Some("siti".into()),
        s.now_ms(),
    );
    assert!(Attachment::valid_id(&a.id));
    let (stored, created) = s.create_attachment(&a).await.unwrap();
    assert!(created);
    assert_eq!(stored.status, AttachmentStatus::Stored);
    assert_eq!(stored.direction, AttachmentDirection::Outbound);
    assert_eq!(
        s.attachments_with_content(&object.hash, 10).await.unwrap(),
        vec![a.id.clone()]
    );
    let sent = s
        .set_attachment_message_id(&a.id, "wamid.OUT")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.message_id.as_deref(), Some("wamid.OUT"));
    let many = s
        .attachments(&[a.id.clone(), "000000000000000000000000".into()])
        .await
        .unwrap();
    assert_eq!(many, vec![sent]);
}
