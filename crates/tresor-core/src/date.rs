//! Calendar days, as statements and the accounting formats count them: a [`Day`] is a date in
//! UTC, stored as days since 1970-01-01, written `YYYY-MM-DD` on the wire and `DD.MM.YYYY` in
//! 1C/BAS files. The calendar arithmetic is the `time` crate's.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, OffsetDateTime};

/// A calendar day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

/// Why a date does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date (YYYY-MM-DD)")]
pub struct BadDate(pub String);

const SECONDS_PER_DAY: i64 = 86_400;

impl Day {
    /// The day `days` after 1970-01-01.
    pub const fn from_days(days: i64) -> Self {
        Self(days)
    }

    /// Days since 1970-01-01.
    pub const fn days(self) -> i64 {
        self.0
    }

    /// The day a Unix time falls on.
    pub const fn of_unix(seconds: i64) -> Self {
        Self(seconds.div_euclid(SECONDS_PER_DAY))
    }

    /// Midnight at the start of the day, Unix seconds.
    pub const fn start_unix(self) -> i64 {
        self.0 * SECONDS_PER_DAY
    }

    /// The next day.
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// `YYYY-MM-DD`, years 1900 to 9999.
    pub fn parse(s: &str) -> Result<Self, BadDate> {
        let bad = || BadDate(s.to_owned());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u16, BadDate> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        Self::from_ymd(i32::from(num(0..4)?), num(5..7)?, num(8..10)?).ok_or_else(bad)
    }

    /// `DD.MM.YYYY`, as 1C/BAS files write dates.
    pub fn parse_dotted(s: &str) -> Result<Self, BadDate> {
        let b = s.as_bytes();
        if b.len() != 10 || b[2] != b'.' || b[5] != b'.' {
            return Err(BadDate(s.to_owned()));
        }
        Self::parse(&format!("{}-{}-{}", &s[6..10], &s[3..5], &s[0..2]))
            .map_err(|_| BadDate(s.to_owned()))
    }

    /// The day of a calendar date, if it exists (years 1900 to 9999).
    pub fn from_ymd(year: i32, month: u16, day: u16) -> Option<Self> {
        if !(1900..=9999).contains(&year) {
            return None;
        }
        let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
        let date = Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
        Some(Self(i64::from(date.to_julian_day() - UNIX_EPOCH_JULIAN)))
    }

    /// (year, month, day).
    pub fn ymd(self) -> (i32, u8, u8) {
        let julian = i32::try_from(self.0 + i64::from(UNIX_EPOCH_JULIAN)).unwrap_or(i32::MAX);
        match Date::from_julian_day(julian) {
            Ok(d) => (d.year(), u8::from(d.month()), d.day()),
            Err(_) => (9999, 12, 31),
        }
    }

    /// The first day of the day's month.
    pub fn month_start(self) -> Self {
        let (y, m, _) = self.ymd();
        Self::from_ymd(y, u16::from(m), 1).unwrap_or(self)
    }

    /// `DD.MM.YYYY`.
    pub fn dotted(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{d:02}.{m:02}.{y:04}")
    }

    /// Today, by the system clock.
    pub fn today() -> Self {
        Self::of_unix(OffsetDateTime::now_utc().unix_timestamp())
    }
}

/// 1970-01-01 as a Julian day number.
const UNIX_EPOCH_JULIAN: i32 = 2_440_588;

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for (text, days) in [
            ("1970-01-01", 0),
            ("1969-12-31", -1),
            ("2000-02-29", 11_016),
            ("2026-12-01", 20_788),
        ] {
            let day = Day::parse(text).expect(text);
            assert_eq!(day.days(), days, "{text}");
            assert_eq!(day.to_string(), text);
            assert_eq!(Day::parse_dotted(&day.dotted()), Ok(day));
        }
    }

    #[test]
    fn bad_dates_are_refused() {
        for text in [
            "",
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
            "+026-01-01",
            "1899-12-31",
            "2026-01-01 ",
        ] {
            assert_eq!(Day::parse(text), Err(BadDate(text.into())), "{text:?}");
        }
        assert!(Day::parse_dotted("31.02.2026").is_err());
    }

    #[test]
    fn unix_times_fall_on_their_day() {
        let day = Day::parse("2026-12-01").expect("date");
        assert_eq!(Day::of_unix(day.start_unix()), day);
        assert_eq!(Day::of_unix(day.next().start_unix() - 1), day);
        assert_eq!(day.month_start().to_string(), "2026-12-01");
        assert_eq!(
            Day::parse("2026-11-17")
                .expect("d")
                .month_start()
                .to_string(),
            "2026-11-01"
        );
    }
}
