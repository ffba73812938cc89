//! The serialised form of the element metadata that `cargo codegen` extracts from the official
//! StructureDefinitions, ValueSets and SearchParameters.
//!
//! Why data and not generated structs: a typed struct per resource for two FHIR versions is
//! hundreds of thousands of lines that every build on two cores would compile, while the server
//! stores and serves FHIR JSON as it is and only needs the metadata to validate, convert to XML,
//! order elements and index search parameters. The same structs are written by `xtask` and read
//! here, so the two sides cannot drift apart.

use serde::{Deserialize, Serialize};

/// Everything the engine knows about one FHIR version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelData {
    /// The exact version, e.g. `4.0.1`.
    pub fhir_version: String,
    /// Primitive, complex and resource types, plus one entry per backbone element path.
    pub types: Vec<TypeDef>,
    /// Codes of the value sets used by required bindings that could be expanded offline.
    pub value_sets: Vec<ValueSetDef>,
    /// The search parameters of the base specification.
    pub search_params: Vec<SearchParamDef>,
}

/// What kind of definition a [`TypeDef`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TypeKind {
    /// A primitive type such as `string` or `dateTime`: a JSON scalar.
    Primitive,
    /// A complex data type such as `HumanName`.
    Complex,
    /// A resource type such as `Patient`.
    Resource,
    /// An anonymous element type nested in a resource or data type, named by its path
    /// (e.g. `Patient.contact`).
    Backbone,
}

/// One type and its child elements, in the order the specification defines them (which is the
/// order XML requires).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TypeDef {
    /// The type name (`Patient`, `HumanName`, `dateTime`) or, for backbones, the element path.
    pub name: String,
    /// Which kind of type this is.
    pub kind: TypeKind,
    /// The type this one specialises (`DomainResource`, `Element`, `Quantity` for `Age`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Abstract types (`Resource`, `DomainResource`, `Element`) are never instantiated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_abstract: bool,
    /// Child elements in definition order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<ElementDef>,
}

/// One child element of a type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ElementDef {
    /// The element name without `[x]` (`deceased` for `deceased[x]`).
    pub name: String,
    /// Allowed type codes. A choice element has several; JSON names it `name` + capitalised type.
    pub types: Vec<String>,
    /// Minimum cardinality.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min: u32,
    /// Maximum cardinality; `None` is unbounded (`*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// A `[x]` element.
    #[serde(default, skip_serializing_if = "is_false")]
    pub choice: bool,
    /// Part of the `_summary=true` view.
    #[serde(default, skip_serializing_if = "is_false")]
    pub summary: bool,
    /// Changes the meaning of the resource (`modifierExtension`, `status`...).
    #[serde(default, skip_serializing_if = "is_false")]
    pub modifier: bool,
    /// For `Reference` elements, the resource types allowed as targets; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// The canonical URL of the value set of a required binding, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_binding: Option<String>,
    /// For backbone elements and content references, the [`TypeDef`] that holds the children
    /// (`Patient.contact`, or `Questionnaire.item` for `Questionnaire.item.item`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element_type: Option<String>,
}

impl ElementDef {
    /// Whether the element may repeat (and so is a JSON array).
    pub fn is_array(&self) -> bool {
        self.max != Some(1) && self.max != Some(0)
    }
}

/// The codes of one value set, for checking required bindings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValueSetDef {
    /// Canonical URL without version.
    pub url: String,
    /// The code system of every code, when they all come from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Every code in the expansion.
    pub codes: Vec<String>,
}

/// One search parameter of the base specification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchParamDef {
    /// The name used in URLs, e.g. `name`, `_id`.
    pub code: String,
    /// The canonical URL.
    pub url: String,
    /// The resource types it applies to (`Resource` for `_id` and friends).
    pub base: Vec<String>,
    /// `token`, `string`, `reference`, `date`, `number`, `quantity`, `uri`, `composite`, `special`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The FHIRPath expression that extracts the values, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// For reference parameters, the target resource types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// For composite parameters, each component's definition URL and expression.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<(String, String)>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}
