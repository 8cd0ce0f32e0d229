//! The primitives a media backend provides: put a finished file under a key,
//! read it back as a stream, ask its size, delete it.
//!
//! Keys are content addresses chosen by [`crate::media::MediaStore`]; a backend
//! never decides what to call an object, never hashes and never checks limits,
//! so the directory and the S3 backend cannot drift apart in what they accept.
//! Both run the same conformance suite (`tests/media_store.rs`).

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

use super::MediaError;

/// An object being read: its size and its bytes.
pub struct ObjectBody {
    /// Size in bytes.
    pub size: u64,
    /// The bytes, in order.
    pub stream: BoxStream<'static, Result<Bytes, MediaError>>,
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Where media objects live.
#[async_trait]
pub trait MediaBackend: Send + Sync + 'static {
    /// A short name for logs and `/readyz` (`fs` or `s3`).
    fn name(&self) -> &'static str;

    /// Checks that the backend answers (the directory is writable, the bucket
    /// reachable with these credentials).
    async fn ping(&self) -> Result<(), MediaError>;

    /// Stores the complete, synced file at `file` (`size` bytes) under `key`.
    /// The file belongs to the backend afterwards (it may be moved or removed).
    /// An existing object under `key` has the same content (keys are content
    /// addresses), so storing again is harmless. The object is visible whole or
    /// not at all.
    async fn put_file(&self, key: &str, file: &Path, size: u64) -> Result<(), MediaError>;

    /// Opens an object for reading; [`MediaError::NotFound`] when absent.
    async fn get(&self, key: &str) -> Result<ObjectBody, MediaError>;

    /// The size of an object, `None` when absent.
    async fn size(&self, key: &str) -> Result<Option<u64>, MediaError>;

    /// Deletes an object; false when it was absent.
    async fn delete(&self, key: &str) -> Result<bool, MediaError>;
}
