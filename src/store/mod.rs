//! All state, through one API.
//!
//! [`Backend`] is the small set of atomic primitives a backend provides
//! (`redis` for several processes sharing one Redis, `embedded` for a single
//! process with a redb file). The domain operations the rest of Balas calls are
//! written once on top of it.

pub mod backend;

pub use backend::{Backend, Job, JobCounts, NewJob, StoreError, StoreResult, Versioned};
