//! A platform on a real socket for tests and benchmarks: `serve` starts the gateway on
//! 127.0.0.1:0 over a fresh database (a new SQLite file, or a new PostgreSQL database when
//! `DATABASE_URL` is set), with the given configuration and products mounted.

use std::sync::Arc;

use carehub_server::ServerConfig;
use carehub_store::Store;
use carehub_store::testing::{TestDatabase, fresh_database};

use crate::Products;
use crate::config::PlatformConfig;
use crate::limits::{LocalLimiter, RateLimiter};

/// A running platform. The database lives as long as this value.
#[derive(Debug)]
pub struct Served {
    /// `http://127.0.0.1:{port}`.
    pub url: String,
    /// The store behind it, for seeding and for looking behind the API.
    pub store: Store,
    database: TestDatabase,
}

impl Served {
    /// The database, kept alive by the caller.
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }
}

/// One node of the platform over `store`, counting limits with `limiter`, on a free port of
/// 127.0.0.1: its URL. Several nodes over one store make a cluster.
pub async fn node(
    platform: &PlatformConfig,
    store: Store,
    limiter: Arc<dyn RateLimiter>,
    products: &Products,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = ServerConfig {
        public_url: url.clone(),
        ..ServerConfig::default()
    };
    let router = crate::router(
        platform,
        &server,
        store,
        limiter,
        axum::Router::new(),
        products,
    );
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("server runs");
    });
    url
}

/// Serves `platform` with `products` on a free port. `unlimited` drops every product's rate
/// limits, which would throttle a test's or benchmark's rapid calls; `audited = false` turns
/// the audit trail off (for benchmarks of the products alone).
pub async fn serve(
    mut platform: PlatformConfig,
    products: &Products,
    unlimited: bool,
    audited: bool,
) -> Served {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.expect("store opens");
    for product in &mut platform.products {
        if unlimited {
            product.ratelimiting = Default::default();
        }
        product.audit &= audited;
    }
    let url = node(
        &platform,
        store.clone(),
        Arc::new(LocalLimiter::default()),
        products,
    )
    .await;
    Served {
        url,
        store,
        database,
    }
}
