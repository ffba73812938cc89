//! FHIRPath text to a syntax tree: a tokenizer and a precedence-climbing parser that follows the
//! grammar of FHIRPath 2.0 (N1), operators from tightest to loosest:
//! `.` `[]` | unary `+ -` | `* / div mod` | `+ - &` | `is as` | `|` | `< > <= >=` |
//! `= ~ != !~` | `in contains` | `and` | `or xor` | `implies`.

use rust_decimal::Decimal;

use super::FhirPathError;
use super::value::{Quantity, Temporal, TemporalKind};

/// A literal written in the expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Boolean(bool),
    String(String),
    Integer(i64),
    Decimal(Decimal),
    Temporal(Temporal),
    Quantity(Quantity),
}

/// A type named in `is`, `as`, `ofType`: `Patient`, `FHIR.Patient`, `System.Boolean`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeSpecifier {
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Multiply,
    Divide,
    Div,
    Mod,
    Add,
    Subtract,
    Concatenate,
    Union,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    Equal,
    Equivalent,
    NotEqual,
    NotEquivalent,
    In,
    Contains,
    And,
    Or,
    Xor,
    Implies,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `{}`
    Empty,
    Literal(Literal),
    /// `$this`
    This,
    /// `$index`
    Index,
    /// `$total`
    Total,
    /// `%name`
    Variable(String),
    /// A name at the start of a path: a member of the input, or a type name selecting it.
    Identifier(String),
    /// `target.name`
    Member(Box<Expr>, String),
    /// `target.name(args)`, or `name(args)` on the input when there is no target.
    Call(Option<Box<Expr>>, String, Vec<Expr>),
    /// `target[index]`
    Indexer(Box<Expr>, Box<Expr>),
    /// Unary minus (`true`) or plus (`false`).
    Negate(Box<Expr>, bool),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Is(Box<Expr>, TypeSpecifier),
    As(Box<Expr>, TypeSpecifier),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// A back-quoted identifier: never a keyword.
    Delimited(String),
    Str(String),
    Number(String),
    DateTime(String),
    Variable(String),
    Symbol(&'static str),
}

const SYMBOLS: [&str; 20] = [
    "<=", ">=", "!=", "!~", ".", "[", "]", "(", ")", "{", "}", ",", "+", "-", "*", "/", "&", "|",
    "<", ">",
];

fn syntax(message: impl Into<String>, offset: usize) -> FhirPathError {
    FhirPathError::Syntax {
        message: message.into(),
        offset,
    }
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, FhirPathError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    while let Some(&b) = bytes.get(pos) {
        let start = pos;
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => pos += 1,
            b'/' if bytes.get(pos + 1) == Some(&b'/') => {
                while bytes.get(pos).is_some_and(|c| *c != b'\n') {
                    pos += 1;
                }
            }
            b'/' if bytes.get(pos + 1) == Some(&b'*') => {
                let end = text[pos + 2..]
                    .find("*/")
                    .ok_or_else(|| syntax("unterminated comment", start))?;
                pos += end + 4;
            }
            b'\'' | b'`' => {
                let (value, next) = quoted(text, pos, b)?;
                pos = next;
                tokens.push((
                    if b == b'\'' {
                        Token::Str(value)
                    } else {
                        Token::Delimited(value)
                    },
                    start,
                ));
            }
            b'@' => {
                pos += 1;
                // A '.' belongs to the literal only as a fraction: `@2015.is(Date)` is a call.
                while bytes.get(pos).is_some_and(|c| {
                    c.is_ascii_digit()
                        || matches!(c, b'-' | b':' | b'T' | b'Z' | b'+')
                        || (*c == b'.' && bytes.get(pos + 1).is_some_and(u8::is_ascii_digit))
                }) {
                    pos += 1;
                }
                tokens.push((Token::DateTime(text[start + 1..pos].to_owned()), start));
            }
            b'%' => {
                pos += 1;
                if bytes.get(pos) == Some(&b'`') || bytes.get(pos) == Some(&b'\'') {
                    let (value, next) = quoted(text, pos, bytes[pos])?;
                    pos = next;
                    tokens.push((Token::Variable(value), start));
                } else {
                    while bytes
                        .get(pos)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    {
                        pos += 1;
                    }
                    if pos == start + 1 {
                        return Err(syntax("expected a variable name after '%'", start));
                    }
                    tokens.push((Token::Variable(text[start + 1..pos].to_owned()), start));
                }
            }
            b'0'..=b'9' => {
                while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
                    pos += 1;
                }
                // A fraction needs a digit after the point: `1.convertsToInteger()` is a call.
                if bytes.get(pos) == Some(&b'.')
                    && bytes.get(pos + 1).is_some_and(u8::is_ascii_digit)
                {
                    pos += 1;
                    while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
                        pos += 1;
                    }
                }
                tokens.push((Token::Number(text[start..pos].to_owned()), start));
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => {
                pos += 1;
                while bytes
                    .get(pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    pos += 1;
                }
                tokens.push((Token::Ident(text[start..pos].to_owned()), start));
            }
            b'=' => {
                tokens.push((Token::Symbol("="), start));
                pos += 1;
            }
            b'~' => {
                tokens.push((Token::Symbol("~"), start));
                pos += 1;
            }
            _ => {
                let symbol = SYMBOLS
                    .into_iter()
                    .find(|s| text[pos..].starts_with(s))
                    .ok_or_else(|| syntax("unexpected character", pos))?;
                tokens.push((Token::Symbol(symbol), start));
                pos += symbol.len();
            }
        }
    }
    Ok(tokens)
}

/// Reads a quoted string or identifier starting at `start`, returning its value and the offset
/// after the closing quote.
fn quoted(text: &str, start: usize, quote: u8) -> Result<(String, usize), FhirPathError> {
    let mut value = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c as u32 == u32::from(quote) => return Ok((value, start + 1 + i + 1)),
            '\\' => {
                let (_, escaped) = chars
                    .next()
                    .ok_or_else(|| syntax("unterminated escape", start + 1 + i))?;
                match escaped {
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    't' => value.push('\t'),
                    'f' => value.push('\u{c}'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                        let code = Some(hex.as_str())
                            .filter(|h| h.len() == 4 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .and_then(char::from_u32)
                            .ok_or_else(|| syntax("bad \\u escape", start + 1 + i))?;
                        value.push(code);
                    }
                    '\'' | '"' | '`' | '\\' | '/' => value.push(escaped),
                    _ => return Err(syntax("unknown escape", start + 1 + i)),
                }
            }
            c => value.push(c),
        }
    }
    Err(syntax("unterminated string", start))
}

const CALENDAR_UNITS: [&str; 16] = [
    "year",
    "years",
    "month",
    "months",
    "week",
    "weeks",
    "day",
    "days",
    "hour",
    "hours",
    "minute",
    "minutes",
    "second",
    "seconds",
    "millisecond",
    "milliseconds",
];

pub(crate) fn parse(text: &str) -> Result<Expr, FhirPathError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: text.len(),
        depth: 0,
    };
    let expr = parser.expression(0)?;
    if parser.pos < parser.tokens.len() {
        return Err(syntax(
            "unexpected text after the expression",
            parser.offset(),
        ));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
}

/// Binding power of infix operators, loosest first.
fn infix(token: &Token) -> Option<(u8, Option<BinaryOp>)> {
    let op = match token {
        Token::Symbol(s) => match *s {
            "*" => (9, Some(BinaryOp::Multiply)),
            "/" => (9, Some(BinaryOp::Divide)),
            "+" => (8, Some(BinaryOp::Add)),
            "-" => (8, Some(BinaryOp::Subtract)),
            "&" => (8, Some(BinaryOp::Concatenate)),
            "|" => (6, Some(BinaryOp::Union)),
            "<" => (5, Some(BinaryOp::Less)),
            ">" => (5, Some(BinaryOp::Greater)),
            "<=" => (5, Some(BinaryOp::LessOrEqual)),
            ">=" => (5, Some(BinaryOp::GreaterOrEqual)),
            "=" => (4, Some(BinaryOp::Equal)),
            "~" => (4, Some(BinaryOp::Equivalent)),
            "!=" => (4, Some(BinaryOp::NotEqual)),
            "!~" => (4, Some(BinaryOp::NotEquivalent)),
            _ => return None,
        },
        Token::Ident(word) => match word.as_str() {
            "div" => (9, Some(BinaryOp::Div)),
            "mod" => (9, Some(BinaryOp::Mod)),
            // `is` and `as` take a type, not an expression.
            "is" | "as" => (7, None),
            "in" => (3, Some(BinaryOp::In)),
            "contains" => (3, Some(BinaryOp::Contains)),
            "and" => (2, Some(BinaryOp::And)),
            "or" => (1, Some(BinaryOp::Or)),
            "xor" => (1, Some(BinaryOp::Xor)),
            "implies" => (0, Some(BinaryOp::Implies)),
            _ => return None,
        },
        _ => return None,
    };
    Some(op)
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 200;

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

    fn error<T>(&self, message: &str) -> Result<T, FhirPathError> {
        Err(syntax(message, self.offset()))
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), FhirPathError> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            self.error(&format!("expected '{symbol}'"))
        }
    }

    fn expression(&mut self, min_power: u8) -> Result<Expr, FhirPathError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error("expression nested too deeply");
        }
        let mut left = self.unary()?;
        while let Some((power, op)) = self.peek().and_then(infix) {
            if power < min_power {
                break;
            }
            let word = match self.peek() {
                Some(Token::Ident(word)) => Some(word.clone()),
                _ => None,
            };
            self.pos += 1;
            left = match op {
                Some(op) => {
                    let right = self.expression(power + 1)?;
                    Expr::Binary(op, Box::new(left), Box::new(right))
                }
                None => {
                    let spec = self.type_specifier()?;
                    if word.as_deref() == Some("is") {
                        Expr::Is(Box::new(left), spec)
                    } else {
                        Expr::As(Box::new(left), spec)
                    }
                }
            };
        }
        self.depth -= 1;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FhirPathError> {
        if self.eat_symbol("-") {
            return Ok(Expr::Negate(Box::new(self.unary()?), true));
        }
        if self.eat_symbol("+") {
            return Ok(Expr::Negate(Box::new(self.unary()?), false));
        }
        self.postfix()
    }

    fn identifier(&mut self) -> Result<String, FhirPathError> {
        match self.peek().cloned() {
            Some(Token::Ident(name) | Token::Delimited(name)) => {
                self.pos += 1;
                Ok(name)
            }
            _ => self.error("expected a name"),
        }
    }

    fn type_specifier(&mut self) -> Result<TypeSpecifier, FhirPathError> {
        let first = self.identifier()?;
        if self.eat_symbol(".") {
            let name = self.identifier()?;
            return Ok(TypeSpecifier {
                namespace: Some(first),
                name,
            });
        }
        Ok(TypeSpecifier {
            namespace: None,
            name: first,
        })
    }

    fn arguments(&mut self) -> Result<Vec<Expr>, FhirPathError> {
        let mut args = Vec::new();
        if self.eat_symbol(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expression(0)?);
            if self.eat_symbol(")") {
                return Ok(args);
            }
            self.expect_symbol(",")?;
        }
    }

    fn postfix(&mut self) -> Result<Expr, FhirPathError> {
        let mut expr = self.term()?;
        loop {
            if self.eat_symbol(".") {
                let name = self.identifier()?;
                if self.eat_symbol("(") {
                    let args = self.arguments()?;
                    expr = Expr::Call(Some(Box::new(expr)), name, args);
                } else {
                    expr = Expr::Member(Box::new(expr), name);
                }
            } else if self.eat_symbol("[") {
                let index = self.expression(0)?;
                self.expect_symbol("]")?;
                expr = Expr::Indexer(Box::new(expr), Box::new(index));
            } else {
                return Ok(expr);
            }
        }
    }

    fn term(&mut self) -> Result<Expr, FhirPathError> {
        let offset = self.offset();
        let Some(token) = self.peek().cloned() else {
            return self.error("expected an expression");
        };
        self.pos += 1;
        match token {
            Token::Symbol("(") => {
                let inner = self.expression(0)?;
                self.expect_symbol(")")?;
                Ok(inner)
            }
            Token::Symbol("{") => {
                self.expect_symbol("}")?;
                Ok(Expr::Empty)
            }
            Token::Str(value) => Ok(Expr::Literal(Literal::String(value))),
            Token::Number(text) => self.number(&text, offset),
            Token::DateTime(text) => Temporal::parse_literal(&text)
                .map(|t| Expr::Literal(Literal::Temporal(t)))
                .ok_or_else(|| syntax(format!("invalid date/time literal @{text}"), offset)),
            Token::Variable(name) => Ok(Expr::Variable(name)),
            Token::Delimited(name) => self.name_or_call(name),
            Token::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Literal(Literal::Boolean(true))),
                "false" => Ok(Expr::Literal(Literal::Boolean(false))),
                "$this" => Ok(Expr::This),
                "$index" => Ok(Expr::Index),
                "$total" => Ok(Expr::Total),
                w if w.starts_with('$') => Err(syntax(format!("unknown {w}"), offset)),
                _ => self.name_or_call(word),
            },
            Token::Symbol(s) => Err(syntax(format!("unexpected '{s}'"), offset)),
        }
    }

    fn name_or_call(&mut self, name: String) -> Result<Expr, FhirPathError> {
        if self.eat_symbol("(") {
            let args = self.arguments()?;
            return Ok(Expr::Call(None, name, args));
        }
        Ok(Expr::Identifier(name))
    }

    fn number(&mut self, text: &str, offset: usize) -> Result<Expr, FhirPathError> {
        let amount =
            Decimal::from_str_exact(text).map_err(|_| syntax("number out of range", offset))?;
        // Beyond the 32-bit Integer range a literal is a Decimal.
        let value = match text.parse::<i32>() {
            Ok(value) if !text.contains('.') => Literal::Integer(i64::from(value)),
            _ => Literal::Decimal(amount),
        };
        // A number followed by a unit is a quantity: `4 'mg'`, `3 days`.
        let unit = match self.peek() {
            Some(Token::Str(unit)) => Some(unit.clone()),
            Some(Token::Ident(word)) if CALENDAR_UNITS.contains(&word.as_str()) => {
                Some(word.clone())
            }
            _ => None,
        };
        if let Some(unit) = unit {
            self.pos += 1;
            return Ok(Expr::Literal(Literal::Quantity(Quantity::new(
                amount, unit,
            ))));
        }
        Ok(Expr::Literal(value))
    }
}

impl Temporal {
    /// Parses the text after `@` in a literal: `2024-01-02`, `2024-01-02T10:00:00Z`, `T10:00`.
    pub(crate) fn parse_literal(text: &str) -> Option<Temporal> {
        if let Some(time) = text.strip_prefix('T') {
            return Temporal::parse(time, TemporalKind::Time);
        }
        if let Some(date) = text.strip_suffix('T') {
            return Temporal::parse(date, TemporalKind::DateTime);
        }
        let kind = if text.contains('T') {
            TemporalKind::DateTime
        } else {
            TemporalKind::Date
        };
        Temporal::parse(text, kind)
    }
}
