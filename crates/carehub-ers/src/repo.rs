//! e-RS records in the carehub store, in the product's partition (`ers-int`): `Referral/{ubrn}`
//! (the store version is the referral's e-RS version, so `W/"n"` ETags are the store's),
//! `Service/{id}` (the directory) and `Counter/ubrn` (the next UBRN). Each change is one unit
//! of work with its AuditEvent: all of it is committed, or none.

use carehub_fhir::search::{SearchQuery, Summary, Total};
use carehub_server::audit;
use carehub_store::{Expect, Store, StoreError};
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::domain::advice::AdviceRequest;
use crate::domain::appointment::{self, Appointment};
use crate::domain::attachment::StoredFile;
use crate::domain::referral::{Referral, State};
use crate::domain::service::Service;
use crate::domain::{Class, ErsError};

/// A store failure or a rule the change broke.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An e-RS rule refused the change.
    #[error(transparent)]
    Ers(#[from] ErsError),
    /// A stored record does not parse.
    #[error("stored e-RS record is corrupt: {0}")]
    Corrupt(String),
    /// A stateless unit of work was undone on purpose.
    #[error("rolled back")]
    RolledBack,
}

/// UBRNs given out in this store start here: twelve digits, clear of the sandbox's
/// `0000000700xx` scenario keys.
const FIRST_UBRN: u64 = 100_000_000_001;

/// An AuditEvent ready to write.
pub type AuditRecord = Option<(String, Value, Vec<carehub_fhir::search::IndexEntry>)>;

/// e-RS records of one environment.
#[derive(Debug, Clone)]
pub struct Repo {
    store: Store,
    key: String,
    /// The partition of the test PAS that holds the slots.
    pas: String,
    /// A sandbox: changes are worked out and answered, then rolled back.
    stateless: bool,
    /// The time the records are stamped with and slots are worked out from.
    clock: Clock,
}

/// Appointment ids given out in this store start here.
const FIRST_APPOINTMENT: u64 = 100_001;

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, RepoError> {
    serde_json::from_str(body).map_err(|e| RepoError::Corrupt(e.to_string()))
}

impl Repo {
    /// Records in partition `key` of `store`.
    pub fn new(store: Store, key: &str) -> Repo {
        Repo {
            store,
            key: key.to_owned(),
            // `ers-int` keeps its slots in the PAS of the same environment, `pas-int`.
            pas: format!("pas-{}", key.strip_prefix("ers-").unwrap_or(key)),
            stateless: false,
            clock: Clock::system(),
        }
    }

    /// The same records, read and stamped by `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Repo {
        self.clock = clock;
        self
    }

    /// Now, by the repository's clock, in microseconds since the epoch.
    pub fn now(&self) -> i64 {
        self.clock.now_micros()
    }

    /// The same records, but every change is worked out (with every rule and the answer it
    /// gives) and then rolled back: what a sandbox needs.
    pub fn stateless(mut self) -> Repo {
        self.stateless = true;
        self
    }

    /// Runs a unit of work: committed, or in a stateless repo computed and rolled back.
    async fn unit<T, F>(&self, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(
                &'t mut carehub_store::Tx<'_>,
            ) -> carehub_store::BoxFuture<'t, Result<T, RepoError>>
            + Send
            + 'static,
    {
        if !self.stateless {
            return self.store.write(work).await;
        }
        let kept = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = kept.clone();
        let outcome = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let value = work(tx).await?;
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
                    Err::<(), RepoError>(RepoError::RolledBack)
                })
            })
            .await;
        match outcome {
            Err(RepoError::RolledBack) => kept
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .ok_or_else(|| {
                    RepoError::Corrupt("a rolled-back unit of work kept no answer".into())
                }),
            Err(other) => Err(other),
            Ok(()) => Err(RepoError::Corrupt(
                "a stateless unit of work committed".into(),
            )),
        }
    }

    /// The partition of the PAS bookings.
    pub fn pas_key(&self) -> &str {
        &self.pas
    }

    /// The store, for audit records of reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every service of the directory, with its version.
    pub async fn services(&self) -> Result<Vec<(Service, i64)>, RepoError> {
        self.all_of("Service", Vec::new()).await
    }

    /// One service and its version.
    pub async fn service(&self, id: &str) -> Result<Option<(Service, i64)>, RepoError> {
        match self.store.read(&self.key, "Service", id).await? {
            Some(found) => match found.body {
                Some(body) => Ok(Some((parse(&body)?, found.version))),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Adds or replaces services (seeding).
    pub async fn put_services(&self, services: Vec<Service>) -> Result<(), RepoError> {
        let key = self.key.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    for service in services {
                        let body = serde_json::to_value(&service)
                            .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                        tx.put(&key, "Service", &service.id, body, &[], Expect::Any)
                            .await?;
                    }
                    Ok::<_, RepoError>(())
                })
            })
            .await
    }

    /// A referral and its version.
    pub async fn referral(&self, ubrn: &str) -> Result<Option<(Referral, i64)>, RepoError> {
        match self.store.read(&self.key, "Referral", ubrn).await? {
            Some(found) => match found.body {
                Some(body) => Ok(Some((parse(&body)?, found.version))),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Allocates a UBRN and an appointment id and stores the referral and appointment `build`
    /// makes with them, in one unit of work (A021: create and send for triage at once).
    pub async fn create_referral_with_appointment(
        &self,
        build: impl FnOnce(String, String) -> Result<(Referral, Appointment), ErsError> + Send + 'static,
        audit: impl FnOnce(&Referral, &Appointment) -> AuditRecord + Send + 'static,
    ) -> Result<(Referral, i64), RepoError> {
        let key = self.key.clone();
        self.unit(move |tx| {
            Box::pin(async move {
                let ubrn = next_ubrn(tx, &key).await?;
                let next = next_appointment_id(tx, &key).await?;
                let (referral, mut appointment) = build(ubrn, next.to_string())?;
                appointment.referral_version = 1;
                let body = serde_json::to_value(&referral)
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                let stored = tx
                    .put(
                        &key,
                        "Referral",
                        &referral.ubrn,
                        body,
                        &referral_index(&referral),
                        Expect::Absent,
                    )
                    .await?;
                let body = serde_json::to_value(&appointment)
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                tx.put(
                    &key,
                    "Appointment",
                    &appointment.id,
                    body,
                    &[],
                    Expect::Absent,
                )
                .await?;
                audit::record_in(tx, audit(&referral, &appointment)).await?;
                Ok::<_, RepoError>((referral, stored.version))
            })
        })
        .await
    }

    /// Stores `value` as `kind/id` at exactly `version` (written that many times), for scenario
    /// data whose versions are part of what callers ask for.
    pub async fn seed_record<T: serde::Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        version: i64,
    ) -> Result<(), RepoError> {
        let body = serde_json::to_value(value).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        let (key, kind, id) = (self.key.clone(), kind.to_owned(), id.to_owned());
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    for _ in 0..version.max(1) {
                        tx.put(&key, &kind, &id, body.clone(), &[], Expect::Any)
                            .await?;
                    }
                    Ok::<_, RepoError>(())
                })
            })
            .await
    }

    /// Counts a call under `key` (`Counter/calls.{key}`) and says how many there have been.
    pub async fn count_call(&self, key: &str) -> Result<u64, RepoError> {
        let (partition, name) = (self.key.clone(), format!("calls.{key}"));
        self.unit(move |tx| Box::pin(async move { take_next(tx, &partition, &name, 1).await }))
            .await
    }

    /// Every live record of `kind` that passes `filters`, with its version.
    async fn all_of<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        filters: Vec<carehub_fhir::search::Filter>,
    ) -> Result<Vec<(T, i64)>, RepoError> {
        let query = SearchQuery {
            resource_type: kind.into(),
            filters,
            sort: Vec::new(),
            count: 100_000,
            include: Vec::new(),
            revinclude: Vec::new(),
            summary: Summary::False,
            elements: Vec::new(),
            total: Total::None,
            cursor: None,
            warnings: Vec::new(),
        };
        let page = self.store.search(&self.key, &query).await?;
        page.matches
            .into_iter()
            .filter_map(|m| Some((m.resource.body?, m.resource.version)))
            .map(|(body, version)| Ok((parse(&body)?, version)))
            .collect()
    }

    /// The referrals on `list` for `organisation` (by the index every referral is written with).
    pub async fn referrals_on(
        &self,
        list: &str,
        organisation: &str,
    ) -> Result<Vec<(Referral, i64)>, RepoError> {
        self.all_of("Referral", vec![on_worklist(organisation, list)])
            .await
    }

    /// Every referral, with its version (for worklists).
    pub async fn referrals(&self) -> Result<Vec<(Referral, i64)>, RepoError> {
        self.all_of("Referral", Vec::new()).await
    }

    /// An appointment and its version.
    pub async fn appointment(&self, id: &str) -> Result<Option<(Appointment, i64)>, RepoError> {
        match self.store.read(&self.key, "Appointment", id).await? {
            Some(found) => match found.body {
                Some(body) => Ok(Some((parse(&body)?, found.version))),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Makes an appointment for referral `ubrn` (at `expected` version) in one unit of work:
    /// `make` changes the referral and returns the appointment for the id it is given; the PAS
    /// slot, if any, is booked (`SLOT_NOT_AVAILABLE` if someone took it first).
    pub async fn create_appointment(
        &self,
        ubrn: &str,
        expected: Expected,
        slot: Option<carehub_pas::Slot>,
        make: impl FnOnce(&mut Referral, String) -> Result<Appointment, ErsError> + Send + 'static,
        audit: impl FnOnce(&Referral, &Appointment) -> AuditRecord + Send + 'static,
    ) -> Result<(Appointment, i64, Referral, i64), RepoError> {
        let key = self.key.clone();
        let clock = self.clock;
        let pas = self.pas.clone();
        let ubrn = ubrn.to_owned();
        self.unit(move |tx| {
            Box::pin(async move {
                let (mut referral, version) = read_referral_in(tx, &key, &ubrn, expected).await?;
                let next = next_appointment_id(tx, &key).await?;
                let mut appointment = make(&mut referral, next.to_string())?;
                if let Some(slot) = &slot
                    && !carehub_pas::book_in(
                        tx,
                        &pas,
                        slot,
                        &format!("Appointment/{}", appointment.id),
                    )
                    .await?
                {
                    return Err(ErsError::rule(
                        "SLOT_NOT_AVAILABLE",
                        format!(
                            "slot {} has just been booked by someone else; choose another (A015)",
                            slot.id
                        ),
                    )
                    .into());
                }
                appointment.referral_version = version + 1;
                referral.updated = clock.now_text();
                let referral_body = serde_json::to_value(&referral)
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                let stored_referral = tx
                    .put(
                        &key,
                        "Referral",
                        &ubrn,
                        referral_body,
                        &referral_index(&referral),
                        Expect::Version(version),
                    )
                    .await?;
                let body = serde_json::to_value(&appointment)
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                let stored = tx
                    .put(
                        &key,
                        "Appointment",
                        &appointment.id,
                        body,
                        &[],
                        Expect::Absent,
                    )
                    .await?;
                audit::record_in(tx, audit(&referral, &appointment)).await?;
                Ok::<_, RepoError>((
                    appointment,
                    stored.version,
                    referral,
                    stored_referral.version,
                ))
            })
        })
        .await
    }

    /// Cancels booked appointment `id` (at `expected` version) and applies `change` to its
    /// referral, freeing the slot, in one unit of work.
    pub async fn cancel_appointment(
        &self,
        id: &str,
        expected: Expected,
        change: impl FnOnce(&mut Referral, &mut Appointment) -> Result<(), ErsError> + Send + 'static,
        audit: impl FnOnce(&Referral, &Appointment) -> AuditRecord + Send + 'static,
    ) -> Result<(Appointment, i64), RepoError> {
        let key = self.key.clone();
        let clock = self.clock;
        let pas = self.pas.clone();
        let id = id.to_owned();
        self.unit(move |tx| {
            Box::pin(async move {
                let found = tx.read(&key, "Appointment", &id).await?;
                let Some((body, version)) = found.and_then(|f| Some((f.body?, f.version))) else {
                    return Err(ErsError::not_found(format!("No appointment '{id}'")).into());
                };
                expected.check("appointment", &id, version)?;
                let mut appointment: Appointment = parse(&body)?;
                let found = tx.read(&key, "Referral", &appointment.ubrn).await?;
                let Some((referral_body, referral_version)) =
                    found.and_then(|f| Some((f.body?, f.version)))
                else {
                    return Err(RepoError::Corrupt(format!(
                        "appointment {id} has no referral"
                    )));
                };
                let mut referral: Referral = parse(&referral_body)?;
                change(&mut referral, &mut appointment)?;
                if let Some(slot) = &appointment.slot {
                    carehub_pas::release_in(tx, &pas, slot).await?;
                }
                appointment.referral_version = referral_version + 1;
                referral.updated = clock.now_text();
                let referral_body = serde_json::to_value(&referral)
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                tx.put(
                    &key,
                    "Referral",
                    &referral.ubrn,
                    referral_body,
                    &referral_index(&referral),
                    Expect::Version(referral_version),
                )
                .await?;
                let body = serde_json::to_value(&appointment)
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                let stored = tx
                    .put(
                        &key,
                        "Appointment",
                        &id,
                        body,
                        &[],
                        Expect::Version(version),
                    )
                    .await?;
                audit::record_in(tx, audit(&referral, &appointment)).await?;
                Ok::<_, RepoError>((appointment, stored.version))
            })
        })
        .await
    }

    /// An advice request and its version.
    pub async fn advice(&self, ubrn: &str) -> Result<Option<(AdviceRequest, i64)>, RepoError> {
        match self.store.read(&self.key, "AdviceRequest", ubrn).await? {
            Some(found) => match found.body {
                Some(body) => Ok(Some((parse(&body)?, found.version))),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The advice requests awaiting `organisation`'s response (the A&G worklist), by the
    /// index every advice request is written with.
    pub async fn advices_awaiting(
        &self,
        organisation: &str,
    ) -> Result<Vec<(AdviceRequest, i64)>, RepoError> {
        // A caller who acts everywhere (the sandbox's) reads the lists of every provider.
        if organisation == crate::domain::access::EVERY_ORGANISATION {
            return self.all_of("AdviceRequest", Vec::new()).await;
        }
        self.index_advices_once().await?;
        self.all_of(
            "AdviceRequest",
            vec![on_worklist(organisation, ADVICE_WORKLIST)],
        )
        .await
    }

    /// Advice requests stored before they were indexed by worklist have no index rows: give
    /// them theirs once per partition (versions unchanged), then mark it done. Running it
    /// twice, on two nodes at once say, does no harm.
    async fn index_advices_once(&self) -> Result<(), RepoError> {
        const MARK: &str = "advice-worklist-index";
        let mark = self.store.read(&self.key, "Migration", MARK).await?;
        if mark.is_some_and(|mark| !mark.is_deleted()) {
            return Ok(());
        }
        let index: carehub_store::IndexFn = std::sync::Arc::new(|body: &Value| {
            serde_json::from_value::<AdviceRequest>(body.clone())
                .map(|advice| advice_index(&advice))
                .unwrap_or_default()
        });
        self.store
            .reindex_type(&self.key, "AdviceRequest", index)
            .await?;
        let key = self.key.clone();
        self.unit(move |tx| {
            Box::pin(async move {
                tx.put(
                    &key,
                    "Migration",
                    MARK,
                    json!({"done": true}),
                    &[],
                    Expect::Any,
                )
                .await?;
                Ok::<_, RepoError>(())
            })
        })
        .await
    }

    /// Allocates a UBRN and stores the advice request `build` makes with it.
    pub async fn create_advice(
        &self,
        build: impl FnOnce(String) -> AdviceRequest + Send + 'static,
        audit: impl FnOnce(&AdviceRequest) -> AuditRecord + Send + 'static,
    ) -> Result<(AdviceRequest, i64), RepoError> {
        let key = self.key.clone();
        self.unit(move |tx| {
            Box::pin(async move {
                let ubrn = next_ubrn(tx, &key).await?;
                let advice = build(ubrn);
                let body =
                    serde_json::to_value(&advice).map_err(|e| RepoError::Corrupt(e.to_string()))?;
                let stored = tx
                    .put(
                        &key,
                        "AdviceRequest",
                        &advice.ubrn,
                        body,
                        &advice_index(&advice),
                        Expect::Absent,
                    )
                    .await?;
                // Files sent with the question now belong to the request, so that the provider
                // may fetch them (A042) as for files uploaded for an existing one.
                for attached in advice.messages.iter().flat_map(|m| &m.attachments) {
                    let mut file = attached.file.clone();
                    file.referral = Some(advice.ubrn.clone());
                    let meta = serde_json::to_value(&file)
                        .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                    tx.put(&key, "File", &file.id, meta, &[], Expect::Any)
                        .await?;
                }
                audit::record_in(tx, audit(&advice)).await?;
                Ok::<_, RepoError>((advice, stored.version))
            })
        })
        .await
    }

    /// Applies `change` to advice request `ubrn` at `expected` version (409 otherwise); when it
    /// returns a referral (a conversion), that referral is created in the same unit of work.
    pub async fn update_advice(
        &self,
        ubrn: &str,
        expected: Expected,
        change: impl FnOnce(&mut AdviceRequest) -> Result<Option<Referral>, ErsError> + Send + 'static,
        audit: impl FnOnce(&AdviceRequest) -> AuditRecord + Send + 'static,
    ) -> Result<(AdviceRequest, i64, Option<(Referral, i64)>), RepoError> {
        let key = self.key.clone();
        let stateless = self.stateless;
        let ubrn = ubrn.to_owned();
        self.unit(move |tx| {
            Box::pin(async move {
                let found = tx.read(&key, "AdviceRequest", &ubrn).await?;
                let Some((body, version)) = found.and_then(|f| Some((f.body?, f.version))) else {
                    return Err(
                        ErsError::not_found(format!("No advice request with UBRN {ubrn}")).into(),
                    );
                };
                expected.check("advice request", &ubrn, version)?;
                let mut advice: AdviceRequest = parse(&body)?;
                let referral = change(&mut advice)?;
                let body =
                    serde_json::to_value(&advice).map_err(|e| RepoError::Corrupt(e.to_string()))?;
                let stored = tx
                    .put(
                        &key,
                        "AdviceRequest",
                        &ubrn,
                        body,
                        &advice_index(&advice),
                        Expect::Version(version),
                    )
                    .await?;
                let created = match referral {
                    Some(referral) => {
                        let body = serde_json::to_value(&referral)
                            .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                        let made = tx
                            .put(
                                &key,
                                "Referral",
                                &referral.ubrn,
                                body,
                                &referral_index(&referral),
                                // The sandbox holds scenario referrals under the UBRNs of its
                                // advice requests; a conversion there (rolled back) stands
                                // in for them.
                                if stateless {
                                    Expect::Any
                                } else {
                                    Expect::Absent
                                },
                            )
                            .await?;
                        Some((referral, made.version))
                    }
                    None => None,
                };
                audit::record_in(tx, audit(&advice)).await?;
                Ok::<_, RepoError>((advice, stored.version, created))
            })
        })
        .await
    }

    /// Keeps an uploaded file: its description and its bytes, as two records so that reading
    /// a referral never loads file contents.
    pub async fn put_file(
        &self,
        file: StoredFile,
        bytes: Vec<u8>,
        audit: AuditRecord,
    ) -> Result<(), RepoError> {
        use base64::Engine;
        let key = self.key.clone();
        let data = json!({"data": base64::engine::general_purpose::STANDARD.encode(bytes)});
        self.unit(move |tx| {
            Box::pin(async move {
                let meta =
                    serde_json::to_value(&file).map_err(|e| RepoError::Corrupt(e.to_string()))?;
                tx.put(&key, "File", &file.id, meta, &[], Expect::Absent)
                    .await?;
                tx.put(&key, "FileData", &file.id, data, &[], Expect::Absent)
                    .await?;
                audit::record_in(tx, audit).await?;
                Ok::<_, RepoError>(())
            })
        })
        .await
    }

    /// A file's description.
    pub async fn file(&self, id: &str) -> Result<Option<StoredFile>, RepoError> {
        match self.store.read(&self.key, "File", id).await? {
            Some(found) => found.body.as_deref().map(parse).transpose(),
            None => Ok(None),
        }
    }

    /// A file's bytes.
    pub async fn file_data(&self, id: &str) -> Result<Option<Vec<u8>>, RepoError> {
        use base64::Engine;
        let Some(found) = self.store.read(&self.key, "FileData", id).await? else {
            return Ok(None);
        };
        let Some(body) = found.body else {
            return Ok(None);
        };
        let value: Value = parse(&body)?;
        let text = value
            .get("data")
            .and_then(Value::as_str)
            .unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Some)
            .map_err(|e| RepoError::Corrupt(e.to_string()))
    }

    /// The key that signs download URLs, made once per environment and shared by every node.
    pub async fn signing_key(&self) -> Result<Vec<u8>, RepoError> {
        use base64::Engine;
        let decode = |body: &str| -> Result<Vec<u8>, RepoError> {
            let value: Value = parse(body)?;
            base64::engine::general_purpose::STANDARD
                .decode(value.get("key").and_then(Value::as_str).unwrap_or_default())
                .map_err(|e| RepoError::Corrupt(e.to_string()))
        };
        if let Some(found) = self
            .store
            .read_fresh(&self.key, "Secret", "object-store")
            .await?
            && let Some(body) = found.body
        {
            return decode(&body);
        }
        let fresh: Vec<u8> = uuid::Uuid::new_v4()
            .as_bytes()
            .iter()
            .chain(uuid::Uuid::new_v4().as_bytes())
            .copied()
            .collect();
        let document = json!({"key": base64::engine::general_purpose::STANDARD.encode(&fresh)});
        let key = self.key.clone();
        let written = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    tx.put(
                        &key,
                        "Secret",
                        "object-store",
                        document,
                        &[],
                        Expect::Absent,
                    )
                    .await
                })
            })
            .await;
        match written {
            Ok(_) => Ok(fresh),
            // Another node made it first: use theirs.
            Err(StoreError::AlreadyExists { .. }) => match self
                .store
                .read_fresh(&self.key, "Secret", "object-store")
                .await?
            {
                Some(found) => decode(found.body.as_deref().unwrap_or_default()),
                None => Err(RepoError::Corrupt("the signing key vanished".into())),
            },
            Err(other) => Err(other.into()),
        }
    }

    /// Allocates a UBRN and stores the referral `build` makes with it, with its AuditEvent.
    pub async fn create_referral(
        &self,
        build: impl FnOnce(String) -> Referral + Send + 'static,
        audit: impl FnOnce(&Referral) -> AuditRecord + Send + 'static,
    ) -> Result<(Referral, i64), RepoError> {
        let key = self.key.clone();
        self.unit(move |tx| {
            Box::pin(async move {
                let next = next_ubrn(tx, &key).await?;
                let referral = build(next);
                let body = serde_json::to_value(&referral)
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                let stored = tx
                    .put(
                        &key,
                        "Referral",
                        &referral.ubrn,
                        body,
                        &referral_index(&referral),
                        Expect::Absent,
                    )
                    .await?;
                audit::record_in(tx, audit(&referral)).await?;
                Ok::<_, RepoError>((referral, stored.version))
            })
        })
        .await
    }

    /// Applies `change` to the current referral, if it is at `expected` version (409
    /// otherwise), and stores the result with its AuditEvent.
    pub async fn update_referral(
        &self,
        ubrn: &str,
        expected: Expected,
        change: impl FnOnce(&mut Referral) -> Result<(), ErsError> + Send + 'static,
        audit: impl FnOnce(&Referral) -> AuditRecord + Send + 'static,
    ) -> Result<(Referral, i64), RepoError> {
        let key = self.key.clone();
        let clock = self.clock;
        let pas = self.pas.clone();
        let ubrn = ubrn.to_owned();
        self.unit(move |tx| {
            Box::pin(async move {
                let (mut referral, version) = read_referral_in(tx, &key, &ubrn, expected).await?;
                let was_booked = referral.state == State::Booked;
                change(&mut referral)?;
                referral.updated = clock.now_text();
                // A referral that leaves BOOKED (rejected, cancelled) gives up its slot, and
                // its appointment is cancelled with it.
                if was_booked
                    && referral.state != State::Booked
                    && let Some(id) = referral.appointment.clone()
                {
                    cancel_booked_in(tx, &key, &pas, &id, &referral, version + 1).await?;
                }
                let body = serde_json::to_value(&referral)
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                let stored = tx
                    .put(
                        &key,
                        "Referral",
                        &ubrn,
                        body,
                        &referral_index(&referral),
                        Expect::Version(version),
                    )
                    .await?;
                audit::record_in(tx, audit(&referral)).await?;
                Ok::<_, RepoError>((referral, stored.version))
            })
        })
        .await
    }
}

/// The version a write expects its record at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// This version, from `If-Match` or a version a request body names; any other is a 409.
    Version(i64),
    /// Whatever is current: the sandbox's writes, as the official sandbox checks no versions,
    /// so that the spec's examples (`If-Match: W/"4"`, `_history/6`) work against scenario
    /// records at any version.
    Current,
}

impl Expected {
    /// Refuses the write when the record `id` (a `what`) is at `current`, not the version
    /// expected.
    fn check(self, what: &str, id: &str, current: i64) -> Result<(), ErsError> {
        match self {
            Expected::Version(expected) if expected != current => Err(ErsError::new(
                Class::Conflict,
                "INVALID_VALUE",
                format!(
                    "Version {expected} of {what} {id} was given; the current version is {current}. Read it again and retry"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The referral `ubrn` inside a unit of work, if it is at `expected` version (409 otherwise).
async fn read_referral_in(
    tx: &mut carehub_store::Tx<'_>,
    key: &str,
    ubrn: &str,
    expected: Expected,
) -> Result<(Referral, i64), RepoError> {
    let found = tx.read(key, "Referral", ubrn).await?;
    let Some((body, version)) = found.and_then(|f| Some((f.body?, f.version))) else {
        return Err(ErsError::not_found(format!("No referral with UBRN {ubrn}")).into());
    };
    expected.check("referral", ubrn, version)?;
    Ok((parse(&body)?, version))
}

/// Cancels a booked appointment whose referral left BOOKED, freeing its slot.
async fn cancel_booked_in(
    tx: &mut carehub_store::Tx<'_>,
    key: &str,
    pas: &str,
    id: &str,
    referral: &Referral,
    referral_version: i64,
) -> Result<(), RepoError> {
    let Some(found) = tx.read(key, "Appointment", id).await? else {
        return Ok(());
    };
    let Some(body) = found.body else {
        return Ok(());
    };
    let mut appointment: Appointment = parse(&body)?;
    if appointment.status != appointment::Status::Booked {
        return Ok(());
    }
    if let Some(slot) = &appointment.slot {
        carehub_pas::release_in(tx, pas, slot).await?;
    }
    appointment.status = appointment::Status::Cancelled;
    appointment.referral_version = referral_version;
    if let Some(reason) = &referral.reason {
        appointment.reason = Some(appointment::Reason {
            system: reason.kind.clone(),
            code: reason.code.clone(),
        });
        appointment.comment = reason.comment.clone();
    }
    let body = serde_json::to_value(&appointment).map_err(|e| RepoError::Corrupt(e.to_string()))?;
    tx.put(
        key,
        "Appointment",
        id,
        body,
        &[],
        Expect::Version(found.version),
    )
    .await?;
    Ok(())
}

/// Gives out the next UBRN of the environment (referrals and advice requests share them).
async fn next_ubrn(tx: &mut carehub_store::Tx<'_>, key: &str) -> Result<String, RepoError> {
    Ok(format!(
        "{:012}",
        take_next(tx, key, "ubrn", FIRST_UBRN).await?
    ))
}

/// Gives out the next appointment id of the environment.
async fn next_appointment_id(tx: &mut carehub_store::Tx<'_>, key: &str) -> Result<u64, RepoError> {
    take_next(tx, key, "appointment", FIRST_APPOINTMENT).await
}

/// Takes the next value of counter `Counter/{name}` (starting at `first`) inside a unit of
/// work: the version check on the counter keeps two nodes from taking the same value.
async fn take_next(
    tx: &mut carehub_store::Tx<'_>,
    key: &str,
    name: &str,
    first: u64,
) -> Result<u64, RepoError> {
    let counter = tx.read(key, "Counter", name).await?;
    let (next, expect) = match &counter {
        Some(found) => {
            let body: Value = found
                .body
                .as_deref()
                .map(parse)
                .transpose()?
                .unwrap_or(Value::Null);
            let next = body.get("next").and_then(Value::as_u64).unwrap_or(first);
            (next, Expect::Version(found.version))
        }
        None => (first, Expect::Absent),
    };
    tx.put(key, "Counter", name, json!({"next": next + 1}), &[], expect)
        .await?;
    Ok(next)
}

/// The search filter for records on `organisation`'s worklist `list` (by their `worklist` index).
fn on_worklist(organisation: &str, list: &str) -> carehub_fhir::search::Filter {
    carehub_fhir::search::Filter::Token {
        param: "worklist".into(),
        values: vec![carehub_fhir::search::TokenValue {
            system: Some(organisation.to_ascii_uppercase()),
            code: Some(list.into()),
        }],
        not: false,
    }
}

/// The code under which advice requests awaiting a provider's response are indexed.
const ADVICE_WORKLIST: &str = "ADVICE_AND_GUIDANCE_REQUESTS";

/// The index entries of an advice request: on its provider's worklist while the provider is to
/// answer (`worklist` = organisation|ADVICE_AND_GUIDANCE_REQUESTS).
fn advice_index(advice: &AdviceRequest) -> Vec<carehub_fhir::search::IndexEntry> {
    if advice.category != crate::domain::advice::Category::ProviderResponseRequired {
        return Vec::new();
    }
    vec![carehub_fhir::search::IndexEntry {
        param: "worklist".into(),
        value: carehub_fhir::search::IndexValue::Token {
            system: Some(advice.provider.to_ascii_uppercase()),
            code: Some(ADVICE_WORKLIST.into()),
            text: None,
        },
    }]
}

/// The index entries of a referral: the worklists it is on (`worklist` = organisation|list).
fn referral_index(referral: &Referral) -> Vec<carehub_fhir::search::IndexEntry> {
    crate::domain::worklist::memberships(referral)
        .into_iter()
        .map(|(list, organisation)| carehub_fhir::search::IndexEntry {
            param: "worklist".into(),
            value: carehub_fhir::search::IndexValue::Token {
                system: Some(organisation),
                code: Some(list.into()),
                text: None,
            },
        })
        .collect()
}
