//! The provider's HTTP face: each practice at its service root
//! (`/{env}/gpconnect/{ODS}/STU3/1/gpconnect`), every request checked in the Spine's order
//! (the practice, the SSP headers, the audit JWT), answered in the negotiated format with
//! `Cache-Control: no-store`, and errors as `GPConnect-OperationOutcome-1`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use carehub_fhir::FhirVersion;
use carehub_gateway::{Mount, ProductRouter};
use carehub_server::audit::{self, Interaction as AuditInteraction};
use carehub_server::error::Category;
use carehub_server::format::{Format, Negotiated};
use serde_json::{Value, json};

use crate::domain::appointment::{self, GpAppointment};
use crate::domain::directory::{HealthcareService, Location, Organisation, Practitioner};
use crate::domain::jwt;
use crate::domain::patient::RegistrationType;
use crate::domain::patient::{self, GpPatient};
use crate::domain::record;
use crate::domain::schedule::{self, Schedule};
use crate::domain::ssp::{self, SspHeaders};
use crate::domain::structured;
use crate::domain::{
    GpcError, Interaction, SYSTEM_DOS_SERVICE, SYSTEM_NHS_NUMBER, SYSTEM_ODS, SYSTEM_SDS_USER,
    SpineCode, Status, capability, clock,
};
use crate::repo::{AuditRecord, Record, Repo, RepoError};

const PROFILE_OUTCOME: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1";
const PROFILE_SEARCHSET: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Searchset-Bundle-1";
const SYSTEM_SPINE_CODES: &str = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1";

/// The path of a practice's service root below the mount: `/{ODS}/STU3/1/gpconnect`; Access
/// Record Structured has its own root, `.../gpconnect/structured`.
const ROOT: &str = "/{ods}/STU3/1/gpconnect";

pub(crate) struct Gpc {
    pub(crate) repo: Repo,
    /// The mount's URL (`http://host/int/gpconnect`).
    pub(crate) url: String,
    /// What the provider's configuration sets for Access Record HTML.
    pub(crate) html: crate::domain::carerecord::HtmlSettings,
}

/// The routes of one environment's GP system.
pub(crate) fn router(mount: &Mount) -> ProductRouter {
    let html = crate::domain::carerecord::HtmlSettings::from_settings(&mount.settings)
        .unwrap_or_else(|error| {
            // A product cannot refuse to start here, so the mistake is logged loudly and the
            // defaults serve.
            tracing::error!(api = %mount.api, environment = %mount.environment, %error,
                "invalid GP Connect setting; the defaults are used");
            crate::domain::carerecord::HtmlSettings::default()
        });
    let gpc = Arc::new(Gpc {
        repo: Repo::new(mount.store.clone(), &mount.store_key),
        url: mount.url.clone(),
        html,
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
        .route(&format!("{ROOT}/Slot"), get(search_slots))
        .route(&format!("{ROOT}/Appointment"), post(book_appointment))
        .route(
            &format!("{ROOT}/Appointment/{{id}}"),
            get(read_appointment).put(change_appointment),
        )
        .route(
            &format!("{ROOT}/Patient/{{id}}/Appointment"),
            get(patient_appointments),
        )
        .route(
            &format!("{ROOT}/structured/metadata"),
            get(structured_metadata),
        )
        .route(
            &format!("{ROOT}/structured/Patient/{{operation}}"),
            post(structured_operation),
        )
        .merge(crate::http_dstu2::routes())
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
pub(crate) struct Failure {
    pub(crate) error: GpcError,
    pub(crate) format: Format,
    /// Whether the request was made on the Access Record HTML (DSTU2) line, whose
    /// OperationOutcome and media types are DSTU2's.
    pub(crate) dstu2: bool,
}

impl From<GpcError> for Failure {
    fn from(error: GpcError) -> Failure {
        Failure {
            error,
            format: Format::Json,
            dstu2: false,
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
            RepoError::Store(StoreError::VersionConflict { .. } | StoreError::Contended) => {
                GpcError::new(
                    SpineCode::FhirConstraintViolation,
                    "The record changed while this request was processed; read it again and retry",
                )
                .into()
            }
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
    pub(crate) fn in_format(mut self, format: Format) -> Failure {
        self.format = format;
        self
    }

    pub(crate) fn on_dstu2(mut self) -> Failure {
        self.dstu2 = true;
        self
    }
}

pub(crate) fn category(status: Status) -> Category {
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
        if self.dstu2 {
            return crate::http_dstu2::respond(
                status,
                &crate::http_dstu2::outcome(&self.error),
                self.format,
            );
        }
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

/// A refusal on the line of `uri`'s service root (the HTML line is DSTU2's).
fn refusal_at(uri: &Uri, error: GpcError) -> Response {
    let failure = Failure::from(error);
    if uri.path().contains("/DSTU2/") {
        failure.on_dstu2().into_response()
    } else {
        failure.into_response()
    }
}

async fn unknown_endpoint(method: Method, uri: Uri) -> Response {
    let error = GpcError::bad_request(format!(
        "No GP Connect interaction is {method} {}; URLs are case-sensitive and the service roots are /{{ODS}}/STU3/1/gpconnect and, for Access Record HTML, /{{ODS}}/DSTU2/0/gpconnect",
        uri.path()
    ));
    refusal_at(&uri, error)
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    let error = GpcError::bad_request(format!(
        "{method} is not a GP Connect interaction on {}",
        uri.path()
    ));
    refusal_at(&uri, error)
}

// ---------------------------------------------------------------------------------------
// The checks every request passes

/// A request that passed the Spine's checks.
#[derive(Clone)]
struct Call {
    practice: Organisation,
    /// The practice's service root URL.
    base: String,
    negotiated: Negotiated,
    /// What the audit token says about the request.
    claims: jwt::AuditClaims,
    audit: Option<audit::Caller>,
}

pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn now_seconds() -> i64 {
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
    let (practice, ssp) = practice_and_route(gpc, ods, headers, allowed)
        .await
        .map_err(|f| f.in_format(negotiated.format))?;
    let claims = jwt::check(
        header_text(headers, "authorization"),
        ssp.interaction,
        now_seconds(),
    )
    .map_err(fail)?;
    let audit = audit_caller(caller, &claims, &ssp);
    Ok(Call {
        base: format!("{}/{}/STU3/1/gpconnect", gpc.url, practice.ods),
        practice,
        negotiated,
        claims,
        audit,
    })
}

/// The practice of `ods`, and the SSP headers checked against its ASID for `allowed`
/// interactions: the first checks of every request on either line.
pub(crate) async fn practice_and_route(
    gpc: &Gpc,
    ods: &str,
    headers: &HeaderMap,
    allowed: &[Interaction],
) -> Result<(Organisation, ssp::SspRequest), Failure> {
    let practice = gpc
        .repo
        .by_identifier::<Organisation>(SYSTEM_ODS, ods)
        .await?
        .into_iter()
        .map(|(o, _)| o)
        .find(|o| o.asid.is_some())
        .ok_or_else(|| {
            GpcError::new(
                SpineCode::OrganisationNotFound,
                format!("This GP system serves no practice with ODS code '{ods}'"),
            )
        })?;
    let route = ssp::check(
        SspHeaders {
            trace_id: header_text(headers, "ssp-traceid"),
            from: header_text(headers, "ssp-from"),
            to: header_text(headers, "ssp-to"),
            interaction_id: header_text(headers, "ssp-interactionid"),
        },
        practice.asid.as_deref().unwrap_or_default(),
        allowed,
    )?;
    Ok((practice, route))
}

/// The audit trail names the person and organisation of the audit token, and the consumer
/// system by its ASID.
pub(crate) fn audit_caller(
    caller: Option<Extension<audit::Caller>>,
    claims: &jwt::AuditClaims,
    route: &ssp::SspRequest,
) -> Option<audit::Caller> {
    caller.map(|Extension(mut caller)| {
        caller.user = Some(claims.user.clone());
        caller.role = claims.role.clone();
        caller.organisation = Some(claims.organisation.clone());
        // GP2GP's migration moves a record between systems; everything else is direct care.
        caller.purpose = Some(audit::Purpose {
            of_use: if claims.reason == jwt::MIGRATION {
                audit::PurposeOfUse::RecordsManagement
            } else {
                audit::PurposeOfUse::Treatment
            },
            stated: Some(claims.reason.clone()),
        });
        caller.app_name = Some(format!("ASID {}", route.from));
        caller
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

pub(crate) type Answer = Result<Response, Failure>;
pub(crate) type Params = Query<Vec<(String, String)>>;

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

/// Reads a request body by its `Content-Type`: a body that cannot be read is `BAD_REQUEST`
/// (415 for a format the provider does not take).
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, GpcError> {
    let content_type = header_text(headers, "content-type").ok_or_else(|| {
        GpcError::bad_request(
            "The request has no Content-Type; send application/fhir+json or application/fhir+xml",
        )
        .with_status(Status::UnsupportedMediaType)
    })?;
    let format = Format::from_mime(content_type).ok_or_else(|| {
        GpcError::bad_request(format!(
            "Content-Type '{content_type}' is not supported; send application/fhir+json or application/fhir+xml"
        ))
        .with_status(Status::UnsupportedMediaType)
    })?;
    match format {
        Format::Json => serde_json::from_slice(body)
            .map_err(|e| GpcError::bad_request(format!("The body is not valid JSON: {e}"))),
        Format::Xml => {
            let text = std::str::from_utf8(body)
                .map_err(|_| GpcError::bad_request("The XML body is not UTF-8"))?;
            carehub_fhir::xml::from_xml(FhirVersion::Stu3, text)
                .map_err(|e| GpcError::bad_request(format!("The body is not valid FHIR XML: {e}")))
        }
    }
}

/// A resource that breaks the STU3 definitions is `INVALID_RESOURCE`.
fn validate(value: &Value) -> Result<(), GpcError> {
    let issues = carehub_fhir::json::validate_resource(FhirVersion::Stu3.model(), value);
    match issues.iter().find(|i| i.is_error()) {
        Some(issue) => Err(GpcError::invalid_resource(format!(
            "{} (at {})",
            issue.diagnostics,
            issue.expression.join(", ")
        ))),
        None => Ok(()),
    }
}

/// [`parse_body`], then [`validate`].
fn read_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, GpcError> {
    let value = parse_body(headers, body)?;
    validate(&value)?;
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

// ---------------------------------------------------------------------------------------
// Appointment Management

pub(crate) fn now_micros() -> i64 {
    now_seconds() * 1_000_000
}

/// The practice's schedules.
async fn schedules_of(gpc: &Gpc, call: &Call) -> Result<Vec<Schedule>, Failure> {
    let all: Vec<(Schedule, i64)> = gpc.repo.all().await.map_err(|e| call.repo_fail(e))?;
    Ok(all
        .into_iter()
        .map(|(s, _)| s)
        .filter(|s| s.organisation == call.practice.id)
        .collect())
}

async fn search_slots(
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
        &[Interaction::SearchSlot],
        caller,
    )
    .await?;
    let search = schedule::parse_slot_search(&query).map_err(|e| call.fail(e))?;
    let mut schedules = schedules_of(&gpc, &call).await?;
    let mut filtering = None;
    if let Some(dos) = &search.service {
        let services: Vec<(HealthcareService, i64)> = gpc
            .repo
            .by_identifier(SYSTEM_DOS_SERVICE, dos)
            .await
            .map_err(|e| call.repo_fail(e))?;
        let service = services
            .into_iter()
            .map(|(s, _)| s)
            .find(|s| s.organisation == call.practice.id)
            .ok_or_else(|| call.fail(schedule::unknown_service(dos)))?;
        schedules.retain(|s| s.healthcare_service.as_deref() == Some(service.id.as_str()));
        filtering = Some(service.id);
    }
    let booked = gpc
        .repo
        .booked_slots(search.from, search.to)
        .await
        .map_err(|e| call.repo_fail(e))?;
    let now = now_micros();
    let mut resources = Vec::new();
    let mut shown: Vec<&Schedule> = Vec::new();
    for schedule in &schedules {
        let slots = schedule::free_slots(schedule, &search, now, &|id| booked.contains(id));
        if slots.is_empty() {
            continue;
        }
        resources.extend(slots.iter().map(|slot| schedule.slot_resource(slot, true)));
        shown.push(schedule);
    }
    let mut included: Vec<Value> = shown
        .iter()
        .map(|s| s.to_resource(1, (search.from, search.to)))
        .collect();
    let mut references: Vec<(String, String)> = Vec::new();
    for schedule in &shown {
        if search.includes.location {
            references.push(("Location".into(), schedule.location.clone()));
        }
        if search.includes.practitioner
            && let Some(id) = &schedule.practitioner
        {
            references.push(("Practitioner".into(), id.clone()));
        }
        if search.includes.healthcare_service
            && filtering.is_some()
            && let Some(id) = &schedule.healthcare_service
        {
            references.push(("HealthcareService".into(), id.clone()));
        }
    }
    // The organisation of the slots' locations is always returned with them.
    let mut organisations = Vec::new();
    for schedule in &shown {
        if let Some((location, _)) = gpc
            .repo
            .get::<Location>(&schedule.location)
            .await
            .map_err(|e| call.repo_fail(e))?
        {
            organisations.push(location.organisation);
        }
    }
    references.extend(
        organisations
            .into_iter()
            .map(|id| ("Organization".to_owned(), id)),
    );
    references.sort();
    references.dedup();
    for (kind, id) in references {
        let found = match kind.as_str() {
            "Location" => gpc
                .repo
                .get::<Location>(&id)
                .await
                .map(|f| f.map(|(r, v)| r.view(v))),
            "Practitioner" => gpc
                .repo
                .get::<Practitioner>(&id)
                .await
                .map(|f| f.map(|(r, v)| r.view(v))),
            "HealthcareService" => gpc
                .repo
                .get::<HealthcareService>(&id)
                .await
                .map(|f| f.map(|(r, v)| r.view(v))),
            _ => gpc
                .repo
                .get::<Organisation>(&id)
                .await
                .map(|f| f.map(|(r, v)| r.view(v))),
        }
        .map_err(|e| call.repo_fail(e))?;
        included.extend(found);
    }
    if !resources.is_empty() {
        resources.extend(included);
    }
    let mut bundle = call.searchset(resources);
    if search.service.is_some() {
        bundle["meta"]["extension"] = json!([{
            "url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-ServiceFilteringStatus-1",
            "valueCode": "enabled",
        }]);
    }
    call.audit_read(&gpc, AuditInteraction::Search, &[], &[])
        .await?;
    Ok(call.ok(&bundle, None))
}

/// Whether the request asked for no body back (`Prefer: return=minimal`).
fn minimal(headers: &HeaderMap) -> bool {
    header_text(headers, "prefer").is_some_and(|p| p.contains("return=minimal"))
}

impl Call {
    /// An AuditEvent for a change to an appointment of `patient`.
    fn audit_change(
        &self,
        appointment: &GpAppointment,
        action: &'static str,
        name: &'static str,
    ) -> AuditRecord {
        let caller = self.audit.as_ref()?;
        Some(audit::event(
            caller,
            AuditInteraction::Operation(name, action),
            &self.base,
            &[format!("Appointment/{}", appointment.id)],
            &[format!("Patient/{}", appointment.patient)],
            None,
        ))
    }

    /// An appointment answer: the resource (or nothing, when asked for minimal), its ETag.
    fn appointment(
        &self,
        status: StatusCode,
        appointment: &GpAppointment,
        version: i64,
        headers: &HeaderMap,
    ) -> Response {
        let mut response = if minimal(headers) {
            let mut empty = status.into_response();
            empty.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            if let Ok(value) = format!("W/\"{version}\"").parse() {
                empty.headers_mut().insert(header::ETAG, value);
            }
            empty
        } else {
            respond(
                status,
                &appointment.to_resource(version),
                self.negotiated,
                Some(version),
            )
        };
        if status == StatusCode::CREATED
            && let Ok(location) = format!(
                "{}/Appointment/{}/_history/{version}",
                self.base, appointment.id
            )
            .parse()
        {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

/// A patient of the practice that consumers may see, or `missing`.
async fn practice_patient(
    gpc: &Gpc,
    call: &Call,
    id: &str,
    missing: GpcError,
) -> Result<GpPatient, Failure> {
    gpc.repo
        .get::<GpPatient>(id)
        .await
        .map_err(|e| call.repo_fail(e))?
        .map(|(p, _)| p)
        .filter(|p| p.is_visible() && p.registration.organisation == call.practice.id)
        .ok_or_else(|| call.fail(missing))
}

async fn book_appointment(
    State(gpc): State<Arc<Gpc>>,
    Path(ods): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
    caller: Option<Extension<audit::Caller>>,
    body: Bytes,
) -> Answer {
    let call = begin(
        &gpc,
        &ods,
        &headers,
        &query,
        &[Interaction::CreateAppointment],
        caller,
    )
    .await?;
    let resource = read_body(&headers, &body).map_err(|e| call.fail(e))?;
    let request = appointment::parse_booking(&resource).map_err(|e| call.fail(e))?;
    practice_patient(
        &gpc,
        &call,
        &request.patient,
        GpcError::invalid_resource(format!(
            "Patient/{} is not a patient of this practice",
            request.patient
        )),
    )
    .await?;
    // Every slot must be a timetabled slot of one GP Connect bookable schedule of the practice.
    let schedule_id = request.slots[0]
        .split('-')
        .next()
        .unwrap_or_default()
        .to_owned();
    let schedule = gpc
        .repo
        .get::<Schedule>(&schedule_id)
        .await
        .map_err(|e| call.repo_fail(e))?
        .map(|(s, _)| s)
        .filter(|s| s.organisation == call.practice.id && s.gp_connect_bookable);
    let slots: Option<Vec<_>> = request
        .slots
        .iter()
        .map(|id| schedule.as_ref().and_then(|s| s.slot(id)))
        .collect();
    let (Some(schedule), Some(mut slots)) = (schedule, slots) else {
        return Err(call.fail(GpcError::invalid_resource(format!(
            "The slots {:?} are not bookable slots of one schedule of this practice",
            request.slots
        ))));
    };
    slots.sort_by_key(|s| s.start);
    appointment::check_slots(&request, &schedule, &slots, now_micros())
        .map_err(|e| call.fail(e))?;
    let audit_call = call.clone();
    let (booked, version) = gpc
        .repo
        .book(
            move |id| GpAppointment::book(id, request, &schedule),
            move |appointment| audit_call.audit_change(appointment, "C", "create-appointment"),
        )
        .await
        .map_err(|e| match e {
            RepoError::Store(carehub_store::StoreError::AlreadyExists { .. }) => {
                call.fail(GpcError::new(
                    SpineCode::DuplicateRejected,
                    "The slot is no longer free: another appointment holds it",
                ))
            }
            other => call.repo_fail(other),
        })?;
    Ok(call.appointment(StatusCode::CREATED, &booked, version, &headers))
}

/// A current appointment of the practice, or 404.
async fn practice_appointment(
    gpc: &Gpc,
    call: &Call,
    id: &str,
) -> Result<(GpAppointment, i64), Failure> {
    let missing = || {
        call.fail(GpcError::new(
            SpineCode::NoRecordFound,
            format!("No current appointment with id '{id}'"),
        ))
    };
    let (appointment, version) = gpc
        .repo
        .get::<GpAppointment>(id)
        .await
        .map_err(|e| call.repo_fail(e))?
        .ok_or_else(missing)?;
    let schedule = gpc
        .repo
        .get::<Schedule>(&appointment.schedule)
        .await
        .map_err(|e| call.repo_fail(e))?;
    if schedule.is_none_or(|(s, _)| s.organisation != call.practice.id)
        || !appointment.is_current(now_micros())
    {
        return Err(missing());
    }
    Ok((appointment, version))
}

async fn read_appointment(
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
        &[Interaction::ReadAppointment],
        caller,
    )
    .await?;
    let (appointment, version) = practice_appointment(&gpc, &call, &id).await?;
    call.audit_read(
        &gpc,
        AuditInteraction::Read,
        &[format!("Appointment/{id}")],
        &[format!("Patient/{}", appointment.patient)],
    )
    .await?;
    Ok(call.ok(&appointment.to_resource(version), Some(version)))
}

async fn change_appointment(
    State(gpc): State<Arc<Gpc>>,
    Path((ods, id)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
    caller: Option<Extension<audit::Caller>>,
    body: Bytes,
) -> Answer {
    let allowed = [
        Interaction::UpdateAppointment,
        Interaction::CancelAppointment,
    ];
    let call = begin(&gpc, &ods, &headers, &query, &allowed, caller).await?;
    let cancelling = header_text(&headers, "ssp-interactionid")
        == Some(Interaction::CancelAppointment.id().as_str());
    let resource = parse_body(&headers, &body).map_err(|e| call.fail(e))?;
    // An empty reason is not valid FHIR; the suite expects it to be named as a bad parameter.
    if cancelling
        && resource
            .get("extension")
            .and_then(Value::as_array)
            .is_some_and(|e| {
                e.iter().any(|e| {
                    e.get("url").and_then(Value::as_str)
                        == Some(appointment::EXTENSION_CANCELLATION_REASON)
                        && e.get("valueString")
                            .and_then(Value::as_str)
                            .is_some_and(|r| r.trim().is_empty())
                })
            })
    {
        return Err(call.fail(GpcError::invalid_parameter(
            "The cancellation reason is empty",
        )));
    }
    validate(&resource).map_err(|e| call.fail(e))?;
    let (held, version) = practice_appointment(&gpc, &call, &id).await?;
    if let Some(sent) = header_text(&headers, "if-match")
        && sent.trim() != format!("W/\"{version}\"")
    {
        return Err(call.fail(GpcError::new(
            SpineCode::FhirConstraintViolation,
            format!("If-Match is {sent}, but the appointment is at version W/\"{version}\""),
        )));
    }
    let now = now_micros();
    let (changed, name) = if cancelling {
        (
            appointment::cancel(&held, version, &resource, now),
            "cancel-appointment",
        )
    } else {
        (
            appointment::amend(&held, version, &resource, now),
            "amend-appointment",
        )
    };
    let changed = changed.map_err(|e| call.fail(e))?;
    let audit_call = call.clone();
    let (stored, new_version) = gpc
        .repo
        .change_appointment(changed, version, move |a| {
            audit_call.audit_change(a, "U", name)
        })
        .await
        .map_err(|e| call.repo_fail(e))?;
    Ok(call.appointment(StatusCode::OK, &stored, new_version, &headers))
}

async fn patient_appointments(
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
        &[Interaction::SearchPatientAppointments],
        caller,
    )
    .await?;
    let patient = practice_patient(
        &gpc,
        &call,
        &id,
        GpcError::new(
            SpineCode::PatientNotFound,
            format!("No patient with id '{id}'"),
        ),
    )
    .await?;
    let now = now_micros();
    let (from, to) =
        appointment::parse_retrieve(&query, clock::uk_day(now)).map_err(|e| call.fail(e))?;
    let found = gpc
        .repo
        .appointments_of(
            &patient.id,
            clock::uk_local(from, 0),
            clock::uk_local(to + 1, 0) - 1,
        )
        .await
        .map_err(|e| call.repo_fail(e))?;
    let entities: Vec<String> = found
        .iter()
        .map(|(a, _)| format!("Appointment/{}", a.id))
        .collect();
    call.audit_read(
        &gpc,
        AuditInteraction::Search,
        &entities,
        &[format!("Patient/{}", patient.id)],
    )
    .await?;
    let resources = found
        .into_iter()
        .filter(|(a, _)| a.is_current(now))
        .map(|(a, v)| a.to_resource(v))
        .collect();
    Ok(call.ok(&call.searchset(resources), None))
}

// ---------------------------------------------------------------------------------------
// Access Record Structured

async fn structured_metadata(
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
        &[Interaction::StructuredMetadata],
        caller,
    )
    .await?;
    Ok(call.ok(
        &capability::structured_statement(env!("CARGO_PKG_VERSION")),
        None,
    ))
}

/// A warning OperationOutcome for the answer's Bundle, or nothing when there is nothing to say.
fn warnings_outcome(warnings: &[structured::Warning]) -> Option<Value> {
    if warnings.is_empty() {
        return None;
    }
    let issues: Vec<Value> = warnings
        .iter()
        .map(|w| {
            json!({
                "severity": "warning",
                "code": "not-supported",
                "details": {
                    "coding": [{"system": SYSTEM_SPINE_CODES,
                                "code": SpineCode::NotImplemented.code(),
                                "display": SpineCode::NotImplemented.display()}],
                    "text": w.text,
                },
                "diagnostics": w.diagnostics,
            })
        })
        .collect();
    Some(json!({
        "resourceType": "OperationOutcome",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"profile": [PROFILE_OUTCOME]},
        "issue": issues,
    }))
}

async fn structured_operation(
    State(gpc): State<Arc<Gpc>>,
    Path((ods, operation)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
    caller: Option<Extension<audit::Caller>>,
    body: Bytes,
) -> Answer {
    let interaction = match operation.as_str() {
        "$gpc.getstructuredrecord" => Interaction::GetStructuredRecord,
        "$gpc.migratestructuredrecord" => Interaction::MigrateStructuredRecord,
        _ => {
            return Err(GpcError::bad_request(format!(
                "POST /Patient/{operation} is not an Access Record Structured interaction; the operations are $gpc.getstructuredrecord and $gpc.migratestructuredrecord"
            ))
            .into());
        }
    };
    let call = begin(&gpc, &ods, &headers, &query, &[interaction], caller).await?;
    let parameters = parse_body(&headers, &body).map_err(|e| call.fail(e))?;
    let now = now_micros();
    let not_found = |nhs: &str| {
        call.fail(GpcError::new(
            SpineCode::PatientNotFound,
            format!("No patient with NHS number {nhs} can be shared by this practice"),
        ))
    };
    let (patient, version, selection, warnings) = if interaction == Interaction::GetStructuredRecord
    {
        let request =
            structured::parse(&parameters, clock::uk_day(now)).map_err(|e| call.fail(e))?;
        let (patient, version) = gpc
            .repo
            .patient_by_nhs_number(&request.nhs_number, &call.practice.id)
            .await
            .map_err(|e| call.repo_fail(e))?
            .filter(|(p, _)| p.is_visible() && p.registration.kind == RegistrationType::Regular)
            .ok_or_else(|| not_found(&request.nhs_number))?;
        if patient.dissent {
            return Err(call.fail(GpcError::new(
                SpineCode::NoPatientConsent,
                "The patient has dissented from sharing their record",
            )));
        }
        let selection = record::Selection {
            allergies: request.allergies,
            medication: request.medication,
            immunisations: request.immunisations,
            uncategorised: request.uncategorised,
            referrals: request.referrals,
            investigations: request.investigations,
            consultations: request.consultations,
            diary: request.diary,
            problems: request.problems.clone(),
            include_confidential: false,
        };
        (patient, version, selection, request.warnings.clone())
    } else {
        let request = structured::parse_migrate(&parameters).map_err(|e| call.fail(e))?;
        if request.include_sensitive && call.claims.scopes.iter().any(|s| s == "conf/N") {
            return Err(call.fail(GpcError::new(
                SpineCode::ConflictingValues,
                "includeSensitiveInformation is true, but the JWT's requested_scope says conf/N (no sensitive information)",
            )));
        }
        // The practice keeps the record of a patient who has left; what matters is that the
        // patient is alive, traced and not sensitive.
        let (patient, version) = gpc
            .repo
            .patient_by_nhs_number(&request.nhs_number, &call.practice.id)
            .await
            .map_err(|e| call.repo_fail(e))?
            .filter(|(p, _)| p.deceased.is_none() && p.verified && !p.sensitive)
            .ok_or_else(|| not_found(&request.nhs_number))?;
        // Only the practice the patient is now registered with (on PDS) may take the record.
        let registered = gpc
            .repo
            .pds()
            .current(&request.nhs_number)
            .await
            .map_err(|e| call.repo_fail(e.into()))?
            .and_then(|(p, _)| p.gp_practice);
        if registered.as_deref() != Some(call.claims.organisation.as_str()) {
            return Err(call.fail(GpcError::new(
                SpineCode::NoRelationship,
                format!(
                    "{} is not the practice the patient is registered with on PDS ({})",
                    call.claims.organisation,
                    registered.as_deref().unwrap_or("none")
                ),
            )));
        }
        let selection = record::Selection::full_record(request.include_sensitive);
        (patient, version, selection, request.warnings)
    };
    let bundle = record_bundle(
        &gpc, &call, &patient, version, &selection, &warnings, &headers, now,
    )
    .await?;
    let reference = format!("Patient/{}", patient.id);
    let name = if interaction == Interaction::GetStructuredRecord {
        "gpc.getstructuredrecord"
    } else {
        "gpc.migratestructuredrecord"
    };
    call.audit_read(
        &gpc,
        AuditInteraction::Operation(name, "R"),
        std::slice::from_ref(&reference),
        std::slice::from_ref(&reference),
    )
    .await?;
    Ok(call.ok(&bundle, None))
}

/// The `GPConnect-StructuredRecord-Bundle-1` of `patient`'s record as `selection` asks: the
/// patient, the practice, the practitioners named, the Lists and resources, and the warnings.
#[allow(clippy::too_many_arguments)]
async fn record_bundle(
    gpc: &Gpc,
    call: &Call,
    patient: &GpPatient,
    version: i64,
    selection: &record::Selection,
    warnings: &[structured::Warning],
    headers: &HeaderMap,
    now: i64,
) -> Result<Value, Failure> {
    let record = gpc
        .repo
        .clinical_record(&patient.id)
        .await
        .map_err(|e| call.repo_fail(e))?;
    let list_warnings = record::Warnings {
        confidential_excluded: false,
        in_transit_since: patient
            .in_transit
            .then(|| clock::day_of(&patient.registration.start).unwrap_or(clock::uk_day(now))),
    };
    let sections = record.sections(
        selection,
        list_warnings,
        &clock::format_day(clock::uk_day(now)),
    );
    let mut entries = vec![patient.to_resource(version)];
    if let Some((organisation, v)) = gpc
        .repo
        .get::<Organisation>(&patient.registration.organisation)
        .await
        .map_err(|e| call.repo_fail(e))?
    {
        entries.push(organisation.to_resource(v));
    }
    for id in sections
        .organisations
        .iter()
        .filter(|id| **id != patient.registration.organisation)
    {
        if let Some((organisation, v)) = gpc
            .repo
            .get::<Organisation>(id)
            .await
            .map_err(|e| call.repo_fail(e))?
        {
            entries.push(organisation.to_resource(v));
        }
    }
    let mut people: Vec<String> = patient.registration.usual_gp.iter().cloned().collect();
    for id in sections.practitioners.iter() {
        if !people.contains(id) {
            people.push(id.clone());
        }
    }
    for id in people {
        if let Some((practitioner, v)) = gpc
            .repo
            .get::<Practitioner>(&id)
            .await
            .map_err(|e| call.repo_fail(e))?
        {
            entries.push(practitioner.to_resource(v));
            entries.push(practitioner.role_resource(v));
        }
    }
    entries.extend(sections.lists);
    entries.extend(sections.resources);
    entries.extend(warnings_outcome(warnings));
    Ok(json!({
        "resourceType": "Bundle",
        "id": header_text(headers, "ssp-traceid").unwrap_or_default(),
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-StructuredRecord-Bundle-1"]},
        "type": "collection",
        "entry": entries.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
    }))
}
