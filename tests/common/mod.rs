//! Helpers shared by the integration tests. Each test binary uses only some of
//! them, hence the dead-code allowance.
#![allow(dead_code, unused_imports, unused_macros)]

/// Runs each named `async fn(StoreKind)` as two tests, `embedded::NAME` and
/// `redis::NAME`, so one scenario is checked on both store backends.
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

pub mod counting;
pub mod graph_mock;
pub mod harness;
pub mod payloads;
pub mod process;
pub mod redis_server;
pub mod reset_server;
pub mod s3_server;
