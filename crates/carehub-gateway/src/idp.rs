//! The identity provider's HTTP face, at `/{env}/cis2/...`: OpenID configuration, JWKS, the
//! login page where a user picks a virtual smartcard and a role and enters its passcode, the
//! code-for-ID-token exchange, and `userinfo`.
//!
//! Clients are the platform itself ([`PLATFORM_CLIENT`], combined flow, returning to
//! `/{env}/oauth2/callback`) and applications of the environment (separate flow: the API key
//! is the client id, the client secret authenticates it, and the `redirect_uri` must be one of
//! its callback URLs).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::apps::Apps;
use crate::identity::{
    CODE_SECS, CodeGrant, IDP_CODE, Identity, PLATFORM_CLIENT, Smartcard, now_secs,
};
use crate::oauth::{Form, oauth_error};
use crate::user_restricted::{redirect, with_query};

/// One environment's provider.
#[derive(Debug)]
pub(crate) struct Provider {
    pub(crate) environment: String,
    pub(crate) identity: Identity,
    pub(crate) apps: Apps,
}

impl Provider {
    fn issuer(&self) -> String {
        self.identity.issuer(&self.environment)
    }

    fn platform_callback(&self) -> String {
        format!(
            "{}/{}/oauth2/callback",
            self.identity.public_url(),
            self.environment
        )
    }

    /// Checks that `client_id` is a client here and `redirect_uri` one of its callbacks.
    async fn check_client(&self, client_id: &str, redirect_uri: &str) -> Result<(), String> {
        if client_id == PLATFORM_CLIENT {
            return if redirect_uri == self.platform_callback() {
                Ok(())
            } else {
                Err(format!(
                    "redirect_uri '{redirect_uri}' is not the platform's callback"
                ))
            };
        }
        match self.apps.by_key(client_id).await {
            Ok(Some(app)) if app.environment == self.environment => {
                if app.callback_urls.iter().any(|u| u == redirect_uri) {
                    Ok(())
                } else {
                    Err(format!(
                        "redirect_uri '{redirect_uri}' is not a callback URL registered for application '{}'",
                        app.name
                    ))
                }
            }
            Ok(_) => Err(format!(
                "client_id is not an application of the '{}' environment",
                self.environment
            )),
            Err(_) => Err("the application store failed; try again".into()),
        }
    }
}

/// The provider's routes for one environment, under `/{env}/cis2`.
pub(crate) fn router(provider: Arc<Provider>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(configuration))
        .route("/jwks", get(jwks))
        .route("/authorize", get(login_page).post(sign_in))
        .route("/token", axum::routing::post(token))
        .route("/userinfo", get(userinfo))
        .with_state(provider)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn configuration(State(provider): State<Arc<Provider>>) -> Response {
    let issuer = provider.issuer();
    json_response(
        StatusCode::OK,
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "nationalrbacaccess"],
            "acr_values_supported": ["AAL3_ANY", "AAL2_OR_AAL3_ANY", "AAL1_OR_AAL2_OR_AAL3_ANY"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        }),
    )
}

async fn jwks(State(provider): State<Arc<Provider>>) -> Response {
    match provider.identity.jwks(&provider.environment).await {
        Ok(keys) => json_response(StatusCode::OK, keys),
        Err(_) => oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "the signing key is not available; try again shortly",
        ),
    }
}

/// The lowest assurance level an `acr_values` request accepts.
fn required_aal(acr: Option<&str>) -> u8 {
    match acr.unwrap_or("AAL3_ANY") {
        "AAL1_OR_AAL2_OR_AAL3_ANY" => 1,
        "AAL2_OR_AAL3_ANY" | "AAL2_ANY" => 2,
        _ => 3,
    }
}

/// The query fields the login form carries through.
const CARRIED: [&str; 6] = [
    "client_id",
    "redirect_uri",
    "state",
    "nonce",
    "acr_values",
    "scope",
];

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>\
         body{{font-family:Arial,sans-serif;max-width:44em;margin:2em auto;padding:0 1em;color:#212b32}}\
         h1{{color:#005eb8}} fieldset{{border:1px solid #d8dde0;margin:0 0 1em;padding:.5em 1em}}\
         legend{{font-weight:bold}} .error{{border-left:6px solid #d5281b;padding:.5em 1em;color:#d5281b}}\
         label{{display:block;margin:.3em 0}} button{{background:#007f3b;color:#fff;border:0;padding:.6em 1.2em;font-size:1em;margin-right:1em}}\
         button.secondary{{background:#4c6272}}</style></head><body>{body}</body></html>",
        title = escape(title),
    );
    (status, [("cache-control", "no-store")], Html(html)).into_response()
}

fn error_page(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Sign-in error",
        &format!(
            "<h1>Sign-in error</h1><p class=\"error\">{}</p>",
            escape(message)
        ),
    )
}

fn login_form(
    provider: &Provider,
    form: &Form,
    cards: &[Smartcard],
    problem: Option<&str>,
) -> String {
    let mut html = format!(
        "<h1>Sign in with a virtual smartcard</h1><p>Environment <strong>{}</strong>. \
         Choose a card and the role to act in, then enter the card's passcode.</p>",
        escape(&provider.environment)
    );
    if let Some(problem) = problem {
        let _ = write!(
            html,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(problem)
        );
    }
    let _ = write!(
        html,
        "<form method=\"post\" action=\"{}/authorize\">",
        escape(&provider.issuer())
    );
    for name in CARRIED {
        if let Some(value) = form.get(name) {
            let _ = write!(
                html,
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            );
        }
    }
    let minimum = required_aal(form.get("acr_values"));
    let chosen = form.get("role");
    for card in cards {
        let _ = write!(
            html,
            "<fieldset><legend>{} &middot; SDS user {} &middot; AAL{}</legend>",
            escape(&card.name()),
            escape(&card.sds_user_id),
            card.aal
        );
        for role in &card.roles {
            let value = format!("{}:{}", card.id, role.id);
            let disabled = if card.aal < minimum { " disabled" } else { "" };
            let checked = if chosen == Some(value.as_str()) {
                " checked"
            } else {
                ""
            };
            let _ = write!(
                html,
                "<label><input type=\"radio\" name=\"role\" value=\"{}\"{disabled}{checked}> {} ({}) at {}{}</label>",
                escape(&value),
                escape(&role.role_name),
                escape(&role.role_code),
                escape(&role.organisation),
                if role.business_functions.is_empty() {
                    String::new()
                } else {
                    format!(
                        " &middot; e-RS: {}",
                        escape(&role.business_functions.join(", "))
                    )
                }
            );
        }
        html.push_str("</fieldset>");
    }
    if cards.is_empty() {
        html.push_str("<p class=\"error\">This environment has no smartcards yet: issue one with <code>carehub users create</code>.</p>");
    }
    html.push_str(
        "<label>Passcode <input type=\"password\" name=\"passcode\" autocomplete=\"off\" required></label>\
         <p><button type=\"submit\" name=\"action\" value=\"sign-in\">Sign in</button>\
         <button class=\"secondary\" type=\"submit\" name=\"action\" value=\"cancel\" formnovalidate>Cancel</button></p></form>",
    );
    html
}

/// Checks what every authorize request needs before anything is shown or redirected.
async fn check_request(provider: &Provider, form: &Form) -> Result<String, Response> {
    let Some(client_id) = form.get("client_id") else {
        return Err(error_page(StatusCode::BAD_REQUEST, "client_id is missing"));
    };
    let Some(redirect_uri) = form.get("redirect_uri") else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri is missing",
        ));
    };
    provider
        .check_client(client_id, redirect_uri)
        .await
        .map_err(|message| error_page(StatusCode::BAD_REQUEST, &message))?;
    Ok(redirect_uri.to_owned())
}

/// An OAuth error sent back to a known client.
fn back(redirect_uri: &str, form: &Form, error: &str, description: &str) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = form.get("state") {
        params.push(("state", state));
    }
    redirect(&with_query(redirect_uri, &params))
}

async fn login_page(State(provider): State<Arc<Provider>>, RawQuery(query): RawQuery) -> Response {
    let form = Form::parse(query.unwrap_or_default().as_bytes());
    let redirect_uri = match check_request(&provider, &form).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    if form.get("response_type") != Some("code") {
        return back(
            &redirect_uri,
            &form,
            "unsupported_response_type",
            "response_type must be 'code'",
        );
    }
    if !form
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|s| s == "openid"))
    {
        return back(
            &redirect_uri,
            &form,
            "invalid_scope",
            "scope must include 'openid'",
        );
    }
    match provider.identity.cards(&provider.environment).await {
        Ok(cards) => page(
            StatusCode::OK,
            "Sign in",
            &login_form(&provider, &form, &cards, None),
        ),
        Err(_) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "the card store failed; try again",
        ),
    }
}

async fn sign_in(State(provider): State<Arc<Provider>>, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let redirect_uri = match check_request(&provider, &form).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    if form.get("action") == Some("cancel") {
        return back(
            &redirect_uri,
            &form,
            "access_denied",
            "the user cancelled the sign-in",
        );
    }
    let cards = match provider.identity.cards(&provider.environment).await {
        Ok(cards) => cards,
        Err(_) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "the card store failed; try again",
            );
        }
    };
    let again = |status: StatusCode, problem: &str| {
        page(
            status,
            "Sign in",
            &login_form(&provider, &form, &cards, Some(problem)),
        )
    };
    let Some((card_id, role_id)) = form.get("role").and_then(|r| r.split_once(':')) else {
        return again(StatusCode::BAD_REQUEST, "Choose a card and a role.");
    };
    let Some(card) = cards.iter().find(|c| c.id == card_id) else {
        return again(
            StatusCode::BAD_REQUEST,
            "That card is not known in this environment.",
        );
    };
    if card.role(role_id).is_none() {
        return again(
            StatusCode::BAD_REQUEST,
            "That role is not on the chosen card.",
        );
    }
    if card.aal < required_aal(form.get("acr_values")) {
        return again(
            StatusCode::FORBIDDEN,
            "This card's assurance level is lower than the application asked for.",
        );
    }
    if !card.opens_with(form.get("passcode").unwrap_or_default()) {
        return again(
            StatusCode::UNAUTHORIZED,
            "The passcode does not open this card.",
        );
    }
    let grant = CodeGrant {
        card: card.id.clone(),
        role: role_id.to_owned(),
        client_id: form.get("client_id").unwrap_or_default().to_owned(),
        redirect_uri: redirect_uri.clone(),
        nonce: form.get("nonce").map(str::to_owned),
        expires: now_secs() + CODE_SECS,
    };
    match provider.identity.issue_code(IDP_CODE, grant).await {
        Ok(code) => {
            let mut params = vec![("code", code.as_str())];
            if let Some(state) = form.get("state") {
                params.push(("state", state));
            }
            redirect(&with_query(&redirect_uri, &params))
        }
        Err(_) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "the sign-in could not be recorded; try again",
        ),
    }
}

/// `POST /{env}/cis2/token`: an application's code for an ID token (separate flow).
async fn token(State(provider): State<Arc<Provider>>, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if form.get("grant_type") != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be 'authorization_code'",
        );
    }
    let (Some(client_id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id and client_secret are required",
        );
    };
    let app = match provider.apps.by_key(client_id).await {
        Ok(Some(app)) if app.environment == provider.environment => app,
        Ok(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client_id is invalid",
            );
        }
        Err(_) => {
            return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "try again");
        }
    };
    if !provider
        .apps
        .secret_matches(&app.id, secret)
        .await
        .unwrap_or(false)
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_secret is invalid",
        );
    }
    let Some(code) = form.get("code") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code is missing",
        );
    };
    let grant = match provider.identity.redeem_code(IDP_CODE, code).await {
        Ok(Some(grant)) if grant.client_id == client_id => grant,
        Ok(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "code is invalid or expired",
            );
        }
        Err(_) => {
            return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "try again");
        }
    };
    if form.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri does not match the one the code was issued for",
        );
    }
    let card = match provider.identity.card(&grant.card).await {
        Ok(Some(card)) => card,
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the smartcard no longer exists",
            );
        }
    };
    let signed = provider
        .identity
        .id_token(&card, &grant.role, client_id, grant.nonce.as_deref())
        .await;
    let access = provider
        .identity
        .issue_userinfo_token(&card.id, &grant.role)
        .await;
    match (signed, access) {
        (Ok(id_token), Ok(access_token)) => json_response(
            StatusCode::OK,
            json!({
                "access_token": access_token,
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": 599,
                "scope": "openid",
            }),
        ),
        _ => oauth_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "try again"),
    }
}

async fn userinfo(State(provider): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    match provider.identity.userinfo(token).await {
        Ok(Some(info)) => json_response(StatusCode::OK, info),
        Ok(None) => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is unknown or has expired",
        ),
        Err(_) => oauth_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "try again"),
    }
}
