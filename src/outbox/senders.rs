//! Who sends a message: the business numbers (WhatsApp `phone_number_id`)
//! and accounts (Instagram id) of a deployment, and the rules that pick one.
//!
//! A customer is answered from the number they wrote to, so every outbound
//! message carries its sender (`OutboundMessage::from`, taken from the case,
//! the survey or the broadcast); the outbox resolves it here to that number's
//! client and pace. A number that is not configured resolves to nothing and
//! the message fails visibly: sending it from another number would start a
//! conversation the customer never had.

use std::sync::Arc;

use crate::channels::Channel;
use crate::channels::client::ChannelClient;

/// Why a broadcast's sender could not be chosen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SenderChoiceError {
    /// The named sender is not configured.
    #[error("from {from:?} is not a configured {channel} sender (see {} in the config); configured: {}", list_key(*.channel), .configured.join(", "))]
    Unknown {
        /// The channel.
        channel: Channel,
        /// What was asked for.
        from: String,
        /// The configured ones.
        configured: Vec<String>,
    },
    /// The channel has several senders and none was named.
    #[error("{channel} has several senders; name the one this broadcast goes out from with \"from\" (one of: {})", .configured.join(", "))]
    Unnamed {
        /// The channel.
        channel: Channel,
        /// The configured ones.
        configured: Vec<String>,
    },
}

/// The config list where a channel's senders are set.
fn list_key(channel: Channel) -> &'static str {
    match channel {
        Channel::WhatsApp => "[[whatsapp.numbers]]",
        Channel::Instagram => "[[instagram.accounts]]",
    }
}

/// A business number or account messages go out from.
#[derive(Clone)]
pub struct Sender {
    /// WhatsApp `phone_number_id` / Instagram account id (empty for a channel
    /// set up without one: then it sends everything, as dry runs).
    pub id: String,
    /// Its client; `None` means dry run (no access token).
    pub client: Option<Arc<dyn ChannelClient>>,
    /// Messages per second it may send (shared by every process).
    pub rate: f64,
}

/// The numbers and accounts messages go out from, per channel; the first of
/// each channel is its default sender.
#[derive(Clone, Default)]
pub struct Senders {
    whatsapp: Vec<Sender>,
    instagram: Vec<Sender>,
}

impl Senders {
    /// The senders of each channel, the default first.
    pub fn new(whatsapp: Vec<Sender>, instagram: Vec<Sender>) -> Senders {
        Senders {
            whatsapp,
            instagram,
        }
    }

    fn of(&self, channel: Channel) -> &[Sender] {
        match channel {
            Channel::WhatsApp => &self.whatsapp,
            Channel::Instagram => &self.instagram,
        }
    }

    /// Who sends a message `from` a number on `channel`: that number, or the
    /// default one for `None`. `None` for a number that is not configured
    /// (except on a channel set up without any, whose one sender takes all).
    pub fn resolve(&self, channel: Channel, from: Option<&str>) -> Option<&Sender> {
        let all = self.of(channel);
        match (from, all) {
            (_, [only]) if only.id.is_empty() => Some(only),
            (None | Some(""), [first, ..]) => Some(first),
            (Some(id), _) => all.iter().find(|s| s.id == id),
            (None, []) => None,
        }
    }

    /// The configured numbers or accounts of `channel`, the default first
    /// (none for a channel set up without an id, a dry-run trial).
    pub fn ids(&self, channel: Channel) -> Vec<&str> {
        self.of(channel)
            .iter()
            .map(|s| s.id.as_str())
            .filter(|id| !id.is_empty())
            .collect()
    }

    /// The sender a new broadcast records and goes out from: the one `asked`
    /// for (it must be configured), else the channel's only one. With several,
    /// a guess could message customers from a number they never wrote to, so
    /// one must be named. `None` for a channel set up without any id (a
    /// dry-run trial).
    pub fn choose(
        &self,
        channel: Channel,
        asked: Option<&str>,
    ) -> Result<Option<String>, SenderChoiceError> {
        let ids = self.ids(channel);
        let configured = || ids.iter().map(|id| (*id).to_string()).collect();
        match (asked, ids.as_slice()) {
            (Some(from), _) if ids.contains(&from) => Ok(Some(from.to_string())),
            (Some(from), _) => Err(SenderChoiceError::Unknown {
                channel,
                from: from.to_string(),
                configured: configured(),
            }),
            (None, []) => Ok(None),
            (None, [only]) => Ok(Some((*only).to_string())),
            (None, _) => Err(SenderChoiceError::Unnamed {
                channel,
                configured: configured(),
            }),
        }
    }

    /// Whether `id` is a configured sender of `channel`.
    pub fn knows(&self, channel: Channel, id: &str) -> bool {
        self.of(channel).iter().any(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(id: &str) -> Sender {
        Sender {
            id: id.into(),
            client: None,
            rate: 80.0,
        }
    }

    fn two_numbers() -> Senders {
        Senders::new(vec![sender("jkt"), sender("sby")], vec![sender("ig")])
    }

    #[test]
    fn the_number_written_to_sends_and_unknown_ones_do_not() {
        let s = two_numbers();
        let id = |from| s.resolve(Channel::WhatsApp, from).map(|s| s.id.as_str());
        assert_eq!(id(Some("sby")), Some("sby"));
        assert_eq!(id(None), Some("jkt"), "no number recorded: the default");
        assert_eq!(id(Some("")), Some("jkt"));
        assert_eq!(id(Some("other")), None, "never another number");
        assert_eq!(
            s.resolve(Channel::Instagram, Some("jkt"))
                .map(|s| s.id.as_str()),
            None,
            "numbers are per channel"
        );
    }

    #[test]
    fn a_trial_channel_without_an_id_takes_everything() {
        let s = Senders::new(vec![sender("")], Vec::new());
        assert!(s.resolve(Channel::WhatsApp, Some("any")).is_some());
        assert!(s.resolve(Channel::Instagram, None).is_none());
        assert!(s.ids(Channel::WhatsApp).is_empty());
        assert_eq!(s.choose(Channel::WhatsApp, None), Ok(None));
    }

    #[test]
    fn broadcasts_name_their_sender() {
        let s = two_numbers();
        assert_eq!(
            s.choose(Channel::WhatsApp, Some("sby")),
            Ok(Some("sby".into()))
        );
        assert_eq!(
            s.choose(Channel::Instagram, None),
            Ok(Some("ig".into())),
            "the only one is recorded"
        );
        let unnamed = s.choose(Channel::WhatsApp, None).unwrap_err();
        assert!(matches!(unnamed, SenderChoiceError::Unnamed { .. }));
        assert!(unnamed.to_string().contains("jkt, sby"), "{unnamed}");
        let unknown = s.choose(Channel::WhatsApp, Some("ig")).unwrap_err();
        assert!(
            unknown.to_string().contains("[[whatsapp.numbers]]"),
            "{unknown}"
        );
    }
}
