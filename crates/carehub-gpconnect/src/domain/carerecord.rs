//! Access Record HTML 0.7.4 (`$gpc.getcarerecord`, FHIR DSTU2): the ten record sections, and
//! the request's `Parameters` read with the error of each mistake as the 0.7 provider test suite
//! expects it (which is stricter than, and in a few places different from, the specification's
//! error table).

use carehub_fhir::datetime::{
    DateKind, PartialDateTime, Precision, days_from_civil, days_in_month,
};
use serde_json::{Value, json};

use super::clock::day_of;
use super::directory::{Organisation, PostalAddress, Practitioner};
use super::error::{GpcError, SpineCode, Status};
use super::patient::{GpPatient, RegistrationType};

/// The GP Connect release Access Record HTML implements.
pub const SPEC_VERSION: &str = "0.7.4";

/// How long after death a patient's record stays readable, unless configured (0.7.4).
pub const DECEASED_ACCESS_DAYS: i64 = 28;

/// What a provider configures for Access Record HTML (the product's `settings`):
/// `deceased-access-days` (28 by default), `html-excluded-codes` (the SNOMED codes withheld from
/// every section, comma-separated: the RCGP sensitive-data exclusion set a practice applies;
/// none by default) and `html-spec-version` (the version the Conformance statement names,
/// `0.7.4` by default, which test packs built for another 0.7 release may compare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlSettings {
    pub deceased_access_days: i64,
    pub excluded_codes: std::collections::BTreeSet<String>,
    pub spec_version: String,
}

impl Default for HtmlSettings {
    fn default() -> HtmlSettings {
        HtmlSettings {
            deceased_access_days: DECEASED_ACCESS_DAYS,
            excluded_codes: Default::default(),
            spec_version: SPEC_VERSION.into(),
        }
    }
}

impl HtmlSettings {
    /// Reads the settings by name; an unknown name or a bad value is an error that says which.
    pub fn from_settings(
        settings: &std::collections::BTreeMap<String, String>,
    ) -> Result<HtmlSettings, String> {
        let mut read = HtmlSettings::default();
        for (name, value) in settings {
            match name.as_str() {
                "deceased-access-days" => {
                    read.deceased_access_days = value
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|days| *days >= 0)
                        .ok_or_else(|| {
                            format!(
                                "deceased-access-days must be a whole number of days, not '{value}'"
                            )
                        })?;
                }
                "html-excluded-codes" => {
                    read.excluded_codes = value
                        .split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(|code| {
                            if code.chars().all(|c| c.is_ascii_digit()) {
                                Ok(code.to_owned())
                            } else {
                                Err(format!("html-excluded-codes holds '{code}', which is not a SNOMED CT code"))
                            }
                        })
                        .collect::<Result<_, _>>()?;
                }
                "html-spec-version" => {
                    if !value.starts_with("0.7.") {
                        return Err(format!(
                            "html-spec-version must be a 0.7 release (0.7.4 by default), not '{value}'"
                        ));
                    }
                    read.spec_version = value.clone();
                }
                other => {
                    return Err(format!(
                        "'{other}' is not a setting of the GP Connect provider (deceased-access-days, html-excluded-codes, html-spec-version)"
                    ));
                }
            }
        }
        Ok(read)
    }
}

/// Where the 0.x profiles live.
const SD: &str = "http://fhir.nhs.net/StructureDefinition/";
const SNOMED: &str = "http://snomed.info/sct";

/// The identifier system of NHS numbers on the 0.x line.
pub const SYSTEM_NHS_NUMBER_DSTU2: &str = "http://fhir.nhs.net/Id/nhs-number";
/// The code system of the record sections.
pub const SYSTEM_RECORD_SECTION: &str = "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1";

/// One section of the care record; a request asks for exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Administrative,
    Allergies,
    ClinicalItems,
    Encounters,
    Immunisations,
    Medications,
    Observations,
    Problems,
    Referrals,
    Summary,
}

impl Section {
    pub const ALL: [Section; 10] = [
        Section::Administrative,
        Section::Allergies,
        Section::ClinicalItems,
        Section::Encounters,
        Section::Immunisations,
        Section::Medications,
        Section::Observations,
        Section::Problems,
        Section::Referrals,
        Section::Summary,
    ];

    /// The code (`ADM`).
    pub fn code(self) -> &'static str {
        match self {
            Section::Administrative => "ADM",
            Section::Allergies => "ALL",
            Section::ClinicalItems => "CLI",
            Section::Encounters => "ENC",
            Section::Immunisations => "IMM",
            Section::Medications => "MED",
            Section::Observations => "OBS",
            Section::Problems => "PRB",
            Section::Referrals => "REF",
            Section::Summary => "SUM",
        }
    }

    /// The title: the section's heading, `Composition.section.title` and the code's display.
    pub fn title(self) -> &'static str {
        match self {
            Section::Administrative => "Administrative Items",
            Section::Allergies => "Allergies and Adverse Reactions",
            Section::ClinicalItems => "Clinical Items",
            Section::Encounters => "Encounters",
            Section::Immunisations => "Immunisations",
            Section::Medications => "Medications",
            Section::Observations => "Observations",
            Section::Problems => "Problems and Issues",
            Section::Referrals => "Referrals",
            Section::Summary => "Summary",
        }
    }

    /// Whether the consumer may narrow the section by `timePeriod`; Allergies, Immunisations
    /// and the Summary always show everything.
    pub fn takes_time_period(self) -> bool {
        !matches!(
            self,
            Section::Allergies | Section::Immunisations | Section::Summary
        )
    }

    /// The section a code names; codes are case-sensitive.
    pub fn from_code(code: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// A date of a `timePeriod`: the whole day it falls on (for a partial date, its first day as a
/// start and its last as an end), and how the date banner shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterDay(pub i64);

/// The consumer's date filter: inclusive whole days, either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateFilter {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl DateFilter {
    /// Whether an item dated `day` passes.
    pub fn holds(&self, day: i64) -> bool {
        self.from.is_none_or(|f| day >= f) && self.to.is_none_or(|t| day <= t)
    }

    /// Whether an item that ran from `start` to `end` (open when `None`) overlaps the filter.
    pub fn overlaps(&self, start: i64, end: Option<i64>) -> bool {
        self.to.is_none_or(|t| start <= t) && self.from.is_none_or(|f| end.is_none_or(|e| e >= f))
    }
}

/// A valid `$gpc.getcarerecord` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareRecordRequest {
    pub nhs_number: String,
    pub section: Section,
    /// The consumer's `timePeriod`, if any.
    pub period: Option<DateFilter>,
}

fn bad(diagnostics: impl Into<String>) -> GpcError {
    GpcError::invalid_parameter(diagnostics).with_status(Status::BadRequest)
}

fn unprocessable(diagnostics: impl Into<String>) -> GpcError {
    GpcError::invalid_parameter(diagnostics)
}

const PARAMETER_NAMES: [&str; 3] = ["patientNHSNumber", "recordSection", "timePeriod"];

/// Reads the operation's DSTU2 `Parameters`.
pub fn parse(parameters: &Value) -> Result<CareRecordRequest, GpcError> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(GpcError::invalid_resource(
            "The body of $gpc.getcarerecord must be a Parameters resource",
        ));
    }
    let list: &[Value] = match parameters.get("parameter") {
        None => &[],
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(GpcError::invalid_resource(
                "Parameters.parameter must be an array",
            ));
        }
    };
    let mut found: [Vec<&Value>; 3] = Default::default();
    for parameter in list {
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(index) = PARAMETER_NAMES.iter().position(|n| *n == name) else {
            return Err(unprocessable(format!(
                "'{name}' is not a parameter of $gpc.getcarerecord, which takes {} (names are case-sensitive)",
                PARAMETER_NAMES.join(", ")
            )));
        };
        found[index].push(parameter);
    }
    let [numbers, sections, periods] = found;
    let number = one(numbers, "patientNHSNumber")?
        .ok_or_else(|| bad("The parameter 'patientNHSNumber' is required"))?;
    let section = one(sections, "recordSection")?
        .ok_or_else(|| bad("The parameter 'recordSection' is required"))?;
    let period = one(periods, "timePeriod")?;

    let identifier = number
        .get("valueIdentifier")
        .ok_or_else(|| bad("patientNHSNumber must be a valueIdentifier"))?;
    let nhs_number = super::structured::nhs_number_of(identifier, SYSTEM_NHS_NUMBER_DSTU2)?;
    let section = record_section(section)?;
    let period = match period {
        None => None,
        Some(_) if !section.takes_time_period() => {
            return Err(bad(format!(
                "The {} section ({}) cannot be filtered by date; send no timePeriod",
                section.title(),
                section.code()
            )));
        }
        Some(period) => Some(date_filter(period)?),
    };
    Ok(CareRecordRequest {
        nhs_number,
        section,
        period,
    })
}

fn record_section(parameter: &Value) -> Result<Section, GpcError> {
    let coding = parameter
        .get("valueCodeableConcept")
        .ok_or_else(|| bad("recordSection must be a valueCodeableConcept"))?
        .get("coding")
        .and_then(|c| c.get(0))
        .ok_or_else(|| unprocessable("recordSection must have a coding"))?;
    match coding
        .get("system")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "" => {
            return Err(unprocessable(format!(
                "recordSection's coding must have the system {SYSTEM_RECORD_SECTION}"
            )));
        }
        SYSTEM_RECORD_SECTION => {}
        other => {
            return Err(bad(format!(
                "recordSection's coding system is '{other}'; it must be {SYSTEM_RECORD_SECTION}"
            )));
        }
    }
    let code = coding
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Section::from_code(code).ok_or_else(|| {
        let codes: Vec<&str> = Section::ALL.iter().map(|s| s.code()).collect();
        unprocessable(format!(
            "'{code}' is not a record section; the sections are {} (upper case)",
            codes.join(", ")
        ))
    })
}

/// The one parameter of a name, if sent; sent twice is a bad request.
fn one<'a>(values: Vec<&'a Value>, name: &str) -> Result<Option<&'a Value>, GpcError> {
    match values.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(bad(format!("Send the parameter '{name}' once"))),
    }
}

/// One end of the period: a date (year, month or day) or a dateTime with its offset.
fn period_day(text: &Value, what: &str, end: bool) -> Result<i64, GpcError> {
    let text = text.as_str().unwrap_or_default();
    let parsed = PartialDateTime::parse(text, DateKind::DateTime).map_err(|e| {
        unprocessable(format!(
            "timePeriod.{what} '{text}' is not a date or a dateTime with a time zone: {e}"
        ))
    })?;
    let day = match parsed.precision {
        Precision::Year if end => days_from_civil(parsed.year, 12, 31),
        Precision::Month if end => days_from_civil(
            parsed.year,
            parsed.month,
            days_in_month(parsed.year, parsed.month),
        ),
        Precision::Year => days_from_civil(parsed.year, 1, 1),
        Precision::Month => days_from_civil(parsed.year, parsed.month, 1),
        _ => days_from_civil(parsed.year, parsed.month, parsed.day),
    };
    Ok(day)
}

fn date_filter(parameter: &Value) -> Result<DateFilter, GpcError> {
    let period = parameter
        .get("valuePeriod")
        .ok_or_else(|| unprocessable("timePeriod must be a valuePeriod"))?;
    let filter = DateFilter {
        from: period
            .get("start")
            .map(|t| period_day(t, "start", false))
            .transpose()?,
        to: period
            .get("end")
            .map(|t| period_day(t, "end", true))
            .transpose()?,
    };
    if filter.from.is_none() && filter.to.is_none() {
        return Err(unprocessable("timePeriod needs a start, an end or both"));
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(unprocessable("timePeriod ends before it starts"));
    }
    Ok(filter)
}

/// Why a patient's care record cannot be shared, if it cannot: held here, registered for GMS
/// with this practice, traced on PDS, not flagged sensitive, alive or dead for no longer than
/// `deceased_access_days` (the 0.7.4 rule), and not dissenting.
pub fn refusal(
    patient: &GpPatient,
    on_pds: bool,
    today: i64,
    deceased_access_days: i64,
) -> Option<GpcError> {
    let not_found = |why: &str| {
        Some(GpcError::new(
            SpineCode::PatientNotFound,
            format!(
                "No patient with NHS number {} can be shared by this practice: {why}",
                patient.nhs_number
            ),
        ))
    };
    if patient.registration.end.is_some() || patient.registration.kind != RegistrationType::Regular
    {
        return not_found("not registered here for GMS");
    }
    if !patient.verified || !on_pds {
        return not_found("not traced on PDS");
    }
    if patient.sensitive {
        return not_found("the record is not shared");
    }
    if let Some(died) = &patient.deceased
        && day_of(died).is_none_or(|day| today - day > deceased_access_days)
    {
        return not_found("deceased");
    }
    if patient.dissent {
        return Some(GpcError::new(
            SpineCode::NoPatientConsent,
            "The patient has dissented from sharing their record",
        ));
    }
    None
}

fn address(address: &PostalAddress, use_: &str) -> Value {
    json!({"use": use_, "line": address.lines, "city": address.city, "postalCode": address.postcode})
}

fn meta(version: i64, profile: &str) -> Value {
    json!({"versionId": version.to_string(), "profile": [format!("{SD}{profile}")]})
}

/// `gpconnect-patient-1` (DSTU2 element order).
pub fn patient_resource(
    patient: &GpPatient,
    version: i64,
    gp: Option<&Practitioner>,
    practice: &Organisation,
) -> Value {
    let mut name = json!({"use": "usual", "family": [patient.family], "given": patient.given});
    if let Some(prefix) = &patient.prefix {
        name["prefix"] = json!([prefix]);
    }
    let mut resource = json!({
        "resourceType": "Patient",
        "id": patient.id,
        "meta": meta(version, "gpconnect-patient-1"),
        "identifier": [{"system": SYSTEM_NHS_NUMBER_DSTU2, "value": patient.nhs_number}],
        "active": patient.registration.end.is_none(),
        "name": [name],
    });
    if let Some(telephone) = &patient.telephone {
        resource["telecom"] = json!([{"system": "phone", "value": telephone, "use": "home"}]);
    }
    resource["gender"] = json!(patient.gender);
    resource["birthDate"] = json!(patient.birth_date);
    if let Some(deceased) = &patient.deceased {
        resource["deceasedDateTime"] = json!(deceased);
    }
    if let Some(home) = &patient.address {
        resource["address"] = json!([address(home, "home")]);
    }
    if let Some(gp) = gp {
        resource["careProvider"] = json!([{"reference": format!("Practitioner/{}", gp.id), "display": practitioner_name(gp)}]);
    }
    resource["managingOrganization"] =
        json!({"reference": format!("Organization/{}", practice.id), "display": practice.name});
    resource
}

/// "Dr Anne Smith".
pub fn practitioner_name(practitioner: &Practitioner) -> String {
    format!(
        "{} {} {}",
        practitioner.prefix, practitioner.given, practitioner.family
    )
}

/// `gpconnect-practitioner-1` (DSTU2: one name, roles as `practitionerRole`).
pub fn practitioner_resource(practitioner: &Practitioner, version: i64) -> Value {
    let mut identifiers = vec![
        json!({"system": "http://fhir.nhs.net/Id/sds-user-id", "value": practitioner.sds_user_id}),
    ];
    if let Some(role) = practitioner.role_profile_ids.first() {
        identifiers
            .push(json!({"system": "http://fhir.nhs.net/Id/sds-role-profile-id", "value": role}));
    }
    json!({
        "resourceType": "Practitioner",
        "id": practitioner.id,
        "meta": meta(version, "gpconnect-practitioner-1"),
        "identifier": identifiers,
        "name": {"family": [practitioner.family], "given": [practitioner.given], "prefix": [practitioner.prefix]},
        "gender": practitioner.gender,
        "practitionerRole": [{
            "managingOrganization": {"reference": format!("Organization/{}", practitioner.organisation)},
            "role": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/sds-job-role-name-1", "code": "R0260", "display": "General Medical Practitioner"}]},
        }],
    })
}

/// `gpconnect-organization-1`.
pub fn organization_resource(organisation: &Organisation, version: i64) -> Value {
    json!({
        "resourceType": "Organization",
        "id": organisation.id,
        "meta": meta(version, "gpconnect-organization-1"),
        "identifier": [{"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": organisation.ods}],
        "name": organisation.name,
        "telecom": [{"system": "phone", "value": organisation.telephone, "use": "work"}],
        "address": [address(&organisation.address, "work")],
    })
}

/// The logical id of the Device resource that names this GP system as the author.
pub const DEVICE_ID: &str = "carehub-gp-system";

/// `gpconnect-device-1`: the GP system, which writes the composition.
pub fn device_resource(software_version: &str) -> Value {
    json!({
        "resourceType": "Device",
        "id": DEVICE_ID,
        "meta": meta(1, "gpconnect-device-1"),
        "identifier": [{"system": "https://carehub.dev/Id/device", "value": DEVICE_ID}],
        "type": {"coding": [{"system": SNOMED, "code": "462240000", "display": "Patient health record information system (physical object)"}]},
        "model": "carehub GP system",
        "version": software_version,
    })
}

/// `gpconnect-carerecord-composition-1`: one section, whose narrative is `html`.
pub fn composition(
    section: Section,
    html: String,
    patient: &Value,
    practice: &Organisation,
    date: &str,
) -> Value {
    let title = section.title();
    json!({
        "resourceType": "Composition",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"profile": [format!("{SD}gpconnect-carerecord-composition-1")]},
        "date": date,
        "type": {"coding": [{"system": SNOMED, "code": "425173008", "display": "record extract (record artifact)"}], "text": "record extract (record artifact)"},
        "class": {"coding": [{"system": SNOMED, "code": "700232004", "display": "general medical service (qualifier value)"}], "text": "general medical service (qualifier value)"},
        "title": "Patient Care Record",
        "status": "final",
        "subject": {"reference": format!("Patient/{}", patient["id"].as_str().unwrap_or_default()), "display": patient["name"][0]["family"][0]},
        "author": [{"reference": format!("Device/{DEVICE_ID}"), "display": "carehub GP system"}],
        "custodian": {"reference": format!("Organization/{}", practice.id), "display": practice.name},
        "section": [{
            "title": title,
            "code": {"coding": [{"system": SYSTEM_RECORD_SECTION, "code": section.code(), "display": title}], "text": title},
            "text": {"status": "generated", "div": html},
        }],
    })
}

/// The `gpconnect-searchset-bundle-1` of the answer: the composition first, then what it
/// refers to, each with the relative `fullUrl` its references use.
pub fn bundle(resources: Vec<Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|resource| {
            let url = format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": url, "resource": resource})
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"profile": [format!("{SD}gpconnect-searchset-bundle-1")]},
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    })
}

/// The DSTU2 Conformance statement of the Access Record HTML service root, naming
/// `spec_version`.
pub fn conformance(software_version: &str, spec_version: &str, date: &str) -> Value {
    let profiles: Vec<Value> = [
        "gpconnect-patient-1",
        "gpconnect-operationoutcome-1",
        "gpconnect-practitioner-1",
        "gpconnect-organization-1",
        "gpconnect-device-1",
        "gpconnect-searchset-bundle-1",
        "gpconnect-carerecord-composition-1",
    ]
    .iter()
    .map(|p| json!({"reference": format!("{SD}{p}")}))
    .collect();
    json!({
        "resourceType": "Conformance",
        "version": spec_version,
        "name": "GP Connect",
        "status": "active",
        "publisher": "carehub",
        "date": date,
        "description": format!("This server implements the GP Connect API version {spec_version}: Access Record HTML"),
        "kind": "capability",
        "software": {"name": "carehub", "version": software_version},
        "fhirVersion": "1.0.2",
        "acceptUnknown": "both",
        "format": ["application/xml+fhir", "application/json+fhir"],
        "profile": profiles,
        "rest": [{
            "mode": "server",
            "operation": [{"name": "gpc.getcarerecord", "definition": {"reference": "OperationDefinition/gpc.getcarerecord"}}],
        }],
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(parameters: Value) -> Result<CareRecordRequest, GpcError> {
        parse(&json!({"resourceType": "Parameters", "parameter": parameters}))
    }

    fn nhs(value: &str) -> Value {
        json!({"name": "patientNHSNumber", "valueIdentifier": {"system": SYSTEM_NHS_NUMBER_DSTU2, "value": value}})
    }

    fn section(system: &str, code: &str) -> Value {
        json!({"name": "recordSection", "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}})
    }

    fn period(start: Option<&str>, end: Option<&str>) -> Value {
        let mut p = serde_json::Map::new();
        if let Some(s) = start {
            p.insert("start".into(), json!(s));
        }
        if let Some(e) = end {
            p.insert("end".into(), json!(e));
        }
        json!({"name": "timePeriod", "valuePeriod": p})
    }

    fn failure(parameters: Value) -> (SpineCode, Status) {
        let error = request(parameters).expect_err("refused");
        (error.code, error.status)
    }

    #[test]
    fn a_request_names_a_patient_and_a_section_in_any_order() {
        let found = request(json!([
            period(Some("2015-05"), Some("2016")),
            section(SYSTEM_RECORD_SECTION, "ENC"),
            nhs("9690937286"),
        ]))
        .expect("valid");
        assert_eq!(found.nhs_number, "9690937286");
        assert_eq!(found.section, Section::Encounters);
        assert_eq!(
            found.period,
            Some(DateFilter {
                from: Some(days_from_civil(2015, 5, 1)),
                to: Some(days_from_civil(2016, 12, 31)),
            })
        );
    }

    #[test]
    fn partial_end_dates_run_to_the_end_of_their_month() {
        let found = request(json!([
            nhs("9690937286"),
            section(SYSTEM_RECORD_SECTION, "ADM"),
            period(None, Some("2016-02")),
        ]))
        .expect("valid");
        let filter = found.period.expect("period");
        assert_eq!(filter.from, None);
        assert_eq!(filter.to, Some(days_from_civil(2016, 2, 29)));
        let with_time = request(json!([
            nhs("9690937286"),
            section(SYSTEM_RECORD_SECTION, "ADM"),
            period(Some("2014-05-03T11:08:32+00:00"), None),
        ]))
        .expect("valid");
        assert_eq!(
            with_time.period.and_then(|p| p.from),
            Some(days_from_civil(2014, 5, 3))
        );
    }

    #[test]
    fn sections_without_a_time_frame_refuse_a_period_with_400() {
        for code in ["ALL", "IMM", "SUM"] {
            let found = failure(json!([
                nhs("9690937286"),
                section(SYSTEM_RECORD_SECTION, code),
                period(Some("2015"), None),
            ]));
            assert_eq!(
                found,
                (SpineCode::InvalidParameter, Status::BadRequest),
                "{code}"
            );
        }
    }

    #[test]
    fn each_mistake_gets_the_code_and_status_the_suite_expects() {
        let good_section = section(SYSTEM_RECORD_SECTION, "ENC");
        let bad_request = (SpineCode::InvalidParameter, Status::BadRequest);
        let unprocessable = (SpineCode::InvalidParameter, Status::Unprocessable);
        let cases: Vec<(Value, (SpineCode, Status))> = vec![
            (json!([good_section.clone()]), bad_request),
            (json!([nhs("9690937286")]), bad_request),
            (
                json!([nhs("9690937286"), nhs("9690937286"), good_section.clone()]),
                bad_request,
            ),
            (
                json!([
                    nhs("9690937286"),
                    good_section.clone(),
                    section(SYSTEM_RECORD_SECTION, "ALL")
                ]),
                bad_request,
            ),
            (
                json!([nhs("9690937286"), {"name": "recordSection", "valueString": "ENC"}]),
                bad_request,
            ),
            (
                json!([{"name": "patientNHSNumber", "valueString": "9690937286"}, good_section.clone()]),
                bad_request,
            ),
            (
                json!([nhs("9690937286"), good_section.clone(), {"name": "TimePeriod", "valuePeriod": {"start": "2015"}}]),
                unprocessable,
            ),
            (
                json!([nhs("9690937286"), section(SYSTEM_RECORD_SECTION, "enc")]),
                unprocessable,
            ),
            (
                json!([nhs("9690937286"), section(SYSTEM_RECORD_SECTION, "ZZZ")]),
                unprocessable,
            ),
            (
                json!([nhs("9690937286"), section("", "ENC")]),
                unprocessable,
            ),
            (
                json!([
                    nhs("9690937286"),
                    section(
                        "http://GPConnectTest.nhs.net/ValueSet/record-section",
                        "ENC"
                    )
                ]),
                bad_request,
            ),
            (
                json!([nhs("1234567891"), good_section.clone()]),
                (SpineCode::InvalidNhsNumber, Status::BadRequest),
            ),
            (
                json!([nhs(""), good_section.clone()]),
                (SpineCode::InvalidNhsNumber, Status::BadRequest),
            ),
            (
                json!([{"name": "patientNHSNumber", "valueIdentifier": {"system": "http://GPConnectTest.nhs.net/Id/identifierSystem", "value": "9690937286"}}, good_section.clone()]),
                (SpineCode::InvalidIdentifierSystem, Status::BadRequest),
            ),
            (
                json!([
                    nhs("9690937286"),
                    good_section.clone(),
                    period(Some("2016"), Some("2014"))
                ]),
                unprocessable,
            ),
            (
                json!([
                    nhs("9690937286"),
                    good_section.clone(),
                    period(Some("abcd"), None)
                ]),
                unprocessable,
            ),
            (
                json!([
                    nhs("9690937286"),
                    good_section.clone(),
                    period(Some("2015-10-23T11:08:32"), None)
                ]),
                unprocessable,
            ),
            (
                json!([nhs("9690937286"), good_section.clone(), period(None, None)]),
                unprocessable,
            ),
        ];
        for (parameters, expected) in cases {
            assert_eq!(failure(parameters.clone()), expected, "{parameters}");
        }
    }

    #[test]
    fn the_body_must_be_parameters() {
        let error = parse(&json!({"resourceType": "Patient"})).expect_err("refused");
        assert_eq!(
            (error.code, error.status),
            (SpineCode::InvalidResource, Status::Unprocessable)
        );
    }

    #[test]
    fn settings_are_read_by_name_and_bad_ones_say_why() {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert_eq!(
            HtmlSettings::from_settings(&map(&[])),
            Ok(HtmlSettings::default())
        );
        let read = HtmlSettings::from_settings(&map(&[
            ("deceased-access-days", "14"),
            ("html-excluded-codes", "35489007, 77176002"),
            ("html-spec-version", "0.7.3"),
        ]))
        .expect("valid");
        assert_eq!(read.deceased_access_days, 14);
        assert!(read.excluded_codes.contains("77176002"));
        assert_eq!(read.spec_version, "0.7.3");
        for bad in [
            ("deceased-access-days", "a month"),
            ("html-excluded-codes", "Smoker"),
            ("html-spec-version", "1.6.0"),
            ("deceased-days", "28"),
        ] {
            let error = HtmlSettings::from_settings(&map(&[bad])).expect_err("refused");
            assert!(error.contains(bad.0), "{error}");
        }
    }

    #[test]
    fn a_record_stays_readable_for_the_configured_days_after_death() {
        let pds = carehub_spine::pds::seed::named();
        let patients = crate::seed::patients(&pds);
        let mut patient = patients
            .into_iter()
            .find(|p| p.id == "2")
            .expect("patient2");
        let today = days_from_civil(2026, 12, 1);
        assert_eq!(refusal(&patient, true, today, 28), None);
        patient.deceased = Some("2026-11-11T10:00:00+00:00".into());
        assert_eq!(refusal(&patient, true, today, 28), None, "20 days ago");
        let error = refusal(&patient, true, today, 14).expect("too long ago");
        assert_eq!(error.code, SpineCode::PatientNotFound);
        patient.deceased = None;
        assert_eq!(
            refusal(&patient, false, today, 28).map(|e| e.code),
            Some(SpineCode::PatientNotFound),
            "not on PDS"
        );
        patient.dissent = true;
        assert_eq!(
            refusal(&patient, true, today, 28).map(|e| e.code),
            Some(SpineCode::NoPatientConsent)
        );
    }

    #[test]
    fn filters_are_inclusive_whole_days() {
        let filter = DateFilter {
            from: Some(10),
            to: Some(20),
        };
        assert!(filter.holds(10) && filter.holds(20) && !filter.holds(21) && !filter.holds(9));
        assert!(filter.overlaps(5, Some(10)) && filter.overlaps(20, None));
        assert!(!filter.overlaps(21, None) && !filter.overlaps(1, Some(9)));
        assert!(filter.overlaps(1, None));
    }
}
