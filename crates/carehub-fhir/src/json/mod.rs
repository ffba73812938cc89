//! FHIR JSON in, checked against the base definitions of its version.
//!
//! A resource is kept as the `serde_json::Value` it arrived as (numbers keep their exact text),
//! so nothing is lost between what a client sends and what it reads back. Checking walks the
//! value beside the model and reports every problem at once, each with the FHIRPath location of
//! the element at fault, rather than stopping at the first.

use serde_json::{Map, Value};

use crate::datetime::{DateKind, PartialDateTime, validate_time};
use crate::model::data::ElementDef;
use crate::model::{FhirVersion, Model};
use crate::outcome::{Issue, IssueType};

/// How deep resources may nest (contained resources, bundles of bundles, extensions of
/// extensions) before they are refused. Deeper nesting serves no clinical purpose and bounds
/// the stack used by recursive checks.
pub const MAX_DEPTH: usize = 64;

/// Parses a resource from JSON bytes and checks it. On success the value is returned as sent;
/// otherwise every issue found.
pub fn parse_resource(version: FhirVersion, bytes: &[u8]) -> Result<Value, Vec<Issue>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        vec![Issue::error(
            IssueType::Structure,
            format!("The body is not valid JSON: {err}"),
        )]
    })?;
    let issues = validate_resource(version.model(), &value);
    if issues.iter().any(Issue::is_error) {
        return Err(issues);
    }
    Ok(value)
}

/// Checks a resource against the base definitions and returns every issue found.
pub fn validate_resource(model: &Model, value: &Value) -> Vec<Issue> {
    let mut checker = Checker {
        model,
        issues: Vec::new(),
    };
    checker.resource(value, "", 0);
    checker.issues
}

/// The resource type of a JSON resource, if it names a known concrete type.
pub fn resource_type<'v>(model: &Model, value: &'v Value) -> Option<&'v str> {
    let name = value.get("resourceType")?.as_str()?;
    model.resource(name).map(|_| name)
}

struct Checker<'m> {
    model: &'m Model,
    issues: Vec<Issue>,
}

impl Checker<'_> {
    fn push(&mut self, code: IssueType, location: &str, diagnostics: String) {
        self.issues
            .push(Issue::error(code, diagnostics).at(location));
    }

    /// A resource at `prefix` (empty for the root; `Bundle.entry[0].resource` when nested).
    fn resource(&mut self, value: &Value, prefix: &str, depth: usize) {
        let location = if prefix.is_empty() { "(root)" } else { prefix };
        let Some(object) = value.as_object() else {
            self.push(
                IssueType::Structure,
                location,
                "A resource must be a JSON object".into(),
            );
            return;
        };
        let Some(type_name) = object.get("resourceType").and_then(Value::as_str) else {
            self.push(
                IssueType::Required,
                location,
                "The resource has no resourceType".into(),
            );
            return;
        };
        if self.model.resource(type_name).is_none() {
            self.push(
                IssueType::NotSupported,
                location,
                format!(
                    "'{type_name}' is not a resource type of FHIR {}",
                    self.model.version()
                ),
            );
            return;
        }
        if let Some(id) = object.get("id")
            && !id.as_str().is_some_and(is_valid_id)
        {
            let path = format!("{}.id", path_start(prefix, type_name));
            self.push(
                IssueType::Value,
                &path,
                "A resource id must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'".into(),
            );
        }
        let path = path_start(prefix, type_name);
        self.object(object, type_name, &path, depth, true);
    }

    /// The children of an object of type `type_name` at `path`.
    fn object(
        &mut self,
        object: &Map<String, Value>,
        type_name: &str,
        path: &str,
        depth: usize,
        is_resource: bool,
    ) {
        if depth > MAX_DEPTH {
            self.push(
                IssueType::TooCostly,
                path,
                format!("Nesting deeper than {MAX_DEPTH} levels is not accepted"),
            );
            return;
        }
        let Some(type_def) = self.model.type_def(type_name) else {
            self.push(
                IssueType::Exception,
                path,
                format!("No definition for type '{type_name}'"),
            );
            return;
        };
        if object.is_empty() && !is_resource {
            self.push(
                IssueType::Structure,
                path,
                "An element must have a value or children; empty objects are not allowed".into(),
            );
        }
        // Which choice elements have been seen, to reject two variants of one.
        let mut choices_seen: Vec<&str> = Vec::new();
        for (key, child) in object {
            if is_resource && key == "resourceType" {
                continue;
            }
            if key == "fhir_comments" && self.model.version() == FhirVersion::Stu3 {
                continue;
            }
            let child_path = format!("{path}.{key}");
            if let Some(base) = key.strip_prefix('_') {
                self.primitive_extension(type_name, base, child, &child_path, depth);
                continue;
            }
            let Some(resolved) = self.model.resolve_key(type_name, key) else {
                let hint = unknown_element_hint(self.model, type_name, key);
                self.push(
                    IssueType::Structure,
                    &child_path,
                    format!("Unknown element '{key}' in {type_name}{hint}"),
                );
                continue;
            };
            let element = resolved.element;
            if element.choice {
                if choices_seen.contains(&element.name.as_str()) {
                    self.push(
                        IssueType::Structure,
                        &child_path,
                        format!(
                            "Only one type of the choice element {}[x] may be given",
                            element.name
                        ),
                    );
                }
                choices_seen.push(&element.name);
            }
            let has_extension_sibling = object.contains_key(&format!("_{key}"));
            self.element_value(
                element,
                resolved.type_code,
                child,
                &child_path,
                depth,
                has_extension_sibling,
            );
        }
        for element in &type_def.elements {
            if element.min == 0 {
                continue;
            }
            let present = if element.choice {
                element.types.iter().any(|code| {
                    let key = format!("{}{}", element.name, crate::model::capitalise(code));
                    object.contains_key(&key) || object.contains_key(&format!("_{key}"))
                })
            } else {
                object.contains_key(&element.name)
                    || object.contains_key(&format!("_{}", element.name))
            };
            if !present {
                let suffix = if element.choice { "[x]" } else { "" };
                self.push(
                    IssueType::Required,
                    &format!("{path}.{}{suffix}", element.name),
                    format!(
                        "{type_name}.{}{suffix} is required (minimum cardinality {})",
                        element.name, element.min
                    ),
                );
            }
        }
    }

    fn element_value(
        &mut self,
        element: &ElementDef,
        type_code: &str,
        value: &Value,
        path: &str,
        depth: usize,
        has_extension_sibling: bool,
    ) {
        match (element.is_array(), value) {
            (true, Value::Array(items)) => {
                if items.is_empty() {
                    self.push(
                        IssueType::Structure,
                        path,
                        "Arrays must not be empty; leave the element out instead".into(),
                    );
                }
                if let Some(max) = element.max
                    && items.len() > max as usize
                {
                    self.push(
                        IssueType::Structure,
                        path,
                        format!("At most {max} values are allowed, {} given", items.len()),
                    );
                }
                for (index, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{index}]");
                    // A null stands for a value whose extensions are in the `_` sibling.
                    if item.is_null() && has_extension_sibling {
                        continue;
                    }
                    self.single(element, type_code, item, &item_path, depth);
                }
            }
            (true, _) => self.push(
                IssueType::Structure,
                path,
                format!("'{}' repeats, so it must be a JSON array", element.name),
            ),
            (false, Value::Array(_)) => self.push(
                IssueType::Structure,
                path,
                format!(
                    "'{}' does not repeat, so it must not be a JSON array",
                    element.name
                ),
            ),
            (false, value) => self.single(element, type_code, value, path, depth),
        }
    }

    fn single(
        &mut self,
        element: &ElementDef,
        type_code: &str,
        value: &Value,
        path: &str,
        depth: usize,
    ) {
        if type_code == "Resource" || self.model.resource(type_code).is_some() {
            self.resource(value, path, depth + 1);
            return;
        }
        if self.model.is_primitive(type_code) {
            self.primitive(type_code, value, path);
            if let (Some(url), Some(code)) = (&element.required_binding, value.as_str())
                && type_code == "code"
                && let Some(codes) = self.model.value_set_codes(url)
                && !codes.contains(code)
            {
                let mut allowed: Vec<&str> = codes.iter().map(String::as_str).collect();
                allowed.sort_unstable();
                let list = if allowed.len() <= 12 {
                    format!(": one of {}", allowed.join(", "))
                } else {
                    String::new()
                };
                self.push(
                    IssueType::CodeInvalid,
                    path,
                    format!("'{code}' is not in the value set {url}{list}"),
                );
            }
            return;
        }
        let Some(object) = value.as_object() else {
            self.push(
                IssueType::Structure,
                path,
                format!(
                    "'{}' is a {type_code}, so it must be a JSON object",
                    element.name
                ),
            );
            return;
        };
        let child_type = self.model.child_type_name(element, type_code);
        self.object(object, child_type, path, depth + 1, false);
    }

    /// `_name`: the id and extensions of primitive `name`.
    fn primitive_extension(
        &mut self,
        type_name: &str,
        base: &str,
        value: &Value,
        path: &str,
        depth: usize,
    ) {
        let Some(resolved) = self.model.resolve_key(type_name, base) else {
            self.push(
                IssueType::Structure,
                path,
                format!("Unknown element '{base}' in {type_name}"),
            );
            return;
        };
        if !self.model.is_primitive(resolved.type_code) {
            self.push(
                IssueType::Structure,
                path,
                format!("'_{base}' is only allowed for primitive elements"),
            );
            return;
        }
        let items: Vec<&Value> = match value {
            Value::Array(items) if resolved.element.is_array() => items.iter().collect(),
            Value::Array(_) => {
                self.push(
                    IssueType::Structure,
                    path,
                    format!("'{base}' does not repeat, so '_{base}' must not be an array"),
                );
                return;
            }
            single => vec![single],
        };
        for (index, item) in items.into_iter().enumerate() {
            if item.is_null() {
                continue;
            }
            let item_path = if resolved.element.is_array() {
                format!("{path}[{index}]")
            } else {
                path.to_owned()
            };
            match item.as_object() {
                Some(object) => self.object(object, "Element", &item_path, depth + 1, false),
                None => self.push(
                    IssueType::Structure,
                    &item_path,
                    "A primitive's '_' sibling must be an object with id and extension".into(),
                ),
            }
        }
    }

    fn primitive(&mut self, type_code: &str, value: &Value, path: &str) {
        if let Err(reason) = check_primitive(type_code, value) {
            self.push(IssueType::Value, path, reason);
        }
    }
}

fn path_start(prefix: &str, type_name: &str) -> String {
    if prefix.is_empty() {
        type_name.to_owned()
    } else {
        // Nested resources are named by where they are, e.g. `Bundle.entry[0].resource`,
        // then their own type so a reader knows which definition applies.
        format!("{prefix}.ofType({type_name})")
    }
}

/// Suggests the choice spelling when a client sends `value` for `value[x]`.
fn unknown_element_hint(model: &Model, type_name: &str, key: &str) -> String {
    let Some(type_def) = model.type_def(type_name) else {
        return String::new();
    };
    match type_def.elements.iter().find(|e| e.choice && e.name == key) {
        Some(choice) => format!(
            "; '{key}' is a choice element: name the type, e.g. '{key}{}'",
            choice
                .types
                .first()
                .map(|t| crate::model::capitalise(t))
                .unwrap_or_default()
        ),
        None => String::new(),
    }
}

/// Whether a text is a valid FHIR id.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Checks a JSON value against a primitive type; the error says what was expected.
pub fn check_primitive(type_code: &str, value: &Value) -> Result<(), String> {
    let text = || {
        value
            .as_str()
            .ok_or_else(|| format!("a {type_code} must be a JSON string"))
    };
    match type_code {
        "boolean" => value
            .is_boolean()
            .then_some(())
            .ok_or_else(|| "a boolean must be true or false (not a string)".to_owned()),
        "integer" | "positiveInt" | "unsignedInt" => {
            let Value::Number(number) = value else {
                return Err(format!("a {type_code} must be a JSON number"));
            };
            let parsed = number
                .to_string()
                .parse::<i64>()
                .ok()
                .filter(|n| i32::try_from(*n).is_ok())
                .ok_or_else(|| format!("a {type_code} must be a whole number in 32-bit range"))?;
            match type_code {
                "positiveInt" if parsed < 1 => Err("a positiveInt must be 1 or more".into()),
                "unsignedInt" if parsed < 0 => Err("an unsignedInt must be 0 or more".into()),
                _ => Ok(()),
            }
        }
        "decimal" => value
            .is_number()
            .then_some(())
            .ok_or_else(|| "a decimal must be a JSON number".to_owned()),
        "date" => PartialDateTime::parse(text()?, DateKind::Date)
            .map(|_| ())
            .map_err(|e| format!("invalid date: {e}")),
        "dateTime" => PartialDateTime::parse(text()?, DateKind::DateTime)
            .map(|_| ())
            .map_err(|e| format!("invalid dateTime: {e}")),
        "instant" => PartialDateTime::parse(text()?, DateKind::Instant)
            .map(|_| ())
            .map_err(|e| format!("invalid instant: {e}")),
        "time" => validate_time(text()?).map_err(|e| format!("invalid time: {e}")),
        "code" => {
            let text = text()?;
            let well_formed = !text.is_empty()
                && !text.starts_with(char::is_whitespace)
                && !text.ends_with(char::is_whitespace)
                && !text.contains("  ")
                && !text.contains(['\t', '\n', '\r']);
            well_formed.then_some(()).ok_or_else(|| {
                "a code must be non-empty with no leading, trailing or repeated whitespace".into()
            })
        }
        "id" => is_valid_id(text()?)
            .then_some(())
            .ok_or_else(|| "an id must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'".into()),
        "uri" | "url" | "canonical" => {
            let text = text()?;
            (!text.is_empty() && !text.contains(char::is_whitespace))
                .then_some(())
                .ok_or_else(|| format!("a {type_code} must be non-empty with no whitespace"))
        }
        "oid" => {
            let ok = text()?.strip_prefix("urn:oid:").is_some_and(|rest| {
                rest.split('.').count() >= 2
                    && rest
                        .split('.')
                        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            });
            ok.then_some(())
                .ok_or_else(|| "an oid must look like urn:oid:1.2.3".into())
        }
        "uuid" => {
            let ok = text()?.strip_prefix("urn:uuid:").is_some_and(is_uuid);
            ok.then_some(()).ok_or_else(|| {
                "a uuid must look like urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".into()
            })
        }
        "base64Binary" => {
            let ok = text()?.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'+' | b'/' | b'=')
                    || b.is_ascii_whitespace()
            });
            ok.then_some(())
                .ok_or_else(|| "a base64Binary must hold base64 characters only".into())
        }
        "xhtml" => text()?
            .trim_start()
            .starts_with("<div")
            .then_some(())
            .ok_or_else(|| "narrative must be an XHTML <div> element".into()),
        // string, markdown and anything newer.
        _ => {
            let text = text()?;
            if text.is_empty() {
                Err(format!(
                    "a {type_code} must not be empty; leave the element out instead"
                ))
            } else if text.len() > 1024 * 1024 {
                Err(format!("a {type_code} must not exceed 1 MB"))
            } else {
                Ok(())
            }
        }
    }
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(index, b)| match index {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests;
