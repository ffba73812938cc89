//! Element metadata for each FHIR version, loaded once from the generated files and indexed for
//! the lookups that parsing, validation, XML and search indexing do on every element.

pub mod data;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use data::{ElementDef, ModelData, SearchParamDef, TypeDef, TypeKind};

/// A FHIR version that carehub serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FhirVersion {
    /// STU3, 3.0.x (3.0.2 definitions; the NHS profiles declare 3.0.1, which has the same shape).
    Stu3,
    /// R4, 4.0.1.
    R4,
}

impl FhirVersion {
    /// Every version, oldest first.
    pub const ALL: [FhirVersion; 2] = [FhirVersion::Stu3, FhirVersion::R4];

    /// The metadata of this version, parsed on first use.
    pub fn model(self) -> &'static Model {
        static STU3: OnceLock<Model> = OnceLock::new();
        static R4: OnceLock<Model> = OnceLock::new();
        match self {
            FhirVersion::Stu3 => {
                STU3.get_or_init(|| Model::load(self, include_str!("../../generated/stu3.json")))
            }
            FhirVersion::R4 => {
                R4.get_or_init(|| Model::load(self, include_str!("../../generated/r4.json")))
            }
        }
    }

    /// The version as `CapabilityStatement.fhirVersion` states it.
    pub fn release(self) -> &'static str {
        match self {
            FhirVersion::Stu3 => "3.0.1",
            FhirVersion::R4 => "4.0.1",
        }
    }

    /// The short label used in URLs and configuration (`STU3`, `R4`).
    pub fn label(self) -> &'static str {
        match self {
            FhirVersion::Stu3 => "STU3",
            FhirVersion::R4 => "R4",
        }
    }

    /// Parses a label (`STU3`, `R4`, case-insensitive) or a release (`3.0.1`, `4.0.1`).
    pub fn parse(text: &str) -> Option<FhirVersion> {
        match text.to_ascii_uppercase().as_str() {
            "STU3" | "R3" | "3.0" | "3.0.1" | "3.0.2" => Some(FhirVersion::Stu3),
            "R4" | "4.0" | "4.0.0" | "4.0.1" => Some(FhirVersion::R4),
            _ => None,
        }
    }
}

impl fmt::Display for FhirVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// How a JSON property name of an object maps onto the object's type.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedKey<'m> {
    /// The element definition.
    pub element: &'m ElementDef,
    /// The type of the value under this key: for a choice element the one the key names
    /// (`valueQuantity` is `Quantity`), otherwise the element's only type.
    pub type_code: &'m str,
}

/// One FHIR version's types, value sets and search parameters, indexed.
#[derive(Debug)]
pub struct Model {
    version: FhirVersion,
    data: ModelData,
    types: HashMap<String, usize>,
    /// Per type, JSON property name -> (element index, type index within the element).
    keys: Vec<HashMap<String, (usize, usize)>>,
    value_sets: HashMap<String, HashSet<String>>,
    /// Value set URL -> the one code system its codes come from.
    value_set_systems: HashMap<String, String>,
    /// Resource type (or `Resource` / `DomainResource`) -> indexes into `search_params`.
    search_by_base: HashMap<String, Vec<usize>>,
}

impl Model {
    fn load(version: FhirVersion, text: &str) -> Model {
        // The file is produced by our own generator and embedded at compile time; a test
        // checks that it parses, so failing here means a broken build, not bad input.
        let data: ModelData = serde_json::from_str(text).unwrap_or_else(|err| {
            panic!("embedded {version} model is corrupt: {err}");
        });
        Model::from_data(version, data)
    }

    /// Indexes metadata (for tests and tools that build a model from their own data).
    pub fn from_data(version: FhirVersion, data: ModelData) -> Model {
        let types = data
            .types
            .iter()
            .enumerate()
            .map(|(index, ty)| (ty.name.clone(), index))
            .collect();
        let keys = data
            .types
            .iter()
            .map(|ty| {
                let mut keys = HashMap::new();
                for (element_index, element) in ty.elements.iter().enumerate() {
                    if element.choice {
                        for (type_index, code) in element.types.iter().enumerate() {
                            keys.insert(
                                format!("{}{}", element.name, capitalise(code)),
                                (element_index, type_index),
                            );
                        }
                    } else {
                        keys.insert(element.name.clone(), (element_index, 0));
                    }
                }
                keys
            })
            .collect();
        let value_sets = data
            .value_sets
            .iter()
            .map(|vs| (vs.url.clone(), vs.codes.iter().cloned().collect()))
            .collect();
        let value_set_systems = data
            .value_sets
            .iter()
            .filter_map(|vs| Some((vs.url.clone(), vs.system.clone()?)))
            .collect();
        let mut search_by_base: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, param) in data.search_params.iter().enumerate() {
            for base in &param.base {
                search_by_base.entry(base.clone()).or_default().push(index);
            }
        }
        Model {
            version,
            data,
            types,
            keys,
            value_sets,
            value_set_systems,
            search_by_base,
        }
    }

    /// The version this model describes.
    pub fn version(&self) -> FhirVersion {
        self.version
    }

    /// The exact release of the definitions (`3.0.2`, `4.0.1`).
    pub fn release(&self) -> &str {
        &self.data.fhir_version
    }

    /// A type or backbone path by name.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name).and_then(|&i| self.data.types.get(i))
    }

    /// A concrete resource type by name.
    pub fn resource(&self, name: &str) -> Option<&TypeDef> {
        self.type_def(name)
            .filter(|ty| ty.kind == TypeKind::Resource && !ty.is_abstract)
    }

    /// Names of all concrete resource types, sorted.
    pub fn resource_types(&self) -> impl Iterator<Item = &str> {
        self.data
            .types
            .iter()
            .filter(|ty| ty.kind == TypeKind::Resource && !ty.is_abstract)
            .map(|ty| ty.name.as_str())
    }

    /// Maps a JSON property name of a value of type `type_name` to its element.
    pub fn resolve_key(&self, type_name: &str, key: &str) -> Option<ResolvedKey<'_>> {
        let type_index = *self.types.get(type_name)?;
        let &(element_index, choice_index) = self.keys.get(type_index)?.get(key)?;
        let element = self
            .data
            .types
            .get(type_index)?
            .elements
            .get(element_index)?;
        let type_code = element.types.get(choice_index)?;
        Some(ResolvedKey { element, type_code })
    }

    /// The type that holds an element's children: the backbone path for backbone elements and
    /// content references, otherwise the type code itself.
    pub fn child_type_name<'a>(&'a self, element: &'a ElementDef, type_code: &'a str) -> &'a str {
        element.element_type.as_deref().unwrap_or(type_code)
    }

    /// Whether `ty` is `of` or specialises it (`Age` is a `Quantity`, `code` is a `string`).
    pub fn is_subtype(&self, ty: &str, of: &str) -> bool {
        let mut current = Some(ty);
        // Depth is bounded by the specification's hierarchy; the guard stops a cycle in bad data.
        for _ in 0..16 {
            match current {
                Some(name) if name == of => return true,
                Some(name) => current = self.type_def(name).and_then(|t| t.base.as_deref()),
                None => return false,
            }
        }
        false
    }

    /// Whether a type is primitive (a JSON scalar with an optional `_name` sibling).
    pub fn is_primitive(&self, name: &str) -> bool {
        self.type_def(name)
            .is_some_and(|ty| ty.kind == TypeKind::Primitive)
    }

    /// The codes of a required binding's value set, when it could be expanded offline.
    pub fn value_set_codes(&self, url: &str) -> Option<&HashSet<String>> {
        self.value_sets.get(url)
    }

    /// The code system that a `code` bound to this value set implies, when there is one.
    pub fn value_set_system(&self, url: &str) -> Option<&str> {
        self.value_set_systems.get(url).map(String::as_str)
    }

    /// Every search parameter that applies to a resource type, including the ones defined on
    /// `Resource` and `DomainResource`.
    pub fn search_params(&self, resource_type: &str) -> impl Iterator<Item = &SearchParamDef> {
        let mut bases = vec![resource_type, "Resource"];
        if self.is_subtype(resource_type, "DomainResource") {
            bases.push("DomainResource");
        }
        bases
            .into_iter()
            .filter_map(|base| self.search_by_base.get(base))
            .flatten()
            .filter_map(|&index| self.data.search_params.get(index))
    }

    /// The search parameter a resource type has under a code, if any.
    pub fn search_param(&self, resource_type: &str, code: &str) -> Option<&SearchParamDef> {
        self.search_params(resource_type)
            .find(|param| param.code == code)
    }

    /// A search parameter by canonical URL (composite components name their parts this way).
    pub fn search_param_by_url(&self, url: &str) -> Option<&SearchParamDef> {
        self.data
            .search_params
            .iter()
            .find(|param| param.url == url)
    }

    /// The parameter a composite component of `resource_type` names. STU3 names some that its
    /// definitions do not hold by that URL (`Observation-code`, defined as `clinical-code`);
    /// those are found by the `{type}-{code}` the URL ends with.
    pub fn component_param(&self, resource_type: &str, url: &str) -> Option<&SearchParamDef> {
        self.search_param_by_url(url).or_else(|| {
            let name = url.rsplit('/').next()?;
            let code = name.strip_prefix(resource_type)?.strip_prefix('-')?;
            self.search_param(resource_type, code)
        })
    }
}

/// `quantity` -> `Quantity`, as choice element names in JSON spell the type.
pub fn capitalise(code: &str) -> String {
    let mut chars = code.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
