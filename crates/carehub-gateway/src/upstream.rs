//! Fronting an external FHIR server: an API configured with `upstream = "https://..."` gets the
//! whole wrap (credentials, limits, lifecycle, logs, metrics, audit) and is then forwarded there,
//! bodies streamed both ways. This is how a team puts its own back end behind carehub.
//!
//! The upstream sees the NHS platform's back-end headers instead of the caller's credentials:
//! `NHSD-Request-ID`, `NHSD-Correlation-ID` (`{X-Request-ID}.{X-Correlation-ID}.{message id}`),
//! and, as established, `NHSD-ASID`, `NHSD-Identity-UUID`, `NHSD-End-User-Organisation-ODS`,
//! `NHSD-Session-URID` (the user's role) and `NHSD-Application-ID`. The API key and the bearer
//! token never leave carehub.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use carehub_fhir::IssueType;
use carehub_server::audit::{self, Caller, Interaction};
use carehub_server::error::{ApiError, Category};
use carehub_store::Store;
use futures_util::TryStreamExt;

use crate::RequestContext;

/// Request and response headers that belong to one connection (RFC 9110 section 7.6.1), and
/// the length, which streaming recomputes.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Where one API forwards to.
#[derive(Debug)]
struct Upstream {
    client: reqwest::Client,
    /// The base URL, without a trailing slash.
    base: String,
    /// The header that carries an API key for this product, never forwarded.
    api_key_header: String,
    store: Store,
}

/// The routes of a fronted API: everything below its path is forwarded.
pub(crate) fn router(
    base: &str,
    timeout: Duration,
    extra_roots: Vec<reqwest::Certificate>,
    api_key_header: &str,
    store: Store,
) -> Router {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        // Redirects are the caller's to follow, as with any proxy.
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge(extra_roots)
        .build()
        .unwrap_or_default();
    let upstream = Arc::new(Upstream {
        client,
        base: base.trim_end_matches('/').to_owned(),
        api_key_header: api_key_header.to_ascii_lowercase(),
        store,
    });
    Router::new().fallback(forward).with_state(upstream)
}

fn put(headers: &mut reqwest::header::HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = reqwest::header::HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The FHIR interaction a request is, for the audit trail: the resource it names, and the
/// patient when the resource is one.
fn interaction(method: &Method, path: &str) -> (Interaction, Vec<String>) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_type = |s: &str| s.starts_with(|c: char| c.is_ascii_uppercase());
    let entity = match segments.as_slice() {
        [kind, id, ..] if is_type(kind) && !id.starts_with('$') => {
            vec![format!("{kind}/{id}")]
        }
        _ => Vec::new(),
    };
    let operation = segments.iter().any(|s| s.starts_with('$'));
    let interaction = match (method.as_str(), segments.as_slice()) {
        _ if operation => Interaction::Operation("operation", "E"),
        ("POST", []) => Interaction::Transaction,
        ("GET", [_, _, "_history", _]) => Interaction::Vread,
        ("GET", [.., "_history"]) => Interaction::History,
        ("GET", [_, _]) => Interaction::Read,
        ("GET", _) => Interaction::Search,
        ("POST", [_, "_search"]) => Interaction::Search,
        ("POST", _) => Interaction::Create,
        ("PUT" | "PATCH", _) => Interaction::Update,
        ("DELETE", _) => Interaction::Delete,
        _ => Interaction::Search,
    };
    (interaction, entity)
}

async fn forward(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().map(str::to_owned);
    let fail = |category: Category, code: IssueType, why: String| {
        carehub_server::plain_error(
            query.clone(),
            parts.headers.clone(),
            ApiError::new(category, code, why),
        )
    };
    let Some(context) = parts.extensions.get::<RequestContext>().cloned() else {
        return fail(
            Category::Fault,
            IssueType::Exception,
            "the request reached the upstream without passing the gateway".into(),
        );
    };
    let path = parts.uri.path().to_owned();
    let target = match &query {
        Some(query) => format!("{}{path}?{query}", upstream.base),
        None => format!("{}{path}", upstream.base),
    };
    let Ok(method) = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()) else {
        return fail(
            Category::MethodNotAllowed,
            IssueType::NotSupported,
            format!("{} cannot be forwarded", parts.method),
        );
    };

    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &parts.headers {
        let name = name.as_str();
        if HOP_BY_HOP.contains(&name)
            || name == "host"
            || name == "authorization"
            || name == upstream.api_key_header
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    put(&mut headers, "nhsd-request-id", &context.request_id);
    let correlation = format!(
        "{}.{}.{}",
        context.request_id,
        context.correlation_id.as_deref().unwrap_or(""),
        uuid::Uuid::new_v4()
    );
    put(&mut headers, "nhsd-correlation-id", &correlation);
    crate::trace::inject_current(&mut headers);
    if let Some(app) = &context.app {
        put(&mut headers, "nhsd-application-id", &app.id);
        put(
            &mut headers,
            "nhsd-end-user-organisation-ods",
            &app.organisation,
        );
        if let Some(asid) = &app.asid {
            put(&mut headers, "nhsd-asid", asid);
        }
    }
    if let Some(asid) = &context.asid {
        put(&mut headers, "nhsd-asid", asid);
    }
    if let Some(user) = &context.user {
        put(&mut headers, "nhsd-identity-uuid", &user.id);
        put(&mut headers, "nhsd-session-urid", &user.role.id);
        put(
            &mut headers,
            "nhsd-end-user-organisation-ods",
            &user.role.organisation,
        );
    }

    let (kind, entities) = interaction(&parts.method, &path);
    let caller = parts.extensions.get::<Caller>().cloned();
    // Reads are recorded before the answer leaves, as carehub's own APIs do; the upstream holds
    // any change, so a change is recorded once the upstream has made it.
    let audit_event = |caller: &Caller| {
        let patients: Vec<String> = entities
            .iter()
            .filter(|e| e.starts_with("Patient/"))
            .cloned()
            .collect();
        audit::event(
            caller,
            kind,
            &upstream.base,
            &entities,
            &patients,
            query.as_deref(),
        )
    };
    let is_read = matches!(
        kind,
        Interaction::Read | Interaction::Vread | Interaction::Search | Interaction::History
    );

    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    let sent = upstream
        .client
        .request(method, &target)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) if error.is_timeout() => {
            tracing::warn!(%error, target = %target, "the upstream did not answer in time");
            return fail(
                Category::GatewayTimeout,
                IssueType::Timeout,
                format!(
                    "The upstream server ({}) did not answer in time",
                    upstream.base
                ),
            );
        }
        Err(error) => {
            tracing::warn!(%error, target = %target, "the upstream could not be reached");
            return fail(
                Category::BadGateway,
                IssueType::Transient,
                format!(
                    "The upstream server ({}) could not be reached",
                    upstream.base
                ),
            );
        }
    };
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Some(caller) = &caller
        && (is_read || status.is_success())
        && let Err(error) = audit::record(&upstream.store, Some(audit_event(caller))).await
    {
        tracing::error!(%error, "the audit record of a forwarded request failed");
        return fail(
            Category::Fault,
            IssueType::Exception,
            "The request could not be recorded in the audit trail".into(),
        );
    }
    let mut forwarded = HeaderMap::new();
    for (name, value) in response.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            forwarded.append(name, value);
        }
    }
    let stream = response
        .bytes_stream()
        .map_err(|error| std::io::Error::other(error.to_string()));
    (status, forwarded, Body::from_stream(stream)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_as_fhir_interactions_for_the_audit_trail() {
        let named = |method: Method, path: &str| {
            let (interaction, entities) = interaction(&method, path);
            (interaction, entities)
        };
        assert_eq!(
            named(Method::GET, "/Patient/9000000009"),
            (Interaction::Read, vec!["Patient/9000000009".to_owned()])
        );
        assert_eq!(named(Method::GET, "/Patient").0, Interaction::Search);
        assert_eq!(
            named(Method::GET, "/Observation/1/_history/2").0,
            Interaction::Vread
        );
        assert_eq!(named(Method::POST, "/Observation").0, Interaction::Create);
        assert_eq!(named(Method::PUT, "/Observation/1").0, Interaction::Update);
        assert_eq!(named(Method::POST, "/").0, Interaction::Transaction);
        assert_eq!(
            named(Method::POST, "/Patient/$match").0,
            Interaction::Operation("operation", "E")
        );
    }
}
