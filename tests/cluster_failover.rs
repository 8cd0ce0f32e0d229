//! Redis Cluster topology changes under webhook load (issue 17):
//!
//! - A master holding parts of the inbound queue is killed while customers
//!   keep writing; its replica is promoted and Balas carries on without a
//!   restart. With `store.min_replicas_ack = 1` a webhook is answered 200
//!   only once its events are on a replica, so no acknowledged message is
//!   lost: every one of them is answered.
//! - Every slot of such a master is moved to another master (`redis-cli
//!   --cluster reshard`: keys migrate while Balas reads and writes them, so
//!   it meets `ASK`, `TRYAGAIN` and `MOVED`); nothing acknowledged is lost
//!   either.
//! - The master of the live events channel's slot is killed (and stays
//!   down): a process's subscription (the consoles' live updates) receives
//!   events published after its replica took over.
//!
//! The load plays Meta: a webhook answered anything but 200 is sent again
//! until it is accepted. Each test starts its own cluster; they take turns,
//! so the two loads do not share the machine.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use balas::clock::Clock;
use common::harness::{Harness, StoreKind, unique_prefix};
use common::payloads;
use common::redis_cluster::RedisCluster;

/// Customers writing at once (each message from its own customer, so no
/// per-recipient pacing slows the replies).
const WRITERS: usize = 4;

/// Inbound turns at once: more than the default, so that many calls are in
/// flight when the cluster client recovers from a topology change (with many,
/// the `redis` 1.8 cluster client used to wedge for good; the store now
/// replaces a wedged client, see `src/store/redis/conn.rs`).
const INBOUND_CONCURRENCY: usize = 64;

/// Held by the running test: one cluster under load at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the load saw.
#[derive(Default)]
struct Seen {
    /// Acknowledged message ids, by customer.
    acked: BTreeMap<String, String>,
    /// Answers other than 200 (Meta retries them).
    refused: u64,
}

/// Customers writing to one Balas until stopped.
struct Load {
    h: Arc<Harness>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts [`WRITERS`] customers.
    fn start(h: &Arc<Harness>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let writers = (0..WRITERS)
            .map(|w| {
                tokio::spawn(write(
                    Arc::clone(h),
                    w,
                    Arc::clone(&stop),
                    Arc::clone(&seen),
                ))
            })
            .collect();
        Load {
            h: Arc::clone(h),
            stop,
            seen,
            writers,
        }
    }

    /// Messages acknowledged so far.
    fn acked(&self) -> usize {
        self.seen.lock().unwrap().acked.len()
    }

    /// Waits (bounded) until `more` further messages are acknowledged.
    async fn wait_acked(&self, what: &str, more: usize, limit: Duration) {
        let target = self.acked() + more;
        wait_for(what, limit, async || self.acked() >= target).await;
    }

    /// Stops writing, then checks that every acknowledged message is
    /// answered; returns (acknowledged, refused).
    async fn stop_and_check_all_answered(self) -> (usize, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.writers {
            w.await.unwrap();
        }
        let acked: BTreeMap<String, String> = self.seen.lock().unwrap().acked.clone();
        let store = self.h.app.store();
        wait_for(
            "every acknowledged message is answered",
            Duration::from_secs(60),
            async || {
                for wamid in acked.values() {
                    match store.outbound(&format!("re:{wamid}")).await {
                        Ok(Some(r)) if r.state.as_str() == "sent" => {}
                        _ => return false,
                    }
                }
                true
            },
        )
        .await;
        for who in acked.keys() {
            assert!(!self.h.texts_to(who).is_empty(), "{who} got no reply");
        }
        (acked.len(), self.seen.lock().unwrap().refused)
    }
}

/// Posts webhooks until `stop`, each one again until it is answered 200.
async fn write(h: Arc<Harness>, writer: usize, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let who = format!("62816{writer:02}{n:06}");
        let wamid = payloads::new_wamid();
        let body =
            payloads::wa_text(&who, "Load", &wamid, "halo", h.clock.now_ms() / 1000).to_string();
        loop {
            let status = h.post_signed("whatsapp", body.as_bytes()).await.status();
            if status == 200 {
                seen.lock()
                    .unwrap()
                    .acked
                    .insert(who.clone(), wamid.clone());
                break;
            }
            seen.lock().unwrap().refused += 1;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits (bounded) until `ok` holds, checking every 100 ms.
async fn wait_for(what: &str, limit: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !ok().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A cluster of its own and a Balas on it at [`INBOUND_CONCURRENCY`].
async fn start(min_replicas_ack: u32) -> (Arc<RedisCluster>, String, Arc<Harness>) {
    let cluster = Arc::new(RedisCluster::start());
    let prefix = unique_prefix();
    let store = StoreKind::Cluster(Arc::clone(&cluster), prefix.clone());
    let h = Arc::new(
        Harness::start_with(store, |c| {
            c.store.min_replicas_ack = min_replicas_ack;
            c.survey.enabled = false;
            c.workers.inbound_concurrency = INBOUND_CONCURRENCY;
        })
        .await,
    );
    (cluster, prefix, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_webhook_load_loses_no_acknowledged_message() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (cluster, prefix, h) = start(1).await;
    let load = Load::start(&h);
    load.wait_acked("load is acknowledged", 40, Duration::from_secs(20))
        .await;
    // A master holding acknowledged work: the one with part 0 of the
    // inbound queue (the queue is split into parts over every master; this
    // one holds a third of them, and parts of the outbox).
    let inbound = format!("{{{prefix}:q:inbound}}");
    let old_master = cluster.master_of(&inbound);
    let before_kill = load.acked();
    cluster.kill(old_master);
    let new_master = cluster.wait_failover(&inbound, old_master);
    // The promoted master has no replica yet: webhooks wait for one and are
    // refused (Meta retries) rather than acknowledged without a copy. The
    // old master comes back as its replica.
    cluster.start_again(old_master);
    cluster.wait_healthy();
    load.wait_acked(
        "webhooks are acknowledged again after the failover",
        40,
        Duration::from_secs(30),
    )
    .await;

    // Every acknowledged message is answered: nothing was lost with the old
    // master, and the same Balas (never restarted) kept working.
    let (acked, refused) = load.stop_and_check_all_answered().await;
    eprintln!(
        "failover: {acked} acknowledged ({before_kill} before the kill of {old_master}, {} after {new_master} took over), {refused} refused and retried, all answered",
        acked - before_kill,
    );
    assert!(
        acked > before_kill + 40,
        "processing continued after the failover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_a_master_away_under_webhook_load_loses_no_acknowledged_message() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (cluster, prefix, h) = start(0).await;
    let load = Load::start(&h);
    load.wait_acked("load is acknowledged", 40, Duration::from_secs(20))
        .await;
    // Move every slot of the master holding part 0 of the inbound queue
    // (and a third of the other parts, of the outbox and of the documents)
    // to another master, key by key, while the load goes on.
    let inbound = format!("{{{prefix}:q:inbound}}");
    let from = cluster.master_of(&inbound);
    let to = *cluster
        .masters()
        .iter()
        .find(|&&m| m != from)
        .expect("another master");
    let before = load.acked();
    let reshard = {
        let cluster = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || cluster.reshard_all(from, to))
    };
    reshard.await.unwrap();
    let during = load.acked() - before;
    assert_eq!(cluster.master_of(&inbound), to, "the slots moved");
    load.wait_acked(
        "webhooks are acknowledged after the resharding",
        40,
        Duration::from_secs(30),
    )
    .await;

    let (acked, refused) = load.stop_and_check_all_answered().await;
    eprintln!(
        "reshard: {acked} acknowledged ({before} before every slot of {from} moved to {to}, {during} while they moved), {refused} refused and retried, all answered",
    );
}

/// Publishes a marked event until the subscriber receives one of them (an
/// event missed while the subscription moves is published again), within
/// `limit`; other events (the engine's) are skipped.
async fn publish_until_received(
    store: &balas::store::Store,
    events: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
    mark: &str,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut n = 0;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: no {mark} event reached the subscriber"
        );
        n += 1;
        let event = serde_json::json!({"type": "probe", "mark": mark, "n": n});
        if let Err(e) = store.publish_event(&event).await {
            eprintln!("publish {mark} #{n}: {e}");
        }
        // Until the next publish, take every event that arrives.
        let next = tokio::time::Instant::now() + Duration::from_millis(250);
        while let Ok(got) = tokio::time::timeout_at(next, events.recv()).await {
            let bytes = got.unwrap_or_else(|| panic!("the live event stream ended ({mark})"));
            let got: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if got["mark"] == mark {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_arrive_again_after_the_master_of_their_slot_is_lost() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (cluster, prefix, h) = start(0).await;
    let store = h.app.store();
    let mut events = store.subscribe_events().await.expect("subscribe");
    publish_until_received(store, &mut events, "before", Duration::from_secs(10)).await;

    // The channel the store publishes live events on (sharded pub/sub: its
    // messages live on the master of its slot and that master's replica).
    let channel = format!("{prefix}:topic:events");
    let old_master = cluster.master_of(&channel);
    cluster.kill(old_master);
    let new_master = cluster.wait_failover(&channel, old_master);
    eprintln!("{old_master} killed, {new_master} serves the live events now");
    // The old master stays down (a machine lost): nothing brings the
    // subscription back but the store.
    let promoted = std::time::Instant::now();
    publish_until_received(store, &mut events, "after", Duration::from_secs(30)).await;
    eprintln!(
        "live events arrive again {} ms after the promotion",
        promoted.elapsed().as_millis()
    );
}
