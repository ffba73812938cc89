//! The shape of the generated profile file (`generated/stu3-nhs-profiles.json`): what `cargo
//! codegen` keeps of each StructureDefinition's snapshot (the constraints a profile adds to its
//! base, and the elements that lead to them), and the value sets their required bindings use.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::data::ValueSetDef;

/// Every profile of one set, and the codes of the value sets they bind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProfileSetData {
    /// The profiles, by canonical URL order.
    pub profiles: Vec<ProfileDef>,
    /// Value sets bound with strength `required` that could be expanded offline.
    pub value_sets: Vec<ValueSetDef>,
}

/// One StructureDefinition that constrains a type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileDef {
    /// Canonical URL.
    pub url: String,
    /// Computer-friendly name.
    pub name: String,
    /// The type it constrains (`Patient`, `Extension`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// The elements that carry a constraint, and their ancestors, in snapshot order.
    pub elements: Vec<ProfileElement>,
}

/// One element of a profile's snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProfileElement {
    /// The element id, with slice names: `Patient.identifier:nhsNumber.system`.
    pub id: String,
    /// Minimum cardinality.
    #[serde(default)]
    pub min: u32,
    /// Maximum cardinality; `None` is unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Allowed types when the profile names them with a profile or target profile, or narrows a
    /// choice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<ProfileType>,
    /// `fixed[x]`: the value must be exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<Value>,
    /// `pattern[x]`: the value must contain this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Value>,
    /// A required binding's value set URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_binding: Option<String>,
    /// Invariants with a FHIRPath expression.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// On the element being sliced: how slices are told apart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discriminators: Vec<Discriminator>,
    /// On the element being sliced: whether values outside every slice are an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub slicing_closed: bool,
}

/// A type allowed for an element, with the profiles it must meet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProfileType {
    /// The type code.
    pub code: String,
    /// Profiles the value must meet (extension definitions for extension slices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// For references, the profiles the target must meet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_profiles: Vec<String>,
}

/// A FHIRPath invariant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Constraint {
    /// Its key (`nhs-1`).
    pub key: String,
    /// `error` or `warning`.
    pub severity: String,
    /// What it requires, for a person.
    pub human: String,
    /// The FHIRPath expression that must be true.
    pub expression: String,
}

/// How slices of an element are told apart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discriminator {
    /// `value`, `pattern`, `type`, `profile` or `exists`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The path within each value (`system`, `url`, `$this`).
    pub path: String,
}
