//! The services directory: what providers offer (specialty, clinic types, priorities, whether
//! patients book directly or the provider triages, advice and guidance), who may refer to it
//! (commissioning), and the patient service search of A010 over it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::codes;
use super::error::ErsError;
use super::params::Params;

/// The identifier system of e-RS service ids.
pub const SERVICE_SYSTEM: &str = "http://fhir.nhs.net/Id/ers-service";
/// The identifier system of SDS user ids, as e-RS writes it.
pub const SDS_USER_SYSTEM: &str = "http://fhir.nhs.net/Id/sds-user-id";
const SERVICE_SUMMARY: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ServiceSummaryView-1";
const LIST_ITEM: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ServiceSearch-ListItem-1";

/// How a patient gets an appointment at a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookableType {
    /// The referrer or patient books a slot.
    DirectlyBookable,
    /// The provider arranges the appointment.
    IndirectlyBookable,
}

impl BookableType {
    fn code(self) -> &'static str {
        match self {
            BookableType::DirectlyBookable => "DIRECTLY_BOOKABLE",
            BookableType::IndirectlyBookable => "INDIRECTLY_BOOKABLE",
        }
    }
}

/// Which sexes a service treats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GenderTreated {
    /// Male patients only.
    Male,
    /// Female patients only.
    Female,
    /// Everyone.
    MaleAndFemale,
}

/// A service in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The e-RS service id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The provider organisation's ODS code.
    pub provider: String,
    /// The site (ODS site code) it runs at.
    pub site: String,
    /// The site's name.
    pub site_name: String,
    /// Its specialty code.
    pub specialty: String,
    /// Its clinic types.
    pub clinic_types: Vec<String>,
    /// Priorities it accepts.
    pub priorities: Vec<String>,
    /// Directly or indirectly bookable.
    pub bookable: BookableType,
    /// Whether it is a triage (referral assessment) service.
    pub triage: bool,
    /// Whether it answers advice and guidance requests.
    pub advice: bool,
    /// Whether it takes appointment requests.
    pub appointments: bool,
    /// Who it treats.
    pub gender: GenderTreated,
    /// Youngest and oldest patient it treats, in years.
    pub ages: (u32, u32),
    /// SDS user ids of its named clinicians.
    pub clinicians: Vec<String>,
    /// Commissioning organisations whose referrers may refer to it; empty for everyone.
    pub commissioned_by: Vec<String>,
    /// Indicative appointment wait, in days.
    pub wait_days: u32,
    /// Distance from the referring practice, in miles, for sorting.
    pub distance: u32,
    /// Whether a referral letter is required.
    pub letter_required: bool,
    /// The test PAS that holds its slots, when linked.
    #[serde(default)]
    pub pas: Option<String>,
    /// Its appointment type (`eRS-AppointmentType`: `FIRST_OUTPATIENT`, `DIAGNOSTIC`...).
    #[serde(default = "first_outpatient")]
    pub appointment_type: String,
    /// At most this many slots of its general clinic are offered at a time (a small clinic,
    /// as some sandbox scenarios have); all of them when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_limit: Option<usize>,
    /// Slots its PAS offers beside the clinics' timetables, under ids of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listed_slots: Vec<ListedSlot>,
}

/// A slot a service's PAS offers under an id of its own, off the generated timetable: the
/// e-RS sandbox's example requests book slots numbered `11000021` and the like, on dates of
/// their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedSlot {
    /// Its id, as `Slot/{id}` names it.
    pub id: String,
    /// The named clinician whose clinic offers it; the general clinic when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinician: Option<String>,
    /// Start, a FHIR instant.
    pub start: String,
    /// End, a FHIR instant.
    pub end: String,
}

fn first_outpatient() -> String {
    "FIRST_OUTPATIENT".into()
}

/// The appointment types of services, with their displays.
pub const APPOINTMENT_TYPES: [(&str, &str); 9] = [
    ("DAY_CASE", "Day Case"),
    ("FIRST_OUTPATIENT", "First Outpatient"),
    ("ASSESSMENT_SERVICE", "Assessment Service"),
    ("GPSI", "GPSI"),
    ("AHP_CLINIC", "AHP Clinic"),
    ("DIAGNOSTIC", "Diagnostic"),
    ("NURSE_CLINIC", "Nurse Clinic"),
    ("OPHTHALMOLOGIST", "Ophthalmologist"),
    ("TELEPHONE_ASSESSMENT", "Telephone Assessment"),
];

/// What the referrer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    /// A referral for an appointment.
    Appointment,
    /// Advice and guidance.
    Advice,
}

/// The search criteria of A010, also stored with a referral's shortlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchCriteria {
    /// Priority code.
    pub priority: String,
    /// Specialty code.
    pub specialty: Option<String>,
    /// Clinic type code.
    pub clinic_type: Option<String>,
    /// SNOMED CT clinical term.
    pub clinical_term: Option<String>,
    /// A named clinician's SDS user id.
    pub named_clinician: Option<String>,
    /// Longest indicative wait accepted, in days.
    pub wait_limit: Option<u32>,
    /// Furthest accepted, in miles.
    pub distance_limit: Option<u32>,
    /// Postcode searched around.
    pub postcode: Option<String>,
    /// Only services appropriate to the patient's age and sex.
    pub age_and_gender_appropriate: bool,
    /// A provider organisation to search within.
    pub organisation: Option<String>,
}

const CRITERIA_PARAMETERS: [&str; 12] = [
    "priority",
    "specialty",
    "clinicType",
    "indicativeAppointmentWaitTimeLimit",
    "postcode",
    "distanceLimit",
    "clinicalTerm",
    "namedClinician",
    "ageAndGenderAppropriate",
    "commissioningProvisioning",
    "organisation",
    "place",
];

fn small(value: Option<u64>, what: &str) -> Result<Option<u32>, ErsError> {
    value
        .map(|v| {
            u32::try_from(v).map_err(|_| ErsError::invalid(format!("{what}: {v} is too large")))
        })
        .transpose()
}

impl SearchCriteria {
    /// Reads an `eRS-ServiceSearchCriteria-Parameters-1`.
    pub fn read(params: &Params<'_>) -> Result<SearchCriteria, ErsError> {
        let priority = params
            .coding("priority")?
            .ok_or_else(|| ErsError::missing("searchCriteria.priority"))?;
        priority.check_system("priority", codes::PRIORITY_SYSTEM)?;
        if codes::priority_display(priority.code).is_none() {
            let allowed: Vec<&str> = codes::PRIORITIES.iter().map(|(c, _)| *c).collect();
            return Err(ErsError::invalid_code("priority", priority.code, &allowed));
        }
        let specialty = match params.coding("specialty")? {
            None => None,
            Some(coding) => {
                coding.check_system("specialty", codes::SPECIALTY_SYSTEM)?;
                if codes::specialty_display(coding.code).is_none() {
                    let allowed: Vec<&str> =
                        codes::SPECIALTIES.iter().map(|(c, _, _)| *c).collect();
                    return Err(ErsError::invalid_code("specialty", coding.code, &allowed));
                }
                Some(coding.code.to_owned())
            }
        };
        let clinic_type = match params.coding("clinicType")? {
            None => None,
            Some(coding) => {
                coding.check_system("clinicType", codes::CLINIC_TYPE_SYSTEM)?;
                if codes::clinic_type_display(coding.code).is_none() {
                    return Err(ErsError::rule(
                        "INVALID_CODE",
                        format!(
                            "'{}' is not an e-RS clinic type (A004 CLINIC-TYPE lists them)",
                            coding.code
                        ),
                    ));
                }
                if let Some(specialty) = &specialty
                    && !codes::clinic_type_in(specialty, coding.code)
                {
                    return Err(ErsError::rule(
                        "INAPPROPRIATE_VALUE",
                        format!(
                            "clinic type {} does not belong to specialty {specialty}",
                            coding.code
                        ),
                    ));
                }
                Some(coding.code.to_owned())
            }
        };
        let clinical_term = match params.coding("clinicalTerm")? {
            None => None,
            Some(coding) => {
                coding.check_system("clinicalTerm", "http://snomed.info/sct")?;
                Some(coding.code.to_owned())
            }
        };
        let named_clinician = params
            .identifier("namedClinician")?
            .map(|(_, id)| id.to_owned());
        // A search by named clinician alone is one the specification shows (its
        // RcSearchByNamedClinician example).
        if specialty.is_none()
            && clinical_term.is_none()
            && clinic_type.is_none()
            && named_clinician.is_none()
        {
            return Err(ErsError::rule(
                "VALUE_IS_REQUIRED",
                "searchCriteria needs a specialty, a clinic type, a clinical term or a named clinician",
            ));
        }
        let organisation = params
            .identifier("organisation")?
            .map(|(_, id)| id.to_ascii_uppercase());
        let age_and_gender_appropriate = params
            .boolean("ageAndGenderAppropriate")?
            .ok_or_else(|| ErsError::missing("searchCriteria.ageAndGenderAppropriate"))?;
        Ok(SearchCriteria {
            priority: priority.code.to_owned(),
            specialty,
            clinic_type,
            clinical_term,
            named_clinician,
            wait_limit: small(
                params.unsigned("indicativeAppointmentWaitTimeLimit")?,
                "indicativeAppointmentWaitTimeLimit",
            )?,
            distance_limit: small(params.unsigned("distanceLimit")?, "distanceLimit")?,
            postcode: params.text("postcode", "String")?.map(str::to_owned),
            age_and_gender_appropriate,
            organisation,
        })
    }

    /// The names an `eRS-ServiceSearchCriteria-Parameters-1` may use.
    pub fn parameter_names() -> &'static [&'static str] {
        &CRITERIA_PARAMETERS
    }

    /// As a contained `eRS-ServiceSearchCriteria-Parameters-1` with `id`.
    pub fn to_fhir(&self, id: &str, stu3_base: &str) -> Value {
        let mut parameter = vec![
            json!({"name": "priority", "valueCoding": {"system": codes::PRIORITY_SYSTEM, "code": self.priority}}),
        ];
        if let Some(specialty) = &self.specialty {
            parameter.push(json!({"name": "specialty", "valueCoding": {"system": format!("{stu3_base}/CodeSystem/SPECIALTY"), "code": specialty}}));
        }
        if let Some(clinic_type) = &self.clinic_type {
            parameter.push(json!({"name": "clinicType", "valueCoding": {"system": codes::CLINIC_TYPE_SYSTEM, "code": clinic_type}}));
        }
        if let Some(term) = &self.clinical_term {
            parameter.push(json!({"name": "clinicalTerm", "valueCoding": {"system": "http://snomed.info/sct", "code": term}}));
        }
        if let Some(clinician) = &self.named_clinician {
            parameter.push(json!({"name": "namedClinician", "valueIdentifier": {"system": SDS_USER_SYSTEM, "value": clinician}}));
        }
        if let Some(limit) = self.wait_limit {
            parameter.push(
                json!({"name": "indicativeAppointmentWaitTimeLimit", "valueUnsignedInt": limit}),
            );
        }
        if let Some(limit) = self.distance_limit {
            parameter.push(json!({"name": "distanceLimit", "valueUnsignedInt": limit}));
        }
        if let Some(postcode) = &self.postcode {
            parameter.push(json!({"name": "postcode", "valueString": postcode}));
        }
        parameter.push(json!({"name": "ageAndGenderAppropriate", "valueBoolean": self.age_and_gender_appropriate}));
        parameter.push(json!({"name": "commissioningProvisioning", "valueCoding": {
            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-CommissioningProvisioning-1",
            "code": "ALL_AVAILABLE_FOR_BOOKING"}}));
        json!({
            "resourceType": "Parameters",
            "id": id,
            "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ServiceSearchCriteria-Parameters-1"]},
            "parameter": parameter,
        })
    }
}

/// The patient as a search needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatientFacts {
    /// Age in whole years.
    pub age: u32,
    /// `true` for female, `false` for male, `None` when not known.
    pub female: Option<bool>,
}

/// Why a service does not match, or `None` when it does.
pub fn mismatch(
    service: &Service,
    criteria: &SearchCriteria,
    request: RequestType,
    commissioner: Option<&str>,
    patient: Option<PatientFacts>,
) -> Option<String> {
    match request {
        RequestType::Appointment if !service.appointments => {
            return Some("takes no appointment requests".into());
        }
        RequestType::Advice if !service.advice => {
            return Some("gives no advice and guidance".into());
        }
        _ => {}
    }
    if !service.priorities.contains(&criteria.priority) {
        return Some(format!("does not accept {} referrals", criteria.priority));
    }
    if let Some(specialty) = &criteria.specialty
        && &service.specialty != specialty
    {
        return Some(format!("is in {}, not {specialty}", service.specialty));
    }
    if let Some(clinic_type) = &criteria.clinic_type
        && !service.clinic_types.contains(clinic_type)
    {
        return Some(format!("has no {clinic_type} clinic"));
    }
    if let Some(clinician) = &criteria.named_clinician
        && !service.clinicians.contains(clinician)
    {
        return Some(format!("has no named clinician {clinician}"));
    }
    if let Some(limit) = criteria.wait_limit
        && service.wait_days > limit
    {
        return Some(format!(
            "waits {} days, more than {limit}",
            service.wait_days
        ));
    }
    if let Some(limit) = criteria.distance_limit
        && service.distance > limit
    {
        return Some(format!(
            "is {} miles away, more than {limit}",
            service.distance
        ));
    }
    if let Some(organisation) = &criteria.organisation
        && &service.provider != organisation
    {
        return Some(format!(
            "is run by {}, not {organisation}",
            service.provider
        ));
    }
    if let Some(commissioner) = commissioner
        && !service.commissioned_by.is_empty()
        && !service
            .commissioned_by
            .iter()
            .any(|c| c.eq_ignore_ascii_case(commissioner))
    {
        return Some(format!(
            "is not commissioned for referrers of {commissioner}"
        ));
    }
    if criteria.age_and_gender_appropriate
        && let Some(patient) = patient
    {
        if patient.age < service.ages.0 || patient.age > service.ages.1 {
            return Some(format!(
                "treats ages {} to {}",
                service.ages.0, service.ages.1
            ));
        }
        match (service.gender, patient.female) {
            (GenderTreated::Male, Some(true)) => return Some("treats male patients only".into()),
            (GenderTreated::Female, Some(false)) => {
                return Some("treats female patients only".into());
            }
            _ => {}
        }
    }
    None
}

/// How A010 orders its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Nearest first.
    Distance,
    /// Shortest indicative wait first.
    WaitTime,
}

impl SortBy {
    /// Parses an `eRS-SortBy-1` code.
    pub fn parse(code: &str) -> Result<SortBy, ErsError> {
        match code {
            "DISTANCE" => Ok(SortBy::Distance),
            "IWT" => Ok(SortBy::WaitTime),
            other => Err(ErsError::invalid_code(
                "sortBy",
                other,
                &["DISTANCE", "IWT"],
            )),
        }
    }
}

/// Orders matching services as asked, ties by name.
pub fn sort(services: &mut [&Service], by: SortBy) {
    services.sort_by(|a, b| {
        let key = |s: &Service| match by {
            SortBy::Distance => (s.distance, s.wait_days),
            SortBy::WaitTime => (s.wait_days, s.distance),
        };
        key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
    });
}

impl Service {
    /// The `eRS-FetchServices-List-1` entry of this service.
    pub fn list_entry(&self, stu3_base: &str) -> Value {
        let coded =
            |system: &str, code: &str| json!({"coding": [{"system": system, "code": code}]});
        let mut summary = vec![
            json!({"url": "serviceName", "valueString": self.name}),
            json!({"url": "specialty", "valueCodeableConcept": coded(&format!("{stu3_base}/CodeSystem/SPECIALTY"), &self.specialty)}),
            json!({"url": "genderTreated", "valueCodeableConcept": coded("https://fhir.nhs.uk/STU3/CodeSystem/eRS-GenderTreated-1", match self.gender {
                GenderTreated::Male => "MALE",
                GenderTreated::Female => "FEMALE",
                GenderTreated::MaleAndFemale => "MALE_AND_FEMALE",
            })}),
            json!({"url": "bookableType", "valueCodeableConcept": coded("https://fhir.nhs.uk/STU3/CodeSystem/eRS-BookableType-1", self.bookable.code())}),
            json!({"url": "supportedAppointmentType", "valueCodeableConcept": coded("https://fhir.nhs.uk/STU3/CodeSystem/eRS-AppointmentType-1", &self.appointment_type)}),
            json!({"url": "referralLetterRequired", "valueBoolean": self.letter_required}),
            json!({"url": "location", "valueReference": {
                "identifier": {"system": "https://directory.spineservices.nhs.uk/STU3/Organization", "value": self.provider},
                "display": self.site_name}}),
        ];
        if self.appointments {
            summary.push(json!({"url": "supportedRequestFlowType", "valueCodeableConcept": coded("https://fhir.nhs.uk/STU3/CodeSystem/eRS-RequestFlowType-1", "APPOINTMENT_REQUEST")}));
        }
        if self.advice {
            summary.push(json!({"url": "supportedRequestFlowType", "valueCodeableConcept": coded("https://fhir.nhs.uk/STU3/CodeSystem/eRS-RequestFlowType-1", "ADVICE_AND_GUIDANCE_REQUEST")}));
        }
        json!({
            "extension": [{"url": LIST_ITEM, "extension": [
                {"url": "displayProminently", "valueBoolean": false},
                {"url": "distance", "valueUnsignedInt": self.distance},
                {"url": "indicativeAppointmentWaitTime", "valueUnsignedInt": self.wait_days},
            ]}],
            "item": {
                "extension": [{"url": SERVICE_SUMMARY, "extension": summary}],
                "identifier": {"system": SERVICE_SYSTEM, "value": self.id},
            },
        })
    }

    /// The R4 `HealthcareService` of A033 and A035, at `version`: the shape of the e-RS
    /// service, with its site, appointment type, request flows and bookable type.
    pub fn to_r4(&self, version: i64) -> Value {
        let display = APPOINTMENT_TYPES
            .iter()
            .find(|(c, _)| *c == self.appointment_type)
            .map(|(_, d)| *d)
            .unwrap_or_default();
        let flow = |code: &str, display: &str| json!({"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/eRS-RequestFlowType", "code": code, "display": display}]});
        let mut characteristic = Vec::new();
        if self.appointments && !self.triage {
            characteristic.push(flow(
                "BOOKABLE",
                "A service which supports a patient appointment",
            ));
        }
        if self.triage {
            characteristic.push(flow(
                "REVIEW",
                "A service that reviews referrals, without the support or need for any appointment with the patient to be made",
            ));
        }
        if self.advice {
            characteristic.push(flow(
                "ADVICE_AND_GUIDANCE",
                "A service which can discuss the patient and receive guidance rather than a patient attending an appointment",
            ));
        }
        let (bookable, bookable_display) = match self.bookable {
            BookableType::DirectlyBookable => ("DIRECTLY_BOOKABLE", "Directly Bookable"),
            BookableType::IndirectlyBookable => ("INDIRECTLY_BOOKABLE", "Indirectly Bookable"),
        };
        characteristic.push(json!({"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/eRS-BookableType", "code": bookable, "display": bookable_display}]}));
        json!({
            "resourceType": "HealthcareService",
            "id": self.id,
            "meta": {"versionId": version.to_string()},
            "language": "en",
            "extension": [{"url": "https://fhir.nhs.uk/StructureDefinition/Extension-eRS-HoursOfOperation", "valueString": "09:00-17:00 Mon-Fri"}],
            "location": [{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-site-code", "value": self.site}}],
            "name": self.name,
            "type": [{"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/eRS-AppointmentType", "code": self.appointment_type, "display": display}]}],
            "characteristic": characteristic,
        })
    }
}
