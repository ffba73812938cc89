//! Search index extraction: the FHIRPath work done on every write.
//!
//! `cargo bench -p carehub-fhir --bench index` prints microseconds per resource for a typical
//! Patient and Observation, each evaluated against every search parameter of its type.

use std::hint::black_box;
use std::time::Instant;

use carehub_fhir::FhirVersion;
use carehub_fhir::search::Indexer;
use serde_json::json;

fn measure(name: &str, indexer: &Indexer, resource: &serde_json::Value) {
    // Warm up: compile the expressions and fill caches.
    let entries = indexer.index(resource).len();
    let iterations = 20_000;
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(indexer.index(black_box(resource)));
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    println!("{name}: {per:.1} us per resource ({entries} index entries)");
}

fn main() {
    let indexer = Indexer::new(FhirVersion::R4);
    let patient = json!({
        "resourceType": "Patient", "id": "9000000009",
        "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
        "active": true,
        "name": [{"use": "official", "family": "Smith", "given": ["Jane", "Anne"], "prefix": ["Mrs"]}],
        "telecom": [{"system": "phone", "value": "01632 960587", "use": "home"},
                    {"system": "email", "value": "jane.smith@example.com"}],
        "gender": "female", "birthDate": "1980-10-22",
        "address": [{"use": "home", "line": ["1 Trevelyan Square", "Boar Lane"], "city": "Leeds",
                     "postalCode": "LS1 6AE", "country": "GB"}],
        "generalPractitioner": [{"reference": "Organization/Y12345"}],
        "managingOrganization": {"reference": "Organization/Y12345"}
    });
    let observation = json!({
        "resourceType": "Observation", "id": "bp", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "Blood pressure"},
        "subject": {"reference": "Patient/9000000009"},
        "effectiveDateTime": "2024-03-01T10:00:00Z",
        "performer": [{"reference": "Practitioner/G1234567"}],
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 80, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]
    });
    measure("Patient", &indexer, &patient);
    measure("Observation", &indexer, &observation);
}
