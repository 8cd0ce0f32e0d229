//! All state, through one API.
//!
//! [`Backend`] is the small set of atomic primitives a backend provides
//! ([`redis`] for several processes sharing one Redis, [`embedded`] for a single
//! process with a redb file). The domain operations the rest of Balas calls are
//! written once on top of it. [`open_backend`] picks the backend from the config.

pub mod backend;
pub mod embedded;
pub mod redis;

use std::path::Path;
use std::sync::Arc;

pub use backend::{Backend, Job, JobCounts, NewJob, StoreError, StoreResult, Versioned};

/// Opens the configured backend: Redis when `redis_url` is given (keys under
/// `key_prefix`), otherwise the embedded store in `data_dir`.
pub async fn open_backend(
    redis_url: Option<&str>,
    data_dir: &Path,
    key_prefix: &str,
) -> StoreResult<Arc<dyn Backend>> {
    match redis_url {
        Some(url) => Ok(Arc::new(
            redis::RedisBackend::connect(url, key_prefix).await?,
        )),
        None => {
            let dir = data_dir.to_owned();
            let backend =
                tokio::task::spawn_blocking(move || embedded::EmbeddedBackend::open(&dir))
                    .await
                    .map_err(|e| {
                        StoreError::Unavailable(format!("opening the embedded store: {e}"))
                    })??;
            Ok(Arc::new(backend))
        }
    }
}
