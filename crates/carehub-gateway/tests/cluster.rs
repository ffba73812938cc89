//! Several nodes over one database: a limit holds across them because they count in the shared
//! store (`SharedLimiter`). Run against PostgreSQL when `DATABASE_URL` is set (as CI does), where
//! this is how carehub runs as a cluster; against SQLite otherwise, the same SQL. With
//! `REDIS_URL` set (as CI does), the same holds for nodes counting in Redis (`RedisLimiter`).

use std::sync::Arc;

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gateway::limits::{RateLimiter, RedisLimiter, SharedLimiter};
use carehub_store::Store;
use carehub_store::testing::fresh_database;

const PLATFORM: &str = r#"
[[products]]
api = "fhir-r4"
environment = "int"
access = ["api-key"]
[products.ratelimiting.app.quota]
limit = 5
interval = 1
timeunit = "hour"

[[products]]
api = "fhir-stu3"
environment = "int"
access = ["api-key"]
[products.ratelimiting.proxy.spikeArrest]
ratelimit = "1pm"
"#;

#[tokio::test]
async fn a_quota_and_a_spike_arrest_hold_across_two_nodes() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.expect("store opens");
    let shared = || -> Arc<dyn RateLimiter> { Arc::new(SharedLimiter::new(store.clone())) };
    limits_hold_across(&store, [shared(), shared()]).await;
}

#[tokio::test]
async fn a_quota_and_a_spike_arrest_hold_across_two_nodes_counting_in_redis() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("REDIS_URL is not set: the Redis limiter is not tested");
        return;
    };
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.expect("store opens");
    // A namespace of its own, so that runs sharing the server do not count each other.
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    let redis = || async {
        Arc::new(
            RedisLimiter::connect(&url, &namespace)
                .await
                .expect("Redis at REDIS_URL"),
        ) as Arc<dyn RateLimiter>
    };
    limits_hold_across(&store, [redis().await, redis().await]).await;
}

/// Two nodes, each counting with its own limiter over the shared counters.
async fn limits_hold_across(store: &Store, limiters: [Arc<dyn RateLimiter>; 2]) {
    let platform = PlatformConfig::from_toml(PLATFORM).expect("config parses");
    let products = carehub_gateway::Products::new();
    let [first, second] = limiters;
    let nodes = [
        carehub_gateway::testing::node(&platform, store.clone(), first, &products).await,
        carehub_gateway::testing::node(&platform, store.clone(), second, &products).await,
    ];
    let (_, key) = Apps::new(store.clone())
        .create("Clustered", "int", "AAA01")
        .await
        .expect("app");
    let client = reqwest::Client::new();
    let mut admitted = Vec::new();
    let mut remaining = Vec::new();
    for n in 0..12 {
        let response = client
            .get(format!("{}/int/fhir/R4/Patient", nodes[n % 2]))
            .header("apikey", &key)
            .send()
            .await
            .expect("sent");
        if response.status() == 200 {
            admitted.push(n % 2);
            remaining.push(
                response.headers()["ratelimit-remaining"]
                    .to_str()
                    .map(str::to_owned)
                    .unwrap_or_default(),
            );
        } else {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    // Five in the hour, whichever node took them, counted down as one quota.
    assert_eq!(admitted, [0, 1, 0, 1, 0]);
    assert_eq!(remaining, ["4", "3", "2", "1", "0"]);

    // One a minute for the STU3 API, across both nodes: the second node refuses at once.
    let stu3 = |node: &str| {
        client
            .get(format!("{node}/int/fhir/STU3/Patient"))
            .header("apikey", &key)
            .send()
    };
    assert_eq!(stu3(&nodes[0]).await.expect("sent").status(), 200);
    let refused = stu3(&nodes[1]).await.expect("sent");
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    assert!((1..=60).contains(&wait), "{wait}");
}
