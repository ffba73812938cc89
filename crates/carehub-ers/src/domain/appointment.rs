//! Appointments of referrals (A016, A038, A034): what a referrer asks for (book a slot, defer to
//! the provider, send to triage), checked against the referral and the service, and the
//! `eRS-Appointment-1` view.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::codes;
use super::error::ErsError;
use super::referral::NHS_NUMBER_SYSTEM;
use super::service::{SDS_USER_SYSTEM, SERVICE_SYSTEM};

/// The review reasons (`eRS-ReviewReason-1`).
pub const REVIEW_REASON_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewReason-1";
/// The review outcomes (`eRS-ReviewOutcome-1`).
pub const REVIEW_OUTCOME_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewOutcome-1";
/// Appointment cancellation reasons, as served by A004.
pub const APPOINTMENT_CANCELLATION_SYSTEM: &str =
    "{base}/STU3/CodeSystem/APPOINTMENT-CANCELLATION-REASON";
const PROFILES: [&str; 2] = [
    "https://fhir.nhs.uk/STU3/StructureDefinition/eRS-Appointment-1",
    "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Appointment-1",
];

/// What an appointment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A slot is booked.
    Booked,
    /// Deferred to the provider, or sent to triage: no slot yet.
    Proposed,
    /// Cancelled.
    Cancelled,
}

impl Status {
    fn code(self) -> &'static str {
        match self {
            Status::Booked => "booked",
            Status::Proposed => "proposed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// A coded reason on an appointment: a full system URL, or a reference data type served by
/// A004 (`APPOINTMENT-CANCELLATION-REASON`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// System URL or reference data type.
    pub system: String,
    /// Code.
    pub code: String,
}

/// An appointment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    /// Its id.
    pub id: String,
    /// The referral it is for.
    pub ubrn: String,
    /// The referral's version once the appointment was made.
    pub referral_version: i64,
    /// Booked, proposed or cancelled.
    pub status: Status,
    /// Why, where it is not a plain booking.
    pub reason: Option<Reason>,
    /// A comment.
    pub comment: Option<String>,
    /// The service.
    pub service: String,
    /// Its name.
    pub service_name: String,
    /// The patient's NHS number.
    pub patient: String,
    /// The booked slot.
    pub slot: Option<String>,
    /// Start and end instants of the slot.
    pub start: Option<String>,
    /// End.
    pub end: Option<String>,
    /// A named clinician (allocated clinician).
    pub clinician: Option<String>,
    /// When it was made.
    pub created: String,
}

/// What A016 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Book a slot.
    Book {
        /// The slot id.
        slot: String,
        /// The start and end the caller saw.
        start: String,
        /// End.
        end: String,
        /// The allocated clinician, when the slot's clinic has one.
        clinician: Option<String>,
    },
    /// Defer to the provider, with a review reason.
    Defer {
        /// `NO_SLOTS_AT_SERVICE`, `SLOT_NOT_AVAILABLE` or `BOOKING_ATTEMPT_PROBLEM`.
        reason: String,
        /// The slot that was not available, when given.
        slot: Option<String>,
    },
    /// Send to a triage service.
    Triage,
}

/// A016's body, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAppointment {
    /// The referral and the version the caller read.
    pub ubrn: String,
    /// Version.
    pub version: i64,
    /// The service.
    pub service: String,
    /// The patient.
    pub patient: String,
    /// What is asked.
    pub request: Request,
    /// A comment.
    pub comment: Option<String>,
}

fn text<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// `ReferralRequest/{ubrn}/_history/{version}` from `incomingReferral`.
pub fn incoming_referral(body: &Value) -> Result<(String, i64), ErsError> {
    let references = body
        .get("incomingReferral")
        .and_then(Value::as_array)
        .ok_or_else(|| ErsError::missing("incomingReferral"))?;
    let [reference] = references.as_slice() else {
        return Err(ErsError::invalid(
            "incomingReferral must hold exactly one reference",
        ));
    };
    let reference = reference
        .get("reference")
        .and_then(Value::as_str)
        .unwrap_or("");
    reference
        .strip_prefix("ReferralRequest/")
        .and_then(|rest| rest.split_once("/_history/"))
        .and_then(|(ubrn, version)| Some((ubrn.to_owned(), version.parse::<i64>().ok().filter(|&v| v >= 1)?)))
        .ok_or_else(|| {
            ErsError::invalid(format!(
                "incomingReferral '{reference}' must be ReferralRequest/{{ubrn}}/_history/{{version}}"
            ))
        })
}

/// The participant identifiers of an appointment: (system, value) pairs, and whether it is the
/// allocated clinician (type CON).
fn participants(body: &Value) -> Vec<(&str, &str, bool)> {
    body.get("participant")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|p| {
                    let identifier = p.pointer("/actor/identifier")?;
                    let system = identifier.get("system")?.as_str()?;
                    let value = identifier.get("value")?.as_str()?;
                    // `type` is an object in e-RS (a known issue), an array in FHIR STU3.
                    let code = p
                        .pointer("/type/coding/0/code")
                        .or_else(|| p.pointer("/type/0/coding/0/code"))
                        .and_then(Value::as_str);
                    Some((system, value, code == Some("CON")))
                })
                .collect()
        })
        .unwrap_or_default()
}

const ACCEPTED_KEYS: [&str; 16] = [
    "resourceType",
    "id",
    "meta",
    "language",
    "status",
    "description",
    "start",
    "end",
    "slot",
    "incomingReferral",
    "participant",
    "reason",
    "comment",
    "created",
    "text",
    "extension",
];

fn check_keys(body: &Value) -> Result<(), ErsError> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Appointment") {
        return Err(ErsError::rule(
            "INVALID_FHIR_STRUCTURE",
            "the body must be an Appointment (eRS-Appointment-1)",
        ));
    }
    if let Some(object) = body.as_object()
        && let Some(unexpected) = object.keys().find(|k| !ACCEPTED_KEYS.contains(&k.as_str()))
    {
        return Err(ErsError::rule(
            "UNEXPECTED_FIELD",
            format!("'{unexpected}' is not expected on an eRS-Appointment-1"),
        ));
    }
    Ok(())
}

impl NewAppointment {
    /// Reads an A016 body.
    pub fn read(body: &Value) -> Result<NewAppointment, ErsError> {
        check_keys(body)?;
        let (ubrn, version) = incoming_referral(body)?;
        let people = participants(body);
        let service = people
            .iter()
            .find(|(system, _, _)| *system == SERVICE_SYSTEM)
            .map(|(_, value, _)| (*value).to_owned())
            .ok_or_else(|| ErsError::missing("participant (the service, identifier system http://fhir.nhs.net/Id/ers-service)"))?;
        let patient = people
            .iter()
            .find(|(system, _, _)| *system == NHS_NUMBER_SYSTEM)
            .map(|(_, value, _)| (*value).to_owned())
            .ok_or_else(|| ErsError::missing("participant (the patient, identifier system http://fhir.nhs.net/Id/nhs-number)"))?;
        let clinician = people
            .iter()
            .find(|(system, _, con)| *system == SDS_USER_SYSTEM && *con)
            .map(|(_, value, _)| (*value).to_owned());
        let slot = body
            .pointer("/slot/0/reference")
            .and_then(Value::as_str)
            .map(|r| {
                r.strip_prefix("Slot/").map(str::to_owned).ok_or_else(|| {
                    ErsError::invalid(format!("slot reference '{r}' must be Slot/{{id}}"))
                })
            })
            .transpose()?;
        let reason = body.pointer("/reason/0/coding/0");
        let comment = text(body, "comment").map(str::to_owned);
        let request = match text(body, "status") {
            Some("booked") => {
                if reason.is_some() {
                    return Err(ErsError::rule(
                        "FIELD_NOT_PERMITTED",
                        "a booking has no reason; reasons are for deferrals and triage",
                    ));
                }
                let slot = slot.ok_or_else(|| ErsError::missing("slot"))?;
                let start = text(body, "start")
                    .ok_or_else(|| ErsError::missing("start"))?
                    .to_owned();
                let end = text(body, "end")
                    .ok_or_else(|| ErsError::missing("end"))?
                    .to_owned();
                Request::Book {
                    slot,
                    start,
                    end,
                    clinician,
                }
            }
            Some("proposed") => {
                let reason =
                    reason.ok_or_else(|| ErsError::missing("reason (eRS-ReviewReason-1)"))?;
                let coding = super::params::Coding::read(reason, "reason")?;
                coding.check_system("reason", REVIEW_REASON_SYSTEM)?;
                match coding.code {
                    "TRIAGE" => Request::Triage,
                    "NO_SLOTS_AT_SERVICE" | "SLOT_NOT_AVAILABLE" | "BOOKING_ATTEMPT_PROBLEM" => {
                        Request::Defer {
                            reason: coding.code.to_owned(),
                            slot,
                        }
                    }
                    other => {
                        return Err(ErsError::invalid_code(
                            "reason",
                            other,
                            &[
                                "TRIAGE",
                                "NO_SLOTS_AT_SERVICE",
                                "SLOT_NOT_AVAILABLE",
                                "BOOKING_ATTEMPT_PROBLEM",
                            ],
                        ));
                    }
                }
            }
            Some(other) => {
                return Err(ErsError::invalid_code(
                    "status",
                    other,
                    &["booked", "proposed"],
                ));
            }
            None => return Err(ErsError::missing("status")),
        };
        if let Some(comment) = &comment
            && comment.chars().count() > 2000
        {
            return Err(ErsError::invalid("comment: at most 2000 characters"));
        }
        Ok(NewAppointment {
            ubrn,
            version,
            service,
            patient,
            request,
            comment,
        })
    }
}

/// Reads an A034 body for appointment `id`: the cancellation reason and comment.
pub fn read_cancellation(body: &Value, id: &str) -> Result<(String, Option<String>), ErsError> {
    check_keys(body)?;
    if text(body, "id") != Some(id) {
        return Err(ErsError::invalid(format!(
            "the Appointment's id must be {id}, the id in the URL"
        )));
    }
    if text(body, "status") != Some("cancelled") {
        return Err(ErsError::rule(
            "INVALID_VALUE",
            "only cancellation is supported: status must be 'cancelled'",
        ));
    }
    let reason = body
        .pointer("/reason/0/coding/0")
        .ok_or_else(|| ErsError::missing("reason (APPOINTMENT-CANCELLATION-REASON)"))?;
    let coding = super::params::Coding::read(reason, "reason")?;
    coding.check_system("reason", APPOINTMENT_CANCELLATION_SYSTEM)?;
    // A referrer cancels with the reasons APPOINTMENT-CANCELLATION-REASON lists for
    // cancelling (not rejecting) that are still in use.
    let Some(reason) = codes::APPOINTMENT_CANCELLATION
        .iter()
        .find(|r| r.code == coding.code)
    else {
        return Err(ErsError::invalid(format!(
            "'{}' is not an appointment cancellation reason",
            coding.code
        )));
    };
    if reason.usage != Some(codes::AppointmentReasonUse::Cancel) || reason.to.is_some() {
        return Err(ErsError::rule(
            "INAPPROPRIATE_VALUE",
            format!(
                "{} is not a reason a referrer may cancel an appointment with",
                coding.code
            ),
        ));
    }
    let comment = text(body, "comment")
        .map(str::to_owned)
        .filter(|c| !c.trim().is_empty());
    if reason.comment_mandatory && comment.is_none() {
        return Err(ErsError::missing("comment"));
    }
    Ok((reason.code.to_owned(), comment))
}

impl Appointment {
    /// The `eRS-Appointment-1` view at `version`.
    pub fn to_fhir(&self, version: i64, stu3_base: &str) -> Value {
        let mut participant = vec![
            json!({"actor": {"identifier": {"system": SERVICE_SYSTEM, "value": self.service}, "display": self.service_name}, "status": "accepted"}),
            json!({"actor": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": self.patient}}, "status": "accepted"}),
        ];
        if let Some(clinician) = &self.clinician {
            participant.push(json!({
                "type": {"coding": [{"system": "http://hl7.org/fhir/ValueSet/encounter-participant-type", "code": "CON"}]},
                "actor": {"identifier": {"system": SDS_USER_SYSTEM, "value": clinician}},
                "status": "accepted"}));
        }
        let mut resource = json!({
            "resourceType": "Appointment",
            "id": self.id,
            "meta": {"versionId": version.to_string(), "profile": PROFILES},
            "language": "en",
            "status": self.status.code(),
            "description": "e-Referral Appointment",
            "created": self.created,
            "incomingReferral": [{"reference": format!("ReferralRequest/{}/_history/{}", self.ubrn, self.referral_version)}],
            "participant": participant,
        });
        if let Some(reason) = &self.reason {
            let system = if reason.system.contains("://") {
                reason.system.clone()
            } else {
                format!("{stu3_base}/CodeSystem/{}", reason.system)
            };
            resource["reason"] = json!([{"coding": [{"system": system, "code": reason.code}]}]);
        }
        if let (Some(start), Some(end)) = (&self.start, &self.end) {
            resource["start"] = json!(start);
            resource["end"] = json!(end);
        }
        if let Some(slot) = &self.slot {
            resource["slot"] = json!([{"reference": format!("Slot/{slot}")}]);
        }
        if let Some(comment) = &self.comment {
            resource["comment"] = json!(comment);
        }
        resource
    }
}
