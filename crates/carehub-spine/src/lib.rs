//! The Spine services that GP Connect and e-RS lean on, as carehub serves them in its
//! integration environments. Today: the Personal Demographics Service ([`pds`]), as the PDS
//! FHIR R4 API (`/{env}/personal-demographics/FHIR/R4`), over records kept in the carehub
//! store and read by other products in the same process.

pub mod pds;
mod pds_http;

use std::sync::Arc;

use carehub_gateway::ProductFactory;

/// The service name of the PDS API in the platform configuration (`service = "pds"`).
pub const PDS_SERVICE: &str = "pds";

/// The PDS product the binary registers with the gateway.
pub fn pds_product() -> ProductFactory {
    Arc::new(pds_http::router)
}

/// Whether `text` is a ten-digit NHS number with a valid check digit.
pub fn is_valid_nhs_number(text: &str) -> bool {
    carehub_testdata::is_valid_nhs_number(text)
}
