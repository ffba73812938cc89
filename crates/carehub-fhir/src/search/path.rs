//! The part of FHIRPath that search parameter expressions of STU3 and R4 use, evaluated over FHIR
//! JSON with the element types of the version's model.
//!
//! Search parameter expressions are a small, fixed language: paths with choice types, unions,
//! `where` with equality or `resolve() is Type`, `as`/`is`/`ofType`, `extension(url)`,
//! `hasExtension(url)`, `exists()`, `first()`, indexers, `and`, `or`, `!=`. This evaluator covers
//! exactly those (every expression of both versions parses: a test checks it), compiled once and
//! evaluated on every write. Anything else is a parse error, reported for the parameter.

use std::borrow::Cow;

use serde_json::Value;

use crate::model::{Model, capitalise};

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub struct PathExpression {
    root: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// The input (`$this` at the start of an expression).
    This,
    /// `%resource` / `%context`.
    Resource,
    Member(Box<Expr>, String),
    Call(Box<Expr>, String, Vec<Expr>),
    Index(Box<Expr>, usize),
    Union(Box<Expr>, Box<Expr>),
    Is(Box<Expr>, String),
    As(Box<Expr>, String),
    Equals(Box<Expr>, Box<Expr>, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Literal(Value),
}

/// Why an expression could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at offset {offset}")]
pub struct PathError {
    /// What was wrong.
    pub message: String,
    /// Where in the text.
    pub offset: usize,
}

/// One result: an element of the input (with its FHIR type when known) or a computed value.
#[derive(Debug, Clone)]
pub struct PathItem<'a> {
    /// The JSON of the element.
    pub value: Cow<'a, Value>,
    /// Its FHIR type, or for backbone elements the element path.
    pub type_name: Option<Cow<'a, str>>,
    /// For a `code` with a required binding, the value set it is bound to.
    pub value_set: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(String),
    Variable(String),
    Symbol(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, PathError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    let error = |message: &str, offset: usize| PathError {
        message: message.to_owned(),
        offset,
    };
    while let Some(&b) = bytes.get(pos) {
        let start = pos;
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => pos += 1,
            b'\'' => {
                pos += 1;
                let mut value = String::new();
                loop {
                    match bytes.get(pos) {
                        None => return Err(error("unterminated string", start)),
                        Some(b'\'') => {
                            pos += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let escaped = text
                                .get(pos + 1..)
                                .and_then(|rest| rest.chars().next())
                                .ok_or_else(|| error("bad escape", pos))?;
                            value.push(escaped);
                            pos += 1 + escaped.len_utf8();
                        }
                        Some(_) => {
                            let c = text
                                .get(pos..)
                                .and_then(|rest| rest.chars().next())
                                .ok_or_else(|| error("bad text", pos))?;
                            value.push(c);
                            pos += c.len_utf8();
                        }
                    }
                }
                tokens.push((Token::Str(value), start));
            }
            b'`' => {
                let end = text
                    .get(pos + 1..)
                    .and_then(|rest| rest.find('`'))
                    .ok_or_else(|| error("unterminated identifier", start))?;
                tokens.push((Token::Ident(text[pos + 1..pos + 1 + end].to_owned()), start));
                pos += end + 2;
            }
            b'%' => {
                pos += 1;
                while bytes
                    .get(pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
                {
                    pos += 1;
                }
                tokens.push((Token::Variable(text[start + 1..pos].to_owned()), start));
            }
            b'0'..=b'9' => {
                while bytes
                    .get(pos)
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
                {
                    pos += 1;
                }
                tokens.push((Token::Number(text[start..pos].to_owned()), start));
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => {
                while bytes
                    .get(pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$')
                {
                    pos += 1;
                }
                tokens.push((Token::Ident(text[start..pos].to_owned()), start));
            }
            _ => {
                let symbol = ["!=", ".", "|", "(", ")", "[", "]", ",", "="]
                    .into_iter()
                    .find(|s| text[pos..].starts_with(s))
                    .ok_or_else(|| error("unexpected character", pos))?;
                tokens.push((Token::Symbol(symbol), start));
                pos += symbol.len();
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map(|(_, o)| *o)
            .unwrap_or(self.end)
    }

    fn error<T>(&self, message: &str) -> Result<T, PathError> {
        Err(PathError {
            message: message.to_owned(),
            offset: self.offset(),
        })
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(s)) if s == keyword) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, PathError> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, PathError> {
        let mut left = self.equality()?;
        while self.eat_keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.equality()?));
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<Expr, PathError> {
        let left = self.union()?;
        if self.eat_symbol("=") {
            return Ok(Expr::Equals(Box::new(left), Box::new(self.union()?), false));
        }
        if self.eat_symbol("!=") {
            return Ok(Expr::Equals(Box::new(left), Box::new(self.union()?), true));
        }
        Ok(left)
    }

    fn union(&mut self) -> Result<Expr, PathError> {
        let mut left = self.typed()?;
        while self.eat_symbol("|") {
            left = Expr::Union(Box::new(left), Box::new(self.typed()?));
        }
        Ok(left)
    }

    fn typed(&mut self) -> Result<Expr, PathError> {
        let mut left = self.postfix()?;
        loop {
            if self.eat_keyword("is") {
                left = Expr::Is(Box::new(left), self.type_name()?);
            } else if self.eat_keyword("as") {
                left = Expr::As(Box::new(left), self.type_name()?);
            } else {
                return Ok(left);
            }
        }
    }

    fn type_name(&mut self) -> Result<String, PathError> {
        match self.peek().cloned() {
            Some(Token::Ident(name)) => {
                self.pos += 1;
                let mut name = name;
                // Qualified names: `FHIR.Patient`, `System.String`.
                if self.eat_symbol(".") {
                    match self.peek().cloned() {
                        Some(Token::Ident(inner)) => {
                            self.pos += 1;
                            name = inner;
                        }
                        _ => return self.error("expected a type name"),
                    }
                }
                Ok(name)
            }
            _ => self.error("expected a type name"),
        }
    }

    fn postfix(&mut self) -> Result<Expr, PathError> {
        let mut expr = self.term()?;
        loop {
            if self.eat_symbol(".") {
                expr = self.invocation(expr)?;
            } else if self.eat_symbol("[") {
                let index = match self.peek().cloned() {
                    Some(Token::Number(n)) => n.parse::<usize>().map_err(|_| PathError {
                        message: "bad index".into(),
                        offset: self.offset(),
                    })?,
                    _ => return self.error("expected an index"),
                };
                self.pos += 1;
                if !self.eat_symbol("]") {
                    return self.error("expected ']'");
                }
                expr = Expr::Index(Box::new(expr), index);
            } else {
                return Ok(expr);
            }
        }
    }

    fn invocation(&mut self, target: Expr) -> Result<Expr, PathError> {
        let Some(Token::Ident(name)) = self.peek().cloned() else {
            return self.error("expected a name after '.'");
        };
        self.pos += 1;
        if self.eat_symbol("(") {
            let mut args = Vec::new();
            if !self.eat_symbol(")") {
                loop {
                    // Type arguments (`as(Quantity)`) are parsed as paths and read back as names.
                    args.push(self.or()?);
                    if self.eat_symbol(")") {
                        break;
                    }
                    if !self.eat_symbol(",") {
                        return self.error("expected ',' or ')'");
                    }
                }
            }
            return Ok(Expr::Call(Box::new(target), name, args));
        }
        Ok(Expr::Member(Box::new(target), name))
    }

    fn term(&mut self) -> Result<Expr, PathError> {
        match self.peek().cloned() {
            Some(Token::Symbol("(")) => {
                self.pos += 1;
                let inner = self.or()?;
                if !self.eat_symbol(")") {
                    return self.error("expected ')'");
                }
                Ok(inner)
            }
            Some(Token::Str(text)) => {
                self.pos += 1;
                Ok(Expr::Literal(Value::String(text)))
            }
            Some(Token::Number(text)) => {
                self.pos += 1;
                let number: Value = serde_json::from_str(&text).map_err(|_| PathError {
                    message: "bad number".into(),
                    offset: self.offset(),
                })?;
                Ok(Expr::Literal(number))
            }
            Some(Token::Variable(name)) => {
                self.pos += 1;
                match name.as_str() {
                    "resource" | "context" | "rootResource" => Ok(Expr::Resource),
                    _ => self.error("unknown variable"),
                }
            }
            Some(Token::Ident(name)) => {
                self.pos += 1;
                match name.as_str() {
                    "true" => Ok(Expr::Literal(Value::Bool(true))),
                    "false" => Ok(Expr::Literal(Value::Bool(false))),
                    "$this" => Ok(Expr::This),
                    _ if self.eat_symbol("(") => {
                        let mut args = Vec::new();
                        if !self.eat_symbol(")") {
                            loop {
                                args.push(self.or()?);
                                if self.eat_symbol(")") {
                                    break;
                                }
                                if !self.eat_symbol(",") {
                                    return self.error("expected ',' or ')'");
                                }
                            }
                        }
                        Ok(Expr::Call(Box::new(Expr::This), name, args))
                    }
                    _ => Ok(Expr::Member(Box::new(Expr::This), name)),
                }
            }
            _ => self.error("expected an expression"),
        }
    }
}

/// The functions this evaluator knows, with their argument counts.
const FUNCTIONS: [(&str, usize); 10] = [
    ("where", 1),
    ("resolve", 0),
    ("as", 1),
    ("is", 1),
    ("ofType", 1),
    ("extension", 1),
    ("hasExtension", 1),
    ("exists", 0),
    ("first", 0),
    ("empty", 0),
];

fn check_calls(expr: &Expr) -> Result<(), PathError> {
    let unknown = |name: &str| PathError {
        message: format!("function '{name}' is not supported"),
        offset: 0,
    };
    match expr {
        Expr::Call(target, name, args) => {
            match FUNCTIONS.iter().find(|(f, _)| f == name) {
                Some((_, arity)) if *arity == args.len() => {}
                _ => return Err(unknown(name)),
            }
            check_calls(target)?;
            args.iter().try_for_each(check_calls)
        }
        Expr::Member(inner, _)
        | Expr::Index(inner, _)
        | Expr::Is(inner, _)
        | Expr::As(inner, _) => check_calls(inner),
        Expr::Union(a, b) | Expr::Equals(a, b, _) | Expr::And(a, b) | Expr::Or(a, b) => {
            check_calls(a)?;
            check_calls(b)
        }
        Expr::This | Expr::Resource | Expr::Literal(_) => Ok(()),
    }
}

impl PathExpression {
    /// Compiles an expression.
    pub fn parse(text: &str) -> Result<PathExpression, PathError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            end: text.len(),
        };
        let root = parser.or()?;
        if parser.pos < parser.tokens.len() {
            return parser.error("unexpected text after the expression");
        }
        check_calls(&root)?;
        Ok(PathExpression { root })
    }

    /// Evaluates the expression on a resource.
    pub fn evaluate<'a>(&self, model: &Model, resource: &'a Value) -> Vec<PathItem<'a>> {
        let root = PathItem {
            value: Cow::Borrowed(resource),
            type_name: resource
                .get("resourceType")
                .and_then(Value::as_str)
                .map(Cow::Borrowed),
            value_set: None,
        };
        let context = Context {
            model,
            root: root.clone(),
        };
        context.eval(&self.root, std::slice::from_ref(&root))
    }
}

struct Context<'m, 'a> {
    model: &'m Model,
    root: PathItem<'a>,
}

fn boolean<'a>(value: bool) -> Vec<PathItem<'a>> {
    vec![PathItem {
        value: Cow::Owned(Value::Bool(value)),
        type_name: Some(Cow::Borrowed("boolean")),
        value_set: None,
    }]
}

/// The single boolean a collection stands for, if any.
fn truth(items: &[PathItem<'_>]) -> Option<bool> {
    match items {
        [] => None,
        [one] => Some(one.value.as_bool().unwrap_or(true)),
        _ => Some(true),
    }
}

fn type_name_of(value: &Value) -> Option<&str> {
    value.get("resourceType").and_then(Value::as_str)
}

impl<'a> Context<'_, 'a> {
    fn eval(&self, expr: &Expr, input: &[PathItem<'a>]) -> Vec<PathItem<'a>> {
        match expr {
            Expr::This => input.to_vec(),
            Expr::Resource => vec![self.root.clone()],
            Expr::Literal(value) => vec![PathItem {
                value: Cow::Owned(value.clone()),
                type_name: None,
                value_set: None,
            }],
            Expr::Member(target, name) => {
                // A leading type name (`Patient.name`) selects the resource when it is one.
                if **target == Expr::This
                    && name.starts_with(|c: char| c.is_ascii_uppercase())
                    && (self.model.type_def(name).is_some()
                        || name == "Resource"
                        || name == "DomainResource")
                {
                    return input
                        .iter()
                        .filter(|item| {
                            item.type_name
                                .as_deref()
                                .is_some_and(|t| self.model.is_subtype(t, name))
                        })
                        .cloned()
                        .collect();
                }
                let items = self.eval(target, input);
                let mut out = Vec::new();
                for item in &items {
                    self.member(item, name, &mut out);
                }
                out
            }
            Expr::Index(target, index) => self
                .eval(target, input)
                .into_iter()
                .nth(*index)
                .into_iter()
                .collect(),
            Expr::Union(a, b) => {
                let mut items = self.eval(a, input);
                for item in self.eval(b, input) {
                    if !items.iter().any(|existing| existing.value == item.value) {
                        items.push(item);
                    }
                }
                items
            }
            Expr::Is(target, type_name) => {
                let items = self.eval(target, input);
                match items.as_slice() {
                    [one] => boolean(self.item_is(one, type_name)),
                    _ => Vec::new(),
                }
            }
            // Search indexing applies `as` to each item (as `ofType`), which STU3 expressions
            // rely on when the input repeats.
            Expr::As(target, type_name) => self
                .eval(target, input)
                .into_iter()
                .filter(|item| self.item_is(item, type_name))
                .collect(),
            Expr::Equals(a, b, negate) => {
                let left = self.eval(a, input);
                let right = self.eval(b, input);
                if left.is_empty() || right.is_empty() {
                    return Vec::new();
                }
                let equal = left.len() == right.len()
                    && left.iter().zip(&right).all(|(l, r)| l.value == r.value);
                boolean(equal != *negate)
            }
            Expr::And(a, b) => match (truth(&self.eval(a, input)), truth(&self.eval(b, input))) {
                (Some(false), _) | (_, Some(false)) => boolean(false),
                (Some(true), Some(true)) => boolean(true),
                _ => Vec::new(),
            },
            Expr::Or(a, b) => match (truth(&self.eval(a, input)), truth(&self.eval(b, input))) {
                (Some(true), _) | (_, Some(true)) => boolean(true),
                (Some(false), Some(false)) => boolean(false),
                _ => Vec::new(),
            },
            Expr::Call(target, name, args) => {
                let items = self.eval(target, input);
                self.call(name, args, items)
            }
        }
    }

    fn item_is(&self, item: &PathItem<'_>, type_name: &str) -> bool {
        match item.type_name.as_deref() {
            Some(actual) => actual == type_name || self.model.is_subtype(actual, type_name),
            None => false,
        }
    }

    fn call(&self, name: &str, args: &[Expr], items: Vec<PathItem<'a>>) -> Vec<PathItem<'a>> {
        let type_arg = || match args.first() {
            Some(Expr::Member(target, name)) if **target == Expr::This => Some(name.as_str()),
            _ => None,
        };
        match name {
            "where" => {
                let Some(condition) = args.first() else {
                    return Vec::new();
                };
                items
                    .into_iter()
                    .filter(|item| {
                        truth(&self.eval(condition, std::slice::from_ref(item))) == Some(true)
                    })
                    .collect()
            }
            "resolve" => items
                .iter()
                .filter_map(|item| {
                    let reference = item
                        .value
                        .get("reference")
                        .and_then(Value::as_str)
                        .or_else(|| item.value.as_str())?;
                    let target = reference_type(reference)?;
                    Some(PathItem {
                        value: Cow::Owned(serde_json::json!({"resourceType": target})),
                        type_name: Some(Cow::Owned(target.to_owned())),
                        value_set: None,
                    })
                })
                .collect(),
            "as" | "ofType" => match type_arg() {
                Some(type_name) => items
                    .into_iter()
                    .filter(|item| self.item_is(item, type_name))
                    .collect(),
                None => Vec::new(),
            },
            "is" => match (type_arg(), items.as_slice()) {
                (Some(type_name), [one]) => boolean(self.item_is(one, type_name)),
                _ => Vec::new(),
            },
            "extension" | "hasExtension" => {
                let url = match args.first() {
                    Some(Expr::Literal(Value::String(url))) => url.clone(),
                    _ => return Vec::new(),
                };
                let mut found = Vec::new();
                for item in &items {
                    for extension in item
                        .value
                        .get("extension")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if extension.get("url").and_then(Value::as_str) == Some(url.as_str()) {
                            found.push(match &item.value {
                                Cow::Borrowed(value) => PathItem {
                                    value: Cow::Borrowed(extension_in(value, extension)),
                                    type_name: Some(Cow::Borrowed("Extension")),
                                    value_set: None,
                                },
                                Cow::Owned(_) => PathItem {
                                    value: Cow::Owned(extension.clone()),
                                    type_name: Some(Cow::Borrowed("Extension")),
                                    value_set: None,
                                },
                            });
                        }
                    }
                }
                if name == "hasExtension" {
                    boolean(!found.is_empty())
                } else {
                    found
                }
            }
            "exists" => boolean(!items.is_empty()),
            "empty" => boolean(items.is_empty()),
            "first" => items.into_iter().take(1).collect(),
            _ => Vec::new(),
        }
    }

    /// The children named `name` of an element, typed from the model.
    fn member(&self, item: &PathItem<'a>, name: &str, out: &mut Vec<PathItem<'a>>) {
        let Some(object) = item.value.as_object() else {
            return;
        };
        let parent_type = item.type_name.as_deref();
        let element = parent_type
            .and_then(|t| self.model.type_def(t))
            .and_then(|t| t.elements.iter().find(|e| e.name == name));
        let mut push = |value: &Value, type_name: Option<String>, value_set: Option<&String>| {
            let values: Vec<&Value> = match value {
                Value::Array(list) => list.iter().collect(),
                single => vec![single],
            };
            for value in values {
                if value.is_null() {
                    continue;
                }
                let resolved = match type_name.as_deref() {
                    Some("Resource") | None if type_name_of(value).is_some() => {
                        type_name_of(value).map(str::to_owned)
                    }
                    _ => type_name.clone(),
                };
                let child = match &item.value {
                    Cow::Borrowed(parent) => child_ref(parent, value)
                        .map(Cow::Borrowed)
                        .unwrap_or_else(|| Cow::Owned(value.clone())),
                    Cow::Owned(_) => Cow::Owned(value.clone()),
                };
                out.push(PathItem {
                    value: child,
                    type_name: resolved.map(Cow::Owned),
                    value_set: value_set.cloned(),
                });
            }
        };
        match element {
            Some(element) if element.choice => {
                for code in &element.types {
                    if let Some(value) = object.get(&format!("{name}{}", capitalise(code))) {
                        push(value, Some(code.clone()), None);
                    }
                }
            }
            Some(element) => {
                if let Some(value) = object.get(name) {
                    let type_name = element
                        .element_type
                        .clone()
                        .or_else(|| element.types.first().cloned());
                    let value_set = element
                        .required_binding
                        .as_ref()
                        .filter(|_| type_name.as_deref() == Some("code"));
                    push(value, type_name, value_set);
                }
            }
            None => {
                if let Some(value) = object.get(name) {
                    push(value, None, None);
                    return;
                }
                // Without a model entry, find a choice by its key: `valueQuantity` for `value`.
                for (key, value) in object {
                    if let Some(suffix) = key.strip_prefix(name)
                        && suffix.starts_with(|c: char| c.is_ascii_uppercase())
                    {
                        let code = if self.model.type_def(suffix).is_some() {
                            suffix.to_owned()
                        } else {
                            lower_first(suffix)
                        };
                        push(value, Some(code), None);
                    }
                }
            }
        }
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Finds `child` (a value inside `parent`) by identity, so results borrow from the resource.
fn child_ref<'a>(parent: &'a Value, child: &Value) -> Option<&'a Value> {
    let object = parent.as_object()?;
    for value in object.values() {
        if std::ptr::eq(value, child) {
            return Some(value);
        }
        if let Value::Array(list) = value
            && let Some(found) = list.iter().find(|v| std::ptr::eq(*v, child))
        {
            return Some(found);
        }
    }
    None
}

fn extension_in<'a>(parent: &'a Value, extension: &Value) -> &'a Value {
    parent
        .get("extension")
        .and_then(Value::as_array)
        .and_then(|list| list.iter().find(|v| std::ptr::eq(*v, extension)))
        .unwrap_or(parent)
}

/// The target type of a reference string: `Patient/1`, `http://x/fhir/Patient/1`,
/// `Patient/1/_history/2`.
fn reference_type(reference: &str) -> Option<&str> {
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return None;
    }
    let path = reference.split('?').next().unwrap_or(reference);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let id_position = match segments.iter().rposition(|s| *s == "_history") {
        Some(history) => history.checked_sub(1)?,
        None => segments.len().checked_sub(1)?,
    };
    let type_segment = segments.get(id_position.checked_sub(1)?)?;
    type_segment
        .starts_with(|c: char| c.is_ascii_uppercase())
        .then_some(*type_segment)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::FhirVersion;

    fn eval(
        version: FhirVersion,
        expression: &str,
        resource: &Value,
    ) -> Vec<(Value, Option<String>)> {
        let parsed =
            PathExpression::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
        parsed
            .evaluate(version.model(), resource)
            .into_iter()
            .map(|item| {
                (
                    item.value.into_owned(),
                    item.type_name.map(|t| t.into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn every_search_expression_of_both_versions_compiles() {
        for version in FhirVersion::ALL {
            let model = version.model();
            for resource_type in model.resource_types() {
                for param in model.search_params(resource_type) {
                    if let Some(expression) = &param.expression {
                        assert!(
                            PathExpression::parse(expression).is_ok(),
                            "{version} {}: {expression}: {:?}",
                            param.code,
                            PathExpression::parse(expression)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn paths_choices_unions_and_where() {
        let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": 5, "unit": "mg"},
            "subject": {"reference": "Patient/1"},
            "performer": [{"reference": "Practitioner/2"}, {"reference": "Patient/3"}]});
        let found = eval(
            FhirVersion::R4,
            "Observation.value as Quantity",
            &observation,
        );
        assert_eq!(
            found,
            vec![(json!({"value": 5, "unit": "mg"}), Some("Quantity".into()))]
        );
        assert!(
            eval(
                FhirVersion::R4,
                "(Observation.value as CodeableConcept)",
                &observation
            )
            .is_empty()
        );
        let found = eval(
            FhirVersion::R4,
            "Observation.performer.where(resolve() is Patient)",
            &observation,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0["reference"], "Patient/3");
        assert_eq!(found[0].1.as_deref(), Some("Reference"));
        let found = eval(
            FhirVersion::R4,
            "Observation.subject | Observation.performer",
            &observation,
        );
        assert_eq!(found.len(), 3);
        assert!(
            eval(FhirVersion::R4, "Patient.name", &observation).is_empty(),
            "type filter"
        );
    }

    #[test]
    fn booleans_indexers_and_extensions() {
        let patient = json!({"resourceType": "Patient", "deceasedDateTime": "2020-01-01",
            "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}],
            "extension": [{"url": "http://x", "valueString": "y"}]});
        let found = eval(
            FhirVersion::R4,
            "Patient.deceased.exists() and Patient.deceased != false",
            &patient,
        );
        assert_eq!(found[0].0, json!(true));
        let found = eval(
            FhirVersion::R4,
            "Patient.telecom.where(system='email')",
            &patient,
        );
        assert_eq!(found[0].0["value"], "a@b");
        let found = eval(
            FhirVersion::R4,
            "Patient.extension('http://x').value",
            &patient,
        );
        assert_eq!(found[0].0, json!("y"));
        let bundle = json!({"resourceType": "Bundle", "type": "document", "entry": [{"resource": {"resourceType": "Composition"}}]});
        let found = eval(FhirVersion::R4, "Bundle.entry[0].resource", &bundle);
        assert_eq!(found[0].1.as_deref(), Some("Composition"));
    }

    #[test]
    fn reference_types() {
        assert_eq!(reference_type("Patient/1"), Some("Patient"));
        assert_eq!(
            reference_type("http://x.org/fhir/Patient/1/_history/2"),
            Some("Patient")
        );
        assert_eq!(reference_type("#contained"), None);
        assert_eq!(reference_type("1"), None);
    }
}
