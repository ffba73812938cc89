//! Calendar dates for birth and death, computed with integer arithmetic only.
//!
//! Ages are measured back from a fixed [`REFERENCE_DATE`] rather than today, because a pack must
//! be the same whenever it is generated: reading the clock would make a test pass on Monday and
//! fail on Tuesday.

use std::fmt;

use crate::text::push_padded;

/// A proleptic Gregorian calendar date, always valid by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

/// The day every pack is generated "as of": ages, deaths and registrations are measured back
/// from it. Fixed so that output never depends on when it was generated.
pub const REFERENCE_DATE: Date = Date {
    year: 2025,
    month: 1,
    day: 1,
};

impl Date {
    /// The date, if it exists (`2024-02-29` does, `2025-02-29` does not).
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_days_since_epoch(days: i64) -> Date {
        let (year, month, day) = civil_from_days(days);
        Date { year, month, day }
    }

    /// Whole years from this date to `on` (0 if `on` is earlier), as an age is counted.
    pub fn years_until(self, on: Date) -> u32 {
        let mut years = on.year - self.year;
        if (on.month, on.day) < (self.month, self.day) {
            years -= 1;
        }
        u32::try_from(years).unwrap_or(0)
    }
}

impl Date {
    /// `YYYY-MM-DD`, the FHIR `date` form (the same text as `Display`, built faster).
    pub fn to_fhir(self) -> String {
        let mut out = String::with_capacity(10);
        if self.year < 0 {
            out.push('-');
        }
        push_padded(&mut out, u64::from(self.year.unsigned_abs()), 4);
        out.push('-');
        push_padded(&mut out, u64::from(self.month), 2);
        out.push('-');
        push_padded(&mut out, u64::from(self.day), 2);
        out
    }
}

/// `YYYY-MM-DD`, the FHIR `date` form.
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_fhir())
    }
}

const fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

const fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days: exact for every Gregorian date, integer
// only, no tables.

fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
        assert_eq!(REFERENCE_DATE.days_since_epoch(), 20_089);
        assert_eq!(Date::from_days_since_epoch(-1).to_string(), "1969-12-31");
        assert_eq!(
            Date::from_days_since_epoch(11_016).to_string(),
            "2000-02-29"
        );
    }

    #[test]
    fn round_trips_every_day_for_two_centuries() {
        let start = Date::new(1900, 1, 1).unwrap().days_since_epoch();
        let end = Date::new(2100, 12, 31).unwrap().days_since_epoch();
        let mut previous: Option<Date> = None;
        for days in start..=end {
            let date = Date::from_days_since_epoch(days);
            assert_eq!(date.days_since_epoch(), days);
            assert_eq!(Date::new(date.year, date.month, date.day), Some(date));
            if let Some(p) = previous {
                assert!(p < date);
            }
            previous = Some(date);
        }
    }

    #[test]
    fn rejects_impossible_dates_and_counts_ages() {
        assert!(Date::new(2025, 2, 29).is_none());
        assert!(Date::new(2024, 2, 29).is_some());
        assert!(Date::new(2024, 13, 1).is_none());
        assert!(Date::new(2024, 4, 31).is_none());
        let birth = Date::new(2000, 6, 15).unwrap();
        assert_eq!(birth.years_until(Date::new(2025, 6, 14).unwrap()), 24);
        assert_eq!(birth.years_until(Date::new(2025, 6, 15).unwrap()), 25);
        assert_eq!(birth.years_until(Date::new(1999, 1, 1).unwrap()), 0);
    }
}
