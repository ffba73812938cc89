//! FHIR XML for versions carehub has no definitions for: DSTU2, which the GP Connect Access
//! Record HTML API speaks.
//!
//! The typed conversion takes element order, repeating elements and primitive types from the
//! definitions. Without them, the same XML rules are applied with what is at hand:
//!
//! - writing ([`to_xml_in_key_order`]) takes the element order from the JSON key order, which
//!   serde_json keeps (`preserve_order`) and which the caller makes the version's definition
//!   order by building its objects in that order; the shape of each JSON value decides how it
//!   is written (a string, number or boolean is a primitive, an object with `resourceType` a
//!   resource, any other object a complex element);
//! - reading ([`from_xml_untyped`]) needs the caller's list of repeating elements, to know
//!   which become JSON arrays even when they occur once, and returns every primitive value as
//!   a JSON string: only a definition could say that `<total value="1"/>` is a number, so
//!   callers check the types of the values they use.
//!
//! What the typed conversion shares is reused, so both refuse the same things: attribute
//! escaping and characters XML cannot carry, the narrative rules ([`super::narrative`]),
//! document type declarations, the nesting bound [`MAX_DEPTH`](super::MAX_DEPTH) and the error
//! type. Two things cannot be told apart without definitions, so reading does not restore them:
//! numbers and booleans come back as strings, and a primitive with an `id` or extensions but no
//! value (JSON `"_name"` alone) comes back as an object, like a complex element holding only
//! extensions.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::reader::NsReader;
use serde_json::{Map, Value};

use super::read::{
    attribute_value, expect_namespace, malformed_at, new_reader, next_child, plain_attribute_name,
    position_of, read_epilog, read_narrative, read_prolog,
};
use super::write::{PrimitiveExtras, div_markup, into_text, push_element_attribute, write_event};
use super::{FHIR_NAMESPACE, Path, Step, TextPosition, XHTML_NAMESPACE, XmlError};

/// Writes a FHIR JSON resource of a version without definitions (DSTU2) as compact FHIR XML (no
/// XML declaration, no indentation), in the order of the JSON keys.
///
/// Refuses JSON that FHIR JSON does not allow (`null` outside an array of primitives aligned
/// with its `_name` array, empty arrays and objects, keys that are not element names) with
/// [`XmlError::InvalidJson`], characters XML cannot carry with [`XmlError::InvalidValue`], and a
/// narrative `div` that is not a single well-formed XHTML `div` with
/// [`XmlError::InvalidNarrative`]. Keys starting with `fhir_comments` are left out.
pub fn to_xml_in_key_order(resource: &Value) -> Result<String, XmlError> {
    let mut json_to_xml = KeyOrderWriter {
        writer: Writer::new(Vec::with_capacity(1024)),
        path: Path::default(),
    };
    json_to_xml.resource(resource, true)?;
    into_text(json_to_xml.writer)
}

/// Reads FHIR XML of a version without definitions (DSTU2) into its JSON form.
///
/// `repeating(name)` says whether elements called `name` repeat: those always become JSON
/// arrays, even when they occur once, and any other element that occurs twice in one parent is
/// refused with [`XmlError::Repeated`]. Elements of one name must be contiguous, as FHIR's
/// definition order makes them ([`XmlError::OutOfOrder`] otherwise).
///
/// Every primitive value becomes a JSON string, numbers and booleans included, since nothing
/// says which they are: callers check the types of the values they use. Otherwise the rules
/// are the typed reader's: an element with a `value` attribute is a primitive (its `id` and
/// extensions go to the `_name` sibling), an element with children or an `id` (or, on an
/// extension, `url`) attribute is an object, an element whose only child is named with a
/// capital (`<resource><Patient>…</Patient></resource>`) holds a resource, and `div` in the
/// XHTML namespace is the narrative, returned as its markup. Document type declarations,
/// elements outside the FHIR namespace, text where FHIR allows only elements, empty elements,
/// unknown attributes and nesting deeper than [`MAX_DEPTH`](super::MAX_DEPTH) are refused.
pub fn from_xml_untyped(text: &str, repeating: &dyn Fn(&str) -> bool) -> Result<Value, XmlError> {
    let (mut reader, text) = new_reader(text);
    let (root, offset, self_closing) = read_prolog(&mut reader, text)?;
    let mut xml_to_json = UntypedReader {
        reader,
        text,
        path: Path::default(),
        repeating,
    };
    let resource = xml_to_json.resource(&root, offset, self_closing)?;
    read_epilog(&mut xml_to_json.reader, text)?;
    Ok(Value::Object(resource))
}

/// Whether `name` can be a FHIR element name, which is also its JSON key: a lower-case ASCII
/// letter, then ASCII letters and digits. Anything else could not be written as an XML name, or
/// would read back as something else (a capital starts a resource type, `_` a JSON sibling).
fn is_element_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase())
        && characters.all(|character| character.is_ascii_alphanumeric())
}

/// Whether `name` can be a resource type: a capital ASCII letter, then ASCII letters and digits.
fn is_resource_type_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_uppercase())
        && characters.all(|character| character.is_ascii_alphanumeric())
}

/// Whether objects under this key are extensions, whose `url` is an XML attribute.
fn is_extension_key(name: &str) -> bool {
    matches!(name, "extension" | "modifierExtension")
}

/// Whether a JSON key carries no data for XML (STU3 and DSTU2 JSON may have comments).
fn is_comment_key(key: &str) -> bool {
    key.starts_with("fhir_comments")
}

/// What kind of JSON object is being written, which decides which keys are XML attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    /// A resource: `resourceType` names its element, and its `id` is an element.
    Resource,
    /// A data type or backbone element: `id` is an attribute.
    Complex,
    /// An extension (under `extension` or `modifierExtension`): `id` and `url` are attributes.
    Extension,
}

impl ObjectKind {
    fn under_key(key: &str) -> ObjectKind {
        if is_extension_key(key) {
            ObjectKind::Extension
        } else {
            ObjectKind::Complex
        }
    }

    /// Whether the key is not an element of this object: an XML attribute or `resourceType`.
    fn is_not_element(self, key: &str) -> bool {
        match self {
            ObjectKind::Resource => key == "resourceType",
            ObjectKind::Complex => key == "id",
            ObjectKind::Extension => key == "id" || key == "url",
        }
    }
}

/// The state of one JSON to XML conversion.
struct KeyOrderWriter<'v> {
    writer: Writer<Vec<u8>>,
    path: Path<'v>,
}

impl<'v> KeyOrderWriter<'v> {
    fn error_json(&self, message: impl Into<String>) -> XmlError {
        XmlError::InvalidJson {
            path: self.path.render(),
            message: message.into(),
        }
    }

    fn error_json_child(&self, key: &str, message: impl Into<String>) -> XmlError {
        XmlError::InvalidJson {
            path: self.path.render_child(key),
            message: message.into(),
        }
    }

    fn check_depth(&self) -> Result<(), XmlError> {
        self.path.check_depth(|| TextPosition::NONE)
    }

    fn write_event(&mut self, event: Event<'_>) -> Result<(), XmlError> {
        write_event(&mut self.writer, event, &self.path)
    }

    /// A resource: `<Patient>...</Patient>`, with the FHIR namespace when it is the root.
    fn resource(&mut self, value: &'v Value, is_root: bool) -> Result<(), XmlError> {
        let Some(object) = value.as_object() else {
            return Err(self.error_json("a resource must be a JSON object"));
        };
        let Some(type_name) = object.get("resourceType").and_then(Value::as_str) else {
            return Err(self.error_json("the resource has no resourceType string"));
        };
        if !is_resource_type_name(type_name) {
            return Err(self.error_json_child(
                "resourceType",
                format!("'{type_name}' is not a resource type name"),
            ));
        }
        self.path.push(Step::Resource(type_name));
        let mut start = BytesStart::new(type_name);
        if is_root {
            start.push_attribute(("xmlns", FHIR_NAMESPACE));
        }
        let result = self.object(start, object, ObjectKind::Resource);
        self.path.pop();
        result
    }

    /// An object as the element started by `start`: its attributes, then its elements in the
    /// order of its keys, each primitive joined with its `_name` sibling.
    fn object(
        &mut self,
        mut start: BytesStart<'_>,
        object: &'v Map<String, Value>,
        kind: ObjectKind,
    ) -> Result<(), XmlError> {
        self.check_depth()?;
        if object.is_empty() {
            return Err(self.error_json("FHIR JSON does not allow an empty object"));
        }
        let mut has_attributes = false;
        for name in ["id", "url"] {
            if kind.is_not_element(name) {
                has_attributes |= push_element_attribute(&mut start, object, name, &self.path)?;
            }
        }
        let mut elements = object
            .iter()
            .filter(|(key, _)| !kind.is_not_element(key) && !is_comment_key(key))
            .peekable();
        if elements.peek().is_none() {
            if !has_attributes && kind != ObjectKind::Resource {
                return Err(self.error_json("the object has no content"));
            }
            return self.write_event(Event::Empty(start));
        }
        let end = start.to_end().into_owned();
        self.write_event(Event::Start(start))?;
        let mut extras_key = String::new();
        for (key, value) in elements {
            if let Some(name) = key.strip_prefix('_') {
                if kind.is_not_element(name) {
                    return Err(
                        self.error_json_child(key, format!("{name} has no '_' sibling here"))
                    );
                }
                // Written with its value, when there is one.
                if !object.contains_key(name) {
                    self.element(name, None, Some(value))?;
                }
                continue;
            }
            extras_key.clear();
            extras_key.push('_');
            extras_key.push_str(key);
            self.element(key, Some(value), object.get(&extras_key))?;
        }
        self.write_event(Event::End(end))
    }

    /// Writes every occurrence of the element `name` from its value and `_name` sibling.
    fn element(
        &mut self,
        name: &'v str,
        value: Option<&'v Value>,
        extras: Option<&'v Value>,
    ) -> Result<(), XmlError> {
        if !is_element_name(name) {
            return Err(self.error_json_child(name, "is not a FHIR element name"));
        }
        let extras_name = || format!("_{name}");
        match (value, extras) {
            (Some(Value::Array(items)), extras) => {
                let extras: &[Value] = match extras {
                    None => &[],
                    Some(Value::Array(extras)) if extras.len() == items.len() => extras,
                    Some(Value::Array(extras)) => {
                        return Err(self.error_json_child(
                            &extras_name(),
                            format!(
                                "has {} entries but {name} has {}; they must align",
                                extras.len(),
                                items.len()
                            ),
                        ));
                    }
                    Some(_) => {
                        return Err(self.error_json_child(
                            &extras_name(),
                            format!("must be an array, as {name} is"),
                        ));
                    }
                };
                self.occurrences(name, items, |index| (items.get(index), extras.get(index)))
            }
            (None, Some(Value::Array(extras))) => {
                self.occurrences(name, extras, |index| (None, extras.get(index)))
            }
            (Some(_), Some(Value::Array(_))) => Err(self.error_json_child(
                &extras_name(),
                format!("must not be an array, as {name} is not"),
            )),
            (Some(Value::Null), _) => {
                Err(self.error_json_child(name, "FHIR JSON does not allow null here"))
            }
            (_, Some(Value::Null)) => {
                Err(self.error_json_child(&extras_name(), "FHIR JSON does not allow null here"))
            }
            (None, None) => Ok(()),
            (value, extras) => {
                self.path.push(Step::Child {
                    name,
                    choice_type: None,
                    index: None,
                });
                let result = self.occurrence(name, value, extras);
                self.path.pop();
                result
            }
        }
    }

    /// The occurrences of a repeating element; `pick(index)` gives the value and `_name` part
    /// of one (either may be JSON null, not both).
    fn occurrences(
        &mut self,
        name: &'v str,
        items: &[Value],
        pick: impl Fn(usize) -> (Option<&'v Value>, Option<&'v Value>),
    ) -> Result<(), XmlError> {
        if items.is_empty() {
            return Err(self.error_json_child(name, "FHIR JSON does not allow an empty array"));
        }
        for index in 0..items.len() {
            self.path.push(Step::Child {
                name,
                choice_type: None,
                index: Some(index),
            });
            let (value, extras) = pick(index);
            let result = match value {
                Some(Value::Array(_)) => Err(self.error_json("an array cannot hold arrays")),
                _ => self.occurrence(
                    name,
                    value.filter(|value| !value.is_null()),
                    extras.filter(|extras| !extras.is_null()),
                ),
            };
            self.path.pop();
            result?;
        }
        Ok(())
    }

    /// Writes one occurrence of an element; the path already names it.
    fn occurrence(
        &mut self,
        name: &'v str,
        value: Option<&'v Value>,
        extras: Option<&'v Value>,
    ) -> Result<(), XmlError> {
        if name == "div" {
            if extras.is_some() {
                return Err(self.error_json("the narrative div cannot have id or extensions"));
            }
            return match value {
                Some(Value::String(div)) => self.narrative(div),
                _ => Err(self.error_json("the narrative div must be a JSON string")),
            };
        }
        match (value, extras) {
            (None, None) => Err(self.error_json(
                "FHIR JSON allows null only in an array of primitives, aligned with a value in \
                 its '_' array",
            )),
            (Some(Value::Array(_)), _) => Err(self.error_json("an array cannot hold arrays")),
            (Some(Value::Object(_)), Some(_)) => {
                Err(self.error_json("only primitive elements have a '_' sibling"))
            }
            (Some(resource), None) if resource.get("resourceType").is_some() => {
                // Resources inside resources are wrapped: <resource><Patient>...</Patient></resource>.
                self.check_depth()?;
                self.write_event(Event::Start(BytesStart::new(name)))?;
                self.resource(resource, false)?;
                self.write_event(Event::End(BytesEnd::new(name)))
            }
            (Some(Value::Object(object)), None) => {
                self.object(BytesStart::new(name), object, ObjectKind::under_key(name))
            }
            (value, extras) => self.primitive(name, value, extras),
        }
    }

    /// `<name id="..." value="..."/>`, with `<extension>` children when there are any.
    fn primitive(
        &mut self,
        name: &str,
        value: Option<&'v Value>,
        extras: Option<&'v Value>,
    ) -> Result<(), XmlError> {
        self.check_depth()?;
        let extras = PrimitiveExtras::read(extras, &self.path, is_comment_key, true)?;
        let text = value.map(|value| self.primitive_text(value)).transpose()?;
        let start = extras.start_tag(name, text.as_deref(), &self.path)?;
        let extensions = extras.extensions;
        if extensions.is_empty() {
            return self.write_event(Event::Empty(start));
        }
        let end = start.to_end().into_owned();
        self.write_event(Event::Start(start))?;
        for (index, extension) in extensions.iter().enumerate() {
            self.path.push(Step::Child {
                name: "extension",
                choice_type: None,
                index: Some(index),
            });
            let result = match extension.as_object() {
                Some(object) => {
                    self.object(BytesStart::new("extension"), object, ObjectKind::Extension)
                }
                None => Err(self.error_json("an extension must be a JSON object")),
            };
            self.path.pop();
            result?;
        }
        self.write_event(Event::End(end))
    }

    /// The text of a primitive's `value` attribute: without a definition, any JSON string,
    /// number or boolean is taken as it is.
    fn primitive_text<'t>(&self, value: &'t Value) -> Result<Cow<'t, str>, XmlError> {
        match value {
            Value::String(text) => Ok(Cow::Borrowed(text)),
            // With `arbitrary_precision` a number displays as the exact text it was read from.
            Value::Number(number) => Ok(Cow::Owned(number.to_string())),
            Value::Bool(true) => Ok(Cow::Borrowed("true")),
            Value::Bool(false) => Ok(Cow::Borrowed("false")),
            Value::Null | Value::Array(_) | Value::Object(_) => {
                Err(self.error_json("a primitive must be a string, number or boolean"))
            }
        }
    }

    /// The narrative div, written as the markup it is, once checked (see [`div_markup`]).
    fn narrative(&mut self, div: &str) -> Result<(), XmlError> {
        self.check_depth()?;
        let markup = div_markup(div, &self.path)?;
        self.writer.get_mut().extend_from_slice(markup.as_bytes());
        Ok(())
    }
}

/// The state of one XML to JSON conversion.
struct UntypedReader<'i, 'r> {
    reader: NsReader<&'i [u8]>,
    text: &'i str,
    path: Path<'i>,
    repeating: &'r dyn Fn(&str) -> bool,
}

/// What the children of an element may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// The elements of a resource.
    Resource,
    /// The elements of a complex element, or one resource that the element wraps.
    Element,
    /// The extensions of a primitive, which always form an array.
    PrimitiveExtensions,
}

/// Where the reading of an element's children is.
struct ChildrenState<'i> {
    content: Content,
    /// The occurrences of the element read last.
    group: Option<Group<'i>>,
}

/// The occurrences so far of the element being read in an object. FHIR XML keeps the
/// occurrences of one element together, so one group is open at a time.
struct Group<'i> {
    /// The element name, which is also the JSON key.
    name: &'i str,
    /// Whether the element becomes an array.
    repeats: bool,
    values: Vec<Value>,
    /// The `_name` parts (id and extensions) of primitives: empty until an occurrence has one,
    /// then aligned with `values`.
    extras: Vec<Option<Value>>,
}

impl Group<'_> {
    fn push(&mut self, value: Value, extras: Option<Value>) {
        if extras.is_some() || !self.extras.is_empty() {
            self.extras.resize_with(self.values.len(), || None);
            self.extras.push(extras);
        }
        self.values.push(value);
    }

    /// Adds the occurrences to the object as `name` and, when any primitive had an id or
    /// extensions, `_name`: arrays (with nulls where an occurrence has no `_name` part) when
    /// the element repeats, the single values when not.
    fn flush_into(mut self, object: &mut Map<String, Value>) {
        let extras_key = format!("_{}", self.name);
        if self.repeats {
            let has_extras = !self.extras.is_empty();
            self.extras.resize_with(self.values.len(), || None);
            object.insert(self.name.to_owned(), Value::Array(self.values));
            if has_extras {
                let extras = self
                    .extras
                    .into_iter()
                    .map(|extras| extras.unwrap_or(Value::Null))
                    .collect();
                object.insert(extras_key, Value::Array(extras));
            }
        } else {
            // A single element has exactly one occurrence: a second is refused when read.
            if let Some(value) = self.values.pop() {
                object.insert(self.name.to_owned(), value);
            }
            if let Some(Some(extras)) = self.extras.pop() {
                object.insert(extras_key, extras);
            }
        }
    }
}

impl<'i> UntypedReader<'i, '_> {
    fn at(&self, offset: usize) -> TextPosition {
        position_of(offset, self.text)
    }

    fn malformed(&self, message: impl Into<String>, offset: usize) -> XmlError {
        malformed_at(message, self.text, offset)
    }

    fn check_depth(&self, offset: usize) -> Result<(), XmlError> {
        self.path.check_depth(|| self.at(offset))
    }

    fn unknown_attribute(&self, name: &str, offset: usize) -> XmlError {
        XmlError::UnknownAttribute {
            path: self.path.render(),
            name: name.to_owned(),
            at: self.at(offset),
        }
    }

    /// The local name of the element whose start tag `start` begins at `offset`, borrowed from
    /// the input rather than the event so that the path can hold it.
    fn element_name(&self, start: &BytesStart<'_>, offset: usize) -> Result<&'i str, XmlError> {
        let local_name = start.local_name();
        let local_name = local_name.as_ref();
        // The tag is `<` and the qualified name, whose local part is at its end.
        let end = offset + 1 + start.name().as_ref().len();
        self.text
            .get(end - local_name.len()..end)
            .filter(|name| *name == local_name)
            .ok_or_else(|| self.malformed("internal error: element name bounds", offset))
    }

    /// A resource element (`<Patient>`): the root, or the one child of a wrapper element.
    fn resource(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
    ) -> Result<Map<String, Value>, XmlError> {
        let name = self.element_name(start, offset)?;
        expect_namespace(
            self.reader.resolver(),
            start,
            FHIR_NAMESPACE,
            || self.path.render_child(name),
            || self.at(offset),
        )?;
        if !is_resource_type_name(name) {
            // A child is read as a resource for its capital alone, so this catches the root and
            // names with characters no resource type has.
            return Err(XmlError::UnknownElement {
                path: self.path.render_child(name),
                at: self.at(offset),
            });
        }
        self.path.push(Step::Resource(name));
        let result = self.resource_content(start, offset, self_closing, name);
        self.path.pop();
        result
    }

    fn resource_content(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
        name: &str,
    ) -> Result<Map<String, Value>, XmlError> {
        self.check_depth(offset)?;
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|err| self.malformed(err.to_string(), offset))?;
            if self.attribute_name(&attribute, offset)?.is_some() {
                return Err(self.unknown_attribute(attribute.key.as_ref(), offset));
            }
        }
        let mut object = Map::new();
        object.insert("resourceType".into(), Value::String(name.to_owned()));
        if !self_closing {
            self.children(&mut object, Content::Resource)?;
        }
        Ok(object)
    }

    /// The local name of an attribute that carries data, `None` for namespace declarations and
    /// `xsi:` attributes.
    fn attribute_name<'a>(
        &self,
        attribute: &'a Attribute<'_>,
        offset: usize,
    ) -> Result<Option<&'a str>, XmlError> {
        plain_attribute_name(self.reader.resolver(), attribute)
            .map_err(|()| self.unknown_attribute(attribute.key.as_ref(), offset))
    }

    /// An element other than a resource and the narrative: a primitive (JSON string and
    /// `_name` part), an object, or the resource it wraps. The path already names it.
    fn element(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
        name: &str,
    ) -> Result<(Value, Option<Value>), XmlError> {
        self.check_depth(offset)?;
        let mut value = None;
        let mut id = None;
        let mut url = None;
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|err| self.malformed(err.to_string(), offset))?;
            let Some(local_name) = self.attribute_name(&attribute, offset)? else {
                continue;
            };
            let slot = match local_name {
                "value" => &mut value,
                "id" => &mut id,
                "url" if is_extension_key(name) => &mut url,
                _ => return Err(self.unknown_attribute(attribute.key.as_ref(), offset)),
            };
            let text = attribute_value(&attribute, local_name, self.text, offset, || {
                self.path.render()
            })?;
            *slot = Some(text.into_owned());
        }
        if let Some(value) = value {
            if is_extension_key(name) {
                return Err(XmlError::ValueOnComplexType {
                    path: self.path.render(),
                    type_name: "Extension".into(),
                    at: self.at(offset),
                });
            }
            let mut extras = Map::new();
            if let Some(id) = id {
                extras.insert("id".into(), Value::String(id));
            }
            if !self_closing {
                self.children(&mut extras, Content::PrimitiveExtensions)?;
            }
            let extras = (!extras.is_empty()).then_some(Value::Object(extras));
            return Ok((Value::String(value), extras));
        }
        let mut object = Map::new();
        if let Some(id) = id {
            object.insert("id".into(), Value::String(id));
        }
        if let Some(url) = url {
            object.insert("url".into(), Value::String(url));
        }
        if !self_closing && let Some(resource) = self.children(&mut object, Content::Element)? {
            return Ok((resource, None));
        }
        if object.is_empty() {
            return Err(XmlError::EmptyElement {
                path: self.path.render(),
                at: self.at(offset),
            });
        }
        Ok((Value::Object(object), None))
    }

    /// The children of an element, up to its end tag, added to `object`; or the resource the
    /// element wraps, which is returned.
    fn children(
        &mut self,
        object: &mut Map<String, Value>,
        content: Content,
    ) -> Result<Option<Value>, XmlError> {
        let mut state = ChildrenState {
            content,
            group: None,
        };
        let mut resource = None;
        while let Some((offset, child, child_closing)) =
            next_child(&mut self.reader, self.text, &self.path)?
        {
            let name = self.element_name(&child, offset)?;
            // Element names start in lower case, so a capital starts a resource, which must be
            // the only content of its wrapper element.
            if name.starts_with(|first: char| first.is_ascii_uppercase()) {
                let may_wrap = content == Content::Element
                    && object.is_empty()
                    && state.group.is_none()
                    && resource.is_none();
                if !may_wrap {
                    return Err(if resource.is_some() {
                        XmlError::Repeated {
                            path: self.path.render_child(name),
                            at: self.at(offset),
                        }
                    } else {
                        XmlError::UnknownElement {
                            path: self.path.render_child(name),
                            at: self.at(offset),
                        }
                    });
                }
                resource = Some(Value::Object(self.resource(
                    &child,
                    offset,
                    child_closing,
                )?));
                continue;
            }
            if resource.is_some() {
                return Err(XmlError::UnknownElement {
                    path: self.path.render_child(name),
                    at: self.at(offset),
                });
            }
            self.child(&child, offset, child_closing, name, &mut state, object)?;
        }
        if let Some(group) = state.group {
            group.flush_into(object);
        }
        Ok(resource)
    }

    /// One child element that is not a resource: checks its name, namespace and place, reads
    /// it and adds it to the open group (flushing the previous group when a new name starts).
    fn child(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
        name: &'i str,
        state: &mut ChildrenState<'i>,
        object: &mut Map<String, Value>,
    ) -> Result<(), XmlError> {
        let (content, group) = (state.content, &mut state.group);
        let is_narrative = name == "div";
        let namespace = if is_narrative {
            XHTML_NAMESPACE
        } else {
            FHIR_NAMESPACE
        };
        expect_namespace(
            self.reader.resolver(),
            start,
            namespace,
            || self.path.render_child(name),
            || self.at(offset),
        )?;
        let allowed = match content {
            Content::PrimitiveExtensions => name == "extension",
            Content::Resource | Content::Element => is_element_name(name),
        };
        if !allowed {
            return Err(XmlError::UnknownElement {
                path: self.path.render_child(name),
                at: self.at(offset),
            });
        }
        let repeats = content == Content::PrimitiveExtensions || (self.repeating)(name);
        let same_group = group.as_ref().is_some_and(|open| open.name == name);
        if same_group && !repeats {
            return Err(XmlError::Repeated {
                path: self.path.render_child(name),
                at: self.at(offset),
            });
        }
        if !same_group {
            if object.contains_key(name) {
                return Err(match group.as_ref() {
                    Some(open) if repeats => XmlError::OutOfOrder {
                        path: self.path.render_child(name),
                        after: open.name.to_owned(),
                        at: self.at(offset),
                    },
                    // A second occurrence, or an element that is also an attribute (`id`).
                    _ => XmlError::Repeated {
                        path: self.path.render_child(name),
                        at: self.at(offset),
                    },
                });
            }
            if let Some(previous) = group.take() {
                previous.flush_into(object);
            }
        }
        let open = group.get_or_insert_with(|| Group {
            name,
            repeats,
            values: Vec::new(),
            extras: Vec::new(),
        });
        self.path.push(Step::Child {
            name,
            choice_type: None,
            index: repeats.then_some(open.values.len()),
        });
        let result = if is_narrative {
            self.narrative(start, offset, self_closing)
                .map(|div| (Value::String(div), None))
        } else {
            self.element(start, offset, self_closing, name)
        };
        self.path.pop();
        let (value, extras) = result?;
        open.push(value, extras);
        Ok(())
    }

    /// The narrative `div`, as the typed reader reads it (see [`read_narrative`]).
    fn narrative(
        &mut self,
        start: &BytesStart<'_>,
        offset: usize,
        self_closing: bool,
    ) -> Result<String, XmlError> {
        self.check_depth(offset)?;
        read_narrative(
            &mut self.reader,
            self.text,
            start,
            offset,
            self_closing,
            &self.path,
        )
    }
}
