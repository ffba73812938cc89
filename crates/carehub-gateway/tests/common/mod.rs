//! `spawn_app`: a real server on 127.0.0.1:0 over a fresh database, with the gateway configured
//! from TOML.

#![allow(dead_code)]

use std::sync::Arc;

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gateway::identity::Identity;
use carehub_gateway::limits::LocalLimiter;
use carehub_store::Store;
use carehub_store::testing::{TestDatabase, fresh_database};
use serde_json::Value;

pub(crate) struct TestApp {
    pub(crate) url: String,
    pub(crate) client: reqwest::Client,
    pub(crate) apps: Apps,
    pub(crate) identity: Identity,
    _database: TestDatabase,
}

pub(crate) async fn spawn_app(platform: &str) -> TestApp {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.expect("store opens");
    let platform = PlatformConfig::from_toml(platform).expect("config parses");
    let url = carehub_gateway::testing::node(
        &platform,
        store.clone(),
        Arc::new(LocalLimiter::default()),
        &carehub_gateway::Products::new(),
    )
    .await;
    let identity = Identity::new(store.clone(), &url);
    TestApp {
        url,
        client: reqwest::Client::new(),
        apps: Apps::new(store.clone()),
        identity,
        _database: database,
    }
}

pub(crate) async fn outcome(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) fn spine_code(outcome: &Value) -> &str {
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}
