//! Appointments: booking one or more adjacent slots of a schedule, the GPConnect-Appointment-1
//! view, and the two changes a consumer may make, amend (description and comment only) and
//! cancel (status and reason only). A change that touches anything else is refused, as the
//! spec requires, by comparing the request with the appointment as the provider holds it.

use carehub_fhir::datetime::{DateKind, PartialDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::clock;
use super::error::{GpcError, SpineCode};
use super::schedule::{Schedule, Slot};

const PROFILE_APPOINTMENT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1";
/// `Extension-GPConnect-BookingOrganisation-1`.
pub const EXTENSION_BOOKING_ORGANISATION: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1";
/// `Extension-GPConnect-AppointmentCancellationReason-1`.
pub const EXTENSION_CANCELLATION_REASON: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1";

/// The longest description and comment a consumer may send (never truncated).
pub const MAX_DESCRIPTION: usize = 100;
pub const MAX_COMMENT: usize = 500;

/// Elements a booking may not carry.
const FORBIDDEN_ON_BOOK: [&str; 6] = [
    "reason",
    "specialty",
    "appointmentType",
    "indication",
    "supportingInformation",
    "incomingReferral",
];

/// Whether an appointment stands or was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppointmentStatus {
    Booked,
    Cancelled,
}

/// An appointment as the GP system holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpAppointment {
    pub id: String,
    pub status: AppointmentStatus,
    /// The slots it holds, in time order, all of one schedule.
    pub slots: Vec<String>,
    pub schedule: String,
    pub start: i64,
    pub end: i64,
    pub patient: String,
    pub location: String,
    pub practitioner: Option<String>,
    pub healthcare_service: Option<String>,
    pub description: String,
    pub comment: Option<String>,
    /// As the consumer sent it.
    pub created: String,
    /// The booking organisation, as the contained Organization the consumer sent.
    pub booking_organisation: Value,
    pub cancellation_reason: Option<String>,
    /// Copied from the schedule when booked.
    pub practitioner_role: (String, String),
    pub delivery_channel: String,
    pub session_type: String,
    pub slot_type: String,
}

fn invalid(why: impl Into<String>) -> GpcError {
    GpcError::invalid_resource(why)
}

/// An appointment's description and comment, within their limits (never truncated).
fn texts(appointment: &Value) -> Result<(String, Option<String>), GpcError> {
    let description = appointment
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let comment = appointment
        .get("comment")
        .and_then(Value::as_str)
        .map(str::to_owned);
    text_limits(&description, comment.as_deref())?;
    Ok((description, comment))
}

fn text_limits(description: &str, comment: Option<&str>) -> Result<(), GpcError> {
    if description.trim().is_empty() {
        return Err(invalid("Appointment.description is required"));
    }
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(invalid(format!(
            "Appointment.description is {} characters; at most {MAX_DESCRIPTION} are allowed",
            description.chars().count()
        )));
    }
    if let Some(comment) = comment
        && comment.chars().count() > MAX_COMMENT
    {
        return Err(invalid(format!(
            "Appointment.comment is {} characters; at most {MAX_COMMENT} are allowed",
            comment.chars().count()
        )));
    }
    Ok(())
}

fn instant(appointment: &Value, element: &str) -> Result<i64, GpcError> {
    let text = appointment
        .get(element)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("Appointment.{element} is required")))?;
    let parsed = PartialDateTime::parse(text, DateKind::Instant)
        .map_err(|e| invalid(format!("Appointment.{element} '{text}': {e}")))?;
    Ok(parsed.range().0)
}

/// The logical id of a relative reference `{kind}/{id}`; absolute and contained references
/// are not references to this provider's resources.
fn local_id<'a>(reference: &'a str, kind: &str) -> Option<&'a str> {
    let id = reference.strip_prefix(kind)?.strip_prefix('/')?;
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then_some(id)
}

/// What a booking asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingRequest {
    pub slots: Vec<String>,
    pub start: i64,
    pub end: i64,
    pub patient: String,
    pub location: String,
    pub practitioner: Option<String>,
    pub description: String,
    pub comment: Option<String>,
    pub created: String,
    pub booking_organisation: Value,
}

/// Reads `POST /Appointment`'s body. Anything the spec forbids or requires is checked here;
/// whether the slots and patient exist is the caller's to check.
pub fn parse_booking(appointment: &Value) -> Result<BookingRequest, GpcError> {
    if appointment.get("resourceType").and_then(Value::as_str) != Some("Appointment") {
        return Err(invalid("The body must be an Appointment"));
    }
    for element in FORBIDDEN_ON_BOOK {
        if appointment.get(element).is_some() {
            return Err(invalid(format!(
                "Appointment.{element} may not be sent when booking"
            )));
        }
    }
    if appointment.get("status").and_then(Value::as_str) != Some("booked") {
        return Err(invalid("Appointment.status must be 'booked'"));
    }
    let start = instant(appointment, "start")?;
    let end = instant(appointment, "end")?;
    let slots: Vec<String> = appointment
        .get("slot")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let reference = s
                .get("reference")
                .and_then(Value::as_str)
                .unwrap_or_default();
            local_id(reference, "Slot")
                .map(str::to_owned)
                .ok_or_else(|| {
                    invalid(format!(
                        "'{reference}' is not a reference to a slot of this provider (Slot/{{id}})"
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    if slots.is_empty() {
        return Err(invalid("Appointment.slot is required"));
    }
    let mut patient = None;
    let mut location = None;
    let mut practitioner = None;
    for participant in appointment
        .get("participant")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let reference = participant
            .pointer("/actor/reference")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(id) = local_id(reference, "Patient") {
            patient = Some(id.to_owned());
        } else if let Some(id) = local_id(reference, "Location") {
            location = Some(id.to_owned());
        } else if let Some(id) = local_id(reference, "Practitioner") {
            practitioner = Some(id.to_owned());
        } else {
            return Err(invalid(format!(
                "Participant '{reference}' is not a Patient, Location or Practitioner of this provider"
            )));
        }
    }
    let patient = patient.ok_or_else(|| invalid("A Patient participant is required"))?;
    let location = location.ok_or_else(|| invalid("A Location participant is required"))?;
    let (description, comment) = texts(appointment)?;
    let created = appointment
        .get("created")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("Appointment.created is required"))?
        .to_owned();
    let booking_organisation = booking_organisation(appointment)?;
    Ok(BookingRequest {
        slots,
        start,
        end,
        patient,
        location,
        practitioner,
        description,
        comment,
        created,
        booking_organisation,
    })
}

/// The contained Organization the booking-organisation extension points at, with the ODS
/// code, name and telephone the spec requires.
fn booking_organisation(appointment: &Value) -> Result<Value, GpcError> {
    let reference = appointment
        .get("extension")
        .and_then(Value::as_array)
        .and_then(|e| {
            e.iter().find(|e| {
                e.get("url").and_then(Value::as_str) == Some(EXTENSION_BOOKING_ORGANISATION)
            })
        })
        .and_then(|e| e.pointer("/valueReference/reference"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("The booking organisation extension is required"))?;
    let id = reference.strip_prefix('#').ok_or_else(|| {
        invalid(format!(
            "The booking organisation must be a contained resource ('#id'), not '{reference}'"
        ))
    })?;
    let organisation = appointment
        .get("contained")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter().find(|r| {
                r.get("resourceType").and_then(Value::as_str) == Some("Organization")
                    && r.get("id").and_then(Value::as_str) == Some(id)
            })
        })
        .ok_or_else(|| invalid(format!("No contained Organization has id '{id}'")))?;
    let has_ods = organisation
        .get("identifier")
        .and_then(Value::as_array)
        .is_some_and(|ids| {
            ids.iter().any(|i| {
                i.get("system").and_then(Value::as_str) == Some(super::SYSTEM_ODS)
                    && i.get("value").is_some()
            })
        });
    if !has_ods {
        return Err(invalid("The booking organisation must have an ODS code"));
    }
    for element in ["name", "telecom"] {
        if organisation.get(element).is_none() {
            return Err(invalid(format!(
                "The booking organisation must have a {element}"
            )));
        }
    }
    Ok(organisation.clone())
}

/// Checks the slots a booking names against their schedule: one schedule, contiguous, the
/// appointment spanning exactly them, at the schedule's location, and in the future.
pub fn check_slots(
    request: &BookingRequest,
    schedule: &Schedule,
    slots: &[Slot],
    now: i64,
) -> Result<(), GpcError> {
    for pair in slots.windows(2) {
        if pair[0].end != pair[1].start {
            return Err(invalid(
                "Slots booked together must follow one another without a gap",
            ));
        }
    }
    let (Some(first), Some(last)) = (slots.first(), slots.last()) else {
        return Err(invalid("Appointment.slot is required"));
    };
    if request.start != first.start || request.end != last.end {
        return Err(invalid(format!(
            "Appointment.start and end must be those of its slots: {} to {}",
            clock::format_uk(first.start),
            clock::format_uk(last.end)
        )));
    }
    if first.start <= now {
        return Err(invalid("Only future appointments can be booked"));
    }
    if request.location != schedule.location {
        return Err(invalid(format!(
            "The slots are at Location/{}, not Location/{}",
            schedule.location, request.location
        )));
    }
    if let Some(practitioner) = &request.practitioner
        && schedule.practitioner.as_ref() != Some(practitioner)
    {
        return Err(invalid(format!(
            "Practitioner/{practitioner} does not hold these slots"
        )));
    }
    Ok(())
}

impl GpAppointment {
    /// The appointment a valid booking makes.
    pub fn book(id: String, request: BookingRequest, schedule: &Schedule) -> GpAppointment {
        GpAppointment {
            id,
            status: AppointmentStatus::Booked,
            slots: request.slots,
            schedule: schedule.id.clone(),
            start: request.start,
            end: request.end,
            patient: request.patient,
            location: request.location,
            practitioner: schedule.practitioner.clone(),
            healthcare_service: schedule.healthcare_service.clone(),
            description: request.description,
            comment: request.comment,
            created: request.created,
            booking_organisation: request.booking_organisation,
            cancellation_reason: None,
            practitioner_role: schedule.practitioner_role.clone(),
            delivery_channel: schedule.delivery_channel.clone(),
            session_type: schedule.session_type.clone(),
            slot_type: schedule.slot_type.clone(),
        }
    }

    /// As GPConnect-Appointment-1 at store `version`.
    pub fn to_resource(&self, version: i64) -> Value {
        let organisation_id = self
            .booking_organisation
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("1");
        let mut extensions = vec![
            json!({"url": EXTENSION_BOOKING_ORGANISATION, "valueReference": {"reference": format!("#{organisation_id}")}}),
            json!({"url": super::schedule::EXTENSION_PRACTITIONER_ROLE, "valueCodeableConcept": {"coding": [{
                "system": "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-SDSJobRoleName-1",
                "code": self.practitioner_role.0, "display": self.practitioner_role.1}]}}),
            json!({"url": super::schedule::EXTENSION_DELIVERY_CHANNEL, "valueCode": self.delivery_channel}),
        ];
        if let Some(reason) = &self.cancellation_reason {
            extensions.push(json!({"url": EXTENSION_CANCELLATION_REASON, "valueString": reason}));
        }
        let mut participants = vec![
            json!({"actor": {"reference": format!("Patient/{}", self.patient)}, "status": "accepted"}),
            json!({"actor": {"reference": format!("Location/{}", self.location)}, "status": "accepted"}),
        ];
        if let Some(practitioner) = &self.practitioner {
            participants.push(json!({"actor": {"reference": format!("Practitioner/{practitioner}")}, "status": "accepted"}));
        }
        if let Some(service) = &self.healthcare_service {
            participants.push(json!({"actor": {"reference": format!("HealthcareService/{service}")}, "status": "accepted"}));
        }
        let mut resource = json!({
            "resourceType": "Appointment",
            "id": self.id,
            "meta": {"versionId": version.to_string(), "profile": [PROFILE_APPOINTMENT]},
            "contained": [self.booking_organisation],
            "extension": extensions,
            "status": match self.status {
                AppointmentStatus::Booked => "booked",
                AppointmentStatus::Cancelled => "cancelled",
            },
            "serviceCategory": {"text": self.session_type},
            "serviceType": [{"text": self.slot_type}],
            "description": self.description,
            "start": clock::format_uk(self.start),
            "end": clock::format_uk(self.end),
            "slot": self.slots.iter().map(|s| json!({"reference": format!("Slot/{s}")})).collect::<Vec<_>>(),
            "created": self.created,
            "participant": participants,
        });
        if let Some(comment) = &self.comment {
            resource["comment"] = json!(comment);
        }
        resource
    }

    /// Whether it is today or later (UK local), which read, amend and cancel require.
    pub fn is_current(&self, now: i64) -> bool {
        clock::uk_day(self.start) >= clock::uk_day(now)
    }
}

/// `resource` without what a change may touch, with start and end as instants, so that two
/// forms of the same appointment compare equal.
fn comparable(resource: &Value, may_change: &[&str]) -> Map<String, Value> {
    let mut map = resource.as_object().cloned().unwrap_or_default();
    for key in ["meta", "text"].iter().chain(may_change) {
        map.remove(*key);
    }
    for element in ["start", "end"] {
        if let Some(text) = map.get(element).and_then(Value::as_str)
            && let Ok(parsed) = PartialDateTime::parse(text, DateKind::Instant)
        {
            map.insert(element.to_owned(), json!(parsed.range().0));
        }
    }
    if let Some(Value::Array(extensions)) = map.get_mut("extension") {
        extensions.retain(|e| {
            e.get("url").and_then(Value::as_str) != Some(EXTENSION_CANCELLATION_REASON)
        });
    }
    map
}

/// The first element in which `incoming` differs from `held`.
fn first_difference(held: &Map<String, Value>, incoming: &Map<String, Value>) -> Option<String> {
    held.keys()
        .chain(incoming.keys())
        .find(|key| held.get(*key) != incoming.get(*key))
        .cloned()
}

fn cancellation_reason(resource: &Value) -> Option<&Value> {
    resource
        .get("extension")
        .and_then(Value::as_array)?
        .iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(EXTENSION_CANCELLATION_REASON))
}

fn check_changeable(
    held: &GpAppointment,
    incoming: &Value,
    id: &str,
    now: i64,
) -> Result<(), GpcError> {
    if incoming.get("id").and_then(Value::as_str) != Some(id) {
        return Err(invalid(format!(
            "The Appointment's id must be '{id}', as in the URL"
        )));
    }
    if held.status == AppointmentStatus::Cancelled {
        return Err(invalid("A cancelled appointment cannot be changed"));
    }
    if !held.is_current(now) {
        return Err(invalid("Only future appointments can be changed"));
    }
    Ok(())
}

/// Serves either PUT: the optional `serviceCategory` and `serviceType` may be left out.
fn optional_elements(incoming: &Value) -> Vec<&'static str> {
    ["serviceCategory", "serviceType"]
        .into_iter()
        .filter(|e| incoming.get(*e).is_none())
        .collect()
}

/// An amend: only `description` and `comment` may differ from the held appointment.
pub fn amend(
    held: &GpAppointment,
    version: i64,
    incoming: &Value,
    now: i64,
) -> Result<GpAppointment, GpcError> {
    check_changeable(held, incoming, &held.id, now)?;
    if cancellation_reason(incoming).is_some() {
        return Err(invalid(
            "An amend may not carry a cancellation reason; cancel the appointment instead",
        ));
    }
    let mut may_change = vec!["description", "comment"];
    may_change.extend(optional_elements(incoming));
    if let Some(element) = first_difference(
        &comparable(&held.to_resource(version), &may_change),
        &comparable(incoming, &may_change),
    ) {
        return Err(invalid(format!(
            "Appointment.{element} may not be changed by an amend; only description and comment may"
        )));
    }
    let (description, comment) = texts(incoming)?;
    Ok(GpAppointment {
        description,
        comment,
        ..held.clone()
    })
}

/// A cancel: only `status` (to `cancelled`) and the cancellation reason may change.
pub fn cancel(
    held: &GpAppointment,
    version: i64,
    incoming: &Value,
    now: i64,
) -> Result<GpAppointment, GpcError> {
    check_changeable(held, incoming, &held.id, now)?;
    if incoming.get("status").and_then(Value::as_str) != Some("cancelled") {
        return Err(invalid(
            "A cancellation sets Appointment.status to 'cancelled'",
        ));
    }
    let reason = cancellation_reason(incoming)
        .and_then(|e| e.get("valueString"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(format!(
                "A cancellation needs the extension {EXTENSION_CANCELLATION_REASON}"
            ))
        })?;
    if reason.trim().is_empty() {
        return Err(GpcError::new(
            SpineCode::InvalidParameter,
            "The cancellation reason is empty",
        ));
    }
    let mut may_change = vec!["status"];
    may_change.extend(optional_elements(incoming));
    if let Some(element) = first_difference(
        &comparable(&held.to_resource(version), &may_change),
        &comparable(incoming, &may_change),
    ) {
        return Err(invalid(format!(
            "Appointment.{element} may not be changed by a cancellation; only status and the reason may"
        )));
    }
    Ok(GpAppointment {
        status: AppointmentStatus::Cancelled,
        cancellation_reason: Some(reason.to_owned()),
        ..held.clone()
    })
}

/// The dates of a patient's appointments search: `start=geYYYY-MM-DD&start=leYYYY-MM-DD`,
/// exactly one of each, dates only, not in the past, in order. Returns local days.
pub fn parse_retrieve(query: &[(String, String)], today: i64) -> Result<(i64, i64), GpcError> {
    let starts: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "start")
        .map(|(_, v)| v.as_str())
        .collect();
    let bad = |why: String| GpcError::invalid_parameter(why);
    let [a, b] = starts.as_slice() else {
        return Err(bad(
            "Send 'start=ge{date}' and 'start=le{date}', once each".into()
        ));
    };
    let (ge, le) = match (a.get(..2), b.get(..2)) {
        (Some("ge"), Some("le")) => (&a[2..], &b[2..]),
        (Some("le"), Some("ge")) => (&b[2..], &a[2..]),
        _ => {
            return Err(bad(format!(
                "'start={a}' and 'start={b}' must be one 'ge' and one 'le'"
            )));
        }
    };
    let day = |text: &str| -> Result<i64, GpcError> {
        let parsed = PartialDateTime::parse(text, DateKind::Date)
            .map_err(|e| bad(format!("'{text}': {e}")))?;
        if text.len() != 10 {
            return Err(bad(format!("'{text}' must be a full date, YYYY-MM-DD")));
        }
        Ok(carehub_fhir::datetime::days_from_civil(
            parsed.year,
            parsed.month,
            parsed.day,
        ))
    };
    let (from, to) = (day(ge)?, day(le)?);
    if from < today {
        return Err(bad(format!(
            "The range starts in the past ({ge}); only future appointments are returned"
        )));
    }
    if to < from {
        return Err(bad("The range ends before it starts".into()));
    }
    Ok((from, to))
}
