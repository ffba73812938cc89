//! Keys for signed-JWT client authentication: generating an application's RSA key pair (the
//! private half for the application, the public half as a JWK registered with carehub), and
//! signing a client assertion as the NHS platform expects one (RS512, `kid`, `typ: JWT`,
//! `iss` = `sub` = the API key, `aud` = the token URL, a unique `jti`, `exp` at most 5 minutes on).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A key pair for one application.
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// The key id, sent as the JWT `kid` header.
    pub kid: String,
    /// The private key as PKCS#8 PEM, for the application to keep.
    pub private_pem: String,
    /// The public key as a JWK (`kty`, `n`, `e`, `kid`, `alg`, `use`), for carehub to keep.
    pub public_jwk: Value,
}

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto library refused.
    #[error("key generation failed")]
    Generate,
    /// The private key is not a usable RSA PEM.
    #[error("not a usable RSA private key: {0}")]
    BadKey(String),
}

/// Generates an RSA key pair (4096 bits, as the NHS asks of its consumers).
pub fn generate(kid: &str) -> Result<SigningKey, KeyError> {
    generate_sized(kid, KeySize::Rsa4096)
}

/// As [`generate`], with a smaller key for tests.
pub fn generate_for_tests(kid: &str) -> Result<SigningKey, KeyError> {
    generate_sized(kid, KeySize::Rsa2048)
}

fn generate_sized(kid: &str, size: KeySize) -> Result<SigningKey, KeyError> {
    let pair = KeyPair::generate(size).map_err(|_| KeyError::Generate)?;
    let der =
        AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|_| KeyError::Generate)?;
    let body = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let public = pair.public_key();
    let public_jwk = json!({
        "kty": "RSA",
        "kid": kid,
        "alg": "RS512",
        "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    });
    Ok(SigningKey {
        kid: kid.to_owned(),
        private_pem: pem,
        public_jwk,
    })
}

/// Signs a client assertion for `POST /oauth2/token`, valid for `lifetime_secs`.
pub fn client_assertion(
    private_pem: &str,
    kid: &str,
    api_key: &str,
    token_url: &str,
    lifetime_secs: u64,
) -> Result<String, KeyError> {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes())
        .map_err(|e| KeyError::BadKey(e.to_string()))?;
    let mut header = Header::new(Algorithm::RS512);
    header.kid = Some(kid.to_owned());
    header.typ = Some("JWT".to_owned());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = json!({
        "iss": api_key,
        "sub": api_key,
        "aud": token_url,
        "jti": uuid::Uuid::new_v4().to_string(),
        "exp": now + lifetime_secs,
    });
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| KeyError::BadKey(e.to_string()))
}
