//! Access Record HTML 0.7.4 over HTTP: each practice's DSTU2 service root
//! (`/{ODS}/DSTU2/0/gpconnect`) with its Conformance statement and `$gpc.getcarerecord`.
//!
//! The line predates STU3, so its wire differs from the rest of the provider: the DSTU2 media
//! types (`application/json+fhir`, `application/xml+fhir`), the `http://fhir.nhs.net` profiles
//! and error code system, and the 0.x audit token. carehub has no DSTU2 definitions, so XML
//! goes through the definition-free converter, with the resources built in DSTU2's element
//! order.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use carehub_server::audit::{self, Interaction as AuditInteraction};
use carehub_server::format::Format;
use serde_json::{Value, json};

use crate::domain::carerecord;
use crate::domain::directory::{Organisation, Practitioner};
use crate::domain::html;
use crate::domain::jwt::{self, RequestedRecord};
use crate::domain::{GpcError, Interaction, SpineCode, Status, clock};
use crate::http::{
    Answer, Failure, Gpc, Params, audit_caller, header_text, now_micros, now_seconds,
    practice_and_route,
};

const ROOT: &str = "/{ods}/DSTU2/0/gpconnect";
const PROFILE_OUTCOME: &str =
    "http://fhir.nhs.net/StructureDefinition/gpconnect-operationoutcome-1";
const SYSTEM_ERROR_CODES: &str = "http://fhir.nhs.net/ValueSet/gpconnect-error-or-warning-code-1";

pub(crate) fn routes() -> Router<Arc<Gpc>> {
    Router::new()
        .route(&format!("{ROOT}/metadata"), get(metadata))
        .route(&format!("{ROOT}/Patient/{{operation}}"), post(operation))
}

/// A `gpconnect-operationoutcome-1` for `error`.
pub(crate) fn outcome(error: &GpcError) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "meta": {"profile": [PROFILE_OUTCOME]},
        "issue": [{
            "severity": "error",
            "code": error.code.issue_type(),
            "details": {"coding": [{
                "system": SYSTEM_ERROR_CODES,
                "code": error.code.code(),
                "display": error.code.display(),
            }]},
            "diagnostics": error.diagnostics,
        }],
    })
}

/// A DSTU2 answer: its media type, `Cache-Control: no-store`, and the body sent chunked (the
/// 0.7 suite expects a care record to stream).
pub(crate) fn respond(status: StatusCode, body: &Value, format: Format) -> Response {
    let (content_type, rendered) = match format {
        Format::Json => ("application/json+fhir; charset=utf-8", Ok(body.to_string())),
        Format::Xml => (
            "application/xml+fhir; charset=utf-8",
            carehub_fhir::xml::to_xml_in_key_order(body),
        ),
    };
    let bytes = match rendered {
        Ok(text) => Bytes::from(text),
        Err(error) => {
            tracing::error!(%error, "a DSTU2 answer did not render");
            let failure = GpcError::new(
                SpineCode::InternalServerError,
                "The answer could not be rendered",
            );
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [
                    (header::CONTENT_TYPE, "application/json+fhir; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                outcome(&failure).to_string(),
            )
                .into_response();
        }
    };
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    (
        status,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The media type a DSTU2 client asked for: `_format`, else `Accept`, else the request's
/// `Content-Type`, else JSON. Anything but FHIR JSON or XML is 415 (`text/xml` included).
fn negotiate(query: &[(String, String)], headers: &HeaderMap) -> Result<Format, GpcError> {
    fn media(value: &str) -> Option<Format> {
        match value.split(';').next().unwrap_or_default().trim() {
            "application/json+fhir" | "application/fhir+json" | "application/json" | "json" => {
                Some(Format::Json)
            }
            "application/xml+fhir" | "application/fhir+xml" | "application/xml" | "xml" => {
                Some(Format::Xml)
            }
            _ => None,
        }
    }
    let unsupported = |value: &str| {
        GpcError::bad_request(format!(
            "'{value}' is not a media type this service answers in; ask for application/json+fhir or application/xml+fhir"
        ))
        .with_status(Status::UnsupportedMediaType)
    };
    if let Some((_, value)) = query.iter().find(|(k, _)| k == "_format") {
        return media(value).ok_or_else(|| unsupported(value));
    }
    if let Some(accept) = header_text(headers, "accept").filter(|a| !a.trim().is_empty()) {
        let mut any = false;
        for choice in accept.split(',') {
            if let Some(format) = media(choice) {
                return Ok(format);
            }
            any |= choice.split(';').next().is_some_and(|m| m.trim() == "*/*");
        }
        if !any {
            return Err(unsupported(accept));
        }
    }
    Ok(header_text(headers, "content-type")
        .and_then(media)
        .unwrap_or(Format::Json))
}

/// A request that passed the Spine's checks, on the HTML line.
struct Call {
    practice: Organisation,
    format: Format,
    record: RequestedRecord,
    audit: Option<audit::Caller>,
    base: String,
}

impl Call {
    fn fail(&self, error: GpcError) -> Failure {
        Failure::from(error).in_format(self.format).on_dstu2()
    }
}

/// Negotiates, finds the practice, checks the SSP headers and the 0.x audit token.
async fn begin(
    gpc: &Gpc,
    ods: &str,
    headers: &HeaderMap,
    query: &[(String, String)],
    interaction: Interaction,
    caller: Option<Extension<audit::Caller>>,
) -> Result<Call, Failure> {
    let format = negotiate(query, headers).map_err(|e| Failure::from(e).on_dstu2())?;
    let fail = |error: GpcError| Failure::from(error).in_format(format).on_dstu2();
    let (practice, route) = practice_and_route(gpc, ods, headers, &[interaction])
        .await
        .map_err(|f| f.in_format(format).on_dstu2())?;
    let (claims, record) = jwt::check_dstu2(
        header_text(headers, "authorization"),
        route.interaction,
        now_seconds(),
    )
    .map_err(fail)?;
    let audit = audit_caller(caller, &claims, &route);
    Ok(Call {
        base: format!("{}/{}/DSTU2/0/gpconnect", gpc.url, practice.ods),
        practice,
        format,
        record,
        audit,
    })
}

async fn metadata(
    State(gpc): State<Arc<Gpc>>,
    Path(ods): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
    caller: Option<Extension<audit::Caller>>,
) -> Answer {
    let call = begin(
        &gpc,
        &ods,
        &headers,
        &query,
        Interaction::CareRecordMetadata,
        caller,
    )
    .await?;
    let today = clock::format_day(clock::uk_day(now_micros()));
    Ok(respond(
        StatusCode::OK,
        &carerecord::conformance(env!("CARGO_PKG_VERSION"), &gpc.html.spec_version, &today),
        call.format,
    ))
}

/// Elements that repeat in the DSTU2 `Parameters` a consumer sends (and the data types in it),
/// which the definition-free XML reader must know to give arrays. `name` is not among them:
/// it is single in `Parameters.parameter`, which is all this operation reads.
fn repeats(name: &str) -> bool {
    matches!(
        name,
        "parameter"
            | "part"
            | "coding"
            | "extension"
            | "modifierExtension"
            | "identifier"
            | "given"
            | "family"
            | "prefix"
            | "suffix"
            | "line"
            | "telecom"
            | "address"
            | "contained"
            | "profile"
            | "tag"
            | "security"
    )
}

/// The request body: JSON or XML by `Content-Type`.
fn read_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, GpcError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GpcError::bad_request(
            "The request has no body; send a Parameters resource",
        ));
    }
    let xml = header_text(headers, "content-type").is_some_and(|t| {
        t.split(';').next().is_some_and(|m| {
            m.trim().ends_with("xml+fhir")
                || m.trim().ends_with("fhir+xml")
                || m.trim() == "application/xml"
        })
    });
    if xml {
        let text = std::str::from_utf8(body)
            .map_err(|_| GpcError::bad_request("The XML body is not UTF-8"))?;
        carehub_fhir::xml::from_xml_untyped(text, &repeats)
            .map_err(|e| GpcError::bad_request(format!("The body is not valid FHIR XML: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| GpcError::bad_request(format!("The body is not valid JSON: {e}")))
    }
}

async fn operation(
    State(gpc): State<Arc<Gpc>>,
    Path((ods, operation)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
    caller: Option<Extension<audit::Caller>>,
    body: Bytes,
) -> Answer {
    if operation != "$gpc.getcarerecord" {
        return Err(Failure::from(GpcError::bad_request(format!(
            "POST /Patient/{operation} is not an Access Record HTML interaction; the operation is $gpc.getcarerecord"
        )))
        .on_dstu2());
    }
    let call = begin(
        &gpc,
        &ods,
        &headers,
        &query,
        Interaction::GetCareRecord,
        caller,
    )
    .await?;
    let parameters = read_body(&headers, &body).map_err(|e| call.fail(e))?;
    let request = carerecord::parse(&parameters).map_err(|e| call.fail(e))?;
    // The token must be about the patient asked for.
    if call.record != RequestedRecord::Patient(request.nhs_number.clone()) {
        return Err(call.fail(GpcError::bad_request(format!(
            "The JWT 'requested_record' does not name the patient of patientNHSNumber ({})",
            request.nhs_number
        ))));
    }
    let now = now_micros();
    let today = clock::uk_day(now);
    let not_found = || {
        call.fail(GpcError::new(
            SpineCode::PatientNotFound,
            format!(
                "No patient with NHS number {} is registered at this practice",
                request.nhs_number
            ),
        ))
    };
    let (patient, version) = gpc
        .repo
        .patient_by_nhs_number(&request.nhs_number, &call.practice.id)
        .await
        .map_err(|e| call.fail_repo(e))?
        .ok_or_else(not_found)?;
    let on_pds = gpc
        .repo
        .pds()
        .current(&request.nhs_number)
        .await
        .map_err(|e| call.fail_repo(e.into()))?
        .is_some();
    if let Some(refusal) =
        carerecord::refusal(&patient, on_pds, today, gpc.html.deceased_access_days)
    {
        return Err(call.fail(refusal));
    }

    let in_transit_since = patient
        .in_transit
        .then(|| clock::day_of(&patient.registration.start).unwrap_or(today));
    let mut record = gpc
        .repo
        .clinical_record(&patient.id)
        .await
        .map_err(|e| call.fail_repo(e))?;
    if let Some(day) = in_transit_since {
        record = record.entered_since(day);
    }
    let mut people = BTreeMap::new();
    let mut practitioners = Vec::new();
    for (practitioner, version) in gpc
        .repo
        .all::<Practitioner>()
        .await
        .map_err(|e| call.fail_repo(e))?
    {
        people.insert(
            practitioner.id.clone(),
            carerecord::practitioner_name(&practitioner),
        );
        practitioners.push((practitioner, version));
    }
    let practice_version = gpc
        .repo
        .get::<Organisation>(&call.practice.id)
        .await
        .map_err(|e| call.fail_repo(e))?
        .map_or(1, |(_, v)| v);
    let view = html::View {
        record: &record,
        today,
        period: request.period,
        in_transit_since,
        people: &people,
        practice: &call.practice.name,
        excluded_codes: &gpc.html.excluded_codes,
    };
    let markup = html::render(request.section, &view);

    let gp = patient
        .registration
        .usual_gp
        .as_ref()
        .and_then(|id| practitioners.iter().find(|(p, _)| &p.id == id));
    let patient_resource =
        carerecord::patient_resource(&patient, version, gp.map(|(p, _)| p), &call.practice);
    let date = carehub_fhir::datetime::format_instant(now_seconds() * 1_000_000);
    let mut resources = vec![
        carerecord::composition(
            request.section,
            markup,
            &patient_resource,
            &call.practice,
            &date,
        ),
        patient_resource,
        carerecord::organization_resource(&call.practice, practice_version),
        carerecord::device_resource(env!("CARGO_PKG_VERSION")),
    ];
    if let Some((practitioner, version)) = gp {
        resources.push(carerecord::practitioner_resource(practitioner, *version));
    }
    let bundle = carerecord::bundle(resources);

    if let Some(caller) = &call.audit {
        let reference = format!("Patient/{}", patient.id);
        let event = audit::event(
            caller,
            AuditInteraction::Operation("gpc.getcarerecord", "R"),
            &call.base,
            std::slice::from_ref(&reference),
            std::slice::from_ref(&reference),
            None,
        );
        audit::record(gpc.repo.store(), Some(event))
            .await
            .map_err(|e| call.fail_repo(crate::repo::RepoError::Store(e)))?;
    }
    Ok(respond(StatusCode::OK, &bundle, call.format))
}

impl Call {
    fn fail_repo(&self, error: crate::repo::RepoError) -> Failure {
        Failure::from(error).in_format(self.format).on_dstu2()
    }
}
