use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn create_read_update_delete_with_versions_and_history() {
    let app = spawn_app().await;
    let created = app
        .post(
            &app.r4("/Patient"),
            &patient("Smith", "Jane", "9000000009", "1970-01-01", "female"),
        )
        .await;
    assert_eq!(created.status().as_u16(), 201);
    assert_eq!(created.headers()["etag"], "W/\"1\"");
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("/fhir/R4/Patient/") && location.ends_with("/_history/1"),
        "{location}"
    );
    let body: serde_json::Value = created.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["meta"]["versionId"], "1");

    let (status, read) = app.get_json(&app.r4(&format!("/Patient/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(read["name"][0]["family"], "Smith");

    let mut changed = read.clone();
    changed["name"][0]["family"] = json!("Jones");
    let updated = app
        .client
        .put(app.r4(&format!("/Patient/{id}")))
        .header("content-type", FHIR_JSON)
        .header("if-match", "W/\"1\"")
        .body(changed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status().as_u16(), 200);
    assert_eq!(updated.headers()["etag"], "W/\"2\"");

    // A stale If-Match is refused and changes nothing.
    let stale = app
        .client
        .put(app.r4(&format!("/Patient/{id}")))
        .header("content-type", FHIR_JSON)
        .header("if-match", "W/\"1\"")
        .body(changed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 412);

    let (_, v1) = app
        .get_json(&app.r4(&format!("/Patient/{id}/_history/1")))
        .await;
    assert_eq!(v1["name"][0]["family"], "Smith");

    let deleted = app
        .client
        .delete(app.r4(&format!("/Patient/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let (status, outcome) = app.get_json(&app.r4(&format!("/Patient/{id}"))).await;
    assert_eq!(status, 410);
    assert_eq!(outcome["issue"][0]["code"], "deleted");

    let (_, history) = app
        .get_json(&app.r4(&format!("/Patient/{id}/_history")))
        .await;
    let methods: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["DELETE", "PUT", "POST"]);

    // Update as create: a client-chosen id.
    let upsert = app
        .put(
            &app.r4("/Patient/chosen-id"),
            &json!({"resourceType": "Patient", "id": "chosen-id", "active": true}),
        )
        .await;
    assert_eq!(upsert.status().as_u16(), 201);
}

#[tokio::test]
async fn prefer_return_and_conditional_create() {
    let app = spawn_app().await;
    let body = patient("Brown", "Al", "9000000017", "1980-05-05", "male");
    let minimal = app
        .client
        .post(app.r4("/Patient"))
        .header("content-type", FHIR_JSON)
        .header("prefer", "return=minimal")
        .header(
            "if-none-exist",
            "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000017",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(minimal.status().as_u16(), 201);
    assert!(minimal.bytes().await.unwrap().is_empty());
    // The same condition again finds the existing resource: 200, nothing new.
    let again = app
        .client
        .post(app.r4("/Patient"))
        .header("content-type", FHIR_JSON)
        .header(
            "if-none-exist",
            "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000017",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 200);
    let (_, bundle) = app.get_json(&app.r4("/Patient?_summary=count")).await;
    assert_eq!(bundle["total"], 1);
}

#[tokio::test]
async fn concurrent_updates_with_if_match_lose_nothing() {
    let app = spawn_app().await;
    let created = app
        .create(
            &app.r4("/Basic"),
            &json!({"resourceType": "Basic", "code": {"text": "counter"}}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let url = app.r4(&format!("/Basic/{id}"));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let client = app.client.clone();
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let mut successes = 0;
            for _ in 0..40 {
                let current: serde_json::Value =
                    client.get(&url).send().await.unwrap().json().await.unwrap();
                let version = current["meta"]["versionId"].as_str().unwrap().to_owned();
                let mut next = current.clone();
                next["code"]["text"] = json!(format!("worker {worker}"));
                let response = client
                    .put(&url)
                    .header("content-type", FHIR_JSON)
                    .header("if-match", format!("W/\"{version}\""))
                    .body(next.to_string())
                    .send()
                    .await
                    .unwrap();
                match response.status().as_u16() {
                    200 => successes += 1,
                    412 => {}
                    other => panic!("unexpected status {other}"),
                }
            }
            successes
        }));
    }
    let mut successes = 0;
    for worker in workers {
        successes += worker.await.unwrap();
    }
    let (_, last) = app.get_json(&url).await;
    let version: i64 = last["meta"]["versionId"].as_str().unwrap().parse().unwrap();
    // Every acknowledged update made exactly one version: none was lost or doubled.
    assert_eq!(version, 1 + successes);
    assert!(successes > 0);
}

#[tokio::test]
async fn stu3_and_r4_bases_are_separate() {
    let app = spawn_app().await;
    // MedicationStatement.taken exists in STU3 only.
    let statement = json!({
        "resourceType": "MedicationStatement", "status": "active", "taken": "y",
        "medicationCodeableConcept": {"text": "aspirin"}, "subject": {"reference": "Patient/1"}
    });
    assert_eq!(
        app.post(&app.stu3("/MedicationStatement"), &statement)
            .await
            .status()
            .as_u16(),
        201
    );
    assert_eq!(
        app.post(&app.r4("/MedicationStatement"), &statement)
            .await
            .status()
            .as_u16(),
        400
    );
    let (_, r4) = app
        .get_json(&app.r4("/MedicationStatement?_summary=count"))
        .await;
    assert_eq!(r4["total"], 0);
    let (_, metadata) = app.get_json(&app.stu3("/metadata")).await;
    assert_eq!(metadata["fhirVersion"], "3.0.1");
    let (_, metadata) = app.get_json(&app.r4("/metadata")).await;
    assert_eq!(metadata["fhirVersion"], "4.0.1");
}

#[tokio::test]
async fn xml_in_and_out_matches_json() {
    let app = spawn_app().await;
    let xml = r#"<Patient xmlns="http://hl7.org/fhir">
  <identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="9000000009"/></identifier>
  <name><family value="O'Brien &amp; Sons"/><given value="Zoë"/></name>
  <gender value="female"/>
  <birthDate value="1970-01-01"/>
</Patient>"#;
    let created = app
        .client
        .post(app.r4("/Patient"))
        .header("content-type", "application/fhir+xml")
        .header("accept", "application/fhir+xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    assert!(
        created.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+xml")
    );
    let text = created.text().await.unwrap();
    assert!(
        text.contains("<family value=\"O'Brien &amp; Sons\"/>"),
        "{text}"
    );
    let (_, bundle) = app.get_json(&app.r4("/Patient?given=zoe")).await;
    let resource = &bundle["entry"][0]["resource"];
    assert_eq!(resource["name"][0]["family"], "O'Brien & Sons");
    let id = resource["id"].as_str().unwrap();
    let as_xml = app
        .client
        .get(app.r4(&format!("/Patient/{id}?_format=xml")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        as_xml.starts_with("<Patient xmlns=\"http://hl7.org/fhir\">")
            || as_xml.starts_with("<?xml"),
        "{as_xml}"
    );
    // Errors follow the negotiated format too.
    let missing = app
        .client
        .get(app.r4("/Patient/nope"))
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert!(missing.text().await.unwrap().contains("<OperationOutcome"));
    // Malformed XML is a 400 with an OperationOutcome, never a 500.
    let broken = app
        .client
        .post(app.r4("/Patient"))
        .header("content-type", "application/fhir+xml")
        .body("<Patient xmlns=\"http://hl7.org/fhir\"><gender value=\"female\">")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status().as_u16(), 400);
}

#[tokio::test]
async fn gzip_responses_when_asked() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.r4("/metadata"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn conditional_update_and_delete_by_search() {
    let app = spawn_app().await;
    let url = app.r4("/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009");
    let first = app
        .put(
            &url,
            &patient("Cond", "One", "9000000009", "1970-01-01", "female"),
        )
        .await;
    assert_eq!(first.status().as_u16(), 201, "no match: created");
    let second = app
        .put(
            &url,
            &patient("Cond", "Two", "9000000009", "1970-01-01", "female"),
        )
        .await;
    assert_eq!(second.status().as_u16(), 200, "one match: updated");
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["meta"]["versionId"], "2");
    app.create(
        &app.r4("/Patient"),
        &patient("Cond", "Three", "9000000017", "1970-01-01", "female"),
    )
    .await;
    let ambiguous = app
        .put(
            &app.r4("/Patient?family=cond"),
            &patient("Cond", "Four", "9000000025", "1970-01-01", "male"),
        )
        .await;
    assert_eq!(ambiguous.status().as_u16(), 412, "two matches: refused");
    let no_condition = app
        .put(
            &app.r4("/Patient"),
            &patient("X", "Y", "9000000033", "1970-01-01", "male"),
        )
        .await;
    assert_eq!(no_condition.status().as_u16(), 405);
    let deleted = app.client.delete(&url).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let (_, bundle) = app.get_json(&app.r4("/Patient?family=cond")).await;
    assert_eq!(ids(&bundle).len(), 1);
}
