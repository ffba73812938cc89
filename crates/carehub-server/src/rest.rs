//! The instance and type interactions: read, vread, create, update, delete (plain and
//! conditional), search, history and `$validate`, plus the shared request and reply plumbing.

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::header::{CONTENT_TYPE, ETAG, HeaderName, LAST_MODIFIED, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use carehub_fhir::datetime::{DateKind, PartialDateTime, format_http_date};
use carehub_fhir::profile::ProfileSet;
use carehub_fhir::search::{ParseOptions, SearchQuery, Summary, parse_query};
use carehub_fhir::{Issue, IssueType};
use carehub_store::{Expect, HistoryRequest, StoreError, Versioned};
use serde_json::{Value, json};

use crate::audit::{self, Caller, Interaction};
use crate::error::{ApiError, Category};
use crate::format::{self, Format, Negotiated};
use crate::{Base, BaseState, shape};

/// What a handler answers before it is rendered.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, String)>,
    pub(crate) body: ReplyBody,
}

#[derive(Debug)]
pub(crate) enum ReplyBody {
    Empty,
    /// A value to render.
    Value(Value),
    /// JSON exactly as stored: sent as it is when the client wants compact JSON.
    Stored(String),
}

impl Reply {
    pub(crate) fn new(status: StatusCode, body: ReplyBody) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn header(mut self, name: HeaderName, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// `ETag` and `Last-Modified` of a stored version.
    fn version_headers(self, version: &Versioned) -> Reply {
        self.header(ETAG, format!("W/\"{}\"", version.version))
            .header(LAST_MODIFIED, format_http_date(version.last_updated))
    }
}

/// One parsed request: its decoded query and headers, and the negotiated format.
pub(crate) struct Request {
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) negotiated: Result<Negotiated, ApiError>,
    /// Who is calling, when the gateway says; such requests are audited.
    pub(crate) caller: Option<Caller>,
    raw_query: Option<String>,
}

impl Request {
    pub(crate) fn new(raw_query: Option<String>, headers: HeaderMap) -> Request {
        let query = decode_query(raw_query.as_deref().unwrap_or(""));
        let negotiated = format::negotiate(&query, &headers);
        Request {
            query,
            headers,
            negotiated,
            caller: None,
            raw_query,
        }
    }

    pub(crate) fn with_caller(mut self, caller: Option<Extension<Caller>>) -> Request {
        self.caller = caller.map(|Extension(caller)| caller);
        self
    }

    /// The AuditEvent for this request, when it is audited.
    pub(crate) fn audit(
        &self,
        base: &Base,
        interaction: Interaction,
        entities: &[String],
        patients: &[String],
    ) -> Option<(String, Value, Vec<carehub_fhir::search::IndexEntry>)> {
        let caller = self.caller.as_ref()?;
        let query = matches!(interaction, Interaction::Search)
            .then_some(self.raw_query.as_deref().unwrap_or(""));
        Some(audit::event(
            caller,
            interaction,
            &base.url,
            entities,
            patients,
            query,
        ))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Prefer: handling=lenient`.
    fn lenient(&self) -> bool {
        self.prefer("handling") == Some("lenient")
    }

    /// The value of one `Prefer` token, e.g. `return`.
    pub(crate) fn prefer(&self, key: &str) -> Option<&str> {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .filter_map(|part| part.trim().split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().trim_matches('"'))
    }
}

/// Splits and percent-decodes a query string (`+` is a space, as in HTML forms).
pub(crate) fn decode_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(key), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Renders a result in the negotiated format (errors as OperationOutcome).
pub(crate) fn send(base: &Base, request: &Request, result: Result<Reply, ApiError>) -> Response {
    let negotiated = match &request.negotiated {
        Ok(negotiated) => *negotiated,
        // The negotiation error itself goes out as JSON, which every client can read.
        Err(_) => Negotiated {
            format: Format::Json,
            pretty: false,
        },
    };
    let result = match (&request.negotiated, result) {
        (Err(err), _) => Err(err.clone()),
        (Ok(_), result) => result,
    };
    let reply = match result {
        Ok(reply) => reply,
        Err(err) => error_reply(err),
    };
    let mut response = match render_body(base, negotiated, reply.body) {
        Ok(Some(bytes)) => {
            let mut response = Response::new(Body::from(bytes));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(negotiated.format.content_type()),
            );
            response
        }
        Ok(None) => Response::new(Body::empty()),
        Err(err) => return send(base, request, Err(err)),
    };
    *response.status_mut() = reply.status;
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn error_reply(err: ApiError) -> Reply {
    Reply::new(
        err.category.status(),
        ReplyBody::Value(carehub_fhir::outcome::operation_outcome(&err.issues)),
    )
}

fn render_body(
    base: &Base,
    negotiated: Negotiated,
    body: ReplyBody,
) -> Result<Option<Bytes>, ApiError> {
    match body {
        ReplyBody::Empty => Ok(None),
        ReplyBody::Stored(text) if negotiated.format == Format::Json && !negotiated.pretty => {
            Ok(Some(Bytes::from(text)))
        }
        ReplyBody::Stored(text) => {
            let value: Value = serde_json::from_str(&text).map_err(ApiError::fault)?;
            format::render(base.version, negotiated, &value).map(Some)
        }
        ReplyBody::Value(value) => format::render(base.version, negotiated, &value).map(Some),
    }
}

/// Answers requests for paths no base serves.
pub(crate) async fn unknown_endpoint(RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    plain_error(
        query,
        headers,
        ApiError::new(
            Category::NotFound,
            IssueType::NotFound,
            "No FHIR endpoint at this path",
        ),
    )
}

/// Answers a method that the path does not support.
pub(crate) async fn method_not_allowed(RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    plain_error(
        query,
        headers,
        ApiError::new(
            Category::MethodNotAllowed,
            IssueType::NotSupported,
            "This HTTP method is not supported at this path",
        ),
    )
}

/// An error as an OperationOutcome in the format the request negotiated (JSON when it
/// negotiated nothing usable), for layers in front of a base (the gateway) and for paths no base
/// serves.
pub fn plain_error(query: Option<String>, headers: HeaderMap, err: ApiError) -> Response {
    let request = Request::new(query, headers);
    let format = request
        .negotiated
        .as_ref()
        .map(|n| n.format)
        .unwrap_or(Format::Json);
    let outcome = carehub_fhir::outcome::operation_outcome(&err.issues);
    // Which base was meant is unknown here; both versions share the OperationOutcome shape.
    let body = match format {
        Format::Xml => {
            carehub_fhir::xml::to_xml(carehub_fhir::FhirVersion::R4, &outcome).unwrap_or_default()
        }
        Format::Json => outcome.to_string(),
    };
    (
        err.category.status(),
        [(CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

/// A panic in a handler: logged, answered as a generic 500 OperationOutcome.
pub(crate) fn panic_response(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    let err = ApiError::fault(format!("handler panicked: {detail}"));
    let outcome = carehub_fhir::outcome::operation_outcome(&err.issues);
    (
        err.category.status(),
        [(CONTENT_TYPE, Format::Json.content_type())],
        outcome.to_string(),
    )
        .into_response()
}

/// Checks that a path names a resource type of this base.
pub(crate) fn check_type(base: &Base, resource_type: &str) -> Result<(), ApiError> {
    if base.version.model().resource(resource_type).is_some() {
        return Ok(());
    }
    Err(ApiError::new(
        Category::NotFound,
        IssueType::NotSupported,
        format!(
            "'{resource_type}' is not a resource type of FHIR {}",
            base.version
        ),
    ))
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if carehub_fhir::json::is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "'{id}' is not a valid id: 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'"
        ))
        .at("id"))
    }
}

/// Reads the body up to the configured limit.
pub(crate) async fn read_body(base: &Base, body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, base.body_limit)
        .await
        .map_err(|_| {
            ApiError::new(
                Category::TooLarge,
                IssueType::TooCostly,
                format!(
                    "The request body is larger than the limit of {} bytes",
                    base.body_limit
                ),
            )
        })
}

/// The version an `If-Match` header asks for (`W/"3"` or `"3"`).
fn if_match(request: &Request) -> Result<Option<i64>, ApiError> {
    let Some(value) = request.header("if-match") else {
        return Ok(None);
    };
    let trimmed = value.trim().trim_start_matches("W/").trim_matches('"');
    trimmed.parse::<i64>().map(Some).map_err(|_| {
        ApiError::invalid(format!(
            "If-Match must be a version ETag such as W/\"3\", not '{value}'"
        ))
        .at("If-Match")
    })
}

fn search_options(base: &Base, request: &Request) -> ParseOptions {
    ParseOptions {
        lenient: request.lenient(),
        default_count: base.default_count,
        max_count: base.max_count,
        base_url: base.url.clone(),
    }
}

pub(crate) fn parse_search(
    base: &Base,
    request: &Request,
    resource_type: &str,
    params: &[(String, String)],
) -> Result<SearchQuery, ApiError> {
    parse_query(
        base.version.model(),
        resource_type,
        params,
        &search_options(base, request),
    )
    .map_err(|issues| ApiError::with_issues(Category::Invalid, issues))
}

/// The `_summary` and `_elements` a read asked for.
fn read_shape(request: &Request) -> Result<(Summary, Vec<String>), ApiError> {
    let mut summary = Summary::False;
    let mut elements = Vec::new();
    for (key, value) in &request.query {
        match key.as_str() {
            "_summary" => {
                // `count` only means something for a search.
                summary = Summary::parse(value)
                    .filter(|s| *s != Summary::Count)
                    .ok_or_else(|| {
                        ApiError::invalid(format!("_summary '{value}' is not valid on a read"))
                            .at("_summary")
                    })?;
            }
            "_elements" => elements.extend(
                value
                    .split(',')
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned),
            ),
            _ => {}
        }
    }
    Ok((summary, elements))
}

/// The body of a stored version, shaped as asked.
fn version_body(
    base: &Base,
    version: &Versioned,
    summary: Summary,
    elements: &[String],
) -> Result<ReplyBody, ApiError> {
    let Some(body) = &version.body else {
        return Ok(ReplyBody::Empty);
    };
    if summary == Summary::False && elements.is_empty() {
        return Ok(ReplyBody::Stored(body.clone()));
    }
    let value: Value = serde_json::from_str(body).map_err(ApiError::fault)?;
    Ok(
        match shape::subset(base.version.model(), &value, summary, elements) {
            Some(subset) => ReplyBody::Value(subset),
            None => ReplyBody::Stored(body.clone()),
        },
    )
}

fn gone(version: &Versioned) -> ApiError {
    ApiError::from(StoreError::Gone {
        resource_type: version.resource_type.clone(),
        id: version.id.clone(),
        version: version.version,
    })
}

/// An AuditEvent maker for writes whose id is known only inside the unit of work.
type AuditMaker = Box<
    dyn Fn(&str) -> Option<(String, Value, Vec<carehub_fhir::search::IndexEntry>)> + Send + Sync,
>;

fn audit_template(
    base: &Base,
    request: &Request,
    interaction: Interaction,
    resource_type: &str,
    patients: Vec<String>,
) -> Option<AuditMaker> {
    let caller = request.caller.clone()?;
    let base_url = base.url.clone();
    let resource_type = resource_type.to_owned();
    Some(Box::new(move |id: &str| {
        let entity = format!("{resource_type}/{id}");
        let mut patients = patients.clone();
        if resource_type == "Patient" {
            patients = vec![entity.clone()];
        }
        Some(audit::event(
            &caller,
            interaction,
            &base_url,
            &[entity],
            &patients,
            None,
        ))
    }))
}

/// Records that a resource version was read (when the request is audited).
async fn audit_read(
    base: &Base,
    request: &Request,
    interaction: Interaction,
    version: &Versioned,
) -> Result<(), ApiError> {
    if request.caller.is_none() {
        return Ok(());
    }
    let body = version
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Value>(b).ok());
    let entity = format!("{}/{}", version.resource_type, version.id);
    let patients = audit::patients_of(&version.resource_type, &version.id, body.as_ref());
    audit::record(
        &base.store,
        request.audit(base, interaction, &[entity], &patients),
    )
    .await?;
    Ok(())
}

pub(crate) async fn read(
    State(base): State<BaseState>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        check_type(&base, &resource_type)?;
        check_id(&id)?;
        let (summary, elements) = read_shape(&request)?;
        let version = base
            .store
            .read(&base.store_key, &resource_type, &id)
            .await?
            .ok_or_else(|| ApiError::not_found(&resource_type, &id))?;
        if version.is_deleted() {
            return Err(gone(&version));
        }
        audit_read(&base, &request, Interaction::Read, &version).await?;
        if request.header("if-none-match").is_some_and(|etag| {
            etag.trim_start_matches("W/").trim_matches('"') == version.version.to_string()
        }) {
            return Ok(
                Reply::new(StatusCode::NOT_MODIFIED, ReplyBody::Empty).version_headers(&version)
            );
        }
        let body = version_body(&base, &version, summary, &elements)?;
        Ok(Reply::new(StatusCode::OK, body).version_headers(&version))
    }
    .await;
    send(&base, &request, result)
}

pub(crate) async fn vread(
    State(base): State<BaseState>,
    Path((resource_type, id, version_id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        check_type(&base, &resource_type)?;
        check_id(&id)?;
        let number: i64 = version_id.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::invalid(format!("'{version_id}' is not a version number")).at("vid")
        })?;
        let (summary, elements) = read_shape(&request)?;
        let version = base
            .store
            .vread(&base.store_key, &resource_type, &id, number)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    Category::NotFound,
                    IssueType::NotFound,
                    format!("{resource_type}/{id} has no version {number}"),
                )
            })?;
        if version.is_deleted() {
            return Err(gone(&version));
        }
        audit_read(&base, &request, Interaction::Vread, &version).await?;
        let body = version_body(&base, &version, summary, &elements)?;
        Ok(Reply::new(StatusCode::OK, body).version_headers(&version))
    }
    .await;
    send(&base, &request, result)
}

/// The body returned after a write, by `Prefer: return=`.
fn write_reply(
    request: &Request,
    status: StatusCode,
    version: &Versioned,
    location: String,
) -> Reply {
    let body = match request.prefer("return") {
        Some("minimal") => ReplyBody::Empty,
        Some("OperationOutcome") => ReplyBody::Value(carehub_fhir::outcome::operation_outcome(&[
            Issue::information(format!(
                "{}/{} version {} stored",
                version.resource_type, version.id, version.version
            )),
        ])),
        _ => version
            .body
            .clone()
            .map(ReplyBody::Stored)
            .unwrap_or(ReplyBody::Empty),
    };
    Reply::new(status, body)
        .version_headers(version)
        .header(LOCATION, location)
}

fn location(base: &Base, version: &Versioned) -> String {
    format!(
        "{}/{}/{}/_history/{}",
        base.url, version.resource_type, version.id, version.version
    )
}

/// Parses and checks a resource body for a write to `resource_type`.
async fn resource_body(
    base: &Base,
    request: &Request,
    resource_type: &str,
    body: Body,
) -> Result<Value, ApiError> {
    let bytes = read_body(base, body).await?;
    let value = format::parse_body(base.version, &request.headers, &bytes)?;
    let found = value
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if found != resource_type {
        return Err(ApiError::invalid(format!(
            "The body is a {found} but the URL is for {resource_type}"
        ))
        .at("resourceType"));
    }
    Ok(value)
}

pub(crate) async fn create(
    State(base): State<BaseState>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        check_type(&base, &resource_type)?;
        let mut resource = resource_body(&base, &request, &resource_type, body).await?;
        // The server assigns the id of a created resource; a client id is ignored as the
        // specification says.
        if let Some(object) = resource.as_object_mut() {
            object.remove("id");
        }
        let condition = match request.header("if-none-exist") {
            Some(condition) => {
                let params = decode_query(condition.trim_start_matches('?'));
                Some(
                    parse_search(&base, &request, &resource_type, &params)
                        .map_err(|e| e.at("If-None-Exist"))?,
                )
            }
            None => None,
        };
        let index = base.indexer.index(&resource);
        let id = uuid::Uuid::new_v4().to_string();
        let audit = request.audit(
            &base,
            Interaction::Create,
            &[format!("{resource_type}/{id}")],
            &audit::patients_of(&resource_type, &id, Some(&resource)),
        );
        let key = base.store_key.clone();
        let rtype = resource_type.clone();
        let outcome = base
            .store
            .write(move |tx| {
                Box::pin(async move {
                    if let Some(condition) = condition {
                        let existing = tx.search_ids(&key, &condition, 2).await?;
                        match existing.as_slice() {
                            [] => {}
                            [one] => {
                                let found = tx.read(&key, &rtype, one).await?;
                                return Ok(Conditional::Existing(found));
                            }
                            _ => return Ok(Conditional::Ambiguous),
                        }
                    }
                    let stored = tx
                        .put(&key, &rtype, &id, resource, &index, Expect::Absent)
                        .await?;
                    audit::record_in(tx, audit).await?;
                    Ok::<_, ApiError>(Conditional::Written(stored))
                })
            })
            .await?;
        match outcome {
            Conditional::Written(stored) => Ok(write_reply(
                &request,
                StatusCode::CREATED,
                &stored,
                location(&base, &stored),
            )),
            Conditional::Existing(Some(existing)) => {
                audit_read(&base, &request, Interaction::Read, &existing).await?;
                Ok(write_reply(
                    &request,
                    StatusCode::OK,
                    &existing,
                    location(&base, &existing),
                ))
            }
            Conditional::Existing(None) => Err(ApiError::fault(
                "conditional match vanished inside its transaction",
            )),
            Conditional::Ambiguous => Err(ApiError::new(
                Category::PreconditionFailed,
                IssueType::MultipleMatches,
                "If-None-Exist matched more than one resource; nothing was created",
            )
            .at("If-None-Exist")),
        }
    }
    .await;
    send(&base, &request, result)
}

enum Conditional {
    Written(Versioned),
    Existing(Option<Versioned>),
    Ambiguous,
}

pub(crate) async fn update(
    State(base): State<BaseState>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        check_type(&base, &resource_type)?;
        check_id(&id)?;
        let resource = resource_body(&base, &request, &resource_type, body).await?;
        match resource.get("id").and_then(Value::as_str) {
            Some(body_id) if body_id == id => {}
            Some(body_id) => {
                return Err(ApiError::invalid(format!(
                    "The body's id '{body_id}' does not match the URL's id '{id}'"
                ))
                .at("id"));
            }
            None => {
                return Err(
                    ApiError::invalid("An update must carry the resource id in the body").at("id"),
                );
            }
        }
        let expect = match if_match(&request)? {
            Some(version) => Expect::Version(version),
            None => Expect::Any,
        };
        let index = base.indexer.index(&resource);
        let audit = request.audit(
            &base,
            Interaction::Update,
            &[format!("{resource_type}/{id}")],
            &audit::patients_of(&resource_type, &id, Some(&resource)),
        );
        let key = base.store_key.clone();
        let rtype = resource_type.clone();
        let stored = base
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let stored = tx.put(&key, &rtype, &id, resource, &index, expect).await?;
                    audit::record_in(tx, audit).await?;
                    Ok::<_, StoreError>(stored)
                })
            })
            .await?;
        let status = if stored.version == 1 {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(write_reply(
            &request,
            status,
            &stored,
            location(&base, &stored),
        ))
    }
    .await;
    send(&base, &request, result)
}

/// The search of a conditional update or delete: the query string without the format options;
/// without one, a PUT or DELETE on a type has nothing to act on.
fn condition(
    base: &Base,
    request: &Request,
    resource_type: &str,
    method: &str,
    action: &str,
) -> Result<SearchQuery, ApiError> {
    let params: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(k, _)| k != "_format" && k != "_pretty")
        .cloned()
        .collect();
    if params.is_empty() {
        return Err(ApiError::new(
            Category::MethodNotAllowed,
            IssueType::NotSupported,
            format!(
                "{method} on a type needs search parameters (conditional {action}) or an id in the URL"
            ),
        ));
    }
    parse_search(base, request, resource_type, &params)
}

pub(crate) async fn conditional_update(
    State(base): State<BaseState>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        check_type(&base, &resource_type)?;
        let condition = condition(&base, &request, &resource_type, "PUT", "update")?;
        let resource = resource_body(&base, &request, &resource_type, body).await?;
        let index = base.indexer.index(&resource);
        let key = base.store_key.clone();
        let rtype = resource_type.clone();
        let body_id = resource.get("id").and_then(Value::as_str).map(str::to_owned);
        let patients = audit::patients_of(&resource_type, "", Some(&resource));
        let audit_of = audit_template(&base, &request, Interaction::Update, &resource_type, patients);
        let stored = base
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let matches = tx.search_ids(&key, &condition, 2).await?;
                    let id = match (matches.as_slice(), body_id) {
                        ([], Some(id)) => id,
                        ([], None) => uuid::Uuid::new_v4().to_string(),
                        ([one], Some(id)) if *one != id => {
                            return Err(ApiError::invalid(format!(
                                "The body's id '{id}' is not the id of the matching resource '{one}'"
                            ))
                            .at("id"));
                        }
                        ([one], _) => one.clone(),
                        _ => {
                            return Err(ApiError::new(
                                Category::PreconditionFailed,
                                IssueType::MultipleMatches,
                                "The conditional update matched more than one resource; nothing was changed",
                            ));
                        }
                    };
                    let stored = tx.put(&key, &rtype, &id, resource, &index, Expect::Any).await?;
                    audit::record_in(tx, audit_of.and_then(|make| make(&id))).await?;
                    Ok::<_, ApiError>(stored)
                })
            })
            .await?;
        let status = if stored.version == 1 { StatusCode::CREATED } else { StatusCode::OK };
        Ok(write_reply(&request, status, &stored, location(&base, &stored)))
    }
    .await;
    send(&base, &request, result)
}

pub(crate) async fn delete(
    State(base): State<BaseState>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        check_type(&base, &resource_type)?;
        check_id(&id)?;
        let expect = match if_match(&request)? {
            Some(version) => Expect::Version(version),
            None => Expect::Any,
        };
        let audit = request.audit(
            &base,
            Interaction::Delete,
            &[format!("{resource_type}/{id}")],
            &audit::patients_of(&resource_type, &id, None),
        );
        let key = base.store_key.clone();
        let rtype = resource_type.clone();
        let deleted = base
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let deleted = tx.delete(&key, &rtype, &id, expect).await?;
                    audit::record_in(tx, audit).await?;
                    Ok::<_, StoreError>(deleted)
                })
            })
            .await?;
        let reply = Reply::new(StatusCode::NO_CONTENT, ReplyBody::Empty);
        Ok(match deleted {
            Some(tombstone) => reply.header(ETAG, format!("W/\"{}\"", tombstone.version)),
            None => reply,
        })
    }
    .await;
    send(&base, &request, result)
}

pub(crate) async fn conditional_delete(
    State(base): State<BaseState>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        check_type(&base, &resource_type)?;
        let condition = condition(&base, &request, &resource_type, "DELETE", "delete")?;
        let audit_of =
            audit_template(&base, &request, Interaction::Delete, &resource_type, Vec::new());
        let key = base.store_key.clone();
        let rtype = resource_type.clone();
        base.store
            .write(move |tx| {
                Box::pin(async move {
                    let matches = tx.search_ids(&key, &condition, 2).await?;
                    if matches.len() > 1 {
                        return Err(ApiError::new(
                            Category::PreconditionFailed,
                            IssueType::MultipleMatches,
                            "The conditional delete matched more than one resource; nothing was deleted",
                        ));
                    }
                    for id in matches {
                        tx.delete(&key, &rtype, &id, Expect::Any).await?;
                        let audit = audit_of.as_ref().and_then(|make| make(&id));
                        audit::record_in(tx, audit).await?;
                    }
                    Ok::<_, ApiError>(())
                })
            })
            .await?;
        Ok(Reply::new(StatusCode::NO_CONTENT, ReplyBody::Empty))
    }
    .await;
    send(&base, &request, result)
}

pub(crate) async fn search_get(
    State(base): State<BaseState>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let params = request.query.clone();
    let result = search(&base, &request, &resource_type, &params).await;
    send(&base, &request, result)
}

pub(crate) async fn search_post(
    State(base): State<BaseState>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        let content_type = request.header("content-type").unwrap_or_default();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return Err(ApiError::new(
                Category::UnsupportedMediaType,
                IssueType::NotSupported,
                "POST _search takes an application/x-www-form-urlencoded body",
            )
            .at("Content-Type"));
        }
        let bytes = read_body(&base, body).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::invalid("The form body is not UTF-8"))?;
        let mut params = request.query.clone();
        params.extend(decode_query(text));
        search(&base, &request, &resource_type, &params).await
    }
    .await;
    send(&base, &request, result)
}

async fn search(
    base: &Base,
    request: &Request,
    resource_type: &str,
    params: &[(String, String)],
) -> Result<Reply, ApiError> {
    check_type(base, resource_type)?;
    let query = parse_search(base, request, resource_type, params)?;
    let page = base.store.search(&base.store_key, &query).await?;
    if request.caller.is_some() {
        let mut entities = Vec::new();
        let mut patients = Vec::new();
        for found in page
            .matches
            .iter()
            .map(|m| &m.resource)
            .chain(page.included.iter())
        {
            entities.push(format!("{}/{}", found.resource_type, found.id));
            let body = found
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str::<Value>(b).ok());
            for patient in audit::patients_of(&found.resource_type, &found.id, body.as_ref()) {
                if !patients.contains(&patient) {
                    patients.push(patient);
                }
            }
        }
        audit::record(
            &base.store,
            request.audit(base, Interaction::Search, &entities, &patients),
        )
        .await?;
    }
    let self_params: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "_cursor")
        .cloned()
        .collect();
    let link = |cursor: Option<&str>| {
        let mut pairs = self_params.clone();
        if let Some(cursor) = cursor {
            pairs.push(("_cursor".into(), cursor.to_owned()));
        }
        format!("{}/{}{}", base.url, resource_type, encode_query(&pairs))
    };
    let mut links = vec![json!({"relation": "self", "url": link(query.cursor.as_deref())})];
    if let Some(next) = &page.next {
        links.push(json!({"relation": "next", "url": link(Some(next))}));
    }
    if let Some(previous) = &page.previous {
        links.push(json!({"relation": "previous", "url": link(Some(previous))}));
    }
    let mut entries = Vec::with_capacity(page.matches.len() + page.included.len());
    let model = base.version.model();
    for (found, mode) in page
        .matches
        .iter()
        .map(|m| (&m.resource, "match"))
        .chain(page.included.iter().map(|v| (v, "include")))
    {
        let Some(body) = &found.body else { continue };
        let value: Value = serde_json::from_str(body).map_err(ApiError::fault)?;
        let value = shape::subset(model, &value, query.summary, &query.elements).unwrap_or(value);
        entries.push(json!({
            "fullUrl": format!("{}/{}/{}", base.url, found.resource_type, found.id),
            "resource": value,
            "search": {"mode": mode},
        }));
    }
    if !query.warnings.is_empty() {
        entries.push(json!({
            "resource": carehub_fhir::outcome::operation_outcome(&query.warnings),
            "search": {"mode": "outcome"},
        }));
    }
    let mut bundle = serde_json::Map::new();
    bundle.insert("resourceType".into(), "Bundle".into());
    bundle.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
    bundle.insert(
        "meta".into(),
        json!({"lastUpdated": carehub_fhir::datetime::format_instant(now_micros())}),
    );
    bundle.insert("type".into(), "searchset".into());
    if let Some(total) = page.total {
        bundle.insert("total".into(), total.into());
    }
    bundle.insert("link".into(), Value::Array(links));
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Ok(Reply::new(
        StatusCode::OK,
        ReplyBody::Value(Value::Object(bundle)),
    ))
}

pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A query string from pairs, percent-encoded.
pub(crate) fn encode_query(pairs: &[(String, String)]) -> String {
    const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b':')
        .remove(b'|')
        .remove(b',');
    if pairs.is_empty() {
        return String::new();
    }
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, COMPONENT),
                percent_encoding::utf8_percent_encode(v, COMPONENT)
            )
        })
        .collect();
    format!("?{}", encoded.join("&"))
}

pub(crate) async fn history_instance(
    State(base): State<BaseState>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        check_type(&base, &resource_type)?;
        check_id(&id)?;
        if base
            .store
            .read(&base.store_key, &resource_type, &id)
            .await?
            .is_none()
        {
            return Err(ApiError::not_found(&resource_type, &id));
        }
        history(&base, &request, Some(&resource_type), Some(&id)).await
    }
    .await;
    send(&base, &request, result)
}

pub(crate) async fn history_type(
    State(base): State<BaseState>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = async {
        check_type(&base, &resource_type)?;
        history(&base, &request, Some(&resource_type), None).await
    }
    .await;
    send(&base, &request, result)
}

pub(crate) async fn history_system(
    State(base): State<BaseState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = history(&base, &request, None, None).await;
    send(&base, &request, result)
}

async fn history(
    base: &Base,
    request: &Request,
    resource_type: Option<&str>,
    id: Option<&str>,
) -> Result<Reply, ApiError> {
    let reply = history_reply(base, request, resource_type, id).await?;
    if request.caller.is_some() {
        let (entities, patients) = match (resource_type, id) {
            (Some(rtype), Some(id)) => (
                vec![format!("{rtype}/{id}")],
                audit::patients_of(rtype, id, None),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        audit::record(
            &base.store,
            request.audit(base, Interaction::History, &entities, &patients),
        )
        .await?;
    }
    Ok(reply)
}

async fn history_reply(
    base: &Base,
    request: &Request,
    resource_type: Option<&str>,
    id: Option<&str>,
) -> Result<Reply, ApiError> {
    let mut since = None;
    let mut limit = base.default_count;
    let mut before_seq = None;
    for (key, value) in &request.query {
        match key.as_str() {
            "_since" => {
                let parsed = PartialDateTime::parse(value, DateKind::Instant).map_err(|e| {
                    ApiError::invalid(format!("_since must be an instant: {e}")).at("_since")
                })?;
                since = Some(parsed.range().0);
            }
            "_count" => {
                limit = value
                    .parse::<usize>()
                    .map_err(|_| ApiError::invalid("_count must be a whole number").at("_count"))?
                    .min(base.max_count);
            }
            "_page" => {
                before_seq = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| ApiError::invalid("_page is not valid").at("_page"))?,
                );
            }
            "_format" | "_pretty" => {}
            other => {
                if !request.lenient() {
                    return Err(ApiError::new(
                        Category::Invalid,
                        IssueType::NotSupported,
                        format!("History does not support the parameter '{other}'"),
                    )
                    .at(other.to_owned()));
                }
            }
        }
    }
    let (versions, next) = base
        .store
        .history(&HistoryRequest {
            base: &base.store_key,
            resource_type,
            id,
            since,
            before_seq,
            limit,
        })
        .await?;
    let path = match (resource_type, id) {
        (Some(t), Some(i)) => format!("{}/{t}/{i}/_history", base.url),
        (Some(t), None) => format!("{}/{t}/_history", base.url),
        _ => format!("{}/_history", base.url),
    };
    let self_params: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(k, _)| k != "_page")
        .cloned()
        .collect();
    let mut links =
        vec![json!({"relation": "self", "url": format!("{path}{}", encode_query(&request.query))})];
    if let Some(next) = next {
        let mut pairs = self_params;
        pairs.push(("_page".into(), next.to_string()));
        links.push(json!({"relation": "next", "url": format!("{path}{}", encode_query(&pairs))}));
    }
    let mut entries = Vec::with_capacity(versions.len());
    for version in &versions {
        let full_url = format!("{}/{}/{}", base.url, version.resource_type, version.id);
        let mut entry = serde_json::Map::new();
        entry.insert("fullUrl".into(), full_url.into());
        let method = match &version.body {
            Some(body) => {
                entry.insert(
                    "resource".into(),
                    serde_json::from_str(body).map_err(ApiError::fault)?,
                );
                if version.version == 1 { "POST" } else { "PUT" }
            }
            None => "DELETE",
        };
        let url = if method == "POST" {
            version.resource_type.clone()
        } else {
            format!("{}/{}", version.resource_type, version.id)
        };
        entry.insert("request".into(), json!({"method": method, "url": url}));
        let status = match method {
            "POST" => "201 Created",
            "DELETE" => "204 No Content",
            _ => "200 OK",
        };
        entry.insert(
            "response".into(),
            json!({
                "status": status,
                "etag": format!("W/\"{}\"", version.version),
                "lastModified": carehub_fhir::datetime::format_instant(version.last_updated),
            }),
        );
        entries.push(Value::Object(entry));
    }
    let mut bundle = serde_json::Map::new();
    bundle.insert("resourceType".into(), "Bundle".into());
    bundle.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
    bundle.insert("type".into(), "history".into());
    bundle.insert("link".into(), Value::Array(links));
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Ok(Reply::new(
        StatusCode::OK,
        ReplyBody::Value(Value::Object(bundle)),
    ))
}

pub(crate) async fn validate_type(
    State(base): State<BaseState>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = validate(&base, &request, &resource_type, body).await;
    send(&base, &request, result)
}

pub(crate) async fn validate_instance(
    State(base): State<BaseState>,
    Path((resource_type, _id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Response {
    let request = Request::new(query, headers).with_caller(caller);
    let result = validate(&base, &request, &resource_type, body).await;
    send(&base, &request, result)
}

/// `$validate`: every issue the base definitions and the profiles (asked for, or claimed in
/// `meta.profile`) find, as an OperationOutcome with status 200;
/// only a body that cannot be read at all is an error.
async fn validate(
    base: &Base,
    request: &Request,
    resource_type: &str,
    body: Body,
) -> Result<Reply, ApiError> {
    check_type(base, resource_type)?;
    let bytes = read_body(base, body).await?;
    let content_type = request
        .header("content-type")
        .and_then(Format::from_mime)
        .ok_or_else(|| {
            ApiError::new(
                Category::UnsupportedMediaType,
                IssueType::NotSupported,
                "Send the resource as application/fhir+json or application/fhir+xml",
            )
            .at("Content-Type")
        })?;
    let value: Value = match content_type {
        Format::Json => serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                Category::Invalid,
                IssueType::Structure,
                format!("The body is not valid JSON: {e}"),
            )
        })?,
        Format::Xml => {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| ApiError::invalid("The XML body is not UTF-8"))?;
            carehub_fhir::xml::from_xml(base.version, text).map_err(|e| {
                ApiError::new(
                    Category::Invalid,
                    IssueType::Structure,
                    format!("The body is not valid FHIR XML: {e}"),
                )
            })?
        }
    };
    // The profile to check against comes from `?profile=` or, in a Parameters body, the
    // `profile` parameter; profiles the resource claims in `meta.profile` are checked too.
    let mut requested: Vec<String> = request
        .query
        .iter()
        .filter(|(name, _)| name == "profile")
        .map(|(_, value)| value.clone())
        .collect();
    // A Parameters resource carries the resource to check in its `resource` parameter.
    let resource = if value.get("resourceType").and_then(Value::as_str) == Some("Parameters")
        && resource_type != "Parameters"
    {
        let params = value
            .get("parameter")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for param in params {
            if param.get("name").and_then(Value::as_str) == Some("profile")
                && let Some(url) = ["valueUri", "valueCanonical", "valueString"]
                    .iter()
                    .find_map(|key| param.get(*key).and_then(Value::as_str))
            {
                requested.push(url.to_owned());
            }
        }
        params
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some("resource"))
            .and_then(|p| p.get("resource"))
            .cloned()
            .ok_or_else(|| ApiError::invalid("The Parameters have no 'resource' parameter"))?
    } else {
        value
    };
    let mut issues = carehub_fhir::json::validate_resource(base.version.model(), &resource);
    let claimed: Vec<String> = resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let profiles = ProfileSet::for_version(base.version);
    let mut checked: Vec<&str> = Vec::new();
    for url in requested.iter().chain(&claimed) {
        let url = url.split('|').next().unwrap_or(url);
        if checked.contains(&url) {
            continue;
        }
        checked.push(url);
        let asked_for = requested.iter().any(|r| r.split('|').next() == Some(url));
        // Asked for by name, an unknown profile is an error; only claimed, a warning.
        if profiles.contains(url) || asked_for {
            issues.extend(profiles.validate(base.version.model(), &resource, url));
        } else {
            issues.push(
                Issue::warning(
                    IssueType::NotSupported,
                    format!("The resource claims profile {url}, which this server does not know, so it was not checked"),
                )
                .at("meta.profile"),
            );
        }
    }
    let found = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if found != resource_type {
        issues.push(
            Issue::error(
                IssueType::Invalid,
                format!("The resource is a {found}, not a {resource_type}"),
            )
            .at("resourceType"),
        );
    }
    if issues.is_empty() {
        let against = if checked.is_empty() {
            "the base definitions".to_owned()
        } else {
            format!("the base definitions and {}", checked.join(", "))
        };
        issues.push(Issue::information(format!(
            "No issues found: the resource is valid against {against}"
        )));
    }
    Ok(Reply::new(
        StatusCode::OK,
        ReplyBody::Value(carehub_fhir::outcome::operation_outcome(&issues)),
    ))
}
