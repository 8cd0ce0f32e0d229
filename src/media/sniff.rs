//! What a file is, from its first bytes: the content type we store and serve.
//!
//! WhatsApp says what a file is (`mime_type` in its media answer), but
//! Instagram's CDN often answers with a generic `application/octet-stream`
//! or nothing, and an agent's browser may send any `Content-Type` it likes.
//! [`sniff`] recognises the formats customers and agents actually exchange by
//! their signatures, and [`content_type`] decides what a file is served as:
//! the declared type when it is specific and agrees with the bytes, the
//! sniffed one otherwise. Pure functions; no I/O.

use crate::channels::media::base_mime;

/// Bytes [`sniff`] looks at (keep this many of a file's start).
pub const SNIFF_LEN: usize = 64;

/// Types that say nothing about a file.
const GENERIC: &[&str] = &[
    "",
    "application/octet-stream",
    "binary/octet-stream",
    "application/binary",
    "application/unknown",
    "unknown/unknown",
];

/// The type of a file from its first bytes, for the formats Balas handles:
/// JPEG, PNG, GIF, WebP, HEIC, MP4/3GP/MOV, WebM, AVI, WAV, OGG, MP3, AMR, AAC,
/// PDF, ZIP (Office documents), and markup that a browser would run (HTML,
/// SVG, XML). `None` when none matches.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let starts = |sig: &[u8]| head.starts_with(sig);
    let at = |offset: usize, sig: &[u8]| head.get(offset..offset + sig.len()) == Some(sig);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Some("image/gif");
    }
    if starts(b"RIFF") && at(8, b"WEBP") {
        return Some("image/webp");
    }
    if starts(b"RIFF") && at(8, b"WAVE") {
        return Some("audio/wav");
    }
    if starts(b"RIFF") && at(8, b"AVI ") {
        return Some("video/x-msvideo");
    }
    if at(4, b"ftyp") {
        let brand = head.get(8..12).unwrap_or_default();
        return Some(match brand {
            b"heic" | b"heix" | b"mif1" | b"msf1" => "image/heic",
            b"3gp4" | b"3gp5" | b"3gp6" | b"3gg6" | b"3g2a" => "video/3gpp",
            b"qt  " => "video/quicktime",
            b"M4A " | b"M4B " => "audio/mp4",
            _ => "video/mp4",
        });
    }
    if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some("video/webm");
    }
    if starts(b"OggS") {
        return Some("audio/ogg");
    }
    if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        // An MPEG audio frame header; AAC's ADTS header shares its first
        // twelve bits but has layer bits 00.
        if head.len() >= 2 && head[0] == 0xFF && head[1] & 0x06 == 0 {
            return Some("audio/aac");
        }
        return Some("audio/mpeg");
    }
    if starts(b"#!AMR") {
        return Some("audio/amr");
    }
    if starts(b"%PDF-") {
        return Some("application/pdf");
    }
    if starts(b"PK\x03\x04") {
        return Some("application/zip");
    }
    let text = String::from_utf8_lossy(head)
        .trim_start()
        .to_ascii_lowercase();
    if text.starts_with("<!doctype html")
        || text.starts_with("<html")
        || text.starts_with("<script")
    {
        return Some("text/html");
    }
    if text.starts_with("<svg") {
        return Some("image/svg+xml");
    }
    if text.starts_with("<?xml") {
        return Some(if text.contains("<svg") {
            "image/svg+xml"
        } else {
            "application/xml"
        });
    }
    None
}

/// Whether `mime` says nothing about the file (missing or octet-stream).
pub fn is_generic(mime: &str) -> bool {
    GENERIC.contains(&base_mime(mime).as_str())
}

/// The families whose signature [`sniff`] knows well enough to contradict a
/// declared type: a file declared as one of these must look like one.
fn checkable(mime: &str) -> bool {
    mime.starts_with("image/") || mime.starts_with("video/") || mime == "application/pdf"
}

/// Why a declared type was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the file was sent as {declared} but its content is {actual}")]
pub struct Mismatch {
    /// What the sender said.
    pub declared: String,
    /// What the bytes are.
    pub actual: &'static str,
}

/// The content type a file is stored and served with: the declared type
/// (without parameters) when it is specific, else the sniffed one, else
/// `application/octet-stream`. A declared picture, video or PDF whose bytes
/// are recognisably something else is a [`Mismatch`] (an HTML page renamed
/// `foto.jpg`); a declared Office document that sniffs as ZIP is fine (it is
/// one).
pub fn content_type(declared: Option<&str>, head: &[u8]) -> Result<String, Mismatch> {
    let declared = declared.map(base_mime).unwrap_or_default();
    let sniffed = sniff(head);
    if is_generic(&declared) {
        return Ok(sniffed.unwrap_or("application/octet-stream").to_string());
    }
    match sniffed {
        Some(actual) if checkable(&declared) && !same_family(&declared, actual) => {
            Err(Mismatch { declared, actual })
        }
        // Markup declared as anything else is not believed either.
        Some(actual @ ("text/html" | "image/svg+xml")) if declared != actual => {
            Err(Mismatch { declared, actual })
        }
        _ => Ok(declared),
    }
}

/// Whether a declared and a sniffed type describe the same kind of file
/// (`video/mp4` declared, `video/quicktime` sniffed: the same container
/// family; `audio/mp4` for a video container: an M4A).
fn same_family(declared: &str, actual: &str) -> bool {
    if declared == actual {
        return true;
    }
    let mp4ish = |m: &str| {
        matches!(
            m,
            "video/mp4"
                | "video/quicktime"
                | "video/3gpp"
                | "video/3gp"
                | "audio/mp4"
                | "audio/m4a"
                | "audio/x-m4a"
        )
    };
    if mp4ish(declared) && mp4ish(actual) {
        return true;
    }
    // Browsers call JPEGs image/jpg or image/pjpeg sometimes.
    matches!(
        (declared, actual),
        ("image/jpg" | "image/pjpeg", "image/jpeg") | ("image/heif", "image/heic")
    )
}

/// Types a browser shows without running anything: safe to serve `inline`.
/// Everything else (HTML, SVG, XML, scripts, unknown) is served as a download.
pub fn inline_safe(mime: &str) -> bool {
    let m = base_mime(mime);
    matches!(
        m.as_str(),
        "image/jpeg" | "image/png" | "image/gif" | "image/webp" | "application/pdf"
    ) || m.starts_with("video/")
        || m.starts_with("audio/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let mut mp4 = vec![0, 0, 0, 0x18];
        mp4.extend_from_slice(b"ftypisom");
        let mut mov = vec![0, 0, 0, 0x14];
        mov.extend_from_slice(b"ftypqt  ");
        for (head, want) in [
            (&b"\xFF\xD8\xFF\xE0\x00\x10JFIF"[..], Some("image/jpeg")),
            (b"\x89PNG\r\n\x1a\n\0\0", Some("image/png")),
            (b"GIF89a..", Some("image/gif")),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some("image/webp")),
            (b"RIFF\0\0\0\0WAVEfmt ", Some("audio/wav")),
            (&mp4[..], Some("video/mp4")),
            (&mov[..], Some("video/quicktime")),
            (b"OggS\0\x02", Some("audio/ogg")),
            (b"ID3\x04", Some("audio/mpeg")),
            (b"\xFF\xFB\x90", Some("audio/mpeg")),
            (b"\xFF\xF1\x50", Some("audio/aac")),
            (b"#!AMR\n", Some("audio/amr")),
            (b"%PDF-1.7\n", Some("application/pdf")),
            (b"PK\x03\x04\x14\0", Some("application/zip")),
            (b"  <!DOCTYPE html><html>", Some("text/html")),
            (b"<svg xmlns=", Some("image/svg+xml")),
            (b"<?xml version=\"1.0\"?><svg", Some("image/svg+xml")),
            (b"hello", None),
            (b"", None),
        ] {
            assert_eq!(sniff(head), want, "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn declared_or_sniffed() {
        let jpeg = b"\xFF\xD8\xFF\xE0";
        assert_eq!(
            content_type(Some("image/jpeg"), jpeg).unwrap(),
            "image/jpeg"
        );
        // Instagram's CDN: generic or missing → what the bytes are.
        assert_eq!(
            content_type(Some("application/octet-stream"), jpeg).unwrap(),
            "image/jpeg"
        );
        assert_eq!(content_type(None, jpeg).unwrap(), "image/jpeg");
        assert_eq!(
            content_type(None, b"??").unwrap(),
            "application/octet-stream"
        );
        // Parameters are dropped, case folded.
        assert_eq!(
            content_type(Some("Audio/OGG; codecs=opus"), b"OggS").unwrap(),
            "audio/ogg"
        );
        // A docx is a zip.
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        assert_eq!(content_type(Some(docx), b"PK\x03\x04").unwrap(), docx);
        // An HTML page sent as a photo, or as a PDF, is refused.
        assert!(content_type(Some("image/jpeg"), b"<html><script>").is_err());
        assert!(content_type(Some("application/pdf"), b"\x89PNG\r\n\x1a\n").is_err());
        assert!(content_type(Some("text/plain"), b"<svg onload=x>").is_err());
        // Same container family is fine.
        let mut mov = vec![0, 0, 0, 0x14];
        mov.extend_from_slice(b"ftypqt  ");
        assert_eq!(content_type(Some("video/mp4"), &mov).unwrap(), "video/mp4");
        assert_eq!(content_type(Some("image/jpg"), jpeg).unwrap(), "image/jpg");
        // Unknown bytes: the declaration stands.
        assert_eq!(
            content_type(Some("text/plain"), b"halo").unwrap(),
            "text/plain"
        );
    }

    #[test]
    fn what_may_be_shown_inline() {
        for safe in [
            "image/jpeg",
            "image/png",
            "video/mp4",
            "audio/ogg; codecs=opus",
            "application/pdf",
        ] {
            assert!(inline_safe(safe), "{safe}");
        }
        for unsafe_type in [
            "text/html",
            "image/svg+xml",
            "application/xml",
            "text/plain",
            "application/octet-stream",
            "application/javascript",
        ] {
            assert!(!inline_safe(unsafe_type), "{unsafe_type}");
        }
    }
}
