//! Access Record HTML 0.7.4 through the gateway: the DSTU2 service root, its Conformance
//! statement, `$gpc.getcarerecord` for every section with the layout the spec mandates, the
//! date filters and banners, the request's errors, the patients who may not be shared, and
//! JSON and XML.

mod common;

use carehub_gateway::config::PlatformConfig;
use carehub_gpconnect::domain::jwt::{self, RequestedRecord};
use common::{CONSUMER_ASID, PRACTICE, PROVIDER_ASID, send, spawn, spawn_with, spine_code};
use reqwest::Method;
use serde_json::{Value, json};

const GET_CARE_RECORD: &str = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord";
const METADATA: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata";
const JSON: &str = "application/json+fhir";
const XML: &str = "application/xml+fhir";
const PATIENT2: &str = "9690937286";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn root(env: &common::Env) -> String {
    format!("{}/int/gpconnect/{PRACTICE}/DSTU2/0/gpconnect", env.url)
}

/// A request on the HTML line with the SSP headers and a 0.x token for `record`.
fn call(
    env: &common::Env,
    method: Method,
    path: &str,
    interaction: &str,
    record: &RequestedRecord,
) -> reqwest::RequestBuilder {
    call_to(env, method, path, interaction, record, PROVIDER_ASID)
}

/// As [`call`], addressed (`Ssp-To`) to `asid`.
fn call_to(
    env: &common::Env,
    method: Method,
    path: &str,
    interaction: &str,
    record: &RequestedRecord,
    asid: &str,
) -> reqwest::RequestBuilder {
    let scope = if interaction == METADATA {
        "organization/*.read"
    } else {
        "patient/*.read"
    };
    let token = jwt::token_dstu2(record, "A11111", "G13579135", scope, now() - 2);
    env.client
        .request(method, format!("{}{path}", root(env)))
        .header("apikey", &env.api_key)
        .header("Ssp-TraceID", "0f4c4c3a-4e3a-4a47-9b1c-2a1f0e5b7c01")
        .header("Ssp-From", CONSUMER_ASID)
        .header("Ssp-To", asid)
        .header("Ssp-InteractionID", interaction)
        .bearer_auth(token)
}

fn parameters(nhs: &str, section: &str, period: Option<Value>) -> Value {
    let mut parameter = vec![
        json!({"name": "patientNHSNumber", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": nhs}}),
        json!({"name": "recordSection", "valueCodeableConcept": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1", "code": section}]}}),
    ];
    if let Some(period) = period {
        parameter.push(json!({"name": "timePeriod", "valuePeriod": period}));
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}

async fn care_record(env: &common::Env, nhs: &str, body: &Value) -> (u16, Value) {
    send(
        call(
            env,
            Method::POST,
            "/Patient/$gpc.getcarerecord",
            GET_CARE_RECORD,
            &RequestedRecord::Patient(nhs.into()),
        )
        .header("accept", JSON)
        .header("content-type", JSON)
        .body(body.to_string()),
    )
    .await
}

/// The section's XHTML of a care record Bundle.
fn html(bundle: &Value) -> &str {
    bundle["entry"][0]["resource"]["section"][0]["text"]["div"]
        .as_str()
        .unwrap_or_default()
}

/// The ids of the section's tables, in order.
fn table_ids(html: &str) -> Vec<&str> {
    html.split("<table id=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

/// The column headings of the table with `id`.
fn headings<'h>(html: &'h str, id: &str) -> Vec<&'h str> {
    let Some(start) = html.find(&format!("<table id=\"{id}\">")) else {
        return Vec::new();
    };
    let head = &html[start..];
    let head = &head[..head.find("</thead>").unwrap_or(head.len())];
    head.split("<th>")
        .skip(1)
        .filter_map(|h| h.split("</th>").next())
        .collect()
}

/// The cells of the body rows of table `id`, row by row.
fn rows<'h>(html: &'h str, id: &str) -> Vec<Vec<&'h str>> {
    let Some(start) = html.find(&format!("<table id=\"{id}\">")) else {
        return Vec::new();
    };
    let table = &html[start..];
    let table = &table[..table.find("</table>").unwrap_or(table.len())];
    let body = table.split("<tbody>").nth(1).unwrap_or_default();
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .filter_map(|cell| cell.split_once('>').map(|(_, rest)| rest))
                .filter_map(|cell| cell.split("</td>").next())
                .collect()
        })
        .collect()
}

fn period(start: Option<&str>, end: Option<&str>) -> Option<Value> {
    let mut p = serde_json::Map::new();
    if let Some(s) = start {
        p.insert("start".into(), json!(s));
    }
    if let Some(e) = end {
        p.insert("end".into(), json!(e));
    }
    Some(Value::Object(p))
}

#[tokio::test]
async fn every_section_of_the_full_record_has_its_tables_in_the_mandated_order() {
    let env = spawn().await;
    let expected: [(&str, &str, &[&str]); 10] = [
        ("ADM", "Administrative Items", &["adm-tab"]),
        (
            "ALL",
            "Allergies and Adverse Reactions",
            &["all-tab-curr", "all-tab-hist"],
        ),
        ("CLI", "Clinical Items", &["cli-tab"]),
        ("ENC", "Encounters", &["enc-tab"]),
        ("IMM", "Immunisations", &["imm-tab"]),
        (
            "MED",
            "Medications",
            &[
                "med-tab-acu-med",
                "med-tab-curr-rep",
                "med-tab-dis-rep",
                "med-tab-all-sum",
                "med-tab-all-iss",
            ],
        ),
        ("OBS", "Observations", &["obs-tab"]),
        (
            "PRB",
            "Problems and Issues",
            &["prb-tab-act", "prb-tab-majinact", "prb-tab-othinact"],
        ),
        ("REF", "Referrals", &["ref-tab"]),
        (
            "SUM",
            "Summary",
            &[
                "cli-tab",
                "enc-tab",
                "prb-tab-act",
                "prb-tab-majinact",
                "all-tab-curr",
                "med-tab-acu-med",
                "med-tab-curr-rep",
            ],
        ),
    ];
    for (code, title, tables) in expected {
        let response = call(
            &env,
            Method::POST,
            "/Patient/$gpc.getcarerecord",
            GET_CARE_RECORD,
            &RequestedRecord::Patient(PATIENT2.into()),
        )
        .header("accept", JSON)
        .header("content-type", JSON)
        .body(parameters(PATIENT2, code, None).to_string())
        .send()
        .await
        .expect("sent");
        assert_eq!(response.status().as_u16(), 200, "{code}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.starts_with(JSON), "{content_type}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(
            response
                .headers()
                .get("transfer-encoding")
                .and_then(|v| v.to_str().ok()),
            Some("chunked"),
            "the care record is streamed"
        );
        let bundle: Value = response.json().await.expect("json");
        assert_eq!(bundle["type"], "searchset");
        let composition = &bundle["entry"][0]["resource"];
        assert_eq!(composition["resourceType"], "Composition");
        assert_eq!(composition["title"], "Patient Care Record");
        assert_eq!(composition["status"], "final");
        let section = &composition["section"][0];
        assert_eq!(section["title"], title);
        assert_eq!(section["code"]["coding"][0]["code"], code);
        assert_eq!(section["code"]["coding"][0]["display"], title);
        // Every reference resolves to an entry's fullUrl.
        let urls: Vec<&str> = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["fullUrl"].as_str())
            .collect();
        for reference in [
            &composition["subject"]["reference"],
            &composition["author"][0]["reference"],
            &composition["custodian"]["reference"],
            &bundle["entry"][1]["resource"]["careProvider"][0]["reference"],
            &bundle["entry"][1]["resource"]["managingOrganization"]["reference"],
        ] {
            let reference = reference.as_str().unwrap_or_default();
            assert!(urls.contains(&reference), "{code}: {reference} in {urls:?}");
        }
        let div = html(&bundle);
        assert!(div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">"));
        assert!(div.contains(&format!("<h1>{title}</h1>")), "{code}");
        assert!(
            !div.contains('\n') && !div.contains('\t') && !div.contains("<a"),
            "{code}"
        );
        assert_eq!(table_ids(div), tables, "{code}: {div}");
    }
}

#[tokio::test]
async fn tables_have_the_columns_of_the_layout_guide_and_dates_carry_their_class() {
    let env = spawn().await;
    let (_, summary) = care_record(&env, PATIENT2, &parameters(PATIENT2, "SUM", None)).await;
    let div = html(&summary);
    assert_eq!(
        headings(div, "cli-tab"),
        [
            "Date",
            "Entry",
            "Details",
            "Location of further information"
        ]
    );
    assert_eq!(headings(div, "enc-tab"), ["Date", "Title", "Details"]);
    assert_eq!(
        headings(div, "prb-tab-majinact"),
        ["Start Date", "End Date", "Entry", "Significance", "Details"]
    );
    // The emergency code, and the last three encounters only.
    assert!(rows(div, "cli-tab")[0][1].contains("For resuscitation"));
    assert!(rows(div, "enc-tab").len() <= 3);
    assert!(div.contains("<h2>Last 3 Encounters</h2>"));
    assert!(
        !div.contains("date-banner"),
        "the summary has no date banners"
    );

    let (_, observations) = care_record(&env, PATIENT2, &parameters(PATIENT2, "OBS", None)).await;
    let div = html(&observations);
    assert_eq!(
        headings(div, "obs-tab"),
        ["Date", "Entry", "Value", "Range", "Details"]
    );
    assert!(div.contains(
        "<td class=\"date-column\">15-Feb-2016</td><td>Body weight</td><td>84.0 kg</td>"
    ));
    // Test results carry their reference range.
    assert!(div.contains("<td>141 g/L</td><td>130-170 g/L</td>"));
    assert!(div.contains("<div class=\"date-banner\"><p>All relevant items</p></div>"));

    let (_, allergies) = care_record(&env, PATIENT2, &parameters(PATIENT2, "ALL", None)).await;
    let div = html(&allergies);
    assert_eq!(
        headings(div, "all-tab-hist"),
        ["Start Date", "End Date", "Details"]
    );
    let historical = rows(div, "all-tab-hist");
    assert_eq!(historical[0][0], "01-Sep-2004");
    assert_eq!(historical[0][1], "01-Mar-2016");
    assert!(!div.contains("date-banner"));
}

#[tokio::test]
async fn date_filters_narrow_the_consumer_supplied_tables_and_say_so() {
    let env = spawn().await;
    let (status, encounters) = care_record(
        &env,
        PATIENT2,
        &parameters(PATIENT2, "ENC", period(Some("2015-05"), Some("2016"))),
    )
    .await;
    assert_eq!(status, 200);
    let div = html(&encounters);
    assert!(div.contains(
        "<div class=\"date-banner\"><p>For the period '01-May-2015' to '31-Dec-2016'</p></div>"
    ));
    let found = rows(div, "enc-tab");
    assert_eq!(found.len(), 1, "only the 2015 consultation: {div}");
    assert_eq!(found[0][0], "03-Nov-2015");
    assert!(found[0][2].contains("Smoking cessation: Smoker"));

    let (_, nothing) = care_record(
        &env,
        PATIENT2,
        &parameters(
            PATIENT2,
            "ADM",
            period(Some("2014-05-03"), Some("2015-04-30")),
        ),
    )
    .await;
    let div = html(&nothing);
    assert!(div.contains("<p>For the period '03-May-2014' to '30-Apr-2015'</p>"));
    assert!(div.contains("<p>No 'Administrative Items' data is recorded for this patient.</p>"));

    let (_, from) = care_record(
        &env,
        PATIENT2,
        &parameters(PATIENT2, "REF", period(Some("2016-02"), None)),
    )
    .await;
    assert!(html(&from).contains("<p>Data items from '01-Feb-2016'</p>"));
    // The referrals since then, the 2016 one urgent.
    let referrals = rows(html(&from), "ref-tab");
    assert_eq!(referrals.len(), 2, "{referrals:?}");
    assert_eq!(referrals[1][0], "11-Apr-2016");
    assert_eq!(referrals[1][3], "Urgent");
    assert_eq!(referrals[0][3], "Routine");
    let (_, until) = care_record(
        &env,
        PATIENT2,
        &parameters(PATIENT2, "CLI", period(None, Some("2016-02"))),
    )
    .await;
    let div = html(&until);
    assert!(div.contains("<p>Data items until '29-Feb-2016'</p>"));
    assert_eq!(
        rows(div, "cli-tab").len(),
        1,
        "the 2015 smoking entry: {div}"
    );

    // Medication: the "all" subsections ignore the range and say so.
    let (_, medication) = care_record(
        &env,
        PATIENT2,
        &parameters(
            PATIENT2,
            "MED",
            period(Some("2015-05-01"), Some("2016-07-01")),
        ),
    )
    .await;
    let div = html(&medication);
    assert!(div.contains(
        "<h2>Current Repeat Medication</h2><div class=\"content-banner\"><p>The Review Date"
    ));
    assert!(div.contains("<div class=\"date-banner\"><p>Date filter not applied</p>"));
    let all = rows(div, "med-tab-all-sum");
    assert_eq!(
        all.len(),
        2,
        "the 2015 amoxicillin course, under its heading: {div}"
    );
    assert!(all[0][0].contains("<strong>Amoxicillin 500mg capsules</strong>"));
    assert_eq!(all[1][1], "05-Oct-2015");
}

#[tokio::test]
async fn medication_views_group_by_item_and_all_medication_summarises_the_issues() {
    let env = spawn().await;
    let (_, medication) = care_record(&env, PATIENT2, &parameters(PATIENT2, "MED", None)).await;
    let div = html(&medication);
    assert!(div.contains("<div class=\"content-banner\"><p>All repeat medication ended by a clinician action</p></div>"));
    let discontinued = rows(div, "med-tab-dis-rep");
    assert_eq!(discontinued.len(), 1);
    assert_eq!(
        discontinued[0][2],
        "Omeprazole 20mg gastro-resistant capsules"
    );
    assert_eq!(discontinued[0][6], "Symptoms resolved");
    // The confidential sertraline course is withheld, and the table says items were.
    assert!(!div.contains("Sertraline"));
    assert!(div.contains(
        "<h2>Current Repeat Medication</h2><div class=\"content-banner\"><p>The Review Date is that set for each Repeat Course. Reviews may be conducted according to a diary event which differs from the dates shown</p></div><div class=\"date-banner\"><p>All relevant items</p></div><div class=\"exclusion-banner\">"
    ));
    // Acute medication of the last twelve months.
    assert_eq!(rows(div, "med-tab-acu-med").len(), 1);

    // Each All Medication line is the summary of its item's issues.
    let issues = rows(div, "med-tab-all-iss");
    let summary = rows(div, "med-tab-all-sum");
    let mut by_item: std::collections::BTreeMap<String, Vec<&Vec<&str>>> = Default::default();
    for row in issues.iter().filter(|r| r.len() == 7) {
        by_item.entry(row[2].to_owned()).or_default().push(row);
    }
    let amlodipine = &by_item["Amlodipine 5mg tablets"];
    assert_eq!(amlodipine.len(), 4);
    let line = summary
        .iter()
        .find(|r| r.len() == 9 && r[2] == "Amlodipine 5mg tablets")
        .expect("amlodipine line");
    assert_eq!(line[1], "01-Mar-2023", "first issue");
    assert_eq!(line[5], "03-Nov-2026", "last issue");
    assert_eq!(line[6], "4");
    // Item headings come alphabetically, each before its rows.
    let headings: Vec<&str> = summary
        .iter()
        .filter(|r| r.len() == 1)
        .map(|r| r[0])
        .collect();
    let mut sorted = headings.clone();
    sorted.sort();
    assert_eq!(headings, sorted);
}

#[tokio::test]
async fn patients_who_may_not_be_shared_are_not_found_and_dissent_is_forbidden() {
    let env = spawn().await;
    for (nhs, status, code) in [
        ("9690938533", 404, "PATIENT_NOT_FOUND"),  // sensitive
        ("9476718943", 404, "PATIENT_NOT_FOUND"),  // not on PDS
        ("9690938681", 404, "PATIENT_NOT_FOUND"),  // deceased long ago
        ("9690938142", 404, "PATIENT_NOT_FOUND"),  // left the practice
        ("9999999999", 404, "PATIENT_NOT_FOUND"),  // unknown
        ("9690938576", 403, "NO_PATIENT_CONSENT"), // dissented
    ] {
        for section in ["SUM", "ENC"] {
            let (found, outcome) = care_record(&env, nhs, &parameters(nhs, section, None)).await;
            assert_eq!(
                (found, spine_code(&outcome)),
                (status, code),
                "{nhs} {section}"
            );
            assert_eq!(
                outcome["meta"]["profile"][0],
                "http://fhir.nhs.net/StructureDefinition/gpconnect-operationoutcome-1"
            );
            let coding = &outcome["issue"][0]["details"]["coding"][0];
            assert_eq!(
                coding["system"],
                "http://fhir.nhs.net/ValueSet/gpconnect-error-or-warning-code-1"
            );
            assert!(coding["display"].is_string());
        }
    }
    // A death less than 28 days ago leaves the record readable, with the date of death.
    let (status, recent) =
        care_record(&env, "9690938150", &parameters("9690938150", "SUM", None)).await;
    assert_eq!(status, 200, "{recent}");
    assert!(recent["entry"][1]["resource"]["deceasedDateTime"].is_string());
    // A record in transit says what may be missing.
    let (status, transit) =
        care_record(&env, "9690938096", &parameters("9690938096", "ALL", None)).await;
    assert_eq!(status, 200);
    assert!(html(&transit).contains("<div class=\"gptransfer-banner\"><p>Patient record transfer from previous GP practice not yet complete; information recorded before 01-Apr-2015 may be missing</p></div>"));
    // An empty record says so in every table.
    let (_, empty) = care_record(&env, "9690937278", &parameters("9690937278", "PRB", None)).await;
    assert!(html(&empty).contains(
        "<p>No 'Major Inactive Problems and Issues' data is recorded for this patient.</p>"
    ));
}

#[tokio::test]
async fn request_mistakes_get_the_status_and_code_the_suite_expects() {
    let env = spawn().await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            parameters(PATIENT2, "SUM", period(Some("2015"), None)),
            400,
            "INVALID_PARAMETER",
        ),
        (parameters(PATIENT2, "sum", None), 422, "INVALID_PARAMETER"),
        (
            parameters(PATIENT2, "ENC", period(Some("2016"), Some("2014"))),
            422,
            "INVALID_PARAMETER",
        ),
        (
            parameters(PATIENT2, "ENC", period(Some("2015-10-23T11:08:32"), None)),
            422,
            "INVALID_PARAMETER",
        ),
        (json!({"resourceType": "Patient"}), 422, "INVALID_RESOURCE"),
    ];
    for (body, status, code) in cases {
        let (found, outcome) = care_record(&env, PATIENT2, &body).await;
        assert_eq!((found, spine_code(&outcome)), (status, code), "{body}");
    }
    // The NHS number must be valid, and the token must name the same patient.
    let (status, outcome) =
        care_record(&env, "1234567891", &parameters("1234567891", "SUM", None)).await;
    assert_eq!((status, spine_code(&outcome)), (400, "INVALID_NHS_NUMBER"));
    let (status, outcome) =
        care_record(&env, "9690937278", &parameters(PATIENT2, "SUM", None)).await;
    assert_eq!((status, spine_code(&outcome)), (400, "BAD_REQUEST"));
    // An empty body, and a wrong operation name.
    let (status, _) = send(
        call(
            &env,
            Method::POST,
            "/Patient/$gpc.getcarerecord",
            GET_CARE_RECORD,
            &RequestedRecord::Patient(PATIENT2.into()),
        )
        .header("content-type", JSON),
    )
    .await;
    assert_eq!(status, 400);
    let (status, outcome) = send(
        call(
            &env,
            Method::POST,
            "/Patient/$gpc.getCareRecord",
            GET_CARE_RECORD,
            &RequestedRecord::Patient(PATIENT2.into()),
        )
        .header("content-type", JSON)
        .body(parameters(PATIENT2, "SUM", None).to_string()),
    )
    .await;
    assert_eq!((status, spine_code(&outcome)), (400, "BAD_REQUEST"));
    // The provider's own ASID only.
    let (status, outcome) = send(
        call_to(
            &env,
            Method::POST,
            "/Patient/$gpc.getcarerecord",
            GET_CARE_RECORD,
            &RequestedRecord::Patient(PATIENT2.into()),
            "918999198993",
        )
        .header("content-type", JSON)
        .body(parameters(PATIENT2, "SUM", None).to_string()),
    )
    .await;
    assert_eq!((status, spine_code(&outcome)), (400, "BAD_REQUEST"));
}

#[tokio::test]
async fn xml_in_and_out_and_the_conformance_statement() {
    let env = spawn().await;
    let body = format!(
        "<Parameters xmlns=\"http://hl7.org/fhir\"><parameter><name value=\"patientNHSNumber\"/><valueIdentifier><system value=\"http://fhir.nhs.net/Id/nhs-number\"/><value value=\"{PATIENT2}\"/></valueIdentifier></parameter><parameter><name value=\"recordSection\"/><valueCodeableConcept><coding><system value=\"http://fhir.nhs.net/ValueSet/gpconnect-record-section-1\"/><code value=\"IMM\"/></coding></valueCodeableConcept></parameter></Parameters>"
    );
    let response = call(
        &env,
        Method::POST,
        "/Patient/$gpc.getcarerecord",
        GET_CARE_RECORD,
        &RequestedRecord::Patient(PATIENT2.into()),
    )
    .header("accept", "application/xml+fhir;charset=utf-8")
    .header("content-type", "application/xml+fhir;charset=utf-8")
    .body(body)
    .send()
    .await
    .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with(XML)
    );
    let text = response.text().await.expect("body");
    assert!(
        text.starts_with("<Bundle xmlns=\"http://hl7.org/fhir\">"),
        "{text}"
    );
    assert!(text.contains("<resource><Composition>"));
    assert!(text.contains("<table id=\"imm-tab\">"));
    assert!(text.contains("<div xmlns=\"http://www.w3.org/1999/xhtml\"><h1>Immunisations</h1>"));

    let organisation = RequestedRecord::Organization(PRACTICE.into());
    let (status, conformance) =
        send(call(&env, Method::GET, "/metadata", METADATA, &organisation).header("accept", JSON))
            .await;
    assert_eq!(status, 200);
    assert_eq!(conformance["resourceType"], "Conformance");
    assert_eq!(conformance["fhirVersion"], "1.0.2");
    assert_eq!(conformance["version"], "0.7.4");
    assert_eq!(
        conformance["rest"][0]["operation"][0]["name"],
        "gpc.getcarerecord"
    );
    let (status, xml) = send(
        call(
            &env,
            Method::GET,
            "/metadata?_format=application%2Fxml%2Bfhir",
            METADATA,
            &organisation,
        )
        .header("accept", JSON),
    )
    .await;
    assert_eq!(status, 200);
    assert!(xml.as_str().is_some_and(|t| t.starts_with("<Conformance")));
    // text/xml is not a FHIR media type.
    let (status, _) = send(
        call(&env, Method::GET, "/metadata", METADATA, &organisation).header("accept", "text/xml"),
    )
    .await;
    assert_eq!(status, 415);
    // The metadata token asks for the organisation; a patient scope is refused.
    let (status, _) = send(
        call(
            &env,
            Method::GET,
            "/metadata",
            GET_CARE_RECORD,
            &organisation,
        )
        .header("accept", JSON),
    )
    .await;
    assert_eq!(status, 400);
}

/// The platform configuration with `settings` on the GP Connect product.
fn with_settings(settings: &[(&str, &str)]) -> PlatformConfig {
    let mut platform = PlatformConfig::default();
    for product in platform
        .products
        .iter_mut()
        .filter(|p| p.api == "gp-connect")
    {
        product.settings = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }
    platform
}

#[tokio::test]
async fn the_provider_settings_change_the_window_after_death_exclusions_and_version() {
    let env = spawn_with(with_settings(&[
        ("deceased-access-days", "10"),
        ("html-excluded-codes", "77176002"),
        ("html-spec-version", "0.7.3"),
    ]))
    .await;
    // patient22 died 14 days ago: past a 10-day window.
    let (status, outcome) =
        care_record(&env, "9690938150", &parameters("9690938150", "SUM", None)).await;
    assert_eq!((status, spine_code(&outcome)), (404, "PATIENT_NOT_FOUND"));
    let (_, clinical) = care_record(&env, PATIENT2, &parameters(PATIENT2, "CLI", None)).await;
    assert!(!html(&clinical).contains("Smoker"));
    let (_, conformance) = send(
        call(
            &env,
            Method::GET,
            "/metadata",
            METADATA,
            &RequestedRecord::Organization(PRACTICE.into()),
        )
        .header("accept", JSON),
    )
    .await;
    assert_eq!(conformance["version"], "0.7.3");
}

#[test]
fn a_bad_setting_stops_the_server_at_start_saying_which() {
    let products = carehub_gateway::Products::new().with_settings(
        carehub_gpconnect::SERVICE,
        carehub_gpconnect::settings_check(),
    );
    assert_eq!(
        products.check_settings(&with_settings(&[("deceased-access-days", "28")])),
        Ok(())
    );
    let error = products
        .check_settings(&with_settings(&[("deceased-access-days", "four weeks")]))
        .expect_err("refused");
    assert!(
        error.contains("gp-connect") && error.contains("deceased-access-days"),
        "{error}"
    );
    let mut platform = PlatformConfig::default();
    for product in platform
        .products
        .iter_mut()
        .filter(|p| p.api == "spine-directory-service")
    {
        product.settings.insert("anything".into(), "1".into());
    }
    let error = products.check_settings(&platform).expect_err("refused");
    assert!(error.contains("takes no settings"), "{error}");
}

#[tokio::test]
async fn sds_names_the_dstu2_root_and_the_proxy_forwards_to_it() {
    let env = spawn().await;
    let sds = format!("{}/int/spine-directory/FHIR/R4", env.url);
    let (status, endpoints) = send(
        env.client
            .get(format!(
                "{sds}/Endpoint?organization=https://fhir.nhs.uk/Id/ods-organization-code%7C{PRACTICE}&identifier=https://fhir.nhs.uk/Id/nhsServiceInteractionId%7C{GET_CARE_RECORD}"
            ))
            .header("apikey", &env.api_key),
    )
    .await;
    assert_eq!(status, 200, "{endpoints}");
    assert_eq!(endpoints["total"], 1);
    assert_eq!(
        endpoints["entry"][0]["resource"]["address"],
        root(&env).as_str()
    );

    let token = jwt::token_dstu2(
        &RequestedRecord::Patient(PATIENT2.into()),
        "A11111",
        "UNK",
        "patient/*.read",
        now() - 2,
    );
    let through_ssp = |path: &str| {
        env.client
            .post(format!("{}/int/ssp/{}{path}", env.url, root(&env)))
            .header("apikey", &env.api_key)
            .header("Ssp-TraceID", "7a9c5f00-1b2c-4d3e-8f40-5a6b7c8d9e0f")
            .header("Ssp-From", CONSUMER_ASID)
            .header("Ssp-To", PROVIDER_ASID)
            .header("Ssp-InteractionID", GET_CARE_RECORD)
            .header("content-type", JSON)
            .bearer_auth(&token)
            .body(parameters(PATIENT2, "REF", None).to_string())
    };
    let (status, bundle) = send(through_ssp("/Patient/$gpc.getcarerecord")).await;
    assert_eq!(status, 200, "{bundle}");
    assert!(html(&bundle).contains("<table id=\"ref-tab\">"));
}
