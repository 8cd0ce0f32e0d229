//! One conformance suite for every store backend.
//!
//! Every test is an async fn taking an `Arc<dyn Backend>`; the `conformance!`
//! macro instantiates it against a fresh `redis-server`, a fresh embedded
//! store in a temp dir, and a Redis Cluster (3 masters, 3 replicas; one per
//! test binary, a fresh key prefix per test). Time is passed explicitly as
//! `now_ms` (starting at [`T0`]), never read from a clock, so nothing sleeps.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use balas::store::embedded::EmbeddedBackend;
use balas::store::redis::RedisBackend;
use balas::store::{Backend, Job, JobCounts, Location, MoveOutcome, NewJob, StoreError};
use common::harness::unique_prefix;
use common::redis_cluster::RedisCluster;
use common::redis_server::RedisServer;

/// The start of test time, Unix ms.
const T0: i64 = 1_700_000_000_000;
const PREFIX: &str = "balas-test";

/// A backend plus whatever must live as long as it (server or temp dir).
struct Fixture {
    backend: Arc<dyn Backend>,
    _guard: Box<dyn std::any::Any + Send>,
}

async fn redis_fixture() -> Fixture {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url(), PREFIX)
        .await
        .expect("connect to the test redis");
    Fixture {
        backend: Arc::new(backend),
        _guard: Box::new(server),
    }
}

async fn cluster_fixture() -> Fixture {
    let backend = RedisBackend::connect_cluster(&RedisCluster::shared().urls(), &unique_prefix())
        .await
        .expect("connect to the test cluster");
    Fixture {
        backend: Arc::new(backend),
        _guard: Box::new(()),
    }
}

fn embedded_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = EmbeddedBackend::open(dir.path()).expect("open embedded store");
    Fixture {
        backend: Arc::new(backend),
        _guard: Box::new(dir),
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::redis_fixture().await;
                    super::$name(Arc::clone(&f.backend)).await;
                }
            )*
            use std::sync::Arc;
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::embedded_fixture();
                    super::$name(Arc::clone(&f.backend)).await;
                }
            )*
            use std::sync::Arc;
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::cluster_fixture().await;
                    super::$name(Arc::clone(&f.backend)).await;
                }
            )*
            use std::sync::Arc;
        }
    };
}

conformance!(
    ping_and_name,
    remember_until_ttl,
    forget_allows_again,
    doc_cas,
    doc_get_many_keeps_order,
    doc_put_counted_moves_counters_with_the_document,
    multi_key_calls_need_one_hash_tag,
    doc_delete_then_recreate,
    users_tokens_and_sessions,
    jobs_claim_due_earliest_first,
    jobs_push_dedupes_ids_and_keys,
    jobs_push_replicated_pushes_alike,
    jobs_lease_expiry_reclaims_with_attempts,
    jobs_heartbeat_keeps_the_lease,
    jobs_retry_and_payload,
    jobs_bury_keeps_dead_letters,
    jobs_cancel_anywhere,
    index_basics_and_ties,
    index_pop_min_into_order_and_capacity,
    index_move_checks_source_and_capacity,
    index_put_many_across_indexes,
    lists,
    locks,
    rate_take_gcra,
    counters,
    publish_subscribe,
    concurrent_claims_never_duplicate,
    concurrent_pop_min_into_respects_capacity,
    concurrent_index_move_moves_once,
    concurrent_doc_cas_increments,
    index_range_rev_descends,
    lists_set_in_place_and_delete,
    jobs_dead_remove_any_entry,
    rate_reset_forgets,
    purge_expired_keeps_every_answer,
    scan_sees_every_key_and_value,
);

fn job(id: &str, due_ms: i64, payload: &str) -> NewJob {
    NewJob {
        job: Job {
            id: id.to_owned(),
            due_ms,
            attempts: 0,
            payload: payload.as_bytes().to_vec(),
            lease: 0,
        },
        dedupe: None,
    }
}

fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

const LEASE: Duration = Duration::from_secs(30);

async fn ping_and_name(b: Arc<dyn Backend>) {
    b.ping().await.unwrap();
    assert!(["redis", "redis-cluster", "embedded"].contains(&b.name()));
}

async fn remember_until_ttl(b: Arc<dyn Backend>) {
    let ttl = Duration::from_secs(1);
    assert!(b.remember("m1", ttl, T0).await.unwrap());
    assert!(!b.remember("m1", ttl, T0).await.unwrap());
    assert!(!b.remember("m1", ttl, T0 + 999).await.unwrap());
    assert!(b.remember("other", ttl, T0 + 10).await.unwrap());
    // Expired exactly at now + ttl: remembered again, for a new ttl.
    assert!(b.remember("m1", ttl, T0 + 1_000).await.unwrap());
    assert!(!b.remember("m1", ttl, T0 + 1_999).await.unwrap());
    assert!(b.remember("m1", ttl, T0 + 2_000).await.unwrap());
    // Many expired keys are purged without changing answers.
    for i in 0..100 {
        assert!(b.remember(&format!("k{i}"), ttl, T0).await.unwrap());
    }
    assert!(!b.remember("k99", ttl, T0 + 500).await.unwrap());
    assert!(b.remember("k0", ttl, T0 + 5_000).await.unwrap());
    assert!(b.remember("k99", ttl, T0 + 5_000).await.unwrap());
}

async fn forget_allows_again(b: Arc<dyn Backend>) {
    let ttl = Duration::from_secs(3_600);
    assert!(b.remember("survey:6281", ttl, T0).await.unwrap());
    b.forget("survey:6281").await.unwrap();
    assert!(b.remember("survey:6281", ttl, T0 + 1).await.unwrap());
    assert!(!b.remember("survey:6281", ttl, T0 + 2).await.unwrap());
    b.forget("never-remembered").await.unwrap();
}

async fn doc_cas(b: Arc<dyn Backend>) {
    assert_eq!(b.doc_get("c1").await.unwrap(), None);
    assert_eq!(
        b.doc_put("c1", 1, b"x").await.unwrap(),
        None,
        "absent is version 0"
    );
    assert_eq!(b.doc_put("c1", 0, b"a").await.unwrap(), Some(1));
    assert_eq!(b.doc_put("c1", 0, b"b").await.unwrap(), None);
    let d = b.doc_get("c1").await.unwrap().unwrap();
    assert_eq!((d.version, d.data.as_slice()), (1, &b"a"[..]));
    assert_eq!(b.doc_put("c1", 1, b"c").await.unwrap(), Some(2));
    // Two writers with the same expected version: exactly one wins.
    let (x, y) = tokio::join!(b.doc_put("c1", 2, b"x"), b.doc_put("c1", 2, b"y"));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(x.is_some() != y.is_some(), "{x:?} {y:?}");
    let d = b.doc_get("c1").await.unwrap().unwrap();
    assert_eq!(d.version, 3);
    assert_eq!(d.data, if x.is_some() { b"x" } else { b"y" });
    // Binary and empty data round-trip.
    assert_eq!(b.doc_put("bin", 0, &[0, 255, 1]).await.unwrap(), Some(1));
    assert_eq!(
        b.doc_get("bin").await.unwrap().unwrap().data,
        vec![0, 255, 1]
    );
    assert_eq!(b.doc_put("empty", 0, b"").await.unwrap(), Some(1));
    assert_eq!(b.doc_get("empty").await.unwrap().unwrap().data, b"");
}

async fn doc_delete_then_recreate(b: Arc<dyn Backend>) {
    assert!(!b.doc_delete("d1").await.unwrap(), "absent");
    assert_eq!(b.doc_put("d1", 0, b"a").await.unwrap(), Some(1));
    assert_eq!(b.doc_put("d1", 1, b"b").await.unwrap(), Some(2));
    b.doc_put("d2", 0, b"kept").await.unwrap();
    assert!(b.doc_delete("d1").await.unwrap());
    assert_eq!(b.doc_get("d1").await.unwrap(), None);
    assert!(!b.doc_delete("d1").await.unwrap());
    assert_eq!(b.doc_put("d1", 2, b"stale").await.unwrap(), None);
    assert_eq!(
        b.doc_put("d1", 0, b"new").await.unwrap(),
        Some(1),
        "starts over at version 1"
    );
    assert_eq!(b.doc_get("d2").await.unwrap().unwrap().data, b"kept");
    let got = b
        .doc_get_many(&["d1".to_string(), "d2".to_string()])
        .await
        .unwrap();
    assert_eq!(got[0].as_ref().unwrap().data, b"new");
}

/// The users layer of the store on each backend: creation is exclusive,
/// updates are compare-and-swap, token lookups and sessions are found by hash
/// and go away with their user's sessions.
async fn users_tokens_and_sessions(b: Arc<dyn Backend>) {
    use balas::clock::ManualClock;
    use balas::config::Role;
    use balas::store::{ApiToken, Session, Store, TokenRef, User};

    let store = Store::new(b, Arc::new(ManualClock::at_ms(T0)));
    let user = |id: &str| User {
        id: id.into(),
        name: id.to_uppercase(),
        role: Role::Agent,
        queues: vec!["complaints".into()],
        max_concurrent: 3,
        disabled: false,
        password_hash: None,
        tokens: Vec::new(),
        created_ms: T0,
        updated_ms: T0,
    };
    assert!(store.insert_user(&user("siti")).await.unwrap());
    assert!(
        !store.insert_user(&user("siti")).await.unwrap(),
        "ids are unique"
    );
    assert!(store.insert_user(&user("budi")).await.unwrap());
    let ids: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids, ["budi", "siti"]);

    let token = ApiToken {
        id: "tok_1".into(),
        label: "crm".into(),
        sha256: "ab".repeat(32),
        created_ms: T0,
    };
    let target = TokenRef {
        user_id: "siti".into(),
        token_id: "tok_1".into(),
    };
    assert!(
        store
            .insert_token_ref(&token.sha256, &target)
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_token_ref(&token.sha256, &target)
            .await
            .unwrap(),
        "one owner per hash"
    );
    let updated = store
        .update_user::<StoreError, _>("siti", |u| {
            u.tokens.push(token.clone());
            u.disabled = true;
            Ok(())
        })
        .await
        .unwrap()
        .unwrap();
    assert!(updated.disabled && updated.token_by_hash(&token.sha256).is_some());
    assert_eq!(store.user("siti").await.unwrap().unwrap(), updated);
    assert_eq!(store.token_ref(&token.sha256).await.unwrap(), Some(target));
    assert!(
        store
            .update_user::<StoreError, _>("nobody", |_| Ok(()))
            .await
            .unwrap()
            .is_none()
    );
    store.delete_token_ref(&token.sha256).await.unwrap();
    assert_eq!(store.token_ref(&token.sha256).await.unwrap(), None);

    let session = |expires_ms: i64| Session {
        user_id: "siti".into(),
        created_ms: T0,
        expires_ms,
        csrf_token: "c".into(),
    };
    for (hash, expires) in [("s1", T0 + 10), ("s2", T0 + 1_000), ("s3", T0 + 2_000)] {
        store.insert_session(hash, &session(expires)).await.unwrap();
    }
    assert_eq!(store.session("s1").await.unwrap(), Some(session(T0 + 10)));
    // Ended sessions are purged; live ones stay.
    store
        .purge_expired_sessions("siti", T0 + 500)
        .await
        .unwrap();
    assert_eq!(store.session("s1").await.unwrap(), None);
    assert!(store.session("s2").await.unwrap().is_some());
    // Ending all but one.
    assert_eq!(
        store
            .delete_user_sessions("siti", Some("s3"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.session("s2").await.unwrap(), None);
    assert!(store.session("s3").await.unwrap().is_some());
    store.delete_session("s3", "siti").await.unwrap();
    assert_eq!(store.session("s3").await.unwrap(), None);
    assert_eq!(store.delete_user_sessions("siti", None).await.unwrap(), 0);
}

async fn doc_get_many_keeps_order(b: Arc<dyn Backend>) {
    b.doc_put("a", 0, b"A").await.unwrap();
    b.doc_put("b", 0, b"B").await.unwrap();
    b.doc_put("b", 1, b"B2").await.unwrap();
    let keys: Vec<String> = ["b", "missing", "a"].map(String::from).to_vec();
    let got = b.doc_get_many(&keys).await.unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0].as_ref().map(|d| (d.version, d.data.clone())),
        Some((2, b"B2".to_vec()))
    );
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_ref().map(|d| d.version), Some(1));
    assert!(b.doc_get_many(&[]).await.unwrap().is_empty());
}

async fn doc_put_counted_moves_counters_with_the_document(b: Arc<dyn Backend>) {
    // A broadcast's record and its counters share the broadcast's tag.
    let doc = "{bc:7}out:bc:7:6281";
    let (sent, pending) = (
        "{bc:7}outcount:sent".to_owned(),
        "{bc:7}outcount:pending".to_owned(),
    );
    assert_eq!(
        b.doc_put_counted(doc, 0, b"p", &[(pending.clone(), 1)])
            .await
            .unwrap(),
        Some(1)
    );
    let moved = [(pending.clone(), -1), (sent.clone(), 1)];
    // A stale version writes nothing and counts nothing.
    assert_eq!(b.doc_put_counted(doc, 0, b"s", &moved).await.unwrap(), None);
    assert_eq!(b.counter_get(&pending).await.unwrap(), 1);
    assert_eq!(
        b.doc_put_counted(doc, 1, b"s", &moved).await.unwrap(),
        Some(2)
    );
    assert_eq!(b.counter_get(&pending).await.unwrap(), 0);
    assert_eq!(b.counter_get(&sent).await.unwrap(), 1);
    assert_eq!(b.doc_get(doc).await.unwrap().unwrap().data, b"s");
    // Without counters it is a plain compare-and-swap, tag or not.
    assert_eq!(
        b.doc_put_counted("plain", 0, b"x", &[]).await.unwrap(),
        Some(1)
    );
}

async fn multi_key_calls_need_one_hash_tag(b: Arc<dyn Backend>) {
    // Refused on every backend, so a key plan that would break on a Redis
    // Cluster breaks in every test; nothing is written.
    let err = b
        .doc_put_counted("{bc:1}out:x", 0, b"x", &[("{bc:2}outcount:sent".into(), 1)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("hash tag"), "{err}");
    assert!(
        b.doc_put_counted("out:y", 0, b"y", &[("outcount:sent".into(), 1)])
            .await
            .is_err(),
        "untagged keys hash by their whole name"
    );
    assert_eq!(b.doc_get("{bc:1}out:x").await.unwrap(), None);
    assert_eq!(b.counter_get("{bc:2}outcount:sent").await.unwrap(), 0);
    b.index_put("{a}waiting", "m", 1.0).await.unwrap();
    let err = b
        .index_pop_min_into(&["{a}waiting".into()], "{b}active", 5, 1.0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("hash tag"), "{err}");
    assert_eq!(b.index_len("{a}waiting").await.unwrap(), 1);
    assert_eq!(b.index_len("{b}active").await.unwrap(), 0);
    let err = b
        .index_move("{a}waiting", "m", "{b}active", 5, 1.0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("hash tag"), "{err}");
    assert_eq!(b.index_len("{a}waiting").await.unwrap(), 1);
    assert_eq!(b.index_len("{b}active").await.unwrap(), 0);
}

fn counts(pending: u64, leased: u64, dead: u64) -> JobCounts {
    JobCounts {
        pending,
        leased,
        dead,
    }
}

/// The lease token a claim gave the job `id`.
fn lease_of(jobs: &[Job], id: &str) -> u64 {
    jobs.iter()
        .find(|j| j.id == id)
        .map(|j| j.lease)
        .expect("claimed")
}

async fn jobs_claim_due_earliest_first(b: Arc<dyn Backend>) {
    let q = "outbox";
    let pushed = b
        .jobs_push(
            q,
            &[
                job("j10", T0 + 10, "p10"),
                job("j0", T0, "p0"),
                job("j5", T0 + 5, "p5"),
                job("late", T0 + 1_000, "pl"),
            ],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(pushed, vec![true; 4]);
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(4, 0, 0));
    assert_eq!(b.jobs_next_due(q).await.unwrap(), Some(T0));
    // Nothing due before T0.
    assert!(b.jobs_claim(q, T0 - 1, LEASE, 10).await.unwrap().is_empty());
    let claimed = b.jobs_claim(q, T0 + 5, LEASE, 1).await.unwrap();
    assert_eq!(ids(&claimed), ["j0"]);
    assert!(claimed[0].lease > 0, "a claim hands out a lease token");
    assert_eq!(
        claimed[0],
        Job {
            id: "j0".into(),
            due_ms: T0,
            attempts: 0,
            payload: b"p0".to_vec(),
            lease: claimed[0].lease,
        }
    );
    let j0 = claimed[0].lease;
    let claimed = b.jobs_claim(q, T0 + 10, LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["j5", "j10"]);
    let tokens: HashSet<u64> = claimed.iter().map(|j| j.lease).chain([j0]).collect();
    assert_eq!(tokens.len(), 3, "every claim gets its own token");
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(1, 3, 0));
    assert_eq!(b.jobs_next_due(q).await.unwrap(), Some(T0 + 1_000));
    assert!(
        b.jobs_claim(q, T0 + 999, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        b.jobs_claim(q, T0 + 1_000, LEASE, 0)
            .await
            .unwrap()
            .is_empty()
    );
    // Ack deletes; a second ack finds nothing.
    assert!(b.jobs_ack(q, "j0", j0).await.unwrap());
    assert!(!b.jobs_ack(q, "j0", j0).await.unwrap());
    assert_eq!(b.jobs_get(q, "j0").await.unwrap(), None);
    assert_eq!(b.jobs_get(q, "j5").await.unwrap().unwrap().payload, b"p5");
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(1, 2, 0));
    // Queues are independent.
    assert_eq!(b.jobs_counts("other").await.unwrap(), JobCounts::default());
    assert_eq!(b.jobs_next_due("other").await.unwrap(), None);
    assert!(
        b.jobs_claim("other", T0 + 5_000, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn jobs_push_dedupes_ids_and_keys(b: Arc<dyn Backend>) {
    let q = "inbound";
    let ttl = Duration::from_secs(60);
    let with_key = |id: &str, key: &str| NewJob {
        dedupe: Some((key.to_owned(), ttl)),
        ..job(id, T0, id)
    };
    assert_eq!(
        b.jobs_push(q, &[job("a", T0, "first")], T0).await.unwrap(),
        [true]
    );
    // Same id again: no-op, payload unchanged.
    assert_eq!(
        b.jobs_push(q, &[job("a", T0, "second")], T0).await.unwrap(),
        [false]
    );
    assert_eq!(b.jobs_get(q, "a").await.unwrap().unwrap().payload, b"first");
    // Dedupe key.
    assert_eq!(
        b.jobs_push(q, &[with_key("m1-a", "wamid.1")], T0)
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(
        b.jobs_push(q, &[with_key("m1-b", "wamid.1")], T0 + 59_999)
            .await
            .unwrap(),
        [false]
    );
    assert_eq!(b.jobs_get(q, "m1-b").await.unwrap(), None);
    // The key expired: accepted again.
    assert_eq!(
        b.jobs_push(q, &[with_key("m1-c", "wamid.1")], T0 + 60_000)
            .await
            .unwrap(),
        [true]
    );
    // Dedupe keys are per queue and separate from `remember`.
    assert_eq!(
        b.jobs_push("other", &[with_key("x", "wamid.1")], T0)
            .await
            .unwrap(),
        [true]
    );
    assert!(b.remember("wamid.1", ttl, T0).await.unwrap());
    // A mixed batch: each job judged against the store and the batch before it;
    // a job rejected by id does not consume its dedupe key.
    let batch = [
        job("b1", T0, "b1"),
        job("a", T0, "dup-id"),
        job("b1", T0, "dup-in-batch"),
        with_key("a", "wamid.2"),
        with_key("b2", "wamid.2"),
        with_key("b3", "wamid.2"),
    ];
    assert_eq!(
        b.jobs_push(q, &batch, T0 + 60_000).await.unwrap(),
        [true, false, false, false, true, false]
    );
    assert_eq!(b.jobs_get(q, "b1").await.unwrap().unwrap().payload, b"b1");
    assert_eq!(b.jobs_get(q, "b3").await.unwrap(), None);
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(5, 0, 0));
    assert!(b.jobs_push(q, &[], T0).await.unwrap().is_empty());
    // An acked id may be pushed again (ids are only unique while the job exists).
    assert!(b.jobs_cancel(q, "a").await.unwrap());
    assert_eq!(
        b.jobs_push(q, &[job("a", T0, "again")], T0).await.unwrap(),
        [true]
    );
}

async fn jobs_push_replicated_pushes_alike(b: Arc<dyn Backend>) {
    // The same push (ids, dedupe keys) as `jobs_push`; the replica count is
    // what the backend has: none on one node or embedded, one per master on
    // the test cluster.
    let q = "inbound";
    // WAIT answers as soon as a replica has the push, so on the cluster the
    // bound only matters on a loaded machine (the whole suite runs at once on
    // 2 cores); it stays under the connection's 2 s response timeout. Without
    // replicas WAIT takes all of it, so keep it short there.
    let timeout = if b.name() == "redis-cluster" {
        Duration::from_millis(1_500)
    } else {
        Duration::from_millis(300)
    };
    let keyed = |id: &str, key: &str| NewJob {
        dedupe: Some((key.to_owned(), Duration::from_secs(60))),
        ..job(id, T0, id)
    };
    let want = if b.name() == "redis-cluster" { 1 } else { 0 };
    let (pushed, acked) = b
        .jobs_push_replicated(q, &[keyed("a", "m1"), keyed("b", "m2")], T0, 1, timeout)
        .await
        .unwrap();
    assert_eq!((pushed, acked), (vec![true, true], want));
    // A redelivery is a duplicate and still waits for its first push.
    let (pushed, acked) = b
        .jobs_push_replicated(q, &[keyed("c", "m1")], T0 + 1, 1, timeout)
        .await
        .unwrap();
    assert_eq!((pushed, acked), (vec![false], want));
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(2, 0, 0));
    assert_eq!(
        ids(&b.jobs_claim(q, T0, LEASE, 10).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        b.jobs_push_replicated(q, &[], T0, 1, timeout)
            .await
            .unwrap()
            .0,
        Vec::<bool>::new()
    );
}

async fn jobs_lease_expiry_reclaims_with_attempts(b: Arc<dyn Backend>) {
    let q = "work";
    b.jobs_push(q, &[job("j", T0, "p")], T0).await.unwrap();
    let first = b.jobs_claim(q, T0, LEASE, 10).await.unwrap();
    assert_eq!((ids(&first), first[0].attempts), (vec!["j"], 0));
    assert!(
        b.jobs_claim(q, T0 + 29_999, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(0, 1, 0));
    // The worker "crashed": at the lease deadline the job is claimable again,
    // under a new lease, with the crash counted.
    let again = b.jobs_claim(q, T0 + 30_000, LEASE, 10).await.unwrap();
    assert_eq!(ids(&again), ["j"]);
    assert_eq!(
        (
            again[0].attempts,
            again[0].due_ms,
            again[0].payload.as_slice()
        ),
        (1, T0, &b"p"[..])
    );
    assert_ne!(again[0].lease, first[0].lease);
    assert_eq!(b.jobs_get(q, "j").await.unwrap().unwrap().attempts, 1);
    // The old holder is fenced out: it can neither ack, retry, extend nor bury.
    let old = first[0].lease;
    assert!(!b.jobs_ack(q, "j", old).await.unwrap());
    assert!(!b.jobs_retry(q, "j", old, T0, None, true).await.unwrap());
    assert_eq!(
        b.jobs_extend(q, &[("j".into(), old)], T0 + 90_000)
            .await
            .unwrap(),
        [false]
    );
    assert!(!b.jobs_bury(q, "j", old, b"x").await.unwrap());
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(0, 1, 0));
    // Expired leases go back to pending even when the claim takes nothing.
    assert!(
        b.jobs_claim(q, T0 + 60_000, LEASE, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(1, 0, 0));
    assert_eq!(b.jobs_get(q, "j").await.unwrap().unwrap().attempts, 2);
    assert!(!b.jobs_ack(q, "j", again[0].lease).await.unwrap());
    assert!(b.jobs_cancel(q, "j").await.unwrap());
    assert_eq!(b.jobs_counts(q).await.unwrap(), JobCounts::default());
}

async fn jobs_heartbeat_keeps_the_lease(b: Arc<dyn Backend>) {
    let q = "slow";
    b.jobs_push(q, &[job("a", T0, ""), job("b", T0, "")], T0)
        .await
        .unwrap();
    let claimed = b.jobs_claim(q, T0, LEASE, 10).await.unwrap();
    let (a, bb) = (lease_of(&claimed, "a"), lease_of(&claimed, "b"));
    // A heartbeat just before the deadline extends "a"; "b" is not renewed.
    assert_eq!(
        b.jobs_extend(q, &[("a".into(), a)], T0 + 29_000 + 30_000)
            .await
            .unwrap(),
        [true]
    );
    let taken = b.jobs_claim(q, T0 + 30_000, LEASE, 10).await.unwrap();
    assert_eq!(
        ids(&taken),
        ["b"],
        "only the job without a heartbeat is taken over"
    );
    assert_eq!(
        b.jobs_extend(q, &[("a".into(), a), ("b".into(), bb)], T0 + 70_000)
            .await
            .unwrap(),
        [true, false],
        "the heartbeat learns which lease it lost"
    );
    assert!(b.jobs_ack(q, "a", a).await.unwrap());
    assert!(b.jobs_ack(q, "b", lease_of(&taken, "b")).await.unwrap());
    assert!(b.jobs_extend(q, &[], T0).await.unwrap().is_empty());
}

async fn jobs_retry_and_payload(b: Arc<dyn Backend>) {
    let q = "outbox";
    b.jobs_push(q, &[job("j", T0, "v1")], T0).await.unwrap();
    let l = b.jobs_claim(q, T0, LEASE, 1).await.unwrap()[0].lease;
    assert!(
        b.jobs_retry(q, "j", l, T0 + 500, Some(b"v2"), true)
            .await
            .unwrap()
    );
    assert!(
        !b.jobs_retry(q, "j", l, T0, None, true).await.unwrap(),
        "a settled lease cannot settle again"
    );
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(1, 0, 0));
    assert_eq!(b.jobs_next_due(q).await.unwrap(), Some(T0 + 500));
    assert!(
        b.jobs_claim(q, T0 + 499, LEASE, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let got = b.jobs_claim(q, T0 + 500, LEASE, 1).await.unwrap();
    assert_eq!(
        got,
        [Job {
            id: "j".into(),
            due_ms: T0 + 500,
            attempts: 1,
            payload: b"v2".to_vec(),
            lease: got[0].lease,
        }]
    );
    // Rescheduling without failure keeps attempts; no payload keeps the old one.
    assert!(
        b.jobs_retry(q, "j", got[0].lease, T0 + 800, None, false)
            .await
            .unwrap()
    );
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(1, 0, 0));
    let got = b.jobs_claim(q, T0 + 800, LEASE, 5).await.unwrap();
    assert_eq!(
        (got[0].attempts, got[0].due_ms, got[0].payload.as_slice()),
        (1, T0 + 800, &b"v2"[..])
    );
    assert!(!b.jobs_retry(q, "missing", 1, T0, None, true).await.unwrap());
    assert_eq!(b.jobs_get(q, "missing").await.unwrap(), None);
}

async fn jobs_bury_keeps_dead_letters(b: Arc<dyn Backend>) {
    let q = "timers";
    b.jobs_push(q, &[job("x", T0, "px"), job("y", T0, "py")], T0)
        .await
        .unwrap();
    let claimed = b.jobs_claim(q, T0, LEASE, 10).await.unwrap();
    assert!(
        b.jobs_bury(q, "x", lease_of(&claimed, "x"), b"entry-x")
            .await
            .unwrap()
    );
    assert!(
        b.jobs_bury(q, "y", lease_of(&claimed, "y"), b"entry-y")
            .await
            .unwrap()
    );
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(0, 0, 2));
    assert_eq!(b.jobs_get(q, "x").await.unwrap(), None);
    assert_eq!(
        b.jobs_dead(q, 0, 10).await.unwrap(),
        [b"entry-x".to_vec(), b"entry-y".to_vec()]
    );
    assert_eq!(b.jobs_dead(q, 1, 10).await.unwrap(), [b"entry-y".to_vec()]);
    assert!(b.jobs_dead(q, 0, 0).await.unwrap().is_empty());
    assert!(b.jobs_dead("other", 0, 10).await.unwrap().is_empty());
    // The id may be used again.
    assert_eq!(
        b.jobs_push(q, &[job("x", T0, "again")], T0).await.unwrap(),
        [true]
    );
}

async fn jobs_cancel_anywhere(b: Arc<dyn Backend>) {
    let q = "broadcast";
    b.jobs_push(q, &[job("p", T0 + 1_000, ""), job("l", T0, "")], T0)
        .await
        .unwrap();
    let claimed = b.jobs_claim(q, T0, LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["l"]);
    assert!(b.jobs_cancel(q, "p").await.unwrap());
    assert!(b.jobs_cancel(q, "l").await.unwrap());
    assert!(!b.jobs_cancel(q, "l").await.unwrap());
    assert_eq!(b.jobs_counts(q).await.unwrap(), JobCounts::default());
    assert_eq!(b.jobs_next_due(q).await.unwrap(), None);
    assert!(
        b.jobs_claim(q, T0 + 100_000, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let l = claimed[0].lease;
    assert!(!b.jobs_ack(q, "l", l).await.unwrap());
    assert!(!b.jobs_retry(q, "l", l, T0, None, false).await.unwrap());
}

async fn index_basics_and_ties(b: Arc<dyn Backend>) {
    let i = "waiting:general";
    for (m, s) in [
        ("a", 2.0),
        ("c", 1.0),
        ("b", 1.0),
        ("d", 3.5),
        ("neg", -7.25),
    ] {
        b.index_put(i, m, s).await.unwrap();
    }
    let all = b
        .index_range(i, f64::NEG_INFINITY, f64::INFINITY, 100)
        .await
        .unwrap();
    let want: Vec<(String, f64)> = [
        ("neg", -7.25),
        ("b", 1.0),
        ("c", 1.0),
        ("a", 2.0),
        ("d", 3.5),
    ]
    .map(|(m, s)| (m.to_owned(), s))
    .to_vec();
    assert_eq!(all, want);
    assert_eq!(
        b.index_range(i, 1.0, 2.0, 100).await.unwrap(),
        want[1..4].to_vec()
    );
    assert_eq!(
        b.index_range(i, 1.0, 2.0, 2).await.unwrap(),
        want[1..3].to_vec()
    );
    assert!(b.index_range(i, 1.0, 2.0, 0).await.unwrap().is_empty());
    assert!(b.index_range(i, 2.1, 3.4, 10).await.unwrap().is_empty());
    assert!(b.index_range(i, 5.0, 1.0, 10).await.unwrap().is_empty());
    assert_eq!(b.index_rank(i, "neg").await.unwrap(), Some(0));
    assert_eq!(b.index_rank(i, "c").await.unwrap(), Some(2));
    assert_eq!(b.index_rank(i, "d").await.unwrap(), Some(4));
    assert_eq!(b.index_rank(i, "zz").await.unwrap(), None);
    assert_eq!(b.index_score(i, "d").await.unwrap(), Some(3.5));
    assert_eq!(b.index_score(i, "zz").await.unwrap(), None);
    assert_eq!(b.index_len(i).await.unwrap(), 5);
    // Re-scoring moves without duplicating.
    b.index_put(i, "d", -100.0).await.unwrap();
    assert_eq!(b.index_rank(i, "d").await.unwrap(), Some(0));
    assert_eq!(b.index_len(i).await.unwrap(), 5);
    // Large timestamps keep full precision.
    let ts = (T0 as f64) + 0.5;
    b.index_put(i, "ts", ts).await.unwrap();
    assert_eq!(b.index_score(i, "ts").await.unwrap(), Some(ts));
    assert!(b.index_remove(i, "d").await.unwrap());
    assert!(!b.index_remove(i, "d").await.unwrap());
    assert_eq!(b.index_len(i).await.unwrap(), 5);
    assert_eq!(b.index_len("empty").await.unwrap(), 0);
    assert!(
        b.index_range("empty", 0.0, 1.0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Indexes are independent, even with prefix-like names.
    b.index_put("waiting", "x", 1.0).await.unwrap();
    assert_eq!(b.index_len("waiting").await.unwrap(), 1);
    assert_eq!(b.index_len(i).await.unwrap(), 5);
    assert!(b.index_put(i, "nan", f64::NAN).await.is_err());
}

async fn index_pop_min_into_order_and_capacity(b: Arc<dyn Backend>) {
    // The indexes and the holder share a hash tag: one atomic step may combine them.
    let (q1, q2) = ("{desk}q:vip".to_owned(), "{desk}q:general".to_owned());
    const HOLDER: &str = "{desk}agent:1";
    b.index_put(&q1, "a", 3.0).await.unwrap();
    b.index_put(&q1, "b", 10.0).await.unwrap();
    b.index_put(&q2, "c", 3.0).await.unwrap();
    b.index_put(&q2, "d", 1.0).await.unwrap();
    let both = [q1.clone(), q2.clone()];
    let pop = |cap| {
        let (b, both) = (Arc::clone(&b), both.clone());
        async move {
            b.index_pop_min_into(&both, HOLDER, cap, 42.0)
                .await
                .unwrap()
        }
    };
    assert_eq!(pop(3).await, Some((q2.clone(), "d".into())));
    // Tie at 3.0: the earlier index wins.
    assert_eq!(pop(3).await, Some((q1.clone(), "a".into())));
    assert_eq!(pop(3).await, Some((q2.clone(), "c".into())));
    // The holder is full.
    assert_eq!(pop(3).await, None);
    assert_eq!(b.index_len(HOLDER).await.unwrap(), 3);
    assert_eq!(b.index_score(HOLDER, "a").await.unwrap(), Some(42.0));
    assert_eq!(b.index_score(&q1, "a").await.unwrap(), None);
    assert_eq!(b.index_len(&q1).await.unwrap(), 1);
    assert_eq!(pop(4).await, Some((q1.clone(), "b".into())));
    // Every index empty.
    assert_eq!(pop(10).await, None);
    assert_eq!(
        b.index_pop_min_into(&[], HOLDER, 10, 0.0).await.unwrap(),
        None
    );
    assert_eq!(b.index_len(HOLDER).await.unwrap(), 4);
    assert_eq!(b.index_len(&q2).await.unwrap(), 0);
}

async fn index_move_checks_source_and_capacity(b: Arc<dyn Backend>) {
    b.index_put("{h}waiting:q", "c1", 5.0).await.unwrap();
    b.index_put("{h}waiting:q", "c2", 6.0).await.unwrap();
    b.index_put("{h}active:siti", "c0", 1.0).await.unwrap();
    let mv = |m: &'static str, to: &'static str, cap: u64| {
        let b = Arc::clone(&b);
        async move { b.index_move("{h}waiting:q", m, to, cap, 9.0).await.unwrap() }
    };
    assert_eq!(mv("c1", "{h}active:siti", 1).await, MoveOutcome::Full);
    assert_eq!(
        b.index_score("{h}waiting:q", "c1").await.unwrap(),
        Some(5.0),
        "nothing moved"
    );
    assert_eq!(mv("c1", "{h}active:siti", 2).await, MoveOutcome::Moved);
    assert_eq!(
        b.index_score("{h}active:siti", "c1").await.unwrap(),
        Some(9.0)
    );
    assert_eq!(b.index_score("{h}waiting:q", "c1").await.unwrap(), None);
    assert_eq!(b.index_len("{h}active:siti").await.unwrap(), 2);
    assert_eq!(b.index_len("{h}waiting:q").await.unwrap(), 1);
    assert_eq!(
        mv("c1", "{h}active:budi", 5).await,
        MoveOutcome::NotInSource
    );
    assert_eq!(
        mv("nope", "{h}active:budi", 5).await,
        MoveOutcome::NotInSource
    );
    assert_eq!(b.index_len("{h}active:budi").await.unwrap(), 0);
    assert_eq!(
        mv("c2", "{h}active:budi", u64::MAX).await,
        MoveOutcome::Moved
    );
    assert!(
        b.index_move("{h}waiting:q", "c2", "{h}x", 1, f64::NAN)
            .await
            .is_err()
    );
}

async fn index_put_many_across_indexes(b: Arc<dyn Backend>) {
    let e = |i: &str, m: &str, s: f64| (i.to_string(), m.to_string(), s);
    b.index_put_many(&[]).await.unwrap();
    b.index_put("search:a", "c1", 1.0).await.unwrap();
    // Untagged keys of different slots in one call: not atomic, so allowed.
    b.index_put_many(&[
        e("search:a", "c1", -5.0),
        e("search:a", "c2", -4.0),
        e("search:b", "c1", -5.0),
        e("{h}x", "c3", 0.0),
    ])
    .await
    .unwrap();
    assert_eq!(b.index_score("search:a", "c1").await.unwrap(), Some(-5.0));
    assert_eq!(b.index_len("search:a").await.unwrap(), 2);
    assert_eq!(
        b.index_range("search:a", f64::MIN, f64::MAX, 10)
            .await
            .unwrap(),
        [("c1".to_string(), -5.0), ("c2".to_string(), -4.0)]
    );
    assert_eq!(b.index_len("search:b").await.unwrap(), 1);
    assert_eq!(b.index_score("{h}x", "c3").await.unwrap(), Some(0.0));
    // A NaN anywhere: refused, nothing written.
    assert!(
        b.index_put_many(&[e("search:c", "c1", 1.0), e("search:c", "c2", f64::NAN)])
            .await
            .is_err()
    );
    assert_eq!(b.index_len("search:c").await.unwrap(), 0);
}

async fn concurrent_index_move_moves_once(b: Arc<dyn Backend>) {
    for i in 0..40 {
        b.index_put("{h}waiting:q", &format!("c{i:02}"), i as f64)
            .await
            .unwrap();
    }
    // Eight agents with room for three each race for every conversation.
    let mut handles = Vec::new();
    for t in 0..8 {
        let b = Arc::clone(&b);
        handles.push(tokio::spawn(async move {
            let holder = format!("{{h}}active:{t}");
            let mut mine = Vec::new();
            for i in 0..40 {
                let m = format!("c{i:02}");
                if b.index_move("{h}waiting:q", &m, &holder, 3, 0.0)
                    .await
                    .unwrap()
                    == MoveOutcome::Moved
                {
                    mine.push(m);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        let mine = h.await.unwrap();
        assert!(mine.len() <= 3, "over capacity: {mine:?}");
        all.extend(mine);
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "nothing moved twice");
    assert_eq!(all.len(), 24);
    assert_eq!(b.index_len("{h}waiting:q").await.unwrap(), 16);
}

async fn lists(b: Arc<dyn Backend>) {
    let k = "transcript:1";
    assert_eq!(b.list_len(k).await.unwrap(), 0);
    assert!(b.list_range(k, 0, 10).await.unwrap().is_empty());
    assert_eq!(b.list_push(k, b"one").await.unwrap(), 1);
    assert_eq!(b.list_push(k, &[0, 1, 255]).await.unwrap(), 2);
    assert_eq!(b.list_push(k, b"three").await.unwrap(), 3);
    assert_eq!(b.list_len(k).await.unwrap(), 3);
    let all = b.list_range(k, 0, 10).await.unwrap();
    assert_eq!(
        all,
        vec![b"one".to_vec(), vec![0, 1, 255], b"three".to_vec()]
    );
    assert_eq!(b.list_range(k, 1, 1).await.unwrap(), vec![vec![0, 1, 255]]);
    assert_eq!(
        b.list_range(k, 2, 5).await.unwrap(),
        vec![b"three".to_vec()]
    );
    assert!(b.list_range(k, 3, 5).await.unwrap().is_empty());
    assert!(b.list_range(k, 0, 0).await.unwrap().is_empty());
    assert!(
        b.list_range(k, u64::MAX, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.list_len("transcript:10").await.unwrap(), 0);
}

async fn locks(b: Arc<dyn Backend>) {
    let ttl = Duration::from_secs(10);
    assert!(b.lock("l", "A", ttl, T0).await.unwrap());
    assert!(!b.lock("l", "B", ttl, T0 + 1).await.unwrap());
    // The owner extends until T0 + 15 s.
    assert!(b.lock("l", "A", ttl, T0 + 5_000).await.unwrap());
    assert!(!b.lock("l", "B", ttl, T0 + 12_000).await.unwrap());
    assert!(
        b.lock("l", "B", ttl, T0 + 15_000).await.unwrap(),
        "expired lock is free"
    );
    assert!(!b.unlock("l", "A").await.unwrap());
    assert!(b.unlock("l", "B").await.unwrap());
    assert!(!b.unlock("l", "B").await.unwrap());
    assert!(b.lock("l", "A", ttl, T0 + 15_001).await.unwrap());
    assert!(b.lock("other", "B", ttl, T0).await.unwrap());
}

async fn rate_take_gcra(b: Arc<dyn Backend>) {
    // 10/s = one every 100 ms, burst 3.
    let take = |now| {
        let b = Arc::clone(&b);
        async move { b.rate_take("wa:phone1", 10.0, 3, now).await.unwrap() }
    };
    assert_eq!(take(T0).await, 0);
    assert_eq!(take(T0).await, 0);
    assert_eq!(take(T0).await, 0);
    assert_eq!(take(T0).await, 100);
    // Refusals reserve nothing, and the wait shrinks as time passes.
    assert_eq!(take(T0 + 40).await, 60);
    assert_eq!(take(T0 + 99).await, 1);
    assert_eq!(take(T0 + 100).await, 0);
    assert_eq!(take(T0 + 100).await, 100);
    // After a long pause the full burst is available again.
    for _ in 0..3 {
        assert_eq!(take(T0 + 10_000).await, 0);
    }
    assert!(take(T0 + 10_000).await > 0);
    // Fractional rates, keys independent.
    assert_eq!(b.rate_take("slow", 0.5, 1, T0).await.unwrap(), 0);
    assert_eq!(b.rate_take("slow", 0.5, 1, T0 + 1).await.unwrap(), 1_999);
    assert!(b.rate_take("bad", 0.0, 1, T0).await.is_err());
    assert!(b.rate_take("bad", f64::NAN, 1, T0).await.is_err());
}

async fn counters(b: Arc<dyn Backend>) {
    assert_eq!(b.counter_get("sent").await.unwrap(), 0);
    assert_eq!(b.counter_add("sent", 5).await.unwrap(), 5);
    assert_eq!(b.counter_add("sent", -7).await.unwrap(), -2);
    assert_eq!(b.counter_get("sent").await.unwrap(), -2);
    assert_eq!(b.counter_get("other").await.unwrap(), 0);
}

async fn publish_subscribe(b: Arc<dyn Backend>) {
    let mut rx = b.subscribe("events").await.unwrap();
    let mut other = b.subscribe("other").await.unwrap();
    b.publish("nobody-listens", b"x").await.unwrap();
    for i in 0..3u8 {
        b.publish("events", &[i]).await.unwrap();
    }
    for i in 0..3u8 {
        let msg = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap();
        assert_eq!(msg, Some(vec![i]));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(100), other.recv())
            .await
            .is_err()
    );
    drop(rx);
    drop(other);
    b.publish("events", b"after").await.unwrap();
    let mut again = b.subscribe("events").await.unwrap();
    b.publish("events", b"new").await.unwrap();
    // A message published just before subscribing may arrive first (a
    // process shares one subscription); everything after does, in order.
    let mut msg = tokio::time::timeout(Duration::from_secs(2), again.recv())
        .await
        .unwrap();
    if msg.as_deref() == Some(b"after".as_slice()) {
        msg = tokio::time::timeout(Duration::from_secs(2), again.recv())
            .await
            .unwrap();
    }
    assert_eq!(msg, Some(b"new".to_vec()));
}

async fn claim_all(b: Arc<dyn Backend>, q: &'static str, tasks: usize) -> Vec<String> {
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let b = Arc::clone(&b);
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = b.jobs_claim(q, T0, LEASE, 5).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all
}

async fn push_many(b: &Arc<dyn Backend>, q: &str, n: usize) {
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| job(&format!("job-{i:04}"), T0 - (i % 7) as i64, ""))
        .collect();
    for chunk in jobs.chunks(100) {
        assert!(
            b.jobs_push(q, chunk, T0)
                .await
                .unwrap()
                .iter()
                .all(|&ok| ok)
        );
    }
}

async fn concurrent_claims_never_duplicate(b: Arc<dyn Backend>) {
    push_many(&b, "race", 500).await;
    let all = claim_all(Arc::clone(&b), "race", 32).await;
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 500, "every job claimed once");
    assert_eq!(unique.len(), 500);
    assert_eq!(b.jobs_counts("race").await.unwrap(), counts(0, 500, 0));
}

async fn concurrent_pop_min_into_respects_capacity(b: Arc<dyn Backend>) {
    let indexes = vec!["{desk}wait:a".to_owned(), "{desk}wait:b".to_owned()];
    for i in 0..200 {
        b.index_put(&indexes[i % 2], &format!("conv-{i:03}"), (i % 13) as f64)
            .await
            .unwrap();
    }
    const HOLDERS: usize = 8;
    const CAPACITY: u64 = 20;
    let mut handles = Vec::new();
    for t in 0..16 {
        let (b, indexes) = (Arc::clone(&b), indexes.clone());
        handles.push(tokio::spawn(async move {
            let holder = format!("{{desk}}agent:{}", t % HOLDERS);
            let mut mine = Vec::new();
            while let Some((_, member)) = b
                .index_pop_min_into(&indexes, &holder, CAPACITY, 1.0)
                .await
                .unwrap()
            {
                mine.push(member);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no member popped twice");
    assert_eq!(all.len(), HOLDERS * CAPACITY as usize);
    for h in 0..HOLDERS {
        assert_eq!(
            b.index_len(&format!("{{desk}}agent:{h}")).await.unwrap(),
            CAPACITY
        );
    }
    let left =
        b.index_len("{desk}wait:a").await.unwrap() + b.index_len("{desk}wait:b").await.unwrap();
    assert_eq!(left, 200 - (HOLDERS as u64 * CAPACITY));
    // The lowest scores went first: everything left scores >= everything taken.
    let max_taken = all
        .iter()
        .map(|m| m[5..].parse::<usize>().unwrap() % 13)
        .max()
        .unwrap();
    for i in &indexes {
        for (m, s) in b
            .index_range(i, f64::NEG_INFINITY, f64::INFINITY, 1_000)
            .await
            .unwrap()
        {
            assert!(s >= max_taken as f64, "{m} at {s} left behind");
        }
    }
}

async fn concurrent_doc_cas_increments(b: Arc<dyn Backend>) {
    assert_eq!(b.doc_put("count", 0, b"0").await.unwrap(), Some(1));
    let mut handles = Vec::new();
    for _ in 0..16 {
        let b = Arc::clone(&b);
        handles.push(tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let d = b.doc_get("count").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&d.data).unwrap().parse().unwrap();
                    let next = (n + 1).to_string();
                    if b.doc_put("count", d.version, next.as_bytes())
                        .await
                        .unwrap()
                        .is_some()
                    {
                        break;
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let d = b.doc_get("count").await.unwrap().unwrap();
    assert_eq!((d.version, d.data), (161, b"160".to_vec()));
}

async fn index_range_rev_descends(b: Arc<dyn Backend>) {
    let i = "audit:all";
    for (m, s) in [
        ("a", 2.0),
        ("c", 1.0),
        ("b", 1.0),
        ("d", 3.5),
        ("neg", -7.25),
    ] {
        b.index_put(i, m, s).await.unwrap();
    }
    let all = b
        .index_range_rev(i, f64::NEG_INFINITY, f64::INFINITY, 100)
        .await
        .unwrap();
    let want: Vec<(String, f64)> = [
        ("d", 3.5),
        ("a", 2.0),
        ("c", 1.0),
        ("b", 1.0),
        ("neg", -7.25),
    ]
    .map(|(m, s)| (m.to_owned(), s))
    .to_vec();
    assert_eq!(all, want, "score descending, ties by member descending");
    // Exactly the reverse of the ascending order.
    let mut up = b
        .index_range(i, f64::NEG_INFINITY, f64::INFINITY, 100)
        .await
        .unwrap();
    up.reverse();
    assert_eq!(up, want);
    assert_eq!(
        b.index_range_rev(i, 1.0, 2.0, 100).await.unwrap(),
        want[1..4].to_vec()
    );
    assert_eq!(
        b.index_range_rev(i, 1.0, 2.0, 2).await.unwrap(),
        want[1..3].to_vec()
    );
    assert_eq!(
        b.index_range_rev(i, f64::NEG_INFINITY, 1.0, 1)
            .await
            .unwrap(),
        want[2..3].to_vec()
    );
    assert!(b.index_range_rev(i, 1.0, 2.0, 0).await.unwrap().is_empty());
    assert!(b.index_range_rev(i, 5.0, 1.0, 10).await.unwrap().is_empty());
    assert!(
        b.index_range_rev("empty", 0.0, 1.0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(b.index_range_rev(i, f64::NAN, 1.0, 10).await.is_err());
    // Large timestamps keep full precision and order.
    let j = "audit:time";
    for n in 0..5 {
        b.index_put(j, &format!("{n:016}"), (T0 + n / 2) as f64)
            .await
            .unwrap();
    }
    let page: Vec<String> = b
        .index_range_rev(j, T0 as f64, (T0 + 1) as f64, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(
        page,
        [
            "0000000000000003",
            "0000000000000002",
            "0000000000000001",
            "0000000000000000"
        ]
    );
}

async fn lists_set_in_place_and_delete(b: Arc<dyn Backend>) {
    let k = "broadcast:b1:recipients";
    for item in [&b"one"[..], b"two", b"three"] {
        b.list_push(k, item).await.unwrap();
    }
    assert!(b.list_set(k, 1, b"TWO").await.unwrap());
    assert!(b.list_set(k, 0, &[0, 255]).await.unwrap());
    assert_eq!(
        b.list_range(k, 0, 10).await.unwrap(),
        [vec![0, 255], b"TWO".to_vec(), b"three".to_vec()]
    );
    assert_eq!(b.list_len(k).await.unwrap(), 3);
    // Nothing past the end, nothing in a missing list.
    assert!(!b.list_set(k, 3, b"four").await.unwrap());
    assert!(!b.list_set(k, u64::MAX, b"x").await.unwrap());
    assert!(!b.list_set("missing", 0, b"x").await.unwrap());
    assert_eq!(b.list_len(k).await.unwrap(), 3);
    assert_eq!(b.list_len("missing").await.unwrap(), 0);
    // Deleting leaves nothing, and the next push starts over.
    b.list_push("transcript:kept", b"x").await.unwrap();
    assert!(b.list_delete(k).await.unwrap());
    assert!(!b.list_delete(k).await.unwrap());
    assert_eq!(b.list_len(k).await.unwrap(), 0);
    assert!(b.list_range(k, 0, 10).await.unwrap().is_empty());
    assert_eq!(b.list_push(k, b"again").await.unwrap(), 1);
    assert_eq!(b.list_range(k, 0, 10).await.unwrap(), [b"again".to_vec()]);
    // Other lists are untouched, even with a prefix-like name.
    assert_eq!(
        b.list_range("transcript:kept", 0, 10).await.unwrap(),
        [b"x".to_vec()]
    );
}

async fn jobs_dead_remove_any_entry(b: Arc<dyn Backend>) {
    let q = "inbound";
    let bury = |id: &'static str, entry: &'static [u8]| {
        let b = Arc::clone(&b);
        async move {
            b.jobs_push(q, &[job(id, T0, "p")], T0).await.unwrap();
            let claimed = b.jobs_claim(q, T0, LEASE, 10).await.unwrap();
            assert!(
                b.jobs_bury(q, id, lease_of(&claimed, id), entry)
                    .await
                    .unwrap()
            );
        }
    };
    bury("x", b"entry-x").await;
    bury("y", b"entry-y").await;
    bury("z", b"entry-z").await;
    assert!(b.jobs_dead_remove(q, b"entry-y").await.unwrap());
    assert!(!b.jobs_dead_remove(q, b"entry-y").await.unwrap());
    assert!(!b.jobs_dead_remove("other", b"entry-x").await.unwrap());
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(0, 0, 2));
    assert_eq!(
        b.jobs_dead(q, 0, 10).await.unwrap(),
        [b"entry-x".to_vec(), b"entry-z".to_vec()]
    );
    assert_eq!(b.jobs_dead(q, 1, 10).await.unwrap(), [b"entry-z".to_vec()]);
    // New entries go after the last one, whatever was removed before.
    bury("w", b"entry-w").await;
    assert!(b.jobs_dead_remove(q, b"entry-x").await.unwrap());
    assert_eq!(
        b.jobs_dead(q, 0, 10).await.unwrap(),
        [b"entry-z".to_vec(), b"entry-w".to_vec()]
    );
    bury("v", b"entry-v").await;
    assert_eq!(
        b.jobs_dead(q, 0, 10).await.unwrap(),
        [
            b"entry-z".to_vec(),
            b"entry-w".to_vec(),
            b"entry-v".to_vec()
        ]
    );
    assert_eq!(b.jobs_dead(q, 2, 1).await.unwrap(), [b"entry-v".to_vec()]);
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(0, 0, 3));
    // Equal entries: one at a time, oldest first.
    bury("u", b"entry-z").await;
    assert!(b.jobs_dead_remove(q, b"entry-z").await.unwrap());
    assert_eq!(
        b.jobs_dead(q, 0, 10).await.unwrap(),
        [
            b"entry-w".to_vec(),
            b"entry-v".to_vec(),
            b"entry-z".to_vec()
        ]
    );
    assert_eq!(b.jobs_counts(q).await.unwrap(), counts(0, 0, 3));
}

async fn rate_reset_forgets(b: Arc<dyn Backend>) {
    for _ in 0..2 {
        assert_eq!(
            b.rate_take("pair:whatsapp:62", 1.0, 2, T0).await.unwrap(),
            0
        );
    }
    assert!(b.rate_take("pair:whatsapp:62", 1.0, 2, T0).await.unwrap() > 0);
    assert!(b.rate_take("pair:whatsapp:63", 1.0, 1, T0).await.unwrap() == 0);
    b.rate_reset("pair:whatsapp:62").await.unwrap();
    b.rate_reset("never-used").await.unwrap();
    assert_eq!(
        b.rate_take("pair:whatsapp:62", 1.0, 2, T0).await.unwrap(),
        0
    );
    // Other keys keep their state.
    assert!(b.rate_take("pair:whatsapp:63", 1.0, 1, T0).await.unwrap() > 0);
}

/// Every entry of a raw scan, page by page (`limit` keys a page).
async fn scan_all(b: &Arc<dyn Backend>, limit: usize) -> Vec<balas::store::RawEntry> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100_000 {
        let (page, next) = b.scan(&cursor, limit).await.unwrap();
        all.extend(page);
        match next {
            Some(n) => cursor = n,
            None => return all,
        }
    }
    panic!("the scan never ended");
}

async fn purge_expired_keeps_every_answer(b: Arc<dyn Backend>) {
    let ttl = Duration::from_secs(10);
    for i in 0..20 {
        assert!(b.remember(&format!("seen-{i}"), ttl, T0).await.unwrap());
        assert!(b.lock(&format!("lock-{i}"), "A", ttl, T0).await.unwrap());
        assert_eq!(
            b.rate_take(&format!("rate-{i}"), 1.0, 1, T0).await.unwrap(),
            0
        );
    }
    // Nothing has expired yet: purging changes no answer.
    for _ in 0..5 {
        b.purge_expired(T0 + 500, 7).await.unwrap();
    }
    assert!(!b.remember("seen-3", ttl, T0 + 500).await.unwrap());
    assert!(!b.lock("lock-3", "B", ttl, T0 + 500).await.unwrap());
    assert!(b.rate_take("rate-3", 1.0, 1, T0 + 500).await.unwrap() > 0);
    // Everything expired: bounded steps purge it all.
    let later = T0 + 60_000;
    let mut purged = 0;
    for _ in 0..50 {
        purged += b.purge_expired(later, 7).await.unwrap();
    }
    if b.name() == "embedded" {
        assert!(purged >= 60, "purged {purged}");
        let left: Vec<String> = scan_all(&b, 50)
            .await
            .into_iter()
            .map(|e| e.key)
            .filter(|k| k.contains("seen-") || k.contains("lock-") || k.contains("rate-"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    } else {
        assert_eq!(purged, 0, "Redis expires keys by itself");
    }
    assert!(b.remember("seen-3", ttl, later).await.unwrap());
    assert!(b.lock("lock-3", "B", ttl, later).await.unwrap());
    assert_eq!(b.rate_take("rate-3", 1.0, 1, later).await.unwrap(), 0);
}

async fn scan_sees_every_key_and_value(b: Arc<dyn Backend>) {
    b.doc_put("contact:whatsapp:6281", 0, b"{\"name\":\"Dewi\"}")
        .await
        .unwrap();
    b.list_push("transcript:c1", b"hello from Dewi")
        .await
        .unwrap();
    b.index_put("contacts:by_last_inbound", "whatsapp:6281", 1.0)
        .await
        .unwrap();
    b.counter_add("outcount:x", 3).await.unwrap();
    b.remember("transcribed:m1", Duration::from_secs(60), T0)
        .await
        .unwrap();
    b.lock(
        "lock:contact:whatsapp:6281",
        "me",
        Duration::from_secs(60),
        T0,
    )
    .await
    .unwrap();
    b.rate_take("pair:whatsapp:6281", 1.0, 1, T0).await.unwrap();
    b.jobs_push("inbound", &[job("j1", T0, "payload of 6281")], T0)
        .await
        .unwrap();
    for i in 0..30 {
        b.doc_put(&format!("filler:{i}"), 0, b"x").await.unwrap();
    }
    let all = scan_all(&b, 4).await;
    let has_key = |part: &str| all.iter().any(|e| e.key.contains(part));
    let has_value = |part: &[u8]| {
        all.iter().any(|e| {
            e.values
                .iter()
                .any(|v| v.windows(part.len()).any(|w| w == part))
        })
    };
    for key in [
        "contact:whatsapp:6281",
        "transcript:c1",
        "contacts:by_last_inbound",
        "outcount:x",
        "transcribed:m1",
        "filler:29",
    ] {
        assert!(has_key(key), "no key {key}");
    }
    // Locks and limiter states are stored on Redis; the embedded store keeps
    // them in memory (only one process opens its file), so they are not in
    // the file to be scanned.
    if b.name() != "embedded" {
        for key in ["lock:contact:whatsapp:6281", "pair:whatsapp:6281"] {
            assert!(has_key(key), "no key {key}");
        }
    }
    for value in [&b"Dewi\"}"[..], b"hello from Dewi", b"payload of 6281"] {
        assert!(
            has_value(value),
            "no value {}",
            String::from_utf8_lossy(value)
        );
    }
    // An index member is a value (Redis) or part of the key (embedded): one
    // of the two, so a search of keys and values finds it.
    assert!(
        has_value(b"whatsapp:6281")
            || all
                .iter()
                .any(|e| e.key.contains("contacts:by_last_inbound")
                    && e.key.contains("whatsapp:6281"))
    );
    // Each key once, however the pages fall.
    let mut keys: Vec<&String> = all.iter().map(|e| &e.key).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "a key came twice");
}

// ---- Redis only ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_instances_on_one_server_act_as_one() {
    let server = RedisServer::start();
    let a: Arc<dyn Backend> = Arc::new(RedisBackend::connect(&server.url(), PREFIX).await.unwrap());
    let b: Arc<dyn Backend> = Arc::new(RedisBackend::connect(&server.url(), PREFIX).await.unwrap());
    push_many(&a, "shared", 300).await;
    let (x, y) = tokio::join!(
        claim_all(Arc::clone(&a), "shared", 8),
        claim_all(Arc::clone(&b), "shared", 8)
    );
    assert!(
        !x.is_empty() && !y.is_empty(),
        "both instances claimed some"
    );
    let all: Vec<String> = x.into_iter().chain(y).collect();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (300, 300));
    assert_eq!(a.doc_put("d", 0, b"x").await.unwrap(), Some(1));
    assert_eq!(b.doc_put("d", 0, b"y").await.unwrap(), None);
    assert_eq!(b.doc_get("d").await.unwrap().unwrap().data, b"x");
    // Another prefix is another store, also to a raw scan.
    let c: Arc<dyn Backend> = Arc::new(
        RedisBackend::connect(&server.url(), "other-prefix")
            .await
            .unwrap(),
    );
    assert_eq!(c.doc_get("d").await.unwrap(), None);
    c.doc_put("mine", 0, b"z").await.unwrap();
    let theirs = scan_all(&c, 10).await;
    assert!(theirs.iter().all(|e| e.key.starts_with("other-prefix:")));
    assert_eq!(theirs.len(), 1);
    assert!(
        scan_all(&a, 10)
            .await
            .iter()
            .all(|e| !e.key.contains("mine"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_survives_kill_9_with_appendfsync() {
    let mut server = RedisServer::start();
    {
        let b = RedisBackend::connect(&server.url(), PREFIX).await.unwrap();
        b.jobs_push("q", &[job("j", T0, "p")], T0).await.unwrap();
        b.doc_put("d", 0, b"kept").await.unwrap();
    }
    server.restart();
    let b = RedisBackend::connect(&server.url(), PREFIX).await.unwrap();
    assert_eq!(b.doc_get("d").await.unwrap().unwrap().data, b"kept");
    assert_eq!(ids(&b.jobs_claim("q", T0, LEASE, 10).await.unwrap()), ["j"]);
}

#[tokio::test]
async fn redis_unreachable_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = RedisBackend::connect(&format!("redis://127.0.0.1:{port}/0"), PREFIX)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = RedisBackend::connect("redis://127.0.0.1:1/0", "bad{prefix")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

// ---- Redis Cluster only -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_two_instances_act_as_one() {
    let (nodes, prefix) = (RedisCluster::shared().urls(), unique_prefix());
    let a: Arc<dyn Backend> = Arc::new(
        RedisBackend::connect_cluster(&nodes, &prefix)
            .await
            .unwrap(),
    );
    // The second instance knows only the last seed node: it learns the rest.
    let b: Arc<dyn Backend> = Arc::new(
        RedisBackend::connect_cluster(&nodes[1..], &prefix)
            .await
            .unwrap(),
    );
    push_many(&a, "shared", 300).await;
    let (x, y) = tokio::join!(
        claim_all(Arc::clone(&a), "shared", 8),
        claim_all(Arc::clone(&b), "shared", 8)
    );
    let all: Vec<String> = x.into_iter().chain(y).collect();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (300, 300));
    // Documents of many slots, read back in one call, in order.
    let keys: Vec<String> = (0..50).map(|i| format!("doc-{i}")).collect();
    for k in &keys {
        assert_eq!(a.doc_put(k, 0, k.as_bytes()).await.unwrap(), Some(1));
    }
    let got = b.doc_get_many(&keys).await.unwrap();
    for (k, d) in keys.iter().zip(got) {
        assert_eq!(d.unwrap().data, k.as_bytes());
    }
}

#[tokio::test]
async fn cluster_unreachable_or_misconfigured_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = RedisBackend::connect_cluster(&[format!("redis://127.0.0.1:{port}/")], PREFIX)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    let err = RedisBackend::connect_cluster(&[], PREFIX)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no cluster seed nodes"), "{err}");
    // A password in a URL never shows in the error.
    let err =
        RedisBackend::connect_cluster(&[format!("redis://:s3cret@127.0.0.1:{port}/")], PREFIX)
            .await
            .unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

// ---- embedded only ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let b = EmbeddedBackend::open(dir.path()).unwrap();
        b.jobs_push("q", &[job("j", T0, "p")], T0).await.unwrap();
        b.doc_put("d", 0, b"kept").await.unwrap();
        b.index_put("i", "m", 2.5).await.unwrap();
        b.list_push("l", b"item").await.unwrap();
        b.counter_add("c", 3).await.unwrap();
        assert!(
            b.remember("seen", Duration::from_secs(60), T0)
                .await
                .unwrap()
        );
    }
    let b = EmbeddedBackend::open(dir.path()).unwrap();
    assert_eq!(b.doc_get("d").await.unwrap().unwrap().data, b"kept");
    assert_eq!(ids(&b.jobs_claim("q", T0, LEASE, 10).await.unwrap()), ["j"]);
    assert_eq!(b.index_score("i", "m").await.unwrap(), Some(2.5));
    assert_eq!(
        b.list_range("l", 0, 10).await.unwrap(),
        vec![b"item".to_vec()]
    );
    assert_eq!(b.counter_get("c").await.unwrap(), 3);
    assert!(
        !b.remember("seen", Duration::from_secs(60), T0 + 1)
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_reopen_releases_the_previous_runs_leases() {
    let dir = tempfile::tempdir().unwrap();
    let old_lease = {
        let b = EmbeddedBackend::open(dir.path()).unwrap();
        b.jobs_push("q", &[job("held", T0, "p"), job("free", T0 + 1, "f")], T0)
            .await
            .unwrap();
        let claimed = b.jobs_claim("q", T0, LEASE, 1).await.unwrap();
        assert_eq!(ids(&claimed), ["held"]);
        assert_eq!(b.jobs_counts("q").await.unwrap(), counts(1, 1, 0));
        claimed[0].lease
        // Dropped here without settling: the process "died" holding the lease.
    };
    let b = EmbeddedBackend::open(dir.path()).unwrap();
    // Only one process opens the file, so the lease's holder is gone: the job
    // is claimable at once, long before the lease would have expired, with
    // the interrupted run counted.
    assert_eq!(b.jobs_counts("q").await.unwrap(), counts(2, 0, 0));
    let again = b.jobs_claim("q", T0 + 1, LEASE, 10).await.unwrap();
    assert_eq!(ids(&again), ["held", "free"]);
    assert_eq!(again[0].attempts, 1);
    assert!(
        again[0].lease > old_lease,
        "tokens never repeat across restarts"
    );
    assert!(!b.jobs_ack("q", "held", old_lease).await.unwrap());
}

#[tokio::test]
async fn embedded_second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = EmbeddedBackend::open(dir.path()).unwrap();
    let err = EmbeddedBackend::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked(p) if p.ends_with("balas.redb")),
        "{err:?}"
    );
    let via_open_backend = balas::store::open_backend(Location::Embedded(dir.path()), PREFIX).await;
    assert!(matches!(via_open_backend, Err(StoreError::Locked(_))));
    drop(first);
    let again = balas::store::open_backend(Location::Embedded(dir.path()), PREFIX)
        .await
        .unwrap();
    assert_eq!(again.name(), "embedded");
}
