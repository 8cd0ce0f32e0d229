//! Secrets: random values from the operating system, SHA-256 for lookups, and
//! Argon2id for passwords.
//!
//! Every secret (API tokens, session ids, CSRF tokens, generated passwords,
//! salts) comes from the OS random source (`getrandom`). Tokens and session ids
//! carry 256 random bits, so a plain SHA-256 is enough to store and find them;
//! passwords are chosen by people and get Argon2id with its recommended
//! parameters (19 MiB, 2 passes), computed off the async threads.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

/// `N` bytes from the OS random source.
///
/// # Panics
/// When the operating system cannot provide randomness: no secret can be made
/// safely then, and carrying on with a weak one would be worse.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// Hex SHA-256 of a secret (how tokens and session ids are stored).
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new API token: `blk_` and 256 random bits in hex.
pub fn new_api_token() -> String {
    format!("blk_{}", hex::encode(random_bytes::<32>()))
}

/// A new token id (`tok_` and 64 random bits): names a token, grants nothing.
pub fn new_token_id() -> String {
    format!("tok_{}", hex::encode(random_bytes::<8>()))
}

/// A new session id (256 random bits in hex).
pub fn new_session_id() -> String {
    hex::encode(random_bytes::<32>())
}

/// A new CSRF token (256 random bits in hex).
pub fn new_csrf_token() -> String {
    hex::encode(random_bytes::<32>())
}

/// A generated password: 20 characters from an alphabet without look-alikes
/// (about 113 bits), for `balas users add` and `passwd --generate`.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        for b in random_bytes::<32>() {
            // Rejection sampling keeps every character equally likely.
            let limit = 256 - 256 % ALPHABET.len();
            if usize::from(b) < limit && out.len() < 20 {
                out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// Argon2id hash of a password in PHC form (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash_password(password: &str) -> String {
    let salt = random_bytes::<16>();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        // Only lengths can fail, and ours are fixed (salt) or bounded (passwords).
        .map(|h| h.to_string())
        .expect("argon2 accepts a 16-byte salt and a bounded password")
}

/// Whether `password` matches a PHC hash (false for a malformed hash).
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Password hashes computed at once per process. Each takes 19 MiB and a
/// core for tens of milliseconds, so a burst of sign-ins (from many addresses)
/// queues here instead of exhausting memory.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores.clamp(2, 8))
    })
}

/// [`hash_password`] on the blocking pool, at most a few at once.
pub async fn hash_password_blocking(password: String) -> String {
    let _slot = hashing_slots().acquire().await;
    match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(h) => h,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// [`verify_password`] on the blocking pool, at most a few at once.
pub async fn verify_password_blocking(password: String, phc: String) -> bool {
    let _slot = hashing_slots().acquire().await;
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false)
}

/// Spends the time of one password check against a fixed hash, so a sign-in
/// for an unknown user takes as long as one with a wrong password.
pub async fn burn_password_check(password: String) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let _slot = hashing_slots().acquire().await;
    let _ = tokio::task::spawn_blocking(move || {
        let phc = DUMMY.get_or_init(|| hash_password("balas-timing-equaliser"));
        verify_password(&password, phc)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("kopi susu gula aren");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("kopi susu gula aren", &h));
        assert!(!verify_password("kopi susu gula arem", &h));
        assert!(!verify_password("kopi susu gula aren", "not a hash"));
        assert_ne!(h, hash_password("kopi susu gula aren"), "salted");
    }

    #[test]
    fn secrets_are_random_and_well_formed() {
        let a = new_api_token();
        assert!(a.starts_with("blk_") && a.len() == 4 + 64, "{a}");
        assert_ne!(a, new_api_token());
        assert_eq!(new_session_id().len(), 64);
        assert_ne!(new_session_id(), new_session_id());
        assert!(new_token_id().starts_with("tok_"));
        let p = generate_password();
        assert_eq!(p.chars().count(), 20);
        assert!(
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c))
        );
        assert_eq!(sha256_hex("s3cret").len(), 64);
    }
}
