//! `spawn`: carehub's default platform on 127.0.0.1:0 over a fresh database, with the GP
//! Connect provider and PDS mounted and seeded in `int`, and a consumer application with an
//! API key; `Consumer` sends requests as a consumer system does through the SSP (the SSP
//! headers and a fresh audit JWT on every call).

#![allow(dead_code, unreachable_pub)]

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gateway::testing::Served;
use carehub_gpconnect::domain::jwt;
use carehub_store::Store;
use serde_json::Value;

/// The home practice and its provider ASID.
pub const PRACTICE: &str = "B82617";
pub const PROVIDER_ASID: &str = "918999198738";
/// The consumer's ASID.
pub const CONSUMER_ASID: &str = "200000000359";

pub const FOUNDATIONS: &str = "urn:nhs:names:services:gpconnect:fhir:";

pub struct Env {
    pub url: String,
    pub root: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub api_key: String,
    pub apps: Apps,
    _served: Served,
}

pub async fn spawn() -> Env {
    spawn_with(PlatformConfig::default()).await
}

/// As [`spawn`], with `platform` (products' settings, say).
pub async fn spawn_with(platform: PlatformConfig) -> Env {
    let products = carehub_gateway::Products::new()
        .with(carehub_gpconnect::SERVICE, carehub_gpconnect::product())
        .with(carehub_spine::PDS_SERVICE, carehub_spine::pds_product())
        .with(carehub_spine::SDS_SERVICE, carehub_spine::sds_product())
        .with(carehub_spine::SSP_SERVICE, carehub_spine::ssp_product());
    let served = carehub_gateway::testing::serve(platform, &products, true, true).await;
    let (url, store) = (served.url.clone(), served.store.clone());
    let repo = carehub_gpconnect::repo::Repo::new(store.clone(), "gpconnect-int");
    assert!(
        carehub_gpconnect::seed::seed(&repo, &format!("{url}/int/gpconnect"))
            .await
            .expect("seeded")
    );
    let apps = Apps::new(store.clone());
    let (app, api_key) = apps
        .create("Consumer-INT", "int", "A11111")
        .await
        .expect("app registered");
    // The consumer system's ASID, which SDS authorises for every GP Connect interaction.
    apps.set_asid(&app.id, CONSUMER_ASID).await.expect("asid");
    Env {
        root: format!("{url}/int/gpconnect/{PRACTICE}/STU3/1/gpconnect"),
        url,
        client: reqwest::Client::new(),
        store,
        api_key,
        apps,
        _served: served,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The scope an interaction's token carries, as the provider test suite sends it.
pub fn scope_of(interaction: &str) -> &'static str {
    if interaction.contains("registerpatient")
        || interaction.contains(":create:")
        || interaction.contains(":update:")
        || interaction.contains(":cancel:")
    {
        "patient/*.write"
    } else if interaction.contains(":patient-1")
        || interaction.contains("appointment")
        || interaction.contains("getstructuredrecord")
    {
        "patient/*.read"
    } else {
        "organization/*.read"
    }
}

/// A request as a consumer sends it: API key, SSP headers, a fresh audit token.
pub struct Call {
    pub builder: reqwest::RequestBuilder,
}

impl Env {
    /// `method path` at the practice's root, for interaction `urn:...:{interaction}`.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        interaction: &str,
    ) -> reqwest::RequestBuilder {
        // A whole interaction id, or the part after `urn:nhs:names:services:gpconnect:fhir:`.
        let id = if interaction.starts_with("urn:") {
            interaction.to_owned()
        } else {
            format!("{FOUNDATIONS}{interaction}")
        };
        let token = jwt::token(&self.root, "A11111", "G13579135", scope_of(&id), now() - 2);
        self.raw(method, path)
            .header("Ssp-InteractionID", id)
            .bearer_auth(token)
    }

    /// The request with the API key and the SSP trace, from and to, nothing else.
    pub fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.root))
            .header("apikey", &self.api_key)
            .header("Ssp-TraceID", "0f4c4c3a-4e3a-4a47-9b1c-2a1f0e5b7c01")
            .header("Ssp-From", CONSUMER_ASID)
            .header("Ssp-To", PROVIDER_ASID)
    }

    pub async fn get(&self, path: &str, interaction: &str) -> (u16, Value) {
        send(self.call(reqwest::Method::GET, path, interaction)).await
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The Spine code of an OperationOutcome.
pub fn spine_code(outcome: &Value) -> &str {
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or("")
}

/// The resources of a searchset Bundle.
pub fn entries(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default()
}

/// Every issue of validating `resource` against the GP Connect profile `profile`.
pub fn profile_errors(resource: &Value, profile: &str) -> Vec<String> {
    let version = carehub_fhir::FhirVersion::Stu3;
    let set = carehub_fhir::profile::ProfileSet::for_version(version);
    set.validate(version.model(), resource, profile)
        .into_iter()
        .filter(|i| i.is_error())
        .map(|i| format!("{} at {:?}", i.diagnostics, i.expression))
        .collect()
}
