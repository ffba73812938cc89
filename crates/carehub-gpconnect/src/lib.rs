//! A GP Connect provider: the GP system a consumer supplier develops against, as if it sat
//! behind the Spine Secure Proxy. Each practice is served at its own service root
//! (`/{env}/gpconnect/{ODS}/STU3/1/gpconnect`), with Foundations 1.2.8 today.
//!
//! [`domain`] holds the rules and knows no HTTP and no SQL; [`repo`] keeps the GP system's
//! records in the carehub store (and reads PDS's); `http` is the product's HTTP face, mounted by
//! the gateway; [`seed`] is the test data of an integration environment.

pub mod domain;
mod http;
pub mod repo;
pub mod seed;

use std::sync::Arc;

use carehub_gateway::ProductFactory;

/// The service name APIs use in the platform configuration (`service = "gpconnect"`).
pub const SERVICE: &str = "gpconnect";

/// The product factory the binary registers with the gateway.
pub fn product() -> ProductFactory {
    Arc::new(http::router)
}
