//! Who did what: the audit log every access-relevant action writes to.
//!
//! [`record`] stores an entry (and writes the same as a log line on the
//! `balas::audit` target, so a log pipeline sees it too); the log lives in the
//! store (`crate::store::AuditEntry`), is shared by every process, read by
//! admins through `GET /api/v1/audit` and kept as long as `[retention] audit`
//! says. Entries never carry a secret or a message body. A contact is named by
//! a keyed pseudonym ([`contact_ref`]) instead of their phone number or
//! Instagram id, so the log keeps no personal data of a contact who was
//! erased, while an admin who knows the number can still find their entries.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::secrets;
use crate::channels::Channel;
use crate::conversation::Transition;
use crate::store::{AuditEntry, Store, StoreResult};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A sign-in attempt (failed ones too).
    SignIn,
    /// A sign-out.
    SignOut,
    /// A user was created.
    UserCreate,
    /// A user's name, role, queues or capacity changed.
    UserUpdate,
    /// A user was disabled.
    UserDisable,
    /// A user was enabled again.
    UserEnable,
    /// A password was set or changed.
    UserPassword,
    /// A user was imported from the config's `[[agents]]`.
    UserImport,
    /// An API token was issued.
    TokenIssue,
    /// An API token was revoked.
    TokenRevoke,
    /// An agent claimed a conversation from the queue.
    Claim,
    /// An agent replied to a customer.
    Reply,
    /// A conversation was transferred to a queue or an agent.
    Transfer,
    /// A conversation was released back to its queue.
    Release,
    /// A conversation was resolved.
    Resolve,
    /// A note was added to a contact.
    Note,
    /// A contact's labels changed.
    Label,
    /// Everything stored about a contact was exported.
    ContactExport,
    /// A contact's personal data was erased.
    ContactErase,
    /// A conversation was snoozed (or woken by hand).
    Snooze,
    /// The WhatsApp templates were synced from Meta.
    TemplateSync,
}

impl Action {
    /// Every action, for documentation and error messages.
    pub const ALL: [Action; 21] = [
        Action::SignIn,
        Action::SignOut,
        Action::UserCreate,
        Action::UserUpdate,
        Action::UserDisable,
        Action::UserEnable,
        Action::UserPassword,
        Action::UserImport,
        Action::TokenIssue,
        Action::TokenRevoke,
        Action::Claim,
        Action::Reply,
        Action::Transfer,
        Action::Release,
        Action::Resolve,
        Action::Note,
        Action::Label,
        Action::ContactExport,
        Action::ContactErase,
        Action::Snooze,
        Action::TemplateSync,
    ];

    /// The stored name (`session.sign_in`, `conversation.claim` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SignIn => "session.sign_in",
            Action::SignOut => "session.sign_out",
            Action::UserCreate => "user.create",
            Action::UserUpdate => "user.update",
            Action::UserDisable => "user.disable",
            Action::UserEnable => "user.enable",
            Action::UserPassword => "user.password",
            Action::UserImport => "user.import",
            Action::TokenIssue => "token.issue",
            Action::TokenRevoke => "token.revoke",
            Action::Claim => "conversation.claim",
            Action::Reply => "conversation.reply",
            Action::Transfer => "conversation.transfer",
            Action::Release => "conversation.release",
            Action::Resolve => "conversation.resolve",
            Action::Note => "conversation.note",
            Action::Label => "conversation.label",
            Action::ContactExport => "contact.export",
            Action::ContactErase => "contact.erase",
            Action::Snooze => "conversation.snooze",
            Action::TemplateSync => "templates.sync",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// The action of an agent's ownership change, and its detail (where a
/// transfer went); `None` for changes no person makes (handoffs, timeouts).
pub fn transition(t: &Transition) -> Option<(Action, Option<String>)> {
    Some(match t {
        Transition::Claim { .. } => (Action::Claim, None),
        Transition::Release => (Action::Release, None),
        Transition::Resolve { .. } => (Action::Resolve, None),
        Transition::TransferToQueue { queue } => (Action::Transfer, Some(format!("queue:{queue}"))),
        Transition::TransferToAgent { agent } => (Action::Transfer, Some(format!("agent:{agent}"))),
        Transition::Handoff { .. } | Transition::ReplyTimeout => return None,
    })
}

/// One audited action.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Who acted: a user id, or `cli` / `config` for local tools.
    pub actor: &'a str,
    /// What happened.
    pub action: Action,
    /// What it was done to (a user id, a case id, a [`contact_ref`]), if anything.
    pub target: Option<&'a str>,
    /// The client address, when the action came over HTTP.
    pub address: Option<&'a str>,
    /// Whether it succeeded (failed sign-ins are audited too).
    pub ok: bool,
    /// A short detail (the queue of a transfer …); never a message body.
    pub detail: Option<&'a str>,
}

impl<'a> Entry<'a> {
    /// A successful action by `actor` on `target`.
    pub fn new(actor: &'a str, action: Action, target: Option<&'a str>) -> Self {
        Entry {
            actor,
            action,
            target,
            address: None,
            ok: true,
            detail: None,
        }
    }
}

/// Records an entry. The action has happened already, so a store that fails
/// now does not undo it: the failure is logged (with the entry) instead.
pub async fn record(store: &Store, entry: Entry<'_>) {
    tracing::info!(
        target: "balas::audit",
        actor = entry.actor,
        action = entry.action.as_str(),
        target_id = entry.target.unwrap_or(""),
        address = entry.address.unwrap_or(""),
        ok = entry.ok,
        detail = entry.detail.unwrap_or(""),
        "audit"
    );
    let stored = AuditEntry {
        seq: 0,
        at_ms: 0,
        // Bounded: a failed sign-in's actor is whatever was typed.
        actor: entry.actor.chars().take(64).collect(),
        action: entry.action.as_str().to_string(),
        target: entry.target.map(|t| t.chars().take(128).collect()),
        address: entry.address.map(str::to_string),
        ok: entry.ok,
        detail: entry.detail.map(|d| d.chars().take(256).collect()),
    };
    if let Err(e) = store.append_audit(stored).await {
        tracing::error!(
            target: "balas::audit",
            action = entry.action.as_str(),
            actor = entry.actor,
            error = %e,
            "could not store an audit entry"
        );
        metrics::counter!("balas_audit_write_failures_total").increment(1);
    }
}

/// How a contact is named in the log: `contact:<channel>:` and 24 hex digits
/// of an HMAC-SHA256 of the channel and id under a random key kept in the
/// store (made on first use). The same contact always gets the same name;
/// the name does not reveal the number, and guessing numbers needs the key.
pub async fn contact_ref(
    store: &Store,
    channel: Channel,
    external_id: &str,
) -> StoreResult<String> {
    let key = store
        .audit_key(hex::encode(secrets::random_bytes::<32>()))
        .await?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(channel.as_str().as_bytes());
    mac.update(b":");
    mac.update(external_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    Ok(format!(
        "contact:{}:{}",
        channel.as_str(),
        hex::encode(&digest[..12])
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        assert_eq!(Action::parse("user.delete"), None);
    }
}
