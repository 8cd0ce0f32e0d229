//! Self-validating value types used in the configuration.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret (token, app secret, Redis URL with password). `Debug` and `Display`
/// print `***`, so logging a config never leaks it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty (treated as "not set").
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// A validated IANA time zone name such as `Asia/Jakarta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneName {
    name: String,
    zone: jiff::tz::TimeZone,
}

impl TimeZoneName {
    /// Asia/Jakarta (WIB), the default.
    pub fn jakarta() -> Self {
        Self::parse("Asia/Jakarta").expect("bundled tz database has Asia/Jakarta")
    }

    /// Looks a zone up in the bundled database.
    pub fn parse(name: &str) -> Result<Self, String> {
        let zone = jiff::tz::TimeZone::get(name).map_err(|_| {
            format!("unknown time zone {name:?}; use an IANA name such as \"Asia/Jakarta\"")
        })?;
        Ok(Self {
            name: name.to_string(),
            zone,
        })
    }

    /// The zone.
    pub fn zone(&self) -> &jiff::tz::TimeZone {
        &self.zone
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        TimeZoneName::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

/// A local time-of-day range `"HH:MM-HH:MM"`; the end may be before the start,
/// meaning the range crosses midnight. `"00:00-24:00"` is the whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockRange {
    /// Start, minutes after midnight (0–1439).
    pub start_min: u16,
    /// End, minutes after midnight (0–1440), exclusive.
    pub end_min: u16,
}

impl ClockRange {
    /// Parses `"08:00-17:00"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hint = || format!("invalid time range {text:?}; write it as \"08:00-17:00\"");
        let (a, b) = text.trim().split_once('-').ok_or_else(hint)?;
        let start_min = parse_hhmm(a).ok_or_else(hint)?;
        let end_min = parse_hhmm(b).ok_or_else(hint)?;
        if start_min == 1440 || start_min == end_min {
            return Err(format!(
                "invalid time range {text:?}: start and end must differ and the start must be before 24:00"
            ));
        }
        Ok(Self { start_min, end_min })
    }

    /// Whether the range wraps past midnight.
    pub fn crosses_midnight(self) -> bool {
        self.end_min < self.start_min
    }
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

impl<'de> Deserialize<'de> for ClockRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ClockRange::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ClockRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for ClockRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start_min / 60,
            self.start_min % 60,
            self.end_min / 60,
            self.end_min % 60
        )
    }
}

/// An IP address or a CIDR range (`10.0.0.0/8`, `::1`, `192.168.1.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: std::net::IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `"10.0.0.0/8"` or a single address.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hint = || {
            format!(
                "invalid address range {text:?}; write an IP address or a CIDR range like \"10.0.0.0/8\""
            )
        };
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let network: std::net::IpAddr = addr.parse().map_err(|_| hint())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(hint)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        IpRange::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for IpRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "\"***\" ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn clock_ranges() {
        let r = ClockRange::parse("08:00-17:00").unwrap();
        assert_eq!((r.start_min, r.end_min), (480, 1020));
        assert!(!r.crosses_midnight());
        let r = ClockRange::parse("21:00-08:00").unwrap();
        assert!(r.crosses_midnight());
        assert_eq!(ClockRange::parse("00:00-24:00").unwrap().end_min, 1440);
        for bad in ["8-17", "08:00", "25:00-26:00", "08:60-09:00", "09:00-09:00"] {
            assert!(ClockRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ip_ranges() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let r = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(r.contains(ip("10.1.2.3")));
        assert!(!r.contains(ip("11.0.0.1")));
        assert!(r.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped IPv6");
        let one = IpRange::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpRange::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(!IpRange::parse("fd00::/8").unwrap().contains(ip("10.0.0.1")));
        for bad in ["10.0.0.0/33", "localhost", "10.0.0/8", "::1/129", ""] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_are_checked() {
        assert!(TimeZoneName::parse("Asia/Makassar").is_ok());
        assert!(TimeZoneName::parse("Mars/Olympus").is_err());
    }
}
