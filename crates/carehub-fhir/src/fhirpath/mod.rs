//! FHIRPath (HL7 FHIRPath 2.0, N1) over FHIR JSON, typed by the version's model.
//!
//! One engine serves every use: search parameter expressions on each write (compiled once per
//! parameter), invariants and profile constraints, and anyone who wants to query a resource.
//! Elements of the resource stay borrowed from the JSON and carry their FHIR type, so `is`, `as`,
//! `ofType`, choice elements (`value` finds `valueQuantity`) and `type()` follow the definitions;
//! literals and computed values are FHIRPath system values. Evaluation never panics: bad input
//! is a [`FhirPathError`] naming what went wrong.
//!
//! The official test suite (`tests-fhir-r4.xml`) runs in `tests/fhirpath_suite.rs`; its pass
//! rate is recorded in `docs/benchmarks.md`.

mod eval;
mod functions;
mod syntax;
mod value;

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::model::Model;

pub use value::{Quantity, Temporal, TemporalKind};

/// Why an expression could not be compiled or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirPathError {
    /// The text is not FHIRPath.
    #[error("{message} at offset {offset}")]
    Syntax {
        /// What was wrong.
        message: String,
        /// Where in the text.
        offset: usize,
    },
    /// The expression is well formed but means nothing here (an unknown function, an element
    /// the type does not have in strict mode, a function given the wrong number of arguments).
    #[error("{0}")]
    Semantic(String),
    /// Evaluation failed on this input (several items where one was needed, a type mismatch).
    #[error("{0}")]
    Execution(String),
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    root: syntax::Expr,
}

/// An element of the resource, with its FHIR type.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    /// The element's JSON; `Null` for a primitive that has only extensions.
    pub value: Cow<'a, Value>,
    /// For primitives, the `_name` sibling holding `id` and `extension`.
    pub sibling: Option<&'a Value>,
    /// Its FHIR type (`HumanName`, `code`, `Patient`) or, for backbone elements, the element
    /// path (`Patient.contact`); `None` where the model does not say.
    pub type_name: Option<&'a str>,
    /// For a `code` with a required binding, the value set it is bound to.
    pub value_set: Option<&'a str>,
}

/// A type, as `type()` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeInfo {
    /// `FHIR` or `System`.
    pub namespace: &'static str,
    /// The type name within the namespace.
    pub name: String,
}

/// One item of a FHIRPath collection.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// An element of the input.
    Node(Node<'a>),
    /// `System.Boolean`
    Boolean(bool),
    /// `System.Integer`
    Integer(i64),
    /// `System.Decimal`
    Decimal(Decimal),
    /// `System.String`
    String(String),
    /// `System.Date`, `System.DateTime` or `System.Time`
    Temporal(Temporal),
    /// `System.Quantity`
    Quantity(Quantity),
    /// What `type()` returns.
    Type(TypeInfo),
}

impl<'a> Item<'a> {
    /// A resource as the root of an evaluation.
    pub fn resource(value: &'a Value) -> Item<'a> {
        Item::Node(Node {
            value: Cow::Borrowed(value),
            sibling: None,
            type_name: value.get("resourceType").and_then(Value::as_str),
            value_set: None,
        })
    }

    /// The item as FHIR JSON: the element itself, or a system value as its JSON form.
    pub fn to_json(&self) -> Cow<'_, Value> {
        match self {
            Item::Node(node) => Cow::Borrowed(node.value.as_ref()),
            Item::Boolean(b) => Cow::Owned(Value::Bool(*b)),
            Item::Integer(i) => Cow::Owned(Value::from(*i)),
            Item::Decimal(d) => Cow::Owned(
                serde_json::from_str(&d.to_string()).unwrap_or(Value::String(d.to_string())),
            ),
            Item::String(s) => Cow::Owned(Value::String(s.clone())),
            Item::Temporal(t) => Cow::Owned(Value::String(t.to_string())),
            Item::Quantity(q) => Cow::Owned(serde_json::json!({
                "value": serde_json::from_str::<Value>(&q.value.to_string()).unwrap_or(Value::Null),
                "unit": q.unit,
            })),
            Item::Type(t) => Cow::Owned(Value::String(format!("{}.{}", t.namespace, t.name))),
        }
    }

    /// The FHIR type of an element, if the item is one.
    pub fn fhir_type(&self) -> Option<&'a str> {
        match self {
            Item::Node(node) => node.type_name,
            _ => None,
        }
    }
}

/// Where an expression is evaluated: the model, `%resource`, and named variables.
#[derive(Debug, Clone)]
pub struct Environment<'a> {
    model: &'a Model,
    resource: Item<'a>,
    variables: Vec<(String, Vec<Item<'a>>)>,
    strict: bool,
}

impl<'a> Environment<'a> {
    /// An environment whose `%resource` and `%context` are `resource`.
    pub fn new(model: &'a Model, resource: &'a Value) -> Environment<'a> {
        Environment {
            model,
            resource: Item::resource(resource),
            variables: Vec::new(),
            strict: false,
        }
    }

    /// Strict mode: naming an element the type does not have is an error, not empty.
    pub fn strict(mut self, strict: bool) -> Environment<'a> {
        self.strict = strict;
        self
    }

    /// Adds a `%name` variable.
    pub fn variable(mut self, name: &str, items: Vec<Item<'a>>) -> Environment<'a> {
        self.variables.push((name.to_owned(), items));
        self
    }
}

impl Expression {
    /// Compiles an expression.
    pub fn parse(text: &str) -> Result<Expression, FhirPathError> {
        Ok(Expression {
            root: syntax::parse(text)?,
        })
    }

    /// Evaluates the expression on a resource.
    pub fn evaluate<'a>(
        &self,
        model: &'a Model,
        resource: &'a Value,
    ) -> Result<Vec<Item<'a>>, FhirPathError> {
        let env = Environment::new(model, resource);
        let focus = [env.resource.clone()];
        self.evaluate_in(&env, &focus)
    }

    /// Evaluates the expression on `focus` (`$this`) in an environment.
    pub fn evaluate_in<'a>(
        &self,
        env: &Environment<'a>,
        focus: &[Item<'a>],
    ) -> Result<Vec<Item<'a>>, FhirPathError> {
        eval::Evaluator::new(env, focus).run(&self.root)
    }
}

#[cfg(test)]
mod tests;
