//! The FHIR shape of each record, for STU3 and R4.
//!
//! STU3 resources follow GP Connect's CareConnect profiles (`CareConnect-GPC-*-1`), the STU3
//! NHS API carehub will serve; R4 resources follow the shape the PDS FHIR API returns (UK Core
//! extensions and code systems). Both are plain base FHIR of their version besides: only
//! elements of that version, with the right types, so the server's validator accepts them.
//! Element order follows the resource definitions, which keeps the JSON readable and diffable.

use serde_json::{Map, Value};

use crate::records::{OrganisationLink, OrganisationRecord, PatientRecord, PractitionerRecord};
use crate::text::concat;

/// A FHIR version resources can be generated for. Local to this crate so that it depends on
/// nothing but `serde_json`; callers holding `carehub_fhir::FhirVersion` map it one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FhirVersion {
    Stu3,
    R4,
}

impl FhirVersion {
    /// Both versions, oldest first.
    pub const ALL: [FhirVersion; 2] = [FhirVersion::Stu3, FhirVersion::R4];
}

/// The identifier systems and code systems used, so that consumers can match on them.
pub mod systems {
    pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
    pub const ODS_ORGANIZATION_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
    pub const SDS_USER_ID: &str = "https://fhir.nhs.uk/Id/sds-user-id";
    pub const SDS_ROLE_PROFILE_ID: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";

    /// STU3 job role code system (CareConnect), as GP Connect's PractitionerRole fixes it.
    pub const SDS_JOB_ROLE_STU3: &str =
        "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-SDSJobRoleName-1";
    /// R4 job role code system (NHS Digital).
    pub const SDS_JOB_ROLE_R4: &str = "https://fhir.nhs.uk/CodeSystem/NHSDigital-SDS-JobRoleCode";

    /// The NHS number verification status extension GP Connect's Patient profile requires on
    /// the NHS number (`CareConnect-GPC-Patient-1` types its `nhsNumberVerificationStatus`
    /// slice with this URL, not the HL7 UK CareConnect base one).
    pub const NHS_NUMBER_VERIFICATION_STU3: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1";
    /// The code system that extension's value set draws from.
    pub const NHS_NUMBER_VERIFICATION_CODES_STU3: &str =
        "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1";
    /// The UK Core NHS number verification status extension (PDS FHIR API).
    pub const NHS_NUMBER_VERIFICATION_R4: &str =
        "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
    /// The England code system PDS uses for it; its codes are the NHS Data Dictionary's
    /// two-digit ones (`01` = number present and verified).
    pub const NHS_NUMBER_VERIFICATION_CODES_R4: &str =
        "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";

    /// HL7 v3 Confidentiality, which carries the sensitive (restricted) flag in `meta.security`.
    pub const CONFIDENTIALITY_STU3: &str = "http://hl7.org/fhir/v3/Confidentiality";
    pub const CONFIDENTIALITY_R4: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

    pub const GPC_PATIENT_PROFILE: &str =
        "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1";
    pub const GPC_ORGANIZATION_PROFILE: &str =
        "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Organization-1";
    pub const GPC_PRACTITIONER_PROFILE: &str =
        "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Practitioner-1";
    pub const GPC_PRACTITIONER_ROLE_PROFILE: &str =
        "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-PractitionerRole-1";
}

/// A Patient resource.
///
/// Every patient carries an NHS number with a "number present and verified" status and a
/// confidentiality label (`U` unrestricted, or `R` restricted for sensitive records). The
/// resource holds all the facts even for sensitive patients: withholding them is the serving
/// API's job, and it needs them to decide what to withhold.
pub fn patient_resource(p: &PatientRecord, v: FhirVersion) -> Value {
    let mut r = Map::with_capacity(12);
    r.insert("resourceType".into(), text("Patient"));
    r.insert("id".into(), text(&p.id));
    let security = if p.sensitive {
        confidentiality(v, "R", "restricted")
    } else {
        confidentiality(v, "U", "unrestricted")
    };
    let meta = match v {
        FhirVersion::Stu3 => object([
            ("profile", list([text(systems::GPC_PATIENT_PROFILE)])),
            ("security", list([security])),
        ]),
        FhirVersion::R4 => object([("security", list([security]))]),
    };
    r.insert("meta".into(), meta);

    let (extension_url, code_system) = match v {
        FhirVersion::Stu3 => (
            systems::NHS_NUMBER_VERIFICATION_STU3,
            systems::NHS_NUMBER_VERIFICATION_CODES_STU3,
        ),
        FhirVersion::R4 => (
            systems::NHS_NUMBER_VERIFICATION_R4,
            systems::NHS_NUMBER_VERIFICATION_CODES_R4,
        ),
    };
    let verification = object([
        ("url", text(extension_url)),
        (
            "valueCodeableConcept",
            codeable_concept(code_system, "01", "Number present and verified"),
        ),
    ]);
    r.insert(
        "identifier".into(),
        list([object([
            ("extension", list([verification])),
            ("system", text(systems::NHS_NUMBER)),
            ("value", text(p.nhs_number.as_str())),
        ])]),
    );

    // GP Connect requires the official name; PDS labels the current name `usual`.
    let name_use = match v {
        FhirVersion::Stu3 => "official",
        FhirVersion::R4 => "usual",
    };
    let given = Value::Array(p.given_names().map(text).collect());
    r.insert(
        "name".into(),
        list([human_name(name_use, p.family, given, p.prefix)]),
    );

    let mut telecom = Vec::with_capacity(3);
    if let Some(phone) = &p.home_phone {
        telecom.push(contact_point("phone", phone, "home"));
    }
    if let Some(phone) = &p.mobile_phone {
        telecom.push(contact_point("phone", phone, "mobile"));
    }
    if let Some(email) = &p.email {
        telecom.push(contact_point("email", email, "home"));
    }
    if !telecom.is_empty() {
        r.insert("telecom".into(), Value::Array(telecom));
    }

    r.insert("gender".into(), text(p.gender.code()));
    r.insert("birthDate".into(), Value::String(p.birth_date.to_fhir()));
    if let Some(death) = p.death_date {
        // A date is a valid dateTime; the time of death is not part of the synthetic facts.
        r.insert("deceasedDateTime".into(), Value::String(death.to_fhir()));
    }
    r.insert("address".into(), list([address_value(&p.address, "home")]));
    if let Some(practice) = &p.gp_practice {
        r.insert(
            "generalPractitioner".into(),
            list([organisation_reference(practice, v)]),
        );
    }
    Value::Object(r)
}

/// An Organization resource: a GP practice, a trust, or a trust site (`partOf` its trust).
pub fn organisation_resource(o: &OrganisationRecord, v: FhirVersion) -> Value {
    let mut r = Map::with_capacity(9);
    r.insert("resourceType".into(), text("Organization"));
    r.insert("id".into(), text(&o.id));
    if v == FhirVersion::Stu3 {
        r.insert("meta".into(), profile(systems::GPC_ORGANIZATION_PROFILE));
    }
    r.insert(
        "identifier".into(),
        list([identifier(systems::ODS_ORGANIZATION_CODE, &o.ods_code)]),
    );
    r.insert("active".into(), Value::Bool(true));
    r.insert("name".into(), text(&o.name));
    r.insert(
        "telecom".into(),
        list([contact_point("phone", &o.phone, "work")]),
    );
    r.insert("address".into(), list([address_value(&o.address, "work")]));
    if let Some(parent) = &o.part_of {
        r.insert("partOf".into(), organisation_reference(parent, v));
    }
    Value::Object(r)
}

/// A Practitioner resource, identified by SDS user id.
pub fn practitioner_resource(p: &PractitionerRecord, v: FhirVersion) -> Value {
    let mut r = Map::with_capacity(7);
    r.insert("resourceType".into(), text("Practitioner"));
    r.insert("id".into(), text(&p.id));
    if v == FhirVersion::Stu3 {
        r.insert("meta".into(), profile(systems::GPC_PRACTITIONER_PROFILE));
    }
    r.insert(
        "identifier".into(),
        list([identifier(systems::SDS_USER_ID, &p.sds_user_id)]),
    );
    r.insert("active".into(), Value::Bool(true));
    // GP Connect allows exactly one name.
    let given = list([text(p.given)]);
    r.insert(
        "name".into(),
        list([human_name("usual", p.family, given, p.prefix)]),
    );
    r.insert("gender".into(), text(p.gender.code()));
    Value::Object(r)
}

/// The PractitionerRole of a practitioner: SDS role profile id, job role, and where it is held.
pub fn practitioner_role_resource(p: &PractitionerRecord, v: FhirVersion) -> Value {
    let mut r = Map::with_capacity(8);
    r.insert("resourceType".into(), text("PractitionerRole"));
    r.insert("id".into(), text(&p.role_id));
    if v == FhirVersion::Stu3 {
        r.insert(
            "meta".into(),
            profile(systems::GPC_PRACTITIONER_ROLE_PROFILE),
        );
    }
    r.insert(
        "identifier".into(),
        list([identifier(
            systems::SDS_ROLE_PROFILE_ID,
            &p.sds_role_profile_id,
        )]),
    );
    r.insert("active".into(), Value::Bool(true));
    let mut practitioner = Map::with_capacity(4);
    practitioner.insert(
        "reference".into(),
        Value::String(concat(&["Practitioner/", &p.id])),
    );
    if v == FhirVersion::R4 {
        practitioner.insert("type".into(), text("Practitioner"));
    }
    practitioner.insert(
        "identifier".into(),
        identifier(systems::SDS_USER_ID, &p.sds_user_id),
    );
    practitioner.insert("display".into(), Value::String(p.display_name()));
    r.insert("practitioner".into(), Value::Object(practitioner));
    r.insert(
        "organization".into(),
        organisation_reference(&p.organisation, v),
    );
    let system = match v {
        FhirVersion::Stu3 => systems::SDS_JOB_ROLE_STU3,
        FhirVersion::R4 => systems::SDS_JOB_ROLE_R4,
    };
    r.insert(
        "code".into(),
        list([codeable_concept(
            system,
            p.job_role.code,
            p.job_role.display,
        )]),
    );
    Value::Object(r)
}

// Small builders. Values are assembled directly rather than with `json!`, which serialises each
// leaf through serde: building a million patients spends most of its time allocating, so every
// avoided allocation and rehash shows.

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut map = Map::with_capacity(N);
    for (key, value) in entries {
        map.insert(key.to_owned(), value);
    }
    Value::Object(map)
}

fn list<const N: usize>(items: [Value; N]) -> Value {
    Value::Array(Vec::from(items))
}

fn profile(url: &str) -> Value {
    object([("profile", list([text(url)]))])
}

fn identifier(system: &str, value: &str) -> Value {
    object([("system", text(system)), ("value", text(value))])
}

fn codeable_concept(system: &str, code: &str, display: &str) -> Value {
    object([("coding", list([coding(system, code, display)]))])
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    object([
        ("system", text(system)),
        ("code", text(code)),
        ("display", text(display)),
    ])
}

fn human_name(name_use: &str, family: &str, given: Value, prefix: Option<&str>) -> Value {
    let mut name = Map::with_capacity(4);
    name.insert("use".into(), text(name_use));
    name.insert("family".into(), text(family));
    name.insert("given".into(), given);
    if let Some(prefix) = prefix {
        name.insert("prefix".into(), list([text(prefix)]));
    }
    Value::Object(name)
}

/// A literal reference to an organisation in the pack, with its ODS code as a logical
/// identifier (as PDS gives the registered practice) and its name for display. R4 also states
/// the target type; STU3's Reference has no `type` element.
fn organisation_reference(o: &OrganisationLink, v: FhirVersion) -> Value {
    let mut r = Map::with_capacity(4);
    r.insert(
        "reference".into(),
        Value::String(concat(&["Organization/", &o.id])),
    );
    if v == FhirVersion::R4 {
        r.insert("type".into(), text("Organization"));
    }
    r.insert(
        "identifier".into(),
        identifier(systems::ODS_ORGANIZATION_CODE, &o.ods_code),
    );
    r.insert("display".into(), text(&o.name));
    Value::Object(r)
}

fn confidentiality(v: FhirVersion, code: &str, display: &str) -> Value {
    let system = match v {
        FhirVersion::Stu3 => systems::CONFIDENTIALITY_STU3,
        FhirVersion::R4 => systems::CONFIDENTIALITY_R4,
    };
    coding(system, code, display)
}

fn contact_point(system: &str, value: &str, use_: &str) -> Value {
    object([
        ("system", text(system)),
        ("value", text(value)),
        ("use", text(use_)),
    ])
}

fn address_value(a: &crate::address::Address, use_: &str) -> Value {
    object([
        ("use", text(use_)),
        ("line", list([text(&a.line)])),
        ("city", text(a.city)),
        ("postalCode", text(&a.postcode)),
    ])
}
