//! SDS and the Spine Secure Proxy with the GP Connect provider: a consumer finds the practice's
//! endpoint and ASID in SDS, then reaches it through the SSP, which checks both ASIDs and the
//! target against SDS before forwarding.

mod common;

use common::{CONSUMER_ASID, PROVIDER_ASID, entries, send, spawn, spine_code};
use reqwest::Method;
use serde_json::Value;

const SLOT_SEARCH: &str = "urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1";
const PATIENT_SEARCH: &str = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn ssp_token(scope: &str) -> String {
    carehub_gpconnect::domain::jwt::token("aud", "A11111", "UNK", scope, now())
}

#[tokio::test]
async fn sds_gives_the_practice_endpoint_and_asid() {
    let env = spawn().await;
    let sds = format!("{}/int/spine-directory/FHIR/R4", env.url);
    let org = "organization=https://fhir.nhs.uk/Id/ods-organization-code%7CB82617";
    let iid = format!("identifier=https://fhir.nhs.uk/Id/nhsServiceInteractionId%7C{SLOT_SEARCH}");
    let (status, endpoints) = send(
        env.client
            .get(format!("{sds}/Endpoint?{org}&{iid}"))
            .header("apikey", &env.api_key),
    )
    .await;
    assert_eq!(status, 200, "{endpoints}");
    let endpoint = entries(&endpoints)[0].clone();
    assert_eq!(endpoint["address"], env.root.as_str());
    let party_key = endpoint["identifier"]
        .as_array()
        .and_then(|ids| {
            ids.iter()
                .find(|i| i["system"] == "https://fhir.nhs.uk/Id/nhsMhsPartyKey")
        })
        .and_then(|i| i["value"].as_str())
        .expect("party key")
        .to_owned();
    let (_, devices) = send(
        env.client
            .get(format!("{sds}/Device?{org}&{iid}&identifier=https://fhir.nhs.uk/Id/nhsMhsPartyKey%7C{party_key}"))
            .header("apikey", &env.api_key),
    )
    .await;
    assert_eq!(
        entries(&devices)[0]["identifier"][0]["value"],
        PROVIDER_ASID
    );
    let (status, outcome) = send(
        env.client
            .get(format!("{sds}/Device?{org}"))
            .header("apikey", &env.api_key),
    )
    .await;
    assert_eq!((status, spine_code(&outcome)), (400, "BAD_REQUEST"));
    let (status, none) = send(env.client.get(format!("{sds}/Endpoint?organization=https://fhir.nhs.uk/Id/ods-organization-code%7CX99999&{iid}")).header("apikey", &env.api_key)).await;
    assert_eq!((status, none["total"].as_i64()), (200, Some(0)));
}

/// A request through the SSP to `path` at the home practice's service root.
fn via_ssp(
    env: &common::Env,
    method: Method,
    path: &str,
    interaction: &str,
    from: &str,
    to: &str,
    scope: &str,
) -> reqwest::RequestBuilder {
    env.client
        .request(method, format!("{}/int/ssp/{}{path}", env.url, env.root))
        .header("apikey", &env.api_key)
        .header("Ssp-TraceID", "7a9c5f00-1b2c-4d3e-8f40-5a6b7c8d9e0f")
        .header("Ssp-From", from)
        .header("Ssp-To", to)
        .header("Ssp-InteractionID", interaction)
        .bearer_auth(ssp_token(scope))
}

#[tokio::test]
async fn the_proxy_forwards_authorised_requests_to_the_provider() {
    let env = spawn().await;
    let path = "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286";
    let (status, bundle) = send(via_ssp(
        &env,
        Method::GET,
        path,
        PATIENT_SEARCH,
        CONSUMER_ASID,
        PROVIDER_ASID,
        "patient/*.read",
    ))
    .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(entries(&bundle)[0]["identifier"][0]["value"], "9690937286");

    // The provider's own errors come back as they are.
    let (status, outcome) = send(via_ssp(
        &env,
        Method::GET,
        "/Patient?identifier=9690937286",
        PATIENT_SEARCH,
        CONSUMER_ASID,
        PROVIDER_ASID,
        "patient/*.read",
    ))
    .await;
    assert_eq!((status, spine_code(&outcome)), (422, "INVALID_PARAMETER"));

    // A consumer journey through the proxy: free slots, then a booking.
    let day = |offset: i64| {
        let (y, m, d) = carehub_fhir::datetime::civil_from_days(now() / 86_400 + offset);
        format!("{y:04}-{m:02}-{d:02}")
    };
    let slots = format!(
        "/Slot?start=ge{}&end=le{}&status=free&_include=Slot:schedule",
        day(1),
        day(7)
    );
    let (status, found) = send(via_ssp(
        &env,
        Method::GET,
        &slots,
        SLOT_SEARCH,
        CONSUMER_ASID,
        PROVIDER_ASID,
        "organization/*.read",
    ))
    .await;
    assert_eq!(status, 200, "{found}");
    let slot = entries(&found)
        .into_iter()
        .find(|r| r["resourceType"] == "Slot")
        .expect("a free slot")
        .clone();
    let booking = serde_json::json!({
        "resourceType": "Appointment",
        "contained": [{"resourceType": "Organization", "id": "1", "name": "Consumer",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A11111"}],
            "telecom": [{"system": "phone", "value": "0113 496 0999"}]}],
        "extension": [{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1",
                       "valueReference": {"reference": "#1"}}],
        "status": "booked", "description": "Booked through the SSP", "start": slot["start"], "end": slot["end"],
        "slot": [{"reference": format!("Slot/{}", slot["id"].as_str().unwrap_or(""))}],
        "created": "2026-12-01T09:00:00+00:00",
        "participant": [{"actor": {"reference": "Patient/3"}, "status": "accepted"},
                        {"actor": {"reference": "Location/1"}, "status": "accepted"}],
    });
    let (status, booked) = send(
        via_ssp(
            &env,
            Method::POST,
            "/Appointment",
            "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1",
            CONSUMER_ASID,
            PROVIDER_ASID,
            "patient/*.write",
        )
        .header("content-type", "application/fhir+json")
        .body(booking.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked["description"], "Booked through the SSP");
}

fn ssp_token_of(outcome: &Value) -> &str {
    outcome["issue"][0]["details"]["coding"][0]["display"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn the_proxy_refuses_what_sds_does_not_allow() {
    let env = spawn().await;
    let path = "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286";
    // Sending as an ASID the consumer does not hold.
    let (status, outcome) = send(via_ssp(
        &env,
        Method::GET,
        path,
        PATIENT_SEARCH,
        "200000000999",
        PROVIDER_ASID,
        "patient/*.read",
    ))
    .await;
    assert_eq!(status, 403, "{outcome}");
    assert_eq!(
        ssp_token_of(&outcome),
        "ASID_CHECK_FAILED_MESSAGESENDER_200000000999"
    );
    assert_eq!(
        outcome["issue"][0]["details"]["coding"][0]["system"],
        "http://fhir.nhs.net/ValueSet/gpconnect-schedule-response-code-1-0"
    );
    // To a receiver SDS does not know.
    let (status, outcome) = send(via_ssp(
        &env,
        Method::GET,
        path,
        PATIENT_SEARCH,
        CONSUMER_ASID,
        "999999999999",
        "patient/*.read",
    ))
    .await;
    assert_eq!(
        (status, ssp_token_of(&outcome)),
        (
            403,
            "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_999999999999"
        )
    );
    // To R1A14's ASID at B82617's address.
    let (status, outcome) = send(via_ssp(
        &env,
        Method::GET,
        path,
        PATIENT_SEARCH,
        CONSUMER_ASID,
        "918999198739",
        "patient/*.read",
    ))
    .await;
    assert_eq!(status, 400, "{outcome}");
    assert!(ssp_token_of(&outcome).contains("_VARIES_FROM_TARGETURL_"));
    // Without the SSP headers.
    let (status, outcome) = send(
        env.client
            .get(format!("{}/int/ssp/{}{path}", env.url, env.root))
            .header("apikey", &env.api_key),
    )
    .await;
    assert_eq!(
        (status, ssp_token_of(&outcome)),
        (400, "MISSING_HEADER_Ssp-TraceID")
    );
    // Only FHIR verbs, and bodies of FHIR media types.
    let (status, outcome) = send(via_ssp(
        &env,
        Method::OPTIONS,
        path,
        PATIENT_SEARCH,
        CONSUMER_ASID,
        PROVIDER_ASID,
        "patient/*.read",
    ))
    .await;
    assert_eq!(
        (status, ssp_token_of(&outcome)),
        (405, "405: Method Not Allowed")
    );
    let (status, outcome) = send(
        via_ssp(
            &env,
            Method::POST,
            "/Patient/$gpc.registerpatient",
            "urn:nhs:names:services:gpconnect:fhir:operation:gpc.registerpatient-1",
            CONSUMER_ASID,
            PROVIDER_ASID,
            "patient/*.write",
        )
        .header("content-type", "text/plain")
        .body("hello"),
    )
    .await;
    assert_eq!(status, 415, "{outcome}");
    assert!(ssp_token_of(&outcome).starts_with("415: Unsupported Media Type"));
}
