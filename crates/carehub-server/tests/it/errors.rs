use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn invalid_resources_are_refused_with_every_issue_and_nothing_stored() {
    let app = spawn_app().await;
    let response = app
        .post(&app.r4("/Patient"), &json!({"resourceType": "Patient", "gender": "woman", "shoeSize": 9, "birthDate": "1970-13-01"}))
        .await;
    assert_eq!(response.status().as_u16(), 400);
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let at = outcome_location(&outcome);
    for expected in ["Patient.gender", "Patient.shoeSize", "Patient.birthDate"] {
        assert!(
            at.contains(&expected.to_owned()),
            "{expected} missing from {at:?}"
        );
    }
    let (_, count) = app.get_json(&app.r4("/Patient?_summary=count")).await;
    assert_eq!(count["total"], 0);
}

#[tokio::test]
async fn malformed_bodies_types_and_ids() {
    let app = spawn_app().await;
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (
            app.client
                .post(app.r4("/Patient"))
                .header("content-type", FHIR_JSON)
                .body("{not json"),
            400,
        ),
        (
            app.client
                .post(app.r4("/Patient"))
                .header("content-type", "text/plain")
                .body("hello"),
            415,
        ),
        (
            app.client
                .post(app.r4("/Patient"))
                .header("content-type", FHIR_JSON)
                .body(r#"{"resourceType":"Observation","status":"final","code":{"text":"x"}}"#),
            400,
        ),
        (app.client.get(app.r4("/NotAType/1")), 404),
        (app.client.get(app.r4("/Patient/bad$id")), 400),
        (app.client.get(app.r4("/Patient/unknown")), 404),
        (
            app.client
                .get(app.r4("/Patient/x"))
                .header("accept", "image/png"),
            406,
        ),
        (app.client.get(app.r4("/Patient?_format=yaml")), 406),
        (app.client.patch(app.r4("/Patient/x")), 405),
        (app.client.get(format!("{}/nowhere", app.url)), 404),
        (
            app.client
                .post(app.r4("/Patient"))
                .header("content-type", FHIR_JSON)
                .body("[".repeat(100_000)),
            400,
        ),
    ];
    for (request, expected) in cases {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response
            .json()
            .await
            .unwrap_or_else(|_| panic!("status {status}: body is not JSON"));
        assert_eq!(status, expected, "{body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let app = spawn_app_with(|config| config.body_limit = 1024).await;
    let mut big = patient("Big", "Body", "9000000009", "1970-01-01", "female");
    big["name"][0]["family"] = json!("x".repeat(4096));
    let response = app.post(&app.r4("/Patient"), &big).await;
    assert_eq!(response.status().as_u16(), 413);
}

#[tokio::test]
async fn validate_reports_issues_with_200() {
    let app = spawn_app().await;
    let response = app
        .post(
            &app.r4("/Patient/$validate"),
            &json!({"resourceType": "Patient", "gender": "nope"}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["severity"], "error");
    assert_eq!(outcome["issue"][0]["code"], "code-invalid");
    let response = app
        .post(
            &app.r4("/Patient/$validate"),
            &json!({"resourceType": "Patient", "gender": "other"}),
        )
        .await;
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["severity"], "information");
}

#[tokio::test]
async fn validate_checks_nhs_profiles_asked_for_or_claimed() {
    let app = spawn_app().await;
    let profile = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1";
    // No official name (the profile requires one) and an NHS number without its verification
    // status extension.
    let patient = json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
        "name": [{"use": "usual", "family": "Smith"}]
    });
    let response = app
        .post(
            &app.stu3(&format!("/Patient/$validate?profile={profile}")),
            &patient,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let outcome: serde_json::Value = response.json().await.unwrap();
    let text = outcome.to_string();
    assert!(text.contains("slice 'official'"), "{text}");
    assert!(text.contains("nhsNumberVerificationStatus"), "{text}");

    // The same, claimed in meta.profile rather than asked for.
    let mut claimed = patient.clone();
    claimed["meta"] = json!({"profile": [profile]});
    let response = app.post(&app.stu3("/Patient/$validate"), &claimed).await;
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert!(outcome.to_string().contains("slice 'official'"));

    // An unknown profile asked for by name is an error; claimed only, a warning.
    let response = app
        .post(
            &app.stu3("/Patient/$validate?profile=https://example.org/unknown"),
            &json!({"resourceType": "Patient"}),
        )
        .await;
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["severity"], "error");
    assert_eq!(outcome["issue"][0]["code"], "not-supported");
    let response = app
        .post(
            &app.stu3("/Patient/$validate"),
            &json!({"resourceType": "Patient", "meta": {"profile": ["https://example.org/unknown"]}}),
        )
        .await;
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["severity"], "warning");
}
