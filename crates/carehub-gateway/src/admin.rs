//! The admin REST API for applications (JSON, not FHIR), for operators and for the developer hub:
//!
//! - `GET /admin/apps[?environment=int]`: the registered applications;
//! - `POST /admin/apps` `{name, environment, organisation}`: register one; the answer carries its
//!   API key, shown this once;
//! - `GET /admin/apps/{id}`: one application;
//! - `POST /admin/apps/{id}/keys` (a JWK): register a public key for signed-JWT authentication;
//! - `POST /admin/apikeys/revoke` `{api_key}`: revoke a key;
//! - `PUT /admin/apps/{id}/asid` `{asid}`: record the application's Accredited System ID;
//! - `GET /admin/smartcards?environment=int`: an environment's virtual smartcards (without
//!   their passcodes);
//! - `POST /admin/smartcards` `{given_name, family_name, environment, passcode, aal?, roles:
//!   [{role_code, role_name, organisation, business_functions?}]}`: issue one;
//! - `GET /admin/smartcards/{id}`, `DELETE /admin/smartcards/{id}`: read or withdraw one (its
//!   tokens stop working at once).
//!
//! Every call needs the API key of an application registered in the `admin` environment, in
//! the `apikey` header. Errors are `{error, error_description, message_id}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carehub_store::Store;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::apps::{App, AppError, Apps};
use crate::identity::{Identity, IdentityError, NewSmartcard};

/// The environment whose applications may administer the others.
pub const ADMIN_ENVIRONMENT: &str = "admin";

#[derive(Debug)]
struct AdminState {
    apps: Apps,
    identity: Identity,
    store: Store,
    environments: Vec<String>,
}

fn error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({
            "error": error,
            "error_description": description.into(),
            "message_id": uuid::Uuid::new_v4().to_string(),
        })
        .to_string(),
    )
        .into_response()
}

fn ok(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn app_error(err: AppError) -> Response {
    match err {
        AppError::Invalid(why) => error(StatusCode::BAD_REQUEST, "invalid_request", why),
        other => {
            tracing::error!(error = %other, "admin API failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "the application store failed; nothing was changed",
            )
        }
    }
}

fn identity_error(err: IdentityError) -> Response {
    match err {
        IdentityError::Invalid(why) => error(StatusCode::BAD_REQUEST, "invalid_request", why),
        other => {
            tracing::error!(error = %other, "admin API failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "the identity store failed; nothing was changed",
            )
        }
    }
}

/// Fails unless `environment` is one of the platform's.
fn known_environment(state: &AdminState, environment: &str) -> Result<(), Response> {
    if state.environments.iter().any(|e| e == environment) {
        return Ok(());
    }
    Err(error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!(
            "'environment' must be one of {}; found '{environment}'",
            state.environments.join(", ")
        ),
    ))
}

async fn authorise(state: &AdminState, headers: &HeaderMap) -> Result<App, Response> {
    let Some(key) = headers.get("apikey").and_then(|v| v.to_str().ok()) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "access_denied",
            "Missing API key: the admin API needs the API key of an 'admin' application in the 'apikey' header",
        ));
    };
    match state.apps.by_key(key).await {
        Ok(Some(app)) if app.environment == ADMIN_ENVIRONMENT => Ok(app),
        Ok(Some(app)) => Err(error(
            StatusCode::FORBIDDEN,
            "access_denied",
            format!(
                "Application '{}' belongs to '{}'; only applications of the '{ADMIN_ENVIRONMENT}' environment may use the admin API",
                app.name, app.environment
            ),
        )),
        Ok(None) => Err(error(
            StatusCode::UNAUTHORIZED,
            "access_denied",
            "Invalid API key",
        )),
        Err(err) => Err(app_error(err)),
    }
}

fn json_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the body is not JSON: {e}"),
        )
    })
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    environment: Option<String>,
}

async fn list(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    let bodies = match crate::apps::list_documents(&state.store, "App").await {
        Ok(bodies) => bodies,
        Err(err) => return app_error(AppError::Store(err)),
    };
    let apps: Vec<Value> = bodies
        .iter()
        .filter_map(|body| serde_json::from_str::<App>(body).ok())
        .filter(|app| {
            query
                .environment
                .as_ref()
                .is_none_or(|env| &app.environment == env)
        })
        .map(|app| serde_json::to_value(app).unwrap_or_default())
        .collect();
    ok(StatusCode::OK, json!({"apps": apps}))
}

async fn create(State(state): State<Arc<AdminState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let environment = field("environment");
    if let Err(response) = known_environment(&state, environment) {
        return response;
    }
    match state
        .apps
        .create(field("name"), environment, field("organisation"))
        .await
    {
        Ok((app, key)) => ok(
            StatusCode::CREATED,
            json!({"app": app, "api_key": key, "note": "the API key is shown only this once"}),
        ),
        Err(err) => app_error(err),
    }
}

async fn read(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    match state.apps.get(&id).await {
        Ok(Some(app)) => ok(StatusCode::OK, json!(app)),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no application {id}"),
        ),
        Err(err) => app_error(err),
    }
}

async fn add_key(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    let jwk = match json_body(&body) {
        Ok(jwk) => jwk,
        Err(response) => return response,
    };
    match state.apps.add_public_key(&id, jwk).await {
        Ok(app) => ok(StatusCode::OK, json!(app)),
        Err(err) => app_error(err),
    }
}

async fn revoke(State(state): State<Arc<AdminState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(key) = body.get("api_key").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "'api_key' is missing",
        );
    };
    match state.apps.revoke_key(key).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no live API key matches",
        ),
        Err(err) => app_error(err),
    }
}

async fn set_asid(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    let body = match json_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(asid) = body.get("asid").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "'asid' is missing",
        );
    };
    match state.apps.set_asid(&id, asid).await {
        Ok(app) => ok(StatusCode::OK, json!(app)),
        Err(err) => app_error(err),
    }
}

async fn list_cards(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    let Some(environment) = query.environment else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "'environment' is required: smartcards belong to one environment",
        );
    };
    if let Err(response) = known_environment(&state, &environment) {
        return response;
    }
    match state.identity.cards(&environment).await {
        Ok(cards) => ok(
            StatusCode::OK,
            json!({"smartcards": cards.iter().map(|c| c.public()).collect::<Vec<_>>()}),
        ),
        Err(err) => identity_error(err),
    }
}

async fn issue_card(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    let new: NewSmartcard = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the body is not a smartcard: {e}"),
            );
        }
    };
    if let Err(response) = known_environment(&state, &new.environment) {
        return response;
    }
    match state.identity.issue_card(new).await {
        Ok(card) => ok(StatusCode::CREATED, card.public()),
        Err(err) => identity_error(err),
    }
}

async fn read_card(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    match state.identity.card(&id).await {
        Ok(Some(card)) => ok(StatusCode::OK, card.public()),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no smartcard {id}"),
        ),
        Err(err) => identity_error(err),
    }
}

async fn withdraw_card(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = authorise(&state, &headers).await {
        return response;
    }
    match state.identity.revoke_card(&id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no smartcard {id}"),
        ),
        Err(err) => identity_error(err),
    }
}

/// The admin routes.
pub(crate) fn router(store: Store, public_url: &str, environments: Vec<String>) -> Router {
    let state = Arc::new(AdminState {
        apps: Apps::new(store.clone()),
        identity: Identity::new(store.clone(), public_url),
        store,
        environments,
    });
    Router::new()
        .route("/admin/apps", get(list).post(create))
        .route("/admin/apps/{id}", get(read))
        .route("/admin/apps/{id}/keys", post(add_key))
        .route("/admin/apps/{id}/asid", axum::routing::put(set_asid))
        .route("/admin/apikeys/revoke", post(revoke))
        .route("/admin/smartcards", get(list_cards).post(issue_card))
        .route(
            "/admin/smartcards/{id}",
            get(read_card).delete(withdraw_card),
        )
        .with_state(state)
}
