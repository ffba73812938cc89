//! UK local time, as GP Connect speaks it: instants are written with the offset in force in
//! the UK then (`+00:00` in winter, `+01:00` in British Summer Time), never as `Z`. Summer time
//! runs from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October.

use carehub_fhir::datetime::{civil_from_days, days_from_civil};

/// Microseconds in a second, a minute, a day.
pub const SECOND: i64 = 1_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const DAY: i64 = 24 * 60 * MINUTE;

/// Days since 1970-01-01 of the last Sunday of `month` in `year`.
fn last_sunday(year: i32, month: u32) -> i64 {
    let last = days_from_civil(
        year,
        month,
        carehub_fhir::datetime::days_in_month(year, month),
    );
    // 1970-01-01 was a Thursday: weekday 0 = Monday.
    let weekday = (last + 3).rem_euclid(7);
    last - (weekday - 6).rem_euclid(7)
}

/// The UK's offset from UTC at instant `utc` (microseconds since 1970), in minutes.
pub fn uk_offset_minutes(utc: i64) -> i32 {
    let (year, _, _) = civil_from_days(utc.div_euclid(DAY));
    let year = year as i32;
    let starts = last_sunday(year, 3) * DAY + 60 * MINUTE;
    let ends = last_sunday(year, 10) * DAY + 60 * MINUTE;
    if utc >= starts && utc < ends { 60 } else { 0 }
}

/// `utc` as a UK local dateTime with its offset: `2026-07-01T09:00:00+01:00`.
pub fn format_uk(utc: i64) -> String {
    let offset = uk_offset_minutes(utc);
    let local = utc + i64::from(offset) * MINUTE;
    let (year, month, day) = civil_from_days(local.div_euclid(DAY));
    let seconds = local.rem_euclid(DAY) / SECOND;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+{:02}:00",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        offset / 60
    )
}

/// The UK local calendar day (days since 1970) of instant `utc`.
pub fn uk_day(utc: i64) -> i64 {
    (utc + i64::from(uk_offset_minutes(utc)) * MINUTE).div_euclid(DAY)
}

/// The instant of UK local wall-clock time `minute` (of the day) on local day `day`. Sessions
/// run in the daytime, far from the night-time change of offset.
pub fn uk_local(day: i64, minute: i64) -> i64 {
    let naive = day * DAY + minute * MINUTE;
    naive - i64::from(uk_offset_minutes(naive)) * MINUTE
}

/// `YYYY-MM-DD` of a day.
pub fn format_day(day: i64) -> String {
    let (year, month, date) = civil_from_days(day);
    format!("{year:04}-{month:02}-{date:02}")
}

/// The day (since 1970) of a text that starts with a date, `YYYY-MM-DD...`.
pub fn day_of(text: &str) -> Option<i64> {
    let date = carehub_fhir::datetime::PartialDateTime::parse(
        text.get(..10)?,
        carehub_fhir::datetime::DateKind::Date,
    )
    .ok()?;
    Some(days_from_civil(date.year, date.month, date.day))
}

/// Monday is 0, Sunday 6.
pub fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn british_summer_time_starts_and_ends_on_the_last_sundays() {
        // 2026: BST from 29 March 01:00 UTC to 25 October 01:00 UTC.
        let start = days_from_civil(2026, 3, 29) * DAY + 60 * MINUTE;
        assert_eq!(uk_offset_minutes(start - SECOND), 0);
        assert_eq!(uk_offset_minutes(start), 60);
        let end = days_from_civil(2026, 10, 25) * DAY + 60 * MINUTE;
        assert_eq!(uk_offset_minutes(end - SECOND), 60);
        assert_eq!(uk_offset_minutes(end), 0);
    }

    #[test]
    fn local_times_carry_their_offset() {
        let summer = uk_local(days_from_civil(2026, 7, 1), 9 * 60);
        assert_eq!(format_uk(summer), "2026-07-01T09:00:00+01:00");
        let winter = uk_local(days_from_civil(2026, 12, 1), 9 * 60 + 10);
        assert_eq!(format_uk(winter), "2026-12-01T09:10:00+00:00");
        assert_eq!(weekday(days_from_civil(2026, 12, 1)), 1, "a Tuesday");
    }
}
