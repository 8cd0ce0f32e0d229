//! Logs and metrics.
//!
//! Logs go through `tracing` (`RUST_LOG` filters, `server.log_format = "json"`
//! for one JSON object per line). Metrics go through the `metrics` facade into
//! one process-wide Prometheus recorder rendered at `/metrics`. Message bodies
//! and secrets are never logged at info level.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::LogFormat;

/// Installs the tracing subscriber once; later calls do nothing (tests start
/// several servers in one process).
pub fn init_logging(format: LogFormat) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let _ = match format {
            LogFormat::Json => builder.json().try_init(),
            LogFormat::Text => builder.try_init(),
        };
    });
}

/// The process-wide Prometheus recorder.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding
            // program); then this handle renders an empty page rather than panicking.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
