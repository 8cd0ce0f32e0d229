//! Helpers shared by the integration tests. Each test binary uses only some of
//! them, hence the dead-code allowance.
#![allow(dead_code, unused_imports)]

pub mod graph_mock;
pub mod harness;
pub mod payloads;
pub mod process;
pub mod redis_server;
