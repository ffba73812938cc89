//! FHIRPath's functions, by name.

use std::borrow::Cow;

use base64::Engine;
use rust_decimal::prelude::{MathematicalOps, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use super::eval::{
    Evaluator, Frame, Items, Outcome, boolean, decimal, equal, execution, is_resource_type,
    push_distinct, semantic, singleton, truth,
};
use super::syntax::{Expr, TypeSpecifier};
use super::value::{Temporal, TemporalKind, is_decimal_text, parse_quantity};
use super::{FhirPathError, Item, Node, Quantity};

/// How many results `repeat` and `descendants` may produce before giving up.
const MAX_REPEAT: usize = 100_000;

fn arity(name: &str, args: &[Expr], allowed: &[usize]) -> Result<(), FhirPathError> {
    if allowed.contains(&args.len()) {
        Ok(())
    } else {
        semantic(format!(
            "{name}() takes {} argument(s), not {}",
            allowed
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            args.len()
        ))
    }
}

fn string_of(item: &Item<'_>) -> Option<String> {
    match item.system().as_ref() {
        Item::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `toString()`: the text form of a primitive value.
fn to_text(item: &Item<'_>) -> Option<String> {
    if let Item::Node(node) = item {
        return match node.value.as_ref() {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => match item.system().as_ref() {
                Item::Quantity(q) => Some(q.to_string()),
                _ => None,
            },
        };
    }
    Some(match item {
        Item::Boolean(b) => b.to_string(),
        Item::Integer(i) => i.to_string(),
        Item::Decimal(d) => d.to_string(),
        Item::String(s) => s.clone(),
        Item::Temporal(t) => t.to_string(),
        Item::Quantity(q) => q.to_string(),
        Item::Type(_) | Item::Node(_) => return None,
    })
}

fn to_boolean(item: &Item<'_>) -> Option<bool> {
    match item.system().as_ref() {
        Item::Boolean(b) => Some(*b),
        Item::Integer(1) => Some(true),
        Item::Integer(0) => Some(false),
        Item::Decimal(d) if *d == Decimal::ONE => Some(true),
        Item::Decimal(d) if d.is_zero() => Some(false),
        Item::String(s) => match s.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(true),
            "false" | "f" | "no" | "n" | "0" | "0.0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn to_integer<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match item.system().as_ref() {
        Item::Integer(i) => Some(Item::Integer(*i)),
        Item::Boolean(b) => Some(Item::Integer(i64::from(*b))),
        Item::String(s) => {
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse::<i32>().ok().map(|i| Item::Integer(i64::from(i)))
        }
        _ => None,
    }
}

fn to_decimal<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match item.system().as_ref() {
        Item::Integer(i) => Some(Item::Decimal(Decimal::from(*i))),
        Item::Decimal(d) => Some(Item::Decimal(*d)),
        Item::Boolean(b) => Some(Item::Decimal(if *b { Decimal::ONE } else { Decimal::ZERO })),
        Item::String(s) if is_decimal_text(s) => Decimal::from_str_exact(s).ok().map(Item::Decimal),
        _ => None,
    }
}

fn to_quantity<'a>(item: &Item<'a>) -> Option<Quantity> {
    match item.system().as_ref() {
        Item::Integer(i) => Some(Quantity::new(Decimal::from(*i), "1".to_owned())),
        Item::Decimal(d) => Some(Quantity::new(*d, "1".to_owned())),
        Item::Boolean(b) => Some(Quantity::new(
            if *b { Decimal::ONE } else { Decimal::ZERO },
            "1".to_owned(),
        )),
        Item::Quantity(q) => Some(q.clone()),
        Item::String(s) => parse_quantity(s),
        _ => None,
    }
}

fn to_temporal<'a>(item: &Item<'a>, kind: TemporalKind) -> Option<Item<'a>> {
    match item.system().as_ref() {
        Item::String(s) => {
            let parsed = match kind {
                TemporalKind::Time => Temporal::parse(s.strip_prefix('T').unwrap_or(s), kind),
                TemporalKind::DateTime => Temporal::parse(s, TemporalKind::DateTime),
                TemporalKind::Date => Temporal::parse(s, TemporalKind::Date).or_else(|| {
                    Temporal::parse(s, TemporalKind::DateTime).map(|t| t.with_kind(kind))
                }),
            };
            parsed.map(Item::Temporal)
        }
        Item::Temporal(t) if t.kind == kind => Some(Item::Temporal(t.clone())),
        Item::Temporal(t) if t.kind != TemporalKind::Time && kind != TemporalKind::Time => {
            Some(Item::Temporal(t.with_kind(kind)))
        }
        _ => None,
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape_html(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn escape_json(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_owned()
}

fn unescape_json(text: &str) -> Option<String> {
    serde_json::from_str(&format!("\"{text}\"")).ok()
}

impl<'a> Evaluator<'_, 'a> {
    fn arg(&self, args: &[Expr], index: usize, frame: &Frame<'a>) -> Outcome<'a> {
        match args.get(index) {
            Some(expr) => self.eval(expr, &frame.this, frame),
            None => Ok(Vec::new()),
        }
    }

    fn string_arg(
        &self,
        name: &str,
        args: &[Expr],
        index: usize,
        frame: &Frame<'a>,
    ) -> Result<Option<String>, FhirPathError> {
        let items = self.arg(args, index, frame)?;
        match singleton(&items, name)? {
            None => Ok(None),
            Some(item) => match string_of(item) {
                Some(s) => Ok(Some(s)),
                None => execution(format!("{name}() needs a string argument")),
            },
        }
    }

    fn integer_arg(
        &self,
        name: &str,
        args: &[Expr],
        index: usize,
        frame: &Frame<'a>,
    ) -> Result<Option<i64>, FhirPathError> {
        let items = self.arg(args, index, frame)?;
        match singleton(&items, name)?.map(|i| i.system().into_owned()) {
            None => Ok(None),
            Some(Item::Integer(i)) => Ok(Some(i)),
            Some(other) => execution(format!(
                "{name}() needs an Integer argument, not {}",
                other.describe()
            )),
        }
    }

    /// Evaluates `criteria` once per item with `$this` and `$index` set.
    fn each(
        &self,
        input: &[Item<'a>],
        criteria: &Expr,
        frame: &Frame<'a>,
    ) -> Result<Vec<(Item<'a>, Items<'a>)>, FhirPathError> {
        let mut results = Vec::with_capacity(input.len());
        for (index, item) in input.iter().enumerate() {
            let inner = Frame {
                this: vec![item.clone()],
                index: Some(index as i64),
                total: frame.total.clone(),
            };
            let result = self.eval(criteria, std::slice::from_ref(item), &inner)?;
            results.push((item.clone(), result));
        }
        Ok(results)
    }

    fn type_arg(&self, name: &str, args: &[Expr]) -> Result<TypeSpecifier, FhirPathError> {
        arity(name, args, &[1])?;
        let spec = match &args[0] {
            Expr::Identifier(type_name) => TypeSpecifier {
                namespace: None,
                name: type_name.clone(),
            },
            Expr::Member(inner, type_name) => match inner.as_ref() {
                Expr::Identifier(namespace) => TypeSpecifier {
                    namespace: Some(namespace.clone()),
                    name: type_name.clone(),
                },
                _ => return semantic(format!("{name}() needs a type name")),
            },
            _ => return semantic(format!("{name}() needs a type name")),
        };
        self.check_type_exists(&spec)?;
        Ok(spec)
    }

    pub(super) fn call(
        &self,
        name: &str,
        input: Items<'a>,
        args: &[Expr],
        frame: &Frame<'a>,
    ) -> Outcome<'a> {
        let one = |item: Item<'a>| Ok(vec![item]);
        let none = || Ok(Vec::new());
        match name {
            // Existence
            "empty" => {
                arity(name, args, &[0])?;
                boolean(input.is_empty())
            }
            "exists" => {
                arity(name, args, &[0, 1])?;
                if let Some(criteria) = args.first() {
                    for (_, result) in self.each(&input, criteria, frame)? {
                        if truth(&result)? == Some(true) {
                            return boolean(true);
                        }
                    }
                    return boolean(false);
                }
                boolean(!input.is_empty())
            }
            "all" => {
                arity(name, args, &[1])?;
                for (_, result) in self.each(&input, &args[0], frame)? {
                    if truth(&result)? != Some(true) {
                        return boolean(false);
                    }
                }
                boolean(true)
            }
            "allTrue" | "anyTrue" | "allFalse" | "anyFalse" => {
                arity(name, args, &[0])?;
                let mut values = Vec::new();
                for item in &input {
                    match item.system().as_ref() {
                        Item::Boolean(b) => values.push(*b),
                        other => {
                            return execution(format!(
                                "{name}() needs Booleans, not {}",
                                other.describe()
                            ));
                        }
                    }
                }
                boolean(match name {
                    "allTrue" => values.iter().all(|b| *b),
                    "anyTrue" => values.iter().any(|b| *b),
                    "allFalse" => values.iter().all(|b| !*b),
                    _ => values.iter().any(|b| !*b),
                })
            }
            "subsetOf" | "supersetOf" => {
                arity(name, args, &[1])?;
                let other = self.arg(args, 0, frame)?;
                let (small, big) = if name == "subsetOf" {
                    (&input, &other)
                } else {
                    (&other, &input)
                };
                boolean(
                    small
                        .iter()
                        .all(|a| big.iter().any(|b| equal(a, b) == Some(true))),
                )
            }
            "count" => {
                arity(name, args, &[0])?;
                one(Item::Integer(input.len() as i64))
            }
            "distinct" => {
                arity(name, args, &[0])?;
                let mut out = Vec::new();
                for item in input {
                    push_distinct(&mut out, item);
                }
                Ok(out)
            }
            "isDistinct" => {
                arity(name, args, &[0])?;
                let count = input.len();
                let mut out = Vec::new();
                for item in input {
                    push_distinct(&mut out, item);
                }
                boolean(out.len() == count)
            }
            // Filtering and projection
            "where" => {
                arity(name, args, &[1])?;
                let mut out = Vec::new();
                for (item, result) in self.each(&input, &args[0], frame)? {
                    if truth(&result)? == Some(true) {
                        out.push(item);
                    }
                }
                Ok(out)
            }
            "select" => {
                arity(name, args, &[1])?;
                Ok(self
                    .each(&input, &args[0], frame)?
                    .into_iter()
                    .flat_map(|(_, result)| result)
                    .collect())
            }
            "repeat" => {
                arity(name, args, &[1])?;
                let mut out: Items<'a> = Vec::new();
                let mut pending = input;
                while !pending.is_empty() {
                    let mut next = Vec::new();
                    for (_, result) in self.each(&pending, &args[0], frame)? {
                        for item in result {
                            if !out.iter().any(|o| equal(o, &item) == Some(true)) {
                                out.push(item.clone());
                                next.push(item);
                            }
                        }
                    }
                    if out.len() > MAX_REPEAT {
                        return execution("repeat() produced too many items");
                    }
                    pending = next;
                }
                Ok(out)
            }
            "ofType" => {
                let spec = self.type_arg(name, args)?;
                let mut out = Vec::new();
                for item in input {
                    if self.is_type(&item, &spec)? {
                        out.push(item);
                    }
                }
                Ok(out)
            }
            "is" => {
                let spec = self.type_arg(name, args)?;
                match singleton(&input, "is()")? {
                    Some(item) => boolean(self.is_type(item, &spec)?),
                    None => none(),
                }
            }
            "as" => {
                let spec = self.type_arg(name, args)?;
                let mut out = Vec::new();
                for item in input {
                    if self.is_type(&item, &spec)? {
                        out.push(item);
                    }
                }
                Ok(out)
            }
            "type" => {
                arity(name, args, &[0])?;
                Ok(input
                    .iter()
                    .map(|item| Item::Type(self.type_info(item)))
                    .collect())
            }
            // Subsetting
            "single" => {
                arity(name, args, &[0])?;
                Ok(singleton(&input, "single()")?
                    .cloned()
                    .into_iter()
                    .collect())
            }
            "first" => {
                arity(name, args, &[0])?;
                Ok(input.into_iter().take(1).collect())
            }
            "last" => {
                arity(name, args, &[0])?;
                Ok(input.into_iter().last().into_iter().collect())
            }
            "tail" => {
                arity(name, args, &[0])?;
                Ok(input.into_iter().skip(1).collect())
            }
            "skip" | "take" => {
                arity(name, args, &[1])?;
                let Some(n) = self.integer_arg(name, args, 0, frame)? else {
                    return none();
                };
                let n = usize::try_from(n.max(0)).unwrap_or(0);
                Ok(if name == "skip" {
                    input.into_iter().skip(n).collect()
                } else {
                    input.into_iter().take(n).collect()
                })
            }
            "intersect" => {
                arity(name, args, &[1])?;
                let other = self.arg(args, 0, frame)?;
                let mut out = Vec::new();
                for item in input {
                    if other.iter().any(|o| equal(o, &item) == Some(true)) {
                        push_distinct(&mut out, item);
                    }
                }
                Ok(out)
            }
            "exclude" => {
                arity(name, args, &[1])?;
                let other = self.arg(args, 0, frame)?;
                Ok(input
                    .into_iter()
                    .filter(|item| !other.iter().any(|o| equal(o, item) == Some(true)))
                    .collect())
            }
            // Combining
            "union" => {
                arity(name, args, &[1])?;
                let other = self.arg(args, 0, frame)?;
                let mut out = Vec::new();
                for item in input.into_iter().chain(other) {
                    push_distinct(&mut out, item);
                }
                Ok(out)
            }
            "combine" => {
                arity(name, args, &[1])?;
                let mut out = input;
                out.extend(self.arg(args, 0, frame)?);
                Ok(out)
            }
            // Conversion
            "iif" => {
                arity(name, args, &[2, 3])?;
                if input.len() > 1 {
                    return execution("iif() needs at most one input item");
                }
                let inner = Frame {
                    this: input.clone(),
                    index: frame.index,
                    total: frame.total.clone(),
                };
                let condition = truth(&self.eval(&args[0], &input, &inner)?)?;
                if condition == Some(true) {
                    self.eval(&args[1], &input, &inner)
                } else if let Some(otherwise) = args.get(2) {
                    self.eval(otherwise, &input, &inner)
                } else {
                    none()
                }
            }
            "toBoolean" | "convertsToBoolean" => self.convert(name, &input, args, |item| {
                to_boolean(item).map(Item::Boolean)
            }),
            "toInteger" | "convertsToInteger" => self.convert(name, &input, args, to_integer),
            "toDecimal" | "convertsToDecimal" => self.convert(name, &input, args, to_decimal),
            "toString" | "convertsToString" => {
                self.convert(name, &input, args, |item| to_text(item).map(Item::String))
            }
            "toDate" | "convertsToDate" => self.convert(name, &input, args, |item| {
                to_temporal(item, TemporalKind::Date)
            }),
            "toDateTime" | "convertsToDateTime" => self.convert(name, &input, args, |item| {
                to_temporal(item, TemporalKind::DateTime)
            }),
            "toTime" | "convertsToTime" => self.convert(name, &input, args, |item| {
                to_temporal(item, TemporalKind::Time)
            }),
            "toQuantity" | "convertsToQuantity" => {
                arity(name, args, &[0, 1])?;
                let unit = self.string_arg(name, args, 0, frame)?;
                let Some(item) = singleton(&input, name)? else {
                    return none();
                };
                let quantity = to_quantity(item).and_then(|q| match &unit {
                    None => Some(q),
                    Some(unit) => {
                        let target = Quantity::new(Decimal::ONE, unit.clone());
                        target
                            .convert(&q)
                            .map(|value| Quantity::new(value, unit.clone()))
                    }
                });
                if name == "toQuantity" {
                    Ok(quantity.map(Item::Quantity).into_iter().collect())
                } else {
                    boolean(quantity.is_some())
                }
            }
            // Strings
            "indexOf" | "lastIndexOf" => self.string_fn(name, &input, args, 1, frame, |s, a| {
                let needle = a[0].as_deref()?;
                let found = if name == "indexOf" {
                    s.find(needle)
                } else {
                    s.rfind(needle)
                };
                Some(Item::Integer(
                    found.map_or(-1, |byte| s[..byte].chars().count() as i64),
                ))
            }),
            "substring" => {
                arity(name, args, &[1, 2])?;
                let start = self.integer_arg(name, args, 0, frame)?;
                let length = self.integer_arg(name, args, 1, frame)?;
                let Some(s) = self.input_string(name, &input)? else {
                    return none();
                };
                let Some(start) = start else {
                    return none();
                };
                let chars: Vec<char> = s.chars().collect();
                if start < 0 || start as usize >= chars.len() {
                    return none();
                }
                let end = match length {
                    Some(len) if args.len() == 2 => {
                        (start.saturating_add(len.max(0)) as usize).min(chars.len())
                    }
                    None if args.len() == 2 => return none(),
                    _ => chars.len(),
                };
                one(Item::String(chars[start as usize..end].iter().collect()))
            }
            "startsWith" | "endsWith" | "contains" => {
                self.string_fn(name, &input, args, 1, frame, |s, a| {
                    let needle = a[0].as_deref()?;
                    Some(Item::Boolean(match name {
                        "startsWith" => s.starts_with(needle),
                        "endsWith" => s.ends_with(needle),
                        _ => s.contains(needle),
                    }))
                })
            }
            "upper" | "lower" | "trim" | "length" | "toChars" => {
                arity(name, args, &[0])?;
                let Some(s) = self.input_string(name, &input)? else {
                    return none();
                };
                match name {
                    "upper" => one(Item::String(s.to_uppercase())),
                    "lower" => one(Item::String(s.to_lowercase())),
                    "trim" => one(Item::String(s.trim().to_owned())),
                    "length" => one(Item::Integer(s.chars().count() as i64)),
                    _ => Ok(s.chars().map(|c| Item::String(c.to_string())).collect()),
                }
            }
            "replace" => self.string_fn(name, &input, args, 2, frame, |s, a| {
                let (from, to) = (a[0].as_deref()?, a[1].as_deref()?);
                Some(Item::String(if from.is_empty() {
                    // Inserting between every character, as the specification describes.
                    let mut out = to.to_owned();
                    for c in s.chars() {
                        out.push(c);
                        out.push_str(to);
                    }
                    out
                } else {
                    s.replace(from, to)
                }))
            }),
            "matches" | "matchesFull" | "replaceMatches" => {
                arity(
                    name,
                    args,
                    if name == "replaceMatches" { &[2] } else { &[1] },
                )?;
                let pattern = self.string_arg(name, args, 0, frame)?;
                let replacement = self.string_arg(name, args, 1, frame)?;
                let Some(s) = self.input_string(name, &input)? else {
                    return none();
                };
                let Some(pattern) = pattern else {
                    return none();
                };
                let source = if name == "matchesFull" {
                    format!("^(?:{pattern})$")
                } else {
                    format!("(?s){pattern}")
                };
                let regex = regex::Regex::new(&source).map_err(|err| {
                    FhirPathError::Execution(format!("{name}(): invalid regular expression: {err}"))
                })?;
                if name == "replaceMatches" {
                    let Some(replacement) = replacement else {
                        return none();
                    };
                    return one(Item::String(
                        regex.replace_all(&s, replacement.as_str()).into_owned(),
                    ));
                }
                boolean(regex.is_match(&s))
            }
            "split" => {
                arity(name, args, &[1])?;
                let separator = self.string_arg(name, args, 0, frame)?;
                let (Some(s), Some(separator)) = (self.input_string(name, &input)?, separator)
                else {
                    return none();
                };
                Ok(s.split(separator.as_str())
                    .map(|part| Item::String(part.to_owned()))
                    .collect())
            }
            "join" => {
                arity(name, args, &[0, 1])?;
                let separator = self.string_arg(name, args, 0, frame)?.unwrap_or_default();
                let mut parts = Vec::new();
                for item in &input {
                    match string_of(item) {
                        Some(s) => parts.push(s),
                        None => return execution("join() needs strings"),
                    }
                }
                one(Item::String(parts.join(&separator)))
            }
            "encode" | "decode" | "escape" | "unescape" => {
                arity(name, args, &[1])?;
                let format = self.string_arg(name, args, 0, frame)?;
                let Some(s) = self.input_string(name, &input)? else {
                    return none();
                };
                let standard = base64::engine::general_purpose::STANDARD;
                let url = base64::engine::general_purpose::URL_SAFE;
                let result = match (name, format.as_deref()) {
                    ("encode", Some("base64")) => Some(standard.encode(s.as_bytes())),
                    ("encode", Some("urlbase64")) => Some(url.encode(s.as_bytes())),
                    ("encode", Some("hex")) => {
                        Some(s.bytes().map(|b| format!("{b:02x}")).collect())
                    }
                    ("decode", Some("base64")) => standard
                        .decode(s.as_bytes())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok()),
                    ("decode", Some("urlbase64")) => url
                        .decode(s.as_bytes())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok()),
                    ("decode", Some("hex")) => (0..s.len())
                        .step_by(2)
                        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                        .collect::<Option<Vec<u8>>>()
                        .and_then(|b| String::from_utf8(b).ok()),
                    ("escape", Some("html")) => Some(escape_html(&s)),
                    ("escape", Some("json")) => Some(escape_json(&s)),
                    ("unescape", Some("html")) => Some(unescape_html(&s)),
                    ("unescape", Some("json")) => unescape_json(&s),
                    _ => None,
                };
                Ok(result.map(Item::String).into_iter().collect())
            }
            // Maths
            "abs" | "ceiling" | "floor" | "truncate" | "exp" | "ln" | "sqrt" => {
                arity(name, args, &[0])?;
                let Some(item) = singleton(&input, name)? else {
                    return none();
                };
                let system = item.system().into_owned();
                if let (Item::Quantity(q), "abs") = (&system, name) {
                    return one(Item::Quantity(Quantity::new(q.value.abs(), q.unit.clone())));
                }
                let Some(x) = decimal(&system) else {
                    return execution(format!(
                        "{name}() needs a number, not {}",
                        system.describe()
                    ));
                };
                let integer = |d: Decimal| d.to_i64().map(Item::Integer);
                let result = match name {
                    "abs" => match system {
                        Item::Integer(i) => Some(Item::Integer(i.abs())),
                        _ => Some(Item::Decimal(x.abs())),
                    },
                    "ceiling" => integer(x.ceil()),
                    "floor" => integer(x.floor()),
                    "truncate" => integer(x.trunc()),
                    "exp" => x.checked_exp().map(Item::Decimal),
                    "ln" => (x > Decimal::ZERO)
                        .then(|| x.checked_ln())
                        .flatten()
                        .map(Item::Decimal),
                    _ => x.sqrt().map(Item::Decimal),
                };
                Ok(result.into_iter().collect())
            }
            "round" => {
                arity(name, args, &[0, 1])?;
                let precision = self.integer_arg(name, args, 0, frame)?.unwrap_or(0);
                let Some(item) = singleton(&input, name)? else {
                    return none();
                };
                let Some(x) = decimal(item) else {
                    return execution("round() needs a number");
                };
                let Ok(precision) = u32::try_from(precision) else {
                    return execution("round() needs a precision of 0 or more");
                };
                one(Item::Decimal(x.round_dp_with_strategy(
                    precision,
                    RoundingStrategy::MidpointAwayFromZero,
                )))
            }
            "log" | "power" => {
                arity(name, args, &[1])?;
                let other = self.arg(args, 0, frame)?;
                let (Some(item), Some(arg)) = (singleton(&input, name)?, singleton(&other, name)?)
                else {
                    return none();
                };
                let (Some(x), Some(y)) = (decimal(item), decimal(arg)) else {
                    return execution(format!("{name}() needs numbers"));
                };
                if name == "log" {
                    let (Some(a), Some(b)) = (
                        (x > Decimal::ZERO).then(|| x.checked_ln()).flatten(),
                        (y > Decimal::ZERO).then(|| y.checked_ln()).flatten(),
                    ) else {
                        return none();
                    };
                    // Series for ln are exact to about 20 places; rounding keeps
                    // `16.log(2) = 4.0` true.
                    return Ok(a
                        .checked_div(b)
                        .map(|d| Item::Decimal(d.round_dp(15).normalize()))
                        .into_iter()
                        .collect());
                }
                let both_integers = matches!(item.system().as_ref(), Item::Integer(_))
                    && matches!(arg.system().as_ref(), Item::Integer(_));
                if both_integers && y >= Decimal::ZERO {
                    let result = x
                        .to_i64()
                        .zip(y.to_u32())
                        .and_then(|(b, e)| b.checked_pow(e))
                        .filter(|r| i32::try_from(*r).is_ok());
                    return Ok(result.map(Item::Integer).into_iter().collect());
                }
                if x < Decimal::ZERO && !y.fract().is_zero() {
                    return none();
                }
                Ok(x.checked_powd(y).map(Item::Decimal).into_iter().collect())
            }
            // Tree navigation
            "children" => {
                arity(name, args, &[0])?;
                let mut out = Vec::new();
                for item in &input {
                    self.children(item, &mut out);
                }
                Ok(out)
            }
            "descendants" => {
                arity(name, args, &[0])?;
                let mut out = Vec::new();
                let mut pending = input;
                while !pending.is_empty() {
                    let mut next = Vec::new();
                    for item in &pending {
                        self.children(item, &mut next);
                    }
                    out.extend(next.iter().cloned());
                    if out.len() > MAX_REPEAT {
                        return execution("descendants() produced too many items");
                    }
                    pending = next;
                }
                Ok(out)
            }
            // Utility
            "trace" => {
                arity(name, args, &[1, 2])?;
                Ok(input)
            }
            "now" | "today" | "timeOfDay" => {
                arity(name, args, &[0])?;
                one(Item::Temporal(match name {
                    "now" => Temporal::now(),
                    "today" => Temporal::today(),
                    _ => Temporal::time_of_day(),
                }))
            }
            "not" => {
                arity(name, args, &[0])?;
                // A single Integer 0 or 1 counts as the Boolean it converts to.
                if let [item] = input.as_slice()
                    && let Item::Integer(i @ (0 | 1)) = item.system().as_ref()
                {
                    return boolean(*i == 0);
                }
                match truth(&input)? {
                    Some(b) => boolean(!b),
                    None => none(),
                }
            }
            "aggregate" => {
                arity(name, args, &[1, 2])?;
                let mut total = self.arg(args, 1, frame)?;
                for (index, item) in input.iter().enumerate() {
                    let inner = Frame {
                        this: vec![item.clone()],
                        index: Some(index as i64),
                        total: Some(total),
                    };
                    total = self.eval(&args[0], std::slice::from_ref(item), &inner)?;
                }
                Ok(total)
            }
            // FHIR additions
            "extension" => {
                arity(name, args, &[1])?;
                let url = self.string_arg(name, args, 0, frame)?;
                let mut out = Vec::new();
                for item in &input {
                    let Item::Node(node) = item else { continue };
                    let mut found = Vec::new();
                    if let Some(sibling) = node.sibling {
                        self.member(
                            &Item::resource_like(sibling, "Element"),
                            "extension",
                            &mut found,
                        )?;
                    }
                    self.member(item, "extension", &mut found)?;
                    for extension in found {
                        let matches = match &extension {
                            Item::Node(n) => {
                                n.value.get("url").and_then(Value::as_str) == url.as_deref()
                            }
                            _ => false,
                        };
                        if matches {
                            out.push(extension);
                        }
                    }
                }
                Ok(out)
            }
            "hasValue" => {
                arity(name, args, &[0])?;
                boolean(matches!(
                    input.as_slice(),
                    [Item::Node(node)] if matches!(node.value.as_ref(), Value::String(_) | Value::Number(_) | Value::Bool(_))
                ))
            }
            "getValue" => {
                arity(name, args, &[0])?;
                Ok(match input.as_slice() {
                    [item @ Item::Node(node)] if !node.value.is_null() => {
                        match item.system().into_owned() {
                            Item::Node(_) => Vec::new(),
                            value => vec![value],
                        }
                    }
                    _ => Vec::new(),
                })
            }
            "resolve" => {
                arity(name, args, &[0])?;
                let mut out = Vec::new();
                for item in &input {
                    if let Some(resolved) = self.resolve(item) {
                        out.push(resolved);
                    }
                }
                Ok(out)
            }
            "conformsTo" => {
                arity(name, args, &[1])?;
                let url = self.string_arg(name, args, 0, frame)?;
                let Some(url) = url else { return none() };
                let Some(type_name) = url.strip_prefix("http://hl7.org/fhir/StructureDefinition/")
                else {
                    return execution(format!("conformsTo(): unknown profile {url}"));
                };
                let Some(item) = singleton(&input, name)? else {
                    return none();
                };
                boolean(
                    item.fhir_type()
                        .is_some_and(|t| self.model.is_subtype(t, type_name)),
                )
            }
            "htmlChecks" | "htmlchecks" => {
                arity(name, args, &[0])?;
                boolean(true)
            }
            "memberOf" => execution(
                "memberOf() needs a terminology service, which this evaluator does not have",
            ),
            _ => semantic(format!("unknown function {name}()")),
        }
    }

    fn convert(
        &self,
        name: &str,
        input: &[Item<'a>],
        args: &[Expr],
        to: impl Fn(&Item<'a>) -> Option<Item<'a>>,
    ) -> Outcome<'a> {
        arity(name, args, &[0])?;
        let Some(item) = singleton(input, name)? else {
            return Ok(Vec::new());
        };
        let converted = to(item);
        if name.starts_with("convertsTo") {
            boolean(converted.is_some())
        } else {
            Ok(converted.into_iter().collect())
        }
    }

    fn input_string(
        &self,
        name: &str,
        input: &[Item<'a>],
    ) -> Result<Option<String>, FhirPathError> {
        match singleton(input, name)? {
            None => Ok(None),
            Some(item) => match string_of(item) {
                Some(s) => Ok(Some(s)),
                None => execution(format!("{name}() needs a string, not {}", item.describe())),
            },
        }
    }

    /// A string function of the input with `count` string arguments; empty if any is empty.
    fn string_fn(
        &self,
        name: &str,
        input: &[Item<'a>],
        args: &[Expr],
        count: usize,
        frame: &Frame<'a>,
        apply: impl Fn(&str, &[Option<String>]) -> Option<Item<'a>>,
    ) -> Outcome<'a> {
        arity(name, args, &[count])?;
        let mut values = Vec::with_capacity(count);
        for index in 0..count {
            values.push(self.string_arg(name, args, index, frame)?);
        }
        let Some(s) = self.input_string(name, input)? else {
            return Ok(Vec::new());
        };
        Ok(apply(&s, &values).into_iter().collect())
    }

    /// The resource a Reference points at: a contained one (`#id`), an entry of the Bundle
    /// being evaluated, or else a stand-in that knows only its type and id, enough for
    /// `resolve() is Patient` in search expressions.
    fn resolve(&self, item: &Item<'a>) -> Option<Item<'a>> {
        let reference: Cow<'a, str> = match item {
            Item::Node(Node {
                value: Cow::Borrowed(value),
                ..
            }) => match value {
                Value::String(s) => Cow::Borrowed(s.as_str()),
                Value::Object(map) => Cow::Borrowed(map.get("reference")?.as_str()?),
                _ => return None,
            },
            Item::String(s) => Cow::Owned(s.clone()),
            _ => return None,
        };
        let root = match &self.env.resource {
            Item::Node(Node {
                value: Cow::Borrowed(root),
                ..
            }) => Some(*root),
            _ => None,
        };
        if let Some(id) = reference.strip_prefix('#') {
            let contained = root?.get("contained")?.as_array()?;
            let found = contained
                .iter()
                .find(|c| c.get("id").and_then(Value::as_str) == Some(id))?;
            return Some(Item::resource(found));
        }
        if let Some(entries) = root.and_then(|r| r.get("entry")).and_then(Value::as_array)
            && let Some(found) = entries.iter().find(|e| {
                e.get("fullUrl").and_then(Value::as_str) == Some(reference.as_ref())
                    || e.get("fullUrl")
                        .and_then(Value::as_str)
                        .is_some_and(|full| full.ends_with(&format!("/{reference}")))
            })
            && let Some(resource) = found.get("resource")
        {
            return Some(Item::resource(resource));
        }
        let path = reference.split(['?', '#']).next()?;
        let mut segments = path.rsplit('/');
        let mut id = segments.next()?;
        let mut type_name = segments.next()?;
        if type_name == "_history" {
            id = segments.next()?;
            type_name = segments.next()?;
        }
        if !is_resource_type(self.model, type_name) {
            return None;
        }
        // Type names are model strings, which live as long as the evaluation.
        let type_name: &'a str = self.model.type_def(type_name)?.name.as_str();
        Some(Item::Node(Node {
            value: Cow::Owned(serde_json::json!({"resourceType": type_name, "id": id})),
            sibling: None,
            type_name: Some(type_name),
            value_set: None,
        }))
    }
}

impl<'a> Item<'a> {
    /// A borrowed JSON object seen as an element of the given type.
    fn resource_like(value: &'a Value, type_name: &'a str) -> Item<'a> {
        Item::Node(Node {
            value: Cow::Borrowed(value),
            sibling: None,
            type_name: Some(type_name),
            value_set: None,
        })
    }
}
