//! Redis Cluster failover under webhook load (issue 17): a master holding
//! parts of the inbound queue is killed while customers keep writing; its replica is
//! promoted and Balas carries on without a restart. With
//! `store.min_replicas_ack = 1` a webhook is answered 200 only once its events
//! are on a replica, so no acknowledged message is lost: every one of them is
//! answered.
//!
//! The load plays Meta: a webhook answered anything but 200 is sent again
//! until it is accepted.

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
/// flight when the cluster client recovers from the failover (with many, the
/// `redis` 1.8 cluster client used to wedge for good; the store now replaces a
/// wedged client, see `src/store/redis/conn.rs`).
const INBOUND_CONCURRENCY: usize = 64;

/// What the load saw.
#[derive(Default)]
struct Seen {
    /// Acknowledged message ids, by customer.
    acked: BTreeMap<String, String>,
    /// Answers other than 200 (Meta retries them).
    refused: u64,
}

/// Posts webhooks until `stop`, each one again until it is answered 200.
async fn load(h: Arc<Harness>, writer: usize, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_webhook_load_loses_no_acknowledged_message() {
    let cluster = Arc::new(RedisCluster::start());
    let prefix = unique_prefix();
    let store = StoreKind::Cluster(Arc::clone(&cluster), prefix.clone());
    let h = Arc::new(
        Harness::start_with(store, |c| {
            c.store.min_replicas_ack = 1;
            c.survey.enabled = false;
            c.workers.inbound_concurrency = INBOUND_CONCURRENCY;
        })
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(load(
                Arc::clone(&h),
                w,
                Arc::clone(&stop),
                Arc::clone(&seen),
            ))
        })
        .collect();
    let acked = || seen.lock().unwrap().acked.len();

    wait_for(
        "load is acknowledged",
        Duration::from_secs(20),
        async || acked() >= 40,
    )
    .await;
    // A master holding acknowledged work: the one with part 0 of the
    // inbound queue (the queue is split into parts over every master; this
    // one holds a third of them, and parts of the outbox).
    let inbound = format!("{{{prefix}:q:inbound}}");
    let old_master = cluster.master_of(&inbound);
    let before_kill = acked();
    cluster.kill(old_master);
    let new_master = cluster.wait_failover(&inbound, old_master);
    // The promoted master has no replica yet: webhooks wait for one and are
    // refused (Meta retries) rather than acknowledged without a copy. The
    // old master comes back as its replica.
    cluster.start_again(old_master);
    cluster.wait_healthy();
    let after_rejoin = acked();
    wait_for(
        "webhooks are acknowledged again after the failover",
        Duration::from_secs(30),
        async || acked() >= after_rejoin + 40,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    // Every acknowledged message is answered: nothing was lost with the old
    // master, and the same Balas (never restarted) kept working.
    let acked: BTreeMap<String, String> = seen.lock().unwrap().acked.clone();
    let store = h.app.store();
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
        assert!(!h.texts_to(who).is_empty(), "{who} got no reply");
    }
    let refused = seen.lock().unwrap().refused;
    eprintln!(
        "failover: {} acknowledged ({before_kill} before the kill of {old_master}, {} after {new_master} took over), {refused} refused and retried, all answered",
        acked.len(),
        acked.len() - before_kill,
    );
    assert!(
        acked.len() > before_kill + 40,
        "processing continued after the failover"
    );
}
