//! Worklists (A008): which referrals each list holds for the caller's organisation, the
//! filters of provider lists, and the `eRS-FetchWorklist-List-1` view.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value as Json;

use super::access::Caller;
use super::codes::{self, BusinessFunction};
use super::error::ErsError;
use super::params::Params;
use super::referral::{NHS_NUMBER_SYSTEM, Referral, State};
use super::service::{SDS_USER_SYSTEM, SERVICE_SYSTEM};

const SD: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/";
const LIST_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1";
const ASSIGNED_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AssignedIndicator-1";

/// A worklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Referrer: referrals still needing a referral letter.
    LettersOutstanding,
    /// Referrer: rejected, or returned with a triage response.
    RejectedTriageResponse,
    /// Referrer: assessed, cancelled by the provider, or did not attend.
    AssessmentReturnedCancelledDna,
    /// Referrer: bookable, not booked (awaiting triage, deferred, appointment cancelled).
    AwaitingBooking,
    /// Provider: booked and triage referrals to review.
    ReferralsForReview,
    /// Provider: deferred to the provider for want of slots.
    AppointmentSlotIssues,
}

impl ListType {
    const ALL: [(ListType, &'static str, &'static str); 6] = [
        (
            ListType::LettersOutstanding,
            "LETTERS_OUTSTANDING",
            "LettersOutstanding",
        ),
        (
            ListType::RejectedTriageResponse,
            "REJECTED_TRIAGE_RESPONSE",
            "RejectedTriageResponse",
        ),
        (
            ListType::AssessmentReturnedCancelledDna,
            "ASSESSMENT_RETURNED_CANCELLED_DNA",
            "AssessmentReturnedCancelledDna",
        ),
        (
            ListType::AwaitingBooking,
            "AWAITING_BOOKING",
            "AwaitingBooking",
        ),
        (
            ListType::ReferralsForReview,
            "REFERRALS_FOR_REVIEW",
            "ReferralsforReview",
        ),
        (
            ListType::AppointmentSlotIssues,
            "APPOINTMENT_SLOT_ISSUES",
            "AppointmentSlotIssues",
        ),
    ];

    fn parse(code: &str) -> Result<ListType, ErsError> {
        ListType::ALL
            .iter()
            .find(|(_, c, _)| *c == code)
            .map(|(t, _, _)| *t)
            .ok_or_else(|| {
                let allowed: Vec<&str> = ListType::ALL.iter().map(|(_, c, _)| *c).collect();
                ErsError::invalid_code("listType", code, &allowed)
            })
    }

    fn item_extension(self) -> String {
        let name = ListType::ALL
            .iter()
            .find(|(t, _, _)| *t == self)
            .map(|(_, _, n)| *n)
            .unwrap_or_default();
        format!("{SD}Extension-eRS-{name}-WorkListItem-1")
    }

    fn for_provider(self) -> bool {
        matches!(
            self,
            ListType::ReferralsForReview | ListType::AppointmentSlotIssues
        )
    }
}

/// The worklists `referral` is on, with the organisation each is for, whatever the filters:
/// what the store indexes a referral under, so that fetching a list reads only its referrals.
pub fn memberships(referral: &Referral) -> Vec<(&'static str, String)> {
    let mut organisations = vec![referral.referrer_organisation.clone()];
    if let Some(provider) = &referral.selected_provider {
        organisations.push(provider.clone());
    }
    let mut found = Vec::new();
    for (list, code, _) in ListType::ALL {
        let unfiltered = Request {
            list,
            service: None,
            specialty: None,
            clinician_assigned: None,
            clinician: None,
        };
        for organisation in &organisations {
            if unfiltered.holds(referral, organisation)
                && !found.contains(&(code, organisation.to_ascii_uppercase()))
            {
                found.push((code, organisation.to_ascii_uppercase()));
            }
        }
    }
    found
}

/// A worklist request, read and checked against the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Which list.
    pub list: ListType,
    /// Only this service.
    pub service: Option<String>,
    /// Only this specialty.
    pub specialty: Option<String>,
    /// Only referrals with (`Some(true)`) or without a named clinician.
    pub clinician_assigned: Option<bool>,
    /// Only this named clinician.
    pub clinician: Option<String>,
}

fn assigned(params: &Params<'_>, name: &str) -> Result<Option<bool>, ErsError> {
    let Some(value) = params.value(name, "CodeableConcept")? else {
        return Ok(None);
    };
    match value.pointer("/coding/0/code").and_then(Json::as_str) {
        Some("ASSIGNED") => Ok(Some(true)),
        Some("NOT_ASSIGNED") => Ok(Some(false)),
        Some(other) => Err(ErsError::invalid_code(
            name,
            other,
            &["ASSIGNED", "NOT_ASSIGNED"],
        )),
        None => Err(ErsError::missing(&format!(
            "{name}.coding[0].code ({ASSIGNED_SYSTEM})"
        ))),
    }
}

/// The patients a provider's list holds once each in `contained`, however many of their
/// referrals it lists.
#[derive(Debug, Default)]
struct Contained<'r> {
    ids: std::collections::HashSet<String>,
    patients: Vec<ContainedPatient<'r>>,
}

impl Request {
    /// Reads an `eRS-FetchWorklist-Parameters-1` for `caller`.
    pub fn read(body: &Json, caller: &Caller) -> Result<Request, ErsError> {
        let params = Params::read(
            body,
            &[
                "listType",
                "service",
                "specialtyAssignedIndicator",
                "specialty",
                "location",
                "clinicianAssignedIndicator",
                "clinician",
            ],
        )?;
        let list = params
            .value("listType", "CodeableConcept")?
            .ok_or_else(|| ErsError::missing("parameter listType"))?;
        let coding = list
            .pointer("/coding/0")
            .ok_or_else(|| ErsError::missing("listType.coding"))?;
        let coding = super::params::Coding::read(coding, "listType")?;
        coding.check_system("listType", LIST_SYSTEM)?;
        let list = ListType::parse(coding.code)?;
        let service = params.identifier("service")?.map(|(_, id)| id.to_owned());
        let specialty = params
            .value("specialty", "CodeableConcept")?
            .and_then(|v| v.pointer("/coding/0/code"))
            .and_then(Json::as_str)
            .map(str::to_owned);
        let clinician_assigned = assigned(&params, "clinicianAssignedIndicator")?;
        let clinician = params.identifier("clinician")?.map(|(_, id)| id.to_owned());
        if clinician.is_some() && clinician_assigned != Some(true) {
            return Err(ErsError::rule(
                "INAPPROPRIATE_VALUE",
                "clinician may only be given with clinicianAssignedIndicator ASSIGNED",
            ));
        }
        assigned(&params, "specialtyAssignedIndicator")?;
        let filtered = service.is_some()
            || specialty.is_some()
            || clinician_assigned.is_some()
            || params.value("location", "Identifier")?.is_some();
        let provider = caller.function.is_provider();
        if list.for_provider() != provider {
            return Err(ErsError::forbidden(format!(
                "{} is a {} worklist; {} cannot fetch it",
                coding.code,
                if list.for_provider() {
                    "provider"
                } else {
                    "referrer"
                },
                caller.function.code()
            )));
        }
        if !list.for_provider() && filtered {
            return Err(ErsError::rule(
                "FIELD_NOT_PERMITTED",
                "referrer worklists take no filters",
            ));
        }
        if caller.function == BusinessFunction::ProviderAuthorisedApplication && service.is_none() {
            return Err(ErsError::rule(
                "MISSING_VALUE",
                "an application must filter the worklist by service (parameter service)",
            ));
        }
        Ok(Request {
            list,
            service,
            specialty,
            clinician_assigned,
            clinician,
        })
    }

    /// The list's code.
    pub fn list_code(&self) -> &'static str {
        ListType::ALL
            .iter()
            .find(|(t, _, _)| *t == self.list)
            .map(|(_, c, _)| *c)
            .unwrap_or_default()
    }

    /// Whether `referral` is on this list for `organisation` (for every organisation's lists
    /// when it is [`super::access::EVERY_ORGANISATION`], the sandbox's caller).
    pub fn holds(&self, referral: &Referral, organisation: &str) -> bool {
        let at = |ods: &str| {
            organisation == super::access::EVERY_ORGANISATION
                || ods.eq_ignore_ascii_case(organisation)
        };
        let on_list = match self.list {
            ListType::ReferralsForReview => {
                referral.selected_provider.as_deref().is_some_and(at)
                    && (referral.state == State::AwaitingTriage
                        || (referral.state == State::Booked && !referral.reviewed))
            }
            ListType::AppointmentSlotIssues => {
                referral.selected_provider.as_deref().is_some_and(at)
                    && referral.state == State::DeferredToProvider
            }
            ListType::LettersOutstanding => {
                at(&referral.referrer_organisation)
                    && referral.letter_intention == "NEED_TO_ADD_LATER"
                    && referral.state != State::CancelledReferral
            }
            ListType::RejectedTriageResponse => {
                at(&referral.referrer_organisation)
                    && matches!(referral.state, State::Rejected | State::TriageResponse)
            }
            ListType::AssessmentReturnedCancelledDna => {
                at(&referral.referrer_organisation)
                    && (matches!(
                        referral.state,
                        State::AssessmentResult | State::DidNotAttend
                    ) || (referral.state == State::CancelledReferral
                        && referral.selected_provider.is_some()
                        && referral.reason.as_ref().is_some_and(|r| {
                            codes::REFERRAL_CANCELLATION_REASONS
                                .iter()
                                .any(|(c, _, _, by)| {
                                    *c == r.code && *by == codes::CancelledBy::Provider
                                })
                        })))
            }
            ListType::AwaitingBooking => {
                at(&referral.referrer_organisation)
                    && matches!(
                        referral.state,
                        State::NotBooked
                            | State::AwaitingTriage
                            | State::DeferredToProvider
                            | State::ApptCancelledByPatient
                            | State::ApptCancelledByProvider
                    )
            }
        };
        on_list
            && self
                .service
                .as_ref()
                .is_none_or(|s| referral.selected.as_ref() == Some(s))
            && self
                .specialty
                .as_ref()
                .is_none_or(|s| referral.criteria.specialty.as_ref() == Some(s))
            && self
                .clinician_assigned
                .is_none_or(|a| a == referral.criteria.named_clinician.is_some())
            && self
                .clinician
                .as_ref()
                .is_none_or(|c| referral.criteria.named_clinician.as_ref() == Some(c))
    }

    /// The `eRS-FetchWorklist-List-1` of `referrals` (each with its version), each item with
    /// the fields its list type carries. Built as typed parts and written straight out: a list
    /// can hold tens of thousands of referrals, and a tree of JSON values for it cost most of
    /// the request.
    pub fn to_fhir<'r>(&self, referrals: &[(&'r Referral, i64)], stu3_base: &str) -> View<'r> {
        let mut contained = Contained::default();
        let specialty_system = format!("{stu3_base}/CodeSystem/SPECIALTY");
        let entries = referrals
            .iter()
            .map(|(referral, version)| {
                let parts = if self.list.for_provider() {
                    self.provider_item(referral, *version, &specialty_system, &mut contained)
                } else {
                    self.referrer_item(referral, stu3_base)
                };
                (referral.ubrn.as_str(), parts)
            })
            .collect();
        View {
            item_url: self.list.item_extension(),
            entries,
            contained: contained.patients,
        }
    }

    fn priority(referral: &Referral) -> Part<'_> {
        Part::new(
            "priority",
            Value::Concept(Coding::new(
                codes::PRIORITY_SYSTEM,
                &referral.criteria.priority,
            )),
        )
    }

    /// REFERRALS_FOR_REVIEW and APPOINTMENT_SLOT_ISSUES items.
    fn provider_item<'r>(
        &self,
        referral: &'r Referral,
        version: i64,
        specialty_system: &str,
        contained: &mut Contained<'r>,
    ) -> Vec<Part<'r>> {
        let specialty = referral.criteria.specialty.as_deref().unwrap_or_default();
        let mut parts = vec![
            Request::priority(referral),
            Part::new(
                "specialty",
                Value::Concept(Coding::new(specialty_system.to_owned(), specialty)),
            ),
        ];
        if self.list == ListType::ReferralsForReview {
            let id = format!("Patient-{}", referral.patient);
            if contained.ids.insert(id.clone()) {
                contained.patients.push(ContainedPatient {
                    id: id.clone(),
                    patient: &referral.patient,
                });
            }
            parts.push(Part::new("patient", Value::Contained(format!("#{id}"))));
        } else {
            parts.push(Part::new(
                "patient",
                Value::Identifier(NHS_NUMBER_SYSTEM, &referral.patient, None),
            ));
        }
        if let Some(clinician) = &referral.criteria.named_clinician {
            parts.push(Part::new(
                "namedClinician",
                Value::Identifier(SDS_USER_SYSTEM, clinician, None),
            ));
        }
        // e-RS derives the pathway start from the referral when the referrer gave none.
        let start = referral.pathway_start.as_ref().unwrap_or(&referral.created);
        parts.push(Part::new("eReferralPathwayStart", Value::DateTime(start)));
        parts.push(Part::new("clinicalInfoPrinted", Value::Boolean(false)));
        if self.list == ListType::ReferralsForReview {
            // The specification requires the display of this coding.
            let (status, display) = if referral.reviewed {
                ("PRIORITY_AND_LETTER_CHANGED", "Priority And Letter Changed")
            } else {
                ("NEVER_REVIEWED", "Never Reviewed")
            };
            parts.push(Part::new(
                "requestContextStatus",
                Value::Concept(Coding {
                    display: Some(display),
                    ..Coding::new(
                        "https://fhir.nhs.uk/STU3/CodeSystem/eRS-RequestContextStatus-1",
                        status,
                    )
                }),
            ));
        } else if let Some(reason) = &referral.reason {
            parts.push(Part::new(
                "reason",
                Value::Concept(Coding::new(
                    "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewReason-1",
                    &reason.code,
                )),
            ));
        }
        let service = referral.selected.as_deref().unwrap_or_default();
        let name = referral
            .shortlist
            .iter()
            .find(|s| s.service == service)
            .map_or("", |s| s.name.as_str());
        parts.push(Part::new(
            "service",
            Value::Identifier(SERVICE_SYSTEM, service, Some(name)),
        ));
        if self.list == ListType::ReferralsForReview {
            parts.push(Part::new("referralRequestVersion", Value::Integer(version)));
        }
        parts
    }

    /// Items of the referrer's lists.
    fn referrer_item<'r>(&self, referral: &'r Referral, stu3_base: &str) -> Vec<Part<'r>> {
        let context = match (&referral.criteria.specialty, &referral.criteria.clinic_type) {
            (Some(s), Some(c)) => Cow::Owned(format!(
                "{} - {}",
                codes::specialty_display(s).unwrap_or(s),
                codes::clinic_type_display(c).unwrap_or(c)
            )),
            (Some(s), None) => Cow::Borrowed(codes::specialty_display(s).unwrap_or(s)),
            _ => Cow::Borrowed(
                referral
                    .criteria
                    .clinical_term
                    .as_deref()
                    .unwrap_or_default(),
            ),
        };
        let mut parts = vec![
            Part::new(
                "patient",
                Value::Identifier(NHS_NUMBER_SYSTEM, &referral.patient, None),
            ),
            Request::priority(referral),
            Part::new("referralCreated", Value::DateTime(&referral.created)),
            Part::new("clinicalContext", Value::Text(context)),
            Part::new(
                "referrer",
                Value::Identifier(SDS_USER_SYSTEM, &referral.referring_clinician, None),
            ),
        ];
        if self.list == ListType::LettersOutstanding {
            // The letter is due within the reminder period of the referral's creation.
            let due = referral.created.get(..10).unwrap_or_default();
            parts.push(Part::new("letterDue", Value::Date(due)));
            return parts;
        }
        let (state_code, state_display) = referral.state.coding();
        let updated = if referral.updated.is_empty() {
            &referral.created
        } else {
            &referral.updated
        };
        parts.push(Part::new("referralLastUpdated", Value::DateTime(updated)));
        parts.push(Part::new(
            "status",
            Value::Coding(Coding {
                system: Cow::Borrowed("https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralState-1"),
                code: state_code,
                display: Some(state_display),
            }),
        ));
        let reason_applies = match self.list {
            ListType::RejectedTriageResponse => referral.state == State::TriageResponse,
            ListType::AssessmentReturnedCancelledDna => referral.state == State::CancelledReferral,
            ListType::AwaitingBooking => matches!(
                referral.state,
                State::ApptCancelledByPatient | State::ApptCancelledByProvider
            ),
            _ => false,
        };
        if reason_applies && let Some(reason) = &referral.reason {
            let system = if reason.kind.contains("://") {
                Cow::Borrowed(reason.kind.as_str())
            } else {
                Cow::Owned(format!("{stu3_base}/CodeSystem/{}", reason.kind))
            };
            parts.push(Part::new(
                "reason",
                Value::Coding(Coding::new(system, &reason.code)),
            ));
        }
        parts
    }
}

/// A fetched worklist, ready to be written as an `eRS-FetchWorklist-List-1`.
#[derive(Debug)]
pub struct View<'r> {
    item_url: String,
    /// Each referral's UBRN and the extensions of its item.
    entries: Vec<(&'r str, Vec<Part<'r>>)>,
    contained: Vec<ContainedPatient<'r>>,
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Entries<'v, 'r>(&'v View<'r>);
        impl Serialize for Entries<'_, '_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.entries.iter().map(|(ubrn, parts)| Entry {
                    item: Reference {
                        reference: format!("ReferralRequest/{ubrn}"),
                    },
                    extension: [ItemExtension {
                        url: &self.0.item_url,
                        extension: parts,
                    }],
                }))
            }
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("resourceType", "List")?;
        map.serialize_entry(
            "meta",
            &Meta {
                profile: [concat!(
                    "https://fhir.nhs.uk/STU3/StructureDefinition/",
                    "eRS-FetchWorklist-List-1"
                )],
            },
        )?;
        map.serialize_entry("status", "current")?;
        map.serialize_entry("mode", "snapshot")?;
        map.serialize_entry("entry", &Entries(self))?;
        if !self.contained.is_empty() {
            map.serialize_entry("contained", &self.contained)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    item: Reference,
    extension: [ItemExtension<'a>; 1],
}

#[derive(Serialize)]
struct Reference {
    reference: String,
}

#[derive(Serialize)]
struct ItemExtension<'a> {
    url: &'a str,
    extension: &'a [Part<'a>],
}

#[derive(Serialize)]
struct Meta {
    profile: [&'static str; 1],
}

/// A patient held once in the list's `contained`.
#[derive(Debug)]
struct ContainedPatient<'r> {
    id: String,
    patient: &'r str,
}

impl Serialize for ContainedPatient<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("resourceType", "Patient")?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry(
            "meta",
            &Meta {
                profile: ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-Patient-1"],
            },
        )?;
        map.serialize_entry(
            "identifier",
            &[Identifier {
                system: NHS_NUMBER_SYSTEM,
                value: self.patient,
            }],
        )?;
        map.end()
    }
}

/// One extension of a worklist item: its name and a value of one FHIR type.
#[derive(Debug)]
struct Part<'r> {
    url: &'static str,
    value: Value<'r>,
}

impl<'r> Part<'r> {
    fn new(url: &'static str, value: Value<'r>) -> Part<'r> {
        Part { url, value }
    }
}

/// The values worklist items carry.
#[derive(Debug)]
enum Value<'r> {
    /// `valueCodeableConcept` with one coding.
    Concept(Coding<'r>),
    /// `valueCoding`.
    Coding(Coding<'r>),
    /// `valueReference` to a contained resource (`#id`).
    Contained(String),
    /// `valueReference` by identifier (system, value), with a display when given.
    Identifier(&'static str, &'r str, Option<&'r str>),
    /// `valueDateTime`.
    DateTime(&'r str),
    /// `valueDate`.
    Date(&'r str),
    /// `valueBoolean`.
    Boolean(bool),
    /// `valueInteger`.
    Integer(i64),
    /// `valueString`.
    Text(Cow<'r, str>),
}

#[derive(Debug, Serialize)]
struct Coding<'r> {
    system: Cow<'r, str>,
    code: &'r str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'r str>,
}

impl<'r> Coding<'r> {
    fn new(system: impl Into<Cow<'r, str>>, code: &'r str) -> Coding<'r> {
        Coding {
            system: system.into(),
            code,
            display: None,
        }
    }
}

#[derive(Serialize)]
struct Identifier<'r> {
    system: &'static str,
    value: &'r str,
}

impl Serialize for Part<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Concept<'c, 'r> {
            coding: [&'c Coding<'r>; 1],
        }
        #[derive(Serialize)]
        struct ByIdentifier<'r> {
            identifier: Identifier<'r>,
            #[serde(skip_serializing_if = "Option::is_none")]
            display: Option<&'r str>,
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("url", self.url)?;
        match &self.value {
            Value::Concept(coding) => {
                map.serialize_entry("valueCodeableConcept", &Concept { coding: [coding] })?
            }
            Value::Coding(coding) => map.serialize_entry("valueCoding", coding)?,
            Value::Contained(reference) => map.serialize_entry(
                "valueReference",
                &Reference {
                    reference: reference.clone(),
                },
            )?,
            Value::Identifier(system, value, display) => map.serialize_entry(
                "valueReference",
                &ByIdentifier {
                    identifier: Identifier { system, value },
                    display: *display,
                },
            )?,
            Value::DateTime(text) => map.serialize_entry("valueDateTime", text)?,
            Value::Date(text) => map.serialize_entry("valueDate", text)?,
            Value::Boolean(flag) => map.serialize_entry("valueBoolean", flag)?,
            Value::Integer(number) => map.serialize_entry("valueInteger", number)?,
            Value::Text(text) => map.serialize_entry("valueString", text)?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::referral::sample;

    #[test]
    fn a_review_list_contains_each_patient_once_however_many_referrals() {
        let request = Request {
            list: ListType::ReferralsForReview,
            service: None,
            specialty: None,
            clinician_assigned: None,
            clinician: None,
        };
        let referrals: Vec<Referral> = (0..3)
            .map(|n| {
                let mut referral = sample(State::AwaitingTriage);
                referral.ubrn = format!("10000000000{n}");
                // Two referrals of one patient, one of another.
                referral.patient = if n < 2 { "9912003888" } else { "9912003889" }.into();
                referral.selected = Some("20001".into());
                referral.selected_provider = Some("R1A14".into());
                referral
            })
            .collect();
        let held: Vec<(&Referral, i64)> = referrals.iter().map(|r| (r, 1)).collect();
        let list =
            serde_json::to_value(request.to_fhir(&held, "https://example.org/STU3")).unwrap();
        let contained: Vec<&str> = list["contained"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(contained, ["Patient-9912003888", "Patient-9912003889"]);
        let patients: Vec<&str> = list["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                entry["extension"][0]["extension"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|part| part["url"] == "patient")
                    .unwrap()["valueReference"]["reference"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            patients,
            [
                "#Patient-9912003888",
                "#Patient-9912003888",
                "#Patient-9912003889"
            ]
        );
    }
}
