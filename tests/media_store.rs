//! One conformance suite for both media store backends.
//!
//! Every test is an async fn taking a `MediaStore`; the `conformance!` macro runs
//! it once on the `fs` backend (a temp dir) and once on the `s3` backend against
//! a real S3-compatible server (moto's, started per test on loopback).

mod common;

use std::sync::Arc;

use balas::channels::{Channel, MediaKind};
use balas::config::{MediaBackendKind, MediaConfig};
use balas::media::{ContentHash, MediaError, MediaStore, PutError};
use bytes::Bytes;
use common::s3_server::S3Server;
use futures_util::StreamExt;

/// A store plus whatever must live as long as it (temp dir, server).
struct Fixture {
    store: MediaStore,
    data_dir: tempfile::TempDir,
    _server: Option<S3Server>,
}

/// `[media] max_bytes` of the stores under test: 12 MiB, enough for a
/// multipart upload (parts of 8 MiB) and small enough to test the cap.
const MAX_BYTES: u64 = 12 * 1024 * 1024;

async fn fs_fixture() -> Fixture {
    let data_dir = tempfile::tempdir().unwrap();
    let config = MediaConfig {
        max_bytes: MAX_BYTES,
        ..MediaConfig::default()
    };
    let store = MediaStore::open(&config, data_dir.path()).await.unwrap();
    Fixture {
        store,
        data_dir,
        _server: None,
    }
}

async fn s3_fixture() -> Fixture {
    let server = S3Server::start();
    let data_dir = tempfile::tempdir().unwrap();
    let config = MediaConfig {
        max_bytes: MAX_BYTES,
        prefix: "balas-test".into(),
        ..server.media_config("media")
    };
    let store = MediaStore::open(&config, data_dir.path()).await.unwrap();
    Fixture {
        store,
        data_dir,
        _server: Some(server),
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::fs_fixture().await;
                    super::$name(&f).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::s3_fixture().await;
                    super::$name(&f).await;
                }
            )*
        }
    };
}

conformance!(
    put_and_get_identical_bytes,
    content_addressing,
    size_limits_keep_nothing,
    not_found,
    failed_source_keeps_nothing,
    large_files_stream_through,
);

/// Bytes that look like a photo to nobody but differ everywhere.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// Nothing is left in the spool directory (no half-written files).
fn spool_is_empty(f: &Fixture) {
    let spools = [
        f.data_dir.path().join("media/.spool"),
        f.data_dir.path().join("media-spool"),
    ];
    for dir in spools {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let left: Vec<_> = entries.map(|e| e.unwrap().file_name()).collect();
            assert!(left.is_empty(), "{}: {left:?}", dir.display());
        }
    }
}

async fn put_and_get_identical_bytes(f: &Fixture) {
    let store = &f.store;
    store.ping().await.unwrap();
    let data = sample(300_000, 1);
    let object = store
        .put_bytes(Bytes::from(data.clone()), u64::MAX)
        .await
        .unwrap();
    assert_eq!(object.size, data.len() as u64);
    assert_eq!(object.hash, ContentHash::of(&data));
    assert_eq!(store.get_bytes(&object.hash).await.unwrap(), data);
    assert_eq!(store.size(&object.hash).await.unwrap(), Some(300_000));
    // Streaming gives the same bytes, in more than one chunk for this size.
    let body = store.get(&object.hash).await.unwrap();
    assert_eq!(body.size, 300_000);
    let chunks: Vec<Bytes> = body.stream.map(|c| c.unwrap()).collect().await;
    assert!(!chunks.is_empty());
    assert_eq!(chunks.concat(), data);
    // An empty file is a file too.
    let empty = store.put_bytes(Bytes::new(), 10).await.unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(store.get_bytes(&empty.hash).await.unwrap(), b"");
    spool_is_empty(f);
}

async fn content_addressing(f: &Fixture) {
    let store = &f.store;
    let a = sample(10_000, 2);
    let first = store
        .put_bytes(Bytes::from(a.clone()), u64::MAX)
        .await
        .unwrap();
    let again = store
        .put_bytes(Bytes::from(a.clone()), u64::MAX)
        .await
        .unwrap();
    assert_eq!(first, again);
    // The key is the SHA-256, in hex, whatever the bytes are called.
    assert_eq!(
        first.hash.to_string(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&a))
    );
    let mut b = a.clone();
    b[0] ^= 1;
    let other = store
        .put_bytes(Bytes::from(b.clone()), u64::MAX)
        .await
        .unwrap();
    assert_ne!(other.hash, first.hash);
    assert_eq!(store.get_bytes(&first.hash).await.unwrap(), a);
    assert_eq!(store.get_bytes(&other.hash).await.unwrap(), b);
    // Deleting one leaves the other.
    assert!(store.delete(&first.hash).await.unwrap());
    assert!(!store.delete(&first.hash).await.unwrap());
    assert_eq!(store.size(&first.hash).await.unwrap(), None);
    assert_eq!(store.get_bytes(&other.hash).await.unwrap(), b);
    // The same bytes can be stored again after a delete.
    store
        .put_bytes(Bytes::from(a.clone()), u64::MAX)
        .await
        .unwrap();
    assert_eq!(store.get_bytes(&first.hash).await.unwrap(), a);
    spool_is_empty(f);
}

async fn size_limits_keep_nothing(f: &Fixture) {
    let store = &f.store;
    let data = sample(1001, 3);
    let hash = ContentHash::of(&data);
    assert_eq!(
        store.put_bytes(Bytes::from(data.clone()), 1000).await,
        Err(MediaError::TooLarge {
            size: 1001,
            max: 1000
        })
    );
    assert_eq!(store.size(&hash).await.unwrap(), None);
    // Exactly at the limit is fine.
    let ok = store
        .put_bytes(Bytes::from(data[..1000].to_vec()), 1000)
        .await;
    assert_eq!(ok.unwrap().size, 1000);
    // [media] max_bytes caps any limit a caller asks for.
    let big = sample(MAX_BYTES as usize + 1, 4);
    assert!(matches!(
        store.put_bytes(Bytes::from(big), u64::MAX).await,
        Err(MediaError::TooLarge { max: MAX_BYTES, .. })
    ));
    // The per-kind limits: the platform's, capped by max_bytes.
    assert_eq!(store.max_bytes(), MAX_BYTES);
    assert_eq!(
        store.inbound_limit(Channel::WhatsApp, MediaKind::Image),
        5 * 1024 * 1024
    );
    assert_eq!(
        store.inbound_limit(Channel::WhatsApp, MediaKind::Document),
        MAX_BYTES
    );
    assert_eq!(
        store.inbound_limit(Channel::Instagram, MediaKind::Image),
        8 * 1024 * 1024
    );
    // A stream stops being read once it passes the limit.
    let endless =
        futures_util::stream::repeat_with(|| Ok::<_, MediaError>(Bytes::from(vec![7u8; 4096])));
    assert!(matches!(
        store.put_stream(endless, 100_000).await,
        Err(PutError::Store(MediaError::TooLarge { max: 100_000, .. }))
    ));
    spool_is_empty(f);
}

async fn not_found(f: &Fixture) {
    let store = &f.store;
    let missing = ContentHash::of(b"never stored");
    assert!(matches!(
        store.get(&missing).await,
        Err(MediaError::NotFound(h)) if h == missing.to_string()
    ));
    assert!(matches!(
        store.get_bytes(&missing).await,
        Err(MediaError::NotFound(_))
    ));
    assert_eq!(store.size(&missing).await.unwrap(), None);
    assert!(!store.delete(&missing).await.unwrap());
}

async fn failed_source_keeps_nothing(f: &Fixture) {
    let store = &f.store;
    let good = sample(5000, 5);
    let chunks = vec![
        Ok(Bytes::from(good[..2500].to_vec())),
        Err("connection reset"),
        Ok(Bytes::from(good[2500..].to_vec())),
    ];
    let result = store
        .put_stream(futures_util::stream::iter(chunks), u64::MAX)
        .await;
    assert!(matches!(result, Err(PutError::Source("connection reset"))));
    assert_eq!(store.size(&ContentHash::of(&good)).await.unwrap(), None);
    assert_eq!(
        store.size(&ContentHash::of(&good[..2500])).await.unwrap(),
        None
    );
    spool_is_empty(f);
}

async fn large_files_stream_through(f: &Fixture) {
    // Larger than one S3 part (8 MiB): a multipart upload there, a plain rename
    // on fs; put and read back in 64 KiB pieces.
    let store = &f.store;
    let data = Arc::new(sample(9 * 1024 * 1024 + 3, 6));
    let source = {
        let data = data.clone();
        futures_util::stream::iter((0..data.len()).step_by(65_536).map(move |start| {
            let end = (start + 65_536).min(data.len());
            Ok::<_, MediaError>(Bytes::copy_from_slice(&data[start..end]))
        }))
    };
    let object = store.put_stream(source, u64::MAX).await.unwrap();
    assert_eq!(object.size, data.len() as u64);
    assert_eq!(object.hash, ContentHash::of(&data));
    let back = store.get_bytes(&object.hash).await.unwrap();
    assert!(back == *data, "the bytes read back differ");
    spool_is_empty(f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_ping_fails_for_a_missing_bucket_or_server() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = server.media_config("exists");
    config.bucket = "does-not-exist".into();
    let store = MediaStore::open(&config, dir.path()).await.unwrap();
    assert!(matches!(
        store.ping().await,
        Err(MediaError::Unavailable(_))
    ));
    assert!(matches!(
        store.put_bytes(Bytes::from_static(b"x"), 10).await,
        Err(MediaError::Unavailable(_))
    ));
    let endpoint = server.endpoint();
    drop(server);
    config.bucket = "exists".into();
    config.endpoint = endpoint;
    let store = MediaStore::open(&config, dir.path()).await.unwrap();
    assert!(matches!(
        store.ping().await,
        Err(MediaError::Unavailable(_))
    ));
}

#[tokio::test]
async fn fs_lives_under_the_data_dir_by_default_and_sweeps_old_spools() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("media/.spool");
    std::fs::create_dir_all(&spool).unwrap();
    let stale = std::fs::File::create(spool.join("crashed.part")).unwrap();
    stale
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400))
        .unwrap();
    drop(stale);
    let store = MediaStore::open(&MediaConfig::default(), dir.path())
        .await
        .unwrap();
    assert_eq!(store.backend_name(), "fs");
    assert!(!spool.join("crashed.part").exists());
    let object = store
        .put_bytes(Bytes::from_static(b"nota servis"), 100)
        .await
        .unwrap();
    let hex = object.hash.to_string();
    let path = dir.path().join("media/sha256").join(&hex[..2]).join(&hex);
    assert_eq!(std::fs::read(path).unwrap(), b"nota servis");
    // An explicit directory wins.
    let other = tempfile::tempdir().unwrap();
    let config = MediaConfig {
        backend: MediaBackendKind::Fs,
        dir: other.path().join("files"),
        ..MediaConfig::default()
    };
    let store = MediaStore::open(&config, dir.path()).await.unwrap();
    store.put_bytes(Bytes::from_static(b"x"), 10).await.unwrap();
    assert!(other.path().join("files/sha256").is_dir());
}
