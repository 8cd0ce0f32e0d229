//! Files the configuration names: a picture or document sent after an
//! intent's reply (`[intents.attachments]`) or with a canned response
//! (`[[canned]] attachment`).
//!
//! They are read, checked against every enabled channel's types and sizes,
//! and put in the media store when the application starts, so a bad path or
//! a file the platform would refuse stops the start with the key that names
//! it, never a customer's conversation later. Retention never deletes their
//! objects ([`Library::pins`]).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::channels::media::outbound_kind;
use crate::channels::render::clean_filename;
use crate::channels::{Channel, MediaKind};
use crate::config::Config;
use crate::media::sniff::content_type;
use crate::media::{ContentHash, MediaError, MediaStore, StoredObject};

/// One configured file, stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its object in the media store.
    pub object: StoredObject,
    /// Its content type.
    pub mime_type: String,
    /// The file name the customer sees.
    pub filename: String,
    /// What it is sent as, per enabled channel.
    pub kinds: BTreeMap<Channel, MediaKind>,
}

/// The configured files.
#[derive(Debug, Clone, Default)]
pub struct Library {
    by_intent: BTreeMap<String, LibraryFile>,
    by_canned: BTreeMap<String, LibraryFile>,
    pinned: HashSet<ContentHash>,
}

/// A configured file that cannot be used; names the key.
#[derive(Debug, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct LibraryError {
    /// The config key, e.g. `intents.attachments.warranty`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// The content type a file's extension suggests (documents cannot be told
/// apart by their bytes: a .docx is a ZIP).
fn type_of_extension(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "3gp" => "video/3gpp",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "doc" => "application/msword",
        "xls" => "application/vnd.ms-excel",
        "ppt" => "application/vnd.ms-powerpoint",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "m4a" => "audio/mp4",
        _ => return None,
    })
}

impl Library {
    /// Reads, checks and stores every file the configuration names.
    pub async fn load(config: &Config, media: &MediaStore) -> Result<Library, LibraryError> {
        let channels: Vec<Channel> = [
            (Channel::WhatsApp, config.whatsapp.enabled),
            (Channel::Instagram, config.instagram.enabled),
        ]
        .into_iter()
        .filter_map(|(c, on)| on.then_some(c))
        .collect();
        let mut library = Library::default();
        for (intent, path) in &config.intents.attachments {
            let key = format!("intents.attachments.{intent}");
            let file = load_one(&key, path, &channels, media).await?;
            library.pinned.insert(file.object.hash);
            library.by_intent.insert(intent.clone(), file);
        }
        for canned in &config.canned {
            if let Some(path) = &canned.attachment {
                let key = format!("canned.attachment (canned response `{}`)", canned.shortcut);
                let file = load_one(&key, path, &channels, media).await?;
                library.pinned.insert(file.object.hash);
                library.by_canned.insert(canned.shortcut.clone(), file);
            }
        }
        Ok(library)
    }

    /// The file sent after `intent`'s reply.
    pub fn for_intent(&self, intent: &str) -> Option<&LibraryFile> {
        self.by_intent.get(intent)
    }

    /// The file of canned response `shortcut`.
    pub fn for_canned(&self, shortcut: &str) -> Option<&LibraryFile> {
        self.by_canned.get(shortcut)
    }

    /// Whether an object is one of these files (retention keeps it).
    pub fn pins(&self, hash: &ContentHash) -> bool {
        self.pinned.contains(hash)
    }
}

async fn load_one(
    key: &str,
    path: &Path,
    channels: &[Channel],
    media: &MediaStore,
) -> Result<LibraryFile, LibraryError> {
    let fail = |message: String| LibraryError {
        key: key.to_string(),
        message,
    };
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    let head = &bytes[..bytes.len().min(crate::media::sniff::SNIFF_LEN)];
    let mime = content_type(type_of_extension(path), head)
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let size = bytes.len() as u64;
    let mut kinds = BTreeMap::new();
    for &channel in channels {
        let kind = outbound_kind(channel, &mime, size).map_err(|e| {
            fail(format!(
                "{} cannot be sent: {e}; use a JPEG or PNG picture or a PDF within the platform's size limit",
                path.display()
            ))
        })?;
        kinds.insert(channel, kind);
    }
    let object = media
        .put_bytes(Bytes::from(bytes), media.max_bytes())
        .await
        .map_err(|e| match e {
            MediaError::TooLarge { max, .. } => fail(format!(
                "{} is larger than media.max_bytes ({max} bytes)",
                path.display()
            )),
            other => fail(format!("storing {}: {other}", path.display())),
        })?;
    let filename = path
        .file_name()
        .and_then(|n| clean_filename(&n.to_string_lossy()))
        .unwrap_or_else(|| "file".into());
    Ok(LibraryFile {
        path: path.to_path_buf(),
        object,
        mime_type: mime,
        filename,
        kinds,
    })
}
