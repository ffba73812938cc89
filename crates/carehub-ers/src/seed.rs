//! The services directory of an integration environment: services at the trust where the
//! seeded provider smartcards work (`R1A14`), at a second trust (`RYJ`), and one commissioned
//! only for another area's referrers, so that every search rule has something to bite on.

use crate::domain::service::{BookableType, GenderTreated, Service};
use crate::repo::{Repo, RepoError};

/// The trust of the seeded provider cards.
pub const TRUST: &str = "R1A14";
/// A second provider.
pub const OTHER_TRUST: &str = "RYJ";
/// Cara Consultant's SDS user id: a named clinician at two services.
pub const NAMED_CLINICIAN: &str = "555000000003";

#[allow(clippy::too_many_arguments, reason = "one row of the directory table")]
fn service(
    id: &str,
    name: &str,
    provider: &str,
    specialty: &str,
    clinic_types: &[&str],
    priorities: &[&str],
    bookable: BookableType,
    triage: bool,
    advice: bool,
    wait_days: u32,
    distance: u32,
) -> Service {
    let (site, site_name) = match provider {
        TRUST => ("R1A1401", "Carehub General Hospital"),
        _ => ("RYJ01", "Riverside Treatment Centre"),
    };
    Service {
        id: id.into(),
        name: name.into(),
        provider: provider.into(),
        site: site.into(),
        site_name: site_name.into(),
        specialty: specialty.into(),
        clinic_types: clinic_types.iter().map(|c| (*c).to_owned()).collect(),
        priorities: priorities.iter().map(|c| (*c).to_owned()).collect(),
        bookable,
        triage,
        advice,
        appointments: true,
        gender: GenderTreated::MaleAndFemale,
        ages: (0, 120),
        clinicians: Vec::new(),
        commissioned_by: Vec::new(),
        wait_days,
        distance,
        letter_required: true,
        pas: None,
        appointment_type: if triage {
            "ASSESSMENT_SERVICE".into()
        } else {
            "FIRST_OUTPATIENT".into()
        },
    }
}

/// The directory seeded into `int`.
pub fn directory() -> Vec<Service> {
    use BookableType::{DirectlyBookable as Dbs, IndirectlyBookable as Ibs};
    const ALL: &[&str] = &["ROUTINE", "URGENT", "TWO_WEEK_WAIT"];
    const NOT_2WW: &[&str] = &["ROUTINE", "URGENT"];
    let mut heart = service(
        "20001",
        "Heart Failure Clinic",
        TRUST,
        "CARDIOLOGY",
        &["HEART_FAILURE", "CHEST_PAIN"],
        NOT_2WW,
        Dbs,
        false,
        false,
        14,
        3,
    );
    heart.clinicians = vec![NAMED_CLINICIAN.into()];
    heart.pas = Some("carehub-pas".into());
    let mut cardiology_ras = service(
        "20002",
        "Cardiology Referral Assessment Service",
        TRUST,
        "CARDIOLOGY",
        &["HEART_FAILURE", "LIPID_MANAGEMENT", "ARRHYTHMIA"],
        ALL,
        Ibs,
        true,
        true,
        21,
        3,
    );
    cardiology_ras.letter_required = true;
    let chest_pain = service(
        "20003",
        "Rapid Access Chest Pain Clinic",
        TRUST,
        "CARDIOLOGY",
        &["CHEST_PAIN"],
        &["URGENT", "TWO_WEEK_WAIT"],
        Dbs,
        false,
        false,
        7,
        3,
    );
    let lipid = service(
        "20004",
        "Lipid Clinic",
        OTHER_TRUST,
        "CARDIOLOGY",
        &["LIPID_MANAGEMENT"],
        NOT_2WW,
        Dbs,
        false,
        false,
        30,
        12,
    );
    let mut lipid_elsewhere = service(
        "20005",
        "Lipid Clinic (North)",
        OTHER_TRUST,
        "CARDIOLOGY",
        &["LIPID_MANAGEMENT"],
        NOT_2WW,
        Dbs,
        false,
        false,
        9,
        40,
    );
    // Commissioned only for another area's referrers: never offered to B82617.
    lipid_elsewhere.commissioned_by = vec!["X12345".into()];
    let skin = service(
        "20006",
        "Skin Lesion Clinic",
        TRUST,
        "DERMATOLOGY",
        &["SKIN_LESIONS"],
        ALL,
        Dbs,
        false,
        false,
        10,
        3,
    );
    let mut derm_advice = service(
        "20007",
        "Dermatology Advice and Guidance",
        TRUST,
        "DERMATOLOGY",
        &["SKIN_LESIONS", "ECZEMA_AND_PSORIASIS"],
        ALL,
        Ibs,
        false,
        true,
        5,
        3,
    );
    derm_advice.appointments = false;
    let mut prostate = service(
        "20008",
        "Prostate Assessment Clinic",
        TRUST,
        "UROLOGY",
        &["PROSTATE"],
        ALL,
        Dbs,
        false,
        false,
        12,
        3,
    );
    prostate.gender = GenderTreated::Male;
    prostate.ages = (18, 120);
    let knee = service(
        "20009",
        "Knee and Hip Triage",
        TRUST,
        "ORTHOPAEDICS",
        &["KNEE", "HIP"],
        NOT_2WW,
        Ibs,
        true,
        false,
        35,
        3,
    );
    let hearing = service(
        "20010",
        "Adult Hearing Clinic",
        OTHER_TRUST,
        "EAR_NOSE_AND_THROAT",
        &["HEARING_LOSS"],
        NOT_2WW,
        Dbs,
        false,
        false,
        28,
        12,
    );
    let mut headache = service(
        "20011",
        "Headache Clinic",
        TRUST,
        "NEUROLOGY",
        &["HEADACHE"],
        NOT_2WW,
        Dbs,
        false,
        true,
        42,
        3,
    );
    headache.clinicians = vec![NAMED_CLINICIAN.into()];
    let mut endoscopy = service(
        "20012",
        "Straight to Test Endoscopy",
        TRUST,
        "GASTROENTEROLOGY",
        &["ENDOSCOPY"],
        ALL,
        Dbs,
        false,
        false,
        8,
        3,
    );
    endoscopy.appointment_type = "DIAGNOSTIC".into();
    vec![
        heart,
        cardiology_ras,
        chest_pain,
        lipid,
        lipid_elsewhere,
        skin,
        derm_advice,
        prostate,
        knee,
        hearing,
        headache,
        endoscopy,
    ]
}

/// Seeds [`directory`] unless the environment has services already; returns how many.
pub async fn seed(repo: &Repo) -> Result<usize, RepoError> {
    if !repo.services().await?.is_empty() {
        return Ok(0);
    }
    let services = directory();
    let count = services.len();
    repo.put_services(services).await?;
    Ok(count)
}
