//! A patient's clinical record at the GP system, for Access Record Structured: allergies (and
//! "no known allergies"), medication courses with their issues, immunisations and uncategorised
//! observations, each maybe marked confidential; and how a request's options turn it into the
//! `GPConnect-StructuredRecord-Bundle-1` Lists and resources, with the empty-list and warning
//! rules of the spec.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::clock::day_of;
use super::structured::{
    AllergyOptions, ConsultationOptions, DayRange, ImmunisationOptions, MedicationOptions,
    ProblemFilter,
};

const SNOMED: &str = "http://snomed.info/sct";
const SD: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/";
/// The system of the identifiers carehub gives record items.
const SYSTEM_ITEM: &str = "https://carehub.dev/Id/gp-record-item";

/// A SNOMED CT concept: code and display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concept {
    pub code: String,
    pub display: String,
}

impl Concept {
    pub fn new(code: &str, display: &str) -> Concept {
        Concept {
            code: code.into(),
            display: display.into(),
        }
    }

    fn to_fhir(&self) -> Value {
        json!({"coding": [{"system": SNOMED, "code": self.code, "display": self.display}], "text": self.display})
    }
}

/// An allergy or intolerance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allergy {
    pub id: String,
    pub code: Concept,
    /// A drug allergy (`medication`) or anything else (`environment`).
    pub drug: bool,
    /// `YYYY-MM-DD`.
    pub onset: Option<String>,
    pub asserted: String,
    /// When it ended and why (`No information available` when not recorded).
    pub ended: Option<(String, String)>,
    pub reaction: Option<(Concept, String)>,
    pub confidential: bool,
    /// The practitioner who recorded it.
    pub recorder: String,
}

/// One issue of a medication course.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicationIssue {
    pub id: String,
    pub date: String,
    pub days: u32,
}

/// A medication course: the authorisation and its issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicationCourse {
    pub id: String,
    pub medication: Concept,
    /// `acute`, `repeat` or `repeat-dispensing`.
    pub prescription_type: String,
    pub start: String,
    pub end: Option<String>,
    /// `active`, `completed` or `stopped`.
    pub status: String,
    pub dosage: String,
    pub quantity: (u32, String),
    pub repeats_allowed: Option<u32>,
    pub issues: Vec<MedicationIssue>,
    /// Prescribed by another organisation (hospital, previous practice).
    pub prescribed_elsewhere: bool,
    pub confidential: bool,
    pub recorder: String,
    /// Why a clinician stopped a `stopped` course (its `end` is when).
    #[serde(default)]
    pub stop_reason: Option<String>,
}

/// An immunisation, given or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Immunisation {
    pub id: String,
    pub vaccine: Concept,
    pub procedure: Concept,
    pub date: String,
    pub given: bool,
    pub recorded: String,
    pub recorder: String,
}

/// An uncategorised observation: a measurement or a coded entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub id: String,
    pub code: Concept,
    pub effective: Option<String>,
    pub issued: String,
    pub value: Option<(String, String, String)>,
    pub confidential: bool,
    pub performer: String,
}

/// A problem: a condition the practice manages, with the items recorded about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub id: String,
    pub code: Concept,
    pub active: bool,
    pub major: bool,
    pub onset: String,
    /// When an inactive problem ended.
    pub ended: Option<String>,
    pub asserted: String,
    pub asserter: String,
    /// The items recorded about it (`MedicationRequest/2-m1-plan`, `Observation/2-o1`...).
    pub related: Vec<String>,
    pub confidential: bool,
}

/// A topic of a consultation: what was discussed, and the items recorded about it, directly
/// or under headings (never both: a topic with headings holds its items there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub id: String,
    pub title: String,
    /// The items recorded (`Observation/2-o1`, `MedicationRequest/2-m1-plan`...).
    pub items: Vec<String>,
    /// The headings of the topic (`Examination`, `Plan`), each with its items.
    #[serde(default)]
    pub headings: Vec<Heading>,
    /// The problem the topic is about (a Condition's logical id).
    #[serde(default)]
    pub problem: Option<String>,
}

/// A heading within a consultation topic (`Category (EHR)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heading {
    pub id: String,
    pub title: String,
    pub items: Vec<String>,
}

impl Topic {
    /// Every item recorded under the topic, its headings' included.
    pub fn all_items(&self) -> impl Iterator<Item = &String> {
        self.items
            .iter()
            .chain(self.headings.iter().flat_map(|h| h.items.iter()))
    }
}

/// A consultation: an encounter with a clinician, organised by topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consultation {
    pub id: String,
    /// What kind (`Surgery consultation`).
    pub kind: String,
    pub start: String,
    pub end: String,
    pub clinician: String,
    pub topics: Vec<Topic>,
}

/// A test result within an investigation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    pub id: String,
    pub code: Concept,
    /// Value, unit, UCUM code.
    pub value: (String, String, String),
    /// The reference range, as text (`130-170`).
    pub range: String,
}

/// An investigation: a laboratory report of a specimen and its results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Investigation {
    pub id: String,
    /// The tests: the request's code and the test group's.
    pub code: Concept,
    pub issued: String,
    /// The laboratory's organisation (logical id).
    pub laboratory: String,
    pub specimen: (String, String),
    pub collected: String,
    pub results: Vec<TestResult>,
    /// The clinician who asked for the tests and filed the report (a practitioner's logical
    /// id); the practice's usual GP when not recorded.
    #[serde(default)]
    pub filed_by: Option<String>,
    /// What the clinician noted when filing the report.
    #[serde(default)]
    pub filing_comment: Option<String>,
}

/// An outbound referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    pub id: String,
    pub authored: String,
    pub reason: Concept,
    pub specialty: String,
    pub description: String,
    /// The organisation referred to (an ODS code and a name).
    pub recipient: (String, String),
    pub requester: String,
    /// Whether the referral is urgent (routine otherwise).
    #[serde(default)]
    pub urgent: bool,
}

impl Referral {
    /// `routine` or `urgent`, as FHIR's request priority codes them.
    pub fn priority(&self) -> &'static str {
        if self.urgent { "urgent" } else { "routine" }
    }
}

/// A diary entry: something to do for the patient on or by a date (a recall).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiaryEntry {
    pub id: String,
    pub code: Concept,
    /// When it is due, `YYYY-MM-DD`.
    pub due: String,
    pub authored: String,
    pub requester: String,
}

/// An administrative entry of the record (registration, consent, correspondence): what the
/// HTML view's Administrative Items section lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdministrativeItem {
    pub id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub entry: String,
    pub details: String,
}

/// A patient's clinical record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClinicalRecord {
    /// The patient's logical id.
    pub id: String,
    /// "No known allergies" was asserted, on this date.
    pub no_known_allergies: Option<String>,
    pub allergies: Vec<Allergy>,
    pub medication: Vec<MedicationCourse>,
    pub immunisations: Vec<Immunisation>,
    pub observations: Vec<Observation>,
    #[serde(default)]
    pub referrals: Vec<Referral>,
    #[serde(default)]
    pub diary: Vec<DiaryEntry>,
    #[serde(default)]
    pub problems: Vec<Problem>,
    #[serde(default)]
    pub investigations: Vec<Investigation>,
    #[serde(default)]
    pub consultations: Vec<Consultation>,
    #[serde(default)]
    pub administrative: Vec<AdministrativeItem>,
}

/// The items of `items` that `wanted` keeps.
fn keep<T: Clone>(items: &[T], wanted: impl Fn(&T) -> bool) -> Vec<T> {
    items.iter().filter(|item| wanted(item)).cloned().collect()
}

/// The warning of a list: what was left out, and whether the record is still arriving.
#[derive(Debug, Clone, Copy, Default)]
pub struct Warnings {
    pub confidential_excluded: bool,
    /// The date the patient registered, when the previous practice's record is in transit.
    pub in_transit_since: Option<i64>,
}

/// A List of the structured record, with its title and code.
fn list(
    patient: &str,
    (title, code): (&str, &str),
    items: Vec<String>,
    warnings: Warnings,
    today: &str,
) -> Value {
    let mut extension = vec![json!({
        "url": format!("{SD}Extension-CareConnect-GPC-ClinicalSetting-1"),
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "1060971000000108", "display": "General practice service"}]},
    })];
    let mut notes = Vec::new();
    if warnings.confidential_excluded {
        extension.push(json!({"url": format!("{SD}Extension-CareConnect-GPC-ListWarningCode-1"), "valueCode": "confidential-items"}));
        notes.push("Items excluded due to confidentiality and/or patient preferences.".to_owned());
    }
    if let Some(day) = warnings.in_transit_since {
        extension.push(json!({"url": format!("{SD}Extension-CareConnect-GPC-ListWarningCode-1"), "valueCode": "data-in-transit"}));
        notes.push(format!(
            "Patient record transfer from previous GP practice not yet complete; information recorded before {} may be missing.",
            display_date(day)
        ));
    }
    let mut resource = json!({
        "resourceType": "List",
        "meta": {"profile": [format!("{SD}CareConnect-GPC-List-1")]},
        "extension": extension,
        "status": "current",
        "mode": "snapshot",
        "title": title,
        "code": {"coding": [{"system": SNOMED, "code": code, "display": title}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "date": today,
        "orderedBy": {"coding": [{"system": "http://hl7.org/fhir/list-order", "code": "event-date", "display": "Sorted by Event Date"}]},
    });
    if items.is_empty() {
        resource["emptyReason"] = json!({"coding": [{
            "system": "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-ListEmptyReasonCode-1",
            "code": "no-content-recorded", "display": "No Content Recorded"}]});
        notes.insert(0, "Information not available".to_owned());
    } else {
        resource["entry"] = items
            .into_iter()
            .map(|i| json!({"item": {"reference": i}}))
            .collect();
    }
    if !notes.is_empty() {
        resource["note"] = json!([{"text": notes.join(" ")}]);
    }
    resource
}

/// `01-Apr-2025`.
pub(crate) fn display_date(day: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, date) = carehub_fhir::datetime::civil_from_days(day);
    format!(
        "{date:02}-{}-{year}",
        MONTHS[(month as usize).saturating_sub(1).min(11)]
    )
}

fn identifier(patient: &str, id: &str) -> Value {
    json!([{"system": SYSTEM_ITEM, "value": format!("{patient}-{id}")}])
}

impl Allergy {
    fn to_resource(&self, patient: &str) -> Value {
        let mut resource = json!({
            "resourceType": "AllergyIntolerance",
            "id": self.id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-AllergyIntolerance-1")]},
            "identifier": identifier(patient, &self.id),
            "clinicalStatus": if self.ended.is_some() { "resolved" } else { "active" },
            "verificationStatus": "unconfirmed",
            "category": [if self.drug { "medication" } else { "environment" }],
            "code": self.code.to_fhir(),
            "patient": {"reference": format!("Patient/{patient}")},
            "assertedDate": self.asserted,
            "recorder": {"reference": format!("Practitioner/{}", self.recorder)},
        });
        if let Some(onset) = &self.onset {
            resource["onsetDateTime"] = json!(onset);
        }
        if let Some((end, reason)) = &self.ended {
            resource["extension"] = json!([{
                "url": format!("{SD}Extension-CareConnect-GPC-AllergyIntoleranceEnd-1"),
                "extension": [{"url": "endDate", "valueDateTime": end}, {"url": "reasonEnded", "valueString": reason}],
            }]);
        }
        if let Some((manifestation, severity)) = &self.reaction {
            resource["reaction"] =
                json!([{"manifestation": [manifestation.to_fhir()], "severity": severity}]);
        }
        resource
    }
}

fn prescription_type(kind: &str) -> Value {
    let display = match kind {
        "repeat" => "Repeat",
        "repeat-dispensing" => "Repeat dispensing",
        _ => "Acute",
    };
    json!({"url": format!("{SD}Extension-CareConnect-GPC-PrescriptionType-1"),
           "valueCodeableConcept": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-PrescriptionType-1",
                                                 "code": kind, "display": display}]}})
}

impl MedicationCourse {
    /// Active on or after `day`: an open repeat from its start on, an open acute on its start
    /// date, anything else over its start-to-end period; medication prescribed elsewhere always.
    fn active_on_or_after(&self, day: i64) -> bool {
        if self.prescribed_elsewhere {
            return true;
        }
        let start = day_of(&self.start).unwrap_or(i64::MIN);
        match self.end.as_deref().and_then(day_of) {
            Some(end) => end >= day,
            None if self.prescription_type == "acute" => start >= day,
            None => true,
        }
    }

    fn resources(&self, patient: &str, include_issues: bool) -> Vec<Value> {
        let plan_id = format!("{}-plan", self.id);
        let medication_id = format!("{}-medication", self.id);
        let last_issue = self.issues.iter().map(|i| i.date.as_str()).max();
        let mut effective = json!({"start": self.start});
        if let Some(end) = &self.end {
            effective["end"] = json!(end);
        }
        let agency = if self.prescribed_elsewhere {
            (
                "prescribed-by-another-organisation",
                "Prescribed by another organisation",
            )
        } else {
            ("prescribed-at-gp-practice", "Prescribed at GP practice")
        };
        let mut statement_extensions = vec![json!({
            "url": format!("{SD}Extension-CareConnect-GPC-PrescribingAgency-1"),
            "valueCodeableConcept": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-PrescribingAgency-1",
                                                  "code": agency.0, "display": agency.1}]},
        })];
        if let Some(last) = last_issue.filter(|_| !self.prescribed_elsewhere) {
            statement_extensions.push(json!({"url": format!("{SD}Extension-CareConnect-GPC-MedicationStatementLastIssueDate-1"), "valueDateTime": last}));
        }
        let statement = json!({
            "resourceType": "MedicationStatement",
            "id": self.id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-MedicationStatement-1")]},
            "extension": statement_extensions,
            "identifier": identifier(patient, &self.id),
            "basedOn": [{"reference": format!("MedicationRequest/{plan_id}")}],
            "status": self.status,
            "medicationReference": {"reference": format!("Medication/{medication_id}")},
            "effectivePeriod": effective,
            "dateAsserted": self.start,
            "subject": {"reference": format!("Patient/{patient}")},
            "taken": "unk",
            "dosage": [{"text": self.dosage}],
        });
        let mut plan_extensions = vec![prescription_type(&self.prescription_type)];
        if let Some(allowed) = self
            .repeats_allowed
            .filter(|_| self.prescription_type != "acute")
        {
            // unsignedInt, as CareConnect-GPC-MedicationRequest-1 and the spec page have it (the
            // count issued is zero before the first issue); the extension's own definition says
            // positiveInt, which contradicts both.
            plan_extensions.push(json!({
                "url": format!("{SD}Extension-CareConnect-GPC-MedicationRepeatInformation-1"),
                "extension": [
                    {"url": "numberOfRepeatPrescriptionsAllowed", "valueUnsignedInt": allowed},
                    {"url": "numberOfRepeatPrescriptionsIssued", "valueUnsignedInt": self.issues.len()},
                ],
            }));
        }
        let request = |id: &str,
                       intent: &str,
                       authored: &str,
                       period: Value,
                       extensions: Vec<Value>,
                       based_on: Option<&str>| {
            let mut resource = json!({
                "resourceType": "MedicationRequest",
                "id": id,
                "meta": {"profile": [format!("{SD}CareConnect-GPC-MedicationRequest-1")]},
                "extension": extensions,
                "identifier": identifier(patient, id),
                "status": self.status,
                "intent": intent,
                "medicationReference": {"reference": format!("Medication/{medication_id}")},
                "subject": {"reference": format!("Patient/{patient}")},
                "authoredOn": authored,
                "recorder": {"reference": format!("Practitioner/{}", self.recorder)},
                "dosageInstruction": [{"text": self.dosage}],
                "dispenseRequest": {
                    "validityPeriod": period,
                    "quantity": {
                        "extension": [{"url": format!("{SD}Extension-CareConnect-GPC-MedicationQuantityText-1"), "valueString": self.quantity.1}],
                        "value": self.quantity.0,
                    },
                },
            });
            if let Some(plan) = based_on {
                resource["basedOn"] = json!([{"reference": format!("MedicationRequest/{plan}")}]);
            }
            resource
        };
        let mut resources = vec![
            statement,
            request(
                &plan_id,
                "plan",
                &self.start,
                effective,
                plan_extensions,
                None,
            ),
            json!({
                "resourceType": "Medication",
                "id": medication_id,
                "meta": {"profile": [format!("{SD}CareConnect-GPC-Medication-1")]},
                "code": self.medication.to_fhir(),
            }),
        ];
        if include_issues {
            for issue in &self.issues {
                let end = day_of(&issue.date)
                    .map(|d| d + i64::from(issue.days))
                    .map(|d| {
                        let (y, m, dd) = carehub_fhir::datetime::civil_from_days(d);
                        format!("{y:04}-{m:02}-{dd:02}")
                    });
                let mut period = json!({"start": issue.date});
                if let Some(end) = end {
                    period["end"] = json!(end);
                }
                let id = format!("{}-issue-{}", self.id, issue.id);
                resources.push(request(
                    &id,
                    "order",
                    &issue.date,
                    period,
                    vec![prescription_type(&self.prescription_type)],
                    Some(&plan_id),
                ));
            }
        }
        resources
    }
}

impl Immunisation {
    fn to_resource(&self, patient: &str) -> Value {
        json!({
            "resourceType": "Immunization",
            "id": self.id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-Immunization-1")]},
            "extension": [
                {"url": "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-DateRecorded-1", "valueDateTime": self.recorded},
                {"url": "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-VaccinationProcedure-1",
                 "valueCodeableConcept": self.procedure.to_fhir()},
            ],
            "identifier": identifier(patient, &self.id),
            "status": "completed",
            "notGiven": !self.given,
            "vaccineCode": self.vaccine.to_fhir(),
            "patient": {"reference": format!("Patient/{patient}")},
            "date": self.date,
            "primarySource": true,
            "practitioner": [{
                "role": {"coding": [{"system": "http://hl7.org/fhir/v2/0443", "code": "EP", "display": "Entering Provider"}]},
                "actor": {"reference": format!("Practitioner/{}", self.recorder)},
            }],
        })
    }
}

impl Observation {
    fn to_resource(&self, patient: &str) -> Value {
        let mut resource = json!({
            "resourceType": "Observation",
            "id": self.id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-Observation-1")]},
            "identifier": identifier(patient, &self.id),
            "status": "final",
            "code": self.code.to_fhir(),
            "subject": {"reference": format!("Patient/{patient}")},
            "issued": self.issued,
            "performer": [{"reference": format!("Practitioner/{}", self.performer)}],
        });
        if let Some(effective) = &self.effective {
            resource["effectiveDateTime"] = json!(effective);
        }
        if let Some((value, unit, code)) = &self.value {
            resource["valueQuantity"] = json!({"value": serde_json::Number::from_string_unchecked(value.clone()),
                                               "unit": unit, "system": "http://unitsofmeasure.org", "code": code});
        }
        resource
    }
}

impl Problem {
    fn matches(&self, filters: &[ProblemFilter]) -> bool {
        filters.iter().any(|f| {
            f.active.is_none_or(|a| a == self.active) && f.major.is_none_or(|m| m == self.major)
        })
    }

    fn to_resource(&self, patient: &str) -> Value {
        let mut extension = vec![json!({
            "url": "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-ProblemSignificance-1",
            "valueCode": if self.major { "major" } else { "minor" },
        })];
        extension.extend(self.related.iter().map(|item| json!({
            "url": "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-RelatedClinicalContent-1",
            "valueReference": {"reference": item},
        })));
        let mut resource = json!({
            "resourceType": "Condition",
            "id": self.id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-ProblemHeader-Condition-1")]},
            "extension": extension,
            "identifier": identifier(patient, &self.id),
            "clinicalStatus": if self.active { "active" } else { "inactive" },
            "category": [{"coding": [{"system": "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-ConditionCategory-1",
                                      "code": "problem-list-item", "display": "Problem List Item"}]}],
            "code": self.code.to_fhir(),
            "subject": {"reference": format!("Patient/{patient}")},
            "onsetDateTime": self.onset,
            "assertedDate": self.asserted,
            "asserter": {"reference": format!("Practitioner/{}", self.asserter)},
        });
        if let Some(ended) = &self.ended {
            resource["abatementDateTime"] = json!(ended);
        }
        resource
    }
}

impl Consultation {
    fn encounter(&self, patient: &str) -> Value {
        let day = self.start.get(..10).unwrap_or(&self.start);
        json!({
            "resourceType": "Encounter",
            "id": self.id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-Encounter-1")]},
            "text": {"status": "generated",
                     "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{} on {day}</div>", self.kind)},
            "identifier": identifier(patient, &self.id),
            "status": "finished",
            "type": [{"text": self.kind}],
            "subject": {"reference": format!("Patient/{patient}")},
            "participant": [{"individual": {"reference": format!("Practitioner/{}", self.clinician)}}],
            "period": {"start": self.start, "end": self.end},
        })
    }
}

/// A List of a consultation's structure (the consultation, or one of its topics).
fn structure_list(
    patient: &str,
    id: &str,
    encounter: &str,
    (title, code, display): (&str, &str, &str),
    items: Vec<String>,
    today: &str,
) -> Value {
    json!({
        "resourceType": "List",
        "id": id,
        "meta": {"profile": [format!("{SD}CareConnect-GPC-List-1")]},
        "status": "current",
        "mode": "snapshot",
        "title": title,
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "encounter": {"reference": format!("Encounter/{encounter}")},
        "date": today,
        "orderedBy": {"coding": [{"system": "http://hl7.org/fhir/list-order", "code": "system", "display": "Sorted by System"}]},
        "entry": items.into_iter().map(|i| json!({"item": {"reference": i}})).collect::<Vec<_>>(),
    })
}

impl Investigation {
    /// The clinician who requested and filed it.
    fn filer(&self) -> &str {
        self.filed_by.as_deref().unwrap_or("1")
    }

    /// The report as GP Connect 1.6 models pathology: the DiagnosticReport (based on the test
    /// request, a ProcedureRequest), whose results are the test group (an Observation whose
    /// members are the test results, each derived from it) and the filing of the report (a
    /// "Comment note" Observation), with the specimen.
    fn resources(&self, patient: &str) -> Vec<Value> {
        let specimen_id = format!("{}-specimen", self.id);
        let request_id = format!("{}-request", self.id);
        let group_id = format!("{}-group", self.id);
        let filing_id = format!("{}-filing", self.id);
        let observation = |id: &str| {
            json!({
                "resourceType": "Observation",
                "id": id,
                "meta": {"profile": [format!("{SD}CareConnect-GPC-Observation-1")]},
                "identifier": identifier(patient, id),
            })
        };
        let mut resources = vec![json!({
            "resourceType": "DiagnosticReport",
            "id": self.id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-DiagnosticReport-1")]},
            "identifier": identifier(patient, &self.id),
            "basedOn": [{"reference": format!("ProcedureRequest/{request_id}")}],
            "status": "final",
            "category": {"coding": [{"system": "http://hl7.org/fhir/v2/0074", "code": "LAB", "display": "Laboratory"}]},
            "code": {"coding": [{"system": SNOMED, "code": "721981007", "display": "Diagnostic studies report"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "issued": self.issued,
            "performer": [{"actor": {"reference": format!("Organization/{}", self.laboratory)}}],
            "specimen": [{"reference": format!("Specimen/{specimen_id}")}],
            "result": [
                {"reference": format!("Observation/{group_id}")},
                {"reference": format!("Observation/{filing_id}")},
            ],
        })];
        resources.push(json!({
            "resourceType": "ProcedureRequest",
            "id": request_id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-ProcedureRequest-1")]},
            "identifier": identifier(patient, &request_id),
            "status": "active",
            "intent": "order",
            "code": self.code.to_fhir(),
            "subject": {"reference": format!("Patient/{patient}")},
            "requester": {"agent": {"reference": format!("Practitioner/{}", self.filer())}},
            "performer": {"reference": format!("Organization/{}", self.laboratory)},
        }));
        resources.push(json!({
            "resourceType": "Specimen",
            "id": specimen_id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-Specimen-1")]},
            "identifier": identifier(patient, &specimen_id),
            "status": "available",
            "type": {"coding": [{"system": SNOMED, "code": self.specimen.0, "display": self.specimen.1}], "text": self.specimen.1},
            "subject": {"reference": format!("Patient/{patient}")},
            "collection": {"collectedDateTime": self.collected},
        }));
        let mut group = observation(&group_id);
        group["status"] = json!("final");
        group["code"] = self.code.to_fhir();
        group["subject"] = json!({"reference": format!("Patient/{patient}")});
        group["effectiveDateTime"] = json!(self.collected);
        group["issued"] = json!(self.issued);
        group["performer"] = json!([{"reference": format!("Organization/{}", self.laboratory)}]);
        group["specimen"] = json!({"reference": format!("Specimen/{specimen_id}")});
        group["related"] = self
            .results
            .iter()
            .map(|r| json!({"type": "has-member", "target": {"reference": format!("Observation/{}", r.id)}}))
            .collect();
        resources.push(group);
        let mut filing = observation(&filing_id);
        filing["status"] = json!("unknown");
        filing["code"] = json!({"coding": [{"system": SNOMED, "code": "37331000000100", "display": "Comment note"}]});
        filing["subject"] = json!({"reference": format!("Patient/{patient}")});
        filing["effectiveDateTime"] = json!(self.issued);
        filing["issued"] = json!(self.issued);
        filing["performer"] = json!([{"reference": format!("Practitioner/{}", self.filer())}]);
        if let Some(comment) = &self.filing_comment {
            filing["comment"] = json!(comment);
        }
        resources.push(filing);
        for result in &self.results {
            let (value, unit, code) = &result.value;
            let mut resource = observation(&result.id);
            resource["status"] = json!("final");
            resource["code"] = result.code.to_fhir();
            resource["subject"] = json!({"reference": format!("Patient/{patient}")});
            resource["effectiveDateTime"] = json!(self.collected);
            resource["issued"] = json!(self.issued);
            resource["performer"] =
                json!([{"reference": format!("Organization/{}", self.laboratory)}]);
            resource["valueQuantity"] = json!({"value": serde_json::Number::from_string_unchecked(value.clone()),
                                               "unit": unit, "system": "http://unitsofmeasure.org", "code": code});
            resource["specimen"] = json!({"reference": format!("Specimen/{specimen_id}")});
            resource["referenceRange"] = json!([{"text": result.range}]);
            resource["related"] = json!([{"type": "derived-from", "target": {"reference": format!("Observation/{group_id}")}}]);
            resources.push(resource);
        }
        resources
    }
}

impl Referral {
    fn to_resource(&self, patient: &str) -> Value {
        json!({
            "resourceType": "ReferralRequest",
            "id": self.id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-ReferralRequest-1")]},
            "identifier": identifier(patient, &self.id),
            "status": "unknown",
            "intent": "order",
            "priority": self.priority(),
            "specialty": {"text": self.specialty},
            "subject": {"reference": format!("Patient/{patient}")},
            "authoredOn": self.authored,
            "requester": {"agent": {"reference": format!("Practitioner/{}", self.requester)}},
            "recipient": [{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": self.recipient.0},
                           "display": self.recipient.1}],
            "reasonCode": [self.reason.to_fhir()],
            "description": self.description,
        })
    }
}

impl DiaryEntry {
    fn to_resource(&self, patient: &str) -> Value {
        json!({
            "resourceType": "ProcedureRequest",
            "id": self.id,
            "meta": {"profile": [format!("{SD}CareConnect-GPC-ProcedureRequest-1")]},
            "identifier": identifier(patient, &self.id),
            "status": "active",
            "intent": "plan",
            "code": self.code.to_fhir(),
            "subject": {"reference": format!("Patient/{patient}")},
            "occurrenceDateTime": self.due,
            "authoredOn": self.authored,
            "requester": {"agent": {"reference": format!("Practitioner/{}", self.requester)}},
        })
    }
}

/// What a structured record answer holds: Lists, clinical resources, and the practitioners the
/// clinical resources name.
#[derive(Debug, Default)]
pub struct Sections {
    pub lists: Vec<Value>,
    pub resources: Vec<Value>,
    pub practitioners: Vec<String>,
    /// Organisations the resources name (laboratories), by logical id.
    pub organisations: Vec<String>,
    /// `{type}/{id}` of every resource added, so that adding stays linear in a large record.
    added: std::collections::HashSet<String>,
}

impl Sections {
    /// Adds a resource once, however many lists name it.
    fn add(&mut self, resource: Value) {
        let key = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap_or_default(),
            resource["id"].as_str().unwrap_or_default()
        );
        if self.added.insert(key) {
            self.resources.push(resource);
        }
    }

    /// Notes a practitioner the resources name.
    fn name(&mut self, who: &str) {
        if !self.practitioners.iter().any(|p| p == who) {
            self.practitioners.push(who.to_owned());
        }
    }
}

/// The secondary lists of the items linked to problems: (resource type, code, title).
const SECONDARY_LISTS: [(&str, &str, &str); 6] = [
    (
        "AllergyIntolerance",
        "problems-allergies-related-to-problems",
        "Problems - allergies related to problems",
    ),
    (
        "MedicationRequest",
        "problems-medications-related-to-problems",
        "Problems - medications related to problems",
    ),
    (
        "Immunization",
        "problems-immunisations-related-to-problems",
        "Problems - immunisations related to problems",
    ),
    (
        "Observation",
        "problems-uncategorised-data-related-to-problems",
        "Problems - uncategorised data related to problems",
    ),
    (
        "ReferralRequest",
        "problems-referrals-related-to-problems",
        "Problems - referrals related to problems",
    ),
    (
        "ProcedureRequest",
        "problems-diary-entries-related-to-problems",
        "Problems - diary entries related to problems",
    ),
];

/// How a list names a linked item: a medication by its statement, anything else as linked.
fn list_entry(reference: &str) -> String {
    match reference
        .strip_prefix("MedicationRequest/")
        .and_then(|id| id.strip_suffix("-plan"))
    {
        Some(course) => format!("MedicationStatement/{course}"),
        None => reference.to_owned(),
    }
}

/// The secondary lists of the items recorded in consultations: (resource type, code, title).
const CONTAINED_LISTS: [(&str, &str, &str); 6] = [
    (
        "AllergyIntolerance",
        "consultations-allergies-contained-in-consultations",
        "Consultations - allergies contained in consultations",
    ),
    (
        "MedicationRequest",
        "consultations-medications-contained-in-consultations",
        "Consultations - medications contained in consultations",
    ),
    (
        "Immunization",
        "consultations-immunisations-contained-in-consultations",
        "Consultations - immunisations contained in consultations",
    ),
    (
        "Observation",
        "consultations-uncategorised-data-contained-in-consultations",
        "Consultations - uncategorised data contained in consultations",
    ),
    (
        "ReferralRequest",
        "consultations-referrals-contained-in-consultations",
        "Consultations - referrals contained in consultations",
    ),
    (
        "ProcedureRequest",
        "consultations-diary-entries-contained-in-consultations",
        "Consultations - diary entries contained in consultations",
    ),
];

/// A secondary list: coded from `GPConnect-SecondaryListValues-1`, titled with its display.
fn secondary_list(
    patient: &str,
    (title, code): (&str, &str),
    items: Vec<String>,
    warnings: Warnings,
    today: &str,
) -> Value {
    let mut resource = list(patient, (title, code), items, warnings, today);
    resource["code"] = json!({"coding": [{
        "system": "https://fhir.hl7.org.uk/STU3/CodeSystem/GPConnect-SecondaryListValues-1",
        "code": code,
        "display": title,
    }]});
    resource
}

/// The options of a request, area by area.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub allergies: Option<AllergyOptions>,
    pub medication: Option<MedicationOptions>,
    pub immunisations: Option<ImmunisationOptions>,
    pub uncategorised: Option<DayRange>,
    pub referrals: Option<DayRange>,
    pub investigations: Option<DayRange>,
    pub consultations: Option<ConsultationOptions>,
    pub diary: Option<Option<i64>>,
    pub problems: Option<Vec<ProblemFilter>>,
    /// A migration that asked for sensitive information: confidential items come too.
    pub include_confidential: bool,
}

impl Selection {
    /// Everything, as a migration to the patient's new practice takes it.
    pub fn full_record(include_confidential: bool) -> Selection {
        Selection {
            allergies: Some(AllergyOptions {
                include_resolved: true,
            }),
            medication: Some(MedicationOptions {
                include_issues: true,
                from: None,
            }),
            immunisations: Some(ImmunisationOptions {
                include_not_given: true,
                include_status: true,
            }),
            uncategorised: Some(DayRange::default()),
            referrals: Some(DayRange::default()),
            investigations: Some(DayRange::default()),
            consultations: Some(ConsultationOptions::default()),
            diary: Some(None),
            problems: Some(vec![ProblemFilter::default()]),
            include_confidential,
        }
    }

    /// Whether an item marked `confidential` is withheld.
    fn withholds(&self, confidential: bool) -> bool {
        confidential && !self.include_confidential
    }
}

impl ClinicalRecord {
    /// What was entered on or after `day` (days since 1970): while a transferred record is
    /// still arriving, Access Record HTML shows only what the new practice recorded.
    pub fn entered_since(&self, day: i64) -> ClinicalRecord {
        let since = |text: &str| day_of(text).is_some_and(|d| d >= day);
        let mut medication: Vec<MedicationCourse> = self
            .medication
            .iter()
            .filter(|c| since(&c.start))
            .cloned()
            .collect();
        for course in &mut medication {
            course.issues.retain(|i| since(&i.date));
        }
        ClinicalRecord {
            id: self.id.clone(),
            no_known_allergies: self.no_known_allergies.clone().filter(|d| since(d)),
            allergies: keep(&self.allergies, |a| since(&a.asserted)),
            medication,
            immunisations: keep(&self.immunisations, |i| since(&i.recorded)),
            observations: keep(&self.observations, |o| since(&o.issued)),
            referrals: keep(&self.referrals, |r| since(&r.authored)),
            diary: keep(&self.diary, |d| since(&d.authored)),
            problems: keep(&self.problems, |p| since(&p.asserted)),
            investigations: keep(&self.investigations, |i| since(&i.issued)),
            consultations: keep(&self.consultations, |c| since(&c.start)),
            administrative: keep(&self.administrative, |a| since(&a.date)),
        }
    }

    /// The resources of one item by its reference (`MedicationRequest/2-m1-plan`), and who
    /// recorded it; nothing for an item withheld or not held.
    fn item(&self, reference: &str, selection: &Selection) -> Option<(Vec<Value>, String)> {
        let patient = self.id.as_str();
        let (kind, id) = reference.split_once('/')?;
        match kind {
            "AllergyIntolerance" => self
                .allergies
                .iter()
                .find(|a| a.id == id && a.ended.is_none() && !selection.withholds(a.confidential))
                .map(|a| (vec![a.to_resource(patient)], a.recorder.clone())),
            // Problems link a medication through its authorisation (the plan).
            "MedicationRequest" => self
                .medication
                .iter()
                .find(|m| {
                    id.strip_suffix("-plan") == Some(m.id.as_str())
                        && !selection.withholds(m.confidential)
                })
                .map(|m| (m.resources(patient, true), m.recorder.clone())),
            "Immunization" => self
                .immunisations
                .iter()
                .find(|i| i.id == id)
                .map(|i| (vec![i.to_resource(patient)], i.recorder.clone())),
            "Observation" => self
                .observations
                .iter()
                .find(|o| o.id == id && !selection.withholds(o.confidential))
                .map(|o| (vec![o.to_resource(patient)], o.performer.clone())),
            "ReferralRequest" => self
                .referrals
                .iter()
                .find(|r| r.id == id)
                .map(|r| (vec![r.to_resource(patient)], r.requester.clone())),
            "ProcedureRequest" => self
                .diary
                .iter()
                .find(|d| d.id == id)
                .map(|d| (vec![d.to_resource(patient)], d.requester.clone())),
            _ => None,
        }
    }

    /// The Lists and resources `selection` asks for; `today` is the answer's date
    /// (`YYYY-MM-DD`). Items linked to the problems returned come with them, on secondary
    /// lists by kind; problems linked to the items returned come too, on the list of linked
    /// problems.
    pub fn sections(&self, selection: &Selection, warnings: Warnings, today: &str) -> Sections {
        let patient = self.id.as_str();
        let mut out = Sections::default();
        // Every item on a primary list, for the problems linked to them.
        let mut returned: Vec<String> = Vec::new();
        if let Some(options) = selection.allergies {
            let hidden = self
                .allergies
                .iter()
                .any(|a| selection.withholds(a.confidential) && a.ended.is_none());
            let active: Vec<&Allergy> = self
                .allergies
                .iter()
                .filter(|a| !selection.withholds(a.confidential) && a.ended.is_none())
                .collect();
            let mut items: Vec<String> = active
                .iter()
                .map(|a| format!("AllergyIntolerance/{}", a.id))
                .collect();
            for allergy in &active {
                out.add(allergy.to_resource(patient));
                out.name(&allergy.recorder);
            }
            if let Some(asserted) = self
                .no_known_allergies
                .as_ref()
                .filter(|_| active.is_empty() && !hidden)
            {
                let nka = Allergy {
                    id: "nka".into(),
                    code: Concept::new("716186003", "No known allergy"),
                    drug: false,
                    onset: None,
                    asserted: asserted.clone(),
                    ended: None,
                    reaction: None,
                    confidential: false,
                    recorder: self
                        .allergies
                        .first()
                        .map(|a| a.recorder.clone())
                        .unwrap_or_else(|| "1".into()),
                };
                items.push("AllergyIntolerance/nka".into());
                out.name(&nka.recorder);
                out.add(nka.to_resource(patient));
            }
            returned.extend(items.iter().cloned());
            out.lists.push(list(
                patient,
                ("Allergies and adverse reactions", "886921000000105"),
                items,
                Warnings {
                    confidential_excluded: hidden,
                    ..warnings
                },
                today,
            ));
            if options.include_resolved {
                let hidden = self
                    .allergies
                    .iter()
                    .any(|a| selection.withholds(a.confidential) && a.ended.is_some());
                let ended: Vec<&Allergy> = self
                    .allergies
                    .iter()
                    .filter(|a| !selection.withholds(a.confidential) && a.ended.is_some())
                    .collect();
                let mut ended_list = list(
                    patient,
                    ("Ended allergies", "1103671000000101"),
                    ended.iter().map(|a| format!("#{}", a.id)).collect(),
                    Warnings {
                        confidential_excluded: hidden,
                        ..warnings
                    },
                    today,
                );
                if !ended.is_empty() {
                    ended_list["contained"] =
                        ended.iter().map(|a| a.to_resource(patient)).collect();
                }
                for allergy in &ended {
                    out.name(&allergy.recorder);
                }
                out.lists.push(ended_list);
            }
        }
        if let Some(options) = selection.medication {
            let hidden = self
                .medication
                .iter()
                .any(|m| selection.withholds(m.confidential));
            let courses: Vec<&MedicationCourse> = self
                .medication
                .iter()
                .filter(|m| {
                    !selection.withholds(m.confidential)
                        && options.from.is_none_or(|day| m.active_on_or_after(day))
                })
                .collect();
            let items: Vec<String> = courses
                .iter()
                .map(|m| format!("MedicationStatement/{}", m.id))
                .collect();
            returned.extend(items.iter().cloned());
            out.lists.push(list(
                patient,
                ("Medications and medical devices", "933361000000108"),
                items,
                Warnings {
                    confidential_excluded: hidden,
                    ..warnings
                },
                today,
            ));
            for course in courses {
                for resource in course.resources(patient, options.include_issues) {
                    out.add(resource);
                }
                out.name(&course.recorder);
            }
        }
        if let Some(options) = selection.immunisations {
            let given: Vec<&Immunisation> = self
                .immunisations
                .iter()
                .filter(|i| i.given || options.include_not_given)
                .collect();
            let items: Vec<String> = given
                .iter()
                .map(|i| format!("Immunization/{}", i.id))
                .collect();
            returned.extend(items.iter().cloned());
            out.lists.push(list(
                patient,
                ("Immunisations", "1102181000000102"),
                items,
                warnings,
                today,
            ));
            for immunisation in given {
                out.add(immunisation.to_resource(patient));
                out.name(&immunisation.recorder);
            }
        }
        if let Some(range) = selection.uncategorised {
            let hidden = self
                .observations
                .iter()
                .any(|o| selection.withholds(o.confidential));
            let found: Vec<&Observation> = self
                .observations
                .iter()
                .filter(|o| {
                    !selection.withholds(o.confidential)
                        && range.holds(o.effective.as_deref().and_then(day_of))
                })
                .collect();
            let items: Vec<String> = found
                .iter()
                .map(|o| format!("Observation/{}", o.id))
                .collect();
            returned.extend(items.iter().cloned());
            out.lists.push(list(
                patient,
                ("Uncategorised data", "826501000000100"),
                items,
                Warnings {
                    confidential_excluded: hidden,
                    ..warnings
                },
                today,
            ));
            for observation in found {
                out.add(observation.to_resource(patient));
                out.name(&observation.performer);
            }
        }
        if let Some(range) = selection.referrals {
            let found: Vec<&Referral> = self
                .referrals
                .iter()
                .filter(|r| range.holds(day_of(&r.authored)))
                .collect();
            let items: Vec<String> = found
                .iter()
                .map(|r| format!("ReferralRequest/{}", r.id))
                .collect();
            returned.extend(items.iter().cloned());
            out.lists.push(list(
                patient,
                ("Outbound referral", "792931000000107"),
                items,
                warnings,
                today,
            ));
            for referral in found {
                out.add(referral.to_resource(patient));
                out.name(&referral.requester);
            }
        }
        if let Some(range) = selection.investigations {
            let found: Vec<&Investigation> = self
                .investigations
                .iter()
                .filter(|i| range.holds(day_of(&i.issued)))
                .collect();
            let items: Vec<String> = found
                .iter()
                .map(|i| format!("DiagnosticReport/{}", i.id))
                .collect();
            returned.extend(items.iter().cloned());
            out.lists.push(list(
                patient,
                ("Investigations and results", "887191000000108"),
                items,
                warnings,
                today,
            ));
            for investigation in found {
                for resource in investigation.resources(patient) {
                    out.add(resource);
                }
                out.name(investigation.filer());
                if !out.organisations.contains(&investigation.laboratory) {
                    out.organisations.push(investigation.laboratory.clone());
                }
            }
        }
        if let Some(until) = selection.diary {
            let found: Vec<&DiaryEntry> = self
                .diary
                .iter()
                .filter(|d| until.is_none_or(|day| day_of(&d.due).is_none_or(|due| due <= day)))
                .collect();
            let items: Vec<String> = found
                .iter()
                .map(|d| format!("ProcedureRequest/{}", d.id))
                .collect();
            returned.extend(items.iter().cloned());
            out.lists.push(list(
                patient,
                ("Patient recall administration", "714311000000108"),
                items,
                warnings,
                today,
            ));
            for entry in found {
                out.add(entry.to_resource(patient));
                out.name(&entry.requester);
            }
        }
        if let Some(options) = selection.consultations {
            let mut found: Vec<&Consultation> = self
                .consultations
                .iter()
                .filter(|c| {
                    options
                        .range
                        .from
                        .is_none_or(|f| day_of(&c.start).is_some_and(|d| d >= f))
                })
                .filter(|c| {
                    options
                        .range
                        .to
                        .is_none_or(|t| day_of(&c.end).is_some_and(|d| d <= t))
                })
                .collect();
            found.sort_by(|a, b| b.start.cmp(&a.start));
            if let Some(n) = options.most_recent {
                found.truncate(n);
            }
            out.lists.push(list(
                patient,
                ("List of consultations", "1149501000000101"),
                found
                    .iter()
                    .map(|c| format!("Encounter/{}", c.id))
                    .collect(),
                warnings,
                today,
            ));
            let mut contained: Vec<(String, Vec<String>)> = Vec::new();
            for consultation in found {
                out.add(consultation.encounter(patient));
                out.name(&consultation.clinician);
                let mut topics = Vec::new();
                // The list entries of recorded items: each item comes too, and goes on the
                // secondary list of its kind.
                let mut entries_of = |references: &[String], out: &mut Sections| {
                    let mut items = Vec::new();
                    for reference in references {
                        if let Some((resources, who)) = self.item(reference, selection) {
                            for resource in resources {
                                out.add(resource);
                            }
                            out.name(&who);
                            let entry = list_entry(reference);
                            let kind = reference.split('/').next().unwrap_or_default();
                            match contained.iter_mut().find(|(k, _)| k == kind) {
                                Some((_, all)) => all.push(entry.clone()),
                                None => contained.push((kind.to_owned(), vec![entry.clone()])),
                            }
                            items.push(entry);
                        }
                    }
                    items
                };
                for topic in &consultation.topics {
                    let mut items = entries_of(&topic.items, &mut out);
                    for heading in &topic.headings {
                        let heading_items = entries_of(&heading.items, &mut out);
                        // Empty headings are left out.
                        if heading_items.is_empty() {
                            continue;
                        }
                        out.lists.push(structure_list(
                            patient,
                            &heading.id,
                            &consultation.id,
                            (&heading.title, "24781000000107", "Category (EHR)"),
                            heading_items,
                            today,
                        ));
                        items.push(format!("List/{}", heading.id));
                    }
                    let mut topic_list = structure_list(
                        patient,
                        &topic.id,
                        &consultation.id,
                        (&topic.title, "25851000000105", "Topic (EHR)"),
                        items,
                        today,
                    );
                    if let Some(problem) = &topic.problem
                        && self
                            .problems
                            .iter()
                            .any(|p| &p.id == problem && !selection.withholds(p.confidential))
                    {
                        // A complex extension, `target` first, as consumers read it.
                        topic_list["extension"] = json!([{
                            "url": "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-RelatedProblemHeader-1",
                            "extension": [
                                {"url": "target", "valueReference": {"reference": format!("Condition/{problem}")}},
                                {"url": "type", "valueCode": "child"},
                            ],
                        }]);
                    }
                    out.lists.push(topic_list);
                    topics.push(format!("List/{}", topic.id));
                }
                out.lists.push(structure_list(
                    patient,
                    &format!("{}-consultation", consultation.id),
                    &consultation.id,
                    (&consultation.kind, "325851000000107", "Consultation"),
                    topics,
                    today,
                ));
            }
            for (kind, code, title) in CONTAINED_LISTS {
                if let Some((_, items)) = contained.iter().find(|(k, _)| k == kind) {
                    out.lists.push(secondary_list(
                        patient,
                        (title, code),
                        items.clone(),
                        warnings,
                        today,
                    ));
                }
            }
        }
        let visible: Vec<&Problem> = self
            .problems
            .iter()
            .filter(|p| !selection.withholds(p.confidential))
            .collect();
        let mut on_primary_list: Vec<&str> = Vec::new();
        if let Some(filters) = &selection.problems {
            let hidden = self
                .problems
                .iter()
                .any(|p| selection.withholds(p.confidential));
            let matching: Vec<&Problem> = visible
                .iter()
                .copied()
                .filter(|p| p.matches(filters))
                .collect();
            out.lists.push(list(
                patient,
                ("Problems", "717711000000103"),
                matching
                    .iter()
                    .map(|p| format!("Condition/{}", p.id))
                    .collect(),
                Warnings {
                    confidential_excluded: hidden,
                    ..warnings
                },
                today,
            ));
            for problem in &matching {
                out.add(problem.to_resource(patient));
                out.name(&problem.asserter);
                on_primary_list.push(&problem.id);
            }
            for (kind, code, title) in SECONDARY_LISTS {
                let mut items: Vec<String> = Vec::new();
                for reference in matching.iter().flat_map(|p| p.related.iter()) {
                    let entry = list_entry(reference);
                    if !reference.starts_with(&format!("{kind}/")) || items.contains(&entry) {
                        continue;
                    }
                    if let Some((resources, who)) = self.item(reference, selection) {
                        for resource in resources {
                            out.add(resource);
                        }
                        out.name(&who);
                        items.push(entry);
                    }
                }
                if !items.is_empty() {
                    out.lists.push(secondary_list(
                        patient,
                        (title, code),
                        items,
                        warnings,
                        today,
                    ));
                }
            }
        }
        let linked: Vec<&Problem> = visible
            .iter()
            .copied()
            .filter(|p| {
                !on_primary_list.contains(&p.id.as_str())
                    && p.related.iter().any(|r| returned.contains(&list_entry(r)))
            })
            .collect();
        if !linked.is_empty() {
            out.lists.push(secondary_list(
                patient,
                (
                    "Problems - linked problems not relating to the primary query",
                    "problems-linked-problems-not-relating-to-the-primary-query",
                ),
                linked
                    .iter()
                    .map(|p| format!("Condition/{}", p.id))
                    .collect(),
                warnings,
                today,
            ));
            for problem in linked {
                out.add(problem.to_resource(patient));
                out.name(&problem.asserter);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_record_in_transit_shows_what_the_new_practice_entered() {
        let today = carehub_fhir::datetime::days_from_civil(2026, 12, 1);
        let record = crate::seed::records(today)
            .into_iter()
            .find(|r| r.id == "2")
            .expect("patient2");
        let since = carehub_fhir::datetime::days_from_civil(2026, 1, 1);
        let recent = record.entered_since(since);
        assert!(
            recent
                .observations
                .iter()
                .all(|o| o.issued.as_str() >= "2026-01-01")
        );
        assert!(!recent.observations.is_empty());
        assert!(recent.allergies.is_empty(), "asserted in 2004 and 2012");
        assert_eq!(recent.administrative.len(), 1);
        // A course started before keeps nothing; one started since keeps its issues.
        assert!(
            recent
                .medication
                .iter()
                .all(|c| c.start.as_str() >= "2026-01-01")
        );
        assert!(recent.medication.iter().all(|c| !c.issues.is_empty()));
    }

    use super::*;

    fn course(id: &str, kind: &str, start: &str, end: Option<&str>) -> MedicationCourse {
        MedicationCourse {
            id: id.into(),
            medication: Concept::new("322236009", "Paracetamol 500mg tablets"),
            prescription_type: kind.into(),
            start: start.into(),
            end: end.map(str::to_owned),
            status: if end.is_some() {
                "completed".into()
            } else {
                "active".into()
            },
            dosage: "Two tablets up to four times a day".into(),
            quantity: (100, "tablet".into()),
            repeats_allowed: (kind != "acute").then_some(6),
            issues: vec![MedicationIssue {
                id: "1".into(),
                date: start.into(),
                days: 28,
            }],
            prescribed_elsewhere: false,
            confidential: false,
            recorder: "1".into(),
            stop_reason: None,
        }
    }

    #[test]
    fn medication_is_active_by_the_spec_rules() {
        let day = day_of("2026-06-01").unwrap_or_default();
        assert!(
            course("a", "repeat", "2020-01-01", None).active_on_or_after(day),
            "an open repeat"
        );
        assert!(
            !course("b", "acute", "2020-01-01", None).active_on_or_after(day),
            "an old open acute"
        );
        assert!(course("c", "acute", "2026-06-02", None).active_on_or_after(day));
        assert!(
            course("d", "repeat", "2020-01-01", Some("2026-06-01")).active_on_or_after(day),
            "ends on the day"
        );
        assert!(!course("e", "repeat", "2020-01-01", Some("2026-05-31")).active_on_or_after(day));
    }

    #[test]
    fn empty_lists_say_why_and_confidential_items_are_warned_of() {
        let mut record = ClinicalRecord {
            id: "2".into(),
            ..ClinicalRecord::default()
        };
        let selection = Selection {
            uncategorised: Some(DayRange::default()),
            ..Selection::default()
        };
        let empty = record.sections(&selection, Warnings::default(), "2026-12-01");
        assert_eq!(
            empty.lists[0]["emptyReason"]["coding"][0]["code"],
            "no-content-recorded"
        );
        assert_eq!(
            empty.lists[0]["note"][0]["text"],
            "Information not available"
        );
        record.observations.push(Observation {
            id: "o1".into(),
            code: Concept::new("162864005", "Body mass index 30+ - obesity"),
            effective: Some("2026-01-01".into()),
            issued: "2026-01-01T10:00:00+00:00".into(),
            value: None,
            confidential: true,
            performer: "1".into(),
        });
        let warned = record.sections(&selection, Warnings::default(), "2026-12-01");
        assert_eq!(
            warned.lists[0]["extension"][1]["valueCode"],
            "confidential-items"
        );
        assert!(warned.resources.is_empty());
    }
}
