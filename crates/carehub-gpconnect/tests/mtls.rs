//! GP Connect as the Spine reaches a provider: over mutual TLS, the consumer system proving who
//! it is with a certificate from the platform's CA bound to its ASID, no API key. The SSP
//! headers and the audit JWT are checked as on any other way in.

use std::sync::Arc;

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gateway::limits::LocalLimiter;
use carehub_gateway::tls::{self, LocalCa, TlsSettings};
use carehub_gpconnect::domain::jwt;
use carehub_server::ServerConfig;
use carehub_store::Store;
use carehub_store::testing::fresh_database;
use serde_json::Value;

const CONSUMER_ASID: &str = "200000000359";
const PROVIDER_ASID: &str = "918999198738";

/// A key and a CSR for `cn`, as an endpoint owner makes them for NHS endpoint registration.
fn csr(cn: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![cn.to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let request = params.serialize_request(&key).expect("csr");
    (key.serialize_pem(), request.pem().expect("pem"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test]
async fn a_consumer_with_a_bound_certificate_reaches_the_provider_without_an_api_key() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.expect("store");
    let ca = LocalCa::create("carehub test CA").expect("ca");
    let (server_cert, server_key) = ca.issue_server(&["localhost".to_owned()]).expect("server");
    let settings = TlsSettings {
        cert_pem: server_cert,
        key_pem: server_key,
        client_ca_pem: Some(ca.cert_pem.clone()),
        require_client_certificate: false,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let public_url = format!("https://localhost:{port}");
    let server = ServerConfig {
        public_url: public_url.clone(),
        ..ServerConfig::default()
    };
    let products = carehub_gateway::Products::new()
        .with(carehub_gpconnect::SERVICE, carehub_gpconnect::product());
    let router = carehub_gateway::router(
        &PlatformConfig::default(),
        &server,
        store.clone(),
        Arc::new(LocalLimiter::default()),
        axum::Router::new(),
        &products,
    );
    tokio::spawn(tls::serve(
        listener,
        router,
        tls::server_config(&settings).expect("tls config"),
    ));
    let repo = carehub_gpconnect::repo::Repo::new(store.clone(), "gpconnect-int");
    carehub_gpconnect::seed::seed(&repo, &format!("{public_url}/int/gpconnect"))
        .await
        .expect("seeded");

    // The consumer system: an application with the consumer ASID, and its endpoint certificate.
    let apps = Apps::new(store.clone());
    let (app, _) = apps
        .create("Consumer-System", "int", "A11111")
        .await
        .expect("app");
    let (key, request) = csr("consumer.example.nhs.uk");
    let issued = ca.issue_from_csr(&request, 365).expect("issued");
    tls::bind(&store, &issued, &app.id, Some(CONSUMER_ASID))
        .await
        .expect("bound");

    let client = |identity: bool| {
        // Only the platform's CA is trusted, as on the Spine.
        let mut builder =
            reqwest::Client::builder()
                .tls_certs_only([
                    reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).expect("ca cert")
                ]);
        if identity {
            let pem = format!("{}\n{key}", issued.pem);
            builder =
                builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
        }
        builder.build().expect("client")
    };
    let interaction = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1";
    let root = format!("{public_url}/int/gpconnect/B82617/STU3/1/gpconnect");
    let metadata = |client: reqwest::Client| {
        client
            .get(format!("{root}/metadata"))
            .header("Ssp-TraceID", "0f4c4c3a-4e3a-4a47-9b1c-2a1f0e5b7c01")
            .header("Ssp-From", CONSUMER_ASID)
            .header("Ssp-To", PROVIDER_ASID)
            .header("Ssp-InteractionID", interaction)
            .bearer_auth(jwt::token(
                &root,
                "A11111",
                "UNK",
                "organization/*.read",
                now(),
            ))
            .send()
    };

    let response = metadata(client(true)).await.expect("sent");
    assert_eq!(response.status(), 200);
    let statement: Value = response.json().await.expect("json");
    assert_eq!(statement["resourceType"], "CapabilityStatement");

    // Without a certificate (and no API key), the gateway refuses before the provider.
    let response = metadata(client(false)).await.expect("sent");
    assert_eq!(response.status(), 401, "{:?}", response.text().await);
    drop(database);
}
