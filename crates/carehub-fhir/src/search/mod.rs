//! FHIR search, as data: the parsed form of a search request ([`SearchQuery`]) and the values a
//! resource is indexed under ([`IndexEntry`]). The store turns both into SQL; nothing here knows
//! how they are stored.

mod index;
mod normalize;
mod parse;
mod values;

pub use index::Indexer;
pub use normalize::normalize_string;
pub use parse::{ParseOptions, parse_query};
pub use values::{index_values, local_reference};

use crate::outcome::Issue;

/// A parsed search: filters that must all hold, plus how to sort, page and shape the result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The resource type searched.
    pub resource_type: String,
    /// Filters, all of which must match (each holds alternatives that are ORed).
    pub filters: Vec<Filter>,
    /// Sort keys, most significant first.
    pub sort: Vec<SortKey>,
    /// Page size.
    pub count: usize,
    /// `_include` directives.
    pub include: Vec<Include>,
    /// `_revinclude` directives.
    pub revinclude: Vec<Include>,
    /// `_summary`.
    pub summary: Summary,
    /// `_elements`: only these top-level elements (plus mandatory ones) are returned.
    pub elements: Vec<String>,
    /// Whether and how to count all matches.
    pub total: Total,
    /// An opaque paging cursor from a `next` or `previous` link.
    pub cursor: Option<String>,
    /// Parameters ignored under `Prefer: handling=lenient`, reported as warnings.
    pub warnings: Vec<Issue>,
}

/// One filter of a search.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `_id`.
    Id(Vec<String>),
    /// `_lastUpdated`, as instants in microseconds.
    LastUpdated(Vec<Range<i64>>),
    /// `param:missing=true|false`.
    Missing {
        /// The parameter code.
        param: String,
        /// Which index table holds the parameter.
        kind: ParamKind,
        /// `true`: no value at all; `false`: at least one value.
        missing: bool,
    },
    /// A token parameter (`system|code`); `not` negates the whole filter.
    Token {
        /// The parameter code.
        param: String,
        /// Alternatives.
        values: Vec<TokenValue>,
        /// `:not`.
        not: bool,
    },
    /// `token:text`: matches the display or text of a coding.
    TokenText {
        /// The parameter code.
        param: String,
        /// Normalised text prefixes.
        values: Vec<String>,
    },
    /// A string parameter.
    String {
        /// The parameter code.
        param: String,
        /// Alternatives, normalised unless `mode` is `Exact`.
        values: Vec<String>,
        /// How the value is matched.
        mode: StringMode,
    },
    /// A reference parameter.
    Reference {
        /// The parameter code.
        param: String,
        /// Alternatives.
        values: Vec<ReferenceValue>,
    },
    /// A date parameter, as instants in microseconds.
    Date {
        /// The parameter code.
        param: String,
        /// Alternatives.
        values: Vec<Range<i64>>,
    },
    /// A number parameter.
    Number {
        /// The parameter code.
        param: String,
        /// Alternatives.
        values: Vec<Range<f64>>,
    },
    /// A quantity parameter.
    Quantity {
        /// The parameter code.
        param: String,
        /// Alternatives.
        values: Vec<QuantityValue>,
    },
    /// A uri parameter.
    Uri {
        /// The parameter code.
        param: String,
        /// Alternatives.
        values: Vec<String>,
        /// `:below`: the value is a prefix.
        below: bool,
    },
    /// A chained parameter: `subject:Patient.name=x`.
    Chain {
        /// The reference parameter on the searched type.
        param: String,
        /// Target types the chain may go through.
        target_types: Vec<String>,
        /// The filter on the target.
        inner: Box<Filter>,
    },
    /// A composite parameter (`code-value-quantity=http://loinc.org|8480-6$gt140`): one element
    /// of the resource holds a value matching every component at once.
    Composite {
        /// The parameter code.
        param: String,
        /// Alternatives; each holds one filter per component, in the parameter's order, named
        /// by [`component_param`].
        values: Vec<Vec<Filter>>,
    },
    /// `_has:Observation:patient:code=x`: some resource of `resource_type` refers to this one
    /// through `param` and matches `inner`.
    Has {
        /// The referring resource type.
        resource_type: String,
        /// Its reference parameter that points here.
        param: String,
        /// The filter on the referring resource.
        inner: Box<Filter>,
    },
}

/// Which index a parameter lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Codes with systems.
    Token,
    /// Text.
    String,
    /// References to other resources.
    Reference,
    /// Date ranges.
    Date,
    /// Number ranges.
    Number,
    /// Quantities.
    Quantity,
    /// URIs.
    Uri,
}

impl ParamKind {
    /// The kind for a SearchParameter `type` code, if it is indexed.
    pub fn from_code(code: &str) -> Option<ParamKind> {
        Some(match code {
            "token" => ParamKind::Token,
            "string" => ParamKind::String,
            "reference" => ParamKind::Reference,
            "date" => ParamKind::Date,
            "number" => ParamKind::Number,
            "quantity" => ParamKind::Quantity,
            "uri" => ParamKind::Uri,
            _ => return None,
        })
    }
}

/// A token alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenValue {
    /// `None`: any system; `Some("")`: no system (`|code`); otherwise that system.
    pub system: Option<String>,
    /// `None`: any code (`system|`).
    pub code: Option<String>,
}

/// How a string parameter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMode {
    /// The default: case- and accent-insensitive, starts with.
    Prefix,
    /// `:exact`: the whole value, case and accents included.
    Exact,
    /// `:contains`: case- and accent-insensitive, anywhere.
    Contains,
}

/// A reference alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceValue {
    /// A local resource: `Patient/123` or `123` (with the type from a modifier or unknown).
    Local {
        /// The target type, when known.
        resource_type: Option<String>,
        /// The target id.
        id: String,
    },
    /// An absolute URL that is not on this server.
    Url(String),
}

/// A search prefix (`eq`, `gt`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// Equal: the value's range contains the resource's.
    Eq,
    /// Not equal.
    Ne,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Greater or equal.
    Ge,
    /// Less or equal.
    Le,
    /// Starts after.
    Sa,
    /// Ends before.
    Eb,
    /// Approximately (within 10%).
    Ap,
}

/// A value with a prefix, as the inclusive range its precision implies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range<T> {
    /// The comparison.
    pub prefix: Prefix,
    /// Low end, inclusive.
    pub low: T,
    /// High end, inclusive.
    pub high: T,
}

/// A quantity alternative.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantityValue {
    /// The number range.
    pub range: Range<f64>,
    /// The unit system, if given.
    pub system: Option<String>,
    /// The unit code, if given.
    pub code: Option<String>,
}

/// One `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// `_id`, `_lastUpdated` or a parameter code.
    pub param: String,
    /// The index kind of the parameter (`None` for `_id` and `_lastUpdated`).
    pub kind: Option<ParamKind>,
    /// Descending (`-param`).
    pub descending: bool,
}

/// An `_include` or `_revinclude` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The type that holds the reference (`Observation` in `Observation:subject`).
    pub source_type: String,
    /// The reference parameter, or `*` for all of them.
    pub param: String,
    /// Restricts the target type (`Observation:subject:Patient`).
    pub target_type: Option<String>,
    /// `:iterate` (or STU3's `:recurse`): apply to included resources too.
    pub iterate: bool,
}

/// `_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// The whole resource.
    False,
    /// Only summary elements.
    True,
    /// Only the text, id, meta and mandatory elements.
    Text,
    /// Without the text.
    Data,
    /// Only the count of matches.
    Count,
}

impl Summary {
    /// Reads a `_summary` value.
    pub fn parse(text: &str) -> Option<Summary> {
        Some(match text {
            "true" => Summary::True,
            "false" => Summary::False,
            "text" => Summary::Text,
            "data" => Summary::Data,
            "count" => Summary::Count,
            _ => return None,
        })
    }
}

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// Do not count.
    None,
    /// Count exactly.
    Accurate,
}

/// One value a resource is found by: the parameter and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// The search parameter code.
    pub param: String,
    /// The value.
    pub value: IndexValue,
}

/// An indexed value, by parameter type.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// A code with its system, and the display or text normalised for `:text`.
    Token {
        /// The code system, if any.
        system: Option<String>,
        /// The code, if any.
        code: Option<String>,
        /// Normalised display text.
        text: Option<String>,
    },
    /// A text value.
    String {
        /// Case- and accent-folded, for prefix and contains matching.
        normalized: String,
        /// As written, for `:exact`.
        exact: String,
    },
    /// A reference.
    Reference {
        /// The target type of a local reference.
        resource_type: Option<String>,
        /// The target id of a local reference.
        id: Option<String>,
        /// The URL of an external or canonical reference.
        url: Option<String>,
    },
    /// A date range in microseconds since the epoch.
    Date {
        /// Start, inclusive.
        low: i64,
        /// End, inclusive.
        high: i64,
    },
    /// A number range.
    Number {
        /// Low end.
        low: f64,
        /// High end.
        high: f64,
    },
    /// A quantity.
    Quantity {
        /// Unit system.
        system: Option<String>,
        /// Unit code.
        code: Option<String>,
        /// Low end.
        low: f64,
        /// High end.
        high: f64,
    },
    /// A URI.
    Uri(String),
    /// One element's values for each component of a composite parameter, in order. The store
    /// keeps each part under [`component_param`] and groups the parts of one tuple.
    Composite(Vec<IndexValue>),
}

/// The name a composite parameter's component is indexed and searched under: `code-value-quantity$1`
/// for the second. `$` cannot appear in a parameter code, so the names never collide.
pub fn component_param(param: &str, index: usize) -> String {
    format!("{param}${index}")
}
