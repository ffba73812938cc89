//! Black-box tests of the gateway: a real server on 127.0.0.1:0 over a fresh database, products
//! configured from TOML, applications registered through the library, requests over HTTP.

mod common;

use carehub_gateway::config::PlatformConfig;
use common::{TestApp, outcome, spine_code};
use serde_json::{Value, json};

const PLATFORM: &str = r#"
[[environments]]
name = "sandbox"
kind = "sandbox"

[[environments]]
name = "int"

[[environments]]
name = "admin"

[[apis]]
name = "audit"
path = "audit/R4"
fhir = "R4"

[[products]]
api = "audit"
environment = "admin"
access = ["api-key"]
store_key = "audit"
audit = false

[[apis]]
name = "fhir-r4"
path = "fhir/R4"
fhir = "R4"

[[apis]]
name = "old-api"
path = "old/R4"
fhir = "R4"

[[apis]]
name = "gone-api"
path = "gone/R4"
fhir = "R4"

[[products]]
api = "fhir-r4"
environment = "int"
access = ["api-key"]
[products.ratelimiting.app.quota]
limit = 5
interval = 1
timeunit = "hour"
[products.ratelimiting.proxy.quota]
limit = 8
interval = 1
timeunit = "hour"

[[products]]
api = "fhir-r4"
environment = "sandbox"
access = ["open"]

[[products]]
api = "old-api"
environment = "int"
access = ["open"]
status = "deprecated"
deprecated = "2026-01-01"
sunset = "2027-01-01"
migration_guide = "https://example.org/migrate"

[[products]]
api = "gone-api"
environment = "int"
access = ["open"]
status = "retired"
migration_guide = "https://example.org/migrate"
"#;

async fn spawn_app() -> TestApp {
    common::spawn_app(PLATFORM).await
}

#[tokio::test]
async fn ping_is_open_and_ids_are_echoed_or_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/int/fhir/R4/_ping", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["version"].is_string());

    let id = "3a0e6c3c-5a9b-4f51-9d43-6a4b0a2d9c11";
    let response = app
        .client
        .get(format!("{}/sandbox/fhir/R4/Patient", app.url))
        .header("X-Request-ID", id)
        .header("X-Correlation-ID", "corr-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], id);
    assert_eq!(response.headers()["x-correlation-id"], "corr-1");

    let response = app
        .client
        .get(format!("{}/sandbox/fhir/R4/Patient", app.url))
        .header("X-Request-ID", "not-a-uuid")
        .send()
        .await
        .unwrap();
    let (status, body) = outcome(response).await;
    assert_eq!(status, 400);
    assert_eq!(spine_code(&body), "INVALID_VALUE");
    assert!(body.to_string().contains("X-Request-ID"));
}

#[tokio::test]
async fn api_keys_are_checked_and_bound_to_their_environment() {
    let app = spawn_app().await;
    let patients = format!("{}/int/fhir/R4/Patient", app.url);
    let (status, body) = outcome(app.client.get(&patients).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(spine_code(&body), "ACCESS_DENIED");
    assert!(body.to_string().contains("'apikey' header"), "{body}");

    let (status, body) = outcome(
        app.client
            .get(&patients)
            .header("apikey", "nonsense")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.to_string().contains("no application has this key"));

    let (_, sandbox_key) = app
        .apps
        .create("Acme-Sandbox", "sandbox", "A1B2C")
        .await
        .unwrap();
    let (status, body) = outcome(
        app.client
            .get(&patients)
            .header("apikey", &sandbox_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body.to_string().contains("only in their own environment"),
        "{body}"
    );

    let (int_app, key) = app.apps.create("Acme-INT", "int", "a1b2c").await.unwrap();
    assert_eq!(int_app.organisation, "A1B2C");
    let response = app
        .client
        .post(&patients)
        .header("apikey", &key)
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "gender": "female"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/int/fhir/R4/Patient/"), "{location}");

    // The status endpoint is behind the same rules, and checks the database.
    let response = app
        .client
        .get(format!("{}/int/fhir/R4/_status", app.url))
        .header("apikey", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "pass");
    assert_eq!(body["checks"]["database"]["status"], "pass");

    // A revoked key stops working at once.
    assert!(app.apps.revoke_key(&key).await.unwrap());
    let (status, _) = outcome(
        app.client
            .get(&patients)
            .header("apikey", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn quotas_admit_exactly_their_limit_per_app_and_per_proxy() {
    let app = spawn_app().await;
    let patients = format!("{}/int/fhir/R4/Patient", app.url);
    let (_, first) = app.apps.create("First", "int", "AAA01").await.unwrap();
    let (_, second) = app.apps.create("Second", "int", "AAA02").await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let response = app
            .client
            .get(&patients)
            .header("apikey", &first)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            assert_eq!(response.headers()["ratelimit-remaining"], "0");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["issue"][0]["code"], "throttled");
            assert_eq!(spine_code(&body), "TOO_MANY_REQUESTS");
            assert!(
                body.to_string()
                    .contains("quota of 5 requests every 1 hour (app quota)"),
                "{body}"
            );
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    // The proxy quota (8, shared) had 7 requests counted; the second app gets one more.
    let mut admitted = 0;
    for _ in 0..3 {
        let response = app
            .client
            .get(&patients)
            .header("apikey", &second)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            admitted += 1;
        } else {
            let body: Value = response.json().await.unwrap();
            assert!(
                body.to_string().contains("across all applications"),
                "{body}"
            );
        }
    }
    assert_eq!(admitted, 1);

    // Every request, refusal and throttle is counted for Prometheus.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |prefix: &str, suffix: &str| {
        metrics
            .lines()
            .any(|l| l.starts_with(prefix) && l.contains(suffix))
    };
    assert!(
        line("carehub_throttled_total{", "scope=\"app\"} 2"),
        "{metrics}"
    );
    assert!(
        line("carehub_throttled_total{", "scope=\"proxy\"} 2"),
        "{metrics}"
    );
    assert!(
        line("carehub_requests_total{", "status=\"429\"} 2"),
        "{metrics}"
    );
    assert!(
        line(
            "carehub_request_duration_seconds_count{environment=\"int\",api=\"fhir-r4\"}",
            " 10"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn deprecated_products_say_so_and_retired_ones_are_gone() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/int/old/R4/Patient", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["deprecation"], "@1767225600");
    assert_eq!(
        response.headers()["sunset"],
        "Fri, 01 Jan 2027 00:00:00 GMT"
    );
    assert!(
        response.headers()["link"]
            .to_str()
            .unwrap()
            .contains("example.org/migrate")
    );

    let (status, body) = outcome(
        app.client
            .get(format!("{}/int/gone/R4/Patient", app.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 410);
    assert!(body.to_string().contains("retired"), "{body}");
    assert!(body.to_string().contains("example.org/migrate"));

    // Unknown environments and paths are 404 OperationOutcomes.
    let (status, body) = outcome(
        app.client
            .get(format!("{}/nowhere/fhir/R4/Patient", app.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert!(
        body.to_string().contains("Unknown environment 'nowhere'"),
        "{body}"
    );
    let (status, body) = outcome(
        app.client
            .get(format!("{}/int/referrals/FHIR/STU3/x", app.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.to_string().contains("/int/fhir/R4"), "{body}");
}

#[test]
fn configuration_errors_name_the_rule() {
    let bad = [
        (
            "[[products]]\napi = \"nope\"\nenvironment = \"int\"\n",
            "no API named 'nope'",
        ),
        (
            "[[products]]\napi = \"fhir-r4\"\nenvironment = \"int\"\nstatus = \"deprecated\"\n",
            "needs 'deprecated' and 'sunset'",
        ),
        (
            "[[products]]\napi = \"fhir-r4\"\nenvironment = \"int\"\n[products.ratelimiting.app.spikeArrest]\nratelimit = \"ten\"\n",
            "must look like 10ps",
        ),
        ("colour = \"blue\"\n", "unknown field"),
        (
            "[[products]]\napi = \"fhir-r4\"\nenvironment = \"int\"\npurpose_of_use = \"CURIOSITY\"\n",
            "purpose_of_use 'CURIOSITY' is not one of TREAT, ETREAT",
        ),
    ];
    for (text, expected) in bad {
        let err = PlatformConfig::from_toml(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    let defaults = PlatformConfig::from_toml("").unwrap();
    assert_eq!(defaults.environments.len(), 3);
    // FHIR R4 and STU3 in int, the audit trail in admin, e-RS in the sandbox and int, PDS, the
    // GP Connect provider, SDS and the SSP in int.
    assert_eq!(defaults.products.len(), 9);
    let ers = defaults
        .products
        .iter()
        .find(|p| p.api == "e-referrals-service-api" && p.environment == "int")
        .unwrap();
    assert_eq!(defaults.store_key(ers).as_deref(), Some("ers-int"));
    let gp_connect = defaults
        .products
        .iter()
        .find(|p| p.api == "gp-connect")
        .unwrap();
    assert_eq!(
        defaults.store_key(gp_connect).as_deref(),
        Some("gpconnect-int")
    );
}

#[tokio::test]
async fn every_call_with_patient_data_leaves_an_audit_event_that_admins_can_search() {
    let app = spawn_app().await;
    let (client_app, key) = app
        .apps
        .create("Clinic-System", "int", "B82001")
        .await
        .unwrap();
    let (_, admin_key) = app.apps.create("Auditor", "admin", "X26").await.unwrap();
    let base = format!("{}/int/fhir/R4", app.url);
    let response = app
        .client
        .post(format!("{base}/Patient"))
        .header("apikey", &key)
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "gender": "male"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "pulse"}, "subject": {"reference": format!("Patient/{id}")}});
    let response = app
        .client
        .post(format!("{base}/Observation"))
        .header("apikey", &key)
        .header("content-type", "application/fhir+json")
        .body(observation.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    for path in [
        format!("/Patient/{id}"),
        format!("/Observation?subject=Patient/{id}"),
    ] {
        let response = app
            .client
            .get(format!("{base}{path}"))
            .header("apikey", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // A batch: each entry is audited on its own, naming the patient it concerns.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{id}")}},
        {"request": {"method": "POST", "url": "Observation"}, "resource": observation},
    ]});
    let response = app
        .client
        .post(&base)
        .header("apikey", &key)
        .header("content-type", "application/fhir+json")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The audit trail is a FHIR base of its own, for admin applications only.
    let audit = format!(
        "{}/admin/audit/R4/AuditEvent?patient=Patient/{id}&_count=50",
        app.url
    );
    let (status, _) = outcome(
        app.client
            .get(&audit)
            .header("apikey", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "an int key does not open the audit trail");
    let bundle: Value = app
        .client
        .get(&audit)
        .header("apikey", &admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events: Vec<&Value> = bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default();
    let mut interactions: Vec<&str> = events
        .iter()
        .map(|e| e["subtype"][0]["code"].as_str().unwrap_or_default())
        .collect();
    interactions.sort_unstable();
    // Created the patient, created an observation about them, read them, searched, and a batch
    // of two entries.
    assert_eq!(
        interactions,
        ["batch", "batch", "create", "create", "read", "search-type"],
        "{bundle}"
    );
    for event in &events {
        assert_eq!(
            event["agent"][0]["who"]["identifier"]["value"],
            client_app.id.as_str()
        );
        assert_eq!(event["agent"][0]["who"]["display"], "Clinic-System");
        assert_eq!(
            event["source"]["site"].as_str().unwrap().split(' ').next(),
            Some("int")
        );
        // Why: the product's purpose of use, direct care unless it says otherwise.
        let purpose = &event["purposeOfEvent"][0]["coding"][0];
        assert_eq!(
            (purpose["system"].as_str(), purpose["code"].as_str()),
            (
                Some("http://terminology.hl7.org/CodeSystem/v3-ActReason"),
                Some("TREAT")
            ),
            "{event}"
        );
    }

    // A transaction of creates only is written with its AuditEvent, which names what it made
    // (from an application of its own: the first has used its quota).
    let (_, key) = app
        .apps
        .create("Bulk-Loader", "int", "B82001")
        .await
        .unwrap();
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:5e1c0000-0000-4000-8000-00000000a001",
         "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "gender": "female"}},
        {"request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
                      "subject": {"reference": "urn:uuid:5e1c0000-0000-4000-8000-00000000a001"}}},
    ]});
    let answer: Value = app
        .client
        .post(&base)
        .header("apikey", &key)
        .header("content-type", "application/fhir+json")
        .body(transaction.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let location = answer["entry"][0]["response"]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    let made = location.split("/_history").next().unwrap();
    let made = &made[made.find("Patient/").unwrap()..];
    let bundle: Value = app
        .client
        .get(format!(
            "{}/admin/audit/R4/AuditEvent?patient={made}",
            app.url
        ))
        .header("apikey", &admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event = &bundle["entry"][0]["resource"];
    assert_eq!(
        bundle["entry"].as_array().map(Vec::len),
        Some(1),
        "{bundle}"
    );
    assert_eq!(event["subtype"][0]["code"], "transaction", "{event}");
    let named: Vec<&str> = event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"]["reference"].as_str())
        .collect();
    assert!(named.contains(&made), "{event}");
    assert!(
        named.iter().any(|r| r.starts_with("Observation/")),
        "{event}"
    );
}

#[tokio::test]
async fn the_admin_api_manages_applications_for_admin_applications_only() {
    let app = spawn_app().await;
    let (_, admin_key) = app.apps.create("Operator", "admin", "X26").await.unwrap();
    let (_, int_key) = app.apps.create("Clinic", "int", "B82001").await.unwrap();
    let apps_url = format!("{}/admin/apps", app.url);

    let response = app.client.get(&apps_url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .get(&apps_url)
        .header("apikey", &int_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let response = app
        .client
        .post(&apps_url)
        .header("apikey", &admin_key)
        .json(&json!({"name": "New-App", "environment": "int", "organisation": "A1B2C"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let new_key = created["api_key"].as_str().unwrap().to_owned();
    let id = created["app"]["id"].as_str().unwrap().to_owned();

    // The new key works in int at once.
    let patients = format!("{}/int/fhir/R4/Patient", app.url);
    let response = app
        .client
        .get(&patients)
        .header("apikey", &new_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let listed: Value = app
        .client
        .get(format!("{apps_url}?environment=int"))
        .header("apikey", &admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(names.contains(&"New-App") && names.contains(&"Clinic"));

    let jwk = carehub_gateway::keys::generate_for_tests("k1")
        .unwrap()
        .public_jwk;
    let response = app
        .client
        .post(format!("{apps_url}/{id}/keys"))
        .header("apikey", &admin_key)
        .json(&jwk)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["jwks"][0]["kid"], "k1");

    let response = app
        .client
        .post(format!("{}/admin/apikeys/revoke", app.url))
        .header("apikey", &admin_key)
        .json(&json!({"api_key": new_key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = app
        .client
        .get(&patients)
        .header("apikey", &new_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let response = app
        .client
        .post(&apps_url)
        .header("apikey", &admin_key)
        .json(&json!({"name": "X", "environment": "nowhere", "organisation": "A1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_deprecated_api_takes_on_no_new_applications() {
    let app = common::spawn_app(
        r#"
[[environments]]
name = "int"

[[apis]]
name = "legacy-api"
path = "legacy/R4"
fhir = "R4"

[[apis]]
name = "winding-down-api"
path = "winding/R4"
fhir = "R4"

[[products]]
api = "legacy-api"
environment = "int"
access = ["api-key"]
status = "deprecated"
deprecated = "2026-01-01"
sunset = "2027-06-01"
migration_guide = "https://example.org/migrate"

[[products]]
api = "winding-down-api"
environment = "int"
access = ["api-key"]
status = "deprecated"
deprecated = "2999-01-01"
sunset = "2999-06-01"
"#,
    )
    .await;
    let (_, key) = app.apps.create("Newcomer", "int", "AAA01").await.unwrap();
    // Registered after the deprecation: refused, saying why and where to go.
    let (status, body) = outcome(
        app.client
            .get(format!("{}/int/legacy/R4/Patient", app.url))
            .header("apikey", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(spine_code(&body), "ACCESS_DENIED");
    let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap_or_default();
    assert!(
        diagnostics.contains("deprecated on 2026-01-01")
            && diagnostics.contains("example.org/migrate"),
        "{diagnostics}"
    );
    // Registered before the deprecation takes effect: served, with the deprecation headers.
    let response = app
        .client
        .get(format!("{}/int/winding/R4/Patient", app.url))
        .header("apikey", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("deprecation"));
}

#[tokio::test]
async fn the_admin_api_issues_lists_and_withdraws_virtual_smartcards_and_sets_asids() {
    let app = spawn_app().await;
    let (_, admin_key) = app.apps.create("Operator", "admin", "X26").await.unwrap();
    let (client_app, _) = app.apps.create("Clinic", "int", "B82001").await.unwrap();
    let cards = format!("{}/admin/smartcards", app.url);
    let new_card = json!({
        "given_name": "Ada", "family_name": "Okafor", "environment": "int", "passcode": "2468",
        "roles": [{"id": "", "role_code": "R8000", "role_name": "Clinical Practitioner Access Role",
                   "organisation": "B82001", "business_functions": ["REFERRING_CLINICIAN"]}],
    });
    let response = app
        .client
        .post(&cards)
        .header("apikey", &admin_key)
        .json(&new_card)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let card: Value = response.json().await.unwrap();
    let id = card["id"].as_str().unwrap().to_owned();
    assert!(card.get("passcode_hash").is_none(), "never shown");
    assert_eq!(card["roles"][0]["role_code"], "R8000");
    assert_eq!(card["aal"], 3);

    // Mistakes say what is wrong; an environment is required to list.
    let (status, body) = outcome(
        app.client
            .post(&cards)
            .header("apikey", &admin_key)
            .json(&json!({"given_name": "A", "family_name": "B", "environment": "nowhere", "passcode": "2468", "roles": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("'environment' must be one of"))
    );
    let (status, _) = outcome(
        app.client
            .get(&cards)
            .header("apikey", &admin_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);

    let listed: Value = app
        .client
        .get(format!("{cards}?environment=int"))
        .header("apikey", &admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed["smartcards"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["id"] == id.as_str()))
    );
    let (status, read) = outcome(
        app.client
            .get(format!("{cards}/{id}"))
            .header("apikey", &admin_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, read["family_name"].as_str()),
        (200, Some("Okafor"))
    );
    let response = app
        .client
        .delete(format!("{cards}/{id}"))
        .header("apikey", &admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) = outcome(
        app.client
            .get(format!("{cards}/{id}"))
            .header("apikey", &admin_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);

    // An application's ASID.
    let (status, updated) = outcome(
        app.client
            .put(format!("{}/admin/apps/{}/asid", app.url, client_app.id))
            .header("apikey", &admin_key)
            .json(&json!({"asid": "200000000359"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, updated["asid"].as_str()),
        (200, Some("200000000359"))
    );
}

#[tokio::test]
async fn the_admin_api_lists_every_application_however_many() {
    let app = spawn_app().await;
    let (_, admin_key) = app.apps.create("Operator", "admin", "X26").await.unwrap();
    for n in 0..130 {
        app.apps
            .create(&format!("Clinic-{n:03}"), "int", "B82001")
            .await
            .unwrap();
    }
    let listed: Value = app
        .client
        .get(format!("{}/admin/apps?environment=int", app.url))
        .header("apikey", &admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["apps"].as_array().map(Vec::len), Some(130));
}
