//! Signed-JWT client credentials end to end, with keys generated in the test: every check of
//! the token endpoint, and the token's use on an application-restricted product.

mod common;

use carehub_gateway::keys;
use common::{TestApp, outcome, spawn_app, spine_code};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

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
access = ["application-restricted"]

[[products]]
api = "fhir-r4"
environment = "dev"
access = ["application-restricted"]
"#;

struct Client {
    api_key: String,
    key: keys::SigningKey,
    token_url: String,
}

async fn registered(app: &TestApp, environment: &str) -> Client {
    let (registered, api_key) = app
        .apps
        .create("Signed-JWT-App", environment, "A1B2C")
        .await
        .unwrap();
    let key = keys::generate_for_tests("test-1").unwrap();
    app.apps
        .add_public_key(&registered.id, key.public_jwk.clone())
        .await
        .unwrap();
    Client {
        api_key,
        key,
        token_url: format!("{}/{environment}/oauth2/token", app.url),
    }
}

async fn ask(app: &TestApp, url: &str, assertion: &str) -> (u16, Value) {
    let body = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
        "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    );
    let response = app
        .client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn sign(client: &Client, alg: Algorithm, kid: &str, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    header.typ = Some("JWT".into());
    let key = EncodingKey::from_rsa_pem(client.key.private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn claims(client: &Client) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({"iss": client.api_key, "sub": client.api_key, "aud": client.token_url,
           "jti": uuid::Uuid::new_v4().to_string(), "exp": now + 300})
}

#[tokio::test]
async fn a_signed_assertion_buys_a_token_that_opens_the_product() {
    let app = spawn_app(PLATFORM).await;
    let client = registered(&app, "int").await;
    let patients = format!("{}/int/fhir/R4/Patient", app.url);

    let (status, body) = outcome(app.client.get(&patients).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(spine_code(&body), "ACCESS_DENIED");
    assert!(body.to_string().contains("oauth2/token"), "{body}");

    let assertion = keys::client_assertion(
        &client.key.private_pem,
        "test-1",
        &client.api_key,
        &client.token_url,
        300,
    )
    .unwrap();
    let (status, token) = ask(&app, &client.token_url, &assertion).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["expires_in"], "599");
    assert_eq!(token["token_type"], "Bearer");
    assert!(token["issued_at"].is_string());
    let access_token = token["access_token"].as_str().unwrap();

    let response = app
        .client
        .get(&patients)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The same assertion again is a replay.
    let (status, body) = ask(&app, &client.token_url, &assertion).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error_description"],
        "Non-unique jti claim in client_assertion JWT"
    );

    // A token from int does not open dev.
    let (status, body) = outcome(
        app.client
            .get(format!("{}/dev/fhir/R4/Patient", app.url))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.to_string().contains("only in their own environment"));
    let (status, _) = outcome(
        app.client
            .get(&patients)
            .bearer_auth("made-up")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn every_bad_assertion_gets_the_nhs_error() {
    let app = spawn_app(PLATFORM).await;
    let client = registered(&app, "int").await;
    let other_key = keys::generate_for_tests("test-1").unwrap();
    let now = claims(&client)["exp"].as_u64().unwrap() - 300;

    let mut cases: Vec<(String, u16, &str, &str)> = Vec::new();
    cases.push((
        sign(&client, Algorithm::RS256, "test-1", claims(&client)),
        400,
        "invalid_request",
        "Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'",
    ));
    let mut expired = claims(&client);
    expired["exp"] = json!(now - 10);
    cases.push((
        sign(&client, Algorithm::RS512, "test-1", expired),
        400,
        "invalid_request",
        "Invalid 'exp' claim in client_assertion JWT - JWT has expired",
    ));
    let mut far = claims(&client);
    far["exp"] = json!(now + 3600);
    cases.push((
        sign(&client, Algorithm::RS512, "test-1", far),
        400,
        "invalid_request",
        "Invalid 'exp' claim in client_assertion JWT - more than 5 minutes in future",
    ));
    let mut mismatched = claims(&client);
    mismatched["sub"] = json!("someone-else");
    cases.push((
        sign(&client, Algorithm::RS512, "test-1", mismatched),
        400,
        "invalid_request",
        "Missing or non-matching iss/sub claims in client_assertion JWT",
    ));
    let mut no_jti = claims(&client);
    no_jti.as_object_mut().unwrap().remove("jti");
    cases.push((
        sign(&client, Algorithm::RS512, "test-1", no_jti),
        400,
        "invalid_request",
        "Missing 'jti' claim in client_assertion JWT",
    ));
    let mut wrong_aud = claims(&client);
    wrong_aud["aud"] = json!("https://int.api.service.nhs.uk/oauth2/token");
    cases.push((
        sign(&client, Algorithm::RS512, "test-1", wrong_aud),
        401,
        "invalid_request",
        "Missing or invalid 'aud' claim in client_assertion JWT",
    ));
    cases.push((
        sign(&client, Algorithm::RS512, "unknown-kid", claims(&client)),
        401,
        "invalid_request",
        "Invalid 'kid' header in client_assertion JWT - no matching public key",
    ));
    let forged = Client {
        api_key: client.api_key.clone(),
        key: other_key,
        token_url: client.token_url.clone(),
    };
    cases.push((
        sign(&forged, Algorithm::RS512, "test-1", claims(&client)),
        401,
        "public_key error",
        "JWT signature verification failed",
    ));
    let mut stranger = claims(&client);
    stranger["iss"] = json!("not-an-api-key");
    stranger["sub"] = json!("not-an-api-key");
    cases.push((
        sign(&client, Algorithm::RS512, "test-1", stranger),
        401,
        "invalid_request",
        "Invalid iss/sub claims in JWT",
    ));
    // `alg: none`, unsigned.
    let unsigned = format!(
        "{}.{}.",
        base64_url(&json!({"alg": "none", "typ": "JWT", "kid": "test-1"})),
        base64_url(&claims(&client))
    );
    cases.push((unsigned, 400, "invalid_request",
        "Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'"));
    cases.push((
        "not.a.jwt".into(),
        400,
        "invalid_request",
        "Malformed JWT in client_assertion",
    ));

    for (assertion, status, error, description) in cases {
        let (got_status, body) = ask(&app, &client.token_url, &assertion).await;
        assert_eq!(
            (got_status, body["error"].as_str().unwrap_or_default()),
            (status, error),
            "{body}"
        );
        assert_eq!(body["error_description"], description);
        assert!(body["message_id"].is_string());
    }

    // The form itself.
    let response = app
        .client
        .post(&client.token_url)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = app
        .client
        .post(&client.token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_assertion=x")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_description"], "grant_type is missing");
}

fn base64_url(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}
