//! Helpers shared by the webhook parsers: the parse error, lenient JSON access,
//! timestamp normalization and content-derived dedupe keys.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A webhook body that is not a webhook at all. The webhook handler answers 400;
/// everything short of this becomes events (possibly `Unsupported`) and a 200.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Valid JSON, but not `{"object": …, "entry": [ … ]}`.
    #[error("unexpected top-level shape: {0}")]
    Shape(&'static str),
}

/// Parses `body` and checks the envelope: a JSON object with an `entry` array.
/// Returns the `object` name (empty when absent) and the entries.
pub(crate) fn envelope(body: &[u8]) -> Result<(String, Vec<Value>), ParseError> {
    let root: Value = serde_json::from_slice(body)?;
    let Value::Object(mut map) = root else {
        return Err(ParseError::Shape("top level is not an object"));
    };
    let object = map
        .get("object")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match map.remove("entry") {
        Some(Value::Array(entries)) => Ok((object, entries)),
        Some(_) => Err(ParseError::Shape("`entry` is not an array")),
        None => Err(ParseError::Shape("no `entry` array")),
    }
}

/// `v[key]` as a string (also accepting a number, which Meta sometimes sends for ids).
pub(crate) fn str_of(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `v[key]` as a non-empty string.
pub(crate) fn nonempty(v: &Value, key: &str) -> Option<String> {
    str_of(v, key).filter(|s| !s.is_empty())
}

/// `v[key]` as an array (empty when absent or not an array).
pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `v[key]` as a float (also accepting a numeric string).
pub(crate) fn f64_of(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `v[key]` as an integer (also accepting a numeric string).
pub(crate) fn i64_of(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Values below this are taken as seconds, above as milliseconds (10^11 s is the
/// year 5138; 10^11 ms is 1973).
const SECONDS_CUTOFF: i64 = 100_000_000_000;

/// Normalizes a platform timestamp to Unix ms: seconds are multiplied, values
/// already in ms are kept. Missing → 0.
pub(crate) fn timestamp_ms(v: &Value, key: &str) -> i64 {
    match i64_of(v, key) {
        Some(t) if t.abs() < SECONDS_CUTOFF => t.saturating_mul(1000),
        Some(t) => t,
        None => 0,
    }
}

/// A stable key for an item without an id: `{prefix}:{first 16 bytes of
/// sha256(item JSON) in hex}`. A redelivered webhook carries the same item, so
/// its key is the same.
pub(crate) fn hashed_key(prefix: &str, item: &Value) -> String {
    let bytes = serde_json::to_vec(item).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    format!("{prefix}:{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps() {
        assert_eq!(
            timestamp_ms(&json!({"t": "1778576400"}), "t"),
            1_778_576_400_000
        );
        assert_eq!(
            timestamp_ms(&json!({"t": 1778576400}), "t"),
            1_778_576_400_000
        );
        assert_eq!(
            timestamp_ms(&json!({"t": 1778576401000_i64}), "t"),
            1_778_576_401_000
        );
        assert_eq!(
            timestamp_ms(&json!({"t": "1778576401000"}), "t"),
            1_778_576_401_000
        );
        assert_eq!(timestamp_ms(&json!({}), "t"), 0);
        assert_eq!(timestamp_ms(&json!({"t": "soon"}), "t"), 0);
    }

    #[test]
    fn envelopes() {
        assert!(matches!(envelope(b"not json"), Err(ParseError::Json(_))));
        assert!(matches!(envelope(b"[]"), Err(ParseError::Shape(_))));
        assert!(matches!(
            envelope(b"{\"object\":\"x\"}"),
            Err(ParseError::Shape(_))
        ));
        assert!(matches!(
            envelope(b"{\"entry\":{}}"),
            Err(ParseError::Shape(_))
        ));
        let (o, e) = envelope(b"{\"object\":\"instagram\",\"entry\":[]}").unwrap();
        assert_eq!((o.as_str(), e.len()), ("instagram", 0));
    }

    #[test]
    fn hashed_keys_are_stable() {
        let a = hashed_key("wa:x", &json!({"a": 1, "b": [2]}));
        assert_eq!(a, hashed_key("wa:x", &json!({"a": 1, "b": [2]})));
        assert_ne!(a, hashed_key("wa:x", &json!({"a": 2, "b": [2]})));
        assert_eq!(a.len(), "wa:x:".len() + 32);
    }
}
