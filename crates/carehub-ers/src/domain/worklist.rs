//! Worklists (A008): which referrals each list holds for the caller's organisation, the
//! filters of provider lists, and the `eRS-FetchWorklist-List-1` view.

use serde_json::{Value, json};

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
    match value.pointer("/coding/0/code").and_then(Value::as_str) {
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

impl Request {
    /// Reads an `eRS-FetchWorklist-Parameters-1` for `caller`.
    pub fn read(body: &Value, caller: &Caller) -> Result<Request, ErsError> {
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
            .and_then(Value::as_str)
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

    /// Whether `referral` is on this list for `organisation`.
    pub fn holds(&self, referral: &Referral, organisation: &str) -> bool {
        let at = |ods: &str| ods.eq_ignore_ascii_case(organisation);
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
    /// the fields its list type carries.
    pub fn to_fhir(&self, referrals: &[(&Referral, i64)], stu3_base: &str) -> Value {
        let mut contained = Vec::new();
        let entries: Vec<Value> = referrals
            .iter()
            .map(|(referral, version)| {
                let parts = if self.list.for_provider() {
                    self.provider_item(referral, *version, stu3_base, &mut contained)
                } else {
                    self.referrer_item(referral, stu3_base)
                };
                json!({
                    "item": {"reference": format!("ReferralRequest/{}", referral.ubrn)},
                    "extension": [{"url": self.list.item_extension(), "extension": parts}],
                })
            })
            .collect();
        let mut list = json!({
            "resourceType": "List",
            "meta": {"profile": [format!("{SD}eRS-FetchWorklist-List-1")]},
            "status": "current",
            "mode": "snapshot",
            "entry": entries,
        });
        if !contained.is_empty() {
            list["contained"] = Value::Array(contained);
        }
        list
    }

    fn priority(referral: &Referral) -> Value {
        json!({"url": "priority", "valueCodeableConcept": {"coding": [{"system": codes::PRIORITY_SYSTEM, "code": referral.criteria.priority}]}})
    }

    /// REFERRALS_FOR_REVIEW and APPOINTMENT_SLOT_ISSUES items.
    fn provider_item(
        &self,
        referral: &Referral,
        version: i64,
        stu3_base: &str,
        contained: &mut Vec<Value>,
    ) -> Vec<Value> {
        let specialty = referral.criteria.specialty.clone().unwrap_or_default();
        let mut parts = vec![
            Request::priority(referral),
            json!({"url": "specialty", "valueCodeableConcept": {"coding": [{"system": format!("{stu3_base}/CodeSystem/SPECIALTY"), "code": specialty}]}}),
        ];
        if self.list == ListType::ReferralsForReview {
            let id = format!("Patient-{}", referral.patient);
            if !contained.iter().any(|c: &Value| c["id"] == json!(id)) {
                contained.push(json!({"resourceType": "Patient", "id": id,
                    "meta": {"profile": [format!("{SD}eRS-Patient-1")]},
                    "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": referral.patient}]}));
            }
            parts
                .push(json!({"url": "patient", "valueReference": {"reference": format!("#{id}")}}));
        } else {
            parts.push(json!({"url": "patient", "valueReference": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": referral.patient}}}));
        }
        if let Some(clinician) = &referral.criteria.named_clinician {
            parts.push(json!({"url": "namedClinician", "valueReference": {"identifier": {"system": SDS_USER_SYSTEM, "value": clinician}}}));
        }
        // e-RS derives the pathway start from the referral when the referrer gave none.
        let start = referral
            .pathway_start
            .clone()
            .unwrap_or_else(|| referral.created.clone());
        parts.push(json!({"url": "eReferralPathwayStart", "valueDateTime": start}));
        parts.push(json!({"url": "clinicalInfoPrinted", "valueBoolean": false}));
        if self.list == ListType::ReferralsForReview {
            let status = if referral.reviewed {
                "PRIORITY_AND_LETTER_CHANGED"
            } else {
                "NEVER_REVIEWED"
            };
            parts.push(json!({"url": "requestContextStatus", "valueCodeableConcept": {"coding": [{
                "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-RequestContextStatus-1", "code": status}]}}));
        } else if let Some(reason) = &referral.reason {
            parts.push(json!({"url": "reason", "valueCodeableConcept": {"coding": [{
                "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewReason-1", "code": reason.code}]}}));
        }
        let service = referral.selected.clone().unwrap_or_default();
        let name = referral
            .shortlist
            .iter()
            .find(|s| s.service == service)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        parts.push(json!({"url": "service", "valueReference": {"identifier": {"system": SERVICE_SYSTEM, "value": service}, "display": name}}));
        if self.list == ListType::ReferralsForReview {
            parts.push(json!({"url": "referralRequestVersion", "valueInteger": version}));
        }
        parts
    }

    /// Items of the referrer's lists.
    fn referrer_item(&self, referral: &Referral, stu3_base: &str) -> Vec<Value> {
        let context = match (&referral.criteria.specialty, &referral.criteria.clinic_type) {
            (Some(s), Some(c)) => format!(
                "{} - {}",
                codes::specialty_display(s).unwrap_or(s),
                codes::clinic_type_display(c).unwrap_or(c)
            ),
            (Some(s), None) => codes::specialty_display(s).unwrap_or(s).to_owned(),
            _ => referral.criteria.clinical_term.clone().unwrap_or_default(),
        };
        let mut parts = vec![
            json!({"url": "patient", "valueReference": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": referral.patient}}}),
            Request::priority(referral),
            json!({"url": "referralCreated", "valueDateTime": referral.created}),
            json!({"url": "clinicalContext", "valueString": context}),
            json!({"url": "referrer", "valueReference": {"identifier": {"system": SDS_USER_SYSTEM, "value": referral.referring_clinician}}}),
        ];
        if self.list == ListType::LettersOutstanding {
            // The letter is due within the reminder period of the referral's creation.
            let due = referral.created.get(..10).unwrap_or_default().to_owned();
            parts.push(json!({"url": "letterDue", "valueDate": due}));
            return parts;
        }
        let (state_code, state_display) = referral.state.coding();
        let updated = if referral.updated.is_empty() {
            referral.created.clone()
        } else {
            referral.updated.clone()
        };
        parts.push(json!({"url": "referralLastUpdated", "valueDateTime": updated}));
        parts.push(json!({"url": "status", "valueCoding": {
            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralState-1", "code": state_code, "display": state_display}}));
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
                reason.kind.clone()
            } else {
                format!("{stu3_base}/CodeSystem/{}", reason.kind)
            };
            parts.push(
                json!({"url": "reason", "valueCoding": {"system": system, "code": reason.code}}),
            );
        }
        parts
    }
}
