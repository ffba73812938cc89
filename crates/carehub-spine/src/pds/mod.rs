//! The Personal Demographics Service: records ([`record`]), their R4 view ([`view`]), patient
//! search ([`search`]) and PDS's errors ([`error`]) know no HTTP and no SQL; [`repo`] keeps the
//! records in the store; [`seed`] is the population `carehub up` loads.

pub mod error;
pub mod record;
pub mod repo;
pub mod search;
pub mod seed;
pub mod view;

pub use record::PdsPatient;
