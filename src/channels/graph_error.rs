//! Classifying failed Graph API calls into [`SendError`] (FACTS.md §4 error table).
//!
//! Meta's advice is to branch on `error.code`, not on the HTTP status, so a body
//! with a known code is classified by that code alone. The HTTP status decides
//! only when the code is unknown or there is no Graph error body: 429 and 5xx are
//! retryable, everything else is permanent.

use std::time::Duration;

use serde::Deserialize;

use super::outbound::{RateScope, SendError};

/// A Graph API error body: `{"error":{"code","message","type","error_subcode",
/// "error_data":{"details"},"fbtrace_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// `error.code`.
    pub code: i64,
    /// `error.message`.
    pub message: String,
    /// `error.type` (`OAuthException`, `IGApiException` …).
    pub error_type: Option<String>,
    /// `error.error_subcode` (deprecated on WhatsApp).
    pub subcode: Option<i64>,
    /// `error.error_data.details`.
    pub details: Option<String>,
    /// `error.fbtrace_id`, for Meta support.
    pub fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: RawError,
}

#[derive(Deserialize)]
struct RawError {
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    error_type: Option<String>,
    #[serde(default)]
    error_subcode: Option<serde_json::Value>,
    #[serde(default)]
    error_data: Option<serde_json::Value>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

fn as_i64(v: &serde_json::Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

impl GraphError {
    /// Parses a Graph error body; `None` when it is not one (HTML from a proxy,
    /// empty body, missing `error.code`).
    pub fn parse(body: &[u8]) -> Option<GraphError> {
        let env: Envelope = serde_json::from_slice(body).ok()?;
        let e = env.error;
        let code = as_i64(e.code.as_ref()?)?;
        let details = e
            .error_data
            .as_ref()
            .and_then(|d| d.get("details"))
            .and_then(|d| d.as_str())
            .map(str::to_string);
        Some(GraphError {
            code,
            message: e.message.unwrap_or_default(),
            error_type: e.error_type,
            subcode: e.error_subcode.as_ref().and_then(as_i64),
            details,
            fbtrace_id: e.fbtrace_id,
        })
    }

    /// A human-readable title: the message, plus the details when given.
    pub fn title(&self) -> String {
        match (&self.details, self.message.is_empty()) {
            (Some(d), false) => format!("{} ({d})", self.message),
            (Some(d), true) => d.clone(),
            (None, false) => self.message.clone(),
            (None, true) => format!("Graph error {}", self.code),
        }
    }
}

/// How a Graph error code is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    /// Retry later, with an optional rate-limit scope.
    Retryable(Option<RateScope>),
    /// Never retry.
    Permanent,
    /// Not in the table: the HTTP status decides.
    Unknown,
}

/// Classifies a Graph error code per FACTS.md §4.
pub fn classify_code(code: i64) -> CodeClass {
    match code {
        // Throughput / app / WABA call limits: the whole sender must slow down.
        130429 | 4 | 80007 | 613 => CodeClass::Retryable(Some(RateScope::Sender)),
        // Pair rate limit: only this recipient.
        131056 => CodeClass::Retryable(Some(RateScope::Recipient)),
        // Maintenance, unknown/temporary/generic service errors.
        131057 | 1 | 2 | 131000 | 131016 => CodeClass::Retryable(None),
        // Policy, window, recipient, parameter, template, auth and account errors.
        131047
        | 131026
        | 131050
        | 131049
        | 131051
        | 131048
        | 131021
        | 130472
        | 100
        | 131008
        | 131009
        | 132000
        | 132001
        | 132015
        | 132016
        | 132018
        | 190
        | 0
        | 3
        | 10
        | 200..=299
        | 368
        | 131031 => CodeClass::Permanent,
        _ => CodeClass::Unknown,
    }
}

/// Parses a `Retry-After` header given in delta-seconds (the HTTP-date form is
/// not used by Graph and yields `None`).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Classifies a non-2xx Graph response: HTTP `status`, optional `Retry-After`
/// header value and the response `body`.
pub fn classify_response(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendError {
    let retry_after = retry_after.and_then(parse_retry_after);
    let status_retryable = status == 429 || (500..=599).contains(&status);
    let status_scope = (status == 429).then_some(RateScope::Sender);
    match GraphError::parse(body) {
        Some(err) => match classify_code(err.code) {
            CodeClass::Retryable(scope) => SendError::Retryable {
                code: err.code,
                title: err.title(),
                scope,
                retry_after,
            },
            CodeClass::Permanent => SendError::Permanent {
                code: err.code,
                title: err.title(),
            },
            CodeClass::Unknown if status_retryable => SendError::Retryable {
                code: err.code,
                title: err.title(),
                scope: status_scope,
                retry_after,
            },
            CodeClass::Unknown => SendError::Permanent {
                code: err.code,
                title: err.title(),
            },
        },
        None if status_retryable => SendError::Retryable {
            code: i64::from(status),
            title: format!("HTTP {status}"),
            scope: status_scope,
            retry_after,
        },
        None => SendError::Permanent {
            code: i64::from(status),
            title: format!("HTTP {status}"),
        },
    }
}

/// Classifies a transport error. Only a failure to connect proves that the
/// request never reached the platform (retryable); a timeout or a broken
/// connection after the request was written may hide a message Meta accepted,
/// so its outcome is unknown.
pub fn network_error(err: &reqwest::Error) -> SendError {
    if err.is_connect() {
        return SendError::Retryable {
            code: 0,
            title: "connection failed".into(),
            scope: None,
            retry_after: None,
        };
    }
    let what = if err.is_timeout() {
        "timed out waiting for the platform"
    } else if err.is_body() || err.is_decode() {
        "reading the response failed"
    } else {
        "the connection failed after the request was sent"
    };
    SendError::Unknown {
        title: what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: i64) -> Vec<u8> {
        format!(r#"{{"error":{{"message":"(#{code}) x","type":"OAuthException","code":{code},"fbtrace_id":"t"}}}}"#)
            .into_bytes()
    }

    #[test]
    fn table() {
        use RateScope::*;
        let retry: Vec<(i64, Option<RateScope>)> = vec![
            (130429, Some(Sender)),
            (4, Some(Sender)),
            (80007, Some(Sender)),
            (613, Some(Sender)),
            (131056, Some(Recipient)),
            (131057, None),
            (1, None),
            (2, None),
            (131000, None),
            (131016, None),
        ];
        for (code, want_scope) in retry {
            match classify_response(400, None, &body(code)) {
                SendError::Retryable { code: c, scope, .. } => {
                    assert_eq!(c, code);
                    assert_eq!(scope, want_scope, "code {code}");
                }
                other => panic!("code {code}: {other:?}"),
            }
        }
        for code in [
            131047, 131026, 131050, 131049, 131051, 131048, 100, 131008, 131009, 132000, 132001,
            132015, 132016, 190, 0, 3, 10, 200, 250, 299, 368, 131031,
        ] {
            // Even with a retryable-looking HTTP status, a known permanent code wins.
            for status in [400, 403, 429, 500] {
                assert!(
                    matches!(classify_response(status, None, &body(code)), SendError::Permanent { code: c, .. } if c == code),
                    "code {code} status {status}"
                );
            }
        }
    }

    #[test]
    fn status_fallbacks() {
        let e = classify_response(429, Some("7"), b"");
        assert_eq!(
            e,
            SendError::Retryable {
                code: 429,
                title: "HTTP 429".into(),
                scope: Some(RateScope::Sender),
                retry_after: Some(Duration::from_secs(7)),
            }
        );
        assert!(matches!(
            classify_response(502, None, b"<html>"),
            SendError::Retryable {
                code: 502,
                scope: None,
                ..
            }
        ));
        assert!(matches!(
            classify_response(404, None, b"nope"),
            SendError::Permanent { code: 404, .. }
        ));
        // Unknown code: the status decides.
        assert!(matches!(
            classify_response(503, None, &body(999_999)),
            SendError::Retryable { code: 999_999, .. }
        ));
        assert!(matches!(
            classify_response(400, None, &body(999_999)),
            SendError::Permanent { code: 999_999, .. }
        ));
    }

    #[test]
    fn parse_fields() {
        let b = br#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"more than 24 hours"},"error_subcode":2494055,"fbtrace_id":"abc"}}"#;
        let e = GraphError::parse(b).unwrap();
        assert_eq!(e.code, 131047);
        assert_eq!(e.subcode, Some(2494055));
        assert_eq!(e.details.as_deref(), Some("more than 24 hours"));
        assert_eq!(e.fbtrace_id.as_deref(), Some("abc"));
        assert_eq!(e.error_type.as_deref(), Some("OAuthException"));
        assert_eq!(
            e.title(),
            "(#131047) Re-engagement message (more than 24 hours)"
        );
        assert!(GraphError::parse(b"{}").is_none());
        assert!(GraphError::parse(br#"{"error":{"message":"x"}}"#).is_none());
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
