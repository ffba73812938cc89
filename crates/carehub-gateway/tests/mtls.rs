//! Mutual TLS with certificates generated in the test: a CA, the listener's certificate, and
//! client certificates issued from CSRs and bound to an application.

use std::sync::Arc;

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gateway::limits::LocalLimiter;
use carehub_gateway::tls::{self, LocalCa, TlsSettings};
use carehub_server::ServerConfig;
use carehub_store::Store;
use carehub_store::testing::fresh_database;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PLATFORM: &str = r#"
[[environments]]
name = "int"

[[environments]]
name = "dev"

[[apis]]
name = "fhir-r4"
path = "fhir/R4"
fhir = "R4"

[[products]]
api = "fhir-r4"
environment = "int"
access = ["mutual-tls"]
"#;

/// A key and a CSR for `cn`, as an endpoint owner would make them.
fn csr(cn: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![cn.to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let request = params.serialize_request(&key).unwrap();
    (key.serialize_pem(), request.pem().unwrap())
}

/// Sends one GET over TLS and returns the status line and body, or the handshake error.
async fn get(
    port: u16,
    ca_pem: &str,
    client: Option<(&str, &str)>,
    path: &str,
) -> Result<(String, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    Ok((status, body))
}

#[tokio::test]
async fn client_certificates_from_our_ca_bound_to_an_app_open_the_product() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.unwrap();
    let ca = LocalCa::create("carehub test CA").unwrap();
    let (server_cert, server_key) = ca.issue_server(&["localhost".to_owned()]).unwrap();
    let settings = TlsSettings {
        cert_pem: server_cert,
        key_pem: server_key,
        client_ca_pem: Some(ca.cert_pem.clone()),
        require_client_certificate: false,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let platform = PlatformConfig::from_toml(PLATFORM).unwrap();
    let server = ServerConfig {
        public_url: format!("https://localhost:{port}"),
        ..ServerConfig::default()
    };
    let router = carehub_gateway::router(
        &platform,
        &server,
        store.clone(),
        Arc::new(LocalLimiter::default()),
        axum::Router::new(),
        &carehub_gateway::Products::new(),
    );
    tokio::spawn(tls::serve(
        listener,
        router,
        tls::server_config(&settings).unwrap(),
    ));

    let apps = Apps::new(store.clone());
    let (app, _) = apps.create("GP-System", "int", "B82617").await.unwrap();
    let (client_key, client_csr) = csr("gp-system.example.nhs.uk");
    let issued = ca.issue_from_csr(&client_csr, 365).unwrap();
    assert_eq!(issued.subject, "gp-system.example.nhs.uk");
    tls::bind(&store, &issued, &app.id, Some("918999198738"))
        .await
        .unwrap();

    let (status, body) = get(
        port,
        &ca.cert_pem,
        Some((&issued.pem, &client_key)),
        "/int/fhir/R4/Patient",
    )
    .await
    .unwrap();
    assert!(status.contains("200"), "{status} {body}");

    // No certificate: the handshake succeeds (it is optional) but the product refuses.
    let (status, body) = get(port, &ca.cert_pem, None, "/int/fhir/R4/Patient")
        .await
        .unwrap();
    assert!(status.contains("403"), "{status}");
    assert!(body.contains("needs mutual TLS"), "{body}");

    // A certificate of our CA that no application owns.
    let (stray_key, stray_csr) = csr("stray.example");
    let stray = ca.issue_from_csr(&stray_csr, 365).unwrap();
    let (status, body) = get(
        port,
        &ca.cert_pem,
        Some((&stray.pem, &stray_key)),
        "/int/fhir/R4/Patient",
    )
    .await
    .unwrap();
    assert!(status.contains("403"), "{status}");
    assert!(body.contains("not bound to any application"), "{body}");

    // A certificate from another CA fails the handshake.
    let other_ca = LocalCa::create("someone else").unwrap();
    let (other_key, other_csr) = csr("intruder.example");
    let other = other_ca.issue_from_csr(&other_csr, 365).unwrap();
    let refused = get(
        port,
        &ca.cert_pem,
        Some((&other.pem, &other_key)),
        "/int/fhir/R4/Patient",
    )
    .await;
    assert!(
        refused.is_err() || refused.as_ref().is_ok_and(|(s, _)| s.is_empty()),
        "{refused:?}"
    );
    drop(database);
}
