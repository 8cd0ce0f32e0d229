//! Customers' personal data (Indonesia's UU PDP 27/2022): what is stored
//! about a contact can be exported, erased, and is kept no longer than
//! `[retention]` says.
//!
//! - [`export`]: everything stored about one contact, as one JSON document.
//! - [`erasure`]: erasing a contact's personal data everywhere, keeping only
//!   what reports count (a case's times, states, queue and agent; survey
//!   scores; broadcast totals).
//! - [`retention`]: the background job that deletes what is older than the
//!   configured periods, a bounded batch at a time, on every store.
//!
//! This module works through the store, the media store and the broadcast
//! audiences; it knows nothing of HTTP (the routes are `crate::api::contacts`)
//! and audits nothing itself (its callers do, with who asked).

pub mod erasure;
pub mod export;
pub mod retention;

use crate::media::MediaError;
use crate::store::{ConversationError, StoreError};

/// Why an export or an erasure did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// A message of the contact is being handled right now; try again.
    #[error("a message of this contact is being handled right now; try again in a few seconds")]
    Busy,
    /// The state store failed; nothing that was erased comes back, and
    /// running the erasure again finishes it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The media store failed to delete a file; running the erasure again
    /// finishes it.
    #[error("the media store could not delete a file: {0}")]
    Media(#[from] MediaError),
}

impl From<ConversationError> for PrivacyError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::Store(s) => PrivacyError::Store(s),
            // Not found or not allowed: the case changed meanwhile; the next
            // run sees it as it is now.
            other => PrivacyError::Store(StoreError::Contention(other.to_string())),
        }
    }
}
