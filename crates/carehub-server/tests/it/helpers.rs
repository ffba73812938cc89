//! `spawn_app`: a real carehub FHIR server on 127.0.0.1:0 over a fresh database (SQLite, or
//! PostgreSQL when `DATABASE_URL` is set), and a client that talks to it.

use carehub_server::{ServerConfig, router};
use carehub_store::Store;
use carehub_store::testing::{TestDatabase, fresh_database};
use serde_json::Value;

pub(crate) struct TestApp {
    pub(crate) url: String,
    pub(crate) client: reqwest::Client,
    // Keeps the database alive (and removes its file) for the test's duration.
    _database: TestDatabase,
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.expect("store opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let mut config = ServerConfig {
        public_url: url.clone(),
        ..ServerConfig::default()
    };
    adjust(&mut config);
    let app = router(&config, store);
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server runs");
    });
    TestApp {
        url,
        client: reqwest::Client::new(),
        _database: database,
    }
}

pub(crate) const FHIR_JSON: &str = "application/fhir+json";

impl TestApp {
    pub(crate) fn r4(&self, path: &str) -> String {
        format!("{}/fhir/R4{path}", self.url)
    }

    pub(crate) fn stu3(&self, path: &str) -> String {
        format!("{}/fhir/STU3{path}", self.url)
    }

    pub(crate) async fn post(&self, url: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(url)
            .header("content-type", FHIR_JSON)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent")
    }

    pub(crate) async fn put(&self, url: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(url)
            .header("content-type", FHIR_JSON)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent")
    }

    pub(crate) async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.expect("request sent")
    }

    pub(crate) async fn get_json(&self, url: &str) -> (u16, Value) {
        let response = self.get(url).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// Creates a resource and returns it as stored.
    pub(crate) async fn create(&self, url: &str, body: &Value) -> Value {
        let response = self.post(url, body).await;
        assert_eq!(response.status().as_u16(), 201, "create failed");
        response.json().await.expect("JSON body")
    }
}

/// The first issue's `expression` of an OperationOutcome.
pub(crate) fn outcome_location(outcome: &Value) -> Vec<String> {
    outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|issue| issue["expression"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect()
}

pub(crate) fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect()
}

pub(crate) fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str().map(str::to_owned))
}

pub(crate) fn patient(
    family: &str,
    given: &str,
    nhs_number: &str,
    birth_date: &str,
    gender: &str,
) -> Value {
    serde_json::json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number}],
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth_date
    })
}
