//! `cargo codegen`, second part: the NHS STU3 profiles (Care Connect, GP Connect, e-RS and the
//! other NHS Digital StructureDefinitions, published as XML) into
//! `crates/carehub-fhir/generated/stu3-nhs-profiles.json`.
//!
//! A profile's snapshot repeats its base at length; we keep only what a validator needs beyond
//! the base definitions: elements whose cardinality differs from the base, slices and their
//! discriminators, fixed and pattern values, required bindings we can expand, FHIRPath
//! invariants, type profiles, and the elements on the way to those.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use carehub_fhir::FhirVersion;
use carehub_fhir::model::data::ValueSetDef;
use carehub_fhir::profile::data::{
    Constraint, Discriminator, ProfileDef, ProfileElement, ProfileSetData, ProfileType,
};
use serde_json::Value;

use crate::codegen::Expander;

/// Folders under the shared FHIR directory, in order of precedence: when two hold a definition
/// with the same URL, the first wins. GP Connect's release comes first because the GP Connect
/// provider serves that release.
const FOLDERS: [&str; 2] = ["nhs/gpconnect-fhir", "nhs/STU3-FHIR-Assets"];

pub(crate) const OUTPUT: &str = "stu3-nhs-profiles.json";

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            xml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
    Ok(())
}

pub(crate) fn generate(shared: &Path) -> Result<ProfileSetData> {
    let mut structures: BTreeMap<String, Value> = BTreeMap::new();
    let mut value_sets = HashMap::new();
    let mut code_systems = HashMap::new();
    for folder in FOLDERS {
        let mut files = Vec::new();
        xml_files(&shared.join(folder), &mut files)?;
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let resource = match carehub_fhir::xml::from_xml(FhirVersion::Stu3, &text) {
                Ok(resource) => resource,
                Err(err) => {
                    eprintln!("skipping {}: {err}", path.display());
                    continue;
                }
            };
            let Some(url) = resource
                .get("url")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            match resource.get("resourceType").and_then(Value::as_str) {
                Some("StructureDefinition") => {
                    structures.entry(url).or_insert(resource);
                }
                Some("ValueSet") => {
                    value_sets.entry(url).or_insert(resource);
                }
                Some("CodeSystem") => {
                    code_systems.entry(url).or_insert(resource);
                }
                _ => {}
            }
        }
    }
    let expander = Expander {
        value_sets: &value_sets,
        code_systems: &code_systems,
    };
    let mut expanded: BTreeMap<String, ValueSetDef> = BTreeMap::new();
    let mut profiles = Vec::new();
    for (url, structure) in &structures {
        if structure.get("derivation").and_then(Value::as_str) != Some("constraint") {
            continue;
        }
        let Some(type_name) = structure.get("type").and_then(Value::as_str) else {
            continue;
        };
        let Some(snapshot) = structure
            .pointer("/snapshot/element")
            .and_then(Value::as_array)
        else {
            continue;
        };
        let mut elements = Vec::new();
        let mut interesting = BTreeSet::new();
        for element in snapshot {
            let Some((profile_element, keep)) = element_of(element, &expander, &mut expanded)
            else {
                continue;
            };
            if keep {
                interesting.insert(profile_element.id.clone());
            }
            elements.push(profile_element);
        }
        // Keep the path to everything kept, and the element a kept slice belongs to (it holds
        // the discriminators).
        let mut keep = BTreeSet::new();
        for id in &interesting {
            let mut current = id.as_str();
            loop {
                keep.insert(current.to_owned());
                let last = current.rsplit('.').next().unwrap_or(current);
                if let Some((name, _slice)) = last.split_once(':') {
                    let sliced = format!("{}{name}", &current[..current.len() - last.len()]);
                    keep.insert(sliced);
                }
                match current.rfind('.') {
                    Some(dot) => current = &current[..dot],
                    None => break,
                }
            }
        }
        elements.retain(|e| keep.contains(&e.id));
        profiles.push(ProfileDef {
            url: url.clone(),
            name: structure
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            type_name: type_name.to_owned(),
            elements,
        });
    }
    Ok(ProfileSetData {
        profiles,
        value_sets: expanded.into_values().collect(),
    })
}

fn cardinality(value: Option<&Value>) -> Option<u32> {
    match value.and_then(Value::as_str) {
        Some("*") | None => None,
        Some(text) => text.parse().ok(),
    }
}

/// What we keep of one snapshot element, and whether it constrains anything itself.
fn element_of(
    element: &Value,
    expander: &Expander<'_>,
    expanded: &mut BTreeMap<String, ValueSetDef>,
) -> Option<(ProfileElement, bool)> {
    let id = element
        .get("id")
        .or_else(|| element.get("path"))
        .and_then(Value::as_str)?
        .to_owned();
    let min = element.get("min").and_then(Value::as_u64).unwrap_or(0) as u32;
    let max = cardinality(element.get("max"));
    let base_min = element
        .pointer("/base/min")
        .and_then(Value::as_u64)
        .map(|m| m as u32);
    let base_max = cardinality(element.pointer("/base/max"));
    let mut keep = base_min.is_some_and(|b| b != min) || base_max != max;

    let value_of = |prefix: &str| {
        element.as_object().and_then(|map| {
            map.iter()
                .find(|(key, _)| {
                    key.strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
                })
                .map(|(_, value)| value.clone())
        })
    };
    let fixed = value_of("fixed");
    let pattern = value_of("pattern");
    keep |= fixed.is_some() || pattern.is_some();

    let is_choice = element
        .get("path")
        .and_then(Value::as_str)
        .is_some_and(|p| p.ends_with("[x]"));
    let mut types = Vec::new();
    for ty in element
        .get("type")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let strings = |key: &str| match ty.get(key) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let Some(code) = ty.get("code").and_then(Value::as_str) else {
            continue;
        };
        types.push(ProfileType {
            code: code.to_owned(),
            profiles: strings("profile"),
            target_profiles: strings("targetProfile"),
        });
    }
    let profiled = types
        .iter()
        .any(|t| !t.profiles.is_empty() || !t.target_profiles.is_empty());
    if profiled || is_choice {
        keep |= profiled;
    } else {
        types.clear();
    }

    let mut required_binding = None;
    if element.pointer("/binding/strength").and_then(Value::as_str) == Some("required") {
        let url = element
            .pointer("/binding/valueSetReference/reference")
            .or_else(|| element.pointer("/binding/valueSetUri"))
            .or_else(|| element.pointer("/binding/valueSet"))
            .and_then(Value::as_str)
            .map(|u| u.split('|').next().unwrap_or(u).to_owned());
        if let Some(url) = url
            && let Some(codes) = expander.expand(&url, 0)
        {
            expanded.entry(url.clone()).or_insert_with(|| ValueSetDef {
                url: url.clone(),
                system: expander.single_system(&url),
                codes: codes.into_iter().collect(),
            });
            required_binding = Some(url);
            keep = true;
        }
    }

    let mut constraints = Vec::new();
    for constraint in element
        .get("constraint")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let text = |key: &str| constraint.get(key).and_then(Value::as_str);
        let (Some(key), Some(expression)) = (text("key"), text("expression")) else {
            continue;
        };
        // `ele-1` and `ext-1` restate structure the base validator already checks.
        if key == "ele-1" || key == "ext-1" {
            continue;
        }
        constraints.push(Constraint {
            key: key.to_owned(),
            severity: text("severity").unwrap_or("error").to_owned(),
            human: text("human").unwrap_or_default().to_owned(),
            expression: expression.to_owned(),
        });
    }
    keep |= !constraints.is_empty();

    let discriminators: Vec<Discriminator> = element
        .pointer("/slicing/discriminator")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|d| {
                    Some(Discriminator {
                        kind: d.get("type")?.as_str()?.to_owned(),
                        path: d.get("path")?.as_str()?.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let slicing_closed =
        element.pointer("/slicing/rules").and_then(Value::as_str) == Some("closed");
    // Every STU3 `extension` element declares slicing by url; only slices make it matter (and
    // keeping a slice keeps the element it slices).
    keep |= element.get("sliceName").is_some();

    Some((
        ProfileElement {
            id,
            min,
            max,
            types,
            fixed,
            pattern,
            required_binding,
            constraints,
            discriminators,
            slicing_closed,
        },
        keep,
    ))
}
