//! Any bytes as a FHIR JSON body: parsing and validation must return issues, never panic.
#![no_main]

use carehub_fhir::FhirVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for version in FhirVersion::ALL {
        let _ = carehub_fhir::json::parse_resource(version, data);
    }
});
