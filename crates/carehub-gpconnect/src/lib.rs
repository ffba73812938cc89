//! A GP Connect provider: the GP system a consumer supplier develops against, as if it sat
//! behind the Spine Secure Proxy. Each practice is served at its own service root
//! (`/{env}/gpconnect/{ODS}/STU3/1/gpconnect`: Foundations and Appointment Management 1.2.8,
//! Access Record Structured 1.6 below `/structured`) and, for Access Record HTML 0.7.4, the
//! DSTU2 root `/{env}/gpconnect/{ODS}/DSTU2/0/gpconnect`.
//!
//! [`domain`] holds the rules and knows no HTTP and no SQL; [`repo`] keeps the GP system's
//! records in the carehub store (and reads PDS's); `http` (and `http_dstu2` for the HTML line)
//! is the product's HTTP face, mounted by the gateway; [`seed`] is the test data of an
//! integration environment.

pub mod domain;
mod http;
mod http_dstu2;
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

/// The check of the provider's settings (see [`domain::carerecord::HtmlSettings`]).
pub fn settings_check() -> carehub_gateway::SettingsCheck {
    Arc::new(|settings| domain::carerecord::HtmlSettings::from_settings(settings).map(|_| ()))
}
