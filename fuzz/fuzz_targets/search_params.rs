//! Any query string against a few resource types: search parsing must answer, never panic.
#![no_main]

use carehub_fhir::FhirVersion;
use carehub_fhir::search::{ParseOptions, parse_query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let pairs: Vec<(String, String)> = text
        .split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect();
    for version in FhirVersion::ALL {
        for resource_type in ["Patient", "Observation", "Encounter"] {
            let _ = parse_query(version.model(), resource_type, &pairs, &ParseOptions::default());
        }
    }
});
