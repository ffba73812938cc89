//! `POST /{environment}/oauth2/token`: application-restricted access with a signed JWT, as the
//! NHS identity service does it (`client_credentials` with a `private_key_jwt` client
//! assertion), with its checks in its order and its error strings.
//!
//! Issued access tokens and used `jti`s are documents in the store's `platform` partition
//! (`AccessToken/{sha-256}`, `Jti/{sha-256 of iss and jti}`), so every node sees them and a
//! replayed assertion fails even on another node: the `jti` record is created with
//! "must not exist", which the database decides.

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

use crate::apps::{App, Apps, CREDENTIAL_MAX_AGE, PLATFORM, key_hash};
use crate::identity::{Identity, UserIdentity, now_secs};

/// Access tokens live this long (the NHS platform's `expires_in: "599"`).
pub const TOKEN_LIFETIME_SECS: u64 = 599;
/// A used `jti` is remembered this long.
const JTI_MEMORY_SECS: u64 = 30 * 86_400;
/// Assertions may be valid for 5 minutes, plus 10 seconds for clock drift.
const MAX_ASSERTION_SECS: u64 = 310;

pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the token endpoint of one environment needs.
#[derive(Debug, Clone)]
pub(crate) struct TokenEndpoint {
    pub(crate) environment: String,
    /// The exact URL clients must put in `aud`.
    pub(crate) url: String,
    /// The scopes an application of this environment gets: one per application-restricted
    /// product.
    pub(crate) scopes: Vec<String>,
    /// The user-restricted products of this environment: (API, lowest assurance level).
    pub(crate) user_products: Vec<(String, u8)>,
    pub(crate) apps: Apps,
    pub(crate) store: Store,
    pub(crate) identity: Identity,
    pub(crate) metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl TokenEndpoint {
    /// The scopes a user signed in at assurance level `aal` gets: one per user-restricted
    /// product that accepts that level.
    pub(crate) fn user_scopes(&self, aal: u8) -> Vec<String> {
        self.user_products
            .iter()
            .filter(|(_, min_aal)| aal >= *min_aal)
            .map(|(api, _)| crate::config::user_scope(aal, api))
            .collect()
    }
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
    /// The signed-in user, for user-restricted tokens.
    pub user: Option<UserIdentity>,
}

/// An OAuth error in the NHS platform's shape.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
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

pub(crate) fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// An `application/x-www-form-urlencoded` body (or query string), by field name.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Form {
        let text = String::from_utf8_lossy(body);
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Form(
            text.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(key), decode(value))
                })
                .collect(),
        )
    }

    /// A field's value; empty values count as missing.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
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
    let form = Form::parse(&body);
    let grant_type = match form.get("grant_type") {
        None => return invalid_request("grant_type is missing"),
        Some(grant_type) => grant_type,
    };
    let outcome = match grant_type {
        "client_credentials" => client_credentials_grant(&endpoint, &form).await,
        "authorization_code" => crate::user_restricted::authorization_code(&endpoint, &form).await,
        "refresh_token" => crate::user_restricted::refresh(&endpoint, &form).await,
        crate::user_restricted::TOKEN_EXCHANGE => {
            crate::user_restricted::token_exchange(&endpoint, &form).await
        }
        _ => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type is invalid",
        )),
    };
    match outcome {
        Ok(response) | Err(response) => response,
    }
}

async fn client_credentials_grant(
    endpoint: &TokenEndpoint,
    form: &Form,
) -> Result<Response, Response> {
    if form.get("client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err(invalid_request(
            "Missing or invalid client_assertion_type - must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'",
        ));
    }
    let Some(assertion) = form.get("client_assertion") else {
        return Err(invalid_request("Missing client_assertion"));
    };
    client_credentials(endpoint, assertion).await
}

/// An application proved by a client assertion, and the `jti` record that must be written
/// with whatever is issued to it.
pub(crate) struct Asserted {
    pub(crate) app: App,
    /// The assertion's `iss`: the application's API key.
    pub(crate) client_id: String,
    /// The `jti` record's id and body.
    pub(crate) jti: (String, Value),
}

/// Checks a signed-JWT client assertion: header, claims, the application and its key.
pub(crate) async fn verify_assertion(
    endpoint: &TokenEndpoint,
    assertion: &str,
) -> Result<Asserted, Response> {
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
    let jti_record = json!({"iss": iss, "expires": now + JTI_MEMORY_SECS});
    let jti_id = key_hash(&format!("{iss}\u{0}{jti}"));
    Ok(Asserted {
        app,
        client_id: iss,
        jti: (jti_id, jti_record),
    })
}

async fn client_credentials(
    endpoint: &TokenEndpoint,
    assertion: &str,
) -> Result<Response, Response> {
    let asserted = verify_assertion(endpoint, assertion).await?;
    if endpoint.scopes.is_empty() {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "you have tried to request authorization but your application is not configured to use this authorization grant type",
        ));
    }
    let issued = issue(
        endpoint,
        Grant {
            app: &asserted.app,
            scopes: endpoint.scopes.clone(),
            user: None,
            jti: Some(asserted.jti),
            refresh: None,
        },
    )
    .await?;
    Ok(token_response(json!({
        "access_token": issued.access_token,
        "expires_in": TOKEN_LIFETIME_SECS.to_string(),
        "token_type": "Bearer",
        "issued_at": (issued.issued_at * 1000).to_string(),
    })))
}

/// What to issue, and what to write with it.
pub(crate) struct Grant<'a> {
    pub(crate) app: &'a App,
    pub(crate) scopes: Vec<String>,
    pub(crate) user: Option<UserIdentity>,
    /// The client assertion's `jti`, remembered in the same unit of work.
    pub(crate) jti: Option<(String, Value)>,
    /// Issue a refresh token too, for a sign-in session that ends at this Unix time, after
    /// so many refreshes.
    pub(crate) refresh: Option<(u64, u64)>,
}

/// What was issued.
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) issued_at: u64,
}

fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Writes an access token (and the `jti`, and a refresh token when asked) in one unit of work:
/// a replayed assertion fails on the must-not-exist write, wherever it arrives.
pub(crate) async fn issue(endpoint: &TokenEndpoint, grant: Grant<'_>) -> Result<Issued, Response> {
    let now = now_secs();
    let token = new_token();
    let token_record = json!({
        "app": grant.app.id,
        "environment": endpoint.environment,
        "scopes": grant.scopes,
        "user": grant.user,
        "expires": now + TOKEN_LIFETIME_SECS,
    });
    let token_id = key_hash(&token);
    let refresh_token = grant.refresh.map(|_| new_token());
    let refresh_record = grant.refresh.map(|(session_ends, count)| {
        json!({
            "app": grant.app.id,
            "environment": endpoint.environment,
            "scopes": grant.scopes,
            "user": grant.user,
            "session_ends": session_ends,
            "refresh_count": count,
        })
    });
    let refresh_id = refresh_token.as_deref().map(key_hash);
    let jti = grant.jti;
    let stored = endpoint
        .store
        .write(move |tx| {
            Box::pin(async move {
                if let Some((jti_id, jti_record)) = jti {
                    tx.put(PLATFORM, "Jti", &jti_id, jti_record, &[], Expect::Absent)
                        .await?;
                }
                tx.put(
                    PLATFORM,
                    "AccessToken",
                    &token_id,
                    token_record,
                    &[],
                    Expect::Absent,
                )
                .await?;
                if let (Some(id), Some(record)) = (refresh_id, refresh_record) {
                    tx.put(PLATFORM, "RefreshToken", &id, record, &[], Expect::Absent)
                        .await?;
                }
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
        Err(_) => return Err(unavailable()),
    }
    endpoint.metrics.increment(
        "carehub_tokens_issued_total",
        vec![("environment", endpoint.environment.clone())],
    );
    tracing::info!(
        target: "carehub::access",
        app = %grant.app.id,
        environment = %endpoint.environment,
        user = grant.user.as_ref().map(|u| u.sds_user_id.as_str()).unwrap_or("-"),
        "access token issued"
    );
    Ok(Issued {
        access_token: token,
        refresh_token,
        issued_at: now,
    })
}

pub(crate) fn unavailable() -> Response {
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "the token store is not available; try again shortly",
    )
}

/// A 200 token response, never cached.
pub(crate) fn token_response(body: Value) -> Response {
    (
        StatusCode::OK,
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The live access token a bearer string stands for, if any.
pub(crate) async fn lookup(store: &Store, token: &str) -> Result<Option<AccessToken>, StoreError> {
    let Some(record) = store
        .read_recent(
            PLATFORM,
            "AccessToken",
            &key_hash(token),
            CREDENTIAL_MAX_AGE,
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
    if record.is_deleted() || body.get("expires").and_then(Value::as_u64).unwrap_or(0) <= now_secs()
    {
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
        user: serde_json::from_value(body["user"].clone()).ok().flatten(),
    }))
}

/// The application a token was issued to (a copy at most [`CREDENTIAL_MAX_AGE`] old: this is
/// read on every request with the token).
pub(crate) async fn token_app(apps: &Apps, token: &AccessToken) -> Option<App> {
    apps.get_recent(&token.app_id).await.ok().flatten()
}
