//! Helpers shared by the WhatsApp and Instagram renderers: length limits and the
//! error a renderer returns when content cannot be expressed on a platform.

use super::event::Channel;

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
