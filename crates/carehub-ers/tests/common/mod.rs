//! `spawn`: carehub's default platform on 127.0.0.1:0 over a fresh database, with e-RS mounted,
//! the virtual smartcards and the services directory seeded in `int`, and a registered
//! application (API key, signing key, ASID) to get real tokens with.

#![allow(dead_code, unreachable_pub)]

use carehub_ers::clock::Clock;
use carehub_gateway::apps::Apps;
use carehub_gateway::config::PlatformConfig;
use carehub_gateway::identity::{self, Identity};
use carehub_gateway::keys;
use carehub_gateway::testing::Served;
use carehub_store::Store;
use serde_json::Value;

/// Ada Referrer: a Referring Clinician at the GP practice B82617 (and an SPC at R1A14).
pub const ADA: &str = "5e1c0000-0000-4000-8000-000000000001";
pub const ADA_GP_ROLE: &str = "555100000011";
pub const ADA_SDS: &str = "555000000001";
/// Bryn Practice-Admin: a Referring Clinician Admin at B82617.
pub const BRYN: &str = "5e1c0000-0000-4000-8000-000000000002";
pub const BRYN_ROLE: &str = "555100000021";
/// Cara Consultant: a Service Provider Clinician at R1A14.
pub const CARA: &str = "5e1c0000-0000-4000-8000-000000000003";
pub const CARA_ROLE: &str = "555100000031";
pub const CARA_SDS: &str = "555000000003";
/// Esme Triage-Admin: a Service Provider Clinician Admin at R1A14.
pub const ESME: &str = "5e1c0000-0000-4000-8000-000000000005";
pub const ESME_ROLE: &str = "555100000051";

pub const GP: &str = "B82617";
pub const TRUST: &str = "R1A14";
/// A patient in the NHS number test range.
pub const PATIENT: &str = "9912003888";

pub struct Env {
    pub url: String,
    /// The time e-RS reads: the next Monday 07:00 UTC when the test started, an hour before
    /// the first clinic, so the free slots are the same whenever a test runs.
    pub clock: Clock,
    pub client: reqwest::Client,
    pub apps: Apps,
    pub identity: Identity,
    pub store: Store,
    pub app_id: String,
    pub api_key: String,
    pub key: keys::SigningKey,
    _served: Served,
}

pub async fn spawn() -> Env {
    let clock = Clock::starting_at(Clock::next_monday_at(7));
    let products = carehub_gateway::Products::new()
        .with(carehub_ers::SERVICE, carehub_ers::product_with_clock(clock));
    // The NHS limits (a spike arrest of 720 a minute) would throttle a test's rapid calls.
    let served =
        carehub_gateway::testing::serve(PlatformConfig::default(), &products, true, true).await;
    let (url, store) = (served.url.clone(), served.store.clone());
    let identity = Identity::new(store.clone(), &url);
    identity::seed(&identity, "int")
        .await
        .expect("cards seeded");
    // Patients are traced on PDS before they are referred.
    let pds = carehub_spine::pds::repo::PdsRepo::new(store.clone(), "pds-int");
    carehub_spine::pds::seed::seed(&pds)
        .await
        .expect("PDS seeded");
    let repo = carehub_ers::repo::Repo::new(store.clone(), "ers-int").with_clock(clock);
    carehub_ers::seed::seed(&repo)
        .await
        .expect("directory seeded");
    let apps = Apps::new(store.clone());
    let (app, api_key) = apps
        .create("Referrals-INT", "int", GP)
        .await
        .expect("app registered");
    let key = keys::generate_for_tests("ers-test").expect("key");
    apps.add_public_key(&app.id, key.public_jwk.clone())
        .await
        .expect("key registered");
    apps.set_asid(&app.id, "200000001234").await.expect("asid");
    Env {
        url,
        clock,
        client: reqwest::Client::new(),
        apps,
        identity,
        store,
        app_id: app.id,
        api_key,
        key,
        _served: served,
    }
}

impl Env {
    /// Another node of the same platform over the same database, with a store (and so a
    /// writer) of its own, as a second process of a cluster would have: its base URL.
    pub async fn another_node(&self) -> String {
        let store = Store::open(&self._served.database().config)
            .await
            .expect("second store opens");
        let mut platform = PlatformConfig::default();
        for product in &mut platform.products {
            product.ratelimiting = Default::default();
        }
        let products = carehub_gateway::Products::new().with(
            carehub_ers::SERVICE,
            carehub_ers::product_with_clock(self.clock),
        );
        carehub_gateway::testing::node(
            &platform,
            store,
            std::sync::Arc::new(carehub_gateway::limits::LocalLimiter::default()),
            &products,
        )
        .await
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

    async fn token(&self, form: String) -> String {
        let response = self
            .client
            .post(format!("{}/int/oauth2/token", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("token call");
        let status = response.status();
        let body: Value = response.json().await.expect("token json");
        assert_eq!(status, 200, "{body}");
        body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    /// A user's access token, by the separate flow: an ID token from carehub's CIS2-style
    /// provider for the card and role, exchanged at the token endpoint.
    pub async fn user_token(&self, card: &str, role: &str) -> String {
        let card = self
            .identity
            .card(card)
            .await
            .expect("card read")
            .expect("card exists");
        let id_token = self
            .identity
            .id_token(&card, role, &self.api_key, None)
            .await
            .expect("id token");
        let assertion = self.assertion(&self.api_key, &self.key);
        self.token(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
             &subject_token={id_token}\
             &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
             &client_assertion={assertion}"
        ))
        .await
    }

    /// An application-restricted access token of an application of `organisation`.
    pub async fn app_token(&self, organisation: &str, asid: Option<&str>) -> String {
        let (app, api_key) = self
            .apps
            .create(&format!("Provider-App-{organisation}"), "int", organisation)
            .await
            .expect("app");
        let key = keys::generate_for_tests("provider-app").expect("key");
        self.apps
            .add_public_key(&app.id, key.public_jwk.clone())
            .await
            .expect("key registered");
        if let Some(asid) = asid {
            self.apps.set_asid(&app.id, asid).await.expect("asid");
        }
        let assertion = self.assertion(&api_key, &key);
        self.token(format!(
            "grant_type=client_credentials\
             &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
             &client_assertion={assertion}"
        ))
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/int/referrals/FHIR{path}", self.url)
    }
}

/// A caller: a token and, for users, the e-RS context headers.
#[derive(Clone)]
pub struct As {
    pub token: String,
    pub ods: Option<&'static str>,
    pub function: Option<&'static str>,
    pub on_behalf_of: Option<&'static str>,
}

impl As {
    pub fn user(token: &str, ods: &'static str, function: &'static str) -> As {
        As {
            token: token.to_owned(),
            ods: Some(ods),
            function: Some(function),
            on_behalf_of: None,
        }
    }

    pub fn app(token: &str) -> As {
        As {
            token: token.to_owned(),
            ods: None,
            function: None,
            on_behalf_of: None,
        }
    }

    pub fn apply(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request = request.bearer_auth(&self.token);
        if let Some(ods) = self.ods {
            request = request.header("NHSD-End-User-Organisation-ODS", ods);
        }
        if let Some(function) = self.function {
            request = request.header("NHSD-eRS-Business-Function", function);
        }
        if let Some(obo) = self.on_behalf_of {
            request = request.header("NHSD-eRS-On-Behalf-Of-User-ID", obo);
        }
        request
    }
}

/// Status, ETag and JSON body of a response.
pub async fn answer(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, etag, body)
}

impl Env {
    pub async fn get(&self, who: &As, path: &str) -> (u16, Option<String>, Value) {
        answer(
            who.apply(self.client.get(self.url(path)))
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn post(
        &self,
        who: &As,
        path: &str,
        if_match: Option<&str>,
        body: &Value,
    ) -> (u16, Option<String>, Value) {
        let mut request = who
            .apply(self.client.post(self.url(path)))
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        if let Some(version) = if_match {
            request = request.header("if-match", version);
        }
        answer(request.send().await.expect("POST")).await
    }
}

/// The e-RS error code of an OperationOutcome.
pub fn code(outcome: &Value) -> &str {
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

/// The referral state code of an eRS-ReferralRequest-1.
pub fn state(referral: &Value) -> &str {
    referral["extension"]
        .as_array()
        .and_then(|exts| {
            exts.iter().find(|e| {
                e["url"]
                    == "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ReferralState-1"
            })
        })
        .and_then(|e| e["extension"][0]["valueCoding"]["code"].as_str())
        .unwrap_or_default()
}

/// Search criteria for a shortlist or a search.
pub fn criteria(priority: &str, specialty: &str, clinic_type: Option<&str>) -> Value {
    let mut parameter = vec![
        serde_json::json!({"name": "priority", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "code": priority}}),
        serde_json::json!({"name": "specialty", "valueCoding": {"system": "_baseUrl_/STU3/CodeSystem/SPECIALTY", "code": specialty}}),
    ];
    if let Some(clinic_type) = clinic_type {
        parameter.push(serde_json::json!({"name": "clinicType", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ClinicType-1", "code": clinic_type}}));
    }
    parameter.push(serde_json::json!({"name": "ageAndGenderAppropriate", "valueBoolean": false}));
    serde_json::json!({
        "resourceType": "Parameters",
        "id": "criteria",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ServiceSearchCriteria-Parameters-1"]},
        "parameter": parameter,
    })
}

/// An eRS-Shortlist-List-1 of `services` chosen by `criteria`.
pub fn shortlist(criteria: Value, services: &[&str]) -> Value {
    serde_json::json!({
        "resourceType": "List",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-Shortlist-List-1"]},
        "status": "current",
        "mode": "snapshot",
        "contained": [criteria],
        "extension": [{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Shortlist-SearchCriteria-1",
                       "valueReference": {"reference": "#criteria"}}],
        "entry": services.iter().map(|s| serde_json::json!({"item": {"identifier": {"system": "http://fhir.nhs.net/Id/ers-service", "value": s}}})).collect::<Vec<_>>(),
    })
}

/// An eRS-CreateReferral-Parameters-1.
pub fn create_body(patient: &str, shortlist: Value, extra: Vec<Value>) -> Value {
    let mut parameter = vec![
        serde_json::json!({"name": "patient", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": patient}}),
        serde_json::json!({"name": "intentionToAddReferralLetter", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralLetterIntention-1", "code": "NEED_TO_ADD_LATER"}}),
        serde_json::json!({"name": "firstReminderLetterFollowUpDays", "valueUnsignedInt": 0}),
        serde_json::json!({"name": "shortlist", "resource": shortlist}),
    ];
    parameter.extend(extra);
    serde_json::json!({
        "resourceType": "Parameters",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-CreateReferral-Parameters-1"]},
        "parameter": parameter,
    })
}

/// An eRS-CancelReferral-Request-Parameters-1.
pub fn cancel_body(reason: &str, comment: Option<&str>) -> Value {
    let mut parameter = vec![
        serde_json::json!({"name": "cancellationReason", "valueCoding": {
        "system": "_baseUrl_/STU3/CodeSystem/REFERRAL-CANCELLATION-REASON", "code": reason}}),
    ];
    if let Some(comment) = comment {
        parameter.push(serde_json::json!({"name": "cancellationComments", "valueString": comment}));
    }
    serde_json::json!({"resourceType": "Parameters", "parameter": parameter})
}

/// A042 in the sandbox, without credentials: the 307 to a signed URL, then the file behind it,
/// which must be a PDF; returns its bytes.
pub async fn sandbox_pdf_through_signed_url(env: &Env, id: &str) -> Vec<u8> {
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/sandbox/referrals/FHIR/R4/Binary/{id}", env.url))
        .send()
        .await
        .expect("A042");
    assert_eq!(redirect.status(), 307, "{id}");
    let file = env
        .client
        .get(redirect.headers()["location"].to_str().expect("location"))
        .send()
        .await
        .expect("signed URL");
    assert_eq!(file.status(), 200, "{id}");
    let bytes = file.bytes().await.expect("body").to_vec();
    assert!(bytes.starts_with(b"%PDF"), "{id}");
    bytes
}
