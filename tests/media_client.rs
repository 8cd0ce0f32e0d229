//! The Graph media client against the Graph mock, end to end into the media
//! store: a customer's WhatsApp photo (from the fixture webhook) and Instagram
//! image reach the store byte for byte, on the `fs` backend and on a real
//! S3-compatible server; every check against Meta's answer refuses a bad file
//! before anything is kept; an agent's PDF is uploaded and sent by id; an
//! Instagram attachment is sent by URL and fetched as Meta would.

mod common;

use std::path::PathBuf;

use balas::channels::client::{ChannelClient, InstagramClient, WhatsAppClient};
use balas::channels::media_client::{
    MEDIA_MISMATCH_CODE, MEDIA_TOO_LARGE_CODE, MEDIA_UNUSABLE_CODE,
};
use balas::channels::{
    Channel, EventKind, InboundMedia, MediaClient, MediaKind, MessageContent, OutboundContent,
    OutboundMedia, OutboundMediaSource, OutboundMessage, SendError, instagram, whatsapp,
};
use balas::config::MediaConfig;
use balas::media::{ContentHash, MediaStore, PutError};
use common::graph_mock::GraphMock;
use common::s3_server::S3Server;

const PHONE_NUMBER_ID: &str = "112233445566778";
const IG_ACCOUNT: &str = "17841400987654321";
const TOKEN: &str = "graph-token";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/platform")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn client(mock: &GraphMock) -> MediaClient {
    MediaClient::new()
        .with_whatsapp(mock.base_url(), PHONE_NUMBER_ID, TOKEN)
        .with_instagram(mock.base_url())
}

/// A JPEG-looking file of `len` bytes.
fn photo(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
    data[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
    data
}

/// The one media of a webhook body.
fn media_of(events: &[balas::channels::InboundEvent]) -> InboundMedia {
    assert_eq!(events.len(), 1, "{events:?}");
    let EventKind::Message(m) = &events[0].kind else {
        panic!("{events:?}")
    };
    m.content.media().expect("a file")
}

/// Downloads `media` and stores it; the error of either side otherwise.
async fn fetch_into(
    store: &MediaStore,
    client: &MediaClient,
    channel: Channel,
    media: &InboundMedia,
) -> Result<(balas::media::StoredObject, Option<String>), PutError<SendError>> {
    let limit = store.inbound_limit(channel, media.kind);
    let download = client
        .download(channel, None, media, limit)
        .await
        .map_err(PutError::Source)?;
    let mime = download.mime_type.clone();
    let object = store.put_stream(download.body, limit).await?;
    Ok((object, mime))
}

async fn whatsapp_and_instagram_photos_reach_the_store(store: MediaStore) {
    let mock = GraphMock::start().await;
    let client = client(&mock);

    // WhatsApp: the fixture webhook, pointing at a file the mock serves.
    let bytes = photo(200_000, 1);
    let served = mock.add_whatsapp_media(&bytes, "image/jpeg");
    let body = fixture("wa_image.json")
        .replace("6457861741420136", &served.id)
        .replace(
            "w812ZmhmYEw3/xYRLLqQdbL+dGJm/VwSOtBlacMgR0w=",
            &served.sha256_base64,
        );
    let media = media_of(&whatsapp::parse_webhook(body.as_bytes()).unwrap());
    assert_eq!(media.kind, MediaKind::Image);
    let (object, mime) = fetch_into(&store, &client, Channel::WhatsApp, &media)
        .await
        .unwrap();
    assert_eq!(mime.as_deref(), Some("image/jpeg"));
    assert_eq!(object.hash, ContentHash::of(&bytes));
    assert_eq!(store.get_bytes(&object.hash).await.unwrap(), bytes);
    // Both calls carried the token; the lookup named our number.
    let calls = mock.media_requests();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].path, format!("/{}", served.id));
    assert_eq!(calls[1].path, format!("/__media/{}", served.id));
    for call in &calls {
        assert_eq!(call.auth.as_deref(), Some("Bearer graph-token"));
    }

    // Instagram: the fixture webhook with a CDN URL the mock serves.
    let ig_bytes = photo(150_000, 2);
    let url = mock.add_cdn_file(&ig_bytes, "image/jpeg");
    let fixture_body = fixture("ig_attachment_image.json");
    let original =
        serde_json::from_str::<serde_json::Value>(&fixture_body).unwrap()["entry"][0]["messaging"]
            [0]["message"]["attachments"][0]["payload"]["url"]
            .as_str()
            .unwrap()
            .to_string();
    let body = fixture_body.replace(&original, &url);
    let media = media_of(&instagram::parse_webhook(body.as_bytes()).unwrap());
    let (object, mime) = fetch_into(&store, &client, Channel::Instagram, &media)
        .await
        .unwrap();
    assert_eq!(mime.as_deref(), Some("image/jpeg"));
    assert_eq!(store.get_bytes(&object.hash).await.unwrap(), ig_bytes);
    // No token goes to the CDN.
    assert_eq!(mock.media_requests().last().unwrap().auth, None);
    assert_eq!(mock.violations(), Vec::<String>::new());
}

async fn bad_files_are_refused_and_nothing_is_kept(store: MediaStore) {
    let mock = GraphMock::start().await;
    let client = client(&mock);
    let wa = |served: &common::graph_mock::MockMedia, mime: &str| InboundMedia {
        kind: MediaKind::Image,
        media_id: Some(served.id.clone()),
        url: None,
        mime_type: Some(mime.into()),
        sha256: Some(served.sha256_base64.clone()),
        caption: None,
        filename: None,
        voice: false,
        animated: false,
    };
    let code = |r: Result<_, PutError<SendError>>| match r {
        Err(PutError::Source(SendError::Permanent { code, .. })) => ("permanent", code),
        Err(PutError::Source(SendError::Retryable { code, .. })) => ("retryable", code),
        Err(PutError::Source(SendError::Unknown { .. })) => ("unknown", 0),
        Err(PutError::Store(e)) => panic!("store error {e}"),
        Ok(_) => panic!("stored a bad file"),
    };

    // Meta's answer names a different SHA-256 than the bytes have: the transfer
    // is retried, nothing is kept.
    let bytes = photo(50_000, 3);
    let served = mock.add_whatsapp_media_with(&bytes, "image/jpeg", |answer| {
        answer["sha256"] = serde_json::json!(hex::encode([7u8; 32]));
    });
    let mut media = wa(&served, "image/jpeg");
    media.sha256 = None; // the webhook's own hash would already disagree
    assert_eq!(
        code(fetch_into(&store, &client, Channel::WhatsApp, &media).await),
        ("retryable", MEDIA_MISMATCH_CODE)
    );
    assert_eq!(store.size(&ContentHash::of(&bytes)).await.unwrap(), None);

    // Fewer bytes than announced (a cut transfer): retried.
    let served = mock.add_whatsapp_media_with(&bytes, "image/jpeg", |answer| {
        answer["file_size"] = serde_json::json!("50001");
    });
    assert_eq!(
        code(
            fetch_into(
                &store,
                &client,
                Channel::WhatsApp,
                &wa(&served, "image/jpeg")
            )
            .await
        ),
        ("retryable", MEDIA_MISMATCH_CODE)
    );

    // The webhook and Meta's answer disagree on hash or type: permanent, and
    // the file is never fetched.
    let served = mock.add_whatsapp_media(&bytes, "image/jpeg");
    let mut other_hash = wa(&served, "image/jpeg");
    other_hash.sha256 = Some(hex::encode([1u8; 32]));
    let before = mock.media_requests().len();
    assert_eq!(
        code(fetch_into(&store, &client, Channel::WhatsApp, &other_hash).await),
        ("permanent", MEDIA_UNUSABLE_CODE)
    );
    assert_eq!(
        code(
            fetch_into(
                &store,
                &client,
                Channel::WhatsApp,
                &wa(&served, "image/png")
            )
            .await
        ),
        ("permanent", MEDIA_UNUSABLE_CODE)
    );
    let after: Vec<String> = mock.media_requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        after.iter().all(|p| !p.starts_with("/__media/")),
        "{after:?}"
    );

    // Larger than WhatsApp allows for an image (5 MiB): refused from the
    // announced size, before the download.
    let big = photo(5 * 1024 * 1024 + 1, 4);
    let served = mock.add_whatsapp_media(&big, "image/jpeg");
    let before = mock.media_requests().len();
    assert_eq!(
        code(
            fetch_into(
                &store,
                &client,
                Channel::WhatsApp,
                &wa(&served, "image/jpeg")
            )
            .await
        ),
        ("permanent", MEDIA_TOO_LARGE_CODE)
    );
    assert_eq!(mock.media_requests().len(), before + 1, "only the lookup");
    // … and when nothing announces the size, the stream is cut at the limit.
    let url = mock.add_cdn_file(&photo(9 * 1024 * 1024, 5), "image/jpeg");
    let ig = InboundMedia {
        kind: MediaKind::Image,
        media_id: None,
        url: Some(url.clone()),
        mime_type: None,
        sha256: None,
        caption: None,
        filename: None,
        voice: false,
        animated: false,
    };
    assert_eq!(
        code(fetch_into(&store, &client, Channel::Instagram, &ig).await),
        ("permanent", MEDIA_TOO_LARGE_CODE)
    );

    // An unknown media id (Graph code 100) and an expired CDN URL (404) are
    // permanent: retrying cannot help.
    let mut unknown = wa(&served, "image/jpeg");
    unknown.media_id = Some("999".into());
    assert_eq!(
        code(fetch_into(&store, &client, Channel::WhatsApp, &unknown).await),
        ("permanent", 100)
    );
    let small = mock.add_cdn_file(b"\xFF\xD8\xFFtiny", "image/jpeg");
    mock.expire_cdn_file(&small);
    let mut expired = ig.clone();
    expired.url = Some(small);
    assert_eq!(
        code(fetch_into(&store, &client, Channel::Instagram, &expired).await),
        ("permanent", 404)
    );
    // Without WhatsApp credentials nothing is asked at all.
    let before = mock.media_requests().len();
    let bare = MediaClient::new().with_instagram(mock.base_url());
    assert_eq!(
        code(fetch_into(&store, &bare, Channel::WhatsApp, &wa(&served, "image/jpeg")).await),
        ("permanent", MEDIA_UNUSABLE_CODE)
    );
    assert_eq!(mock.media_requests().len(), before);
    assert_eq!(mock.violations(), Vec::<String>::new());
}

// Each scenario once per media store backend.
mod fs {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn whatsapp_and_instagram_photos_reach_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::fs_store(dir.path()).await;
        super::whatsapp_and_instagram_photos_reach_the_store(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_files_are_refused_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::fs_store(dir.path()).await;
        super::bad_files_are_refused_and_nothing_is_kept(store).await;
    }
}

mod s3 {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn whatsapp_and_instagram_photos_reach_the_store() {
        let server = super::S3Server::start();
        let dir = tempfile::tempdir().unwrap();
        let store = super::s3_store(&server, dir.path()).await;
        super::whatsapp_and_instagram_photos_reach_the_store(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_files_are_refused_and_nothing_is_kept() {
        let server = super::S3Server::start();
        let dir = tempfile::tempdir().unwrap();
        let store = super::s3_store(&server, dir.path()).await;
        super::bad_files_are_refused_and_nothing_is_kept(store).await;
    }
}

async fn fs_store(dir: &std::path::Path) -> MediaStore {
    MediaStore::open(&MediaConfig::default(), dir)
        .await
        .unwrap()
}

async fn s3_store(server: &S3Server, dir: &std::path::Path) -> MediaStore {
    MediaStore::open(&server.media_config("balas-media"), dir)
        .await
        .unwrap()
}

fn wa_message(media: OutboundMedia) -> OutboundMessage {
    OutboundMessage {
        channel: Channel::WhatsApp,
        to: "6289612345670".into(),
        content: OutboundContent::Media(media),
        human_agent_tag: false,
        from: None,
    }
}

#[tokio::test]
async fn an_agents_pdf_is_uploaded_and_sent_as_a_document() {
    let mock = GraphMock::start().await;
    let media = client(&mock);
    let pdf = b"%PDF-1.4\n% nota servis 042\n".repeat(1000);
    let id = media
        .whatsapp_upload_bytes(
            None,
            pdf.clone().into(),
            "application/pdf",
            "nota servis 042.pdf",
        )
        .await
        .unwrap();
    let uploads = mock.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].id, id);
    assert_eq!(uploads[0].phone_number_id, PHONE_NUMBER_ID);
    assert_eq!(uploads[0].mime_type, "application/pdf");
    assert_eq!(uploads[0].filename.as_deref(), Some("nota servis 042.pdf"));
    assert_eq!(uploads[0].bytes, pdf);

    let sender = WhatsAppClient::new(
        reqwest::Client::new(),
        mock.base_url(),
        PHONE_NUMBER_ID,
        TOKEN,
    );
    let parts = OutboundContent::Media(OutboundMedia {
        kind: MediaKind::Document,
        source: OutboundMediaSource::PlatformId { id: id.clone() },
        mime_type: "application/pdf".into(),
        size: pdf.len() as u64,
        caption: Some("Nota servis terlampir".into()),
        filename: Some("nota servis 042.pdf".into()),
    })
    .split_for(Channel::WhatsApp);
    assert_eq!(parts.len(), 1, "WhatsApp shows a document's caption");
    let OutboundContent::Media(doc) = parts[0].clone() else {
        panic!()
    };
    let receipt = sender.send(&wa_message(doc)).await.unwrap();
    assert!(receipt.platform_message_id.is_some());
    let sent = mock.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["type"], "document");
    assert_eq!(
        sent[0].body["document"],
        serde_json::json!({"id": id, "caption": "Nota servis terlampir", "filename": "nota servis 042.pdf"})
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn the_mock_refuses_what_meta_would() {
    let mock = GraphMock::start().await;
    let media = client(&mock);
    // HTML is no WhatsApp media type.
    let err = media
        .whatsapp_upload_bytes(None, b"<script>".to_vec().into(), "text/html", "x.html")
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Permanent { code: 100, .. }),
        "{err:?}"
    );
    // An id that was never uploaded, and a PDF upload sent as an image.
    let sender = WhatsAppClient::new(
        reqwest::Client::new(),
        mock.base_url(),
        PHONE_NUMBER_ID,
        TOKEN,
    );
    let image = |id: &str| OutboundMedia {
        kind: MediaKind::Image,
        source: OutboundMediaSource::PlatformId { id: id.into() },
        mime_type: "image/jpeg".into(),
        size: 10,
        caption: None,
        filename: None,
    };
    assert!(sender.send(&wa_message(image("4242"))).await.is_err());
    let pdf_id = media
        .whatsapp_upload_bytes(
            None,
            b"%PDF-1.4".to_vec().into(),
            "application/pdf",
            "a.pdf",
        )
        .await
        .unwrap();
    assert!(sender.send(&wa_message(image(&pdf_id))).await.is_err());
    let violations = mock.violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations[0].contains("text/html"), "{violations:?}");
    assert!(violations[1].contains("was not uploaded"), "{violations:?}");
    assert!(violations[2].contains("sent as image"), "{violations:?}");
}

#[tokio::test]
async fn instagram_attachments_are_sent_by_url_and_fetched() {
    let mock = GraphMock::start().await;
    let file = b"%PDF-1.4\nlabel retur\n".to_vec();
    // Phase B serves stored files at a signed public URL; here the mock's CDN
    // stands in for that URL.
    let url = mock.add_cdn_file(&file, "application/pdf");
    let sender = InstagramClient::new(reqwest::Client::new(), mock.base_url(), IG_ACCOUNT, TOKEN);
    let parts = OutboundContent::Media(OutboundMedia {
        kind: MediaKind::Document,
        source: OutboundMediaSource::Link { url: url.clone() },
        mime_type: "application/pdf".into(),
        size: file.len() as u64,
        caption: Some("Label retur".into()),
        filename: Some("label.pdf".into()),
    })
    .split_for(Channel::Instagram);
    assert_eq!(parts.len(), 2, "Instagram shows no caption with a file");
    for content in parts {
        let msg = OutboundMessage {
            channel: Channel::Instagram,
            to: "7291836450192837".into(),
            content,
            human_agent_tag: true,
            from: None,
        };
        sender.send(&msg).await.unwrap();
    }
    let sent = mock.requests();
    assert_eq!(
        sent[0].body["message"]["attachment"],
        serde_json::json!({"type": "file", "payload": {"url": url}})
    );
    assert_eq!(sent[1].body["message"]["text"], "Label retur");
    let fetched = mock.fetched();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].bytes, file);
    assert_eq!(mock.violations(), Vec::<String>::new());

    // A link Meta cannot fetch fails the send.
    mock.expire_cdn_file(&url);
    let msg = OutboundMessage {
        channel: Channel::Instagram,
        to: "7291836450192837".into(),
        content: OutboundContent::Media(OutboundMedia {
            kind: MediaKind::Image,
            source: OutboundMediaSource::Link { url },
            mime_type: "image/png".into(),
            size: 10,
            caption: None,
            filename: None,
        }),
        human_agent_tag: false,
        from: None,
    };
    assert!(sender.send(&msg).await.is_err());
}

#[test]
fn story_mentions_are_downloadable() {
    let body = serde_json::json!({"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": 1, "messaging": [
        {"sender": {"id": "U"}, "recipient": {"id": IG_ACCOUNT}, "timestamp": 1,
         "message": {"mid": "m", "attachments": [{"type": "story_mention", "payload": {"url": "https://cdn.example/story"}}]}}
    ]}]});
    let events = instagram::parse_webhook(body.to_string().as_bytes()).unwrap();
    let EventKind::Message(m) = &events[0].kind else {
        panic!()
    };
    assert!(matches!(m.content, MessageContent::Story { .. }));
    let media = media_of(&events);
    assert_eq!(media.kind, MediaKind::Story);
    assert_eq!(media.url.as_deref(), Some("https://cdn.example/story"));
}
