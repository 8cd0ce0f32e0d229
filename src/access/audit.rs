//! Who did what: the hook every access-relevant action calls.
//!
//! For now each entry is a structured log line on the `balas::audit` target
//! (never with a secret or a message body). The audit log of phase B (stored,
//! retained per config, `GET /api/v1/audit`) replaces the body of [`record`];
//! the call sites stay as they are.

/// One audited action.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Who acted: a user id, or `cli` / `config` for local tools.
    pub actor: &'a str,
    /// What happened, e.g. `user.create`, `session.sign_in`, `token.revoke`.
    pub action: &'a str,
    /// What it was done to (a user id, a conversation id …), if anything.
    pub target: Option<&'a str>,
    /// The client address, when the action came over HTTP.
    pub address: Option<&'a str>,
    /// Whether it succeeded (failed sign-ins are audited too).
    pub ok: bool,
}

/// Records an entry.
pub fn record(entry: Entry<'_>) {
    tracing::info!(
        target: "balas::audit",
        actor = entry.actor,
        action = entry.action,
        target_id = entry.target.unwrap_or(""),
        address = entry.address.unwrap_or(""),
        ok = entry.ok,
        "audit"
    );
}
