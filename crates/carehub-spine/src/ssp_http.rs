//! The Spine Secure Proxy's HTTP face (`/{env}/ssp/{provider service root}/{request}`): checks
//! the consumer and the route against SDS, then forwards the request, headers and body as they
//! came, and answers with the provider's response. A provider hosted by this carehub is reached
//! over HTTP like any other, with the proxy's own application credentials (created on first
//! use and kept in the store partition `ssp-{env}`), as the real proxy holds its own client
//! certificate.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use carehub_gateway::apps::Apps;
use carehub_gateway::{Mount, ProductRouter, RequestContext};
use carehub_store::{Expect, Store};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::sds::repo::SdsRepo;
use crate::ssp::{self, Parties, Refusal, Route};

const SYSTEM_SSP: &str = "http://fhir.nhs.net/ValueSet/gpconnect-schedule-response-code-1-0";

struct Ssp {
    sds: SdsRepo,
    store: Store,
    key: String,
    environment: String,
    public_url: String,
    client: reqwest::Client,
    credential: OnceCell<String>,
}

/// The routes of one environment's proxy.
pub(crate) fn router(mount: &Mount) -> ProductRouter {
    let ssp = Arc::new(Ssp {
        sds: SdsRepo::new(mount.store.clone(), &format!("sds-{}", mount.environment)),
        store: mount.store.clone(),
        key: mount.store_key.clone(),
        environment: mount.environment.clone(),
        public_url: mount.public_url.trim_end_matches('/').to_owned(),
        client: reqwest::Client::new(),
        credential: OnceCell::new(),
    });
    // A route, not a fallback: the gateway's guard wraps routes, and every proxied request must
    // pass it (credentials, limits, audit) before the proxy looks at it.
    let api = Router::new()
        .route("/{*target}", any(proxy))
        .with_state(ssp);
    ProductRouter {
        api,
        public: Router::new(),
    }
}

fn refused(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({
        "resourceType": "OperationOutcome",
        "id": uuid::Uuid::new_v4().to_string(),
        "issue": [{
            "severity": "error",
            "code": refusal.issue,
            "details": {"coding": [{"system": SYSTEM_SSP, "code": refusal.status.to_string(), "display": refusal.token}]},
            "diagnostics": refusal.token,
        }],
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        body.to_string(),
    )
        .into_response()
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Headers that belong to one hop, or carry the consumer's own credentials.
const NOT_FORWARDED: [&str; 8] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "apikey",
    "keep-alive",
    "upgrade",
    "te",
];

impl Ssp {
    /// The proxy's application key in its own environment, made once.
    async fn credential(&self) -> Result<String, String> {
        self.credential
            .get_or_try_init(|| async {
                if let Some(found) = self
                    .store
                    .read_fresh(&self.key, "SspIdentity", &self.environment)
                    .await
                    .map_err(|e| e.to_string())?
                    && let Some(body) = found.body
                {
                    let value: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
                    return Ok(value["key"].as_str().unwrap_or_default().to_owned());
                }
                let (app, key) = Apps::new(self.store.clone())
                    .create("Spine Secure Proxy", &self.environment, "YES")
                    .await
                    .map_err(|e| e.to_string())?;
                let record = json!({"app": app.id, "key": key});
                let partition = self.key.clone();
                let environment = self.environment.clone();
                let stored: Result<_, carehub_store::StoreError> = self
                    .store
                    .write(move |tx| {
                        Box::pin(async move {
                            tx.put(
                                &partition,
                                "SspIdentity",
                                &environment,
                                record,
                                &[],
                                Expect::Absent,
                            )
                            .await
                        })
                    })
                    .await;
                match stored {
                    Ok(_) => Ok(key),
                    // Another node made one first: use that one.
                    Err(carehub_store::StoreError::AlreadyExists { .. }) => {
                        let found = self
                            .store
                            .read_fresh(&self.key, "SspIdentity", &self.environment)
                            .await
                            .map_err(|e| e.to_string())?;
                        let body = found.and_then(|f| f.body).unwrap_or_default();
                        let value: Value =
                            serde_json::from_str(&body).map_err(|e| e.to_string())?;
                        Ok(value["key"].as_str().unwrap_or_default().to_owned())
                    }
                    Err(other) => Err(other.to_string()),
                }
            })
            .await
            .cloned()
    }
}

async fn proxy(
    State(ssp): State<Arc<Ssp>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    context: Option<Extension<RequestContext>>,
    body: Bytes,
) -> Response {
    let sent = ssp::Headers {
        trace_id: header_text(&headers, "ssp-traceid"),
        from: header_text(&headers, "ssp-from"),
        to: header_text(&headers, "ssp-to"),
        interaction_id: header_text(&headers, "ssp-interactionid"),
    };
    let (from, to, interaction) = match ssp::required(&sent) {
        Ok(found) => found,
        Err(refusal) => return refused(&refusal),
    };
    if let Err(refusal) = ssp::carried(
        method.as_str(),
        header_text(&headers, "content-type"),
        !body.is_empty(),
    ) {
        return refused(&refusal);
    }
    let mut target = uri.path().trim_start_matches('/').to_owned();
    if let Some(query) = uri.query() {
        target = format!("{target}?{query}");
    }
    let caller_asid = context.as_ref().and_then(|c| {
        c.asid
            .clone()
            .or_else(|| c.app.as_ref().and_then(|a| a.asid.clone()))
    });
    let lookups = async {
        let sender = ssp.sds.system(from).await?;
        let receiver = ssp.sds.system(to).await?;
        let endpoint = match &receiver {
            Some(r) => ssp.sds.handler(&r.party_key, interaction).await?,
            None => None,
        };
        Ok::<_, crate::pds::repo::PdsRepoError>((sender, receiver, endpoint))
    };
    let (sender, receiver, endpoint) = match lookups.await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "SSP directory lookup failed");
            return refused(&Refusal {
                status: 500,
                issue: "exception",
                token: "INTERNAL_SERVER_ERROR".into(),
            });
        }
    };
    let route = Route {
        from,
        to,
        interaction,
        target: &target,
        caller_asid: caller_asid.as_deref(),
    };
    let parties = Parties {
        sender: sender.as_ref(),
        receiver: receiver.as_ref(),
        endpoint: endpoint.as_ref(),
    };
    if let Err(refusal) = ssp::authorise(route, parties) {
        return refused(&refusal);
    }
    let unreachable = || Refusal {
        status: 502,
        issue: "transient",
        token: format!("ERROR_COMMUNICATING_TO_ENDPOINT_URL_{target}"),
    };
    let Ok(method) = reqwest::Method::from_bytes(method.as_str().as_bytes()) else {
        return refused(&Refusal {
            status: 405,
            issue: "not-supported",
            token: "405: Method Not Allowed".into(),
        });
    };
    let mut request = ssp.client.request(method, &target).body(body.to_vec());
    for (name, value) in &headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    if target.starts_with(&format!("{}/", ssp.public_url)) {
        match ssp.credential().await {
            Ok(key) => request = request.header("apikey", key),
            Err(error) => {
                tracing::error!(%error, "the SSP could not get its credentials");
                return refused(&unreachable());
            }
        }
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%error, target = %target, "the SSP could not reach the provider");
            return refused(&unreachable());
        }
    };
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut forwarded = HeaderMap::new();
    for (name, value) in response.headers() {
        if NOT_FORWARDED.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            axum::http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            forwarded.append(name, value);
        }
    }
    match response.bytes().await {
        Ok(bytes) => (status, forwarded, bytes.to_vec()).into_response(),
        Err(_) => refused(&unreachable()),
    }
}
