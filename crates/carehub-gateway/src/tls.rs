//! Mutual TLS: a listener (rustls) that verifies client certificates against a CA, and a local
//! CA that issues endpoint certificates from a CSR, as NHS endpoint registration does, binding
//! each to an application and its ASID.
//!
//! Each verified client certificate reaches the gateway as a [`ClientCertificate`] in the
//! request's extensions; a product with the `mutual-tls` access mode admits a request only if
//! its certificate was issued to an application of the product's environment.

use std::sync::Arc;

use axum::Router;
use carehub_store::{Expect, Store, StoreError};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::apps::PLATFORM;

/// Why a certificate or listener could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation or signing failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A PEM input is not what it should be.
    #[error("{0}")]
    Pem(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("client verification: {0}")]
    Verifier(String),
    /// Recording the certificate failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A verified client certificate, as the listener saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The serial number, lower-case hex.
    pub serial: String,
    /// The subject's common name.
    pub subject: String,
}

/// A certificate issued by the local CA.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub pem: String,
    /// Its serial number, lower-case hex.
    pub serial: String,
    /// The subject's common name.
    pub subject: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_serial() -> SerialNumber {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    // A positive integer: the top bit clear.
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// `days` from now, as the CA writes validity dates.
fn days_from_now(days: i64) -> time::OffsetDateTime {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 / 86_400)
        .unwrap_or(0);
    let (year, month, day) = carehub_fhir::datetime::civil_from_days(today + days);
    rcgen::date_time_ymd(year as i32, month as u8, day as u8)
}

/// A certificate authority of this installation.
#[derive(Debug, Clone)]
pub struct LocalCa {
    /// The CA certificate, PEM: what clients and the listener trust.
    pub cert_pem: String,
    /// The CA's private key, PEM.
    pub key_pem: String,
}

impl LocalCa {
    /// Makes a new CA, valid for ten years.
    pub fn create(name: &str) -> Result<LocalCa, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "carehub");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial());
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(3650);
        let cert = params.self_signed(&key)?;
        Ok(LocalCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, TlsError> {
        let key = KeyPair::from_pem(&self.key_pem)?;
        Ok(Issuer::from_ca_cert_pem(&self.cert_pem, key)?)
    }

    /// Signs a CSR: an endpoint certificate for client and server authentication, valid for
    /// `days`.
    pub fn issue_from_csr(&self, csr_pem: &str, days: i64) -> Result<Issued, TlsError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let subject = csr
            .params
            .distinguished_name
            .get(&DnType::CommonName)
            .map(dn_text)
            .unwrap_or_default();
        if subject.is_empty() {
            return Err(TlsError::Pem(
                "the CSR has no subject common name (CN)".into(),
            ));
        }
        let serial = random_serial();
        csr.params.serial_number = Some(serial.clone());
        csr.params.is_ca = IsCa::ExplicitNoCa;
        csr.params.not_before = days_from_now(-1);
        csr.params.not_after = days_from_now(days);
        csr.params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        csr.params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        let cert = csr.signed_by(&self.issuer()?)?;
        Ok(Issued {
            pem: cert.pem(),
            serial: hex(serial.as_ref()),
            subject,
        })
    }

    /// A key pair and certificate for this installation's own listener.
    pub fn issue_server(&self, names: &[String]) -> Result<(String, String), TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.serial_number = Some(random_serial());
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(825);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn dn_text(value: &rcgen::DnValue) -> String {
    match value {
        rcgen::DnValue::Utf8String(s) => s.clone(),
        rcgen::DnValue::PrintableString(s) => s.as_str().to_owned(),
        rcgen::DnValue::Ia5String(s) => s.as_str().to_owned(),
        rcgen::DnValue::TeletexString(s) => s.as_str().to_owned(),
        _ => String::new(),
    }
}

/// Records that a certificate belongs to an application (and its ASID), so that requests with
/// it are that application's.
pub async fn bind(
    store: &Store,
    issued: &Issued,
    app_id: &str,
    asid: Option<&str>,
) -> Result<(), TlsError> {
    let record = json!({"app": app_id, "asid": asid, "subject": issued.subject});
    let serial = issued.serial.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.put(
                    PLATFORM,
                    "Certificate",
                    &serial,
                    record,
                    &[],
                    Expect::Absent,
                )
                .await?;
                Ok::<_, StoreError>(())
            })
        })
        .await?;
    Ok(())
}

/// The application (id) and ASID a certificate was issued to, if it was bound.
pub async fn bound_app(
    store: &Store,
    serial: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    let Some(record) = store
        .read_recent(
            PLATFORM,
            "Certificate",
            serial,
            crate::apps::CREDENTIAL_MAX_AGE,
        )
        .await?
    else {
        return Ok(None);
    };
    let Some(body) = record
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
    else {
        return Ok(None);
    };
    let Some(app) = body.get("app").and_then(Value::as_str) else {
        return Ok(None);
    };
    Ok(Some((
        app.to_owned(),
        body.get("asid").and_then(Value::as_str).map(str::to_owned),
    )))
}

/// What the listener serves with.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The server certificate chain, PEM.
    pub cert_pem: String,
    /// The server's private key, PEM.
    pub key_pem: String,
    /// CAs whose client certificates are accepted, PEM; `None` asks for no client certificate.
    pub client_ca_pem: Option<String>,
    /// Refuse the handshake without a client certificate (otherwise it is optional, and
    /// products decide).
    pub require_client_certificate: bool,
}

/// The rustls configuration for the settings.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(settings.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Pem(format!("server certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(settings.key_pem.as_bytes())
        .map_err(|e| TlsError::Pem(format!("server key: {e}")))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &settings.client_ca_pem {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                let cert = cert.map_err(|e| TlsError::Pem(format!("client CA: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Pem(format!("client CA: {e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if settings.require_client_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?,
            )
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The serial and subject CN of a DER certificate.
fn describe(der: &[u8]) -> Option<ClientCertificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    Some(ClientCertificate {
        serial: hex(cert.raw_serial()),
        subject,
    })
}

/// Serves `router` over TLS on `listener` until the task is dropped. Handshake failures (an
/// untrusted client certificate, say) end that connection only.
pub async fn serve(listener: TcpListener, router: Router, config: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let client = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| describe(cert.as_ref()));
            let service = tower::ServiceExt::map_request(
                router,
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    if let Some(client) = &client {
                        request.extensions_mut().insert(client.clone());
                    }
                    request
                },
            );
            let service = hyper_util::service::TowerToHyperService::new(service);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}
