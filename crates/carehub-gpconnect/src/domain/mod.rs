//! GP Connect's rules, with no HTTP and no SQL: the error table ([`error`]), interactions and
//! their scopes ([`interaction`]), the audit token ([`jwt`]), the SSP headers ([`ssp`]), the
//! directory ([`directory`]), patients and registration ([`patient`]), the clinical record
//! ([`record`]) and its two views: Access Record Structured ([`structured`]) and Access Record
//! HTML ([`carerecord`] for the request, [`html`] for the sections).

pub mod appointment;
pub mod capability;
pub mod carerecord;
pub mod clock;
pub mod directory;
pub mod error;
pub mod html;
pub mod interaction;
pub mod jwt;
pub mod patient;
pub mod record;
pub mod schedule;
pub mod ssp;
pub mod structured;

pub use error::{GpcError, SpineCode, Status};
pub use interaction::Interaction;

/// NHS numbers.
pub const SYSTEM_NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// ODS organisation codes.
pub const SYSTEM_ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// ODS site codes.
pub const SYSTEM_ODS_SITE: &str = "https://fhir.nhs.uk/Id/ods-site-code";
/// SDS user ids.
pub const SYSTEM_SDS_USER: &str = "https://fhir.nhs.uk/Id/sds-user-id";
/// SDS role profile ids.
pub const SYSTEM_SDS_ROLE: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";
/// Directory of Services ids of healthcare services.
pub const SYSTEM_DOS_SERVICE: &str = "https://fhir.nhs.uk/Id/uec-dos-service-id";
