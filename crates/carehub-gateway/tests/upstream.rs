//! Fronting an external FHIR server: a test upstream on its own port, carehub in front of it
//! with an API key product. What the caller sends reaches the upstream with the platform's
//! back-end headers instead of the credentials; what the upstream answers comes back as it is;
//! every call is audited; an upstream that is down or slow is a 502 or a 504.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use common::{outcome, spine_code};
use serde_json::{Value, json};

/// What the test upstream saw of the last request.
#[derive(Debug, Default, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

type Log = Arc<Mutex<Option<Seen>>>;

async fn echo(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if uri.path() == "/R4/Slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let seen = Seen {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    *log.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
    (
        [
            ("content-type", "application/fhir+json"),
            ("etag", "W/\"7\""),
        ],
        json!({"resourceType": "Patient", "id": "9000000009"}).to_string(),
    )
}

async fn upstream() -> (String, Log) {
    let log: Log = Arc::default();
    let app = Router::new().fallback(echo).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("upstream runs");
    });
    (url, log)
}

fn platform(upstream: &str) -> String {
    format!(
        r#"
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
name = "team-fhir"
path = "team/FHIR/R4"
fhir = "R4"
upstream = "{upstream}/R4"
upstream_timeout_seconds = 1

[[products]]
api = "team-fhir"
environment = "int"
access = ["api-key"]

[[apis]]
name = "down-fhir"
path = "down/FHIR/R4"
fhir = "R4"
upstream = "http://127.0.0.1:9/R4"

[[products]]
api = "down-fhir"
environment = "int"
access = ["api-key"]
"#
    )
}

#[tokio::test]
async fn requests_pass_the_wrap_and_reach_the_upstream_with_the_platform_headers() {
    let (url, log) = upstream().await;
    let app = common::spawn_app(&platform(&url)).await;
    let (client_app, key) = app
        .apps
        .create("Team-Client", "int", "B82001")
        .await
        .expect("app");
    let base = format!("{}/int/team/FHIR/R4", app.url);

    // No credentials: refused by the gateway, the upstream never asked.
    let (status, _) = outcome(
        app.client
            .get(format!("{base}/Patient/9000000009"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(log.lock().expect("log").is_none());

    let response = app
        .client
        .get(format!("{base}/Patient/9000000009?_format=json"))
        .header("apikey", &key)
        .header("x-correlation-id", "corr-1")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"7\"");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["id"], "9000000009");

    let seen = log.lock().expect("log").clone().expect("forwarded");
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.uri, "/R4/Patient/9000000009?_format=json");
    let header = |name: &str| {
        seen.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("apikey"), None, "credentials stay in carehub");
    assert_eq!(
        header("nhsd-request-id").as_deref(),
        Some(request_id.as_str())
    );
    assert!(
        header("nhsd-correlation-id")
            .is_some_and(|c| c.starts_with(&format!("{request_id}.corr-1."))),
        "{:?}",
        header("nhsd-correlation-id")
    );
    assert_eq!(
        header("nhsd-end-user-organisation-ods").as_deref(),
        Some("B82001")
    );
    assert_eq!(
        header("nhsd-application-id").as_deref(),
        Some(client_app.id.as_str())
    );

    // A write: the body is streamed through, and the change is audited once made.
    let response = app
        .client
        .post(format!("{base}/Observation"))
        .header("apikey", &key)
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Observation", "status": "final"}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let seen = log.lock().expect("log").clone().expect("forwarded");
    assert_eq!(seen.method, "POST");
    assert!(seen.body.contains("\"Observation\""));

    // Both calls are in the audit trail, the read naming the patient.
    let (_, admin) = app
        .apps
        .create("Auditor", "admin", "X26")
        .await
        .expect("admin");
    let trail: Value = app
        .client
        .get(format!("{}/admin/audit/R4/AuditEvent?_count=50", app.url))
        .header("apikey", &admin)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let events: Vec<&Value> = trail["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default();
    let mut kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["subtype"][0]["code"].as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["create", "read"], "{trail}");
    assert!(trail.to_string().contains("Patient/9000000009"));
}

#[tokio::test]
async fn an_upstream_that_is_down_or_slow_is_a_bad_gateway_or_a_timeout() {
    let (url, _log) = upstream().await;
    let app = common::spawn_app(&platform(&url)).await;
    let (_, key) = app
        .apps
        .create("Team-Client", "int", "B82001")
        .await
        .expect("app");
    let (status, body) = outcome(
        app.client
            .get(format!("{}/int/down/FHIR/R4/Patient", app.url))
            .header("apikey", &key)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["issue"][0]["code"], "transient");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("could not be reached"))
    );
    let (status, body) = outcome(
        app.client
            .get(format!("{}/int/team/FHIR/R4/Slow", app.url))
            .header("apikey", &key)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["issue"][0]["code"], "timeout");
    let _ = spine_code(&body);
}

#[test]
fn an_upstream_must_be_an_http_url_and_not_also_a_product() {
    let config = |api: &str| {
        carehub_gateway::config::PlatformConfig::from_toml(&format!(
            "products = []\n[[apis]]\nname = \"x\"\npath = \"x/R4\"\nfhir = \"R4\"\n{api}\n"
        ))
    };
    assert!(config("upstream = \"https://fhir.example.org/R4\"").is_ok());
    let error = config("upstream = \"ftp://fhir.example.org\"").expect_err("refused");
    assert!(error.to_string().contains("http:// or https://"), "{error}");
    let error =
        config("upstream = \"https://fhir.example.org\"\nservice = \"ers\"").expect_err("refused");
    assert!(error.to_string().contains("not both"), "{error}");
    let error = config(
        "upstream = \"https://fhir.example.org\"\nupstream_ca_file = \"/nonexistent/ca.pem\"",
    )
    .expect_err("refused");
    assert!(error.to_string().contains("upstream_ca_file"), "{error}");
}

#[tokio::test]
async fn an_https_upstream_is_reached_when_its_ca_is_trusted() {
    use carehub_gateway::tls::{self, LocalCa, TlsSettings};
    // The team's server: HTTPS with a certificate from its own CA.
    let ca = LocalCa::create("team CA").expect("ca");
    let (cert_pem, key_pem) = ca.issue_server(&["localhost".to_owned()]).expect("cert");
    let settings = TlsSettings {
        cert_pem,
        key_pem,
        client_ca_pem: None,
        require_client_certificate: false,
    };
    let log: Log = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(tls::serve(
        listener,
        Router::new().fallback(echo).with_state(log.clone()),
        tls::server_config(&settings).expect("tls"),
    ));
    let ca_file = std::env::temp_dir().join(format!("carehub-team-ca-{}.pem", uuid_like()));
    std::fs::write(&ca_file, &ca.cert_pem).expect("ca written");
    let platform = format!(
        r#"
[[environments]]
name = "int"

[[apis]]
name = "trusted"
path = "trusted/R4"
fhir = "R4"
upstream = "https://localhost:{port}/R4"
upstream_ca_file = "{}"

[[products]]
api = "trusted"
environment = "int"
access = ["api-key"]

[[apis]]
name = "untrusted"
path = "untrusted/R4"
fhir = "R4"
upstream = "https://localhost:{port}/R4"

[[products]]
api = "untrusted"
environment = "int"
access = ["api-key"]
"#,
        ca_file.display()
    );
    let app = common::spawn_app(&platform).await;
    let (_, key) = app
        .apps
        .create("Team-Client", "int", "B82001")
        .await
        .expect("app");
    let response = app
        .client
        .get(format!("{}/int/trusted/R4/Patient/9000000009", app.url))
        .header("apikey", &key)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    // (Over HTTP/2 the upstream sees the absolute URI.)
    let seen = log
        .lock()
        .expect("log")
        .as_ref()
        .map(|s| s.uri.clone())
        .unwrap_or_default();
    assert!(seen.ends_with("/R4/Patient/9000000009"), "{seen}");
    // Without the team's CA the certificate is not trusted: the upstream cannot be reached.
    let (status, _) = outcome(
        app.client
            .get(format!("{}/int/untrusted/R4/Patient/9000000009", app.url))
            .header("apikey", &key)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 502);
    let _ = std::fs::remove_file(ca_file);
}

/// A name no other test run uses.
fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}
