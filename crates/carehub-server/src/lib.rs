//! The FHIR REST API: one axum router that serves any number of FHIR bases (an R4 base and an
//! STU3 base, say, each with its own resource types, validation and storage partition) over one
//! store.
//!
//! **Architecture Invariant:** this crate, the gateway and the products' HTTP faces (never their
//! domain modules) are the only code that knows HTTP. It
//! turns requests into calls on `carehub_fhir` (parsing, validation, search parsing, indexing)
//! and `carehub_store` (reads, searches, units of work), and every failure into an
//! OperationOutcome through `error::Category`, the one table from error to status.

pub mod audit;
mod bundle;
mod capabilities;
pub mod error;
pub mod format;
mod rest;

pub use rest::plain_error;
mod shape;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use carehub_fhir::FhirVersion;
use carehub_fhir::search::Indexer;
use carehub_store::Store;

/// One FHIR base to serve.
#[derive(Debug, Clone)]
pub struct BaseConfig {
    /// The URL path it is mounted at, e.g. `/fhir/R4`.
    pub path: String,
    /// The FHIR version it speaks.
    pub version: FhirVersion,
    /// The store partition its resources live in; bases with different keys never see each
    /// other's resources.
    pub store_key: String,
}

/// How the FHIR API behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL clients reach the server at, without a trailing slash (used in `fullUrl`,
    /// `Location` and paging links).
    pub public_url: String,
    /// The bases to serve.
    pub bases: Vec<BaseConfig>,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Page size when `_count` is absent.
    pub default_count: usize,
    /// The largest page size.
    pub max_count: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            public_url: "http://localhost:8080".into(),
            bases: vec![
                BaseConfig {
                    path: "/fhir/R4".into(),
                    version: FhirVersion::R4,
                    store_key: "r4".into(),
                },
                BaseConfig {
                    path: "/fhir/STU3".into(),
                    version: FhirVersion::Stu3,
                    store_key: "stu3".into(),
                },
            ],
            body_limit: 16 * 1024 * 1024,
            default_count: 20,
            max_count: 1000,
        }
    }
}

/// What every handler of one base needs.
#[derive(Debug)]
pub(crate) struct Base {
    pub(crate) version: FhirVersion,
    pub(crate) store_key: String,
    /// The absolute URL of the base, e.g. `http://localhost:8080/fhir/R4`.
    pub(crate) url: String,
    pub(crate) store: Store,
    pub(crate) indexer: Arc<Indexer>,
    pub(crate) body_limit: usize,
    pub(crate) default_count: usize,
    pub(crate) max_count: usize,
}

pub(crate) type BaseState = Arc<Base>;

/// The router for every configured base.
pub fn router(config: &ServerConfig, store: Store) -> Router {
    let mut router = Router::new();
    for each in &config.bases {
        router = router.nest(&each.path, base(config, each, store.clone()));
    }
    finish(router)
}

/// The routes of one base, relative to its path (for mounting it behind other layers, as the
/// gateway does); `base.path` still decides the URLs it writes into responses.
pub fn base(config: &ServerConfig, base: &BaseConfig, store: Store) -> Router {
    let state: BaseState = Arc::new(Base {
        version: base.version,
        store_key: base.store_key.clone(),
        url: format!("{}{}", config.public_url.trim_end_matches('/'), base.path),
        store,
        indexer: Arc::new(Indexer::new(base.version)),
        body_limit: config.body_limit,
        default_count: config.default_count,
        max_count: config.max_count,
    });
    base_router(state)
}

/// The layers every router gets at the outside: OperationOutcome for unknown paths and panics,
/// gzip both ways.
pub fn finish(router: Router) -> Router {
    layers(router.fallback(rest::unknown_endpoint))
}

/// The outer layers alone (panics as OperationOutcome, gzip both ways), for a router that has
/// its own fallback.
pub fn layers(router: Router) -> Router {
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            rest::panic_response,
        ))
        .layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .compress_when(compressible()),
        )
        .layer(tower_http::decompression::RequestDecompressionLayer::new().gzip(true))
}

/// What is worth compressing: text, not files that are compressed already (PDF, images) and
/// whose `Content-Length` clients rely on.
fn compressible() -> impl tower_http::compression::Predicate {
    use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
    // 32 bytes, as tower-http's default: smaller bodies gain nothing.
    SizeAbove::new(32)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
        .and(NotForContentType::const_new("application/pdf"))
        .and(NotForContentType::const_new("audio/"))
        .and(NotForContentType::const_new("video/"))
}

fn base_router(state: BaseState) -> Router {
    Router::new()
        .route("/", post(bundle::transaction).get(rest::unknown_endpoint))
        .route("/metadata", get(capabilities::capability_statement))
        .route("/_history", get(rest::history_system))
        .route(
            "/{resource_type}",
            get(rest::search_get)
                .post(rest::create)
                .put(rest::conditional_update)
                .delete(rest::conditional_delete),
        )
        .route("/{resource_type}/_search", post(rest::search_post))
        .route("/{resource_type}/_history", get(rest::history_type))
        .route("/{resource_type}/$validate", post(rest::validate_type))
        .route(
            "/{resource_type}/{id}",
            get(rest::read).put(rest::update).delete(rest::delete),
        )
        .route(
            "/{resource_type}/{id}/$validate",
            post(rest::validate_instance),
        )
        .route(
            "/{resource_type}/{id}/_history",
            get(rest::history_instance),
        )
        .route("/{resource_type}/{id}/_history/{version}", get(rest::vread))
        .method_not_allowed_fallback(rest::method_not_allowed)
        .with_state(state)
}
