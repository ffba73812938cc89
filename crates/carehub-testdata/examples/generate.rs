//! Prints a pack as newline-delimited FHIR JSON, or times its generation, so that the data can
//! be eyeballed and the generator's speed measured in release mode.
//!
//! ```text
//! cargo run --release -p carehub-testdata --example generate -- [patients] [seed] [r4|stu3] [--time|--show N]
//! ```

use std::time::Instant;

use carehub_testdata::{FhirVersion, NHS_NUMBER_CAPACITY, Pack, PackSpec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let patients = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(NHS_NUMBER_CAPACITY);
    let seed = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let version = match args.get(2).map(String::as_str) {
        Some("stu3" | "STU3") => FhirVersion::Stu3,
        _ => FhirVersion::R4,
    };
    let mode = args.get(3).map(String::as_str).unwrap_or("--time");
    // Roughly England's ratios: ~1 practice per 9 000 patients, ~1 trust per 40 practices.
    let practices = u32::try_from(patients / 9_000).unwrap_or(u32::MAX).max(1);
    let pack = Pack::new(PackSpec {
        seed,
        patients,
        practices,
        trusts: (practices / 40).max(1),
        practitioners_per_org: 10,
    });

    if mode == "--show" {
        let n: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(3);
        for resource in pack.all_resources(version).take(n) {
            println!("{resource}");
        }
        return;
    }

    // One thread, as a caller iterating `patients()` sees it.
    let start = Instant::now();
    let mut keys = 0usize;
    let mut count = 0u64;
    for patient in pack.patients(version) {
        // Touch the value so the work cannot be optimised away.
        keys += patient.as_object().map_or(0, serde_json::Map::len);
        count += 1;
    }
    let one_thread = start.elapsed();
    println!(
        "{count} patients ({version:?}, seed {seed}) as JSON values, 1 thread: {:.2} s ({:.0}/s, {keys} top-level elements)",
        one_thread.as_secs_f64(),
        count as f64 / one_thread.as_secs_f64(),
    );

    // Records are independent by index, so a caller can split the range across threads.
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let start = Instant::now();
    let per_thread = patients.div_ceil(threads);
    let generated: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let pack = &pack;
                scope.spawn(move || {
                    let range = t * per_thread..((t + 1) * per_thread).min(pack.patient_count());
                    range.filter_map(|i| pack.patient(i, version)).count() as u64
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let parallel = start.elapsed();
    println!(
        "{generated} patients as JSON values, {threads} threads: {:.2} s ({:.0}/s)",
        parallel.as_secs_f64(),
        generated as f64 / parallel.as_secs_f64(),
    );

    // The same values serialised, as a loader would send them.
    let start = Instant::now();
    let mut bytes = 0usize;
    for patient in pack.patients(version) {
        bytes += serde_json::to_vec(&patient).map_or(0, |v| v.len());
    }
    println!(
        "{count} patients as JSON values serialised to bytes, 1 thread: {:.2} s ({bytes} bytes)",
        start.elapsed().as_secs_f64(),
    );
}
