//! Webhook payload signatures (`X-Hub-Signature-256`, FACTS.md §2).
//!
//! Meta signs every webhook POST with HMAC-SHA256 over the raw request body, keyed
//! with the app secret, and sends `sha256=<64 lowercase hex>`. Verification runs on
//! the exact bytes read from the socket, before any JSON parsing, and compares in
//! constant time ([`Mac::verify_slice`]).
//!
//! Uppercase hex digits are accepted: Meta sends lowercase, but the comparison is
//! over the decoded bytes, so accepting either case costs nothing and avoids a
//! false rejection from a proxy or test tool that upper-cases hex. The `sha256=`
//! prefix itself must be lowercase and exact.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header carrying the signature (lowercase, as HTTP header names compare).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

const PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No (or an empty) `X-Hub-Signature-256` header.
    #[error("missing signature header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("malformed signature header")]
    Malformed,
    /// Well-formed, but not the HMAC of this body under this secret.
    #[error("signature mismatch")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature-256` value) against HMAC-SHA256 of `body`
/// keyed with `app_secret`, in constant time.
pub fn verify_signature(
    app_secret: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.map(str::trim).unwrap_or("");
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let hex_part = header
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Malformed)?;
    if hex_part.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC accepts any key length");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The `X-Hub-Signature-256` header value Meta would send for `body`
/// (`sha256=` + lowercase hex). Used by tests and load tools.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"app-secret-123";
    const BODY: &[u8] = "{\"object\":\"instagram\",\"text\":\"halo 🙏\"}".as_bytes();

    #[test]
    fn sign_shape() {
        let s = sign(SECRET, BODY);
        assert!(s.starts_with("sha256="));
        assert_eq!(s.len(), 7 + 64);
        assert!(
            s[7..]
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        &'a [u8],
        Result<(), SignatureError>,
    );

    #[test]
    fn table() {
        let good = sign(SECRET, BODY);
        let upper = format!("sha256={}", good[7..].to_uppercase());
        let wrong_secret = sign(b"other-secret", BODY);
        let short = good[..good.len() - 2].to_string();
        let long = format!("{good}00");
        let bad_hex = format!("sha256={}", "zz".repeat(32));
        let no_prefix = good[7..].to_string();
        let spaced = format!(" {good} ");
        let sha1_prefix = format!("sha1={}", &good[7..]);
        let cases: Vec<Case> = vec![
            ("good", Some(&good), BODY, Ok(())),
            ("good with surrounding spaces", Some(&spaced), BODY, Ok(())),
            ("uppercase hex accepted", Some(&upper), BODY, Ok(())),
            ("missing", None, BODY, Err(SignatureError::Missing)),
            ("empty", Some(""), BODY, Err(SignatureError::Missing)),
            (
                "no prefix",
                Some(&no_prefix),
                BODY,
                Err(SignatureError::Malformed),
            ),
            (
                "sha1 prefix",
                Some(&sha1_prefix),
                BODY,
                Err(SignatureError::Malformed),
            ),
            (
                "bad hex",
                Some(&bad_hex),
                BODY,
                Err(SignatureError::Malformed),
            ),
            (
                "too short",
                Some(&short),
                BODY,
                Err(SignatureError::Malformed),
            ),
            (
                "too long",
                Some(&long),
                BODY,
                Err(SignatureError::Malformed),
            ),
            (
                "wrong secret",
                Some(&wrong_secret),
                BODY,
                Err(SignatureError::Mismatch),
            ),
            (
                "tampered body",
                Some(&good),
                b"{\"object\":\"instagram\"}",
                Err(SignatureError::Mismatch),
            ),
            (
                "empty body",
                Some(&good),
                b"",
                Err(SignatureError::Mismatch),
            ),
        ];
        for (name, header, body, want) in cases {
            assert_eq!(verify_signature(SECRET, header, body), want, "case {name}");
        }
    }
}
