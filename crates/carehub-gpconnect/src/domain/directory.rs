//! The GP system's directory: organisations (the practices and others it knows), their sites
//! as locations, practitioners with their SDS ids, and healthcare services; and their views as
//! the GP Connect profiles.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{SYSTEM_DOS_SERVICE, SYSTEM_ODS, SYSTEM_ODS_SITE, SYSTEM_SDS_ROLE, SYSTEM_SDS_USER};

const PROFILE_ORGANIZATION: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Organization-1";
const PROFILE_LOCATION: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Location-1";
const PROFILE_PRACTITIONER: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Practitioner-1";
const PROFILE_HEALTHCARE_SERVICE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-HealthcareService-1";

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    pub lines: Vec<String>,
    pub city: String,
    pub postcode: String,
}

impl PostalAddress {
    /// As a FHIR Address of `use_`.
    pub fn to_fhir(&self, use_: &str) -> Value {
        json!({
            "use": use_,
            "type": "physical",
            "line": self.lines,
            "city": self.city,
            "postalCode": self.postcode,
        })
    }
}

/// An organisation the GP system knows: a practice it serves, or another one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    /// The logical id.
    pub id: String,
    pub ods: String,
    pub name: String,
    pub telephone: String,
    pub address: PostalAddress,
    /// The provider's ASID, when the GP system serves GP Connect for it (a service root).
    pub asid: Option<String>,
}

/// A site of an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub id: String,
    /// The ODS site code, when it has one.
    pub site_code: Option<String>,
    pub name: String,
    pub telephone: String,
    pub address: PostalAddress,
    /// The managing organisation's id.
    pub organisation: String,
}

/// A practitioner with their SDS user id and role profile ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Practitioner {
    pub id: String,
    pub sds_user_id: String,
    pub role_profile_ids: Vec<String>,
    pub prefix: String,
    pub given: String,
    pub family: String,
    /// `male`, `female`, `other`, `unknown`.
    pub gender: String,
    /// The organisation they work for.
    pub organisation: String,
}

/// A healthcare service, identified by its Directory of Services id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthcareService {
    pub id: String,
    pub dos_service_id: String,
    pub name: String,
    pub organisation: String,
    pub locations: Vec<String>,
}

fn meta(profile: &str, version: i64) -> Value {
    json!({"versionId": version.to_string(), "profile": [profile]})
}

impl Organisation {
    /// As CareConnect-GPC-Organization-1.
    pub fn to_resource(&self, version: i64) -> Value {
        json!({
            "resourceType": "Organization",
            "id": self.id,
            "meta": meta(PROFILE_ORGANIZATION, version),
            "identifier": [{"system": SYSTEM_ODS, "value": self.ods}],
            "name": self.name,
            "telecom": [{"system": "phone", "value": self.telephone, "use": "work"}],
            "address": [self.address.to_fhir("work")],
        })
    }
}

impl Location {
    /// As CareConnect-GPC-Location-1.
    pub fn to_resource(&self, version: i64) -> Value {
        let mut resource = json!({
            "resourceType": "Location",
            "id": self.id,
            "meta": meta(PROFILE_LOCATION, version),
            "status": "active",
            "name": self.name,
            "telecom": [{"system": "phone", "value": self.telephone, "use": "work"}],
            "address": self.address.to_fhir("work"),
            "managingOrganization": {"reference": format!("Organization/{}", self.organisation)},
        });
        if let Some(code) = &self.site_code {
            resource["identifier"] = json!([{"system": SYSTEM_ODS_SITE, "value": code}]);
        }
        resource
    }
}

impl Practitioner {
    /// As CareConnect-GPC-Practitioner-1 (no telecom, address, birth date, photo or
    /// qualification: the profile's use cases forbid them).
    pub fn to_resource(&self, version: i64) -> Value {
        let mut identifiers = vec![json!({"system": SYSTEM_SDS_USER, "value": self.sds_user_id})];
        identifiers.extend(
            self.role_profile_ids
                .iter()
                .map(|role| json!({"system": SYSTEM_SDS_ROLE, "value": role})),
        );
        json!({
            "resourceType": "Practitioner",
            "id": self.id,
            "meta": meta(PROFILE_PRACTITIONER, version),
            "identifier": identifiers,
            "name": [{
                "use": "usual",
                "family": self.family,
                "given": [self.given],
                "prefix": [self.prefix],
            }],
            "gender": self.gender,
        })
    }

    /// The practitioner's role at their organisation, as CareConnect-GPC-PractitionerRole-1
    /// (`PractitionerRole/{id}`).
    pub fn role_resource(&self, version: i64) -> Value {
        json!({
            "resourceType": "PractitionerRole",
            "id": self.id,
            "meta": {"versionId": version.to_string(),
                     "profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-PractitionerRole-1"]},
            "practitioner": {"reference": format!("Practitioner/{}", self.id)},
            "organization": {"reference": format!("Organization/{}", self.organisation)},
            "code": [{"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-SDSJobRoleName-1",
                                  "code": "R0260", "display": "General Medical Practitioner"}]}],
        })
    }

    /// "Dr Ada Lovelace", for appointment participants and narratives.
    pub fn display(&self) -> String {
        format!("{} {} {}", self.prefix, self.given, self.family)
    }
}

impl HealthcareService {
    /// As CareConnect-GPC-HealthcareService-1.
    pub fn to_resource(&self, version: i64) -> Value {
        json!({
            "resourceType": "HealthcareService",
            "id": self.id,
            "meta": meta(PROFILE_HEALTHCARE_SERVICE, version),
            "identifier": [{"system": SYSTEM_DOS_SERVICE, "value": self.dos_service_id}],
            "active": true,
            "providedBy": {"reference": format!("Organization/{}", self.organisation)},
            "location": self.locations.iter()
                .map(|id| json!({"reference": format!("Location/{id}")}))
                .collect::<Vec<_>>(),
            "name": self.name,
        })
    }
}
