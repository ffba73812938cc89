//! Extracting a resource's search index entries: every search parameter of its type is a
//! FHIRPath expression, compiled once per version and resource type, evaluated on every write.
//! Parameters whose expression cannot be compiled are left out, and reported once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::{IndexEntry, IndexValue, ParamKind, index_values};
use crate::fhirpath::{Expression, Item};
use crate::model::FhirVersion;

/// One indexed parameter of a resource type, compiled.
#[derive(Debug)]
struct CompiledParam {
    code: String,
    kind: ParamKind,
    expression: Expression,
}

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
            let (Some(kind), Some(source)) = (ParamKind::from_code(&param.kind), &param.expression)
            else {
                continue;
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
                // A `code` bound to a value set of one code system carries that system, so that
                // `gender=http://hl7.org/fhir/administrative-gender|female` matches.
                let implied_system = match &item {
                    Item::Node(node) => node.value_set.and_then(|url| model.value_set_system(url)),
                    _ => None,
                };
                for value in index_values(param.kind, &item.to_json(), item.fhir_type()) {
                    let value = match (value, implied_system) {
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
                    };
                    entries.push(IndexEntry {
                        param: param.code.clone(),
                        value,
                    });
                }
            }
        }
        entries
    }
}

/// Says once, where an operator sees it, that a parameter is left out of the index.
fn not_indexed(resource_type: &str, code: &str, error: &str) {
    eprintln!("carehub: search parameter {resource_type}.{code} is not indexed: {error}");
}
