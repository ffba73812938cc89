//! A PDS record as the PDS FHIR R4 API shows it: UK Core extensions, `meta.security` for the
//! confidentiality, and a restricted patient's location data withheld.

use serde_json::{Value, json};

use super::record::PdsPatient;

const SYSTEM_NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
const SYSTEM_ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const SYSTEM_CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

/// The R4 Patient of `patient` at store `version`; `url` is the API base (for nothing here,
/// but search entries use it for `fullUrl`).
pub fn patient(patient: &PdsPatient, version: i64) -> Value {
    let (code, display) = if patient.restricted {
        ("R", "restricted")
    } else {
        ("U", "unrestricted")
    };
    let (verification, verification_display) = if patient.verified {
        ("01", "Number present and verified")
    } else {
        ("02", "Number present but not traced")
    };
    let mut name = json!({"use": "usual", "given": patient.given, "family": patient.family});
    if let Some(prefix) = &patient.prefix {
        name["prefix"] = json!([prefix]);
    }
    let mut resource = json!({
        "resourceType": "Patient",
        "id": patient.nhs_number,
        "meta": {
            "versionId": version.to_string(),
            "security": [{"system": SYSTEM_CONFIDENTIALITY, "code": code, "display": display}],
        },
        "identifier": [{
            "system": SYSTEM_NHS_NUMBER,
            "value": patient.nhs_number,
            "extension": [{
                "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
                "valueCodeableConcept": {"coding": [{
                    "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatus",
                    "version": "1.0.0",
                    "code": verification,
                    "display": verification_display,
                }]},
            }],
        }],
        "name": [name],
        "gender": patient.gender,
        "birthDate": patient.birth_date,
    });
    if let Some(deceased) = &patient.deceased {
        resource["deceasedDateTime"] = json!(deceased);
        resource["extension"] = json!([{
            "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-DeathNotificationStatus",
            "extension": [{
                "url": "deathNotificationStatus",
                "valueCodeableConcept": {"coding": [{
                    "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-DeathNotificationStatus",
                    "version": "1.0.0",
                    "code": "2",
                    "display": "Formal - death notice received from Registrar of Deaths",
                }]},
            }],
        }]);
    }
    // A restricted patient's whereabouts are withheld: no address, telecom or GP.
    if patient.restricted {
        return resource;
    }
    if let Some(postcode) = &patient.postcode {
        resource["address"] = json!([{
            "use": "home",
            "line": patient.address_lines,
            "postalCode": postcode,
        }]);
    }
    if let Some(telephone) = &patient.telephone {
        resource["telecom"] = json!([{"system": "phone", "value": telephone, "use": "home"}]);
    }
    if let Some(practice) = &patient.gp_practice {
        resource["generalPractitioner"] = json!([{
            "type": "Organization",
            "identifier": {"system": SYSTEM_ODS, "value": practice},
        }]);
    }
    resource
}
