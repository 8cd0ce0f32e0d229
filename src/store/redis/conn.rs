//! The connection every call of the Redis backend goes through: one node or
//! a Redis Cluster, behind one [`ConnectionLike`] so the backend's methods do
//! not care which.
//!
//! - One node: a [`ConnectionManager`] (one multiplexed connection that
//!   reconnects in the background).
//! - A Cluster: the `redis` crate's cluster client, seeded with
//!   `store.redis_cluster_nodes`. It keeps one multiplexed connection per
//!   node, follows `MOVED`/`ASK` redirects and refreshes the slot map when
//!   the topology changes (a failover promotes a replica), so a process keeps
//!   working through a failover without a restart.
//!
//! The cluster client can wedge for good while it recovers from a topology
//! change (`redis` 1.8.1: its one task polls only the recovery future, which
//! waits for the write lock of its connection map while an in-flight request
//! or a node repair of the same task, not polled until the recovery ends,
//! holds or was granted that lock; every later call times out). The more
//! calls in flight, the likelier, so it showed after failovers under load. So
//! [`Cluster`] replaces the client with a fresh one when a call times out and
//! the client has answered nothing for [`WEDGED_AFTER`].
//!
//! A Cluster refuses pipelines whose commands live in different slots, so a
//! plain (non-transaction) pipeline is sent there as single commands, in
//! parallel, with the answers kept in order: `doc_get_many` reads documents
//! of any slots the same way on both kinds. Transactions (`MULTI`) stay one
//! pipeline; their keys share a queue's hash tag by design.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};
use tokio::time::Instant;

/// How long one command may take before the call fails as unavailable (on a
/// Cluster: including redirects and retries).
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one call may take on a Cluster including its retries,
/// reconnections and redirects (after a failover the slot map is refreshed
/// first).
pub(super) const OVERALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long establishing a connection may take.
pub(super) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// Single commands of one split pipeline in flight at once on a Cluster.
const SPLIT_PARALLELISM: usize = 64;
/// How long a cluster client may go without any answer (a reply or an
/// error other than a timeout) before a timed-out call replaces it. One
/// overall call timeout: a wedged client answers nothing, while a client that
/// only lost one node still answers the calls to the other nodes.
const WEDGED_AFTER: Duration = OVERALL_TIMEOUT;

/// Where the backend connects: one node or the seed nodes of a Cluster.
#[derive(Clone)]
pub(super) enum Target {
    /// One Redis server.
    Node(Box<redis::Client>),
    /// Seed nodes of a Redis Cluster (URLs; they may carry a password).
    Cluster(Vec<String>),
}

impl Target {
    /// Checks the URLs (without connecting).
    pub(super) fn node(url: &str) -> RedisResult<Target> {
        Ok(Target::Node(Box::new(redis::Client::open(url)?)))
    }

    /// Checks the seed URLs (without connecting): at least one, all parse.
    pub(super) fn cluster(nodes: &[String]) -> RedisResult<Target> {
        if nodes.is_empty() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no cluster seed nodes given",
            )));
        }
        for node in nodes {
            node.as_str().into_connection_info()?;
        }
        Ok(Target::Cluster(nodes.to_vec()))
    }

    /// The addresses, for messages (never the URLs: they may hold a password).
    pub(super) fn describe(&self) -> String {
        let addr = |url: &str| {
            url.into_connection_info()
                .map(|i| i.addr().to_string())
                .unwrap_or_else(|_| "?".into())
        };
        match self {
            Target::Node(client) => client.get_connection_info().addr().to_string(),
            Target::Cluster(nodes) => nodes.iter().map(|n| addr(n)).collect::<Vec<_>>().join(", "),
        }
    }

    /// Opens a connection.
    pub(super) async fn connect(&self) -> RedisResult<Conn> {
        match self {
            Target::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                Ok(Conn::Node(
                    client.get_connection_manager_with_config(config).await?,
                ))
            }
            Target::Cluster(nodes) => Ok(Conn::Cluster(Cluster::connect(nodes).await?)),
        }
    }

    /// Whether this is a Cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }
}

/// The cluster client settings every cluster connection uses.
pub(super) fn cluster_builder(nodes: &[String]) -> ClusterClientBuilder {
    ClusterClientBuilder::new(nodes.iter().map(String::as_str))
        .connection_timeout(CONNECTION_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        // By default the whole call (retries, reconnection, slot map refresh
        // after a failover) must also fit in RESPONSE_TIMEOUT; under load
        // every call then timed out before the refresh it waited for, and
        // the client stayed stuck after a failover.
        .overall_response_timeout(Some(OVERALL_TIMEOUT))
}

/// A connection to one node or to a Cluster; cheap to clone (clones share
/// the underlying connections).
#[derive(Clone)]
pub(super) enum Conn {
    /// One node.
    Node(ConnectionManager),
    /// A Cluster.
    Cluster(Cluster),
}

impl Conn {
    /// Runs a pipeline on the master that owns `key`'s slot, as one pipeline
    /// on one connection (its keyed commands must all live in that slot).
    /// `WAIT` counts the replicas of the node it runs on, so it must go where
    /// the write went.
    pub(super) async fn pipeline_on_master_of(
        &mut self,
        key: &str,
        pipe: &Pipeline,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipe, 0, pipe.len()).await,
            Conn::Cluster(c) => {
                let route = Route::with_key(key, SlotAddr::Master);
                c.call(async |mut c| {
                    c.route_pipeline(
                        pipe.clone(),
                        0,
                        pipe.len(),
                        SingleNodeRoutingInfo::SpecificNode(route),
                    )
                    .await
                })
                .await
            }
        }
    }
}

impl Conn {
    /// One slot of each master, ascending (the first slot of its lowest
    /// range); `[0]` on one node. Commands without keys (`SCAN`) reach every
    /// master through these.
    pub(super) async fn master_slots(&mut self) -> RedisResult<Vec<u16>> {
        let Conn::Cluster(_) = self else {
            return Ok(vec![0]);
        };
        let ranges: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(self).await?;
        let mut first: std::collections::BTreeMap<String, u16> = Default::default();
        for range in ranges {
            let (Some(start), Some(master)) = (range.first(), range.get(2)) else {
                continue;
            };
            let start: u16 = redis::from_redis_value(start.clone())?;
            let master: Vec<Value> = redis::from_redis_value(master.clone())?;
            let addr: Vec<String> = master
                .iter()
                .take(2)
                .map(|v| redis::from_redis_value::<String>(v.clone()))
                .collect::<Result<_, _>>()?;
            let slot = first.entry(addr.join(":")).or_insert(start);
            *slot = (*slot).min(start);
        }
        let mut slots: Vec<u16> = first.into_values().collect();
        slots.sort_unstable();
        Ok(slots)
    }

    /// Runs `cmd` on the master that owns `slot` (on one node: that node).
    pub(super) async fn query_on_master_of_slot<T: redis::FromRedisValue>(
        &mut self,
        slot: u16,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match self {
            Conn::Node(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let mut pipe = redis::pipe();
                pipe.add_command(cmd.clone());
                let route = Route::new(slot, SlotAddr::Master);
                let mut values = c
                    .call(async |mut c| {
                        c.route_pipeline(pipe, 0, 1, SingleNodeRoutingInfo::SpecificNode(route))
                            .await
                    })
                    .await?;
                let value = values.pop().unwrap_or(Value::Nil);
                Ok(redis::from_redis_value(value)?)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => {
                async move { c.call(async |mut c| c.req_packed_command(cmd).await).await }.boxed()
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => {
                if pipeline.is_transaction() {
                    async move {
                        c.call(async |mut c| c.req_packed_commands(pipeline, offset, count).await)
                            .await
                    }
                    .boxed()
                } else {
                    split(c.clone(), pipeline.cmd_iter().cloned().collect()).boxed()
                }
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            // A Cluster has only database 0.
            Conn::Cluster(_) => 0,
        }
    }
}

/// A plain pipeline on a Cluster: each command on its own (routed by its
/// key), in parallel, answers in the pipeline's order.
async fn split(conn: Cluster, cmds: Vec<Cmd>) -> RedisResult<Vec<Value>> {
    let answers: Vec<RedisResult<Value>> =
        futures_util::stream::iter(cmds.into_iter().map(|cmd| {
            let conn = conn.clone();
            async move {
                conn.call(async |mut c| c.req_packed_command(&cmd).await)
                    .await
            }
        }))
        .buffered(SPLIT_PARALLELISM)
        .collect()
        .await;
    answers.into_iter().collect()
}

/// The cluster client of one [`Conn`], replaced by a fresh one when it has
/// wedged (see the module docs); cheap to clone (clones share it).
#[derive(Clone)]
pub(super) struct Cluster(Arc<ClusterShared>);

struct ClusterShared {
    /// Seed nodes, for a fresh client.
    nodes: Vec<String>,
    /// The client calls go to now.
    current: RwLock<Generation>,
    /// Held while a fresh client is opened, so only one call opens one.
    replacing: tokio::sync::Mutex<()>,
}

/// One cluster client and when it last answered.
#[derive(Clone)]
struct Generation {
    conn: ClusterConnection,
    last_answer: Arc<Mutex<Instant>>,
}

impl Generation {
    async fn open(nodes: &[String]) -> RedisResult<Generation> {
        let conn = cluster_builder(nodes)
            .build()?
            .get_async_connection()
            .await?;
        Ok(Generation {
            conn,
            last_answer: Arc::new(Mutex::new(Instant::now())),
        })
    }

    fn answered(&self) {
        *self.last_answer.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn silent_for(&self) -> Duration {
        self.last_answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

impl Cluster {
    /// Connects to the Cluster through its seed nodes.
    async fn connect(nodes: &[String]) -> RedisResult<Cluster> {
        Ok(Cluster(Arc::new(ClusterShared {
            nodes: nodes.to_vec(),
            current: RwLock::new(Generation::open(nodes).await?),
            replacing: tokio::sync::Mutex::new(()),
        })))
    }

    fn current(&self) -> Generation {
        self.0
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs one call on the current client. A timeout on a client that has
    /// not answered anything for [`WEDGED_AFTER`] replaces it before the
    /// error is returned (the caller retries as after any timeout).
    async fn call<T>(
        &self,
        call: impl AsyncFnOnce(ClusterConnection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let generation = self.current();
        let result = call(generation.conn.clone()).await;
        match &result {
            Err(e) if e.is_timeout() => self.replace_if_wedged(&generation).await,
            _ => generation.answered(),
        }
        result
    }

    async fn replace_if_wedged(&self, stale: &Generation) {
        if stale.silent_for() < WEDGED_AFTER {
            return;
        }
        // Another call is already opening a fresh client.
        let Ok(_replacing) = self.0.replacing.try_lock() else {
            return;
        };
        if !Arc::ptr_eq(&self.current().last_answer, &stale.last_answer) {
            return;
        }
        let fresh = tokio::time::timeout(CONNECTION_TIMEOUT * 3, Generation::open(&self.0.nodes))
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from(std::io::Error::from(
                    std::io::ErrorKind::TimedOut,
                )))
            });
        match fresh {
            Ok(fresh) => {
                tracing::warn!(
                    silent_ms = stale.silent_for().as_millis() as u64,
                    "the redis cluster client answered nothing for too long; replaced it with a fresh one"
                );
                *self.0.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
            }
            Err(e) => {
                // The Cluster itself may be unreachable: try again only after
                // another silent period.
                stale.answered();
                // The kind only: a message may quote a seed URL and its password.
                tracing::warn!(
                    error_kind = ?e.kind(),
                    "the redis cluster client answers nothing and a fresh one could not connect"
                );
            }
        }
    }
}
