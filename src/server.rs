//! `balas serve`: the HTTP routes, the background workers, and graceful shutdown.
//!
//! One process runs everything: Meta's webhooks, the agent API and console, and
//! the workers that drain the inbound, outbox, timer, survey, broadcast and
//! media queues. Any
//! number of such processes may share one Redis. On SIGTERM/SIGINT the server
//! stops accepting, finishes in-flight requests, lets each worker finish the jobs
//! it is running and hands back the ones it claimed but had not started, and
//! exits; nothing acknowledged is lost.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use std::sync::Arc;

use crate::app::App;
use crate::attachments::MediaHandler;
use crate::broadcast::BroadcastHandler;
use crate::engine::worker::{InboundHandler, TimerHandler};
use crate::http::json_error;
use crate::jobs::{Handler, Settings, Worker};
use crate::store::{Store, queues};
use crate::survey::SurveyHandler;

/// All routes.
pub fn router(app: App) -> Router {
    let max_body = app.config().server.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .route(
            "/webhooks/whatsapp",
            get(crate::webhook::verify_whatsapp).post(crate::webhook::receive_whatsapp),
        )
        .route(
            "/webhooks/instagram",
            get(crate::webhook::verify_instagram).post(crate::webhook::receive_instagram),
        )
        .merge(crate::api::router())
        .merge(crate::console::router())
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that HTTP method",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(count_requests))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }))
        .with_state(app)
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(app): State<App>) -> Response {
    let backend = app.store().backend();
    match tokio::time::timeout(Duration::from_secs(2), backend.ping()).await {
        Ok(Ok(())) => axum::Json(serde_json::json!({"status": "ready", "store": backend.name()}))
            .into_response(),
        Ok(Err(e)) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
        Err(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store did not answer within 2 s",
        ),
    }
}

async fn metrics_page(State(app): State<App>) -> Response {
    let store = app.store();
    for queue in queues::ALL {
        if let Ok(c) = store.job_counts(queue).await {
            metrics::gauge!("balas_jobs_pending", "queue" => queue).set(c.pending as f64);
            metrics::gauge!("balas_jobs_leased", "queue" => queue).set(c.leased as f64);
            metrics::gauge!("balas_jobs_dead", "queue" => queue).set(c.dead as f64);
        }
    }
    if let Ok(names) = store.known_queues().await {
        for name in names {
            if let Ok(n) = store.backend().index_len(&format!("waiting:{name}")).await {
                metrics::gauge!("balas_agent_queue_length", "queue" => name).set(n as f64);
            }
        }
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
        .into_response()
}

async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let response = next.run(req).await;
    metrics::counter!(
        "balas_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

/// Starts one [`Worker`] per job queue, each with its handler.
fn spawn_workers(app: &App, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let cfg = &app.config().workers;
    let settings =
        |concurrency: usize| Settings::new(concurrency, cfg.lease.get(), cfg.poll_interval.get());
    let store = app.store().clone();
    fn spawn<H: Handler>(
        handler: H,
        store: &Store,
        settings: Settings,
        shutdown: &watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(Worker::new(Arc::new(handler), store.clone(), settings).run(shutdown.clone()))
    }
    vec![
        spawn(
            InboundHandler::new(app.engine().clone()),
            &store,
            settings(cfg.inbound_concurrency),
            shutdown,
        ),
        spawn(
            TimerHandler::new(app.engine().clone()),
            &store,
            settings(4),
            shutdown,
        ),
        spawn(
            SurveyHandler::new(app.engine().clone()),
            &store,
            settings(4),
            shutdown,
        ),
        spawn(
            app.outbox().clone(),
            &store,
            settings(cfg.outbox_concurrency),
            shutdown,
        ),
        spawn(
            BroadcastHandler::new(app.broadcasts().clone()),
            &store,
            settings(2),
            shutdown,
        ),
        spawn(
            MediaHandler::new(app.files().clone()),
            &store,
            settings(cfg.media_concurrency),
            shutdown,
        ),
    ]
}

/// A running server and its workers.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    workers: Vec<JoinHandle<()>>,
    reloader: JoinHandle<()>,
}

/// Starts the HTTP server and all workers on `listener`.
pub fn start(app: App, listener: TcpListener) -> std::io::Result<Running> {
    // Install the metrics recorder before any request or worker records
    // anything; until then the `metrics` macros write to a no-op recorder.
    let _ = crate::telemetry::metrics_handle();
    let addr = listener.local_addr()?;
    let (shutdown, rx) = watch::channel(false);
    let mut workers = Vec::new();
    workers.extend(spawn_workers(&app, &rx));
    let files = app.files().clone();
    tokio::spawn(async move {
        if let Err(e) = files.schedule_retention().await {
            tracing::warn!(error = %e, "could not schedule the media retention sweep; it is scheduled at the next start");
        }
    });
    // The reloader holds no work in progress; it is simply stopped on shutdown.
    let reloader = crate::intents::spawn_reloader(
        app.rules().clone(),
        app.config().intents.reload_every.get(),
    );
    let mut http_rx = rx;
    let router = router(app);
    let http = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service())
            .with_graceful_shutdown(async move {
                let _ = http_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(Running {
        addr,
        shutdown,
        http,
        workers,
        reloader,
    })
}

impl Running {
    /// Stops accepting, lets workers finish their current job, and waits (up to
    /// 30 s) for everything to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.reloader.abort();
        let all = async {
            let _ = self.http.await;
            for w in self.workers {
                let _ = w.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), all)
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown took longer than 30 s; exiting anyway (unfinished jobs will be retried)"
            );
        }
    }
}

/// Runs until `signal` completes, then shuts down gracefully.
pub async fn serve(
    app: App,
    listener: TcpListener,
    signal: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let running = start(app, listener)?;
    tracing::info!(addr = %running.addr, "balas is listening");
    signal.await;
    tracing::info!("shutting down: finishing in-flight work");
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
