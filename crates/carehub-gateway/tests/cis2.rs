//! User-restricted access with virtual smartcards, end to end through a browser's steps: the
//! combined flow (authorize, login page, callback, code, refresh), the separate flow (the
//! provider's own code exchange, then RFC 8693 token exchange), and what each token may call.

mod common;

use carehub_gateway::identity::{self, NewSmartcard, RoleProfile};
use carehub_gateway::keys;
use common::{TestApp, outcome, spawn_app, spine_code};
use serde_json::Value;

const PLATFORM: &str = r#"
[[environments]]
name = "int"

[[environments]]
name = "dev"

[[environments]]
name = "admin"

[[apis]]
name = "audit"
path = "audit/R4"
fhir = "R4"

[[products]]
api = "audit"
environment = "admin"
store_key = "audit"
audit = false

[[apis]]
name = "fhir-r4"
path = "fhir/R4"
fhir = "R4"

[[apis]]
name = "fhir-stu3"
path = "fhir/STU3"
fhir = "STU3"

[[products]]
api = "fhir-r4"
environment = "int"
access = ["user-restricted"]

[[products]]
api = "fhir-stu3"
environment = "int"
access = ["application-restricted"]

[[products]]
api = "fhir-r4"
environment = "dev"
access = ["user-restricted"]
min_aal = 2
"#;

/// Ada Referrer's card and her GP role, as `identity::seed_cards` documents them.
const ADA: &str = "5e1c0000-0000-4000-8000-000000000001";
const ADA_GP_ROLE: &str = "555100000011";
/// Finn Analyst signs in at AAL2.
const FINN: &str = "5e1c0000-0000-4000-8000-000000000006";
const FINN_ROLE: &str = "555100000061";
const CALLBACK: &str = "https://supplier.example/callback";

struct Client {
    api_key: String,
    secret: String,
    key: keys::SigningKey,
}

async fn setup() -> (TestApp, Client, reqwest::Client) {
    let app = spawn_app(PLATFORM).await;
    identity::seed(&app.identity, "int").await.unwrap();
    let (registered, api_key) = app
        .apps
        .create("Referrals-INT", "int", "B82617")
        .await
        .unwrap();
    app.apps
        .set_callback_urls(&registered.id, vec![CALLBACK.into()])
        .await
        .unwrap();
    let secret = app.apps.issue_secret(&registered.id).await.unwrap();
    let key = keys::generate_for_tests("cis2-test").unwrap();
    app.apps
        .add_public_key(&registered.id, key.public_jwk.clone())
        .await
        .unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client = Client {
        api_key,
        secret,
        key,
    };
    (app, client, browser)
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 302, "expected a redirect");
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Submits the login page behind `login_url` with a role and passcode.
async fn submit_login(
    browser: &reqwest::Client,
    login_url: &str,
    role: &str,
    passcode: &str,
) -> reqwest::Response {
    let (action, query) = login_url.split_once('?').unwrap();
    let body = format!(
        "{query}&role={}&passcode={passcode}&action=sign-in",
        percent_encoding::utf8_percent_encode(role, percent_encoding::NON_ALPHANUMERIC)
    );
    browser
        .post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn token_request(app: &TestApp, environment: &str, body: String) -> (u16, Value) {
    outcome(
        app.client
            .post(format!("{}/{environment}/oauth2/token", app.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The combined flow up to the application's code.
async fn combined_code(app: &TestApp, client: &Client, browser: &reqwest::Client) -> String {
    let authorize = browser
        .get(format!(
            "{}/int/oauth2/authorize?response_type=code&client_id={}&redirect_uri={CALLBACK}&state=xyz",
            app.url, client.api_key
        ))
        .send()
        .await
        .unwrap();
    let login_url = location(&authorize);
    assert!(login_url.starts_with(&format!("{}/int/cis2/authorize?", app.url)));
    let signed_in =
        submit_login(browser, &login_url, &format!("{ADA}:{ADA_GP_ROLE}"), "1234").await;
    let callback = location(&signed_in);
    let back = location(&browser.get(&callback).send().await.unwrap());
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("xyz"));
    query_param(&back, "code").expect("a code")
}

fn code_body(client: &Client, code: &str) -> String {
    format!(
        "grant_type=authorization_code&code={code}&redirect_uri={CALLBACK}&client_id={}&client_secret={}",
        client.api_key, client.secret
    )
}

async fn read_patients(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/{path}/Patient", app.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn combined_flow_signs_a_user_in_with_a_smartcard_and_refreshes() {
    let (app, client, browser) = setup().await;

    // The login page lists the environment's cards and their roles.
    let authorize = browser
        .get(format!(
            "{}/int/oauth2/authorize?response_type=code&client_id={}&redirect_uri={CALLBACK}&state=s1",
            app.url, client.api_key
        ))
        .send()
        .await
        .unwrap();
    let login_url = location(&authorize);
    let page = browser.get(&login_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Ada Referrer") && html.contains("REFERRING_CLINICIAN"));
    assert!(html.contains(&format!("{ADA}:{ADA_GP_ROLE}")));

    // A wrong passcode keeps the user on the page.
    let wrong = submit_login(
        &browser,
        &login_url,
        &format!("{ADA}:{ADA_GP_ROLE}"),
        "9999",
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("passcode does not open")
    );

    let code = combined_code(&app, &client, &browser).await;
    let (status, tokens) = token_request(&app, "int", code_body(&client, &code)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["expires_in"], "599");
    assert_eq!(tokens["refresh_token_expires_in"], "43199");
    assert_eq!(tokens["refresh_count"], "0");
    let access = tokens["access_token"].as_str().unwrap();

    // The code is single use.
    let (status, again) = token_request(&app, "int", code_body(&client, &code)).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The user-restricted product answers; the application-restricted one does not take a
    // user's token.
    assert_eq!(
        read_patients(&app, "int/fhir/R4", access).await.status(),
        200
    );
    let (status, refused) = outcome(read_patients(&app, "int/fhir/STU3", access).await).await;
    assert_eq!((status, spine_code(&refused)), (401, "ACCESS_DENIED"));

    // The audit trail names the user and role as the requestor, and the application.
    let (_, admin_key) = app.apps.create("Ops", "admin", "X26").await.unwrap();
    let trail: Value = app
        .client
        .get(format!("{}/admin/audit/R4/AuditEvent?_count=10", app.url))
        .header("apikey", &admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event = &trail["entry"][0]["resource"];
    assert_eq!(
        event["agent"][1]["who"]["identifier"]["value"], "555000000001",
        "{trail}"
    );
    assert_eq!(event["agent"][1]["requestor"], true);
    assert_eq!(
        event["agent"][1]["role"][0]["coding"][0]["code"],
        ADA_GP_ROLE
    );
    assert_eq!(event["agent"][1]["location"]["display"], "ODS B82617");
    assert_eq!(event["agent"][0]["who"]["display"], "Referrals-INT");

    // Refreshing rotates the refresh token and counts.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let body = format!(
        "grant_type=refresh_token&refresh_token={refresh}&client_id={}&client_secret={}",
        client.api_key, client.secret
    );
    let (status, refreshed) = token_request(&app, "int", body.clone()).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["refresh_count"], "1");
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    let (status, reused) = token_request(&app, "int", body).await;
    assert_eq!(status, 400);
    assert_eq!(reused["error_description"], "refresh_token is invalid");

    // A wrong client secret is refused.
    let bad_secret = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={}&client_secret=nope",
        refreshed["refresh_token"].as_str().unwrap(),
        client.api_key
    );
    let (status, refused) = token_request(&app, "int", bad_secret).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Withdrawing the card stops its tokens at once.
    let fresh = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        read_patients(&app, "int/fhir/R4", fresh).await.status(),
        200
    );
    assert!(app.identity.revoke_card(ADA).await.unwrap());
    assert_eq!(
        read_patients(&app, "int/fhir/R4", fresh).await.status(),
        401
    );
}

#[tokio::test]
async fn authorize_refuses_unknown_clients_and_callbacks_and_reports_cancellation() {
    let (app, client, browser) = setup().await;
    let get = |query: String| {
        let browser = browser.clone();
        let url = format!("{}/int/oauth2/authorize?{query}", app.url);
        async move { browser.get(url).send().await.unwrap() }
    };
    let unknown = get(format!(
        "response_type=code&client_id=nobody&redirect_uri={CALLBACK}&state=s"
    ))
    .await;
    assert_eq!(unknown.status(), 401);
    let elsewhere = get(format!(
        "response_type=code&client_id={}&redirect_uri=https://evil.example/cb&state=s",
        client.api_key
    ))
    .await;
    assert_eq!(elsewhere.status(), 400);
    let body: Value = elsewhere.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uri is invalid")
    );
    let stateless = get(format!(
        "response_type=code&client_id={}&redirect_uri={CALLBACK}",
        client.api_key
    ))
    .await;
    assert_eq!(stateless.status(), 400);
    let token_type = get(format!(
        "response_type=token&client_id={}&redirect_uri={CALLBACK}&state=s",
        client.api_key
    ))
    .await;
    let back = location(&token_type);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("unsupported_response_type")
    );

    // Cancelling on the login page goes back to the application with access_denied.
    let login_url = location(
        &get(format!(
            "response_type=code&client_id={}&redirect_uri={CALLBACK}&state=keep",
            client.api_key
        ))
        .await,
    );
    let (action, query) = login_url.split_once('?').unwrap();
    let cancelled = browser
        .post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{query}&action=cancel"))
        .send()
        .await
        .unwrap();
    let callback = location(&cancelled);
    let back = location(&browser.get(&callback).send().await.unwrap());
    assert!(back.starts_with(CALLBACK));
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("keep"));

    // A callback with a made-up state is refused.
    let forged = browser
        .get(format!(
            "{}/int/oauth2/callback?code=x&state=made-up",
            app.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
}

/// The separate flow's first half: the application signs the user in at the provider itself.
async fn sign_in_at_provider(
    app: &TestApp,
    client: &Client,
    browser: &reqwest::Client,
    role: &str,
) -> String {
    let login_url = format!(
        "{}/int/cis2/authorize?response_type=code&client_id={}&redirect_uri={CALLBACK}&scope=openid&state=st&nonce=n1&acr_values=AAL2_OR_AAL3_ANY",
        app.url, client.api_key
    );
    assert_eq!(browser.get(&login_url).send().await.unwrap().status(), 200);
    let back = location(&submit_login(browser, &login_url, role, "1234").await);
    assert!(back.starts_with(CALLBACK));
    let code = query_param(&back, "code").unwrap();
    let response = app
        .client
        .post(format!("{}/int/cis2/token", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&code={code}&redirect_uri={CALLBACK}&client_id={}&client_secret={}",
            client.api_key, client.secret
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    // userinfo tells the application the user's roles.
    let info: Value = app
        .client
        .get(format!("{}/int/cis2/userinfo", app.url))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        info["nhsid_nrbac_roles"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    body["id_token"].as_str().unwrap().to_owned()
}

fn exchange_body(app: &TestApp, client: &Client, subject_token: &str) -> String {
    let assertion = keys::client_assertion(
        &client.key.private_pem,
        &client.key.kid,
        &client.api_key,
        &format!("{}/int/oauth2/token", app.url),
        240,
    )
    .unwrap();
    format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
         &subject_token={subject_token}\
         &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
         &client_assertion={assertion}"
    )
}

#[tokio::test]
async fn separate_flow_exchanges_an_id_token_signed_by_the_provider() {
    let (app, client, browser) = setup().await;
    let configuration: Value = app
        .client
        .get(format!(
            "{}/int/cis2/.well-known/openid-configuration",
            app.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(configuration["issuer"], format!("{}/int/cis2", app.url));
    let jwks: Value = app
        .client
        .get(configuration["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");

    let id_token =
        sign_in_at_provider(&app, &client, &browser, &format!("{ADA}:{ADA_GP_ROLE}")).await;
    let (status, tokens) =
        token_request(&app, "int", exchange_body(&app, &client, &id_token)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        tokens["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        read_patients(&app, "int/fhir/R4", access).await.status(),
        200
    );

    // A tampered ID token fails its signature.
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let (status, refused) =
        token_request(&app, "int", exchange_body(&app, &client, &parts.join("."))).await;
    assert_eq!(status, 401, "{refused}");

    // An AAL2 sign-in gets no scope for a product that asks for AAL3.
    let finn = sign_in_at_provider(&app, &client, &browser, &format!("{FINN}:{FINN_ROLE}")).await;
    let (status, refused) = token_request(&app, "int", exchange_body(&app, &client, &finn)).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("unauthorized_client"))
    );

    // ID tokens of another environment's provider are not accepted here.
    let dev_card = app
        .identity
        .issue_card(NewSmartcard {
            given_name: "Dana".into(),
            family_name: "Developer".into(),
            environment: "dev".into(),
            aal: 3,
            passcode: "4321".into(),
            roles: vec![RoleProfile {
                id: String::new(),
                role_code: "R8000".into(),
                role_name: "Clinical Practitioner Access Role".into(),
                organisation: "B82617".into(),
                business_functions: vec!["REFERRING_CLINICIAN".into()],
            }],
            ..NewSmartcard::default()
        })
        .await
        .unwrap();
    let foreign = app
        .identity
        .id_token(&dev_card, &dev_card.roles[0].id, &client.api_key, None)
        .await
        .unwrap();
    let (status, refused) =
        token_request(&app, "int", exchange_body(&app, &client, &foreign)).await;
    assert_eq!(status, 401, "{refused}");
}

#[tokio::test]
async fn application_tokens_do_not_open_user_restricted_products() {
    let (app, client, _) = setup().await;
    let assertion = keys::client_assertion(
        &client.key.private_pem,
        &client.key.kid,
        &client.api_key,
        &format!("{}/int/oauth2/token", app.url),
        240,
    )
    .unwrap();
    let (status, tokens) = token_request(
        &app,
        "int",
        format!(
            "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        read_patients(&app, "int/fhir/STU3", access).await.status(),
        200
    );
    let (status, refused) = outcome(read_patients(&app, "int/fhir/R4", access).await).await;
    assert_eq!(status, 401);
    assert!(
        refused["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("user-restricted"),
        "{refused}"
    );
}
