use serde_json::json;

use super::*;
use crate::outcome::IssueType;

fn issues(version: FhirVersion, value: serde_json::Value) -> Vec<(IssueType, String, String)> {
    validate_resource(version.model(), &value)
        .into_iter()
        .map(|issue| {
            (
                issue.code,
                issue.expression.first().cloned().unwrap_or_default(),
                issue.diagnostics,
            )
        })
        .collect()
}

fn locations(version: FhirVersion, value: serde_json::Value) -> Vec<String> {
    issues(version, value)
        .into_iter()
        .map(|(_, at, _)| at)
        .collect()
}

#[test]
fn a_valid_patient_passes_in_both_versions() {
    for version in FhirVersion::ALL {
        let patient = json!({
            "resourceType": "Patient",
            "id": "pat-1",
            "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
            "name": [{"family": "Smith", "given": ["Jane", "Ann"], "_given": [null, {"extension": [{"url": "http://x", "valueString": "y"}]}]}],
            "gender": "female",
            "birthDate": "1970-01-01",
            "_birthDate": {"extension": [{"url": "http://example.org/time", "valueDateTime": "1970-01-01T10:00:00+01:00"}]},
            "deceasedBoolean": false,
            "contact": [{"name": {"family": "Smith"}}],
            "generalPractitioner": [{"reference": "Organization/org-1"}]
        });
        assert_eq!(issues(version, patient), vec![], "{version}");
    }
}

#[test]
fn unknown_elements_are_named_by_path() {
    let found = issues(
        FhirVersion::R4,
        json!({"resourceType": "Patient", "name": [{"family": "X", "nickname": "Y"}], "shoeSize": 9}),
    );
    assert!(
        found
            .iter()
            .any(|(code, at, _)| *code == IssueType::Structure && at == "Patient.name[0].nickname")
    );
    assert!(
        found
            .iter()
            .any(|(_, at, text)| at == "Patient.shoeSize" && text.contains("Unknown element"))
    );
}

#[test]
fn choice_elements_need_their_type_suffix_and_only_one_variant() {
    let found = issues(
        FhirVersion::R4,
        json!({"resourceType": "Patient", "deceased": true}),
    );
    assert!(found[0].2.contains("deceasedBoolean"), "{found:?}");
    let found = locations(
        FhirVersion::R4,
        json!({"resourceType": "Patient", "deceasedBoolean": true, "deceasedDateTime": "2020"}),
    );
    assert_eq!(found.len(), 1);
}

#[test]
fn shapes_and_cardinality_are_checked() {
    let found = locations(
        FhirVersion::R4,
        json!({
            "resourceType": "Observation",
            "code": [{"text": "x"}],
            "identifier": {"value": "1"},
            "subject": "Patient/1"
        }),
    );
    assert!(
        found.contains(&"Observation.status".to_owned()),
        "missing required: {found:?}"
    );
    assert!(found.contains(&"Observation.code".to_owned()));
    assert!(found.contains(&"Observation.identifier".to_owned()));
    assert!(found.contains(&"Observation.subject".to_owned()));
}

#[test]
fn primitive_formats_are_checked() {
    let found = locations(
        FhirVersion::R4,
        json!({
            "resourceType": "Patient",
            "id": "bad id!",
            "active": "true",
            "birthDate": "1970-13-45",
            "gender": "woman",
            "multipleBirthInteger": 1.5,
            "name": [{"family": ""}],
            "telecom": [{"system": "email", "value": "a@b", "rank": 0}]
        }),
    );
    for expected in [
        "Patient.id",
        "Patient.active",
        "Patient.birthDate",
        "Patient.gender",
        "Patient.multipleBirthInteger",
        "Patient.name[0].family",
        "Patient.telecom[0].rank",
    ] {
        assert!(
            found.contains(&expected.to_owned()),
            "{expected} not reported: {found:?}"
        );
    }
}

#[test]
fn contained_and_bundled_resources_are_checked_as_resources() {
    let found = locations(
        FhirVersion::R4,
        json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient", "gender": "nope"}},
                      {"resource": {"resourceType": "NotAType"}}]
        }),
    );
    assert!(
        found.contains(&"Bundle.entry[0].resource.ofType(Patient).gender".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(&"Bundle.entry[1].resource".to_owned()),
        "{found:?}"
    );
}

#[test]
fn stu3_and_r4_differ_where_the_specs_differ() {
    // `Patient.animal` exists in both; `MedicationStatement.taken` only in STU3.
    let statement = json!({
        "resourceType": "MedicationStatement", "status": "active", "taken": "y",
        "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/1"}
    });
    assert_eq!(issues(FhirVersion::Stu3, statement.clone()), vec![]);
    assert!(
        locations(FhirVersion::R4, statement).contains(&"MedicationStatement.taken".to_owned())
    );
}

#[test]
fn parse_errors_are_issues_not_panics() {
    let err = parse_resource(FhirVersion::R4, b"{\"resourceType\": ").unwrap_err();
    assert_eq!(err[0].code, IssueType::Structure);
    let deep = "[".repeat(10_000);
    assert!(parse_resource(FhirVersion::R4, deep.as_bytes()).is_err());
    let err = parse_resource(FhirVersion::R4, b"[1,2]").unwrap_err();
    assert!(err[0].diagnostics.contains("object"));
}

#[test]
fn decimals_keep_their_exact_text() {
    let body = br#"{"resourceType":"Observation","status":"final","code":{"text":"w"},"valueQuantity":{"value":1.50,"unit":"kg"}}"#;
    let value = parse_resource(FhirVersion::R4, body).unwrap();
    assert_eq!(serde_json::to_string(&value).unwrap().as_bytes(), body);
}
