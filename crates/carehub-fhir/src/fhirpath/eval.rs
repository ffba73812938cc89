//! Evaluation: navigation over typed JSON, operators, and the equality and ordering rules that
//! functions share.

use std::borrow::Cow;
use std::cmp::Ordering;

use rust_decimal::Decimal;
use serde_json::Value;

use super::syntax::{BinaryOp, Expr, Literal, TypeSpecifier};
use super::value::{Comparison, Quantity, Temporal, TemporalKind};
use super::{Environment, FhirPathError, Item, Node, TypeInfo};
use crate::model::Model;
use crate::model::data::TypeKind;

pub(super) type Items<'a> = Vec<Item<'a>>;
pub(super) type Outcome<'a> = Result<Items<'a>, FhirPathError>;

/// What `$this`, `$index` and `$total` stand for where an expression is being evaluated.
#[derive(Debug, Clone)]
pub(super) struct Frame<'a> {
    pub(super) this: Items<'a>,
    pub(super) index: Option<i64>,
    pub(super) total: Option<Items<'a>>,
}

pub(super) struct Evaluator<'e, 'a> {
    pub(super) env: &'e Environment<'a>,
    pub(super) model: &'a Model,
    context: Items<'a>,
    /// Guards against runaway recursion through `repeat`, nested `where` and the like.
    depth: std::cell::Cell<usize>,
}

const MAX_DEPTH: usize = 400;

pub(super) fn execution<T>(message: impl Into<String>) -> Result<T, FhirPathError> {
    Err(FhirPathError::Execution(message.into()))
}

pub(super) fn semantic<T>(message: impl Into<String>) -> Result<T, FhirPathError> {
    Err(FhirPathError::Semantic(message.into()))
}

/// Primitive types whose values are FHIRPath strings.
fn is_integer_type(name: &str) -> bool {
    matches!(
        name,
        "integer" | "positiveInt" | "unsignedInt" | "integer64"
    )
}

impl<'a> Node<'a> {
    fn child(
        value: Cow<'a, Value>,
        sibling: Option<&'a Value>,
        type_name: Option<&'a str>,
        value_set: Option<&'a str>,
    ) -> Item<'a> {
        Item::Node(Node {
            value,
            sibling,
            type_name,
            value_set,
        })
    }
}

impl<'a> Item<'a> {
    /// The system value a primitive element stands for; other items as they are.
    pub(super) fn system(&self) -> Cow<'_, Item<'a>> {
        let Item::Node(node) = self else {
            return Cow::Borrowed(self);
        };
        let Some(type_name) = node.type_name else {
            return match node.value.as_ref() {
                Value::Bool(b) => Cow::Owned(Item::Boolean(*b)),
                Value::String(s) => Cow::Owned(Item::String(s.clone())),
                Value::Number(n) => Cow::Owned(number_item(&n.to_string())),
                _ => Cow::Borrowed(self),
            };
        };
        let converted = match (type_name, node.value.as_ref()) {
            ("boolean", Value::Bool(b)) => Item::Boolean(*b),
            (t, Value::Number(n)) if is_integer_type(t) => match n.as_i64() {
                Some(i) => Item::Integer(i),
                None => number_item(&n.to_string()),
            },
            ("decimal", Value::Number(n)) => number_item(&n.to_string()),
            ("date", Value::String(s)) => temporal_or_string(s, TemporalKind::Date),
            ("dateTime" | "instant", Value::String(s)) => {
                temporal_or_string(s, TemporalKind::DateTime)
            }
            ("time", Value::String(s)) => temporal_or_string(s, TemporalKind::Time),
            (_, Value::String(s)) => Item::String(s.clone()),
            (t, Value::Object(map)) if is_quantity_type(t) => {
                let Some(value) = map
                    .get("value")
                    .and_then(|v| Decimal::from_str_exact(&v.to_string()).ok())
                else {
                    return Cow::Borrowed(self);
                };
                let ucum =
                    map.get("system").and_then(Value::as_str) == Some("http://unitsofmeasure.org");
                let unit = match (ucum, map.get("code"), map.get("unit")) {
                    (true, Some(Value::String(code)), _) => code.clone(),
                    (_, _, Some(Value::String(unit))) => unit.clone(),
                    (_, Some(Value::String(code)), _) => code.clone(),
                    _ => "1".to_owned(),
                };
                Item::Quantity(Quantity::new(value, unit))
            }
            _ => return Cow::Borrowed(self),
        };
        Cow::Owned(converted)
    }

    /// The FHIRPath type name of the item, for messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Item::Node(node) => node.type_name.unwrap_or("element").to_owned(),
            other => system_type_name(other).to_owned(),
        }
    }
}

/// Whether `text` is `code` with its first letter in upper case (`Quantity` for `Quantity`,
/// `DateTime` for `dateTime`).
fn is_capitalised(code: &str, text: &str) -> bool {
    let (Some(c), Some(t)) = (code.chars().next(), text.chars().next()) else {
        return false;
    };
    code.len() == text.len() && c.to_ascii_uppercase() == t && code[1..] == text[1..]
}

fn is_quantity_type(name: &str) -> bool {
    matches!(
        name,
        "Quantity" | "Age" | "Duration" | "Distance" | "Count" | "SimpleQuantity" | "MoneyQuantity"
    )
}

fn temporal_or_string<'a>(text: &str, kind: TemporalKind) -> Item<'a> {
    match Temporal::parse(text, kind) {
        Some(t) => Item::Temporal(t),
        None => Item::String(text.to_owned()),
    }
}

pub(super) fn number_item<'a>(text: &str) -> Item<'a> {
    if !text.contains(['.', 'e', 'E'])
        && let Ok(i) = text.parse::<i64>()
    {
        return Item::Integer(i);
    }
    match Decimal::from_str_exact(text).or_else(|_| Decimal::from_scientific(text)) {
        Ok(d) => Item::Decimal(d),
        Err(_) => Item::String(text.to_owned()),
    }
}

pub(super) fn system_type_name(item: &Item<'_>) -> &'static str {
    match item {
        Item::Boolean(_) => "Boolean",
        Item::Integer(_) => "Integer",
        Item::Decimal(_) => "Decimal",
        Item::String(_) => "String",
        Item::Temporal(t) => match t.kind {
            TemporalKind::Date => "Date",
            TemporalKind::DateTime => "DateTime",
            TemporalKind::Time => "Time",
        },
        Item::Quantity(_) => "Quantity",
        Item::Type(_) => "TypeInfo",
        Item::Node(_) => "Element",
    }
}

/// The truth a collection stands for where a Boolean is expected: empty is unknown, one
/// Boolean is itself, one other item is `true`, several are an error.
pub(super) fn truth(items: &[Item<'_>]) -> Result<Option<bool>, FhirPathError> {
    match items {
        [] => Ok(None),
        [one] => Ok(Some(match one.system().as_ref() {
            Item::Boolean(b) => *b,
            _ => true,
        })),
        _ => execution("expected a single Boolean, found a collection of several items"),
    }
}

pub(super) fn boolean<'a>(value: bool) -> Outcome<'a> {
    Ok(vec![Item::Boolean(value)])
}

pub(super) fn maybe_boolean<'a>(value: Option<bool>) -> Outcome<'a> {
    Ok(value.map(Item::Boolean).into_iter().collect())
}

pub(super) fn singleton<'i, 'a>(
    items: &'i [Item<'a>],
    what: &str,
) -> Result<Option<&'i Item<'a>>, FhirPathError> {
    match items {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => execution(format!(
            "{what} needs a single item, but the input has {}",
            items.len()
        )),
    }
}

/// Whether two items are equal (`=`): `None` when it cannot be known (different precisions).
pub(super) fn equal(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    let (a, b) = (a.system(), b.system());
    match (a.as_ref(), b.as_ref()) {
        (Item::Boolean(x), Item::Boolean(y)) => Some(x == y),
        (Item::String(x), Item::String(y)) => Some(x == y),
        (Item::Integer(x), Item::Integer(y)) => Some(x == y),
        (Item::Integer(_) | Item::Decimal(_), Item::Integer(_) | Item::Decimal(_)) => {
            Some(decimal(&a)? == decimal(&b)?)
        }
        (Item::Temporal(x), Item::Temporal(y)) => match x.compare(y) {
            Comparison::Known(order) => Some(order == Ordering::Equal),
            Comparison::Uncertain => None,
            Comparison::Incomparable => Some(false),
        },
        (Item::Quantity(x), Item::Quantity(y)) => match x.compare(y) {
            Comparison::Known(order) => Some(order == Ordering::Equal),
            Comparison::Uncertain => None,
            Comparison::Incomparable => Some(false),
        },
        (Item::Node(x), Item::Node(y)) => Some(x.value == y.value),
        (Item::Type(x), Item::Type(y)) => Some(x == y),
        _ => Some(false),
    }
}

fn normalise_text(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether two items are equivalent (`~`).
pub(super) fn equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    let (a, b) = (a.system(), b.system());
    match (a.as_ref(), b.as_ref()) {
        (Item::String(x), Item::String(y)) => normalise_text(x) == normalise_text(y),
        (Item::Integer(_) | Item::Decimal(_), Item::Integer(_) | Item::Decimal(_)) => {
            let (Some(x), Some(y)) = (decimal(&a), decimal(&b)) else {
                return false;
            };
            let scale = x.scale().min(y.scale());
            x.round_dp(scale) == y.round_dp(scale)
        }
        (Item::Temporal(x), Item::Temporal(y)) => {
            x.compare(y) == Comparison::Known(Ordering::Equal)
        }
        (Item::Quantity(x), Item::Quantity(y)) => x.equivalent(y),
        (Item::Node(x), Item::Node(y)) => x.value == y.value,
        _ => equal(&a, &b) == Some(true),
    }
}

pub(super) fn decimal(item: &Item<'_>) -> Option<Decimal> {
    match item.system().as_ref() {
        Item::Integer(i) => Some(Decimal::from(*i)),
        Item::Decimal(d) => Some(*d),
        _ => None,
    }
}

/// Orders two items for `<`, `>`, `<=`, `>=`; `Ok(None)` when uncertain.
pub(super) fn order(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Ordering>, FhirPathError> {
    let (sa, sb) = (a.system(), b.system());
    match (sa.as_ref(), sb.as_ref()) {
        (Item::Integer(x), Item::Integer(y)) => Ok(Some(x.cmp(y))),
        (Item::Integer(_) | Item::Decimal(_), Item::Integer(_) | Item::Decimal(_)) => {
            Ok(decimal(&sa).zip(decimal(&sb)).map(|(x, y)| x.cmp(&y)))
        }
        (Item::String(x), Item::String(y)) => Ok(Some(x.cmp(y))),
        (Item::Temporal(x), Item::Temporal(y)) => match x.compare(y) {
            Comparison::Known(order) => Ok(Some(order)),
            Comparison::Uncertain => Ok(None),
            Comparison::Incomparable => execution(format!(
                "cannot compare {} with {}",
                a.describe(),
                b.describe()
            )),
        },
        (Item::Quantity(x), Item::Quantity(y)) => match x.compare(y) {
            Comparison::Known(order) => Ok(Some(order)),
            _ => Ok(None),
        },
        _ => execution(format!(
            "cannot compare {} with {}",
            a.describe(),
            b.describe()
        )),
    }
}

/// Appends items that are not already present (by `=`).
pub(super) fn push_distinct<'a>(out: &mut Items<'a>, item: Item<'a>) {
    if !out
        .iter()
        .any(|existing| equal(existing, &item) == Some(true))
    {
        out.push(item);
    }
}

impl<'e, 'a> Evaluator<'e, 'a> {
    pub(super) fn new(env: &'e Environment<'a>, focus: &[Item<'a>]) -> Evaluator<'e, 'a> {
        Evaluator {
            env,
            model: env.model,
            context: focus.to_vec(),
            depth: std::cell::Cell::new(0),
        }
    }

    pub(super) fn run(&self, root: &Expr) -> Outcome<'a> {
        let frame = Frame {
            this: self.context.clone(),
            index: None,
            total: None,
        };
        self.eval(root, &self.context, &frame)
    }

    pub(super) fn eval(&self, expr: &Expr, input: &[Item<'a>], frame: &Frame<'a>) -> Outcome<'a> {
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            return execution("evaluation nested too deeply");
        }
        self.depth.set(depth);
        let result = self.eval_inner(expr, input, frame);
        self.depth.set(depth - 1);
        result
    }

    fn eval_inner(&self, expr: &Expr, input: &[Item<'a>], frame: &Frame<'a>) -> Outcome<'a> {
        match expr {
            Expr::Empty => Ok(Vec::new()),
            Expr::Literal(literal) => Ok(vec![match literal {
                Literal::Boolean(b) => Item::Boolean(*b),
                Literal::String(s) => Item::String(s.clone()),
                Literal::Integer(i) => Item::Integer(*i),
                Literal::Decimal(d) => Item::Decimal(*d),
                Literal::Temporal(t) => Item::Temporal(t.clone()),
                Literal::Quantity(q) => Item::Quantity(q.clone()),
            }]),
            Expr::This => Ok(frame.this.clone()),
            Expr::Index => Ok(frame.index.map(Item::Integer).into_iter().collect()),
            Expr::Total => Ok(frame.total.clone().unwrap_or_default()),
            Expr::Variable(name) => self.variable(name),
            Expr::Identifier(name) => self.identifier(name, input),
            Expr::Member(target, name) => {
                let items = self.eval(target, input, frame)?;
                let mut out = Vec::new();
                for item in &items {
                    self.member(item, name, &mut out)?;
                }
                Ok(out)
            }
            Expr::Call(target, name, args) => {
                let target_items = match target {
                    Some(target) => self.eval(target, input, frame)?,
                    None => input.to_vec(),
                };
                self.call(name, target_items, args, frame)
            }
            Expr::Indexer(target, index) => {
                let items = self.eval(target, input, frame)?;
                let index = self.eval(index, input, frame)?;
                match singleton(&index, "an index")?.map(|i| i.system().into_owned()) {
                    Some(Item::Integer(i)) => Ok(usize::try_from(i)
                        .ok()
                        .and_then(|i| items.into_iter().nth(i))
                        .into_iter()
                        .collect()),
                    Some(other) => execution(format!(
                        "an index must be an Integer, not {}",
                        other.describe()
                    )),
                    None => Ok(Vec::new()),
                }
            }
            Expr::Negate(inner, negate) => {
                let items = self.eval(inner, input, frame)?;
                let Some(item) = singleton(&items, "unary minus")? else {
                    return Ok(Vec::new());
                };
                let result = match (item.system().into_owned(), negate) {
                    (item @ (Item::Integer(_) | Item::Decimal(_) | Item::Quantity(_)), false) => {
                        item
                    }
                    (Item::Integer(i), true) => Item::Integer(-i),
                    (Item::Decimal(d), true) => Item::Decimal(-d),
                    (Item::Quantity(q), true) => Item::Quantity(Quantity::new(-q.value, q.unit)),
                    (other, _) => {
                        return execution(format!(
                            "unary minus or plus needs a number, not {}",
                            other.describe()
                        ));
                    }
                };
                Ok(vec![result])
            }
            Expr::Binary(op, left, right) => self.binary(*op, left, right, input, frame),
            Expr::Is(target, spec) => {
                let items = self.eval(target, input, frame)?;
                match singleton(&items, "'is'")? {
                    Some(item) => boolean(self.is_type(item, spec)?),
                    None => Ok(Vec::new()),
                }
            }
            Expr::As(target, spec) => {
                let items = self.eval(target, input, frame)?;
                self.check_type_exists(spec)?;
                // Applied to each item, as `ofType`: search expressions of STU3 use `as` on
                // repeating elements.
                let mut out = Vec::new();
                for item in items {
                    if self.is_type(&item, spec)? {
                        out.push(item);
                    }
                }
                Ok(out)
            }
        }
    }

    fn variable(&self, name: &str) -> Outcome<'a> {
        if let Some((_, items)) = self.env.variables.iter().find(|(n, _)| n == name) {
            return Ok(items.clone());
        }
        let text = |s: &str| Ok(vec![Item::String(s.to_owned())]);
        match name {
            "resource" | "rootResource" => Ok(vec![self.env.resource.clone()]),
            "context" => Ok(self.context.clone()),
            "ucum" => text("http://unitsofmeasure.org"),
            "sct" => text("http://snomed.info/sct"),
            "loinc" => text("http://loinc.org"),
            _ => {
                if let Some(rest) = name.strip_prefix("vs-") {
                    return Ok(vec![Item::String(format!(
                        "http://hl7.org/fhir/ValueSet/{rest}"
                    ))]);
                }
                if let Some(rest) = name.strip_prefix("ext-") {
                    return Ok(vec![Item::String(format!(
                        "http://hl7.org/fhir/StructureDefinition/{rest}"
                    ))]);
                }
                semantic(format!("unknown variable %{name}"))
            }
        }
    }

    fn is_type_name(&self, name: &str) -> bool {
        self.model.type_def(name).is_some()
    }

    /// A name at the start of a path: a type name selects the input when it is of that type
    /// (`Patient.name`), anything else is a member of the input.
    fn identifier(&self, name: &str, input: &[Item<'a>]) -> Outcome<'a> {
        let type_def = name
            .starts_with(|c: char| c.is_ascii_uppercase())
            .then(|| self.model.type_def(name))
            .flatten();
        if let Some(type_def) = type_def {
            // Concrete resource types have no subtypes: a name comparison decides. Search
            // expressions list dozens of resource types, so this is the hot path of indexing.
            let concrete = type_def.kind == TypeKind::Resource && !type_def.is_abstract;
            let selected: Items<'a> = input
                .iter()
                .filter(|item| {
                    item.fhir_type()
                        .is_some_and(|t| t == name || (!concrete && self.model.is_subtype(t, name)))
                })
                .cloned()
                .collect();
            if selected.is_empty()
                && self.env.strict
                && let Some(actual) = input.iter().find_map(Item::fhir_type)
            {
                return semantic(format!(
                    "the expression starts with {name}, but the input is a {actual}"
                ));
            }
            return Ok(selected);
        }
        let mut out = Vec::new();
        for item in input {
            self.member(item, name, &mut out)?;
        }
        Ok(out)
    }

    /// The children of an item named `name`.
    pub(super) fn member(
        &self,
        item: &Item<'a>,
        name: &str,
        out: &mut Items<'a>,
    ) -> Result<(), FhirPathError> {
        let node = match item {
            Item::Node(node) => node,
            Item::Type(info) => {
                match name {
                    "namespace" => out.push(Item::String(info.namespace.to_owned())),
                    "name" => out.push(Item::String(info.name.clone())),
                    _ => {}
                }
                return Ok(());
            }
            Item::Quantity(q) => {
                match name {
                    "value" => out.push(Item::Decimal(q.value)),
                    "unit" | "code" => out.push(Item::String(q.unit.clone())),
                    _ => {}
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        let Value::Object(map) = node.value.as_ref() else {
            return Ok(());
        };
        let borrowed: Option<&'a serde_json::Map<String, Value>> = match &node.value {
            Cow::Borrowed(Value::Object(map)) => Some(map),
            _ => None,
        };
        let type_def = node.type_name.and_then(|t| self.model.type_def(t));
        let Some(type_def) = type_def else {
            // No model for this value: plain JSON navigation.
            let value = map.get(name).cloned();
            push_json(out, value, borrowed.and_then(|m| m.get(name)), None);
            return Ok(());
        };
        let model: &'a Model = self.model;
        let element = type_def.elements.iter().find(|e| e.name == name);
        let element = match element {
            Some(element) => element,
            None => {
                // `valueQuantity` names a choice element by its JSON key, which FHIRPath spells
                // `value.ofType(Quantity)`; accepted unless strict.
                match model.resolve_key(type_def.name.as_str(), name) {
                    Some(_) if self.env.strict => {
                        return semantic(format!(
                            "{} has no element {name} (a choice element is named without its type)",
                            type_def.name
                        ));
                    }
                    Some(resolved) => {
                        let type_name = model.child_type_name(resolved.element, resolved.type_code);
                        self.push_children(
                            out,
                            map,
                            borrowed,
                            name,
                            type_name,
                            resolved.element.required_binding.as_deref(),
                        );
                        return Ok(());
                    }
                    None if self.env.strict => {
                        return semantic(format!("{} has no element {name}", type_def.name));
                    }
                    None => return Ok(()),
                }
            }
        };
        let binding = element.required_binding.as_deref();
        if element.choice {
            // Scan the object's keys for `name` + a capitalised type code: cheaper than
            // building every possible key, and a resource has few keys.
            for key in map.keys() {
                let plain = key.strip_prefix('_').unwrap_or(key);
                if plain.len() != key.len() && map.contains_key(plain) {
                    continue; // the value key handles its sibling
                }
                let Some(suffix) = plain.strip_prefix(name) else {
                    continue;
                };
                if let Some(code) = element
                    .types
                    .iter()
                    .find(|code| is_capitalised(code, suffix))
                {
                    self.push_children(out, map, borrowed, plain, code, binding);
                }
            }
        } else if let Some(code) = element.types.first() {
            let type_name = model.child_type_name(element, code);
            self.push_children(out, map, borrowed, name, type_name, binding);
        }
        Ok(())
    }

    fn push_children(
        &self,
        out: &mut Items<'a>,
        map: &serde_json::Map<String, Value>,
        borrowed: Option<&'a serde_json::Map<String, Value>>,
        key: &str,
        type_name: &'a str,
        binding: Option<&'a str>,
    ) {
        match borrowed {
            Some(map) => {
                let value = map.get(key);
                // Only primitives have `_name` siblings.
                let sibling = if self.model.is_primitive(type_name) {
                    map.get(&format!("_{key}"))
                } else {
                    None
                };
                push_elements(out, value, sibling, type_name, binding);
            }
            None => {
                // Only synthetic nodes (from `resolve()`) are owned; their children are copied.
                if let Some(value) = map.get(key) {
                    let values = match value {
                        Value::Array(values) => values.clone(),
                        other => vec![other.clone()],
                    };
                    for value in values {
                        out.push(Node::child(
                            Cow::Owned(value),
                            None,
                            Some(type_name),
                            binding,
                        ));
                    }
                }
            }
        }
    }

    /// Whether an item is of a type (or a subtype of it).
    pub(super) fn is_type(
        &self,
        item: &Item<'a>,
        spec: &TypeSpecifier,
    ) -> Result<bool, FhirPathError> {
        let namespace = spec.namespace.as_deref();
        match item {
            Item::Node(node) => {
                if namespace == Some("System") {
                    return Ok(false);
                }
                let Some(actual) = node.type_name else {
                    return Ok(false);
                };
                let actual = if actual.contains('.') {
                    "BackboneElement"
                } else {
                    actual
                };
                Ok(self.model.is_subtype(actual, &spec.name)
                    || (actual == "BackboneElement" && spec.name == "Element"))
            }
            other => {
                if namespace == Some("FHIR") {
                    return Ok(false);
                }
                let actual = system_type_name(other);
                Ok(actual == spec.name)
            }
        }
    }

    pub(super) fn check_type_exists(&self, spec: &TypeSpecifier) -> Result<(), FhirPathError> {
        const SYSTEM: [&str; 8] = [
            "Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity",
        ];
        let known = match spec.namespace.as_deref() {
            Some("System") => SYSTEM.contains(&spec.name.as_str()),
            Some("FHIR") => self.is_type_name(&spec.name),
            Some(_) => false,
            None => SYSTEM.contains(&spec.name.as_str()) || self.is_type_name(&spec.name),
        };
        if known || !self.env.strict {
            Ok(())
        } else {
            semantic(format!("unknown type {}", spec.name))
        }
    }

    /// The type of an item, as `type()` reports it.
    pub(super) fn type_info(&self, item: &Item<'a>) -> TypeInfo {
        match item {
            Item::Node(node) => {
                let name = match node.type_name {
                    Some(t) if t.contains('.') => "BackboneElement".to_owned(),
                    Some(t) => t.to_owned(),
                    None => "Element".to_owned(),
                };
                TypeInfo {
                    namespace: "FHIR",
                    name,
                }
            }
            other => TypeInfo {
                namespace: "System",
                name: system_type_name(other).to_owned(),
            },
        }
    }

    /// Every child element of a node, in document order.
    pub(super) fn children(&self, item: &Item<'a>, out: &mut Items<'a>) {
        let Item::Node(node) = item else {
            return;
        };
        let Cow::Borrowed(Value::Object(map)) = &node.value else {
            return;
        };
        let map: &'a serde_json::Map<String, Value> = map;
        for (key, value) in map {
            if key == "resourceType" {
                continue;
            }
            if let Some(plain) = key.strip_prefix('_') {
                // An extension-only primitive appears through its sibling alone.
                if !map.contains_key(plain) {
                    let type_name = node
                        .type_name
                        .and_then(|t| self.model.resolve_key(t, plain))
                        .map(|r| r.type_code);
                    push_sibling_only(out, value, type_name);
                }
                continue;
            }
            let resolved = node.type_name.and_then(|t| self.model.resolve_key(t, key));
            match resolved {
                Some(resolved) => {
                    let type_name = self
                        .model
                        .child_type_name(resolved.element, resolved.type_code);
                    push_elements(
                        out,
                        Some(value),
                        map.get(&format!("_{key}")),
                        type_name,
                        resolved.element.required_binding.as_deref(),
                    );
                }
                None => push_json(out, None, Some(value), None),
            }
        }
    }

    fn binary(
        &self,
        op: BinaryOp,
        left: &Expr,
        right: &Expr,
        input: &[Item<'a>],
        frame: &Frame<'a>,
    ) -> Outcome<'a> {
        // The logical operators look at the right side only when the left does not decide.
        match op {
            BinaryOp::And | BinaryOp::Or | BinaryOp::Implies => {
                let l = truth(&self.eval(left, input, frame)?)?;
                let decided = match (op, l) {
                    (BinaryOp::And, Some(false)) => Some(false),
                    (BinaryOp::Or, Some(true)) => Some(true),
                    (BinaryOp::Implies, Some(false)) => Some(true),
                    _ => None,
                };
                if let Some(result) = decided {
                    return boolean(result);
                }
                let r = truth(&self.eval(right, input, frame)?)?;
                let result = match op {
                    BinaryOp::And => match (l, r) {
                        (_, Some(false)) => Some(false),
                        (Some(true), Some(true)) => Some(true),
                        _ => None,
                    },
                    BinaryOp::Or => match (l, r) {
                        (_, Some(true)) => Some(true),
                        (Some(false), Some(false)) => Some(false),
                        _ => None,
                    },
                    _ => match (l, r) {
                        (_, Some(true)) => Some(true),
                        (Some(true), r) => r,
                        _ => None,
                    },
                };
                return maybe_boolean(result);
            }
            _ => {}
        }
        let l = self.eval(left, input, frame)?;
        let r = self.eval(right, input, frame)?;
        match op {
            BinaryOp::Xor => match (truth(&l)?, truth(&r)?) {
                (Some(a), Some(b)) => boolean(a != b),
                _ => Ok(Vec::new()),
            },
            BinaryOp::Union => {
                let mut out = Vec::new();
                for item in l.into_iter().chain(r) {
                    push_distinct(&mut out, item);
                }
                Ok(out)
            }
            BinaryOp::Equal | BinaryOp::NotEqual => {
                if l.is_empty() || r.is_empty() {
                    return Ok(Vec::new());
                }
                let result = if l.len() != r.len() {
                    Some(false)
                } else {
                    let mut result = Some(true);
                    for (a, b) in l.iter().zip(&r) {
                        match equal(a, b) {
                            Some(true) => {}
                            Some(false) => {
                                result = Some(false);
                                break;
                            }
                            None => result = None,
                        }
                    }
                    result
                };
                maybe_boolean(result.map(|eq| eq == (op == BinaryOp::Equal)))
            }
            BinaryOp::Equivalent | BinaryOp::NotEquivalent => {
                let same = l.len() == r.len()
                    && l.iter().all(|a| r.iter().any(|b| equivalent(a, b)))
                    && r.iter().all(|b| l.iter().any(|a| equivalent(a, b)));
                boolean(same == (op == BinaryOp::Equivalent))
            }
            BinaryOp::Less
            | BinaryOp::Greater
            | BinaryOp::LessOrEqual
            | BinaryOp::GreaterOrEqual => {
                let (Some(a), Some(b)) = (
                    singleton(&l, "a comparison")?,
                    singleton(&r, "a comparison")?,
                ) else {
                    return Ok(Vec::new());
                };
                let Some(ordering) = order(a, b)? else {
                    return Ok(Vec::new());
                };
                boolean(match op {
                    BinaryOp::Less => ordering == Ordering::Less,
                    BinaryOp::Greater => ordering == Ordering::Greater,
                    BinaryOp::LessOrEqual => ordering != Ordering::Greater,
                    _ => ordering != Ordering::Less,
                })
            }
            BinaryOp::In | BinaryOp::Contains => {
                let (element, collection) = if op == BinaryOp::In {
                    (&l, &r)
                } else {
                    (&r, &l)
                };
                let Some(element) = singleton(element, "'in' and 'contains'")? else {
                    return Ok(Vec::new());
                };
                boolean(collection.iter().any(|c| equal(c, element) == Some(true)))
            }
            BinaryOp::Concatenate => {
                let text = |items: &[Item<'a>]| -> Result<String, FhirPathError> {
                    match singleton(items, "'&'")? {
                        None => Ok(String::new()),
                        Some(item) => match item.system().as_ref() {
                            Item::String(s) => Ok(s.clone()),
                            other => {
                                execution(format!("'&' needs strings, not {}", other.describe()))
                            }
                        },
                    }
                };
                Ok(vec![Item::String(text(&l)? + &text(&r)?)])
            }
            _ => {
                let (Some(a), Some(b)) =
                    (singleton(&l, "arithmetic")?, singleton(&r, "arithmetic")?)
                else {
                    return Ok(Vec::new());
                };
                arithmetic(op, &a.system(), &b.system())
            }
        }
    }
}

fn arithmetic<'a>(op: BinaryOp, a: &Item<'a>, b: &Item<'a>) -> Outcome<'a> {
    use BinaryOp::{Add, Div, Divide, Mod, Multiply, Subtract};
    let none = || Ok(Vec::new());
    let one = |item: Item<'a>| Ok(vec![item]);
    match (op, a, b) {
        (Add, Item::String(x), Item::String(y)) => one(Item::String(format!("{x}{y}"))),
        (Add | Subtract, Item::Temporal(t), Item::Quantity(q)) => match t.add(q, op == Subtract) {
            Some(t) => one(Item::Temporal(t)),
            None => execution(format!("cannot add {q} to a date or time")),
        },
        (Add | Subtract, Item::Quantity(x), Item::Quantity(y)) => match x.convert(y) {
            Some(y) => {
                let value = if op == Add { x.value + y } else { x.value - y };
                one(Item::Quantity(Quantity::new(value, x.unit.clone())))
            }
            None => none(),
        },
        (Multiply, Item::Quantity(q), n) | (Multiply, n, Item::Quantity(q))
            if decimal(n).is_some() =>
        {
            let n = decimal(n).unwrap_or_default();
            one(Item::Quantity(Quantity::new(q.value * n, q.unit.clone())))
        }
        (Divide, Item::Quantity(x), Item::Quantity(y)) => {
            // Only a ratio of like units is supported: it is dimensionless.
            match x.convert(y).and_then(|y| x.value.checked_div(y)) {
                Some(v) => one(Item::Quantity(Quantity::new(v.normalize(), "1".to_owned()))),
                None => execution(format!("cannot divide {x} by {y}")),
            }
        }
        (Divide, Item::Quantity(q), n) if decimal(n).is_some() => {
            let n = decimal(n).unwrap_or_default();
            match q.value.checked_div(n) {
                Some(v) => one(Item::Quantity(Quantity::new(v, q.unit.clone()))),
                None => none(),
            }
        }
        (_, Item::Integer(x), Item::Integer(y)) if op != Divide => {
            let (x, y) = (*x, *y);
            let result = match op {
                Add => x.checked_add(y),
                Subtract => x.checked_sub(y),
                Multiply => x.checked_mul(y),
                Div => x.checked_div(y),
                Mod => x.checked_rem(y),
                _ => None,
            };
            // FHIRPath Integers are 32-bit: overflow is empty, as is division by zero.
            match result.filter(|r| i32::try_from(*r).is_ok()) {
                Some(r) => one(Item::Integer(r)),
                None => none(),
            }
        }
        (_, x, y) if decimal(x).is_some() && decimal(y).is_some() => {
            let (x, y) = (
                decimal(x).unwrap_or_default(),
                decimal(y).unwrap_or_default(),
            );
            let result = match op {
                Add => x.checked_add(y).map(Item::Decimal),
                Subtract => x.checked_sub(y).map(Item::Decimal),
                Multiply => x.checked_mul(y).map(Item::Decimal),
                // Quotients keep eight decimal places, as other FHIRPath engines do, so that
                // `1.2 / 1.8 = 0.66666667`.
                Divide => x
                    .checked_div(y)
                    .map(|d| Item::Decimal(d.round_dp(8).normalize())),
                Div => x
                    .checked_div(y)
                    .and_then(|d| i64::try_from(d.trunc()).ok())
                    .map(Item::Integer),
                Mod => x.checked_rem(y).map(Item::Decimal),
                _ => None,
            };
            Ok(result.into_iter().collect())
        }
        _ => execution(format!(
            "cannot apply {op:?} to {} and {}",
            a.describe(),
            b.describe()
        )),
    }
}

/// Pushes a JSON element (or array of them) of a known type, pairing primitives with their
/// `_name` siblings.
fn push_elements<'a>(
    out: &mut Items<'a>,
    value: Option<&'a Value>,
    sibling: Option<&'a Value>,
    type_name: &'a str,
    binding: Option<&'a str>,
) {
    let resource_type = |v: &'a Value| {
        if type_name == "Resource" || type_name == "DomainResource" {
            v.get("resourceType")
                .and_then(Value::as_str)
                .or(Some(type_name))
        } else {
            Some(type_name)
        }
    };
    match (value, sibling) {
        (Some(Value::Array(values)), sibling) => {
            let siblings = sibling.and_then(Value::as_array);
            for (i, v) in values.iter().enumerate() {
                let sibling = siblings.and_then(|s| s.get(i)).filter(|s| !s.is_null());
                if v.is_null() && sibling.is_none() {
                    continue;
                }
                out.push(Node::child(
                    Cow::Borrowed(v),
                    sibling,
                    resource_type(v),
                    binding,
                ));
            }
        }
        (Some(v), sibling) => out.push(Node::child(
            Cow::Borrowed(v),
            sibling,
            resource_type(v),
            binding,
        )),
        (None, Some(Value::Array(siblings))) => {
            for s in siblings.iter().filter(|s| !s.is_null()) {
                out.push(Node::child(
                    Cow::Owned(Value::Null),
                    Some(s),
                    Some(type_name),
                    binding,
                ));
            }
        }
        (None, Some(s)) => out.push(Node::child(
            Cow::Owned(Value::Null),
            Some(s),
            Some(type_name),
            binding,
        )),
        (None, None) => {}
    }
}

fn push_sibling_only<'a>(out: &mut Items<'a>, sibling: &'a Value, type_name: Option<&'a str>) {
    let siblings = match sibling {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for s in siblings.into_iter().filter(|s| !s.is_null()) {
        out.push(Node::child(
            Cow::Owned(Value::Null),
            Some(s),
            type_name,
            None,
        ));
    }
}

/// Pushes untyped JSON (no model for it).
fn push_json<'a>(
    out: &mut Items<'a>,
    owned: Option<Value>,
    borrowed: Option<&'a Value>,
    type_name: Option<&'a str>,
) {
    let values: Vec<Cow<'a, Value>> = match (borrowed, owned) {
        (Some(Value::Array(items)), _) => items.iter().map(Cow::Borrowed).collect(),
        (Some(v), _) => vec![Cow::Borrowed(v)],
        (None, Some(Value::Array(items))) => items.into_iter().map(Cow::Owned).collect(),
        (None, Some(v)) => vec![Cow::Owned(v)],
        (None, None) => Vec::new(),
    };
    for value in values {
        let type_name = type_name.or(match &value {
            Cow::Borrowed(v) => v.get("resourceType").and_then(Value::as_str),
            Cow::Owned(_) => None,
        });
        out.push(Node::child(value, None, type_name, None));
    }
}

/// Whether a model type is a resource (for `resolve()` and `conformsTo`).
pub(super) fn is_resource_type(model: &Model, name: &str) -> bool {
    model
        .type_def(name)
        .is_some_and(|t| t.kind == TypeKind::Resource)
}
