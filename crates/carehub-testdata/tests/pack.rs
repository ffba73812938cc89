//! Black-box tests of a pack: determinism, uniqueness, references that resolve, and the fields
//! each resource promises, checked on the FHIR JSON a consumer would see.

use std::collections::{HashMap, HashSet};

use carehub_testdata::fhir::systems;
use carehub_testdata::{
    Date, FhirVersion, Gender, NHS_NUMBER_CAPACITY, OrganisationKind, Pack, PackSpec,
    REFERENCE_DATE, is_drama_phone_number, is_gp_practice_code, is_trust_code, is_trust_site_code,
    is_valid_nhs_number, is_valid_postcode_format,
};
use proptest::prelude::*;
use serde_json::Value;

fn spec(seed: u64) -> PackSpec {
    PackSpec {
        seed,
        patients: 2_000,
        practices: 12,
        trusts: 3,
        practitioners_per_org: 6,
    }
}

fn ndjson(pack: &Pack, v: FhirVersion) -> Vec<u8> {
    let mut out = Vec::new();
    for resource in pack.all_resources(v) {
        out.extend(serde_json::to_vec(&resource).unwrap());
        out.push(b'\n');
    }
    out
}

/// FNV-1a: a fixed, dependency-free digest for the golden test.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

#[test]
fn same_seed_gives_byte_identical_output() {
    for v in FhirVersion::ALL {
        let a = ndjson(&Pack::new(spec(42)), v);
        let b = ndjson(&Pack::new(spec(42)), v);
        assert_eq!(a, b);
        let c = ndjson(&Pack::new(spec(43)), v);
        assert_ne!(a, c);
    }
}

#[test]
fn different_seeds_give_different_people() {
    let a = Pack::new(spec(1));
    let b = Pack::new(spec(2));
    let differing = (0..100)
        .filter(|&i| {
            let (x, y) = (a.patient_record(i).unwrap(), b.patient_record(i).unwrap());
            x.nhs_number != y.nhs_number && x.id != y.id
        })
        .count();
    assert_eq!(differing, 100);
}

#[test]
fn output_is_pinned_across_platforms_and_versions() {
    // If this fails, generated data changed: every stored pack and every test that names a
    // generated patient would change with it. Update the constants only on purpose.
    let pack = Pack::new(spec(42));
    let first = pack.patient_record(0).unwrap();
    let pinned = format!(
        "{} {} {:?} {:?} {} {} {} {}",
        first.nhs_number,
        first.id,
        first.prefix,
        first.given_names().collect::<Vec<_>>(),
        first.family,
        first.birth_date,
        first.address.postcode,
        first
            .gp_practice
            .as_ref()
            .map_or("", |p| p.ods_code.as_str()),
    );
    assert_eq!(pinned, GOLDEN_PATIENT_0);
    assert_eq!(fnv1a(&ndjson(&pack, FhirVersion::R4)), GOLDEN_R4_DIGEST);
    assert_eq!(fnv1a(&ndjson(&pack, FhirVersion::Stu3)), GOLDEN_STU3_DIGEST);
}

const GOLDEN_PATIENT_0: &str = "9997502108 a5d953a1-ee79-8be5-9160-a3a010fa20e9 Some(\"Mrs\") [\"Maya\"] Nguyen 1977-07-19 SN2 4WY B73254";
const GOLDEN_R4_DIGEST: u64 = 0x7aa3_ef50_2ebe_a9a3;
const GOLDEN_STU3_DIGEST: u64 = 0x3049_4b4d_a1fe_49ec;

#[test]
fn patient_by_index_equals_the_iterator_and_ignores_pack_size() {
    let small = Pack::new(spec(7));
    let large = Pack::new(PackSpec {
        patients: 800_000,
        ..spec(7)
    });
    for (i, from_iter) in small.patients(FhirVersion::R4).enumerate() {
        let i = i as u64;
        assert_eq!(Some(&from_iter), small.patient(i, FhirVersion::R4).as_ref());
        if i.is_multiple_of(97) {
            assert_eq!(Some(from_iter), large.patient(i, FhirVersion::R4));
        }
    }
    // A record deep in a large pack, without generating the ones before it.
    let deep = large.patient_record(500_000).unwrap();
    assert!(is_valid_nhs_number(deep.nhs_number.as_str()));
    assert_eq!(small.patient(2_000, FhirVersion::R4), None);
}

#[test]
fn a_patient_is_the_same_person_whatever_the_practice_count() {
    let packs: Vec<Pack> = [0, 1, 5, 500]
        .into_iter()
        .map(|practices| {
            Pack::new(PackSpec {
                practices,
                ..spec(11)
            })
        })
        .collect();
    for i in 0..300 {
        let records: Vec<_> = packs.iter().map(|p| p.patient_record(i).unwrap()).collect();
        let first = &records[0];
        for other in &records[1..] {
            assert_eq!(other.nhs_number, first.nhs_number);
            assert_eq!(other.id, first.id);
            assert_eq!(
                (other.given, other.middle_name, other.family, other.prefix),
                (first.given, first.middle_name, first.family, first.prefix)
            );
            assert_eq!(
                (other.gender, other.birth_date),
                (first.gender, first.birth_date)
            );
            assert_eq!(
                (other.death_date, other.sensitive),
                (first.death_date, first.sensitive)
            );
            assert_eq!(other.address.line, first.address.line);
            assert_eq!(
                (&other.home_phone, &other.mobile_phone, &other.email),
                (&first.home_phone, &first.mobile_phone, &first.email)
            );
        }
        assert!(first.gp_practice.is_none());
        assert!(records[1..].iter().all(|r| r.gp_practice.is_some()));
    }
}

#[test]
fn counts_are_capped_at_identifier_capacity() {
    let too_many = PackSpec {
        patients: 1_000_000,
        ..spec(1)
    };
    let err = Pack::try_new(too_many).unwrap_err();
    assert_eq!((err.what, err.capacity), ("patients", NHS_NUMBER_CAPACITY));
    assert!(err.to_string().contains("1000000 patients"));
    let clamped = Pack::new(too_many);
    assert_eq!(clamped.patient_count(), NHS_NUMBER_CAPACITY);
    assert!(clamped.patient_record(NHS_NUMBER_CAPACITY - 1).is_some());
    assert!(clamped.patient_record(NHS_NUMBER_CAPACITY).is_none());

    let err = Pack::try_new(PackSpec {
        trusts: 5_000,
        ..spec(1)
    })
    .unwrap_err();
    assert_eq!(err.what, "trusts");
    assert!(Pack::try_new(spec(1)).is_ok());
}

#[test]
fn packs_and_their_iterators_can_cross_threads() {
    // Loaders hold the iterator across `.await` on multi-threaded runtimes, and may split index
    // ranges across threads.
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let pack = Pack::new(spec(1));
    send_sync(&pack);
    send(&pack.all_resources(FhirVersion::R4));
    send(&pack.patient_records());
}

#[test]
fn empty_and_degenerate_packs_do_not_panic() {
    let empty = Pack::new(PackSpec {
        seed: 0,
        patients: 0,
        practices: 0,
        trusts: 0,
        practitioners_per_org: 0,
    });
    assert_eq!(empty.all_resources(FhirVersion::R4).count(), 0);
    let no_practices = Pack::new(PackSpec {
        seed: 0,
        patients: 10,
        practices: 0,
        trusts: 1,
        practitioners_per_org: 0,
    });
    let patients: Vec<_> = no_practices.patient_records().collect();
    assert_eq!(patients.len(), 10);
    assert!(patients.iter().all(|p| p.gp_practice.is_none()));
    assert_eq!(no_practices.practitioner_record(0), None);
}

#[test]
fn every_resource_has_what_the_api_promises() {
    for seed in [1, 99] {
        for v in FhirVersion::ALL {
            check_pack(&Pack::new(spec(seed)), v);
        }
    }
}

fn check_pack(pack: &Pack, v: FhirVersion) {
    let resources: Vec<Value> = pack.all_resources(v).collect();
    let expected = pack.organisation_count() + 2 * pack.practitioner_count() + pack.patient_count();
    assert_eq!(resources.len() as u64, expected);

    // Ids: valid FHIR ids, unique per type.
    let mut targets = HashSet::new();
    for r in &resources {
        let id = str_at(r, "/id");
        assert!(
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "bad id {id}"
        );
        assert!(
            targets.insert(format!("{}/{id}", str_at(r, "/resourceType"))),
            "duplicate {id}"
        );
    }

    // Every literal reference resolves within the pack.
    let mut references = 0;
    for r in &resources {
        visit_references(r, &mut |reference| {
            references += 1;
            assert!(targets.contains(reference), "dangling {reference}");
        });
    }
    assert!(references > 0);

    let mut nhs_numbers = HashSet::new();
    let mut ods_codes = HashSet::new();
    let mut sds_user_ids = HashSet::new();
    let mut role_profile_ids = HashSet::new();
    let mut org_kind_by_ref = HashMap::new();
    for r in &resources {
        match str_at(r, "/resourceType") {
            "Patient" => {
                check_patient(r, v);
                assert!(nhs_numbers.insert(str_at(r, "/identifier/0/value").to_owned()));
            }
            "Organization" => {
                assert_eq!(
                    str_at(r, "/identifier/0/system"),
                    systems::ODS_ORGANIZATION_CODE
                );
                let code = str_at(r, "/identifier/0/value").to_owned();
                let kind = if r.get("partOf").is_some() {
                    assert!(is_trust_site_code(&code), "{code}");
                    OrganisationKind::TrustSite
                } else if is_trust_code(&code) {
                    OrganisationKind::Trust
                } else {
                    assert!(is_gp_practice_code(&code), "{code}");
                    OrganisationKind::GpPractice
                };
                org_kind_by_ref.insert(format!("Organization/{}", str_at(r, "/id")), kind);
                assert!(!str_at(r, "/name").is_empty());
                assert!(is_valid_postcode_format(str_at(r, "/address/0/postalCode")));
                assert!(is_drama_phone_number(str_at(r, "/telecom/0/value")));
                assert!(ods_codes.insert(code));
            }
            "Practitioner" => {
                assert_eq!(str_at(r, "/identifier/0/system"), systems::SDS_USER_ID);
                let id = str_at(r, "/identifier/0/value");
                assert!(
                    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()),
                    "{id}"
                );
                assert!(sds_user_ids.insert(id.to_owned()));
                assert!(!str_at(r, "/name/0/family").is_empty());
                assert_eq!(r["name"].as_array().map(Vec::len), Some(1));
                assert!(["male", "female"].contains(&str_at(r, "/gender")));
            }
            "PractitionerRole" => {
                assert_eq!(
                    str_at(r, "/identifier/0/system"),
                    systems::SDS_ROLE_PROFILE_ID
                );
                let id = str_at(r, "/identifier/0/value");
                assert!(
                    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()),
                    "{id}"
                );
                assert!(role_profile_ids.insert(id.to_owned()));
                let system = match v {
                    FhirVersion::Stu3 => systems::SDS_JOB_ROLE_STU3,
                    FhirVersion::R4 => systems::SDS_JOB_ROLE_R4,
                };
                assert_eq!(str_at(r, "/code/0/coding/0/system"), system);
                let code = str_at(r, "/code/0/coding/0/code");
                assert!(code.len() == 5 && code.starts_with('R'), "{code}");
                assert!(!str_at(r, "/code/0/coding/0/display").is_empty());
                assert!(str_at(r, "/practitioner/reference").starts_with("Practitioner/"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(nhs_numbers.len() as u64, pack.patient_count());
    assert_eq!(sds_user_ids.len() as u64, pack.practitioner_count());

    // Patients are registered at GP practices; roles are held at practices or trusts.
    for r in &resources {
        let target = match str_at(r, "/resourceType") {
            "Patient" => Some((str_at(r, "/generalPractitioner/0/reference"), false)),
            "PractitionerRole" => Some((str_at(r, "/organization/reference"), true)),
            _ => None,
        };
        if let Some((reference, trust_allowed)) = target {
            let kind = org_kind_by_ref[reference];
            assert!(
                kind == OrganisationKind::GpPractice
                    || (trust_allowed && kind == OrganisationKind::Trust),
                "{reference} is {kind:?}"
            );
        }
    }
}

fn check_patient(r: &Value, v: FhirVersion) {
    let nhs = str_at(r, "/identifier/0/value");
    assert!(is_valid_nhs_number(nhs) && nhs.starts_with("999"), "{nhs}");
    assert_eq!(str_at(r, "/identifier/0/system"), systems::NHS_NUMBER);
    let (extension, codes) = match v {
        FhirVersion::Stu3 => {
            assert_eq!(str_at(r, "/meta/profile/0"), systems::GPC_PATIENT_PROFILE);
            assert_eq!(str_at(r, "/name/0/use"), "official");
            (
                systems::NHS_NUMBER_VERIFICATION_STU3,
                systems::NHS_NUMBER_VERIFICATION_CODES_STU3,
            )
        }
        FhirVersion::R4 => (
            systems::NHS_NUMBER_VERIFICATION_R4,
            systems::NHS_NUMBER_VERIFICATION_CODES_R4,
        ),
    };
    assert_eq!(str_at(r, "/identifier/0/extension/0/url"), extension);
    let coding = "/identifier/0/extension/0/valueCodeableConcept/coding/0";
    assert_eq!(str_at(r, &format!("{coding}/system")), codes);
    assert_eq!(str_at(r, &format!("{coding}/code")), "01");

    assert!(!str_at(r, "/name/0/family").is_empty());
    assert!(!str_at(r, "/name/0/given/0").is_empty());
    assert!(["male", "female", "other", "unknown"].contains(&str_at(r, "/gender")));
    let birth = parse_date(str_at(r, "/birthDate"));
    assert!(birth <= REFERENCE_DATE && birth.years_until(REFERENCE_DATE) <= 100);
    if let Some(death) = r.get("deceasedDateTime") {
        let death = parse_date(death.as_str().unwrap_or_default());
        assert!(birth <= death && death <= REFERENCE_DATE);
    }
    assert!(r.get("deceasedBoolean").is_none());
    assert!(is_valid_postcode_format(str_at(r, "/address/0/postalCode")));
    assert!(!str_at(r, "/address/0/line/0").is_empty());
    for contact in r
        .get("telecom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let value = str_at(contact, "/value");
        match str_at(contact, "/system") {
            "phone" => assert!(is_drama_phone_number(value), "{value}"),
            "email" => assert!(
                value.ends_with("@example.com") && value.len() > 13,
                "{value}"
            ),
            other => panic!("unexpected telecom system {other}"),
        }
    }
    let label = str_at(r, "/meta/security/0/code");
    assert!(label == "U" || label == "R");
}

/// Parses `YYYY-MM-DD` strictly: ten characters, dashes in place, a real calendar date.
fn parse_date(text: &str) -> Date {
    let b = text.as_bytes();
    assert!(
        b.len() == 10 && b[4] == b'-' && b[7] == b'-',
        "bad date {text}"
    );
    let year = text[..4]
        .parse()
        .unwrap_or_else(|_| panic!("bad date {text}"));
    let month = text[5..7]
        .parse()
        .unwrap_or_else(|_| panic!("bad date {text}"));
    let day = text[8..]
        .parse()
        .unwrap_or_else(|_| panic!("bad date {text}"));
    Date::new(year, month, day).unwrap_or_else(|| panic!("bad date {text}"))
}

fn visit_references(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("reference", Value::String(reference)) => f(reference),
                    _ => visit_references(child, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| visit_references(item, f)),
        _ => {}
    }
}

#[test]
fn population_looks_like_a_practice_list() {
    let pack = Pack::new(PackSpec {
        patients: 20_000,
        ..spec(5)
    });
    let patients: Vec<_> = pack.patient_records().collect();
    let share = |f: &dyn Fn(&carehub_testdata::PatientRecord) -> bool| {
        patients.iter().filter(|p| f(p)).count() as f64 / patients.len() as f64
    };
    let deceased = share(&|p| p.is_deceased());
    let sensitive = share(&|p| p.sensitive);
    let female = share(&|p| p.gender == Gender::Female);
    let rare_gender = share(&|p| matches!(p.gender, Gender::Other | Gender::Unknown));
    let children = share(&|p| p.birth_date.years_until(REFERENCE_DATE) < 18);
    let over_90 = share(&|p| p.birth_date.years_until(REFERENCE_DATE) >= 90);
    assert!((0.003..0.03).contains(&deceased), "deceased {deceased}");
    assert!((0.001..0.015).contains(&sensitive), "sensitive {sensitive}");
    assert!((0.45..0.55).contains(&female), "female {female}");
    assert!(
        rare_gender > 0.0 && rare_gender < 0.01,
        "other/unknown {rare_gender}"
    );
    assert!((0.15..0.30).contains(&children), "children {children}");
    assert!(over_90 > 0.0 && over_90 < 0.03, "over 90 {over_90}");
    assert!(
        patients
            .iter()
            .all(|p| !p.address.city.is_empty() && !p.address.line.is_empty())
    );
    // Children have no title; some adults are doctors.
    assert!(
        patients
            .iter()
            .filter(|p| p.birth_date.years_until(REFERENCE_DATE) < 18)
            .all(|p| p.prefix.is_none())
    );
    let distinct_family: HashSet<_> = patients.iter().map(|p| p.family).collect();
    assert!(distinct_family.len() > 250);
}

#[test]
fn organisations_hold_together() {
    let pack = Pack::new(spec(3));
    let orgs: Vec<_> = pack.organisation_records().collect();
    let trusts: HashMap<_, _> = orgs
        .iter()
        .filter(|o| o.kind == OrganisationKind::Trust)
        .map(|o| (o.id.clone(), o))
        .collect();
    assert_eq!(trusts.len(), 3);
    for site in orgs
        .iter()
        .filter(|o| o.kind == OrganisationKind::TrustSite)
    {
        let parent = site.part_of.as_ref().expect("a site has a trust");
        let trust = trusts[&parent.id];
        assert!(site.ods_code.starts_with(&trust.ods_code));
        assert_eq!(site.address.city, trust.address.city);
    }
    for (i, org) in orgs.iter().enumerate() {
        assert_eq!(org.index, i as u64);
    }
    // Every practice has a GP partner; every trust a consultant.
    for org in orgs
        .iter()
        .filter(|o| o.kind != OrganisationKind::TrustSite)
    {
        let lead = pack
            .practitioner_records()
            .find(|p| p.organisation.id == org.id)
            .expect("staff");
        let expected = if org.kind == OrganisationKind::GpPractice {
            "R0260"
        } else {
            "R0050"
        };
        assert_eq!(lead.job_role.code, expected);
        assert_eq!(lead.prefix, Some("Dr"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_patient_of_any_seed_is_well_formed(seed in any::<u64>(), index in 0..NHS_NUMBER_CAPACITY) {
        let pack = Pack::new(PackSpec { seed, patients: NHS_NUMBER_CAPACITY, ..spec(0) });
        let p = pack.patient_record(index).unwrap();
        prop_assert!(is_valid_nhs_number(p.nhs_number.as_str()));
        prop_assert!(p.nhs_number.is_test_range());
        prop_assert!(is_valid_postcode_format(&p.address.postcode));
        prop_assert!(p.birth_date <= REFERENCE_DATE);
        if let Some(death) = p.death_date {
            prop_assert!(p.birth_date <= death && death <= REFERENCE_DATE);
        }
        for v in FhirVersion::ALL {
            let r = pack.patient(index, v).unwrap();
            prop_assert_eq!(str_at(&r, "/identifier/0/value"), p.nhs_number.as_str());
            prop_assert_eq!(str_at(&r, "/id"), p.id.as_str());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3))]

    #[test]
    fn nhs_numbers_are_unique_over_a_large_sample(seed in any::<u64>(), start in 0..NHS_NUMBER_CAPACITY - 200_000) {
        let allocator = carehub_testdata::NhsNumberAllocator::new(seed);
        let mut seen = HashSet::with_capacity(200_000);
        for i in start..start + 200_000 {
            let number = allocator.number(i).unwrap();
            prop_assert!(is_valid_nhs_number(number.as_str()));
            prop_assert!(number.is_test_range());
            prop_assert!(seen.insert(number));
        }
    }
}
