//! The provider's CapabilityStatement (`GET /metadata`): the 1.2.8 release, its profiles, the
//! resources and search parameters served, the operations, and the service filtering status.

use serde_json::{Value, json};

/// The GP Connect release the provider implements (Foundations and Appointment Management).
pub const SPEC_VERSION: &str = "1.2.8";

const STRUCTURE_DEFINITION: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/";

/// The profiles the 1.2.8 statement lists, in the specification's order (unversioned).
const PROFILES: [&str; 16] = [
    "CareConnect-GPC-Patient-1",
    "CareConnect-GPC-Organization-1",
    "CareConnect-GPC-Practitioner-1",
    "CareConnect-GPC-PractitionerRole-1",
    "CareConnect-GPC-Location-1",
    "CareConnect-GPC-HealthcareService-1",
    "GPConnect-OperationOutcome-1",
    "GPConnect-Appointment-1",
    "GPConnect-Schedule-1",
    "GPConnect-Slot-1",
    "CareConnect-GPC-AllergyIntolerance-1",
    "CareConnect-GPC-Medication-1",
    "CareConnect-GPC-MedicationStatement-1",
    "CareConnect-GPC-MedicationRequest-1",
    "CareConnect-GPC-List-1",
    "GPConnect-StructuredRecord-Bundle-1",
];

fn interactions(codes: &[&str]) -> Value {
    codes.iter().map(|c| json!({"code": c})).collect()
}

fn token(name: &str, documentation: &str) -> Value {
    json!({"name": name, "type": "token", "documentation": documentation})
}

/// The statement of a provider whose software is `software_version`.
pub fn statement(software_version: &str) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "extension": [{
            "url": format!("{STRUCTURE_DEFINITION}Extension-GPConnect-ServiceFilteringStatus-1"),
            "valueCode": "enabled",
        }],
        "version": SPEC_VERSION,
        "name": "GP Connect",
        "status": "active",
        "date": "2021-10-01",
        "publisher": "carehub",
        "description": "carehub's GP Connect provider: Foundations and Appointment Management 1.2.8",
        "kind": "capability",
        "software": {"name": "carehub", "version": software_version},
        "fhirVersion": "3.0.1",
        "acceptUnknown": "both",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "profile": PROFILES.iter()
            .map(|p| json!({"reference": format!("{STRUCTURE_DEFINITION}{p}")}))
            .collect::<Vec<_>>(),
        "rest": [{
            "mode": "server",
            "security": {"cors": true},
            "resource": [
                {"type": "Patient", "interaction": interactions(&["read", "search-type"]),
                 "searchParam": [token("identifier", "NHS number (e.g. https://fhir.nhs.uk/Id/nhs-number|9690937286)")]},
                {"type": "Organization", "interaction": interactions(&["read", "search-type"]),
                 "searchParam": [token("identifier", "ODS code (e.g. https://fhir.nhs.uk/Id/ods-organization-code|B82617)")]},
                {"type": "HealthcareService", "interaction": interactions(&["read", "search-type"]),
                 "searchParam": [token("identifier", "UEC DOS service ID (e.g. https://fhir.nhs.uk/Id/uec-dos-service-id|1000001)")]},
                {"type": "Practitioner", "interaction": interactions(&["read", "search-type"]),
                 "searchParam": [token("identifier", "SDS user ID (e.g. https://fhir.nhs.uk/Id/sds-user-id|G13579135)")]},
                {"type": "Location", "interaction": interactions(&["read"])},
                {"type": "Appointment", "interaction": interactions(&["read", "create", "update", "search-type"]),
                 "updateCreate": false,
                 "searchParam": [{"name": "start", "type": "date", "documentation": "Start date of the appointment"}]},
                {"type": "Slot", "interaction": interactions(&["search-type"]),
                 "searchInclude": ["Schedule:actor:Location", "Schedule:actor:Practitioner",
                                   "Schedule:actor:HealthcareService", "Slot:schedule",
                                   "Location:managingOrganization"],
                 "searchParam": [
                    {"name": "start", "type": "date", "documentation": "Start date of the slot"},
                    {"name": "end", "type": "date", "documentation": "End date of the slot"},
                    token("status", "Status of the slot (free)"),
                    token("searchFilter", "The consumer's ODS code or organisation type"),
                    {"name": "service.identifier", "type": "token",
                     "definition": "https://fhir.nhs.uk/STU3/SearchParameter/GPConnect-Slot-ServiceIdentifier-1",
                     "documentation": "UEC DOS service ID of the healthcare service the slots belong to"},
                 ]},
            ],
            "operation": [
                {"name": "gpc.registerpatient",
                 "definition": {"reference": "https://fhir.nhs.uk/STU3/OperationDefinition/GPConnect-RegisterPatient-Operation-1"}},
                {"name": "gpc.getstructuredrecord",
                 "definition": {"reference": "https://fhir.nhs.uk/STU3/OperationDefinition/GPConnect-GetStructuredRecord-Operation-1/_history/1.12"}},
            ],
        }],
    })
}

/// The Access Record Structured release the provider implements.
pub const STRUCTURED_VERSION: &str = "1.6.0";

/// The profiles the structured statement lists, with the versions the provider test suite
/// expects.
const STRUCTURED_PROFILES: [&str; 11] = [
    "CareConnect-GPC-Patient-1/_history/1.8",
    "CareConnect-GPC-Organization-1/_history/1.4",
    "CareConnect-GPC-Practitioner-1/_history/1.2",
    "CareConnect-GPC-PractitionerRole-1/_history/1.2",
    "CareConnect-GPC-AllergyIntolerance-1/_history/1.7",
    "CareConnect-GPC-Medication-1/_history/1.2",
    "CareConnect-GPC-MedicationStatement-1/_history/1.7",
    "CareConnect-GPC-MedicationRequest-1/_history/1.7",
    "CareConnect-GPC-List-1/_history/1.2",
    "GPConnect-StructuredRecord-Bundle-1/_history/1.3",
    "GPConnect-OperationOutcome-1/_history/1.2",
];

/// The statement at the structured service root.
pub fn structured_statement(software_version: &str) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "version": STRUCTURED_VERSION,
        "name": "GP Connect - Access Record Structured",
        "status": "active",
        "date": "2022-06-06",
        "publisher": "carehub",
        "kind": "capability",
        "software": {"name": "carehub", "version": software_version},
        "fhirVersion": "3.0.1",
        "acceptUnknown": "both",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "profile": STRUCTURED_PROFILES.iter()
            .map(|p| json!({"reference": format!("{STRUCTURE_DEFINITION}{p}")}))
            .collect::<Vec<_>>(),
        "rest": [{
            "mode": "server",
            "operation": [{
                "name": "gpc.getstructuredrecord",
                "definition": {"reference": "https://fhir.nhs.uk/STU3/OperationDefinition/GPConnect-GetStructuredRecord-Operation-1/_history/1.12"},
            }],
        }],
    })
}
