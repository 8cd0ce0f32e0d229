//! Files in conversations: what connects the attachment records
//! ([`crate::store::Attachment`]), the bytes in the media store
//! ([`crate::media`]) and the Graph API's media calls
//! ([`crate::channels::media_client`]).
//!
//! - Inbound: the engine records a customer's file ([`Files::record_inbound`])
//!   and a durable job of the `media` queue downloads it after the webhook was
//!   acknowledged ([`download`]), retried with backoff; a file that cannot be
//!   downloaded stays visible as failed, with the reason.
//! - Outbound: an agent's upload is checked and stored
//!   ([`Files::receive_upload`]) and sent through the outbox, which hands it
//!   to the platform at send time ([`Files::prepare`]): WhatsApp gets an
//!   upload, Instagram a signed, expiring public link ([`link`]). Files named
//!   in the configuration for rule replies and canned responses are the
//!   [`library`].
//! - Retention: old files are deleted ([`retention`]).
//!
//! Nothing here knows HTTP; the API maps [`UploadError`]s to status codes.

pub mod download;
pub mod library;
pub mod link;
pub mod outbound;
pub mod retention;

use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;

pub use download::{MediaHandler, MediaTask};
pub use library::{Library, LibraryError, LibraryFile};

use crate::channels::media::{MediaRejection, base_mime, outbound_kind, outbound_max_bytes};
use crate::channels::render::clean_filename;
use crate::channels::{Channel, InboundEvent, InboundMedia, MediaClient, MediaKind};
use crate::media::sniff::{self, Mismatch};
use crate::media::{MediaError, MediaStore, ObjectBody, PutError, StoredObject};
use crate::store::{Attachment, AttachmentStatus, Store, StoreResult, queues};

/// Settings from `[server]` and `[media]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `server.public_url` without a trailing slash; `None` when unset.
    pub public_url: Option<String>,
    /// `media.link_ttl`.
    pub link_ttl: Duration,
}

impl Settings {
    /// The settings of a configuration.
    pub fn from_config(config: &crate::config::Config) -> Settings {
        let public = config.server.public_url.trim().trim_end_matches('/');
        Settings {
            public_url: (!public.is_empty()).then(|| public.to_string()),
            link_ttl: config.media.link_ttl.get().max(Duration::from_secs(60)),
        }
    }
}

/// The files of every conversation; cheap to clone.
#[derive(Clone)]
pub struct Files(Arc<Inner>);

struct Inner {
    store: Store,
    media: MediaStore,
    client: MediaClient,
    settings: Settings,
    library: Library,
    /// The public links' signing key, read from the store once.
    link_key: tokio::sync::OnceCell<Vec<u8>>,
}

/// Why an agent's file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum UploadError<E> {
    /// The platform does not take it (type, size, empty).
    #[error(transparent)]
    Rejected(#[from] MediaRejection),
    /// The bytes are not what the file claims to be.
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
    /// More bytes than the largest file of this type the channel takes.
    #[error("the file is larger than the {max} bytes {channel} takes for this type")]
    TooLarge {
        /// The channel.
        channel: Channel,
        /// The limit.
        max: u64,
    },
    /// Instagram fetches files from a public link, and none can be made.
    #[error(
        "Instagram fetches files from a public link to this server, and server.public_url is not set"
    )]
    NoPublicUrl,
    /// Reading the request failed.
    #[error("the upload was cut off: {0}")]
    Source(E),
    /// The media store failed; try again later.
    #[error(transparent)]
    Unavailable(MediaError),
}

/// A checked file in the media store, not attached to anything yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Its object.
    pub object: StoredObject,
    /// Its content type.
    pub mime_type: String,
    /// What it is sent as.
    pub kind: MediaKind,
    /// Its cleaned file name.
    pub filename: Option<String>,
}

/// Why a stored file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not downloaded yet.
    #[error("the file is still being downloaded")]
    Pending,
    /// The download failed for good.
    #[error("the file could not be downloaded: {0}")]
    Failed(String),
    /// Deleted by the retention policy.
    #[error("the file was deleted under the retention policy")]
    Expired,
    /// The record says stored but the object is gone.
    #[error("the file is missing from the media store")]
    Missing,
    /// The media store failed.
    #[error(transparent)]
    Unavailable(MediaError),
}

impl Files {
    /// The files over these parts.
    pub fn new(
        store: Store,
        media: MediaStore,
        client: MediaClient,
        settings: Settings,
        library: Library,
    ) -> Files {
        Files(Arc::new(Inner {
            store,
            media,
            client,
            settings,
            library,
            link_key: tokio::sync::OnceCell::new(),
        }))
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The media store.
    pub fn media(&self) -> &MediaStore {
        &self.0.media
    }

    /// The configured files.
    pub fn library(&self) -> &Library {
        &self.0.library
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// Records the file of a customer's message (once, however often the
    /// event is handled) and, while it is not stored, makes sure a download
    /// job exists. Returns the record.
    pub async fn record_inbound(
        &self,
        event: &InboundEvent,
        message_id: &str,
        media: &InboundMedia,
        conversation_id: &str,
    ) -> StoreResult<Attachment> {
        let store = &self.0.store;
        let mut record = Attachment::inbound(
            &event.dedupe_key,
            conversation_id,
            event.channel,
            message_id,
            media,
            store.now_ms(),
        );
        // Downloaded with the token of the number that received it.
        record.number = Some(event.business_id.clone()).filter(|n| !n.is_empty());
        let (record, _created) = store.create_attachment(&record).await?;
        if record.status == AttachmentStatus::Pending {
            // The job id is the attachment id: scheduling again is a no-op.
            store
                .schedule(
                    queues::MEDIA,
                    &record.id,
                    store.now_ms(),
                    &MediaTask::Download {
                        attachment: record.id.clone(),
                    },
                    None,
                )
                .await?;
        }
        Ok(record)
    }

    /// Opens a stored file for reading.
    pub async fn open(&self, attachment: &Attachment) -> Result<ObjectBody, OpenError> {
        match (&attachment.status, &attachment.sha256) {
            (AttachmentStatus::Pending, _) => Err(OpenError::Pending),
            (AttachmentStatus::Failed { reason }, _) => Err(OpenError::Failed(reason.clone())),
            (AttachmentStatus::Expired, _) => Err(OpenError::Expired),
            (AttachmentStatus::Stored, None) => Err(OpenError::Missing),
            (AttachmentStatus::Stored, Some(hash)) => {
                self.0.media.get(hash).await.map_err(|e| match e {
                    MediaError::NotFound(_) => OpenError::Missing,
                    other => OpenError::Unavailable(other),
                })
            }
        }
    }

    async fn link_key(&self) -> StoreResult<&[u8]> {
        self.0
            .link_key
            .get_or_try_init(|| self.0.store.media_link_key())
            .await
            .map(Vec::as_slice)
    }

    /// A public link to attachment `id`, valid for `media.link_ttl`; `None`
    /// when `server.public_url` is not set.
    pub async fn public_link(&self, id: &str) -> StoreResult<Option<String>> {
        let Some(base) = &self.0.settings.public_url else {
            return Ok(None);
        };
        let expires = self.0.store.now_ms() / 1000 + self.0.settings.link_ttl.as_secs() as i64;
        let key = self.link_key().await?;
        Ok(Some(format!("{base}{}", link::path(key, id, expires))))
    }

    /// Whether a public link's expiry and signature are good now.
    pub async fn check_link(&self, id: &str, expires_s: i64, signature: &str) -> StoreResult<bool> {
        let key = self.link_key().await?;
        Ok(link::verify(
            key,
            id,
            expires_s,
            signature,
            self.0.store.now_ms() / 1000,
        ))
    }

    /// Receives an agent's file for `channel`: checks the declared type at
    /// once, stores the bytes (refusing more than the channel takes for that
    /// type as soon as they pass it), then checks the bytes against the type
    /// and the size against the kind it is sent as. Nothing is attached or
    /// sent yet; see [`Files::attach_upload`].
    pub async fn receive_upload<S, E>(
        &self,
        channel: Channel,
        declared: Option<&str>,
        filename: Option<&str>,
        stream: S,
    ) -> Result<Upload, UploadError<E>>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Send,
    {
        if channel == Channel::Instagram && self.0.settings.public_url.is_none() {
            return Err(UploadError::NoPublicUrl);
        }
        let declared = declared.map(base_mime).filter(|m| !sniff::is_generic(m));
        // A declared type tells the limit before any byte is kept.
        let limit = match &declared {
            Some(mime) => outbound_max_bytes(channel, outbound_kind(channel, mime, 1)?),
            None => [
                MediaKind::Image,
                MediaKind::Video,
                MediaKind::Audio,
                MediaKind::Document,
            ]
            .into_iter()
            .map(|k| outbound_max_bytes(channel, k))
            .max()
            .unwrap_or(0),
        }
        .min(self.0.media.max_bytes());
        let (object, head) = match self.0.media.put_stream_head(stream, limit).await {
            Ok(stored) => stored,
            Err(PutError::Source(e)) => return Err(UploadError::Source(e)),
            Err(PutError::Store(MediaError::TooLarge { max, .. })) => {
                return Err(UploadError::TooLarge { channel, max });
            }
            Err(PutError::Store(e)) => return Err(UploadError::Unavailable(e)),
        };
        let checked = sniff::content_type(declared.as_deref(), &head)
            .map_err(UploadError::from)
            .and_then(|mime| {
                let kind = outbound_kind(channel, &mime, object.size)?;
                Ok((mime, kind))
            });
        match checked {
            Ok((mime_type, kind)) => Ok(Upload {
                object,
                mime_type,
                kind,
                filename: filename.and_then(clean_filename),
            }),
            Err(e) => {
                self.discard(&object).await;
                Err(e)
            }
        }
    }

    /// Deletes an object nothing points at (a refused upload), so refused
    /// files do not stay in the media store.
    pub async fn discard(&self, object: &StoredObject) {
        match self.0.store.attachments_with_content(&object.hash, 1).await {
            Ok(users) if users.is_empty() && !self.0.library.pins(&object.hash) => {
                if let Err(e) = self.0.media.delete(&object.hash).await {
                    tracing::warn!(error = %e, "could not delete a refused upload; it stays in the media store");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not check whether a refused upload is in use; it stays in the media store");
            }
        }
    }

    /// Attaches a received upload to a conversation: the stored outbound
    /// record the outbox sends.
    pub async fn attach_upload(
        &self,
        upload: &Upload,
        conversation_id: &str,
        channel: Channel,
        caption: Option<String>,
        uploaded_by: &str,
    ) -> StoreResult<Attachment> {
        let record = Attachment::outbound(
            conversation_id,
            channel,
            upload.kind,
            upload.object,
            &upload.mime_type,
            upload.filename.clone(),
            caption,
            Some(uploaded_by.to_string()),
            self.0.store.now_ms(),
        );
        Ok(self.0.store.create_attachment(&record).await?.0)
    }

    /// Attaches a configured file to a conversation, once per `key` (the
    /// outbox id of the message that sends it). `None` when the file is not
    /// for this channel.
    pub async fn attach_library_file(
        &self,
        file: &LibraryFile,
        conversation_id: &str,
        channel: Channel,
        key: &str,
        sent_by: Option<String>,
    ) -> StoreResult<Option<Attachment>> {
        let Some(kind) = file.kinds.get(&channel) else {
            return Ok(None);
        };
        let mut record = Attachment::outbound(
            conversation_id,
            channel,
            *kind,
            file.object,
            &file.mime_type,
            Some(file.filename.clone()),
            None,
            sent_by,
            self.0.store.now_ms(),
        );
        record.id = Attachment::derived_id(key);
        Ok(Some(self.0.store.create_attachment(&record).await?.0))
    }

    /// Publishes a live event so consoles showing the conversation redraw
    /// the file (downloaded, failed).
    async fn publish(&self, attachment: &Attachment) {
        let event = serde_json::json!({
            "type": "attachment",
            "conversation_id": attachment.conversation_id,
            "attachment_id": attachment.id,
            "status": attachment.status.as_str(),
            "at_ms": self.0.store.now_ms(),
        });
        if let Err(e) = self.0.store.publish_event(&event).await {
            tracing::debug!(error = %e, "could not publish an attachment event");
        }
    }
}
