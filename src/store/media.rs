//! Attachment records: what a file in a conversation is, and whether its bytes
//! are in the media store yet.
//!
//! A record is written as soon as a message with a file is handled (status
//! `pending`), before anything is downloaded, so a file is never silently
//! missing: it is `stored` once its bytes are in the media store (then
//! `sha256` names the object), or `failed` with the reason. The status only
//! moves forward: pending → stored | failed, and failed → stored (a later
//! retry); a stored record never changes back.
//!
//! Retention turns old records into `expired` tombstones (the transcript still
//! says a file was there) and deletes objects no live record points at.
//!
//! Keys: `media:{id}` (the record), `media:conv:{conversation}` (ids by
//! creation time), `media:sha:{hash}` (records pointing at one object, for
//! retention), `media:created` (ids of records not expired yet, by creation
//! time, for retention), `media:link-key` (the random key that signs public
//! links to our outbound files), `media-ack:{conversation}` (remembered for a
//! short while after the bot acknowledged a file, so a burst of photos gets
//! one acknowledgement).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError, StoreResult};
use crate::channels::{Channel, InboundMedia, MediaKind};
use crate::media::{ContentHash, StoredObject};

/// Whether a file came from the customer or goes to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentDirection {
    /// Sent by the customer; downloaded from the platform.
    Inbound,
    /// Sent by us (an agent's upload, a rule's file).
    Outbound,
}

/// Where an attachment's bytes stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AttachmentStatus {
    /// Not in the media store yet (download queued or being retried).
    Pending,
    /// In the media store under `sha256`.
    Stored,
    /// Could not be downloaded or stored; shown to agents with the reason.
    Failed {
        /// Why, in words an agent can read.
        reason: String,
    },
    /// Deleted by the retention policy; the record stays so the transcript
    /// still shows that a file was there.
    Expired,
}

impl AttachmentStatus {
    /// Lowercase name: `pending`, `stored` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AttachmentStatus::Pending => "pending",
            AttachmentStatus::Stored => "stored",
            AttachmentStatus::Failed { .. } => "failed",
            AttachmentStatus::Expired => "expired",
        }
    }
}

/// A file uploaded to the platform (WhatsApp `POST /{phone-number-id}/media`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformMedia {
    /// The media id a message names.
    pub id: String,
    /// When it was uploaded, Unix ms (WhatsApp keeps uploads for 30 days).
    pub uploaded_ms: i64,
    /// The number it was uploaded for (its media ids are its own); `None`
    /// for uploads from before it was kept, and for the default number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// One file in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Id (hex): derived from the inbound event for customers' files (so
    /// handling an event twice finds the same record), random for ours.
    pub id: String,
    /// The conversation (case) it belongs to.
    pub conversation_id: String,
    /// The platform.
    pub channel: Channel,
    /// From the customer or from us.
    pub direction: AttachmentDirection,
    /// What kind of file.
    pub kind: MediaKind,
    /// MIME type: what the platform said, then what was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Size in bytes, once stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Content address in the media store, once stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<ContentHash>,
    /// Caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name (documents, agents' uploads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// A voice note.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub voice: bool,
    /// Platform message id (inbound: the customer's message; outbound: set by
    /// the sender once the platform accepted it, or our outbox id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Inbound: the file as the webhook described it, which is what a download
    /// needs (media id or URL, announced type and hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<InboundMedia>,
    /// Inbound: the number or account that received it (WhatsApp
    /// `phone_number_id`, Instagram account id): its token downloads the
    /// file. `None` for records from before it was kept (the channel's
    /// default sender's token then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Outbound: the agent who uploaded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<String>,
    /// Outbound on WhatsApp: the media id of our last upload, so a retried
    /// send does not upload the file again while the id is still valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_media: Option<PlatformMedia>,
    /// Pending, stored or failed.
    pub status: AttachmentStatus,
    /// Download or store attempts that failed and will be retried.
    #[serde(default)]
    pub attempts: u32,
    /// The last retryable error (while pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Created, Unix ms.
    pub created_ms: i64,
    /// Last changed, Unix ms.
    pub updated_ms: i64,
}

impl Attachment {
    /// The id of the file in the inbound event with `dedupe_key`: the first 24 hex
    /// digits of its SHA-256, so a redelivered or re-handled event maps to the same
    /// record (each file of a multi-file Instagram message has its own key).
    pub fn inbound_id(dedupe_key: &str) -> String {
        hex::encode(&Sha256::digest(dedupe_key.as_bytes())[..12])
    }

    /// A fresh id for a file we send (32 hex digits, time-ordered).
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }

    /// A deterministic id for a file we send on behalf of `key` (a bot reply's
    /// outbox id), so handling an event again attaches the same record.
    pub fn derived_id(key: &str) -> String {
        Attachment::inbound_id(&format!("out:{key}"))
    }

    /// Whether `id` can be an attachment id (24 or 32 lowercase hex digits); HTTP
    /// routes check this before touching the store.
    pub fn valid_id(id: &str) -> bool {
        matches!(id.len(), 24 | 32) && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// A pending record for a customer's file.
    pub fn inbound(
        dedupe_key: &str,
        conversation_id: &str,
        channel: Channel,
        message_id: &str,
        media: &InboundMedia,
        now_ms: i64,
    ) -> Attachment {
        Attachment {
            id: Attachment::inbound_id(dedupe_key),
            conversation_id: conversation_id.to_string(),
            channel,
            direction: AttachmentDirection::Inbound,
            kind: media.kind,
            mime_type: media.mime_type.clone(),
            size: None,
            sha256: None,
            caption: media.caption.clone(),
            filename: media.filename.clone(),
            voice: media.voice,
            message_id: Some(message_id.to_string()),
            remote: Some(media.clone()),
            number: None,
            uploaded_by: None,
            platform_media: None,
            status: AttachmentStatus::Pending,
            attempts: 0,
            last_error: None,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }

    /// A stored record for a file we send, already in the media store.
    #[allow(clippy::too_many_arguments)]
    pub fn outbound(
        conversation_id: &str,
        channel: Channel,
        kind: MediaKind,
        object: StoredObject,
        mime_type: &str,
        filename: Option<String>,
        caption: Option<String>,
        uploaded_by: Option<String>,
        now_ms: i64,
    ) -> Attachment {
        Attachment {
            id: Attachment::new_id(),
            conversation_id: conversation_id.to_string(),
            channel,
            direction: AttachmentDirection::Outbound,
            kind,
            mime_type: Some(mime_type.to_string()),
            size: Some(object.size),
            sha256: Some(object.hash),
            caption,
            filename,
            voice: false,
            message_id: None,
            remote: None,
            number: None,
            uploaded_by,
            platform_media: None,
            status: AttachmentStatus::Stored,
            attempts: 0,
            last_error: None,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }
}

fn attachment_key(id: &str) -> String {
    format!("media:{id}")
}

fn conversation_index(conversation_id: &str) -> String {
    format!("media:conv:{conversation_id}")
}

fn content_index(hash: &ContentHash) -> String {
    format!("media:sha:{hash}")
}

/// Every attachment by creation time (retention); sharded.
const CREATED_INDEX: &str = "media:created";

const LINK_KEY: &str = "media:link-key";

fn ack_key(conversation_id: &str) -> String {
    format!("media-ack:{conversation_id}")
}

/// The stored signing key of public links.
#[derive(Serialize, Deserialize)]
struct LinkKey {
    key: String,
}

impl Store {
    /// Stores a new attachment record and indexes it. Returns the record now
    /// stored and whether it was created; an existing record with that id is
    /// returned unchanged (handling an event twice creates one record), and its
    /// indexes are written again in case a crash cut the first attempt short.
    pub async fn create_attachment(&self, record: &Attachment) -> StoreResult<(Attachment, bool)> {
        let key = attachment_key(&record.id);
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let created = self.backend.doc_put(&key, 0, &bytes).await?.is_some();
        let current = if created {
            record.clone()
        } else {
            self.attachment(&record.id)
                .await?
                .ok_or_else(|| StoreError::Corrupt {
                    key: key.clone(),
                    reason: "exists but cannot be read".into(),
                })?
        };
        let score = current.created_ms as f64;
        self.backend
            .index_put(
                &conversation_index(&current.conversation_id),
                &current.id,
                score,
            )
            .await?;
        self.sharded_put(CREATED_INDEX, &current.id, score).await?;
        if let Some(hash) = &current.sha256 {
            self.backend
                .index_put(&content_index(hash), &current.id, score)
                .await?;
        }
        Ok((current, created))
    }

    /// Reads an attachment record.
    pub async fn attachment(&self, id: &str) -> StoreResult<Option<Attachment>> {
        self.get_json(&attachment_key(id)).await
    }

    /// Reads several attachment records (missing ones are skipped).
    pub async fn attachments(&self, ids: &[String]) -> StoreResult<Vec<Attachment>> {
        let keys: Vec<String> = ids.iter().map(|id| attachment_key(id)).collect();
        self.get_json_many(&keys).await
    }

    /// A conversation's attachments, oldest first, at most `limit`.
    pub async fn conversation_attachments(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<Attachment>> {
        let ids: Vec<String> = self
            .backend
            .index_range(
                &conversation_index(conversation_id),
                f64::NEG_INFINITY,
                f64::INFINITY,
                limit,
            )
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        self.attachments(&ids).await
    }

    /// Ids of attachments created at or before `before_ms`, oldest first (for
    /// retention).
    pub async fn attachments_created_before(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        Ok(self
            .sharded_range(CREATED_INDEX, f64::NEG_INFINITY, before_ms as f64, limit)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Ids of the attachments whose bytes are the object `hash` (an object may be
    /// deleted only when none is left that should keep it).
    pub async fn attachments_with_content(
        &self,
        hash: &ContentHash,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        Ok(self
            .backend
            .index_range(
                &content_index(hash),
                f64::NEG_INFINITY,
                f64::INFINITY,
                limit,
            )
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Deletes an attachment record and takes it out of every index
    /// (erasure, retention); returns the record that was there. The stored
    /// object is the caller's: it may be deleted once
    /// [`Store::attachments_with_content`] finds no other record using it.
    pub async fn delete_attachment(&self, id: &str) -> StoreResult<Option<Attachment>> {
        let record = self.attachment(id).await?;
        if let Some(a) = &record {
            self.backend
                .index_remove(&conversation_index(&a.conversation_id), id)
                .await?;
            if let Some(hash) = &a.sha256 {
                self.backend.index_remove(&content_index(hash), id).await?;
            }
        }
        self.sharded_remove(CREATED_INDEX, id).await?;
        self.backend.doc_delete(&attachment_key(id)).await?;
        Ok(record)
    }

    /// Applies `change` to a record (compare-and-swap); `change` returns false to
    /// leave it as it is. Returns the record after the call, `None` when there is
    /// no such record.
    async fn update_attachment(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Attachment) -> bool,
    ) -> StoreResult<Option<Attachment>> {
        let now = self.now_ms();
        let mut latest: Option<Attachment> = None;
        self.update_json::<Attachment, StoreError, _>(&attachment_key(id), |current| {
            let Some(mut record) = current else {
                latest = None;
                return Ok(None);
            };
            if change(&mut record) {
                record.updated_ms = now;
                latest = Some(record.clone());
                Ok(Some(record))
            } else {
                latest = Some(record);
                Ok(None)
            }
        })
        .await?;
        Ok(latest)
    }

    /// Records that the bytes are in the media store as `object`, with the
    /// content type they are served with. A record already stored keeps its
    /// first object (a message's file cannot change). Returns the record after
    /// the call, `None` when there is none.
    pub async fn mark_attachment_stored(
        &self,
        id: &str,
        object: StoredObject,
        mime_type: &str,
    ) -> StoreResult<Option<Attachment>> {
        let record = self
            .update_attachment(id, |a| {
                if matches!(
                    a.status,
                    AttachmentStatus::Stored | AttachmentStatus::Expired
                ) {
                    return false;
                }
                a.status = AttachmentStatus::Stored;
                a.sha256 = Some(object.hash);
                a.size = Some(object.size);
                a.mime_type = Some(mime_type.to_string());
                a.last_error = None;
                true
            })
            .await?;
        if let Some(a) = &record
            && let Some(hash) = &a.sha256
        {
            self.backend
                .index_put(&content_index(hash), &a.id, a.created_ms as f64)
                .await?;
        }
        Ok(record)
    }

    /// Records a permanent failure with a reason agents can read. A stored
    /// record stays stored.
    pub async fn mark_attachment_failed(
        &self,
        id: &str,
        reason: &str,
    ) -> StoreResult<Option<Attachment>> {
        self.update_attachment(id, |a| {
            if a.status != AttachmentStatus::Pending {
                return false;
            }
            a.status = AttachmentStatus::Failed {
                reason: reason.to_string(),
            };
            a.last_error = None;
            true
        })
        .await
    }

    /// Records a failed attempt that will be retried: counts it and keeps the
    /// error, the record staying pending.
    pub async fn note_attachment_retry(
        &self,
        id: &str,
        error: &str,
    ) -> StoreResult<Option<Attachment>> {
        self.update_attachment(id, |a| {
            if a.status != AttachmentStatus::Pending {
                return false;
            }
            a.attempts += 1;
            a.last_error = Some(error.to_string());
            true
        })
        .await
    }

    /// Sets the platform message id of a file we sent (once the platform accepted
    /// it).
    pub async fn set_attachment_message_id(
        &self,
        id: &str,
        message_id: &str,
    ) -> StoreResult<Option<Attachment>> {
        self.update_attachment(id, |a| {
            if a.message_id.as_deref() == Some(message_id) {
                return false;
            }
            a.message_id = Some(message_id.to_string());
            true
        })
        .await
    }
}

impl Store {
    /// Records the WhatsApp media id of an upload of this file.
    pub async fn set_attachment_platform_media(
        &self,
        id: &str,
        media_id: &str,
        number: Option<&str>,
    ) -> StoreResult<Option<Attachment>> {
        let now = self.now_ms();
        self.update_attachment(id, |a| {
            a.platform_media = Some(PlatformMedia {
                id: media_id.to_string(),
                uploaded_ms: now,
                number: number.map(str::to_string),
            });
            true
        })
        .await
    }

    /// Turns a record into an `expired` tombstone (retention): its object is
    /// forgotten and it leaves the retention and content indexes. Returns the
    /// tombstone and the object it pointed at, so the caller can delete that
    /// object once no other live record uses it.
    pub async fn expire_attachment(
        &self,
        id: &str,
    ) -> StoreResult<Option<(Attachment, Option<ContentHash>)>> {
        let mut object = None;
        let record = self
            .update_attachment(id, |a| {
                object = a.sha256;
                if a.status == AttachmentStatus::Expired {
                    return false;
                }
                a.status = AttachmentStatus::Expired;
                a.sha256 = None;
                // What the customer wrote about the file is personal data too;
                // the tombstone only says a file of this kind was there.
                a.caption = None;
                a.filename = None;
                a.remote = None;
                a.platform_media = None;
                a.last_error = None;
                true
            })
            .await?;
        if let Some(hash) = &object {
            self.backend.index_remove(&content_index(hash), id).await?;
        }
        self.backend.index_remove(CREATED_INDEX, id).await?;
        Ok(record.map(|r| (r, object)))
    }

    /// The key that signs public links to our outbound files: 32 random bytes
    /// from the OS, created by the first process that asks and shared by all
    /// (so a link signed by one process is accepted by every other).
    pub async fn media_link_key(&self) -> StoreResult<Vec<u8>> {
        if let Some(k) = self.get_json::<LinkKey>(LINK_KEY).await? {
            return hex::decode(&k.key).map_err(|e| StoreError::Corrupt {
                key: LINK_KEY.into(),
                reason: e.to_string(),
            });
        }
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh)
            .map_err(|e| StoreError::Unavailable(format!("the OS random source failed: {e}")))?;
        let doc = serde_json::to_vec(&LinkKey {
            key: hex::encode(fresh),
        })
        .unwrap_or_default();
        // Created at most once: whoever loses the race reads the winner's key.
        if self.backend.doc_put(LINK_KEY, 0, &doc).await?.is_some() {
            return Ok(fresh.to_vec());
        }
        let k = self
            .get_json::<LinkKey>(LINK_KEY)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                key: LINK_KEY.into(),
                reason: "exists but cannot be read".into(),
            })?;
        hex::decode(&k.key).map_err(|e| StoreError::Corrupt {
            key: LINK_KEY.into(),
            reason: e.to_string(),
        })
    }

    /// True when the bot has not acknowledged a file in this conversation
    /// within `quiet` (and remembers that it does now): a customer who sends
    /// five photos in a row hears "thank you" once.
    pub async fn first_media_ack(
        &self,
        conversation_id: &str,
        quiet: std::time::Duration,
    ) -> StoreResult<bool> {
        self.remember(&ack_key(conversation_id), quiet).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let a = Attachment::inbound_id("wa:msg:wamid.X");
        assert_eq!(a.len(), 24);
        assert_eq!(a, Attachment::inbound_id("wa:msg:wamid.X"));
        assert_ne!(a, Attachment::inbound_id("ig:msg:m:1"));
        assert!(Attachment::valid_id(&a));
        let b = Attachment::new_id();
        assert_eq!(b.len(), 32);
        assert!(Attachment::valid_id(&b));
        for bad in ["", "../x", &"A".repeat(24), &"a".repeat(25), "zz"] {
            assert!(!Attachment::valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn status_json() {
        let failed = AttachmentStatus::Failed {
            reason: "the media id is unknown".into(),
        };
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            serde_json::json!({"state": "failed", "reason": "the media id is unknown"})
        );
        assert_eq!(failed.as_str(), "failed");
        assert_eq!(
            serde_json::to_value(AttachmentStatus::Stored).unwrap(),
            serde_json::json!({"state": "stored"})
        );
    }
}
