//! e-RS records in the carehub store, in the product's partition (`ers-int`): `Referral/{ubrn}`
//! (the store version is the referral's e-RS version, so `W/"n"` ETags are the store's),
//! `Service/{id}` (the directory) and `Counter/ubrn` (the next UBRN). Each change is one unit
//! of work with its AuditEvent: all of it is committed, or none.

use carehub_fhir::search::{SearchQuery, Summary, Total};
use carehub_server::audit;
use carehub_store::{Expect, Store, StoreError};
use serde_json::{Value, json};

use crate::domain::ErsError;
use crate::domain::referral::Referral;
use crate::domain::service::Service;

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
}

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, RepoError> {
    serde_json::from_str(body).map_err(|e| RepoError::Corrupt(e.to_string()))
}

impl Repo {
    /// Records in partition `key` of `store`.
    pub fn new(store: Store, key: &str) -> Repo {
        Repo {
            store,
            key: key.to_owned(),
        }
    }

    /// The store, for audit records of reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every service of the directory, with its version.
    pub async fn services(&self) -> Result<Vec<(Service, i64)>, RepoError> {
        let query = SearchQuery {
            resource_type: "Service".into(),
            filters: Vec::new(),
            sort: Vec::new(),
            count: 10_000,
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

    /// Allocates a UBRN and stores the referral `build` makes with it, with its AuditEvent.
    pub async fn create_referral(
        &self,
        build: impl FnOnce(String) -> Referral + Send + 'static,
        audit: impl FnOnce(&Referral) -> AuditRecord + Send + 'static,
    ) -> Result<(Referral, i64), RepoError> {
        let key = self.key.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let counter = tx.read(&key, "Counter", "ubrn").await?;
                    let (next, expect) = match &counter {
                        Some(found) => {
                            let body: Value = found
                                .body
                                .as_deref()
                                .map(parse)
                                .transpose()?
                                .unwrap_or(Value::Null);
                            let next = body
                                .get("next")
                                .and_then(Value::as_u64)
                                .unwrap_or(FIRST_UBRN);
                            (next, Expect::Version(found.version))
                        }
                        None => (FIRST_UBRN, Expect::Absent),
                    };
                    tx.put(
                        &key,
                        "Counter",
                        "ubrn",
                        json!({"next": next + 1}),
                        &[],
                        expect,
                    )
                    .await?;
                    let referral = build(format!("{next:012}"));
                    let body = serde_json::to_value(&referral)
                        .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                    let stored = tx
                        .put(&key, "Referral", &referral.ubrn, body, &[], Expect::Absent)
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
        expected: i64,
        change: impl FnOnce(&mut Referral) -> Result<(), ErsError> + Send + 'static,
        audit: impl FnOnce(&Referral) -> AuditRecord + Send + 'static,
    ) -> Result<(Referral, i64), RepoError> {
        let key = self.key.clone();
        let ubrn = ubrn.to_owned();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let found = tx.read(&key, "Referral", &ubrn).await?;
                    let Some((body, version)) = found.and_then(|f| Some((f.body?, f.version))) else {
                        return Err(ErsError::not_found(format!("No referral with UBRN {ubrn}")).into());
                    };
                    if version != expected {
                        return Err(ErsError::new(
                            crate::domain::Class::Conflict,
                            "INVALID_VALUE",
                            format!("If-Match asked for version {expected} of referral {ubrn}; the current version is {version}. Read it again (A005) and retry"),
                        )
                        .into());
                    }
                    let mut referral: Referral = parse(&body)?;
                    change(&mut referral)?;
                    let body = serde_json::to_value(&referral).map_err(|e| RepoError::Corrupt(e.to_string()))?;
                    let stored = tx.put(&key, "Referral", &ubrn, body, &[], Expect::Version(version)).await?;
                    audit::record_in(tx, audit(&referral)).await?;
                    Ok::<_, RepoError>((referral, stored.version))
                })
            })
            .await
    }
}
