//! Helpers shared by the WhatsApp and Instagram renderers: length limits and the
//! error a renderer returns when content cannot be expressed on a platform.

use super::event::Channel;
use super::media::MediaRejection;

/// The ellipsis appended when text is shortened to fit a limit.
pub const ELLIPSIS: char = '…';

/// Why an [`OutboundMessage`](super::OutboundMessage) could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The platform has no equivalent (e.g. templates or mark-read on Instagram).
    #[error("{what} is not available on {channel}")]
    NotSupported {
        /// The platform.
        channel: Channel,
        /// What was asked for.
        what: &'static str,
    },
    /// A required part is empty (text body, template name …); no valid request exists.
    #[error("{what} is empty")]
    Empty {
        /// Which part.
        what: &'static str,
    },
    /// A file the platform does not take (type, size) or that is empty.
    #[error("the file cannot be sent: {0}")]
    Media(#[from] MediaRejection),
    /// A stored attachment that was not uploaded (WhatsApp) or given a public URL
    /// (Instagram) before sending.
    #[error("attachment {0} was not handed to the platform before sending")]
    NotUploaded(String),
    /// The message was handed to the other platform's renderer.
    #[error("message for {got} given to the {expected} renderer")]
    WrongChannel {
        /// The renderer's platform.
        expected: Channel,
        /// The message's platform.
        got: Channel,
    },
}

/// Shortens `s` to at most `max` Unicode scalar values (chars), ending with `…`
/// when it had to be cut. `max == 0` yields an empty string.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push(ELLIPSIS);
    out
}

/// Cuts `s` to at most `max` chars without an ellipsis (for ids and payloads,
/// where `…` would only make the value less recognizable).
pub fn cut_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Shortens `s` to at most `max` UTF-8 bytes, cutting on a char boundary and ending
/// with `…` (3 bytes) when it had to be cut.
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let room = max.saturating_sub(ELLIPSIS.len_utf8());
    let mut end = room;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].to_string();
    if max >= ELLIPSIS.len_utf8() {
        out.push(ELLIPSIS);
    }
    out
}

/// A document's file name as shown to the customer: the last path component,
/// control characters removed, at most [`MAX_FILENAME`] chars (keeping the
/// extension when it has to be shortened). `None` when nothing is left.
pub fn clean_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let base: String = base.chars().filter(|c| !c.is_control()).collect();
    let base = base.trim();
    if base.is_empty() || base == "." || base == ".." {
        return None;
    }
    if base.chars().count() <= MAX_FILENAME {
        return Some(base.to_string());
    }
    let ext = base
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.chars().count() <= 16);
    Some(match ext {
        Some(ext) => {
            let stem_room = MAX_FILENAME - ext.chars().count() - 1;
            format!("{}.{ext}", truncate_chars(base, stem_room))
        }
        None => truncate_chars(base, MAX_FILENAME),
    })
}

/// Longest file name we send (chars). Meta documents no limit; 240 leaves room
/// below the 255 bytes most phone file systems allow.
pub const MAX_FILENAME: usize = 240;

/// Makes `titles` unique by appending ` (2)`, ` (3)` … to repeats, keeping each
/// within `max` chars (the base is shortened with `…` to make room).
pub fn dedupe_labels(titles: &mut [String], max: usize) {
    let mut seen: Vec<String> = Vec::with_capacity(titles.len());
    for title in titles.iter_mut() {
        if seen.contains(title) {
            let mut n = 2;
            loop {
                let suffix = format!(" ({n})");
                let base_room = max.saturating_sub(suffix.chars().count());
                let candidate = format!("{}{suffix}", truncate_chars(title, base_room));
                if !seen.contains(&candidate) {
                    *title = candidate;
                    break;
                }
                n += 1;
            }
        }
        seen.push(title.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("😀😀😀😀", 3), "😀😀…");
        assert_eq!(truncate_chars("😀😀😀", 3), "😀😀😀");
        assert_eq!(truncate_chars("abc", 0), "");
        assert_eq!(cut_chars("äbc", 2), "äb");
    }

    #[test]
    fn bytes() {
        assert_eq!(truncate_bytes("abc", 3), "abc");
        assert_eq!(truncate_bytes("abcdef", 5), "ab…");
        // "😀" is 4 bytes: 10 bytes max → 7 bytes of room → one emoji + "…".
        let s = "😀😀😀";
        let t = truncate_bytes(s, 10);
        assert_eq!(t, "😀…");
        assert!(t.len() <= 10);
        for max in 0..20 {
            assert!(truncate_bytes("é😀aé😀", max).len() <= max);
        }
    }

    #[test]
    fn filenames() {
        assert_eq!(clean_filename("nota.pdf").as_deref(), Some("nota.pdf"));
        assert_eq!(
            clean_filename("C:\\Users\\x\\nota servis.pdf").as_deref(),
            Some("nota servis.pdf")
        );
        assert_eq!(
            clean_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(clean_filename("a\u{0}b\n.pdf").as_deref(), Some("ab.pdf"));
        assert_eq!(clean_filename(" / "), None);
        assert_eq!(clean_filename(".."), None);
        let long = format!("{}.pdf", "x".repeat(300));
        let cut = clean_filename(&long).unwrap();
        assert_eq!(cut.chars().count(), MAX_FILENAME);
        assert!(cut.ends_with("….pdf"), "{cut}");
    }

    #[test]
    fn labels() {
        let mut v = vec!["Ya".to_string(), "Ya".to_string(), "Ya".to_string()];
        dedupe_labels(&mut v, 20);
        assert_eq!(v, ["Ya", "Ya (2)", "Ya (3)"]);
        let long = "x".repeat(20);
        let mut v = vec![long.clone(), long.clone()];
        dedupe_labels(&mut v, 20);
        assert_eq!(v[1].chars().count(), 20);
        assert_ne!(v[0], v[1]);
    }
}
