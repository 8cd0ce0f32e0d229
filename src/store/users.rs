//! People who use the API and console: users, their API tokens and their
//! sign-in sessions, and the keys they live under.
//!
//! The user document is the source of truth: a token or a session counts only
//! while the user it points to exists, is not disabled and (for tokens) still
//! lists it. The lookup documents (`token:…`, `session:…`) are indexes that
//! let one read find the user; they are keyed by the SHA-256 of the secret, so
//! a copy of the store holds no usable credential. This module stores and
//! finds; choosing, hashing and checking secrets is [`crate::access`]'s job.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoreResult};
use crate::config::Role;

/// A person (or integration) allowed to use the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id, also the sign-in name (`siti`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Queues they work; empty means every queue.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Conversations they may hold at once.
    pub max_concurrent: u32,
    /// A disabled user can neither sign in nor use a session or a token.
    #[serde(default)]
    pub disabled: bool,
    /// Argon2id hash in PHC form; `None` until a password is set (token-only).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// API tokens, by id; only their SHA-256 is kept.
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
    /// Created, Unix ms.
    pub created_ms: i64,
    /// Last changed, Unix ms.
    pub updated_ms: i64,
}

impl User {
    /// The token with this SHA-256, if the user still holds it.
    pub fn token_by_hash(&self, sha256: &str) -> Option<&ApiToken> {
        self.tokens.iter().find(|t| t.sha256 == sha256)
    }
}

/// An API token (for the CLI and integrations); the token itself is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Id used to list and revoke it (`tok_…`).
    pub id: String,
    /// What it is for, as the admin wrote it.
    #[serde(default)]
    pub label: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// Issued, Unix ms.
    pub created_ms: i64,
}

/// A signed-in browser: the session cookie's id is not stored, only its hash
/// (the document key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Who signed in.
    pub user_id: String,
    /// Signed in at, Unix ms.
    pub created_ms: i64,
    /// Ends at, Unix ms (absolute, not sliding).
    pub expires_ms: i64,
    /// Sent back in `X-CSRF-Token` on every cookie-authenticated write.
    pub csrf_token: String,
}

/// Where a token hash points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRef {
    /// The owner.
    pub user_id: String,
    /// The token's id in the owner's list.
    pub token_id: String,
}

fn user_key(id: &str) -> String {
    format!("user:{id}")
}

/// Every user id, scored by creation time.
const USERS_INDEX: &str = "users";

fn token_key(sha256: &str) -> String {
    format!("token:{sha256}")
}

fn session_key(hash: &str) -> String {
    format!("session:{hash}")
}

/// A user's sessions (hash → expiry), so they can be ended together.
fn sessions_index(user_id: &str) -> String {
    format!("sessions:{user_id}")
}

fn encode<T: Serialize>(key: &str, value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

impl Store {
    /// Reads a user.
    pub async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        self.get_json(&user_key(id)).await
    }

    /// Every user, by id.
    pub async fn users(&self) -> StoreResult<Vec<User>> {
        let ids: Vec<String> = self
            .backend
            .index_range(USERS_INDEX, f64::MIN, f64::MAX, 100_000)
            .await?
            .into_iter()
            .map(|(id, _)| user_key(&id))
            .collect();
        let mut users: Vec<User> = self.get_json_many(&ids).await?;
        users.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(users)
    }

    /// Creates a user; false (nothing written) when the id is taken.
    pub async fn insert_user(&self, user: &User) -> StoreResult<bool> {
        let key = user_key(&user.id);
        if self
            .backend
            .doc_put(&key, 0, &encode(&key, user)?)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        self.backend
            .index_put(USERS_INDEX, &user.id, user.created_ms as f64)
            .await?;
        Ok(true)
    }

    /// Changes a user atomically (compare-and-swap; `change` may run several
    /// times and must be pure). `Ok(None)` when there is no such user; an error
    /// from `change` leaves the user unchanged.
    pub async fn update_user<E, F>(&self, id: &str, mut change: F) -> Result<Option<User>, E>
    where
        E: From<StoreError>,
        F: FnMut(&mut User) -> Result<(), E>,
    {
        let now = self.now_ms();
        self.update_json::<User, E, _>(&user_key(id), |current| {
            let Some(mut user) = current else {
                return Ok(None);
            };
            change(&mut user)?;
            user.updated_ms = now;
            Ok(Some(user))
        })
        .await
    }

    /// Where a token hash points, if anywhere.
    pub async fn token_ref(&self, sha256: &str) -> StoreResult<Option<TokenRef>> {
        self.get_json(&token_key(sha256)).await
    }

    /// Records where a token hash points; false when the hash is already taken.
    pub async fn insert_token_ref(&self, sha256: &str, target: &TokenRef) -> StoreResult<bool> {
        let key = token_key(sha256);
        Ok(self
            .backend
            .doc_put(&key, 0, &encode(&key, target)?)
            .await?
            .is_some())
    }

    /// Forgets a token hash.
    pub async fn delete_token_ref(&self, sha256: &str) -> StoreResult<()> {
        self.backend.doc_delete(&token_key(sha256)).await?;
        Ok(())
    }

    /// Stores a new session under the hash of its id.
    pub async fn insert_session(&self, hash: &str, session: &Session) -> StoreResult<()> {
        let key = session_key(hash);
        if self
            .backend
            .doc_put(&key, 0, &encode(&key, session)?)
            .await?
            .is_none()
        {
            // 256 random bits collided: the source of randomness is broken.
            return Err(StoreError::Contention(key));
        }
        self.backend
            .index_put(
                &sessions_index(&session.user_id),
                hash,
                session.expires_ms as f64,
            )
            .await
    }

    /// Reads a session by the hash of its id (expired ones too; callers judge).
    pub async fn session(&self, hash: &str) -> StoreResult<Option<Session>> {
        self.get_json(&session_key(hash)).await
    }

    /// Ends one session.
    pub async fn delete_session(&self, hash: &str, user_id: &str) -> StoreResult<()> {
        self.backend.doc_delete(&session_key(hash)).await?;
        self.backend
            .index_remove(&sessions_index(user_id), hash)
            .await?;
        Ok(())
    }

    /// Ends every session of a user except `keep`; returns how many ended.
    pub async fn delete_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> StoreResult<usize> {
        let hashes = self
            .backend
            .index_range(&sessions_index(user_id), f64::MIN, f64::MAX, 100_000)
            .await?;
        let mut ended = 0;
        for (hash, _) in hashes {
            if Some(hash.as_str()) != keep {
                self.delete_session(&hash, user_id).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Deletes a user's sessions that ended before `now_ms`, so sessions that
    /// were never signed out do not pile up.
    pub async fn purge_expired_sessions(&self, user_id: &str, now_ms: i64) -> StoreResult<()> {
        let expired = self
            .backend
            .index_range(&sessions_index(user_id), f64::MIN, now_ms as f64, 1_000)
            .await?;
        for (hash, _) in expired {
            self.delete_session(&hash, user_id).await?;
        }
        Ok(())
    }
}
