//! Accounts: creating and changing users, passwords and API tokens, and
//! importing the config's `[[agents]]` at start.
//!
//! Every change is one compare-and-swap on the user document, so it takes
//! effect for every process at the next request (nothing is cached). Ending a
//! user's sessions follows the change that requires it (disable, password).

use crate::config::{AgentConfig, Role};
use crate::store::{ApiToken, Store, StoreError, TokenRef, User};

use super::secrets;

/// What can go wrong when changing accounts.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A field is invalid; the message says which and how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// No user with that id.
    #[error("no user with id {0:?}")]
    NoUser(String),
    /// The id is taken.
    #[error("a user with id {0:?} already exists; pick another id or change that user")]
    Exists(String),
    /// The change would leave nobody able to manage users.
    #[error(
        "{0:?} is the last enabled admin; make another user admin first, so someone can still manage users"
    )]
    LastAdmin(String),
    /// Changing one's own password needs the current one, and it was wrong or missing.
    #[error("the current password is missing or wrong")]
    WrongPassword,
    /// No token with that id.
    #[error("user {user:?} has no token with id {token:?}")]
    NoToken {
        /// The user.
        user: String,
        /// The token id asked for.
        token: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password (hashing cost and abuse stay bounded).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Most conversations one person may hold at once.
pub const MAX_CONCURRENT_LIMIT: u32 = 100;

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Stable id and sign-in name.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Queues (empty = all).
    pub queues: Vec<String>,
    /// Conversations at once.
    pub max_concurrent: u32,
    /// Initial password, if any (otherwise token-only until one is set).
    pub password: Option<String>,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New display name.
    pub name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// New queues.
    pub queues: Option<Vec<String>>,
    /// New capacity.
    pub max_concurrent: Option<u32>,
    /// Disable or enable.
    pub disabled: Option<bool>,
}

/// Checks a user id: 1–64 ASCII letters, digits, `.`, `-` or `_`.
pub fn check_id(id: &str) -> Result<(), AccountError> {
    if crate::config::valid_user_id(id) {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "invalid user id {id:?}: use 1–64 letters, digits, '.', '-' or '_' (e.g. \"siti\")"
        )))
    }
}

fn check_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AccountError::Invalid(
            "name must be 1–100 characters".into(),
        ));
    }
    Ok(name.to_string())
}

fn check_queues(queues: &[String]) -> Result<Vec<String>, AccountError> {
    let mut out: Vec<String> = Vec::new();
    for q in queues {
        let q = q.trim();
        if q.is_empty() || q.len() > 64 {
            return Err(AccountError::Invalid(
                "queue names must be 1–64 characters".into(),
            ));
        }
        if !out.iter().any(|x| x == q) {
            out.push(q.to_string());
        }
    }
    Ok(out)
}

fn check_max_concurrent(n: u32) -> Result<u32, AccountError> {
    if (1..=MAX_CONCURRENT_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(AccountError::Invalid(format!(
            "max_concurrent must be between 1 and {MAX_CONCURRENT_LIMIT}"
        )))
    }
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters (a few words are easy to remember)"
        )));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "the password is too long: at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Creates a user.
pub async fn create_user(store: &Store, new: NewUser) -> Result<User, AccountError> {
    check_id(&new.id)?;
    let name = check_name(&new.name)?;
    let queues = check_queues(&new.queues)?;
    let max_concurrent = check_max_concurrent(new.max_concurrent)?;
    let password_hash = match &new.password {
        Some(p) => {
            check_password(p)?;
            Some(secrets::hash_password_blocking(p.clone()).await)
        }
        None => None,
    };
    let now = store.now_ms();
    let user = User {
        id: new.id.clone(),
        name,
        role: new.role,
        queues,
        max_concurrent,
        disabled: false,
        password_hash,
        tokens: Vec::new(),
        created_ms: now,
        updated_ms: now,
    };
    if !store.insert_user(&user).await? {
        return Err(AccountError::Exists(new.id));
    }
    Ok(user)
}

/// Whether someone other than `except` is an enabled admin.
async fn another_admin(store: &Store, except: &str) -> Result<bool, AccountError> {
    Ok(store
        .users()
        .await?
        .iter()
        .any(|u| u.id != except && u.role == Role::Admin && !u.disabled))
}

/// Changes a user. Disabling ends their sessions at once (and their tokens stop
/// working while disabled); the last enabled admin cannot be demoted or disabled.
pub async fn update_user(store: &Store, id: &str, patch: UserPatch) -> Result<User, AccountError> {
    let name = patch.name.as_deref().map(check_name).transpose()?;
    let queues = patch.queues.as_deref().map(check_queues).transpose()?;
    let max_concurrent = patch.max_concurrent.map(check_max_concurrent).transpose()?;
    let before = store
        .user(id)
        .await?
        .ok_or_else(|| AccountError::NoUser(id.to_string()))?;
    let loses_admin = before.role == Role::Admin
        && !before.disabled
        && (patch.role.is_some_and(|r| r != Role::Admin) || patch.disabled == Some(true));
    if loses_admin && !another_admin(store, id).await? {
        return Err(AccountError::LastAdmin(id.to_string()));
    }
    let after = store
        .update_user::<AccountError, _>(id, |u| {
            if let Some(n) = &name {
                u.name.clone_from(n);
            }
            if let Some(r) = patch.role {
                u.role = r;
            }
            if let Some(q) = &queues {
                u.queues.clone_from(q);
            }
            if let Some(m) = max_concurrent {
                u.max_concurrent = m;
            }
            if let Some(d) = patch.disabled {
                u.disabled = d;
            }
            Ok(())
        })
        .await?
        .ok_or_else(|| AccountError::NoUser(id.to_string()))?;
    if after.disabled {
        store.delete_user_sessions(id, None).await?;
    }
    Ok(after)
}

/// Who is changing a password, which decides whether the current one is needed.
#[derive(Debug, Clone, Copy)]
pub enum PasswordChange<'a> {
    /// An admin sets another user's password: every session of that user ends.
    ByAdmin,
    /// The user changes their own: the current password is needed when one is
    /// set; their other sessions end, `keep_session` (the one asking) stays.
    Own {
        /// The current password, as typed.
        current: Option<&'a str>,
        /// Hash of the session making the change, if it came from one.
        keep_session: Option<&'a str>,
    },
}

/// Sets a user's password.
pub async fn set_password(
    store: &Store,
    id: &str,
    new_password: &str,
    how: PasswordChange<'_>,
) -> Result<(), AccountError> {
    check_password(new_password)?;
    let user = store
        .user(id)
        .await?
        .ok_or_else(|| AccountError::NoUser(id.to_string()))?;
    if let PasswordChange::Own { current, .. } = how
        && let Some(hash) = &user.password_hash
    {
        let Some(current) = current else {
            return Err(AccountError::WrongPassword);
        };
        if !secrets::verify_password_blocking(current.to_string(), hash.clone()).await {
            return Err(AccountError::WrongPassword);
        }
    }
    let hash = secrets::hash_password_blocking(new_password.to_string()).await;
    store
        .update_user::<AccountError, _>(id, |u| {
            u.password_hash = Some(hash.clone());
            Ok(())
        })
        .await?
        .ok_or_else(|| AccountError::NoUser(id.to_string()))?;
    let keep = match how {
        PasswordChange::ByAdmin => None,
        PasswordChange::Own { keep_session, .. } => keep_session,
    };
    store.delete_user_sessions(id, keep).await?;
    Ok(())
}

/// Issues a new API token; returns its record and the token itself, which is
/// shown once and never stored.
pub async fn issue_token(
    store: &Store,
    user_id: &str,
    label: &str,
) -> Result<(ApiToken, String), AccountError> {
    let label = label.trim();
    if label.chars().count() > 100 {
        return Err(AccountError::Invalid(
            "label must be at most 100 characters".into(),
        ));
    }
    let token = secrets::new_api_token();
    let record = ApiToken {
        id: secrets::new_token_id(),
        label: label.to_string(),
        sha256: secrets::sha256_hex(&token),
        created_ms: store.now_ms(),
    };
    add_token(store, user_id, &record).await?;
    Ok((record, token))
}

/// Adds a token record to a user: first the lookup, then the user's list (the
/// list decides, so a crash in between leaves an orphan lookup that matches
/// nothing).
async fn add_token(store: &Store, user_id: &str, record: &ApiToken) -> Result<(), AccountError> {
    let target = TokenRef {
        user_id: user_id.to_string(),
        token_id: record.id.clone(),
    };
    if !store.insert_token_ref(&record.sha256, &target).await? {
        return Err(AccountError::Invalid(
            "this token is already in use by another user".into(),
        ));
    }
    let updated = store
        .update_user::<AccountError, _>(user_id, |u| {
            if u.token_by_hash(&record.sha256).is_none() {
                u.tokens.push(record.clone());
            }
            Ok(())
        })
        .await?;
    if updated.is_none() {
        store.delete_token_ref(&record.sha256).await?;
        return Err(AccountError::NoUser(user_id.to_string()));
    }
    Ok(())
}

/// Revokes a token: it stops working at the next request, on every process.
pub async fn revoke_token(
    store: &Store,
    user_id: &str,
    token_id: &str,
) -> Result<(), AccountError> {
    let mut removed = None;
    store
        .update_user::<AccountError, _>(user_id, |u| {
            let i = u
                .tokens
                .iter()
                .position(|t| t.id == token_id)
                .ok_or_else(|| AccountError::NoToken {
                    user: user_id.to_string(),
                    token: token_id.to_string(),
                })?;
            removed = Some(u.tokens.remove(i));
            Ok(())
        })
        .await?
        .ok_or_else(|| AccountError::NoUser(user_id.to_string()))?;
    if let Some(t) = removed {
        store.delete_token_ref(&t.sha256).await?;
    }
    Ok(())
}

/// Id of the token a config entry brings (stable across restarts).
fn config_token_id(sha256: &str) -> String {
    format!("cfg_{}", &sha256[..12.min(sha256.len())])
}

/// Imports `[[agents]]` from the config: each one that is not in the store yet
/// is created, with its `token_sha256` as an API token. Users already in the
/// store are left as they are (the store is the source of truth once a user
/// exists: change them through the API or `balas users`), so a restart never
/// re-enables a disabled user or brings back a revoked token.
pub async fn import_config_agents(
    store: &Store,
    agents: &[AgentConfig],
) -> Result<(), AccountError> {
    for agent in agents {
        let hash = agent.token_sha256.trim().to_ascii_lowercase();
        let now = store.now_ms();
        let tokens = if hash.is_empty() {
            Vec::new()
        } else {
            vec![ApiToken {
                id: config_token_id(&hash),
                label: "from config".into(),
                sha256: hash.clone(),
                created_ms: now,
            }]
        };
        let user = User {
            id: agent.id.clone(),
            name: agent.name.clone(),
            role: agent.role,
            queues: agent.queues.clone(),
            max_concurrent: agent.max_concurrent,
            disabled: false,
            password_hash: None,
            tokens: tokens.clone(),
            created_ms: now,
            updated_ms: now,
        };
        if store.insert_user(&user).await? {
            for t in &tokens {
                let target = TokenRef {
                    user_id: user.id.clone(),
                    token_id: t.id.clone(),
                };
                if !store.insert_token_ref(&t.sha256, &target).await? {
                    tracing::warn!(
                        user = %user.id,
                        "the token_sha256 of this [[agents]] entry already belongs to another user; it will not work for this one"
                    );
                }
            }
            tracing::info!(user = %user.id, role = user.role.as_str(), "imported a user from the config's [[agents]]");
            super::audit::record(
                store,
                super::audit::Entry::new(
                    "config",
                    super::audit::Action::UserImport,
                    Some(&user.id),
                ),
            )
            .await;
        } else if let Some(existing) = store.user(&agent.id).await?
            && (existing.role != agent.role
                || existing.queues != agent.queues
                || existing.name != agent.name
                || (!hash.is_empty() && existing.token_by_hash(&hash).is_none()))
        {
            tracing::info!(
                user = %agent.id,
                "the config's [[agents]] entry differs from the stored user; the store wins (change users with the API or `balas users`)"
            );
        }
    }
    Ok(())
}
