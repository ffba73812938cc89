//! The Spine services that GP Connect and e-RS lean on, as carehub serves them in its
//! integration environments: the Personal Demographics Service ([`pds`], the PDS FHIR R4 API at
//! `/{env}/personal-demographics/FHIR/R4`), the Spine Directory Service ([`sds`], the SDS FHIR
//! API at `/{env}/spine-directory/FHIR/R4`) and the Spine Secure Proxy ([`ssp`], at
//! `/{env}/ssp/{provider service root}/...`), over records kept in the carehub store and read
//! by other products in the same process.

pub mod pds;
mod pds_http;
pub mod sds;
mod sds_http;
pub mod ssp;
mod ssp_http;

use std::sync::Arc;

use carehub_gateway::ProductFactory;

/// The service name of the PDS API in the platform configuration (`service = "pds"`).
pub const PDS_SERVICE: &str = "pds";

/// The PDS product the binary registers with the gateway.
pub fn pds_product() -> ProductFactory {
    Arc::new(pds_http::router)
}

/// The service name of the SDS FHIR API (`service = "sds"`).
pub const SDS_SERVICE: &str = "sds";

/// The SDS product the binary registers with the gateway.
pub fn sds_product() -> ProductFactory {
    Arc::new(sds_http::router)
}

/// The service name of the Spine Secure Proxy (`service = "ssp"`).
pub const SSP_SERVICE: &str = "ssp";

/// The SSP product the binary registers with the gateway.
pub fn ssp_product() -> ProductFactory {
    Arc::new(ssp_http::router)
}

/// Whether `text` is a ten-digit NHS number with a valid check digit.
pub fn is_valid_nhs_number(text: &str) -> bool {
    carehub_testdata::is_valid_nhs_number(text)
}
