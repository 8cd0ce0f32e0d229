//! The `media` queue: downloading customers' files, and the retention sweep.
//!
//! A download job exists for every attachment record that is still pending.
//! It asks the Graph API for the file ([`MediaClient::download`]), streams it
//! into the media store (checked against Meta's size and SHA-256 on the way)
//! and marks the record stored with the content type it will be served with.
//! Failures that may pass (network, 5xx, rate limits, a truncated transfer,
//! the media store being down) are retried with backoff; failures that will
//! not (an expired link, a file too large, an unknown media id) mark the
//! record failed with the reason at once. After [`DOWNLOAD_ATTEMPTS`] failed
//! tries the record is marked failed too: a file is never silently missing.
//!
//! A crash in the middle of a download loses nothing: the record stays
//! pending, the job's lease runs out, and the next holder downloads again
//! (the bytes are content-addressed, so a half-finished earlier try leaves no
//! trace but a spool file swept at start).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::Files;
use crate::channels::{MediaClient, SendError};
use crate::jobs::{Handler, Run, Verdict};
use crate::media::sniff::content_type;
use crate::media::{MediaError, PutError};
use crate::store::{Attachment, AttachmentStatus, queues};

/// Tries before a file is given up on (about 45 minutes with the runner's
/// backoff; WhatsApp media ids stay valid for weeks, Instagram links days).
pub const DOWNLOAD_ATTEMPTS: u32 = 16;

/// A job of the `media` queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum MediaTask {
    /// Download a customer's file.
    Download {
        /// The attachment record.
        attachment: String,
    },
}

/// The handler of the `media` queue.
pub struct MediaHandler {
    files: Files,
    client: MediaClient,
}

impl MediaHandler {
    /// The handler over `files`, downloading with their media client.
    pub fn new(files: Files) -> MediaHandler {
        let client = files.0.client.clone();
        MediaHandler { files, client }
    }
}

/// What became of one try.
enum Outcome {
    Stored(Box<Attachment>),
    /// Worth another try.
    Retry(String, Option<std::time::Duration>),
    /// Never worth another try.
    Give(String),
}

fn from_send_error(e: SendError) -> Outcome {
    match e {
        SendError::Retryable {
            title, retry_after, ..
        } => Outcome::Retry(title, retry_after),
        SendError::Unknown { title } => Outcome::Retry(title, None),
        SendError::Permanent { code, title } if code > 0 => {
            Outcome::Give(format!("Meta refused the download ({code}): {title}"))
        }
        SendError::Permanent { title, .. } => Outcome::Give(title),
    }
}

impl MediaHandler {
    async fn download(&self, record: &Attachment) -> Outcome {
        let Some(remote) = &record.remote else {
            return Outcome::Give("the message described no file to download".into());
        };
        let limit = self
            .files
            .media()
            .inbound_limit(record.channel, record.kind);
        let download = match self
            .client
            .download(record.channel, record.number.as_deref(), remote, limit)
            .await
        {
            Ok(d) => d,
            Err(e) => return from_send_error(e),
        };
        let announced = download.mime_type.clone();
        let (object, head) = match self
            .files
            .media()
            .put_stream_head(download.body, limit)
            .await
        {
            Ok(stored) => stored,
            Err(PutError::Source(e)) => return from_send_error(e),
            Err(PutError::Store(MediaError::TooLarge { max, .. })) => {
                return Outcome::Give(format!(
                    "the file is larger than the {max} bytes allowed for a {}",
                    record.kind
                ));
            }
            Err(PutError::Store(e)) => return Outcome::Retry(e.to_string(), None),
        };
        // Meta's type when it is specific; the bytes' otherwise (Instagram's
        // CDN may say octet-stream). A file whose bytes contradict Meta's
        // type is kept as what the bytes are.
        let mime =
            content_type(announced.as_deref(), &head).unwrap_or_else(|m| m.actual.to_string());
        match self
            .files
            .store()
            .mark_attachment_stored(&record.id, object, &mime)
            .await
        {
            Ok(Some(a)) => Outcome::Stored(Box::new(a)),
            Ok(None) => Outcome::Give("the attachment record disappeared".into()),
            Err(e) => Outcome::Retry(e.to_string(), None),
        }
    }

    async fn run_download(&self, job: &Run<MediaTask>, id: &str) -> Verdict {
        let store = self.files.store();
        let record = match store.attachment(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Verdict::Done,
            Err(e) => return Verdict::failed(e),
        };
        if record.status != AttachmentStatus::Pending {
            return Verdict::Done;
        }
        let channel = record.channel.as_str();
        let outcome = self.download(&record).await;
        if job.lease_lost() {
            // Another process holds this download now; it decides.
            return Verdict::Done;
        }
        let (reason, retry_in) = match outcome {
            Outcome::Stored(a) => {
                metrics::counter!("balas_media_downloads_total", "channel" => channel, "result" => "stored").increment(1);
                tracing::info!(attachment = %a.id, kind = %a.kind, size = a.size, "customer file stored");
                self.files.publish(&a).await;
                return Verdict::Done;
            }
            Outcome::Retry(reason, retry_in) if job.attempts + 1 < DOWNLOAD_ATTEMPTS => {
                (reason, retry_in)
            }
            Outcome::Retry(reason, _) => {
                let reason =
                    format!("gave up after {DOWNLOAD_ATTEMPTS} attempts; the last error: {reason}");
                return self.give_up(&record, &reason).await;
            }
            Outcome::Give(reason) => return self.give_up(&record, &reason).await,
        };
        metrics::counter!("balas_media_downloads_total", "channel" => channel, "result" => "retry")
            .increment(1);
        if let Err(e) = store.note_attachment_retry(&record.id, &reason).await {
            tracing::warn!(attachment = %record.id, error = %e, "could not count a failed download");
        }
        Verdict::Failed {
            error: reason,
            retry_in,
        }
    }

    async fn give_up(&self, record: &Attachment, reason: &str) -> Verdict {
        tracing::warn!(attachment = %record.id, kind = %record.kind, %reason, "customer file could not be downloaded");
        match self
            .files
            .store()
            .mark_attachment_failed(&record.id, reason)
            .await
        {
            Ok(Some(a)) => {
                metrics::counter!("balas_media_downloads_total", "channel" => record.channel.as_str(), "result" => "failed").increment(1);
                self.files.publish(&a).await;
                Verdict::Done
            }
            Ok(None) => Verdict::Done,
            Err(e) => Verdict::failed(e),
        }
    }
}

#[async_trait]
impl Handler for MediaHandler {
    type Payload = MediaTask;

    fn queue(&self) -> &'static str {
        queues::MEDIA
    }

    async fn run(&self, job: &Run<MediaTask>) -> Verdict {
        match &job.payload {
            MediaTask::Download { attachment } => self.run_download(job, attachment).await,
        }
    }
}
