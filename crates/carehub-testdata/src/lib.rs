//! Deterministic synthetic NHS test data at any size.
//!
//! Testing an NHS API needs a lot of data that looks real (valid NHS numbers, ODS codes, SDS
//! ids and job roles, UK addresses) but can never be mistaken for, or reach, a real person. This
//! crate makes such data from a seed: patients with NHS numbers in the 999 test range, GP
//! practices and NHS trusts with ODS codes, practitioners with SDS ids and roles, phone numbers
//! in Ofcom's drama ranges and email at `example.com`, as STU3 and R4 FHIR resources or as plain
//! records that other crates shape themselves.
//!
//! Everything is a pure function of the seed and the record's index: the same seed gives
//! byte-identical output on every platform and run, and any record can be generated alone.
//! Records are independent, so a caller can also split an index range across threads.
//!
//! A pack holds at most [`NHS_NUMBER_CAPACITY`] (900 000) patients: the 999 test range has only
//! [`VALID_NHS_NUMBERS_IN_TEST_RANGE`] (909 091) valid numbers in all, and synthetic patients
//! never leave it.
//!
//! ```ignore
//! let pack = Pack::new(PackSpec { seed: 42, patients: 100_000, ..PackSpec::default() });
//! let patient = pack.patient(50_000, FhirVersion::R4);
//! for resource in pack.all_resources(FhirVersion::Stu3) { /* load it */ }
//! ```

mod address;
mod date;
pub mod fhir;
mod ids;
mod names;
mod nhs_number;
mod ods;
mod pack;
mod places;
mod records;
mod rng;
mod sds;
mod text;

pub use address::{Address, is_drama_phone_number, is_valid_postcode_format};
pub use date::{Date, REFERENCE_DATE};
pub use fhir::FhirVersion;
pub use nhs_number::{
    InvalidNhsNumber, NHS_NUMBER_CAPACITY, NhsNumber, NhsNumberAllocator,
    VALID_NHS_NUMBERS_IN_TEST_RANGE, is_valid_nhs_number, nhs_number_check_digit,
};
pub use ods::{
    MAX_SITES_PER_TRUST, PRACTICE_CODE_CAPACITY, TRUST_CODE_CAPACITY, is_gp_practice_code,
    is_trust_code, is_trust_site_code,
};
pub use pack::{CapacityError, Pack, PackSpec};
pub use records::{
    Gender, OrganisationKind, OrganisationLink, OrganisationRecord, PatientRecord,
    PractitionerRecord,
};
pub use sds::{CONSULTANT, GENERAL_MEDICAL_PRACTITIONER, JobRole, SDS_ID_CAPACITY};
