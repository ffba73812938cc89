//! e-RS in the integration environment, end to end through the gateway with real tokens:
//! service search, creating a referral, reading it, the actions it allows, changing its
//! shortlist and cancelling it; the request-context rules; reference data and the R4 services.

mod common;

use common::*;
use serde_json::{Value, json};

async fn ada(env: &Env) -> As {
    As::user(
        &env.user_token(ADA, ADA_GP_ROLE).await,
        GP,
        "REFERRING_CLINICIAN",
    )
}

async fn create_cardiology(env: &Env, who: &As, services: &[&str]) -> (String, Value) {
    create_for(env, who, "HEART_FAILURE", services).await
}

async fn create_for(env: &Env, who: &As, clinic: &str, services: &[&str]) -> (String, Value) {
    let body = create_body(
        PATIENT,
        shortlist(criteria("ROUTINE", "CARDIOLOGY", Some(clinic)), services),
        vec![],
    );
    let (status, etag, referral) = env
        .post(
            who,
            "/STU3/ReferralRequest/$ers.createReferral",
            None,
            &body,
        )
        .await;
    assert_eq!(status, 201, "{referral}");
    assert_eq!(etag.as_deref(), Some("W/\"1\""));
    (referral["id"].as_str().unwrap().to_owned(), referral)
}

fn task_codes(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    e["resource"]["code"]["coding"][0]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Two nodes of a cluster, each with its own writer, take the same change to one referral at
/// once: one change is kept, each of the others is refused with 409 (it read the new version
/// already) or 423 Locked (it lost the race while holding the old one), and none is a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_changes_to_one_referral_keep_one_and_refuse_the_others() {
    let env = spawn().await;
    let ada = ada(&env).await;
    let nodes = [env.url.clone(), env.another_node().await];
    let (ubrn, _) = create_cardiology(&env, &ada, &["20001", "20002"]).await;
    let path = format!("/int/referrals/FHIR/STU3/ReferralRequest/{ubrn}/$ers.changeShortlist");
    let changes = (0..8).map(|n| {
        let first = if n % 2 == 0 { "20001" } else { "20002" };
        let second = if n % 2 == 0 { "20002" } else { "20001" };
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "shortlist", "resource": shortlist(criteria("ROUTINE", "CARDIOLOGY", Some("HEART_FAILURE")), &[first, second])},
            {"name": "intentionToAddReferralLetter", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralLetterIntention-1", "code": "NOT_INTENDING_TO_ADD"}},
            {"name": "firstReminderLetterFollowUpDays", "valueUnsignedInt": 7},
        ]});
        let request = ada
            .apply(env.client.post(format!("{}{path}", nodes[n % 2])))
            .header("content-type", "application/fhir+json")
            .header("if-match", "W/\"1\"")
            .body(body.to_string());
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            (status, body)
        }
    });
    let sent: Vec<_> = changes.map(tokio::spawn).collect();
    let mut answers = Vec::new();
    for answer in sent {
        answers.push(answer.await.expect("request task"));
    }
    let kept: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(kept.len(), 1, "{answers:?}");
    for (status, body) in &answers {
        assert!(matches!(status, 200 | 409 | 423), "{status} {body}");
        if *status == 423 {
            assert_eq!(body["issue"][0]["code"], "lock-error", "{body}");
        }
    }
    // The kept change is the referral now, at version 2, as a node that joins after the race
    // reads it (each node caches what it wrote itself).
    let reader = env.another_node().await;
    let read = ada.apply(env.client.get(format!(
        "{reader}/int/referrals/FHIR/STU3/ReferralRequest/{ubrn}"
    )));
    let (status, etag, read) = common::answer(read.send().await.expect("GET")).await;
    assert_eq!((status, etag.as_deref()), (200, Some("W/\"2\"")));
    assert_eq!(read["contained"][1], kept[0]["contained"][1]);
}

#[tokio::test]
async fn a_referrer_searches_refers_reworks_the_shortlist_and_cancels() {
    let env = spawn().await;
    let ada = ada(&env).await;

    // A010: cardiology services for a routine heart-failure referral, nearest first.
    let search = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "requestType", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-RequestType-1", "code": "APPOINTMENT_REQUEST"}},
            {"name": "sortBy", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-SortBy-1", "code": "DISTANCE"}},
            {"name": "patient", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}},
            {"name": "searchCriteria", "resource": criteria("ROUTINE", "CARDIOLOGY", Some("HEART_FAILURE"))},
        ],
    });
    let (status, _, list) = env
        .post(
            &ada,
            "/STU3/HealthcareService/$ers.searchHealthcareServicesForPatient",
            None,
            &search,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    let found: Vec<&str> = list["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["item"]["identifier"]["value"].as_str().unwrap())
        .collect();
    // Both at 3 miles: the shorter wait first.
    assert_eq!(found, ["20001", "20002"]);

    // A011: create with a two-service shortlist.
    let (ubrn, created) = create_cardiology(&env, &ada, &["20001", "20002"]).await;
    assert_eq!(ubrn.len(), 12);
    assert!(ubrn.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(state(&created), "NOT_BOOKED");
    assert_eq!(created["meta"]["versionId"], "1");
    assert_eq!(created["subject"]["identifier"]["value"], PATIENT);
    assert_eq!(
        created["contained"][1]["entry"][0]["item"]["identifier"]["value"],
        "20001"
    );

    // A005: read it back, current version and named version; older versions are not served.
    let (status, etag, read) = env
        .get(&ada, &format!("/STU3/ReferralRequest/{ubrn}"))
        .await;
    assert_eq!((status, etag.as_deref()), (200, Some("W/\"1\"")));
    assert_eq!(read, created);
    let (status, _, _) = env
        .get(&ada, &format!("/STU3/ReferralRequest/{ubrn}/_history/1"))
        .await;
    assert_eq!(status, 200);

    // A029: what the referrer may do now (of a referral nobody holds: 400, its error table's
    // REFERENCE_NOT_FOUND).
    let (status, _, unknown) = env
        .get(
            &ada,
            "/STU3/Task?focus=ReferralRequest/999999999999/_history/1&intent=proposal&status=ready",
        )
        .await;
    assert_eq!(
        (status, code(&unknown)),
        (400, "REFERENCE_NOT_FOUND"),
        "{unknown}"
    );
    let (status, _, tasks) = env
        .get(
            &ada,
            &format!(
                "/STU3/Task?focus=ReferralRequest/{ubrn}/_history/1&intent=proposal&status=ready"
            ),
        )
        .await;
    assert_eq!(status, 200, "{tasks}");
    assert_eq!(
        task_codes(&tasks),
        [
            "CHANGE_SHORTLIST",
            "CREATE_APPOINTMENT",
            "CHANGE_SHORTLIST_AND_SEND_FOR_TRIAGE",
            "CANCEL_REFERRAL"
        ]
    );

    // A031: a new shortlist, at the version read.
    let change = json!({"resourceType": "Parameters", "parameter": [
        {"name": "shortlist", "resource": shortlist(criteria("URGENT", "CARDIOLOGY", Some("CHEST_PAIN")), &["20003", "20001"])},
        {"name": "intentionToAddReferralLetter", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralLetterIntention-1", "code": "NOT_INTENDING_TO_ADD"}},
        {"name": "firstReminderLetterFollowUpDays", "valueUnsignedInt": 7},
    ]});
    let path = format!("/STU3/ReferralRequest/{ubrn}/$ers.changeShortlist");
    let (status, _, missing) = env.post(&ada, &path, None, &change).await;
    assert_eq!(
        (status, code(&missing)),
        (400, "MISSING_VALUE"),
        "A031 documents no 412"
    );
    let (status, etag, changed) = env.post(&ada, &path, Some("W/\"1\""), &change).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(etag.as_deref(), Some("W/\"2\""));
    assert_eq!(
        changed["contained"][1]["entry"][0]["item"]["identifier"]["value"],
        "20003"
    );
    // The same change again, at the version it no longer is: 409, nothing changes.
    let (status, _, stale) = env.post(&ada, &path, Some("W/\"1\""), &change).await;
    assert_eq!(status, 409, "{stale}");
    let (_, etag, _) = env
        .get(&ada, &format!("/STU3/ReferralRequest/{ubrn}"))
        .await;
    assert_eq!(etag.as_deref(), Some("W/\"2\""));
    let (status, _, old) = env
        .get(&ada, &format!("/STU3/ReferralRequest/{ubrn}/_history/1"))
        .await;
    assert_eq!((status, code(&old)), (404, "HISTORY_NOT_SUPPORTED"));

    // A036: a reason that needs a comment refuses to go without one; then cancel.
    let cancel = format!("/STU3/ReferralRequest/{ubrn}/$ers.cancelReferral");
    let (status, _, refused) = env
        .post(
            &ada,
            &cancel,
            Some("W/\"2\""),
            &cancel_body("PATIENT_REQUEST_CANCELLATION_OTHER", None),
        )
        .await;
    assert_eq!(
        (status, code(&refused)),
        (422, "MISSING_VALUE"),
        "{refused}"
    );
    let (status, _, provider_only) = env
        .post(
            &ada,
            &cancel,
            Some("W/\"2\""),
            &cancel_body("TRIAGE_ENDED", None),
        )
        .await;
    assert_eq!((status, code(&provider_only)), (422, "INAPPROPRIATE_VALUE"));
    let (status, etag, cancelled) = env
        .post(
            &ada,
            &cancel,
            Some("W/\"2\""),
            &cancel_body("PATIENT_REQUEST_CANCELLATION_OTHER", Some("Moved away")),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(etag.as_deref(), Some("W/\"3\""));
    let updated = &cancelled["parameter"][0]["resource"];
    assert_eq!(cancelled["parameter"][0]["name"], "updatedReferralRequest");
    assert_eq!(state(updated), "CANCELLED_REFERRAL");
    assert_eq!(updated["status"], "cancelled");
    let reason = &updated["extension"].as_array().unwrap().last().unwrap()["extension"];
    assert_eq!(
        reason[1]["valueCoding"]["code"],
        "PATIENT_REQUEST_CANCELLATION_OTHER"
    );
    assert_eq!(reason[2]["valueString"], "Moved away");

    // Cancelled is final: no actions, and cancelling again is refused.
    let (_, _, tasks) = env
        .get(
            &ada,
            &format!(
                "/STU3/Task?focus=ReferralRequest/{ubrn}/_history/3&intent=proposal&status=ready"
            ),
        )
        .await;
    assert!(task_codes(&tasks).is_empty(), "{tasks}");
    let (status, _, again) = env
        .post(
            &ada,
            &cancel,
            Some("W/\"3\""),
            &cancel_body("RAISED_IN_ERROR", None),
        )
        .await;
    assert_eq!((status, code(&again)), (422, "INVALID_REQUEST_STATE"));

    // Every write and read left an AuditEvent naming the referral and the user.
    let audit = env.store.count("audit", "AuditEvent").await.unwrap();
    assert!(audit >= 8, "{audit} audit events");
}

#[tokio::test]
async fn shortlists_follow_the_rules_and_a_refused_request_stores_nothing() {
    let env = spawn().await;
    let ada = ada(&env).await;
    let create = |services: &[&str], extra: Vec<Value>| {
        create_body(
            PATIENT,
            shortlist(criteria("ROUTINE", "CARDIOLOGY", None), services),
            extra,
        )
    };
    let path = "/STU3/ReferralRequest/$ers.createReferral";
    let cases: Vec<(Value, &str)> = vec![
        (create(&["20001", "20001"], vec![]), "DUPLICATE_SERVICE"),
        (create(&["99999"], vec![]), "REFERENCE_NOT_FOUND"),
        // Commissioned only for another area.
        (
            create(&["20005"], vec![]),
            "SHORTLISTED_SERVICE_NOT_IN_RESULTS",
        ),
        // A dermatology service on a cardiology shortlist.
        (
            create(&["20006"], vec![]),
            "SHORTLISTED_SERVICE_NOT_IN_RESULTS",
        ),
        (create(&[], vec![]), "MISSING_VALUE"),
        (
            create(
                &["20001"],
                vec![json!({"name": "colour", "valueString": "blue"})],
            ),
            "UNEXPECTED_FIELD",
        ),
        (
            create(
                &["20001"],
                vec![
                    json!({"name": "eReferralPathwayStart", "valueInstant": "2999-01-01T00:00:00Z"}),
                ],
            ),
            "INAPPROPRIATE_VALUE",
        ),
        (
            create(
                &["20001"],
                vec![
                    json!({"name": "referringClinician", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/sds-user-id", "value": "555000000002"}}),
                ],
            ),
            "FIELD_NOT_PERMITTED",
        ),
        (
            create_body(
                "9912003889",
                shortlist(criteria("ROUTINE", "CARDIOLOGY", None), &["20001"]),
                vec![],
            ),
            "INVALID_VALUE",
        ),
        // Traced on PDS: a number PDS does not hold, a patient who has died, a number merged
        // into another.
        (
            create_body(
                "9990000018",
                shortlist(criteria("ROUTINE", "CARDIOLOGY", None), &["20001"]),
                vec![],
            ),
            "PATIENT_ERROR",
        ),
        (
            create_body(
                "9690938681",
                shortlist(criteria("ROUTINE", "CARDIOLOGY", None), &["20001"]),
                vec![],
            ),
            "PATIENT_ERROR",
        ),
        (
            create_body(
                "9690938622",
                shortlist(criteria("ROUTINE", "CARDIOLOGY", None), &["20001"]),
                vec![],
            ),
            "PATIENT_ERROR",
        ),
    ];
    for (body, expected) in cases {
        let (status, _, outcome) = env.post(&ada, path, None, &body).await;
        assert_eq!((status, code(&outcome)), (422, expected), "{outcome}");
        assert_eq!(
            outcome["meta"]["profile"][0],
            "https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1"
        );
    }
    let many: Vec<String> = (0..21).map(|i| format!("3{i:04}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let (status, _, outcome) = env.post(&ada, path, None, &create(&many, vec![])).await;
    assert_eq!((status, code(&outcome)), (422, "TOO_MANY_ITEMS"));

    // Not JSON, and not FHIR JSON.
    let response = ada
        .apply(env.client.post(env.url(path)))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = ada
        .apply(env.client.post(env.url(path)))
        .header("content-type", "application/fhir+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // None of that stored a referral: the first UBRN is still free.
    assert!(env.store.count("ers-int", "Referral").await.unwrap() == 0);
    let (ubrn, _) = create_cardiology(&env, &ada, &["20001"]).await;
    assert_eq!(ubrn, "100000000001");
}

#[tokio::test]
async fn the_request_context_decides_who_may_call_what() {
    let env = spawn().await;
    let token = env.user_token(ADA, ADA_GP_ROLE).await;
    let referrer = As::user(&token, GP, "REFERRING_CLINICIAN");
    let (ubrn, _) = create_cardiology(&env, &referrer, &["20001"]).await;
    let read = format!("/STU3/ReferralRequest/{ubrn}");

    let mut no_ods = referrer.clone();
    no_ods.ods = None;
    let (status, _, outcome) = env.get(&no_ods, &read).await;
    assert_eq!((status, code(&outcome)), (400, "MISSING_HEADER"));
    assert_eq!(
        outcome["issue"][0]["diagnostics"],
        "Missing or Empty NHSD-End-User-Organisation-ODS header."
    );
    // An organisation where the user holds no role.
    let (status, _, outcome) = env
        .get(&As::user(&token, "X99999", "REFERRING_CLINICIAN"), &read)
        .await;
    assert_eq!((status, code(&outcome)), (403, "FORBIDDEN"));
    // A business function the user does not hold there.
    let (status, _, _) = env
        .get(&As::user(&token, GP, "REFERRING_CLINICIAN_ADMIN"), &read)
        .await;
    assert_eq!(status, 403);
    // A business function the endpoint does not take: Ada as an SPC at the trust may read,
    // but may not create referrals.
    let as_provider = As::user(&token, TRUST, "SERVICE_PROVIDER_CLINICIAN");
    let (status, _, outcome) = env
        .post(
            &as_provider,
            "/STU3/ReferralRequest/$ers.createReferral",
            None,
            &create_body(
                PATIENT,
                shortlist(criteria("ROUTINE", "CARDIOLOGY", None), &["20001"]),
                vec![],
            ),
        )
        .await;
    assert_eq!((status, code(&outcome)), (403, "FORBIDDEN"), "{outcome}");
    let (status, _, _) = env.get(&as_provider, &read).await;
    assert_eq!(status, 200, "the trust provides a shortlisted service");

    // A provider at a trust with no part in the referral has no relationship with it.
    let cara = env.user_token(CARA, CARA_ROLE).await;
    let (status, _, _) = env
        .get(&As::user(&cara, TRUST, "SERVICE_PROVIDER_CLINICIAN"), &read)
        .await;
    assert_eq!(status, 200);
    let (other, _) = create_for(&env, &referrer, "LIPID_MANAGEMENT", &["20004"]).await;
    let (status, _, outcome) = env
        .get(
            &As::user(&cara, TRUST, "SERVICE_PROVIDER_CLINICIAN"),
            &format!("/STU3/ReferralRequest/{other}"),
        )
        .await;
    assert_eq!((status, code(&outcome)), (422, "NO_RELATIONSHIP"));

    // An SPCA acts on behalf of an SPC of their organisation, and must say which.
    let esme = env.user_token(ESME, ESME_ROLE).await;
    let mut spca = As::user(&esme, TRUST, "SERVICE_PROVIDER_CLINICIAN_ADMIN");
    let (status, _, _) = env.get(&spca, &read).await;
    assert_eq!(status, 403);
    spca.on_behalf_of = Some("555000000099");
    let (status, _, _) = env.get(&spca, &read).await;
    assert_eq!(status, 403, "not an SPC at the trust");
    spca.on_behalf_of = Some(CARA_SDS);
    let (status, _, _) = env.get(&spca, &read).await;
    assert_eq!(status, 200);
    // A040 lists whom the SPCA may act for.
    let mut lister = spca.clone();
    lister.on_behalf_of = None;
    let (status, _, practitioners) = env.get(&lister, "/R4/Practitioner?_query=onBehalfOf").await;
    assert_eq!(status, 200, "{practitioners}");
    let ids: Vec<&str> = practitioners["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&CARA_SDS), "{ids:?}");
    // The on-behalf-of header is for SPCAs only.
    let mut rc_with_obo = referrer.clone();
    rc_with_obo.on_behalf_of = Some(CARA_SDS);
    let (status, _, _) = env.get(&rc_with_obo, &read).await;
    assert_eq!(status, 403);

    // Applications: acting for a provider organisation, on the endpoints the spec opens to
    // them, and only with an ASID.
    let provider_app = As::app(&env.app_token(TRUST, Some("200000009999")).await);
    let (status, _, _) = env.get(&provider_app, &read).await;
    assert_eq!(status, 200);
    let (status, _, outcome) = env
        .post(
            &provider_app,
            "/STU3/ReferralRequest/$ers.createReferral",
            None,
            &create_body(
                PATIENT,
                shortlist(criteria("ROUTINE", "CARDIOLOGY", None), &["20001"]),
                vec![],
            ),
        )
        .await;
    assert_eq!((status, code(&outcome)), (403, "FORBIDDEN"));
    let mut pretending = provider_app.clone();
    pretending.function = Some("REFERRING_CLINICIAN");
    let (status, _, _) = env.get(&pretending, &read).await;
    assert_eq!(status, 403);
    let no_asid = As::app(&env.app_token(TRUST, None).await);
    let (status, _, outcome) = env.get(&no_asid, &read).await;
    assert_eq!(status, 403);
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .starts_with("ASID is not configured in the application")
    );

    // A030: the user's business functions, per organisation.
    let (status, _, roles) = env.get(&As::app(&token), "/R4/PractitionerRole").await;
    assert_eq!(status, 200, "{roles}");
    assert_eq!(roles["total"], 2);
    assert_eq!(
        roles["entry"][0]["resource"]["code"][0]["coding"][0]["code"],
        "REFERRING_CLINICIAN"
    );
}

#[tokio::test]
async fn reference_data_and_healthcare_services() {
    let env = spawn().await;
    let ada = ada(&env).await;
    let (status, _, priority) = env.get(&ada, "/STU3/CodeSystem/PRIORITY").await;
    assert_eq!(status, 200);
    let codes: Vec<&str> = priority["concept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ROUTINE", "URGENT", "TWO_WEEK_WAIT"]);
    assert!(
        priority["url"]
            .as_str()
            .unwrap()
            .ends_with("/int/referrals/FHIR/STU3/CodeSystem/PRIORITY")
    );
    let (status, _, reasons) = env
        .get(&ada, "/STU3/CodeSystem/REFERRAL-CANCELLATION-REASON")
        .await;
    assert_eq!(status, 200);
    assert!(reasons["concept"].as_array().unwrap().len() > 10);
    let (status, _, outcome) = env.get(&ada, "/STU3/CodeSystem/COLOURS").await;
    assert_eq!(status, 404, "{outcome}");

    let (status, etag, service) = env.get(&ada, "/R4/HealthcareService/20001").await;
    assert_eq!((status, etag.as_deref()), (200, Some("W/\"1\"")));
    assert_eq!(service["resourceType"], "HealthcareService");
    assert_eq!(service["name"], "Heart Failure Clinic");
    let head = ada
        .apply(env.client.head(env.url("/R4/HealthcareService/20001")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["etag"], "W/\"1\"");
    let (status, _, missing) = env.get(&ada, "/R4/HealthcareService/424242").await;
    assert_eq!(status, 404);
    assert_eq!(
        missing["issue"][0]["details"]["coding"][0]["code"],
        "REC_NOT_FOUND"
    );
    let (status, _, bundle) = env
        .get(&ada, "/R4/HealthcareService?_id=20001,20002,424242")
        .await;
    assert_eq!(status, 200);
    assert_eq!(bundle["total"], 2);
    let ids: Vec<String> = (0..21).map(|i| format!("{}", 20000 + i)).collect();
    let (status, _, _) = env
        .get(
            &ada,
            &format!("/R4/HealthcareService?_id={}", ids.join(",")),
        )
        .await;
    assert_eq!(status, 400);

    let (status, _, unknown) = env.get(&ada, "/STU3/Nonsense").await;
    assert_eq!(status, 404, "{unknown}");
}

#[tokio::test]
async fn the_seeded_referrals_show_every_state_through_the_api() {
    let env = spawn().await;
    let repo = carehub_ers::repo::Repo::new(env.store.clone(), "ers-int").with_clock(env.clock);
    let now = env.clock.now_micros();
    let seeded = carehub_ers::seed::seed_referrals(&repo, now).await.unwrap();
    assert_eq!(seeded.len(), 11);
    assert!(
        carehub_ers::seed::seed_referrals(&repo, now)
            .await
            .unwrap()
            .is_empty(),
        "once only"
    );
    let ada = ada(&env).await;
    let mut states = Vec::new();
    for entry in &seeded[..9] {
        let (status, _, referral) = env
            .get(&ada, &format!("/STU3/ReferralRequest/{}", entry.ubrn))
            .await;
        assert_eq!(status, 200, "{}: {referral}", entry.what);
        assert!(
            entry.what.starts_with(state(&referral)),
            "{} is {}",
            entry.what,
            state(&referral)
        );
        states.push(state(&referral).to_owned());
    }
    assert_eq!(seeded[0].ubrn, "100000000001");
    for entry in &seeded[9..] {
        let (status, _, advice) = env
            .get(&ada, &format!("/STU3/CommunicationRequest/{}", entry.ubrn))
            .await;
        assert_eq!(status, 200);
        let category = advice["category"][0]["coding"][0]["code"].as_str().unwrap();
        assert!(
            entry.what.contains(category),
            "{} is {category}",
            entry.what
        );
    }
}

#[tokio::test]
async fn the_gateway_answers_e_rs_callers_in_the_nhs_api_platform_shape() {
    let env = spawn().await;
    let response = env
        .client
        .get(env.url("/STU3/ReferralRequest/100000000001"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["content-type"], "application/fhir+json");
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["code"], "login");
    assert_eq!(
        outcome["issue"][0]["details"]["coding"][0],
        json!({"system": "https://fhir.nhs.uk/CodeSystem/NHSD-API-ErrorOrWarningCode", "code": "ACCESS_DENIED"})
    );
    assert!(outcome["meta"]["lastUpdated"].is_string());
}

#[tokio::test]
async fn applications_fetch_a_service_worklist_at_most_twice_a_day() {
    let env = spawn().await;
    let app = As::app(&env.app_token(TRUST, Some("200000009999")).await);
    let list = |service: Option<&str>| {
        let mut parameter = vec![
            json!({"name": "listType", "valueCodeableConcept": {"coding": [{
            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1", "code": "REFERRALS_FOR_REVIEW"}]}}),
        ];
        if let Some(service) = service {
            parameter.push(json!({"name": "service", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/ers-service", "value": service}}));
        }
        json!({"resourceType": "Parameters", "parameter": parameter})
    };
    let path = "/STU3/ReferralRequest/$ers.fetchworklist";
    let (status, _, outcome) = env.post(&app, path, None, &list(None)).await;
    assert_eq!(
        (status, code(&outcome)),
        (422, "MISSING_VALUE"),
        "an application must name the service"
    );
    for _ in 0..2 {
        let (status, _, _) = env.post(&app, path, None, &list(Some("20001"))).await;
        assert_eq!(status, 200);
    }
    let (status, _, outcome) = env.post(&app, path, None, &list(Some("20001"))).await;
    assert_eq!(
        (status, code(&outcome)),
        (429, "TOO_MANY_REQUESTS"),
        "{outcome}"
    );
    let (status, _, _) = env.post(&app, path, None, &list(Some("20002"))).await;
    assert_eq!(status, 200, "the limit is per service");
}
