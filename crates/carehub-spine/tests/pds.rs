//! The PDS FHIR API through the gateway, with real application- and user-restricted tokens.

use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gateway::identity::{self, Identity};
use carehub_gateway::keys;
use carehub_gateway::testing::Served;
use carehub_spine::pds::PdsPatient;
use carehub_spine::pds::repo::PdsRepo;
use serde_json::Value;

struct Env {
    url: String,
    client: reqwest::Client,
    apps: Apps,
    identity: Identity,
    repo: PdsRepo,
    _served: Served,
}

async fn spawn() -> Env {
    let products = carehub_gateway::Products::new()
        .with(carehub_spine::PDS_SERVICE, carehub_spine::pds_product());
    let served =
        carehub_gateway::testing::serve(PlatformConfig::default(), &products, true, true).await;
    let (url, store) = (served.url.clone(), served.store.clone());
    let identity = Identity::new(store.clone(), &url);
    identity::seed(&identity, "int")
        .await
        .expect("cards seeded");
    let repo = PdsRepo::new(store.clone(), "pds-int");
    repo.put_all(carehub_spine::pds::seed::named())
        .await
        .expect("PDS seeded");
    Env {
        url,
        client: reqwest::Client::new(),
        apps: Apps::new(store),
        identity,
        repo,
        _served: served,
    }
}

/// Ada, a referring clinician at B82617, one of the seeded smartcards.
const ADA: &str = "5e1c0000-0000-4000-8000-000000000001";
const ADA_ROLE: &str = "555100000011";

impl Env {
    /// A registered application, its API key and signing key.
    async fn app(&self) -> (String, keys::SigningKey) {
        let (app, api_key) = self
            .apps
            .create("Demographics-INT", "int", "B82617")
            .await
            .expect("app");
        let key = keys::generate_for_tests("pds-test").expect("key");
        self.apps
            .add_public_key(&app.id, key.public_jwk.clone())
            .await
            .expect("key registered");
        (api_key, key)
    }

    async fn token(&self, form: String) -> String {
        let response = self
            .client
            .post(format!("{}/int/oauth2/token", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("token call");
        let body: Value = response.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    fn assertion(&self, api_key: &str, key: &keys::SigningKey) -> String {
        keys::client_assertion(
            &key.private_pem,
            &key.kid,
            api_key,
            &format!("{}/int/oauth2/token", self.url),
            240,
        )
        .expect("assertion")
    }

    async fn app_token(&self) -> String {
        let (api_key, key) = self.app().await;
        let assertion = self.assertion(&api_key, &key);
        self.token(format!(
            "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
        ))
        .await
    }

    async fn user_token(&self) -> String {
        let (api_key, key) = self.app().await;
        let card = self
            .identity
            .card(ADA)
            .await
            .expect("card read")
            .expect("card");
        let id_token = self
            .identity
            .id_token(&card, ADA_ROLE, &api_key, None)
            .await
            .expect("id token");
        let assertion = self.assertion(&api_key, &key);
        self.token(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
             &subject_token={id_token}\
             &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
             &client_assertion={assertion}"
        ))
        .await
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Option<String>, Value) {
        let response = self
            .client
            .get(format!(
                "{}/int/personal-demographics/FHIR/R4{path}",
                self.url
            ))
            .bearer_auth(token)
            .header("X-Request-ID", "60e0b220-8136-4b4e-9e0b-6a6f3c9f4b1e")
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, etag, response.json().await.unwrap_or(Value::Null))
    }
}

fn code(outcome: &Value) -> &str {
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn a_read_gives_the_record_with_its_version() {
    let env = spawn().await;
    let token = env.app_token().await;
    let (status, etag, patient) = env.get(&token, "/Patient/9690937286").await;
    assert_eq!(status, 200, "{patient}");
    assert_eq!(etag.as_deref(), Some("W/\"1\""));
    assert_eq!(patient["id"], "9690937286");
    assert_eq!(patient["meta"]["security"][0]["code"], "U");
    assert_eq!(patient["name"][0]["family"], "Okafor");
    assert_eq!(
        patient["generalPractitioner"][0]["identifier"]["value"],
        "B82617"
    );
    assert!(patient["address"][0]["postalCode"].is_string());

    // Restricted: whereabouts withheld.
    let (_, _, restricted) = env.get(&token, "/Patient/9690938533").await;
    assert_eq!(restricted["meta"]["security"][0]["code"], "R");
    for withheld in ["address", "telecom", "generalPractitioner"] {
        assert!(restricted.get(withheld).is_none(), "{withheld}");
    }
    // Superseded: the record it was merged into.
    let (status, _, merged) = env.get(&token, "/Patient/9690938622").await;
    assert_eq!((status, merged["id"].as_str()), (200, Some("9690938614")));
    // Deceased: the date and the notification status.
    let (_, _, deceased) = env.get(&token, "/Patient/9690938681").await;
    assert!(deceased["deceasedDateTime"].is_string());

    let (status, _, missing) = env.get(&token, "/Patient/9999999999").await;
    assert_eq!((status, code(&missing)), (404, "RESOURCE_NOT_FOUND"));
    let (status, _, invalid) = env.get(&token, "/Patient/9000000000").await;
    assert_eq!((status, code(&invalid)), (400, "INVALID_RESOURCE_ID"));

    let response = env
        .client
        .get(format!(
            "{}/int/personal-demographics/FHIR/R4/Patient/9690937286",
            env.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    let outcome: Value = response.json().await.expect("json");
    assert_eq!(code(&outcome), "MISSING_VALUE");
}

#[tokio::test]
async fn a_search_finds_by_name_and_birth_date_with_scores() {
    let env = spawn().await;
    let token = env.user_token().await;
    let (status, _, bundle) = env
        .get(&token, "/Patient?family=okafor&birthdate=eq1968-03-14")
        .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["total"], 1);
    assert_eq!(bundle["entry"][0]["search"]["score"], 1.0);
    assert_eq!(bundle["entry"][0]["resource"]["id"], "9690937286");

    let (_, _, wild) = env
        .get(
            &token,
            "/Patient?family=Oka%2A&birthdate=ge1968-01-01&birthdate=le1968-12-31",
        )
        .await;
    let score = wild["entry"][0]["search"]["score"].as_f64().unwrap_or(0.0);
    assert!(score > 0.0 && score < 1.0, "{wild}");

    let (_, _, none) = env
        .get(&token, "/Patient?family=Okafor&birthdate=1968-03-15")
        .await;
    assert_eq!(none["total"], 0);

    // The merged record is found under its surviving number only.
    let (_, _, doyle) = env
        .get(&token, "/Patient?family=Doyle&birthdate=1958-08-19")
        .await;
    assert_eq!(doyle["total"], 1);
    assert_eq!(doyle["entry"][0]["resource"]["id"], "9690938614");

    // Fuzzy: a family name that sounds alike.
    let (_, _, fuzzy) = env
        .get(
            &token,
            "/Patient?family=Okafur&given=Beatrice&birthdate=1968-03-14&_fuzzy-match=true",
        )
        .await;
    assert_eq!(fuzzy["total"], 1, "{fuzzy}");

    for (path, status, expected) in [
        ("/Patient", 400, "UNSUPPORTED_SERVICE"),
        (
            "/Patient?surname=Okafor&birthdate=1968-03-14",
            400,
            "ADDITIONAL_PROPERTIES",
        ),
        ("/Patient?family=Okafor", 400, "MISSING_VALUE"),
        (
            "/Patient?given=Beatrice&birthdate=1968-03-14",
            400,
            "INVALID_SEARCH_DATA",
        ),
        (
            "/Patient?family=Okafor&birthdate=14-03-1968",
            400,
            "INVALID_VALUE",
        ),
    ] {
        let (got, _, outcome) = env.get(&token, path).await;
        assert_eq!((got, code(&outcome)), (status, expected), "{path}");
    }
}

#[tokio::test]
async fn an_application_gets_one_unique_match_at_most() {
    let env = spawn().await;
    let twin = |number: &str| PdsPatient {
        nhs_number: number.into(),
        prefix: None,
        given: vec!["Alex".into()],
        family: "Twinning".into(),
        gender: "unknown".into(),
        birth_date: "2001-02-03".into(),
        deceased: None,
        address_lines: vec!["1 Road".into(), "Leeds".into()],
        postcode: Some("LS1 1AA".into()),
        telephone: None,
        gp_practice: None,
        restricted: false,
        verified: true,
        superseded_by: None,
    };
    env.repo
        .put_all(vec![twin("9990000018"), twin("9990000026")])
        .await
        .expect("twins");
    let token = env.app_token().await;
    let (status, _, outcome) = env
        .get(&token, "/Patient?family=Twinning&birthdate=2001-02-03")
        .await;
    assert_eq!(
        (status, code(&outcome)),
        (200, "TOO_MANY_MATCHES"),
        "{outcome}"
    );
    assert_eq!(outcome["issue"][0]["severity"], "information");
    let (status, _, outcome) = env
        .get(
            &token,
            "/Patient?family=Twinning&birthdate=2001-02-03&_max-results=2",
        )
        .await;
    assert_eq!((status, code(&outcome)), (403, "INVALID_VALUE"));
    let user = env.user_token().await;
    let (_, _, both) = env
        .get(&user, "/Patient?family=Twinning&birthdate=2001-02-03")
        .await;
    assert_eq!(both["total"], 2);
}
