//! Human-readable durations in config files: `"500ms"`, `"15m"`, `"1h30m"`, `"7d"`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as a human string. Deserializing validates it, so a bad
/// value is reported with the file line of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }

    /// A duration of `ms` milliseconds.
    pub const fn millis(ms: u64) -> Self {
        HumanDuration(Duration::from_millis(ms))
    }

    /// The std duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// Whole milliseconds, saturating.
    pub fn as_millis_i64(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Parses `"90s"`, `"15m"`, `"1h30m"`, `"2d"`, `"250ms"`, `"0s"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. \"15m\", \"1s\" or \"2h\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number before the unit (e.g. \"15m\")"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .map(char::len_utf8)
            .sum::<usize>();
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "d" => Duration::from_secs(number.saturating_mul(86_400)),
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit; use ms, s, m, h or d (e.g. \"{number}s\")"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?}; use ms, s, m, h or d"
                ));
            }
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(86_400_000) && ms > 0 {
            write!(f, "{}d", ms / 86_400_000)
        } else if ms.is_multiple_of(3_600_000) && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("0s", 0),
            ("1s", 1_000),
            ("250ms", 250),
            ("15m", 900_000),
            ("2h", 7_200_000),
            ("1h30m", 5_400_000),
            ("7d", 604_800_000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_millis(ms),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_forms_with_a_hint() {
        for text in ["", "15", "m", "15x", "1.5h", "-1s"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("duration"), "{text}: {err}");
        }
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(HumanDuration::secs(900).to_string(), "15m");
        assert_eq!(HumanDuration::millis(1500).to_string(), "1500ms");
        assert_eq!(HumanDuration::secs(0).to_string(), "0s");
    }
}
