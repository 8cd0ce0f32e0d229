//! Signed, expiring public links to files we send.
//!
//! Instagram does not take a file in the send request: it fetches
//! `attachment.payload.url` itself. Such a URL must work without a login, so
//! it carries its own permission: the attachment id and an expiry, signed
//! with HMAC-SHA256 under a random key every process shares (kept in the
//! state store). A link names one file for a short while and nothing else;
//! only files we send are ever served this way, never customers' files.
//! Pure functions; the key and the clock come from the caller.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], id: &str, expires_s: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(expires_s.to_string().as_bytes());
    mac
}

/// The signature of a link to attachment `id` valid until `expires_s` (Unix
/// seconds), as 64 hex digits.
pub fn sign(key: &[u8], id: &str, expires_s: i64) -> String {
    hex::encode(mac(key, id, expires_s).finalize().into_bytes())
}

/// Whether `signature` was made by [`sign`] with `key` for `id` and
/// `expires_s`, and `now_s` is not past the expiry. Compared in constant time.
pub fn verify(key: &[u8], id: &str, expires_s: i64, signature: &str, now_s: i64) -> bool {
    if now_s > expires_s {
        return false;
    }
    let Ok(bytes) = hex::decode(signature) else {
        return false;
    };
    mac(key, id, expires_s).verify_slice(&bytes).is_ok()
}

/// The path of the public route for attachment `id` (under the server's
/// public URL), with its expiry and signature.
pub fn path(key: &[u8], id: &str, expires_s: i64) -> String {
    format!(
        "/media/public/{id}?exp={expires_s}&sig={}",
        sign(key, id, expires_s)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_links_expire_and_name_one_file() {
        let key = [7u8; 32];
        let sig = sign(&key, "abc", 1_000);
        assert_eq!(sig.len(), 64);
        assert!(verify(&key, "abc", 1_000, &sig, 999));
        assert!(verify(&key, "abc", 1_000, &sig, 1_000));
        assert!(!verify(&key, "abc", 1_000, &sig, 1_001), "expired");
        assert!(!verify(&key, "abd", 1_000, &sig, 999), "another file");
        assert!(!verify(&key, "abc", 2_000, &sig, 999), "a longer expiry");
        assert!(!verify(&[8u8; 32], "abc", 1_000, &sig, 999), "another key");
        assert!(!verify(&key, "abc", 1_000, "zz", 999));
        assert!(!verify(&key, "abc", 1_000, "", 999));
        assert_eq!(
            path(&key, "abc", 1_000),
            format!("/media/public/abc?exp=1000&sig={sig}")
        );
    }
}
