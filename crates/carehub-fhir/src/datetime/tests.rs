use super::*;
use proptest::prelude::*;

fn range(text: &str) -> (i64, i64) {
    PartialDateTime::parse(text, DateKind::Search)
        .unwrap()
        .range()
}

#[test]
fn precision_decides_the_range() {
    let (lo, hi) = range("2024");
    assert_eq!(format_instant(lo), "2024-01-01T00:00:00.000Z");
    assert_eq!(format_instant(hi), "2024-12-31T23:59:59.999Z");
    let (lo, hi) = range("2024-02");
    assert_eq!(format_instant(lo), "2024-02-01T00:00:00.000Z");
    assert_eq!(format_instant(hi), "2024-02-29T23:59:59.999Z");
    let (lo, hi) = range("2023-12-31");
    assert_eq!(hi - lo + 1, 86_400_000_000);
    let (lo, hi) = range("2024-03-01T10:00:00.5Z");
    assert_eq!(hi - lo + 1, 100_000);
}

#[test]
fn offsets_shift_to_utc() {
    let (lo, _) = range("2024-06-01T10:00:00+01:00");
    assert_eq!(format_instant(lo), "2024-06-01T09:00:00.000Z");
}

#[test]
fn invalid_dates_are_rejected_with_a_reason() {
    for (text, kind) in [
        ("2024-13", DateKind::Date),
        ("2023-02-29", DateKind::Date),
        ("24-01-01", DateKind::Date),
        ("2024-01-01T10:00:00", DateKind::DateTime),
        ("2024-01-01", DateKind::Instant),
        ("2024-01-01T10:00Z", DateKind::DateTime),
        ("2024-01-01T25:00:00Z", DateKind::DateTime),
        ("2024-01-01T10:00:00Z", DateKind::Date),
        ("0000", DateKind::Date),
        ("2024-01-01T10:00:00+15:00", DateKind::DateTime),
        ("", DateKind::Date),
    ] {
        assert!(
            PartialDateTime::parse(text, kind).is_err(),
            "{text} accepted as {kind:?}"
        );
    }
    assert!(PartialDateTime::parse("2024-02-29", DateKind::Date).is_ok());
    assert!(PartialDateTime::parse("2024-01-01T10:00:00.123456789Z", DateKind::Instant).is_ok());
}

#[test]
fn times_and_http_dates() {
    assert!(validate_time("23:59:59").is_ok());
    assert!(validate_time("23:59").is_err());
    assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        format_http_date(range("2026-11-22").0),
        "Sun, 22 Nov 2026 00:00:00 GMT"
    );
}

proptest! {
    #[test]
    fn civil_days_round_trip(days in -1_000_000i64..3_000_000) {
        let (y, m, d) = civil_from_days(days);
        prop_assert_eq!(days_from_civil(y as i32, m, d), days);
    }

    #[test]
    fn ranges_nest_by_precision(y in 1900i32..2100, m in 1u32..=12, d in 1u32..=28, h in 0u32..24) {
        let year = range(&format!("{y:04}"));
        let month = range(&format!("{y:04}-{m:02}"));
        let day = range(&format!("{y:04}-{m:02}-{d:02}"));
        let hour = range(&format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00Z"));
        prop_assert!(year.0 <= month.0 && month.1 <= year.1);
        prop_assert!(month.0 <= day.0 && day.1 <= month.1);
        prop_assert!(day.0 <= hour.0 && hour.1 <= day.1);
    }

    #[test]
    fn parsing_never_panics(text in "\\PC{0,40}") {
        let _ = PartialDateTime::parse(&text, DateKind::Search);
        let _ = validate_time(&text);
    }
}
