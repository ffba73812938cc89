//! `$gpc.getstructuredrecord`'s request (Access Record Structured 1.6): the `Parameters` it
//! takes, read strictly but with the version-compatibility rule (an unknown parameter or part
//! is a warning in the answer, not a failure), the date rules, and the combinations the spec
//! forbids. Codes follow the spec's error table, and the provider test suite where the spec is
//! silent (a repeated part is `INVALID_RESOURCE`, an unreadable date `INVALID_PARAMETER`).

use carehub_fhir::datetime::{DateKind, PartialDateTime, Precision};
use serde_json::Value;

use super::SYSTEM_NHS_NUMBER;
use super::error::{GpcError, SpineCode};

/// What the consumer asked for about allergies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllergyOptions {
    pub include_resolved: bool,
}

/// What the consumer asked for about medication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MedicationOptions {
    pub include_issues: bool,
    /// Days since 1970: only medication active on or after it.
    pub from: Option<i64>,
}

/// What the consumer asked for about immunisations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImmunisationOptions {
    pub include_not_given: bool,
    pub include_status: bool,
}

/// A search period, in days since 1970; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl DayRange {
    /// Whether a date falls in it (an item without a date always does).
    pub fn holds(&self, day: Option<i64>) -> bool {
        day.is_none_or(|d| self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t))
    }
}

/// What the consumer asked for about consultations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsultationOptions {
    pub range: DayRange,
    pub most_recent: Option<usize>,
}

/// One `includeProblems`: a status (active or not) and a significance (major or not), either
/// open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProblemFilter {
    pub active: Option<bool>,
    pub major: Option<bool>,
}

/// A warning for the answer's OperationOutcome: an unrecognised or disabled parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub text: String,
    pub diagnostics: String,
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructuredRequest {
    pub nhs_number: String,
    pub allergies: Option<AllergyOptions>,
    pub medication: Option<MedicationOptions>,
    pub immunisations: Option<ImmunisationOptions>,
    pub uncategorised: Option<DayRange>,
    pub referrals: Option<DayRange>,
    /// Consultations, by when they happened or the most recent so many.
    pub consultations: Option<ConsultationOptions>,
    /// Investigations, by when their reports were issued.
    pub investigations: Option<DayRange>,
    /// Diary entries, up to a date (days since 1970) when one was given.
    pub diary: Option<Option<i64>>,
    /// Problems: one filter per `includeProblems` (any may match).
    pub problems: Option<Vec<ProblemFilter>>,
    pub warnings: Vec<Warning>,
}

/// The clinical areas and the parts each takes.
const AREAS: [(&str, &[&str]); 9] = [
    ("includeAllergies", &["includeResolvedAllergies"]),
    (
        "includeMedication",
        &["includePrescriptionIssues", "medicationSearchFromDate"],
    ),
    (
        "includeConsultations",
        &["consultationSearchPeriod", "includeNumberOfMostRecent"],
    ),
    ("includeProblems", &["filterStatus", "filterSignificance"]),
    (
        "includeImmunisations",
        &["includeNotGiven", "includeStatus"],
    ),
    (
        "includeUncategorisedData",
        &["uncategorisedDataSearchPeriod"],
    ),
    ("includeInvestigations", &["investigationSearchPeriod"]),
    ("includeReferrals", &["referralSearchPeriod"]),
    ("includeDiaryEntries", &["diaryEntriesSearchDate"]),
];

/// Parts that may not come with consultations (and, but for the problem filters, with
/// problems).
const NOT_WITH_CONSULTATIONS: [(&str, &str); 8] = [
    ("includeMedication", "medicationSearchFromDate"),
    ("includeUncategorisedData", "uncategorisedDataSearchPeriod"),
    ("includeProblems", "filterSignificance"),
    ("includeProblems", "filterStatus"),
    ("includeReferrals", "referralSearchPeriod"),
    ("includeDiaryEntries", "diaryEntriesSearchDate"),
    ("includeImmunisations", "includeNotGiven"),
    ("includeImmunisations", "includeStatus"),
];

fn invalid(why: impl Into<String>) -> GpcError {
    GpcError::invalid_parameter(why)
}

/// One `Parameters.parameter` entry or part, as sent.
struct Entry<'a> {
    name: &'a str,
    value: &'a Value,
}

fn entries<'a>(value: &'a Value, key: &str) -> Result<Vec<Entry<'a>>, GpcError> {
    let Some(list) = value.get(key) else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| GpcError::invalid_resource(format!("'{key}' must be an array")))?;
    list.iter()
        .map(|item| {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| GpcError::invalid_resource(format!("Every '{key}' needs a name")))?;
            Ok(Entry { name, value: item })
        })
        .collect()
}

fn boolean(part: &Entry<'_>, area: &str) -> Result<bool, GpcError> {
    part.value
        .get("valueBoolean")
        .and_then(Value::as_bool)
        .ok_or_else(|| invalid(format!("{area}.{} must have a valueBoolean", part.name)))
}

fn code<'a>(part: &'a Entry<'_>, area: &str, allowed: &[&str]) -> Result<&'a str, GpcError> {
    part.value
        .get("valueCode")
        .and_then(Value::as_str)
        .filter(|c| allowed.contains(c))
        .ok_or_else(|| {
            invalid(format!(
                "{area}.{} must be one of {}",
                part.name,
                allowed.join(", ")
            ))
        })
}

/// A whole date (`YYYY-MM-DD`, nothing more or less), as days since 1970.
fn whole_date(text: Option<&Value>, what: &str) -> Result<i64, GpcError> {
    let text = text.and_then(Value::as_str).unwrap_or_default();
    let parsed = PartialDateTime::parse(text, DateKind::Date)
        .ok()
        .filter(|p| p.precision == Precision::Day && text.len() == 10)
        .ok_or_else(|| invalid(format!("{what} '{text}' must be a whole date, YYYY-MM-DD")))?;
    Ok(carehub_fhir::datetime::days_from_civil(
        parsed.year,
        parsed.month,
        parsed.day,
    ))
}

/// A `valuePeriod` part: whole dates, neither after today, start not after end.
fn period(part: &Entry<'_>, area: &str, today: i64) -> Result<DayRange, GpcError> {
    let what = format!("{area}.{}", part.name);
    let period = part
        .value
        .get("valuePeriod")
        .ok_or_else(|| invalid(format!("{what} must have a valuePeriod")))?;
    let mut range = DayRange::default();
    if period.get("start").is_some() {
        range.from = Some(whole_date(period.get("start"), &format!("{what}.start"))?);
    }
    if period.get("end").is_some() {
        range.to = Some(whole_date(period.get("end"), &format!("{what}.end"))?);
    }
    if range.from.is_none() && range.to.is_none() {
        return Err(invalid(format!("{what} needs a start or an end")));
    }
    if range.from.or(range.to).is_some_and(|d| d > today) || range.to.is_some_and(|d| d > today) {
        return Err(invalid(format!("{what} may not be in the future")));
    }
    if let (Some(from), Some(to)) = (range.from, range.to)
        && from > to
    {
        return Err(invalid(format!("{what} starts after it ends")));
    }
    Ok(range)
}

/// Reads the operation's `Parameters`; `today` is the UK calendar day (days since 1970).
pub fn parse(parameters: &Value, today: i64) -> Result<StructuredRequest, GpcError> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(GpcError::invalid_resource(
            "The body must be a Parameters resource",
        ));
    }
    let mut request = StructuredRequest {
        nhs_number: String::new(),
        allergies: None,
        medication: None,
        immunisations: None,
        uncategorised: None,
        referrals: None,
        investigations: None,
        consultations: None,
        diary: None,
        problems: None,
        warnings: Vec::new(),
    };
    let mut nhs_number = None;
    let mut seen_areas: Vec<&str> = Vec::new();
    let mut sent_parts: Vec<(&str, &str)> = Vec::new();
    let mut consultation_choices = (false, false);
    for parameter in entries(parameters, "parameter")? {
        if parameter.name == "patientNHSNumber" {
            if nhs_number.is_some() {
                return Err(invalid("patientNHSNumber may be sent once"));
            }
            nhs_number = Some(
                parameter
                    .value
                    .get("valueIdentifier")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
            continue;
        }
        let Some(&(area, known_parts)) = AREAS.iter().find(|(name, _)| *name == parameter.name)
        else {
            request.warnings.push(Warning {
                text: format!("{} is an unrecognised parameter", parameter.name),
                diagnostics: parameter.name.to_owned(),
            });
            continue;
        };
        if seen_areas.contains(&area) && area != "includeProblems" {
            return Err(invalid(format!("{area} may be sent once")));
        }
        seen_areas.push(area);
        let parts = entries(parameter.value, "part")?;
        let mut seen_parts: Vec<&str> = Vec::new();
        for part in &parts {
            if !known_parts.contains(&part.name) {
                request.warnings.push(Warning {
                    text: format!("{area}.{} is an unrecognised parameter", part.name),
                    diagnostics: format!("{area}.{}", part.name),
                });
                continue;
            }
            if seen_parts.contains(&part.name) {
                return Err(GpcError::invalid_resource(format!(
                    "{area}.{} may be sent once",
                    part.name
                )));
            }
            seen_parts.push(part.name);
            sent_parts.push((area, part.name));
        }
        let part = |name: &str| parts.iter().find(|p| p.name == name);
        match area {
            "includeAllergies" => {
                let resolved = part("includeResolvedAllergies").ok_or_else(|| {
                    invalid("includeAllergies needs its part includeResolvedAllergies")
                })?;
                request.allergies = Some(AllergyOptions {
                    include_resolved: boolean(resolved, area)?,
                });
            }
            "includeMedication" => {
                let include_issues = match part("includePrescriptionIssues") {
                    Some(p) => boolean(p, area)?,
                    None => true,
                };
                let from = match part("medicationSearchFromDate") {
                    Some(p) => {
                        let day = whole_date(
                            p.value.get("valueDate"),
                            "includeMedication.medicationSearchFromDate",
                        )?;
                        if day > today {
                            return Err(invalid(
                                "includeMedication.medicationSearchFromDate may not be in the future",
                            ));
                        }
                        Some(day)
                    }
                    None => None,
                };
                request.medication = Some(MedicationOptions {
                    include_issues,
                    from,
                });
            }
            "includeImmunisations" => {
                request.immunisations = Some(ImmunisationOptions {
                    include_not_given: part("includeNotGiven")
                        .map(|p| boolean(p, area))
                        .transpose()?
                        .unwrap_or(false),
                    include_status: part("includeStatus")
                        .map(|p| boolean(p, area))
                        .transpose()?
                        .unwrap_or(true),
                });
            }
            "includeUncategorisedData" => {
                request.uncategorised = Some(match part("uncategorisedDataSearchPeriod") {
                    Some(p) => period(p, area, today)?,
                    None => DayRange::default(),
                });
            }
            "includeConsultations" => {
                let mut options = ConsultationOptions::default();
                if let Some(p) = part("consultationSearchPeriod") {
                    options.range = period(p, area, today)?;
                    consultation_choices.0 = true;
                }
                if let Some(p) = part("includeNumberOfMostRecent") {
                    if p.value
                        .get("valuePositiveInt")
                        .and_then(Value::as_u64)
                        .is_none_or(|n| n == 0)
                    {
                        return Err(invalid(
                            "includeConsultations.includeNumberOfMostRecent must be a positive whole number",
                        ));
                    }
                    consultation_choices.1 = true;
                    options.most_recent = p
                        .value
                        .get("valuePositiveInt")
                        .and_then(Value::as_u64)
                        .map(|n| n as usize);
                }
                request.consultations = Some(options);
            }
            "includeProblems" => {
                let mut filter = ProblemFilter::default();
                if let Some(p) = part("filterStatus") {
                    filter.active = Some(code(p, area, &["active", "inactive"])? == "active");
                }
                if let Some(p) = part("filterSignificance") {
                    filter.major = Some(code(p, area, &["major", "minor"])? == "major");
                }
                request.problems.get_or_insert_with(Vec::new).push(filter);
            }
            "includeInvestigations" => {
                request.investigations = Some(match part("investigationSearchPeriod") {
                    Some(p) => period(p, area, today)?,
                    None => DayRange::default(),
                });
            }
            "includeReferrals" => {
                request.referrals = Some(match part("referralSearchPeriod") {
                    Some(p) => period(p, area, today)?,
                    None => DayRange::default(),
                });
            }
            "includeDiaryEntries" => {
                let mut until = None;
                if let Some(p) = part("diaryEntriesSearchDate") {
                    let day = whole_date(
                        p.value.get("valueDate"),
                        "includeDiaryEntries.diaryEntriesSearchDate",
                    )?;
                    if day < today {
                        return Err(invalid(
                            "includeDiaryEntries.diaryEntriesSearchDate may not be in the past",
                        ));
                    }
                    until = Some(day);
                }
                request.diary = Some(until);
            }
            _ => {}
        }
    }
    if consultation_choices == (true, true) {
        return Err(GpcError::invalid_resource(
            "Send consultationSearchPeriod or includeNumberOfMostRecent, not both",
        ));
    }
    for (with, spared) in [
        ("includeConsultations", ""),
        ("includeProblems", "includeProblems"),
    ] {
        if !seen_areas.contains(&with) {
            continue;
        }
        if let Some((area, part)) = sent_parts
            .iter()
            .find(|(area, part)| *area != spared && NOT_WITH_CONSULTATIONS.contains(&(area, part)))
        {
            return Err(invalid(format!(
                "{area}.{part} may not be sent together with {with}"
            )));
        }
    }
    request.nhs_number = patient_number(nhs_number.as_ref())?;
    Ok(request)
}

/// The NHS number of `patientNHSNumber`'s identifier.
fn patient_number(identifier: Option<&Value>) -> Result<String, GpcError> {
    let Some(identifier) = identifier else {
        return Err(invalid("patientNHSNumber is required"));
    };
    nhs_number_of(identifier, SYSTEM_NHS_NUMBER)
}

/// The NHS number of a `patientNHSNumber` identifier of `system` (each line has its own):
/// another system is `INVALID_IDENTIFIER_SYSTEM`, a number that fails its check digit
/// `INVALID_NHS_NUMBER`.
pub(super) fn nhs_number_of(identifier: &Value, system: &str) -> Result<String, GpcError> {
    if identifier.get("system").and_then(Value::as_str) != Some(system) {
        return Err(GpcError::new(
            SpineCode::InvalidIdentifierSystem,
            format!("patientNHSNumber must have the system {system}"),
        ));
    }
    let number = identifier
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !carehub_spine::is_valid_nhs_number(number) {
        return Err(GpcError::new(
            SpineCode::InvalidNhsNumber,
            format!("'{number}' is not a valid NHS number"),
        ));
    }
    Ok(number.to_owned())
}

/// `$gpc.migratestructuredrecord`'s request: the patient, and whether sensitive information
/// is to come too (`includeFullRecord.includeSensitiveInformation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateRequest {
    pub nhs_number: String,
    pub include_sensitive: bool,
    pub warnings: Vec<Warning>,
}

/// Reads the migrate operation's `Parameters`.
pub fn parse_migrate(parameters: &Value) -> Result<MigrateRequest, GpcError> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(GpcError::invalid_resource(
            "The body must be a Parameters resource",
        ));
    }
    let mut nhs_number = None;
    let mut include_sensitive = None;
    let mut warnings = Vec::new();
    for parameter in entries(parameters, "parameter")? {
        match parameter.name {
            "patientNHSNumber" if nhs_number.is_none() => {
                nhs_number = Some(
                    parameter
                        .value
                        .get("valueIdentifier")
                        .cloned()
                        .unwrap_or(Value::Null),
                );
            }
            "includeFullRecord" if include_sensitive.is_none() => {
                let parts = entries(parameter.value, "part")?;
                let part = parts
                    .iter()
                    .find(|p| p.name == "includeSensitiveInformation")
                    .ok_or_else(|| {
                        invalid("includeFullRecord needs its part includeSensitiveInformation")
                    })?;
                include_sensitive = Some(boolean(part, "includeFullRecord")?);
                for other in parts
                    .iter()
                    .filter(|p| p.name != "includeSensitiveInformation")
                {
                    warnings.push(Warning {
                        text: format!(
                            "includeFullRecord.{} is an unrecognised parameter",
                            other.name
                        ),
                        diagnostics: format!("includeFullRecord.{}", other.name),
                    });
                }
            }
            "patientNHSNumber" | "includeFullRecord" => {
                return Err(invalid(format!("{} may be sent once", parameter.name)));
            }
            other => warnings.push(Warning {
                text: format!("{other} is an unrecognised parameter"),
                diagnostics: other.to_owned(),
            }),
        }
    }
    let nhs_number = patient_number(nhs_number.as_ref())?;
    let include_sensitive =
        include_sensitive.ok_or_else(|| invalid("includeFullRecord is required"))?;
    Ok(MigrateRequest {
        nhs_number,
        include_sensitive,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TODAY: i64 = 20_000;

    fn day_text(day: i64) -> String {
        let (y, m, d) = carehub_fhir::datetime::civil_from_days(day);
        format!("{y:04}-{m:02}-{d:02}")
    }

    fn with(extra: Value) -> Value {
        let mut parameters = vec![json!({"name": "patientNHSNumber",
            "valueIdentifier": {"system": SYSTEM_NHS_NUMBER, "value": "9690937286"}})];
        parameters.extend(extra.as_array().cloned().unwrap_or_default());
        json!({"resourceType": "Parameters", "parameter": parameters})
    }

    fn code_of(extra: Value) -> SpineCode {
        parse(&with(extra), TODAY).expect_err("refused").code
    }

    #[test]
    fn areas_and_defaults_are_read() {
        let request = parse(
            &with(json!([
                {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": false}]},
                {"name": "includeMedication"},
                {"name": "includeImmunisations"},
                {"name": "includeProblems"},
                {"name": "includeDiaryEntries"},
            ])),
            TODAY,
        )
        .expect("valid");
        assert_eq!(request.diary, Some(None));
        assert_eq!(
            request.allergies,
            Some(AllergyOptions {
                include_resolved: false
            })
        );
        assert_eq!(
            request.medication,
            Some(MedicationOptions {
                include_issues: true,
                from: None
            })
        );
        assert_eq!(
            request.immunisations,
            Some(ImmunisationOptions {
                include_not_given: false,
                include_status: true
            })
        );
        assert_eq!(request.problems, Some(vec![ProblemFilter::default()]));
        assert!(request.warnings.is_empty());
    }

    #[test]
    fn unknown_parameters_and_parts_are_warnings_at_the_least_granular_level() {
        let request = parse(
            &with(json!([
                {"name": "includeMadeUpParam", "part": [{"name": "a", "valueBoolean": true}, {"name": "b"}]},
                {"name": "includeAllergies", "part": [
                    {"name": "includeResolvedAllergies", "valueBoolean": true},
                    {"name": "includePrescriptionIssues", "valueBoolean": true}]},
            ])),
            TODAY,
        )
        .expect("valid");
        let texts: Vec<&str> = request.warnings.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "includeMadeUpParam is an unrecognised parameter",
                "includeAllergies.includePrescriptionIssues is an unrecognised parameter"
            ]
        );
    }

    #[test]
    fn the_spec_errors_come_with_their_codes() {
        assert_eq!(
            code_of(json!([{"name": "includeAllergies"}])),
            SpineCode::InvalidParameter
        );
        for bad in ["X2014", "2014", "2014-02", "2015-10-23T11:08:32+00:00", ""] {
            let medication = json!([{"name": "includeMedication", "part": [{"name": "medicationSearchFromDate", "valueDate": bad}]}]);
            assert_eq!(code_of(medication), SpineCode::InvalidParameter, "{bad}");
        }
        let tomorrow = json!([{"name": "includeMedication", "part": [{"name": "medicationSearchFromDate", "valueDate": day_text(TODAY + 1)}]}]);
        assert_eq!(code_of(tomorrow), SpineCode::InvalidParameter);
        let twice = json!([{"name": "includeMedication", "part": [
            {"name": "includePrescriptionIssues", "valueBoolean": true},
            {"name": "includePrescriptionIssues", "valueBoolean": false}]}]);
        assert_eq!(code_of(twice), SpineCode::InvalidResource);
        let both = json!([{"name": "includeConsultations", "part": [
            {"name": "consultationSearchPeriod", "valuePeriod": {"start": day_text(TODAY - 30)}},
            {"name": "includeNumberOfMostRecent", "valuePositiveInt": 3}]}]);
        assert_eq!(code_of(both), SpineCode::InvalidResource);
        let period = |start: i64, end: i64| {
            json!([{"name": "includeUncategorisedData", "part": [
            {"name": "uncategorisedDataSearchPeriod", "valuePeriod": {"start": day_text(start), "end": day_text(end)}}]}])
        };
        assert_eq!(
            code_of(period(TODAY - 1, TODAY - 2)),
            SpineCode::InvalidParameter
        );
        assert_eq!(
            code_of(period(TODAY - 1, TODAY + 2)),
            SpineCode::InvalidParameter
        );
        assert!(parse(&with(period(TODAY, TODAY)), TODAY).is_ok());
        let status = json!([{"name": "includeProblems", "part": [{"name": "filterStatus", "valueCode": "resolved"}]}]);
        assert_eq!(code_of(status), SpineCode::InvalidParameter);
        let past_diary = json!([{"name": "includeDiaryEntries", "part": [{"name": "diaryEntriesSearchDate", "valueDate": day_text(TODAY - 20)}]}]);
        assert_eq!(code_of(past_diary), SpineCode::InvalidParameter);
    }

    #[test]
    fn some_parts_may_not_come_with_consultations_or_problems() {
        let combined = |with: &str| {
            json!([
                {"name": with},
                {"name": "includeMedication", "part": [{"name": "medicationSearchFromDate", "valueDate": day_text(TODAY - 5)}]},
            ])
        };
        assert_eq!(
            code_of(combined("includeConsultations")),
            SpineCode::InvalidParameter
        );
        assert_eq!(
            code_of(combined("includeProblems")),
            SpineCode::InvalidParameter
        );
        let filters = json!([{"name": "includeProblems", "part": [{"name": "filterStatus", "valueCode": "active"}]}]);
        assert!(
            parse(&with(filters), TODAY).is_ok(),
            "problem filters may come with problems"
        );
    }

    #[test]
    fn the_patient_is_required_and_checked() {
        let none =
            json!({"resourceType": "Parameters", "parameter": [{"name": "includeMedication"}]});
        assert_eq!(
            parse(&none, TODAY).expect_err("no patient").code,
            SpineCode::InvalidParameter
        );
        let bad = json!({"resourceType": "Parameters", "parameter": [{"name": "patientNHSNumber",
            "valueIdentifier": {"system": SYSTEM_NHS_NUMBER, "value": "1234567891"}}]});
        assert_eq!(
            parse(&bad, TODAY).expect_err("check digit").code,
            SpineCode::InvalidNhsNumber
        );
        let system = json!({"resourceType": "Parameters", "parameter": [{"name": "patientNHSNumber",
            "valueIdentifier": {"system": "https://example.org/mrn", "value": "9690937286"}}]});
        assert_eq!(
            parse(&system, TODAY).expect_err("system").code,
            SpineCode::InvalidIdentifierSystem
        );
    }
}
