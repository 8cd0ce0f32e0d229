//! `balas serve`: the HTTP routes, the background workers, and graceful shutdown.
//!
//! One process runs everything: Meta's webhooks, the agent API and console, and
//! the workers that drain the inbound, outbox, timer, survey, broadcast and
//! media queues, and the maintenance queue (retention). Any
//! number of such processes may share one Redis. On SIGTERM/SIGINT the server
//! stops accepting, finishes in-flight requests, lets each worker finish the jobs
//! it is running and hands back the ones it claimed but had not started, and
//! exits; nothing acknowledged is lost.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
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
use crate::privacy::retention::RetentionHandler;
use crate::store::{Store, queues};
use crate::survey::SurveyHandler;

/// All routes.
pub fn router(app: App) -> Router {
    let max_body = app.config().server.max_body_bytes;
    let mut routes = Router::new();
    // With a separate metrics address, the public listener has no /metrics at all.
    if app.config().server.metrics_listen.is_none() {
        routes = routes.route("/metrics", get(metrics_public));
    }
    routes
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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
    let store = app.store();
    match tokio::time::timeout(Duration::from_secs(2), store.ping()).await {
        Ok(Ok(())) => {
            axum::Json(serde_json::json!({"status": "ready", "store": store.backend_name()}))
                .into_response()
        }
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

/// The routes of `server.metrics_listen`: `/metrics` only.
pub fn metrics_router(app: App) -> Router {
    Router::new()
        .route("/metrics", get(metrics_private))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(app)
}

/// Whether the request carries `server.metrics_token` as its bearer token.
fn metrics_token_ok(app: &App, headers: &HeaderMap) -> bool {
    use subtle::ConstantTimeEq;
    let Some(expected) = &app.config().server.metrics_token else {
        return false;
    };
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| bool::from(t.trim().as_bytes().ct_eq(expected.expose().as_bytes())))
}

/// `/metrics` on the public listener: only with `server.metrics_token`.
async fn metrics_public(State(app): State<App>, headers: HeaderMap) -> Response {
    if app.config().server.metrics_token.is_none() {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "metrics are not public: set server.metrics_token (and send it as a bearer token) or server.metrics_listen (a private address)",
        );
    }
    if !metrics_token_ok(&app, &headers) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send server.metrics_token as `Authorization: Bearer <token>`",
        );
    }
    metrics_page(&app).await
}

/// `/metrics` on `server.metrics_listen`: open, unless a token is configured.
async fn metrics_private(State(app): State<App>, headers: HeaderMap) -> Response {
    if app.config().server.metrics_token.is_some() && !metrics_token_ok(&app, &headers) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send server.metrics_token as `Authorization: Bearer <token>`",
        );
    }
    metrics_page(&app).await
}

/// Agent queues reported by name at most (the rest are left out of the gauges).
const METRICS_MAX_QUEUES: usize = 100;
/// Store-derived gauges are refreshed at most this often per process, however
/// often (or by how many scrapers) `/metrics` is read.
const METRICS_REFRESH: Duration = Duration::from_secs(1);

async fn metrics_page(app: &App) -> Response {
    static LAST: tokio::sync::Mutex<Option<tokio::time::Instant>> =
        tokio::sync::Mutex::const_new(None);
    {
        // One refresh at a time; concurrent scrapes wait and then reuse it.
        let mut last = LAST.lock().await;
        if last.is_none_or(|t| t.elapsed() >= METRICS_REFRESH) {
            refresh_store_gauges(app).await;
            *last = Some(tokio::time::Instant::now());
        }
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
        .into_response()
}

async fn refresh_store_gauges(app: &App) {
    let store = app.store();
    for queue in queues::ALL {
        if let Ok(c) = store.job_counts(queue).await {
            metrics::gauge!("balas_jobs_pending", "queue" => queue).set(c.pending as f64);
            metrics::gauge!("balas_jobs_leased", "queue" => queue).set(c.leased as f64);
            metrics::gauge!("balas_jobs_dead", "queue" => queue).set(c.dead as f64);
        }
    }
    if let Ok(names) = store.known_queues().await {
        for name in names.into_iter().take(METRICS_MAX_QUEUES) {
            if let Ok(n) = store.waiting_count(&name).await {
                metrics::gauge!("balas_agent_queue_length", "queue" => name).set(n as f64);
            }
        }
    }
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
    let deferred_durability = app.config().store.deferred_durability;
    let settings = |concurrency: usize| Settings {
        deferred_durability,
        ..Settings::new(concurrency, cfg.lease.get(), cfg.poll_interval.get())
    };
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
            RetentionHandler::new(app.files().clone(), app.config().retention.clone()),
            &store,
            settings(1),
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
    /// The bound `server.metrics_listen` address, when configured.
    pub metrics_addr: Option<SocketAddr>,
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
    let store = app.store().clone();
    tokio::spawn(async move {
        if let Err(e) = RetentionHandler::schedule(&store).await {
            tracing::warn!(error = %e, "could not schedule the retention sweep; it is scheduled at the next start");
        }
    });
    // The reloader holds no work in progress; it is simply stopped on shutdown.
    let reloader = crate::intents::spawn_reloader(
        app.rules().clone(),
        app.config().intents.reload_every.get(),
    );
    let mut metrics_addr = None;
    if let Some(listen) = &app.config().server.metrics_listen {
        let std_listener = std::net::TcpListener::bind(listen.as_str()).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on server.metrics_listen {listen}: {e}"),
            )
        })?;
        std_listener.set_nonblocking(true)?;
        let metrics_listener = TcpListener::from_std(std_listener)?;
        metrics_addr = Some(metrics_listener.local_addr()?);
        let (metrics, mut stop) = (metrics_router(app.clone()), rx.clone());
        // Like the reloader, it holds no work: it stops with the process.
        workers.push(tokio::spawn(async move {
            let served = axum::serve(metrics_listener, metrics.into_make_service())
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        }));
    }
    let mut http_rx = rx;
    let router = router(app);
    let http = tokio::spawn(async move {
        // The peer address feeds sign-in rate limits and the audit log.
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_rx.wait_for(|stop| *stop).await;
        })
        .await
    });
    Ok(Running {
        addr,
        metrics_addr,
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
