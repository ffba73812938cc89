//! The provider's HTTP face: each practice at its service root
//! (`/{env}/gpconnect/{ODS}/STU3/1/gpconnect`), every request checked in the Spine's order
//! (the practice, the SSP headers, the audit JWT), answered in the negotiated format with
//! `Cache-Control: no-store`, and errors as `GPConnect-OperationOutcome-1`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use carehub_fhir::FhirVersion;
use carehub_gateway::{Mount, ProductRouter};
use carehub_server::audit::{self, Interaction as AuditInteraction};
use carehub_server::error::Category;
use carehub_server::format::{Format, Negotiated};
use serde_json::{Value, json};

use crate::domain::directory::{HealthcareService, Location, Organisation, Practitioner};
use crate::domain::jwt;
use crate::domain::patient::{self, GpPatient};
use crate::domain::ssp::{self, SspHeaders};
use crate::domain::{
    GpcError, Interaction, SYSTEM_DOS_SERVICE, SYSTEM_NHS_NUMBER, SYSTEM_ODS, SYSTEM_SDS_USER,
    SpineCode, Status, capability,
};
use crate::repo::{Record, Repo, RepoError};

const PROFILE_OUTCOME: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1";
const PROFILE_SEARCHSET: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Searchset-Bundle-1";
const SYSTEM_SPINE_CODES: &str = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1";

/// The path of a practice's service root below the mount: `/{ODS}/STU3/1/gpconnect`.
const ROOT: &str = "/{ods}/STU3/1/gpconnect";

struct Gpc {
    repo: Repo,
    /// The mount's URL (`http://host/int/gpconnect`).
    url: String,
}

/// The routes of one environment's GP system.
pub(crate) fn router(mount: &Mount) -> ProductRouter {
    let gpc = Arc::new(Gpc {
        repo: Repo::new(mount.store.clone(), &mount.store_key),
        url: mount.url.clone(),
    });
    let api = Router::new()
        .route(&format!("{ROOT}/metadata"), get(metadata))
        .route(&format!("{ROOT}/Patient"), get(search_patients))
        .route(
            &format!("{ROOT}/Patient/{{id}}"),
            get(read_patient).post(patient_operation),
        )
        .route(&format!("{ROOT}/Practitioner"), get(search_practitioners))
        .route(
            &format!("{ROOT}/Practitioner/{{id}}"),
            get(read_practitioner),
        )
        .route(&format!("{ROOT}/Organization"), get(search_organizations))
        .route(
            &format!("{ROOT}/Organization/{{id}}"),
            get(read_organization),
        )
        .route(&format!("{ROOT}/Location/{{id}}"), get(read_location))
        .route(
            &format!("{ROOT}/HealthcareService"),
            get(search_healthcare_services),
        )
        .route(
            &format!("{ROOT}/HealthcareService/{{id}}"),
            get(read_healthcare_service),
        )
        .fallback(unknown_endpoint)
        .method_not_allowed_fallback(wrong_method)
        .with_state(gpc);
    ProductRouter {
        api,
        public: Router::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// A refused request, answered in the format the request negotiated.
struct Failure {
    error: GpcError,
    format: Format,
}

impl From<GpcError> for Failure {
    fn from(error: GpcError) -> Failure {
        Failure {
            error,
            format: Format::Json,
        }
    }
}

impl From<RepoError> for Failure {
    fn from(error: RepoError) -> Failure {
        use carehub_store::StoreError;
        match error {
            RepoError::Gpc(error) => error.into(),
            // Two registrations of one number raced: the other one won.
            RepoError::Store(StoreError::AlreadyExists { .. }) => GpcError::new(
                SpineCode::DuplicateRejected,
                "The patient was registered by another request just now",
            )
            .into(),
            RepoError::Store(StoreError::VersionConflict { .. }) => GpcError::new(
                SpineCode::FhirConstraintViolation,
                "The record changed while this request was processed; read it again and retry",
            )
            .into(),
            other => {
                tracing::error!(error = %other, "GP Connect request failed");
                GpcError::new(
                    SpineCode::InternalServerError,
                    "The server failed to process the request; the failure has been logged",
                )
                .into()
            }
        }
    }
}

impl Failure {
    fn in_format(mut self, format: Format) -> Failure {
        self.format = format;
        self
    }
}

fn category(status: Status) -> Category {
    match status {
        Status::BadRequest => Category::Invalid,
        Status::Forbidden => Category::Forbidden,
        Status::NotFound => Category::NotFound,
        Status::Conflict => Category::Conflict,
        Status::UnsupportedMediaType => Category::UnsupportedMediaType,
        Status::Unprocessable => Category::Unprocessable,
        Status::Fault => Category::Fault,
        Status::NotImplemented => Category::NotImplemented,
    }
}

/// A `GPConnect-OperationOutcome-1` for `error`.
fn outcome(error: &GpcError) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "meta": {"profile": [PROFILE_OUTCOME]},
        "issue": [{
            "severity": "error",
            "code": error.code.issue_type(),
            "details": {"coding": [{
                "system": SYSTEM_SPINE_CODES,
                "code": error.code.code(),
                "display": error.code.display(),
            }]},
            "diagnostics": error.diagnostics,
        }],
    })
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = category(self.error.status).status();
        let negotiated = Negotiated {
            format: self.format,
            pretty: false,
        };
        respond(status, &outcome(&self.error), negotiated, None)
    }
}

/// A FHIR answer with the headers every GP Connect response carries.
fn respond(
    status: StatusCode,
    body: &Value,
    negotiated: Negotiated,
    version: Option<i64>,
) -> Response {
    let bytes = match carehub_server::format::render(FhirVersion::Stu3, negotiated, body) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(?error, "a GP Connect answer did not render");
            Bytes::from(
                outcome(&GpcError::new(
                    SpineCode::InternalServerError,
                    "The answer could not be rendered",
                ))
                .to_string(),
            )
        }
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, negotiated.format.content_type())],
        bytes,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    if let Some(version) = version
        && let Ok(value) = format!("W/\"{version}\"").parse()
    {
        headers.insert(header::ETAG, value);
    }
    response
}

async fn unknown_endpoint(method: Method, uri: Uri) -> Response {
    Failure::from(GpcError::bad_request(format!(
        "No GP Connect interaction is {method} {}; URLs are case-sensitive and the service root is /{{ODS}}/STU3/1/gpconnect",
        uri.path()
    )))
    .into_response()
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    Failure::from(GpcError::bad_request(format!(
        "{method} is not a GP Connect interaction on {}",
        uri.path()
    )))
    .into_response()
}

// ---------------------------------------------------------------------------------------
// The checks every request passes

/// A request that passed the Spine's checks.
struct Call {
    practice: Organisation,
    /// The practice's service root URL.
    base: String,
    negotiated: Negotiated,
    audit: Option<audit::Caller>,
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Negotiates the format, finds the practice, and checks the SSP headers and the audit JWT
/// for a request that `allowed` interactions may make.
async fn begin(
    gpc: &Gpc,
    ods: &str,
    headers: &HeaderMap,
    query: &[(String, String)],
    allowed: &[Interaction],
    caller: Option<Extension<audit::Caller>>,
) -> Result<Call, Failure> {
    let negotiated = carehub_server::format::negotiate(query, headers).map_err(|error| {
        let why = error
            .issues
            .first()
            .map(|i| i.diagnostics.clone())
            .unwrap_or_default();
        Failure::from(GpcError::bad_request(why).with_status(Status::UnsupportedMediaType))
    })?;
    let fail = |error: GpcError| Failure::from(error).in_format(negotiated.format);
    let practice = gpc
        .repo
        .by_identifier::<Organisation>(SYSTEM_ODS, ods)
        .await
        .map_err(|e| Failure::from(e).in_format(negotiated.format))?
        .into_iter()
        .map(|(o, _)| o)
        .find(|o| o.asid.is_some())
        .ok_or_else(|| {
            fail(GpcError::new(
                SpineCode::OrganisationNotFound,
                format!("This GP system serves no practice with ODS code '{ods}'"),
            ))
        })?;
    let asid = practice.asid.clone().unwrap_or_default();
    let ssp = ssp::check(
        SspHeaders {
            trace_id: header_text(headers, "ssp-traceid"),
            from: header_text(headers, "ssp-from"),
            to: header_text(headers, "ssp-to"),
            interaction_id: header_text(headers, "ssp-interactionid"),
        },
        &asid,
        allowed,
    )
    .map_err(fail)?;
    let claims = jwt::check(
        header_text(headers, "authorization"),
        ssp.interaction,
        now_seconds(),
    )
    .map_err(fail)?;
    // The audit trail names the person and organisation of the audit token, and the consumer
    // system by its ASID.
    let audit = caller.map(|Extension(mut caller)| {
        caller.user = Some(claims.user.clone());
        caller.role = claims.role.clone();
        caller.organisation = Some(claims.organisation.clone());
        caller.purpose = Some(claims.reason.clone());
        caller.app_name = Some(format!("ASID {}", ssp.from));
        caller
    });
    Ok(Call {
        base: format!("{}/{}/STU3/1/gpconnect", gpc.url, practice.ods),
        practice,
        negotiated,
        audit,
    })
}

impl Call {
    fn fail(&self, error: GpcError) -> Failure {
        Failure::from(error).in_format(self.negotiated.format)
    }

    fn repo_fail(&self, error: RepoError) -> Failure {
        Failure::from(error).in_format(self.negotiated.format)
    }

    fn ok(&self, body: &Value, version: Option<i64>) -> Response {
        respond(StatusCode::OK, body, self.negotiated, version)
    }

    /// Records a read in the audit trail before the answer leaves.
    async fn audit_read(
        &self,
        gpc: &Gpc,
        interaction: AuditInteraction,
        entities: &[String],
        patients: &[String],
    ) -> Result<(), Failure> {
        let Some(caller) = &self.audit else {
            return Ok(());
        };
        let record = audit::event(caller, interaction, &self.base, entities, patients, None);
        audit::record(gpc.repo.store(), Some(record))
            .await
            .map_err(|e| self.repo_fail(RepoError::Store(e)))
    }

    /// A `GPConnect-Searchset-Bundle-1` of resources.
    fn searchset(&self, resources: Vec<Value>) -> Value {
        let entries: Vec<Value> = resources
            .into_iter()
            .map(|resource| {
                let url = format!(
                    "{}/{}/{}",
                    self.base,
                    resource["resourceType"].as_str().unwrap_or_default(),
                    resource["id"].as_str().unwrap_or_default()
                );
                json!({"fullUrl": url, "resource": resource})
            })
            .collect();
        json!({
            "resourceType": "Bundle",
            "id": uuid::Uuid::new_v4().to_string(),
            "meta": {
                "lastUpdated": carehub_fhir::datetime::format_instant(now_seconds() * 1_000_000),
                "profile": [PROFILE_SEARCHSET],
            },
            "type": "searchset",
            "total": entries.len(),
            "entry": entries,
        })
    }
}

/// The one `identifier` parameter of a search, as `system|value`: missing or repeated is
/// `BAD_REQUEST`, a token without both halves `INVALID_PARAMETER`, another system
/// `INVALID_IDENTIFIER_SYSTEM`.
fn identifier_value(
    query: &[(String, String)],
    system: &str,
    required: bool,
) -> Result<Option<String>, GpcError> {
    let sent: Vec<&String> = query
        .iter()
        .filter(|(k, _)| k == "identifier")
        .map(|(_, v)| v)
        .collect();
    let token = match sent.as_slice() {
        [] if required => {
            return Err(GpcError::bad_request(format!(
                "The search needs one 'identifier' parameter of system {system} (parameter names are case-sensitive)"
            )));
        }
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(GpcError::bad_request(
                "Send the 'identifier' parameter once",
            ));
        }
    };
    let Some((sent_system, value)) = token.split_once('|') else {
        return Err(GpcError::invalid_parameter(format!(
            "The identifier '{token}' must be system|value, with system {system}"
        )));
    };
    if sent_system.is_empty() || value.is_empty() {
        return Err(GpcError::invalid_parameter(format!(
            "The identifier '{token}' must have both a system and a value"
        )));
    }
    if sent_system != system {
        return Err(GpcError::new(
            SpineCode::InvalidIdentifierSystem,
            format!("The identifier system '{sent_system}' is not {system}"),
        ));
    }
    Ok(Some(value.to_owned()))
}

// ---------------------------------------------------------------------------------------
// Foundations

type Answer = Result<Response, Failure>;
type Params = Query<Vec<(String, String)>>;

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
        &[Interaction::Metadata],
        caller,
    )
    .await?;
    Ok(call.ok(&capability::statement(env!("CARGO_PKG_VERSION")), None))
}

async fn search_patients(
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
        &[Interaction::SearchPatient],
        caller,
    )
    .await?;
    let nhs_number = identifier_value(&query, SYSTEM_NHS_NUMBER, true)
        .map_err(|e| call.fail(e))?
        .unwrap_or_default();
    if !carehub_spine::is_valid_nhs_number(&nhs_number) {
        return Err(call.fail(GpcError::new(
            SpineCode::InvalidNhsNumber,
            format!("'{nhs_number}' is not a valid NHS number"),
        )));
    }
    let found = gpc
        .repo
        .patient_by_nhs_number(&nhs_number, &call.practice.id)
        .await
        .map_err(|e| call.repo_fail(e))?
        .filter(|(p, _)| p.is_visible());
    let patients: Vec<String> = found
        .iter()
        .map(|(p, _)| format!("Patient/{}", p.id))
        .collect();
    call.audit_read(&gpc, AuditInteraction::Search, &[], &patients)
        .await?;
    let resources = found.map(|(p, v)| p.to_resource(v)).into_iter().collect();
    Ok(call.ok(&call.searchset(resources), None))
}

async fn read_patient(
    State(gpc): State<Arc<Gpc>>,
    Path((ods, id)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
    caller: Option<Extension<audit::Caller>>,
) -> Answer {
    let call = begin(
        &gpc,
        &ods,
        &headers,
        &query,
        &[Interaction::ReadPatient],
        caller,
    )
    .await?;
    let (patient, version) = gpc
        .repo
        .get::<GpPatient>(&id)
        .await
        .map_err(|e| call.repo_fail(e))?
        // Only the patients "Find a patient" would give can be read.
        .filter(|(p, _)| p.is_visible() && p.registration.organisation == call.practice.id)
        .ok_or_else(|| {
            call.fail(GpcError::new(
                SpineCode::PatientNotFound,
                format!("No patient with id '{id}' at {ods}"),
            ))
        })?;
    let reference = format!("Patient/{}", patient.id);
    call.audit_read(
        &gpc,
        AuditInteraction::Read,
        std::slice::from_ref(&reference),
        std::slice::from_ref(&reference),
    )
    .await?;
    Ok(call.ok(&patient.to_resource(version), Some(version)))
}

/// Reads a request body by its `Content-Type`: a body that cannot be read is `BAD_REQUEST`,
/// a resource that breaks the STU3 definitions `INVALID_RESOURCE`.
fn read_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, GpcError> {
    let content_type = header_text(headers, "content-type").ok_or_else(|| {
        GpcError::bad_request(
            "The request has no Content-Type; send application/fhir+json or application/fhir+xml",
        )
        .with_status(Status::UnsupportedMediaType)
    })?;
    let format = Format::from_mime(content_type).ok_or_else(|| {
        GpcError::bad_request(format!("Content-Type '{content_type}' is not supported; send application/fhir+json or application/fhir+xml"))
            .with_status(Status::UnsupportedMediaType)
    })?;
    let value: Value = match format {
        Format::Json => serde_json::from_slice(body)
            .map_err(|e| GpcError::bad_request(format!("The body is not valid JSON: {e}")))?,
        Format::Xml => {
            let text = std::str::from_utf8(body)
                .map_err(|_| GpcError::bad_request("The XML body is not UTF-8"))?;
            carehub_fhir::xml::from_xml(FhirVersion::Stu3, text).map_err(|e| {
                GpcError::bad_request(format!("The body is not valid FHIR XML: {e}"))
            })?
        }
    };
    let issues = carehub_fhir::json::validate_resource(FhirVersion::Stu3.model(), &value);
    if let Some(issue) = issues.iter().find(|i| i.is_error()) {
        return Err(GpcError::invalid_resource(format!(
            "{} (at {})",
            issue.diagnostics,
            issue.expression.join(", ")
        )));
    }
    Ok(value)
}

fn today() -> String {
    carehub_fhir::datetime::format_instant(now_seconds() * 1_000_000)[..10].to_owned()
}

async fn patient_operation(
    State(gpc): State<Arc<Gpc>>,
    Path((ods, operation)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
    caller: Option<Extension<audit::Caller>>,
    body: Bytes,
) -> Answer {
    if operation != "$gpc.registerpatient" {
        return Err(GpcError::bad_request(format!(
            "POST /Patient/{operation} is not a GP Connect interaction; the operation is $gpc.registerpatient"
        ))
        .into());
    }
    let call = begin(
        &gpc,
        &ods,
        &headers,
        &query,
        &[Interaction::RegisterPatient],
        caller,
    )
    .await?;
    let parameters = read_body(&headers, &body).map_err(|e| call.fail(e))?;
    let request = patient::parse_register(&parameters).map_err(|e| call.fail(e))?;
    let organisation = call.practice.id.clone();
    let audit_caller = call.audit.clone();
    let base = call.base.clone();
    let decided = request.clone();
    let (patient, version) = gpc
        .repo
        .register(
            &request.nhs_number,
            &call.practice.id,
            move |pds, existing, id| {
                patient::verify_with_pds(&decided, pds)?;
                let pds = pds.ok_or_else(|| {
                    GpcError::new(SpineCode::InvalidPatientDemographics, "Not on PDS")
                })?;
                patient::register(existing, || id, pds, &organisation, &today())
            },
            move |patient| {
                let caller = audit_caller?;
                let reference = format!("Patient/{}", patient.id);
                Some(audit::event(
                    &caller,
                    AuditInteraction::Operation("gpc.registerpatient", "C"),
                    &base,
                    std::slice::from_ref(&reference),
                    std::slice::from_ref(&reference),
                    None,
                ))
            },
        )
        .await
        .map_err(|e| call.repo_fail(e))?;
    Ok(call.ok(&call.searchset(vec![patient.to_resource(version)]), None))
}

/// A search of a directory resource by its one identifier system.
async fn search_directory<T: Record>(
    gpc: &Gpc,
    call: &Call,
    query: &[(String, String)],
    system: &str,
    required: bool,
) -> Answer {
    let value = identifier_value(query, system, required).map_err(|e| call.fail(e))?;
    let found: Vec<(T, i64)> = match value {
        Some(value) => gpc.repo.by_identifier(system, &value).await,
        None => gpc.repo.all().await,
    }
    .map_err(|e| call.repo_fail(e))?;
    let entities: Vec<String> = found
        .iter()
        .map(|(r, _)| format!("{}/{}", T::TYPE, r.id()))
        .collect();
    call.audit_read(gpc, AuditInteraction::Search, &entities, &[])
        .await?;
    let resources = found.into_iter().map(|(r, v)| r.view(v)).collect();
    Ok(call.ok(&call.searchset(resources), None))
}

/// A read of a directory resource; unknown is 404 with `missing`.
async fn read_directory<T: Record>(gpc: &Gpc, call: &Call, id: &str, missing: SpineCode) -> Answer {
    let (record, version) = gpc
        .repo
        .get::<T>(id)
        .await
        .map_err(|e| call.repo_fail(e))?
        .ok_or_else(|| {
            call.fail(GpcError::new(
                missing,
                format!("No {} with id '{id}'", T::TYPE),
            ))
        })?;
    let reference = format!("{}/{}", T::TYPE, record.id());
    call.audit_read(gpc, AuditInteraction::Read, &[reference], &[])
        .await?;
    Ok(call.ok(&record.view(version), Some(version)))
}

macro_rules! directory_handlers {
    ($search:ident, $read:ident, $type:ty, $search_interaction:expr, $read_interaction:expr, $system:expr, $required:expr, $missing:expr) => {
        async fn $search(
            State(gpc): State<Arc<Gpc>>,
            Path(ods): Path<String>,
            Query(query): Params,
            headers: HeaderMap,
            caller: Option<Extension<audit::Caller>>,
        ) -> Answer {
            let call = begin(&gpc, &ods, &headers, &query, &[$search_interaction], caller).await?;
            search_directory::<$type>(&gpc, &call, &query, $system, $required).await
        }

        async fn $read(
            State(gpc): State<Arc<Gpc>>,
            Path((ods, id)): Path<(String, String)>,
            Query(query): Params,
            headers: HeaderMap,
            caller: Option<Extension<audit::Caller>>,
        ) -> Answer {
            let call = begin(&gpc, &ods, &headers, &query, &[$read_interaction], caller).await?;
            read_directory::<$type>(&gpc, &call, &id, $missing).await
        }
    };
}

directory_handlers!(
    search_practitioners,
    read_practitioner,
    Practitioner,
    Interaction::SearchPractitioner,
    Interaction::ReadPractitioner,
    SYSTEM_SDS_USER,
    true,
    SpineCode::PractitionerNotFound
);
directory_handlers!(
    search_organizations,
    read_organization,
    Organisation,
    Interaction::SearchOrganization,
    Interaction::ReadOrganization,
    SYSTEM_ODS,
    true,
    SpineCode::OrganisationNotFound
);
directory_handlers!(
    search_healthcare_services,
    read_healthcare_service,
    HealthcareService,
    Interaction::SearchHealthcareService,
    Interaction::ReadHealthcareService,
    SYSTEM_DOS_SERVICE,
    false,
    SpineCode::NoRecordFound
);

async fn read_location(
    State(gpc): State<Arc<Gpc>>,
    Path((ods, id)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
    caller: Option<Extension<audit::Caller>>,
) -> Answer {
    let call = begin(
        &gpc,
        &ods,
        &headers,
        &query,
        &[Interaction::ReadLocation],
        caller,
    )
    .await?;
    read_directory::<Location>(&gpc, &call, &id, SpineCode::NoRecordFound).await
}
