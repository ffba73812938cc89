//! The PDS FHIR R4 API's HTTP face (`/{env}/personal-demographics/FHIR/R4`): patient read and
//! search, `X-Request-ID` required, PDS's OperationOutcomes.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use carehub_gateway::config::AccessMode;
use carehub_gateway::{Mount, ProductRouter, RequestContext};
use carehub_server::audit::{self, Interaction};
use serde_json::{Value, json};

use crate::pds::error::{PdsCode, PdsError};
use crate::pds::repo::{PdsRepo, PdsRepoError};
use crate::pds::{search, view};

const SYSTEM_SPINE_R4: &str = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode";

struct Pds {
    repo: PdsRepo,
    url: String,
}

/// The routes of one environment's PDS.
pub(crate) fn router(mount: &Mount) -> ProductRouter {
    let pds = Arc::new(Pds {
        repo: PdsRepo::new(mount.store.clone(), &mount.store_key),
        url: mount.url.clone(),
    });
    let api = Router::new()
        .route("/Patient", get(search_patients))
        .route("/Patient/{id}", get(read_patient))
        .fallback(unsupported)
        .with_state(pds);
    ProductRouter {
        api,
        public: Router::new(),
    }
}

struct Failure(PdsError);

impl From<PdsError> for Failure {
    fn from(error: PdsError) -> Failure {
        Failure(error)
    }
}

impl From<PdsRepoError> for Failure {
    fn from(error: PdsRepoError) -> Failure {
        tracing::error!(%error, "PDS request failed");
        Failure(PdsError::new(PdsCode::UnsupportedService, "__fault__"))
    }
}

fn outcome(code: PdsCode, diagnostics: Option<&str>) -> Value {
    let mut issue = json!({
        "severity": code.severity(),
        "code": code.issue_type(),
        "details": {"coding": [{
            "system": SYSTEM_SPINE_R4,
            "version": "1",
            "code": code.code(),
            "display": code.display(),
        }]},
    });
    if let Some(diagnostics) = diagnostics {
        issue["diagnostics"] = json!(diagnostics);
    }
    json!({"resourceType": "OperationOutcome", "issue": [issue]})
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let error = self.0;
        if error.diagnostics.as_deref() == Some("__fault__") {
            let body = json!({"resourceType": "OperationOutcome", "issue": [{
                "severity": "error", "code": "exception",
                "details": {"coding": [{"system": SYSTEM_SPINE_R4, "version": "1",
                                        "code": "UNKNOWN_ERROR", "display": "Unknown Error"}]},
                "diagnostics": "The server failed to process the request; the failure has been logged",
            }]});
            return fhir(StatusCode::INTERNAL_SERVER_ERROR, &body, None);
        }
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
        fhir(
            status,
            &outcome(error.code, error.diagnostics.as_deref()),
            None,
        )
    }
}

fn fhir(status: StatusCode, body: &Value, version: Option<i64>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        body.to_string(),
    )
        .into_response();
    if let Some(version) = version
        && let Ok(value) = format!("W/\"{version}\"").parse()
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// PDS requires `X-Request-ID` on every call (the gateway has already checked its form).
fn require_request_id(headers: &HeaderMap) -> Result<(), Failure> {
    if headers.get("x-request-id").is_none() {
        return Err(PdsError::new(
            PdsCode::MissingValue,
            "Invalid request with error - X-Request-ID header must be supplied to access this resource",
        )
        .into());
    }
    Ok(())
}

async fn audit_read(
    pds: &Pds,
    caller: Option<&audit::Caller>,
    interaction: Interaction,
    patients: &[String],
    query: Option<&str>,
) -> Result<(), Failure> {
    let Some(caller) = caller else {
        return Ok(());
    };
    let record = audit::event(caller, interaction, &pds.url, patients, patients, query);
    audit::record(pds.repo.store(), Some(record))
        .await
        .map_err(|e| Failure::from(PdsRepoError::Store(e)))
}

async fn read_patient(
    State(pds): State<Arc<Pds>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    caller: Option<Extension<audit::Caller>>,
) -> Result<Response, Failure> {
    require_request_id(&headers)?;
    if !carehub_testdata::is_valid_nhs_number(&id) {
        return Err(PdsError::bare(PdsCode::InvalidResourceId).into());
    }
    // A superseded number answers with the record it was merged into (its id differs).
    let (patient, version) = pds
        .repo
        .current(&id)
        .await?
        .ok_or_else(|| PdsError::bare(PdsCode::ResourceNotFound))?;
    audit_read(
        &pds,
        caller.as_deref(),
        Interaction::Read,
        &[format!("Patient/{}", patient.nhs_number)],
        None,
    )
    .await?;
    Ok(fhir(
        StatusCode::OK,
        &view::patient(&patient, version),
        Some(version),
    ))
}

fn decode(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let text = |s: &str| percent_decode(&s.replace('+', " "));
            (text(k), text(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn search_patients(
    State(pds): State<Arc<Pds>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    context: Option<Extension<RequestContext>>,
    caller: Option<Extension<audit::Caller>>,
) -> Result<Response, Failure> {
    require_request_id(&headers)?;
    let params = decode(query.as_deref());
    let single_result = context
        .as_ref()
        .is_some_and(|c| c.access == AccessMode::ApplicationRestricted);
    let request = search::parse(&params, single_result)?;
    let candidates = pds.repo.candidates(&request).await?;
    let matches = match search::select(&request, candidates) {
        Ok(matches) => matches,
        // Too many matches is an answer, not a failure: 200 with an OperationOutcome.
        Err(error) if error.code == PdsCode::TooManyMatches => {
            audit_read(
                &pds,
                caller.as_deref(),
                Interaction::Search,
                &[],
                query.as_deref(),
            )
            .await?;
            return Ok(fhir(
                StatusCode::OK,
                &outcome(PdsCode::TooManyMatches, None),
                None,
            ));
        }
        Err(error) => return Err(error.into()),
    };
    let mut entries = Vec::with_capacity(matches.len());
    let mut patients = Vec::with_capacity(matches.len());
    for (patient, score) in &matches {
        // A search never reads history, so the version is the record's current one.
        let (_, version) = pds
            .repo
            .get(&patient.nhs_number)
            .await?
            .unwrap_or((patient.clone(), 1));
        patients.push(format!("Patient/{}", patient.nhs_number));
        entries.push(json!({
            "fullUrl": format!("{}/Patient/{}", pds.url, patient.nhs_number),
            "search": {"score": score},
            "resource": view::patient(patient, version),
        }));
    }
    audit_read(
        &pds,
        caller.as_deref(),
        Interaction::Search,
        &patients,
        query.as_deref(),
    )
    .await?;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": carehub_fhir::datetime::format_instant(now_micros()),
        "total": entries.len(),
        "entry": entries,
    });
    Ok(fhir(StatusCode::OK, &bundle, None))
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

async fn unsupported(method: Method, uri: Uri) -> Response {
    Failure(PdsError::new(
        PdsCode::UnsupportedService,
        format!("Unsupported path - '{method} {}'", uri.path()),
    ))
    .into_response()
}
