//! User-restricted access, as the NHS platform does it with CIS2, over carehub's own identity
//! provider ([`crate::identity`]):
//!
//! - **Combined flow.** `GET /{env}/oauth2/authorize` (the application's API key as
//!   `client_id`, a registered `redirect_uri`, a `state`) sends the browser to the provider's
//!   login page; the provider returns to `/{env}/oauth2/callback`, which sends the browser on to
//!   the application with a code; `POST /{env}/oauth2/token` with `authorization_code` and the
//!   client secret gives an access token and a refresh token (`refresh_token` grant, rotated on
//!   each use, within a 12-hour sign-in session).
//! - **Separate flow.** The application signs the user in with the provider itself, then
//!   exchanges the ID token (RFC 8693) with a signed-JWT client assertion.
//!
//! Either way the access token carries the user and the selected role, and the scopes
//! `urn:nhsd:apim:user-nhs-cis2:aal{N}:{api}` for the user's assurance level.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::apps::App;
use crate::identity::{
    CODE_SECS, CodeGrant, IDP_CODE, PLATFORM_CLIENT, PLATFORM_CODE, UserIdentity, VerifyError,
    now_secs, take,
};
use crate::oauth::{
    ASSERTION_TYPE, Form, Grant, TOKEN_LIFETIME_SECS, TokenEndpoint, invalid_request, issue,
    oauth_error, token_response, unavailable, verify_assertion,
};

/// The RFC 8693 grant type.
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// A sign-in session lasts this long; refresh tokens cannot extend it (CIS2: 43199 s).
pub(crate) const SESSION_SECS: u64 = 43_199;
/// The browser has this long between `authorize` and the callback.
const AUTHORIZE_SECS: u64 = 600;

fn encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// A URL with query parameters added.
pub(crate) fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (key, value) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(key);
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

pub(crate) fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [("location", location), ("cache-control", "no-store")],
    )
        .into_response()
}

fn server_error() -> Response {
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the platform's stores failed; try again",
    )
}

/// The application a `client_id` (its API key) names in this environment.
async fn client(endpoint: &TokenEndpoint, client_id: Option<&str>) -> Result<App, Response> {
    let Some(client_id) = client_id else {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "client_id is missing",
        ));
    };
    match endpoint.apps.by_key(client_id).await {
        Ok(Some(app)) if app.environment == endpoint.environment => Ok(app),
        Ok(_) => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id is invalid",
        )),
        Err(_) => Err(server_error()),
    }
}

/// The application, proved by its client id and secret.
async fn authenticated_client(endpoint: &TokenEndpoint, form: &Form) -> Result<App, Response> {
    let app = client(endpoint, form.get("client_id")).await?;
    let Some(secret) = form.get("client_secret") else {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "client_secret is missing",
        ));
    };
    match endpoint.apps.secret_matches(&app.id, secret).await {
        Ok(true) => Ok(app),
        Ok(false) => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_secret is invalid",
        )),
        Err(_) => Err(server_error()),
    }
}

/// `GET /{env}/oauth2/authorize`: checks the application and sends the browser to the login.
pub(crate) async fn authorize(
    State(endpoint): State<Arc<TokenEndpoint>>,
    RawQuery(query): RawQuery,
) -> Response {
    let form = Form::parse(query.unwrap_or_default().as_bytes());
    let app = match client(&endpoint, form.get("client_id")).await {
        Ok(app) => app,
        Err(response) => return response,
    };
    let Some(redirect_uri) = form.get("redirect_uri") else {
        return invalid_request("redirect_uri is missing");
    };
    if !app.callback_urls.iter().any(|u| u == redirect_uri) {
        return invalid_request(&format!(
            "redirect_uri is invalid: '{redirect_uri}' is not a callback URL registered for application '{}'",
            app.name
        ));
    }
    // From here on the application is known, so errors go back to it, as OAuth says.
    let state = form.get("state");
    let back = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(state) = state {
            params.push(("state", state));
        }
        redirect(&with_query(redirect_uri, &params))
    };
    match form.get("response_type") {
        Some("code") => {}
        None => return back("invalid_request", "response_type is missing"),
        Some(_) => {
            return back("unsupported_response_type", "response_type must be 'code'");
        }
    }
    let Some(state) = state else {
        return invalid_request("state is missing");
    };
    let pending = uuid::Uuid::new_v4().to_string();
    let record = json!({
        "app": app.id,
        "redirect_uri": redirect_uri,
        "state": state,
        "expires": now_secs() + AUTHORIZE_SECS,
    });
    let id = pending.clone();
    let stored = endpoint
        .store
        .write(move |tx| {
            Box::pin(async move {
                tx.put(
                    crate::apps::PLATFORM,
                    "Authorization",
                    &id,
                    record,
                    &[],
                    carehub_store::Expect::Absent,
                )
                .await
            })
        })
        .await;
    if stored.is_err() {
        return unavailable();
    }
    let issuer = endpoint.identity.issuer(&endpoint.environment);
    let acr = form.get("acr_values").unwrap_or("AAL3_ANY");
    redirect(&with_query(
        &format!("{issuer}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", PLATFORM_CLIENT),
            ("redirect_uri", &callback_url(&endpoint)),
            ("scope", "openid"),
            ("state", &pending),
            ("acr_values", acr),
        ],
    ))
}

/// Where the provider sends the browser back to the platform.
pub(crate) fn callback_url(endpoint: &TokenEndpoint) -> String {
    format!(
        "{}/{}/oauth2/callback",
        endpoint.identity.public_url(),
        endpoint.environment
    )
}

/// `GET /{env}/oauth2/callback`: the provider's answer, turned into the platform's code for the
/// application.
pub(crate) async fn callback(
    State(endpoint): State<Arc<TokenEndpoint>>,
    RawQuery(query): RawQuery,
) -> Response {
    let form = Form::parse(query.unwrap_or_default().as_bytes());
    let Some(pending_id) = form.get("state") else {
        return invalid_request("state is missing");
    };
    let pending = match take(endpoint.identity.store(), "Authorization", pending_id).await {
        Ok(Some(pending)) if pending["expires"].as_u64().unwrap_or(0) > now_secs() => pending,
        Ok(_) => {
            return invalid_request(
                "state is invalid: this sign-in is unknown, finished or expired (start again at /oauth2/authorize)",
            );
        }
        Err(_) => return unavailable(),
    };
    let text = |key: &str| pending[key].as_str().unwrap_or_default().to_owned();
    let (app_id, redirect_uri, app_state) = (text("app"), text("redirect_uri"), text("state"));
    if let Some(error) = form.get("error") {
        let description = form.get("error_description").unwrap_or("sign-in failed");
        return redirect(&with_query(
            &redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", &app_state),
            ],
        ));
    }
    let Some(code) = form.get("code") else {
        return invalid_request("code is missing");
    };
    let grant = match endpoint.identity.redeem_code(IDP_CODE, code).await {
        Ok(Some(grant))
            if grant.client_id == PLATFORM_CLIENT
                && grant.redirect_uri == callback_url(&endpoint) =>
        {
            grant
        }
        Ok(_) => return invalid_request("code is invalid or expired"),
        Err(_) => return unavailable(),
    };
    let ours = CodeGrant {
        card: grant.card,
        role: grant.role,
        client_id: app_id,
        redirect_uri: redirect_uri.clone(),
        nonce: None,
        expires: now_secs() + CODE_SECS,
    };
    match endpoint.identity.issue_code(PLATFORM_CODE, ours).await {
        Ok(code) => redirect(&with_query(
            &redirect_uri,
            &[("code", &code), ("state", &app_state)],
        )),
        Err(_) => unavailable(),
    }
}

/// The user a code or refresh token stands for, if the card still exists.
async fn user_of(
    endpoint: &TokenEndpoint,
    card: &str,
    role: &str,
) -> Result<Option<UserIdentity>, Response> {
    match endpoint.identity.card(card).await {
        Ok(Some(card)) if card.environment == endpoint.environment => {
            Ok(UserIdentity::of(&card, role))
        }
        Ok(_) => Ok(None),
        Err(_) => Err(server_error()),
    }
}

fn no_scopes() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized_client",
        "you have tried to request authorization but your application is not configured to use this authorization grant type, or the user's assurance level is too low for it",
    )
}

/// The combined flow's token response: access and refresh token.
async fn issue_with_refresh(
    endpoint: &TokenEndpoint,
    app: &App,
    user: UserIdentity,
    session_ends: u64,
    refresh_count: u64,
) -> Result<Response, Response> {
    let scopes = endpoint.user_scopes(user.aal);
    if scopes.is_empty() {
        return Err(no_scopes());
    }
    let issued = issue(
        endpoint,
        Grant {
            app,
            scopes,
            user: Some(user),
            jti: None,
            refresh: Some((session_ends, refresh_count)),
        },
    )
    .await?;
    Ok(token_response(json!({
        "access_token": issued.access_token,
        "expires_in": TOKEN_LIFETIME_SECS.to_string(),
        "refresh_token": issued.refresh_token,
        "refresh_token_expires_in": session_ends.saturating_sub(issued.issued_at).to_string(),
        "refresh_count": refresh_count.to_string(),
        "token_type": "Bearer",
        "issued_at": (issued.issued_at * 1000).to_string(),
    })))
}

/// `grant_type=authorization_code`: the platform's code from the callback, for tokens.
pub(crate) async fn authorization_code(
    endpoint: &TokenEndpoint,
    form: &Form,
) -> Result<Response, Response> {
    let app = authenticated_client(endpoint, form).await?;
    let Some(code) = form.get("code") else {
        return Err(invalid_request("authorization_code is missing"));
    };
    let invalid_grant =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let grant = match endpoint.identity.redeem_code(PLATFORM_CODE, code).await {
        Ok(Some(grant)) if grant.client_id == app.id => grant,
        Ok(_) => return Err(invalid_grant("authorization_code is invalid")),
        Err(_) => return Err(unavailable()),
    };
    if form.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "redirect_uri does not match the one the code was issued for",
        ));
    }
    let Some(user) = user_of(endpoint, &grant.card, &grant.role).await? else {
        return Err(invalid_grant(
            "the user's smartcard or role no longer exists",
        ));
    };
    issue_with_refresh(endpoint, &app, user, now_secs() + SESSION_SECS, 0).await
}

/// `grant_type=refresh_token`: a new access token within the sign-in session; the refresh token
/// is replaced by a new one.
pub(crate) async fn refresh(endpoint: &TokenEndpoint, form: &Form) -> Result<Response, Response> {
    let app = authenticated_client(endpoint, form).await?;
    let Some(refresh_token) = form.get("refresh_token") else {
        return Err(invalid_request("refresh_token is missing"));
    };
    let invalid = || {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh_token is invalid",
        )
    };
    let record = match take(
        &endpoint.store,
        "RefreshToken",
        &crate::apps::key_hash(refresh_token),
    )
    .await
    {
        Ok(Some(record)) => record,
        Ok(None) => return Err(invalid()),
        Err(_) => return Err(unavailable()),
    };
    if record["app"].as_str() != Some(app.id.as_str())
        || record["environment"].as_str() != Some(endpoint.environment.as_str())
    {
        return Err(invalid());
    }
    let session_ends = record["session_ends"].as_u64().unwrap_or(0);
    if session_ends <= now_secs() {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "refresh token refresh period has expired",
        ));
    }
    let Ok(Some(previous)) = serde_json::from_value::<Option<UserIdentity>>(record["user"].clone())
    else {
        return Err(invalid());
    };
    let Some(user) = user_of(endpoint, &previous.id, &previous.role.id).await? else {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the user's smartcard or role no longer exists",
        ));
    };
    let count = record["refresh_count"].as_u64().unwrap_or(0) + 1;
    issue_with_refresh(endpoint, &app, user, session_ends, count).await
}

/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`: an ID token from carehub's
/// identity provider, with a signed-JWT client assertion, for an access token.
pub(crate) async fn token_exchange(
    endpoint: &TokenEndpoint,
    form: &Form,
) -> Result<Response, Response> {
    if form.get("subject_token_type") != Some(ID_TOKEN_TYPE) {
        return Err(invalid_request(&format!(
            "missing or invalid subject_token_type - must be '{ID_TOKEN_TYPE}'"
        )));
    }
    let Some(subject_token) = form.get("subject_token") else {
        return Err(invalid_request("missing subject_token"));
    };
    if form.get("client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err(invalid_request(
            "Missing or invalid client_assertion_type - must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'",
        ));
    }
    let Some(assertion) = form.get("client_assertion") else {
        return Err(invalid_request("Missing client_assertion"));
    };
    let asserted = verify_assertion(endpoint, assertion).await?;
    let claims = match endpoint
        .identity
        .verify_id_token(&endpoint.environment, subject_token)
        .await
    {
        Ok(claims) => claims,
        Err(VerifyError::Invalid(description)) => return Err(invalid_request(&description)),
        Err(VerifyError::Unauthorized(description)) => {
            return Err(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                &description,
            ));
        }
        Err(VerifyError::Fault(_)) => return Err(server_error()),
    };
    // The ID token must have been issued to this application (its API key is its client id
    // at the identity provider).
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => *aud == asserted.client_id,
        Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(&asserted.client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "Missing or invalid 'aud' claim in subject_token JWT - it must be the client_id (API key) of the application",
        ));
    }
    let card = claims["sub"].as_str().unwrap_or_default();
    let role = claims["selected_roleid"].as_str().unwrap_or_default();
    let Some(mut user) = user_of(endpoint, card, role).await? else {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "the subject_token's user or selected role is not known in this environment",
        ));
    };
    // The assurance level of this sign-in, as the ID token states it.
    user.aal = claims["authentication_assurance_level"]
        .as_str()
        .and_then(|level| level.parse().ok())
        .unwrap_or(0)
        .min(user.aal);
    let scopes = endpoint.user_scopes(user.aal);
    if scopes.is_empty() {
        return Err(no_scopes());
    }
    let issued = issue(
        endpoint,
        Grant {
            app: &asserted.app,
            scopes,
            user: Some(user),
            jti: Some(asserted.jti),
            refresh: None,
        },
    )
    .await?;
    Ok(token_response(json!({
        "access_token": issued.access_token,
        "expires_in": TOKEN_LIFETIME_SECS.to_string(),
        "token_type": "Bearer",
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "issued_at": (issued.issued_at * 1000).to_string(),
    })))
}
