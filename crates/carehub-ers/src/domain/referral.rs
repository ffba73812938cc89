//! Referrals: what A011 creates, the e-RS referral state machine (which actions each side may
//! take in each state, A029), and the `eRS-ReferralRequest-1` view of a referral (A005).
//!
//! **Invariant:** every change of a referral's state goes through [`Referral::apply`], which
//! refuses an action the state machine does not allow with `INVALID_REQUEST_STATE`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::access::Caller;
use super::attachment::AttachmentType;
use super::codes::{self, BusinessFunction, CancelledBy};
use super::error::ErsError;
use super::params::Params;
use super::service::{SDS_USER_SYSTEM, SERVICE_SYSTEM, SearchCriteria, Service};

/// The most services a shortlist may hold.
pub const MAX_SHORTLIST: usize = 20;
/// The NHS number identifier system, as e-RS writes it.
pub const NHS_NUMBER_SYSTEM: &str = "http://fhir.nhs.net/Id/nhs-number";
/// The UBRN identifier system.
pub const UBRN_SYSTEM: &str = "https://fhir.nhs.uk/Id/UBRN";
const PROFILE: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ReferralRequest-1";
const EXT: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-";
const DAY_MICROS: i64 = 86_400_000_000;

/// Where a referral is in its life, as `eRS-ReferralState-1` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Shortlisted, no appointment and not sent.
    NotBooked,
    /// An appointment is booked at a directly bookable service.
    Booked,
    /// The provider will arrange the appointment.
    DeferredToProvider,
    /// Sent to a triage service, waiting for review.
    AwaitingTriage,
    /// The provider returned it to the referrer with advice.
    TriageResponse,
    /// The provider reviewed it and will act on it.
    TriagedProviderToAction,
    /// The provider rejected it.
    Rejected,
    /// A provider recorded an assessment.
    AssessmentResult,
    /// The patient did not attend.
    DidNotAttend,
    /// The patient cancelled the appointment.
    ApptCancelledByPatient,
    /// The provider cancelled the appointment.
    ApptCancelledByProvider,
    /// Cancelled: nothing more can happen.
    CancelledReferral,
}

impl State {
    /// The code and display.
    pub fn coding(self) -> (&'static str, &'static str) {
        match self {
            State::NotBooked => ("NOT_BOOKED", "Not Booked"),
            State::Booked => ("BOOKED", "Booked"),
            State::DeferredToProvider => ("DEFERRED_TO_PROVIDER", "Deferred To Provider"),
            State::AwaitingTriage => ("AWAITING_TRIAGE", "Awaiting Triage"),
            State::TriageResponse => ("TRIAGE_RESPONSE", "Triage Response"),
            State::TriagedProviderToAction => {
                ("TRIAGED_PROVIDER_TO_ACTION", "Triaged - Provider To Action")
            }
            State::Rejected => ("REJECTED", "Rejected"),
            State::AssessmentResult => ("ASSESSMENT_RESULT", "Assessment Result"),
            State::DidNotAttend => ("DID_NOT_ATTEND", "Did Not Attend"),
            State::ApptCancelledByPatient => (
                "APPT_CANCELLED_BY_PATIENT",
                "Appointment Cancelled By Patient",
            ),
            State::ApptCancelledByProvider => (
                "APPT_CANCELLED_BY_PROVIDER",
                "Appointment Cancelled By Provider",
            ),
            State::CancelledReferral => ("CANCELLED_REFERRAL", "Cancelled Referral"),
        }
    }

    /// Every state, for exhaustive tests.
    pub const ALL: [State; 12] = [
        State::NotBooked,
        State::Booked,
        State::DeferredToProvider,
        State::AwaitingTriage,
        State::TriageResponse,
        State::TriagedProviderToAction,
        State::Rejected,
        State::AssessmentResult,
        State::DidNotAttend,
        State::ApptCancelledByPatient,
        State::ApptCancelledByProvider,
        State::CancelledReferral,
    ];

    /// Whether no appointment is booked or arranged and the referrer holds the referral: the
    /// states from which the referrer may rework the shortlist and book or send again.
    fn with_referrer(self) -> bool {
        matches!(
            self,
            State::NotBooked
                | State::TriageResponse
                | State::Rejected
                | State::DidNotAttend
                | State::ApptCancelledByPatient
                | State::ApptCancelledByProvider
        )
    }
}

/// What a user may do to a referral, as A029 names the actions (`Task.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A031.
    ChangeShortlist,
    /// A032 (deprecated).
    ChangeShortlistAndSendForTriage,
    /// A016.
    CreateAppointment,
    /// A036.
    CancelReferral,
    /// A034.
    CancelDirectlyBookedAppointment,
    /// A028.
    RecordReviewOutcome,
    /// A013: a provider accepts a booked referral after review (not listed by A029).
    AcceptReferral,
    /// A014: a provider rejects a referral at a bookable service (not listed by A029).
    RejectReferral,
    /// A012: the referrer replaces the referral letter files (not listed by A029).
    MaintainReferralLetter,
    /// A022: the provider cancels the booked appointment and will arrange another (not listed
    /// by A029).
    CancelAppointmentActionLater,
}

impl Action {
    /// The Task code and display.
    pub fn coding(self) -> (&'static str, &'static str) {
        match self {
            Action::ChangeShortlist => ("CHANGE_SHORTLIST", "Change Shortlist"),
            Action::ChangeShortlistAndSendForTriage => (
                "CHANGE_SHORTLIST_AND_SEND_FOR_TRIAGE",
                "Change Shortlist and Send for Triage",
            ),
            Action::CreateAppointment => ("CREATE_APPOINTMENT", "Create Appointment"),
            Action::CancelReferral => ("CANCEL_REFERRAL", "Cancel Referral"),
            Action::CancelDirectlyBookedAppointment => (
                "CANCEL_DIRECTLY_BOOKED_APPOINTMENT",
                "Cancel Directly Booked Appointment",
            ),
            Action::RecordReviewOutcome => ("RECORD_REVIEW_OUTCOME", "Record Review Outcome"),
            Action::AcceptReferral => ("ACCEPT_REFERRAL", "Accept Referral"),
            Action::RejectReferral => ("REJECT_REFERRAL", "Reject Referral"),
            Action::MaintainReferralLetter => {
                ("MAINTAIN_REFERRAL_LETTER", "Maintain Referral Letter")
            }
            Action::CancelAppointmentActionLater => (
                "CANCEL_APPOINTMENT_ACTION_LATER",
                "Cancel Appointment, Action Later",
            ),
        }
    }

    /// Whether A029 lists it: the spec's six actions for which an endpoint exists.
    pub fn listed(self) -> bool {
        !matches!(
            self,
            Action::AcceptReferral
                | Action::RejectReferral
                | Action::MaintainReferralLetter
                | Action::CancelAppointmentActionLater
        )
    }
}

/// Which side of a referral a caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The referring organisation.
    Referrer,
    /// The organisation providing the service the referral is at.
    Provider,
}

/// The actions the state machine allows `side` in `state`.
pub fn allowed(state: State, side: Side) -> Vec<Action> {
    use Action::*;
    let mut actions = allowed_by_state(state, side);
    // The referrer keeps the letter up to date for as long as the referral lives.
    if side == Side::Referrer && state != State::CancelledReferral {
        actions.push(MaintainReferralLetter);
    }
    actions
}

fn allowed_by_state(state: State, side: Side) -> Vec<Action> {
    use Action::*;
    match (side, state) {
        (_, State::CancelledReferral) => vec![],
        (Side::Referrer, s) if s.with_referrer() => {
            vec![
                ChangeShortlist,
                CreateAppointment,
                ChangeShortlistAndSendForTriage,
                CancelReferral,
            ]
        }
        (Side::Referrer, State::Booked) => vec![CancelDirectlyBookedAppointment, CancelReferral],
        (Side::Referrer, _) => vec![CancelReferral],
        (Side::Provider, State::AwaitingTriage) => vec![RecordReviewOutcome, CancelReferral],
        (Side::Provider, State::Booked) => {
            vec![
                AcceptReferral,
                RejectReferral,
                CancelAppointmentActionLater,
                CancelReferral,
            ]
        }
        (Side::Provider, State::DeferredToProvider) => {
            vec![RecordReviewOutcome, RejectReferral, CancelReferral]
        }
        (Side::Provider, State::TriagedProviderToAction | State::AssessmentResult) => {
            vec![CancelReferral]
        }
        (Side::Provider, _) => vec![],
    }
}

/// A service on a referral's shortlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortlisted {
    /// The service id.
    pub service: String,
    /// Its name when shortlisted.
    pub name: String,
    /// Its provider's ODS code.
    pub provider: String,
}

/// A coded reason for the current state, with an optional comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateReason {
    /// The reference data type (`REFERRAL-CANCELLATION-REASON`).
    pub kind: String,
    /// The code.
    pub code: String,
    /// Its display.
    pub display: String,
    /// The comment given with it.
    pub comment: Option<String>,
}

/// A referral as e-RS holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    /// The Unique Booking Reference Number: 12 digits.
    pub ubrn: String,
    /// `r.{uuid}`: the e-RS request id.
    pub request_id: String,
    /// The patient's NHS number.
    pub patient: String,
    /// Where it is in its life.
    pub state: State,
    /// Why, where a reason applies.
    pub reason: Option<StateReason>,
    /// The criteria the shortlist was chosen with.
    pub criteria: SearchCriteria,
    /// The shortlisted services.
    pub shortlist: Vec<Shortlisted>,
    /// The service it was sent to or booked at.
    pub selected: Option<String>,
    /// The provider of that service.
    pub selected_provider: Option<String>,
    /// `eRS-ReferralLetterIntention-1`.
    pub letter_intention: String,
    /// Days before the patient is reminded.
    pub reminder_days: u32,
    /// The alternate e-Referral pathway start, when the referrer gave one.
    pub pathway_start: Option<String>,
    /// The referring organisation (ODS).
    pub referrer_organisation: String,
    /// The user who created it.
    pub created_by: String,
    /// The referring clinician (SDS user id).
    pub referring_clinician: String,
    /// The organisation whose commissioning rules apply.
    pub commissioning_organisation: String,
    /// The current appointment (booked, proposed or cancelled), when one was made.
    #[serde(default)]
    pub appointment: Option<String>,
    /// Whether the provider has reviewed a booked referral (A013).
    #[serde(default)]
    pub reviewed: bool,
    /// The referral letter files (A012).
    #[serde(default)]
    pub letters: Vec<super::attachment::Attached>,
    /// Files the provider attached (with a triage outcome, A028, or cancelling an appointment
    /// to act later, A022).
    #[serde(default)]
    pub provider_files: Vec<super::attachment::Attached>,
    /// The password printed on the patient's letter (A019), with which they book or check
    /// their referral themselves.
    #[serde(default)]
    pub access_code: Option<String>,
    /// When it was created.
    #[serde(default)]
    pub created: String,
    /// When it last changed.
    #[serde(default)]
    pub updated: String,
}

/// A four-letter access code, as e-RS prints on patient letters.
fn access_code() -> String {
    // Letters that cannot be mistaken for one another when read aloud or handwritten.
    const LETTERS: &[u8] = b"abcdefghjkmnpqrstuvwxyz";
    uuid::Uuid::new_v4().as_bytes()[..4]
        .iter()
        .map(|b| LETTERS[usize::from(*b) % LETTERS.len()] as char)
        .collect()
}

/// The content of an A011 request, read and checked on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReferral {
    /// NHS number.
    pub patient: String,
    /// SDS user id of the named referring clinician (for an RCA).
    pub referring_clinician: Option<String>,
    /// The criteria the shortlist came from.
    pub criteria: SearchCriteria,
    /// Shortlisted service ids, in order.
    pub services: Vec<String>,
    /// Letter intention code.
    pub letter_intention: String,
    /// Days to first reminder.
    pub reminder_days: u32,
    /// Pathway start instant.
    pub pathway_start: Option<String>,
}

/// The letter intentions e-RS accepts.
pub const LETTER_INTENTIONS: [&str; 3] =
    ["NEED_TO_ADD_LATER", "NOT_INTENDING_TO_ADD", "ALREADY_ADDED"];

/// Reads an NHS number from an identifier, checking its check digit.
pub fn nhs_number(system: &str, value: &str) -> Result<String, ErsError> {
    if system != NHS_NUMBER_SYSTEM && system != "https://fhir.nhs.uk/Id/nhs-number" {
        return Err(ErsError::invalid(format!(
            "patient: identifier system must be {NHS_NUMBER_SYSTEM}, not '{system}'"
        )));
    }
    if !carehub_testdata::is_valid_nhs_number(value) {
        return Err(ErsError::invalid(format!(
            "patient: '{value}' is not a valid NHS number (10 digits with a correct check digit)"
        )));
    }
    Ok(value.to_owned())
}

/// A shortlist List: its criteria and service ids.
pub fn read_shortlist(
    location: &str,
    list: &Value,
) -> Result<(SearchCriteria, Vec<String>), ErsError> {
    if list.get("resourceType").and_then(Value::as_str) != Some("List") {
        return Err(ErsError::rule(
            "INVALID_FHIR_STRUCTURE",
            format!("'{location}' must be a List (eRS-Shortlist-List-1)"),
        ));
    }
    let contained = list
        .get("contained")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let reference = list
        .get("extension")
        .and_then(Value::as_array)
        .and_then(|exts| {
            exts.iter()
                .find(|e| e.get("url").and_then(Value::as_str) == Some("https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Shortlist-SearchCriteria-1"))
        })
        .and_then(|e| e.pointer("/valueReference/reference"))
        .and_then(Value::as_str)
        .ok_or_else(|| ErsError::missing(&format!("{location}/extension (Extension-eRS-Shortlist-SearchCriteria-1)")))?;
    let id = reference.strip_prefix('#').unwrap_or(reference);
    let (index, criteria) = contained
        .iter()
        .enumerate()
        .find(|(_, c)| c.get("id").and_then(Value::as_str) == Some(id))
        .ok_or_else(|| {
            ErsError::rule("REFERENCE_NOT_FOUND", format!("{location}: the search criteria '{reference}' are not among the contained resources"))
        })?;
    let criteria_location = format!("{location}/contained[{index}]");
    let params =
        Params::read(criteria, SearchCriteria::parameter_names()).map_err(|e| ErsError {
            diagnostics: format!("{criteria_location}: {}", e.diagnostics),
            ..e
        })?;
    let criteria = SearchCriteria::read(&params)?;
    let entries = list
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut services = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let identifier = entry.pointer("/item/identifier");
        let system = identifier
            .and_then(|i| i.get("system"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let value = identifier
            .and_then(|i| i.get("value"))
            .and_then(Value::as_str);
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Err(ErsError::missing(&format!(
                "{location}/entry[{i}]/item/identifier/value"
            )));
        };
        if system != SERVICE_SYSTEM {
            return Err(ErsError::invalid(format!(
                "{location}/entry[{i}]: service identifier system must be {SERVICE_SYSTEM}"
            )));
        }
        services.push(value.to_owned());
    }
    if services.is_empty() {
        return Err(ErsError::missing(&format!(
            "{location}/entry (at least one shortlisted service)"
        )));
    }
    if services.len() > MAX_SHORTLIST {
        return Err(ErsError::rule(
            "TOO_MANY_ITEMS",
            format!(
                "a shortlist holds at most {MAX_SHORTLIST} services; {} were given",
                services.len()
            ),
        ));
    }
    for (i, service) in services.iter().enumerate() {
        if services[..i].contains(service) {
            return Err(ErsError::rule(
                "DUPLICATE_SERVICE",
                format!("service {service} is shortlisted more than once"),
            ));
        }
    }
    Ok((criteria, services))
}

fn letter_and_reminder(params: &Params<'_>) -> Result<(String, u32), ErsError> {
    let intention = params
        .coding("intentionToAddReferralLetter")?
        .ok_or_else(|| ErsError::missing("parameter intentionToAddReferralLetter"))?;
    intention.check_system(
        "intentionToAddReferralLetter",
        "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralLetterIntention-1",
    )?;
    if !LETTER_INTENTIONS.contains(&intention.code) {
        return Err(ErsError::invalid_code(
            "intentionToAddReferralLetter",
            intention.code,
            &LETTER_INTENTIONS,
        ));
    }
    let days = params
        .unsigned("firstReminderLetterFollowUpDays")?
        .ok_or_else(|| ErsError::missing("parameter firstReminderLetterFollowUpDays"))?;
    let days = u32::try_from(days)
        .ok()
        .filter(|d| *d <= 365)
        .ok_or_else(|| {
            ErsError::invalid(format!(
                "firstReminderLetterFollowUpDays: {days} is more than 365 days"
            ))
        })?;
    Ok((intention.code.to_owned(), days))
}

impl NewReferral {
    /// Reads an `eRS-CreateReferral-Parameters-1`; `now` (microseconds since the epoch) bounds
    /// the pathway start: in the past, and no more than 365 days ago. The sandbox gives no
    /// `now`: its scenarios carry fixed dates that age.
    pub fn read(body: &Value, now: Option<i64>) -> Result<NewReferral, ErsError> {
        let params = Params::read(
            body,
            &[
                "patient",
                "referringClinician",
                "shortlist",
                "intentionToAddReferralLetter",
                "firstReminderLetterFollowUpDays",
                "eReferralPathwayStart",
            ],
        )?;
        let (system, value) = params
            .identifier("patient")?
            .ok_or_else(|| ErsError::missing("parameter patient"))?;
        let patient = nhs_number(system, value)?;
        let referring_clinician = match params.identifier("referringClinician")? {
            None => None,
            Some((system, value))
                if system == SDS_USER_SYSTEM || system == "https://fhir.nhs.uk/Id/sds-user-id" =>
            {
                Some(value.to_owned())
            }
            Some((system, _)) => {
                return Err(ErsError::invalid(format!(
                    "referringClinician: identifier system must be {SDS_USER_SYSTEM}, not '{system}'"
                )));
            }
        };
        let (location, list) = params
            .resource("shortlist")?
            .ok_or_else(|| ErsError::missing("parameter shortlist"))?;
        let (criteria, services) = read_shortlist(&location, list)?;
        let (letter_intention, reminder_days) = letter_and_reminder(&params)?;
        let pathway_start = match params.text("eReferralPathwayStart", "Instant")? {
            None => None,
            Some(text) => {
                let parsed = carehub_fhir::datetime::PartialDateTime::parse(
                    text,
                    carehub_fhir::datetime::DateKind::Instant,
                )
                .map_err(|e| ErsError::invalid(format!("eReferralPathwayStart: {e}")))?;
                let (at, _) = parsed.range();
                if let Some(now) = now
                    && at > now
                {
                    return Err(ErsError::rule(
                        "INAPPROPRIATE_VALUE",
                        "eReferralPathwayStart must be in the past",
                    ));
                }
                if let Some(now) = now
                    && now - at > 365 * DAY_MICROS
                {
                    return Err(ErsError::rule(
                        "INAPPROPRIATE_VALUE",
                        "eReferralPathwayStart must be no more than 365 days ago",
                    ));
                }
                Some(text.to_owned())
            }
        };
        Ok(NewReferral {
            patient,
            referring_clinician,
            criteria,
            services,
            letter_intention,
            reminder_days,
            pathway_start,
        })
    }
}

/// Checks a shortlist against the directory: every service exists and meets the criteria it
/// was chosen by. `why_not` says why a service does not meet them, or `None`.
pub fn check_shortlist<'s>(
    ids: &[String],
    directory: &'s [Service],
    why_not: impl Fn(&Service) -> Option<String>,
) -> Result<Vec<&'s Service>, ErsError> {
    ids.iter()
        .map(|id| {
            let service = directory.iter().find(|s| &s.id == id).ok_or_else(|| {
                ErsError::rule(
                    "REFERENCE_NOT_FOUND",
                    format!("service {id} is not in the e-RS directory"),
                )
            })?;
            if let Some(reason) = why_not(service) {
                return Err(ErsError::rule(
                    "SHORTLISTED_SERVICE_NOT_IN_RESULTS",
                    format!(
                        "service {id} ({}) does not satisfy the search criteria: it {reason}",
                        service.name
                    ),
                ));
            }
            Ok(service)
        })
        .collect()
}

/// Who the referring clinician is: an RC refers as themself; an RCA must name the RC, who
/// must hold that function at the caller's organisation (`is_rc_at`).
pub fn referring_clinician(
    caller: &Caller,
    named: Option<&str>,
    is_rc_at: impl Fn(&str, &str) -> bool,
) -> Result<String, ErsError> {
    match (caller.function, named) {
        (BusinessFunction::ReferringClinicianAdmin, None) => Err(ErsError::rule(
            "VALUE_IS_REQUIRED",
            "a REFERRING_CLINICIAN_ADMIN must name the referring clinician (parameter referringClinician)",
        )),
        (BusinessFunction::ReferringClinicianAdmin, Some(named)) => {
            if is_rc_at(named, &caller.organisation) {
                Ok(named.to_owned())
            } else {
                Err(ErsError::rule(
                    "REFERENCED_USER_IS_NOT_RC_AT_ORG",
                    format!(
                        "user {named} is not a Referring Clinician at {}",
                        caller.organisation
                    ),
                ))
            }
        }
        (_, Some(named)) if Some(named) != caller.user.as_deref() => Err(ErsError::rule(
            "FIELD_NOT_PERMITTED",
            "a REFERRING_CLINICIAN refers as themself; referringClinician may only be given by a REFERRING_CLINICIAN_ADMIN",
        )),
        _ => Ok(caller.user.clone().unwrap_or_default()),
    }
}

impl Referral {
    /// A new referral from a checked request.
    pub fn create(
        ubrn: String,
        new: NewReferral,
        shortlisted: &[&Service],
        caller: &Caller,
        clinician: String,
        commissioning_organisation: String,
    ) -> Referral {
        Referral {
            ubrn,
            request_id: format!("r.{}", uuid::Uuid::new_v4()),
            patient: new.patient,
            state: State::NotBooked,
            reason: None,
            criteria: new.criteria,
            shortlist: shortlisted
                .iter()
                .map(|s| Shortlisted {
                    service: s.id.clone(),
                    name: s.name.clone(),
                    provider: s.provider.clone(),
                })
                .collect(),
            selected: None,
            selected_provider: None,
            letter_intention: new.letter_intention,
            reminder_days: new.reminder_days,
            pathway_start: new.pathway_start,
            referrer_organisation: caller.organisation.clone(),
            created_by: caller.user.clone().unwrap_or_default(),
            referring_clinician: clinician,
            commissioning_organisation,
            appointment: None,
            reviewed: false,
            letters: Vec::new(),
            provider_files: Vec::new(),
            access_code: Some(access_code()),
            created: String::new(),
            updated: String::new(),
        }
    }

    /// The side `caller` is on for this referral; a caller on neither side has no legitimate
    /// relationship with it (`NO_RELATIONSHIP`).
    pub fn side_of(&self, caller: &Caller) -> Result<Side, ErsError> {
        let at = |ods: &str| caller.acts_at(ods);
        if caller.function.is_referrer() && at(&self.referrer_organisation) {
            return Ok(Side::Referrer);
        }
        if caller.function.is_provider() {
            let provides = match &self.selected_provider {
                Some(provider) => at(provider),
                // Before it is sent, a provider sees only what it is shortlisted for.
                None => self.shortlist.iter().any(|s| at(&s.provider)),
            };
            if provides {
                return Ok(Side::Provider);
            }
        }
        Err(ErsError::rule(
            "NO_RELATIONSHIP",
            format!(
                "{} at {} has no legitimate relationship with referral {}",
                caller.function.code(),
                caller.organisation,
                self.ubrn
            ),
        ))
    }

    /// The actions `caller` may take now.
    pub fn actions_for(&self, caller: &Caller) -> Result<Vec<Action>, ErsError> {
        let side = self.side_of(caller)?;
        let mut actions: Vec<Action> = allowed(self.state, side)
            .into_iter()
            .filter(|a| a.listed())
            .collect();
        // An application acting for a provider may only record review outcomes and cancel.
        if caller.function == BusinessFunction::ProviderAuthorisedApplication {
            actions.retain(|a| matches!(a, Action::RecordReviewOutcome | Action::CancelReferral));
        }
        Ok(actions)
    }

    /// Checks that `caller` may take `action` now.
    /// Adds files the provider attaches; a file already on the referral is a conflict.
    fn attach_provider_files(
        &mut self,
        files: Vec<super::attachment::Attached>,
    ) -> Result<(), ErsError> {
        for file in files {
            if self
                .letters
                .iter()
                .chain(&self.provider_files)
                .any(|held| held.file.id == file.file.id)
            {
                return Err(ErsError::rule(
                    "CONFLICTING_VALUES",
                    format!(
                        "file {} is already attached to referral {}",
                        file.file.id, self.ubrn
                    ),
                ));
            }
            self.provider_files.push(file);
        }
        Ok(())
    }

    pub fn check(&self, caller: &Caller, action: Action) -> Result<Side, ErsError> {
        let side = self.side_of(caller)?;
        let reviewed_already = action == Action::AcceptReferral && self.reviewed;
        if reviewed_already || !allowed(self.state, side).contains(&action) {
            return Err(ErsError::rule(
                "INVALID_REQUEST_STATE",
                format!(
                    "{} is not possible for referral {} in state {} (as {})",
                    action.coding().1,
                    self.ubrn,
                    self.state.coding().0,
                    caller.function.code()
                ),
            ));
        }
        Ok(side)
    }

    /// Applies a change the state machine allows.
    pub fn apply(&mut self, caller: &Caller, change: Change) -> Result<(), ErsError> {
        match change {
            Change::Shortlist {
                criteria,
                shortlisted,
                letter_intention,
                reminder_days,
            } => {
                self.check(caller, Action::ChangeShortlist)?;
                self.criteria = criteria;
                self.shortlist = shortlisted;
                self.letter_intention = letter_intention;
                self.reminder_days = reminder_days;
                self.selected = None;
                self.selected_provider = None;
                self.state = State::NotBooked;
                self.reason = None;
            }
            Change::Cancel { reason, comment } => {
                let side = self.check(caller, Action::CancelReferral)?;
                let Some((code, display, comment_required, by)) =
                    codes::REFERRAL_CANCELLATION_REASONS
                        .iter()
                        .find(|(c, ..)| *c == reason)
                else {
                    let allowed: Vec<&str> = codes::REFERRAL_CANCELLATION_REASONS
                        .iter()
                        .map(|(c, ..)| *c)
                        .collect();
                    return Err(ErsError::invalid_code(
                        "cancellationReason",
                        &reason,
                        &allowed,
                    ));
                };
                let permitted = matches!(
                    (by, side),
                    (CancelledBy::Both, _)
                        | (CancelledBy::Referrer, Side::Referrer)
                        | (CancelledBy::Provider, Side::Provider)
                );
                if !permitted {
                    return Err(ErsError::rule(
                        "INAPPROPRIATE_VALUE",
                        format!(
                            "cancellation reason {code} is not available to {}",
                            caller.function.code()
                        ),
                    ));
                }
                let comment = comment.filter(|c| !c.trim().is_empty());
                if *comment_required && comment.is_none() {
                    return Err(ErsError::rule(
                        "MISSING_VALUE",
                        format!("cancellation reason {code} needs cancellationComments"),
                    ));
                }
                if let Some(text) = &comment
                    && text.chars().count() > 2000
                {
                    return Err(ErsError::invalid(
                        "cancellationComments: at most 2000 characters",
                    ));
                }
                self.state = State::CancelledReferral;
                self.reason = Some(StateReason {
                    kind: "REFERRAL-CANCELLATION-REASON".into(),
                    code: (*code).to_owned(),
                    display: (*display).to_owned(),
                    comment,
                });
            }
            Change::Appoint {
                service,
                appointment,
                state,
                reason,
            } => {
                self.check(caller, Action::CreateAppointment)?;
                let Some(shortlisted) = self.shortlist.iter().find(|s| s.service == service) else {
                    return Err(ErsError::rule(
                        "INAPPROPRIATE_VALUE",
                        format!(
                            "service {service} is not on the shortlist of referral {}; change the shortlist first (A031)",
                            self.ubrn
                        ),
                    ));
                };
                self.selected = Some(shortlisted.service.clone());
                self.selected_provider = Some(shortlisted.provider.clone());
                self.appointment = Some(appointment);
                self.state = state;
                self.reviewed = false;
                self.reason = reason.map(|code| StateReason {
                    kind: super::appointment::REVIEW_REASON_SYSTEM.into(),
                    display: String::new(),
                    code,
                    comment: None,
                });
            }
            Change::CancelAppointment { reason, comment } => {
                self.check(caller, Action::CancelDirectlyBookedAppointment)?;
                comment_within_limit(&comment, "comment")?;
                self.state = State::ApptCancelledByPatient;
                self.reason = Some(appointment_reason(&reason, comment));
                self.selected = None;
            }
            Change::Letters(letters) => {
                self.check(caller, Action::MaintainReferralLetter)?;
                let same = letters.len() == self.letters.len()
                    && letters
                        .iter()
                        .zip(&self.letters)
                        .all(|(a, b)| a.file.id == b.file.id && a.description == b.description);
                if same {
                    return Err(ErsError::rule(
                        "NO_CHANGES_DETECTED",
                        "the referral letter files are already these",
                    ));
                }
                self.letters = letters;
                self.letter_intention = "ALREADY_ADDED".into();
            }
            Change::ActionLater {
                comment,
                priority,
                files,
            } => {
                let reviewed_already = self.reviewed;
                self.check(caller, Action::CancelAppointmentActionLater)?;
                if reviewed_already {
                    return Err(ErsError::rule(
                        "INVALID_REQUEST_STATE",
                        format!(
                            "referral {} has been reviewed already; A022 is for booked referrals awaiting review",
                            self.ubrn
                        ),
                    ));
                }
                if comment.trim().is_empty() {
                    return Err(ErsError::missing("parameter comments"));
                }
                comment_within_limit(&Some(comment.clone()), "comments")?;
                if let Some(priority) = priority {
                    if codes::priority_display(&priority).is_none() {
                        let allowed: Vec<&str> =
                            codes::PRIORITIES.iter().map(|(c, _)| *c).collect();
                        return Err(ErsError::invalid_code("priority", &priority, &allowed));
                    }
                    self.criteria.priority = priority;
                }
                self.attach_provider_files(files)?;
                self.state = State::TriagedProviderToAction;
                self.reviewed = true;
                self.reason = Some(StateReason {
                    kind: super::appointment::REVIEW_OUTCOME_SYSTEM.into(),
                    code: "CANCEL_APPOINTMENT_ACTION_LATER".into(),
                    display: String::new(),
                    comment: Some(comment),
                });
            }
            Change::Accept => {
                self.check(caller, Action::AcceptReferral)?;
                self.reviewed = true;
            }
            Change::Reject { reason, comment } => {
                self.check(caller, Action::RejectReferral)?;
                let Some((code, comment_required)) =
                    REJECTION_REASONS.iter().find(|(c, _)| *c == reason)
                else {
                    let allowed: Vec<&str> = REJECTION_REASONS.iter().map(|(c, _)| *c).collect();
                    return Err(ErsError::invalid_code("rejectionReason", &reason, &allowed));
                };
                let comment = comment.filter(|c| !c.trim().is_empty());
                if *comment_required && comment.is_none() {
                    return Err(ErsError::rule(
                        "MISSING_VALUE",
                        format!("rejection reason {code} needs rejectionComments"),
                    ));
                }
                comment_within_limit(&comment, "rejectionComments")?;
                self.state = State::Rejected;
                self.reason = Some(appointment_reason(code, comment));
            }
            Change::ReviewOutcome {
                outcome,
                comment,
                priority,
                files,
            } => {
                self.check(caller, Action::RecordReviewOutcome)?;
                if comment.trim().is_empty() {
                    return Err(ErsError::missing("parameter reviewComments"));
                }
                comment_within_limit(&Some(comment.clone()), "reviewComments")?;
                let state = match outcome.as_str() {
                    "RETURN_TO_REFERRER_WITH_ADVICE" => {
                        if priority.is_some() {
                            return Err(ErsError::rule(
                                "PRIORITY_NOT_CURRENT",
                                "reviewPriority cannot be changed when returning the referral to the referrer",
                            ));
                        }
                        State::TriageResponse
                    }
                    "ACCEPT_REFER_BOOK_LATER" => State::TriagedProviderToAction,
                    other => {
                        return Err(ErsError::invalid_code(
                            "reviewOutcome",
                            other,
                            &["RETURN_TO_REFERRER_WITH_ADVICE", "ACCEPT_REFER_BOOK_LATER"],
                        ));
                    }
                };
                if let Some(priority) = priority {
                    if codes::priority_display(&priority).is_none() {
                        let allowed: Vec<&str> =
                            codes::PRIORITIES.iter().map(|(c, _)| *c).collect();
                        return Err(ErsError::invalid_code(
                            "reviewPriority",
                            &priority,
                            &allowed,
                        ));
                    }
                    self.criteria.priority = priority;
                }
                self.attach_provider_files(files)?;
                self.state = state;
                self.reviewed = true;
                self.reason = Some(StateReason {
                    kind: super::appointment::REVIEW_OUTCOME_SYSTEM.into(),
                    display: String::new(),
                    code: outcome,
                    comment: Some(comment),
                });
            }
        }
        Ok(())
    }

    /// The sandbox's stand-in for a referral in another state. The official sandbox answers a
    /// provider's review (A013, A014, A022, A028, and A036 with a provider's reason) by the
    /// request body alone, on a UBRN whatever state it is in, and the specification's examples
    /// send them all to the referral its referrer-side examples need unbooked. Where the state
    /// refuses the provider's `action`, this puts the referral, unreviewed and without an
    /// appointment, at its first shortlisted service in the first state from which a provider
    /// may take the action, so that the action's own rules (reasons, comments, priorities,
    /// files) still decide the answer. `false` when no state allows it, or for the referrer.
    pub fn stand_in_for_provider(&mut self, action: Action) -> bool {
        const REVIEWED_IN: [State; 3] = [
            State::Booked,
            State::DeferredToProvider,
            State::AwaitingTriage,
        ];
        let Some(state) = REVIEWED_IN
            .into_iter()
            .find(|state| allowed(*state, Side::Provider).contains(&action))
        else {
            return false;
        };
        let Some(first) = self.shortlist.first() else {
            return false;
        };
        if self.selected.is_none() {
            self.selected = Some(first.service.clone());
            self.selected_provider = Some(first.provider.clone());
        }
        self.state = state;
        self.reason = None;
        self.reviewed = false;
        self.appointment = None;
        true
    }

    /// The `eRS-ReferralRequest-1` view at `version`; `stu3_base` is the API's STU3 base URL.
    pub fn to_fhir(&self, version: i64, stu3_base: &str) -> Value {
        let (state_code, state_display) = self.state.coding();
        let mut state = vec![json!({"url": "state", "valueCoding": {
            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralState-1", "code": state_code, "display": state_display}})];
        if let Some(reason) = &self.reason {
            let system = if reason.kind.contains("://") {
                reason.kind.clone()
            } else {
                format!("{stu3_base}/CodeSystem/{}", reason.kind)
            };
            let mut coding = json!({"system": system, "code": reason.code});
            if !reason.display.is_empty() {
                coding["display"] = json!(reason.display);
            }
            state.push(json!({"url": "reason", "valueCoding": coding}));
            if let Some(comment) = &reason.comment {
                state.push(json!({"url": "comments", "valueString": comment}));
            }
        }
        let mut extension = Vec::new();
        if let Some(appointment) = &self.appointment {
            extension.push(json!({"url": format!("{EXT}Appointment-Reference-1"), "valueReference": {"reference": format!("Appointment/{appointment}")}}));
        }
        extension.extend([
            json!({"url": format!("{EXT}ReferralPriority-1"), "valueCodeableConcept": {"coding": [{
                "system": codes::PRIORITY_SYSTEM, "code": self.criteria.priority,
                "display": codes::priority_display(&self.criteria.priority).unwrap_or_default()}]}}),
        ]);
        if let Some(start) = &self.pathway_start {
            extension.push(
                json!({"url": format!("{EXT}eReferralPathwayStart-1"), "valueInstant": start}),
            );
        }
        extension.push(json!({"url": format!("{EXT}ReferralShortlist-1"), "valueReference": {"reference": "#shortlist"}}));
        extension.push(json!({"url": format!("{EXT}Commissioning-Rule-Org-1"), "valueIdentifier": {
            "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": self.commissioning_organisation}}));
        extension.push(json!({"url": format!("{EXT}ReferralState-1"), "extension": state}));
        let shortlist = json!({
            "resourceType": "List",
            "id": "shortlist",
            "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-Shortlist-List-1"]},
            "extension": [{"url": format!("{EXT}Shortlist-SearchCriteria-1"), "valueReference": {"reference": "#serviceSearchCriteria"}}],
            "status": "current",
            "mode": "snapshot",
            "entry": self.shortlist.iter().map(|s| json!({"item": {
                "identifier": {"system": SERVICE_SYSTEM, "value": s.service}, "display": s.name}})).collect::<Vec<_>>(),
        });
        let status = match self.state {
            State::CancelledReferral => "cancelled",
            _ => "active",
        };
        let mut resource = json!({
            "resourceType": "ReferralRequest",
            "id": self.ubrn,
            "meta": {"versionId": version.to_string(), "profile": [PROFILE]},
            "extension": extension,
            "contained": std::iter::once(self.criteria.to_fhir("serviceSearchCriteria", stu3_base))
                .chain(std::iter::once(shortlist))
                .chain(self.letters.iter().map(|l| l.file.document_reference(l, AttachmentType::Referrer, stu3_base)))
                .chain(self.provider_files.iter().map(|l| l.file.document_reference(l, AttachmentType::Provider, stu3_base)))
                .collect::<Vec<_>>(),
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ers-request-id", "value": self.request_id}],
            "status": status,
            "intent": "plan",
            "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": self.patient}},
            "supportingInfo": self.letters.iter().chain(&self.provider_files).map(|l| json!({"reference": format!("#DocumentReference-{}", l.file.id)})).collect::<Vec<_>>(),
        });
        if let Some(specialty) = &self.criteria.specialty {
            resource["specialty"] = json!({"coding": [{"system": format!("{stu3_base}/CodeSystem/SPECIALTY"),
                "code": specialty, "display": codes::specialty_display(specialty).unwrap_or_default()}]});
        }
        resource
    }
}

/// A change to a referral.
#[derive(Debug, Clone)]
pub enum Change {
    /// A031: a new shortlist.
    Shortlist {
        /// The criteria it was chosen by.
        criteria: SearchCriteria,
        /// The services.
        shortlisted: Vec<Shortlisted>,
        /// Letter intention.
        letter_intention: String,
        /// Reminder days.
        reminder_days: u32,
    },
    /// A036: cancel with a reason.
    Cancel {
        /// `REFERRAL-CANCELLATION-REASON` code.
        reason: String,
        /// Comment.
        comment: Option<String>,
    },
    /// A016: an appointment at a shortlisted service: booked, deferred to the provider (with
    /// its review reason), or sent to triage.
    Appoint {
        /// The service.
        service: String,
        /// The appointment's id.
        appointment: String,
        /// The state it leaves the referral in: `Booked`, `DeferredToProvider` or
        /// `AwaitingTriage`.
        state: State,
        /// The review reason of a deferral (`NO_SLOTS_AT_SERVICE`...) or `TRIAGE`.
        reason: Option<String>,
    },
    /// A034: the referrer cancels the booked appointment.
    CancelAppointment {
        /// `APPOINTMENT-CANCELLATION-REASON` code.
        reason: String,
        /// Comment.
        comment: Option<String>,
    },
    /// A013: the provider has reviewed the booked referral.
    Accept,
    /// A022: the provider cancels the booked appointment and will arrange another.
    ActionLater {
        /// What the provider's admin must do.
        comment: String,
        /// A new priority.
        priority: Option<String>,
        /// Files the provider attaches.
        files: Vec<super::attachment::Attached>,
    },
    /// A012: the whole new set of referral letter files.
    Letters(Vec<super::attachment::Attached>),
    /// A014: the provider rejects it.
    Reject {
        /// `APPOINTMENT-CANCELLATION-REASON` code of type provider-reject.
        reason: String,
        /// Comment.
        comment: Option<String>,
    },
    /// A028: the outcome of triage.
    ReviewOutcome {
        /// `RETURN_TO_REFERRER_WITH_ADVICE` or `ACCEPT_REFER_BOOK_LATER`.
        outcome: String,
        /// Comments for the referrer or the provider's booking team.
        comment: String,
        /// A new priority (not with a return to the referrer).
        priority: Option<String>,
        /// Files the provider attaches.
        files: Vec<super::attachment::Attached>,
    },
}

impl Change {
    /// The action the state machine must allow for it.
    pub fn action(&self) -> Action {
        match self {
            Change::Shortlist { .. } => Action::ChangeShortlist,
            Change::Cancel { .. } => Action::CancelReferral,
            Change::Appoint { .. } => Action::CreateAppointment,
            Change::CancelAppointment { .. } => Action::CancelDirectlyBookedAppointment,
            Change::Accept => Action::AcceptReferral,
            Change::ActionLater { .. } => Action::CancelAppointmentActionLater,
            Change::Letters(_) => Action::MaintainReferralLetter,
            Change::Reject { .. } => Action::RejectReferral,
            Change::ReviewOutcome { .. } => Action::RecordReviewOutcome,
        }
    }
}

/// The appointment cancellation reasons a provider may reject a referral with, and whether each
/// needs a comment.
pub const REJECTION_REASONS: [(&str, bool); 7] = [
    ("FURTHER_INFORMATION_REQUIRED", true),
    ("OTHER", true),
    ("PRIORITY_INAPPROPRIATE", false),
    ("REDIRECTED_APPROPRIATE_CLINIC", false),
    ("REDIRECTED_APPROPRIATE_SPECIALTY", false),
    ("SERVICE_INAPPROPRIATE", true),
    ("SERVICE_PREREQUISITES_NOT_COMPLETE", true),
];

fn appointment_reason(code: &str, comment: Option<String>) -> StateReason {
    StateReason {
        kind: "APPOINTMENT-CANCELLATION-REASON".into(),
        code: code.to_owned(),
        display: codes::APPOINTMENT_CANCELLATION_REASONS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, d)| (*d).to_owned())
            .unwrap_or_default(),
        comment,
    }
}

fn comment_within_limit(comment: &Option<String>, what: &str) -> Result<(), ErsError> {
    if let Some(text) = comment
        && text.chars().count() > 2000
    {
        return Err(ErsError::invalid(format!(
            "{what}: at most 2000 characters"
        )));
    }
    Ok(())
}

/// Reads an `eRS-ChangeShortlist-Parameters-1`: criteria, service ids, letter intention and
/// reminder days.
pub fn read_change_shortlist(
    body: &Value,
) -> Result<(SearchCriteria, Vec<String>, String, u32), ErsError> {
    let params = Params::read(
        body,
        &[
            "shortlist",
            "intentionToAddReferralLetter",
            "firstReminderLetterFollowUpDays",
        ],
    )?;
    let (location, list) = params
        .resource("shortlist")?
        .ok_or_else(|| ErsError::missing("parameter shortlist"))?;
    let (criteria, services) = read_shortlist(&location, list)?;
    let (intention, days) = letter_and_reminder(&params)?;
    Ok((criteria, services, intention, days))
}

/// Reads an `eRS-CancelReferral-Request-Parameters-1`: reason code and comment.
pub fn read_cancel(body: &Value) -> Result<(String, Option<String>), ErsError> {
    let params = Params::read(body, &["cancellationReason", "cancellationComments"])?;
    let reason = params
        .coding("cancellationReason")?
        .ok_or_else(|| ErsError::missing("parameter cancellationReason"))?;
    reason.check_system("cancellationReason", codes::REFERRAL_CANCELLATION_SYSTEM)?;
    let comment = params
        .text("cancellationComments", "String")?
        .map(str::to_owned);
    Ok((reason.code.to_owned(), comment))
}

/// A referral for unit tests: awaiting nothing in particular, one shortlisted service.
#[cfg(test)]
pub(crate) fn sample(state: State) -> Referral {
    Referral {
        ubrn: "100000000001".into(),
        request_id: "r.test".into(),
        patient: "9912003888".into(),
        state,
        reason: None,
        criteria: SearchCriteria {
            priority: "ROUTINE".into(),
            specialty: Some("CARDIOLOGY".into()),
            clinic_type: None,
            clinical_term: None,
            named_clinician: None,
            wait_limit: None,
            distance_limit: None,
            postcode: None,
            age_and_gender_appropriate: false,
            organisation: None,
        },
        shortlist: vec![Shortlisted {
            service: "20001".into(),
            name: "Heart Failure Clinic".into(),
            provider: "R1A14".into(),
        }],
        selected: None,
        selected_provider: None,
        letter_intention: "NEED_TO_ADD_LATER".into(),
        reminder_days: 0,
        pathway_start: None,
        referrer_organisation: "B82617".into(),
        created_by: "555000000001".into(),
        referring_clinician: "555000000001".into(),
        commissioning_organisation: "B82617".into(),
        appointment: None,
        reviewed: false,
        letters: Vec::new(),
        provider_files: Vec::new(),
        access_code: None,
        created: String::new(),
        updated: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(function: BusinessFunction, organisation: &str) -> Caller {
        Caller {
            function,
            organisation: organisation.into(),
            user: Some("555000000001".into()),
            name: "Test".into(),
            on_behalf_of: None,
        }
    }

    fn referral(state: State) -> Referral {
        super::sample(state)
    }

    fn cancel(reason: &str) -> Change {
        Change::Cancel {
            reason: reason.into(),
            comment: None,
        }
    }

    /// Every state, from both sides: a change is applied exactly when the state machine lists
    /// its action, and a refused change leaves the referral as it was.
    #[test]
    fn changes_happen_exactly_when_the_state_machine_allows_them() {
        let referrer = caller(BusinessFunction::ReferringClinician, "B82617");
        let provider = caller(BusinessFunction::ServiceProviderClinician, "R1A14");
        for state in State::ALL {
            for (who, side, reason) in [
                (&referrer, Side::Referrer, "RAISED_IN_ERROR"),
                (&provider, Side::Provider, "TRIAGE_ENDED"),
            ] {
                let allowed_now = allowed(state, side);
                let mut subject = referral(state);
                let before = subject.clone();
                let result = subject.apply(who, cancel(reason));
                if allowed_now.contains(&Action::CancelReferral) {
                    assert!(result.is_ok(), "{state:?} {side:?}: {result:?}");
                    assert_eq!(subject.state, State::CancelledReferral);
                } else {
                    assert_eq!(
                        result.unwrap_err().code,
                        "INVALID_REQUEST_STATE",
                        "{state:?} {side:?}"
                    );
                    assert_eq!(subject, before);
                }
                let mut subject = referral(state);
                let result = subject.apply(
                    who,
                    Change::Shortlist {
                        criteria: before.criteria.clone(),
                        shortlisted: before.shortlist.clone(),
                        letter_intention: "ALREADY_ADDED".into(),
                        reminder_days: 3,
                    },
                );
                assert_eq!(
                    result.is_ok(),
                    allowed_now.contains(&Action::ChangeShortlist),
                    "{state:?} {side:?}"
                );
                if result.is_err() {
                    assert_eq!(subject, before);
                }
            }
        }
    }

    #[test]
    fn cancelled_is_final_and_providers_never_rework_shortlists() {
        for side in [Side::Referrer, Side::Provider] {
            assert!(allowed(State::CancelledReferral, side).is_empty());
        }
        for state in State::ALL {
            assert!(!allowed(state, Side::Provider).contains(&Action::ChangeShortlist));
            assert!(!allowed(state, Side::Provider).contains(&Action::CreateAppointment));
        }
        assert_eq!(
            allowed(State::AwaitingTriage, Side::Provider),
            [Action::RecordReviewOutcome, Action::CancelReferral]
        );
    }

    #[test]
    fn only_the_two_sides_have_a_relationship() {
        let subject = referral(State::NotBooked);
        assert_eq!(
            subject.side_of(&caller(BusinessFunction::ReferringClinician, "B82617")),
            Ok(Side::Referrer)
        );
        assert_eq!(
            subject.side_of(&caller(BusinessFunction::ServiceProviderClinician, "R1A14")),
            Ok(Side::Provider)
        );
        for (function, ods) in [
            (BusinessFunction::ReferringClinician, "A99999"),
            (BusinessFunction::ServiceProviderClinician, "B82617"),
            (BusinessFunction::ServiceProviderClinician, "RYJ"),
        ] {
            assert_eq!(
                subject.side_of(&caller(function, ods)).unwrap_err().code,
                "NO_RELATIONSHIP"
            );
        }
    }

    #[test]
    fn reasons_belong_to_a_side_and_some_need_a_comment() {
        let referrer = caller(BusinessFunction::ReferringClinician, "B82617");
        let provider = caller(BusinessFunction::ServiceProviderClinician, "R1A14");
        let mut booked = referral(State::Booked);
        assert_eq!(
            booked
                .apply(&provider, cancel("RAISED_IN_ERROR"))
                .unwrap_err()
                .code,
            "INAPPROPRIATE_VALUE"
        );
        assert_eq!(
            booked
                .apply(&provider, cancel("NO_LONGER_REQUIRED"))
                .unwrap_err()
                .code,
            "MISSING_VALUE"
        );
        assert_eq!(
            booked
                .apply(&referrer, cancel("NOT_A_REASON"))
                .unwrap_err()
                .code,
            "INVALID_CODE"
        );
        booked
            .apply(
                &provider,
                Change::Cancel {
                    reason: "NO_LONGER_REQUIRED".into(),
                    comment: Some("Seen privately".into()),
                },
            )
            .unwrap();
        let reason = booked.reason.unwrap();
        assert_eq!(
            (reason.code.as_str(), reason.comment.as_deref()),
            ("NO_LONGER_REQUIRED", Some("Seen privately"))
        );
    }
}
