//! Media facts of the two platforms: the kinds of files customers send and we
//! send back, which MIME types each platform takes, and how large they may be.
//!
//! Sources: WhatsApp "Supported media types" (restated by AWS End User Messaging
//! Social, `docs.aws.amazon.com/social-messaging/latest/userguide/supported-media-types.html`):
//! audio 16 MB (aac, amr, mpeg, mp4, ogg/opus), document 100 MB (txt, pdf, Office),
//! image 5 MB (jpeg, png), sticker 100 KB static / 500 KB animated (webp), video
//! 16 MB (mp4, 3gp). Instagram: FACTS.md §7 and Meta's "Send a Message" /
//! "Upload Media for Instagram Messaging" pages: image 8 MB (png, jpeg), audio
//! 25 MB (aac, m4a, wav, mp4), video 25 MB (mp4, ogg, avi, mov, webm), file 25 MB
//! (pdf).
//!
//! Meta writes "MB" without saying whether it means 10^6 or 2^20 bytes, so the
//! two directions read it differently on purpose: a file a customer sent is
//! accepted up to the binary reading (we never refuse what Meta delivered), a
//! file we send must fit the decimal one (Meta never refuses what we send).
//! Everything here is pure; nothing does I/O.

use serde::{Deserialize, Serialize};

use super::event::Channel;

/// What kind of file a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A photo (WhatsApp `image`, Instagram `image`).
    Image,
    /// A video.
    Video,
    /// Audio, voice notes included (see [`InboundMedia::voice`](super::InboundMedia)).
    Audio,
    /// Any other file: WhatsApp `document`, Instagram `file`.
    #[serde(alias = "file")]
    Document,
    /// A WhatsApp sticker (webp).
    Sticker,
    /// The picture or video of an Instagram story that mentions us or that the
    /// customer replied to; whether it is a picture or a video is known only from
    /// its content type after download.
    Story,
}

impl MediaKind {
    /// Every kind, in a fixed order.
    pub const ALL: [MediaKind; 6] = [
        MediaKind::Image,
        MediaKind::Video,
        MediaKind::Audio,
        MediaKind::Document,
        MediaKind::Sticker,
        MediaKind::Story,
    ];

    /// The lowercase name used in JSON, the API and transcripts.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
            MediaKind::Story => "story",
        }
    }

    /// The kind of a WhatsApp message `type` or an Instagram attachment `type`
    /// (`file` is a document); `None` for types that carry no file we download
    /// (`share`, `ig_reel`, `ig_post`, `fallback`, unknown ones).
    pub fn from_platform(name: &str) -> Option<MediaKind> {
        match name {
            "image" => Some(MediaKind::Image),
            "video" => Some(MediaKind::Video),
            "audio" => Some(MediaKind::Audio),
            "document" | "file" => Some(MediaKind::Document),
            "sticker" => Some(MediaKind::Sticker),
            _ => None,
        }
    }
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const KB: u64 = 1_000;
const MB: u64 = 1_000_000;
const KIB: u64 = 1_024;
const MIB: u64 = 1_024 * 1_024;

/// The platform's size limit for a kind as a number of "MB"/"KB" units and the
/// unit: `(amount, is_kilo)`.
fn platform_amount(channel: Channel, kind: MediaKind) -> (u64, bool) {
    match (channel, kind) {
        (Channel::WhatsApp, MediaKind::Image) => (5, false),
        (Channel::WhatsApp, MediaKind::Video | MediaKind::Audio) => (16, false),
        (Channel::WhatsApp, MediaKind::Document) => (100, false),
        // Animated stickers may be 500 KB, static ones 100 KB.
        (Channel::WhatsApp, MediaKind::Sticker) => (500, true),
        // WhatsApp has no stories; treat one like a video should it ever appear.
        (Channel::WhatsApp, MediaKind::Story) => (16, false),
        // Instagram has no stickers as files; a picture is the closest.
        (Channel::Instagram, MediaKind::Image | MediaKind::Sticker) => (8, false),
        (
            Channel::Instagram,
            MediaKind::Video | MediaKind::Audio | MediaKind::Document | MediaKind::Story,
        ) => (25, false),
    }
}

/// Largest file of `kind` a customer can send us on `channel`, in bytes (the
/// lenient, binary reading of Meta's "MB").
pub fn inbound_max_bytes(channel: Channel, kind: MediaKind) -> u64 {
    match platform_amount(channel, kind) {
        (n, true) => n * KIB,
        (n, false) => n * MIB,
    }
}

/// Largest file of `kind` we may send on `channel`, in bytes (the strict, decimal
/// reading of Meta's "MB").
pub fn outbound_max_bytes(channel: Channel, kind: MediaKind) -> u64 {
    match platform_amount(channel, kind) {
        (n, true) => n * KB,
        (n, false) => n * MB,
    }
}

/// The MIME type without parameters, lowercased: `"Audio/OGG; codecs=opus"` →
/// `"audio/ogg"`.
pub fn base_mime(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

const WA_DOCUMENTS: &[&str] = &[
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

/// The MIME types `channel` accepts when we send a file of `kind` (empty when the
/// platform cannot send that kind at all).
pub fn outbound_mime_types(channel: Channel, kind: MediaKind) -> &'static [&'static str] {
    match (channel, kind) {
        (Channel::WhatsApp, MediaKind::Image) => &["image/jpeg", "image/png"],
        // Meta writes `video/3gp`; the registered name is `video/3gpp`.
        (Channel::WhatsApp, MediaKind::Video) => &["video/mp4", "video/3gpp", "video/3gp"],
        // `audio/ogg` only with the opus codec (not checkable from the type alone).
        (Channel::WhatsApp, MediaKind::Audio) => &[
            "audio/aac",
            "audio/amr",
            "audio/mpeg",
            "audio/mp4",
            "audio/ogg",
        ],
        (Channel::WhatsApp, MediaKind::Document) => WA_DOCUMENTS,
        (Channel::WhatsApp, MediaKind::Sticker) => &["image/webp"],
        (Channel::Instagram, MediaKind::Image) => &["image/png", "image/jpeg"],
        (Channel::Instagram, MediaKind::Video) => &[
            "video/mp4",
            "video/ogg",
            "video/x-msvideo",
            "video/avi",
            "video/quicktime",
            "video/webm",
        ],
        (Channel::Instagram, MediaKind::Audio) => &[
            "audio/aac",
            "audio/mp4",
            "audio/x-m4a",
            "audio/m4a",
            "audio/wav",
            "audio/x-wav",
            "audio/wave",
            "audio/vnd.wave",
        ],
        (Channel::Instagram, MediaKind::Document) => &["application/pdf"],
        (Channel::Instagram, MediaKind::Sticker) | (_, MediaKind::Story) => &[],
    }
}

/// WhatsApp caption limit in chars (OAS `MediaObject_1.caption.maxLength`).
pub const MAX_CAPTION: usize = 1024;

/// Whether `channel` shows a caption with a file of `kind`: WhatsApp for
/// images, videos and documents (OAS `MediaObject_1`); Instagram never (its
/// attachments have only `type` and `payload`, FACTS.md §7).
pub fn caption_supported(channel: Channel, kind: MediaKind) -> bool {
    channel == Channel::WhatsApp
        && matches!(
            kind,
            MediaKind::Image | MediaKind::Video | MediaKind::Document
        )
}

/// Why a file cannot be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaRejection {
    /// The platform does not take this type (as this kind, or at all): HTTP 415.
    #[error("{channel} does not accept {mime_type} files{}", kind.map(|k| format!(" as {k}")).unwrap_or_default())]
    UnsupportedType {
        /// The platform.
        channel: Channel,
        /// The file's MIME type (without parameters).
        mime_type: String,
        /// The kind asked for, when one was.
        kind: Option<MediaKind>,
    },
    /// Larger than the platform allows for this kind: HTTP 413.
    #[error("{kind} files on {channel} may be at most {max} bytes; this one has {size}")]
    TooLarge {
        /// The platform.
        channel: Channel,
        /// The kind.
        kind: MediaKind,
        /// The file's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Nothing to send: HTTP 422.
    #[error("the file is empty")]
    Empty,
}

/// Checks that a file of `kind`, `mime_type` and `size` bytes can be sent on
/// `channel`.
pub fn check_outbound(
    channel: Channel,
    kind: MediaKind,
    mime_type: &str,
    size: u64,
) -> Result<(), MediaRejection> {
    if size == 0 {
        return Err(MediaRejection::Empty);
    }
    let mime = base_mime(mime_type);
    if !outbound_mime_types(channel, kind).contains(&mime.as_str()) {
        return Err(MediaRejection::UnsupportedType {
            channel,
            mime_type: mime,
            kind: Some(kind),
        });
    }
    let max = outbound_max_bytes(channel, kind);
    if size > max {
        return Err(MediaRejection::TooLarge {
            channel,
            kind,
            size,
            max,
        });
    }
    Ok(())
}

/// The kind a file of `mime_type` and `size` bytes is sent as on `channel`: its
/// natural kind (picture, video, audio) when the platform takes it as that, else
/// a document when the platform takes that type as one (PDF, Office, text).
/// Stickers are never chosen for an agent's file. The error is the one of the
/// natural kind when there is one ("too large as a video"), else 415.
pub fn outbound_kind(
    channel: Channel,
    mime_type: &str,
    size: u64,
) -> Result<MediaKind, MediaRejection> {
    let mime = base_mime(mime_type);
    let natural = match mime.split('/').next().unwrap_or_default() {
        "image" => Some(MediaKind::Image),
        "video" => Some(MediaKind::Video),
        "audio" => Some(MediaKind::Audio),
        _ => None,
    };
    let mut first_error = None;
    for kind in natural.into_iter().chain([MediaKind::Document]) {
        match check_outbound(channel, kind, &mime, size) {
            Ok(()) => return Ok(kind),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(match first_error {
        // Neither as its own kind nor as a document: say so without naming a kind.
        Some(MediaRejection::UnsupportedType { .. }) | None => MediaRejection::UnsupportedType {
            channel,
            mime_type: mime,
            kind: None,
        },
        Some(e) => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_names() {
        for (name, kind) in [
            ("image", Some(MediaKind::Image)),
            ("video", Some(MediaKind::Video)),
            ("audio", Some(MediaKind::Audio)),
            ("document", Some(MediaKind::Document)),
            ("file", Some(MediaKind::Document)),
            ("sticker", Some(MediaKind::Sticker)),
            ("share", None),
            ("ig_reel", None),
            ("story_mention", None),
        ] {
            assert_eq!(MediaKind::from_platform(name), kind, "{name}");
        }
        for kind in MediaKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<MediaKind>(&json).unwrap(), kind);
        }
        assert_eq!(
            serde_json::from_str::<MediaKind>("\"file\"").unwrap(),
            MediaKind::Document
        );
    }

    #[test]
    fn limits_table() {
        use Channel::*;
        use MediaKind::*;
        for (channel, kind, inbound, outbound) in [
            (WhatsApp, Image, 5 * MIB, 5 * MB),
            (WhatsApp, Video, 16 * MIB, 16 * MB),
            (WhatsApp, Audio, 16 * MIB, 16 * MB),
            (WhatsApp, Document, 100 * MIB, 100 * MB),
            (WhatsApp, Sticker, 500 * KIB, 500 * KB),
            (Instagram, Image, 8 * MIB, 8 * MB),
            (Instagram, Video, 25 * MIB, 25 * MB),
            (Instagram, Audio, 25 * MIB, 25 * MB),
            (Instagram, Document, 25 * MIB, 25 * MB),
            (Instagram, Story, 25 * MIB, 25 * MB),
        ] {
            assert_eq!(
                inbound_max_bytes(channel, kind),
                inbound,
                "{channel} {kind}"
            );
            assert_eq!(
                outbound_max_bytes(channel, kind),
                outbound,
                "{channel} {kind}"
            );
        }
    }

    #[test]
    fn outbound_checks() {
        use Channel::*;
        use MediaKind::*;
        assert_eq!(check_outbound(WhatsApp, Image, "image/jpeg", 1000), Ok(()));
        assert_eq!(
            check_outbound(WhatsApp, Audio, "audio/ogg; codecs=opus", 10),
            Ok(())
        );
        assert_eq!(check_outbound(WhatsApp, Image, "Image/PNG", 5 * MB), Ok(()));
        assert!(matches!(
            check_outbound(WhatsApp, Image, "image/png", 5 * MB + 1),
            Err(MediaRejection::TooLarge { max, .. }) if max == 5 * MB
        ));
        assert!(matches!(
            check_outbound(WhatsApp, Image, "image/gif", 10),
            Err(MediaRejection::UnsupportedType {
                kind: Some(Image),
                ..
            })
        ));
        assert_eq!(
            check_outbound(Instagram, Document, "application/pdf", 0),
            Err(MediaRejection::Empty)
        );
        assert!(check_outbound(Instagram, Sticker, "image/webp", 10).is_err());
        assert!(check_outbound(WhatsApp, Story, "image/jpeg", 10).is_err());
    }

    #[test]
    fn kind_for_an_agent_file() {
        use Channel::*;
        use MediaKind::*;
        assert_eq!(outbound_kind(WhatsApp, "image/jpeg", 1000), Ok(Image));
        assert_eq!(
            outbound_kind(WhatsApp, "application/pdf", 1000),
            Ok(Document)
        );
        assert_eq!(
            outbound_kind(Instagram, "application/pdf", 1000),
            Ok(Document)
        );
        assert_eq!(outbound_kind(WhatsApp, "video/mp4", 10 * MB), Ok(Video));
        // Too large to be a video on WhatsApp, and not a document type there.
        assert!(matches!(
            outbound_kind(WhatsApp, "video/mp4", 20 * MB),
            Err(MediaRejection::TooLarge { kind: Video, .. })
        ));
        // Excel: a document on WhatsApp, nothing on Instagram.
        let xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        assert_eq!(outbound_kind(WhatsApp, xlsx, 10), Ok(Document));
        assert_eq!(
            outbound_kind(Instagram, xlsx, 10),
            Err(MediaRejection::UnsupportedType {
                channel: Instagram,
                mime_type: xlsx.into(),
                kind: None
            })
        );
        assert!(outbound_kind(WhatsApp, "text/html", 10).is_err());
        assert!(outbound_kind(WhatsApp, "image/svg+xml", 10).is_err());
    }

    #[test]
    fn mime_bases() {
        assert_eq!(base_mime("audio/ogg; codecs=opus"), "audio/ogg");
        assert_eq!(base_mime(" IMAGE/JPEG "), "image/jpeg");
        assert_eq!(base_mime(""), "");
    }
}
