//! What an element is indexed as, by search parameter type and element type: a CodeableConcept
//! under a token parameter gives one token per coding plus its text, a HumanName under a string
//! parameter gives each name part, a Period under a date parameter gives its start-to-end range,
//! and so on, as the FHIR search specification tabulates.

use serde_json::Value;

use super::{IndexValue, ParamKind, normalize_string};
use crate::datetime::{DateKind, PartialDateTime};

/// The index values of one element found by a parameter's expression. `type_name` is the FHIR
/// type of the element when known; otherwise it is inferred from the JSON shape.
pub fn index_values(kind: ParamKind, value: &Value, type_name: Option<&str>) -> Vec<IndexValue> {
    let type_name = type_name
        .map(str::to_owned)
        .unwrap_or_else(|| infer_type(value));
    let mut out = Vec::new();
    match kind {
        ParamKind::Token => token_values(value, &type_name, &mut out),
        ParamKind::String => string_values(value, &type_name, &mut out),
        ParamKind::Reference => reference_values(value, &type_name, &mut out),
        ParamKind::Date => date_values(value, &type_name, &mut out),
        ParamKind::Number => {
            if let Some((low, high)) = number_of(value) {
                out.push(IndexValue::Number { low, high });
            }
        }
        ParamKind::Quantity => quantity_values(value, &type_name, &mut out),
        ParamKind::Uri => {
            if let Some(uri) = value.as_str() {
                out.push(IndexValue::Uri(uri.to_owned()));
            }
        }
    }
    out
}

/// Guesses the type of an element from its JSON when the model could not say (for example the
/// result of a function in an expression).
fn infer_type(value: &Value) -> String {
    let name = match value {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "decimal",
        Value::String(_) => "string",
        Value::Object(object) => {
            if object.contains_key("coding") || (object.len() == 1 && object.contains_key("text")) {
                "CodeableConcept"
            } else if object.contains_key("reference") {
                "Reference"
            } else if object.contains_key("start") || object.contains_key("end") {
                "Period"
            } else if object.contains_key("family") || object.contains_key("given") {
                "HumanName"
            } else if object.contains_key("line")
                || object.contains_key("city")
                || object.contains_key("postalCode")
            {
                "Address"
            } else if object.contains_key("value")
                && object.contains_key("system")
                && object.contains_key("code")
            {
                "Quantity"
            } else if object.contains_key("value") && object.contains_key("system") {
                "Identifier"
            } else if object.contains_key("code") {
                "Coding"
            } else {
                "Element"
            }
        }
        _ => "Element",
    };
    name.to_owned()
}

fn text_of(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(normalize_string)
}

fn string_of(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

fn token_values(value: &Value, type_name: &str, out: &mut Vec<IndexValue>) {
    match type_name {
        "CodeableConcept" => {
            let text = text_of(value.get("text"));
            for coding in value
                .get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                push_coding(coding, text.clone(), out);
            }
            if let Some(text) = text {
                out.push(IndexValue::Token {
                    system: None,
                    code: None,
                    text: Some(text),
                });
            }
        }
        "Coding" => push_coding(value, None, out),
        "Identifier" => {
            let text = value
                .pointer("/type/text")
                .and_then(Value::as_str)
                .map(normalize_string);
            if value.get("value").is_some() || value.get("system").is_some() {
                out.push(IndexValue::Token {
                    system: string_of(value.get("system")),
                    code: string_of(value.get("value")),
                    text,
                });
            }
        }
        "ContactPoint" => {
            if let Some(code) = string_of(value.get("value")) {
                out.push(IndexValue::Token {
                    system: string_of(value.get("system")),
                    code: Some(code),
                    text: None,
                });
            }
        }
        _ => match value {
            Value::Bool(flag) => out.push(IndexValue::Token {
                system: None,
                code: Some(flag.to_string()),
                text: None,
            }),
            Value::String(code) => out.push(IndexValue::Token {
                system: None,
                code: Some(code.clone()),
                text: None,
            }),
            Value::Number(number) => out.push(IndexValue::Token {
                system: None,
                code: Some(number.to_string()),
                text: None,
            }),
            _ => {}
        },
    }
}

fn push_coding(coding: &Value, text: Option<String>, out: &mut Vec<IndexValue>) {
    let display = text_of(coding.get("display")).or(text);
    let code = string_of(coding.get("code"));
    let system = string_of(coding.get("system"));
    if code.is_some() || system.is_some() || display.is_some() {
        out.push(IndexValue::Token {
            system,
            code,
            text: display,
        });
    }
}

fn push_string(text: &str, out: &mut Vec<IndexValue>) {
    if text.is_empty() {
        return;
    }
    out.push(IndexValue::String {
        normalized: normalize_string(text),
        exact: text.to_owned(),
    });
}

fn string_values(value: &Value, type_name: &str, out: &mut Vec<IndexValue>) {
    let parts: &[&str] = match type_name {
        "HumanName" => &["text", "family", "given", "prefix", "suffix"],
        "Address" => &[
            "text",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
        ],
        _ => &[],
    };
    if parts.is_empty() {
        match value {
            Value::String(text) => push_string(text, out),
            // Other complex types: their string parts (e.g. Annotation.text).
            Value::Object(object) => {
                for part in object.values() {
                    if let Value::String(text) = part {
                        push_string(text, out);
                    }
                }
            }
            _ => {}
        }
        return;
    }
    for part in parts {
        match value.get(part) {
            Some(Value::String(text)) => push_string(text, out),
            Some(Value::Array(items)) => {
                for item in items.iter().filter_map(Value::as_str) {
                    push_string(item, out);
                }
            }
            _ => {}
        }
    }
}

fn reference_values(value: &Value, type_name: &str, out: &mut Vec<IndexValue>) {
    let reference = match (type_name, value) {
        (_, Value::String(url)) => Some(url.as_str()),
        (_, Value::Object(object)) => object.get("reference").and_then(Value::as_str),
        _ => None,
    };
    let Some(reference) = reference else {
        return;
    };
    // Contained references (`#id`) point inside the resource and are not indexed.
    if reference.starts_with('#') {
        return;
    }
    if let Some((resource_type, id)) = local_reference(reference) {
        out.push(IndexValue::Reference {
            resource_type: Some(resource_type.to_owned()),
            id: Some(id.to_owned()),
            url: None,
        });
    } else {
        out.push(IndexValue::Reference {
            resource_type: None,
            id: None,
            url: Some(reference.to_owned()),
        });
    }
}

/// `Patient/1` or `Patient/1/_history/2` as (type, id); absolute URLs are not local.
pub fn local_reference(reference: &str) -> Option<(&str, &str)> {
    if reference.contains(':') {
        return None;
    }
    let mut segments = reference.split('/');
    let resource_type = segments.next()?;
    let id = segments.next()?;
    match (segments.next(), segments.next(), segments.next()) {
        (None, _, _) | (Some("_history"), Some(_), None) => {}
        _ => return None,
    }
    let starts_upper = resource_type
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase());
    (starts_upper && crate::json::is_valid_id(id)).then_some((resource_type, id))
}

fn date_values(value: &Value, type_name: &str, out: &mut Vec<IndexValue>) {
    let range_of = |text: Option<&Value>| {
        text.and_then(Value::as_str)
            .and_then(|t| PartialDateTime::parse(t, DateKind::Search).ok())
            .map(|d| d.range())
    };
    match (type_name, value) {
        (_, Value::String(_)) => {
            if let Some((low, high)) = range_of(Some(value)) {
                out.push(IndexValue::Date { low, high });
            }
        }
        ("Period", _) | (_, Value::Object(_))
            if value.get("start").is_some() || value.get("end").is_some() =>
        {
            let low = range_of(value.get("start"))
                .map(|r| r.0)
                .unwrap_or(i64::MIN);
            let high = range_of(value.get("end")).map(|r| r.1).unwrap_or(i64::MAX);
            out.push(IndexValue::Date { low, high });
        }
        ("Timing", _) => {
            for event in value
                .get("event")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some((low, high)) = range_of(Some(event)) {
                    out.push(IndexValue::Date { low, high });
                }
            }
        }
        _ => {}
    }
}

fn number_of(value: &Value) -> Option<(f64, f64)> {
    let number = match value {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.parse().ok()?,
        _ => return None,
    };
    Some((number, number))
}

fn quantity_values(value: &Value, type_name: &str, out: &mut Vec<IndexValue>) {
    if type_name == "Range" {
        let low = value.pointer("/low/value").and_then(number_of).map(|n| n.0);
        let high = value
            .pointer("/high/value")
            .and_then(number_of)
            .map(|n| n.1);
        let unit = value.get("low").or_else(|| value.get("high"));
        if low.is_some() || high.is_some() {
            out.push(IndexValue::Quantity {
                system: unit.and_then(|u| string_of(u.get("system"))),
                code: unit
                    .and_then(|u| string_of(u.get("code")).or_else(|| string_of(u.get("unit")))),
                low: low.unwrap_or(f64::MIN),
                high: high.unwrap_or(f64::MAX),
            });
        }
        return;
    }
    let Some((low, high)) = value.get("value").and_then(number_of) else {
        return;
    };
    // Money (R4) has a currency rather than a unit.
    let code = string_of(value.get("code"))
        .or_else(|| string_of(value.get("currency")))
        .or_else(|| string_of(value.get("unit")));
    out.push(IndexValue::Quantity {
        system: string_of(value.get("system")),
        code,
        low,
        high,
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn codeable_concepts_give_a_token_per_coding_and_their_text() {
        let values = index_values(
            ParamKind::Token,
            &json!({"coding": [{"system": "http://snomed.info/sct", "code": "123", "display": "Thing"}], "text": "Ça"}),
            Some("CodeableConcept"),
        );
        assert_eq!(values.len(), 2);
        assert_eq!(
            values[0],
            IndexValue::Token {
                system: Some("http://snomed.info/sct".into()),
                code: Some("123".into()),
                text: Some("thing".into())
            }
        );
        assert_eq!(
            values[1],
            IndexValue::Token {
                system: None,
                code: None,
                text: Some("ca".into())
            }
        );
    }

    #[test]
    fn names_addresses_references_and_periods() {
        let names = index_values(
            ParamKind::String,
            &json!({"family": "Żółw", "given": ["Ann", "Bé"]}),
            Some("HumanName"),
        );
        assert_eq!(names.len(), 3);
        let reference = index_values(
            ParamKind::Reference,
            &json!({"reference": "Patient/p1/_history/2"}),
            None,
        );
        assert_eq!(
            reference[0],
            IndexValue::Reference {
                resource_type: Some("Patient".into()),
                id: Some("p1".into()),
                url: None
            }
        );
        let external = index_values(
            ParamKind::Reference,
            &json!({"reference": "http://x.org/fhir/Patient/1"}),
            None,
        );
        assert!(matches!(
            &external[0],
            IndexValue::Reference { url: Some(_), .. }
        ));
        let open = index_values(
            ParamKind::Date,
            &json!({"start": "2024-01-01"}),
            Some("Period"),
        );
        assert!(matches!(open[0], IndexValue::Date { high: i64::MAX, .. }));
    }

    #[test]
    fn local_references_need_a_type_and_an_id() {
        assert_eq!(local_reference("Patient/1"), Some(("Patient", "1")));
        assert_eq!(local_reference("urn:uuid:abc"), None);
        assert_eq!(local_reference("patient/1"), None);
        assert_eq!(local_reference("Patient/1/extra"), None);
    }
}
