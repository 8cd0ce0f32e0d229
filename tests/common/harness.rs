//! A whole Balas (HTTP server + workers) in the test process, on a real store,
//! with a manual clock and a Graph API mock; plus helpers to play the customer
//! (signed webhooks) and the agents (API calls with tokens).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use balas::api::auth::token_hash;
use balas::app::App;
use balas::channels::signature::sign;
use balas::clock::{Clock, ShiftedClock};
use balas::config::{AgentConfig, Config, Role, Secret};
use balas::server::Running;
use serde_json::{Value, json};

use super::graph_mock::GraphMock;
use super::payloads;
use super::redis_cluster::RedisCluster;
use super::redis_server::RedisServer;

/// Webhook signing secret used by every test server.
pub const APP_SECRET: &str = "test-app-secret";
/// Handshake token.
pub const VERIFY_TOKEN: &str = "verify-me";
/// WhatsApp phone number id of the business.
pub const PHONE_NUMBER_ID: &str = "112233445566778";
/// Instagram account id of the business.
pub const IG_ACCOUNT_ID: &str = "17841400987654321";

/// Agents every test server knows: (id, role, token).
pub const AGENTS: &[(&str, Role, &str)] = &[
    ("siti", Role::Agent, "token-siti"),
    ("budi", Role::Agent, "token-budi"),
    ("sari", Role::Supervisor, "token-sari"),
    ("maya", Role::Marketer, "token-maya"),
    ("root", Role::Admin, "token-root"),
];

/// Bearer token of `/metrics` on every test server.
pub const METRICS_TOKEN: &str = "test-metrics-token";

/// How a test request proves who it is.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// No credentials.
    Anonymous,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// The session cookie, with the CSRF header when given.
    Cookie {
        /// The session id (cookie value).
        session: &'a str,
        /// The CSRF token to send in `X-CSRF-Token`.
        csrf: Option<&'a str>,
    },
}

/// A console sign-in: status, body, the session cookie's value and the whole
/// `Set-Cookie` header.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
    /// The session id from `Set-Cookie`, when one was set.
    pub session: Option<String>,
    /// The raw `Set-Cookie` header.
    pub set_cookie: Option<String>,
    /// `Retry-After`, when rate limited.
    pub retry_after: Option<String>,
}

impl SignIn {
    /// The CSRF token from the body.
    pub fn csrf(&self) -> &str {
        self.body["csrf_token"]
            .as_str()
            .expect("csrf_token in the body")
    }

    /// Cookie credentials with the CSRF header.
    pub fn auth(&self) -> Auth<'_> {
        Auth::Cookie {
            session: self.session.as_deref().expect("a session cookie"),
            csrf: Some(self.csrf()),
        }
    }
}

/// Token of an agent by id.
pub fn token(id: &str) -> &'static str {
    AGENTS
        .iter()
        .find(|(a, _, _)| *a == id)
        .map(|(_, _, t)| *t)
        .expect("known agent")
}

/// Which store a test runs on.
#[derive(Clone)]
pub enum StoreKind {
    /// The embedded redb store in a temp dir.
    Embedded,
    /// A real redis-server started for the test (shared by the processes of one test).
    Redis(Arc<RedisServer>),
    /// A real Redis Cluster (3 masters, 3 replicas) and the key prefix of this
    /// test's store on it (the processes of one test share the prefix).
    Cluster(Arc<RedisCluster>, String),
}

impl StoreKind {
    /// A fresh Redis server.
    pub fn redis() -> StoreKind {
        StoreKind::Redis(Arc::new(RedisServer::start()))
    }

    /// A fresh store on the test binary's shared Redis Cluster.
    pub fn cluster() -> StoreKind {
        StoreKind::Cluster(RedisCluster::shared(), unique_prefix())
    }

    /// Whether several processes can share this store.
    pub fn shared(&self) -> bool {
        !matches!(self, StoreKind::Embedded)
    }
}

/// A key prefix no other test of this run uses.
pub fn unique_prefix() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("t{}-{n}", std::process::id())
}

/// Monday 2026-11-23 10:00 WIB: inside the default business hours.
pub const MONDAY_10_WIB_MS: i64 = 1_795_402_800_000;

/// A running Balas under test.
pub struct Harness {
    /// The application (store, rules, outbox …).
    pub app: App,
    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub base: String,
    /// The Graph API mock the outbox sends to.
    pub mock: Arc<GraphMock>,
    /// The clock every time-based decision uses.
    pub clock: Arc<ShiftedClock>,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The store the test runs on.
    pub store_kind: StoreKind,
    /// The embedded store's directory (kept alive for restarts).
    pub dir: Arc<tempfile::TempDir>,
    running: Option<Running>,
    config: Config,
}

/// The test configuration: both channels enabled and signed, sending to `mock`,
/// fast polling, the repository's intent rules, the test agents.
pub fn test_config(store: &StoreKind, dir: &std::path::Path, mock_base: &str) -> Config {
    let mut c = balas::config::load_from_str("", "test", &[]).expect("defaults load");
    c.server.listen = "127.0.0.1:0".into();
    // The media store's files live under data_dir on either store.
    c.store.data_dir = dir.join("data");
    match store {
        StoreKind::Embedded => {}
        StoreKind::Redis(r) => {
            c.store.redis_url = Some(Secret::new(r.url()));
            c.store.key_prefix = "t".into();
        }
        StoreKind::Cluster(cluster, prefix) => {
            c.store.redis_cluster_nodes = cluster.urls().into_iter().map(Secret::new).collect();
            c.store.key_prefix = prefix.clone();
        }
    }
    c.intents.path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    for (ch_enabled, verify, secret, token, api_base) in [
        (
            &mut c.whatsapp.enabled,
            &mut c.whatsapp.verify_token,
            &mut c.whatsapp.app_secret,
            &mut c.whatsapp.access_token,
            &mut c.whatsapp.api_base,
        ),
        (
            &mut c.instagram.enabled,
            &mut c.instagram.verify_token,
            &mut c.instagram.app_secret,
            &mut c.instagram.access_token,
            &mut c.instagram.api_base,
        ),
    ] {
        *ch_enabled = true;
        *verify = Some(Secret::new(VERIFY_TOKEN));
        *secret = Some(Secret::new(APP_SECRET));
        *token = Some(Secret::new("graph-token"));
        *api_base = mock_base.to_string();
    }
    c.whatsapp.phone_number_id = PHONE_NUMBER_ID.into();
    c.instagram.account_id = IG_ACCOUNT_ID.into();
    c.server.metrics_token = Some(Secret::new(METRICS_TOKEN));
    c.workers.poll_interval = balas::config::HumanDuration::millis(20);
    c.workers.lease = balas::config::HumanDuration::secs(5);
    c.agents = AGENTS
        .iter()
        .map(|(id, role, tok)| AgentConfig {
            id: id.to_string(),
            name: id.to_uppercase(),
            role: *role,
            queues: Vec::new(),
            max_concurrent: 5,
            token_sha256: token_hash(tok),
        })
        .collect();
    c
}

impl Harness {
    /// Starts a server on `store` with default test settings.
    pub async fn start(store: StoreKind) -> Harness {
        Self::start_with(store, |_| {}).await
    }

    /// Starts a server, letting the test adjust the config first.
    pub async fn start_with(store: StoreKind, tweak: impl FnOnce(&mut Config)) -> Harness {
        let mock = Arc::new(GraphMock::start().await);
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let clock = Arc::new(ShiftedClock::at_ms(MONDAY_10_WIB_MS));
        let mut config = test_config(&store, dir.path(), mock.base_url());
        tweak(&mut config);
        Self::launch(store, dir, mock, clock, config).await
    }

    async fn launch(
        store_kind: StoreKind,
        dir: Arc<tempfile::TempDir>,
        mock: Arc<GraphMock>,
        clock: Arc<ShiftedClock>,
        config: Config,
    ) -> Harness {
        // Bound first, so the server knows its own address: Instagram fetches
        // the files agents send from links under `server.public_url`.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let mut effective = config.clone();
        if effective.server.public_url.is_empty() {
            effective.server.public_url = base.clone();
        }
        // After a restart the previous process's tasks may still be letting go
        // of the embedded database for a moment: retry briefly.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let app = loop {
            match App::open(effective.clone(), clock.clone()).await {
                Ok(app) => break app,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "app not opened yet; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("app opens: {e}"),
            }
        };
        let running = balas::server::start(app.clone(), listener).expect("server starts");
        Harness {
            app,
            base,
            mock,
            clock,
            http: reqwest::Client::new(),
            store_kind,
            dir,
            running: Some(running),
            config,
        }
    }

    /// Another process on the same Redis, clock and Graph mock (Redis or a
    /// Redis Cluster).
    pub async fn second_process(&self) -> Harness {
        assert!(self.store_kind.shared(), "two processes need Redis");
        Self::launch(
            self.store_kind.clone(),
            self.dir.clone(),
            self.mock.clone(),
            self.clock.clone(),
            self.config.clone(),
        )
        .await
    }

    /// Stops gracefully and starts again on the same store (a restart).
    pub async fn restart(mut self) -> Harness {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        let (store_kind, dir, mock, clock, config) = (
            self.store_kind.clone(),
            self.dir.clone(),
            self.mock.clone(),
            self.clock.clone(),
            self.config.clone(),
        );
        drop(self);
        Self::launch(store_kind, dir, mock, clock, config).await
    }

    /// Stops the server and its workers.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    /// POSTs a signed webhook body (exact bytes) to `/webhooks/{channel}`.
    pub async fn post_signed(&self, channel: &str, body: &[u8]) -> reqwest::Response {
        self.http
            .post(format!("{}/webhooks/{channel}", self.base))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sign(APP_SECRET.as_bytes(), body))
            .body(body.to_vec())
            .send()
            .await
            .expect("webhook request")
    }

    /// A WhatsApp customer sends text; returns the message id.
    pub async fn customer_says(&self, wa_id: &str, name: &str, text: &str) -> String {
        let id = payloads::new_wamid();
        let body = payloads::wa_text(wa_id, name, &id, text, self.clock.now_ms() / 1000);
        let resp = self
            .post_signed("whatsapp", body.to_string().as_bytes())
            .await;
        assert_eq!(resp.status(), 200, "webhook accepted");
        id
    }

    /// Calls the API as `agent` (an id from [`AGENTS`]); returns status and JSON
    /// (Null for empty bodies).
    pub async fn api(
        &self,
        agent: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token(agent));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("api request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Calls the API with any credentials; returns status, JSON (Null for an
    /// empty body) and the response headers.
    pub async fn call(
        &self,
        auth: Auth<'_>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        match auth {
            Auth::Anonymous => {}
            Auth::Bearer(t) => req = req.bearer_auth(t),
            Auth::Cookie { session, csrf } => {
                req = req.header("cookie", format!("balas_session={session}"));
                if let Some(c) = csrf {
                    req = req.header("x-csrf-token", c);
                }
            }
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("api request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        )
    }

    /// Signs in through `POST /api/v1/session`, as the console does.
    pub async fn sign_in(&self, username: &str, password: &str) -> SignIn {
        let (status, body, headers) = self
            .call(
                Auth::Anonymous,
                reqwest::Method::POST,
                "/api/v1/session",
                Some(json!({ "username": username, "password": password })),
            )
            .await;
        let set_cookie = headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let session = set_cookie
            .as_deref()
            .and_then(|c| c.split(';').next())
            .and_then(|kv| kv.strip_prefix("balas_session="))
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        SignIn {
            status,
            body,
            session,
            set_cookie,
            retry_after: headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }

    /// `agent` reports `status` (`online`, `away`, `offline`) as their
    /// console does.
    pub async fn presence(&self, agent: &str, status: &str) {
        let (code, v) = self
            .api(
                agent,
                reqwest::Method::PUT,
                "/api/v1/me/presence",
                Some(json!({ "status": status })),
            )
            .await;
        assert_eq!(code, 200, "presence of {agent}: {v}");
    }

    /// The `server.metrics_listen` address, when configured.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.running.as_ref().and_then(|r| r.metrics_addr)
    }

    /// Texts (or list/button bodies) the mock received for `to`, in order.
    pub fn texts_to(&self, to: &str) -> Vec<String> {
        self.mock
            .requests()
            .into_iter()
            .filter(|r| r.body["to"] == json!(to) || r.body["recipient"]["id"] == json!(to))
            .filter_map(|r| payloads::body_text(&r.body))
            .collect()
    }

    /// Waits (polling, bounded) until `check` returns true.
    pub async fn until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    /// Waits until every inbound event is handled and every message sent (or
    /// settled otherwise): the inbound and outbox queues are empty.
    pub async fn drained(&self) {
        let store = self.app.store();
        self.until("inbound and outbox queues drained", || async {
            let i = store
                .job_counts(balas::store::queues::INBOUND)
                .await
                .expect("store");
            let o = store
                .job_counts(balas::store::queues::OUTBOX)
                .await
                .expect("store");
            i.pending + i.leased + o.pending + o.leased == 0
        })
        .await;
    }

    /// Steps until the workers are idle: no job is running in any queue and
    /// none is due within the next 200 ms (work deferred for a moment, such
    /// as a contact busy in another worker, counts as pending; timers due
    /// later do not). Tests that
    /// assert that something did *not* happen wait for this instead of
    /// sleeping.
    pub async fn idle(&self) {
        // A job hands work to another queue while it holds its lease, so a
        // pass reads every queue's leases, then every queue's due times, then
        // the leases again; and two passes in a row must agree. One pass read
        // queue by queue can miss a job that finished between two reads after
        // handing over work to a queue already read.
        let quiet_passes = std::cell::Cell::new(0);
        self.until("the workers are idle", || async {
            let passes = if self.quiet_pass().await {
                quiet_passes.get() + 1
            } else {
                0
            };
            quiet_passes.set(passes);
            passes >= 2
        })
        .await;
    }

    async fn quiet_pass(&self) -> bool {
        let store = self.app.store();
        let nothing_leased = || async {
            for q in balas::store::queues::ALL {
                if store.job_counts(q).await.expect("store").leased > 0 {
                    return false;
                }
            }
            true
        };
        if !nothing_leased().await {
            return false;
        }
        let horizon = self.clock.now_ms() + 200;
        for q in balas::store::queues::ALL {
            let next = store.next_due(q).await.expect("store");
            if next.is_some_and(|due| due <= horizon) {
                return false;
            }
        }
        nothing_leased().await
    }

    /// Waits until the mock has received at least `n` texts for `to`; returns them.
    pub async fn wait_texts_to(&self, to: &str, n: usize) -> Vec<String> {
        let what = format!("{n} messages to {to}");
        self.until(&what, || async { self.texts_to(to).len() >= n })
            .await;
        self.texts_to(to)
    }

    /// The contact's current case id.
    pub async fn current_case(&self, wa_id: &str) -> Option<String> {
        self.app
            .store()
            .contact(balas::channels::Channel::WhatsApp, wa_id)
            .await
            .expect("store")
            .and_then(|c| c.current_case)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            // Not awaited: the runtime is going away with the test.
            drop(r);
        }
    }
}
