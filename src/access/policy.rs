//! Who may see what: the least-privilege rules, as pure functions.
//!
//! Agents see the conversations of their queues and the ones assigned to them;
//! an agent without queues works every queue and so sees every conversation.
//! Supervisors and admins see everything. Marketers see no conversation at all
//! (no transcripts, no live conversation events): they work with broadcasts.

use crate::config::Role;
use crate::store::User;

/// Supervisors and admins may read and act on any conversation.
pub fn sees_all_conversations(user: &User) -> bool {
    matches!(user.role, Role::Supervisor | Role::Admin)
}

/// Whether `user` may see a conversation that is in `queue` (or came from it)
/// and is assigned to `agent`. Callers answer 404 when not, so the existence
/// of other queues' conversations is not revealed.
pub fn may_see_conversation(user: &User, queue: Option<&str>, agent: Option<&str>) -> bool {
    match user.role {
        Role::Supervisor | Role::Admin => true,
        Role::Marketer => false,
        Role::Agent => {
            agent == Some(user.id.as_str())
                || user.queues.is_empty()
                || queue.is_some_and(|q| user.queues.iter().any(|mine| mine == q))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, queues: &[&str]) -> User {
        User {
            id: "siti".into(),
            name: "Siti".into(),
            role,
            queues: queues.iter().map(|q| q.to_string()).collect(),
            max_concurrent: 5,
            disabled: false,
            password_hash: None,
            tokens: Vec::new(),
            created_ms: 0,
            updated_ms: 0,
        }
    }

    /// Role, the user's queues, the conversation's queue and agent, expected.
    type Row = (
        Role,
        &'static [&'static str],
        Option<&'static str>,
        Option<&'static str>,
        bool,
    );

    #[test]
    fn visibility_table() {
        const A: Option<&str> = Some("complaints");
        const B: Option<&str> = Some("billing");
        let rows: &[Row] = &[
            // Agents with queues: their queues, or assigned to them.
            (Role::Agent, &["complaints"], A, None, true),
            (Role::Agent, &["complaints"], B, None, false),
            (Role::Agent, &["complaints"], B, Some("siti"), true),
            (Role::Agent, &["complaints"], B, Some("budi"), false),
            (Role::Agent, &["complaints"], None, None, false),
            (
                Role::Agent,
                &["complaints", "billing"],
                B,
                Some("budi"),
                true,
            ),
            // An agent without queues works every queue.
            (Role::Agent, &[], B, Some("budi"), true),
            (Role::Agent, &[], None, None, true),
            // Supervisors and admins: everything.
            (Role::Supervisor, &["complaints"], B, Some("budi"), true),
            (Role::Admin, &[], None, None, true),
            // Marketers: nothing, not even their "own".
            (Role::Marketer, &[], A, None, false),
            (Role::Marketer, &["complaints"], A, Some("siti"), false),
        ];
        for (role, queues, queue, agent, expected) in rows {
            let u = user(*role, queues);
            assert_eq!(
                may_see_conversation(&u, *queue, *agent),
                *expected,
                "{role:?} {queues:?} queue={queue:?} agent={agent:?}"
            );
        }
        assert!(sees_all_conversations(&user(Role::Supervisor, &[])));
        assert!(!sees_all_conversations(&user(Role::Agent, &[])));
    }
}
