//! FHIR data for carehub: what the resources of each FHIR version look like, and how to read,
//! write, check and search them. Knows no HTTP and no SQL.

pub mod datetime;
pub mod fhirpath;
pub mod json;
pub mod model;
pub mod outcome;
pub mod profile;
pub mod search;
pub mod xml;

pub use model::FhirVersion;
pub use outcome::{Issue, IssueType, Severity};
