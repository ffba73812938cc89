//! GP Connect Appointment Management through the gateway: free slots, book, read, amend,
//! cancel and a patient's appointments, with the spec's rules and the provider suite's codes.

mod common;

use common::{entries, profile_errors, send, spawn, spine_code};
use reqwest::Method;
use serde_json::{Value, json};

const SEARCH: &str = "rest:search:slot-1";

fn day(offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = carehub_fhir::datetime::civil_from_days(now / 86_400 + offset);
    format!("{y:04}-{m:02}-{d:02}")
}

fn slots_path(from: &str, to: &str, extra: &str) -> String {
    format!("/Slot?start=ge{from}&end=le{to}&status=free&_include=Slot:schedule{extra}")
}

fn of_type<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    entries(bundle)
        .into_iter()
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

fn schedule_of(slot: &Value) -> &str {
    slot["schedule"]["reference"].as_str().unwrap_or("")
}

#[tokio::test]
async fn free_slots_follow_bookability_restrictions_and_includes() {
    let env = spawn().await;
    let (status, bundle) = env.get(&slots_path(&day(1), &day(14), ""), SEARCH).await;
    assert_eq!(status, 200, "{bundle}");
    let slots = of_type(&bundle, "Slot");
    assert!(
        slots.len() >= 30,
        "ORG1 offers at least 30 slots in 14 days: {}",
        slots.len()
    );
    // Unrestricted, GP Connect bookable schedules only: not the urgent-care list (2), the
    // nurse clinic (3) or the video clinic kept for A11111 (4).
    assert!(
        slots.iter().all(|s| schedule_of(s) == "Schedule/1"),
        "{bundle}"
    );
    assert_eq!(of_type(&bundle, "Schedule").len(), 1);
    assert_eq!(
        of_type(&bundle, "Organization").len(),
        1,
        "the organisation always comes"
    );
    assert!(of_type(&bundle, "Practitioner").is_empty() && of_type(&bundle, "Location").is_empty());
    let slot = slots[0];
    assert!(
        slot["start"]
            .as_str()
            .is_some_and(|s| s.ends_with("+00:00") || s.ends_with("+01:00"))
    );
    assert_eq!(
        profile_errors(
            slot,
            "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1"
        ),
        Vec::<String>::new()
    );
    let schedule = of_type(&bundle, "Schedule")[0];
    assert_eq!(
        profile_errors(
            schedule,
            "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Schedule-1"
        ),
        Vec::<String>::new()
    );

    let filters = "&searchFilter=https://fhir.nhs.uk/Id/ods-organization-code%7CA11111\
                   &searchFilter=https://fhir.nhs.uk/STU3/CodeSystem/GPConnect-OrganisationType-1%7Curgent-care\
                   &_include:recurse=Schedule:actor:Practitioner&_include:recurse=Schedule:actor:Location";
    let (_, filtered) = env
        .get(&slots_path(&day(1), &day(14), filters), SEARCH)
        .await;
    let mut schedules: Vec<&str> = of_type(&filtered, "Slot")
        .into_iter()
        .map(schedule_of)
        .collect();
    schedules.sort_unstable();
    schedules.dedup();
    assert_eq!(schedules, ["Schedule/1", "Schedule/2", "Schedule/4"]);
    assert_eq!(of_type(&filtered, "Practitioner").len(), 2);
    assert_eq!(of_type(&filtered, "Location").len(), 2);

    // R1A14 is served at its own root with its own ASID.
    let other = env
        .client
        .get(format!(
            "{}/int/gpconnect/R1A14/STU3/1/gpconnect{}",
            env.url,
            slots_path(&day(1), &day(14), "")
        ))
        .header("apikey", &env.api_key)
        .header("Ssp-TraceID", "0f4c4c3a-4e3a-4a47-9b1c-2a1f0e5b7c01")
        .header("Ssp-From", common::CONSUMER_ASID)
        .header("Ssp-To", "918999198739")
        .header(
            "Ssp-InteractionID",
            format!("{}{SEARCH}", common::FOUNDATIONS),
        )
        .bearer_auth(carehub_gpconnect::domain::jwt::token(
            "aud",
            "A11111",
            "UNK",
            "organization/*.read",
            now(),
        ));
    let (status, bundle) = send(other).await;
    assert_eq!(status, 200, "{bundle}");
    assert!(of_type(&bundle, "Slot").len() >= 20);

    // By healthcare service: only its schedules, and the filtering status in the Bundle.
    let by_service = "&service.identifier=https://fhir.nhs.uk/Id/uec-dos-service-id%7C1000001\
                      &searchFilter=https://fhir.nhs.uk/STU3/CodeSystem/GPConnect-OrganisationType-1%7Curgent-care";
    let (_, bundle) = env
        .get(&slots_path(&day(1), &day(14), by_service), SEARCH)
        .await;
    assert!(
        of_type(&bundle, "Slot")
            .iter()
            .all(|s| schedule_of(s) == "Schedule/2")
    );
    assert_eq!(bundle["meta"]["extension"][0]["valueCode"], "enabled");
    let unknown = "&service.identifier=https://fhir.nhs.uk/Id/uec-dos-service-id%7C999";
    let (status, outcome) = env
        .get(&slots_path(&day(1), &day(14), unknown), SEARCH)
        .await;
    assert_eq!((status, spine_code(&outcome)), (404, "NO_RECORD_FOUND"));
}

#[tokio::test]
async fn slot_search_parameters_are_checked() {
    let env = spawn().await;
    let cases = [
        (slots_path(&day(1), &day(16), ""), 422, "INVALID_PARAMETER"),
        (slots_path(&day(3), &day(1), ""), 422, "INVALID_PARAMETER"),
        (
            format!(
                "/Slot?start=ge{}T00:00:00Z&end=le{}&status=free&_include=Slot:schedule",
                day(1),
                day(3)
            ),
            422,
            "INVALID_PARAMETER",
        ),
        (
            format!(
                "/Slot?start=gt{}&end=le{}&status=free&_include=Slot:schedule",
                day(1),
                day(3)
            ),
            422,
            "INVALID_PARAMETER",
        ),
        (
            format!(
                "/Slot?start=ge{}&end=le{}&status=busy&_include=Slot:schedule",
                day(1),
                day(3)
            ),
            422,
            "INVALID_PARAMETER",
        ),
        (
            format!("/Slot?end=le{}&status=free&_include=Slot:schedule", day(3)),
            400,
            "BAD_REQUEST",
        ),
        (
            format!(
                "/Slot?start=ge{}&end=le{}&_include=Slot:schedule",
                day(1),
                day(3)
            ),
            400,
            "BAD_REQUEST",
        ),
        (
            format!("/Slot?start=ge{}&end=le{}&status=free", day(1), day(3)),
            400,
            "BAD_REQUEST",
        ),
    ];
    for (path, status, code) in cases {
        let (got, outcome) = env.get(&path, SEARCH).await;
        assert_eq!(
            (got, spine_code(&outcome)),
            (status, code),
            "{path}: {outcome}"
        );
    }
    let (status, _) = env.get(&slots_path(&day(1), &day(1), ""), SEARCH).await;
    assert_eq!(status, 200, "a search of one day");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A booking of `slots` (Slot resources) for patient 2 at location 1.
fn booking(slots: &[&Value]) -> Value {
    json!({
        "resourceType": "Appointment",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1"]},
        "contained": [{
            "resourceType": "Organization",
            "id": "1",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A11111"}],
            "name": "Consumer Urgent Care",
            "telecom": [{"system": "phone", "value": "0113 496 0999", "use": "temp"}],
        }],
        "extension": [{
            "url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1",
            "valueReference": {"reference": "#1"},
        }],
        "status": "booked",
        "description": "Sore throat for three days",
        "start": slots[0]["start"],
        "end": slots[slots.len() - 1]["end"],
        "slot": slots.iter().map(|s| json!({"reference": format!("Slot/{}", s["id"].as_str().unwrap_or(""))})).collect::<Vec<_>>(),
        "created": "2026-11-30T10:00:00+00:00",
        "participant": [
            {"actor": {"reference": "Patient/2"}, "status": "accepted",
             "type": [{"coding": [{"system": "http://hl7.org/fhir/encounter-participant-type", "code": "PART", "display": "Participation"}]}]},
            {"actor": {"reference": "Location/1"}, "status": "accepted"},
        ],
    })
}

async fn book(env: &common::Env, body: &Value) -> reqwest::Response {
    env.call(Method::POST, "/Appointment", "rest:create:appointment-1")
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .expect("sent")
}

async fn put(
    env: &common::Env,
    id: &str,
    interaction: &str,
    body: &Value,
    if_match: Option<&str>,
) -> (u16, Value) {
    let mut request = env
        .call(Method::PUT, &format!("/Appointment/{id}"), interaction)
        .header("content-type", "application/fhir+json")
        .body(body.to_string());
    if let Some(etag) = if_match {
        request = request.header("if-match", etag);
    }
    send(request).await
}

#[tokio::test]
async fn a_consumer_books_amends_and_cancels_and_the_slot_follows() {
    let env = spawn().await;
    let (_, bundle) = env.get(&slots_path(&day(1), &day(14), ""), SEARCH).await;
    let slots = of_type(&bundle, "Slot");
    // Two adjacent slots of the same schedule, booked together.
    let pair = slots
        .windows(2)
        .find(|w| w[0]["end"] == w[1]["start"])
        .expect("two adjacent slots");
    let body = booking(pair);
    let response = book(&env, &body).await;
    assert_eq!(response.status(), 201);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap_or("")
            .contains("/Appointment/1/_history/1")
    );
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    let booked: Value = response.json().await.expect("json");
    assert_eq!(booked["status"], "booked");
    assert_eq!(booked["contained"][0]["name"], "Consumer Urgent Care");
    assert_eq!(
        profile_errors(
            &booked,
            "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1"
        ),
        Vec::<String>::new()
    );

    // The slots are taken: not offered, and not bookable again.
    let (_, after) = env.get(&slots_path(&day(1), &day(14), ""), SEARCH).await;
    let offered: Vec<&str> = of_type(&after, "Slot")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(!offered.contains(&pair[0]["id"].as_str().unwrap_or("")));
    let again = book(&env, &booking(&pair[1..])).await;
    assert_eq!(again.status(), 409);
    let outcome: Value = again.json().await.expect("json");
    assert_eq!(spine_code(&outcome), "DUPLICATE_REJECTED");

    let (status, read) = env.get("/Appointment/1", "rest:read:appointment-1").await;
    assert_eq!(status, 200);
    assert_eq!(read["description"], "Sore throat for three days");

    // Amend: description and comment only.
    let mut amended = read.clone();
    amended["description"] = json!("Sore throat and fever");
    amended["comment"] = json!("Prefers a morning call back");
    let (status, changed) = put(
        &env,
        "1",
        "rest:update:appointment-1",
        &amended,
        Some("W/\"1\""),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            changed["meta"]["versionId"].as_str(),
            changed["comment"].as_str()
        ),
        (Some("2"), Some("Prefers a morning call back"))
    );
    let mut priority = changed.clone();
    priority["priority"] = json!(1);
    let (status, outcome) = put(&env, "1", "rest:update:appointment-1", &priority, None).await;
    assert_eq!((status, spine_code(&outcome)), (422, "INVALID_RESOURCE"));
    let mut long = changed.clone();
    long["description"] = json!("x".repeat(101));
    let (status, outcome) = put(&env, "1", "rest:update:appointment-1", &long, None).await;
    assert_eq!((status, spine_code(&outcome)), (422, "INVALID_RESOURCE"));

    // Cancel: a stale version is refused; then status and reason change, the slots come back.
    let mut cancel = changed.clone();
    cancel["status"] = json!("cancelled");
    cancel["extension"].as_array_mut().expect("extensions").push(json!({
        "url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1",
        "valueString": "Feeling better",
    }));
    let (status, outcome) = put(
        &env,
        "1",
        "rest:cancel:appointment-1",
        &cancel,
        Some("W/\"1\""),
    )
    .await;
    assert_eq!(
        (status, spine_code(&outcome)),
        (409, "FHIR_CONSTRAINT_VIOLATION")
    );
    let mut sneaky = cancel.clone();
    sneaky["description"] = json!("changed while cancelling");
    let (status, outcome) = put(&env, "1", "rest:cancel:appointment-1", &sneaky, None).await;
    assert_eq!((status, spine_code(&outcome)), (422, "INVALID_RESOURCE"));
    let mut empty_reason = cancel.clone();
    empty_reason["extension"][3]["valueString"] = json!("");
    let (status, outcome) = put(&env, "1", "rest:cancel:appointment-1", &empty_reason, None).await;
    assert_eq!((status, spine_code(&outcome)), (422, "INVALID_PARAMETER"));
    let (status, cancelled) = put(
        &env,
        "1",
        "rest:cancel:appointment-1",
        &cancel,
        Some("W/\"2\""),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(
        (
            cancelled["status"].as_str(),
            cancelled["meta"]["versionId"].as_str()
        ),
        (Some("cancelled"), Some("3"))
    );
    let (_, freed) = env.get(&slots_path(&day(1), &day(14), ""), SEARCH).await;
    assert!(
        of_type(&freed, "Slot")
            .iter()
            .any(|s| s["id"] == pair[0]["id"]),
        "the slot is free again"
    );
    let (status, outcome) = put(&env, "1", "rest:update:appointment-1", &cancelled, None).await;
    assert_eq!(
        (status, spine_code(&outcome)),
        (422, "INVALID_RESOURCE"),
        "a cancelled appointment cannot be amended"
    );

    // The patient's appointments include cancelled ones.
    let (status, list) = env
        .get(
            &format!(
                "/Patient/2/Appointment?start=ge{}&start=le{}",
                day(0),
                day(20)
            ),
            "rest:search:patient_appointments-1",
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(entries(&list).len(), 1);
    assert_eq!(entries(&list)[0]["status"], "cancelled");
    // And the freed slot can be booked again.
    assert_eq!(book(&env, &booking(&pair[..1])).await.status(), 201);
}

#[tokio::test]
async fn bookings_are_checked_before_anything_is_held() {
    let env = spawn().await;
    let (_, bundle) = env.get(&slots_path(&day(1), &day(14), ""), SEARCH).await;
    let slots = of_type(&bundle, "Slot");
    let base = booking(&slots[..1]);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = base.clone();
        change(&mut body);
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "reason",
            with(&|b| b["reason"] = json!([{"text": "pain"}])),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "specialty",
            with(&|b| b["specialty"] = json!([{"text": "GP"}])),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "no slot",
            with(&|b| {
                b.as_object_mut().map(|m| m.remove("slot"));
            }),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "no start",
            with(&|b| {
                b.as_object_mut().map(|m| m.remove("start"));
            }),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "bad slot",
            with(&|b| b["slot"][0]["reference"] = json!("Slot/hello")),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "absolute slot",
            with(&|b| b["slot"][0]["reference"] = json!("https://elsewhere/Slot/#12345")),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "no patient",
            with(&|b| {
                b["participant"].as_array_mut().map(|p| p.remove(0));
            }),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "absolute booking organisation",
            with(&|b| {
                b["extension"][0]["valueReference"]["reference"] = json!("https://elsewhere/#1")
            }),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "booking organisation without a name",
            with(&|b| {
                b["contained"][0].as_object_mut().map(|m| m.remove("name"));
            }),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "long description",
            with(&|b| b["description"] = json!("d".repeat(101))),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "long comment",
            with(&|b| b["comment"] = json!("c".repeat(501))),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "unknown element",
            with(&|b| b["invalidField"] = json!(1)),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "status",
            with(&|b| b["status"] = json!("proposed")),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "start not the slot's",
            with(&|b| b["end"] = b["start"].clone()),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "unknown patient",
            with(&|b| b["participant"][0]["actor"]["reference"] = json!("Patient/999")),
            422,
            "INVALID_RESOURCE",
        ),
    ];
    for (case, body, status, code) in cases {
        let response = book(&env, &body).await;
        let got = response.status().as_u16();
        let outcome: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (got, spine_code(&outcome)),
            (status, code),
            "{case}: {outcome}"
        );
    }
    // Nothing was held: the slot is still offered and bookable.
    assert_eq!(book(&env, &base).await.status(), 201);
}

#[tokio::test]
async fn a_patients_appointments_need_a_future_date_range() {
    let env = spawn().await;
    let interaction = "rest:search:patient_appointments-1";
    let cases = [
        format!("start=ge{}", day(1)),
        format!("start=ge{}&start=ge{}", day(1), day(3)),
        format!("start=gt{}&start=le{}", day(1), day(3)),
        format!("start=ge{}&start=le{}", day(-2), day(3)),
        format!("start=ge{}&start=le{}", day(3), day(1)),
        format!("start=ge{}T10:00:00%2B00:00&start=le{}", day(1), day(3)),
        format!("start=ge{}&start=le2026", day(1)),
    ];
    for query in cases {
        let (status, outcome) = env
            .get(&format!("/Patient/2/Appointment?{query}"), interaction)
            .await;
        assert_eq!(
            (status, spine_code(&outcome)),
            (422, "INVALID_PARAMETER"),
            "{query}: {outcome}"
        );
    }
    let (status, outcome) = env
        .get(
            &format!(
                "/Patient/999/Appointment?start=ge{}&start=le{}",
                day(0),
                day(3)
            ),
            interaction,
        )
        .await;
    assert_eq!((status, spine_code(&outcome)), (404, "PATIENT_NOT_FOUND"));
    let (status, none) = env
        .get(
            &format!(
                "/Patient/20/Appointment?start=ge{}&start=le{}",
                day(0),
                day(3)
            ),
            interaction,
        )
        .await;
    assert_eq!((status, entries(&none).len()), (200, 0));
    let (status, outcome) = env
        .get("/Appointment/555555", "rest:read:appointment-1")
        .await;
    assert_eq!((status, spine_code(&outcome)), (404, "NO_RECORD_FOUND"));
}

#[tokio::test]
async fn bookings_and_reads_work_in_xml() {
    let env = spawn().await;
    let (_, bundle) = env
        .get(&slots_path(&day(1), &day(14), "&_format=xml"), SEARCH)
        .await;
    // `_format=xml` answers XML, which this helper cannot read as JSON.
    assert!(
        bundle.as_str().is_some_and(|x| x.contains("<Bundle")),
        "{bundle}"
    );
    let (_, bundle) = env.get(&slots_path(&day(1), &day(14), ""), SEARCH).await;
    let slots = of_type(&bundle, "Slot");
    let xml = carehub_fhir::xml::to_xml(carehub_fhir::FhirVersion::Stu3, &booking(&slots[..1]))
        .expect("xml");
    let response = env
        .call(Method::POST, "/Appointment", "rest:create:appointment-1")
        .header("content-type", "application/fhir+xml")
        .header("accept", "application/fhir+xml")
        .body(xml)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/fhir+xml")
    );
    let text = response.text().await.expect("text");
    let booked =
        carehub_fhir::xml::from_xml(carehub_fhir::FhirVersion::Stu3, &text).expect("FHIR XML");
    assert_eq!(booked["status"], "booked");
    assert_eq!(booked["description"], "Sore throat for three days");
}
