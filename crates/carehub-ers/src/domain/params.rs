//! Reading e-RS `Parameters` bodies strictly: each operation names the parameters it takes,
//! and anything else is `UNEXPECTED_FIELD`, as e-RS answers; a wrong value type is
//! `INVALID_FHIR_STRUCTURE`, a missing one `MISSING_VALUE`.

use serde_json::Value;

use super::error::ErsError;

/// A Parameters resource, checked against the names an operation accepts.
#[derive(Debug)]
pub struct Params<'a> {
    /// Where this Parameters sits in the body, for diagnostics (`parameter[2]/resource`).
    path: String,
    entries: Vec<(usize, &'a Value)>,
}

impl<'a> Params<'a> {
    /// Checks that `body` is a Parameters whose parameters are all among `accepted`.
    pub fn read(body: &'a Value, accepted: &[&str]) -> Result<Params<'a>, ErsError> {
        Params::read_at(body, accepted, String::new())
    }

    fn read_at(body: &'a Value, accepted: &[&str], path: String) -> Result<Params<'a>, ErsError> {
        let at = |rest: &str| {
            if path.is_empty() {
                rest.to_owned()
            } else {
                format!("{path}/{rest}")
            }
        };
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(ErsError::rule(
                "INVALID_FHIR_STRUCTURE",
                format!("'{}' must be a Parameters resource", at("resourceType")),
            ));
        }
        let list = match body.get("parameter") {
            None => &[][..],
            Some(Value::Array(list)) => list.as_slice(),
            Some(_) => {
                return Err(ErsError::rule(
                    "INVALID_FHIR_STRUCTURE",
                    format!("'{}' must be an array", at("parameter")),
                ));
            }
        };
        let mut entries = Vec::with_capacity(list.len());
        for (index, parameter) in list.iter().enumerate() {
            let name = parameter.get("name").and_then(Value::as_str).unwrap_or("");
            if !accepted.contains(&name) {
                return Err(ErsError::rule(
                    "UNEXPECTED_FIELD",
                    format!(
                        "'{}' ({name}) unknown parameter name; this operation takes: {}",
                        at(&format!("parameter[{index}]")),
                        accepted.join(", ")
                    ),
                ));
            }
            entries.push((index, parameter));
        }
        Ok(Params { path, entries })
    }

    fn location(&self, index: usize) -> String {
        if self.path.is_empty() {
            format!("parameter[{index}]")
        } else {
            format!("{}/parameter[{index}]", self.path)
        }
    }

    /// Every parameter named `name`, with its location.
    fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = (String, &'a Value)> + 's {
        self.entries
            .iter()
            .filter(move |(_, p)| p.get("name").and_then(Value::as_str) == Some(name))
            .map(|(index, p)| (self.location(*index), *p))
    }

    /// The one parameter named `name`, if present; more than one is an error.
    fn one(&self, name: &str) -> Result<Option<(String, &'a Value)>, ErsError> {
        let mut found = self.all(name);
        let first = found.next();
        if let Some((location, _)) = found.next() {
            return Err(ErsError::rule(
                "INVALID_FHIR_STRUCTURE",
                format!("'{location}' ({name}) may appear only once"),
            ));
        }
        Ok(first)
    }

    /// The value of `name` as `value{kind}`, if present.
    pub fn value(&self, name: &str, kind: &str) -> Result<Option<&'a Value>, ErsError> {
        let Some((location, parameter)) = self.one(name)? else {
            return Ok(None);
        };
        let key = format!("value{kind}");
        match parameter.get(&key) {
            Some(value) => Ok(Some(value)),
            None => Err(ErsError::rule(
                "INVALID_FHIR_STRUCTURE",
                format!("'{location}' ({name}) must carry {key}"),
            )),
        }
    }

    /// As [`Params::value`], for a parameter that must be present.
    pub fn required(&self, name: &str, kind: &str) -> Result<&'a Value, ErsError> {
        self.value(name, kind)?
            .ok_or_else(|| ErsError::missing(&format!("parameter {name}")))
    }

    /// A string-like value (`valueString`, `valueCode`, `valueId`...).
    pub fn text(&self, name: &str, kind: &str) -> Result<Option<&'a str>, ErsError> {
        match self.value(name, kind)? {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(ErsError::rule(
                "INVALID_FHIR_STRUCTURE",
                format!("parameter {name}: value{kind} must be a string"),
            )),
        }
    }

    /// A boolean value.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ErsError> {
        match self.value(name, "Boolean")? {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(ErsError::rule(
                "INVALID_FHIR_STRUCTURE",
                format!("parameter {name}: valueBoolean must be true or false"),
            )),
        }
    }

    /// A `valueUnsignedInt`.
    pub fn unsigned(&self, name: &str) -> Result<Option<u64>, ErsError> {
        match self.value(name, "UnsignedInt")? {
            None => Ok(None),
            Some(value) => value.as_u64().map(Some).ok_or_else(|| {
                ErsError::rule(
                    "INVALID_FHIR_STRUCTURE",
                    format!(
                        "parameter {name}: valueUnsignedInt must be a whole number of 0 or more"
                    ),
                )
            }),
        }
    }

    /// A `valueCoding`'s system and code.
    pub fn coding(&self, name: &str) -> Result<Option<Coding<'a>>, ErsError> {
        match self.value(name, "Coding")? {
            None => Ok(None),
            Some(value) => Coding::read(value, name).map(Some),
        }
    }

    /// A `valueIdentifier`'s system and value.
    pub fn identifier(&self, name: &str) -> Result<Option<(&'a str, &'a str)>, ErsError> {
        match self.value(name, "Identifier")? {
            None => Ok(None),
            Some(value) => {
                let system = value.get("system").and_then(Value::as_str).unwrap_or("");
                let Some(id) = value.get("value").and_then(Value::as_str) else {
                    return Err(ErsError::missing(&format!(
                        "parameter {name}: valueIdentifier.value"
                    )));
                };
                Ok(Some((system, id)))
            }
        }
    }

    /// The embedded resource of `name`, if present.
    pub fn resource(&self, name: &str) -> Result<Option<(String, &'a Value)>, ErsError> {
        let Some((location, parameter)) = self.one(name)? else {
            return Ok(None);
        };
        match parameter.get("resource") {
            Some(resource) if resource.is_object() => {
                Ok(Some((format!("{location}/resource"), resource)))
            }
            _ => Err(ErsError::rule(
                "INVALID_FHIR_STRUCTURE",
                format!("'{location}' ({name}) must carry a resource"),
            )),
        }
    }

    /// Every embedded resource of `name` (a repeating parameter), with its location.
    pub fn resources(&self, name: &str) -> Result<Vec<(String, &'a Value)>, ErsError> {
        self.all(name)
            .map(|(location, parameter)| match parameter.get("resource") {
                Some(resource) if resource.is_object() => {
                    Ok((format!("{location}/resource"), resource))
                }
                _ => Err(ErsError::rule(
                    "INVALID_FHIR_STRUCTURE",
                    format!("'{location}' ({name}) must carry a resource"),
                )),
            })
            .collect()
    }

    /// An embedded Parameters, read with its own accepted names.
    pub fn nested(
        &self,
        location: String,
        body: &'a Value,
        accepted: &[&str],
    ) -> Result<Params<'a>, ErsError> {
        Params::read_at(body, accepted, location)
    }
}

/// A Coding as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coding<'a> {
    /// Its system, empty when absent.
    pub system: &'a str,
    /// Its code.
    pub code: &'a str,
}

impl<'a> Coding<'a> {
    /// Reads a Coding, which must have a code.
    pub fn read(value: &'a Value, what: &str) -> Result<Coding<'a>, ErsError> {
        let system = value.get("system").and_then(Value::as_str).unwrap_or("");
        let code = value
            .get("code")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ErsError::missing(&format!("{what}: code")))?;
        Ok(Coding { system, code })
    }

    /// Checks the system: an exact URL, or (for e-RS reference data served at
    /// `{base}/STU3/CodeSystem/{TYPE}`) any URL ending in that path, so that the official
    /// examples' `_baseUrl_` placeholder and a real base URL are both accepted.
    pub fn check_system(&self, what: &str, expected: &str) -> Result<(), ErsError> {
        let matches = if let Some(tail) = expected.strip_prefix("{base}") {
            self.system
                .to_ascii_lowercase()
                .ends_with(&tail.to_ascii_lowercase())
        } else {
            self.system == expected
        };
        if matches {
            Ok(())
        } else {
            Err(ErsError::rule(
                "INVALID_CODE",
                format!(
                    "{what}: the code system '{}' is not the one expected ({})",
                    self.system,
                    expected.replace("{base}", "<API base URL>")
                ),
            ))
        }
    }
}
