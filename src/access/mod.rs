//! People and access: accounts, sign-in, API tokens, and who may see what.
//!
//! - [`accounts`]: users, passwords and API tokens, changed at runtime and
//!   stored through [`crate::store`]; the config's `[[agents]]` are imported at start.
//! - [`sessions`]: password sign-in (rate-limited), sessions, token lookup.
//! - [`policy`]: the least-privilege rules as pure functions.
//! - [`secrets`]: random secrets from the OS, hashes, Argon2id.
//! - [`audit`]: the hook every access-relevant action calls.
//!
//! This module knows nothing of HTTP: cookies, headers and status codes are
//! [`crate::api`]'s concern.

pub mod accounts;
pub mod audit;
pub mod policy;
pub mod secrets;
pub mod sessions;
