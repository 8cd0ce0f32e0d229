//! Contacts: one customer on one channel, kept across cases.
//!
//! The contact remembers what outlives a case: the profile name, notes agents
//! wrote, labels, opt-outs, the last inbound time that opens the 24-hour window,
//! and which case is currently open.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Store, StoreResult};
use crate::channels::{Channel, ContactRef};

/// A note an agent wrote about a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Written at, Unix ms.
    pub at_ms: i64,
    /// Agent id.
    pub author: String,
    /// The note.
    pub text: String,
}

/// A customer on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// The channel.
    pub channel: Channel,
    /// WhatsApp wa_id (or business-scoped user id) / Instagram IGSID.
    pub external_id: String,
    /// Profile name from the platform.
    #[serde(default)]
    pub name: Option<String>,
    /// WhatsApp phone id, when known.
    #[serde(default)]
    pub wa_id: Option<String>,
    /// WhatsApp business-scoped user id, when known.
    #[serde(default)]
    pub user_id: Option<String>,
    /// First seen, Unix ms.
    pub first_seen_ms: i64,
    /// Last customer message, Unix ms: opens the 24-hour window.
    #[serde(default)]
    pub last_inbound_ms: Option<i64>,
    /// Last customer message per business number or account it was written
    /// to: WhatsApp's window is per number, so a message from another number
    /// of the shop needs the customer to have written to that one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_inbound_by: BTreeMap<String, i64>,
    /// Agents' notes, oldest first.
    #[serde(default)]
    pub notes: Vec<Note>,
    /// Labels set by agents.
    #[serde(default)]
    pub labels: BTreeSet<String>,
    /// Asked us to stop automated messages (surveys, broadcasts).
    #[serde(default)]
    pub opted_out: bool,
    /// Told the platform to stop marketing (131050).
    #[serde(default)]
    pub marketing_opt_out: bool,
    /// Language last detected (`id`/`en`).
    #[serde(default)]
    pub language: Option<String>,
    /// The open case, if any.
    #[serde(default)]
    pub current_case: Option<String>,
    /// Every case id, oldest first.
    #[serde(default)]
    pub cases: Vec<String>,
    /// When the last survey was sent.
    #[serde(default)]
    pub last_survey_ms: Option<i64>,
    /// Times of recent complaint-type intents (for repeat-complaint priority).
    #[serde(default)]
    pub complaint_times: Vec<i64>,
}

impl Contact {
    /// A new contact.
    pub fn new(channel: Channel, external_id: &str, now_ms: i64) -> Self {
        Self {
            channel,
            external_id: external_id.to_string(),
            name: None,
            wa_id: None,
            user_id: None,
            first_seen_ms: now_ms,
            last_inbound_ms: None,
            last_inbound_by: BTreeMap::new(),
            notes: Vec::new(),
            labels: BTreeSet::new(),
            opted_out: false,
            marketing_opt_out: false,
            language: None,
            current_case: None,
            cases: Vec::new(),
            last_survey_ms: None,
            complaint_times: Vec::new(),
        }
    }

    /// Whether free-form messages may be sent at `now_ms` within `window_ms` of
    /// the customer's last message.
    pub fn window_open(&self, now_ms: i64, window_ms: i64) -> bool {
        self.last_inbound_ms
            .is_some_and(|last| now_ms.saturating_sub(last) < window_ms)
    }

    /// The customer's last message to the number or account `from` (the
    /// channel's default for `None`), which opens that sender's window.
    /// Contacts from before per-number tracking know only their last message
    /// to any number; that is used for them.
    pub fn last_inbound_to(&self, from: Option<&str>) -> Option<i64> {
        match from {
            Some(number) if !self.last_inbound_by.is_empty() => {
                self.last_inbound_by.get(number).copied()
            }
            _ => self.last_inbound_ms,
        }
    }

    /// The name to greet with, if the platform told us one.
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref().filter(|n| !n.trim().is_empty())
    }
}

/// Storage key of a contact.
pub(crate) fn contact_key(channel: Channel, external_id: &str) -> String {
    format!("contact:{}:{}", channel.as_str(), external_id)
}

/// Index of all contacts by last inbound time (segments); sharded: every
/// customer message moves a contact in it.
pub(crate) const CONTACTS_INDEX: &str = "contacts:by_last_inbound";

impl Store {
    /// Reads a contact.
    pub async fn contact(
        &self,
        channel: Channel,
        external_id: &str,
    ) -> StoreResult<Option<Contact>> {
        self.get_json(&contact_key(channel, external_id)).await
    }

    /// Records that the customer wrote at `at_ms` to the business number or
    /// account `number` (empty when unknown): creates the contact if new,
    /// refreshes profile fields and the 24-hour window.
    pub async fn touch_contact(
        &self,
        channel: Channel,
        who: &ContactRef,
        number: &str,
        at_ms: i64,
    ) -> StoreResult<Contact> {
        let now = self.now_ms();
        let contact = self
            .update_contact(channel, &who.external_id, |c| {
                if who.name.is_some() {
                    c.name.clone_from(&who.name);
                }
                if who.wa_id.is_some() {
                    c.wa_id.clone_from(&who.wa_id);
                }
                if who.user_id.is_some() {
                    c.user_id.clone_from(&who.user_id);
                }
                // Platform timestamps may lag; never move the window backwards.
                let at = at_ms.max(0).min(now);
                let at = if at == 0 { now } else { at };
                c.last_inbound_ms = Some(c.last_inbound_ms.map_or(at, |l| l.max(at)));
                if !number.is_empty() {
                    let last = c.last_inbound_by.entry(number.to_string()).or_insert(at);
                    *last = (*last).max(at);
                }
            })
            .await?;
        self.sharded_put(
            CONTACTS_INDEX,
            &format!("{}:{}", channel.as_str(), who.external_id),
            contact.last_inbound_ms.unwrap_or(now) as f64,
        )
        .await?;
        Ok(contact)
    }

    /// Changes a contact (creating it if needed) atomically and returns the result.
    pub async fn update_contact(
        &self,
        channel: Channel,
        external_id: &str,
        mut change: impl FnMut(&mut Contact),
    ) -> StoreResult<Contact> {
        let now = self.now_ms();
        let updated = self
            .update_json::<Contact, super::StoreError, _>(&contact_key(channel, external_id), |c| {
                let mut c = c.unwrap_or_else(|| Contact::new(channel, external_id, now));
                change(&mut c);
                Ok(Some(c))
            })
            .await?;
        Ok(updated.expect("the change always writes"))
    }

    /// Changes a contact atomically if it exists (never creates one); the
    /// contact after the change, `None` when there is none.
    pub async fn update_existing_contact(
        &self,
        channel: Channel,
        external_id: &str,
        mut change: impl FnMut(&mut Contact),
    ) -> StoreResult<Option<Contact>> {
        self.update_json::<Contact, super::StoreError, _>(&contact_key(channel, external_id), |c| {
            Ok(c.map(|mut c| {
                change(&mut c);
                c
            }))
        })
        .await
    }

    /// Deletes a contact and what is keyed by their id: the contact, their
    /// place in the activity index, the pointer to their survey and their
    /// per-recipient send pacing. True when the contact existed.
    pub async fn delete_contact(&self, channel: Channel, external_id: &str) -> StoreResult<bool> {
        let existed = self
            .backend
            .doc_delete(&contact_key(channel, external_id))
            .await?;
        self.sharded_remove(
            CONTACTS_INDEX,
            &format!("{}:{}", channel.as_str(), external_id),
        )
        .await?;
        self.forget_active_survey(channel, external_id).await?;
        self.reset_rate(&super::RateKey::Recipient(channel, external_id))
            .await?;
        Ok(existed)
    }

    /// Reads several contacts (missing ones are skipped).
    pub async fn contacts(&self, keys: &[(Channel, String)]) -> StoreResult<Vec<Contact>> {
        let keys: Vec<String> = keys.iter().map(|(c, id)| contact_key(*c, id)).collect();
        self.get_json_many(&keys).await
    }

    /// Contacts whose last message is between `from_ms` and `to_ms`, as
    /// `(channel, external_id)`.
    pub async fn contacts_active_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<(Channel, String)>> {
        let members = self
            .sharded_range(CONTACTS_INDEX, from_ms as f64, to_ms as f64, limit)
            .await?;
        Ok(members
            .into_iter()
            .filter_map(|(m, _)| {
                let (ch, id) = m.split_once(':')?;
                Some((Channel::parse(ch)?, id.to_string()))
            })
            .collect())
    }
}
