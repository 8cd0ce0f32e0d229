//! The media store: the bytes of the photos, videos, voice notes and documents
//! customers and agents send.
//!
//! [`MediaBackend`] is the small set of primitives a backend provides ([`fs`]: a
//! directory on one machine, the default under `store.data_dir`; [`s3`]: any
//! S3-compatible bucket, shared by several processes). [`MediaStore`] adds what
//! every backend must do alike, written once: objects are **content-addressed**
//! (the key is the SHA-256 of the bytes, so the same photo sent twice is kept
//! once and a stored object can never change), incoming bytes are spooled to a
//! local file while being hashed and counted, and nothing larger than the limit
//! is kept (the platforms' limit per kind of file, capped by `[media]
//! max_bytes`).
//!
//! [`sniff`] tells what a file is from its first bytes (Instagram's CDN does not
//! always say).
//!
//! What a file *is* (its kind, MIME type, caption, conversation, download status)
//! is not here: that is the attachment record in the state store
//! (`crate::store::Attachment`), which points at an object by its hash.

pub mod backend;
pub mod fs;
pub mod s3;
pub mod sniff;
pub mod spool;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

pub use backend::{MediaBackend, ObjectBody};

use crate::channels::media::inbound_max_bytes;
use crate::channels::{Channel, MediaKind};
use crate::config::{MediaBackendKind, MediaConfig};

/// Errors of the media store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// No object with that hash.
    #[error("no stored media with hash {0}")]
    NotFound(String),
    /// More bytes than allowed; nothing was kept.
    #[error("the file is larger than {max} bytes (at least {size} bytes)")]
    TooLarge {
        /// Bytes seen when the limit was passed.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Not a SHA-256 in hex.
    #[error("{0:?} is not a media hash (64 hex digits)")]
    InvalidHash(String),
    /// The backend failed (disk, network, credentials); worth retrying later.
    #[error("media store unavailable: {0}")]
    Unavailable(String),
}

/// A content address: the SHA-256 of an object's bytes, written as 64 lowercase
/// hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// Wraps a digest.
    pub fn from_bytes(bytes: [u8; 32]) -> ContentHash {
        ContentHash(bytes)
    }

    /// The hash of `data`.
    pub fn of(data: &[u8]) -> ContentHash {
        use sha2::{Digest, Sha256};
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(Sha256::digest(data).as_slice());
        ContentHash(bytes)
    }

    /// Parses 64 hex digits (either case).
    pub fn parse(text: &str) -> Result<ContentHash, MediaError> {
        let mut bytes = [0u8; 32];
        if text.len() != 64 || hex::decode_to_slice(text, &mut bytes).is_err() {
            return Err(MediaError::InvalidHash(text.chars().take(80).collect()));
        }
        Ok(ContentHash(bytes))
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The object key: `sha256/{first two hex digits}/{all 64}` (the fan-out keeps
    /// directories small on the `fs` backend).
    pub fn key(&self) -> String {
        let hex = self.to_string();
        format!("sha256/{}/{hex}", &hex[..2])
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ContentHash::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What [`MediaStore::put_stream`] kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// Its content address.
    pub hash: ContentHash,
    /// Its size in bytes.
    pub size: u64,
}

/// Why [`MediaStore::put_stream`] kept nothing.
#[derive(Debug, thiserror::Error)]
pub enum PutError<E> {
    /// The incoming stream failed (e.g. a download error); passed through as is.
    #[error("the source failed: {0}")]
    Source(E),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] MediaError),
}

/// The media store; cheap to clone.
#[derive(Clone)]
pub struct MediaStore {
    backend: Arc<dyn MediaBackend>,
    spool_dir: PathBuf,
    max_bytes: u64,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStore")
            .field("backend", &self.backend.name())
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl MediaStore {
    /// Wraps a backend; incoming files are spooled in `spool_dir` (on the same
    /// file system as an `fs` backend's root) and none may exceed `max_bytes`.
    pub fn new(backend: Arc<dyn MediaBackend>, spool_dir: PathBuf, max_bytes: u64) -> MediaStore {
        MediaStore {
            backend,
            spool_dir,
            max_bytes,
        }
    }

    /// Opens the backend `[media]` describes. `data_dir` is `store.data_dir`: the
    /// `fs` backend's default home (`<data_dir>/media`) and, for `s3`, where
    /// incoming files are spooled (`<data_dir>/media-spool`). Spool files left by
    /// a crash are swept.
    pub async fn open(config: &MediaConfig, data_dir: &Path) -> Result<MediaStore, MediaError> {
        let (backend, spool_dir): (Arc<dyn MediaBackend>, PathBuf) = match config.backend {
            MediaBackendKind::Fs => {
                let root = if config.dir.as_os_str().is_empty() {
                    data_dir.join("media")
                } else {
                    config.dir.clone()
                };
                let fs = fs::FsBackend::open(&root).await?;
                let spool = fs.spool_dir();
                (Arc::new(fs), spool)
            }
            MediaBackendKind::S3 => (
                Arc::new(s3::S3Backend::open(config)?),
                data_dir.join("media-spool"),
            ),
        };
        let swept = spool::sweep(&spool_dir).await;
        if swept > 0 {
            tracing::info!(swept, "removed media spool files left by a crash");
        }
        Ok(MediaStore::new(backend, spool_dir, config.max_bytes))
    }

    /// The backend's name (`fs` or `s3`).
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Checks that the backend answers.
    pub async fn ping(&self) -> Result<(), MediaError> {
        self.backend.ping().await
    }

    /// `[media] max_bytes`: no object is larger.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The most a file of `kind` received on `channel` may have: the platform's
    /// limit (`crate::channels::media::inbound_max_bytes`), capped by `max_bytes`.
    pub fn inbound_limit(&self, channel: Channel, kind: MediaKind) -> u64 {
        inbound_max_bytes(channel, kind).min(self.max_bytes)
    }

    /// Stores the bytes of `stream`, keeping at most `max` bytes (capped by
    /// `max_bytes`). The stream is read to its end and spooled while hashed; only
    /// a stream that ends without an error is stored, and only then is it visible.
    /// Storing the same bytes twice keeps one object.
    pub async fn put_stream<S, E>(&self, stream: S, max: u64) -> Result<StoredObject, PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        self.put_stream_head(stream, max).await.map(|(o, _)| o)
    }

    /// [`MediaStore::put_stream`] that also returns the first
    /// [`sniff::SNIFF_LEN`] bytes, to tell what the file is
    /// ([`sniff::content_type`]).
    pub async fn put_stream_head<S, E>(
        &self,
        stream: S,
        max: u64,
    ) -> Result<(StoredObject, Vec<u8>), PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        let mut stream = std::pin::pin!(stream);
        let mut spool = spool::Spool::create(&self.spool_dir, max.min(self.max_bytes)).await?;
        let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(PutError::Source)?;
            let room = sniff::SNIFF_LEN - head.len();
            head.extend_from_slice(&chunk[..room.min(chunk.len())]);
            spool.write(&chunk).await?;
        }
        let spooled = spool.finish().await?;
        let object = StoredObject {
            hash: spooled.hash,
            size: spooled.size,
        };
        self.backend
            .put_file(&object.hash.key(), spooled.path(), object.size)
            .await?;
        Ok((object, head))
    }

    /// Stores `data` (at most `max` bytes, capped by `max_bytes`).
    pub async fn put_bytes(&self, data: Bytes, max: u64) -> Result<StoredObject, MediaError> {
        let once = futures_util::stream::once(async move { Ok::<_, MediaError>(data) });
        self.put_stream(once, max).await.map_err(|e| match e {
            PutError::Source(e) | PutError::Store(e) => e,
        })
    }

    /// Opens an object for reading.
    pub async fn get(&self, hash: &ContentHash) -> Result<ObjectBody, MediaError> {
        self.backend.get(&hash.key()).await.map_err(|e| match e {
            MediaError::NotFound(_) => MediaError::NotFound(hash.to_string()),
            other => other,
        })
    }

    /// Reads a whole object into memory (small files, tests).
    pub async fn get_bytes(&self, hash: &ContentHash) -> Result<Vec<u8>, MediaError> {
        let mut body = self.get(hash).await?;
        let mut out = Vec::with_capacity(usize::try_from(body.size).unwrap_or(0).min(1 << 24));
        while let Some(chunk) = body.stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// The size of an object, `None` when it is not stored.
    pub async fn size(&self, hash: &ContentHash) -> Result<Option<u64>, MediaError> {
        self.backend.size(&hash.key()).await
    }

    /// Deletes an object (retention); false when it was not stored. Callers make
    /// sure no attachment record still points at it.
    pub async fn delete(&self, hash: &ContentHash) -> Result<bool, MediaError> {
        self.backend.delete(&hash.key()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes() {
        let h = ContentHash::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(h.to_string(), hex);
        assert_eq!(h.key(), format!("sha256/ba/{hex}"));
        assert_eq!(ContentHash::parse(hex).unwrap(), h);
        assert_eq!(ContentHash::parse(&hex.to_uppercase()).unwrap(), h);
        assert!(ContentHash::parse("ba78").is_err());
        assert!(ContentHash::parse(&"g".repeat(64)).is_err());
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{hex}\""));
        assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), h);
        assert!(serde_json::from_str::<ContentHash>("\"../etc\"").is_err());
    }
}
