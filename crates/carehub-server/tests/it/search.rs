use serde_json::json;

use crate::helpers::*;

async fn seed_patients(app: &TestApp) -> Vec<String> {
    let people = [
        ("Smith", "Jane", "9000000009", "1970-01-01", "female"),
        ("Smithson", "Zoë", "9000000017", "1985-06-15", "female"),
        ("Jones", "Bob", "9000000025", "1990-12-31", "male"),
        ("Müller", "Anna", "9000000033", "2001-03-03", "female"),
        ("Brown", "Carl", "9000000041", "1955-07-07", "male"),
    ];
    let mut ids = Vec::new();
    for (family, given, nhs, birth, gender) in people {
        let created = app
            .create(
                &app.r4("/Patient"),
                &patient(family, given, nhs, birth, gender),
            )
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test]
async fn token_string_date_and_id_searches() {
    let app = spawn_app().await;
    let ids = seed_patients(&app).await;
    let search = |query: &str| {
        let url = app.r4(&format!("/Patient?{query}"));
        let query = query.to_owned();
        let app = &app;
        async move {
            let (status, bundle) = app.get_json(&url).await;
            assert_eq!(status, 200, "{query}: {bundle}");
            assert_eq!(bundle["type"], "searchset");
            let mut found = crate::helpers::ids(&bundle);
            found.sort();
            found
        }
    };
    let expect = |indexes: &[usize]| {
        let mut wanted: Vec<String> = indexes.iter().map(|&i| ids[i].clone()).collect();
        wanted.sort();
        wanted
    };
    assert_eq!(
        search("identifier=https://fhir.nhs.uk/Id/nhs-number|9000000025").await,
        expect(&[2])
    );
    assert_eq!(
        search("identifier=9000000025,9000000041").await,
        expect(&[2, 4])
    );
    assert_eq!(
        search("identifier=http://other|9000000025").await,
        expect(&[])
    );
    assert_eq!(search("family=smith").await, expect(&[0, 1]));
    assert_eq!(search("family:exact=Smith").await, expect(&[0]));
    assert_eq!(
        search("given=zoe").await,
        expect(&[1]),
        "accent-insensitive"
    );
    assert_eq!(search("name:contains=ulle").await, expect(&[3]));
    assert_eq!(search("gender=female&family=smith").await, expect(&[0, 1]));
    assert_eq!(search("gender:not=female").await, expect(&[2, 4]));
    // A bound code carries its code system.
    assert_eq!(
        search("gender=http://hl7.org/fhir/administrative-gender|male").await,
        expect(&[2, 4])
    );
    assert_eq!(search("gender=http://other|male").await, expect(&[]));
    assert_eq!(search("birthdate=1970").await, expect(&[0]));
    assert_eq!(search("birthdate=ge1985-06-15").await, expect(&[1, 2, 3]));
    assert_eq!(
        search("birthdate=lt1970-01-02&birthdate=gt1950").await,
        expect(&[0, 4])
    );
    assert_eq!(search("birthdate=sa1990").await, expect(&[3]));
    assert_eq!(search(&format!("_id={}", ids[3])).await, expect(&[3]));
    assert_eq!(
        search("address:missing=true&gender=male").await,
        expect(&[2, 4])
    );
}

#[tokio::test]
async fn paging_links_cover_every_match_once_under_concurrent_writes() {
    let app = spawn_app().await;
    let mut all = seed_patients(&app).await;
    all.extend(seed_patients(&app).await);
    let (_, mut page) = app
        .get_json(&app.r4("/Patient?_count=3&_sort=-birthdate"))
        .await;
    assert_eq!(page["total"], 10);
    let mut seen = ids(&page);
    let mut previous_dates: Vec<String> = Vec::new();
    let mut inserted = false;
    while let Some(next) = link(&page, "next") {
        if !inserted {
            // A write between pages must not shift what the next page holds.
            app.create(
                &app.r4("/Patient"),
                &patient("Late", "Comer", "9000000068", "1960-01-01", "male"),
            )
            .await;
            inserted = true;
        }
        let (status, next_page) = app.get_json(&next).await;
        assert_eq!(status, 200);
        for entry in next_page["entry"].as_array().into_iter().flatten() {
            previous_dates.push(entry["resource"]["birthDate"].as_str().unwrap().to_owned());
        }
        seen.extend(ids(&next_page));
        page = next_page;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a resource appeared twice");
    for id in &all {
        assert!(seen.contains(id), "{id} was skipped");
    }
    // The previous link of the last page leads back to the page before it.
    let previous = link(&page, "previous").expect("previous link");
    let (_, back) = app.get_json(&previous).await;
    assert_eq!(ids(&back).len(), 3);
}

#[tokio::test]
async fn references_chains_has_includes() {
    let app = spawn_app().await;
    let org = app.create(&app.r4("/Organization"), &json!({"resourceType": "Organization", "name": "Oakfield Surgery",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A81001"}]})).await;
    let org_id = org["id"].as_str().unwrap();
    let mut p = patient("Smith", "Jane", "9000000009", "1970-01-01", "female");
    p["generalPractitioner"] = json!([{"reference": format!("Organization/{org_id}")}]);
    let pat = app.create(&app.r4("/Patient"), &p).await;
    let pat_id = pat["id"].as_str().unwrap();
    app.create(
        &app.r4("/Patient"),
        &patient("Other", "Person", "9000000017", "1980-01-01", "male"),
    )
    .await;
    let obs = app.create(&app.r4("/Observation"), &json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": format!("Patient/{pat_id}")},
        "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}})).await;

    let (_, bundle) = app
        .get_json(&app.r4(&format!("/Observation?subject=Patient/{pat_id}")))
        .await;
    assert_eq!(ids(&bundle), [obs["id"].as_str().unwrap()]);
    let (_, bundle) = app
        .get_json(&app.r4("/Observation?subject:Patient.name=smith"))
        .await;
    assert_eq!(ids(&bundle).len(), 1, "chained search");
    let (_, bundle) = app
        .get_json(&app.r4("/Observation?value-quantity=gt70|http://unitsofmeasure.org|kg"))
        .await;
    assert_eq!(ids(&bundle).len(), 1, "quantity search");
    let (_, bundle) = app
        .get_json(&app.r4("/Observation?value-quantity=lt70"))
        .await;
    assert_eq!(ids(&bundle).len(), 0);
    let (_, bundle) = app
        .get_json(&app.r4("/Patient?_has:Observation:subject:code=29463-7"))
        .await;
    assert_eq!(ids(&bundle), [pat_id]);
    let (_, bundle) = app.get_json(&app.r4(&format!("/Patient?_id={pat_id}&_include=Patient:general-practitioner&_revinclude=Observation:subject"))).await;
    let modes: Vec<(&str, &str)> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["resource"]["resourceType"].as_str().unwrap(),
                e["search"]["mode"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(modes.contains(&("Patient", "match")));
    assert!(modes.contains(&("Organization", "include")));
    assert!(modes.contains(&("Observation", "include")));
}

#[tokio::test]
async fn unknown_parameters_are_errors_unless_lenient() {
    let app = spawn_app().await;
    let (status, outcome) = app.get_json(&app.r4("/Patient?shoe-size=9")).await;
    assert_eq!(status, 400);
    assert_eq!(outcome_location(&outcome), ["shoe-size"]);
    let response = app
        .client
        .get(app.r4("/Patient?shoe-size=9"))
        .header("prefer", "handling=lenient")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let bundle: serde_json::Value = response.json().await.unwrap();
    let outcome = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .unwrap();
    assert_eq!(outcome["resource"]["issue"][0]["severity"], "warning");
    let (status, _) = app.get_json(&app.r4("/Patient?birthdate=notadate")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn summary_elements_and_post_search() {
    let app = spawn_app().await;
    seed_patients(&app).await;
    let (_, bundle) = app
        .get_json(&app.r4("/Patient?_elements=gender&_count=1"))
        .await;
    let resource = &bundle["entry"][0]["resource"];
    assert!(resource.get("gender").is_some() && resource.get("name").is_none());
    assert_eq!(resource["meta"]["tag"][0]["code"], "SUBSETTED");
    let response = app
        .client
        .post(app.r4("/Patient/_search"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("family=smith&gender=female")
        .send()
        .await
        .unwrap();
    let bundle: serde_json::Value = response.json().await.unwrap();
    assert_eq!(ids(&bundle).len(), 2);
}

#[tokio::test]
async fn include_star_follows_every_reference() {
    let app = spawn_app().await;
    let org = app
        .create(
            &app.r4("/Organization"),
            &json!({"resourceType": "Organization", "name": "Elm Practice"}),
        )
        .await;
    let mut p = patient("Star", "Include", "9000000009", "1970-01-01", "female");
    p["managingOrganization"] =
        json!({"reference": format!("Organization/{}", org["id"].as_str().unwrap())});
    app.create(&app.r4("/Patient"), &p).await;
    let (status, bundle) = app
        .get_json(&app.r4("/Patient?family=star&_include=Patient:*"))
        .await;
    assert_eq!(status, 200);
    let included: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(included, ["Organization"]);
}

#[tokio::test]
async fn composite_parameters_match_values_of_one_element() {
    let app = spawn_app().await;
    let pressure = |systolic: f64, diastolic: f64| {
        json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": systolic, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": diastolic, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]})
    };
    let high = app
        .create(&app.r4("/Observation"), &pressure(150.0, 95.0))
        .await;
    // High diastolic, normal systolic: a search for a high systolic must not pair this
    // observation's systolic code with its diastolic value.
    let mixed = app
        .create(&app.r4("/Observation"), &pressure(120.0, 150.0))
        .await;
    let weight = app.create(&app.r4("/Observation"), &json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}})).await;
    let id = |resource: &serde_json::Value| resource["id"].as_str().unwrap().to_owned();

    let (status, bundle) = search(
        &app,
        "component-code-value-quantity=http://loinc.org|8480-6$gt140",
    )
    .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(ids(&bundle), [id(&high)]);
    let (_, bundle) = search(&app, "component-code-value-quantity=8462-4$gt140").await;
    assert_eq!(ids(&bundle), [id(&mixed)]);
    // Alternatives are ORed; units narrow.
    let (_, bundle) = search(&app, "component-code-value-quantity=8480-6$gt140|http://unitsofmeasure.org|mm[Hg],8462-4$gt140&_sort=_id",
    )
    .await;
    let mut expected = vec![id(&high), id(&mixed)];
    expected.sort();
    assert_eq!(ids(&bundle), expected);
    let (_, bundle) = search(&app, "component-code-value-quantity=8480-6$gt140||kg").await;
    assert!(ids(&bundle).is_empty());
    // The observation's own code and value; combo- covers both levels.
    let (_, bundle) = search(&app, "code-value-quantity=http://loinc.org|29463-7$ge72").await;
    assert_eq!(ids(&bundle), [id(&weight)]);
    let (_, bundle) = search(&app, "code-value-quantity=29463-7$lt70").await;
    assert!(ids(&bundle).is_empty());
    let (_, bundle) = search(
        &app,
        "combo-code-value-quantity=29463-7$72.5,8480-6$150&_sort=_id",
    )
    .await;
    let mut expected = vec![id(&high), id(&weight)];
    expected.sort();
    assert_eq!(ids(&bundle), expected);

    // An update re-indexes the tuples.
    let mut lowered = pressure(110.0, 70.0);
    lowered["id"] = json!(id(&high));
    let response = app
        .put(&app.r4(&format!("/Observation/{}", id(&high))), &lowered)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let (_, bundle) = search(&app, "component-code-value-quantity=8480-6$gt140").await;
    assert!(ids(&bundle).is_empty());

    // Malformed values name the parameter.
    let (status, outcome) = search(&app, "component-code-value-quantity=8480-6").await;
    assert_eq!(status, 400);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "component-code-value-quantity"
    );
    let capability = app.get_json(&app.r4("/metadata")).await.1;
    let observation = capability["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    assert!(
        observation["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "component-code-value-quantity" && p["type"] == "composite"),
        "the CapabilityStatement lists composite parameters"
    );
}

async fn search(app: &TestApp, query: &str) -> (u16, serde_json::Value) {
    app.get_json(&app.r4(&format!("/Observation?{query}")))
        .await
}
