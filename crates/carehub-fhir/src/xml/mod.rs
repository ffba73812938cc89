//! FHIR XML in and out, as the other wire format a FHIR server must speak beside JSON.
//!
//! carehub keeps every resource as the FHIR JSON `serde_json::Value` it stores and serves, so
//! XML is a conversion at the edge: [`to_xml`] writes a JSON resource as FHIR XML and
//! [`from_xml`] reads FHIR XML into the JSON form, following the rules of the specification's
//! XML page (R4 and STU3 share them):
//!
//! - the root element is the resource type, in the namespace `http://hl7.org/fhir`;
//! - elements appear in the order of the definitions, which XML needs and JSON does not, so
//!   the order comes from [`crate::model`], never from the JSON key order;
//! - primitives are `<name value="..."/>`, their `id` and extensions (JSON's `_name` sibling,
//!   an array aligned with the values for repeating primitives) sit on the same element;
//! - `Element.id` and `Extension.url` are attributes; `Resource.id` is an element;
//! - resources inside resources (`contained`, `Bundle.entry.resource`...) are wrapped in an
//!   element named after the resource type;
//! - the narrative `div` is XHTML in its own namespace, carried in JSON as a string of markup.
//!
//! Reading is strict about what could be ambiguous or dangerous: document type declarations are
//! refused outright (no entity is ever expanded, so XXE and "billion laughs" cannot happen),
//! nesting is bounded by [`MAX_DEPTH`], and elements must come in definition order — an
//! out-of-order element is rejected rather than silently reordered, since the specification
//! makes order part of validity and a sender that gets it wrong should hear so. Comments and processing instructions are dropped, except inside the narrative,
//! whose markup JSON carries as it is.
//!
//! Both directions use quick-xml's streaming event API; the only tree built is the output.
//!
//! [`to_xml_in_key_order`] and [`from_xml_untyped`] apply the same rules to a version carehub
//! has no definitions for (DSTU2, for GP Connect Access Record HTML): element order comes from
//! the JSON key order and repeating elements from the caller (see `untyped.rs`).

mod narrative;
mod read;
mod untyped;
mod write;

pub use untyped::{from_xml_untyped, to_xml_in_key_order};

use std::fmt;

use serde_json::Value;

use crate::model::data::{ElementDef, TypeDef, TypeKind};
use crate::model::{FhirVersion, Model};

/// The namespace of every FHIR element.
pub const FHIR_NAMESPACE: &str = "http://hl7.org/fhir";

/// The namespace of the narrative's XHTML.
pub const XHTML_NAMESPACE: &str = "http://www.w3.org/1999/xhtml";

/// How deeply XML elements may nest (counting every element, the narrative's XHTML included)
/// before a document is refused. Real resources stay far below this (the deepest of the 5,306
/// official R4 examples nests 19 levels); the bound keeps the recursive reader and writer on a
/// small, fixed stack whatever the input.
pub const MAX_DEPTH: usize = 100;

/// Writes a JSON resource as compact FHIR XML (no XML declaration, no indentation).
pub fn to_xml(version: FhirVersion, resource: &Value) -> Result<String, XmlError> {
    write::write_resource(version.model(), resource, false)
}

/// Writes a JSON resource as FHIR XML indented by two spaces, for people to read.
pub fn to_xml_pretty(version: FhirVersion, resource: &Value) -> Result<String, XmlError> {
    write::write_resource(version.model(), resource, true)
}

/// Reads a FHIR XML resource into its JSON form.
pub fn from_xml(version: FhirVersion, text: &str) -> Result<Value, XmlError> {
    read::read_resource(version.model(), text)
}

/// Where in the XML text a problem was found, for messages. Absent when converting JSON to XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextPosition(Option<(usize, usize)>);

impl TextPosition {
    /// No position (the problem is in JSON input, or the position is unknown).
    pub const NONE: TextPosition = TextPosition(None);

    /// The 1-based line and column (in characters), if known.
    pub fn line_column(self) -> Option<(usize, usize)> {
        self.0
    }

    /// The line and column of a byte offset into `text`. Works on bytes so that an offset
    /// inside a multi-byte character (never expected) cannot panic.
    pub(crate) fn of_offset(text: &str, offset: u64) -> TextPosition {
        let bytes = text.as_bytes();
        let end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let before = &bytes[..end];
        let line = 1 + before.iter().filter(|&&byte| byte == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |newline| newline + 1);
        // Count characters, not bytes: UTF-8 continuation bytes are 0b10xx_xxxx.
        let column = 1 + before[line_start..]
            .iter()
            .filter(|&&byte| byte & 0xC0 != 0x80)
            .count();
        TextPosition(Some((line, column)))
    }
}

impl fmt::Display for TextPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, " (line {line}, column {column})"),
            None => Ok(()),
        }
    }
}

/// Why a resource could not be converted. Every variant that concerns an element names it by a
/// FHIRPath-like location (`Patient.name[0].given[1]`, nested resources as
/// `Bundle.entry[0].resource.ofType(Patient)`), and XML input problems carry the line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The text is not well-formed XML.
    #[error("not well-formed XML{at}: {message}")]
    Malformed {
        /// What the XML parser objected to.
        message: String,
        /// Where.
        at: TextPosition,
    },
    /// The document has a document type declaration. Refused so that no entity can ever be
    /// defined or expanded (XXE, "billion laughs"); FHIR XML never needs one.
    #[error("document type declarations are not allowed in FHIR XML{at}")]
    DoctypeNotAllowed {
        /// Where.
        at: TextPosition,
    },
    /// An element in the wrong namespace: FHIR elements must be in `http://hl7.org/fhir`, the
    /// narrative `div` in `http://www.w3.org/1999/xhtml`.
    #[error("{path} is in namespace '{found}' but must be in '{expected}'{at}")]
    WrongNamespace {
        /// The element.
        path: String,
        /// The namespace it is in (empty when none).
        found: String,
        /// The namespace it must be in.
        expected: &'static str,
        /// Where.
        at: TextPosition,
    },
    /// The root element, a nested resource or a JSON `resourceType` names no concrete resource
    /// type of this FHIR version.
    #[error("{path}: '{name}' is not a resource type of FHIR {version}{at}")]
    UnknownResourceType {
        /// Where the resource is (`(root)` for the document element).
        path: String,
        /// The name found.
        name: String,
        /// The version converted.
        version: FhirVersion,
        /// Where.
        at: TextPosition,
    },
    /// An element (XML) or property (JSON) that the definitions do not have at this place.
    #[error("unknown element {path}{at}")]
    UnknownElement {
        /// The unknown element, under its parent's path.
        path: String,
        /// Where.
        at: TextPosition,
    },
    /// An XML attribute that FHIR does not define on this element.
    #[error("unknown attribute '{name}' on {path}{at}")]
    UnknownAttribute {
        /// The element carrying it.
        path: String,
        /// The attribute as written.
        name: String,
        /// Where.
        at: TextPosition,
    },
    /// A `value` attribute on an element of complex type, which holds children instead.
    #[error("{path} is of complex type {type_name} and cannot have a value attribute{at}")]
    ValueOnComplexType {
        /// The element.
        path: String,
        /// Its type.
        type_name: String,
        /// Where.
        at: TextPosition,
    },
    /// An element that may appear at most once appears again (or a second type of a choice).
    #[error("{path} may appear only once{at}")]
    Repeated {
        /// The repeated element.
        path: String,
        /// Where the second occurrence is.
        at: TextPosition,
    },
    /// An element that comes before one that precedes it in the definitions. FHIR XML requires
    /// definition order; this reader rejects rather than reorders.
    #[error("{path} is out of order: it must come before {after}{at}")]
    OutOfOrder {
        /// The misplaced element.
        path: String,
        /// The element name already seen that it should have preceded.
        after: String,
        /// Where.
        at: TextPosition,
    },
    /// A primitive value that its type does not allow (a boolean that is not `true`/`false`, a
    /// number that is not a number, a character XML cannot carry), or a JSON value of the wrong
    /// kind for its element.
    #[error("invalid value at {path}: {message}{at}")]
    InvalidValue {
        /// The element.
        path: String,
        /// What is wrong.
        message: String,
        /// Where.
        at: TextPosition,
    },
    /// An element with neither a value nor children, which FHIR forbids and JSON cannot express.
    #[error("{path} has no value and no children{at}")]
    EmptyElement {
        /// The element.
        path: String,
        /// Where.
        at: TextPosition,
    },
    /// Text where FHIR allows only elements (FHIR puts all data in `value` attributes).
    #[error("unexpected text in {path}{at}")]
    UnexpectedText {
        /// The element containing the text.
        path: String,
        /// Where.
        at: TextPosition,
    },
    /// Elements nested deeper than [`MAX_DEPTH`].
    #[error("{path} nests deeper than {limit} elements{at}")]
    TooDeep {
        /// The element at which the limit was passed.
        path: String,
        /// The limit.
        limit: usize,
        /// Where.
        at: TextPosition,
    },
    /// The narrative `div` is not acceptable XHTML: not a single well-formed `div` element,
    /// undefined entities, namespace prefixes, or elements outside the XHTML namespace.
    #[error("invalid narrative at {path}: {message}{at}")]
    InvalidNarrative {
        /// The `div` element.
        path: String,
        /// What is wrong.
        message: String,
        /// Where.
        at: TextPosition,
    },
    /// The JSON to write has the wrong shape for FHIR JSON at this place: an array for a single
    /// element, an object for a primitive, a `_name` array misaligned with its values...
    #[error("invalid FHIR JSON at {path}: {message}")]
    InvalidJson {
        /// The property.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl XmlError {
    /// The FHIRPath-like location of the element at fault, when the error concerns one.
    pub fn path(&self) -> Option<&str> {
        match self {
            XmlError::Malformed { .. } | XmlError::DoctypeNotAllowed { .. } => None,
            XmlError::WrongNamespace { path, .. }
            | XmlError::UnknownResourceType { path, .. }
            | XmlError::UnknownElement { path, .. }
            | XmlError::UnknownAttribute { path, .. }
            | XmlError::ValueOnComplexType { path, .. }
            | XmlError::Repeated { path, .. }
            | XmlError::OutOfOrder { path, .. }
            | XmlError::InvalidValue { path, .. }
            | XmlError::EmptyElement { path, .. }
            | XmlError::UnexpectedText { path, .. }
            | XmlError::TooDeep { path, .. }
            | XmlError::InvalidNarrative { path, .. }
            | XmlError::InvalidJson { path, .. } => Some(path),
        }
    }

    /// Where in the XML text the problem is, when the input was XML.
    pub fn position(&self) -> TextPosition {
        match self {
            XmlError::Malformed { at, .. }
            | XmlError::DoctypeNotAllowed { at }
            | XmlError::WrongNamespace { at, .. }
            | XmlError::UnknownResourceType { at, .. }
            | XmlError::UnknownElement { at, .. }
            | XmlError::UnknownAttribute { at, .. }
            | XmlError::ValueOnComplexType { at, .. }
            | XmlError::Repeated { at, .. }
            | XmlError::OutOfOrder { at, .. }
            | XmlError::InvalidValue { at, .. }
            | XmlError::EmptyElement { at, .. }
            | XmlError::UnexpectedText { at, .. }
            | XmlError::TooDeep { at, .. }
            | XmlError::InvalidNarrative { at, .. } => *at,
            XmlError::InvalidJson { .. } => TextPosition::NONE,
        }
    }
}

/// One step of the location of the element being converted. Both directions keep a stack of
/// these and format it only when an error needs it, so the happy path builds no strings.
#[derive(Debug, Clone, Copy)]
enum Step<'m> {
    /// The resource at the root, or one nested in an element (`.ofType(Patient)`).
    Resource(&'m str),
    /// A child element; `choice_type` for a choice element (`value` + `Quantity`), `index`
    /// when the element repeats.
    Child {
        name: &'m str,
        choice_type: Option<&'m str>,
        index: Option<usize>,
    },
}

/// The stack of [`Step`]s from the root resource to the current element.
#[derive(Debug, Default)]
struct Path<'m> {
    steps: Vec<Step<'m>>,
}

impl<'m> Path<'m> {
    fn push(&mut self, step: Step<'m>) {
        self.steps.push(step);
    }

    fn pop(&mut self) {
        self.steps.pop();
    }

    /// How many steps deep the current element is.
    fn depth(&self) -> usize {
        self.steps.len()
    }

    /// Refuses the current element when it nests deeper than [`MAX_DEPTH`], the bound both
    /// readers and both writers keep. `at` says where, for the error only: working out a
    /// position scans the text, which is not done for every element.
    fn check_depth(&self, at: impl FnOnce() -> TextPosition) -> Result<(), XmlError> {
        if self.depth() > MAX_DEPTH {
            return Err(XmlError::TooDeep {
                path: self.render(),
                limit: MAX_DEPTH,
                at: at(),
            });
        }
        Ok(())
    }

    /// The location of the current element, e.g. `Bundle.entry[0].resource.ofType(Patient)`.
    fn render(&self) -> String {
        let mut text = String::new();
        for step in &self.steps {
            match *step {
                Step::Resource(type_name) if text.is_empty() => text.push_str(type_name),
                Step::Resource(type_name) => {
                    text.push_str(".ofType(");
                    text.push_str(type_name);
                    text.push(')');
                }
                Step::Child {
                    name,
                    choice_type,
                    index,
                } => {
                    text.push('.');
                    text.push_str(name);
                    if let Some(code) = choice_type {
                        text.push_str(&crate::model::capitalise(code));
                    }
                    if let Some(index) = index {
                        text.push_str(&format!("[{index}]"));
                    }
                }
            }
        }
        if text.is_empty() {
            text.push_str("(root)");
        }
        text
    }

    /// The location of a child of the current element that has no step of its own (an unknown
    /// element or property).
    fn render_child(&self, name: &str) -> String {
        if self.steps.is_empty() {
            return name.to_owned();
        }
        format!("{}.{name}", self.render())
    }
}

/// Whether a character may appear in an XML 1.0 document at all (the `Char` production);
/// control characters other than tab, newline and carriage return cannot, not even escaped.
fn is_xml_char(character: char) -> bool {
    matches!(character,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// The first character of `text` that XML cannot carry, if any.
fn first_non_xml_char(text: &str) -> Option<char> {
    text.chars().find(|&character| !is_xml_char(character))
}

/// Which of a type's elements are carried as XML attributes: `id` of data types and backbone
/// elements (`Resource.id` stays an element) and `url` of extensions.
#[derive(Debug, Clone, Copy)]
struct AttributeElements {
    id: bool,
    url: bool,
}

impl AttributeElements {
    fn of(type_def: &TypeDef) -> AttributeElements {
        AttributeElements {
            id: type_def.kind != TypeKind::Resource,
            url: type_def.name == "Extension",
        }
    }

    fn contains(self, element_name: &str) -> bool {
        (self.id && element_name == "id") || (self.url && element_name == "url")
    }
}

/// How the value of an element is represented, decided once per element from its type.
#[derive(Debug, Clone, Copy)]
enum ValueKind<'m> {
    /// `Narrative.div`: XHTML markup.
    Narrative,
    /// A primitive: `value` and `id` attributes, extensions as children.
    Primitive,
    /// A resource inside a resource, wrapped in the element.
    Resource,
    /// A data type or backbone element, whose children the definition holds.
    Complex(&'m TypeDef),
}

impl<'m> ValueKind<'m> {
    /// The kind of an element's value of type `type_code`, or `None` when the model has no
    /// definition for the type (which would be a defect of the generated model).
    fn of(model: &'m Model, element: &'m ElementDef, type_code: &str) -> Option<ValueKind<'m>> {
        // Backbone elements and content references name the definition of their children.
        if let Some(children) = &element.element_type {
            return model.type_def(children).map(ValueKind::Complex);
        }
        // FHIR spells primitive type names in lower case and all others capitalised (a test
        // checks the models agree), which saves a lookup for most elements.
        if type_code == "xhtml" {
            return Some(ValueKind::Narrative);
        }
        if type_code.starts_with(|first: char| first.is_ascii_lowercase()) {
            return Some(ValueKind::Primitive);
        }
        let type_def = model.type_def(type_code)?;
        Some(match type_def.kind {
            TypeKind::Primitive if type_code == "xhtml" => ValueKind::Narrative,
            TypeKind::Primitive => ValueKind::Primitive,
            TypeKind::Resource => ValueKind::Resource,
            TypeKind::Complex | TypeKind::Backbone => ValueKind::Complex(type_def),
        })
    }
}

/// The position of `element` among the elements of `type_def`, which is its XML order.
/// `Model::resolve_key` hands out references into that same list, so the position follows from
/// the address in constant time; the checked fallback keeps any other reference correct too.
fn element_order(type_def: &TypeDef, element: &ElementDef) -> usize {
    let size = std::mem::size_of::<ElementDef>().max(1);
    let index = (element as *const ElementDef as usize)
        .wrapping_sub(type_def.elements.as_ptr() as usize)
        / size;
    match type_def.elements.get(index) {
        Some(candidate) if std::ptr::eq(candidate, element) => index,
        _ => type_def
            .elements
            .iter()
            .position(|candidate| std::ptr::eq(candidate, element))
            .unwrap_or(usize::MAX),
    }
}

/// Whether a primitive type is a JSON number.
fn is_numeric(type_code: &str) -> bool {
    matches!(
        type_code,
        "integer" | "decimal" | "positiveInt" | "unsignedInt"
    )
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod untyped_tests;
