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
}

/// A referral cancellation reason: (code, display, whether a comment is mandatory, who may use
/// it).
pub const REFERRAL_CANCELLATION_REASONS: &[(&str, &str, bool, CancelledBy)] = &[
    (
        "BOOKED_CLINICAL_NEED",
        "Booked more urgently due to clinical need",
        true,
        CancelledBy::Provider,
    ),
    (
        "BOOKED_OUTSIDE_CAB",
        "Patient booked outside NHS e-Referral Service",
        false,
        CancelledBy::Provider,
    ),
    (
        "COMMUNITY_SERVICE_NA",
        "Sent to community service not available in this system",
        true,
        CancelledBy::Provider,
    ),
    (
        "COMPLEX_PATHWAY",
        "Complex pathway, multiple appointments needed",
        true,
        CancelledBy::Provider,
    ),
    (
        "INTEND_PRIVATE",
        "Patient will go to a private clinic",
        false,
        CancelledBy::Both,
    ),
    (
        "NO_LONGER_REQUIRED",
        "Referral is no longer required",
        true,
        CancelledBy::Provider,
    ),
    ("OTHER_OTHER", "Other reason", true, CancelledBy::Provider),
    (
        "OUTPATIENT_CLINICIAN_NA",
        "Sent to outpatient service as named clinician is not available in this system",
        true,
        CancelledBy::Provider,
    ),
    (
        "OUTPATIENT_SERVICE_NA",
        "Sent to outpatient service not available in this system",
        true,
        CancelledBy::Provider,
    ),
    ("PATIENT_DIED", "Patient died", false, CancelledBy::Both),
    (
        "PATIENT_REQUEST_CANCELLATION_OTHER",
        "Other",
        true,
        CancelledBy::Both,
    ),
    (
        "RAISED_IN_ERROR",
        "Referral created by mistake",
        false,
        CancelledBy::Referrer,
    ),
    (
        "REFERRER_CANCELLATION",
        "Other - Referrer request cancellation",
        false,
        CancelledBy::Referrer,
    ),
    (
        "STRAIGHT_TO_TEST",
        "Sent straight to test / procedure",
        true,
        CancelledBy::Provider,
    ),
    (
        "TREATMENT_NO_LONGER_REQUIRED",
        "Referral no longer needed",
        false,
        CancelledBy::Both,
    ),
    ("TRIAGE_ENDED", "Triage Ended", false, CancelledBy::Provider),
];

/// Appointment cancellation reasons: (code, display).
pub const APPOINTMENT_CANCELLATION_REASONS: &[(&str, &str)] = &[
    (
        "APPT_MADE_FOR_WRONG_PATIENT",
        "Appt. made for wrong patient",
    ),
    ("CLINIC_CANCELLED", "Clinic cancelled"),
    ("CLINIC_OVERRUN", "Clinic overrun"),
    (
        "FURTHER_INFORMATION_REQUIRED",
        "Further information required",
    ),
    ("OTHER", "Other reason"),
    (
        "OUTPATIENT_APPT_NOT_REQUIRED",
        "Outpatient appointment not required",
    ),
    (
        "PATIENT_APPOINTMENT_CLASH",
        "Patient - Clashes with another appointment",
    ),
    ("PATIENT_HOLIDAY", "Patient on holiday"),
    ("PATIENT_ILL", "Patient is sick"),
    ("PRIORITY_CHANGE", "Priority change for other reasons"),
    ("PRIORITY_INAPPROPRIATE", "Inappropriate priority"),
    (
        "REDIRECTED_APPROPRIATE_CLINIC",
        "Redirected to more appropriate clinic",
    ),
    (
        "REDIRECTED_APPROPRIATE_SPECIALTY",
        "Redirected to more appropriate specialty",
    ),
    (
        "SERVICE_PREREQUISITES_NOT_COMPLETE",
        "Pre-requisites for service not complete",
    ),
    ("PROVIDER_CANCELLATION", "Other - Provider cancellation"),
    ("SERVICE_INAPPROPRIATE", "Inappropriate service"),
    ("SLOT_CANCELLED", "Slot cancelled"),
    ("WRONG_PROVIDER", "Appt. made with wrong provider"),
];

/// Appointment non-attendance reasons: (code, display).
pub const NON_ATTENDANCE_REASONS: &[(&str, &str)] = &[
    ("CANCELLED_TOO_LATE", "Cancelled too late"),
    ("ARRIVED_TOO_LATE", "Patient arrived too late to be seen"),
    ("PATIENT_FORGOT", "Patient forgot about appointment"),
    ("PATIENT_DIED", "Patient died"),
    ("PATIENT_ILL", "Patient ill"),
    ("UNKNOWN", "Reason not known"),
    ("NOT_SPECIFIED", "Not specified"),
];

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
            vec![property("commentIsMandatory", "boolean"), property("businessFunction", "Coding")],
            REFERRAL_CANCELLATION_REASONS
                .iter()
                .map(|(c, d, comment, by)| {
                    let mut functions = Vec::new();
                    if matches!(by, CancelledBy::Referrer | CancelledBy::Both) {
                        functions.extend(["REFERRING_CLINICIAN", "REFERRING_CLINICIAN_ADMIN"]);
                    }
                    if matches!(by, CancelledBy::Provider | CancelledBy::Both) {
                        functions.extend([
                            "SERVICE_PROVIDER_CLINICIAN",
                            "SERVICE_PROVIDER_CLINICIAN_ADMIN",
                            "PROVIDER_AUTHORISED_APPLICATION",
                        ]);
                    }
                    let mut properties = vec![json!({"code": "commentIsMandatory", "valueBoolean": comment})];
                    properties.extend(functions.into_iter().map(|f| {
                        json!({"code": "businessFunction", "valueCoding": {"system": BUSINESS_FUNCTION_SYSTEM, "code": f}})
                    }));
                    json!({"code": c, "display": d, "property": properties})
                })
                .collect(),
        ),
        "APPOINTMENT-CANCELLATION-REASON" => (
            "e-RS Appointment Cancellation Reason",
            vec![],
            APPOINTMENT_CANCELLATION_REASONS.iter().map(|(c, d)| json!({"code": c, "display": d})).collect(),
        ),
        "APPOINTMENT-NON-ATTENDANCE-REASON" => (
            "e-RS Appointment Non-attendance Reason",
            vec![],
            NON_ATTENDANCE_REASONS.iter().map(|(c, d)| json!({"code": c, "display": d})).collect(),
        ),
        _ => return None,
    };
    // Every concept is in effect from when this reference data began; none has ended.
    let effective_from =
        json!({"code": "effectiveFrom", "valueDateTime": "2020-01-01T00:00:00.000Z"});
    let concepts: Vec<Value> = concepts
        .into_iter()
        .map(|mut concept| {
            match concept.get_mut("property").and_then(Value::as_array_mut) {
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
