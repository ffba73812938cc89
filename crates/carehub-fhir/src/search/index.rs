//! Extracting a resource's search index entries: every search parameter of its type is a
//! FHIRPath expression, compiled once per version and resource type, evaluated on every write.
//! Parameters whose expression cannot be compiled are left out, and reported once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::{IndexEntry, IndexValue, ParamKind, index_values};
use crate::fhirpath::{Environment, Expression, Item};
use crate::model::FhirVersion;

/// One indexed parameter of a resource type, compiled.
#[derive(Debug)]
struct CompiledParam {
    code: String,
    kind: Kind,
    expression: Expression,
}

/// What a parameter's expression yields.
#[derive(Debug)]
enum Kind {
    /// Values of one type.
    Simple(ParamKind),
    /// Elements, each giving a tuple: every component expression evaluated on the element.
    Composite(Vec<(ParamKind, Expression)>),
}

/// Most tuples one element of a composite parameter is indexed under (the product of its
/// components' values), so that a pathological element cannot flood the index.
const MAX_TUPLES: usize = 64;

/// Extracts index entries for one FHIR version. Cheap to share; compiles lazily per type.
#[derive(Debug)]
pub struct Indexer {
    version: FhirVersion,
    compiled: RwLock<HashMap<String, Arc<Vec<CompiledParam>>>>,
}

impl Indexer {
    /// An indexer for a version.
    pub fn new(version: FhirVersion) -> Indexer {
        Indexer {
            version,
            compiled: RwLock::new(HashMap::new()),
        }
    }

    /// The version it indexes.
    pub fn version(&self) -> FhirVersion {
        self.version
    }

    fn params(&self, resource_type: &str) -> Arc<Vec<CompiledParam>> {
        if let Ok(cache) = self.compiled.read()
            && let Some(params) = cache.get(resource_type)
        {
            return params.clone();
        }
        let model = self.version.model();
        let mut params = Vec::new();
        for param in model.search_params(resource_type) {
            // `_id` and `_lastUpdated` are columns of the store, not index rows.
            if param.code == "_id" || param.code == "_lastUpdated" {
                continue;
            }
            let Some(source) = &param.expression else {
                continue;
            };
            let kind = if param.kind == "composite" {
                match compile_components(model, resource_type, &param.components) {
                    Ok(components) => Kind::Composite(components),
                    Err(why) => {
                        not_indexed(resource_type, &param.code, &why);
                        continue;
                    }
                }
            } else {
                match ParamKind::from_code(&param.kind) {
                    Some(kind) => Kind::Simple(kind),
                    None => continue,
                }
            };
            match Expression::parse(source) {
                Ok(expression) => params.push(CompiledParam {
                    code: param.code.clone(),
                    kind,
                    expression,
                }),
                Err(err) => not_indexed(resource_type, &param.code, &err.to_string()),
            }
        }
        let params = Arc::new(params);
        if let Ok(mut cache) = self.compiled.write() {
            cache.insert(resource_type.to_owned(), params.clone());
        }
        params
    }

    /// The index entries of a resource.
    pub fn index(&self, resource: &Value) -> Vec<IndexEntry> {
        let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
            return Vec::new();
        };
        let model = self.version.model();
        let mut entries = Vec::new();
        for param in self.params(resource_type).iter() {
            // An expression that fails on this resource (several values where it wants one)
            // indexes nothing for the parameter rather than refusing the write.
            let items = param
                .expression
                .evaluate(model, resource)
                .unwrap_or_default();
            for item in items {
                match &param.kind {
                    Kind::Simple(kind) => {
                        for value in item_values(model, *kind, &item) {
                            entries.push(IndexEntry {
                                param: param.code.clone(),
                                value,
                            });
                        }
                    }
                    Kind::Composite(components) => {
                        for tuple in tuples(model, resource, components, item) {
                            entries.push(IndexEntry {
                                param: param.code.clone(),
                                value: IndexValue::Composite(tuple),
                            });
                        }
                    }
                }
            }
        }
        entries
    }
}

/// The component expressions of a composite parameter, each with the type of the parameter it
/// names.
fn compile_components(
    model: &crate::model::Model,
    resource_type: &str,
    components: &[(String, String)],
) -> Result<Vec<(ParamKind, Expression)>, String> {
    components
        .iter()
        .map(|(url, source)| {
            let kind = model
                .component_param(resource_type, url)
                .and_then(|component| ParamKind::from_code(&component.kind))
                .ok_or_else(|| format!("component {url} is not a searchable parameter"))?;
            let expression = Expression::parse(source).map_err(|err| err.to_string())?;
            Ok((kind, expression))
        })
        .collect()
}

/// The index values of one item that a parameter's expression found.
fn item_values(model: &crate::model::Model, kind: ParamKind, item: &Item<'_>) -> Vec<IndexValue> {
    // A `code` bound to a value set of one code system carries that system, so that
    // `gender=http://hl7.org/fhir/administrative-gender|female` matches.
    let implied_system = match item {
        Item::Node(node) => node.value_set.and_then(|url| model.value_set_system(url)),
        _ => None,
    };
    index_values(kind, &item.to_json(), item.fhir_type())
        .into_iter()
        .map(|value| match (value, implied_system) {
            (
                IndexValue::Token {
                    system: None,
                    code,
                    text,
                },
                Some(system),
            ) => IndexValue::Token {
                system: Some(system.to_owned()),
                code,
                text,
            },
            (value, _) => value,
        })
        .collect()
}

/// The tuples of one element of a composite parameter: every combination of its components'
/// values (usually one). An element lacking a component gives none.
fn tuples<'a>(
    model: &'a crate::model::Model,
    resource: &'a Value,
    components: &[(ParamKind, Expression)],
    element: Item<'a>,
) -> Vec<Vec<IndexValue>> {
    let env = Environment::new(model, resource);
    let focus = [element];
    let mut tuples: Vec<Vec<IndexValue>> = vec![Vec::new()];
    for (kind, expression) in components {
        let values: Vec<IndexValue> = expression
            .evaluate_in(&env, &focus)
            .unwrap_or_default()
            .iter()
            .flat_map(|item| item_values(model, *kind, item))
            .collect();
        let mut grown = Vec::new();
        for tuple in &tuples {
            for value in &values {
                if grown.len() == MAX_TUPLES {
                    break;
                }
                let mut longer = tuple.clone();
                longer.push(value.clone());
                grown.push(longer);
            }
        }
        tuples = grown;
        if tuples.is_empty() {
            break;
        }
    }
    tuples
}

/// Says once, where an operator sees it, that a parameter is left out of the index.
fn not_indexed(resource_type: &str, code: &str, error: &str) {
    eprintln!("carehub: search parameter {resource_type}.{code} is not indexed: {error}");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tuples_of(version: FhirVersion, resource: &Value, param: &str) -> Vec<Vec<IndexValue>> {
        Indexer::new(version)
            .index(resource)
            .into_iter()
            .filter(|entry| entry.param == param)
            .map(|entry| match entry.value {
                IndexValue::Composite(parts) => parts,
                other => panic!("{param} gave {other:?}"),
            })
            .collect()
    }

    fn code(value: &IndexValue) -> Option<&str> {
        match value {
            IndexValue::Token { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn every_composite_parameter_of_both_versions_is_indexed() {
        for version in FhirVersion::ALL {
            let model = version.model();
            for resource_type in model.resource_types() {
                for param in model.search_params(resource_type) {
                    if param.kind == "composite" {
                        compile_components(model, resource_type, &param.components).unwrap_or_else(
                            |why| panic!("{version} {resource_type}.{}: {why}", param.code),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn components_pair_values_of_the_same_element_only() {
        let pressure = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 150, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]});
        let tuples = tuples_of(FhirVersion::R4, &pressure, "component-code-value-quantity");
        assert_eq!(tuples.len(), 2, "{tuples:?}");
        let pairs: Vec<(Option<&str>, f64)> = tuples
            .iter()
            .map(|tuple| match &tuple[1] {
                IndexValue::Quantity { low, high, .. } => (code(&tuple[0]), (low + high) / 2.0),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(pairs, [(Some("8480-6"), 120.0), (Some("8462-4"), 150.0)]);
        // The panel itself has no value: nothing under code-value-quantity.
        assert!(tuples_of(FhirVersion::R4, &pressure, "code-value-quantity").is_empty());
        // combo- covers the observation and its components.
        assert_eq!(
            tuples_of(FhirVersion::R4, &pressure, "combo-code-value-quantity").len(),
            2
        );
    }

    #[test]
    fn a_component_may_read_the_whole_resource() {
        // `chromosome-variant-coordinate`: the chromosome comes from `%resource`, the
        // coordinates from each variant.
        let sequence = json!({"resourceType": "MolecularSequence", "coordinateSystem": 0,
            "referenceSeq": {"chromosome": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/chromosome-human", "code": "1"}]}},
            "variant": [{"start": 22125500, "end": 22125510}, {"start": 7, "end": 9}]});
        let tuples = tuples_of(FhirVersion::R4, &sequence, "chromosome-variant-coordinate");
        assert_eq!(tuples.len(), 2, "{tuples:?}");
        assert!(
            tuples
                .iter()
                .all(|tuple| tuple.len() == 3 && code(&tuple[0]) == Some("1"))
        );
    }
}
