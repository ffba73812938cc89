//! Round-trips every official FHIR R4 example through JSON -> XML -> JSON, because hand-written
//! tests cannot cover the thousands of element combinations the examples exercise.
//!
//! The examples are not committed: `scripts/fetch-r4-examples.sh` unpacks the npm package
//! `hl7.fhir.r4.examples@4.0.1` into `target/fhir-examples/r4/package`. Without it the test
//! prints a note and passes, so a plain `cargo test` needs no network; CI runs the script first.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use carehub_fhir::FhirVersion;
use carehub_fhir::xml::{from_xml, to_xml};
use serde_json::Value;

/// Examples that are expected not to round-trip, each with the reason. The test fails when one
/// of these starts passing, so the list cannot go stale.
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fhir-examples/r4/package")
}

/// The location of the first difference between two JSON values, for a readable failure.
fn first_difference(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(left), Value::Object(right)) => {
            for (key, value) in left {
                let child = format!("{path}.{key}");
                match right.get(key) {
                    Some(other) => {
                        if let Some(found) = first_difference(value, other, &child) {
                            return Some(found);
                        }
                    }
                    None => return Some(format!("{child} is missing")),
                }
            }
            right
                .keys()
                .find(|key| !left.contains_key(*key))
                .map(|key| format!("{path}.{key} was added"))
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => left
            .iter()
            .zip(right)
            .enumerate()
            .find_map(|(index, (a, b))| first_difference(a, b, &format!("{path}[{index}]"))),
        _ if expected == actual => None,
        (Value::String(left), Value::String(right)) => {
            // Long strings (narratives) are shown around the first differing character.
            let at = left
                .char_indices()
                .zip(right.chars())
                .find(|((_, a), b)| a != b)
                .map_or(left.len().min(right.len()), |((index, _), _)| index);
            let excerpt = |text: &str| {
                let start = text.floor_char_boundary(at.saturating_sub(40));
                let end = text.ceil_char_boundary((at + 40).min(text.len()));
                format!("{:?}", &text[start..end])
            };
            Some(format!(
                "{path}: strings differ at byte {at}: expected ...{}..., got ...{}...",
                excerpt(left),
                excerpt(right)
            ))
        }
        _ => Some(format!("{path}: expected {expected}, got {actual}")),
    }
}

/// What happened to one example.
enum Outcome {
    RoundTripped,
    /// Not a resource (package metadata, or JSON without `resourceType`).
    Skipped,
    Failed(String),
}

/// Reads one example file and round-trips it, timing the two conversions.
fn check_file(path: &Path) -> (String, Outcome, Duration) {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("?")
        .to_owned();
    let mut elapsed = Duration::ZERO;
    let outcome = match fs::read_to_string(path)
        .map_err(|err| err.to_string())
        .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|err| err.to_string()))
    {
        Ok(json) => round_trip(&json, &mut elapsed),
        Err(err) => Outcome::Failed(format!("unreadable JSON: {err}")),
    };
    (name, outcome, elapsed)
}

fn round_trip(json: &Value, timing: &mut Duration) -> Outcome {
    if json.get("resourceType").and_then(Value::as_str).is_none() {
        return Outcome::Skipped;
    }
    let started = Instant::now();
    let xml = match to_xml(FhirVersion::R4, json) {
        Ok(xml) => xml,
        Err(err) => return Outcome::Failed(format!("to_xml: {err}")),
    };
    let back = match from_xml(FhirVersion::R4, &xml) {
        Ok(back) => back,
        Err(err) => return Outcome::Failed(format!("from_xml of our own XML: {err}")),
    };
    *timing += started.elapsed();
    match first_difference(json, &back, "") {
        None => Outcome::RoundTripped,
        Some(difference) => Outcome::Failed(format!("changed in the round trip: {difference}")),
    }
}

#[test]
fn official_r4_examples_round_trip_through_xml() {
    let dir = examples_dir();
    if !dir.is_dir() {
        println!(
            "note: {} is absent; run scripts/fetch-r4-examples.sh to test the official examples",
            dir.display()
        );
        return;
    }
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("the examples directory is readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            name != "package.json" && name != ".index.json"
        })
        .collect();
    files.sort();

    // The examples are independent, so they are shared among the cores: the whole set is a
    // couple of hundred megabytes of JSON, slow to convert in a debug build on one core.
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get());
    let chunk_size = files.len().div_ceil(threads).max(1);
    let results: Vec<(String, Outcome, Duration)> = std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk_size)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|path| check_file(path))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("an example worker panicked"))
            .collect()
    });
    let mut conversion_time = Duration::ZERO;
    let (mut passed, mut skipped) = (0usize, 0usize);
    let mut failures: Vec<(String, String)> = Vec::new();
    for (name, outcome, elapsed) in results {
        conversion_time += elapsed;
        match outcome {
            Outcome::RoundTripped => passed += 1,
            Outcome::Skipped => skipped += 1,
            Outcome::Failed(reason) => failures.push((name, reason)),
        }
    }

    // The package may also hold the XML form of examples; where it does, reading the XML must
    // give the JSON form. (hl7.fhir.r4.examples 4.0.1 ships JSON only.)
    let mut xml_compared = 0usize;
    let xml_files = fs::read_dir(&dir)
        .expect("the examples directory is readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "xml"));
    for xml_path in xml_files {
        let json_path = xml_path.with_extension("json");
        let (Ok(xml), Ok(json_text)) = (
            fs::read_to_string(&xml_path),
            fs::read_to_string(&json_path),
        ) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<Value>(&json_text) else {
            continue;
        };
        xml_compared += 1;
        let name = xml_path.display().to_string();
        match from_xml(FhirVersion::R4, &xml) {
            Ok(read) => {
                if let Some(difference) = first_difference(&json, &read, "") {
                    failures.push((name, format!("XML differs from JSON: {difference}")));
                }
            }
            Err(err) => failures.push((name, format!("from_xml: {err}"))),
        }
    }

    let total = files.len() - skipped;
    println!(
        "official R4 examples: {passed} of {total} resources round-trip through XML \
         ({skipped} non-resource files skipped, {} failed, {xml_compared} XML forms compared); \
         conversion {:.2?} (summed over {threads} threads), whole test {:.2?}",
        failures.len(),
        conversion_time,
        started.elapsed()
    );

    let is_known = |name: &str| KNOWN_EXCEPTIONS.iter().any(|(known, _)| *known == name);
    let unexpected: Vec<&(String, String)> = failures
        .iter()
        .filter(|(name, _)| !is_known(name))
        .collect();
    let stale: Vec<&str> = KNOWN_EXCEPTIONS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !failures.iter().any(|(failed, _)| failed == name))
        .collect();
    for (name, reason) in &failures {
        println!(
            "  {}{name}: {reason}",
            if is_known(name) { "(known) " } else { "" }
        );
    }
    assert!(
        unexpected.is_empty(),
        "{} examples failed to round-trip (first: {} — {})",
        unexpected.len(),
        unexpected[0].0,
        unexpected[0].1
    );
    assert!(
        stale.is_empty(),
        "known exceptions that now pass, remove them from KNOWN_EXCEPTIONS: {stale:?}"
    );
}
