//! Erasing a contact's personal data everywhere it is stored.
//!
//! What goes: the contact (name, numbers, notes, labels, opt-outs), every
//! transcript, the records of our messages (their bodies and numbers), the
//! contact's files (records, and the stored bytes once no other record uses
//! them), survey comments, their places in broadcast audiences and the
//! messages sent to them there, dead letters that mention them, the keys
//! made of their id (survey pointer, send pacing, activity index), and the
//! search index's entries of their cases (nothing finds them by number,
//! name or words afterwards).
//!
//! What stays, so reports still count: each case's times, states, queue and
//! agent (its contact becomes [`ERASED_CONTACT`]); survey scores without the
//! comment; broadcast totals. Webhook and transcript dedupe keys stay too:
//! they are digests of message ids (no number), and they stop a late
//! redelivery of an old message from bringing its text back.
//!
//! The contact's lock is held throughout, so no message of theirs is handled
//! halfway through on any process; an open case is resolved quietly (no
//! survey). Every step can run again: an erasure cut short (a store or the
//! media store failing) finishes when it is run again.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::PrivacyError;
use crate::broadcast::erasure as audiences;
use crate::channels::Channel;
use crate::conversation::ERASED_CONTACT;
use crate::conversation::{State, Transition};
use crate::media::{ContentHash, MediaStore};
use crate::store::{OutboundState, Speaker, Store, SurveyStatus, queues};

/// How long the erasure holds the contact's lock (renewed per case).
const LOCK_TTL: Duration = Duration::from_secs(60);
/// How long to wait for a message of the contact being handled.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// Files per case at most (far more than a conversation holds).
const MAX_FILES: usize = 100_000;
/// Dead letters looked at per queue at most.
const MAX_DEAD: u64 = 100_000;

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// Whether the contact record existed.
    pub contact: bool,
    /// Cases made anonymous (kept for reports).
    pub cases: usize,
    /// Cases that were open and were resolved by the erasure.
    pub cases_resolved: usize,
    /// Transcript entries deleted.
    pub transcript_entries: usize,
    /// Records of our messages deleted.
    pub messages: usize,
    /// File records deleted.
    pub files: usize,
    /// Stored files deleted from the media store.
    pub stored_files_deleted: usize,
    /// Surveys whose comment and contact were removed.
    pub surveys: usize,
    /// Broadcasts the contact was forgotten in.
    pub broadcasts: usize,
    /// Dead letters deleted.
    pub dead_letters: usize,
    /// Search terms the contact's cases were findable by (phone number,
    /// name, case id, message words), all forgotten.
    pub search_terms: usize,
}

impl Erased {
    /// Whether anything was stored about the contact.
    pub fn found_anything(&self) -> bool {
        self.contact || self.cases > 0 || self.broadcasts > 0 || self.dead_letters > 0
    }

    /// A one-line summary for the audit log (counts only).
    pub fn summary(&self) -> String {
        format!(
            "cases={} resolved={} entries={} messages={} files={} stored_files={} surveys={} broadcasts={} dead_letters={} search_terms={}",
            self.cases,
            self.cases_resolved,
            self.transcript_entries,
            self.messages,
            self.files,
            self.stored_files_deleted,
            self.surveys,
            self.broadcasts,
            self.dead_letters,
            self.search_terms
        )
    }
}

/// Erases everything stored about the contact; see the module docs.
pub async fn erase(
    store: &Store,
    media: &MediaStore,
    channel: Channel,
    external_id: &str,
) -> Result<Erased, PrivacyError> {
    let owner = format!("erasure:{}", uuid::Uuid::now_v7());
    lock(store, channel, external_id, &owner).await?;
    let result = erase_locked(store, media, channel, external_id, &owner).await;
    if let Err(e) = store.unlock_contact(channel, external_id, &owner).await {
        tracing::warn!(error = %e, "could not release a contact's lock after an erasure; it expires by itself");
    }
    result
}

/// Takes the contact's lock, waiting a little for a message being handled.
async fn lock(
    store: &Store,
    channel: Channel,
    external_id: &str,
    owner: &str,
) -> Result<(), PrivacyError> {
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        if store
            .lock_contact(channel, external_id, owner, LOCK_TTL)
            .await?
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PrivacyError::Busy);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn erase_locked(
    store: &Store,
    media: &MediaStore,
    channel: Channel,
    external_id: &str,
    owner: &str,
) -> Result<Erased, PrivacyError> {
    let mut erased = Erased::default();
    let contact = store.contact(channel, external_id).await?;
    let mut cases: Vec<String> = contact
        .as_ref()
        .map(|c| c.cases.clone())
        .unwrap_or_default();
    if let Some(open) = contact.as_ref().and_then(|c| c.current_case.clone())
        && !cases.contains(&open)
    {
        cases.push(open);
    }
    for case in &cases {
        // Renewed per case: a contact with many cases takes a while.
        store
            .lock_contact(channel, external_id, owner, LOCK_TTL)
            .await?;
        erase_case(store, media, case, &mut erased).await?;
    }
    erased.broadcasts = audiences::forget(store, channel, external_id).await?;
    for queue in queues::ALL {
        erased.dead_letters += forget_dead_letters(store, queue, external_id).await?;
    }
    erased.contact = store.delete_contact(channel, external_id).await?;
    Ok(erased)
}

/// Makes one case anonymous: resolves it if open, deletes its transcript,
/// our messages' records and its files, keeps its times, states, queue and
/// agent, and its survey's scores without the comment.
async fn erase_case(
    store: &Store,
    media: &MediaStore,
    case: &str,
    erased: &mut Erased,
) -> Result<(), PrivacyError> {
    let conv = store.conversation(case).await?;
    if conv.as_ref().is_some_and(|c| c.state != State::Resolved) {
        let resolve = Transition::Resolve {
            by: "erasure".into(),
        };
        // Straight through the store: no survey and no message to someone
        // being erased; the case leaves the queues and the agent's list.
        match store.transition(case, &resolve, |_| true).await {
            Ok(_) => erased.cases_resolved += 1,
            Err(crate::store::ConversationError::Illegal(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let transcript = store.transcript(case).await?;
    erased.transcript_entries += transcript.len();
    for entry in &transcript {
        if matches!(entry.speaker, Speaker::Customer | Speaker::System) {
            continue;
        }
        let Some(id) = &entry.message_id else {
            continue;
        };
        // Not sent yet: it never will be.
        store
            .advance_outbound(id, OutboundState::Skipped, |r| {
                r.error_title = Some("contact erased".into());
            })
            .await?;
        store.cancel(queues::OUTBOX, id).await?;
        if store.delete_outbound(id).await? {
            erased.messages += 1;
        }
    }
    store.delete_transcript(case).await?;
    erased.search_terms += store.forget_search(case).await?;
    erase_files(store, media, case, erased).await?;
    let now = store.now_ms();
    if store
        .update_survey(case, |s| {
            if matches!(s.status, SurveyStatus::Scheduled | SurveyStatus::Asked) {
                s.status = SurveyStatus::Cancelled;
                s.step = None;
                s.closed_ms = Some(now);
            }
            let changed = s.contact_id != ERASED_CONTACT || s.comment.is_some();
            s.contact_id = ERASED_CONTACT.into();
            s.comment = None;
            changed
        })
        .await?
        .is_some()
    {
        erased.surveys += 1;
    }
    if conv.is_some() {
        store
            .update_conversation(case, |c| c.contact_id = ERASED_CONTACT.into())
            .await?;
        erased.cases += 1;
    }
    Ok(())
}

/// Deletes a case's files: the stored bytes first (when no record outside
/// this case uses them), then the records, so an erasure cut short still
/// finds the files it has to delete when run again.
async fn erase_files(
    store: &Store,
    media: &MediaStore,
    case: &str,
    erased: &mut Erased,
) -> Result<(), PrivacyError> {
    let files = store.conversation_attachments(case, MAX_FILES).await?;
    let ids: BTreeSet<&str> = files.iter().map(|a| a.id.as_str()).collect();
    let hashes: BTreeSet<ContentHash> = files.iter().filter_map(|a| a.sha256).collect();
    for hash in hashes {
        let users = store.attachments_with_content(&hash, MAX_FILES).await?;
        if users.iter().all(|id| ids.contains(id.as_str())) && media.delete(&hash).await? {
            erased.stored_files_deleted += 1;
        }
    }
    for file in &files {
        if store.delete_attachment(&file.id).await?.is_some() {
            erased.files += 1;
        }
    }
    Ok(())
}

/// Deletes the dead letters of `queue` that mention the contact id as a
/// whole word anywhere in their text (payloads hold numbers, ids like
/// `bc:<broadcast>:<number>`, and message texts).
async fn forget_dead_letters(
    store: &Store,
    queue: &str,
    external_id: &str,
) -> Result<usize, PrivacyError> {
    let entries = store.dead_letters(queue, 0, MAX_DEAD).await?;
    let mut removed = 0;
    for entry in entries {
        if mentions(&entry, external_id) && store.remove_dead_letter(queue, &entry).await? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether `id` is a whole word of any text in `entry` (JSON, or raw text).
pub fn mentions(entry: &[u8], id: &str) -> bool {
    fn words_of(text: &str, id: &str) -> bool {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == id)
    }
    fn walk(v: &Value, id: &str) -> bool {
        match v {
            Value::String(s) => words_of(s, id),
            Value::Number(n) => n.to_string() == id,
            Value::Array(a) => a.iter().any(|x| walk(x, id)),
            Value::Object(o) => o.iter().any(|(k, x)| words_of(k, id) || walk(x, id)),
            Value::Bool(_) | Value::Null => false,
        }
    }
    if id.is_empty() {
        return false;
    }
    match serde_json::from_slice::<Value>(entry) {
        Ok(v) => walk(&v, id),
        Err(_) => words_of(&String::from_utf8_lossy(entry), id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_mention_ids_as_whole_words() {
        let id = "6281234567890";
        for (entry, want) in [
            (
                r#"{"payload":{"contact":{"external_id":"6281234567890"}}}"#,
                true,
            ),
            (r#"{"job":"bc:b1:6281234567890"}"#, true),
            (r#"{"payload":{"text":"hubungi +6281234567890 ya"}}"#, true),
            (r#"{"payload":6281234567890}"#, true),
            (r#"{"payload":{"external_id":"62812345678901"}}"#, false),
            (r#"{"payload":{"external_id":"16281234567890"}}"#, false),
            (r#"{"payload":"re:wamid.X"}"#, false),
            ("not json 6281234567890", true),
        ] {
            assert_eq!(mentions(entry.as_bytes(), id), want, "{entry}");
        }
        assert!(!mentions(b"{}", ""));
    }
}
