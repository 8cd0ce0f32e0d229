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

/// Rejects a NaN score (Redis refuses it too) and folds -0.0 into 0.0.
pub(crate) fn check_score(what: &str, score: f64) -> StoreResult<f64> {
    if score.is_nan() {
        return Err(StoreError::Unavailable(format!(
            "invalid argument: {what} is NaN"
        )));
    }
    Ok(if score == 0.0 { 0.0 } else { score })
}

/// GCRA emission interval and burst tolerance, both in ms, for `per_second`
/// events with `burst` at once (0 counts as 1). Both backends compute with
/// these same f64 values, so they answer alike.
pub(crate) fn gcra_params(per_second: f64, burst: u32) -> StoreResult<(f64, f64)> {
    if !(per_second.is_finite() && per_second > 0.0) {
        return Err(StoreError::Unavailable(format!(
            "invalid argument: rate per_second must be > 0, got {per_second}"
        )));
    }
    let interval = 1000.0 / per_second;
    Ok((interval, f64::from(burst.max(1)) * interval))
}
