//! A parsed FHIR search as SQL.
//!
//! Each filter becomes `rid IN (subquery over its index table)`, uncorrelated so that the
//! database can start from the index; filters compose (AND across parameters, OR across a
//! parameter's values) and chains and `_has` nest as subqueries on the same tables. Every value
//! is a bound parameter; only table and column names from this file are spliced into the text.
//!
//! Paging is by keyset, not offset: a cursor holds the sort keys and `rid` of the last (or first)
//! row of a page, and the next page starts strictly after them. Writes between page requests
//! therefore never shift a page, repeat a row or skip one that did not change.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carehub_fhir::search::{
    Filter, ParamKind, Prefix, Range, ReferenceValue, SearchQuery, SortKey, StringMode, Summary,
    Total,
};
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Arguments, Row};

use crate::schema::Dialect;
use crate::{Result, StoreError, Versioned};

/// Most resources one search may pull in through `_include` and `_revinclude`.
const MAX_INCLUDED: usize = 1000;
/// How many rounds of `:iterate` are followed.
const MAX_ITERATIONS: usize = 4;

/// One page of search results.
#[derive(Debug, Clone, Default)]
pub struct SearchPage {
    /// The matches, in order.
    pub matches: Vec<SearchResult>,
    /// Resources added by `_include` and `_revinclude`.
    pub included: Vec<Versioned>,
    /// The number of matches in all, when asked for and known.
    pub total: Option<i64>,
    /// Cursor for the next page, if there is one.
    pub next: Option<String>,
    /// Cursor for the previous page, if there is one.
    pub previous: Option<String>,
}

/// One match.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// The resource.
    pub resource: Versioned,
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
}

/// SQL text with its bound values, numbered `$1`, `$2`... in order of appearance.
#[derive(Debug, Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
    aliases: usize,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: Bind) -> &mut Sql {
        self.binds.push(value);
        let placeholder = format!("${}", self.binds.len());
        self.text.push_str(&placeholder);
        self
    }

    fn text(&mut self, value: impl Into<String>) -> &mut Sql {
        self.bind(Bind::Text(value.into()))
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    fn arguments(&self) -> Result<AnyArguments> {
        let mut args = AnyArguments::default();
        for bind in &self.binds {
            let added = match bind {
                Bind::Text(text) => args.add(text.clone()),
                Bind::Int(value) => args.add(*value),
                Bind::Float(value) => args.add(*value),
            };
            added.map_err(|err| {
                StoreError::Database(std::sync::Arc::new(sqlx::Error::Encode(err)))
            })?;
        }
        Ok(args)
    }

    async fn fetch_all(&self, conn: &mut AnyConnection) -> Result<Vec<AnyRow>> {
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(self.text.clone()), self.arguments()?)
            .fetch_all(conn)
            .await?;
        Ok(rows)
    }
}

/// Text greater than every string that starts with the prefix it is appended to, in byte
/// order (the highest code point encodes as the highest UTF-8 bytes).
const TEXT_MAX: char = '\u{10FFFF}';

/// Where a cursor points and which way it goes.
#[derive(Debug, Clone, PartialEq)]
struct Cursor {
    forward: bool,
    keys: Vec<Value>,
    rid: i64,
}

fn encode_cursor(cursor: &Cursor) -> String {
    let value = serde_json::json!([
        if cursor.forward { "n" } else { "p" },
        cursor.rid,
        cursor.keys
    ]);
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Reads a cursor from a paging link (exposed for tests and for validating `_cursor` early).
pub fn decode_cursor(text: &str) -> Result<(bool, i64, usize)> {
    let cursor = parse_cursor(text)?;
    Ok((cursor.forward, cursor.rid, cursor.keys.len()))
}

fn parse_cursor(text: &str) -> Result<Cursor> {
    let bad = || StoreError::BadCursor("it was not made by this server".into());
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let direction = value.get(0).and_then(Value::as_str).ok_or_else(bad)?;
    let rid = value.get(1).and_then(Value::as_i64).ok_or_else(bad)?;
    let keys = value
        .get(2)
        .and_then(Value::as_array)
        .ok_or_else(bad)?
        .clone();
    Ok(Cursor {
        forward: direction == "n",
        keys,
        rid,
    })
}

/// How a sort key is computed and compared.
struct SortColumn {
    expression: String,
    descending: bool,
    numeric: Numeric,
}

#[derive(Clone, Copy)]
enum Numeric {
    Text,
    Int,
    Float,
}

fn sort_column(sql: &mut Sql, key: &SortKey) -> SortColumn {
    let aggregate = if key.descending { "MAX" } else { "MIN" };
    let (expression, numeric) = match (key.param.as_str(), key.kind) {
        ("_id", _) => ("c.id".to_owned(), Numeric::Text),
        ("_lastUpdated", _) => ("c.last_updated".to_owned(), Numeric::Int),
        (param, Some(kind)) => {
            let (table, column, numeric) = match kind {
                ParamKind::String => ("idx_string", "norm", Numeric::Text),
                ParamKind::Token => ("idx_token", "code", Numeric::Text),
                ParamKind::Reference => ("idx_reference", "target_id", Numeric::Text),
                ParamKind::Uri => ("idx_uri", "uri", Numeric::Text),
                ParamKind::Date if key.descending => ("idx_date", "high", Numeric::Int),
                ParamKind::Date => ("idx_date", "low", Numeric::Int),
                ParamKind::Number => ("idx_number", "low", Numeric::Float),
                ParamKind::Quantity => ("idx_quantity", "low", Numeric::Float),
            };
            let mut sub = Sql::default();
            std::mem::swap(&mut sub.binds, &mut sql.binds);
            sub.push(&format!(
                "(SELECT {aggregate}(k.{column}) FROM {table} k WHERE k.rid = c.rid AND k.param = "
            ));
            sub.text(param);
            sub.push(")");
            std::mem::swap(&mut sub.binds, &mut sql.binds);
            (sub.text, numeric)
        }
        (_, None) => ("c.id".to_owned(), Numeric::Text),
    };
    // Resources without a value sort last in either direction.
    let missing = match (numeric, key.descending) {
        (Numeric::Text, false) => format!("'{TEXT_MAX}'"),
        (Numeric::Text, true) => "''".to_owned(),
        (Numeric::Int, false) => i64::MAX.to_string(),
        (Numeric::Int, true) => i64::MIN.to_string(),
        (Numeric::Float, false) => "1e308".to_owned(),
        (Numeric::Float, true) => "-1e308".to_owned(),
    };
    SortColumn {
        expression: format!("COALESCE({expression}, {missing})"),
        descending: key.descending,
        numeric,
    }
}

/// Runs a search on a connection (a pooled one for reads, the writer's for conditional writes).
pub(crate) async fn run(
    conn: &mut AnyConnection,
    dialect: Dialect,
    base: &str,
    query: &SearchQuery,
) -> Result<SearchPage> {
    let cursor = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let mut page = SearchPage::default();
    let wants_total = query.total == Total::Accurate || query.summary == Summary::Count;
    if query.summary == Summary::Count {
        page.total = Some(count(conn, dialect, base, query).await?);
        return Ok(page);
    }

    let mut sql = Sql::default();
    let columns: Vec<SortColumn> = query
        .sort
        .iter()
        .map(|key| sort_column(&mut sql, key))
        .collect();
    // Sort-key subqueries were bound first; keep their placeholders in order by building the
    // select list now.
    let mut select = String::from("SELECT c.rid, c.id, c.version, c.last_updated, h.body");
    for (index, column) in columns.iter().enumerate() {
        select.push_str(&format!(", {} AS k{index}", column.expression));
    }
    let mut text = std::mem::take(&mut sql.text);
    text.insert_str(0, &select);
    sql.text = text;
    sql.push(" FROM current c JOIN history h ON h.rid = c.rid AND h.version = c.version WHERE ");
    where_clause(&mut sql, dialect, base, query)?;

    let forward = cursor.as_ref().is_none_or(|c| c.forward);
    if let Some(cursor) = &cursor {
        keyset(&mut sql, &columns, cursor)?;
    }
    sql.push(" ORDER BY ");
    for (index, column) in columns.iter().enumerate() {
        let descending = column.descending == forward;
        sql.push(&format!(
            "k{index} {}, ",
            if descending { "DESC" } else { "ASC" }
        ));
    }
    sql.push(if forward { "c.rid ASC" } else { "c.rid DESC" });
    sql.push(&format!(" LIMIT {}", query.count + 1));

    let mut rows = sql.fetch_all(conn).await?;
    let has_more = rows.len() > query.count;
    rows.truncate(query.count);
    if !forward {
        rows.reverse();
    }
    let resource_type = query.resource_type.as_str();
    let mut first_keys = None;
    let mut last_keys = None;
    for (index, row) in rows.iter().enumerate() {
        let rid: i64 = row.try_get(0)?;
        let id: String = row.try_get(1)?;
        let resource = crate::versioned_from_row(row, resource_type, &id, 2)?;
        let keys = columns
            .iter()
            .enumerate()
            .map(|(k, column)| key_value(row, 5 + k, column.numeric))
            .collect::<Result<Vec<_>>>()?;
        if index == 0 {
            first_keys = Some((keys.clone(), rid));
        }
        last_keys = Some((keys, rid));
        page.matches.push(SearchResult { resource });
    }
    // A next page exists if going forward found more, or if we came backwards from somewhere.
    let more_after = if forward { has_more } else { cursor.is_some() };
    let more_before = if forward { cursor.is_some() } else { has_more };
    if more_after && let Some((keys, rid)) = last_keys {
        page.next = Some(encode_cursor(&Cursor {
            forward: true,
            keys,
            rid,
        }));
    }
    if more_before && let Some((keys, rid)) = first_keys {
        page.previous = Some(encode_cursor(&Cursor {
            forward: false,
            keys,
            rid,
        }));
    }
    if wants_total {
        page.total = if cursor.is_none() && !has_more {
            Some(page.matches.len() as i64)
        } else {
            Some(count(conn, dialect, base, query).await?)
        };
    }
    include(conn, base, query, &mut page).await?;
    Ok(page)
}

fn key_value(row: &AnyRow, index: usize, numeric: Numeric) -> Result<Value> {
    Ok(match numeric {
        Numeric::Text => Value::String(row.try_get::<String, _>(index)?),
        Numeric::Int => Value::from(row.try_get::<i64, _>(index)?),
        Numeric::Float => {
            let value: f64 = row.try_get(index)?;
            serde_json::Number::from_f64(value)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
    })
}

/// `(k0, k1, ..., rid)` strictly after (or before) the cursor, lexicographically with each
/// key's direction.
fn keyset(sql: &mut Sql, columns: &[SortColumn], cursor: &Cursor) -> Result<()> {
    if cursor.keys.len() != columns.len() {
        return Err(StoreError::BadCursor(
            "it belongs to a search with another _sort".into(),
        ));
    }
    let bind_key = |sql: &mut Sql, value: &Value, numeric: Numeric| -> Result<()> {
        let bind = match (numeric, value) {
            (Numeric::Text, Value::String(text)) => Bind::Text(text.clone()),
            (Numeric::Int, Value::Number(n)) => Bind::Int(n.as_i64().unwrap_or_default()),
            (Numeric::Float, Value::Number(n)) => Bind::Float(n.as_f64().unwrap_or_default()),
            _ => {
                return Err(StoreError::BadCursor(
                    "its sort keys do not match this search".into(),
                ));
            }
        };
        sql.bind(bind);
        Ok(())
    };
    sql.push(" AND (");
    for level in 0..=columns.len() {
        if level > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        for (index, (column, value)) in columns.iter().zip(&cursor.keys).take(level).enumerate() {
            if index > 0 {
                sql.push(" AND ");
            }
            sql.push(&format!("{} = ", column.expression));
            bind_key(sql, value, column.numeric)?;
        }
        if level > 0 {
            sql.push(" AND ");
        }
        match columns.get(level) {
            Some(column) => {
                let ascending = !column.descending;
                let op = if ascending == cursor.forward {
                    ">"
                } else {
                    "<"
                };
                sql.push(&format!("{} {op} ", column.expression));
                if let Some(value) = cursor.keys.get(level) {
                    bind_key(sql, value, column.numeric)?;
                }
            }
            None => {
                let op = if cursor.forward { ">" } else { "<" };
                sql.push(&format!("c.rid {op} "));
                sql.bind(Bind::Int(cursor.rid));
            }
        }
        sql.push(")");
    }
    sql.push(")");
    Ok(())
}

async fn count(
    conn: &mut AnyConnection,
    dialect: Dialect,
    base: &str,
    query: &SearchQuery,
) -> Result<i64> {
    let mut sql = Sql::default();
    sql.push("SELECT COUNT(*) FROM current c WHERE ");
    where_clause(&mut sql, dialect, base, query)?;
    let rows = sql.fetch_all(conn).await?;
    Ok(rows
        .first()
        .map(|row| row.try_get(0))
        .transpose()?
        .unwrap_or(0))
}

fn where_clause(sql: &mut Sql, dialect: Dialect, base: &str, query: &SearchQuery) -> Result<()> {
    // SQLite plans without statistics and would walk every resource of the type testing each
    // filter; a unary `+` takes the type index out of play so that the plan starts from the
    // filter's index instead, when there is a selective one.
    let drive_from_filter = dialect == Dialect::Sqlite
        && !query.filters.iter().any(|f| matches!(f, Filter::Id(_)))
        && query.filters.iter().any(|f| match f {
            Filter::Token { not, .. } => !not,
            Filter::Missing { missing, .. } => !missing,
            Filter::Id(_) | Filter::LastUpdated(_) | Filter::Has { .. } => false,
            _ => true,
        });
    let plus = if drive_from_filter { "+" } else { "" };
    sql.push(&format!("{plus}c.base = "));
    sql.text(base);
    sql.push(&format!(" AND {plus}c.rtype = "));
    sql.text(query.resource_type.as_str());
    sql.push(" AND c.deleted = 0");
    for filter in &query.filters {
        sql.push(" AND ");
        filter_sql(sql, base, "c", filter);
    }
    Ok(())
}

/// One filter as a boolean SQL expression about the resource aliased `on`.
fn filter_sql(sql: &mut Sql, base: &str, on: &str, filter: &Filter) {
    if let Some((table, letter, param, negate)) = simple_filter(filter) {
        let alias = sql.alias(letter);
        in_head(sql, negate, table, &alias, on, param);
        value_condition(sql, &alias, filter);
        sql.push(")");
        return;
    }
    match filter {
        Filter::Id(ids) => {
            sql.push(&format!("{on}.id IN ("));
            for (index, id) in ids.iter().enumerate() {
                if index > 0 {
                    sql.push(", ");
                }
                sql.text(id.as_str());
            }
            sql.push(")");
        }
        Filter::LastUpdated(ranges) => {
            any_of(sql, ranges, |sql, range| {
                let column = format!("{on}.last_updated");
                date_condition(sql, &column, &column, range);
            });
        }
        Filter::Missing {
            param,
            kind,
            missing,
        } => {
            let table = table_of(*kind);
            let alias = sql.alias("m");
            let not = if *missing { "NOT " } else { "" };
            sql.push(&format!(
                "{on}.rid {not}IN (SELECT {alias}.rid FROM {table} {alias} WHERE {alias}.param = "
            ));
            sql.text(param.as_str());
            sql.push(")");
        }
        Filter::Composite { values, .. } => {
            // Each alternative: the parts of one tuple, joined on resource and group.
            any_of(sql, values, |sql, components| {
                let aliases: Vec<String> = components.iter().map(|_| sql.alias("k")).collect();
                let Some(first) = aliases.first() else {
                    sql.push("1 = 0");
                    return;
                };
                sql.push(&format!("{on}.rid IN (SELECT {first}.rid FROM "));
                for (index, (component, alias)) in components.iter().zip(&aliases).enumerate() {
                    let Some((table, _, _, _)) = simple_filter(component) else {
                        continue;
                    };
                    if index == 0 {
                        sql.push(&format!("{table} {alias}"));
                    } else {
                        sql.push(&format!(
                            " JOIN {table} {alias} ON {alias}.rid = {first}.rid AND {alias}.grp = {first}.grp"
                        ));
                    }
                }
                sql.push(" WHERE ");
                for (index, (component, alias)) in components.iter().zip(&aliases).enumerate() {
                    let Some((_, _, param, _)) = simple_filter(component) else {
                        continue;
                    };
                    if index > 0 {
                        sql.push(" AND ");
                    }
                    sql.push(&format!("{alias}.param = "));
                    sql.text(param);
                    sql.push(" AND ");
                    value_condition(sql, alias, component);
                }
                sql.push(")");
            });
        }
        Filter::Chain {
            param,
            target_types,
            inner,
        } => {
            let reference = sql.alias("r");
            let target = sql.alias("c");
            sql.push(&format!(
                "{on}.rid IN (SELECT {reference}.rid FROM idx_reference {reference} JOIN current {target} \
                 ON {target}.rtype = {reference}.target_type AND {target}.id = {reference}.target_id \
                 WHERE {target}.deleted = 0 AND {target}.base = "
            ));
            sql.text(base);
            sql.push(&format!(" AND {reference}.param = "));
            sql.text(param.as_str());
            sql.push(&format!(" AND {target}.rtype IN ("));
            for (index, resource_type) in target_types.iter().enumerate() {
                if index > 0 {
                    sql.push(", ");
                }
                sql.text(resource_type.as_str());
            }
            sql.push(") AND ");
            filter_sql(sql, base, &target, inner);
            sql.push(")");
        }
        Filter::Has {
            resource_type,
            param,
            inner,
        } => {
            let reference = sql.alias("r");
            let source = sql.alias("c");
            sql.push(&format!(
                "({on}.rtype, {on}.id) IN (SELECT {reference}.target_type, {reference}.target_id \
                 FROM idx_reference {reference} JOIN current {source} ON {source}.rid = {reference}.rid \
                 WHERE {source}.deleted = 0 AND {source}.base = "
            ));
            sql.text(base);
            sql.push(&format!(" AND {reference}.param = "));
            sql.text(param.as_str());
            sql.push(&format!(" AND {source}.rtype = "));
            sql.text(resource_type.as_str());
            sql.push(" AND ");
            filter_sql(sql, base, &source, inner);
            sql.push(")");
        }
        _ => {}
    }
}

/// A filter on one parameter's own index rows: its table, an alias letter, the parameter
/// (as indexed) and whether the match is negated. `None` for the filters built otherwise.
fn simple_filter(filter: &Filter) -> Option<(&'static str, &'static str, &str, bool)> {
    Some(match filter {
        Filter::Token { param, not, .. } => ("idx_token", "t", param, *not),
        Filter::TokenText { param, .. } => ("idx_token", "t", param, false),
        Filter::String { param, .. } => ("idx_string", "s", param, false),
        Filter::Reference { param, .. } => ("idx_reference", "r", param, false),
        Filter::Date { param, .. } => ("idx_date", "d", param, false),
        Filter::Number { param, .. } => ("idx_number", "n", param, false),
        Filter::Quantity { param, .. } => ("idx_quantity", "q", param, false),
        Filter::Uri { param, .. } => ("idx_uri", "u", param, false),
        Filter::Id(_)
        | Filter::LastUpdated(_)
        | Filter::Missing { .. }
        | Filter::Composite { .. }
        | Filter::Chain { .. }
        | Filter::Has { .. } => return None,
    })
}

/// The condition a simple filter's values put on its index row aliased `alias` (alternatives
/// ORed).
fn value_condition(sql: &mut Sql, alias: &str, filter: &Filter) {
    match filter {
        Filter::Token { values, .. } => {
            any_of(sql, values, |sql, value| {
                match (&value.system, &value.code) {
                    (None, Some(code)) => {
                        sql.push(&format!("{alias}.code = "));
                        sql.text(code.as_str());
                    }
                    (Some(system), Some(code)) if system.is_empty() => {
                        sql.push(&format!("{alias}.system IS NULL AND {alias}.code = "));
                        sql.text(code.as_str());
                    }
                    (Some(system), Some(code)) => {
                        sql.push(&format!("{alias}.system = "));
                        sql.text(system.as_str());
                        sql.push(&format!(" AND {alias}.code = "));
                        sql.text(code.as_str());
                    }
                    (Some(system), None) => {
                        sql.push(&format!("{alias}.system = "));
                        sql.text(system.as_str());
                    }
                    (None, None) => {
                        sql.push("1 = 1");
                    }
                }
            });
        }
        Filter::TokenText { values, .. } => {
            any_of(sql, values, |sql, value| {
                prefix_condition(sql, &format!("{alias}.text"), value);
            });
        }
        Filter::String { values, mode, .. } => {
            any_of(sql, values, |sql, value| match mode {
                StringMode::Prefix => prefix_condition(sql, &format!("{alias}.norm"), value),
                StringMode::Exact => {
                    sql.push(&format!("{alias}.exact = "));
                    sql.text(value.as_str());
                }
                StringMode::Contains => {
                    sql.push(&format!("{alias}.norm LIKE "));
                    sql.text(format!("%{}%", escape_like(value)));
                    sql.push(" ESCAPE '\\'");
                }
            });
        }
        Filter::Reference { values, .. } => {
            any_of(sql, values, |sql, value| match value {
                ReferenceValue::Local { resource_type, id } => {
                    sql.push(&format!("{alias}.target_id = "));
                    sql.text(id.as_str());
                    if let Some(resource_type) = resource_type {
                        sql.push(&format!(" AND {alias}.target_type = "));
                        sql.text(resource_type.as_str());
                    }
                }
                ReferenceValue::Url(url) => {
                    sql.push(&format!("{alias}.url = "));
                    sql.text(url.as_str());
                }
            });
        }
        Filter::Date { values, .. } => {
            any_of(sql, values, |sql, range| {
                date_condition(
                    sql,
                    &format!("{alias}.low"),
                    &format!("{alias}.high"),
                    range,
                );
            });
        }
        Filter::Number { values, .. } => {
            any_of(sql, values, |sql, range| {
                number_condition(
                    sql,
                    &format!("{alias}.low"),
                    &format!("{alias}.high"),
                    range,
                );
            });
        }
        Filter::Quantity { values, .. } => {
            any_of(sql, values, |sql, value| {
                number_condition(
                    sql,
                    &format!("{alias}.low"),
                    &format!("{alias}.high"),
                    &value.range,
                );
                if let Some(system) = &value.system {
                    sql.push(&format!(" AND {alias}.system = "));
                    sql.text(system.as_str());
                }
                if let Some(code) = &value.code {
                    sql.push(&format!(" AND {alias}.code = "));
                    sql.text(code.as_str());
                }
            });
        }
        Filter::Uri { values, below, .. } => {
            any_of(sql, values, |sql, value| {
                if *below {
                    prefix_condition(sql, &format!("{alias}.uri"), value);
                } else {
                    sql.push(&format!("{alias}.uri = "));
                    sql.text(value.as_str());
                }
            });
        }
        _ => {
            sql.push("1 = 0");
        }
    }
}

fn table_of(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Token => "idx_token",
        ParamKind::String => "idx_string",
        ParamKind::Reference => "idx_reference",
        ParamKind::Date => "idx_date",
        ParamKind::Number => "idx_number",
        ParamKind::Quantity => "idx_quantity",
        ParamKind::Uri => "idx_uri",
    }
}

/// Opens `on.rid [NOT] IN (SELECT rid FROM table WHERE param = ... AND `: the subquery is not
/// correlated, so the database can drive the search from the index (a handful of rows for an
/// identifier) instead of testing every resource of the type.
fn in_head(sql: &mut Sql, negate: bool, table: &str, alias: &str, on: &str, param: &str) {
    let not = if negate { "NOT " } else { "" };
    sql.push(&format!(
        "{on}.rid {not}IN (SELECT {alias}.rid FROM {table} {alias} WHERE {alias}.param = "
    ));
    sql.text(param);
    sql.push(" AND ");
}

/// `(a OR b OR ...)` over the alternatives.
fn any_of<T>(sql: &mut Sql, values: &[T], mut each: impl FnMut(&mut Sql, &T)) {
    sql.push("(");
    if values.is_empty() {
        sql.push("1 = 0");
    }
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        each(sql, value);
        sql.push(")");
    }
    sql.push(")");
}

fn prefix_condition(sql: &mut Sql, column: &str, prefix: &str) {
    sql.push(&format!("{column} >= "));
    sql.text(prefix);
    sql.push(&format!(" AND {column} < "));
    sql.text(format!("{prefix}{TEXT_MAX}"));
}

fn escape_like(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Date comparison of a resource's range [low, high] with a search value's range, as the FHIR
/// search specification defines each prefix.
fn date_condition(sql: &mut Sql, low: &str, high: &str, range: &Range<i64>) {
    let (from, to) = (Bind::Int(range.low), Bind::Int(range.high));
    match range.prefix {
        Prefix::Eq => {
            sql.push(&format!("{low} >= "))
                .bind(from)
                .push(&format!(" AND {high} <= "))
                .bind(to);
        }
        Prefix::Ne => {
            sql.push(&format!("NOT ({low} >= "))
                .bind(from)
                .push(&format!(" AND {high} <= "))
                .bind(to)
                .push(")");
        }
        Prefix::Gt => {
            sql.push(&format!("{high} > ")).bind(to);
        }
        Prefix::Lt => {
            sql.push(&format!("{low} < ")).bind(from);
        }
        Prefix::Ge => {
            sql.push(&format!("({high} > ")).bind(to.clone());
            sql.push(&format!(" OR ({low} >= "))
                .bind(from)
                .push(&format!(" AND {high} <= "))
                .bind(to)
                .push("))");
        }
        Prefix::Le => {
            sql.push(&format!("({low} < ")).bind(from.clone());
            sql.push(&format!(" OR ({low} >= "))
                .bind(from)
                .push(&format!(" AND {high} <= "))
                .bind(to)
                .push("))");
        }
        Prefix::Sa => {
            sql.push(&format!("{low} > ")).bind(to);
        }
        Prefix::Eb => {
            sql.push(&format!("{high} < ")).bind(from);
        }
        Prefix::Ap => {
            // Within 10% of the distance between the value and now, at least a day.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0);
            let margin = ((now - range.low).abs() / 10).max(86_400_000_000);
            sql.push(&format!("{low} <= "))
                .bind(Bind::Int(range.high.saturating_add(margin)))
                .push(&format!(" AND {high} >= "))
                .bind(Bind::Int(range.low.saturating_sub(margin)));
        }
    }
}

/// Number comparison: equality within the precision of the search value, order against the
/// value itself.
fn number_condition(sql: &mut Sql, low: &str, high: &str, range: &Range<f64>) {
    let value = (range.low + range.high) / 2.0;
    match range.prefix {
        Prefix::Eq => {
            sql.push(&format!("{low} >= ")).bind(Bind::Float(range.low));
            sql.push(&format!(" AND {high} <= "))
                .bind(Bind::Float(range.high));
        }
        Prefix::Ne => {
            sql.push(&format!("NOT ({low} >= "))
                .bind(Bind::Float(range.low));
            sql.push(&format!(" AND {high} <= "))
                .bind(Bind::Float(range.high))
                .push(")");
        }
        Prefix::Gt | Prefix::Sa => {
            sql.push(&format!("{high} > ")).bind(Bind::Float(value));
        }
        Prefix::Lt | Prefix::Eb => {
            sql.push(&format!("{low} < ")).bind(Bind::Float(value));
        }
        Prefix::Ge => {
            sql.push(&format!("{high} >= ")).bind(Bind::Float(value));
        }
        Prefix::Le => {
            sql.push(&format!("{low} <= ")).bind(Bind::Float(value));
        }
        Prefix::Ap => {
            let margin = (value.abs() / 10.0).max(range.high - range.low);
            sql.push(&format!("{low} <= "))
                .bind(Bind::Float(value + margin));
            sql.push(&format!(" AND {high} >= "))
                .bind(Bind::Float(value - margin));
        }
    }
}

/// Adds `_include` and `_revinclude` targets of the matches (and, with `:iterate`, of what was
/// included), each resource once.
async fn include(
    conn: &mut AnyConnection,
    base: &str,
    query: &SearchQuery,
    page: &mut SearchPage,
) -> Result<()> {
    if query.include.is_empty() && query.revinclude.is_empty() {
        return Ok(());
    }
    let mut seen: std::collections::HashSet<(String, String)> = page
        .matches
        .iter()
        .map(|m| (m.resource.resource_type.clone(), m.resource.id.clone()))
        .collect();
    let mut frontier: Vec<(String, String)> = seen.iter().cloned().collect();
    for round in 0..MAX_ITERATIONS {
        let mut found = Vec::new();
        for include in query.include.iter().filter(|i| round == 0 || i.iterate) {
            let sources: Vec<&(String, String)> = frontier
                .iter()
                .filter(|(t, _)| *t == include.source_type)
                .collect();
            if sources.is_empty() {
                continue;
            }
            let mut sql = Sql::default();
            sql.push(
                "SELECT t.rtype, t.id, t.version, t.last_updated, h.body FROM current s \
                 JOIN idx_reference r ON r.rid = s.rid \
                 JOIN current t ON t.base = s.base AND t.rtype = r.target_type AND t.id = r.target_id \
                 JOIN history h ON h.rid = t.rid AND h.version = t.version WHERE t.deleted = 0 AND s.base = ",
            );
            sql.text(base);
            sql.push(" AND s.rtype = ");
            sql.text(include.source_type.as_str());
            if include.param != "*" {
                sql.push(" AND r.param = ");
                sql.text(include.param.as_str());
            }
            if let Some(target) = &include.target_type {
                sql.push(" AND t.rtype = ");
                sql.text(target.as_str());
            }
            sql.push(" AND s.id IN (");
            for (index, (_, id)) in sources.iter().enumerate() {
                if index > 0 {
                    sql.push(", ");
                }
                sql.text(id.as_str());
            }
            sql.push(")");
            found.extend(sql.fetch_all(conn).await?);
        }
        for include in query.revinclude.iter().filter(|i| round == 0 || i.iterate) {
            let mut targets_by_type: std::collections::BTreeMap<&str, Vec<&str>> =
                Default::default();
            for (resource_type, id) in &frontier {
                targets_by_type.entry(resource_type).or_default().push(id);
            }
            for (target_type, ids) in targets_by_type {
                if include
                    .target_type
                    .as_deref()
                    .is_some_and(|t| t != target_type)
                {
                    continue;
                }
                let mut sql = Sql::default();
                sql.push(
                    "SELECT s.rtype, s.id, s.version, s.last_updated, h.body FROM current s \
                     JOIN idx_reference r ON r.rid = s.rid JOIN history h ON h.rid = s.rid AND h.version = s.version \
                     WHERE s.deleted = 0 AND s.base = ",
                );
                sql.text(base);
                sql.push(" AND s.rtype = ");
                sql.text(include.source_type.as_str());
                if include.param != "*" {
                    sql.push(" AND r.param = ");
                    sql.text(include.param.as_str());
                }
                sql.push(" AND r.target_type = ");
                sql.text(target_type);
                sql.push(" AND r.target_id IN (");
                for (index, id) in ids.iter().enumerate() {
                    if index > 0 {
                        sql.push(", ");
                    }
                    sql.text(*id);
                }
                sql.push(")");
                found.extend(sql.fetch_all(conn).await?);
            }
        }
        let mut next_frontier = Vec::new();
        for row in found {
            let resource_type: String = row.try_get(0)?;
            let id: String = row.try_get(1)?;
            let key = (resource_type.clone(), id.clone());
            if seen.contains(&key) || page.included.len() >= MAX_INCLUDED {
                continue;
            }
            seen.insert(key.clone());
            page.included
                .push(crate::versioned_from_row(&row, &resource_type, &id, 2)?);
            next_frontier.push(key);
        }
        if next_frontier.is_empty() {
            break;
        }
        frontier = next_frontier;
    }
    Ok(())
}
