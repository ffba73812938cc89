//! FHIR dates and times with their precision.
//!
//! FHIR compares dates as ranges: `2024` means all of 2024, `2024-03-01T10:00Z` one minute... so
//! a value is parsed once into its parts and turned into the inclusive range of instants it
//! covers (microseconds since the Unix epoch, UTC). Validation of `date`, `dateTime`, `instant`
//! and `time` primitives and every date search use this one parser.

/// How much of a date or time was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    /// `2024`
    Year,
    /// `2024-03`
    Month,
    /// `2024-03-01`
    Day,
    /// `2024-03-01T10:00Z` (search values only)
    Minute,
    /// `2024-03-01T10:00:00Z`
    Second,
    /// `2024-03-01T10:00:00.123Z`, with the number of fraction digits.
    Fraction(u8),
}

/// A parsed FHIR date or dateTime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialDateTime {
    /// Year, 1 to 9999 as FHIR allows.
    pub year: i32,
    /// Month, 1 to 12 (1 when not given).
    pub month: u32,
    /// Day of month (1 when not given).
    pub day: u32,
    /// Seconds since midnight, local to `offset_minutes`.
    pub seconds: u32,
    /// The fraction of a second, in microseconds.
    pub micros: u32,
    /// Offset from UTC in minutes; `None` when no time zone was given.
    pub offset_minutes: Option<i32>,
    /// What was given.
    pub precision: Precision,
}

/// What a date text must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// `date`: year, year-month or full date; no time.
    Date,
    /// `dateTime`: a date, or a date and a time to at least seconds with a time zone.
    DateTime,
    /// `instant`: a full date and time to at least seconds with a time zone.
    Instant,
    /// A search parameter value: as dateTime, but minutes alone are allowed and the time zone
    /// may be left out.
    Search,
}

/// Why a date or time text was rejected; the text says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DateError(pub &'static str);

impl PartialDateTime {
    /// Parses a date or dateTime of the given kind.
    pub fn parse(text: &str, kind: DateKind) -> Result<PartialDateTime, DateError> {
        let bytes = text.as_bytes();
        let mut cursor = Cursor { bytes, pos: 0 };
        let year = cursor
            .digits(4)
            .ok_or(DateError("expected a four-digit year"))?;
        if year == 0 {
            return Err(DateError("year 0000 is not allowed"));
        }
        let mut value = PartialDateTime {
            year: year as i32,
            month: 1,
            day: 1,
            seconds: 0,
            micros: 0,
            offset_minutes: None,
            precision: Precision::Year,
        };
        if cursor.done() {
            return value.finish(kind);
        }
        cursor
            .expect(b'-')
            .ok_or(DateError("expected '-' after the year"))?;
        value.month = cursor
            .digits(2)
            .ok_or(DateError("expected a two-digit month"))?;
        if !(1..=12).contains(&value.month) {
            return Err(DateError("month must be 01 to 12"));
        }
        value.precision = Precision::Month;
        if cursor.done() {
            return value.finish(kind);
        }
        cursor
            .expect(b'-')
            .ok_or(DateError("expected '-' after the month"))?;
        value.day = cursor
            .digits(2)
            .ok_or(DateError("expected a two-digit day"))?;
        if value.day < 1 || value.day > days_in_month(value.year, value.month) {
            return Err(DateError("day is not in the month"));
        }
        value.precision = Precision::Day;
        if cursor.done() {
            return value.finish(kind);
        }
        if kind == DateKind::Date {
            return Err(DateError("a date has no time part"));
        }
        cursor
            .expect(b'T')
            .ok_or(DateError("expected 'T' before the time"))?;
        let (seconds, micros, precision) = parse_clock(&mut cursor, kind == DateKind::Search)?;
        value.seconds = seconds;
        value.micros = micros;
        value.precision = precision;
        if !cursor.done() {
            value.offset_minutes = Some(parse_offset(&mut cursor)?);
        }
        if !cursor.done() {
            return Err(DateError("unexpected text after the time zone"));
        }
        value.finish(kind)
    }

    fn finish(self, kind: DateKind) -> Result<PartialDateTime, DateError> {
        let has_time = self.precision > Precision::Day;
        match kind {
            DateKind::Instant if !has_time => Err(DateError(
                "an instant needs a time to the second and a time zone",
            )),
            DateKind::Instant | DateKind::DateTime if has_time && self.offset_minutes.is_none() => {
                Err(DateError("a time needs a time zone (Z or +hh:mm)"))
            }
            _ => Ok(self),
        }
    }

    /// The inclusive range of instants this value covers, in microseconds since the epoch.
    /// Values without a time zone are taken as UTC.
    pub fn range(&self) -> (i64, i64) {
        let days = days_from_civil(self.year, self.month, self.day);
        let offset = i64::from(self.offset_minutes.unwrap_or(0)) * 60 * MICROS;
        let start = days * DAY + i64::from(self.seconds) * MICROS + i64::from(self.micros) - offset;
        let end = match self.precision {
            Precision::Year => days_from_civil(self.year + 1, 1, 1) * DAY - offset - 1,
            Precision::Month => {
                let (year, month) = if self.month == 12 {
                    (self.year + 1, 1)
                } else {
                    (self.year, self.month + 1)
                };
                days_from_civil(year, month, 1) * DAY - offset - 1
            }
            Precision::Day => start + DAY - 1,
            Precision::Minute => start + 60 * MICROS - 1,
            Precision::Second => start + MICROS - 1,
            Precision::Fraction(digits) => {
                let unit = 10_i64.pow(6_u32.saturating_sub(u32::from(digits.min(6))));
                start + unit - 1
            }
        };
        (start, end)
    }
}

/// Checks a FHIR `time` (`hh:mm:ss` with an optional fraction).
pub fn validate_time(text: &str) -> Result<(), DateError> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let (_, _, precision) = parse_clock(&mut cursor, false)?;
    if !cursor.done() || precision < Precision::Second {
        return Err(DateError("expected a time as hh:mm:ss"));
    }
    Ok(())
}

const MICROS: i64 = 1_000_000;
const DAY: i64 = 86_400 * MICROS;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.pos += 1)
    }

    fn digits(&mut self, count: usize) -> Option<u32> {
        let slice = self.bytes.get(self.pos..self.pos + count)?;
        let mut value = 0u32;
        for &b in slice {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.pos += count;
        Some(value)
    }
}

/// `hh:mm[:ss[.fff]]`, returning seconds since midnight, microseconds and the precision.
fn parse_clock(
    cursor: &mut Cursor<'_>,
    minutes_allowed: bool,
) -> Result<(u32, u32, Precision), DateError> {
    let hour = cursor
        .digits(2)
        .ok_or(DateError("expected a two-digit hour"))?;
    cursor
        .expect(b':')
        .ok_or(DateError("expected ':' after the hour"))?;
    let minute = cursor
        .digits(2)
        .ok_or(DateError("expected two-digit minutes"))?;
    if hour > 23 || minute > 59 {
        return Err(DateError("hour must be 00 to 23 and minutes 00 to 59"));
    }
    if cursor.expect(b':').is_none() {
        if !minutes_allowed {
            return Err(DateError("expected seconds (hh:mm:ss)"));
        }
        return Ok((hour * 3600 + minute * 60, 0, Precision::Minute));
    }
    let second = cursor
        .digits(2)
        .ok_or(DateError("expected two-digit seconds"))?;
    // 60 allows a leap second, as XML Schema does.
    if second > 60 {
        return Err(DateError("seconds must be 00 to 60"));
    }
    let seconds = hour * 3600 + minute * 60 + second.min(59);
    if cursor.expect(b'.').is_none() {
        return Ok((seconds, 0, Precision::Second));
    }
    let mut micros = 0u32;
    let mut digits = 0u8;
    while let Some(b) = cursor.peek().filter(u8::is_ascii_digit) {
        if digits < 6 {
            micros = micros * 10 + u32::from(b - b'0');
        }
        digits = digits.saturating_add(1);
        cursor.pos += 1;
    }
    if digits == 0 {
        return Err(DateError("expected digits after the decimal point"));
    }
    for _ in digits.min(6)..6 {
        micros *= 10;
    }
    Ok((seconds, micros, Precision::Fraction(digits)))
}

fn parse_offset(cursor: &mut Cursor<'_>) -> Result<i32, DateError> {
    if cursor.expect(b'Z').is_some() {
        return Ok(0);
    }
    let sign = match cursor.peek() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(DateError("expected a time zone: Z or +hh:mm")),
    };
    cursor.pos += 1;
    let hours = cursor
        .digits(2)
        .ok_or(DateError("expected a time zone: Z or +hh:mm"))?;
    cursor
        .expect(b':')
        .ok_or(DateError("expected a time zone: Z or +hh:mm"))?;
    let minutes = cursor
        .digits(2)
        .ok_or(DateError("expected a time zone: Z or +hh:mm"))?;
    if hours > 14 || minutes > 59 {
        return Err(DateError("time zone offset out of range"));
    }
    Ok(sign * (hours * 60 + minutes) as i32)
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in a month of a year.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Formats microseconds since the epoch as a FHIR `instant` in UTC with millisecond precision
/// (what `meta.lastUpdated` carries).
pub fn format_instant(micros: i64) -> String {
    let days = micros.div_euclid(DAY);
    let rest = micros.rem_euclid(DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds = rest / MICROS;
    let millis = (rest % MICROS) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

/// Formats microseconds since the epoch as an HTTP date (`Last-Modified`).
pub fn format_http_date(micros: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = micros.div_euclid(DAY);
    let rest = micros.rem_euclid(DAY) / MICROS;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Mon");
    let month_name = MONTHS.get(month as usize - 1).copied().unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        rest / 3600,
        (rest / 60) % 60,
        rest % 60
    )
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
