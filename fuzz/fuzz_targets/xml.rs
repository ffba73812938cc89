//! Any text as a FHIR XML body: conversion must fail cleanly, and what converts must convert back.
#![no_main]

use carehub_fhir::FhirVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for version in FhirVersion::ALL {
        if let Ok(value) = carehub_fhir::xml::from_xml(version, text) {
            let _ = carehub_fhir::xml::to_xml(version, &value);
        }
    }
});
