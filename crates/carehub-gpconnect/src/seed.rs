//! What `carehub up` seeds in an integration environment's GP system: the organisations the
//! provider test suite names (ORG1 B82617, ORG2 R1A14, ORG3 X12345), their sites, the
//! practitioners (practitioner4, G99999999, deliberately absent), healthcare services, and the
//! test patients registered at B82617 in the states the suite needs. PDS gets its population
//! from `carehub_spine::pds::seed` first; the GP records take their demographics from it.

use carehub_spine::pds::{self, PdsPatient};
use carehub_spine::sds::{AccreditedSystem, MessageHandler};

use crate::domain::Interaction;

use crate::domain::directory::{
    HealthcareService, Location, Organisation, PostalAddress, Practitioner,
};
use crate::domain::patient::{GpPatient, Registration, RegistrationType};
use crate::domain::schedule::{Schedule, Session};
use crate::repo::{Repo, RepoError};

/// The practice most scenarios use, and its provider ASID.
pub const HOME_PRACTICE: (&str, &str) = ("B82617", "918999198738");

fn address(line: &str, postcode: &str) -> PostalAddress {
    PostalAddress {
        lines: vec![line.into()],
        city: "Leeds".into(),
        postcode: postcode.into(),
    }
}

/// The organisations: the two practices served at their own service roots, and one more.
pub fn organisations() -> Vec<Organisation> {
    let org = |id: &str,
               ods: &str,
               name: &str,
               phone: &str,
               line: &str,
               postcode: &str,
               asid: Option<&str>| Organisation {
        id: id.into(),
        ods: ods.into(),
        name: name.into(),
        telephone: phone.into(),
        address: address(line, postcode),
        asid: asid.map(str::to_owned),
    };
    vec![
        org(
            "1",
            HOME_PRACTICE.0,
            "Headingley Green Surgery",
            "0113 496 0001",
            "2 St Michael's Road",
            "LS6 3AW",
            Some(HOME_PRACTICE.1),
        ),
        org(
            "2",
            "R1A14",
            "Kirkstall Bridge Practice",
            "0113 496 0002",
            "11 Bridge Road",
            "LS5 3BW",
            Some("918999198739"),
        ),
        org(
            "3",
            "X12345",
            "Meanwood Valley Health Centre",
            "0113 496 0003",
            "40 Green Road",
            "LS6 4LH",
            None,
        ),
    ]
}

/// The sites, with the suite's ODS site codes and logical ids.
pub fn locations() -> Vec<Location> {
    let site = |id: &str,
                code: Option<&str>,
                name: &str,
                line: &str,
                postcode: &str,
                organisation: &str| Location {
        id: id.into(),
        site_code: code.map(str::to_owned),
        name: name.into(),
        telephone: "0113 496 0100".into(),
        address: address(line, postcode),
        organisation: organisation.into(),
    };
    vec![
        site(
            "1",
            Some("Z26556"),
            "Headingley Green Surgery",
            "2 St Michael's Road",
            "LS6 3AW",
            "1",
        ),
        site(
            "2",
            None,
            "Far Headingley Branch Surgery",
            "9 Weetwood Lane",
            "LS16 5LT",
            "1",
        ),
        site(
            "3",
            Some("Z33433"),
            "Meanwood Valley Health Centre",
            "40 Green Road",
            "LS6 4LH",
            "3",
        ),
        site(
            "8",
            Some("Z33432"),
            "Kirkstall Bridge Practice",
            "11 Bridge Road",
            "LS5 3BW",
            "2",
        ),
        site(
            "9",
            Some("Z99899"),
            "Bramley Branch Surgery",
            "3 Town Street",
            "LS13 2ET",
            "2",
        ),
    ]
}

/// The practitioners (the suite's practitioner1, 2, 3 and 5, with 0, 1, 2 and 1 role ids).
pub fn practitioners() -> Vec<Practitioner> {
    let person = |id: &str,
                  sds: &str,
                  roles: &[&str],
                  prefix: &str,
                  given: &str,
                  family: &str,
                  gender: &str,
                  org: &str| Practitioner {
        id: id.into(),
        sds_user_id: sds.into(),
        role_profile_ids: roles.iter().map(|r| (*r).to_owned()).collect(),
        prefix: prefix.into(),
        given: given.into(),
        family: family.into(),
        gender: gender.into(),
        organisation: org.into(),
    };
    vec![
        person(
            "1",
            "G13579135",
            &[],
            "Dr",
            "Amelia",
            "Hartley",
            "female",
            "1",
        ),
        person(
            "2",
            "G11111116",
            &["200000000117"],
            "Dr",
            "Benedict",
            "Osei",
            "male",
            "1",
        ),
        person(
            "3",
            "G22345655",
            &["200000000118", "200000000119"],
            "Dr",
            "Chloe",
            "Varga",
            "female",
            "1",
        ),
        person(
            "5",
            "G22222226",
            &["200000000120"],
            "Nurse",
            "Daniel",
            "Frost",
            "male",
            "2",
        ),
    ]
}

/// The healthcare services, by Directory of Services id.
pub fn healthcare_services() -> Vec<HealthcareService> {
    vec![
        HealthcareService {
            id: "1".into(),
            dos_service_id: "1000001".into(),
            name: "Headingley Green Surgery GP appointments".into(),
            organisation: "1".into(),
            locations: vec!["1".into(), "2".into()],
        },
        HealthcareService {
            id: "2".into(),
            dos_service_id: "1000002".into(),
            name: "Kirkstall Bridge Practice GP appointments".into(),
            organisation: "2".into(),
            locations: vec!["8".into()],
        },
    ]
}

/// The schedules: B82617's routine GP clinics (bookable by any consumer), a same-day telephone
/// list kept for urgent care, a nurse clinic the practice books itself, a video clinic kept for
/// one consumer organisation (A11111); R1A14's clinic.
pub fn schedules() -> Vec<Schedule> {
    let weekdays = vec![0, 1, 2, 3, 4];
    let gp = (
        "R0260".to_owned(),
        "General Medical Practitioner".to_owned(),
    );
    let schedule = |id: &str,
                    organisation: &str,
                    location: &str,
                    practitioner: &str,
                    service: Option<&str>| Schedule {
        id: id.into(),
        organisation: organisation.into(),
        location: location.into(),
        practitioner: Some(practitioner.into()),
        healthcare_service: service.map(str::to_owned),
        practitioner_role: gp.clone(),
        session_type: "GP surgery".into(),
        slot_type: "Routine appointment".into(),
        delivery_channel: "In-person".into(),
        weekdays: weekdays.clone(),
        sessions: Vec::new(),
        gp_connect_bookable: true,
        booking_window_days: 28,
        for_organisations: Vec::new(),
        for_organisation_types: Vec::new(),
    };
    vec![
        Schedule {
            sessions: vec![
                Session {
                    start: 9 * 60,
                    count: 6,
                    minutes: 10,
                },
                Session {
                    start: 14 * 60,
                    count: 3,
                    minutes: 15,
                },
            ],
            ..schedule("1", "1", "1", "1", None)
        },
        Schedule {
            session_type: "Same-day access".into(),
            slot_type: "Urgent telephone consultation".into(),
            delivery_channel: "Telephone".into(),
            sessions: vec![Session {
                start: 11 * 60,
                count: 4,
                minutes: 10,
            }],
            booking_window_days: 14,
            for_organisation_types: vec!["urgent-care".into()],
            ..schedule("2", "1", "2", "2", Some("1"))
        },
        Schedule {
            practitioner_role: ("R0600".into(), "Specialist Nurse Practitioner".into()),
            session_type: "Nurse clinic".into(),
            slot_type: "Practice nurse appointment".into(),
            weekdays: vec![1, 3],
            sessions: vec![Session {
                start: 10 * 60,
                count: 4,
                minutes: 15,
            }],
            gp_connect_bookable: false,
            ..schedule("3", "1", "1", "3", None)
        },
        Schedule {
            session_type: "Video clinic".into(),
            slot_type: "Video consultation".into(),
            delivery_channel: "Video".into(),
            sessions: vec![Session {
                start: 16 * 60,
                count: 2,
                minutes: 15,
            }],
            for_organisations: vec!["A11111".into()],
            ..schedule("4", "1", "1", "1", None)
        },
        Schedule {
            sessions: vec![Session {
                start: 9 * 60 + 30,
                count: 3,
                minutes: 15,
            }],
            ..schedule("5", "2", "8", "5", Some("2"))
        },
    ]
}

/// The test patients at B82617 and the suite key each plays: (logical id, NHS number, key).
pub const PATIENTS: [(&str, &str, &str); 20] = [
    ("1", "9690937278", "patient1"),
    ("2", "9690937286", "patient2: the full record"),
    ("3", "9690937294", "patient3"),
    ("4", "9690937308", "patient4"),
    ("5", "9690937375", "patient5"),
    ("6", "9690937383", "patient6"),
    ("7", "9690937391", "patient7"),
    ("8", "9690937405", "patient8"),
    ("9", "9690938533", "patient9: sensitive"),
    ("10", "9690938541", "patient10: sensitive"),
    (
        "11",
        "9690938622",
        "patient11: superseded NHS number (merged into 9690938614)",
    ),
    ("12", "9690938614", "patient12: merged record"),
    ("13", "9690938096", "patient13: record in transit"),
    ("14", pds::seed::NOT_ON_PDS, "patient14: not on PDS"),
    ("15", "9690938576", "patient15: dissented"),
    ("16", "9690938118", "patient16: confidential items"),
    ("17", "9690938126", "patient17: ended allergies"),
    ("18", "9690938681", "patient18: deceased"),
    (
        "21",
        "9690938142",
        "patient21: inactive (left the practice)",
    ),
    ("20", "9690938134", "patientNoAppointments"),
];

/// The GP records of [`PATIENTS`], from PDS's demographics.
pub fn patients(pds: &[PdsPatient]) -> Vec<GpPatient> {
    PATIENTS
        .iter()
        .filter_map(|&(id, nhs, _)| {
            let registration = Registration {
                kind: RegistrationType::Regular,
                start: "2015-04-01".into(),
                end: (id == "21").then(|| "2024-06-30".into()),
                organisation: "1".into(),
                usual_gp: Some("1".into()),
                preferred_branch: Some("1".into()),
            };
            let demographics = pds
                .iter()
                .find(|p| p.nhs_number == nhs)
                .cloned()
                .or_else(|| {
                    // patient14 is held by the practice but unknown to PDS.
                    (nhs == pds::seed::NOT_ON_PDS).then(|| PdsPatient {
                        nhs_number: nhs.into(),
                        prefix: Some("Mr".into()),
                        given: vec!["Martin".into()],
                        family: "Shaw".into(),
                        gender: "male".into(),
                        birth_date: "1966-03-27".into(),
                        deceased: None,
                        address_lines: vec!["5 Kirkstall Lane".into(), "Leeds".into()],
                        postcode: Some("LS6 3DT".into()),
                        telephone: None,
                        gp_practice: Some(HOME_PRACTICE.0.into()),
                        restricted: false,
                        verified: true,
                        superseded_by: None,
                    })
                })?;
            let mut patient = GpPatient::from_pds(id.into(), &demographics, registration);
            patient.nhs_number = nhs.into();
            patient.in_transit = id == "13";
            patient.dissent = id == "15";
            // A superseded number no longer traces on PDS.
            patient.verified = id != "11";
            Some(patient)
        })
        .collect()
}

/// The consumer system the provider test suite uses (`consumerASID`), registered in SDS as
/// allowed to send every GP Connect interaction, for organisation A11111.
pub const CONSUMER: (&str, &str) = ("200000000359", "A11111");

/// SDS's records of the practices served here (provider systems and their endpoints at
/// `{gp_connect_url}/{ODS}/STU3/1/gpconnect`) and of the test consumer.
pub fn directory(gp_connect_url: &str) -> (Vec<AccreditedSystem>, Vec<MessageHandler>) {
    let interactions: Vec<String> = Interaction::ALL.iter().map(|i| i.id()).collect();
    let fqdn = gp_connect_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or("localhost")
        .to_owned();
    let mut systems = vec![AccreditedSystem {
        asid: CONSUMER.0.into(),
        party_key: format!("{}-0000001", CONSUMER.1),
        ods: CONSUMER.1.into(),
        manufacturer: CONSUMER.1.into(),
        interactions: interactions.clone(),
    }];
    let mut handlers = Vec::new();
    for practice in organisations() {
        let Some(asid) = practice.asid else { continue };
        let party_key = format!("{}-0000806", practice.ods);
        systems.push(AccreditedSystem {
            asid,
            party_key: party_key.clone(),
            ods: practice.ods.clone(),
            manufacturer: "CAREHUB".into(),
            interactions: interactions.clone(),
        });
        handlers.push(MessageHandler {
            party_key,
            ods: practice.ods.clone(),
            interactions: interactions.clone(),
            address: format!(
                "{}/{}/STU3/1/gpconnect",
                gp_connect_url.trim_end_matches('/'),
                practice.ods
            ),
            fqdn: fqdn.clone(),
        });
    }
    (systems, handlers)
}

/// Seeds PDS, SDS and the GP system of one environment, once; `gp_connect_url` is where the
/// provider is served (`http://host/int/gpconnect`), for SDS's endpoints. Returns whether it
/// seeded.
pub async fn seed(repo: &Repo, gp_connect_url: &str) -> Result<bool, RepoError> {
    if repo.get::<Organisation>("1").await?.is_some() {
        return Ok(false);
    }
    let mut population = pds::seed::named();
    population.extend(pds::seed::background());
    repo.pds().put_all(population.clone()).await?;
    repo.put_all(organisations()).await?;
    repo.put_all(locations()).await?;
    repo.put_all(practitioners()).await?;
    repo.put_all(healthcare_services()).await?;
    repo.put_all(schedules()).await?;
    repo.put_patients(patients(&population)).await?;
    let (systems, handlers) = directory(gp_connect_url);
    repo.sds().register(systems, handlers).await?;
    Ok(true)
}
