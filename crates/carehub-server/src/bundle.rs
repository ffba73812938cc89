//! Batch and transaction Bundles posted to a base.
//!
//! A transaction runs as one unit of work in the store: every entry or none. Entries run in the
//! order the FHIR specification prescribes (DELETE, POST, PUT, GET). `urn:uuid:` full URLs of
//! created resources are given ids first and every reference to them rewritten; conditional
//! references (`Patient?identifier=...`) are resolved inside the transaction, so what they find
//! is what the transaction sees. A batch runs each entry as its own unit, and one entry's failure
//! is reported in its response without affecting the others.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use carehub_fhir::search::{Indexer, SearchQuery};
use carehub_fhir::{FhirVersion, IssueType};
use carehub_store::{Expect, NewResource, Tx, Versioned};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Category};
use crate::rest::{self, Reply, ReplyBody, Request, decode_query, send};
use crate::{Base, BaseState};

/// Most entries one Bundle may carry.
const MAX_ENTRIES: usize = 10_000;

/// One entry's request, checked before anything is written.
#[derive(Debug, Clone)]
struct Operation {
    index: usize,
    method: Method,
    resource_type: String,
    id: Option<String>,
    /// Search parameters of a conditional operation or a GET search.
    condition: Option<SearchQuery>,
    resource: Option<Value>,
    if_match: Option<i64>,
    if_none_exist: Option<SearchQuery>,
    /// The id given in advance to a create, so that references to it can be rewritten.
    assigned_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Method {
    Delete,
    Post,
    Put,
    Get,
}

pub(crate) async fn transaction(
    State(base): State<BaseState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<axum::extract::Extension<crate::audit::Caller>>,
    body: Body,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        let bytes = rest::read_body(&base, body).await?;
        let bundle = crate::format::parse_body(base.version, &request.headers, &bytes)?;
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(ApiError::invalid(
                "POST to the base takes a Bundle of type batch or transaction",
            )
            .at("resourceType"));
        }
        let kind = bundle
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let entries = bundle
            .get("entry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if entries.len() > MAX_ENTRIES {
            return Err(ApiError::new(
                Category::TooLarge,
                IssueType::TooCostly,
                format!("A Bundle may carry at most {MAX_ENTRIES} entries"),
            ));
        }
        match kind {
            "transaction" => run_transaction(&base, &request, &entries).await,
            "batch" => run_batch(&base, &request, &entries).await,
            other => Err(ApiError::invalid(format!(
                "Bundle type '{other}' cannot be processed; send batch or transaction"
            ))
            .at("Bundle.type")),
        }
    }
    .await;
    send(&base, &request, result)
}

/// Reads one entry's request into an [`Operation`].
fn parse_entry(
    base: &Base,
    request: &Request,
    index: usize,
    entry: &Value,
) -> Result<Operation, ApiError> {
    let at = |field: &str| format!("Bundle.entry[{index}].{field}");
    let invalid = |why: String, field: &str| ApiError::invalid(why).at(at(field));
    let entry_request = entry
        .get("request")
        .ok_or_else(|| invalid("Each entry needs a request".into(), "request"))?;
    let method = match entry_request.get("method").and_then(Value::as_str) {
        Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("DELETE") => Method::Delete,
        other => {
            return Err(invalid(
                format!(
                    "request.method {} is not supported here; use GET, POST, PUT or DELETE",
                    other.unwrap_or("(missing)")
                ),
                "request.method",
            ));
        }
    };
    let url = entry_request
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Accept absolute URLs on this base as well as relative ones.
    let url = url
        .strip_prefix(&base.url)
        .map(|u| u.trim_start_matches('/'))
        .unwrap_or(url);
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(resource_type) = segments.first().map(|s| (*s).to_owned()) else {
        return Err(invalid(
            format!("request.url '{url}' names no resource type"),
            "request.url",
        ));
    };
    rest::check_type(base, &resource_type).map_err(|e| e.at(at("request.url")))?;
    let id = segments.get(1).map(|s| (*s).to_owned());
    // A GET on a type without a query is a search with no filters.
    let condition = if query.is_empty() && !(method == Method::Get && segments.len() == 1) {
        None
    } else {
        let params = decode_query(query);
        Some(
            rest::parse_search(base, request, &resource_type, &params)
                .map_err(|e| e.at(at("request.url")))?,
        )
    };
    let resource = entry.get("resource").cloned();
    if matches!(method, Method::Post | Method::Put) {
        let found = resource
            .as_ref()
            .and_then(|r| r.get("resourceType"))
            .and_then(Value::as_str);
        if found != Some(resource_type.as_str()) {
            return Err(invalid(
                format!(
                    "entry resource is {} but request.url is for {resource_type}",
                    found.unwrap_or("missing")
                ),
                "resource",
            ));
        }
    }
    let if_match = match entry_request.get("ifMatch").and_then(Value::as_str) {
        Some(text) => Some(
            text.trim_start_matches("W/")
                .trim_matches('"')
                .parse::<i64>()
                .map_err(|_| {
                    invalid(
                        format!("ifMatch '{text}' is not a version ETag"),
                        "request.ifMatch",
                    )
                })?,
        ),
        None => None,
    };
    let if_none_exist = match entry_request.get("ifNoneExist").and_then(Value::as_str) {
        Some(text) => {
            let params = decode_query(text.trim_start_matches('?'));
            Some(
                rest::parse_search(base, request, &resource_type, &params)
                    .map_err(|e| e.at(at("request.ifNoneExist")))?,
            )
        }
        None => None,
    };
    if method == Method::Put && id.is_none() && condition.is_none() {
        return Err(invalid(
            "A PUT needs Type/id or Type?search in request.url".into(),
            "request.url",
        ));
    }
    if method == Method::Delete && id.is_none() && condition.is_none() {
        return Err(invalid(
            "A DELETE needs Type/id or Type?search in request.url".into(),
            "request.url",
        ));
    }
    Ok(Operation {
        index,
        method,
        resource_type,
        id,
        condition,
        resource,
        if_match,
        if_none_exist,
        assigned_id: (method == Method::Post).then(|| uuid::Uuid::new_v4().to_string()),
    })
}

async fn run_transaction(
    base: &Base,
    request: &Request,
    entries: &[Value],
) -> Result<Reply, ApiError> {
    let mut operations = Vec::with_capacity(entries.len());
    let mut references: HashMap<String, String> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let operation = parse_entry(base, request, index, entry)?;
        if let Some(full_url) = entry.get("fullUrl").and_then(Value::as_str) {
            let target = match (&operation.assigned_id, &operation.id) {
                (Some(id), _) | (None, Some(id)) => {
                    Some(format!("{}/{id}", operation.resource_type))
                }
                _ => None,
            };
            if let Some(target) = target
                && references.insert(full_url.to_owned(), target).is_some()
            {
                return Err(
                    ApiError::invalid(format!("fullUrl '{full_url}' appears twice"))
                        .at(format!("Bundle.entry[{index}].fullUrl")),
                );
            }
        }
        operations.push(operation);
    }
    for operation in &mut operations {
        if let Some(resource) = &mut operation.resource {
            rewrite_references(resource, &references);
        }
    }
    // The order the specification prescribes; the sort is stable, so entries of one method keep
    // their Bundle order.
    let mut order: Vec<usize> = (0..operations.len()).collect();
    order.sort_by_key(|&i| operations[i].method);

    // Plain creates (no ifNoneExist, no conditional references) are indexed here, outside the
    // writer, and written together in one bulk step of the transaction.
    let mut bulk: Vec<(usize, NewResource)> = Vec::new();
    for (position, operation) in operations.iter().enumerate() {
        let plain_create = operation.method == Method::Post
            && operation.if_none_exist.is_none()
            && operation.resource.as_ref().is_some_and(|r| {
                let mut conditional = Vec::new();
                collect_conditional(r, &mut conditional);
                conditional.is_empty()
            });
        if let (true, Some(id), Some(resource)) =
            (plain_create, &operation.assigned_id, &operation.resource)
        {
            let mut resource = resource.clone();
            if let Some(object) = resource.as_object_mut() {
                object.insert("id".into(), id.clone().into());
            }
            let index = base.indexer.index(&resource);
            bulk.push((
                position,
                NewResource {
                    resource_type: operation.resource_type.clone(),
                    id: id.clone(),
                    resource,
                    index,
                },
            ));
        }
    }
    if !bulk.is_empty() && bulk.len() == operations.len() {
        return run_creates_only(base, request, bulk, operations.len()).await;
    }
    let key = base.store_key.clone();
    let indexer = base.indexer.clone();
    let version = base.version;
    let base_url = base.url.clone();
    let audit_of = request.caller.clone().map(|caller| {
        let audit_base = base.url.clone();
        move |entities: &[String], patients: &[String]| {
            crate::audit::event(
                &caller,
                crate::audit::Interaction::Transaction,
                &audit_base,
                entities,
                patients,
                None,
            )
        }
    });
    let results = base
        .store
        .write(move |tx| {
            Box::pin(async move {
                let mut results: Vec<Option<Value>> = vec![None; operations.len()];
                let mut created: Vec<(usize, Versioned)> = Vec::new();
                let bulk_positions: Vec<usize> =
                    bulk.iter().map(|(position, _)| *position).collect();
                let mut bulk = Some(bulk);
                for i in order {
                    if bulk_positions.contains(&i) {
                        // The first bulk create reached (in the POST phase) writes them all.
                        if let Some(items) = bulk.take() {
                            let (positions, resources): (Vec<usize>, Vec<NewResource>) =
                                items.into_iter().unzip();
                            let stored = tx.create_many(&key, resources).await?;
                            // Their response entries are built after the commit, off the writer.
                            created.extend(positions.into_iter().zip(stored));
                        }
                        continue;
                    }
                    let operation = operations[i].clone();
                    // Any failure returns an error, which rolls the whole unit back.
                    results[i] =
                        Some(execute(tx, &key, &indexer, version, &base_url, operation).await?);
                }
                if let Some(make) = audit_of {
                    // One AuditEvent for the whole transaction, naming what it wrote.
                    let mut entities: Vec<String> = created
                        .iter()
                        .map(|(_, v)| format!("{}/{}", v.resource_type, v.id))
                        .collect();
                    for entry in results.iter().flatten() {
                        if let Some(location) =
                            entry.pointer("/response/location").and_then(Value::as_str)
                        {
                            let reference = location
                                .trim_start_matches(base_url.as_str())
                                .trim_start_matches('/');
                            let reference =
                                reference.split("/_history").next().unwrap_or(reference);
                            entities.push(reference.to_owned());
                        }
                    }
                    let patients = patients_among(&entities);
                    crate::audit::record_in(tx, Some(make(&entities, &patients))).await?;
                }
                Ok::<_, ApiError>((results, created))
            })
        })
        .await?;
    let (mut results, created) = results;
    for (position, version) in created {
        if let Some(slot) = results.get_mut(position) {
            *slot = Some(response_entry(
                &base.url,
                StatusCode::CREATED,
                &version,
                true,
            ));
        }
    }
    let entries: Vec<Value> = results
        .into_iter()
        .map(|e| e.unwrap_or_else(|| json!({})))
        .collect();
    Ok(response_bundle("transaction-response", entries))
}

/// A transaction of plain creates only (server-made ids, nothing conditional) reads nothing and
/// can conflict with nothing, so it needs no unit of work: its resources and its AuditEvent are
/// appended to the next commit together, all or none, with whatever else is appended to it.
/// Under a load of such Bundles (bulk loads, message ingest) one commit writes them all in a
/// few multi-row statements, instead of a savepoint and several statements for each Bundle.
async fn run_creates_only(
    base: &Base,
    request: &Request,
    bulk: Vec<(usize, NewResource)>,
    entry_count: usize,
) -> Result<Reply, ApiError> {
    let (positions, resources): (Vec<usize>, Vec<NewResource>) = bulk.into_iter().unzip();
    let entities: Vec<String> = resources
        .iter()
        .map(|r| format!("{}/{}", r.resource_type, r.id))
        .collect();
    let mut parts = vec![(base.store_key.clone(), resources)];
    if let Some(caller) = &request.caller {
        let event = crate::audit::event(
            caller,
            crate::audit::Interaction::Transaction,
            &base.url,
            &entities,
            &patients_among(&entities),
            None,
        );
        parts.push((
            crate::audit::AUDIT_BASE.to_owned(),
            vec![crate::audit::stored(event)],
        ));
    }
    let stored = base.store.append_all(parts).await?;
    let created = stored.into_iter().next().unwrap_or_default();
    let mut entries = vec![json!({}); entry_count];
    for (position, version) in positions.into_iter().zip(created) {
        if let Some(slot) = entries.get_mut(position) {
            *slot = response_entry(&base.url, StatusCode::CREATED, &version, true);
        }
    }
    Ok(response_bundle("transaction-response", entries))
}

/// The patients among `Type/id` references, for an AuditEvent.
fn patients_among(entities: &[String]) -> Vec<String> {
    entities
        .iter()
        .filter(|e| e.starts_with("Patient/"))
        .cloned()
        .collect()
}

async fn run_batch(base: &Base, request: &Request, entries: &[Value]) -> Result<Reply, ApiError> {
    let mut responses = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let outcome = match parse_entry(base, request, index, entry) {
            Ok(operation) => {
                let key = base.store_key.clone();
                let indexer = base.indexer.clone();
                let version = base.version;
                let base_url = base.url.clone();
                let caller = request.caller.clone();
                base.store
                    .write(move |tx| {
                        Box::pin(async move {
                            let entry =
                                execute(tx, &key, &indexer, version, &base_url, operation).await?;
                            // Each entry is its own unit of work, so each leaves its own
                            // AuditEvent in that unit, naming what it read or wrote.
                            if let Some(caller) = caller {
                                let (entities, patients) = touched(&base_url, &entry);
                                let event = crate::audit::event(
                                    &caller,
                                    crate::audit::Interaction::Batch,
                                    &base_url,
                                    &entities,
                                    &patients,
                                    None,
                                );
                                crate::audit::record_in(tx, Some(event)).await?;
                            }
                            Ok::<_, ApiError>(entry)
                        })
                    })
                    .await
            }
            Err(err) => Err(err),
        };
        responses.push(match outcome {
            Ok(entry) => entry,
            Err(err) => json!({"response": {
                "status": status_line(err.category.status()),
                "outcome": carehub_fhir::outcome::operation_outcome(&err.issues),
            }}),
        });
    }
    Ok(response_bundle("batch-response", responses))
}

/// The resources a batch entry's response names, and the patients they concern: the location it
/// wrote, the resource it returned, or the matches of its search.
fn touched(base_url: &str, entry: &Value) -> (Vec<String>, Vec<String>) {
    let mut entities = Vec::new();
    let mut patients = Vec::new();
    let mut note = |resource: &Value| {
        let (Some(kind), Some(id)) = (
            resource.get("resourceType").and_then(Value::as_str),
            resource.get("id").and_then(Value::as_str),
        ) else {
            return;
        };
        entities.push(format!("{kind}/{id}"));
        patients.extend(crate::audit::patients_of(kind, id, Some(resource)));
    };
    match entry.get("resource") {
        Some(bundle) if bundle.get("resourceType").and_then(Value::as_str) == Some("Bundle") => {
            for found in bundle
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(resource) = found.get("resource") {
                    note(resource);
                }
            }
        }
        Some(resource) => note(resource),
        None => {}
    }
    if entities.is_empty()
        && let Some(location) = entry.pointer("/response/location").and_then(Value::as_str)
    {
        let reference = location
            .trim_start_matches(base_url)
            .trim_start_matches('/');
        let reference = reference.split("/_history").next().unwrap_or(reference);
        if reference.starts_with("Patient/") {
            patients.push(reference.to_owned());
        }
        entities.push(reference.to_owned());
    }
    patients.sort();
    patients.dedup();
    (entities, patients)
}

fn response_bundle(kind: &str, entries: Vec<Value>) -> Reply {
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), "Bundle".into());
    bundle.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
    bundle.insert("type".into(), kind.into());
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Reply::new(StatusCode::OK, ReplyBody::Value(Value::Object(bundle)))
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

/// Runs one entry inside the open unit of work. The outer `Result` is a store failure (which
/// aborts); the inner one a failure of the entry itself, reported before it wrote anything.
async fn execute(
    tx: &mut Tx<'_>,
    key: &str,
    indexer: &Arc<Indexer>,
    _version: FhirVersion,
    base_url: &str,
    mut operation: Operation,
) -> Result<Value, ApiError> {
    let at = format!("Bundle.entry[{}]", operation.index);
    if let Some(resource) = &mut operation.resource {
        resolve_conditional_references(tx, key, indexer.version(), resource)
            .await
            .map_err(|err| err.at(at.clone()))?;
    }
    let resource_type = operation.resource_type.clone();
    let entry = |status: StatusCode, version: &Versioned, with_resource: bool| {
        response_entry(base_url, status, version, with_resource)
    };
    match operation.method {
        Method::Post => {
            let Some(resource) = operation.resource else {
                return Err(ApiError::invalid("A POST entry needs a resource").at(at));
            };
            if let Some(condition) = &operation.if_none_exist {
                let existing = tx.search_ids(key, condition, 2).await?;
                match existing.as_slice() {
                    [] => {}
                    [one] => {
                        let Some(found) = tx.read(key, &resource_type, one).await? else {
                            return Err(ApiError::fault("conditional match vanished"));
                        };
                        return Ok(entry(StatusCode::OK, &found, true));
                    }
                    _ => {
                        return Err(ApiError::new(
                            Category::PreconditionFailed,
                            IssueType::MultipleMatches,
                            "ifNoneExist matched more than one resource",
                        )
                        .at(at));
                    }
                }
            }
            let id = operation
                .assigned_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let mut resource = resource;
            if let Some(object) = resource.as_object_mut() {
                object.insert("id".into(), id.clone().into());
            }
            let index = indexer.index(&resource);
            let stored = tx
                .put(key, &resource_type, &id, resource, &index, Expect::Absent)
                .await?;
            Ok(entry(StatusCode::CREATED, &stored, true))
        }
        Method::Put => {
            let Some(mut resource) = operation.resource else {
                return Err(ApiError::invalid("A PUT entry needs a resource").at(at));
            };
            let id = match (&operation.id, &operation.condition) {
                (Some(id), _) => id.clone(),
                (None, Some(condition)) => {
                    let matches = tx.search_ids(key, condition, 2).await?;
                    match matches.as_slice() {
                        [] => resource
                            .get("id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                        [one] => one.clone(),
                        _ => {
                            return Err(ApiError::new(
                                Category::PreconditionFailed,
                                IssueType::MultipleMatches,
                                "The conditional update matched more than one resource",
                            )
                            .at(at));
                        }
                    }
                }
                (None, None) => return Err(ApiError::invalid("A PUT needs an id").at(at)),
            };
            if let Some(object) = resource.as_object_mut() {
                object.insert("id".into(), id.clone().into());
            }
            let expect = operation
                .if_match
                .map(Expect::Version)
                .unwrap_or(Expect::Any);
            let index = indexer.index(&resource);
            let stored = tx
                .put(key, &resource_type, &id, resource, &index, expect)
                .await?;
            let status = if stored.version == 1 {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(entry(status, &stored, true))
        }
        Method::Delete => {
            let ids = match (&operation.id, &operation.condition) {
                (Some(id), _) => vec![id.clone()],
                (None, Some(condition)) => tx.search_ids(key, condition, 2).await?,
                (None, None) => Vec::new(),
            };
            if ids.len() > 1 {
                return Err(ApiError::new(
                    Category::PreconditionFailed,
                    IssueType::MultipleMatches,
                    "The conditional delete matched more than one resource",
                )
                .at(at));
            }
            let expect = operation
                .if_match
                .map(Expect::Version)
                .unwrap_or(Expect::Any);
            for id in ids {
                tx.delete(key, &resource_type, &id, expect).await?;
            }
            Ok(json!({"response": {"status": status_line(StatusCode::NO_CONTENT)}}))
        }
        Method::Get => match (&operation.id, &operation.condition) {
            (Some(id), _) => match tx.read(key, &resource_type, id).await? {
                Some(found) if !found.is_deleted() => Ok(entry(StatusCode::OK, &found, true)),
                Some(_) => Err(ApiError::new(
                    Category::Gone,
                    IssueType::Deleted,
                    format!("{resource_type}/{id} was deleted"),
                )
                .at(at)),
                None => Err(ApiError::not_found(&resource_type, id).at(at)),
            },
            (None, condition) => {
                let Some(query) = condition.clone() else {
                    return Err(
                        ApiError::invalid("A GET entry needs Type/id or Type?search").at(at),
                    );
                };
                let ids = tx.search_ids(key, &query, query.count).await?;
                let mut found = Vec::new();
                for id in ids {
                    if let Some(version) = tx.read(key, &resource_type, &id).await?
                        && let Some(body) = &version.body
                        && let Ok(resource) = serde_json::from_str::<Value>(body)
                    {
                        found.push(json!({
                            "fullUrl": format!("{base_url}/{resource_type}/{id}"),
                            "resource": resource,
                            "search": {"mode": "match"},
                        }));
                    }
                }
                let mut searchset =
                    json!({"resourceType": "Bundle", "type": "searchset", "total": found.len()});
                if !found.is_empty()
                    && let Some(object) = searchset.as_object_mut()
                {
                    object.insert("entry".into(), Value::Array(found));
                }
                Ok(
                    json!({"resource": searchset, "response": {"status": status_line(StatusCode::OK)}}),
                )
            }
        },
    }
}

/// A response entry for a stored version (with the resource when asked).
fn response_entry(
    base_url: &str,
    status: StatusCode,
    version: &Versioned,
    with_resource: bool,
) -> Value {
    let mut response = json!({
        "status": status_line(status),
        "etag": format!("W/\"{}\"", version.version),
        "lastModified": carehub_fhir::datetime::format_instant(version.last_updated),
    });
    if version.body.is_some()
        && let Some(object) = response.as_object_mut()
    {
        object.insert(
            "location".into(),
            format!(
                "{base_url}/{}/{}/_history/{}",
                version.resource_type, version.id, version.version
            )
            .into(),
        );
    }
    let mut entry = json!({"response": response});
    if with_resource
        && let Some(body) = &version.body
        && let Ok(resource) = serde_json::from_str::<Value>(body)
        && let Some(object) = entry.as_object_mut()
    {
        object.insert(
            "fullUrl".into(),
            format!("{base_url}/{}/{}", version.resource_type, version.id).into(),
        );
        object.insert("resource".into(), resource);
    }
    entry
}

/// Replaces references to `urn:uuid:`/`urn:oid:` full URLs of the Bundle by the ids given to
/// them.
fn rewrite_references(value: &mut Value, references: &HashMap<String, String>) {
    match value {
        Value::String(text) => {
            if let Some(target) = references.get(text.as_str()) {
                *text = target.clone();
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_references(item, references)),
        Value::Object(object) => object
            .values_mut()
            .for_each(|item| rewrite_references(item, references)),
        _ => {}
    }
}

/// Resolves `reference: "Patient?identifier=x"` to the one resource that matches, inside the
/// transaction.
async fn resolve_conditional_references(
    tx: &mut Tx<'_>,
    key: &str,
    version: FhirVersion,
    resource: &mut Value,
) -> Result<(), ApiError> {
    let mut pending = Vec::new();
    collect_conditional(resource, &mut pending);
    let mut resolved = HashMap::new();
    for reference in pending {
        let Some((resource_type, query)) = reference.split_once('?') else {
            continue;
        };
        if version.model().resource(resource_type).is_none() {
            return Err(ApiError::invalid(format!(
                "Conditional reference '{reference}' names no resource type"
            )));
        }
        let params = decode_query(query);
        let parsed = carehub_fhir::search::parse_query(
            version.model(),
            resource_type,
            &params,
            &carehub_fhir::search::ParseOptions::default(),
        );
        let query = match parsed {
            Ok(query) => query,
            Err(issues) => return Err(ApiError::with_issues(Category::Invalid, issues)),
        };
        let matches = tx.search_ids(key, &query, 2).await?;
        match matches.as_slice() {
            [one] => {
                resolved.insert(reference.clone(), format!("{resource_type}/{one}"));
            }
            found => {
                return Err(ApiError::new(
                    Category::PreconditionFailed,
                    IssueType::NotFound,
                    format!(
                        "Conditional reference '{reference}' matched {} resources; exactly one is required",
                        found.len()
                    ),
                ));
            }
        }
    }
    if !resolved.is_empty() {
        rewrite_references(resource, &resolved);
    }
    Ok(())
}

fn collect_conditional(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, item) in object {
                match (key.as_str(), item) {
                    ("reference", Value::String(text))
                        if text.contains('?') && !text.contains("://") =>
                    {
                        found.push(text.clone());
                    }
                    _ => collect_conditional(item, found),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_conditional(item, found)),
        _ => {}
    }
}
