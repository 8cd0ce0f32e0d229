//! Logs and metrics.
//!
//! Logs go through `tracing` (`RUST_LOG` filters, `server.log_format = "json"`
//! for one JSON object per line). Metrics go through the `metrics` facade into
//! one process-wide Prometheus recorder rendered at `/metrics`. Message bodies
//! and secrets are never logged at info level.

use std::sync::OnceLock;
use std::time::Duration;

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

/// How often the recorder folds the histogram samples recorded since into its
/// summaries. Until it does, each sample is kept: a process nobody scrapes
/// would otherwise grow by every observation (two per store commit).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder, with a thread that keeps its memory
/// bounded whether or not `/metrics` is scraped.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding
            // program); then this handle renders an empty page rather than panicking.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            // A plain thread: the handle may be made before any runtime exists.
            let spawned = std::thread::Builder::new()
                .name("balas-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics upkeep thread not started: histogram samples are folded only when /metrics is scraped");
            }
            handle
        })
        .clone()
}
