//! Signing in and recognising callers: password sign-in with rate limits,
//! sessions, and API tokens.
//!
//! Nothing here is cached: every request reads the session (or token lookup)
//! and the user, so disabling a user, ending a session or revoking a token
//! takes effect on every process at the next request.

use std::time::Duration;

use crate::store::{RateKey, Session, Store, StoreError, User};

use super::secrets;

/// Sign-in attempts one user name may make at once, before the pace below.
pub const USER_BURST: u32 = 5;
/// Then one attempt per this many seconds per user name.
pub const USER_EVERY_SECS: f64 = 12.0;
/// Sign-in attempts one client address may make at once (an office behind
/// one NAT signs in together in the morning).
pub const ADDRESS_BURST: u32 = 30;
/// Then one attempt per this many seconds per address.
pub const ADDRESS_EVERY_SECS: f64 = 2.0;

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Too many attempts; try again after this many milliseconds.
    #[error("too many sign-in attempts; try again in {} s", retry_after_ms.div_ceil(1000))]
    RateLimited {
        /// How long to wait.
        retry_after_ms: u64,
    },
    /// Unknown user, wrong password, no password set, or disabled: deliberately
    /// one answer, so the reply does not tell which user names exist.
    #[error("wrong user name or password")]
    BadCredentials,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new session: the id goes into the cookie and is never stored.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session id (the cookie value).
    pub session_id: String,
    /// The stored session.
    pub session: Session,
    /// Who signed in.
    pub user: User,
}

/// Signs in with a user name and password from `address`. Every attempt
/// counts against the per-user and per-address limits before the (deliberately
/// slow) password hash is computed, so a flood costs the server nothing.
pub async fn sign_in(
    store: &Store,
    username: &str,
    password: &str,
    address: &str,
    ttl: Duration,
) -> Result<SignedIn, SignInError> {
    let now = store.now_ms();
    // The user name is bounded before it becomes part of a key.
    let name: String = username.trim().chars().take(64).collect();
    // The address first: an attempt it refuses does not use up the user's
    // allowance (or a blocked address could lock anyone out for longer).
    for (key, per_second, burst) in [
        (
            RateKey::SignInAddress(address),
            1.0 / ADDRESS_EVERY_SECS,
            ADDRESS_BURST,
        ),
        (
            RateKey::SignInUser(&name),
            1.0 / USER_EVERY_SECS,
            USER_BURST,
        ),
    ] {
        let wait = store.take_rate(&key, per_second, burst).await?;
        if wait > 0 {
            return Err(SignInError::RateLimited {
                retry_after_ms: wait,
            });
        }
    }
    let user = store.user(&name).await?;
    let hash = user
        .as_ref()
        .filter(|u| !u.disabled)
        .and_then(|u| u.password_hash.clone());
    let ok = match (
        &hash,
        password.chars().count() <= super::accounts::MAX_PASSWORD_CHARS,
    ) {
        (Some(h), true) => secrets::verify_password_blocking(password.to_string(), h.clone()).await,
        _ => {
            // Take as long as a real check, so timing does not reveal the user.
            secrets::burn_password_check(password.chars().take(256).collect()).await;
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        return Err(SignInError::BadCredentials);
    };
    store.purge_expired_sessions(&user.id, now).await?;
    let session_id = secrets::new_session_id();
    let session = Session {
        user_id: user.id.clone(),
        created_ms: now,
        expires_ms: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        csrf_token: secrets::new_csrf_token(),
    };
    store
        .insert_session(&secrets::sha256_hex(&session_id), &session)
        .await?;
    Ok(SignedIn {
        session_id,
        session,
        user,
    })
}

/// A session that is still valid, with its user (enabled).
#[derive(Debug, Clone)]
pub struct ActiveSession {
    /// Hash of the session id (the stored key).
    pub hash: String,
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

/// Finds the live session for a cookie's session id: not expired, and its user
/// exists and is enabled.
pub async fn session_user(
    store: &Store,
    session_id: &str,
) -> Result<Option<ActiveSession>, StoreError> {
    if session_id.is_empty() || session_id.len() > 128 {
        return Ok(None);
    }
    let hash = secrets::sha256_hex(session_id);
    let Some(session) = store.session(&hash).await? else {
        return Ok(None);
    };
    if session.expires_ms <= store.now_ms() {
        return Ok(None);
    }
    let Some(user) = store.user(&session.user_id).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    Ok(Some(ActiveSession {
        hash,
        session,
        user,
    }))
}

/// Ends the session with this id, if it exists.
pub async fn sign_out(store: &Store, session_id: &str) -> Result<Option<String>, StoreError> {
    let hash = secrets::sha256_hex(session_id);
    let Some(session) = store.session(&hash).await? else {
        return Ok(None);
    };
    store.delete_session(&hash, &session.user_id).await?;
    Ok(Some(session.user_id))
}

/// The enabled user holding an API token, and the token's id.
pub async fn token_user(store: &Store, token: &str) -> Result<Option<(User, String)>, StoreError> {
    if token.is_empty() || token.len() > 256 {
        return Ok(None);
    }
    let hash = secrets::sha256_hex(token);
    let Some(target) = store.token_ref(&hash).await? else {
        return Ok(None);
    };
    let Some(user) = store.user(&target.user_id).await? else {
        return Ok(None);
    };
    // The user's own list decides: a revoked token's leftover lookup matches nothing.
    let held = user
        .token_by_hash(&hash)
        .is_some_and(|t| t.id == target.token_id);
    if !held || user.disabled {
        return Ok(None);
    }
    Ok(Some((user, target.token_id)))
}
