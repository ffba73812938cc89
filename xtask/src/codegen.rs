//! `cargo codegen`: extracts element metadata, required value sets and search parameters from the
//! official FHIR definitions (kept outside the repository) into the compact JSON files under
//! `crates/carehub-fhir/generated/`, which are committed so that building carehub needs nothing
//! but the repository.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use carehub_fhir::model::data::{
    ElementDef, ModelData, SearchParamDef, TypeDef, TypeKind, ValueSetDef,
};
use serde_json::Value;

/// One FHIR version's inputs and output.
struct Source {
    /// Folder (under the shared FHIR directory) with the StructureDefinition, ValueSet and
    /// CodeSystem files.
    core: &'static str,
    /// Extra folder with ValueSets that already carry their expansion (STU3 only).
    expansions: Option<&'static str>,
    /// Where the search parameters are: a bundle file, or `None` for one file per parameter.
    search_bundle: Option<&'static str>,
    /// The output file name under `crates/carehub-fhir/generated/`.
    output: &'static str,
}

const SOURCES: [Source; 2] = [
    Source {
        core: "stu3/core-3.0.2",
        expansions: Some("stu3/expansions-3.0.2"),
        search_bundle: Some("stu3/bundles-3.0.2/search-parameters.json"),
        output: "stu3.json",
    },
    Source {
        core: "r4/core-4.0.1",
        expansions: None,
        search_bundle: None,
        output: "r4.json",
    },
];

/// Runs the generator; with `check`, fails if a committed file differs from what it would write.
pub(crate) fn run(workspace: &Path, check: bool) -> Result<()> {
    let shared = shared_fhir_dir(workspace)?;
    let out_dir = workspace.join("crates/carehub-fhir/generated");
    let mut stale = Vec::new();
    let mut emit = |output: &str, mut text: String| -> Result<()> {
        text.push('\n');
        let path = out_dir.join(output);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == text {
            return Ok(());
        }
        if check {
            stale.push(path.display().to_string());
        } else {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        Ok(())
    };
    for source in &SOURCES {
        let data = generate(&shared, source)
            .with_context(|| format!("generating from {}", source.core))?;
        emit(source.output, serde_json::to_string(&data)?)?;
    }
    let profiles = crate::profiles::generate(&shared).context("generating the NHS profiles")?;
    emit(crate::profiles::OUTPUT, serde_json::to_string(&profiles)?)?;
    if !stale.is_empty() {
        bail!(
            "generated files are stale, run `cargo codegen`: {}",
            stale.join(", ")
        );
    }
    Ok(())
}

/// The definitions live beside the repository, in `shared/fhir`; `CAREHUB_FHIR_DEFINITIONS`
/// overrides that.
fn shared_fhir_dir(workspace: &Path) -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("CAREHUB_FHIR_DEFINITIONS") {
        return Ok(PathBuf::from(dir));
    }
    let candidate = workspace.join("../shared/fhir");
    if candidate.is_dir() {
        return Ok(candidate);
    }
    bail!(
        "FHIR definitions not found at {}; set CAREHUB_FHIR_DEFINITIONS",
        candidate.display()
    )
}

fn generate(shared: &Path, source: &Source) -> Result<ModelData> {
    let core = shared.join(source.core);
    let mut structures = Vec::new();
    let mut value_sets = HashMap::new();
    let mut code_systems = HashMap::new();
    let mut fhir_version = String::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&core)
        .with_context(|| format!("reading {}", core.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    if let Some(expansions) = source.expansions {
        for entry in std::fs::read_dir(shared.join(expansions))? {
            files.push(entry?.path());
        }
    }
    // Sorted so that the output does not depend on directory order.
    files.sort();
    for path in files {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".json") {
            continue;
        }
        if name == "package.json" {
            let package = read_json(&path)?;
            if let Some(version) = package.get("version").and_then(Value::as_str) {
                fhir_version = version.to_owned();
            }
            continue;
        }
        let resource = read_json(&path)?;
        match resource.get("resourceType").and_then(Value::as_str) {
            Some("StructureDefinition") => structures.push(resource),
            Some("ValueSet") => {
                if let Some(url) = resource.get("url").and_then(Value::as_str) {
                    // The expansion files come after the core ones: keep a ValueSet with an
                    // expansion over the same one without.
                    let has_expansion = resource.get("expansion").is_some();
                    let keep = !value_sets.contains_key(url) || has_expansion;
                    if keep {
                        value_sets.insert(url.to_owned(), resource);
                    }
                }
            }
            Some("CodeSystem") => {
                if let Some(url) = resource.get("url").and_then(Value::as_str) {
                    code_systems.insert(url.to_owned(), resource);
                }
            }
            _ => {}
        }
    }
    if fhir_version.is_empty() {
        bail!("no package.json with a version in {}", core.display());
    }

    let mut types = Vec::new();
    let mut required = BTreeSet::new();
    for structure in &structures {
        let derivation = structure.get("derivation").and_then(Value::as_str);
        let kind = structure.get("kind").and_then(Value::as_str).unwrap_or("");
        // Profiles (constraints) and logical models are not base types.
        if derivation == Some("constraint") || kind == "logical" {
            continue;
        }
        let kind = match kind {
            "primitive-type" => TypeKind::Primitive,
            "complex-type" => TypeKind::Complex,
            "resource" => TypeKind::Resource,
            _ => continue,
        };
        types.extend(type_defs(structure, kind, &mut required)?);
    }
    types.sort_by(|a, b| a.name.cmp(&b.name));

    let expander = Expander {
        value_sets: &value_sets,
        code_systems: &code_systems,
    };
    let value_sets = required
        .iter()
        .filter_map(|url| {
            let codes = expander.expand(url, 0)?;
            Some(ValueSetDef {
                url: url.clone(),
                system: expander.single_system(url),
                codes: codes.into_iter().collect(),
            })
        })
        .collect();

    let search_params = match source.search_bundle {
        Some(bundle) => {
            let bundle = read_json(&shared.join(bundle))?;
            let entries = bundle
                .get("entry")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            entries
                .iter()
                .filter_map(|entry| entry.get("resource"))
                .filter_map(search_param)
                .collect()
        }
        None => {
            let mut params = Vec::new();
            let mut files: Vec<PathBuf> = std::fs::read_dir(&core)?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            files.sort();
            for path in files {
                let is_param = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("SearchParameter-") && n.ends_with(".json"));
                if is_param && let Some(param) = search_param(&read_json(&path)?) {
                    params.push(param);
                }
            }
            params
        }
    };
    let mut search_params: Vec<SearchParamDef> = search_params;
    search_params.sort_by(|a, b| a.url.cmp(&b.url));

    Ok(ModelData {
        fhir_version,
        types,
        value_sets,
        search_params,
    })
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Turns one StructureDefinition's snapshot into its type plus one type per backbone path.
fn type_defs(
    structure: &Value,
    kind: TypeKind,
    required: &mut BTreeSet<String>,
) -> Result<Vec<TypeDef>> {
    let name = structure
        .get("type")
        .or_else(|| structure.get("id"))
        .and_then(Value::as_str)
        .context("StructureDefinition without type")?
        .to_owned();
    let base = structure
        .get("baseDefinition")
        .and_then(Value::as_str)
        .and_then(|url| url.rsplit('/').next())
        .map(str::to_owned);
    let is_abstract = structure
        .get("abstract")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let elements = structure
        .pointer("/snapshot/element")
        .and_then(Value::as_array)
        .with_context(|| format!("{name} has no snapshot"))?;

    // Paths that have children are backbones, whatever their declared type.
    let paths: Vec<&str> = elements
        .iter()
        .filter_map(|e| e.get("path").and_then(Value::as_str))
        .collect();
    let mut parents: BTreeSet<&str> = BTreeSet::new();
    for path in &paths {
        if let Some((parent, _)) = path.rsplit_once('.') {
            parents.insert(parent);
        }
    }

    let mut children: BTreeMap<String, Vec<ElementDef>> = BTreeMap::new();
    let mut order: Vec<String> = vec![name.clone()];
    for element in elements {
        let Some(path) = element.get("path").and_then(Value::as_str) else {
            continue;
        };
        let Some((parent, raw_name)) = path.rsplit_once('.') else {
            continue;
        };
        // Primitive types describe their JSON value as a `value` child; it is not an element.
        if kind == TypeKind::Primitive {
            continue;
        }
        let choice = raw_name.ends_with("[x]");
        let element_name = raw_name.trim_end_matches("[x]").to_owned();
        let mut types = Vec::new();
        let mut targets = Vec::new();
        for ty in element
            .get("type")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let code = type_code(ty);
            if let Some(code) = code
                && !types.contains(&code)
            {
                types.push(code);
            }
            // STU3 has one targetProfile string per type entry; R4 a list on one entry.
            let profiles: Vec<&str> = match ty.get("targetProfile") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for profile in profiles {
                if let Some(target) = profile.rsplit('/').next()
                    && target != "Resource"
                    && !targets.iter().any(|t| t == target)
                {
                    targets.push(target.to_owned());
                }
            }
        }
        let element_type =
            if let Some(reference) = element.get("contentReference").and_then(Value::as_str) {
                // `#Questionnaire.item`, or in R4 also a full URL ending in `#Questionnaire.item`.
                let target = reference.rsplit('#').next().unwrap_or(reference).to_owned();
                if types.is_empty() {
                    types.push("BackboneElement".to_owned());
                }
                Some(target)
            } else if parents.contains(path) {
                order.push(path.to_owned());
                Some(path.to_owned())
            } else {
                None
            };
        let required_binding = binding_url(element);
        if let Some(url) = &required_binding {
            required.insert(url.clone());
        }
        let max = match element.get("max").and_then(Value::as_str) {
            Some("*") | None => None,
            Some(n) => Some(n.parse().with_context(|| format!("max of {path}"))?),
        };
        let min = element
            .get("min")
            .and_then(Value::as_u64)
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0);
        children
            .entry(parent.to_owned())
            .or_default()
            .push(ElementDef {
                name: element_name,
                types,
                min,
                max,
                choice,
                summary: element
                    .get("isSummary")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                modifier: element
                    .get("isModifier")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                targets,
                required_binding,
                element_type,
            });
    }

    let mut defs = Vec::new();
    for (index, path) in order.into_iter().enumerate() {
        let elements = children.remove(&path).unwrap_or_default();
        defs.push(if index == 0 {
            TypeDef {
                name: path,
                kind,
                base: base.clone(),
                is_abstract,
                elements,
            }
        } else {
            TypeDef {
                name: path,
                kind: TypeKind::Backbone,
                base: None,
                is_abstract: false,
                elements,
            }
        });
    }
    Ok(defs)
}

/// The FHIR type code of an `ElementDefinition.type`. R4 writes the types of `id`, `url` and
/// primitive values as FHIRPath system types with the FHIR type in an extension.
fn type_code(ty: &Value) -> Option<String> {
    let code = ty.get("code").and_then(Value::as_str)?;
    if let Some(system) = code.strip_prefix("http://hl7.org/fhirpath/System.") {
        let from_extension = ty
            .get("extension")
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter().find(|ext| {
                    ext.get("url").and_then(Value::as_str)
                        == Some(
                            "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type",
                        )
                })
            })
            .and_then(|ext| ext.get("valueUrl").or_else(|| ext.get("valueUri")))
            .and_then(Value::as_str);
        return Some(match from_extension {
            Some(fhir) => fhir.to_owned(),
            None => system.to_lowercase(),
        });
    }
    Some(code.to_owned())
}

/// The value set URL of a required binding, without its version.
fn binding_url(element: &Value) -> Option<String> {
    let binding = element.get("binding")?;
    if binding.get("strength").and_then(Value::as_str) != Some("required") {
        return None;
    }
    let url = binding
        .get("valueSet")
        .and_then(Value::as_str)
        .or_else(|| {
            binding
                .pointer("/valueSetReference/reference")
                .and_then(Value::as_str)
        })
        .or_else(|| binding.get("valueSetUri").and_then(Value::as_str))?;
    Some(url.split('|').next().unwrap_or(url).to_owned())
}

fn search_param(resource: &Value) -> Option<SearchParamDef> {
    let strings = |key: &str| -> Vec<String> {
        resource
            .get(key)
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let components = resource
        .get("component")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|component| {
                    let definition = component
                        .get("definition")
                        .and_then(|d| d.as_str().or_else(|| d.get("reference")?.as_str()))?;
                    let expression = component.get("expression").and_then(Value::as_str)?;
                    Some((definition.to_owned(), expression.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(SearchParamDef {
        code: resource.get("code")?.as_str()?.to_owned(),
        url: resource.get("url")?.as_str()?.to_owned(),
        base: strings("base"),
        kind: resource.get("type")?.as_str()?.to_owned(),
        expression: resource
            .get("expression")
            .and_then(Value::as_str)
            .map(str::to_owned),
        targets: strings("target"),
        components,
    })
}

/// Expands value sets from their definitions alone: explicit concept lists and whole code
/// systems that we have. A value set that needs a filter or an external terminology (SNOMED CT,
/// BCP-47, MIME types) cannot be expanded offline and is left out, so it is not checked.
pub(crate) struct Expander<'a> {
    pub(crate) value_sets: &'a HashMap<String, Value>,
    pub(crate) code_systems: &'a HashMap<String, Value>,
}

impl Expander<'_> {
    pub(crate) fn expand(&self, url: &str, depth: usize) -> Option<BTreeSet<String>> {
        if depth > 8 {
            return None;
        }
        let value_set = self.value_sets.get(url)?;
        if let Some(contains) = value_set
            .pointer("/expansion/contains")
            .and_then(Value::as_array)
        {
            let mut codes = BTreeSet::new();
            collect_expansion(contains, &mut codes);
            return Some(codes);
        }
        let mut codes = BTreeSet::new();
        // STU3 value sets may define their own code system inline.
        if let Some(concepts) = value_set
            .pointer("/codeSystem/concept")
            .and_then(Value::as_array)
        {
            collect_concepts(concepts, &mut codes);
        }
        let compose = value_set.get("compose");
        for include in compose
            .and_then(|c| c.get("include"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            codes.extend(self.expand_include(include, depth)?);
        }
        for exclude in compose
            .and_then(|c| c.get("exclude"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            for code in self.expand_include(exclude, depth)? {
                codes.remove(&code);
            }
        }
        if codes.is_empty() { None } else { Some(codes) }
    }

    /// The one code system all of a value set's codes come from, if there is just one: a
    /// `code` element bound to it implies that system, which search needs to match
    /// `system|code` tokens.
    pub(crate) fn single_system(&self, url: &str) -> Option<String> {
        let value_set = self.value_sets.get(url)?;
        let mut systems = BTreeSet::new();
        if let Some(contains) = value_set
            .pointer("/expansion/contains")
            .and_then(Value::as_array)
        {
            for entry in contains {
                systems.insert(entry.get("system")?.as_str()?.to_owned());
            }
        } else {
            if let Some(system) = value_set
                .pointer("/codeSystem/system")
                .and_then(Value::as_str)
            {
                systems.insert(system.to_owned());
            }
            for include in value_set
                .pointer("/compose/include")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if include.get("valueSet").is_some() {
                    return None;
                }
                systems.insert(include.get("system")?.as_str()?.to_owned());
            }
        }
        let mut systems = systems.into_iter();
        match (systems.next(), systems.next()) {
            (Some(system), None) => Some(system),
            _ => None,
        }
    }

    fn expand_include(&self, include: &Value, depth: usize) -> Option<BTreeSet<String>> {
        if include.get("filter").is_some() {
            return None;
        }
        let mut codes = BTreeSet::new();
        if let Some(concepts) = include.get("concept").and_then(Value::as_array) {
            for concept in concepts {
                codes.insert(concept.get("code")?.as_str()?.to_owned());
            }
        } else if let Some(system) = include.get("system").and_then(Value::as_str) {
            let code_system = self.code_systems.get(system)?;
            let concepts = code_system.get("concept").and_then(Value::as_array)?;
            collect_concepts(concepts, &mut codes);
        }
        let nested: Vec<&str> = match include.get("valueSet") {
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(url)) => vec![url.as_str()],
            _ => Vec::new(),
        };
        for url in nested {
            codes.extend(self.expand(url.split('|').next().unwrap_or(url), depth + 1)?);
        }
        Some(codes)
    }
}

fn collect_concepts(concepts: &[Value], codes: &mut BTreeSet<String>) {
    for concept in concepts {
        if let Some(code) = concept.get("code").and_then(Value::as_str) {
            codes.insert(code.to_owned());
        }
        if let Some(children) = concept.get("concept").and_then(Value::as_array) {
            collect_concepts(children, codes);
        }
    }
}

fn collect_expansion(contains: &[Value], codes: &mut BTreeSet<String>) {
    for entry in contains {
        let is_abstract = entry
            .get("abstract")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !is_abstract && let Some(code) = entry.get("code").and_then(Value::as_str) {
            codes.insert(code.to_owned());
        }
        if let Some(children) = entry.get("contains").and_then(Value::as_array) {
            collect_expansion(children, codes);
        }
    }
}
