//! The GP system's records in the store partition `gpconnect-{env}`: `Organization/{id}`,
//! `Location/{id}`, `Practitioner/{id}`, `HealthcareService/{id}` and `Patient/{id}`, each
//! kept as the domain record and indexed by the STU3 search parameters of its GP Connect view
//! (so a search by identifier reads one index row). The store version is the resource's
//! `versionId`. PDS records are read from the same environment's `pds-{env}`.

use std::sync::LazyLock;

use carehub_fhir::FhirVersion;
use carehub_fhir::search::{Indexer, ParseOptions, parse_query};
use carehub_server::audit;
use carehub_spine::pds::PdsPatient;
use carehub_spine::pds::repo::{PdsRepo, PdsRepoError};
use carehub_spine::sds::repo::SdsRepo;
use carehub_store::{Expect, Store, StoreError, Versioned};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::domain::GpcError;
use crate::domain::appointment::GpAppointment;
use crate::domain::directory::{HealthcareService, Location, Organisation, Practitioner};
use crate::domain::patient::GpPatient;
use crate::domain::record::ClinicalRecord;
use crate::domain::schedule::Schedule;

static INDEXER: LazyLock<Indexer> = LazyLock::new(|| Indexer::new(FhirVersion::Stu3));

/// A store failure, a corrupt record, or a GP Connect rule the change broke.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pds(#[from] PdsRepoError),
    #[error(transparent)]
    Gpc(#[from] GpcError),
    #[error("stored GP Connect record is corrupt: {0}")]
    Corrupt(String),
}

/// A record the GP system keeps, with its GP Connect view.
pub trait Record: Serialize + DeserializeOwned + Send + 'static {
    /// The FHIR resource type it is served as.
    const TYPE: &'static str;
    /// Its logical id.
    fn id(&self) -> &str;
    /// The GP Connect resource at store `version`.
    fn view(&self, version: i64) -> Value;
}

macro_rules! record {
    ($type:ty, $name:literal) => {
        impl Record for $type {
            const TYPE: &'static str = $name;
            fn id(&self) -> &str {
                &self.id
            }
            fn view(&self, version: i64) -> Value {
                self.to_resource(version)
            }
        }
    };
}

record!(Organisation, "Organization");
record!(Location, "Location");
record!(Practitioner, "Practitioner");
record!(HealthcareService, "HealthcareService");
record!(GpPatient, "Patient");
record!(GpAppointment, "Appointment");

impl Record for Schedule {
    const TYPE: &'static str = "Schedule";
    fn id(&self) -> &str {
        &self.id
    }
    fn view(&self, version: i64) -> Value {
        // Stored schedules are indexed by their actors; a search gives its own horizon.
        self.to_resource(version, (0, 0))
    }
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, RepoError> {
    serde_json::from_str(body).map_err(|e| RepoError::Corrupt(e.to_string()))
}

/// The GP system of one environment.
#[derive(Debug, Clone)]
pub struct Repo {
    store: Store,
    key: String,
    pds: PdsRepo,
    sds: SdsRepo,
}

impl Repo {
    /// Records in partition `key` (`gpconnect-int`), with PDS in `pds-int`.
    pub fn new(store: Store, key: &str) -> Repo {
        let environment = key.strip_prefix("gpconnect-").unwrap_or(key);
        Repo {
            pds: PdsRepo::new(store.clone(), &format!("pds-{environment}")),
            sds: SdsRepo::new(store.clone(), &format!("sds-{environment}")),
            store,
            key: key.to_owned(),
        }
    }

    /// The store (for audit records of reads).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The PDS of the same environment.
    pub fn pds(&self) -> &PdsRepo {
        &self.pds
    }

    /// The SDS of the same environment.
    pub fn sds(&self) -> &SdsRepo {
        &self.sds
    }

    /// One record and its version.
    pub async fn get<T: Record>(&self, id: &str) -> Result<Option<(T, i64)>, RepoError> {
        match self.store.read(&self.key, T::TYPE, id).await? {
            Some(found) => match found.body {
                Some(body) => Ok(Some((parse(&body)?, found.version))),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The records whose view has the identifier `system|value`.
    pub async fn by_identifier<T: Record>(
        &self,
        system: &str,
        value: &str,
    ) -> Result<Vec<(T, i64)>, RepoError> {
        let params = vec![
            ("identifier".to_owned(), format!("{system}|{value}")),
            ("_count".to_owned(), "100".to_owned()),
        ];
        let query = parse_query(
            FhirVersion::Stu3.model(),
            T::TYPE,
            &params,
            &ParseOptions::default(),
        )
        .map_err(|issues| {
            RepoError::Corrupt(format!("an identifier search did not parse: {issues:?}"))
        })?;
        let page = self.store.search(&self.key, &query).await?;
        page.matches
            .into_iter()
            .filter_map(|m| m.resource.body.map(|b| (b, m.resource.version)))
            .map(|(body, version)| Ok((parse(&body)?, version)))
            .collect()
    }

    /// Every record of a type (the directory is small: organisations, sites, staff).
    pub async fn all<T: Record>(&self) -> Result<Vec<(T, i64)>, RepoError> {
        self.search_all(Vec::new()).await
    }

    /// Adds or replaces records (seeding).
    pub async fn put_all<T: Record>(&self, records: Vec<T>) -> Result<(), RepoError> {
        let key = self.key.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    for record in records {
                        let index = INDEXER.index(&record.view(1));
                        let body = serde_json::to_value(&record)
                            .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                        tx.put(&key, T::TYPE, record.id(), body, &index, Expect::Any)
                            .await?;
                    }
                    Ok::<_, RepoError>(())
                })
            })
            .await
    }

    /// The GP record of an NHS number at organisation `organisation`, if the practice holds one.
    pub async fn patient_by_nhs_number(
        &self,
        nhs_number: &str,
        organisation: &str,
    ) -> Result<Option<(GpPatient, i64)>, RepoError> {
        let found: Vec<(GpPatient, i64)> = self
            .by_identifier(crate::domain::SYSTEM_NHS_NUMBER, nhs_number)
            .await?;
        Ok(found
            .into_iter()
            .find(|(p, _)| p.registration.organisation == organisation))
    }

    /// `$gpc.registerpatient`: reads PDS, then in one unit of work finds the practice's record
    /// of the number (through its `Registration/{organisation}-{nhs number}` entry), lets
    /// `decide` work out the new record, and stores it (created or re-activated) with its
    /// AuditEvent. Units of work run one at a time and the entry is written "must not exist",
    /// so two registrations of one number never make two records, on one node or many.
    pub async fn register(
        &self,
        nhs_number: &str,
        organisation: &str,
        decide: impl FnOnce(
            Option<&PdsPatient>,
            Option<GpPatient>,
            String,
        ) -> Result<GpPatient, GpcError>
        + Send
        + 'static,
        audit: impl FnOnce(&GpPatient) -> Option<(String, Value, Vec<carehub_fhir::search::IndexEntry>)>
        + Send
        + 'static,
    ) -> Result<(GpPatient, i64), RepoError> {
        // The number asked for, as PDS holds it: a superseded number's own record says so.
        let held = self.pds.get(nhs_number).await?;
        let key = self.key.clone();
        let entry = format!("{organisation}-{nhs_number}");
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let existing = match tx.read(&key, "Registration", &entry).await? {
                        Some(found) => {
                            let pointer: Value = parse(found.body.as_deref().unwrap_or("{}"))?;
                            let id = pointer
                                .get("patient")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned();
                            match tx.read(&key, "Patient", &id).await? {
                                Some(Versioned {
                                    body: Some(body),
                                    version,
                                    ..
                                }) => Some((parse::<GpPatient>(&body)?, version)),
                                _ => {
                                    return Err(RepoError::Corrupt(format!(
                                        "Registration/{entry} points at a missing patient"
                                    )));
                                }
                            }
                        }
                        None => None,
                    };
                    let (id, expect) = match &existing {
                        Some((patient, version)) => (patient.id.clone(), Expect::Version(*version)),
                        None => (next_patient_id(tx, &key).await?, Expect::Absent),
                    };
                    let is_new = existing.is_none();
                    let patient =
                        decide(held.as_ref().map(|(p, _)| p), existing.map(|(p, _)| p), id)?;
                    let stored = put_patient(tx, &key, &patient, expect, is_new).await?;
                    audit::record_in(tx, audit(&patient)).await?;
                    Ok::<_, RepoError>((patient, stored))
                })
            })
            .await
    }

    /// Adds patients' records with their registration entries (seeding).
    pub async fn put_patients(&self, patients: Vec<GpPatient>) -> Result<(), RepoError> {
        let key = self.key.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    for patient in patients {
                        let current = tx.read(&key, "Patient", &patient.id).await?;
                        let is_new = current.is_none();
                        put_patient(tx, &key, &patient, Expect::Any, is_new).await?;
                    }
                    Ok::<_, RepoError>(())
                })
            })
            .await
    }
}

async fn put_patient(
    tx: &mut carehub_store::Tx<'_>,
    key: &str,
    patient: &GpPatient,
    expect: Expect,
    is_new: bool,
) -> Result<i64, RepoError> {
    let index = INDEXER.index(&patient.view(1));
    let body = serde_json::to_value(patient).map_err(|e| RepoError::Corrupt(e.to_string()))?;
    let stored = tx
        .put(key, "Patient", &patient.id, body, &index, expect)
        .await?;
    if is_new {
        let entry = format!(
            "{}-{}",
            patient.registration.organisation, patient.nhs_number
        );
        tx.put(
            key,
            "Registration",
            &entry,
            serde_json::json!({"patient": patient.id}),
            &[],
            Expect::Absent,
        )
        .await?;
    }
    Ok(stored.version)
}

impl Repo {
    /// Runs a STU3 search of `T` in the partition, every page.
    async fn search_all<T: Record>(
        &self,
        params: Vec<(String, String)>,
    ) -> Result<Vec<(T, i64)>, RepoError> {
        let mut params = params;
        params.push(("_count".to_owned(), "1000".to_owned()));
        let mut query = parse_query(
            FhirVersion::Stu3.model(),
            T::TYPE,
            &params,
            &ParseOptions::default(),
        )
        .map_err(|issues| RepoError::Corrupt(format!("a search did not parse: {issues:?}")))?;
        let mut all = Vec::new();
        loop {
            let page = self.store.search(&self.key, &query).await?;
            for found in page.matches {
                if let Some(body) = found.resource.body {
                    all.push((parse(&body)?, found.resource.version));
                }
            }
            match page.next {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(all),
            }
        }
    }

    /// The ids of the slots held by booked appointments starting within `[from, to]`.
    pub async fn booked_slots(
        &self,
        from: i64,
        to: i64,
    ) -> Result<std::collections::HashSet<String>, RepoError> {
        let params = vec![
            (
                "date".to_owned(),
                format!("ge{}", carehub_fhir::datetime::format_instant(from)),
            ),
            (
                "date".to_owned(),
                format!("le{}", carehub_fhir::datetime::format_instant(to)),
            ),
            ("status".to_owned(), "booked".to_owned()),
        ];
        let booked: Vec<(GpAppointment, i64)> = self.search_all(params).await?;
        Ok(booked.into_iter().flat_map(|(a, _)| a.slots).collect())
    }

    /// A patient's appointments starting within `[from, to]` (instants), cancelled ones too.
    pub async fn appointments_of(
        &self,
        patient: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(GpAppointment, i64)>, RepoError> {
        let params = vec![
            ("patient".to_owned(), format!("Patient/{patient}")),
            (
                "date".to_owned(),
                format!("ge{}", carehub_fhir::datetime::format_instant(from)),
            ),
            (
                "date".to_owned(),
                format!("le{}", carehub_fhir::datetime::format_instant(to)),
            ),
        ];
        let mut found: Vec<(GpAppointment, i64)> = self.search_all(params).await?;
        found.sort_by_key(|(a, _)| a.start);
        Ok(found)
    }

    /// Books: `build` makes the appointment with the next id; it is stored with a
    /// `SlotBooking/{slot}` entry per slot, written "must not exist", so a slot is never booked
    /// twice (the second booking fails with `AlreadyExists`), and with its AuditEvent.
    pub async fn book(
        &self,
        build: impl FnOnce(String) -> GpAppointment + Send + 'static,
        audit: impl FnOnce(&GpAppointment) -> AuditRecord + Send + 'static,
    ) -> Result<(GpAppointment, i64), RepoError> {
        let key = self.key.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let id = take_next(tx, &key, "appointment", FIRST_APPOINTMENT_ID)
                        .await?
                        .to_string();
                    let appointment = build(id);
                    for slot in &appointment.slots {
                        tx.put(
                            &key,
                            "SlotBooking",
                            slot,
                            json!({"appointment": appointment.id}),
                            &[],
                            Expect::Absent,
                        )
                        .await?;
                    }
                    let version = put_record(tx, &key, &appointment, Expect::Absent).await?;
                    audit::record_in(tx, audit(&appointment)).await?;
                    Ok::<_, RepoError>((appointment, version))
                })
            })
            .await
    }

    /// Stores a changed appointment if it is still at `version`; a cancellation frees its slots.
    pub async fn change_appointment(
        &self,
        appointment: GpAppointment,
        version: i64,
        audit: impl FnOnce(&GpAppointment) -> AuditRecord + Send + 'static,
    ) -> Result<(GpAppointment, i64), RepoError> {
        let key = self.key.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    if appointment.status
                        == crate::domain::appointment::AppointmentStatus::Cancelled
                    {
                        for slot in &appointment.slots {
                            tx.delete(&key, "SlotBooking", slot, Expect::Any).await?;
                        }
                    }
                    let stored =
                        put_record(tx, &key, &appointment, Expect::Version(version)).await?;
                    audit::record_in(tx, audit(&appointment)).await?;
                    Ok::<_, RepoError>((appointment, stored))
                })
            })
            .await
    }
}

impl Repo {
    /// The clinical record of patient `id` (an empty one when nothing was ever recorded).
    pub async fn clinical_record(&self, id: &str) -> Result<ClinicalRecord, RepoError> {
        match self.store.read(&self.key, "ClinicalRecord", id).await? {
            Some(Versioned {
                body: Some(body), ..
            }) => parse(&body),
            _ => Ok(ClinicalRecord {
                id: id.to_owned(),
                ..ClinicalRecord::default()
            }),
        }
    }

    /// Adds or replaces clinical records (seeding).
    pub async fn put_records(&self, records: Vec<ClinicalRecord>) -> Result<(), RepoError> {
        let key = self.key.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    for record in records {
                        let body = serde_json::to_value(&record)
                            .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                        tx.put(&key, "ClinicalRecord", &record.id, body, &[], Expect::Any)
                            .await?;
                    }
                    Ok::<_, RepoError>(())
                })
            })
            .await
    }
}

/// An AuditEvent ready to write.
pub type AuditRecord = Option<(String, Value, Vec<carehub_fhir::search::IndexEntry>)>;

async fn put_record<T: Record>(
    tx: &mut carehub_store::Tx<'_>,
    key: &str,
    record: &T,
    expect: Expect,
) -> Result<i64, RepoError> {
    let index = INDEXER.index(&record.view(1));
    let body = serde_json::to_value(record).map_err(|e| RepoError::Corrupt(e.to_string()))?;
    Ok(tx
        .put(key, T::TYPE, record.id(), body, &index, expect)
        .await?
        .version)
}

/// Appointment ids given out start here.
const FIRST_APPOINTMENT_ID: u64 = 1;

/// Patient ids given out by registration start here, clear of the seeded ones.
const FIRST_PATIENT_ID: u64 = 1_001;

async fn next_patient_id(tx: &mut carehub_store::Tx<'_>, key: &str) -> Result<String, RepoError> {
    Ok(take_next(tx, key, "patient", FIRST_PATIENT_ID)
        .await?
        .to_string())
}

/// Takes the next value of `Counter/{name}` (from `first`) inside a unit of work; the version
/// check on the counter keeps two nodes from taking the same value.
async fn take_next(
    tx: &mut carehub_store::Tx<'_>,
    key: &str,
    name: &str,
    first: u64,
) -> Result<u64, RepoError> {
    let current = tx.read(key, "Counter", name).await?;
    let (next, expect) = match current
        .as_ref()
        .and_then(|c| c.body.as_ref().map(|b| (b, c.version)))
    {
        Some((body, version)) => {
            let value: Value = parse(body)?;
            (
                value.get("next").and_then(Value::as_u64).unwrap_or(first),
                Expect::Version(version),
            )
        }
        None => (first, Expect::Absent),
    };
    tx.put(key, "Counter", name, json!({"next": next + 1}), &[], expect)
        .await?;
    Ok(next)
}
