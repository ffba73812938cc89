//! `POST /{environment}/oauth2/token`: application-restricted access with a signed JWT, as the
//! NHS identity service does it (`client_credentials` with a `private_key_jwt` client
//! assertion), with its checks in its order and its error strings.
//!
//! Issued access tokens and used `jti`s are documents in the store's `platform` partition
//! (`AccessToken/{sha-256}`, `Jti/{sha-256 of iss and jti}`), so every node sees them and a
//! replayed assertion fails even on another node: the `jti` record is created with
//! "must not exist", which the database decides.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carehub_store::{Expect, Store, StoreError};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::apps::{App, Apps, PLATFORM, key_hash};

/// Access tokens live this long (the NHS platform's `expires_in: "599"`).
pub const TOKEN_LIFETIME_SECS: u64 = 599;
/// A used `jti` is remembered this long.
const JTI_MEMORY_SECS: u64 = 30 * 86_400;
/// Assertions may be valid for 5 minutes, plus 10 seconds for clock drift.
const MAX_ASSERTION_SECS: u64 = 310;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the token endpoint of one environment needs.
#[derive(Debug, Clone)]
pub(crate) struct TokenEndpoint {
    pub(crate) environment: String,
    /// The exact URL clients must put in `aud`.
    pub(crate) url: String,
    /// The scopes an application of this environment gets: one per application-restricted
    /// product.
    pub(crate) scopes: Vec<String>,
    pub(crate) apps: Apps,
    pub(crate) store: Store,
    pub(crate) metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// An issued access token, as stored.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The application it was issued to.
    pub app_id: String,
    /// The environment it works in.
    pub environment: String,
    /// What it may call.
    pub scopes: Vec<String>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An OAuth error in the NHS platform's shape.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        json!({
            "error": error,
            "error_description": description,
            "message_id": uuid::Uuid::new_v4().to_string(),
        })
        .to_string(),
    )
        .into_response()
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(key), decode(value))
        })
        .collect()
}

/// Decodes one base64url JSON part of a JWT without checking anything else.
fn part(token: &str, index: usize) -> Option<Value> {
    let segment = token.split('.').nth(index)?;
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) async fn token(
    State(endpoint): State<std::sync::Arc<TokenEndpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let fields = form(&body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match field("grant_type") {
        None => return invalid_request("grant_type is missing"),
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type is invalid",
            );
        }
    }
    if field("client_assertion_type") != Some(ASSERTION_TYPE) {
        return invalid_request(
            "Missing or invalid client_assertion_type - must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'",
        );
    }
    let Some(assertion) = field("client_assertion") else {
        return invalid_request("Missing client_assertion");
    };
    match client_credentials(&endpoint, assertion).await {
        Ok(response) => response,
        Err(response) => response,
    }
}

async fn client_credentials(
    endpoint: &TokenEndpoint,
    assertion: &str,
) -> Result<Response, Response> {
    let malformed = || invalid_request("Malformed JWT in client_assertion");
    if assertion.split('.').count() != 3 {
        return Err(malformed());
    }
    let header = part(assertion, 0).ok_or_else(malformed)?;
    let claims = part(assertion, 1).ok_or_else(malformed)?;
    let now = now_secs();

    // The header and claims checks, in the NHS identity service's order.
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    if text(&header, "alg").as_deref() != Some("RS512") {
        return Err(invalid_request(
            "Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'",
        ));
    }
    let exp = claims.get("exp");
    if let Some(exp) = exp.and_then(Value::as_u64)
        && exp < now
    {
        return Err(invalid_request(
            "Invalid 'exp' claim in client_assertion JWT - JWT has expired",
        ));
    }
    let Some(kid) = text(&header, "kid") else {
        return Err(invalid_request(
            "Missing 'kid' header in client_assertion JWT",
        ));
    };
    if !text(&header, "typ").is_some_and(|t| t.eq_ignore_ascii_case("jwt")) {
        return Err(invalid_request(
            "Invalid 'typ' header in client_assertion JWT - must be 'JWT'",
        ));
    }
    let Some(exp) = exp else {
        return Err(invalid_request(
            "Missing 'exp' claim in client_assertion JWT",
        ));
    };
    let Some(exp) = exp.as_u64() else {
        return Err(invalid_request(
            "Invalid 'exp' claim in client_assertion JWT - must be an integer",
        ));
    };
    let iss = text(&claims, "iss");
    if iss.is_none() || iss != text(&claims, "sub") {
        return Err(invalid_request(
            "Missing or non-matching iss/sub claims in client_assertion JWT",
        ));
    }
    let iss = iss.unwrap_or_default();
    let jti = match claims.get("jti") {
        None => {
            return Err(invalid_request(
                "Missing 'jti' claim in client_assertion JWT",
            ));
        }
        Some(Value::String(jti)) if !jti.is_empty() => jti.clone(),
        Some(_) => {
            return Err(invalid_request(
                "Invalid 'jti' claim in client_assertion JWT - must be a unique string value such as a GUID",
            ));
        }
    };
    if exp > now + MAX_ASSERTION_SECS {
        return Err(invalid_request(
            "Invalid 'exp' claim in client_assertion JWT - more than 5 minutes in future",
        ));
    }

    // Who is asking, and with which key.
    let app = endpoint.apps.by_key(&iss).await.map_err(|_| {
        oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the application store failed",
        )
    })?;
    let Some(app) = app.filter(|a| a.environment == endpoint.environment) else {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "Invalid iss/sub claims in JWT",
        ));
    };
    if text(&claims, "aud").as_deref() != Some(endpoint.url.as_str()) {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "Missing or invalid 'aud' claim in client_assertion JWT",
        ));
    }
    let jwk = app
        .jwks
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
        .and_then(|k| serde_json::from_value::<Jwk>(k.clone()).ok());
    let Some(jwk) = jwk else {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "Invalid 'kid' header in client_assertion JWT - no matching public key",
        ));
    };
    let verified = DecodingKey::from_jwk(&jwk).ok().is_some_and(|key| {
        let mut validation = Validation::new(Algorithm::RS512);
        // Expiry and audience were checked above, with the NHS messages.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(assertion, &key, &validation).is_ok()
    });
    if !verified {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "public_key error",
            "JWT signature verification failed",
        ));
    }
    if endpoint.scopes.is_empty() {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "you have tried to request authorization but your application is not configured to use this authorization grant type",
        ));
    }

    // Remember the jti and issue the token in one unit of work: a replay fails on the
    // must-not-exist write, wherever it arrives.
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let token_record = json!({
        "app": app.id,
        "environment": endpoint.environment,
        "scopes": endpoint.scopes,
        "expires": now + TOKEN_LIFETIME_SECS,
    });
    let jti_record = json!({"iss": iss, "expires": now + JTI_MEMORY_SECS});
    let jti_id = key_hash(&format!("{iss}\u{0}{jti}"));
    let token_id = key_hash(&token);
    let stored = endpoint
        .store
        .write(move |tx| {
            Box::pin(async move {
                tx.put(PLATFORM, "Jti", &jti_id, jti_record, &[], Expect::Absent)
                    .await?;
                tx.put(
                    PLATFORM,
                    "AccessToken",
                    &token_id,
                    token_record,
                    &[],
                    Expect::Absent,
                )
                .await?;
                Ok::<_, StoreError>(())
            })
        })
        .await;
    match stored {
        Ok(()) => {}
        Err(StoreError::AlreadyExists { .. }) => {
            return Err(invalid_request(
                "Non-unique jti claim in client_assertion JWT",
            ));
        }
        Err(_) => {
            return Err(oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "the token store is not available; try again shortly",
            ));
        }
    }
    endpoint.metrics.increment(
        "carehub_tokens_issued_total",
        vec![("environment", endpoint.environment.clone())],
    );
    tracing::info!(target: "carehub::access", app = %app.id, environment = %endpoint.environment, "access token issued");
    Ok((
        StatusCode::OK,
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        json!({
            "access_token": token,
            "expires_in": TOKEN_LIFETIME_SECS.to_string(),
            "token_type": "Bearer",
            "issued_at": (now * 1000).to_string(),
        })
        .to_string(),
    )
        .into_response())
}

/// The live access token a bearer string stands for, if any.
pub(crate) async fn lookup(store: &Store, token: &str) -> Result<Option<AccessToken>, StoreError> {
    let Some(record) = store
        .read(PLATFORM, "AccessToken", &key_hash(token))
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
    if body.get("expires").and_then(Value::as_u64).unwrap_or(0) <= now_secs() {
        return Ok(None);
    }
    Ok(Some(AccessToken {
        app_id: body["app"].as_str().unwrap_or_default().to_owned(),
        environment: body["environment"].as_str().unwrap_or_default().to_owned(),
        scopes: body["scopes"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    }))
}

/// The application a token was issued to.
pub(crate) async fn token_app(apps: &Apps, token: &AccessToken) -> Option<App> {
    apps.get(&token.app_id).await.ok().flatten()
}
