//! The rules for the narrative `div`, shared by both directions.
//!
//! FHIR JSON carries `Narrative.div` as a string of XHTML markup and FHIR XML embeds the same
//! markup as elements, so the markup is copied verbatim each way rather than rebuilt, which keeps
//! it exactly as the author wrote it. Copying verbatim is only safe when the markup stands on
//! its own, so both directions insist on the same things: a single `div` root declaring (or
//! given) the XHTML namespace, no namespace prefixes on elements (a prefix declared outside the
//! copied text would dangle), every element in the XHTML namespace, only the entities XML
//! predefines, no document type declaration, and bounded nesting. Comments inside the `div` are
//! part of its markup in JSON and are kept.
//!
//! One character needs care: an XML parser turns every carriage return in text and attribute
//! values into a line feed (or a space), so a `\r` in the JSON markup could never come back.
//! The writer spells it `&#xD;` in text and attribute values, and the reader turns that
//! reference back into `\r`, while raw line ends in XML input are normalised as XML requires.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{NamespaceResolver, ResolveResult};
use quick_xml::reader::NsReader;

use super::{MAX_DEPTH, XHTML_NAMESPACE, first_non_xml_char};

/// The namespace that `xml:lang` and `xml:space` live in; always bound, never declared.
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// Checks a narrative string from JSON before it is written into XML as it is. Returns the
/// markup to write: the input without surrounding whitespace, with the XHTML namespace
/// declaration added to the `div` when it has none (FHIR JSON requires it, but a missing one is
/// unambiguous to repair, while writing the div without it would put it in the FHIR namespace)
/// and carriage returns written as `&#xD;`. `depth` is the nesting depth of the `div` itself.
/// Errors are messages for [`super::XmlError::InvalidNarrative`].
pub(super) fn prepare_div(div: &str, depth: usize) -> Result<Cow<'_, str>, String> {
    let markup = div.trim_matches(is_xml_whitespace);
    if let Some(character) = first_non_xml_char(markup) {
        return Err(format!(
            "character U+{:04X} cannot appear in XML",
            u32::from(character)
        ));
    }
    let mut reader = NsReader::from_str(markup);
    reader.config_mut().check_comments = true;
    let mut open_elements = 0usize;
    let mut root_seen = false;
    // Parts of the markup that must be rewritten, in document order.
    let mut rewrites: Vec<Rewrite> = Vec::new();
    loop {
        let start = offset(reader.buffer_position());
        let event = reader
            .read_event()
            .map_err(|err| format!("not well-formed XHTML: {err}"))?;
        let end = offset(reader.buffer_position());
        let has_carriage_return = markup.get(start..end).is_some_and(|raw| raw.contains('\r'));
        match event {
            Event::Start(ref tag) | Event::Empty(ref tag) => {
                let mut add_namespace = false;
                if open_elements == 0 {
                    if root_seen {
                        return Err("the narrative must be a single <div> element".into());
                    }
                    root_seen = true;
                    if tag.name().as_ref() != "div" {
                        return Err(format!(
                            "the narrative must be a <div> element, not <{}>",
                            tag.name().as_ref()
                        ));
                    }
                    match declared_default_namespace(tag)?.as_deref() {
                        Some(XHTML_NAMESPACE) => {}
                        Some(_) => {
                            return Err(format!(
                                "the div must be in the XHTML namespace {XHTML_NAMESPACE}"
                            ));
                        }
                        None => add_namespace = true,
                    }
                }
                // Without a declaration on the div, its elements are in no namespace until the
                // declaration is added, so that is accepted here too.
                check_element(reader.resolver(), tag, true)?;
                if matches!(event, Event::Start(_)) {
                    open_elements += 1;
                    if depth + open_elements > MAX_DEPTH {
                        return Err(format!("nests deeper than {MAX_DEPTH} elements"));
                    }
                }
                if add_namespace || has_carriage_return {
                    rewrites.push(Rewrite::Tag {
                        start,
                        end,
                        add_namespace,
                    });
                }
            }
            Event::End(_) => open_elements = open_elements.saturating_sub(1),
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) if open_elements == 0 => {
                return Err("text outside the <div> element".into());
            }
            Event::Text(_) => {
                if has_carriage_return {
                    rewrites.push(Rewrite::Text { start, end });
                }
            }
            Event::CData(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::GeneralRef(reference) => check_reference(&reference)?,
            Event::Decl(_) => return Err("an XML declaration cannot appear in a narrative".into()),
            Event::DocType(_) => {
                return Err("document type declarations are not allowed".into());
            }
            Event::Eof => break,
        }
    }
    if open_elements != 0 {
        return Err("not well-formed XHTML: unclosed element".into());
    }
    if !root_seen {
        return Err("the narrative is empty; it must be a <div> element".into());
    }
    if rewrites.is_empty() {
        return Ok(Cow::Borrowed(markup));
    }
    let mut text = String::with_capacity(markup.len() + 64);
    let mut copied = 0;
    for rewrite in rewrites {
        let (start, end) = match rewrite {
            Rewrite::Tag { start, end, .. } | Rewrite::Text { start, end } => (start, end),
        };
        let (Some(before), Some(raw)) = (markup.get(copied..start), markup.get(start..end)) else {
            return Err("internal error: narrative bounds".into());
        };
        text.push_str(before);
        match rewrite {
            Rewrite::Text { .. } => text.push_str(&raw.replace('\r', "&#xD;")),
            Rewrite::Tag { add_namespace, .. } => {
                let rest = match raw.strip_prefix("<div") {
                    Some(rest) if add_namespace => {
                        text.push_str("<div");
                        push_namespace_declaration(&mut text);
                        rest
                    }
                    _ => raw,
                };
                push_tag_escaping_carriage_returns(&mut text, rest);
            }
        }
        copied = end;
    }
    text.push_str(markup.get(copied..).unwrap_or(""));
    Ok(Cow::Owned(text))
}

/// A part of the JSON markup that is not written as it is.
enum Rewrite {
    /// A start or empty-element tag: carriage returns in attribute values, and the namespace
    /// declaration for the root `div` when it lacks one.
    Tag {
        start: usize,
        end: usize,
        add_namespace: bool,
    },
    /// Text with carriage returns.
    Text { start: usize, end: usize },
}

/// ` xmlns="http://www.w3.org/1999/xhtml"`.
pub(super) fn push_namespace_declaration(target: &mut String) {
    target.push_str(" xmlns=\"");
    target.push_str(XHTML_NAMESPACE);
    target.push('"');
}

/// Appends a raw tag with the carriage returns inside its quoted attribute values written as
/// `&#xD;` (between attributes a carriage return is only whitespace, and a reference would not
/// be allowed there).
fn push_tag_escaping_carriage_returns(target: &mut String, raw_tag: &str) {
    let mut quote: Option<char> = None;
    for character in raw_tag.chars() {
        match (quote, character) {
            (None, '"' | '\'') => quote = Some(character),
            (Some(open), _) if open == character => quote = None,
            (Some(_), '\r') => {
                target.push_str("&#xD;");
                continue;
            }
            _ => {}
        }
        target.push(character);
    }
}

/// Appends a raw tag from XML input: line ends normalised as an XML parser would, and
/// references to carriage returns (which can only be in attribute values) turned into the
/// character.
pub(super) fn push_tag_from_xml(target: &mut String, raw_tag: &str) {
    let mut rest = raw_tag;
    while let Some(at) = rest.find("&#") {
        let Some(length) = rest[at..].find(';') else {
            break;
        };
        if char_reference(&rest[at + 1..at + length]) == Some('\r') {
            push_normalising_line_ends(target, &rest[..at]);
            target.push('\r');
        } else {
            push_normalising_line_ends(target, &rest[..=at + length]);
        }
        rest = &rest[at + length + 1..];
    }
    push_normalising_line_ends(target, rest);
}

/// The character of a reference written without `&` and `;` (`#xD`, `#13`), if it is one.
fn char_reference(reference: &str) -> Option<char> {
    let number = reference.strip_prefix('#')?;
    let code = match number.strip_prefix('x') {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => number.parse().ok()?,
    };
    char::from_u32(code)
}

/// Whether a reference in narrative text stands for a carriage return (`&#xD;`, `&#13;`...),
/// which the reader turns back into the character JSON carries.
pub(super) fn is_carriage_return(reference: &BytesRef<'_>) -> bool {
    matches!(reference.resolve_char_ref(), Ok(Some('\r')))
}

/// Appends raw XML text with its line ends normalised as an XML parser would: `\r\n` and a
/// lone `\r` both become `\n`.
pub(super) fn push_normalising_line_ends(target: &mut String, raw: &str) {
    if !raw.contains('\r') {
        target.push_str(raw);
        return;
    }
    let mut rest = raw;
    while let Some(at) = rest.find('\r') {
        target.push_str(&rest[..at]);
        target.push('\n');
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('\n') {
            rest = after;
        }
    }
    target.push_str(rest);
}

/// The value of the element's own `xmlns="..."` declaration, if it has one.
pub(super) fn declared_default_namespace(start: &BytesStart<'_>) -> Result<Option<String>, String> {
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|err| format!("malformed attribute: {err}"))?;
        if attribute.key.as_ref() == "xmlns" {
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| format!("malformed attribute: {err}"))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// Checks one element of the narrative (the `div` or a descendant) against the rules above;
/// `allow_no_namespace` when the `div` has no namespace declaration yet.
pub(super) fn check_element(
    resolver: &NamespaceResolver,
    start: &BytesStart<'_>,
    allow_no_namespace: bool,
) -> Result<(), String> {
    let name = start.name();
    if name.prefix().is_some() {
        return Err(format!(
            "namespace prefixes are not supported in narrative (<{}>)",
            name.as_ref()
        ));
    }
    match resolver.resolve_element(name).0 {
        ResolveResult::Bound(namespace) if namespace.as_ref() == XHTML_NAMESPACE => {}
        ResolveResult::Unbound if allow_no_namespace => {}
        _ => {
            return Err(format!("<{}> is not in the XHTML namespace", name.as_ref()));
        }
    }
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|err| format!("malformed attribute: {err}"))?;
        if attribute.key.as_namespace_binding().is_some() {
            continue;
        }
        if attribute.key.prefix().is_some() {
            let (namespace, _) = resolver.resolve_attribute(attribute.key);
            let is_xml = matches!(namespace,
                ResolveResult::Bound(ns) if ns.as_ref() == XML_NAMESPACE);
            if !is_xml {
                return Err(format!(
                    "namespace-prefixed attribute '{}' is not supported in narrative",
                    attribute.key.as_ref()
                ));
            }
        }
        if attribute.value.contains('<') {
            return Err(format!(
                "'<' is not allowed in the value of attribute '{}'",
                attribute.key.as_ref()
            ));
        }
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| format!("attribute '{}': {err}", attribute.key.as_ref()))?;
        if let Some(character) = first_non_xml_char(&value) {
            return Err(format!(
                "character U+{:04X} cannot appear in XML",
                u32::from(character)
            ));
        }
    }
    Ok(())
}

/// Checks an entity or character reference in narrative text: only the five entities XML
/// predefines and references to characters XML allows (HTML's `&nbsp;` and friends need a DTD,
/// which FHIR does not allow; `&#160;` is the portable spelling).
pub(super) fn check_reference(reference: &BytesRef<'_>) -> Result<(), String> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(character)) if super::is_xml_char(character) => Ok(()),
            _ => Err(format!(
                "&{}; is not a character XML allows",
                reference.as_ref()
            )),
        };
    }
    if resolve_xml_entity(reference.as_ref()).is_some() {
        return Ok(());
    }
    Err(format!(
        "undefined entity &{}; (only &lt; &gt; &amp; &quot; &apos; and character references are allowed)",
        reference.as_ref()
    ))
}

/// XML's whitespace: space, tab, newline, carriage return.
pub(super) fn is_xml_whitespace(character: char) -> bool {
    matches!(character, ' ' | '\t' | '\n' | '\r')
}

/// A reader offset as an index; the input is a `&str`, so offsets always fit.
pub(super) fn offset(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}
