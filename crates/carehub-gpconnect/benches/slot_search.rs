//! Free-slot search over a busy practice, through the gateway as a consumer calls it.
//!
//! `cargo bench -p carehub-gpconnect --bench slot_search` (SQLite in a temporary file; set
//! DATABASE_URL to a PostgreSQL server to measure that instead). The practice B82617 gets 60
//! extra schedules of 20 slots a weekday (about 12,000 slots in a 14-day window), a quarter of
//! the first week's slots booked; the bench then searches a 14-day and a 1-day window, one
//! request at a time, and reports the slots returned, the latency percentiles and requests/s.

use std::time::{Duration, Instant};

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gpconnect::domain::appointment::{BookingRequest, GpAppointment};
use carehub_gpconnect::domain::schedule::{Schedule, Session};
use carehub_gpconnect::repo::Repo;
use serde_json::{Value, json};

/// The allocator of the `carehub` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SCHEDULES: usize = 60;
const RUN: Duration = Duration::from_secs(6);

fn busy_schedules() -> Vec<Schedule> {
    let template = carehub_gpconnect::seed::schedules().remove(0);
    (0..SCHEDULES)
        .map(|n| Schedule {
            id: format!("{}", 100 + n),
            sessions: vec![
                Session {
                    start: 9 * 60,
                    count: 12,
                    minutes: 10,
                },
                Session {
                    start: 14 * 60,
                    count: 8,
                    minutes: 15,
                },
            ],
            ..template.clone()
        })
        .collect()
}

fn day_text(offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = carehub_fhir::datetime::civil_from_days(now / 86_400 + offset);
    format!("{y:04}-{m:02}-{d:02}")
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

async fn measure(client: &reqwest::Client, url: &str, api_key: &str, label: &str) {
    let token = carehub_gpconnect::domain::jwt::token(
        "aud",
        "A11111",
        "UNK",
        "organization/*.read",
        now_micros() / 1_000_000,
    );
    let send = || {
        client
            .get(url)
            .header("apikey", api_key)
            .header("Ssp-TraceID", "0f4c4c3a-4e3a-4a47-9b1c-2a1f0e5b7c01")
            .header("Ssp-From", "200000000359")
            .header("Ssp-To", carehub_gpconnect::seed::HOME_PRACTICE.1)
            .header(
                "Ssp-InteractionID",
                "urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1",
            )
            .bearer_auth(&token)
            .send()
    };
    let first: Value = send().await.expect("sent").json().await.expect("json");
    let slots = first["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["resource"]["resourceType"] == "Slot")
                .count()
        })
        .unwrap_or(0);
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut bytes = 0;
    while started.elapsed() < RUN {
        let began = Instant::now();
        let response = send().await.expect("sent");
        assert_eq!(response.status(), 200);
        bytes = response.bytes().await.expect("body").len();
        latencies.push(began.elapsed());
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{label:<18} {slots:>6} slots, {:>5} KB: p50 {:>7.2} ms, p95 {:>7.2} ms, {:>6.1} req/s",
        bytes / 1024,
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.95).as_secs_f64() * 1e3,
        latencies.len() as f64 / started.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let products = carehub_gateway::Products::new()
        .with(carehub_gpconnect::SERVICE, carehub_gpconnect::product());
    let served =
        carehub_gateway::testing::serve(PlatformConfig::default(), &products, true, false).await;
    let (url, store) = (served.url.clone(), served.store.clone());
    let repo = Repo::new(store.clone(), "gpconnect-int");
    carehub_gpconnect::seed::seed(&repo, &format!("{url}/int/gpconnect"))
        .await
        .expect("seeded");
    let schedules = busy_schedules();
    repo.put_all(schedules.clone()).await.expect("schedules");
    // Book a quarter of the first week's slots.
    let now = now_micros();
    let mut booked = 0;
    for schedule in &schedules {
        for (n, slot) in schedule
            .slots_between(now, now + 7 * 86_400_000_000)
            .into_iter()
            .enumerate()
        {
            if n % 4 != 0 {
                continue;
            }
            let schedule = schedule.clone();
            let request = BookingRequest {
                slots: vec![slot.id.clone()],
                start: slot.start,
                end: slot.end,
                patient: "2".into(),
                location: schedule.location.clone(),
                practitioner: None,
                description: "Benchmark booking".into(),
                comment: None,
                created: "2026-11-30T10:00:00+00:00".into(),
                booking_organisation: json!({"resourceType": "Organization", "id": "1", "name": "Bench",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A11111"}],
                    "telecom": [{"system": "phone", "value": "0113 496 0999"}]}),
            };
            repo.book(
                move |id| GpAppointment::book(id, request, &schedule),
                |_| None,
            )
            .await
            .expect("booked");
            booked += 1;
        }
    }
    println!(
        "B82617 with {} schedules; {booked} appointments booked",
        SCHEDULES + 4
    );
    let apps = Apps::new(store.clone());
    let (_, api_key) = apps
        .create("Bench-Consumer", "int", "A11111")
        .await
        .expect("app");
    let client = reqwest::Client::new();
    let root = format!("{url}/int/gpconnect/B82617/STU3/1/gpconnect");
    for (label, days) in [("14-day window", 14), ("1-day window", 0)] {
        let search = format!(
            "{root}/Slot?start=ge{}&end=le{}&status=free&_include=Slot:schedule\
             &searchFilter=https://fhir.nhs.uk/Id/ods-organization-code%7CA11111",
            day_text(1),
            day_text(1 + days)
        );
        measure(&client, &search, &api_key, label).await;
    }
}
