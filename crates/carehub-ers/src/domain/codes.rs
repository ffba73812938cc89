//! e-RS reference data: business functions, priorities, specialties and clinic types, and the
//! reason code sets, with the properties that business rules read (whether a comment is
//! mandatory, which business functions may use a reason). A004 serves them as CodeSystems.

use serde_json::{Value, json};

/// Where `_baseUrl_`-style code systems live under the API: `{base}/STU3/CodeSystem/{TYPE}`.
pub const SPECIALTY_SYSTEM: &str = "{base}/STU3/CodeSystem/SPECIALTY";
/// The clinic type system (a fixed URL, unlike the specialty).
pub const CLINIC_TYPE_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ClinicType-1";
/// The priority system.
pub const PRIORITY_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1";
/// Referral cancellation reasons.
pub const REFERRAL_CANCELLATION_SYSTEM: &str =
    "{base}/STU3/CodeSystem/REFERRAL-CANCELLATION-REASON";
/// The business function system.
pub const BUSINESS_FUNCTION_SYSTEM: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/eRS-BusinessFunction-1";

/// An e-RS business function: the capacity a user acts in at an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BusinessFunction {
    /// RC
    ReferringClinician,
    /// RCA
    ReferringClinicianAdmin,
    /// RA
    ReferringAdmin,
    /// Commissioner
    Commissioner,
    /// SPCA: acts on behalf of an SPC.
    ServiceProviderClinicianAdmin,
    /// SPC
    ServiceProviderClinician,
    /// SPA
    ServiceProviderAdmin,
    /// Analyst
    InformationAnalyst,
    /// Booking manager
    BookingManager,
    /// Additional requirements manager
    AdditionalRequirementsManager,
    /// An application acting for a provider organisation (application-restricted access).
    ProviderAuthorisedApplication,
    /// An application acting for a referring organisation (application-restricted access).
    ReferrerAuthorisedApplication,
}

impl BusinessFunction {
    /// Every business function a user can select, with its code.
    pub const USER: [(BusinessFunction, &'static str, &'static str); 10] = [
        (
            BusinessFunction::ReferringClinician,
            "REFERRING_CLINICIAN",
            "Referring Clinician",
        ),
        (
            BusinessFunction::ReferringClinicianAdmin,
            "REFERRING_CLINICIAN_ADMIN",
            "Referring Clinician Admin",
        ),
        (
            BusinessFunction::ReferringAdmin,
            "REFERRING_ADMIN",
            "Referring Admin",
        ),
        (
            BusinessFunction::Commissioner,
            "COMMISSIONER",
            "Commissioner",
        ),
        (
            BusinessFunction::ServiceProviderClinicianAdmin,
            "SERVICE_PROVIDER_CLINICIAN_ADMIN",
            "Service Provider Clinician Admin",
        ),
        (
            BusinessFunction::ServiceProviderClinician,
            "SERVICE_PROVIDER_CLINICIAN",
            "Service Provider Clinician",
        ),
        (
            BusinessFunction::ServiceProviderAdmin,
            "SERVICE_PROVIDER_ADMIN",
            "Service Provider Admin",
        ),
        (
            BusinessFunction::InformationAnalyst,
            "INFORMATION_ANALYST",
            "Information Analyst",
        ),
        (
            BusinessFunction::BookingManager,
            "BOOKING_MANAGER",
            "Booking Manager",
        ),
        (
            BusinessFunction::AdditionalRequirementsManager,
            "ADDITIONAL_REQUIREMENTS_MANAGER",
            "Additional Requirements Manager",
        ),
    ];

    /// Parses a code a user may send in `NHSD-eRS-Business-Function`.
    pub fn parse(code: &str) -> Option<BusinessFunction> {
        BusinessFunction::USER
            .iter()
            .find(|(_, c, _)| *c == code)
            .map(|(f, _, _)| *f)
    }

    /// Its code.
    pub fn code(self) -> &'static str {
        match self {
            BusinessFunction::ProviderAuthorisedApplication => "PROVIDER_AUTHORISED_APPLICATION",
            BusinessFunction::ReferrerAuthorisedApplication => "REFERRER_AUTHORISED_APPLICATION",
            other => BusinessFunction::USER
                .iter()
                .find(|(f, _, _)| *f == other)
                .map(|(_, c, _)| *c)
                .unwrap_or("UNKNOWN"),
        }
    }

    /// Its display text.
    pub fn display(self) -> &'static str {
        match self {
            BusinessFunction::ProviderAuthorisedApplication => "Provider Authorised Application",
            BusinessFunction::ReferrerAuthorisedApplication => "Referrer Authorised Application",
            other => BusinessFunction::USER
                .iter()
                .find(|(f, _, _)| *f == other)
                .map(|(_, _, d)| *d)
                .unwrap_or("Unknown"),
        }
    }

    /// Whether it acts for the referring side.
    pub fn is_referrer(self) -> bool {
        matches!(
            self,
            BusinessFunction::ReferringClinician
                | BusinessFunction::ReferringClinicianAdmin
                | BusinessFunction::ReferringAdmin
                | BusinessFunction::ReferrerAuthorisedApplication
        )
    }

    /// Whether it acts for the providing side.
    pub fn is_provider(self) -> bool {
        matches!(
            self,
            BusinessFunction::ServiceProviderClinician
                | BusinessFunction::ServiceProviderClinicianAdmin
                | BusinessFunction::ServiceProviderAdmin
                | BusinessFunction::ProviderAuthorisedApplication
        )
    }
}

/// A referral's priority.
pub const PRIORITIES: [(&str, &str); 3] = [
    ("ROUTINE", "Routine"),
    ("URGENT", "Urgent"),
    ("TWO_WEEK_WAIT", "Two Week Wait"),
];

/// A specialty: its code, display, and clinic types as (code, display).
pub type Specialty = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Specialties, each with its clinic types.
pub const SPECIALTIES: &[Specialty] = &[
    (
        "ALLERGY",
        "Allergy",
        &[("ALLERGY_1", "Allergy"), ("FOOD_ALLERGY", "Food Allergy")],
    ),
    (
        "CARDIOLOGY",
        "Cardiology",
        &[
            ("HEART_FAILURE", "Heart Failure"),
            ("LIPID_MANAGEMENT", "Lipid Management"),
            ("CHEST_PAIN", "Chest Pain"),
            ("ARRHYTHMIA", "Arrhythmia"),
        ],
    ),
    (
        "DERMATOLOGY",
        "Dermatology",
        &[
            ("SKIN_LESIONS", "Skin Lesions"),
            ("ECZEMA_AND_PSORIASIS", "Eczema and Psoriasis"),
        ],
    ),
    (
        "EAR_NOSE_AND_THROAT",
        "Ear, Nose and Throat",
        &[
            ("HEARING_LOSS", "Hearing Loss"),
            ("NOT_OTHERWISE_SPECIFIED_ENT", "Not Otherwise Specified"),
        ],
    ),
    (
        "GASTROENTEROLOGY",
        "Gastroenterology",
        &[
            ("ENDOSCOPY", "Endoscopy"),
            ("INFLAMMATORY_BOWEL_DISEASE", "Inflammatory Bowel Disease"),
        ],
    ),
    (
        "NEUROLOGY",
        "Neurology",
        &[("HEADACHE", "Headache"), ("EPILEPSY", "Epilepsy")],
    ),
    (
        "ORTHOPAEDICS",
        "Orthopaedics",
        &[("HIP", "Hip"), ("KNEE", "Knee"), ("SPINE", "Spine")],
    ),
    (
        "RESPIRATORY_MEDICINE",
        "Respiratory Medicine",
        &[("ASTHMA", "Asthma"), ("COPD", "COPD")],
    ),
    (
        "UROLOGY",
        "Urology",
        &[("PROSTATE", "Prostate"), ("BLADDER", "Bladder")],
    ),
];

/// Whether `clinic_type` belongs to `specialty`.
pub fn clinic_type_in(specialty: &str, clinic_type: &str) -> bool {
    SPECIALTIES
        .iter()
        .any(|(s, _, types)| *s == specialty && types.iter().any(|(t, _)| *t == clinic_type))
}

/// The display of a specialty.
pub fn specialty_display(code: &str) -> Option<&'static str> {
    SPECIALTIES
        .iter()
        .find(|(s, _, _)| *s == code)
        .map(|(_, d, _)| *d)
}

/// The display of a clinic type.
pub fn clinic_type_display(code: &str) -> Option<&'static str> {
    SPECIALTIES
        .iter()
        .flat_map(|(_, _, types)| types.iter())
        .find(|(t, _)| *t == code)
        .map(|(_, d)| *d)
}

/// The display of a priority.
pub fn priority_display(code: &str) -> Option<&'static str> {
    PRIORITIES.iter().find(|(c, _)| *c == code).map(|(_, d)| *d)
}

/// Who may cancel a referral with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelledBy {
    /// Referrers only.
    Referrer,
    /// Providers only.
    Provider,
    /// Either side.
    Both,
    /// No business function: the reason can stand on a referral, but no user cancels with it
    /// (A036).
    Nobody,
}

/// A referral cancellation reason, as A004 `REFERRAL-CANCELLATION-REASON` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferralCancellationReason {
    /// Its code.
    pub code: &'static str,
    /// Its display.
    pub display: &'static str,
    /// Whether `cancellationComments` must come with it (`commentIsMandatory`).
    pub comment_mandatory: bool,
    /// Who may cancel with it (`businessFunction`).
    pub by: CancelledBy,
    /// `appointmentRequestCancellationReasonType`: `PATIENT`, `PROVIDER`, `PROVIDER_TRIAGE` or
    /// `UNKNOWN`.
    pub kind: &'static str,
    /// Whether it may cancel a referral that has a current appointment (`canCancelAppointment`).
    pub cancels_appointment: bool,
    /// When it came into use (`effectiveFrom`).
    pub from: &'static str,
}

const fn referral_reason(
    code: &'static str,
    display: &'static str,
    comment_mandatory: bool,
    by: CancelledBy,
    kind: &'static str,
    cancels_appointment: bool,
    from: &'static str,
) -> ReferralCancellationReason {
    ReferralCancellationReason {
        code,
        display,
        comment_mandatory,
        by,
        kind,
        cancels_appointment,
        from,
    }
}

/// When most reasons came into use.
const FIRST_REASONS_FROM: &str = "2004-06-01T00:00:00.000Z";
/// When the referrer's own referral cancellation reasons came into use.
const CAB_REASONS_FROM: &str = "2007-09-14T00:00:00.000Z";
/// When the reasons for ending triage came into use.
const TRIAGE_REASONS_FROM: &str = "2019-07-23T17:09:56.000Z";

const REFERRAL_REASONS: [ReferralCancellationReason; 18] = {
    use CancelledBy::{Both, Nobody, Provider, Referrer};
    const T: &str = TRIAGE_REASONS_FROM;
    const F: &str = FIRST_REASONS_FROM;
    const C: &str = CAB_REASONS_FROM;
    [
        referral_reason(
            "BOOKED_CLINICAL_NEED",
            "Booked more urgently due to clinical need",
            true,
            Provider,
            "PROVIDER_TRIAGE",
            false,
            T,
        ),
        referral_reason(
            "BOOKED_OUTSIDE_CAB",
            "Patient booked outside NHS e-Referral Service",
            false,
            Provider,
            "PROVIDER",
            true,
            C,
        ),
        referral_reason(
            "COMMUNITY_SERVICE_NA",
            "Sent to community service not available in this system",
            true,
            Provider,
            "PROVIDER_TRIAGE",
            false,
            T,
        ),
        referral_reason(
            "COMPLEX_PATHWAY",
            "Complex pathway, multiple appointments needed",
            true,
            Provider,
            "PROVIDER_TRIAGE",
            false,
            T,
        ),
        referral_reason(
            "INTEND_PRIVATE",
            "Patient will go to a private clinic",
            false,
            Both,
            "PATIENT",
            true,
            F,
        ),
        referral_reason(
            "NO_LONGER_REQUIRED",
            "Referral is no longer required",
            true,
            Provider,
            "PROVIDER_TRIAGE",
            false,
            T,
        ),
        referral_reason(
            "OTHER_OTHER",
            "Other reason",
            true,
            Provider,
            "PROVIDER_TRIAGE",
            false,
            T,
        ),
        referral_reason(
            "OUTPATIENT_CLINICIAN_NA",
            "Sent to outpatient service as named clinician is not available in this system",
            true,
            Provider,
            "PROVIDER_TRIAGE",
            false,
            T,
        ),
        referral_reason(
            "OUTPATIENT_SERVICE_NA",
            "Sent to outpatient service not available in this system",
            true,
            Provider,
            "PROVIDER_TRIAGE",
            false,
            T,
        ),
        referral_reason(
            "PATIENT_DIED",
            "Patient died",
            false,
            Both,
            "PATIENT",
            true,
            F,
        ),
        referral_reason(
            "PATIENT_REQUEST_CANCELLATION_OTHER",
            "Other",
            true,
            Both,
            "PATIENT",
            true,
            F,
        ),
        referral_reason(
            "RAISED_IN_ERROR",
            "Referral created by mistake",
            false,
            Referrer,
            "UNKNOWN",
            true,
            C,
        ),
        referral_reason(
            "REFERRER_CANCELLATION",
            "Other - Referrer request cancellation",
            false,
            Referrer,
            "UNKNOWN",
            true,
            C,
        ),
        referral_reason(
            "STRAIGHT_TO_TEST",
            "Sent straight to test / procedure",
            true,
            Provider,
            "PROVIDER_TRIAGE",
            false,
            T,
        ),
        referral_reason(
            "TREATMENT_NO_LONGER_REQUIRED",
            "Referral no longer needed",
            false,
            Both,
            "PATIENT",
            true,
            F,
        ),
        referral_reason(
            "TRIAGE_ENDED",
            "Triage Ended",
            false,
            Provider,
            "PROVIDER_TRIAGE",
            false,
            T,
        ),
        referral_reason(
            "PATIENT_APPOINTMENT_CANCELLATION_OTHER",
            "Other",
            false,
            Nobody,
            "PATIENT",
            true,
            F,
        ),
        referral_reason(
            "PROVIDER_CANCELLATION",
            "Other - Provider Cancellation",
            false,
            Nobody,
            "UNKNOWN",
            true,
            F,
        ),
    ]
};

const fn referral_rows<const N: usize>(
    reasons: [ReferralCancellationReason; N],
) -> [(&'static str, &'static str, bool, CancelledBy); N] {
    let mut rows = [("", "", false, CancelledBy::Nobody); N];
    let mut i = 0;
    while i < N {
        let r = reasons[i];
        rows[i] = (r.code, r.display, r.comment_mandatory, r.by);
        i += 1;
    }
    rows
}

/// The referral cancellation reasons.
pub const REFERRAL_CANCELLATION: &[ReferralCancellationReason] = &REFERRAL_REASONS;

/// A referral cancellation reason: (code, display, whether a comment is mandatory, who may use
/// it), from [`REFERRAL_CANCELLATION`].
pub const REFERRAL_CANCELLATION_REASONS: &[(&str, &str, bool, CancelledBy)] =
    &referral_rows(REFERRAL_REASONS);

/// What an appointment cancellation reason is for (`usage`), which also says who may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppointmentReasonUse {
    /// A referrer (RC or RCA) cancels a booked appointment with it (A034): `CANCEL`.
    Cancel,
    /// A provider (SPC or SPCA) rejects a referral with it (A014): `REJECT`.
    Reject,
}

impl AppointmentReasonUse {
    /// The `usage` code.
    pub fn code(self) -> &'static str {
        match self {
            AppointmentReasonUse::Cancel => "CANCEL",
            AppointmentReasonUse::Reject => "REJECT",
        }
    }

    /// The business functions that may use a reason of this usage.
    pub fn functions(self) -> [BusinessFunction; 2] {
        match self {
            AppointmentReasonUse::Cancel => [
                BusinessFunction::ReferringClinicianAdmin,
                BusinessFunction::ReferringClinician,
            ],
            AppointmentReasonUse::Reject => [
                BusinessFunction::ServiceProviderClinicianAdmin,
                BusinessFunction::ServiceProviderClinician,
            ],
        }
    }
}

/// An appointment cancellation reason, as A004 `APPOINTMENT-CANCELLATION-REASON` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppointmentCancellationReason {
    /// Its code.
    pub code: &'static str,
    /// Its display.
    pub display: &'static str,
    /// `appointmentBookingCancellationReasonType`: `PATIENT`, `PROVIDER`, `PROVIDER_REJECT` or
    /// `UNKNOWN`.
    pub kind: &'static str,
    /// Whether a comment must come with it (`commentIsMandatory`).
    pub comment_mandatory: bool,
    /// What it is for, and so who may use it; `None` when no user may (kept for the record).
    pub usage: Option<AppointmentReasonUse>,
    /// When it came into use (`effectiveFrom`).
    pub from: &'static str,
    /// When it went out of use (`effectiveTo`), if it has.
    pub to: Option<&'static str>,
}

const fn appointment_reason(
    code: &'static str,
    display: &'static str,
    kind: &'static str,
    comment_mandatory: bool,
    usage: Option<AppointmentReasonUse>,
) -> AppointmentCancellationReason {
    AppointmentCancellationReason {
        code,
        display,
        kind,
        comment_mandatory,
        usage,
        from: FIRST_REASONS_FROM,
        to: None,
    }
}

const fn ended(
    reason: AppointmentCancellationReason,
    from: &'static str,
    to: &'static str,
) -> AppointmentCancellationReason {
    AppointmentCancellationReason {
        from,
        to: Some(to),
        ..reason
    }
}

const fn by_provider(code: &'static str, display: &'static str) -> AppointmentCancellationReason {
    appointment_reason(code, display, "PROVIDER", false, None)
}

const fn redirected(code: &'static str, display: &'static str) -> AppointmentCancellationReason {
    appointment_reason(code, display, "UNKNOWN", true, None)
}

const fn rejection(code: &'static str, display: &'static str) -> AppointmentCancellationReason {
    appointment_reason(
        code,
        display,
        "PROVIDER_REJECT",
        false,
        Some(AppointmentReasonUse::Reject),
    )
}

const fn by_patient(
    code: &'static str,
    display: &'static str,
    comment_mandatory: bool,
) -> AppointmentCancellationReason {
    appointment_reason(
        code,
        display,
        "PATIENT",
        comment_mandatory,
        Some(AppointmentReasonUse::Cancel),
    )
}

const fn unknown(code: &'static str, display: &'static str) -> AppointmentCancellationReason {
    appointment_reason(code, display, "UNKNOWN", false, None)
}

const APPOINTMENT_REASONS: [AppointmentCancellationReason; 36] = [
    ended(
        by_provider(
            "ADDITIONAL_REQ_NOT_AVAILABLE",
            "Additional requirement not available",
        ),
        FIRST_REASONS_FROM,
        "2007-06-25T00:00:00.000Z",
    ),
    by_provider(
        "ADDITIONAL_REQ_NOT_ELIGIBLE",
        "Not eligible for additional requirement",
    ),
    by_provider(
        "ADDITIONAL_REQ_NOT_PROVIDED",
        "Additional req not provided at location",
    ),
    by_provider(
        "ADDITIONAL_REQ_UNAVAILABLE",
        "Additional req unavailable for this appt",
    ),
    ended(
        unknown(
            "APPT_MADE_FOR_WRONG_PATIENT",
            "Appt. made for wrong patient",
        ),
        "2004-06-13T00:00:00.000Z",
        "2014-10-01T00:00:00.000Z",
    ),
    by_provider("CLINIC_CANCELLED", "Clinic cancelled"),
    by_provider("CLINIC_CANCELLED_ALTERNATIVE", "Clinic cancelled"),
    by_provider("CLINIC_OVERRUN", "Clinic overrun"),
    by_provider("CLINIC_OVERRUN_ALTERNATIVE", "Clinic overrun"),
    rejection(
        "FURTHER_INFORMATION_REQUIRED",
        "Further information required",
    ),
    AppointmentCancellationReason {
        from: "2000-06-01T00:00:00.000Z",
        ..by_provider("NOT_SPECIFIED", "Not Specified")
    },
    rejection("OTHER", "Other reason"),
    ended(
        unknown("OTHER_MIGRATION_FROM_CAB", "Other"),
        "2014-10-01T00:00:00.000Z",
        "2014-10-01T00:00:00.000Z",
    ),
    rejection(
        "OUTPATIENT_APPT_NOT_REQUIRED",
        "Outpatient appointment not required",
    ),
    by_patient("PATIENT_APPOINTMENT_CANCELLATION_OTHER", "Other", true),
    ended(
        unknown(
            "PATIENT_APPOINTMENT_CLASH",
            "Patient - Clashes with another appointment",
        ),
        FIRST_REASONS_FROM,
        "2007-06-01T00:00:00.000Z",
    ),
    by_patient("PATIENT_HOLIDAY", "Patient on holiday", false),
    by_patient("PATIENT_ILL", "Patient is sick", false),
    by_patient(
        "PATIENT_OTHER_ENGAGEMENT",
        "Patient - Other more pressing engagement",
        true,
    ),
    appointment_reason(
        "PRIORITY_CHANGE",
        "Priority change for other reasons",
        "PROVIDER",
        true,
        None,
    ),
    appointment_reason(
        "PRIORITY_INAPPROPRIATE",
        "Inappropriate priority",
        "PROVIDER",
        true,
        None,
    ),
    appointment_reason(
        "PROVIDER_CANCELLATION",
        "Other - Provider cancellation",
        "PROVIDER",
        true,
        None,
    ),
    redirected("REDIRECTED_AGE", "Redirected due to patient age"),
    redirected(
        "REDIRECTED_APPROPRIATE_CLINIC",
        "Redirected to more appropriate clinic",
    ),
    redirected(
        "REDIRECTED_APPROPRIATE_SPECIALTY",
        "Redirected to more appropriate specialty",
    ),
    redirected(
        "REDIRECTED_CONFIDENTIALITY",
        "Redirected due to confidentiality",
    ),
    redirected("REDIRECTED_GENDER", "Redirected due to patient gender"),
    redirected("REDIRECTED_OTHER", "Redirected due to other reason"),
    redirected("REDIRECTED_PRIORITY", "Redirected due to priority"),
    redirected(
        "REDIRECTED_STAFF_VACATION",
        "Redirected due to staff vacation",
    ),
    ended(
        unknown("REDIRECTED_TEMPORARILY", "A Temporary Redirected Reason"),
        FIRST_REASONS_FROM,
        "2014-10-01T00:00:00.000Z",
    ),
    rejection("SERVICE_INAPPROPRIATE", "Inappropriate service"),
    rejection(
        "SERVICE_PREREQUISITES_NOT_COMPLETE",
        "Pre-requisites for service not complete",
    ),
    by_provider("SLOT_CANCELLED", "Slot cancelled"),
    by_provider("SLOT_CANCELLED_ALTERNATIVE", "Slot cancelled"),
    ended(
        unknown("WRONG_PROVIDER", "Appt. made with wrong provider"),
        "2004-02-13T00:00:00.000Z",
        "2004-06-13T00:00:00.000Z",
    ),
];

/// The appointment cancellation reasons.
pub const APPOINTMENT_CANCELLATION: &[AppointmentCancellationReason] = &APPOINTMENT_REASONS;

const fn appointment_rows<const N: usize>(
    reasons: [AppointmentCancellationReason; N],
) -> [(&'static str, &'static str); N] {
    let mut rows = [("", ""); N];
    let mut i = 0;
    while i < N {
        rows[i] = (reasons[i].code, reasons[i].display);
        i += 1;
    }
    rows
}

/// Appointment cancellation reasons: (code, display), from [`APPOINTMENT_CANCELLATION`].
pub const APPOINTMENT_CANCELLATION_REASONS: &[(&str, &str)] =
    &appointment_rows(APPOINTMENT_REASONS);

/// Appointment non-attendance reasons: (code, display).
pub const NON_ATTENDANCE_REASONS: &[(&str, &str)] = &[
    ("CANCELLED_TOO_LATE", "Cancelled too late"),
    ("ARRIVED_TOO_LATE", "Patient arrived too late to be seen"),
    ("PATIENT_FORGOT", "Patient forgot about appointment"),
    ("PATIENT_DIED", "Patient died"),
    ("PATIENT_ILL", "Patient ill"),
    ("UNKNOWN", "Reason not known"),
    ("NOT_SPECIFIED", "Not specified"),
    ("OTHER_MIGRATION_FROM_CAB", "Other (Migration from CAB)"),
];

/// Non-attendance reasons no longer in use, with when they went out of use (`effectiveTo`).
const NON_ATTENDANCE_ENDED: &[(&str, &str)] =
    &[("OTHER_MIGRATION_FROM_CAB", "2012-01-31T00:00:00.000Z")];

/// The code system types A004 serves.
pub const CODE_SYSTEM_TYPES: [&str; 6] = [
    "SPECIALTY",
    "CLINIC-TYPE",
    "PRIORITY",
    "REFERRAL-CANCELLATION-REASON",
    "APPOINTMENT-CANCELLATION-REASON",
    "APPOINTMENT-NON-ATTENDANCE-REASON",
];

const PROPERTY_BASE: &str = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Concept-Properties-1#";

/// The CodeSystem of one type, with `base` (the API's STU3 base URL) in its `url`; `None` for
/// an unknown type.
pub fn code_system(kind: &str, stu3_base: &str) -> Option<Value> {
    let property = |code: &str, kind: &str| json!({"code": code, "uri": format!("{PROPERTY_BASE}{code}"), "type": kind});
    let business_function = |code: &str| json!({"code": "businessFunction", "valueCoding": {"system": BUSINESS_FUNCTION_SYSTEM, "code": code}});
    let (name, properties, concepts): (&str, Vec<Value>, Vec<Value>) = match kind {
        "SPECIALTY" => (
            "e-RS Specialty",
            vec![],
            SPECIALTIES.iter().map(|(c, d, _)| json!({"code": c, "display": d})).collect(),
        ),
        "CLINIC-TYPE" => (
            "e-RS Clinic Type",
            vec![property("specialty", "Coding")],
            SPECIALTIES
                .iter()
                .flat_map(|(specialty, _, types)| {
                    types.iter().map(move |(c, d)| {
                        json!({"code": c, "display": d, "property": [{"code": "specialty",
                            "valueCoding": {"system": format!("{stu3_base}/CodeSystem/SPECIALTY"), "code": specialty}}]})
                    })
                })
                .collect(),
        ),
        "PRIORITY" => (
            "e-RS Priority",
            vec![property("deferToProviderContactDays", "integer"), property("triageContactDays", "integer")],
            PRIORITIES
                .iter()
                .map(|(c, d)| {
                    let days = match *c {
                        "ROUTINE" => 40,
                        "URGENT" => 10,
                        _ => 5,
                    };
                    json!({"code": c, "display": d, "property": [
                        {"code": "deferToProviderContactDays", "valueInteger": days},
                        {"code": "triageContactDays", "valueInteger": days}]})
                })
                .collect(),
        ),
        "REFERRAL-CANCELLATION-REASON" => (
            "e-RS ReferralRequest Cancellation Reason",
            vec![
                property("appointmentRequestCancellationReasonType", "Coding"),
                property("commentIsMandatory", "boolean"),
                property("canCancelAppointment", "boolean"),
                property("businessFunction", "Coding"),
                property("referrerUsage", "Coding"),
            ],
            REFERRAL_CANCELLATION
                .iter()
                .map(|reason| {
                    let mut functions = Vec::new();
                    if matches!(reason.by, CancelledBy::Referrer | CancelledBy::Both) {
                        functions.extend(["REFERRING_CLINICIAN", "REFERRING_CLINICIAN_ADMIN"]);
                    }
                    if matches!(reason.by, CancelledBy::Provider | CancelledBy::Both) {
                        functions.extend([
                            "SERVICE_PROVIDER_CLINICIAN",
                            "SERVICE_PROVIDER_CLINICIAN_ADMIN",
                            "PROVIDER_AUTHORISED_APPLICATION",
                        ]);
                    }
                    let mut properties = vec![
                        json!({"code": "effectiveFrom", "valueDateTime": reason.from}),
                        json!({"code": "appointmentRequestCancellationReasonType", "valueCoding": {
                            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AppointmentRequestCancellationReasonType-1",
                            "code": reason.kind}}),
                        json!({"code": "commentIsMandatory", "valueBoolean": reason.comment_mandatory}),
                        json!({"code": "canCancelAppointment", "valueBoolean": reason.cancels_appointment}),
                    ];
                    properties.extend(functions.iter().map(|f| business_function(f)));
                    // A reason no one may choose is not for cancelling referrals with.
                    if !functions.is_empty() {
                        properties.push(json!({"code": "referrerUsage", "valueCoding": {
                            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralRequestCancellationReasonUsage-1",
                            "code": "CANCEL_REFERRAL"}}));
                    }
                    json!({"code": reason.code, "display": reason.display, "property": properties})
                })
                .collect(),
        ),
        "APPOINTMENT-CANCELLATION-REASON" => (
            "e-RS Appointment Cancellation Reason",
            vec![
                property("appointmentBookingCancellationReasonType", "Coding"),
                property("willCancelWholeRequest", "boolean"),
                property("commentIsMandatory", "boolean"),
                property("businessFunction", "Coding"),
                property("usage", "Coding"),
            ],
            APPOINTMENT_CANCELLATION
                .iter()
                .map(|reason| {
                    let mut properties = vec![json!({"code": "effectiveFrom", "valueDateTime": reason.from})];
                    if let Some(to) = reason.to {
                        properties.push(json!({"code": "effectiveTo", "valueDateTime": to}));
                    }
                    properties.extend([
                        json!({"code": "appointmentBookingCancellationReasonType", "valueCoding": {
                            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AppointmentBookingCancellationReasonType-1",
                            "code": reason.kind}}),
                        json!({"code": "willCancelWholeRequest", "valueBoolean": false}),
                        json!({"code": "commentIsMandatory", "valueBoolean": reason.comment_mandatory}),
                    ]);
                    if let Some(usage) = reason.usage {
                        properties.extend(usage.functions().iter().map(|f| business_function(f.code())));
                        properties.push(json!({"code": "usage", "valueCoding": {
                            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AppointmentCancellationReasonUsage-1",
                            "code": usage.code()}}));
                    }
                    json!({"code": reason.code, "display": reason.display, "property": properties})
                })
                .collect(),
        ),
        "APPOINTMENT-NON-ATTENDANCE-REASON" => (
            "e-RS Appointment Non-attendance Reason",
            vec![],
            NON_ATTENDANCE_REASONS
                .iter()
                .map(|(c, d)| {
                    let mut properties = vec![json!({"code": "effectiveFrom", "valueDateTime": FIRST_REASONS_FROM})];
                    if let Some((_, to)) = NON_ATTENDANCE_ENDED.iter().find(|(e, _)| e == c) {
                        properties.push(json!({"code": "effectiveTo", "valueDateTime": to}));
                    }
                    json!({"code": c, "display": d, "property": properties})
                })
                .collect(),
        ),
        _ => return None,
    };
    // A concept without dates of its own (a specialty, a clinic type, a priority) is in effect
    // from when this reference data began, and has not ended.
    let effective_from =
        json!({"code": "effectiveFrom", "valueDateTime": "2020-01-01T00:00:00.000Z"});
    let concepts: Vec<Value> = concepts
        .into_iter()
        .map(|mut concept| {
            match concept.get_mut("property").and_then(Value::as_array_mut) {
                Some(list) if list.iter().any(|p| p["code"] == "effectiveFrom") => {}
                Some(list) => list.insert(0, effective_from.clone()),
                None => concept["property"] = json!([effective_from.clone()]),
            }
            concept
        })
        .collect();
    let mut properties = properties;
    properties.insert(0, property("effectiveTo", "dateTime"));
    properties.insert(0, property("effectiveFrom", "dateTime"));
    let mut system = json!({
        "resourceType": "CodeSystem",
        "id": kind,
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/shareablecodesystem"]},
        "url": format!("{stu3_base}/CodeSystem/{kind}"),
        "version": "1",
        "name": name,
        "status": "active",
        "experimental": false,
        // When this reference data last changed.
        "date": "2026-12-01T00:00:00.000Z",
        "publisher": "e-Referral Service",
        "description": name,
        "caseSensitive": true,
        "content": "complete",
        "concept": concepts,
    });
    system["property"] = Value::Array(properties);
    Some(system)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concepts(kind: &str) -> Vec<Value> {
        code_system(kind, "https://example.org/STU3").expect("a served type")["concept"]
            .as_array()
            .expect("concepts")
            .clone()
    }

    fn property<'c>(concept: &'c Value, code: &str) -> Vec<&'c Value> {
        concept["property"]
            .as_array()
            .expect("properties")
            .iter()
            .filter(|p| p["code"] == code)
            .collect()
    }

    #[test]
    fn the_reason_lists_are_the_official_ones_each_code_once() {
        for (kind, count) in [
            ("APPOINTMENT-CANCELLATION-REASON", 36),
            ("REFERRAL-CANCELLATION-REASON", 18),
            ("APPOINTMENT-NON-ATTENDANCE-REASON", 8),
        ] {
            let concepts = concepts(kind);
            assert_eq!(concepts.len(), count, "{kind}");
            let mut codes: Vec<&str> = concepts
                .iter()
                .map(|c| c["code"].as_str().unwrap())
                .collect();
            codes.sort_unstable();
            codes.dedup();
            assert_eq!(codes.len(), count, "{kind} has a code twice");
            for concept in &concepts {
                assert_eq!(property(concept, "effectiveFrom").len(), 1, "{concept}");
            }
        }
        assert_eq!(
            APPOINTMENT_CANCELLATION_REASONS.len(),
            APPOINTMENT_CANCELLATION.len()
        );
        assert_eq!(
            REFERRAL_CANCELLATION_REASONS.len(),
            REFERRAL_CANCELLATION.len()
        );
        assert!(
            NON_ATTENDANCE_ENDED
                .iter()
                .all(|(code, _)| NON_ATTENDANCE_REASONS.iter().any(|(c, _)| c == code))
        );
    }

    #[test]
    fn an_appointment_reason_says_who_may_use_it_and_whether_it_needs_a_comment() {
        let concepts = concepts("APPOINTMENT-CANCELLATION-REASON");
        let concept = |code: &str| {
            concepts
                .iter()
                .find(|c| c["code"] == code)
                .unwrap_or_else(|| panic!("{code}"))
        };
        let functions = |code: &str| -> Vec<&str> {
            property(concept(code), "businessFunction")
                .iter()
                .map(|p| p["valueCoding"]["code"].as_str().unwrap())
                .collect()
        };
        let other = concept("PATIENT_APPOINTMENT_CANCELLATION_OTHER");
        assert_eq!(
            property(other, "commentIsMandatory")[0]["valueBoolean"],
            true
        );
        assert_eq!(property(other, "usage")[0]["valueCoding"]["code"], "CANCEL");
        assert_eq!(
            functions("PATIENT_APPOINTMENT_CANCELLATION_OTHER"),
            ["REFERRING_CLINICIAN_ADMIN", "REFERRING_CLINICIAN"]
        );
        // Rejection reasons stay the provider's; withdrawn reasons are nobody's and say so.
        assert_eq!(
            functions("SERVICE_INAPPROPRIATE"),
            [
                "SERVICE_PROVIDER_CLINICIAN_ADMIN",
                "SERVICE_PROVIDER_CLINICIAN"
            ]
        );
        assert!(functions("WRONG_PROVIDER").is_empty());
        assert_eq!(property(concept("WRONG_PROVIDER"), "effectiveTo").len(), 1);
        assert!(property(concept("PATIENT_ILL"), "effectiveTo").is_empty());
    }

    #[test]
    fn referral_reasons_no_one_may_choose_carry_no_business_function_or_usage() {
        for code in [
            "PATIENT_APPOINTMENT_CANCELLATION_OTHER",
            "PROVIDER_CANCELLATION",
        ] {
            let (_, _, _, by) = REFERRAL_CANCELLATION_REASONS
                .iter()
                .find(|(c, ..)| *c == code)
                .expect("listed");
            assert_eq!(*by, CancelledBy::Nobody);
        }
        for concept in concepts("REFERRAL-CANCELLATION-REASON") {
            let nobody = REFERRAL_CANCELLATION
                .iter()
                .any(|r| concept["code"] == r.code && r.by == CancelledBy::Nobody);
            assert_eq!(
                property(&concept, "businessFunction").is_empty(),
                nobody,
                "{concept}"
            );
            assert_eq!(
                property(&concept, "referrerUsage").is_empty(),
                nobody,
                "{concept}"
            );
        }
        let provider_only = REFERRAL_CANCELLATION
            .iter()
            .find(|r| r.code == "BOOKED_OUTSIDE_CAB")
            .unwrap();
        assert_eq!(provider_only.by, CancelledBy::Provider);
    }
}
