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
    // A version or a key no scenario holds is the official sandbox's SANDBOX_ERROR.
    let (status, _, unknown) =
        answer(get(&env, "/STU3/ReferralRequest/000000070001/_history/4", &[]).await).await;
    assert_eq!(
        (status, code(&unknown)),
        (422, "SANDBOX_ERROR"),
        "{unknown}"
    );
    assert_eq!(unknown["issue"][0]["code"], "invalid");

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
    // The official scenario for this focus has no actions; another version of the same
    // referral is answered from its state.
    assert_eq!(tasks["entry"].as_array().map(Vec::len), Some(0), "{tasks}");
    for (focus, expected) in [
        ("000000070001/_history/6", vec!["RECORD_REVIEW_OUTCOME"]),
        (
            "000000070006/_history/6",
            vec!["CANCEL_DIRECTLY_BOOKED_APPOINTMENT"],
        ),
        (
            "000000070000/_history/5",
            vec![
                "CHANGE_SHORTLIST",
                "CREATE_APPOINTMENT",
                "CHANGE_SHORTLIST_AND_SEND_FOR_TRIAGE",
                "CANCEL_REFERRAL",
            ],
        ),
    ] {
        let (status, _, tasks) = answer(
            get(
                &env,
                &format!("/STU3/Task?focus=ReferralRequest/{focus}&intent=proposal&status=ready"),
                &[],
            )
            .await,
        )
        .await;
        let codes: Vec<&str> = tasks["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["code"]["coding"][0]["code"].as_str().unwrap())
            .collect();
        assert_eq!((status, codes), (200, expected), "{focus}");
    }
    // A041's scenarios: which of a UBRN's records are found.
    for (ubrn, expected) in [
        ("000000070000", vec!["referral"]),
        ("000000070001", vec!["request"]),
        ("000000070002", vec!["request", "referral"]),
        ("000000070003", vec![]),
    ] {
        let (status, _, found) = answer(
            get(
                &env,
                &format!("/R4/ServiceRequest?identifier=https://fhir.nhs.uk/Id/UBRN|{ubrn}"),
                &[],
            )
            .await,
        )
        .await;
        let categories: Vec<&str> = found["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        e["resource"]["category"][0]["coding"][0]["code"]
                            .as_str()
                            .unwrap()
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!((status, categories), (200, expected), "{ubrn}: {found}");
    }
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
    sandbox_pdf_through_signed_url(&env, "c5d2d200-7612-4a1e-9f3b-000000080000").await;
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
        422
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

async fn post(
    env: &Env,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let mut request = env
        .client
        .post(format!("{}/sandbox/referrals/FHIR{path}", env.url))
        .header("content-type", "application/fhir+json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.send().await.unwrap()).await
}

/// What a supplier copies from the specification works as it does against the official
/// sandbox: versions are not checked, example dates do not age, no business function header
/// is needed, and keys no scenario holds are SANDBOX_ERROR.
#[tokio::test]
async fn the_specifications_requests_are_answered_as_the_official_sandbox_answers_them() {
    let env = sandbox().await;
    let rc = [("NHSD-eRS-Business-Function", "REFERRING_CLINICIAN")];
    let cancel = cancel_body("RAISED_IN_ERROR", None);
    let path = "/STU3/ReferralRequest/000000070000/$ers.cancelReferral";
    // The specification's If-Match example names version 4; the scenario is at 5.
    for if_match in [Some("W/\"4\""), None] {
        let mut headers = rc.to_vec();
        headers.extend(if_match.map(|v| ("if-match", v)));
        let (status, _, cancelled) = post(&env, path, &cancel, &headers).await;
        assert_eq!(status, 200, "{if_match:?} {cancelled}");
    }

    // A pathway start from the specification's era, more than a year ago.
    let body = create_body(
        PATIENT,
        shortlist(
            criteria("ROUTINE", "CARDIOLOGY", Some("HEART_FAILURE")),
            &["11002"],
        ),
        vec![json!({"name": "eReferralPathwayStart", "valueInstant": "2024-05-01T09:30:00.000Z"})],
    );
    let (status, _, created) = post(
        &env,
        "/STU3/ReferralRequest/$ers.createReferral",
        &body,
        &rc,
    )
    .await;
    assert_eq!(status, 201, "{created}");

    // An RCA refers for the referring clinician the specification's examples name.
    let rca = [("NHSD-eRS-Business-Function", "REFERRING_CLINICIAN_ADMIN")];
    let for_clinician = create_body(
        PATIENT,
        shortlist(
            criteria("ROUTINE", "CARDIOLOGY", Some("HEART_FAILURE")),
            &["11002"],
        ),
        vec![
            json!({"name": "referringClinician", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/sds-user-id", "value": "021600556514"}}),
        ],
    );
    let (status, _, created) = post(
        &env,
        "/STU3/ReferralRequest/$ers.createReferral",
        &for_clinician,
        &rca,
    )
    .await;
    assert_eq!(status, 201, "{created}");

    // Worklists: a provider's list without a business function header, and the A&G list.
    let list = |system: &str, code: &str| {
        json!({"resourceType": "Parameters", "parameter": [{"name": "listType",
            "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}]})
    };
    let (status, _, review) = post(
        &env,
        "/STU3/ReferralRequest/$ers.fetchworklist",
        &list(
            "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1",
            "REFERRALS_FOR_REVIEW",
        ),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{review}");
    assert!(!review["entry"].as_array().unwrap().is_empty(), "{review}");
    // The specification's schema requires the display of requestContextStatus.
    let context = review["entry"][0]["extension"][0]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == "requestContextStatus")
        .expect("requestContextStatus");
    assert!(
        context["valueCodeableConcept"]["coding"][0]["display"].is_string(),
        "{context}"
    );
    let (status, _, advice) = post(
        &env,
        "/STU3/CommunicationRequest/$ers.fetchworklist",
        &list(
            "https://fhir.nhs.uk/STU3/CodeSystem/eRS-CommunicationListSelector-1",
            "ADVICE_AND_GUIDANCE_REQUESTS",
        ),
        &[("NHSD-eRS-Business-Function", "SERVICE_PROVIDER_CLINICIAN")],
    )
    .await;
    assert_eq!(status, 200, "{advice}");
    assert!(!advice["entry"].as_array().unwrap().is_empty(), "{advice}");

    // Slots without the commissioning organisation, which the official sandbox ignores.
    let (status, _, slots) = answer(
        get(
            &env,
            "/STU3/Slot?schedule.actor:HealthcareService=12000&appointmentType=ROUTINE&status=free&_count=20&page=1",
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{slots}");

    // A034 with the referrer's reasons of APPOINTMENT-CANCELLATION-REASON.
    let (_, _, booked) = answer(get(&env, "/STU3/Appointment/70000", &[]).await).await;
    let cancel = |reason: &str, comment: Option<&str>| {
        let mut body = booked.clone();
        body["status"] = json!("cancelled");
        body["reason"] = json!([{"coding": [{"system": "_baseUrl_/STU3/CodeSystem/APPOINTMENT-CANCELLATION-REASON", "code": reason}]}]);
        if let Some(comment) = comment {
            body["comment"] = json!(comment);
        }
        env.client
            .put(format!(
                "{}/sandbox/referrals/FHIR/STU3/Appointment/70000",
                env.url
            ))
            .header("content-type", "application/fhir+json")
            .header("NHSD-eRS-Business-Function", "REFERRING_CLINICIAN")
            .body(body.to_string())
            .send()
    };
    for (reason, comment, expected) in [
        (
            "PATIENT_APPOINTMENT_CANCELLATION_OTHER",
            None,
            (422, "MISSING_VALUE"),
        ),
        (
            "OTHER",
            Some("a provider's reason"),
            (422, "INAPPROPRIATE_VALUE"),
        ),
        ("WRONG_PROVIDER", None, (422, "INAPPROPRIATE_VALUE")),
    ] {
        let (status, _, refused) = answer(cancel(reason, comment).await.unwrap()).await;
        assert_eq!((status, code(&refused)), expected, "{reason}: {refused}");
    }
    let (status, _, cancelled) = answer(
        cancel(
            "PATIENT_APPOINTMENT_CANCELLATION_OTHER",
            Some("Moving away"),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );

    // Keys no scenario holds.
    let (status, _, unknown) = answer(
        get(
            &env,
            "/STU3/Communication?based-on=CommunicationRequest/000000079999/_history/1",
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code(&unknown)),
        (400, "SANDBOX_ERROR"),
        "{unknown}"
    );
    let (status, _, unknown) =
        answer(get(&env, "/R4/ServiceRequest?identifier=000000079999", &[]).await).await;
    assert_eq!(
        (status, code(&unknown)),
        (400, "SANDBOX_ERROR"),
        "{unknown}"
    );
    let (status, _, unknown) = answer(get(&env, "/STU3/Appointment/79999", &[]).await).await;
    assert_eq!(
        (status, code(&unknown)),
        (422, "SANDBOX_ERROR"),
        "{unknown}"
    );
    for search in [
        "/STU3/Task?focus=ReferralRequest/000000079999/_history/6&intent=proposal&status=ready",
        "/STU3/Slot?schedule.actor:HealthcareService=79999&appointmentType=ROUTINE&status=free&_count=5&page=1",
    ] {
        let (status, _, unknown) = answer(get(&env, search, &[]).await).await;
        assert_eq!(
            (status, code(&unknown)),
            (400, "SANDBOX_ERROR"),
            "{search}: {unknown}"
        );
    }
    // An unknown code system stays 404, as the official sandbox answers it.
    assert_eq!(
        get(&env, "/STU3/CodeSystem/NO-SUCH", &[]).await.status(),
        404
    );
}

/// The on-behalf-of header is checked only against a business function that was sent, on every
/// endpoint; A030 checks nothing, and A040 needs the SPCA to say who they are.
#[tokio::test]
async fn on_behalf_of_is_checked_as_the_official_sandbox_checks_it() {
    let env = sandbox().await;
    let obo_only = get(
        &env,
        "/STU3/ReferralRequest/000000070000",
        &[("NHSD-eRS-On-Behalf-Of-User-ID", "555000000003")],
    )
    .await;
    assert_eq!(obo_only.status(), 200);
    let (status, _, spca) = post(
        &env,
        "/STU3/ReferralRequest/000000070001/$ers.cancelReferral",
        &cancel_body("RAISED_IN_ERROR", None),
        &[(
            "NHSD-eRS-Business-Function",
            "SERVICE_PROVIDER_CLINICIAN_ADMIN",
        )],
    )
    .await;
    assert_eq!(status, 403, "{spca}");
    let roles = get(
        &env,
        "/R4/PractitionerRole",
        &[("NHSD-eRS-Business-Function", "NOT_A_FUNCTION")],
    )
    .await;
    assert_eq!(roles.status(), 200);
    let practitioners = get(&env, "/R4/Practitioner?_query=onBehalfOf", &[]).await;
    assert_eq!(practitioners.status(), 403);
    let practitioners = get(
        &env,
        "/R4/Practitioner?_query=onBehalfOf",
        &[(
            "NHSD-eRS-Business-Function",
            "SERVICE_PROVIDER_CLINICIAN_ADMIN",
        )],
    )
    .await;
    assert_eq!(practitioners.status(), 200);
}

/// Browsers may call the sandbox from any origin, as the official sandbox allows; `int` is not
/// opened to them.
#[tokio::test]
async fn browsers_may_call_the_sandbox_from_any_origin() {
    let env = sandbox().await;
    let url = format!(
        "{}/sandbox/referrals/FHIR/STU3/ReferralRequest/000000070001",
        env.url
    );
    let preflight = env
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://supplier.example")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "nhsd-ers-business-function, x-request-id",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let read = env
        .client
        .get(&url)
        .header("origin", "https://supplier.example")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["access-control-allow-origin"], "*");
    assert_eq!(read.headers()["access-control-expose-headers"], "*");
    let int = env
        .client
        .get(format!(
            "{}/int/referrals/FHIR/STU3/ReferralRequest/000000070001",
            env.url
        ))
        .header("origin", "https://supplier.example")
        .send()
        .await
        .unwrap();
    assert!(int.headers().get("access-control-allow-origin").is_none());
}

/// A015's paging scenarios: `11000` offers twelve slots, so pages of five end at page 3 and
/// page 5 is refused; `13000` shows both its schedules on the first page, at any hour.
#[tokio::test]
async fn slot_searches_page_as_the_official_scenarios_do() {
    let env = sandbox().await;
    let slots = |service: &str, page: usize| {
        let env = &env;
        let path = format!(
            "/STU3/Slot?schedule.actor:HealthcareService={service}&appointmentType=ROUTINE&status=free&_count=5&page={page}"
        );
        async move { answer(get(env, &path, &[]).await).await }
    };
    let mut seen = 0;
    for page in 1..=3 {
        let (status, _, bundle) = slots("11000", page).await;
        assert_eq!(status, 200, "{bundle}");
        seen += bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "Slot")
            .count();
    }
    assert_eq!(seen, 12);
    let (status, _, refused) = slots("11000", 5).await;
    assert_eq!(
        (status, code(&refused)),
        (400, "INVALID_VALUE"),
        "{refused}"
    );
    let (status, _, first) = slots("13000", 1).await;
    assert_eq!(status, 200, "{first}");
    let schedules = first["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Schedule")
        .count();
    assert_eq!(schedules, 2, "{first}");
}
