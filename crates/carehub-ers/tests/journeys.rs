//! e-RS journeys across both sides, through the gateway with real tokens: book a slot on the
//! test PAS and cancel it, send to triage and get advice back, a provider reviewing, accepting
//! and rejecting, and the worklists that show each side what to do.

mod common;

use common::*;
use serde_json::{Value, json};

struct Sides {
    referrer: As,
    provider: As,
}

async fn sides(env: &Env) -> Sides {
    Sides {
        referrer: As::user(
            &env.user_token(ADA, ADA_GP_ROLE).await,
            GP,
            "REFERRING_CLINICIAN",
        ),
        provider: As::user(
            &env.user_token(CARA, CARA_ROLE).await,
            TRUST,
            "SERVICE_PROVIDER_CLINICIAN",
        ),
    }
}

async fn refer(env: &Env, who: &As, clinic: &str, services: &[&str]) -> String {
    let body = create_body(
        PATIENT,
        shortlist(criteria("ROUTINE", "CARDIOLOGY", Some(clinic)), services),
        vec![],
    );
    let (status, _, referral) = env
        .post(
            who,
            "/STU3/ReferralRequest/$ers.createReferral",
            None,
            &body,
        )
        .await;
    assert_eq!(status, 201, "{referral}");
    referral["id"].as_str().unwrap().to_owned()
}

fn appointment(ubrn: &str, version: i64, service: &str, status: &str, extra: Value) -> Value {
    let mut body = json!({
        "resourceType": "Appointment",
        "id": "appointment",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-Appointment-1"]},
        "language": "en",
        "status": status,
        "description": "e-Referral Appointment",
        "incomingReferral": [{"reference": format!("ReferralRequest/{ubrn}/_history/{version}")}],
        "participant": [
            {"actor": {"identifier": {"system": "http://fhir.nhs.net/Id/ers-service", "value": service}}, "status": "accepted"},
            {"actor": {"identifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}}, "status": "accepted"},
        ],
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

fn review_reason(code: &str) -> Value {
    json!({"reason": [{"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewReason-1", "code": code}]}]})
}

async fn slots(env: &Env, who: &As, service: &str, count: usize, page: usize) -> (u16, Value) {
    let response = who
        .apply(env.client.get(env.url(&format!(
            "/STU3/Slot?schedule.actor:HealthcareService={service}&appointmentType=ROUTINE&status=free&_count={count}&page={page}&_include=Slot:schedule"
        ))))
        .header("NHSD-eRS-Comm-Rule-Org", GP)
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    (status, body)
}

async fn worklist(env: &Env, who: &As, list: &str) -> Vec<String> {
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "listType", "valueCodeableConcept": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1", "code": list}]}}]});
    let (status, _, list) = env
        .post(who, "/STU3/ReferralRequest/$ers.fetchworklist", None, &body)
        .await;
    assert_eq!(status, 200, "{list}");
    list["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["item"]["reference"]
                .as_str()
                .unwrap()
                .trim_start_matches("ReferralRequest/")
                .to_owned()
        })
        .collect()
}

async fn version_of(env: &Env, who: &As, ubrn: &str) -> (i64, Value) {
    let (status, etag, referral) = env.get(who, &format!("/STU3/ReferralRequest/{ubrn}")).await;
    assert_eq!(status, 200, "{referral}");
    let etag = etag.unwrap();
    let version = etag
        .trim_start_matches("W/\"")
        .trim_end_matches('"')
        .parse()
        .unwrap();
    (version, referral)
}

/// The first free slot of the service's general clinic on the page. A named clinician's clinic
/// asks for the clinician as a participant, and in the afternoon (UTC) its slots come first.
fn first_slot(bundle: &Value) -> Value {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| &e["resource"])
        .find(|slot| {
            let schedule = slot["schedule"]["reference"].as_str().unwrap();
            !schedule.contains('-')
        })
        .cloned()
        .expect("a free slot of the general clinic")
}

fn book_extra(slot: &Value) -> Value {
    json!({
        "start": slot["start"], "end": slot["end"],
        "slot": [{"reference": format!("Slot/{}", slot["id"].as_str().unwrap())}],
    })
}

#[tokio::test]
async fn a_referrer_books_a_slot_the_provider_accepts_and_the_patient_cancels() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let ubrn = refer(&env, &referrer, "HEART_FAILURE", &["20001", "20002"]).await;

    // A015: the PAS's free slots, paged, with their schedules.
    let (status, page) = slots(&env, &referrer, "20001", 5, 1).await;
    assert_eq!(status, 200, "{page}");
    let total = page["total"].as_u64().unwrap();
    assert!(total > 100, "four weeks of clinics: {total}");
    let matches = page["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .count();
    assert_eq!(matches, 5);
    assert!(
        page["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource"]["resourceType"] == "Schedule")
    );
    assert!(
        page["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "next")
    );
    let (status, outcome) = slots(&env, &referrer, "20001", 100, 999).await;
    assert_eq!(
        (status, code(&outcome)),
        (400, "INVALID_VALUE"),
        "{outcome}"
    );
    assert_eq!(
        outcome["issue"][0]["diagnostics"],
        "'Page Number' (999) is invalid."
    );
    let (status, outcome) = slots(&env, &referrer, "20002", 5, 1).await;
    assert_eq!(
        (status, code(&outcome)),
        (400, "INVALID_STATE"),
        "a triage service has no slots"
    );

    // A016: book the first slot; the referral is BOOKED and points at the appointment.
    let slot = first_slot(&page);
    let body = appointment(&ubrn, 1, "20001", "booked", book_extra(&slot));
    let (status, etag, booked) = env.post(&referrer, "/STU3/Appointment", None, &body).await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(etag.as_deref(), Some("W/\"1\""));
    assert_eq!(booked["status"], "booked");
    assert_eq!(
        booked["slot"][0]["reference"],
        format!("Slot/{}", slot["id"].as_str().unwrap())
    );
    let appointment_id = booked["id"].as_str().unwrap().to_owned();
    let (version, referral) = version_of(&env, &referrer, &ubrn).await;
    assert_eq!((version, state(&referral)), (2, "BOOKED"));
    assert_eq!(
        referral["extension"][0]["valueReference"]["reference"],
        format!("Appointment/{appointment_id}")
    );
    assert_eq!(
        booked["incomingReferral"][0]["reference"],
        format!("ReferralRequest/{ubrn}/_history/2")
    );
    // Booking again at the version read before is stale.
    let (status, _, _) = env.post(&referrer, "/STU3/Appointment", None, &body).await;
    assert_eq!(status, 409);

    // The slot is taken: it is no longer offered, and another referral cannot have it.
    let (_, after) = slots(&env, &referrer, "20001", 5, 1).await;
    assert_eq!(after["total"].as_u64().unwrap(), total - 1);
    let other = refer(&env, &referrer, "HEART_FAILURE", &["20001"]).await;
    let (status, _, taken) = env
        .post(
            &referrer,
            "/STU3/Appointment",
            None,
            &appointment(&other, 1, "20001", "booked", book_extra(&slot)),
        )
        .await;
    assert_eq!(
        (status, code(&taken)),
        (422, "SLOT_NOT_AVAILABLE"),
        "{taken}"
    );
    // Deferring while slots are free is refused.
    let (status, _, refused) = env
        .post(
            &referrer,
            "/STU3/Appointment",
            None,
            &appointment(
                &other,
                1,
                "20001",
                "proposed",
                review_reason("NO_SLOTS_AT_SERVICE"),
            ),
        )
        .await;
    assert_eq!((status, code(&refused)), (422, "SLOTS_CURRENTLY_AVAILABLE"));

    // A038: both sides read the appointment.
    let (status, etag, read) = env
        .get(&provider, &format!("/STU3/Appointment/{appointment_id}"))
        .await;
    assert_eq!((status, etag.as_deref()), (200, Some("W/\"1\"")), "{read}");
    assert_eq!(
        read["participant"][0]["actor"]["identifier"]["value"],
        "20001"
    );

    // The provider reviews it: on REFERRALS_FOR_REVIEW until accepted (A013).
    assert!(
        worklist(&env, &provider, "REFERRALS_FOR_REVIEW")
            .await
            .contains(&ubrn)
    );
    let accept = format!("/STU3/ReferralRequest/{ubrn}/$ers.acceptReferral");
    let (status, etag, accepted) = env
        .post(&provider, &accept, Some("W/\"2\""), &json!({}))
        .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(etag.as_deref(), Some("W/\"3\""));
    let (status, _, again) = env
        .post(&provider, &accept, Some("W/\"3\""), &json!({}))
        .await;
    assert_eq!((status, code(&again)), (422, "INVALID_REQUEST_STATE"));
    assert!(
        !worklist(&env, &provider, "REFERRALS_FOR_REVIEW")
            .await
            .contains(&ubrn)
    );

    // A029 for the referrer, then A034: the patient cannot come; the slot is free again.
    let (_, _, tasks) = env
        .get(
            &referrer,
            &format!(
                "/STU3/Task?focus=ReferralRequest/{ubrn}/_history/3&intent=proposal&status=ready"
            ),
        )
        .await;
    let codes: Vec<&str> = tasks["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["code"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["CANCEL_DIRECTLY_BOOKED_APPOINTMENT", "CANCEL_REFERRAL"]
    );
    let mut cancel = read.clone();
    cancel["status"] = json!("cancelled");
    cancel["reason"] = json!([{"coding": [{"system": "_baseUrl_/STU3/CodeSystem/APPOINTMENT-CANCELLATION-REASON", "code": "PATIENT_APPOINTMENT_CANCELLATION_OTHER"}]}]);
    let put = |body: Value, if_match: Option<&'static str>| {
        let mut request = referrer
            .apply(
                env.client
                    .put(env.url(&format!("/STU3/Appointment/{appointment_id}"))),
            )
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        if let Some(version) = if_match {
            request = request.header("if-match", version);
        }
        request
    };
    let (status, _, missing) =
        answer(put(cancel.clone(), Some("W/\"1\"")).send().await.unwrap()).await;
    assert_eq!(
        (status, code(&missing)),
        (422, "MISSING_VALUE"),
        "OTHER needs a comment: {missing}"
    );
    cancel["reason"][0]["coding"][0]["code"] = json!("PATIENT_ILL");
    let (status, _, _) = answer(put(cancel.clone(), None).send().await.unwrap()).await;
    assert_eq!(status, 412);
    let (status, etag, cancelled) =
        answer(put(cancel.clone(), Some("W/\"1\"")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(
        (cancelled["status"].as_str(), etag.as_deref()),
        (Some("cancelled"), Some("W/\"2\""))
    );
    let (_, referral) = version_of(&env, &referrer, &ubrn).await;
    assert_eq!(state(&referral), "APPT_CANCELLED_BY_PATIENT");
    let (_, freed) = slots(&env, &referrer, "20001", 5, 1).await;
    assert_eq!(freed["total"].as_u64().unwrap(), total);
    assert!(
        worklist(&env, &referrer, "AWAITING_BOOKING")
            .await
            .contains(&ubrn)
    );
}

#[tokio::test]
async fn triage_returns_advice_to_the_referrer() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let ubrn = refer(&env, &referrer, "HEART_FAILURE", &["20001", "20002"]).await;

    // Booking a triage service is refused; sending it to triage is how.
    let (status, _, refused) = env
        .post(
            &referrer,
            "/STU3/Appointment",
            None,
            &appointment(&ubrn, 1, "20001", "proposed", review_reason("TRIAGE")),
        )
        .await;
    assert_eq!(
        (status, code(&refused)),
        (422, "INAPPROPRIATE_VALUE"),
        "20001 is no triage service"
    );
    let (status, _, sent) = env
        .post(
            &referrer,
            "/STU3/Appointment",
            None,
            &appointment(&ubrn, 1, "20002", "proposed", review_reason("TRIAGE")),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["status"], "proposed");
    let (version, referral) = version_of(&env, &provider, &ubrn).await;
    assert_eq!(state(&referral), "AWAITING_TRIAGE");
    assert!(
        worklist(&env, &provider, "REFERRALS_FOR_REVIEW")
            .await
            .contains(&ubrn)
    );
    assert!(
        worklist(&env, &referrer, "AWAITING_BOOKING")
            .await
            .contains(&ubrn)
    );
    // Worklists belong to a side.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "listType", "valueCodeableConcept": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1", "code": "REFERRALS_FOR_REVIEW"}]}}]});
    let (status, _, _) = env
        .post(
            &referrer,
            "/STU3/ReferralRequest/$ers.fetchworklist",
            None,
            &body,
        )
        .await;
    assert_eq!(status, 403);

    // A028: the outcome; a return to the referrer keeps the priority.
    let path = format!("/STU3/ReferralRequest/{ubrn}/$ers.recordReviewOutcome");
    let outcome = |code: &str, priority: Option<&str>| {
        let mut parameter = vec![
            json!({"name": "reviewOutcome", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewOutcome-1", "code": code}}),
            json!({"name": "reviewComments", "valueString": "Start a statin and refer again if no better"}),
        ];
        if let Some(priority) = priority {
            parameter.push(json!({"name": "reviewPriority", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "code": priority}}));
        }
        json!({"resourceType": "Parameters", "parameter": parameter})
    };
    let if_match = format!("W/\"{version}\"");
    let (status, _, refused) = env
        .post(
            &provider,
            &path,
            Some(&if_match),
            &outcome("RETURN_TO_REFERRER_WITH_ADVICE", Some("URGENT")),
        )
        .await;
    assert_eq!((status, code(&refused)), (422, "PRIORITY_NOT_CURRENT"));
    let (status, _, returned) = env
        .post(
            &provider,
            &path,
            Some(&if_match),
            &outcome("RETURN_TO_REFERRER_WITH_ADVICE", None),
        )
        .await;
    assert_eq!(status, 200, "{returned}");
    assert_eq!(state(&returned), "TRIAGE_RESPONSE");
    let reason = &returned["extension"].as_array().unwrap().last().unwrap()["extension"];
    assert_eq!(
        reason[1]["valueCoding"]["code"],
        "RETURN_TO_REFERRER_WITH_ADVICE"
    );
    assert_eq!(
        reason[2]["valueString"],
        "Start a statin and refer again if no better"
    );
    assert!(
        !worklist(&env, &provider, "REFERRALS_FOR_REVIEW")
            .await
            .contains(&ubrn)
    );
    assert!(
        worklist(&env, &referrer, "REJECTED_TRIAGE_RESPONSE")
            .await
            .contains(&ubrn)
    );
    // The provider has nothing more to do; the referrer may rework and resend.
    let (status, _, again) = env
        .post(
            &provider,
            &path,
            Some(&format!("W/\"{}\"", version + 1)),
            &outcome("ACCEPT_REFER_BOOK_LATER", None),
        )
        .await;
    assert_eq!((status, code(&again)), (422, "INVALID_REQUEST_STATE"));
}

#[tokio::test]
async fn a_provider_rejects_a_booked_referral_and_its_slot_is_freed() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let ubrn = refer(&env, &referrer, "HEART_FAILURE", &["20001"]).await;
    let (_, page) = slots(&env, &referrer, "20001", 5, 1).await;
    let total = page["total"].as_u64().unwrap();
    let slot = first_slot(&page);
    // A slot the clinic never offers, and one at the wrong time.
    let mut wrong = book_extra(&slot);
    wrong["slot"] = json!([{"reference": "Slot/20001-203001010905"}]);
    let (status, _, outcome) = env
        .post(
            &referrer,
            "/STU3/Appointment",
            None,
            &appointment(&ubrn, 1, "20001", "booked", wrong),
        )
        .await;
    assert_eq!(
        (status, code(&outcome)),
        (422, "INAPPROPRIATE_SLOT"),
        "{outcome}"
    );
    let mut moved = book_extra(&slot);
    moved["start"] = json!("2030-01-01T09:00:00Z");
    let (status, _, outcome) = env
        .post(
            &referrer,
            "/STU3/Appointment",
            None,
            &appointment(&ubrn, 1, "20001", "booked", moved),
        )
        .await;
    assert_eq!((status, code(&outcome)), (422, "INAPPROPRIATE_SLOT"));
    let (status, _, booked) = env
        .post(
            &referrer,
            "/STU3/Appointment",
            None,
            &appointment(&ubrn, 1, "20001", "booked", book_extra(&slot)),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["id"].as_str().unwrap().to_owned();

    // A014: a reason that needs a comment; then the rejection.
    let path = format!("/STU3/ReferralRequest/{ubrn}/$ers.rejectReferral");
    let reject = |reason: &str, comment: Option<&str>| {
        let mut parameter = vec![json!({"name": "rejectionReason", "valueCoding": {
            "system": "_baseurl_/STU3/CodeSystem/APPOINTMENT-CANCELLATION-REASON", "code": reason}})];
        if let Some(comment) = comment {
            parameter.push(json!({"name": "rejectionComments", "valueString": comment}));
        }
        parameter.push(json!({"name": "appointmentCancelledInPAS", "valueBoolean": true}));
        json!({"resourceType": "Parameters", "parameter": parameter})
    };
    let (status, _, missing) = env
        .post(&provider, &path, Some("W/\"2\""), &reject("OTHER", None))
        .await;
    assert_eq!((status, code(&missing)), (422, "MISSING_VALUE"));
    let (status, _, rejected) = env
        .post(
            &provider,
            &path,
            Some("W/\"2\""),
            &reject(
                "REDIRECTED_APPROPRIATE_CLINIC",
                Some("Lipid clinic instead"),
            ),
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(state(&rejected), "REJECTED");
    // The appointment went with it, and the slot is offered again.
    let (status, _, cancelled) = env.get(&referrer, &format!("/STU3/Appointment/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["reason"][0]["coding"][0]["code"],
        "REDIRECTED_APPROPRIATE_CLINIC"
    );
    let (_, page) = slots(&env, &referrer, "20001", 5, 1).await;
    assert_eq!(page["total"].as_u64().unwrap(), total);
    assert!(
        worklist(&env, &referrer, "REJECTED_TRIAGE_RESPONSE")
            .await
            .contains(&ubrn)
    );
    // The PAS holds no booking for it.
    assert_eq!(env.store.count("pas-int", "SlotBooking").await.unwrap(), 0);
}

#[tokio::test]
async fn a_referral_letter_is_uploaded_attached_and_downloaded_by_the_provider() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let ubrn = refer(&env, &referrer, "HEART_FAILURE", &["20001"]).await;
    let pdf = b"%PDF-1.4\n% a referral letter\n".to_vec();
    let upload = |name: Option<&str>, content_type: &str, referral: Option<&str>, body: Vec<u8>| {
        let mut request = referrer
            .apply(env.client.post(env.url("/STU3/Binary")))
            .header("content-type", content_type)
            .body(body);
        if let Some(name) = name {
            request = request.header("NHSD-eRS-File-Name", name);
        }
        if let Some(ubrn) = referral {
            request = request.header("NHSD-eRS-Referral-ID", ubrn);
        }
        request.send()
    };

    // A020: the rules of uploads.
    let response = upload(
        Some("letter.pdf"),
        "application/pdf",
        Some(&ubrn),
        pdf.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.text().await.unwrap().is_empty());
    // (file name, media type, body, status, e-RS code)
    type Case<'a> = (Option<&'a str>, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (None, "application/pdf", pdf.clone(), 422, "MISSING_VALUE"),
        (
            Some("letter.txt"),
            "application/pdf",
            pdf.clone(),
            422,
            "CONFLICTING_VALUES",
        ),
        (
            Some("empty.pdf"),
            "application/pdf",
            Vec::new(),
            422,
            "FILE_SIZE_ERROR",
        ),
        (
            Some("big.pdf"),
            "application/pdf",
            vec![b'x'; 5 * 1024 * 1024 + 1],
            422,
            "FILE_SIZE_ERROR",
        ),
    ];
    for (name, content_type, body, status, expected) in cases {
        let (got, _, outcome) =
            answer(upload(name, content_type, Some(&ubrn), body).await.unwrap()).await;
        assert_eq!(
            (got, code(&outcome)),
            (status, expected),
            "{name:?}: {outcome}"
        );
    }
    let refused = upload(
        Some("run.exe"),
        "application/x-msdownload",
        Some(&ubrn),
        pdf.clone(),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 415);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );

    // Only files uploaded for this referral can be attached to it.
    let stray = upload(Some("other.pdf"), "application/pdf", None, pdf.clone())
        .await
        .unwrap();
    let stray = stray.headers()["location"].to_str().unwrap().to_owned();
    let response = upload(
        Some("letter.pdf"),
        "application/pdf",
        Some(&ubrn),
        pdf.clone(),
    )
    .await
    .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("Binary/"));
    let file = location.trim_start_matches("Binary/").to_owned();
    let letters = |urls: &[&str]| {
        json!({"resourceType": "Parameters", "parameter": urls.iter().map(|url| json!({"name": "referralLetterFile", "resource": {
            "resourceType": "DocumentReference",
            "type": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AttachmentType-1", "code": "REFERRER"}]},
            "status": "current", "indexed": "2026-11-30T10:00:00Z", "description": "Referral letter",
            "content": [{"attachment": {"url": url}}]}})).collect::<Vec<_>>()})
    };
    let path = format!("/STU3/ReferralRequest/{ubrn}/$ers.maintainReferralLetter");
    let (status, _, outcome) = env
        .post(&referrer, &path, Some("W/\"1\""), &letters(&[&stray]))
        .await;
    assert_eq!(
        (status, code(&outcome)),
        (422, "INAPPROPRIATE_VALUE"),
        "{outcome}"
    );
    assert!(
        worklist(&env, &referrer, "LETTERS_OUTSTANDING")
            .await
            .contains(&ubrn)
    );
    // A012: the letter is attached and the referral no longer waits for one.
    let (status, etag, referral) = env
        .post(&referrer, &path, Some("W/\"1\""), &letters(&[&location]))
        .await;
    assert_eq!(status, 200, "{referral}");
    assert_eq!(etag.as_deref(), Some("W/\"2\""));
    assert_eq!(
        referral["supportingInfo"][0]["reference"],
        format!("#DocumentReference-{file}")
    );
    let document = referral["contained"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resourceType"] == "DocumentReference")
        .unwrap();
    assert_eq!(document["content"][0]["attachment"]["title"], "letter.pdf");
    assert_eq!(document["content"][0]["attachment"]["size"], pdf.len());
    assert!(
        !worklist(&env, &referrer, "LETTERS_OUTSTANDING")
            .await
            .contains(&ubrn)
    );
    let (status, _, unchanged) = env
        .post(&referrer, &path, Some("W/\"2\""), &letters(&[&location]))
        .await;
    assert_eq!((status, code(&unchanged)), (422, "NO_CHANGES_DETECTED"));

    // A042: the provider of a shortlisted service is sent to a signed URL that needs no token.
    let redirect = provider
        .apply(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(env.url(&format!("/R4/Binary/{file}"))),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 307);
    let signed = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(signed.contains("/int/referrals/ObjectStore/"), "{signed}");
    let fetched = env.client.get(&signed).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "application/pdf");
    assert!(
        fetched.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("letter.pdf")
    );
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), pdf);
    let tampered = signed.replace("signature=", "signature=0");
    assert_eq!(
        env.client.get(&tampered).send().await.unwrap().status(),
        403
    );
    // A006, deprecated: the file itself.
    let direct = provider
        .apply(env.client.get(env.url(&format!("/STU3/Binary/{file}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
    assert_eq!(direct.bytes().await.unwrap().to_vec(), pdf);
    // The stray file is its uploader's organisation's alone.
    let (status, _, outcome) = env
        .get(
            &provider,
            &format!("/STU3/Binary/{}", stray.trim_start_matches("Binary/")),
        )
        .await;
    assert_eq!((status, code(&outcome)), (422, "NO_RELATIONSHIP"));
}

#[tokio::test]
async fn letters_for_the_patient_and_the_clinician_are_pdfs_of_the_referral() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let ubrn = refer(&env, &referrer, "HEART_FAILURE", &["20001", "20002"]).await;
    let post = |who: &As, operation: &str| {
        who.apply(
            env.client
                .post(env.url(&format!("/STU3/ReferralRequest/{ubrn}/{operation}"))),
        )
        .send()
    };
    let letter = post(&referrer, "$ers.generatePatientLetter").await.unwrap();
    assert_eq!(letter.status(), 200);
    assert_eq!(letter.headers()["content-type"], "application/pdf");
    let disposition = letter.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains(&format!("{ubrn}_Appointment_Confirmation_Summary_")),
        "{disposition}"
    );
    let bytes = letter.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("%PDF-1.4"));
    assert!(text.contains(&format!(
            "(Booking reference number \\(UBRN\\): {})",
            ubrn.as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        )));
    assert!(text.contains("Heart Failure Clinic"));
    // The patient letter is the referrer's to print; the summary is for both sides.
    assert_eq!(
        post(&provider, "$ers.generatePatientLetter")
            .await
            .unwrap()
            .status(),
        403
    );
    let summary = post(&provider, "$ers.generateCRI").await.unwrap();
    assert_eq!(summary.status(), 200);
    let text = String::from_utf8_lossy(&summary.bytes().await.unwrap()).into_owned();
    assert!(text.contains(&format!("(UBRN: {ubrn})")));
    assert!(text.contains("(Specialty: Cardiology)"));
    // Nothing to tell the patient once it is cancelled.
    let (status, _, _) = env
        .post(
            &referrer,
            &format!("/STU3/ReferralRequest/{ubrn}/$ers.cancelReferral"),
            Some("W/\"1\""),
            &cancel_body("RAISED_IN_ERROR", None),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, outcome) =
        answer(post(&referrer, "$ers.generatePatientLetter").await.unwrap()).await;
    assert_eq!((status, code(&outcome)), (422, "INVALID_REQUEST_STATE"));
}

fn advice_body(services: &[&str], authorised: bool, request: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}},
        {"name": "providerConversionAuthorisation", "valueCoding": {
            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ProviderConversionAuthorisation-1",
            "code": if authorised { "AUTHORISED_TO_CONVERT" } else { "NOT_AUTHORISED_TO_CONVERT" }}},
        {"name": "shortlist", "resource": shortlist(criteria("ROUTINE", "CARDIOLOGY", None), services)},
        {"name": "request", "valueString": request},
    ]})
}

fn category(request: &Value) -> &str {
    request["category"][0]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn advice_and_guidance_is_asked_answered_and_converted() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let ask = "/STU3/CommunicationRequest/$ers.createAdviceAndGuidance";

    // A044: one advice service, which must give advice.
    let (status, _, outcome) = env
        .post(
            &referrer,
            ask,
            None,
            &advice_body(&["20001"], true, "Statin?"),
        )
        .await;
    assert_eq!(
        (status, code(&outcome)),
        (422, "SHORTLISTED_SERVICE_NOT_IN_RESULTS"),
        "{outcome}"
    );
    let (status, _, outcome) = env
        .post(
            &referrer,
            ask,
            None,
            &advice_body(&["20002", "20011"], true, "Statin?"),
        )
        .await;
    assert_eq!((status, code(&outcome)), (422, "TOO_MANY_ITEMS"));
    let (status, etag, created) = env
        .post(
            &referrer,
            ask,
            None,
            &advice_body(
                &["20002"],
                false,
                "Raised LDL despite diet: start a statin?",
            ),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(etag.as_deref(), Some("W/\"1\""));
    let request = &created["parameter"][0]["resource"];
    let ubrn = request["id"].as_str().unwrap().to_owned();
    assert_eq!(category(request), "PROVIDER_RESPONSE_REQUIRED");
    assert_eq!(
        created["parameter"][1]["resource"]["category"][0]["coding"][0]["code"],
        "REQUESTER"
    );

    // The provider's worklist, the summary and the conversation.
    let worklist_body = json!({"resourceType": "Parameters", "parameter": [{"name": "listType", "valueCodeableConcept": {"coding": [{
        "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-CommunicationListSelector-1", "code": "ADVICE_AND_GUIDANCE_REQUESTS"}]}}]});
    let (status, _, list) = env
        .post(
            &provider,
            "/STU3/CommunicationRequest/$ers.fetchworklist",
            None,
            &worklist_body,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["entry"][0]["item"]["reference"],
        format!("CommunicationRequest/{ubrn}")
    );
    let (status, _, summary) = env
        .get(&provider, &format!("/STU3/CommunicationRequest/{ubrn}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        summary["identifier"][0]["value"].as_str().unwrap().get(..2),
        Some("a.")
    );
    let conversation = |version: i64| {
        format!(
            "/STU3/Communication?based-on=CommunicationRequest/{ubrn}/_history/{version}&_include=Communication:sender-practitionerrole:PractionerRole"
        )
    };
    let (status, _, bundle) = env.get(&referrer, &conversation(1)).await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["total"], 1);
    assert_eq!(
        bundle["entry"][0]["resource"]["note"][0]["text"],
        "Raised LDL despite diet: start a statin?"
    );

    // A026: an answer needs a recommendation; asking for more does not take one.
    let answer_body = |outcome: &str, recommendation: Option<&str>| {
        let mut parameter = vec![
            json!({"name": "guidanceOutcome", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-GuidanceResponseOutcome-1", "code": outcome}}),
            json!({"name": "guidance", "valueString": "Please send the last two lipid profiles"}),
            json!({"name": "updatedPriority", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "code": "ROUTINE"}}),
        ];
        if let Some(code) = recommendation {
            parameter.push(json!({"name": "guidanceIntendedRecommendation", "valueCoding": {
                "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-GuidanceIntendedRecommendation-1", "code": code}}));
        }
        json!({"resourceType": "Parameters", "parameter": parameter})
    };
    let respond = format!("/STU3/CommunicationRequest/{ubrn}/$ers.sendCommunicationToRequester");
    let (status, _, outcome) = env
        .post(
            &provider,
            &respond,
            Some("W/\"1\""),
            &answer_body("RETURN_TO_REFERRER_WITH_ADVICE", None),
        )
        .await;
    assert_eq!((status, code(&outcome)), (422, "VALUE_IS_REQUIRED"));
    let (status, _, outcome) = env
        .post(
            &referrer,
            &respond,
            Some("W/\"1\""),
            &answer_body("REQUIRE_FURTHER_INFORMATION", None),
        )
        .await;
    assert_eq!(status, 403, "the referrer does not answer: {outcome}");
    let (status, etag, answered) = env
        .post(
            &provider,
            &respond,
            Some("W/\"1\""),
            &answer_body("REQUIRE_FURTHER_INFORMATION", None),
        )
        .await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(etag.as_deref(), Some("W/\"2\""));
    assert_eq!(
        category(&answered["parameter"][0]["resource"]),
        "REFERRER_TO_SUBMIT_FURTHER_INFORMATION"
    );
    assert_eq!(
        answered["parameter"][1]["resource"]["category"][0]["coding"][0]["code"],
        "RESPONDER"
    );
    let (_, _, bundle) = env.get(&referrer, &conversation(2)).await;
    assert_eq!(bundle["total"], 2);
    let (status, _, _) = env.get(&referrer, &conversation(1)).await;
    assert_eq!(
        status, 404,
        "the conversation is read at the current version"
    );
    let (status, _, outcome) = env
        .post(
            &provider,
            &respond,
            Some("W/\"2\""),
            &answer_body("REQUIRE_FURTHER_INFORMATION", None),
        )
        .await;
    assert_eq!((status, code(&outcome)), (422, "INVALID_REQUEST_STATE"));
    let (_, _, list) = env
        .post(
            &provider,
            "/STU3/CommunicationRequest/$ers.fetchworklist",
            None,
            &worklist_body,
        )
        .await;
    assert!(list["entry"].as_array().unwrap().is_empty());

    // A027: only with the referrer's authorisation; the referral keeps the UBRN.
    let convert = |ubrn: &str| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "createFrom", "valueReference": {"reference": format!("CommunicationRequest/{ubrn}/_history/1")}},
            {"name": "guidance", "valueString": "Seen in clinic: book a lipid review"},
            {"name": "newReferralPriority", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "code": "URGENT"}},
            {"name": "reviewComments", "valueString": "Book within two weeks"},
        ]})
    };
    let path = "/STU3/ReferralRequest/$ers.createFromCommunicationRequestActionLater";
    let (_, _, second) = env
        .post(
            &referrer,
            ask,
            None,
            &advice_body(&["20002"], false, "Another question"),
        )
        .await;
    let unauthorised = second["parameter"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, outcome) = env
        .post(&provider, path, None, &convert(&unauthorised))
        .await;
    assert_eq!(
        (status, code(&outcome)),
        (422, "INAPPROPRIATE_VALUE"),
        "{outcome}"
    );
    let (_, _, third) = env
        .post(
            &referrer,
            ask,
            None,
            &advice_body(&["20002"], true, "Please see"),
        )
        .await;
    let authorised = third["parameter"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, etag, referral) = env.post(&provider, path, None, &convert(&authorised)).await;
    assert_eq!(status, 201, "{referral}");
    assert_eq!(etag.as_deref(), Some("W/\"1\""));
    assert_eq!(referral["id"], authorised.as_str());
    assert_eq!(state(&referral), "TRIAGED_PROVIDER_TO_ACTION");
    let (status, _, read) = env
        .get(&referrer, &format!("/STU3/ReferralRequest/{authorised}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        read["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "URGENT"
    );
    let (_, _, summary) = env
        .get(
            &referrer,
            &format!("/STU3/CommunicationRequest/{authorised}"),
        )
        .await;
    assert_eq!(
        (category(&summary), summary["status"].as_str()),
        ("ADVICE_CONVERTED", Some("completed"))
    );

    // A041: both service requests behind the UBRN; A024 refuses a referral-only UBRN.
    let (status, _, requests) = env
        .get(
            &referrer,
            &format!("/R4/ServiceRequest?identifier=https://fhir.nhs.uk/Id/UBRN|{authorised}"),
        )
        .await;
    assert_eq!(status, 200, "{requests}");
    let categories: Vec<&str> = requests["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["category"][0]["coding"][0]["code"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(categories, ["request", "referral"]);
    assert_eq!(
        requests["entry"][0]["resource"]["code"]["coding"][0]["code"],
        "advice-and-guidance"
    );
    let plain = refer(&env, &referrer, "HEART_FAILURE", &["20001"]).await;
    let (status, _, outcome) = env
        .get(&referrer, &format!("/STU3/CommunicationRequest/{plain}"))
        .await;
    assert_eq!((status, code(&outcome)), (422, "INVALID_REQUEST_TYPE"));

    // A043: the overview PDF, with the conversation.
    let pdf = provider
        .apply(env.client.post(env.url(&format!(
            "/STU3/CommunicationRequest/{ubrn}/$ers.generateCRI"
        ))))
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    let text = String::from_utf8_lossy(&pdf.bytes().await.unwrap()).into_owned();
    assert!(text.contains("(Please send the last two lipid profiles)"));
}

#[tokio::test]
async fn deprecated_endpoints_still_work_and_say_what_replaces_them() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;

    // A021: create and send for triage at once, to exactly one triage service.
    let body = |services: &[&str]| {
        create_body(
            PATIENT,
            shortlist(criteria("ROUTINE", "CARDIOLOGY", None), services),
            vec![],
        )
    };
    let path = "/STU3/ReferralRequest/$ers.createReferralAndSendForTriage";
    let response = referrer
        .apply(env.client.post(env.url(path)))
        .header("content-type", "application/fhir+json")
        .body(body(&["20002"]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(
        response.headers()["link"]
            .to_str()
            .unwrap()
            .contains("$ers.createReferral>; rel=\"successor-version\"")
    );
    let (_, _, sent) = answer(response).await;
    assert_eq!(state(&sent), "AWAITING_TRIAGE");
    let (status, _, outcome) = env.post(&referrer, path, None, &body(&["20001"])).await;
    assert_eq!((status, code(&outcome)), (422, "INAPPROPRIATE_VALUE"));

    // A032: change the shortlist and send for triage.
    let ubrn = refer(&env, &referrer, "HEART_FAILURE", &["20001"]).await;
    let change = json!({"resourceType": "Parameters", "parameter": [
        {"name": "shortlist", "resource": shortlist(criteria("ROUTINE", "CARDIOLOGY", None), &["20002"])},
        {"name": "intentionToAddReferralLetter", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralLetterIntention-1", "code": "NEED_TO_ADD_LATER"}},
        {"name": "firstReminderLetterFollowUpDays", "valueUnsignedInt": 0},
    ]});
    let (status, etag, updated) = env
        .post(
            &referrer,
            &format!("/STU3/ReferralRequest/{ubrn}/$ers.changeShortlistAndSendForTriage"),
            Some("W/\"1\""),
            &change,
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(etag.as_deref(), Some("W/\"2\""));
    assert_eq!(
        state(&updated["parameter"][0]["resource"]),
        "AWAITING_TRIAGE"
    );
    assert_eq!(
        updated["parameter"][1]["resource"]["reason"][0]["coding"][0]["code"],
        "TRIAGE"
    );

    // A022: the provider cancels a booked appointment to arrange another; the slot is freed.
    let booked = refer(&env, &referrer, "HEART_FAILURE", &["20001"]).await;
    let (_, page) = slots(&env, &referrer, "20001", 5, 1).await;
    let total = page["total"].as_u64().unwrap();
    let slot = first_slot(&page);
    let (status, _, _) = env
        .post(
            &referrer,
            "/STU3/Appointment",
            None,
            &appointment(&booked, 1, "20001", "booked", book_extra(&slot)),
        )
        .await;
    assert_eq!(status, 201);
    let later = json!({"resourceType": "Parameters", "parameter": [
        {"name": "comments", "valueString": "Please contact patient to rebook"},
        {"name": "appointmentCancelledInPAS", "valueBoolean": true}]});
    let (status, _, changed) = env
        .post(
            &provider,
            &format!("/STU3/ReferralRequest/{booked}/$ers.cancelAppointmentActionLater"),
            Some("W/\"2\""),
            &later,
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(state(&changed), "TRIAGED_PROVIDER_TO_ACTION");
    let (_, page) = slots(&env, &referrer, "20001", 5, 1).await;
    assert_eq!(page["total"].as_u64().unwrap(), total);

    // A006 names its deprecation and its sunset.
    let response = referrer
        .apply(
            env.client
                .get(env.url("/STU3/Binary/6b1bd3b2-0000-4000-8000-000000000000")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["deprecation"], "@1738368000");
    assert!(response.headers().contains_key("sunset"));
}

#[tokio::test]
async fn a_provider_attaches_files_to_its_triage_outcome() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let ubrn = refer(&env, &referrer, "HEART_FAILURE", &["20001", "20002"]).await;
    let (status, _, sent) = env
        .post(
            &referrer,
            "/STU3/Appointment",
            None,
            &appointment(&ubrn, 1, "20002", "proposed", review_reason("TRIAGE")),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    // The provider uploads its advice for this referral (A020).
    let upload = |referral: &str| {
        provider
            .apply(env.client.post(env.url("/STU3/Binary")))
            .header("content-type", "application/pdf")
            .header("NHSD-eRS-File-Name", "advice.pdf")
            .header("NHSD-eRS-Referral-ID", referral)
            .body(b"%PDF-1.4\n% advice\n".to_vec())
            .send()
    };
    let response = upload(&ubrn).await.unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let file = location.rsplit('/').next().unwrap().to_owned();

    let outcome = |kind: &str, file: &str| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "reviewOutcome", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewOutcome-1", "code": "RETURN_TO_REFERRER_WITH_ADVICE"}},
            {"name": "reviewComments", "valueString": "See the attached advice"},
            {"name": "reviewAttachmentFile", "resource": {
                "resourceType": "DocumentReference",
                "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-DocumentReference-1"]},
                "type": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AttachmentType-1", "code": kind}]},
                "status": "current",
                "indexed": "2026-12-01T10:00:00.000Z",
                "description": "Advice for the GP",
                "content": [{"attachment": {"url": format!("Binary/{file}")}}],
            }},
        ]})
    };
    let path = format!("/STU3/ReferralRequest/{ubrn}/$ers.recordReviewOutcome");
    let (version, _) = version_of(&env, &provider, &ubrn).await;
    let if_match = format!("W/\"{version}\"");
    // A referrer's file type, and a file never uploaded, are refused; nothing changes.
    let (status, _, refused) = env
        .post(
            &provider,
            &path,
            Some(&if_match),
            &outcome("REFERRER", &file),
        )
        .await;
    assert_eq!((status, code(&refused)), (422, "INVALID_VALUE"));
    let (status, _, refused) = env
        .post(
            &provider,
            &path,
            Some(&if_match),
            &outcome("PROVIDER", "7d9f0c1e-2b3a-4c5d-8e6f-0a1b2c3d4e5f"),
        )
        .await;
    assert_eq!((status, code(&refused)), (422, "REFERENCE_NOT_FOUND"));

    let (status, _, returned) = env
        .post(
            &provider,
            &path,
            Some(&if_match),
            &outcome("PROVIDER", &file),
        )
        .await;
    assert_eq!(status, 200, "{returned}");
    let document = returned["contained"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == format!("DocumentReference-{file}").as_str())
        .expect("the attachment is on the referral");
    assert_eq!(document["type"]["coding"][0]["code"], "PROVIDER");
    assert_eq!(document["description"], "Advice for the GP");
    assert!(
        returned["supportingInfo"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["reference"] == format!("#DocumentReference-{file}").as_str())
    );
    // The referrer reads the advice file through the referral (A042 redirects to it).
    let response = referrer
        .apply(env.client.get(env.url(&format!("/R4/Binary/{file}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "followed to the signed URL");
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        b"%PDF-1.4\n% advice\n"
    );
}

/// An `eRS-DocumentReference-1` naming an A020 upload, attached as `kind`.
fn attached_file(name: &str, kind: &str, file: &str) -> Value {
    json!({"name": name, "resource": {
        "resourceType": "DocumentReference",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-DocumentReference-1"]},
        "type": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AttachmentType-1", "code": kind}]},
        "status": "current",
        "indexed": "2026-12-01T10:00:00.000Z",
        "content": [{"attachment": {"url": format!("Binary/{file}")}}],
    }})
}

/// Asks the cardiology A&G service (20002) a question as `referrer` (A044); the request's UBRN.
async fn ask_advice(env: &Env, referrer: &As, authorised: bool, question: &str) -> String {
    let (status, _, created) = env
        .post(
            referrer,
            "/STU3/CommunicationRequest/$ers.createAdviceAndGuidance",
            None,
            &advice_body(&["20002"], authorised, question),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    created["parameter"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The provider's A&G worklist reads only the requests awaiting that provider, by an index; a
/// request stored before that index existed (here: its index rows taken away, and the
/// migration mark with them) is indexed on the next fetch and listed.
#[tokio::test]
async fn the_advice_worklist_finds_requests_stored_before_it_was_indexed() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let ubrn = ask_advice(&env, &referrer, false, "Is this murmur innocent?").await;
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "listType", "valueCodeableConcept": {"coding": [{
        "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-CommunicationListSelector-1", "code": "ADVICE_AND_GUIDANCE_REQUESTS"}]}}]});
    let listed = |list: &Value| {
        list["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["item"]["reference"] == format!("CommunicationRequest/{ubrn}"))
    };
    let path = "/STU3/CommunicationRequest/$ers.fetchworklist";
    let (status, _, list) = env.post(&provider, path, None, &body).await;
    assert_eq!(status, 200, "{list}");
    assert!(listed(&list), "{list}");
    // The referrer's organisation is not the provider: nothing awaits it.
    let (status, _, list) = env.post(&referrer, path, None, &body).await;
    assert!(status == 403 || !listed(&list), "{status} {list}");

    // As an older database holds it: no index rows, no migration mark.
    let stored = env
        .store
        .read("ers-int", "AdviceRequest", &ubrn)
        .await
        .unwrap()
        .unwrap();
    let document: Value = serde_json::from_str(stored.body.as_deref().unwrap()).unwrap();
    let id = ubrn.clone();
    env.store
        .write(move |tx| {
            Box::pin(async move {
                tx.put(
                    "ers-int",
                    "AdviceRequest",
                    &id,
                    document,
                    &[],
                    carehub_store::Expect::Any,
                )
                .await?;
                tx.delete(
                    "ers-int",
                    "Migration",
                    "advice-worklist-index",
                    carehub_store::Expect::Any,
                )
                .await?;
                Ok::<_, carehub_store::StoreError>(())
            })
        })
        .await
        .unwrap();
    let (status, _, list) = env.post(&provider, path, None, &body).await;
    assert_eq!(status, 200, "{list}");
    assert!(listed(&list), "{list}");
    let mark = env
        .store
        .read("ers-int", "Migration", "advice-worklist-index")
        .await
        .unwrap()
        .unwrap();
    assert!(!mark.is_deleted());
}

#[tokio::test]
async fn advice_and_guidance_carries_files_both_ways() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let upload = |side: &As, referral: Option<&str>, body: &'static [u8]| {
        let mut request = side
            .apply(env.client.post(env.url("/STU3/Binary")))
            .header("content-type", "application/pdf")
            .header("NHSD-eRS-File-Name", "file.pdf")
            .body(body.to_vec());
        if let Some(ubrn) = referral {
            request = request.header("NHSD-eRS-Referral-ID", ubrn);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201);
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            location.rsplit('/').next().unwrap().to_owned()
        }
    };
    // A044: the question goes with a file uploaded for it (no request exists yet).
    let question = upload(&referrer, None, b"%PDF-1.4\n% lipids\n").await;
    let mut body = advice_body(&["20002"], false, "Lipids attached: start a statin?");
    body["parameter"]
        .as_array_mut()
        .unwrap()
        .push(attached_file(
            "requestAttachmentFile",
            "ADVICE_REQUEST",
            &question,
        ));
    let (status, _, created) = env
        .post(
            &referrer,
            "/STU3/CommunicationRequest/$ers.createAdviceAndGuidance",
            None,
            &body,
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let request = &created["parameter"][0]["resource"];
    let ubrn = request["id"].as_str().unwrap().to_owned();
    assert_eq!(
        request["payload"][0]["contentReference"]["reference"],
        format!("#DocumentReference-{question}").as_str()
    );
    let message = &created["parameter"][1]["resource"];
    assert!(
        message["contained"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"]["coding"][0]["code"] == "ADVICE_REQUEST")
    );
    // The provider reads it through the request.
    let response = provider
        .apply(env.client.get(env.url(&format!("/R4/Binary/{question}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        b"%PDF-1.4\n% lipids\n"
    );

    // A026: the guidance goes with a file uploaded for this request; one that was not is refused.
    let stray = upload(&provider, None, b"%PDF-1.4\n% stray\n").await;
    let advice_file = upload(&provider, Some(&ubrn), b"%PDF-1.4\n% advice\n").await;
    let answer = |file: &str| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "guidanceOutcome", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-GuidanceResponseOutcome-1", "code": "RETURN_TO_REFERRER_WITH_ADVICE"}},
            {"name": "guidance", "valueString": "Start a statin: see the attached plan"},
            {"name": "updatedPriority", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "code": "ROUTINE"}},
            {"name": "guidanceIntendedRecommendation", "valueCoding": {
                "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-GuidanceIntendedRecommendation-1", "code": "ADVICE_ONLY_NO_REFERRAL_RECOMMENDED"}},
            attached_file("guidanceAttachmentFile", "GUIDANCE_RESPONSE", file),
        ]})
    };
    let respond = format!("/STU3/CommunicationRequest/{ubrn}/$ers.sendCommunicationToRequester");
    let (status, _, refused) = env
        .post(&provider, &respond, Some("W/\"1\""), &answer(&stray))
        .await;
    assert_eq!((status, code(&refused)), (422, "INAPPROPRIATE_VALUE"));
    let (status, _, answered) = env
        .post(&provider, &respond, Some("W/\"1\""), &answer(&advice_file))
        .await;
    assert_eq!(status, 200, "{answered}");
    let reply = &answered["parameter"][1]["resource"];
    assert_eq!(
        reply["payload"][0]["contentReference"]["reference"],
        format!("#DocumentReference-{advice_file}").as_str()
    );
    // The referrer reads the guidance file.
    let response = referrer
        .apply(
            env.client
                .get(env.url(&format!("/R4/Binary/{advice_file}"))),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_conversion_takes_files_for_the_guidance_and_for_the_referral() {
    let env = spawn().await;
    let Sides { referrer, provider } = sides(&env).await;
    let ubrn = ask_advice(&env, &referrer, true, "Please see").await;
    let upload = |body: &'static [u8]| {
        let request = provider
            .apply(env.client.post(env.url("/STU3/Binary")))
            .header("content-type", "application/pdf")
            .header("NHSD-eRS-File-Name", "file.pdf")
            .header("NHSD-eRS-Referral-ID", &ubrn)
            .body(body.to_vec());
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201);
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            location.rsplit('/').next().unwrap().to_owned()
        }
    };
    let guidance_file = upload(b"%PDF-1.4\n% guidance\n").await;
    let review_file = upload(b"%PDF-1.4\n% booking notes\n").await;
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "createFrom", "valueReference": {"reference": format!("CommunicationRequest/{ubrn}/_history/1")}},
        {"name": "guidance", "valueString": "Seen in clinic: book a lipid review"},
        {"name": "newReferralPriority", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "code": "URGENT"}},
        {"name": "reviewComments", "valueString": "Book within two weeks"},
        attached_file("guidanceAttachmentFile", "GUIDANCE_RESPONSE", &guidance_file),
        attached_file("reviewAttachmentFile", "PROVIDER", &review_file),
    ]});
    let (status, _, referral) = env
        .post(
            &provider,
            "/STU3/ReferralRequest/$ers.createFromCommunicationRequestActionLater",
            None,
            &body,
        )
        .await;
    assert_eq!(status, 201, "{referral}");
    let documents: Vec<(&str, &str)> = referral["contained"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resourceType"] == "DocumentReference")
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default(),
                r["type"]["coding"][0]["code"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        documents,
        [(
            format!("DocumentReference-{review_file}").as_str(),
            "PROVIDER"
        )]
    );
    let (_, _, summary) = env
        .get(&referrer, &format!("/STU3/CommunicationRequest/{ubrn}"))
        .await;
    assert!(
        summary["payload"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["contentReference"]["reference"]
                == format!("#DocumentReference-{guidance_file}").as_str())
    );
    // The referrer reads both.
    for file in [&guidance_file, &review_file] {
        let response = referrer
            .apply(env.client.get(env.url(&format!("/R4/Binary/{file}"))))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{file}");
    }
}
