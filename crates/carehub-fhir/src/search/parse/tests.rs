use proptest::prelude::*;

use super::*;
use crate::FhirVersion;

fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
    query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse(resource_type: &str, query: &[(&str, &str)]) -> Result<SearchQuery, Vec<Issue>> {
    parse_query(
        FhirVersion::R4.model(),
        resource_type,
        &pairs(query),
        &ParseOptions {
            base_url: "http://localhost:8080/fhir/R4".into(),
            ..ParseOptions::default()
        },
    )
}

#[test]
fn tokens_split_system_and_code_with_escapes() {
    let query = parse(
        "Patient",
        &[(
            "identifier",
            "https://fhir.nhs.uk/Id/nhs-number|9000000009,|abc,sys|,a\\,b",
        )],
    )
    .unwrap();
    let Filter::Token { values, not, .. } = &query.filters[0] else {
        panic!("not a token filter: {query:?}");
    };
    assert!(!not);
    assert_eq!(
        values[0].system.as_deref(),
        Some("https://fhir.nhs.uk/Id/nhs-number")
    );
    assert_eq!(values[0].code.as_deref(), Some("9000000009"));
    assert_eq!(values[1].system.as_deref(), Some(""));
    assert_eq!(values[2].code, None);
    assert_eq!(values[3].code.as_deref(), Some("a,b"));
}

#[test]
fn strings_are_folded_unless_exact() {
    let query = parse("Patient", &[("name", "ZOË"), ("family:exact", "Zoë")]).unwrap();
    assert_eq!(
        query.filters[0],
        Filter::String {
            param: "name".into(),
            values: vec!["zoe".into()],
            mode: StringMode::Prefix
        }
    );
    assert_eq!(
        query.filters[1],
        Filter::String {
            param: "family".into(),
            values: vec!["Zoë".into()],
            mode: StringMode::Exact
        }
    );
}

#[test]
fn references_local_absolute_and_typed() {
    let query = parse(
        "Observation",
        &[
            (
                "subject",
                "Patient/1,http://localhost:8080/fhir/R4/Patient/2,http://other/Patient/3",
            ),
            ("subject:Patient", "4"),
        ],
    )
    .unwrap();
    let Filter::Reference { values, .. } = &query.filters[0] else {
        panic!()
    };
    assert_eq!(
        values[0],
        ReferenceValue::Local {
            resource_type: Some("Patient".into()),
            id: "1".into()
        }
    );
    assert_eq!(
        values[1],
        ReferenceValue::Local {
            resource_type: Some("Patient".into()),
            id: "2".into()
        }
    );
    assert_eq!(
        values[2],
        ReferenceValue::Url("http://other/Patient/3".into())
    );
    let Filter::Reference { values, .. } = &query.filters[1] else {
        panic!()
    };
    assert_eq!(
        values[0],
        ReferenceValue::Local {
            resource_type: Some("Patient".into()),
            id: "4".into()
        }
    );
}

#[test]
fn chains_and_has() {
    let query = parse(
        "Observation",
        &[
            ("subject:Patient.name", "smith"),
            ("_has:Provenance:target:agent", "Practitioner/1"),
        ],
    )
    .unwrap();
    let Filter::Chain {
        param,
        target_types,
        inner,
    } = &query.filters[0]
    else {
        panic!()
    };
    assert_eq!(param, "subject");
    assert_eq!(target_types, &["Patient".to_owned()]);
    assert!(matches!(**inner, Filter::String { .. }));
    assert!(matches!(query.filters[1], Filter::Has { .. }));
}

#[test]
fn dates_numbers_and_quantities_take_prefixes() {
    let query = parse(
        "Observation",
        &[
            ("date", "ge2024-01-01,lt2025"),
            ("value-quantity", "gt5.4|http://unitsofmeasure.org|mg"),
        ],
    )
    .unwrap();
    let Filter::Date { values, .. } = &query.filters[0] else {
        panic!()
    };
    assert_eq!(values[0].prefix, Prefix::Ge);
    assert_eq!(values[1].prefix, Prefix::Lt);
    let Filter::Quantity { values, .. } = &query.filters[1] else {
        panic!()
    };
    assert_eq!(values[0].range.prefix, Prefix::Gt);
    assert!(
        (values[0].range.low - 5.35).abs() < 1e-9 && (values[0].range.high - 5.45).abs() < 1e-9
    );
    assert_eq!(values[0].code.as_deref(), Some("mg"));
}

#[test]
fn result_parameters() {
    let query = parse(
        "Patient",
        &[
            ("_count", "5000"),
            ("_sort", "-birthdate,_id"),
            ("_summary", "count"),
            ("_include", "Patient:general-practitioner"),
            ("_revinclude:iterate", "Observation:subject"),
        ],
    )
    .unwrap();
    assert_eq!(query.count, 1000, "capped at the maximum");
    assert_eq!(query.sort.len(), 2);
    assert!(query.sort[0].descending);
    assert_eq!(query.summary, Summary::Count);
    assert_eq!(query.include[0].param, "general-practitioner");
    assert!(query.revinclude[0].iterate);
}

#[test]
fn errors_name_the_parameter() {
    let errors = parse(
        "Patient",
        &[
            ("shoe-size", "9"),
            ("birthdate", "yesterday"),
            ("_count", "x"),
            ("gender:fuzzy", "f"),
        ],
    )
    .unwrap_err();
    let at: Vec<&str> = errors.iter().map(|e| e.expression[0].as_str()).collect();
    assert_eq!(at, ["shoe-size", "birthdate", "_count", "gender:fuzzy"]);
    assert_eq!(errors[0].code, IssueType::NotSupported);
}

#[test]
fn parameters_with_nothing_to_index_are_refused() {
    for name in ["_content", "_text"] {
        let errors = parse("Patient", &[(name, "x")]).unwrap_err();
        assert_eq!(errors[0].code, IssueType::NotSupported, "{name}");
    }
}

#[test]
fn lenient_handling_turns_unknown_parameters_into_warnings() {
    let query = parse_query(
        FhirVersion::R4.model(),
        "Patient",
        &pairs(&[("shoe-size", "9"), ("name", "x")]),
        &ParseOptions {
            lenient: true,
            ..ParseOptions::default()
        },
    )
    .unwrap();
    assert_eq!(query.filters.len(), 1);
    assert_eq!(query.warnings.len(), 1);
}

proptest! {
    #[test]
    fn parsing_never_panics(name in "[a-z_:.\\-]{0,20}", value in "\\PC{0,30}") {
        let _ = parse("Patient", &[(&name, &value)]);
        let _ = parse("Observation", &[(&name, &value)]);
    }

    #[test]
    fn number_ranges_contain_the_value(int in -100000i64..100000, frac in 0u32..1000) {
        let text = format!("{int}.{frac:03}");
        let range = parse_number(Prefix::Eq, &text).unwrap();
        let value: f64 = text.parse().unwrap();
        prop_assert!(range.low <= value && value <= range.high);
        prop_assert!((range.high - range.low - 0.001).abs() < 1e-6);
    }

    #[test]
    fn date_ranges_are_ordered(y in 1900i32..2100, m in 1u32..=12, d in 1u32..=28) {
        for text in [format!("{y}"), format!("{y}-{m:02}"), format!("{y}-{m:02}-{d:02}")] {
            let range = parse_date(&text).unwrap();
            prop_assert!(range.low < range.high);
        }
    }
}

#[test]
fn composite_values_split_into_one_filter_per_component() {
    let query = parse(
        "Observation",
        &[(
            "component-code-value-quantity",
            "http://loinc.org|8480-6$gt140|http://unitsofmeasure.org|mm[Hg],8462-4$lt90",
        )],
    )
    .unwrap();
    let [Filter::Composite { param, values }] = query.filters.as_slice() else {
        panic!("{:?}", query.filters);
    };
    assert_eq!(param, "component-code-value-quantity");
    assert_eq!(values.len(), 2);
    let [
        Filter::Token {
            param,
            values: codes,
            ..
        },
        Filter::Quantity {
            param: quantity_param,
            values: quantities,
        },
    ] = values[0].as_slice()
    else {
        panic!("{:?}", values[0]);
    };
    assert_eq!(param, "component-code-value-quantity$0");
    assert_eq!(quantity_param, "component-code-value-quantity$1");
    assert_eq!(codes[0].system.as_deref(), Some("http://loinc.org"));
    assert_eq!(codes[0].code.as_deref(), Some("8480-6"));
    assert_eq!(quantities[0].range.prefix, Prefix::Gt);
    assert_eq!(quantities[0].code.as_deref(), Some("mm[Hg]"));
    let [
        Filter::Token { values: codes, .. },
        Filter::Quantity {
            values: quantities, ..
        },
    ] = values[1].as_slice()
    else {
        panic!("{:?}", values[1]);
    };
    assert_eq!(codes[0].system, None);
    assert_eq!(quantities[0].range.prefix, Prefix::Lt);
}

#[test]
fn composite_values_keep_escaped_dollars_and_reject_wrong_arity() {
    let query = parse(
        "Observation",
        &[("code-value-string", "http://example.org|a$costs \\$5")],
    )
    .unwrap();
    let [Filter::Composite { values, .. }] = query.filters.as_slice() else {
        panic!("{:?}", query.filters);
    };
    let [_, Filter::String { values: text, .. }] = values[0].as_slice() else {
        panic!("{:?}", values[0]);
    };
    assert_eq!(text, &["costs $5".to_owned()]);

    let issues = parse("Observation", &[("code-value-quantity", "8480-6")]).unwrap_err();
    assert!(
        issues[0]
            .diagnostics
            .contains("takes 2 values joined by '$'"),
        "{issues:?}"
    );
    let issues = parse(
        "Observation",
        &[("code-value-quantity", "8480-6$notanumber")],
    )
    .unwrap_err();
    assert!(issues[0].diagnostics.contains("not a number"), "{issues:?}");
    let issues = parse("Observation", &[("code-value-quantity:missing", "true")]).unwrap_err();
    assert!(
        issues[0].diagnostics.contains("not supported on composite"),
        "{issues:?}"
    );
}
