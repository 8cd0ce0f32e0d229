//! Live events over Redis pub/sub: one subscription per topic and process,
//! fanned out to every subscriber in the process.
//!
//! - One node: `PUBLISH` / `SUBSCRIBE` on a dedicated pub/sub connection. If
//!   that connection drops, every subscriber's stream ends (consoles
//!   reconnect) and the next subscription opens a new one.
//! - A Cluster: sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`, Redis ≥ 7.0): a
//!   topic lives in the slot of its channel name and its messages travel only
//!   within that shard, not over every node's cluster bus. On servers without
//!   it (Redis 6) classic `PUBLISH` / `SUBSCRIBE`, which a Cluster forwards to
//!   every node. When a node connection of the subscribing cluster client
//!   drops, a fresh client subscribes again (retrying with backoff until the
//!   Cluster serves the slot again) and the subscribers' streams go on: the
//!   `redis` 1.8 client's own repair only reconnects to the lost address and,
//!   sending no commands, never learns that a replica took over, so after a
//!   failover its subscription stayed silent for good. Messages published
//!   meanwhile are missed (pub/sub never stores anything).
//!
//! A subscriber that falls more than [`BUFFER`] messages behind is cut off
//! (its stream ends, with a warning) rather than holding up the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use futures_util::StreamExt;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::conn::{CONNECTION_TIMEOUT, Target, cluster_builder};
use crate::store::backend::{StoreError, StoreResult};

/// Messages buffered per subscriber.
pub(super) const BUFFER: usize = 1_024;
/// Longest wait between two attempts to subscribe again on a Cluster.
const RESUBSCRIBE_MAX_DELAY: Duration = Duration::from_secs(5);

/// The subscriptions of one backend.
pub(super) struct PubSub {
    target: Target,
    /// `SPUBLISH`/`SSUBSCRIBE` (a Cluster whose servers have them).
    sharded: bool,
    topics: tokio::sync::Mutex<HashMap<String, Arc<Fanout>>>,
}

/// One open subscription and its local subscribers.
struct Fanout {
    subscribers: Mutex<Vec<mpsc::Sender<Vec<u8>>>>,
    /// False once the subscription ended (its connection to the one node
    /// dropped; a Cluster subscription subscribes again instead).
    alive: AtomicBool,
    /// The task reading the subscription.
    task: Mutex<Option<AbortHandle>>,
}

impl Fanout {
    fn new() -> Arc<Fanout> {
        Arc::new(Fanout {
            subscribers: Mutex::new(Vec::new()),
            alive: AtomicBool::new(true),
            task: Mutex::new(None),
        })
    }

    fn add(&self) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(BUFFER);
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    fn deliver(&self, channel: &str, payload: &[u8]) {
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|tx| match tx.try_send(payload.to_vec()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        channel,
                        "a live event subscriber fell {BUFFER} messages behind; ending its stream"
                    );
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
    }

    /// The subscription ended: every subscriber's stream ends.
    fn close(&self) {
        self.alive.store(false, Ordering::Relaxed);
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn abort(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

impl PubSub {
    /// Subscriptions on `target`; `sharded` picks sharded pub/sub (Cluster).
    pub(super) fn new(target: Target, sharded: bool) -> PubSub {
        PubSub {
            target,
            sharded,
            topics: tokio::sync::Mutex::default(),
        }
    }

    /// The command that publishes `payload` on `channel`.
    pub(super) fn publish_cmd(&self, channel: &str, payload: &[u8]) -> redis::Cmd {
        let mut cmd = redis::cmd(if self.sharded { "SPUBLISH" } else { "PUBLISH" });
        cmd.arg(channel).arg(payload);
        cmd
    }

    /// A receiver of every message published on `channel` from now on.
    pub(super) async fn subscribe(&self, channel: &str) -> StoreResult<mpsc::Receiver<Vec<u8>>> {
        let mut topics = self.topics.lock().await;
        if let Some(fanout) = topics.get(channel)
            && fanout.alive.load(Ordering::Relaxed)
        {
            return Ok(fanout.add());
        }
        let fanout = Fanout::new();
        let open = self.open(channel, Arc::clone(&fanout));
        tokio::time::timeout(CONNECTION_TIMEOUT * 2, open)
            .await
            .map_err(|_| StoreError::Unavailable("redis subscribe: timed out".into()))?
            .map_err(|e| StoreError::Unavailable(format!("redis subscribe: {e}")))?;
        let rx = fanout.add();
        if let Some(old) = topics.insert(channel.to_owned(), fanout) {
            old.abort();
        }
        Ok(rx)
    }

    /// Opens the subscription and starts the task that fans it out.
    async fn open(&self, channel: &str, fanout: Arc<Fanout>) -> RedisResult<()> {
        let name = channel.to_owned();
        let task = match &self.target {
            Target::Node(client) => {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                let (sink, mut stream) = pubsub.split();
                let fanout = Arc::clone(&fanout);
                tokio::spawn(async move {
                    // Keep the sink alive: dropping it would end the subscription.
                    let _sink = sink;
                    while let Some(msg) = stream.next().await {
                        fanout.deliver(&name, msg.get_payload_bytes());
                    }
                    tracing::warn!(channel = name, "redis subscription ended");
                    fanout.close();
                })
            }
            Target::Cluster(nodes) => {
                let (nodes, sharded) = (nodes.clone(), self.sharded);
                let mut subscribed = cluster_subscribe(&nodes, channel, sharded).await?;
                let fanout = Arc::clone(&fanout);
                tokio::spawn(async move {
                    loop {
                        // Until one of the client's node connections drops.
                        while let Some(push) = subscribed.1.recv().await {
                            if push.kind == PushKind::Disconnection {
                                break;
                            }
                            relay(&push, &fanout, &name);
                        }
                        tracing::warn!(
                            channel = name,
                            "a node connection of the redis cluster subscription dropped; subscribing again with a fresh client"
                        );
                        // The old subscription may still work (the node
                        // lost may serve other slots): it is relayed until
                        // the fresh one is in place.
                        let fresh = cluster_resubscribe(&nodes, &name, sharded);
                        tokio::pin!(fresh);
                        subscribed = loop {
                            tokio::select! {
                                fresh = &mut fresh => break fresh,
                                Some(push) = subscribed.1.recv() => relay(&push, &fanout, &name),
                            }
                        };
                    }
                })
            }
        };
        *fanout.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
        Ok(())
    }
}

/// A fresh cluster client (its own slot map) subscribed to `channel`, and
/// the pushes it receives. The connection must be kept: dropping it ends the
/// subscription.
async fn cluster_subscribe(
    nodes: &[String],
    channel: &str,
    sharded: bool,
) -> RedisResult<(ClusterConnection, mpsc::UnboundedReceiver<PushInfo>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = cluster_builder(nodes)
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(tx)
        .build()?;
    let mut conn = client.get_async_connection().await?;
    if sharded {
        conn.ssubscribe(channel).await?;
    } else {
        conn.subscribe(channel).await?;
    }
    Ok((conn, rx))
}

/// [`cluster_subscribe`] until it works, waiting longer after each failure
/// (while a failover is under way the slot has no master for a few seconds).
async fn cluster_resubscribe(
    nodes: &[String],
    channel: &str,
    sharded: bool,
) -> (ClusterConnection, mpsc::UnboundedReceiver<PushInfo>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = cluster_subscribe(nodes, channel, sharded);
        match tokio::time::timeout(CONNECTION_TIMEOUT * 2, attempt).await {
            Ok(Ok(subscribed)) => {
                tracing::info!(channel, "subscribed again on the redis cluster");
                return subscribed;
            }
            // The kind only: a message may quote a seed URL and its password.
            Ok(Err(e)) => {
                tracing::debug!(channel, error_kind = ?e.kind(), "subscribing again failed")
            }
            Err(_) => tracing::debug!(channel, "subscribing again timed out"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RESUBSCRIBE_MAX_DELAY);
    }
}

/// Fans a message of a cluster subscription out (other pushes are ignored).
fn relay(push: &PushInfo, fanout: &Fanout, channel: &str) {
    if matches!(push.kind, PushKind::Message | PushKind::SMessage)
        && let Some(Value::BulkString(payload)) = push.data.get(1)
    {
        fanout.deliver(channel, payload);
    }
}

impl Drop for PubSub {
    fn drop(&mut self) {
        for fanout in self.topics.get_mut().values() {
            fanout.abort();
        }
    }
}
