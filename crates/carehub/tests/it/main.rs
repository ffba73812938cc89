//! The `carehub` binary as a user runs it: `carehub up` on a fresh data directory seeds test data,
//! says where it listens and when it is ready, serves FHIR, and comes back up on the same data
//! without seeding again.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The binary, on its embedded SQLite default: `up` always is, and the other commands must
/// reach the same database rather than a `DATABASE_URL` the test run may have set.
fn carehub() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_carehub"));
    command.env_remove("DATABASE_URL");
    command
}

struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn up(data_dir: &std::path::Path, patients: u64) -> Running {
    up_logging_to(data_dir, patients, Stdio::null())
}

/// `carehub up` with its log lines (stderr) going to `logs`.
fn up_logging_to(data_dir: &std::path::Path, patients: u64, logs: Stdio) -> Running {
    let mut command = carehub();
    command
        .args([
            "up",
            "--port",
            "0",
            "--seed-patients",
            &patients.to_string(),
            "--data-dir",
        ])
        .arg(data_dir)
        .stderr(logs);
    start(command)
}

/// Starts a server command and waits until it says it is ready.
fn start(mut command: Command) -> Running {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("carehub starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut url = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if let Some(rest) = line.trim().strip_prefix("FHIR R4")
            && let Some(base) = rest.split_whitespace().next()
        {
            url = Some(base.trim_end_matches("/fhir/R4").to_owned());
        }
        if line.starts_with("ready in") {
            break;
        }
    }
    Running {
        child,
        url: url.expect("carehub printed its R4 base URL"),
    }
}

async fn count(url: &str, resource_type: &str) -> i64 {
    let bundle: serde_json::Value =
        reqwest::get(format!("{url}/fhir/R4/{resource_type}?_summary=count"))
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON");
    bundle["total"].as_i64().expect("total")
}

#[tokio::test]
async fn up_seeds_once_and_serves_across_restarts() {
    let data_dir = std::env::temp_dir().join(format!("carehub-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let first = up(&data_dir, 30);
    assert_eq!(count(&first.url, "Patient").await, 30);
    assert!(count(&first.url, "Organization").await > 0);
    drop(first);
    let second = up(&data_dir, 30);
    assert_eq!(
        count(&second.url, "Patient").await,
        30,
        "a restart does not seed again"
    );
    drop(second);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// What `carehub up` seeds must pass carehub's own validation, in both versions.
#[test]
fn seeded_test_data_is_valid_fhir() {
    let pack = carehub_testdata::Pack::new(carehub_testdata::PackSpec {
        seed: 7,
        patients: 300,
        practices: 4,
        trusts: 2,
        practitioners_per_org: 3,
    });
    for (version, pack_version) in [
        (
            carehub_fhir::FhirVersion::Stu3,
            carehub_testdata::FhirVersion::Stu3,
        ),
        (
            carehub_fhir::FhirVersion::R4,
            carehub_testdata::FhirVersion::R4,
        ),
    ] {
        for resource in pack.all_resources(pack_version) {
            let issues = carehub_fhir::json::validate_resource(version.model(), &resource);
            assert!(issues.is_empty(), "{version}: {issues:?} in {resource}");
        }
    }
}

/// `carehub seed` loads its pack and exits: closing the store must not wait on an idle writer.
#[test]
fn seed_loads_and_exits() {
    let data_dir = std::env::temp_dir().join(format!("carehub-seed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut child = carehub()
        .args(["seed", "--patients", "25", "--data-dir"])
        .arg(&data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("carehub seed starts");
    // A bound on a hang, not a speed requirement.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("carehub seed did not exit");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Options come from a TOML file too; the command line still wins.
#[tokio::test]
async fn options_from_a_config_file() {
    let dir = std::env::temp_dir().join(format!("carehub-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("carehub.toml");
    std::fs::write(
        &file,
        format!(
            "seed-patients = 7\nport = 1\ndata-dir = \"{}\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut command = carehub();
    command
        .args(["up", "--port", "0", "--config"])
        .arg(&file)
        .stderr(Stdio::null());
    let running = start(command);
    assert_eq!(count(&running.url, "Patient").await, 7);
    drop(running);
    std::fs::write(&file, "shoe-size = 9\n").unwrap();
    let output = carehub()
        .args(["up", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("shoe-size"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_app_registered_from_the_command_line_gets_through_the_gateway() {
    let data_dir = std::env::temp_dir().join(format!("carehub-apps-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let log_path = data_dir.join("carehub.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let running = up_logging_to(&data_dir, 5, log.into());
    let output = carehub()
        .args([
            "apps",
            "create",
            "--name",
            "Test-App",
            "--env",
            "int",
            "--ods",
            "X26",
            "--data-dir",
        ])
        .arg(&data_dir)
        .output()
        .expect("carehub apps create runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let key = stdout
        .lines()
        .last()
        .expect("the key line")
        .trim()
        .to_owned();
    assert_eq!(key.len(), 64, "{stdout}");

    let client = reqwest::Client::new();
    let url = format!("{}/int/fhir/R4/Patient?_summary=count", running.url);
    let denied = client.get(&url).send().await.expect("request");
    assert_eq!(denied.status(), 401);
    let bundle: serde_json::Value = client
        .get(&url)
        .header("apikey", &key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    // `int` serves the seeded data.
    assert_eq!(bundle["total"], 5);

    // The signed-JWT way in: a key pair, a client assertion, a token, a call.
    let app_id = stdout
        .split(['(', ')'])
        .nth(1)
        .expect("the app id in parentheses")
        .to_owned();
    let private_key = data_dir.join("private.pem");
    let keygen = carehub()
        .args(["apps", "keygen", "--app", &app_id, "--out"])
        .arg(&private_key)
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .expect("keygen runs");
    assert!(
        keygen.status.success(),
        "{}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let token_url = format!("{}/int/oauth2/token", running.url);
    let jwt = carehub()
        .args([
            "apps",
            "jwt",
            "--api-key",
            &key,
            "--aud",
            &token_url,
            "--private-key",
        ])
        .arg(&private_key)
        .output()
        .expect("jwt runs");
    assert!(
        jwt.status.success(),
        "{}",
        String::from_utf8_lossy(&jwt.stderr)
    );
    let assertion = String::from_utf8_lossy(&jwt.stdout).trim().to_owned();
    let token: serde_json::Value = client
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
        ))
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("JSON");
    let access_token = token["access_token"].as_str().expect("a token");
    let bundle: serde_json::Value = client
        .get(&url)
        .bearer_auth(access_token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(bundle["total"], 5);

    // One JSON access log line per request through the gateway, saying who asked what and
    // how it went.
    let correlation = "5c2b5d6e-0000-4000-8000-00000000c0de";
    let answered = client
        .get(&url)
        .header("apikey", &key)
        .header("x-correlation-id", correlation)
        .send()
        .await
        .expect("request");
    assert_eq!(answered.status(), 200);
    let request_id = answered.headers()["x-request-id"]
        .to_str()
        .expect("text")
        .to_owned();
    drop(running);
    let logs = std::fs::read_to_string(&log_path).expect("the log");
    let access: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["target"] == "carehub::access")
        .map(|line| line["fields"].clone())
        .collect();
    let line = access
        .iter()
        .find(|fields| fields["correlation_id"] == correlation)
        .unwrap_or_else(|| panic!("an access line with the correlation id in {logs}"));
    for (field, expected) in [
        ("environment", "int"),
        ("api", "fhir-r4"),
        ("method", "GET"),
        ("path", "/int/fhir/R4/Patient"),
        ("app", app_id.as_str()),
        ("user", "-"),
        ("request_id", request_id.as_str()),
    ] {
        assert_eq!(line[field], expected, "{field} in {line}");
    }
    assert_eq!(line["status"], 200, "{line}");
    assert!(
        line["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );
    // The refused call without credentials is logged too, with no app.
    assert!(
        access
            .iter()
            .any(|fields| fields["status"] == 401 && fields["app"] == "-"),
        "{logs}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// With a collector configured, each request through the gateway is a span exported over
/// OTLP/HTTP (JSON), a child of the caller's `traceparent`, and the parent of the request that
/// the gateway forwards to a fronted server.
#[tokio::test]
async fn requests_are_traced_to_an_otlp_collector_and_the_trace_reaches_the_upstream() {
    use std::sync::{Arc, Mutex};

    let exported: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let collector = {
        let exported = exported.clone();
        axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let exported = exported.clone();
                async move {
                    if let Ok(json) = serde_json::from_slice(&body) {
                        exported.lock().unwrap().push(json);
                    }
                    "{}"
                }
            }),
        )
    };
    let seen_by_upstream: Arc<Mutex<Vec<String>>> = Arc::default();
    let upstream = {
        let seen = seen_by_upstream.clone();
        axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                if let Some(value) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                    seen.lock().unwrap().push(value.to_owned());
                }
                (
                    [("content-type", "application/fhir+json")],
                    r#"{"resourceType":"Patient","id":"x"}"#,
                )
            }
        })
    };
    let serve = |router: axum::Router| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, router).await });
        port
    };
    let collector_port = serve(collector).await;
    let upstream_port = serve(upstream).await;

    let data_dir = std::env::temp_dir().join(format!("carehub-otel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir).unwrap();
    let platform = data_dir.join("platform.toml");
    std::fs::write(
        &platform,
        format!(
            r#"
[[environments]]
name = "int"

[[apis]]
name = "team-fhir"
path = "team/FHIR/R4"
fhir = "R4"
upstream = "http://127.0.0.1:{upstream_port}/R4"

[[products]]
api = "team-fhir"
environment = "int"
access = ["open"]
audit = false
"#
        ),
    )
    .unwrap();
    let mut command = carehub();
    command
        .args([
            "up",
            "--port",
            "0",
            "--seed-patients",
            "1",
            "--otlp-endpoint",
        ])
        .arg(format!("http://127.0.0.1:{collector_port}"))
        .arg("--platform")
        .arg(&platform)
        .arg("--data-dir")
        .arg(data_dir.join("data"))
        // Export every 100 ms rather than every 5 s, as JSON to read the spans here.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .stderr(Stdio::null());
    let running = start(command);

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let answer = reqwest::Client::new()
        .get(format!("{}/int/team/FHIR/R4/Patient/x", running.url))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);

    // The batch exporter sends within a moment; wait for it, up to a generous limit.
    let mut span = None;
    for _ in 0..200 {
        let found = exported.lock().unwrap().iter().find_map(|body| {
            body["resourceSpans"]
                .as_array()?
                .iter()
                .flat_map(|r| r["scopeSpans"].as_array().into_iter().flatten())
                .flat_map(|s| s["spans"].as_array().into_iter().flatten())
                .find(|span| span["traceId"] == trace_id)
                .cloned()
        });
        if found.is_some() {
            span = found;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let span = span.expect("the request's span reached the collector");
    assert_eq!(span["parentSpanId"], caller_span, "{span}");
    assert_eq!(span["name"], "GET /int/team-fhir", "{span}");
    let attribute = |key: &str| {
        span["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].to_string())
            .unwrap_or_default()
    };
    assert!(
        attribute("http.response.status_code").contains("200"),
        "{span}"
    );
    assert!(
        attribute("url.path").contains("/int/team/FHIR/R4/Patient/x"),
        "{span}"
    );
    assert!(attribute("carehub.request_id").len() > 30, "{span}");

    // The fronted server saw the same trace, with the gateway's span as its parent.
    let span_id = span["spanId"].as_str().expect("span id");
    assert_eq!(
        seen_by_upstream.lock().unwrap().as_slice(),
        [format!("00-{trace_id}-{span_id}-01")]
    );
    drop(running);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Without a protocol asked for, spans leave as protobuf, the OTLP default; a protocol carehub
/// does not speak stops it at start, saying which.
#[tokio::test]
async fn traces_are_exported_as_protobuf_unless_json_is_asked_for() {
    use std::sync::{Arc, Mutex};

    /// What the collector was sent: each body with its media type.
    type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let received: Received = Arc::default();
    let collector = {
        let received = received.clone();
        axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let received = received.clone();
                    async move {
                        let media = headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        received.lock().unwrap().push((media, body.to_vec()));
                        ""
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let data_dir = std::env::temp_dir().join(format!("carehub-otel-pb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut command = carehub();
    command
        .args([
            "up",
            "--port",
            "0",
            "--seed-patients",
            "1",
            "--otlp-endpoint",
        ])
        .arg(format!("http://127.0.0.1:{collector_port}"))
        .arg("--data-dir")
        .arg(&data_dir)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stderr(Stdio::null());
    let running = start(command);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4737";
    reqwest::Client::new()
        .get(format!("{}/int/fhir/R4/metadata", running.url))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .expect("request");
    // The trace id travels as its 16 raw bytes in a protobuf body.
    let raw: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut exported = None;
    for _ in 0..200 {
        exported = received
            .lock()
            .unwrap()
            .iter()
            .find(|(_, body)| body.windows(16).any(|w| w == raw.as_slice()))
            .cloned();
        if exported.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (media, _) = exported.expect("the request's span reached the collector");
    assert_eq!(media, "application/x-protobuf");
    drop(running);
    let _ = std::fs::remove_dir_all(&data_dir);

    let refused = carehub()
        .args(["up", "--port", "0", "--otlp-endpoint", "http://127.0.0.1:9"])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .expect("carehub runs");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("'grpc' is not supported"), "{said}");
    let _ = std::fs::remove_dir_all(&data_dir);
}
