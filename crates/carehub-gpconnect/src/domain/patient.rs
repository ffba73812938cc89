//! A patient's record at the GP system: demographics kept in step with PDS, the registration
//! (regular GMS or temporary, its period, whether it is active), and the flags that decide what
//! a consumer may see (sensitive, deceased, dissent, a record in transit). Registering a patient
//! (`$gpc.registerpatient`) follows the spec's PDS checks.

use carehub_spine::pds::PdsPatient;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{GpcError, SpineCode};
use super::{SYSTEM_NHS_NUMBER, directory::PostalAddress};

const PROFILE_PATIENT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1";
const EXTENSION_REGISTRATION: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1";
const EXTENSION_VERIFICATION: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1";
const SYSTEM_VERIFICATION: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1";
const SYSTEM_REGISTRATION_TYPE: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-RegistrationType-1";

/// How the patient is registered at the practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistrationType {
    /// A regular (GMS) registration.
    Regular,
    /// A temporary registration, the only kind `$gpc.registerpatient` makes.
    Temporary,
}

impl RegistrationType {
    fn coding(self) -> Value {
        let (code, display) = match self {
            RegistrationType::Regular => ("R", "Regular"),
            RegistrationType::Temporary => ("T", "Temporary"),
        };
        json!({"system": SYSTEM_REGISTRATION_TYPE, "code": code, "display": display})
    }
}

/// The patient's registration at the practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub kind: RegistrationType,
    /// `YYYY-MM-DD`.
    pub start: String,
    /// When it ended (the patient left), if it has.
    pub end: Option<String>,
    /// The organisation (logical id) the patient is registered with.
    pub organisation: String,
    /// The usual GP (Practitioner logical id).
    pub usual_gp: Option<String>,
    /// The preferred branch surgery (Location logical id).
    pub preferred_branch: Option<String>,
}

/// A patient's record at the GP system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpPatient {
    /// The logical id.
    pub id: String,
    pub nhs_number: String,
    pub prefix: Option<String>,
    pub given: Vec<String>,
    pub family: String,
    pub gender: String,
    pub birth_date: String,
    pub deceased: Option<String>,
    pub address: Option<PostalAddress>,
    pub telephone: Option<String>,
    pub registration: Registration,
    /// Whether the NHS number was traced and verified on PDS.
    pub verified: bool,
    /// Flagged sensitive: treated as not found by every interaction that reads it.
    pub sensitive: bool,
    /// The patient has dissented from sharing their record.
    pub dissent: bool,
    /// The record is still arriving from the previous practice (GP2GP not complete).
    pub in_transit: bool,
}

impl GpPatient {
    /// Active in the sense of "Find a patient": registered now (not left), alive, traced on
    /// PDS, and not sensitive. Other patients are invisible to consumers.
    pub fn is_visible(&self) -> bool {
        self.registration.end.is_none()
            && self.deceased.is_none()
            && self.verified
            && !self.sensitive
    }

    /// Whether the registration is current.
    pub fn is_registered(&self) -> bool {
        self.registration.end.is_none()
    }

    /// As CareConnect-GPC-Patient-1, with the store `version`.
    pub fn to_resource(&self, version: i64) -> Value {
        let mut registration = vec![
            json!({"url": "registrationPeriod", "valuePeriod": period(&self.registration)}),
            json!({"url": "registrationType",
                   "valueCodeableConcept": {"coding": [self.registration.kind.coding()]}}),
        ];
        if let Some(branch) = &self.registration.preferred_branch {
            registration.push(json!({"url": "preferredBranchSurgery",
                                     "valueReference": {"reference": format!("Location/{branch}")}}));
        }
        let (code, display) = if self.verified {
            ("01", "Number present and verified")
        } else {
            ("02", "Number present but not traced")
        };
        let mut name = json!({"use": "official", "family": self.family, "given": self.given});
        if let Some(prefix) = &self.prefix {
            name["prefix"] = json!([prefix]);
        }
        let mut resource = json!({
            "resourceType": "Patient",
            "id": self.id,
            "meta": {"versionId": version.to_string(), "profile": [PROFILE_PATIENT]},
            "extension": [{"url": EXTENSION_REGISTRATION, "extension": registration}],
            "identifier": [{
                "extension": [{
                    "url": EXTENSION_VERIFICATION,
                    "valueCodeableConcept": {"coding": [{"system": SYSTEM_VERIFICATION, "code": code, "display": display}]},
                }],
                "system": SYSTEM_NHS_NUMBER,
                "value": self.nhs_number,
            }],
            "active": self.is_registered(),
            "name": [name],
            "gender": self.gender,
            "birthDate": self.birth_date,
        });
        if let Some(telephone) = &self.telephone {
            resource["telecom"] = json!([{"system": "phone", "value": telephone, "use": "home"}]);
        }
        if let Some(deceased) = &self.deceased {
            resource["deceasedDateTime"] = json!(deceased);
        }
        if let Some(address) = &self.address {
            resource["address"] = json!([address.to_fhir("home")]);
        }
        if let Some(gp) = &self.registration.usual_gp {
            resource["generalPractitioner"] = json!([{"reference": format!("Practitioner/{gp}")}]);
        }
        resource["managingOrganization"] =
            json!({"reference": format!("Organization/{}", self.registration.organisation)});
        resource
    }

    /// A new record from PDS demographics.
    pub fn from_pds(id: String, pds: &PdsPatient, registration: Registration) -> GpPatient {
        let mut patient = GpPatient {
            id,
            nhs_number: pds.nhs_number.clone(),
            prefix: None,
            given: Vec::new(),
            family: String::new(),
            gender: String::new(),
            birth_date: String::new(),
            deceased: None,
            address: None,
            telephone: None,
            registration,
            verified: true,
            sensitive: false,
            dissent: false,
            in_transit: false,
        };
        patient.sync_with(pds);
        patient
    }

    /// Takes PDS's demographics (the official name, birth, death, address, telephone).
    pub fn sync_with(&mut self, pds: &PdsPatient) {
        self.prefix = pds.prefix.clone();
        self.given = pds.given.clone();
        self.family = pds.family.clone();
        self.gender = pds.gender.clone();
        self.birth_date = pds.birth_date.clone();
        self.deceased = pds.deceased.clone();
        self.telephone = pds.telephone.clone();
        self.address = pds.postcode.as_ref().map(|postcode| PostalAddress {
            lines: pds
                .address_lines
                .iter()
                .take(pds.address_lines.len().saturating_sub(1))
                .cloned()
                .collect(),
            city: pds.address_lines.last().cloned().unwrap_or_default(),
            postcode: postcode.clone(),
        });
        self.verified = pds.verified;
        self.sensitive = pds.restricted;
    }
}

fn period(registration: &Registration) -> Value {
    let mut period = json!({"start": registration.start});
    if let Some(end) = &registration.end {
        period["end"] = json!(end);
    }
    period
}

/// What `$gpc.registerpatient` was asked to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    pub nhs_number: String,
    pub family: String,
    pub given: Vec<String>,
    /// Optional in the request (PDS knows it).
    pub gender: Option<String>,
    pub birth_date: String,
}

/// Elements a registration may not carry: the GP system, not the consumer, decides them.
const FORBIDDEN_ON_REGISTER: [&str; 14] = [
    "active",
    "multipleBirthBoolean",
    "multipleBirthInteger",
    "generalPractitioner",
    "contact",
    "managingOrganization",
    "maritalStatus",
    "animal",
    "communication",
    "photo",
    "deceasedBoolean",
    "deceasedDateTime",
    "link",
    "careProvider",
];

const EXTENSION_NHS_COMMUNICATION: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSCommunication-1";

/// Reads a `GPConnect-RegisterPatient-Operation-1` Parameters resource: one parameter
/// `registerPatient` holding the Patient. The codes follow the provider test suite's table:
/// a body that is not what the operation takes is `INVALID_RESOURCE` (422), a Patient that
/// lacks what a registration needs is `BAD_REQUEST` (400), a missing or invalid NHS number
/// `INVALID_NHS_NUMBER`.
pub fn parse_register(parameters: &Value) -> Result<RegisterRequest, GpcError> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(GpcError::invalid_resource(
            "The body must be a Parameters resource",
        ));
    }
    let items = parameters
        .get("parameter")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut patient = None;
    for item in &items {
        match item.get("name").and_then(Value::as_str) {
            Some("registerPatient") if patient.is_none() => patient = item.get("resource"),
            Some("registerPatient") => {
                return Err(GpcError::bad_request(
                    "'registerPatient' may be sent only once",
                ));
            }
            Some(other) => {
                return Err(GpcError::invalid_resource(format!(
                    "Unknown parameter '{other}'; $gpc.registerpatient takes 'registerPatient' only"
                )));
            }
            None => return Err(GpcError::invalid_resource("A parameter has no name")),
        }
    }
    let patient = patient
        .filter(|p| p.get("resourceType").and_then(Value::as_str) == Some("Patient"))
        .ok_or_else(|| {
            GpcError::invalid_resource(
                "The parameter 'registerPatient' must hold a Patient resource",
            )
        })?;
    for element in FORBIDDEN_ON_REGISTER {
        if patient.get(element).is_some() {
            return Err(GpcError::invalid_resource(format!(
                "Patient.{element} may not be sent when registering a patient"
            )));
        }
    }
    let extensions = patient
        .get("extension")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if extensions
        .iter()
        .filter(|e| e.get("url").and_then(Value::as_str) == Some(EXTENSION_NHS_COMMUNICATION))
        .count()
        > 1
    {
        return Err(GpcError::invalid_resource(
            "At most one nhsCommunication extension may be sent",
        ));
    }
    check_addresses(patient)?;
    check_telecoms(patient)?;

    let identifiers = patient
        .get("identifier")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if identifiers.iter().any(|i| {
        i.get("system")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    }) {
        return Err(GpcError::bad_request(
            "Every identifier of the Patient must have a system",
        ));
    }
    let nhs_identifiers: Vec<&Value> = identifiers
        .iter()
        .filter(|i| i.get("system").and_then(Value::as_str) == Some(SYSTEM_NHS_NUMBER))
        .collect();
    let [identifier] = nhs_identifiers.as_slice() else {
        return Err(GpcError::new(
            SpineCode::InvalidNhsNumber,
            format!("The Patient must have exactly one identifier of system {SYSTEM_NHS_NUMBER}"),
        ));
    };
    let nhs_number = identifier
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !carehub_spine::is_valid_nhs_number(nhs_number) {
        return Err(GpcError::new(
            SpineCode::InvalidNhsNumber,
            format!("'{nhs_number}' is not a valid NHS number"),
        ));
    }
    let official: Vec<&Value> = patient
        .get("name")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter(|n| n.get("use").and_then(Value::as_str) == Some("official"))
                .collect()
        })
        .unwrap_or_default();
    let [official] = official.as_slice() else {
        return Err(GpcError::bad_request(
            "The Patient must have exactly one name with use 'official'",
        ));
    };
    let family = official
        .get("family")
        .and_then(Value::as_str)
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| GpcError::bad_request("The official name must have a family name"))?;
    let given: Vec<String> = official
        .get("given")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if given.is_empty() {
        return Err(GpcError::bad_request(
            "The official name must have a given name",
        ));
    }
    let birth_date = patient
        .get("birthDate")
        .and_then(Value::as_str)
        .filter(|d| d.len() == 10)
        .ok_or_else(|| {
            GpcError::bad_request("The Patient must have a full birthDate (YYYY-MM-DD)")
        })?;
    Ok(RegisterRequest {
        nhs_number: nhs_number.to_owned(),
        family: family.to_owned(),
        given,
        gender: patient
            .get("gender")
            .and_then(Value::as_str)
            .map(str::to_owned),
        birth_date: birth_date.to_owned(),
    })
}

/// One home address and one temporary address at most; no other kind.
fn check_addresses(patient: &Value) -> Result<(), GpcError> {
    let uses: Vec<&str> = patient
        .get("address")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|a| a.get("use").and_then(Value::as_str).unwrap_or("home"))
                .collect()
        })
        .unwrap_or_default();
    for kind in &uses {
        if !matches!(*kind, "home" | "temp") {
            return Err(GpcError::invalid_resource(format!(
                "A '{kind}' address may not be sent; send one home address and at most one temp address"
            )));
        }
        if uses.iter().filter(|u| *u == kind).count() > 1 {
            return Err(GpcError::invalid_resource(format!(
                "Only one '{kind}' address may be sent"
            )));
        }
    }
    Ok(())
}

/// At most one telephone number per use, and one e-mail address.
fn check_telecoms(patient: &Value) -> Result<(), GpcError> {
    let telecoms: Vec<(&str, &str)> = patient
        .get("telecom")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .map(|t| {
                    (
                        t.get("system").and_then(Value::as_str).unwrap_or(""),
                        t.get("use").and_then(Value::as_str).unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let emails = telecoms
        .iter()
        .filter(|(system, _)| *system == "email")
        .count();
    if emails > 1 {
        return Err(GpcError::bad_request(
            "At most one e-mail address may be sent",
        ));
    }
    for (i, (system, use_)) in telecoms.iter().enumerate() {
        if *system == "phone"
            && telecoms[..i]
                .iter()
                .any(|(s, u)| *s == "phone" && u == use_)
        {
            return Err(GpcError::bad_request(format!(
                "Only one '{use_}' telephone number may be sent"
            )));
        }
    }
    Ok(())
}

/// PDS retrieval and verification of a registration request, in the spec's order: the
/// number must be on PDS and not superseded, the patient alive and not restricted, and the
/// demographics must match (an exact birth date, or two of its three parts together with the
/// first three letters of the family name and the first initial).
///
/// A family name that matches nothing is `BAD_REQUEST`, as the provider test suite expects
/// (the spec says `INVALID_PATIENT_DEMOGRAPHICS`; suppliers are assured against the suite).
pub fn verify_with_pds(
    request: &RegisterRequest,
    pds: Option<&PdsPatient>,
) -> Result<(), GpcError> {
    let demographics = |why: String| GpcError::new(SpineCode::InvalidPatientDemographics, why);
    let Some(pds) = pds else {
        return Err(demographics(format!(
            "NHS number {} is not on PDS",
            request.nhs_number
        )));
    };
    if let Some(current) = &pds.superseded_by {
        return Err(GpcError::new(
            SpineCode::InvalidNhsNumber,
            format!(
                "NHS number {} is superseded on PDS (by {current})",
                request.nhs_number
            ),
        ));
    }
    if !pds.verified {
        return Err(demographics(format!(
            "NHS number {} is not verified on PDS",
            request.nhs_number
        )));
    }
    if pds.is_deceased() {
        return Err(demographics("PDS records the patient as deceased".into()));
    }
    if pds.restricted {
        return Err(demographics(
            "The patient is flagged sensitive on PDS".into(),
        ));
    }
    if !pds.family.eq_ignore_ascii_case(&request.family)
        && !family_prefix_matches(&request.family, &pds.family)
    {
        return Err(GpcError::bad_request(format!(
            "The family name '{}' does not match PDS",
            request.family
        )));
    }
    if request.birth_date == pds.birth_date {
        return Ok(());
    }
    let parts_matching = request
        .birth_date
        .split('-')
        .zip(pds.birth_date.split('-'))
        .filter(|(a, b)| a == b)
        .count();
    let initial = |names: &[String]| {
        names
            .first()
            .and_then(|n| n.chars().next())
            .map(|c| c.to_ascii_uppercase())
    };
    if parts_matching >= 2
        && family_prefix_matches(&request.family, &pds.family)
        && initial(&request.given).is_some()
        && initial(&request.given) == initial(&pds.given)
    {
        return Ok(());
    }
    Err(demographics(format!(
        "The date of birth {} does not match PDS",
        request.birth_date
    )))
}

fn family_prefix_matches(sent: &str, held: &str) -> bool {
    let prefix = |name: &str| {
        name.chars()
            .take(3)
            .collect::<String>()
            .to_ascii_uppercase()
    };
    sent.chars().count() >= 3 && prefix(sent) == prefix(held)
}

/// What registering does to the GP record: a new temporary registration, or the re-activation
/// of an inactive record as temporary. An active record is a duplicate.
pub fn register(
    existing: Option<GpPatient>,
    new_id: impl FnOnce() -> String,
    pds: &PdsPatient,
    organisation: &str,
    today: &str,
) -> Result<GpPatient, GpcError> {
    let registration = Registration {
        kind: RegistrationType::Temporary,
        start: today.to_owned(),
        end: None,
        organisation: organisation.to_owned(),
        usual_gp: None,
        preferred_branch: None,
    };
    match existing {
        Some(patient) if patient.is_registered() => Err(GpcError::new(
            SpineCode::DuplicateRejected,
            format!(
                "NHS number {} is already registered at this practice ({:?})",
                patient.nhs_number, patient.registration.kind
            ),
        )),
        Some(mut patient) => {
            patient.sync_with(pds);
            patient.registration = registration;
            Ok(patient)
        }
        None => Ok(GpPatient::from_pds(new_id(), pds, registration)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pds() -> PdsPatient {
        PdsPatient {
            nhs_number: "9690937286".into(),
            prefix: Some("Mrs".into()),
            given: vec!["Alice".into()],
            family: "Jones".into(),
            gender: "female".into(),
            birth_date: "1968-03-14".into(),
            deceased: None,
            address_lines: vec!["1 High Street".into(), "Leeds".into()],
            postcode: Some("LS1 4HR".into()),
            telephone: None,
            gp_practice: Some("B82617".into()),
            restricted: false,
            verified: true,
            superseded_by: None,
        }
    }

    fn request() -> RegisterRequest {
        RegisterRequest {
            nhs_number: "9690937286".into(),
            family: "Jones".into(),
            given: vec!["Alice".into()],
            gender: Some("female".into()),
            birth_date: "1968-03-14".into(),
        }
    }

    #[test]
    fn pds_checks_give_the_spec_codes() {
        assert!(verify_with_pds(&request(), Some(&pds())).is_ok());
        let code = |pds: Option<PdsPatient>| {
            verify_with_pds(&request(), pds.as_ref())
                .expect_err("refused")
                .code
        };
        assert_eq!(code(None), SpineCode::InvalidPatientDemographics);
        assert_eq!(
            code(Some(PdsPatient {
                superseded_by: Some("9690937294".into()),
                ..pds()
            })),
            SpineCode::InvalidNhsNumber
        );
        assert_eq!(
            code(Some(PdsPatient {
                deceased: Some("2020-01-01T00:00:00+00:00".into()),
                ..pds()
            })),
            SpineCode::InvalidPatientDemographics
        );
        assert_eq!(
            code(Some(PdsPatient {
                restricted: true,
                ..pds()
            })),
            SpineCode::InvalidPatientDemographics
        );
        assert_eq!(
            code(Some(PdsPatient {
                family: "Smith".into(),
                ..pds()
            })),
            SpineCode::BadRequest
        );
    }

    #[test]
    fn two_birth_date_parts_match_with_name_prefix_and_initial() {
        let near = RegisterRequest {
            birth_date: "1968-03-15".into(),
            family: "JONESY".into(),
            ..request()
        };
        assert!(verify_with_pds(&near, Some(&pds())).is_ok());
        let far = RegisterRequest {
            birth_date: "1968-04-15".into(),
            ..request()
        };
        assert_eq!(
            verify_with_pds(&far, Some(&pds())).expect_err("dob").code,
            SpineCode::InvalidPatientDemographics
        );
        let other_initial = RegisterRequest {
            birth_date: "1968-03-15".into(),
            given: vec!["Bea".into()],
            ..request()
        };
        assert!(verify_with_pds(&other_initial, Some(&pds())).is_err());
    }

    #[test]
    fn registering_makes_temporary_registrations_only() {
        let made = register(None, || "7".into(), &pds(), "1", "2026-12-01").expect("new");
        assert_eq!(made.registration.kind, RegistrationType::Temporary);
        assert!(made.is_visible());
        let duplicate = register(Some(made.clone()), || "8".into(), &pds(), "1", "2026-12-01");
        assert_eq!(
            duplicate.expect_err("dup").code,
            SpineCode::DuplicateRejected
        );
        let mut left = made;
        left.registration.kind = RegistrationType::Regular;
        left.registration.end = Some("2020-01-01".into());
        let back =
            register(Some(left), || "9".into(), &pds(), "1", "2026-12-01").expect("re-activated");
        assert_eq!(back.id, "7");
        assert_eq!(back.registration.kind, RegistrationType::Temporary);
        assert!(back.registration.end.is_none());
    }
}
