use serde_json::{Value, json};

use super::*;

const GPC_PATIENT: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1";
const VERIFICATION: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1";

fn check(resource: &Value) -> Vec<Issue> {
    ProfileSet::for_version(FhirVersion::Stu3).validate(
        FhirVersion::Stu3.model(),
        resource,
        GPC_PATIENT,
    )
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "meta": {"profile": [GPC_PATIENT]},
        "identifier": [{
            "extension": [{
                "url": VERIFICATION,
                "valueCodeableConcept": {"coding": [{
                    "system": "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1",
                    "code": "01",
                    "display": "Number present and verified"
                }]}
            }],
            "system": "https://fhir.nhs.uk/Id/nhs-number",
            "value": "9000000009"
        }],
        "name": [{"use": "official", "family": "Smith", "given": ["Jane"]}],
        "gender": "female",
        "birthDate": "1980-10-22"
    })
}

fn messages(issues: &[Issue]) -> Vec<String> {
    issues
        .iter()
        .map(|i| format!("{} @ {:?}", i.diagnostics, i.expression))
        .collect()
}

#[test]
fn the_embedded_profiles_load() {
    let set = ProfileSet::for_version(FhirVersion::Stu3);
    assert!(set.urls().len() > 150, "{}", set.urls().len());
    assert_eq!(set.profile_type(GPC_PATIENT), Some("Patient"));
    assert!(ProfileSet::for_version(FhirVersion::R4).urls().is_empty());
}

#[test]
fn a_conformant_patient_has_no_issues() {
    let issues = check(&patient());
    assert!(issues.is_empty(), "{:#?}", messages(&issues));
}

#[test]
fn slices_are_told_apart_by_their_discriminator() {
    // The NHS number slice needs its verification status extension and forbids `use`.
    let mut resource = patient();
    resource["identifier"][0]["extension"] = json!([]);
    resource["identifier"][0]["use"] = json!("official");
    let found = messages(&check(&resource));
    assert!(
        found
            .iter()
            .any(|m| m.contains("nhsNumberVerificationStatus") && m.contains("at least 1")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.contains("identifier[0].use") || m.contains("Patient.identifier.use")),
        "{found:#?}"
    );
    // An identifier of another system is not in the slice, so the slice's rules do not apply.
    let mut resource = patient();
    resource["identifier"] =
        json!([{"system": "https://example.org/mrn", "value": "1", "use": "usual"}]);
    assert!(
        check(&resource).is_empty(),
        "{:#?}",
        messages(&check(&resource))
    );
}

#[test]
fn required_slices_bindings_and_extension_profiles_are_checked() {
    let mut resource = patient();
    resource["name"][0]["use"] = json!("usual");
    resource["gender"] = json!("female");
    resource["identifier"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] =
        json!("99");
    let found = messages(&check(&resource));
    assert!(
        found
            .iter()
            .any(|m| m.contains("slice 'official'") && m.contains("at least 1")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.contains("99 is not in the value set")),
        "{found:#?}"
    );
}

#[test]
fn a_choice_renamed_after_itself_is_not_a_slice_to_fill() {
    // Extension-CareConnect-GPC-ClinicalSetting-1 writes its value as the "slice"
    // `valueCodeableConcept:valueCodeableConcept`, min 1.
    let list = json!({
        "resourceType": "List",
        "extension": [{
            "url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-ClinicalSetting-1",
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "1060971000000108"}]},
        }],
        "status": "current",
        "mode": "snapshot",
        "title": "Uncategorised data",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "826501000000100"}]},
        "subject": {"reference": "Patient/2"},
        "emptyReason": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-ListEmptyReasonCode-1", "code": "no-content-recorded"}]},
    });
    let issues = ProfileSet::for_version(FhirVersion::Stu3).validate(
        FhirVersion::Stu3.model(),
        &list,
        "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-List-1",
    );
    assert!(
        issues.iter().all(|i| !i.is_error()),
        "{:#?}",
        messages(&issues)
    );
}

#[test]
fn a_reference_may_target_any_of_several_reference_types() {
    // CareConnect-GPC-Patient-1 lists Reference twice for generalPractitioner: Organization,
    // then Practitioner. Either target is valid; a third is not.
    for target in ["Organization/1", "Practitioner/1"] {
        let mut resource = patient();
        resource["generalPractitioner"] = json!([{"reference": target}]);
        let issues = check(&resource);
        assert!(issues.is_empty(), "{target}: {:#?}", messages(&issues));
    }
    let mut resource = patient();
    resource["generalPractitioner"] = json!([{"reference": "Location/1"}]);
    let found = messages(&check(&resource));
    assert!(
        found.iter().any(|m| m.contains("refers to a Location")),
        "{found:#?}"
    );
}

#[test]
fn prohibited_elements_references_and_wrong_types_are_reported() {
    let mut resource = patient();
    resource["photo"] = json!([{"contentType": "image/png"}]);
    resource["link"] = json!([{"other": {"reference": "Organization/1"}, "type": "seealso"}]);
    let found = messages(&check(&resource));
    assert!(
        found
            .iter()
            .any(|m| m.contains("Patient.photo") && m.contains("does not allow")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|m| m.contains("refers to a Organization")),
        "{found:#?}"
    );

    let observation = json!({"resourceType": "Observation"});
    let issues = ProfileSet::for_version(FhirVersion::Stu3).validate(
        FhirVersion::Stu3.model(),
        &observation,
        GPC_PATIENT,
    );
    assert!(messages(&issues)[0].contains("constrains Patient"));
    let unknown = ProfileSet::for_version(FhirVersion::Stu3).validate(
        FhirVersion::Stu3.model(),
        &observation,
        "https://example.org/none",
    );
    assert_eq!(unknown[0].code, IssueType::NotSupported);
}

#[test]
fn invariants_are_evaluated() {
    // dom-2: a contained resource must not contain another.
    let mut resource = patient();
    resource["contained"] = json!([{"resourceType": "Organization", "id": "o",
        "contained": [{"resourceType": "Organization", "id": "p"}]}]);
    let found = messages(&check(&resource));
    assert!(found.iter().any(|m| m.contains("dom-2")), "{found:#?}");
}
