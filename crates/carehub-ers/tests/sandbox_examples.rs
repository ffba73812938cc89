//! The ids the official specification's examples use are seeded in the sandbox: a supplier who
//! sends a request with the same meaning as a documented example, to the UBRN it names at the
//! version the sandbox holds, gets the documented kind of answer instead of
//! `REFERENCE_NOT_FOUND`. The bodies are built here; only the ids come from the examples.

mod common;

use common::*;
use serde_json::{Value, json};

/// The named clinician of the examples.
const CLINICIAN: &str = "021600556514";
/// The NOT_BOOKED referral the examples write to, and the version the sandbox holds it at.
const UNBOOKED: &str = "000000070000";
const VERSION: &str = "W/\"5\"";

async fn sandbox() -> Env {
    let env = spawn().await;
    let repo = carehub_ers::repo::Repo::new(env.store.clone(), "ers-sandbox").with_clock(env.clock);
    assert!(
        carehub_ers::seed::seed_sandbox(&repo, env.clock.now_micros())
            .await
            .unwrap()
    );
    env
}

fn sandbox_url(env: &Env, path: &str) -> String {
    format!("{}/sandbox/referrals/FHIR{path}", env.url)
}

async fn get(env: &Env, path: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let mut request = env.client.get(sandbox_url(env, path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.send().await.unwrap()).await
}

async fn post(
    env: &Env,
    path: &str,
    function: &str,
    if_match: Option<&str>,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let mut request = env
        .client
        .post(sandbox_url(env, path))
        .header("content-type", "application/fhir+json")
        .header("NHSD-eRS-Business-Function", function)
        .body(body.to_string());
    if let Some(version) = if_match {
        request = request.header("if-match", version);
    }
    answer(request.send().await.unwrap()).await
}

fn coding(system: &str, code: &str) -> Value {
    json!({"system": system, "code": code})
}

fn priority(code: &str) -> Value {
    json!({"name": "priority", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", code)})
}

fn cardiology() -> Value {
    json!({"name": "specialty", "valueCoding": coding("_baseUrl_/STU3/CodeSystem/SPECIALTY", "CARDIOLOGY")})
}

fn heart_failure() -> Value {
    json!({"name": "clinicType", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-ClinicType-1", "HEART_FAILURE")})
}

fn named_clinician() -> Value {
    json!({"name": "namedClinician", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/sds-user-id", "value": CLINICIAN}})
}

fn age_and_gender(appropriate: bool) -> Value {
    json!({"name": "ageAndGenderAppropriate", "valueBoolean": appropriate})
}

fn search_criteria(parameter: Vec<Value>) -> Value {
    json!({
        "resourceType": "Parameters",
        "id": "criteria",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ServiceSearchCriteria-Parameters-1"]},
        "parameter": parameter,
    })
}

/// Urgent heart failure cardiology, as most of the examples' shortlists were chosen.
fn urgent_heart_failure() -> Value {
    search_criteria(vec![
        priority("URGENT"),
        cardiology(),
        heart_failure(),
        age_and_gender(false),
    ])
}

fn routine_heart_failure() -> Value {
    search_criteria(vec![
        priority("ROUTINE"),
        cardiology(),
        heart_failure(),
        age_and_gender(false),
    ])
}

/// An eRS-ChangeShortlist-Parameters-1 (A031, A032).
fn change_body(shortlist: Value, letter: &str, reminder_days: u32) -> Value {
    json!({
        "resourceType": "Parameters",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ChangeShortlist-Parameters-1"]},
        "parameter": [
            {"name": "shortlist", "resource": shortlist},
            {"name": "intentionToAddReferralLetter", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralLetterIntention-1", letter)},
            {"name": "firstReminderLetterFollowUpDays", "valueUnsignedInt": reminder_days},
        ],
    })
}

/// The service ids on a referral's shortlist.
fn shortlisted(referral: &Value) -> Vec<String> {
    referral["contained"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["resourceType"] == "List")
        .flat_map(|list| list["entry"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["item"]["identifier"]["value"].as_str().map(str::to_owned))
        .collect()
}

fn codes(concepts: &Value) -> Vec<&str> {
    concepts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect()
}

/// Slots of a service: `(status, total, slot resources)`.
async fn slots(env: &Env, query: &str) -> (u16, u64, Vec<Value>, Value) {
    let (status, _, bundle) = get(
        env,
        &format!("/STU3/Slot?{query}"),
        &[("NHSD-eRS-Comm-Rule-Org", GP)],
    )
    .await;
    let slots = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"] == "Slot")
        .map(|e| e["resource"].clone())
        .collect();
    (
        status,
        bundle["total"].as_u64().unwrap_or(u64::MAX),
        slots,
        bundle,
    )
}

#[tokio::test]
async fn a015_answers_the_no_slots_service_with_an_empty_page() {
    let env = sandbox().await;
    for priority in ["ROUTINE", "URGENT", "TWO_WEEK_WAIT"] {
        let (status, total, found, bundle) = slots(
            &env,
            &format!(
                "schedule.actor:HealthcareService=10000&appointmentType={priority}&status=free&_count=20&page=1"
            ),
        )
        .await;
        assert_eq!((status, total), (200, 0), "{priority}: {bundle}");
        assert!(found.is_empty(), "{bundle}");
    }
    // The slot service of the minimum scenario still has slots.
    let (status, total, found, bundle) = slots(
        &env,
        "schedule.actor:HealthcareService=12000&appointmentType=ROUTINE&status=free&_count=20&page=1",
    )
    .await;
    assert_eq!(status, 200, "{bundle}");
    assert!(total > 0 && !found.is_empty(), "{bundle}");
    // And the service is in the directory, directly bookable.
    let (status, _, service) = get(&env, "/R4/HealthcareService/10000", &[]).await;
    assert_eq!(status, 200, "{service}");
    assert!(
        service.to_string().contains("DIRECTLY_BOOKABLE"),
        "{service}"
    );
}

#[tokio::test]
async fn every_service_the_examples_name_is_in_the_directory() {
    let env = sandbox().await;
    let mut ids: Vec<String> = [
        "10000", "11001", "11003", "11004", "11008", "11021", "50001", "51002",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    ids.extend((12000..12020).map(|n| n.to_string()));
    // A035 takes at most 20 ids at a time.
    for chunk in ids.chunks(20) {
        let (status, _, bundle) = get(
            &env,
            &format!("/R4/HealthcareService?_id={}", chunk.join(",")),
            &[],
        )
        .await;
        assert_eq!(status, 200, "{bundle}");
        assert_eq!(
            bundle["total"].as_u64(),
            Some(chunk.len() as u64),
            "{bundle}"
        );
    }
}

#[tokio::test]
async fn a010_finds_the_service_of_the_named_clinician() {
    let env = sandbox().await;
    let search = |criteria: Value| {
        json!({
            "resourceType": "Parameters",
            "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-PatientServiceSearch-Parameters-1"]},
            "parameter": [
                {"name": "requestType", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-RequestType-1", "APPOINTMENT_REQUEST")},
                {"name": "sortBy", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-SortBy-1", "DISTANCE")},
                {"name": "patient", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}},
                {"name": "searchCriteria", "resource": criteria},
            ],
        })
    };
    let found = |list: &Value| -> Vec<String> {
        list["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["item"]["identifier"]["value"].as_str().map(str::to_owned))
            .collect()
    };
    // As the example does: by the named clinician alone, and with a specialty too.
    for with_specialty in [false, true] {
        let mut criteria = vec![priority("URGENT")];
        if with_specialty {
            criteria.push(cardiology());
        }
        criteria.extend([named_clinician(), age_and_gender(true)]);
        let (status, _, list) = post(
            &env,
            "/STU3/HealthcareService/$ers.searchHealthcareServicesForPatient",
            "REFERRING_CLINICIAN",
            None,
            &search(search_criteria(criteria)),
        )
        .await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(found(&list), ["11008"], "{list}");
    }
    // Routine referrals find the clinician's twenty clinics at R69 and the triage service too.
    let (status, _, list) = post(
        &env,
        "/STU3/HealthcareService/$ers.searchHealthcareServicesForPatient",
        "REFERRING_CLINICIAN",
        None,
        &search(search_criteria(vec![
            priority("ROUTINE"),
            cardiology(),
            named_clinician(),
            age_and_gender(true),
        ])),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let ids = found(&list);
    assert_eq!(ids.len(), 22, "{ids:?}");
    assert!(ids.iter().any(|id| id == "11004") && ids.iter().any(|id| id == "12019"));
}

#[tokio::test]
async fn a011_creates_referrals_with_the_examples_shortlists() {
    let env = sandbox().await;
    let create = "/STU3/ReferralRequest/$ers.createReferral";
    // The twenty services, chosen with every criterion the example gives (its pathway start,
    // more than a year ago now, is left out).
    let twenty: Vec<String> = (12000..12020).map(|n| n.to_string()).collect();
    let twenty: Vec<&str> = twenty.iter().map(String::as_str).collect();
    let criteria = search_criteria(vec![
        priority("ROUTINE"),
        cardiology(),
        heart_failure(),
        json!({"name": "indicativeAppointmentWaitTimeLimit", "valueUnsignedInt": 50}),
        json!({"name": "postcode", "valueString": "LS1 2UT"}),
        json!({"name": "distanceLimit", "valueUnsignedInt": 123}),
        json!({"name": "clinicalTerm", "valueCoding": coding("http://snomed.info/sct", "1003")}),
        named_clinician(),
        age_and_gender(true),
        json!({"name": "organisation", "valueIdentifier": {"system": "https://directory.spineservices.nhs.uk/STU3/Organization", "value": "R69"}}),
    ]);
    let (status, _, created) = post(
        &env,
        create,
        "REFERRING_CLINICIAN",
        None,
        &create_body(PATIENT, shortlist(criteria, &twenty), vec![]),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(shortlisted(&created), twenty);

    // A mixed shortlist: a directly bookable service and a triage service.
    let (status, _, created) = post(
        &env,
        create,
        "REFERRING_CLINICIAN",
        None,
        &create_body(
            PATIENT,
            shortlist(urgent_heart_failure(), &["11002", "51002"]),
            vec![],
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(shortlisted(&created), ["11002", "51002"]);
}

#[tokio::test]
async fn a031_changes_the_shortlist_to_the_examples_services() {
    let env = sandbox().await;
    let path = format!("/STU3/ReferralRequest/{UNBOOKED}/$ers.changeShortlist");
    for (criteria, services, letter, days) in [
        (
            urgent_heart_failure(),
            &["11000", "11001", "11002", "11003", "11008"][..],
            "NEED_TO_ADD_LATER",
            0,
        ),
        (
            urgent_heart_failure(),
            &["11002", "51002"][..],
            "NEED_TO_ADD_LATER",
            0,
        ),
        (
            routine_heart_failure(),
            &["11004", "11002"][..],
            "NOT_INTENDING_TO_ADD",
            1,
        ),
    ] {
        let (status, _, changed) = post(
            &env,
            &path,
            "REFERRING_CLINICIAN",
            Some(VERSION),
            &change_body(shortlist(criteria, services), letter, days),
        )
        .await;
        assert_eq!(status, 200, "{services:?}: {changed}");
        assert_eq!(shortlisted(&changed), services);
    }
}

#[tokio::test]
async fn a021_and_a032_send_to_the_examples_triage_service() {
    let env = sandbox().await;
    let (status, _, created) = post(
        &env,
        "/STU3/ReferralRequest/$ers.createReferralAndSendForTriage",
        "REFERRING_CLINICIAN",
        None,
        &create_body(
            PATIENT,
            shortlist(routine_heart_failure(), &["11004"]),
            vec![],
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(state(&created), "AWAITING_TRIAGE");
    let (status, _, sent) = post(
        &env,
        &format!("/STU3/ReferralRequest/{UNBOOKED}/$ers.changeShortlistAndSendForTriage"),
        "REFERRING_CLINICIAN",
        Some(VERSION),
        &change_body(
            shortlist(routine_heart_failure(), &["11004"]),
            "NOT_INTENDING_TO_ADD",
            0,
        ),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
}

fn appointment(status: &str, service: &str, extra: Value) -> Value {
    let mut body = json!({
        "resourceType": "Appointment",
        "meta": {"profile": [
            "https://fhir.nhs.uk/STU3/StructureDefinition/eRS-Appointment-1",
            "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Appointment-1"]},
        "language": "en",
        "status": status,
        "description": "e-Referral Appointment",
        "incomingReferral": [{"reference": format!("ReferralRequest/{UNBOOKED}/_history/5")}],
        "participant": [
            {"actor": {"identifier": {"system": "http://fhir.nhs.net/Id/ers-service", "value": service}}, "status": "accepted"},
            {"actor": {"identifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}}, "status": "accepted"},
        ],
    });
    for (key, value) in extra.as_object().unwrap() {
        if key == "participant" {
            body["participant"]
                .as_array_mut()
                .unwrap()
                .extend(value.as_array().unwrap().iter().cloned());
        } else {
            body[key] = value.clone();
        }
    }
    body
}

fn review_reason(code: &str) -> Value {
    json!([{"coding": [coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewReason-1", code)]}])
}

#[tokio::test]
async fn a016_books_and_defers_at_the_examples_services() {
    let env = sandbox().await;
    let (status, _, triage) = post(
        &env,
        "/STU3/Appointment",
        "REFERRING_CLINICIAN",
        None,
        &appointment(
            "proposed",
            "50001",
            json!({"reason": review_reason("TRIAGE")}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{triage}");
    let (status, _, deferred) = post(
        &env,
        "/STU3/Appointment",
        "REFERRING_CLINICIAN",
        None,
        &appointment(
            "proposed",
            "11000",
            json!({"reason": review_reason("BOOKING_ATTEMPT_PROBLEM"), "comment": "Booking failed"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{deferred}");

    // A slot of the named clinician at 11008, booked with the clinician.
    let (status, _, found, bundle) = slots(
        &env,
        &format!(
            "schedule.actor:HealthcareService=11008&schedule.actor:Practitioner={CLINICIAN}&appointmentType=ROUTINE&status=free&_count=5&page=1"
        ),
    )
    .await;
    assert_eq!(status, 200, "{bundle}");
    let slot = found.first().expect("a slot of the named clinician");
    let (status, _, booked) = post(
        &env,
        "/STU3/Appointment",
        "REFERRING_CLINICIAN",
        None,
        &appointment(
            "booked",
            "11008",
            json!({
                "start": slot["start"],
                "end": slot["end"],
                "slot": [{"reference": format!("Slot/{}", slot["id"].as_str().unwrap())}],
                "participant": [{
                    "type": {"coding": [{"system": "http://hl7.org/fhir/ValueSet/encounter-participant-type", "code": "CON"}]},
                    "actor": {"identifier": {"system": "http://fhir.nhs.net/Id/sds-user-id", "value": CLINICIAN}},
                    "status": "accepted"}],
            }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked["status"], "booked");
}

/// A016's examples book the sandbox PAS's numbered slots on their own (2022) dates, which do
/// not age in the sandbox, and defer naming one that is no longer available.
#[tokio::test]
async fn a016_books_the_examples_numbered_slots_on_their_dates() {
    let env = sandbox().await;
    let slot = |id: &str| json!([{"reference": format!("Slot/{id}")}]);
    let (status, _, booked) = post(
        &env,
        "/STU3/Appointment",
        "REFERRING_CLINICIAN",
        None,
        &appointment(
            "booked",
            "11000",
            json!({"start": "2022-07-11T12:00:00+00:00", "end": "2022-07-11T13:00:00+00:00", "slot": slot("11000021")}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked["slot"], slot("11000021"), "{booked}");
    assert_eq!(booked["start"], "2022-07-11T12:00:00.000Z", "{booked}");

    let consultant = json!([{
        "type": {"coding": [{"system": "http://hl7.org/fhir/ValueSet/encounter-participant-type", "code": "CON"}]},
        "actor": {"identifier": {"system": "http://fhir.nhs.net/Id/sds-user-id", "value": CLINICIAN}},
        "status": "accepted"}]);
    let named = |participant: Value| {
        appointment(
            "booked",
            "11008",
            json!({"start": "2022-07-11T13:15:00+00:00", "end": "2022-07-11T14:15:00+00:00",
                   "slot": slot("11008006"), "participant": participant}),
        )
    };
    let (status, _, booked) = post(
        &env,
        "/STU3/Appointment",
        "REFERRING_CLINICIAN",
        None,
        &named(consultant),
    )
    .await;
    assert_eq!(status, 201, "{booked}");
    // The rules still hold for numbered slots: a named clinician's slot needs the clinician.
    let (status, _, refused) = post(
        &env,
        "/STU3/Appointment",
        "REFERRING_CLINICIAN",
        None,
        &named(json!([])),
    )
    .await;
    assert_eq!(
        (status, code(&refused)),
        (422, "MISSING_VALUE"),
        "{refused}"
    );
    // ...and the dates must be the slot's.
    let (status, _, refused) = post(
        &env,
        "/STU3/Appointment",
        "REFERRING_CLINICIAN",
        None,
        &appointment(
            "booked",
            "11000",
            json!({"start": "2022-07-11T12:15:00+00:00", "end": "2022-07-11T13:15:00+00:00", "slot": slot("11000021")}),
        ),
    )
    .await;
    assert_eq!(
        (status, code(&refused)),
        (422, "INAPPROPRIATE_SLOT"),
        "{refused}"
    );

    let (status, _, deferred) = post(
        &env,
        "/STU3/Appointment",
        "REFERRING_CLINICIAN",
        None,
        &appointment(
            "proposed",
            "11000",
            json!({"reason": review_reason("SLOT_NOT_AVAILABLE"), "slot": slot("11000022"),
                   "comment": "Patient can only attend at 3pm"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{deferred}");
    assert_eq!(deferred["status"], "proposed", "{deferred}");
}

/// A016's deferral for want of slots goes to `11021`, which has none; A015's example asks
/// `11000` for a named clinician it does not have, which the sandbox ignores, as the official
/// one does.
#[tokio::test]
async fn a016_defers_for_want_of_slots_and_a015_ignores_a_clinician_the_service_lacks() {
    let env = sandbox().await;
    let (status, _, deferred) = post(
        &env,
        "/STU3/Appointment",
        "REFERRING_CLINICIAN",
        None,
        &appointment(
            "proposed",
            "11021",
            json!({"reason": review_reason("NO_SLOTS_AT_SERVICE"), "comment": "There are no slots"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{deferred}");

    let (status, total, found, bundle) = slots(
        &env,
        "schedule.actor:HealthcareService=11000&schedule.actor:Practitioner=921600556514&appointmentType=ROUTINE&status=free&_count=5&page=1",
    )
    .await;
    assert_eq!((status, total, found.len()), (200, 12, 5), "{bundle}");
    // A clinician the service does have still narrows the search.
    let (status, _, found, bundle) = slots(
        &env,
        "schedule.actor:HealthcareService=14000&schedule.actor:Practitioner=921600556514&appointmentType=ROUTINE&status=free&_count=5&page=1",
    )
    .await;
    assert_eq!(status, 200, "{bundle}");
    assert!(
        found.iter().all(|slot| slot["schedule"]["reference"]
            .as_str()
            .is_some_and(|s| s.ends_with("921600556514"))),
        "{bundle}"
    );
}

/// A034's examples cancel appointments `70003` and `70004`, which A038's scenarios show
/// deferred to triage and answered by triage; the sandbox cancels them as asked, with the
/// reason rules of every cancellation.
#[tokio::test]
async fn a034_cancels_the_examples_appointments() {
    let env = sandbox().await;
    let cancel = |id: &str, reason: &str, comment: Option<&str>| {
        let mut body = json!({
            "resourceType": "Appointment",
            "id": id,
            "status": "cancelled",
            "description": "e-Referral Appointment",
            "reason": [{"coding": [coding("_baseUrl_/STU3/CodeSystem/APPOINTMENT-CANCELLATION-REASON", reason)]}],
            "incomingReferral": [{"reference": "ReferralRequest/000000070004/_history/6"}],
            "participant": [{"actor": {"identifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}}, "status": "accepted"}],
        });
        if let Some(comment) = comment {
            body["comment"] = json!(comment);
        }
        let request = env
            .client
            .put(sandbox_url(&env, &format!("/STU3/Appointment/{id}")))
            .header("content-type", "application/fhir+json")
            .header("NHSD-eRS-Business-Function", "REFERRING_CLINICIAN")
            .header("if-match", VERSION)
            .body(body.to_string());
        async move { answer(request.send().await.unwrap()).await }
    };
    let (status, _, cancelled) = cancel("70003", "PATIENT_ILL", None).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let (status, _, cancelled) = cancel(
        "70004",
        "PATIENT_APPOINTMENT_CANCELLATION_OTHER",
        Some("Cancellation Comment"),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["comment"], "Cancellation Comment", "{cancelled}");
    let (status, _, refused) =
        cancel("70005", "PATIENT_APPOINTMENT_CANCELLATION_OTHER", None).await;
    assert_eq!(
        (status, code(&refused)),
        (422, "MISSING_VALUE"),
        "{refused}"
    );
    // Nothing is kept: A038 still shows the scenario.
    let (status, _, unchanged) = get(&env, "/STU3/Appointment/70003", &[]).await;
    assert_eq!(status, 200, "{unchanged}");
    assert_ne!(unchanged["status"], "cancelled", "{unchanged}");
}

#[tokio::test]
async fn a024_reads_the_example_advice_request_awaiting_the_provider() {
    let env = sandbox().await;
    let (status, etag, advice) = get(&env, "/STU3/CommunicationRequest/000049146177", &[]).await;
    assert_eq!(status, 200, "{advice}");
    assert_eq!(etag.as_deref(), Some(VERSION));
    assert_eq!(
        advice["category"][0]["coding"][0]["code"], "PROVIDER_RESPONSE_REQUIRED",
        "{advice}"
    );
}

#[tokio::test]
async fn a004_serves_the_official_reason_lists() {
    let env = sandbox().await;
    let (status, _, appointment) = get(
        &env,
        "/STU3/CodeSystem/APPOINTMENT-CANCELLATION-REASON",
        &[],
    )
    .await;
    assert_eq!(status, 200, "{appointment}");
    let listed = codes(&appointment["concept"]);
    assert_eq!(listed.len(), 36);
    assert!(listed.contains(&"PATIENT_APPOINTMENT_CANCELLATION_OTHER"));
    let other = appointment["concept"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "PATIENT_APPOINTMENT_CANCELLATION_OTHER")
        .unwrap();
    assert!(
        other["property"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["code"] == "commentIsMandatory" && p["valueBoolean"] == true),
        "{other}"
    );

    let (status, _, referral) =
        get(&env, "/STU3/CodeSystem/REFERRAL-CANCELLATION-REASON", &[]).await;
    assert_eq!(status, 200, "{referral}");
    let listed = codes(&referral["concept"]);
    assert_eq!(listed.len(), 18);
    assert!(listed.contains(&"PROVIDER_CANCELLATION"));
    assert!(listed.contains(&"PATIENT_APPOINTMENT_CANCELLATION_OTHER"));

    let (status, _, non_attendance) = get(
        &env,
        "/STU3/CodeSystem/APPOINTMENT-NON-ATTENDANCE-REASON",
        &[],
    )
    .await;
    assert_eq!(status, 200, "{non_attendance}");
    let listed = codes(&non_attendance["concept"]);
    assert_eq!(listed.len(), 8);
    assert!(listed.contains(&"OTHER_MIGRATION_FROM_CAB"));

    // A reason in the list that no business function may cancel a referral with is refused.
    let (status, _, refused) = post(
        &env,
        &format!("/STU3/ReferralRequest/{UNBOOKED}/$ers.cancelReferral"),
        "REFERRING_CLINICIAN",
        Some(VERSION),
        &cancel_body("PROVIDER_CANCELLATION", Some("Clinic closed")),
    )
    .await;
    assert_eq!(
        (status, code(&refused)),
        (422, "INAPPROPRIATE_VALUE"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_sandbox_seeded_before_the_examples_gets_them_added_once() {
    let env = sandbox().await;
    let repo = carehub_ers::repo::Repo::new(env.store.clone(), "ers-sandbox").with_clock(env.clock);
    let now = env.clock.now_micros();
    assert!(!carehub_ers::seed::seed_sandbox(&repo, now).await.unwrap());
    // As a sandbox seeded by an earlier release: no example services, no example advice.
    env.store
        .write(|tx| {
            Box::pin(async move {
                tx.delete(
                    "ers-sandbox",
                    "Service",
                    "10000",
                    carehub_store::Expect::Any,
                )
                .await?;
                tx.delete(
                    "ers-sandbox",
                    "AdviceRequest",
                    "000049146177",
                    carehub_store::Expect::Any,
                )
                .await?;
                Ok::<_, carehub_store::StoreError>(())
            })
        })
        .await
        .unwrap();
    let (status, _, gone) = get(&env, "/STU3/CommunicationRequest/000049146177", &[]).await;
    assert_ne!(status, 200, "{gone}");
    assert!(carehub_ers::seed::seed_sandbox(&repo, now).await.unwrap());
    assert!(!carehub_ers::seed::seed_sandbox(&repo, now).await.unwrap());
    assert!(repo.service("10000").await.unwrap().is_some());
    let (status, _, advice) = get(&env, "/STU3/CommunicationRequest/000049146177", &[]).await;
    assert_eq!(status, 200, "{advice}");

    // As a sandbox seeded before the PAS numbered the examples' slots.
    let (mut service, _) = repo.service("11000").await.unwrap().unwrap();
    service.listed_slots.clear();
    repo.put_services(vec![service]).await.unwrap();
    assert!(carehub_ers::seed::seed_sandbox(&repo, now).await.unwrap());
    assert!(!carehub_ers::seed::seed_sandbox(&repo, now).await.unwrap());
    let (service, _) = repo.service("11000").await.unwrap().unwrap();
    assert_eq!(service.listed_slots.len(), 2);
}

/// The A&G request of the spec's path examples (A024, A026, A043), in the provider's turn and
/// authorised for conversion.
const EXAMPLE_ADVICE: &str = "000049146177";
/// The referral booked at a directly bookable service, awaiting the provider's review.
const BOOKED_DBS: &str = "000000070001";
/// The referral deferred to the provider.
const DEFERRED: &str = "000000070003";
/// The attachment id of A006's and A042's path examples.
const EXAMPLE_BINARY: &str = "c5d2d200-7613-4a69-9c5f-1bb68e04b8d8";

/// An `eRS-DocumentReference-1` naming an uploaded file (`Binary/{id}`) attached as `kind`.
fn document(kind: &str, id: &str, description: &str) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-DocumentReference-1"]},
        "status": "current",
        "type": {"coding": [coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-AttachmentType-1", kind)]},
        "indexed": "2025-03-10T09:30:00+00:00",
        "description": description,
        "content": [{"attachment": {"url": format!("Binary/{id}")}}],
    })
}

/// Whether an answer names file `id` anywhere (a contained DocumentReference of it).
fn names(answer: &Value, id: &str) -> bool {
    answer.to_string().contains(id)
}

fn parameters(profile: &str, parameter: Vec<Value>) -> Value {
    json!({
        "resourceType": "Parameters",
        "meta": {"profile": [format!("https://fhir.nhs.uk/STU3/StructureDefinition/{profile}")]},
        "parameter": parameter,
    })
}

#[tokio::test]
async fn a012_sets_the_examples_letter_files_on_the_example_referral() {
    let env = sandbox().await;
    let path = format!("/STU3/ReferralRequest/{UNBOOKED}/$ers.maintainReferralLetter");
    let letter = |description: &str| {
        parameters(
            "eRS-MaintainReferralLetter-Parameters-1",
            vec![json!({"name": "referralLetterFile", "resource": document(
                "REFERRER",
                "50f0c0d5-7ed1-4587-8fce-889c8685eb54",
                description,
            )})],
        )
    };
    // A first letter file, then the same file described anew (each write is rolled back).
    for description in [
        "Blood results: raised NT-proBNP",
        "Repeat blood results, for the clinic",
    ] {
        let (status, _, changed) = post(
            &env,
            &path,
            "REFERRING_CLINICIAN",
            Some(VERSION),
            &letter(description),
        )
        .await;
        assert_eq!(status, 200, "{changed}");
        assert!(
            names(&changed, "50f0c0d5-7ed1-4587-8fce-889c8685eb54"),
            "{changed}"
        );
        assert!(changed.to_string().contains(description), "{changed}");
    }
}

/// A012's two-file example names A044's example file beside the letter; the sandbox lets any
/// file it holds go with any of its records.
#[tokio::test]
async fn a012_takes_the_two_files_of_the_example() {
    let env = sandbox().await;
    let files = [
        "e1015896-92f4-4073-ad3c-5f30fca76448",
        "50f0c0d5-7ed1-4587-8fce-889c8685eb54",
    ];
    let body = parameters(
        "eRS-MaintainReferralLetter-Parameters-1",
        files
            .iter()
            .map(|id| json!({"name": "referralLetterFile", "resource": document("REFERRER", id, "Blood test results")}))
            .collect(),
    );
    for ubrn in [UNBOOKED, BOOKED_DBS] {
        let (status, _, changed) = post(
            &env,
            &format!("/STU3/ReferralRequest/{ubrn}/$ers.maintainReferralLetter"),
            "REFERRING_CLINICIAN",
            Some(VERSION),
            &body,
        )
        .await;
        assert_eq!(status, 200, "{ubrn}: {changed}");
        assert!(files.iter().all(|id| names(&changed, id)), "{changed}");
    }
    // A file the sandbox does not hold is still refused.
    let unknown = parameters(
        "eRS-MaintainReferralLetter-Parameters-1",
        vec![
            json!({"name": "referralLetterFile", "resource": document("REFERRER", "00000000-0000-4000-8000-000000000000", "x")}),
        ],
    );
    let (status, _, refused) = post(
        &env,
        &format!("/STU3/ReferralRequest/{UNBOOKED}/$ers.maintainReferralLetter"),
        "REFERRING_CLINICIAN",
        Some(VERSION),
        &unknown,
    )
    .await;
    assert_eq!(status, 422, "{refused}");
}

/// The official sandbox answers a provider's review by its body alone, and the specification
/// sends every one of them to `000000070000`, which its referrer-side examples need unbooked:
/// the sandbox answers them there as from a state that allows them, by the reviews' own rules,
/// and keeps nothing.
#[tokio::test]
async fn provider_reviews_of_the_examples_unbooked_referral_are_answered() {
    let env = sandbox().await;
    let on = |operation: &str| format!("/STU3/ReferralRequest/{UNBOOKED}/$ers.{operation}");
    let provider = "SERVICE_PROVIDER_CLINICIAN";
    let (status, _, accepted) = post(
        &env,
        &on("acceptReferral"),
        provider,
        Some(VERSION),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{accepted}");

    let reject = |reason: &str, comment: Option<&str>| {
        let mut parameter = vec![json!({"name": "rejectionReason", "valueCoding": coding(
            "_baseUrl_/STU3/CodeSystem/APPOINTMENT-CANCELLATION-REASON", reason)})];
        if let Some(comment) = comment {
            parameter.push(json!({"name": "rejectionComments", "valueString": comment}));
        }
        parameters("eRS-RejectReferral-Parameters-1", parameter)
    };
    let (status, _, rejected) = post(
        &env,
        &on("rejectReferral"),
        provider,
        Some(VERSION),
        &reject("PRIORITY_INAPPROPRIATE", None),
    )
    .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(state(&rejected), "REJECTED", "{rejected}");
    // The review's own rules still decide: this reason needs a comment.
    let (status, _, refused) = post(
        &env,
        &on("rejectReferral"),
        provider,
        Some(VERSION),
        &reject("OTHER", None),
    )
    .await;
    assert_eq!(
        (status, code(&refused)),
        (422, "MISSING_VALUE"),
        "{refused}"
    );

    let (status, _, later) = post(
        &env,
        &on("cancelAppointmentActionLater"),
        provider,
        Some(VERSION),
        &parameters(
            "eRS-cancelAppointmentActionLater-Parameters-1",
            vec![json!({"name": "comments", "valueString": "Clinic cancelled: please rebook the patient"})],
        ),
    )
    .await;
    assert_eq!(status, 200, "{later}");
    assert_eq!(state(&later), "TRIAGED_PROVIDER_TO_ACTION", "{later}");

    let (status, _, reviewed) = post(
        &env,
        &on("recordReviewOutcome"),
        provider,
        Some(VERSION),
        &parameters(
            "eRS-RecordReviewOutcome-Parameters-1",
            vec![
                json!({"name": "reviewOutcome", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewOutcome-1", "RETURN_TO_REFERRER_WITH_ADVICE")}),
                json!({"name": "reviewComments", "valueString": "Manage in primary care for now"}),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{reviewed}");
    assert_eq!(state(&reviewed), "TRIAGE_RESPONSE", "{reviewed}");

    let (status, _, cancelled) = post(
        &env,
        &on("cancelReferral"),
        provider,
        Some(VERSION),
        &cancel_body("OUTPATIENT_SERVICE_NA", Some("Service withdrawn")),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    let updated = &cancelled["parameter"][0]["resource"];
    assert_eq!(state(updated), "CANCELLED_REFERRAL", "{cancelled}");

    // Nothing was kept, and the referrer's view is as seeded.
    let (status, _, unchanged) = get(
        &env,
        &format!("/STU3/ReferralRequest/{UNBOOKED}"),
        &[("NHSD-eRS-Business-Function", "REFERRING_CLINICIAN")],
    )
    .await;
    assert_eq!(status, 200, "{unchanged}");
    assert_eq!(state(&unchanged), "NOT_BOOKED", "{unchanged}");
}

/// A026 and A027 name advice request `000000070000`, which A024 shows answered and not
/// authorised for conversion; the sandbox answers them as in the provider's turn.
#[tokio::test]
async fn a026_and_a027_answer_the_examples_advice_request_whatever_its_turn() {
    let env = sandbox().await;
    let provider = "SERVICE_PROVIDER_CLINICIAN";
    let (status, _, answered) = post(
        &env,
        &format!("/STU3/CommunicationRequest/{UNBOOKED}/$ers.sendCommunicationToRequester"),
        provider,
        Some(VERSION),
        &parameters(
            "eRS-SendCommunicationToRequester-Request-Parameters-1",
            vec![
                json!({"name": "guidanceOutcome", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-GuidanceResponseOutcome-1", "REQUIRE_FURTHER_INFORMATION")}),
                json!({"name": "guidance", "valueString": "Please send the latest lipid profile"}),
                json!({"name": "updatedPriority", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "ROUTINE")}),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{answered}");

    let (status, _, referral) = post(
        &env,
        "/STU3/ReferralRequest/$ers.createFromCommunicationRequestActionLater",
        provider,
        None,
        &parameters(
            "eRS-CreateFromCommunicationRequestActionLater-Request-Parameters-1",
            vec![
                json!({"name": "createFrom", "valueReference": {"reference": format!("CommunicationRequest/{UNBOOKED}/_history/1")}}),
                json!({"name": "guidance", "valueString": "We will see the patient"}),
                json!({"name": "newReferralPriority", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "ROUTINE")}),
                json!({"name": "reviewComments", "valueString": "Book into the lipid clinic"}),
            ],
        ),
    )
    .await;
    assert_eq!(status, 201, "{referral}");
    assert_eq!(referral["id"], UNBOOKED, "{referral}");
}

#[tokio::test]
async fn a022_cancels_for_later_action_with_the_examples_provider_files() {
    let env = sandbox().await;
    let files = [
        "b2b22a7e-b3e9-4625-8d2c-00507bfdffb5",
        "857b901d-1491-47d3-90e2-6c9f13f744dc",
    ];
    let mut parameter = vec![
        json!({"name": "comments", "valueString": "Clinic cancelled: please rebook the patient"}),
        json!({"name": "priority", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "URGENT")}),
    ];
    for (n, id) in files.iter().enumerate() {
        parameter.push(
            json!({"name": "providerAttachmentFile", "resource": document(
                "PROVIDER",
                id,
                &format!("Provider note {}", n + 1),
            )}),
        );
    }
    let (status, _, changed) = post(
        &env,
        &format!("/STU3/ReferralRequest/{BOOKED_DBS}/$ers.cancelAppointmentActionLater"),
        "SERVICE_PROVIDER_CLINICIAN",
        Some(VERSION),
        &parameters("eRS-cancelAppointmentActionLater-Parameters-1", parameter),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(state(&changed), "TRIAGED_PROVIDER_TO_ACTION", "{changed}");
    for id in files {
        assert!(names(&changed, id), "{id}: {changed}");
    }
}

#[tokio::test]
async fn a028_records_a_review_outcome_with_the_examples_provider_file() {
    let env = sandbox().await;
    let id = "a7c98bb4-c0d0-4094-b26d-8dbd1677edc8";
    let (status, _, changed) = post(
        &env,
        &format!("/STU3/ReferralRequest/{DEFERRED}/$ers.recordReviewOutcome"),
        "SERVICE_PROVIDER_CLINICIAN",
        Some(VERSION),
        &parameters(
            "eRS-RecordReviewOutcome-Parameters-1",
            vec![
                json!({"name": "reviewOutcome", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewOutcome-1", "RETURN_TO_REFERRER_WITH_ADVICE")}),
                json!({"name": "reviewComments", "valueString": "Not urgent; the attached note explains why"}),
                json!({"name": "reviewAttachmentFile", "resource": document("PROVIDER", id, "Triage advice")}),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(state(&changed), "TRIAGE_RESPONSE", "{changed}");
    assert!(names(&changed, id), "{changed}");
}

#[tokio::test]
async fn a026_answers_the_example_advice_request_with_the_examples_file() {
    let env = sandbox().await;
    let id = "19eb7224-dff3-4730-a5cb-67eac811f1a5";
    let (status, _, answered) = post(
        &env,
        &format!("/STU3/CommunicationRequest/{EXAMPLE_ADVICE}/$ers.sendCommunicationToRequester"),
        "SERVICE_PROVIDER_CLINICIAN",
        Some(VERSION),
        &parameters(
            "eRS-SendCommunicationToRequester-Request-Parameters-1",
            vec![
                json!({"name": "guidanceOutcome", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-GuidanceResponseOutcome-1", "RETURN_TO_REFERRER_WITH_ADVICE")}),
                json!({"name": "guidanceIntendedRecommendation", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-GuidanceIntendedRecommendation-1", "OTHER")}),
                json!({"name": "guidance", "valueString": "Treat as the attached guidance sets out"}),
                json!({"name": "updatedPriority", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "ROUTINE")}),
                json!({"name": "guidanceAttachmentFile", "resource": document("GUIDANCE_RESPONSE", id, "Statin guidance")}),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{answered}");
    assert!(names(&answered, id), "{answered}");
    // The attachment type's display is the specification's (`eRS-AttachmentType-1`).
    assert!(
        answered
            .to_string()
            .contains(r#""code":"GUIDANCE_RESPONSE","display":"Guidance Response""#),
        "{answered}"
    );
}

#[tokio::test]
async fn a027_converts_the_example_advice_request_with_the_examples_files() {
    let env = sandbox().await;
    let (guidance, review) = (
        "badaf6fc-90f4-411d-999f-04ccd79fa166",
        "38dc19ab-893f-47ca-8db0-2d0a07c0e387",
    );
    let (status, _, referral) = post(
        &env,
        "/STU3/ReferralRequest/$ers.createFromCommunicationRequestActionLater",
        "SERVICE_PROVIDER_CLINICIAN",
        None,
        &parameters(
            "eRS-CreateFromCommunicationRequestActionLater-Request-Parameters-1",
            vec![
                json!({"name": "createFrom", "valueReference": {"reference": format!("CommunicationRequest/{EXAMPLE_ADVICE}/_history/5")}}),
                json!({"name": "guidance", "valueString": "We will see the patient; initial treatment attached"}),
                json!({"name": "newReferralPriority", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "ROUTINE")}),
                json!({"name": "reviewComments", "valueString": "Book into the lipid clinic with the attached note as the letter"}),
                json!({"name": "guidanceAttachmentFile", "resource": document("GUIDANCE_RESPONSE", guidance, "Initial medication")}),
                json!({"name": "reviewAttachmentFile", "resource": document("PROVIDER", review, "Booking instructions")}),
            ],
        ),
    )
    .await;
    assert_eq!(status, 201, "{referral}");
    assert!(names(&referral, review), "{referral}");
    // The conversion was worked out and rolled back: the seeded conversation has no guidance.
    let (status, _, conversation) = get(
        &env,
        &format!("/STU3/Communication?based-on=CommunicationRequest/{EXAMPLE_ADVICE}/_history/5"),
        &[("NHSD-eRS-Business-Function", "SERVICE_PROVIDER_CLINICIAN")],
    )
    .await;
    assert_eq!(status, 200, "{conversation}");
    assert!(!names(&conversation, guidance), "{conversation}");
}

#[tokio::test]
async fn a044_creates_an_advice_request_with_the_examples_file() {
    let env = sandbox().await;
    let id = "e1015896-92f4-4073-ad3c-5f30fca76448";
    // The example is an RCA's naming the referring clinician 021600556514, whom the sandbox
    // does not hold as a Referring Clinician (REFERENCED_USER_IS_NOT_RC_AT_ORG); the referring
    // clinician sends the same request as themself.
    let body = parameters(
        "eRS-CreateAdviceAndGuidance-Request-Parameters-1",
        vec![
            json!({"name": "patient", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}}),
            json!({"name": "providerConversionAuthorisation", "valueCoding": coding("https://fhir.nhs.uk/STU3/CodeSystem/eRS-ProviderConversionAuthorisation-1", "AUTHORISED_TO_CONVERT")}),
            json!({"name": "shortlist", "resource": shortlist(routine_heart_failure(), &["11014"])}),
            json!({"name": "request", "valueString": "Raised LDL despite diet: please advise on treatment."}),
            json!({"name": "requestAttachmentFile", "resource": document("ADVICE_REQUEST", id, "Lipid profile")}),
        ],
    );
    let (status, _, created) = post(
        &env,
        "/STU3/CommunicationRequest/$ers.createAdviceAndGuidance",
        "REFERRING_CLINICIAN",
        None,
        &body,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert!(names(&created, id), "{created}");
}

#[tokio::test]
async fn a006_and_a042_serve_the_example_attachment_id() {
    let env = sandbox().await;
    let response = env
        .client
        .get(sandbox_url(&env, &format!("/STU3/Binary/{EXAMPLE_BINARY}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert!(response.bytes().await.unwrap().starts_with(b"%PDF"));

    sandbox_pdf_through_signed_url(&env, EXAMPLE_BINARY).await;
    // The specification's legacy-format id, through A006 and A042.
    sandbox_pdf_through_signed_url(&env, "att-70000-70001").await;

    // Every file the examples attach can be fetched too.
    for id in [
        "50f0c0d5-7ed1-4587-8fce-889c8685eb54",
        "e1015896-92f4-4073-ad3c-5f30fca76448",
        "a7c98bb4-c0d0-4094-b26d-8dbd1677edc8",
        "b2b22a7e-b3e9-4625-8d2c-00507bfdffb5",
        "857b901d-1491-47d3-90e2-6c9f13f744dc",
        "19eb7224-dff3-4730-a5cb-67eac811f1a5",
        "badaf6fc-90f4-411d-999f-04ccd79fa166",
        "38dc19ab-893f-47ca-8db0-2d0a07c0e387",
        "att-70000-70001",
    ] {
        let response = env
            .client
            .get(sandbox_url(&env, &format!("/STU3/Binary/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{id}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{id}");
    }
}

#[tokio::test]
async fn a_sandbox_seeded_before_the_example_files_gets_them_added_once() {
    let env = sandbox().await;
    let repo = carehub_ers::repo::Repo::new(env.store.clone(), "ers-sandbox").with_clock(env.clock);
    let now = env.clock.now_micros();
    assert!(!carehub_ers::seed::seed_sandbox(&repo, now).await.unwrap());
    // As a sandbox seeded with the example services but before the files.
    env.store
        .write(|tx| {
            Box::pin(async move {
                for kind in ["File", "FileData"] {
                    tx.delete(
                        "ers-sandbox",
                        kind,
                        EXAMPLE_BINARY,
                        carehub_store::Expect::Any,
                    )
                    .await?;
                }
                Ok::<_, carehub_store::StoreError>(())
            })
        })
        .await
        .unwrap();
    assert!(repo.service("10000").await.unwrap().is_some());
    assert!(repo.file(EXAMPLE_BINARY).await.unwrap().is_none());
    assert!(carehub_ers::seed::seed_sandbox(&repo, now).await.unwrap());
    assert!(!carehub_ers::seed::seed_sandbox(&repo, now).await.unwrap());
    assert!(repo.file(EXAMPLE_BINARY).await.unwrap().is_some());
    let (status, _, _) = get(&env, &format!("/STU3/Binary/{EXAMPLE_BINARY}"), &[]).await;
    assert_eq!(status, 200);
}
