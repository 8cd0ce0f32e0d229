//! When the support team is at work.
//!
//! Opening ranges are per weekday in the business's time zone and may cross
//! midnight (a range belongs to the day it starts on); holidays close the whole
//! day. Pure functions of a timestamp, so tests pass any instant they like.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::config::{BusinessHoursConfig, ClockRange};

/// Opening hours, ready to answer "open now?" and "when next?".
#[derive(Debug, Clone)]
pub struct BusinessHours {
    zone: TimeZone,
    /// Monday first.
    week: [Vec<ClockRange>; 7],
    holidays: Vec<Date>,
}

impl BusinessHours {
    /// From the `[business_hours]` section.
    pub fn from_config(c: &BusinessHoursConfig) -> Self {
        Self {
            zone: c.timezone.zone().clone(),
            week: [
                c.monday.clone(),
                c.tuesday.clone(),
                c.wednesday.clone(),
                c.thursday.clone(),
                c.friday.clone(),
                c.saturday.clone(),
                c.sunday.clone(),
            ],
            holidays: c.holidays.clone(),
        }
    }

    /// The time zone.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    fn ranges(&self, day: Date) -> &[ClockRange] {
        if self.holidays.contains(&day) {
            return &[];
        }
        let idx = match day.weekday() {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        };
        &self.week[idx]
    }

    /// Whether the team is working at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.zone.clone());
        let day = local.date();
        let minute = (local.hour() as u16) * 60 + local.minute() as u16;
        let today = self.ranges(day).iter().any(|r| {
            if r.crosses_midnight() {
                minute >= r.start_min
            } else {
                minute >= r.start_min && minute < r.end_min
            }
        });
        let from_yesterday = day
            .yesterday()
            .map(|y| {
                self.ranges(y)
                    .iter()
                    .any(|r| r.crosses_midnight() && minute < r.end_min)
            })
            .unwrap_or(false);
        today || from_yesterday
    }

    /// The next opening at or after `at` (itself when open), within two weeks of
    /// holidays; `None` when the calendar has no opening at all.
    pub fn next_open(&self, at: Timestamp) -> Option<Zoned> {
        if self.is_open(at) {
            return Some(at.to_zoned(self.zone.clone()));
        }
        let local = at.to_zoned(self.zone.clone());
        let mut day = local.date();
        for _ in 0..60 {
            let mut starts: Vec<u16> = self.ranges(day).iter().map(|r| r.start_min).collect();
            starts.sort_unstable();
            for start in starts {
                let Ok(candidate) = day
                    .at((start / 60) as i8, (start % 60) as i8, 0, 0)
                    .to_zoned(self.zone.clone())
                else {
                    continue;
                };
                if candidate.timestamp() >= at {
                    return Some(candidate);
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }

    /// "Senin, 08:00" / "Monday, 08:00" for customer messages: the next opening.
    pub fn next_open_text(&self, at: Timestamp, english: bool) -> String {
        match self.next_open(at) {
            None => {
                if english {
                    "as soon as possible".into()
                } else {
                    "secepatnya".into()
                }
            }
            Some(z) => {
                let day = weekday_name(z.weekday(), english);
                let same_day = z.date() == at.to_zoned(self.zone.clone()).date();
                let when = if same_day {
                    if english {
                        "today".to_string()
                    } else {
                        "hari ini".to_string()
                    }
                } else {
                    day.to_string()
                };
                format!(
                    "{when}, {:02}:{:02} {}",
                    z.hour(),
                    z.minute(),
                    zone_label(&self.zone)
                )
            }
        }
    }
}

impl BusinessHours {
    /// The weekly opening hours written out for customers, consecutive days
    /// with the same hours together: `Senin-Jumat 08.00-17.00, Sabtu
    /// 09.00-15.00 WIB` (`Monday-Friday 08:00-17:00, …` in English). Closed days are left out; `None` when the week has
    /// no opening at all (replies then say messages are read any time).
    pub fn schedule_text(&self, english: bool) -> Option<String> {
        const DAYS: [Weekday; 7] = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ];
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < 7 {
            let mut j = i;
            while j + 1 < 7 && self.week[j + 1] == self.week[i] {
                j += 1;
            }
            if !self.week[i].is_empty() {
                let days = if i == j {
                    weekday_name(DAYS[i], english).to_string()
                } else {
                    format!(
                        "{}-{}",
                        weekday_name(DAYS[i], english),
                        weekday_name(DAYS[j], english)
                    )
                };
                // Indonesian writes times with a dot (08.00), English with a colon.
                let sep = if english { ':' } else { '.' };
                let hm = |m: u16| format!("{:02}{sep}{:02}", m / 60, m % 60);
                let hours: Vec<String> = self.week[i]
                    .iter()
                    .map(|r| format!("{}-{}", hm(r.start_min), hm(r.end_min)))
                    .collect();
                let and = if english { " and " } else { " dan " };
                parts.push(format!("{days} {}", hours.join(and)));
            }
            i = j + 1;
        }
        if parts.is_empty() {
            return None;
        }
        let zone = zone_label(&self.zone);
        let text = parts.join(", ");
        Some(if zone.is_empty() {
            text
        } else {
            format!("{text} {zone}")
        })
    }
}

fn weekday_name(d: Weekday, english: bool) -> &'static str {
    match (d, english) {
        (Weekday::Monday, false) => "Senin",
        (Weekday::Tuesday, false) => "Selasa",
        (Weekday::Wednesday, false) => "Rabu",
        (Weekday::Thursday, false) => "Kamis",
        (Weekday::Friday, false) => "Jumat",
        (Weekday::Saturday, false) => "Sabtu",
        (Weekday::Sunday, false) => "Minggu",
        (Weekday::Monday, true) => "Monday",
        (Weekday::Tuesday, true) => "Tuesday",
        (Weekday::Wednesday, true) => "Wednesday",
        (Weekday::Thursday, true) => "Thursday",
        (Weekday::Friday, true) => "Friday",
        (Weekday::Saturday, true) => "Saturday",
        (Weekday::Sunday, true) => "Sunday",
    }
}

/// WIB/WITA/WIT for Indonesian zones, else the IANA name.
fn zone_label(zone: &TimeZone) -> String {
    match zone.iana_name() {
        Some("Asia/Jakarta" | "Asia/Pontianak") => "WIB".into(),
        Some("Asia/Makassar") => "WITA".into(),
        Some("Asia/Jayapura") => "WIT".into(),
        Some(name) => name.to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimeZoneName;

    fn hours() -> BusinessHours {
        let r = |s: &str| vec![ClockRange::parse(s).unwrap()];
        BusinessHours::from_config(&BusinessHoursConfig {
            timezone: TimeZoneName::jakarta(),
            monday: r("08:00-17:00"),
            tuesday: r("08:00-17:00"),
            wednesday: r("08:00-17:00"),
            thursday: r("08:00-17:00"),
            friday: r("22:00-02:00"),
            saturday: vec![],
            sunday: vec![],
            holidays: vec![jiff::civil::date(2026, 12, 25)],
        })
    }

    fn jkt(s: &str) -> Timestamp {
        format!("{s}[Asia/Jakarta]")
            .parse::<Zoned>()
            .unwrap()
            .timestamp()
    }

    #[test]
    fn open_and_closed_instants() {
        let h = hours();
        // 2026-11-23 is a Monday.
        let cases = [
            ("2026-11-23T07:59", false),
            ("2026-11-23T08:00", true),
            ("2026-11-23T16:59", true),
            ("2026-11-23T17:00", false),
            ("2026-11-27T21:59", false), // Friday before the night shift
            ("2026-11-27T23:30", true),  // Friday night
            ("2026-11-28T01:59", true),  // after midnight, Friday's range
            ("2026-11-28T02:00", false),
            ("2026-11-29T12:00", false), // Sunday
            ("2026-12-24T12:00", true),  // Thursday
            ("2026-12-25T12:00", false), // holiday (Friday daytime)
            ("2026-12-25T23:00", false), // holiday's night range is closed too
        ];
        for (at, open) in cases {
            assert_eq!(h.is_open(jkt(at)), open, "{at}");
        }
    }

    #[test]
    fn next_opening() {
        let h = hours();
        let next = h.next_open(jkt("2026-11-23T18:00")).unwrap();
        assert_eq!(next.to_string(), "2026-11-24T08:00:00+07:00[Asia/Jakarta]");
        // Saturday noon → Monday morning.
        let next = h.next_open(jkt("2026-11-28T12:00")).unwrap();
        assert_eq!(next.to_string(), "2026-11-30T08:00:00+07:00[Asia/Jakarta]");
        assert_eq!(
            h.next_open_text(jkt("2026-11-28T12:00"), false),
            "Senin, 08:00 WIB"
        );
        assert_eq!(
            h.next_open_text(jkt("2026-11-23T06:00"), true),
            "today, 08:00 WIB"
        );
    }

    #[test]
    fn a_calendar_without_hours_never_opens() {
        let mut c = BusinessHoursConfig::default();
        for d in [
            &mut c.monday,
            &mut c.tuesday,
            &mut c.wednesday,
            &mut c.thursday,
            &mut c.friday,
            &mut c.saturday,
            &mut c.sunday,
        ] {
            d.clear();
        }
        let h = BusinessHours::from_config(&c);
        assert!(h.next_open(jkt("2026-11-23T08:00")).is_none());
        assert_eq!(
            h.next_open_text(jkt("2026-11-23T08:00"), false),
            "secepatnya"
        );
    }

    #[test]
    fn schedule_text_groups_days_with_the_same_hours() {
        let r = |s: &str| vec![ClockRange::parse(s).unwrap()];
        let h = hours();
        assert_eq!(
            h.schedule_text(false).as_deref(),
            Some("Senin-Kamis 08.00-17.00, Jumat 22.00-02.00 WIB")
        );
        assert_eq!(
            h.schedule_text(true).as_deref(),
            Some("Monday-Thursday 08:00-17:00, Friday 22:00-02:00 WIB")
        );
        let split = BusinessHours::from_config(&BusinessHoursConfig {
            timezone: TimeZoneName::jakarta(),
            monday: vec![
                ClockRange::parse("08:00-12:00").unwrap(),
                ClockRange::parse("13:00-17:00").unwrap(),
            ],
            tuesday: vec![],
            wednesday: r("09:00-15:00"),
            thursday: vec![],
            friday: vec![],
            saturday: vec![],
            sunday: r("10:00-14:00"),
            holidays: vec![],
        });
        assert_eq!(
            split.schedule_text(false).as_deref(),
            Some("Senin 08.00-12.00 dan 13.00-17.00, Rabu 09.00-15.00, Minggu 10.00-14.00 WIB")
        );
        let closed = BusinessHours::from_config(&BusinessHoursConfig {
            timezone: TimeZoneName::jakarta(),
            monday: vec![],
            tuesday: vec![],
            wednesday: vec![],
            thursday: vec![],
            friday: vec![],
            saturday: vec![],
            sunday: vec![],
            holidays: vec![],
        });
        assert_eq!(closed.schedule_text(false), None);
    }
}
