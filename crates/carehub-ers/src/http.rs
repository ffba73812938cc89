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
use serde_json::{Value, json};

use crate::domain::access::{
    self, Caller, ContextHeaders, Endpoint, HeldRole, Principal, endpoints,
};
use crate::domain::codes::{self, BusinessFunction};
use crate::domain::params::Params;
use crate::domain::referral::{self, Change, NewReferral, Referral, Shortlisted};
use crate::domain::service::{self, PatientFacts, RequestType, SearchCriteria, Service, SortBy};
use crate::domain::{Class, ErsError};
use crate::repo::{AuditRecord, Repo, RepoError};

/// What every handler of one environment's e-RS needs.
#[derive(Debug)]
pub(crate) struct Ers {
    pub(crate) repo: Repo,
    identity: Identity,
    environment: String,
    /// `{public}/int/referrals/FHIR`
    url: String,
}

impl Ers {
    fn stu3_base(&self) -> String {
        format!("{}/STU3", self.url)
    }
}

type Shared = Arc<Ers>;

/// The router of e-RS in one stateful environment, relative to its mount path.
pub(crate) fn router(mount: &Mount) -> Router {
    let ers = Arc::new(Ers {
        repo: Repo::new(mount.store.clone(), &mount.store_key),
        identity: Identity::new(mount.store.clone(), &mount.public_url),
        environment: mount.environment.clone(),
        url: mount.url.clone(),
    });
    Router::new()
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
        .route("/R4/PractitionerRole", get(business_functions))
        .route("/R4/Practitioner", get(on_behalf_of_users))
        .route("/R4/HealthcareService", get(search_services_r4))
        .route("/R4/HealthcareService/{id}", get(read_service_r4))
        .fallback(unknown_endpoint)
        .with_state(ers)
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
}

impl From<ErsError> for Failure {
    fn from(error: ErsError) -> Failure {
        Failure {
            error,
            shape: Shape::Stu3,
        }
    }
}

impl From<RepoError> for Failure {
    fn from(err: RepoError) -> Failure {
        match err {
            RepoError::Ers(error) => error.into(),
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
            Class::Unprocessable => Category::Unprocessable,
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
        let error = &self.error;
        let (system, code) = match (self.shape, category) {
            (Shape::Stu3, _) => (
                "https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1",
                error.code,
            ),
            (Shape::R4, Category::Unprocessable) => {
                ("https://fhir.nhs.uk/CodeSystem/ers-error-codes", error.code)
            }
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
        if self.shape == Shape::Stu3 {
            outcome["meta"] = json!({"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1"]});
            outcome["issue"][0]["details"]["coding"][0]["display"] = json!(error.display());
        }
        fhir_json(category.status(), &outcome, None)
    }
}

type Answer = Result<Response, Failure>;

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

fn fhir_json(status: StatusCode, body: &Value, version: Option<i64>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json;charset=UTF-8")],
        body.to_string(),
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

/// The version `If-Match: W/"n"` asks for: missing is 412, malformed 400.
fn if_match(headers: &HeaderMap) -> Result<i64, Failure> {
    let Some(value) = header_text(headers, "if-match") else {
        return Err(ErsError::new(
            Class::PreconditionFailed,
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
        r.organisation.eq_ignore_ascii_case(organisation)
            && r.business_functions.iter().any(|f| f == function)
    })
}

impl Ers {
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

    /// The e-RS caller of a request to `endpoint`.
    async fn caller(
        &self,
        endpoint: &Endpoint,
        ctx: &Context,
        headers: &HeaderMap,
    ) -> Result<Caller, Failure> {
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
        _ => Ok(unknown_endpoint(
            Method::POST,
            format!("/STU3/ReferralRequest/{operation}")
                .parse()
                .unwrap_or_default(),
        )
        .await),
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
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
    let new = NewReferral::read(&body, now_micros())?;
    let clinicians = if caller.function == BusinessFunction::ReferringClinicianAdmin {
        ers.users_with("REFERRING_CLINICIAN", &caller.organisation)
            .await?
    } else {
        Vec::new()
    };
    let clinician =
        referral::referring_clinician(&caller, new.referring_clinician.as_deref(), |user, _| {
            clinicians.iter().any(|c| c.sds_user_id == user)
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
    let audit_ctx = Context {
        platform: ctx.platform.clone(),
        audit: ctx.audit.clone(),
    };
    let url = ers.url.clone();
    let audit_caller = audit_ctx.audit.clone();
    let build_caller = caller.clone();
    let (created, version) = ers
        .repo
        .create_referral(
            move |ubrn| {
                let refs: Vec<&Service> = shortlisted.iter().collect();
                Referral::create(ubrn, new, &refs, &build_caller, clinician, commissioner)
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
    expected: i64,
    operation: &'static str,
    caller: Caller,
    change: Change,
) -> Result<(Referral, i64), Failure> {
    let url = ers.url.clone();
    let audit_caller = ctx.audit.clone();
    let (changed, version) = ers
        .repo
        .update_referral(
            ubrn,
            expected,
            move |referral| referral.apply(&caller, change),
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
    let expected = if_match(headers)?;
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
    let expected = if_match(headers)?;
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
    let (found, current) = ers
        .repo
        .referral(ubrn)
        .await?
        .ok_or_else(|| bad_request(format!("No referral with UBRN '{ubrn}'")))?;
    if version != current.to_string() {
        return Err(bad_request(format!(
            "focus names version {version} of referral {ubrn}; the current version is {current}"
        ))
        .into());
    }
    let actions = found.actions_for(&caller).map_err(|e| {
        // A029 has no 422: a caller with no relationship is refused.
        ErsError::forbidden(e.diagnostics)
    })?;
    let focus_reference = format!("ReferralRequest/{ubrn}/_history/{current}");
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
        "meta": {"profile": ["http://hl7.org/fhir/STU3/StructureDefinition/Bundle"]},
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
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
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
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": card.sds_user_id}],
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
