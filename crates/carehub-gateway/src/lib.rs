//! The platform in front of every carehub API, as the NHS API platform puts it in front of
//! theirs: environments and products from configuration ([`config`]), request and correlation
//! ids, API keys of registered applications ([`apps`]), quotas and spike arrest ([`limits`]),
//! lifecycle headers and retirement, `_ping` and `_status`, and one JSON log line per request.
//!
//! Products see none of this as headers: the gateway hands them a typed [`RequestContext`] in
//! the request's extensions. **Architecture Invariant:** no product checks a credential or
//! counts a request itself; it declares its access modes and limits in the configuration.

pub mod admin;
pub mod apps;
pub mod config;
pub mod identity;
mod idp;
pub mod keys;
mod lifecycle;
pub use lifecycle::deprecation_headers;
pub mod limits;
pub mod metrics;
pub mod oauth;
pub mod testing;
pub mod tls;
pub mod trace;
mod upstream;
mod user_restricted;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carehub_fhir::outcome::Coding;
use carehub_fhir::{FhirVersion, Issue, IssueType};
use carehub_server::error::{ApiError, Category};
use carehub_server::{BaseConfig, ServerConfig};
use carehub_store::Store;
use serde_json::json;

use apps::{App, Apps};
use config::{AccessMode, LifecycleStatus, PlatformConfig, Product};
use identity::{Identity, UserIdentity};
use limits::{Decision, Limit, RateLimiter};

/// Who is calling and how, as the gateway established it. Products read this from the request
/// extensions instead of looking at headers.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The environment (`int`).
    pub environment: String,
    /// The API's name (`fhir-r4`).
    pub api: String,
    /// The calling application, when it identified itself.
    pub app: Option<App>,
    /// How the request got in.
    pub access: AccessMode,
    /// `X-Request-ID` as sent, or one generated for the request.
    pub request_id: String,
    /// `X-Correlation-ID`, when sent.
    pub correlation_id: Option<String>,
    /// The verified client certificate, over the mutual-TLS listener.
    pub client_certificate: Option<tls::ClientCertificate>,
    /// The ASID bound to that certificate, when it was issued with one.
    pub asid: Option<String>,
    /// The signed-in user and selected role, for user-restricted access.
    pub user: Option<UserIdentity>,
    /// The scopes of the access token, when one was used.
    pub scopes: Vec<String>,
}

/// What the gateway tells a product when it mounts it in one environment.
#[derive(Debug, Clone)]
pub struct Mount {
    /// The environment's name (`int`).
    pub environment: String,
    /// Whether it is a sandbox (canned answers) or holds real state.
    pub kind: config::EnvironmentKind,
    /// The API's name (`e-referrals-service-api`).
    pub api: String,
    /// The URL path the product is nested at (`/int/referrals/FHIR`).
    pub path: String,
    /// The absolute URL of that path, for links and `Location` headers.
    pub url: String,
    /// The absolute URL of the whole server (for the identity provider's issuer).
    pub public_url: String,
    /// The store, shared with the platform.
    pub store: Store,
    /// The store partition of the product's data in this environment.
    pub store_key: String,
    /// The largest file the product accepts, in bytes.
    pub file_size_limit: u64,
    /// The product's own settings from the configuration (`Product::settings`).
    pub settings: std::collections::BTreeMap<String, String>,
}

/// What a product serves in one environment.
#[derive(Debug, Default)]
pub struct ProductRouter {
    /// Routes relative to the mount path, behind the gateway's guard.
    pub api: Router,
    /// Routes at absolute paths that carry their own proof (signed, short-lived URLs, as an
    /// object store's), served without credentials.
    pub public: Router,
}

/// Builds a product's routers for one environment.
pub type ProductFactory = Arc<dyn Fn(&Mount) -> ProductRouter + Send + Sync>;

/// The products the binary registers by service name (`ers`), for APIs whose configuration
/// names a `service`. The gateway wraps each in the same guard as a FHIR base.
#[derive(Clone, Default)]
pub struct Products {
    factories: std::collections::HashMap<String, ProductFactory>,
    settings_checks: std::collections::HashMap<String, SettingsCheck>,
}

/// A product's check of its `settings` (what the configuration's `Product::settings` hold):
/// the message of the first mistake.
pub type SettingsCheck =
    Arc<dyn Fn(&std::collections::BTreeMap<String, String>) -> Result<(), String> + Send + Sync>;

impl std::fmt::Debug for Products {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

impl Products {
    /// No products: only plain FHIR bases are served.
    pub fn new() -> Products {
        Products::default()
    }

    /// Registers the product that serves APIs configured with `service = "{name}"`.
    pub fn with(mut self, name: &str, factory: ProductFactory) -> Products {
        self.factories.insert(name.to_owned(), factory);
        self
    }

    /// Registers how the product `name` checks its settings; a product without a check takes
    /// none.
    pub fn with_settings(mut self, name: &str, check: SettingsCheck) -> Products {
        self.settings_checks.insert(name.to_owned(), check);
        self
    }

    /// Checks every product's settings in `platform`, so that a mistake stops the server at
    /// start rather than being found later.
    pub fn check_settings(&self, platform: &PlatformConfig) -> Result<(), String> {
        for product in platform.products.iter().filter(|p| !p.settings.is_empty()) {
            let service = platform
                .apis
                .iter()
                .find(|a| a.name == product.api)
                .and_then(|a| a.service.as_deref());
            let name = format!("product {} in {}", product.api, product.environment);
            match service.and_then(|s| self.settings_checks.get(s)) {
                Some(check) => check(&product.settings).map_err(|e| format!("{name}: {e}"))?,
                None => return Err(format!("{name} takes no settings")),
            }
        }
        Ok(())
    }
}

/// What the credentials of a request established.
#[derive(Debug, Clone)]
struct Authenticated {
    app: Option<App>,
    access: AccessMode,
    asid: Option<String>,
    user: Option<UserIdentity>,
    scopes: Vec<String>,
}

impl Authenticated {
    fn app(app: Option<App>, access: AccessMode) -> Authenticated {
        Authenticated {
            app,
            access,
            asid: None,
            user: None,
            scopes: Vec::new(),
        }
    }
}

/// One product as served: its configuration, compiled limits and the shared services.
#[derive(Debug)]
struct ProductState {
    product: Product,
    api_path: String,
    /// The key its proxy-wide limits count under.
    proxy_key: String,
    version: FhirVersion,
    proxy_limits: Vec<Limit>,
    app_limits: Vec<Limit>,
    apps: Apps,
    identity: Identity,
    limiter: Arc<dyn RateLimiter>,
    store: Store,
    metrics: Arc<metrics::Metrics>,
    /// This product's own request counts and latencies.
    requests: Arc<metrics::ProductMetrics>,
    /// Why its data is used, for its AuditEvents.
    purpose: carehub_server::audit::PurposeOfUse,
}

/// The Spine code system of the product's FHIR version, for error details.
fn spine_codes(version: FhirVersion) -> &'static str {
    match version {
        FhirVersion::Stu3 => "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1",
        FhirVersion::R4 => "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode",
    }
}

fn spine_error(
    version: FhirVersion,
    category: Category,
    code: IssueType,
    spine: (&str, &str),
    diagnostics: String,
    location: &str,
) -> ApiError {
    let issue = Issue::error(code, diagnostics)
        .with_details(Coding {
            system: spine_codes(version).to_owned(),
            code: spine.0.to_owned(),
            display: spine.1.to_owned(),
        })
        .at(location);
    ApiError::with_issues(category, vec![issue])
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// CORS for a sandbox: any origin, method and request header; every response header readable
/// (`ETag`, `Location`, `X-Request-ID`, ...). No credentials are involved, so `*` is enough.
fn open_cors() -> tower_http::cors::CorsLayer {
    use tower_http::cors::{Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers(Any)
        .max_age(std::time::Duration::from_secs(3600))
}

/// Builds the router for every product of the configuration, each behind the gateway, plus
/// `_ping` and `_status` for each. `extra` (the direct FHIR bases of a local install, say) is
/// merged in as it is.
pub fn router(
    platform: &PlatformConfig,
    server: &ServerConfig,
    store: Store,
    limiter: Arc<dyn RateLimiter>,
    extra: Router,
    products: &Products,
) -> Router {
    let apps = Apps::new(store.clone());
    let identity = Identity::new(store.clone(), &server.public_url);
    let metrics = Arc::new(metrics::Metrics::default());
    let mut router = extra;
    for product in &platform.products {
        let Some(api) = platform.apis.iter().find(|a| a.name == product.api) else {
            continue;
        };
        let Some(version) = api.fhir.as_deref().and_then(FhirVersion::parse) else {
            continue;
        };
        let path = format!("/{}/{}", product.environment, api.path.trim_matches('/'));
        let Some(store_key) = platform.store_key(product) else {
            continue;
        };
        let state = Arc::new(ProductState {
            product: product.clone(),
            api_path: path.clone(),
            proxy_key: format!("proxy:{path}"),
            version,
            proxy_limits: Limit::from_config(&product.ratelimiting.proxy),
            app_limits: Limit::from_config(&product.ratelimiting.app),
            apps: apps.clone(),
            identity: identity.clone(),
            limiter: limiter.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            requests: metrics.product(&product.environment, &api.name),
            // Checked when the configuration was loaded.
            purpose: carehub_server::audit::PurposeOfUse::from_code(&product.purpose_of_use)
                .unwrap_or_default(),
        });
        let mut public = Router::new();
        let inner = match (&api.service, &api.upstream) {
            (None, Some(base)) => upstream::router(
                base,
                std::time::Duration::from_secs(api.upstream_timeout_seconds.unwrap_or(30)),
                // Checked readable when the configuration was loaded.
                api.upstream_ca_file
                    .as_deref()
                    .and_then(|file| std::fs::read(file).ok())
                    .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).ok())
                    .unwrap_or_default(),
                &product.api_key_header,
                store.clone(),
            ),
            (None, None) => {
                let base = BaseConfig {
                    path: path.clone(),
                    version,
                    store_key,
                };
                carehub_server::base(server, &base, store.clone())
            }
            (Some(service), _) => {
                let Some(factory) = products.factories.get(service) else {
                    tracing::warn!(
                        api = %api.name,
                        service = %service,
                        "no product is registered for this service; the API is not served"
                    );
                    continue;
                };
                let kind = platform
                    .environments
                    .iter()
                    .find(|e| e.name == product.environment)
                    .map(|e| e.kind)
                    .unwrap_or_default();
                let routers = factory(&Mount {
                    environment: product.environment.clone(),
                    kind,
                    api: api.name.clone(),
                    path: path.clone(),
                    url: format!("{}{path}", server.public_url.trim_end_matches('/')),
                    public_url: server.public_url.clone(),
                    store: store.clone(),
                    store_key,
                    file_size_limit: product.file_size_limit,
                    settings: product.settings.clone(),
                });
                public = routers.public;
                routers.api
            }
        };
        let mut api_router = inner
            .route("/_status", get(status))
            .layer(axum::middleware::from_fn_with_state(state.clone(), guard));
        let sandbox = platform
            .environments
            .iter()
            .any(|e| e.name == product.environment && e.kind == config::EnvironmentKind::Sandbox);
        if sandbox {
            // A sandbox is open to anyone, browsers included: as the NHS sandboxes do, it
            // answers cross-origin requests (and their preflights) from any origin.
            api_router = api_router.layer(open_cors());
            public = public.layer(open_cors());
        }
        router = router
            .route(&format!("{path}/_ping"), get(ping))
            .nest(&path, api_router)
            .merge(public);
    }
    for environment in &platform.environments {
        let scopes = platform
            .products
            .iter()
            .filter(|p| p.environment == environment.name)
            .filter_map(|p| p.access.iter().find_map(|mode| mode.scope(&p.api)))
            .collect();
        let user_products = platform
            .products
            .iter()
            .filter(|p| p.environment == environment.name)
            .filter(|p| p.access.contains(&AccessMode::UserRestricted))
            .map(|p| (p.api.clone(), p.min_aal))
            .collect();
        let endpoint = Arc::new(oauth::TokenEndpoint {
            environment: environment.name.clone(),
            url: format!(
                "{}/{}/oauth2/token",
                server.public_url.trim_end_matches('/'),
                environment.name
            ),
            scopes,
            user_products,
            apps: apps.clone(),
            store: store.clone(),
            identity: identity.clone(),
            metrics: metrics.clone(),
        });
        let oauth = Router::new()
            .route("/token", axum::routing::post(oauth::token))
            .route("/authorize", get(user_restricted::authorize))
            .route("/callback", get(user_restricted::callback))
            .with_state(endpoint);
        let provider = Arc::new(idp::Provider {
            environment: environment.name.clone(),
            identity: identity.clone(),
            apps: apps.clone(),
        });
        router = router
            .nest(&format!("/{}/oauth2", environment.name), oauth)
            .nest(
                &format!("/{}/cis2", environment.name),
                idp::router(provider),
            );
    }
    router = router.merge(admin::router(
        store.clone(),
        &server.public_url,
        platform
            .environments
            .iter()
            .map(|e| e.name.clone())
            .collect(),
    ));
    let known = Arc::new(KnownPaths {
        environments: platform
            .environments
            .iter()
            .map(|e| e.name.clone())
            .collect(),
        apis: platform
            .products
            .iter()
            .filter_map(|p| {
                let api = platform.apis.iter().find(|a| a.name == p.api)?;
                Some((p.environment.clone(), api.path.trim_matches('/').to_owned()))
            })
            .collect(),
    });
    router = router.fallback(move |request: Request| {
        let known = known.clone();
        async move { unknown_path(&known, request) }
    });
    let exposition = metrics.clone();
    router = router.route(
        "/metrics",
        get(move || {
            let text = exposition.render();
            async move { ([("content-type", "text/plain; version=0.0.4")], text) }
        }),
    );
    carehub_server::layers(router)
}

/// What exists, for explaining a path that does not.
#[derive(Debug)]
struct KnownPaths {
    environments: Vec<String>,
    /// (environment, API path)
    apis: Vec<(String, String)>,
}

/// A 404 that says what was wrong with the path: an unknown environment, or no such API in it.
fn unknown_path(known: &KnownPaths, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let diagnostics = if known.environments.iter().any(|e| e == first) {
        let apis: Vec<String> = known
            .apis
            .iter()
            .filter(|(env, _)| env == first)
            .map(|(_, api)| format!("/{first}/{api}"))
            .collect();
        format!(
            "No API at {path}. The '{first}' environment serves: {}",
            if apis.is_empty() {
                "nothing yet".to_owned()
            } else {
                apis.join(", ")
            }
        )
    } else {
        format!(
            "Unknown environment '{first}' in {path}. URLs are /{{environment}}/{{api}}/...; environments: {}",
            known.environments.join(", ")
        )
    };
    reject(
        &request,
        ApiError::new(Category::NotFound, IssueType::NotFound, diagnostics),
    )
}

fn version_body() -> serde_json::Value {
    let version = env!("CARGO_PKG_VERSION");
    let commit = option_env!("CAREHUB_COMMIT").unwrap_or("unknown");
    json!({
        "version": version,
        "revision": commit,
        "releaseId": version,
        "commitId": commit,
    })
}

/// `_ping`: open, no dependency touched; says which build answers.
async fn ping() -> Response {
    (
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        version_body().to_string(),
    )
        .into_response()
}

/// `_status`: behind the product's access rules; checks each dependency.
async fn status(request: Request) -> Response {
    let store = request.extensions().get::<Store>().cloned();
    let started = Instant::now();
    let (database, code) = match store {
        Some(store) => {
            match tokio::time::timeout(std::time::Duration::from_secs(5), store.ping()).await {
                Ok(Ok(())) => ("pass", 200),
                Ok(Err(_)) => ("fail", 503),
                Err(_) => ("fail", 504),
            }
        }
        None => ("fail", 500),
    };
    let mut body = version_body();
    body["status"] = json!(database);
    body["checks"] = json!({
        "database": {
            "status": database,
            "timeout": code == 504,
            "responseCode": code,
            "outcome": format!("answered in {} ms", started.elapsed().as_millis()),
            "links": {},
        }
    });
    let status = if database == "pass" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The gateway's error for a product: in the shape of the FHIR base's own errors, or (for APIs
/// such as e-RS) in the NHS API platform's `NHSDigital-OperationOutcome` shape.
fn reject_for(state: &ProductState, request: &Request, err: ApiError) -> Response {
    match state.product.error_codes {
        config::ErrorCodes::Spine => reject(request, err),
        config::ErrorCodes::NhsdApi => nhsd_api_error(err),
    }
}

/// `NHSDigital-OperationOutcome`: authentication and rate limits coded in
/// `NHSD-API-ErrorOrWarningCode`, everything else in `http-error-codes`, with `meta`.
fn nhsd_api_error(err: ApiError) -> Response {
    const PLATFORM: &str = "https://fhir.nhs.uk/CodeSystem/NHSD-API-ErrorOrWarningCode";
    const HTTP: &str = "https://fhir.nhs.uk/CodeSystem/http-error-codes";
    let (issue_code, system, code) = match err.category {
        Category::Unauthorized => ("login", PLATFORM, "ACCESS_DENIED"),
        Category::TooManyRequests => ("throttled", PLATFORM, "TOO_MANY_REQUESTS"),
        Category::Invalid => ("invalid", HTTP, "REC_BAD_REQUEST"),
        Category::Forbidden => ("forbidden", HTTP, "REC_FORBIDDEN"),
        Category::NotFound | Category::Gone => ("not-found", HTTP, "REC_NOT_FOUND"),
        Category::Unavailable => ("transient", HTTP, "REC_UNAVAILABLE"),
        _ => ("exception", HTTP, "REC_SERVER_ERROR"),
    };
    let diagnostics = err
        .issues
        .first()
        .map(|i| i.diagnostics.clone())
        .unwrap_or_default();
    let body = json!({
        "resourceType": "OperationOutcome",
        "meta": {"lastUpdated": carehub_fhir::datetime::format_instant(now_ms() as i64 * 1000)},
        "issue": [{
            "severity": "error",
            "code": issue_code,
            "details": {"coding": [{"system": system, "code": code}]},
            "diagnostics": diagnostics,
        }],
    });
    (
        err.category.status(),
        [("content-type", "application/fhir+json")],
        body.to_string(),
    )
        .into_response()
}

fn reject(request: &Request, err: ApiError) -> Response {
    carehub_server::plain_error(
        request.uri().query().map(str::to_owned),
        request.headers().clone(),
        err,
    )
}

/// The gateway in front of one product: ids, lifecycle, credentials, limits, then the product.
async fn guard(State(state): State<Arc<ProductState>>, request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let span = trace::request_span(
        &state.product.environment,
        &state.product.api,
        request.method().as_str(),
        // The path as the caller sent it, not the part below the product's mount point.
        request
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or(request.uri().path(), |original| original.path()),
        request.headers(),
    );
    let response = guarded(state, request, next).instrument(span.clone()).await;
    trace::record_outcome(&span, response.status().as_u16());
    response
}

async fn guarded(state: Arc<ProductState>, mut request: Request, next: Next) -> Response {
    let access = Access::start(&request);
    let product = &state.product;
    let version = state.version;
    let request_id = match header(request.headers(), "x-request-id") {
        Some(id) if uuid::Uuid::parse_str(id).is_ok() => id.to_owned(),
        Some(id) => {
            let err = spine_error(
                version,
                Category::Invalid,
                IssueType::Value,
                ("INVALID_VALUE", "Provided value is invalid"),
                format!("Invalid value - '{id}' in header 'X-Request-ID': it must be a UUID"),
                "X-Request-ID",
            );
            return finish(reject_for(&state, &request, err), None, None, &[]);
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let correlation_id = header(request.headers(), "x-correlation-id").map(str::to_owned);
    let mut extra_headers: Vec<(&'static str, String)> = Vec::new();
    match product.status {
        LifecycleStatus::Retired => {
            let guide = product
                .migration_guide
                .as_deref()
                .map(|g| format!(" See {g}"))
                .unwrap_or_default();
            let err = spine_error(
                version,
                Category::Gone,
                IssueType::NotSupported,
                ("NOT_FOUND", "Resource not found"),
                format!(
                    "{} in {} has been retired and is no longer served.{guide}",
                    product.api, product.environment
                ),
                "",
            );
            let response = reject_for(&state, &request, err);
            return finish(response, Some(&request_id), correlation_id.as_deref(), &[]);
        }
        LifecycleStatus::Deprecated => {
            extra_headers.extend(lifecycle::deprecation_headers(
                product.deprecated.as_deref().unwrap_or_default(),
                product.sunset.as_deref().unwrap_or_default(),
                product.migration_guide.as_deref(),
            ));
        }
        _ => {}
    }

    let certificate = request
        .extensions()
        .get::<tls::ClientCertificate>()
        .cloned();
    let authenticated = match authenticate(&state, request.headers(), certificate.as_ref()).await {
        Ok(found) => found,
        Err(err) => {
            let response = reject_for(&state, &request, err);
            if response.status() == StatusCode::UNAUTHORIZED {
                state.metrics.increment(
                    "carehub_auth_failures_total",
                    vec![
                        ("environment", product.environment.clone()),
                        ("api", product.api.clone()),
                    ],
                );
            }
            access.log(
                &state,
                None,
                None,
                response.status(),
                &request_id,
                correlation_id.as_deref(),
            );
            return finish(response, Some(&request_id), correlation_id.as_deref(), &[]);
        }
    };
    let app = authenticated.app.clone();
    let user = authenticated.user.as_ref().map(|u| u.sds_user_id.clone());
    // A deprecated API keeps serving the applications that use it, but takes on no new ones.
    if product.status == LifecycleStatus::Deprecated
        && let (Some(app), Some(deprecated)) = (&app, product.deprecated.as_deref())
        && app
            .created
            .as_deref()
            .is_some_and(|created| created >= deprecated)
    {
        let guide = product
            .migration_guide
            .as_deref()
            .map(|g| format!("; see {g}"))
            .unwrap_or_default();
        let err = spine_error(
            version,
            Category::Forbidden,
            IssueType::Forbidden,
            ("ACCESS_DENIED", "Access denied"),
            format!(
                "This API was deprecated on {deprecated} and takes on no new applications: '{}' was registered on {} and cannot use it{guide}",
                app.name,
                app.created.as_deref().unwrap_or_default()
            ),
            "",
        );
        let response = reject_for(&state, &request, err);
        return finish(
            response,
            Some(&request_id),
            correlation_id.as_deref(),
            &extra_headers,
        );
    }

    let now = now_ms();
    let app_key = app
        .as_ref()
        .filter(|_| !state.app_limits.is_empty())
        .map(|app| format!("app:{}:{}", state.api_path, app.id));
    // References, not copies of the keys (a future held across `.await` cannot keep the
    // iterator adapters' closures, so they are collected first).
    let mut checks: Vec<(&str, &Limit, &str)> = state
        .proxy_limits
        .iter()
        .map(|l| (state.proxy_key.as_str(), l, "proxy"))
        .collect();
    if let Some(key) = &app_key {
        checks.extend(state.app_limits.iter().map(|l| (key.as_str(), l, "app")));
    }
    for (key, limit, scope) in checks {
        match state.limiter.check(key, limit, now).await {
            Decision::Allowed {
                limit: Some(quota),
                remaining: Some(remaining),
                reset: Some(reset),
            } if scope == "app" || app.is_none() => {
                extra_headers.push(("ratelimit-limit", quota.to_string()));
                extra_headers.push(("ratelimit-remaining", remaining.to_string()));
                extra_headers.push(("ratelimit-reset", reset.to_string()));
            }
            Decision::Allowed { .. } => {}
            Decision::Throttled { retry_after } => {
                let who = match scope {
                    "app" => "Your application has",
                    _ => "This API has, across all applications,",
                };
                let rule = match limit {
                    Limit::Quota { limit, label, .. } => format!(
                        "{who} exceeded its quota of {limit} requests every {label} ({scope} quota)"
                    ),
                    Limit::SpikeArrest { rate, .. } => format!(
                        "{who} exceeded its spike arrest of {rate} ({scope} spike arrest: requests must be spread evenly)"
                    ),
                };
                let err = spine_error(
                    version,
                    Category::TooManyRequests,
                    IssueType::Throttled,
                    ("TOO_MANY_REQUESTS", "Too many requests"),
                    format!("{rule}; try again in {retry_after} s"),
                    "",
                );
                let response = reject_for(&state, &request, err);
                state.metrics.increment(
                    "carehub_throttled_total",
                    vec![
                        ("environment", product.environment.clone()),
                        ("api", product.api.clone()),
                        (
                            "app",
                            app.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
                        ),
                        ("scope", scope.to_owned()),
                    ],
                );
                access.log(
                    &state,
                    app.as_ref(),
                    user.as_deref(),
                    response.status(),
                    &request_id,
                    correlation_id.as_deref(),
                );
                let mut headers = vec![("retry-after", retry_after.to_string())];
                if let Limit::Quota { limit, .. } = limit {
                    headers.push(("ratelimit-limit", limit.to_string()));
                    headers.push(("ratelimit-remaining", "0".to_owned()));
                    headers.push(("ratelimit-reset", retry_after.to_string()));
                }
                return finish(
                    response,
                    Some(&request_id),
                    correlation_id.as_deref(),
                    &headers,
                );
            }
        }
    }

    request.extensions_mut().insert(RequestContext {
        environment: product.environment.clone(),
        api: product.api.clone(),
        app: app.clone(),
        access: authenticated.access,
        request_id: request_id.clone(),
        correlation_id: correlation_id.clone(),
        client_certificate: certificate,
        asid: authenticated.asid,
        user: authenticated.user.clone(),
        scopes: authenticated.scopes,
    });
    request.extensions_mut().insert(state.store.clone());
    if product.audit {
        request
            .extensions_mut()
            .insert(carehub_server::audit::Caller {
                environment: product.environment.clone(),
                api: product.api.clone(),
                app_id: app.as_ref().map(|a| a.id.clone()),
                app_name: app.as_ref().map(|a| a.name.clone()),
                // A user acts for the organisation of their selected role; an application for
                // its own.
                organisation: authenticated
                    .user
                    .as_ref()
                    .map(|u| u.role.organisation.clone())
                    .or_else(|| app.as_ref().map(|a| a.organisation.clone())),
                user: authenticated.user.as_ref().map(|u| u.sds_user_id.clone()),
                role: authenticated.user.as_ref().map(|u| u.role.id.clone()),
                purpose: Some(carehub_server::audit::Purpose {
                    of_use: state.purpose,
                    stated: None,
                }),
                request_id: request_id.clone(),
            });
    }
    let response = next.run(request).await;
    access.log(
        &state,
        app.as_ref(),
        user.as_deref(),
        response.status(),
        &request_id,
        correlation_id.as_deref(),
    );
    finish(
        response,
        Some(&request_id),
        correlation_id.as_deref(),
        &extra_headers,
    )
}

/// Checks the credentials the product's access modes ask for.
async fn authenticate(
    state: &ProductState,
    headers: &HeaderMap,
    certificate: Option<&tls::ClientCertificate>,
) -> Result<Authenticated, ApiError> {
    let product = &state.product;
    if product.access.contains(&AccessMode::MutualTls) {
        match certificate {
            Some(certificate) => {
                let (app, asid) = by_certificate(state, certificate).await?;
                let mut found = Authenticated::app(Some(app), AccessMode::MutualTls);
                found.asid = asid;
                return Ok(found);
            }
            None if product.access.len() == 1 => {
                return Err(spine_error(
                    state.version,
                    Category::Forbidden,
                    IssueType::Security,
                    (
                        "ACCESS_DENIED",
                        "Access has been denied to process this request",
                    ),
                    format!(
                        "{} in {} needs mutual TLS: connect to carehub's TLS listener with a client certificate from 'carehub certs issue'",
                        product.api, product.environment
                    ),
                    "",
                ));
            }
            None => {}
        }
    }
    authenticate_credentials(state, headers).await
}

/// The application a client certificate was issued to.
async fn by_certificate(
    state: &ProductState,
    certificate: &tls::ClientCertificate,
) -> Result<(App, Option<String>), ApiError> {
    let product = &state.product;
    let denied = |diagnostics: String| {
        spine_error(
            state.version,
            Category::Forbidden,
            IssueType::Security,
            (
                "ACCESS_DENIED",
                "Access has been denied to process this request",
            ),
            diagnostics,
            "",
        )
    };
    let bound = tls::bound_app(&state.store, &certificate.serial)
        .await
        .map_err(|e| ApiError::fault(e.to_string()))?;
    let Some((app_id, asid)) = bound else {
        return Err(denied(format!(
            "The client certificate '{}' (serial {}) is not bound to any application; issue endpoint certificates with 'carehub certs issue --app ...'",
            certificate.subject, certificate.serial
        )));
    };
    let app = state
        .apps
        .get_recent(&app_id)
        .await
        .map_err(|e| ApiError::fault(e.to_string()))?
        .ok_or_else(|| {
            denied("The application of this client certificate no longer exists".into())
        })?;
    if app.environment != product.environment {
        return Err(denied(format!(
            "The client certificate belongs to application '{}' in '{}'; certificates work only in their own environment, and this is '{}'",
            app.name, app.environment, product.environment
        )));
    }
    Ok((app, asid))
}

/// API keys and bearer tokens.
async fn authenticate_credentials(
    state: &ProductState,
    headers: &HeaderMap,
) -> Result<Authenticated, ApiError> {
    let product = &state.product;
    let version = state.version;
    let header_name = product.api_key_header.as_str();
    let open = product.access.contains(&AccessMode::Open);
    let wants_key = product.access.contains(&AccessMode::ApiKey);
    let denied = |diagnostics: String| {
        spine_error(
            version,
            Category::Unauthorized,
            IssueType::Security,
            (
                "ACCESS_DENIED",
                "Access has been denied to process this request",
            ),
            diagnostics,
            header_name,
        )
    };
    let takes_tokens = product.access.contains(&AccessMode::ApplicationRestricted)
        || product.access.contains(&AccessMode::UserRestricted);
    if takes_tokens && let Some(authorization) = header(headers, "authorization") {
        return bearer(state, authorization).await;
    }
    let key = header(headers, header_name).filter(|k| !k.is_empty());
    match (key, wants_key) {
        (Some(key), true) => {
            let app = state
                .apps
                .by_key_recent(key)
                .await
                .map_err(|e| ApiError::fault(e.to_string()))?;
            match app {
                None => Err(denied(format!(
                    "Invalid API key in the '{header_name}' header: no application has this key (it may have been revoked)"
                ))),
                Some(app) if app.environment != product.environment => Err(denied(format!(
                    "The API key in the '{header_name}' header belongs to application '{}' in the '{}' environment; credentials work only in their own environment, and this is '{}'",
                    app.name, app.environment, product.environment
                ))),
                Some(app) => Ok(Authenticated::app(Some(app), AccessMode::ApiKey)),
            }
        }
        _ if open => Ok(Authenticated::app(None, AccessMode::Open)),
        (None, true) => Err(denied(format!(
            "Missing API key: {} in {} needs an application's API key in the '{header_name}' header",
            product.api, product.environment
        ))),
        _ => Err(spine_error(
            version,
            Category::Unauthorized,
            IssueType::Security,
            (
                "ACCESS_DENIED",
                "Access has been denied to process this request",
            ),
            format!(
                "Missing Authorization header: {} in {} needs 'Authorization: Bearer <access token>' from POST /{}/oauth2/token",
                product.api, product.environment, product.environment
            ),
            "Authorization",
        )),
    }
}

/// Checks a bearer token: application-restricted (`app:level3`) or user-restricted
/// (`user-nhs-cis2:aal{N}`), whichever the product accepts and the token carries.
async fn bearer(state: &ProductState, authorization: &str) -> Result<Authenticated, ApiError> {
    let product = &state.product;
    let denied = |diagnostics: String| {
        spine_error(
            state.version,
            Category::Unauthorized,
            IssueType::Security,
            (
                "ACCESS_DENIED",
                "Access has been denied to process this request",
            ),
            diagnostics,
            "Authorization",
        )
    };
    let Some(token) = authorization
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(denied(
            "Invalid Authorization header: expected 'Bearer <access token>'".into(),
        ));
    };
    let found = oauth::lookup(&state.store, token)
        .await
        .map_err(|e| ApiError::fault(e.to_string()))?;
    let Some(found) = found else {
        return Err(denied(
            "Invalid access token: it is unknown or has expired (tokens last 599 seconds)".into(),
        ));
    };
    if found.environment != product.environment {
        return Err(denied(format!(
            "The access token was issued in '{}'; tokens work only in their own environment, and this is '{}'",
            found.environment, product.environment
        )));
    }
    let access = match &found.user {
        None if product.access.contains(&AccessMode::ApplicationRestricted) => {
            let needed = AccessMode::ApplicationRestricted
                .scope(&product.api)
                .unwrap_or_default();
            if !found.scopes.contains(&needed) {
                return Err(denied(format!(
                    "The access token lacks the scope {needed} that {} requires",
                    product.api
                )));
            }
            AccessMode::ApplicationRestricted
        }
        None => {
            return Err(denied(format!(
                "{} in {} is user-restricted: it needs an access token of a user signed in with a smartcard (GET /{}/oauth2/authorize, or a token exchange), not an application-restricted one",
                product.api, product.environment, product.environment
            )));
        }
        Some(_) if product.access.contains(&AccessMode::UserRestricted) => {
            let accepted = (product.min_aal..=3)
                .map(|aal| config::user_scope(aal, &product.api))
                .any(|scope| found.scopes.contains(&scope));
            if !accepted {
                return Err(denied(format!(
                    "The access token lacks a scope {} that {} requires (a user signed in at assurance level {} or higher)",
                    config::user_scope(product.min_aal, &product.api),
                    product.api,
                    product.min_aal
                )));
            }
            AccessMode::UserRestricted
        }
        Some(_) => {
            return Err(denied(format!(
                "{} in {} is application-restricted: it takes an access token from the client_credentials grant, not a user's",
                product.api, product.environment
            )));
        }
    };
    // A withdrawn smartcard stops working at once, not when its tokens expire.
    if let Some(user) = &found.user {
        let card = state
            .identity
            .card_recent(&user.id)
            .await
            .map_err(|e| ApiError::fault(e.to_string()))?;
        if card.is_none() {
            return Err(denied(
                "The smartcard this token was issued for has been withdrawn".into(),
            ));
        }
    }
    let app = oauth::token_app(&state.apps, &found).await.ok_or_else(|| {
        denied("The application this token was issued to no longer exists".into())
    })?;
    Ok(Authenticated {
        app: Some(app),
        access,
        asid: None,
        user: found.user,
        scopes: found.scopes,
    })
}

fn finish(
    mut response: Response,
    request_id: Option<&str>,
    correlation_id: Option<&str>,
    extra: &[(&'static str, String)],
) -> Response {
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    if let Some(id) = request_id {
        set("x-request-id", id);
    }
    if let Some(id) = correlation_id {
        set("x-correlation-id", id);
    }
    for (name, value) in extra {
        set(name, value);
    }
    response
}

/// What the access log line and the metrics need to know of a request from its start.
struct Access {
    started: Instant,
    method: axum::http::Method,
    /// The path as the caller sent it (no query: it may carry patient identifiers).
    uri: axum::http::Uri,
}

impl Access {
    fn start(request: &Request) -> Access {
        Access {
            started: Instant::now(),
            method: request.method().clone(),
            uri: request
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| request.uri().clone(), |original| original.0.clone()),
        }
    }

    /// Counts the request and writes its access log line: one JSON line per request.
    fn log(
        &self,
        state: &ProductState,
        app: Option<&App>,
        user: Option<&str>,
        status: StatusCode,
        request_id: &str,
        correlation_id: Option<&str>,
    ) {
        let app_id = app.map(|a| a.id.as_str());
        trace::record_caller(
            &tracing::Span::current(),
            app_id,
            request_id,
            correlation_id,
        );
        let elapsed = self.started.elapsed();
        state.requests.request(app_id, status.as_u16(), elapsed);
        tracing::info!(
            target: "carehub::access",
            environment = %state.product.environment,
            api = %state.product.api,
            method = %self.method,
            path = self.uri.path(),
            app = app_id.unwrap_or("-"),
            user = user.unwrap_or("-"),
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            request_id,
            correlation_id = correlation_id.unwrap_or("-"),
            "request"
        );
    }
}
