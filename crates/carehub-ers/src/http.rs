//! The e-RS API over HTTP: routes as the official spec lays them out under
//! `/{env}/referrals/FHIR`, the e-RS headers and the platform's [`RequestContext`] turned into
//! a [`Caller`], JSON bodies in and out, and e-RS errors rendered as the spec's
//! OperationOutcomes (`eRS-OperationOutcome-1` on STU3 paths, the NHS Digital shape on R4
//! paths). The status of every error comes from `carehub_server`'s one table.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carehub_gateway::identity::{Identity, Smartcard};
use carehub_gateway::{Mount, RequestContext};
use carehub_server::audit::{self, Interaction};
use carehub_server::error::Category;
use carehub_store::StoreError;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::domain::access::{
    self, Caller, ContextHeaders, Endpoint, HeldRole, Principal, endpoints,
};
use crate::domain::appointment::{self, Appointment, NewAppointment};
use crate::domain::attachment;
use crate::domain::codes::{self, BusinessFunction};
use crate::domain::params::Params;
use crate::domain::referral::{
    self, Change, NewReferral, Referral, Shortlisted, State as ReferralState,
};
use crate::domain::service::{self, PatientFacts, RequestType, SearchCriteria, Service, SortBy};
use crate::domain::worklist;
use crate::domain::{Class, ErsError};
use crate::repo::{AuditRecord, Expected, Repo, RepoError};

/// What every handler of one environment's e-RS needs.
#[derive(Debug)]
pub(crate) struct Ers {
    pub(crate) repo: Repo,
    identity: Identity,
    environment: String,
    /// `{public}/int/referrals/FHIR`
    url: String,
    /// `{public}/int/referrals/ObjectStore`: where A042 sends downloads.
    object_store: String,
    /// The largest file A020 takes.
    file_size_limit: u64,
    /// Whether this is the sandbox: open, stateless, answering over the official scenario keys.
    sandbox: bool,
    /// PDS of the same environment, where patients are traced.
    pds: carehub_spine::pds::repo::PdsRepo,
}

impl Ers {
    fn stu3_base(&self) -> String {
        format!("{}/STU3", self.url)
    }
}

type Shared = Arc<Ers>;

/// The routers of e-RS in one stateful environment: the API relative to its mount path, and
/// the object store that signed download URLs point at.
pub(crate) fn router(mount: &Mount, clock: Clock) -> carehub_gateway::ProductRouter {
    // `/int/referrals/FHIR` -> `/int/referrals/ObjectStore`
    let parent = mount.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    let object_path = format!("{parent}/ObjectStore");
    let ers = Arc::new(Ers {
        repo: if mount.kind == carehub_gateway::config::EnvironmentKind::Sandbox {
            Repo::new(mount.store.clone(), &mount.store_key).stateless()
        } else {
            Repo::new(mount.store.clone(), &mount.store_key)
        }
        .with_clock(clock),
        identity: Identity::new(mount.store.clone(), &mount.public_url),
        environment: mount.environment.clone(),
        url: mount.url.clone(),
        object_store: format!("{}{object_path}", mount.public_url.trim_end_matches('/')),
        file_size_limit: mount.file_size_limit,
        sandbox: mount.kind == carehub_gateway::config::EnvironmentKind::Sandbox,
        pds: carehub_spine::pds::repo::PdsRepo::new(
            mount.store.clone(),
            &format!("pds-{}", mount.environment),
        ),
    });
    // Bodies up to the file limit reach A020, which answers FILE_SIZE_ERROR itself; far larger
    // ones are refused before they are read.
    let body_limit = usize::try_from(mount.file_size_limit)
        .unwrap_or(usize::MAX)
        .saturating_mul(2)
        .max(16 << 20);
    let public = Router::new()
        .route(&format!("{object_path}/{{id}}"), get(object_store))
        .with_state(ers.clone());
    let api = Router::new()
        .route("/STU3/Binary", post(upload_file))
        .route("/STU3/Binary/{id}", get(download_stu3))
        .route("/R4/Binary/{id}", get(download_r4))
        .route("/STU3/CodeSystem/{kind}", get(code_system))
        .route(
            "/STU3/ReferralRequest/{id}",
            get(read_referral).post(referral_type_operation),
        )
        .route(
            "/STU3/ReferralRequest/{id}/_history/{version}",
            get(read_referral_version),
        )
        .route(
            "/STU3/ReferralRequest/{id}/{operation}",
            post(referral_operation),
        )
        .route(
            "/STU3/HealthcareService/{operation}",
            post(service_type_operation),
        )
        .route("/STU3/Task", get(available_actions))
        .route(
            "/STU3/CommunicationRequest/{id}",
            get(read_advice).post(advice_type_operation),
        )
        .route(
            "/STU3/CommunicationRequest/{id}/_history/{version}",
            get(read_advice_version),
        )
        .route(
            "/STU3/CommunicationRequest/{id}/{operation}",
            post(advice_operation),
        )
        .route("/STU3/Communication", get(conversation))
        .route("/R4/ServiceRequest", get(service_requests))
        .route("/STU3/Slot", get(slots))
        .route("/STU3/Appointment", post(create_appointment))
        .route(
            "/STU3/Appointment/{id}",
            get(read_appointment).put(cancel_appointment),
        )
        .route(
            "/STU3/Appointment/{id}/_history/{version}",
            get(read_appointment_version),
        )
        .route("/R4/PractitionerRole", get(business_functions))
        .route("/R4/Practitioner", get(on_behalf_of_users))
        .route("/R4/HealthcareService", get(search_services_r4))
        .route("/R4/HealthcareService/{id}", get(read_service_r4));
    let api = if ers.sandbox {
        api.route_layer(axum::middleware::from_fn(no_scenario))
    } else {
        api
    };
    let api = api
        .fallback(unknown_endpoint)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(ers);
    carehub_gateway::ProductRouter { api, public }
}

// ---------------------------------------------------------------------------------------
// Errors

/// Which OperationOutcome shape an endpoint answers errors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Stu3,
    R4,
}

/// A failed call: an e-RS error to render, or a fault to log.
#[derive(Debug)]
struct Failure {
    error: ErsError,
    shape: Shape,
    /// Answered as plain text (the sandbox's `SANDBOX_ERROR` refusals).
    plain: bool,
}

impl From<ErsError> for Failure {
    fn from(error: ErsError) -> Failure {
        Failure {
            error,
            shape: Shape::Stu3,
            plain: false,
        }
    }
}

impl From<RepoError> for Failure {
    fn from(err: RepoError) -> Failure {
        match err {
            RepoError::Ers(error) => error.into(),
            // The unit of work read the record at the version the caller named, and another
            // request wrote it before this one could: what e-RS answers with 423 Locked while it
            // holds a record for an update.
            RepoError::Store(
                StoreError::VersionConflict {
                    resource_type, id, ..
                }
                | StoreError::AlreadyExists { resource_type, id },
            ) => ErsError::new(
                Class::Locked,
                "INVALID_STATE",
                format!(
                    "{resource_type} {id} was changed by another request while this one was being \
                     worked out, and nothing was changed by this one. Read it again and retry"
                ),
            )
            .into(),
            RepoError::Store(StoreError::Contended) => ErsError::new(
                Class::Locked,
                "INVALID_STATE",
                "The records this request changes were being changed by another request at the \
                 same moment, and nothing was changed by this one. Retry",
            )
            .into(),
            RepoError::Store(store) => match carehub_server::error::ApiError::from(store) {
                e if e.category == Category::Unavailable => ErsError::new(
                    Class::Unprocessable,
                    "SYSTEM_UNAVAILABLE",
                    "The database is not available; nothing was changed. Try again shortly",
                )
                .into(),
                other => fault(other),
            },
            RepoError::Corrupt(why) => fault(why),
            RepoError::RolledBack => fault("a rolled-back unit of work escaped the repository"),
        }
    }
}

/// An unexpected failure: logged in full, answered without detail.
fn fault(cause: impl std::fmt::Display) -> Failure {
    tracing::error!(error = %cause, "e-RS request failed");
    Failure {
        error: ErsError::new(
            Class::Unprocessable,
            "SERVER_ERROR",
            "The server failed to process the request; the failure has been logged",
        ),
        shape: Shape::Stu3,
        plain: false,
    }
    .faulted()
}

impl Failure {
    fn r4(mut self) -> Failure {
        self.shape = Shape::R4;
        self
    }

    /// Marks a fault: answered as 500.
    fn faulted(mut self) -> Failure {
        self.error.code = "SERVER_ERROR";
        self
    }

    fn category(&self) -> Category {
        if self.error.code == "SERVER_ERROR" {
            return Category::Fault;
        }
        if self.error.code == "SYSTEM_UNAVAILABLE" {
            return Category::Unavailable;
        }
        match self.error.class {
            Class::BadRequest => Category::Invalid,
            Class::Unauthorised => Category::Unauthorized,
            Class::Forbidden => Category::Forbidden,
            Class::NotFound => Category::NotFound,
            Class::Conflict => Category::Conflict,
            Class::PreconditionFailed => Category::PreconditionFailed,
            Class::Locked => Category::Locked,
            Class::Unprocessable => Category::Unprocessable,
            Class::TooManyRequests => Category::TooManyRequests,
        }
    }
}

/// The R4 `http-error-codes` code of a status.
fn r4_code(category: Category) -> &'static str {
    match category {
        Category::Invalid => "REC_BAD_REQUEST",
        Category::Unauthorized => "ACCESS_DENIED",
        Category::Forbidden => "REC_FORBIDDEN",
        Category::NotFound => "REC_NOT_FOUND",
        Category::NotAcceptable => "REC_NOT_ACCEPTABLE",
        Category::UnsupportedMediaType => "REC_UNSUPPORTED_MEDIA_TYPE",
        Category::Unavailable => "REC_UNAVAILABLE",
        _ => "REC_SERVER_ERROR",
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let category = self.category();
        if self.plain {
            return (
                category.status(),
                [(header::CONTENT_TYPE, "text/plain")],
                self.error.diagnostics,
            )
                .into_response();
        }
        let error = &self.error;
        let (system, code) = match (self.shape, category) {
            (Shape::Stu3, _) => (
                "https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1",
                error.code,
            ),
            (Shape::R4, Category::Unprocessable) => {
                ("https://fhir.nhs.uk/CodeSystem/ers-error-codes", error.code)
            }
            (Shape::R4, _) if error.code == "SANDBOX_ERROR" => (
                "https://fhir.nhs.uk/CodeSystem/NHSD-API-ErrorOrWarningCode",
                "SANDBOX_ERROR",
            ),
            (Shape::R4, Category::Unauthorized) => (
                "https://fhir.nhs.uk/CodeSystem/NHSD-API-ErrorOrWarningCode",
                "ACCESS_DENIED",
            ),
            (Shape::R4, other) => (
                "https://fhir.nhs.uk/CodeSystem/http-error-codes",
                r4_code(other),
            ),
        };
        let issue_type = if category == Category::Fault {
            "exception"
        } else {
            error.issue_type()
        };
        let mut outcome = json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": issue_type,
                "details": {"coding": [{"system": system, "code": code}]},
                "diagnostics": error.diagnostics,
            }],
        });
        if self.shape == Shape::R4 {
            // NHSDigital-OperationOutcome requires meta.
            outcome["meta"] =
                json!({"lastUpdated": carehub_fhir::datetime::format_instant(now_micros())});
        }
        if self.shape == Shape::Stu3 {
            outcome["meta"] = json!({"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1"]});
            outcome["issue"][0]["details"]["coding"][0]["display"] = json!(error.display());
        }
        let mut response = fhir_json(category.status(), &outcome, None);
        if self.shape == Shape::Stu3
            && (category == Category::NotFound || error.code == "REFERENCE_NOT_FOUND")
        {
            response
                .extensions_mut()
                .insert(UnknownRecord(error.diagnostics.clone()));
        }
        response
    }
}

type Answer = Result<Response, Failure>;

/// Marks an STU3 answer that names a record nobody holds (404, or `REFERENCE_NOT_FOUND` where an
/// endpoint answers it with 400 or 422), so that the sandbox can answer it as a request no
/// scenario matches.
#[derive(Debug, Clone)]
struct UnknownRecord(String);

/// In the sandbox, a request for a record that no scenario holds answers as the official
/// sandbox does: `SANDBOX_ERROR`, 400 where A015, A025 and A029 answer so and 422 elsewhere
/// (an unknown code system stays 404). What the sandbox does hold answers by the rules.
async fn no_scenario(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let Some(UnknownRecord(why)) = response.extensions().get::<UnknownRecord>().cloned() else {
        return response;
    };
    if path.contains("/STU3/CodeSystem/") {
        return response;
    }
    let class = if ["/STU3/Slot", "/STU3/Communication", "/STU3/Task"]
        .iter()
        .any(|search| path.ends_with(search))
    {
        Class::BadRequest
    } else {
        Class::Unprocessable
    };
    Failure::from(ErsError::new(
        class,
        "SANDBOX_ERROR",
        format!("No sandbox scenario matches this request: {why}"),
    ))
    .into_response()
}

async fn unknown_endpoint(method: Method, uri: axum::http::Uri) -> Response {
    Failure::from(ErsError::new(
        Class::NotFound,
        "REFERENCE_NOT_FOUND",
        format!(
            "No e-RS endpoint answers {method} {}; see the e-RS API specification for the paths",
            uri.path()
        ),
    ))
    .into_response()
}

// ---------------------------------------------------------------------------------------
// Requests and responses

fn fhir_json(status: StatusCode, body: &impl serde::Serialize, version: Option<i64>) -> Response {
    // Only a map with non-string keys fails to serialise, and no answer here has one.
    let text = serde_json::to_string(body).unwrap_or_default();
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        text,
    )
        .into_response();
    if let Some(version) = version
        && let Ok(value) = HeaderValue::from_str(&format!("W/\"{version}\""))
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The JSON body of an operation; e-RS takes `application/fhir+json` only.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
    let media = header_text(headers, "content-type").unwrap_or("");
    let essence = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/fhir+json" && essence != "application/json" {
        // As e-RS does, 415 is plain text.
        return Err((
            Category::UnsupportedMediaType.status(),
            [(header::CONTENT_TYPE, "text/plain")],
            format!("Unsupported Media Type: '{media}'; send application/fhir+json"),
        )
            .into_response());
    }
    serde_json::from_slice(body).map_err(|e| {
        Failure::from(ErsError::new(
            Class::BadRequest,
            "INVALID_FHIR_STRUCTURE",
            format!("The body is not valid JSON: {e}"),
        ))
        .into_response()
    })
}

/// The endpoints that answer a missing `If-Match` with 412; the others that need one (A026,
/// A031, A032) document no 412 and answer 400.
const PRECONDITION_ENDPOINTS: [&str; 7] = ["A012", "A013", "A014", "A022", "A028", "A034", "A036"];

/// The version `If-Match: W/"n"` asks for: missing is 412 (400 where the endpoint documents no
/// 412), malformed 400.
fn if_match_for(endpoint: &Endpoint, headers: &HeaderMap) -> Result<i64, Failure> {
    let Some(value) = header_text(headers, "if-match") else {
        let class = if PRECONDITION_ENDPOINTS.contains(&endpoint.id) {
            Class::PreconditionFailed
        } else {
            Class::BadRequest
        };
        return Err(ErsError::new(
            class,
            "MISSING_VALUE",
            "The If-Match header is mandatory: send the version you read, as W/\"n\"",
        )
        .into());
    };
    value
        .trim()
        .strip_prefix("W/\"")
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|&version| version >= 1)
        .ok_or_else(|| {
            ErsError::new(
                Class::BadRequest,
                "INVALID_VALUE",
                format!("If-Match '{value}' is not a weak ETag such as W/\"4\""),
            )
            .into()
        })
}

/// A request's context: the gateway's, plus the audit caller it marked.
struct Context {
    platform: RequestContext,
    audit: Option<audit::Caller>,
}

fn context(parts: &axum::http::Extensions) -> Result<Context, Failure> {
    let platform = parts.get::<RequestContext>().cloned().ok_or_else(|| {
        Failure::from(ErsError::new(
            Class::Unauthorised,
            "NO_ACCESS",
            "No credentials: e-RS is served behind the platform's gateway",
        ))
    })?;
    Ok(Context {
        platform,
        audit: parts.get::<audit::Caller>().cloned(),
    })
}

fn principal(ctx: &RequestContext) -> Result<Principal, ErsError> {
    if let Some(user) = &ctx.user {
        return Ok(Principal::User {
            sds_user_id: user.sds_user_id.clone(),
            name: user.name.clone(),
            roles: user
                .roles
                .iter()
                .map(|r| HeldRole {
                    organisation: r.organisation.clone(),
                    functions: r.business_functions.clone(),
                })
                .collect(),
        });
    }
    match &ctx.app {
        Some(app) => Ok(Principal::Application {
            organisation: app.organisation.clone(),
        }),
        None => Err(ErsError::new(
            Class::Unauthorised,
            "NO_ACCESS",
            "The request could not be authenticated",
        )),
    }
}

fn holds(card: &Smartcard, function: &str, organisation: &str) -> bool {
    card.roles.iter().any(|r| {
        (organisation == access::EVERY_ORGANISATION
            || r.organisation.eq_ignore_ascii_case(organisation))
            && r.business_functions.iter().any(|f| f == function)
    })
}

impl Ers {
    /// The version a write's `If-Match` names (see [`if_match_for`]); in the sandbox, whatever
    /// is current, as the official sandbox checks no versions.
    fn if_match(&self, endpoint: &Endpoint, headers: &HeaderMap) -> Result<Expected, Failure> {
        if self.sandbox {
            return Ok(Expected::Current);
        }
        if_match_for(endpoint, headers).map(Expected::Version)
    }

    /// The version a request body names (`incomingReferral`, `createFrom`); in the sandbox,
    /// whatever is current.
    fn named_version(&self, version: i64) -> Expected {
        if self.sandbox {
            Expected::Current
        } else {
            Expected::Version(version)
        }
    }

    /// Traces the patient on PDS, as e-RS does before it searches or refers: an NHS number
    /// PDS does not hold, or holds for a patient who has died, is `PATIENT_ERROR`. The sandbox
    /// answers from its scenarios and traces nobody.
    async fn trace_patient(&self, nhs_number: &str) -> Result<(), Failure> {
        if self.sandbox {
            return Ok(());
        }
        let found = self
            .pds
            .current(nhs_number)
            .await
            .map_err(|e| fault(e.to_string()))?;
        let refused = |why: String| -> Failure { ErsError::rule("PATIENT_ERROR", why).into() };
        match found {
            None => Err(refused(format!(
                "NHS number {nhs_number} is not known to PDS"
            ))),
            Some((patient, _)) if patient.is_deceased() => Err(refused(format!(
                "PDS records the patient with NHS number {nhs_number} as deceased"
            ))),
            Some((patient, _)) if patient.nhs_number != nhs_number => Err(refused(format!(
                "NHS number {nhs_number} was merged into {} on PDS; use that number",
                patient.nhs_number
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Users of this environment who hold `function` at `organisation`.
    async fn users_with(
        &self,
        function: &str,
        organisation: &str,
    ) -> Result<Vec<Smartcard>, Failure> {
        let cards = self
            .identity
            .cards(&self.environment)
            .await
            .map_err(fault)?;
        Ok(cards
            .into_iter()
            .filter(|c| holds(c, function, organisation))
            .collect())
    }

    /// The SDS ids of the referring clinicians a REFERRING_CLINICIAN_ADMIN caller may refer
    /// for (none for other callers). The sandbox's caller acts everywhere, and its scenarios'
    /// referring clinician is the one the specification's examples name.
    async fn referring_clinicians_for(&self, caller: &Caller) -> Result<Vec<String>, Failure> {
        if caller.function != BusinessFunction::ReferringClinicianAdmin {
            return Ok(Vec::new());
        }
        let mut clinicians: Vec<String> = self
            .users_with("REFERRING_CLINICIAN", &caller.organisation)
            .await?
            .into_iter()
            .map(|card| card.sds_user_id)
            .collect();
        if self.sandbox {
            clinicians.push(crate::seed::EXAMPLE_CLINICIAN.to_owned());
        }
        Ok(clinicians)
    }

    /// The e-RS caller of a request to `endpoint`.
    async fn caller(
        &self,
        endpoint: &Endpoint,
        ctx: &Context,
        headers: &HeaderMap,
    ) -> Result<Caller, Failure> {
        if self.sandbox {
            let sent = ContextHeaders {
                ods: header_text(headers, access::ODS_HEADER),
                function: header_text(headers, access::FUNCTION_HEADER),
                on_behalf_of: header_text(headers, access::OBO_HEADER),
            };
            return access::sandbox_caller(endpoint, sent).map_err(|text| Failure {
                error: ErsError::new(Class::Forbidden, "SANDBOX_ERROR", text),
                shape: Shape::Stu3,
                plain: true,
            });
        }
        let principal = principal(&ctx.platform)?;
        // The NHS gateway refuses applications without an ASID before e-RS sees them.
        if let Some(app) = &ctx.platform.app
            && app.asid.is_none()
        {
            return Err(ErsError::forbidden(
                "ASID is not configured in the application: register one (carehub apps asid) before calling e-RS",
            )
            .into());
        }
        let sent = ContextHeaders {
            ods: header_text(headers, access::ODS_HEADER),
            function: header_text(headers, access::FUNCTION_HEADER),
            on_behalf_of: header_text(headers, access::OBO_HEADER),
        };
        let clinicians = match (sent.on_behalf_of, sent.ods) {
            (Some(_), Some(ods)) => self.users_with("SERVICE_PROVIDER_CLINICIAN", ods).await?,
            _ => Vec::new(),
        };
        let caller = access::establish(endpoint, &principal, sent, |user, _| {
            clinicians.iter().any(|c| c.sds_user_id == user)
        })?;
        Ok(caller)
    }

    fn audit_record(
        &self,
        ctx: &Context,
        interaction: Interaction,
        entities: &[String],
        patient: Option<&str>,
    ) -> AuditRecord {
        let caller = ctx.audit.as_ref()?;
        let patients: Vec<String> = patient
            .map(|nhs| {
                vec![format!(
                    "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}"
                )]
            })
            .unwrap_or_default();
        Some(audit::event(
            caller,
            interaction,
            &self.url,
            entities,
            &patients,
            None,
        ))
    }

    /// Records a read in the audit trail before the answer leaves.
    async fn audit_read(
        &self,
        ctx: &Context,
        interaction: Interaction,
        entities: &[String],
        patient: Option<&str>,
    ) -> Result<(), Failure> {
        let record = self.audit_record(ctx, interaction, entities, patient);
        audit::record(self.repo.store(), record)
            .await
            .map_err(|e| Failure::from(RepoError::Store(e)))
    }

    async fn referral(&self, ubrn: &str) -> Result<(Referral, i64), Failure> {
        self.repo
            .referral(ubrn)
            .await?
            .ok_or_else(|| ErsError::not_found(format!("No referral with UBRN '{ubrn}'")).into())
    }

    async fn directory(&self) -> Result<Vec<Service>, Failure> {
        Ok(self
            .repo
            .services()
            .await?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }
}

// ---------------------------------------------------------------------------------------
// A004

async fn code_system(
    State(ers): State<Shared>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions)?;
    ers.caller(&endpoints::A004, &ctx, &headers).await?;
    let system = codes::code_system(&kind, &ers.stu3_base()).ok_or_else(|| {
        ErsError::not_found(format!(
            "No code system '{kind}'; e-RS serves {}",
            codes::CODE_SYSTEM_TYPES.join(", ")
        ))
    })?;
    Ok(fhir_json(StatusCode::OK, &system, None))
}

// ---------------------------------------------------------------------------------------
// A005

async fn read_referral(
    State(ers): State<Shared>,
    Path(ubrn): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    read_referral_at(&ers, &ubrn, None, &headers, &extensions).await
}

async fn read_referral_version(
    State(ers): State<Shared>,
    Path((ubrn, version)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    read_referral_at(&ers, &ubrn, Some(&version), &headers, &extensions).await
}

async fn read_referral_at(
    ers: &Ers,
    ubrn: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A005, &ctx, headers).await?;
    let (found, current) = ers.referral(ubrn).await?;
    found.side_of(&caller)?;
    if let Some(asked) = version
        && asked != current.to_string()
    {
        return Err(ErsError::new(
            Class::NotFound,
            "HISTORY_NOT_SUPPORTED",
            format!(
                "Only the current version of referral {ubrn} can be read; it is version {current}, not '{asked}'"
            ),
        )
        .into());
    }
    ers.audit_read(
        &ctx,
        Interaction::Read,
        &[format!("ReferralRequest/{ubrn}")],
        Some(&found.patient),
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &found.to_fhir(current, &ers.stu3_base()),
        Some(current),
    ))
}

// ---------------------------------------------------------------------------------------
// A010

async fn service_type_operation(
    State(ers): State<Shared>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    if operation != "$ers.searchHealthcareServicesForPatient" {
        return Ok(unknown_endpoint(
            Method::POST,
            format!("/STU3/HealthcareService/{operation}")
                .parse()
                .unwrap_or_default(),
        )
        .await);
    }
    let ctx = context(&extensions)?;
    let caller = ers.caller(&endpoints::A010, &ctx, &headers).await?;
    let body = match json_body(&headers, &body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let params = Params::read(
        &body,
        &[
            "requestType",
            "sortBy",
            "patient",
            "searchCriteria",
            "referringClinician",
            "commissioningRuleOrganisation",
        ],
    )?;
    let request = params
        .coding("requestType")?
        .ok_or_else(|| ErsError::missing("parameter requestType"))?;
    request.check_system(
        "requestType",
        "https://fhir.nhs.uk/STU3/CodeSystem/eRS-RequestType-1",
    )?;
    let request_type = match request.code {
        "APPOINTMENT_REQUEST" => RequestType::Appointment,
        "ADVICE_AND_GUIDANCE_REQUEST" => RequestType::Advice,
        other => {
            return Err(ErsError::invalid_code(
                "requestType",
                other,
                &["APPOINTMENT_REQUEST", "ADVICE_AND_GUIDANCE_REQUEST"],
            )
            .into());
        }
    };
    let sort_by = params
        .coding("sortBy")?
        .ok_or_else(|| ErsError::missing("parameter sortBy"))?;
    sort_by.check_system("sortBy", "https://fhir.nhs.uk/STU3/CodeSystem/eRS-SortBy-1")?;
    let sort_by = SortBy::parse(sort_by.code)?;
    let (system, value) = params
        .identifier("patient")?
        .ok_or_else(|| ErsError::missing("parameter patient"))?;
    let patient = referral::nhs_number(system, value)?;
    ers.trace_patient(&patient).await?;
    let (location, criteria) = params
        .resource("searchCriteria")?
        .ok_or_else(|| ErsError::missing("parameter searchCriteria"))?;
    let criteria = SearchCriteria::read(&params.nested(
        location,
        criteria,
        SearchCriteria::parameter_names(),
    )?)?;
    let commissioner = params
        .identifier("commissioningRuleOrganisation")?
        .map(|(_, ods)| ods.to_ascii_uppercase());
    if commissioner.is_some() && request_type == RequestType::Advice {
        return Err(ErsError::rule(
            "FIELD_NOT_PERMITTED",
            "commissioningRuleOrganisation is not supported with ADVICE_AND_GUIDANCE_REQUEST",
        )
        .into());
    }
    let commissioner = commissioner.unwrap_or_else(|| caller.organisation.clone());
    let directory = ers.directory().await?;
    let patient_facts: Option<PatientFacts> = None;
    let mut matches: Vec<&Service> = directory
        .iter()
        .filter(|s| {
            service::mismatch(
                s,
                &criteria,
                request_type,
                Some(&commissioner),
                patient_facts,
            )
            .is_none()
        })
        .collect();
    service::sort(&mut matches, sort_by);
    let stu3 = ers.stu3_base();
    let list = json!({
        "resourceType": "List",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-FetchServices-List-1"]},
        "status": "current",
        "mode": "snapshot",
        "entry": matches.iter().map(|s| s.list_entry(&stu3)).collect::<Vec<_>>(),
    });
    ers.audit_read(
        &ctx,
        Interaction::Operation("$ers.searchHealthcareServicesForPatient", "E"),
        &[],
        Some(&patient),
    )
    .await?;
    Ok(fhir_json(StatusCode::OK, &list, None))
}

// ---------------------------------------------------------------------------------------
// A011, A031, A036

async fn referral_type_operation(
    State(ers): State<Shared>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    match operation.as_str() {
        "$ers.createReferral" => create_referral(&ers, &headers, &extensions, &body).await,
        "$ers.fetchworklist" => fetch_worklist(&ers, &headers, &extensions, &body).await,
        "$ers.createFromCommunicationRequestActionLater" => {
            convert_advice(&ers, &headers, &extensions, &body).await
        }
        "$ers.createReferralAndSendForTriage" => {
            let response = create_and_send_for_triage(&ers, &headers, &extensions, &body).await;
            let successor = format!("{}/ReferralRequest/$ers.createReferral", ers.stu3_base());
            Ok(deprecated(
                response.unwrap_or_else(IntoResponse::into_response),
                None,
                None,
                &successor,
            ))
        }
        _ => Ok(unknown_endpoint(
            Method::POST,
            format!("/STU3/ReferralRequest/{operation}")
                .parse()
                .unwrap_or_default(),
        )
        .await),
    }
}

/// The system's time, for stamping answers (the rules read the repository's clock).
fn now_micros() -> i64 {
    crate::clock::system_micros()
}

async fn create_referral(
    ers: &Ers,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A011, &ctx, headers).await?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let new = NewReferral::read(&body, (!ers.sandbox).then(|| ers.repo.now()))?;
    ers.trace_patient(&new.patient).await?;
    let clinicians = ers.referring_clinicians_for(&caller).await?;
    let clinician =
        referral::referring_clinician(&caller, new.referring_clinician.as_deref(), |user, _| {
            clinicians.iter().any(|c| c == user)
        })?;
    // Until a referral is sent, the referring organisation's own commissioning applies.
    let commissioner = caller.organisation.clone();
    let directory = ers.directory().await?;
    let shortlisted = referral::check_shortlist(&new.services, &directory, |s| {
        service::mismatch(
            s,
            &new.criteria,
            RequestType::Appointment,
            Some(&commissioner),
            None,
        )
    })?;
    let shortlisted: Vec<Service> = shortlisted.into_iter().cloned().collect();
    let stu3 = ers.stu3_base();
    let url = ers.url.clone();
    let audit_caller = ctx.audit.clone();
    let build_caller = caller.clone();
    let created_at = carehub_fhir::datetime::format_instant(ers.repo.now());
    let (created, version) = ers
        .repo
        .create_referral(
            move |ubrn| {
                let refs: Vec<&Service> = shortlisted.iter().collect();
                let mut referral =
                    Referral::create(ubrn, new, &refs, &build_caller, clinician, commissioner);
                referral.created = created_at;
                referral
            },
            move |referral| {
                let caller = audit_caller.as_ref()?;
                Some(audit::event(
                    caller,
                    Interaction::Operation("$ers.createReferral", "C"),
                    &url,
                    &[format!("ReferralRequest/{}", referral.ubrn)],
                    &[format!(
                        "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{}",
                        referral.patient
                    )],
                    None,
                ))
            },
        )
        .await?;
    let mut response = fhir_json(
        StatusCode::CREATED,
        &created.to_fhir(version, &stu3),
        Some(version),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("{stu3}/ReferralRequest/{}", created.ubrn))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn referral_operation(
    State(ers): State<Shared>,
    Path((ubrn, operation)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    match operation.as_str() {
        "$ers.changeShortlist" => change_shortlist(&ers, &ubrn, &headers, &extensions, &body).await,
        "$ers.cancelReferral" => cancel_referral(&ers, &ubrn, &headers, &extensions, &body).await,
        "$ers.acceptReferral" => accept_referral(&ers, &ubrn, &headers, &extensions).await,
        "$ers.cancelAppointmentActionLater" => {
            action_later(&ers, &ubrn, &headers, &extensions, &body).await
        }
        "$ers.changeShortlistAndSendForTriage" => {
            let response =
                change_shortlist_and_send_for_triage(&ers, &ubrn, &headers, &extensions, &body)
                    .await;
            let successor = format!(
                "{}/ReferralRequest/{ubrn}/$ers.changeShortlist",
                ers.stu3_base()
            );
            Ok(deprecated(
                response.unwrap_or_else(IntoResponse::into_response),
                None,
                None,
                &successor,
            ))
        }
        "$ers.generatePatientLetter" => patient_letter(&ers, &ubrn, &headers, &extensions).await,
        "$ers.generateCRI" => clinical_information(&ers, &ubrn, &headers, &extensions).await,
        "$ers.maintainReferralLetter" => {
            maintain_letter(&ers, &ubrn, &headers, &extensions, &body).await
        }
        "$ers.rejectReferral" => reject_referral(&ers, &ubrn, &headers, &extensions, &body).await,
        "$ers.recordReviewOutcome" => {
            record_review_outcome(&ers, &ubrn, &headers, &extensions, &body).await
        }
        _ => Ok(unknown_endpoint(
            Method::POST,
            format!("/STU3/ReferralRequest/{ubrn}/{operation}")
                .parse()
                .unwrap_or_default(),
        )
        .await),
    }
}

/// Runs a change on a referral in one unit of work with its AuditEvent.
async fn change_referral(
    ers: &Ers,
    ctx: &Context,
    ubrn: &str,
    expected: Expected,
    operation: &'static str,
    caller: Caller,
    change: Change,
) -> Result<(Referral, i64), Failure> {
    let url = ers.url.clone();
    let audit_caller = ctx.audit.clone();
    let sandbox = ers.sandbox;
    let (changed, version) = ers
        .repo
        .update_referral(
            ubrn,
            expected,
            move |referral| {
                if !sandbox {
                    return referral.apply(&caller, change);
                }
                let before = referral.clone();
                match referral.apply(&caller, change.clone()) {
                    Err(refused) if refused.code == "INVALID_REQUEST_STATE" => {
                        // The sandbox answers a provider's review whatever the state, as
                        // the official one does (see `Referral::stand_in_for_provider`).
                        *referral = before;
                        let provider = referral.side_of(&caller)? == referral::Side::Provider;
                        if !(provider && referral.stand_in_for_provider(change.action())) {
                            return Err(refused);
                        }
                        referral.apply(&caller, change)
                    }
                    other => other,
                }
            },
            move |referral| {
                let caller = audit_caller.as_ref()?;
                Some(audit::event(
                    caller,
                    Interaction::Operation(operation, "U"),
                    &url,
                    &[format!("ReferralRequest/{}", referral.ubrn)],
                    &[format!(
                        "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{}",
                        referral.patient
                    )],
                    None,
                ))
            },
        )
        .await?;
    Ok((changed, version))
}

async fn change_shortlist(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A031, &ctx, headers).await?;
    let expected = ers.if_match(&endpoints::A031, headers)?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let (criteria, ids, letter_intention, reminder_days) = referral::read_change_shortlist(&body)?;
    let (current, _) = ers.referral(ubrn).await?;
    current.check(&caller, referral::Action::ChangeShortlist)?;
    let directory = ers.directory().await?;
    let commissioner = current.commissioning_organisation.clone();
    let shortlisted = referral::check_shortlist(&ids, &directory, |s| {
        service::mismatch(
            s,
            &criteria,
            RequestType::Appointment,
            Some(&commissioner),
            None,
        )
    })?;
    let shortlisted: Vec<Shortlisted> = shortlisted
        .into_iter()
        .map(|s| Shortlisted {
            service: s.id.clone(),
            name: s.name.clone(),
            provider: s.provider.clone(),
        })
        .collect();
    let change = Change::Shortlist {
        criteria,
        shortlisted,
        letter_intention,
        reminder_days,
    };
    let (changed, version) = change_referral(
        ers,
        &ctx,
        ubrn,
        expected,
        "$ers.changeShortlist",
        caller,
        change,
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &changed.to_fhir(version, &ers.stu3_base()),
        Some(version),
    ))
}

async fn cancel_referral(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A036, &ctx, headers).await?;
    let expected = ers.if_match(&endpoints::A036, headers)?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let (reason, comment) = referral::read_cancel(&body)?;
    let (changed, version) = change_referral(
        ers,
        &ctx,
        ubrn,
        expected,
        "$ers.cancelReferral",
        caller,
        Change::Cancel { reason, comment },
    )
    .await?;
    let parameters = json!({
        "resourceType": "Parameters",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-CancelReferral-Response-Parameters-1"]},
        "parameter": [{"name": "updatedReferralRequest", "resource": changed.to_fhir(version, &ers.stu3_base())}],
    });
    Ok(fhir_json(StatusCode::OK, &parameters, Some(version)))
}

// ---------------------------------------------------------------------------------------
// A029

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn bad_request(diagnostics: impl Into<String>) -> ErsError {
    ErsError::new(Class::BadRequest, "INVALID_VALUE", diagnostics)
}

/// The official sandbox's A029 scenarios: asked with exactly these foci
/// (`ReferralRequest/{ubrn}/_history/6`), it answers these actions whatever its A005 says of the
/// referral, and so does ours; other foci are answered from the referral's state.
const SANDBOX_ACTIONS: [(&str, &[referral::Action]); 7] = {
    use referral::Action::*;
    [
        ("000000070000", &[]),
        ("000000070001", &[RecordReviewOutcome]),
        ("000000070002", &[CreateAppointment]),
        ("000000070003", &[ChangeShortlist]),
        ("000000070004", &[ChangeShortlistAndSendForTriage]),
        ("000000070005", &[CancelReferral]),
        ("000000070006", &[CancelDirectlyBookedAppointment]),
    ]
};

async fn available_actions(
    State(ers): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions)?;
    let caller = ers.caller(&endpoints::A029, &ctx, &headers).await?;
    let pairs = query_pairs(query.as_deref());
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    for (name, value) in &pairs {
        if !matches!(name.as_str(), "focus" | "intent" | "status") {
            return Err(bad_request(format!(
                "Unknown search parameter '{name}'; A029 takes focus, intent and status"
            ))
            .into());
        }
        if name == "intent" && value != "proposal" {
            return Err(bad_request("intent must be 'proposal'").into());
        }
        if name == "status" && value != "ready" {
            return Err(bad_request("status must be 'ready'").into());
        }
    }
    let focus = get("focus").ok_or_else(|| {
        bad_request("focus is mandatory: ReferralRequest/{ubrn}/_history/{version}")
    })?;
    let (ubrn, version) = focus
        .strip_prefix("ReferralRequest/")
        .and_then(|rest| rest.split_once("/_history/"))
        .ok_or_else(|| {
            bad_request(format!(
                "focus '{focus}' must be ReferralRequest/{{ubrn}}/_history/{{version}}"
            ))
        })?;
    if get("intent").is_none() || get("status").is_none() {
        return Err(bad_request("intent=proposal and status=ready are mandatory").into());
    }
    let (found, current) = ers.repo.referral(ubrn).await?.ok_or_else(|| {
        // A029 answers everything with 400; its error table names this code.
        ErsError::new(
            Class::BadRequest,
            "REFERENCE_NOT_FOUND",
            format!("No referral with UBRN '{ubrn}'"),
        )
    })?;
    // The sandbox's scenarios name versions that differ from endpoint to endpoint; it answers
    // for any.
    if version != current.to_string() && !ers.sandbox {
        return Err(bad_request(format!(
            "focus names version {version} of referral {ubrn}; the current version is {current}"
        ))
        .into());
    }
    let scenario = SANDBOX_ACTIONS
        .iter()
        .find(|(key, _)| ers.sandbox && version == "6" && *key == ubrn);
    let (actions, focus_reference) = match scenario {
        Some((_, actions)) => (actions.to_vec(), focus.to_owned()),
        None => (
            found.actions_for(&caller).map_err(|e| {
                // A029 has no 422: a caller with no relationship is refused.
                ErsError::forbidden(e.diagnostics)
            })?,
            format!("ReferralRequest/{ubrn}/_history/{current}"),
        ),
    };
    let entries: Vec<Value> = actions
        .iter()
        .map(|action| {
            let (code, display) = action.coding();
            let id = uuid::Uuid::new_v4().to_string();
            json!({
                "fullUrl": format!("{}/Task/{id}", ers.stu3_base()),
                "resource": {
                    "resourceType": "Task",
                    "id": id,
                    "meta": {"profile": ["https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Task-1"]},
                    "status": "ready",
                    "intent": "proposal",
                    "focus": {"reference": focus_reference},
                    "code": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AvailableActionsForUser-1",
                                         "code": code, "display": display}]},
                },
                "search": {"mode": "match"},
            })
        })
        .collect();
    let bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": carehub_fhir::datetime::format_instant(now_micros()), "profile": ["http://hl7.org/fhir/STU3/StructureDefinition/Bundle"]},
        "type": "searchset",
        "link": [{"relation": "self", "url": format!("{}/Task?focus={focus_reference}&intent=proposal&status=ready", ers.stu3_base())}],
        "entry": entries,
    });
    ers.audit_read(
        &ctx,
        Interaction::Search,
        std::slice::from_ref(&focus_reference),
        Some(&found.patient),
    )
    .await?;
    Ok(fhir_json(StatusCode::OK, &bundle, None))
}

// ---------------------------------------------------------------------------------------
// R4: A030, A040, A033/A037, A035

fn searchset(self_url: String, entries: Vec<Value>) -> Value {
    let now = carehub_fhir::datetime::format_instant(now_micros());
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": now},
        "timestamp": now,
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": self_url}],
        "entry": entries,
    })
}

async fn business_functions(
    State(ers): State<Shared>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions).map_err(Failure::r4)?;
    ers.caller(&endpoints::A030, &ctx, &headers)
        .await
        .map_err(Failure::r4)?;
    if ers.sandbox {
        // The sandbox's user: a referrer at one organisation and a provider at another.
        let r4 = format!("{}/R4", ers.url);
        let role = |org: &str, functions: &[&str]| {
            let id = format!("PractitionerRole-{org}-{}", access::SANDBOX_USER);
            json!({"fullUrl": format!("{r4}/PractitionerRole/{id}"), "resource": {
                "resourceType": "PractitionerRole", "id": id,
                "meta": {"lastUpdated": carehub_fhir::datetime::format_instant(now_micros())},
                "practitioner": {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": access::SANDBOX_USER}},
                "organization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": org}},
                "code": functions.iter().map(|f| json!({"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/eRS-BusinessFunction-1", "code": f}]})).collect::<Vec<_>>(),
            }, "search": {"mode": "match"}})
        };
        let entries = vec![
            role(
                "R69",
                &["SERVICE_PROVIDER_CLINICIAN", "SERVICE_PROVIDER_ADMIN"],
            ),
            role("R68", &["REFERRING_CLINICIAN"]),
        ];
        return Ok(fhir_json(
            StatusCode::OK,
            &searchset(format!("{r4}/PractitionerRole"), entries),
            None,
        ));
    }
    let Some(user) = &ctx.platform.user else {
        return Err(Failure::from(ErsError::forbidden(
            "A030 lists a signed-in user's business functions; application-restricted access has none",
        ))
        .r4());
    };
    // One PractitionerRole per organisation, with every e-RS business function held there.
    let mut by_org: Vec<(String, Vec<String>)> = Vec::new();
    for role in &user.roles {
        let functions: Vec<String> = role
            .business_functions
            .iter()
            .filter(|f| BusinessFunction::parse(f).is_some())
            .cloned()
            .collect();
        if functions.is_empty() {
            continue;
        }
        match by_org.iter_mut().find(|(org, _)| org == &role.organisation) {
            Some((_, held)) => {
                for f in functions {
                    if !held.contains(&f) {
                        held.push(f);
                    }
                }
            }
            None => by_org.push((role.organisation.clone(), functions)),
        }
    }
    let r4 = format!("{}/R4", ers.url);
    let entries = by_org
        .iter()
        .map(|(org, functions)| {
            let id = format!("PractitionerRole-{org}-{}", user.sds_user_id);
            json!({
                "fullUrl": format!("{r4}/PractitionerRole/{id}"),
                "resource": {
                    "resourceType": "PractitionerRole",
                    "id": id,
                    "meta": {"lastUpdated": carehub_fhir::datetime::format_instant(now_micros())},
                    "practitioner": {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": user.sds_user_id}},
                    "organization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": org}},
                    "code": functions.iter().map(|f| json!({"coding": [{
                        "system": "https://fhir.nhs.uk/CodeSystem/eRS-BusinessFunction-1", "code": f}]})).collect::<Vec<_>>(),
                },
                "search": {"mode": "match"},
            })
        })
        .collect();
    Ok(fhir_json(
        StatusCode::OK,
        &searchset(format!("{r4}/PractitionerRole"), entries),
        None,
    ))
}

async fn on_behalf_of_users(
    State(ers): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions).map_err(Failure::r4)?;
    let caller = ers
        .caller(&endpoints::A040, &ctx, &headers)
        .await
        .map_err(Failure::r4)?;
    let pairs = query_pairs(query.as_deref());
    if pairs.len() != 1 || pairs[0] != ("_query".to_owned(), "onBehalfOf".to_owned()) {
        return Err(Failure::from(bad_request("A040 takes exactly _query=onBehalfOf")).r4());
    }
    let clinicians = ers
        .users_with("SERVICE_PROVIDER_CLINICIAN", &caller.organisation)
        .await
        .map_err(Failure::r4)?;
    let r4 = format!("{}/R4", ers.url);
    let entries = clinicians
        .iter()
        .map(|card| {
            json!({
                "fullUrl": format!("{r4}/Practitioner/{}", card.sds_user_id),
                "resource": {
                    "resourceType": "Practitioner",
                    "id": card.sds_user_id,
                    "meta": {"lastUpdated": carehub_fhir::datetime::format_instant(now_micros())},
                    // An object, not an array: the shape e-RS sends (a known defect of its
                    // A040), so that clients built here read the real service too.
                    "identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": card.sds_user_id},
                    "name": [{"family": card.family_name, "given": [card.given_name]}],
                },
                "search": {"mode": "match"},
            })
        })
        .collect();
    Ok(fhir_json(
        StatusCode::OK,
        &searchset(format!("{r4}/Practitioner?_query=onBehalfOf"), entries),
        None,
    ))
}

async fn read_service_r4(
    State(ers): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions).map_err(Failure::r4)?;
    ers.caller(&endpoints::A033, &ctx, &headers)
        .await
        .map_err(Failure::r4)?;
    let (found, version) = ers
        .repo
        .service(&id)
        .await
        .map_err(|e| Failure::from(e).r4())?
        .ok_or_else(|| {
            Failure::from(ErsError::not_found(format!("No healthcare service '{id}'"))).r4()
        })?;
    let mut response = fhir_json(StatusCode::OK, &found.to_r4(version), Some(version));
    if method == Method::HEAD {
        // A037: the version alone.
        *response.body_mut() = axum::body::Body::empty();
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

async fn search_services_r4(
    State(ers): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions).map_err(Failure::r4)?;
    ers.caller(&endpoints::A033, &ctx, &headers)
        .await
        .map_err(Failure::r4)?;
    let pairs = query_pairs(query.as_deref());
    let mut ids: Vec<String> = Vec::new();
    for (name, value) in &pairs {
        if name != "_id" {
            return Err(Failure::from(bad_request(format!(
                "Unknown search parameter '{name}'; A035 takes _id"
            )))
            .r4());
        }
        ids.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        );
    }
    if ids.is_empty() {
        return Err(Failure::from(bad_request(
            "_id is mandatory: one or more service ids, comma separated",
        ))
        .r4());
    }
    if ids.len() > 20 {
        return Err(Failure::from(bad_request(format!(
            "At most 20 ids may be given; {} were",
            ids.len()
        )))
        .r4());
    }
    let mut entries = Vec::new();
    for id in &ids {
        if let Some((found, version)) = ers
            .repo
            .service(id)
            .await
            .map_err(|e| Failure::from(e).r4())?
        {
            entries.push(json!({
                "fullUrl": format!("{}/R4/HealthcareService/{id}", ers.url),
                "resource": found.to_r4(version),
                "search": {"mode": "match"},
            }));
        }
    }
    Ok(fhir_json(
        StatusCode::OK,
        &searchset(
            format!("{}/R4/HealthcareService?_id={}", ers.url, ids.join(",")),
            entries,
        ),
        None,
    ))
}

// ---------------------------------------------------------------------------------------
// A013, A014, A028

async fn accept_referral(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A013, &ctx, headers).await?;
    let expected = ers.if_match(&endpoints::A013, headers)?;
    let (changed, version) = change_referral(
        ers,
        &ctx,
        ubrn,
        expected,
        "$ers.acceptReferral",
        caller,
        Change::Accept,
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &changed.to_fhir(version, &ers.stu3_base()),
        Some(version),
    ))
}

async fn reject_referral(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A014, &ctx, headers).await?;
    let expected = ers.if_match(&endpoints::A014, headers)?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let params = Params::read(
        &body,
        &[
            "rejectionReason",
            "rejectionComments",
            "appointmentCancelledInPAS",
        ],
    )?;
    let reason = params
        .coding("rejectionReason")?
        .ok_or_else(|| ErsError::missing("parameter rejectionReason"))?;
    reason.check_system(
        "rejectionReason",
        appointment::APPOINTMENT_CANCELLATION_SYSTEM,
    )?;
    params.boolean("appointmentCancelledInPAS")?;
    let change = Change::Reject {
        reason: reason.code.to_owned(),
        comment: params
            .text("rejectionComments", "String")?
            .map(str::to_owned),
    };
    let (changed, version) = change_referral(
        ers,
        &ctx,
        ubrn,
        expected,
        "$ers.rejectReferral",
        caller,
        change,
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &changed.to_fhir(version, &ers.stu3_base()),
        Some(version),
    ))
}

async fn record_review_outcome(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A028, &ctx, headers).await?;
    let expected = ers.if_match(&endpoints::A028, headers)?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let params = Params::read(
        &body,
        &[
            "reviewOutcome",
            "reviewComments",
            "reviewPriority",
            "reviewAttachmentFile",
        ],
    )?;
    let outcome = params
        .coding("reviewOutcome")?
        .ok_or_else(|| ErsError::missing("parameter reviewOutcome"))?;
    outcome.check_system("reviewOutcome", appointment::REVIEW_OUTCOME_SYSTEM)?;
    let priority = match params.coding("reviewPriority")? {
        Some(coding) => {
            coding.check_system("reviewPriority", codes::PRIORITY_SYSTEM)?;
            Some(coding.code.to_owned())
        }
        None => None,
    };
    let documents = attachment::read_documents(
        params.resources("reviewAttachmentFile")?,
        attachment::AttachmentType::Provider,
    )?;
    let files = uploaded_for(ers, ubrn, documents).await?;
    let change = Change::ReviewOutcome {
        outcome: outcome.code.to_owned(),
        comment: params
            .text("reviewComments", "String")?
            .ok_or_else(|| ErsError::missing("parameter reviewComments"))?
            .to_owned(),
        priority,
        files,
    };
    let (changed, version) = change_referral(
        ers,
        &ctx,
        ubrn,
        expected,
        "$ers.recordReviewOutcome",
        caller,
        change,
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &changed.to_fhir(version, &ers.stu3_base()),
        Some(version),
    ))
}

// ---------------------------------------------------------------------------------------
// A008

async fn fetch_worklist(
    ers: &Ers,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let mut caller = ers.caller(&endpoints::A008, &ctx, headers).await?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let request = match worklist::Request::read(&body, &caller) {
        // The official sandbox answers any list when no business function is sent; ours then
        // fetches a provider's list as the provider's clinician.
        Err(refused)
            if ers.sandbox
                && refused.class == Class::Forbidden
                && header_text(headers, access::FUNCTION_HEADER).is_none() =>
        {
            caller.function = BusinessFunction::ServiceProviderClinician;
            worklist::Request::read(&body, &caller)?
        }
        read => read?,
    };
    if caller.function == BusinessFunction::ProviderAuthorisedApplication
        && let (Some(app), Some(service)) = (&ctx.platform.app, &request.service)
    {
        // Applications may fetch a service's worklist at most twice a day, as e-RS allows.
        let day = carehub_fhir::datetime::format_instant(ers.repo.now());
        let calls = ers
            .repo
            .count_call(&format!(
                "{}.{service}.{}",
                app.id,
                day.get(..10).unwrap_or_default()
            ))
            .await?;
        if calls > 2 {
            return Err(ErsError::new(
                Class::TooManyRequests,
                "TOO_MANY_REQUESTS",
                format!("An application may fetch the worklist of service {service} at most 2 times a day; this is call {calls} today"),
            )
            .into());
        }
    }
    // The index names each list's referrals; a sandbox caller acts everywhere, so reads all.
    let all = if caller.organisation == access::EVERY_ORGANISATION {
        ers.repo.referrals().await?
    } else {
        ers.repo
            .referrals_on(request.list_code(), &caller.organisation)
            .await?
    };
    let mut held: Vec<(&Referral, i64)> = all
        .iter()
        .filter(|(r, _)| request.holds(r, &caller.organisation))
        .map(|(r, v)| (r, *v))
        .collect();
    held.sort_by(|a, b| a.0.ubrn.cmp(&b.0.ubrn));
    let list = request.to_fhir(&held, &ers.stu3_base());
    // One AuditEvent names the list and every referral it disclosed, in its query rather than
    // as indexed entities: a worklist can hold tens of thousands of referrals.
    if let Some(audit_caller) = &ctx.audit {
        let disclosed: Vec<&str> = held.iter().map(|(r, _)| r.ubrn.as_str()).collect();
        let query = format!(
            "listType={}&ubrn={}",
            request.list_code(),
            disclosed.join(",")
        );
        let record = audit::event(
            audit_caller,
            Interaction::Operation("$ers.fetchworklist", "E"),
            &ers.url,
            &[],
            &[],
            Some(&query),
        );
        audit::record(ers.repo.store(), Some(record))
            .await
            .map_err(|e| Failure::from(RepoError::Store(e)))?;
    }
    Ok(fhir_json(StatusCode::OK, &list, None))
}

// ---------------------------------------------------------------------------------------
// A015, A016, A038, A034

const COMM_RULE_HEADER: &str = "NHSD-eRS-Comm-Rule-Org";

/// The test PAS's clinics for a service: its general clinic (limited to the service's
/// `slot_limit`) and one per named clinician.
fn clinics_of(service: &Service) -> Vec<carehub_pas::Clinic> {
    let mut clinics = carehub_pas::clinics(&service.id, &service.clinicians);
    for clinic in &mut clinics {
        if clinic.clinician.is_none() {
            clinic.limit = service.slot_limit;
        }
        clinic.listed = service
            .listed_slots
            .iter()
            .filter(|listed| listed.clinician == clinic.clinician)
            .filter_map(|listed| {
                Some(carehub_pas::Slot {
                    id: listed.id.clone(),
                    schedule: clinic.schedule.clone(),
                    start: instant_micros(&listed.start)?,
                    end: instant_micros(&listed.end)?,
                })
            })
            .collect();
    }
    clinics
}

fn instant_micros(text: &str) -> Option<i64> {
    carehub_fhir::datetime::PartialDateTime::parse(text, carehub_fhir::datetime::DateKind::Instant)
        .ok()
        .map(|parsed| parsed.range().0)
}

fn pas(ers: &Ers) -> carehub_pas::Pas {
    carehub_pas::Pas::new(ers.repo.store().clone(), ers.repo.pas_key())
}

fn bad(code: &'static str, diagnostics: impl Into<String>) -> ErsError {
    ErsError::new(Class::BadRequest, code, diagnostics)
}

async fn slots(
    State(ers): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions)?;
    ers.caller(&endpoints::A015, &ctx, &headers).await?;
    // The official sandbox neither asks for nor checks the commissioning organisation.
    let commissioner = match header_text(&headers, COMM_RULE_HEADER)
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(ods) => Some(ods.to_ascii_uppercase()),
        None if ers.sandbox => None,
        None => {
            return Err(bad(
                "MISSING_HEADER",
                format!("Missing or Empty {COMM_RULE_HEADER} header."),
            )
            .into());
        }
    };
    let pairs = query_pairs(query.as_deref());
    let known = [
        "schedule.actor:HealthcareService",
        "appointmentType",
        "status",
        "_count",
        "page",
        "schedule.actor:Practitioner",
        "_include",
    ];
    if let Some((name, _)) = pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(bad(
            "INVALID_VALUE",
            format!(
                "Unknown parameter '{name}'; A015 takes {}",
                known.join(", ")
            ),
        )
        .into());
    }
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let required = |name: &'static str| {
        get(name).ok_or_else(|| bad("MISSING_PARAMETER", format!("'{name}' is mandatory")))
    };
    let service_id = required("schedule.actor:HealthcareService")?;
    let priority = required("appointmentType")?;
    if codes::priority_display(priority).is_none() {
        return Err(bad(
            "INVALID_CODE",
            format!(
                "appointmentType '{priority}' is not a priority (ROUTINE, URGENT, TWO_WEEK_WAIT)"
            ),
        )
        .into());
    }
    if required("status")? != "free" {
        return Err(bad("INVALID_VALUE", "status must be 'free'").into());
    }
    let count: usize = required("_count")?
        .parse()
        .ok()
        .filter(|c| (1..=100).contains(c))
        .ok_or_else(|| {
            bad(
                "INVALID_VALUE",
                "'_count' must be a whole number from 1 to 100",
            )
        })?;
    let page_text = required("page")?;
    let page: usize = page_text.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
        bad(
            "INVALID_VALUE",
            format!("'Page Number' ({page_text}) is invalid."),
        )
    })?;
    if let Some(include) = get("_include")
        && include != "Slot:schedule"
    {
        return Err(bad("INVALID_VALUE", "_include may only be Slot:schedule").into());
    }
    let (service, _) = ers
        .repo
        .service(service_id)
        .await?
        .ok_or_else(|| bad("REFERENCE_NOT_FOUND", format!("No service '{service_id}'")))?;
    if service.bookable != service::BookableType::DirectlyBookable {
        return Err(bad("INVALID_STATE", format!("Service {service_id} is not directly bookable: the provider arranges its appointments")).into());
    }
    if service.pas.is_none() {
        return Err(bad(
            "SERVICE_UNAVAILABLE",
            format!("Service {service_id} is not linked to a PAS: it has no slots to offer"),
        )
        .into());
    }
    if let Some(commissioner) = &commissioner
        && !service.commissioned_by.is_empty()
        && !service.commissioned_by.contains(commissioner)
    {
        return Err(bad(
            "INVALID_STATE",
            format!("Service {service_id} is not commissioned for {commissioner}"),
        )
        .into());
    }
    let mut clinics = clinics_of(&service);
    // The official sandbox looks at the named clinician only where its scenario has one (its
    // `14000`); the spec's example asks `11000` for one it does not have. Ours filters by a
    // clinician of the service, and ignores any other.
    let practitioner = get("schedule.actor:Practitioner").filter(|named| {
        !ers.sandbox
            || clinics
                .iter()
                .any(|c| c.clinician.as_deref() == Some(*named))
    });
    if let Some(practitioner) = practitioner {
        clinics.retain(|c| c.clinician.as_deref() == Some(practitioner));
        if clinics.is_empty() {
            return Err(bad(
                "REFERENCE_NOT_FOUND",
                format!("{practitioner} is not a named clinician of service {service_id}"),
            )
            .into());
        }
    }
    let now = ers.repo.now();
    let mut free = Vec::new();
    if service.priorities.iter().any(|p| p == priority) {
        let pas = pas(&ers);
        for clinic in &clinics {
            free.extend(
                pas.free_slots(clinic, now)
                    .await
                    .map_err(|e| Failure::from(RepoError::Store(e)))?,
            );
        }
    }
    free.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
    let pages = free.len().div_ceil(count).max(1);
    if page > pages {
        return Err(bad(
            "INVALID_VALUE",
            format!("'Page Number' ({page}) is invalid."),
        )
        .into());
    }
    let on_page = &free[((page - 1) * count).min(free.len())..(page * count).min(free.len())];
    let stu3 = ers.stu3_base();
    let mut entries: Vec<Value> = on_page
        .iter()
        .map(|slot| {
            json!({
                "fullUrl": format!("{stu3}/Slot/{}", slot.id),
                "resource": {
                    "resourceType": "Slot",
                    "id": slot.id,
                    "meta": {"profile": ["https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Slot-1"]},
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/alternative-slot", "value": format!("USRN-{}", slot.id)}],
                    "schedule": {"reference": format!("Schedule/{}", slot.schedule)},
                    "status": "free",
                    "start": slot.start_text(),
                    "end": slot.end_text(),
                },
                "search": {"mode": "match"},
            })
        })
        .collect();
    for clinic in clinics
        .iter()
        .filter(|c| on_page.iter().any(|s| s.schedule == c.schedule))
    {
        let mut actor =
            vec![json!({"identifier": {"system": service::SERVICE_SYSTEM, "value": service.id}})];
        if let Some(clinician) = &clinic.clinician {
            actor.push(
                json!({"identifier": {"system": service::SDS_USER_SYSTEM, "value": clinician}}),
            );
        }
        entries.push(json!({
            "fullUrl": format!("{stu3}/Schedule/{}", clinic.schedule),
            "resource": {
                "resourceType": "Schedule",
                "id": clinic.schedule,
                "meta": {"profile": ["https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Schedule-1"]},
                "identifier": [{"system": "https://fhir.nhs.uk/Id/ers-schedule", "value": clinic.schedule}],
                "actor": actor,
            },
            "search": {"mode": "include"},
        }));
    }
    let link = |p: usize| {
        let mut url = format!(
            "{stu3}/Slot?schedule.actor:HealthcareService={service_id}&appointmentType={priority}&status=free&_count={count}&page={p}"
        );
        if let Some(practitioner) = get("schedule.actor:Practitioner") {
            url.push_str(&format!("&schedule.actor:Practitioner={practitioner}"));
        }
        url
    };
    let mut links = vec![json!({"relation": "self", "url": link(page)})];
    if page < pages {
        links.push(json!({"relation": "next", "url": link(page + 1)}));
    }
    if page > 1 {
        links.push(json!({"relation": "previous", "url": link(page - 1)}));
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": carehub_fhir::datetime::format_instant(now_micros()), "profile": ["http://hl7.org/fhir/STU3/StructureDefinition/Bundle"]},
        "type": "searchset",
        "total": free.len(),
        "link": links,
        "entry": entries,
    });
    Ok(fhir_json(StatusCode::OK, &bundle, None))
}

fn same_instant(given: &str, expected: i64) -> bool {
    instant_micros(given) == Some(expected)
}

async fn create_appointment(
    State(ers): State<Shared>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let ctx = context(&extensions)?;
    let caller = ers.caller(&endpoints::A016, &ctx, &headers).await?;
    let body = match json_body(&headers, &body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let new = NewAppointment::read(&body)?;
    // The referral is named in the body, not the path: an unknown one is a 422, as A016
    // documents no 404.
    let (current, _) = ers.repo.referral(&new.ubrn).await?.ok_or_else(|| {
        ErsError::rule(
            "REFERENCE_NOT_FOUND",
            format!("incomingReferral: no referral with UBRN '{}'", new.ubrn),
        )
    })?;
    current.side_of(&caller)?;
    if new.patient != current.patient {
        return Err(ErsError::invalid(format!(
            "the patient participant {} is not the patient of referral {}",
            new.patient, new.ubrn
        ))
        .into());
    }
    let (service, _) = ers.repo.service(&new.service).await?.ok_or_else(|| {
        ErsError::rule(
            "REFERENCE_NOT_FOUND",
            format!("service {} is not in the e-RS directory", new.service),
        )
    })?;
    let directly_bookable = service.bookable == service::BookableType::DirectlyBookable;
    let now = ers.repo.now();
    let pas = pas(&ers);
    let (state, reason, slot, clinician) = match &new.request {
        appointment::Request::Book {
            slot,
            start,
            end,
            clinician,
        } => {
            if !directly_bookable {
                return Err(ErsError::rule(
                    "INAPPROPRIATE_VALUE",
                    format!("service {} is not directly bookable: send the patient's letter (A019) so they can contact the provider", service.id),
                )
                .into());
            }
            if service.pas.is_none() {
                return Err(ErsError::rule(
                    "SERVICE_UNAVAILABLE",
                    format!(
                        "service {} is not linked to a PAS; defer to the provider instead",
                        service.id
                    ),
                )
                .into());
            }
            let clinics = clinics_of(&service);
            let Some((clinic, found)) = clinics.iter().find_map(|c| Some((c, c.slot(slot)?)))
            else {
                return Err(ErsError::rule(
                    "INAPPROPRIATE_SLOT",
                    format!("slot {slot} is not a slot of service {}", service.id),
                )
                .into());
            };
            // The sandbox's numbered example slots keep their examples' dates, which do not
            // age there (as A011's pathway start does not).
            let example = ers.sandbox && clinic.listed.iter().any(|s| s.id == found.id);
            if found.start <= now && !example {
                return Err(ErsError::rule(
                    "INAPPROPRIATE_SLOT",
                    format!("slot {slot} has already started"),
                )
                .into());
            }
            if !same_instant(start, found.start) || !same_instant(end, found.end) {
                return Err(ErsError::rule(
                    "INAPPROPRIATE_SLOT",
                    format!(
                        "start and end must be those of slot {slot}: {} to {}",
                        found.start_text(),
                        found.end_text()
                    ),
                )
                .into());
            }
            match (&clinic.clinician, clinician) {
                (Some(named), Some(given)) if named == given => {}
                (Some(named), _) => {
                    return Err(ErsError::missing(&format!(
                        "participant (the allocated clinician {named}, type CON) for a slot of a named clinician's clinic"
                    ))
                    .into());
                }
                (None, Some(_)) => {
                    return Err(ErsError::rule(
                        "INAPPROPRIATE_VALUE",
                        format!("slot {slot} has no named clinician"),
                    )
                    .into());
                }
                (None, None) => {}
            }
            (
                ReferralState::Booked,
                None,
                Some(found),
                clinic.clinician.clone(),
            )
        }
        appointment::Request::Defer { reason, slot } => {
            if !directly_bookable {
                return Err(ErsError::rule("INAPPROPRIATE_VALUE", format!("service {} is not directly bookable; only bookable services defer to the provider", service.id)).into());
            }
            if reason == "NO_SLOTS_AT_SERVICE" && current.criteria.priority.as_str() != "" {
                for clinic in clinics_of(&service) {
                    if !pas
                        .free_slots(&clinic, now)
                        .await
                        .map_err(|e| Failure::from(RepoError::Store(e)))?
                        .is_empty()
                    {
                        return Err(ErsError::rule(
                            "SLOTS_CURRENTLY_AVAILABLE",
                            format!("service {} has free slots (A015): book one", service.id),
                        )
                        .into());
                    }
                }
            }
            if reason == "SLOT_NOT_AVAILABLE"
                && let Some(slot) = slot
                && !pas
                    .is_booked(slot)
                    .await
                    .map_err(|e| Failure::from(RepoError::Store(e)))?
                && clinics_of(&service)
                    .iter()
                    .any(|c| c.slot(slot).is_some_and(|s| s.start > now))
            {
                return Err(ErsError::rule(
                    "THIS_SLOT_IS_AVAILABLE",
                    format!("slot {slot} is still free: book it"),
                )
                .into());
            }
            (
                ReferralState::DeferredToProvider,
                Some(reason.clone()),
                None,
                None,
            )
        }
        appointment::Request::Triage => {
            if !service.triage {
                return Err(ErsError::rule(
                    "INAPPROPRIATE_VALUE",
                    format!("service {} is not a triage service", service.id),
                )
                .into());
            }
            (
                ReferralState::AwaitingTriage,
                Some("TRIAGE".to_owned()),
                None,
                None,
            )
        }
    };
    let created = carehub_fhir::datetime::format_instant(now);
    let slot_for_appointment = slot.clone();
    let service_for_change = service.clone();
    let comment = new.comment.clone();
    let patient = new.patient.clone();
    let ubrn = new.ubrn.clone();
    let audit_caller = ctx.audit.clone();
    let url = ers.url.clone();
    let (made, version, _, _) = ers
        .repo
        .create_appointment(
            &new.ubrn,
            ers.named_version(new.version),
            slot,
            move |referral, id| {
                referral.apply(
                    &caller,
                    Change::Appoint {
                        service: service_for_change.id.clone(),
                        appointment: id.clone(),
                        state,
                        reason: reason.clone(),
                    },
                )?;
                Ok(Appointment {
                    id,
                    ubrn,
                    referral_version: 0,
                    status: if state == ReferralState::Booked {
                        appointment::Status::Booked
                    } else {
                        appointment::Status::Proposed
                    },
                    reason: reason.map(|code| appointment::Reason {
                        system: appointment::REVIEW_REASON_SYSTEM.into(),
                        code,
                    }),
                    comment,
                    service: service_for_change.id.clone(),
                    service_name: service_for_change.name.clone(),
                    patient,
                    start: slot_for_appointment.as_ref().map(|s| s.start_text()),
                    end: slot_for_appointment.as_ref().map(|s| s.end_text()),
                    slot: slot_for_appointment.map(|s| s.id),
                    clinician,
                    created,
                })
            },
            move |referral, appointment| {
                let caller = audit_caller.as_ref()?;
                Some(audit::event(
                    caller,
                    Interaction::Operation("Appointment", "C"),
                    &url,
                    &[
                        format!("Appointment/{}", appointment.id),
                        format!("ReferralRequest/{}", referral.ubrn),
                    ],
                    &[format!(
                        "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{}",
                        referral.patient
                    )],
                    None,
                ))
            },
        )
        .await?;
    let stu3 = ers.stu3_base();
    let mut response = fhir_json(
        StatusCode::CREATED,
        &made.to_fhir(version, &stu3),
        Some(version),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("{stu3}/Appointment/{}", made.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn read_appointment(
    State(ers): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    read_appointment_at(&ers, &id, None, &headers, &extensions).await
}

async fn read_appointment_version(
    State(ers): State<Shared>,
    Path((id, version)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    read_appointment_at(&ers, &id, Some(&version), &headers, &extensions).await
}

async fn read_appointment_at(
    ers: &Ers,
    id: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A038, &ctx, headers).await?;
    let (found, current) = ers
        .repo
        .appointment(id)
        .await?
        .ok_or_else(|| ErsError::not_found(format!("No appointment '{id}'")))?;
    let (referral, _) = ers.referral(&found.ubrn).await?;
    referral.side_of(&caller)?;
    if referral.appointment.as_deref() != Some(id) && !ers.sandbox {
        return Err(ErsError::not_found(format!(
            "Appointment {id} is no longer the current appointment of referral {}",
            found.ubrn
        ))
        .into());
    }
    if let Some(asked) = version
        && asked != current.to_string()
    {
        return Err(ErsError::new(
            Class::NotFound,
            "HISTORY_NOT_SUPPORTED",
            format!(
                "Only the current version of appointment {id} can be read; it is version {current}"
            ),
        )
        .into());
    }
    ers.audit_read(
        &ctx,
        Interaction::Read,
        &[format!("Appointment/{id}")],
        Some(&found.patient),
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &found.to_fhir(current, &ers.stu3_base()),
        Some(current),
    ))
}

async fn cancel_appointment(
    State(ers): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let ctx = context(&extensions)?;
    let caller = ers.caller(&endpoints::A034, &ctx, &headers).await?;
    let expected = ers.if_match(&endpoints::A034, &headers)?;
    let body = match json_body(&headers, &body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let (reason, comment) = appointment::read_cancellation(&body, &id)?;
    let audit_caller = ctx.audit.clone();
    let url = ers.url.clone();
    let sandbox = ers.sandbox;
    let (cancelled, version) = ers
        .repo
        .cancel_appointment(
            &id,
            expected,
            move |referral, appointment| {
                let booking = appointment.status == appointment::Status::Booked
                    && referral.appointment.as_deref() == Some(appointment.id.as_str());
                if booking {
                    referral.apply(
                        &caller,
                        Change::CancelAppointment {
                            reason: reason.clone(),
                            comment: comment.clone(),
                        },
                    )?;
                } else if !sandbox {
                    return Err(ErsError::rule(
                        "INVALID_REQUEST_STATE",
                        format!(
                            "appointment {} is not a booked appointment of its referral",
                            appointment.id
                        ),
                    ));
                }
                // The official sandbox's A034 examples cancel appointments that its A038
                // scenarios show deferred, triaged or cancelled (`70003`-`70006`); the sandbox
                // cancels those as asked and leaves their referrals as they are.
                appointment.status = appointment::Status::Cancelled;
                appointment.reason = Some(appointment::Reason {
                    system: "APPOINTMENT-CANCELLATION-REASON".into(),
                    code: reason,
                });
                appointment.comment = comment;
                Ok(())
            },
            move |referral, appointment| {
                let caller = audit_caller.as_ref()?;
                Some(audit::event(
                    caller,
                    Interaction::Operation("Appointment", "U"),
                    &url,
                    &[
                        format!("Appointment/{}", appointment.id),
                        format!("ReferralRequest/{}", referral.ubrn),
                    ],
                    &[format!(
                        "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{}",
                        referral.patient
                    )],
                    None,
                ))
            },
        )
        .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &cancelled.to_fhir(version, &ers.stu3_base()),
        Some(version),
    ))
}

// ---------------------------------------------------------------------------------------
// A020, A006, A042, A012

const FILE_NAME_HEADER: &str = "NHSD-eRS-File-Name";
const REFERRAL_ID_HEADER: &str = "NHSD-eRS-Referral-ID";
/// How long a signed download URL works.
const DOWNLOAD_SECONDS: u64 = 60;

async fn upload_file(
    State(ers): State<Shared>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let ctx = context(&extensions)?;
    let caller = ers.caller(&endpoints::A020, &ctx, &headers).await?;
    let content_type = header_text(&headers, "content-type").unwrap_or("");
    let essence = attachment::media_essence(content_type);
    if !attachment::MEDIA_TYPES.iter().any(|(t, _)| *t == essence) {
        let allowed: Vec<&str> = attachment::MEDIA_TYPES.iter().map(|(t, _)| *t).collect();
        return Ok((
            Category::UnsupportedMediaType.status(),
            [(header::CONTENT_TYPE, "text/plain")],
            format!(
                "Unsupported Media Type: '{content_type}'; e-RS takes {}",
                allowed.join(", ")
            ),
        )
            .into_response());
    }
    let name = header_text(&headers, FILE_NAME_HEADER)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ErsError::missing(&format!("header {FILE_NAME_HEADER}")))?;
    attachment::check_upload(name, content_type, body.len() as u64, ers.file_size_limit)?;
    let referral = match header_text(&headers, REFERRAL_ID_HEADER)
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(ubrn) => {
            // A referral, or an advice and guidance request (for the guidance's files).
            if let Some((found, _)) = ers.repo.referral(ubrn).await? {
                found.side_of(&caller)?;
            } else if let Some((advice, _)) = ers.repo.advice(ubrn).await? {
                advice.check_relationship(&caller)?;
            } else {
                return Err(ErsError::rule(
                    "REFERENCE_NOT_FOUND",
                    format!(
                        "{REFERRAL_ID_HEADER}: no referral or advice request with UBRN '{ubrn}'"
                    ),
                )
                .into());
            }
            Some(ubrn.to_owned())
        }
        None => None,
    };
    let file = attachment::StoredFile {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        content_type: essence,
        size: body.len() as u64,
        uploaded_by: caller.user.clone().unwrap_or_default(),
        organisation: caller.organisation.clone(),
        referral,
        created: carehub_fhir::datetime::format_instant(ers.repo.now()),
    };
    let id = file.id.clone();
    let record = ers.audit_record(
        &ctx,
        Interaction::Operation("Binary", "C"),
        &[format!("Binary/{id}")],
        None,
    );
    ers.repo.put_file(file, body.to_vec(), record).await?;
    let mut response = StatusCode::CREATED.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("Binary/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The file `id` if `caller` may have it.
async fn readable_file(
    ers: &Ers,
    caller: &Caller,
    id: &str,
) -> Result<attachment::StoredFile, Failure> {
    let file = ers
        .repo
        .file(id)
        .await?
        .ok_or_else(|| ErsError::not_found(format!("No file '{id}'")))?;
    // Through the request it was sent with, or the referral it is attached to (a converted
    // advice request keeps its UBRN, so both may hold files).
    let mut on_referral = false;
    if let Some(ubrn) = &file.referral {
        if let Some((advice, _)) = ers.repo.advice(ubrn).await? {
            on_referral |= advice.check_relationship(caller).is_ok()
                && advice
                    .messages
                    .iter()
                    .flat_map(|m| &m.attachments)
                    .any(|a| a.file.id == file.id);
        }
        if let Some((referral, _)) = ers.repo.referral(ubrn).await? {
            on_referral |= referral.side_of(caller).is_ok()
                && referral
                    .letters
                    .iter()
                    .chain(&referral.provider_files)
                    .any(|l| l.file.id == file.id);
        }
    }
    if !file.readable_by(caller, on_referral) {
        return Err(ErsError::rule(
            "NO_RELATIONSHIP",
            format!(
                "file {id} is not attached to a referral {} has a relationship with",
                caller.organisation
            ),
        )
        .into());
    }
    Ok(file)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn signature(key: &[u8], id: &str, expires: u64) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    hex(aws_lc_rs::hmac::sign(&key, format!("{id}\n{expires}").as_bytes()).as_ref())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A042: a 307 to a signed URL that works for a minute.
async fn download_r4(
    State(ers): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions).map_err(Failure::r4)?;
    let caller = ers
        .caller(&endpoints::A042, &ctx, &headers)
        .await
        .map_err(Failure::r4)?;
    if !attachment::is_attachment_id(&id) {
        return Err(Failure::from(bad(
            "INVALID_VALUE",
            format!("'{id}' is not an attachment id (a UUID from A020, or att-{{n}}-{{n}})"),
        ))
        .r4());
    }
    let file = readable_file(&ers, &caller, &id)
        .await
        .map_err(Failure::r4)?;
    let key = ers
        .repo
        .signing_key()
        .await
        .map_err(|e| Failure::from(e).r4())?;
    let expires = now_secs() + DOWNLOAD_SECONDS;
    let url = format!(
        "{}/{}?expires={expires}&signature={}",
        ers.object_store,
        file.id,
        signature(&key, &file.id, expires)
    );
    ers.audit_read(&ctx, Interaction::Read, &[format!("Binary/{id}")], None)
        .await
        .map_err(Failure::r4)?;
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(location) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn file_response(file: &attachment::StoredFile, bytes: Vec<u8>) -> Response {
    // RFC 6266: an ASCII fallback and the UTF-8 name, percent-encoded.
    let ascii: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded =
        percent_encoding::utf8_percent_encode(&file.name, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, file.content_type.clone()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// The object store: a file, for a URL signed within the last minute.
async fn object_store(
    State(ers): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let refused = |why: &str| {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain")],
            why.to_owned(),
        )
            .into_response()
    };
    let (Some(expires), Some(given)) = (
        get("expires").and_then(|e| e.parse::<u64>().ok()),
        get("signature"),
    ) else {
        return refused("This URL is not signed; ask e-RS for the file again (A042)");
    };
    let key = match ers.repo.signing_key().await {
        Ok(key) => key,
        Err(err) => return fault(err).into_response(),
    };
    let expected = signature(&key, &id, expires);
    let matches = expected.len() == given.len()
        && aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes())
            .is_ok();
    if !matches {
        return refused("The signature of this URL is not valid");
    }
    if now_secs() > expires {
        return refused("This URL has expired; ask e-RS for the file again (A042)");
    }
    let (file, bytes) = match (ers.repo.file(&id).await, ers.repo.file_data(&id).await) {
        (Ok(Some(file)), Ok(Some(bytes))) => (file, bytes),
        (Ok(_), Ok(_)) => {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain")],
                "No such object",
            )
                .into_response();
        }
        (Err(err), _) | (_, Err(err)) => return Failure::from(err).into_response(),
    };
    file_response(&file, bytes)
}

/// A006 (deprecated since February 2025, retirement planned for February 2026): the file
/// itself, up to 5 MB.
async fn download_stu3(
    State(ers): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let successor = format!("{}/R4/Binary/{id}", ers.url);
    let response = download_stu3_file(&ers, &id, &headers, &extensions)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    deprecated(response, Some("2025-02-01"), Some("2026-02-01"), &successor)
}

async fn download_stu3_file(
    ers: &Ers,
    id: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A006, &ctx, headers).await?;
    let file = readable_file(ers, &caller, id).await?;
    if file.size > 5 * 1024 * 1024 {
        return Err(ErsError::rule(
            "FILE_SIZE_ERROR",
            "files over 5 MB are fetched with A042 (GET /R4/Binary/{id})",
        )
        .into());
    }
    let bytes = ers
        .repo
        .file_data(id)
        .await?
        .ok_or_else(|| ErsError::not_found(format!("No file '{id}'")))?;
    ers.audit_read(&ctx, Interaction::Read, &[format!("Binary/{id}")], None)
        .await?;
    Ok(file_response(&file, bytes))
}

/// The stored files of `letters`, each of which must have been uploaded (A020) for referral
/// (or advice request) `ubrn`.
async fn uploaded_for(
    ers: &Ers,
    ubrn: &str,
    letters: Vec<attachment::Letter>,
) -> Result<Vec<attachment::Attached>, Failure> {
    // The official sandbox's examples name one file in several records' requests (A012's
    // second file is A044's); the sandbox lets any file it holds go with any of them.
    stored_files(ers, letters, |file| {
        (ers.sandbox || file.referral.as_deref() == Some(ubrn))
            .then_some(())
            .ok_or_else(|| {
            format!(
                "file {} was not uploaded for referral {ubrn}: upload it with the {REFERRAL_ID_HEADER} header",
                file.id
            )
        })
    })
    .await
}

/// The stored files of `letters` for a request that does not exist yet (A044): each must have
/// been uploaded (A020) by the caller's organisation without a referral id.
async fn unattached_files(
    ers: &Ers,
    caller: &Caller,
    letters: Vec<attachment::Letter>,
) -> Result<Vec<attachment::Attached>, Failure> {
    stored_files(ers, letters, |file| {
        (caller.acts_at(&file.organisation) && file.referral.is_none())
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "file {} cannot go with a new advice request: upload it with A020 from {}, without the {REFERRAL_ID_HEADER} header",
                    file.id, caller.organisation
                )
            })
    })
    .await
}

/// The stored files `letters` name, each passing `fits` (`INAPPROPRIATE_VALUE` with its reason
/// otherwise); a file never uploaded is `REFERENCE_NOT_FOUND`.
async fn stored_files(
    ers: &Ers,
    letters: Vec<attachment::Letter>,
    fits: impl Fn(&attachment::StoredFile) -> Result<(), String>,
) -> Result<Vec<attachment::Attached>, Failure> {
    let mut attached = Vec::with_capacity(letters.len());
    for letter in letters {
        let file = ers.repo.file(&letter.file).await?.ok_or_else(|| {
            ErsError::rule(
                "REFERENCE_NOT_FOUND",
                format!("No file Binary/{} (upload it with A020 first)", letter.file),
            )
        })?;
        fits(&file).map_err(|why| ErsError::rule("INAPPROPRIATE_VALUE", why))?;
        attached.push(attachment::Attached {
            file,
            description: letter.description,
            indexed: letter.indexed,
        });
    }
    Ok(attached)
}

async fn maintain_letter(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A012, &ctx, headers).await?;
    let expected = ers.if_match(&endpoints::A012, headers)?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let letters = attachment::read_letters(&body)?;
    let attached = uploaded_for(ers, ubrn, letters).await?;
    let (changed, version) = change_referral(
        ers,
        &ctx,
        ubrn,
        expected,
        "$ers.maintainReferralLetter",
        caller,
        Change::Letters(attached),
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &changed.to_fhir(version, &ers.stu3_base()),
        Some(version),
    ))
}

// ---------------------------------------------------------------------------------------
// A019, A007

fn pdf_response(file_name: &str, bytes: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// `20261201094500`, for file names.
fn stamp() -> String {
    let text = carehub_fhir::datetime::format_instant(now_micros());
    text.chars().filter(char::is_ascii_digit).take(14).collect()
}

async fn patient_letter(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A019, &ctx, headers).await?;
    let (referral, _) = ers.referral(ubrn).await?;
    referral.side_of(&caller)?;
    let appointment = match &referral.appointment {
        Some(id) => ers.repo.appointment(id).await?.map(|(a, _)| a),
        None => None,
    };
    let directory = ers.directory().await?;
    let lines =
        crate::domain::letters::patient_letter(&referral, appointment.as_ref(), &directory)?;
    let pdf = crate::domain::pdf::document(&format!("Referral {ubrn}"), &lines);
    ers.audit_read(
        &ctx,
        Interaction::Operation("$ers.generatePatientLetter", "R"),
        &[format!("ReferralRequest/{ubrn}")],
        Some(&referral.patient),
    )
    .await?;
    Ok(pdf_response(
        &format!("{ubrn}_Appointment_Confirmation_Summary_{}.pdf", stamp()),
        pdf,
    ))
}

async fn clinical_information(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A007, &ctx, headers).await?;
    let (referral, _) = ers.referral(ubrn).await?;
    referral.side_of(&caller)?;
    let pdf = crate::domain::pdf::document(
        &format!("Clinical information {ubrn}"),
        &crate::domain::letters::clinical_information(&referral),
    );
    ers.audit_read(
        &ctx,
        Interaction::Operation("$ers.generateCRI", "R"),
        &[format!("ReferralRequest/{ubrn}")],
        Some(&referral.patient),
    )
    .await?;
    Ok(pdf_response(
        &format!("{ubrn}_Clinical_Information_Summary_{}.pdf", stamp()),
        pdf,
    ))
}

// ---------------------------------------------------------------------------------------
// Advice and guidance: A044, A023, A024, A025, A026, A027, A043, and A041

use crate::domain::advice::{self, AdviceRequest};

async fn advice_type_operation(
    State(ers): State<Shared>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    match operation.as_str() {
        "$ers.createAdviceAndGuidance" => create_advice(&ers, &headers, &extensions, &body).await,
        "$ers.fetchworklist" => advice_worklist(&ers, &headers, &extensions, &body).await,
        _ => Ok(unknown_endpoint(
            Method::POST,
            format!("/STU3/CommunicationRequest/{operation}")
                .parse()
                .unwrap_or_default(),
        )
        .await),
    }
}

async fn advice_operation(
    State(ers): State<Shared>,
    Path((ubrn, operation)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    match operation.as_str() {
        "$ers.sendCommunicationToRequester" => {
            respond_to_advice(&ers, &ubrn, &headers, &extensions, &body).await
        }
        "$ers.generateCRI" => advice_overview(&ers, &ubrn, &headers, &extensions).await,
        _ => Ok(unknown_endpoint(
            Method::POST,
            format!("/STU3/CommunicationRequest/{ubrn}/{operation}")
                .parse()
                .unwrap_or_default(),
        )
        .await),
    }
}

fn advice_audit(
    ctx: &Context,
    url: String,
    operation: &'static str,
    action: &'static str,
) -> impl FnOnce(&AdviceRequest) -> AuditRecord + Send + 'static {
    let audit_caller = ctx.audit.clone();
    move |advice| {
        let caller = audit_caller.as_ref()?;
        Some(audit::event(
            caller,
            Interaction::Operation(operation, action),
            &url,
            &[format!("CommunicationRequest/{}", advice.ubrn)],
            &[format!(
                "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{}",
                advice.patient
            )],
            None,
        ))
    }
}

async fn create_advice(
    ers: &Ers,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A044, &ctx, headers).await?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let mut new = advice::NewAdvice::read(&body)?;
    ers.trace_patient(&new.patient).await?;
    let clinicians = ers.referring_clinicians_for(&caller).await?;
    let clinician =
        referral::referring_clinician(&caller, new.referring_clinician.as_deref(), |user, _| {
            clinicians.iter().any(|c| c == user)
        })?;
    let directory = ers.directory().await?;
    let commissioner = caller.organisation.clone();
    let chosen = referral::check_shortlist(std::slice::from_ref(&new.service), &directory, |s| {
        service::mismatch(
            s,
            &new.criteria,
            RequestType::Advice,
            Some(&commissioner),
            None,
        )
    })?;
    let service = chosen[0].clone();
    let attachments = unattached_files(ers, &caller, std::mem::take(&mut new.files)).await?;
    let now = carehub_fhir::datetime::format_instant(ers.repo.now());
    let (created, version) = ers
        .repo
        .create_advice(
            move |ubrn| {
                AdviceRequest::create(ubrn, new, &service, &caller, clinician, attachments, now)
            },
            advice_audit(&ctx, ers.url.clone(), "$ers.createAdviceAndGuidance", "C"),
        )
        .await?;
    let stu3 = ers.stu3_base();
    let parameters = json!({
        "resourceType": "Parameters",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-CreateAdviceAndGuidance-Response-Parameters-1"]},
        "parameter": [
            {"name": "createdCommunicationRequest", "resource": created.to_fhir(version, &stu3)},
            {"name": "createdCommunication", "resource": created.communication(&created.messages[0], version, true, &stu3)},
        ],
    });
    // As e-RS answers A044: 200, not 201.
    Ok(fhir_json(StatusCode::OK, &parameters, Some(version)))
}

async fn advice_worklist(
    ers: &Ers,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A023, &ctx, headers).await?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let params = Params::read(&body, &["listType", "service", "specialty"])?;
    let list = params
        .value("listType", "CodeableConcept")?
        .and_then(|v| v.pointer("/coding/0"))
        .ok_or_else(|| ErsError::missing("parameter listType"))?;
    let list = crate::domain::params::Coding::read(list, "listType")?;
    list.check_system(
        "listType",
        "https://fhir.nhs.uk/STU3/CodeSystem/eRS-CommunicationListSelector-1",
    )?;
    if list.code != "ADVICE_AND_GUIDANCE_REQUESTS" {
        return Err(ErsError::invalid_code(
            "listType",
            list.code,
            &["ADVICE_AND_GUIDANCE_REQUESTS"],
        )
        .into());
    }
    let service = params.identifier("service")?.map(|(_, id)| id.to_owned());
    let specialty = params
        .value("specialty", "CodeableConcept")?
        .and_then(|v| v.pointer("/coding/0/code"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let all = ers.repo.advices_awaiting(&caller.organisation).await?;
    let mut held: Vec<&(AdviceRequest, i64)> = all
        .iter()
        .filter(|(a, _)| {
            caller.acts_at(&a.provider)
                && a.category == advice::Category::ProviderResponseRequired
                && service.as_ref().is_none_or(|s| &a.service == s)
                && specialty
                    .as_ref()
                    .is_none_or(|s| a.criteria.specialty.as_ref() == Some(s))
        })
        .collect();
    held.sort_by(|a, b| a.0.ubrn.cmp(&b.0.ubrn));
    let stu3 = ers.stu3_base();
    let list = json!({
        "resourceType": "List",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-FetchWorklist-List-1"]},
        "status": "current",
        "mode": "snapshot",
        "entry": held.iter().map(|(a, v)| a.worklist_entry(*v, &stu3)).collect::<Vec<_>>(),
    });
    if let Some(audit_caller) = &ctx.audit {
        let disclosed: Vec<&str> = held.iter().map(|(a, _)| a.ubrn.as_str()).collect();
        let query = format!(
            "listType=ADVICE_AND_GUIDANCE_REQUESTS&ubrn={}",
            disclosed.join(",")
        );
        let record = audit::event(
            audit_caller,
            Interaction::Operation("$ers.fetchworklist", "E"),
            &ers.url,
            &[],
            &[],
            Some(&query),
        );
        audit::record(ers.repo.store(), Some(record))
            .await
            .map_err(|e| Failure::from(RepoError::Store(e)))?;
    }
    Ok(fhir_json(StatusCode::OK, &list, None))
}

/// The advice request `ubrn` for `caller`: 404 if unknown, `INVALID_REQUEST_TYPE` if the UBRN is
/// a referral's, `NO_RELATIONSHIP` if the caller is on neither side.
async fn advice_for(
    ers: &Ers,
    caller: &Caller,
    ubrn: &str,
) -> Result<(AdviceRequest, i64), Failure> {
    let Some((found, version)) = ers.repo.advice(ubrn).await? else {
        if ers.repo.referral(ubrn).await?.is_some() {
            return Err(ErsError::rule(
                "INVALID_REQUEST_TYPE",
                format!("{ubrn} is a referral, not an advice and guidance request"),
            )
            .into());
        }
        return Err(ErsError::not_found(format!(
            "No advice and guidance request with UBRN '{ubrn}'"
        ))
        .into());
    };
    found.check_relationship(caller)?;
    Ok((found, version))
}

async fn read_advice(
    State(ers): State<Shared>,
    Path(ubrn): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    read_advice_at(&ers, &ubrn, None, &headers, &extensions).await
}

async fn read_advice_version(
    State(ers): State<Shared>,
    Path((ubrn, version)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    read_advice_at(&ers, &ubrn, Some(&version), &headers, &extensions).await
}

async fn read_advice_at(
    ers: &Ers,
    ubrn: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A024, &ctx, headers).await?;
    let (found, current) = advice_for(ers, &caller, ubrn).await?;
    if let Some(asked) = version
        && asked != current.to_string()
    {
        return Err(ErsError::new(
            Class::NotFound,
            "HISTORY_NOT_SUPPORTED",
            format!("Only the current version of advice request {ubrn} can be read; it is version {current}"),
        )
        .into());
    }
    ers.audit_read(
        &ctx,
        Interaction::Read,
        &[format!("CommunicationRequest/{ubrn}")],
        Some(&found.patient),
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &found.to_fhir(current, &ers.stu3_base()),
        Some(current),
    ))
}

async fn conversation(
    State(ers): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions)?;
    let caller = ers.caller(&endpoints::A024, &ctx, &headers).await?;
    let pairs = query_pairs(query.as_deref());
    let mut based_on = None;
    let mut include_roles = false;
    for (name, value) in &pairs {
        match name.as_str() {
            "based-on" => based_on = Some(value.clone()),
            "_include" => match value.as_str() {
                "Communication:requester-practitionerrole:PractitionerRole"
                | "Communication:sender-practitionerrole:PractionerRole"
                | "Communication:sender-practitionerrole:PractitionerRole" => include_roles = true,
                "Communication:content-reference:DocumentReference" => {}
                other => {
                    return Err(bad(
                        "INVALID_VALUE",
                        format!("_include '{other}' is not supported"),
                    )
                    .into());
                }
            },
            other => {
                return Err(bad(
                    "INVALID_VALUE",
                    format!("Unknown parameter '{other}'; A025 takes based-on and _include"),
                )
                .into());
            }
        }
    }
    let based_on = based_on.ok_or_else(|| {
        bad(
            "MISSING_PARAMETER",
            "based-on is mandatory: CommunicationRequest/{ubrn}/_history/{version}",
        )
    })?;
    let (ubrn, version) = based_on
        .strip_prefix("CommunicationRequest/")
        .and_then(|rest| rest.split_once("/_history/"))
        .ok_or_else(|| bad("INVALID_VALUE", format!("based-on '{based_on}' must be CommunicationRequest/{{ubrn}}/_history/{{version}}")))?;
    let (found, current) = advice_for(&ers, &caller, ubrn)
        .await
        .map_err(|mut failure| {
            // A025 answers these as 400s.
            if failure.error.class == Class::Unprocessable {
                failure.error.class = Class::BadRequest;
            }
            failure
        })?;
    if version != current.to_string() && !ers.sandbox {
        return Err(ErsError::not_found(format!(
            "advice request {ubrn} is at version {current}, not {version}"
        ))
        .into());
    }
    let stu3 = ers.stu3_base();
    let mut entries: Vec<Value> = found
        .messages
        .iter()
        .map(|m| {
            json!({"fullUrl": format!("{stu3}/Communication/{}", m.id),
                   "resource": found.communication(m, current, false, &stu3), "search": {"mode": "match"}})
        })
        .collect();
    let total = entries.len();
    if include_roles {
        entries.extend(found.roles().into_iter().map(|role| {
            json!({"fullUrl": format!("{stu3}/PractitionerRole/{}", role["id"].as_str().unwrap_or_default()),
                   "resource": role, "search": {"mode": "include"}})
        }));
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": carehub_fhir::datetime::format_instant(now_micros()), "profile": ["http://hl7.org/fhir/STU3/StructureDefinition/Bundle"]},
        "type": "searchset",
        "total": total,
        "link": [{"relation": "self", "url": format!("{stu3}/Communication?based-on={based_on}")}],
        "entry": entries,
    });
    ers.audit_read(
        &ctx,
        Interaction::Search,
        &[format!("CommunicationRequest/{ubrn}")],
        Some(&found.patient),
    )
    .await?;
    Ok(fhir_json(StatusCode::OK, &bundle, None))
}

async fn respond_to_advice(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A026, &ctx, headers).await?;
    let expected = ers.if_match(&endpoints::A026, headers)?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let mut response = advice::Response::read(&body)?;
    advice_for(ers, &caller, ubrn).await?;
    let attachments = uploaded_for(ers, ubrn, std::mem::take(&mut response.files)).await?;
    let sandbox = ers.sandbox;
    let now = carehub_fhir::datetime::format_instant(ers.repo.now());
    let (updated, version, _) = ers
        .repo
        .update_advice(
            ubrn,
            expected,
            move |advice| {
                if sandbox {
                    advice.stand_in_for_provider(false);
                }
                advice
                    .respond(&caller, response, attachments, now)
                    .map(|()| None)
            },
            advice_audit(
                &ctx,
                ers.url.clone(),
                "$ers.sendCommunicationToRequester",
                "U",
            ),
        )
        .await?;
    let stu3 = ers.stu3_base();
    let last = updated
        .messages
        .last()
        .ok_or_else(|| fault("an answered advice request has no messages"))?;
    let parameters = json!({
        "resourceType": "Parameters",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-SendCommunicationToRequester-Response-Parameters-1"]},
        "parameter": [
            {"name": "updatedCommunicationRequest", "resource": updated.to_fhir(version, &stu3)},
            {"name": "createdCommunication", "resource": updated.communication(last, version, true, &stu3)},
        ],
    });
    Ok(fhir_json(StatusCode::OK, &parameters, Some(version)))
}

async fn convert_advice(
    ers: &Ers,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A027, &ctx, headers).await?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let mut conversion = advice::Conversion::read(&body)?;
    advice_for(ers, &caller, &conversion.ubrn).await?;
    // Files uploaded for the request go with the guidance, or to the referral it becomes (which
    // keeps its UBRN).
    let guidance_files = uploaded_for(
        ers,
        &conversion.ubrn,
        std::mem::take(&mut conversion.guidance_files),
    )
    .await?;
    let review_files = uploaded_for(
        ers,
        &conversion.ubrn,
        std::mem::take(&mut conversion.review_files),
    )
    .await?;
    let now = carehub_fhir::datetime::format_instant(ers.repo.now());
    let ubrn = conversion.ubrn.clone();
    let expected = ers.named_version(conversion.version);
    let sandbox = ers.sandbox;
    let (_, _, created) = ers
        .repo
        .update_advice(
            &ubrn,
            expected,
            move |advice| {
                if sandbox {
                    advice.stand_in_for_provider(true);
                }
                advice.convert(&caller, &conversion, guidance_files, now)?;
                Ok(Some(advice::referral_from(
                    advice,
                    &conversion,
                    &caller,
                    review_files,
                )))
            },
            advice_audit(
                &ctx,
                ers.url.clone(),
                "$ers.createFromCommunicationRequestActionLater",
                "C",
            ),
        )
        .await?;
    let (referral, version) = created.ok_or_else(|| fault("a conversion made no referral"))?;
    let stu3 = ers.stu3_base();
    let mut response = fhir_json(
        StatusCode::CREATED,
        &referral.to_fhir(version, &stu3),
        Some(version),
    );
    if let Ok(location) =
        HeaderValue::from_str(&format!("{stu3}/ReferralRequest/{}", referral.ubrn))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn advice_overview(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A024, &ctx, headers).await?;
    let (found, _) = advice_for(ers, &caller, ubrn).await?;
    let mut lines = vec![
        crate::domain::pdf::Line::Heading("Advice and guidance".into()),
        crate::domain::pdf::Line::Gap,
        crate::domain::pdf::Line::Text(format!("UBRN: {}", found.ubrn)),
        crate::domain::pdf::Line::Text(format!("Patient NHS number: {}", found.patient)),
        crate::domain::pdf::Line::Text(format!(
            "Service: {} ({})",
            found.service_name, found.service
        )),
        crate::domain::pdf::Line::Text(format!(
            "Priority: {}",
            codes::priority_display(&found.priority).unwrap_or(&found.priority)
        )),
        crate::domain::pdf::Line::Gap,
        crate::domain::pdf::Line::Heading("Conversation".into()),
    ];
    for message in &found.messages {
        let who = match message.sent_by {
            advice::SentBy::Requester => "Referrer",
            advice::SentBy::Responder => "Provider",
        };
        lines.push(crate::domain::pdf::Line::Text(format!(
            "{who} ({}), {}:",
            message.author.user, message.sent
        )));
        lines.push(crate::domain::pdf::Line::Text(message.text.clone()));
        lines.push(crate::domain::pdf::Line::Gap);
    }
    let pdf = crate::domain::pdf::document(&format!("Advice and guidance {ubrn}"), &lines);
    ers.audit_read(
        &ctx,
        Interaction::Operation("$ers.generateCRI", "R"),
        &[format!("CommunicationRequest/{ubrn}")],
        Some(&found.patient),
    )
    .await?;
    Ok(pdf_response(
        &format!("{ubrn}_Advice_And_Guidance_{}.pdf", stamp()),
        pdf,
    ))
}

/// A041: the ServiceRequests (referral, advice request, or both) behind a UBRN.
async fn service_requests(
    State(ers): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Answer {
    let ctx = context(&extensions).map_err(Failure::r4)?;
    let caller = ers
        .caller(&endpoints::A041, &ctx, &headers)
        .await
        .map_err(Failure::r4)?;
    let pairs = query_pairs(query.as_deref());
    let identifier =
        match pairs.as_slice() {
            [(name, value)] if name == "identifier" => value.clone(),
            _ => return Err(Failure::from(bad_request(
                "A041 takes exactly one parameter, identifier=[https://fhir.nhs.uk/Id/UBRN|]{ubrn}",
            ))
            .r4()),
        };
    let ubrn = match identifier.split_once('|') {
        Some((referral::UBRN_SYSTEM, ubrn)) => ubrn.to_owned(),
        Some((system, _)) => {
            return Err(Failure::from(bad_request(format!(
                "identifier system must be {}, not '{system}'",
                referral::UBRN_SYSTEM
            )))
            .r4());
        }
        None => identifier.clone(),
    };
    if ubrn.len() != 12 || !ubrn.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Failure::from(bad_request(format!("'{ubrn}' is not a UBRN (12 digits)"))).r4());
    }
    let r4 = format!("{}/R4", ers.url);
    let mut entries = Vec::new();
    // A referral is categorised `referral`; an advice request is a `request` coded
    // `advice-and-guidance`.
    let service_request = |id: &str, version: i64, status: &str, code: &str, patient: &str| {
        let mut resource = json!({
            "resourceType": "ServiceRequest",
            "id": id,
            "meta": {"versionId": version.to_string()},
            "identifier": [{"system": referral::UBRN_SYSTEM, "value": ubrn}],
            "status": status,
            "intent": "order",
            "category": [{"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/message-category-servicerequest",
                "code": if code == "referral" { "referral" } else { "request" }}]}],
            "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": patient}},
        });
        if code != "referral" {
            resource["code"] = json!({"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/servicerequest-code", "code": code}]});
        }
        json!({"fullUrl": format!("{r4}/ServiceRequest/{id}"), "resource": resource, "search": {"mode": "match"}})
    };
    // The official sandbox's A041 scenarios say which of a UBRN's records it finds, whatever
    // its A005 and A024 say of them: (UBRN, the advice request, the referral).
    const SANDBOX_SERVICE_REQUESTS: [(&str, bool, bool); 4] = [
        ("000000070000", false, true),
        ("000000070001", true, false),
        ("000000070002", true, true),
        ("000000070003", false, false),
    ];
    let scenario = SANDBOX_SERVICE_REQUESTS
        .iter()
        .find(|(key, _, _)| ers.sandbox && *key == ubrn);
    let (with_advice, with_referral) = scenario.map_or((true, true), |(_, a, r)| (*a, *r));
    let mut patient = None;
    if with_advice
        && let Some((advice, version)) = ers
            .repo
            .advice(&ubrn)
            .await
            .map_err(|e| Failure::from(e).r4())?
        && advice.check_relationship(&caller).is_ok()
    {
        let status = if advice.category == advice::Category::AdviceConverted {
            "completed"
        } else {
            "active"
        };
        entries.push(service_request(
            &advice.request_id,
            version,
            status,
            "advice-and-guidance",
            &advice.patient,
        ));
        patient = Some(advice.patient.clone());
    }
    if with_referral
        && let Some((found, version)) = ers
            .repo
            .referral(&ubrn)
            .await
            .map_err(|e| Failure::from(e).r4())?
        && found.side_of(&caller).is_ok()
    {
        let status = if found.state == ReferralState::CancelledReferral {
            "revoked"
        } else {
            "active"
        };
        entries.push(service_request(
            &found.request_id,
            version,
            status,
            "referral",
            &found.patient,
        ));
        patient = Some(found.patient.clone());
    }
    if entries.is_empty() && ers.sandbox && scenario.is_none() {
        // The official sandbox answers a UBRN none of its scenarios holds with 400.
        return Err(Failure::from(ErsError::new(
            Class::BadRequest,
            "SANDBOX_ERROR",
            format!("No sandbox scenario matches this request: no referral or advice request has UBRN {ubrn}"),
        ))
        .r4());
    }
    let encoded =
        percent_encoding::utf8_percent_encode(&identifier, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let now = carehub_fhir::datetime::format_instant(ers.repo.now());
    let bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": now},
        "timestamp": now,
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": format!("{r4}/ServiceRequest?identifier={encoded}")}],
        "entry": entries,
    });
    ers.audit_read(
        &ctx,
        Interaction::Search,
        &[format!("ServiceRequest?identifier={ubrn}")],
        patient.as_deref(),
    )
    .await
    .map_err(Failure::r4)?;
    Ok(fhir_json(StatusCode::OK, &bundle, None))
}

// ---------------------------------------------------------------------------------------
// Deprecated endpoints (A006, A021, A032) and A022

/// Marks a deprecated endpoint's answer: `Deprecation` and `Sunset` where the dates are
/// published, and a `Link` to the endpoint that replaces it.
fn deprecated(
    mut response: Response,
    since: Option<&str>,
    sunset: Option<&str>,
    successor: &str,
) -> Response {
    let mut headers =
        carehub_gateway::deprecation_headers(since.unwrap_or(""), sunset.unwrap_or(""), None);
    headers.push(("link", format!("<{successor}>; rel=\"successor-version\"")));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

async fn action_later(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A022, &ctx, headers).await?;
    let expected = ers.if_match(&endpoints::A022, headers)?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let params = Params::read(
        &body,
        &[
            "comments",
            "priority",
            "appointmentCancelledInPAS",
            "providerAttachmentFile",
        ],
    )?;
    let comment = params
        .text("comments", "String")?
        .ok_or_else(|| ErsError::missing("parameter comments"))?
        .to_owned();
    let priority = match params.coding("priority")? {
        Some(coding) => {
            coding.check_system("priority", codes::PRIORITY_SYSTEM)?;
            Some(coding.code.to_owned())
        }
        None => None,
    };
    params.boolean("appointmentCancelledInPAS")?;
    let documents = attachment::read_documents(
        params.resources("providerAttachmentFile")?,
        attachment::AttachmentType::Provider,
    )?;
    let files = uploaded_for(ers, ubrn, documents).await?;
    let (changed, version) = change_referral(
        ers,
        &ctx,
        ubrn,
        expected,
        "$ers.cancelAppointmentActionLater",
        caller,
        Change::ActionLater {
            comment,
            priority,
            files,
        },
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &changed.to_fhir(version, &ers.stu3_base()),
        Some(version),
    ))
}

/// The one triage service of a deprecated send-for-triage shortlist.
fn one_triage_service<'d>(
    services: &[String],
    directory: &'d [Service],
) -> Result<&'d Service, ErsError> {
    let [id] = services else {
        return Err(ErsError::rule(
            "INAPPROPRIATE_VALUE",
            "to send for triage the shortlist holds exactly one triage service",
        ));
    };
    directory
        .iter()
        .find(|s| &s.id == id && s.triage)
        .ok_or_else(|| {
            ErsError::rule(
                "INAPPROPRIATE_VALUE",
                format!("service {id} is not a triage service"),
            )
        })
}

fn triage_appointment(
    id: String,
    referral: &Referral,
    service: &Service,
    now: String,
) -> Appointment {
    Appointment {
        id,
        ubrn: referral.ubrn.clone(),
        referral_version: 0,
        status: appointment::Status::Proposed,
        reason: Some(appointment::Reason {
            system: appointment::REVIEW_REASON_SYSTEM.into(),
            code: "TRIAGE".into(),
        }),
        comment: None,
        service: service.id.clone(),
        service_name: service.name.clone(),
        patient: referral.patient.clone(),
        slot: None,
        start: None,
        end: None,
        clinician: None,
        created: now,
    }
}

fn appointment_audit(
    ctx: &Context,
    url: String,
    operation: &'static str,
) -> impl FnOnce(&Referral, &Appointment) -> AuditRecord + Send + 'static {
    let audit_caller = ctx.audit.clone();
    move |referral, appointment| {
        let caller = audit_caller.as_ref()?;
        Some(audit::event(
            caller,
            Interaction::Operation(operation, "C"),
            &url,
            &[
                format!("ReferralRequest/{}", referral.ubrn),
                format!("Appointment/{}", appointment.id),
            ],
            &[format!(
                "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{}",
                referral.patient
            )],
            None,
        ))
    }
}

/// A021 (deprecated): A011 and A016's send-to-triage at once.
async fn create_and_send_for_triage(
    ers: &Ers,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A021, &ctx, headers).await?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let new = NewReferral::read(&body, (!ers.sandbox).then(|| ers.repo.now()))?;
    ers.trace_patient(&new.patient).await?;
    let clinicians = ers.referring_clinicians_for(&caller).await?;
    let clinician =
        referral::referring_clinician(&caller, new.referring_clinician.as_deref(), |user, _| {
            clinicians.iter().any(|c| c == user)
        })?;
    let directory = ers.directory().await?;
    let service = one_triage_service(&new.services, &directory)?.clone();
    let commissioner = caller.organisation.clone();
    referral::check_shortlist(&new.services, &directory, |s| {
        service::mismatch(
            s,
            &new.criteria,
            RequestType::Appointment,
            Some(&commissioner),
            None,
        )
    })?;
    let now = carehub_fhir::datetime::format_instant(ers.repo.now());
    let (created, version) = ers
        .repo
        .create_referral_with_appointment(
            move |ubrn, appointment_id| {
                let mut referral =
                    Referral::create(ubrn, new, &[&service], &caller, clinician, commissioner);
                referral.created = now.clone();
                referral.apply(
                    &caller,
                    Change::Appoint {
                        service: service.id.clone(),
                        appointment: appointment_id.clone(),
                        state: ReferralState::AwaitingTriage,
                        reason: Some("TRIAGE".into()),
                    },
                )?;
                let appointment = triage_appointment(appointment_id, &referral, &service, now);
                Ok((referral, appointment))
            },
            appointment_audit(&ctx, ers.url.clone(), "$ers.createReferralAndSendForTriage"),
        )
        .await?;
    let stu3 = ers.stu3_base();
    Ok(fhir_json(
        StatusCode::CREATED,
        &created.to_fhir(version, &stu3),
        Some(version),
    ))
}

/// A032 (deprecated): A031 and A016's send-to-triage at once.
async fn change_shortlist_and_send_for_triage(
    ers: &Ers,
    ubrn: &str,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: &Bytes,
) -> Answer {
    let ctx = context(extensions)?;
    let caller = ers.caller(&endpoints::A032, &ctx, headers).await?;
    let expected = ers.if_match(&endpoints::A032, headers)?;
    let body = match json_body(headers, body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let (criteria, ids, letter_intention, reminder_days) = referral::read_change_shortlist(&body)?;
    if reminder_days != 0 {
        return Err(ErsError::rule(
            "INAPPROPRIATE_VALUE",
            "firstReminderLetterFollowUpDays must be 0 when sending for triage",
        )
        .into());
    }
    let directory = ers.directory().await?;
    let service = one_triage_service(&ids, &directory)?.clone();
    let (current, _) = ers.referral(ubrn).await?;
    let commissioner = current.commissioning_organisation.clone();
    referral::check_shortlist(&ids, &directory, |s| {
        service::mismatch(
            s,
            &criteria,
            RequestType::Appointment,
            Some(&commissioner),
            None,
        )
    })?;
    let now = carehub_fhir::datetime::format_instant(ers.repo.now());
    let shortlisted = vec![Shortlisted {
        service: service.id.clone(),
        name: service.name.clone(),
        provider: service.provider.clone(),
    }];
    let (made, appointment_version, updated, version) = ers
        .repo
        .create_appointment(
            ubrn,
            expected,
            None,
            move |referral, id| {
                referral.apply(
                    &caller,
                    Change::Shortlist {
                        criteria,
                        shortlisted,
                        letter_intention,
                        reminder_days,
                    },
                )?;
                referral.apply(
                    &caller,
                    Change::Appoint {
                        service: service.id.clone(),
                        appointment: id.clone(),
                        state: ReferralState::AwaitingTriage,
                        reason: Some("TRIAGE".into()),
                    },
                )?;
                Ok(triage_appointment(id, referral, &service, now))
            },
            appointment_audit(
                &ctx,
                ers.url.clone(),
                "$ers.changeShortlistAndSendForTriage",
            ),
        )
        .await?;
    let stu3 = ers.stu3_base();
    let parameters = json!({
        "resourceType": "Parameters",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ChangeShortlistAndSendForTriage-Response-Parameters-1"]},
        "parameter": [
            {"name": "updatedReferralRequest", "resource": updated.to_fhir(version, &stu3)},
            {"name": "createdAppointment", "resource": made.to_fhir(appointment_version, &stu3)},
        ],
    });
    Ok(fhir_json(StatusCode::OK, &parameters, Some(version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(failure: Failure) -> (StatusCode, Value) {
        let response = failure.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).expect("json"))
    }

    #[tokio::test]
    async fn a_write_that_loses_a_race_for_a_record_is_423_locked() {
        let raced = RepoError::Store(StoreError::VersionConflict {
            resource_type: "Referral".into(),
            id: "100000000001".into(),
            expected: 3,
            current: 4,
        });
        let (status, outcome) = answer(raced.into()).await;
        assert_eq!(status, StatusCode::LOCKED);
        let issue = &outcome["issue"][0];
        assert_eq!(issue["code"], "lock-error");
        assert_eq!(issue["details"]["coding"][0]["code"], "INVALID_STATE");
        let diagnostics = issue["diagnostics"].as_str().expect("diagnostics");
        assert!(
            diagnostics.contains("100000000001") && diagnostics.contains("retry"),
            "{diagnostics}"
        );

        let created_twice = RepoError::Store(StoreError::AlreadyExists {
            resource_type: "Counter".into(),
            id: "ubrn".into(),
        });
        assert_eq!(answer(created_twice.into()).await.0, StatusCode::LOCKED);
    }
}
