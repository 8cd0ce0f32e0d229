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
//!   every node. The cluster client re-subscribes by itself after reconnects
//!   and failovers (messages published meanwhile are missed: pub/sub never
//!   stores anything).
//!
//! A subscriber that falls more than [`BUFFER`] messages behind is cut off
//! (its stream ends, with a warning) rather than holding up the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use redis::{PushKind, RedisResult, Value};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::conn::{CONNECTION_TIMEOUT, Target, cluster_builder};
use crate::store::backend::{StoreError, StoreResult};

/// Messages buffered per subscriber.
pub(super) const BUFFER: usize = 1_024;

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
    /// False once the subscription ended (its connection dropped).
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
                let (tx, mut rx) = mpsc::unbounded_channel();
                let client = cluster_builder(nodes)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(tx)
                    .build()?;
                let mut conn = client.get_async_connection().await?;
                if self.sharded {
                    conn.ssubscribe(channel).await?;
                } else {
                    conn.subscribe(channel).await?;
                }
                let fanout = Arc::clone(&fanout);
                tokio::spawn(async move {
                    // Keep the connection alive: it re-subscribes after
                    // reconnects and topology changes.
                    let _conn = conn;
                    while let Some(push) = rx.recv().await {
                        if matches!(push.kind, PushKind::Message | PushKind::SMessage)
                            && let Some(Value::BulkString(payload)) = push.data.get(1)
                        {
                            fanout.deliver(&name, payload);
                        }
                    }
                    fanout.close();
                })
            }
        };
        *fanout.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
        Ok(())
    }
}

impl Drop for PubSub {
    fn drop(&mut self) {
        for fanout in self.topics.get_mut().values() {
            fanout.abort();
        }
    }
}
