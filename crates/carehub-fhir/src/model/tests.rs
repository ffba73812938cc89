use super::*;

#[test]
fn both_models_load_with_their_resources() {
    for version in FhirVersion::ALL {
        let model = version.model();
        assert!(model.resource("Patient").is_some(), "{version}");
        assert!(
            model.resource("DomainResource").is_none(),
            "abstract types are not resources"
        );
        assert!(model.resource_types().count() > 100, "{version}");
    }
    assert_eq!(FhirVersion::R4.model().release(), "4.0.1");
    assert_eq!(FhirVersion::Stu3.model().release(), "3.0.2");
}

#[test]
fn choice_keys_resolve_to_their_type() {
    let model = FhirVersion::R4.model();
    let key = model.resolve_key("Observation", "valueQuantity").unwrap();
    assert_eq!(key.element.name, "value");
    assert_eq!(key.type_code, "Quantity");
    assert!(model.resolve_key("Observation", "value").is_none());
    assert!(model.resolve_key("Observation", "valueFoo").is_none());
}

#[test]
fn backbones_and_content_references_name_their_children() {
    let model = FhirVersion::R4.model();
    let contact = model.resolve_key("Patient", "contact").unwrap();
    assert_eq!(
        contact.element.element_type.as_deref(),
        Some("Patient.contact")
    );
    assert!(
        model
            .resolve_key("Patient.contact", "relationship")
            .is_some()
    );
    let nested = model.resolve_key("Questionnaire.item", "item").unwrap();
    assert_eq!(
        nested.element.element_type.as_deref(),
        Some("Questionnaire.item")
    );
}

#[test]
fn subtypes_follow_the_base_definitions() {
    let model = FhirVersion::R4.model();
    assert!(model.is_subtype("Patient", "Resource"));
    assert!(model.is_subtype("Age", "Quantity"));
    assert!(model.is_subtype("code", "string"));
    assert!(!model.is_subtype("string", "code"));
}

#[test]
fn required_bindings_have_their_codes() {
    for version in FhirVersion::ALL {
        let model = version.model();
        let gender = model.resolve_key("Patient", "gender").unwrap();
        let url = gender.element.required_binding.as_deref().unwrap();
        let codes = model.value_set_codes(url).unwrap();
        assert!(
            codes.contains("female") && codes.contains("unknown"),
            "{version}"
        );
    }
}

#[test]
fn search_parameters_include_the_common_ones() {
    for version in FhirVersion::ALL {
        let model = version.model();
        assert_eq!(
            model.search_param("Patient", "name").unwrap().kind,
            "string"
        );
        assert_eq!(model.search_param("Patient", "_id").unwrap().kind, "token");
        assert!(model.search_param("Patient", "_lastUpdated").is_some());
        assert!(model.search_param("Patient", "nonsense").is_none());
    }
}
