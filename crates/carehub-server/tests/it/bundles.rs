use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn transactions_rewrite_references_and_are_all_or_nothing() {
    let app = spawn_app().await;
    let transaction = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:0c2b7a4c-62b2-4a58-9a8e-3e4f4a2c9b11",
             "resource": patient("Trans", "Action", "9000000009", "1970-01-01", "female"),
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                          "subject": {"reference": "urn:uuid:0c2b7a4c-62b2-4a58-9a8e-3e4f4a2c9b11"}},
             "request": {"method": "POST", "url": "Observation"}}
        ]
    });
    let response = app.post(&app.r4(""), &transaction).await;
    assert_eq!(response.status().as_u16(), 200);
    let result: serde_json::Value = response.json().await.unwrap();
    assert_eq!(result["type"], "transaction-response");
    let patient_id = result["entry"][0]["resource"]["id"].as_str().unwrap();
    assert_eq!(
        result["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    assert!(
        result["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("201")
    );

    // A conditional reference that matches nothing fails the whole transaction.
    let failing = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"resource": patient("Never", "Stored", "9000000017", "1980-01-01", "male"),
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": "Patient?identifier=9999999999"}},
             "request": {"method": "POST", "url": "Observation"}}
        ]
    });
    let response = app.post(&app.r4(""), &failing).await;
    assert_eq!(response.status().as_u16(), 412);
    let (_, count) = app.get_json(&app.r4("/Patient?_summary=count")).await;
    assert_eq!(count["total"], 1, "the failed transaction stored nothing");

    // Conditional references that match exactly one resource are resolved.
    let resolving = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": "Patient?identifier=9000000009"}},
             "request": {"method": "POST", "url": "Observation"}}]
    });
    let result: serde_json::Value = app
        .post(&app.r4(""), &resolving)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        result["entry"][0]["resource"]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
}

#[tokio::test]
async fn batches_report_each_entry() {
    let app = spawn_app().await;
    let batch = json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            {"resource": patient("Batch", "One", "9000000009", "1970-01-01", "female"),
             "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
            {"request": {"method": "GET", "url": "Patient?family=batch"}}
        ]
    });
    let result: serde_json::Value = app.post(&app.r4(""), &batch).await.json().await.unwrap();
    assert_eq!(result["type"], "batch-response");
    assert!(
        result["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("201")
    );
    assert!(
        result["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("404")
    );
    assert_eq!(result["entry"][2]["resource"]["total"], 1);
}

#[tokio::test]
async fn transaction_responses_line_up_with_their_entries() {
    let app = spawn_app().await;
    let families = ["Ash", "Birch", "Cedar", "Damson", "Elm"];
    let mut entries: Vec<serde_json::Value> = families
        .iter()
        .enumerate()
        .map(|(n, family)| {
            json!({"fullUrl": format!("urn:uuid:00000000-0000-4000-8000-00000000000{n}"),
                   "resource": patient(family, "Tree", &format!("900000000{n}"), "1970-01-01", "female"),
                   "request": {"method": "POST", "url": "Patient"}})
        })
        .collect();
    // A conditional create and a PUT among them, processed on their own.
    entries.insert(
        2,
        json!({"resource": patient("Fir", "Tree", "9000000999", "1970-01-01", "male"),
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=9000000999"}}),
    );
    entries.push(
        json!({"resource": {"resourceType": "Patient", "id": "yew", "name": [{"family": "Yew"}]},
        "request": {"method": "PUT", "url": "Patient/yew"}}),
    );
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let result: serde_json::Value = app.post(&app.r4(""), &bundle).await.json().await.unwrap();
    let families_back: Vec<&str> = result["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["name"][0]["family"].as_str().unwrap())
        .collect();
    assert_eq!(
        families_back,
        ["Ash", "Birch", "Fir", "Cedar", "Damson", "Elm", "Yew"]
    );
    let (_, count) = app
        .get_json(&app.r4("/Patient?given=tree&_summary=count"))
        .await;
    assert_eq!(count["total"], 6);
}

#[tokio::test]
async fn batch_get_on_a_type_searches_it() {
    let app = spawn_app().await;
    app.create(
        &app.r4("/Patient"),
        &patient("Solo", "Entry", "9000000009", "1970-01-01", "female"),
    )
    .await;
    let batch = json!({"resourceType": "Bundle", "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Patient"}}]});
    let result: serde_json::Value = app.post(&app.r4(""), &batch).await.json().await.unwrap();
    assert_eq!(result["entry"][0]["resource"]["total"], 1);
    let (status, _) = app.get_json(&app.r4("/Patient/x?_summary=count")).await;
    assert_eq!(status, 400, "_summary=count is for searches");
}
