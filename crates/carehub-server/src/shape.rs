//! `_summary` and `_elements`: returning part of a resource, marked `SUBSETTED` so that no client
//! mistakes it for the whole and writes it back.

use carehub_fhir::model::Model;
use carehub_fhir::search::Summary;
use serde_json::{Map, Value, json};

/// Applies `_summary` (other than `count`) and `_elements` to a resource; `None` when the
/// resource is returned whole.
pub(crate) fn subset(
    model: &Model,
    resource: &Value,
    summary: Summary,
    elements: &[String],
) -> Option<Value> {
    if summary == Summary::False && elements.is_empty() {
        return None;
    }
    let object = resource.as_object()?;
    let type_name = object.get("resourceType")?.as_str()?;
    let type_def = model.type_def(type_name)?;
    let mut out = Map::new();
    for (key, value) in object {
        let keep = match key.as_str() {
            "resourceType" | "id" | "meta" => true,
            // The narrative is not a summary element; `text` mode keeps it, `data` drops it.
            "text" => summary == Summary::Text || elements.iter().any(|e| e == "text"),
            _ => {
                let name = key.trim_start_matches('_');
                let element = model
                    .resolve_key(type_name, name)
                    .map(|resolved| resolved.element)
                    .or_else(|| type_def.elements.iter().find(|e| e.name == name));
                match element {
                    None => false,
                    Some(element) if !elements.is_empty() => {
                        elements.iter().any(|e| e == &element.name)
                            || element.min > 0
                            || element.modifier
                    }
                    Some(element) => match summary {
                        Summary::True => element.summary,
                        Summary::Text => element.min > 0,
                        Summary::Data => true,
                        Summary::False | Summary::Count => true,
                    },
                }
            }
        };
        if keep {
            out.insert(key.clone(), value.clone());
        }
    }
    // Mark the subset (the code is the same in STU3 and R4 apart from the system URL).
    let system = if model.version() == carehub_fhir::FhirVersion::Stu3 {
        "http://hl7.org/fhir/v3/ObservationValue"
    } else {
        "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
    };
    let meta = out.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut() {
            tags.push(json!({"system": system, "code": "SUBSETTED", "display": "Resource encoded in summary mode"}));
        }
    }
    Some(Value::Object(out))
}
