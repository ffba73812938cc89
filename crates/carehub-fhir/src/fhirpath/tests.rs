use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::FhirVersion;

/// Evaluates and returns each item's JSON and FHIR type.
fn eval(expression: &str, resource: &Value) -> Vec<(Value, Option<String>)> {
    let parsed = Expression::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
    parsed
        .evaluate(FhirVersion::R4.model(), resource)
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .iter()
        .map(|item| {
            (
                item.to_json().into_owned(),
                item.fhir_type().map(str::to_owned),
            )
        })
        .collect()
}

fn truth(expression: &str, resource: &Value) -> Option<bool> {
    match eval(expression, resource).as_slice() {
        [] => None,
        [(Value::Bool(b), _)] => Some(*b),
        other => panic!("{expression}: not a Boolean: {other:?}"),
    }
}

#[test]
fn every_search_expression_of_both_versions_compiles() {
    for version in FhirVersion::ALL {
        let model = version.model();
        for resource_type in model.resource_types() {
            for param in model.search_params(resource_type) {
                if let Some(expression) = &param.expression {
                    let parsed = Expression::parse(expression);
                    assert!(
                        parsed.is_ok(),
                        "{version} {}: {expression}: {parsed:?}",
                        param.code
                    );
                }
            }
        }
    }
}

#[test]
fn paths_choices_unions_and_where() {
    let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "valueQuantity": {"value": 5, "unit": "mg"},
        "subject": {"reference": "Patient/1"},
        "performer": [{"reference": "Practitioner/2"}, {"reference": "Patient/3"}]});
    assert_eq!(
        eval("Observation.value as Quantity", &observation),
        vec![(json!({"value": 5, "unit": "mg"}), Some("Quantity".into()))]
    );
    assert!(eval("(Observation.value as CodeableConcept)", &observation).is_empty());
    let found = eval(
        "Observation.performer.where(resolve() is Patient)",
        &observation,
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0["reference"], "Patient/3");
    assert_eq!(found[0].1.as_deref(), Some("Reference"));
    assert_eq!(
        eval("Observation.subject | Observation.performer", &observation).len(),
        3
    );
    assert!(eval("Patient.name", &observation).is_empty(), "type filter");
}

#[test]
fn booleans_indexers_and_extensions() {
    let patient = json!({"resourceType": "Patient", "deceasedDateTime": "2020-01-01",
        "birthDate": "1970-03-04", "_birthDate": {"extension": [{"url": "http://t", "valueTime": "10:00:00"}]},
        "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}],
        "extension": [{"url": "http://x", "valueString": "y"}]});
    assert_eq!(
        truth(
            "Patient.deceased.exists() and Patient.deceased != false",
            &patient
        ),
        Some(true)
    );
    assert_eq!(
        eval("Patient.telecom.where(system='email')", &patient)[0].0["value"],
        "a@b"
    );
    assert_eq!(
        eval("Patient.extension('http://x').value", &patient)[0].0,
        json!("y")
    );
    // Primitive extensions live in the `_birthDate` sibling.
    assert_eq!(
        eval("Patient.birthDate.extension('http://t').value", &patient)[0].0,
        json!("10:00:00")
    );
    assert_eq!(
        truth("Patient.birthDate < @2000-01-01", &patient),
        Some(true)
    );
    let bundle = json!({"resourceType": "Bundle", "type": "document",
        "entry": [{"resource": {"resourceType": "Composition"}}]});
    assert_eq!(
        eval("Bundle.entry[0].resource", &bundle)[0].1.as_deref(),
        Some("Composition")
    );
}

#[test]
fn resolve_finds_contained_bundle_entries_and_reference_types() {
    let observation = json!({"resourceType": "Observation",
        "contained": [{"resourceType": "Patient", "id": "p", "gender": "female"}],
        "subject": {"reference": "#p"},
        "performer": [{"reference": "http://x.org/fhir/Practitioner/1/_history/2"}]});
    assert_eq!(
        eval("Observation.subject.resolve().gender", &observation)[0].0,
        json!("female")
    );
    assert_eq!(
        truth(
            "Observation.performer.resolve() is Practitioner",
            &observation
        ),
        Some(true)
    );
    assert_eq!(
        eval("Observation.performer.resolve().id", &observation)[0].0,
        json!("1")
    );
}

#[test]
fn arithmetic_dates_and_quantities() {
    let empty = json!({"resourceType": "Basic"});
    for expression in [
        "1 + 2 * 3 = 7",
        "7 div 2 = 3 and 7 mod 2 = 1",
        "0.1 + 0.2 = 0.3",
        "@2024-01-31 + 1 month = @2024-02-29",
        "@2024-03-01T10:00:00Z - 90 minutes = @2024-03-01T08:30:00Z",
        "4 'g' = 4000 'mg'",
        "3 days = 72 'h'",
        "'a' & {} = 'a'",
        "(1 | 2 | 2).count() = 2",
        "'abc'.matches('^a.c$')",
        "iif({}.empty(), 'yes', 'no') = 'yes'",
    ] {
        assert_eq!(truth(expression, &empty), Some(true), "{expression}");
    }
    // Equal as far as both go, but to different precisions: unknown.
    assert_eq!(truth("@2024-01 = @2024-01-05", &empty), None);
    assert_eq!(truth("@2024-01 ~ @2024-01-05", &empty), Some(false));
    // Integer overflow and division by zero are empty, not errors.
    assert!(eval("2147483647 + 1", &empty).is_empty());
    assert!(eval("1 / 0", &empty).is_empty());
}

#[test]
fn errors_name_what_went_wrong() {
    let patient = json!({"resourceType": "Patient", "name": [{"given": ["a", "b"]}]});
    let model = FhirVersion::R4.model();
    let run = |expression: &str, strict: bool| {
        let env = Environment::new(model, &patient).strict(strict);
        Expression::parse(expression).and_then(|e| e.evaluate_in(&env, &[Item::resource(&patient)]))
    };
    assert!(matches!(
        run("name.given +", false),
        Err(FhirPathError::Syntax { .. })
    ));
    assert!(matches!(
        run("name.given.foo()", false),
        Err(FhirPathError::Semantic(_))
    ));
    let err = run("name.given.substring(1)", false).unwrap_err();
    assert!(err.to_string().contains("single item"), "{err}");
    assert!(run("name.given1", false).unwrap().is_empty());
    let err = run("name.given1", true).unwrap_err();
    assert!(err.to_string().contains("given1"), "{err}");
}

proptest! {
    #[test]
    fn never_panics_on_any_text(text in "\\PC{0,40}") {
        let patient = json!({"resourceType": "Patient", "name": [{"given": ["a"]}], "active": true});
        if let Ok(expression) = Expression::parse(&text) {
            let _ = expression.evaluate(FhirVersion::R4.model(), &patient);
        }
    }

    #[test]
    fn never_panics_on_operator_soup(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("1"), Just("2.5"), Just("'x'"), Just("@2020-01"), Just("@T10:00"),
                Just("5 'mg'"), Just("3 days"), Just("true"), Just("{}"), Just("name"),
                Just("name.given"), Just("active"),
            ],
            1..5,
        ),
        ops in proptest::collection::vec(
            prop_oneof![
                Just(" + "), Just(" - "), Just(" * "), Just(" / "), Just(" div "), Just(" mod "),
                Just(" & "), Just(" | "), Just(" = "), Just(" ~ "), Just(" < "), Just(" and "),
                Just(" implies "), Just(" in "), Just(".toString() + "), Just(".exists() or "),
            ],
            4,
        ),
    ) {
        let mut text = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                text.push_str(ops[i - 1]);
            }
            text.push_str(part);
        }
        let patient = json!({"resourceType": "Patient", "name": [{"given": ["a", "b"]}], "active": true});
        let expression = Expression::parse(&text).expect("generated text parses");
        let _ = expression.evaluate(FhirVersion::R4.model(), &patient);
    }
}
