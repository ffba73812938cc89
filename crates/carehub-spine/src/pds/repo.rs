//! PDS records in the store partition `pds-{env}`: `Patient/{nhs number}`, indexed by the R4
//! Patient search parameters of their unrestricted view, so that a search reads only the
//! records born in its date range (and, when it names one, with that family name).

use std::sync::LazyLock;

use carehub_fhir::FhirVersion;
use carehub_fhir::search::{Indexer, ParseOptions, parse_query};
use carehub_store::{Expect, Store, StoreError};

use super::record::PdsPatient;
use super::search::{DateBound, PatientSearch};
use super::view;

static INDEXER: LazyLock<Indexer> = LazyLock::new(|| Indexer::new(FhirVersion::R4));

/// The store failed, or holds something that is not a PDS record.
#[derive(Debug, thiserror::Error)]
pub enum PdsRepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored PDS record is corrupt: {0}")]
    Corrupt(String),
}

/// The most records one search reads before it gives up as too broad.
const CANDIDATE_LIMIT: usize = 5_000;

/// PDS records of one environment.
#[derive(Debug, Clone)]
pub struct PdsRepo {
    store: Store,
    key: String,
}

impl PdsRepo {
    /// Records in partition `key` (`pds-int`).
    pub fn new(store: Store, key: &str) -> PdsRepo {
        PdsRepo {
            store,
            key: key.to_owned(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The record held under `nhs_number`, superseded or not, with its version.
    pub async fn get(&self, nhs_number: &str) -> Result<Option<(PdsPatient, i64)>, PdsRepoError> {
        let Some(found) = self.store.read(&self.key, "Patient", nhs_number).await? else {
            return Ok(None);
        };
        let Some(body) = found.body else {
            return Ok(None);
        };
        let patient =
            serde_json::from_str(&body).map_err(|e| PdsRepoError::Corrupt(e.to_string()))?;
        Ok(Some((patient, found.version)))
    }

    /// The current record for `nhs_number`: a superseded number leads to the record it was
    /// merged into, as a PDS read does.
    pub async fn current(
        &self,
        nhs_number: &str,
    ) -> Result<Option<(PdsPatient, i64)>, PdsRepoError> {
        let mut number = nhs_number.to_owned();
        // Merges chain rarely; a cycle in bad data must not loop forever.
        for _ in 0..8 {
            match self.get(&number).await? {
                Some((patient, version)) => match &patient.superseded_by {
                    Some(next) => number = next.clone(),
                    None => return Ok(Some((patient, version))),
                },
                None => return Ok(None),
            }
        }
        Err(PdsRepoError::Corrupt(format!(
            "the merges from {nhs_number} form a cycle"
        )))
    }

    /// Adds or replaces records (seeding and tests).
    pub async fn put_all(&self, patients: Vec<PdsPatient>) -> Result<(), PdsRepoError> {
        let key = self.key.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    for patient in patients {
                        let body = serde_json::to_value(&patient)
                            .map_err(|e| PdsRepoError::Corrupt(e.to_string()))?;
                        // A superseded number is found by reading it, never by searching.
                        let index = if patient.is_superseded() {
                            Vec::new()
                        } else {
                            INDEXER.index(&view::patient(
                                &PdsPatient {
                                    restricted: false,
                                    ..patient.clone()
                                },
                                1,
                            ))
                        };
                        tx.put(
                            &key,
                            "Patient",
                            &patient.nhs_number,
                            body,
                            &index,
                            Expect::Any,
                        )
                        .await?;
                    }
                    Ok::<_, PdsRepoError>(())
                })
            })
            .await
    }

    /// The records a search could match: born in its date range, and with its family name
    /// (up to a wildcard) when the search is not fuzzy.
    pub async fn candidates(
        &self,
        search: &PatientSearch,
    ) -> Result<Vec<PdsPatient>, PdsRepoError> {
        let mut params = Vec::new();
        let (from, to) = DateBound::range(&search.birthdate);
        if let Some(from) = from {
            params.push(("birthdate".to_owned(), format!("ge{from}")));
        }
        if let Some(to) = to {
            params.push(("birthdate".to_owned(), format!("le{to}")));
        }
        if !search.fuzzy
            && let Some(family) = &search.family
        {
            // A string search is a prefix search: exactness is the domain's to check.
            params.push(("family".to_owned(), family.trim_end_matches('*').to_owned()));
        }
        params.push(("_count".to_owned(), "1000".to_owned()));
        let mut query = parse_query(
            FhirVersion::R4.model(),
            "Patient",
            &params,
            &ParseOptions::default(),
        )
        .map_err(|issues| {
            PdsRepoError::Corrupt(format!("PDS built a search it cannot run: {issues:?}"))
        })?;
        let mut found = Vec::new();
        loop {
            let page = self.store.search(&self.key, &query).await?;
            for result in page.matches {
                if let Some(body) = result.resource.body {
                    found.push(
                        serde_json::from_str(&body)
                            .map_err(|e| PdsRepoError::Corrupt(e.to_string()))?,
                    );
                }
            }
            match page.next {
                Some(cursor) if found.len() < CANDIDATE_LIMIT => query.cursor = Some(cursor),
                _ => return Ok(found),
            }
        }
    }
}
