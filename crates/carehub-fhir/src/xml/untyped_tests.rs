//! Tests of FHIR XML conversion without definitions (DSTU2 for GP Connect Access Record HTML):
//! the exact XML written from JSON key order, reading back with a list of repeating elements,
//! and every input either direction must refuse.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::tests::{
    deep_narrative_xml, nested_extensions_xml, patient_xml, too_deep_extensions_json,
};
use super::*;

/// The repeating DSTU2 elements the GP Connect Access Record HTML API meets.
const GP_CONNECT_REPEATING: &[&str] = &[
    "parameter",
    "part",
    "coding",
    "extension",
    "modifierExtension",
    "given",
    "family",
    "prefix",
    "line",
    "identifier",
    "telecom",
    "address",
    "name",
    "entry",
    "section",
    "issue",
    "profile",
    "contained",
    "author",
];

fn read(xml: &str, repeating: &[&str]) -> Result<Value, XmlError> {
    let repeating: HashSet<&str> = repeating.iter().copied().collect();
    from_xml_untyped(xml, &|name| repeating.contains(name))
}

fn read_error(xml: &str, repeating: &[&str]) -> XmlError {
    match read(xml, repeating) {
        Ok(value) => panic!("expected an error, got {value}"),
        Err(err) => err,
    }
}

fn write_error(resource: &Value) -> XmlError {
    match to_xml_in_key_order(resource) {
        Ok(xml) => panic!("expected an error, got {xml}"),
        Err(err) => err,
    }
}

const SUMMARY_DIV: &str = concat!(
    r#"<div xmlns="http://www.w3.org/1999/xhtml"><h2>Summary</h2>"#,
    r#"<p>Allergies &amp; <b>adverse</b> reactions</p></div>"#
);

/// A DSTU2 searchset Bundle as the Access Record HTML API answers: a Composition whose section
/// carries the HTML, and the Patient.
fn care_record_bundle() -> Value {
    json!({
        "resourceType": "Bundle",
        "id": "b1",
        "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-searchset-bundle-1"]},
        "type": "searchset",
        "total": 2,
        "entry": [
            {
                "fullUrl": "urn:uuid:c1",
                "resource": {
                    "resourceType": "Composition",
                    "id": "c1",
                    "date": "2017-04-03T10:00:00+01:00",
                    "type": {"coding": [{"system": "http://snomed.info/sct", "code": "425173008"}]},
                    "title": "Patient Care Record",
                    "status": "final",
                    "subject": {"reference": "Patient/p1"},
                    "author": [{"reference": "Practitioner/1"}],
                    "section": [{
                        "title": "Summary",
                        "code": {
                            "coding": [{
                                "system": "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1",
                                "code": "SUM"
                            }],
                            "text": "Summary"
                        },
                        "text": {"status": "generated", "div": SUMMARY_DIV}
                    }]
                }
            },
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "contained": [{
                        "resourceType": "Organization",
                        "id": "o1",
                        "identifier": [{"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "A20047"}]
                    }],
                    "extension": [{
                        "url": "http://fhir.nhs.net/StructureDefinition/extension-registration-details-1",
                        "extension": [{
                            "url": "registrationType",
                            "valueCodeableConcept": {"coding": [{"code": "R"}]}
                        }]
                    }],
                    "identifier": [{"system": "http://fhir.nhs.net/Id/nhs-number", "value": "9476719931"}],
                    "active": true,
                    "name": [{
                        "id": "n1",
                        "use": "official",
                        "family": ["Jackson"],
                        "given": ["Jane", "Ann"],
                        "_given": [null, {"id": "g2"}],
                        "prefix": ["Mrs"]
                    }],
                    "gender": "female",
                    "birthDate": "1952-05-31",
                    "_birthDate": {"extension": [{
                        "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                        "valueDateTime": "1952-05-31T14:35:00+00:00"
                    }]},
                    "managingOrganization": {"reference": "#o1"}
                }
            }
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Round trip

#[test]
fn dstu2_care_record_bundle_is_written_in_key_order_and_reads_back() {
    let bundle = care_record_bundle();
    let xml = to_xml_in_key_order(&bundle).unwrap();
    let composition = concat!(
        r#"<entry><fullUrl value="urn:uuid:c1"/><resource><Composition><id value="c1"/>"#,
        r#"<date value="2017-04-03T10:00:00+01:00"/>"#,
        r#"<type><coding><system value="http://snomed.info/sct"/><code value="425173008"/></coding></type>"#,
        r#"<title value="Patient Care Record"/><status value="final"/>"#,
        r#"<subject><reference value="Patient/p1"/></subject>"#,
        r#"<author><reference value="Practitioner/1"/></author>"#,
        r#"<section><title value="Summary"/><code><coding>"#,
        r#"<system value="http://fhir.nhs.net/ValueSet/gpconnect-record-section-1"/>"#,
        r#"<code value="SUM"/></coding><text value="Summary"/></code>"#,
        r#"<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><h2>Summary</h2>"#,
        r#"<p>Allergies &amp; <b>adverse</b> reactions</p></div></text></section>"#,
        r#"</Composition></resource></entry>"#,
    );
    let patient = concat!(
        r#"<entry><resource><Patient><id value="p1"/>"#,
        r#"<contained><Organization><id value="o1"/><identifier>"#,
        r#"<system value="http://fhir.nhs.net/Id/ods-organization-code"/><value value="A20047"/>"#,
        r#"</identifier></Organization></contained>"#,
        r#"<extension url="http://fhir.nhs.net/StructureDefinition/extension-registration-details-1">"#,
        r#"<extension url="registrationType"><valueCodeableConcept><coding><code value="R"/></coding>"#,
        r#"</valueCodeableConcept></extension></extension>"#,
        r#"<identifier><system value="http://fhir.nhs.net/Id/nhs-number"/><value value="9476719931"/></identifier>"#,
        r#"<active value="true"/>"#,
        r#"<name id="n1"><use value="official"/><family value="Jackson"/>"#,
        r#"<given value="Jane"/><given id="g2" value="Ann"/><prefix value="Mrs"/></name>"#,
        r#"<gender value="female"/>"#,
        r#"<birthDate value="1952-05-31"><extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">"#,
        r#"<valueDateTime value="1952-05-31T14:35:00+00:00"/></extension></birthDate>"#,
        r##"<managingOrganization><reference value="#o1"/></managingOrganization>"##,
        r#"</Patient></resource></entry>"#,
    );
    let expected = format!(
        "{}{}{}{}",
        concat!(
            r#"<Bundle xmlns="http://hl7.org/fhir"><id value="b1"/>"#,
            r#"<meta><profile value="http://fhir.nhs.net/StructureDefinition/gpconnect-searchset-bundle-1"/></meta>"#,
            r#"<type value="searchset"/><total value="2"/>"#,
        ),
        composition,
        patient,
        "</Bundle>"
    );
    assert_eq!(xml, expected);

    let mut back = read(&xml, GP_CONNECT_REPEATING).unwrap();
    // Without definitions numbers and booleans come back as strings.
    assert_eq!(back["total"], json!("2"));
    assert_eq!(back["entry"][1]["resource"]["active"], json!("true"));
    back["total"] = json!(2);
    back["entry"][1]["resource"]["active"] = json!(true);
    assert_eq!(back, bundle);
    // The keys come back in document order, so writing again gives the same XML.
    assert_eq!(to_xml_in_key_order(&back).unwrap(), xml);
    let keys: Vec<&str> = back["entry"][1]["resource"]["name"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["id", "use", "family", "given", "_given", "prefix"]);
}

#[test]
fn dstu2_parameters_body_reads_field_by_field() {
    // The body of a $gpc.getcarerecord request, pretty printed as a consumer may send it.
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Parameters xmlns="http://hl7.org/fhir">
  <!-- the patient -->
  <parameter>
    <name value="patientNHSNumber"/>
    <valueIdentifier>
      <system value="http://fhir.nhs.net/Id/nhs-number"/>
      <value value="9476719931"/>
    </valueIdentifier>
  </parameter>
  <parameter>
    <name value="recordSection"/>
    <valueCodeableConcept>
      <coding>
        <system value="http://fhir.nhs.net/ValueSet/gpconnect-record-section-1"/>
        <code value="SUM"/>
      </coding>
    </valueCodeableConcept>
  </parameter>
  <parameter>
    <name value="timePeriod"/>
    <valuePeriod>
      <start value="2016-01-01"/>
      <end value="2017-01-01"/>
    </valuePeriod>
  </parameter>
</Parameters>
"#;
    let value = read(xml, GP_CONNECT_REPEATING).unwrap();
    assert_eq!(value["resourceType"], "Parameters");
    let parameters = value["parameter"].as_array().unwrap();
    assert_eq!(parameters.len(), 3);
    // `name` is in the list for Patient.name, and the list is by name alone, so
    // Parameters.parameter.name comes as an array too: callers read `name[0]`.
    assert_eq!(parameters[0]["name"], json!(["patientNHSNumber"]));
    assert_eq!(
        parameters[0]["valueIdentifier"]["system"],
        "http://fhir.nhs.net/Id/nhs-number"
    );
    assert_eq!(parameters[0]["valueIdentifier"]["value"], "9476719931");
    assert_eq!(parameters[1]["name"], json!(["recordSection"]));
    let coding = parameters[1]["valueCodeableConcept"]["coding"]
        .as_array()
        .unwrap();
    assert_eq!(coding.len(), 1);
    assert_eq!(
        coding[0]["system"],
        "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1"
    );
    assert_eq!(coding[0]["code"], "SUM");
    assert_eq!(parameters[2]["name"], json!(["timePeriod"]));
    assert_eq!(parameters[2]["valuePeriod"]["start"], "2016-01-01");
    assert_eq!(parameters[2]["valuePeriod"]["end"], "2017-01-01");
    assert_eq!(
        parameters[2]["valuePeriod"].as_object().unwrap().len(),
        2,
        "{value}"
    );

    // Without `name` in the list, the single name is a string.
    let without_name: Vec<&str> = GP_CONNECT_REPEATING
        .iter()
        .copied()
        .filter(|name| *name != "name")
        .collect();
    let value = read(xml, &without_name).unwrap();
    assert_eq!(value["parameter"][1]["name"], "recordSection");
}

#[test]
fn parameters_carry_resources() {
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "result", "resource": {"resourceType": "Patient", "id": "p1", "gender": "male"}},
            {"name": "count", "valueInteger": 3}
        ]
    });
    let xml = to_xml_in_key_order(&parameters).unwrap();
    assert_eq!(
        xml,
        concat!(
            r#"<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="result"/>"#,
            r#"<resource><Patient><id value="p1"/><gender value="male"/></Patient></resource></parameter>"#,
            r#"<parameter><name value="count"/><valueInteger value="3"/></parameter></Parameters>"#
        )
    );
    let back = read(&xml, &["parameter"]).unwrap();
    assert_eq!(
        back,
        json!({
            "resourceType": "Parameters",
            "parameter": [
                {"name": "result", "resource": {"resourceType": "Patient", "id": "p1", "gender": "male"}},
                {"name": "count", "valueInteger": "3"}
            ]
        })
    );
}

#[test]
fn numbers_keep_their_exact_text_and_attributes_escape() {
    let observation: Value = serde_json::from_str(
        r#"{"resourceType": "Observation", "comments": "a < b & \"c\"\n\tnext\r",
            "valueQuantity": {"value": 1.50, "unit": "mg"}}"#,
    )
    .unwrap();
    let xml = to_xml_in_key_order(&observation).unwrap();
    assert_eq!(
        xml,
        concat!(
            r#"<Observation xmlns="http://hl7.org/fhir">"#,
            r#"<comments value="a &lt; b &amp; &quot;c&quot;&#xA;&#x9;next&#xD;"/>"#,
            r#"<valueQuantity><value value="1.50"/><unit value="mg"/></valueQuantity></Observation>"#
        )
    );
    let back = read(&xml, &[]).unwrap();
    assert_eq!(back["comments"], "a < b & \"c\"\n\tnext\r");
    assert_eq!(back["valueQuantity"]["value"], "1.50");
}

#[test]
fn primitive_with_extensions_but_no_value_reads_back_as_an_object() {
    let patient = json!({
        "resourceType": "Patient",
        "_birthDate": {"id": "b", "extension": [{"url": "http://example.org/absent", "valueCode": "unknown"}]},
        "name": [{"given": [null, "Ann"], "_given": [{"id": "g1"}, null]}]
    });
    let xml = to_xml_in_key_order(&patient).unwrap();
    assert_eq!(
        xml,
        patient_xml(concat!(
            r#"<birthDate id="b"><extension url="http://example.org/absent"><valueCode value="unknown"/>"#,
            r#"</extension></birthDate><name><given id="g1"/><given value="Ann"/></name>"#
        ))
    );
    // Nothing tells a value-less primitive from a complex element, as the module explains.
    let back = read(&xml, &["name", "given", "extension"]).unwrap();
    assert_eq!(
        back,
        json!({
            "resourceType": "Patient",
            "birthDate": {"id": "b", "extension": [{"url": "http://example.org/absent", "valueCode": "unknown"}]},
            "name": [{"given": [{"id": "g1"}, "Ann"]}]
        })
    );
}

#[test]
fn reader_ignores_bom_declaration_comments_and_schema_location() {
    let xml = "\u{feff}<?xml version=\"1.0\"?>\n<!-- leading -->\n\
        <Patient xmlns=\"http://hl7.org/fhir\" \
        xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
        xsi:schemaLocation=\"http://hl7.org/fhir patient.xsd\">\n\
          <!-- a comment --><?pi data?>\n  <id value=\"p1\"/>\n\
        </Patient>\n<!-- trailing -->\n";
    assert_eq!(
        read(xml, &[]).unwrap(),
        json!({"resourceType": "Patient", "id": "p1"})
    );
}

#[test]
fn narrative_read_from_xml_gets_its_namespace_and_keeps_comments() {
    let xml = concat!(
        r#"<f:Patient xmlns:f="http://hl7.org/fhir" xmlns="http://www.w3.org/1999/xhtml">"#,
        r#"<f:text><f:status value="generated"/><div><p>a<!-- note -->b</p></div></f:text>"#,
        r#"</f:Patient>"#
    );
    let value = read(xml, &[]).unwrap();
    assert_eq!(
        value["text"]["div"],
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a<!-- note -->b</p></div>"#
    );
    assert_eq!(value["text"]["status"], "generated");
}

#[test]
fn writer_skips_fhir_comments_and_adds_the_narrative_namespace() {
    let patient = json!({
        "resourceType": "Patient",
        "fhir_comments": ["DSTU2 JSON may carry comments"],
        "text": {"status": "generated", "div": "<div><p>x</p></div>"},
        "gender": "male",
        "_gender": {"fhir_comments": ["on a primitive too"], "id": "g"}
    });
    assert_eq!(
        to_xml_in_key_order(&patient).unwrap(),
        patient_xml(concat!(
            r#"<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div></text>"#,
            r#"<gender id="g" value="male"/>"#
        ))
    );
}

// ---------------------------------------------------------------------------------------------
// What is refused

#[test]
fn reader_refuses_document_type_declarations() {
    let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol2;"/></name></Patient>"#;
    let err = read_error(billion_laughs, GP_CONNECT_REPEATING);
    assert!(matches!(err, XmlError::DoctypeNotAllowed { .. }), "{err}");
    assert_eq!(err.position().line_column(), Some((2, 1)));

    let after = format!("{}\n<!DOCTYPE Patient>", patient_xml(r#"<id value="p"/>"#));
    let err = read_error(&after, &[]);
    assert!(matches!(err, XmlError::DoctypeNotAllowed { .. }), "{err}");
}

#[test]
fn reader_refuses_elements_outside_the_fhir_namespace() {
    let err = read_error(r#"<Patient><id value="p"/></Patient>"#, &[]);
    match err {
        XmlError::WrongNamespace {
            path,
            found,
            expected,
            ..
        } => {
            assert_eq!(path, "Patient");
            assert_eq!(found, "");
            assert_eq!(expected, FHIR_NAMESPACE);
        }
        other => panic!("{other}"),
    }

    let err = read_error(
        &patient_xml(r#"<x:gender xmlns:x="urn:other" value="male"/>"#),
        &[],
    );
    assert!(
        matches!(&err, XmlError::WrongNamespace { path, found, .. }
            if path == "Patient.gender" && found == "urn:other"),
        "{err}"
    );

    // The narrative must be XHTML, and nothing else may be.
    let err = read_error(
        &patient_xml(r#"<text><status value="generated"/><div><p>x</p></div></text>"#),
        &[],
    );
    assert!(
        matches!(&err, XmlError::WrongNamespace { path, expected, .. }
            if path == "Patient.text.div" && *expected == XHTML_NAMESPACE),
        "{err}"
    );
    let err = read_error(
        &patient_xml(r#"<p xmlns="http://www.w3.org/1999/xhtml">x</p>"#),
        &[],
    );
    assert!(
        matches!(&err, XmlError::WrongNamespace { path, expected, .. }
            if path == "Patient.p" && *expected == FHIR_NAMESPACE),
        "{err}"
    );
}

#[test]
fn reader_refuses_a_second_occurrence_of_a_single_element() {
    let err = read_error(
        &patient_xml(r#"<gender value="male"/><gender value="female"/>"#),
        GP_CONNECT_REPEATING,
    );
    match &err {
        XmlError::Repeated { path, at } => {
            assert_eq!(path, "Patient.gender");
            assert_eq!(at.line_column(), Some((1, 60)));
        }
        other => panic!("{other}"),
    }

    // Inside a nested resource the path says where.
    let bundle = concat!(
        r#"<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Composition>"#,
        r#"<section><title value="A"/><title value="B"/></section>"#,
        r#"</Composition></resource></entry></Bundle>"#
    );
    let err = read_error(bundle, GP_CONNECT_REPEATING);
    assert_eq!(
        err.path(),
        Some("Bundle.entry[0].resource.ofType(Composition).section[0].title"),
        "{err}"
    );
    assert!(matches!(err, XmlError::Repeated { .. }), "{err}");

    // A repeating element whose occurrences are not together is out of order.
    let err = read_error(
        &patient_xml(r#"<name><given value="A"/><family value="B"/><given value="C"/></name>"#),
        GP_CONNECT_REPEATING,
    );
    match err {
        XmlError::OutOfOrder { path, after, .. } => {
            assert_eq!(path, "Patient.name[0].given");
            assert_eq!(after, "family");
        }
        other => panic!("{other}"),
    }

    // An element's id is an attribute; an element too would be a second id.
    let err = read_error(
        &patient_xml(r#"<name id="a"><id value="b"/></name>"#),
        GP_CONNECT_REPEATING,
    );
    assert!(
        matches!(&err, XmlError::Repeated { path, .. } if path == "Patient.name[0].id"),
        "{err}"
    );

    // A wrapper holds one resource and nothing else.
    let two = concat!(
        r#"<Bundle xmlns="http://hl7.org/fhir"><entry><resource>"#,
        r#"<Patient/><Patient/></resource></entry></Bundle>"#
    );
    let err = read_error(two, GP_CONNECT_REPEATING);
    assert!(
        matches!(&err, XmlError::Repeated { path, .. } if path == "Bundle.entry[0].resource.Patient"),
        "{err}"
    );
    let mixed = patient_xml(r#"<contained><id value="x"/><Organization/></contained>"#);
    let err = read_error(&mixed, GP_CONNECT_REPEATING);
    assert!(
        matches!(&err, XmlError::UnknownElement { path, .. }
            if path == "Patient.contained[0].Organization"),
        "{err}"
    );
}

#[test]
fn reader_refuses_text_empty_elements_and_unknown_attributes() {
    let err = read_error(&patient_xml(r#"<name>Jane</name>"#), GP_CONNECT_REPEATING);
    assert!(
        matches!(&err, XmlError::UnexpectedText { path, .. } if path == "Patient.name[0]"),
        "{err}"
    );
    let err = read_error(&patient_xml(r#"<gender value="male">text</gender>"#), &[]);
    assert!(matches!(err, XmlError::UnexpectedText { .. }), "{err}");
    let err = read_error(&patient_xml(r#"<name/>"#), GP_CONNECT_REPEATING);
    assert!(
        matches!(&err, XmlError::EmptyElement { path, .. } if path == "Patient.name[0]"),
        "{err}"
    );
    let err = read_error(&patient_xml(r#"<gender></gender>"#), &[]);
    assert!(matches!(err, XmlError::EmptyElement { .. }), "{err}");
    for (body, attribute) in [
        (r#"<gender value="male" colour="red"/>"#, "colour"),
        (r#"<gender url="http://x" value="male"/>"#, "url"),
        (r#"<gender xmlns:o="urn:other" o:value="male"/>"#, "o:value"),
    ] {
        let err = read_error(&patient_xml(body), &[]);
        match err {
            XmlError::UnknownAttribute { path, name, .. } => {
                assert_eq!(path, "Patient.gender", "{body}");
                assert_eq!(name, attribute);
            }
            other => panic!("{body}: {other}"),
        }
    }
    let err = read_error(r#"<Patient xmlns="http://hl7.org/fhir" id="p"/>"#, &[]);
    assert!(
        matches!(&err, XmlError::UnknownAttribute { path, name, .. } if path == "Patient" && name == "id"),
        "{err}"
    );
    let err = read_error(
        &patient_xml(r#"<extension url="http://x" value="y"/>"#),
        GP_CONNECT_REPEATING,
    );
    assert!(matches!(err, XmlError::ValueOnComplexType { .. }), "{err}");
    // Element names are FHIR's: lower case first, letters and digits.
    let err = read_error(&patient_xml(r#"<_gender value="male"/>"#), &[]);
    assert!(
        matches!(&err, XmlError::UnknownElement { path, .. } if path == "Patient._gender"),
        "{err}"
    );
    let err = read_error(r#"<patient xmlns="http://hl7.org/fhir"/>"#, &[]);
    assert!(matches!(err, XmlError::UnknownElement { .. }), "{err}");
    // Only extensions go inside a primitive.
    let err = read_error(
        &patient_xml(r#"<gender value="male"><id value="x"/></gender>"#),
        &[],
    );
    assert!(
        matches!(&err, XmlError::UnknownElement { path, .. } if path == "Patient.gender.id"),
        "{err}"
    );
}

#[test]
fn reader_refuses_nesting_deeper_than_the_limit() {
    let xml = nested_extensions_xml(MAX_DEPTH + 5, "deep");
    let err = read_error(&xml, &["extension"]);
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
    let xml = deep_narrative_xml();
    assert!(matches!(read_error(&xml, &[]), XmlError::TooDeep { .. }));

    // Just under the limit is fine, and writes back the same.
    let xml = nested_extensions_xml(MAX_DEPTH - 2, "ok");
    let value = read(&xml, &["extension"]).unwrap();
    assert_eq!(to_xml_in_key_order(&value).unwrap(), xml);
}

#[test]
fn writer_refuses_nesting_deeper_than_the_limit() {
    let patient = too_deep_extensions_json();
    assert!(matches!(
        write_error(&patient),
        XmlError::TooDeep {
            limit: MAX_DEPTH,
            ..
        }
    ));
}

#[test]
fn writer_refuses_null_empty_and_misshapen_json() {
    let cases = [
        (
            json!({"resourceType": "Patient", "gender": null}),
            "Patient.gender",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"given": ["A", null]}]}),
            "Patient.name[0].given[1]",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"given": [null], "_given": [null]}]}),
            "Patient.name[0].given[0]",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"given": ["A"], "_given": [null, null]}]}),
            "Patient.name[0]._given",
        ),
        (
            json!({"resourceType": "Patient", "gender": "male", "_gender": [{"id": "g"}]}),
            "Patient._gender",
        ),
        (
            json!({"resourceType": "Patient", "name": []}),
            "Patient.name",
        ),
        (
            json!({"resourceType": "Patient", "name": [{}]}),
            "Patient.name[0]",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"fhir_comments": ["only"]}]}),
            "Patient.name[0]",
        ),
        (
            json!({"resourceType": "Patient", "name": [[{"family": ["A"]}]]}),
            "Patient.name[0]",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"family": ["A"]}], "_name": [{"id": "n"}]}),
            "Patient.name[0]",
        ),
        (
            json!({"resourceType": "Patient", "bad key": "x"}),
            "Patient.bad key",
        ),
        (
            json!({"resourceType": "Patient", "Gender": "male"}),
            "Patient.Gender",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"_id": {"id": "x"}}]}),
            "Patient.name[0]._id",
        ),
        (
            json!({"resourceType": "Patient", "text": {"div": {"p": "x"}}}),
            "Patient.text.div",
        ),
        (json!({"resourceType": "patient"}), "resourceType"),
        (json!({"id": "no type"}), "(root)"),
        (json!(["not an object"]), "(root)"),
    ];
    for (resource, path) in cases {
        let err = write_error(&resource);
        assert!(
            matches!(&err, XmlError::InvalidJson { path: found, .. } if found == path),
            "{resource}: {err}"
        );
    }
    // A complex element's id, like an extension's url, must be a string.
    let err = write_error(&json!({"resourceType": "Patient", "name": [{"id": 1, "text": "x"}]}));
    assert!(
        matches!(&err, XmlError::InvalidValue { path, .. } if path == "Patient.name[0].id"),
        "{err}"
    );
    let err = write_error(
        &json!({"resourceType": "Patient", "birthDate": "1970", "_birthDate": {"colour": "red"}}),
    );
    assert!(
        matches!(&err, XmlError::UnknownElement { path, .. } if path == "Patient.birthDate.colour"),
        "{err}"
    );
}

#[test]
fn characters_xml_cannot_carry_are_refused_both_ways() {
    let err = write_error(&json!({"resourceType": "Patient", "gender": "ma\u{1}le"}));
    match err {
        XmlError::InvalidValue { path, message, .. } => {
            assert_eq!(path, "Patient.gender");
            assert!(message.contains("U+0001"), "{message}");
        }
        other => panic!("{other}"),
    }
    let err =
        write_error(&json!({"resourceType": "Patient", "name": [{"id": "\u{FFFE}", "text": "x"}]}));
    assert!(
        matches!(&err, XmlError::InvalidValue { path, .. } if path == "Patient.name[0].id"),
        "{err}"
    );
    let err = write_error(&json!({
        "resourceType": "Patient",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">\u{B}</div>"}
    }));
    assert!(
        matches!(&err, XmlError::InvalidNarrative { path, .. } if path == "Patient.text.div"),
        "{err}"
    );
    // Narrative that is not a single XHTML div is refused too.
    let err = write_error(&json!({
        "resourceType": "Patient",
        "text": {"status": "generated", "div": "<p>not a div</p>"}
    }));
    assert!(matches!(err, XmlError::InvalidNarrative { .. }), "{err}");

    // In XML such a character can only be a reference, which XML 1.0 does not allow.
    let err = read_error(&patient_xml(r#"<gender value="ma&#x1;le"/>"#), &[]);
    match err {
        XmlError::InvalidValue { path, message, at } => {
            assert_eq!(path, "Patient.gender");
            assert!(message.contains("U+0001"), "{message}");
            assert_eq!(at.line_column(), Some((1, 38)));
        }
        other => panic!("{other}"),
    }
    let err = read_error(
        &patient_xml(concat!(
            r#"<text><status value="generated"/>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml">&#x1;</div></text>"#
        )),
        &[],
    );
    assert!(matches!(err, XmlError::InvalidNarrative { .. }), "{err}");
}
