//! `$gpc.getstructuredrecord` and Access Record HTML's `$gpc.getcarerecord` of a large record,
//! through the gateway as a consumer calls them.
//!
//! `cargo bench -p carehub-gpconnect --bench structured_record` (SQLite in a temporary file;
//! set DATABASE_URL for PostgreSQL). Patient 2 gets records of 100 and of 500 items per area
//! (allergies, repeat medication courses of 12 issues each, immunisations, observations); each
//! is retrieved with every served area, then as the HTML Medications and Summary sections, each
//! for 6 seconds, one request at a time.

use std::time::{Duration, Instant};

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gpconnect::repo::Repo;
use serde_json::{Value, json};

/// The allocator of the `carehub` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUN: Duration = Duration::from_secs(6);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let products = carehub_gateway::Products::new()
        .with(carehub_gpconnect::SERVICE, carehub_gpconnect::product());
    let served =
        carehub_gateway::testing::serve(PlatformConfig::default(), &products, true, false).await;
    let repo = Repo::new(served.store.clone(), "gpconnect-int");
    let url = served.url.clone();
    carehub_gpconnect::seed::seed(&repo, &format!("{url}/int/gpconnect"))
        .await
        .expect("seeded");
    let (_, api_key) = Apps::new(served.store.clone())
        .create("Bench-Consumer", "int", "A11111")
        .await
        .expect("app");
    let client = reqwest::Client::new();
    let endpoint = format!(
        "{url}/int/gpconnect/B82617/STU3/1/gpconnect/structured/Patient/$gpc.getstructuredrecord"
    );
    let html_endpoint =
        format!("{url}/int/gpconnect/B82617/DSTU2/0/gpconnect/Patient/$gpc.getcarerecord");
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patientNHSNumber", "valueIdentifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9690937286"}},
        {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": true}]},
        {"name": "includeMedication"},
        {"name": "includeImmunisations"},
        {"name": "includeUncategorisedData"},
    ]})
    .to_string();
    for items in [100, 500] {
        repo.put_records(vec![carehub_gpconnect::seed::large_record("2", items)])
            .await
            .expect("record");
        let token =
            carehub_gpconnect::domain::jwt::token("aud", "A11111", "UNK", "patient/*.read", now());
        let send = || {
            client
                .post(&endpoint)
                .header("apikey", &api_key)
                .header("content-type", "application/fhir+json")
                .header("Ssp-TraceID", "0f4c4c3a-4e3a-4a47-9b1c-2a1f0e5b7c01")
                .header("Ssp-From", "200000000359")
                .header("Ssp-To", carehub_gpconnect::seed::HOME_PRACTICE.1)
                .header(
                    "Ssp-InteractionID",
                    "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1",
                )
                .bearer_auth(&token)
                .body(body.clone())
                .send()
        };
        let first: Value = send().await.expect("sent").json().await.expect("json");
        let resources = first["entry"].as_array().map(Vec::len).unwrap_or(0);
        let stats = measure(send).await;
        println!("{items:>4} items per area, structured: {resources:>6} resources, {stats}");

        let token = carehub_gpconnect::domain::jwt::token_dstu2(
            &carehub_gpconnect::domain::jwt::RequestedRecord::Patient("9690937286".into()),
            "A11111",
            "UNK",
            "patient/*.read",
            now(),
        );
        for section in ["MED", "SUM"] {
            let body = json!({"resourceType": "Parameters", "parameter": [
                {"name": "patientNHSNumber", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": "9690937286"}},
                {"name": "recordSection", "valueCodeableConcept": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1", "code": section}]}},
            ]})
            .to_string();
            let send = || {
                client
                    .post(&html_endpoint)
                    .header("apikey", &api_key)
                    .header("content-type", "application/json+fhir")
                    .header("Ssp-TraceID", "0f4c4c3a-4e3a-4a47-9b1c-2a1f0e5b7c01")
                    .header("Ssp-From", "200000000359")
                    .header("Ssp-To", carehub_gpconnect::seed::HOME_PRACTICE.1)
                    .header(
                        "Ssp-InteractionID",
                        "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord",
                    )
                    .bearer_auth(&token)
                    .body(body.clone())
                    .send()
            };
            let stats = measure(send).await;
            println!("{items:>4} items per area, HTML {section}: {stats}");
        }
    }
}

/// Sends requests one at a time for [`RUN`]: the body size of the last and the latencies.
async fn measure<F, R>(send: F) -> String
where
    F: Fn() -> R,
    R: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut latencies = Vec::new();
    let mut bytes = 0;
    let started = Instant::now();
    while started.elapsed() < RUN {
        let began = Instant::now();
        let response = send().await.expect("sent");
        assert_eq!(response.status(), 200);
        bytes = response.bytes().await.expect("body").len();
        latencies.push(began.elapsed());
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    format!(
        "{:>6} KB: p50 {:>7.2} ms, p95 {:>7.2} ms, {:>6.1} req/s",
        bytes / 1024,
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.95).as_secs_f64() * 1e3,
        latencies.len() as f64 / started.elapsed().as_secs_f64()
    )
}
