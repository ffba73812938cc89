//! The services directory of an integration environment: services at the trust where the
//! seeded provider smartcards work (`R1A14`), at a second trust (`RYJ`), and one commissioned
//! only for another area's referrers, so that every search rule has something to bite on.

use crate::domain::access::Caller;
use crate::domain::advice::{AdviceRequest, NewAdvice};
use crate::domain::appointment::{self, Appointment};
use crate::domain::codes::BusinessFunction;
use crate::domain::referral::{Change, NewReferral, Referral, State};
use crate::domain::service::{BookableType, GenderTreated, ListedSlot, SearchCriteria, Service};
use crate::repo::{Expected, Repo, RepoError};

/// The trust of the seeded provider cards.
pub const TRUST: &str = "R1A14";
/// The id of carehub's test PAS, which services are linked to.
pub const PAS_ID: &str = "carehub-pas";
/// A second provider.
pub const OTHER_TRUST: &str = "RYJ";
/// Cara Consultant's SDS user id: a named clinician at two services.
pub const NAMED_CLINICIAN: &str = "555000000003";
/// Ada Referrer's SDS user id: the referring GP of the seeded referrals.
pub const ADA: &str = "555000000001";
/// The GP practice of the seeded referrals.
pub const GP: &str = "B82617";
/// The patient of the seeded referrals (an NHS number of the test range).
pub const PATIENT: &str = "9912003888";

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
        // Directly bookable services keep their slots on the test PAS.
        pas: (bookable == BookableType::DirectlyBookable).then(|| PAS_ID.to_owned()),
        appointment_type: if triage {
            "ASSESSMENT_SERVICE".into()
        } else {
            "FIRST_OUTPATIENT".into()
        },
        slot_limit: None,
        listed_slots: Vec::new(),
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

/// One seeded referral or advice request: what it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    /// Its UBRN.
    pub ubrn: String,
    /// What state it was left in.
    pub what: &'static str,
}

fn caller(function: BusinessFunction, organisation: &str, user: &str) -> Caller {
    Caller {
        function,
        organisation: organisation.into(),
        user: Some(user.into()),
        name: String::new(),
        on_behalf_of: None,
    }
}

fn criteria(specialty: &str, clinic: Option<&str>) -> SearchCriteria {
    SearchCriteria {
        priority: "ROUTINE".into(),
        specialty: Some(specialty.into()),
        clinic_type: clinic.map(str::to_owned),
        clinical_term: None,
        named_clinician: None,
        wait_limit: None,
        distance_limit: None,
        postcode: None,
        age_and_gender_appropriate: false,
        organisation: None,
    }
}

/// Referrals in every state the API can reach and advice requests in each category, made
/// through the same rules as the API (the referring GP Ada at `B82617`, the consultant Cara at
/// `R1A14`), once, when the environment has none. UBRNs are given out in order from
/// `100000000001`, so the list below is stable: the README prints it.
pub async fn seed_referrals(repo: &Repo, now: i64) -> Result<Vec<Seeded>, RepoError> {
    if !repo.referrals().await?.is_empty() {
        return Ok(Vec::new());
    }
    let directory = directory();
    let service = |id: &str| {
        directory
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .expect("seeded service")
    };
    let referrer = caller(BusinessFunction::ReferringClinician, GP, ADA);
    let provider = caller(
        BusinessFunction::ServiceProviderClinician,
        TRUST,
        NAMED_CLINICIAN,
    );
    let created = carehub_fhir::datetime::format_instant(now);
    let mut seeded = Vec::new();

    // (what, services, then: the appointment to make, then the provider's or referrer's change)
    enum Then {
        Nothing,
        Book,
        Triage,
        Defer,
        BookAnd(Change, bool),
        TriageAnd(Change),
        Change(Change, bool),
    }
    let plans: Vec<(&'static str, &[&str], Then)> = vec![
        (
            "NOT_BOOKED: shortlisted, nothing booked",
            &["20001", "20002"],
            Then::Nothing,
        ),
        (
            "BOOKED: a slot at the Heart Failure Clinic, awaiting the provider's review",
            &["20001"],
            Then::Book,
        ),
        (
            "AWAITING_TRIAGE: sent to the Cardiology Referral Assessment Service",
            &["20002"],
            Then::Triage,
        ),
        (
            "DEFERRED_TO_PROVIDER: the booking failed (BOOKING_ATTEMPT_PROBLEM)",
            &["20001"],
            Then::Defer,
        ),
        (
            "TRIAGE_RESPONSE: returned to the referrer with advice",
            &["20002"],
            Then::TriageAnd(Change::ReviewOutcome {
                outcome: "RETURN_TO_REFERRER_WITH_ADVICE".into(),
                comment: "Start a statin; refer again if symptoms persist".into(),
                priority: None,
                files: Vec::new(),
            }),
        ),
        (
            "TRIAGED_PROVIDER_TO_ACTION: accepted, the provider will book",
            &["20002"],
            Then::TriageAnd(Change::ReviewOutcome {
                outcome: "ACCEPT_REFER_BOOK_LATER".into(),
                comment: "Book into the next arrhythmia clinic".into(),
                priority: Some("URGENT".into()),
                files: Vec::new(),
            }),
        ),
        (
            "REJECTED: booked, then rejected by the provider",
            &["20001"],
            Then::BookAnd(
                Change::Reject {
                    reason: "REDIRECTED_APPROPRIATE_CLINIC".into(),
                    comment: Some("The lipid clinic is the right place".into()),
                },
                true,
            ),
        ),
        (
            "APPT_CANCELLED_BY_PATIENT: booked, then cancelled for the patient",
            &["20001"],
            Then::BookAnd(
                Change::CancelAppointment {
                    reason: "PATIENT_ILL".into(),
                    comment: None,
                },
                false,
            ),
        ),
        (
            "CANCELLED_REFERRAL: cancelled by the referrer",
            &["20001"],
            Then::Change(
                Change::Cancel {
                    reason: "TREATMENT_NO_LONGER_REQUIRED".into(),
                    comment: Some("Seen privately".into()),
                },
                false,
            ),
        ),
    ];
    for (what, services, then) in plans {
        let shortlisted: Vec<Service> = services.iter().map(|id| service(id)).collect();
        let new = NewReferral {
            patient: PATIENT.into(),
            referring_clinician: None,
            criteria: criteria("CARDIOLOGY", None),
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            letter_intention: "NEED_TO_ADD_LATER".into(),
            reminder_days: 0,
            pathway_start: None,
        };
        let (by, created_at) = (referrer.clone(), created.clone());
        let (referral, mut version) = repo
            .create_referral(
                move |ubrn| {
                    let refs: Vec<&Service> = shortlisted.iter().collect();
                    let mut referral =
                        Referral::create(ubrn, new, &refs, &by, ADA.into(), GP.into());
                    referral.created = created_at;
                    referral
                },
                |_| None,
            )
            .await?;
        let ubrn = referral.ubrn.clone();
        let appoint = |state: State,
                       reason: Option<&str>,
                       slot: Option<carehub_pas::Slot>,
                       service: Service| {
            let by = referrer.clone();
            let reason = reason.map(str::to_owned);
            let created_at = created.clone();
            move |referral: &mut Referral, id: String| {
                referral.apply(
                    &by,
                    Change::Appoint {
                        service: service.id.clone(),
                        appointment: id.clone(),
                        state,
                        reason: reason.clone(),
                    },
                )?;
                Ok(Appointment {
                    id,
                    ubrn: referral.ubrn.clone(),
                    referral_version: 0,
                    status: if state == State::Booked {
                        appointment::Status::Booked
                    } else {
                        appointment::Status::Proposed
                    },
                    reason: reason.map(|code| appointment::Reason {
                        system: appointment::REVIEW_REASON_SYSTEM.into(),
                        code,
                    }),
                    comment: None,
                    service: service.id.clone(),
                    service_name: service.name.clone(),
                    patient: referral.patient.clone(),
                    start: slot.as_ref().map(|s| s.start_text()),
                    end: slot.as_ref().map(|s| s.end_text()),
                    slot: slot.map(|s| s.id),
                    clinician: None,
                    created: created_at,
                })
            }
        };
        let pas = carehub_pas::Pas::new(repo.store().clone(), repo.pas_key());
        let book = |version: i64| {
            let pas = pas.clone();
            let service = service("20001");
            let ubrn = ubrn.clone();
            let appointment = appoint;
            async move {
                let clinic = &carehub_pas::clinics(&service.id, &[])[0];
                let slot = pas.free_slots(clinic, now).await?.into_iter().next();
                let result = repo
                    .create_appointment(
                        &ubrn,
                        Expected::Version(version),
                        slot.clone(),
                        appointment(State::Booked, None, slot, service),
                        |_, _| None,
                    )
                    .await?;
                Ok::<_, RepoError>(result.3)
            }
        };
        match then {
            Then::Nothing => {}
            Then::Book => {
                book(version).await?;
            }
            Then::Triage | Then::TriageAnd(_) => {
                let (_, _, _, v) = repo
                    .create_appointment(
                        &ubrn,
                        Expected::Version(version),
                        None,
                        appoint(
                            State::AwaitingTriage,
                            Some("TRIAGE"),
                            None,
                            service("20002"),
                        ),
                        |_, _| None,
                    )
                    .await?;
                version = v;
                if let Then::TriageAnd(change) = then {
                    let by = provider.clone();
                    repo.update_referral(
                        &ubrn,
                        Expected::Version(version),
                        move |r| r.apply(&by, change),
                        |_| None,
                    )
                    .await?;
                }
            }
            Then::Defer => {
                repo.create_appointment(
                    &ubrn,
                    Expected::Version(version),
                    None,
                    appoint(
                        State::DeferredToProvider,
                        Some("BOOKING_ATTEMPT_PROBLEM"),
                        None,
                        service("20001"),
                    ),
                    |_, _| None,
                )
                .await?;
            }
            Then::BookAnd(change, by_provider) => {
                version = book(version).await?;
                let by = if by_provider {
                    provider.clone()
                } else {
                    referrer.clone()
                };
                if let Change::CancelAppointment { .. } = change {
                    let id = repo
                        .referral(&ubrn)
                        .await?
                        .and_then(|(r, _)| r.appointment)
                        .unwrap_or_default();
                    let (reason, comment) = match &change {
                        Change::CancelAppointment { reason, comment } => {
                            (reason.clone(), comment.clone())
                        }
                        _ => unreachable!("matched above"),
                    };
                    repo.cancel_appointment(
                        &id,
                        Expected::Version(1),
                        move |referral, appointment| {
                            referral.apply(&by, change)?;
                            appointment.status = appointment::Status::Cancelled;
                            appointment.reason = Some(appointment::Reason {
                                system: "APPOINTMENT-CANCELLATION-REASON".into(),
                                code: reason,
                            });
                            appointment.comment = comment;
                            Ok(())
                        },
                        |_, _| None,
                    )
                    .await?;
                } else {
                    repo.update_referral(
                        &ubrn,
                        Expected::Version(version),
                        move |r| r.apply(&by, change),
                        |_| None,
                    )
                    .await?;
                }
            }
            Then::Change(change, by_provider) => {
                let by = if by_provider {
                    provider.clone()
                } else {
                    referrer.clone()
                };
                repo.update_referral(
                    &ubrn,
                    Expected::Version(version),
                    move |r| r.apply(&by, change),
                    |_| None,
                )
                .await?;
            }
        }
        seeded.push(Seeded { ubrn, what });
    }

    // Advice and guidance: one awaiting the provider, one answered.
    for (what, answer) in [
        (
            "A&G PROVIDER_RESPONSE_REQUIRED: a question for the cardiology service",
            None,
        ),
        (
            "A&G REFERRER_TO_REVIEW_RESPONSE: answered with advice",
            Some("Start a statin and check lipids in three months"),
        ),
    ] {
        let new = NewAdvice {
            patient: PATIENT.into(),
            authorised_to_convert: true,
            criteria: criteria("CARDIOLOGY", None),
            service: "20002".into(),
            request: "Raised LDL despite diet changes: should we start a statin?".into(),
            referring_clinician: None,
            files: Vec::new(),
        };
        let (by, advice_service, at) = (referrer.clone(), service("20002"), created.clone());
        let (advice, version) = repo
            .create_advice(
                move |ubrn| {
                    AdviceRequest::create(
                        ubrn,
                        new,
                        &advice_service,
                        &by,
                        ADA.into(),
                        Vec::new(),
                        at,
                    )
                },
                |_| None,
            )
            .await?;
        if let Some(text) = answer {
            let (by, at) = (provider.clone(), created.clone());
            let response = crate::domain::advice::Response {
                outcome: "RETURN_TO_REFERRER_WITH_ADVICE".into(),
                recommendation: Some("ADVICE_ONLY_NO_REFERRAL_RECOMMENDED".into()),
                guidance: text.into(),
                priority: "ROUTINE".into(),
                files: Vec::new(),
            };
            repo.update_advice(
                &advice.ubrn,
                Expected::Version(version),
                move |a| a.respond(&by, response, Vec::new(), at).map(|()| None),
                |_| None,
            )
            .await?;
        }
        seeded.push(Seeded {
            ubrn: advice.ubrn,
            what,
        });
    }
    Ok(seeded)
}

/// The trust of the sandbox's triage services.
const TRIAGE_CLINIC: &str = "R1A14";
/// The sandbox's second provider: the organisation A030 names for providers, and the one the
/// spec's examples search within (`organisation` `R69`).
pub const EXAMPLE_PROVIDER: &str = "R69";
/// The named clinician of the spec's examples (A010, A011, A016, A021): a consultant at
/// `11004`, `11008` and the twenty heart failure clinics `12000`-`12019`.
pub const EXAMPLE_CLINICIAN: &str = "021600556514";
/// The advice request of the spec's path examples (A024, A026, A043).
pub const EXAMPLE_ADVICE: &str = "000049146177";

/// A directly bookable cardiology service of the sandbox at [`TRUST`].
fn sandbox_dbs(id: &str, name: &str, clinicians: &[&str]) -> Service {
    let mut s = service(
        id,
        name,
        TRUST,
        "CARDIOLOGY",
        &["HEART_FAILURE", "LIPID_MANAGEMENT", "CHEST_PAIN"],
        &["ROUTINE", "URGENT", "TWO_WEEK_WAIT"],
        BookableType::DirectlyBookable,
        false,
        false,
        10,
        5,
    );
    s.clinicians = clinicians.iter().map(|c| (*c).to_owned()).collect();
    s
}

/// An indirectly bookable cardiology triage service of the sandbox.
fn sandbox_triage(id: &str, name: &str) -> Service {
    service(
        id,
        name,
        TRIAGE_CLINIC,
        "CARDIOLOGY",
        &["HEART_FAILURE", "LIPID_MANAGEMENT", "CHEST_PAIN"],
        &["ROUTINE", "URGENT", "TWO_WEEK_WAIT"],
        BookableType::IndirectlyBookable,
        true,
        true,
        20,
        8,
    )
}

/// Moves a service to [`EXAMPLE_PROVIDER`]'s site, `wait_days` and `distance` away.
fn at_example_provider(mut s: Service, wait_days: u32, distance: u32) -> Service {
    s.provider = EXAMPLE_PROVIDER.into();
    s.site = "R6901".into();
    s.site_name = "Northgate Heart Centre".into();
    s.wait_days = wait_days;
    s.distance = distance;
    s
}

/// The services the spec's example requests name beyond the scenario services, each shaped so
/// that its example passes the rules (the shortlist checks of A011, A021, A031 and A032, the
/// searches of A010, the slots of A015):
/// - `10000`: A015's "no slots". The test PAS runs a clinic for every linked service, so it takes
///   no priority: its clinics publish no slot for any `appointmentType`, and no search finds it.
/// - `11001`, `11003`, `11008`: directly bookable, with `11000` and `11002` the five services of
///   A031's multiple-services shortlist (urgent heart failure); `11008` has the named clinician
///   (A016's booking with a named clinician), `11021` needs a referral letter and has no free
///   slots (A016's deferral).
/// - `11004`: a routine triage service with the named clinician (A021, A032, A031's shortlist
///   with a document); `50001` a triage service (A016's triage deferral); `51002` a triage
///   service at [`EXAMPLE_PROVIDER`] (the mixed shortlists of A011 and A031).
/// - `12000`-`12019`: twenty routine heart failure clinics at [`EXAMPLE_PROVIDER`] with the named
///   clinician, within 50 days' wait and 123 miles (A011's twenty-service shortlist); `12000` is
///   also A015's slot service.
fn example_services() -> Vec<Service> {
    let mut no_slots = sandbox_dbs("10000", "Slot Service Without Free Slots", &[]);
    no_slots.priorities = Vec::new();
    let mut nurse_clinic = sandbox_dbs("11001", "Heart Failure Nurse Clinic", &[]);
    (nurse_clinic.wait_days, nurse_clinic.distance) = (6, 4);
    let mut community = sandbox_dbs("11003", "Community Cardiology Clinic", &[]);
    (community.wait_days, community.distance) = (14, 9);
    let mut assessment = sandbox_triage("11004", "Routine Cardiology Referral Assessment Service");
    assessment.priorities = vec!["ROUTINE".into()];
    assessment.advice = false;
    assessment.clinicians = vec![EXAMPLE_CLINICIAN.into()];
    let mut consultant = sandbox_dbs(
        "11008",
        "Consultant-Led Cardiology Clinic",
        &[EXAMPLE_CLINICIAN],
    );
    consultant.listed_slots = vec![listed_slot(
        "11008006",
        Some(EXAMPLE_CLINICIAN),
        "2022-07-11T13:15:00Z",
        "2022-07-11T14:15:00Z",
    )];
    let mut letter_first = sandbox_dbs("11021", "Cardiology Clinic (Referral Letter First)", &[]);
    (letter_first.wait_days, letter_first.distance) = (25, 7);
    // No free slots, so that A016's example may defer it for want of them.
    letter_first.slot_limit = Some(0);
    let mut triage = sandbox_triage("50001", "Cardiology Triage Clinic");
    triage.advice = false;
    let mut heart_triage = at_example_provider(
        sandbox_triage("51002", "Heart Failure Triage Service"),
        20,
        30,
    );
    heart_triage.advice = false;
    let mut services = vec![
        no_slots,
        nurse_clinic,
        community,
        assessment,
        consultant,
        letter_first,
        triage,
        heart_triage,
    ];
    services.extend((0..20u32).map(|n| {
        let mut clinic = at_example_provider(
            sandbox_dbs(
                &(12000 + n).to_string(),
                &format!("Heart Failure Clinic {}", n + 1),
                &[EXAMPLE_CLINICIAN],
            ),
            18 + n,
            10 + 5 * n,
        );
        clinic.clinic_types = vec!["HEART_FAILURE".into()];
        clinic.priorities = vec!["ROUTINE".into()];
        clinic
    }));
    services
}

/// A slot on the sandbox PAS under the id an example request books or names.
fn listed_slot(id: &str, clinician: Option<&str>, start: &str, end: &str) -> ListedSlot {
    ListedSlot {
        id: id.into(),
        clinician: clinician.map(str::to_owned),
        start: start.into(),
        end: end.into(),
    }
}

/// The slots of `11000` that A016's examples book (`11000021`) and name as no longer
/// available (`11000022`), on the examples' dates.
fn example_slots_of_11000() -> Vec<ListedSlot> {
    vec![
        listed_slot(
            "11000021",
            None,
            "2022-07-11T12:00:00Z",
            "2022-07-11T13:00:00Z",
        ),
        listed_slot(
            "11000022",
            None,
            "2022-07-11T15:00:00Z",
            "2022-07-11T16:00:00Z",
        ),
    ]
}

/// The sandbox's services: the scenario services and [`example_services`].
fn sandbox_services() -> Vec<Service> {
    let mut advice_only = sandbox_triage("11014", "Advice Only");
    advice_only.appointments = false;
    advice_only.triage = false;
    let mut services = vec![
        sandbox_dbs("11002", "Good Cardiology Business Service", &[]),
        sandbox_dbs("11010", "Excellent Cardiology Business Service", &[]),
        advice_only,
        sandbox_triage("11016", "Triage-Related Indirect Business Service"),
        sandbox_triage("11017", "Triage-Related Indirect Business Service 2"),
        // A015's paging scenarios: twelve slots in all, so that page 5 of 5 is refused.
        Service {
            slot_limit: Some(12),
            listed_slots: example_slots_of_11000(),
            ..sandbox_dbs("11000", "Slot Service With Many Slots", &[])
        },
        // Two schedules on the first page of five at any hour: at most four slots of the
        // general clinic come before the named clinician's.
        Service {
            slot_limit: Some(4),
            ..sandbox_dbs("13000", "Slot Service With Two Clinics", &["921600556513"])
        },
        sandbox_dbs(
            "14000",
            "Slot Service With A Named Clinician",
            &["921600556514"],
        ),
        sandbox_dbs("1", "Direct Service With Minimal", &[]),
        sandbox_dbs("2", "Direct SVC 1", &[]),
        sandbox_dbs("3", "Direct SVC 2", &[]),
        sandbox_triage("4", "Triage SVC 1"),
    ];
    services.extend(example_services());
    services
}

/// An advice request of the sandbox at `11014`, after `replies` answers from the provider (the
/// last with advice, any before asking for more); with none, the provider's turn.
fn sandbox_advice(
    ubrn: &str,
    replies: usize,
    service: &Service,
    created: &str,
) -> Result<AdviceRequest, RepoError> {
    let referrer = caller(BusinessFunction::ReferringClinician, GP, ADA);
    let provider = caller(
        BusinessFunction::ServiceProviderClinician,
        TRIAGE_CLINIC,
        NAMED_CLINICIAN,
    );
    let new = NewAdvice {
        patient: PATIENT.into(),
        authorised_to_convert: ubrn != "000000070000",
        criteria: criteria("CARDIOLOGY", Some("HEART_FAILURE")),
        service: service.id.clone(),
        request: "Please advise on managing this patient's raised cholesterol.".into(),
        referring_clinician: None,
        files: Vec::new(),
    };
    let mut advice = AdviceRequest::create(
        ubrn.into(),
        new,
        service,
        &referrer,
        ADA.into(),
        Vec::new(),
        created.to_owned(),
    );
    for n in 0..replies {
        let outcome = if n + 1 == replies {
            "RETURN_TO_REFERRER_WITH_ADVICE"
        } else {
            "REQUIRE_FURTHER_INFORMATION"
        };
        // The conversation goes both ways: a referrer's follow-up is the provider's turn again.
        advice.category = crate::domain::advice::Category::ProviderResponseRequired;
        advice
            .respond(
                &provider,
                crate::domain::advice::Response {
                    outcome: outcome.into(),
                    recommendation: (outcome == "RETURN_TO_REFERRER_WITH_ADVICE")
                        .then(|| "ADVICE_ONLY_NO_REFERRAL_RECOMMENDED".into()),
                    guidance: "Start a statin and recheck lipids in three months.".into(),
                    priority: "ROUTINE".into(),
                    files: Vec::new(),
                },
                Vec::new(),
                created.to_owned(),
            )
            .map_err(RepoError::Ers)?;
    }
    Ok(advice)
}

/// A file the spec's example requests attach, seeded under the example's id: who uploaded it
/// (and so its organisation) and the referral or advice request it was uploaded for are what
/// its example's rules look at (`http.rs`: `uploaded_for`, `unattached_files`).
struct ExampleFile {
    id: &'static str,
    /// The file name, which also gives its media type.
    name: &'static str,
    /// SDS user id and organisation of the uploader.
    by: (&'static str, &'static str),
    /// The UBRN it was uploaded for (`NHSD-eRS-Referral-ID`); none for a file that goes with a
    /// new advice request.
    referral: Option<&'static str>,
    /// What it says.
    heading: &'static str,
    text: &'static str,
}

/// The files of the spec's examples, each uploaded for the record its example writes to (or,
/// where that record's state refuses the example, for the seeded record in the state it needs):
/// - `50f0c0d5-…`: a referral letter (`REFERRER`) for `000000070000` (A012, the spec's path
///   example). A012's two-file example also names `e1015896-…`, which A044 needs with no UBRN.
/// - `e1015896-…`: an `ADVICE_REQUEST` file uploaded by the referrer with no UBRN (A044).
/// - `a7c98bb4-…`: a `PROVIDER` file for `000000070003`, deferred to the provider (A028).
/// - `b2b22a7e-…`, `857b901d-…`: `PROVIDER` files for `000000070001`, booked at a directly
///   bookable service and not yet reviewed (A022).
/// - `19eb7224-…`: a `GUIDANCE_RESPONSE` file for [`EXAMPLE_ADVICE`], awaiting the provider
///   (A026); also A020's example `Location`.
/// - `badaf6fc-…` (`GUIDANCE_RESPONSE`), `38dc19ab-…` (`PROVIDER`): for [`EXAMPLE_ADVICE`],
///   which the referrer authorised the provider to convert (A027; `000000070000`, the request
///   the example names, is in the referrer's turn and not authorised).
/// - `c5d2d200-7613-…`: the path example of A006 and A042, a referral letter file for
///   `000000070000`; `att-70000-70001`, their legacy-format example, another.
const EXAMPLE_FILES: [ExampleFile; 10] = [
    // Attached as REFERRER (A012).
    ExampleFile {
        id: "50f0c0d5-7ed1-4587-8fce-889c8685eb54",
        name: "Blood test results.pdf",
        by: (ADA, GP),
        referral: Some("000000070000"),
        heading: "Blood test results",
        text: "Raised NT-proBNP (1,200 pg/ml); renal function and full blood count normal.",
    },
    // Attached as ADVICE_REQUEST (A044).
    ExampleFile {
        id: "e1015896-92f4-4073-ad3c-5f30fca76448",
        name: "Lipid profile.pdf",
        by: (ADA, GP),
        referral: None,
        heading: "Lipid profile",
        text: "Total cholesterol 7.9 mmol/l, LDL 5.6 mmol/l after six months of diet changes.",
    },
    // Attached as PROVIDER (A028).
    ExampleFile {
        id: "a7c98bb4-c0d0-4094-b26d-8dbd1677edc8",
        name: "Triage advice.pdf",
        by: (NAMED_CLINICIAN, TRUST),
        referral: Some("000000070003"),
        heading: "Triage advice",
        text: "No red flags. Optimise the diuretic dose and review in primary care in four weeks.",
    },
    // Attached as PROVIDER (A022).
    ExampleFile {
        id: "b2b22a7e-b3e9-4625-8d2c-00507bfdffb5",
        name: "Clinic availability.pdf",
        by: (NAMED_CLINICIAN, TRUST),
        referral: Some("000000070001"),
        heading: "Clinic availability",
        text: "The clinic booked is cancelled; the patient will be offered the next urgent slot.",
    },
    // Attached as PROVIDER (A022).
    ExampleFile {
        id: "857b901d-1491-47d3-90e2-6c9f13f744dc",
        name: "Rebooking note.txt",
        by: (NAMED_CLINICIAN, TRUST),
        referral: Some("000000070001"),
        heading: "Rebooking note",
        text: "Patient prefers morning appointments; telephone before 10am.",
    },
    // Attached as GUIDANCE_RESPONSE (A026).
    ExampleFile {
        id: "19eb7224-dff3-4730-a5cb-67eac811f1a5",
        name: "Statin guidance.pdf",
        by: (NAMED_CLINICIAN, TRIAGE_CLINIC),
        referral: Some(EXAMPLE_ADVICE),
        heading: "Statin guidance",
        text: "Start atorvastatin 20 mg at night; recheck lipids and liver tests in three months.",
    },
    // Attached as GUIDANCE_RESPONSE (A027).
    ExampleFile {
        id: "badaf6fc-90f4-411d-999f-04ccd79fa166",
        name: "Initial medication.pdf",
        by: (NAMED_CLINICIAN, TRIAGE_CLINIC),
        referral: Some(EXAMPLE_ADVICE),
        heading: "Initial medication",
        text: "Atorvastatin 20 mg at night until the clinic appointment.",
    },
    // Attached as PROVIDER (A027).
    ExampleFile {
        id: "38dc19ab-893f-47ca-8db0-2d0a07c0e387",
        name: "Booking instructions.pdf",
        by: (NAMED_CLINICIAN, TRIAGE_CLINIC),
        referral: Some(EXAMPLE_ADVICE),
        heading: "Booking instructions",
        text: "Book into the lipid clinic; use this note as the referral letter.",
    },
    // Attached as REFERRER (A006, A042).
    ExampleFile {
        id: "c5d2d200-7613-4a69-9c5f-1bb68e04b8d8",
        name: "ECG report.pdf",
        by: (ADA, GP),
        referral: Some("000000070000"),
        heading: "ECG report",
        text: "Sinus rhythm, 78 bpm; left bundle branch block, not known before.",
    },
    // A006's and A042's legacy-format id (files attached before e-RS moved to UUIDs).
    ExampleFile {
        id: "att-70000-70001",
        name: "Previous referral letter.pdf",
        by: (ADA, GP),
        referral: Some("000000070000"),
        heading: "Previous referral letter",
        text: "Referred in 2019 with palpitations; Holter monitor normal, discharged to primary care.",
    },
];

/// Seeds the [`EXAMPLE_FILES`] the sandbox does not hold yet; whether any was added.
async fn seed_example_files(repo: &Repo, created: &str) -> Result<bool, RepoError> {
    let mut added = false;
    for example in &EXAMPLE_FILES {
        if repo.file(example.id).await?.is_some() {
            continue;
        }
        let (content_type, bytes) = if example.name.ends_with(".txt") {
            (
                "text/plain",
                format!("{}\n\n{}\n", example.heading, example.text).into_bytes(),
            )
        } else {
            (
                "application/pdf",
                crate::domain::pdf::document(
                    example.heading,
                    &[
                        crate::domain::pdf::Line::Heading(example.heading.into()),
                        crate::domain::pdf::Line::Text(example.text.into()),
                    ],
                ),
            )
        };
        let file = crate::domain::attachment::StoredFile {
            id: example.id.into(),
            name: example.name.into(),
            content_type: content_type.into(),
            size: bytes.len() as u64,
            uploaded_by: example.by.0.into(),
            organisation: example.by.1.into(),
            referral: example.referral.map(str::to_owned),
            created: created.to_owned(),
        };
        repo.put_file(file, bytes, None).await?;
        added = true;
    }
    Ok(added)
}

/// Brings a sandbox seeded by an earlier release up to this one's scenario data: the scenario
/// services as they are now (any missing or stored otherwise, e.g. before [`example_services`],
/// numbered slots or slot limits), [`EXAMPLE_ADVICE`] and the [`EXAMPLE_FILES`] it lacks;
/// `false` when there was nothing to bring.
async fn seed_sandbox_examples(repo: &Repo, now: i64) -> Result<bool, RepoError> {
    let created = carehub_fhir::datetime::format_instant(now);
    let mut added = false;
    let mut changed = Vec::new();
    for service in sandbox_services() {
        if repo.service(&service.id).await?.map(|(stored, _)| stored) != Some(service.clone()) {
            changed.push(service);
        }
    }
    if !changed.is_empty() {
        repo.put_services(changed).await?;
        added = true;
    }
    if repo.advice(EXAMPLE_ADVICE).await?.is_none()
        && let Some((service, _)) = repo.service("11014").await?
    {
        let advice = sandbox_advice(EXAMPLE_ADVICE, 0, &service, &created)?;
        repo.seed_record("AdviceRequest", EXAMPLE_ADVICE, &advice, 5)
            .await?;
        added = true;
    }
    // Each file on its own: a sandbox seeded with the example services may still lack them.
    Ok(seed_example_files(repo, &created).await? || added)
}

/// The scenario data of the sandbox, under the official sandbox's keys: services (`11002`,
/// `11010`, `11014`, `11016`, `11017`, slot services `11000`-`14000`, R4 services `1`-`4`, and
/// the [`example_services`] the spec's example requests name), referrals
/// `000000070000`-`000000070006`, `000000070011`, `000000070012` at version 5, appointments
/// `70000`-`70007`, advice requests `000000070000`-`000000070004` and [`EXAMPLE_ADVICE`], a
/// referral letter, and the [`EXAMPLE_FILES`]. `000000070000` shortlists the services A016's
/// examples book and defer at. The content is carehub's own; only the keys are the official
/// ones. Seeded once; a sandbox seeded before the example services or files existed gets them
/// (and the advice request) added.
pub async fn seed_sandbox(repo: &Repo, now: i64) -> Result<bool, RepoError> {
    if repo.service("11002").await?.is_some() {
        return seed_sandbox_examples(repo, now).await;
    }
    let services = sandbox_services();
    let lookup = |id: &str| {
        services
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .expect("sandbox service")
    };
    repo.put_services(services.clone()).await?;

    let created = carehub_fhir::datetime::format_instant(now);
    let letter_bytes = crate::domain::pdf::document(
        "Referral letter",
        &[
            crate::domain::pdf::Line::Heading("Referral letter".into()),
            crate::domain::pdf::Line::Text(
                "Breathless on exertion for three months; please assess for heart failure.".into(),
            ),
        ],
    );
    let letter = crate::domain::attachment::StoredFile {
        id: "c5d2d200-7612-4a1e-9f3b-000000080000".into(),
        name: "Referral letter.pdf".into(),
        content_type: "application/pdf".into(),
        size: letter_bytes.len() as u64,
        uploaded_by: ADA.into(),
        organisation: GP.into(),
        referral: Some("000000070000".into()),
        created: created.clone(),
    };
    repo.put_file(letter.clone(), letter_bytes, None).await?;
    let attached = crate::domain::attachment::Attached {
        file: letter,
        description: Some("Referral letter".into()),
        indexed: created.clone(),
    };

    let referrer = caller(BusinessFunction::ReferringClinician, GP, ADA);
    let referral = |ubrn: &str, services: &[&str], priority: &str| {
        let shortlisted: Vec<Service> = services.iter().map(|id| lookup(id)).collect();
        let refs: Vec<&Service> = shortlisted.iter().collect();
        let mut c = criteria("CARDIOLOGY", Some("HEART_FAILURE"));
        c.priority = priority.into();
        let new = NewReferral {
            patient: PATIENT.into(),
            referring_clinician: None,
            criteria: c,
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            letter_intention: "ALREADY_ADDED".into(),
            reminder_days: 0,
            pathway_start: None,
        };
        let mut r = Referral::create(ubrn.into(), new, &refs, &referrer, ADA.into(), GP.into());
        r.created = created.clone();
        r.updated = created.clone();
        r.letters = vec![attached.clone()];
        r
    };
    let at = |mut r: Referral,
              state: State,
              service: &str,
              appointment: Option<&str>,
              reason: Option<(&str, &str, Option<&str>)>| {
        let s = lookup(service);
        r.state = state;
        r.selected = Some(s.id.clone());
        r.selected_provider = Some(s.provider.clone());
        r.appointment = appointment.map(str::to_owned);
        r.reason = reason.map(
            |(system, code, comment)| crate::domain::referral::StateReason {
                kind: system.into(),
                code: code.into(),
                display: String::new(),
                comment: comment.map(str::to_owned),
            },
        );
        r
    };
    let outcome = appointment::REVIEW_OUTCOME_SYSTEM;
    let review = appointment::REVIEW_REASON_SYSTEM;
    let referrals = vec![
        // Shortlisted with the services A016's examples book, defer and send for triage at.
        referral(
            "000000070000",
            &["11002", "11000", "11008", "11021", "50001"],
            "ROUTINE",
        ),
        at(
            referral("000000070001", &["11002"], "ROUTINE"),
            State::Booked,
            "11002",
            Some("70000"),
            None,
        ),
        at(
            referral("000000070002", &["11016", "11017"], "ROUTINE"),
            State::Booked,
            "11016",
            Some("70001"),
            None,
        ),
        at(
            referral("000000070003", &["11010"], "URGENT"),
            State::DeferredToProvider,
            "11010",
            Some("70002"),
            Some((review, "NO_SLOTS_AT_SERVICE", None)),
        ),
        at(
            referral("000000070004", &["11014"], "TWO_WEEK_WAIT"),
            State::TriagedProviderToAction,
            "11014",
            None,
            Some((
                outcome,
                "PROVIDER_CONVERTED_ADVICE_AND_GUIDANCE_ADMIN_TO_REFER",
                Some("Please book the patient in urgently"),
            )),
        ),
        at(
            referral("000000070005", &["11002"], "TWO_WEEK_WAIT"),
            State::Booked,
            "11002",
            Some("70007"),
            None,
        ),
        at(
            referral("000000070011", &["11002"], "ROUTINE"),
            State::Booked,
            "11002",
            None,
            None,
        ),
        referral("000000070012", &["11002"], "ROUTINE"),
        // A029's last scenario.
        referral("000000070006", &["11002"], "ROUTINE"),
    ];
    for r in &referrals {
        repo.seed_record("Referral", &r.ubrn, r, 5).await?;
    }

    let clinic = &carehub_pas::clinics("11002", &[])[0];
    let slot = clinic.slots(now).into_iter().nth(3);
    let appointment = |id: &str,
                       ubrn: &str,
                       service: &str,
                       status: appointment::Status,
                       reason: Option<(&str, &str)>,
                       comment: Option<&str>,
                       booked: bool| {
        let s = lookup(service);
        Appointment {
            id: id.into(),
            ubrn: ubrn.into(),
            referral_version: 5,
            status,
            reason: reason.map(|(system, code)| appointment::Reason {
                system: system.into(),
                code: code.into(),
            }),
            comment: comment.map(str::to_owned),
            service: s.id.clone(),
            service_name: s.name.clone(),
            patient: PATIENT.into(),
            slot: booked
                .then(|| slot.as_ref().map(|s| s.id.clone()))
                .flatten(),
            start: booked
                .then(|| slot.as_ref().map(|s| s.start_text()))
                .flatten(),
            end: booked
                .then(|| slot.as_ref().map(|s| s.end_text()))
                .flatten(),
            clinician: None,
            created: created.clone(),
        }
    };
    use appointment::Status::{Booked, Cancelled, Proposed};
    let appointments = vec![
        appointment("70000", "000000070001", "11002", Booked, None, None, true),
        appointment("70001", "000000070002", "11016", Booked, None, None, false),
        appointment(
            "70002",
            "000000070003",
            "11010",
            Proposed,
            Some((review, "NO_SLOTS_AT_SERVICE")),
            None,
            false,
        ),
        appointment(
            "70003",
            "000000070002",
            "11016",
            Proposed,
            Some((review, "TRIAGE")),
            None,
            false,
        ),
        appointment(
            "70004",
            "000000070002",
            "11016",
            Proposed,
            Some((outcome, "RETURN_TO_REFERRER_WITH_ADVICE")),
            Some("Start a statin first"),
            false,
        ),
        appointment(
            "70005",
            "000000070001",
            "11002",
            Proposed,
            Some((outcome, "CANCEL_APPOINTMENT_ACTION_LATER")),
            Some("Please contact patient to rebook"),
            false,
        ),
        appointment(
            "70006",
            "000000070001",
            "11002",
            Cancelled,
            Some(("APPOINTMENT-CANCELLATION-REASON", "PATIENT_ILL")),
            None,
            false,
        ),
        appointment("70007", "000000070005", "11002", Booked, None, None, true),
    ];
    for a in &appointments {
        repo.seed_record("Appointment", &a.id, a, 5).await?;
    }

    let advice_service = lookup("11014");
    for (ubrn, replies) in [
        ("000000070000", 1),
        ("000000070001", 1),
        ("000000070002", 2),
        ("000000070003", 0),
        ("000000070004", 0),
        (EXAMPLE_ADVICE, 0),
    ] {
        let advice = sandbox_advice(ubrn, replies, &advice_service, &created)?;
        repo.seed_record("AdviceRequest", ubrn, &advice, 5).await?;
    }
    seed_example_files(repo, &created).await?;
    Ok(true)
}
