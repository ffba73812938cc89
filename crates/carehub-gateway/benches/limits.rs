//! How exactly a quota holds under overload: ten times its limit sent as fast as 32 concurrent
//! clients can, to one node counting in memory, to one and two nodes counting in the shared
//! store, and (with REDIS_URL set) to two nodes counting in Redis.
//!
//! `cargo bench -p carehub-gateway --bench limits` (SQLite in a temporary file; set DATABASE_URL
//! for PostgreSQL, where two nodes is how carehub runs as a cluster, and REDIS_URL for Redis).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gateway::limits::{LocalLimiter, RateLimiter, RedisLimiter, SharedLimiter};
use carehub_store::Store;
use carehub_store::testing::fresh_database;

const LIMIT: usize = 1_000;
const CLIENTS: usize = 32;

fn platform() -> PlatformConfig {
    PlatformConfig::from_toml(&format!(
        "[[products]]\napi = \"fhir-r4\"\nenvironment = \"int\"\naccess = [\"api-key\"]\n\
         [products.ratelimiting.app.quota]\nlimit = {LIMIT}\ninterval = 1\ntimeunit = \"hour\"\n"
    ))
    .expect("config parses")
}

/// Where the nodes count.
#[derive(Clone, Copy)]
enum Counters {
    Memory,
    Store,
    Redis,
}

async fn overload(label: &str, counters: Counters, nodes: usize) {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.expect("store opens");
    let local: Arc<dyn RateLimiter> = Arc::new(LocalLimiter::default());
    let namespace = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let mut urls = Vec::new();
    for _ in 0..nodes {
        let limiter: Arc<dyn RateLimiter> = match counters {
            Counters::Memory => local.clone(),
            Counters::Store => Arc::new(SharedLimiter::new(store.clone())),
            Counters::Redis => Arc::new(
                RedisLimiter::connect(&std::env::var("REDIS_URL").expect("REDIS_URL"), &namespace)
                    .await
                    .expect("Redis at REDIS_URL"),
            ),
        };
        urls.push(
            carehub_gateway::testing::node(
                &platform(),
                store.clone(),
                limiter,
                &carehub_gateway::Products::new(),
            )
            .await,
        );
    }
    let (_, key) = Apps::new(store.clone())
        .create("Overload", "int", "AAA01")
        .await
        .expect("app");
    let client = reqwest::Client::new();
    let admitted = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let total = LIMIT * 10;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (client, key, urls) = (client.clone(), key.clone(), urls.clone());
        let (admitted, next) = (admitted.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let response = client
                    .get(format!("{}/int/fhir/R4/metadata", urls[n % urls.len()]))
                    .header("apikey", &key)
                    .send()
                    .await
                    .expect("sent");
                match response.status().as_u16() {
                    200 => {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                    429 => {}
                    other => panic!("unexpected status {other}"),
                }
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = admitted.load(Ordering::Relaxed);
    println!(
        "{label:<40} {total} requests, limit {LIMIT}: admitted {admitted} ({:+.2}% of the limit), {:.0} req/s",
        (admitted as f64 - LIMIT as f64) * 100.0 / LIMIT as f64,
        total as f64 / elapsed
    );
}

#[tokio::main]
async fn main() {
    overload("one node, counters in memory", Counters::Memory, 1).await;
    overload("one node, counters in the store", Counters::Store, 1).await;
    overload("two nodes, counters in the store", Counters::Store, 2).await;
    if std::env::var("REDIS_URL").is_ok() {
        overload("two nodes, counters in Redis", Counters::Redis, 2).await;
    }
}
