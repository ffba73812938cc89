//! Feature-level tests of FHIR XML conversion: round trips of each XML rule, the exact shape of
//! the XML written, every input that must be refused, and property tests for robustness.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const R4: FhirVersion = FhirVersion::R4;

fn round_trip(resource: &Value) -> String {
    let xml = to_xml(R4, resource).unwrap_or_else(|err| panic!("to_xml failed: {err}"));
    let back = from_xml(R4, &xml).unwrap_or_else(|err| panic!("from_xml failed: {err}\n{xml}"));
    assert_eq!(
        &back, resource,
        "round trip changed the resource; XML was\n{xml}"
    );
    // The pretty form must read back to the same resource as well.
    let pretty = to_xml_pretty(R4, resource).unwrap();
    assert_eq!(
        &from_xml(R4, &pretty).unwrap(),
        resource,
        "pretty:\n{pretty}"
    );
    xml
}

fn parse_error(xml: &str) -> XmlError {
    match from_xml(R4, xml) {
        Ok(value) => panic!("expected an error, got {value}"),
        Err(err) => err,
    }
}

fn write_error(resource: &Value) -> XmlError {
    match to_xml(R4, resource) {
        Ok(xml) => panic!("expected an error, got {xml}"),
        Err(err) => err,
    }
}

// Inputs that the tests of the conversion without definitions (`untyped_tests.rs`) use too,
// since both readers and both writers must refuse them alike.

/// A Patient document with `body` as its content.
pub(super) fn patient_xml(body: &str) -> String {
    format!(r#"<Patient xmlns="http://hl7.org/fhir">{body}</Patient>"#)
}

/// A Patient document whose extensions nest `depth` deep around `<valueString value="..."/>`.
pub(super) fn nested_extensions_xml(depth: usize, value: &str) -> String {
    let mut xml = String::from(r#"<Patient xmlns="http://hl7.org/fhir">"#);
    xml.push_str(&r#"<extension url="u">"#.repeat(depth));
    xml.push_str(&format!(r#"<valueString value="{value}"/>"#));
    xml.push_str(&"</extension>".repeat(depth));
    xml.push_str("</Patient>");
    xml
}

/// A Patient document whose narrative nests too deeply only through its XHTML.
pub(super) fn deep_narrative_xml() -> String {
    let mut div = String::from(r#"<div xmlns="http://www.w3.org/1999/xhtml">"#);
    div.push_str(&"<span>".repeat(MAX_DEPTH));
    div.push_str(&"</span>".repeat(MAX_DEPTH));
    div.push_str("</div>");
    patient_xml(&format!(r#"<text><status value="generated"/>{div}</text>"#))
}

/// A Patient in JSON whose extensions nest deeper than [`MAX_DEPTH`].
pub(super) fn too_deep_extensions_json() -> Value {
    let mut extension = json!({"url": "u", "valueString": "deep"});
    for _ in 0..MAX_DEPTH + 5 {
        extension = json!({"url": "u", "extension": [extension]});
    }
    json!({"resourceType": "Patient", "extension": [extension]})
}

// ---------------------------------------------------------------------------------------------
// What is written

#[test]
fn writes_elements_in_definition_order_whatever_the_json_order() {
    let patient = json!({
        "birthDate": "1970-01-01",
        "name": [{"given": ["Jane"], "family": "Doe"}],
        "active": true,
        "id": "p1",
        "resourceType": "Patient"
    });
    let xml = round_trip(&patient);
    assert_eq!(
        xml,
        concat!(
            r#"<Patient xmlns="http://hl7.org/fhir"><id value="p1"/><active value="true"/>"#,
            r#"<name><family value="Doe"/><given value="Jane"/></name>"#,
            r#"<birthDate value="1970-01-01"/></Patient>"#
        )
    );
}

#[test]
fn json_comes_back_in_definition_order() {
    let xml = patient_xml(r#"<id value="p1"/><active value="true"/><gender value="male"/>"#);
    let value = from_xml(R4, &xml).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["resourceType", "id", "active", "gender"]);
}

#[test]
fn element_ids_and_extension_urls_are_attributes_but_resource_id_is_an_element() {
    let patient = json!({
        "resourceType": "Patient",
        "id": "p1",
        "extension": [{"url": "http://example.org/a", "valueString": "x"}],
        "name": [{"id": "n1", "family": "Doe"}]
    });
    let xml = round_trip(&patient);
    assert!(xml.contains(r#"<id value="p1"/>"#), "{xml}");
    assert!(
        xml.contains(
            r#"<extension url="http://example.org/a"><valueString value="x"/></extension>"#
        ),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<name id="n1"><family value="Doe"/></name>"#),
        "{xml}"
    );
}

#[test]
fn pretty_output_is_indented() {
    let patient = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]});
    let xml = to_xml_pretty(R4, &patient).unwrap();
    assert_eq!(
        xml,
        "<Patient xmlns=\"http://hl7.org/fhir\">\n  <id value=\"p1\"/>\n  <name>\n    <family value=\"Doe\"/>\n  </name>\n</Patient>"
    );
}

#[test]
fn primitive_types_are_exactly_the_lower_case_ones() {
    // `ValueKind::of` relies on this naming rule of the specification; check every type code
    // reachable from the resources.
    for version in FhirVersion::ALL {
        let model = version.model();
        let mut pending: Vec<&str> = model.resource_types().collect();
        let mut seen = std::collections::HashSet::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name) {
                continue;
            }
            let Some(type_def) = model.type_def(name) else {
                continue;
            };
            for element in &type_def.elements {
                for code in &element.types {
                    let lower = code.starts_with(|c: char| c.is_ascii_lowercase());
                    assert_eq!(
                        lower,
                        model.is_primitive(code),
                        "{version} {name}.{}: {code}",
                        element.name
                    );
                    pending.push(code);
                }
                pending.extend(element.element_type.as_deref());
            }
        }
        assert!(seen.contains("HumanName") && seen.contains("Patient.contact"));
    }
}

// ---------------------------------------------------------------------------------------------
// Primitives and their extensions

#[test]
fn single_primitive_with_id_and_extension() {
    let patient = json!({
        "resourceType": "Patient",
        "birthDate": "1970-03-30",
        "_birthDate": {
            "id": "bd",
            "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": "1970-03-30T14:35:45-05:00"
            }]
        }
    });
    let xml = round_trip(&patient);
    assert!(
        xml.contains(r#"<birthDate id="bd" value="1970-03-30"><extension url="#),
        "{xml}"
    );
}

#[test]
fn primitive_with_only_an_extension_has_no_value() {
    let patient = json!({
        "resourceType": "Patient",
        "_gender": {"extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
            "valueCode": "unknown"
        }]}
    });
    let xml = round_trip(&patient);
    assert!(xml.contains("<gender><extension"), "{xml}");
}

#[test]
fn repeating_primitives_align_their_extensions_with_nulls() {
    let patient = json!({
        "resourceType": "Patient",
        "name": [{
            "given": ["Jim", null, "Bob"],
            "_given": [
                null,
                {"extension": [{"url": "http://example.org/x", "valueBoolean": true}]},
                {"id": "g3"}
            ]
        }]
    });
    let xml = round_trip(&patient);
    assert!(
        xml.contains(concat!(
            r#"<given value="Jim"/><given><extension url="http://example.org/x">"#,
            r#"<valueBoolean value="true"/></extension></given><given id="g3" value="Bob"/>"#
        )),
        "{xml}"
    );
}

#[test]
fn repeating_primitive_with_extensions_only() {
    let patient = json!({
        "resourceType": "Patient",
        "name": [{"_given": [{"id": "a"}, {"id": "b"}]}]
    });
    round_trip(&patient);
}

#[test]
fn numbers_and_booleans_are_json_numbers_and_booleans_with_exact_text() {
    // Built from text: `json!` would take 1.50 through an f64 and lose the trailing zero.
    let observation: Value = serde_json::from_str(
        r#"{
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "weight"},
            "valueQuantity": {"value": 1.50, "unit": "kg"},
            "component": [
                {"code": {"text": "a"}, "valueInteger": -42},
                {"code": {"text": "b"}, "valueQuantity": {"value": 1e3}},
                {"code": {"text": "c"}, "valueQuantity": {"value": 0.000000000000000000000001}},
                {"code": {"text": "d"}, "valueBoolean": false}
            ]
        }"#,
    )
    .unwrap();
    let xml = round_trip(&observation);
    assert!(xml.contains(r#"<value value="1.50"/>"#), "{xml}");
    // serde_json itself spells exponents `e+3` (for JSON input too); digits are kept as sent.
    assert!(xml.contains(r#"<value value="1e+3"/>"#), "{xml}");
    let back = from_xml(R4, &xml).unwrap();
    assert_eq!(back["valueQuantity"]["value"].to_string(), "1.50");
    assert_eq!(
        back["component"][1]["valueQuantity"]["value"].to_string(),
        "1e+3"
    );
    assert!(back["component"][0]["valueInteger"].is_number());
    assert_eq!(back["component"][3]["valueBoolean"], json!(false));
}

#[test]
fn numbers_read_from_xml_keep_their_text() {
    for (text, json_text) in [
        ("120.00", "120.00"),
        ("-0.0", "-0.0"),
        ("1.50E-3", "1.50e-3"),
    ] {
        let xml = format!(
            r#"<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="x"/></code><valueQuantity><value value="{text}"/></valueQuantity></Observation>"#
        );
        let value = from_xml(R4, &xml).unwrap();
        assert_eq!(value["valueQuantity"]["value"].to_string(), json_text);
    }
}

#[test]
fn number_grammar() {
    for good in ["0", "-0", "7", "-12", "1.50", "1e3", "1E-3", "-0.5e+10"] {
        assert!(read::is_json_number(good), "{good}");
    }
    for bad in [
        "", "-", "+1", "01", "1.", ".5", "1e", "1e+", "0x10", "NaN", " 1", "1 ",
    ] {
        assert!(!read::is_json_number(bad), "{bad}");
    }
    assert!(read::is_json_integer("-7"));
    assert!(!read::is_json_integer("1.0"));
    assert!(!read::is_json_integer("1e3"));
}

#[test]
fn attribute_values_escape_and_round_trip() {
    let tricky = "a & b < c > d \"quoted\" 'single'\nsecond line\ttab\r\nwindows";
    let patient = json!({
        "resourceType": "Patient",
        "name": [{"text": tricky, "id": "x&\"y"}]
    });
    let xml = round_trip(&patient);
    assert!(
        xml.contains("a &amp; b &lt; c &gt; d &quot;quoted&quot; 'single'&#xA;second line&#x9;tab&#xD;&#xA;windows"),
        "{xml}"
    );
    assert!(xml.contains(r#"<name id="x&amp;&quot;y">"#), "{xml}");
}

#[test]
fn literal_newlines_in_attributes_read_as_spaces_like_any_xml_parser() {
    let xml = patient_xml("<name><text value=\"one\ntwo\tthree&#10;four\"/></name>");
    let value = from_xml(R4, &xml).unwrap();
    assert_eq!(value["name"][0]["text"], json!("one two three\nfour"));
}

#[test]
fn unicode_round_trips_unescaped() {
    let patient = json!({
        "resourceType": "Patient",
        "name": [{"family": "Zoë Łukasz 李小龍", "given": ["👩‍⚕️ Ænne"]}]
    });
    let xml = round_trip(&patient);
    assert!(xml.contains("Zoë Łukasz 李小龍"), "{xml}");
}

#[test]
fn character_references_are_resolved() {
    let xml = patient_xml(r#"<name><family value="&#x41;&#66;&amp;&apos;"/></name>"#);
    let value = from_xml(R4, &xml).unwrap();
    assert_eq!(value["name"][0]["family"], json!("AB&'"));
}

// ---------------------------------------------------------------------------------------------
// Choice types, nested resources, narrative

#[test]
fn choice_elements_use_the_typed_name() {
    let observation = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "effectiveDateTime": "2020-01-01T10:00:00Z",
        "valueQuantity": {"value": 72, "unit": "beats/min"},
        "extension": [{"url": "http://example.org/p", "valuePeriod": {"start": "2020"}}]
    });
    let xml = round_trip(&observation);
    assert!(xml.contains("<effectiveDateTime value="), "{xml}");
    assert!(
        xml.contains("<valueQuantity><value value=\"72\"/>"),
        "{xml}"
    );
    assert!(
        xml.contains("<valuePeriod><start value=\"2020\"/></valuePeriod>"),
        "{xml}"
    );
}

#[test]
fn contained_resources_are_wrapped() {
    let patient = json!({
        "resourceType": "Patient",
        "id": "p1",
        "contained": [
            {"resourceType": "Organization", "id": "org1", "name": "Acme"},
            {"resourceType": "Practitioner", "id": "pr1", "active": true}
        ],
        "managingOrganization": {"reference": "#org1"}
    });
    let xml = round_trip(&patient);
    assert!(
        xml.contains(concat!(
            r#"<contained><Organization><id value="org1"/><name value="Acme"/></Organization></contained>"#,
            r#"<contained><Practitioner>"#
        )),
        "{xml}"
    );
}

#[test]
fn bundles_and_parameters_carry_resources() {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
                "resource": {"resourceType": "Patient", "active": true},
                "request": {"method": "POST", "url": "Patient"}
            },
            {
                "resource": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": {"resourceType": "Basic", "code": {"text": "x"}}}]
                },
                "request": {"method": "POST", "url": "Bundle"}
            }
        ]
    });
    let xml = round_trip(&bundle);
    assert!(
        xml.contains("<resource><Patient><active value=\"true\"/></Patient></resource>"),
        "{xml}"
    );
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": {"resourceType": "Patient", "id": "x"}},
            {"name": "count", "valueInteger": 3},
            {"name": "nested", "part": [{"name": "inner", "valueString": "v"}]}
        ]
    });
    round_trip(&parameters);
}

#[test]
fn narrative_div_is_copied_verbatim_both_ways() {
    let div = concat!(
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p class="x">Tom &amp; Jerry &lt;3 &#160;"#,
        r#"<b>bold <i>nested</i></b><br/></p><table><tr><td>1</td></tr></table>"#,
        "\n  <a href=\"http://example.org?a=1&amp;b=2\">link</a></div>"
    );
    let patient = json!({
        "resourceType": "Patient",
        "text": {"status": "generated", "div": div},
        "active": true
    });
    let xml = round_trip(&patient);
    assert!(xml.contains(div), "{xml}");
}

#[test]
fn narrative_without_namespace_declaration_gets_one() {
    let patient = json!({
        "resourceType": "Patient",
        "text": {"status": "generated", "div": "<div><p>hi</p></div>"}
    });
    let xml = to_xml(R4, &patient).unwrap();
    assert!(
        xml.contains(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>hi</p></div>"#),
        "{xml}"
    );
    let back = from_xml(R4, &xml).unwrap();
    assert_eq!(
        back["text"]["div"],
        json!(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>hi</p></div>"#)
    );
}

#[test]
fn narrative_read_from_xml_keeps_comments_and_normalises_line_ends() {
    let xml = patient_xml(concat!(
        r#"<text><status value="generated"/>"#,
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a<!-- kept -->b&#xD;c</p>\r\n<br/>\r</div>",
        "</text>"
    ));
    let value = from_xml(R4, &xml).unwrap();
    assert_eq!(
        value["text"]["div"],
        json!(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a<!-- kept -->b\rc</p>\n<br/>\n</div>"
        )
    );
}

#[test]
fn carriage_returns_in_narrative_text_survive_xml() {
    let div =
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>\r\nline one\r\nline two</p>\r\n</div>";
    let patient = json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}});
    let xml = round_trip(&patient);
    assert!(
        xml.contains("<p>&#xD;\nline one&#xD;\nline two</p>&#xD;\n</div>"),
        "{xml}"
    );
    // In attribute values too, where XML would turn them into spaces. (Between attributes a
    // carriage return is mere whitespace and comes back as a line feed.)
    let div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a title=\"one\r\ntwo\r\" href='x\ry'>t</a>\r\n<br/></div>";
    let patient = json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}});
    let xml = round_trip(&patient);
    assert!(
        xml.contains("<a title=\"one&#xD;\ntwo&#xD;\" href='x&#xD;y'>"),
        "{xml}"
    );
    // Also when the namespace declaration has to be added.
    let patient = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>a\rb</div>"}});
    let xml = to_xml(R4, &patient).unwrap();
    assert!(
        xml.contains(r#"<div xmlns="http://www.w3.org/1999/xhtml">a&#xD;b</div>"#),
        "{xml}"
    );
}

#[test]
fn narrative_in_a_prefixed_fhir_document_gets_its_namespace() {
    // The FHIR elements use a prefix and XHTML is the default namespace inherited by the div.
    let xml = concat!(
        r#"<f:Patient xmlns:f="http://hl7.org/fhir" xmlns="http://www.w3.org/1999/xhtml">"#,
        r#"<f:text><f:status value="generated"/><div><p>x</p></div></f:text></f:Patient>"#
    );
    let value = from_xml(R4, xml).unwrap();
    assert_eq!(
        value["text"]["div"],
        json!(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>"#)
    );
}

// ---------------------------------------------------------------------------------------------
// What a reader tolerates

#[test]
fn comments_whitespace_declaration_bom_and_schema_location_are_ignored() {
    let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- leading -->\n\
        <Patient xmlns=\"http://hl7.org/fhir\" \
        xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
        xsi:schemaLocation=\"http://hl7.org/fhir ../../schema/patient.xsd\">\n\
          <!-- a comment -->\n  <id value=\"p1\"/>\n\
          <name>\n    <given value=\"A\"/><!-- between -->\n    <given value=\"B\"/>\n  </name>\n\
        </Patient>\n<!-- trailing -->\n";
    let value = from_xml(R4, xml).unwrap();
    assert_eq!(
        value,
        json!({"resourceType": "Patient", "id": "p1", "name": [{"given": ["A", "B"]}]})
    );
}

#[test]
fn empty_complex_element_becomes_an_empty_object() {
    let value = from_xml(R4, &patient_xml("<name/>")).unwrap();
    assert_eq!(value["name"], json!([{}]));
}

#[test]
fn stu3_round_trips_and_drops_fhir_comments() {
    let patient = json!({
        "resourceType": "Patient",
        "fhir_comments": ["a comment STU3 JSON may carry"],
        "id": "p1",
        "name": [{"family": "Doe", "_family": {"fhir_comments": ["x"], "id": "f"}}]
    });
    let xml = to_xml(FhirVersion::Stu3, &patient).unwrap();
    assert!(!xml.contains("comment"), "{xml}");
    let back = from_xml(FhirVersion::Stu3, &xml).unwrap();
    assert_eq!(
        back,
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe", "_family": {"id": "f"}}]})
    );
}

// ---------------------------------------------------------------------------------------------
// What a reader refuses

#[test]
fn rejects_text_that_is_not_xml() {
    for text in [
        "",
        "hello",
        "{\"resourceType\": \"Patient\"}",
        "<Patient xmlns=\"http://hl7.org/fhir\">",
        "<Patient xmlns=\"http://hl7.org/fhir\"><name></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\" value=\"false\"/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"/><Patient xmlns=\"http://hl7.org/fhir\"/>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"/></Patient>trailing",
    ] {
        let err = parse_error(text);
        assert!(matches!(err, XmlError::Malformed { .. }), "{text}: {err}");
    }
}

#[test]
fn rejects_document_type_declarations() {
    let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol2;"/></name></Patient>"#;
    let err = parse_error(billion_laughs);
    assert!(matches!(err, XmlError::DoctypeNotAllowed { .. }), "{err}");
    assert_eq!(err.position().line_column(), Some((2, 1)));
    let xxe = r#"<!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><name><family value="&xxe;"/></name></Patient>"#;
    assert!(matches!(
        parse_error(xxe),
        XmlError::DoctypeNotAllowed { .. }
    ));
    // Without a declaration, an entity reference is simply undefined.
    let undefined = patient_xml(r#"<name><family value="&xxe;"/></name>"#);
    assert!(matches!(
        parse_error(&undefined),
        XmlError::Malformed { .. }
    ));
}

#[test]
fn rejects_wrong_namespaces() {
    let err = parse_error("<Patient><active value=\"true\"/></Patient>");
    assert!(
        matches!(&err, XmlError::WrongNamespace { path, found, .. } if path == "Patient" && found.is_empty()),
        "{err}"
    );
    let err = parse_error(&patient_xml(r#"<active xmlns="urn:other" value="true"/>"#));
    assert!(
        matches!(&err, XmlError::WrongNamespace { path, found, .. } if path == "Patient.active" && found == "urn:other"),
        "{err}"
    );
    // The narrative must be XHTML, not FHIR.
    let err = parse_error(&patient_xml(
        r#"<text><status value="generated"/><div>x</div></text>"#,
    ));
    assert!(
        matches!(&err, XmlError::WrongNamespace { path, .. } if path == "Patient.text.div"),
        "{err}"
    );
}

#[test]
fn rejects_unknown_elements_with_their_path() {
    let xml = "<Patient xmlns=\"http://hl7.org/fhir\">\n  <name>\n    <given value=\"a\"/>\n    <foo value=\"x\"/>\n  </name>\n</Patient>";
    let err = parse_error(xml);
    assert_eq!(err.path(), Some("Patient.name[0].foo"));
    assert_eq!(err.position().line_column(), Some((4, 5)));
    assert!(matches!(err, XmlError::UnknownElement { .. }));
    assert_eq!(
        err.to_string(),
        "unknown element Patient.name[0].foo (line 4, column 5)"
    );
    // `id` of a data type is an attribute, never an element.
    let err = parse_error(&patient_xml(r#"<name><id value="x"/></name>"#));
    assert_eq!(err.path(), Some("Patient.name[0].id"));
    // A choice element needs its type in the name.
    let err = parse_error(&patient_xml(r#"<deceased value="true"/>"#));
    assert_eq!(err.path(), Some("Patient.deceased"));
}

#[test]
fn rejects_unknown_resource_types() {
    let err = parse_error(r#"<Patientx xmlns="http://hl7.org/fhir"/>"#);
    assert!(
        matches!(&err, XmlError::UnknownResourceType { name, .. } if name == "Patientx"),
        "{err}"
    );
    let err = parse_error(r#"<DomainResource xmlns="http://hl7.org/fhir"/>"#);
    assert!(
        matches!(err, XmlError::UnknownResourceType { .. }),
        "abstract types are not resources"
    );
    let err = parse_error(&patient_xml("<contained><HumanName/></contained>"));
    assert_eq!(err.path(), Some("Patient.contained[0]"));
}

#[test]
fn rejects_elements_out_of_order() {
    let err = parse_error(&patient_xml(
        r#"<gender value="male"/><active value="true"/>"#,
    ));
    assert!(
        matches!(&err, XmlError::OutOfOrder { path, after, .. } if path == "Patient.active" && after == "gender"),
        "{err}"
    );
    // Interleaving the occurrences of a repeating element is out of order as well.
    let err = parse_error(&patient_xml(
        r#"<name><given value="a"/><family value="b"/></name>"#,
    ));
    assert!(matches!(err, XmlError::OutOfOrder { .. }), "{err}");
}

#[test]
fn rejects_a_value_attribute_on_a_complex_type() {
    let err = parse_error(&patient_xml(r#"<name value="Jim"/>"#));
    assert!(
        matches!(&err, XmlError::ValueOnComplexType { path, type_name, .. } if path == "Patient.name[0]" && type_name == "HumanName"),
        "{err}"
    );
}

#[test]
fn rejects_repeats_of_single_elements() {
    let err = parse_error(&patient_xml(
        r#"<birthDate value="2000-01-01"/><birthDate value="2000-01-02"/>"#,
    ));
    assert!(
        matches!(&err, XmlError::Repeated { path, .. } if path == "Patient.birthDate"),
        "{err}"
    );
    let err = parse_error(&patient_xml(
        r#"<deceasedBoolean value="true"/><deceasedDateTime value="2020"/>"#,
    ));
    assert!(matches!(err, XmlError::Repeated { .. }), "{err}");
    let err = parse_error(&patient_xml("<contained><Patient/><Patient/></contained>"));
    assert!(matches!(err, XmlError::Repeated { .. }), "{err}");
}

#[test]
fn rejects_nesting_deeper_than_the_limit() {
    let err = parse_error(&nested_extensions_xml(MAX_DEPTH + 5, "deep"));
    assert!(
        matches!(
            err,
            XmlError::TooDeep {
                limit: MAX_DEPTH,
                ..
            }
        ),
        "{err}"
    );

    // Deep XHTML counts too.
    assert!(matches!(
        parse_error(&deep_narrative_xml()),
        XmlError::TooDeep { .. }
    ));

    // And nesting just under the limit is fine.
    let xml = nested_extensions_xml(MAX_DEPTH - 2, "ok");
    let value = from_xml(R4, &xml).unwrap();
    assert_eq!(to_xml(R4, &value).unwrap(), xml);
}

#[test]
fn rejects_invalid_primitive_values() {
    for (body, path) in [
        (r#"<active value="yes"/>"#, "Patient.active"),
        (
            r#"<multipleBirthInteger value="1.5"/>"#,
            "Patient.multipleBirthInteger",
        ),
        (
            r#"<multipleBirthInteger value="+1"/>"#,
            "Patient.multipleBirthInteger",
        ),
        (
            r#"<multipleBirthInteger value=""/>"#,
            "Patient.multipleBirthInteger",
        ),
        (
            r#"<name><family value="&#1;"/></name>"#,
            "Patient.name[0].family",
        ),
    ] {
        let err = parse_error(&patient_xml(body));
        assert!(
            matches!(
                &err,
                XmlError::InvalidValue { .. } | XmlError::Malformed { .. }
            ),
            "{body}: {err}"
        );
        if let XmlError::InvalidValue { path: found, .. } = &err {
            assert_eq!(found, path);
        }
    }
}

#[test]
fn rejects_empty_primitives_text_and_unknown_attributes() {
    let err = parse_error(&patient_xml("<active/>"));
    assert!(
        matches!(&err, XmlError::EmptyElement { path, .. } if path == "Patient.active"),
        "{err}"
    );
    let err = parse_error(&patient_xml(r#"<active value="true">yes</active>"#));
    assert!(
        matches!(&err, XmlError::UnexpectedText { path, .. } if path == "Patient.active"),
        "{err}"
    );
    let err = parse_error(&patient_xml("<name>Jim</name>"));
    assert!(matches!(err, XmlError::UnexpectedText { .. }), "{err}");
    let err = parse_error(&patient_xml("<name><![CDATA[Jim]]></name>"));
    assert!(matches!(err, XmlError::UnexpectedText { .. }), "{err}");
    let err = parse_error(&patient_xml(r#"<active value="true" colour="red"/>"#));
    assert!(
        matches!(&err, XmlError::UnknownAttribute { path, name, .. } if path == "Patient.active" && name == "colour"),
        "{err}"
    );
    let err = parse_error(&patient_xml(r#"<active value="true"><foo/></active>"#));
    assert_eq!(err.path(), Some("Patient.active.foo"));
    let err = parse_error(&patient_xml("<contained/>"));
    assert!(matches!(err, XmlError::EmptyElement { .. }), "{err}");
}

#[test]
fn rejects_narratives_that_cannot_be_copied_verbatim() {
    for div in [
        r#"<div xmlns="http://www.w3.org/1999/xhtml">&nbsp;</div>"#,
        r#"<h:div xmlns:h="http://www.w3.org/1999/xhtml">x</h:div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><svg xmlns="http://www.w3.org/2000/svg"/></div>"#,
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><h:p xmlns:h="http://www.w3.org/1999/xhtml"/></div>"#,
        r#"<p xmlns="http://www.w3.org/1999/xhtml">x</p>"#,
    ] {
        let xml = patient_xml(&format!(r#"<text><status value="generated"/>{div}</text>"#));
        let err = parse_error(&xml);
        assert!(
            matches!(
                err,
                XmlError::InvalidNarrative { .. } | XmlError::UnknownElement { .. }
            ),
            "{div}: {err}"
        );
    }
}

#[test]
fn never_panics_on_truncations_of_a_real_document() {
    let xml = to_xml_pretty(
        R4,
        &json!({
            "resourceType": "Patient",
            "id": "p1",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>é &amp; ü</p></div>"},
            "name": [{"given": ["Å", "B"], "_given": [null, {"id": "x"}]}],
            "contained": [{"resourceType": "Basic", "code": {"text": "c"}}]
        }),
    )
    .unwrap();
    for end in 0..xml.len() {
        if let Some(prefix) = xml.get(..end) {
            assert!(
                from_xml(R4, prefix).is_err(),
                "prefix of {end} bytes parsed"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What a writer refuses

#[test]
fn writer_reports_json_that_is_not_a_resource() {
    assert!(matches!(
        write_error(&json!([1])),
        XmlError::InvalidJson { .. }
    ));
    assert!(matches!(
        write_error(&json!({"id": "x"})),
        XmlError::InvalidJson { .. }
    ));
    let err = write_error(&json!({"resourceType": "Nope"}));
    assert!(matches!(err, XmlError::UnknownResourceType { .. }), "{err}");
}

#[test]
fn writer_reports_unknown_properties_with_their_path() {
    let err = write_error(&json!({
        "resourceType": "Patient",
        "name": [{"family": "x", "nickname": "y"}]
    }));
    assert!(
        matches!(&err, XmlError::UnknownElement { path, .. } if path == "Patient.name[0].nickname"),
        "{err}"
    );
    let err = write_error(&json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "colour": "red"}}]
    }));
    assert_eq!(
        err.path(),
        Some("Bundle.entry[0].resource.ofType(Patient).colour")
    );
    let err = write_error(&json!({"resourceType": "Patient", "_name": [{"id": "x"}]}));
    assert!(matches!(err, XmlError::InvalidJson { .. }), "{err}");
    let err = write_error(&json!({"resourceType": "Patient", "name": [{"_id": "x"}]}));
    assert!(matches!(err, XmlError::UnknownElement { .. }), "{err}");
}

#[test]
fn writer_reports_json_of_the_wrong_shape() {
    let cases = [
        json!({"resourceType": "Patient", "name": {"family": "x"}}),
        json!({"resourceType": "Patient", "active": [true]}),
        json!({"resourceType": "Patient", "active": "true"}),
        json!({"resourceType": "Patient", "multipleBirthInteger": "2"}),
        json!({"resourceType": "Patient", "birthDate": 1970}),
        json!({"resourceType": "Patient", "name": [{"given": ["a", "b"], "_given": [null]}]}),
        json!({"resourceType": "Patient", "name": [{"given": ["a", null]}]}),
        json!({"resourceType": "Patient", "name": [null]}),
        json!({"resourceType": "Patient", "name": ["Jim"]}),
        json!({"resourceType": "Patient", "active": null}),
        json!({"resourceType": "Patient", "_active": {"colour": "red"}}),
        json!({"resourceType": "Patient", "contained": [{"id": "no-type"}]}),
        json!({"resourceType": "Patient", "name": [{"family": "a\u{1}b"}]}),
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>unclosed"}}),
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<p>not a div</p>"}}),
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div/><div/>"}}),
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>&nbsp;</div>"}}),
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<!DOCTYPE x><div/>"}}),
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": 3}}),
    ];
    for case in cases {
        let result = to_xml(R4, &case);
        assert!(result.is_err(), "{case} gave {result:?}");
    }
}

#[test]
fn writer_rejects_two_types_of_one_choice() {
    let err = write_error(&json!({
        "resourceType": "Patient",
        "deceasedBoolean": true,
        "deceasedDateTime": "2020"
    }));
    assert!(matches!(err, XmlError::Repeated { .. }), "{err}");
}

#[test]
fn writer_refuses_nesting_deeper_than_the_limit() {
    let patient = too_deep_extensions_json();
    assert!(matches!(write_error(&patient), XmlError::TooDeep { .. }));
}

#[test]
fn errors_name_their_location() {
    let err = parse_error(&patient_xml("<active/>"));
    assert!(err.to_string().contains("Patient.active"), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");
    let err = write_error(&json!({"resourceType": "Patient", "nickname": "x"}));
    assert_eq!(err.position(), TextPosition::NONE);
    assert_eq!(err.to_string(), "unknown element Patient.nickname");
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Pieces of FHIR-ish XML, so that random documents get past the first few bytes and exercise
/// the deeper paths of the reader.
fn xml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"<Patient xmlns="http://hl7.org/fhir">"#.to_owned()),
        Just("</Patient>".to_owned()),
        Just("<name>".to_owned()),
        Just("</name>".to_owned()),
        Just(r#"<given value="x"/>"#.to_owned()),
        Just(r#"<active value="true"/>"#.to_owned()),
        Just(r#"<extension url="u">"#.to_owned()),
        Just("</extension>".to_owned()),
        Just(r#"<valueDecimal value="1.50"/>"#.to_owned()),
        Just("<contained>".to_owned()),
        Just("</contained>".to_owned()),
        Just(r#"<text><status value="generated"/>"#.to_owned()),
        Just(r#"<div xmlns="http://www.w3.org/1999/xhtml">"#.to_owned()),
        Just("</div>".to_owned()),
        Just("</text>".to_owned()),
        Just("<!-- c -->".to_owned()),
        Just("<!DOCTYPE x>".to_owned()),
        Just("&amp;".to_owned()),
        Just("&#x0;".to_owned()),
        Just("<![CDATA[x]]>".to_owned()),
        Just("<?pi x?>".to_owned()),
        "[<>/=\"' a-z&;#]{0,8}",
    ]
}

proptest! {
    #[test]
    fn from_xml_never_panics_on_arbitrary_text(text in ".{0,300}") {
        let _ = from_xml(R4, &text);
    }

    #[test]
    fn from_xml_never_panics_on_xml_like_text(
        fragments in prop::collection::vec(xml_fragment(), 0..40)
    ) {
        let text = fragments.concat();
        let _ = from_xml(R4, &text);
        let _ = from_xml(FhirVersion::Stu3, &text);
    }

    #[test]
    fn to_xml_never_panics_on_arbitrary_narratives(div in ".{0,100}") {
        let patient = json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}});
        if let Ok(xml) = to_xml(R4, &patient) {
            // Whatever is accepted must read back.
            prop_assert!(from_xml(R4, &xml).is_ok(), "{}", xml);
        }
    }

    #[test]
    fn generated_patients_round_trip(patient in patient_strategy()) {
        let xml = to_xml(R4, &patient).map_err(|err| TestCaseError::fail(err.to_string()))?;
        let back = from_xml(R4, &xml).map_err(|err| TestCaseError::fail(format!("{err}\n{xml}")))?;
        prop_assert_eq!(back, patient, "{}", xml);
    }
}

/// Text FHIR allows in a string: any XML character, markup characters and whitespace included.
fn fhir_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9 ]{1,12}", "[\\PC&<>\"'\n\t\r]{1,12}",]
}

fn extension_strategy() -> impl Strategy<Value = Value> {
    (
        fhir_text(),
        prop_oneof![
            fhir_text().prop_map(|text| ("valueString", json!(text))),
            any::<bool>().prop_map(|flag| ("valueBoolean", json!(flag))),
            (-1000i64..1000, 0u32..100).prop_map(|(whole, cents)| {
                let number: Value =
                    serde_json::from_str(&format!("{whole}.{cents:02}")).unwrap_or(Value::Null);
                ("valueDecimal", number)
            }),
        ],
    )
        .prop_map(
            |(url, (key, value))| json!({"url": format!("http://example.org/{url}"), key: value}),
        )
}

/// An id and/or extensions for a primitive (JSON's `_name`), or nothing.
fn primitive_extras() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => "[a-z0-9]{1,8}".prop_map(|id| Some(json!({"id": id}))),
        1 => prop::collection::vec(extension_strategy(), 1..3)
            .prop_map(|extensions| Some(json!({"extension": extensions}))),
    ]
}

fn patient_strategy() -> impl Strategy<Value = Value> {
    let given = prop::collection::vec((prop::option::of(fhir_text()), primitive_extras()), 0..4);
    let name = (
        prop::option::of(fhir_text()),
        given,
        prop::option::of("[a-z]{1,6}"),
    );
    (
        prop::option::of("[A-Za-z0-9.-]{1,64}"),
        prop::option::of(any::<bool>()),
        prop::collection::vec(name, 0..3),
        prop::option::of(prop_oneof![
            Just("male"),
            Just("female"),
            Just("other"),
            Just("unknown")
        ]),
        (
            prop::option::of("(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9])"),
            primitive_extras(),
        ),
        prop::collection::vec(extension_strategy(), 0..3),
    )
        .prop_map(
            |(id, active, names, gender, (birth_date, birth_extras), extensions)| {
                let mut patient = serde_json::Map::new();
                patient.insert("resourceType".into(), json!("Patient"));
                if let Some(id) = id {
                    patient.insert("id".into(), json!(id));
                }
                if !extensions.is_empty() {
                    patient.insert("extension".into(), json!(extensions));
                }
                if let Some(active) = active {
                    patient.insert("active".into(), json!(active));
                }
                let names: Vec<Value> = names
                    .into_iter()
                    .map(|(family, given, name_id)| {
                        let mut name = serde_json::Map::new();
                        if let Some(id) = name_id {
                            name.insert("id".into(), json!(id));
                        }
                        if let Some(family) = family {
                            name.insert("family".into(), json!(family));
                        }
                        // A given name with neither value nor extras cannot exist; give it a value.
                        let given: Vec<(Value, Option<Value>)> = given
                            .into_iter()
                            .map(|(value, extras)| match (value, extras) {
                                (None, None) => (json!("x"), None),
                                (value, extras) => {
                                    (value.map_or(Value::Null, Value::String), extras)
                                }
                            })
                            .collect();
                        if !given.is_empty() {
                            if given.iter().any(|(value, _)| !value.is_null()) {
                                name.insert(
                                    "given".into(),
                                    given.iter().map(|(v, _)| v.clone()).collect(),
                                );
                            }
                            if given.iter().any(|(_, extras)| extras.is_some()) {
                                name.insert(
                                    "_given".into(),
                                    given
                                        .iter()
                                        .map(|(_, extras)| extras.clone().unwrap_or(Value::Null))
                                        .collect(),
                                );
                            }
                        }
                        Value::Object(name)
                    })
                    .collect();
                if !names.is_empty() {
                    patient.insert("name".into(), json!(names));
                }
                if let Some(gender) = gender {
                    patient.insert("gender".into(), json!(gender));
                }
                if let Some(birth_date) = birth_date {
                    patient.insert("birthDate".into(), json!(birth_date));
                }
                if let Some(extras) = birth_extras {
                    patient.insert("_birthDate".into(), extras);
                }
                Value::Object(patient)
            },
        )
}
