//! The S3 backend: objects in any S3-compatible bucket (AWS S3, MinIO, Ceph,
//! Garage …), shared by every process, through the `object_store` crate.
//!
//! Small files go up in one `PUT`; larger ones as a multipart upload in
//! [`PART_SIZE`] parts read from the spool file, so memory stays bounded. Every
//! upload carries an `x-amz-checksum-sha256`, so the server itself refuses bytes
//! that changed on the way. Credentials come from `[media]` or, when unset, the
//! standard AWS environment; they are never logged.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use super::MediaError;
use super::backend::{MediaBackend, ObjectBody};
use crate::config::MediaConfig;

/// Files up to this size are uploaded with one `PUT`; larger ones in parts of
/// this size (S3's minimum part is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts uploaded at once.
const PART_CONCURRENCY: usize = 2;

/// Retries of one S3 request inside `object_store` (5xx, connection errors).
/// Few and short: the caller (a job with its own backoff, an HTTP request, a
/// readiness probe) should hear of an outage in seconds, not minutes.
const MAX_RETRIES: usize = 3;
/// Time after which a request is not retried any more.
const RETRY_TIMEOUT: Duration = Duration::from_secs(10);

fn unavailable(what: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Unavailable(format!("s3 {what}: {e}"))
}

/// Objects in an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Backend {
    store: Arc<AmazonS3>,
    prefix: String,
}

impl S3Backend {
    /// Connects to the bucket described by `config` (nothing is sent yet; see
    /// [`MediaBackend::ping`]).
    pub fn open(config: &MediaConfig) -> Result<S3Backend, MediaError> {
        // The AWS environment supplies credentials (keys, session token, web
        // identity, instance metadata) when the config has none; the config's
        // own values win over it.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(config.bucket.trim())
            .with_region(config.region.trim())
            .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: MAX_RETRIES,
                retry_timeout: RETRY_TIMEOUT,
            });
        let endpoint = config.endpoint.trim().trim_end_matches('/');
        if !endpoint.is_empty() {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(key), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder
                .with_access_key_id(key.expose())
                .with_secret_access_key(secret.expose());
        }
        let store = builder
            .build()
            .map_err(|e| unavailable("configuration", e))?;
        Ok(S3Backend {
            store: Arc::new(store),
            prefix: config.prefix.trim().trim_matches('/').to_string(),
        })
    }

    fn path_of(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    async fn put_multipart(&self, path: &ObjectPath, file: &Path) -> Result<(), MediaError> {
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| unavailable("starting an upload", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut input = tokio::fs::File::open(file)
            .await
            .map_err(|e| unavailable("reading the spool", e))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match input.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(unavailable("reading the spool", e));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                let _ = writer.abort().await;
                return Err(unavailable("uploading a part", e));
            }
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| unavailable("finishing an upload", e))
    }
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

#[async_trait]
impl MediaBackend for S3Backend {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn ping(&self) -> Result<(), MediaError> {
        // Listing a prefix (one request, whatever is under it) proves the bucket
        // exists and these credentials may read it; a HEAD would answer 404 for
        // a missing bucket just as for a missing object.
        self.store
            .list_with_delimiter(Some(&self.path_of("sha256")))
            .await
            .map(|_| ())
            .map_err(|e| unavailable("ping", e))
    }

    async fn put_file(&self, key: &str, file: &Path, size: u64) -> Result<(), MediaError> {
        if self.size(key).await?.is_some() {
            return Ok(());
        }
        let path = self.path_of(key);
        if size as usize <= PART_SIZE {
            let bytes = tokio::fs::read(file)
                .await
                .map_err(|e| unavailable("reading the spool", e))?;
            self.store
                .put(&path, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| unavailable("put", e))
        } else {
            self.put_multipart(&path, file).await
        }
    }

    async fn get(&self, key: &str) -> Result<ObjectBody, MediaError> {
        let result = match self.store.get(&self.path_of(key)).await {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => return Err(MediaError::NotFound(key.to_string())),
            Err(e) => return Err(unavailable("get", e)),
        };
        let size = result.meta.size;
        let stream = result
            .into_stream()
            .map(|chunk| chunk.map_err(|e| unavailable("reading", e)))
            .boxed();
        Ok(ObjectBody { size, stream })
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, MediaError> {
        match self.store.head(&self.path_of(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(unavailable("head", e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, MediaError> {
        if self.size(key).await?.is_none() {
            return Ok(false);
        }
        match self.store.delete(&self.path_of(key)).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(unavailable("delete", e)),
        }
    }
}
