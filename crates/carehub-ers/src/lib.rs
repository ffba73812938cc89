//! The NHS e-Referral Service FHIR API, as the official specification defines it, in carehub's
//! integration environments: real referrals with UBRNs, a services directory with service
//! search, shortlists, the referral state machine and its available actions, reference data,
//! and the R4 endpoints for business functions and healthcare services.
//!
//! [`domain`] holds the rules and knows no HTTP and no SQL; [`repo`] keeps records in the
//! carehub store; `http` is the product's HTTP face, mounted by the gateway (which has already
//! authenticated the caller, applied limits and started the audit record).

pub mod clock;
pub mod domain;
mod http;
pub mod repo;
pub mod seed;

use std::sync::Arc;

use carehub_gateway::ProductFactory;

/// The service name APIs use in the platform configuration (`service = "ers"`).
pub const SERVICE: &str = "ers";

/// The product factory the binary registers with the gateway.
pub fn product() -> ProductFactory {
    product_with_clock(clock::Clock::system())
}

/// The product, reading time from `clock` (tests start it at a known hour of the week).
pub fn product_with_clock(clock: clock::Clock) -> ProductFactory {
    Arc::new(move |mount| http::router(mount, clock))
}
