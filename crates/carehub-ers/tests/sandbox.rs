//! The e-RS sandbox: open, stateless, answering over the official scenario keys with carehub's
//! own data, refusing business functions as the official sandbox does.

mod common;

use common::*;
use serde_json::{Value, json};

async fn sandbox() -> Env {
    let env = spawn().await;
    let repo = carehub_ers::repo::Repo::new(env.store.clone(), "ers-sandbox").with_clock(env.clock);
    let now = env.clock.now_micros();
    assert!(carehub_ers::seed::seed_sandbox(&repo, now).await.unwrap());
    carehub_gateway::identity::seed(&env.identity, "sandbox")
        .await
        .unwrap();
    env
}

async fn get(env: &Env, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = env
        .client
        .get(format!("{}/sandbox/referrals/FHIR{path}", env.url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn scenario_keys_answer_without_credentials() {
    let env = sandbox().await;
    let response = get(&env, "/STU3/ReferralRequest/000000070001", &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"5\"");
    let (_, _, booked) = answer(response).await;
    assert_eq!(state(&booked), "BOOKED");
    assert_eq!(
        get(&env, "/STU3/ReferralRequest/000000070001/_history/5", &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&env, "/STU3/ReferralRequest/000000070001/_history/4", &[])
            .await
            .status(),
        404
    );

    let (status, _, deferred) =
        answer(get(&env, "/STU3/ReferralRequest/000000070003", &[]).await).await;
    assert_eq!((status, state(&deferred)), (200, "DEFERRED_TO_PROVIDER"));
    let (status, _, appointment) = answer(get(&env, "/STU3/Appointment/70006", &[]).await).await;
    assert_eq!(
        (status, appointment["status"].as_str()),
        (200, Some("cancelled"))
    );
    let (status, _, tasks) = answer(
        get(
            &env,
            "/STU3/Task?focus=ReferralRequest/000000070000/_history/6&intent=proposal&status=ready",
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{tasks}");
    assert!(!tasks["entry"].as_array().unwrap().is_empty());
    let (status, _, advice) =
        answer(get(&env, "/STU3/CommunicationRequest/000000070002", &[]).await).await;
    assert_eq!(status, 200, "{advice}");
    let (status, _, conversation) = answer(
        get(
            &env,
            "/STU3/Communication?based-on=CommunicationRequest/000000070002/_history/1",
            &[],
        )
        .await,
    )
    .await;
    assert_eq!((status, conversation["total"].as_u64()), (200, Some(3)));
    let (status, _, service) = answer(get(&env, "/R4/HealthcareService/1", &[]).await).await;
    assert_eq!(
        (status, service["name"].as_str()),
        (200, Some("Direct Service With Minimal"))
    );
    let (status, _, roles) = answer(get(&env, "/R4/PractitionerRole", &[]).await).await;
    assert_eq!((status, roles["total"].as_u64()), (200, Some(2)));

    // The referral letter of the scenarios downloads through a signed URL.
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{}/sandbox/referrals/FHIR/R4/Binary/c5d2d200-7612-4a1e-9f3b-000000080000",
            env.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 307);
    let file = env
        .client
        .get(redirect.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    assert!(file.bytes().await.unwrap().starts_with(b"%PDF"));
}

#[tokio::test]
async fn business_functions_are_refused_as_the_official_sandbox_refuses_them() {
    let env = sandbox().await;
    let refused = get(
        &env,
        "/STU3/ReferralRequest/000000070000",
        &[("NHSD-eRS-Business-Function", "SERVICE_PROVIDER_ADMIN")],
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["content-type"], "text/plain");
    let text = refused.text().await.unwrap();
    assert!(text.starts_with("SANDBOX_ERROR: This endpoint cannot be accessed using the e-RS Business Function provided. Allowed values: REFERRING_CLINICIAN"), "{text}");
    let spca = get(
        &env,
        "/STU3/ReferralRequest/000000070000",
        &[(
            "NHSD-eRS-Business-Function",
            "SERVICE_PROVIDER_CLINICIAN_ADMIN",
        )],
    )
    .await;
    assert_eq!(spca.status(), 403);
    assert!(
        spca.text()
            .await
            .unwrap()
            .contains("On-Behalf-Of User ID must be provided")
    );
    let with_obo = get(
        &env,
        "/STU3/ReferralRequest/000000070000",
        &[
            ("NHSD-eRS-Business-Function", "REFERRING_CLINICIAN"),
            ("NHSD-eRS-On-Behalf-Of-User-ID", "555000000003"),
        ],
    )
    .await;
    assert_eq!(with_obo.status(), 403);
}

#[tokio::test]
async fn writes_are_worked_out_by_the_rules_and_kept_nowhere() {
    let env = sandbox().await;
    let body = create_body(
        PATIENT,
        shortlist(
            criteria("ROUTINE", "CARDIOLOGY", Some("HEART_FAILURE")),
            &["11002"],
        ),
        vec![],
    );
    let post = |path: &str, body: &Value, if_match: Option<&str>| {
        let mut request = env
            .client
            .post(format!("{}/sandbox/referrals/FHIR{path}", env.url))
            .header("content-type", "application/fhir+json")
            .header("NHSD-eRS-Business-Function", "REFERRING_CLINICIAN")
            .body(body.to_string());
        if let Some(version) = if_match {
            request = request.header("if-match", version);
        }
        request.send()
    };
    let (status, _, created) = answer(
        post("/STU3/ReferralRequest/$ers.createReferral", &body, None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let ubrn = created["id"].as_str().unwrap().to_owned();
    // Nothing was kept: the same request gets the same new UBRN, which cannot be read.
    let (_, _, again) = answer(
        post("/STU3/ReferralRequest/$ers.createReferral", &body, None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again["id"], ubrn.as_str());
    assert_eq!(
        get(&env, &format!("/STU3/ReferralRequest/{ubrn}"), &[])
            .await
            .status(),
        404
    );
    // A scenario referral is cancelled in the answer, and still not cancelled afterwards.
    let cancel = cancel_body("RAISED_IN_ERROR", None);
    let (status, _, cancelled) = answer(
        post(
            "/STU3/ReferralRequest/000000070000/$ers.cancelReferral",
            &cancel,
            Some("W/\"5\""),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(
        state(&cancelled["parameter"][0]["resource"]),
        "CANCELLED_REFERRAL"
    );
    let (_, _, unchanged) =
        answer(get(&env, "/STU3/ReferralRequest/000000070000", &[]).await).await;
    assert_eq!(state(&unchanged), "NOT_BOOKED");
    // And the rules still hold.
    let (status, _, refused) = answer(
        post(
            "/STU3/ReferralRequest/$ers.createReferral",
            &json!({"resourceType": "Parameters", "parameter": []}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, code(&refused)), (422, "MISSING_VALUE"));
}
