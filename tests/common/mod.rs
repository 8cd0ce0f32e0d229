//! Helpers shared by the integration tests. Each test binary uses only some of
//! them, hence the dead-code allowance.
#![allow(dead_code, unused_imports, unused_macros)]

/// Runs each named `async fn(StoreKind)` as three tests, `embedded::NAME`,
/// `redis::NAME` and `cluster::NAME`, so one scenario is checked on every
/// store: the embedded store, one Redis server, and a Redis Cluster (the test
/// binary's shared cluster, under a key prefix of the test's own).
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::StoreKind::Embedded).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::StoreKind::redis()).await })*
        }
        mod cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::StoreKind::cluster()).await })*
        }
    };
}

/// Runs each named `async fn(StoreKind)` as two tests, `embedded::NAME` and
/// `redis::NAME`: scenarios whose store calls the cluster runs of the
/// conformance suite and the main end-to-end suites already cover, kept off
/// the Cluster so the suite stays short.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::StoreKind::Embedded).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::StoreKind::redis()).await })*
        }
    };
}

/// Runs each named `async fn(StoreKind)` on the stores several processes can
/// share, as `shared_redis::NAME` (one Redis server) and `shared_cluster::NAME`
/// (a Redis Cluster): the scenarios with two processes.
macro_rules! on_shared_stores {
    ($($name:ident),* $(,)?) => {
        mod shared_redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::StoreKind::redis()).await })*
        }
        mod shared_cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::StoreKind::cluster()).await })*
        }
    };
}

pub mod counting;
pub mod graph_mock;
pub mod harness;
pub mod payloads;
pub mod process;
pub mod redis_cluster;
pub mod redis_server;
pub mod reset_server;
pub mod s3_server;
