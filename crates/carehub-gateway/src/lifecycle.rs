//! Lifecycle headers: a deprecated product answers with `Deprecation` (RFC 9745), `Sunset`
//! (RFC 8594) and a `Link` to its migration guide; a retired one answers 410.

use carehub_fhir::datetime::{days_from_civil, format_http_date};

/// Seconds since the epoch of midnight UTC at the start of a `YYYY-MM-DD` date.
pub(crate) fn date_to_unix(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if date.len() != 10 || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    if day > carehub_fhir::datetime::days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400)
}

/// The headers a deprecated product (or a product's deprecated endpoint) adds to every
/// response: `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a `Link` to the migration guide.
pub fn deprecation_headers(
    deprecated: &str,
    sunset: &str,
    guide: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if let Some(at) = date_to_unix(deprecated) {
        headers.push(("deprecation", format!("@{at}")));
    }
    if let Some(at) = date_to_unix(sunset) {
        headers.push(("sunset", format_http_date(at * 1_000_000)));
    }
    if let Some(guide) = guide {
        headers.push((
            "link",
            format!("<{guide}>; rel=\"deprecation\"; type=\"text/html\""),
        ));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_headers() {
        assert_eq!(date_to_unix("1970-01-02"), Some(86_400));
        assert_eq!(date_to_unix("2026-02-30"), None);
        assert_eq!(date_to_unix("2026-1-1"), None);
        let headers = deprecation_headers("2026-01-01", "2027-01-01", Some("https://x/guide"));
        assert_eq!(headers[0], ("deprecation", "@1767225600".to_owned()));
        assert_eq!(
            headers[1],
            ("sunset", "Fri, 01 Jan 2027 00:00:00 GMT".to_owned())
        );
        assert!(headers[2].1.contains("rel=\"deprecation\""));
    }
}
