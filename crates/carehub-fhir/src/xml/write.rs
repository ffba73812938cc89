//! JSON to XML: walks a JSON resource beside its definitions and writes quick-xml events.
//!
//! JSON key order means nothing in FHIR while XML element order is part of validity, so each
//! object's keys are first resolved against the type's elements and then written in the
//! definitions' order, each primitive joined with its `_name` sibling. Keys the definitions do
//! not know are errors, not silently dropped data.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::name::QName;
use serde_json::{Map, Value};

use super::narrative::prepare_div;
use super::{
    AttributeElements, FHIR_NAMESPACE, Path, Step, TextPosition, ValueKind, XmlError,
    element_order, is_numeric, is_xml_char,
};
use crate::model::Model;
use crate::model::data::{ElementDef, TypeDef};

/// Writes `resource` as a FHIR XML document.
pub(super) fn write_resource(
    model: &Model,
    resource: &Value,
    pretty: bool,
) -> Result<String, XmlError> {
    let output = Vec::with_capacity(1024);
    let writer = if pretty {
        Writer::new_with_indent(output, b' ', 2)
    } else {
        Writer::new(output)
    };
    let Some(extension_type) = model.type_def("Extension") else {
        return Err(XmlError::InvalidJson {
            path: "(root)".into(),
            message: "the FHIR model has no Extension type".into(),
        });
    };
    let mut json_to_xml = JsonToXml {
        model,
        extension_type,
        writer,
        path: Path::default(),
    };
    json_to_xml.resource(resource, true)?;
    into_text(json_to_xml.writer)
}

/// The text a writer wrote. Shared with the writer for versions without definitions.
pub(super) fn into_text(writer: Writer<Vec<u8>>) -> Result<String, XmlError> {
    let bytes = writer.into_inner();
    // Everything written came from `&str`s, so this cannot fail; map rather than unwrap anyway.
    String::from_utf8(bytes).map_err(|err| XmlError::InvalidJson {
        path: "(root)".into(),
        message: format!("produced invalid UTF-8: {err}"),
    })
}

/// The state of one conversion.
struct JsonToXml<'m> {
    model: &'m Model,
    /// The definition of `Extension`, needed for every primitive with extensions.
    extension_type: &'m TypeDef,
    writer: Writer<Vec<u8>>,
    path: Path<'m>,
}

/// One element of an object, joined from its JSON key and its `_key` sibling.
struct Entry<'v, 'm> {
    /// Position of the element in the type's definition, which is the XML order.
    order: usize,
    /// The JSON key without `_`, which is also the XML element name (`valueQuantity`).
    key: &'v str,
    element: &'m ElementDef,
    type_code: &'m str,
    value: Option<&'v Value>,
    /// The `_key` sibling: id and extensions of primitives.
    primitive_extras: Option<&'v Value>,
}

impl<'m> JsonToXml<'m> {
    fn error_json(&self, message: impl Into<String>) -> XmlError {
        XmlError::InvalidJson {
            path: self.path.render(),
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
    fn resource(&mut self, value: &Value, is_root: bool) -> Result<(), XmlError> {
        let Some(object) = value.as_object() else {
            return Err(self.error_json("a resource must be a JSON object"));
        };
        let Some(type_name) = object.get("resourceType").and_then(Value::as_str) else {
            return Err(self.error_json("the resource has no resourceType"));
        };
        let Some(type_def) = self.model.resource(type_name) else {
            return Err(XmlError::UnknownResourceType {
                path: self.path.render(),
                name: type_name.to_owned(),
                version: self.model.version(),
                at: TextPosition::NONE,
            });
        };
        self.path.push(Step::Resource(&type_def.name));
        let mut start = BytesStart::new(type_def.name.as_str());
        if is_root {
            start.push_attribute(("xmlns", FHIR_NAMESPACE));
        }
        let result = self.object(start, object, type_def, true);
        self.path.pop();
        result
    }

    /// An object of type `type_def` as the element started by `start`.
    fn object(
        &mut self,
        mut start: BytesStart<'_>,
        object: &Map<String, Value>,
        type_def: &'m TypeDef,
        is_resource: bool,
    ) -> Result<(), XmlError> {
        self.check_depth()?;
        let attribute_elements = AttributeElements::of(type_def);
        let entries = self.entries(object, type_def, is_resource, attribute_elements)?;
        // Attributes first: `id` of data types and backbones, `url` of extensions.
        for name in ["id", "url"] {
            if attribute_elements.contains(name) {
                push_element_attribute(&mut start, object, name, &self.path)?;
            }
        }
        if entries.is_empty() {
            return self.write_event(Event::Empty(start));
        }
        let end = start.to_end().into_owned();
        self.write_event(Event::Start(start))?;
        for entry in &entries {
            self.entry(entry)?;
        }
        self.write_event(Event::End(end))
    }

    /// Resolves the keys of an object against its type and puts them in definition order.
    fn entries<'v>(
        &self,
        object: &'v Map<String, Value>,
        type_def: &'m TypeDef,
        is_resource: bool,
        attribute_elements: AttributeElements,
    ) -> Result<Vec<Entry<'v, 'm>>, XmlError> {
        let type_name = type_def.name.as_str();
        let mut entries: Vec<Entry<'v, 'm>> = Vec::with_capacity(object.len());
        for (key, value) in object {
            if (is_resource && key == "resourceType") || key == "fhir_comments" {
                // STU3 JSON may carry `fhir_comments`; XML comments are not kept either way.
                continue;
            }
            let (name, is_extras) = match key.strip_prefix('_') {
                Some(name) => (name, true),
                None => (key.as_str(), false),
            };
            let Some(resolved) = self.model.resolve_key(type_name, name) else {
                return Err(XmlError::UnknownElement {
                    path: self.path.render_child(key),
                    at: TextPosition::NONE,
                });
            };
            if attribute_elements.contains(&resolved.element.name) {
                if is_extras {
                    return Err(XmlError::UnknownElement {
                        path: self.path.render_child(key),
                        at: TextPosition::NONE,
                    });
                }
                continue;
            }
            let order = element_order(type_def, resolved.element);
            let existing = entries.iter_mut().find(|entry| entry.key == name);
            let entry = match existing {
                Some(entry) => entry,
                None => {
                    entries.push(Entry {
                        order,
                        key: name,
                        element: resolved.element,
                        type_code: resolved.type_code,
                        value: None,
                        primitive_extras: None,
                    });
                    let last = entries.len() - 1;
                    &mut entries[last]
                }
            };
            if is_extras {
                entry.primitive_extras = Some(value);
            } else {
                entry.value = Some(value);
            }
        }
        entries.sort_by_key(|entry| entry.order);
        // Two keys for one element can only be two types of a choice (`valueString` and
        // `valueInteger`), which FHIR forbids.
        if let Some(pair) = entries
            .windows(2)
            .find(|pair| pair[0].order == pair[1].order)
        {
            return Err(XmlError::Repeated {
                path: self.path.render_child(pair[1].key),
                at: TextPosition::NONE,
            });
        }
        Ok(entries)
    }

    /// Writes every occurrence of one element.
    fn entry(&mut self, entry: &Entry<'_, 'm>) -> Result<(), XmlError> {
        let element = entry.element;
        let choice_type = element.choice.then_some(entry.type_code);
        let is_array = element.is_array();
        let values = self.occurrences(entry.key, entry.value, is_array)?;
        let extras = self.occurrences(entry.key, entry.primitive_extras, is_array)?;
        if entry.primitive_extras.is_some() && entry.value.is_some() && values.len() != extras.len()
        {
            return Err(XmlError::InvalidJson {
                path: self.path.render_child(&format!("_{}", entry.key)),
                message: format!(
                    "has {} entries but {} has {}; they must align",
                    extras.len(),
                    entry.key,
                    values.len()
                ),
            });
        }
        let Some(kind) = ValueKind::of(self.model, element, entry.type_code) else {
            return Err(self.error_json(format!("no definition for type {}", entry.type_code)));
        };
        let count = values.len().max(extras.len());
        for index in 0..count {
            self.path.push(Step::Child {
                name: &element.name,
                choice_type,
                index: is_array.then_some(index),
            });
            let value = values.get(index).filter(|value| !value.is_null());
            let extra = extras.get(index).filter(|value| !value.is_null());
            let result = self.occurrence(entry, kind, value, extra);
            self.path.pop();
            result?;
        }
        Ok(())
    }

    /// The occurrences under one key: the array's items, or the single value.
    fn occurrences<'v>(
        &self,
        key: &str,
        value: Option<&'v Value>,
        is_array: bool,
    ) -> Result<&'v [Value], XmlError> {
        match (value, is_array) {
            (None, _) => Ok(&[]),
            (Some(Value::Array(items)), true) => Ok(items),
            (Some(_), true) => Err(XmlError::InvalidJson {
                path: self.path.render_child(key),
                message: "a repeating element must be a JSON array".into(),
            }),
            (Some(Value::Array(_)), false) => Err(XmlError::InvalidJson {
                path: self.path.render_child(key),
                message: "a single element must not be a JSON array".into(),
            }),
            (Some(value), false) => Ok(std::slice::from_ref(value)),
        }
    }

    /// Writes one occurrence of an element; the path already names it.
    fn occurrence(
        &mut self,
        entry: &Entry<'_, 'm>,
        kind: ValueKind<'m>,
        value: Option<&Value>,
        extras: Option<&Value>,
    ) -> Result<(), XmlError> {
        let type_code = entry.type_code;
        let type_def = match kind {
            ValueKind::Narrative => {
                if extras.is_some() {
                    return Err(self.error_json("the narrative div cannot have id or extensions"));
                }
                return match value.and_then(Value::as_str) {
                    Some(div) => self.narrative(div),
                    None => Err(self.error_json("the narrative div must be a JSON string")),
                };
            }
            ValueKind::Primitive => return self.primitive(entry.key, type_code, value, extras),
            ValueKind::Resource | ValueKind::Complex(_) if extras.is_some() => {
                return Err(self.error_json("only primitive elements have a '_' sibling"));
            }
            ValueKind::Resource => None,
            ValueKind::Complex(type_def) => Some(type_def),
        };
        let Some(value) = value else {
            return Err(self.error_json("null is only allowed in arrays of primitives"));
        };
        let Some(type_def) = type_def else {
            // Resources inside resources are wrapped: <contained><Patient>...</Patient></contained>.
            self.check_depth()?;
            self.write_event(Event::Start(BytesStart::new(entry.key)))?;
            self.resource(value, false)?;
            return self.write_event(Event::End(BytesEnd::new(entry.key)));
        };
        let Some(object) = value.as_object() else {
            return Err(self.error_json(format!(
                "an element of type {type_code} must be a JSON object"
            )));
        };
        self.object(BytesStart::new(entry.key), object, type_def, false)
    }

    /// `<name id="..." value="..."/>`, with `<extension>` children when there are any.
    fn primitive(
        &mut self,
        key: &str,
        type_code: &str,
        value: Option<&Value>,
        extras: Option<&Value>,
    ) -> Result<(), XmlError> {
        self.check_depth()?;
        let extras =
            PrimitiveExtras::read(extras, &self.path, |key| key == "fhir_comments", false)?;
        let text = value
            .map(|value| self.primitive_text(type_code, value))
            .transpose()?;
        let start = extras.start_tag(key, text.as_deref(), &self.path)?;
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
                Some(object) => self.object(
                    BytesStart::new("extension"),
                    object,
                    self.extension_type,
                    false,
                ),
                None => Err(self.error_json("an extension must be a JSON object")),
            };
            self.path.pop();
            result?;
        }
        self.write_event(Event::End(end))
    }

    /// The text of a primitive's `value` attribute, checking the JSON type fits the FHIR type.
    fn primitive_text<'v>(
        &self,
        type_code: &str,
        value: &'v Value,
    ) -> Result<Cow<'v, str>, XmlError> {
        let expected = match (type_code, value) {
            ("boolean", Value::Bool(true)) => return Ok(Cow::Borrowed("true")),
            ("boolean", Value::Bool(false)) => return Ok(Cow::Borrowed("false")),
            ("boolean", _) => "a JSON boolean",
            // With `arbitrary_precision` a number displays as the exact text it was read from.
            (code, Value::Number(number)) if is_numeric(code) => {
                return Ok(Cow::Owned(number.to_string()));
            }
            (code, _) if is_numeric(code) => "a JSON number",
            (_, Value::String(text)) => return Ok(Cow::Borrowed(text)),
            _ => "a JSON string",
        };
        Err(XmlError::InvalidValue {
            path: self.path.render(),
            message: format!("a {type_code} must be {expected}"),
            at: TextPosition::NONE,
        })
    }

    /// The narrative div, written as the markup it is.
    fn narrative(&mut self, div: &str) -> Result<(), XmlError> {
        let markup = div_markup(div, &self.path)?;
        // Raw bytes bypass the writer's indentation, so put the div on its own line by hand
        // (a no-op for compact output); the writer still indents the closing tag after it.
        self.writer
            .write_indent()
            .map_err(|err| self.error_json(format!("writing XML failed: {err}")))?;
        self.writer.get_mut().extend_from_slice(markup.as_bytes());
        Ok(())
    }
}

/// Writes one event for either writer, or says why not at `path`. Writing into a Vec cannot
/// fail, but the signature is io::Result.
pub(super) fn write_event(
    writer: &mut Writer<Vec<u8>>,
    event: Event<'_>,
    path: &Path<'_>,
) -> Result<(), XmlError> {
    writer
        .write_event(event)
        .map_err(|err| XmlError::InvalidJson {
            path: path.render(),
            message: format!("writing XML failed: {err}"),
        })
}

/// The markup to write for the narrative `div` that `path` names, once checked (see
/// [`prepare_div`]); both writers write a narrative as the markup it is.
pub(super) fn div_markup<'d>(div: &'d str, path: &Path<'_>) -> Result<Cow<'d, str>, XmlError> {
    prepare_div(div, path.depth()).map_err(|message| XmlError::InvalidNarrative {
        path: path.render(),
        message,
        at: TextPosition::NONE,
    })
}

/// Writes `object[name]`, when there is one, as the attribute `name` of `start`: how both
/// writers carry the elements that FHIR XML puts in attributes (`id` of data types and backbone
/// elements, `url` of extensions). `path` names the object. Returns whether there was one.
pub(super) fn push_element_attribute(
    start: &mut BytesStart<'_>,
    object: &Map<String, Value>,
    name: &str,
    path: &Path<'_>,
) -> Result<bool, XmlError> {
    let Some(value) = object.get(name) else {
        return Ok(false);
    };
    let Some(text) = value.as_str() else {
        return Err(XmlError::InvalidValue {
            path: path.render_child(name),
            message: "must be a JSON string".into(),
            at: TextPosition::NONE,
        });
    };
    let escaped = escape_attribute(text, name, path)?;
    start.push_attribute(Attribute {
        key: QName(name),
        value: escaped,
    });
    Ok(true)
}

/// What a primitive's `_name` sibling puts into XML: the `id` attribute, already escaped, and
/// the `extension` children. Both writers read the sibling and build the primitive's start tag
/// with this, so that they refuse the same shapes with the same errors.
#[derive(Default)]
pub(super) struct PrimitiveExtras<'v> {
    id: Option<Cow<'v, str>>,
    /// Written as children by the caller, which knows how to write an extension.
    pub(super) extensions: &'v [Value],
}

impl<'v> PrimitiveExtras<'v> {
    /// Reads the `_name` sibling `extras` of the primitive that `path` names. The two writers
    /// differ in what they let pass, which the caller says: `is_comment_key` picks the keys that
    /// only carry comments (skipped), and `refuse_empty` refuses an empty object or `extension`
    /// array, as FHIR JSON does (the writer for versions without definitions holds its JSON to
    /// that everywhere; the typed writer lets empty ones pass).
    pub(super) fn read(
        extras: Option<&'v Value>,
        path: &Path<'_>,
        is_comment_key: fn(&str) -> bool,
        refuse_empty: bool,
    ) -> Result<PrimitiveExtras<'v>, XmlError> {
        let mut found = PrimitiveExtras::default();
        let Some(extras) = extras else {
            return Ok(found);
        };
        let error_json = |message: &str| XmlError::InvalidJson {
            path: path.render(),
            message: message.into(),
        };
        let Some(extras) = extras.as_object() else {
            return Err(error_json(
                "the '_' sibling of a primitive must be an object",
            ));
        };
        if refuse_empty && extras.is_empty() {
            return Err(error_json("FHIR JSON does not allow an empty '_' object"));
        }
        for (extra_key, extra) in extras {
            match (extra_key.as_str(), extra) {
                ("id", Value::String(id)) => found.id = Some(escape_attribute(id, "id", path)?),
                ("extension", Value::Array(items)) if !(refuse_empty && items.is_empty()) => {
                    found.extensions = items;
                }
                (key, _) if is_comment_key(key) => {}
                ("id", _) | ("extension", _) => {
                    return Err(XmlError::InvalidValue {
                        path: path.render_child(extra_key),
                        message: "has the wrong JSON type".into(),
                        at: TextPosition::NONE,
                    });
                }
                _ => {
                    return Err(XmlError::UnknownElement {
                        path: path.render_child(extra_key),
                        at: TextPosition::NONE,
                    });
                }
            }
        }
        Ok(found)
    }

    /// The start tag of the primitive `name`, which `path` names: `<name id="..." value="...">`
    /// from the id read and `value`, the text of the primitive's value (escaped here). Refuses
    /// an element with neither, nor extensions (JSON `null` with nothing in `_name`), which
    /// FHIR does not allow.
    pub(super) fn start_tag<'n>(
        &self,
        name: &'n str,
        value: Option<&str>,
        path: &Path<'_>,
    ) -> Result<BytesStart<'n>, XmlError> {
        let mut start = BytesStart::new(name);
        if let Some(id) = &self.id {
            start.push_attribute(Attribute {
                key: QName("id"),
                value: Cow::Borrowed(id.as_ref()),
            });
        }
        if let Some(value) = value {
            let escaped = escape_attribute(value, "value", path)?;
            start.push_attribute(Attribute {
                key: QName("value"),
                value: escaped,
            });
        } else if self.extensions.is_empty() && self.id.is_none() {
            return Err(XmlError::EmptyElement {
                path: path.render(),
                at: TextPosition::NONE,
            });
        }
        Ok(start)
    }
}

/// Escapes the value of the attribute `attribute` of the element that `path` names (see
/// [`escape_attribute_value`]). A character XML cannot carry is refused at the path JSON gives
/// the value: the element itself for `value`, the element's `id` or `url` otherwise.
fn escape_attribute<'t>(
    text: &'t str,
    attribute: &str,
    path: &Path<'_>,
) -> Result<Cow<'t, str>, XmlError> {
    escape_attribute_value(text).map_err(|character| XmlError::InvalidValue {
        path: if attribute == "value" {
            path.render()
        } else {
            path.render_child(attribute)
        },
        message: format!(
            "character U+{:04X} cannot be represented in XML",
            u32::from(character)
        ),
        at: TextPosition::NONE,
    })
}

/// Escapes an attribute value so that it reads back exactly: markup characters as entities and
/// tab, newline and carriage return as character references, because an XML parser turns the
/// literal characters into spaces. A character XML cannot carry at all is returned as the error.
fn escape_attribute_value(text: &str) -> Result<Cow<'_, str>, char> {
    let needs_escaping = |character: char| {
        matches!(character, '&' | '<' | '>' | '"' | '\t' | '\n' | '\r') || !is_xml_char(character)
    };
    let Some(first) = text.find(needs_escaping) else {
        return Ok(Cow::Borrowed(text));
    };
    let mut escaped = String::with_capacity(text.len() + 16);
    escaped.push_str(&text[..first]);
    for character in text[first..].chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\t' => escaped.push_str("&#x9;"),
            '\n' => escaped.push_str("&#xA;"),
            '\r' => escaped.push_str("&#xD;"),
            character if is_xml_char(character) => escaped.push(character),
            character => return Err(character),
        }
    }
    Ok(Cow::Owned(escaped))
}
