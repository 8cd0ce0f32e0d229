//! The platforms' messaging windows, as a pure decision.
//!
//! WhatsApp: free-form messages only within 24 hours of the customer's last
//! message; templates any time. Instagram: automated messages within 24 hours; a
//! human agent's reply up to 7 days with the `HUMAN_AGENT` tag; no templates.

use crate::channels::{Channel, OutboundContent};

/// 24 hours in ms.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;
/// Instagram's human-agent window: 7 days in ms.
pub const HUMAN_AGENT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// What may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowDecision {
    /// Send as is.
    Send,
    /// Send with Instagram's `HUMAN_AGENT` tag.
    SendWithHumanAgentTag,
}

/// Why a message may not be sent now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowClosed {
    /// More than 24 hours (or never) since the customer's last message; on
    /// WhatsApp, use an approved template instead.
    #[error(
        "the customer's last message was more than 24 hours ago; only an approved template can be sent on WhatsApp"
    )]
    WhatsAppNeedsTemplate,
    /// Instagram allows nothing from us after 24 hours (7 days for a human agent).
    #[error(
        "the Instagram window is closed: automated messages only within 24 hours of the customer's last message, agent replies within 7 days"
    )]
    InstagramClosed,
    /// Templates and read receipts do not exist on Instagram.
    #[error("this kind of message cannot be sent on Instagram")]
    NotOnInstagram,
}

/// Decides whether `content` may go to a contact whose last message was at
/// `last_inbound_ms`; `by_human` is true for an agent's own reply.
pub fn check(
    channel: Channel,
    content: &OutboundContent,
    by_human: bool,
    last_inbound_ms: Option<i64>,
    now_ms: i64,
) -> Result<WindowDecision, WindowClosed> {
    let since = last_inbound_ms.map(|t| now_ms.saturating_sub(t));
    let within = |limit: i64| since.is_some_and(|s| s < limit);
    match channel {
        Channel::WhatsApp => {
            if !content.needs_window() || within(WINDOW_MS) {
                Ok(WindowDecision::Send)
            } else {
                Err(WindowClosed::WhatsAppNeedsTemplate)
            }
        }
        Channel::Instagram => {
            if !content.needs_window() {
                return Err(WindowClosed::NotOnInstagram);
            }
            if within(WINDOW_MS) {
                Ok(WindowDecision::Send)
            } else if by_human && within(HUMAN_AGENT_WINDOW_MS) {
                Ok(WindowDecision::SendWithHumanAgentTag)
            } else {
                Err(WindowClosed::InstagramClosed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * 1000;

    fn text() -> OutboundContent {
        OutboundContent::Text { body: "hi".into() }
    }

    fn template() -> OutboundContent {
        OutboundContent::Template {
            name: "t".into(),
            language: "id".into(),
            body_parameters: vec![],
            quick_reply_payloads: vec![],
        }
    }

    #[test]
    fn window_table() {
        use Channel::*;
        use WindowDecision::*;
        let now = 1_000 * H;
        type Case = (
            Channel,
            OutboundContent,
            bool,
            Option<i64>,
            Result<WindowDecision, WindowClosed>,
        );
        let cases: Vec<Case> = vec![
            (WhatsApp, text(), false, Some(now - H), Ok(Send)),
            (
                WhatsApp,
                text(),
                false,
                Some(now - 24 * H),
                Err(WindowClosed::WhatsAppNeedsTemplate),
            ),
            (
                WhatsApp,
                text(),
                true,
                Some(now - 25 * H),
                Err(WindowClosed::WhatsAppNeedsTemplate),
            ),
            (
                WhatsApp,
                text(),
                false,
                None,
                Err(WindowClosed::WhatsAppNeedsTemplate),
            ),
            (WhatsApp, template(), false, None, Ok(Send)),
            (Instagram, text(), false, Some(now - 23 * H), Ok(Send)),
            (
                Instagram,
                text(),
                false,
                Some(now - 25 * H),
                Err(WindowClosed::InstagramClosed),
            ),
            (
                Instagram,
                text(),
                true,
                Some(now - 25 * H),
                Ok(SendWithHumanAgentTag),
            ),
            (
                Instagram,
                text(),
                true,
                Some(now - 8 * 24 * H),
                Err(WindowClosed::InstagramClosed),
            ),
            (
                Instagram,
                template(),
                false,
                Some(now),
                Err(WindowClosed::NotOnInstagram),
            ),
        ];
        for (ch, content, human, last, expected) in cases {
            assert_eq!(
                check(ch, &content, human, last, now),
                expected,
                "{ch} {content:?} human={human} last={last:?}"
            );
        }
    }
}
