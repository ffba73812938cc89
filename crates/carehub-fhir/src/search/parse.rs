//! From query parameters to a [`SearchQuery`]: every name checked against the search parameters
//! of the version, every value against its type, every prefix and modifier against what the type
//! allows. Unknown or malformed parameters are errors that name the parameter, unless the client
//! asked for lenient handling, when they become warnings and are ignored.

use super::{
    Filter, Include, ParamKind, Prefix, QuantityValue, Range, ReferenceValue, SearchQuery, SortKey,
    StringMode, Summary, TokenValue, Total, component_param, normalize_string,
};
use crate::datetime::{DateKind, PartialDateTime};
use crate::model::Model;
use crate::model::data::SearchParamDef;
use crate::outcome::{Issue, IssueType};

/// Settings that shape parsing.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// `Prefer: handling=lenient`: ignore unknown parameters with a warning.
    pub lenient: bool,
    /// The page size when `_count` is absent.
    pub default_count: usize,
    /// The largest page size accepted; larger `_count` values are capped.
    pub max_count: usize,
    /// This server's base URL, so absolute references to it are matched as local ones.
    pub base_url: String,
}

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions {
            lenient: false,
            default_count: 20,
            max_count: 1000,
            base_url: String::new(),
        }
    }
}

/// Parameters that shape the result rather than filter; accepted and, where carehub does not act
/// on them, harmless.
const RESULT_PARAMETERS: [&str; 4] = ["_format", "_pretty", "_contained", "_containedType"];

/// Parses decoded query parameters for a search of `resource_type`.
pub fn parse_query(
    model: &Model,
    resource_type: &str,
    params: &[(String, String)],
    options: &ParseOptions,
) -> Result<SearchQuery, Vec<Issue>> {
    let mut query = SearchQuery {
        resource_type: resource_type.to_owned(),
        filters: Vec::new(),
        sort: Vec::new(),
        count: options.default_count,
        include: Vec::new(),
        revinclude: Vec::new(),
        summary: Summary::False,
        elements: Vec::new(),
        total: Total::Accurate,
        cursor: None,
        warnings: Vec::new(),
    };
    let mut errors = Vec::new();
    for (name, value) in params {
        let result = parse_one(model, resource_type, name, value, options, &mut query);
        if let Err(issue) = result {
            if options.lenient && issue.code != IssueType::Invalid {
                query.warnings.push(Issue {
                    severity: crate::outcome::Severity::Warning,
                    diagnostics: format!("{} (ignored: lenient handling)", issue.diagnostics),
                    ..issue
                });
            } else {
                errors.push(issue);
            }
        }
    }
    if errors.is_empty() {
        Ok(query)
    } else {
        Err(errors)
    }
}

fn parse_one(
    model: &Model,
    resource_type: &str,
    name: &str,
    value: &str,
    options: &ParseOptions,
    query: &mut SearchQuery,
) -> Result<(), Issue> {
    let bad_value = |why: String| Issue::error(IssueType::Invalid, why).at(name.to_owned());
    match name {
        "_count" => {
            let count: usize = value
                .parse()
                .map_err(|_| bad_value(format!("_count must be a whole number, not '{value}'")))?;
            query.count = count.min(options.max_count);
            return Ok(());
        }
        "_sort" => {
            for key in value.split(',').filter(|k| !k.is_empty()) {
                let (descending, code) = match key.strip_prefix('-') {
                    Some(code) => (true, code),
                    None => (false, key),
                };
                let kind = match code {
                    "_id" | "_lastUpdated" => None,
                    _ => {
                        let param = model.search_param(resource_type, code).ok_or_else(|| {
                            unknown_parameter(resource_type, code).at("_sort".to_owned())
                        })?;
                        Some(ParamKind::from_code(&param.kind).ok_or_else(|| {
                            bad_value(format!(
                                "cannot sort by '{code}' ({} parameter)",
                                param.kind
                            ))
                        })?)
                    }
                };
                query.sort.push(SortKey {
                    param: code.to_owned(),
                    kind,
                    descending,
                });
            }
            return Ok(());
        }
        "_summary" => {
            query.summary = Summary::parse(value).ok_or_else(|| {
                bad_value(format!(
                    "_summary must be true, false, text, data or count, not '{value}'"
                ))
            })?;
            return Ok(());
        }
        "_total" => {
            query.total = match value {
                "none" => Total::None,
                "estimate" | "accurate" => Total::Accurate,
                _ => {
                    return Err(bad_value(format!(
                        "_total must be none, estimate or accurate, not '{value}'"
                    )));
                }
            };
            return Ok(());
        }
        "_elements" => {
            query.elements.extend(
                value
                    .split(',')
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned),
            );
            return Ok(());
        }
        "_cursor" => {
            query.cursor = Some(value.to_owned());
            return Ok(());
        }
        _ if RESULT_PARAMETERS.contains(&name) => return Ok(()),
        _ => {}
    }
    if let Some(iterate_name) = name
        .strip_prefix("_include")
        .or_else(|| name.strip_prefix("_revinclude"))
    {
        let reverse = name.starts_with("_revinclude");
        let iterate = match iterate_name {
            "" => false,
            ":iterate" | ":recurse" => true,
            _ => return Err(bad_value(format!("unknown modifier on {name}"))),
        };
        let include = parse_include(model, value, iterate).map_err(bad_value)?;
        if !reverse && include.source_type != resource_type {
            return Err(bad_value(format!(
                "_include must start with the searched type {resource_type}, not {}",
                include.source_type
            )));
        }
        if reverse {
            query.revinclude.push(include);
        } else {
            query.include.push(include);
        }
        return Ok(());
    }
    if let Some(rest) = name.strip_prefix("_has:") {
        query
            .filters
            .push(parse_has(model, resource_type, name, rest, value, options)?);
        return Ok(());
    }
    query
        .filters
        .push(parse_filter(model, resource_type, name, value, options)?);
    Ok(())
}

fn unknown_parameter(resource_type: &str, code: &str) -> Issue {
    Issue::error(
        IssueType::NotSupported,
        format!("Unknown search parameter '{code}' for resource type {resource_type}"),
    )
    .at(code.to_owned())
}

fn parse_include(model: &Model, value: &str, iterate: bool) -> Result<Include, String> {
    let mut parts = value.split(':');
    let source_type = parts.next().unwrap_or_default();
    let param = parts
        .next()
        .ok_or_else(|| format!("'{value}' must be SourceType:parameter[:TargetType]"))?;
    let target_type = parts.next().map(str::to_owned);
    if model.resource(source_type).is_none() {
        return Err(format!("'{source_type}' is not a resource type"));
    }
    if param != "*" {
        match model.search_param(source_type, param) {
            Some(def) if def.kind == "reference" => {}
            Some(_) => {
                return Err(format!(
                    "'{param}' of {source_type} is not a reference parameter"
                ));
            }
            None => return Err(format!("{source_type} has no search parameter '{param}'")),
        }
    }
    if let Some(target) = &target_type
        && model.resource(target).is_none()
    {
        return Err(format!("'{target}' is not a resource type"));
    }
    Ok(Include {
        source_type: source_type.to_owned(),
        param: param.to_owned(),
        target_type,
        iterate,
    })
}

/// `_has:Observation:patient:code=1234-5`.
fn parse_has(
    model: &Model,
    resource_type: &str,
    name: &str,
    rest: &str,
    value: &str,
    options: &ParseOptions,
) -> Result<Filter, Issue> {
    let bad = |why: String| Issue::error(IssueType::Invalid, why).at(name.to_owned());
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(param), Some(inner_name)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("_has must be _has:Type:reference:parameter".into()));
    };
    if model.resource(source).is_none() {
        return Err(bad(format!("'{source}' is not a resource type")));
    }
    let reference = model
        .search_param(source, param)
        .filter(|p| p.kind == "reference")
        .ok_or_else(|| bad(format!("{source} has no reference parameter '{param}'")))?;
    if !reference.targets.is_empty() && !reference.targets.iter().any(|t| t == resource_type) {
        return Err(bad(format!(
            "{source}.{param} cannot refer to {resource_type}"
        )));
    }
    let inner = if let Some(nested) = inner_name.strip_prefix("_has:") {
        parse_has(model, source, name, nested, value, options)?
    } else {
        parse_filter(model, source, inner_name, value, options)?
    };
    Ok(Filter::Has {
        resource_type: source.to_owned(),
        param: param.to_owned(),
        inner: Box::new(inner),
    })
}

fn parse_filter(
    model: &Model,
    resource_type: &str,
    name: &str,
    value: &str,
    options: &ParseOptions,
) -> Result<Filter, Issue> {
    let bad = |why: String| Issue::error(IssueType::Invalid, why).at(name.to_owned());
    // `subject:Patient.name` chains; `subject.name` too.
    let (head, chain) = match name.split_once('.') {
        Some((head, chain)) => (head, Some(chain)),
        None => (name, None),
    };
    let (code, modifier) = match head.split_once(':') {
        Some((code, modifier)) => (code, Some(modifier)),
        None => (head, None),
    };
    if value.is_empty() {
        return Err(bad(format!("'{name}' has an empty value")));
    }
    match code {
        "_id" if chain.is_none() => {
            if modifier.is_some() {
                return Err(bad("_id takes no modifier".into()));
            }
            return Ok(Filter::Id(
                split_alternatives(value)
                    .iter()
                    .map(|v| unescape(v))
                    .collect(),
            ));
        }
        "_lastUpdated" if chain.is_none() => {
            let values = split_alternatives(value)
                .iter()
                .map(|v| parse_date(v))
                .collect::<Result<_, _>>()
                .map_err(bad)?;
            return Ok(Filter::LastUpdated(values));
        }
        _ => {}
    }
    let param = model
        .search_param(resource_type, code)
        .ok_or_else(|| unknown_parameter(resource_type, code))?;
    // Parameters without an expression (`_text`, `_content`, `_query`, `_filter`...) are
    // defined by the specification but have nothing to index; say so rather than match nothing.
    if param.expression.is_none() {
        return Err(Issue::error(
            IssueType::NotSupported,
            format!("The search parameter '{code}' is not supported by this server"),
        )
        .at(name.to_owned()));
    }
    if let Some(chain) = chain {
        if param.kind != "reference" {
            return Err(bad(format!(
                "only reference parameters can be chained; '{code}' is {}",
                param.kind
            )));
        }
        let (chain_code, _) = chain.split_once(['.', ':']).unwrap_or((chain, ""));
        let candidates: Vec<String> = match modifier {
            Some(target) => vec![target.to_owned()],
            None if !param.targets.is_empty() => param.targets.clone(),
            None => model.resource_types().map(str::to_owned).collect(),
        };
        let target_types: Vec<String> = candidates
            .into_iter()
            .filter(|t| chain_code.starts_with('_') || model.search_param(t, chain_code).is_some())
            .collect();
        let Some(first) = target_types.first() else {
            return Err(bad(format!(
                "no target of '{code}' has a search parameter '{chain_code}'"
            )));
        };
        let inner = parse_filter(model, first, chain, value, options)?;
        return Ok(Filter::Chain {
            param: code.to_owned(),
            target_types,
            inner: Box::new(inner),
        });
    }
    let kind = param.kind.as_str();
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => return Err(bad(":missing takes true or false".into())),
        };
        let kind = ParamKind::from_code(kind)
            .ok_or_else(|| bad(format!(":missing is not supported on {kind} parameters")))?;
        return Ok(Filter::Missing {
            param: code.to_owned(),
            kind,
            missing,
        });
    }
    if kind == "composite" {
        return composite_filter(model, resource_type, param, modifier, value, options)
            .map_err(bad);
    }
    value_filter(model, kind, modifier, code.to_owned(), value, options).map_err(|err| match err {
        FilterError::Invalid(why) => bad(why),
        FilterError::Unsupported(why) => {
            Issue::error(IssueType::NotSupported, why).at(name.to_owned())
        }
    })
}

/// Why a parameter's value could not become a filter.
enum FilterError {
    /// The value is malformed, or the modifier does not apply (400).
    Invalid(String),
    /// The parameter's type cannot be searched here.
    Unsupported(String),
}

impl From<String> for FilterError {
    fn from(why: String) -> FilterError {
        FilterError::Invalid(why)
    }
}

/// A composite parameter's value: alternatives split on `,`, each split on `$` into one value
/// per component, each parsed as its component's type.
fn composite_filter(
    model: &Model,
    resource_type: &str,
    param: &SearchParamDef,
    modifier: Option<&str>,
    value: &str,
    options: &ParseOptions,
) -> Result<Filter, String> {
    no_modifier(modifier, "composite")?;
    let mut components = Vec::with_capacity(param.components.len());
    for (url, _) in &param.components {
        let kind = model
            .component_param(resource_type, url)
            .map(|component| component.kind.as_str())
            .filter(|kind| ParamKind::from_code(kind).is_some())
            .ok_or_else(|| format!("'{}' has a component this server cannot search", param.code))?;
        components.push(kind);
    }
    let mut values = Vec::new();
    for alternative in split_alternatives(value) {
        let parts = split_escaped(&alternative, '$');
        if parts.len() != components.len() {
            return Err(format!(
                "'{}' takes {} values joined by '$', not '{}'",
                param.code,
                components.len(),
                unescape(&alternative)
            ));
        }
        let mut filters = Vec::with_capacity(parts.len());
        for (index, (part, kind)) in parts.iter().zip(&components).enumerate() {
            if part.is_empty() {
                return Err(format!(
                    "component {} of '{}' is empty in '{}'",
                    index + 1,
                    param.code,
                    unescape(&alternative)
                ));
            }
            // The part keeps its escapes (`\$`, `\|`), so it reads as one value.
            let filter = value_filter(
                model,
                kind,
                None,
                component_param(&param.code, index),
                part,
                options,
            )
            .map_err(|err| match err {
                FilterError::Invalid(why) | FilterError::Unsupported(why) => why,
            })?;
            filters.push(filter);
        }
        values.push(filters);
    }
    Ok(Filter::Composite {
        param: param.code.clone(),
        values,
    })
}

/// A filter of one of the indexed parameter types, from its modifier and raw value.
fn value_filter(
    model: &Model,
    kind: &str,
    modifier: Option<&str>,
    param_code: String,
    value: &str,
    options: &ParseOptions,
) -> Result<Filter, FilterError> {
    let raw_values = split_alternatives(value);
    let values: Vec<String> = raw_values.iter().map(|v| unescape(v)).collect();
    let code = param_code.as_str();
    match kind {
        "token" => match modifier {
            None | Some("not") => Ok(Filter::Token {
                param: param_code,
                values: raw_values.iter().map(|v| parse_token(v)).collect(),
                not: modifier.is_some(),
            }),
            Some("text") => Ok(Filter::TokenText {
                param: param_code,
                values: values.iter().map(|v| normalize_string(v)).collect(),
            }),
            Some(other) => Err(FilterError::Invalid(format!(
                "modifier ':{other}' is not supported on token parameters"
            ))),
        },
        "string" => {
            let mode = match modifier {
                None => StringMode::Prefix,
                Some("exact") => StringMode::Exact,
                Some("contains") => StringMode::Contains,
                Some(other) => {
                    return Err(FilterError::Invalid(format!(
                        "modifier ':{other}' is not supported on string parameters"
                    )));
                }
            };
            let values = match mode {
                StringMode::Exact => values,
                _ => values.iter().map(|v| normalize_string(v)).collect(),
            };
            Ok(Filter::String {
                param: param_code,
                values,
                mode,
            })
        }
        "reference" => {
            let type_modifier = match modifier {
                None => None,
                Some(t) if model.resource(t).is_some() => Some(t),
                Some("identifier") => {
                    return Err(FilterError::Invalid(
                        ":identifier is not supported on reference parameters".into(),
                    ));
                }
                Some(other) => {
                    return Err(FilterError::Invalid(format!(
                        "'{other}' is not a resource type"
                    )));
                }
            };
            let values = values
                .iter()
                .map(|v| parse_reference(model, v, type_modifier, &options.base_url))
                .collect::<Result<_, _>>()
                .map_err(FilterError::Invalid)?;
            Ok(Filter::Reference {
                param: param_code,
                values,
            })
        }
        "date" => {
            no_modifier(modifier, kind).map_err(FilterError::Invalid)?;
            let values = values
                .iter()
                .map(|v| parse_date(v))
                .collect::<Result<_, _>>()
                .map_err(FilterError::Invalid)?;
            Ok(Filter::Date {
                param: param_code,
                values,
            })
        }
        "number" => {
            no_modifier(modifier, kind).map_err(FilterError::Invalid)?;
            let values = values
                .iter()
                .map(|v| {
                    let (prefix, number) = split_prefix(v);
                    parse_number(prefix, number)
                })
                .collect::<Result<_, _>>()
                .map_err(FilterError::Invalid)?;
            Ok(Filter::Number {
                param: param_code,
                values,
            })
        }
        "quantity" => {
            no_modifier(modifier, kind).map_err(FilterError::Invalid)?;
            let values = raw_values
                .iter()
                .map(|v| parse_quantity(v))
                .collect::<Result<_, _>>()
                .map_err(FilterError::Invalid)?;
            Ok(Filter::Quantity {
                param: param_code,
                values,
            })
        }
        "uri" => {
            let below = match modifier {
                None => false,
                Some("below") => true,
                Some(other) => {
                    return Err(FilterError::Invalid(format!(
                        "modifier ':{other}' is not supported on uri parameters"
                    )));
                }
            };
            Ok(Filter::Uri {
                param: param_code,
                values,
                below,
            })
        }
        other => Err(FilterError::Unsupported(format!(
            "searching by {other} parameters such as '{code}' is not supported"
        ))),
    }
}

fn no_modifier(modifier: Option<&str>, kind: &str) -> Result<(), String> {
    match modifier {
        None => Ok(()),
        Some(m) => Err(format!(
            "modifier ':{m}' is not supported on {kind} parameters"
        )),
    }
}

/// Splits `a,b\,c` into alternatives. Escapes are kept so that a later split (on `|` for
/// tokens) still sees them; [`unescape`] removes them from the final parts.
pub(super) fn split_alternatives(value: &str) -> Vec<String> {
    split_escaped(value, ',')
}

fn split_escaped(value: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        let Some(current) = parts.last_mut() else {
            break;
        };
        if c == '\\' {
            current.push(c);
            if let Some(escaped) = chars.next() {
                current.push(escaped);
            }
        } else if c == separator {
            parts.push(String::new());
        } else {
            current.push(c);
        }
    }
    parts
}

pub(super) fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_token(value: &str) -> TokenValue {
    let parts = split_escaped(value, '|');
    match parts.as_slice() {
        [code] => TokenValue {
            system: None,
            code: Some(unescape(code)),
        },
        [system, code, ..] => TokenValue {
            system: Some(unescape(system)),
            code: (!code.is_empty()).then(|| unescape(code)),
        },
        [] => TokenValue {
            system: None,
            code: None,
        },
    }
}

fn parse_reference(
    model: &Model,
    value: &str,
    type_modifier: Option<&str>,
    base_url: &str,
) -> Result<ReferenceValue, String> {
    let local = if !base_url.is_empty() {
        value
            .strip_prefix(base_url)
            .map(|rest| rest.trim_start_matches('/'))
    } else {
        None
    };
    let relative = match local {
        Some(rest) => rest,
        None if value.contains("://") || value.starts_with("urn:") => {
            return Ok(ReferenceValue::Url(value.to_owned()));
        }
        None => value,
    };
    let segments: Vec<&str> = relative.split('/').collect();
    match segments.as_slice() {
        [id] => Ok(ReferenceValue::Local {
            resource_type: type_modifier.map(str::to_owned),
            id: (*id).to_owned(),
        }),
        // `Patient/1/_history/2` refers to the resource; versions are not indexed.
        [resource_type, id] | [resource_type, id, "_history", _] => {
            if model.resource(resource_type).is_none() {
                return Err(format!(
                    "'{resource_type}' in '{value}' is not a resource type"
                ));
            }
            if let Some(modifier) = type_modifier
                && modifier != *resource_type
            {
                return Err(format!("'{value}' is not a {modifier}"));
            }
            Ok(ReferenceValue::Local {
                resource_type: Some((*resource_type).to_owned()),
                id: (*id).to_owned(),
            })
        }
        _ => Err(format!(
            "'{value}' is not a reference (Type/id, id or an absolute URL)"
        )),
    }
}

fn split_prefix(value: &str) -> (Prefix, &str) {
    let prefixes = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
        ("ap", Prefix::Ap),
    ];
    for (text, prefix) in prefixes {
        if let Some(rest) = value.strip_prefix(text)
            && rest.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        {
            return (prefix, rest);
        }
    }
    (Prefix::Eq, value)
}

/// A date search value with its prefix, as the range of instants its precision covers.
pub(super) fn parse_date(value: &str) -> Result<Range<i64>, String> {
    let (prefix, text) = split_prefix(value);
    let parsed = PartialDateTime::parse(text, DateKind::Search)
        .map_err(|e| format!("'{value}' is not a valid date: {e}"))?;
    let (low, high) = parsed.range();
    Ok(Range { prefix, low, high })
}

/// A number with its implied precision: `100` is [99.5, 100.5], `1e2` is [50, 150].
pub(super) fn parse_number(prefix: Prefix, text: &str) -> Result<Range<f64>, String> {
    let number: f64 = text
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("'{text}' is not a number"))?;
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let decimals = mantissa
        .split_once('.')
        .map(|(_, frac)| frac.len() as i32)
        .unwrap_or(0);
    let half_unit = 0.5 * 10f64.powi(exponent - decimals);
    Ok(Range {
        prefix,
        low: number - half_unit,
        high: number + half_unit,
    })
}

fn parse_quantity(value: &str) -> Result<QuantityValue, String> {
    let parts = split_escaped(value, '|');
    let number = parts.first().map(String::as_str).unwrap_or_default();
    let (prefix, number) = split_prefix(number);
    let range = parse_number(prefix, number)?;
    let non_empty = |s: Option<&String>| s.filter(|s| !s.is_empty()).map(|s| unescape(s));
    Ok(QuantityValue {
        range,
        system: non_empty(parts.get(1)),
        code: non_empty(parts.get(2)),
    })
}

#[cfg(test)]
mod tests;
