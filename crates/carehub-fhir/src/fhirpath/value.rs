//! FHIRPath's system values that need more than a Rust scalar: dates and times with their
//! precision, and quantities with units.

use std::cmp::Ordering;
use std::fmt;

use rust_decimal::Decimal;

use crate::datetime::{civil_from_days, days_from_civil, days_in_month};

/// Which of the three temporal types a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporalKind {
    /// `System.Date`
    Date,
    /// `System.DateTime`
    DateTime,
    /// `System.Time`
    Time,
}

/// A date, date-time or time with the precision it was given to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Temporal {
    /// Date, DateTime or Time.
    pub kind: TemporalKind,
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
    /// How many components were given: 1 = year ... 3 = day, 4 = hour, 5 = minute, 6 = second,
    /// 7 = fraction. Times start at 4.
    precision: u8,
    /// Offset from UTC in minutes, when one was given.
    offset: Option<i32>,
}

/// The outcome of comparing two values that may be known to different precisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Known(Ordering),
    /// Equal as far as both go, but one goes further: FHIRPath answers empty.
    Uncertain,
    /// Different kinds of value.
    Incomparable,
}

fn digits(text: &str, count: usize) -> Option<(u32, &str)> {
    let head = text.get(..count)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &text[count..]))
}

impl Temporal {
    /// Parses a value of the given kind from FHIR or FHIRPath text (without the `@`).
    pub fn parse(text: &str, kind: TemporalKind) -> Option<Temporal> {
        let mut value = Temporal {
            kind,
            year: 1,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            millis: 0,
            precision: 0,
            offset: None,
        };
        let mut rest = text;
        if kind != TemporalKind::Time {
            let (year, r) = digits(rest, 4)?;
            value.year = year as i32;
            value.precision = 1;
            rest = r;
            if let Some(r) = rest.strip_prefix('-') {
                let (month, r) = digits(r, 2)?;
                if !(1..=12).contains(&month) {
                    return None;
                }
                value.month = month;
                value.precision = 2;
                rest = r;
                if let Some(r) = rest.strip_prefix('-') {
                    let (day, r) = digits(r, 2)?;
                    if day < 1 || day > days_in_month(value.year, month) {
                        return None;
                    }
                    value.day = day;
                    value.precision = 3;
                    rest = r;
                }
            }
            if kind == TemporalKind::Date {
                return rest.is_empty().then_some(value);
            }
            match rest.strip_prefix('T') {
                Some(r) => rest = r,
                None => return value.offset_from(rest),
            }
            if rest.is_empty() {
                return Some(value);
            }
        }
        let (hour, r) = digits(rest, 2)?;
        if hour > 23 {
            return None;
        }
        value.hour = hour;
        value.precision = 4;
        rest = r;
        if let Some(r) = rest.strip_prefix(':') {
            let (minute, r) = digits(r, 2)?;
            if minute > 59 {
                return None;
            }
            value.minute = minute;
            value.precision = 5;
            rest = r;
            if let Some(r) = rest.strip_prefix(':') {
                let (second, r) = digits(r, 2)?;
                if second > 59 {
                    return None;
                }
                value.second = second;
                value.precision = 6;
                rest = r;
                if let Some(r) = rest.strip_prefix('.') {
                    let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                    if end == 0 {
                        return None;
                    }
                    let fraction = &r[..end];
                    let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
                    value.millis = millis.parse().ok()?;
                    value.precision = 7;
                    rest = &r[end..];
                }
            }
        }
        if kind == TemporalKind::Time {
            return rest.is_empty().then_some(value);
        }
        value.offset_from(rest)
    }

    fn offset_from(mut self, rest: &str) -> Option<Temporal> {
        if rest.is_empty() {
            return Some(self);
        }
        if rest == "Z" {
            self.offset = Some(0);
            return Some(self);
        }
        let sign = match rest.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (hours, r) = digits(&rest[1..], 2)?;
        let r = r.strip_prefix(':')?;
        let (minutes, r) = digits(r, 2)?;
        if !r.is_empty() || hours > 14 || minutes > 59 {
            return None;
        }
        self.offset = Some(sign * (hours * 60 + minutes) as i32);
        Some(self)
    }

    /// The current instant, in UTC.
    pub(crate) fn now() -> Temporal {
        let elapsed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let millis = elapsed.as_millis() as i64;
        let mut value = Temporal::from_epoch_millis(millis);
        value.offset = Some(0);
        value
    }

    fn from_epoch_millis(millis: i64) -> Temporal {
        let days = millis.div_euclid(86_400_000);
        let rest = millis.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        Temporal {
            kind: TemporalKind::DateTime,
            year: year as i32,
            month,
            day,
            hour: (rest / 3_600_000) as u32,
            minute: (rest / 60_000 % 60) as u32,
            second: (rest / 1000 % 60) as u32,
            millis: (rest % 1000) as u32,
            precision: 7,
            offset: None,
        }
    }

    fn epoch_millis(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days * 86_400_000
            + i64::from(self.hour) * 3_600_000
            + i64::from(self.minute) * 60_000
            + i64::from(self.second) * 1000
            + i64::from(self.millis)
    }

    /// The same value as a different kind, keeping what fits (a date's parts for `Date`).
    pub(crate) fn with_kind(&self, kind: TemporalKind) -> Temporal {
        let mut value = self.clone();
        value.kind = kind;
        match kind {
            TemporalKind::Date => {
                value.precision = value.precision.min(3);
                value.offset = None;
                (value.hour, value.minute, value.second, value.millis) = (0, 0, 0, 0);
            }
            TemporalKind::Time => {
                value.offset = None;
                (value.year, value.month, value.day) = (1, 1, 1);
            }
            TemporalKind::DateTime => {}
        }
        value
    }

    /// Today's date, or this moment's time, from the current instant.
    pub(crate) fn today() -> Temporal {
        Temporal::now().with_kind(TemporalKind::Date)
    }

    /// This moment's time of day.
    pub(crate) fn time_of_day() -> Temporal {
        let mut value = Temporal::now().with_kind(TemporalKind::Time);
        value.precision = 7;
        value
    }

    /// Parts compared, in order, with seconds and fractions as one part (FHIRPath treats them as
    /// one precision). Values with a time and a zone are first moved to UTC.
    fn parts(&self) -> (Vec<i64>, usize) {
        let normalised = match self.offset {
            Some(offset) if self.precision >= 4 && offset != 0 => {
                let mut value =
                    Temporal::from_epoch_millis(self.epoch_millis() - i64::from(offset) * 60_000);
                value.kind = self.kind;
                value.precision = self.precision;
                value
            }
            _ => self.clone(),
        };
        let all = [
            i64::from(normalised.year),
            i64::from(normalised.month),
            i64::from(normalised.day),
            i64::from(normalised.hour),
            i64::from(normalised.minute),
            i64::from(normalised.second) * 1000 + i64::from(normalised.millis),
        ];
        let given = usize::from(self.precision.min(6));
        let first = if self.kind == TemporalKind::Time {
            3
        } else {
            0
        };
        (all[first..given].to_vec(), given - first)
    }

    /// Compares two values as FHIRPath does: a Date is compared with a DateTime as a DateTime,
    /// and equal-so-far values of different precision are uncertain.
    pub(crate) fn compare(&self, other: &Temporal) -> Comparison {
        let time = |t: &Temporal| t.kind == TemporalKind::Time;
        if time(self) != time(other) {
            return Comparison::Incomparable;
        }
        // A time with a zone against one without cannot be ordered without knowing the
        // local zone.
        if self.precision >= 4
            && other.precision >= 4
            && self.offset.is_some() != other.offset.is_some()
            && self.kind != TemporalKind::Time
        {
            return Comparison::Uncertain;
        }
        let (a, a_len) = self.parts();
        let (b, b_len) = other.parts();
        for (x, y) in a.iter().zip(&b) {
            match x.cmp(y) {
                Ordering::Equal => {}
                unequal => return Comparison::Known(unequal),
            }
        }
        if a_len == b_len {
            Comparison::Known(Ordering::Equal)
        } else {
            Comparison::Uncertain
        }
    }

    /// Adds (or with a negative amount, subtracts) a time-valued quantity.
    pub(crate) fn add(&self, quantity: &Quantity, negate: bool) -> Option<Temporal> {
        let unit = calendar_unit(&quantity.unit)?;
        let mut amount = quantity.value.trunc();
        if negate {
            amount = -amount;
        }
        let amount: i64 = amount.try_into().ok()?;
        let mut value = self.clone();
        match unit {
            CalendarUnit::Year | CalendarUnit::Month => {
                let months = if unit == CalendarUnit::Year {
                    amount * 12
                } else {
                    amount
                };
                let total = i64::from(value.year) * 12 + i64::from(value.month) - 1 + months;
                value.year = i32::try_from(total.div_euclid(12)).ok()?;
                value.month = (total.rem_euclid(12) + 1) as u32;
                value.day = value.day.min(days_in_month(value.year, value.month));
            }
            _ => {
                let millis = match unit {
                    CalendarUnit::Week => amount * 7 * 86_400_000,
                    CalendarUnit::Day => amount * 86_400_000,
                    CalendarUnit::Hour => amount * 3_600_000,
                    CalendarUnit::Minute => amount * 60_000,
                    CalendarUnit::Second => amount * 1000,
                    _ => amount,
                };
                // Below its own precision a value cannot move: a date plus 3 hours is the date.
                let step = match value.precision {
                    1..=3 if self.kind != TemporalKind::Time => 86_400_000,
                    4 => 3_600_000,
                    5 => 60_000,
                    6 => 1000,
                    _ => 1,
                };
                let millis = millis / step * step;
                if value.kind == TemporalKind::Time {
                    let day = 86_400_000;
                    let current = i64::from(value.hour) * 3_600_000
                        + i64::from(value.minute) * 60_000
                        + i64::from(value.second) * 1000
                        + i64::from(value.millis);
                    let moved = (current + millis).rem_euclid(day);
                    value.hour = (moved / 3_600_000) as u32;
                    value.minute = (moved / 60_000 % 60) as u32;
                    value.second = (moved / 1000 % 60) as u32;
                    value.millis = (moved % 1000) as u32;
                } else {
                    let moved = Temporal::from_epoch_millis(value.epoch_millis() + millis);
                    (value.year, value.month, value.day) = (moved.year, moved.month, moved.day);
                    (value.hour, value.minute, value.second, value.millis) =
                        (moved.hour, moved.minute, moved.second, moved.millis);
                }
            }
        }
        (1..=9999).contains(&value.year).then_some(value)
    }
}

impl fmt::Display for Temporal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.precision;
        if self.kind != TemporalKind::Time {
            write!(f, "{:04}", self.year)?;
            if p >= 2 {
                write!(f, "-{:02}", self.month)?;
            }
            if p >= 3 {
                write!(f, "-{:02}", self.day)?;
            }
            if p >= 4 {
                f.write_str("T")?;
            }
        }
        if p >= 4 {
            write!(f, "{:02}", self.hour)?;
        }
        if p >= 5 {
            write!(f, ":{:02}", self.minute)?;
        }
        if p >= 6 {
            write!(f, ":{:02}", self.second)?;
        }
        if p >= 7 {
            write!(f, ".{:03}", self.millis)?;
        }
        match self.offset {
            Some(0) => f.write_str("Z"),
            Some(offset) => {
                let sign = if offset < 0 { '-' } else { '+' };
                write!(f, "{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60)
            }
            None => Ok(()),
        }
    }
}

/// A quantity: a decimal and a unit (a UCUM code, or a calendar duration word).
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    /// The amount.
    pub value: Decimal,
    /// The unit as written; calendar words are kept in their singular form.
    pub unit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CalendarUnit {
    Year,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

/// Whether a unit is a calendar duration word (`day`, `years`), not a UCUM code.
fn is_calendar_word(unit: &str) -> bool {
    calendar_unit(unit).is_some()
        && !matches!(unit, "a" | "mo" | "wk" | "d" | "h" | "min" | "s" | "ms")
}

fn calendar_unit(unit: &str) -> Option<CalendarUnit> {
    Some(match unit {
        "year" | "years" | "a" => CalendarUnit::Year,
        "month" | "months" | "mo" => CalendarUnit::Month,
        "week" | "weeks" | "wk" => CalendarUnit::Week,
        "day" | "days" | "d" => CalendarUnit::Day,
        "hour" | "hours" | "h" => CalendarUnit::Hour,
        "minute" | "minutes" | "min" => CalendarUnit::Minute,
        "second" | "seconds" | "s" => CalendarUnit::Second,
        "millisecond" | "milliseconds" | "ms" => CalendarUnit::Millisecond,
        _ => return None,
    })
}

/// UCUM units we convert between: (unit, dimension, factor to the dimension's base unit).
const UCUM: [(&str, &str, &str); 22] = [
    ("g", "mass", "1"),
    ("mg", "mass", "0.001"),
    ("ug", "mass", "0.000001"),
    ("kg", "mass", "1000"),
    ("m", "length", "1"),
    ("cm", "length", "0.01"),
    ("mm", "length", "0.001"),
    ("km", "length", "1000"),
    ("[in_i]", "length", "0.0254"),
    ("L", "volume", "1"),
    ("dL", "volume", "0.1"),
    ("mL", "volume", "0.001"),
    ("ms", "time", "0.001"),
    ("s", "time", "1"),
    ("min", "time", "60"),
    ("h", "time", "3600"),
    ("d", "time", "86400"),
    ("wk", "time", "604800"),
    ("mmol/L", "concentration", "1"),
    ("mol/L", "concentration", "1000"),
    ("1", "one", "1"),
    ("%", "one", "0.01"),
];

impl Quantity {
    /// A quantity; calendar words are stored singular (`days` -> `day`).
    pub fn new(value: Decimal, unit: String) -> Quantity {
        let unit = match unit.strip_suffix('s') {
            Some(singular) if is_calendar_word(&unit) => singular.to_owned(),
            _ => unit,
        };
        Quantity { value, unit }
    }

    /// The unit and factor to compare by: calendar words from a week down are their UCUM units
    /// (a day is always 24 hours), while years and months stay calendar units.
    fn canonical(&self) -> (&str, Decimal) {
        let unit = match self.unit.as_str() {
            "week" => "wk",
            "day" => "d",
            "hour" => "h",
            "minute" => "min",
            "second" => "s",
            "millisecond" => "ms",
            other => other,
        };
        match UCUM.iter().find(|(code, _, _)| *code == unit) {
            Some((_, dimension, factor)) => (
                dimension,
                self.value * Decimal::from_str_exact(factor).unwrap_or(Decimal::ONE),
            ),
            None => (unit, self.value),
        }
    }

    /// Compares two quantities whose units are the same or convert into each other.
    pub(crate) fn compare(&self, other: &Quantity) -> Comparison {
        let (a_unit, a) = self.canonical();
        let (b_unit, b) = other.canonical();
        if a_unit != b_unit {
            // Calendar years and months against UCUM time units have no fixed ratio.
            let time = |u: &str| matches!(u, "time" | "year" | "month" | "a" | "mo");
            if time(a_unit) && time(b_unit) {
                return Comparison::Uncertain;
            }
            return Comparison::Incomparable;
        }
        Comparison::Known(a.cmp(&b))
    }

    /// Equivalence (`~`): equal after rounding to the precision of the less precise one.
    pub(crate) fn equivalent(&self, other: &Quantity) -> bool {
        let Some(converted) = self.convert(other) else {
            return false;
        };
        let scale = self.value.scale().min(other.value.scale());
        self.value.round_dp(scale) == converted.round_dp(scale)
    }

    /// `other` expressed in this quantity's unit, when they convert.
    pub(crate) fn convert(&self, other: &Quantity) -> Option<Decimal> {
        if self.unit == other.unit {
            return Some(other.value);
        }
        let unit = Quantity::new(Decimal::ONE, self.unit.clone());
        let (a_unit, a) = unit.canonical();
        let (b_unit, b) = other.canonical();
        (a_unit == b_unit && !a.is_zero()).then(|| b / a)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_calendar_word(&self.unit) {
            let plural = if self.value == Decimal::ONE { "" } else { "s" };
            write!(f, "{} {}{plural}", self.value, self.unit)
        } else {
            write!(f, "{} '{}'", self.value, self.unit)
        }
    }
}

/// Parses a quantity written as text: `4 'mg'`, `4 days`, `4` (unit `1`).
pub(crate) fn parse_quantity(text: &str) -> Option<Quantity> {
    let text = text.trim();
    let (number, unit) = match text.find(' ') {
        Some(space) => (&text[..space], text[space + 1..].trim()),
        None => (text, ""),
    };
    if !is_decimal_text(number) {
        return None;
    }
    let value = Decimal::from_str_exact(number).ok()?;
    let unit = if unit.is_empty() {
        "1".to_owned()
    } else if let Some(quoted) = unit.strip_prefix('\'').and_then(|u| u.strip_suffix('\'')) {
        quoted.to_owned()
    } else if is_calendar_word(unit) {
        unit.to_owned()
    } else {
        return None;
    };
    Some(Quantity::new(value, unit))
}

/// Whether text is a FHIRPath decimal: an optional sign, digits, and an optional fraction.
pub(crate) fn is_decimal_text(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}
