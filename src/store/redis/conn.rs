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
//! A Cluster refuses pipelines whose commands live in different slots, so a
//! plain (non-transaction) pipeline is sent there as single commands, in
//! parallel, with the answers kept in order: `doc_get_many` reads documents
//! of any slots the same way on both kinds. Transactions (`MULTI`) stay one
//! pipeline; their keys share a queue's hash tag by design.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};

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
            Target::Cluster(nodes) => Ok(Conn::Cluster(
                cluster_builder(nodes)
                    .build()?
                    .get_async_connection()
                    .await?,
            )),
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
    Cluster(ClusterConnection),
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
                c.route_pipeline(
                    pipe.clone(),
                    0,
                    pipe.len(),
                    SingleNodeRoutingInfo::SpecificNode(route),
                )
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
                    .route_pipeline(pipe, 0, 1, SingleNodeRoutingInfo::SpecificNode(route))
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
            Conn::Cluster(c) => c.req_packed_command(cmd),
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
                    c.req_packed_commands(pipeline, offset, count)
                } else {
                    split(c.clone(), pipeline.cmd_iter().cloned().collect()).boxed()
                }
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A plain pipeline on a Cluster: each command on its own (routed by its
/// key), in parallel, answers in the pipeline's order.
async fn split(conn: ClusterConnection, cmds: Vec<Cmd>) -> RedisResult<Vec<Value>> {
    let answers: Vec<RedisResult<Value>> =
        futures_util::stream::iter(cmds.into_iter().map(|cmd| {
            let mut conn = conn.clone();
            async move { conn.req_packed_command(&cmd).await }
        }))
        .buffered(SPLIT_PARALLELISM)
        .collect()
        .await;
    answers.into_iter().collect()
}
