//! The bot and customers' files.
//!
//! Words are matched by the intent rules; a file without words (or whose
//! caption matches nothing) is understood from its context instead of being
//! answered with the fallback:
//! - a photo, video or document sent after the bot asked for one (its last
//!   reply came from an intent in `intents.asks_for_media` or
//!   `handoff.complaint_intents`), or while the customer waits in the queue,
//!   is acknowledged by the `media_received` rule and stays attached to the
//!   case for the agent;
//! - a voice note is answered by the `voice_note` rule (shipped: a handoff
//!   during business hours, a polite request to type after hours).
//!
//! The rules are ordinary intents in the rule files, chosen by name (see
//! [`crate::intents::MEDIA_INTENTS`]); without them built-in texts answer. A
//! burst of files gets one acknowledgement.

use std::time::Duration;

use super::Turn;
use super::messages::Texts;
use crate::channels::{InboundMedia, MediaKind};
use crate::intents::{Intent, MatchContext, RuleSet};
use crate::store::Speaker;

/// A burst of files within this gets one acknowledgement.
const ACK_QUIET: Duration = Duration::from_secs(120);

/// How the bot treats a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handling {
    /// Something the bot cannot read; a person has to listen.
    Voice,
    /// A picture, video or document: evidence for the case.
    Evidence,
}

/// How the bot treats `media`; `None` for stickers and stories (the words
/// around them, if any, decide).
pub(super) fn handling(media: &InboundMedia) -> Option<Handling> {
    match media.kind {
        MediaKind::Audio => Some(Handling::Voice),
        MediaKind::Image | MediaKind::Video | MediaKind::Document => Some(Handling::Evidence),
        MediaKind::Sticker | MediaKind::Story => None,
    }
}

/// The family of rules that thank the customer for a file.
const MEDIA_RECEIVED: &str = "media_received";

/// Whether the rule `name` is of `family`: `family` itself or `family_*`.
fn is_family(name: &str, family: &str) -> bool {
    name.strip_prefix(family)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
}

/// The rule of `family` (`media_received`, `voice_note`) for this moment: the
/// highest priority among `family` and `family_*` whose `when` and `channels`
/// allow it; the first defined on a tie.
pub(super) fn pick<'r>(rules: &'r RuleSet, family: &str, ctx: &MatchContext) -> Option<&'r Intent> {
    rules
        .intents()
        .iter()
        .filter(|i| is_family(&i.name, family))
        .filter(|i| i.allows_channel(ctx.channel) && i.when.allows(ctx.business_hours_open))
        .rev()
        .max_by_key(|i| i.priority)
}

impl Turn<'_> {
    fn match_context(&self) -> MatchContext {
        let engine = self.engine;
        MatchContext {
            channel: Some(self.channel),
            business_hours_open: engine.hours().is_open(engine.store().clock().now()),
        }
    }

    /// Whether the bot's last reply in this case asked for a file, or
    /// thanked the customer for one (more of the same burst are expected:
    /// a second photo must not get the fallback's "I did not understand").
    async fn file_expected(&self) -> Result<bool, super::EngineError> {
        let config = self.engine.config();
        let transcript = self.engine.store().transcript(&self.conv.id).await?;
        let last_intent = transcript.iter().rev().find_map(|e| match &e.speaker {
            Speaker::Bot { intent } => Some(intent.clone()),
            _ => None,
        });
        Ok(last_intent.flatten().is_some_and(|name| {
            config.intents.asks_for_media.contains(&name)
                || config.handoff.complaint_intents.contains(&name)
                || is_family(&name, MEDIA_RECEIVED)
        }))
    }

    /// Says the `media_received` acknowledgement (the rule's reply, or the
    /// built-in text), at most once per burst of files.
    async fn acknowledge_file(&mut self, rules: &RuleSet) -> Result<(), super::EngineError> {
        let first = self
            .engine
            .store()
            .first_media_ack(&self.conv.id, ACK_QUIET)
            .await?;
        if !first {
            return Ok(());
        }
        let word = self.media_word.unwrap_or_default();
        match pick(rules, MEDIA_RECEIVED, &self.match_context()) {
            Some(intent) => {
                let intent = intent.clone();
                let default = Texts::new(self.lang).media_received(word);
                self.say_intent(&intent, default, None).await;
            }
            None => {
                // The built-in thank-you is this family's answer too: the
                // transcript says so, and the next file of the burst is
                // expected (see `file_expected`).
                self.intent = Some(MEDIA_RECEIVED.to_string());
                self.replies
                    .push(Texts::new(self.lang).media_received(word));
            }
        }
        Ok(())
    }

    /// The bot's answer to a file nothing in its words matched, while the bot
    /// owns the case. False when the file means nothing here (the fallback
    /// answers).
    pub(super) async fn bot_file_turn(
        &mut self,
        media: &InboundMedia,
        rules: &RuleSet,
    ) -> Result<bool, super::EngineError> {
        match handling(media) {
            Some(Handling::Voice) => {
                self.reset_fallbacks().await?;
                match pick(rules, "voice_note", &self.match_context()) {
                    Some(intent) => {
                        let intent = intent.clone();
                        super::act(self, intent).await?;
                    }
                    None => self.replies.push(Texts::new(self.lang).voice_note()),
                }
                Ok(true)
            }
            Some(Handling::Evidence) if self.file_expected().await? => {
                self.reset_fallbacks().await?;
                self.acknowledge_file(rules).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The bot's answer to a file while the customer waits for an agent: the
    /// file goes to the agent with the case; the customer hears it arrived.
    pub(super) async fn queued_file_turn(
        &mut self,
        media: &InboundMedia,
        rules: &RuleSet,
    ) -> Result<(), super::EngineError> {
        if handling(media).is_some() {
            self.acknowledge_file(rules).await?;
        }
        Ok(())
    }

    async fn reset_fallbacks(&mut self) -> Result<(), super::EngineError> {
        if self.conv.consecutive_fallbacks > 0 {
            self.conv = self
                .engine
                .store()
                .update_conversation(&self.conv.id, |c| c.consecutive_fallbacks = 0)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::channels::Channel;
    use crate::intents::LoadOptions;

    fn rules(text: &str) -> RuleSet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.toml"), text).unwrap();
        RuleSet::load_dir(&PathBuf::from(dir.path()), &LoadOptions::default()).unwrap()
    }

    #[test]
    fn the_family_member_that_fits_the_moment() {
        let r = rules(
            r#"
[[intent]]
name = "fallback"
action = "reply"
reply = "?"

[[intent]]
name = "voice_note"
action = "handoff"
when = "business_hours"
priority = 1

[[intent]]
name = "voice_note_after_hours"
action = "reply"
when = "after_hours"
reply = "ketik ya"

[[intent]]
name = "voice_note_ig"
action = "reply"
channels = ["instagram"]
priority = 5
reply = "ig"

[[intent]]
name = "voice_notes_unrelated"
action = "reply"
keywords = ["x"]
reply = "x"
"#,
        );
        let at = |channel, open| MatchContext {
            channel: Some(channel),
            business_hours_open: open,
        };
        let name = |ctx| pick(&r, "voice_note", &ctx).map(|i| i.name.clone());
        assert_eq!(
            name(at(Channel::WhatsApp, true)).as_deref(),
            Some("voice_note")
        );
        assert_eq!(
            name(at(Channel::WhatsApp, false)).as_deref(),
            Some("voice_note_after_hours")
        );
        assert_eq!(
            name(at(Channel::Instagram, true)).as_deref(),
            Some("voice_note_ig")
        );
        assert!(pick(&r, "media_received", &at(Channel::WhatsApp, true)).is_none());
    }

    #[test]
    fn files_and_what_they_mean() {
        let media = |kind| InboundMedia {
            kind,
            media_id: None,
            url: None,
            mime_type: None,
            sha256: None,
            caption: None,
            filename: None,
            voice: false,
            animated: false,
        };
        for (kind, want) in [
            (MediaKind::Image, Some(Handling::Evidence)),
            (MediaKind::Video, Some(Handling::Evidence)),
            (MediaKind::Document, Some(Handling::Evidence)),
            (MediaKind::Audio, Some(Handling::Voice)),
            (MediaKind::Sticker, None),
            (MediaKind::Story, None),
        ] {
            assert_eq!(handling(&media(kind)), want, "{kind}");
        }
    }
}
