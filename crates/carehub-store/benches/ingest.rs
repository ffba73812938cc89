//! Durable ingest through the group-committing writer, set against the disk's own fsync rate.
//!
//! `cargo bench -p carehub-store --bench ingest` (SQLite in a temporary file; set DATABASE_URL to
//! a PostgreSQL server to measure that instead). For each number of concurrent writers it
//! reports resources written per second, each write acknowledged only after its commit; the
//! fsync probe gives the ceiling a one-fsync-per-write design would hit. PostgreSQL is measured
//! with 1, 2, 4 and 8 writer tasks.

use std::time::{Duration, Instant};

use carehub_store::testing::fresh_database;
use carehub_store::{Expect, Store};
use serde_json::json;

const RUN: Duration = Duration::from_secs(4);

fn fsync_rate(dir: &std::path::Path) -> f64 {
    use std::io::Write;
    let path = dir.join("carehub-fsync-probe");
    let Ok(mut file) = std::fs::File::create(&path) else {
        return f64::NAN;
    };
    let started = Instant::now();
    let mut count = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        let _ = file.write_all(&[0u8; 4096]);
        let _ = file.sync_data();
        count += 1;
    }
    let _ = std::fs::remove_file(path);
    f64::from(count) / started.elapsed().as_secs_f64()
}

/// Writes new Patients from `writers` concurrent tasks for [`RUN`]; ids start with `run`, so that
/// every run creates rather than updates.
async fn run(store: &Store, writers: usize, run_name: &str) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        let run_name = run_name.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut written = 0u64;
            while started.elapsed() < RUN {
                let id = format!("{run_name}-w{writer}-{written}");
                store
                    .write(move |tx| {
                        Box::pin(async move {
                            let patient = json!({"resourceType": "Patient", "name": [{"family": "Ingest"}], "birthDate": "1970-01-01"});
                            tx.put("bench", "Patient", &id, patient, &[], Expect::Any).await
                        })
                    })
                    .await
                    .expect("write");
                written += 1;
            }
            written
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("writer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let database = fresh_database().await;
        let postgres = !database.config.url.starts_with("sqlite:");
        println!(
            "database: {}",
            database.config.url.split('?').next().unwrap_or_default()
        );
        println!(
            "disk fsync rate ({}): {:.0}/s",
            std::env::temp_dir().display(),
            fsync_rate(&std::env::temp_dir())
        );
        // SQLite has one writer whatever the setting; PostgreSQL is measured with each.
        let writer_counts: &[u32] = if postgres { &[1, 2, 4, 8] } else { &[1] };
        for &writer_tasks in writer_counts {
            let mut config = database.config.clone();
            config.writers = writer_tasks;
            let store = Store::open(&config).await.expect("store");
            for writers in [1, 16, 64, 256] {
                let rate = run(&store, writers, &format!("t{writer_tasks}c{writers}")).await;
                println!(
                    "{writer_tasks} writer task(s), {writers:>4} concurrent writers: {rate:>8.0} durable writes/s"
                );
            }
            store.close().await;
        }
    });
}
