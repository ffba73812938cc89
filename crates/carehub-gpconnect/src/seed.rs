//! What `carehub up` seeds in an integration environment's GP system: the organisations the
//! provider test suite names (ORG1 B82617, ORG2 R1A14, ORG3 X12345), their sites, the
//! practitioners (practitioner4, G99999999, deliberately absent), healthcare services, and the
//! test patients registered at B82617 in the states the suite needs. PDS gets its population
//! from `carehub_spine::pds::seed` first; the GP records take their demographics from it.

use carehub_spine::pds::{self, PdsPatient};
use carehub_spine::sds::{AccreditedSystem, MessageHandler};

use crate::domain::{Interaction, clock};

use crate::domain::directory::{
    HealthcareService, Location, Organisation, PostalAddress, Practitioner,
};
use crate::domain::patient::{GpPatient, Registration, RegistrationType};
use crate::domain::record::ClinicalRecord;
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
pub const PATIENTS: [(&str, &str, &str); 21] = [
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
    (
        "22",
        pds::seed::RECENTLY_DECEASED,
        "patient22: died 14 days before the first start (Access Record HTML's patient18)",
    ),
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

/// SDS's records of the practices served here (provider systems and their endpoints: the STU3
/// interactions at `{gp_connect_url}/{ODS}/STU3/1/gpconnect`, Access Record HTML's at
/// `{gp_connect_url}/{ODS}/DSTU2/0/gpconnect`) and of the test consumer.
pub fn directory(gp_connect_url: &str) -> (Vec<AccreditedSystem>, Vec<MessageHandler>) {
    let interactions: Vec<String> = Interaction::ALL.iter().map(|i| i.id()).collect();
    let on_line = |dstu2: bool| -> Vec<String> {
        Interaction::ALL
            .iter()
            .filter(|i| i.is_dstu2() == dstu2)
            .map(|i| i.id())
            .collect()
    };
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
        for (dstu2, root) in [(false, "STU3/1"), (true, "DSTU2/0")] {
            handlers.push(MessageHandler {
                party_key: party_key.clone(),
                ods: practice.ods.clone(),
                interactions: on_line(dstu2),
                address: format!(
                    "{}/{}/{root}/gpconnect",
                    gp_connect_url.trim_end_matches('/'),
                    practice.ods
                ),
                fqdn: fqdn.clone(),
                cpa_id: dstu2.then(|| format!("cpa-{party_key}-dstu2")),
            });
        }
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
    pds::seed::seed(repo.pds()).await?;
    let mut population = pds::seed::named();
    population.extend(pds::seed::background());
    repo.put_all(organisations()).await?;
    repo.put_all(locations()).await?;
    repo.put_all(practitioners()).await?;
    repo.put_all(healthcare_services()).await?;
    repo.put_all(schedules()).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    repo.put_records(records(clock::uk_day(now))).await?;
    repo.put_patients(patients(&population)).await?;
    let (systems, handlers) = directory(gp_connect_url);
    repo.sds().register(systems, handlers).await?;
    Ok(true)
}

/// The clinical records of the test patients, in the shapes the provider test suite expects
/// of each (see `gpconnect/test-data.md` in the project's notes): patient2's full record,
/// patient1 with nothing, patient5's "no known allergies", confidential items for patient16,
/// ended allergies for patient17, and so on.
/// The clinical records of the test patients. `today` (days since 1970) dates the few items
/// that must stay recent, such as patient2's acute medication of the last twelve months.
pub fn records(today: i64) -> Vec<ClinicalRecord> {
    use crate::domain::record::{
        AdministrativeItem, Allergy, Concept, Consultation, DiaryEntry, Heading, Immunisation,
        Investigation, MedicationCourse, MedicationIssue, Observation, Problem, Referral,
        TestResult, Topic,
    };
    let allergy =
        |id: &str, code: (&str, &str), drug: bool, asserted: &str, ended: Option<(&str, &str)>| {
            Allergy {
                id: id.into(),
                code: Concept::new(code.0, code.1),
                drug,
                onset: Some(asserted.into()),
                asserted: asserted.into(),
                ended: ended.map(|(date, reason)| (date.into(), reason.into())),
                reaction: Some((
                    Concept::new("271807003", "Eruption of skin"),
                    "moderate".into(),
                )),
                confidential: false,
                recorder: "1".into(),
            }
        };
    let penicillin = ("294505008", "Allergy to penicillin");
    let peanut = ("91935009", "Allergy to peanuts");
    let cat = ("232347008", "Cat dander allergy");
    let course = |id: &str,
                  drug: (&str, &str),
                  kind: &str,
                  start: &str,
                  end: Option<&str>,
                  issues: &[&str]| MedicationCourse {
        id: id.into(),
        medication: Concept::new(drug.0, drug.1),
        prescription_type: kind.into(),
        start: start.into(),
        end: end.map(str::to_owned),
        status: if end.is_some() {
            "completed".into()
        } else {
            "active".into()
        },
        dosage: "One tablet daily".into(),
        quantity: (28, "tablet".into()),
        repeats_allowed: (kind != "acute").then_some(6),
        issues: issues
            .iter()
            .enumerate()
            .map(|(n, date)| MedicationIssue {
                id: (n + 1).to_string(),
                date: (*date).into(),
                days: 28,
            })
            .collect(),
        prescribed_elsewhere: false,
        confidential: false,
        recorder: "1".into(),
        stop_reason: None,
    };
    let amlodipine = ("319283006", "Amlodipine 5mg tablets");
    let amoxicillin = ("323509004", "Amoxicillin 500mg capsules");
    let omeprazole = ("317335000", "Omeprazole 20mg gastro-resistant capsules");
    let flu = |id: &str, date: &str| Immunisation {
        id: id.into(),
        vaccine: Concept::new(
            "955691000001108",
            "Influenza vaccine (split virion, inactivated)",
        ),
        procedure: Concept::new("822851000000102", "Seasonal influenza vaccination"),
        date: date.into(),
        given: true,
        recorded: format!("{date}T10:00:00+00:00"),
        recorder: "2".into(),
    };
    let observation =
        |id: &str, code: (&str, &str), date: &str, value: Option<(&str, &str, &str)>| Observation {
            id: id.into(),
            code: Concept::new(code.0, code.1),
            effective: Some(date.into()),
            issued: format!("{date}T09:00:00+00:00"),
            value: value.map(|(v, unit, ucum)| (v.into(), unit.into(), ucum.into())),
            confidential: false,
            performer: "2".into(),
        };
    let record = |id: &str| ClinicalRecord {
        id: id.into(),
        ..ClinicalRecord::default()
    };
    let problem = |id: &str,
                   code: (&str, &str),
                   active: bool,
                   major: bool,
                   onset: &str,
                   ended: Option<&str>,
                   related: &[&str]| Problem {
        id: id.into(),
        code: Concept::new(code.0, code.1),
        active,
        major,
        onset: onset.into(),
        ended: ended.map(str::to_owned),
        asserted: onset.into(),
        asserter: "1".into(),
        related: related.iter().map(|r| (*r).to_owned()).collect(),
        confidential: false,
    };
    let with_allergies = |id: &str| ClinicalRecord {
        allergies: vec![
            allergy(&format!("{id}-a1"), penicillin, true, "2012-05-14", None),
            allergy(
                &format!("{id}-a2"),
                cat,
                false,
                "2004-09-01",
                Some(("2016-03-01", "Allergy resolved")),
            ),
        ],
        ..record(id)
    };
    let mut confidential_allergy = allergy("16-a3", peanut, false, "2019-02-11", None);
    confidential_allergy.confidential = true;
    let mut prescribed_elsewhere = course(
        "12-m1",
        omeprazole,
        "repeat",
        "2021-01-05",
        Some("2022-01-05"),
        &["2021-01-05"],
    );
    prescribed_elsewhere.prescribed_elsewhere = true;
    let mut confidential_course = course(
        "2-m4",
        ("321988002", "Sertraline 50mg tablets"),
        "repeat",
        "2025-02-01",
        None,
        &["2025-02-01"],
    );
    confidential_course.confidential = true;
    let mut confidential_observation = observation(
        "2-o3",
        ("35489007", "Depressive disorder"),
        "2025-01-20",
        None,
    );
    confidential_observation.confidential = true;
    let mut stopped_course = course(
        "2-m3",
        omeprazole,
        "repeat",
        "2022-06-01",
        Some("2024-06-01"),
        &["2022-06-01", "2023-06-01"],
    );
    stopped_course.status = "stopped".into();
    stopped_course.stop_reason = Some("Symptoms resolved".into());
    let recent = clock::format_day(today - 40);
    let administrative = |id: &str, date: &str, entry: &str, details: &str| AdministrativeItem {
        id: id.into(),
        date: date.into(),
        entry: entry.into(),
        details: details.into(),
    };
    vec![
        record("1"),
        ClinicalRecord {
            medication: vec![
                course(
                    "2-m1",
                    amlodipine,
                    "repeat",
                    "2023-03-01",
                    None,
                    &["2023-03-01", "2023-03-29", "2023-04-26", "2026-11-03"],
                ),
                course(
                    "2-m2",
                    amoxicillin,
                    "acute",
                    "2024-11-12",
                    Some("2024-11-19"),
                    &["2024-11-12"],
                ),
                stopped_course,
                confidential_course,
                // The record's 2015-16 items, which the HTML views' date filters are tried on.
                course(
                    "2-m5",
                    amoxicillin,
                    "acute",
                    "2015-10-05",
                    Some("2015-10-12"),
                    &["2015-10-05"],
                ),
                course(
                    "2-m6",
                    amoxicillin,
                    "acute",
                    &recent,
                    None,
                    &[recent.as_str()],
                ),
            ],
            administrative: vec![
                administrative(
                    "2-adm1",
                    "2015-06-10",
                    "Summary Care Record consent",
                    "Express consent given for additional information to be shared",
                ),
                administrative(
                    "2-adm2",
                    "2026-01-12",
                    "Letter sent",
                    "Invitation to the annual blood pressure review",
                ),
            ],
            immunisations: vec![flu("2-i1", "2024-10-08"), flu("2-i2", "2025-10-14")],
            referrals: vec![
                Referral {
                    id: "2-r1".into(),
                    authored: "2025-09-04".into(),
                    reason: Concept::new("49727002", "Cough"),
                    specialty: "Respiratory medicine".into(),
                    description: "Persistent cough for eight weeks; chest X-ray clear".into(),
                    recipient: ("R1A14".into(), "Carehub General Hospital".into()),
                    requester: "1".into(),
                    urgent: false,
                },
                Referral {
                    id: "2-r2".into(),
                    authored: "2016-04-11".into(),
                    reason: Concept::new("233604007", "Pneumonia"),
                    specialty: "Respiratory medicine".into(),
                    description: "Follow-up chest X-ray six weeks after pneumonia".into(),
                    recipient: ("R1A14".into(), "Carehub General Hospital".into()),
                    requester: "1".into(),
                    urgent: true,
                },
            ],
            problems: vec![
                problem(
                    "2-p1",
                    ("38341003", "Hypertensive disorder, systemic arterial"),
                    true,
                    true,
                    "2023-02-20",
                    None,
                    &["MedicationRequest/2-m1-plan", "Observation/2-o1"],
                ),
                problem(
                    "2-p2",
                    ("195967001", "Asthma"),
                    true,
                    false,
                    "2010-05-01",
                    None,
                    &["Immunization/2-i2", "ReferralRequest/2-r1"],
                ),
                problem(
                    "2-p3",
                    ("235595009", "Gastroesophageal reflux disease"),
                    false,
                    false,
                    "2022-05-20",
                    Some("2024-06-01"),
                    &["MedicationRequest/2-m3-plan"],
                ),
                Problem {
                    confidential: true,
                    ..problem(
                        "2-p4",
                        ("35489007", "Depressive disorder"),
                        true,
                        true,
                        "2025-01-20",
                        None,
                        &["MedicationRequest/2-m4-plan", "Observation/2-o3"],
                    )
                },
                problem(
                    "2-p5",
                    ("233604007", "Pneumonia"),
                    false,
                    true,
                    "2015-12-01",
                    Some("2016-01-15"),
                    &["MedicationRequest/2-m5-plan", "ReferralRequest/2-r2"],
                ),
                problem(
                    "2-p6",
                    ("195662009", "Acute viral pharyngitis"),
                    false,
                    false,
                    "2016-03-01",
                    Some("2016-03-20"),
                    &[],
                ),
            ],
            consultations: vec![
                Consultation {
                    id: "2-c0".into(),
                    kind: "Surgery consultation".into(),
                    start: "2015-11-03T09:10:00+00:00".into(),
                    end: "2015-11-03T09:20:00+00:00".into(),
                    clinician: "2".into(),
                    topics: vec![Topic {
                        id: "2-c0-t1".into(),
                        title: "Smoking cessation".into(),
                        items: vec!["Observation/2-o4".into()],
                        headings: Vec::new(),
                        problem: None,
                    }],
                },
                Consultation {
                    id: "2-c1".into(),
                    kind: "Surgery consultation".into(),
                    start: "2026-03-02T10:00:00+00:00".into(),
                    end: "2026-03-02T10:15:00+00:00".into(),
                    clinician: "1".into(),
                    topics: vec![Topic {
                        id: "2-c1-t1".into(),
                        title: "Hypertension review".into(),
                        items: Vec::new(),
                        headings: vec![
                            Heading {
                                id: "2-c1-t1-h1".into(),
                                title: "Examination".into(),
                                items: vec!["Observation/2-o1".into(), "Observation/2-o2".into()],
                            },
                            Heading {
                                id: "2-c1-t1-h2".into(),
                                title: "Plan".into(),
                                items: vec!["MedicationRequest/2-m1-plan".into()],
                            },
                        ],
                        problem: Some("2-p1".into()),
                    }],
                },
            ],
            investigations: vec![Investigation {
                id: "2-t1".into(),
                code: Concept::new("26604007", "Full blood count"),
                issued: "2026-03-05T14:00:00+00:00".into(),
                laboratory: "2".into(),
                specimen: ("119297000".into(), "Blood specimen".into()),
                collected: "2026-03-03T09:30:00+00:00".into(),
                filed_by: Some("1".into()),
                filing_comment: Some("Normal: no action needed".into()),
                results: vec![
                    TestResult {
                        id: "2-t1-r1".into(),
                        code: Concept::new(
                            "1022441000000100",
                            "Haemoglobin mass concentration in blood",
                        ),
                        value: ("141".into(), "g/L".into(), "g/L".into()),
                        range: "130-170".into(),
                    },
                    TestResult {
                        id: "2-t1-r2".into(),
                        code: Concept::new("1022541000000102", "Total white blood cell count"),
                        value: ("6.2".into(), "10*9/L".into(), "10*9/L".into()),
                        range: "4.0-11.0".into(),
                    },
                ],
            }],
            diary: vec![DiaryEntry {
                id: "2-d1".into(),
                code: Concept::new("183515008", "Refer to medication review"),
                due: "2027-03-01".into(),
                authored: "2026-03-01".into(),
                requester: "1".into(),
            }],
            observations: vec![
                observation(
                    "2-o1",
                    ("271649006", "Systolic blood pressure"),
                    "2026-03-02",
                    Some(("138", "mmHg", "mm[Hg]")),
                ),
                observation(
                    "2-o2",
                    ("27113001", "Body weight"),
                    "2026-03-02",
                    Some(("81.5", "kg", "kg")),
                ),
                confidential_observation,
                observation("2-o4", ("77176002", "Smoker"), "2015-11-03", None),
                observation(
                    "2-o5",
                    ("304252001", "For resuscitation"),
                    "2026-04-20",
                    None,
                ),
                observation(
                    "2-o6",
                    ("27113001", "Body weight"),
                    "2016-02-15",
                    Some(("84.0", "kg", "kg")),
                ),
            ],
            ..with_allergies("2")
        },
        ClinicalRecord {
            medication: vec![course(
                "3-m1",
                amoxicillin,
                "acute",
                "2021-07-02",
                Some("2021-07-09"),
                &["2021-07-02"],
            )],
            immunisations: vec![flu("3-i1", "2025-10-20")],
            observations: vec![observation(
                "3-o1",
                ("27113001", "Body weight"),
                "2025-12-01",
                Some(("70.2", "kg", "kg")),
            )],
            ..with_allergies("3")
        },
        with_allergies("4"),
        ClinicalRecord {
            no_known_allergies: Some("2018-04-03".into()),
            medication: vec![
                course(
                    "5-m1",
                    amlodipine,
                    "repeat",
                    "2024-01-10",
                    None,
                    &["2024-01-10", "2026-10-01"],
                ),
                course(
                    "5-m2",
                    amoxicillin,
                    "acute",
                    "2026-11-20",
                    None,
                    &["2026-11-20"],
                ),
            ],
            ..record("5")
        },
        with_allergies("6"),
        with_allergies("7"),
        with_allergies("8"),
        ClinicalRecord {
            medication: vec![prescribed_elsewhere],
            ..with_allergies("12")
        },
        with_allergies("13"),
        ClinicalRecord {
            allergies: vec![
                allergy("16-a1", penicillin, true, "2010-01-01", None),
                allergy(
                    "16-a2",
                    cat,
                    false,
                    "1998-06-01",
                    Some(("2001-01-01", "No information available")),
                ),
                confidential_allergy,
            ],
            ..record("16")
        },
        ClinicalRecord {
            allergies: vec![
                allergy(
                    "17-a1",
                    peanut,
                    false,
                    "2000-01-01",
                    Some(("2015-07-01", "Desensitised")),
                ),
                allergy(
                    "17-a2",
                    cat,
                    false,
                    "2002-01-01",
                    Some(("2019-02-01", "Allergy resolved")),
                ),
            ],
            ..record("17")
        },
    ]
}

/// A large record for benchmarks: `courses` repeat medications of 12 issues each, as many
/// allergies, immunisations and observations.
pub fn large_record(id: &str, courses: usize) -> ClinicalRecord {
    use crate::domain::record::{
        Allergy, Concept, Immunisation, MedicationCourse, MedicationIssue, Observation,
    };
    ClinicalRecord {
        id: id.into(),
        no_known_allergies: None,
        allergies: (0..courses)
            .map(|n| Allergy {
                id: format!("big-a{n}"),
                code: Concept::new("294505008", "Allergy to penicillin"),
                drug: true,
                onset: Some("2010-01-01".into()),
                asserted: "2010-01-01".into(),
                ended: (n % 3 == 0).then(|| ("2015-01-01".into(), "Allergy resolved".into())),
                reaction: None,
                confidential: false,
                recorder: "1".into(),
            })
            .collect(),
        medication: (0..courses)
            .map(|n| MedicationCourse {
                id: format!("big-m{n}"),
                medication: Concept::new("319283006", "Amlodipine 5mg tablets"),
                prescription_type: "repeat".into(),
                start: "2024-01-01".into(),
                end: None,
                status: "active".into(),
                dosage: "One tablet daily".into(),
                quantity: (28, "tablet".into()),
                repeats_allowed: Some(12),
                issues: (0..12)
                    .map(|i| MedicationIssue {
                        id: i.to_string(),
                        date: format!("2025-{:02}-01", i + 1),
                        days: 28,
                    })
                    .collect(),
                prescribed_elsewhere: false,
                confidential: false,
                recorder: "1".into(),
                stop_reason: None,
            })
            .collect(),
        immunisations: (0..courses)
            .map(|n| Immunisation {
                id: format!("big-i{n}"),
                vaccine: Concept::new(
                    "955691000001108",
                    "Influenza vaccine (split virion, inactivated)",
                ),
                procedure: Concept::new("822851000000102", "Seasonal influenza vaccination"),
                date: "2025-10-01".into(),
                given: true,
                recorded: "2025-10-01T10:00:00+00:00".into(),
                recorder: "2".into(),
            })
            .collect(),
        observations: (0..courses)
            .map(|n| Observation {
                id: format!("big-o{n}"),
                code: Concept::new("27113001", "Body weight"),
                effective: Some("2025-06-01".into()),
                issued: "2025-06-01T09:00:00+00:00".into(),
                value: Some(("80.0".into(), "kg".into(), "kg".into())),
                confidential: false,
                performer: "2".into(),
            })
            .collect(),
        referrals: Vec::new(),
        diary: Vec::new(),
        problems: Vec::new(),
        investigations: Vec::new(),
        consultations: Vec::new(),
        administrative: Vec::new(),
    }
}
