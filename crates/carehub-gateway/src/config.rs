//! Environments, APIs and products as data: what `carehub up` serves when no file says
//! otherwise, and the TOML shape a file uses to say otherwise.
//!
//! URL layout: `/{environment}/{api path}/...`, for example `/int/fhir/R4/Patient`, as the NHS
//! platform puts the environment in front (`int.api.service.nhs.uk/...`). A product is one API
//! in one environment, with its access mode, rate limits and lifecycle status.

use std::time::Duration;

use carehub_fhir::FhirVersion;
use carehub_server::audit::PurposeOfUse;
use serde::Deserialize;

/// The whole platform configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// Environments, e.g. `sandbox`, `int`, `dev`.
    #[serde(default = "default_environments")]
    pub environments: Vec<Environment>,
    /// The APIs that products expose.
    #[serde(default = "default_apis")]
    pub apis: Vec<Api>,
    /// Which API is offered in which environment, and how.
    #[serde(default = "default_products")]
    pub products: Vec<Product>,
}

/// One environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The first segment of its URLs.
    pub name: String,
    /// What kind of environment it is.
    #[serde(default)]
    pub kind: EnvironmentKind,
}

/// Sandboxes are open and hold no state of their own; the others are stateful.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvironmentKind {
    /// Open access, canned answers.
    Sandbox,
    /// Real state and rules, test data (`int`).
    #[default]
    Integration,
    /// A production-like environment.
    Production,
}

/// An API: what it serves and where, within an environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Its name, used by products.
    pub name: String,
    /// Its path after the environment, without slashes at the ends (`fhir/R4`).
    pub path: String,
    /// A FHIR server of this version (`R4`, `STU3`); for an API that a product serves, the
    /// version the gateway's own errors use.
    pub fhir: Option<String>,
    /// The product that serves it (`ers`), registered with the gateway by the binary; absent
    /// for a plain FHIR server.
    #[serde(default)]
    pub service: Option<String>,
    /// An external FHIR server's base URL (`https://fhir.example.nhs.uk/R4`) that carehub fronts:
    /// requests pass the whole wrap and are forwarded there. Absent for one carehub serves.
    #[serde(default)]
    pub upstream: Option<String>,
    /// How long the upstream may take to answer, in seconds (30 by default).
    #[serde(default)]
    pub upstream_timeout_seconds: Option<u64>,
    /// A PEM file of CA certificates to trust for an `https` upstream besides the system's
    /// (a team's own CA).
    #[serde(default)]
    pub upstream_ca_file: Option<String>,
    /// For people.
    #[serde(default)]
    pub title: String,
}

/// How callers prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessMode {
    /// Anyone.
    Open,
    /// An application's API key in a header.
    ApiKey,
    /// An access token from `POST /{environment}/oauth2/token` with a signed JWT client
    /// assertion, carrying the scope `urn:nhsd:apim:app:level3:{api}`.
    ApplicationRestricted,
    /// A client certificate (over the mutual-TLS listener) that carehub's CA issued to an
    /// application of this environment (`carehub certs issue`).
    MutualTls,
    /// An access token for a user signed in with a virtual smartcard (CIS2 style, combined or
    /// separate flow), carrying `urn:nhsd:apim:user-nhs-cis2:aal{N}:{api}`.
    UserRestricted,
}

impl AccessMode {
    /// The scope an access token needs for a product of `api` in this mode.
    pub fn scope(self, api: &str) -> Option<String> {
        match self {
            AccessMode::ApplicationRestricted => Some(format!("urn:nhsd:apim:app:level3:{api}")),
            _ => None,
        }
    }
}

/// The scope a user-restricted token carries for `api` when the user signed in at assurance
/// level `aal`.
pub fn user_scope(aal: u8, api: &str) -> String {
    format!("urn:nhsd:apim:user-nhs-cis2:aal{aal}:{api}")
}

/// Lifecycle of a product, from first release to retirement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LifecycleStatus {
    /// Early, may change without notice.
    Alpha,
    /// Usable, may still change.
    Beta,
    /// Stable.
    #[default]
    Live,
    /// Still served, with `Deprecation` and `Sunset` headers; no new subscriptions.
    Deprecated,
    /// No longer served: 410.
    Retired,
}

/// One API in one environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// The API's name.
    pub api: String,
    /// The environment's name.
    pub environment: String,
    /// Accepted ways in; the first that the request satisfies wins.
    #[serde(default = "default_access")]
    pub access: Vec<AccessMode>,
    /// The header that carries an API key (`apikey` on the NHS platform, `x-api-key` for e-RS).
    #[serde(default = "default_api_key_header")]
    pub api_key_header: String,
    /// Rate limits, in the NHS platform's `ratelimiting` shape.
    #[serde(default)]
    pub ratelimiting: RateLimiting,
    /// Lifecycle status.
    #[serde(default)]
    pub status: LifecycleStatus,
    /// When it was deprecated (`YYYY-MM-DD`), for the `Deprecation` header.
    pub deprecated: Option<String>,
    /// When it stops being served (`YYYY-MM-DD`), for the `Sunset` header.
    pub sunset: Option<String>,
    /// Where the migration guide is, for the `Link` header and the 410 body.
    pub migration_guide: Option<String>,
    /// The store partition of its data; defaults to the FHIR version (`r4`, `stu3`) in `int`,
    /// and `{environment}-{version}` elsewhere; `{service}-{environment}` for a product's API.
    pub store_key: Option<String>,
    /// Whether every call leaves an AuditEvent (on by default; off only for the audit trail
    /// itself).
    #[serde(default = "yes")]
    pub audit: bool,
    /// Why its data is used, recorded on every AuditEvent: a code of HL7's `v3-ActReason`
    /// (`TREAT` by default: direct care; `HOPERAT`, `RECORDMGT`, `PUBHLTH`, `HRESCH`...).
    #[serde(default = "treatment")]
    pub purpose_of_use: String,
    /// The lowest authentication assurance level a user-restricted caller may have signed in
    /// with (3 by default: a smartcard).
    #[serde(default = "three")]
    pub min_aal: u8,
    /// The largest file a product takes (e-RS attachments), in bytes: 5 MB by default, as e-RS.
    #[serde(default = "five_megabytes")]
    pub file_size_limit: u64,
    /// The shape of the gateway's own errors (401, 429...) for this product.
    #[serde(default)]
    pub error_codes: ErrorCodes,
    /// Settings of the product itself, by name (for the GP Connect provider, for example,
    /// `deceased-access-days`); each product documents and checks its own.
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
}

/// How the gateway codes its own errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCodes {
    /// Spine's `Spine-ErrorOrWarningCode` of the API's FHIR version, as FHIR bases answer.
    #[default]
    Spine,
    /// The NHS API platform's `NHSDigital-OperationOutcome` (`NHSD-API-ErrorOrWarningCode`,
    /// `http-error-codes`), as e-RS documents its 401, 403 and 429 answers.
    NhsdApi,
}

/// Limits for all callers together (`proxy`) and for each application (`app`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimiting {
    /// Shared by every caller of the product.
    #[serde(default)]
    pub proxy: LimitConfig,
    /// Per application.
    #[serde(default)]
    pub app: LimitConfig,
}

/// A quota and a spike arrest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// So many requests per window.
    pub quota: Option<QuotaConfig>,
    /// Requests smoothed to a steady rate.
    #[serde(rename = "spikeArrest")]
    pub spike_arrest: Option<SpikeArrestConfig>,
}

/// `{enabled, limit, interval, timeunit}`, as the NHS platform writes quotas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Off when false.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Requests per window.
    pub limit: u64,
    /// Window length in `timeunit`s.
    #[serde(default = "one")]
    pub interval: u64,
    /// `second`, `minute`, `hour`, `day`.
    #[serde(default = "minute")]
    pub timeunit: String,
}

/// `{enabled, ratelimit: "600pm"}`: a steady rate, per second (`ps`) or minute (`pm`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeArrestConfig {
    /// Off when false.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `Nps` or `Npm`.
    pub ratelimit: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML does not parse or has unknown keys.
    #[error("platform configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// A rule about the values is broken.
    #[error("platform configuration: {0}")]
    Invalid(String),
}

fn yes() -> bool {
    true
}
fn treatment() -> String {
    "TREAT".into()
}
fn three() -> u8 {
    3
}
fn five_megabytes() -> u64 {
    5 * 1024 * 1024
}
fn one() -> u64 {
    1
}
fn minute() -> String {
    "minute".into()
}
fn default_access() -> Vec<AccessMode> {
    vec![AccessMode::ApiKey]
}
fn default_api_key_header() -> String {
    "apikey".into()
}

fn default_environments() -> Vec<Environment> {
    vec![
        Environment {
            name: "sandbox".into(),
            kind: EnvironmentKind::Sandbox,
        },
        Environment {
            name: "int".into(),
            kind: EnvironmentKind::Integration,
        },
        // Where operators' applications live: the audit trail is served here.
        Environment {
            name: "admin".into(),
            kind: EnvironmentKind::Production,
        },
    ]
}

fn default_apis() -> Vec<Api> {
    vec![
        Api {
            name: "fhir-r4".into(),
            path: "fhir/R4".into(),
            fhir: Some("R4".into()),
            service: None,
            upstream: None,
            upstream_timeout_seconds: None,
            upstream_ca_file: None,
            title: "FHIR R4 server".into(),
        },
        Api {
            name: "fhir-stu3".into(),
            path: "fhir/STU3".into(),
            fhir: Some("STU3".into()),
            service: None,
            upstream: None,
            upstream_timeout_seconds: None,
            upstream_ca_file: None,
            title: "FHIR STU3 server".into(),
        },
        Api {
            name: "audit".into(),
            path: "audit/R4".into(),
            fhir: Some("R4".into()),
            service: None,
            upstream: None,
            upstream_timeout_seconds: None,
            upstream_ca_file: None,
            title: "The audit trail, as FHIR R4 AuditEvents".into(),
        },
        Api {
            name: ERS_API.into(),
            path: "referrals/FHIR".into(),
            fhir: Some("STU3".into()),
            service: Some("ers".into()),
            upstream: None,
            upstream_timeout_seconds: None,
            upstream_ca_file: None,
            title: "NHS e-Referral Service FHIR API".into(),
        },
        Api {
            name: PDS_API.into(),
            path: "personal-demographics/FHIR/R4".into(),
            fhir: Some("R4".into()),
            service: Some("pds".into()),
            upstream: None,
            upstream_timeout_seconds: None,
            upstream_ca_file: None,
            title: "Personal Demographics Service FHIR API".into(),
        },
        Api {
            name: GP_CONNECT_API.into(),
            path: "gpconnect".into(),
            fhir: Some("STU3".into()),
            service: Some("gpconnect".into()),
            upstream: None,
            upstream_timeout_seconds: None,
            upstream_ca_file: None,
            title: "GP Connect provider (practices at /{ODS}/STU3/1/gpconnect; Access Record HTML at /{ODS}/DSTU2/0/gpconnect)".into(),
        },
        Api {
            name: SDS_API.into(),
            path: "spine-directory/FHIR/R4".into(),
            fhir: Some("R4".into()),
            service: Some("sds".into()),
            upstream: None,
            upstream_timeout_seconds: None,
            upstream_ca_file: None,
            title: "Spine Directory Service FHIR API".into(),
        },
        Api {
            name: SSP_API.into(),
            path: "ssp".into(),
            fhir: Some("STU3".into()),
            service: Some("ssp".into()),
            upstream: None,
            upstream_timeout_seconds: None,
            upstream_ca_file: None,
            title: "Spine Secure Proxy (/ssp/{provider service root}/{request})".into(),
        },
    ]
}

/// The SDS API's name.
pub const SDS_API: &str = "spine-directory-service";

/// The Spine Secure Proxy's API name.
pub const SSP_API: &str = "spine-secure-proxy";

/// The PDS API's name, as the NHS scopes use it.
pub const PDS_API: &str = "personal-demographics-service";

/// The GP Connect provider's API name.
pub const GP_CONNECT_API: &str = "gp-connect";

/// PDS in `int`: user-restricted (healthcare workers, up to 50 results) and
/// application-restricted (one unique match), with the NHS platform's default quota of 5
/// requests a second per application, as 300 a minute.
fn pds_products() -> Vec<Product> {
    vec![Product {
        ratelimiting: app_quota_per_minute(300),
        error_codes: ErrorCodes::NhsdApi,
        ..Product::new(
            PDS_API,
            "int",
            vec![
                AccessMode::UserRestricted,
                AccessMode::ApplicationRestricted,
            ],
        )
    }]
}

/// A quota of `limit` requests a minute per application, and no spike arrest.
fn app_quota_per_minute(limit: u64) -> RateLimiting {
    RateLimiting {
        proxy: LimitConfig::default(),
        app: LimitConfig {
            quota: Some(QuotaConfig {
                enabled: true,
                limit,
                interval: 1,
                timeunit: "minute".into(),
            }),
            spike_arrest: None,
        },
    }
}

impl Product {
    /// `api` in `environment` with `access`, and otherwise the defaults a configuration file
    /// gets: no limits, live, audited, smartcard assurance, 5 MB files, Spine error codes.
    pub fn new(api: &str, environment: &str, access: Vec<AccessMode>) -> Product {
        Product {
            api: api.into(),
            environment: environment.into(),
            access,
            api_key_header: default_api_key_header(),
            ratelimiting: RateLimiting::default(),
            status: LifecycleStatus::Live,
            deprecated: None,
            sunset: None,
            migration_guide: None,
            store_key: None,
            audit: true,
            purpose_of_use: treatment(),
            min_aal: 3,
            file_size_limit: five_megabytes(),
            error_codes: ErrorCodes::Spine,
            settings: std::collections::BTreeMap::new(),
        }
    }
}

/// The GP Connect provider, SDS and the Spine Secure Proxy in `int`. On the Spine only the SSP
/// reaches a provider, over mutual TLS; carehub also lets a registered application in with its
/// API key, so that a consumer can be developed without certificates. The audit JWT and the SSP
/// headers are checked either way.
fn gp_connect_products() -> Vec<Product> {
    let product = |api: &str, access| Product::new(api, "int", access);
    vec![
        product(
            GP_CONNECT_API,
            vec![AccessMode::MutualTls, AccessMode::ApiKey],
        ),
        // SDS is application-restricted by API key, as the NHS SDS FHIR API is.
        product(SDS_API, vec![AccessMode::ApiKey]),
        // The proxy authenticates consumers as the provider would (certificate or key) and
        // checks their ASID against SDS.
        product(SSP_API, vec![AccessMode::MutualTls, AccessMode::ApiKey]),
    ]
}

/// The e-RS API's name: the one the NHS scopes use (`urn:nhsd:apim:app:level3:{name}`).
pub const ERS_API: &str = "e-referrals-service-api";

/// e-RS in the sandbox (open, stateless, over the official scenario keys) and in `int` (real
/// state, user- and application-restricted), with the NHS product's quota
/// of 600 requests a minute per application. The NHS product also has a spike arrest of 720 a
/// minute (one request every 83 ms); over a local connection a script's back-to-back calls
/// arrive closer than that, so it is left for configurations that want it.
fn ers_products() -> Vec<Product> {
    let product = |environment: &str, access| Product {
        ratelimiting: app_quota_per_minute(600),
        // e-RS accepts users signed in at AAL2 as well as with a smartcard (AAL3).
        min_aal: 2,
        error_codes: ErrorCodes::NhsdApi,
        ..Product::new(ERS_API, environment, access)
    };
    vec![
        Product {
            // The sandbox holds no patient's data and keeps nothing: nothing to audit.
            audit: false,
            ..product("sandbox", vec![AccessMode::Open])
        },
        product(
            "int",
            vec![
                AccessMode::UserRestricted,
                AccessMode::ApplicationRestricted,
            ],
        ),
    ]
}

fn default_products() -> Vec<Product> {
    let fhir_access = vec![
        AccessMode::ApiKey,
        AccessMode::ApplicationRestricted,
        AccessMode::UserRestricted,
        AccessMode::MutualTls,
    ];
    ["fhir-r4", "fhir-stu3"]
        .into_iter()
        .map(|api| Product {
            // The NHS platform's default: 5 requests per second per app, as 300 a minute.
            ratelimiting: app_quota_per_minute(300),
            status: LifecycleStatus::Beta,
            ..Product::new(api, "int", fhir_access.clone())
        })
        .chain(std::iter::once(Product {
            store_key: Some("audit".into()),
            audit: false,
            ..Product::new("audit", "admin", vec![AccessMode::ApiKey])
        }))
        .chain(ers_products())
        .chain(pds_products())
        .chain(gp_connect_products())
        .collect()
}

impl Default for PlatformConfig {
    fn default() -> PlatformConfig {
        PlatformConfig {
            environments: default_environments(),
            apis: default_apis(),
            products: default_products(),
        }
    }
}

/// A time unit's length.
pub(crate) fn unit_length(unit: &str) -> Option<Duration> {
    Some(Duration::from_secs(match unit {
        "second" | "seconds" => 1,
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    }))
}

/// `600pm` -> (600, one minute).
pub(crate) fn parse_rate(text: &str) -> Option<(u64, Duration)> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let count: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let period = match unit {
        "ps" => Duration::from_secs(1),
        "pm" => Duration::from_secs(60),
        _ => return None,
    };
    Some((count, period))
}

impl PlatformConfig {
    /// The store partition of a product's data: its `store_key`, else `{service}-{environment}`
    /// for a product's API, else the FHIR version (`r4`) in `int` and `{environment}-{version}`
    /// elsewhere. `None` when the product's API is unknown or has no FHIR version.
    pub fn store_key(&self, product: &Product) -> Option<String> {
        if let Some(key) = &product.store_key {
            return Some(key.clone());
        }
        let api = self.apis.iter().find(|a| a.name == product.api)?;
        let version = FhirVersion::parse(api.fhir.as_deref()?)?;
        let version_key = version.label().to_ascii_lowercase();
        Some(if let Some(service) = &api.service {
            format!("{service}-{}", product.environment)
        } else if product.environment == "int" {
            version_key
        } else {
            format!("{}-{version_key}", product.environment)
        })
    }

    /// Parses TOML; missing sections take the defaults.
    pub fn from_toml(text: &str) -> Result<PlatformConfig, ConfigError> {
        let config: PlatformConfig = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    /// Checks the rules the types cannot: names that exist, dates, units.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        for env in &self.environments {
            if env.name.is_empty()
                || !env
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return invalid(format!(
                    "environment name '{}' must be letters, digits and '-'",
                    env.name
                ));
            }
        }
        for api in &self.apis {
            if let Some(version) = &api.fhir
                && FhirVersion::parse(version).is_none()
            {
                return invalid(format!(
                    "API {}: unknown FHIR version '{version}'",
                    api.name
                ));
            }
            if let Some(upstream) = &api.upstream {
                if api.service.is_some() {
                    return invalid(format!(
                        "API {}: an API is served by a product (service) or fronts an upstream, not both",
                        api.name
                    ));
                }
                let scheme_ok = upstream.starts_with("http://") || upstream.starts_with("https://");
                if !scheme_ok || upstream.parse::<axum::http::Uri>().is_err() {
                    return invalid(format!(
                        "API {}: upstream '{upstream}' must be an http:// or https:// URL",
                        api.name
                    ));
                }
            }
            if let Some(file) = &api.upstream_ca_file {
                let readable = std::fs::read(file).ok().is_some_and(|pem| {
                    reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|c| !c.is_empty())
                });
                if !readable {
                    return invalid(format!(
                        "API {}: upstream_ca_file '{file}' is not a readable PEM file of certificates",
                        api.name
                    ));
                }
            }
            if api.upstream_timeout_seconds == Some(0) {
                return invalid(format!(
                    "API {}: upstream_timeout_seconds must be at least 1",
                    api.name
                ));
            }
        }
        for product in &self.products {
            let name = format!("{} in {}", product.api, product.environment);
            if PurposeOfUse::from_code(&product.purpose_of_use).is_none() {
                let codes: Vec<&str> = PurposeOfUse::ALL.iter().map(|p| p.coding().0).collect();
                return invalid(format!(
                    "product {name}: purpose_of_use '{}' is not one of {}",
                    product.purpose_of_use,
                    codes.join(", ")
                ));
            }
            if !self.apis.iter().any(|a| a.name == product.api) {
                return invalid(format!("product {name}: no API named '{}'", product.api));
            }
            if !self
                .environments
                .iter()
                .any(|e| e.name == product.environment)
            {
                return invalid(format!(
                    "product {name}: no environment named '{}'",
                    product.environment
                ));
            }
            if !(1..=3).contains(&product.min_aal) {
                return invalid(format!("product {name}: min_aal must be 1, 2 or 3"));
            }
            if product.access.is_empty() {
                return invalid(format!("product {name}: no access mode"));
            }
            if product.status == LifecycleStatus::Deprecated
                && (product.deprecated.is_none() || product.sunset.is_none())
            {
                return invalid(format!(
                    "product {name}: a deprecated product needs 'deprecated' and 'sunset' dates"
                ));
            }
            for date in [&product.deprecated, &product.sunset].into_iter().flatten() {
                if crate::lifecycle::date_to_unix(date).is_none() {
                    return invalid(format!("product {name}: '{date}' is not a YYYY-MM-DD date"));
                }
            }
            for limits in [&product.ratelimiting.proxy, &product.ratelimiting.app] {
                if let Some(quota) = &limits.quota
                    && (unit_length(&quota.timeunit).is_none() || quota.interval == 0)
                {
                    return invalid(format!(
                        "product {name}: quota timeunit must be second, minute, hour or day, with an interval of 1 or more"
                    ));
                }
                if let Some(spike) = &limits.spike_arrest
                    && parse_rate(&spike.ratelimit).is_none()
                {
                    return invalid(format!(
                        "product {name}: spike arrest '{}' must look like 10ps or 600pm",
                        spike.ratelimit
                    ));
                }
            }
        }
        Ok(())
    }
}
