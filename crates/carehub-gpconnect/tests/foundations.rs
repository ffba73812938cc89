//! GP Connect Foundations through the gateway, one test per rule of the specification (and of
//! the provider test suite where the two differ), with real SSP headers and audit tokens.

mod common;

use common::{PRACTICE, entries, profile_errors, send, spawn, spine_code};
use reqwest::Method;
use serde_json::{Value, json};

const PATIENT_PROFILE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1";

fn nhs(number: &str) -> String {
    format!("/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C{number}")
}

#[tokio::test]
async fn the_capability_statement_names_the_release_and_its_profiles() {
    let env = spawn().await;
    let response = env
        .call(Method::GET, "/metadata", "rest:read:metadata-1")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/fhir+json")
    );
    let statement: Value = response.json().await.expect("json");
    assert_eq!(statement["version"], "1.2.8");
    assert_eq!(statement["fhirVersion"], "3.0.1");
    assert_eq!(statement["profile"].as_array().map(Vec::len), Some(16));
    assert_eq!(statement["extension"][0]["valueCode"], "enabled");

    // `_format` beats `Accept`, which beats nothing: XML on request.
    let xml = env
        .call(Method::GET, "/metadata?_format=xml", "rest:read:metadata-1")
        .header("accept", "application/fhir+json")
        .send()
        .await
        .expect("sent");
    assert!(
        xml.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/fhir+xml")
    );
    let text = xml.text().await.expect("text");
    // gzip when the consumer accepts it.
    let zipped = env
        .call(Method::GET, "/metadata", "rest:read:metadata-1")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("sent");
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert!(
        text.contains("<CapabilityStatement") && text.contains("<version value=\"1.2.8\"/>"),
        "{text}"
    );
}

/// A metadata request with the SSP headers, `change`d: a header dropped (`None`) or replaced.
fn metadata_with(env: &common::Env, name: &str, value: Option<&str>) -> reqwest::RequestBuilder {
    let mut request = env
        .client
        .get(format!("{}/metadata", env.root))
        .header("apikey", &env.api_key);
    for (header, standard) in [
        ("Ssp-TraceID", "0f4c4c3a-4e3a-4a47-9b1c-2a1f0e5b7c01"),
        ("Ssp-From", common::CONSUMER_ASID),
        ("Ssp-To", common::PROVIDER_ASID),
        (
            "Ssp-InteractionID",
            "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1",
        ),
    ] {
        match (header == name, value) {
            (false, _) => request = request.header(header, standard),
            (true, Some(value)) => request = request.header(header, value),
            (true, None) => {}
        }
    }
    let token = carehub_gpconnect::domain::jwt::token(
        &env.root,
        "A11111",
        "UNK",
        "organization/*.read",
        now(),
    );
    request.bearer_auth(token)
}

#[tokio::test]
async fn ssp_headers_must_be_present_and_name_this_provider_and_interaction() {
    let env = spawn().await;
    let (status, _) = send(metadata_with(&env, "", None)).await;
    assert_eq!(status, 200);
    let cases = [
        ("Ssp-TraceID", None),
        ("Ssp-From", None),
        ("Ssp-To", None),
        ("Ssp-InteractionID", None),
        ("Ssp-To", Some(common::CONSUMER_ASID)),
        (
            "Ssp-InteractionID",
            Some("urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"),
        ),
        (
            "Ssp-InteractionID",
            Some("urn:nhs:names:services:gpconnect:fhir:rest:read:Metadata-1"),
        ),
    ];
    for (header, value) in cases {
        let response = metadata_with(&env, header, value)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.headers()["cache-control"], "no-store", "{header}");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            (status, spine_code(&body)),
            (400, "BAD_REQUEST"),
            "{header} = {value:?}: {body}"
        );
        assert_eq!(
            body["meta"]["profile"][0],
            "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"
        );
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn token_with(change: impl FnOnce(&mut Value)) -> String {
    let token = carehub_gpconnect::domain::jwt::token(
        "aud",
        "A11111",
        "G13579135",
        "organization/*.read",
        now(),
    );
    let payload = token.split('.').nth(1).unwrap_or_default();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value =
        serde_json::from_slice(&engine.decode(payload).unwrap_or_default()).unwrap_or_default();
    change(&mut claims);
    carehub_gpconnect::domain::jwt::encode(&json!({"alg": "none", "typ": "JWT"}), &claims)
}

#[tokio::test]
async fn the_audit_token_is_checked_as_the_provider_suite_checks_it() {
    let env = spawn().await;
    let metadata = |token: String| {
        env.raw(Method::GET, "/metadata")
            .header(
                "Ssp-InteractionID",
                "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1",
            )
            .bearer_auth(token)
    };
    let now = now();
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "not base64",
            "{\"alg\":\"none\"}.{\"iss\":\"x\"}.".into(),
            400,
        ),
        (
            "exp = iat + 301",
            token_with(|c| c["exp"] = json!(c["iat"].as_i64().unwrap_or(0) + 301)),
            400,
        ),
        (
            "exp = iat + 299",
            token_with(|c| c["exp"] = json!(c["iat"].as_i64().unwrap_or(0) + 299)),
            400,
        ),
        (
            "expired",
            token_with(|c| {
                c["iat"] = json!(now - 600);
                c["exp"] = json!(now - 300);
            }),
            400,
        ),
        (
            "iat in the future",
            token_with(|c| {
                c["iat"] = json!(now + 200);
                c["exp"] = json!(now + 500);
            }),
            200,
        ),
        (
            "aud missing",
            token_with(|c| {
                c.as_object_mut().map(|m| m.remove("aud"));
            }),
            400,
        ),
        (
            "bad scope",
            token_with(|c| c["requested_scope"] = json!("badScope")),
            400,
        ),
        (
            "unknown device element",
            token_with(|c| c["requesting_device"]["invalidField"] = json!("x")),
            422,
        ),
        (
            "practitioner of another type",
            token_with(|c| {
                c["requesting_practitioner"]["resourceType"] = json!("InvalidResourceType")
            }),
            422,
        ),
        (
            "UNK identities",
            token_with(|c| {
                c["requesting_practitioner"]["identifier"] = json!([
            {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "UNK"},
            {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "UNK"}])
            }),
            200,
        ),
    ];
    for (case, token, expected) in cases {
        let (status, body) = send(metadata(token)).await;
        assert_eq!(status, expected, "{case}: {body}");
        if expected != 200 {
            assert_eq!(body["resourceType"], "OperationOutcome", "{case}");
        }
    }
}

#[tokio::test]
async fn find_a_patient_returns_only_active_traced_patients() {
    let env = spawn().await;
    let (status, bundle) = env.get(&nhs("9690937286"), "rest:search:patient-1").await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["type"], "searchset");
    let found = entries(&bundle);
    assert_eq!(found.len(), 1);
    let patient = found[0];
    assert_eq!(patient["identifier"][0]["value"], "9690937286");
    assert_eq!(
        patient["managingOrganization"]["reference"],
        "Organization/1"
    );
    assert_eq!(
        profile_errors(patient, PATIENT_PROFILE),
        Vec::<String>::new()
    );

    for (number, why) in [
        ("9690938533", "sensitive"),
        ("9690938681", "deceased"),
        ("9690938142", "inactive"),
        ("9999999999", "not on the system"),
        ("9690938622", "superseded, no longer traced"),
    ] {
        let (status, bundle) = env.get(&nhs(number), "rest:search:patient-1").await;
        assert_eq!(
            (status, entries(&bundle).len()),
            (200, 0),
            "{why}: {bundle}"
        );
    }
    let (_, dissented) = env.get(&nhs("9690938576"), "rest:search:patient-1").await;
    assert_eq!(
        entries(&dissented).len(),
        1,
        "a dissented patient is still found"
    );
}

#[tokio::test]
async fn patient_search_parameters_are_checked() {
    let env = spawn().await;
    let cases = [
        ("/Patient", 400, "BAD_REQUEST"),
        (
            "/Patient?Identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286",
            400,
            "BAD_REQUEST",
        ),
        (
            "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286&identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286",
            400,
            "BAD_REQUEST",
        ),
        ("/Patient?identifier=9690937286", 422, "INVALID_PARAMETER"),
        (
            "/Patient?identifier=%7C9690937286",
            422,
            "INVALID_PARAMETER",
        ),
        (
            "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C",
            422,
            "INVALID_PARAMETER",
        ),
        (
            "/Patient?identifier=https://example.org/mrn%7C9690937286",
            400,
            "INVALID_IDENTIFIER_SYSTEM",
        ),
        (
            "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937287",
            400,
            "INVALID_NHS_NUMBER",
        ),
    ];
    for (path, status, code) in cases {
        let (got, body) = env.get(path, "rest:search:patient-1").await;
        assert_eq!((got, spine_code(&body)), (status, code), "{path}: {body}");
    }
}

#[tokio::test]
async fn read_a_patient_answers_with_its_version_as_etag() {
    let env = spawn().await;
    let response = env
        .call(Method::GET, "/Patient/2", "rest:read:patient-1")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap_or("").to_owned();
    let patient: Value = response.json().await.expect("json");
    assert_eq!(
        etag,
        format!(
            "W/\"{}\"",
            patient["meta"]["versionId"].as_str().unwrap_or("")
        )
    );
    assert_eq!(patient["id"], "2");
    for id in ["aaBA", "40-9", "9", "18", "999"] {
        let (status, body) = env
            .get(&format!("/Patient/{id}"), "rest:read:patient-1")
            .await;
        assert_eq!(
            (status, spine_code(&body)),
            (404, "PATIENT_NOT_FOUND"),
            "{id}"
        );
    }
}

fn registration(number: &str, family: &str, given: &str, birth: &str) -> Value {
    json!({
        "resourceType": "Parameters",
        "parameter": [{
            "name": "registerPatient",
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": number}],
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": "female",
                "birthDate": birth,
            },
        }],
    })
}

async fn register(env: &common::Env, body: &Value) -> (u16, Value) {
    send(
        env.call(
            Method::POST,
            "/Patient/$gpc.registerpatient",
            "operation:gpc.registerpatient-1",
        )
        .header("content-type", "application/fhir+json")
        .body(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn registering_a_patient_makes_a_temporary_registration_after_pds_checks() {
    let env = spawn().await;
    let candidate = carehub_spine::pds::seed::background()
        .into_iter()
        .find(|p| !p.restricted && p.deceased.is_none())
        .expect("a living, unrestricted PDS patient");
    let body = registration(
        &candidate.nhs_number,
        &candidate.family,
        &candidate.given[0],
        &candidate.birth_date,
    );
    let (status, bundle) = register(&env, &body).await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(
        bundle["meta"]["profile"][0],
        "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Searchset-Bundle-1"
    );
    let patient = entries(&bundle)[0].clone();
    assert_eq!(
        profile_errors(&patient, PATIENT_PROFILE),
        Vec::<String>::new()
    );
    let registration_type =
        &patient["extension"][0]["extension"][1]["valueCodeableConcept"]["coding"][0];
    assert_eq!(
        (
            registration_type["code"].as_str(),
            registration_type["display"].as_str()
        ),
        (Some("T"), Some("Temporary"))
    );
    // Now found; and a second registration is a duplicate.
    let (_, found) = env
        .get(&nhs(&candidate.nhs_number), "rest:search:patient-1")
        .await;
    assert_eq!(entries(&found).len(), 1);
    let (status, again) = register(&env, &body).await;
    assert_eq!((status, spine_code(&again)), (409, "DUPLICATE_REJECTED"));

    // An inactive patient is re-activated as temporary.
    let (status, back) = register(
        &env,
        &registration("9690938142", "Delgado", "Rosa", "1981-06-16"),
    )
    .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(entries(&back)[0]["id"], "21");

    let cases = [
        (
            registration("9690937278", "Pennington", "Arthur", "1952-04-11"),
            409,
            "DUPLICATE_REJECTED",
        ),
        (
            registration("9476718943", "Shaw", "Martin", "1966-03-27"),
            400,
            "INVALID_PATIENT_DEMOGRAPHICS",
        ),
        (
            registration("9690938681", "Marsh", "Quentin", "1939-02-02"),
            400,
            "INVALID_PATIENT_DEMOGRAPHICS",
        ),
        (
            registration("9690938533", "Novak", "Ivan", "1960-05-05"),
            400,
            "INVALID_PATIENT_DEMOGRAPHICS",
        ),
        (
            registration("9690938622", "Doyle", "Kieran", "1958-08-19"),
            400,
            "INVALID_NHS_NUMBER",
        ),
        (
            registration("9000000008", "Doyle", "Kieran", "1958-08-19"),
            400,
            "INVALID_NHS_NUMBER",
        ),
        (
            registration(
                &candidate.nhs_number,
                "Zzyzx",
                &candidate.given[0],
                &candidate.birth_date,
            ),
            400,
            "BAD_REQUEST",
        ),
    ];
    for (body, status, code) in cases {
        let (got, outcome) = register(&env, &body).await;
        assert_eq!(
            (got, spine_code(&outcome)),
            (status, code),
            "{body}: {outcome}"
        );
    }
}

#[tokio::test]
async fn registration_bodies_are_checked_as_the_suite_does() {
    let env = spawn().await;
    let base = registration("9690937294", "Reid", "Callum", "1979-09-02");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = base.clone();
        change(&mut body);
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "not Parameters",
            with(&|b| b["resourceType"] = json!("Patient")),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "unknown element",
            with(&|b| b["parameter"][0]["resource"]["invalidField"] = json!(1)),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "active sent",
            with(&|b| b["parameter"][0]["resource"]["active"] = json!(true)),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "twice",
            with(&|b| {
                let first = b["parameter"][0].clone();
                if let Some(p) = b["parameter"].as_array_mut() {
                    p.push(first);
                }
            }),
            400,
            "BAD_REQUEST",
        ),
        (
            "no identifier",
            with(&|b| {
                b["parameter"][0]["resource"]
                    .as_object_mut()
                    .map(|p| p.remove("identifier"));
            }),
            400,
            "INVALID_NHS_NUMBER",
        ),
        (
            "no birth date",
            with(&|b| {
                b["parameter"][0]["resource"]
                    .as_object_mut()
                    .map(|p| p.remove("birthDate"));
            }),
            400,
            "BAD_REQUEST",
        ),
        (
            "no official name",
            with(&|b| b["parameter"][0]["resource"]["name"][0]["use"] = json!("anonymous")),
            400,
            "BAD_REQUEST",
        ),
        (
            "a work address",
            with(&|b| {
                b["parameter"][0]["resource"]["address"] =
                    json!([{"use": "work", "line": ["1 Road"]}])
            }),
            422,
            "INVALID_RESOURCE",
        ),
        (
            "two home phones",
            with(&|b| {
                b["parameter"][0]["resource"]["telecom"] = json!([
            {"system": "phone", "value": "0113 496 0000", "use": "home"},
            {"system": "phone", "value": "0113 496 0001", "use": "home"}])
            }),
            400,
            "BAD_REQUEST",
        ),
    ];
    for (case, body, status, code) in cases {
        let (got, outcome) = register(&env, &body).await;
        assert_eq!(
            (got, spine_code(&outcome)),
            (status, code),
            "{case}: {outcome}"
        );
    }
    let (status, outcome) = send(
        env.call(
            Method::POST,
            "/Patient/$gpc.registerpatient",
            "operation:gpc.registerpatient-1",
        )
        .header("content-type", "text/plain")
        .body("hello"),
    )
    .await;
    assert_eq!((status, spine_code(&outcome)), (415, "BAD_REQUEST"));
    // The write scope is needed.
    let token =
        carehub_gpconnect::domain::jwt::token("aud", "A11111", "UNK", "patient/*.read", now());
    let (status, outcome) = send(
        env.raw(Method::POST, "/Patient/$gpc.registerpatient")
            .header(
                "Ssp-InteractionID",
                "urn:nhs:names:services:gpconnect:fhir:operation:gpc.registerpatient-1",
            )
            .header("content-type", "application/fhir+json")
            .bearer_auth(token)
            .body(base.to_string()),
    )
    .await;
    assert_eq!((status, spine_code(&outcome)), (400, "BAD_REQUEST"));
}

#[tokio::test]
async fn the_directory_is_searched_by_identifier_and_read_by_id() {
    let env = spawn().await;
    let (status, bundle) = env
        .get(
            "/Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id%7CG22345655",
            "rest:search:practitioner-1",
        )
        .await;
    assert_eq!(status, 200, "{bundle}");
    let practitioner = entries(&bundle)[0].clone();
    assert_eq!(
        practitioner["identifier"].as_array().map(Vec::len),
        Some(3),
        "one SDS user id, two role ids"
    );
    assert!(practitioner.get("telecom").is_none() && practitioner.get("address").is_none());
    let (_, none) = env
        .get(
            "/Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id%7CG99999999",
            "rest:search:practitioner-1",
        )
        .await;
    assert_eq!(entries(&none).len(), 0, "practitioner4 must not exist");

    let (_, orgs) = env
        .get(
            "/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code%7CR1A14",
            "rest:search:organization-1",
        )
        .await;
    assert_eq!(entries(&orgs)[0]["name"], "Kirkstall Bridge Practice");
    let (_, services) = env
        .get("/HealthcareService", "rest:search:healthcareservice-1")
        .await;
    assert_eq!(entries(&services).len(), 2);

    let reads = [
        (
            "/Practitioner/1",
            "rest:read:practitioner-1",
            "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Practitioner-1",
        ),
        (
            "/Organization/1",
            "rest:read:organization-1",
            "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Organization-1",
        ),
        (
            "/Location/1",
            "rest:read:location-1",
            "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Location-1",
        ),
    ];
    for (path, interaction, profile) in reads {
        let (status, resource) = env.get(path, interaction).await;
        assert_eq!(status, 200, "{path}: {resource}");
        assert_eq!(
            profile_errors(&resource, profile),
            Vec::<String>::new(),
            "{path}"
        );
    }
    let missing = [
        (
            "/Practitioner/4",
            "rest:read:practitioner-1",
            "PRACTITIONER_NOT_FOUND",
        ),
        (
            "/Organization/99",
            "rest:read:organization-1",
            "ORGANISATION_NOT_FOUND",
        ),
        ("/Location/99", "rest:read:location-1", "NO_RECORD_FOUND"),
        (
            "/HealthcareService/99",
            "rest:read:healthcareservice-1",
            "NO_RECORD_FOUND",
        ),
    ];
    for (path, interaction, code) in missing {
        let (status, outcome) = env.get(path, interaction).await;
        assert_eq!((status, spine_code(&outcome)), (404, code), "{path}");
    }
}

#[tokio::test]
async fn wrong_verbs_and_wrong_case_urls_are_bad_requests() {
    let env = spawn().await;
    for (method, path) in [
        (Method::PATCH, "/metadata"),
        (Method::DELETE, "/metadata"),
        (Method::GET, "/Metadata"),
        (Method::GET, "/metadatas"),
    ] {
        let (status, outcome) = send(env.call(method.clone(), path, "rest:read:metadata-1")).await;
        assert_eq!(
            (status, spine_code(&outcome)),
            (400, "BAD_REQUEST"),
            "{method} {path}"
        );
    }
    // A practice this GP system does not serve.
    let (status, outcome) = send(
        env.client
            .get(format!(
                "{}/int/gpconnect/X12345/STU3/1/gpconnect/metadata",
                env.url
            ))
            .header("apikey", &env.api_key),
    )
    .await;
    assert_eq!(
        (status, spine_code(&outcome)),
        (404, "ORGANISATION_NOT_FOUND")
    );
    assert_eq!(PRACTICE, "B82617");
}
