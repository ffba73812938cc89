//! PDS patient search (`GET /Patient?...`): the parameters PDS takes, their minimum
//! combinations, and how a record matches and scores. Non-fuzzy search matches names
//! exactly (ignoring case) unless a `*` wildcard ends them; fuzzy search (`_fuzzy-match`)
//! matches family names that sound alike (Soundex) and names given in either order.

use super::error::{PdsCode, PdsError};
use super::record::PdsPatient;

/// A date bound of `birthdate` or `death-date`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateBound {
    On(String),
    From(String),
    To(String),
}

impl DateBound {
    fn holds(&self, date: &str) -> bool {
        // ISO dates compare as text; a partial (legacy) date compares by its known part.
        let date = &date[..date.len().min(10)];
        match self {
            DateBound::On(d) => date == d,
            DateBound::From(d) => date >= d.as_str(),
            DateBound::To(d) => date <= d.as_str(),
        }
    }

    /// The earliest and latest dates the bounds allow (for the store's index).
    pub fn range(bounds: &[DateBound]) -> (Option<String>, Option<String>) {
        let mut from: Option<String> = None;
        let mut to: Option<String> = None;
        for bound in bounds {
            match bound {
                DateBound::On(d) => {
                    from = Some(from.map_or(d.clone(), |f| f.max(d.clone())));
                    to = Some(to.map_or(d.clone(), |t| t.min(d.clone())));
                }
                DateBound::From(d) => from = Some(from.map_or(d.clone(), |f| f.max(d.clone()))),
                DateBound::To(d) => to = Some(to.map_or(d.clone(), |t| t.min(d.clone()))),
            }
        }
        (from, to)
    }
}

/// A parsed search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatientSearch {
    pub family: Option<String>,
    pub given: Vec<String>,
    pub gender: Option<String>,
    pub birthdate: Vec<DateBound>,
    pub death_date: Vec<DateBound>,
    pub postcode: Option<String>,
    pub general_practitioner: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub fuzzy: bool,
    pub exact: bool,
    pub history: bool,
    pub max_results: usize,
}

const PARAMETERS: [&str; 14] = [
    "family",
    "given",
    "gender",
    "birthdate",
    "death-date",
    "address-postalcode",
    "address-postcode",
    "general-practitioner",
    "email",
    "phone",
    "_fuzzy-match",
    "_exact-match",
    "_history",
    "_max-results",
];

fn invalid_value(value: &str, field: &str) -> PdsError {
    PdsError::new(
        PdsCode::InvalidValue,
        format!("Invalid value - '{value}' in field '{field}'"),
    )
}

fn minimum() -> PdsError {
    PdsError::new(
        PdsCode::InvalidSearchData,
        "Invalid search data provided - 'No searches were performed as the search criteria did not meet the minimum requirements'",
    )
}

fn date_bound(value: &str, field: &str) -> Result<DateBound, PdsError> {
    let (prefix, date) = match value.get(..2) {
        Some(p @ ("eq" | "ge" | "le")) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let well_formed = date.len() == 10
        && date.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !well_formed {
        return Err(invalid_value(value, field));
    }
    Ok(match prefix {
        "ge" => DateBound::From(date.to_owned()),
        "le" => DateBound::To(date.to_owned()),
        _ => DateBound::On(date.to_owned()),
    })
}

fn boolean(value: &str, field: &str) -> Result<bool, PdsError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid_value(value, field)),
    }
}

/// Reads the query of a search. `single_result` is application-restricted access, where PDS
/// gives one unique match at most.
pub fn parse(params: &[(String, String)], single_result: bool) -> Result<PatientSearch, PdsError> {
    if params.is_empty() {
        return Err(PdsError::new(
            PdsCode::UnsupportedService,
            "No search parameters were provided",
        ));
    }
    let unexpected: Vec<&str> = params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !PARAMETERS.contains(k) && *k != "_format")
        .collect();
    if !unexpected.is_empty() {
        let list = unexpected
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let verb = if unexpected.len() == 1 { "was" } else { "were" };
        return Err(PdsError::new(
            PdsCode::AdditionalProperties,
            format!(
                "Invalid request with error - Additional properties are not allowed ({list} {verb} unexpected)"
            ),
        ));
    }
    let mut search = PatientSearch {
        max_results: if single_result { 1 } else { 50 },
        ..PatientSearch::default()
    };
    let mut postcodes = 0;
    for (key, value) in params {
        match key.as_str() {
            "family" => search.family = Some(value.trim().to_owned()),
            "given" => search.given.push(value.trim().to_owned()),
            "gender" => match value.as_str() {
                "male" | "female" | "other" | "unknown" => search.gender = Some(value.clone()),
                _ => return Err(invalid_value(value, "gender")),
            },
            "birthdate" => search.birthdate.push(date_bound(value, "birthdate")?),
            "death-date" => search.death_date.push(date_bound(value, "death-date")?),
            "address-postalcode" | "address-postcode" => {
                postcodes += 1;
                search.postcode = Some(value.replace(' ', "").to_ascii_uppercase());
            }
            "general-practitioner" => search.general_practitioner = Some(value.clone()),
            "email" => search.email = Some(value.to_ascii_lowercase()),
            "phone" => search.phone = Some(value.clone()),
            "_fuzzy-match" => search.fuzzy = boolean(value, key)?,
            "_exact-match" => search.exact = boolean(value, key)?,
            "_history" => search.history = boolean(value, key)?,
            "_max-results" => {
                let max: usize = value.parse().map_err(|_| invalid_value(value, key))?;
                if !(1..=50).contains(&max) {
                    return Err(invalid_value(value, key));
                }
                if single_result && max > 1 {
                    return Err(PdsError {
                        code: PdsCode::InvalidValue,
                        diagnostics: Some(
                            "Cannot retrieve more than one result with application-restricted access token".into(),
                        ),
                        forbidden: true,
                    });
                }
                search.max_results = max;
            }
            _ => {}
        }
    }
    if postcodes > 1 {
        return Err(PdsError::new(
            PdsCode::InvalidSearchData,
            "Send one of address-postalcode and address-postcode (deprecated), not both",
        ));
    }
    if search.birthdate.is_empty() {
        return Err(PdsError::new(
            PdsCode::MissingValue,
            "Missing value - 'birth_date/birth_date_range_start/birth_date_range_end'",
        ));
    }
    for name in search.family.iter().chain(search.given.first()) {
        if let Some(star) = name.find('*')
            && (search.fuzzy || star < 2)
        {
            return Err(PdsError::new(
                PdsCode::InvalidSearchData,
                format!(
                    "'{name}': a wildcard may not be used in fuzzy search or in the first two characters"
                ),
            ));
        }
    }
    let has = |o: &Option<String>| o.is_some();
    let minimum_met = if search.fuzzy {
        (has(&search.family) && !search.given.is_empty())
            || (has(&search.family) && has(&search.gender) && has(&search.postcode))
            || (!search.given.is_empty() && has(&search.gender) && has(&search.postcode))
    } else {
        has(&search.family)
    };
    if !minimum_met {
        return Err(minimum());
    }
    Ok(search)
}

/// Case-insensitive equality, or a prefix when the pattern ends with `*`; `Some(true)` when
/// the match needed the wildcard.
fn name_matches(pattern: &str, name: &str) -> Option<bool> {
    let pattern = pattern.to_lowercase();
    let name = name.to_lowercase();
    match pattern.strip_suffix('*') {
        Some(prefix) if name.starts_with(prefix) => Some(name != prefix),
        Some(_) => None,
        None if name == pattern => Some(false),
        None => None,
    }
}

/// The American Soundex code of a name (`Smith` and `Smyth` are both `S530`).
pub fn soundex(name: &str) -> String {
    let code = |c: char| match c {
        'B' | 'F' | 'P' | 'V' => '1',
        'C' | 'G' | 'J' | 'K' | 'Q' | 'S' | 'X' | 'Z' => '2',
        'D' | 'T' => '3',
        'L' => '4',
        'M' | 'N' => '5',
        'R' => '6',
        _ => '0',
    };
    let letters: Vec<char> = name
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let Some(&first) = letters.first() else {
        return String::new();
    };
    let mut out = String::from(first);
    let mut last = code(first);
    for &c in &letters[1..] {
        let digit = code(c);
        if digit != '0' && digit != last {
            out.push(digit);
            if out.len() == 4 {
                break;
            }
        }
        // H and W do not separate letters of the same code; vowels do.
        if c != 'H' && c != 'W' {
            last = digit;
        }
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}

/// How well `patient` matches `search`, from 0 to 1; `None` when it does not match.
pub fn score(search: &PatientSearch, patient: &PdsPatient) -> Option<f64> {
    if patient.is_superseded() {
        return None;
    }
    if !search
        .birthdate
        .iter()
        .all(|b| b.holds(&patient.birth_date))
    {
        return None;
    }
    // Searching by where a patient lives or who their GP is never finds a restricted patient.
    if patient.restricted && (search.postcode.is_some() || search.general_practitioner.is_some()) {
        return None;
    }
    let mut score: f64 = 1.0;
    if let Some(gender) = &search.gender
        && gender != &patient.gender
    {
        if !search.fuzzy {
            return None;
        }
        score -= 0.1;
    }
    if !search.death_date.is_empty() {
        let holds = patient
            .deceased
            .as_deref()
            .is_some_and(|d| search.death_date.iter().all(|b| b.holds(d)));
        if !holds {
            if !search.fuzzy {
                return None;
            }
            score -= 0.1;
        }
    }
    if search.fuzzy {
        if let Some(family) = &search.family {
            if family.eq_ignore_ascii_case(&patient.family) {
            } else if soundex(family) == soundex(&patient.family) {
                score -= 0.1;
            } else {
                return None;
            }
        }
        for (i, given) in search.given.iter().enumerate() {
            let exact = patient
                .given
                .get(i)
                .is_some_and(|g| g.eq_ignore_ascii_case(given));
            if exact {
                continue;
            }
            // Given names in another order, or a given name sent as the family name.
            let anywhere = patient.given.iter().any(|g| g.eq_ignore_ascii_case(given))
                || patient.family.eq_ignore_ascii_case(given);
            if !anywhere {
                return None;
            }
            score -= 0.1;
        }
    } else {
        if let Some(family) = &search.family
            && name_matches(family, &patient.family)?
        {
            score -= 0.15;
        }
        for (i, given) in search.given.iter().enumerate() {
            let held = if i == 0 {
                // The first given name may be compound: "John Paul".
                let words = given.split_whitespace().count().max(1);
                patient
                    .given
                    .iter()
                    .take(words)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                patient
                    .given
                    .get(i + given.split_whitespace().count() - 1)
                    .cloned()
                    .unwrap_or_default()
            };
            if name_matches(given, &held)? {
                score -= 0.15;
            }
        }
    }
    if let Some(postcode) = &search.postcode {
        let held = patient
            .postcode
            .as_deref()
            .unwrap_or("")
            .replace(' ', "")
            .to_ascii_uppercase();
        if search.fuzzy {
            if held != *postcode {
                score -= 0.1;
            }
        } else if name_matches(postcode, &held)? {
            score -= 0.15;
        }
    }
    if let Some(practice) = &search.general_practitioner
        && patient.gp_practice.as_deref() != Some(practice)
    {
        if !search.fuzzy {
            return None;
        }
        score -= 0.1;
    }
    if let Some(phone) = &search.phone
        && patient.telephone.as_deref() != Some(phone)
    {
        return None;
    }
    if search.email.is_some() {
        // carehub's PDS holds no e-mail addresses: an e-mail never matches.
        return None;
    }
    let score = (score.max(0.0) * 10_000.0).round() / 10_000.0;
    if search.exact && score < 1.0 {
        return None;
    }
    Some(score)
}

/// The matches of `search` among `candidates`, best first; more than `max_results` is
/// `TOO_MANY_MATCHES`.
pub fn select(
    search: &PatientSearch,
    candidates: Vec<PdsPatient>,
) -> Result<Vec<(PdsPatient, f64)>, PdsError> {
    let mut matches: Vec<(PdsPatient, f64)> = candidates
        .into_iter()
        .filter_map(|p| score(search, &p).map(|s| (p, s)))
        .collect();
    if matches.len() > search.max_results {
        return Err(PdsError::bare(PdsCode::TooManyMatches));
    }
    matches.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| a.0.nhs_number.cmp(&b.0.nhs_number))
    });
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn smith() -> PdsPatient {
        PdsPatient {
            nhs_number: "9000000009".into(),
            prefix: Some("Mrs".into()),
            given: vec!["Jane".into(), "Anne".into()],
            family: "Smith".into(),
            gender: "female".into(),
            birth_date: "2010-10-22".into(),
            deceased: None,
            address_lines: vec!["1 Trevelyan Square".into(), "Leeds".into()],
            postcode: Some("LS1 6AE".into()),
            telephone: Some("01632960587".into()),
            gp_practice: Some("Y12345".into()),
            restricted: false,
            verified: true,
            superseded_by: None,
        }
    }

    #[test]
    fn errors_come_in_the_pds_order() {
        let code = |p: &[(&str, &str)]| parse(&params(p), false).expect_err("refused").code;
        assert_eq!(code(&[]), PdsCode::UnsupportedService);
        assert_eq!(code(&[("surname", "Smith")]), PdsCode::AdditionalProperties);
        assert_eq!(
            code(&[("family", "Smith"), ("birthdate", "22-10-2010")]),
            PdsCode::InvalidValue
        );
        assert_eq!(code(&[("family", "Smith")]), PdsCode::MissingValue);
        assert_eq!(
            code(&[("given", "Jane"), ("birthdate", "2010-10-22")]),
            PdsCode::InvalidSearchData
        );
        assert_eq!(
            code(&[("family", "S*"), ("birthdate", "2010-10-22")]),
            PdsCode::InvalidSearchData
        );
        assert_eq!(
            code(&[
                ("family", "Smith"),
                ("birthdate", "2010-10-22"),
                ("gender", "mal")
            ]),
            PdsCode::InvalidValue
        );
        let forbidden = parse(
            &params(&[
                ("family", "Smith"),
                ("birthdate", "2010-10-22"),
                ("_max-results", "2"),
            ]),
            true,
        )
        .expect_err("app-restricted");
        assert!(forbidden.forbidden);
    }

    #[test]
    fn exact_and_wildcard_matches_score() {
        let search = parse(
            &params(&[
                ("family", "smith"),
                ("gender", "female"),
                ("birthdate", "eq2010-10-22"),
            ]),
            false,
        )
        .expect("ok");
        assert_eq!(score(&search, &smith()), Some(1.0));
        let wild = parse(
            &params(&[
                ("family", "Sm*"),
                ("birthdate", "ge2010-01-01"),
                ("birthdate", "le2010-12-31"),
            ]),
            false,
        )
        .expect("ok");
        let s = score(&wild, &smith()).expect("matches");
        assert!(s < 1.0 && s > 0.5);
        let other = parse(
            &params(&[("family", "Smythe"), ("birthdate", "2010-10-22")]),
            false,
        )
        .expect("ok");
        assert_eq!(score(&other, &smith()), None);
    }

    #[test]
    fn fuzzy_search_hears_names_alike() {
        assert_eq!(soundex("Smith"), soundex("Smyth"));
        assert_eq!(soundex("Robert"), "R163");
        assert_eq!(soundex("Ashcraft"), "A261");
        let search = parse(
            &params(&[
                ("family", "Smyth"),
                ("given", "Jane"),
                ("birthdate", "2010-10-22"),
                ("_fuzzy-match", "true"),
            ]),
            false,
        )
        .expect("ok");
        assert!(score(&search, &smith()).is_some());
    }

    #[test]
    fn restricted_patients_are_not_found_by_where_they_live() {
        let restricted = PdsPatient {
            restricted: true,
            ..smith()
        };
        let search = parse(
            &params(&[
                ("family", "Smith"),
                ("birthdate", "2010-10-22"),
                ("address-postalcode", "LS1 6AE"),
            ]),
            false,
        )
        .expect("ok");
        assert!(score(&search, &smith()).is_some());
        assert_eq!(score(&search, &restricted), None);
    }

    #[test]
    fn more_matches_than_allowed_is_too_many() {
        let search = parse(
            &params(&[("family", "Smith"), ("birthdate", "2010-10-22")]),
            true,
        )
        .expect("ok");
        let twin = PdsPatient {
            nhs_number: "9000000017".into(),
            ..smith()
        };
        assert_eq!(
            select(&search, vec![smith(), twin]).expect_err("two").code,
            PdsCode::TooManyMatches
        );
    }
}
