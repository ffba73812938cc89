//! The SDS FHIR API's HTTP face (`/{env}/spine-directory/FHIR/R4`): `/Device` and `/Endpoint`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carehub_gateway::{Mount, ProductRouter};
use serde_json::{Value, json};

use crate::sds::repo::SdsRepo;
use crate::sds::{self, QueryError};

const SYSTEM_SPINE_STU3: &str = "https://fhir.nhs.uk/STU3/ValueSet/Spine-ErrorOrWarningCode-1";

struct Sds {
    repo: SdsRepo,
    url: String,
}

/// The routes of one environment's SDS.
pub(crate) fn router(mount: &Mount) -> ProductRouter {
    let sds = Arc::new(Sds {
        repo: SdsRepo::new(mount.store.clone(), &mount.store_key),
        url: mount.url.clone(),
    });
    let api = Router::new()
        .route("/Device", get(devices))
        .route("/Endpoint", get(endpoints))
        .fallback(not_found)
        .with_state(sds);
    ProductRouter {
        api,
        public: Router::new(),
    }
}

fn answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        body.to_string(),
    )
        .into_response()
}

fn outcome(
    status: StatusCode,
    issue: &str,
    code: &str,
    display: &str,
    diagnostics: &str,
) -> Response {
    answer(
        status,
        &json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "error",
            "code": issue,
            "details": {"coding": [{"system": SYSTEM_SPINE_STU3, "code": code, "display": display}]},
            "diagnostics": diagnostics,
        }]}),
    )
}

fn bad_request(error: &QueryError) -> Response {
    outcome(
        StatusCode::BAD_REQUEST,
        "required",
        "BAD_REQUEST",
        "Bad request",
        &format!("HTTP 400: Bad Request ({})", error.0),
    )
}

fn fault(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "SDS request failed");
    outcome(
        StatusCode::INTERNAL_SERVER_ERROR,
        "exception",
        "INTERNAL_SERVER_ERROR",
        "Unexpected internal server error",
        "The server failed to process the request; the failure has been logged",
    )
}

async fn not_found(uri: Uri) -> Response {
    outcome(
        StatusCode::NOT_FOUND,
        "not-found",
        "NO_RECORD_FOUND",
        "No record found",
        &format!("HTTP endpoint not found: {}", uri.path()),
    )
}

fn bundle(sds: &Sds, kind: &str, query: &[(String, String)], resources: Vec<Value>) -> Value {
    let self_url = format!(
        "{}/{kind}?{}",
        sds.url,
        query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "total": resources.len(),
        "link": [{"relation": "self", "url": self_url}],
        "entry": resources.into_iter().map(|r| json!({
            "fullUrl": format!("{}/{kind}/{}", sds.url, r["id"].as_str().unwrap_or("")),
            "resource": r,
            "search": {"mode": "match"},
        })).collect::<Vec<_>>(),
    })
}

async fn devices(
    State(sds): State<Arc<Sds>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let filter = match sds::parse_query(&query, true) {
        Ok(filter) => filter,
        Err(error) => return bad_request(&error),
    };
    match sds.repo.systems().await {
        Ok(systems) => {
            let found = systems
                .iter()
                .filter(|s| filter.matches_system(s))
                .map(|s| s.to_resource())
                .collect();
            answer(StatusCode::OK, &bundle(&sds, "Device", &query, found))
        }
        Err(error) => fault(error),
    }
}

async fn endpoints(
    State(sds): State<Arc<Sds>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let filter = match sds::parse_query(&query, false) {
        Ok(filter) => filter,
        Err(error) => return bad_request(&error),
    };
    match sds.repo.handlers().await {
        Ok(handlers) => {
            let found = handlers
                .iter()
                .filter(|h| filter.matches_handler(h))
                .map(|h| h.to_resource(filter.interaction.as_deref()))
                .collect();
            answer(StatusCode::OK, &bundle(&sds, "Endpoint", &query, found))
        }
        Err(error) => fault(error),
    }
}
