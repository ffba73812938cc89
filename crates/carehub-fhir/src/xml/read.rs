//! XML to JSON: a recursive descent over quick-xml's events, guided by the definitions.
//!
//! Each element's name is resolved against its parent's type, which tells whether it is a
//! primitive (value and id in attributes, extensions as children), a nested resource (one
//! wrapped child), the narrative (XHTML copied as text) or a complex type (recurse). Children
//! must come in definition order, so the occurrences of one element are contiguous: they are
//! collected as a group and turned into the JSON key (an array when the element repeats) and
//! its `_key` sibling when the next element starts. The JSON object therefore comes out in
//! definition order too, like JSON written by any FHIR server.

use std::borrow::Cow;
use std::str::FromStr;

use quick_xml::XmlVersion;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceResolver, ResolveResult};
use quick_xml::reader::NsReader;
use serde_json::{Map, Number, Value};

use super::narrative::{
    check_element, check_reference, declared_default_namespace, is_carriage_return,
    is_xml_whitespace, offset, push_namespace_declaration, push_normalising_line_ends,
    push_tag_from_xml,
};
use super::{
    AttributeElements, FHIR_NAMESPACE, MAX_DEPTH, Path, Step, TextPosition, ValueKind,
    XHTML_NAMESPACE, XmlError, element_order, first_non_xml_char, is_numeric,
};
use crate::model::data::{ElementDef, TypeDef};
use crate::model::{Model, capitalise};

/// The XML Schema instance namespace: `xsi:schemaLocation` on the root is common in FHIR XML
/// and carries no data, so its attributes are ignored.
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Reads a FHIR XML document into the JSON form of its resource.
pub(super) fn read_resource(model: &Model, text: &str) -> Result<Value, XmlError> {
    let (reader, text) = new_reader(text);
    let Some(extension_type) = model.type_def("Extension") else {
        return Err(XmlError::Malformed {
            message: "the FHIR model has no Extension type".into(),
            at: TextPosition::NONE,
        });
    };
    let mut xml_to_json = XmlToJson {
        model,
        extension_type,
        reader,
        text,
        path: Path::default(),
    };
    xml_to_json.document()
}

/// A namespace-aware reader configured for FHIR XML, and the text it reads: `text` without its
/// byte order mark, which is legal at the start of an XML document and carries no content.
/// Shared with the reader for versions without definitions ([`super::untyped`]).
pub(super) fn new_reader(text: &str) -> (NsReader<&[u8]>, &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.check_comments = true;
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);
    (reader, text)
}

/// The state of one conversion.
struct XmlToJson<'i, 'm> {
    model: &'m Model,
    /// The definition of `Extension`, needed for every primitive with extensions.
    extension_type: &'m TypeDef,
    reader: NsReader<&'i [u8]>,
    text: &'i str,
    path: Path<'m>,
}

/// Which namespace an element is in, without allocating for the two expected ones.
enum ElementNamespace {
    Fhir,
    Xhtml,
    /// Any other, or none (empty), for the error message.
    Other(String),
}

/// The element read last in an object, against which the next one's order is checked.
#[derive(Debug, Clone, Copy)]
struct Previous<'m> {
    /// Position of the element in the type's definition.
    order: usize,
    element: &'m ElementDef,
    type_code: &'m str,
}

impl Previous<'_> {
    /// The element's XML and JSON name (`valueQuantity` for a choice).
    fn name(&self) -> String {
        if self.element.choice {
            format!("{}{}", self.element.name, capitalise(self.type_code))
        } else {
            self.element.name.clone()
        }
    }
}

/// Where the reading of an object's children is.
#[derive(Default)]
struct ChildrenState<'m> {
    previous: Option<Previous<'m>>,
    /// The occurrences of the current element, when it repeats.
    repeats: Option<Repeats>,
}

/// The occurrences of a repeating element collected so far in an object; single elements go
/// straight into the object instead.
struct Repeats {
    /// The XML element name, which is the JSON key.
    key: String,
    values: Vec<Option<Value>>,
    /// The `_key` parts (id and extensions) of primitives: empty until an occurrence has one,
    /// then aligned with `values`.
    extras: Vec<Option<Value>>,
}

impl Repeats {
    fn push(&mut self, value: Option<Value>, extras: Option<Value>) {
        if extras.is_some() || !self.extras.is_empty() {
            self.extras.resize_with(self.values.len(), || None);
            self.extras.push(extras);
        }
        self.values.push(value);
    }

    /// Adds the occurrences to the object as the array `key` and, when any primitive had an
    /// id or extensions, the array `_key`, with nulls where one side has nothing.
    fn flush_into(mut self, object: &mut Map<String, Value>) {
        let as_array = |items: Vec<Option<Value>>| {
            Value::Array(
                items
                    .into_iter()
                    .map(|item| item.unwrap_or(Value::Null))
                    .collect(),
            )
        };
        let extras_key = (!self.extras.is_empty()).then(|| format!("_{}", self.key));
        if extras_key.is_some() {
            self.extras.resize_with(self.values.len(), || None);
        }
        if self.values.iter().any(Option::is_some) {
            object.insert(self.key, as_array(self.values));
        }
        if let Some(extras_key) = extras_key {
            object.insert(extras_key, as_array(self.extras));
        }
    }
}

fn is_whitespace(text: &str) -> bool {
    text.chars().all(is_xml_whitespace)
}

/// The line and column of a byte offset into `text`. Shared with the reader for versions
/// without definitions, like [`malformed_at`].
pub(super) fn position_of(offset: usize, text: &str) -> TextPosition {
    TextPosition::of_offset(text, offset as u64)
}

/// Not well-formed XML at a byte offset into `text`.
pub(super) fn malformed_at(message: impl Into<String>, text: &str, offset: usize) -> XmlError {
    XmlError::Malformed {
        message: message.into(),
        at: position_of(offset, text),
    }
}

/// The next event of `reader`, which reads `text`, and the byte offset where it starts.
fn next_event<'i>(
    reader: &mut NsReader<&'i [u8]>,
    text: &str,
) -> Result<(usize, Event<'i>), XmlError> {
    let start = offset(reader.buffer_position());
    match reader.read_event() {
        Ok(event) => Ok((start, event)),
        Err(err) => Err(XmlError::Malformed {
            message: err.to_string(),
            at: TextPosition::of_offset(text, reader.error_position()),
        }),
    }
}

/// The prolog of a document (declaration, comments, whitespace) up to its root element, whose
/// start tag, offset and self-closing flag are returned. A document type declaration is refused.
pub(super) fn read_prolog<'i>(
    reader: &mut NsReader<&'i [u8]>,
    text: &str,
) -> Result<(BytesStart<'i>, usize, bool), XmlError> {
    loop {
        let (offset, event) = next_event(reader, text)?;
        match event {
            Event::Decl(_) if offset == 0 => {}
            Event::Comment(_) | Event::PI(_) => {}
            Event::Text(content) if is_whitespace(&content) => {}
            Event::DocType(_) => {
                return Err(XmlError::DoctypeNotAllowed {
                    at: position_of(offset, text),
                });
            }
            Event::Start(start) => return Ok((start, offset, false)),
            Event::Empty(start) => return Ok((start, offset, true)),
            Event::Eof => {
                return Err(malformed_at(
                    "the document has no root element",
                    text,
                    offset,
                ));
            }
            Event::Decl(_) => {
                return Err(malformed_at(
                    "the XML declaration must come first",
                    text,
                    offset,
                ));
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) | Event::End(_) => {
                return Err(malformed_at(
                    "content before the root element",
                    text,
                    offset,
                ));
            }
        }
    }
}

/// What follows the root element: nothing but comments, processing instructions and whitespace.
pub(super) fn read_epilog(reader: &mut NsReader<&[u8]>, text: &str) -> Result<(), XmlError> {
    loop {
        let (offset, event) = next_event(reader, text)?;
        match event {
            Event::Eof => return Ok(()),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Text(content) if is_whitespace(&content) => {}
            Event::DocType(_) => {
                return Err(XmlError::DoctypeNotAllowed {
                    at: position_of(offset, text),
                });
            }
            _ => return Err(malformed_at("content after the root element", text, offset)),
        }
    }
}

/// The next child element of the element that `path` names, whose start tag has been read:
/// the child's offset, start tag and whether it closes itself, or `None` at the end tag. Both
/// readers read every element's children through this, so that they skip and refuse the same
/// things with the same errors: comments, processing instructions and whitespace carry no data
/// and are skipped, while text (FHIR puts data in attributes), a document type declaration or
/// the end of the document are refused.
pub(super) fn next_child<'i>(
    reader: &mut NsReader<&'i [u8]>,
    text: &str,
    path: &Path<'_>,
) -> Result<Option<(usize, BytesStart<'i>, bool)>, XmlError> {
    loop {
        let (offset, event) = next_event(reader, text)?;
        return match event {
            Event::Start(child) => Ok(Some((offset, child, false))),
            Event::Empty(child) => Ok(Some((offset, child, true))),
            Event::End(_) => Ok(None),
            Event::Comment(_) | Event::PI(_) => continue,
            Event::Text(content) if is_whitespace(&content) => continue,
            Event::DocType(_) => Err(XmlError::DoctypeNotAllowed {
                at: position_of(offset, text),
            }),
            Event::Eof => Err(malformed_at(
                format!("the document ends inside {}", path.render()),
                text,
                offset,
            )),
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) | Event::Decl(_) => {
                Err(XmlError::UnexpectedText {
                    path: path.render(),
                    at: position_of(offset, text),
                })
            }
        };
    }
}

/// Fails unless the element is in `expected`; `path` names it and `at` finds it, both worked
/// out only for the error (finding a line and column scans the text, which for every element
/// of a large document would make reading quadratic).
pub(super) fn expect_namespace(
    resolver: &NamespaceResolver,
    start: &BytesStart<'_>,
    expected: &'static str,
    path: impl FnOnce() -> String,
    at: impl FnOnce() -> TextPosition,
) -> Result<(), XmlError> {
    let namespace = match resolver.resolve_element(start.name()).0 {
        ResolveResult::Bound(namespace) if namespace.as_ref() == FHIR_NAMESPACE => {
            ElementNamespace::Fhir
        }
        ResolveResult::Bound(namespace) if namespace.as_ref() == XHTML_NAMESPACE => {
            ElementNamespace::Xhtml
        }
        ResolveResult::Bound(namespace) => ElementNamespace::Other(namespace.as_ref().into()),
        ResolveResult::Unbound => ElementNamespace::Other(String::new()),
        ResolveResult::Unknown(prefix) => {
            ElementNamespace::Other(format!("(undeclared prefix '{prefix}')"))
        }
    };
    let found = match namespace {
        ElementNamespace::Fhir if expected == FHIR_NAMESPACE => return Ok(()),
        ElementNamespace::Xhtml if expected == XHTML_NAMESPACE => return Ok(()),
        ElementNamespace::Fhir => FHIR_NAMESPACE.to_owned(),
        ElementNamespace::Xhtml => XHTML_NAMESPACE.to_owned(),
        ElementNamespace::Other(namespace) => namespace,
    };
    Err(XmlError::WrongNamespace {
        path: path(),
        found,
        expected,
        at: at(),
    })
}

/// The local name of an attribute that FHIR could define (no prefix), `Ok(None)` for the ones
/// that carry no data here (namespace declarations and `xsi:` attributes), and `Err(())` for
/// an attribute in any other namespace, which the caller reports as unknown.
pub(super) fn plain_attribute_name<'a>(
    resolver: &NamespaceResolver,
    attribute: &'a Attribute<'_>,
) -> Result<Option<&'a str>, ()> {
    if attribute.key.as_namespace_binding().is_some() {
        return Ok(None);
    }
    let (namespace, local_name) = resolver.resolve_attribute(attribute.key);
    match namespace {
        ResolveResult::Unbound => Ok(Some(local_name.into_inner())),
        ResolveResult::Bound(namespace) if namespace.as_ref() == XSI_NAMESPACE => Ok(None),
        _ => Err(()),
    }
}

/// An attribute's value as XML defines it (entities replaced, whitespace normalised), with
/// characters XML cannot carry refused. `path` names the element, `offset` is its start tag.
pub(super) fn attribute_value<'a>(
    attribute: &Attribute<'a>,
    name: &str,
    text: &str,
    offset: usize,
    path: impl FnOnce() -> String,
) -> Result<Cow<'a, str>, XmlError> {
    if attribute.value.as_bytes().contains(&b'<') {
        return Err(malformed_at(
            format!("'<' in the value of attribute '{name}'"),
            text,
            offset,
        ));
    }
    let value = attribute
        .normalized_value(XmlVersion::Implicit1_0)
        .map_err(|err| malformed_at(format!("attribute '{name}': {err}"), text, offset))?;
    if let Some(character) = first_non_xml_char(&value) {
        return Err(XmlError::InvalidValue {
            path: path(),
            message: format!(
                "attribute '{name}' has character U+{:04X}, which XML does not allow",
                u32::from(character)
            ),
            at: position_of(offset, text),
        });
    }
    Ok(value)
}

impl<'i, 'm> XmlToJson<'i, 'm> {
    fn at(&self, offset: usize) -> TextPosition {
        position_of(offset, self.text)
    }

    /// The next child element of the current element, `None` at its end (see [`next_child`]).
    fn next_child(&mut self) -> Result<Option<(usize, BytesStart<'i>, bool)>, XmlError> {
        next_child(&mut self.reader, self.text, &self.path)
    }

    fn malformed(&self, message: impl Into<String>, offset: usize) -> XmlError {
        malformed_at(message, self.text, offset)
    }

    /// Fails unless the element is in `expected`; `path` names it.
    fn expect_namespace(
        &self,
        start: &BytesStart<'_>,
        expected: &'static str,
        path: impl FnOnce() -> String,
        offset: usize,
    ) -> Result<(), XmlError> {
        expect_namespace(self.reader.resolver(), start, expected, path, || {
            self.at(offset)
        })
    }

    fn check_depth(&self, offset: usize) -> Result<(), XmlError> {
        self.path.check_depth(|| self.at(offset))
    }

    /// The whole document: prolog, one resource, and nothing but comments after it.
    fn document(&mut self) -> Result<Value, XmlError> {
        let (root, offset, self_closing) = read_prolog(&mut self.reader, self.text)?;
        let resource = self.resource(&root, offset, self_closing)?;
        read_epilog(&mut self.reader, self.text)?;
        Ok(resource)
    }

    /// A resource element (`<Patient>`), at the root or inside a wrapper element.
    fn resource(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
    ) -> Result<Value, XmlError> {
        let local_name = start.local_name();
        let name = local_name.as_ref();
        self.expect_namespace(
            start,
            FHIR_NAMESPACE,
            || self.path.render_child(name),
            offset,
        )?;
        let Some(type_def) = self.model.resource(name) else {
            return Err(XmlError::UnknownResourceType {
                path: self.path.render(),
                name: name.to_owned(),
                version: self.model.version(),
                at: self.at(offset),
            });
        };
        self.path.push(Step::Resource(&type_def.name));
        let result = self.object(start, offset, type_def, self_closing, true);
        self.path.pop();
        result.map(Value::Object)
    }

    /// An element of complex type (or a resource), as a JSON object.
    fn object(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        type_def: &'m TypeDef,
        self_closing: bool,
        is_resource: bool,
    ) -> Result<Map<String, Value>, XmlError> {
        self.check_depth(offset)?;
        let attribute_elements = AttributeElements::of(type_def);
        let mut object = Map::new();
        if is_resource {
            object.insert("resourceType".into(), Value::String(type_def.name.clone()));
        }
        let mut id = None;
        let mut url = None;
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|err| self.malformed(err.to_string(), offset))?;
            let Some(local_name) = self.plain_attribute_name(&attribute, offset)? else {
                continue;
            };
            match local_name {
                "id" if attribute_elements.id => {
                    id = Some(self.attribute_value(&attribute, "id", offset)?.into_owned());
                }
                "url" if attribute_elements.url => {
                    url = Some(
                        self.attribute_value(&attribute, "url", offset)?
                            .into_owned(),
                    );
                }
                "value" => {
                    return Err(XmlError::ValueOnComplexType {
                        path: self.path.render(),
                        type_name: type_def.name.clone(),
                        at: self.at(offset),
                    });
                }
                _ => return Err(self.unknown_attribute(&attribute, offset)),
            }
        }
        if let Some(id) = id {
            object.insert("id".into(), Value::String(id));
        }
        if let Some(url) = url {
            object.insert("url".into(), Value::String(url));
        }
        if !self_closing {
            self.children(type_def, &mut object)?;
        }
        Ok(object)
    }

    /// The local name of an attribute that FHIR could define (no prefix), or `None` for the
    /// ones that carry no data here: namespace declarations and `xsi:` attributes.
    fn plain_attribute_name<'a>(
        &self,
        attribute: &'a Attribute<'_>,
        offset: usize,
    ) -> Result<Option<&'a str>, XmlError> {
        plain_attribute_name(self.reader.resolver(), attribute)
            .map_err(|()| self.unknown_attribute(attribute, offset))
    }

    fn unknown_attribute(&self, attribute: &Attribute<'_>, offset: usize) -> XmlError {
        XmlError::UnknownAttribute {
            path: self.path.render(),
            name: attribute.key.as_ref().to_owned(),
            at: self.at(offset),
        }
    }

    /// An attribute's value as XML defines it (entities replaced, whitespace normalised), with
    /// characters XML cannot carry refused.
    fn attribute_value<'a>(
        &self,
        attribute: &Attribute<'a>,
        name: &str,
        offset: usize,
    ) -> Result<Cow<'a, str>, XmlError> {
        attribute_value(attribute, name, self.text, offset, || self.path.render())
    }

    /// The children of an object of type `type_def`, up to its end tag.
    fn children(
        &mut self,
        type_def: &'m TypeDef,
        object: &mut Map<String, Value>,
    ) -> Result<(), XmlError> {
        let mut state = ChildrenState::default();
        while let Some((offset, child, self_closing)) = self.next_child()? {
            self.child(type_def, &child, offset, self_closing, &mut state, object)?;
        }
        if let Some(repeats) = state.repeats {
            repeats.flush_into(object);
        }
        Ok(())
    }

    /// One child element of an object: checks name, namespace and order, reads it and adds it
    /// to the current group (flushing the previous group when a new element starts).
    fn child(
        &mut self,
        type_def: &'m TypeDef,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
        state: &mut ChildrenState<'m>,
        object: &mut Map<String, Value>,
    ) -> Result<(), XmlError> {
        let local_name = start.local_name();
        let name = local_name.as_ref();
        // `id` of data types and `url` of extensions are attributes, never elements.
        let attribute_elements = AttributeElements::of(type_def);
        let resolved = self
            .model
            .resolve_key(&type_def.name, name)
            .filter(|resolved| !attribute_elements.contains(&resolved.element.name));
        let Some(resolved) = resolved else {
            return Err(XmlError::UnknownElement {
                path: self.path.render_child(name),
                at: self.at(offset),
            });
        };
        let (element, type_code) = (resolved.element, resolved.type_code);
        let expected = if type_code == "xhtml" {
            XHTML_NAMESPACE
        } else {
            FHIR_NAMESPACE
        };
        self.expect_namespace(start, expected, || self.path.render_child(name), offset)?;
        let order = element_order(type_def, element);
        if let Some(previous) = state.previous {
            if previous.order == order {
                if !element.is_array() || previous.type_code != type_code {
                    return Err(XmlError::Repeated {
                        path: self.path.render_child(name),
                        at: self.at(offset),
                    });
                }
            } else if previous.order > order {
                return Err(XmlError::OutOfOrder {
                    path: self.path.render_child(name),
                    after: previous.name(),
                    at: self.at(offset),
                });
            } else if let Some(repeats) = state.repeats.take() {
                repeats.flush_into(object);
            }
        }
        state.previous = Some(Previous {
            order,
            element,
            type_code,
        });
        let is_array = element.is_array();
        self.path.push(Step::Child {
            name: &element.name,
            choice_type: element.choice.then_some(type_code),
            index: is_array.then(|| state.repeats.as_ref().map_or(0, |r| r.values.len())),
        });
        let result = match ValueKind::of(self.model, element, type_code) {
            Some(kind) => self.occurrence(start, offset, self_closing, kind, type_code),
            None => Err(self.malformed(format!("no definition for type {type_code}"), offset)),
        };
        self.path.pop();
        let (value, extras) = result?;
        if is_array {
            state
                .repeats
                .get_or_insert_with(|| Repeats {
                    key: name.to_owned(),
                    values: Vec::new(),
                    extras: Vec::new(),
                })
                .push(value, extras);
        } else {
            if let Some(value) = value {
                object.insert(name.to_owned(), value);
            }
            if let Some(extras) = extras {
                object.insert(format!("_{name}"), extras);
            }
        }
        Ok(())
    }

    /// Reads one occurrence of an element as its JSON value and, for primitives, its `_key`
    /// part. The path already names the element.
    fn occurrence(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
        kind: ValueKind<'m>,
        type_code: &str,
    ) -> Result<(Option<Value>, Option<Value>), XmlError> {
        self.check_depth(offset)?;
        match kind {
            ValueKind::Narrative => {
                let div = read_narrative(
                    &mut self.reader,
                    self.text,
                    start,
                    offset,
                    self_closing,
                    &self.path,
                )?;
                Ok((Some(Value::String(div)), None))
            }
            ValueKind::Primitive => self.primitive(start, offset, self_closing, type_code),
            ValueKind::Resource => {
                let resource = self.wrapped_resource(start, offset, self_closing)?;
                Ok((Some(resource), None))
            }
            ValueKind::Complex(type_def) => {
                let object = self.object(start, offset, type_def, self_closing, false)?;
                Ok((Some(Value::Object(object)), None))
            }
        }
    }

    /// `<name id="..." value="...">` with optional `<extension>` children.
    fn primitive(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
        type_code: &str,
    ) -> Result<(Option<Value>, Option<Value>), XmlError> {
        let mut value = None;
        let mut id = None;
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|err| self.malformed(err.to_string(), offset))?;
            let Some(local_name) = self.plain_attribute_name(&attribute, offset)? else {
                continue;
            };
            match local_name {
                "value" => {
                    let text = self.attribute_value(&attribute, "value", offset)?;
                    let json = primitive_value(type_code, text).map_err(|message| {
                        XmlError::InvalidValue {
                            path: self.path.render(),
                            message,
                            at: self.at(offset),
                        }
                    })?;
                    value = Some(json);
                }
                "id" => id = Some(self.attribute_value(&attribute, "id", offset)?.into_owned()),
                _ => return Err(self.unknown_attribute(&attribute, offset)),
            }
        }
        let mut extensions = Vec::new();
        if !self_closing {
            while let Some((child_offset, child, child_closing)) = self.next_child()? {
                let local_name = child.local_name();
                if local_name.as_ref() != "extension" {
                    return Err(XmlError::UnknownElement {
                        path: self.path.render_child(local_name.as_ref()),
                        at: self.at(child_offset),
                    });
                }
                self.expect_namespace(
                    &child,
                    FHIR_NAMESPACE,
                    || self.path.render_child("extension"),
                    child_offset,
                )?;
                self.path.push(Step::Child {
                    name: "extension",
                    choice_type: None,
                    index: Some(extensions.len()),
                });
                let extension_type = self.extension_type;
                let result =
                    self.object(&child, child_offset, extension_type, child_closing, false);
                self.path.pop();
                extensions.push(Value::Object(result?));
            }
        }
        if value.is_none() && id.is_none() && extensions.is_empty() {
            return Err(XmlError::EmptyElement {
                path: self.path.render(),
                at: self.at(offset),
            });
        }
        let extras = if id.is_some() || !extensions.is_empty() {
            let mut extras = Map::new();
            if let Some(id) = id {
                extras.insert("id".into(), Value::String(id));
            }
            if !extensions.is_empty() {
                extras.insert("extension".into(), Value::Array(extensions));
            }
            Some(Value::Object(extras))
        } else {
            None
        };
        Ok((value, extras))
    }

    /// `<contained><Patient>...</Patient></contained>`: exactly one resource inside.
    fn wrapped_resource(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
    ) -> Result<Value, XmlError> {
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|err| self.malformed(err.to_string(), offset))?;
            if self.plain_attribute_name(&attribute, offset)?.is_some() {
                return Err(self.unknown_attribute(&attribute, offset));
            }
        }
        let mut resource = None;
        if !self_closing {
            while let Some((child_offset, child, child_closing)) = self.next_child()? {
                if resource.is_some() {
                    return Err(XmlError::Repeated {
                        path: self.path.render_child(child.local_name().as_ref()),
                        at: self.at(child_offset),
                    });
                }
                resource = Some(self.resource(&child, child_offset, child_closing)?);
            }
        }
        resource.ok_or_else(|| XmlError::EmptyElement {
            path: self.path.render(),
            at: self.at(offset),
        })
    }
}

/// The narrative `div`, captured as the markup it is written with: line ends normalised as an
/// XML parser would, and references to carriage returns turned into the character (see
/// [`super::narrative`]). Comments stay: in JSON they are part of the markup. `start` is the
/// div's start tag, just read from `reader` at `div_offset`; `path` names the div, and its
/// depth counts towards [`MAX_DEPTH`]. Shared with the reader for versions without definitions.
pub(super) fn read_narrative(
    reader: &mut NsReader<&[u8]>,
    text: &str,
    start: &BytesStart<'_>,
    div_offset: usize,
    self_closing: bool,
    path: &Path<'_>,
) -> Result<String, XmlError> {
    let depth = path.depth();
    let invalid = |message: String, at: usize| XmlError::InvalidNarrative {
        path: path.render(),
        message,
        at: position_of(at, text),
    };
    // The offset just past the last event read.
    let position = |reader: &NsReader<&[u8]>| offset(reader.buffer_position());
    if start.name().as_ref() != "div" {
        return Err(invalid(
            "the narrative must be a <div> element without a namespace prefix".into(),
            div_offset,
        ));
    }
    check_element(reader.resolver(), start, false)
        .map_err(|message| invalid(message, div_offset))?;
    let declares_namespace = declared_default_namespace(start)
        .map_err(|message| invalid(message, div_offset))?
        .is_some();
    // The div's own start tag, which was just read, with the namespace declaration added
    // when the div inherits the XHTML namespace from an ancestor (JSON needs it on the div).
    let mut markup = String::new();
    let start_tag = slice(text, div_offset, position(reader))?;
    match start_tag.strip_prefix("<div") {
        Some(rest) if !declares_namespace => {
            markup.push_str("<div");
            push_namespace_declaration(&mut markup);
            push_tag_from_xml(&mut markup, rest);
        }
        _ => push_tag_from_xml(&mut markup, start_tag),
    }
    let mut copied_from = position(reader);
    if !self_closing {
        let mut open_elements = 1usize;
        loop {
            let (event_offset, event) = next_event(reader, text)?;
            if let Event::Start(element) | Event::Empty(element) = &event {
                check_element(reader.resolver(), element, false)
                    .map_err(|message| invalid(message, event_offset))?;
                // References in attribute values may stand for carriage returns.
                let tag = slice(text, event_offset, position(reader))?;
                if tag.contains("&#") {
                    let before = slice(text, copied_from, event_offset)?;
                    push_normalising_line_ends(&mut markup, before);
                    push_tag_from_xml(&mut markup, tag);
                    copied_from = position(reader);
                }
            }
            match event {
                Event::Start(_) => {
                    open_elements += 1;
                    if depth + open_elements > MAX_DEPTH {
                        return Err(XmlError::TooDeep {
                            path: path.render(),
                            limit: MAX_DEPTH,
                            at: position_of(event_offset, text),
                        });
                    }
                }
                Event::Empty(_) => {}
                Event::End(_) => {
                    open_elements -= 1;
                    if open_elements == 0 {
                        break;
                    }
                }
                Event::Text(_) | Event::CData(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::GeneralRef(reference) => {
                    check_reference(&reference)
                        .map_err(|message| invalid(message, event_offset))?;
                    if is_carriage_return(&reference) {
                        let before = slice(text, copied_from, event_offset)?;
                        push_normalising_line_ends(&mut markup, before);
                        markup.push('\r');
                        copied_from = position(reader);
                    }
                }
                Event::DocType(_) => {
                    return Err(XmlError::DoctypeNotAllowed {
                        at: position_of(event_offset, text),
                    });
                }
                Event::Decl(_) => {
                    return Err(malformed_at(
                        "misplaced XML declaration",
                        text,
                        event_offset,
                    ));
                }
                Event::Eof => {
                    return Err(malformed_at(
                        format!("the document ends inside {}", path.render()),
                        text,
                        event_offset,
                    ));
                }
            }
        }
    }
    let rest = slice(text, copied_from, position(reader))?;
    push_normalising_line_ends(&mut markup, rest);
    if let Some(character) = first_non_xml_char(&markup) {
        return Err(invalid(
            format!(
                "character U+{:04X} cannot appear in XML",
                u32::from(character)
            ),
            div_offset,
        ));
    }
    Ok(markup)
}

/// A part of the input between two event boundaries.
fn slice(text: &str, from: usize, to: usize) -> Result<&str, XmlError> {
    text.get(from..to)
        .ok_or_else(|| malformed_at("internal error: narrative bounds", text, from))
}

/// The JSON value of a primitive's `value` attribute: booleans and numbers as JSON booleans
/// and numbers (numbers keeping their exact text), everything else as strings.
fn primitive_value(type_code: &str, text: Cow<'_, str>) -> Result<Value, String> {
    if type_code == "boolean" {
        return match text.as_ref() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            other => Err(format!("'{other}' is not a boolean (true or false)")),
        };
    }
    if is_numeric(type_code) {
        let valid = if type_code == "decimal" {
            is_json_number(&text)
        } else {
            is_json_integer(&text)
        };
        if !valid {
            return Err(format!("'{text}' is not a valid {type_code}"));
        }
        // `arbitrary_precision` keeps the text, so `1.50` stays `1.50`.
        return Number::from_str(&text)
            .map(Value::Number)
            .map_err(|err| format!("'{text}' is not a valid {type_code}: {err}"));
    }
    Ok(Value::String(text.into_owned()))
}

/// `-?(0|[1-9][0-9]*)`: FHIR's integer grammar, which is also JSON's.
pub(super) fn is_json_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    match digits.as_bytes() {
        [b'0'] => true,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
        [] => false,
    }
}

/// JSON's number grammar, which FHIR's decimal grammar equals:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub(super) fn is_json_number(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (mantissa, None),
    };
    let fraction_ok = fraction
        .is_none_or(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    let exponent_ok = exponent.is_none_or(|exponent| {
        let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    is_json_integer(integer) && fraction_ok && exponent_ok
}
